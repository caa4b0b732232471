//! The sled 0.34 engine: the default, on disk.
//!
//! - One flat keyspace in sled's default tree.
//! - Commits land in a pending layer first: a small ordered map in memory of
//!   the values committed but not yet written to sled (`None`: deleted).
//!   A commit takes the layer's write lock, checks its guards against the
//!   layer over sled, and inserts its writes: "check guards, then write" is
//!   one step, and it never waits for a disk (the lock is held for memory
//!   work and sled reads only). Readers look in the layer before sled.
//! - A background thread writes the layer out to sled, atomically on a crash
//!   (`redo.rs`: plain inserts behind a redo record, never sled's batches,
//!   which make every sled call of the process take one global lock and
//!   wait for running flushes), [`DRAIN_AFTER`] after its oldest entry came
//!   in or once it holds [`DRAIN_BYTES`]; and a flush writes it out first.
//!   One write-out carries the commits of a whole interval (or of a whole
//!   flush: the immediate commits that arrived during the previous one).
//!   Measured: writing each immediate commit out at once, before its flush,
//!   cost 40% more CPU per durable mint (sled's inserts of the redo record
//!   for every one or two commits).
//! - Durability: [`Durability::Immediate`] commits wait for a flush; the
//!   flushes of concurrent commits are shared (group commit): whoever finds no
//!   flush running leads one, on tokio's blocking pool, for every commit
//!   made so far (write the layer to sled, then flush sled), and the others
//!   await it without holding a thread. [`Durability::Eventual`] commits are
//!   written to sled within [`DRAIN_AFTER`] and flushed by sled in the
//!   background (every `flush_every_ms`); dropping the engine writes the layer
//!   out too.
//! - Multi-key reads (several keys, a page of a scan) hold the layer's read
//!   lock throughout: no commit lands in between, and the keys a write-out
//!   is writing to sled are still in the layer (with the same values) until
//!   it has landed, so every read sees whole commits.
//! - Snapshots: a snapshot starts with a copy of the layer, and each write-out
//!   first records in every open snapshot the old value of each key it writes
//!   (a before-image); reads through the snapshot prefer those over sled. No
//!   writer waits for a reader.
//! - The layer is bounded ([`MAX_PENDING_BYTES`]): a commit that finds it full
//!   waits while write-outs land, and answers unavailable once none has for
//!   [`PENDING_WAIT`].
//! - Out of space: sled keeps failing every write once a write hit ENOSPC,
//!   even after space is freed. The engine then answers writes with
//!   [`EngineError::Full`] at once and keeps serving reads (commits already
//!   answered stay visible in the layer); once the filesystem has room again
//!   it reopens the database by itself (sled recovers everything flushed),
//!   writes the layer to it, and writes work again.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

mod redo;

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

/// Disk space the engine keeps in a file beside the database and frees when
/// the disk fills up, so that sled can go on with the writes it makes while
/// reading (it splits nodes on the way) after its database is reopened for
/// reads; made again once writes work again.
pub const RESERVE_BYTES: u64 = 8 << 20;

/// How often a full store checks whether it can reopen.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// How long commits stay in the pending layer before they are written out to sled.
pub const DRAIN_AFTER: Duration = Duration::from_millis(2);

/// The pending layer is written to sled at once when it holds this many bytes.
pub const DRAIN_BYTES: usize = 1 << 20;

/// Most bytes of keys and values in the pending layer; a commit that finds it
/// fuller waits (the disk is behind).
pub const MAX_PENDING_BYTES: usize = 16 << 20;

/// How long a commit waiting for room in the pending layer waits for the next
/// write-out to land before it answers [`EngineError::Unavailable`].
pub const PENDING_WAIT: Duration = Duration::from_secs(5);

/// How long the drain thread waits before it tries a failed write-out again.
const DRAIN_RETRY: Duration = Duration::from_millis(100);

