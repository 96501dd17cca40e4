//! What both front ends share: turning parsed commands into node commands
//! and events into lines of text.

use super::command::{help_for, help_overview, parse, Command as CliCommand, ParseError};
use super::render::{self, Style};
use super::sanitize::sanitize_nick;
use super::session::{lock, SharedSession};
use natter_core::chat::{short_id, Conversation};
use natter_core::event::{ChatLine, Event, MembershipChange, PeerInfo, TransferView};
use natter_core::link::Direction;
use natter_core::node::Command;
use render::{ChatLineView, DeliveryMark, PeerRowView, TrustMark as _, VerifyView};
use tokio::sync::mpsc;

/// What the front end answers by itself, without the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `/help`, and the like.
    Info { text: String },
    /// A mistake in what was typed, or the node is gone.
    Error { text: String },
}

/// A front-end answer as text.
pub fn describe_reply(r: &Reply, style: &Style) -> String {
    match r {
        Reply::Info { text } => render::info(style, text),
        Reply::Error { text } => render::error(style, text),
    }
}

/// Where a parsed command goes.
pub enum Dispatch {
    /// To the node.
    Node(Command),
    /// To the node, and answered here too (`/room`).
    NodeAndReply(Command, Reply),
    /// Answered locally (or refused) without the node.
    Reply(Reply),
}

fn refuse(text: String) -> Dispatch {
    Dispatch::Reply(Reply::Error { text })
}

/// `/invite` or `/kick` in `room` (typed, or the current one): only an
/// invite-only room has members to change.
fn membership(
    room: Result<String, String>,
    verb: &str,
    command: impl FnOnce(String) -> Command,
) -> Dispatch {
    match room {
        Ok(room) if room.starts_with('+') => Dispatch::Node(command(room)),
        Ok(room) => refuse(format!(
            "{room} is open to everyone: only invite-only rooms (+name) have members to {verb}"
        )),
        Err(why) => refuse(why),
    }
}

/// Map a parsed command to a node command, resolving host names and the
/// current room.
pub async fn to_node_command(cmd: CliCommand, session: &SharedSession) -> Dispatch {
    let current = |typed: Option<String>| lock(session).room_or_current(typed.as_deref());
    match cmd {
        CliCommand::Peers => Dispatch::Node(Command::Peers),
        CliCommand::Quit => Dispatch::Node(Command::Quit),
        CliCommand::Nick { name } => Dispatch::Node(Command::Nick(name)),
        CliCommand::ConnectTicket { ticket } => Dispatch::Node(Command::ConnectTicket(ticket)),
        CliCommand::Ticket => Dispatch::Node(Command::Ticket),
        CliCommand::Wan { on } => Dispatch::Node(Command::Wan(on)),
        CliCommand::Connect { addr } => {
            let target = addr.to_string();
            let resolved = tokio::net::lookup_host(target.as_str())
                .await
                .map(|mut a| a.next());
            match resolved {
                Ok(first) => match first {
                    Some(a) => Dispatch::Node(Command::Connect(a)),
                    None => Dispatch::Reply(Reply::Error {
                        text: format!("{target} did not resolve to any address"),
                    }),
                },
                Err(e) => Dispatch::Reply(Reply::Error {
                    text: format!("cannot resolve {target}: {e}"),
                }),
            }
        }
        CliCommand::Help { topic } => Dispatch::Reply(Reply::Info {
            text: help_text(topic),
        }),
        CliCommand::Say(text) => match current(None) {
            Ok(room) => Dispatch::Node(Command::Post { room, text }),
            Err(why) => refuse(format!("not sent: {why}")),
        },
        CliCommand::Msg { peer, text } => Dispatch::Node(Command::Msg { peer, text }),
        CliCommand::History { peer, room, limit } => {
            let room = match (&peer, room) {
                (None, None) => lock(session).current().map(str::to_owned),
                (_, room) => room,
            };
            Dispatch::Node(Command::History {
                peer,
                room,
                limit: limit.map_or(DEFAULT_HISTORY, |n| n as usize),
            })
        }
        CliCommand::Search { room, query } => Dispatch::Node(Command::Search {
            query,
            room,
            limit: DEFAULT_SEARCH,
        }),
        CliCommand::Join { room } => Dispatch::Node(Command::Join(room)),
        CliCommand::Leave { room } => match current(room) {
            Ok(room) => Dispatch::Node(Command::Leave(room)),
            Err(why) => refuse(why),
        },
        CliCommand::Room { room } => match lock(session).switch_to(&room) {
            Ok(name) => Dispatch::NodeAndReply(
                Command::ReadRoom(name.clone()),
                Reply::Info {
                    text: format!("talking in {name} (/history for what you missed)"),
                },
            ),
            Err(why) => refuse(why),
        },
        CliCommand::Rooms => Dispatch::Node(Command::Rooms),
        CliCommand::Who { room } => match current(room) {
            Ok(room) => Dispatch::Node(Command::Who(room)),
            Err(why) => refuse(why),
        },
        CliCommand::Info { id } => Dispatch::Node(Command::Info(id)),
        CliCommand::Create { room } => Dispatch::Node(Command::CreateRoom(room)),
        CliCommand::Invite { peer, room } => membership(current(room), "invite", |room| {
            Command::Invite { peer, room }
        }),
        CliCommand::Kick { peer, room } => {
            membership(current(room), "remove", |room| Command::Kick { peer, room })
        }
        CliCommand::Verify { peer } => Dispatch::Node(Command::Verify { peer }),
        CliCommand::Trust { peer, fingerprint } => {
            Dispatch::Node(Command::Trust { peer, fingerprint })
        }
        CliCommand::Untrust { peer } => Dispatch::Node(Command::Untrust { peer }),
        CliCommand::Send { peer, path } => match absolute_path(&path) {
            Ok(path) => Dispatch::Node(Command::SendFile { peer, path }),
            Err(text) => Dispatch::Reply(Reply::Error { text }),
        },
        CliCommand::Accept { id } => Dispatch::Node(Command::AcceptFile(id)),
        CliCommand::Reject { id } => Dispatch::Node(Command::RejectFile(id)),
        CliCommand::Cancel { id } => Dispatch::Node(Command::CancelFile(id)),
        CliCommand::Files => Dispatch::Node(Command::Files),
    }
}

