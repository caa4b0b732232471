//! The sled 0.34 engine: one sled tree per [`TreeName`].

use std::path::Path;

use super::engine::{Batch, Engine, EngineError, Entry, TreeName};

/// Options for opening a sled database.
#[derive(Clone, Debug)]
pub struct SledOptions {
    /// Page cache size in bytes (sled's default of 1 GiB is far too much for a token server).
    pub cache_bytes: u64,
    /// Background flush interval in milliseconds (`None`: only explicit flushes).
    pub flush_every_ms: Option<u64>,
}

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            cache_bytes: 64 * 1024 * 1024,
            flush_every_ms: Some(500),
        }
    }
}

/// A sled database holding all trees.
pub struct SledEngine {
    db: sled::Db,
    trees: Vec<sled::Tree>,
}

fn err(e: sled::Error) -> EngineError {
    EngineError(e.to_string())
}

impl SledEngine {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path, opts: &SledOptions) -> Result<Self, EngineError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(opts.cache_bytes)
            .flush_every_ms(opts.flush_every_ms)
            .open()
            .map_err(err)?;
        Self::from_db(db)
    }

    /// A throw-away database in a temporary directory (removed on drop).
    pub fn temporary() -> Result<Self, EngineError> {
        Self::from_db(sled::Config::new().temporary(true).open().map_err(err)?)
    }

    fn from_db(db: sled::Db) -> Result<Self, EngineError> {
        let trees = TreeName::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        Ok(SledEngine { db, trees })
    }

    fn tree(&self, t: TreeName) -> &sled::Tree {
        &self.trees[t.index()]
    }
}

impl Engine for SledEngine {
    fn get(&self, tree: TreeName, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.tree(tree).get(key).map_err(err)?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        tree: TreeName,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, EngineError> {
        let t = self.tree(tree);
        let iter = match after {
            Some(a) => {
                t.range::<&[u8], _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
            }
            None => t.range::<&[u8], _>(prefix..),
        };
        let mut out = Vec::new();
        for item in iter {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(err)?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn put(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), EngineError> {
        self.tree(tree).insert(key, value).map_err(err)?;
        Ok(())
    }

    fn apply(&self, batch: &Batch) -> Result<(), EngineError> {
        let mut involved: Vec<TreeName> = batch.ops().iter().map(|op| op.0).collect();
        involved.sort();
        involved.dedup();
        match involved.as_slice() {
            [] => Ok(()),
            [only] => {
                let mut b = sled::Batch::default();
                for (_, k, v) in batch.ops() {
                    match v {
                        Some(v) => b.insert(k.as_slice(), v.as_slice()),
                        None => b.remove(k.as_slice()),
                    }
                }
                self.tree(*only).apply_batch(b).map_err(err)
            }
            many => {
                let trees: Vec<&sled::Tree> = many.iter().map(|t| self.tree(*t)).collect();
                trees
                    .as_slice()
                    .transaction(|views| {
                        for (t, k, v) in batch.ops() {
                            let pos = many.iter().position(|m| m == t).unwrap_or(0);
                            match v {
                                Some(v) => {
                                    views[pos].insert(k.as_slice(), v.as_slice())?;
                                }
                                None => {
                                    views[pos].remove(k.as_slice())?;
                                }
                            }
                        }
                        Ok(())
                    })
                    .map_err(|e: sled::transaction::TransactionError<()>| match e {
                        sled::transaction::TransactionError::Storage(e) => err(e),
                        sled::transaction::TransactionError::Abort(()) => {
                            EngineError("transaction aborted".into())
                        }
                    })
            }
        }
    }

    fn compare_and_swap(
        &self,
        tree: TreeName,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, EngineError> {
        Ok(self
            .tree(tree)
            .compare_and_swap(key, old, new)
            .map_err(err)?
            .is_ok())
    }

    fn len(&self, tree: TreeName) -> Result<usize, EngineError> {
        Ok(self.tree(tree).len())
    }

    fn flush(&self) -> Result<(), EngineError> {
        self.db.flush().map_err(err)?;
        Ok(())
    }

    fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

use sled::Transactional as _;
