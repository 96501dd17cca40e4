//! Test support, compiled only for tests and with the `testkit` feature:
//! the deterministic network simulator and the bodies of the fuzz targets.
//! Nothing here is part of natter-core's API for applications.

pub mod fuzz;
pub mod graph;
pub mod sim;