/// The path typed to `/send`, with `~` expanded and made absolute, checked
/// to exist, so the transfer names the file wherever natter runs from.
fn absolute_path(typed: &str) -> Result<String, String> {
    let expanded = match typed.strip_prefix("~/") {
        Some(rest) => match directories::UserDirs::new() {
            Some(u) => u.home_dir().join(rest),
            None => std::path::PathBuf::from(typed),
        },
        None => std::path::PathBuf::from(typed),
    };
    let path = std::fs::canonicalize(&expanded).map_err(|e| format!("cannot send {typed}: {e}"))?;
    Ok(path.to_string_lossy().into_owned())
}

/// Parse and carry out one line of user input, the same in line mode and
/// in the interactive editor: a command for the node is sent to it; a
/// mistake, `/help` or a failed look-up is answered here. Returns what to
/// show, if anything.
pub async fn handle_line(
    line: &str,
    commands: &mpsc::Sender<Command>,
    session: &SharedSession,
) -> Option<Reply> {
    dispatch(parse(line), commands, session).await
}

/// [`handle_line`] for a line already parsed (the editor thread parses
/// once, to see `/quit` and `/nick` itself).
pub async fn dispatch(
    parsed: Result<Option<CliCommand>, ParseError>,
    commands: &mpsc::Sender<Command>,
    session: &SharedSession,
) -> Option<Reply> {
    let cmd = match parsed {
        Ok(None) => return None,
        Ok(Some(cmd)) => cmd,
        Err(e) => {
            return Some(Reply::Error {
                text: e.to_string(),
            })
        }
    };
    let stopped = || Reply::Error {
        text: "the node has stopped".into(),
    };
    match to_node_command(cmd, session).await {
        Dispatch::Node(c) => commands.send(c).await.err().map(|_| stopped()),
        Dispatch::NodeAndReply(c, r) => Some(match commands.send(c).await {
            Ok(()) => r,
            Err(_) => stopped(),
        }),
        Dispatch::Reply(ev) => Some(ev),
    }
}

/// Lines `/history` shows without a count.
pub const DEFAULT_HISTORY: usize = 20;
/// Results `/search` shows.
pub const DEFAULT_SEARCH: usize = 50;

