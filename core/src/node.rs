//! The sans-IO node: a router over connections, with the peer table and
//! the `/connect` targets.
//!
//! The shell (`natter::shell`, or the simulator) feeds it [`Input`]s and the time, and
//! drains [`Output`]s: datagrams to send, TCP dials, bytes to write, sockets
//! to close and events for the user. The node never reads a clock or touches
//! a socket, so every rule here can be tested deterministically.
//!
//! ```text
//!   shell ──Input──▶ Node::handle(now, input)      shell ◀──Output── Node::poll_output()
//!   shell ──now────▶ Node::handle_timeout(now)     shell ◀──deadline─ Node::poll_timeout()
//! ```
//!
//! Each link's state is one [`Connection`] (phase, timers, send queue,
//! byte accounting); a peer names the link that stands for it and its
//! state is read from that connection. The node's own code is split by
//! what triggers it:
//!
//! - `discover`: beacons out, sightings in, expiry;
//! - `dial`: scheduled dials, `/connect` targets, TCP connects;
//! - `links`: bytes in, frames routed, timers, closing, sealing and sending;
//! - `lifecycle`: a link becoming a peer's (the duplicate-link rule) and a
//!   link going away (promotion, redial);
//! - `commands`: the user's non-chat commands;
//! - `chat`: the glue to the chat core, naming and trust commands;
//! - `view`: what the UI is shown of a peer (`PeerInfo`, trust).

use crate::chat::{Chat, ChatStore, Linked, QuotaLimits, Target};
use crate::discovery::{Discovery, DiscoveryConfig};
use crate::event::Event;
use crate::files::{FileDigest, FileLimits, FileStore, Files, MemoryDisk, MemoryFileStore};
use crate::handshake::HandshakeConfig;
use crate::identity::{IdentityKey, LocalIdentity, VerifiedBindings};
use crate::link::{Connection, LinkConfig, Remote};
use crate::peer::{Backoff, LinkId, Peer, PeerState, PeerTable};
use crate::rng::Rng;
use crate::trust::Directory;
use crate::wire::frame::TransferId;
use crate::wire::limits::HANDSHAKE_DEADLINE_MS;
use crate::wire::Frame;
use conns::Conns;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

/// How long an accepted connection may take to deliver handshake message 1
/// (an honest initiator sends its 34 bytes as soon as TCP is up).
pub const FIRST_MESSAGE_MS: u64 = 2_000;

/// How long the shell may take to write what a closed link had queued
/// before it drops the socket.
pub const CLOSE_FLUSH_MS: u64 = 2_000;

/// A closed socket the shell has not reported gone is counted against
/// `max_links` for at most this long.
const CLOSING_GRACE_MS: u64 = CLOSE_FLUSH_MS + 1_000;

/// Most dials of ours that may be unfinished at once.
pub const MAX_PENDING_DIALS: usize = 32;

/// Kept under this path, where PROTOCOL.md and SECURITY.md name it.
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
    /// Most accepted connections still in the handshake; when full, a new
    /// one takes the slot of the one that has come least far, oldest first.
    pub max_handshakes: usize,
    /// Most of those from one source address (an IPv6 /64); a source at
    /// its cap gives up its own least advanced one.
    pub max_handshakes_per_source: usize,
    /// An accepted connection must deliver handshake message 1 within this.
    pub first_message_ms: u64,
    /// Bytes handed to the shell and not yet written before a peer counts as
    /// not reading and is disconnected.
    pub max_queued_bytes: usize,
    /// A link whose unwritten data stays above `max_queued_bytes` with no
    /// write progress for this long is disconnected. Above
    /// `HARD_QUEUE_FACTOR × max_queued_bytes` it is disconnected at once.
    pub send_stall_ms: u64,
    /// What strangers (neither verified nor long known) may add to history
    /// per day (`chat::quota`).
    pub stranger_quota: QuotaLimits,
    /// What files we accept (`files`).
    pub files: FileLimits,
    /// Links beyond the LAN through iroh (section 12): off unless the user
    /// turned it on (`--wan`). Off, the node never asks for a WAN dial,
    /// refuses WAN connections, sends no `Reach` and makes no ticket.
    pub wan: bool,
}

