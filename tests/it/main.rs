//! The integration tests: one binary, one module per theme.
//!
//! - [`engines`]: the engine conformance suite on every engine.

mod engines;
