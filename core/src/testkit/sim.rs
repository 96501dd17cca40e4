//! A deterministic in-memory network for driving several [`Node`]s.
//!
//! Time is simulated; datagrams can be lost and delayed; TCP connections
//! deliver bytes in order after a delay; partitions hold traffic between two
//! groups (TCP bytes wait, datagrams are dropped) until they heal. Everything
//! is seeded, so a failing run replays exactly. Used by the node tests
//! (links and chat over the network) and the scale benchmark; no socket is
//! ever opened.
//!
//! Each host counts what it sends and receives ([`Traffic`]) and the time
//! spent inside its node's code ([`SimNode::busy`]); those are measurements
//! only and never change what the simulation does.

use crate::chat::{ChatStore, MemoryStore};
use crate::event::Event;
use crate::files::{MemoryDisk, MemoryFileStore};
use crate::identity::{IdentityKey, LocalIdentity};
use crate::node::{Input, Node, NodeConfig, Output};
use crate::peer::LinkId;
use crate::rng::Rng;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// The simulated broadcast address every node sends its beacons to.
pub const BROADCAST: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 1, 255, 255)), 47474);

/// Network behaviour.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// One-way delay range for datagrams and TCP bytes, ms.
    pub delay_ms: (u64, u64),
    /// Probability that a datagram is lost.
    pub loss: f64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            delay_ms: (1, 5),
            loss: 0.0,
        }
    }
}

/// One simulated host.
pub struct SimNode {
    pub node: Node,
    pub addr: SocketAddr,
    /// Every event the node emitted, in order.
    pub events: Vec<Event>,
    /// False while the host is "powered off".
    pub up: bool,
    /// Its files: what it can offer, and where what it receives lands.
    pub disk: MemoryDisk,
    /// What it sent and received.
    pub traffic: Traffic,
    /// Wall time spent in its node's methods (handle, handle_timeout,
    /// poll_output, poll_timeout, accept): its share of the CPU the
    /// simulation used, without the simulator's own bookkeeping.
    pub busy: Duration,
    /// Starts of this host's node: verdicts of signature checks asked by
    /// an earlier instance are not handed to a later one.
    instance: u64,
}

/// What one simulated host sent and received. Beacons are the only
/// datagrams natter sends; a datagram to the broadcast address counts once
/// as sent (one packet on the wire) and once per host it reaches as received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub datagrams_sent: u64,
    pub datagram_bytes_sent: u64,
    pub datagrams_received: u64,
    pub datagram_bytes_received: u64,
    /// Bytes the node handed out to write on its links, and bytes delivered
    /// to them (handshakes and frames, after Noise).
    pub tcp_bytes_sent: u64,
    pub tcp_bytes_received: u64,
    /// TCP connects it started, and connections it accepted.
    pub dials: u64,
    pub accepts: u64,
}

impl Traffic {
    /// The sum of two hosts' counts.
    pub fn add(&self, o: &Traffic) -> Traffic {
        Traffic {
            datagrams_sent: self.datagrams_sent + o.datagrams_sent,
            datagram_bytes_sent: self.datagram_bytes_sent + o.datagram_bytes_sent,
            datagrams_received: self.datagrams_received + o.datagrams_received,
            datagram_bytes_received: self.datagram_bytes_received + o.datagram_bytes_received,
            tcp_bytes_sent: self.tcp_bytes_sent + o.tcp_bytes_sent,
            tcp_bytes_received: self.tcp_bytes_received + o.tcp_bytes_received,
            dials: self.dials + o.dials,
            accepts: self.accepts + o.accepts,
        }
    }
}

