//! The etcd engine (cargo feature `etcd`): the store in an etcd v3 cluster,
//! replicated by it.
//!
//! - Layout: every key lives at `<prefix>/` followed by the flat key bytes;
//!   nothing outside `<prefix>/` is read or written. Prefixes of two stores
//!   must not nest (`a` and `a/b` would share keys).
//! - Reads: [`Engine::get_many`] is one read-only etcd transaction with one
//!   range per key (one round trip, one revision). Concurrent calls are
//!   grouped: while one is in flight, the next ones wait and then leave
//!   together in one transaction (each still reads a state at least as new
//!   as the moment it was called); one that waits longer than a tenth of the
//!   request timeout goes alone. [`Engine::scan`] is a range
//!   with a limit; a [`Snapshot`] is a revision, and every read through it is
//!   made at that revision. A snapshot whose revision etcd has compacted
//!   answers [`EngineError::Io`] saying so, never other data. All reads are
//!   linearizable.
//! - Commits: one transaction. Each guard is a compare (value equality;
//!   absence is `version == 0`), the writes are its success branch; a failed
//!   compare is [`EngineError::Conflict`]. etcd acknowledges a write once a
//!   quorum has it on disk, so [`Eventual`](super::Durability::Eventual) is
//!   [`Immediate`](super::Durability::Immediate) here.
//! - Unknown outcomes are resolved. Each commit also requires that a marker
//!   key `<prefix>/~txn/<32 hex digits>`, new for every attempt, is absent,
//!   and puts it (value `done`), attached to a lease that expires a minute or
//!   more later (one lease serves ten seconds of commits). When the answer to
//!   a commit is lost (a timeout, a dropped connection, a leader change), the
//!   engine sends a fence: `if marker absent then put marker = aborted (same
//!   lease) else get marker`. If the fence puts the marker, the commit can
//!   never apply any more (its compare on the marker fails): it was not
//!   applied, and is tried again while the request timeout lasts (then it
//!   answers [`EngineError::Timeout`] or [`EngineError::Unavailable`]). If
//!   the marker says `done`, it was applied: [`Ok`]. A commit whose lease is
//!   gone cannot apply either (etcd refuses a put with an unknown lease), but
//!   its marker may have gone with the lease: a fence that finds the lease
//!   gone answers [`EngineError::OutcomeUnknown`]; so does a fence that cannot
//!   get through in twice the request timeout.
//! - Keys that begin with `~txn/` are the markers': commits and reads of them
//!   are refused ([`EngineError::Invalid`]), scans skip them.
//! - Failures: refused connections and `no leader` (the client requires a
//!   leader, so a member without one refuses at once) are retried, with
//!   backoff, on any member until the request timeout; then they answer
//!   [`EngineError::Unavailable`]. A read that gets no answer in time answers
//!   [`EngineError::Timeout`]. Every call is bounded by the request timeout,
//!   except a commit that resolves an unknown outcome (at most three times
//!   it). The client reconnects by itself when members come back.
//! - Operations: etcd keeps every revision until it is compacted; run the
//!   cluster with `--auto-compaction-retention` (e.g. `1h`), which also
//!   bounds how long a snapshot can be read.

use std::fmt;
use std::future::Future;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, GetResponse, Identity,
    KvClient, LeaseClient, PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse, TxnResponse,
};

use super::{
    prefix_end, scan_start, Commit, Engine, EngineError, Limits, Page, Snapshot, Value, Write,
};

/// The limits of the etcd engine: etcd allows 128 operations per
/// transaction branch (one of them is the marker) and 1.5 MiB per request.
pub const LIMITS: Limits = Limits {
    max_guards: 127,
    max_writes: 127,
    max_commit_bytes: 1 << 20,
    max_batch_keys: 128,
    max_page: 1000,
};

/// The prefix when none is given.
pub const DEFAULT_PREFIX: &str = "ozmint";

/// Where the markers live, under the prefix.
const MARKERS: &[u8] = b"~txn/";
/// A marker's value once its commit applied, and once a fence stopped it.
const DONE: &[u8] = b"done";
const ABORTED: &[u8] = b"aborted";
/// How long one lease serves new markers. When a lease expires etcd deletes
/// its markers in one step, stalling every request meanwhile (measured: about
/// 0.5 s for 20 000 markers, 2.3 s for 150 000), so leases are short-lived
/// and their markers few (10 s of commits).
const LEASE_REUSE: Duration = Duration::from_secs(10);
/// The largest response accepted (a page of big values).
const MAX_RESPONSE: usize = 64 << 20;
/// etcd's default `--max-request-bytes`.
const MAX_REQUEST: usize = 1536 * 1024;
/// HTTP/2 pings on idle connections, to notice members that vanished
/// without closing them (etcd refuses pings more often than every 5 s).
const KEEPALIVE_EVERY: Duration = Duration::from_secs(10);

/// TLS towards the etcd members.
#[derive(Clone, Debug)]
pub struct EtcdTls {
    /// PEM file of the CA that signed the members' certificates.
    pub ca: PathBuf,
    /// PEM file of this client's certificate, for members that require one.
    pub cert: Option<PathBuf>,
    /// PEM file of the key of `cert`.
    pub key: Option<PathBuf>,
    /// The name the members' certificates must carry (default: the host of each endpoint).
    pub domain: Option<String>,
}

/// How to reach the etcd cluster.
#[derive(Clone)]
pub struct EtcdOptions {
    /// Members as `HOST:PORT` (any of them; the client uses every one).
    pub endpoints: Vec<String>,
    /// Where the store lives: keys are `<prefix>/<key>`.
    pub prefix: String,
    /// How long connecting to one member may take.
    pub dial_timeout: Duration,
    /// How long any call may take (a commit resolving an unknown outcome: three times it).
    pub request_timeout: Duration,
    /// TLS, when the members serve it.
    pub tls: Option<EtcdTls>,
    /// User name and password, when etcd has authentication enabled.
    pub user: Option<(String, String)>,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            endpoints: vec!["127.0.0.1:2379".into()],
            prefix: DEFAULT_PREFIX.into(),
            dial_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            tls: None,
            user: None,
        }
    }
}

impl fmt::Debug for EtcdOptions {
    /// Everything but the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdOptions")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .field("dial_timeout", &self.dial_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("tls", &self.tls)
            .field(
                "user",
                &self.user.as_ref().map(|(name, _)| (name, "<password>")),
            )
            .finish()
    }
}

