//! `--json`: every event as one JSON object on one line, tagged by
//! `"event"`. Scripts rely on these names; keep them stable. Keys and
//! message ids are lowercase hex, fingerprints grouped, addresses
//! `host:port`, texts and nicknames exactly as received (untrusted: a
//! consumer that prints them must sanitise them).

use natter_core::chat::{Conversation, MessageView};
use natter_core::event::{ChatLine, Event, MembershipChange, PeerInfo, TransferView};
use natter_core::identity::IdentityKey;
use natter_core::link::Direction;
use natter_core::trust::TrustState;

use super::frontend::Reply;
use serde_json::{json, Map, Value};

pub use natter_core::hex;

fn trust(t: TrustState) -> &'static str {
    match t {
        TrustState::Verified => "verified",
        TrustState::Unverified => "unverified",
        TrustState::KeyChanged => "key_changed",
        TrustState::Local => "local",
    }
}

/// `"public"` for the default room (what it was called before rooms),
/// `"room"` for other rooms (see the `room` field), the peer's key in hex
/// for a direct conversation.
fn conversation(c: &Conversation) -> String {
    match c {
        Conversation::Room(r) if *r == natter_core::chat::default_room() => "public".into(),
        Conversation::Room(_) => "room".into(),
        Conversation::Direct(peer) => hex(&peer.0),
    }
}

/// A room message's room as `#name` (`null` for direct messages; the id
/// in hex for a room whose name is unknown).
fn room_field(l: &ChatLine) -> Value {
    match (&l.room, l.message.conversation) {
        (Some(name), _) => name.clone().into(),
        (None, Conversation::Room(id)) => hex(&id.0).into(),
        (None, Conversation::Direct(_)) => Value::Null,
    }
}

fn fingerprint(id: &IdentityKey) -> String {
    id.fingerprint().grouped()
}

/// A peer: identity, fingerprint, nickname, state, addr, trust.
/// A transfer as JSON: the same fields for every file event.
pub fn transfer(t: &TransferView) -> Value {
    json!({
        "transfer": hex(&t.id),
        "peer": peer(&t.peer),
        "direction": if t.outgoing { "out" } else { "in" },
        "name": t.name,
        "size": t.size,
        "blake3": hex(&t.root),
        "state": t.state.as_str(),
        "done": t.done,
        "path": t.path,
    })
}

/// `fields` merged into the transfer's object.
fn with_transfer(t: &TransferView, fields: Value) -> Value {
    let mut v = transfer(t);
    if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), fields) {
        obj.extend(extra);
    }
    v
}

pub fn peer(p: &PeerInfo) -> Value {
    json!({
        "identity": hex(&p.identity.0),
        "fingerprint": fingerprint(&p.identity),
        "nickname": p.nickname,
        "state": p.state.name(),
        "addr": p.addr.map(|a| a.to_string()),
        "trust": trust(p.trust),
        "path": p.path.map(|p| p.name()),
    })
}

fn message_fields(m: &MessageView, out: &mut Map<String, Value>) {
    out.insert("id".into(), hex(&m.id).into());
    out.insert("conversation".into(), conversation(&m.conversation).into());
    out.insert("author".into(), hex(&m.author.0).into());
    out.insert("timestamp_ms".into(), m.timestamp_ms.into());
    out.insert("text".into(), m.text.clone().into());
    out.insert("outgoing".into(), m.outgoing.into());
    out.insert("delivered".into(), m.delivered.into());
    out.insert("delivered_to".into(), m.delivered_to.into());
}

/// A chat message with its author's naming and trust.
pub fn chat_line(l: &ChatLine) -> Value {
    let mut out = Map::new();
    message_fields(&l.message, &mut out);
    out.insert("author_nick".into(), l.author_nick.clone().into());
    out.insert(
        "author_fingerprint".into(),
        fingerprint(&l.message.author).into(),
    );
    out.insert("trust".into(), trust(l.trust).into());
    out.insert("peer_nick".into(), json!(l.peer_nick));
    out.insert("nick_collides".into(), l.nick_collides.into());
    out.insert("room".into(), room_field(l));
    out.insert("calls_me".into(), l.calls_me.into());
    Value::Object(out)
}

