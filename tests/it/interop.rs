//! Interoperability with pymacaroons, an independent macaroon implementation.
//!
//! - The golden vectors in `data/vectors/` deserialize and verify with
//!   pymacaroons (`tests/interop/check.py vectors`).
//! - Tokens attenuated by pymacaroons (`check.py attenuate`) are accepted or
//!   refused by a real server exactly as their caveats say, in the plain
//!   base64url form pymacaroons prints and in Onedata's escaped form, through
//!   every token header.
//!
//! pymacaroons lives in a virtual environment at `target/interop-venv`, created
//! on first use and reused afterwards. Without python3, venv or pip (or without
//! network access to PyPI the first time) the tests print a loud skip message
//! and pass, unless the environment variable `CI` is set: then they fail.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ozmint::config::Config;
use ozmint::model::TokenKind;
use ozmint::token::caveat::{Interface, IpMask};
use ozmint::token::v2::{
    self, Context, Identifier, InviteType, Persistence, Token, TokenSubject, TokenType,
    Unsatisfied, V2Identifier,
};
use ozmint::token::{wire, Caveat, TokenError};
use ozmint::DurabilityMode;
use testkit::onedata;
use testkit::server::{unix_now, ADMIN, DEMO_SPACE};

/// The pymacaroons release the checks run against.
const PYMACAROONS: &str = "pymacaroons==0.13.0";
/// Creating the venv.
const VENV_TIMEOUT: Duration = Duration::from_secs(120);
/// The first `pip install` (downloads from PyPI).
const PIP_TIMEOUT: Duration = Duration::from_secs(300);
/// Every other subprocess.
pub(crate) const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Every HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn check_py() -> PathBuf {
    manifest_dir().join("tests/interop/check.py")
}

// ---------------------------------------------------------------------------
// Subprocesses with a time limit.
// ---------------------------------------------------------------------------

pub(crate) struct Output {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Output {
    pub(crate) fn describe(&self) -> String {
        format!(
            "{}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs `cmd` to completion, killing it after `timeout`.
pub(crate) fn run(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} timed out after {timeout:?}"));
            }
            Err(e) => return Err(format!("waiting for {what}: {e}")),
        }
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Runs `cmd` and requires it to succeed.
pub(crate) fn run_ok(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let out = run(cmd, timeout)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!("{what} failed: {}", out.describe()))
    }
}

// ---------------------------------------------------------------------------
// The virtual environment with pymacaroons.
// ---------------------------------------------------------------------------

/// The venv's python and the installed version of its main package.
#[derive(Clone)]
pub(crate) struct Python {
    pub(crate) exe: PathBuf,
    pub(crate) version: String,
}

/// A virtual environment under `target/` with some PyPI packages.
pub(crate) struct Venv {
    /// Its directory, relative to the manifest directory.
    pub(crate) dir: &'static str,
    /// `pip install` arguments (pinned versions).
    pub(crate) packages: &'static [&'static str],
    /// Python code that imports the packages and prints the main one's version.
    pub(crate) probe: &'static str,
    /// What the tests that need it check (for the skip message).
    pub(crate) what: &'static str,
}

/// The venv of pymacaroons.
const PYMACAROONS_VENV: Venv = Venv {
    dir: "target/interop-venv",
    packages: &[PYMACAROONS],
    probe: "import importlib.metadata as m, pymacaroons; print(m.version('pymacaroons'))",
    what: "pymacaroons interop test",
};

