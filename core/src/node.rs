//! The sans-IO node: owns discovery, peers and links.
//!
//! The shell (`net`, or a simulation) feeds it [`Input`]s and the time, and
//! drains [`Output`]s: datagrams to send, TCP dials, bytes to write, sockets
//! to close and events for the user. The node never reads a clock or touches
//! a socket, so every rule here can be tested deterministically.
//!
//! ```text
//!   shell ──Input──▶ Node::handle(now, input)      shell ◀──Output── Node::poll_output()
//!   shell ──now────▶ Node::handle_timeout(now)     shell ◀──deadline─ Node::poll_timeout()
//! ```

use crate::chat::Chat;
use crate::chat::ChatStore;
use crate::discovery::{Discovery, DiscoveryConfig};
use crate::event::{hex_key, Event, PeerInfo};
use crate::handshake::{HandshakeConfig, PeerHello};
use crate::identity::{IdentityKey, LocalIdentity};
use crate::link::{
    Connection, Direction, Expiry, LinkConfig, LinkEvent, Purpose, SealError, Stage,
};
use crate::peer::{Backoff, LinkId, Peer, PeerLink, PeerState, PeerTable};
use crate::rng::Rng;
use crate::trust::{self, TrustState};
use crate::wire::limits::HANDSHAKE_DEADLINE_MS;
use crate::wire::{CloseReason, Frame};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

/// Most dials of ours that may be unfinished at once.
pub const MAX_PENDING_DIALS: usize = 32;

pub use crate::link::connection::HARD_QUEUE_FACTOR;

/// Tunables of the node. Defaults are the documented protocol values.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub nickname: String,
    /// TCP port we accept links on, announced in beacons and hellos.
    pub listen_port: u16,
    /// Discovery settings; `None` disables beacons entirely.
    pub discovery: Option<DiscoveryConfig>,
    /// Where beacons are sent (broadcast addresses, or loopback for tests).
    pub beacon_targets: Vec<SocketAddr>,
    /// Send a ping after this long without receiving anything.
    pub keepalive_ms: u64,
    /// Declare a link dead after this long without receiving anything.
    pub dead_after_ms: u64,
    pub handshake_deadline_ms: u64,
    /// The peer with the higher identity key waits this long before dialling
    /// a newly discovered peer, so that usually only one side dials.
    pub higher_dial_delay_ms: u64,
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    /// Most connections in any state.
    pub max_links: usize,
    /// Most connections still in the handshake.
    pub max_handshakes: usize,
    /// Bytes handed to the shell and not yet written before a peer counts as
    /// not reading and is disconnected.
    pub max_queued_bytes: usize,
    /// A link whose unwritten data stays above `max_queued_bytes` with no
    /// write progress for this long is disconnected. Above
    /// `HARD_QUEUE_FACTOR × max_queued_bytes` it is disconnected at once.
    pub send_stall_ms: u64,
}

impl NodeConfig {
    /// What each link needs of the configuration.
    pub fn link_config(&self) -> LinkConfig {
        LinkConfig {
            keepalive_ms: self.keepalive_ms,
            dead_after_ms: self.dead_after_ms,
            handshake_deadline_ms: self.handshake_deadline_ms,
            max_queued_bytes: self.max_queued_bytes,
            send_stall_ms: self.send_stall_ms,
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            nickname: "anonymous".into(),
            listen_port: 0,
            discovery: Some(DiscoveryConfig::default()),
            beacon_targets: Vec::new(),
            keepalive_ms: 5_000,
            dead_after_ms: 15_000,
            handshake_deadline_ms: HANDSHAKE_DEADLINE_MS,
            higher_dial_delay_ms: 1_500,
            backoff_min_ms: 500,
            backoff_max_ms: 30_000,
            max_links: 512,
            max_handshakes: 64,
            max_queued_bytes: 4 << 20,
            send_stall_ms: 5_000,
        }
    }
}

/// Something that happened outside the node.
#[derive(Debug)]
pub enum Input {
    /// A UDP datagram arrived on the beacon socket.
    Datagram { from: SocketAddr, data: Vec<u8> },
    /// The TCP connect of `Output::Dial` succeeded.
    Connected { link: LinkId },
    /// The TCP connect of `Output::Dial` failed.
    ConnectFailed { link: LinkId, error: String },
    /// Bytes arrived on a link.
    Received { link: LinkId, data: Vec<u8> },
    /// The shell wrote `bytes` of this link's queued data to the socket.
    Flushed { link: LinkId, bytes: usize },
    /// The socket closed (EOF or error).
    Closed { link: LinkId, error: Option<String> },
    /// A user command.
    Command(Command),
}