impl EtcdOptions {
    /// Options from `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]` (default
    /// prefix [`DEFAULT_PREFIX`]); the rest are the defaults.
    pub fn from_url(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("etcd://")
            .ok_or_else(|| format!("an etcd URL begins with etcd:// (got {url:?})"))?;
        let (hosts, prefix) = match rest.split_once('/') {
            Some((hosts, prefix)) => (hosts, prefix),
            None => (rest, DEFAULT_PREFIX),
        };
        let mut endpoints = Vec::new();
        for host in hosts.split(',') {
            let (name, port) = host
                .rsplit_once(':')
                .ok_or_else(|| format!("etcd URL {url:?}: endpoint {host:?} is not HOST:PORT"))?;
            if name.is_empty() || name.contains(['@', '?', '#', ' ']) {
                return Err(format!(
                    "etcd URL {url:?}: endpoint {host:?} has no valid host"
                ));
            }
            match port.parse::<u16>() {
                Ok(p) if p > 0 => {}
                _ => {
                    return Err(format!(
                        "etcd URL {url:?}: endpoint {host:?} has no valid port"
                    ))
                }
            }
            endpoints.push(host.to_string());
        }
        check_prefix(prefix).map_err(|why| format!("etcd URL {url:?}: {why}"))?;
        Ok(EtcdOptions {
            endpoints,
            prefix: prefix.to_string(),
            ..EtcdOptions::default()
        })
    }
}

fn check_prefix(prefix: &str) -> Result<(), &'static str> {
    if prefix.is_empty() {
        return Err("the prefix is empty");
    }
    if prefix.len() > 256 {
        return Err("the prefix is longer than 256 bytes");
    }
    if prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains("//") {
        return Err("the prefix has an empty part (a leading, trailing or double '/')");
    }
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
    {
        return Err("the prefix may hold letters, digits and - _ . / only");
    }
    Ok(())
}

/// The etcd engine. Cheap to clone handles to.
#[derive(Clone)]
pub struct EtcdEngine {
    inner: Arc<Inner>,
}

struct Inner {
    reader: Reader,
    leases: LeaseClient,
    /// The lease of new markers, and when it was asked for.
    lease: tokio::sync::Mutex<Option<(i64, Instant)>>,
    /// The TTL of marker leases, in seconds.
    lease_ttl: i64,
    #[cfg(test)]
    faults: tests::Faults,
}

/// Reads, at the newest revision (0) or at a snapshot's.
#[derive(Clone)]
struct Reader {
    kv: KvClient,
    /// `<prefix>/`.
    root: Arc<[u8]>,
    timeout: Duration,
    /// Groups concurrent reads of the newest revision.
    group: Arc<ReadGroup>,
}

/// Reads of the newest revision in flight at once. Further reads wait and
/// leave together, in one transaction, as soon as one of these returns; a
/// read that waits longer than a tenth of the request timeout (the reads in
/// flight are stuck on a member that stopped answering) goes alone.
const READS_IN_FLIGHT: usize = 1;

/// Read grouping: [`Engine::get_many`] calls of the newest revision made
/// while [`READS_IN_FLIGHT`] of them are already in flight wait, and go
/// together as one read-only transaction (one round trip, one revision for
/// all, at most [`LIMITS`]`.max_batch_keys` keys) when a slot frees. Each
/// call still reads a state at least as new as the moment it was made (its
/// transaction leaves after that), so reads stay linearizable; alone, a call
/// leaves at once. Under load this cuts the round trips per read (and the
/// CPU both sides spend on each one).
#[derive(Default)]
struct ReadGroup {
    state: parking_lot::Mutex<GroupState>,
    /// Read transactions of the newest revision sent (direct or grouped).
    #[cfg(test)]
    sent: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct GroupState {
    in_flight: usize,
    waiting: std::collections::VecDeque<Waiting>,
}

/// A read waiting for a slot: its etcd keys and where its answer goes.
struct Waiting {
    keys: Vec<Vec<u8>>,
    answer: tokio::sync::oneshot::Sender<Result<Vec<Option<Value>>, EngineError>>,
}

/// A slot of [`READS_IN_FLIGHT`] held. Dropping it (the read returned, or
/// its caller gave up) hands it to the reads waiting, or frees it.
struct Slot {
    reader: Reader,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let batch = {
            let mut state = self.reader.group.state.lock();
            let mut batch = Vec::new();
            let mut keys = 0;
            while let Some(next) = state.waiting.front() {
                if !batch.is_empty() && keys + next.keys.len() > LIMITS.max_batch_keys {
                    break;
                }
                keys += next.keys.len();
                batch.extend(state.waiting.pop_front());
            }
            if batch.is_empty() {
                state.in_flight -= 1;
                return;
            }
            batch
        };
        let slot = Slot {
            reader: self.reader.clone(),
        };
        match tokio::runtime::Handle::try_current() {
            // The new slot passes the turn on in its turn.
            Ok(rt) => drop(rt.spawn(slot.serve(batch))),
            // No runtime (the engine is being dropped outside one): the
            // waiting calls answer that the store is unavailable.
            Err(_) => drop((slot, batch)),
        }
    }
}

impl Slot {
    /// Reads every key of `batch` in one transaction and answers each call.
    async fn serve(self, batch: Vec<Waiting>) {
        let ops: Vec<TxnOp> = batch
            .iter()
            .flat_map(|w| w.keys.iter().map(|k| TxnOp::get(k.clone(), None)))
            .collect();
        let n = ops.len();
        #[cfg(test)]
        self.reader
            .group
            .sent
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let answer = self.reader.read(Txn::new().and_then(ops)).await;
        match answer.and_then(|resp| values(resp, n)) {
            Ok(all) => {
                let mut all = all.into_iter();
                for w in batch {
                    let mine: Vec<Option<Value>> = all.by_ref().take(w.keys.len()).collect();
                    // A caller that gave up no longer listens.
                    let _ = w.answer.send(Ok(mine));
                }
            }
            Err(e) => {
                for w in batch {
                    let _ = w.answer.send(Err(e.clone()));
                }
            }
        }
        drop(self);
    }
}

