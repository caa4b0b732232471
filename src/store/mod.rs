//! The store: users, groups, spaces, providers, their relations, token records
//! and root keys, on any [`Engine`].
//!
//! - Reads go straight to the engine and never block on writers.
//! - Writes that must read before they write (membership changes, cycle checks,
//!   consumption, revocation) are serialised by one writer lock and applied as
//!   one atomic [`Batch`], so a reader never sees half of a change.
//! - Durability: in [`Durability::Durable`] mode (the default) every write
//!   method returns only after the write is on disk; concurrent writers share
//!   one flush (group commit). Async callers write with the `_unsynced`
//!   methods and await [`Store::committed_async`], which holds no thread while
//!   it waits. In [`Durability::Relaxed`] mode the engine flushes in the
//!   background and a crash can lose the last interval.
//!
//! Key layouts of all trees are documented on [`TreeName`].

mod dataset;
mod engine;
mod entities;
mod maintenance;
mod mem_engine;
mod relations;
mod sled_engine;
mod tokens;

use std::path::Path;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, MutexGuard};

pub use dataset::{
    Dataset, DatasetGroup, DatasetMember, DatasetProvider, DatasetSpace, DatasetSupport,
    DatasetUser, Privs,
};
pub use engine::{Batch, Engine, EngineError, Entry, Op, TreeName};
pub use mem_engine::MemEngine;
pub use relations::{
    Relation, GROUP_CHILDREN, GROUP_USERS, SPACE_GROUPS, SPACE_PROVIDERS, SPACE_USERS,
};
pub use sled_engine::{SledEngine, SledOptions};
pub use tokens::TOKENS_PAGE_MAX;

use crate::codec::{self, Record};
use crate::error::{Error, Result};
use crate::model::Id;

/// When writes reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Every acknowledged write survives a crash (grouped flushes).
    Durable,
    /// Writes are flushed in the background; a crash can lose the last interval.
    Relaxed,
}

/// The largest page a list call returns.
pub const PAGE_MAX: usize = 1000;

/// Serialises flushes so that concurrent writers share one (group commit).
/// Whoever finds no flush running leads the next one, for every write issued
/// so far; the others wait for it (threads on the condvar, async tasks on the
/// watch channel, which counts finished flushes).
struct GroupCommit {
    state: Mutex<CommitState>,
    done: Condvar,
    finished: tokio::sync::watch::Sender<u64>,
}

