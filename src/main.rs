//! The `ozmint` command: parse flags, load settings, run.
#![forbid(unsafe_code)]

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod admin_cli;
mod log_format;
mod log_writer;

use ozmint::config::{Config, LogFormat};
use ozmint::serve::{self, Bootstrap};
use ozmint::store::ImportMode;

/// Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
const EXIT_RUNTIME: u8 = 1;
const EXIT_CONFIG: u8 = 2;

#[derive(Parser)]
#[command(name = "ozmint", version, about = "An embeddable, Onezone-compatible token authority", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTPS server.
    Serve(ServeArgs),
    /// Load a data set (JSON, the format of data/demo.json) into a stopped store.
    Import {
        /// The data set file.
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write the whole store (without tokens and keys) as a data set to standard output.
    Export {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Administer a running server through its REST API.
    Admin {
        #[command(flatten)]
        conn: admin_cli::Conn,
        #[command(subcommand)]
        cmd: admin_cli::Admin,
    },
    /// Take a consistent copy of a running server's store (same as `admin backup`).
    Backup {
        #[command(flatten)]
        conn: admin_cli::Conn,
    },
    /// Copy a backup (a directory written by `backup`, or a stopped server's
    /// DATA/store) into an empty store (--data NEW, or --store URL).
    Restore {
        /// The backup (or sled store) directory.
        backup: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Check a stopped store for broken invariants; exit 1 if any.
    Check {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Manage the root keys of a stopped store (use `admin keys` while it runs).
    #[command(subcommand)]
    Keys(OfflineKeys),
    /// Make a user an administrator again on a stopped store: every zone
    /// privilege; a missing user is created (password from
    /// OZMINT_ADMIN_PASSWORD, or generated and printed once).
    RestoreAdmin {
        /// The user's login name.
        #[arg(default_value = "admin", allow_hyphen_values = true)]
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum OfflineKeys {
    /// List root keys.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Add a new current root key.
    Rotate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Retire a key: tokens signed with it stop verifying.
    Retire {
        /// Key id.
        id: u32,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Args)]
struct StoreArgs {
    /// Settings file (TOML).
    #[arg(long, env = "OZMINT_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory [default: ozmint-data].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where the store lives: sled:DIR, memory: or
    /// etcd://HOST:PORT[,HOST:PORT...][/PREFIX] [default: sled in DATA/store].
    #[arg(long)]
    store: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Listen address [default: 127.0.0.1:8443].
    #[arg(long)]
    listen: Option<String>,
    /// Load the built-in demo data set into an empty store; listen on loopback only.
    #[arg(long)]
    demo: bool,
    /// Zone name (the `location` of minted tokens) [default: onezone].
    #[arg(long)]
    zone_name: Option<String>,
    /// `durable` (default) or `relaxed`.
    #[arg(long)]
    durability: Option<String>,
    /// PEM certificate chain (with --tls-key).
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// PEM private key (with --tls-cert).
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP (only behind a TLS-terminating proxy).
    #[arg(long)]
    no_tls: bool,
    /// `human` (default) or `json`.
    #[arg(long)]
    log_format: Option<String>,
    /// Log filter, e.g. `info` or `ozmint=debug`.
    #[arg(long)]
    log_level: Option<String>,
}

fn s(v: impl Into<String>) -> toml::Value {
    toml::Value::String(v.into())
}

fn path(p: &std::path::Path) -> toml::Value {
    s(p.to_string_lossy())
}

fn load(
    store: &StoreArgs,
    mut overrides: Vec<(&'static str, toml::Value)>,
) -> Result<Config, ExitCode> {
    if let Some(d) = &store.data {
        overrides.push(("data_dir", path(d)));
    }
    if let Some(u) = &store.store {
        overrides.push(("store.url", s(u)));
    }
    Config::load(store.config.as_deref(), std::env::vars(), &overrides).map_err(|e| {
        eprintln!("ozmint: {e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// Logs to stderr, written in batches by a thread of its own
/// (`log_writer`): a request formats its line and appends it; nothing is
/// dropped. The guard writes what is left when dropped. Colours (the
/// default format) only on a terminal, else the same line without them
/// (`log_format`). Fails if the log thread cannot be started.
fn init_logs(config: &Config) -> std::io::Result<log_writer::Guard> {
    use std::io::IsTerminal as _;
    let (writer, guard) = log_writer::batched(std::io::stderr())?;
    let filter = tracing_subscriber::EnvFilter::new(&config.log.level);
    let terminal = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal)
        .with_writer(writer);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human if terminal => builder.try_init(),
        LogFormat::Human => builder.event_format(log_format::PlainLine).try_init(),
    };
    Ok(guard)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve_cmd(args),
        Command::Import { file, store } => offline(&store, |config, st| async move {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let set = ozmint::store::Dataset::from_json(&text).map_err(|e| e.to_string())?;
            st.import(&set, ozmint::ops::auth::hash_password, ImportMode::Strict)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "imported {} into {}",
                file.display(),
                config.data_dir.display()
            );
            Ok(())
        }),
        Command::Export { store } => offline(&store, |_, st| async move {
            let set = st.export().await.map_err(|e| e.to_string())?;
            out(&set.to_json());
            Ok(())
        }),
        Command::Admin { conn, cmd } => client(admin_cli::run(conn, cmd)),
        Command::Backup { conn } => client(admin_cli::run(conn, admin_cli::Admin::Backup)),
        Command::Restore { backup, store } => restore(&backup, &store),
        Command::Check { store } => offline(&store, |_, st| async move {
            let problems = st.check().await.map_err(|e| e.to_string())?;
            for p in &problems {
                out(p);
            }
            if problems.is_empty() {
                out("store is consistent");
                Ok(())
            } else {
                Err(format!("{} problem(s) found", problems.len()))
            }
        }),
        Command::RestoreAdmin { name, store } => {
            offline(
                &store,
                |_, st| async move { restore_admin(&st, &name).await },
            )
        }
        Command::Keys(k) => {
            let (store, op) = match k {
                OfflineKeys::List { store } => (store, KeyOp::List),
                OfflineKeys::Rotate { store } => (store, KeyOp::Rotate),
                OfflineKeys::Retire { id, store } => (store, KeyOp::Retire(id)),
            };
            offline(&store, |_, st| async move {
                let msg = match op {
                    KeyOp::List => String::new(),
                    KeyOp::Rotate => {
                        let id = st.rotate_key().await.map_err(|e| e.to_string())?;
                        format!("rotated: key {id} is current")
                    }
                    KeyOp::Retire(id) => {
                        st.retire_key(id).await.map_err(|e| e.to_string())?;
                        format!("retired key {id}")
                    }
                };
                if !msg.is_empty() {
                    eprintln!("{msg}");
                }
                let keys = st.root_keys().await.map_err(|e| e.to_string())?;
                out(&serde_json::to_string_pretty(&keys.list()).unwrap_or_default());
                Ok(())
            })
        }
    }
}

/// Gives `name` every zone privilege, creating the user if missing.
async fn restore_admin(st: &ozmint::Store, name: &str) -> Result<(), String> {
    use ozmint::model::ZonePrivileges;
    if let Some((id, _)) = st.user_by_name(name).await.map_err(|e| e.to_string())? {
        st.update_user(&id, |u| {
            u.zone_privileges = ZonePrivileges::all();
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())?;
        eprintln!("{name} ({id}) holds every zone privilege again");
        return Ok(());
    }
    let (password, generated) = match std::env::var("OZMINT_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => {
            use rand::distributions::{Alphanumeric, DistString};
            (Alphanumeric.sample_string(&mut rand::rngs::OsRng, 24), true)
        }
    };
    let pw = password.clone();
    let hash = tokio::task::spawn_blocking(move || ozmint::ops::auth::hash_password(&pw))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let id = st
        .create_user(name, hash, ZonePrivileges::all())
        .await
        .map_err(|e| e.to_string())?;
    if generated {
        // Printed once, to the terminal only: never logged.
        println!("Created administrator `{name}` ({id}), password `{password}` (shown only now).");
    } else {
        println!("Created administrator `{name}` ({id}) with OZMINT_ADMIN_PASSWORD.");
    }
    Ok(())
}

/// An offline root-key operation.
enum KeyOp {
    List,
    Rotate,
    Retire(u32),
}

/// Prints a line on stdout; a closed pipe (`ozmint export | head`) is not an error.
pub fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}").and_then(|_| stdout.flush());
}

/// Runs an async command to its end on a small runtime: the thin blocking
/// wrapper of the offline tools over the async library.
fn client(fut: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ozmint: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    match rt.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ozmint: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// Copies a backup (or the store directory of a stopped server: both are
/// sled stores) into the store `--data`/`--store` name, which must be empty,
/// then checks the copy. With `--store etcd://...` this moves a sled store
/// onto etcd.
fn restore(backup: &std::path::Path, store: &StoreArgs) -> ExitCode {
    let config = match load(store, Vec::new()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    client(async move {
        let opts = ozmint::engine::sled::SledOptions::default();
        if !backup.is_dir() {
            return Err(format!("{} is not a store directory", backup.display()));
        }
        let src = ozmint::Store::open_sled(backup, &opts, ozmint::DurabilityMode::Durable)
            .await
            .map_err(|e| format!("cannot open backup {}: {e}", backup.display()))?;
        let (engine, place) = serve::open_engine(&config)
            .await
            .map_err(|e| e.to_string())?;
        let any = engine.scan(&[], None, 1).await.map_err(|e| e.to_string())?;
        if !any.entries.is_empty() {
            return Err(format!(
                "{place} already holds a store; restore into an empty one"
            ));
        }
        let copied = src
            .copy_into(engine.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        drop(src);
        let restored = ozmint::Store::open(engine, config.durability)
            .await
            .map_err(|e| e.to_string())?;
        let problems = restored.check().await.map_err(|e| e.to_string())?;
        if !problems.is_empty() {
            return Err(format!(
                "restored store has {} problem(s): {}",
                problems.len(),
                problems.join("; ")
            ));
        }
        eprintln!(
            "restored {} ({copied} entries) into {place}",
            backup.display()
        );
        Ok(())
    })
}

/// Runs `f` on the store of a stopped server, then makes it durable.
fn offline<F, Fut>(store: &StoreArgs, f: F) -> ExitCode
where
    F: FnOnce(Config, std::sync::Arc<ozmint::Store>) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let config = match load(store, Vec::new()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    client(async move {
        let st = serve::open_store(&config)
            .await
            .map_err(|e| e.to_string())?;
        f(config, st.clone()).await?;
        st.sync().await.map_err(|e| e.to_string())
    })
}

fn serve_cmd(args: ServeArgs) -> ExitCode {
    let mut o: Vec<(&'static str, toml::Value)> = Vec::new();
    if let Some(v) = &args.listen {
        o.push(("listen", s(v)));
    }
    if args.demo {
        o.push(("demo", toml::Value::Boolean(true)));
    }
    if let Some(v) = &args.zone_name {
        o.push(("zone_name", s(v)));
    }
    if let Some(v) = &args.durability {
        o.push(("durability", s(v)));
    }
    if let Some(v) = &args.tls_cert {
        o.push(("tls.cert", path(v)));
    }
    if let Some(v) = &args.tls_key {
        o.push(("tls.key", path(v)));
    }
    if args.no_tls {
        o.push(("tls.enabled", toml::Value::Boolean(false)));
    }
    if let Some(v) = &args.log_format {
        o.push(("log.format", s(v)));
    }
    if let Some(v) = &args.log_level {
        o.push(("log.level", s(v)));
    }
    let config = match load(&args.store, o) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let _logs = match init_logs(&config) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("ozmint: cannot start the log thread: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ozmint: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("ozmint: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

async fn run(config: Config) -> Result<(), String> {
    let store = serve::open_store(&config)
        .await
        .map_err(|e| e.to_string())?;
    let admin_password = std::env::var("OZMINT_ADMIN_PASSWORD").ok();
    let boot = serve::bootstrap(&store, config.demo, admin_password)
        .await
        .map_err(|e| e.to_string())?;
    match boot {
        Bootstrap::Admin(Some(password)) => {
            // Printed once, to the terminal only: never logged.
            println!("Created the first administrator: user `admin`, password `{password}` (shown only now).");
        }
        Bootstrap::Admin(None) => {
            println!("Created the first administrator `admin` with OZMINT_ADMIN_PASSWORD.")
        }
        Bootstrap::Demo => {
            println!("Loaded the demo data set (users admin/password, guest/guest, carol/carol).")
        }
        Bootstrap::Existing => {}
    }
    let running = serve::start(&config, store, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    let scheme = if config.tls.enabled { "https" } else { "http" };
    if config.demo {
        println!("Demo mode: listening on loopback only.");
    }
    println!("ozmint listening on {scheme}://{}", running.addr);
    tracing::info!(addr = %running.addr, zone = %config.zone_name, durability = ?config.durability, "listening");
    running.finished().await.map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM or SIGINT. The handlers are registered when this is called, not
/// when the future is first polled, so a signal that follows the listening
/// line at once is a clean stop rather than the default action (death by
/// signal; found by a CI run that sent SIGTERM right after that line).
fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        match handlers {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        tracing::info!("shutdown requested");
    }
}
