//! The storage seam: the store talks to every engine through [`Engine`].
//!
//! An engine is one ordered map from byte keys to byte values with four
//! abilities, and nothing else:
//!
//! - [`Engine::get_many`]: a batched point read (one round trip on a remote engine);
//! - [`Engine::scan`]: a bounded prefix scan that returns a [`Page`] and whether more follows;
//! - [`Engine::snapshot`]: a consistent read point, for reads that span many
//!   pages (backup, export, check, migrations);
//! - [`Engine::commit`]: the one write primitive. A [`Commit`] carries guards,
//!   writes and a [`Durability`]. Every [`Guard`] states what a key must hold at
//!   commit time (these bytes, or absent); if any guard fails nothing is
//!   written and the commit answers [`EngineError::Conflict`]. Otherwise every
//!   write is applied atomically, and durably before the call returns when the
//!   commit asks for [`Durability::Immediate`].
//!
//! Each engine states its [`Limits`] (writes and bytes per commit, page size);
//! callers plan their work in steps within them. Errors are typed
//! ([`EngineError`]) and never carry stored values.
//!
//! Engines: [`memory::MemoryEngine`] (volatile), [`sled::SledEngine`] (on disk,
//! the default) and, with the `etcd` feature, `etcd::EtcdEngine` (replicated).
//! Every engine passes the same conformance suite (`testkit::conformance`).

#[cfg(feature = "etcd")]
pub mod etcd;
pub mod memory;
pub mod sled;

use std::fmt;

use async_trait::async_trait;

/// A key: any bytes.
pub type Key = Vec<u8>;
/// A value: any bytes.
pub type Value = Vec<u8>;
/// One entry of a scan.
pub type Entry = (Key, Value);

/// What a key must hold when a commit is applied.
#[derive(Clone, PartialEq, Eq)]
pub struct Guard {
    /// The key.
    pub key: Key,
    /// `Some(bytes)`: the key holds exactly these bytes; `None`: the key is absent.
    pub expect: Option<Value>,
}

impl Guard {
    /// The key must hold `value`.
    pub fn holds(key: impl Into<Key>, value: impl Into<Value>) -> Self {
        Guard {
            key: key.into(),
            expect: Some(value.into()),
        }
    }

    /// The key must be absent.
    pub fn absent(key: impl Into<Key>) -> Self {
        Guard {
            key: key.into(),
            expect: None,
        }
    }
}

impl fmt::Debug for Guard {
    /// Keys and the kind of expectation only: values may be secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.expect.is_some() {
            "holds"
        } else {
            "absent"
        };
        write!(f, "Guard({} {what})", Printable(&self.key))
    }
}

/// One write of a commit.
#[derive(Clone, PartialEq, Eq)]
pub enum Write {
    /// Sets `key` to `value`.
    Put(Key, Value),
    /// Removes `key` (absent keys are fine).
    Delete(Key),
}

impl Write {
    /// The key written.
    pub fn key(&self) -> &[u8] {
        match self {
            Write::Put(k, _) | Write::Delete(k) => k,
        }
    }

    /// The value written, `None` for a delete.
    pub fn value(&self) -> Option<&[u8]> {
        match self {
            Write::Put(_, v) => Some(v),
            Write::Delete(_) => None,
        }
    }

    fn bytes(&self) -> usize {
        self.key().len() + self.value().map_or(0, <[u8]>::len)
    }
}

impl fmt::Debug for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Write::Put(k, v) => write!(f, "Put({}, {} bytes)", Printable(k), v.len()),
            Write::Delete(k) => write!(f, "Delete({})", Printable(k)),
        }
    }
}

