//! The request path measured from outside the process (`harness = false`):
//! the real `ozmint serve --demo` binary and a bare hyper 1 + rustls server
//! (this bench re-run as a child, `bare-server`: `ozmint::http::server::serve`
//! with the same TLS configuration, answering a constant body as long as a
//! mint answer) are each started as a process of their own, and driven by
//! Debian's load generators, also processes of their own: `wrk` for HTTP/1.1
//! and `h2load` (nghttp2-client) for HTTP/2, each with one thread (at most one
//! of the machine's cores; the servers use the others and share that one).
//!
//! Every row: requests per second, latency p50/p99/p99.9 (wrk's histogram;
//! h2load's per-request log), the ratio to the bare server run just before it
//! with the same generator and connections (the bare server keeps running for
//! the whole bench, so the machine's drift over minutes stays out of the
//! ratios; the notes say how far the bare runs spread), the server's CPU time
//! per request (user + system of its process, from `/proc/<pid>/stat`, over
//! the row) and the load generator's (read from `/proc` once it has exited,
//! before it is reaped). Errors (connection, timeouts, unexpected statuses)
//! are counted and printed.
//!
//! The store is prepared by a child too (`prepare`: the demo data set,
//! support tokens for the consumption rows, and for the big-store rows N
//! token records), which exits before the server opens the store: the server
//! starts right after a bulk load, and that start is timed (spawn to the first
//! `/readyz` answer over HTTPS).
//!
//! Environment: `OZMINT_BENCH_SMOKE=1` (short rows, few records: CI),
//! `OZMINT_BENCH_SECS` (seconds per row, default 5), `OZMINT_BENCH_RECORDS`
//! (records of the big store, default 1 000 000), `OZMINT_BENCH_ROWS`
//! (`|`-separated parts of the labels to run, for profiling).
//!
//! Only 127.0.0.1 is connected to; every process started is killed by its PID
//! when its part ends (and on a panic, when its guard drops).

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};

use common::load::{
    basic_admin, client_tls, config_for, credentials, env_num, load_average, machine, one_request,
    progress, support_token_body, wanted, Proto, Target, DEMO_SPACE, PREFIX,
};
use ozmint::model::{Id, Subject};
use ozmint::{DurabilityMode, Zone, ZoneConfig};
use testkit::server::unix_now;
use testkit::spawned::Server;

/// Upper bound for a child (the bare server, the preparation) to report.
const CHILD_DEADLINE: Duration = Duration::from_secs(600);
/// Upper bound on one load generator run beyond its duration.
const LOAD_GRACE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Settings

struct Settings {
    smoke: bool,
    secs: f64,
    conns: Vec<usize>,
    records: usize,
    /// Support tokens per consumption run (one run: one protocol, one
    /// connection count, one durability).
    consume_per_run: usize,
}

impl Settings {
    fn from_env() -> Self {
        let smoke = common::smoke();
        let secs = env_num("OZMINT_BENCH_SECS").unwrap_or(if smoke { 1.0 } else { 5.0 });
        Settings {
            smoke,
            secs: secs.clamp(1.0, 600.0),
            conns: if smoke { vec![8] } else { vec![32, 256] },
            records: env_num("OZMINT_BENCH_RECORDS")
                .map_or(if smoke { 2_000 } else { 1_000_000 }, |n| n as usize),
            // Enough for 25 000 consumptions a second (the fastest row here
            // does 16 500); a run that uses them up ends early (and says so).
            consume_per_run: if smoke {
                3_000
            } else {
                (25_000.0 * secs.clamp(1.0, 600.0)) as usize
            },
        }
    }
}

// ---------------------------------------------------------------------------
// Child processes

/// A child process killed (by its PID) and reaped when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// This bench re-run as a child in `mode`; its stdout is returned line by line.
fn spawn_self(mode: &str, args: &[&Path]) -> (Proc, mpsc::Receiver<String>) {
    let mut child = Command::new(std::env::current_exe().expect("the bench's path"))
        .arg(mode)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn a child of the bench");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Proc(child), rx)
}

/// The first line of `rx` starting with `prefix`, without it (bounded wait).
fn line_with(rx: &mpsc::Receiver<String>, prefix: &str) -> String {
    let deadline = Instant::now() + CHILD_DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix(prefix) {
                    return rest.trim().to_owned();
                }
            }
            Err(e) => panic!("child: no line {prefix:?} ({e})"),
        }
    }
}

/// Child `bare-server DIR BODY`: the bare server with the TLS files under DIR
/// (generated there if missing) and the constant body in the file BODY; prints
/// `listening ADDR`, serves until its stdin closes or it is killed.
fn bare_server_child(dir: &Path, body: &Path) {
    let body = Bytes::from(std::fs::read(body).expect("body file"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (target, _stop, _task) = common::load::bare_server(dir, body).await;
        println!("listening {}", target.addr);
        // Serve until stdin closes (the bench exited) or the process is killed.
        tokio::task::spawn_blocking(|| std::io::stdin().lines().count())
            .await
            .ok();
    });
}

