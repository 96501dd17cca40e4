//! Real-network tests: natter processes in network namespaces joined by veth
//! pairs to a bridge, so that broadcast discovery, link loss and hostile
//! datagrams go over real (virtual) Ethernet.
//!
//! Network rule: nothing here is added to the root namespace and no packet
//! leaves the namespaces these tests create. The bridge lives in a "switch"
//! namespace of its own; each node namespace holds only `lo` and `eth0`
//! (the far end of a veth whose near end is a bridge port), addressed in
//! 10.77.N.0/24. Every namespace is named `natter-t<pid>-<test>-<node>` and is
//! deleted by a drop guard, also when a test panics.
//!
//! The tests need root and iproute2 (`ip netns`, veth, bridge). Without them
//! they print a loud SKIPPED message and pass, unless `NATTER_REQUIRE_NETNS=1`
//! (set by CI), which turns the skip into a failure.
//!
//! Datagrams from a hostile host are sent by this test binary itself, re-run
//! inside a namespace (`ip netns exec NS <this binary> helper_in_namespace`)
//! with [`HELPER_ENV`] saying what to do.

mod common;

use common::RelayProc;
use natter::keyfile;
use natter::shell::{DEFAULT_BEACON_PORT, DEFAULT_LISTEN_PORT};
use natter_core::identity::{BoundKeys, LocalIdentity};
use natter_core::wire::limits::PROTOCOL_VERSION;
use natter_core::wire::{decode_beacon, encode_beacon, BeaconBody};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::UdpSocket;
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Prefix of every namespace these tests create.
const NS_PREFIX: &str = "natter-t";
/// Selects helper mode when this test binary is re-run inside a namespace.
const HELPER_ENV: &str = "NATTER_NETNS_HELPER";
/// Beacon interval for every node: fast discovery, short tests.
const BEACON_MS: &str = "500";

// ---- availability ---------------------------------------------------------

/// Tests run one at a time: they are timing-sensitive and share the kernel's
/// (global) netlink lock while setting up.
static SERIAL: Mutex<()> = Mutex::new(());

/// Take the serialising lock if namespaces are usable; otherwise skip loudly
/// (or fail, under `NATTER_REQUIRE_NETNS=1`).
fn netns_or_skip(test: &str) -> Option<MutexGuard<'static, ()>> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    match PROBE.get_or_init(probe) {
        Ok(()) => Some(SERIAL.lock().unwrap_or_else(|e| e.into_inner())),
        Err(why) => {
            let msg = format!(
                "SKIPPED {test}: network namespace tests need root and iproute2 \
                 (ip netns, veth, bridge): {why}"
            );
            if std::env::var("NATTER_REQUIRE_NETNS").as_deref() == Ok("1") {
                panic!("NATTER_REQUIRE_NETNS=1 but {msg}");
            }
            let bar = "!".repeat(78);
            // Straight to the stderr stream, not eprintln!: the test harness
            // captures the latter and would hide the skip.
            let _ = writeln!(
                std::io::stderr().lock(),
                "\n{bar}\n!! {msg}\n!! (set NATTER_REQUIRE_NETNS=1 to make this a failure)\n{bar}\n"
            );
            None
        }
    }
}

fn probe() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .ok_or("cannot read the effective uid")?;
    if euid != "0" {
        return Err(format!("not root (euid {euid})"));
    }
    let v = Command::new("ip")
        .arg("-V")
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if !v.status.success() {
        return Err("`ip -V` failed".into());
    }
    // The NAT and relay tests need these too; without them they would
    // fail half-way instead of being skipped (.ci/run installs both).
    for (tool, arg, package) in [
        ("nft", "--version", "nftables"),
        ("openssl", "version", "openssl"),
    ] {
        let ok = Command::new(tool)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            return Err(format!("cannot run `{tool}` (package {package})"));
        }
    }
    remove_stale_namespaces();
    // Everything the tests use, once, in a throwaway namespace.
    let mut lab = Lab {
        prefix: format!("{NS_PREFIX}{}-probe", std::process::id()),
        subnet: 0,
        namespaces: Vec::new(),
    };
    let ns = lab.name("p");
    try_ip(&["netns", "add", &ns])?;
    lab.namespaces.push(ns.clone());
    try_ip(&["-n", &ns, "link", "add", "br0", "type", "bridge"])?;
    try_ip(&[
        "-n", &ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1",
    ])?;
    Ok(())
}

/// Delete namespaces left by an earlier run of these tests that was killed
/// before its drop guards ran (its pid no longer exists).
fn remove_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("[netns] removing stale namespace {name}");
            let _ = try_ip(&["netns", "del", name]);
        }
    }
}

fn try_ip(args: &[&str]) -> Result<Output, String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out)
}

fn ip(args: &[&str]) {
    if let Err(e) = try_ip(args) {
        panic!("{e}");
    }
}

// ---- topology -------------------------------------------------------------

/// Namespaces of one test: a switch namespace holding bridge `br0`, and one
/// namespace per node whose `eth0` is wired to a port of that bridge.
/// Dropping the lab deletes every namespace (and with them the veths and the
/// bridge).
struct Lab {
    prefix: String,
    subnet: u8,
    namespaces: Vec<String>,
}

/// Whether node addresses get a broadcast address (`brd +`), as DHCP clients
/// and network managers configure them, or none, as a bare `ip addr add` does.
#[derive(Clone, Copy, PartialEq)]
enum Brd {
    Set,
    Unset,
}

impl Lab {
    fn new(test: &str, subnet: u8, nodes: &[&str], brd: Brd) -> Lab {
        let mut lab = Lab {
            prefix: format!("{NS_PREFIX}{}-{test}", std::process::id()),
            subnet,
            namespaces: Vec::new(),
        };
        let sw = lab.name("sw");
        ip(&["netns", "add", &sw]);
        lab.namespaces.push(sw.clone());
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        ip(&[
            "-n",
            &sw,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
        ]);
        ip(&["-n", &sw, "link", "set", "br0", "up"]);
        for (i, node) in nodes.iter().enumerate() {
            let ns = lab.name(node);
            ip(&["netns", "add", &ns]);
            lab.namespaces.push(ns.clone());
            let port = format!("p{i}");
            // Created inside the switch namespace, far end moved straight
            // into the node's: nothing ever appears in the root namespace.
            ip(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ]);
            ip(&["-n", &sw, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &sw, "link", "set", &port, "up"]);
            let cidr = format!("{}/24", lab.addr(i));
            let mut add = vec!["-n", &ns, "addr", "add", &cidr];
            if brd == Brd::Set {
                add.extend(["brd", "+"]);
            }
            add.extend(["dev", "eth0"]);
            ip(&add);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        lab
    }

    fn name(&self, node: &str) -> String {
        format!("{}-{node}", self.prefix)
    }

    /// Address of the `i`-th node.
    fn addr(&self, i: usize) -> String {
        format!("10.77.{}.{}", self.subnet, i + 1)
    }

    fn broadcast(&self) -> String {
        format!("10.77.{}.255", self.subnet)
    }

