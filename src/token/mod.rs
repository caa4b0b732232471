//! The token core: formats, caveats and verification, with no storage inside.
//!
//! - [`wire`]: the Onezone wire format (the only user of the `macaroon` crate).
//! - [`caveat`]: the caveat language (Onedata's, and the legacy `tokenType`).
//! - [`keys`]: root keys behind the [`keys::KeySource`] trait, and secret derivation.
//! - [`v2`]: Onedata 20.02+ tokens: identifiers, minting, confinement,
//!   examination, verification against a request context.
//! - this module: the legacy (18.02-era) tokens of the seed endpoints: how
//!   one is minted from a record, and how one is checked against its record.
//!
//! Verification order of legacy tokens: parse (length-capped) -> identifier
//! -> record (the caller's) -> root key (not retired) -> signature chain
//! (constant time) -> every caveat understood (`tokenType`, `time` only) and
//! satisfied -> record state and expiry.

pub mod caveat;
pub mod keys;
pub mod v2;
pub mod wire;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use caveat::Caveat;

use crate::model::{Id, TokenKind, TokenRecord, TokenState};
use keys::KeySource;
use wire::RawToken;

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Longer than [`wire::MAX_TOKEN_LEN`] or with too many caveats.
    TooLong,
    /// Not a macaroon in an accepted encoding.
    Malformed,
    /// No record for this identifier (never minted, or purged).
    Unknown,
    /// The signature does not match.
    BadSignature,
    /// The root key it was signed with is retired.
    KeyRetired,
    /// A caveat is not understood.
    UnknownCaveat,
    /// A `time <` caveat or the record's expiry has passed.
    Expired,
    /// The token was revoked.
    Revoked,
    /// The single-use token was already consumed.
    Consumed,
    /// The token is of another type than the operation needs.
    WrongType,
    /// The token's issuer no longer holds the privilege that allowed the mint.
    IssuerNotAllowed,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenError::TooLong => "token is too long",
            TokenError::Malformed => "token could not be parsed",
            TokenError::Unknown => "token is not known to this zone",
            TokenError::BadSignature => "token signature is invalid",
            TokenError::KeyRetired => "token was signed with a retired key",
            TokenError::UnknownCaveat => "token has a caveat this server does not understand",
            TokenError::Expired => "token has expired",
            TokenError::Revoked => "token was revoked",
            TokenError::Consumed => "token was already used",
            TokenError::WrongType => "token is of the wrong type for this operation",
            TokenError::IssuerNotAllowed => {
                "token's issuer no longer holds the privilege to grant it"
            }
        })
    }
}

impl std::error::Error for TokenError {}

/// Token lifetimes in seconds, by kind.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lifetimes {
    /// Space support tokens.
    pub space_support: u64,
    /// Space creation tokens.
    pub space_create: u64,
    /// User access tokens.
    pub access: u64,
    /// Provider root tokens.
    pub provider: u64,
    /// Longest lifetime of a 20.02+ temporary token (Onezone's
    /// `max_temporary_token_ttl`).
    pub max_temporary_ttl: u64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            space_support: 7 * 24 * 3600,
            space_create: 7 * 24 * 3600,
            access: 30 * 24 * 3600,
            provider: 10 * 365 * 24 * 3600,
            max_temporary_ttl: 7 * 24 * 3600,
        }
    }
}

impl Lifetimes {
    /// The lifetime of a kind of token.
    pub fn of(&self, kind: TokenKind) -> u64 {
        match kind {
            TokenKind::SpaceSupport => self.space_support,
            TokenKind::SpaceCreate => self.space_create,
            TokenKind::Access => self.access,
            TokenKind::Provider => self.provider,
        }
    }
}

/// The escaped wire form of the legacy token of `record`, signed with the
/// root key `root`: location, the identifier as text, the `tokenType` and
/// `time <` caveats. Deterministic in its inputs.
pub fn encode_legacy(
    location: &str,
    root: &[u8; 32],
    id: &Id,
    record: &TokenRecord,
) -> Result<String, TokenError> {
    let identifier = id.to_string();
    let caveats = [
        Caveat::TokenType(record.kind).to_predicate(),
        Caveat::TimeBefore(record.expires).to_predicate(),
    ];
    wire::mint(
        location,
        &keys::derive(root, identifier.as_bytes()),
        identifier.as_bytes(),
        &caveats,
    )
}

/// The record key of a legacy token: its identifier, 43 base64url characters.
pub fn legacy_id(raw: &RawToken) -> Result<Id, TokenError> {
    std::str::from_utf8(&raw.identifier)
        .ok()
        .and_then(|s| s.parse::<Id>().ok())
        .ok_or(TokenError::Unknown)
}

/// Checks a parsed legacy token against its record at time `now`: key not
/// retired, signature (constant time), every caveat understood and
/// satisfied, the record usable. Returns the caveats it carries.
pub fn check_legacy(
    raw: &RawToken,
    record: &TokenRecord,
    keys: &dyn KeySource,
    now: u64,
) -> Result<Vec<Caveat>, TokenError> {
    let secret = keys
        .token_secret(record.key_id, &raw.identifier)
        .ok_or(TokenError::KeyRetired)?;
    if !wire::signature_matches(raw, &secret) {
        return Err(TokenError::BadSignature);
    }
    let mut caveats = Vec::with_capacity(raw.caveats.len());
    for c in &raw.caveats {
        let c = Caveat::parse(c).ok_or(TokenError::UnknownCaveat)?;
        legacy_caveat_holds(&c, record, now)?;
        caveats.push(c);
    }
    state_ok(record, now)?;
    Ok(caveats)
}

/// The checks of [`check_legacy`] after the signature, for caveats parsed
/// from a token whose signature matched before: each caveat in order, then
/// the record's state.
pub fn legacy_caveats_hold(
    caveats: &[Caveat],
    record: &TokenRecord,
    now: u64,
) -> Result<(), TokenError> {
    for c in caveats {
        legacy_caveat_holds(c, record, now)?;
    }
    state_ok(record, now)
}

fn legacy_caveat_holds(c: &Caveat, record: &TokenRecord, now: u64) -> Result<(), TokenError> {
    match *c {
        Caveat::TokenType(k) if k != record.kind => Err(TokenError::WrongType),
        Caveat::TimeBefore(t) if now >= t => Err(TokenError::Expired),
        Caveat::TokenType(_) | Caveat::TimeBefore(_) => Ok(()),
        // Legacy tokens know no other caveat.
        _ => Err(TokenError::UnknownCaveat),
    }
}

/// Whether a record is usable at `now`.
pub fn state_ok(rec: &TokenRecord, now: u64) -> Result<(), TokenError> {
    match rec.state {
        TokenState::Revoked { .. } => Err(TokenError::Revoked),
        TokenState::Consumed { .. } => Err(TokenError::Consumed),
        TokenState::Active if now >= rec.expires => Err(TokenError::Expired),
        TokenState::Active => Ok(()),
    }
}

/// Whether a holder added caveats beyond the two every legacy token is minted with.
pub fn is_attenuated(record: &TokenRecord, caveats: &[Caveat]) -> bool {
    let minted = [
        Caveat::TokenType(record.kind),
        Caveat::TimeBefore(record.expires),
    ];
    caveats.iter().any(|c| !minted.contains(c))
}
