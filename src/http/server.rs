//! The HTTP(S) accept loop and per-connection driver.
//!
//! [`serve`] accepts TCP connections (optionally wrapping them in TLS), serves
//! HTTP/1.1 and HTTP/2 on each through hyper, and enforces the [`Limits`]:
//! a bounded number of concurrent connections, TLS-handshake, header-read,
//! per-request and idle timeouts, and a bounded graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{header, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::tls::rustls;

/// hyper refuses HTTP/1 read buffers smaller than this (it asserts).
const MIN_H1_BUF: usize = 8192;
/// Pause after an accept error such as EMFILE before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Interval of HTTP/2 keep-alive pings (detects dead peers while a request is in flight).
const H2_PING_INTERVAL: Duration = Duration::from_secs(20);
/// How long to wait for an HTTP/2 ping acknowledgement before closing.
const H2_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// JSON body of the 503 answer sent when a request exceeds [`Limits::request_timeout`].
pub const TIMEOUT_BODY: &str =
    r#"{"error":"timeout","error_description":"the request took too long"}"#;
/// JSON body of the 431 answer sent when a request has more than [`Limits::max_headers`] headers.
pub const TOO_MANY_HEADERS_BODY: &str =
    r#"{"error":"invalid_request","error_description":"too many request headers"}"#;

/// Resource limits and timeouts of the front end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum number of connections served at once; further connections wait
    /// in the kernel's accept backlog until a slot frees up.
    pub max_connections: usize,
    /// Maximum HTTP/1 read buffer, which bounds the request line plus headers
    /// (raised to hyper's minimum of 8192 if smaller). Also used as the
    /// HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE`.
    pub max_header_bytes: usize,
    /// Maximum number of request headers; more are answered with 431.
    pub max_headers: usize,
    /// Time allowed to receive a complete HTTP/1 request head. It also bounds
    /// how long a new connection may stay silent before its first request
    /// (both protocols), and, as hyper applies it between keep-alive requests
    /// too, how long an idle HTTP/1 connection is kept.
    pub header_read_timeout: Duration,
    /// Time allowed to complete the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Time allowed for the handler to produce a response; on expiry the
    /// client gets a 503 with [`TIMEOUT_BODY`].
    pub request_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// Maximum number of concurrent HTTP/2 streams per connection.
    pub h2_max_concurrent_streams: u32,
    /// After shutdown is requested, how long in-flight requests may still run.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            header_read_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            h2_max_concurrent_streams: 128,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Facts about the connection a request arrived on, passed to the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// The remote address of the TCP connection.
    pub peer: SocketAddr,
    /// Whether TLS ALPN negotiated `h2` (always false for plain HTTP).
    pub alpn_h2: bool,
}

/// Serves HTTP/1.1 and HTTP/2 on `listener` until `shutdown` resolves.
///
/// With `tls: Some(config)` every connection is wrapped in TLS (HTTP/2 is
/// chosen by ALPN); with `None` plain HTTP is served (HTTP/2 by prior
/// knowledge). Each request is passed to `handler` together with its
/// [`ConnInfo`] and run under [`Limits::request_timeout`].
///
/// When `shutdown` resolves the listener is closed, every connection is told
/// to finish gracefully (in-flight requests complete, idle connections close),
/// and after at most [`Limits::shutdown_grace`] the remaining connections are
/// dropped and the function returns `Ok(())`. Failures of single connections
/// and accept errors are logged and never end the loop.
pub async fn serve<H, F, S>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    handler: H,
    shutdown: S,
) -> io::Result<()>
where
    H: Fn(Request<Incoming>, ConnInfo) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    S: Future<Output = ()> + Send,
{
    let shared = Arc::new(Shared {
        builder: http_builder(&limits),
        acceptor: tls.map(TlsAcceptor::from),
        limits,
    });
    let permits = Arc::new(Semaphore::new(
        shared
            .limits
            .max_connections
            .clamp(1, Semaphore::MAX_PERMITS),
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        // Take a connection slot before accepting: while all slots are in use,
        // new connections wait in the kernel backlog instead of being accepted.
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) if is_per_connection_error(&e) => {
                    tracing::debug!(error = %e, "accept: connection failed before it was accepted");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying shortly");
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            },
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "could not set TCP_NODELAY");
        }
        tasks.spawn(connection(
            tcp,
            peer,
            Arc::clone(&shared),
            handler.clone(),
            stop_rx.clone(),
            permit,
        ));
        // Reap finished connection tasks so the set does not grow.
        while let Some(result) = tasks.try_join_next() {
            log_task_end(result);
        }
    }

    // Stop accepting: closing the listener refuses new connections.
    drop(listener);
    stop_tx.send_replace(true);
    tracing::debug!(
        connections = tasks.len(),
        "shutting down; waiting for in-flight requests"
    );
    let drained = tokio::time::timeout(shared.limits.shutdown_grace, async {
        while let Some(result) = tasks.join_next().await {
            log_task_end(result);
        }
    })
    .await;
    if drained.is_err() {
        tracing::debug!(
            connections = tasks.len(),
            "shutdown grace period over; dropping remaining connections"
        );
    }
    tasks.shutdown().await;
    Ok(())
}