    fn set_link(&self, node: &str, up: bool) {
        let ns = self.name(node);
        ip(&[
            "-n",
            &ns,
            "link",
            "set",
            "eth0",
            if up { "up" } else { "down" },
        ]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Node namespaces first (their veths go with them), then the switch.
        for ns in self.namespaces.iter().rev() {
            if let Err(e) = try_ip(&["netns", "del", ns]) {
                eprintln!("[netns] cleanup: {e}");
            }
        }
    }
}

// ---- natter processes -----------------------------------------------------

/// A natter process in line mode with JSON events, inside a namespace.
struct Node {
    label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    events: mpsc::Receiver<(Instant, Value)>,
    /// Every event read so far, for assertions over a period and for the
    /// report when a test fails.
    seen: Vec<(Instant, Value)>,
    stderr: Arc<Mutex<String>>,
    started: Value,
    dir: tempfile::TempDir,
}

impl Node {
    fn spawn(lab: &Lab, node: &str, nick: &str, extra: &[&str]) -> Node {
        Node::spawn_in(lab, node, nick, extra, tempfile::tempdir().unwrap())
    }

    /// A node on the data directory `dir` (a restart keeps it).
    fn spawn_in(lab: &Lab, node: &str, nick: &str, extra: &[&str], dir: tempfile::TempDir) -> Node {
        let ns = lab.name(node);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns, env!("CARGO_BIN_EXE_natter")])
            .args(["--data-dir", dir.path().to_str().unwrap()])
            .args(["--nick", nick, "--json"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ip netns exec natter starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "event": "non_json", "line": line }));
                if tx.send((Instant::now(), v)).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut n = Node {
            label: format!("{nick}@{node}"),
            stdin: child.stdin.take(),
            child,
            events,
            seen: Vec::new(),
            stderr,
            started: Value::Null,
            dir,
        };
        n.started = n.wait("started", Duration::from_secs(10), |v| {
            v["event"] == "started"
        });
        n
    }

    fn identity(&self) -> String {
        self.started["identity"].as_str().unwrap().to_owned()
    }

    fn listen_port(&self) -> u16 {
        let listen = self.started["listen"].as_str().unwrap();
        listen.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// The next event matching `pred` (earlier ones are kept in `seen`).
    fn wait_at(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> (Instant, Value) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((at, v)) => {
                    self.seen.push((at, v.clone()));
                    if pred(&v) {
                        return (at, v);
                    }
                }
                Err(_) => panic!(
                    "{}: no {what} within {timeout:?} (exit status: {:?})",
                    self.label,
                    self.child.try_wait()
                ),
            }
        }
    }

    fn wait(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_at(what, timeout, pred).1
    }

    /// Wait until this node has reported `peer_connected` for every identity
    /// in `ids`; returns when the last one arrived.
    fn wait_connected(&mut self, ids: &[String], timeout: Duration) -> Instant {
        let mut missing: BTreeSet<String> = ids.iter().cloned().collect();
        let deadline = Instant::now() + timeout;
        let mut last = Instant::now();
        while !missing.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let what = format!("peer_connected for {missing:?}");
            let (at, v) = self.wait_at(&what, left, |v| v["event"] == "peer_connected");
            if let Some(id) = v["peer"]["identity"].as_str() {
                missing.remove(id);
            }
            last = at;
        }
        last
    }

    /// Every event that arrives within `period`.
    fn collect(&mut self, period: Duration) -> Vec<Value> {
        let deadline = Instant::now() + period;
        let mut out = Vec::new();
        while let Ok((at, v)) = self
            .events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push((at, v.clone()));
            out.push(v);
        }
        out
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// `/peers`, answered with the node's peer list.
    fn peers(&mut self) -> Vec<Value> {
        self.send("/peers");
        let v = self.wait("peers", Duration::from_secs(5), |v| v["event"] == "peers");
        v["peers"].as_array().cloned().unwrap_or_default()
    }

    /// Quit with `/quit` and expect a clean exit.
    fn quit(&mut self) {
        self.send("/quit");
        self.wait("shutdown", Duration::from_secs(5), |v| {
            v["event"] == "shutdown"
        });
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{}: exit status {status}", self.label);
                return;
            }
            assert!(Instant::now() < deadline, "{}: did not exit", self.label);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash or a power cut would end it; its data directory
    /// is kept for a restart.
    fn kill9(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let placeholder = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, placeholder)
    }

    fn seen_events(&self, kind: &str) -> Vec<&Value> {
        self.seen
            .iter()
            .map(|(_, v)| v)
            .filter(|v| v["event"] == kind)
            .collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            while let Ok(e) = self.events.try_recv() {
                self.seen.push(e);
            }
            eprintln!("---- {} events:", self.label);
            for (_, v) in &self.seen {
                eprintln!("  {v}");
            }
            eprintln!(
                "---- {} stderr:\n{}",
                self.label,
                self.stderr.lock().unwrap()
            );
        }
    }
}

fn peer<'a>(peers: &'a [Value], identity: &str) -> &'a Value {
    peers
        .iter()
        .find(|p| p["identity"] == identity)
        .unwrap_or_else(|| panic!("no peer {identity} in {peers:?}"))
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

// ---- tests ----------------------------------------------------------------

/// Three hosts on one Ethernet segment with default discovery (beacons to
/// each interface's broadcast address): a full mesh forms by itself.
#[test]
fn three_hosts_on_a_bridge_find_each_other_by_broadcast() {
    let Some(_serial) = netns_or_skip("three_hosts_on_a_bridge_find_each_other_by_broadcast")
    else {
        return;
    };
    let t0 = Instant::now();
    let lab = Lab::new("mesh", 1, &["a", "b", "c"], Brd::Set);
    let setup = t0.elapsed();
    let spawned = Instant::now();
    let mut nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|n| {
            Node::spawn(
                &lab,
                n,
                &format!("node-{n}"),
                &["--beacon-interval-ms", BEACON_MS],
            )
        })
        .collect();
    let ids: Vec<String> = nodes.iter().map(Node::identity).collect();
    let want_targets = serde_json::json!([format!("{}:{DEFAULT_BEACON_PORT}", lab.broadcast())]);
    for n in &nodes {
        assert_eq!(n.started["beacon_targets"], want_targets, "{}", n.label);
        assert_eq!(
            n.started["listen"],
            format!("0.0.0.0:{DEFAULT_LISTEN_PORT}")
        );
    }

    let mut mesh = Duration::ZERO;
    for (i, n) in nodes.iter_mut().enumerate() {
        let others: Vec<String> = (0..3).filter(|j| *j != i).map(|j| ids[j].clone()).collect();
        let done = n.wait_connected(&others, Duration::from_secs(10));
        mesh = mesh.max(done.saturating_duration_since(spawned));
    }

    for (i, n) in nodes.iter_mut().enumerate() {
        let peers = n.peers();
        assert_eq!(peers.len(), 2, "{}: {peers:?}", n.label);
        for j in (0..3).filter(|j| *j != i) {
            let p = peer(&peers, &ids[j]);
            assert_eq!(p["state"], "established", "{}: {p}", n.label);
            assert_eq!(p["addr"], format!("{}:{DEFAULT_LISTEN_PORT}", lab.addr(j)));
            assert_eq!(p["nickname"], format!("node-{}", ["a", "b", "c"][j]));
        }
        assert!(n.seen_events("peer_lost").is_empty(), "{}", n.label);
    }
    for n in &mut nodes {
        n.quit();
    }
    eprintln!(
        "[netns] mesh: setup {} ms, full mesh {} ms after the first start, total {} ms",
        ms(setup),
        ms(mesh),
        ms(t0.elapsed())
    );
}