#[derive(Debug)]
enum Delivery {
    Datagram {
        to: usize,
        from: SocketAddr,
        data: Vec<u8>,
    },
    Connected {
        node: usize,
        link: LinkId,
    },
    ConnectFailed {
        node: usize,
        link: LinkId,
    },
    Bytes {
        conn: u64,
        to_dialer: bool,
        data: Vec<u8>,
    },
    Closed {
        conn: u64,
        to_dialer: bool,
    },
    /// The verdicts of a node's `Output::CheckSignatures`.
    Checked {
        node: usize,
        instance: u64,
        ticket: u64,
        valid: Vec<bool>,
    },
}

/// A simulated TCP connection between a dialer's and an acceptor's link.
struct SimConn {
    dialer: (usize, LinkId),
    acceptor: Option<(usize, LinkId)>,
    /// Bytes held by a partition, per direction (to_dialer, data).
    held: Vec<(bool, Vec<u8>)>,
    open: bool,
    /// Earliest delivery time per direction (index: to_dialer), so that a
    /// stream stays in order whatever the random delays.
    busy_until: [u64; 2],
    /// Carried over iroh: LAN partitions do not cut it, `wan_cut` does.
    wan: bool,
}

/// The simulated network and its hosts.
pub struct Sim {
    pub nodes: Vec<SimNode>,
    pub now_ms: u64,
    pub net: NetConfig,
    rng: Rng,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    pending: BTreeMap<u64, Delivery>,
    seq: u64,
    conns: BTreeMap<u64, SimConn>,
    next_conn: u64,
    /// (node, link) → connection id.
    link_conn: BTreeMap<(usize, LinkId), u64>,
    /// Pairs of nodes that cannot reach each other.
    cut: BTreeSet<(usize, usize)>,
    /// Host by address, for dials.
    by_addr: BTreeMap<SocketAddr, usize>,
    /// Hosts whose iroh endpoint key is not their identity (a node that
    /// runs its Noise handshake with one key behind another's endpoint).
    pub wan_endpoints: BTreeMap<usize, IdentityKey>,
    /// No WAN dial succeeds (every relay down).
    pub wan_cut: bool,
    /// `(deadline, node)` of every up node with a timer, the deadline
    /// clamped to the time it was read (so never before `now_ms`): the
    /// earliest is the next timer without asking every node.
    timers: BTreeSet<(u64, usize)>,
    /// The entry each node has in `timers`.
    timer_of: Vec<Option<u64>>,
    /// Nodes check signatures on a simulated pool, as natter's shell does
    /// (`Node::set_check_pool`): the verdicts of a batch come back
    /// [`Sim::check_ms`] later, as an input. Set before adding nodes.
    pub check_pool: bool,
    /// How long the simulated pool takes per batch.
    pub check_ms: u64,
}

/// A fresh in-memory store. Restarting a simulated node with a new one models
/// a node whose disk was wiped; [`Sim::take_store`] keeps a node's disk.
pub fn memory_store() -> Box<dyn ChatStore> {
    Box::new(MemoryStore::new())
}

/// A fixed identity for simulated node `i`.
pub fn identity(i: usize) -> LocalIdentity {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64).wrapping_add(1).to_le_bytes());
    let mut dh = [0x42u8; 32];
    dh[..8].copy_from_slice(&(i as u64).wrapping_add(1).to_le_bytes());
    // Valid secrets by construction: any 32 bytes are a valid seed and scalar.
    match LocalIdentity::from_secrets(seed, dh) {
        Ok(id) => id,
        Err(_) => unreachable!("fixed simulation keys are valid"),
    }
}

/// A node configuration suited to simulation: discovery aimed at [`BROADCAST`].
pub fn node_config(i: usize) -> NodeConfig {
    NodeConfig {
        nickname: format!("node{i}"),
        listen_port: 7000,
        beacon_targets: vec![BROADCAST],
        ..NodeConfig::default()
    }
}

