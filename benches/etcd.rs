//! The etcd benchmark (`harness = false`, feature `etcd`): the real server
//! over a real 3-member etcd cluster on loopback, side by side in one run
//! with the same server over sled (durable), and with etcd itself driven
//! directly (etcd-client) by the commit or the reads a request sends, from as
//! many concurrent tasks as there are connections: the floor of the engine.
//!
//! Rows, at each connection count (HTTP/1.1 over TLS, the load generator of
//! `common::load`, one request in flight per connection):
//! - `GET /user` with an access token (authentication and one read);
//! - mint with an access token (`POST /spaces/{id}/providers/token`);
//! - consumption of a space support token (`POST /provider/spaces/support`);
//! - raw etcd: the request's commit replayed (the same number and sizes of
//!   compares and puts, the engine's marker compare and leased marker put
//!   included, on fresh keys): the floor of mint and consumption; a GET's
//!   reads replayed one after the other, and all in one transaction; a
//!   mint's whole sequence of reads then commit.
//!
//! What a request sends to the engine is not guessed: both stores sit on a
//! counting wrapper of their engine that records one calibration request's
//! engine calls (key and value sizes) and counts every call during a row.
//! etcd's own metrics count what reached the cluster: unary gRPC calls
//! (`grpc_server_handled_total`, every member) and raft proposals
//! (`etcd_server_proposals_committed_total`). CPU time of this process and of
//! the members comes from `/proc`.
//!
//! Prints Markdown tables. Environment:
//! - `OZMINT_BENCH_SMOKE=1`: 0.3 s per row, 1 and 8 connections (a smoke for CI);
//! - `OZMINT_BENCH_SECS`: seconds per row (default 5);
//! - `OZMINT_BENCH_CONNS`: connection counts, comma-separated (default 1,16,64);
//! - `OZMINT_BENCH_ROWS`: only rows whose label contains one of these `|`-separated parts.
//!
//! Without the `etcd` binary it says so loudly and exits successfully. Only
//! 127.0.0.1 is ever connected to; every loop is bounded in time and count.

mod common;

use std::fmt::Write as _;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, KvClient, PutOptions, Txn, TxnOp,
};
use hyper::{Method, StatusCode};
use parking_lot::Mutex;
use rand::distributions::{Alphanumeric, DistString};

use common::load::{
    client_tls, config_for, consume_workload, credentials, env_num, fmt_us, load_average, machine,
    met, mint_workload, one_request, progress, run_load, support_token_body, wanted, Bodies, Pool,
    Proto, Row, Target, Workload, MAX_REQUESTS_PER_CONN, PREFIX, REQUEST_TIMEOUT,
};
use ozmint::engine::{Commit, Engine, EngineError, Limits, Page, Snapshot, Value};
use ozmint::model::Subject;
use ozmint::serve::Running;
use ozmint::{DurabilityMode, Store, Zone};
use testkit::etcd::Cluster;

/// The etcd prefix of the server's store, and of the raw rows' keys: the
/// same length, so that raw keys are as long as the server's.
const SERVER_PREFIX: &str = "bench-oz";
const RAW_PREFIX: &str = "bench-rw";
/// Where the etcd engine keeps its markers (under the prefix), and their length.
const MARKERS: &str = "~txn/";
/// Linux's USER_HZ (`getconf CLK_TCK`): the unit of CPU times in `/proc/PID/stat`.
const CLOCK_TICKS: f64 = 100.0;
/// Support tokens prepared for one consumption row at most.
const MAX_POOL: usize = 200_000;
/// Tasks preparing support tokens.
const PREP_TASKS: usize = 32;

// ---------------------------------------------------------------------------
// Settings

struct Settings {
    smoke: bool,
    row: Duration,
    conns: Vec<usize>,
}

impl Settings {
    fn from_env() -> Self {
        let smoke = common::smoke();
        let row = env_num("OZMINT_BENCH_SECS").unwrap_or(if smoke { 0.3 } else { 5.0 });
        let conns = std::env::var("OZMINT_BENCH_CONNS")
            .ok()
            .map(|v| {
                v.split(',')
                    .filter_map(|n| n.trim().parse::<usize>().ok())
                    .map(|n| n.clamp(1, 512))
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| if smoke { vec![1, 8] } else { vec![1, 16, 64] });
        Settings {
            smoke,
            row: Duration::from_secs_f64(row.clamp(0.05, 600.0)),
            conns,
        }
    }
}

// ---------------------------------------------------------------------------
// The counting engine

/// Sizes of one key and its value (`None`: absent, or a delete).
type Sized = (usize, Option<usize>);

/// One engine call, by sizes.
#[derive(Clone, Debug)]
enum Call {
    /// `get_many` (at a snapshot or not): each key's size and its value's.
    Get { keys: Vec<Sized>, snapshot: bool },
    /// `scan`: prefix size, entries answered, their total bytes.
    Scan {
        prefix: usize,
        entries: usize,
        bytes: usize,
    },
    /// `snapshot` (the etcd engine reads the current revision).
    Snapshot,
    /// `commit`: guards (key size, expected value size or `None` for
    /// absence) and writes (key size, value size or `None` for a delete).
    Commit {
        guards: Vec<Sized>,
        writes: Vec<Sized>,
    },
}

/// Running totals of engine calls.
#[derive(Default)]
struct Counters {
    reads: AtomicU64,
    scans: AtomicU64,
    snapshots: AtomicU64,
    commits: AtomicU64,
    conflicts: AtomicU64,
    busy_ns: AtomicU64,
}

/// A copy of [`Counters`] at one moment.
#[derive(Clone, Copy, Default, Debug)]
struct Tally {
    reads: u64,
    scans: u64,
    snapshots: u64,
    commits: u64,
    conflicts: u64,
    busy_ns: u64,
}

impl Tally {
    fn since(self, before: Tally) -> Tally {
        Tally {
            reads: self.reads - before.reads,
            scans: self.scans - before.scans,
            snapshots: self.snapshots - before.snapshots,
            commits: self.commits - before.commits,
            conflicts: self.conflicts - before.conflicts,
            busy_ns: self.busy_ns - before.busy_ns,
        }
    }

