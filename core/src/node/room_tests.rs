//! Rooms over the simulated network: joining and leaving, what is shown,
//! and gossip across partial meshes (lines, rings, random sparse graphs)
//! with beacon loss and crashes.

use super::*;
use crate::chat::{open_room_id, Conversation};
use crate::event::ChatLine;
use crate::testkit::sim::{self, NetConfig, Sim};
use std::collections::{BTreeMap, BTreeSet};

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

fn cmd(s: &mut Sim, i: usize, c: Command) {
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
    assert_eq!(room_lines(&s, 0, "ops").len(), 1);
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
    let ops = rooms.iter().find(|r| r.name == "ops").unwrap();
    assert_eq!((ops.unread, ops.linked_members), (1, 1));
    cmd(&mut s, 0, Command::ReadRoom("ops".into()));
    // After leaving, messages are stored (and relayed) but not shown.
    cmd(&mut s, 0, Command::Leave("ops".into()));
    s.run_for(500);
    post(&mut s, 1, "ops", "two");
    s.run_for(500);
    assert_eq!(room_lines(&s, 0, "ops").len(), 1, "not shown after /leave");
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
    assert_eq!(s.nodes[0].node.joined_rooms(), ["lobby"]);
}

/// A graph on `n` nodes: the pairs that may reach each other.
fn edges_of(kind: &str, n: usize, seed: u64) -> BTreeSet<(usize, usize)> {
    let mut e = BTreeSet::new();
    match kind {
        "line" => (1..n).for_each(|i| {
            e.insert((i - 1, i));
        }),
        "ring" => (0..n).for_each(|i| {
            let j = (i + 1) % n;
            e.insert((i.min(j), i.max(j)));
        }),
        _ => {
            // A random spanning tree plus a few chords: sparse, connected.
            let mut rng = crate::rng::Rng::new(seed);
            for i in 1..n {
                let j = rng.below(i as u64) as usize;
                e.insert((j, i));
            }
            for _ in 0..n / 2 {
                let (a, b) = (rng.below(n as u64) as usize, rng.below(n as u64) as usize);
                if a != b {
                    e.insert((a.min(b), a.max(b)));
                }
            }
        }
    }
    e
}

/// A simulated LAN where only `edges` can reach each other, every node in
/// `#ops`, each linked to all its neighbours.
fn partial_mesh(seed: u64, n: usize, edges: &BTreeSet<(usize, usize)>) -> Sim {
    let mut s = Sim::new(
        seed,
        NetConfig {
            delay_ms: (1, 20),
            loss: 0.2,
        },
    );
    for a in 0..n {
        for b in a + 1..n {
            if !edges.contains(&(a, b)) {
                s.partition(&[a], &[b]);
            }
        }
    }
    s.add_nodes(n);
    for i in 0..n {
        cmd(&mut s, i, Command::Join("ops".into()));
    }
    let linked = |s: &Sim| {
        edges
            .iter()
            .all(|&(a, b)| s.nodes[a].node.connected().contains(&s.identity_of(b)))
    };
    for _ in 0..600 {
        if linked(&s) {
            break;
        }
        s.run_for(100);
    }
    assert!(linked(&s), "seed {seed}: neighbours not all linked in 60 s");
    s
}

/// Copies of room messages each node took in (new + duplicate).
fn copies(s: &Sim) -> u64 {
    s.nodes
        .iter()
        .map(|n| {
            let st = n.node.chat_stats();
            st.received + st.duplicates
        })
        .sum()
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
            let shown = room_lines(s, i, "ops")
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
