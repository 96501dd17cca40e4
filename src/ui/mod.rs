//! The command-line front end.
//!
//! This module holds the pure parts (no IO): the command parser and the
//! command table that drives help and completion ([`command`]), turning
//! untrusted network text into text that is safe to print ([`sanitize`]),
//! turning events into terminal lines ([`render`]) and tab completion
//! ([`complete`]). The rustyline and line/JSON shells build on these.

pub mod command;
pub mod complete;
pub mod frontend;
pub mod headless;
pub mod interactive;
pub mod json;
pub mod progress;
pub mod render;
pub mod sanitize;
pub mod session;

#[cfg(test)]
mod testutil;
