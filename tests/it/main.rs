//! The integration tests: one binary, one module per theme.
//!
//! - [`engines`]: the engine conformance suite on every engine.
//! - [`etcd`]: the etcd engine on real clusters (conformance, failover).

mod engines;
mod etcd;
