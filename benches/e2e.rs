//! End-to-end benchmark (`harness = false`): the real server on loopback over
//! TLS, driven by the load generator of `common::load` (hyper's client, N
//! keep-alive connections over HTTP/1.1 or HTTP/2, each doing requests in a
//! loop for a fixed time), compared with a bare hyper + rustls server answering
//! a constant body through the same `ozmint::http::server::serve` and the same
//! TLS configuration. Also: library-level ratios (parse + verify against the
//! bare HMAC chain, effective-privilege checks), group commit against a flush
//! per request, and a store holding many token records (mint rate, startup
//! time, resident memory).
//!
//! Prints Markdown tables. Environment:
//! - `OZMINT_BENCH_SMOKE=1`: ~0.3 s per row, few connections, 10 000 records;
//! - `OZMINT_BENCH_RECORDS`: token records of the big store (default 1 000 000);
//! - `OZMINT_BENCH_SECS`: seconds per load row (default 5);
//! - `OZMINT_BENCH_CONNS`: connections per load row (default 16).
//!
//! Only 127.0.0.1 is ever connected to; every loop is bounded in time and count.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};

use common::load::{
    bare_server, basic_admin, client_tls, config_for, consume_workload, credentials, env_num,
    fmt_us, load_average, machine, met, mint_workload, one_request, progress, run_load,
    support_token_body, Bodies, Pool, Proto, Row, Target, Workload, DEMO_SPACE,
    MAX_REQUESTS_PER_CONN, PREFIX,
};
use common::{bare_chain, chain_input, MintFixture, PrivFixture};
use ozmint::config::Config;
use ozmint::model::{Id, Subject, TokenKind};
use ozmint::serve::Running;
use ozmint::{DurabilityMode, Store, Zone, ZoneConfig};
use testkit::server::unix_now;

/// Upper bound on waiting for sled to release the lock of a closed store.
const REOPEN_DEADLINE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Settings

struct Settings {
    smoke: bool,
    row: Duration,
    conns: usize,
    many_conns: usize,
    records: usize,
    consume_per_row: usize,
    ratio_iters: usize,
    members: usize,
    lib_secs: Duration,
    lib_threads: usize,
}

impl Settings {
    fn from_env() -> Self {
        let smoke = common::smoke();
        let row = env_num("OZMINT_BENCH_SECS").unwrap_or(if smoke { 0.3 } else { 5.0 });
        let conns =
            env_num("OZMINT_BENCH_CONNS").map_or(if smoke { 4 } else { 16 }, |n| n as usize);
        let records = env_num("OZMINT_BENCH_RECORDS")
            .map_or(if smoke { 10_000 } else { 1_000_000 }, |n| n as usize);
        Settings {
            smoke,
            row: Duration::from_secs_f64(row.clamp(0.05, 600.0)),
            conns: conns.clamp(1, 512),
            many_conns: if smoke { 8 } else { 64 },
            records,
            consume_per_row: if smoke { 2_000 } else { 60_000 },
            ratio_iters: if smoke { 20_000 } else { 200_000 },
            members: if smoke { 10_000 } else { 100_000 },
            lib_secs: Duration::from_secs_f64(if smoke { 0.3 } else { 3.0 }),
            lib_threads: 64,
        }
    }
}

// ---------------------------------------------------------------------------
// Servers

