//! natter's own rows: the same shapes as the reference link, through
//! natter's code (`link::Phase`: deframer, typed handshake with identity
//! payloads and their checks, transport packing frames), plus whole-node
//! figures (chat end to end through SQLite, search, memory per idle peer).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use natter::store::{ConversationKey, Store, StoredMessage};
use natter_core::chat::store::TrustLevel;
use natter_core::event::Event;
use natter_core::handshake::HandshakeConfig;
use natter_core::identity::{BoundKeys, IdentityKey, LocalIdentity};
use natter_core::link::Phase;
use natter_core::node::{Command, Node, NodeConfig};
use natter_core::rng::Rng;
use natter_core::wire::limits::MAX_PLAINTEXT_LEN;
use natter_core::wire::Frame;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::net;
use crate::stats::Latency;

/// Largest `Data` payload that fits one Noise message: the plaintext less
/// the variant byte and a three-byte length varint.
pub const DATA_MAX: usize = MAX_PLAINTEXT_LEN - 4;
/// Small frames handed to one `Phase::send`: natter packs them into as few
/// Noise messages as fit (the batching lever of DESIGN §9).
const SMALL_BATCH: usize = 1024;

fn identity(n: u8) -> LocalIdentity {
    LocalIdentity::from_secrets([n; 32], [n.wrapping_add(100); 32]).expect("fixed keys are valid")
}

/// One config per process, as one node has: the bindings it verified are
/// shared by all its handshakes (`identity::VerifiedBindings`).
fn cfg() -> HandshakeConfig {
    static CFG: std::sync::OnceLock<HandshakeConfig> = std::sync::OnceLock::new();
    CFG.get_or_init(|| HandshakeConfig::new("bench", 1)).clone()
}

/// Run a link's handshake over `s`. Returns frames that arrived with the
/// last handshake message, if any.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    link: &mut Phase,
    first: Vec<u8>,
) -> Result<Vec<Frame>> {
    if !first.is_empty() {
        s.write_all(&first).await?;
    }
    let mut buf = vec![0u8; 4096];
    let mut frames = Vec::new();
    while !link.is_established() {
        let n = s.read(&mut buf).await?;
        ensure!(n > 0, "EOF during the handshake");
        let mut out = Vec::new();
        frames.extend(link.on_bytes(&buf[..n], &mut out)?.frames);
        if !out.is_empty() {
            s.write_all(&out).await?;
        }
    }
    Ok(frames)
}

async fn dial(s: &mut TcpStream, me: &LocalIdentity, expect: IdentityKey) -> Result<Phase> {
    dial_with(s, me, expect, &cfg()).await
}

async fn dial_with(
    s: &mut TcpStream,
    me: &LocalIdentity,
    expect: IdentityKey,
    cfg: &HandshakeConfig,
) -> Result<Phase> {
    let (mut link, msg1) = Phase::outbound(me, cfg, Some(expect))?;
    handshake(s, &mut link, msg1).await?;
    Ok(link)
}

async fn answer(s: &mut TcpStream, me: &LocalIdentity) -> Result<Phase> {
    answer_with(s, me, &cfg()).await
}

async fn answer_with(
    s: &mut TcpStream,
    me: &LocalIdentity,
    cfg: &HandshakeConfig,
) -> Result<Phase> {
    let mut link = Phase::inbound(me, cfg)?;
    let early = handshake(s, &mut link, Vec::new()).await?;
    ensure!(
        early.is_empty(),
        "frames arrived with the last handshake message"
    );
    Ok(link)
}

/// The accepting side, also returning frames that arrived in the same read
/// as message 3 (a dialler may send right after its last handshake message).
async fn answer_with_frames(s: &mut TcpStream, me: &LocalIdentity) -> Result<(Phase, Vec<Frame>)> {
    let mut link = Phase::inbound(me, &cfg())?;
    let early = handshake(s, &mut link, Vec::new()).await?;
    Ok((link, early))
}

/// An established natter link over a loopback pair.
pub async fn established() -> Result<(TcpStream, Phase, TcpStream, Phase)> {
    let (mut a, mut b) = net::pair().await?;
    let (ia, ib) = (identity(1), identity(2));
    let expect = ib.identity_key();
    let (la, lb) = tokio::try_join!(dial(&mut a, &ia, expect), answer(&mut b, &ib))?;
    Ok((a, la, b, lb))
}