/// Creates (once) or reuses the venv with its packages installed.
fn setup_venv(venv: &Venv) -> Result<Python, String> {
    let dir = manifest_dir().join(venv.dir);
    let exe = dir.join("bin/python");
    let marker = dir.join(".ozmint-interop");
    let wanted = venv.packages.join(" ");
    let version_of = |exe: &Path| -> Result<String, String> {
        let out = run_ok(Command::new(exe).args(["-c", venv.probe]), RUN_TIMEOUT)?;
        Ok(out.stdout.trim().to_owned())
    };
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        if let Ok(version) = version_of(&exe) {
            return Ok(Python { exe, version });
        }
    }
    eprintln!("interop: creating {} with {wanted}", dir.display());
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot remove the stale {}: {e}", dir.display()))?;
    }
    run_ok(
        Command::new("python3").arg("-m").arg("venv").arg(&dir),
        VENV_TIMEOUT,
    )?;
    run_ok(
        Command::new(&exe)
            .args(["-m", "pip", "install", "--quiet", "--timeout", "30"])
            .args(venv.packages),
        PIP_TIMEOUT,
    )?;
    let version = version_of(&exe)?;
    std::fs::write(&marker, &wanted)
        .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    Ok(Python { exe, version })
}

/// The venv's python, or `None` (after a loud message) when it cannot be
/// set up outside CI. Set up once per test binary (`cell`), whichever test
/// asks first.
pub(crate) fn venv_python(
    venv: &Venv,
    cell: &'static OnceLock<Result<Python, String>>,
) -> Option<Python> {
    match cell.get_or_init(|| setup_venv(venv)) {
        Ok(py) => {
            let name = venv.packages[0].split("==").next().unwrap_or_default();
            eprintln!("interop: {name} {} ({})", py.version, py.exe.display());
            Some(py.clone())
        }
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!(
                "the {} needs python3 with venv and pip (and PyPI for the first run): {why}",
                venv.what
            )
        }
        Err(why) => {
            // Straight to stderr, not through the test harness' capture, so
            // the skip shows even when the test "passes".
            let _ = writeln!(
                std::io::stderr(),
                "\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !! SKIPPED: {} (python3/venv/pip unavailable)\n\
                 !! {why}\n\
                 !! Set CI=1 to make this a failure.\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n",
                venv.what
            );
            None
        }
    }
}

/// The venv with pymacaroons.
fn python() -> Option<Python> {
    static VENV: OnceLock<Result<Python, String>> = OnceLock::new();
    venv_python(&PYMACAROONS_VENV, &VENV)
}

/// `check.py attenuate TOKEN CAVEAT`: the token as pymacaroons prints it.
fn py_attenuate(py: &Python, token: &str, caveat: &str) -> String {
    let out = run_ok(
        Command::new(&py.exe)
            .arg(check_py())
            .arg("attenuate")
            .arg(token)
            .arg(caveat),
        RUN_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("pymacaroons could not attenuate with {caveat:?}: {e}"));
    let plain = out.stdout.trim().to_owned();
    assert!(
        !plain.is_empty()
            && plain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "pymacaroons printed something else than unpadded base64url: {plain:?}"
    );
    plain
}

// ---------------------------------------------------------------------------
// The golden vectors.
// ---------------------------------------------------------------------------

