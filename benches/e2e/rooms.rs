//! Room fan-out: one room of 50 members, in the simulator (a random sparse
//! graph: delivery by relaying) and over loopback (50 whole nodes, one
//! author linked to the 49 others).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use natter_core::chat::open_room_id;
use natter_core::chat::sign_room_post;
use natter_core::event::Event;
use natter_core::identity::LocalIdentity;
use natter_core::node::{Command, Input};
use natter_core::rng::Rng;
use natter_core::testkit::graph;
use natter_core::testkit::sim::{NetConfig, Sim};
use natter_core::wire::codec::encode;
use natter_core::wire::Frame;

use crate::natter_rows::{next_event, start_node_as, RunningNode};

/// Noise framing per transport message: 2 bytes of length and a 16-byte
/// tag. Frames are batched into messages, so this bounds the share per
/// frame from above.
const NOISE_OVERHEAD: usize = 18;

/// What one fan-out run measured.
pub struct FanOut {
    pub members: usize,
    pub edges: usize,
    pub messages: usize,
    /// Messages per second, each stored by every member.
    pub rate: f64,
    /// Copies of each message taken in per link (at most 2: once each way).
    pub copies_per_edge: f64,
    /// Bytes per message per link: the copies times the frame's exact
    /// size plus the Noise framing bound.
    pub bytes_per_edge: f64,
}

/// The size of one room post of `text_len` bytes on the wire (frame only).
fn post_frame_len(text_len: usize) -> usize {
    let id = LocalIdentity::from_secrets([1; 32], [2; 32]).expect("fixed keys are valid");
    let post = sign_room_post(
        &id,
        open_room_id("ops"),
        [0; 16],
        1_764_000_000_000,
        "x".repeat(text_len),
    );
    encode(&Frame::RoomPost(Box::new(post))).len()
}

/// `n` nodes on a random sparse graph (a spanning tree plus n/2 chords),
/// all in #ops; `messages` posts by random members.
pub fn simulated(n: usize, messages: usize) -> Result<FanOut> {
    let edges = graph::random_sparse(n, 7);
    let Some(mut s) = graph::partial_mesh(7, NetConfig::default(), n, &edges, "ops") else {
        bail!("the simulated graph did not link up");
    };
    let mut rng = Rng::new(7);
    let before = graph::copies_taken(&s);
    let text = "a line of about forty bytes for the room";
    let start = Instant::now();
    for m in 0..messages {
        let author = rng.below(n as u64) as usize;
        s.input(
            author,
            Input::Command(Command::Post {
                room: "ops".into(),
                text: format!("{text} {m}"),
            }),
        );
        s.run_for(10);
    }
    let shown = |s: &Sim| -> usize {
        s.nodes
            .iter()
            .map(|node| {
                node.events
                    .iter()
                    .filter(|e| matches!(e, Event::MessageReceived { .. }))
                    .count()
            })
            .sum()
    };
    let want = messages * (n - 1);
    while shown(&s) < want {
        s.run_for(50);
        if start.elapsed() > Duration::from_secs(120) {
            bail!("not every member got every message");
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let copies_per_edge =
        (graph::copies_taken(&s) - before) as f64 / (messages * edges.len()) as f64;
    let frame = post_frame_len(text.len() + 3);
    Ok(FanOut {
        members: n,
        edges: edges.len(),
        messages,
        rate: messages as f64 / secs,
        copies_per_edge,
        bytes_per_edge: copies_per_edge * (frame + NOISE_OVERHEAD) as f64,
    })
}

/// Waits for the first event of `n` that `f` accepts.
async fn wait_for(n: &mut RunningNode, f: impl Fn(&Event) -> bool) -> Result<()> {
    while !f(&next_event(n).await?) {}
    Ok(())
}

/// `n` whole nodes over loopback, each with its SQLite store: one author
/// linked to the others, all in #ops; `messages` posts, until every member
/// acked every one.
pub async fn loopback(n: usize, messages: usize) -> Result<FanOut> {
    let dirs: Vec<tempfile::TempDir> = (0..n)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let mut nodes = Vec::with_capacity(n);
    for (i, d) in dirs.iter().enumerate() {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(i as u64 + 1000).to_le_bytes());
        let id = LocalIdentity::from_secrets(seed, seed)?;
        nodes.push(start_node_as(id, &format!("member{i}"), d.path(), None).await?);
    }
    let (author, members) = nodes.split_at_mut(1);
    let author = &mut author[0];
    for m in members.iter() {
        author.cmd.send(Command::Connect(m.addr)).await?;
    }
    let mut connected = 0;
    while connected < n - 1 {
        wait_for(author, |e| matches!(e, Event::PeerConnected { .. })).await?;
        connected += 1;
    }
    for node in std::iter::once(&mut *author).chain(members.iter_mut()) {
        node.cmd.send(Command::Join("ops".into())).await?;
        wait_for(node, |e| matches!(e, Event::RoomJoined { .. })).await?;
    }
    let text = "a line of about forty bytes for the room";
    let start = Instant::now();
    for m in 0..messages {
        author
            .cmd
            .send(Command::Post {
                room: "ops".into(),
                text: format!("{text} {m}"),
            })
            .await?;
    }
    let want = messages * (n - 1);
    let mut delivered = 0;
    while delivered < want {
        wait_for(author, |e| matches!(e, Event::MessageDelivered { .. })).await?;
        delivered += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    for node in std::iter::once(&*author).chain(members.iter()) {
        let _ = node.cmd.send(Command::Quit).await;
    }
    // A star: each message crosses each link once, and nobody relays it
    // (members have no other link).
    let frame = post_frame_len(text.len() + 3);
    Ok(FanOut {
        members: n,
        edges: n - 1,
        messages,
        rate: messages as f64 / secs,
        copies_per_edge: 1.0,
        bytes_per_edge: (frame + NOISE_OVERHEAD) as f64,
    })
}
