//! Tokens this instance has verified, remembered by their serialized form.
//!
//! Verifying a token is a parse (base64, the macaroon's packets, the
//! identifier) and an HMAC chain, then reads and checks that depend on the
//! moment: the token's record or secret, the caveats against the request,
//! the subject. Only the first part is remembered. For a serialized token
//! that verified once, an entry holds its parse and under what its signature
//! matched: a legacy token's root key id and the root keys' generation, a
//! 20.02+ token's secret (its [`Fingerprint`], never the secret).
//!
//! A later request presenting the very same string (its slot: see
//! [`super::cache`]) still makes every read a verification makes and runs
//! every check but two: the parse, and the signature while the key id and
//! keys' generation, or the secret's fingerprint, it reads are the entry's.
//! So a revocation, a key rotation or retirement, a new temporary-token
//! generation or a deleted subject, made through any instance on the store,
//! is honoured on the very next request; a string that differs in one byte
//! (another signature) has another slot.

use std::sync::Arc;

use super::cache::{Fingerprint, KeyedCache, Slot};
use crate::model::{Id, Subject};
use crate::token::v2::Token;
use crate::token::Caveat;

/// What verifying a legacy token established.
pub(crate) struct Legacy {
    /// Its identifier.
    pub id: Id,
    /// The root key its signature matched under...
    pub key_id: u32,
    /// ...at this generation of the root keys.
    pub keys_generation: Option<Vec<u8>>,
    /// Its caveats, parsed.
    pub caveats: Vec<Caveat>,
    /// The subject it authenticates (access and provider tokens), read
    /// together with its record on the next requests.
    pub subject: Option<Subject>,
}

/// What verifying a 20.02+ token established.
pub(crate) struct Modern {
    /// The token, parsed.
    pub token: Arc<Token>,
    /// Its signature matched the secret of this fingerprint.
    pub signed_by: Fingerprint,
}

/// An entry.
#[derive(Clone)]
pub(crate) enum Entry {
    /// A legacy (18.02) token.
    Legacy(Arc<Legacy>),
    /// A 20.02+ token.
    Modern(Arc<Modern>),
}

/// The cache of verified tokens, by the slot of their serialized form.
pub(crate) type TokenCache = KeyedCache<Entry>;

/// A serialized token's slot and what is remembered there: looked up once
/// per request and handed down to whichever verification the token takes.
pub(crate) struct Lookup {
    /// The slot of the serialized token.
    pub slot: Slot,
    /// Its entry, if remembered.
    pub entry: Option<Entry>,
}

impl TokenCache {
    /// Looks a serialized token up.
    pub(crate) fn lookup(&self, serialized: &str) -> Lookup {
        let slot = self.slot(&[serialized.as_bytes()]);
        Lookup {
            entry: self.get(&slot),
            slot,
        }
    }
}
