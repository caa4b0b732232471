//! Root keys: kept in `keyid_rootkey`, cached at the keys generation.
//!
//! The newest key is current: new tokens are signed with it. Rotation adds a
//! key; retirement marks an older one so tokens signed with it stop
//! verifying. Both renew the keys generation in the same commit, so every
//! instance reloads on its next verification or mint.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::RngCore;
use serde::Serialize;

use super::generation::Generation;
use super::schema::{GENERATION, ROOT_KEYS};
use super::Store;
use crate::error::{Entity, Error, Result};
use crate::model::{now, RootKey};
use crate::token::keys::KeySource;

/// Public facts about a root key (no secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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

/// The root keys as of one generation. Secrets are never printed.
pub struct KeySet {
    generation: Option<Vec<u8>>,
    keys: BTreeMap<u32, RootKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl KeySet {
    /// The generation these keys were read at (`None`: never renewed).
    pub fn generation(&self) -> Option<&[u8]> {
        self.generation.as_deref()
    }

    /// Facts about every key.
    pub fn list(&self) -> Vec<KeyInfo> {
        let current = self.keys.keys().next_back().copied();
        self.keys
            .iter()
            .map(|(id, k)| KeyInfo {
                id: *id,
                created: k.created,
                retired: k.retired,
                current: Some(*id) == current,
            })
            .collect()
    }
}

impl KeySource for KeySet {
    fn current(&self) -> Option<(u32, [u8; 32])> {
        self.keys
            .iter()
            .next_back()
            .filter(|(_, k)| k.retired.is_none())
            .map(|(id, k)| (*id, k.secret))
    }

    fn secret(&self, id: u32) -> Option<[u8; 32]> {
        self.keys
            .get(&id)
            .filter(|k| k.retired.is_none())
            .map(|k| k.secret)
    }
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

impl Store {
    /// The cached root keys, without reading the store: commits that depend
    /// on them guard on their generation ([`crate::store::Txn::assume`]).
    pub fn cached_root_keys(&self) -> Option<Arc<KeySet>> {
        self.keys.read().clone()
    }

    /// The root keys, checked against the keys generation read now.
    pub async fn root_keys(&self) -> Result<Arc<KeySet>> {
        let generation = self
            .get_raw_many(&[Generation::Keys.key()])
            .await?
            .pop()
            .flatten();
        self.root_keys_at(generation).await
    }

    /// The root keys at `generation` (read by the caller together with other
    /// data): the cache if it is at that generation, else reloaded.
    pub async fn root_keys_at(&self, generation: Option<Vec<u8>>) -> Result<Arc<KeySet>> {
        if let Some(k) = self.keys.read().as_ref() {
            if k.generation == generation {
                return Ok(k.clone());
            }
        }
        // The generation was read before the keys: a change in between only
        // makes the next check reload again.
        let keys: BTreeMap<u32, RootKey> = {
            let (page, _) = self.page(&ROOT_KEYS, &[], None, super::PAGE_MAX).await?;
            page.into_iter().collect()
        };
        let set = Arc::new(KeySet { generation, keys });
        *self.keys.write() = Some(set.clone());
        Ok(set)
    }

    /// Creates the first root key in a store that has none.
    pub async fn ensure_root_key(&self) -> Result<()> {
        self.transact(|mut tx| async move {
            if tx.exists(&ROOT_KEYS, &1).await? {
                return Ok(tx.done(()));
            }
            tx.put(&ROOT_KEYS, &1, &random_key())?;
            Ok(tx.done(()))
        })
        .await
    }

    /// Adds a new current key and returns its id.
    pub async fn rotate_key(&self) -> Result<u32> {
        self.transact(|mut tx| async move {
            // Guarded: concurrent key changes make this run again.
            tx.get(&GENERATION, &"keys").await?;
            let keys = tx.store().root_keys().await?;
            let id = keys.keys.keys().next_back().map_or(1, |k| k + 1);
            if tx.exists(&ROOT_KEYS, &id).await? {
                return Err(Error::Contended);
            }
            tx.put(&ROOT_KEYS, &id, &random_key())?;
            Ok(tx.done(id))
        })
        .await
    }

    /// Retires a key: tokens signed with it stop verifying. The current key
    /// cannot be retired (rotate first).
    pub async fn retire_key(&self, id: u32) -> Result<()> {
        self.transact(|mut tx| async move {
            tx.get(&GENERATION, &"keys").await?;
            let keys = tx.store().root_keys().await?;
            if keys.keys.keys().next_back() == Some(&id) {
                return Err(Error::CurrentKey);
            }
            let mut key = tx
                .get(&ROOT_KEYS, &id)
                .await?
                .ok_or(Error::NotFound(Entity::RootKey))?;
            if key.retired.is_none() {
                key.retired = Some(now());
                tx.put(&ROOT_KEYS, &id, &key)?;
            }
            Ok(tx.done(()))
        })
        .await
    }
}
