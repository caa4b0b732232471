//! The load generator of the end-to-end benchmarks (`e2e`, `etcd`): N
//! keep-alive connections to a server on loopback over TLS, HTTP/1.1 or
//! HTTP/2 (hyper's client), each doing one kind of request in a loop for a
//! fixed time; and the facts the benchmarks share about the real server
//! (its demo data set, credentials, workloads) and the machine.
//!
//! Only 127.0.0.1 is ever connected to; every loop is bounded in time and count.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsConnector;

use ozmint::config::Config;
use ozmint::http::tls::rustls;
use ozmint::model::{Subject, TokenKind};
use ozmint::{DurabilityMode, Zone};

/// The demo data set's space (the mint target).
pub const DEMO_SPACE: &str = "9ueUeoZA6KXxNgzlvqmmrbzqE_BQiaHEEDC21sY1Kuc";
/// The API prefix.
pub const PREFIX: &str = "/api/v3/onezone";
/// Upper bound on one request (connection setup or request/response).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on requests per connection per row, whatever the duration.
pub const MAX_REQUESTS_PER_CONN: u64 = 5_000_000;

pub fn env_num(name: &str) -> Option<f64> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
}

/// Whether a load row runs: all of them, or those whose label contains one
/// of the `|`-separated parts of `OZMINT_BENCH_ROWS` (for profiling).
pub fn wanted(label: &str) -> bool {
    std::env::var("OZMINT_BENCH_ROWS").map_or(true, |f| f.split('|').any(|p| label.contains(p)))
}

pub fn progress(msg: impl AsRef<str>) {
    eprintln!("[{}] {}", env!("CARGO_CRATE_NAME"), msg.as_ref());
}

// ---------------------------------------------------------------------------
// Load generator

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Proto {
    H1,
    H2,
}

impl Proto {
    pub fn alpn(self) -> Vec<u8> {
        match self {
            Proto::H1 => b"http/1.1".to_vec(),
            Proto::H2 => b"h2".to_vec(),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Proto::H1 => "HTTP/1.1",
            Proto::H2 => "HTTP/2",
        }
    }
}

pub enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> hyper::Result<Response<Incoming>> {
        match self {
            Sender::H1(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
        }
    }
}

/// A client TLS configuration trusting the server's self-signed certificate.
pub fn client_tls(cert: &Path) -> rustls::ClientConfig {
    let pem = std::fs::read(cert).expect("read the server certificate");
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(c.expect("PEM certificate")).expect("add root");
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// Where and how to reach a server.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub tls: rustls::ClientConfig,
}