/// Two natter processes in one namespace share the beacon port
/// (SO_REUSEADDR): each receives the other's broadcasts.
#[test]
fn two_processes_on_one_host_share_the_beacon_port() {
    let Some(_serial) = netns_or_skip("two_processes_on_one_host_share_the_beacon_port") else {
        return;
    };
    let t0 = Instant::now();
    let lab = Lab::new("solo", 2, &["h"], Brd::Set);
    let args = ["--beacon-interval-ms", BEACON_MS];
    let spawned = Instant::now();
    let mut a = Node::spawn(&lab, "h", "first", &args);
    let mut b = Node::spawn(&lab, "h", "second", &args);
    assert_eq!(a.listen_port(), DEFAULT_LISTEN_PORT);
    assert_ne!(b.listen_port(), DEFAULT_LISTEN_PORT, "second falls back");
    let (ia, ib) = (a.identity(), b.identity());
    let da = a.wait_connected(std::slice::from_ref(&ib), Duration::from_secs(10));
    let db = b.wait_connected(std::slice::from_ref(&ia), Duration::from_secs(10));
    let connected = da.max(db).saturating_duration_since(spawned);

    let host = lab.addr(0);
    let (pa, pb) = (a.listen_port(), b.listen_port());
    for (n, other, port) in [(&mut a, &ib, pb), (&mut b, &ia, pa)] {
        let peers = n.peers();
        assert_eq!(peers.len(), 1, "{}: {peers:?}", n.label);
        let p = peer(&peers, other);
        assert_eq!(p["state"], "established");
        assert_eq!(p["addr"], format!("{host}:{port}"));
    }
    a.quit();
    b.wait("peer_lost after first quits", Duration::from_secs(5), |v| {
        v["event"] == "peer_lost"
    });
    b.quit();
    eprintln!(
        "[netns] one host: connected {} ms after the first start, total {} ms",
        ms(connected),
        ms(t0.elapsed())
    );
}

/// Pull the cable: keepalives notice within dead-after, and the link comes
/// back by itself when the cable is plugged in again.
#[test]
fn link_loss_is_detected_and_the_link_comes_back() {
    let Some(_serial) = netns_or_skip("link_loss_is_detected_and_the_link_comes_back") else {
        return;
    };
    let t0 = Instant::now();
    let lab = Lab::new("loss", 3, &["a", "b"], Brd::Set);
    let args = [
        "--beacon-interval-ms",
        BEACON_MS,
        "--keepalive-ms",
        "1000",
        "--dead-after-ms",
        "3000",
    ];
    let mut a = Node::spawn(&lab, "a", "alice", &args);
    let mut b = Node::spawn(&lab, "b", "bob", &args);
    let (ia, ib) = (a.identity(), b.identity());
    a.wait_connected(std::slice::from_ref(&ib), Duration::from_secs(10));
    b.wait_connected(std::slice::from_ref(&ia), Duration::from_secs(10));
    // An idle link outlives dead-after: keepalives answer for it.
    a.collect(Duration::from_millis(3500));
    b.collect(Duration::ZERO);
    for n in [&a, &b] {
        assert!(n.seen_events("peer_lost").is_empty(), "{}", n.label);
    }

    let down = Instant::now();
    lab.set_link("a", false);
    let mut lost = Vec::new();
    for n in [&mut a, &mut b] {
        let (at, v) = n.wait_at("peer_lost", Duration::from_secs(8), |v| {
            v["event"] == "peer_lost"
        });
        let after = at.saturating_duration_since(down);
        let reason = v["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("keepalive"), "{}: {v}", n.label);
        assert!(
            after <= Duration::from_secs(6),
            "{}: peer_lost only after {after:?}",
            n.label
        );
        lost.push(ms(after));
    }

    let up = Instant::now();
    lab.set_link("a", true);
    let back_a = a.wait_connected(std::slice::from_ref(&ib), Duration::from_secs(15));
    let back_b = b.wait_connected(std::slice::from_ref(&ia), Duration::from_secs(15));
    let back = back_a.max(back_b).saturating_duration_since(up);
    for (n, other) in [(&mut a, &ib), (&mut b, &ia)] {
        let peers = n.peers();
        assert_eq!(peer(&peers, other)["state"], "established", "{}", n.label);
    }
    a.quit();
    b.quit();
    eprintln!(
        "[netns] link loss: peer_lost after {lost:?} ms (alice, bob), reconnected {} ms after link up, total {} ms",
        ms(back),
        ms(t0.elapsed())
    );
}

/// BLAKE3 of a file, read in pieces.
fn file_hash(path: &std::path::Path) -> String {
    let mut h = bao_tree::blake3::Hasher::new();
    let mut f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    natter_core::hex(h.finalize().as_bytes())
}

/// A file of `len` pseudo-random bytes.
fn random_file(path: &std::path::Path, len: usize, seed: u64) {
    let mut rng = natter_core::rng::Rng::new(seed);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut block = vec![0u8; 1 << 16];
    for _ in 0..len / block.len() {
        for chunk in block.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
        }
        out.write_all(&block).unwrap();
    }
    out.flush().unwrap();
}

/// Offer `path` from `from` to the peer nicknamed `to_nick` on `to` and
/// accept it there; returns the transfer id.
fn offer_and_accept(from: &mut Node, to: &mut Node, to_nick: &str, path: &str) -> String {
    from.send(&format!("/send {to_nick} {path}"));
    let offer = to.wait("file_offered", Duration::from_secs(30), |v| {
        v["event"] == "file_offered" && v["direction"] == "in"
    });
    let id = offer["transfer"].as_str().unwrap().to_owned();
    to.send(&format!("/accept {}", &id[..8]));
    id
}

