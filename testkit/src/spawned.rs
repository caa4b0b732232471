//! The real `ozmint` binary as a child process: a command builder with a
//! clean `OZMINT_*` environment, a bounded runner for short commands, and a
//! running `ozmint serve` whose stdout is read line by line on a thread and
//! whose stderr (the logs) goes to a file in its working directory.
//!
//! Every wait is bounded by an explicit deadline, the server must listen on
//! loopback, and a server still running when dropped is killed.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::server::PREFIX;

/// The `ozmint` binary under test: `OZMINT_TEST_BIN` if set, else the one
/// cargo built beside the running test or bench (`target/<profile>/ozmint`,
/// one level above the `deps/` holding the test binary).
pub fn bin() -> PathBuf {
    if let Some(p) = std::env::var_os("OZMINT_TEST_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe.parent().expect("the test binary's directory");
    let dir = if dir.ends_with("deps") {
        dir.parent().expect("target/<profile>")
    } else {
        dir
    };
    let bin = dir.join("ozmint");
    assert!(
        bin.exists(),
        "the ozmint binary is not at {} (build it, or set OZMINT_TEST_BIN)",
        bin.display()
    );
    bin
}
/// Upper bound for a server to print its listening line.
pub const START_DEADLINE: Duration = Duration::from_secs(60);
/// Upper bound for a server to exit after a signal (the grace period is 10 s).
pub const EXIT_DEADLINE: Duration = Duration::from_secs(30);
/// Upper bound for a short command (`--help`, a configuration error, `check`).
pub const RUN_DEADLINE: Duration = Duration::from_secs(30);
/// Upper bound for stdout to reach its end once the server has exited.
const STDOUT_END_DEADLINE: Duration = Duration::from_secs(5);
/// How often a child is polled while waiting for it.
const POLL: Duration = Duration::from_millis(20);

/// The binary with a clean `OZMINT_*` environment, run in `cwd`.
pub fn ozmint(cwd: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.current_dir(cwd);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OZMINT_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Runs a short command to completion ([`RUN_DEADLINE`] at most; killed
/// after that) and collects its output.
pub fn run(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ozmint");
    // Drain the pipes on threads so a large output cannot block the child.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).ok();
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).ok();
        v
    });
    let deadline = Instant::now() + RUN_DEADLINE;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ozmint did not finish within {RUN_DEADLINE:?}");
        }
        std::thread::sleep(POLL);
    };
    Output {
        status,
        stdout: out_t.join().expect("stdout thread"),
        stderr: err_t.join().expect("stderr thread"),
    }
}

