//! An in-memory engine: a `BTreeMap` per tree behind one lock.

use std::collections::BTreeMap;
use std::ops::Bound;

use parking_lot::RwLock;

use super::engine::{Batch, Engine, EngineError, Entry, TreeName};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// A volatile engine for tests, fuzzing and embedders that need no persistence.
pub struct MemEngine {
    trees: RwLock<Vec<Map>>,
}

impl Default for MemEngine {
    fn default() -> Self {
        MemEngine {
            trees: RwLock::new(vec![Map::new(); TreeName::ALL.len()]),
        }
    }
}

impl MemEngine {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Engine for MemEngine {
    fn get(&self, tree: TreeName, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.trees.read()[tree.index()].get(key).cloned())
    }

    fn scan(
        &self,
        tree: TreeName,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, EngineError> {
        let trees = self.trees.read();
        let lower = match after {
            Some(a) => Bound::Excluded(a.to_vec()),
            None => Bound::Included(prefix.to_vec()),
        };
        Ok(trees[tree.index()]
            .range((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn put(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), EngineError> {
        self.trees.write()[tree.index()].insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn apply(&self, batch: &Batch) -> Result<(), EngineError> {
        let mut trees = self.trees.write();
        for (t, k, v) in batch.ops() {
            match v {
                Some(v) => trees[t.index()].insert(k.clone(), v.clone()),
                None => trees[t.index()].remove(k),
            };
        }
        Ok(())
    }

    fn compare_and_swap(
        &self,
        tree: TreeName,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, EngineError> {
        let mut trees = self.trees.write();
        let map = &mut trees[tree.index()];
        if map.get(key).map(Vec::as_slice) != old {
            return Ok(false);
        }
        match new {
            Some(v) => map.insert(key.to_vec(), v.to_vec()),
            None => map.remove(key),
        };
        Ok(true)
    }

    fn len(&self, tree: TreeName) -> Result<usize, EngineError> {
        Ok(self.trees.read()[tree.index()].len())
    }

    fn flush(&self) -> Result<(), EngineError> {
        Ok(())
    }

    fn size_on_disk(&self) -> u64 {
        0
    }
}