    fn calls(&self) -> u64 {
        self.reads + self.scans + self.snapshots + self.commits
    }
}

struct Shared {
    counters: Counters,
    recording: AtomicBool,
    calls: Mutex<Vec<Call>>,
}

impl Shared {
    fn record(&self, call: impl FnOnce() -> Call) {
        if self.recording.load(Ordering::Relaxed) {
            self.calls.lock().push(call());
        }
    }

    fn busy(&self, since: Instant) {
        self.counters
            .busy_ns
            .fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// An engine that counts and times the calls to the one it wraps and, while
/// recording, remembers their sizes (never their contents).
struct Counting {
    inner: Arc<dyn Engine>,
    shared: Arc<Shared>,
}

impl Counting {
    fn new(inner: Arc<dyn Engine>) -> Self {
        Counting {
            inner,
            shared: Arc::new(Shared {
                counters: Counters::default(),
                recording: AtomicBool::new(false),
                calls: Mutex::new(Vec::new()),
            }),
        }
    }

    fn tally(&self) -> Tally {
        let c = &self.shared.counters;
        Tally {
            reads: c.reads.load(Ordering::Relaxed),
            scans: c.scans.load(Ordering::Relaxed),
            snapshots: c.snapshots.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            conflicts: c.conflicts.load(Ordering::Relaxed),
            busy_ns: c.busy_ns.load(Ordering::Relaxed),
        }
    }

    /// The engine calls made while `f` runs (nothing else should run meanwhile).
    async fn recording<F: Future>(&self, f: F) -> (F::Output, Vec<Call>) {
        self.shared.calls.lock().clear();
        self.shared.recording.store(true, Ordering::SeqCst);
        let out = f.await;
        self.shared.recording.store(false, Ordering::SeqCst);
        (out, std::mem::take(&mut *self.shared.calls.lock()))
    }
}

fn get_call(keys: &[&[u8]], values: &[Option<Value>], snapshot: bool) -> Call {
    Call::Get {
        keys: keys
            .iter()
            .zip(values)
            .map(|(k, v)| (k.len(), v.as_ref().map(Vec::len)))
            .collect(),
        snapshot,
    }
}

fn scan_call(prefix: &[u8], page: &Page) -> Call {
    Call::Scan {
        prefix: prefix.len(),
        entries: page.entries.len(),
        bytes: page.entries.iter().map(|(k, v)| k.len() + v.len()).sum(),
    }
}

#[async_trait]
impl Engine for Counting {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn limits(&self) -> Limits {
        self.inner.limits()
    }

    async fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Value>>, EngineError> {
        let t = Instant::now();
        let r = self.inner.get_many(keys).await;
        self.shared.busy(t);
        self.shared.counters.reads.fetch_add(1, Ordering::Relaxed);
        if let Ok(values) = &r {
            self.shared.record(|| get_call(keys, values, false));
        }
        r
    }

    async fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page, EngineError> {
        let t = Instant::now();
        let r = self.inner.scan(prefix, after, limit).await;
        self.shared.busy(t);
        self.shared.counters.scans.fetch_add(1, Ordering::Relaxed);
        if let Ok(page) = &r {
            self.shared.record(|| scan_call(prefix, page));
        }
        r
    }

    async fn snapshot(&self) -> Result<Box<dyn Snapshot>, EngineError> {
        let t = Instant::now();
        let r = self.inner.snapshot().await;
        self.shared.busy(t);
        self.shared
            .counters
            .snapshots
            .fetch_add(1, Ordering::Relaxed);
        self.shared.record(|| Call::Snapshot);
        let inner = r?;
        Ok(Box::new(CountingSnapshot {
            inner,
            shared: self.shared.clone(),
        }))
    }

    async fn commit(&self, commit: Commit) -> Result<(), EngineError> {
        let shape = || Call::Commit {
            guards: commit
                .guards
                .iter()
                .map(|g| (g.key.len(), g.expect.as_ref().map(Vec::len)))
                .collect(),
            writes: commit
                .writes
                .iter()
                .map(|w| (w.key().len(), w.value().map(<[u8]>::len)))
                .collect(),
        };
        let recorded = self.shared.recording.load(Ordering::Relaxed).then(shape);
        let t = Instant::now();
        let r = self.inner.commit(commit).await;
        self.shared.busy(t);
        self.shared.counters.commits.fetch_add(1, Ordering::Relaxed);
        if r == Err(EngineError::Conflict) {
            self.shared
                .counters
                .conflicts
                .fetch_add(1, Ordering::Relaxed);
        }
        if let Some(call) = recorded {
            self.shared.record(|| call);
        }
        r
    }

    async fn health(&self) -> Result<(), EngineError> {
        self.inner.health().await
    }

    fn stats(&self) -> ozmint::engine::EngineStats {
        self.inner.stats()
    }
}

struct CountingSnapshot {
    inner: Box<dyn Snapshot>,
    shared: Arc<Shared>,
}

#[async_trait]
impl Snapshot for CountingSnapshot {
    async fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Value>>, EngineError> {
        let t = Instant::now();
        let r = self.inner.get_many(keys).await;
        self.shared.busy(t);
        self.shared.counters.reads.fetch_add(1, Ordering::Relaxed);
        if let Ok(values) = &r {
            self.shared.record(|| get_call(keys, values, true));
        }
        r
    }

    async fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page, EngineError> {
        let t = Instant::now();
        let r = self.inner.scan(prefix, after, limit).await;
        self.shared.busy(t);
        self.shared.counters.scans.fetch_add(1, Ordering::Relaxed);
        if let Ok(page) = &r {
            self.shared.record(|| scan_call(prefix, page));
        }
        r
    }
}

/// What a list of calls is, in words.
fn describe(calls: &[Call]) -> String {
    if calls.is_empty() {
        return "no engine call".into();
    }
    let mut parts = Vec::new();
    for c in calls {
        parts.push(match c {
            Call::Get { keys, snapshot } => format!(
                "get_many{} of {} keys ({} present, {} B)",
                if *snapshot { " at a snapshot" } else { "" },
                keys.len(),
                keys.iter().filter(|(_, v)| v.is_some()).count(),
                keys.iter().map(|(k, v)| k + v.unwrap_or(0)).sum::<usize>()
            ),
            Call::Scan { entries, bytes, .. } => format!("scan ({entries} entries, {bytes} B)"),
            Call::Snapshot => "snapshot".into(),
            Call::Commit { guards, writes } => format!(
                "commit of {} guards ({} on values, {} on absence) and {} writes ({} puts, {} B)",
                guards.len(),
                guards.iter().filter(|(_, v)| v.is_some()).count(),
                guards.iter().filter(|(_, v)| v.is_none()).count(),
                writes.len(),
                writes.iter().filter(|(_, v)| v.is_some()).count(),
                guards
                    .iter()
                    .chain(writes)
                    .map(|(k, v)| k + v.unwrap_or(0))
                    .sum::<usize>()
            ),
        });
    }
    parts.join(", then ")
}

// ---------------------------------------------------------------------------
// Servers

struct Server {
    name: &'static str,
    _dir: tempfile::TempDir,
    running: Running,
    counting: Arc<Counting>,
    target: Target,
    access: String,
    provider: String,
    admin: Subject,
}

impl Server {
    fn zone(&self) -> &Arc<Zone> {
        &self.running.app.zone
    }
}

/// The real server (demo data set, durable) on the store `url` names (`None`:
/// sled in its temporary directory), its engine wrapped in [`Counting`].
async fn start_server(name: &'static str, url: Option<String>) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config_for(dir.path(), DurabilityMode::Durable);
    config.store.url = url;
    let (engine, _) = ozmint::serve::open_engine(&config)
        .await
        .expect("open the engine");
    let counting = Arc::new(Counting::new(engine));
    let store = Arc::new(
        Store::open(counting.clone(), config.durability)
            .await
            .expect("open the store"),
    );
    ozmint::serve::bootstrap(&store, true, None)
        .await
        .expect("bootstrap");
    let admin = Subject::User(
        store
            .user_by_name("admin")
            .await
            .expect("read admin")
            .expect("demo admin")
            .0,
    );
    let running = ozmint::serve::start(&config, store, std::future::pending())
        .await
        .expect("start the server");
    let target = Target {
        addr: running.addr,
        tls: client_tls(&dir.path().join("tls").join("cert.pem")),
    };
    let (access, provider) = credentials(&target).await;
    Server {
        name,
        _dir: dir,
        running,
        counting,
        target,
        access,
        provider,
        admin,
    }
}

/// `n` space support tokens, each for a new space, as consumption bodies
/// (prepared through the library, from [`PREP_TASKS`] tasks).
async fn support_pool(srv: &Server, n: usize, tag: &str) -> Arc<Pool> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..PREP_TASKS.min(n.max(1)) {
        let (zone, admin, next) = (srv.zone().clone(), srv.admin, next.clone());
        let tag = tag.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return out;
                }
                out.push(support_token_body(&zone, admin, &format!("consume-{tag}-{i}")).await);
            }
        }));
    }
    let mut bodies = Vec::with_capacity(n);
    for t in tasks {
        bodies.extend(t.await.expect("prep task"));
    }
    Arc::new(Pool {
        bodies,
        next: AtomicUsize::new(0),
    })
}