impl Sim {
    pub fn new(seed: u64, net: NetConfig) -> Sim {
        Sim {
            nodes: Vec::new(),
            now_ms: 0,
            net,
            rng: Rng::new(seed),
            queue: BinaryHeap::new(),
            pending: BTreeMap::new(),
            seq: 0,
            conns: BTreeMap::new(),
            next_conn: 1,
            link_conn: BTreeMap::new(),
            cut: BTreeSet::new(),
            by_addr: BTreeMap::new(),
            wan_endpoints: BTreeMap::new(),
            wan_cut: false,
            timers: BTreeSet::new(),
            timer_of: Vec::new(),
            check_pool: true,
            check_ms: 1,
        }
    }

    /// The address of host `i`: 127.1.0.1, 127.1.0.2, …, carrying into the
    /// third octet past 255 hosts.
    fn host_addr(i: usize, port: u16) -> SocketAddr {
        // 127.1.255.255 is BROADCAST; no simulation comes near 65,534 hosts.
        let n = u16::try_from(i + 1)
            .unwrap_or(u16::MAX - 1)
            .min(u16::MAX - 1);
        let [hi, lo] = n.to_be_bytes();
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 1, hi, lo)), port)
    }

    /// Re-read node `i`'s next deadline into the timer index.
    fn refresh_timer(&mut self, i: usize) {
        if let Some(t) = self.timer_of.get_mut(i).and_then(Option::take) {
            self.timers.remove(&(t, i));
        }
        if !self.nodes[i].up {
            return;
        }
        let n = &mut self.nodes[i];
        let started = Instant::now();
        let next = n.node.poll_timeout();
        n.busy += started.elapsed();
        if let Some(t) = next {
            let t = t.max(self.now_ms);
            self.timers.insert((t, i));
            self.timer_of[i] = Some(t);
        }
    }

    /// Add a node with a custom configuration; returns its index.
    pub fn add_node_with(&mut self, id: LocalIdentity, cfg: NodeConfig) -> usize {
        let i = self.nodes.len();
        let addr = Sim::host_addr(i, cfg.listen_port);
        let seed = self.rng.next_u64();
        let mut node = Node::new(
            id,
            cfg,
            memory_store(),
            Rng::new(seed),
            self.now_ms,
            1_700_000_000_000 + self.now_ms,
        );
        let disk = MemoryDisk::default();
        node.set_file_store(Box::new(MemoryFileStore::new(disk.clone())));
        node.set_check_pool(self.check_pool);
        self.nodes.push(SimNode {
            node,
            addr,
            events: Vec::new(),
            up: true,
            disk,
            traffic: Traffic::default(),
            busy: Duration::ZERO,
            instance: 0,
        });
        self.timer_of.push(None);
        self.by_addr.entry(addr).or_insert(i);
        self.pump(i);
        i
    }

    /// Add `n` nodes with fixed identities and default simulation settings.
    pub fn add_nodes(&mut self, n: usize) {
        for _ in 0..n {
            let i = self.nodes.len();
            self.add_node_with(identity(i), node_config(i));
        }
    }

    pub fn identity_of(&self, i: usize) -> IdentityKey {
        self.nodes[i].node.identity().identity_key()
    }

    /// Feed an input to node `i` and process what it produces.
    pub fn input(&mut self, i: usize, input: Input) {
        if !self.nodes[i].up {
            return;
        }
        let now = self.now_ms;
        let n = &mut self.nodes[i];
        let started = Instant::now();
        n.node.handle(now, input);
        n.busy += started.elapsed();
        self.pump(i);
    }

    /// Cut or restore connectivity between two groups of nodes.
    pub fn partition(&mut self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                self.cut.insert((x.min(y), x.max(y)));
            }
        }
    }

    /// Remove every partition; held TCP bytes flow again.
    pub fn heal(&mut self) {
        self.cut.clear();
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            let held = match self.conns.get_mut(&id) {
                Some(c) => std::mem::take(&mut c.held),
                None => continue,
            };
            for (to_dialer, data) in held {
                self.schedule_stream(
                    id,
                    to_dialer,
                    Delivery::Bytes {
                        conn: id,
                        to_dialer,
                        data,
                    },
                );
            }
        }
    }

    /// Whether a connection's bytes get from `a` to `b` now.
    fn conn_reachable(&self, conn: u64, a: usize, b: usize) -> bool {
        match self.conns.get(&conn) {
            Some(c) if c.wan => self.nodes[a].up && self.nodes[b].up && !self.wan_cut,
            _ => self.reachable(a, b),
        }
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        self.nodes[a].up && self.nodes[b].up && !self.cut.contains(&(a.min(b), a.max(b)))
    }

    /// Power a node off: its connections die as if the process was killed
    /// (peers see the TCP connection close).
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].up = false;
        self.refresh_timer(i);
        let ids: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.dialer.0 == i || c.acceptor.is_some_and(|a| a.0 == i))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(c) = self.conns.get(&id) {
                let to_dialer = c.dialer.0 != i;
                self.schedule_stream(
                    id,
                    to_dialer,
                    Delivery::Closed {
                        conn: id,
                        to_dialer,
                    },
                );
            }
        }
    }

    /// Start a crashed node again with the same identity (a new instance)
    /// and an empty store (its disk was wiped).
    pub fn restart(&mut self, i: usize, id: LocalIdentity, cfg: NodeConfig) {
        self.restart_with(i, id, cfg, memory_store());
    }

    /// Take a crashed node's store, to restart it with its disk intact.
    pub fn take_store(&mut self, i: usize) -> Box<dyn ChatStore> {
        let (id, cfg) = (identity(usize::MAX - i), node_config(i));
        let dummy = Node::new(id, cfg, memory_store(), Rng::new(0), 0, 0);
        std::mem::replace(&mut self.nodes[i].node, dummy).into_store()
    }

    /// Start a crashed node again with the same identity and the given store.
    pub fn restart_with(
        &mut self,
        i: usize,
        id: LocalIdentity,
        cfg: NodeConfig,
        store: Box<dyn ChatStore>,
    ) {
        let seed = self.rng.next_u64();
        let now = self.now_ms;
        self.nodes[i].node =
            Node::new(id, cfg, store, Rng::new(seed), now, 1_700_000_000_000 + now);
        self.nodes[i].node.set_check_pool(self.check_pool);
        self.nodes[i].instance += 1;
        self.nodes[i].up = true;
        self.link_conn.retain(|(n, _), _| *n != i);
        self.pump(i);
    }

    fn delay(&mut self) -> u64 {
        let (lo, hi) = self.net.delay_ms;
        self.rng.range_ms(lo, hi)
    }

    fn schedule(&mut self, after_ms: u64, d: Delivery) {
        self.seq += 1;
        self.pending.insert(self.seq, d);
        self.queue.push(Reverse((self.now_ms + after_ms, self.seq)));
    }

    /// Schedule stream traffic (bytes or FIN) in order behind what the same
    /// direction of the connection already carries.
    fn schedule_stream(&mut self, conn: u64, to_dialer: bool, d: Delivery) {
        let delay = self.delay();
        let mut at = self.now_ms + delay;
        if let Some(c) = self.conns.get_mut(&conn) {
            let slot = &mut c.busy_until[usize::from(to_dialer)];
            at = at.max(*slot);
            *slot = at;
        }
        self.schedule(at - self.now_ms, d);
    }

    /// A dial of node `i` (its `link`) reaching host `j`, which accepts it
    /// or not.
    fn open_conn(
        &mut self,
        i: usize,
        link: LinkId,
        j: usize,
        wan: bool,
        accept: impl FnOnce(&mut Node, u64) -> Option<LinkId>,
    ) {
        let d = self.delay();
        let conn = self.next_conn;
        self.next_conn += 1;
        let now = self.now_ms;
        let started = Instant::now();
        let accepted = accept(&mut self.nodes[j].node, now);
        self.nodes[j].busy += started.elapsed();
        match accepted {
            Some(acc) => {
                self.nodes[j].traffic.accepts += 1;
                self.conns.insert(
                    conn,
                    SimConn {
                        dialer: (i, link),
                        acceptor: Some((j, acc)),
                        held: Vec::new(),
                        open: true,
                        busy_until: [0; 2],
                        wan,
                    },
                );
                self.link_conn.insert((i, link), conn);
                self.link_conn.insert((j, acc), conn);
                self.schedule(d, Delivery::Connected { node: i, link });
            }
            None => self.schedule(d, Delivery::ConnectFailed { node: i, link }),
        }
        self.pump(j);
    }

    /// The host whose iroh endpoint has this key: the node with that
    /// identity unless [`Sim::wan_endpoints`] says otherwise.
    fn wan_host_of(&self, key: &IdentityKey) -> Option<usize> {
        if let Some((&j, _)) = self.wan_endpoints.iter().find(|(_, k)| *k == key) {
            return Some(j);
        }
        self.nodes
            .iter()
            .position(|n| n.node.identity().identity_key() == *key)
            .filter(|j| !self.wan_endpoints.contains_key(j))
    }

    /// The key of node `i`'s iroh endpoint.
    fn wan_endpoint_of(&self, i: usize) -> IdentityKey {
        self.wan_endpoints
            .get(&i)
            .copied()
            .unwrap_or_else(|| self.nodes[i].node.identity().identity_key())
    }

    /// Feed node `i` an input from inside [`Sim::pump`], timed.
    fn feed(&mut self, i: usize, input: Input) {
        let now = self.now_ms;
        let n = &mut self.nodes[i];
        let started = Instant::now();
        n.node.handle(now, input);
        n.busy += started.elapsed();
    }

    /// Carry out everything node `i` wants done.
    fn pump(&mut self, i: usize) {
        loop {
            let n = &mut self.nodes[i];
            let started = Instant::now();
            let out = n.node.poll_output();
            n.busy += started.elapsed();
            let Some(out) = out else { break };
            match out {
                Output::Event(e) => self.nodes[i].events.push(e),
                Output::HashFile { transfer, path } => {
                    let result = self.nodes[i].disk.digest(&path);
                    self.feed(i, Input::FileHashed { transfer, result });
                }
                Output::CheckSignatures { ticket, posts } => {
                    let valid = posts.iter().map(|p| p.verify().is_ok()).collect();
                    let instance = self.nodes[i].instance;
                    self.schedule(
                        self.check_ms,
                        Delivery::Checked {
                            node: i,
                            instance,
                            ticket,
                            valid,
                        },
                    );
                }
                Output::Datagram { to, data } => {
                    let from = self.nodes[i].addr;
                    let len = data.len() as u64;
                    self.nodes[i].traffic.datagrams_sent += 1;
                    self.nodes[i].traffic.datagram_bytes_sent += len;
                    let targets: Vec<usize> = (0..self.nodes.len())
                        .filter(|&j| {
                            (to == BROADCAST || to.ip() == self.nodes[j].addr.ip())
                                && self.reachable(i, j)
                        })
                        .collect();
                    for j in targets {
                        if self.rng.below(1_000_000) < (self.net.loss * 1_000_000.0) as u64 {
                            continue;
                        }
                        let d = self.delay();
                        self.schedule(
                            d,
                            Delivery::Datagram {
                                to: j,
                                from,
                                data: data.clone(),
                            },
                        );
                    }
                }
                Output::Dial { link, addr } => {
                    self.nodes[i].traffic.dials += 1;
                    let target = self.by_addr.get(&addr).copied();
                    match target.filter(|&j| self.reachable(i, j)) {
                        Some(j) => {
                            let from = self.nodes[i].addr;
                            let port = 40000 + (self.next_conn % 20000) as u16;
                            let remote = SocketAddr::new(from.ip(), port);
                            self.open_conn(i, link, j, false, |n, now| n.accept(now, remote));
                        }
                        // Unreachable hosts time out; refused ones fail fast.
                        None => {
                            let d = self.delay();
                            self.schedule(d + 3_000, Delivery::ConnectFailed { node: i, link })
                        }
                    }
                }
                // Beyond the LAN every endpoint reaches every other through
                // a relay, whatever cuts the LAN has, unless the WAN is cut.
                Output::DialWan { link, peer, .. } => {
                    self.nodes[i].traffic.dials += 1;
                    let target = self.wan_host_of(&peer).filter(|&j| self.nodes[j].up);
                    match target.filter(|_| !self.wan_cut) {
                        Some(j) => {
                            let endpoint = self.wan_endpoint_of(i);
                            self.open_conn(i, link, j, true, |n, now| n.accept_wan(now, endpoint));
                        }
                        None => {
                            let d = self.delay();
                            self.schedule(d + 3_000, Delivery::ConnectFailed { node: i, link })
                        }
                    }
                }
                Output::Send { link, data } => {
                    let len = data.len();
                    self.nodes[i].traffic.tcp_bytes_sent += len as u64;
                    if let Some(&conn) = self.link_conn.get(&(i, link)) {
                        let (to_dialer, other) = match self.conns.get(&conn) {
                            Some(c) if c.dialer == (i, link) => (false, c.acceptor.map(|a| a.0)),
                            Some(c) => (true, Some(c.dialer.0)),
                            None => (false, None),
                        };
                        if let Some(other) = other {
                            if self.conn_reachable(conn, i, other) {
                                self.schedule_stream(
                                    conn,
                                    to_dialer,
                                    Delivery::Bytes {
                                        conn,
                                        to_dialer,
                                        data,
                                    },
                                );
                            } else if let Some(c) = self.conns.get_mut(&conn) {
                                c.held.push((to_dialer, data));
                            }
                        }
                    }
                    self.feed(i, Input::Flushed { link, bytes: len });
                }
                Output::Close { link } | Output::Abort { link } => {
                    // The simulated socket is gone at once.
                    self.feed(i, Input::Closed { link, error: None });
                    if let Some(conn) = self.link_conn.remove(&(i, link)) {
                        if let Some(c) = self.conns.get(&conn) {
                            let to_dialer = c.dialer != (i, link);
                            let other = if to_dialer {
                                Some(c.dialer.0)
                            } else {
                                c.acceptor.map(|a| a.0)
                            };
                            // FIN after the data already sent; a partition holds it.
                            if other.is_some_and(|o| self.conn_reachable(conn, i, o)) {
                                self.schedule_stream(
                                    conn,
                                    to_dialer,
                                    Delivery::Closed { conn, to_dialer },
                                );
                            }
                        }
                    }
                }
            }
        }
        self.refresh_timer(i);
    }

    fn deliver(&mut self, d: Delivery) {
        match d {
            Delivery::Checked {
                node,
                instance,
                ticket,
                valid,
            } => {
                if self.nodes[node].instance == instance {
                    self.input(node, Input::SignaturesChecked { ticket, valid });
                }
            }
            Delivery::Datagram { to, from, data } => {
                if self.nodes[to].up {
                    let t = &mut self.nodes[to].traffic;
                    t.datagrams_received += 1;
                    t.datagram_bytes_received += data.len() as u64;
                    self.input(to, Input::Datagram { from, data });
                }
            }
            Delivery::Connected { node, link } => self.input(node, Input::Connected { link }),
            Delivery::ConnectFailed { node, link } => self.input(
                node,
                Input::ConnectFailed {
                    link,
                    error: "unreachable".into(),
                },
            ),
            Delivery::Bytes {
                conn,
                to_dialer,
                data,
            } => {
                let Some(c) = self.conns.get(&conn) else {
                    return;
                };
                if !c.open {
                    return;
                }
                let target = if to_dialer {
                    Some(c.dialer)
                } else {
                    c.acceptor
                };
                if let Some((n, l)) = target {
                    if self.link_conn.get(&(n, l)) == Some(&conn) {
                        if self.nodes[n].up {
                            self.nodes[n].traffic.tcp_bytes_received += data.len() as u64;
                        }
                        self.input(n, Input::Received { link: l, data });
                    }
                }
            }
            Delivery::Closed { conn, to_dialer } => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                c.open = false;
                let target = if to_dialer {
                    Some(c.dialer)
                } else {
                    c.acceptor
                };
                if let Some((n, l)) = target {
                    if self.link_conn.remove(&(n, l)).is_some() {
                        self.input(
                            n,
                            Input::Closed {
                                link: l,
                                error: None,
                            },
                        );
                    }
                }
            }
        }
    }

    /// Advance simulated time to `until_ms`, delivering and firing timers.
    pub fn run_until(&mut self, until_ms: u64) {
        // A test may have driven a node directly since the last run: carry
        // out what that produced (frames it queued are sealed and sent) and
        // re-read its deadline. A node nobody touched has nothing to give.
        for i in 0..self.nodes.len() {
            if self.nodes[i].up {
                self.pump(i);
            } else {
                self.refresh_timer(i);
            }
        }
        loop {
            let next_delivery = self.queue.peek().map(|Reverse((t, _))| *t);
            // Ties go to the lowest node index, as (deadline, node) sorts.
            let next_timer = self.timers.first().copied();
            let next = match (next_delivery, next_timer) {
                (Some(d), Some((t, _))) => d.min(t),
                (Some(d), None) => d,
                (None, Some((t, _))) => t,
                (None, None) => break,
            };
            if next > until_ms {
                break;
            }
            self.now_ms = next;
            if next_delivery == Some(next) {
                if let Some(Reverse((_, seq))) = self.queue.pop() {
                    if let Some(d) = self.pending.remove(&seq) {
                        self.deliver(d);
                    }
                }
            } else if let Some((_, i)) = next_timer {
                let n = &mut self.nodes[i];
                let started = Instant::now();
                n.node.handle_timeout(next);
                n.busy += started.elapsed();
                self.pump(i);
            }
        }
        self.now_ms = until_ms;
    }

    /// Run for `ms` more milliseconds.
    pub fn run_for(&mut self, ms: u64) {
        self.run_until(self.now_ms + ms);
    }

    /// True if every pair of up nodes has exactly one established link.
    pub fn full_mesh(&self) -> bool {
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].up)
            .collect();
        let ids: BTreeSet<IdentityKey> = up.iter().map(|&i| self.identity_of(i)).collect();
        up.iter().all(|&i| {
            let me = self.identity_of(i);
            let connected: BTreeSet<IdentityKey> =
                self.nodes[i].node.connected().into_iter().collect();
            // Every other up node, and exactly one link to each.
            ids.iter()
                .filter(|k| **k != me)
                .all(|k| connected.contains(k))
                && self.nodes[i].node.link_count() == up.len() - 1
        })
    }

    /// Run in steps of `step_ms` until every pair of up nodes is linked
    /// ([`Sim::full_mesh`]) or `limit_ms` have passed; the simulated time
    /// the mesh took (to within a step), or `None`.
    pub fn run_until_mesh(&mut self, step_ms: u64, limit_ms: u64) -> Option<u64> {
        let start = self.now_ms;
        let step = step_ms.max(1);
        while self.now_ms < start.saturating_add(limit_ms) {
            self.run_for(step);
            if self.full_mesh() {
                return Some(self.now_ms - start);
            }
        }
        None
    }

    /// Every host's traffic, summed.
    pub fn traffic(&self) -> Traffic {
        self.nodes
            .iter()
            .fold(Traffic::default(), |acc, n| acc.add(&n.traffic))
    }

    /// Time spent in every host's node code, summed.
    pub fn busy(&self) -> Duration {
        self.nodes.iter().map(|n| n.busy).sum()
    }
}
