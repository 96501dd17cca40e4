//! The `node` target: the whole sans-IO node driven by a script of shell
//! inputs, with the fuzzer able to play genuine peers.
//!
//! The input is a sequence of steps, each an op byte (taken modulo
//! [`op::COUNT`]) and its arguments; see [`op`]. Strings are a length byte
//! and bytes (invalid UTF-8 replaced), "link" and "dial" arguments pick
//! among the links the driver knows to be open (255 names a link that never
//! existed). A genuine peer ([`op::PEER_DIALS_IN`], or [`op::CONNECTED`] to
//! a dial with a party byte below 3) runs a real handshake as Alice, Bob or
//! Carol against the node, after which [`op::FRAMES`] seals the fuzzer's
//! frames or plaintext under that session, so they reach the chat core.
//!
//! Checked after every step, with every output drained:
//! - no panic anywhere;
//! - `Send`, `Close` only name links that are open (dialled or accepted,
//!   and neither closed by the node nor reported closed by the shell);
//!   `Dial` names a fresh link id;
//! - the node's link table is exactly the open links the driver knows;
//!   an accepted link never takes it past `max_links`;
//! - everything the node sends to a genuine peer opens and decodes there;
//! - no batch waits unless the pool holds a check (after `Quit`, none);
//! - after `Quit`, no link is left.
//!
//! The node has a signature-check pool (`Node::set_check_pool`) played by
//! the driver: it holds every `CheckSignatures` until [`op::CHECKED`]
//! answers one, in any order, truthfully, short, twice or under a ticket
//! never asked for.

use super::{alice, identity, local, peer_party, source, Party, Reader, LOCAL, WALL_MS};
use crate::chat::{sign_public, SignedPost};
use crate::handshake::{Initiator, Responder, ResponderAwaitingMsg3};
use crate::node::{Command, Input, Node, NodeConfig, Output};
use crate::peer::LinkId;
use crate::rng::Rng;
use crate::transport::Transport;
use crate::wire::beacon::encode_beacon;
use crate::wire::frame::SyncRequest;
use crate::wire::framing::write_framed;
use crate::wire::limits::{MAX_HANDSHAKE_MSG_LEN, MAX_NOISE_MSG_LEN, PROTOCOL_VERSION};
use crate::wire::{BeaconBody, Close, CloseReason, Deframer, DirectMessage, Frame, MessageId};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Step op codes (the op byte modulo [`op::COUNT`]) and their arguments.
pub mod op {
    /// `addr`: accept an inbound connection nobody speaks on yet.
    pub const ACCEPT: u8 = 0;
    /// `party addr`: accept, and a genuine peer starts the handshake.
    pub const PEER_DIALS_IN: u8 = 1;
    /// `link piece`: raw bytes on a link.
    pub const RAW: u8 = 2;
    /// `peer split kind …`: a genuine peer (chosen among links with one)
    /// seals a message; see [`super::frame`]. `split` > 0 delivers it in two
    /// parts, the first `split` bytes long.
    pub const FRAMES: u8 = 3;
    /// `link`: the shell reports the socket closed.
    pub const CLOSED: u8 = 4;
    /// `dial party`: a dial connected; party < 3 answers it as that peer.
    pub const CONNECTED: u8 = 5;
    /// `dial`: a dial failed.
    pub const CONNECT_FAILED: u8 = 6;
    /// `src piece`: a raw datagram.
    pub const DATAGRAM: u8 = 7;
    /// `party src port_hi port_lo instance seq`: a genuine signed beacon.
    pub const BEACON: u8 = 8;
    /// `link hi lo`: bytes written; 0xffff means all that is queued.
    pub const FLUSHED: u8 = 9;
    /// `kind …`: a user command; see [`super::cmd`].
    pub const COMMAND: u8 = 10;
    /// `dt`: time advances dt² ms, then timers run; 255 jumps to the
    /// node's next deadline.
    pub const WAIT: u8 = 11;
    /// `pick how`: the pool answers the check `pick` (among those held);
    /// how 0 truthfully, 1 without the last verdict, 2 under a ticket never
    /// asked for (the check stays held), 3 truthfully and then again.
    pub const CHECKED: u8 = 12;
    pub const COUNT: u8 = 13;
}