/// Child `prepare DIR CONSUME RECORDS [URL]`: the demo data set in the store
/// of DIR (or at the engine URL), CONSUME support token bodies (one per line
/// in `DIR/consume.jsonl`) and RECORDS token records; prints `ready`, then
/// exits (closing the store).
fn prepare_child(dir: &Path, consume: usize, records: usize, url: Option<String>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut config = config_for(dir, DurabilityMode::Relaxed);
        config.store.url = url;
        let store = ozmint::serve::open_store(&config).await.expect("open");
        ozmint::serve::bootstrap(&store, true, None)
            .await
            .expect("bootstrap");
        let admin = store
            .user_by_name("admin")
            .await
            .expect("read")
            .expect("demo admin")
            .0;
        let zone = Zone::new(
            store.clone(),
            ZoneConfig {
                location: config.zone_name.clone(),
                lifetimes: config.tokens.clone(),
                ..ZoneConfig::default()
            },
        )
        .await
        .expect("zone");
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(dir.join("consume.jsonl")).expect("consume.jsonl"),
        );
        for i in 0..consume {
            let body = support_token_body(&zone, Subject::User(admin), &format!("c{i}")).await;
            out.write_all(&body).expect("write");
            out.write_all(b"\n").expect("write");
        }
        out.flush().expect("flush");
        let targets: std::sync::Arc<Vec<Id>> =
            (0..1000).map(|_| Id::random()).collect::<Vec<_>>().into();
        let next = std::sync::Arc::new(AtomicUsize::new(0));
        let mut fillers = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let (store, targets, next) = (store.clone(), targets.clone(), next.clone());
            fillers.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= records {
                        break;
                    }
                    let rec = common::sample_record(targets[i % targets.len()], admin);
                    common::insert_token(&store, &Id::time_ordered(), &rec).await;
                }
            });
        }
        while let Some(done) = fillers.join_next().await {
            done.expect("filler");
        }
        store.sync().await.expect("flush");
    });
    println!("ready");
}

// ---------------------------------------------------------------------------
// Measuring

/// The fields of `/proc/<pid>/stat` after the command name (which may hold
/// spaces, in parentheses): the state is the first.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The state of process `pid` (`R`, `S`, ..., `Z` once it has exited and
/// waits to be reaped).
fn proc_state(pid: u32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// User + system CPU time of process `pid` so far.
fn cpu_time(pid: u32) -> Duration {
    let f = stat_fields(pid).expect("/proc/pid/stat");
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let ticks: u64 = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
    let hz = rustix::param::clock_ticks_per_second();
    Duration::from_secs_f64(ticks as f64 / hz as f64)
}

/// Resident memory of process `pid` (`VmRSS`) and its peak (`VmHWM`), MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A load generator: wrk (HTTP/1.1), h2load (HTTP/2), or this bench's own
/// (hyper's client in a child process with one thread; for rows needing a new
/// body per request, which ends a run when the bodies are used up).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Gen {
    Wrk,
    H2load,
    Own(Proto),
}

impl Gen {
    fn proto(self) -> Proto {
        match self {
            Gen::Wrk => Proto::H1,
            Gen::H2load => Proto::H2,
            Gen::Own(p) => p,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Gen::Wrk => "wrk",
            Gen::H2load => "h2load",
            Gen::Own(_) => "own (hyper)",
        }
    }
}

/// wrk and h2load for fixed bodies; per-request bodies need our own (h2load
/// sends one body, and wrk cannot end a run when the bodies are used up).
fn gens(load: &Load) -> Vec<Gen> {
    match load.body {
        Body::Fixed(_) => vec![Gen::Wrk, Gen::H2load],
        Body::PerRequest(_) => vec![Gen::Own(Proto::H1), Gen::Own(Proto::H2)],
    }
}

/// One kind of request, sent over and over.
#[derive(Clone)]
struct Load {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    /// A body for every request, or one body per request from a file (one per
    /// line; every line is sent at most once, and the run ends when they are
    /// used up).
    body: Body,
    /// The status every answer must have (others are errors).
    status: u16,
}

#[derive(Clone)]
enum Body {
    Fixed(String),
    PerRequest(PathBuf),
}

/// The result of one load generator run.
#[derive(Clone, Debug, Default)]
struct Run {
    requests: u64,
    errors: u64,
    secs: f64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    /// CPU time of the server's processes over the run.
    cpu: Duration,
    /// CPU time of the load generator over the run.
    gen_cpu: Duration,
}

impl Run {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.secs.max(1e-9)
    }
    /// `cpu` (the server's or the generator's) per request, in µs.
    fn us_per_request(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }
}

/// Runs `gen` against `addr` (certificate `cert`) with `conns` connections
/// for `secs`, measuring the CPU time of the processes `pids` (the server, and
/// the etcd members it uses).
#[allow(clippy::too_many_arguments)]
fn drive(
    work: &Path,
    addr: std::net::SocketAddr,
    cert: &Path,
    gen: Gen,
    conns: usize,
    secs: f64,
    load: &Load,
    pids: &[u32],
) -> Run {
    let url = format!("https://127.0.0.1:{}{}", addr.port(), load.path);
    let cpu = || pids.iter().map(|&p| cpu_time(p)).sum::<Duration>();
    let cpu0 = cpu();
    let mut run = match gen {
        Gen::Wrk => wrk(work, &url, conns, secs, load),
        Gen::H2load => h2load(work, &url, conns, secs, load),
        Gen::Own(proto) => own(work, addr, cert, proto, conns, secs, load),
    };
    run.cpu = cpu().saturating_sub(cpu0);
    run
}