/// Bytes done of the transfer `id` after a restart, from `/files`.
fn done_after_restart(n: &mut Node, id: &str) -> u64 {
    n.send("/files");
    let v = n.wait("files", Duration::from_secs(5), |v| v["event"] == "files");
    v["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["transfer"] == id)
        .and_then(|t| t["done"].as_u64())
        .unwrap_or_else(|| panic!("transfer {id} not listed: {v}"))
}

/// A 256 MiB file between two hosts whose link is shaped to 400 Mbit/s, so
/// a kill lands mid-way: the receiver is killed with SIGKILL at about half
/// and restarted (it resumes from what it had made durable, and less than
/// half is sent again), then a second file's sender is killed and comes
/// back (the receiver asks again and gets the rest). Both files arrive
/// whole, their BLAKE3 equal to the original's.
#[test]
fn a_big_file_survives_kill_9_of_either_side() {
    let Some(_serial) = netns_or_skip("a_big_file_survives_kill_9_of_either_side") else {
        return;
    };
    let t0 = Instant::now();
    let lab = Lab::new("files", 9, &["a", "b"], Brd::Set);
    for node in ["a", "b"] {
        let ns = lab.name(node);
        let tc = Command::new("ip")
            .args([
                "netns", "exec", &ns, "tc", "qdisc", "add", "dev", "eth0", "root",
            ])
            .args([
                "tbf", "rate", "400mbit", "burst", "256kb", "latency", "100ms",
            ])
            .status()
            .expect("tc runs");
        assert!(tc.success(), "tc qdisc add in {ns}");
    }
    let files = tempfile::tempdir().unwrap();
    let big = files.path().join("big.bin");
    const SIZE: usize = 256 << 20;
    random_file(&big, SIZE, 1);
    let big_hash = file_hash(&big);
    let args = ["--beacon-interval-ms", BEACON_MS];
    let with_downloads = |dir: &tempfile::TempDir| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.push("--download-dir".into());
        v.push(dir.path().join("dl").to_string_lossy().into_owned());
        v
    };
    let dir_b = tempfile::tempdir().unwrap();
    let b_args = with_downloads(&dir_b);
    let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let mut a = Node::spawn(&lab, "a", "alice", &args);
    let mut b = Node::spawn_in(&lab, "b", "bob", &b_args, dir_b);
    let (ia, ib) = (a.identity(), b.identity());
    a.wait_connected(std::slice::from_ref(&ib), Duration::from_secs(10));
    b.wait_connected(std::slice::from_ref(&ia), Duration::from_secs(10));

    // 1. The receiver dies at about half.
    let started = Instant::now();
    let id = offer_and_accept(&mut a, &mut b, "bob", big.to_str().unwrap());
    let at_kill = b.wait("half of the file", Duration::from_secs(60), |v| {
        v["event"] == "file_progress" && v["done"].as_u64().unwrap_or(0) >= (SIZE / 2) as u64
    })["done"]
        .as_u64()
        .unwrap();
    let dir_b = b.kill9();
    let mut b = Node::spawn_in(&lab, "b", "bob", &b_args, dir_b);
    let resumed_from = done_after_restart(&mut b, &id);
    let done = b.wait("the big file", Duration::from_secs(60), |v| {
        v["event"] == "file_completed" || v["event"] == "file_failed"
    });
    let took = started.elapsed();
    assert_eq!(done["event"], "file_completed", "{done}");
    assert_eq!(done["blake3"], big_hash.as_str());
    let saved = std::path::PathBuf::from(done["path"].as_str().unwrap());
    assert_eq!(
        file_hash(&saved),
        big_hash,
        "the saved file is the original"
    );
    let resent = SIZE as u64 - resumed_from;
    assert!(
        resent < (SIZE / 2) as u64,
        "resent {resent} bytes of {SIZE} after the restart (resumed at {resumed_from}, killed at {at_kill})"
    );
    a.wait(
        "the sender hears it completed",
        Duration::from_secs(10),
        |v| v["event"] == "file_completed" && v["transfer"] == id.as_str(),
    );

    // 2. The sender dies part way through another file and comes back.
    let second = files.path().join("second.bin");
    random_file(&second, 64 << 20, 2);
    let second_hash = file_hash(&second);
    let id2 = offer_and_accept(&mut a, &mut b, "bob", second.to_str().unwrap());
    b.wait("a third of the second file", Duration::from_secs(60), |v| {
        v["event"] == "file_progress"
            && v["transfer"] == id2.as_str()
            && v["done"].as_u64().unwrap_or(0) >= (20 << 20)
    });
    let dir_a = a.kill9();
    let mut a = Node::spawn_in(&lab, "a", "alice", &args, dir_a);
    let done2 = b.wait("the second file", Duration::from_secs(60), |v| {
        (v["event"] == "file_completed" || v["event"] == "file_failed")
            && v["transfer"] == id2.as_str()
    });
    assert_eq!(done2["event"], "file_completed", "{done2}");
    assert_eq!(
        file_hash(std::path::Path::new(done2["path"].as_str().unwrap())),
        second_hash
    );
    a.quit();
    b.quit();
    eprintln!(
        "[netns] 256 MiB at 400 Mbit/s: receiver killed at {at_kill} bytes, resumed at {resumed_from} \
         ({resent} resent), done in {} ms; sender killed mid-way and resumed; total {} ms",
        ms(took),
        ms(t0.elapsed())
    );
}

/// A third host on the segment sends beacons forged for node A, replays of
/// A's genuine beacons, and garbage. None of it may touch the live A–B link
/// or what B knows about A. A valid beacon of the attacker's own identity,
/// sent last, proves the datagrams did reach B.
///
/// A beacons rarely here (once at start, once after it finds B), so a forged
/// beacon that B wrongly accepted would stay visible in B's peer list instead
/// of being overwritten by A's next genuine beacon half a second later.
impl Lab {
    /// A second bridge (in switch namespace `sw2`, subnet 10.78.N.0/24)
    /// joining the new node `only` (its `eth0`) and the existing node
    /// `both` (a second interface, `eth1`): `both` is then on two LANs and
    /// nothing else links them.
    fn add_second_bridge(&mut self, both: &str, only: &str) {
        let sw = self.name("sw2");
        ip(&["netns", "add", &sw]);
        self.namespaces.push(sw.clone());
        ip(&["-n", &sw, "link", "add", "br1", "type", "bridge"]);
        ip(&["-n", &sw, "link", "set", "br1", "up"]);
        let ns = self.name(only);
        ip(&["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        let subnet = self.subnet.to_string();
        for (port, node, dev, host) in [("q0", only, "eth0", "1"), ("q1", both, "eth1", "2")] {
            let target = self.name(node);
            ip(&[
                "-n", &sw, "link", "add", port, "type", "veth", "peer", "name", dev, "netns",
                &target,
            ]);
            ip(&["-n", &sw, "link", "set", port, "master", "br1"]);
            ip(&["-n", &sw, "link", "set", port, "up"]);
            let cidr = format!("10.78.{subnet}.{host}/24");
            ip(&["-n", &target, "addr", "add", &cidr, "brd", "+", "dev", dev]);
            ip(&["-n", &target, "link", "set", dev, "up"]);
        }
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
    }
}

/// The room's messages that `n` showed so far (and more arriving within
/// `period`), by text.
fn room_texts(n: &mut Node, room: &str, period: Duration) -> Vec<String> {
    n.collect(period);
    n.seen_events("message_received")
        .into_iter()
        .filter(|v| v["message"]["room"] == room)
        .filter_map(|v| v["message"]["text"].as_str().map(str::to_owned))
        .collect()
}

/// A on one bridge, C on another, B on both: A and C cannot reach each
/// other, yet talk in #ops through B (which did not join #ops and shows
/// nothing of it), and C catches up through B after being killed.
#[test]
fn a_room_reaches_across_two_bridges_through_the_host_on_both() {
    let Some(_serial) = netns_or_skip("a_room_reaches_across_two_bridges_through_the_host_on_both")
    else {
        return;
    };
    let mut lab = Lab::new("rooms", 9, &["a", "b"], Brd::Set);
    lab.add_second_bridge("b", "c");
    let args = ["--beacon-interval-ms", BEACON_MS];
    let mut a = Node::spawn(&lab, "a", "node-a", &args);
    let mut b = Node::spawn(&lab, "b", "node-b", &args);
    let mut c = Node::spawn(&lab, "c", "node-c", &args);
    assert_eq!(
        b.started["beacon_targets"].as_array().map(Vec::len),
        Some(2),
        "b beacons on both LANs: {}",
        b.started
    );
    let (ia, ib, ic) = (a.identity(), b.identity(), c.identity());
    b.wait_connected(&[ia.clone(), ic.clone()], Duration::from_secs(15));
    a.wait_connected(std::slice::from_ref(&ib), Duration::from_secs(5));
    c.wait_connected(std::slice::from_ref(&ib), Duration::from_secs(5));
    for n in [&mut a, &mut c] {
        n.send("/join #ops");
        n.wait("room_joined", Duration::from_secs(5), |v| {
            v["event"] == "room_joined" && v["room"] == "#ops"
        });
    }
    // Plain text goes to the current room, #ops.
    a.send("hello from a");
    let sent = a.wait("message_sent", Duration::from_secs(5), |v| {
        v["event"] == "message_sent"
    });
    assert_eq!(sent["message"]["room"], "#ops");
    c.wait("a's message", Duration::from_secs(10), |v| {
        v["event"] == "message_received" && v["message"]["text"] == "hello from a"
    });
    c.send("hello from c");
    a.wait("c's message", Duration::from_secs(10), |v| {
        v["event"] == "message_received"
            && v["message"]["text"] == "hello from c"
            && v["message"]["room"] == "#ops"
    });
    // A and C never linked: everything went through B.
    assert!(a.peers().iter().all(|p| p["identity"] != ic.as_str()));

    // C is killed; A posts; C comes back and catches up through B.
    let dir = c.kill9();
    let missed: Vec<String> = (0..3).map(|i| format!("while c was away {i}")).collect();
    for m in &missed {
        a.send(m);
    }
    for m in &missed {
        let m = m.clone();
        a.wait("sent", Duration::from_secs(5), move |v| {
            v["event"] == "message_sent" && v["message"]["text"] == m.as_str()
        });
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut c = Node::spawn_in(&lab, "c", "node-c", &args, dir);
    assert_eq!(c.started["rooms"], serde_json::json!(["#lobby", "#ops"]));
    c.wait_connected(std::slice::from_ref(&ib), Duration::from_secs(15));
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let got = room_texts(&mut c, "#ops", Duration::from_millis(500));
        if missed.iter().all(|m| got.contains(m)) {
            break;
        }
    }
    let got = room_texts(&mut c, "#ops", Duration::from_secs(1));
    for m in &missed {
        assert_eq!(
            got.iter().filter(|t| *t == m).count(),
            1,
            "{m:?} once: {got:?}"
        );
    }
    // B carried #ops without joining it: it showed none of it.
    assert!(room_texts(&mut b, "#ops", Duration::ZERO).is_empty());
    for n in [&mut a, &mut b, &mut c] {
        n.quit();
    }
}

// ---- beyond the LAN ----------------------------------------------------------

/// `natter relay --listen ADDR [extra]` in a namespace, serving at `url`.
fn relay_in(lab: &Lab, node: &str, listen: &str, extra: &[&str], url: &str) -> RelayProc {
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        &lab.name(node),
        env!("CARGO_BIN_EXE_natter"),
    ])
    .args(["relay", "--listen", listen])
    .args(extra);
    let relay = RelayProc::start(cmd);
    assert_eq!(relay.url, url);
    relay
}

