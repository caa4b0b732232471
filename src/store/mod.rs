//! The store: users, groups, spaces, providers, their relations, token
//! records and root keys, on any [`Engine`].
//!
//! - [`schema`]: every key layout, once, as typed tables.
//! - [`txn`]: transactions guarded by what they read, retried on conflict.
//!   Every method here that reads before it writes is one transaction, so
//!   its invariant holds for any number of `Store` instances on one engine.
//! - [`generation`]: caches (reached groups, root keys) validated against
//!   generations renewed in the same commit as the change.
//! - entities, relations, tokens, keys, named (20.02+ named tokens and
//!   temporary-token secrets): the operations on each kind of data.
//! - [`maintenance`]: chunked purging, backup copies, the consistency check.
//! - [`migrate`]: schema migrations, in chunks.
//! - [`dataset`]: whole data sets in and out (JSON).
//!
//! Durability: writes made on behalf of a request commit with the store's
//! durability (immediate unless the store is relaxed); bulk loads choose
//! eventual durability and flush at the end.

mod dataset;
mod entities;
pub mod generation;
mod keys;
pub mod maintenance;
pub mod migrate;
mod named;
mod relations;
pub mod schema;
mod tokens;
pub mod txn;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

pub use dataset::{
    Dataset, DatasetGroup, DatasetMember, DatasetProvider, DatasetSpace, DatasetSupport,
    DatasetUser, ImportMode, Privs,
};
pub use entities::{MAX_NAME, MAX_USERNAME};
pub use keys::{KeyInfo, KeySet};
pub use named::subject_entity;
pub(crate) use relations::{
    effective_group_privileges_in, effective_space_privileges_in, require_in,
};
pub use relations::{
    Relation, GROUP_CHILDREN_REL, GROUP_USERS_REL, SPACE_GROUPS_REL, SPACE_PROVIDERS_REL,
    SPACE_USERS_REL,
};
pub use txn::{Done, Txn};

use crate::engine::memory::MemoryEngine;
use crate::engine::sled::{SledEngine, SledOptions};
use crate::engine::{Commit, Durability, Engine, EngineStats};
use crate::error::{Entity, Result};
use crate::model::Id;
use generation::Generation;
use schema::{KeyPart, StoredValue, Table};

/// The largest page a list call returns.
pub const PAGE_MAX: usize = 1000;

/// How long opening a sled store waits for a lock that a database closed
/// by this process still holds.
pub const OPEN_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// When the writes of requests reach durable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityMode {
    /// Every acknowledged write survives a crash (concurrent writes share one flush).
    Durable,
    /// Writes are flushed in the background; a crash can lose the last interval.
    Relaxed,
}

impl DurabilityMode {
    /// The durability of the commits of requests.
    pub fn commits(self) -> Durability {
        match self {
            DurabilityMode::Durable => Durability::Immediate,
            DurabilityMode::Relaxed => Durability::Eventual,
        }
    }
}

/// The store. Share it behind an `Arc`; every method takes `&self`.
pub struct Store {
    engine: Arc<dyn Engine>,
    durability: Durability,
    /// Groups each user reaches, with the graph generation they were computed at.
    reach: Mutex<HashMap<Id, Reach>>,
    /// The root keys, with their generation.
    keys: RwLock<Option<Arc<KeySet>>>,
    /// Told the duration of every durable commit (metrics).
    commit_observer: std::sync::OnceLock<CommitObserver>,
}

/// Called with the duration of every durable commit.
pub type CommitObserver = Box<dyn Fn(std::time::Duration) + Send + Sync>;

/// The groups a user reaches, with the graph generation they were computed at.
type Reach = (Vec<u8>, Arc<[Id]>);

/// Entries kept in the reach cache before it is cleared wholesale.
const REACH_CACHE_MAX: usize = 65_536;

impl Store {
    /// Opens a store on any engine: checks (or writes) the schema version,
    /// runs pending migrations, finishes interrupted deletions.
    pub async fn open(engine: Arc<dyn Engine>, mode: DurabilityMode) -> Result<Store> {
        migrate::to_current(engine.as_ref()).await?;
        let store = Store {
            engine,
            durability: mode.commits(),
            reach: Mutex::new(HashMap::new()),
            keys: RwLock::new(None),
            commit_observer: std::sync::OnceLock::new(),
        };
        store.finish_deletions().await?;
        Ok(store)
    }

    /// Opens (or creates) a sled store in `dir`; a store written by an older
    /// release (one sled tree per table) is migrated first. A directory still
    /// locked by a database this process just closed is waited for (at most
    /// [`OPEN_LOCK_WAIT`]).
    pub async fn open_sled(dir: &Path, opts: &SledOptions, mode: DurabilityMode) -> Result<Store> {
        let engine = SledEngine::open_waiting(dir, opts, OPEN_LOCK_WAIT).await?;
        migrate::from_sled_trees(&engine).await?;
        Self::open(Arc::new(engine), mode).await
    }

