//! The command parser and the command table.
//!
//! A line typed by the user (or read from stdin in line mode) becomes a
//! [`Command`]. Plain text goes to the current room; a line starting with `/`
//! is a command; a line starting with `//` is text whose first `/` is
//! dropped, so text that begins with a slash can still be sent.
//!
//! [`COMMANDS`] is the single table of commands: the parser, `/help` and
//! tab completion all read it, so they cannot drift apart (`natter --help`
//! lists the command-line flags and points to `/help`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::sanitize::{sanitize_line, sanitize_nick, MAX_NICK_BYTES};
use natter_core::chat::room_label;

/// Largest `n` accepted by `/history [peer] [n]`.
pub const MAX_HISTORY: u32 = 10_000;

/// How much of a bad argument is echoed back in an error message.
const MAX_ECHO_CHARS: usize = 40;

/// One entry of the command table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// Name without the leading slash, e.g. `"msg"`.
    pub name: &'static str,
    /// Other names for the same command, without the slash.
    pub aliases: &'static [&'static str],
    /// Argument synopsis, e.g. `"<peer> <text>"`; empty for none.
    pub args: &'static str,
    /// One line for the overview.
    pub summary: &'static str,
    /// A few lines for `/help <command>`.
    pub details: &'static str,
}

impl CommandSpec {
    /// The usage line, e.g. `/msg <peer> <text>`.
    pub fn usage(&self) -> String {
        if self.args.is_empty() {
            format!("/{}", self.name)
        } else {
            format!("/{} {}", self.name, self.args)
        }
    }
}

/// Every command natter understands, in the order `/help` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "msg",
        aliases: &[],
        args: "<peer> <text>",
        summary: "send a private message to one peer",
        details: "The text after the peer is sent as typed. <peer> is a nickname or the\n\
                  start of a fingerprint (use the fingerprint when two peers share a name).\n\
                  The message is kept and resent until the peer acknowledges it.",
    },
    CommandSpec {
        name: "trust",
        aliases: &[],
        args: "<peer> [fingerprint]",
        summary: "mark a peer's key as verified",
        details: "With the peer alone, shows what to compare and trusts nothing. Compare\n\
                  the safety number with the peer in person or over a voice call (see\n\
                  /verify), have them read their fingerprint to you, and type it whole:\n\
                  /trust <peer> ABCD-EFGH-... (spaces and dashes are ignored). natter\n\
                  checks it matches the key; a short prefix is refused.",
    },
    CommandSpec {
        name: "untrust",
        aliases: &[],
        args: "<peer>",
        summary: "mark a peer's key as unverified again",
        details: "The peer stays known, but its messages are shown as unverified.",
    },
    CommandSpec {
        name: "verify",
        aliases: &[],
        args: "<peer>",
        summary: "show fingerprints and the safety number to compare",
        details: "Shows your fingerprint, the peer's fingerprint and your shared safety\n\
                  number. Compare the safety number aloud or in person; if it matches,\n\
                  run /trust <peer> <their full fingerprint>.",
    },
    CommandSpec {
        name: "peers",
        aliases: &[],
        args: "",
        summary: "list known peers, their trust and link state",
        details: "One row per peer: nickname, short fingerprint, trust, link state, path\n\
                  (lan, direct over the internet, or relayed), address.",
    },
    CommandSpec {
        name: "join",
        aliases: &[],
        args: "<#room>",
        summary: "join an open room and make it current",
        details: "Anyone on the network may read and post in an open room. Room names\n\
                  are 1 to 32 of a-z, 0-9, '-' and '_' (upper case is folded). Plain\n\
                  text then goes to this room; /room switches between rooms.",
    },
    CommandSpec {
        name: "leave",
        aliases: &["part"],
        args: "[room]",
        summary: "leave a room (the current one by default)",
        details: "Its messages are no longer shown; natter still carries them for others.",
    },
    CommandSpec {
        name: "room",
        aliases: &[],
        args: "<room>",
        summary: "make a joined room current",
        details: "Plain text goes to the current room; the prompt shows it.",
    },
    CommandSpec {
        name: "create",
        aliases: &[],
        args: "<+room>",
        summary: "found an invite-only room and make it current",
        details: "Only its members can read it: posts are encrypted end to end to the\n\
                  room's key, which natter hands to each member you /invite. Other\n\
                  peers carry its messages without being able to read them.",
    },
    CommandSpec {
        name: "invite",
        aliases: &[],
        args: "<peer> [+room]",
        summary: "add a peer to your invite-only room (the current one by default)",
        details: "Only the room's founder can invite. The peer must have linked to you\n\
                  since natter started. If its key is not verified you are warned first;\n\
                  the same /invite again invites it anyway.",
    },
    CommandSpec {
        name: "kick",
        aliases: &[],
        args: "<peer> [+room]",
        summary: "remove a peer from your invite-only room",
        details: "Only the room's founder can remove. The room gets a new key that the\n\
                  removed peer never receives: it cannot read anything posted after.",
    },
    CommandSpec {
        name: "rooms",
        aliases: &[],
        args: "",
        summary: "list your rooms with unread counts",
        details: "One row per joined room: name, unread messages, linked peers in it.",
    },
    CommandSpec {
        name: "who",
        aliases: &[],
        args: "[room]",
        summary: "list who is in a room",
        details: "Linked peers that joined the room, then anyone heard in it within the\n\
                  last hour, with their trust marks. The current room by default.",
    },
    CommandSpec {
        name: "info",
        aliases: &[],
        args: "<id>",
        summary: "show who has one of your messages",
        details: "The short id is shown in /history (its first 4+ hex digits are enough);\n\
                  a whole id (32 hex digits, as --json prints it) works too.\n\
                  Lists the peers that confirmed they stored it, and those still waited for.",
    },
    CommandSpec {
        name: "history",
        aliases: &[],
        args: "[room|peer] [n]",
        summary: "show the last n messages (default 20)",
        details: "Without a room or peer, shows the current room; with #room, that room;\n\
                  with a peer, your private conversation with it. n is a whole number\n\
                  from 1 to 10000.",
    },
    CommandSpec {
        name: "search",
        aliases: &[],
        args: "[room] <words>",
        summary: "full-text search of the history",
        details: "Finds messages containing all the words, newest first: everywhere, or\n\
                  in one room if the first word is #room.",
    },
    CommandSpec {
        name: "nick",
        aliases: &[],
        args: "<name>",
        summary: "change your nickname",
        details: "One word, at most 32 bytes, no control characters. Peers see it as an\n\
                  untrusted label: your fingerprint is what identifies you.",
    },
    CommandSpec {
        name: "connect",
        aliases: &[],
        args: "<host:port|ticket>",
        summary: "dial a peer by address, or by ticket beyond the LAN",
        details: "For networks where discovery broadcasts do not arrive. Examples:\n\
                  /connect 192.168.1.20:47475, /connect laptop.local:47475,\n\
                  /connect [fe80::1%eth0]:47475 (IPv6 goes in brackets).\n\
                  With --wan, /connect natter… dials the ticket a contact gave you\n\
                  (their /ticket); natter then finds them again after either moves.",
    },
    CommandSpec {
        name: "ticket",
        aliases: &[],
        args: "",
        summary: "print your ticket, for contacts beyond the LAN",
        details: "With --wan: one line holding your identity and where your node can be\n\
                  reached (relay, addresses). Hand it to a contact, who types\n\
                  /connect <ticket>. It reveals your addresses to whoever holds it.",
    },
    CommandSpec {
        name: "wan",
        aliases: &[],
        args: "[on|off]",
        summary: "links beyond the LAN: show, or set for the next start",
        details: "Off by default: natter then talks only to the LAN. /wan on saves the\n\
                  setting; it takes effect at the next start (--wan and --no-wan\n\
                  override it for one run).",
    },
    CommandSpec {
        name: "send",
        aliases: &[],
        args: "<peer> <path>",
        summary: "offer a file to a peer",
        details:
            "Everything after the peer is the path (spaces allowed; a leading ~/ is your home).\n\
                  The file is hashed (BLAKE3), then offered; the peer accepts or rejects\n\
                  it. Data is verified as it arrives and resumes after a lost link or a\n\
                  restart. A directory cannot be sent: send an archive of it.",
    },
    CommandSpec {
        name: "accept",
        aliases: &[],
        args: "<id>",
        summary: "accept a file offered to you (or resume a failed one)",
        details: "<id> is the transfer id shown with the offer (or its first 4+ characters).\n\
                  The file is saved in the download directory (--download-dir) under a\n\
                  safe name, never over another file, once all of it is verified.",
    },
    CommandSpec {
        name: "reject",
        aliases: &[],
        args: "<id>",
        summary: "decline a file offered to you",
        details: "The sender is told. <id> as shown with the offer.",
    },
    CommandSpec {
        name: "files",
        aliases: &[],
        args: "",
        summary: "list file transfers, their state and progress",
        details: "One row per transfer, newest first: state, id, name, size, direction,\n\
                  peer, and how much is done.",
    },
    CommandSpec {
        name: "cancel",
        aliases: &[],
        args: "<id>",
        summary: "give up a file transfer, either way",
        details: "The peer is told; a partial download is deleted.",
    },
    CommandSpec {
        name: "help",
        aliases: &[],
        args: "[command]",
        summary: "list commands, or explain one",
        details: "/help alone lists every command; /help <command> explains one.",
    },
    CommandSpec {
        name: "quit",
        aliases: &["exit"],
        args: "",
        summary: "leave natter",
        details: "Unsent messages stay in the outbox and are sent next time.",
    },
];

