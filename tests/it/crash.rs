//! Crash consistency: the real binary is killed with SIGKILL at random moments
//! while several connections mint, consume, revoke and change memberships;
//! after every restart, everything that was acknowledged must hold and the
//! store must pass `ozmint check`.
//!
//! Cycles: `OZMINT_CRASH_CYCLES` (default 3; run e.g. 200 by hand).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use testkit::spawned::{ozmint, run, text, Server};

const SPACE: &str = "9ueUeoZA6KXxNgzlvqmmrbzqE_BQiaHEEDC21sY1Kuc";
const GROUP: &str = "HwUpk8jrwxKOe45uzLFX2GVC8lKEasj4q253sptVqF8";
const GUEST: &str = "Gm4CMqtAjFgTyY1xLXFqjmbzTMF1E3IGbEXDBDKHz9I";

/// `ozmint serve --demo` on `data` (warnings only in the logs), run in `cwd`;
/// returns once it listens.
fn start(cwd: &Path, data: &Path) -> Server {
    let data = data.to_str().expect("utf-8 path");
    let args = [
        "--demo",
        "--listen",
        "127.0.0.1:0",
        "--log-level",
        "warn",
        "--data",
        data,
    ];
    Server::start(cwd, &args, &[])
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// What a state must be after a crash: known (acknowledged), or either of
/// two when a change was in flight at the kill.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Is(bool),
    Either,
}

/// What the server acknowledged.
#[derive(Default, Clone)]
struct Ledger {
    /// Support tokens whose mint was acknowledged, and whether they are revoked.
    minted: Vec<(String, Expect)>,
    /// Creation tokens whose consumption was acknowledged, with the new space.
    consumed: Vec<(String, String)>,
    /// Revocations acknowledged.
    revoked: usize,
    /// Groups created, whether guest is a member, and the worker that owns the
    /// group (only its owner changes it, so acknowledgements arrive in order).
    groups: Vec<(String, Expect, u64)>,
}

struct Ctx {
    base: String,
    http: reqwest::Client,
    admin_token: String,
    provider_token: String,
}

