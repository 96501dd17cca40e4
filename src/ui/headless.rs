//! Line mode: when stdin is not a terminal, natter reads commands one per
//! line and prints one line per event (or one JSON object per line with
//! `--json`). Scripts and tests drive natter through this.

use super::command::{parse, Command as CliCommand};
use super::frontend::{describe, to_node_command, Dispatch};
use super::render::{self, Style};
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
                let reply = match parse(&line) {
                    Ok(None) => continue,
                    Ok(Some(CliCommand::Help { topic })) => Some(Event::Info { text: super::frontend::help_text(topic) }),
                    Ok(Some(cmd)) => match to_node_command(cmd).await {
                        Dispatch::Node(c) => {
                            if commands.send(c).await.is_err() {
                                return;
                            }
                            None
                        }
                        Dispatch::Reply(ev) => Some(ev),
                    },
                    Err(e) => Some(Event::Error { text: e.to_string() }),
                };
                if let Some(ev) = reply {
                    print_event(&ev, json, &style);
                }
            }
            ev = events.recv() => match ev {
                Some(ev) => {
                    print_event(&ev, json, &style);
                    if ev == Event::Shutdown {
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
    let _ = render::legend; // the legend is printed by /help
}