/// [`op::FRAMES`] kinds (modulo [`frame::COUNT`]) and their arguments.
pub mod frame {
    /// `piece`: arbitrary plaintext.
    pub const PLAINTEXT: u8 = 0;
    /// `id age piece`: a private message, `age - 16` minutes old.
    pub const DIRECT: u8 = 1;
    /// `author id age piece`: a public message signed by a party.
    pub const PUBLIC: u8 = 2;
    /// Ack every message the node sent this peer so far.
    pub const ACK_RECEIVED: u8 = 3;
    /// `id`: ack one message id.
    pub const ACK: u8 = 4;
    /// `back`: sync request for the last back² minutes (0: everything).
    pub const SYNC_REQUEST: u8 = 5;
    /// `piece`: a nickname.
    pub const NICK: u8 = 6;
    /// `n`: ping.
    pub const PING: u8 = 7;
    /// `reason piece`: close.
    pub const CLOSE: u8 = 8;
    /// `piece`: opaque data.
    pub const DATA: u8 = 9;
    /// `author room id age piece`: a room post signed by a party; room
    /// byte 0–3 #lobby, 4–7 #ops, 8 signed for #ops but sent as #dev
    /// (a moved post), otherwise a room named by a piece.
    pub const ROOM_POST: u8 = 10;
    /// `count` then that many `room` bytes as above: a `Rooms` frame.
    pub const ROOMS: u8 = 11;
    /// `signer seq change member epoch`: an entry of Alice's room `+team`
    /// (signed by the party `signer`: a forgery unless it is Alice);
    /// change 0 create, 1 invite `member`, otherwise remove `member`.
    pub const ROOM_CONTROL: u8 = 12;
    /// `author epoch id piece`: a post to `+team` under its fixed key.
    pub const SEALED_POST: u8 = 13;
    pub const COUNT: u8 = 14;
}

/// [`op::COMMAND`] kinds (modulo [`cmd::COUNT`]) and their arguments. A
/// `name` is a byte: 0–2 a party's nickname, 3–5 its fingerprint prefix,
/// 6–8 `nick#prefix`, otherwise a piece follows.
pub mod cmd {
    /// `piece`.
    pub const SAY: u8 = 0;
    /// `name piece`.
    pub const MSG: u8 = 1;
    pub const PEERS: u8 = 2;
    /// `piece`.
    pub const NICK: u8 = 3;
    /// `has_peer [name] limit`.
    pub const HISTORY: u8 = 4;
    /// `piece limit`.
    pub const SEARCH: u8 = 5;
    /// `name`.
    pub const VERIFY: u8 = 6;
    /// `name fp`: fp 0 none, 1 the full fingerprint of the name's party
    /// byte, otherwise a piece follows.
    pub const TRUST: u8 = 7;
    /// `name`.
    pub const UNTRUST: u8 = 8;
    /// `port_hi port_lo`: connect to 127.0.0.1:port.
    pub const CONNECT: u8 = 9;
    /// `party piece`.
    pub const SEND_DATA: u8 = 10;
    pub const QUIT: u8 = 11;
    /// `room` (see `read_room`).
    pub const JOIN: u8 = 12;
    /// `room`.
    pub const LEAVE: u8 = 13;
    /// `room piece`.
    pub const POST: u8 = 14;
    pub const ROOMS: u8 = 15;
    /// `room`.
    pub const WHO: u8 = 16;
    /// `room`.
    pub const READ_ROOM: u8 = 17;
    /// `piece`: a message id prefix.
    pub const INFO: u8 = 18;
    /// `room`: found an invite-only room.
    pub const CREATE: u8 = 19;
    /// `name room`: invite (twice for an unverified key).
    pub const INVITE: u8 = 20;
    /// `name room`.
    pub const KICK: u8 = 21;
    pub const COUNT: u8 = 22;
}

/// Config of the node under test: small limits, so that they are reached.
pub fn config() -> NodeConfig {
    NodeConfig {
        nickname: "natter".into(),
        listen_port: 47474,
        beacon_targets: vec!["192.0.2.1:47474".parse().expect("valid address")],
        max_links: 8,
        max_handshakes: 4,
        max_queued_bytes: 8 * 1024,
        ..NodeConfig::default()
    }
}

