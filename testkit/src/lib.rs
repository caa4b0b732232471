//! Test support for ozmint, shared by its integration tests, benchmarks and
//! fuzz targets. Not part of the shipped library.
//!
//! - [`conformance`]: the tests every storage engine must pass.
//! - [`server`]: an in-process server on a temporary directory, clients, the
//!   demo data set's ids, error-answer checks.
//! - [`spawned`]: the real binary as a child process, bounded in every wait.
//! - [`onedata`]: Onedata's token escaping, written independently of the crate.
//! - [`fuzzing`]: the fuzzing entry points (called by `fuzz/` and replayed by the tests).
//! - `etcd` (feature `etcd`): a 3-member etcd cluster on loopback for tests.
#![forbid(unsafe_code)]

pub mod conformance;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod fuzzing;
pub mod onedata;
pub mod server;
pub mod spawned;
