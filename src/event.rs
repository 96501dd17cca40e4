//! What the node tells its user interface. Every event serialises to one
//! JSON object (`--json`), tagged by `"event"`.

use crate::identity::IdentityKey;
use crate::link::Direction;
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
    /// Opaque data frame received (benchmarks, tests).
    Data { from: String, len: usize },
    /// Informational message for the user.
    Info { text: String },
    /// A command could not be carried out.
    Error { text: String },
    /// The node has closed every link and stops.
    Shutdown,
}