impl EtcdEngine {
    /// A client of the cluster. Connections are made when needed (and made
    /// again when lost), so this succeeds while the cluster is down, unless
    /// a user is given: logging in needs a member (within the request timeout).
    pub async fn connect(opts: EtcdOptions) -> Result<Self, EngineError> {
        if opts.endpoints.is_empty() {
            return Err(EngineError::Invalid("no etcd endpoints"));
        }
        check_prefix(&opts.prefix).map_err(EngineError::Invalid)?;
        if opts.request_timeout.is_zero() || opts.dial_timeout.is_zero() {
            return Err(EngineError::Invalid("etcd timeouts must be positive"));
        }
        let mut connect = ConnectOptions::new()
            .with_require_leader(true)
            .with_connect_timeout(opts.dial_timeout)
            .with_keep_alive(KEEPALIVE_EVERY, opts.request_timeout);
        if let Some((name, password)) = &opts.user {
            connect = connect
                .with_user(name.clone(), password.clone())
                .with_auto_token_refresh(true);
        }
        if let Some(tls) = &opts.tls {
            connect = connect.with_tls(tls_options(tls)?);
        }
        let client = tokio::time::timeout(
            opts.request_timeout,
            Client::connect(&opts.endpoints, Some(connect)),
        )
        .await
        .map_err(|_| EngineError::Unavailable("logging in to etcd timed out".into()))?
        .map_err(|e| classify(&e).error)?;
        let root: Vec<u8> = format!("{}/", opts.prefix).into_bytes();
        // Markers must outlive their commit and its resolution (three request
        // timeouts); a marker that does not makes the outcome unknown, never wrong.
        let ttl = LEASE_REUSE + (opts.request_timeout * 6).max(Duration::from_secs(60));
        Ok(EtcdEngine {
            inner: Arc::new(Inner {
                reader: Reader {
                    kv: client.kv_client().max_decoding_message_size(MAX_RESPONSE),
                    root: root.into(),
                    timeout: opts.request_timeout,
                    group: Arc::default(),
                },
                leases: client.lease_client(),
                lease: tokio::sync::Mutex::new(None),
                lease_ttl: ttl.as_secs() as i64,
                #[cfg(test)]
                faults: tests::Faults::default(),
            }),
        })
    }

    fn reader(&self) -> &Reader {
        &self.inner.reader
    }

    /// The lease for a new marker: the current one while it is young, else a new one.
    async fn lease(&self, deadline: Instant) -> Result<i64, EngineError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut slot = tokio::time::timeout(left, self.inner.lease.lock())
            .await
            .map_err(|_| EngineError::Timeout)?;
        if let Some((id, since)) = *slot {
            if since.elapsed() < LEASE_REUSE {
                return Ok(id);
            }
        }
        let asked = Instant::now();
        let ttl = self.inner.lease_ttl;
        let granted = retrying(deadline, self.reader().timeout, || {
            let mut leases = self.inner.leases.clone();
            async move { leases.grant(ttl, None).await }
        })
        .await
        .map_err(|f| f.error)?;
        *slot = Some((granted.id(), asked));
        Ok(granted.id())
    }

    async fn forget_lease(&self, id: i64) {
        let mut slot = self.inner.lease.lock().await;
        if matches!(*slot, Some((current, _)) if current == id) {
            *slot = None;
        }
    }

    fn marker(&self) -> Vec<u8> {
        let mut key = self.reader().key(MARKERS);
        key.extend_from_slice(format!("{:032x}", rand::random::<u128>()).as_bytes());
        key
    }

    fn commit_txn(&self, commit: &Commit, marker: &[u8], lease: i64) -> Txn {
        let r = self.reader();
        let mut compares: Vec<Compare> = commit
            .guards
            .iter()
            .map(|g| match &g.expect {
                Some(v) => Compare::value(r.key(&g.key), CompareOp::Equal, v.clone()),
                None => Compare::version(r.key(&g.key), CompareOp::Equal, 0),
            })
            .collect();
        compares.push(Compare::version(marker, CompareOp::Equal, 0));
        let mut ops: Vec<TxnOp> = commit
            .writes
            .iter()
            .map(|w| match w {
                Write::Put(k, v) => TxnOp::put(r.key(k), v.clone(), None),
                Write::Delete(k) => TxnOp::delete(r.key(k), None),
            })
            .collect();
        ops.push(TxnOp::put(
            marker,
            DONE,
            Some(PutOptions::new().with_lease(lease)),
        ));
        Txn::new().when(compares).and_then(ops)
    }

    /// Sends a commit's transaction once (within `deadline`).
    async fn send(&self, txn: Txn, deadline: Instant) -> Result<TxnResponse, Failure> {
        #[cfg(test)]
        if let Some(failure) = self.inner.faults.before_send() {
            return Err(failure);
        }
        let mut kv = self.reader().kv.clone();
        let left = deadline.saturating_duration_since(Instant::now());
        let answer = match tokio::time::timeout(left, kv.txn(txn)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => Err(Failure::timeout()),
        };
        #[cfg(test)]
        if let Some(failure) = self.inner.faults.after_send() {
            return Err(failure);
        }
        answer
    }

    /// Whether the commit that carried `marker` was applied, decided by a fence.
    async fn resolve(&self, marker: &[u8], lease: i64) -> Outcome {
        let deadline = Instant::now() + self.reader().timeout * 2;
        let fence = Txn::new()
            .when([Compare::version(marker, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                marker,
                ABORTED,
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(marker, None)]);
        let answer = retrying(deadline, self.reader().timeout, || {
            let (mut kv, fence) = (self.reader().kv.clone(), fence.clone());
            async move { kv.txn(fence).await }
        })
        .await;
        let resp = match answer {
            Ok(resp) => resp,
            Err(f) if f.lease_gone => {
                return Outcome::Unknown(
                    "the lease of its marker expired before the outcome could be read".into(),
                )
            }
            Err(f) => return Outcome::Unknown(format!("the fence failed: {}", f.error)),
        };
        if resp.succeeded() {
            return Outcome::NotApplied;
        }
        let value = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(mut get) => get.take_kvs().pop().map(|kv| kv.value().to_vec()),
            _ => None,
        });
        match value.as_deref() {
            Some(DONE) => Outcome::Applied,
            Some(ABORTED) => Outcome::NotApplied,
            _ => Outcome::Unknown("its marker holds an unexpected value".into()),
        }
    }
}