/// Keys printed for diagnostics: printable ASCII as is, other bytes as `\xNN`.
struct Printable<'a>(&'a [u8]);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0.iter().take(80) {
            if b.is_ascii_graphic() {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        if self.0.len() > 80 {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// When a commit must be on durable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Durability {
    /// Before `commit` returns: an acknowledged commit survives a crash.
    Immediate,
    /// Soon after (the engine flushes in the background): for bulk loads and
    /// the relaxed mode. A crash can lose the last moments.
    Eventual,
}

/// An atomic, guarded group of writes.
#[derive(Clone, Debug)]
pub struct Commit {
    /// What must hold for the writes to apply.
    pub guards: Vec<Guard>,
    /// The writes, applied all or none. A key is written at most once.
    pub writes: Vec<Write>,
    /// When the writes must be durable.
    pub durability: Durability,
}

impl Commit {
    /// A commit of `writes` under `guards`.
    pub fn new(guards: Vec<Guard>, writes: Vec<Write>, durability: Durability) -> Self {
        Commit {
            guards,
            writes,
            durability,
        }
    }

    /// Total bytes of keys and values (guards included).
    pub fn bytes(&self) -> usize {
        let guards: usize = self
            .guards
            .iter()
            .map(|g| g.key.len() + g.expect.as_ref().map_or(0, Vec::len))
            .sum();
        guards + self.writes.iter().map(Write::bytes).sum::<usize>()
    }

    /// Checks the commit against an engine's limits and the one-write-per-key rule.
    pub fn check(&self, limits: &Limits) -> Result<(), EngineError> {
        if self.guards.len() > limits.max_guards {
            return Err(EngineError::TooLarge {
                what: "guards in one commit",
                limit: limits.max_guards,
            });
        }
        if self.writes.len() > limits.max_writes {
            return Err(EngineError::TooLarge {
                what: "writes in one commit",
                limit: limits.max_writes,
            });
        }
        if self.bytes() > limits.max_commit_bytes {
            return Err(EngineError::TooLarge {
                what: "bytes in one commit",
                limit: limits.max_commit_bytes,
            });
        }
        let mut keys: Vec<&[u8]> = self.writes.iter().map(Write::key).collect();
        keys.sort_unstable();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return Err(EngineError::Invalid("a commit writes one key twice"));
        }
        Ok(())
    }
}

/// What an engine accepts in one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Guards in one commit.
    pub max_guards: usize,
    /// Writes in one commit.
    pub max_writes: usize,
    /// Bytes of keys and values in one commit.
    pub max_commit_bytes: usize,
    /// Keys in one `get_many`.
    pub max_batch_keys: usize,
    /// Entries in one scanned page.
    pub max_page: usize,
}

/// A page of a prefix scan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// Entries in key order.
    pub entries: Vec<Entry>,
    /// Whether more entries with the prefix follow the last one.
    pub more: bool,
}

impl Page {
    /// The key to continue after, when more follow.
    pub fn next_after(&self) -> Option<&[u8]> {
        if self.more {
            self.entries.last().map(|(k, _)| k.as_slice())
        } else {
            None
        }
    }
}

/// Facts an engine reports about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Bytes used on disk (0 when not known or not on disk).
    pub bytes_on_disk: u64,
}

/// Why an engine call failed. Messages never contain stored values.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineError {
    /// A guard did not hold: nothing was written. Re-read and retry.
    Conflict,
    /// The store cannot serve now (no quorum, unreachable, reopening).
    /// Nothing was written. Retry later.
    Unavailable(String),
    /// The store did not answer in time; nothing was written.
    Timeout,
    /// A commit may or may not have been applied, and the engine could not
    /// find out (the store became unavailable while it tried).
    OutcomeUnknown(String),
    /// The commit or request exceeds a limit of the engine.
    TooLarge {
        /// What exceeded the limit.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The store is out of space; reads still work, writes fail until space is freed.
    Full(String),
    /// Stored data or the engine's files are damaged.
    Corrupt(String),
    /// The call itself is not valid (e.g. one key written twice).
    Invalid(&'static str),
    /// Any other failure of the engine (I/O).
    Io(String),
}

impl EngineError {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            EngineError::Conflict
                | EngineError::Unavailable(_)
                | EngineError::Timeout
                | EngineError::Full(_)
        )
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Conflict => f.write_str("storage engine: a guarded key changed"),
            EngineError::Unavailable(why) => write!(f, "storage engine unavailable: {why}"),
            EngineError::Timeout => f.write_str("storage engine: the request timed out"),
            EngineError::OutcomeUnknown(why) => {
                write!(
                    f,
                    "storage engine: the outcome of a write is unknown: {why}"
                )
            }
            EngineError::TooLarge { what, limit } => {
                write!(f, "storage engine: too many {what} (at most {limit})")
            }
            EngineError::Full(why) => write!(f, "storage engine: out of space: {why}"),
            EngineError::Corrupt(why) => write!(f, "storage engine: damaged data: {why}"),
            EngineError::Invalid(why) => write!(f, "storage engine: invalid call: {why}"),
            EngineError::Io(why) => write!(f, "storage engine: {why}"),
        }
    }
}

