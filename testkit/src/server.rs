//! An in-process HTTPS server on a temporary data directory, a client that
//! trusts its self-signed certificate, the demo data set's ids,
//! error-response checks, a time limit for test bodies and the clock. The
//! real binary as a child process is in [`crate::spawned`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use tempfile::TempDir;

use ozmint::config::Config;
use ozmint::engine::Engine;
use ozmint::http::App;
use ozmint::model::{Id, ZonePrivileges};
use ozmint::serve::{Bootstrap, Running};
use ozmint::{DurabilityMode, Store, Zone, ZoneConfig};

/// The demo space.
pub const DEMO_SPACE: &str = "9ueUeoZA6KXxNgzlvqmmrbzqE_BQiaHEEDC21sY1Kuc";
/// The demo group.
pub const DEMO_GROUP: &str = "HwUpk8jrwxKOe45uzLFX2GVC8lKEasj4q253sptVqF8";
/// Demo users (ids as in data/demo.json).
pub const ADMIN_ID: &str = "tWLZmTxJqfHhOSGCWqyXvW2nbtDNTDf2DxvRNdUXP3M";
pub const GUEST_ID: &str = "Gm4CMqtAjFgTyY1xLXFqjmbzTMF1E3IGbEXDBDKHz9I";
pub const CAROL_ID: &str = "c0Axi7YxZr9PlLmpBhH7bWoE1sQQ6ZAGiiEzq5T0hXw";
/// Demo credentials.
pub const ADMIN: (&str, &str) = ("admin", "password");
pub const GUEST: (&str, &str) = ("guest", "guest");
pub const CAROL: (&str, &str) = ("carol", "carol");

/// The API prefix.
pub const PREFIX: &str = "/api/v3/onezone";

/// Timeout of every request made by the test clients.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A server running in this process on a temporary data directory.
pub struct TestServer {
    /// Owns the data directory (deleted when dropped).
    pub dir: TempDir,
    /// The configuration it was started with.
    pub config: Config,
    /// What bootstrapping did.
    pub boot: Bootstrap,
    /// The running server (`addr`, `app`).
    pub running: Running,
    /// A client trusting the self-signed certificate (HTTP/2 through ALPN).
    pub client: reqwest::Client,
}

/// A client builder: self-signed certificates accepted, 10 s timeout, no proxy.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(CLIENT_TIMEOUT)
        .no_proxy()
}

/// A default test client.
pub fn client() -> reqwest::Client {
    client_builder().build().expect("build the reqwest client")
}

/// The test configuration for a data directory.
pub fn config_for(dir: &Path, demo: bool) -> Config {
    Config {
        data_dir: dir.into(),
        listen: "127.0.0.1:0".parse().expect("listen address"),
        demo,
        durability: DurabilityMode::Relaxed,
        ..Default::default()
    }
}

/// Starts a server with the demo data set on a new temporary directory.
pub async fn start_demo() -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    start_on(dir, true).await
}

/// Starts a server on `dir` (bootstrapping it with the demo data set when
/// `demo` and the store is empty; an existing store is left as it is).
pub async fn start_on(dir: TempDir, demo: bool) -> TestServer {
    let config = config_for(dir.path(), demo);
    let store = open_store_within(&config, Duration::from_secs(10)).await;
    let boot = ozmint::serve::bootstrap(&store, demo, None)
        .await
        .expect("bootstrap");
    let running = ozmint::serve::start(&config, store, std::future::pending())
        .await
        .expect("start the server");
    TestServer {
        dir,
        config,
        boot,
        running,
        client: client(),
    }
}

impl TestServer {
    /// The shared state.
    pub fn app(&self) -> &Arc<App> {
        &self.running.app
    }

    /// The operations.
    pub fn zone(&self) -> &Arc<Zone> {
        &self.running.app.zone
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        self.running.app.zone.store()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.running.addr.port()
    }

    /// `https://127.0.0.1:{port}`.
    pub fn base(&self) -> String {
        format!("https://127.0.0.1:{}", self.port())
    }

