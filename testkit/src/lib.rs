//! Test support for ozmint, shared by its integration tests, benchmarks and
//! fuzz targets. Not part of the shipped library.
//!
//! - [`conformance`]: the tests every storage engine must pass.
//! - `etcd` (feature `etcd`): a 3-member etcd cluster on loopback for tests.
#![forbid(unsafe_code)]

pub mod conformance;
#[cfg(feature = "etcd")]
pub mod etcd;