/// Errors from `accept` that concern one would-be connection, not the listener.
fn is_per_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

fn log_task_end(result: Result<(), JoinError>) {
    if let Err(e) = result {
        if e.is_panic() {
            tracing::warn!("a connection task panicked");
        }
    }
}

fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .half_close(false)
        .max_buf_size(limits.max_header_bytes.max(MIN_H1_BUF))
        .max_headers(limits.max_headers)
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    builder
}

/// Resolves once shutdown has been requested (or the server is gone).
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    // An error means the sender was dropped: treat it as a stop as well.
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// What every connection task needs, built once per [`serve`] call.
struct Shared {
    builder: auto::Builder<TokioExecutor>,
    acceptor: Option<TlsAcceptor>,
    limits: Limits,
}

/// One connection: optional TLS handshake, then HTTP until closed.
async fn connection<H, F>(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    handler: H,
    mut stop: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) where
    H: Fn(Request<Incoming>, ConnInfo) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    // Held for the life of the connection; dropping it frees the slot.
    let _permit = permit;
    let Shared {
        builder,
        acceptor,
        limits,
    } = &*shared;
    match acceptor {
        None => {
            let info = ConnInfo {
                peer,
                alpn_h2: false,
            };
            drive(TokioIo::new(tcp), info, builder, limits, handler, &mut stop).await;
        }
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(tcp));
            let stream = tokio::select! {
                result = handshake => match result {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_elapsed) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
                () = stop_requested(&mut stop) => return,
            };
            let alpn_h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            let info = ConnInfo { peer, alpn_h2 };
            drive(
                TokioIo::new(stream),
                info,
                builder,
                limits,
                handler,
                &mut stop,
            )
            .await;
        }
    }
}

/// Tracks requests in flight on one connection and when the last one started or ended.
struct Activity {
    base: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `base` of the last request start or end.
    last_ms: AtomicU64,
    any_request: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Activity {
            base: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            any_request: AtomicBool::new(false),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::SeqCst);
    }

    /// When the connection becomes idle-expired, or `None` while a request is in flight.
    ///
    /// Before its first request a connection gets `first_request` (bounded by
    /// `idle`); afterwards `idle`.
    fn idle_deadline(&self, idle: Duration, first_request: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let limit = if self.any_request.load(Ordering::SeqCst) {
            idle
        } else {
            first_request.min(idle)
        };
        let last = Duration::from_millis(self.last_ms.load(Ordering::SeqCst));
        Some(self.base + last + limit)
    }
}