/// What a fence found out about a commit.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Applied,
    NotApplied,
    Unknown(String),
}

fn tls_options(tls: &EtcdTls) -> Result<TlsOptions, EngineError> {
    let read = |path: &PathBuf| {
        std::fs::read(path)
            .map_err(|e| EngineError::Io(format!("cannot read {}: {e}", path.display())))
    };
    let mut options = TlsOptions::new().ca_certificate(Certificate::from_pem(read(&tls.ca)?));
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            options = options.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        (None, None) => {}
        _ => {
            return Err(EngineError::Invalid(
                "etcd TLS: a client certificate needs its key, and a key its certificate",
            ))
        }
    }
    if let Some(domain) = &tls.domain {
        options = options.domain_name(domain.clone());
    }
    Ok(options)
}

fn reserved(key: &[u8]) -> bool {
    key.starts_with(MARKERS)
}

const RESERVED: EngineError =
    EngineError::Invalid("keys that begin with ~txn/ are reserved by the etcd engine");

impl Reader {
    /// The etcd key of a flat key.
    fn key(&self, flat: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.root.len() + flat.len());
        key.extend_from_slice(&self.root);
        key.extend_from_slice(flat);
        key
    }

    /// Runs a read-only transaction, retried until the request timeout.
    async fn read(&self, txn: Txn) -> Result<TxnResponse, EngineError> {
        self.read_until(txn, Instant::now() + self.timeout).await
    }

    /// Runs a read-only transaction, retried until `deadline`.
    async fn read_until(&self, txn: Txn, deadline: Instant) -> Result<TxnResponse, EngineError> {
        retrying(deadline, self.timeout, || {
            let (mut kv, txn) = (self.kv.clone(), txn.clone());
            async move { kv.txn(txn).await }
        })
        .await
        .map_err(|f| f.error)
    }

    async fn revision(&self) -> Result<i64, EngineError> {
        let deadline = Instant::now() + self.timeout;
        let resp = retrying(deadline, self.timeout, || {
            let (mut kv, key) = (self.kv.clone(), self.root.to_vec());
            async move { kv.get(key, Some(GetOptions::new().with_count_only())).await }
        })
        .await
        .map_err(|f| f.error)?;
        resp.header()
            .map(|h| h.revision())
            .ok_or_else(|| EngineError::Io("etcd answered without a revision".into()))
    }

    async fn get_many(&self, keys: &[&[u8]], rev: i64) -> Result<Vec<Option<Value>>, EngineError> {
        if keys.len() > LIMITS.max_batch_keys {
            return Err(EngineError::TooLarge {
                what: "keys in one read",
                limit: LIMITS.max_batch_keys,
            });
        }
        if keys.iter().any(|k| reserved(k)) {
            return Err(RESERVED);
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if rev == 0 {
            return self.grouped(keys).await;
        }
        let ops: Vec<TxnOp> = keys
            .iter()
            .map(|k| TxnOp::get(self.key(k), Some(GetOptions::new().with_revision(rev))))
            .collect();
        let resp = self.read(Txn::new().and_then(ops)).await.map_err(at(rev))?;
        values(resp, keys.len())
    }

    /// A read of the newest revision, through the [`ReadGroup`].
    async fn grouped(&self, keys: &[&[u8]]) -> Result<Vec<Option<Value>>, EngineError> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| self.key(k)).collect();
        let waiting = {
            let mut state = self.group.state.lock();
            if state.in_flight < READS_IN_FLIGHT {
                state.in_flight += 1;
                None
            } else {
                let (answer, answered) = tokio::sync::oneshot::channel();
                state.waiting.push_back(Waiting {
                    keys: keys.clone(),
                    answer,
                });
                Some(answered)
            }
        };
        let Some(answered) = waiting else {
            // A slot: read now, alone. Its drop (also if this call is
            // abandoned) hands it on.
            let slot = Slot {
                reader: self.clone(),
            };
            let n = keys.len();
            let ops: Vec<TxnOp> = keys.into_iter().map(|k| TxnOp::get(k, None)).collect();
            #[cfg(test)]
            self.group
                .sent
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let resp = self.read(Txn::new().and_then(ops)).await;
            drop(slot);
            return values(resp?, n);
        };
        let deadline = Instant::now() + self.timeout;
        match tokio::time::timeout(self.patience(), answered).await {
            Ok(Ok(answer)) => return answer,
            Ok(Err(_)) => {
                return Err(EngineError::Unavailable(
                    "the etcd client is shutting down".into(),
                ))
            }
            Err(_) => {}
        }
        // The reads in flight are stuck (a member that stopped answering):
        // this one goes alone, so that one stuck read never holds up the rest.
        let n = keys.len();
        let ops: Vec<TxnOp> = keys.into_iter().map(|k| TxnOp::get(k, None)).collect();
        values(
            self.read_until(Txn::new().and_then(ops), deadline).await?,
            n,
        )
    }

    /// How long a read waits for its group before it goes alone.
    fn patience(&self) -> Duration {
        self.timeout / 10
    }

    async fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
        rev: i64,
    ) -> Result<Page, EngineError> {
        let limit = limit.clamp(1, LIMITS.max_page);
        let start = match scan_start(prefix, after) {
            Bound::Excluded(a) => {
                let mut k = self.key(&a);
                k.push(0);
                k
            }
            Bound::Included(p) => self.key(&p),
            Bound::Unbounded => self.key(prefix),
        };
        // Never `None`: these keys begin with `<prefix>/`. (Were it, the
        // pieces below would be empty, and so the page.)
        let end = prefix_end(&self.key(prefix)).unwrap_or_default();
        // The markers' range is cut out: at most two pieces remain.
        let markers = self.key(MARKERS);
        let markers_end = prefix_end(&markers).unwrap_or_default();
        let mut pieces = Vec::new();
        let first_end = end.clone().min(markers.clone());
        if start < first_end {
            pieces.push((start.clone(), first_end));
        }
        let second_start = start.max(markers_end);
        if second_start < end {
            pieces.push((second_start, end));
        }
        if pieces.is_empty() {
            return Ok(Page::default());
        }
        let ops: Vec<TxnOp> = pieces
            .into_iter()
            .map(|(from, to)| {
                let range = GetOptions::new()
                    .with_range(to)
                    .with_limit(limit as i64)
                    .with_revision(rev);
                TxnOp::get(from, Some(range))
            })
            .collect();
        let resp = self.read(Txn::new().and_then(ops)).await.map_err(at(rev))?;
        let mut page = Page::default();
        for mut range in ranges(resp)? {
            let mut kvs = range.take_kvs();
            if page.entries.len() + kvs.len() > limit {
                kvs.truncate(limit - page.entries.len());
                page.more = true;
            }
            page.more |= range.more();
            for kv in kvs {
                let (key, value) = kv.into_key_value();
                let flat = key.get(self.root.len()..).ok_or_else(|| {
                    EngineError::Io("etcd answered a key outside the range".into())
                })?;
                page.entries.push((flat.to_vec(), value));
            }
        }
        Ok(page)
    }
}

