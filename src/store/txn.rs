//! Transactions: read, decide, commit guarded by what was read, retry on conflict.
//!
//! A [`Txn`] remembers every value it read. Its commit carries one guard per
//! read (the key must still hold what was read, or still be absent), so a
//! decision made from stale data never reaches the store: the engine refuses
//! the commit and [`Store::transact`] runs the whole function again on fresh
//! data, a bounded number of times. This is what keeps exactly-once
//! consumption, unique names, cycle-free groups and read-modify-writes correct
//! for any number of `Store` instances on one engine, in one process or many.
//!
//! A commit that changes what a cache depends on renews that cache's
//! generation in the same commit ([`super::generation`]), so every instance
//! notices on its next read.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use rand::Rng;

use super::generation::Generation;
use super::schema::{KeyPart, StoredValue, Table};
use super::Store;
use crate::engine::{Commit, Durability, EngineError, Guard, Write};
use crate::error::{Error, Result};

/// How many times a transaction runs before it gives up with [`Error::Contended`].
pub const MAX_ATTEMPTS: u32 = 16;

/// An open transaction (see the module documentation).
pub struct Txn<'s> {
    store: &'s Store,
    /// Every key read, with what it held (`None`: absent). Each becomes a guard.
    reads: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Every key written, last write wins (`None`: delete).
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    durability: Durability,
}

/// What a transaction function returns: the transaction to commit and its result.
pub struct Done<'s, T> {
    tx: Txn<'s>,
    value: T,
}