/// Runs `cmd` to completion within `limit` (killed after that): its stdout,
/// and the CPU time it used (user + system, read from `/proc` once it has
/// exited and before it is reaped).
fn run_bounded(mut cmd: Command, limit: Duration) -> (String, Duration) {
    let mut child = Proc(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{cmd:?}: {e} (wrk and h2load come from Debian's wrk and nghttp2-client)")
            }),
    );
    let mut out = child.0.stdout.take().expect("stdout");
    let mut err = child.0.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let deadline = Instant::now() + limit;
    let pid = child.0.id();
    // A zombie keeps its CPU times until it is reaped: wait for it to exit
    // without reaping it (`try_wait` would), read them, then reap.
    let cpu = loop {
        if proc_state(pid) == Some('Z') {
            break cpu_time(pid);
        }
        assert!(Instant::now() < deadline, "{cmd:?} ran past {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let status = child.0.wait().expect("wait");
    let out = out_t.join().unwrap_or_default();
    let err = err_t.join().unwrap_or_default();
    assert!(status.success(), "{cmd:?}: {status}\n{out}\n{err}");
    (out, cpu)
}

/// A Lua long string holding `s` (no escaping needed).
fn lua_str(s: &str) -> String {
    let mut eq = String::new();
    while s.contains(&format!("]{eq}]")) {
        eq.push('=');
    }
    format!("[{eq}[{s}]{eq}]")
}

/// wrk, one thread: the request and the summary line come from a Lua script.
fn wrk(work: &Path, url: &str, conns: usize, secs: f64, load: &Load) -> Run {
    let mut lua = format!("wrk.method = {}\n", lua_str(load.method));
    for (k, v) in &load.headers {
        writeln!(lua, "wrk.headers[ {} ] = {}", lua_str(k), lua_str(v)).unwrap();
    }
    match &load.body {
        Body::Fixed(b) if b.is_empty() => {}
        Body::Fixed(b) => {
            writeln!(lua, "wrk.headers[\"Content-Type\"] = \"application/json\"").unwrap();
            writeln!(lua, "wrk.body = {}", lua_str(b)).unwrap();
        }
        Body::PerRequest(_) => panic!("per-request bodies go to this bench's own generator"),
    }
    // wrk counts answers with a status of 400 or more as errors (a handler
    // comparing every status exactly would make wrk parse every answer and
    // slow it down); `expect_status` checks the exact status before a row.
    lua.push_str(
        "done = function(s, lat, req)\n  \
         local e = s.errors\n  \
         io.write(string.format(\"OZMINT %d %d %d %.0f %.0f %.0f\\n\", s.requests, s.duration,\n    \
         e.connect + e.read + e.write + e.timeout + e.status,\n    \
         lat:percentile(50), lat:percentile(99), lat:percentile(99.9)))\nend\n",
    );
    let script = work.join("load.lua");
    std::fs::write(&script, lua).expect("write the wrk script");
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "--timeout", "10s", "-c"])
        .arg(conns.to_string())
        .arg("-d")
        .arg(format!("{}s", secs.round().max(1.0)))
        .arg("-s")
        .arg(&script)
        .arg(url);
    summary(
        &run_bounded(cmd, Duration::from_secs_f64(secs) + LOAD_GRACE),
        "wrk",
    )
}

/// The run a generator's output line `OZMINT requests duration-µs errors p50
/// p99 p99.9` describes (wrk's Lua `done` and the `loadgen` child print it),
/// with the generator's CPU time.
fn summary((out, gen_cpu): &(String, Duration), who: &str) -> Run {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("OZMINT "))
        .unwrap_or_else(|| panic!("no summary from {who}:\n{out}"));
    let v: Vec<f64> = line
        .split_whitespace()
        .map(|x| x.parse().expect("number"))
        .collect();
    Run {
        requests: v[0] as u64,
        secs: v[1] / 1e6,
        errors: v[2] as u64,
        p50_us: v[3],
        p99_us: v[4],
        p999_us: v[5],
        cpu: Duration::ZERO,
        gen_cpu: *gen_cpu,
    }
}