/// `/ticket`, again until the endpoint is connected to its relay.
fn wan_ticket(n: &mut Node) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        n.send("/ticket");
        let v = n.wait("ticket or error", Duration::from_secs(5), |v| {
            v["event"] == "ticket" || v["event"] == "error"
        });
        if let Some(t) = v["ticket"].as_str() {
            return t.to_owned();
        }
        assert!(Instant::now() < deadline, "{}: no ticket: {v}", n.label);
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A message from `from` to `to` (by nickname) arrives within `secs`.
fn wan_message(from: &mut Node, to: &mut Node, to_nick: &str, text: &str, secs: u64) {
    from.send(&format!("/msg {to_nick} {text}"));
    to.wait(text, Duration::from_secs(secs), |v| {
        v["event"] == "message_received" && v["message"]["text"] == text
    });
}

fn path_of(n: &mut Node, id: &str) -> Value {
    peer(&n.peers(), id)["path"].clone()
}

/// A and C sit on two bridges with no route between them; R, on both,
/// runs `natter relay` on an address both reach (routes to it, no
/// forwarding). A and C link through the relay with a ticket, talk both
/// ways, and go on talking after the relay is killed and started again.
#[test]
fn nodes_with_no_route_between_them_talk_through_a_relay_that_restarts() {
    let Some(_serial) =
        netns_or_skip("nodes_with_no_route_between_them_talk_through_a_relay_that_restarts")
    else {
        return;
    };
    let mut lab = Lab::new("wan", 11, &["a", "r"], Brd::Set);
    lab.add_second_bridge("r", "c");
    let relay_ip = "10.79.11.1";
    let (r, a, c) = (lab.name("r"), lab.name("a"), lab.name("c"));
    ip(&[
        "-n",
        &r,
        "addr",
        "add",
        &format!("{relay_ip}/32"),
        "dev",
        "lo",
    ]);
    let forwarding = Command::new("ip")
        .args(["netns", "exec", &r, "sysctl", "-n", "net.ipv4.ip_forward"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&forwarding.stdout).trim(), "0");
    let to_relay = format!("{relay_ip}/32");
    ip(&["-n", &a, "route", "add", &to_relay, "via", "10.77.11.2"]);
    ip(&["-n", &c, "route", "add", &to_relay, "via", "10.78.11.2"]);
    let listen = format!("{relay_ip}:3340");
    let url = format!("http://{listen}");
    let mut relay = relay_in(&lab, "r", &listen, &[], &url);
    let args = ["--no-discovery", "--wan", "--relay", &url];
    let mut na = Node::spawn(&lab, "a", "alice", &args);
    let mut nc = Node::spawn(&lab, "c", "carol", &args);
    let (ia, ic) = (na.identity(), nc.identity());
    let ticket = wan_ticket(&mut na);
    nc.send(&format!("/connect {ticket}"));
    nc.wait_connected(std::slice::from_ref(&ia), Duration::from_secs(20));
    na.wait_connected(std::slice::from_ref(&ic), Duration::from_secs(5));
    wan_message(&mut na, &mut nc, "carol", "a to c through the relay", 10);
    wan_message(&mut nc, &mut na, "alice", "c to a through the relay", 10);
    assert_eq!(path_of(&mut na, &ic), "relayed");
    assert_eq!(path_of(&mut nc, &ia), "relayed");

    // The relay dies and comes back on the same address.
    drop(relay);
    std::thread::sleep(Duration::from_secs(2));
    relay = relay_in(&lab, "r", &listen, &[], &url);
    wan_message(&mut na, &mut nc, "carol", "a to c after the restart", 45);
    wan_message(&mut nc, &mut na, "alice", "c to a after the restart", 45);
    na.quit();
    nc.quit();
    drop(relay);
}