/// The range answers of a read-only transaction, in order.
fn ranges(resp: TxnResponse) -> Result<Vec<GetResponse>, EngineError> {
    resp.op_responses()
        .into_iter()
        .map(|op| match op {
            TxnOpResponse::Get(get) => Ok(get),
            _ => Err(EngineError::Io("etcd answered a read with a write".into())),
        })
        .collect()
}

/// The values of the `n` single-key ranges of a read-only transaction, in order.
fn values(resp: TxnResponse, n: usize) -> Result<Vec<Option<Value>>, EngineError> {
    let ranges = ranges(resp)?;
    if ranges.len() != n {
        return Err(EngineError::Io(
            "etcd answered a different number of reads".into(),
        ));
    }
    Ok(ranges
        .into_iter()
        .map(|mut r| r.take_kvs().pop().map(|kv| kv.into_key_value().1))
        .collect())
}

/// Names the revision in "compacted" errors of snapshot reads.
fn at(rev: i64) -> impl Fn(EngineError) -> EngineError {
    move |e| match e {
        EngineError::Io(why) if rev > 0 && why.contains("compacted") => EngineError::Io(format!(
            "etcd has compacted revision {rev}, the read point of this snapshot: take a new one"
        )),
        e => e,
    }
}

/// A failed etcd call.
#[derive(Debug)]
struct Failure {
    error: EngineError,
    /// etcd surely did not act on the request (refused before processing it).
    refused: bool,
    /// Trying again soon may work (another member, a new leader).
    retry: bool,
    /// A put named a lease etcd no longer has.
    lease_gone: bool,
}

impl Failure {
    fn timeout() -> Self {
        Failure {
            error: EngineError::Timeout,
            refused: false,
            retry: true,
            lease_gone: false,
        }
    }
}

/// What an etcd error means here. etcd's messages name no stored values,
/// and neither do the client's.
fn classify(e: &etcd_client::Error) -> Failure {
    let fail = |error, refused, retry| Failure {
        error,
        refused,
        retry,
        lease_gone: false,
    };
    let status = match e {
        etcd_client::Error::GRpcStatus(status) => status,
        etcd_client::Error::InvalidArgs(why) => {
            return fail(EngineError::Io(format!("etcd client: {why}")), true, false)
        }
        other => return fail(EngineError::Unavailable(other.to_string()), false, true),
    };
    let code = i32::from(status.code());
    let msg = status.message();
    let has = |s: &str| msg.contains(s);
    if has("no leader") {
        fail(
            EngineError::Unavailable("etcd has no leader (is a quorum of members up?)".into()),
            true,
            true,
        )
    } else if has("requested lease not found") {
        Failure {
            lease_gone: true,
            ..fail(
                EngineError::Unavailable("etcd no longer has the marker lease".into()),
                true,
                false,
            )
        }
    } else if has("database space exceeded") {
        fail(
            EngineError::Full(
                "etcd's database is over its quota (compact, defragment, disarm the alarm)".into(),
            ),
            true,
            false,
        )
    } else if has("request is too large") {
        fail(
            EngineError::TooLarge {
                what: "bytes in one etcd request",
                limit: MAX_REQUEST,
            },
            true,
            false,
        )
    } else if has("too many operations") {
        fail(
            EngineError::TooLarge {
                what: "operations in one etcd transaction",
                limit: 128,
            },
            true,
            false,
        )
    } else if has("message length too large") {
        fail(
            EngineError::TooLarge {
                what: "bytes in one etcd response",
                limit: MAX_RESPONSE,
            },
            false,
            false,
        )
    } else if has("compacted") || has("future revision") {
        fail(EngineError::Io(format!("etcd: {msg}")), true, false)
    } else if code == code::UNAUTHENTICATED
        || code == code::PERMISSION_DENIED
        || has("authentication")
        || has("permission denied")
        || has("auth token")
        || has("user name")
    {
        fail(
            EngineError::Unavailable(format!("etcd refused the credentials: {msg}")),
            true,
            false,
        )
    } else if code == code::RESOURCE_EXHAUSTED {
        fail(
            EngineError::TooLarge {
                what: "bytes in one etcd request",
                limit: MAX_REQUEST,
            },
            true,
            false,
        )
    } else if code == code::DEADLINE_EXCEEDED || code == code::CANCELLED {
        fail(EngineError::Timeout, false, true)
    } else if code == code::UNAVAILABLE {
        // A connection that could not be made carried no request.
        let unsent =
            has("tcp connect") || has("onnection refused") || has("error trying to connect");
        fail(
            EngineError::Unavailable(format!("etcd: {msg}")),
            unsent,
            true,
        )
    } else if has("transport error") || has("connection") || has("h2 protocol") {
        // The connection broke (a member died): the request may have arrived.
        fail(
            EngineError::Unavailable(format!("etcd: {msg}")),
            false,
            true,
        )
    } else if code == code::INVALID_ARGUMENT || code == code::FAILED_PRECONDITION {
        fail(
            EngineError::Io(format!("etcd refused the request: {msg}")),
            true,
            false,
        )
    } else {
        fail(EngineError::Io(format!("etcd: {msg}")), false, true)
    }
}

/// gRPC status codes (the numbers are the protocol's).
mod code {
    pub const CANCELLED: i32 = 1;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const UNAVAILABLE: i32 = 14;
    pub const UNAUTHENTICATED: i32 = 16;
}