/// Opens the store of `config`, waiting (bounded) for sled to release the
/// lock of a previous handle. Returns the store, the time of the successful
/// attempt and the number of failed attempts.
async fn open_store_retry(config: &Config) -> (Arc<Store>, Duration, u32) {
    let deadline = Instant::now() + REOPEN_DEADLINE;
    let mut failures = 0;
    loop {
        let t = Instant::now();
        match ozmint::serve::open_store(config).await {
            Ok(s) => return (s, t.elapsed(), failures),
            Err(e) if Instant::now() < deadline => {
                if failures == 0 {
                    progress(format!(
                        "open_store failed (lock still held?), retrying: {e}"
                    ));
                }
                failures += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("open_store: {e}"),
        }
    }
}

async fn admin_id(store: &Store) -> Id {
    store
        .user_by_name("admin")
        .await
        .expect("read admin")
        .expect("demo admin exists")
        .0
}

/// A zone as the server builds it (location and lifetimes from `config`).
async fn zone_for(config: &Config, store: Arc<Store>) -> Zone {
    Zone::new(
        store,
        ZoneConfig {
            location: config.zone_name.clone(),
            lifetimes: config.tokens.clone(),
            ..ZoneConfig::default()
        },
    )
    .await
    .expect("zone")
}

/// A running server with its client-side facts.
struct Server {
    _dir: tempfile::TempDir,
    running: Running,
    target: Target,
    admin_token: String,
    provider_token: String,
    /// Consumption bodies, one pool per protocol.
    pools: Vec<Arc<Pool>>,
}

/// Prepares a store (demo data set, `consume` spaces each with a support token
/// per protocol) in relaxed mode, then reopens it with `durability` and starts
/// the real server on it.
async fn start_server(durability: DurabilityMode, consume: usize) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_for(dir.path(), durability);
    let prep_config = config_for(dir.path(), DurabilityMode::Relaxed);
    let pools = {
        let (store, _, _) = open_store_retry(&prep_config).await;
        ozmint::serve::bootstrap(&store, true, None)
            .await
            .expect("bootstrap");
        let admin = Subject::User(admin_id(&store).await);
        let zone = zone_for(&prep_config, store.clone()).await;
        let mut pools = Vec::new();
        for p in 0..2 {
            let mut bodies = Vec::with_capacity(consume);
            for i in 0..consume {
                bodies.push(support_token_body(&zone, admin, &format!("consume-{p}-{i}")).await);
            }
            pools.push(Arc::new(Pool {
                bodies,
                next: AtomicUsize::new(0),
            }));
        }
        store.sync().await.expect("flush");
        pools
    };
    let (store, _, _) = open_store_retry(&config).await;
    let running = ozmint::serve::start(&config, store, std::future::pending())
        .await
        .expect("start the server");
    let target = Target {
        addr: running.addr,
        tls: client_tls(&dir.path().join("tls").join("cert.pem")),
    };
    let (admin_token, provider_token) = credentials(&target).await;
    Server {
        _dir: dir,
        running,
        target,
        admin_token,
        provider_token,
        pools,
    }
}

/// The real server on the in-memory engine (no sled): isolates the cost of
/// the HTTP, authentication and minting code from the storage engine.
async fn start_memory_server() -> (tempfile::TempDir, Running, Target, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_for(dir.path(), DurabilityMode::Relaxed);
    let store = Arc::new(common::memory_store().await);
    ozmint::serve::bootstrap(&store, true, None)
        .await
        .expect("bootstrap");
    let running = ozmint::serve::start(&config, store, std::future::pending())
        .await
        .expect("start the in-memory server");
    let target = Target {
        addr: running.addr,
        tls: client_tls(&dir.path().join("tls").join("cert.pem")),
    };
    let (access, _) = credentials(&target).await;
    (dir, running, target, access)
}

// ---------------------------------------------------------------------------
// Library-level measurements

