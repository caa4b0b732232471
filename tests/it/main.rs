//! The integration tests: one binary, one module per theme, over the shared
//! harness in `testkit` (also used by the benchmarks and fuzz targets).
//!
//! - [`engines`]: the engine conformance suite on every engine.
//! - [`api`]: the two seed endpoints and the token API over HTTPS.
//! - [`admin`]: the administration API.
//! - [`lifecycle`]: tokens from mint to consumption, revocation, expiry, keys.
//! - [`hostile`]: malformed and hostile requests.
//! - [`races`]: concurrent requests against one server.
//! - [`interop`]: tokens checked by a real macaroon library (pymacaroons).
//! - [`cli`], [`admin_cli`]: the binary's commands.
//! - [`ops`]: the binary as operators run it (config, logs, metrics, signals).
//! - [`secrets`]: no secret in logs, errors or debug output.
//! - [`crash`]: SIGKILL cycles; everything acknowledged survives.
//! - [`fuzz_regressions`]: the fuzz corpora and regression inputs replayed.

mod engines;
mod fuzz_regressions;
