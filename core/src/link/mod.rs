//! One link (a TCP connection to a peer), sans IO.
//!
//! - [`phase`]: the stream's protocol state (deframer, typed handshake
//!   states, then the transport);
//! - [`timer`]: the link's timers as data (handshake deadline, keepalive,
//!   dead link, send stall);
//! - [`connection`]: the [`Connection`] that owns a phase, its timers, what
//!   the link is for, the frames waiting to be sealed and the bytes handed
//!   to the shell and not yet written. The node keeps one per link and
//!   routes between them; a connection knows nothing of the others.

pub mod connection;
pub mod phase;
pub mod timer;

pub use connection::{Connection, LinkConfig, Purpose, SealError, Stage};
pub use phase::Phase;
pub use timer::{Expiry, Timer};

use crate::handshake::{HandshakeError, PeerHello};
use crate::transport::TransportError;
use crate::wire::framing::FramingError;
use crate::wire::Frame;

/// Link identifiers are allocated by the node; the shell maps them to sockets.
pub type LinkId = u64;

/// Where a link goes: a TCP address on the LAN, or an iroh endpoint beyond
/// it, which iroh names by its key (the peer's identity key, PROTOCOL.md
/// section 12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Remote {
    Lan(std::net::SocketAddr),
    Wan(crate::identity::IdentityKey),
}

impl Remote {
    /// The LAN address, if this is a LAN link.
    pub fn lan(&self) -> Option<std::net::SocketAddr> {
        match self {
            Remote::Lan(a) => Some(*a),
            Remote::Wan(_) => None,
        }
    }

    pub fn is_wan(&self) -> bool {
        matches!(self, Remote::Wan(_))
    }
}

impl From<std::net::SocketAddr> for Remote {
    fn from(a: std::net::SocketAddr) -> Self {
        Remote::Lan(a)
    }
}

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Remote::Lan(a) => write!(f, "{a}"),
            Remote::Wan(id) => write!(f, "wan:{}", id.fingerprint().short()),
        }
    }
}

/// How a link's bytes travel, as the shell reports it: shown by `/peers`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LinkPath {
    /// TCP on the local network.
    #[default]
    Lan,
    /// iroh, straight between the two endpoints (hole punched or routed).
    Direct,
    /// iroh, through a relay server.
    Relayed,
}

impl LinkPath {
    pub fn name(&self) -> &'static str {
        match self {
            LinkPath::Lan => "lan",
            LinkPath::Direct => "direct",
            LinkPath::Relayed => "relayed",
        }
    }
}

/// Who opened the TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Outbound,
    Inbound,
}

/// Why a link failed. Each variant closes only that link.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LinkError {
    #[error("framing: {0}")]
    Framing(#[from] FramingError),
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    #[error("link is not established")]
    NotEstablished,
    #[error("link is closed")]
    Closed,
}

/// What bytes from the peer produced: the handshake completing (once per
/// link), then the frames that followed it, in order. A struct, not a list
/// of events, because nothing else can happen and a read of one message
/// then costs no list.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// The handshake completed in these bytes; from now on frames flow.
    pub established: Option<Box<PeerHello>>,
    /// The frames received, in order, all after the handshake.
    pub frames: Vec<Frame>,
}
