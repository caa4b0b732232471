//! ozmint: an embeddable, Onezone-compatible token authority.
//!
//! Layers, each calling only the ones above it in this list:
//!
//! - [`model`]: ids, privileges, records. [`codec`]: their stored encoding
//!   (bincode 2 + version byte). [`error`]: library errors.
//! - [`engine`]: the storage seam (guarded commits, pages, snapshots) and
//!   its engines: memory, sled (the default), etcd (feature `etcd`).
//! - [`token`]: token formats, caveats and verification; no storage inside.
//!   [`geo`]: GeoIP databases for the `asn` and `geo.*` caveats.
//! - [`store`]: users, groups, spaces, providers, relations, token records
//!   and root keys on any engine; invariants kept by guarded transactions.
//! - [`ops`]: every Onezone operation as one async function (authorize,
//!   then one transaction), and authentication.
//! - [`http`], [`serve`], [`config`], [`metrics`], [`client`]: the HTTPS
//!   front end and the binary's parts (feature `server`, on by default).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod engine;
pub mod error;
pub mod geo;
pub mod model;
pub mod ops;
pub mod store;
pub mod token;

#[cfg(feature = "server")]
pub mod client;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod serve;

pub use error::{Entity, Error, Result};
pub use model::{Id, Subject, TokenKind};
pub use ops::{Caller, Zone, ZoneConfig};
pub use store::{DurabilityMode, Store};
pub use token::TokenError;

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
