//! The bounded caches of verified credentials (passwords, tokens), keyed
//! by a keyed BLAKE3 hash.
//!
//! Each cache has a random per-process key: a [`Slot`] (where an entry lives)
//! is the keyed hash of what was presented, a [`Fingerprint`] the keyed hash
//! of a stored secret an entry was made for (an argon2 hash, a token secret),
//! so an entry holds neither the credential nor the secret, and hashes made by
//! one process tell nothing about another's. What an entry is worth is the
//! caller's business: each is honoured only after checking it against what
//! the request reads from the store.
//!
//! quick_cache (behind this module) bounds the entries; its S3-FIFO eviction
//! keeps one-off entries (an invite token consumed once, a mistyped password
//! that happened to verify for another user's name) from pushing out those
//! clients present again and again.

use rand::RngCore;
use subtle::ConstantTimeEq;

/// Where an entry lives: a keyed hash of what was presented.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Slot([u8; 32]);

/// A keyed hash of a stored secret.
#[derive(Clone, Copy)]
pub(crate) struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Whether two fingerprints are equal (in constant time).
    pub(crate) fn matches(&self, other: &Fingerprint) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// A bounded cache of `V` by [`Slot`].
pub(crate) struct KeyedCache<V: Clone> {
    key: [u8; 32],
    entries: Option<quick_cache::sync::Cache<Slot, V>>,
}

impl<V: Clone> KeyedCache<V> {
    /// A cache of at most `capacity` entries (0: none is remembered).
    pub(crate) fn new(capacity: usize) -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        KeyedCache {
            key,
            entries: (capacity > 0).then(|| quick_cache::sync::Cache::new(capacity)),
        }
    }

    /// The slot of what was presented, in `parts` (each length-prefixed, so
    /// that no two lists of parts share a slot).
    pub(crate) fn slot(&self, parts: &[&[u8]]) -> Slot {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        for p in parts {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p);
        }
        Slot(*h.finalize().as_bytes())
    }

    /// The fingerprint of a stored secret.
    pub(crate) fn fingerprint(&self, secret: &[u8]) -> Fingerprint {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(b"fingerprint");
        h.update(secret);
        Fingerprint(*h.finalize().as_bytes())
    }

    /// The entry of `slot`, if remembered.
    pub(crate) fn get(&self, slot: &Slot) -> Option<V> {
        self.entries.as_ref()?.get(slot)
    }

    /// Remembers an entry.
    pub(crate) fn insert(&self, slot: Slot, entry: V) {
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

    /// How many entries are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, |e| e.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_differ_per_input_and_per_process_key() {
        let (a, b) = (KeyedCache::<u32>::new(4), KeyedCache::<u32>::new(4));
        assert!(a.slot(&[b"tok"]) == a.slot(&[b"tok"]));
        assert!(a.slot(&[b"tok"]) != a.slot(&[b"tok2"]));
        // Parts are length-prefixed: ("ab", "c") is not ("a", "bc").
        assert!(a.slot(&[b"ab", b"c"]) != a.slot(&[b"a", b"bc"]));
        // Another instance has another key: its slots tell nothing about ours.
        assert!(a.slot(&[b"tok"]) != b.slot(&[b"tok"]));
        assert!(a.fingerprint(b"s").matches(&a.fingerprint(b"s")));
        assert!(!a.fingerprint(b"s").matches(&a.fingerprint(b"t")));
    }

    #[test]
    fn entries_are_bounded_and_a_zero_capacity_remembers_nothing() {
        let cache = KeyedCache::new(100);
        for i in 0..1000u32 {
            cache.insert(cache.slot(&[&i.to_le_bytes()]), i);
        }
        assert!(cache.len() <= 100, "{} entries", cache.len());
        let off = KeyedCache::new(0);
        off.insert(off.slot(&[b"t"]), 1);
        assert!(off.get(&off.slot(&[b"t"])).is_none());
        let s = cache.slot(&[b"x"]);
        cache.insert(s, 7);
        assert_eq!(cache.get(&s), Some(7));
        cache.remove(&s);
        assert!(cache.get(&s).is_none());
    }
}
