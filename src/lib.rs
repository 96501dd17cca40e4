//! natter, the application: the SQLite store, the key file, the tokio shell
//! and the user interface around the sans-IO core (`natter-core`), which
//! holds the protocol, the chat rules and the node. See docs/ARCHITECTURE.md.
#![forbid(unsafe_code)]

/// Every natter process (the binary, the tests, the benchmarks) allocates
/// through jemalloc, whose background thread gives pages freed for a second
/// back to the system (.cargo/config.toml sets the decay): with glibc's
/// malloc a burst absorbed from hostile peers stayed partly in RSS after
/// they were gone. Not under cargo-fuzz (`cfg(fuzzing)`), where the
/// sanitizer's allocator must see every allocation.
#[cfg(not(fuzzing))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

pub mod files;
pub mod keyfile;
#[cfg(feature = "wan")]
pub mod relay;
pub mod shell;
pub mod signatures;
pub mod store;
pub mod ui;
#[cfg(feature = "wan")]
pub mod wan;

#[cfg(feature = "testkit")]
#[doc(hidden)]
pub mod fuzz_targets;