pub fn node(data: &[u8]) {
    let mut d = Driver::new();
    let mut input = Reader(data);
    while !input.is_empty() {
        d.step(&mut input);
        d.drain();
        d.check();
    }
}

/// The node and what the shell knows about its links.
struct Driver {
    node: Node,
    max_links: usize,
    now: u64,
    /// Open links: dialled (and answered or not) or accepted.
    links: BTreeMap<LinkId, LinkInfo>,
    /// Highest link id the node ever handed out.
    last_id: LinkId,
    /// Checks the node asked for and the pool has not answered.
    checks: Vec<(u64, Vec<SignedPost>)>,
}

#[derive(Default)]
struct LinkInfo {
    /// A dial not yet answered with `Connected` or `ConnectFailed`.
    dialling: bool,
    /// Bytes the node queued and the shell has not reported written.
    unflushed: usize,
    peer: Option<PeerEnd>,
}

impl Driver {
    fn new() -> Driver {
        let cfg = config();
        let max_links = cfg.max_links;
        let store = Box::new(crate::chat::MemoryStore::new());
        let mut node = Node::new(identity(LOCAL), cfg, store, Rng::new(1), 0, WALL_MS);
        node.set_check_pool(true);
        Driver {
            node,
            max_links,
            now: 0,
            links: BTreeMap::new(),
            last_id: 0,
            checks: Vec::new(),
        }
    }

    fn handle(&mut self, input: Input) {
        self.node.handle(self.now, input);
    }