/// Handshakes per second, same shape as `reference::handshakes`: the
/// responder closes after the handshake, the dialler waits for that EOF.
/// `first_contact`: each handshake gets fresh configs, so no binding is
/// remembered from an earlier one (a node meeting peers for the first time).
pub async fn handshakes(
    in_flight: usize,
    duration: Duration,
    max: u64,
    first_contact: bool,
) -> Result<f64> {
    let config = move || {
        if first_contact {
            HandshakeConfig::new("bench", 1)
        } else {
            cfg()
        }
    };
    let server_id = Arc::new(identity(2));
    let client_id = Arc::new(identity(1));
    let expect = identity(2).identity_key();
    net::handshake_rate(
        in_flight,
        duration,
        max,
        move |mut s| {
            let id = Arc::clone(&client_id);
            async move {
                dial_with(&mut s, &id, expect, &config()).await?;
                Ok(s)
            }
        },
        move |mut s| {
            let id = Arc::clone(&server_id);
            async move {
                let _ = answer_with(&mut s, &id, &config()).await;
            }
        },
    )
    .await
}

/// Read frames from `rx` until EOF, calling `count` on each batch.
async fn drain(mut rx: TcpStream, mut link: Phase, mut count: impl FnMut(&[Frame])) -> Result<f64> {
    let mut buf = vec![0u8; 256 * 1024];
    let start = Instant::now();
    let mut sink = Vec::new();
    loop {
        let n = rx.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let f = link.on_bytes(&buf[..n], &mut sink)?.frames;
        if !f.is_empty() {
            count(&f);
        }
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Encrypted bulk: maximal `Data` frames, one Noise message each.
pub async fn bulk(duration: Duration) -> Result<f64> {
    let (tx, mut la, rx, lb) = established().await?;
    let writer = net::own_thread(tx, move |mut tx| async move {
        let frames = [Frame::Data(vec![0xA5; DATA_MAX])];
        let mut out = Vec::with_capacity(2 + 65_535);
        let start = Instant::now();
        while start.elapsed() < duration {
            out.clear();
            la.send(&frames, &mut out)?;
            tx.write_all(&out).await?;
        }
        tx.shutdown().await?;
        anyhow::Ok(())
    });
    let reader = net::own_thread(rx, move |rx| async move {
        let mut bytes = 0u64;
        let secs = drain(rx, lb, |fs| {
            for f in fs {
                if let Frame::Data(d) = f {
                    bytes += d.len() as u64;
                }
            }
        })
        .await?;
        anyhow::Ok(bytes as f64 / secs)
    });
    writer.await??;
    reader.await?
}

/// One-way small messages: `size`-byte `Data` frames handed to the link in
/// batches; natter packs each batch into as few Noise messages as fit.
pub async fn one_way(size: usize, duration: Duration) -> Result<f64> {
    let (mut tx, mut la, rx, lb) = established().await?;
    let writer = tokio::spawn(async move {
        let frames: Vec<Frame> = (0..SMALL_BATCH)
            .map(|_| Frame::Data(vec![0x5A; size]))
            .collect();
        let mut out = Vec::with_capacity(128 * 1024);
        let start = Instant::now();
        while start.elapsed() < duration {
            out.clear();
            la.send(&frames, &mut out)?;
            tx.write_all(&out).await?;
        }
        tx.shutdown().await?;
        anyhow::Ok(())
    });
    let mut count = 0u64;
    let secs = drain(rx, lb, |fs| count += fs.len() as u64).await?;
    writer.await??;
    Ok(count as f64 / secs)
}

/// Ping-pong of `size`-byte `Data` frames over natter links, on one
/// current-thread runtime like the baselines.
pub fn ping_pong(size: usize, warmup: usize, rounds: usize) -> Result<Latency> {
    match Latency::from_samples(ping_pong_samples(size, warmup, rounds)?) {
        Some(l) => Ok(l),
        None => bail!("no ping-pong samples"),
    }
}

/// [`ping_pong`]'s round trips, each one's time.
pub fn ping_pong_samples(size: usize, warmup: usize, rounds: usize) -> Result<Vec<Duration>> {
    let total = warmup + rounds;
    net::ping_pong(
        move |mut s: TcpStream| async move {
            let (mut link, early) = answer_with_frames(&mut s, &identity(2)).await?;
            let mut buf = vec![0u8; 65_536];
            let mut out = Vec::with_capacity(256);
            let mut served = early.len();
            if !early.is_empty() {
                link.send(&early, &mut out)?;
                s.write_all(&out).await?;
            }
            while served < total {
                let n = s.read(&mut buf).await?;
                ensure!(n > 0, "EOF during ping-pong");
                let frames = link.on_bytes(&buf[..n], &mut out)?.frames;
                if !frames.is_empty() {
                    out.clear();
                    link.send(&frames, &mut out)?;
                    s.write_all(&out).await?;
                    served += frames.len();
                }
            }
            Ok(())
        },
        move |mut s: TcpStream| async move {
            let mut link = dial(&mut s, &identity(1), identity(2).identity_key()).await?;
            let ping = [Frame::Data(vec![0x5A; size])];
            let mut buf = vec![0u8; 65_536];
            let mut out = Vec::with_capacity(256);
            let mut samples = Vec::with_capacity(rounds);
            for i in 0..total {
                let t = Instant::now();
                out.clear();
                link.send(&ping, &mut out)?;
                s.write_all(&out).await?;
                let mut got = false;
                while !got {
                    let n = s.read(&mut buf).await?;
                    ensure!(n > 0, "EOF during ping-pong");
                    got = !link.on_bytes(&buf[..n], &mut Vec::new())?.frames.is_empty();
                }
                if i >= warmup {
                    samples.push(t.elapsed());
                }
            }
            Ok(samples)
        },
    )
}

/// A node on 127.0.0.1 with its store in `dir`, driven through channels.
pub struct RunningNode {
    pub cmd: mpsc::Sender<Command>,
    pub events: natter::shell::EventRx,
    pub addr: std::net::SocketAddr,
}

/// How the two nodes of a pair are linked.
#[derive(Clone, Debug)]
pub enum Via {
    /// TCP on loopback, as on a LAN.
    Lan,
    /// iroh through a relay on loopback: `relay_only` keeps every packet
    /// on the relay, else the endpoints find the direct path.
    Wan { relay: String, relay_only: bool },
}

async fn start_node(seed: u8, dir: &std::path::Path, via: &Via) -> Result<RunningNode> {
    // The two ends of a pair (seeds 1 and 2) are each other's verified
    // contacts, as people who chat this much would be: the stranger quota
    // (10,000 messages a day) does not apply to them.
    let other = identity(3 - seed);
    let name = format!("bench{seed}");
    let id = identity(seed);
    let wan = match via {
        Via::Lan => None,
        Via::Wan { relay, relay_only } => {
            let cfg = natter::wan::WanConfig {
                relay: Some(relay.clone()),
                bind: Some("127.0.0.1:0".parse()?),
                relay_only: *relay_only,
                relay_ca: None,
            };
            Some(natter::wan::Wan::bind(&id.ed25519_seed(), &cfg).await?)
        }
    };
    start_node_with(id, &name, dir, Some(other.bound_keys()), wan).await
}

/// A whole node on loopback (shell, node thread, SQLite and files in
/// `dir`, discovery off), with `contact` in its trust store as verified.
pub async fn start_node_as(
    id: LocalIdentity,
    nickname: &str,
    dir: &std::path::Path,
    contact: Option<&BoundKeys>,
) -> Result<RunningNode> {
    start_node_with(id, nickname, dir, contact, None).await
}

/// [`start_node_as`], with an iroh endpoint for links beyond the LAN.
async fn start_node_with(
    id: LocalIdentity,
    nickname: &str,
    dir: &std::path::Path,
    contact: Option<&BoundKeys>,
    wan: Option<natter::wan::Wan>,
) -> Result<RunningNode> {
    let listener = natter::shell::listen("127.0.0.1:0".parse()?, false).await?;
    let addr = listener.local_addr()?;
    let cfg = NodeConfig {
        nickname: nickname.to_owned(),
        listen_port: addr.port(),
        discovery: None,
        wan: wan.is_some(),
        ..NodeConfig::default()
    };
    let mut store = Store::open(dir)?;
    if let Some(keys) = contact {
        store.upsert_peer_seen(
            &keys.identity.0,
            &keys.noise.0,
            "peer",
            1_764_000_000_000,
            None,
        )?;
        store.set_trust(&keys.identity.0, TrustLevel::Verified, 1_764_000_000_000)?;
    }
    // As natter itself runs: commits synced by the node thread's barrier.
    let group_commit = store.group_commit()?;
    let seed = u64::from_le_bytes(id.identity_key().0[..8].try_into()?);
    let node = Node::new(
        id,
        cfg,
        Box::new(store),
        Rng::new(seed),
        0,
        1_764_000_000_000,
    );
    let files_dir = dir.join(natter::files::FILES_DIR);
    let fs = natter::files::FsFileStore::open(
        &dir.join(natter::store::DB_FILE),
        files_dir.clone(),
        dir.join("dl"),
    )
    .map_err(anyhow::Error::msg)?;
    let mut node = node;
    node.set_file_store(Box::new(fs));
    node.set_signature_check(Box::new(natter::signatures::AllCores::new()));
    let (cmd, cmd_rx) = mpsc::channel(1024);
    let (ev_tx, events) = natter::shell::event_queue(BENCH_EVENT_QUEUE);
    let opts = natter::shell::Options {
        files_dir: Some(files_dir),
        group_commit: Some(group_commit),
        wan,
    };
    tokio::spawn(natter::shell::run_with(
        node,
        listener,
        None,
        cmd_rx,
        ev_tx,
        Instant::now(),
        opts,
    ));
    Ok(RunningNode { cmd, events, addr })
}

/// Nodes 1 and 2 with their stores in `da` and `db`, linked over loopback.
async fn linked_pair(
    da: &std::path::Path,
    db: &std::path::Path,
) -> Result<(RunningNode, RunningNode)> {
    linked_pair_via(da, db, &Via::Lan).await
}

/// Nodes 1 and 2, linked as `via` says (over iroh: node 1 dials node 2's
/// ticket).
pub async fn linked_pair_via(
    da: &std::path::Path,
    db: &std::path::Path,
    via: &Via,
) -> Result<(RunningNode, RunningNode)> {
    let mut a = start_node(1, da, via).await?;
    let mut b = start_node(2, db, via).await?;
    match via {
        Via::Lan => a.cmd.send(Command::Connect(b.addr)).await?,
        Via::Wan { .. } => {
            let ticket = ticket_of(&mut b).await?;
            a.cmd.send(Command::ConnectTicket(ticket)).await?;
        }
    }
    while !matches!(next_event(&mut a).await?, Event::PeerConnected { .. }) {}
    while !matches!(next_event(&mut b).await?, Event::PeerConnected { .. }) {}
    Ok((a, b))
}

/// A node's ticket, asked for until its endpoint has its relay.
async fn ticket_of(n: &mut RunningNode) -> Result<natter_core::wire::Ticket> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        n.cmd.send(Command::Ticket).await?;
        loop {
            match next_event(n).await? {
                Event::Ticket { ticket } => {
                    return natter_core::wire::Ticket::decode(&ticket).map_err(anyhow::Error::msg)
                }
                Event::Error { .. } => break,
                _ => {}
            }
        }
        ensure!(Instant::now() < deadline, "no ticket within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Events a benchmark node may hold for the benchmark, which reads them
/// on the runtime's own thread. The app's queue (`EVENT_QUEUE`, 65,536)
/// drops the newest events when its reader falls behind, as a UI on a
/// starved core may: the node never waits for its UI. A chat row counts
/// every `message_delivered`, so here the bound covers every event of the
/// largest row (500,000 messages, two events each): with the app's bound,
/// a reader that lost its core for a moment (a busy loop beside the run
/// was enough) missed deliveries and waited for them in vain. Memory
/// grows only while the reader is behind.
const BENCH_EVENT_QUEUE: usize = 2 << 20;

pub async fn next_event(n: &mut RunningNode) -> Result<Event> {
    match tokio::time::timeout(Duration::from_secs(30), n.events.recv()).await {
        Ok(Some(e)) => Ok(e),
        Ok(None) => bail!("node stopped"),
        Err(_) => bail!("no event for 30 s"),
    }
}

/// Reads a node's events as the app's UI does, until it has read
/// `messages` `message_received`. A node whose events nobody reads keeps
/// them all (up to [`BENCH_EVENT_QUEUE`]): the queue then grows by the
/// row's volume, and its page faults and copies on growth were a sixth of
/// the receiving node's thread in the chat row, a cost no app with a UI
/// pays. Fails if the node dropped events or stopped first.
pub fn read_like_a_ui(
    mut events: natter::shell::EventRx,
    messages: usize,
) -> tokio::task::JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let mut received = 0;
        while received < messages {
            match events.recv().await {
                Some(Event::MessageReceived { .. }) => received += 1,
                Some(Event::EventsDropped { count }) => {
                    bail!("the UI fell behind: {count} events dropped after {received} messages")
                }
                Some(_) => {}
                None => bail!("the node stopped after {received} of {messages} messages"),
            }
        }
        Ok(())
    })
}

