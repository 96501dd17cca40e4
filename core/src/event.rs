//! What the node tells its user interface, as typed values: identity keys,
//! message ids, addresses, states. Nothing here is formatted for a screen;
//! the user interface (natter's `ui` module) renders events as terminal
//! lines or JSON objects.

use crate::chat::MessageView;
use crate::files::{FileFailure, TransferState};
use crate::identity::IdentityKey;
use crate::link::Direction;
use crate::node::{CloseCause, NodeError};
use crate::trust::TrustState;
use crate::wire::frame::TransferId;
use crate::wire::MessageId;
use std::net::SocketAddr;
use std::sync::Arc;

/// Where a peer is in its lifecycle, as the UI shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkState {
    Discovered,
    Dialling,
    Handshaking,
    Established,
    Lost,
    /// Known from the trust store only, not in the peer table.
    Offline,
}

impl LinkState {
    /// The stable lowercase name (JSON `state`, the `/peers` table).
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Discovered => "discovered",
            LinkState::Dialling => "dialling",
            LinkState::Handshaking => "handshaking",
            LinkState::Established => "established",
            LinkState::Lost => "lost",
            LinkState::Offline => "offline",
        }
    }
}

/// A peer as the UI sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub identity: IdentityKey,
    /// Untrusted nickname as the peer announced it (the UI sanitises).
    pub nickname: String,
    pub state: LinkState,
    /// Where the peer was last reached or announced.
    pub addr: Option<SocketAddr>,
    /// How far the local user trusts this key.
    pub trust: TrustState,
    /// How the established link travels (`None`: no link up).
    pub path: Option<crate::link::LinkPath>,
}

/// A chat message with what the UI needs to show it: who wrote it, how far
/// their key is trusted, and for private messages who the other side is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatLine {
    pub message: MessageView,
    /// Untrusted; the author's latest nickname (empty if never seen).
    pub author_nick: String,
    /// Trust of the peer the line is about: the author of incoming
    /// messages, the recipient of our private ones, `local` for our public ones.
    pub trust: TrustState,
    /// Private messages: the other side's nickname.
    pub peer_nick: Option<String>,
    /// The nickname is shared with (or looks like) another known peer's:
    /// show the fingerprint beside it.
    pub nick_collides: bool,
    /// The room's name, for a room message (`None` for a direct message,
    /// or a room whose name this node does not know).
    pub room: Option<String>,
    /// An incoming message that names the local user's nickname as a word,
    /// or any incoming direct message: worth the terminal bell.
    pub calls_me: bool,
}

/// What changed in an invite-only room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// We are in: we founded it, or its founder added us.
    YouJoined { founder: PeerInfo },
    /// The founder added this peer.
    Added(PeerInfo),
    /// The founder removed this peer; the room key was replaced.
    Removed(PeerInfo),
    /// The founder removed us: we can no longer read the room.
    YouWereRemoved,
}

/// A joined room, as `/rooms` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomView {
    pub name: String,
    /// Messages that arrived since the room was last read (this run).
    pub unread: u32,
    /// Of those, how many name the local user.
    pub mentions: u32,
    /// Linked peers that say they joined it.
    pub linked_members: usize,
}

/// A file transfer as the UI shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferView {
    pub id: TransferId,
    /// The other side: the receiver of an outgoing transfer, the sender of
    /// an incoming one.
    pub peer: PeerInfo,
    pub outgoing: bool,
    /// For incoming transfers the name as offered: untrusted, sanitise
    /// before showing it. The file is saved under a safe name (`path`).
    pub name: String,
    pub size: u64,
    /// BLAKE3 of the content.
    pub root: [u8; 32],
    pub state: TransferState,
    /// Bytes verified (incoming) or sent (outgoing) so far.
    pub done: u64,
    /// Outgoing: the file sent. Incoming: where it was saved, once complete.
    pub path: Option<String>,
}