/// Options for opening a sled database.
#[derive(Clone, Debug)]
pub struct SledOptions {
    /// Page cache size in bytes (sled's default of 1 GiB is far too much for a token server).
    pub cache_bytes: u64,
    /// Background flush interval in milliseconds, for [`Durability::Eventual`] commits.
    pub flush_every_ms: u64,
    /// Keep [`RESERVE_BYTES`] of disk in a file beside the database (a
    /// serving store; not a backup copy).
    pub reserve: bool,
}

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            cache_bytes: 64 * 1024 * 1024,
            flush_every_ms: 500,
            reserve: false,
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
    /// Commits not yet written to sled (see the module documentation).
    pending: RwLock<Pending>,
    /// One write-out at a time goes to sled (and no reopen meanwhile).
    drain_lock: Mutex<Drains>,
    /// The thread that writes the pending layer to sled.
    drainer: OnceLock<std::thread::Thread>,
    snapshots: Mutex<Vec<Weak<SnapState>>>,
    group: GroupCommit,
    /// Set while writes fail for lack of space.
    full: Mutex<Option<Full>>,
}

/// What the write-outs have done so far.
struct Drains {
    /// The number of the last write-out.
    seq: u64,
    /// Commits written out to the open database (flushed or not).
    written: u64,
}

/// The pending layer: what commits wrote that sled does not hold yet.
#[derive(Default)]
struct Pending {
    /// The latest committed value of each key (`None`: deleted).
    values: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Bytes of keys and values in `values`.
    bytes: usize,
    /// Commits made so far (durability waits are counted in these).
    commits: u64,
    /// When the oldest entry came in (`None`: the layer is empty).
    since: Option<Instant>,
}

impl Pending {
    /// `Some(value)` if the layer has the key (`Some(None)`: deleted).
    fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.values.get(key).map(Option::as_deref)
    }

    fn put(&mut self, key: &[u8], value: Option<&[u8]>) {
        let value = value.map(<[u8]>::to_vec);
        self.bytes += entry_bytes(key, &value);
        if let Some(old) = self.values.insert(key.to_vec(), value) {
            self.bytes -= entry_bytes(key, &old);
        }
    }

    /// Removes the entries a write-out wrote, unless a later commit changed them.
    fn landed(&mut self, written: &[(Vec<u8>, Option<Vec<u8>>)]) {
        for (k, v) in written {
            if self.values.get(k) == Some(v) {
                self.values.remove(k);
                self.bytes -= entry_bytes(k, v);
            }
        }
        self.since = (!self.values.is_empty()).then(Instant::now);
    }
}

/// Bytes of one entry of the pending layer.
fn entry_bytes(key: &[u8], value: &Option<Vec<u8>>) -> usize {
    key.len() + value.as_ref().map_or(0, Vec::len)
}

