//! Settings: defaults, then a TOML file, then `OZMINT_*` environment variables,
//! then command-line flags. Unknown keys are errors that name the key.
//!
//! Environment variables map to keys by lower-casing and splitting on `__`:
//! `OZMINT_LISTEN` is `listen`, `OZMINT_LIMITS__MAX_BODY_BYTES` is
//! `limits.max_body_bytes`. Values are read as TOML (`false`, `1000`) and fall
//! back to plain strings. `OZMINT_ADMIN_PASSWORD` and the admin client's
//! variables (`OZMINT_URL`, `OZMINT_USER`, `OZMINT_PASSWORD`, `OZMINT_TOKEN`,
//! `OZMINT_CONFIG`) are not settings.
//!
//! Every key, its default and its meaning: `ozmint.example.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::DurabilityMode;
use crate::token::Lifetimes;

/// Environment variables with the `OZMINT_` prefix that are not settings.
pub const NON_SETTING_VARS: &[&str] = &[
    "OZMINT_ADMIN_PASSWORD",
    "OZMINT_CONFIG",
    "OZMINT_URL",
    "OZMINT_USER",
    "OZMINT_PASSWORD",
    "OZMINT_TOKEN",
    "OZMINT_INSECURE",
    "OZMINT_CRASH_CYCLES",
    "OZMINT_ETCD_PASSWORD",
    "OZMINT_TEST_BIN",
];

/// All settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the API listener.
    pub listen: SocketAddr,
    /// Where the store, TLS material and backups live.
    pub data_dir: PathBuf,
    /// The zone name: the `location` packet of minted tokens.
    pub zone_name: String,
    /// Load the built-in demo data set into an empty store; listen on loopback only.
    pub demo: bool,
    /// When writes reach the disk: `durable` (default) or `relaxed`.
    pub durability: DurabilityMode,
    /// Where the store lives.
    pub store: StoreConfig,
    /// TLS settings.
    pub tls: TlsConfig,
    /// Token lifetimes in seconds.
    pub tokens: Lifetimes,
    /// Cache sizes.
    pub cache: CacheConfig,
    /// Limits on connections, requests and logins.
    pub limits: LimitsConfig,
    /// Logging.
    pub log: LogConfig,
    /// Metrics endpoint.
    pub metrics: MetricsConfig,
    /// GeoIP databases for the `asn`, `geo.country` and `geo.region` caveats.
    pub geoip: GeoIpConfig,
    /// Providers: when one counts as online.
    pub providers: ProvidersConfig,
}

/// Providers' `online` flag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvidersConfig {
    /// A provider is online while its last authenticated request is at most
    /// this many seconds old.
    pub online_window_secs: u64,
}

impl Default for ProvidersConfig {
    fn default() -> Self {
        ProvidersConfig {
            online_window_secs: crate::ops::DEFAULT_ONLINE_WINDOW,
        }
    }
}

/// GeoIP databases (MaxMind format). Without one, the caveats that need it
/// fail verification with a reason that says so.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeoIpConfig {
    /// A GeoLite2-ASN style database.
    pub asn_db: Option<PathBuf>,
    /// A GeoLite2-Country style database.
    pub country_db: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            data_dir: PathBuf::from("ozmint-data"),
            zone_name: "onezone".into(),
            demo: false,
            durability: DurabilityMode::Durable,
            store: StoreConfig::default(),
            tls: TlsConfig::default(),
            tokens: Lifetimes::default(),
            cache: CacheConfig::default(),
            limits: LimitsConfig::default(),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
            geoip: GeoIpConfig::default(),
            providers: ProvidersConfig::default(),
        }
    }
}

/// Where the store lives.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sled:DIR`, `memory:` or `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`.
    /// Unset: sled in `data_dir/store`.
    pub url: Option<String>,
    /// Options of the etcd engine.
    pub etcd: EtcdConfig,
}