/// Runs `f` from `threads` threads for `dur`; returns operations per second.
fn lib_rate(threads: usize, dur: Duration, f: &(dyn Fn() + Sync)) -> f64 {
    let start = Instant::now();
    let deadline = start + dur;
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(move || {
                    let mut n = 0u64;
                    while Instant::now() < deadline && n < MAX_REQUESTS_PER_CONN {
                        f();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

/// Nanoseconds per call of `f` over `iters` calls, awaited one after the
/// other in one task (the library is async; this is the old synchronous loop).
async fn ns_per<F, Fut>(iters: usize, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future,
{
    for _ in 0..iters / 10 {
        std::hint::black_box(f().await);
    }
    let t = Instant::now();
    for _ in 0..iters {
        std::hint::black_box(f().await);
    }
    t.elapsed().as_nanos() as f64 / iters as f64
}

/// Nanoseconds per call of a synchronous `f` over `iters` calls.
fn ns_per_sync(iters: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_nanos() as f64 / iters as f64
}

struct RatioRow {
    what: String,
    value: String,
    target: String,
    met: Option<bool>,
}

async fn ratio_table(s: &Settings) -> Vec<RatioRow> {
    use std::hint::black_box;
    let mut rows = Vec::new();
    progress("library ratios: parse + verify against the bare chain");
    let fx = MintFixture::on_disk(DurabilityMode::Relaxed).await;
    let token = fx.mint().await;
    let input = chain_input(&fx.zone, &token).await;
    let verify = ns_per(s.ratio_iters, || async {
        fx.zone.verify(black_box(&token)).await.expect("verify")
    })
    .await;
    let chain = ns_per_sync(s.ratio_iters, || {
        black_box(
            bare_chain(
                black_box(&input.secret),
                black_box(&input.identifier),
                black_box(&input.caveats),
            ) == input.signature,
        );
    });
    let parse = ns_per_sync(s.ratio_iters, || {
        black_box(ozmint::token::wire::parse(black_box(&token)).expect("parse"));
    });
    let store_get = {
        let raw = ozmint::token::wire::parse(&token).expect("parse");
        let id = ozmint::token::legacy_id(&raw).expect("id");
        ns_per(s.ratio_iters, || async {
            fx.zone.store().token(black_box(&id)).await.expect("get")
        })
        .await
    };
    let ratio = verify / chain;
    rows.push(RatioRow {
        what: "parse + verify (Zone::verify)".into(),
        value: format!("{:.2} µs", verify / 1000.0),
        target: String::new(),
        met: None,
    });
    rows.push(RatioRow {
        what: "bare HMAC-SHA256 chain (hmac + sha2), same identifier and caveats".into(),
        value: format!("{:.2} µs", chain / 1000.0),
        target: String::new(),
        met: None,
    });
    rows.push(RatioRow {
        what: "  of which: wire::parse alone / store record get+decode".into(),
        value: format!("{:.2} µs / {:.2} µs", parse / 1000.0, store_get / 1000.0),
        target: String::new(),
        met: None,
    });
    rows.push(RatioRow {
        what: "parse + verify / bare chain".into(),
        value: format!("{ratio:.2}x"),
        target: "<= 3x".into(),
        met: Some(ratio <= 3.0),
    });
    drop(fx);

    progress(format!(
        "library ratios: effective privileges (building a space with {} members)",
        s.members
    ));
    let pf = PrivFixture::new(s.members).await;
    let iters = s.ratio_iters / 2;
    let mut depth1 = 0.0;
    for case in &pf.chains {
        let ns = ns_per(iters, || common::effective_ok(&pf.store, black_box(case))).await;
        if case.label == "depth 1" {
            depth1 = ns;
        }
        let (target, met) = if case.label == "depth 32" {
            ("<= 20 µs".to_string(), Some(ns <= 20_000.0))
        } else {
            (String::new(), None)
        };
        rows.push(RatioRow {
            what: format!("effective check, {} (warm reach cache)", case.label),
            value: format!("{:.2} µs", ns / 1000.0),
            target,
            met,
        });
    }
    for case in &pf.big {
        let ns = ns_per(iters, || common::effective_ok(&pf.store, black_box(case))).await;
        let r = ns / depth1;
        rows.push(RatioRow {
            what: format!(
                "effective check, {} (ratio to depth 1 in a small space)",
                case.label
            ),
            value: format!("{:.2} µs ({r:.2}x)", ns / 1000.0),
            target: "member-count independent (<= 1.5x)".into(),
            met: Some(r <= 1.5),
        });
    }
    rows
}

/// Group commit (durable store, 64 threads minting) against a flush per
/// request (relaxed store, each thread making the store durable after its
/// mint). The library is async: each thread blocks on its own calls
/// (`Handle::block_on`), which is what the former synchronous API did.
fn group_commit_table(s: &Settings, rt: &tokio::runtime::Runtime) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (label, durability, flush_each) in [
        (
            "Zone::mint, durable (group commit)",
            DurabilityMode::Durable,
            false,
        ),
        (
            "Zone::mint + store.sync() (relaxed store, one flush per request)",
            DurabilityMode::Relaxed,
            true,
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config_for(dir.path(), durability);
        let fx = rt.block_on(async {
            let (store, _, _) = open_store_retry(&config).await;
            MintFixture::new(store).await
        });
        let handle = rt.handle();
        let op = || {
            handle.block_on(async {
                fx.mint().await;
                if flush_each {
                    // Since the engine redesign this flush is the engine's
                    // shared one (group commit) too: see the report.
                    fx.zone.store().sync().await.expect("flush");
                }
            })
        };
        for threads in [1, s.lib_threads] {
            progress(format!("library: {label}, {threads} threads"));
            out.push((
                format!("{label}, {threads} threads"),
                lib_rate(threads, s.lib_secs, &op),
            ));
        }
    }
    // What the server does: tasks on a runtime with one worker per core.
    let label = "Zone::mint, durable (async group commit)";
    progress(format!("library: {label}, {} tasks", s.lib_threads));
    let dir = tempfile::tempdir().expect("tempdir");
    let fx = rt.block_on(async {
        let (store, _, _) =
            open_store_retry(&config_for(dir.path(), DurabilityMode::Durable)).await;
        MintFixture::new(store).await
    });
    let rate = async_mint_rate(s.lib_threads, s.lib_secs, Arc::new(fx));
    out.push((
        format!("{label}, {} tasks on 2 workers", s.lib_threads),
        rate,
    ));
    out
}

/// Mints per second from `tasks` tasks each calling `Zone::mint` in a loop,
/// on a 2-worker tokio runtime.
fn async_mint_rate(tasks: usize, dur: Duration, fx: Arc<MintFixture>) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now();
    let deadline = start + dur;
    let total: u64 = rt.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let fx = fx.clone();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while Instant::now() < deadline && n < MAX_REQUESTS_PER_CONN {
                        fx.mint().await;
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for h in handles {
            total += h.await.expect("task");
        }
        total
    });
    total as f64 / start.elapsed().as_secs_f64()
}

struct BigStore {
    records: usize,
    fill_secs: f64,
    rss_before_kib: u64,
    rss_after_kib: u64,
    disk_bytes: u64,
    rate_empty: f64,
    rate_full: f64,
    rate_reopened: f64,
    open_zone: Duration,
    open_retries: u32,
    ready_https: Duration,
    rows: Vec<Row>,
}

/// Fills a store with token records (library calls, relaxed), measuring mint
/// rate before and after, resident memory, and the time to reopen it.
fn big_store(s: &Settings, rt: &tokio::runtime::Runtime) -> BigStore {
    let rss_before_kib = common::vm_rss_kib().unwrap_or(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_for(dir.path(), DurabilityMode::Relaxed);
    let handle = rt.handle();
    let (store, admin) = rt.block_on(async {
        let (store, _, _) = open_store_retry(&config).await;
        ozmint::serve::bootstrap(&store, true, None)
            .await
            .expect("bootstrap");
        let admin = admin_id(&store).await;
        (store, admin)
    });
    let space: Id = DEMO_SPACE.parse().expect("space id");
    let threads = 2;
    let rate = |zone: &Zone| {
        lib_rate(threads, s.lib_secs, &|| {
            handle
                .block_on(zone.mint(TokenKind::SpaceSupport, space, Subject::User(admin)))
                .expect("mint");
        })
    };
    let zone = rt.block_on(zone_for(&config, store.clone()));
    progress("big store: mint rate on the empty store");
    let rate_empty = rate(&zone);

    progress(format!("big store: filling {} token records", s.records));
    let targets: Vec<Id> = (0..1000).map(|_| Id::random()).collect();
    let next = AtomicUsize::new(0);
    let t = Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= s.records {
                    break;
                }
                let rec = common::sample_record(targets[i % targets.len()], admin);
                handle.block_on(common::insert_token(&store, &Id::time_ordered(), &rec));
                if (i + 1) % 200_000 == 0 {
                    progress(format!("  {} records", i + 1));
                }
            });
        }
    });
    rt.block_on(store.sync()).expect("flush");
    let fill_secs = t.elapsed().as_secs_f64();
    let rss_after_kib = common::vm_rss_kib().unwrap_or(0);
    let disk_bytes = store.stats().bytes_on_disk;
    progress("big store: mint rate on the full store");
    let rate_full = rate(&zone);
    drop(zone);
    drop(store);

    progress("big store: reopening (open_store + Zone::new)");
    // The successful open_store attempt (waits for the previous handle's lock
    // are excluded) plus Zone::new.
    let (zone, open_zone, open_retries) = rt.block_on(async {
        let (store, open_time, open_retries) = open_store_retry(&config).await;
        let t = Instant::now();
        let zone = zone_for(&config, store).await;
        (zone, open_time + t.elapsed(), open_retries)
    });
    let rate_reopened = rate(&zone);
    drop(zone);

    progress("big store: reopening and serving (open_store + serve::start until /readyz answers over HTTPS)");
    let (ready_https, rows) = rt.block_on(async {
        let started = Instant::now();
        let (store, _, _) = open_store_retry(&config).await;
        let running = ozmint::serve::start(&config, store, std::future::pending())
            .await
            .expect("start");
        let target = Target {
            addr: running.addr,
            tls: client_tls(&dir.path().join("tls").join("cert.pem")),
        };
        let (status, _) = one_request(&target, Method::GET, "/readyz", &[], Bytes::new()).await;
        assert_eq!(status, StatusCode::OK);
        let ready = started.elapsed();
        let (access, _) = credentials(&target).await;
        let mut rows = Vec::new();
        for proto in [Proto::H1, Proto::H2] {
            rows.extend(
                run_load(
                    &format!(
                        "mint, X-Auth-Token, relaxed, {} records in store",
                        s.records
                    ),
                    &target,
                    proto,
                    s.conns,
                    s.row,
                    mint_workload(("x-auth-token", access.clone())),
                )
                .await,
            );
        }
        running.stop().await.expect("stop");
        (ready, rows)
    });
    BigStore {
        records: s.records,
        fill_secs,
        rss_before_kib,
        rss_after_kib,
        disk_bytes,
        rate_empty,
        rate_full,
        rate_reopened,
        open_zone,
        open_retries,
        ready_https,
        rows,
    }
}

