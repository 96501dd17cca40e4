//! What the node tells its user interface. Every event serialises to one
//! JSON object (`--json`), tagged by `"event"`.

use crate::chat::MessageView;
use crate::identity::IdentityKey;
use crate::link::Direction;
use crate::trust::TrustState;
use serde::Serialize;

/// A peer as the UI sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerInfo {
    /// Identity key, lowercase hex.
    pub identity: String,
    /// Full fingerprint, grouped.
    pub fingerprint: String,
    /// Untrusted nickname as the peer announced it (the UI sanitises).
    pub nickname: String,
    /// Lifecycle state: discovered, dialling, handshaking, established, lost.
    pub state: &'static str,
    /// Where the peer was last reached or announced.
    pub addr: Option<String>,
    /// How far the local user trusts this key.
    pub trust: TrustState,
}

/// A chat message with what the UI needs to show it: who wrote it, how far
/// their key is trusted, and for private messages who the other side is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChatLine {
    #[serde(flatten)]
    pub message: MessageView,
    /// Untrusted; the author's latest nickname (empty if never seen).
    pub author_nick: String,
    pub author_fingerprint: String,
    /// Trust of the peer the line is about: the author of incoming
    /// messages, the recipient of our private ones, `local` for our public ones.
    pub trust: TrustState,
    /// Private messages: the other side's nickname.
    pub peer_nick: Option<String>,
    /// The nickname is shared with (or looks like) another known peer's:
    /// show the fingerprint beside it.
    pub nick_collides: bool,
}

/// Lowercase hex of an identity key.
pub fn hex_key(key: &IdentityKey) -> String {
    key.0.iter().map(|b| format!("{b:02x}")).collect()
}

/// Something the user interface may want to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The node is up: who we are and where we listen.
    Started {
        identity: String,
        fingerprint: String,
        nickname: String,
        listen: String,
        beacon_targets: Vec<String>,
    },
    /// A new identity was seen in a valid beacon or hello.
    PeerDiscovered { peer: PeerInfo },
    /// An authenticated link to the peer is up.
    PeerConnected {
        peer: PeerInfo,
        direction: Direction,
    },
    /// The link to the peer went away; natter will redial.
    PeerLost { peer: PeerInfo, reason: String },
    /// The peer was not heard from for a while and was forgotten.
    PeerExpired { peer: PeerInfo },
    /// The peer changed its nickname.
    PeerRenamed { peer: PeerInfo, old: String },
    /// A connection failed before it was authenticated.
    LinkFailed { addr: String, reason: String },
    /// Answer to `/peers`.
    Peers { peers: Vec<PeerInfo> },
    /// A message was received and stored (shown once: duplicates are dropped).
    MessageReceived { message: ChatLine },
    /// We wrote a message; it is stored and queued for delivery.
    MessageSent { message: ChatLine },
    /// `peer` confirmed it stored our message `id`.
    MessageDelivered { id: String, peer: PeerInfo },
    /// Answer to `/history`.
    History {
        conversation: String,
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
        local_fingerprint: String,
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
    Data { from: String, len: usize },
    /// Informational message for the user.
    Info { text: String },
    /// A command could not be carried out.
    Error { text: String },
    /// The node has closed every link and stops.
    Shutdown,
}
