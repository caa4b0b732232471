//! Tokens this instance has verified, remembered by their serialized form.
//!
//! Verifying a token is a parse (base64, the macaroon's packets, the
//! identifier) and an HMAC chain, then reads and checks that depend on the
//! moment: the token's record or secret, the caveats against the request,
//! the subject. Only the first part is remembered. For a serialized token
//! that verified once, an entry holds its parse and under what its signature
//! matched: a legacy token's root key id and the root keys' generation, a
//! 20.02+ token's secret (its keyed BLAKE3 fingerprint, never the secret).
//!
//! A later request presenting the very same string (found by its [`Slot`],
//! a keyed BLAKE3 hash of it with a random per-process key) still makes
//! every read a verification makes and runs every check but two: the parse,
//! and the signature while the key id and keys' generation, or the secret's
//! fingerprint, it reads are the entry's. So a revocation, a key rotation or
//! retirement, a new temporary-token generation or a deleted subject, made
//! through any instance on the store, is honoured on the very next request;
//! a string that differs in one byte (another signature) is another slot.
//!
//! quick_cache (behind this module) bounds the entries; its S3-FIFO eviction
//! keeps one-off tokens (an invite consumed once) from pushing out the
//! access tokens clients present again and again.

use std::sync::Arc;

use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::model::{Id, Subject};
use crate::token::v2::Token;
use crate::token::Caveat;

/// Where a serialized token's entry lives: a keyed hash of the string.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Slot([u8; 32]);

/// A keyed fingerprint of a 20.02+ token's secret.
#[derive(Clone, Copy)]
pub(crate) struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Whether two fingerprints are equal (in constant time).
    pub(crate) fn matches(&self, other: &Fingerprint) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

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

/// The cache.
pub(crate) struct TokenCache {
    key: [u8; 32],
    entries: Option<quick_cache::sync::Cache<Slot, Entry>>,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens (0: none is remembered).
    pub(crate) fn new(capacity: usize) -> TokenCache {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        TokenCache {
            key,
            entries: (capacity > 0).then(|| quick_cache::sync::Cache::new(capacity)),
        }
    }

    /// The slot of a serialized token.
    pub(crate) fn slot(&self, serialized: &str) -> Slot {
        Slot(*blake3::keyed_hash(&self.key, serialized.as_bytes()).as_bytes())
    }

    /// The fingerprint of a secret.
    pub(crate) fn fingerprint(&self, secret: &[u8]) -> Fingerprint {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(b"secret");
        h.update(secret);
        Fingerprint(*h.finalize().as_bytes())
    }

    /// The entry of `slot`, if remembered.
    pub(crate) fn get(&self, slot: &Slot) -> Option<Entry> {
        self.entries.as_ref()?.get(slot)
    }

    /// Remembers an entry.
    pub(crate) fn insert(&self, slot: Slot, entry: Entry) {
        if let Some(e) = &self.entries {
            e.insert(slot, entry);
        }
    }

    /// Forgets an entry (one that no longer holds).
    pub(crate) fn remove(&self, slot: &Slot) {
        if let Some(e) = &self.entries {
            e.remove(slot);
        }
    }

    /// How many tokens are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, |e| e.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_differ_per_string_and_per_process_key() {
        let (a, b) = (TokenCache::new(4), TokenCache::new(4));
        assert!(a.slot("tok") == a.slot("tok"));
        assert!(a.slot("tok") != a.slot("tok2"));
        // Another instance has another key: its slots tell nothing about ours.
        assert!(a.slot("tok") != b.slot("tok"));
        assert!(a.fingerprint(b"s").matches(&a.fingerprint(b"s")));
        assert!(!a.fingerprint(b"s").matches(&a.fingerprint(b"t")));
    }

    #[test]
    fn entries_are_bounded_and_a_zero_capacity_remembers_nothing() {
        let legacy = |i: u32| {
            Entry::Legacy(Arc::new(Legacy {
                id: Id::random(),
                key_id: i,
                keys_generation: None,
                caveats: Vec::new(),
                subject: None,
            }))
        };
        let seen = TokenCache::new(100);
        for i in 0..1000 {
            seen.insert(seen.slot(&i.to_string()), legacy(i));
        }
        assert!(seen.len() <= 100, "{} entries", seen.len());
        let off = TokenCache::new(0);
        off.insert(off.slot("t"), legacy(0));
        assert!(off.get(&off.slot("t")).is_none());
        let s = seen.slot("x");
        seen.insert(s, legacy(1));
        assert!(seen.get(&s).is_some());
        seen.remove(&s);
        assert!(seen.get(&s).is_none());
    }
}