/// A request from the user interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Dial an address; keep retrying until it answers.
    Connect(SocketAddr),
    /// List peers (answered with [`Event::Peers`]).
    Peers,
    /// Change our nickname and tell connected peers.
    Nick(String),
    /// Send opaque data to a peer (tests and benchmarks).
    SendData { peer: IdentityKey, data: Vec<u8> },
    /// Post to the public room.
    Say(String),
    /// Private message to a peer named by nickname or fingerprint prefix.
    Msg { peer: String, text: String },
    /// The last `limit` messages of the public room or of a conversation.
    History { peer: Option<String>, limit: usize },
    /// Full-text search over all history.
    Search { query: String, limit: usize },
    /// Show fingerprints and the safety number of a peer.
    Verify { peer: String },
    /// Mark a peer verified; `fingerprint` must be typed out in full.
    Trust {
        peer: String,
        fingerprint: Option<String>,
    },
    /// Mark a peer unverified again.
    Untrust { peer: String },
    /// Close every link and stop.
    Quit,
}

/// Something the shell must do.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    Datagram {
        to: SocketAddr,
        data: Vec<u8>,
    },
    /// Open a TCP connection; answer with `Connected` or `ConnectFailed`.
    Dial {
        link: LinkId,
        addr: SocketAddr,
    },
    /// Write these bytes to the link, then report `Flushed`.
    Send {
        link: LinkId,
        data: Vec<u8>,
    },
    /// Write what is queued, then close the socket. No `Closed` is needed.
    Close {
        link: LinkId,
    },
    Event(Event),
}

/// Cached results of [`Node::trust_of`] and the naming candidates.
#[derive(Default)]
pub(crate) struct NameCache {
    trust: std::collections::HashMap<(IdentityKey, String), TrustState>,
    pub(crate) candidates: Option<Vec<crate::trust::Candidate>>,
}

/// A `--connect` / `/connect` target whose identity is not known yet. The
/// dial serving it is the unestablished `Purpose::Manual` connection to
/// `addr`.
struct ManualTarget {
    addr: SocketAddr,
    next_dial_ms: Option<u64>,
    backoff: Backoff,
}

/// The node. See the module documentation.
pub struct Node {
    local: LocalIdentity,
    cfg: NodeConfig,
    rng: Rng,
    discovery: Option<Discovery>,
    chat: Chat,
    /// Posts typed since the last drain: `(None = public | Some(peer), text)`.
    posts: Vec<(Option<IdentityKey>, String)>,
    /// Derived naming and trust data, so that showing a message does not
    /// cost store queries.
    names: std::cell::RefCell<NameCache>,
    conns: BTreeMap<LinkId, Connection>,
    peers: PeerTable,
    manual: Vec<ManualTarget>,
    out: VecDeque<Output>,
    next_link: LinkId,
    now_ms: u64,
    /// `wall clock ms − monotonic ms` at creation.
    wall_offset_ms: i128,
    shutting_down: bool,
}

impl Node {
    /// A node. `now_ms` is the shell's monotonic clock, `wall_ms` the Unix
    /// time in ms at the same instant, `instance` random per process start.
    pub fn new(
        local: LocalIdentity,
        cfg: NodeConfig,
        store: Box<dyn ChatStore>,
        mut rng: Rng,
        now_ms: u64,
        wall_ms: u64,
    ) -> Node {
        let discovery = cfg.discovery.clone().map(|dc| {
            // The instance is public; take it from the OS so it reveals
            // nothing about the jitter generator.
            let mut b = [0u8; 8];
            let instance = match crate::identity::random_bytes(&mut b) {
                Ok(()) => u64::from_le_bytes(b),
                Err(_) => rng.next_u64(),
            };
            Discovery::new(
                dc,
                &local,
                cfg.nickname.clone(),
                cfg.listen_port,
                instance,
                Rng::new(rng.next_u64()),
            )
        });
        let chat = Chat::new(store, local.identity_key());
        let peers = PeerTable::new(
            local.identity_key(),
            cfg.higher_dial_delay_ms,
            cfg.backoff_min_ms,
            cfg.backoff_max_ms,
        );
        let mut node = Node {
            local,
            cfg,
            rng,
            discovery,
            chat,
            posts: Vec::new(),
            names: std::cell::RefCell::new(NameCache::default()),
            conns: BTreeMap::new(),
            peers,
            manual: Vec::new(),
            out: VecDeque::new(),
            next_link: 1,
            now_ms,
            wall_offset_ms: i128::from(wall_ms) - i128::from(now_ms),
            shutting_down: false,
        };
        node.remember_known_peers();
        node
    }