// ---------------------------------------------------------------------------
// Output

fn find<'a>(rows: &'a [Row], label: &str, proto: Proto) -> Option<&'a Row> {
    rows.iter().find(|r| r.label == label && r.proto == proto)
}

fn main() {
    let s = Settings::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let t_all = Instant::now();
    let load_start = load_average();

    // The big store first, so that its resident memory is not mixed with the servers'.
    let big = big_store(&s, &rt);
    let ratios = rt.block_on(ratio_table(&s));
    let commits = group_commit_table(&s, &rt);

    let mut rows: Vec<Row> = rt.block_on(async {
        let mut rows = Vec::new();
        progress("starting the durable and relaxed servers");
        let durable = start_server(DurabilityMode::Durable, s.consume_per_row).await;
        let relaxed = start_server(DurabilityMode::Relaxed, s.consume_per_row).await;
        // A constant body as long as a mint answer.
        let sample = {
            let (st, body) = one_request(
                &relaxed.target,
                Method::POST,
                &format!("{PREFIX}/spaces/{DEMO_SPACE}/providers/token"),
                &[("x-auth-token", relaxed.admin_token.clone())],
                Bytes::new(),
            )
            .await;
            assert_eq!(st, StatusCode::OK);
            body
        };
        let (base, base_stop, base_task) = bare_server(durable._dir.path(), sample).await;
        for proto in [Proto::H1, Proto::H2] {
            let r = run_load(
                "baseline: serve() + same TLS, constant 200 body",
                &base,
                proto,
                s.conns,
                s.row,
                Workload {
                    method: Method::POST,
                    path: format!("{PREFIX}/spaces/{DEMO_SPACE}/providers/token"),
                    headers: vec![("x-auth-token", durable.admin_token.clone())],
                    bodies: Bodies::Fixed(Bytes::new()),
                    expect: StatusCode::OK,
                },
            )
            .await;
            rows.extend(r.map(|mut r| {
                r.baseline = true;
                r
            }));
        }
        for (name, srv) in [("durable", &durable), ("relaxed", &relaxed)] {
            for proto in [Proto::H1, Proto::H2] {
                rows.extend(
                    run_load(
                        &format!("mint, X-Auth-Token, {name}"),
                        &srv.target,
                        proto,
                        s.conns,
                        s.row,
                        mint_workload(("x-auth-token", srv.admin_token.clone())),
                    )
                    .await,
                );
                rows.extend(
                    run_load(
                        &format!("mint, Basic admin:password (cached), {name}"),
                        &srv.target,
                        proto,
                        s.conns,
                        s.row,
                        mint_workload(basic_admin()),
                    )
                    .await,
                );
            }
        }
        // Onedata 20.02+ tokens: a temporary token (nothing stored), a named
        // token (a record and its name index), and public verification of a
        // named access token (parse, HMAC chain, caveats, its record).
        let valid_until = unix_now() + 3600;
        let temporary = Bytes::from(format!(
            r#"{{"caveats": [{{"type": "time", "validUntil": {valid_until}}}]}}"#
        ));
        let v2_token = {
            let (st, body) = one_request(
                &durable.target,
                Method::POST,
                &format!("{PREFIX}/user/tokens/named"),
                &[("x-auth-token", durable.admin_token.clone())],
                Bytes::from_static(br#"{"name": "bench verify"}"#),
            )
            .await;
            assert_eq!(
                st,
                StatusCode::CREATED,
                "{}",
                String::from_utf8_lossy(&body)
            );
            let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
            v["token"].as_str().expect("token").to_owned()
        };
        let verify = Bytes::from(serde_json::json!({ "token": v2_token }).to_string());
        for (name, srv) in [("durable", &durable), ("relaxed", &relaxed)] {
            for proto in [Proto::H1, Proto::H2] {
                rows.extend(
                    run_load(
                        &format!("20.02+: mint temporary token, X-Auth-Token, {name}"),
                        &srv.target,
                        proto,
                        s.conns,
                        s.row,
                        Workload {
                            method: Method::POST,
                            path: format!("{PREFIX}/user/tokens/temporary"),
                            headers: vec![("x-auth-token", srv.admin_token.clone())],
                            bodies: Bodies::Fixed(temporary.clone()),
                            expect: StatusCode::CREATED,
                        },
                    )
                    .await,
                );
                let names = Arc::new(Pool {
                    bodies: (0..s.consume_per_row)
                        .map(|i| {
                            // Letters, digits, `_`, and `-` in the middle only.
                            let p = if proto == Proto::H1 { "h1" } else { "h2" };
                            Bytes::from(format!(r#"{{"name": "bench-{name}-{p}-{i}"}}"#))
                        })
                        .collect(),
                    next: AtomicUsize::new(0),
                });
                rows.extend(
                    run_load(
                        &format!("20.02+: mint named token, X-Auth-Token, {name}"),
                        &srv.target,
                        proto,
                        s.conns,
                        s.row,
                        Workload {
                            method: Method::POST,
                            path: format!("{PREFIX}/user/tokens/named"),
                            headers: vec![("x-auth-token", srv.admin_token.clone())],
                            bodies: Bodies::Pool(names),
                            expect: StatusCode::CREATED,
                        },
                    )
                    .await,
                );
            }
        }
        for proto in [Proto::H1, Proto::H2] {
            rows.extend(
                run_load(
                    "20.02+: POST /tokens/verify_access_token (named token, no credentials)",
                    &durable.target,
                    proto,
                    s.conns,
                    s.row,
                    Workload {
                        method: Method::POST,
                        path: format!("{PREFIX}/tokens/verify_access_token"),
                        headers: vec![],
                        bodies: Bodies::Fixed(verify.clone()),
                        expect: StatusCode::OK,
                    },
                )
                .await,
            );
        }
        // Diagnostics: authentication without a write, and minting without sled.
        let (_mem_dir, mem_running, mem_target, mem_token) = start_memory_server().await;
        for proto in [Proto::H1, Proto::H2] {
            rows.extend(
                run_load(
                    "diagnostic: GET /healthz (ozmint's request pipeline, no handler work)",
                    &relaxed.target,
                    proto,
                    s.conns,
                    s.row,
                    Workload {
                        method: Method::GET,
                        path: "/healthz".into(),
                        headers: vec![("x-auth-token", relaxed.admin_token.clone())],
                        bodies: Bodies::Fixed(Bytes::new()),
                        expect: StatusCode::OK,
                    },
                )
                .await,
            );
            rows.extend(
                run_load(
                    "diagnostic: GET /user, X-Auth-Token (auth + one read, no write), relaxed",
                    &relaxed.target,
                    proto,
                    s.conns,
                    s.row,
                    Workload {
                        method: Method::GET,
                        path: format!("{PREFIX}/user"),
                        headers: vec![("x-auth-token", relaxed.admin_token.clone())],
                        bodies: Bodies::Fixed(Bytes::new()),
                        expect: StatusCode::OK,
                    },
                )
                .await,
            );
            rows.extend(
                run_load(
                    "diagnostic: mint, X-Auth-Token, in-memory engine (no sled)",
                    &mem_target,
                    proto,
                    s.conns,
                    s.row,
                    mint_workload(("x-auth-token", mem_token.clone())),
                )
                .await,
            );
        }
        mem_running.stop().await.expect("stop in-memory server");
        for proto in [Proto::H1, Proto::H2] {
            rows.extend(
                run_load(
                    &format!("mint, X-Auth-Token, durable, {} connections", s.many_conns),
                    &durable.target,
                    proto,
                    s.many_conns,
                    s.row,
                    mint_workload(("x-auth-token", durable.admin_token.clone())),
                )
                .await,
            );
        }
        for (name, srv) in [("durable", &durable), ("relaxed", &relaxed)] {
            for (i, proto) in [Proto::H1, Proto::H2].into_iter().enumerate() {
                rows.extend(
                    run_load(
                        &format!("consume support token (POST /provider/spaces/support), {name}"),
                        &srv.target,
                        proto,
                        s.conns,
                        s.row,
                        consume_workload(&srv.provider_token, srv.pools[i].clone()),
                    )
                    .await,
                );
            }
        }
        let _ = base_stop.send(true);
        let _ = base_task.await;
        durable.running.stop().await.expect("stop durable");
        relaxed.running.stop().await.expect("stop relaxed");
        rows
    });
    rows.extend(big.rows.iter().map(|r| Row {
        label: r.label.clone(),
        proto: r.proto,
        conns: r.conns,
        baseline: false,
        rate: r.rate,
        secs: r.secs,
        p50_us: r.p50_us,
        p99_us: r.p99_us,
        p999_us: r.p999_us,
        errors: r.errors,
        note: r.note.clone(),
    }));

    // ------------------------------------------------------------------ print
    println!(
        "\n## ozmint end-to-end benchmark{}\n",
        if s.smoke { " (smoke mode)" } else { "" }
    );
    println!(
        "Machine: {}. Load generator (hyper client, TLS) and server share the process and the cores. \
         {} s per row, {} keep-alive connections per row unless stated; one request in flight per connection. \
         1-minute load average at start {}, at end {}.\n",
        machine(),
        s.row.as_secs_f64(),
        s.conns,
        load_start,
        load_average()
    );
    println!(
        "| row | protocol | conns | requests/s | p50 | p99 | ratio to baseline | errors | note |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---|");
    for r in &rows {
        // No ratio where `OZMINT_BENCH_ROWS` left the baseline out.
        let ratio = rows
            .iter()
            .find(|b| b.baseline && b.proto == r.proto)
            .map_or_else(|| "-".to_owned(), |b| format!("{:.2}", r.rate / b.rate));
        println!(
            "| {} | {} | {} | {:.0} | {} | {} | {ratio} | {} | {} |",
            r.label,
            r.proto.name(),
            r.conns,
            r.rate,
            fmt_us(r.p50_us),
            fmt_us(r.p99_us),
            r.errors,
            r.note
        );
    }

    println!(
        "\n### Library-level ratios (same process, simple loops of {} iterations)\n",
        s.ratio_iters
    );
    println!("| measure | value | target | |");
    println!("|---|---:|---|---|");
    for r in &ratios {
        println!(
            "| {} | {} | {} | {} |",
            r.what,
            r.value,
            r.target,
            r.met.map_or("", met)
        );
    }

    println!(
        "\n### Group commit vs one flush per request (library level, {:.1} s each; not over HTTP)\n",
        s.lib_secs.as_secs_f64()
    );
    println!("| workload | mints/s |");
    println!("|---|---:|");
    for (label, rate) in &commits {
        println!("| {label} | {rate:.0} |");
    }

    println!(
        "\n### Store with {} token records (library calls, relaxed, default cache size)\n",
        big.records
    );
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| fill time (one transaction per record: Store::insert_token_in, 2 threads) | {:.1} s ({:.0} records/s) |",
        big.fill_secs,
        big.records as f64 / big.fill_secs
    );
    println!(
        "| size on disk | {:.0} MiB |",
        big.disk_bytes as f64 / 1048576.0
    );
    println!(
        "| VmRSS before fill / after fill | {:.0} MiB / {:.0} MiB |",
        big.rss_before_kib as f64 / 1024.0,
        big.rss_after_kib as f64 / 1024.0
    );
    println!(
        "| Zone::mint, 2 threads, empty store | {:.0} /s |",
        big.rate_empty
    );
    println!(
        "| Zone::mint, 2 threads, {} records | {:.0} /s ({:.2}x of empty) |",
        big.records,
        big.rate_full,
        big.rate_full / big.rate_empty
    );
    println!(
        "| Zone::mint, 2 threads, {} records, right after reopening | {:.0} /s ({:.2}x of empty) |",
        big.records,
        big.rate_reopened,
        big.rate_reopened / big.rate_empty
    );
    println!(
        "| open_store + Zone::new, first open after the fill (sled replays its log) | {:.0} ms (after {} lock retries) |",
        big.open_zone.as_secs_f64() * 1000.0,
        big.open_retries
    );
    println!(
        "| open_store + serve::start until GET /readyz answers 200 over HTTPS, second open | {:.0} ms |",
        big.ready_https.as_secs_f64() * 1000.0
    );

    // ------------------------------------------------------------------ targets
    println!("\n### Targets (reported, not asserted)\n");
    println!("| target | measured | |");
    println!("|---|---|---|");
    for proto in [Proto::H1, Proto::H2] {
        // The ratios to the baseline need it in the run (`OZMINT_BENCH_ROWS`).
        let base = rows
            .iter()
            .find(|b| b.baseline && b.proto == proto)
            .map(|b| b.rate);
        for mode in ["durable", "relaxed"] {
            let token_mint = find(&rows, &format!("mint, X-Auth-Token, {mode}"), proto);
            if let (Some(t), Some(base)) = (token_mint, base) {
                let r = t.rate / base;
                println!(
                    "| mint (access token, {mode}, {}) >= 0.5x baseline | {r:.2}x | {} |",
                    proto.name(),
                    met(r >= 0.5)
                );
            }
            if let (Some(t), Some(b)) = (
                find(&rows, &format!("mint, X-Auth-Token, {mode}"), proto),
                find(
                    &rows,
                    &format!("mint, Basic admin:password (cached), {mode}"),
                    proto,
                ),
            ) {
                let r = b.rate / t.rate;
                println!(
                    "| Basic mint >= 0.9x token mint ({mode}, {}) | {r:.2}x | {} |",
                    proto.name(),
                    met(r >= 0.9)
                );
            }
        }
        for mode in ["durable", "relaxed"] {
            let label = format!("20.02+: mint temporary token, X-Auth-Token, {mode}");
            if let (Some(t), Some(base)) = (find(&rows, &label, proto), base) {
                let r = t.rate / base;
                println!(
                    "| temporary-token mint ({mode}, {}) >= 0.6x baseline | {r:.2}x | {} |",
                    proto.name(),
                    met(r >= 0.6)
                );
            }
        }
        let empty = find(&rows, "mint, X-Auth-Token, relaxed", proto);
        let full = find(
            &rows,
            &format!(
                "mint, X-Auth-Token, relaxed, {} records in store",
                big.records
            ),
            proto,
        );
        if let (Some(e), Some(f)) = (empty, full) {
            let r = f.rate / e.rate;
            println!(
                "| HTTP mint with {} records within 20% of empty ({}) | {r:.2}x | {} |",
                big.records,
                proto.name(),
                met(r >= 0.8)
            );
        }
    }
    if commits.len() == 5 {
        let r = commits[1].1 / commits[3].1;
        println!("| durable {} threads >= 5x flush-per-request (library) | {r:.2}x ({:.0} vs {:.0} /s) | {} |", s.lib_threads, commits[1].1, commits[3].1, met(r >= 5.0));
        let r = commits[4].1 / commits[3].1;
        println!("| durable {} async tasks >= 5x flush-per-request (library) | {r:.2}x ({:.0} vs {:.0} /s) | {} |", s.lib_threads, commits[4].1, commits[3].1, met(r >= 5.0));
    }
    for r in ratios.iter().filter(|r| r.met.is_some()) {
        println!(
            "| {} {} | {} | {} |",
            r.what,
            r.target,
            r.value,
            r.met.map_or("", met)
        );
    }
    let r = big.rate_full / big.rate_empty;
    println!(
        "| library mint with {} records within 20% of empty | {r:.2}x | {} |",
        big.records,
        met(r >= 0.8)
    );
    println!(
        "| startup (open_store + Zone::new, first open after the fill) < 1 s | {:.0} ms | {} |",
        big.open_zone.as_secs_f64() * 1000.0,
        met(big.open_zone < Duration::from_secs(1))
    );
    println!(
        "| startup until HTTPS ready (second open) < 1 s | {:.0} ms | {} |",
        big.ready_https.as_secs_f64() * 1000.0,
        met(big.ready_https < Duration::from_secs(1))
    );
    println!("\nTotal bench time: {:.1} s", t_all.elapsed().as_secs_f64());
}
