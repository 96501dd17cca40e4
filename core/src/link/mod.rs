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

/// What bytes from the peer produced.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// The handshake completed; from now on frames flow.
    Established(PeerHello),
    /// Frames received, in order.
    Frames(Vec<Frame>),
}
