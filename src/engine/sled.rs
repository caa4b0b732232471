//! The sled 0.34 engine: the default, on disk.
//!
//! - One flat keyspace in sled's default tree.
//! - Commits: one writer thread applies them. It takes every commit waiting
//!   for it (a group), checks each one's guards in order against the store
//!   as the earlier commits of the group leave it, and applies the writes of
//!   all that pass as one sled batch: each commit is atomic against every
//!   other commit and every reader. One thread is this engine's way of making
//!   "check guards, then write" one step (a replicated engine does the same
//!   with a transaction); callers never depend on it for anything else. The
//!   async tasks that commit only wait (sled makes a batch wait while a flush
//!   runs; that wait is the writer's, not the runtime's), and commits that
//!   arrive during a flush go out together in the next batch.
//! - Durability: [`Durability::Immediate`] commits wait for a flush; the
//!   flushes of concurrent commits are shared (group commit): whoever finds no
//!   flush running leads one, on tokio's blocking pool, for every commit
//!   applied so far, and the others await it without holding a thread.
//!   [`Durability::Eventual`] commits are flushed by sled in the background
//!   (every `flush_every_ms`).
//! - Snapshots: while one is open, each commit first records the old value of
//!   every key it writes in the snapshot (a before-image); reads through the
//!   snapshot prefer before-images over the live tree. No writer waits for a
//!   reader.
//! - Out of space: sled keeps failing every write once a write hit ENOSPC,
//!   even after space is freed. The engine then answers writes with
//!   [`EngineError::Full`] at once and keeps serving reads; once the
//!   filesystem has room again it reopens the database by itself (sled
//!   recovers everything flushed) and writes work again.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use super::{
    prefix_end, scan_start, Commit, Durability, Engine, EngineError, EngineStats, Entry, Limits,
    Page, Snapshot, Value,
};

/// The limits of the sled engine.
pub const LIMITS: Limits = Limits {
    max_guards: 1024,
    max_writes: 4096,
    max_commit_bytes: 8 << 20,
    max_batch_keys: 1024,
    max_page: 1000,
};

/// Free space the filesystem must have again before a full store is reopened.
pub const REOPEN_FREE_BYTES: u64 = 4 << 20;

/// How often a full store checks whether it can reopen.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// Options for opening a sled database.
#[derive(Clone, Debug)]
pub struct SledOptions {
    /// Page cache size in bytes (sled's default of 1 GiB is far too much for a token server).
    pub cache_bytes: u64,
    /// Background flush interval in milliseconds, for [`Durability::Eventual`] commits.
    pub flush_every_ms: u64,
}

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            cache_bytes: 64 * 1024 * 1024,
            flush_every_ms: 500,
        }
    }
}

/// The sled engine. Cheap to clone handles to (it is an `Arc` inside).
#[derive(Clone)]
pub struct SledEngine {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where the database lives; `None` for a temporary one (never reopened).
    dir: Option<PathBuf>,
    opts: SledOptions,
    /// The open database; replaced when a full store is reopened (`None`
    /// while a reopen failed: calls answer unavailable until one works).
    db: RwLock<Option<Arc<::sled::Db>>>,
    /// Makes "check guards, record before-images, apply" one step.
    commit_lock: Mutex<()>,
    /// Odd while a commit's batch is being applied (a sequence lock that
    /// lets multi-key reads see whole commits without taking the lock).
    seq: AtomicU64,
    snapshots: Mutex<Vec<Weak<SnapState>>>,
    group: GroupCommit,
    /// Set while writes fail for lack of space.
    full: Mutex<Option<Full>>,
    /// The writer thread's queue.
    writer: std::sync::mpsc::Sender<Pending>,
}

/// A commit waiting for the writer thread, and where its outcome goes: the
/// applied count to wait for durability at, or why it was not applied.
struct Pending {
    commit: Commit,
    done: tokio::sync::oneshot::Sender<Result<u64, EngineError>>,
}

/// Most commits, and writes, the writer applies as one batch.
const GROUP_COMMITS: usize = 256;
const GROUP_WRITES: usize = 2048;

struct Full {
    why: String,
    last_try: Instant,
    /// Free bytes when writes started failing (sled can fail with room left:
    /// it writes whole segments).
    free_then: u64,
}

