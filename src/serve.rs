//! Starting and stopping a server: open the store, bootstrap the first admin
//! or the demo data set, load TLS, bind, serve until shutdown, flush.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, StoreUrl};
use crate::engine::sled::{SledEngine, SledOptions};
use crate::engine::Engine;
use crate::http::{self, App};
use crate::metrics::Metrics;
use crate::model::ZonePrivileges;
use crate::ops::auth::hash_password;
use crate::ops::{AuthConfig, Zone, ZoneConfig};
use crate::store::{Dataset, ImportMode, Store};

/// The demo data set compiled into the binary (`data/demo.json`).
pub const DEMO_DATASET: &str = include_str!("../data/demo.json");

/// Name of the first administrator created in a new store.
pub const ADMIN_USER: &str = "admin";

/// Why the server could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

fn fail(what: &str) -> impl FnOnce(crate::Error) -> StartError + '_ {
    move |e| StartError(format!("{what}: {e}"))
}

/// The GeoIP databases the configuration names (none: `None`).
fn geo_of(config: &Config) -> Result<Option<Arc<crate::geo::MaxMind>>, crate::Error> {
    let g = &config.geoip;
    if g.asn_db.is_none() && g.country_db.is_none() {
        return Ok(None);
    }
    crate::geo::MaxMind::open(g.asn_db.as_deref(), g.country_db.as_deref())
        .map(|m| Some(Arc::new(m)))
        .map_err(|e| crate::Error::Invalid(e.to_string()))
}

/// Creates `dir` (and parents) with owner-only permissions; an existing
/// directory open to group or others is tightened to 0700 (it holds keys).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

/// Opens the store `config` names (`store.url`; by default sled in
/// `data_dir/store`), creating the data directory owner-only.
pub async fn open_store(config: &Config) -> Result<Arc<Store>, StartError> {
    let (engine, place) = open_engine(config).await?;
    Store::open(engine, config.durability)
        .await
        .map(Arc::new)
        .map_err(|e| StartError(format!("cannot open the store in {place}: {e}")))
}

/// Opens the engine `config` names (a sled store of an older layout is
/// migrated first) and says where it is.
pub async fn open_engine(config: &Config) -> Result<(Arc<dyn Engine>, String), StartError> {
    create_private_dir(&config.data_dir).map_err(|e| {
        StartError(format!(
            "cannot create data directory {}: {e}",
            config.data_dir.display()
        ))
    })?;
    let url = config.store_url().map_err(|e| StartError(e.to_string()))?;
    let place = match &url {
        StoreUrl::Sled(dir) => dir.display().to_string(),
        StoreUrl::Memory => "memory".into(),
        StoreUrl::Etcd(u) => u.clone(),
    };
    let failed = |e: crate::Error| StartError(format!("cannot open the store in {place}: {e}"));
    let engine: Arc<dyn Engine> = match &url {
        StoreUrl::Sled(dir) => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_private_dir(parent)
                    .map_err(|e| StartError(format!("cannot create {}: {e}", parent.display())))?;
            }
            let opts = SledOptions {
                cache_bytes: config.cache.store_bytes,
                flush_every_ms: 500,
                reserve: true,
            };
            let engine = SledEngine::open_waiting(dir, &opts, crate::store::OPEN_LOCK_WAIT)
                .await
                .map_err(|e| failed(e.into()))?;
            crate::store::migrate::from_sled_trees(&engine)
                .await
                .map_err(failed)?;
            Arc::new(engine)
        }
        StoreUrl::Memory => Arc::new(crate::engine::memory::MemoryEngine::new()),
        StoreUrl::Etcd(url) => open_etcd(config, url).await.map_err(failed)?,
    };
    Ok((engine, place))
}

