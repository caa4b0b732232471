//! A 3-member etcd cluster on loopback for tests (feature `etcd`).
//!
//! [`Cluster::start`] runs three `etcd` processes on free ports, with their
//! data in a temporary directory (in `/dev/shm` when there is one), and
//! waits until every member is healthy. Tests kill, stop and restart members
//! by index. Dropping the cluster kills every process it started; a watchdog
//! process does the same (and removes the directory) within a second of the
//! test process exiting without dropping it (a cluster in a `static`, a crash).
//!
//! Without the `etcd` binary, [`Cluster::start`] prints a loud skip notice
//! (once per process) and returns `None`: tests then skip.
//!
//! Everything here is synchronous (plain processes, HTTP/1.0 to the members'
//! `/health` and status gateway), so one cluster serves tests that each run
//! their own tokio runtime.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

/// What tests print when they cannot run.
pub const SKIP: &str =
    "SKIPPED: etcd tests need the etcd binary (apt-get install etcd-server) and the etcd feature";

/// How long a cluster may take to become healthy.
const START_WAIT: Duration = Duration::from_secs(20);

/// Prints [`SKIP`] loudly, once per process, straight to stderr (past the
/// test harness's capture, so that it shows in a normal `cargo test`).
pub fn skip_loudly() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bar = "!".repeat(SKIP.len());
        let _ = writeln!(std::io::stderr(), "\n{bar}\n{SKIP}\n{bar}\n");
    });
}