    /// An open link, by a byte of the input; 255 names one never created.
    fn link(&self, b: u8, filter: impl Fn(&LinkInfo) -> bool) -> LinkId {
        let ids: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, l)| filter(l))
            .map(|(id, _)| *id)
            .collect();
        if b == 255 || ids.is_empty() {
            return 1_000_000;
        }
        ids[usize::from(b) % ids.len()]
    }

    fn step(&mut self, input: &mut Reader) {
        match input.byte() % op::COUNT {
            op::ACCEPT => {
                let addr = source(input.byte());
                self.accept(addr);
            }
            op::PEER_DIALS_IN => {
                let party = peer_party(input.byte());
                let addr = source(input.byte());
                if let Some(link) = self.accept(addr) {
                    let (peer, msg1) = PeerEnd::dial(party);
                    self.links.get_mut(&link).expect("just accepted").peer = Some(peer);
                    self.handle(Input::Received { link, data: msg1 });
                }
            }
            op::RAW => {
                let link = self.link(input.byte(), |_| true);
                let data = input.piece().to_vec();
                self.handle(Input::Received { link, data });
            }
            op::FRAMES => {
                let link = self.link(input.byte(), |l| l.peer.as_ref().is_some_and(PeerEnd::open));
                let split = usize::from(input.byte());
                let now = self.now;
                let Some(peer) = self.links.get_mut(&link).and_then(|l| l.peer.as_mut()) else {
                    // Keep the input aligned: read the frame anyway.
                    let _ = read_plaintext(input, now, &[]);
                    return;
                };
                let Some(wire) = peer.seal(input, now) else {
                    return;
                };
                if split > 0 && split < wire.len() {
                    let (a, b) = wire.split_at(split);
                    self.handle(Input::Received {
                        link,
                        data: a.to_vec(),
                    });
                    self.drain();
                    self.handle(Input::Received {
                        link,
                        data: b.to_vec(),
                    });
                } else {
                    self.handle(Input::Received { link, data: wire });
                }
            }
            op::CLOSED => {
                let link = self.link(input.byte(), |_| true);
                self.links.remove(&link);
                self.handle(Input::Closed { link, error: None });
            }
            op::CONNECTED => {
                let link = self.link(input.byte(), |l| l.dialling);
                let party = input.byte();
                if let Some(l) = self.links.get_mut(&link) {
                    l.dialling = false;
                    if party < 3 {
                        l.peer = Some(PeerEnd::answer(peer_party(party)));
                    }
                }
                self.handle(Input::Connected { link });
            }
            op::CONNECT_FAILED => {
                let link = self.link(input.byte(), |l| l.dialling);
                self.links.remove(&link);
                let error = "connection refused".into();
                self.handle(Input::ConnectFailed { link, error });
            }
            op::DATAGRAM => {
                let from = source(input.byte());
                let data = input.piece().to_vec();
                self.handle(Input::Datagram { from, data });
            }
            op::BEACON => {
                let party = peer_party(input.byte());
                let from = source(input.byte());
                let body = BeaconBody {
                    version: PROTOCOL_VERSION,
                    keys: *party.id.bound_keys(),
                    tcp_port: input.u16(),
                    nickname: party.cfg.nickname.clone(),
                    instance: u64::from(input.byte()),
                    seq: u64::from(input.byte()),
                    timestamp_ms: WALL_MS + self.now,
                };
                let data = encode_beacon(&body, &party.id).expect("fixed keys encode");
                self.handle(Input::Datagram { from, data });
            }
            op::FLUSHED => {
                let link = self.link(input.byte(), |_| true);
                let bytes = match input.u16() {
                    0xffff => self.links.get(&link).map_or(0, |l| l.unflushed),
                    n => usize::from(n),
                };
                if let Some(l) = self.links.get_mut(&link) {
                    l.unflushed = l.unflushed.saturating_sub(bytes);
                }
                self.handle(Input::Flushed { link, bytes });
            }
            op::COMMAND => {
                let command = read_command(input);
                let quit = command == Command::Quit;
                self.handle(Input::Command(command));
                if quit {
                    self.drain();
                    assert_eq!(self.node.link_count(), 0, "links left after quit");
                    assert!(self.node.is_shut_down());
                    assert_eq!(self.node.parked_batches(), 0, "batches left after quit");
                }
            }
            op::CHECKED => {
                let pick = usize::from(input.byte());
                let how = input.byte() % 4;
                if self.checks.is_empty() {
                    return;
                }
                let (ticket, posts) = self.checks.remove(pick % self.checks.len());
                let mut valid: Vec<bool> = posts.iter().map(|p| p.verify().is_ok()).collect();
                match how {
                    1 => {
                        valid.pop();
                    }
                    2 => {
                        let ticket = ticket + 1_000_000;
                        self.handle(Input::SignaturesChecked { ticket, valid });
                        self.checks.push((ticket - 1_000_000, posts));
                        return;
                    }
                    _ => {}
                }
                if how == 3 {
                    let again = valid.clone();
                    self.handle(Input::SignaturesChecked { ticket, valid });
                    self.drain();
                    self.handle(Input::SignaturesChecked {
                        ticket,
                        valid: again,
                    });
                } else {
                    self.handle(Input::SignaturesChecked { ticket, valid });
                }
            }
            _ => {
                let dt = input.byte();
                self.now = match self.node.poll_timeout() {
                    Some(t) if dt == 255 => t.max(self.now),
                    _ => self.now + u64::from(dt).pow(2),
                };
                self.node.handle_timeout(self.now);
            }
        }
    }

    fn accept(&mut self, addr: SocketAddr) -> Option<LinkId> {
        let link = self.node.accept(self.now, addr)?;
        // Checked after the accept: on a full table the node makes room by
        // displacing the least advanced unauthenticated link (so stalled
        // handshakes cannot lock honest peers out), then accepts.
        assert!(
            self.node.link_count() <= self.max_links,
            "accepted past max_links"
        );
        self.new_link(link);
        self.links.insert(link, LinkInfo::default());
        Some(link)
    }

    fn new_link(&mut self, link: LinkId) {
        assert!(link > self.last_id, "link id {link} reused");
        self.last_id = link;
    }

    /// Drain every output; bytes for a genuine peer reach it, and its
    /// handshake answers go straight back to the node.
    fn drain(&mut self) {
        loop {
            let mut replies = Vec::new();
            while let Some(out) = self.node.poll_output() {
                match out {
                    Output::Send { link, data } => {
                        let l = self.links.get_mut(&link);
                        let l = l.unwrap_or_else(|| panic!("Send on link {link}, not open"));
                        assert!(!l.dialling, "Send on link {link} before it connected");
                        l.unflushed += data.len();
                        if let Some(peer) = l.peer.as_mut() {
                            let reply = peer.receive(&data);
                            if !reply.is_empty() {
                                replies.push((link, reply));
                            }
                        }
                    }
                    Output::Dial { link, .. } | Output::DialWan { link, .. } => {
                        self.new_link(link);
                        let dialling = true;
                        let info = LinkInfo {
                            dialling,
                            ..LinkInfo::default()
                        };
                        self.links.insert(link, info);
                    }
                    Output::CheckSignatures { ticket, posts } => {
                        assert!(!posts.is_empty(), "a check of nothing");
                        assert!(
                            self.checks.iter().all(|(t, _)| *t != ticket),
                            "ticket {ticket} asked for twice"
                        );
                        self.checks.push((ticket, posts));
                    }
                    // Nothing to hash here: the file cannot be read.
                    Output::HashFile { transfer, .. } => {
                        let now = self.now;
                        let result = Err("not in the fuzz target".into());
                        self.node
                            .handle(now, Input::FileHashed { transfer, result });
                    }
                    Output::Close { link } | Output::Abort { link } => {
                        let l = self.links.remove(&link);
                        assert!(l.is_some(), "Close of link {link}, not open");
                        // The socket is gone at once.
                        let now = self.now;
                        self.node.handle(now, Input::Closed { link, error: None });
                    }
                    Output::Datagram { data, .. } => {
                        let body = crate::wire::decode_beacon(&data).expect("own beacon");
                        assert_eq!(body.keys.identity, local().id.identity_key());
                    }
                    Output::Event(_) => {}
                }
            }
            if replies.is_empty() {
                return;
            }
            for (link, data) in replies {
                if self.links.contains_key(&link) {
                    self.handle(Input::Received { link, data });
                }
            }
        }
    }

    fn check(&self) {
        // A batch waits only behind a check the pool still holds.
        if self.checks.is_empty() {
            assert_eq!(self.node.parked_batches(), 0, "a batch waits for nothing");
        }
        assert_eq!(
            self.node.link_count(),
            self.links.len(),
            "the node's link table differs from the links the shell has open"
        );
        for id in self.node.connected() {
            let link = self.node.link_of(&id).expect("connected peers have a link");
            assert!(self.links.contains_key(&link));
        }
    }
}

