//! Partial meshes for the simulator: which hosts can reach which (lines,
//! rings, random sparse graphs), built by cutting every other pair, and
//! copies of room items taken in, to measure gossip's cost per link.

use std::collections::BTreeSet;

use super::sim::{NetConfig, Sim};
use crate::node::{Command, Input};
use crate::rng::Rng;

/// The pairs `(a, b)`, `a < b`, that can reach each other.
pub type Edges = BTreeSet<(usize, usize)>;

/// A line of `n` hosts.
pub fn line(n: usize) -> Edges {
    (1..n).map(|i| (i - 1, i)).collect()
}

/// A ring of `n` hosts.
pub fn ring(n: usize) -> Edges {
    (0..n)
        .map(|i| {
            let j = (i + 1) % n;
            (i.min(j), i.max(j))
        })
        .collect()
}

/// A random spanning tree plus `n / 2` chords: sparse and connected.
pub fn random_sparse(n: usize, seed: u64) -> Edges {
    let mut rng = Rng::new(seed);
    let mut e = Edges::new();
    for i in 1..n {
        e.insert((rng.below(i as u64) as usize, i));
    }
    for _ in 0..n / 2 {
        let (a, b) = (rng.below(n as u64) as usize, rng.below(n as u64) as usize);
        if a != b {
            e.insert((a.min(b), a.max(b)));
        }
    }
    e
}

/// `n` hosts where only `edges` reach each other, every one in the open
/// room `room`, run until each is linked to all its neighbours (`None` if
/// that takes over 60 simulated seconds).
pub fn partial_mesh(seed: u64, net: NetConfig, n: usize, edges: &Edges, room: &str) -> Option<Sim> {
    let mut s = Sim::new(seed, net);
    for a in 0..n {
        for b in a + 1..n {
            if !edges.contains(&(a, b)) {
                s.partition(&[a], &[b]);
            }
        }
    }
    s.add_nodes(n);
    for i in 0..n {
        s.input(i, Input::Command(Command::Join(room.into())));
    }
    let linked = |s: &Sim| {
        edges
            .iter()
            .all(|&(a, b)| s.nodes[a].node.connected().contains(&s.identity_of(b)))
    };
    for _ in 0..600 {
        if linked(&s) {
            return Some(s);
        }
        s.run_for(100);
    }
    linked(&s).then_some(s)
}

/// Room items every host took in so far, new or duplicate.
pub fn copies_taken(s: &Sim) -> u64 {
    s.nodes
        .iter()
        .map(|n| {
            let st = n.node.chat_stats();
            st.received + st.duplicates
        })
        .sum()
}
