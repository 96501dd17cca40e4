//! Real sockets on 127.0.0.1 only: two nodes handshake and exchange frames
//! over the tokio shell, and two natter processes find each other with
//! beacons sent to the loopback broadcast address.

use natter::event::Event;
use natter::identity::LocalIdentity;
use natter::net;
use natter::node::{Command, Node, NodeConfig};
use natter::rng::Rng;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command as Process, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

struct InProcess {
    cmd: mpsc::Sender<Command>,
    events: mpsc::UnboundedReceiver<Event>,
    addr: SocketAddr,
    id: LocalIdentity,
}

async fn start(seed: u8) -> InProcess {
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
        natter::store::Store::open_in_memory().unwrap(),
        Rng::new(u64::from(seed)),
        0,
        1_700_000_000_000,
    );
    let (cmd, cmd_rx) = mpsc::channel(16);
    let (ev_tx, events) = mpsc::unbounded_channel();
    tokio::spawn(net::run(
        node,
        listener,
        None,
        cmd_rx,
        ev_tx,
        Instant::now(),
    ));
    InProcess {
        cmd,
        events,
        addr,
        id,
    }
}

async fn wait_for(
    events: &mut mpsc::UnboundedReceiver<Event>,
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
    assert_eq!(pa.fingerprint, b.id.fingerprint().grouped());
    assert_eq!(pb.fingerprint, a.id.fingerprint().grouped());

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
    wait_for(&mut a.events, "a shutdown", |e| *e == Event::Shutdown).await;
    let lost = wait_for(&mut b.events, "b notices", |e| {
        matches!(e, Event::PeerLost { .. })
    })
    .await;
    let Event::PeerLost { reason, .. } = lost else {
        unreachable!()
    };
    assert!(reason.contains("Shutdown"), "{reason}");
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

/// A natter process in line mode with JSON events.
struct Proc {
    child: Child,
    stdin: ChildStdin,
    lines: std_mpsc::Receiver<serde_json::Value>,
    _dir: tempfile::TempDir,
}

impl Proc {
    fn spawn(nick: &str, extra: &[&str]) -> Proc {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Process::new(env!("CARGO_BIN_EXE_natter"))
            .args([
                "--data-dir",
                dir.path().to_str().unwrap(),
                "--nick",
                nick,
                "--json",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("natter starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        Proc {
            child,
            stdin,
            lines,
            _dir: dir,
        }
    }

    fn wait(&self, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if pred(&v) => return v,
                Ok(_) => {}
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn two_processes_on_one_host_discover_each_other_over_loopback_broadcast() {
    let port = free_udp_port().to_string();
    let args = [
        "--beacon-addr",
        "127.255.255.255",
        "--beacon-port",
        &port,
        "--beacon-interval-ms",
        "500",
    ];
    let mut a = Proc::spawn("alice", &args);
    let mut b = Proc::spawn("bob", &args);
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
    let mut a = Proc::spawn("alice", &["--no-discovery"]);
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