/// With links beyond the LAN off (the default), a node sends nothing but
/// its beacons and its LAN links: counted by nftables on its interface.
/// The same count with `--wan` sees the relay connection, so the count
/// can tell.
#[test]
fn with_wan_off_a_node_sends_only_beacons_and_lan_links() {
    let Some(_serial) = netns_or_skip("with_wan_off_a_node_sends_only_beacons_and_lan_links")
    else {
        return;
    };
    let lab = Lab::new("wanoff", 12, &["a", "b"], Brd::Set);
    let a = lab.name("a");
    let rules = format!(
        "table inet count {{
            counter beacons {{}}
            counter lan {{}}
            counter other {{}}
            chain out {{
                type filter hook output priority 0; policy accept;
                oif lo accept
                udp dport {DEFAULT_BEACON_PORT} counter name beacons accept
                ip daddr 10.77.12.0/24 tcp dport {DEFAULT_LISTEN_PORT} counter name lan accept
                ip daddr 10.77.12.0/24 tcp sport {DEFAULT_LISTEN_PORT} counter name lan accept
                meta nfproto ipv4 counter name other
                meta l4proto {{ tcp, udp }} counter name other
            }}
        }}"
    );
    nft(&lab, "a", &rules);
    let count = |name: &str| -> u64 {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &a, "nft", "list", "counter", "inet", "count", name,
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let packets = text
            .split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok());
        packets.unwrap_or_else(|| panic!("no counter {name}: {text}"))
    };
    let args = ["--beacon-interval-ms", BEACON_MS];
    let mut na = Node::spawn(&lab, "a", "node-a", &args);
    let mut nb = Node::spawn(&lab, "b", "node-b", &args);
    na.wait_connected(&[nb.identity()], Duration::from_secs(10));
    wan_message(&mut na, &mut nb, "node-b", "lan only", 10);
    na.collect(Duration::from_secs(3));
    na.quit();
    let (beacons, lan, other) = (count("beacons"), count("lan"), count("other"));
    eprintln!("[netns] wan off: beacons {beacons}, LAN link packets {lan}, other {other}");
    assert!(beacons > 0 && lan > 0, "the counters see natter's traffic");
    assert_eq!(other, 0, "a node with --wan off sent something else");

    // The control: with --wan (and a relay address on the LAN where
    // nothing answers), the same rules count the relay connection.
    let url = format!("http://{}:3340", lab.addr(1));
    let wan_args = [
        "--beacon-interval-ms",
        BEACON_MS,
        "--wan",
        "--relay",
        url.as_str(),
    ];
    let mut na = Node::spawn(&lab, "a", "node-a", &wan_args);
    na.collect(Duration::from_secs(3));
    na.quit();
    nb.quit();
    assert!(
        count("other") > 0,
        "--wan on went unseen: the count is blind"
    );
}

/// A host behind its own NAT: namespace `node` with `eth0` in the
/// router namespace `router`'s private subnet `10.81.<n>.0/24`, its default
/// route through the router; the router's `eth0` is a port of the lab's
/// bridge (the "internet", `addr`), masquerading what leaves it.
fn behind_nat(lab: &mut Lab, router: &str, node: &str, n: u8) {
    let (r, h) = (lab.name(router), lab.name(node));
    ip(&["netns", "add", &h]);
    lab.namespaces.push(h.clone());
    ip(&[
        "-n", &r, "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns", &h,
    ]);
    let (gw, host) = (format!("10.81.{n}.1"), format!("10.81.{n}.2"));
    ip(&["-n", &r, "addr", "add", &format!("{gw}/24"), "dev", "eth1"]);
    ip(&["-n", &r, "link", "set", "eth1", "up"]);
    ip(&[
        "-n",
        &h,
        "addr",
        "add",
        &format!("{host}/24"),
        "dev",
        "eth0",
    ]);
    ip(&["-n", &h, "link", "set", "lo", "up"]);
    ip(&["-n", &h, "link", "set", "eth0", "up"]);
    ip(&["-n", &h, "route", "add", "default", "via", &gw]);
    let sysctl = Command::new("ip")
        .args([
            "netns",
            "exec",
            &r,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])
        .status()
        .unwrap();
    assert!(sysctl.success());
    // Masquerade outbound; and, as a home router's firewall does, drop
    // what arrives from outside for the router itself. Without that drop, a
    // peer's first punch (arriving before our own packet opened the
    // mapping) is delivered to the router, and its conntrack entry then
    // makes the router give our own punch another source port.
    nft(
        lab,
        router,
        "table ip nat {\n chain post {\n type nat hook postrouting priority 100; policy accept;\n oif eth0 masquerade\n }\n}\n\
         table ip filter {\n chain input {\n type filter hook input priority 0; policy accept;\n iif eth0 ct state new drop\n }\n}\n",
    );
}

