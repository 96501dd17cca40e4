//! natter: a secure peer-to-peer messenger for local networks.
//!
//! Everything but `net` and `cli` is a pure state machine: bytes, time and
//! commands go in, bytes, timers and events come out. See docs/ARCHITECTURE.md.
#![forbid(unsafe_code)]

pub mod chat;
pub mod cli;
pub mod discovery;
pub mod event;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod handshake;
pub mod identity;
pub mod link;
pub mod net;
pub mod node;
pub mod peer;
pub mod rng;
pub mod sim;
pub mod store;
pub mod transport;
pub mod trust;
pub mod wire;