/// Chat messages per second end to end: `count` messages (public, signed
/// by the author and verified by the receiver, or direct) posted on one
/// node, stored (SQLite file) and sent, stored by the
/// other node and acked; the clock stops when every ack is back. The stores
/// are files in group commit, as natter runs them (`Store::group_commit`:
/// nothing leaves a node before the commit it follows is fsynced).
pub async fn chat(count: usize, direct: bool) -> Result<f64> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (mut a, b) = linked_pair(da.path(), db.path()).await?;
    let ui = read_like_a_ui(b.events, count);
    let start = Instant::now();
    let feeder = {
        let cmd = a.cmd.clone();
        tokio::spawn(async move {
            for i in 0..count {
                let text = format!("message {i} of the chat benchmark");
                let c = if direct {
                    Command::Msg {
                        peer: "bench2".into(),
                        text,
                    }
                } else {
                    Command::Say(text)
                };
                cmd.send(c).await?;
            }
            anyhow::Ok(())
        })
    };
    let mut delivered = 0;
    while delivered < count {
        match next_event(&mut a).await? {
            Event::MessageDelivered { .. } => delivered += 1,
            Event::EventsDropped { count } => {
                bail!("the benchmark fell behind: {count} events dropped after {delivered} deliveries")
            }
            _ => {}
        }
    }
    let secs = start.elapsed().as_secs_f64();
    feeder.await??;
    // Every message delivered was stored and shown by node 2.
    tokio::time::timeout(Duration::from_secs(30), ui)
        .await
        .context("node 2 showed too few messages within 30 s")???;
    let _ = a.cmd.send(Command::Quit).await;
    let _ = b.cmd.send(Command::Quit).await;
    Ok(count as f64 / secs)
}