/// Options of the etcd engine (with `store.url = "etcd://..."`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EtcdConfig {
    /// Time to connect to an endpoint, milliseconds.
    pub dial_timeout_ms: u64,
    /// Bound on every request to etcd, milliseconds: a write that cannot
    /// commit within it (no quorum) answers 503.
    pub request_timeout_ms: u64,
    /// PEM CA certificate to verify etcd's servers (enables TLS).
    pub ca: Option<PathBuf>,
    /// PEM client certificate (with `key`) for mutual TLS.
    pub cert: Option<PathBuf>,
    /// PEM client key (with `cert`).
    pub key: Option<PathBuf>,
    /// Server name to verify in etcd's certificates (default: the endpoint's host).
    pub tls_domain: Option<String>,
    /// etcd user for authentication (the password comes from
    /// `password_file` or the `OZMINT_ETCD_PASSWORD` variable, never from here).
    pub user: Option<String>,
    /// File holding the etcd user's password (first line).
    pub password_file: Option<PathBuf>,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig {
            dial_timeout_ms: 2_000,
            request_timeout_ms: 5_000,
            ca: None,
            cert: None,
            key: None,
            tls_domain: None,
            user: None,
            password_file: None,
        }
    }
}

/// A parsed `store.url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// A sled database in this directory.
    Sled(PathBuf),
    /// A volatile in-memory store (lost when the process ends).
    Memory,
    /// An etcd cluster: the whole `etcd://` URL.
    Etcd(String),
}

impl Config {
    /// Where the store lives, from `store.url` (default: sled in `data_dir/store`).
    pub fn store_url(&self) -> Result<StoreUrl, ConfigError> {
        let Some(url) = self.store.url.as_deref() else {
            return Ok(StoreUrl::Sled(self.data_dir.join("store")));
        };
        let bad = |why: &str| ConfigError(format!("store.url: {why}"));
        if let Some(dir) = url.strip_prefix("sled:") {
            if dir.is_empty() {
                return Err(bad(
                    "sled: needs a directory, e.g. sled:/var/lib/ozmint/store",
                ));
            }
            Ok(StoreUrl::Sled(PathBuf::from(dir)))
        } else if url == "memory:" {
            Ok(StoreUrl::Memory)
        } else if url.starts_with("etcd://") {
            if cfg!(feature = "etcd") {
                Ok(StoreUrl::Etcd(url.to_owned()))
            } else {
                Err(bad(
                    "this build has no etcd engine; build with `cargo build --release --features etcd`",
                ))
            }
        } else {
            Err(bad(
                "expected sled:DIR, memory: or etcd://HOST:PORT[,HOST:PORT...][/PREFIX]",
            ))
        }
    }
}

/// TLS settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Serve HTTPS (default). `false` serves plain HTTP, for use behind a TLS proxy.
    pub enabled: bool,
    /// PEM certificate chain; with `key`. Unset: a self-signed one in `data_dir/tls`.
    pub cert: Option<PathBuf>,
    /// PEM private key; with `cert`.
    pub key: Option<PathBuf>,
    /// Extra host names for the self-signed certificate.
    pub hostnames: Vec<String>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            enabled: true,
            cert: None,
            key: None,
            hostnames: Vec::new(),
        }
    }
}

/// Cache sizes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// sled page cache in bytes (bounds resident memory of the store; sled
    /// counts pages as stored, and holds about three times this in memory).
    pub store_bytes: u64,
    /// How long verified Basic credentials are remembered, seconds (0: never).
    pub credentials_ttl_secs: u64,
    /// How many verified credentials are remembered.
    pub credentials_entries: usize,
    /// How many verified tokens are remembered, to spare their parse and
    /// signature check when they come again (0: none).
    pub verified_tokens: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            // 32 MiB: with a million token records and a minute of
            // minting the server stays near 210 MiB resident (64 MiB: 300 MiB)
            // at the same mint rate (benches/external.rs, README).
            store_bytes: 32 * 1024 * 1024,
            credentials_ttl_secs: 300,
            credentials_entries: 10_000,
            verified_tokens: crate::ops::DEFAULT_VERIFIED_TOKENS,
        }
    }
}