/// h2load, one thread, one stream per connection: counts from its summary,
/// latencies and statuses from its per-request log.
fn h2load(work: &Path, url: &str, conns: usize, secs: f64, load: &Load) -> Run {
    let log = work.join("h2load.log");
    let _ = std::fs::remove_file(&log);
    let mut cmd = Command::new("h2load");
    cmd.args(["-t1", "-m1", "-c"])
        .arg(conns.to_string())
        .arg("-D")
        .arg(format!("{}", secs.round().max(1.0)))
        .arg(format!("--log-file={}", log.display()));
    for (k, v) in &load.headers {
        cmd.arg("-H").arg(format!("{k}: {v}"));
    }
    match &load.body {
        Body::Fixed(b) if b.is_empty() => {
            // h2load sends GET unless -d; -d cannot be empty.
            cmd.arg("-H").arg(format!(":method: {}", load.method));
        }
        Body::Fixed(b) => {
            let f = work.join("h2load.body");
            std::fs::write(&f, b).expect("body file");
            cmd.arg("-d")
                .arg(f)
                .arg("-H")
                .arg("content-type: application/json");
        }
        Body::PerRequest(_) => panic!("h2load sends one body: no per-request bodies"),
    }
    cmd.arg(url);
    let (out, gen_cpu) = run_bounded(cmd, Duration::from_secs_f64(secs) + LOAD_GRACE);
    // "finished in 5.00s, 12345.67 req/s, ..." and
    // "requests: T total, S started, D done, OK succeeded, F failed, E errored, TO timeout"
    let secs_taken = out
        .lines()
        .find_map(|l| l.strip_prefix("finished in "))
        .and_then(|l| l.split(',').next())
        .and_then(|t| {
            let (n, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic())?);
            let scale = match unit {
                "s" => 1.0,
                "ms" => 1e-3,
                "us" => 1e-6,
                _ => return None,
            };
            Some(n.parse::<f64>().ok()? * scale)
        })
        .unwrap_or_else(|| panic!("no 'finished in' from h2load:\n{out}"));
    let counts: BTreeMap<String, u64> = out
        .lines()
        .find_map(|l| l.strip_prefix("requests: "))
        .unwrap_or_else(|| panic!("no 'requests:' from h2load:\n{out}"))
        .split(", ")
        .filter_map(|part| {
            let (n, what) = part.split_once(' ')?;
            Some((what.to_owned(), n.parse().ok()?))
        })
        .collect();
    let file = std::fs::read_to_string(&log).expect("h2load log");
    let mut lat = Vec::new();
    let mut unexpected = 0u64;
    for l in file.lines() {
        // start time (µs), status, duration (µs)
        let f: Vec<&str> = l.split('\t').collect();
        if f.len() < 3 {
            continue;
        }
        if f[1] != load.status.to_string() {
            unexpected += 1;
        }
        if let Ok(us) = f[2].parse::<f64>() {
            lat.push(us);
        }
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            lat[((lat.len() - 1) as f64 * p / 100.0).round() as usize]
        }
    };
    let c = |k: &str| counts.get(k).copied().unwrap_or(0);
    Run {
        requests: c("done").saturating_sub(c("errored")),
        secs: secs_taken,
        errors: c("errored") + c("timeout") + unexpected.max(c("failed")),
        p50_us: pct(50.0),
        p99_us: pct(99.0),
        p999_us: pct(99.9),
        cpu: Duration::ZERO,
        gen_cpu,
    }
}

/// What the `loadgen` child is asked to do (a JSON file).
#[derive(serde::Serialize, serde::Deserialize)]
struct LoadSpec {
    port: u16,
    cert: PathBuf,
    h2: bool,
    conns: usize,
    secs: f64,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
    bodies: Option<PathBuf>,
    status: u16,
}

/// This bench's own load generator, in a child process of its own.
fn own(
    work: &Path,
    addr: std::net::SocketAddr,
    cert: &Path,
    proto: Proto,
    conns: usize,
    secs: f64,
    load: &Load,
) -> Run {
    let (body, bodies) = match &load.body {
        Body::Fixed(b) => (b.clone(), None),
        Body::PerRequest(p) => (String::new(), Some(p.clone())),
    };
    let spec = LoadSpec {
        port: addr.port(),
        cert: cert.to_owned(),
        h2: proto == Proto::H2,
        conns,
        secs,
        method: load.method.into(),
        path: load.path.clone(),
        headers: load
            .headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        body,
        bodies,
        status: load.status,
    };
    let file = work.join("loadgen.json");
    std::fs::write(&file, serde_json::to_vec(&spec).expect("spec")).expect("spec file");
    let mut cmd = Command::new(std::env::current_exe().expect("the bench's path"));
    cmd.arg("loadgen")
        .arg(&file)
        .env_remove("OZMINT_BENCH_ROWS");
    summary(
        &run_bounded(cmd, Duration::from_secs_f64(secs) + LOAD_GRACE),
        "the loadgen child",
    )
}