impl Default for GroupCommit {
    fn default() -> Self {
        GroupCommit {
            state: Mutex::default(),
            done: Condvar::new(),
            finished: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// What a writer waiting for durability should do next.
enum Turn {
    /// Its write is durable.
    Done,
    /// Lead a flush of everything issued up to this ticket.
    Lead(u64),
    /// Another flush is running: wait for it to finish, then look again.
    Wait,
}

#[derive(Default)]
struct CommitState {
    /// Tickets handed out to writers whose data is written but maybe not flushed.
    issued: u64,
    /// Every ticket up to this one is durable.
    flushed: u64,
    /// A leader is flushing right now.
    flushing: bool,
}

impl GroupCommit {
    /// A ticket covering every write made before the call.
    fn ticket(&self) -> u64 {
        let mut st = self.state.lock();
        st.issued += 1;
        st.issued
    }

    fn turn(st: &mut CommitState, ticket: u64) -> Turn {
        if st.flushed >= ticket {
            Turn::Done
        } else if st.flushing {
            Turn::Wait
        } else {
            st.flushing = true;
            Turn::Lead(st.issued)
        }
    }

    /// Flushes for everything issued up to `target` (the caller won [`Turn::Lead`]).
    fn lead(
        &self,
        target: u64,
        engine: &dyn Engine,
        observe: Option<&FlushObserver>,
    ) -> Result<()> {
        let started = std::time::Instant::now();
        let res = engine.flush();
        if let Some(f) = observe {
            f(started.elapsed());
        }
        let mut st = self.state.lock();
        st.flushing = false;
        if res.is_ok() {
            st.flushed = st.flushed.max(target);
        }
        drop(st);
        self.done.notify_all();
        self.finished.send_modify(|n| *n += 1);
        Ok(res?)
    }

    /// Blocks until everything written before the call is durable.
    fn sync(&self, engine: &dyn Engine, observe: Option<&FlushObserver>) -> Result<()> {
        let ticket = self.ticket();
        let mut st = self.state.lock();
        loop {
            match Self::turn(&mut st, ticket) {
                Turn::Done => return Ok(()),
                Turn::Wait => self.done.wait(&mut st),
                Turn::Lead(target) => {
                    drop(st);
                    self.lead(target, engine, observe)?;
                    st = self.state.lock();
                }
            }
        }
    }
}

/// Called with the duration of every flush (for metrics).
pub type FlushObserver = Box<dyn Fn(std::time::Duration) + Send + Sync>;

/// The store. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Store {
    engine: Arc<dyn Engine>,
    writer: Mutex<()>,
    commit: GroupCommit,
    durability: Durability,
    graph: relations::GraphCache,
    flush_observer: std::sync::OnceLock<FlushObserver>,
}

/// Current on-disk schema version, kept in the `meta` tree. Version 1 (the
/// first release) stored groups without their type; opening such a store
/// migrates it (see [`migrate_v1`]).
const SCHEMA: u8 = 2;

impl Store {
    /// Opens a sled store in `dir` (created if missing).
    pub fn open(dir: &Path, opts: &SledOptions, durability: Durability) -> Result<Self> {
        let engine = SledEngine::open(dir, opts)?;
        Self::with_engine(Arc::new(engine), durability)
    }

    /// A store on a volatile in-memory engine.
    pub fn memory() -> Self {
        // The memory engine cannot fail to initialise.
        Self::with_engine(Arc::new(MemEngine::new()), Durability::Relaxed)
            .unwrap_or_else(|_| unreachable!("memory engine never fails"))
    }

    /// A store on any engine.
    pub fn with_engine(engine: Arc<dyn Engine>, durability: Durability) -> Result<Self> {
        match engine.get(TreeName::Meta, b"schema")?.as_deref() {
            None => engine.put(TreeName::Meta, b"schema", &[SCHEMA])?,
            Some([SCHEMA]) => {}
            Some([1]) => migrate_v1(engine.as_ref())?,
            Some(other) => {
                return Err(Error::Corrupt {
                    tree: TreeName::Meta.name(),
                    error: codec::CodecError::UnknownVersion(other.first().copied().unwrap_or(0)),
                })
            }
        }
        Ok(Store {
            engine,
            writer: Mutex::new(()),
            commit: GroupCommit::default(),
            durability,
            graph: relations::GraphCache::default(),
            flush_observer: std::sync::OnceLock::new(),
        })
    }

    /// The durability mode.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The engine (for benchmarks and tools).
    pub fn engine(&self) -> &dyn Engine {
        self.engine.as_ref()
    }

    /// Bytes used on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.engine.size_on_disk()
    }

    /// Makes every write so far durable, whatever the mode.
    pub fn flush(&self) -> Result<()> {
        self.commit
            .sync(self.engine.as_ref(), self.flush_observer.get())
    }

    /// Sets the function told the duration of every flush (once; later calls are ignored).
    pub fn observe_flushes(&self, f: FlushObserver) {
        let _ = self.flush_observer.set(f);
    }

    /// In durable mode, waits until every write so far is on disk; in relaxed
    /// mode returns at once. Every write method calls it before returning;
    /// callers that acknowledge a state they only read (an idempotent no-op
    /// write) call it too, since that state may come from a write in flight.
    pub fn committed(&self) -> Result<()> {
        match self.durability {
            Durability::Durable => self.flush(),
            Durability::Relaxed => Ok(()),
        }
    }

    /// [`Store::committed`] for async callers: waits for durability without
    /// holding a thread. Concurrent callers share one flush, which runs on
    /// tokio's blocking pool (call from within a tokio runtime).
    pub async fn committed_async(self: &Arc<Self>) -> Result<()> {
        if self.durability == Durability::Relaxed {
            return Ok(());
        }
        let commit = &self.commit;
        let ticket = commit.ticket();
        loop {
            // Subscribed before looking, so a flush ending in between is seen.
            let mut finished = commit.finished.subscribe();
            let turn = GroupCommit::turn(&mut commit.state.lock(), ticket);
            match turn {
                Turn::Done => return Ok(()),
                Turn::Wait => {
                    // The sender lives as long as `self`, which we hold.
                    let _ = finished.changed().await;
                }
                Turn::Lead(target) => {
                    // The flush runs to its end even if this task is dropped,
                    // so the leadership is always handed back.
                    let store = self.clone();
                    tokio::task::spawn_blocking(move || {
                        let observe = store.flush_observer.get();
                        store.commit.lead(target, store.engine.as_ref(), observe)
                    })
                    .await
                    .map_err(|e| Error::Engine(EngineError(format!("flush task failed: {e}"))))??;
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.writer.lock()
    }

    fn get_rec<T: Record>(&self, tree: TreeName, key: &[u8]) -> Result<Option<T>> {
        match self.engine.get(tree, key)? {
            None => Ok(None),
            Some(bytes) => decode(tree, &bytes).map(Some),
        }
    }

    fn scan_keys(&self, tree: TreeName, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .engine
            .scan(tree, prefix, None, usize::MAX)?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    /// Reads a page of `(id, record)` from a tree keyed by ids.
    fn page<T: Record>(
        &self,
        tree: TreeName,
        prefix: &[u8],
        after: Option<Id>,
        limit: usize,
    ) -> Result<Vec<(Id, T)>> {
        let after_key = after.map(|a| [prefix, a.as_bytes()].concat());
        self.engine
            .scan(tree, prefix, after_key.as_deref(), limit.min(PAGE_MAX))?
            .into_iter()
            .map(|(k, v)| Ok((key_id(tree, &k[prefix.len()..])?, decode(tree, &v)?)))
            .collect()
    }
}

/// Schema 1 -> 2: every group record gains its type (`role`, which is what
/// schema 1 reported for every group). One atomic batch with the new schema
/// number, flushed before the store is used: a crash leaves either schema.
fn migrate_v1(engine: &dyn Engine) -> Result<()> {
    #[derive(bincode::Encode, bincode::Decode)]
    struct GroupV1 {
        name: String,
        created: u64,
    }
    let tree = TreeName::GroupIdGroup;
    let mut batch = Batch::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = engine.scan(tree, &[], after.as_deref(), PAGE_MAX)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (key, value) in &page {
            let old: GroupV1 = decode(tree, value)?;
            let group = crate::model::Group {
                name: old.name,
                kind: crate::model::GroupType::Role,
                created: old.created,
            };
            batch.put(tree, key.clone(), encode(tree, &group)?);
        }
    }
    batch.put(TreeName::Meta, b"schema".to_vec(), vec![SCHEMA]);
    engine.apply(&batch)?;
    engine.flush()?;
    Ok(())
}

fn decode<T: Record>(tree: TreeName, bytes: &[u8]) -> Result<T> {
    codec::decode(bytes).map_err(|error| Error::Corrupt {
        tree: tree.name(),
        error,
    })
}

fn encode<T: Record>(tree: TreeName, value: &T) -> Result<Vec<u8>> {
    codec::encode(value).map_err(|error| Error::Corrupt {
        tree: tree.name(),
        error,
    })
}

fn key_id(tree: TreeName, bytes: &[u8]) -> Result<Id> {
    Id::from_slice(bytes).ok_or(Error::Corrupt {
        tree: tree.name(),
        error: codec::CodecError::Malformed,
    })
}

fn pair(a: &Id, b: &Id) -> [u8; 64] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(a.as_bytes());
    k[32..].copy_from_slice(b.as_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine whose flushes are slow, counted, and fail on demand.
    #[derive(Default)]
    struct SlowFlush {
        inner: MemEngine,
        flushes: std::sync::atomic::AtomicUsize,
        fail_next: std::sync::atomic::AtomicBool,
    }

    const FLUSH_TIME: std::time::Duration = std::time::Duration::from_millis(150);

    impl Engine for SlowFlush {
        fn get(&self, t: TreeName, k: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
            self.inner.get(t, k)
        }
        fn scan(
            &self,
            t: TreeName,
            p: &[u8],
            a: Option<&[u8]>,
            l: usize,
        ) -> Result<Vec<Entry>, EngineError> {
            self.inner.scan(t, p, a, l)
        }
        fn put(&self, t: TreeName, k: &[u8], v: &[u8]) -> Result<(), EngineError> {
            self.inner.put(t, k, v)
        }
        fn apply(&self, b: &Batch) -> Result<(), EngineError> {
            self.inner.apply(b)
        }
        fn compare_and_swap(
            &self,
            t: TreeName,
            k: &[u8],
            o: Option<&[u8]>,
            n: Option<&[u8]>,
        ) -> Result<bool, EngineError> {
            self.inner.compare_and_swap(t, k, o, n)
        }
        fn len(&self, t: TreeName) -> Result<usize, EngineError> {
            self.inner.len(t)
        }
        fn flush(&self) -> Result<(), EngineError> {
            std::thread::sleep(FLUSH_TIME);
            self.flushes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self
                .fail_next
                .swap(false, std::sync::atomic::Ordering::SeqCst)
            {
                return Err(EngineError("disk full".into()));
            }
            Ok(())
        }
        fn size_on_disk(&self) -> u64 {
            0
        }
    }

    /// Async waiters share flushes with each other and with threads; a
    /// waiter dropped while leading does not strand the others; a failed
    /// flush fails its waiters and the next flush works.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_commits_group_and_recover_from_cancellation_and_errors() {
        use std::sync::atomic::Ordering::SeqCst;
        let engine = Arc::new(SlowFlush::default());
        let store = Arc::new(Store::with_engine(engine.clone(), Durability::Durable).unwrap());
        async fn within<F: std::future::Future>(f: F) -> F::Output {
            let limit = std::time::Duration::from_secs(10);
            tokio::time::timeout(limit, f).await.expect("a waiter hung")
        }

        // 32 async writers and 4 blocking ones: a flush takes 150 ms, so all
        // of them join the first or the second flush.
        let mut tasks = Vec::new();
        for i in 0..32u8 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.engine.put(TreeName::Meta, &[i], b"v").unwrap();
                s.committed_async().await
            }));
        }
        for i in 32..36u8 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                tokio::task::spawn_blocking(move || {
                    s.engine.put(TreeName::Meta, &[i], b"v").unwrap();
                    s.committed()
                })
                .await
                .unwrap()
            }));
        }
        for t in tasks {
            within(t).await.unwrap().unwrap();
        }
        let grouped = engine.flushes.load(SeqCst);
        assert!(
            (1..=3).contains(&grouped),
            "36 writers took {grouped} flushes"
        );

        // A leader dropped mid-flush: its flush still ends and hands over.
        let s = store.clone();
        let dropped =
            tokio::time::timeout(std::time::Duration::from_millis(10), s.committed_async()).await;
        assert!(dropped.is_err(), "the flush outlasted the timeout");
        within(store.committed_async()).await.unwrap();

        // A failed flush is reported to its waiters; the next one succeeds.
        engine.fail_next.store(true, SeqCst);
        let err = within(store.committed_async()).await.unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        within(store.committed_async()).await.unwrap();
    }

    /// A schema-1 store (groups without a type) opens as schema 2 with every
    /// group of type `role`; other records are untouched.
    #[test]
    fn schema_1_groups_are_migrated() {
        #[derive(bincode::Encode, bincode::Decode)]
        struct GroupV1 {
            name: String,
            created: u64,
        }
        let engine = Arc::new(MemEngine::new());
        engine.put(TreeName::Meta, b"schema", &[1]).unwrap();
        let ids: Vec<Id> = (0..1500).map(|_| Id::random()).collect();
        for (i, id) in ids.iter().enumerate() {
            let old = GroupV1 {
                name: format!("g{i}"),
                created: 7,
            };
            let bytes = codec::encode(&old).unwrap();
            engine
                .put(TreeName::GroupIdGroup, id.as_bytes(), &bytes)
                .unwrap();
        }
        let store = Store::with_engine(engine.clone(), Durability::Durable).unwrap();
        assert_eq!(
            engine.get(TreeName::Meta, b"schema").unwrap(),
            Some(vec![SCHEMA])
        );
        for (i, id) in ids.iter().enumerate() {
            let g = store.group(id).unwrap().expect("group kept");
            assert_eq!(g.name, format!("g{i}"));
            assert_eq!(g.kind, crate::model::GroupType::Role);
            assert_eq!(g.created, 7);
        }
        assert!(store.check().unwrap().is_empty());
        // Opening again is a no-op.
        drop(store);
        Store::with_engine(engine, Durability::Durable).unwrap();
    }

    #[test]
    fn an_unknown_schema_is_refused() {
        let engine = Arc::new(MemEngine::new());
        engine.put(TreeName::Meta, b"schema", &[9]).unwrap();
        let err = Store::with_engine(engine, Durability::Durable)
            .err()
            .expect("refused");
        assert!(err.to_string().contains('9'), "{err}");
    }
}