/// One chat message as a line. A room message names its room unless it
/// is `current`; `listed` lines (history, search) show the message id and,
/// for our room messages, how many peers have them.
pub fn chat_text(line: &ChatLine, style: &Style, current: Option<&str>, listed: bool) -> String {
    let m = &line.message;
    let counterpart = match m.conversation {
        Conversation::Direct(peer) => Some(peer),
        Conversation::Room(_) => None,
    };
    let room = match (&line.room, m.conversation) {
        (Some(r), _) if Some(r.as_str()) == current => None,
        (Some(r), _) => Some(r.clone()),
        (None, Conversation::Room(id)) => Some(format!("#{}?", natter_core::hex(&id.0[..4]))),
        (None, Conversation::Direct(_)) => None,
    };
    let id_tag = listed.then(|| short_id(&m.id));
    let fp_suffix: String = m.author.fingerprint().as_str().chars().take(4).collect();
    let counterpart_fp: Option<String> =
        counterpart.map(|p| p.fingerprint().as_str().chars().take(4).collect());
    let seed = match counterpart {
        Some(p) if m.outgoing => render::color_seed(&p.0),
        _ => render::color_seed(&m.author.0),
    };
    let view = ChatLineView {
        time_ms: m.timestamp_ms,
        private: counterpart.is_some(),
        outgoing: m.outgoing,
        author_nick: &line.author_nick,
        author_fp_suffix: (line.nick_collides || line.author_nick.is_empty())
            .then_some(fp_suffix.as_str()),
        counterpart_nick: line.peer_nick.as_deref(),
        counterpart_fp_suffix: if line.nick_collides {
            counterpart_fp.as_deref()
        } else {
            None
        },
        trust: line.trust,
        delivery: m.outgoing.then_some(if m.delivered {
            DeliveryMark::Delivered
        } else {
            DeliveryMark::Pending
        }),
        delivered_to: (listed && counterpart.is_none()).then_some(m.delivered_to),
        room: room.as_deref(),
        id_tag: id_tag.as_deref(),
        color_seed: seed,
        text: &m.text,
    };
    render::chat_line(style, &view)
}

/// `/help` text.
pub fn help_text(topic: Option<&'static str>) -> String {
    match topic.and_then(help_for) {
        Some(h) => h,
        None => format!("{}\n\n{}", help_overview(), render::legend()),
    }
}

/// A peer's grouped fingerprint.
fn fingerprint(p: &PeerInfo) -> String {
    p.identity.fingerprint().grouped()
}

/// The first two groups of a fingerprint, `ABCD-EFGH`.
fn short(p: &PeerInfo) -> String {
    fingerprint(p).chars().take(9).collect()
}

/// Where a peer is: `at` its LAN address, or for a link beyond the LAN
/// how it travels.
fn place(p: &PeerInfo) -> String {
    use natter_core::link::LinkPath;
    match (p.addr, p.path) {
        (_, Some(LinkPath::Direct)) => "beyond the LAN (direct)".into(),
        (_, Some(LinkPath::Relayed)) => "beyond the LAN (relayed)".into(),
        (Some(a), _) => format!("at {a}"),
        (None, _) => "at ?".into(),
    }
}

/// `1.5 MiB`: sizes the way people read them.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The transfer's short id, its (sanitised) name and size, and the peer
/// with its trust mark and fingerprint prefix.
fn transfer_summary(t: &TransferView) -> String {
    let name = super::sanitize::sanitize_line(&t.name);
    let mark = t.peer.trust.symbol();
    let id = natter_core::files::short_id(&t.id);
    format!(
        "[{id}] \"{name}\" ({}) {} {mark} {}",
        human_bytes(t.size),
        if t.outgoing { "to" } else { "from" },
        who(&t.peer)
    )
}

fn who(p: &PeerInfo) -> String {
    let short = short(p);
    format!("{} ({short})", sanitize_nick(&p.nickname))
}

/// One event as a line (or block) of text; empty for events not shown.
/// Room messages name their room.
pub fn describe(ev: &Event, style: &Style) -> String {
    describe_in(ev, style, None)
}