fn get_user(srv: &Server) -> Workload {
    Workload {
        method: Method::GET,
        path: format!("{PREFIX}/user"),
        headers: vec![("x-auth-token", srv.access.clone())],
        bodies: Bodies::Fixed(Bytes::new()),
        expect: StatusCode::OK,
    }
}

/// One request of `wl` on its own connection; panics unless it gets the expected status.
async fn once(srv: &Server, wl: &Workload) {
    let body = match &wl.bodies {
        Bodies::Fixed(b) => b.clone(),
        Bodies::Pool(p) => p.take().expect("a calibration token"),
    };
    let (status, answer) =
        one_request(&srv.target, wl.method.clone(), &wl.path, &wl.headers, body).await;
    assert_eq!(status, wl.expect, "{} {}: {answer:?}", wl.method, wl.path);
}

/// The engine calls of one request of `wl`, after `warm` others (caches warm).
async fn calibrate(srv: &Server, wl: &Workload, warm: usize) -> Vec<Call> {
    for _ in 0..warm {
        once(srv, wl).await;
    }
    srv.counting.recording(once(srv, wl)).await.1
}

// ---------------------------------------------------------------------------
// Raw etcd: a request's calls replayed

/// `n` random alphanumeric bytes.
fn random_text(n: usize) -> Vec<u8> {
    Alphanumeric
        .sample_string(&mut rand::thread_rng(), n)
        .into_bytes()
}