/// Child `loadgen SPEC`: runs `common::load::run_load` (one thread) as SPEC
/// says and prints its [`summary`] line.
fn loadgen_child(spec: &Path) {
    let spec: LoadSpec =
        serde_json::from_slice(&std::fs::read(spec).expect("spec")).expect("spec json");
    let target = Target {
        addr: ([127, 0, 0, 1], spec.port).into(),
        tls: client_tls(&spec.cert),
    };
    let bodies = match &spec.bodies {
        Some(p) => common::load::Bodies::Pool(std::sync::Arc::new(common::load::Pool {
            bodies: std::fs::read_to_string(p)
                .expect("bodies")
                .lines()
                .map(|l| Bytes::from(l.to_owned()))
                .collect(),
            next: AtomicUsize::new(0),
        })),
        None => common::load::Bodies::Fixed(Bytes::from(spec.body.clone())),
    };
    let workload = common::load::Workload {
        method: Method::from_bytes(spec.method.as_bytes()).expect("method"),
        path: spec.path.clone(),
        // A child that exits after one run: leaking the names is harmless.
        headers: spec
            .headers
            .iter()
            .map(|(k, v)| (&*Box::leak(k.clone().into_boxed_str()), v.clone()))
            .collect(),
        bodies,
        expect: StatusCode::from_u16(spec.status).expect("status"),
    };
    let proto = if spec.h2 { Proto::H2 } else { Proto::H1 };
    let secs = Duration::from_secs_f64(spec.secs);
    let row = common::runtime()
        .block_on(common::load::run_load(
            "", &target, proto, spec.conns, secs, workload,
        ))
        .expect("a row");
    println!(
        "OZMINT {:.0} {:.0} {} {} {} {}",
        row.rate * row.secs,
        row.secs * 1e6,
        row.errors,
        row.p50_us,
        row.p99_us,
        row.p999_us
    );
    if !row.note.is_empty() {
        eprintln!("loadgen: {}", row.note);
    }
}

// ---------------------------------------------------------------------------
// The servers

/// A data directory (and the store at `url`, if given), prepared by the
/// `prepare` child (which has exited).
fn prepare(dir: &Path, consume: usize, records: usize, url: Option<&str>) -> Duration {
    let t = Instant::now();
    let (consume, records) = (consume.to_string(), records.to_string());
    let mut args = vec![dir, Path::new(&consume), Path::new(&records)];
    args.extend(url.map(Path::new));
    let (mut child, rx) = spawn_self("prepare", &args);
    line_with(&rx, "ready");
    let status = child.0.wait().expect("wait for prepare");
    assert!(status.success(), "prepare: {status}");
    t.elapsed()
}

/// `ozmint serve --demo` on the store of `data`, with `durability`; the time
/// from spawning it to its first `/readyz` answer over HTTPS.
fn serve(
    work: &Path,
    data: &Path,
    url: Option<&str>,
    durability: &str,
) -> (Server, Target, Duration) {
    let t = Instant::now();
    let data_arg = data.display().to_string();
    let mut args = vec!["--demo", "--listen", "127.0.0.1:0", "--data", &data_arg];
    if let Some(url) = url {
        args.extend(["--store", url]);
    }
    let server = Server::start(work, &args, &[("OZMINT_DURABILITY", durability)]);
    let target = Target {
        addr: server.addr(),
        tls: client_tls(&data.join("tls").join("cert.pem")),
    };
    let rt = common::runtime();
    let (status, _) = rt.block_on(one_request(
        &target,
        Method::GET,
        "/readyz",
        &[],
        Bytes::new(),
    ));
    assert_eq!(status, StatusCode::OK, "readyz");
    (server, target, t.elapsed())
}

/// The credentials and bodies the rows use, asked of a running server.
struct Facts {
    access: String,
    provider: String,
    named: String,
    mint_answer: Bytes,
}

