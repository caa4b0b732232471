//! The integration tests: one binary, one module per theme, over the shared
//! harness in `testkit` (also used by the benchmarks and fuzz targets).
//!
//! - [`engines`]: the engine conformance suite on every engine.
//! - [`store`]: the store alone: privileges, cycles, cascading deletions.
//! - [`instances`]: two store/zone instances on one engine behave as one zone.
//! - [`full`]: a data directory on a filesystem that fills up.
//! - [`early_answers`]: errors reach HTTP/2 clients that are still sending.
//! - [`api`]: the two seed endpoints and the token API over HTTPS.
//! - [`admin`]: the administration API. [`admins`]: the zone keeps an administrator.
//! - [`lifecycle`]: tokens from mint to consumption, revocation, expiry, keys.
//! - [`hostile`]: malformed and hostile requests.
//! - [`races`]: concurrent requests against one server.
//! - [`interop`]: tokens checked by a real macaroon library (pymacaroons).
//! - [`modern`]: Onedata 20.02+ named and temporary tokens over HTTPS.
//! - [`invites`]: Onedata 20.02+ invite tokens: creation, consumption, usage limits, legacy endpoints.
//! - [`geo`]: GeoIP caveats on real MaxMind databases (written by mmdb-writer).
//! - [`openapi`]: the OpenAPI description: route coverage, validator, schemathesis on a live server.
//! - [`cli`], [`admin_cli`]: the binary's commands.
//! - [`readme`]: README.md's curl examples run as written against the demo server.
//! - [`ops`]: the binary as operators run it (config, logs, metrics, signals).
//! - [`secrets`]: no secret in logs, errors or debug output.
//! - [`crash`]: SIGKILL cycles; everything acknowledged survives.
//! - [`fuzz_regressions`]: the fuzz corpora and regression inputs replayed.
//! - [`etcd`]: the etcd engine on real clusters (conformance, failover).
//! - [`etcd_frontends`]: several `ozmint serve` processes on one etcd cluster act as one zone.

mod admin;
mod admin_cli;
mod admins;
mod api;
mod cli;
mod crash;
mod early_answers;
mod engines;
mod etcd;
mod etcd_frontends;
mod full;
mod fuzz_regressions;
mod geo;
mod hostile;
mod instances;
mod interop;
mod invites;
mod lifecycle;
mod modern;
mod openapi;
mod ops;
mod races;
mod readme;
mod scope;
mod secrets;
mod store;
