//! natter, the application: the SQLite store, the key file, the tokio shell
//! and the user interface around the sans-IO core (`natter-core`), which
//! holds the protocol, the chat rules and the node. See docs/ARCHITECTURE.md.
#![forbid(unsafe_code)]

pub mod keyfile;
pub mod shell;
pub mod store;
pub mod ui;

#[cfg(feature = "testkit")]
#[doc(hidden)]
pub mod fuzz_targets;