impl std::error::Error for EngineError {}

/// An ordered key-value engine. Object safe: the store holds an `Arc<dyn Engine>`.
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// A short name for logs and metrics (`memory`, `sled`, `etcd`).
    fn name(&self) -> &'static str;

    /// What the engine accepts in one call.
    fn limits(&self) -> Limits;

    /// Reads every key (at most [`Limits::max_batch_keys`]); `None` where absent.
    /// All values come from one consistent state of the store.
    async fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Value>>, EngineError>;

    /// Up to `limit` (at most [`Limits::max_page`]) entries whose key starts
    /// with `prefix`, in key order, strictly after `after` when given.
    async fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page, EngineError>;

    /// A read point: every read through it sees the store as it was when it
    /// was taken, whatever is committed meanwhile.
    async fn snapshot(&self) -> Result<Box<dyn Snapshot>, EngineError>;

    /// Applies a commit: all of its writes if every guard holds, none otherwise
    /// ([`EngineError::Conflict`]). A commit without writes checks nothing and,
    /// with [`Durability::Immediate`], waits until everything committed before
    /// it is durable.
    async fn commit(&self, commit: Commit) -> Result<(), EngineError>;

    /// Whether the engine can serve reads and writes now (for readiness).
    async fn health(&self) -> Result<(), EngineError>;

    /// Facts about the engine.
    fn stats(&self) -> EngineStats {
        EngineStats::default()
    }
}

/// A consistent read point of an engine (see [`Engine::snapshot`]).
#[async_trait]
pub trait Snapshot: Send + Sync {
    /// [`Engine::get_many`] at the read point.
    async fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Value>>, EngineError>;

    /// [`Engine::scan`] at the read point.
    async fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page, EngineError>;
}

/// The first key after every key that starts with `prefix`, or `None` when
/// no such key exists (the prefix is empty or all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Where a scan starts: just after `after` (when it is within the prefix),
/// else at the prefix.
pub(crate) fn scan_start(prefix: &[u8], after: Option<&[u8]>) -> std::ops::Bound<Vec<u8>> {
    use std::ops::Bound;
    match after {
        Some(a) if a >= prefix => Bound::Excluded(a.to_vec()),
        _ => Bound::Included(prefix.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_first_key_after_the_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn commits_are_checked_against_limits() {
        let limits = Limits {
            max_guards: 1,
            max_writes: 2,
            max_commit_bytes: 10,
            max_batch_keys: 4,
            max_page: 4,
        };
        let put = |k: &str| Write::Put(k.as_bytes().to_vec(), b"v".to_vec());
        let ok = Commit::new(vec![], vec![put("a"), put("b")], Durability::Eventual);
        assert_eq!(ok.check(&limits), Ok(()));
        let twice = Commit::new(vec![], vec![put("a"), put("a")], Durability::Eventual);
        assert!(matches!(twice.check(&limits), Err(EngineError::Invalid(_))));
        let many = Commit::new(
            vec![],
            vec![put("a"), put("b"), put("c")],
            Durability::Eventual,
        );
        assert!(matches!(
            many.check(&limits),
            Err(EngineError::TooLarge { limit: 2, .. })
        ));
        let big = Commit::new(
            vec![],
            vec![Write::Put(b"k".to_vec(), vec![0; 20])],
            Durability::Eventual,
        );
        assert!(matches!(
            big.check(&limits),
            Err(EngineError::TooLarge { limit: 10, .. })
        ));
    }

    #[test]
    fn debug_output_carries_no_values() {
        let g = Guard::holds(b"k".to_vec(), b"secret".to_vec());
        let w = Write::Put(b"k\x00".to_vec(), b"secret".to_vec());
        let text = format!("{g:?} {w:?}");
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("k\\x00"), "{text}");
    }
}