/// Finds a command by name or alias, case-insensitively, with or without
/// the leading slash.
pub fn find_command(name: &str) -> Option<&'static CommandSpec> {
    let name = name.strip_prefix('/').unwrap_or(name);
    COMMANDS.iter().find(|spec| {
        spec.name.eq_ignore_ascii_case(name)
            || spec.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// A `host:port` given to `/connect`. The host is a name, an IPv4 address,
/// or an IPv6 address (stored without brackets, possibly with a `%zone`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// The host as an IP address, if it is one (a zone suffix is ignored).
    pub fn ip(&self) -> Option<IpAddr> {
        let addr = self.host.split('%').next().unwrap_or(&self.host);
        addr.parse().ok()
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A parsed input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Text for the current room, as typed.
    Say(String),
    /// `/msg <peer> <text>`: the text is kept verbatim.
    Msg { peer: String, text: String },
    /// `/trust <peer> [fingerprint]`: the fingerprint, if given, is
    /// normalised (spaces and dashes removed, upper case).
    Trust {
        peer: String,
        fingerprint: Option<String>,
    },
    /// `/untrust <peer>`.
    Untrust { peer: String },
    /// `/verify <peer>`.
    Verify { peer: String },
    /// `/peers`.
    Peers,
    /// `/history [#room|peer] [n]`; `None` means the current room / the
    /// default count.
    History {
        peer: Option<String>,
        room: Option<String>,
        limit: Option<u32>,
    },
    /// `/search [#room] <words>`: the words as typed, trimmed.
    Search { room: Option<String>, query: String },
    /// `/join <#room>`: the canonical room name.
    Join { room: String },
    /// `/leave [#room]`.
    Leave { room: Option<String> },
    /// `/room <#room>`.
    Room { room: String },
    /// `/rooms`.
    Rooms,
    /// `/who [#room]`.
    Who { room: Option<String> },
    /// `/info <message id>`: hex digits.
    Info { id: String },
    /// `/create <+room>`: the label, `+name`.
    Create { room: String },
    /// `/invite <peer> [+room]`.
    Invite { peer: String, room: Option<String> },
    /// `/kick <peer> [+room]`.
    Kick { peer: String, room: Option<String> },
    /// `/nick <name>`.
    Nick { name: String },
    /// `/connect <host:port>`.
    Connect { addr: HostPort },
    /// `/connect <ticket>`.
    ConnectTicket { ticket: natter_core::wire::Ticket },
    /// `/ticket`.
    Ticket,
    /// `/wan [on|off]`.
    Wan { on: Option<bool> },
    /// `/send <peer> <path>`: the path as typed (the rest of the line).
    Send { peer: String, path: String },
    /// `/accept <id>`.
    Accept { id: String },
    /// `/reject <id>`.
    Reject { id: String },
    /// `/files`.
    Files,
    /// `/cancel <id>`.
    Cancel { id: String },
    /// `/help [command]`: the topic is the canonical command name.
    Help { topic: Option<&'static str> },
    /// `/quit` or `/exit`.
    Quit,
}

/// Why a line could not be parsed. Every message is one line of
/// explanation, followed (when a command was recognised) by its usage line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("missing argument {arg}\nusage: {usage}")]
    MissingArgument { arg: &'static str, usage: String },
    #[error("unexpected argument \"{found}\"\nusage: {usage}")]
    UnexpectedArgument { found: String, usage: String },
    #[error("invalid {arg}: {reason}\nusage: {usage}")]
    InvalidArgument {
        arg: &'static str,
        reason: String,
        usage: String,
    },
    #[error(
        "unknown command \"/{name}\"{} (type /help for the list of commands)\n\
         to send text that starts with /, begin the line with //",
        .suggestion.map(|s| format!(": did you mean /{s}?")).unwrap_or_default()
    )]
    UnknownCommand {
        name: String,
        suggestion: Option<&'static str>,
    },
    #[error(
        "empty command name (type /help for the list of commands)\n\
         to send text that starts with /, begin the line with //"
    )]
    EmptyCommand,
}

