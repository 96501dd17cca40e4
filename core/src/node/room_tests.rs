//! Rooms over the simulated network: joining and leaving, what is shown,
//! and gossip across partial meshes (lines, rings, random sparse graphs)
//! with beacon loss and crashes.

use super::*;
use crate::chat::{open_room_id, Conversation};
use crate::event::ChatLine;
use crate::testkit::graph::{self, copies_taken as copies};
use crate::testkit::sim::{self, NetConfig, Sim};
use std::collections::BTreeMap;

fn room_lines<'a>(s: &'a Sim, i: usize, room: &str) -> Vec<&'a ChatLine> {
    s.nodes[i]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::MessageReceived { message } if message.room.as_deref() == Some(room) => {
                Some(message)
            }
            _ => None,
        })
        .collect()
}

pub(super) fn cmd(s: &mut Sim, i: usize, c: Command) {
    s.input(i, Input::Command(c));
}

fn post(s: &mut Sim, i: usize, room: &str, text: &str) {
    cmd(
        s,
        i,
        Command::Post {
            room: room.into(),
            text: text.into(),
        },
    );
}

fn last_event<T>(s: &Sim, i: usize, f: impl Fn(&Event) -> Option<T>) -> Option<T> {
    s.nodes[i].events.iter().rev().find_map(f)
}

#[test]
fn only_joined_rooms_show_but_every_room_is_stored() {
    let mut s = Sim::new(3, NetConfig::default());
    s.add_nodes(2);
    s.run_for(5_000);
    assert!(s.full_mesh());
    // Posting to a room not joined is refused with what to do.
    post(&mut s, 1, "ops", "early");
    let err = last_event(&s, 1, |e| match e {
        Event::Error { error } => Some(error.to_string()),
        _ => None,
    });
    assert!(err.is_some_and(|e| e.contains("/join #ops")));
    for i in 0..2 {
        cmd(&mut s, i, Command::Join("#Ops".into()));
    }
    s.run_for(500);
    post(&mut s, 1, "ops", "one");
    s.run_for(500);
    assert_eq!(room_lines(&s, 0, "#ops").len(), 1);
    // /who and /rooms see the other side's membership.
    cmd(&mut s, 0, Command::Who("ops".into()));
    let who = last_event(&s, 0, |e| match e {
        Event::Who { members, .. } => Some(members.clone()),
        _ => None,
    })
    .unwrap();
    assert_eq!(who.len(), 1);
    assert_eq!(who[0].identity, s.identity_of(1));
    cmd(&mut s, 0, Command::Rooms);
    let rooms = last_event(&s, 0, |e| match e {
        Event::Rooms { rooms, .. } => Some(rooms.clone()),
        _ => None,
    })
    .unwrap();
    let ops = rooms.iter().find(|r| r.name == "#ops").unwrap();
    assert_eq!((ops.unread, ops.linked_members), (1, 1));
    cmd(&mut s, 0, Command::ReadRoom("ops".into()));
    // After leaving, messages are stored (and relayed) but not shown.
    cmd(&mut s, 0, Command::Leave("ops".into()));
    s.run_for(500);
    post(&mut s, 1, "ops", "two");
    s.run_for(500);
    assert_eq!(room_lines(&s, 0, "#ops").len(), 1, "not shown after /leave");
    let stored = s.nodes[0]
        .node
        .store()
        .history(
            &Conversation::Room(open_room_id("ops")).into_store_key(),
            10,
        )
        .unwrap();
    assert_eq!(stored.len(), 2, "but stored");
    cmd(&mut s, 1, Command::Who("ops".into()));
    let who = last_event(&s, 1, |e| match e {
        Event::Who { members, .. } => Some(members.clone()),
        _ => None,
    })
    .unwrap();
    assert!(who.is_empty(), "node 0 said it left");
    // Rooms survive a restart (they are a setting in the store).
    let store = s.take_store(0);
    s.restart_with(0, sim::identity(0), sim::node_config(0), store);
    assert_eq!(s.nodes[0].node.joined_rooms(), ["#lobby"]);
}

/// A graph on `n` nodes: the pairs that may reach each other.
fn edges_of(kind: &str, n: usize, seed: u64) -> graph::Edges {
    match kind {
        "line" => graph::line(n),
        "ring" => graph::ring(n),
        _ => graph::random_sparse(n, seed),
    }
}

