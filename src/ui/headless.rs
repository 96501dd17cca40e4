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
use std::io::Write;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// Standard output. A script that stops reading (a closed pipe) must not
/// crash natter: once a write fails nothing more is printed, and the node
/// is asked to stop as on end of input.
struct Out {
    stdout: std::io::Stdout,
    gone: bool,
}

impl Out {
    /// Prints one line; true if this write found the reader gone.
    fn line(&mut self, text: &str) -> bool {
        if self.gone {
            return false;
        }
        let mut lock = self.stdout.lock();
        if writeln!(lock, "{text}")
            .and_then(|()| lock.flush())
            .is_err()
        {
            self.gone = true;
            return true;
        }
        false
    }
}

/// Run line mode until the node shuts down. EOF on stdin quits, and so does
/// a closed standard output.
pub async fn run(commands: mpsc::Sender<Command>, mut events: EventRx, json: bool) {
    let style = Style::from_env(false);
    let out = std::cell::RefCell::new(Out {
        stdout: std::io::stdout(),
        gone: false,
    });
    let print = |text: &str| out.borrow_mut().line(text);
    let print_reply = |r: &Reply| {
        if json {
            print(&super::json::reply(r).to_string())
        } else {
            print(&describe_reply(r, &style))
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
                let mut closed = false;
                if let Some(r) = handle_line(&line, &commands, &session).await {
                    next_marker += 1;
                    if commands.send(Command::Marker(next_marker)).await.is_ok() {
                        waiting.insert(next_marker, r);
                    } else {
                        closed = print_reply(&r);
                    }
                }
                if closed {
                    stdin_open = false;
                    let _ = commands.send(Command::Quit).await;
                }
            }
            ev = events.recv() => {
                let closed = match ev {
                    Some(Event::Marker(n)) => waiting.remove(&n).is_some_and(|r| print_reply(&r)),
                    Some(ev) => {
                        lock(&session).observe(&ev);
                        let closed = if json {
                            print(&super::json::event(&ev).to_string())
                        } else if receipts.shows(&ev) {
                            let text = describe_in(&ev, &style, lock(&session).current());
                            !text.is_empty() && print(&text)
                        } else {
                            false
                        };
                        if matches!(ev, Event::Shutdown) {
                            waiting.values().for_each(|r| {
                                print_reply(r);
                            });
                            return;
                        }
                        closed
                    }
                    None => {
                        waiting.values().for_each(|r| {
                            print_reply(r);
                        });
                        return;
                    }
                };
                if closed {
                    // Nobody reads any more: stop as on end of input (the
                    // node says goodbye to its peers and closes its store).
                    stdin_open = false;
                    let _ = commands.send(Command::Quit).await;
                }
            }
        }
    }
}