    pub fn identity(&self) -> &LocalIdentity {
        &self.local
    }

    pub fn nickname(&self) -> &str {
        &self.cfg.nickname
    }

    /// Unix time in ms, derived from the monotonic clock.
    pub fn wall_ms(&self, now_ms: u64) -> u64 {
        u64::try_from(i128::from(now_ms) + self.wall_offset_ms).unwrap_or(0)
    }

    /// The peer table, for the UI and tests.
    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.iter()
    }

    pub fn peer(&self, id: &IdentityKey) -> Option<&Peer> {
        self.peers.get(id)
    }

    /// Identities with an established link.
    pub fn connected(&self) -> Vec<IdentityKey> {
        self.peers
            .iter()
            .filter(|p| self.state_of(p).established_link().is_some())
            .map(|p| p.identity())
            .collect()
    }

    /// Number of connections in the table, in any state.
    pub fn link_count(&self) -> usize {
        self.conns.len()
    }

    pub fn is_shut_down(&self) -> bool {
        self.shutting_down
    }

    /// Next action for the shell.
    ///
    /// Frames queued by several inputs in a row are sealed together when the
    /// shell starts draining: small frames then share Noise messages and
    /// writes, which is what makes bursts of small messages cheap.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.out.is_empty() {
            self.flush();
        }
        self.out.pop_front()
    }

    /// A new inbound TCP connection. Returns its id, or `None` if the node is
    /// at its connection limits (the shell then drops the socket).
    pub fn accept(&mut self, now_ms: u64, remote: SocketAddr) -> Option<LinkId> {
        self.now_ms = now_ms;
        let handshaking = self
            .conns
            .values()
            .filter(|c| c.direction() == Direction::Inbound && !c.is_established())
            .count();
        if self.shutting_down
            || self.conns.len() >= self.cfg.max_links
            || handshaking >= self.cfg.max_handshakes
        {
            return None;
        }
        let hs = self.handshake_config();
        let conn =
            Connection::inbound(now_ms, remote, &self.local, &hs, self.cfg.link_config()).ok()?;
        let id = self.alloc_link();
        self.conns.insert(id, conn);
        Some(id)
    }

    /// Feed one input.
    pub fn handle(&mut self, now_ms: u64, input: Input) {
        self.now_ms = now_ms;
        match input {
            Input::Datagram { from, data } => self.on_datagram(from, &data),
            Input::Connected { link } => self.on_connected(link),
            Input::ConnectFailed { link, error } => {
                self.on_gone(link, &format!("connect failed: {error}"))
            }
            Input::Received { link, data } => self.on_received(link, &data),
            Input::Flushed { link, bytes } => {
                if let Some(c) = self.conns.get_mut(&link) {
                    c.on_flushed(now_ms, bytes);
                }
            }
            Input::Closed { link, error } => {
                let reason = error.unwrap_or_else(|| "connection closed by peer".into());
                self.on_gone(link, &reason)
            }
            Input::Command(cmd) => self.on_command(cmd),
        }
    }

    /// The earliest time at which [`Node::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<u64> {
        let mut t: Option<u64> = self.discovery.as_ref().and_then(|d| d.poll_timeout());
        let mut at = |x: u64| t = Some(t.map_or(x, |y| y.min(x)));
        for d in self.conns.values().filter_map(Connection::poll_timeout) {
            at(d);
        }
        if let Some(d) = self.peers.next_dial() {
            at(d);
        }
        for m in &self.manual {
            if let Some(d) = m.next_dial_ms {
                at(d);
            }
        }
        t
    }

    /// Run timers due at `now_ms`.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        if self.shutting_down {
            return;
        }
        self.run_discovery();
        self.check_links();
        self.run_dials();
    }

    // ---- discovery ------------------------------------------------------

    fn run_discovery(&mut self) {
        let now = self.now_ms;
        let wall = self.wall_ms(now);
        let Some(d) = self.discovery.as_mut() else {
            return;
        };
        if let Some(beacon) = d.poll_beacon(now, wall, &self.local) {
            for to in &self.cfg.beacon_targets {
                self.out.push_back(Output::Datagram {
                    to: *to,
                    data: beacon.clone(),
                });
            }
        }
        for id in d.expire(now) {
            let forget = self
                .peers
                .get(&id)
                .is_some_and(|p| !p.pinned && p.is_idle());
            let established = self.link_of(&id).is_some();
            if forget {
                if let Some(p) = self.peers.remove(&id) {
                    self.names_changed();
                    let info = self.info(&p);
                    self.emit(Event::PeerExpired { peer: info });
                }
            } else if let Some(p) = self.peers.get_mut(&id) {
                // Dialling now: forget it if that dial fails.
                p.expired = !p.pinned && !established;
            }
        }
    }

    fn on_datagram(&mut self, from: SocketAddr, data: &[u8]) {
        let now = self.now_ms;
        let Some(d) = self.discovery.as_mut() else {
            return;
        };
        // Rejected beacons are counted by discovery and otherwise ignored:
        // a beacon is only ever a hint.
        let Ok(s) = d.handle_datagram(now, from, data) else {
            return;
        };
        let id = s.keys.identity;
        let established = self.link_of(&id).is_some();
        let (peer, is_new) = self.peers.get_or_insert(id, &s.nickname, Some(s.addr), now);
        peer.last_heard_ms = now;
        peer.expired = false;
        // A live link is authenticated knowledge; a beacon is only a hint
        // and never overrides it.
        if !established {
            peer.addr = Some(s.addr);
            if peer.nickname != s.nickname {
                peer.nickname = s.nickname;
                *self.names.borrow_mut() = NameCache::default();
            }
        }
        if peer.is_idle() && (is_new || s.restarted || peer.next_dial_ms.is_none()) {
            if s.restarted {
                peer.backoff.reset();
            }
            self.peers.schedule_dial(&id, now, 0);
        }
        if is_new {
            self.names_changed();
            let info = self.info_of(&id);
            self.emit(Event::PeerDiscovered { peer: info });
        }
    }

    // ---- dialling -------------------------------------------------------

    fn run_dials(&mut self) {
        let now = self.now_ms;
        for id in self.peers.due(now) {
            self.dial_peer(id);
        }
        for i in 0..self.manual.len() {
            let addr = self.manual[i].addr;
            if self.manual[i].next_dial_ms.is_some_and(|t| t <= now) && !self.dialling_manual(addr)
            {
                self.manual[i].next_dial_ms = None;
                self.dial(addr, Purpose::Manual);
            }
        }
    }

    fn dial_peer(&mut self, id: IdentityKey) {
        let pending = self
            .conns
            .values()
            .filter(|c| c.direction() == Direction::Outbound && !c.is_established())
            .count();
        let retry = self.now_ms + self.rng.range_ms(500, 1_500);
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        p.next_dial_ms = None;
        let Some(addr) = p.addr else { return };
        if !p.is_idle() {
            return;
        }
        // Beacons name addresses; a flood of them must not turn into a flood
        // of connects (nor crowd out inbound handshakes).
        if pending >= MAX_PENDING_DIALS {
            p.next_dial_ms = Some(retry);
            return;
        }
        let link = self.dial(addr, Purpose::Dial(id));
        if let Some(p) = self.peers.get_mut(&id) {
            p.link = PeerLink::Linked(link);
        }
    }

    fn dial(&mut self, addr: SocketAddr, purpose: Purpose) -> LinkId {
        let id = self.alloc_link();
        let conn = Connection::dial(self.now_ms, addr, purpose, self.cfg.link_config());
        self.conns.insert(id, conn);
        self.out.push_back(Output::Dial { link: id, addr });
        id
    }

    fn on_connected(&mut self, link_id: LinkId) {
        let cfg = self.handshake_config();
        let Some(c) = self.conns.get_mut(&link_id) else {
            return;
        };
        if c.stage() != Stage::Connecting {
            return;
        }
        match c.on_connected(&self.local, &cfg) {
            Ok(()) => self.transmit(link_id),
            Err(e) => self.close(link_id, &format!("cannot start handshake: {e}"), None),
        }
    }

    // ---- links ----------------------------------------------------------

    fn on_received(&mut self, link_id: LinkId, data: &[u8]) {
        let Some(c) = self.conns.get_mut(&link_id) else {
            return;
        };
        let result = c.on_bytes(self.now_ms, data);
        self.transmit(link_id);
        match result {
            Ok(events) => {
                for ev in events {
                    match ev {
                        LinkEvent::Established(hello) => self.on_established(link_id, hello),
                        LinkEvent::Frames(frames) => {
                            let mut chat = Vec::new();
                            for f in frames {
                                if !self.conns.contains_key(&link_id) {
                                    break;
                                }
                                if crate::chat::is_chat_frame(&f) {
                                    chat.push(f);
                                } else {
                                    // Chat frames before a Close are handled
                                    // (stored, acked) before the link goes.
                                    if matches!(f, Frame::Close(_)) && !chat.is_empty() {
                                        self.chat_frames(link_id, std::mem::take(&mut chat));
                                    }
                                    self.on_frame(link_id, f);
                                }
                            }
                            if !chat.is_empty() {
                                self.chat_frames(link_id, chat);
                            }
                        }
                    }
                }
            }
            Err(e) => {
                // A link whose transport failed cannot carry a Close frame.
                self.close(link_id, &e.to_string(), None);
            }
        }
    }

    fn on_established(&mut self, link_id: LinkId, hello: PeerHello) {
        let now = self.now_ms;
        let id = hello.identity();
        let Some(c) = self.conns.get_mut(&link_id) else {
            return;
        };
        let remote = c.remote();
        let dial_addr = match c.direction() {
            Direction::Outbound => Some(remote),
            Direction::Inbound => {
                (hello.listen_port != 0).then(|| SocketAddr::new(remote.ip(), hello.listen_port))
            }
        };
        let direction = c.direction();
        // A manual target that reached this identity becomes a pinned peer.
        let pinned = self.take_manual_target(link_id);
        let (peer, is_new) = self
            .peers
            .get_or_insert(id, &hello.nickname, dial_addr, now);

        peer.nickname = hello.nickname.clone();
        peer.last_heard_ms = now;
        peer.pinned |= pinned;
        if dial_addr.is_some() {
            peer.addr = dial_addr;
        }
        self.names_changed();
        if is_new {
            let info = self.info_of(&id);
            self.emit(Event::PeerDiscovered { peer: info });
        }
        self.chat_peer_seen(&hello, dial_addr);

        // Duplicate links: keep the one dialled by the lower identity key;
        // between two dialled by the same side, keep the one with the smaller handshake hash.
        let existing = self.link_of(&id);
        if let Some(old) = existing.filter(|old| *old != link_id && self.conns.contains_key(old)) {
            let keep = self.preferred(old, link_id, id);
            let drop = if keep == old { link_id } else { old };
            if let Some(p) = self.peers.get_mut(&id) {
                p.link = PeerLink::Linked(keep);
            }
            self.close(drop, "duplicate link", Some(CloseReason::DuplicateLink));
            if keep == link_id {
                // Whatever was in flight on the old link is resent here.
                self.chat_link_up(id);
            }
            return;
        }

        // A dial of ours still running would lose the tie-break if we are the
        // higher key: cancel it. If we are the lower key it would win on both
        // sides, so let it finish (the tie-break then closes this link).
        let local_higher = self.local.identity_key() > id;
        let pending: Vec<LinkId> = self
            .conns
            .iter()
            .filter(|(l, c)| {
                **l != link_id
                    && !c.is_established()
                    && c.direction() == Direction::Outbound
                    && c.expected() == Some(id)
            })
            .map(|(l, _)| *l)
            .collect();
        if local_higher {
            for l in pending {
                self.conns.remove(&l);
                self.out.push_back(Output::Close { link: l });
            }
        }
        if let Some(p) = self.peers.get_mut(&id) {
            p.link = PeerLink::Linked(link_id);
            p.backoff.reset();
            p.next_dial_ms = None;
        }
        let info = self.info_of(&id);
        self.emit(Event::PeerConnected {
            peer: info,
            direction,
        });
        self.chat_link_up(id);
    }

    /// Which of two established links to the same peer survives.
    fn preferred(&self, a: LinkId, b: LinkId, peer: IdentityKey) -> LinkId {
        let me = self.local.identity_key();
        let lower = me.min(peer);
        let dialled_by_lower = |l: LinkId| {
            self.conns.get(&l).is_some_and(|c| {
                let initiator = if c.direction() == Direction::Outbound {
                    me
                } else {
                    peer
                };
                initiator == lower
            })
        };
        match (dialled_by_lower(a), dialled_by_lower(b)) {
            (true, false) => a,
            (false, true) => b,
            // Both dialled by the same side: keep the one with the smaller
            // handshake hash, which both ends see alike (link ids do not).
            _ => {
                let hash = |l: LinkId| {
                    self.conns
                        .get(&l)
                        .map(|c| c.handshake_hash().to_vec())
                        .unwrap_or_default()
                };
                if hash(a) <= hash(b) {
                    a
                } else {
                    b
                }
            }
        }
    }

    fn on_frame(&mut self, link_id: LinkId, frame: Frame) {
        let Some(c) = self.conns.get_mut(&link_id) else {
            return;
        };
        let Some(id) = c.peer() else { return };
        if let Some(p) = self.peers.get_mut(&id) {
            p.last_heard_ms = self.now_ms;
        }
        match frame {
            Frame::Ping(n) => c.queue(Frame::Pong(n)),
            Frame::Pong(_) => {}
            Frame::Close(close) => {
                let detail = &close.detail;
                let reason = format!("peer closed the link ({:?}: {detail})", close.reason);
                self.close(link_id, &reason, None);
            }
            Frame::Data(data) => self.emit(Event::Data {
                from: hex_key(&id),
                len: data.len(),
            }),
            Frame::Nick(nick) => {
                if let Some(p) = self.peers.get_mut(&id) {
                    let old = std::mem::replace(&mut p.nickname, nick.clone());
                    self.names_changed();
                    let info = self.info_of(&id);
                    let changed = info.trust == TrustState::KeyChanged;
                    self.emit(Event::PeerRenamed {
                        peer: info.clone(),
                        old,
                    });
                    // Taking a verified contact's name is worth a warning.
                    if changed {
                        let verified = trust::verified_lookalikes(self.chat.store(), &id, &nick)
                            .unwrap_or_default()
                            .iter()
                            .map(|r| self.info_of(&IdentityKey(r.identity)))
                            .collect();
                        self.emit(Event::KeyWarning {
                            peer: info,
                            verified,
                        });
                    }
                }
            }
            // Routed to the chat core by on_received.
            Frame::Public(_) | Frame::Direct(_) | Frame::Ack(_) | Frame::SyncRequest(_) => {}
        }
    }

    fn check_links(&mut self) {
        let now = self.now_ms;
        let expired: Vec<_> = self
            .conns
            .iter_mut()
            .filter_map(|(l, c)| c.handle_timeout(now).map(|e| (*l, e)))
            .collect();
        for (l, e) in expired {
            self.close(l, e.why(), e.close_reason());
        }
    }

    /// Close a link: optionally tell the peer why, then drop it.
    fn close(&mut self, link_id: LinkId, why: &str, reason: Option<CloseReason>) {
        if let Some(reason) = reason {
            if let Some(c) = self.conns.get_mut(&link_id) {
                c.queue_close(reason, why);
            }
            self.flush_link(link_id);
        }
        if self.conns.contains_key(&link_id) {
            self.out.push_back(Output::Close { link: link_id });
        }
        self.on_gone(link_id, why);
    }

    /// A connection is gone: update the peer it belonged to.
    fn on_gone(&mut self, link_id: LinkId, why: &str) {
        let Some(c) = self.conns.remove(&link_id) else {
            return;
        };
        let now = self.now_ms;
        let manual = (c.purpose() == Purpose::Manual && !c.is_established())
            .then(|| self.manual.iter().position(|m| m.addr == c.remote()))
            .flatten();
        if let Some(i) = manual {
            let delay = self.manual[i].backoff.next_delay(&mut self.rng);
            self.manual[i].next_dial_ms = Some(now + delay);
            self.emit(Event::LinkFailed {
                addr: c.remote().to_string(),
                reason: why.into(),
            });
            return;
        }
        let id = c.peer().or(c.expected());
        let Some(p) = id.and_then(|id| self.peers.get_mut(&id)) else {
            if !c.is_established() {
                self.emit(Event::LinkFailed {
                    addr: c.remote().to_string(),
                    reason: why.into(),
                });
            }
            return;
        };
        let id = p.identity();
        let ours = p.link == PeerLink::Linked(link_id);
        if ours && c.is_established() {
            // Promote another established link to this peer, if any.
            let other = self
                .conns
                .iter()
                .find(|(_, oc)| oc.peer() == Some(id))
                .map(|(l, _)| *l);
            if let Some(other) = other {
                p.link = PeerLink::Linked(other);
                return;
            }
            p.link = PeerLink::Lost { since_ms: now };
            let wait = p.backoff.next_delay(&mut self.rng);
            self.chat.on_link_down(id);
            self.peers.schedule_dial(&id, now, wait);
            if !self.shutting_down {
                let info = self.info_of(&id);
                self.emit(Event::PeerLost {
                    peer: info,
                    reason: why.into(),
                });
            }
        } else if ours && p.expired {
            // Shown as it was, with the dial that just failed.
            let state = p.state(|_| Some(c.stage()));
            if let Some(p) = self.peers.remove(&id) {
                let info = self.info_as(&p, state);
                self.names_changed();
                self.emit(Event::PeerExpired { peer: info });
            }
        } else if ours {
            let delay = p.backoff.next_delay(&mut self.rng);
            p.link = if p.backoff.attempts() > 1 {
                PeerLink::Lost { since_ms: now }
            } else {
                PeerLink::Discovered
            };
            p.next_dial_ms = Some(now + delay);
            self.emit(Event::LinkFailed {
                addr: c.remote().to_string(),
                reason: why.into(),
            });
        }
    }

    // ---- commands -------------------------------------------------------

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Connect(addr) => {
                let linked = self
                    .peers
                    .iter()
                    .any(|p| p.addr == Some(addr) && self.state_of(p).established_link().is_some());
                if linked {
                    self.emit(Event::Info {
                        text: format!("already connected to {addr}"),
                    });
                    return;
                }
                if self.manual.iter().any(|m| m.addr == addr) {
                    return;
                }
                let backoff = self.new_backoff();
                self.dial(addr, Purpose::Manual);
                self.manual.push(ManualTarget {
                    addr,
                    next_dial_ms: None,
                    backoff,
                });
            }
            Command::Peers => {
                let peers = self.peers.iter().map(|p| self.info(p)).collect();
                self.emit(Event::Peers { peers });
            }
            Command::Nick(nick)
                if nick.is_empty() || nick.len() > crate::wire::limits::MAX_NICK_LEN =>
            {
                self.emit(Event::Error {
                    text: format!(
                        "a nickname is 1 to {} bytes",
                        crate::wire::limits::MAX_NICK_LEN
                    ),
                });
            }
            Command::Nick(nick) => {
                self.cfg.nickname = nick.clone();
                if let Err(e) = self.chat.store_mut().set_meta("nickname", &nick) {
                    self.emit(Event::Error {
                        text: format!("nickname not saved: {e}"),
                    });
                }
                if let Some(d) = self.discovery.as_mut() {
                    d.set_nickname(nick.clone());
                }
                for c in self.conns.values_mut().filter(|c| c.is_established()) {
                    c.queue(Frame::Nick(nick.clone()));
                }
            }
            Command::SendData { peer, data } => match self.link_of(&peer) {
                Some(l) => {
                    if let Some(c) = self.conns.get_mut(&l) {
                        c.queue(Frame::Data(data));
                    }
                }
                None => self.emit(Event::Error {
                    text: "peer is not connected".into(),
                }),
            },
            Command::Say(_)
            | Command::Msg { .. }
            | Command::History { .. }
            | Command::Search { .. }
            | Command::Verify { .. }
            | Command::Trust { .. }
            | Command::Untrust { .. } => self.on_chat_command(cmd),
            Command::Quit => {
                self.shutting_down = true;
                let links: Vec<LinkId> = self.conns.keys().copied().collect();
                for l in links {
                    self.close(l, "shutting down", Some(CloseReason::Shutdown));
                }
                self.emit(Event::Shutdown);
            }
        }
    }

    // ---- helpers --------------------------------------------------------

    /// The established link of a peer.
    pub fn link_of(&self, id: &IdentityKey) -> Option<LinkId> {
        self.peers
            .get(id)
            .and_then(|p| self.state_of(p).established_link())
    }

    /// A peer's lifecycle state, read from the stage of its link.
    pub fn peer_state(&self, id: &IdentityKey) -> Option<PeerState> {
        self.peers.get(id).map(|p| self.state_of(p))
    }

    fn state_of(&self, p: &Peer) -> PeerState {
        p.state(|l| self.conns.get(&l).map(Connection::stage))
    }

    /// Whether a `/connect` target's dial is running.
    fn dialling_manual(&self, addr: SocketAddr) -> bool {
        self.conns
            .values()
            .any(|c| c.purpose() == Purpose::Manual && c.remote() == addr && !c.is_established())
    }

    /// The `/connect` target this link served, removed now that it reached
    /// an identity: that peer becomes pinned.
    fn take_manual_target(&mut self, link_id: LinkId) -> bool {
        let Some(c) = self.conns.get(&link_id) else {
            return false;
        };
        if c.purpose() != Purpose::Manual {
            return false;
        }
        let addr = c.remote();
        let before = self.manual.len();
        self.manual.retain(|m| m.addr != addr);
        self.manual.len() != before
    }

    /// Queue a frame for a peer's established link; false if not connected.
    pub fn queue_frame(&mut self, id: &IdentityKey, frame: Frame) -> bool {
        match self.link_of(id).and_then(|l| self.conns.get_mut(&l)) {
            Some(c) => {
                c.queue(frame);
                true
            }
            None => false,
        }
    }

    fn handshake_config(&self) -> HandshakeConfig {
        HandshakeConfig::new(self.cfg.nickname.clone(), self.cfg.listen_port)
    }

    fn new_backoff(&self) -> Backoff {
        self.peers.new_backoff()
    }

    fn alloc_link(&mut self) -> LinkId {
        let id = self.next_link;
        self.next_link += 1;
        id
    }

    fn emit(&mut self, ev: Event) {
        self.out.push_back(Output::Event(ev));
    }

    fn info_of(&self, id: &IdentityKey) -> PeerInfo {
        match self.peers.get(id) {
            Some(p) => self.info(p),
            None => {
                let nickname = self.stored_nick(id);
                PeerInfo {
                    identity: hex_key(id),
                    fingerprint: id.fingerprint().grouped(),
                    trust: self.trust_of(id, &nickname),
                    nickname,
                    state: "offline",
                    addr: None,
                }
            }
        }
    }

    fn info(&self, p: &Peer) -> PeerInfo {
        self.info_as(p, self.state_of(p))
    }

    fn info_as(&self, p: &Peer, state: PeerState) -> PeerInfo {
        PeerInfo {
            identity: hex_key(&p.identity()),
            fingerprint: p.identity().fingerprint().grouped(),
            nickname: p.nickname.clone(),
            state: state.name(),
            addr: p.addr.map(|a| a.to_string()),
            trust: self.trust_of(&p.identity(), &p.nickname),
        }
    }

    /// Trust state of a key; a store failure shows as unverified. Cached
    /// until the peer table or the trust store changes.
    fn trust_of(&self, id: &IdentityKey, nickname: &str) -> TrustState {
        let key = (*id, nickname.to_string());
        if let Some(t) = self.names.borrow().trust.get(&key) {
            return *t;
        }
        let t = self.trust_of_uncached(id, nickname);
        self.names.borrow_mut().trust.insert(key, t);
        t
    }

    /// Forget cached trust states and naming candidates: the peer table,
    /// a nickname or the trust store changed.
    pub(crate) fn names_changed(&self) {
        *self.names.borrow_mut() = NameCache::default();
    }

    fn trust_of_uncached(&self, id: &IdentityKey, nickname: &str) -> TrustState {
        trust::trust_state(self.chat.store(), &self.local.identity_key(), id, nickname)
            .unwrap_or(TrustState::Unverified)
    }

    /// Hand the shell what a link has ready to write.
    fn transmit(&mut self, link_id: LinkId) {
        if let Some(data) = self.conns.get_mut(&link_id).and_then(|c| c.poll_transmit()) {
            self.out.push_back(Output::Send {
                link: link_id,
                data,
            });
        }
    }

    /// Seal every link's pending frames, one batch per link, and disconnect
    /// links whose unwritten data exceeds the bound (a peer that does not read).
    fn flush(&mut self) {
        self.flush_posts();
        let links: Vec<LinkId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.has_pending())
            .map(|(l, _)| *l)
            .collect();
        for l in links {
            self.flush_link(l);
        }
    }

    fn flush_link(&mut self, link_id: LinkId) {
        let Some(c) = self.conns.get_mut(&link_id) else {
            return;
        };
        match c.seal_pending() {
            Ok(()) => self.transmit(link_id),
            Err(SealError::Link(e)) => self.close(link_id, &format!("cannot send: {e}"), None),
            Err(SealError::TooSlow) => {
                // Not reading: drop the link. What it missed stays in the outbox.
                self.out.push_back(Output::Close { link: link_id });
                self.on_gone(link_id, Expiry::SendStall.why());
            }
        }
    }
}

mod chat;
#[cfg(test)]
mod tests;