/// A genuine peer at the far end of a link.
struct PeerEnd {
    phase: Phase,
    deframer: Deframer,
    /// Ids of the chat messages the node sent it.
    received: Vec<MessageId>,
}

enum Phase {
    AwaitMsg1(Responder),
    AwaitMsg2(Initiator),
    AwaitMsg3(ResponderAwaitingMsg3),
    Open(Box<Transport>),
    Failed,
}

impl PeerEnd {
    fn new(phase: Phase) -> PeerEnd {
        PeerEnd {
            phase,
            deframer: Deframer::new(MAX_HANDSHAKE_MSG_LEN),
            received: Vec::new(),
        }
    }

    /// The peer dials the node: it and its message 1, framed.
    fn dial(party: &'static Party) -> (PeerEnd, Vec<u8>) {
        let expected = Some(local().id.identity_key());
        let (init, msg1) = Initiator::start(&party.id, &party.cfg, expected).expect("valid");
        let mut wire = Vec::new();
        write_framed(&msg1, &mut wire);
        (PeerEnd::new(Phase::AwaitMsg2(init)), wire)
    }

    /// The peer answers a dial of the node's.
    fn answer(party: &'static Party) -> PeerEnd {
        let resp = Responder::new(&party.id, &party.cfg).expect("valid");
        PeerEnd::new(Phase::AwaitMsg1(resp))
    }

