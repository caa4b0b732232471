//! The conformance suite: what every [`Engine`] must do, run against each of
//! them (memory, sled, etcd) by `tests/it/engines.rs` through
//! [`conformance_tests!`](crate::conformance_tests).
//!
//! Each check takes a [`Place`]: a store location that can be opened, closed
//! and opened again. A check panics with a message saying what broke.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ozmint::engine::{Commit, Durability, Engine, EngineError, Guard, Page, Write};

/// A fresh, empty store location of one engine.
#[async_trait]
pub trait Place: Send + Sync {
    /// Opens the store here (the same store at every call). Callers drop
    /// every handle of an earlier `open` before opening again.
    async fn open(&self) -> Arc<dyn Engine>;
    /// Whether what was committed survives closing and opening again.
    fn persistent(&self) -> bool;
}

/// Runs one check on a fresh place and fails the test if it takes too long.
pub async fn run<F, Fut>(place: Box<dyn Place>, check: F)
where
    F: FnOnce(Box<dyn Place>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    tokio::time::timeout(Duration::from_secs(120), check(place))
        .await
        .expect("the check did not finish within 120 s");
}

/// One test function per check, for an engine given as a `fn() -> Box<dyn Place>`
/// (or any expression giving one, e.g. an etcd place that may be skipped: `Option`).
#[macro_export]
macro_rules! conformance_tests {
    ($place:expr) => {
        $crate::conformance_tests!(@each $place;
            point_reads_and_writes,
            scans_page_in_key_order,
            failing_guards_write_nothing,
            one_of_many_guarded_commits_wins,
            guarded_increments_lose_no_update,
            readers_never_see_half_a_commit,
            snapshots_are_read_points,
            limits_are_stated_and_enforced,
            errors_carry_no_values,
            durable_across_reopen,
            eventual_commits_read_at_once_and_survive_a_clean_close,
        );
    };
    (@each $place:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let Some(place) = $place else { return };
                $crate::conformance::run(place, $crate::conformance::$check).await;
            }
        )*
    };
}

fn k(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn put(key: &str, value: &str) -> Write {
    Write::Put(k(key), k(value))
}

async fn commit(e: &dyn Engine, guards: Vec<Guard>, writes: Vec<Write>) -> Result<(), EngineError> {
    e.commit(Commit::new(guards, writes, Durability::Immediate))
        .await
}

async fn get(e: &dyn Engine, key: &str) -> Option<String> {
    let key = k(key);
    e.get_many(&[&key]).await.expect("get")[0]
        .clone()
        .map(|v| String::from_utf8(v).expect("utf-8 value"))
}

/// Every entry with `prefix`, page by page of `page` entries.
async fn scan_all(e: &dyn Engine, prefix: &[u8], page: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let p: Page = e.scan(prefix, after.as_deref(), page).await.expect("scan");
        assert!(p.entries.len() <= page, "a page is at most the limit");
        out.extend(p.entries.iter().cloned());
        match p.next_after() {
            Some(a) => after = Some(a.to_vec()),
            None => return out,
        }
    }
}

/// Puts, deletes, batched reads of present and absent keys, binary keys.
pub async fn point_reads_and_writes(place: Box<dyn Place>) {
    let e = place.open().await;
    assert_eq!(get(&*e, "a").await, None);
    commit(&*e, vec![], vec![put("a", "1"), put("b", "2")])
        .await
        .expect("commit");
    assert_eq!(get(&*e, "a").await.as_deref(), Some("1"));
    let binary = vec![0u8, 0xff, 7, 0];
    commit(&*e, vec![], vec![Write::Put(binary.clone(), vec![0, 1, 2])])
        .await
        .expect("binary key");
    let got = e
        .get_many(&[b"b", b"missing", &binary, b"a"])
        .await
        .expect("get_many");
    assert_eq!(
        got,
        vec![Some(k("2")), None, Some(vec![0, 1, 2]), Some(k("1"))]
    );
    commit(&*e, vec![], vec![Write::Delete(k("a")), put("b", "3")])
        .await
        .expect("delete and overwrite");
    assert_eq!(get(&*e, "a").await, None);
    assert_eq!(get(&*e, "b").await.as_deref(), Some("3"));
    // Deleting an absent key is fine; an empty commit is fine.
    commit(&*e, vec![], vec![Write::Delete(k("never"))])
        .await
        .expect("delete absent");
    commit(&*e, vec![], vec![]).await.expect("empty commit");
    assert!(e.health().await.is_ok(), "a fresh engine is healthy");
}

