//! The minter: mints, verifies, attenuates, revokes and consumes tokens.
//!
//! - [`wire`]: the Onezone wire format (the only user of the `macaroon` crate).
//! - [`caveat`]: the caveats the verifier understands.
//! - [`keys`]: root keys, rotation and retirement.
//!
//! Verification order: parse (length-capped) -> identifier -> record ->
//! root key (not retired) -> signature chain (constant time) -> every caveat
//! understood and satisfied -> record state and expiry.

pub mod caveat;
pub mod keys;
pub mod wire;

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

pub use caveat::Caveat;
pub use keys::{KeyInfo, KeyRing};

use crate::error::{Error, Result};
use crate::model::{now, Id, Subject, TokenKind, TokenRecord, TokenState};
use crate::store::{Batch, Store};

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
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, Serialize)]
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
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            space_support: 7 * 24 * 3600,
            space_create: 7 * 24 * 3600,
            access: 30 * 24 * 3600,
            provider: 10 * 365 * 24 * 3600,
        }
    }
}

impl Lifetimes {
    fn of(&self, kind: TokenKind) -> u64 {
        match kind {
            TokenKind::SpaceSupport => self.space_support,
            TokenKind::SpaceCreate => self.space_create,
            TokenKind::Access => self.access,
            TokenKind::Provider => self.provider,
        }
    }
}

/// A freshly minted token.
pub struct Minted {
    /// The token in its escaped wire form (a bearer secret).
    pub token: String,
    /// Its identifier.
    pub id: Id,
    /// Its record.
    pub record: TokenRecord,
}

impl fmt::Debug for Minted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Minted")
            .field("token", &"<redacted>")
            .field("id", &self.id)
            .field("record", &self.record)
            .finish()
    }
}

/// A token whose signature, caveats and record all check out.
#[derive(Clone, Debug)]
pub struct Verified {
    /// Identifier.
    pub id: Id,
    /// The record as read during verification.
    pub record: TokenRecord,
    /// The caveats it carries.
    pub caveats: Vec<Caveat>,
}

/// What a token is, as far as can be told (for examination endpoints).
#[derive(Clone, Debug, Serialize)]
pub struct Inspection {
    /// Identifier, if well-formed.
    pub id: Option<String>,
    /// The location packet.
    pub location: Option<String>,
    /// Caveat predicates as text.
    pub caveats: Vec<String>,
    /// The record, if one exists.
    #[serde(skip)]
    pub record: Option<TokenRecord>,
    /// `None` if the token verifies, else why not.
    #[serde(skip)]
    pub error: Option<TokenError>,
}

/// Minter settings.
#[derive(Clone, Debug)]
pub struct MinterConfig {
    /// The `location` packet of minted tokens (default `onezone`).
    pub location: String,
    /// Lifetimes by kind.
    pub lifetimes: Lifetimes,
}

impl Default for MinterConfig {
    fn default() -> Self {
        MinterConfig {
            location: "onezone".into(),
            lifetimes: Lifetimes::default(),
        }
    }
}

/// The token authority over a store.
pub struct Minter {
    store: Arc<Store>,
    keys: KeyRing,
    config: MinterConfig,
}