    fn open(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// Bytes from the node; returns the handshake reply, if any.
    fn receive(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.deframer.extend(data);
        loop {
            let msg = match self.deframer.next_message() {
                Ok(Some(msg)) => msg.to_vec(),
                Ok(None) => return out,
                Err(e) => {
                    assert!(!self.open(), "the node sent bad framing: {e}");
                    self.phase = Phase::Failed;
                    return out;
                }
            };
            self.phase = match std::mem::replace(&mut self.phase, Phase::Failed) {
                // The node may be answering bytes the fuzzer sent, not ours.
                Phase::AwaitMsg1(r) => match r.read_msg1(&msg) {
                    Ok((next, msg2)) => {
                        write_framed(&msg2, &mut out);
                        Phase::AwaitMsg3(next)
                    }
                    Err(_) => Phase::Failed,
                },
                Phase::AwaitMsg2(i) => match i.read_msg2(&msg) {
                    Ok((est, msg3)) => {
                        write_framed(&msg3, &mut out);
                        self.deframer.set_max_len(MAX_NOISE_MSG_LEN);
                        Phase::Open(Box::new(est.transport))
                    }
                    Err(_) => Phase::Failed,
                },
                Phase::AwaitMsg3(r) => match r.read_msg3(&msg) {
                    Ok(est) => {
                        self.deframer.set_max_len(MAX_NOISE_MSG_LEN);
                        Phase::Open(Box::new(est.transport))
                    }
                    Err(_) => Phase::Failed,
                },
                Phase::Open(mut t) => {
                    let frames = t.open(&msg);
                    let frames = frames.expect("what the node seals opens at its peer");
                    for f in frames {
                        match f {
                            Frame::Public(m) => self.received.push(m.id),
                            Frame::RoomPost(p) => self.received.push(p.id),
                            Frame::SealedPost(p) => self.received.push(p.id),
                            Frame::Direct(m) => self.received.push(m.id),
                            _ => {}
                        }
                    }
                    Phase::Open(t)
                }
                Phase::Failed => Phase::Failed,
            };
        }
    }

    /// Seal the frame or plaintext described by the input.
    fn seal(&mut self, input: &mut Reader, now: u64) -> Option<Vec<u8>> {
        let plain = read_plaintext(input, now, &self.received)?;
        let Phase::Open(t) = &mut self.phase else {
            return None;
        };
        let mut wire = Vec::new();
        t.seal_plaintext(&plain, &mut wire).ok()?;
        Some(wire)
    }
}

/// The key of `+team` in every epoch of the fuzzed room.
const FUZZ_ROOM_KEY: [u8; 32] = [9; 32];

/// A party, or the node under test itself (so it can be invited).
fn peer_party_or_local(b: u8) -> &'static Party {
    if b % 4 == 3 {
        local()
    } else {
        peer_party(b)
    }
}

fn fuzz_founding() -> crate::wire::RoomFounding {
    crate::wire::RoomFounding {
        name: "team".into(),
        founder: alice().id.identity_key(),
        created_ms: WALL_MS,
        nonce: [0; 16],
    }
}

/// An entry of Alice's room, signed by `signer`, with envelopes that open.
fn fuzz_control(
    signer: &Party,
    seq: u32,
    change: u8,
    member: &Party,
    epoch: u32,
) -> crate::wire::RoomControl {
    use crate::chat::private::{private_room_id, sign_control};
    use crate::chat::room_keys::seal_key_with_ephemeral;
    use crate::wire::RoomChange;
    let founding = fuzz_founding();
    let room = private_room_id(&founding);
    let seal = |to: &Party, epoch| {
        seal_key_with_ephemeral(&[7; 32], &FUZZ_ROOM_KEY, &room, epoch, to.id.bound_keys())
            .expect("fixed keys are not of low order")
    };
    let change = match change % 3 {
        0 => RoomChange::Create {
            envelope: seal(alice(), 0),
        },
        1 => RoomChange::Invite {
            member: *member.id.bound_keys(),
            envelope: seal(member, epoch),
        },
        _ => RoomChange::Remove {
            member: member.id.identity_key(),
            envelopes: [alice(), local()]
                .iter()
                .map(|p| (p.id.identity_key(), seal(p, epoch)))
                .collect(),
        },
    };
    sign_control(&signer.id, founding, seq, epoch, WALL_MS, change)
}