/// Marks one request in flight; dropping it (also when the request future is
/// cancelled, e.g. by an HTTP/2 stream reset) marks its end.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        activity.any_request.store(true, Ordering::SeqCst);
        activity.touch();
        InFlight(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn json_response(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// Serves HTTP on an established (possibly TLS) stream until it closes, is
/// idle too long, or shutdown is requested.
async fn drive<I, H, F>(
    io: I,
    info: ConnInfo,
    builder: &auto::Builder<TokioExecutor>,
    limits: &Limits,
    handler: H,
    stop: &mut watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    H: Fn(Request<Incoming>, ConnInfo) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = Arc::clone(&activity);
        let request_timeout = limits.request_timeout;
        let max_headers = limits.max_headers;
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let guard = InFlight::enter(&activity);
            // hyper enforces `max_headers` for HTTP/1 only; check here for HTTP/2.
            let work = if request.headers().len() > max_headers {
                None
            } else {
                Some(handler(request, info))
            };
            async move {
                let _guard = guard;
                let response = match work {
                    None => json_response(
                        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        TOO_MANY_HEADERS_BODY,
                    ),
                    Some(work) => match tokio::time::timeout(request_timeout, work).await {
                        Ok(response) => response,
                        Err(_elapsed) => {
                            tracing::debug!(peer = %info.peer, "request timed out");
                            json_response(StatusCode::SERVICE_UNAVAILABLE, TIMEOUT_BODY)
                        }
                    },
                };
                Ok::<_, Infallible>(response)
            }
        })
    };

    let conn = builder.serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let first_deadline = activity
        .idle_deadline(limits.idle_timeout, limits.header_read_timeout)
        .unwrap_or_else(|| Instant::now() + limits.idle_timeout);
    let timer = tokio::time::sleep_until(first_deadline);
    let mut timer = std::pin::pin!(timer);
    // Once graceful shutdown of this connection has begun, `timer` is the
    // deadline after which the connection is dropped outright.
    let mut closing = false;

    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(peer = %info.peer, error = %e, "connection closed with an error");
                }
                return;
            }
            () = stop_requested(stop), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
                timer.as_mut().reset(Instant::now() + limits.shutdown_grace);
            }
            () = timer.as_mut() => {
                if closing {
                    tracing::debug!(peer = %info.peer, "connection did not close in time; dropping it");
                    return;
                }
                let now = Instant::now();
                match activity.idle_deadline(limits.idle_timeout, limits.header_read_timeout) {
                    Some(deadline) if deadline <= now => {
                        tracing::debug!(peer = %info.peer, "closing idle connection");
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                        timer.as_mut().reset(now + limits.shutdown_grace);
                    }
                    Some(deadline) => timer.as_mut().reset(deadline),
                    None => timer.as_mut().reset(now + limits.idle_timeout),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{oneshot, Notify};
    use tokio::task::JoinHandle;

    /// Upper bound for any single wait in these tests.
    const BOUND: Duration = Duration::from_secs(5);

    fn limits() -> Limits {
        Limits {
            max_connections: 16,
            header_read_timeout: Duration::from_millis(300),
            tls_handshake_timeout: Duration::from_millis(300),
            request_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(2),
            ..Limits::default()
        }
    }

    async fn handler(request: Request<Incoming>, info: ConnInfo) -> Response<Full<Bytes>> {
        match request.uri().path() {
            "/sleep" => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Response::new(Full::new(Bytes::from_static(b"slept")))
            }
            "/hang" => {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Response::new(Full::new(Bytes::from_static(b"too late")))
            }
            _ => Response::new(Full::new(Bytes::from(format!(
                "ok {:?} h2={}",
                request.version(),
                info.alpn_h2
            )))),
        }
    }

    struct TestServer {
        addr: SocketAddr,
        stop: Option<oneshot::Sender<()>>,
        task: JoinHandle<io::Result<()>>,
    }

    impl TestServer {
        /// Requests shutdown and waits (bounded) for `serve` to return.
        async fn stop(mut self) -> io::Result<()> {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            tokio::time::timeout(BOUND, self.task)
                .await
                .expect("serve did not return in time")
                .expect("serve panicked")
        }
    }

    async fn start_with<H, F>(
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: Limits,
        handler: H,
    ) -> TestServer
    where
        H: Fn(Request<Incoming>, ConnInfo) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, tls, limits, handler, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn start(tls: Option<Arc<rustls::ServerConfig>>, limits: Limits) -> TestServer {
        start_with(tls, limits, handler).await
    }

    fn self_signed(dir: &std::path::Path) -> Arc<rustls::ServerConfig> {
        super::super::tls::load_or_generate(None, None, dir, &["ozmint.test".to_owned()])
            .expect("self-signed config")
    }

    fn client() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .timeout(BOUND)
            .danger_accept_invalid_certs(true)
            .no_proxy()
    }

    /// Reads from `stream` until the end of a response head, EOF or `limit`;
    /// returns what was read and whether the peer closed the connection.
    async fn read_head(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        let deadline = Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
                Err(_elapsed) => return (String::from_utf8_lossy(&buf).into_owned(), false),
                Ok(Ok(0)) | Ok(Err(_)) => {
                    return (String::from_utf8_lossy(&buf).into_owned(), true)
                }
                Ok(Ok(n)) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        return (String::from_utf8_lossy(&buf).into_owned(), false);
                    }
                }
            }
        }
    }

    /// Reads until EOF (or error) and returns how long that took, or `None` if
    /// the connection stayed open for `limit`.
    async fn time_to_close(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        let mut chunk = [0u8; 1024];
        loop {
            match tokio::time::timeout_at(started + limit, stream.read(&mut chunk)).await {
                Err(_elapsed) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
                Ok(Ok(_)) => {}
            }
        }
    }

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn https_http1() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = start(Some(self_signed(dir.path())), limits()).await;
        let client = client().http1_only().build().expect("client");
        let response = client
            .get(format!("https://127.0.0.1:{}/", server.addr.port()))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), reqwest::Version::HTTP_11);
        assert_eq!(response.text().await.expect("body"), "ok HTTP/1.1 h2=false");
        drop(client);
        server.stop().await.expect("serve");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn https_http2_via_alpn() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = start(Some(self_signed(dir.path())), limits()).await;
        let client = client().build().expect("client");
        for _ in 0..3 {
            let response = client
                .get(format!("https://127.0.0.1:{}/", server.addr.port()))
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 200);
            assert_eq!(response.version(), reqwest::Version::HTTP_2);
            assert_eq!(response.text().await.expect("body"), "ok HTTP/2.0 h2=true");
        }
        drop(client);
        server.stop().await.expect("serve");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn generated_cert_is_valid_for_its_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = start(Some(self_signed(dir.path())), limits()).await;
        let pem = std::fs::read(dir.path().join("tls").join("cert.pem")).expect("cert");
        let root = reqwest::Certificate::from_pem(&pem).expect("parse cert");
        let port = server.addr.port();
        let client = reqwest::Client::builder()
            .timeout(BOUND)
            .no_proxy()
            .tls_built_in_root_certs(false)
            .add_root_certificate(root)
            .resolve("ozmint.test", server.addr)
            .resolve("localhost", server.addr)
            .build()
            .expect("client");
        for url in [
            format!("https://ozmint.test:{port}/"),
            format!("https://localhost:{port}/"),
            format!("https://127.0.0.1:{port}/"),
        ] {
            let response = client.get(&url).send().await.expect(&url);
            assert_eq!(response.status(), 200, "{url}");
        }
        // A name that is not in the certificate is refused by the verifier.
        let strict = reqwest::Client::builder()
            .timeout(BOUND)
            .no_proxy()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("parse cert"))
            .resolve("other.test", server.addr)
            .build()
            .expect("client");
        assert!(strict
            .get(format!("https://other.test:{port}/"))
            .send()
            .await
            .is_err());
        drop((client, strict));
        server.stop().await.expect("serve");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn plain_http2_prior_knowledge() {
        let server = start(None, limits()).await;
        let client = client().http2_prior_knowledge().build().expect("client");
        let response = client
            .get(format!("http://{}/", server.addr))
            .send()
            .await
            .expect("request");
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(response.text().await.expect("body"), "ok HTTP/2.0 h2=false");
        drop(client);
        server.stop().await.expect("serve");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_and_stalled_tls_clients_do_not_stop_the_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = start(Some(self_signed(dir.path())), limits()).await;

        // Plain HTTP to the TLS port: the handshake fails, the connection closes.
        let mut plain = TcpStream::connect(server.addr).await.expect("connect");
        plain.write_all(GET).await.expect("write");
        assert!(time_to_close(&mut plain, BOUND).await.is_some());

        // A client that never starts the handshake is cut off after the handshake timeout.
        let mut silent = TcpStream::connect(server.addr).await.expect("connect");
        let took = time_to_close(&mut silent, BOUND)
            .await
            .expect("stalled handshake was not cut off");
        assert!(took >= Duration::from_millis(200), "{took:?}");

        let response = client()
            .build()
            .expect("client")
            .get(format!("https://127.0.0.1:{}/", server.addr.port()))
            .send()
            .await
            .expect("request after bad clients");
        assert_eq!(response.status(), 200);
        server.stop().await.expect("serve");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slowloris_is_cut_off_while_others_are_served() {
        let server = start(None, limits()).await;
        let mut slow = TcpStream::connect(server.addr).await.expect("connect");
        slow.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .expect("write");
        let (mut reader, mut writer) = slow.into_split();
        let trickle = tokio::spawn(async move {
            // One header line every 50 ms, for at most 3 s, until the server hangs up.
            for i in 0..60u32 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let line = format!("X-Slow-{i}: a\r\n");
                if writer.write_all(line.as_bytes()).await.is_err() {
                    return true;
                }
            }
            false
        });

        // A normal client is served while the slow one is still trickling.
        let response = client()
            .build()
            .expect("client")
            .get(format!("http://{}/", server.addr))
            .send()
            .await
            .expect("normal request");
        assert_eq!(response.status(), 200);
        assert!(!trickle.is_finished());

        let started = Instant::now();
        let mut received = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(2), reader.read_to_end(&mut received))
                .await
                .is_ok();
        assert!(closed, "slowloris connection was not closed");
        assert!(started.elapsed() < Duration::from_secs(2));
        let text = String::from_utf8_lossy(&received);
        assert!(
            !text.starts_with("HTTP/1.1 200"),
            "slow request was served: {text}"
        );
        trickle.abort();
        server.stop().await.expect("serve");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn silent_connection_is_closed_before_first_request() {
        let server = start(None, limits()).await;
        let mut silent = TcpStream::connect(server.addr).await.expect("connect");
        let took = time_to_close(&mut silent, BOUND)
            .await
            .expect("silent connection was not closed");
        assert!(took >= Duration::from_millis(200), "{took:?}");
        server.stop().await.expect("serve");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_keep_alive_connection_is_closed() {
        let server = start(
            None,
            Limits {
                header_read_timeout: Duration::from_secs(5),
                idle_timeout: Duration::from_millis(300),
                ..limits()
            },
        )
        .await;
        let mut conn = TcpStream::connect(server.addr).await.expect("connect");
        conn.write_all(GET).await.expect("write");
        let (head, _) = read_head(&mut conn, BOUND).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let took = time_to_close(&mut conn, BOUND)
            .await
            .expect("idle connection was not closed");
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        server.stop().await.expect("serve");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn max_connections_holds_back_extra_connections() {
        let server = start(
            None,
            Limits {
                max_connections: 2,
                header_read_timeout: Duration::from_secs(5),
                idle_timeout: Duration::from_secs(5),
                ..limits()
            },
        )
        .await;
        let mut first = TcpStream::connect(server.addr).await.expect("connect 1");
        first.write_all(GET).await.expect("write 1");
        let (head, _) = read_head(&mut first, BOUND).await;
        assert!(head.starts_with("HTTP/1.1 200"), "first: {head}");
        let mut second = TcpStream::connect(server.addr).await.expect("connect 2");
        second.write_all(GET).await.expect("write 2");
        let (head, _) = read_head(&mut second, BOUND).await;
        assert!(head.starts_with("HTTP/1.1 200"), "second: {head}");

        // The third connection sits in the backlog: no answer while both slots are taken.
        let mut third = TcpStream::connect(server.addr).await.expect("connect 3");
        third.write_all(GET).await.expect("write 3");
        let (head, closed) = read_head(&mut third, Duration::from_millis(400)).await;
        assert!(
            head.is_empty() && !closed,
            "third connection served early: {head}"
        );

        // Closing one connection lets the third one in.
        drop(first);
        let (head, _) = read_head(&mut third, BOUND).await;
        assert!(head.starts_with("HTTP/1.1 200"), "third: {head}");
        drop((second, third));
        server.stop().await.expect("serve");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_handler_gets_503_json() {
        let server = start(
            None,
            Limits {
                request_timeout: Duration::from_millis(200),
                ..limits()
            },
        )
        .await;
        let started = Instant::now();
        let response = client()
            .build()
            .expect("client")
            .get(format!("http://{}/hang", server.addr))
            .send()
            .await
            .expect("request");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(response.status(), 503);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        assert_eq!(
            response.text().await.expect("body"),
            r#"{"error":"timeout","error_description":"the request took too long"}"#
        );
        server.stop().await.expect("serve");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn too_many_headers_get_431() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = start(
            Some(self_signed(dir.path())),
            Limits {
                max_headers: 8,
                ..limits()
            },
        )
        .await;
        let url = format!("https://127.0.0.1:{}/", server.addr.port());
        for builder in [client().http1_only(), client()] {
            let client = builder.build().expect("client");
            let mut request = client.get(&url);
            for i in 0..20 {
                request = request.header(format!("x-extra-{i}"), "1");
            }
            let response = request.send().await.expect("request");
            assert_eq!(response.status(), 431, "{:?}", response.version());
            // A request within the limit still works.
            let response = client.get(&url).send().await.expect("request");
            assert_eq!(response.status(), 200, "{:?}", response.version());
        }
        server.stop().await.expect("serve");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn graceful_shutdown_completes_in_flight_request() {
        let started = Arc::new(Notify::new());
        let server = {
            let started = Arc::clone(&started);
            // Long header-read and idle timeouts: only the shutdown itself may
            // close the keep-alive connection.
            let limits = Limits {
                header_read_timeout: Duration::from_secs(5),
                idle_timeout: Duration::from_secs(5),
                ..limits()
            };
            start_with(None, limits, move |request, info| {
                let started = Arc::clone(&started);
                async move {
                    started.notify_one();
                    handler(request, info).await
                }
            })
            .await
        };
        let url = format!("http://{}/sleep", server.addr);
        // The client (and so its keep-alive connection) outlives `serve`: the
        // server itself has to close the connection once the response is sent.
        let keep_alive_client = client().build().expect("client");
        let request_client = keep_alive_client.clone();
        let request = tokio::spawn(async move {
            let response = request_client.get(url).send().await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        });
        tokio::time::timeout(BOUND, started.notified())
            .await
            .expect("handler did not start");
        let stop_requested = Instant::now();
        server.stop().await.expect("serve");
        let serve_took = stop_requested.elapsed();
        let (status, body) = tokio::time::timeout(BOUND, request)
            .await
            .expect("request did not finish")
            .expect("request task")
            .expect("request");
        assert_eq!(status, 200);
        assert_eq!(body, "slept");
        // `serve` waited for the 300 ms handler, but not for the whole grace period.
        assert!(serve_took >= Duration::from_millis(200), "{serve_took:?}");
        assert!(serve_took < Duration::from_millis(1500), "{serve_took:?}");
        drop(keep_alive_client);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_grace_bounds_slow_requests() {
        let server = start(
            None,
            Limits {
                request_timeout: Duration::from_secs(10),
                shutdown_grace: Duration::from_millis(300),
                ..limits()
            },
        )
        .await;
        let url = format!("http://{}/hang", server.addr);
        let request =
            tokio::spawn(async move { client().build().expect("client").get(url).send().await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stop_requested = Instant::now();
        server.stop().await.expect("serve");
        let took = stop_requested.elapsed();
        assert!(took < Duration::from_secs(2), "{took:?}");
        let result = tokio::time::timeout(BOUND, request)
            .await
            .expect("request did not finish")
            .expect("request task");
        assert!(result.is_err(), "hanging request unexpectedly answered");
    }
}
