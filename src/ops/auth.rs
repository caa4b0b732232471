//! Who is calling: credentials to [`Caller`]s.
//!
//! - [`Credentials`]: what a request presented (Basic or a token).
//! - [`Zone::authenticate`]: turns credentials into a [`Caller`]. Password
//!   checks run argon2id on a blocking thread; a verified-credentials cache,
//!   keyed by a keyed BLAKE3 hash of (name, password) with a per-process
//!   random key, spares returning clients the hash. An entry is honoured only
//!   while the user's stored password hash (read on every request) is the
//!   one it was made for, so a password change made through any instance
//!   invalidates it at once.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use parking_lot::Mutex;

use super::cache::{Fingerprint, KeyedCache, Slot};
use super::token_cache::Lookup;
use super::tokens::legacy_subject;
use super::{Caller, Zone};
use crate::error::{Error, Result};
use crate::model::Id;
use crate::token::TokenError;

/// Longest password accepted, in bytes (argon2 takes any length; this bounds work).
pub const MAX_PASSWORD: usize = 1024;

/// What a request presented to prove who it is.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Basic`.
    Basic {
        /// Login name.
        user: String,
        /// Password (secret).
        password: String,
    },
    /// An access or provider token (`X-Auth-Token`, `Authorization: Bearer`, `macaroon`).
    Token(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { user, .. } => write!(f, "Basic({user}, <redacted>)"),
            Credentials::Token(_) => write!(f, "Token(<redacted>)"),
        }
    }
}

/// Why authentication failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// No credentials at all.
    Missing,
    /// Unknown user or wrong password.
    BadPassword,
    /// The token is not a valid access or provider token.
    BadToken(TokenError),
    /// The subject the token names no longer exists.
    Gone,
    /// A 20.02+ token was refused, with Onezone's error.
    Onezone(crate::error::OzError),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Missing => f.write_str("authentication required"),
            AuthError::BadPassword => f.write_str("invalid username or password"),
            AuthError::BadToken(e) => write!(f, "invalid access token: {e}"),
            AuthError::Gone => f.write_str("the authenticated subject no longer exists"),
            AuthError::Onezone(e) => write!(f, "invalid access token: {e}"),
        }
    }
}

/// Hashes a password with argon2id (random salt, PHC string). Slow by design:
/// call it off the async runtime.
pub fn hash_password(password: &str) -> Result<String> {
    // Refuse what `check_password` would never accept: an account nobody
    // could log in to.
    if password.is_empty() || password.len() > MAX_PASSWORD {
        return Err(Error::Invalid(format!(
            "a password must be 1 to {MAX_PASSWORD} bytes long"
        )));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| Error::Invalid("password could not be hashed".into()))
}

/// Checks a password against a PHC hash. Slow by design.
pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash used when the user does not exist, so that unknown and known users
/// take the same time to refuse.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password").unwrap_or_default())
}

#[derive(Clone)]
struct CacheEntry {
    user: Id,
    hash_fingerprint: Fingerprint,
    until: Instant,
}

/// The verified-credentials cache.
struct CredCache {
    ttl: Duration,
    entries: KeyedCache<CacheEntry>,
}

impl CredCache {
    fn slot(&self, user: &str, password: &str) -> Slot {
        self.entries.slot(&[user.as_bytes(), password.as_bytes()])
    }
}

/// Settings of the [`Authenticator`].
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// How long verified credentials are remembered (0 disables the cache).
    pub cache_ttl: Duration,
    /// How many verified credentials are remembered at most.
    pub cache_entries: usize,
    /// Failed password checks for one user name within `window` before that
    /// name is throttled; an address is throttled after ten times as many.
    pub max_failures: u32,
    /// The counting window and the throttling period.
    pub window: Duration,
    /// Password hashes computed at once (each takes ~19 MiB and a core).
    pub max_concurrent_hashes: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            cache_ttl: Duration::from_secs(300),
            cache_entries: 10_000,
            max_failures: 10,
            window: Duration::from_secs(60),
            max_concurrent_hashes: 4,
        }
    }
}