impl NodeConfig {
    /// What each link needs of the configuration.
    pub fn link_config(&self) -> LinkConfig {
        LinkConfig {
            keepalive_ms: self.keepalive_ms,
            dead_after_ms: self.dead_after_ms,
            handshake_deadline_ms: self.handshake_deadline_ms,
            first_message_ms: self.first_message_ms,
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
            max_handshakes_per_source: 8,
            first_message_ms: FIRST_MESSAGE_MS,
            max_queued_bytes: 4 << 20,
            send_stall_ms: 5_000,
            stranger_quota: QuotaLimits::default(),
            files: FileLimits::default(),
            wan: false,
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
    /// The answer to `Output::CheckSignatures`: per post, in its order,
    /// whether the signature verifies.
    SignaturesChecked { ticket: u64, valid: Vec<bool> },
    /// The answer to `Output::HashFile`.
    FileHashed {
        transfer: TransferId,
        result: Result<FileDigest, String>,
    },
    /// A user command.
    Command(Command),
    /// Where our iroh endpoint can be reached now (its home relay and
    /// addresses); the shell reports it whenever it changes.
    OwnReach(crate::wire::Reach),
    /// How a WAN link's bytes travel now (direct or relayed).
    Path {
        link: LinkId,
        path: crate::link::LinkPath,
    },
}

/// A request from the user interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Dial an address; keep retrying until it answers.
    Connect(SocketAddr),
    /// Dial a ticket's peer over iroh (`--wan`); it becomes a WAN contact,
    /// dialled again whenever it is not linked.
    ConnectTicket(crate::wire::Ticket),
    /// Our ticket (answered with [`Event::Ticket`]).
    Ticket,
    /// Show the `--wan` setting, or save it for the next start (answered
    /// with [`Event::Wan`]).
    Wan(Option<bool>),
    /// List peers (answered with [`Event::Peers`]).
    Peers,
    /// Change our nickname and tell connected peers.
    Nick(String),
    /// Send opaque data to a peer (tests and benchmarks).
    SendData { peer: IdentityKey, data: Vec<u8> },
    /// Post to the default room (`#lobby`).
    Say(String),
    /// Post to a joined room, named as typed (`#ops` or `ops`).
    Post { room: String, text: String },
    /// Join an open room.
    Join(String),
    /// Leave a joined room.
    Leave(String),
    /// List the joined rooms (answered with [`Event::Rooms`]).
    Rooms,
    /// The user read a room (made it current): its unread count restarts.
    ReadRoom(String),
    /// Who is in a joined room (answered with [`Event::Who`]).
    Who(String),
    /// Who has one of our messages, named by a hex prefix of its id
    /// (answered with [`Event::MessageInfo`]).
    Info(String),
    /// Found an invite-only room (`+name` or `name`).
    CreateRoom(String),
    /// The founder adds a peer to an invite-only room.
    Invite { peer: String, room: String },
    /// The founder removes a peer from an invite-only room; its key is
    /// replaced.
    Kick { peer: String, room: String },
    /// Private message to a peer named by nickname or fingerprint prefix.
    Msg { peer: String, text: String },
    /// The last `limit` messages of a direct conversation (`peer`), of a
    /// joined room (`room`), or of the default room.
    History {
        peer: Option<String>,
        room: Option<String>,
        limit: usize,
    },
    /// Full-text search over all history, or one joined room's.
    Search {
        query: String,
        room: Option<String>,
        limit: usize,
    },
    /// Show fingerprints and the safety number of a peer.
    Verify { peer: String },
    /// Mark a peer verified; `fingerprint` must be typed out in full.
    Trust {
        peer: String,
        fingerprint: Option<String>,
    },
    /// Mark a peer unverified again.
    Untrust { peer: String },
    /// Offer a file to a peer (the path is the local user's).
    SendFile { peer: String, path: String },
    /// Accept an incoming offer, or resume a failed one, by id prefix.
    AcceptFile(String),
    /// Decline an incoming offer, by id prefix.
    RejectFile(String),
    /// Give up a transfer in either direction, by id prefix.
    CancelFile(String),
    /// List transfers (answered with [`Event::Files`]).
    Files,
    /// Close every link and stop.
    Quit,
    /// Answered with [`Event::Marker`] once every earlier command has
    /// taken effect: a front end that answers some lines itself (help, a
    /// mistake) prints its answer on the marker, so line mode's output
    /// follows the input order.
    Marker(u64),
}

/// Something the shell must do.
#[derive(Debug)]
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
    /// Open an iroh connection to `peer`'s endpoint (ALPN `natter/1`),
    /// looking for it at `reach`, and one bidirectional stream on it;
    /// answer with `Connected` or `ConnectFailed`.
    DialWan {
        link: LinkId,
        peer: IdentityKey,
        reach: crate::wire::Reach,
    },
    /// Write these bytes to the link, then report `Flushed`.
    Send {
        link: LinkId,
        data: Vec<u8>,
    },
    /// Write what is queued (for at most [`CLOSE_FLUSH_MS`]), then close
    /// the socket; report `Closed` once it is gone. Until then it counts
    /// against `max_links`.
    Close {
        link: LinkId,
    },
    /// Close the socket now and discard what is queued (a peer that does
    /// not read gets nothing more); report `Closed` once it is gone.
    Abort {
        link: LinkId,
    },
    /// Read the file at `path` (off the node's thread), hash it for an
    /// offer and keep its tree where the file store finds it by
    /// `transfer`; answer with `Input::FileHashed`.
    HashFile {
        transfer: TransferId,
        path: String,
    },
    /// Check these posts' signatures (off the node's thread); answer with
    /// `Input::SignaturesChecked`. Only when the shell said it has a pool
    /// (`Node::set_check_pool`).
    CheckSignatures {
        ticket: u64,
        posts: Vec<crate::chat::SignedPost>,
    },
    Event(Event),
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
    /// Posts typed since the last drain: where to, and the text.
    posts: Vec<(Target, String)>,
    /// Joined rooms, what linked peers joined, unread counts.
    rooms: RoomBook,
    /// An invitation of an unverified key that was warned about: the same
    /// one again goes ahead.
    pending_invite: Option<(IdentityKey, crate::wire::RoomId)>,
    /// File transfers, both ways.
    files: Files,
    /// Files the user offered that the shell is hashing: for whom, which.
    hashing: std::collections::HashMap<TransferId, (IdentityKey, String)>,
    /// Every known name and trust level, indexed by look-alike skeleton:
    /// what events and commands are decorated and resolved from.
    names: Directory,
    /// Every link, in any stage: the one source of truth for link state.
    conns: Conns,
    /// Links the node closed whose sockets the shell has not reported gone,
    /// and when: they still hold sockets and memory.
    closing: BTreeMap<LinkId, u64>,
    peers: PeerTable,
    manual: Vec<ManualTarget>,
    out: VecDeque<Output>,
    /// Identity bindings our handshakes have verified: a reconnecting peer
    /// costs no second signature check.
    bindings: VerifiedBindings,
    /// Our iroh reach and our WAN contacts'.
    wan: wan::WanBook,
    /// Chat batches waiting for the shell's signature checks.
    checks: checks::Checks,
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
        let discovery = new_discovery(&cfg, &local, &mut rng);
        // Loaded once; kept in step as names and trust change, so no
        // event needs a store query (a failing store starts it empty).
        let mut names = Directory::load(store.peers().unwrap_or_default());
        names.set_local(local.identity_key(), &cfg.nickname);
        let rooms = RoomBook::load(Node::joined_setting(store.as_ref()));
        let wan = wan::WanBook::load(store.get_meta(wan::CONTACTS_SETTING).ok().flatten());
        let mut chat = Chat::with_quota(store, local.identity_key(), cfg.stranger_quota);
        // Replays the invite-only rooms' logs; a store that fails here
        // fails again, visibly, when the rooms are used.
        let _ = chat.set_own_keys(&local);
        // Until the application gives it its own (`set_file_store`).
        let files = Files::new(
            Box::new(MemoryFileStore::new(MemoryDisk::default())),
            cfg.files,
        );
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
            files,
            hashing: std::collections::HashMap::new(),
            posts: Vec::new(),
            rooms,
            pending_invite: None,
            names,
            conns: Conns::default(),
            closing: BTreeMap::new(),
            peers,
            manual: Vec::new(),
            out: VecDeque::new(),
            bindings: VerifiedBindings::default(),
            wan,
            checks: checks::Checks::default(),
            next_link: 1,
            now_ms,
            wall_offset_ms: i128::from(wall_ms) - i128::from(now_ms),
            shutting_down: false,
        };
        node.remember_known_peers();
        node.load_wan_contacts();
        node.remember_private_labels();
        node.report_keyless_rooms();
        node
    }

    /// Where file transfers are kept and files read and written; the
    /// unfinished transfers it holds resume.
    pub fn set_file_store(&mut self, store: Box<dyn FileStore>) {
        self.files = Files::new(store, self.cfg.files);
    }

    pub fn identity(&self) -> &LocalIdentity {
        &self.local
    }

    pub fn nickname(&self) -> &str {
        &self.cfg.nickname
    }

    /// The monotonic time at which the wall clock reads `wall_ms`.
    fn mono_ms(&self, wall_ms: u64) -> u64 {
        u64::try_from(i128::from(wall_ms) - self.wall_offset_ms).unwrap_or(0)
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

    /// A peer's lifecycle state, read from the stage of its link.
    pub fn peer_state(&self, id: &IdentityKey) -> Option<PeerState> {
        self.peers.get(id).map(|p| self.state_of(p))
    }

    /// Identities with an established link.
    pub fn connected(&self) -> Vec<IdentityKey> {
        self.linked_now().linked()
    }

    /// Who is linked, for the chat core: one peer's answer costs a look-up,
    /// not a list of every linked peer. (Where the chat core is borrowed
    /// mutably, the node builds the view from the two fields instead.)
    fn linked_now(&self) -> LinkedNow<'_> {
        LinkedNow {
            peers: &self.peers,
            conns: &self.conns,
        }
    }

    /// The established link of a peer.
    pub fn link_of(&self, id: &IdentityKey) -> Option<LinkId> {
        self.peers
            .get(id)
            .and_then(|p| self.state_of(p).established_link())
    }

    /// Discovery's counters (beacons sent, accepted, rejected by reason),
    /// if discovery is on.
    pub fn discovery_stats(&self) -> Option<&crate::discovery::DiscoveryStats> {
        self.discovery.as_ref().map(Discovery::stats)
    }

    /// Sockets the node closed and the shell has not reported gone.
    pub fn closing_count(&self) -> usize {
        self.closing.len()
    }

    /// Tell the shell to close a link's socket, keeping count until it is
    /// gone; `discard` drops what is queued instead of writing it.
    fn release(&mut self, link: LinkId, discard: bool) {
        self.closing.insert(link, self.now_ms);
        self.out.push_back(if discard {
            Output::Abort { link }
        } else {
            Output::Close { link }
        });
    }

    /// Number of connections in the table, in any state.
    pub fn link_count(&self) -> usize {
        self.conns.len()
    }

    pub fn is_shut_down(&self) -> bool {
        self.shutting_down
    }

    /// How many outputs wait for [`Node::poll_output`] (not counting the
    /// frames that the next drain seals): a shell that handles inputs in
    /// batches ends one here when it grows long.
    pub fn queued_outputs(&self) -> usize {
        self.out.len()
    }

    /// Next action for the shell.
    ///
    /// Frames queued by several inputs in a row are sealed together when the
    /// shell starts draining: small frames then share Noise messages and
    /// writes, which is what makes bursts of small messages cheap.
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some((ticket, posts)) = self.poll_check() {
            return Some(Output::CheckSignatures { ticket, posts });
        }
        if self.out.is_empty() {
            self.flush();
        }
        self.out.pop_front()
    }

    /// A new inbound TCP connection. Returns its id, or `None` if the node is
    /// at its connection limits (the shell then drops the socket).
    ///
    /// Unauthenticated inbound connections are capped in total and per
    /// source; at a cap the new connection is accepted in place of the one
    /// that has come least far (no message 1 before message 1 handled),
    /// oldest first, which is closed. An honest initiator sends message 1
    /// at once and finishes in one round trip, so connections that hang
    /// cannot keep it out however many there are or where they come from.
    pub fn accept(&mut self, now_ms: u64, remote: SocketAddr) -> Option<LinkId> {
        self.accept_from(now_ms, Remote::Lan(remote))
    }

    /// A new inbound iroh connection (section 12) from the endpoint that
    /// iroh authenticated as `peer`; the Noise handshake must authenticate
    /// the same identity or the link is closed. Limits as for
    /// [`Node::accept`], with the endpoint key as the source. `None` also
    /// when `--wan` is off.
    pub fn accept_wan(&mut self, now_ms: u64, peer: IdentityKey) -> Option<LinkId> {
        if !self.cfg.wan {
            return None;
        }
        self.accept_from(now_ms, Remote::Wan(peer))
    }

    fn accept_from(&mut self, now_ms: u64, remote: Remote) -> Option<LinkId> {
        self.now_ms = now_ms;
        if self.shutting_down {
            return None;
        }
        let source = source_of(&remote);
        let from_source = self.unauthenticated_inbound(|r| source_of(r) == source);
        if from_source.len() >= self.cfg.max_handshakes_per_source {
            self.evict_least_advanced(&from_source);
        } else {
            let all = self.unauthenticated_inbound(|_| true);
            if all.len() >= self.cfg.max_handshakes {
                self.evict_least_advanced(&all);
            }
        }
        // Sockets still closing hold resources like live ones.
        self.closing
            .retain(|_, at| now_ms < at.saturating_add(CLOSING_GRACE_MS));
        if self.conns.len() + self.closing.len() >= self.cfg.max_links {
            let all = self.unauthenticated_inbound(|_| true);
            if all.is_empty() {
                return None;
            }
            self.evict_least_advanced(&all);
        }
        let hs = self.handshake_config();
        let conn =
            Connection::inbound(now_ms, remote, &self.local, &hs, self.cfg.link_config()).ok()?;
        let id = self.alloc_link();
        self.conns.insert(id, conn);
        Some(id)
    }

    /// Accepted connections not yet authenticated whose remote matches.
    fn unauthenticated_inbound(&mut self, keep: impl Fn(&Remote) -> bool) -> Vec<LinkId> {
        self.conns
            .unauthenticated()
            .filter(|(_, c)| keep(&c.remote()))
            .map(|(l, _)| l)
            .collect()
    }

    /// Close the connection among `links` that has come least far, the
    /// oldest of those.
    fn evict_least_advanced(&mut self, links: &[LinkId]) {
        let victim = links
            .iter()
            .filter_map(|l| self.conns.get(l).map(|c| (c.progress(), c.opened_ms(), *l)))
            .min();
        if let Some((_, _, link)) = victim {
            self.close(link, CloseCause::Displaced, None);
        }
    }

    /// Feed one input.
    pub fn handle(&mut self, now_ms: u64, input: Input) {
        self.now_ms = now_ms;
        match input {
            Input::Datagram { from, data } => self.on_datagram(from, &data),
            Input::Connected { link } => self.on_connected(link),
            Input::ConnectFailed { link, error } => {
                self.on_gone(link, Arc::new(CloseCause::ConnectFailed(error)))
            }
            Input::Received { link, data } => self.on_received(link, &data),
            Input::Flushed { link, bytes } => {
                if let Some(c) = self.conns.get_mut(&link) {
                    c.on_flushed(now_ms, bytes);
                }
                self.note_backlog(link);
            }
            Input::Closed { link, error } => {
                if self.closing.remove(&link).is_some() {
                    return;
                }
                let cause = error.map_or(CloseCause::ClosedByPeer, CloseCause::Socket);
                self.on_gone(link, Arc::new(cause))
            }
            Input::SignaturesChecked { ticket, valid } => self.on_signatures_checked(ticket, valid),
            Input::FileHashed { transfer, result } => self.on_file_hashed(transfer, result),
            Input::OwnReach(reach) => self.on_own_reach(reach),
            Input::Path { link, path } => self.on_path(link, path),
            Input::Command(cmd) => {
                // Commands take effect in the order given: whatever reads
                // or reports state sees every post typed before it. Posts
                // typed back to back still share one commit.
                if !matches!(cmd, Command::Say(_) | Command::Msg { .. }) {
                    self.flush_posts();
                }
                self.on_command(cmd)
            }
        }
    }

    /// The earliest time at which [`Node::handle_timeout`] has work:
    /// discovery's next beacon or expiry, every connection's timers, and
    /// every scheduled dial.
    pub fn poll_timeout(&self) -> Option<u64> {
        // A node that quit runs no timers (`handle_timeout` does nothing).
        if self.shutting_down {
            return None;
        }
        let discovery = self.discovery.as_ref().and_then(|d| d.poll_timeout());
        let links = self.conns.next_deadline();
        let manual = self.manual.iter().filter_map(|m| m.next_dial_ms);
        let chat = self.chat.poll_timeout().map(|wall| self.mono_ms(wall));
        discovery
            .into_iter()
            .chain(links)
            .chain(self.peers.next_dial())
            .chain(manual)
            .chain(chat)
            .min()
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
        self.chat_timeout();
    }

    /// Queue a frame on every established link (our nickname, rooms or
    /// reach changed).
    fn queue_everywhere(&mut self, frame: Frame) {
        for c in self.conns.values_mut().filter(|c| c.is_established()) {
            c.queue(frame.clone());
        }
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

    // ---- helpers --------------------------------------------------------

    /// A peer's state: the stage of the link standing for it, or idle.
    fn state_of(&self, p: &Peer) -> PeerState {
        self.linked_now().state_of(p)
    }

    fn handshake_config(&self) -> HandshakeConfig {
        HandshakeConfig::new(self.cfg.nickname.clone(), self.cfg.listen_port)
            .with_bindings(self.bindings.clone())
    }

    fn new_backoff(&self) -> Backoff {
        self.peers.new_backoff()
    }

    fn alloc_link(&mut self) -> LinkId {
        let id = self.next_link;
        self.next_link += 1;
        id
    }

    fn error(&mut self, e: NodeError) {
        self.emit(Event::Error { error: e.into() });
    }

    fn emit(&mut self, ev: Event) {
        self.out.push_back(Output::Event(ev));
    }
}

