//! Real sockets on 127.0.0.1 only: two nodes handshake and exchange frames
//! over the tokio shell, and two natter processes find each other with
//! beacons sent to the loopback broadcast address.

mod common;

use common::{data_dir, free_udp_port, Proc};
use natter::shell as net;
use natter::store::Store;
use natter_core::chat::store::{
    ConversationKey, IdentityBytes, NoiseStaticKey, PeerRecord, StoredMessage, TrustLevel,
};
use natter_core::chat::{ChatStore, MemoryStore, StoreError};
use natter_core::event::Event;
use natter_core::identity::LocalIdentity;
use natter_core::node::{Command, Node, NodeConfig};
use natter_core::rng::Rng;
use natter_core::wire::MessageId;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

struct InProcess {
    cmd: mpsc::Sender<Command>,
    events: natter::shell::EventRx,
    addr: SocketAddr,
    id: LocalIdentity,
    shell: tokio::task::JoinHandle<()>,
}

async fn start(seed: u8) -> InProcess {
    start_with(seed, Box::new(Store::open_in_memory().unwrap())).await
}

async fn start_with(seed: u8, store: Box<dyn ChatStore>) -> InProcess {
    start_with_options(seed, store, net::Options::default()).await
}

async fn start_with_options(seed: u8, store: Box<dyn ChatStore>, opts: net::Options) -> InProcess {
    let id = LocalIdentity::from_secrets([seed; 32], [seed + 1; 32]).unwrap();
    let listener = net::listen("127.0.0.1:0".parse().unwrap(), false)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = NodeConfig {
        nickname: format!("n{seed}"),
        listen_port: addr.port(),
        discovery: None,
        ..NodeConfig::default()
    };
    let node = Node::new(
        LocalIdentity::from_secrets([seed; 32], [seed + 1; 32]).unwrap(),
        cfg,
        store,
        Rng::new(u64::from(seed)),
        0,
        1_700_000_000_000,
    );
    let (cmd, cmd_rx) = mpsc::channel(16);
    let (ev_tx, events) = natter::shell::event_channel();
    let shell = tokio::spawn(net::run_with(
        node,
        listener,
        None,
        cmd_rx,
        ev_tx,
        Instant::now(),
        opts,
    ));
    InProcess {
        cmd,
        events,
        addr,
        id,
        shell,
    }
}