    /// `https://127.0.0.1:{port}/api/v3/onezone{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{PREFIX}{path}", self.base())
    }

    /// URL of the space support token endpoint.
    pub fn space_url(&self, space: &str) -> String {
        self.url(&format!("/spaces/{space}/providers/token"))
    }

    /// URL of the group space creation token endpoint.
    pub fn group_url(&self, group: &str) -> String {
        self.url(&format!("/groups/{group}/spaces/token"))
    }

    /// POSTs to the space endpoint with Basic credentials.
    pub async fn space_token_as(&self, space: &str, who: (&str, &str)) -> reqwest::Response {
        self.client
            .post(self.space_url(space))
            .basic_auth(who.0, Some(who.1))
            .send()
            .await
            .expect("request to the space endpoint")
    }

    /// POSTs to `/user/client_tokens` (a legacy access token) with Basic credentials.
    pub async fn client_token_as(&self, who: (&str, &str)) -> reqwest::Response {
        self.client
            .post(self.url("/user/client_tokens"))
            .basic_auth(who.0, Some(who.1))
            .send()
            .await
            .expect("request to the client tokens endpoint")
    }

    /// GETs the group endpoint with Basic credentials.
    pub async fn group_token_as(&self, group: &str, who: (&str, &str)) -> reqwest::Response {
        self.client
            .get(self.group_url(group))
            .basic_auth(who.0, Some(who.1))
            .send()
            .await
            .expect("request to the group endpoint")
    }

    /// Creates a user (zone privileges as given) through the store.
    pub async fn add_user(&self, name: &str, password: &str, zone: ZonePrivileges) -> Id {
        let password = password.to_owned();
        let hash =
            blocking(move || ozmint::ops::auth::hash_password(&password).expect("hash")).await;
        self.store()
            .create_user(name, hash, zone)
            .await
            .expect("create a user")
    }

    /// Stops the server (waiting for it to drain and flush) and returns the
    /// data directory so that a new server can start on it.
    pub async fn stop(self) -> TempDir {
        let TestServer {
            dir,
            running,
            client,
            ..
        } = self;
        // Idle keep-alive connections would otherwise hold the graceful
        // shutdown for its whole grace period.
        drop(client);
        tokio::time::timeout(Duration::from_secs(30), running.stop())
            .await
            .expect("the server stops within 30 s")
            .expect("the server stops cleanly");
        dir
    }
}

/// Opens the store `config` names, retrying for `within`: sled releases the
/// lock of a stopped store, in this process or in a child that exited, a
/// moment after its last handle is dropped.
pub async fn open_store_within(config: &Config, within: Duration) -> Arc<Store> {
    let deadline = std::time::Instant::now() + within;
    loop {
        match ozmint::serve::open_store(config).await {
            Ok(store) => return store,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("open_store failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("open_store: {e}"),
        }
    }
}

/// Runs blocking store work off the async runtime.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// Parses an id.
pub fn id(s: &str) -> Id {
    s.parse().expect("a well-formed id")
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// Asserts a 200 `{"token": "..."}` JSON answer and returns the token.
pub async fn expect_token(resp: reqwest::Response) -> String {
    let status = resp.status();
    let ctype = content_type(&resp);
    let text = resp.text().await.expect("body");
    assert_eq!(status, 200, "expected 200, body: {text}");
    assert_eq!(ctype.as_deref(), Some("application/json"), "body: {text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON body");
    let obj = v.as_object().expect("a JSON object");
    assert_eq!(obj.len(), 1, "only the token field: {text}");
    let token = obj["token"].as_str().expect("token is a string");
    assert!(!token.is_empty());
    token.to_owned()
}

/// The response's `content-type`, if any.
pub fn content_type(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().expect("ascii content-type").to_owned())
}

/// Asserts an error answer: `status`, `Content-Type: application/json`, and a
/// JSON object body with string fields `error` and `error_description`.
/// Returns the body.
pub async fn assert_error(resp: reqwest::Response, status: u16) -> serde_json::Value {
    let got = resp.status().as_u16();
    let url = resp.url().to_string();
    let ctype = content_type(&resp);
    let text = resp.text().await.expect("error body");
    assert_eq!(got, status, "status of {url}; body: {text}");
    assert_eq!(
        ctype.as_deref(),
        Some("application/json"),
        "content-type of the {status} answer for {url}"
    );
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status} body is not JSON ({e}): {text}"));
    assert!(
        v.get("error")
            .and_then(|e| e.as_str())
            .is_some_and(|e| !e.is_empty()),
        "`error` string in {text}"
    );
    assert!(
        v.get("error_description")
            .and_then(|e| e.as_str())
            .is_some_and(|e| !e.is_empty()),
        "`error_description` string in {text}"
    );
    v
}

/// Like [`assert_error`], and checks the `error` code as well.
pub async fn assert_error_code(
    resp: reqwest::Response,
    status: u16,
    code: &str,
) -> serde_json::Value {
    let v = assert_error(resp, status).await;
    assert_eq!(v["error"], code, "error code in {v}");
    v
}

/// Upper bound of a whole test run under [`bounded`].
pub const TEST_LIMIT: Duration = Duration::from_secs(180);

/// Runs a test body, failing it if it takes longer than [`TEST_LIMIT`].
pub async fn bounded(body: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(TEST_LIMIT, body)
        .await
        .expect("the test finished within its time limit");
}

/// Now, in unix seconds (read independently of the crate's clock).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// A zone with the default configuration on a durable store over `engine`:
/// several of them on one engine act as instances of one zone.
pub async fn zone_on(engine: Arc<dyn Engine>) -> Zone {
    let store = Store::open(engine, DurabilityMode::Durable)
        .await
        .expect("open");
    Zone::new(Arc::new(store), ZoneConfig::default())
        .await
        .expect("zone")
}