/// Public messages one node takes in, per second: `count` posts to the
/// default room, signed beforehand by an author the node has verified
/// (identity 1, so the stranger quota does not apply) and sealed
/// beforehand on a natter link, are written to node 2 as fast as it reads;
/// the node checks each signature (on every core), stores it (SQLite file,
/// group commit) and acks it once it is on disk; the clock stops when every ack is back.
/// Unlike [`chat`], no author signs while the clock runs, so the
/// receiving node has the machine's cores to itself (less the writer's
/// `write` calls and the ack reader): what the goal "public messages at
/// 0.8 × the all-cores verify rate" asks of a node.
pub async fn public_intake(count: usize) -> Result<f64> {
    let db = tempfile::tempdir()?;
    let node = start_node(2, db.path(), &Via::Lan).await?;
    let author = identity(1);
    let room = natter_core::chat::default_room();
    // The node's wall clock starts at this instant (`start_node_with`).
    let at = 1_764_000_000_000u64;
    // Ids as an author's node makes them: its clock, then random bytes.
    // The author posts POSTS_PER_MS a millisecond, about the row's rate, so
    // ids sort by time as a real author's do (a counter in the random part
    // would scatter them over the (id, author) index like random ids).
    const POSTS_PER_MS: u64 = 32;
    let mut posted = 0u64;
    let mut next_id = crate::baseline::natter_ids_at(move || {
        posted += 1;
        at + (posted - 1) / POSTS_PER_MS
    });
    let posts: Vec<Frame> = (0..count)
        .map(|i| {
            let (id, clock) = next_id();
            Frame::RoomPost(Box::new(natter_core::chat::sign_room_post(
                &author,
                room,
                id,
                clock,
                format!("message {i} of the chat benchmark"),
            )))
        })
        .collect();
    let mut s = TcpStream::connect(node.addr).await?;
    s.set_nodelay(true)?;
    let mut link = dial(&mut s, &author, identity(2).identity_key()).await?;
    let mut sealed = Vec::new();
    for chunk in posts.chunks(SMALL_BATCH) {
        link.send(chunk, &mut sealed)?;
    }
    drop(posts);
    let (mut rx, mut tx) = s.into_split();
    let ui = read_like_a_ui(node.events, count);
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        tx.write_all(&sealed).await?;
        anyhow::Ok(tx)
    });
    let mut acked = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let mut sink = Vec::new();
    while acked < count {
        let n = tokio::time::timeout(Duration::from_secs(30), rx.read(&mut buf))
            .await
            .context("no ack for 30 s")??;
        ensure!(n > 0, "the node closed the link after {acked} acks");
        for f in link.on_bytes(&buf[..n], &mut sink)?.frames {
            if let Frame::Ack(ids) = f {
                acked += ids.len();
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    drop(writer.await??);
    tokio::time::timeout(Duration::from_secs(30), ui)
        .await
        .context("the node showed too few posts within 30 s")???;
    let _ = node.cmd.send(Command::Quit).await;
    Ok(count as f64 / secs)
}

/// The sending node's store work alone, no node, no link: `count` direct
/// messages as the chat core stores them (ids of natter's layout, the
/// clock then random bytes), written with their outbox entries in batches
/// of `batch` (`Store::insert_outgoing_batch`), each batch then acked
/// (`Store::outbox_ack`), into a SQLite file as the app opens it. What the
/// chat row's sender could reach if its store were all it did. Messages
/// per second.
pub fn store_sender(count: usize, batch: usize) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(dir.path())?;
    let (me, peer) = (identity(1).identity_key().0, identity(2).identity_key().0);
    let mut next_id = crate::baseline::natter_ids();
    let start = Instant::now();
    let mut done = 0;
    while done < count {
        let n = batch.min(count - done);
        let msgs: Vec<StoredMessage> = (done..done + n)
            .map(|i| {
                let (id, at) = next_id();
                StoredMessage {
                    id,
                    conversation: ConversationKey::Direct(peer),
                    author: me,
                    timestamp_ms: at,
                    text: format!("message {i} of the chat benchmark"),
                    signature: None,
                    outgoing: true,
                    received_ms: at,
                    wire: None,
                }
            })
            .collect();
        let items: Vec<(&StoredMessage, &[[u8; 32]])> = msgs
            .iter()
            .map(|m| (m, std::slice::from_ref(&peer)))
            .collect();
        store.insert_outgoing_batch(&items)?;
        let ids: Vec<_> = msgs.iter().map(|m| m.id).collect();
        let acked_at = msgs.last().map_or(0, |m| m.timestamp_ms);
        ensure!(
            store.outbox_ack(&peer, &ids, acked_at)?.len() == n,
            "an ack went astray"
        );
        done += n;
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

/// Round trips of a `size`-byte `Data` frame between two whole nodes on
/// the caller's (multi-thread) runtime, as the app runs them: a command in
/// at one node, its `Data` event out of the other, and back. Unlike
/// `ping_pong` this goes through the shell, so it shows what the hops
/// between the tokio tasks and the node's thread cost.
pub async fn node_round_trip(size: usize, warmup: usize, rounds: usize) -> Result<Latency> {
    node_round_trip_via(size, warmup, rounds, &Via::Lan).await
}

/// [`node_round_trip`] over the link `via` makes.
pub async fn node_round_trip_via(
    size: usize,
    warmup: usize,
    rounds: usize,
    via: &Via,
) -> Result<Latency> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (mut a, mut b) = linked_pair_via(da.path(), db.path(), via).await?;
    let (ia, ib) = (identity(1).identity_key(), identity(2).identity_key());
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..warmup + rounds {
        let t = Instant::now();
        let data = vec![0x5A; size];
        a.cmd.send(Command::SendData { peer: ib, data }).await?;
        while !matches!(next_event(&mut b).await?, Event::Data { .. }) {}
        let data = vec![0x5A; size];
        b.cmd.send(Command::SendData { peer: ia, data }).await?;
        while !matches!(next_event(&mut a).await?, Event::Data { .. }) {}
        if i >= warmup {
            samples.push(t.elapsed());
        }
    }
    let _ = a.cmd.send(Command::Quit).await;
    let _ = b.cmd.send(Command::Quit).await;
    match Latency::from_samples(samples) {
        Some(l) => Ok(l),
        None => bail!("no round-trip samples"),
    }
}

/// What one file transfer between two whole nodes measured.
pub struct FileFigures {
    /// Bytes per second from `/accept` to the receiver's completion.
    pub rate: f64,
    /// Cores this process kept busy meanwhile (CPU time / wall time).
    pub cores: Option<f64>,
    /// Growth of this process's resident memory (both nodes) at its peak.
    pub rss_growth: u64,
    /// Direct 64-byte chat messages, post to the receiver's event, while
    /// idle and during the transfer (none without chat meanwhile).
    pub chat_idle: Latency,
    pub chat_during: Option<Latency>,
}

/// One 64-byte direct message from `a` to `b`, from the post to `b`'s
/// event; notes a file completion seen on the way.
async fn chat_once(a: &mut RunningNode, b: &mut RunningNode, done: &mut bool) -> Result<Duration> {
    let t = Instant::now();
    a.cmd
        .send(Command::Msg {
            peer: "bench2".into(),
            text: "x".repeat(64),
        })
        .await?;
    loop {
        match next_event(b).await? {
            Event::MessageReceived { .. } => return Ok(t.elapsed()),
            Event::FileCompleted { .. } => *done = true,
            Event::FileFailed { reason, .. } => bail!("transfer failed: {reason}"),
            _ => {}
        }
        while a.events.try_recv().is_ok() {}
    }
}

/// Writes `size` pseudo-random bytes (xorshift, incompressible) to `path`.
/// The file is then in the page cache, as a file someone just made is.
pub fn write_random_file(path: &std::path::Path, size: usize) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut block = vec![0u8; 1 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..size.div_ceil(block.len()) {
        for c in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes());
        }
        std::io::Write::write_all(&mut f, &block)?;
    }
    std::io::Write::flush(&mut f)?;
    f.get_ref().set_len(size as u64)?;
    Ok(())
}