/// A simulated LAN where only `edges` can reach each other, every node in
/// `#ops`, each linked to all its neighbours; beacons lost at 20 %.
fn partial_mesh(seed: u64, n: usize, edges: &graph::Edges) -> Sim {
    let net = NetConfig {
        delay_ms: (1, 20),
        loss: 0.2,
    };
    match graph::partial_mesh(seed, net, n, edges, "ops") {
        Some(s) => s,
        None => panic!("seed {seed}: neighbours not all linked in 60 s"),
    }
}

/// Every node holds each text exactly once in #ops, and every node but
/// its author showed it exactly once.
fn assert_everyone_has_each_once(s: &Sim, texts: &BTreeMap<String, usize>, what: &str) {
    let ops = Conversation::Room(open_room_id("ops")).into_store_key();
    for i in 0..s.nodes.len() {
        let history = s.nodes[i].node.store().history(&ops, 10_000).unwrap();
        let mut held: BTreeMap<&str, usize> = BTreeMap::new();
        for m in &history {
            *held.entry(m.text.as_str()).or_default() += 1;
        }
        for (t, &author) in texts {
            assert_eq!(
                held.get(t.as_str()),
                Some(&1),
                "{what}: node {i} holds {t:?}"
            );
            let shown = room_lines(s, i, "#ops")
                .iter()
                .filter(|l| l.message.text == *t)
                .count();
            let expected = usize::from(author != i);
            assert_eq!(shown, expected, "{what}: node {i} showed {t:?}");
        }
    }
}

#[test]
fn gossip_reaches_every_member_once_across_lines_rings_and_sparse_graphs() {
    for (kind, n, seed) in [
        ("line", 10, 1),
        ("ring", 10, 2),
        ("random", 10, 3),
        ("line", 50, 5),
        ("ring", 50, 6),
        ("random", 50, 4),
    ] {
        let edges = edges_of(kind, n, seed);
        let mut s = partial_mesh(seed, n, &edges);
        let before = copies(&s);
        let mut texts = BTreeMap::new();
        let mut rng = crate::rng::Rng::new(seed);
        let messages = 12;
        for m in 0..messages {
            let author = rng.below(n as u64) as usize;
            let text = format!("{kind}{n} message {m} from {author}");
            post(&mut s, author, "ops", &text);
            texts.insert(text, author);
            s.run_for(50);
        }
        s.run_for(5_000);
        let what = format!("{kind} of {n}");
        assert_everyone_has_each_once(&s, &texts, &what);
        // Each message crosses each edge at most once each way: the copies
        // taken in are at most 2 per edge per message, whatever n is.
        let per_edge = (copies(&s) - before) as f64 / (messages * edges.len()) as f64;
        println!(
            "{what}: {} edges, {per_edge:.2} copies per message per edge",
            edges.len()
        );
        assert!(per_edge <= 2.0, "{what}: {per_edge:.2} copies per edge");
    }
}

#[test]
fn gossip_survives_crashes_and_catches_up_through_any_peer() {
    for (kind, seed) in [("line", 11), ("ring", 12), ("random", 13)] {
        let n = 10;
        let edges = edges_of(kind, n, seed);
        let mut s = partial_mesh(seed, n, &edges);
        let mut texts = BTreeMap::new();
        // Node 4 goes down (a line is cut in two), messages are posted on
        // both sides, then it comes back with its disk and catches up.
        s.crash(4);
        s.run_for(1_000);
        for (m, author) in [0usize, 9, 2, 7, 4].into_iter().enumerate() {
            if author == 4 {
                continue;
            }
            let text = format!("{kind} while 4 is down: {m}");
            post(&mut s, author, "ops", &text);
            texts.insert(text, author);
            s.run_for(100);
        }
        s.run_for(2_000);
        let store = s.take_store(4);
        s.restart_with(4, sim::identity(4), sim::node_config(4), store);
        s.run_for(40_000);
        let text = format!("{kind} after the restart");
        post(&mut s, 4, "ops", &text);
        texts.insert(text, 4);
        s.run_for(5_000);
        assert_everyone_has_each_once(&s, &texts, kind);
    }
}

fn membership(s: &Sim, i: usize) -> Vec<(String, crate::event::MembershipChange)> {
    s.nodes[i]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::RoomMembership { room, change } => Some((room.clone(), change.clone())),
            _ => None,
        })
        .collect()
}

