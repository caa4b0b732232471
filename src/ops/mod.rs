//! The Onezone operations, independent of any transport.
//!
//! Every operation is one async method of [`Zone`]: it takes the
//! authenticated [`Caller`] and parsed input, checks in Onezone's order (the
//! entity exists: 404; the caller may: 403), then does its work in one store
//! transaction. The HTTP handlers parse, call one of these and render; the
//! admin CLI talks to the HTTP API; embedders call them directly.
//!
//! - [`auth`]: credentials to callers (passwords, tokens, throttling).
//! - [`authorize`]: who may do what (effective privileges).
//! - [`tokens`]: minting, verifying, listing, revoking, examining tokens.
//! - [`token_auth`]: Onedata 20.02+ tokens as credentials, and their verification.
//! - `cache`, `token_cache`: bounded caches of verified passwords and tokens.
//! - [`named_tokens`], [`temporary_tokens`]: the 20.02+ token API.
//! - [`invites`]: 20.02+ invite tokens: who may issue them, their consumption.
//! - [`providers`]: registering providers and consuming invite tokens.
//! - [`keys`]: root key rotation and retirement.
//! - [`users`], [`containers`], [`members`]: administration.
//! - [`effective`]: effective memberships of users and groups.

pub mod auth;
pub mod authorize;
mod cache;
pub mod containers;
pub mod effective;
pub mod invites;
pub mod keys;
pub mod members;
pub mod named_tokens;
pub mod providers;
pub mod scope;
pub mod temporary_tokens;
pub mod token_auth;
mod token_cache;
pub mod tokens;
pub mod users;

use std::sync::Arc;

use crate::error::{Error, Forbidden, Result};
use crate::model::{Id, Subject};
use crate::store::{Store, PAGE_MAX};
use crate::token::Lifetimes;

pub use auth::{AuthConfig, AuthError, AuthFailure, Credentials};
pub use authorize::Action;
pub use tokens::{Examination, Minted, Verified};

/// Settings of a zone.
#[derive(Clone, Debug)]
pub struct ZoneConfig {
    /// The `location` packet of minted tokens (the zone name; default `onezone`).
    pub location: String,
    /// Token lifetimes by kind.
    pub lifetimes: Lifetimes,
    /// Password checks, credential cache, login throttling.
    pub auth: AuthConfig,
    /// Longest lifetime of a temporary token, in seconds (Onezone's
    /// `max_temporary_token_ttl`, default one week).
    pub max_temporary_token_ttl: u64,
    /// GeoIP databases for `asn` and `geo.*` caveats (none: they fail).
    pub geo: Option<Arc<crate::geo::MaxMind>>,
    /// Seconds: a provider is online while its last authenticated request
    /// is at most this old.
    pub online_window: u64,
    /// How many verified tokens are remembered, by their serialized form, to
    /// spare their parse and signature check when they come again (0: none).
    pub verified_tokens: usize,
}

/// The default [`ZoneConfig::verified_tokens`].
pub const DEFAULT_VERIFIED_TOKENS: usize = 10_000;

/// The default [`ZoneConfig::online_window`]: one minute.
pub const DEFAULT_ONLINE_WINDOW: u64 = 60;

/// Onezone's default longest lifetime of a temporary token: one week.
pub const DEFAULT_MAX_TEMPORARY_TTL: u64 = 7 * 24 * 3600;

impl Default for ZoneConfig {
    fn default() -> Self {
        ZoneConfig {
            location: "onezone".into(),
            lifetimes: Lifetimes::default(),
            auth: AuthConfig::default(),
            max_temporary_token_ttl: DEFAULT_MAX_TEMPORARY_TTL,
            geo: None,
            online_window: DEFAULT_ONLINE_WINDOW,
            verified_tokens: DEFAULT_VERIFIED_TOKENS,
        }
    }
}

/// A token authority over a store: the operations of Onezone.
pub struct Zone {
    store: Arc<Store>,
    config: ZoneConfig,
    auth: auth::Authenticator,
    /// When this process last recorded each provider's last request.
    seen: providers::SeenCache,
    /// The tokens this instance verified.
    verified: token_cache::TokenCache,
}

impl Zone {
    /// A zone over `store`; creates the first root key in a new store.
    pub async fn new(store: Arc<Store>, config: ZoneConfig) -> Result<Zone> {
        store.ensure_root_key().await?;
        Ok(Zone {
            auth: auth::Authenticator::new(&config.auth),
            verified: token_cache::TokenCache::new(config.verified_tokens),
            store,
            config,
            seen: providers::SeenCache::default(),
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The settings.
    pub fn config(&self) -> &ZoneConfig {
        &self.config
    }
}

/// Who performs an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The user or provider.
    pub subject: Subject,
    /// Authenticated with a token its holder attenuated (extra caveats): such a
    /// caller may not obtain credentials that outlive or outreach the token.
    pub restricted: bool,
}

impl Caller {
    /// A user, authenticated fully (a password or an unattenuated token).
    pub fn user(id: Id) -> Self {
        Caller {
            subject: Subject::User(id),
            restricted: false,
        }
    }

    /// A provider, authenticated with its token.
    pub fn provider(id: Id) -> Self {
        Caller {
            subject: Subject::Provider(id),
            restricted: false,
        }
    }

    /// The user's id; `Forbidden` for a provider.
    pub fn user_id(&self) -> Result<Id> {
        match self.subject {
            Subject::User(u) => Ok(u),
            Subject::Provider(_) => Err(Error::Forbidden(Forbidden::UsersOnly)),
        }
    }

    /// The provider's id; `Forbidden` for a user.
    pub fn provider_id(&self) -> Result<Id> {
        match self.subject {
            Subject::Provider(p) => Ok(p),
            Subject::User(_) => Err(Error::Forbidden(Forbidden::ProvidersOnly)),
        }
    }

    /// `Forbidden` if the caller's token was attenuated.
    pub fn unrestricted(&self) -> Result<()> {
        if self.restricted {
            Err(Error::Forbidden(Forbidden::Attenuated))
        } else {
            Ok(())
        }
    }
}

/// Which page of a listing: after an id, at most `limit` entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// Start after this id.
    pub after: Option<Id>,
    /// At most this many (1 to [`PAGE_MAX`]).
    pub limit: usize,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            after: None,
            limit: PAGE_MAX,
        }
    }
}

/// A page of a listing, with the cursor of the next one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed<T> {
    /// The entries.
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; `None` on the last one.
    pub next: Option<Id>,
}

impl<T> Listed<T> {
    fn new(items: Vec<T>, more: bool, id: impl Fn(&T) -> Id) -> Self {
        let next = if more { items.last().map(&id) } else { None };
        Listed { items, next }
    }
}

/// A page of a sorted set of ids.
fn slice(all: &std::collections::BTreeSet<Id>, page: PageRequest) -> Listed<Id> {
    use std::ops::Bound;
    let iter: Box<dyn Iterator<Item = &Id>> = match page.after {
        Some(a) => Box::new(all.range((Bound::Excluded(a), Bound::Unbounded))),
        None => Box::new(all.iter()),
    };
    let mut items: Vec<Id> = iter.take(page.limit + 1).copied().collect();
    let more = items.len() > page.limit;
    items.truncate(page.limit);
    Listed::new(items, more, |id| *id)
}