/// How many times the per-user limit an address may fail.
pub const ADDRESS_FACTOR: u32 = 10;

/// Most keys each throttle table keeps before it forgets expired ones.
const THROTTLE_KEYS: usize = 100_000;

#[derive(Clone, Copy)]
struct Bucket {
    failures: u32,
    since: Instant,
}

/// Failed-login counters per user name and per client address.
struct Throttle {
    max: u32,
    window: Duration,
    users: Mutex<HashMap<String, Bucket>>,
    addrs: Mutex<HashMap<IpAddr, Bucket>>,
}

fn over<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, Bucket>>,
    key: &K,
    max: u32,
    window: Duration,
) -> Option<u64> {
    let map = map.lock();
    let b = map.get(key)?;
    let age = b.since.elapsed();
    (b.failures >= max && age < window).then(|| (window - age).as_secs().max(1))
}

fn bump<K: std::hash::Hash + Eq>(map: &Mutex<HashMap<K, Bucket>>, key: K, window: Duration) {
    let mut map = map.lock();
    if map.len() >= THROTTLE_KEYS {
        map.retain(|_, b| b.since.elapsed() < window);
    }
    let b = map.entry(key).or_insert(Bucket {
        failures: 0,
        since: Instant::now(),
    });
    if b.since.elapsed() >= window {
        *b = Bucket {
            failures: 0,
            since: Instant::now(),
        };
    }
    b.failures += 1;
}

impl Throttle {
    /// `Some(seconds)` to wait if the user name or the address is throttled.
    fn check(&self, user: &str, addr: IpAddr) -> Option<u64> {
        over(&self.users, &user.to_owned(), self.max, self.window).or_else(|| {
            over(
                &self.addrs,
                &addr,
                self.max.saturating_mul(ADDRESS_FACTOR),
                self.window,
            )
        })
    }

    fn failed(&self, user: &str, addr: IpAddr) {
        bump(&self.users, user.to_owned(), self.window);
        bump(&self.addrs, addr, self.window);
    }

    fn succeeded(&self, user: &str) {
        self.users.lock().remove(user);
    }
}

/// The authenticator's state: cache, throttle, hashing slots.
pub(crate) struct Authenticator {
    cache: CredCache,
    throttle: Throttle,
    hashing: tokio::sync::Semaphore,
}

impl Authenticator {
    pub(crate) fn new(config: &AuthConfig) -> Self {
        Authenticator {
            cache: CredCache {
                ttl: config.cache_ttl,
                entries: KeyedCache::new(if config.cache_ttl.is_zero() {
                    0
                } else {
                    config.cache_entries
                }),
            },
            throttle: Throttle {
                max: config.max_failures.max(1),
                window: config.window,
                users: Mutex::new(HashMap::new()),
                addrs: Mutex::new(HashMap::new()),
            },
            hashing: tokio::sync::Semaphore::new(config.max_concurrent_hashes.max(1)),
        }
    }
}

impl Zone {
    /// Authenticates a request from `peer`. Credentials already verified
    /// (cached) pass at once; others are refused while their user name or
    /// address is throttled, and otherwise checked with argon2 on tokio's
    /// blocking pool, at most `max_concurrent_hashes` at a time.
    pub async fn authenticate(
        &self,
        creds: Option<Credentials>,
        peer: IpAddr,
    ) -> Result<Caller, AuthFailure> {
        let (user, password) = match creds {
            None => return Err(AuthFailure::Auth(AuthError::Missing)),
            Some(Credentials::Token(t)) => {
                // A 20.02+ token whose caveats limit single operations only
                // authenticates through `authenticate_request`, which
                // reports those limits to the caller.
                let ctx = super::token_auth::RequestContext::rest(peer);
                let a = self.authenticate_token(&t, &ctx).await?;
                return match a.grant.as_ref().and_then(|g| g.deferred.first()) {
                    None => Ok(a.caller),
                    Some(c) => Err(AuthFailure::Auth(AuthError::Onezone(
                        crate::error::OzError::Token(crate::token::v2::Error::CaveatUnverified(
                            Box::new(crate::token::v2::CaveatFailure {
                                caveat: c.clone(),
                                reason: crate::token::v2::Unsatisfied::OperationNotAllowed,
                            }),
                        )),
                    ))),
                };
            }
            Some(Credentials::Basic { user, password }) => (user, password),
        };
        let a = &self.auth;
        if let Some(id) = self.cached(&user, &password).await? {
            return Ok(Caller::user(id));
        }
        if let Some(wait) = a.throttle.check(&user, peer) {
            return Err(AuthFailure::Throttled(wait));
        }
        let res = self.check_password(&user, &password).await;
        match &res {
            Ok(_) => a.throttle.succeeded(&user),
            Err(AuthFailure::Auth(_)) => a.throttle.failed(&user, peer),
            Err(_) => {}
        }
        res.map(Caller::user)
    }