async fn wait_for(
    events: &mut natter::shell::EventRx,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(e)) if pred(&e) => return e,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("event stream ended while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_handshake_and_exchange_frames_both_ways() {
    let mut a = start(10).await;
    let mut b = start(20).await;
    a.cmd.send(Command::Connect(b.addr)).await.unwrap();
    let ea = wait_for(&mut a.events, "a connected", |e| {
        matches!(e, Event::PeerConnected { .. })
    })
    .await;
    let eb = wait_for(&mut b.events, "b connected", |e| {
        matches!(e, Event::PeerConnected { .. })
    })
    .await;
    // Each side authenticated the other's identity.
    let Event::PeerConnected { peer: pa, .. } = ea else {
        unreachable!()
    };
    let Event::PeerConnected { peer: pb, .. } = eb else {
        unreachable!()
    };
    assert_eq!(pa.identity, b.id.identity_key());
    assert_eq!(pb.identity, a.id.identity_key());

    // Frames both ways, including ones larger than a socket read.
    for len in [1usize, 1000, 60_000] {
        a.cmd
            .send(Command::SendData {
                peer: b.id.identity_key(),
                data: vec![7; len],
            })
            .await
            .unwrap();
        wait_for(
            &mut b.events,
            "data at b",
            |e| matches!(e, Event::Data { len: l, .. } if *l == len),
        )
        .await;
        b.cmd
            .send(Command::SendData {
                peer: a.id.identity_key(),
                data: vec![9; len],
            })
            .await
            .unwrap();
        wait_for(
            &mut a.events,
            "data at a",
            |e| matches!(e, Event::Data { len: l, .. } if *l == len),
        )
        .await;
    }

    a.cmd.send(Command::Quit).await.unwrap();
    wait_for(&mut a.events, "a shutdown", |e| {
        matches!(e, Event::Shutdown)
    })
    .await;
    let lost = wait_for(&mut b.events, "b notices", |e| {
        matches!(e, Event::PeerLost { .. })
    })
    .await;
    let Event::PeerLost { reason, .. } = lost else {
        unreachable!()
    };
    assert!(reason.to_string().contains("Shutdown"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_wrong_identity_do_not_disturb_a_live_link() {
    let mut a = start(30).await;
    let mut b = start(40).await;
    a.cmd.send(Command::Connect(b.addr)).await.unwrap();
    wait_for(&mut a.events, "a connected", |e| {
        matches!(e, Event::PeerConnected { .. })
    })
    .await;
    // Garbage, an oversized length prefix and a half-open connection to b.
    let mut junk = tokio::net::TcpStream::connect(b.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut junk, &[0xff, 0xff, 1, 2, 3])
        .await
        .unwrap();
    let _idle = tokio::net::TcpStream::connect(b.addr).await.unwrap();
    wait_for(&mut b.events, "b rejects garbage", |e| {
        matches!(e, Event::LinkFailed { .. })
    })
    .await;
    a.cmd
        .send(Command::SendData {
            peer: b.id.identity_key(),
            data: vec![1; 10],
        })
        .await
        .unwrap();
    wait_for(&mut b.events, "data still flows", |e| {
        matches!(e, Event::Data { len: 10, .. })
    })
    .await;
}

/// A store whose `search` panics, standing for any bug in the node.
#[derive(Debug, Default)]
struct PanicOnSearch(MemoryStore);

impl ChatStore for PanicOnSearch {
    fn search(
        &self,
        _: &str,
        _: Option<&[u8; 32]>,
        _: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        panic!("search exploded");
    }
    fn room_controls(&self) -> Result<Vec<StoredMessage>, StoreError> {
        self.0.room_controls()
    }
    fn outgoing_by_id_tag(&self, t: &[u8], n: usize) -> Result<Vec<StoredMessage>, StoreError> {
        self.0.outgoing_by_id_tag(t, n)
    }
    fn insert_messages(&mut self, m: &[StoredMessage]) -> Result<Vec<bool>, StoreError> {
        self.0.insert_messages(m)
    }
    fn has_message(&self, a: &IdentityBytes, id: &MessageId) -> Result<bool, StoreError> {
        self.0.has_message(a, id)
    }
    fn get_message(
        &self,
        a: &IdentityBytes,
        id: &MessageId,
    ) -> Result<Option<StoredMessage>, StoreError> {
        self.0.get_message(a, id)
    }
    fn message_count(&self) -> Result<u64, StoreError> {
        self.0.message_count()
    }
    fn history(&self, c: &ConversationKey, n: usize) -> Result<Vec<StoredMessage>, StoreError> {
        self.0.history(c, n)
    }
    fn public_since(
        &self,
        since: u64,
        until: u64,
        n: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.0.public_since(since, until, n)
    }
    fn newest_public_timestamp(&self, at_most: u64) -> Result<Option<u64>, StoreError> {
        self.0.newest_public_timestamp(at_most)
    }
    fn insert_outgoing_batch(
        &mut self,
        items: &[(&StoredMessage, &[IdentityBytes])],
    ) -> Result<Vec<bool>, StoreError> {
        self.0.insert_outgoing_batch(items)
    }
    fn outbox_add(&mut self, entries: &[(MessageId, IdentityBytes)]) -> Result<usize, StoreError> {
        self.0.outbox_add(entries)
    }
    fn outbox_for_peer(
        &self,
        p: &IdentityBytes,
        n: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.0.outbox_for_peer(p, n)
    }
    fn outbox_ack(
        &mut self,
        p: &IdentityBytes,
        ids: &[MessageId],
        now: u64,
    ) -> Result<Vec<MessageId>, StoreError> {
        self.0.outbox_ack(p, ids, now)
    }
    fn outbox_recipients(&self, since: u64, n: usize) -> Result<Vec<IdentityBytes>, StoreError> {
        self.0.outbox_recipients(since, n)
    }
    fn expire_outbox(&mut self, before: u64) -> Result<usize, StoreError> {
        self.0.expire_outbox(before)
    }
    fn prune_peers(&mut self, before: u64, keep: usize) -> Result<Vec<IdentityBytes>, StoreError> {
        self.0.prune_peers(before, keep)
    }
    fn pending_peers(&self, id: &MessageId) -> Result<Vec<IdentityBytes>, StoreError> {
        self.0.pending_peers(id)
    }
    fn outbox_peers(&self) -> Result<Vec<IdentityBytes>, StoreError> {
        self.0.outbox_peers()
    }
    fn delivered_to(&self, id: &MessageId) -> Result<Vec<IdentityBytes>, StoreError> {
        self.0.delivered_to(id)
    }
    fn upsert_peer_seen(
        &mut self,
        id: &IdentityBytes,
        noise: &NoiseStaticKey,
        nick: &str,
        now: u64,
        addr: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.0.upsert_peer_seen(id, noise, nick, now, addr)
    }
    fn get_peer(&self, id: &IdentityBytes) -> Result<Option<PeerRecord>, StoreError> {
        self.0.get_peer(id)
    }
    fn peers(&self) -> Result<Vec<PeerRecord>, StoreError> {
        self.0.peers()
    }
    fn set_trust(&mut self, id: &IdentityBytes, t: TrustLevel, now: u64) -> Result<(), StoreError> {
        self.0.set_trust(id, t, now)
    }
    fn known_addrs(&self) -> Result<Vec<(IdentityBytes, String)>, StoreError> {
        self.0.known_addrs()
    }
    fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.0.get_meta(key)
    }
    fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.0.set_meta(key, value)
    }
}

/// Two nodes whose stores are files in group commit, as natter runs them:
/// every message sent both ways is received, acked and, once both nodes
/// have quit, in both histories.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_in_group_commit_deliver_ack_and_keep_every_message() {
    const EACH_WAY: usize = 300;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let in_group_commit = |dir: &std::path::Path| {
        let mut store = Store::open(dir).unwrap();
        let group = store.group_commit().unwrap();
        let opts = net::Options {
            group_commit: Some(group),
            ..net::Options::default()
        };
        (Box::new(store) as Box<dyn ChatStore>, opts)
    };
    let (store_a, opts_a) = in_group_commit(da.path());
    let (store_b, opts_b) = in_group_commit(db.path());
    let mut a = start_with_options(70, store_a, opts_a).await;
    let mut b = start_with_options(80, store_b, opts_b).await;
    a.cmd.send(Command::Connect(b.addr)).await.unwrap();
    for n in [&mut a, &mut b] {
        wait_for(&mut n.events, "connected", |e| {
            matches!(e, Event::PeerConnected { .. })
        })
        .await;
    }
    for i in 0..EACH_WAY {
        for (from, to) in [(&a, "n80"), (&b, "n70")] {
            let text = format!("message {i} to {to}");
            let peer = to.into();
            from.cmd.send(Command::Msg { peer, text }).await.unwrap();
        }
    }
    for n in [&mut a, &mut b] {
        let (mut received, mut delivered) = (0, 0);
        while received < EACH_WAY || delivered < EACH_WAY {
            match wait_for(&mut n.events, "messages and acks", |e| {
                matches!(
                    e,
                    Event::MessageReceived { .. } | Event::MessageDelivered { .. }
                )
            })
            .await
            {
                Event::MessageReceived { .. } => received += 1,
                _ => delivered += 1,
            }
        }
        assert_eq!((received, delivered), (EACH_WAY, EACH_WAY));
    }
    for n in [a, b] {
        n.cmd.send(Command::Quit).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), n.shell)
            .await
            .expect("the shell returns")
            .unwrap();
    }
    for dir in [da.path(), db.path()] {
        let store = Store::open(dir).unwrap();
        assert_eq!(store.message_count().unwrap(), 2 * EACH_WAY as u64);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_panics_ends_its_shell_with_an_error_and_closes_its_links() {
    let mut a = start_with(50, Box::new(PanicOnSearch::default())).await;
    let mut b = start(60).await;
    a.cmd.send(Command::Connect(b.addr)).await.unwrap();
    wait_for(&mut b.events, "b connected", |e| {
        matches!(e, Event::PeerConnected { .. })
    })
    .await;
    a.cmd
        .send(Command::Search {
            query: "anything".into(),
            room: None,
            limit: 10,
        })
        .await
        .unwrap();
    let err = wait_for(&mut a.events, "the error", |e| {
        matches!(e, Event::Error { .. })
    })
    .await;
    assert!(format!("{err:?}").contains("search exploded"), "{err:?}");
    tokio::time::timeout(Duration::from_secs(5), a.shell)
        .await
        .expect("the shell returns")
        .unwrap();
    wait_for(&mut b.events, "b sees a go", |e| {
        matches!(e, Event::PeerLost { .. })
    })
    .await;
}

#[test]
fn two_processes_on_one_host_discover_each_other_over_loopback_broadcast() {
    let port = free_udp_port().to_string();
    let args = |nick: &'static str| -> Vec<String> {
        [
            "--nick",
            nick,
            "--listen",
            "127.0.0.1:0",
            "--beacon-addr",
            "127.255.255.255",
            "--beacon-port",
            &port,
            "--beacon-interval-ms",
            "500",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let ((_da, da), (_db, db)) = (data_dir(), data_dir());
    let (aa, ba) = (args("alice"), args("bob"));
    let mut a = Proc::spawn(&da, &aa.iter().map(String::as_str).collect::<Vec<_>>());
    let mut b = Proc::spawn(&db, &ba.iter().map(String::as_str).collect::<Vec<_>>());
    let a_started = a.wait("alice started", |v| v["event"] == "started");
    let b_started = b.wait("bob started", |v| v["event"] == "started");
    let got = a.wait("alice connected to bob", |v| v["event"] == "peer_connected");
    assert_eq!(got["peer"]["identity"], b_started["identity"]);
    assert_eq!(got["peer"]["nickname"], "bob");
    let got = b.wait("bob connected to alice", |v| v["event"] == "peer_connected");
    assert_eq!(got["peer"]["identity"], a_started["identity"]);

    a.send("/peers");
    let peers = a.wait("peer list", |v| v["event"] == "peers");
    assert_eq!(peers["peers"].as_array().map(Vec::len), Some(1));
    assert_eq!(peers["peers"][0]["state"], "established");

    b.send("/quit");
    b.wait("bob shuts down", |v| v["event"] == "shutdown");
    assert!(b.child.wait().unwrap().success());
    a.wait("alice sees bob leave", |v| v["event"] == "peer_lost");
}

#[test]
fn bad_command_gets_a_clear_error_and_the_node_keeps_running() {
    let (_d, dir) = data_dir();
    let mut a = Proc::spawn(
        &dir,
        &[
            "--nick",
            "alice",
            "--no-discovery",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    a.wait("started", |v| v["event"] == "started");
    a.send("/frobnicate");
    let err = a.wait("error", |v| v["event"] == "error");
    assert!(
        err["text"].as_str().unwrap().contains("unknown command"),
        "{err}"
    );
    a.send("/connect nonsense");
    a.wait("error", |v| v["event"] == "error");
    a.send("/peers");
    a.wait("still alive", |v| v["event"] == "peers");
}

#[test]
fn a_closed_standard_output_stops_natter_cleanly() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command as Process, Stdio};
    let (_d, dir) = data_dir();
    let mut child = Process::new(env!("CARGO_BIN_EXE_natter"))
        .arg("--data-dir")
        .arg(&dir)
        .args(["--json", "--no-discovery", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("natter starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout is piped"))
        .read_line(&mut first)
        .expect("a first line");
    assert!(first.contains("\"started\""), "{first}");
    // The reader goes away (the BufReader and its pipe end were dropped);
    // natter's next lines find the pipe closed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("natter can be waited for") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "natter still runs with nobody reading"
        );
        let _ = writeln!(stdin, "/peers");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
    assert!(status.success(), "{status}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}