/// Prefix scans: key order, `after`, limits, the `more` flag, neighbours excluded.
pub async fn scans_page_in_key_order(place: Box<dyn Place>) {
    let e = place.open().await;
    let mut want = Vec::new();
    let mut writes = Vec::new();
    for i in (0..250u32).rev() {
        let key = format!("p/{i:05}").into_bytes();
        writes.push(Write::Put(key.clone(), i.to_be_bytes().to_vec()));
        want.push((key, i.to_be_bytes().to_vec()));
    }
    want.sort();
    // Neighbours that share a shorter prefix must not show up.
    writes.push(put("p", "x"));
    writes.push(put("o/1", "x"));
    writes.push(put("q/1", "x"));
    for chunk in writes.chunks(100) {
        commit(&*e, vec![], chunk.to_vec()).await.expect("fill");
    }
    for page in [1, 7, 100, 250, 1000] {
        assert_eq!(scan_all(&*e, b"p/", page).await, want, "page size {page}");
    }
    let first = e.scan(b"p/", None, 10).await.expect("scan");
    assert_eq!(first.entries, want[..10].to_vec());
    assert!(first.more);
    let after = e.scan(b"p/", Some(&want[244].0), 10).await.expect("scan");
    assert_eq!(after.entries, want[245..].to_vec());
    assert!(!after.more, "the last page says no more follow");
    let exact = e.scan(b"p/", Some(&want[239].0), 10).await.expect("scan");
    assert_eq!(exact.entries.len(), 10);
    assert!(
        !exact.more,
        "a page ending exactly at the last entry says no more"
    );
    let none = e.scan(b"zz", None, 10).await.expect("scan");
    assert!(none.entries.is_empty() && !none.more);
    // An `after` before the prefix starts at the prefix.
    let early = e.scan(b"p/", Some(b"a"), 3).await.expect("scan");
    assert_eq!(early.entries, want[..3].to_vec());
    // Over the engine's page limit: clamped, never more.
    let max = e.limits().max_page;
    let big = e.scan(b"", None, max + 10).await.expect("scan");
    assert!(big.entries.len() <= max);
}

/// A failing guard writes nothing at all; holding guards (value and absence) let it through.
pub async fn failing_guards_write_nothing(place: Box<dyn Place>) {
    let e = place.open().await;
    commit(&*e, vec![], vec![put("g", "1")])
        .await
        .expect("seed");
    let r = commit(
        &*e,
        vec![Guard::holds(k("g"), k("1")), Guard::absent(k("h"))],
        vec![put("g", "2"), put("h", "x")],
    )
    .await;
    assert_eq!(r, Ok(()), "guards that hold");
    for (guards, what) in [
        (vec![Guard::holds(k("g"), k("1"))], "stale value"),
        (vec![Guard::absent(k("g"))], "present key guarded absent"),
        (
            vec![Guard::holds(k("nope"), k(""))],
            "absent key guarded present",
        ),
        (
            vec![Guard::holds(k("g"), k("2")), Guard::absent(k("h"))],
            "one of two fails",
        ),
    ] {
        let r = commit(&*e, guards, vec![put("g", "bad"), put("new", "bad")]).await;
        assert_eq!(r, Err(EngineError::Conflict), "{what}");
        assert_eq!(get(&*e, "g").await.as_deref(), Some("2"), "{what}");
        assert_eq!(get(&*e, "new").await, None, "{what}: nothing written");
    }
    // A guard on a value that differs only in length.
    commit(&*e, vec![], vec![put("len", "ab")])
        .await
        .expect("seed");
    let r = commit(
        &*e,
        vec![Guard::holds(k("len"), k("a"))],
        vec![put("len", "c")],
    )
    .await;
    assert_eq!(r, Err(EngineError::Conflict));
    // An empty value is a value, not an absence.
    commit(&*e, vec![], vec![put("empty", "")])
        .await
        .expect("seed");
    let r = commit(&*e, vec![Guard::absent(k("empty"))], vec![put("x", "1")]).await;
    assert_eq!(r, Err(EngineError::Conflict), "empty value is present");
    let r = commit(
        &*e,
        vec![Guard::holds(k("empty"), k(""))],
        vec![put("x", "1")],
    )
    .await;
    assert_eq!(r, Ok(()));
}