impl ParseError {
    /// The usage line of the command concerned, if any.
    pub fn usage(&self) -> Option<&str> {
        match self {
            ParseError::MissingArgument { usage, .. }
            | ParseError::UnexpectedArgument { usage, .. }
            | ParseError::InvalidArgument { usage, .. } => Some(usage),
            ParseError::UnknownCommand { .. } | ParseError::EmptyCommand => None,
        }
    }
}

/// Parses one input line. `Ok(None)` for an empty or all-whitespace line.
/// A trailing `\n` / `\r\n` is ignored.
pub fn parse(line: &str) -> Result<Option<Command>, ParseError> {
    let line = line.trim_end_matches(['\n', '\r']);
    if line.trim().is_empty() {
        return Ok(None);
    }
    if let Some(rest) = line.strip_prefix("//") {
        return Ok(Some(Command::Say(format!("/{rest}"))));
    }
    let Some(body) = line.strip_prefix('/') else {
        return Ok(Some(Command::Say(line.to_owned())));
    };
    if body.is_empty() || body.starts_with(char::is_whitespace) {
        return Err(ParseError::EmptyCommand);
    }
    let (name, rest) = split_word(body);
    let Some(spec) = find_command(name) else {
        return Err(unknown_command(name));
    };
    parse_args(spec, rest).map(Some)
}