pub async fn connect(target: &Target, proto: Proto) -> Result<Sender, String> {
    assert!(target.addr.ip().is_loopback(), "only loopback is a target");
    let mut cfg = target.tls.clone();
    cfg.alpn_protocols = vec![proto.alpn()];
    let tcp = TcpStream::connect(target.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    let name = rustls::pki_types::ServerName::from(target.addr.ip());
    let tls = TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let io = TokioIo::new(tls);
    Ok(match proto {
        Proto::H1 => {
            let (s, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| format!("h1 handshake: {e}"))?;
            tokio::spawn(conn);
            Sender::H1(s)
        }
        Proto::H2 => {
            let (s, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| format!("h2 handshake: {e}"))?;
            tokio::spawn(conn);
            Sender::H2(s)
        }
    })
}

/// Where request bodies come from: always the same, or each taken once from a pool.
#[derive(Clone)]
pub enum Bodies {
    Fixed(Bytes),
    Pool(Arc<Pool>),
}

pub struct Pool {
    pub bodies: Vec<Bytes>,
    pub next: AtomicUsize,
}

impl Pool {
    pub fn take(&self) -> Option<Bytes> {
        self.bodies
            .get(self.next.fetch_add(1, Ordering::Relaxed))
            .cloned()
    }
}

/// One kind of request, repeated.
#[derive(Clone)]
pub struct Workload {
    pub method: Method,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub bodies: Bodies,
    pub expect: StatusCode,
}

pub fn build_request(
    target: &Target,
    proto: Proto,
    method: &Method,
    path: &str,
    headers: &[(&'static str, String)],
    body: Bytes,
) -> Request<Full<Bytes>> {
    let authority = format!("127.0.0.1:{}", target.addr.port());
    let mut b = Request::builder().method(method.clone());
    b = match proto {
        // HTTP/1.1: origin-form and a Host header; HTTP/2: :scheme and :authority.
        Proto::H1 => b.uri(path).header(HOST, authority),
        Proto::H2 => b.uri(format!("https://{authority}{path}")),
    };
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    if !body.is_empty() {
        b = b.header(CONTENT_TYPE, "application/json");
    }
    b.body(Full::new(body)).expect("valid request")
}

/// One request on a new connection (setup calls).
pub async fn one_request(
    target: &Target,
    method: Method,
    path: &str,
    headers: &[(&'static str, String)],
    body: Bytes,
) -> (StatusCode, Bytes) {
    tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut s = connect(target, Proto::H1).await.expect("connect");
        let req = build_request(target, Proto::H1, &method, path, headers, body);
        let resp = s.send(req).await.expect("request");
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, body)
    })
    .await
    .expect("setup request timed out")
}

#[derive(Default)]
pub struct ConnResult {
    ok: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    first_error: Option<String>,
    exhausted: bool,
    ended: Option<Instant>,
}

pub async fn conn_loop(
    mut sender: Sender,
    target: Target,
    proto: Proto,
    wl: Workload,
    deadline: Instant,
) -> ConnResult {
    let mut r = ConnResult::default();
    while Instant::now() < deadline && r.ok + r.errors < MAX_REQUESTS_PER_CONN {
        let body = match &wl.bodies {
            Bodies::Fixed(b) => b.clone(),
            Bodies::Pool(p) => match p.take() {
                Some(b) => b,
                None => {
                    r.exhausted = true;
                    break;
                }
            },
        };
        let req = build_request(&target, proto, &wl.method, &wl.path, &wl.headers, body);
        let started = Instant::now();
        let res = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let resp = sender.send(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        })
        .await;
        match res {
            Ok(Ok((status, _))) if status == wl.expect => {
                r.ok += 1;
                r.latencies_us
                    .push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
            }
            Ok(Ok((status, body))) => {
                r.errors += 1;
                r.first_error.get_or_insert_with(|| {
                    let text = String::from_utf8_lossy(&body);
                    format!("{status}: {}", text.chars().take(160).collect::<String>())
                });
            }
            Ok(Err(e)) => {
                r.errors += 1;
                r.first_error
                    .get_or_insert_with(|| format!("transport: {e}"));
                break;
            }
            Err(_) => {
                r.errors += 1;
                r.first_error
                    .get_or_insert_with(|| "request timed out".into());
                break;
            }
        }
    }
    r.ended = Some(Instant::now());
    r
}

/// A measured load row.
pub struct Row {
    pub label: String,
    pub proto: Proto,
    pub conns: usize,
    pub baseline: bool,
    pub rate: f64,
    /// Seconds measured (less than the row's when its bodies ran out).
    pub secs: f64,
    pub p50_us: u32,
    pub p99_us: u32,
    pub p999_us: u32,
    pub errors: u64,
    pub note: String,
}

pub async fn run_load(
    label: &str,
    target: &Target,
    proto: Proto,
    conns: usize,
    duration: Duration,
    wl: Workload,
) -> Option<Row> {
    if !wanted(label) {
        return None;
    }
    progress(format!("{label} [{} x{conns}]", proto.name()));
    let mut senders = Vec::with_capacity(conns);
    for _ in 0..conns {
        let s = tokio::time::timeout(REQUEST_TIMEOUT, connect(target, proto))
            .await
            .expect("connection setup timed out")
            .expect("connection setup");
        senders.push(s);
    }
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|s| tokio::spawn(conn_loop(s, target.clone(), proto, wl.clone(), deadline)))
        .collect();
    let mut lat = Vec::new();
    let (mut ok, mut errors, mut exhausted) = (0u64, 0u64, false);
    let mut first_error = None;
    let mut end = start;
    for t in tasks {
        let r = t.await.expect("connection task");
        ok += r.ok;
        errors += r.errors;
        exhausted |= r.exhausted;
        lat.extend(r.latencies_us);
        if first_error.is_none() {
            first_error = r.first_error;
        }
        end = end.max(r.ended.unwrap_or(start));
    }
    let elapsed = (end - start).as_secs_f64().max(1e-6);
    lat.sort_unstable();
    // Per mille.
    let pct = |p: usize| -> u32 {
        if lat.is_empty() {
            0
        } else {
            lat[(lat.len() * p / 1000).min(lat.len() - 1)]
        }
    };
    let mut note = String::new();
    if exhausted {
        note = format!("token pool used up after {elapsed:.2} s");
    }
    if let Some(e) = first_error {
        if !note.is_empty() {
            note.push_str("; ");
        }
        note.push_str(&format!("first error: {e}"));
    }
    Some(Row {
        label: label.into(),
        proto,
        conns,
        baseline: false,
        rate: ok as f64 / elapsed,
        secs: elapsed,
        p50_us: pct(500),
        p99_us: pct(990),
        p999_us: pct(999),
        errors,
        note,
    })
}