/// Something the user interface may want to show.
#[derive(Clone, Debug)]
pub enum Event {
    /// The node is up: who we are and where we listen.
    Started {
        identity: IdentityKey,
        nickname: String,
        listen: SocketAddr,
        beacon_targets: Vec<SocketAddr>,
        /// The open rooms joined (from earlier runs), by name.
        rooms: Vec<String>,
    },
    /// A new identity was seen in a valid beacon or hello.
    PeerDiscovered { peer: PeerInfo },
    /// An authenticated link to the peer is up.
    PeerConnected {
        peer: PeerInfo,
        direction: Direction,
    },
    /// The link to the peer went away; natter will redial.
    PeerLost {
        peer: PeerInfo,
        reason: Arc<CloseCause>,
    },
    /// The peer was not heard from for a while and was forgotten.
    PeerExpired { peer: PeerInfo },
    /// The peer changed its nickname.
    PeerRenamed { peer: PeerInfo, old: String },
    /// A connection failed before it was authenticated.
    LinkFailed {
        addr: crate::link::Remote,
        reason: Arc<CloseCause>,
    },
    /// Answer to `/peers`.
    Peers { peers: Vec<PeerInfo> },
    /// A message was received and stored (shown once: duplicates are dropped).
    MessageReceived { message: ChatLine },
    /// We wrote a message; it is stored and queued for delivery.
    MessageSent { message: ChatLine },
    /// `peer` confirmed it stored our message `id`.
    MessageDelivered { id: MessageId, peer: PeerInfo },
    /// A second, different message signed by `author` under an id already
    /// held for one of theirs arrived through `via`; it was dropped and not
    /// acked (an author signing two messages with one id).
    MessageCollision {
        author: PeerInfo,
        id: MessageId,
        via: PeerInfo,
    },
    /// A stranger (neither verified nor long known) sent more than its
    /// daily share of history (`chat::quota`); its further messages today,
    /// first seen through `via`, are not stored or acked, so their senders
    /// keep them for later. Once per author and day.
    OverQuota { author: PeerInfo, via: PeerInfo },
    /// The UI fell so far behind that its queue of events was full: it
    /// missed `count` events before this one (the messages among them are
    /// in the history).
    EventsDropped { count: u64 },
    /// A file was offered: to a peer by us (`outgoing`), or to us, waiting
    /// for `/accept` or `/reject`.
    FileOffered { transfer: TransferView },
    /// A transfer moved on (at most a few of these a second per transfer).
    FileProgress { transfer: TransferView },
    /// A transfer is done: the receiver holds the whole file, verified
    /// against its BLAKE3 root.
    FileCompleted { transfer: TransferView },
    /// A transfer ended without the file.
    FileFailed {
        transfer: TransferView,
        reason: Arc<FileFailure>,
    },
    /// An offer refused at once and not recorded (too large, too many).
    FileRefused {
        peer: PeerInfo,
        /// Untrusted.
        name: String,
        size: u64,
        reason: Arc<FileFailure>,
    },
    /// An invite-only room's membership changed.
    RoomMembership {
        /// `+name`.
        room: String,
        change: MembershipChange,
    },
    /// An invite-only room's label changed: another room of its name came
    /// or went, or which one a bare `+name` means did (`+team` became
    /// `+team#ABCD-EFGH`, or back).
    RoomRenamed { old: String, new: String },
    /// We joined an open room (or were already in it).
    RoomJoined { room: String },
    /// We left a room: its messages are still stored and relayed, not shown.
    RoomLeft { room: String },
    /// Answer to `/rooms`: the joined rooms, by name, and the peers whose
    /// private messages are unread (since `/history` or `/msg` to them).
    Rooms {
        rooms: Vec<RoomView>,
        private: Vec<(PeerInfo, u32)>,
    },
    /// Answer to `/who`: linked peers that say they joined the room, then
    /// authors heard in it within the last hour.
    Who {
        room: String,
        members: Vec<PeerInfo>,
    },
    /// Answer to `/info`: one of our messages, and who has it.
    MessageInfo {
        message: ChatLine,
        delivered_to: Vec<PeerInfo>,
        pending: Vec<PeerInfo>,
    },
    /// Answer to `/files`, newest first.
    Files { transfers: Vec<TransferView> },
    /// Answer to `/history`.
    History {
        conversation: crate::chat::Conversation,
        messages: Vec<ChatLine>,
    },
    /// Answer to `/search`.
    SearchResults {
        query: String,
        messages: Vec<ChatLine>,
    },
    /// Answer to `/verify`: what to compare, and how.
    Verify {
        peer: PeerInfo,
        local: IdentityKey,
        safety_number: String,
    },
    /// The user changed how far a key is trusted.
    TrustChanged { peer: PeerInfo },
    /// A key appeared under the nickname of a verified contact.
    KeyWarning {
        peer: PeerInfo,
        verified: Vec<PeerInfo>,
    },
    /// Opaque data frame received (benchmarks, tests).
    Data { from: IdentityKey, len: usize },
    /// `/connect` to an address we already have a link to.
    AlreadyConnected { addr: crate::link::Remote },
    /// Answer to `/ticket`: our identity and iroh reach as text.
    Ticket { ticket: String },
    /// Answer to `/wan`: whether links beyond the LAN are on in this run,
    /// and the saved setting for the next start (`None`: never set, off).
    Wan { active: bool, saved: Option<bool> },
    /// A command could not be carried out, or the node's own side failed.
    Error { error: Arc<NodeError> },
    /// The node has closed every link and stops.
    Shutdown,
    /// Answer to `Command::Marker`: every command before it has taken
    /// effect and reported.
    Marker(u64),
}