/// Limits. Times are in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Concurrent connections.
    pub max_connections: usize,
    /// Request body size.
    pub max_body_bytes: usize,
    /// HTTP/1 header block size.
    pub max_header_bytes: usize,
    /// Header count.
    pub max_headers: usize,
    /// Nesting depth of JSON bodies.
    pub max_json_depth: usize,
    /// Time to receive a request's headers.
    pub header_timeout_ms: u64,
    /// Time for the TLS handshake.
    pub tls_handshake_timeout_ms: u64,
    /// Time to answer a request.
    pub request_timeout_ms: u64,
    /// A connection without requests is closed after this.
    pub idle_timeout_ms: u64,
    /// Concurrent HTTP/2 streams per connection.
    pub h2_max_streams: u32,
    /// Grace period for in-flight requests at shutdown.
    pub shutdown_grace_ms: u64,
    /// Failed logins per user or address before throttling.
    pub login_failures: u32,
    /// Window in which failed logins are counted, and lockout duration, seconds.
    pub login_window_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 1024,
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_json_depth: 16,
            header_timeout_ms: 10_000,
            tls_handshake_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            h2_max_streams: 128,
            shutdown_grace_ms: 10_000,
            login_failures: 10,
            login_window_secs: 60,
        }
    }
}

impl LimitsConfig {
    /// The server's connection limits.
    pub fn server_limits(&self) -> crate::http::Limits {
        crate::http::Limits {
            max_connections: self.max_connections,
            max_header_bytes: self.max_header_bytes,
            max_headers: self.max_headers,
            header_read_timeout: Duration::from_millis(self.header_timeout_ms),
            tls_handshake_timeout: Duration::from_millis(self.tls_handshake_timeout_ms),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            h2_max_concurrent_streams: self.h2_max_streams,
            shutdown_grace: Duration::from_millis(self.shutdown_grace_ms),
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Logging.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `ozmint=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

/// Metrics endpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics` (plain HTTP) on this address as well as on the API listener.
    pub listen: Option<SocketAddr>,
}

/// A setting could not be read or is invalid.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Builds the settings: defaults, then `file`, then the `OZMINT_*` variables
    /// of `env`, then `overrides` (dotted key, TOML value) from flags.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(&str, toml::Value)],
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| ConfigError(format!("cannot read {}: {e}", p.display())))?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError(format!("{}: {e}", p.display())))?
            }
            None => toml::Table::new(),
        };
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("OZMINT_") && !NON_SETTING_VARS.contains(&k.as_str()))
            .collect();
        vars.sort();
        for (k, v) in vars {
            let key = k["OZMINT_".len()..].to_ascii_lowercase().replace("__", ".");
            set(&mut table, &key, env_value(&v), &k)?;
        }
        for (key, v) in overrides {
            set(
                &mut table,
                key,
                v.clone(),
                &format!("--{}", key.replace(['.', '_'], "-")),
            )?;
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError(e.to_string().trim().replace('\n', " ")))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError(format!("{key}: {why}")));
        self.store_url()?;
        let e = &self.store.etcd;
        if e.cert.is_some() != e.key.is_some() {
            return bad(
                "store.etcd.cert",
                "store.etcd.cert and store.etcd.key go together",
            );
        }
        if e.request_timeout_ms == 0 || e.dial_timeout_ms == 0 {
            return bad("store.etcd.request_timeout_ms", "timeouts must be positive");
        }
        if self.zone_name.is_empty()
            || self.zone_name.len() > 255
            || self
                .zone_name
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return bad(
                "zone_name",
                "must be 1 to 255 characters without spaces or control characters",
            );
        }
        for (k, v) in [
            ("tokens.space_support", self.tokens.space_support),
            ("tokens.space_create", self.tokens.space_create),
            ("tokens.access", self.tokens.access),
            ("tokens.provider", self.tokens.provider),
            ("tokens.max_temporary_ttl", self.tokens.max_temporary_ttl),
            (
                "providers.online_window_secs",
                self.providers.online_window_secs,
            ),
        ] {
            if v == 0 {
                return bad(k, "must be a positive number of seconds");
            }
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return bad("tls.cert", "tls.cert and tls.key go together");
        }
        let l = &self.limits;
        for (k, v) in [
            ("limits.max_connections", l.max_connections as u64),
            ("limits.max_body_bytes", l.max_body_bytes as u64),
            ("limits.max_headers", l.max_headers as u64),
            ("limits.max_json_depth", l.max_json_depth as u64),
            ("limits.header_timeout_ms", l.header_timeout_ms),
            (
                "limits.tls_handshake_timeout_ms",
                l.tls_handshake_timeout_ms,
            ),
            ("limits.request_timeout_ms", l.request_timeout_ms),
            ("limits.idle_timeout_ms", l.idle_timeout_ms),
            ("limits.h2_max_streams", u64::from(l.h2_max_streams)),
            ("limits.login_failures", u64::from(l.login_failures)),
            ("limits.login_window_secs", l.login_window_secs),
        ] {
            if v == 0 {
                return bad(k, "must be positive");
            }
        }
        if l.max_header_bytes < 8192 {
            return bad("limits.max_header_bytes", "must be at least 8192");
        }
        if self.cache.store_bytes < 1024 * 1024 {
            return bad("cache.store_bytes", "must be at least 1 MiB");
        }
        if self
            .log
            .level
            .parse::<tracing_subscriber::EnvFilter>()
            .is_err()
        {
            return bad(
                "log.level",
                "is not a valid filter (try `info` or `ozmint=debug`)",
            );
        }
        Ok(())
    }
}