/// Calls `call` (each try within `each`) until it answers, fails for good,
/// or `deadline` passes; pauses between tries grow from 20 ms to 500 ms.
async fn retrying<T, F, Fut>(deadline: Instant, each: Duration, mut call: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    let mut pause = Duration::from_millis(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let failure = match tokio::time::timeout(left.min(each), call()).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(e)) => classify(&e),
            Err(_) => Failure::timeout(),
        };
        if !failure.retry || Instant::now() + pause >= deadline {
            return Err(failure);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

#[async_trait]
impl Engine for EtcdEngine {
    fn name(&self) -> &'static str {
        "etcd"
    }

    fn limits(&self) -> Limits {
        LIMITS
    }

    async fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Value>>, EngineError> {
        self.reader().get_many(keys, 0).await
    }

    async fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page, EngineError> {
        self.reader().scan(prefix, after, limit, 0).await
    }

    async fn snapshot(&self) -> Result<Box<dyn Snapshot>, EngineError> {
        let rev = self.reader().revision().await?;
        Ok(Box::new(EtcdSnapshot {
            reader: self.reader().clone(),
            rev,
        }))
    }

    async fn commit(&self, commit: Commit) -> Result<(), EngineError> {
        commit.check(&LIMITS)?;
        if commit.guards.iter().any(|g| reserved(&g.key))
            || commit.writes.iter().any(|w| reserved(w.key()))
        {
            return Err(RESERVED);
        }
        if commit.writes.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + self.reader().timeout;
        let mut pause = Duration::from_millis(20);
        loop {
            let lease = self.lease(deadline).await?;
            let marker = self.marker();
            let txn = self.commit_txn(&commit, &marker, lease);
            let failure = match self.send(txn, deadline).await {
                Ok(resp) if resp.succeeded() => return Ok(()),
                Ok(_) => return Err(EngineError::Conflict),
                Err(failure) => failure,
            };
            if failure.lease_gone {
                self.forget_lease(lease).await;
            } else if !failure.refused {
                match self.resolve(&marker, lease).await {
                    Outcome::Applied => return Ok(()),
                    Outcome::NotApplied => {}
                    Outcome::Unknown(why) => return Err(EngineError::OutcomeUnknown(why)),
                }
            }
            // Not applied: try again while there is time.
            let retry = failure.retry || failure.lease_gone;
            if !retry || Instant::now() + pause >= deadline {
                return Err(failure.error);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    async fn health(&self) -> Result<(), EngineError> {
        self.reader().revision().await.map(drop)
    }
}

/// A read point of an [`EtcdEngine`]: a revision.
struct EtcdSnapshot {
    reader: Reader,
    rev: i64,
}

#[async_trait]
impl Snapshot for EtcdSnapshot {
    async fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Value>>, EngineError> {
        self.reader.get_many(keys, self.rev).await
    }

    async fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page, EngineError> {
        self.reader.scan(prefix, after, limit, self.rev).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;

    use super::*;
    use crate::engine::{Durability, Guard};

    /// Faults injected into commits, to test the resolution of unknown outcomes.
    #[derive(Default)]
    pub(super) struct Faults {
        /// Commit requests to lose before they are sent (as a dropped connection would).
        drop_requests: AtomicUsize,
        /// Answers to lose after etcd acted on the request (as a timeout would).
        lose_answers: AtomicUsize,
    }

    fn take(n: &AtomicUsize) -> bool {
        n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
            .is_ok()
    }

    impl Faults {
        pub(super) fn before_send(&self) -> Option<Failure> {
            take(&self.drop_requests).then(|| Failure {
                error: EngineError::Unavailable("injected: the connection dropped".into()),
                refused: false,
                retry: true,
                lease_gone: false,
            })
        }

        pub(super) fn after_send(&self) -> Option<Failure> {
            take(&self.lose_answers).then(Failure::timeout)
        }
    }

    #[test]
    fn urls_name_endpoints_and_prefix() {
        let o = EtcdOptions::from_url("etcd://10.0.0.1:2379,etcd-2.local:2380/ozmint/prod")
            .expect("url");
        assert_eq!(o.endpoints, ["10.0.0.1:2379", "etcd-2.local:2380"]);
        assert_eq!(o.prefix, "ozmint/prod");
        assert_eq!(o.request_timeout, Duration::from_secs(5));
        let o = EtcdOptions::from_url("etcd://[::1]:2379").expect("url");
        assert_eq!(o.endpoints, ["[::1]:2379"]);
        assert_eq!(o.prefix, DEFAULT_PREFIX);
        for (bad, says) in [
            ("http://127.0.0.1:2379", "begins with etcd://"),
            ("etcd://", "is not HOST:PORT"),
            ("etcd://host", "is not HOST:PORT"),
            ("etcd://:2379", "no valid host"),
            ("etcd://h:0", "no valid port"),
            ("etcd://h:99999", "no valid port"),
            ("etcd://h:1,,h:2", "is not HOST:PORT"),
            ("etcd://h:1/", "prefix is empty"),
            ("etcd://h:1/a/", "empty part"),
            ("etcd://h:1/a//b", "empty part"),
            ("etcd://h:1/a b", "letters, digits"),
            (
                &format!("etcd://h:1/{}", "p".repeat(257)),
                "longer than 256",
            ),
        ] {
            let err = EtcdOptions::from_url(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn debug_output_hides_the_password() {
        let o = EtcdOptions {
            user: Some(("root".into(), "hunter2-secret".into())),
            ..EtcdOptions::default()
        };
        let text = format!("{o:?}");
        assert!(text.contains("root") && !text.contains("hunter2"), "{text}");
    }

    static CLUSTER: OnceLock<Option<testkit::etcd::Cluster>> = OnceLock::new();

    /// An engine on a fresh prefix of the cluster shared by these tests.
    async fn engine() -> Option<EtcdEngine> {
        let cluster = CLUSTER
            .get_or_init(testkit::etcd::Cluster::start)
            .as_ref()?;
        let prefix = format!("unit-{:016x}", rand::random::<u64>());
        let opts = EtcdOptions::from_url(&cluster.url(&prefix)).expect("url");
        Some(EtcdEngine::connect(opts).await.expect("connect"))
    }

    fn put(key: &str, value: &str) -> Commit {
        Commit::new(
            vec![Guard::absent(key.as_bytes().to_vec())],
            vec![Write::Put(key.into(), value.into())],
            Durability::Immediate,
        )
    }

    async fn get(e: &EtcdEngine, key: &str) -> Option<Vec<u8>> {
        e.get_many(&[key.as_bytes()]).await.expect("get").remove(0)
    }

    #[tokio::test]
    async fn concurrent_reads_are_grouped_and_each_gets_its_own_values() {
        let Some(e) = engine().await else { return };
        for i in 0..64 {
            e.commit(put(&format!("k{i}"), &format!("v{i}")))
                .await
                .expect("commit");
        }
        let sent = || e.reader().group.sent.load(Ordering::SeqCst);
        let before = sent();
        let reads = (0..64).map(|i| {
            let e = e.clone();
            async move {
                let (a, b) = (format!("k{i}"), format!("k{}", 63 - i));
                let got = e
                    .get_many(&[a.as_bytes(), b"absent", b.as_bytes()])
                    .await
                    .expect("read");
                let want = [Some(format!("v{i}")), None, Some(format!("v{}", 63 - i))];
                let got: Vec<Option<String>> = got
                    .into_iter()
                    .map(|v| v.map(|v| String::from_utf8(v).expect("utf-8")))
                    .collect();
                assert_eq!(got, want, "read {i}");
            }
        });
        let tasks: Vec<_> = reads.map(tokio::spawn).collect();
        for t in tasks {
            t.await.expect("read task");
        }
        let txns = sent() - before;
        assert!(txns < 64, "64 concurrent reads took {txns} transactions");
        assert_eq!(e.reader().group.state.lock().in_flight, 0);
    }

    #[tokio::test]
    async fn an_abandoned_read_hands_its_turn_on() {
        let Some(e) = engine().await else { return };
        e.commit(put("k", "v")).await.expect("commit");
        for _ in 0..20 {
            // Dropped while in flight (or while waiting): the slot must not leak.
            let _ = tokio::time::timeout(Duration::from_micros(50), e.get_many(&[b"k"])).await;
        }
        let late = tokio::time::timeout(Duration::from_secs(5), e.get_many(&[b"k"]))
            .await
            .expect("a read after abandoned ones is answered")
            .expect("read");
        assert_eq!(late, [Some(b"v".to_vec())]);
        // The background reads of abandoned calls finish too.
        let deadline = Instant::now() + Duration::from_secs(5);
        while e.reader().group.state.lock().in_flight > 0 {
            assert!(Instant::now() < deadline, "a read slot leaked");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_read_behind_stuck_ones_goes_alone_after_its_patience() {
        let Some(e) = engine().await else { return };
        e.commit(put("k", "v")).await.expect("commit");
        // Every slot held by reads that never return.
        e.reader().group.state.lock().in_flight = READS_IN_FLIGHT;
        let t = Instant::now();
        let got = e.get_many(&[b"k"]).await.expect("read");
        let took = t.elapsed();
        e.reader().group.state.lock().in_flight = 0;
        assert_eq!(got, [Some(b"v".to_vec())]);
        let patience = e.reader().patience();
        assert!(
            took >= patience && took < e.reader().timeout,
            "took {took:?} (patience {patience:?})"
        );
    }

    /// The values of this engine's markers, sorted.
    async fn markers(e: &EtcdEngine) -> Vec<String> {
        let mut kv = e.reader().kv.clone();
        let resp = kv
            .get(
                e.reader().key(MARKERS),
                Some(GetOptions::new().with_prefix()),
            )
            .await
            .expect("markers");
        let mut values: Vec<String> = resp
            .kvs()
            .iter()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
            .collect();
        values.sort();
        values
    }

    #[tokio::test]
    async fn a_commit_whose_answer_is_lost_is_found_applied() {
        let Some(e) = engine().await else { return };
        e.inner.faults.lose_answers.store(1, Ordering::SeqCst);
        assert_eq!(e.commit(put("k", "v")).await, Ok(()));
        assert_eq!(e.inner.faults.lose_answers.load(Ordering::SeqCst), 0);
        assert_eq!(get(&e, "k").await.as_deref(), Some(&b"v"[..]));
        assert_eq!(markers(&e).await, ["done"], "applied once, no fence won");
    }

    #[tokio::test]
    async fn a_commit_whose_request_is_lost_is_fenced_and_tried_again() {
        let Some(e) = engine().await else { return };
        e.inner.faults.drop_requests.store(1, Ordering::SeqCst);
        assert_eq!(e.commit(put("k", "v")).await, Ok(()));
        assert_eq!(get(&e, "k").await.as_deref(), Some(&b"v"[..]));
        assert_eq!(
            markers(&e).await,
            ["aborted", "done"],
            "the first attempt was fenced, the second applied"
        );
    }

    #[tokio::test]
    async fn a_lost_answer_of_a_failed_guard_is_still_a_conflict() {
        let Some(e) = engine().await else { return };
        e.commit(put("k", "1")).await.expect("seed");
        e.inner.faults.lose_answers.store(1, Ordering::SeqCst);
        let guarded = Commit::new(
            vec![Guard::holds(b"k".to_vec(), b"0".to_vec())],
            vec![Write::Put(b"k".to_vec(), b"2".to_vec())],
            Durability::Immediate,
        );
        assert_eq!(e.commit(guarded).await, Err(EngineError::Conflict));
        assert_eq!(get(&e, "k").await.as_deref(), Some(&b"1"[..]));
    }

    #[tokio::test]
    async fn a_fenced_commit_can_never_apply() {
        let Some(e) = engine().await else { return };
        let deadline = Instant::now() + e.reader().timeout;
        let lease = e.lease(deadline).await.expect("lease");
        let marker = e.marker();
        assert_eq!(e.resolve(&marker, lease).await, Outcome::NotApplied);
        // The commit arrives after its fence (it was stuck on the way): it fails.
        let late = e.commit_txn(&put("k", "v"), &marker, lease);
        let resp = e.reader().kv.clone().txn(late).await.expect("txn");
        assert!(!resp.succeeded(), "a fenced commit applied");
        assert_eq!(get(&e, "k").await, None);
        // Fencing again (the first fence's answer lost) says the same.
        assert_eq!(e.resolve(&marker, lease).await, Outcome::NotApplied);
    }

    #[tokio::test]
    async fn an_applied_commit_is_found_applied_every_time() {
        let Some(e) = engine().await else { return };
        let deadline = Instant::now() + e.reader().timeout;
        let lease = e.lease(deadline).await.expect("lease");
        let marker = e.marker();
        let txn = e.commit_txn(&put("k", "v"), &marker, lease);
        assert!(e
            .reader()
            .kv
            .clone()
            .txn(txn)
            .await
            .expect("txn")
            .succeeded());
        assert_eq!(e.resolve(&marker, lease).await, Outcome::Applied);
        assert_eq!(e.resolve(&marker, lease).await, Outcome::Applied);
        assert_eq!(markers(&e).await, ["done"]);
    }

    #[tokio::test]
    async fn without_its_lease_a_commit_cannot_apply_and_its_outcome_is_unknown() {
        let Some(e) = engine().await else { return };
        let mut leases = e.inner.leases.clone();
        let lease = leases.grant(60, None).await.expect("grant").id();
        leases.revoke(lease).await.expect("revoke");
        // etcd refuses a put with a lease it does not have, and writes nothing.
        let marker = e.marker();
        let txn = e.commit_txn(&put("k", "v"), &marker, lease);
        let err = e
            .reader()
            .kv
            .clone()
            .txn(txn)
            .await
            .expect_err("lease gone");
        assert!(classify(&err).lease_gone, "{err}");
        assert_eq!(get(&e, "k").await, None);
        // So once the lease is gone the fence cannot tell: unknown.
        assert!(matches!(
            e.resolve(&marker, lease).await,
            Outcome::Unknown(why) if why.contains("lease")
        ));
        // A commit on an engine whose lease vanished takes a new one.
        *e.inner.lease.lock().await = Some((lease, Instant::now()));
        assert_eq!(e.commit(put("k", "v")).await, Ok(()));
        assert_eq!(get(&e, "k").await.as_deref(), Some(&b"v"[..]));
    }

    #[tokio::test]
    async fn an_unreachable_cluster_fails_calls_in_time() {
        // Nothing listens on a port that was just free.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let opts = EtcdOptions {
            endpoints: vec![format!("127.0.0.1:{port}")],
            request_timeout: Duration::from_millis(500),
            ..EtcdOptions::default()
        };
        let e = EtcdEngine::connect(opts).await.expect("connect is lazy");
        let bound = Duration::from_millis(500 + 500);
        let t = Instant::now();
        let r = e.commit(put("k", "v")).await;
        assert!(matches!(r, Err(EngineError::Unavailable(_))), "{r:?}");
        assert!(t.elapsed() < bound, "commit took {:?}", t.elapsed());
        let t = Instant::now();
        let r = e.get_many(&[b"k"]).await;
        assert!(matches!(r, Err(EngineError::Unavailable(_))), "{r:?}");
        assert!(t.elapsed() < bound, "get_many took {:?}", t.elapsed());
        let t = Instant::now();
        let outcome = e.resolve(b"ozmint/~txn/0", 1).await;
        assert!(matches!(outcome, Outcome::Unknown(_)), "{outcome:?}");
        assert!(t.elapsed() < bound * 2, "resolve took {:?}", t.elapsed());
    }

    #[tokio::test]
    async fn markers_are_out_of_sight_and_out_of_reach() {
        let Some(e) = engine().await else { return };
        e.commit(put("a", "1")).await.expect("commit");
        e.commit(put("~z", "2")).await.expect("commit");
        assert!(!markers(&e).await.is_empty());
        let all = e.scan(b"", None, 1000).await.expect("scan");
        let keys: Vec<&[u8]> = all.entries.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, [&b"a"[..], b"~z"]);
        assert!(!all.more);
        // Pages that straddle the markers' range.
        let first = e.scan(b"", None, 1).await.expect("scan");
        assert_eq!(first.entries.len(), 1);
        assert!(first.more);
        let second = e.scan(b"", Some(b"a"), 1).await.expect("scan");
        assert_eq!(second.entries[0].0, b"~z");
        assert!(!second.more);
        let inside = e.scan(b"~txn/", None, 10).await.expect("scan");
        assert_eq!(inside, Page::default());
        let tilde = e.scan(b"~", None, 10).await.expect("scan");
        assert_eq!(tilde.entries.len(), 1);
        assert_eq!(e.get_many(&[b"~txn/x"]).await, Err(RESERVED));
        assert_eq!(e.commit(put("~txn/x", "v")).await, Err(RESERVED));
    }

    #[tokio::test]
    async fn nothing_is_written_outside_the_prefix() {
        let Some(e) = engine().await else { return };
        for i in 0..5 {
            e.commit(put(&format!("k{i}"), "v")).await.expect("commit");
        }
        // Every key under the bare prefix (neighbours included) is under `<prefix>/`.
        let root = e.reader().root.to_vec();
        let bare = &root[..root.len() - 1];
        let mut kv = e.reader().kv.clone();
        let resp = kv
            .get(bare, Some(GetOptions::new().with_prefix()))
            .await
            .expect("get");
        assert!(resp.kvs().len() >= 5);
        assert!(resp.kvs().iter().all(|kv| kv.key().starts_with(&root)));
    }

    #[tokio::test]
    async fn a_snapshot_of_a_compacted_revision_says_so() {
        let Some(e) = engine().await else { return };
        e.commit(put("k", "old-value")).await.expect("commit");
        let snap = e.snapshot().await.expect("snapshot");
        let new = Commit::new(
            vec![],
            vec![Write::Put(b"k".to_vec(), b"new".to_vec())],
            Durability::Eventual,
        );
        e.commit(new).await.expect("commit");
        let mut kv = e.reader().kv.clone();
        let now = kv.get(b"x".to_vec(), None).await.expect("get");
        let rev = now.header().expect("header").revision();
        kv.compact(rev, None).await.expect("compact");
        for r in [
            snap.get_many(&[b"k"]).await.map(drop),
            snap.scan(b"", None, 10).await.map(drop),
        ] {
            let err = r.expect_err("compacted");
            let text = err.to_string();
            assert!(matches!(err, EngineError::Io(_)), "{err:?}");
            assert!(
                text.contains("compacted") && !text.contains("old-value"),
                "{text}"
            );
        }
        assert_eq!(get(&e, "k").await.as_deref(), Some(&b"new"[..]));
    }
}