/// A post to Alice's room by `author`, under the room's fixed key.
fn fuzz_sealed(
    author: &Party,
    epoch: u32,
    id: MessageId,
    ts: u64,
    text: &str,
) -> crate::wire::SealedPost {
    use crate::chat::private::private_room_id;
    use crate::chat::room_keys::encrypt_post_with_nonce;
    let room = private_room_id(&fuzz_founding());
    let who = author.id.identity_key();
    let ciphertext =
        encrypt_post_with_nonce(&[3; 24], &FUZZ_ROOM_KEY, &room, epoch, &id, &who, ts, text)
            .unwrap_or_default();
    let mut p = crate::wire::SealedPost {
        room,
        id,
        author: who,
        timestamp_ms: ts,
        epoch,
        nonce: [3; 24],
        ciphertext,
        signature: crate::identity::SignatureBytes([0; 64]),
    };
    p.signature = author.id.sign(
        crate::identity::domain::SEALED_POST,
        &crate::chat::rooms::signed_sealed_bytes(&p),
    );
    p
}

/// A room name for a frame: a few real ones, or any text (which the frame
/// checks may refuse).
fn fuzz_room_name(b: u8, input: &mut Reader) -> String {
    match b {
        0..=3 => "lobby".into(),
        4..=8 => "ops".into(),
        _ => String::from_utf8_lossy(input.piece()).into_owned(),
    }
}

/// The plaintext of an [`op::FRAMES`] step (the encoding of one frame, or
/// arbitrary bytes).
fn read_plaintext(input: &mut Reader, now: u64, received: &[MessageId]) -> Option<Vec<u8>> {
    let text = |input: &mut Reader| String::from_utf8_lossy(input.piece()).into_owned();
    let minutes_ago = |b: u8| (WALL_MS + now).saturating_add_signed((16 - i64::from(b)) * 60_000);
    let f = match input.byte() % frame::COUNT {
        frame::PLAINTEXT => return Some(input.piece().to_vec()),
        frame::DIRECT => Frame::Direct(DirectMessage {
            id: [input.byte(); 16],
            timestamp_ms: minutes_ago(input.byte()),
            text: text(input),
        }),
        frame::PUBLIC => {
            let author = peer_party(input.byte());
            let id = [input.byte(); 16];
            let ts = minutes_ago(input.byte());
            Frame::Public(Box::new(sign_public(&author.id, id, ts, text(input))))
        }
        frame::ACK_RECEIVED if received.is_empty() => return None,
        frame::ACK_RECEIVED => Frame::Ack(received.iter().rev().take(1024).copied().collect()),
        frame::ACK => Frame::Ack(vec![[input.byte(); 16]]),
        frame::SYNC_REQUEST => {
            let back = u64::from(input.byte()).pow(2) * 60_000;
            let since_ms = if back == 0 { 0 } else { (WALL_MS + now) - back };
            Frame::SyncRequest(SyncRequest { since_ms })
        }
        frame::ROOM_POST => {
            let author = peer_party(input.byte());
            let which = input.byte();
            let name = fuzz_room_name(which, input);
            let id = [input.byte(); 16];
            let ts = minutes_ago(input.byte());
            let room = crate::chat::open_room_id(if which == 8 { "ops" } else { &name });
            let mut post = crate::chat::sign_room_post(&author.id, room, id, ts, text(input));
            if which == 8 {
                post.room = crate::chat::open_room_id("dev");
            }
            Frame::RoomPost(Box::new(post))
        }
        frame::ROOMS => {
            let n = input.byte() % 70;
            Frame::Rooms(
                (0..n)
                    .map(|_| {
                        let b = input.byte();
                        fuzz_room_name(b, input)
                    })
                    .collect(),
            )
        }
        frame::ROOM_CONTROL => {
            let signer = peer_party_or_local(input.byte());
            let seq = u32::from(input.byte() % 8);
            let change = input.byte();
            let member = peer_party_or_local(input.byte());
            let epoch = u32::from(input.byte() % 4);
            Frame::RoomControl(Box::new(fuzz_control(signer, seq, change, member, epoch)))
        }
        frame::SEALED_POST => {
            let author = peer_party_or_local(input.byte());
            let epoch = u32::from(input.byte() % 4);
            let id = [input.byte(); 16];
            let body = text(input);
            Frame::SealedPost(Box::new(fuzz_sealed(
                author,
                epoch,
                id,
                WALL_MS + now,
                &body,
            )))
        }
        frame::NICK => Frame::Nick(text(input)),
        frame::PING => Frame::Ping(u64::from(input.byte())),
        frame::CLOSE => {
            let reason = match input.byte() % 7 {
                0 => CloseReason::Shutdown,
                1 => CloseReason::DuplicateLink,
                2 => CloseReason::ProtocolError,
                3 => CloseReason::TooSlow,
                4 => CloseReason::Timeout,
                5 => CloseReason::WrongIdentity,
                _ => CloseReason::Busy,
            };
            Frame::Close(Close {
                reason,
                detail: text(input),
            })
        }
        _ => Frame::Data(input.piece().to_vec()),
    };
    Some(crate::wire::codec::encode(&f))
}