fn facts(target: &Target) -> Facts {
    common::runtime().block_on(async {
        let (access, provider) = credentials(target).await;
        let (st, named) = one_request(
            target,
            Method::POST,
            &format!("{PREFIX}/user/tokens/named"),
            &[("x-auth-token", access.clone())],
            Bytes::from(format!(r#"{{"name": "bench {}"}}"#, Id::random())),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{named:?}");
        let v: serde_json::Value = serde_json::from_slice(&named).expect("json");
        let (st, mint_answer) = one_request(
            target,
            Method::POST,
            &format!("{PREFIX}/spaces/{DEMO_SPACE}/providers/token"),
            &[("x-auth-token", access.clone())],
            Bytes::new(),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        Facts {
            access,
            provider,
            named: v["token"].as_str().expect("token").to_owned(),
            mint_answer,
        }
    })
}

/// The rows' request kinds, by label.
fn loads(f: &Facts) -> Vec<(&'static str, Load)> {
    let get = |path: &str, headers: Vec<(&'static str, String)>| Load {
        method: "GET",
        path: path.to_owned(),
        headers,
        body: Body::Fixed(String::new()),
        status: 200,
    };
    let post = |path: String, headers: Vec<(&'static str, String)>, body: String, status| Load {
        method: "POST",
        path,
        headers,
        body: Body::Fixed(body),
        status,
    };
    let access = || vec![("x-auth-token", f.access.clone())];
    let (b, basic) = basic_admin();
    let basic = || vec![(b, basic.clone())];
    let mint = format!("{PREFIX}/spaces/{DEMO_SPACE}/providers/token");
    let valid_until = unix_now() + 24 * 3600;
    vec![
        ("GET /healthz", get("/healthz", vec![])),
        (
            "GET /user, access token",
            get(&format!("{PREFIX}/user"), access()),
        ),
        ("GET /user, Basic", get(&format!("{PREFIX}/user"), basic())),
        (
            "seed mint, access token",
            post(mint.clone(), access(), String::new(), 200),
        ),
        ("seed mint, Basic", post(mint, basic(), String::new(), 200)),
        (
            "temporary-token mint",
            post(
                format!("{PREFIX}/user/tokens/temporary"),
                access(),
                format!(r#"{{"caveats": [{{"type": "time", "validUntil": {valid_until}}}]}}"#),
                201,
            ),
        ),
        (
            "v2 verify_access_token",
            post(
                format!("{PREFIX}/tokens/verify_access_token"),
                vec![],
                serde_json::json!({ "token": f.named }).to_string(),
                200,
            ),
        ),
    ]
}

/// The generators of the consumption rows (a new token per request).
const CONSUME_GENS: [Gen; 2] = [Gen::Own(Proto::H1), Gen::Own(Proto::H2)];

/// A consumption run: the next `n` support token bodies, written to `file`,
/// each sent once with the provider's token.
fn consume_load<'a>(
    file: PathBuf,
    bodies: &mut impl Iterator<Item = &'a str>,
    n: usize,
    f: &Facts,
) -> Load {
    let part: Vec<&str> = bodies.take(n).collect();
    std::fs::write(&file, part.join("\n")).expect("bodies");
    Load {
        method: "POST",
        path: format!("{PREFIX}/provider/spaces/support"),
        headers: vec![("x-auth-token", f.provider.clone())],
        body: Body::PerRequest(file),
        status: 201,
    }
}

/// One request of `load` (fixed bodies only) must answer its exact status.
fn expect_status(target: &Target, load: &Load) {
    let Body::Fixed(body) = &load.body else {
        return;
    };
    let method = Method::from_bytes(load.method.as_bytes()).expect("method");
    let mut headers = load.headers.clone();
    if !body.is_empty() {
        headers.push(("content-type", "application/json".into()));
    }
    let (status, answer) = common::runtime().block_on(one_request(
        target,
        method,
        &load.path,
        &headers,
        Bytes::from(body.clone()),
    ));
    assert_eq!(
        status.as_u16(),
        load.status,
        "{} {}: {answer:?}",
        load.method,
        load.path
    );
}

// ---------------------------------------------------------------------------
// The table

struct Row {
    label: String,
    gen: Gen,
    conns: usize,
    run: Run,
    bare: bool,
    /// The bare server's run just before this one (same generator and
    /// connections): the row's baseline.
    baseline: Option<Run>,
}

/// The bare server, running for the whole bench so that every row's baseline
/// is measured right before the row.
struct BareServer {
    addr: std::net::SocketAddr,
    cert: PathBuf,
    pid: u32,
    _proc: Proc,
}

/// What the bare server is sent.
fn bare_load() -> Load {
    Load {
        method: "GET",
        path: "/".into(),
        headers: vec![],
        body: Body::Fixed(String::new()),
        status: 200,
    }
}

struct Table {
    rows: Vec<Row>,
    bare: Option<BareServer>,
}

impl Table {
    /// The baseline of `row`: the bare server's run just before it, else its
    /// first row with the same generator and connections.
    fn baseline<'a>(&'a self, row: &'a Row) -> Option<&'a Run> {
        row.baseline.as_ref().or_else(|| {
            self.rows
                .iter()
                .find(|r| r.bare && r.gen == row.gen && r.conns == row.conns)
                .map(|r| &r.run)
        })
    }

    /// Runs `load` against `addr` with every generator of `gens` and every
    /// connection count of `conns`, measuring the CPU time of `pid`; `load_for`
    /// gives the load of each run (a fresh body file for per-request bodies).
    /// Once the bare server runs, each run of a row is preceded by a run of
    /// the bare server with the same generator and connections.
    #[allow(clippy::too_many_arguments)]
    fn measure(
        &mut self,
        w: &Path,
        (addr, cert, pids): (std::net::SocketAddr, &Path, &[u32]),
        label: &str,
        gens: &[Gen],
        conns: &[usize],
        secs: f64,
        bare: bool,
        mut load_for: impl FnMut(Gen, usize) -> Load,
    ) {
        for &c in conns {
            for &gen in gens {
                progress(format!(
                    "{label}, {}, {}, {c}",
                    gen.proto().name(),
                    gen.name()
                ));
                let baseline = match (&self.bare, bare) {
                    (Some(b), false) => Some(drive(
                        w,
                        b.addr,
                        &b.cert,
                        gen,
                        c,
                        secs,
                        &bare_load(),
                        &[b.pid],
                    )),
                    _ => None,
                };
                let load = load_for(gen, c);
                let run = drive(w, addr, cert, gen, c, secs, &load, pids);
                self.rows.push(Row {
                    label: label.to_owned(),
                    gen,
                    conns: c,
                    run,
                    bare,
                    baseline,
                });
            }
        }
    }

    fn print(&self) -> String {
        let mut s = String::from(
            "| row | protocol (generator) | conns | req/s | p50 | p99 | p99.9 | bare just before | ratio to bare | server CPU/request | generator CPU/request | errors |\n\
             |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.rows {
            let base = self.baseline(r);
            let ratio = base.map_or("–".into(), |b| format!("{:.2}", r.run.rate() / b.rate()));
            let before = r
                .baseline
                .as_ref()
                .map_or("–".into(), |b| format!("{:.0}", b.rate()));
            writeln!(
                s,
                "| {} | {} ({}) | {} | {:.0} | {} | {} | {} | {} | {} | {:.0} µs | {:.0} µs | {} |",
                r.label,
                r.gen.proto().name(),
                r.gen.name(),
                r.conns,
                r.run.rate(),
                ms(r.run.p50_us),
                ms(r.run.p99_us),
                ms(r.run.p999_us),
                before,
                ratio,
                r.run.us_per_request(r.run.cpu),
                r.run.us_per_request(r.run.gen_cpu),
                r.run.errors
            )
            .unwrap();
        }
        s
    }

    /// How far the bare server's rate moved over the run, per generator and
    /// connections (the machine's own drift, which the baselines just before
    /// each row take out of the ratios).
    fn drift(&self) -> Vec<String> {
        let mut by: BTreeMap<(String, usize), Vec<f64>> = BTreeMap::new();
        for r in &self.rows {
            let bare = r.bare.then_some(&r.run).into_iter();
            for b in bare.chain(r.baseline.as_ref()) {
                by.entry((
                    format!("{} ({})", r.gen.proto().name(), r.gen.name()),
                    r.conns,
                ))
                .or_default()
                .push(b.rate());
            }
        }
        by.into_iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|((gen, conns), v)| {
                let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = v.iter().copied().fold(0.0, f64::max);
                format!(
                    "bare server over {gen}, {conns} connections, {} runs: {lo:.0} to {hi:.0} req/s ({:.0}% apart)",
                    v.len(),
                    100.0 * (hi - lo) / lo.max(1e-9)
                )
            })
            .collect()
    }
}

fn ms(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

/// The rows over a real 3-member etcd cluster (feature `etcd`): the server
/// on the etcd engine, durable; CPU per request counts the server and the
/// three members.
#[cfg(feature = "etcd")]
fn etcd_rows(s: &Settings, w: &Path, table: &mut Table, notes: &mut Vec<String>) {
    let Some(cluster) = testkit::etcd::Cluster::start() else {
        return;
    };
    let url = cluster.url("bench");
    let data = w.join("data-etcd");
    std::fs::create_dir_all(&data).expect("data dir");
    // Consumption over etcd runs at a few thousand a second.
    let per_run = (s.consume_per_run / 5).max(1000);
    progress("etcd: preparing the store");
    prepare(&data, per_run * 2, 0, Some(&url));
    let bodies = std::fs::read_to_string(data.join("consume.jsonl")).expect("bodies");
    let mut bodies = bodies.lines();
    let (server, target, ready) = serve(w, &data, Some(&url), "durable");
    let cert = data.join("tls").join("cert.pem");
    let mut pids = vec![server.pid().parse::<u32>().expect("pid")];
    pids.extend((0..3).filter_map(|i| cluster.pid(i)));
    let srv = (target.addr, cert.as_path(), &pids[..]);
    notes.push(format!(
        "etcd: start to ready {:.0} ms",
        ready.as_secs_f64() * 1e3
    ));
    let f = facts(&target);
    let conns = &s.conns[..1];
    for (label, load) in loads(&f) {
        if label.contains("Basic") || label.contains("healthz") {
            continue;
        }
        let durable = if label.contains("seed mint") {
            ", durable"
        } else {
            ""
        };
        let label = format!("{label}{durable}, etcd (CPU: ozmint + 3 members)");
        if !wanted(&label) {
            continue;
        }
        expect_status(&target, &load);
        table.measure(
            w,
            srv,
            &label,
            &gens(&load),
            conns,
            s.secs,
            false,
            |_, _| load.clone(),
        );
    }
    let label = "consume support token, durable, etcd (CPU: ozmint + 3 members)";
    if wanted(label) {
        let mut n = 0;
        table.measure(
            w,
            srv,
            label,
            &CONSUME_GENS,
            conns,
            s.secs,
            false,
            |_, _| {
                n += 1;
                let file = w.join(format!("consume-etcd-{n}.jsonl"));
                consume_load(file, &mut bodies, per_run, &f)
            },
        );
    }
    drop(server);
    drop(cluster);
}

// ---------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("loadgen") => return loadgen_child(Path::new(&args[2])),
        Some("bare-server") => return bare_server_child(Path::new(&args[2]), Path::new(&args[3])),
        Some("prepare") => {
            return prepare_child(
                Path::new(&args[2]),
                args[3].parse().expect("consume"),
                args[4].parse().expect("records"),
                args.get(5).cloned(),
            )
        }
        _ => {}
    }
    let s = Settings::from_env();
    let t_all = Instant::now();
    let load_start = load_average();
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let mut table = Table {
        rows: Vec::new(),
        bare: None,
    };
    let mut notes = Vec::new();

    // Consumption: a new support token per request, so a body file per run.
    let consume_runs = s.conns.len() * CONSUME_GENS.len();
    for durability in ["durable", "relaxed"] {
        progress(format!("{durability}: preparing the store"));
        let data = w.join(format!("data-{durability}"));
        std::fs::create_dir_all(&data).expect("data dir");
        prepare(&data, s.consume_per_run * consume_runs, 0, None);
        let bodies = std::fs::read_to_string(data.join("consume.jsonl")).expect("bodies");
        let mut bodies = bodies.lines();
        let (server, target, ready) = serve(w, &data, None, durability);
        let pid: u32 = server.pid().parse().expect("pid");
        let cert = data.join("tls").join("cert.pem");
        let pids = [pid];
        let srv = (target.addr, cert.as_path(), &pids[..]);
        notes.push(format!(
            "{durability}: start to ready {:.0} ms (demo store)",
            ready.as_secs_f64() * 1e3
        ));
        let f = facts(&target);
        if durability == "durable" {
            let body = w.join("bare-body");
            std::fs::write(&body, &f.mint_answer).expect("bare body");
            let (bare, rx) = spawn_self("bare-server", &[&data, &body]);
            let addr = line_with(&rx, "listening ").parse().expect("bare address");
            table.measure(
                w,
                (addr, &cert, &[bare.0.id()]),
                "bare hyper 1 + rustls, constant body",
                &[
                    Gen::Wrk,
                    Gen::H2load,
                    Gen::Own(Proto::H1),
                    Gen::Own(Proto::H2),
                ],
                &s.conns,
                s.secs,
                true,
                |_, _| bare_load(),
            );
            table.bare = Some(BareServer {
                addr,
                cert: cert.clone(),
                pid: bare.0.id(),
                _proc: bare,
            });
        }
        for (label, load) in loads(&f) {
            let writes = label.contains("seed mint");
            if durability == "relaxed" && !writes {
                continue;
            }
            let label = if writes {
                format!("{label}, {durability}")
            } else {
                label.to_owned()
            };
            if !wanted(&label) {
                continue;
            }
            expect_status(&target, &load);
            let gens = gens(&load);
            table.measure(w, srv, &label, &gens, &s.conns, s.secs, false, |_, _| {
                load.clone()
            });
        }
        let label = format!("consume support token, {durability}");
        if wanted(&label) {
            let mut n = 0;
            table.measure(
                w,
                srv,
                &label,
                &CONSUME_GENS,
                &s.conns,
                s.secs,
                false,
                |_, _| {
                    n += 1;
                    let file = w.join(format!("consume-{durability}-{n}.jsonl"));
                    consume_load(file, &mut bodies, s.consume_per_run, &f)
                },
            );
        }
        let (rss, peak) = rss_mib(pid);
        notes.push(format!(
            "{durability}: server resident memory after its rows {rss:.0} MiB (peak {peak:.0} MiB)"
        ));
        drop(server);
    }

    // The big store: right after a bulk load of token records.
    {
        progress(format!("big store: filling {} token records", s.records));
        let data = w.join("data-big");
        std::fs::create_dir_all(&data).expect("data dir");
        let fill = prepare(&data, 0, s.records, None);
        let (server, target, ready) = serve(w, &data, None, "durable");
        let pid: u32 = server.pid().parse().expect("pid");
        let cert = data.join("tls").join("cert.pem");
        notes.push(format!(
            "{} records: filled in {:.1} s; start to ready right after {:.0} ms",
            s.records,
            fill.as_secs_f64(),
            ready.as_secs_f64() * 1e3
        ));
        let f = facts(&target);
        for (label, load) in loads(&f) {
            let label = if label.contains("seed mint") {
                format!("{label}, durable")
            } else {
                label.to_owned()
            };
            if label.contains("Basic") || !wanted(&label) {
                continue;
            }
            expect_status(&target, &load);
            table.measure(
                w,
                (target.addr, &cert, &[pid]),
                &format!("{label}, {} records", s.records),
                &gens(&load),
                &s.conns[..1],
                s.secs,
                false,
                |_, _| load.clone(),
            );
        }
        let (rss, peak) = rss_mib(pid);
        notes.push(format!(
            "{} records: server resident memory after its rows {rss:.0} MiB (peak {peak:.0} MiB)",
            s.records
        ));
        drop(server);
    }

    #[cfg(feature = "etcd")]
    etcd_rows(&s, w, &mut table, &mut notes);

    let errors: u64 = table.rows.iter().map(|r| r.run.errors).sum();
    println!(
        "\n## External benchmark ({} s per row{})\n",
        s.secs,
        if s.smoke { ", smoke" } else { "" }
    );
    println!(
        "{}; load average {} at the start, {} at the end; {:.0} s in all.\n\
         Load generators, each a process with one thread: wrk (HTTP/1.1), h2load (HTTP/2), and\n\
         for per-request bodies (consumption) this bench's own (hyper's client).\n",
        machine(),
        load_start,
        load_average(),
        t_all.elapsed().as_secs_f64()
    );
    println!("{}", table.print());
    notes.extend(table.drift());
    for n in &notes {
        println!("- {n}");
    }
    assert_eq!(errors, 0, "error responses under load (table above)");
}