fn parse_args(spec: &'static CommandSpec, rest: &str) -> Result<Command, ParseError> {
    let usage = || spec.usage();
    let missing = |arg| ParseError::MissingArgument {
        arg,
        usage: usage(),
    };
    let unexpected = |found: &str| ParseError::UnexpectedArgument {
        found: echo(found),
        usage: usage(),
    };
    let words: Vec<&str> = rest.split_whitespace().collect();
    match spec.name {
        "msg" => {
            let (peer, text) = split_word(rest);
            if peer.is_empty() {
                return Err(missing("<peer>"));
            }
            let text = text.trim_start();
            if text.is_empty() {
                return Err(missing("<text>"));
            }
            Ok(Command::Msg {
                peer: peer.to_owned(),
                text: text.to_owned(),
            })
        }
        "trust" => {
            let (peer, fp) = split_word(rest);
            if peer.is_empty() {
                return Err(missing("<peer>"));
            }
            let fingerprint = if fp.trim().is_empty() {
                None
            } else {
                Some(
                    normalise_fingerprint(fp).map_err(|reason| ParseError::InvalidArgument {
                        arg: "[fingerprint]",
                        reason,
                        usage: usage(),
                    })?,
                )
            };
            Ok(Command::Trust {
                peer: peer.to_owned(),
                fingerprint,
            })
        }
        "untrust" | "verify" => match words.as_slice() {
            [] => Err(missing("<peer>")),
            [peer] => {
                let peer = (*peer).to_owned();
                Ok(if spec.name == "untrust" {
                    Command::Untrust { peer }
                } else {
                    Command::Verify { peer }
                })
            }
            [_, extra, ..] => Err(unexpected(extra)),
        },
        "wan" => match words.as_slice() {
            [] => Ok(Command::Wan { on: None }),
            ["on"] => Ok(Command::Wan { on: Some(true) }),
            ["off"] => Ok(Command::Wan { on: Some(false) }),
            [other] => Err(ParseError::InvalidArgument {
                arg: "[on|off]",
                reason: format!("\"{}\" is neither on nor off", echo(other)),
                usage: usage(),
            }),
            [_, extra, ..] => Err(unexpected(extra)),
        },
        "peers" | "quit" | "files" | "rooms" | "ticket" => match words.first() {
            None => Ok(match spec.name {
                "ticket" => Command::Ticket,
                "peers" => Command::Peers,
                "files" => Command::Files,
                "rooms" => Command::Rooms,
                _ => Command::Quit,
            }),
            Some(extra) => Err(unexpected(extra)),
        },
        "join" | "room" | "leave" | "who" | "create" => {
            let arg = match spec.name {
                "leave" | "who" => "[room]",
                "create" => "<+room>",
                "join" => "<#room>",
                _ => "<room>",
            };
            let invalid = |reason: String| ParseError::InvalidArgument {
                arg,
                reason,
                usage: usage(),
            };
            let room = match words.as_slice() {
                [] if matches!(spec.name, "leave" | "who") => None,
                [] => return Err(missing(arg)),
                [room] if spec.name == "create" => {
                    let r = room.strip_prefix('+').unwrap_or(room);
                    Some(room_label(&format!("+{r}")).map_err(|e| invalid(e.to_string()))?)
                }
                [room] => Some(room_label(room).map_err(|e| invalid(e.to_string()))?),
                [_, extra, ..] => return Err(unexpected(extra)),
            };
            match (spec.name, room) {
                ("join", Some(room)) if room.starts_with('+') => Err(invalid(
                    "an invite-only room is joined when its founder invites you".into(),
                )),
                ("join", Some(room)) => Ok(Command::Join { room }),
                ("create", Some(room)) => Ok(Command::Create { room }),
                ("room", Some(room)) => Ok(Command::Room { room }),
                ("leave", room) => Ok(Command::Leave { room }),
                (_, room) => Ok(Command::Who { room }),
            }
        }
        "invite" | "kick" => {
            let (peer, rest) = split_word(rest);
            if peer.is_empty() {
                return Err(missing("<peer>"));
            }
            let room = match rest.split_whitespace().collect::<Vec<_>>().as_slice() {
                [] => None,
                [room] if room.starts_with('+') => {
                    Some(room_label(room).map_err(|e| ParseError::InvalidArgument {
                        arg: "[+room]",
                        reason: e.to_string(),
                        usage: usage(),
                    })?)
                }
                [room] => {
                    return Err(ParseError::InvalidArgument {
                        arg: "[+room]",
                        reason: format!(
                            "only invite-only rooms (+name) have members to {}; got \"{}\"",
                            spec.name,
                            echo(room)
                        ),
                        usage: usage(),
                    })
                }
                [_, extra, ..] => return Err(unexpected(extra)),
            };
            let peer = peer.to_owned();
            Ok(if spec.name == "invite" {
                Command::Invite { peer, room }
            } else {
                Command::Kick { peer, room }
            })
        }
        "info" => match words.as_slice() {
            [] => Err(missing("<id>")),
            [id] if natter_core::chat::is_id_digits(id) => {
                Ok(Command::Info {
                    id: id.to_ascii_lowercase(),
                })
            }
            [id] => Err(ParseError::InvalidArgument {
                arg: "<id>",
                reason: format!(
                    "give a message's short id (4 to 20 hex digits, see /history) or its whole id (32), got \"{}\"",
                    echo(id)
                ),
                usage: usage(),
            }),
            [_, extra, ..] => Err(unexpected(extra)),
        },
        "send" => {
            let (peer, path) = split_word(rest);
            if peer.is_empty() {
                return Err(missing("<peer>"));
            }
            let path = path.trim();
            if path.is_empty() {
                return Err(missing("<path>"));
            }
            Ok(Command::Send {
                peer: peer.to_owned(),
                path: path.to_owned(),
            })
        }
        "accept" | "reject" | "cancel" => match words.as_slice() {
            [] => Err(missing("<id>")),
            [id] if id.len() >= 4 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                let id = (*id).to_owned();
                Ok(match spec.name {
                    "accept" => Command::Accept { id },
                    "reject" => Command::Reject { id },
                    _ => Command::Cancel { id },
                })
            }
            [id] => Err(ParseError::InvalidArgument {
                arg: "<id>",
                reason: format!(
                    "a transfer id is hex, at least 4 characters (see /files), got \"{}\"",
                    echo(id)
                ),
                usage: usage(),
            }),
            [_, extra, ..] => Err(unexpected(extra)),
        },
        "history" => {
            let bad_n = |given: &str| ParseError::InvalidArgument {
                arg: "[n]",
                reason: format!(
                    "expected a whole number from 1 to {MAX_HISTORY}, got \"{}\"",
                    echo(given)
                ),
                usage: usage(),
            };
            let parse_n = |s: &str| parse_count(s).ok_or_else(|| bad_n(s));
            let bad_room = |e: natter_core::chat::RoomNameError| ParseError::InvalidArgument {
                arg: "[room|peer]",
                reason: e.to_string(),
                usage: usage(),
            };
            // A room starts with '#' or '+'; a peer never does.
            let whose = |w: &str| -> Result<(Option<String>, Option<String>), ParseError> {
                if w.starts_with(['#', '+']) {
                    Ok((None, Some(room_label(w).map_err(bad_room)?)))
                } else {
                    Ok((Some(w.to_owned()), None))
                }
            };
            let (who, limit) = match words.as_slice() {
                [] => ((None, None), None),
                [one] if looks_numeric(one) => ((None, None), Some(parse_n(one)?)),
                [one] => (whose(one)?, None),
                [one, n] => (whose(one)?, Some(parse_n(n)?)),
                [_, _, extra, ..] => return Err(unexpected(extra)),
            };
            Ok(Command::History {
                peer: who.0,
                room: who.1,
                limit,
            })
        }
        "search" => {
            let (first, after) = split_word(rest);
            let (room, query) = if first.starts_with(['#', '+']) {
                let room = room_label(first).map_err(|e| ParseError::InvalidArgument {
                    arg: "[room]",
                    reason: e.to_string(),
                    usage: usage(),
                })?;
                (Some(room), after.trim())
            } else {
                (None, rest.trim())
            };
            if query.is_empty() {
                return Err(missing("<words>"));
            }
            Ok(Command::Search {
                room,
                query: query.to_owned(),
            })
        }
        "nick" => match words.as_slice() {
            [] => Err(missing("<name>")),
            [name] => {
                let invalid = |reason: String| ParseError::InvalidArgument {
                    arg: "<name>",
                    reason,
                    usage: usage(),
                };
                if name.len() > MAX_NICK_BYTES {
                    return Err(invalid(format!(
                        "at most {MAX_NICK_BYTES} bytes, got {}",
                        name.len()
                    )));
                }
                if sanitize_nick(name) != *name {
                    return Err(invalid(
                        "contains control or invisible characters".to_owned(),
                    ));
                }
                Ok(Command::Nick {
                    name: (*name).to_owned(),
                })
            }
            [_, extra, ..] => Err(ParseError::InvalidArgument {
                arg: "<name>",
                reason: format!(
                    "a nickname is one word (no spaces), unexpected \"{}\"",
                    echo(extra)
                ),
                usage: usage(),
            }),
        },
        "connect" => match words.as_slice() {
            [] => Err(missing("<host:port|ticket>")),
            [ticket] if natter_core::wire::Ticket::looks_like(ticket) => {
                natter_core::wire::Ticket::decode(ticket)
                    .map(|ticket| Command::ConnectTicket { ticket })
                    .map_err(|e| ParseError::InvalidArgument {
                        arg: "<ticket>",
                        reason: e.to_string(),
                        usage: usage(),
                    })
            }
            [addr] => parse_host_port(addr)
                .map(|addr| Command::Connect { addr })
                .map_err(|reason| ParseError::InvalidArgument {
                    arg: "<host:port>",
                    reason,
                    usage: usage(),
                }),
            [_, extra, ..] => Err(unexpected(extra)),
        },
        "help" => match words.as_slice() {
            [] => Ok(Command::Help { topic: None }),
            [topic] => match find_command(topic) {
                Some(found) => Ok(Command::Help {
                    topic: Some(found.name),
                }),
                None => Err(unknown_command(topic.strip_prefix('/').unwrap_or(topic))),
            },
            [_, extra, ..] => Err(unexpected(extra)),
        },
        // Every name in COMMANDS is handled above (a test checks this); a
        // table entry without a parser arm is reported, not panicked on.
        _ => Err(unknown_command(spec.name)),
    }
}