/// A file of `size` bytes from node 1 to node 2 (whole nodes, real files,
/// SQLite, verified streaming), with a 64-byte direct message every 20 ms
/// from node 1 to node 2 meanwhile if `chat`. Each of those messages is a
/// SQLite commit on both node threads, which the transfer waits for.
pub async fn file_transfer(size: usize, chat: bool) -> Result<FileFigures> {
    file_transfer_via(size, chat, &Via::Lan).await
}

/// [`file_transfer`] over the link `via` makes.
pub async fn file_transfer_via(size: usize, chat: bool, via: &Via) -> Result<FileFigures> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let src = da.path().join("payload.bin");
    write_random_file(&src, size)?;
    let (mut a, mut b) = linked_pair_via(da.path(), db.path(), via).await?;
    let mut idle = Vec::new();
    let mut unused = false;
    for _ in 0..20 {
        idle.push(chat_once(&mut a, &mut b, &mut unused).await?);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let base_rss = crate::mem::resident_bytes().unwrap_or(0);
    a.cmd
        .send(Command::SendFile {
            peer: "bench2".into(),
            path: src.to_string_lossy().into_owned(),
        })
        .await?;
    let id = loop {
        if let Event::FileOffered { transfer } = next_event(&mut b).await? {
            break natter_core::files::short_id(&transfer.id);
        }
    };
    let start = Instant::now();
    let cpu_before = crate::sys::process_cpu_seconds();
    b.cmd.send(Command::AcceptFile(id)).await?;
    let mut during = Vec::new();
    let mut done = false;
    let mut peak = base_rss;
    while !chat && !done {
        match next_event(&mut b).await? {
            Event::FileCompleted { .. } => done = true,
            Event::FileFailed { reason, .. } => bail!("transfer failed: {reason}"),
            _ => {}
        }
    }
    while !done {
        during.push(chat_once(&mut a, &mut b, &mut done).await?);
        peak = peak.max(crate::mem::resident_bytes().unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(20)).await;
        while let Ok(ev) = b.events.try_recv() {
            match ev {
                Event::FileCompleted { .. } => done = true,
                Event::FileFailed { reason, .. } => bail!("transfer failed: {reason}"),
                _ => {}
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cores = match (cpu_before, crate::sys::process_cpu_seconds()) {
        (Some(before), Some(after)) => Some((after - before) / secs),
        _ => None,
    };
    let _ = a.cmd.send(Command::Quit).await;
    let _ = b.cmd.send(Command::Quit).await;
    let Some(chat_idle) = Latency::from_samples(idle) else {
        bail!("no chat samples");
    };
    let chat_during = Latency::from_samples(during);
    if chat && chat_during.is_none() {
        bail!("no chat samples during the transfer");
    }
    Ok(FileFigures {
        rate: size as f64 / secs,
        cores,
        rss_growth: peak.saturating_sub(base_rss),
        chat_idle,
        chat_during,
    })
}

/// `/search` latency over a history of `messages` messages: p50 of
/// `queries` searches for words of varying frequency.
pub fn search(messages: usize, queries: usize) -> Result<(Latency, Duration)> {
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(dir.path())?;
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra",
        "tango",
    ];
    let built = Instant::now();
    let mut rng = Rng::new(7);
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..messages {
        let text: Vec<&str> = (0..8)
            .map(|_| words[rng.below(words.len() as u64) as usize])
            .collect();
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(i as u64).to_le_bytes());
        batch.push(StoredMessage {
            id,
            conversation: ConversationKey::Public,
            author: [1; 32],
            timestamp_ms: i as u64,
            text: format!("{} {i}", text.join(" ")),
            signature: Some([0; 64]),
            outgoing: false,
            received_ms: i as u64,
            wire: None,
        });
        if batch.len() == batch.capacity() {
            store.insert_messages(&batch)?;
            batch.clear();
        }
    }
    store.insert_messages(&batch)?;
    let build = built.elapsed();
    let mut samples = Vec::with_capacity(queries);
    for q in 0..queries {
        let query = match q % 3 {
            0 => words[q % words.len()].to_string(),
            1 => format!(
                "{} {}",
                words[q % words.len()],
                words[(q * 7) % words.len()]
            ),
            _ => format!("{}", (q * 7919) % messages.max(1)),
        };
        let t = Instant::now();
        let found = store.search(&query, None, 50)?;
        samples.push(t.elapsed());
        ensure!(
            !found.is_empty() || q % 3 == 2,
            "search found nothing for {query}"
        );
    }
    match Latency::from_samples(samples) {
        Some(l) => Ok((l, build)),
        None => bail!("no search samples"),
    }
}

fn child_rss(child: &Child) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok()?;
    let rest = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    rest.split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()
        .map(|kb| kb * 1024)
}

