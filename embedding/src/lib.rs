//! The README's Rust examples, compiled and run against ozmint built with
//! `default-features = false` (no hyper, rustls, reqwest, clap, prometheus
//! or tracing-subscriber).
#![forbid(unsafe_code)]

#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
