//! natter: a secure peer-to-peer messenger for local networks.
#![forbid(unsafe_code)]

pub mod store;