/// Splits off the first whitespace-separated word: returns the word and
/// everything after it (starting with the separating whitespace, if any).
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.char_indices().find(|(_, c)| c.is_whitespace()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// A single `/history` argument counts as `n` if it looks like a number,
/// including a signed one (so `-5` is reported as a bad count, not taken as
/// a peer name).
fn looks_numeric(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn parse_count(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = s.parse().ok()?;
    (1..=MAX_HISTORY).contains(&n).then_some(n)
}

/// Removes spaces and dashes, upper-cases, and checks that what is left
/// is letters and digits.
fn normalise_fingerprint(s: &str) -> Result<String, String> {
    let fp: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_uppercase();
    if fp.is_empty() {
        return Err("empty fingerprint".to_owned());
    }
    if let Some(bad) = fp.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(format!(
            "a fingerprint has only letters and digits (groups may be separated by spaces or dashes), found \"{}\"",
            echo(&bad.to_string())
        ));
    }
    Ok(fp)
}

/// Parses `host:port`, `[ipv6]:port` or `[ipv6%zone]:port`.
pub fn parse_host_port(s: &str) -> Result<HostPort, String> {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return Err("missing ] after the IPv6 address".to_owned());
        };
        let Some(port) = after.strip_prefix(':') else {
            return Err("expected :port after ]".to_owned());
        };
        let (ip, zone) = match addr.split_once('%') {
            Some((ip, zone)) => (ip, Some(zone)),
            None => (addr, None),
        };
        if ip.parse::<Ipv6Addr>().is_err() {
            return Err(format!("\"{}\" is not an IPv6 address", echo(ip)));
        }
        if let Some(zone) = zone {
            let ok = !zone.is_empty()
                && zone.len() <= 64
                && zone
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
            if !ok {
                return Err(format!("\"{}\" is not an interface name", echo(zone)));
            }
        }
        (addr, port)
    } else {
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err("expected host:port, e.g. 192.168.1.20:47475".to_owned());
        };
        if host.contains(':') {
            return Err("put an IPv6 address in brackets, e.g. [::1]:47475".to_owned());
        }
        if host.is_empty() {
            return Err("missing host before :port".to_owned());
        }
        if host.parse::<Ipv4Addr>().is_err() && !is_hostname(host) {
            return Err(format!(
                "\"{}\" is not a host name or IP address",
                echo(host)
            ));
        }
        (host, port)
    };
    if port.is_empty() {
        return Err("missing port after :".to_owned());
    }
    let port = match port.parse::<u16>() {
        Ok(p) if port.bytes().all(|b| b.is_ascii_digit()) => p,
        _ => {
            return Err(format!(
                "port must be a number from 1 to 65535, got \"{}\"",
                echo(port)
            ))
        }
    };
    if port == 0 {
        return Err("port must be a number from 1 to 65535, got 0".to_owned());
    }
    Ok(HostPort {
        host: host.to_owned(),
        port,
    })
}

/// Host-name syntax: dot-separated labels of letters, digits, `-` and `_`,
/// each 1 to 63 bytes, 253 bytes in all; a trailing dot is allowed.
fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Makes user input safe and short enough to quote back in an error.
fn echo(s: &str) -> String {
    let clean = sanitize_line(s);
    if clean.chars().count() > MAX_ECHO_CHARS {
        let mut cut: String = clean.chars().take(MAX_ECHO_CHARS).collect();
        cut.push('…');
        cut
    } else {
        clean
    }
}

fn unknown_command(name: &str) -> ParseError {
    ParseError::UnknownCommand {
        name: echo(name),
        suggestion: suggest(name),
    }
}

/// The command (or alias, reported by its canonical name) closest to `name`
/// by edit distance, if close enough to be a likely typo, or one that
/// `name` is a prefix of.
pub fn suggest(name: &str) -> Option<&'static str> {
    // Bound the work on absurdly long input; no command name is this long.
    let name: String = name.chars().take(32).flat_map(char::to_lowercase).collect();
    if name.is_empty() {
        return None;
    }
    let mut best: Option<(usize, &'static str)> = None;
    for spec in COMMANDS {
        for candidate in std::iter::once(&spec.name).chain(spec.aliases) {
            let d = if candidate.starts_with(name.as_str()) {
                0
            } else {
                edit_distance(&name, candidate)
            };
            if best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, spec.name));
            }
        }
    }
    let limit = if name.chars().count() <= 3 { 1 } else { 2 };
    best.filter(|(d, _)| *d <= limit).map(|(_, n)| n)
}

/// Edit distance over chars counting insertions, deletions, substitutions
/// and swaps of two neighbours (optimal string alignment), so `/mgs` is one
/// typo away from `/msg`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j]
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