/// Whether an `etcd` binary is on the PATH.
pub fn etcd_installed() -> bool {
    Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A running 3-member cluster (see the module docs).
pub struct Cluster {
    dir: tempfile::TempDir,
    clients: [u16; 3],
    peers: [u16; 3],
    members: Mutex<[Option<Child>; 3]>,
    watchdog: Mutex<Option<Child>>,
}

impl Cluster {
    /// Starts a cluster and waits until it is healthy; `None` (after a loud
    /// notice) when etcd is not installed. Panics when it cannot start one.
    pub fn start() -> Option<Cluster> {
        if !etcd_installed() {
            skip_loudly();
            return None;
        }
        // A free port can be taken by someone else before etcd binds it: try anew.
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start() {
                Ok(cluster) => return Some(cluster),
                Err(why) => last = why,
            }
        }
        panic!("cannot start an etcd cluster: {last}");
    }

    fn try_start() -> Result<Cluster, String> {
        let dir = temp_dir().map_err(|e| format!("temporary directory: {e}"))?;
        let ports = free_ports(6).map_err(|e| format!("free ports: {e}"))?;
        let cluster = Cluster {
            dir,
            clients: [ports[0], ports[1], ports[2]],
            peers: [ports[3], ports[4], ports[5]],
            members: Mutex::new([None, None, None]),
            watchdog: Mutex::new(None),
        };
        *cluster.watchdog.lock().unwrap() = Some(cluster.spawn_watchdog()?);
        for i in 0..3 {
            cluster.restart(i);
        }
        let deadline = Instant::now() + START_WAIT;
        while !(0..3).all(|i| cluster.healthy(i)) {
            for i in 0..3 {
                if !cluster.running(i) {
                    return Err(format!("member {i} exited: {}", cluster.log_tail(i)));
                }
            }
            if Instant::now() > deadline {
                return Err(format!("not healthy after {START_WAIT:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(cluster)
    }

    /// The members' client addresses, `127.0.0.1:PORT`.
    pub fn endpoints(&self) -> Vec<String> {
        self.clients
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// The engine URL of the cluster with `prefix`: `etcd://A,B,C/prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("etcd://{}/{prefix}", self.endpoints().join(","))
    }

    /// Kills member `i` with SIGKILL (no-op when it is not running).
    pub fn kill(&self, i: usize) {
        if let Some(mut child) = self.members.lock().unwrap()[i].take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(self.pid_file(i));
        }
    }

    /// Stops member `i` with SIGTERM (SIGKILL after 10 s); its data stays.
    pub fn stop(&self, i: usize) {
        let Some(mut child) = self.members.lock().unwrap()[i].take() else {
            return;
        };
        let _ = kill_process(Pid::from_child(&child), Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_file(self.pid_file(i));
    }

    /// Starts member `i` (again) on its data; no-op while it runs. Does not
    /// wait: see [`Cluster::wait_healthy`].
    pub fn restart(&self, i: usize) {
        let mut members = self.members.lock().unwrap();
        if members[i].is_some() {
            return;
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("m{i}.log")))
            .expect("etcd log file");
        let initial: Vec<String> = (0..3)
            .map(|j| format!("m{j}=http://127.0.0.1:{}", self.peers[j]))
            .collect();
        let client = format!("http://127.0.0.1:{}", self.clients[i]);
        let peer = format!("http://127.0.0.1:{}", self.peers[i]);
        let child = Command::new("etcd")
            .arg("--name")
            .arg(format!("m{i}"))
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("m{i}")))
            .args(["--logger", "zap"])
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial.join(",")])
            .args([
                "--initial-cluster-token",
                &format!("test-{}", self.peers[0]),
            ])
            .args(["--initial-cluster-state", "new"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd log file"))
            .stderr(log)
            .spawn()
            .expect("etcd starts");
        std::fs::write(self.pid_file(i), child.id().to_string()).expect("pid file");
        members[i] = Some(child);
    }

    /// Whether member `i`'s process is running.
    pub fn running(&self, i: usize) -> bool {
        let mut members = self.members.lock().unwrap();
        match members[i].as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The process id of member `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members.lock().unwrap()[i].as_ref().map(Child::id)
    }

    /// The Prometheus metrics of member `i` (`GET /metrics` on its client port).
    pub fn metrics(&self, i: usize) -> Option<String> {
        http(self.clients[i], "GET /metrics", "")
    }

    /// The sum of the samples of metric `name` in member `i`'s metrics whose
    /// labels contain `having` (`""`: every sample); `None` when the member
    /// does not answer or has no such sample.
    pub fn metric(&self, i: usize, name: &str, having: &str) -> Option<f64> {
        let text = self.metrics(i)?;
        let mut found = None;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            if !(rest.starts_with(' ') || rest.starts_with('{')) || !rest.contains(having) {
                continue;
            }
            if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
                *found.get_or_insert(0.0) += v;
            }
        }
        found
    }

    /// Whether member `i` answers `/health` with true (it has a leader and serves reads).
    pub fn healthy(&self, i: usize) -> bool {
        http(self.clients[i], "GET /health", "").is_some_and(|r| r.contains(r#""health":"true""#))
    }

    /// Waits until every running member is healthy; false after `wait`.
    pub fn wait_healthy(&self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if (0..3).filter(|&i| self.running(i)).all(|i| self.healthy(i)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The index of the leader, as the running members see it; `None`
    /// when none of them knows one.
    pub fn leader(&self) -> Option<usize> {
        let statuses: Vec<(usize, Status)> = (0..3)
            .filter(|&i| self.running(i))
            .filter_map(|i| self.status(i).map(|s| (i, s)))
            .collect();
        let leader = statuses.iter().find_map(|(_, s)| s.leader)?;
        statuses
            .iter()
            .find(|(_, s)| s.member == leader)
            .map(|(i, _)| *i)
    }

    fn status(&self, i: usize) -> Option<Status> {
        let body = http(self.clients[i], "POST /v3/maintenance/status", "{}")?;
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        let id = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<u64>().ok());
        Some(Status {
            member: id(&json["header"]["member_id"])?,
            leader: id(&json["leader"]).filter(|&l| l != 0),
        })
    }

    fn pid_file(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("m{i}.pid"))
    }

    fn log_tail(&self, i: usize) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join(format!("m{i}.log"))).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(3)..].join("\n")
    }

    /// A shell that waits for this process to end, then kills the members
    /// named by the PID files and removes the directory.
    fn spawn_watchdog(&self) -> Result<Child, String> {
        const SCRIPT: &str = r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done
for f in "$2"/m*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
rm -rf "$2""#;
        Command::new("sh")
            .args(["-c", SCRIPT, "etcd-watchdog"])
            .arg(std::process::id().to_string())
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("watchdog: {e}"))
    }

    /// Where the members keep their data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut w) = self.watchdog.get_mut().map(Option::take).unwrap_or(None) {
            let _ = w.kill();
            let _ = w.wait();
        }
        for i in 0..3 {
            self.kill(i);
        }
    }
}

struct Status {
    member: u64,
    leader: Option<u64>,
}

/// The body of an HTTP/1.0 request to 127.0.0.1:`port`, within two seconds.
fn http(port: u16, request: &str, body: &str) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let wait = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, wait).ok()?;
    stream.set_read_timeout(Some(wait)).ok()?;
    stream.set_write_timeout(Some(wait)).ok()?;
    write!(
        stream,
        "{request} HTTP/1.0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_string())
}

fn temp_dir() -> std::io::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    let mut builder = tempfile::Builder::new();
    builder.prefix("ozmint-etcd-");
    if shm.is_dir() {
        if let Ok(dir) = builder.tempdir_in(shm) {
            return Ok(dir);
        }
    }
    builder.tempdir()
}

fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    // Hold every listener until all are known, so that the ports differ.
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}