/// Of N concurrent commits guarding one key as absent, exactly one wins, round after round.
pub async fn one_of_many_guarded_commits_wins(place: Box<dyn Place>) {
    let e = place.open().await;
    const N: usize = 16;
    for round in 0..30 {
        let key = format!("race/{round}");
        let wins = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..N {
            let (e, key, wins) = (e.clone(), key.clone(), wins.clone());
            tasks.push(tokio::spawn(async move {
                let r = commit(
                    &*e,
                    vec![Guard::absent(k(&key))],
                    vec![
                        Write::Put(k(&key), i.to_string().into_bytes()),
                        Write::Put(format!("{key}/by/{i}").into_bytes(), vec![]),
                    ],
                )
                .await;
                match r {
                    Ok(()) => {
                        wins.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(EngineError::Conflict) => {}
                    Err(other) => panic!("unexpected error: {other}"),
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(wins.load(Ordering::SeqCst), 1, "round {round}");
        let winner = get(&*e, &key).await.expect("the winner's value");
        let marks = scan_all(&*e, format!("{key}/by/").as_bytes(), 100).await;
        assert_eq!(marks.len(), 1, "only the winner's other write is there");
        assert_eq!(marks[0].0, format!("{key}/by/{winner}").into_bytes());
    }
}

/// Read-modify-write with guards and retries: concurrent increments add up exactly.
pub async fn guarded_increments_lose_no_update(place: Box<dyn Place>) {
    let e = place.open().await;
    const TASKS: usize = 8;
    const EACH: usize = 25;
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..EACH {
                loop {
                    let now = e.get_many(&[b"counter"]).await.expect("read")[0].clone();
                    let n: u64 = now
                        .as_deref()
                        .map(|v| String::from_utf8_lossy(v).parse().expect("number"))
                        .unwrap_or(0);
                    let guard = Guard {
                        key: k("counter"),
                        expect: now,
                    };
                    match commit(&*e, vec![guard], vec![put("counter", &(n + 1).to_string())]).await
                    {
                        Ok(()) => break,
                        Err(EngineError::Conflict) => continue,
                        Err(other) => panic!("unexpected error: {other}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(
        get(&*e, "counter").await.as_deref(),
        Some((TASKS * EACH).to_string().as_str())
    );
}

/// A commit of several keys is seen whole or not at all by concurrent readers.
pub async fn readers_never_see_half_a_commit(place: Box<dyn Place>) {
    let e = place.open().await;
    commit(&*e, vec![], vec![put("pair/a", "0"), put("pair/b", "0")])
        .await
        .expect("seed");
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (e, done) = (e.clone(), done.clone());
        tokio::spawn(async move {
            let mut reads = 0;
            while !done.load(Ordering::SeqCst) || reads < 10 {
                let v = e.get_many(&[b"pair/a", b"pair/b"]).await.expect("read");
                assert_eq!(v[0], v[1], "get_many saw half a commit");
                let page = e.scan(b"pair/", None, 10).await.expect("scan");
                assert_eq!(page.entries.len(), 2);
                assert_eq!(
                    page.entries[0].1, page.entries[1].1,
                    "scan saw half a commit"
                );
                reads += 1;
                tokio::task::yield_now().await;
            }
        })
    };
    for i in 1..=100 {
        let v = i.to_string();
        commit(&*e, vec![], vec![put("pair/a", &v), put("pair/b", &v)])
            .await
            .expect("commit");
    }
    done.store(true, Ordering::SeqCst);
    reader.await.expect("reader");
}

/// A snapshot reads the store as it was, across pages, while commits change it.
pub async fn snapshots_are_read_points(place: Box<dyn Place>) {
    let e = place.open().await;
    let mut before = BTreeMap::new();
    let mut writes = Vec::new();
    for i in 0..300u32 {
        let key = format!("s/{i:04}");
        writes.push(put(&key, &format!("v{i}")));
        before.insert(k(&key), format!("v{i}").into_bytes());
    }
    for chunk in writes.chunks(100) {
        commit(&*e, vec![], chunk.to_vec()).await.expect("fill");
    }
    let snap = e.snapshot().await.expect("snapshot");
    // Change the store in every way while the snapshot is read page by page.
    let mut after: Option<Vec<u8>> = None;
    let mut seen = Vec::new();
    let mut round = 0u32;
    loop {
        let page = snap.scan(b"s/", after.as_deref(), 37).await.expect("scan");
        seen.extend(page.entries.iter().cloned());
        let changes = vec![
            put(&format!("s/{:04}", round * 7 % 300), "changed"),
            Write::Delete(format!("s/{:04}", (round * 13 + 5) % 300).into_bytes()),
            put(&format!("s/{:04}x", round), "new"),
            put(&format!("s/{:04}", 300 + round), "new"),
        ];
        commit(&*e, vec![], changes).await.expect("change");
        round += 1;
        match page.next_after() {
            Some(a) => after = Some(a.to_vec()),
            None => break,
        }
    }
    let want: Vec<(Vec<u8>, Vec<u8>)> = before.clone().into_iter().collect();
    assert_eq!(seen.len(), want.len(), "the snapshot lists what was there");
    assert_eq!(seen, want, "the snapshot lists the old values");
    let probe = [k("s/0000"), k("s/0005"), k("s/0000x"), k("s/0300")];
    let refs: Vec<&[u8]> = probe.iter().map(Vec::as_slice).collect();
    let old = snap.get_many(&refs).await.expect("snapshot get");
    assert_eq!(old, vec![Some(k("v0")), Some(k("v5")), None, None]);
    let now = e.get_many(&refs).await.expect("live get");
    assert_eq!(now[0], Some(k("changed")), "the live store has the changes");
    assert_eq!(now[1], None);
    assert_eq!(now[2], Some(k("new")));
    drop(snap);
    // A snapshot taken now sees the changes.
    let snap = e.snapshot().await.expect("snapshot");
    let now2 = snap.get_many(&refs).await.expect("snapshot get");
    assert_eq!(now2, now);
}

/// Limits are stated, and a commit over them is refused whole.
pub async fn limits_are_stated_and_enforced(place: Box<dyn Place>) {
    let e = place.open().await;
    let l = e.limits();
    assert!(l.max_writes >= 64 && l.max_guards >= 16 && l.max_page >= 100);
    assert!(l.max_batch_keys >= 64 && l.max_commit_bytes >= 256 * 1024);
    let too_many: Vec<Write> = (0..=l.max_writes)
        .map(|i| put(&format!("lim/{i:06}"), "v"))
        .collect();
    let r = commit(&*e, vec![], too_many).await;
    assert!(
        matches!(r, Err(EngineError::TooLarge { .. })),
        "too many writes: {r:?}"
    );
    assert!(
        scan_all(&*e, b"lim/", 1000).await.is_empty(),
        "nothing written"
    );
    let at_limit: Vec<Write> = (0..l.max_writes)
        .map(|i| put(&format!("lim/{i:06}"), "v"))
        .collect();
    commit(&*e, vec![], at_limit)
        .await
        .expect("exactly at the limit");
    let big = vec![Write::Put(k("big"), vec![7; l.max_commit_bytes + 1])];
    assert!(matches!(
        commit(&*e, vec![], big).await,
        Err(EngineError::TooLarge { .. })
    ));
    let twice = vec![put("dup", "1"), put("dup", "2")];
    assert!(matches!(
        commit(&*e, vec![], twice).await,
        Err(EngineError::Invalid(_))
    ));
    assert_eq!(get(&*e, "dup").await, None);
    let keys: Vec<Vec<u8>> = (0..=l.max_batch_keys)
        .map(|i| i.to_string().into_bytes())
        .collect();
    let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    assert!(matches!(
        e.get_many(&refs).await,
        Err(EngineError::TooLarge { .. })
    ));
}

/// No error message names a stored value.
pub async fn errors_carry_no_values(place: Box<dyn Place>) {
    let e = place.open().await;
    let secret = "s3cr3t-value-9f8e7d";
    commit(&*e, vec![], vec![put("sec", secret)])
        .await
        .expect("seed");
    let errors = [
        commit(
            &*e,
            vec![Guard::holds(k("sec"), k("other"))],
            vec![put("sec", secret)],
        )
        .await,
        commit(&*e, vec![], vec![put("d", secret), put("d", secret)]).await,
        commit(
            &*e,
            vec![],
            vec![Write::Put(
                k(secret),
                vec![b'x'; e.limits().max_commit_bytes + 1],
            )],
        )
        .await,
    ];
    for r in errors {
        let err = r.expect_err("must fail");
        let text = format!("{err} {err:?}");
        assert!(!text.contains(secret), "{text}");
    }
}

/// What an immediate commit acknowledged is there after closing and reopening.
pub async fn durable_across_reopen(place: Box<dyn Place>) {
    if !place.persistent() {
        return;
    }
    let e = place.open().await;
    for i in 0..50 {
        commit(&*e, vec![], vec![put(&format!("d/{i:03}"), &i.to_string())])
            .await
            .expect("commit");
    }
    commit(&*e, vec![], vec![Write::Delete(k("d/007"))])
        .await
        .expect("delete");
    drop(e);
    let e = place.open().await;
    let all = scan_all(&*e, b"d/", 100).await;
    assert_eq!(all.len(), 49, "every acknowledged commit survived");
    assert_eq!(get(&*e, "d/049").await.as_deref(), Some("49"));
    assert_eq!(get(&*e, "d/007").await, None);
}

/// Commits made with [`Durability::Eventual`] read at once exactly as
/// immediate ones do, through every read (point, batched, paged scans,
/// snapshots), before and after the engine writes them out; and a clean close
/// keeps them.
pub async fn eventual_commits_read_at_once_and_survive_a_clean_close(place: Box<dyn Place>) {
    let e = place.open().await;
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    async fn matches(e: &dyn Engine, model: &BTreeMap<Vec<u8>, Vec<u8>>, when: &str) {
        let want: Vec<(Vec<u8>, Vec<u8>)> = model.clone().into_iter().collect();
        for page in [1, 3, 1000] {
            assert_eq!(
                scan_all(e, b"ev/", page).await,
                want,
                "scan by {page}, {when}"
            );
        }
        let keys: Vec<Vec<u8>> = (0..40).map(|i| format!("ev/{i:02}").into_bytes()).collect();
        let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let got = e.get_many(&refs).await.expect("get_many");
        let want: Vec<Option<Vec<u8>>> = keys.iter().map(|k| model.get(k).cloned()).collect();
        assert_eq!(got, want, "get_many, {when}");
        for key in &keys {
            let one = e.get_many(&[key]).await.expect("get")[0].clone();
            assert_eq!(one, model.get(key).cloned(), "get, {when}");
        }
    }
    for round in 0..6u32 {
        // Overwrite and delete keys written (and landed) in earlier rounds,
        // and add new ones, each round in several commits.
        for c in 0..5u32 {
            let mut writes = Vec::new();
            for i in 0..40u32 {
                let key = format!("ev/{i:02}").into_bytes();
                match (i + round + c) % 7 {
                    0 => {
                        writes.push(Write::Delete(key.clone()));
                        model.remove(&key);
                    }
                    1 | 4 => {
                        let v = format!("r{round}c{c}").into_bytes();
                        writes.push(Write::Put(key.clone(), v.clone()));
                        model.insert(key, v);
                    }
                    _ => {}
                }
            }
            e.commit(Commit::new(vec![], writes, Durability::Eventual))
                .await
                .expect("eventual commit");
            matches(&*e, &model, &format!("at once, round {round}")).await;
        }
        let snap = e.snapshot().await.expect("snapshot");
        let at_snap: Vec<(Vec<u8>, Vec<u8>)> = model.clone().into_iter().collect();
        tokio::time::sleep(Duration::from_millis(30)).await;
        matches(&*e, &model, &format!("later, round {round}")).await;
        // Change everything; the snapshot still reads the state it was taken at.
        let wipe: Vec<Write> = (0..40)
            .map(|i| put(&format!("ev/{i:02}"), "wiped"))
            .collect();
        e.commit(Commit::new(vec![], wipe, Durability::Eventual))
            .await
            .expect("wipe");
        let mut seen = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let p = snap
                .scan(b"ev/", after.as_deref(), 4)
                .await
                .expect("snapshot scan");
            seen.extend(p.entries.iter().cloned());
            tokio::time::sleep(Duration::from_millis(1)).await;
            match p.next_after() {
                Some(a) => after = Some(a.to_vec()),
                None => break,
            }
        }
        assert_eq!(seen, at_snap, "the snapshot of round {round}");
        drop(snap);
        // Restore the model's state for the next round.
        let restore: Vec<Write> = (0..40)
            .map(|i| {
                let key = format!("ev/{i:02}").into_bytes();
                match model.get(&key) {
                    Some(v) => Write::Put(key, v.clone()),
                    None => Write::Delete(key),
                }
            })
            .collect();
        e.commit(Commit::new(vec![], restore, Durability::Eventual))
            .await
            .expect("restore");
        matches(&*e, &model, &format!("restored, round {round}")).await;
    }
    if !place.persistent() {
        return;
    }
    drop(e);
    let e = place.open().await;
    matches(&*e, &model, "after a clean close").await;
}