/// Output bytes as text (lossy).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Removes ANSI escape sequences (the human log format colours its fields).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// A running `ozmint serve`: killed on drop unless it already exited.
pub struct Server {
    child: Child,
    lines: Receiver<String>,
    /// The stdout lines read so far: up to the listening line after
    /// [`Server::wait_listening`], all of them after [`Server::wait_exit`].
    pub stdout: Vec<String>,
    stderr_path: PathBuf,
    addr: Option<SocketAddr>,
    scheme: &'static str,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Server {
    /// Spawns `ozmint serve ARGS` in `cwd` with `env` added to a clean
    /// `OZMINT_*` environment; stdout is read line by line on a thread,
    /// stderr (the logs) goes to a new file in `cwd`.
    pub fn spawn(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        static SPAWNED: AtomicUsize = AtomicUsize::new(0);
        let n = SPAWNED.fetch_add(1, Ordering::Relaxed);
        let stderr_path = cwd.join(format!("stderr-{}-{n}.log", std::process::id()));
        let stderr = File::create(&stderr_path).expect("stderr file");
        let mut cmd = ozmint(cwd);
        cmd.arg("serve")
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd.spawn().expect("spawn ozmint serve");
        let out = child.stdout.take().expect("stdout pipe");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            lines,
            stdout: Vec::new(),
            stderr_path,
            addr: None,
            scheme: "https",
        }
    }

    /// [`Server::spawn`], then [`Server::wait_listening`].
    pub fn start(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut server = Server::spawn(cwd, args, env);
        server.wait_listening();
        server
    }

    /// `ozmint serve --demo --listen 127.0.0.1:0 --data d EXTRA...` in
    /// `cwd`, listening.
    pub fn demo(cwd: &Path, extra: &[&str]) -> Server {
        let mut args = vec!["--demo", "--listen", "127.0.0.1:0", "--data", "d"];
        args.extend_from_slice(extra);
        Server::start(cwd, &args, &[])
    }

    /// Reads stdout until the line `ozmint listening on https://ADDR` (or
    /// `http://`), [`START_DEADLINE`] at most; asserts that the address is a
    /// loopback one and returns it.
    pub fn wait_listening(&mut self) -> SocketAddr {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    for scheme in ["https", "http"] {
                        let marker = format!("ozmint listening on {scheme}://");
                        if let Some(rest) = line.strip_prefix(&marker) {
                            let addr: SocketAddr = rest
                                .trim()
                                .parse()
                                .unwrap_or_else(|e| panic!("address in {line:?}: {e}"));
                            assert!(addr.ip().is_loopback(), "{addr}");
                            self.addr = Some(addr);
                            self.scheme = scheme;
                            return addr;
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "no listening line within {START_DEADLINE:?}; stdout {:?}; stderr {}",
                    self.stdout,
                    self.stderr()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!(
                        "ozmint exited ({status:?}) before listening; stdout {:?}; stderr {}",
                        self.stdout,
                        self.stderr()
                    )
                }
            }
        }
    }

    /// The listening address (after [`Server::wait_listening`]).
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("listening")
    }

    /// `https://127.0.0.1:PORT` (`http://` without TLS).
    pub fn base(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.addr().port())
    }

    /// `https://127.0.0.1:PORT/api/v3/onezone{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{PREFIX}{path}", self.base())
    }

    /// Everything written to stderr so far (the logs).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Whether the process is still running (it is not reaped otherwise).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Sends a signal (`TERM`, `INT`) with kill(1).
    pub fn signal(&self, sig: &str) {
        let pid = self.pid();
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{sig} {pid}");
    }

    /// Waits (without blocking the async runtime) `within` at most for the
    /// exit status, then ([`STDOUT_END_DEADLINE`] at most) for the rest of
    /// stdout.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.read_stdout_to_end().await;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ozmint did not exit within {within:?}; stderr {}",
                self.stderr()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGTERM, then [`Server::wait_exit`].
    pub async fn terminate(&mut self, within: Duration) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(within).await
    }

    /// SIGKILL, then the exit status ([`EXIT_DEADLINE`] at most).
    pub fn kill(&mut self) -> ExitStatus {
        self.child.kill().expect("SIGKILL");
        let deadline = Instant::now() + EXIT_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ozmint did not exit within {EXIT_DEADLINE:?} of SIGKILL"
            );
            std::thread::sleep(POLL);
        }
    }

    /// Collects the stdout lines still unread of an exited process, until
    /// the reader thread sees the end of the pipe.
    async fn read_stdout_to_end(&mut self) {
        let deadline = Instant::now() + STDOUT_END_DEADLINE;
        loop {
            match self.lines.try_recv() {
                Ok(line) => self.stdout.push(line),
                Err(mpsc::TryRecvError::Disconnected) => return,
                Err(mpsc::TryRecvError::Empty) => {
                    assert!(
                        Instant::now() < deadline,
                        "stdout of the exited ozmint still open after {STDOUT_END_DEADLINE:?}; read so far {:?}",
                        self.stdout
                    );
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }
}

/// Opens the store a stopped server left in `data_dir` (default settings;
/// retried for 10 s, see [`crate::server::open_store_within`]).
pub async fn open_stopped_store(data_dir: &Path) -> std::sync::Arc<ozmint::Store> {
    let config = ozmint::config::Config {
        data_dir: data_dir.to_path_buf(),
        ..Default::default()
    };
    crate::server::open_store_within(&config, Duration::from_secs(10)).await
}
