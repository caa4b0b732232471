//! Root keys: kept in the store, cached in memory, rotated and retired.
//!
//! Every token's secret is derived from one root key and the token's
//! identifier with BLAKE3 in keyed mode, so the store keeps no per-token
//! secret. Rotation adds a key and makes it current; tokens signed with older
//! keys keep verifying until their key is retired.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use rand::RngCore;

use crate::error::{Entity, Error, Result};
use crate::model::{now, RootKey};
use crate::store::Store;

/// Domain separation for token secret derivation.
const DERIVE_CONTEXT: &[u8] = b"ozmint token secret v1\0";

/// Public facts about a root key (no secret).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// Key id.
    pub id: u32,
    /// Creation time, unix seconds.
    pub created: u64,
    /// Retirement time, if retired.
    pub retired: Option<u64>,
    /// Whether new tokens are signed with it.
    pub current: bool,
}

/// The in-memory view of the root keys.
pub struct KeyRing {
    store: Arc<Store>,
    keys: RwLock<BTreeMap<u32, RootKey>>,
}

fn random_key() -> RootKey {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    RootKey {
        secret,
        created: now(),
        retired: None,
    }
}

impl KeyRing {
    /// Loads the keys, creating the first one in a new store.
    pub fn load(store: Arc<Store>) -> Result<Self> {
        let mut keys: BTreeMap<u32, RootKey> = store.root_keys()?.into_iter().collect();
        if keys.is_empty() {
            let key = random_key();
            store.insert_root_key(1, &key)?;
            keys = store.root_keys()?.into_iter().collect();
        }
        Ok(KeyRing {
            store,
            keys: RwLock::new(keys),
        })
    }

    /// The current key: the newest one.
    pub fn current(&self) -> Result<(u32, [u8; 32])> {
        let keys = self.keys.read();
        keys.iter()
            .next_back()
            .map(|(id, k)| (*id, k.secret))
            .ok_or(Error::NotFound(Entity::RootKey))
    }

    /// The secret of a token with `identifier` under key `key_id`, or `None` if
    /// the key is unknown or retired.
    pub fn token_secret(&self, key_id: u32, identifier: &[u8]) -> Option<[u8; 32]> {
        self.root(key_id).map(|root| derive(&root, identifier))
    }

    /// The secret of a key that is not retired.
    pub(crate) fn root(&self, key_id: u32) -> Option<[u8; 32]> {
        let keys = self.keys.read();
        keys.get(&key_id)
            .filter(|k| k.retired.is_none())
            .map(|k| k.secret)
    }

    /// Adds a new current key and returns its id.
    pub fn rotate(&self) -> Result<u32> {
        let mut keys = self.keys.write();
        let id = keys.keys().next_back().map_or(1, |k| k + 1);
        let key = random_key();
        if !self.store.insert_root_key(id, &key)? {
            return Err(Error::AlreadyExists(Entity::RootKey));
        }
        keys.insert(id, key);
        Ok(id)
    }

    /// Retires a key: tokens signed with it stop verifying. The current key
    /// cannot be retired.
    pub fn retire(&self, id: u32) -> Result<()> {
        let mut keys = self.keys.write();
        if keys.keys().next_back() == Some(&id) {
            return Err(Error::CurrentKey);
        }
        let key = keys.get_mut(&id).ok_or(Error::NotFound(Entity::RootKey))?;
        if key.retired.is_none() {
            let mut retired = key.clone();
            retired.retired = Some(now());
            self.store.put_root_key(id, &retired)?;
            *key = retired;
        }
        Ok(())
    }

    /// Facts about every key.
    pub fn list(&self) -> Vec<KeyInfo> {
        let keys = self.keys.read();
        let current = keys.keys().next_back().copied();
        keys.iter()
            .map(|(id, k)| KeyInfo {
                id: *id,
                created: k.created,
                retired: k.retired,
                current: Some(*id) == current,
            })
            .collect()
    }
}

/// Derives a token secret from a root key and the token identifier.
pub fn derive(root: &[u8; 32], identifier: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(root);
    h.update(DERIVE_CONTEXT);
    h.update(identifier);
    *h.finalize().as_bytes()
}
