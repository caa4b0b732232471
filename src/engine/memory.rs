//! A volatile engine: one `BTreeMap` behind a lock, for tests, fuzzing and
//! embedders that need no persistence.
//!
//! Snapshots share the map copy-on-write: taking one is O(1); the first
//! commit after it copies the map once.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::RwLock;

use super::{
    prefix_end, scan_start, Commit, Engine, EngineError, Limits, Page, Snapshot, Value, Write,
};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// The limits of the memory engine (the same as sled's, so that tests on
/// memory plan the same steps).
pub const LIMITS: Limits = Limits {
    max_guards: 1024,
    max_writes: 4096,
    max_commit_bytes: 8 << 20,
    max_batch_keys: 1024,
    max_page: 1000,
};

/// A volatile engine.
pub struct MemoryEngine {
    map: RwLock<Arc<Map>>,
    limits: Limits,
}

impl Default for MemoryEngine {
    fn default() -> Self {
        MemoryEngine {
            map: RwLock::default(),
            limits: LIMITS,
        }
    }
}

impl MemoryEngine {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty engine that states (and enforces) other limits: tests use
    /// small ones to drive every multi-step plan of the store.
    pub fn with_limits(limits: Limits) -> Self {
        MemoryEngine {
            map: RwLock::default(),
            limits,
        }
    }
}

fn scan_map(map: &Map, prefix: &[u8], after: Option<&[u8]>, limit: usize, max_page: usize) -> Page {
    let limit = limit.clamp(1, max_page);
    let upper = match prefix_end(prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    let mut entries = Vec::new();
    let mut more = false;
    for (k, v) in map.range((scan_start(prefix, after), upper)) {
        if entries.len() == limit {
            more = true;
            break;
        }
        entries.push((k.clone(), v.clone()));
    }
    Page { entries, more }
}

fn get_map(map: &Map, keys: &[&[u8]], limits: &Limits) -> Result<Vec<Option<Value>>, EngineError> {
    if keys.len() > limits.max_batch_keys {
        return Err(EngineError::TooLarge {
            what: "keys in one read",
            limit: limits.max_batch_keys,
        });
    }
    Ok(keys.iter().map(|k| map.get(*k).cloned()).collect())
}

#[async_trait]
impl Engine for MemoryEngine {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn limits(&self) -> Limits {
        self.limits
    }

    async fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Value>>, EngineError> {
        get_map(&self.map.read(), keys, &self.limits)
    }

    async fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page, EngineError> {
        Ok(scan_map(
            &self.map.read(),
            prefix,
            after,
            limit,
            self.limits.max_page,
        ))
    }

    async fn snapshot(&self) -> Result<Box<dyn Snapshot>, EngineError> {
        Ok(Box::new(MemorySnapshot(
            self.map.read().clone(),
            self.limits,
        )))
    }

    async fn commit(&self, commit: Commit) -> Result<(), EngineError> {
        commit.check(&self.limits)?;
        if commit.writes.is_empty() {
            return Ok(());
        }
        let mut guard = self.map.write();
        for g in &commit.guards {
            if guard.get(&g.key) != g.expect.as_ref() {
                return Err(EngineError::Conflict);
            }
        }
        let map = Arc::make_mut(&mut guard);
        for w in commit.writes {
            match w {
                Write::Put(k, v) => {
                    map.insert(k, v);
                }
                Write::Delete(k) => {
                    map.remove(&k);
                }
            }
        }
        Ok(())
    }

    async fn health(&self) -> Result<(), EngineError> {
        Ok(())
    }
}

/// A read point of a [`MemoryEngine`].
struct MemorySnapshot(Arc<Map>, Limits);

#[async_trait]
impl Snapshot for MemorySnapshot {
    async fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Value>>, EngineError> {
        get_map(&self.0, keys, &self.1)
    }

    async fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page, EngineError> {
        Ok(scan_map(&self.0, prefix, after, limit, self.1.max_page))
    }
}
