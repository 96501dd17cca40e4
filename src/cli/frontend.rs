//! What both front ends share: turning parsed commands into node commands
//! and events into lines of text.

use super::command::{help_for, help_overview, Command as CliCommand};
use super::render::{self, Style};
use super::sanitize::sanitize_nick;
use crate::event::{Event, PeerInfo};
use crate::link::Direction;
use crate::node::Command;

/// Where a parsed command goes.
pub enum Dispatch {
    /// To the node.
    Node(Command),
    /// Answered locally (or refused) without the node.
    Reply(Event),
}

/// Map a parsed command to a node command, resolving host names.
pub async fn to_node_command(cmd: CliCommand) -> Dispatch {
    match cmd {
        CliCommand::Peers => Dispatch::Node(Command::Peers),
        CliCommand::Quit => Dispatch::Node(Command::Quit),
        CliCommand::Nick { name } => Dispatch::Node(Command::Nick(name)),
        CliCommand::Connect { addr } => {
            let target = addr.to_string();
            let resolved = tokio::net::lookup_host(target.as_str())
                .await
                .map(|mut a| a.next());
            match resolved {
                Ok(first) => match first {
                    Some(a) => Dispatch::Node(Command::Connect(a)),
                    None => Dispatch::Reply(Event::Error {
                        text: format!("{target} did not resolve to any address"),
                    }),
                },
                Err(e) => Dispatch::Reply(Event::Error {
                    text: format!("cannot resolve {target}: {e}"),
                }),
            }
        }
        CliCommand::Help { topic } => Dispatch::Reply(Event::Info {
            text: help_text(topic),
        }),
        other => Dispatch::Reply(Event::Error {
            text: format!("{} is not available yet", command_name(&other)),
        }),
    }
}

fn command_name(cmd: &CliCommand) -> &'static str {
    match cmd {
        CliCommand::Say(_) => "posting",
        CliCommand::Msg { .. } => "/msg",
        CliCommand::Trust { .. } => "/trust",
        CliCommand::Untrust { .. } => "/untrust",
        CliCommand::Verify { .. } => "/verify",
        CliCommand::History { .. } => "/history",
        CliCommand::Search { .. } => "/search",
        _ => "this command",
    }
}

/// `/help` text.
pub fn help_text(topic: Option<&'static str>) -> String {
    match topic.and_then(help_for) {
        Some(h) => h,
        None => format!("{}\n\n{}", help_overview(), render::legend()),
    }
}

fn who(p: &PeerInfo) -> String {
    let short: String = p.fingerprint.chars().take(9).collect();
    format!("{} ({short})", sanitize_nick(&p.nickname))
}

/// One event as a line (or block) of text; empty for events not shown.
pub fn describe(ev: &Event, style: &Style) -> String {
    match ev {
        Event::Started {
            fingerprint,
            nickname,
            listen,
            beacon_targets,
            ..
        } => {
            let beacons = if beacon_targets.is_empty() {
                "discovery off".to_string()
            } else {
                format!("beacons to {}", beacon_targets.join(", "))
            };
            render::info(
                style,
                &format!(
                    "natter up as {} — fingerprint {fingerprint}; listening on {listen}; {beacons}",
                    sanitize_nick(nickname)
                ),
            )
        }
        Event::PeerDiscovered { peer } => render::info(
            style,
            &format!(
                "discovered {} at {}",
                who(peer),
                peer.addr.as_deref().unwrap_or("?")
            ),
        ),
        Event::PeerConnected { peer, direction } => render::info(
            style,
            &format!(
                "connected to {} at {} ({})",
                who(peer),
                peer.addr.as_deref().unwrap_or("?"),
                match direction {
                    Direction::Outbound => "we dialled",
                    Direction::Inbound => "they dialled",
                }
            ),
        ),
        Event::PeerLost { peer, reason } => render::warning(
            style,
            &format!("lost {}: {reason}; will reconnect", who(peer)),
        ),
        Event::PeerExpired { peer } => {
            render::info(style, &format!("{} is gone (no beacons)", who(peer)))
        }
        Event::PeerRenamed { peer, old } => render::info(
            style,
            &format!("{} is now known as {}", sanitize_nick(old), who(peer)),
        ),
        Event::LinkFailed { addr, reason } => {
            render::warning(style, &format!("connection to {addr} failed: {reason}"))
        }
        Event::Peers { peers } => {
            if peers.is_empty() {
                return render::info(style, "no peers known yet");
            }
            let lines: Vec<String> = peers
                .iter()
                .map(|p| {
                    format!(
                        "{:<12} {:<14} {}",
                        p.state,
                        who(p),
                        p.addr.as_deref().unwrap_or("-")
                    )
                })
                .collect();
            render::info(style, &format!("peers:\n{}", lines.join("\n")))
        }
        Event::Data { from, len } => {
            render::info(style, &format!("{len} bytes of data from {from}"))
        }
        Event::Info { text } => render::info(style, text),
        Event::Error { text } => render::error(style, text),
        Event::Shutdown => render::info(style, "bye"),
    }
}
