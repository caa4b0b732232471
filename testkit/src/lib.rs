//! Test support for ozmint, shared by its integration tests, benchmarks and
//! fuzz targets. Not part of the shipped library.
//!
//! - [`conformance`]: the tests every storage engine must pass.
#![forbid(unsafe_code)]

pub mod conformance;