/// The `/help` overview: one line per command, then how plain text works.
/// Also suitable as the `after_help` of `natter --help`.
pub fn help_overview() -> String {
    let width = COMMANDS
        .iter()
        .map(|s| s.usage().chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::from("Commands:\n");
    for spec in COMMANDS {
        let usage = spec.usage();
        out.push_str(&format!("  {usage:<width$}  {}", spec.summary));
        if !spec.aliases.is_empty() {
            let aliases: Vec<String> = spec.aliases.iter().map(|a| format!("/{a}")).collect();
            out.push_str(&format!(" (also {})", aliases.join(", ")));
        }
        out.push('\n');
    }
    out.push_str(
        "Anything else you type goes to the current room (the prompt shows it).\n\
         To send text that starts with /, begin the line with // (one / is removed).\n\
         Type /help <command> for details.",
    );
    out
}

/// Help for one command (name or alias, with or without the slash).
pub fn help_for(name: &str) -> Option<String> {
    let spec = find_command(name)?;
    let mut out = format!("usage: {}\n{}.", spec.usage(), capitalise(spec.summary));
    if !spec.aliases.is_empty() {
        let aliases: Vec<String> = spec.aliases.iter().map(|a| format!("/{a}")).collect();
        out.push_str(&format!(" Also: {}.", aliases.join(", ")));
    }
    out.push('\n');
    out.push_str(spec.details);
    Some(out)
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::testutil::{random_line, Rng};

    fn ok(line: &str) -> Command {
        match parse(line) {
            Ok(Some(cmd)) => cmd,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn err(line: &str) -> ParseError {
        match parse(line) {
            Err(e) => e,
            other => panic!("{line:?} should fail, gave {other:?}"),
        }
    }

    fn peer(s: &str) -> String {
        s.to_owned()
    }

    #[test]
    fn empty_lines_are_nothing() {
        for line in ["", " ", "\t  ", "\n", "\r\n", "   \u{3000}"] {
            assert_eq!(parse(line), Ok(None), "{line:?}");
        }
    }

    #[test]
    fn plain_text_is_said_verbatim() {
        assert_eq!(ok("hello world"), Command::Say("hello world".into()));
        assert_eq!(
            ok("  two  spaces  "),
            Command::Say("  two  spaces  ".into())
        );
        assert_eq!(ok("hi\r\n"), Command::Say("hi".into()));
        assert_eq!(ok("a/b"), Command::Say("a/b".into()));
    }

    #[test]
    fn double_slash_escapes() {
        assert_eq!(ok("//shrug"), Command::Say("/shrug".into()));
        assert_eq!(ok("//msg bob hi"), Command::Say("/msg bob hi".into()));
        assert_eq!(ok("//"), Command::Say("/".into()));
        assert_eq!(ok("///x"), Command::Say("//x".into()));
    }

    #[test]
    fn msg_keeps_text_verbatim() {
        assert_eq!(
            ok("/msg bob hello"),
            Command::Msg {
                peer: peer("bob"),
                text: "hello".into()
            }
        );
        assert_eq!(
            ok("/msg   bob   two  inner   spaces "),
            Command::Msg {
                peer: peer("bob"),
                text: "two  inner   spaces ".into()
            }
        );
        assert_eq!(
            ok("/MSG bob /not a command"),
            Command::Msg {
                peer: peer("bob"),
                text: "/not a command".into()
            }
        );
        assert_eq!(
            ok("/msg K3QF hi"),
            Command::Msg {
                peer: peer("K3QF"),
                text: "hi".into()
            }
        );
    }

    #[test]
    fn msg_errors() {
        let e = err("/msg");
        assert_eq!(
            e,
            ParseError::MissingArgument {
                arg: "<peer>",
                usage: "/msg <peer> <text>".into()
            }
        );
        let e = err("/msg bob");
        assert_eq!(
            e.to_string(),
            "missing argument <text>\nusage: /msg <peer> <text>"
        );
        assert_eq!(
            err("/msg bob    ").to_string(),
            "missing argument <text>\nusage: /msg <peer> <text>"
        );
        assert_eq!(e.usage(), Some("/msg <peer> <text>"));
    }

    #[test]
    fn trust() {
        assert_eq!(
            ok("/trust alice"),
            Command::Trust {
                peer: peer("alice"),
                fingerprint: None
            }
        );
        assert_eq!(
            ok("/trust alice  "),
            Command::Trust {
                peer: peer("alice"),
                fingerprint: None
            }
        );
        assert_eq!(
            ok("/trust alice abcd efgh-IJKL  2345"),
            Command::Trust {
                peer: peer("alice"),
                fingerprint: Some("ABCDEFGHIJKL2345".into())
            }
        );
        assert_eq!(
            ok("/trust alice ABCD-EFGH"),
            Command::Trust {
                peer: peer("alice"),
                fingerprint: Some("ABCDEFGH".into())
            }
        );
        assert!(matches!(
            err("/trust"),
            ParseError::MissingArgument { arg: "<peer>", .. }
        ));
        let e = err("/trust alice ab!d");
        assert!(
            matches!(
                e,
                ParseError::InvalidArgument {
                    arg: "[fingerprint]",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e
            .to_string()
            .ends_with("\nusage: /trust <peer> [fingerprint]"));
        assert!(matches!(
            err("/trust alice - -"),
            ParseError::InvalidArgument { .. }
        ));
    }

    #[test]
    fn untrust_verify_peers_quit() {
        assert_eq!(ok("/untrust bob"), Command::Untrust { peer: peer("bob") });
        assert_eq!(ok("/verify bob"), Command::Verify { peer: peer("bob") });
        assert_eq!(ok("/peers"), Command::Peers);
        assert_eq!(ok("/peers   "), Command::Peers);
        assert_eq!(ok("/quit"), Command::Quit);
        assert_eq!(ok("/exit"), Command::Quit);
        assert_eq!(ok("/Exit"), Command::Quit);
        assert_eq!(
            err("/untrust").to_string(),
            "missing argument <peer>\nusage: /untrust <peer>"
        );
        assert_eq!(
            err("/verify").to_string(),
            "missing argument <peer>\nusage: /verify <peer>"
        );
        assert_eq!(
            err("/verify a b").to_string(),
            "unexpected argument \"b\"\nusage: /verify <peer>"
        );
        assert_eq!(
            err("/untrust a b").to_string(),
            "unexpected argument \"b\"\nusage: /untrust <peer>"
        );
        assert_eq!(
            err("/peers all").to_string(),
            "unexpected argument \"all\"\nusage: /peers"
        );
        assert_eq!(
            err("/quit now").to_string(),
            "unexpected argument \"now\"\nusage: /quit"
        );
    }

    #[test]
    fn history() {
        assert_eq!(
            ok("/history"),
            Command::History {
                peer: None,
                room: None,
                limit: None
            }
        );
        assert_eq!(
            ok("/history 50"),
            Command::History {
                peer: None,
                room: None,
                limit: Some(50)
            }
        );
        assert_eq!(
            ok("/history bob"),
            Command::History {
                peer: Some(peer("bob")),
                room: None,
                limit: None
            }
        );
        assert_eq!(
            ok("/history bob 10000"),
            Command::History {
                peer: Some(peer("bob")),
                room: None,
                limit: Some(10000)
            }
        );
        assert_eq!(
            ok("/history 1"),
            Command::History {
                peer: None,
                room: None,
                limit: Some(1)
            }
        );
        assert_eq!(
            ok("/history b0b"),
            Command::History {
                peer: Some(peer("b0b")),
                room: None,
                limit: None
            }
        );
        assert_eq!(
            ok("/history #Ops 5"),
            Command::History {
                peer: None,
                room: Some("#ops".into()),
                limit: Some(5)
            }
        );
        assert!(matches!(
            err("/history #no!such"),
            ParseError::InvalidArgument { .. }
        ));
    }

    #[test]
    fn room_commands() {
        assert_eq!(
            ok("/join #Ops"),
            Command::Join {
                room: "#ops".into()
            }
        );
        assert_eq!(
            ok("/join ops"),
            Command::Join {
                room: "#ops".into()
            }
        );
        assert_eq!(
            ok("/room #dev"),
            Command::Room {
                room: "#dev".into()
            }
        );
        assert_eq!(ok("/leave"), Command::Leave { room: None });
        assert_eq!(
            ok("/part #dev"),
            Command::Leave {
                room: Some("#dev".into())
            }
        );
        assert_eq!(ok("/who"), Command::Who { room: None });
        assert_eq!(ok("/rooms"), Command::Rooms);
        assert_eq!(
            ok("/info A1B2c3"),
            Command::Info {
                id: "a1b2c3".into()
            }
        );
        assert_eq!(
            ok("/search #ops disk full"),
            Command::Search {
                room: Some("#ops".into()),
                query: "disk full".into()
            }
        );
        assert!(matches!(err("/join"), ParseError::MissingArgument { .. }));
        assert!(matches!(err("/room"), ParseError::MissingArgument { .. }));
        assert!(matches!(
            err("/join #оps"),
            ParseError::InvalidArgument { .. }
        ));
        assert!(matches!(
            err("/info xyz1"),
            ParseError::InvalidArgument { .. }
        ));
        // A short id is at most 20 digits; a whole id is 32.
        assert!(matches!(
            err(&format!("/info {}", "a".repeat(21))),
            ParseError::InvalidArgument { .. }
        ));
        assert_eq!(
            ok(&format!("/info {}", "A".repeat(32))),
            Command::Info { id: "a".repeat(32) }
        );
        assert!(matches!(
            err("/search #ops"),
            ParseError::MissingArgument { .. }
        ));
        assert!(matches!(
            err("/join a b"),
            ParseError::UnexpectedArgument { .. }
        ));
        assert_eq!(
            ok("/create team"),
            Command::Create {
                room: "+team".into()
            }
        );
        assert_eq!(
            ok("/create +Team"),
            Command::Create {
                room: "+team".into()
            }
        );
        assert_eq!(
            ok("/room +team"),
            Command::Room {
                room: "+team".into()
            }
        );
        assert_eq!(
            ok("/invite bob +team"),
            Command::Invite {
                peer: "bob".into(),
                room: Some("+team".into())
            }
        );
        // Which of several rooms called +team, by its founder.
        assert_eq!(
            ok("/room +Team#abcd-efgh"),
            Command::Room {
                room: "+team#ABCD-EFGH".into()
            }
        );
        assert_eq!(
            ok("/invite bob +team#abcde"),
            Command::Invite {
                peer: "bob".into(),
                room: Some("+team#ABCD-E".into())
            }
        );
        for bad in ["/room +team#ab", "/room +team#abc1", "/room +team#"] {
            assert!(
                matches!(err(bad), ParseError::InvalidArgument { .. }),
                "{bad}"
            );
        }
        assert_eq!(
            ok("/kick bob"),
            Command::Kick {
                peer: "bob".into(),
                room: None
            }
        );
        assert!(matches!(
            err("/invite bob #ops"),
            ParseError::InvalidArgument { .. }
        ));
        assert!(matches!(
            err("/join +team"),
            ParseError::InvalidArgument { .. }
        ));
        assert!(matches!(err("/kick"), ParseError::MissingArgument { .. }));
    }

    #[test]
    fn history_errors() {
        for bad in ["0", "10001", "99999999999999999999999", "-5", "+5"] {
            let e = err(&format!("/history {bad}"));
            assert!(
                matches!(e, ParseError::InvalidArgument { arg: "[n]", .. }),
                "{bad}: {e:?}"
            );
            assert!(e.to_string().ends_with("\nusage: /history [room|peer] [n]"));
        }
        for bad in ["bob 0", "bob ten", "bob 10001", "bob 1.5", "bob ５"] {
            let e = err(&format!("/history {bad}"));
            assert!(
                matches!(e, ParseError::InvalidArgument { arg: "[n]", .. }),
                "{bad}: {e:?}"
            );
        }
        assert_eq!(
            err("/history bob 5 x").to_string(),
            "unexpected argument \"x\"\nusage: /history [room|peer] [n]"
        );
    }

    #[test]
    fn search_and_nick() {
        assert_eq!(
            ok("/search  lunch  plans "),
            Command::Search {
                room: None,
                query: "lunch  plans".into()
            }
        );
        assert_eq!(
            err("/search").to_string(),
            "missing argument <words>\nusage: /search [room] <words>"
        );
        assert_eq!(
            err("/search   ").to_string(),
            "missing argument <words>\nusage: /search [room] <words>"
        );
        assert_eq!(
            ok("/nick zoë"),
            Command::Nick {
                name: "zoë".into()
            }
        );
        assert_eq!(
            err("/nick").to_string(),
            "missing argument <name>\nusage: /nick <name>"
        );
        assert!(matches!(
            err("/nick two words"),
            ParseError::InvalidArgument { arg: "<name>", .. }
        ));
        let long = "é".repeat(17); // 34 bytes
        assert!(matches!(
            err(&format!("/nick {long}")),
            ParseError::InvalidArgument { arg: "<name>", .. }
        ));
        assert_eq!(
            ok(&format!("/nick {}", "é".repeat(16))),
            Command::Nick {
                name: "é".repeat(16)
            }
        );
        for hostile in [
            "/nick a\u{1b}[31m",
            "/nick a\u{202e}b",
            "/nick a\u{200d}b",
            "/nick a\u{0}b",
        ] {
            assert!(
                matches!(
                    err(hostile),
                    ParseError::InvalidArgument { arg: "<name>", .. }
                ),
                "{hostile:?}"
            );
        }
    }

    #[test]
    fn connect() {
        let c = |s: &str| match ok(&format!("/connect {s}")) {
            Command::Connect { addr } => addr,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            c("192.168.1.20:47474"),
            HostPort {
                host: "192.168.1.20".into(),
                port: 47474
            }
        );
        assert_eq!(
            c("laptop.local:1"),
            HostPort {
                host: "laptop.local".into(),
                port: 1
            }
        );
        assert_eq!(
            c("[::1]:4000"),
            HostPort {
                host: "::1".into(),
                port: 4000
            }
        );
        assert_eq!(
            c("[fe80::1%eth0]:65535"),
            HostPort {
                host: "fe80::1%eth0".into(),
                port: 65535
            }
        );
        assert_eq!(c("[::1]:4000").to_string(), "[::1]:4000");
        assert_eq!(c("host:80").to_string(), "host:80");
        assert_eq!(c("[::1]:4000").ip(), Some("::1".parse().unwrap()));
        assert_eq!(
            c("[fe80::1%eth0]:4000").ip(),
            Some("fe80::1".parse().unwrap())
        );
        assert_eq!(c("10.0.0.1:4000").ip(), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(c("laptop:4000").ip(), None);
    }

    #[test]
    fn connect_errors() {
        assert_eq!(
            err("/connect").to_string(),
            "missing argument <host:port|ticket>\nusage: /connect <host:port|ticket>"
        );
        for bad in [
            "host",
            "host:",
            ":4000",
            "host:0",
            "host:65536",
            "host:-1",
            "host:+80",
            "host:http",
            "::1:4000",
            "[::1]4000",
            "[::1:4000",
            "[::1]:",
            "[nothost]:4000",
            "[::1%]:4000",
            "[::1%et/h]:4000",
            "bad_host!:80",
            "-lead.example:80",
            "a..b:80",
        ] {
            let e = err(&format!("/connect {bad}"));
            assert!(
                matches!(
                    e,
                    ParseError::InvalidArgument {
                        arg: "<host:port>",
                        ..
                    }
                ),
                "{bad}: {e:?}"
            );
            assert!(
                e.to_string()
                    .ends_with("\nusage: /connect <host:port|ticket>"),
                "{bad}"
            );
        }
        assert!(matches!(
            err("/connect a:1 b:2"),
            ParseError::UnexpectedArgument { .. }
        ));
        assert!(err("/connect ::1:4000").to_string().contains("brackets"));
    }

    #[test]
    fn help() {
        assert_eq!(ok("/help"), Command::Help { topic: None });
        assert_eq!(ok("/help msg"), Command::Help { topic: Some("msg") });
        assert_eq!(ok("/help /msg"), Command::Help { topic: Some("msg") });
        assert_eq!(
            ok("/help exit"),
            Command::Help {
                topic: Some("quit")
            }
        );
        let e = err("/help mgs");
        assert_eq!(
            e,
            ParseError::UnknownCommand {
                name: "mgs".into(),
                suggestion: Some("msg")
            }
        );
        assert!(matches!(
            err("/help a b"),
            ParseError::UnexpectedArgument { .. }
        ));
    }

    #[test]
    fn unknown_commands_suggest() {
        let e = err("/mgs bob hi");
        assert_eq!(
            e,
            ParseError::UnknownCommand {
                name: "mgs".into(),
                suggestion: Some("msg")
            }
        );
        let text = e.to_string();
        assert!(
            text.starts_with("unknown command \"/mgs\": did you mean /msg? (type /help"),
            "{text}"
        );
        assert!(text.contains("/help"));
        assert!(text.contains("//"));
        assert_eq!(
            err("/histroy"),
            ParseError::UnknownCommand {
                name: "histroy".into(),
                suggestion: Some("history")
            }
        );
        assert_eq!(
            err("/hist"),
            ParseError::UnknownCommand {
                name: "hist".into(),
                suggestion: Some("history")
            }
        );
        assert_eq!(
            err("/exti"),
            ParseError::UnknownCommand {
                name: "exti".into(),
                suggestion: Some("quit")
            }
        );
        assert_eq!(
            err("/serach x"),
            ParseError::UnknownCommand {
                name: "serach".into(),
                suggestion: Some("search")
            }
        );
        let e = err("/shrug");
        assert_eq!(
            e,
            ParseError::UnknownCommand {
                name: "shrug".into(),
                suggestion: None
            }
        );
        assert!(!e.to_string().contains("did you mean"));
        assert_eq!(err("/"), ParseError::EmptyCommand);
        assert_eq!(err("/ hello"), ParseError::EmptyCommand);
    }

    #[test]
    fn unknown_command_echo_is_sanitised_and_short() {
        let e = err(&format!("/\u{1b}]0;pwned\u{7}{}", "x".repeat(1000)));
        let text = e.to_string();
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        assert!(text.chars().count() < 300, "{}", text.len());
    }

    #[test]
    fn every_error_has_one_explanation_line_and_usage() {
        for line in [
            "/msg",
            "/msg a",
            "/trust",
            "/history 0",
            "/connect x",
            "/nick a b",
            "/peers x",
        ] {
            let text = err(line).to_string();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 2, "{line}: {text}");
            assert!(lines[1].starts_with("usage: /"), "{line}: {text}");
        }
    }

    #[test]
    fn file_commands_parse_and_explain_mistakes() {
        assert_eq!(
            parse("/send bob  my files/a b.txt ").unwrap(),
            Some(Command::Send {
                peer: "bob".into(),
                path: "my files/a b.txt".into()
            })
        );
        assert_eq!(
            parse("/accept 1a2B").unwrap(),
            Some(Command::Accept { id: "1a2B".into() })
        );
        assert_eq!(parse("/files").unwrap(), Some(Command::Files));
        for bad in [
            "/send",
            "/send bob",
            "/accept",
            "/accept xyz!",
            "/accept 12",
            "/cancel 1234 5",
            "/files x",
        ] {
            let text = parse(bad).unwrap_err().to_string();
            assert!(text.contains("usage: /"), "{bad}: {text}");
        }
    }

    #[test]
    fn every_table_entry_parses() {
        for spec in COMMANDS {
            for name in std::iter::once(&spec.name).chain(spec.aliases) {
                // Fill each placeholder with a plausible value.
                let args: Vec<&str> = spec
                    .args
                    .split_whitespace()
                    .map(|a| match a {
                        "<host:port>" | "<host:port|ticket>" => "host:1",
                        "[on|off]" => "on",
                        "[n]" => "5",
                        "[command]" => "msg",
                        "[fingerprint]" => "ABCD",
                        "<id>" => "abcd1234",
                        "<#room>" | "<room>" | "[room]" | "[room|peer]" => "#ops",
                        "<+room>" => "+team",
                        "[+room]" => "+team",
                        _ => "x",
                    })
                    .collect();
                let line = format!("/{name} {}", args.join(" "));
                assert!(
                    matches!(parse(&line), Ok(Some(_))),
                    "{line}: {:?}",
                    parse(&line)
                );
            }
        }
    }

    #[test]
    fn help_is_driven_by_the_table() {
        let overview = help_overview();
        for spec in COMMANDS {
            assert!(overview.contains(&spec.usage()), "{}", spec.name);
            assert!(overview.contains(spec.summary), "{}", spec.name);
            let detail = help_for(spec.name).unwrap();
            assert!(detail.starts_with(&format!("usage: {}\n", spec.usage())));
            assert!(detail.contains(spec.details));
            assert_eq!(
                help_for(&format!("/{}", spec.name.to_uppercase())),
                Some(detail)
            );
        }
        assert!(overview.contains("(also /exit)"));
        assert_eq!(help_for("exit"), help_for("quit"));
        assert_eq!(help_for("nope"), None);
        assert!(overview.contains("//"));
    }

    #[test]
    fn edit_distance_works() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("msg", "msg"), 0);
        assert_eq!(edit_distance("mgs", "msg"), 1);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("abc", ""), 3);
    }

    #[test]
    fn parse_never_panics() {
        let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
        for _ in 0..5000 {
            let line = random_line(&mut rng);
            if let Err(e) = parse(&line) {
                let text = e.to_string();
                assert!(!text.contains('\u{1b}'), "{line:?} -> {text:?}");
                assert!(text.lines().count() <= 2, "{text}");
            }
        }
        let long = format!("/msg bob {}", "a ".repeat(500_000));
        assert!(matches!(parse(&long), Ok(Some(Command::Msg { .. }))));
        let long_cmd = format!("/{}", "z".repeat(1_000_000));
        assert!(matches!(
            parse(&long_cmd),
            Err(ParseError::UnknownCommand { .. })
        ));
    }
}
