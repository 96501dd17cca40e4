//! Line mode: when stdin is not a terminal, natter reads commands one per
//! line and prints one line per event (or one JSON object per line with
//! `--json`). Scripts and tests drive natter through this.

use super::frontend::{describe_in, describe_reply, handle_line, Reply};
use super::render::Style;
use super::session::{lock, Receipts, SharedSession};
use crate::shell::EventRx;
use natter_core::event::Event;
use natter_core::node::Command;
use std::collections::BTreeMap;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// Run line mode until the node shuts down. EOF on stdin quits.
pub async fn run(commands: mpsc::Sender<Command>, mut events: EventRx, json: bool) {
    let style = Style::from_env(false);
    let print_reply = |r: &Reply| {
        if json {
            println!("{}", super::json::reply(r));
        } else {
            println!("{}", describe_reply(r, &style));
        }
    };
    let session = SharedSession::default();
    let mut receipts = Receipts::default();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    // Answers given here wait for a marker through the node, so they come
    // out after the events of the lines before them (scripts read them in
    // input order).
    let mut waiting: BTreeMap<u64, Reply> = BTreeMap::new();
    let mut next_marker = 0u64;
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
                if let Some(r) = handle_line(&line, &commands, &session).await {
                    next_marker += 1;
                    if commands.send(Command::Marker(next_marker)).await.is_ok() {
                        waiting.insert(next_marker, r);
                    } else {
                        print_reply(&r);
                    }
                }
            }
            ev = events.recv() => match ev {
                Some(Event::Marker(n)) => {
                    if let Some(r) = waiting.remove(&n) {
                        print_reply(&r);
                    }
                }
                Some(ev) => {
                    lock(&session).observe(&ev);
                    if json {
                        println!("{}", super::json::event(&ev));
                    } else if receipts.shows(&ev) {
                        let text = describe_in(&ev, &style, lock(&session).current());
                        if !text.is_empty() {
                            println!("{text}");
                        }
                    }
                    if matches!(ev, Event::Shutdown) {
                        waiting.values().for_each(print_reply);
                        return;
                    }
                }
                None => {
                    waiting.values().for_each(print_reply);
                    return;
                }
            },
        }
    }
}