/// A peer name: a party's nickname, fingerprint prefix or both, or text.
fn read_name(input: &mut Reader) -> String {
    let b = input.byte();
    let party = peer_party(b);
    let fp = || party.id.identity_key().fingerprint().as_str()[..6].to_owned();
    match b {
        0..=2 => party.cfg.nickname.clone(),
        3..=5 => fp(),
        6..=8 => format!("{}#{}", party.cfg.nickname, fp()),
        _ => String::from_utf8_lossy(input.piece()).into_owned(),
    }
}

/// A room name as a user might type it: a few real ones, or anything.
fn read_room(input: &mut Reader) -> String {
    match input.byte() {
        0..=3 => "lobby".into(),
        4..=7 => "#ops".into(),
        8..=9 => "#Dev".into(),
        _ => String::from_utf8_lossy(input.piece()).into_owned(),
    }
}

fn read_command(input: &mut Reader) -> Command {
    let text = |input: &mut Reader| String::from_utf8_lossy(input.piece()).into_owned();
    match input.byte() % cmd::COUNT {
        cmd::SAY => Command::Say(text(input)),
        cmd::MSG => Command::Msg {
            peer: read_name(input),
            text: text(input),
        },
        cmd::PEERS => Command::Peers,
        cmd::NICK => Command::Nick(text(input)),
        cmd::HISTORY => {
            let b = input.byte();
            Command::History {
                peer: (b & 1 == 1).then(|| read_name(input)),
                room: (b & 2 == 2).then(|| read_room(input)),
                limit: usize::from(input.byte()),
            }
        }
        cmd::SEARCH => Command::Search {
            query: text(input),
            room: (input.byte() & 1 == 1).then(|| read_room(input)),
            limit: usize::from(input.byte()),
        },
        cmd::JOIN => Command::Join(read_room(input)),
        cmd::LEAVE => Command::Leave(read_room(input)),
        cmd::POST => Command::Post {
            room: read_room(input),
            text: text(input),
        },
        cmd::ROOMS => Command::Rooms,
        cmd::WHO => Command::Who(read_room(input)),
        cmd::READ_ROOM => Command::ReadRoom(read_room(input)),
        cmd::INFO => Command::Info(text(input)),
        cmd::CREATE => Command::CreateRoom(format!("+{}", read_room(input))),
        cmd::INVITE => Command::Invite {
            peer: read_name(input),
            room: format!("+{}", read_room(input)),
        },
        cmd::KICK => Command::Kick {
            peer: read_name(input),
            room: format!("+{}", read_room(input)),
        },
        cmd::VERIFY => Command::Verify {
            peer: read_name(input),
        },
        cmd::TRUST => {
            let b = input.byte();
            let peer = read_name(input);
            let fingerprint = match input.byte() {
                0 => None,
                1 => Some(peer_party(b).id.identity_key().fingerprint().grouped()),
                _ => Some(text(input)),
            };
            Command::Trust { peer, fingerprint }
        }
        cmd::UNTRUST => Command::Untrust {
            peer: read_name(input),
        },
        cmd::CONNECT => Command::Connect(SocketAddr::from(([127, 0, 0, 1], input.u16()))),
        cmd::SEND_DATA => Command::SendData {
            peer: peer_party(input.byte()).id.identity_key(),
            data: input.piece().to_vec(),
        },
        _ => Command::Quit,
    }
}