/// Connects to the etcd cluster of `url` with the `store.etcd` settings.
#[cfg(feature = "etcd")]
async fn open_etcd(config: &Config, url: &str) -> crate::Result<Arc<dyn Engine>> {
    use crate::engine::etcd::{EtcdEngine, EtcdOptions, EtcdTls};
    let e = &config.store.etcd;
    let mut opts = EtcdOptions::from_url(url).map_err(crate::Error::Invalid)?;
    opts.dial_timeout = Duration::from_millis(e.dial_timeout_ms);
    opts.request_timeout = Duration::from_millis(e.request_timeout_ms);
    opts.tls = e.ca.clone().map(|ca| EtcdTls {
        ca,
        cert: e.cert.clone(),
        key: e.key.clone(),
        domain: e.tls_domain.clone(),
    });
    if let Some(user) = &e.user {
        let password = match (&e.password_file, std::env::var("OZMINT_ETCD_PASSWORD")) {
            (Some(file), _) => std::fs::read_to_string(file)
                .map_err(|err| {
                    crate::Error::Invalid(format!(
                        "store.etcd.password_file {}: {err}",
                        file.display()
                    ))
                })?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            (None, Ok(p)) => p,
            (None, Err(_)) => {
                return Err(crate::Error::Invalid(
                    "store.etcd.user needs store.etcd.password_file or OZMINT_ETCD_PASSWORD".into(),
                ))
            }
        };
        opts.user = Some((user.clone(), password));
    }
    Ok(Arc::new(EtcdEngine::connect(opts).await?))
}

#[cfg(not(feature = "etcd"))]
async fn open_etcd(_: &Config, _: &str) -> crate::Result<Arc<dyn Engine>> {
    Err(crate::Error::Invalid(
        "this build has no etcd engine (build with --features etcd)".into(),
    ))
}

/// What bootstrapping did to a store.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// The store already had users.
    Existing,
    /// The demo data set was loaded.
    Demo,
    /// The first admin was created; `Some(password)` when it was generated.
    Admin(Option<String>),
}

/// Fills a store that has no users: the demo data set, or the first admin
/// with `admin_password` (generated when `None`). Several front ends doing
/// this at once on one empty store end with one copy: the demo load merges
/// (what exists stays), and only one of them creates the admin.
pub async fn bootstrap(
    store: &Store,
    demo: bool,
    admin_password: Option<String>,
) -> Result<Bootstrap, StartError> {
    if !store
        .users(None, 1)
        .await
        .map_err(fail("reading users"))?
        .0
        .is_empty()
    {
        return Ok(Bootstrap::Existing);
    }
    if demo {
        let set = Dataset::from_json(DEMO_DATASET).map_err(fail("demo data set"))?;
        // Hashing the demo passwords takes a moment of argon2 each: off the runtime.
        let hashed = tokio::task::spawn_blocking(move || set.with_hashed_passwords(hash_password))
            .await
            .map_err(|e| StartError(format!("hashing demo passwords: {e}")))?
            .map_err(fail("demo data set"))?;
        store
            .import(&hashed, |_| unreachable_hash(), ImportMode::Merge)
            .await
            .map_err(fail("loading the demo data set"))?;
        return Ok(Bootstrap::Demo);
    }
    let (password, generated) = match admin_password {
        Some(p) if !p.is_empty() => (p, false),
        _ => {
            use rand::distributions::{Alphanumeric, DistString};
            (Alphanumeric.sample_string(&mut rand::rngs::OsRng, 24), true)
        }
    };
    let pw = password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| StartError(format!("hashing the admin password: {e}")))?
        .map_err(fail("hashing the admin password"))?;
    match store
        .create_user(ADMIN_USER, hash, ZonePrivileges::all())
        .await
    {
        Ok(_) => Ok(Bootstrap::Admin(generated.then_some(password))),
        // Another front end created it first.
        Err(crate::Error::AlreadyExists(_)) => Ok(Bootstrap::Existing),
        Err(e) => Err(fail("creating the admin user")(e)),
    }
}

/// Passwords of a data set with hashes only are never hashed again.
fn unreachable_hash() -> crate::Result<String> {
    Err(crate::Error::Invalid("unexpected plain password".into()))
}

/// A running server.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The shared state (store, minter, authenticator).
    pub app: Arc<App>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting, drains in-flight requests (within the grace period),
    /// flushes the store and returns once everything is closed.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        self.finished().await
    }

    /// Waits until the server stops by itself (after its shutdown future resolved).
    pub async fn finished(self) -> std::io::Result<()> {
        let res = self
            .task
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.app
            .zone
            .store()
            .sync()
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        res
    }
}

