//! Line mode: when stdin is not a terminal, natter reads commands one per
//! line and prints one line per event (or one JSON object per line with
//! `--json`). Scripts and tests drive natter through this.

use super::frontend::{describe, describe_reply, handle_line};
use super::render::Style;
use natter_core::event::Event;
use natter_core::node::Command;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// Run line mode until the node shuts down. EOF on stdin quits.
pub async fn run(
    commands: mpsc::Sender<Command>,
    mut events: mpsc::UnboundedReceiver<Event>,
    json: bool,
) {
    let style = Style::from_env(false);
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = lines.next_line(), if stdin_open => {
                let line = match line {
                    Ok(Some(l)) => l,
                    Ok(None) | Err(_) => {
                        stdin_open = false;
                        let _ = commands.send(Command::Quit).await;
                        continue;
                    }
                };
                let reply = handle_line(&line, &commands).await;
                if let Some(r) = reply {
                    if json {
                        println!("{}", super::json::reply(&r));
                    } else {
                        println!("{}", describe_reply(&r, &style));
                    }
                }
            }
            ev = events.recv() => match ev {
                Some(ev) => {
                    print_event(&ev, json, &style);
                    if matches!(ev, Event::Shutdown) {
                        return;
                    }
                }
                None => return,
            },
        }
    }
}

fn print_event(ev: &Event, json: bool, style: &Style) {
    if json {
        println!("{}", super::json::event(ev));
    } else {
        let text = describe(ev, style);
        if !text.is_empty() {
            println!("{text}");
        }
    }
}
