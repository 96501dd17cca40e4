//! natter-core: the sans-IO heart of natter.
//!
//! Everything here is a pure state machine: bytes, time and commands go in;
//! bytes to send, timers and typed events come out. Nothing here opens a
//! socket, reads a clock, touches a file or formats text for a terminal; the
//! application crate (`natter`) supplies the SQLite store, the key file, the
//! tokio shell and the user interface. See docs/ARCHITECTURE.md.
#![forbid(unsafe_code)]

pub mod chat;
pub mod discovery;
pub mod event;
pub mod files;
pub mod handshake;
pub mod identity;
pub mod link;
pub mod names;
pub mod node;
pub mod peer;
pub mod rng;
pub mod transport;
pub mod trust;
pub mod wire;
pub mod x25519;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

/// Lowercase hex of bytes (keys, ids, hashes): the one hex encoder in
/// natter, from a crate already in the tree.
pub fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}