impl Ctx {
    fn url(&self, path: &str) -> String {
        format!("{}/api/v3/onezone{path}", self.base)
    }
    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Option<reqwest::Response> {
        let mut r = self
            .http
            .request(method, self.url(path))
            .header("x-auth-token", &self.admin_token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.ok()
    }
}

fn token_id(token: &str) -> String {
    ozmint::token::wire::parse(token)
        .map(|raw| String::from_utf8_lossy(&raw.identifier).into_owned())
        .expect("minted tokens parse")
}

async fn worker(ctx: Arc<Ctx>, ledger: Arc<Mutex<Ledger>>, seed: u64, until: Instant) {
    let mut n = seed;
    use reqwest::Method as M;
    while Instant::now() < until {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        match (n >> 33) % 4 {
            0 => {
                let Some(r) = ctx
                    .admin(M::POST, &format!("/spaces/{SPACE}/providers/token"), None)
                    .await
                else {
                    continue;
                };
                if r.status() == 200 {
                    if let Ok(v) = r.json::<Value>().await {
                        let t = v["token"].as_str().unwrap_or_default().to_owned();
                        ledger.lock().unwrap().minted.push((t, Expect::Is(false)));
                    }
                }
            }
            1 => {
                let Some(r) = ctx
                    .admin(M::GET, &format!("/groups/{GROUP}/spaces/token"), None)
                    .await
                else {
                    continue;
                };
                let Ok(v) = r.json::<Value>().await else {
                    continue;
                };
                let token = v["token"].as_str().unwrap_or_default().to_owned();
                let resp = ctx
                    .http
                    .post(ctx.url("/provider/spaces"))
                    .header("x-auth-token", &ctx.provider_token)
                    .json(&json!({ "name": "crash", "token": token, "size": 1 }))
                    .send()
                    .await;
                if let Ok(resp) = resp {
                    if resp.status() == 201 {
                        let loc = resp.headers()["location"].to_str().unwrap().to_owned();
                        ledger.lock().unwrap().consumed.push((token, loc));
                    }
                }
            }
            2 => {
                let victim = {
                    let mut l = ledger.lock().unwrap();
                    let i = l.minted.iter().rposition(|(_, e)| *e == Expect::Is(false));
                    i.map(|i| {
                        l.minted[i].1 = Expect::Either;
                        (i, l.minted[i].0.clone())
                    })
                };
                if let Some((i, t)) = victim {
                    let Some(r) = ctx
                        .admin(M::DELETE, &format!("/tokens/{}", token_id(&t)), None)
                        .await
                    else {
                        continue;
                    };
                    if r.status() == 204 {
                        let mut l = ledger.lock().unwrap();
                        l.minted[i].1 = Expect::Is(true);
                        l.revoked += 1;
                    }
                }
            }
            _ => {
                let existing = {
                    let l = ledger.lock().unwrap();
                    l.groups.iter().rposition(|g| g.2 == seed)
                };
                match existing {
                    Some(i) if n % 3 != 0 => {
                        let (gid, add) = {
                            let mut l = ledger.lock().unwrap();
                            let add = l.groups[i].1 != Expect::Is(true);
                            l.groups[i].1 = Expect::Either;
                            (l.groups[i].0.clone(), add)
                        };
                        let method = if add { M::PUT } else { M::DELETE };
                        let Some(r) = ctx
                            .admin(method, &format!("/groups/{gid}/users/{GUEST}"), None)
                            .await
                        else {
                            continue;
                        };
                        if r.status().is_success() {
                            ledger.lock().unwrap().groups[i].1 = Expect::Is(add);
                        }
                    }
                    _ => {
                        let Some(r) = ctx
                            .admin(M::POST, "/user/groups", Some(json!({ "name": "g" })))
                            .await
                        else {
                            continue;
                        };
                        if r.status() == 201 {
                            let loc = r.headers()["location"].to_str().unwrap();
                            let gid = loc.rsplit('/').next().unwrap().to_owned();
                            ledger
                                .lock()
                                .unwrap()
                                .groups
                                .push((gid, Expect::Is(false), seed));
                        }
                    }
                }
            }
        }
    }
}

async fn examine(ctx: &Ctx, token: &str) -> Value {
    let r = ctx
        .admin(
            reqwest::Method::POST,
            "/tokens/examine",
            Some(json!({ "token": token })),
        )
        .await
        .expect("examine answered");
    assert_eq!(
        r.status(),
        200,
        "an acknowledged token is unknown after a crash"
    );
    r.json().await.unwrap()
}

/// Checks everything acknowledged, and settles in-flight outcomes to what
/// the restarted server shows (that state is on disk now).
async fn verify(ctx: &Ctx, ledger: &mut Ledger) {
    for (t, expect) in ledger.minted.iter_mut() {
        let state = examine(ctx, t).await["state"].clone();
        let revoked = match state.as_str() {
            Some("revoked") => true,
            Some("active") => false,
            other => panic!("unexpected state {other:?} of an acknowledged mint"),
        };
        if let Expect::Is(want) = *expect {
            assert_eq!(revoked, want, "an acknowledged revocation state was lost");
        }
        *expect = Expect::Is(revoked);
    }
    for (t, space) in &ledger.consumed {
        assert_eq!(
            examine(ctx, t).await["state"],
            "consumed",
            "an acknowledged consumption was undone"
        );
        let r = ctx.admin(reqwest::Method::GET, space, None).await.unwrap();
        assert_eq!(
            r.status(),
            200,
            "the space of an acknowledged consumption is missing"
        );
    }
    for (gid, expect, _) in ledger.groups.iter_mut() {
        let r = ctx
            .admin(
                reqwest::Method::GET,
                &format!("/groups/{gid}/users/{GUEST}"),
                None,
            )
            .await
            .unwrap();
        let member = match r.status().as_u16() {
            200 => true,
            404 => false,
            s => panic!("unexpected status {s} reading a membership"),
        };
        if let Expect::Is(want) = *expect {
            assert_eq!(member, want, "an acknowledged membership change was lost");
        }
        *expect = Expect::Is(member);
    }
}

fn check_store(cwd: &Path, data: &Path) {
    let mut cmd = ozmint(cwd);
    cmd.args(["check", "--data"]).arg(data);
    let out = run(cmd);
    let text = text(&out.stdout);
    assert!(
        out.status.success(),
        "store inconsistent after a crash:\n{text}"
    );
}

async fn tokens(base: &str, http: &reqwest::Client) -> (String, String) {
    let url = |p: &str| format!("{base}/api/v3/onezone{p}");
    let admin: Value = http
        .post(url("/user/client_tokens"))
        .basic_auth("admin", Some("password"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let p: Value = http
        .post(url("/providers"))
        .basic_auth("admin", Some("password"))
        .json(&json!({ "name": "crash provider", "domain": "crash.example" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        admin["token"].as_str().unwrap().to_owned(),
        p["providerRootToken"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_work_survives_sigkill() {
    let cycles: u64 = std::env::var("OZMINT_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = client();
    let (admin_token, provider_token) = {
        let s = start(dir.path(), &data);
        let t = tokens(&s.base(), &http).await;
        drop(s);
        t
    };
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut totals = (0, 0, 0, 0);
    for cycle in 0..cycles {
        let server = start(dir.path(), &data);
        let ctx = Arc::new(Ctx {
            base: server.base(),
            http: http.clone(),
            admin_token: admin_token.clone(),
            provider_token: provider_token.clone(),
        });
        // Everything acknowledged before this crash must still hold.
        let mut snapshot = ledger.lock().unwrap().clone();
        verify(&ctx, &mut snapshot).await;
        *ledger.lock().unwrap() = snapshot;
        let run_for = Duration::from_millis(200 + (cycle * 7919) % 600);
        let until = Instant::now() + run_for + Duration::from_secs(5);
        let workers: Vec<_> = (0..4)
            .map(|w| tokio::spawn(worker(ctx.clone(), ledger.clone(), cycle * 31 + w, until)))
            .collect();
        tokio::time::sleep(run_for).await;
        let mut server = server;
        server.kill();
        for w in workers {
            let _ = w.await;
        }
        check_store(dir.path(), &data);
        let l = ledger.lock().unwrap().clone();
        totals = (l.minted.len(), l.consumed.len(), l.revoked, l.groups.len());
    }
    let server = start(dir.path(), &data);
    let ctx = Ctx {
        base: server.base(),
        http,
        admin_token,
        provider_token,
    };
    let mut snapshot = ledger.lock().unwrap().clone();
    verify(&ctx, &mut snapshot).await;
    eprintln!(
        "crash test: {cycles} SIGKILL cycles; acknowledged and verified: {} mints, {} consumptions, {} revocations, {} groups",
        totals.0, totals.1, totals.2, totals.3
    );
    assert!(
        totals.0 > 0 && totals.3 > 0,
        "the workers acknowledged nothing; the test proves nothing"
    );
}