#[test]
fn pymacaroons_reads_and_verifies_the_golden_vectors() {
    let Some(py) = python() else { return };
    let vectors = manifest_dir().join("data/vectors/vectors.json");
    let out = run(
        Command::new(&py.exe)
            .arg(check_py())
            .arg("vectors")
            .arg(&vectors),
        RUN_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("check.py: {e}"));
    println!("{}", out.stdout);
    assert!(
        out.status.success(),
        "pymacaroons {} disagrees with the golden vectors: {}",
        py.version,
        out.describe()
    );
    assert!(
        out.stdout.contains("0 problems"),
        "unexpected summary: {}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------
// A real server and pymacaroons-attenuated tokens.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_honours_caveats_added_by_pymacaroons() {
    let py = match tokio::task::spawn_blocking(python)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    {
        Some(py) => py,
        None => return,
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        data_dir: dir.path().into(),
        listen: "127.0.0.1:0".parse().expect("listen address"),
        demo: true,
        durability: DurabilityMode::Relaxed,
        ..Default::default()
    };
    let store = ozmint::serve::open_store(&config)
        .await
        .expect("open the store");
    ozmint::serve::bootstrap(&store, true, None)
        .await
        .expect("load the demo data set");
    let running = ozmint::serve::start(&config, store, std::future::pending())
        .await
        .expect("start the server");
    assert!(running.addr.ip().is_loopback());
    let base = format!("https://127.0.0.1:{}/api/v3/onezone", running.addr.port());
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(REQUEST_TIMEOUT)
        .no_proxy()
        .build()
        .expect("build the client");

    // An access token for the administrator.
    let resp = client
        .post(format!("{base}/user/client_tokens"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("POST /user/client_tokens");
    assert_eq!(resp.status(), 200, "client token");
    let body: serde_json::Value = resp.json().await.expect("client token body");
    let access = body["token"].as_str().expect("a `token` string").to_owned();

    let support_url = format!("{base}/spaces/{DEMO_SPACE}/providers/token");
    let now = unix_now();
    let cases = [
        (format!("time < {}", now + 3600), 200u16),
        (format!("time < {}", now - 10), 401),
        ("colour = blue".to_owned(), 401),
    ];
    let mut support_token = None;
    for (caveat, want) in &cases {
        let plain = {
            let (py, access, caveat) = (py.clone(), access.clone(), caveat.clone());
            tokio::task::spawn_blocking(move || py_attenuate(&py, &access, &caveat))
                .await
                .expect("attenuate task")
        };
        let escaped = onedata::escape(&plain);
        assert_eq!(escaped, wire::escape(&plain), "escaping rules differ");
        // pymacaroons and the crate produce the very same bytes.
        assert_eq!(
            escaped,
            wire::attenuate(&access, caveat).expect("wire::attenuate"),
            "pymacaroons' attenuation with {caveat:?} differs from wire::attenuate"
        );
        for (form, token) in [("plain", &plain), ("escaped", &escaped)] {
            for header in ["X-Auth-Token", "Authorization", "macaroon"] {
                let value = if header == "Authorization" {
                    format!("Bearer {token}")
                } else {
                    token.clone()
                };
                let resp = client
                    .post(&support_url)
                    .header(header, value)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("POST {support_url}: {e}"));
                let status = resp.status().as_u16();
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                assert_eq!(
                    status, *want,
                    "{caveat:?}, {form} form, {header} header: {body}"
                );
                if status == 200 {
                    let t = body["token"].as_str().expect("a support token");
                    support_token.get_or_insert_with(|| t.to_owned());
                } else {
                    assert_eq!(
                        body["error"], "invalid_token",
                        "{caveat:?}, {form} form, {header} header: {body}"
                    );
                }
            }
        }
    }

    // A support token attenuated by pymacaroons still parses and verifies.
    let support = support_token.expect("a support token was minted");
    let until = now + 3600;
    let caveat = Caveat::TimeBefore(until).to_predicate();
    let plain = {
        let (py, support, caveat) = (py.clone(), support.clone(), caveat.clone());
        tokio::task::spawn_blocking(move || py_attenuate(&py, &support, &caveat))
            .await
            .expect("attenuate task")
    };
    let original = wire::parse(&support).expect("parse the minted support token");
    for token in [plain.clone(), onedata::escape(&plain)] {
        let raw = wire::parse(&token).expect("wire::parse a pymacaroons token");
        assert_eq!(raw.location, original.location);
        assert_eq!(raw.identifier, original.identifier);
        let mut caveats = original.caveats.clone();
        caveats.push(caveat.clone().into_bytes());
        assert_eq!(raw.caveats, caveats);
        let v = running
            .app
            .zone
            .verify(&token)
            .await
            .expect("the zone verifies a pymacaroons-attenuated token");
        assert_eq!(v.record.kind, TokenKind::SpaceSupport);
        assert!(v.caveats.contains(&Caveat::TimeBefore(until)), "{v:?}");
        assert!(v
            .caveats
            .contains(&Caveat::TokenType(TokenKind::SpaceSupport)));
    }
    // ...and one attenuated into the past does not.
    let expired = {
        let (py, support) = (py.clone(), support.clone());
        let caveat = Caveat::TimeBefore(now - 10).to_predicate();
        tokio::task::spawn_blocking(move || py_attenuate(&py, &support, &caveat))
            .await
            .expect("attenuate task")
    };
    match running.app.zone.verify(&expired).await {
        Err(ozmint::Error::Token(TokenError::Expired)) => {}
        other => panic!("an expired attenuation verified as {other:?}"),
    }

    tokio::time::timeout(Duration::from_secs(30), running.stop())
        .await
        .expect("the server stops in time")
        .expect("the server stops cleanly");
}

// ---------------------------------------------------------------------------
// Onedata 20.02+ tokens and pymacaroons.
// ---------------------------------------------------------------------------

/// `check.py verify TOKEN SECRET_HEX`: what pymacaroons reads and whether
/// the chain verifies.
fn py_verify(py: &Python, token: &str, secret: &[u8]) -> serde_json::Value {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let out = run_ok(
        Command::new(&py.exe)
            .arg(check_py())
            .arg("verify")
            .arg(token)
            .arg(hex),
        RUN_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("pymacaroons could not read the token: {e}"));
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("check.py verify printed {:?}: {e}", out.stdout))
}

#[test]
fn pymacaroons_attenuates_v2_tokens_that_ozmint_verifies() {
    let Some(py) = python() else { return };
    // A secret as Onezone makes them: the hex text of random bytes (64 bytes).
    let secret = b"3f2a9c0d5e6b7a8190aabbccddeeff00112233445566778899aabbccddeeff01";
    let now = unix_now();
    for (identifier, base) in [
        (
            V2Identifier::new(
                Persistence::Temporary { generation: 4 },
                TokenSubject::user("u-1234").unwrap(),
                TokenType::ACCESS,
                "0a1b2c3d4e5f",
            )
            .unwrap(),
            vec![Caveat::TimeBefore(now + 3600)],
        ),
        (
            V2Identifier::new(
                Persistence::Named,
                TokenSubject::provider("p-77").unwrap(),
                TokenType::invite(InviteType::SupportSpace, "space-1").unwrap(),
                "ffeeddccbbaa",
            )
            .unwrap(),
            vec![],
        ),
    ] {
        let identifier = Identifier::V2(identifier);
        let token = v2::mint("zone.example.org", &identifier, secret, &base).unwrap();

        // pymacaroons reads it as ozmint wrote it, and its chain verifies.
        let seen = py_verify(&py, &token, secret);
        assert_eq!(seen["location"], "zone.example.org");
        assert_eq!(seen["identifier"], identifier.to_string());
        assert_eq!(seen["valid"], true, "{seen}");
        assert_eq!(py_verify(&py, &token, b"another secret")["valid"], false);

        // pymacaroons adds a caveat; ozmint verifies the result, in the plain
        // form pymacaroons prints and in Onedata's escaped form.
        let caveat = Caveat::Ip(vec![IpMask::new("10.0.0.0".parse().unwrap(), 8).unwrap()]);
        let plain = py_attenuate(&py, &token, &caveat.to_text());
        let escaped = onedata::escape(&plain);
        assert_eq!(
            escaped,
            v2::confine(&token, std::slice::from_ref(&caveat)).unwrap()
        );
        let ctx = Context::new(now)
            .peer_ip("10.20.30.40".parse().unwrap())
            .interface(Interface::Rest);
        for form in [&plain, &escaped] {
            let t = Token::parse(form).unwrap();
            assert_eq!(t.identifier(), &identifier);
            let v = t.verify(secret, &ctx).expect("verifies");
            assert_eq!(v.subject.as_ref(), identifier.subject());
            assert_eq!(v.caveats.last(), Some(&caveat));
            // ...and holds it to the caveat python added.
            let elsewhere = ctx.clone().peer_ip("192.168.1.1".parse().unwrap());
            match t.verify(secret, &elsewhere) {
                Err(v2::Error::CaveatUnverified(f)) => {
                    assert_eq!(f.caveat, caveat);
                    assert!(matches!(f.reason, Unsatisfied::IpNotAllowed(_)));
                }
                other => panic!("verified from the wrong network: {other:?}"),
            }
        }

        // A caveat python adds that ozmint does not understand: refused.
        let odd = py_attenuate(&py, &token, "colour = blue");
        assert_eq!(
            Token::parse(&odd).unwrap().verify(secret, &ctx),
            Err(v2::Error::CaveatUnknown("colour = blue".into()))
        );

        // Tampering: loosen python's caveat (or drop it) without re-signing.
        let attenuated = Token::parse(&plain).unwrap();
        let mut loosened = attenuated.raw().clone();
        *loosened.caveats.last_mut().unwrap() = b"ip = 0.0.0.0/0".to_vec();
        let mut dropped = attenuated.raw().clone();
        dropped.caveats.pop();
        let mut renamed = attenuated.raw().clone();
        renamed.identifier = identifier
            .to_string()
            .replace("0a1b", "0a1c")
            .replace("ffee", "ffef")
            .into_bytes();
        for (what, raw) in [
            ("loosened", loosened),
            ("dropped", dropped),
            ("renamed", renamed),
        ] {
            let forged = wire::encode(&raw);
            let t = Token::parse(&forged).unwrap();
            assert_eq!(t.verify(secret, &ctx), Err(v2::Error::Invalid), "{what}");
            assert_eq!(py_verify(&py, &forged, secret)["valid"], false, "{what}");
        }
    }
}

/// A named token minted through `POST /user/tokens/named`, attenuated by
/// pymacaroons, holds on the HTTP API to the caveat python added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_token_attenuated_by_pymacaroons_holds_on_the_rest_api() {
    let py = match tokio::task::spawn_blocking(python)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    {
        Some(py) => py,
        None => return,
    };
    let s = testkit::server::start_demo().await;
    let resp = s
        .client
        .post(s.url("/user/tokens/named"))
        .basic_auth("guest", Some("guest"))
        .json(&serde_json::json!({ "name": "for python" }))
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status(), 201);
    let body: serde_json::Value = resp.json().await.expect("JSON");
    let token = body["token"].as_str().expect("token").to_owned();
    let probe = |t: String| {
        let s = &s;
        async move {
            s.client
                .get(s.url("/user/tokens/named"))
                .header("x-auth-token", t)
                .send()
                .await
                .expect("probe")
        }
    };
    for (caveat, ok) in [
        ("ip = 127.0.0.0/8", true),
        ("ip = 10.0.0.0/8", false),
        ("interface = oneclient", false),
        ("api = ozw/get/token.null.user_named_tokens,*:*", true),
        // The listing is an operation on tokens, not on the user.
        ("api = ozw/get/user.*.*:*", false),
        ("api = ozw/get/space.*.*:*", false),
    ] {
        let (py, t) = (py.clone(), token.clone());
        let plain = tokio::task::spawn_blocking(move || py_attenuate(&py, &t, caveat))
            .await
            .expect("attenuate task");
        for form in [plain.clone(), onedata::escape(&plain)] {
            let resp = probe(form).await;
            let status = resp.status().as_u16();
            let v: serde_json::Value = resp.json().await.expect("JSON");
            if ok {
                assert_eq!(status, 200, "{caveat}: {v}");
            } else {
                assert_eq!(status, 401, "{caveat}: {v}");
                assert_eq!(
                    v["error"]["details"]["authError"]["id"], "tokenCaveatUnverified",
                    "{caveat}: {v}"
                );
            }
        }
    }
    // The unattenuated token still works.
    assert_eq!(probe(token).await.status(), 200);
}