/// [`describe`] for a front end whose current room is `current`: messages
/// of that room do not repeat its name.
pub fn describe_in(ev: &Event, style: &Style, current: Option<&str>) -> String {
    match ev {
        Event::Started {
            identity,
            nickname,
            listen,
            beacon_targets,
            ..
        } => {
            let beacons = if beacon_targets.is_empty() {
                "discovery off".to_string()
            } else {
                let targets: Vec<String> = beacon_targets.iter().map(|t| t.to_string()).collect();
                format!("beacons to {}", targets.join(", "))
            };
            render::info(
                style,
                &format!(
                    "natter up as {} — fingerprint {}; listening on {listen}; {beacons}",
                    sanitize_nick(nickname),
                    identity.fingerprint().grouped()
                ),
            )
        }
        Event::PeerDiscovered { peer } => render::info(
            style,
            &format!("discovered {} {}", who(peer), place(peer)),
        ),
        Event::PeerConnected { peer, direction } => render::info(
            style,
            &format!(
                "connected to {} {} ({})",
                who(peer),
                place(peer),
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
            let shorts: Vec<String> = peers.iter().map(short).collect();
            let fps: Vec<String> = peers.iter().map(fingerprint).collect();
            let addrs: Vec<String> = peers
                .iter()
                .map(|p| p.addr.map(|a| a.to_string()).unwrap_or_default())
                .collect();
            let rows: Vec<PeerRowView> = (0..peers.len())
                .map(|i| PeerRowView {
                    nick: &peers[i].nickname,
                    fingerprint_short: &shorts[i],
                    trust: peers[i].trust,
                    link: peers[i].state.name(),
                    path: peers[i].path.map_or("-", |p| p.name()),
                    address: &addrs[i],
                    color_seed: render::color_seed(fps[i].as_bytes()),
                })
                .collect();
            render::peer_table(style, &rows)
        }
        Event::MessageReceived { message } | Event::MessageSent { message } => {
            chat_text(message, style, current, false)
        }
        Event::RoomJoined { room } => render::info(
            style,
            &format!("joined {room}: plain text goes there now (/room switches, /who lists who is in)"),
        ),
        Event::RoomLeft { room } => render::info(
            style,
            &format!("left {room}: its messages are no longer shown"),
        ),
        Event::Rooms { rooms, private } => {
            let mut out = if rooms.is_empty() {
                render::info(style, "you are in no room: /join #lobby")
            } else {
                render::info(style, &format!("your rooms ({}):", rooms.len()))
            };
            for r in rooms {
                let here = if Some(r.name.as_str()) == current { " (current)" } else { "" };
                let mentions = if r.mentions > 0 {
                    format!(" ({} name you)", r.mentions)
                } else {
                    String::new()
                };
                out.push_str(&format!(
                    "\n    {:<21} {:>5} unread{mentions}, {} linked peer{} in it{here}",
                    r.name,
                    r.unread,
                    r.linked_members,
                    if r.linked_members == 1 { "" } else { "s" }
                ));
            }
            for (p, n) in private {
                out.push_str(&format!(
                    "\n    private from {} {}: {n} unread (/history to read)",
                    p.trust.symbol(),
                    who(p)
                ));
            }
            out
        }
        Event::RoomRenamed { old, new } => {
            let bare = new.split('#').next().unwrap_or(new);
            let text = if new.contains('#') {
                format!(
                    "{old} is now {new}: you are in another invite-only room called {bare}, and a \
                     bare {bare} means the one you founded, else the one whose founder you verified"
                )
            } else {
                format!("{old} is now {new}: a bare {new} means this room")
            };
            render::info(style, &text)
        }
        Event::RoomMembership { room, change } => match change {
            MembershipChange::YouJoined { founder } => render::info(
                style,
                &format!(
                    "you are in {room}, an invite-only room of {}: only its members can read it \
                     (/room {room} to talk there)",
                    who(founder)
                ),
            ),
            MembershipChange::Added(p) => {
                render::info(style, &format!("{} {} joined {room}", p.trust.symbol(), who(p)))
            }
            MembershipChange::Removed(p) => render::info(
                style,
                &format!(
                    "{} was removed from {room}; the room key was replaced, so they cannot read what follows",
                    who(p)
                ),
            ),
            MembershipChange::YouWereRemoved => render::warning(
                style,
                &format!("you were removed from {room}: you can no longer read it"),
            ),
        },
        Event::Who { room, members } => {
            if members.is_empty() {
                return render::info(style, &format!("{room}: nobody else seen in the last hour"));
            }
            let mut out = render::info(style, &format!("{room} ({} seen):", members.len()));
            for p in members {
                out.push_str(&format!("\n    {} {}", p.trust.symbol(), who(p)));
            }
            out
        }
        Event::MessageInfo {
            message,
            delivered_to,
            pending,
        } => {
            let names = |ps: &[PeerInfo]| -> String {
                if ps.is_empty() {
                    "nobody".into()
                } else {
                    ps.iter().map(who).collect::<Vec<_>>().join(", ")
                }
            };
            let mut out = chat_text(message, style, None, true);
            out.push('\n');
            out.push_str(&render::info(
                style,
                &format!(
                    "stored by {} peer{}: {}",
                    delivered_to.len(),
                    if delivered_to.len() == 1 { "" } else { "s" },
                    names(delivered_to)
                ),
            ));
            if !pending.is_empty() {
                out.push('\n');
                out.push_str(&render::info(
                    style,
                    &format!("still sending to: {}", names(pending)),
                ));
            }
            out
        }
        Event::MessageDelivered { id, peer } => render::info(
            style,
            &format!("message {} delivered to {}", short_id(id), who(peer)),
        ),
        Event::MessageCollision { author, id, via } => render::warning(
            style,
            &format!(
                "{} signed two different messages with one id ({}); the second, relayed by {}, was dropped",
                who(author),
                short_id(id),
                who(via)
            ),
        ),
        Event::FileOffered { transfer: t } if t.outgoing => render::info(
            style,
            &format!("offered {}; waiting for them to accept", transfer_summary(t)),
        ),
        Event::FileOffered { transfer: t } => {
            let id = natter_core::files::short_id(&t.id);
            render::info(
                style,
                &format!(
                    "file offered: {}. /accept {id} or /reject {id}",
                    transfer_summary(t)
                ),
            )
        }
        Event::FileProgress { transfer: t } => render::info(
            style,
            &format!(
                "{}: {} of {} ({}%)",
                transfer_summary(t),
                human_bytes(t.done),
                human_bytes(t.size),
                percent(t.done, t.size)
            ),
        ),
        Event::FileCompleted { transfer: t } => {
            let whre = match (&t.path, t.outgoing) {
                (Some(p), false) => format!(", saved as {}", super::sanitize::sanitize_line(p)),
                _ => String::new(),
            };
            render::info(
                style,
                &format!(
                    "file complete: {}, BLAKE3 {}{whre}",
                    transfer_summary(t),
                    natter_core::hex(&t.root)
                ),
            )
        }
        Event::FileFailed { transfer: t, reason } => render::warning(
            style,
            &format!("file transfer ended: {}: {reason}", transfer_summary(t)),
        ),
        Event::FileRefused {
            peer,
            name,
            size,
            reason,
        } => render::warning(
            style,
            &format!(
                "refused a file from {} {}: \"{}\" ({}): {reason}",
                peer.trust.symbol(),
                who(peer),
                super::sanitize::sanitize_line(name),
                human_bytes(*size)
            ),
        ),
        Event::Files { transfers } => {
            if transfers.is_empty() {
                return render::info(style, "no file transfers");
            }
            let mut out = render::info(style, &format!("file transfers ({}):", transfers.len()));
            for t in transfers {
                out.push_str(&format!(
                    "\n    {:<9} {}: {} of {} ({}%)",
                    t.state.as_str(),
                    transfer_summary(t),
                    human_bytes(t.done),
                    human_bytes(t.size),
                    percent(t.done, t.size)
                ));
            }
            out
        }
        Event::EventsDropped { count } => render::warning(
            style,
            &format!(
                "{count} events were not shown: the screen fell behind \
                 (/history has every message)"
            ),
        ),
        Event::OverQuota { author, via } => render::warning(
            style,
            &format!(
                "{} sent more than a stranger's daily share of history (through {}); \
                 its further messages wait with their senders until tomorrow \
                 (/trust it to lift the limit)",
                who(author),
                who(via)
            ),
        ),
        Event::History {
            conversation,
            messages,
        } => {
            let room = messages.first().and_then(|m| m.room.as_deref());
            let title = match (conversation, room) {
                (Conversation::Room(_), Some(name)) => format!("history of {name}"),
                (Conversation::Room(_), None) => "history of the room".to_owned(),
                (Conversation::Direct(_), _) => "history of the private conversation".to_owned(),
            };
            listing(&title, messages, style, room)
        }
        Event::SearchResults { query, messages } => {
            let title = format!(
                "search results for \"{}\"",
                super::sanitize::sanitize_line(query)
            );
            listing(&title, messages, style, None)
        }
        Event::Verify {
            peer,
            local,
            safety_number,
        } => {
            let local_fingerprint = local.fingerprint().grouped();
            let peer_fingerprint = fingerprint(peer);
            let short = short(peer);
            let peer_ref = format!("{}#{short}", sanitize_nick(&peer.nickname));
            render::verify_block(
                style,
                &VerifyView {
                    own_nick: "you",
                    own_fingerprint: &local_fingerprint,
                    peer_nick: &peer.nickname,
                    peer_fingerprint: &peer_fingerprint,
                    safety_number,
                    trust: peer.trust,
                    peer_ref: &peer_ref,
                    color_seed: render::color_seed(peer_fingerprint.as_bytes()),
                },
            )
        }
        Event::TrustChanged { peer } => render::info(
            style,
            &format!("{} is now {}", who(peer), peer.trust.word()),
        ),
        Event::KeyWarning { peer, verified } => {
            let old: Vec<String> = verified.iter().map(short).collect();
            let new_short = short(peer);
            render::key_change_warning(
                style,
                &peer.nickname,
                &old.join(", "),
                &new_short,
                &format!("{}#{new_short}", sanitize_nick(&peer.nickname)),
            )
        }

        Event::Data { from, len } => render::info(
            style,
            &format!("{len} bytes of data from {}", natter_core::hex(&from.0)),
        ),
        Event::AlreadyConnected { addr } => {
            render::info(style, &format!("already connected to {addr}"))
        }
        // The ticket alone on its line, so it can be copied whole.
        Event::Ticket { ticket } => format!(
            "{}\n{ticket}",
            render::info(style, "your ticket (give it to a contact: /connect <ticket>):")
        ),
        Event::Wan { active, saved } => render::info(style, &wan_text(*active, *saved)),
        Event::Error { error } => render::error(style, &error.to_string()),
        Event::Shutdown => render::info(style, "bye"),
        // Bookkeeping of the front ends: never shown.
        Event::Marker(_) => String::new(),
    }
}

/// Messages under a title; `room`'s name is not repeated on its lines.
fn listing(title: &str, messages: &[ChatLine], style: &Style, room: Option<&str>) -> String {
    if messages.is_empty() {
        return render::info(style, &format!("{title}: nothing"));
    }
    let n = messages.len();
    let plural = if n == 1 { "" } else { "s" };
    let mut out = render::info(style, &format!("{title} ({n} message{plural}):"));
    for m in messages {
        out.push('\n');
        out.push_str(&chat_text(m, style, room, true));
    }
    out
}

/// Whole percent done, 100 for an empty file.
pub fn percent(done: u64, size: u64) -> u64 {
    if size == 0 {
        100
    } else {
        (u128::from(done) * 100 / u128::from(size)) as u64
    }
}

/// What `/wan` says.
pub fn wan_text(active: bool, saved: Option<bool>) -> String {
    let now = if active { "on" } else { "off" };
    let next = if saved == Some(true) { "on" } else { "off" };
    format!(
        "links beyond the LAN: {now} now, {next} from the next start (unless --wan or --no-wan)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::event::LinkState;
    use natter_core::identity::LocalIdentity;
    use natter_core::trust::TrustState;

    /// A receipt names the message by the short id listings show and
    /// `/info` takes, not by the id's first digits (the sender's clock).
    #[test]
    fn a_receipt_names_the_message_by_its_short_id() {
        let peer = PeerInfo {
            identity: LocalIdentity::from_secrets([2; 32], [2; 32])
                .unwrap()
                .identity_key(),
            nickname: "bob".into(),
            state: LinkState::Established,
            addr: None,
            trust: TrustState::Unverified,
            path: None,
        };
        let id: [u8; 16] = [
            0x01, 0x9a, 0xee, 0x00, 0x11, 0x22, 0xab, 0xcd, 0xef, 0x01, 0, 0, 0, 0, 0, 0,
        ];
        let text = describe(&Event::MessageDelivered { id, peer }, &Style::PLAIN);
        assert!(text.contains("message abcdef01 delivered to bob"), "{text}");
    }
}
