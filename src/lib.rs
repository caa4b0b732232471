//! ozmint: an embeddable, Onezone-compatible token authority.
//!
//! - [`model`]: ids, privileges, records.
//! - [`engine`]: the storage seam (guarded commits, pages, snapshots) and its engines.
//! - [`codec`]: the on-disk encoding of records (bincode 2 + version byte).
//! - [`store`]: users, groups, spaces, providers, relations and tokens on a KV engine (sled).
//! - [`token`]: the macaroon minter: mint, verify, attenuate, revoke, consume, rotate.
//! - [`auth`]: who is calling (Basic, tokens) and what they may do.
//! - [`http`]: the HTTPS front end (hyper 1, rustls).
//! - [`metrics`]: Prometheus metrics.
//! - [`client`]: a client of the REST API (the admin CLI).
//! - [`config`]: settings from defaults, file, environment and flags.
//! - [`serve`]: starting and stopping a server.
//! - [`error`]: library errors.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod client;
pub mod codec;
pub mod config;
pub mod engine;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod metrics;
pub mod model;
pub mod serve;
pub mod store;
pub mod token;

pub use error::{Entity, Error, Result};
pub use model::{Id, Subject, TokenKind};
pub use store::{Durability, Store};
pub use token::{Minter, MinterConfig, TokenError};

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