impl Minter {
    /// A minter over `store`, creating the first root key if there is none.
    pub fn new(store: Arc<Store>, config: MinterConfig) -> Result<Self> {
        Ok(Minter {
            keys: KeyRing::load(store.clone())?,
            store,
            config,
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The root keys.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Mints a token of `kind` for `target` with the configured lifetime.
    pub fn mint(&self, kind: TokenKind, target: Id, issuer: Subject) -> Result<Minted> {
        self.mint_for(kind, target, issuer, self.config.lifetimes.of(kind))
    }

    /// Mints a token valid for `lifetime` seconds.
    pub fn mint_for(
        &self,
        kind: TokenKind,
        target: Id,
        issuer: Subject,
        lifetime: u64,
    ) -> Result<Minted> {
        let minted = self.mint_unsynced(kind, target, issuer, lifetime)?;
        self.store.committed()?;
        Ok(minted)
    }

    /// [`Minter::mint`] for async callers (within a tokio runtime): the
    /// record is written on the calling thread (no I/O wait) and durability
    /// is awaited without holding a thread, concurrent mints sharing one
    /// flush.
    pub async fn mint_async(&self, kind: TokenKind, target: Id, issuer: Subject) -> Result<Minted> {
        let lifetime = self.config.lifetimes.of(kind);
        let minted = self.mint_unsynced(kind, target, issuer, lifetime)?;
        self.store.committed_async().await?;
        Ok(minted)
    }

    fn mint_unsynced(
        &self,
        kind: TokenKind,
        target: Id,
        issuer: Subject,
        lifetime: u64,
    ) -> Result<Minted> {
        let (key_id, root) = self.keys.current()?;
        let id = Id::time_ordered();
        let created = now();
        let record = TokenRecord {
            kind,
            target,
            issuer,
            key_id,
            created,
            expires: created.saturating_add(lifetime),
            state: TokenState::Active,
        };
        let token = self.encode(&id, &record, &root)?;
        self.store.insert_token_unsynced(&id, &record)?;
        Ok(Minted { token, id, record })
    }

    fn encode(&self, id: &Id, record: &TokenRecord, root: &[u8; 32]) -> Result<String> {
        let identifier = id.to_string();
        let caveats = [
            Caveat::TokenType(record.kind).to_predicate(),
            Caveat::TimeBefore(record.expires).to_predicate(),
        ];
        Ok(wire::mint(
            &self.config.location,
            &keys::derive(root, identifier.as_bytes()),
            identifier.as_bytes(),
            &caveats,
        )?)
    }

    /// The token string of an existing record, exactly as it was minted
    /// (tokens are deterministic in their key, identifier and record).
    /// `None` if the record's root key is retired.
    pub fn render(&self, id: &Id, record: &TokenRecord) -> Result<Option<String>> {
        match self.keys.root(record.key_id) {
            Some(root) => self.encode(id, record, &root).map(Some),
            None => Ok(None),
        }
    }

    /// Verifies a token of any kind.
    pub fn verify(&self, token: &str) -> Result<Verified> {
        self.check(&wire::parse(token)?, now())
    }

    /// Verifies a token that must be of `kind`.
    pub fn verify_kind(&self, token: &str, kind: TokenKind) -> Result<Verified> {
        let v = self.verify(token)?;
        if v.record.kind != kind {
            return Err(Error::Token(TokenError::WrongType));
        }
        Ok(v)
    }

    fn check(&self, raw: &wire::RawToken, now: u64) -> Result<Verified> {
        let id = std::str::from_utf8(&raw.identifier)
            .ok()
            .and_then(|s| s.parse::<Id>().ok())
            .ok_or(TokenError::Unknown)?;
        let record = self.store.token(&id)?.ok_or(TokenError::Unknown)?;
        let secret = self
            .keys
            .token_secret(record.key_id, &raw.identifier)
            .ok_or(TokenError::KeyRetired)?;
        if !wire::signature_matches(raw, &secret) {
            return Err(TokenError::BadSignature.into());
        }
        let mut caveats = Vec::with_capacity(raw.caveats.len());
        for c in &raw.caveats {
            let c = Caveat::parse(c).ok_or(TokenError::UnknownCaveat)?;
            match c {
                Caveat::TokenType(k) if k != record.kind => {
                    return Err(TokenError::WrongType.into())
                }
                Caveat::TimeBefore(t) if now >= t => return Err(TokenError::Expired.into()),
                _ => caveats.push(c),
            }
        }
        state_ok(&record, now)?;
        Ok(Verified {
            id,
            record,
            caveats,
        })
    }

    /// Revokes a token by identifier (idempotent for revoked tokens).
    pub fn revoke(&self, id: &Id) -> Result<TokenRecord> {
        self.store.transition_token(id, |_, rec, _| {
            let mut new = rec.clone();
            if matches!(rec.state, TokenState::Active) {
                new.state = TokenState::Revoked { at: now() };
            }
            Ok((new.clone(), new))
        })
    }

    /// Consumes a single-use token of `kind` on behalf of `provider`: verifies
    /// it, then, under the store's writer lock, re-checks its state, lets `f`
    /// queue the effect of the consumption, and writes the effect together
    /// with the consumed state in one atomic batch. If `f` fails, the token
    /// stays usable. Of any number of concurrent consumers, exactly one wins.
    pub fn consume<R>(
        &self,
        token: &str,
        kind: TokenKind,
        provider: Id,
        f: impl FnOnce(&Store, &TokenRecord, &mut Batch) -> Result<R>,
    ) -> Result<R> {
        let out = self.consume_unsynced(token, kind, provider, f)?;
        self.store.committed()?;
        Ok(out)
    }

    /// [`Minter::consume`] for async callers (within a tokio runtime): the
    /// state change is applied on the calling thread and durability is
    /// awaited without holding a thread, concurrent consumptions sharing one
    /// flush.
    pub async fn consume_async<R>(
        &self,
        token: &str,
        kind: TokenKind,
        provider: Id,
        f: impl FnOnce(&Store, &TokenRecord, &mut Batch) -> Result<R>,
    ) -> Result<R> {
        let out = self.consume_unsynced(token, kind, provider, f)?;
        self.store.committed_async().await?;
        Ok(out)
    }

    fn consume_unsynced<R>(
        &self,
        token: &str,
        kind: TokenKind,
        provider: Id,
        f: impl FnOnce(&Store, &TokenRecord, &mut Batch) -> Result<R>,
    ) -> Result<R> {
        let v = self.verify_kind(token, kind)?;
        self.store
            .transition_token_unsynced(&v.id, |store, rec, batch| {
                let t = now();
                state_ok(rec, t)?;
                let out = f(store, rec, batch)?;
                let mut new = rec.clone();
                new.state = TokenState::Consumed {
                    at: t,
                    by: provider,
                };
                Ok((new, out))
            })
    }

    /// Describes a token without failing on invalid ones.
    pub fn inspect(&self, token: &str) -> Inspection {
        match wire::parse(token) {
            Err(e) => Inspection {
                id: None,
                location: None,
                caveats: Vec::new(),
                record: None,
                error: Some(e),
            },
            Ok(raw) => {
                let id = std::str::from_utf8(&raw.identifier)
                    .ok()
                    .and_then(|s| s.parse::<Id>().ok());
                let record = id.and_then(|id| self.store.token(&id).ok().flatten());
                let error = match self.check(&raw, now()) {
                    Ok(_) => None,
                    Err(Error::Token(e)) => Some(e),
                    Err(_) => Some(TokenError::Unknown),
                };
                Inspection {
                    id: id.map(|i| i.to_string()),
                    location: raw.location,
                    caveats: raw
                        .caveats
                        .iter()
                        .map(|c| String::from_utf8_lossy(c).into_owned())
                        .collect(),
                    record,
                    error,
                }
            }
        }
    }
}

fn state_ok(rec: &TokenRecord, now: u64) -> Result<(), TokenError> {
    match rec.state {
        TokenState::Revoked { .. } => Err(TokenError::Revoked),
        TokenState::Consumed { .. } => Err(TokenError::Consumed),
        TokenState::Active if now >= rec.expires => Err(TokenError::Expired),
        TokenState::Active => Ok(()),
    }
}