/// Resident memory per established idle peer: a `natter` process with
/// `peers` authenticated links open to it from this process. Returns bytes
/// per peer and the process's resident size before the peers came.
pub async fn idle_peer_memory(peers: usize) -> Result<(f64, u64)> {
    let dir = tempfile::tempdir()?;
    let mut child = Process::new(env!("CARGO_BIN_EXE_natter"))
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--no-discovery",
            "--listen",
            "127.0.0.1:0",
            "--json",
            "--nick",
            "server",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("start natter")?;
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, mut lines) = mpsc::unbounded_channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        }
    });
    let started = lines.recv().await.context("no start event")?;
    let addr: std::net::SocketAddr = started["listen"]
        .as_str()
        .context("listen address")?
        .parse()?;
    let server = started["identity"]
        .as_str()
        .context("identity")?
        .to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = child_rss(&child).context("no /proc")?;

    let mut keep = Vec::with_capacity(peers);
    for i in 0..peers {
        let me = LocalIdentity::generate()?;
        let mut s = TcpStream::connect(addr).await?;
        let (mut link, msg1) =
            Phase::outbound(&me, &HandshakeConfig::new(format!("p{i}"), 0), None)?;
        handshake(&mut s, &mut link, msg1).await?;
        ensure!(
            link.peer().is_some_and(|p| hex(&p.identity().0) == server),
            "wrong server identity"
        );
        keep.push((s, link));
    }
    let mut connected = 0;
    while connected < peers {
        let v = tokio::time::timeout(Duration::from_secs(30), lines.recv())
            .await
            .context("server did not report every peer")?
            .context("server stopped")?;
        if v["event"] == "peer_connected" {
            connected += 1;
        }
    }
    // Let the first resends, sync requests and allocations settle.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let after = child_rss(&child).context("no /proc")?;
    let _ = child.kill();
    let _ = child.wait();
    drop(keep);
    Ok((after.saturating_sub(before) as f64 / peers as f64, before))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Message-to-ack latency of direct messages, one at a time, from a node