fn lines(ls: &[ChatLine]) -> Vec<Value> {
    ls.iter().map(chat_line).collect()
}

/// The event's tag and its fields.
fn body(ev: &Event) -> (&'static str, Value) {
    match ev {
        Event::Started {
            identity,
            nickname,
            listen,
            beacon_targets,
            rooms,
        } => (
            "started",
            json!({
                "identity": hex(&identity.0),
                "fingerprint": fingerprint(identity),
                "nickname": nickname,
                "listen": listen.to_string(),
                "beacon_targets": beacon_targets.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "rooms": rooms,
            }),
        ),
        Event::PeerDiscovered { peer: p } => ("peer_discovered", json!({ "peer": peer(p) })),
        Event::PeerConnected { peer: p, direction } => (
            "peer_connected",
            json!({
                "peer": peer(p),
                "direction": match direction {
                    Direction::Inbound => "inbound",
                    Direction::Outbound => "outbound",
                },
            }),
        ),
        Event::PeerLost { peer: p, reason } => (
            "peer_lost",
            json!({ "peer": peer(p), "reason": reason.to_string() }),
        ),
        Event::PeerExpired { peer: p } => ("peer_expired", json!({ "peer": peer(p) })),
        Event::PeerRenamed { peer: p, old } => {
            ("peer_renamed", json!({ "peer": peer(p), "old": old }))
        }
        Event::LinkFailed { addr, reason } => (
            "link_failed",
            json!({ "addr": addr.to_string(), "reason": reason.to_string() }),
        ),
        Event::Peers { peers } => (
            "peers",
            json!({ "peers": peers.iter().map(peer).collect::<Vec<_>>() }),
        ),
        Event::MessageReceived { message } => {
            ("message_received", json!({ "message": chat_line(message) }))
        }
        Event::MessageSent { message } => {
            ("message_sent", json!({ "message": chat_line(message) }))
        }
        Event::MessageDelivered { id, peer: p } => (
            "message_delivered",
            json!({ "id": hex(id), "peer": peer(p) }),
        ),
        Event::MessageCollision { author, id, via } => (
            "message_collision",
            json!({ "author": peer(author), "id": hex(id), "via": peer(via) }),
        ),
        Event::EventsDropped { count } => ("events_dropped", json!({ "count": count })),
        Event::FileOffered { transfer: t } => ("file_offered", transfer(t)),
        Event::FileProgress { transfer: t } => ("file_progress", transfer(t)),
        Event::FileCompleted { transfer: t } => ("file_completed", transfer(t)),
        Event::FileFailed {
            transfer: t,
            reason,
        } => (
            "file_failed",
            with_transfer(t, json!({ "reason": reason.to_string() })),
        ),
        Event::FileRefused {
            peer: p,
            name,
            size,
            reason,
        } => (
            "file_failed",
            json!({
                "transfer": null,
                "peer": peer(p),
                "direction": "in",
                "name": name,
                "size": size,
                "state": "refused",
                "reason": reason.to_string(),
            }),
        ),
        Event::Files { transfers } => (
            "files",
            json!({ "transfers": transfers.iter().map(transfer).collect::<Vec<_>>() }),
        ),
        Event::OverQuota { author, via } => (
            "over_quota",
            json!({ "author": peer(author), "via": peer(via) }),
        ),
        Event::History {
            conversation: c,
            messages,
        } => (
            "history",
            json!({ "conversation": conversation(c), "messages": lines(messages) }),
        ),
        Event::RoomJoined { room } => ("room_joined", json!({ "room": room })),
        Event::RoomRenamed { old, new } => ("room_renamed", json!({ "old": old, "new": new })),
        Event::RoomLeft { room } => ("room_left", json!({ "room": room })),
        Event::RoomMembership { room, change } => {
            let (what, who) = match change {
                MembershipChange::YouJoined { founder } => ("you_joined", Some(peer(founder))),
                MembershipChange::Added(p) => ("added", Some(peer(p))),
                MembershipChange::Removed(p) => ("removed", Some(peer(p))),
                MembershipChange::YouWereRemoved => ("you_were_removed", None),
            };
            (
                "room_membership",
                json!({ "room": room, "change": what, "peer": who }),
            )
        }
        Event::Rooms { rooms, private } => (
            "rooms",
            json!({
                "rooms": rooms.iter().map(|r| json!({
                    "room": r.name,
                    "unread": r.unread,
                    "mentions": r.mentions,
                    "linked_members": r.linked_members,
                })).collect::<Vec<_>>(),
                "private": private.iter().map(|(p, n)| json!({
                    "peer": peer(p),
                    "unread": n,
                })).collect::<Vec<_>>(),
            }),
        ),
        Event::Who { room, members } => (
            "who",
            json!({
                "room": room,
                "members": members.iter().map(peer).collect::<Vec<_>>(),
            }),
        ),
        Event::MessageInfo {
            message,
            delivered_to,
            pending,
        } => (
            "message_info",
            json!({
                "message": chat_line(message),
                "delivered_to": delivered_to.iter().map(peer).collect::<Vec<_>>(),
                "pending": pending.iter().map(peer).collect::<Vec<_>>(),
            }),
        ),
        Event::SearchResults { query, messages } => (
            "search_results",
            json!({ "query": query, "messages": lines(messages) }),
        ),
        Event::Verify {
            peer: p,
            local,
            safety_number,
        } => (
            "verify",
            json!({
                "peer": peer(p),
                "local_fingerprint": fingerprint(local),
                "safety_number": safety_number,
            }),
        ),
        Event::TrustChanged { peer: p } => ("trust_changed", json!({ "peer": peer(p) })),
        Event::KeyWarning { peer: p, verified } => (
            "key_warning",
            json!({ "peer": peer(p), "verified": verified.iter().map(peer).collect::<Vec<_>>() }),
        ),
        Event::Data { from, len } => ("data", json!({ "from": hex(&from.0), "len": len })),
        Event::AlreadyConnected { addr } => (
            "info",
            json!({ "text": format!("already connected to {addr}") }),
        ),
        Event::Ticket { ticket } => ("ticket", json!({ "ticket": ticket })),
        Event::Wan { active, saved } => (
            "wan",
            json!({ "active": active, "saved": saved, "text": crate::ui::frontend::wan_text(*active, *saved) }),
        ),
        Event::Error { error } => ("error", json!({ "text": error.to_string() })),
        Event::Shutdown => ("shutdown", json!({})),
        Event::Marker(n) => ("marker", json!({ "n": n })),
    }
}