/// Every byte a node stored: message texts and frames.
fn stored_bytes(s: &Sim, i: usize, room: crate::wire::RoomId) -> Vec<u8> {
    let store = s.nodes[i].node.store();
    let mut out = Vec::new();
    for key in [
        crate::chat::store::ConversationKey::Room(room.0),
        crate::chat::store::ConversationKey::Public,
    ] {
        for m in store.history(&key, 10_000).unwrap() {
            out.extend(m.text.as_bytes());
            out.extend(m.wire.unwrap_or_default());
        }
    }
    for m in store.room_controls().unwrap() {
        out.extend(m.wire.unwrap_or_default());
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn an_invite_only_room_is_read_by_its_members_only_and_a_kicked_member_reads_nothing_after() {
    let mut s = Sim::new(21, NetConfig::default());
    s.add_nodes(4);
    s.run_for(5_000);
    assert!(s.full_mesh());
    // 0 founds +team and invites 2 and 3; 1 is never a member.
    cmd(&mut s, 0, Command::CreateRoom("+team".into()));
    s.run_for(200);
    assert!(matches!(
        &membership(&s, 0)[..],
        [(r, crate::event::MembershipChange::YouJoined { .. })] if r == "+team"
    ));
    // An unverified key is warned about first; the same invitation again
    // goes ahead.
    let invite = |s: &mut Sim, who: &str| {
        cmd(
            s,
            0,
            Command::Invite {
                peer: who.into(),
                room: "+team".into(),
            },
        )
    };
    invite(&mut s, "node2");
    let warned = last_event(&s, 0, |e| match e {
        Event::Error { error } => Some(error.to_string()),
        _ => None,
    });
    assert!(warned.is_some_and(|w| w.contains("not verified")));
    invite(&mut s, "node2");
    invite(&mut s, "node3");
    invite(&mut s, "node3");
    s.run_for(1_000);
    for i in [2, 3] {
        assert!(
            membership(&s, i).iter().any(|(r, c)| r == "+team"
                && matches!(c, crate::event::MembershipChange::YouJoined { .. })),
            "node {i} joined"
        );
    }
    assert!(membership(&s, 1).is_empty(), "a non-member hears nothing");
    // Only 1 links 0 with 2 and 3 from now on.
    s.partition(&[0], &[2, 3]);
    s.run_for(40_000);
    let room = crate::chat::private::private_room_id(&match s.nodes[0]
        .node
        .store()
        .room_controls()
        .unwrap()[0]
        .wire
        .as_deref()
        .and_then(crate::chat::SignedPost::from_wire)
    {
        Some(crate::chat::SignedPost::Control(c)) => c.founding,
        _ => unreachable!("the founding entry is stored"),
    });
    post(&mut s, 0, "+team", "the launch code is 0000");
    s.run_for(2_000);
    post(&mut s, 2, "+team", "noted, from two");
    s.run_for(2_000);
    for i in [0, 2, 3] {
        let texts: Vec<&str> = room_lines(&s, i, "+team")
            .iter()
            .map(|l| l.message.text.as_str())
            .collect();
        let expected = match i {
            0 => vec!["noted, from two"],
            2 => vec!["the launch code is 0000"],
            _ => vec!["the launch code is 0000", "noted, from two"],
        };
        assert_eq!(texts, expected, "node {i}");
    }
    // The relay carried both without being able to read them.
    assert!(room_lines(&s, 1, "+team").is_empty());
    let carried = stored_bytes(&s, 1, room);
    assert!(!carried.is_empty(), "the relay holds the sealed posts");
    assert!(!contains(&carried, b"launch code") && !contains(&carried, b"from two"));
    assert_eq!(
        s.nodes[1]
            .node
            .store()
            .history(&Conversation::Room(room).into_store_key(), 10)
            .unwrap()
            .len(),
        2
    );

    // 0 removes 3: a new key that 3 never gets.
    cmd(
        &mut s,
        0,
        Command::Kick {
            peer: "node3".into(),
            room: "+team".into(),
        },
    );
    s.run_for(2_000);
    assert!(membership(&s, 3)
        .iter()
        .any(|(_, c)| *c == crate::event::MembershipChange::YouWereRemoved));
    post(&mut s, 0, "+team", "three is gone now");
    s.run_for(2_000);
    assert_eq!(
        room_lines(&s, 2, "+team").last().unwrap().message.text,
        "three is gone now"
    );
    assert!(!room_lines(&s, 3, "+team")
        .iter()
        .any(|l| l.message.text.contains("gone")));
    assert!(!contains(&stored_bytes(&s, 3, room), b"three is gone"));
    // 3 can no longer post there.
    post(&mut s, 3, "+team", "let me back in");
    assert!(last_event(&s, 3, |e| match e {
        Event::Error { error } => Some(error.to_string()),
        _ => None,
    })
    .is_some_and(|e| e.contains("not in +team")));

    // A member that restarts keeps its keys (replayed from its log).
    let store = s.take_store(2);
    s.restart_with(2, sim::identity(2), sim::node_config(2), store);
    s.run_for(40_000);
    post(&mut s, 0, "+team", "after two restarted");
    s.run_for(3_000);
    assert!(room_lines(&s, 2, "+team")
        .iter()
        .any(|l| l.message.text == "after two restarted"));
}

#[test]
fn a_room_founded_under_a_name_we_use_cannot_take_it_over() {
    let mut s = Sim::new(22, NetConfig::default());
    s.add_nodes(3);
    s.run_for(5_000);
    assert!(s.full_mesh());
    let invite = |s: &mut Sim, from: usize, who: &str| {
        for _ in 0..2 {
            // The second time goes ahead despite the unverified key.
            cmd(
                s,
                from,
                Command::Invite {
                    peer: who.into(),
                    room: "+team".into(),
                },
            );
        }
        s.run_for(1_000);
    };
    // 0 founds +team with 1; then 2 founds a +team of its own and adds 1.
    cmd(&mut s, 0, Command::CreateRoom("+team".into()));
    s.run_for(200);
    invite(&mut s, 0, "node1");
    cmd(&mut s, 2, Command::CreateRoom("+team".into()));
    s.run_for(200);
    invite(&mut s, 2, "node1");
    let error = |s: &Sim, i: usize| {
        last_event(s, i, |e| match e {
            Event::Error { error } => Some(error.to_string()),
            _ => None,
        })
        .unwrap_or_default()
    };
    // 0's room, +team until now, is renamed for 1 as the second arrives.
    let renamed = last_event(&s, 1, |e| match e {
        Event::RoomRenamed { old, new } => Some((old.clone(), new.clone())),
        _ => None,
    });
    let fp0_now = crate::identity::Fingerprint::of(&s.identity_of(0)).short();
    assert_eq!(renamed, Some(("+team".into(), format!("+team#{fp0_now}"))));
    // A bare +team is ambiguous for 1, and the error says how to pick.
    post(&mut s, 1, "+team", "hello?");
    let e = error(&s, 1);
    let fp = |s: &Sim, i: usize| crate::identity::Fingerprint::of(&s.identity_of(i));
    let (fp0, fp2) = (fp(&s, 0).short(), fp(&s, 2).short());
    assert!(
        e.contains(&format!("+team#{fp0} (founded by node0)")),
        "{e}"
    );
    assert!(
        e.contains(&format!("+team#{fp2} (founded by node2)")),
        "{e}"
    );
    // 1 names 0's room by its founder's fingerprint (a prefix will do).
    post(
        &mut s,
        1,
        &format!("+team#{}", &fp0[..4]),
        "to the real team",
    );
    s.run_for(2_000);
    let texts = |s: &Sim, i: usize, room: &str| -> Vec<String> {
        room_lines(s, i, room)
            .iter()
            .map(|l| l.message.text.clone())
            .collect()
    };
    assert_eq!(texts(&s, 0, "+team"), ["to the real team"]);
    assert!(texts(&s, 2, "+team").is_empty());
    // Once 1 verified 0, +team is 0's room; 2's shows its founder.
    let full = fp(&s, 0).grouped();
    cmd(
        &mut s,
        1,
        Command::Trust {
            peer: "node0".into(),
            fingerprint: Some(full),
        },
    );
    let renamed = last_event(&s, 1, |e| match e {
        Event::RoomRenamed { old, new } => Some((old.clone(), new.clone())),
        _ => None,
    });
    assert_eq!(renamed, Some((format!("+team#{fp0}"), "+team".into())));
    post(&mut s, 1, "+team", "now plainly");
    post(&mut s, 2, "+team", "the other team speaking");
    s.run_for(2_000);
    assert_eq!(texts(&s, 0, "+team"), ["to the real team", "now plainly"]);
    assert_eq!(
        texts(&s, 1, &format!("+team#{fp2}")),
        ["the other team speaking"]
    );
    // /rooms and the list the front end starts with name each room as it
    // can be typed back.
    let expected = vec!["+team".to_owned(), format!("+team#{fp2}")];
    let mut listed = s.nodes[1].node.joined_rooms();
    listed.retain(|r| r.starts_with('+'));
    listed.sort();
    assert_eq!(listed, expected);
    cmd(&mut s, 1, Command::Rooms);
    let mut shown = last_event(&s, 1, |e| match e {
        Event::Rooms { rooms, .. } => {
            Some(rooms.iter().map(|r| r.name.clone()).collect::<Vec<_>>())
        }
        _ => None,
    })
    .unwrap();
    shown.retain(|r| r.starts_with('+'));
    shown.sort();
    assert_eq!(shown, expected);
    // And 2's room does not stop 1 from founding a +team of its own,
    // which a bare +team then means.
    cmd(&mut s, 1, Command::CreateRoom("+team".into()));
    s.run_for(200);
    let mine = last_event(&s, 1, |e| match e {
        Event::RoomMembership {
            room,
            change: crate::event::MembershipChange::YouJoined { .. },
        } => Some(room.clone()),
        _ => None,
    });
    assert_eq!(mine.as_deref(), Some("+team"));
    // 0's room gave up its bare label before ours took it, so a front end
    // never holds two rooms under one label.
    let events = &s.nodes[1].events;
    let renamed_at = events.iter().rposition(|e| {
        matches!(e, Event::RoomRenamed { old, new } if old == "+team" && *new == format!("+team#{fp0}"))
    });
    let joined_at = events.iter().rposition(|e| {
        matches!(e, Event::RoomMembership { room, change: crate::event::MembershipChange::YouJoined { .. } } if room == "+team")
    });
    assert!(
        renamed_at.is_some() && renamed_at < joined_at,
        "{renamed_at:?} {joined_at:?}"
    );
    // 2 removes 1: the event names 2's room as 1 knew it.
    cmd(
        &mut s,
        2,
        Command::Kick {
            peer: "node1".into(),
            room: "+team".into(),
        },
    );
    s.run_for(1_000);
    let removed = last_event(&s, 1, |e| match e {
        Event::RoomMembership {
            room,
            change: crate::event::MembershipChange::YouWereRemoved,
        } => Some(room.clone()),
        _ => None,
    });
    assert_eq!(removed, Some(format!("+team#{fp2}")));
}

#[test]
fn a_room_whose_key_does_not_open_is_reported_again_at_start() {
    use crate::chat::private::sign_control;
    use crate::chat::room_keys::seal_key;
    use crate::chat::{Chat, MemoryStore, SignedPost};
    use crate::identity::LocalIdentity;
    use crate::wire::RoomChange;
    const T: u64 = 1_764_000_000_000;
    let founder = LocalIdentity::from_secrets([0x41; 32], [0x42; 32]).unwrap();
    let member = LocalIdentity::from_secrets([0x51; 32], [0x52; 32]).unwrap();
    let other = LocalIdentity::from_secrets([0x61; 32], [0x62; 32]).unwrap();
    // The founder's chat writes the founding entry; another implementation
    // then invites `member` with a key sealed to someone else.
    let mut f = Chat::new(Box::new(MemoryStore::new()), founder.identity_key());
    f.set_own_keys(&founder).unwrap();
    let (room, _) = f.create_room(T, &founder, "team", &[]).unwrap();
    let create = f.store().room_controls().unwrap()[0].clone();
    let Some(SignedPost::Control(create)) = create.wire.as_deref().and_then(SignedPost::from_wire)
    else {
        panic!("the founding entry");
    };
    let invite = sign_control(
        &founder,
        create.founding.clone(),
        1,
        0,
        T,
        RoomChange::Invite {
            member: *member.bound_keys(),
            envelope: seal_key(&[7; 32], &room, 0, other.bound_keys()).unwrap(),
        },
    );
    let mut m = Chat::new(Box::new(MemoryStore::new()), member.identity_key());
    m.set_own_keys(&member).unwrap();
    for c in [create, Box::new(invite)] {
        m.on_frame(T, founder.identity_key(), Frame::RoomControl(c), &[])
            .unwrap();
    }
    assert!(m.lacks_room_key(&room));
    // natter starts again on that history: the user is told at once.
    let mut node = Node::new(
        member,
        NodeConfig::default(),
        m.into_store(),
        crate::rng::Rng::new(1),
        0,
        T,
    );
    let mut errors = Vec::new();
    while let Some(out) = node.poll_output() {
        if let Output::Event(Event::Error { error }) = out {
            errors.push(error.to_string());
        }
    }
    assert!(
        errors
            .iter()
            .any(|e| e.contains("+team") && e.contains("does not open")),
        "{errors:?}"
    );
}