/// The baseline: `ozmint::http::server::serve` with the same TLS configuration
/// and limits, and a handler answering a constant 200 JSON body.
pub async fn bare_server(
    tls_dir: &Path,
    body: Bytes,
) -> (
    Target,
    watch::Sender<bool>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let tls = ozmint::http::tls::load_or_generate(None, None, tls_dir, &[]).expect("TLS config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let (tx, mut rx) = watch::channel(false);
    let limits = Config::default().limits.server_limits();
    let handler = move |_req: Request<Incoming>, _conn: ozmint::http::ConnInfo| {
        let body = body.clone();
        async move {
            let mut r = Response::new(Full::new(body));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
    };
    let stop = async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let task = tokio::spawn(ozmint::http::server::serve(
        listener,
        Some(tls),
        limits,
        handler,
        stop,
    ));
    let target = Target {
        addr,
        tls: client_tls(&tls_dir.join("tls").join("cert.pem")),
    };
    (target, tx, task)
}

pub fn config_for(dir: &Path, durability: DurabilityMode) -> Config {
    Config {
        data_dir: dir.into(),
        listen: "127.0.0.1:0".parse().expect("address"),
        demo: true,
        durability,
        ..Default::default()
    }
}

pub const BASIC_ADMIN: &str = "admin:password";

pub fn basic_admin() -> (&'static str, String) {
    (
        "authorization",
        format!("Basic {}", STANDARD.encode(BASIC_ADMIN)),
    )
}

/// An access token for admin (POST /user/client_tokens with Basic) and a
/// provider's root token (POST /providers).
pub async fn credentials(target: &Target) -> (String, String) {
    let (status, body) = one_request(
        target,
        Method::POST,
        &format!("{PREFIX}/user/client_tokens"),
        &[basic_admin()],
        Bytes::new(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "client token: {body:?}");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let access = v["token"].as_str().expect("token").to_owned();
    let (status, body) = one_request(
        target,
        Method::POST,
        &format!("{PREFIX}/providers"),
        &[basic_admin()],
        Bytes::from_static(br#"{"name":"bench provider","domain":"provider.invalid"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "provider: {body:?}");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let provider = v["providerRootToken"]
        .as_str()
        .expect("provider token")
        .to_owned();
    (access, provider)
}

pub fn mint_workload(auth: (&'static str, String)) -> Workload {
    Workload {
        method: Method::POST,
        path: format!("{PREFIX}/spaces/{DEMO_SPACE}/providers/token"),
        headers: vec![auth],
        bodies: Bodies::Fixed(Bytes::new()),
        expect: StatusCode::OK,
    }
}

pub fn consume_workload(provider_token: &str, pool: Arc<Pool>) -> Workload {
    Workload {
        method: Method::POST,
        path: format!("{PREFIX}/provider/spaces/support"),
        headers: vec![("x-auth-token", provider_token.to_owned())],
        bodies: Bodies::Pool(pool),
        expect: StatusCode::CREATED,
    }
}

pub fn fmt_us(us: u32) -> String {
    if us >= 1000 {
        format!("{:.2} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}

pub fn met(m: bool) -> &'static str {
    if m {
        "met"
    } else {
        "NOT met"
    }
}

pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(String::new(), |kb| {
            format!("{:.1} GiB", kb as f64 / 1048576.0)
        });
    format!(
        "{} cores ({cpu}), {mem} RAM",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
}

/// The 1-minute load average (other work on the machine skews the numbers).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

/// A consumption body: a space support token, minted by `admin` through the
/// library for a new space named `space_name`.
pub async fn support_token_body(zone: &Zone, admin: Subject, space_name: &str) -> Bytes {
    let space = zone
        .store()
        .create_space(space_name, None)
        .await
        .expect("space");
    let token = zone
        .mint(TokenKind::SpaceSupport, space, admin)
        .await
        .expect("mint")
        .token;
    Bytes::from(serde_json::json!({ "token": token, "size": 1_000_000u64 }).to_string())
}