/// whose trust store holds `stored` other peers (verified, so none is
/// pruned): what every message costs in name and trust look-ups once many
/// identities are known. Each sample is one `/msg` in until its
/// `MessageDelivered` event out.
pub async fn latency_with_stored_peers(stored: usize, rounds: usize) -> Result<Latency> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    drop(Store::open(da.path())?);
    {
        let mut conn = rusqlite::Connection::open(da.path().join(natter::store::DB_FILE))?;
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO peers (identity, noise_static, nickname, first_seen_ms, \
                 last_seen_ms, last_addr, trust, verified_ms) \
                 VALUES (?1, ?2, ?3, 1, 1, NULL, 'verified', 1)",
            )?;
            for n in 0..stored as u64 {
                let mut id = [0x5au8; 32];
                id[..8].copy_from_slice(&n.to_le_bytes());
                stmt.execute(rusqlite::params![
                    &id[..],
                    &[7u8; 32][..],
                    format!("peer{n}")
                ])?;
            }
        }
        tx.commit()?;
    }
    let (mut a, b) = linked_pair(da.path(), db.path()).await?;
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let t = Instant::now();
        let peer = "bench2".into();
        let text = format!("latency probe {i}");
        a.cmd.send(Command::Msg { peer, text }).await?;
        while !matches!(next_event(&mut a).await?, Event::MessageDelivered { .. }) {}
        samples.push(t.elapsed());
    }
    let _ = a.cmd.send(Command::Quit).await;
    let _ = b.cmd.send(Command::Quit).await;
    match Latency::from_samples(samples) {
        Some(l) => Ok(l),
        None => bail!("no latency samples"),
    }
}