    /// Checks a user's password (argon2 on the blocking pool, bounded).
    pub async fn check_password(&self, user: &str, password: &str) -> Result<Id, AuthFailure> {
        if password.len() > MAX_PASSWORD {
            return Err(AuthFailure::Auth(AuthError::BadPassword));
        }
        let found = self.store.user_by_name(user).await?;
        let hash = found
            .as_ref()
            .map_or_else(|| decoy_hash().to_owned(), |(_, u)| u.password_hash.clone());
        let ok = self
            .hash_blocking({
                let password = password.to_owned();
                move || Ok(verify_password(&hash, &password))
            })
            .await?;
        match found {
            Some((id, u)) if ok => {
                let c = &self.auth.cache;
                c.entries.insert(
                    c.slot(user, password),
                    CacheEntry {
                        user: id,
                        hash_fingerprint: c.entries.fingerprint(u.password_hash.as_bytes()),
                        until: Instant::now() + c.ttl,
                    },
                );
                Ok(id)
            }
            _ => Err(AuthFailure::Auth(AuthError::BadPassword)),
        }
    }

    /// Runs argon2 work on tokio's blocking pool, at most
    /// `max_concurrent_hashes` at a time.
    pub(crate) async fn hash_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T, AuthFailure> {
        let internal = |what: &str| AuthFailure::Internal(Error::Invalid(what.into()));
        let _permit = self
            .auth
            .hashing
            .acquire()
            .await
            .map_err(|_| internal("authenticator closed"))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|_| internal("password hashing panicked"))?
            .map_err(AuthFailure::Internal)
    }

    async fn cached(&self, user: &str, password: &str) -> Result<Option<Id>, AuthFailure> {
        let c = &self.auth.cache;
        let slot = c.slot(user, password);
        let Some(e) = c.entries.get(&slot).filter(|e| e.until > Instant::now()) else {
            return Ok(None);
        };
        // Honour the entry only while the stored hash is the one it was made for.
        match self.store.user(&e.user).await? {
            Some(u)
                if u.name == user
                    && c.entries
                        .fingerprint(u.password_hash.as_bytes())
                        .matches(&e.hash_fingerprint) =>
            {
                Ok(Some(e.user))
            }
            _ => {
                c.entries.remove(&slot);
                Ok(None)
            }
        }
    }

    /// Authenticates a legacy (18.02) access or provider token, `found` in
    /// the cache already.
    pub(crate) async fn token_caller(
        &self,
        token: &str,
        found: Lookup,
    ) -> Result<Caller, AuthFailure> {
        let (v, exists) = self
            .verify_reading(token, found, true)
            .await
            .map_err(|e| match e {
                Error::Token(t) => AuthFailure::Auth(AuthError::BadToken(t)),
                other => AuthFailure::Internal(other),
            })?;
        let (Some(subject), Some(exists)) = (legacy_subject(&v.record), exists) else {
            return Err(AuthFailure::Auth(AuthError::BadToken(
                TokenError::WrongType,
            )));
        };
        if !exists {
            return Err(AuthFailure::Auth(AuthError::Gone));
        }
        Ok(Caller {
            subject,
            restricted: crate::token::is_attenuated(&v.record, &v.caveats),
        })
    }
}