/// A front end's own answer, in the same shape as the node's info and
/// error events.
pub fn reply(r: &Reply) -> Value {
    match r {
        Reply::Info { text } => json!({ "event": "info", "text": text }),
        Reply::Error { text } => json!({ "event": "error", "text": text }),
    }
}

/// One event as a JSON object: `{"event": TAG, ...fields}`.
pub fn event(ev: &Event) -> Value {
    let (tag, fields) = body(ev);
    let mut out = Map::new();
    out.insert("event".into(), tag.into());
    if let Value::Object(f) = fields {
        out.extend(f);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::event::LinkState;
    use natter_core::identity::LocalIdentity;

    /// Every event name this file can print is in README's table of JSON
    /// events: scripts rely on that list.
    #[test]
    fn readme_lists_every_json_event() {
        let source = include_str!("json.rs");
        let readme = include_str!("../../README.md");
        let table = readme
            .split("## JSON events")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("README has a JSON events section");
        let body = source
            .split("fn body(")
            .nth(1)
            .and_then(|rest| rest.split("\n}\n").next())
            .expect("the body function");
        let mut names = Vec::new();
        // A tag opens a tuple: `("name",` or `(` and the name on the next line.
        let opened = body.split("(\"").skip(1);
        for part in opened.chain(body.split("(\n            \"").skip(1)) {
            let part = part.trim_start().trim_start_matches('"');
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if part[name.len()..].starts_with("\",") && !name.is_empty() {
                names.push(name);
            }
        }
        assert!(names.len() > 30, "found only {names:?}");
        for name in names {
            assert!(
                table.contains(&format!("`{name}`")),
                "README's JSON events lack `{name}`"
            );
        }
    }

    fn key(n: u8) -> IdentityKey {
        LocalIdentity::from_secrets([n; 32], [n; 32])
            .unwrap()
            .identity_key()
    }

    fn info(n: u8) -> PeerInfo {
        PeerInfo {
            identity: key(n),
            nickname: "bob".into(),
            state: LinkState::Established,
            addr: Some("10.0.0.2:47475".parse().unwrap()),
            trust: TrustState::KeyChanged,
            path: None,
        }
    }

    // Scripts read these names: a renamed field breaks them.
    #[test]
    fn peer_events_keep_their_names_and_formats() {
        let v = event(&Event::PeerLost {
            peer: info(2),
            reason: natter_core::node::CloseCause::ClosedByPeer.into(),
        });
        let expected = format!(
            r#"{{"event":"peer_lost","peer":{{"identity":"{}","fingerprint":"{}","nickname":"bob","state":"established","addr":"10.0.0.2:47475","trust":"key_changed","path":null}},"reason":"connection closed by peer"}}"#,
            hex(&key(2).0),
            key(2).fingerprint().grouped()
        );
        assert_eq!(v.to_string(), expected);
        assert_eq!(
            event(&Event::Shutdown).to_string(),
            r#"{"event":"shutdown"}"#
        );
    }

    #[test]
    fn messages_flatten_with_hex_ids_and_conversations() {
        let line = ChatLine {
            message: MessageView {
                id: [0xab; 16],
                conversation: Conversation::Direct(key(3)),
                author: key(3),
                timestamp_ms: 1_700_000_000_000,
                text: "hi".into(),
                outgoing: false,
                delivered: false,
                delivered_to: 0,
            },
            author_nick: "carol".into(),
            trust: TrustState::Unverified,
            peer_nick: Some("carol".into()),
            nick_collides: false,
            room: None,
            calls_me: true,
        };
        let v = event(&Event::MessageReceived {
            message: line.clone(),
        });
        let m = &v["message"];
        assert_eq!(v["event"], "message_received");
        assert_eq!(m["id"], "ab".repeat(16));
        assert_eq!(m["conversation"], hex(&key(3).0));
        assert_eq!(m["author"], hex(&key(3).0));
        assert_eq!(m["author_fingerprint"], key(3).fingerprint().grouped());
        assert_eq!(m["timestamp_ms"], 1_700_000_000_000u64);
        assert_eq!(m["trust"], "unverified");
        assert_eq!(m["peer_nick"], "carol");
        assert_eq!(m["nick_collides"], false);
        assert_eq!(m["room"], Value::Null);
        assert_eq!(m["calls_me"], true);
        let mut ops = line.clone();
        ops.message.conversation = Conversation::Room(natter_core::chat::open_room_id("ops"));
        ops.room = Some("#ops".into());
        let v = event(&Event::MessageReceived { message: ops });
        assert_eq!(v["message"]["room"], "#ops");
        assert_eq!(v["message"]["conversation"], "room");
        let h = event(&Event::History {
            conversation: Conversation::lobby(),
            messages: vec![],
        });
        assert_eq!(
            h.to_string(),
            r#"{"event":"history","conversation":"public","messages":[]}"#
        );
    }
}