/// A flat key of `len` bytes under the raw root that no one has written:
/// random, at least 16 random bytes whatever `len`.
fn fresh_key(root: &[u8], len: usize) -> Vec<u8> {
    let mut k = root.to_vec();
    k.extend(random_text(len.max(16)));
    k
}

/// A call to replay, with its keys seeded.
enum RawCall {
    /// A read-only transaction with one range per key: present keys are
    /// seeded keys holding values of the recorded sizes, absent ones fresh.
    Get(Vec<Result<Vec<u8>, usize>>),
    /// A range read limited to `entries` of a seeded prefix.
    Scan(Vec<u8>, usize),
    /// A count-only range (the etcd engine's revision read).
    Revision,
    /// A transaction: value compares on seeded keys, absence compares on
    /// fresh keys, puts (key size, value size) and deletes (key size) of fresh
    /// keys, plus the marker's absence compare and leased put.
    Commit {
        holds: Vec<(Vec<u8>, Vec<u8>)>,
        absent: Vec<usize>,
        puts: Vec<(usize, usize)>,
        deletes: Vec<usize>,
    },
}

/// Replays recorded calls with etcd-client directly.
struct Raw {
    kv: KvClient,
    root: Vec<u8>,
    lease: i64,
}

impl Raw {
    async fn connect(cluster: &Cluster) -> Raw {
        // As the engine connects (it requires a leader).
        let opts = ConnectOptions::new()
            .with_require_leader(true)
            .with_connect_timeout(Duration::from_secs(2));
        let client = Client::connect(cluster.endpoints(), Some(opts))
            .await
            .expect("etcd client");
        let lease = client
            .lease_client()
            .grant(600, None)
            .await
            .expect("lease")
            .id();
        Raw {
            kv: client.kv_client(),
            root: format!("{RAW_PREFIX}/").into_bytes(),
            lease,
        }
    }

    /// Writes a key of `len` flat bytes holding `value_len` random bytes.
    async fn seed(&self, len: usize, value_len: usize) -> (Vec<u8>, Vec<u8>) {
        let key = fresh_key(&self.root, len);
        let value = random_text(value_len);
        self.kv
            .clone()
            .put(key.clone(), value.clone(), None)
            .await
            .expect("seed");
        (key, value)
    }

    /// The calls to replay for `calls` (`commits_only`: just the commits).
    async fn prepare(&self, calls: &[Call], commits_only: bool) -> Vec<RawCall> {
        let mut out = Vec::new();
        for c in calls {
            match c {
                Call::Commit { guards, writes } => {
                    let mut holds = Vec::new();
                    let mut absent = Vec::new();
                    for &(k, v) in guards {
                        match v {
                            Some(v) => holds.push(self.seed(k, v).await),
                            None => absent.push(k),
                        }
                    }
                    out.push(RawCall::Commit {
                        holds,
                        absent,
                        puts: writes
                            .iter()
                            .filter_map(|&(k, v)| v.map(|v| (k, v)))
                            .collect(),
                        deletes: writes
                            .iter()
                            .filter(|(_, v)| v.is_none())
                            .map(|&(k, _)| k)
                            .collect(),
                    });
                }
                _ if commits_only => {}
                Call::Get { keys, .. } => {
                    let mut ks = Vec::new();
                    for &(k, v) in keys {
                        ks.push(match v {
                            Some(v) => Ok(self.seed(k, v).await.0),
                            None => Err(k),
                        });
                    }
                    out.push(RawCall::Get(ks));
                }
                Call::Scan {
                    prefix,
                    entries,
                    bytes,
                } => {
                    let mut p = self.root.clone();
                    p.extend(random_text((*prefix).max(16)));
                    let each = bytes / (*entries).max(1);
                    for _ in 0..*entries {
                        let mut k = p.clone();
                        k.extend(random_text(8));
                        let v = random_text(each.saturating_sub(k.len() - self.root.len()));
                        self.kv.clone().put(k, v, None).await.expect("seed");
                    }
                    out.push(RawCall::Scan(p, *entries));
                }
                Call::Snapshot => out.push(RawCall::Revision),
            }
        }
        out
    }