/// The entries of `map` (the pending layer, or a snapshot's before-images)
/// in `(start, end)`, for merging with sled's.
fn range_of(
    map: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    map.range((start, end))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A reopen to try: `free_then: None` for reads only, at once.
struct Reopen {
    why: String,
    free_then: Option<u64>,
}

struct Full {
    why: String,
    last_try: Instant,
    /// Free bytes when writes started failing, the reserve freed (sled can
    /// fail with room left: it writes whole segments).
    free_then: u64,
    /// Whether the database was reopened since, for reads: sled's first
    /// failed write makes every later call fail, reads that split a node
    /// included.
    reopened_for_reads: bool,
}

/// The reserve file of the database in `dir`.
fn reserve_path(dir: &Path) -> Option<PathBuf> {
    let name = dir.file_name()?.to_string_lossy();
    Some(dir.with_file_name(format!("{name}.reserve")))
}

/// Makes the reserve file of `dir` if it is missing (best effort: a disk
/// without the room just has no reserve).
fn make_reserve(dir: &Path) {
    let Some(path) = reserve_path(dir) else {
        return;
    };
    if path.exists() {
        return;
    }
    let made = std::fs::File::create(&path).and_then(|f| {
        rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, RESERVE_BYTES)
            .map_err(std::io::Error::from)
            .or_else(|_| {
                use std::io::Write;
                let zeros = vec![0u8; 64 << 10];
                let mut f = &f;
                (0..RESERVE_BYTES / zeros.len() as u64).try_for_each(|_| f.write_all(&zeros))
            })
            .and_then(|()| f.sync_all())
    });
    if let Err(e) = made {
        tracing::warn!(error = %e, path = %path.display(), "cannot make the disk space reserve");
        let _ = std::fs::remove_file(&path);
    }
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
        if opts.reserve {
            make_reserve(dir);
        }
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
        if redo::recover(&db)? {
            tracing::info!("finished writing out commits a crash had interrupted");
        }
        // Write-outs are numbered from the clock, so no two of any run share one.
        let first = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let inner = Arc::new(Inner {
            dir,
            opts,
            db: RwLock::new(Some(Arc::new(db))),
            pending: RwLock::new(Pending::default()),
            drain_lock: Mutex::new(Drains {
                seq: first,
                written: 0,
            }),
            drainer: OnceLock::new(),
            snapshots: Mutex::new(Vec::new()),
            group: GroupCommit::default(),
            full: Mutex::new(None),
        });
        // The thread holds the engine weakly: it ends once the last handle
        // is dropped (dropping the engine writes what is pending).
        let weak = Arc::downgrade(&inner);
        let thread = std::thread::Builder::new()
            .name("ozmint-sled-drain".into())
            .spawn(move || drain_loop(weak))
            .map_err(|e| EngineError::Io(format!("cannot start the drain thread: {e}")))?;
        let _ = inner.drainer.set(thread.thread().clone());
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
            .filter(|n| n.as_ref() != b"__sled__default" && n.as_ref() != redo::TREE.as_bytes())
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

    /// How many write-outs of the pending layer to sled so far (far fewer
    /// than commits under load).
    pub fn write_out_count(&self) -> u64 {
        self.inner.group.write_outs.load(Ordering::Relaxed)
    }

    /// Flushes everything written so far (shared with concurrent commits).
    pub async fn flush(&self) -> Result<(), EngineError> {
        let commits = self.inner.pending.read().commits;
        self.wait_durable(commits).await
    }

    fn mark_full(&self, why: &EngineError) {
        if let EngineError::Full(text) = why {
            let mut full = self.inner.full.lock();
            if full.is_none() {
                tracing::warn!(error = %text, "the store is out of space; writes fail until space is freed");
                let dir = self.inner.dir.as_deref();
                if let Some(reserve) = dir.and_then(reserve_path) {
                    let _ = std::fs::remove_file(reserve);
                }
                let free_then = dir.and_then(free_bytes).unwrap_or(0);
                *full = Some(Full {
                    why: text.clone(),
                    last_try: Instant::now(),
                    free_then,
                    reopened_for_reads: false,
                });
            }
        }
    }

    /// While full: `Err(Full)`, unless the filesystem has room again and the
    /// database could be reopened (checked at most once a second).
    async fn check_full(&self) -> Result<(), EngineError> {
        let Some(due) = self.reopen_due()? else {
            return Ok(());
        };
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.reopen(due))
            .await
            .map_err(|e| EngineError::Io(format!("reopen task failed: {e}")))?
    }

    /// [`check_full`](Self::check_full) for the drain thread.
    fn check_full_blocking(&self) -> Result<(), EngineError> {
        match self.reopen_due()? {
            Some(due) => self.reopen(due),
            None => Ok(()),
        }
    }

    /// `Ok(None)` while not full; `Err(Full)` while full and a reopen was
    /// tried less than [`REOPEN_EVERY`] ago; else what to try a reopen with
    /// (at once the first time, for reads).
    fn reopen_due(&self) -> Result<Option<Reopen>, EngineError> {
        let mut full = self.inner.full.lock();
        let Some(f) = full.as_mut() else {
            return Ok(None);
        };
        if f.reopened_for_reads && f.last_try.elapsed() < REOPEN_EVERY {
            return Err(EngineError::Full(f.why.clone()));
        }
        f.last_try = Instant::now();
        Ok(Some(Reopen {
            why: f.why.clone(),
            free_then: f.reopened_for_reads.then_some(f.free_then),
        }))
    }

    /// After a read failed: reopens a full database for reads, once; whether
    /// the read is worth trying again.
    async fn reopen_for_reads(&self) -> bool {
        let due = match self.inner.full.lock().as_mut() {
            Some(f) if !f.reopened_for_reads => Reopen {
                why: f.why.clone(),
                free_then: None,
            },
            _ => return false,
        };
        let this = self.clone();
        let _ = tokio::task::spawn_blocking(move || this.reopen(due)).await;
        true
    }

    /// Reopens the database: for reads (writes stay refused), or to write
    /// again once the filesystem has room.
    fn reopen(&self, due: Reopen) -> Result<(), EngineError> {
        let Reopen { why, free_then } = due;
        let Some(free_then) = free_then else {
            match self.try_reopen(None) {
                Ok(_) => {
                    if let Some(f) = self.inner.full.lock().as_mut() {
                        f.reopened_for_reads = true;
                    }
                    tracing::info!(
                        "the full store was reopened for reads; writes fail until space is freed"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "reopening the full store for reads failed"),
            }
            return Err(EngineError::Full(why));
        };
        match self.try_reopen(Some(free_then)) {
            Ok(true) => {
                *self.inner.full.lock() = None;
                if let Some(dir) = self
                    .inner
                    .dir
                    .as_deref()
                    .filter(|_| self.inner.opts.reserve)
                {
                    make_reserve(dir);
                }
                tracing::info!("the store has space again and was reopened; writes work again");
                self.wake_drainer();
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
    /// the drain lock held, so no write-out goes to a half-swapped engine; readers
    /// and commits wait for the swap (or answer unavailable meanwhile).
    fn try_reopen(&self, free_then: Option<u64>) -> Result<bool, EngineError> {
        let Some(dir) = &self.inner.dir else {
            return Ok(false);
        };
        if let Some(free_then) = free_then {
            let needed = free_then.saturating_add(REOPEN_FREE_BYTES);
            if free_bytes(dir).is_some_and(|free| free < needed) {
                return Ok(false);
            }
        }
        let drains = self.inner.drain_lock.lock();
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
        redo::recover(&db)?;
        *slot = Some(Arc::new(db));
        // The commits written out to the closed database but not flushed are
        // gone with it (sled's first failed write fails every later flush):
        // their waiters learn it, rather than a later flush of this database
        // counting them durable.
        let group = &self.inner.group;
        {
            let mut st = group.state.lock();
            if drains.written > st.durable {
                let lost = (st.durable, drains.written);
                st.lost.push(lost);
            }
        }
        group.finished.send_modify(|n| *n += 1);
        Ok(true)
    }

    /// Waits until every commit counted up to `commits` is durable.
    async fn wait_durable(&self, commits: u64) -> Result<(), EngineError> {
        let group = &self.inner.group;
        loop {
            // Subscribed before looking, so a flush ending in between is seen.
            let mut finished = group.finished.subscribe();
            let lead = {
                let mut st = group.state.lock();
                if st
                    .lost
                    .iter()
                    .any(|&(after, upto)| commits > after && commits <= upto)
                {
                    return Err(EngineError::Full(
                        "the write was lost when the full store was reopened".into(),
                    ));
                }
                if st.durable >= commits {
                    return Ok(());
                }
                let lead = !st.flushing;
                st.flushing = true;
                lead
            };
            if lead {
                // The flush runs to its end even if this task is dropped,
                // so the leadership is always handed back.
                let this = self.clone();
                let res = tokio::task::spawn_blocking(move || this.lead_flush())
                    .await
                    .map_err(|e| EngineError::Io(format!("flush task failed: {e}")))?;
                if let Err(e) = res {
                    self.mark_full(&e);
                    return Err(e);
                }
            } else {
                // The sender lives as long as the engine, which we hold.
                let _ = finished.changed().await;
            }
        }
    }

    /// Writes the pending layer to sled and flushes sled: every commit made
    /// before the call is durable when it returns `Ok`.
    fn lead_flush(&self) -> Result<(), EngineError> {
        // The database written out to is the one flushed: holding it keeps a
        // reopen from swapping it in between.
        let res = self
            .drain()
            .and_then(|(target, db)| db.flush().map(|_| target).map_err(io));
        self.inner.group.flushes.fetch_add(1, Ordering::Relaxed);
        let group = &self.inner.group;
        {
            let mut st = group.state.lock();
            st.flushing = false;
            if let Ok(target) = res {
                st.durable = st.durable.max(target);
            }
        }
        group.finished.send_modify(|n| *n += 1);
        res.map(|_| ())
    }

    /// Applies a commit to the pending layer if its guards hold; the number
    /// of the commit, to wait for durability at.
    fn apply(&self, commit: &Commit) -> Result<u64, EngineError> {
        let db = self.db()?;
        let mut pending = self.inner.pending.write();
        for g in &commit.guards {
            let holds = match pending.get(&g.key) {
                Some(now) => now == g.expect.as_deref(),
                None => db.get(&g.key).map_err(io)?.as_deref() == g.expect.as_deref(),
            };
            if !holds {
                return Err(EngineError::Conflict);
            }
        }
        let was_empty = pending.since.is_none();
        for w in &commit.writes {
            pending.put(w.key(), w.value());
        }
        pending.since.get_or_insert_with(Instant::now);
        pending.commits += 1;
        let wake = was_empty || pending.bytes >= DRAIN_BYTES;
        let number = pending.commits;
        drop(pending);
        if wake {
            self.wake_drainer();
        }
        Ok(number)
    }

    /// Waits while the pending layer is over [`MAX_PENDING_BYTES`], as long
    /// as write-outs keep landing: after [`PENDING_WAIT`] without one it
    /// gives up (a disk that is slow keeps a bulk load waiting; one that is
    /// stuck fails it).
    async fn room(&self) -> Result<(), EngineError> {
        let landed = || self.inner.group.write_outs.load(Ordering::Relaxed);
        let mut seen = landed();
        let mut deadline = Instant::now() + PENDING_WAIT;
        while self.inner.pending.read().bytes >= MAX_PENDING_BYTES {
            self.wake_drainer();
            if landed() != seen {
                seen = landed();
                deadline = Instant::now() + PENDING_WAIT;
            }
            if Instant::now() >= deadline {
                return Err(EngineError::Unavailable(
                    "writes are waiting for the disk; retry later".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }

    fn wake_drainer(&self) {
        if let Some(t) = self.inner.drainer.get() {
            t.unpark();
        }
    }

    /// Writes everything in the pending layer out to sled, atomically on a
    /// crash (before-images first); the number of commits it covers, and the
    /// database it wrote them to.
    fn drain(&self) -> Result<(u64, Arc<::sled::Db>), EngineError> {
        let mut drains = self.inner.drain_lock.lock();
        let db = self.db()?;
        let (batch, commits) = {
            let pending = self.inner.pending.read();
            (
                range_of(&pending.values, Bound::Unbounded, Bound::Unbounded),
                pending.commits,
            )
        };
        if batch.is_empty() {
            return Ok((commits, db));
        }
        self.record_before_images(&db, batch.iter().map(|(k, _)| k.as_slice()))?;
        drains.seq += 1;
        redo::write_out(&db, &batch, drains.seq)?;
        drains.written = commits;
        self.inner.group.write_outs.fetch_add(1, Ordering::Relaxed);
        self.inner.pending.write().landed(&batch);
        Ok((commits, db))
    }

    /// What the drain thread does once woken: how long it may sleep next.
    fn drain_when_due(&self) -> Duration {
        let (since, bytes) = {
            let pending = self.inner.pending.read();
            (pending.since, pending.bytes)
        };
        let Some(since) = since else {
            return Duration::from_secs(1);
        };
        let age = since.elapsed();
        if age < DRAIN_AFTER && bytes < DRAIN_BYTES {
            return DRAIN_AFTER - age;
        }
        match self.check_full_blocking().and_then(|()| self.drain()) {
            Ok(_) => Duration::ZERO,
            Err(e) => {
                if !matches!(e, EngineError::Full(_)) || self.inner.full.lock().is_none() {
                    tracing::warn!(error = %e, "writing pending commits to sled failed; retrying");
                }
                self.mark_full(&e);
                DRAIN_RETRY
            }
        }
    }

    /// [`Engine::get_many`], once.
    fn read_keys(&self, keys: &[&[u8]]) -> Result<Vec<Option<Value>>, EngineError> {
        let db = self.db()?;
        if let [key] = keys {
            // One key needs no lock held: a key not pending has its latest
            // value in sled, and sled only ever gets newer ones.
            let pending = self
                .inner
                .pending
                .read()
                .get(key)
                .map(|v| v.map(<[u8]>::to_vec));
            return match pending {
                Some(v) => Ok(vec![v]),
                None => read_many(&db, None, keys),
            };
        }
        read_many(&db, Some(&self.inner.pending.read()), keys)
    }

    /// [`Engine::scan`], once.
    fn read_page(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page, EngineError> {
        let db = self.db()?;
        let pending = self.inner.pending.read();
        merged_scan(&db, prefix, after, limit, |start, end| {
            range_of(&pending.values, start, end)
        })
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

/// The drain thread: writes the pending layer to sled when it is due, until
/// the engine is gone.
fn drain_loop(inner: Weak<Inner>) {
    loop {
        let sleep = match inner.upgrade() {
            Some(inner) => SledEngine { inner }.drain_when_due(),
            None => return,
        };
        if !sleep.is_zero() {
            std::thread::park_timeout(sleep);
        }
    }
}

impl Drop for Inner {
    /// Writes what is still pending, so a clean close loses no commit.
    fn drop(&mut self) {
        let pending = std::mem::take(self.pending.get_mut());
        let seq = self.drain_lock.get_mut().seq + 1;
        let Some(db) = self.db.get_mut().as_ref() else {
            return;
        };
        if pending.values.is_empty() {
            return;
        }
        let entries: Vec<redo::Entry> = pending.values.into_iter().collect();
        let res =
            redo::write_out(db, &entries, seq).and_then(|()| db.flush().map(drop).map_err(io));
        if let Err(e) = res {
            tracing::warn!(error = %e, "writing pending commits out at close failed");
        }
    }
}

/// Free bytes for unprivileged users on the filesystem holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Reads keys from the pending layer (when given) over sled.
fn read_many(
    db: &::sled::Db,
    pending: Option<&Pending>,
    keys: &[&[u8]],
) -> Result<Vec<Option<Value>>, EngineError> {
    if keys.len() > LIMITS.max_batch_keys {
        return Err(EngineError::TooLarge {
            what: "keys in one read",
            limit: LIMITS.max_batch_keys,
        });
    }
    keys.iter()
        .map(|k| match pending.and_then(|p| p.get(k)) {
            Some(v) => Ok(v.map(<[u8]>::to_vec)),
            None => db.get(k).map(|v| v.map(|v| v.to_vec())).map_err(io),
        })
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
        match self.read_keys(keys) {
            Err(EngineError::Full(_)) if self.reopen_for_reads().await => self.read_keys(keys),
            other => other,
        }
    }

    async fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page, EngineError> {
        match self.read_page(prefix, after, limit) {
            Err(EngineError::Full(_)) if self.reopen_for_reads().await => {
                self.read_page(prefix, after, limit)
            }
            other => other,
        }
    }

    async fn snapshot(&self) -> Result<Box<dyn Snapshot>, EngineError> {
        // The snapshot starts with what is pending (the value each of those
        // keys has now); write-outs add the before-images of the keys they write.
        let pending = self.inner.pending.read();
        let state = Arc::new(SnapState {
            before: Mutex::new(pending.values.clone()),
        });
        self.inner.snapshots.lock().push(Arc::downgrade(&state));
        drop(pending);
        Ok(Box::new(SledSnapshot {
            engine: self.clone(),
            state,
        }))
    }

    async fn commit(&self, commit: Commit) -> Result<(), EngineError> {
        commit.check(&LIMITS)?;
        let number = if commit.writes.is_empty() {
            if self.inner.full.lock().is_some() {
                // Reads go on while full: nothing will be durable until space
                // is freed, and the commits that failed for it stay visible.
                return Ok(());
            }
            self.inner.pending.read().commits
        } else {
            self.check_full().await?;
            self.room().await?;
            self.apply(&commit)?
        };
        match commit.durability {
            Durability::Immediate => self.wait_durable(number).await,
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
    state: Mutex<FlushState>,
    /// Counts finished flushes; waiters watch it.
    finished: watch::Sender<u64>,
    /// Flushes led so far.
    flushes: AtomicU64,
    /// Write-outs to sled so far.
    write_outs: AtomicU64,
}

#[derive(Default)]
struct FlushState {
    /// Every commit counted up to this is durable (but those in `lost`).
    durable: u64,
    /// A leader is flushing right now.
    flushing: bool,
    /// Commits (after the first, up to the second) a reopen lost before
    /// they were flushed.
    lost: Vec<(u64, u64)>,
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
        // Live first, then the before-images: a write-out records its
        // before-images before it writes, so a value read live that a
        // write-out has already replaced always has its before-image by now.
        let live = read_many(&*self.engine.db()?, None, keys)?;
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
        let db = self.engine.db()?;
        merged_scan(&db, prefix, after, limit, |start, end| {
            range_of(&self.state.before.lock(), start, end)
        })
    }
}

/// A page of sled's entries under `prefix` after `after`, with `shadow`'s
/// entries in a range (`None`: absent) winning over sled's.
fn merged_scan(
    db: &::sled::Db,
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: usize,
    shadow: impl Fn(Bound<Vec<u8>>, Bound<Vec<u8>>) -> Vec<(Vec<u8>, Option<Vec<u8>>)>,
) -> Result<Page, EngineError> {
    let limit = limit.clamp(1, LIMITS.max_page);
    let end = upper(prefix);
    let mut cursor = scan_start(prefix, after);
    if let (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(e)) = (&cursor, &end) {
        if a >= e {
            // Continuing after the prefix's last possible key.
            return Ok(Page::default());
        }
    }
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    loop {
        let want = limit + 1 - entries.len();
        let live = live_range(db, cursor.clone(), end.clone(), want)?;
        let exhausted = live.len() < want;
        // The part of the keyspace this round covers: up to the last live
        // key read, or to the end when sled has no more.
        let covered = match (exhausted, live.last()) {
            (false, Some((k, _))) => Bound::Included(k.clone()),
            _ => end.clone(),
        };
        let shadowed = shadow(cursor.clone(), covered);
        let last_live = live.last().map(|(k, _)| k.clone());
        merge(live, shadowed, &mut entries);
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

/// Merges sled's entries with shadowing ones (which win) in key order.
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