/// Load nftables rules into a namespace.
fn nft(lab: &Lab, node: &str, rules: &str) {
    let mut nft = Command::new("ip")
        .args(["netns", "exec", &lab.name(node), "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("nft runs (package nftables)");
    nft.stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    assert!(nft.wait().unwrap().success(), "nft -f failed: {rules}");
}

/// A private CA and a relay certificate for `ip`, made with openssl in
/// `dir`: (CA certificate, relay certificate, relay key).
fn relay_certificate(dir: &std::path::Path, ip: &str) -> (String, String, String) {
    let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let (ca, ca_key, cert, key, csr, ext) = (
        path("ca.pem"),
        path("ca.key"),
        path("relay.pem"),
        path("relay.key"),
        path("relay.csr"),
        path("ext.cnf"),
    );
    std::fs::write(
        &ext,
        format!(
            "subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for args in [
        [
            &["req", "-x509"][..],
            &ec[..],
            &[
                "-keyout",
                &ca_key,
                "-out",
                &ca,
                "-days",
                "2",
                "-subj",
                "/CN=natter test CA",
            ][..],
        ]
        .concat(),
        [
            &["req"][..],
            &ec[..],
            &[
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                "/CN=natter test relay",
            ][..],
        ]
        .concat(),
        vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    ] {
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (ca, cert, key)
}

/// Two hosts, each behind a NAT of its own (nftables masquerade and a
/// home router's input firewall), and a relay on the "internet" between the
/// NATs, serving HTTPS and QUIC address discovery with a certificate from a
/// private CA (`--relay-ca`): QUIC address discovery puts each node's public
/// (NAT) address in its ticket, the two nodes link through the relay, and
/// iroh punches a hole: the link's path turns direct on both sides.
#[test]
fn two_nodes_behind_separate_nats_get_a_direct_path() {
    let Some(_serial) = netns_or_skip("two_nodes_behind_separate_nats_get_a_direct_path") else {
        return;
    };
    let mut lab = Lab::new("nat", 13, &["relay", "nat1", "nat2"], Brd::Set);
    behind_nat(&mut lab, "nat1", "a", 1);
    behind_nat(&mut lab, "nat2", "b", 2);
    let relay_ip = lab.addr(0);
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = relay_certificate(certs.path(), &relay_ip);
    let listen = format!("{relay_ip}:3340");
    let url = format!("https://{listen}");
    let _relay = relay_in(
        &lab,
        "relay",
        &listen,
        &["--cert", &cert, "--key", &key],
        &url,
    );
    let args = [
        "--no-discovery",
        "--wan",
        "--relay",
        &url,
        "--relay-ca",
        &ca,
    ];
    let mut na = Node::spawn(&lab, "a", "alice", &args);
    let mut nb = Node::spawn(&lab, "b", "bob", &args);
    let (ia, ib) = (na.identity(), nb.identity());
    let ticket = wan_ticket(&mut na);
    let reach = natter_core::wire::Ticket::decode(&ticket).unwrap().reach;
    let public: Vec<std::net::SocketAddr> = reach.socket_addrs().collect();
    // nat1's address on the "internet": learnt from the relay.
    assert!(
        public.iter().any(|a| a.ip().to_string() == lab.addr(1)),
        "no public address in {reach:?}"
    );
    nb.send(&format!("/connect {ticket}"));
    nb.wait_connected(std::slice::from_ref(&ia), Duration::from_secs(20));
    na.wait_connected(std::slice::from_ref(&ib), Duration::from_secs(5));
    wan_message(&mut na, &mut nb, "bob", "a to b across two NATs", 10);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut paths = (Value::Null, Value::Null);
    while Instant::now() < deadline {
        paths = (path_of(&mut na, &ib), path_of(&mut nb, &ia));
        assert!(paths.0.is_string() && paths.1.is_string(), "{paths:?}");
        if paths == ("direct".into(), "direct".into()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("[netns] behind two NATs: public address {public:?}, paths {paths:?}");
    assert_eq!(paths, ("direct".into(), "direct".into()), "no hole punched");
    wan_message(
        &mut nb,
        &mut na,
        "alice",
        "b to a through the punched hole",
        10,
    );
    na.quit();
    nb.quit();
}

/// Every byte a stopped node keeps in its history database (and WAL).
fn history_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for name in [
        natter::store::DB_FILE.to_owned(),
        format!("{}-wal", natter::store::DB_FILE),
    ] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            out.extend(b);
        }
    }
    out
}

fn has(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// A founds +team and invites C; B, linked to both, carries the room but
/// can read nothing of it: not on its screen, not in its database.
#[test]
fn an_invite_only_rooms_text_appears_nowhere_at_a_non_member() {
    let Some(_serial) = netns_or_skip("an_invite_only_rooms_text_appears_nowhere_at_a_non_member")
    else {
        return;
    };
    let lab = Lab::new("private", 10, &["a", "b", "c"], Brd::Set);
    let args = ["--beacon-interval-ms", BEACON_MS];
    let mut a = Node::spawn(&lab, "a", "node-a", &args);
    let mut b = Node::spawn(&lab, "b", "node-b", &args);
    let mut c = Node::spawn(&lab, "c", "node-c", &args);
    let (ia, ib, ic) = (a.identity(), b.identity(), c.identity());
    a.wait_connected(&[ib.clone(), ic.clone()], Duration::from_secs(15));
    b.wait_connected(&[ia.clone(), ic.clone()], Duration::from_secs(15));
    c.wait_connected(std::slice::from_ref(&ia), Duration::from_secs(15));
    a.send("/create +team");
    a.wait("founded", Duration::from_secs(5), |v| {
        v["event"] == "room_membership" && v["change"] == "you_joined"
    });
    // C's key is not verified: a warning first, then the invitation.
    a.send("/invite node-c");
    a.wait("warning", Duration::from_secs(5), |v| {
        v["event"] == "error"
            && v["text"]
                .as_str()
                .is_some_and(|t| t.contains("not verified"))
    });
    a.send("/invite node-c");
    c.wait("invited", Duration::from_secs(10), |v| {
        v["event"] == "room_membership" && v["room"] == "+team" && v["change"] == "you_joined"
    });
    // Plain text goes to A's current room, +team.
    let secret = "the vault code is 4711";
    a.send(secret);
    let got = c.wait("the secret", Duration::from_secs(10), |v| {
        v["event"] == "message_received" && v["message"]["text"] == secret
    });
    assert_eq!(got["message"]["room"], "+team");
    c.send("/room +team");
    c.send("received, from c");
    a.wait("c's answer", Duration::from_secs(10), |v| {
        v["event"] == "message_received" && v["message"]["text"] == "received, from c"
    });
    // B saw the membership (the log is public) but no text.
    let on_screen: Vec<Value> = b.collect(Duration::from_secs(2));
    let all: String = b
        .seen
        .iter()
        .map(|(_, v)| v.to_string())
        .chain(on_screen.iter().map(|v| v.to_string()))
        .collect();
    assert!(
        !all.contains("vault code") && !all.contains("from c"),
        "B's screen: {all}"
    );
    let (bdir, cdir) = (b.dir.path().to_owned(), c.dir.path().to_owned());
    for n in [&mut a, &mut b, &mut c] {
        n.quit();
    }
    let b_db = history_bytes(&bdir);
    let c_db = history_bytes(&cdir);
    assert!(
        has(&c_db, "vault code"),
        "the member's database holds the text (the check can fail)"
    );
    assert!(!b_db.is_empty());
    assert!(
        !has(&b_db, "vault code") && !has(&b_db, "from c"),
        "B's database holds no text"
    );
}

#[test]
fn forged_and_replayed_beacons_do_not_disturb_a_live_link() {
    let Some(_serial) = netns_or_skip("forged_and_replayed_beacons_do_not_disturb_a_live_link")
    else {
        return;
    };
    let t0 = Instant::now();
    let lab = Lab::new("forge", 4, &["a", "b", "m"], Brd::Set);
    let live = ["--keepalive-ms", "1000", "--dead-after-ms", "3000"];
    let mut b = Node::spawn(
        &lab,
        "b",
        "bob",
        &[&live[..], &["--beacon-interval-ms", BEACON_MS]].concat(),
    );
    // The attacker listens before A starts, to capture A's first beacon.
    let mut capture = Helper::spawn(&lab.name("m"), &format!("capture {DEFAULT_BEACON_PORT}"));
    capture.expect("READY");
    let mut a = Node::spawn(
        &lab,
        "a",
        "alice",
        &[&live[..], &["--beacon-interval-ms", "60000"]].concat(),
    );
    let (ia, ib) = (a.identity(), b.identity());
    a.wait_connected(std::slice::from_ref(&ib), Duration::from_secs(10));
    b.wait_connected(std::slice::from_ref(&ia), Duration::from_secs(10));
    let a_addr = format!("{}:{}", lab.addr(0), a.listen_port());
    let before = b.peers();
    assert_eq!(peer(&before, &ia)["addr"], a_addr);
    assert_eq!(peer(&before, &ia)["nickname"], "alice");

    // A genuine beacon of A, captured off the wire by the attacker.
    let captured = loop {
        let pkt = hex::decode(capture.expect("CAPTURED ")).unwrap();
        if decode_beacon(&pkt).is_ok_and(|body| natter_core::hex(&body.keys.identity.0) == ia) {
            break pkt;
        }
    };
    drop(capture);
    let genuine = decode_beacon(&captured).unwrap();
    let alice = keyfile::load(&a.dir.path().join(keyfile::IDENTITY_FILE)).unwrap();
    assert_eq!(natter_core::hex(&alice.identity_key().0), ia);
    let mallory = LocalIdentity::generate().unwrap();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    // Every crafted beacon announces another port and nickname, so that
    // accepting any of them would show in B's peer list.
    let crafted = |keys: BoundKeys, instance: u64, seq: u64, timestamp_ms: u64| BeaconBody {
        version: PROTOCOL_VERSION,
        keys,
        tcp_port: 4444,
        nickname: "mallory".into(),
        instance,
        seq,
        timestamp_ms,
    };
    let a_keys = *alice.bound_keys();
    let mixed_keys = BoundKeys {
        identity: alice.identity_key(),
        ..*mallory.bound_keys()
    };
    let fresh_seq = genuine.seq + 1000;
    let mut flipped = captured.clone();
    flipped[40] ^= 0x10;
    let packets: Vec<(&str, Vec<u8>)> = vec![
        // A's keys, newer numbers, signed by mallory: bad signature.
        (
            "forged signature",
            encode_beacon(
                &crafted(a_keys, genuine.instance, fresh_seq, now_ms),
                &mallory,
            )
            .unwrap(),
        ),
        // A's identity key with mallory's Noise key and binding.
        (
            "forged binding",
            encode_beacon(
                &crafted(mixed_keys, genuine.instance, fresh_seq, now_ms),
                &mallory,
            )
            .unwrap(),
        ),
        // The captured beacon, verbatim, from another address.
        ("verbatim replay", captured.clone()),
        // Genuinely signed by A, but old: same instance, lower seq.
        (
            "old seq",
            encode_beacon(&crafted(a_keys, genuine.instance, 1, now_ms), &alice).unwrap(),
        ),
        // Genuinely signed by A, an older instance (earlier timestamp).
        (
            "old instance",
            encode_beacon(
                &crafted(
                    a_keys,
                    genuine.instance ^ 1,
                    1,
                    genuine.timestamp_ms - 60_000,
                ),
                &alice,
            )
            .unwrap(),
        ),
        ("garbage", b"natter? no, garbage".to_vec()),
        ("empty", Vec::new()),
        ("truncated", captured[..captured.len() - 1].to_vec()),
        ("trailing byte", [captured.as_slice(), &[0]].concat()),
        ("flipped bit", flipped),
        ("oversized", vec![0xab; 3000]),
        // Last: a valid beacon of mallory's own identity (positive control).
        (
            "control",
            encode_beacon(&crafted(*mallory.bound_keys(), 1, 1, now_ms), &mallory).unwrap(),
        ),
    ];
    // Each datagram goes to the segment's broadcast address and to B
    // directly, 100 ms apart: below the per-source rate limit, so every one
    // reaches the checks it is meant to fail. The control goes to B only: a
    // new identity seen by A would make A beacon again soon.
    let mut spec = String::new();
    let mut sent = 0;
    for (what, p) in &packets {
        let mut dests = vec![lab.addr(1)];
        if *what != "control" {
            dests.push(lab.broadcast());
        }
        for dest in dests {
            spec.push_str(&format!(
                "{dest}:{DEFAULT_BEACON_PORT} {}\n",
                hex::encode(p)
            ));
            sent += 1;
        }
    }
    let spec_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(spec_file.path(), spec).unwrap();
    let attack = Instant::now();
    let mut send = Helper::spawn(
        &lab.name("m"),
        &format!("send {}", spec_file.path().display()),
    );
    send.expect("SENT ");
    send.finish();
    let mallory_id = natter_core::hex(&mallory.identity_key().0);
    b.wait("the control beacon", Duration::from_secs(5), |v| {
        v["event"] == "peer_discovered" && v["peer"]["identity"] == mallory_id
    });

    // Watch both for longer than dead-after: the link must stay quiet.
    let quiet = Duration::from_secs(5);
    let ea = a.collect(quiet);
    let eb = b.collect(Duration::from_millis(100));
    let mallory_addr = format!("{}:4444", lab.addr(2));
    // Mallory's own identity comes and goes (it beacons once, is dialled,
    // refuses, expires); nothing may happen about the real peer.
    for (n, events, other) in [(&a.label, &ea, &ib), (&b.label, &eb, &ia)] {
        for v in events {
            let bad = match v["event"].as_str().unwrap_or_default() {
                "link_failed" => v["addr"] != mallory_addr,
                "peers" => false,
                _ => v["peer"]["identity"] == **other,
            };
            assert!(!bad, "{n}: unexpected event during the attack: {v}");
        }
    }
    assert!(b.seen_events("peer_lost").is_empty(), "bob lost a peer");
    assert!(a.seen_events("peer_lost").is_empty(), "alice lost a peer");

    let after = b.peers();
    let pa = peer(&after, &ia);
    assert_eq!(pa["state"], "established", "{pa}");
    assert_eq!(pa["addr"], a_addr, "{pa}");
    assert_eq!(pa["nickname"], "alice", "{pa}");
    let pb = a.peers();
    assert_eq!(peer(&pb, &ib)["state"], "established");
    a.quit();
    b.quit();
    eprintln!(
        "[netns] forged beacons: {} datagrams sent, link quiet for {} ms after the attack began, total {} ms",
        sent,
        ms(attack.elapsed()),
        ms(t0.elapsed())
    );
}

/// An address configured without a broadcast address (`ip addr add
/// 10.0.0.1/24 dev eth0`, no `brd`) still gets beacons to the subnet's
/// broadcast address, so discovery works.
#[test]
fn discovery_works_when_no_broadcast_address_is_configured() {
    let Some(_serial) = netns_or_skip("discovery_works_when_no_broadcast_address_is_configured")
    else {
        return;
    };
    let t0 = Instant::now();
    let lab = Lab::new("nobrd", 5, &["a", "b"], Brd::Unset);
    let args = ["--beacon-interval-ms", BEACON_MS];
    let mut a = Node::spawn(&lab, "a", "alice", &args);
    let mut b = Node::spawn(&lab, "b", "bob", &args);
    let (ia, ib) = (a.identity(), b.identity());
    a.wait_connected(std::slice::from_ref(&ib), Duration::from_secs(10));
    b.wait_connected(std::slice::from_ref(&ia), Duration::from_secs(10));
    let want = serde_json::json!([format!("{}:{DEFAULT_BEACON_PORT}", lab.broadcast())]);
    assert_eq!(a.started["beacon_targets"], want);
    assert_eq!(b.started["beacon_targets"], want);
    a.quit();
    b.quit();
    eprintln!("[netns] no brd: total {} ms", ms(t0.elapsed()));
}

// ---- the helper process ---------------------------------------------------

/// This test binary, re-run inside a namespace in helper mode.
struct Helper {
    mode: String,
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Helper {
    fn spawn(ns: &str, mode: &str) -> Helper {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(exe)
            .args([
                "helper_in_namespace",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(HELPER_ENV, mode)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Helper {
            mode: mode.to_owned(),
            child,
            stdout,
        }
    }

    /// What follows `marker` on the next stdout line holding it (the test
    /// harness may print other text before it on the same line). The helper
    /// bounds its own run time, so this read ends.
    fn expect(&mut self, marker: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "helper {:?} ended without {marker:?}", self.mode);
            if let Some((_, rest)) = line.split_once(marker) {
                return rest.trim().to_owned();
            }
        }
    }

    fn finish(mut self) {
        let status = self.child.wait().unwrap();
        assert!(status.success(), "helper {:?}: {status}", self.mode);
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Not a test of its own: the body of the helper process run by [`helper`]
/// inside a namespace. Without [`HELPER_ENV`] it does nothing.
///
/// - `capture PORT`: print `READY` once bound to UDP PORT, then every
///   datagram that arrives there as `CAPTURED <hex>`, for 20 s at most.
/// - `send FILE`: send each `ADDR:PORT HEX` line of FILE as one datagram,
///   100 ms apart, then print `SENT <count>`.
#[test]
fn helper_in_namespace() {
    let Ok(mode) = std::env::var(HELPER_ENV) else {
        return;
    };
    let words: Vec<&str> = mode.split_whitespace().collect();
    match words.as_slice() {
        ["capture", port] => {
            let sock = UdpSocket::bind(format!("0.0.0.0:{port}")).unwrap();
            println!("READY");
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut buf = [0u8; 2048];
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .unwrap();
                if let Ok((n, _)) = sock.recv_from(&mut buf) {
                    println!("CAPTURED {}", hex::encode(&buf[..n]));
                }
            }
        }
        ["send", file] => {
            let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
            sock.set_broadcast(true).unwrap();
            let mut count = 0;
            for line in std::fs::read_to_string(file).unwrap().lines() {
                let (dest, data) = line.split_once(' ').unwrap();
                let data = hex::decode(data).unwrap();
                sock.send_to(&data, dest).unwrap();
                count += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            println!("SENT {count}");
        }
        _ => panic!("unknown helper mode {mode:?}"),
    }
}