    /// Sends one call; `Err` when etcd refuses it or a compare fails.
    async fn send(&self, call: &RawCall) -> Result<(), String> {
        let mut kv = self.kv.clone();
        match call {
            RawCall::Get(keys) => {
                let ops: Vec<TxnOp> = keys
                    .iter()
                    .map(|k| match k {
                        Ok(k) => TxnOp::get(k.clone(), None),
                        Err(len) => TxnOp::get(fresh_key(&self.root, *len), None),
                    })
                    .collect();
                kv.txn(Txn::new().and_then(ops))
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            RawCall::Scan(prefix, entries) => {
                let end = ozmint::engine::prefix_end(prefix).expect("prefix end");
                let range = GetOptions::new()
                    .with_range(end)
                    .with_limit((*entries).max(1) as i64);
                kv.txn(Txn::new().and_then([TxnOp::get(prefix.clone(), Some(range))]))
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            RawCall::Revision => kv
                .get(self.root.clone(), Some(GetOptions::new().with_count_only()))
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            RawCall::Commit {
                holds,
                absent,
                puts,
                deletes,
            } => {
                let mut marker = self.root.clone();
                marker.extend_from_slice(MARKERS.as_bytes());
                marker.extend_from_slice(format!("{:032x}", rand::random::<u128>()).as_bytes());
                let mut compares: Vec<Compare> = holds
                    .iter()
                    .map(|(k, v)| Compare::value(k.clone(), CompareOp::Equal, v.clone()))
                    .chain(absent.iter().map(|&len| {
                        Compare::version(fresh_key(&self.root, len), CompareOp::Equal, 0)
                    }))
                    .collect();
                compares.push(Compare::version(marker.clone(), CompareOp::Equal, 0));
                let mut ops: Vec<TxnOp> = puts
                    .iter()
                    .map(|&(k, v)| TxnOp::put(fresh_key(&self.root, k), random_text(v), None))
                    .chain(
                        deletes
                            .iter()
                            .map(|&k| TxnOp::delete(fresh_key(&self.root, k), None)),
                    )
                    .collect();
                ops.push(TxnOp::put(
                    marker,
                    &b"done"[..],
                    Some(PutOptions::new().with_lease(self.lease)),
                ));
                let resp = kv
                    .txn(Txn::new().when(compares).and_then(ops))
                    .await
                    .map_err(|e| e.to_string())?;
                if resp.succeeded() {
                    Ok(())
                } else {
                    Err("a compare failed".into())
                }
            }
        }
    }
}

/// `conns` tasks each sending `calls` in order, over and over, for `dur`:
/// a row like the HTTP ones (one sequence = one "request").
async fn raw_load(
    label: &str,
    raw: &Arc<Raw>,
    calls: Arc<Vec<RawCall>>,
    conns: usize,
    dur: Duration,
) -> Row {
    progress(format!("{label} [x{conns}]"));
    let start = Instant::now();
    let deadline = start + dur;
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let (raw, calls) = (raw.clone(), calls.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let (mut errors, mut first_error) = (0u64, None);
                let mut n = 0;
                while Instant::now() < deadline && n < MAX_REQUESTS_PER_CONN {
                    n += 1;
                    let t = Instant::now();
                    let r = tokio::time::timeout(REQUEST_TIMEOUT, async {
                        for c in calls.iter() {
                            raw.send(c).await?;
                        }
                        Ok::<_, String>(())
                    })
                    .await
                    .unwrap_or_else(|_| Err("timed out".into()));
                    match r {
                        Ok(()) => lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32),
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(e);
                        }
                    }
                }
                (lat, errors, first_error, Instant::now())
            })
        })
        .collect();
    let mut lat = Vec::new();
    let (mut errors, mut first_error, mut end) = (0, None, start);
    for t in tasks {
        let (l, e, f, ended) = t.await.expect("raw task");
        lat.extend(l);
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
        end = end.max(ended);
    }
    lat.sort_unstable();
    // Per mille.
    let pct = |p: usize| {
        lat.get((lat.len() * p / 1000).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Row {
        label: label.into(),
        proto: Proto::H2,
        conns,
        baseline: false,
        rate: lat.len() as f64 / (end - start).as_secs_f64().max(1e-6),
        secs: (end - start).as_secs_f64(),
        p50_us: pct(500),
        p99_us: pct(990),
        p999_us: pct(999),
        errors,
        note: first_error.map_or(String::new(), |e| format!("first error: {e}")),
    }
}

// ---------------------------------------------------------------------------
// Probes: engine counters, etcd metrics, CPU

/// User + system CPU ticks of a process (all its threads).
fn cpu_ticks(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

#[derive(Clone, Copy)]
struct Probe {
    at: Instant,
    tally: Tally,
    self_ticks: u64,
    etcd_ticks: u64,
    grpc: f64,
    proposals: f64,
}

fn probe(cluster: &Cluster, counting: Option<&Counting>) -> Probe {
    let pids: Vec<String> = (0..3)
        .filter_map(|i| cluster.pid(i))
        .map(|p| p.to_string())
        .collect();
    Probe {
        at: Instant::now(),
        tally: counting.map_or_else(Tally::default, Counting::tally),
        self_ticks: cpu_ticks("self"),
        etcd_ticks: pids.iter().map(|p| cpu_ticks(p)).sum(),
        grpc: (0..3)
            .filter_map(|i| cluster.metric(i, "grpc_server_handled_total", r#"grpc_type="unary""#))
            .sum(),
        // Every member commits every proposal: one member's count.
        proposals: cluster
            .metric(0, "etcd_server_proposals_committed_total", "")
            .unwrap_or(0.0),
    }
}

/// A measured row with what it cost.
struct Measured {
    engine: &'static str,
    request: &'static str,
    row: Row,
    /// Engine calls, their time, CPU and etcd's counts, over the row.
    tally: Tally,
    secs: f64,
    self_cores: f64,
    etcd_cores: f64,
    grpc: f64,
    proposals: f64,
}

impl Measured {
    fn ok(&self) -> f64 {
        (self.row.rate * self.secs).max(1.0)
    }

    fn per(&self, n: f64) -> f64 {
        n / self.ok()
    }
}

fn measured(
    engine: &'static str,
    request: &'static str,
    row: Row,
    before: Probe,
    after: Probe,
) -> Measured {
    let secs = (after.at - before.at).as_secs_f64().max(1e-6);
    Measured {
        engine,
        request,
        row,
        tally: after.tally.since(before.tally),
        secs,
        self_cores: (after.self_ticks - before.self_ticks) as f64 / CLOCK_TICKS / secs,
        etcd_cores: (after.etcd_ticks - before.etcd_ticks) as f64 / CLOCK_TICKS / secs,
        grpc: after.grpc - before.grpc,
        proposals: after.proposals - before.proposals,
    }
}

type RowFuture<'a> = Pin<Box<dyn Future<Output = Option<Row>> + 'a>>;

/// Runs `row` between two probes.
async fn measure<'a>(
    cluster: &Cluster,
    counting: Option<&Counting>,
    engine: &'static str,
    request: &'static str,
    row: RowFuture<'a>,
) -> Option<Measured> {
    let before = probe(cluster, counting);
    let r = row.await?;
    // The row's end, not the probe's: the probes read metrics over HTTP.
    let after = probe(cluster, counting);
    Some(measured(engine, request, r, before, after))
}

// ---------------------------------------------------------------------------
// Output

fn print_rows(rows: &[Measured], raw_floor: impl Fn(&Measured) -> Option<String>) {
    println!(
        "| engine | request | conns | requests/s | p50 | p99 | ratio | engine calls/req (commits) | engine time/req (of latency) | etcd RPCs/req | raft proposals/req | CPU cores: bench process / etcd members | errors | note |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for m in rows {
        let r = &m.row;
        let mean_latency_us = r.conns as f64 / r.rate.max(1e-9) * 1e6;
        let engine_us = m.per(m.tally.busy_ns as f64) / 1000.0;
        let (calls, time) = if m.engine == "raw etcd" {
            ("—".to_string(), "—".to_string())
        } else {
            (
                format!(
                    "{:.2} ({:.2})",
                    m.per(m.tally.calls() as f64),
                    m.per(m.tally.commits as f64)
                ),
                format!(
                    "{} ({:.0}%)",
                    fmt_us(engine_us.round() as u32),
                    100.0 * engine_us / mean_latency_us
                ),
            )
        };
        let (grpc, props) = if m.engine == "sled" {
            ("—".to_string(), "—".to_string())
        } else {
            (
                format!("{:.2}", m.per(m.grpc)),
                format!("{:.2}", m.per(m.proposals)),
            )
        };
        let mut note = r.note.clone();
        if m.tally.conflicts > 0 {
            let _ = write!(
                note,
                "{}{} commit conflicts (retried)",
                if note.is_empty() { "" } else { "; " },
                m.tally.conflicts
            );
        }
        println!(
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {:.2} / {:.2} | {} | {} |",
            m.engine,
            r.label,
            r.conns,
            r.rate,
            fmt_us(r.p50_us),
            fmt_us(r.p99_us),
            raw_floor(m).unwrap_or_default(),
            calls,
            time,
            grpc,
            props,
            m.self_cores,
            m.etcd_cores,
            r.errors,
            note
        );
    }
}

fn find<'a>(
    rows: &'a [Measured],
    engine: &str,
    request: &str,
    conns: usize,
) -> Option<&'a Measured> {
    rows.iter()
        .find(|m| m.engine == engine && m.request == request && m.row.conns == conns)
}

/// What a row's time went to, in words.
fn limits(m: &Measured) -> String {
    let r = &m.row;
    let mean_latency_us = r.conns as f64 / r.rate.max(1e-9) * 1e6;
    let engine_us = m.per(m.tally.busy_ns as f64) / 1000.0;
    format!(
        "{:.2} etcd RPCs and {:.2} proposals per request; {:.0}% of the mean latency ({}) waiting on the engine ({}); CPU: bench process {:.2} + etcd {:.2} of {} cores",
        m.per(m.grpc),
        m.per(m.proposals),
        100.0 * engine_us / mean_latency_us,
        fmt_us(mean_latency_us.round() as u32),
        fmt_us(engine_us.round() as u32),
        m.self_cores,
        m.etcd_cores,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
}

// ---------------------------------------------------------------------------

const GET: &str = "GET /user";
const MINT: &str = "mint";
const CONSUME: &str = "consume";
/// The raw rows beside the floors: a GET's reads in one transaction, and a
/// mint's whole sequence of reads then commit.
const GET_ONE_TXN: &str = "GET /user, reads in one txn";
const MINT_SEQUENCE: &str = "mint, reads then commit";

fn main() {
    let s = Settings::from_env();
    let Some(cluster) = Cluster::start() else {
        println!("\n## ozmint over etcd benchmark: SKIPPED (no etcd binary; apt-get install etcd-server)\n");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let t_all = Instant::now();
    let load_start = load_average();
    progress(format!(
        "etcd cluster of 3 members, data in {}",
        cluster.dir().display()
    ));
    let (rows, shapes) = rt.block_on(run(&s, &cluster));
    let load_end = load_average();

    println!(
        "\n## ozmint over etcd benchmark{}\n",
        if s.smoke { " (smoke mode)" } else { "" }
    );
    let dir_kind = |p: &Path| {
        if p.starts_with("/dev/shm") {
            "tmpfs (/dev/shm): etcd's fsyncs cost nothing"
        } else {
            "a temporary directory on disk"
        }
    };
    println!(
        "Machine: {}. etcd {}: 3 members on loopback, data on {}. sled: durable mode, data in a temporary directory on disk ({}). \
         The load generator (hyper client, HTTP/1.1 over TLS, one request in flight per connection), both servers and the raw etcd client share this process; \
         the etcd members are 3 more processes on the same cores. {} s per row. 1-minute load average at start {load_start}, at end {load_end} \
         (other work on the machine shares the cores: compare ratios within one run).\n",
        machine(),
        etcd_version(),
        dir_kind(cluster.dir()),
        std::env::temp_dir().display(),
        s.row.as_secs_f64(),
    );
    println!(
        "What one request sends to the engine (recorded on a warm server, one request alone):\n"
    );
    println!("| request | engine | engine calls |");
    println!("|---|---|---|");
    for (request, engine, calls) in &shapes {
        println!("| {request} | {engine} | {} |", describe(calls));
    }
    println!();
    let floor = |m: &Measured| -> Option<String> {
        let base = match (m.engine, m.request) {
            ("etcd", MINT) => find(&rows, "raw etcd", MINT, m.row.conns)?,
            ("etcd", CONSUME) => find(&rows, "raw etcd", CONSUME, m.row.conns)?,
            ("etcd", GET) => find(&rows, "sled", GET, m.row.conns)?,
            _ => return None,
        };
        Some(format!(
            "{:.2}x {}",
            m.row.rate / base.row.rate,
            if base.engine == "sled" { "sled" } else { "raw" }
        ))
    };
    print_rows(&rows, floor);

    println!("\n### Targets (reported, not asserted)\n");
    println!("| target | conns | measured | | what limits it |");
    println!("|---|---:|---|---|---|");
    for &c in &s.conns {
        if let (Some(m), Some(raw)) = (
            find(&rows, "etcd", MINT, c),
            find(&rows, "raw etcd", MINT, c),
        ) {
            let r = m.row.rate / raw.row.rate;
            println!(
                "| mint over etcd >= 0.8x the raw txn rate of its commit | {c} | {r:.2}x ({:.0} vs {:.0} /s) | {} | {} |",
                m.row.rate,
                raw.row.rate,
                met(r >= 0.8),
                limits(m)
            );
        }
    }
    for &c in &s.conns {
        if let (Some(m), Some(sled)) = (find(&rows, "etcd", GET, c), find(&rows, "sled", GET, c)) {
            let r = m.row.rate / sled.row.rate;
            println!(
                "| GET /user over etcd >= 0.5x over sled | {c} | {r:.2}x ({:.0} vs {:.0} /s) | {} | {} |",
                m.row.rate,
                sled.row.rate,
                met(r >= 0.5),
                limits(m)
            );
        }
    }
    for &c in &s.conns {
        if let (Some(m), Some(seq), Some(one)) = (
            find(&rows, "etcd", MINT, c),
            find(&rows, "raw etcd", MINT_SEQUENCE, c),
            find(&rows, "raw etcd", GET_ONE_TXN, c),
        ) {
            println!(
                "| mint over etcd, ratio to raw etcd doing its whole sequence of reads then commit (no target) | {c} | {:.2}x ({:.0} vs {:.0} /s) | | ozmint's own cost over etcd's (grouped reads beat the sequence under load); for scale, a GET's reads in one transaction: {:.0} /s |",
                m.row.rate / seq.row.rate,
                m.row.rate,
                seq.row.rate,
                one.row.rate
            );
        }
    }
    for &c in &s.conns {
        if let (Some(m), Some(raw)) = (
            find(&rows, "etcd", CONSUME, c),
            find(&rows, "raw etcd", CONSUME, c),
        ) {
            let r = m.row.rate / raw.row.rate;
            println!(
                "| consume over etcd, ratio to the raw txn rate of its commit (no target) | {c} | {r:.2}x ({:.0} vs {:.0} /s) | | {} |",
                m.row.rate,
                raw.row.rate,
                limits(m)
            );
        }
    }
    println!("\nTotal bench time: {:.1} s", t_all.elapsed().as_secs_f64());

    if s.smoke {
        // The smoke checks that every row ran and nothing failed (no timing).
        let bad: Vec<String> = rows
            .iter()
            .filter(|m| m.row.errors > 0 || m.row.rate <= 0.0)
            .map(|m| {
                format!(
                    "{} {} x{}: {} errors {}",
                    m.engine, m.row.label, m.row.conns, m.row.errors, m.row.note
                )
            })
            .collect();
        assert!(bad.is_empty(), "rows with errors or no requests: {bad:#?}");
    }
}

fn etcd_version() -> String {
    std::process::Command::new("etcd")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("etcd Version: "))
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

type Shapes = Vec<(&'static str, &'static str, Vec<Call>)>;

async fn run(s: &Settings, cluster: &Cluster) -> (Vec<Measured>, Shapes) {
    progress("starting the server over sled (durable) and over etcd");
    let sled = start_server("sled", None).await;
    let etcd = start_server("etcd", Some(cluster.url(SERVER_PREFIX))).await;
    let raw = Arc::new(Raw::connect(cluster).await);

    // What one request sends to the engine.
    let mut shapes: Shapes = Vec::new();
    let mut calls_of = std::collections::HashMap::new();
    for srv in [&sled, &etcd] {
        let consume = consume_workload(
            &srv.provider,
            support_pool(srv, 11, &format!("calibrate-{}", srv.name)).await,
        );
        for (request, wl, warm) in [
            (GET, get_user(srv), 10),
            (
                MINT,
                mint_workload(("x-auth-token", srv.access.clone())),
                10,
            ),
            (CONSUME, consume, 10),
        ] {
            let calls = calibrate(srv, &wl, warm).await;
            calls_of.insert((srv.name, request), calls.clone());
            shapes.push((request, srv.name, calls));
        }
    }
    let etcd_calls = |request| calls_of[&("etcd", request)].clone();
    let raw_get = Arc::new(raw.prepare(&etcd_calls(GET), false).await);
    let raw_mint = Arc::new(raw.prepare(&etcd_calls(MINT), true).await);
    let raw_consume = Arc::new(raw.prepare(&etcd_calls(CONSUME), true).await);
    let raw_mint_sequence = Arc::new(raw.prepare(&etcd_calls(MINT), false).await);
    // Every read of a GET in one transaction: what one round trip would cost.
    let raw_get_one = {
        let keys: Vec<Result<Vec<u8>, usize>> = raw_get
            .iter()
            .flat_map(|c| match c {
                RawCall::Get(keys) => keys.clone(),
                _ => Vec::new(),
            })
            .collect();
        Arc::new(if keys.is_empty() {
            Vec::new()
        } else {
            vec![RawCall::Get(keys)]
        })
    };
    let get_one_label =
        "raw etcd: the same reads of a GET /user in one transaction (one round trip)";
    let mint_sequence_label = format!(
        "raw etcd: a mint's whole sequence ({})",
        describe(&etcd_calls(MINT))
    );
    let get_label = format!(
        "raw etcd: the reads of a GET /user ({})",
        describe(&etcd_calls(GET))
    );
    let mint_label =
        "raw etcd: one mint-equivalent commit (its compares and puts, marker included)";
    let consume_label =
        "raw etcd: one consume-equivalent commit (its compares and puts, marker included)";

    let mut rows = Vec::new();
    for &c in &s.conns {
        // GET /user.
        for srv in [&sled, &etcd] {
            let label = format!("GET /user, X-Auth-Token, {}", srv.name);
            rows.extend(
                measure(
                    cluster,
                    Some(&*srv.counting),
                    srv.name,
                    GET,
                    Box::pin(run_load(
                        &label,
                        &srv.target,
                        Proto::H1,
                        c,
                        s.row,
                        get_user(srv),
                    )),
                )
                .await,
            );
        }
        if raw_get.is_empty() {
            progress("a GET /user over etcd makes no engine call: no raw row");
        } else if wanted(&get_label) {
            rows.extend(
                measure(
                    cluster,
                    None,
                    "raw etcd",
                    GET,
                    Box::pin(async {
                        Some(raw_load(&get_label, &raw, raw_get.clone(), c, s.row).await)
                    }),
                )
                .await,
            );
        }
        if !raw_get_one.is_empty() && wanted(get_one_label) {
            rows.extend(
                measure(
                    cluster,
                    None,
                    "raw etcd",
                    GET_ONE_TXN,
                    Box::pin(async {
                        Some(raw_load(get_one_label, &raw, raw_get_one.clone(), c, s.row).await)
                    }),
                )
                .await,
            );
        }
        // Mint.
        for srv in [&sled, &etcd] {
            let label = format!("mint, X-Auth-Token, {}", srv.name);
            rows.extend(
                measure(
                    cluster,
                    Some(&*srv.counting),
                    srv.name,
                    MINT,
                    Box::pin(run_load(
                        &label,
                        &srv.target,
                        Proto::H1,
                        c,
                        s.row,
                        mint_workload(("x-auth-token", srv.access.clone())),
                    )),
                )
                .await,
            );
        }
        if wanted(mint_label) {
            rows.extend(
                measure(
                    cluster,
                    None,
                    "raw etcd",
                    MINT,
                    Box::pin(async {
                        Some(raw_load(mint_label, &raw, raw_mint.clone(), c, s.row).await)
                    }),
                )
                .await,
            );
        }
        if wanted(&mint_sequence_label) {
            rows.extend(
                measure(
                    cluster,
                    None,
                    "raw etcd",
                    MINT_SEQUENCE,
                    Box::pin(async {
                        Some(
                            raw_load(
                                &mint_sequence_label,
                                &raw,
                                raw_mint_sequence.clone(),
                                c,
                                s.row,
                            )
                            .await,
                        )
                    }),
                )
                .await,
            );
        }
        // Consumption: a token per request, prepared for the row's expected
        // length (from the mint rate at these connections).
        for srv in [&sled, &etcd] {
            let label = format!(
                "consume support token (POST /provider/spaces/support), {}",
                srv.name
            );
            if !wanted(&label) {
                continue;
            }
            let mint_rate = find(&rows, srv.name, MINT, c).map_or(2000.0, |m| m.row.rate);
            let n = ((mint_rate * s.row.as_secs_f64() * 1.5) as usize + 64).min(MAX_POOL);
            progress(format!("preparing {n} support tokens over {}", srv.name));
            let pool = support_pool(srv, n, &format!("{c}")).await;
            rows.extend(
                measure(
                    cluster,
                    Some(&*srv.counting),
                    srv.name,
                    CONSUME,
                    Box::pin(run_load(
                        &label,
                        &srv.target,
                        Proto::H1,
                        c,
                        s.row,
                        consume_workload(&srv.provider, pool),
                    )),
                )
                .await,
            );
        }
        if wanted(consume_label) {
            rows.extend(
                measure(
                    cluster,
                    None,
                    "raw etcd",
                    CONSUME,
                    Box::pin(async {
                        Some(raw_load(consume_label, &raw, raw_consume.clone(), c, s.row).await)
                    }),
                )
                .await,
            );
        }
    }
    let Server { running, .. } = sled;
    running.stop().await.expect("stop the sled server");
    let Server { running, .. } = etcd;
    running.stop().await.expect("stop the etcd server");
    (rows, shapes)
}