impl<'s> Txn<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Txn {
            store,
            reads: BTreeMap::new(),
            writes: BTreeMap::new(),
            durability: store.durability,
        }
    }

    /// Ends the function: commit what was written, then return `value`.
    pub fn done<T>(self, value: T) -> Done<'s, T> {
        Done { tx: self, value }
    }

    /// The store.
    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// Commits with `durability` instead of the store's default (bulk loads).
    pub fn set_durability(&mut self, durability: Durability) {
        self.durability = durability;
    }

    /// Reads a value; the commit is guarded by what was read.
    pub async fn get<K: KeyPart, V: StoredValue>(
        &mut self,
        table: &Table<K, V>,
        key: &K,
    ) -> Result<Option<V>> {
        let raw = self.get_raw(table.key(key)).await?;
        raw.map(|b| table.decode(&b)).transpose()
    }

    /// Reads several values of one table in one engine call, guarded.
    pub async fn get_many<K: KeyPart, V: StoredValue>(
        &mut self,
        table: &Table<K, V>,
        keys: &[K],
    ) -> Result<Vec<Option<V>>> {
        let raw: Vec<Vec<u8>> = keys.iter().map(|k| table.key(k)).collect();
        self.read_raw(&raw)
            .await?
            .into_iter()
            .map(|v| v.map(|b| table.decode(&b)).transpose())
            .collect()
    }

    /// Reads keys of any tables, in their engine form, in one engine call
    /// (per [`crate::engine::Limits::max_batch_keys`]), guarded.
    pub(crate) async fn read_raw(&mut self, raw: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut missing: Vec<&[u8]> = raw
            .iter()
            .filter(|k| !self.writes.contains_key(*k) && !self.reads.contains_key(*k))
            .map(Vec::as_slice)
            .collect();
        missing.sort_unstable();
        missing.dedup();
        let limit = self.store.engine.limits().max_batch_keys;
        for chunk in missing.chunks(limit) {
            let got = self.store.engine.get_many(chunk).await?;
            for (k, v) in chunk.iter().zip(got) {
                self.reads.insert(k.to_vec(), v);
            }
        }
        Ok(raw
            .iter()
            .map(|k| {
                let v = self.writes.get(k).or_else(|| self.reads.get(k));
                v.cloned().flatten()
            })
            .collect())
    }

    /// Whether a value exists (guarded like [`Txn::get`]).
    pub async fn exists<K: KeyPart, V: StoredValue>(
        &mut self,
        table: &Table<K, V>,
        key: &K,
    ) -> Result<bool> {
        Ok(self.get_raw(table.key(key)).await?.is_some())
    }

    async fn get_raw(&mut self, key: Vec<u8>) -> Result<Option<Vec<u8>>> {
        if let Some(w) = self.writes.get(&key) {
            return Ok(w.clone());
        }
        if let Some(r) = self.reads.get(&key) {
            return Ok(r.clone());
        }
        let v = self.store.engine.get_many(&[&key]).await?.pop().flatten();
        self.reads.insert(key, v.clone());
        Ok(v)
    }

    /// Guards the commit on a value the caller knows without reading it
    /// (e.g. a cached generation): one guard, no round trip.
    pub fn assume<K: KeyPart, V: StoredValue>(
        &mut self,
        table: &Table<K, V>,
        key: &K,
        raw: Option<Vec<u8>>,
    ) {
        self.reads.entry(table.key(key)).or_insert(raw);
    }

    /// Writes a value.
    pub fn put<K: KeyPart, V: StoredValue>(
        &mut self,
        table: &Table<K, V>,
        key: &K,
        value: &V,
    ) -> Result<()> {
        self.writes
            .insert(table.key(key), Some(table.encode(value)?));
        Ok(())
    }

    /// Deletes a value (an absent one too).
    pub fn delete<K: KeyPart, V: StoredValue>(&mut self, table: &Table<K, V>, key: &K) {
        self.writes.insert(table.key(key), None);
    }

    /// Deletes a key given in its engine form (cascades).
    pub(crate) fn delete_raw(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Number of writes so far (for planning within the engine's limits).
    pub fn write_count(&self) -> usize {
        self.writes.len()
    }

    async fn commit(self) -> Result<(), EngineError> {
        let mut writes: Vec<Write> = Vec::with_capacity(self.writes.len() + 2);
        let mut renew: Vec<Generation> = Vec::new();
        for (k, v) in self.writes {
            for g in Generation::covering(&k) {
                if !renew.contains(&g) {
                    renew.push(g);
                }
            }
            writes.push(match v {
                Some(v) => Write::Put(k, v),
                None => Write::Delete(k),
            });
        }
        for g in &renew {
            let key = g.key();
            if !writes.iter().any(|w| w.key() == key.as_slice()) {
                writes.push(Write::Put(key, Generation::fresh_value()));
            }
        }
        let guards = if writes.is_empty() {
            Vec::new()
        } else {
            self.reads
                .into_iter()
                .map(|(key, expect)| Guard { key, expect })
                .collect()
        };
        let durable = self.durability == Durability::Immediate && !writes.is_empty();
        let started = std::time::Instant::now();
        let res = self
            .store
            .engine
            .commit(Commit::new(guards, writes, self.durability))
            .await;
        if durable {
            if let Some(f) = self.store.commit_observer.get() {
                f(started.elapsed());
            }
        }
        if res.is_ok() && !renew.is_empty() {
            self.store.forget(&renew);
        }
        res
    }
}

/// Sleeps before the next attempt: exponential from 1 ms to 64 ms, with jitter.
async fn backoff(attempt: u32) {
    let base = 1u64 << attempt.min(6);
    let jitter = rand::thread_rng().gen_range(0..=base);
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

impl Store {
    /// Runs `f` in a transaction and commits what it wrote, guarded by what it
    /// read. On a conflict `f` runs again on fresh data, at most
    /// [`MAX_ATTEMPTS`] times in all ([`Error::Contended`] after that). An
    /// error from `f` commits nothing.
    ///
    /// `f` takes the transaction by value and hands it back through
    /// [`Txn::done`]:
    ///
    /// ```ignore
    /// store.transact(|mut tx| async move {
    ///     let n = tx.get(&COUNTERS, &id).await?.unwrap_or(0);
    ///     tx.put(&COUNTERS, &id, &(n + 1))?;
    ///     Ok(tx.done(n + 1))
    /// }).await
    /// ```
    pub async fn transact<'s, T, F, Fut>(&'s self, mut f: F) -> Result<T>
    where
        F: FnMut(Txn<'s>) -> Fut,
        Fut: Future<Output = Result<Done<'s, T>>>,
    {
        let mut attempt = 0;
        loop {
            let Done { tx, value } = f(Txn::new(self)).await?;
            match tx.commit().await {
                Ok(()) => return Ok(value),
                Err(EngineError::Conflict) if attempt + 1 < MAX_ATTEMPTS => {
                    backoff(attempt).await;
                    attempt += 1;
                }
                Err(EngineError::Conflict) => return Err(Error::Contended),
                Err(e) => return Err(e.into()),
            }
        }
    }
}