/// An authentication failure: the client's fault, or ours.
#[derive(Debug)]
pub enum AuthFailure {
    /// The credentials were refused.
    Auth(AuthError),
    /// Too many failed logins for this user name or address: retry after so many seconds.
    Throttled(u64),
    /// The store failed while checking them.
    Internal(Error),
}

impl From<Error> for AuthFailure {
    fn from(e: Error) -> Self {
        AuthFailure::Internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ZonePrivileges;
    use crate::ops::ZoneConfig;
    use crate::store::Store;
    use std::sync::Arc;

    async fn setup(max_failures: u32) -> (Zone, Arc<Store>) {
        let store = Arc::new(Store::memory().await.unwrap());
        for (name, pw) in [("alice", "right"), ("bob", "bobpw")] {
            store
                .create_user(name, hash_password(pw).unwrap(), ZonePrivileges::empty())
                .await
                .unwrap();
        }
        let config = ZoneConfig {
            auth: AuthConfig {
                max_failures,
                ..AuthConfig::default()
            },
            ..ZoneConfig::default()
        };
        (Zone::new(store.clone(), config).await.unwrap(), store)
    }

    fn basic(user: &str, password: &str) -> Option<Credentials> {
        Some(Credentials::Basic {
            user: user.into(),
            password: password.into(),
        })
    }

    const ATTACKER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 9));

    #[tokio::test]
    async fn failed_logins_throttle_the_name_but_not_other_users() {
        let (auth, _) = setup(3).await;
        // alice logs in once: her verified credentials are cached.
        auth.authenticate(basic("alice", "right"), ATTACKER)
            .await
            .unwrap();
        for _ in 0..3 {
            let e = auth
                .authenticate(basic("alice", "guess"), ATTACKER)
                .await
                .unwrap_err();
            assert!(
                matches!(e, AuthFailure::Auth(AuthError::BadPassword)),
                "{e:?}"
            );
        }
        // The name is throttled now, even for the right password from the cache-miss path...
        let e = auth
            .authenticate(basic("alice", "guess"), ATTACKER)
            .await
            .unwrap_err();
        assert!(matches!(e, AuthFailure::Throttled(s) if s >= 1), "{e:?}");
        // ...but alice's already verified credentials still work,
        assert!(auth
            .authenticate(basic("alice", "right"), ATTACKER)
            .await
            .is_ok());
        // and bob, from the same address, is unaffected.
        assert!(auth
            .authenticate(basic("bob", "bobpw"), ATTACKER)
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn an_address_is_throttled_after_many_failures_across_names() {
        let (auth, _) = setup(1).await;
        for i in 0..ADDRESS_FACTOR {
            let e = auth
                .authenticate(basic(&format!("nobody{i}"), "x"), ATTACKER)
                .await
                .unwrap_err();
            assert!(matches!(e, AuthFailure::Auth(_)), "{e:?}");
        }
        let e = auth
            .authenticate(basic("bob", "bobpw"), ATTACKER)
            .await
            .unwrap_err();
        assert!(matches!(e, AuthFailure::Throttled(_)), "{e:?}");
        let elsewhere: IpAddr = "127.0.0.10".parse().unwrap();
        assert!(auth
            .authenticate(basic("bob", "bobpw"), elsewhere)
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn a_password_change_invalidates_cached_credentials() {
        let (auth, store) = setup(10).await;
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        auth.authenticate(basic("alice", "right"), here)
            .await
            .unwrap();
        let (id, _) = store.user_by_name("alice").await.unwrap().unwrap();
        let new_hash = hash_password("new").unwrap();
        store
            .update_user(&id, |u| {
                u.password_hash = new_hash.clone();
                Ok(())
            })
            .await
            .unwrap();
        assert!(auth
            .authenticate(basic("alice", "right"), here)
            .await
            .is_err());
        assert!(auth.authenticate(basic("alice", "new"), here).await.is_ok());
    }
}