    /// A store on a new in-memory engine.
    pub async fn memory() -> Result<Store> {
        Self::open(Arc::new(MemoryEngine::new()), DurabilityMode::Durable).await
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// The durability of the store's request commits.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Facts about the engine (size on disk).
    pub fn stats(&self) -> EngineStats {
        self.engine.stats()
    }

    /// Whether the engine can serve reads and writes now.
    pub async fn health(&self) -> Result<()> {
        Ok(self.engine.health().await?)
    }

    /// Makes everything committed so far durable, whatever the mode.
    pub async fn sync(&self) -> Result<()> {
        Ok(self
            .engine
            .commit(Commit::new(Vec::new(), Vec::new(), Durability::Immediate))
            .await?)
    }

    /// Sets the function told the duration of every durable commit (once).
    pub fn observe_commits(&self, f: CommitObserver) {
        let _ = self.commit_observer.set(f);
    }

    /// Reads one value.
    pub async fn get<K: KeyPart, V: StoredValue>(
        &self,
        table: &Table<K, V>,
        key: &K,
    ) -> Result<Option<V>> {
        let k = table.key(key);
        match self.engine.get_many(&[&k]).await?.pop().flatten() {
            Some(raw) => table.decode(&raw).map(Some),
            None => Ok(None),
        }
    }

    /// Reads raw values of several engine keys in as few engine calls as the
    /// engine's limits allow (one, usually).
    pub(crate) async fn get_raw_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(self.engine.limits().max_batch_keys) {
            let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            out.extend(self.engine.get_many(&refs).await?);
        }
        Ok(out)
    }

    /// Whether an entity exists.
    pub async fn exists(&self, kind: Entity, id: &Id) -> Result<bool> {
        let Some(key) = schema::entity_key(kind, id) else {
            return Ok(false);
        };
        Ok(self.engine.get_many(&[&key]).await?[0].is_some())
    }

    /// Which of `ids` exist as entities of `kind` (one batched read).
    pub async fn existing(&self, kind: Entity, ids: &[Id]) -> Result<Vec<bool>> {
        let keys: Vec<Vec<u8>> = ids
            .iter()
            .filter_map(|id| schema::entity_key(kind, id))
            .collect();
        Ok(self
            .get_raw_many(&keys)
            .await?
            .into_iter()
            .map(|v| v.is_some())
            .collect())
    }

    /// A page of `(key, value)` of `table` under `sub` (a key prefix after
    /// the table's), strictly after `after` (a whole key), at most `limit`.
    /// Returns the entries and whether more follow.
    pub(crate) async fn page<K: KeyPart, V: StoredValue>(
        &self,
        table: &Table<K, V>,
        sub: &[u8],
        after: Option<&K>,
        limit: usize,
    ) -> Result<(Vec<(K, V)>, bool)> {
        let mut prefix = table.prefix();
        prefix.extend_from_slice(sub);
        let after = after.map(|a| table.key(a));
        let page = self
            .engine
            .scan(&prefix, after.as_deref(), limit.clamp(1, PAGE_MAX))
            .await?;
        let entries = page
            .entries
            .iter()
            .map(|(k, v)| Ok((table.decode_key(k)?, table.decode(v)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok((entries, page.more))
    }

    /// Every key of `table` under `sub`, page by page (for cascades and
    /// closures; bounded by what is stored).
    pub(crate) async fn all_keys<K: KeyPart, V: StoredValue>(
        &self,
        table: &Table<K, V>,
        sub: &[u8],
    ) -> Result<Vec<K>> {
        let mut prefix = table.prefix();
        prefix.extend_from_slice(sub);
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self
                .engine
                .scan(&prefix, after.as_deref(), PAGE_MAX)
                .await?;
            for (k, _) in &page.entries {
                out.push(table.decode_key(k)?);
            }
            match page.next_after() {
                Some(a) => after = Some(a.to_vec()),
                None => return Ok(out),
            }
        }
    }

    /// Drops local caches of the given generations (after this instance
    /// committed a change to them; other instances notice by reading them).
    fn forget(&self, generations: &[Generation]) {
        for g in generations {
            match g {
                Generation::Graph => self.reach.lock().clear(),
                Generation::Keys => *self.keys.write() = None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_store_has_the_current_schema_and_opens_again() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
        let store = Store::open(engine.clone(), DurabilityMode::Durable)
            .await
            .unwrap();
        assert_eq!(
            store.get(&schema::META, &"schema").await.unwrap(),
            Some(vec![migrate::SCHEMA])
        );
        drop(store);
        Store::open(engine, DurabilityMode::Durable).await.unwrap();
    }
}