fn io(e: ::sled::Error) -> EngineError {
    match e {
        ::sled::Error::Io(io) if is_full(&io) => EngineError::Full(io.to_string()),
        ::sled::Error::Io(io) => EngineError::Io(io.to_string()),
        ::sled::Error::Corruption { .. } => EngineError::Corrupt("sled reports corruption".into()),
        other => EngineError::Io(other.to_string()),
    }
}

fn is_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.raw_os_error() == Some(28)
        || e.to_string().contains("No space left on device")
}

impl SledEngine {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path, opts: &SledOptions) -> Result<Self, EngineError> {
        let db = Self::open_db(dir, opts)?;
        Self::from_db(Some(dir.to_path_buf()), opts.clone(), db)
    }

    /// Opens like [`open`](Self::open), but while the directory is locked
    /// tries again for up to `wait`: a database dropped by this very process
    /// keeps its lock until sled's flush thread next wakes (up to
    /// `flush_every_ms` later), so a reopen right after a close needs a
    /// moment. Then the lock error as [`open`](Self::open) answers it.
    pub async fn open_waiting(
        dir: &Path,
        opts: &SledOptions,
        wait: Duration,
    ) -> Result<Self, EngineError> {
        let deadline = Instant::now() + wait;
        loop {
            match Self::open(dir, opts) {
                Err(EngineError::Unavailable(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                other => return other,
            }
        }
    }

    /// A throw-away database in a temporary directory (removed on drop).
    pub fn temporary() -> Result<Self, EngineError> {
        let db = ::sled::Config::new().temporary(true).open().map_err(io)?;
        Self::from_db(None, SledOptions::default(), db)
    }

    fn open_db(dir: &Path, opts: &SledOptions) -> Result<::sled::Db, EngineError> {
        ::sled::Config::new()
            .path(dir)
            .cache_capacity(opts.cache_bytes)
            .flush_every_ms(Some(opts.flush_every_ms.max(1)))
            .open()
            .map_err(|e| match e {
                ::sled::Error::Io(ref io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock") =>
                {
                    EngineError::Unavailable(format!(
                        "{} is in use by another process",
                        dir.display()
                    ))
                }
                e => io(e),
            })
    }

    fn from_db(
        dir: Option<PathBuf>,
        opts: SledOptions,
        db: ::sled::Db,
    ) -> Result<Self, EngineError> {
        let (writer, queue) = std::sync::mpsc::channel();
        let inner = Arc::new(Inner {
            dir,
            opts,
            db: RwLock::new(Some(Arc::new(db))),
            commit_lock: Mutex::new(()),
            seq: AtomicU64::new(0),
            snapshots: Mutex::new(Vec::new()),
            group: GroupCommit::default(),
            full: Mutex::new(None),
            writer,
        });
        // The thread holds the engine weakly: it ends when the last handle
        // is dropped (the queue's sender goes with it).
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("ozmint-sled-writer".into())
            .spawn(move || write_groups(weak, queue))
            .map_err(|e| EngineError::Io(format!("cannot start the writer thread: {e}")))?;
        Ok(SledEngine { inner })
    }

    fn db(&self) -> Result<Arc<::sled::Db>, EngineError> {
        self.inner.db.read().clone().ok_or_else(|| {
            EngineError::Unavailable(
                "the store is being reopened after running out of space".into(),
            )
        })
    }

    /// Names of sled trees other than the default one: the per-table trees of
    /// stores written before the flat keyspace (schema 2 and older).
    pub fn legacy_trees(&self) -> Result<Vec<String>, EngineError> {
        Ok(self
            .db()?
            .tree_names()
            .into_iter()
            .filter(|n| n.as_ref() != b"__sled__default")
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .collect())
    }

    /// Up to `limit` entries of a legacy tree, after `after`.
    pub fn legacy_page(
        &self,
        tree: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, EngineError> {
        let t = self.db()?.open_tree(tree).map_err(io)?;
        let start = match after {
            Some(a) => Bound::Excluded(a.to_vec()),
            None => Bound::Unbounded,
        };
        t.range::<Vec<u8>, _>((start, Bound::Unbounded))
            .take(limit)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(io))
            .collect()
    }

    /// Removes a legacy tree (after its entries were migrated).
    pub fn drop_legacy_tree(&self, tree: &str) -> Result<(), EngineError> {
        self.db()?.drop_tree(tree).map_err(io)?;
        Ok(())
    }

    /// How many flushes the engine has led so far (group commits make this
    /// smaller than the number of durable commits).
    pub fn flush_count(&self) -> u64 {
        self.inner.group.flushes.load(Ordering::Relaxed)
    }

    /// Flushes everything written so far (shared with concurrent commits).
    pub async fn flush(&self) -> Result<(), EngineError> {
        let applied = self.inner.group.applied.load(Ordering::Acquire);
        self.wait_durable(applied).await
    }

    fn mark_full(&self, why: &EngineError) {
        if let EngineError::Full(text) = why {
            let mut full = self.inner.full.lock();
            if full.is_none() {
                tracing::warn!(error = %text, "the store is out of space; writes fail until space is freed");
                let free_then = self.inner.dir.as_deref().and_then(free_bytes).unwrap_or(0);
                *full = Some(Full {
                    why: text.clone(),
                    last_try: Instant::now(),
                    free_then,
                });
            }
        }
    }

    /// While full: `Err(Full)`, unless the filesystem has room again and the
    /// database could be reopened (checked at most once a second).
    async fn check_full(&self) -> Result<(), EngineError> {
        let (why, free_then) = {
            let mut full = self.inner.full.lock();
            let Some(f) = full.as_mut() else {
                return Ok(());
            };
            if f.last_try.elapsed() < REOPEN_EVERY {
                return Err(EngineError::Full(f.why.clone()));
            }
            f.last_try = Instant::now();
            (f.why.clone(), f.free_then)
        };
        let this = self.clone();
        let reopened = tokio::task::spawn_blocking(move || this.try_reopen(free_then))
            .await
            .map_err(|e| EngineError::Io(format!("reopen task failed: {e}")))?;
        match reopened {
            Ok(true) => {
                *self.inner.full.lock() = None;
                tracing::info!("the store has space again and was reopened; writes work again");
                Ok(())
            }
            Ok(false) => Err(EngineError::Full(why)),
            Err(e) => {
                tracing::warn!(error = %e, "reopening the full store failed; retrying");
                Err(EngineError::Full(why))
            }
        }
    }

    /// Reopens the database if its filesystem has room again: at least
    /// [`REOPEN_FREE_BYTES`] more than when writes started failing. Runs with
    /// the commit lock held, so no commit sees a half-swapped engine; readers
    /// wait for the swap.
    fn try_reopen(&self, free_then: u64) -> Result<bool, EngineError> {
        let Some(dir) = &self.inner.dir else {
            return Ok(false);
        };
        let needed = free_then.saturating_add(REOPEN_FREE_BYTES);
        if free_bytes(dir).is_some_and(|free| free < needed) {
            return Ok(false);
        }
        let _commits = self.inner.commit_lock.lock();
        let mut slot = self.inner.db.write();
        if let Some(db) = slot.as_ref() {
            // Readers hold clones only for the length of one call; wait for them.
            let deadline = Instant::now() + Duration::from_secs(2);
            while Arc::strong_count(db) > 1 {
                if Instant::now() > deadline {
                    return Ok(false);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        // Close the poisoned database (releasing its file lock), then open it
        // again: sled recovers everything that was flushed. Until that works
        // every call answers unavailable (never an empty store).
        *slot = None;
        let mut tries = 0;
        let db = loop {
            match Self::open_db(dir, &self.inner.opts) {
                Ok(db) => break db,
                Err(e) if tries >= 10 => return Err(e),
                Err(_) => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        *slot = Some(Arc::new(db));
        Ok(true)
    }

    /// Waits until every commit counted up to `applied` is durable.
    async fn wait_durable(&self, applied: u64) -> Result<(), EngineError> {
        let group = &self.inner.group;
        loop {
            // Subscribed before looking, so a flush ending in between is seen.
            let mut finished = group.finished.subscribe();
            let turn = {
                let mut st = group.state.lock();
                if st.durable >= applied {
                    return Ok(());
                }
                if st.flushing {
                    None
                } else {
                    st.flushing = true;
                    Some(group.applied.load(Ordering::Acquire))
                }
            };
            match turn {
                None => {
                    // The sender lives as long as the engine, which we hold.
                    let _ = finished.changed().await;
                }
                Some(target) => {
                    // The flush runs to its end even if this task is dropped,
                    // so the leadership is always handed back.
                    let this = self.clone();
                    let res = tokio::task::spawn_blocking(move || this.lead_flush(target))
                        .await
                        .map_err(|e| EngineError::Io(format!("flush task failed: {e}")))?;
                    if let Err(e) = res {
                        self.mark_full(&e);
                        return Err(e);
                    }
                }
            }
        }
    }

    fn lead_flush(&self, target: u64) -> Result<(), EngineError> {
        let res = self.db().and_then(|db| db.flush().map(|_| ()).map_err(io));
        self.inner.group.flushes.fetch_add(1, Ordering::Relaxed);
        let group = &self.inner.group;
        {
            let mut st = group.state.lock();
            st.flushing = false;
            if res.is_ok() {
                st.durable = st.durable.max(target);
            }
        }
        group.finished.send_modify(|n| *n += 1);
        res
    }

    /// Applies a group of commits (see the module documentation): each
    /// commit's outcome, `Ok` with the applied count to wait for durability at.
    fn apply_group(&self, group: &[Pending]) -> Vec<Result<u64, EngineError>> {
        let _lock = self.inner.commit_lock.lock();
        let db = match self.db() {
            Ok(db) => db,
            Err(e) => return vec![Err(e); group.len()],
        };
        // What the keys written so far in this group hold (`None`: deleted).
        let mut overlay: std::collections::HashMap<&[u8], Option<&[u8]>> =
            std::collections::HashMap::new();
        let mut outcomes: Vec<Option<Result<u64, EngineError>>> = Vec::with_capacity(group.len());
        for p in group {
            let mut verdict = None;
            for g in &p.commit.guards {
                let now = match overlay.get(g.key.as_slice()) {
                    Some(v) => v.map(<[u8]>::to_vec),
                    None => match db.get(&g.key) {
                        Ok(v) => v.map(|v| v.to_vec()),
                        Err(e) => {
                            verdict = Some(Err(io(e)));
                            break;
                        }
                    },
                };
                if now.as_deref() != g.expect.as_deref() {
                    verdict = Some(Err(EngineError::Conflict));
                    break;
                }
            }
            if verdict.is_none() {
                for w in &p.commit.writes {
                    overlay.insert(w.key(), w.value());
                }
            }
            outcomes.push(verdict);
        }
        if !overlay.is_empty() {
            let applied = self.apply_batch(&db, &overlay);
            for o in outcomes.iter_mut().filter(|o| o.is_none()) {
                *o = Some(applied.clone());
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Err(EngineError::Conflict)))
            .collect()
    }

    /// Writes a group's final values as one batch (before-images first).
    fn apply_batch(
        &self,
        db: &::sled::Db,
        values: &std::collections::HashMap<&[u8], Option<&[u8]>>,
    ) -> Result<u64, EngineError> {
        self.record_before_images(db, values.keys().copied())?;
        let mut batch = ::sled::Batch::default();
        for (k, v) in values {
            match v {
                Some(v) => batch.insert(*k, *v),
                None => batch.remove(*k),
            }
        }
        self.inner.seq.fetch_add(1, Ordering::SeqCst);
        let applied = db.apply_batch(batch).map_err(io);
        self.inner.seq.fetch_add(1, Ordering::SeqCst);
        applied?;
        Ok(self.inner.group.applied.fetch_add(1, Ordering::AcqRel) + 1)
    }

    /// Runs a multi-key read so that it sees every commit whole: retried
    /// while commits land in between, then under the commit lock.
    fn consistent<T>(&self, read: impl Fn() -> Result<T, EngineError>) -> Result<T, EngineError> {
        let seq = &self.inner.seq;
        for _ in 0..16 {
            let start = seq.load(Ordering::SeqCst);
            if start % 2 == 0 {
                let out = read()?;
                if seq.load(Ordering::SeqCst) == start {
                    return Ok(out);
                }
            }
            std::thread::yield_now();
        }
        let _lock = self.inner.commit_lock.lock();
        read()
    }

    /// Gives every open snapshot the old value of each key about to be written.
    fn record_before_images<'k>(
        &self,
        db: &::sled::Db,
        keys: impl Iterator<Item = &'k [u8]>,
    ) -> Result<(), EngineError> {
        let mut snaps = self.inner.snapshots.lock();
        snaps.retain(|s| s.strong_count() > 0);
        let live: Vec<Arc<SnapState>> = snaps.iter().filter_map(Weak::upgrade).collect();
        drop(snaps);
        if live.is_empty() {
            return Ok(());
        }
        for key in keys {
            let old = db.get(key).map_err(io)?.map(|v| v.to_vec());
            for s in &live {
                s.before
                    .lock()
                    .entry(key.to_vec())
                    .or_insert_with(|| old.clone());
            }
        }
        Ok(())
    }
}

/// The writer thread: applies the commits queued for it, a group at a time,
/// until the engine is gone.
fn write_groups(inner: Weak<Inner>, queue: std::sync::mpsc::Receiver<Pending>) {
    while let Ok(first) = queue.recv() {
        let mut writes = first.commit.writes.len();
        let mut group = vec![first];
        while group.len() < GROUP_COMMITS && writes < GROUP_WRITES {
            match queue.try_recv() {
                Ok(p) => {
                    writes += p.commit.writes.len();
                    group.push(p);
                }
                Err(_) => break,
            }
        }
        let outcomes = match inner.upgrade() {
            Some(inner) => SledEngine { inner }.apply_group(&group),
            None => {
                vec![Err(EngineError::Unavailable("the engine was closed".into())); group.len()]
            }
        };
        for (p, outcome) in group.into_iter().zip(outcomes) {
            // A commit whose caller went away is applied all the same.
            let _ = p.done.send(outcome);
        }
    }
}

/// Free bytes for unprivileged users on the filesystem holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

fn read_many(db: &::sled::Db, keys: &[&[u8]]) -> Result<Vec<Option<Value>>, EngineError> {
    if keys.len() > LIMITS.max_batch_keys {
        return Err(EngineError::TooLarge {
            what: "keys in one read",
            limit: LIMITS.max_batch_keys,
        });
    }
    keys.iter()
        .map(|k| db.get(k).map(|v| v.map(|v| v.to_vec())).map_err(io))
        .collect()
}

fn upper(prefix: &[u8]) -> Bound<Vec<u8>> {
    match prefix_end(prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    }
}

/// Up to `n` live entries in `(start, end)`.
fn live_range(
    db: &::sled::Db,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    n: usize,
) -> Result<Vec<Entry>, EngineError> {
    db.range::<Vec<u8>, _>((start, end))
        .take(n)
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(io))
        .collect()
}

#[async_trait]
impl Engine for SledEngine {
    fn name(&self) -> &'static str {
        "sled"
    }

    fn limits(&self) -> Limits {
        LIMITS
    }

    async fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Value>>, EngineError> {
        let db = self.db()?;
        if keys.len() < 2 {
            return read_many(&db, keys);
        }
        self.consistent(|| read_many(&db, keys))
    }

    async fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page, EngineError> {
        let limit = limit.clamp(1, LIMITS.max_page);
        let db = self.db()?;
        let mut entries = self
            .consistent(|| live_range(&db, scan_start(prefix, after), upper(prefix), limit + 1))?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        Ok(Page { entries, more })
    }

    async fn snapshot(&self) -> Result<Box<dyn Snapshot>, EngineError> {
        let state = Arc::new(SnapState::default());
        // Under the commit lock: no commit is between its before-images and its batch.
        let _lock = self.inner.commit_lock.lock();
        self.inner.snapshots.lock().push(Arc::downgrade(&state));
        Ok(Box::new(SledSnapshot {
            engine: self.clone(),
            state,
        }))
    }

    async fn commit(&self, commit: Commit) -> Result<(), EngineError> {
        commit.check(&LIMITS)?;
        let durability = commit.durability;
        let applied = if commit.writes.is_empty() {
            self.inner.group.applied.load(Ordering::Acquire)
        } else {
            self.check_full().await?;
            let (done, outcome) = tokio::sync::oneshot::channel();
            self.inner
                .writer
                .send(Pending { commit, done })
                .map_err(|_| EngineError::Unavailable("the writer thread stopped".into()))?;
            let applied = outcome
                .await
                .map_err(|_| EngineError::Io("the writer thread stopped".into()))?;
            match applied {
                Ok(a) => a,
                Err(e) => {
                    self.mark_full(&e);
                    return Err(e);
                }
            }
        };
        match durability {
            Durability::Immediate => self.wait_durable(applied).await,
            Durability::Eventual => Ok(()),
        }
    }

    async fn health(&self) -> Result<(), EngineError> {
        self.check_full().await
    }

    fn stats(&self) -> EngineStats {
        EngineStats {
            bytes_on_disk: self.db().map_or(0, |db| db.size_on_disk().unwrap_or(0)),
        }
    }
}

/// Shares flushes between concurrent commits.
#[derive(Default)]
struct GroupCommit {
    /// Commits applied so far (each waits for a flush covering its count).
    applied: AtomicU64,
    state: Mutex<FlushState>,
    /// Counts finished flushes; waiters watch it.
    finished: watch::Sender<u64>,
    /// Flushes led so far.
    flushes: AtomicU64,
}

#[derive(Default)]
struct FlushState {
    /// Every commit counted up to this is durable.
    durable: u64,
    /// A leader is flushing right now.
    flushing: bool,
}

/// The before-images of one open snapshot: the value each key had when the
/// snapshot was taken, for every key written since (`None`: it was absent).
#[derive(Default)]
struct SnapState {
    before: Mutex<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
}

struct SledSnapshot {
    engine: SledEngine,
    state: Arc<SnapState>,
}

#[async_trait]
impl Snapshot for SledSnapshot {
    async fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Value>>, EngineError> {
        // Live first, then the before-images: a commit records its
        // before-images before it writes, so a value read live that a commit
        // has already replaced always has its before-image by now.
        let live = read_many(&*self.engine.db()?, keys)?;
        let before = self.state.before.lock();
        Ok(keys
            .iter()
            .zip(live)
            .map(|(k, v)| match before.get(*k) {
                Some(old) => old.clone(),
                None => v,
            })
            .collect())
    }

    async fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page, EngineError> {
        let limit = limit.clamp(1, LIMITS.max_page);
        let db = self.engine.db()?;
        let end = upper(prefix);
        let mut cursor = scan_start(prefix, after);
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        loop {
            let want = limit + 1 - entries.len();
            let live = live_range(&db, cursor.clone(), end.clone(), want)?;
            let exhausted = live.len() < want;
            // The part of the keyspace this round covers: up to the last live
            // key read, or to the end when the live tree has no more.
            let covered = match (exhausted, live.last()) {
                (false, Some((k, _))) => Bound::Included(k.clone()),
                _ => end.clone(),
            };
            let before: Vec<(Vec<u8>, Option<Vec<u8>>)> = self
                .state
                .before
                .lock()
                .range((cursor.clone(), covered))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let last_live = live.last().map(|(k, _)| k.clone());
            merge(live, before, &mut entries);
            if entries.len() > limit {
                entries.truncate(limit);
                return Ok(Page {
                    entries,
                    more: true,
                });
            }
            match (exhausted, last_live) {
                (false, Some(k)) => cursor = Bound::Excluded(k),
                _ => {
                    return Ok(Page {
                        entries,
                        more: false,
                    })
                }
            }
        }
    }
}

/// Merges live entries with before-images (which win) in key order.
fn merge(
    live: Vec<(Vec<u8>, Vec<u8>)>,
    before: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    out: &mut Vec<(Vec<u8>, Vec<u8>)>,
) {
    let mut live = live.into_iter().peekable();
    let mut before = before.into_iter().peekable();
    loop {
        let take_before = match (live.peek(), before.peek()) {
            (None, None) => return,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some((lk, _)), Some((bk, _))) => {
                if bk == lk {
                    live.next();
                    true
                } else {
                    bk < lk
                }
            }
        };
        if take_before {
            if let Some((k, Some(v))) = before.next() {
                out.push((k, v));
            }
        } else if let Some(e) = live.next() {
            out.push(e);
        }
    }
}