/// Starts a server for `config` on an already opened store. It runs until
/// [`Running::stop`] or until `shutdown` resolves.
pub async fn start(
    config: &Config,
    store: Arc<Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    let zone = Zone::new(
        store.clone(),
        ZoneConfig {
            location: config.zone_name.clone(),
            lifetimes: config.tokens.clone(),
            auth: AuthConfig {
                cache_ttl: Duration::from_secs(config.cache.credentials_ttl_secs),
                cache_entries: config.cache.credentials_entries,
                max_failures: config.limits.login_failures,
                window: Duration::from_secs(config.limits.login_window_secs),
                ..AuthConfig::default()
            },
            max_temporary_token_ttl: config.tokens.max_temporary_ttl,
            online_window: config.providers.online_window_secs,
            verified_tokens: config.cache.verified_tokens,
            geo: geo_of(config).map_err(fail("opening the GeoIP databases"))?,
        },
    )
    .await
    .map_err(fail("loading root keys"))?;
    let metrics = Arc::new(Metrics::new());
    {
        let m = metrics.clone();
        store.observe_commits(Box::new(move |d| m.flush.observe(d.as_secs_f64())));
    }
    let app = Arc::new(App {
        zone: Arc::new(zone),
        max_body: config.limits.max_body_bytes,
        max_json_depth: config.limits.max_json_depth,
        metrics,
        ready: AtomicBool::new(false),
        backup_dir: config.data_dir.join("backups"),
    });
    let tls = if config.tls.enabled {
        Some(
            http::tls::load_or_generate(
                config.tls.cert.as_deref(),
                config.tls.key.as_deref(),
                &config.data_dir,
                &config.tls.hostnames,
            )
            .map_err(|e| StartError(format!("TLS: {e}")))?,
        )
    } else {
        None
    };
    let mut listen = config.listen;
    if config.demo && !listen.ip().is_loopback() {
        listen.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| StartError(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError(format!("cannot read the listening address: {e}")))?;
    let metrics_listener = match config.metrics.listen {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .map_err(|e| StartError(format!("cannot listen on {a} for metrics: {e}")))?,
        ),
        None => None,
    };
    let (tx, mut rx) = watch::channel(false);
    let stopping = {
        let app = app.clone();
        let tx = tx.clone();
        async move {
            tokio::select! {
                _ = shutdown => {}
                _ = rx.wait_for(|v| *v) => {}
            }
            app.ready.store(false, Ordering::Release);
            let _ = tx.send(true);
        }
    };
    tokio::spawn(stopping);
    let stop_signal = |tx: &watch::Sender<bool>| {
        let mut rx = tx.subscribe();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    };
    tokio::spawn(purge_expired(store, stop_signal(&tx)));
    // The separate metrics listener outlives the API listener's drain, so
    // that probes see `/readyz` answer 503 while in-flight requests finish.
    let (drained_tx, drained_rx) = watch::channel(false);
    if let Some(listener) = metrics_listener {
        let app = app.clone();
        let mut drained = drained_rx;
        tokio::spawn(http::server::serve(
            listener,
            None,
            config.limits.server_limits(),
            move |req, _conn| {
                let app = app.clone();
                async move { http::metrics_only(&app, &req).await }
            },
            async move {
                let _ = drained.wait_for(|v| *v).await;
            },
        ));
    }
    let handler_app = app.clone();
    let api = http::server::serve(
        listener,
        tls,
        config.limits.server_limits(),
        move |req, conn| http::handle(handler_app.clone(), req, conn),
        stop_signal(&tx),
    );
    let task = tokio::spawn(async move {
        let result = api.await;
        let _ = drained_tx.send(true);
        result
    });
    app.ready.store(true, Ordering::Release);
    Ok(Running {
        addr,
        app,
        shutdown: tx,
        task,
    })
}

/// How often expired token records are purged.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// Deletes expired token records in small guarded commits, so requests
/// never wait behind a large purge.
async fn purge_expired(store: Arc<Store>, stop: impl Future<Output = ()>) {
    const CHUNK: usize = 100;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(PURGE_INTERVAL) => {}
        }
        let mut purged = 0;
        loop {
            match store.purge_expired(crate::model::now(), CHUNK).await {
                Ok(n) => {
                    purged += n;
                    if n < CHUNK {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "purging expired tokens failed");
                    break;
                }
            }
        }
        if purged > 0 {
            tracing::debug!(purged, "expired token records purged");
        }
    }
}
