//! natter: a secure peer-to-peer messenger for local networks.
//!
//! Everything but `net` and `cli` is a pure state machine: bytes, time and
//! commands go in, bytes, timers and events come out. See docs/ARCHITECTURE.md.
#![forbid(unsafe_code)]

#[doc(hidden)]
pub mod fuzz_targets;
pub mod handshake;
pub mod identity;
pub mod transport;
pub mod wire;