/// Discovery, if configured.
fn new_discovery(cfg: &NodeConfig, local: &LocalIdentity, rng: &mut Rng) -> Option<Discovery> {
    let dc = cfg.discovery.clone()?;
    // The instance is public; take it from the OS so it reveals nothing
    // about the jitter generator.
    let mut b = [0u8; 8];
    let instance = match crate::identity::random_bytes(&mut b) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => rng.next_u64(),
    };
    Some(Discovery::new(
        dc,
        local,
        cfg.nickname.clone(),
        cfg.listen_port,
        instance,
        Rng::new(rng.next_u64()),
    ))
}

/// The peers with an established link, as the chat core asks about them
/// ([`Linked`]): borrowed from the node's peer table and links, so the node
/// can hand it to its chat core while that is borrowed mutably.
struct LinkedNow<'a> {
    peers: &'a PeerTable,
    conns: &'a Conns,
}

impl LinkedNow<'_> {
    /// A peer's state: the stage of the link standing for it, or idle.
    fn state_of(&self, p: &Peer) -> PeerState {
        p.state(|l| self.conns.get(&l).map(Connection::stage))
    }

    fn established(&self, p: &Peer) -> bool {
        self.state_of(p).established_link().is_some()
    }
}

impl Linked for LinkedNow<'_> {
    fn is_linked(&self, id: &IdentityKey) -> bool {
        self.peers.get(id).is_some_and(|p| self.established(p))
    }

    fn linked(&self) -> Vec<IdentityKey> {
        self.peers
            .iter()
            .filter(|p| self.established(p))
            .map(|p| p.identity())
            .collect()
    }
}

mod chat;
mod checks;
mod commands;
mod conns;
mod dial;
mod discover;
mod error;
mod files;
mod lifecycle;
mod links;
mod rooms;
mod wan;
#[cfg(test)]
mod wan_tests;
use rooms::RoomBook;
pub use rooms::WHO_RECENT_MS;
pub use wan::{MAX_WAN_CONTACTS, REACH_SAVE_INTERVAL_MS, WAN_SETTING};
#[cfg(test)]
mod check_tests;
#[cfg(test)]
mod room_tests;
#[cfg(test)]
mod scale_tests;
#[cfg(test)]
mod tests;
mod view;

pub use checks::MAX_PARKED_POSTS;
pub use error::{CloseCause, NodeError};

/// The source an accepted connection counts against: its IPv4 address, or
/// the /64 of an IPv6 one (a host usually has a whole /64).
fn source_of(remote: &Remote) -> Remote {
    let ip = match remote {
        Remote::Wan(_) => return *remote,
        Remote::Lan(a) => a.ip(),
    };
    let source = match ip {
        std::net::IpAddr::V4(v4) => std::net::IpAddr::V4(v4),
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            std::net::IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    };
    Remote::Lan(SocketAddr::new(source, 0))
}