fn env_value(v: &str) -> toml::Value {
    format!("v = {v}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(v.to_owned()))
}

fn set(
    table: &mut toml::Table,
    dotted: &str,
    value: toml::Value,
    source: &str,
) -> Result<(), ConfigError> {
    let mut parts = dotted.split('.').peekable();
    let mut t = table;
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            t.insert(p.to_owned(), value);
            return Ok(());
        }
        let entry = t
            .entry(p.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry
            .as_table_mut()
            .ok_or_else(|| ConfigError(format!("{source}: `{p}` is not a section")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "zone_name = \"file\"\n[limits]\nmax_body_bytes = 1000\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&f),
            env(&[
                ("OZMINT_LIMITS__MAX_BODY_BYTES", "2000"),
                ("OZMINT_DURABILITY", "relaxed"),
                ("OZMINT_ADMIN_PASSWORD", "x"),
            ]),
            &[("zone_name", toml::Value::String("flag".into()))],
        )
        .unwrap();
        assert_eq!(c.zone_name, "flag");
        assert_eq!(c.limits.max_body_bytes, 2000);
        assert_eq!(c.durability, DurabilityMode::Relaxed);
        assert_eq!(c.limits.max_headers, LimitsConfig::default().max_headers);
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::load(None, env(&[("OZMINT_LIMITS__NOPE", "1")]), &[]).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        let e = Config::load(None, env(&[("OZMINT_LISTEN", "not an address")]), &[]).unwrap_err();
        assert!(
            e.to_string().contains("listen") || e.to_string().contains("address"),
            "{e}"
        );
        let e = Config::load(None, env(&[("OZMINT_DURABILITY", "sometimes")]), &[]).unwrap_err();
        assert!(e.to_string().contains("durability"), "{e}");
        let e = Config::load(None, env(&[("OZMINT_TOKENS__ACCESS", "0")]), &[]).unwrap_err();
        assert!(e.to_string().contains("tokens.access"), "{e}");
    }

    #[test]
    fn the_example_file_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ozmint.example.toml");
        let c = Config::load(Some(&path), Vec::new(), &[]).unwrap();
        assert_eq!(c, Config::default());
    }
}
