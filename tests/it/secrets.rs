//! Secrets hygiene: the server runs at the most verbose log level through a
//! full lifecycle (users, logins with right and wrong passwords, access,
//! support, space-creation and provider tokens, consumption, revocation,
//! examination, attenuation, garbage tokens, every kind of error, key
//! rotation and retirement, a password change), then the test opens the store
//! and searches the logs (stdout and stderr) and every error answer for every
//! secret: passwords, Basic headers, password hashes, whole tokens,
//! signatures, root keys and per-token secrets, in all usual encodings.
//!
//! It runs once with the human log format and once with JSON. The binary runs
//! in a temporary directory on 127.0.0.1 and is killed if the test fails.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};

use ozmint::model::RootKey;
use ozmint::store::schema::ROOT_KEYS;
use ozmint::token::{keys, wire};
use testkit::server::PREFIX;
use testkit::spawned::{open_stopped_store, strip_ansi, Server, EXIT_DEADLINE};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Distinctive passwords: none of them is a common word that could appear in
/// a log line by chance.
const ADMIN_PW: &str = "AdmPw-Quokka-Zebra-7731";
const ALICE: &str = "alice-secrets";
const ALICE_PW: &str = "AlicePw-Narwhal-Tulip-4419";
const ALICE_PW2: &str = "AlicePw2-Ocelot-Lilac-5521";
const BOB: &str = "bob-secrets";
const BOB_PW: &str = "BobPw-Axolotl-Maple-9902";
/// A user name that does not exist (its attempts are throttled).
const MALLORY: &str = "mallory-secrets";
/// Failed logins per user name before 429 (set low for the test).
const LOGIN_FAILURES: usize = 5;
/// Wrong passwords tried for alice (her failures stay under the limit, even
/// with the one after her password change: a success served from the
/// credential cache does not reset the count).
const ALICE_FAILURES: usize = 2;

fn wrong_pw(i: usize) -> String {
    format!("WrongPw-Pangolin-Cedar-{i:04}")
}

// ---------------------------------------------------------------------------
// The client side: every exchange is recorded.
// ---------------------------------------------------------------------------

/// How a request authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
    /// The `X-Auth-Token` header.
    XAuthToken(&'a str),
    Bearer(&'a str),
    Macaroon(&'a str),
    /// A raw `Authorization` header value.
    Raw(&'a str),
    /// Basic and `X-Auth-Token` at once (a 400).
    Both((&'a str, &'a str), &'a str),
}

enum Body {
    None,
    Json(Value),
    Raw(String),
}

/// One answered request.
struct Exchange {
    what: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

struct Session {
    base: String,
    h2: reqwest::Client,
    h1: reqwest::Client,
    turn: usize,
    exchanges: Vec<Exchange>,
    /// Every token received from the server or sent to it.
    tokens: Vec<String>,
    /// The tokens the server handed out.
    minted: Vec<String>,
    /// Every Basic header value sent (including malformed ones).
    basic_headers: Vec<String>,
}

impl Session {
    fn new(addr: SocketAddr) -> Session {
        let builder = || {
            reqwest::Client::builder()
                .danger_accept_invalid_certs(true)
                .timeout(CLIENT_TIMEOUT)
                .no_proxy()
        };
        Session {
            base: format!("https://127.0.0.1:{}", addr.port()),
            h2: builder().build().expect("client"),
            h1: builder().http1_only().build().expect("client"),
            turn: 0,
            exchanges: Vec::new(),
            tokens: Vec::new(),
            minted: Vec::new(),
            basic_headers: Vec::new(),
        }
    }

    fn note_token(&mut self, t: &str) {
        if !self.tokens.iter().any(|x| x == t) {
            self.tokens.push(t.to_owned());
        }
    }

    /// Sends a request (alternating HTTP/2 and HTTP/1.1), records the answer,
    /// checks its status and returns its body and `Location`.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Body,
        expect: u16,
    ) -> (String, Option<String>) {
        self.turn += 1;
        let client = if self.turn % 2 == 0 {
            &self.h2
        } else {
            &self.h1
        };
        let url = format!("{}{PREFIX}{path}", self.base);
        let mut rb = client.request(method.clone(), &url);
        let basic = |u: &str, p: &str| format!("Basic {}", STANDARD.encode(format!("{u}:{p}")));
        let mut tokens_sent = Vec::new();
        match auth {
            Auth::None => {}
            Auth::Basic(u, p) => {
                let h = basic(u, p);
                rb = rb.header("authorization", &h);
                self.basic_headers.push(h);
            }
            Auth::XAuthToken(t) => {
                rb = rb.header("x-auth-token", t);
                tokens_sent.push(t);
            }
            Auth::Bearer(t) => {
                rb = rb.header("authorization", format!("Bearer {t}"));
                tokens_sent.push(t);
            }
            Auth::Macaroon(t) => {
                rb = rb.header("macaroon", t);
                tokens_sent.push(t);
            }
            Auth::Raw(v) => {
                rb = rb.header("authorization", v);
                self.basic_headers.push(v.to_owned());
            }
            Auth::Both((u, p), t) => {
                let h = basic(u, p);
                rb = rb.header("authorization", &h).header("x-auth-token", t);
                self.basic_headers.push(h);
                tokens_sent.push(t);
            }
        }
        for t in tokens_sent {
            self.note_token(t);
        }
        rb = match body {
            Body::None => rb,
            Body::Json(v) => rb.json(&v),
            Body::Raw(s) => rb.header("content-type", "application/json").body(s),
        };
        let what = format!("#{} {method} {path}", self.turn);
        let resp = rb.send().await.unwrap_or_else(|e| panic!("{what}: {e:?}"));
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp
            .text()
            .await
            .unwrap_or_else(|e| panic!("{what}: body: {e}"));
        // Collect every token the server hands out.
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            for key in ["token", "providerRootToken"] {
                if let Some(t) = v[key].as_str() {
                    self.note_token(t);
                    if status < 300 && !self.minted.iter().any(|x| x == t) {
                        self.minted.push(t.to_owned());
                    }
                }
            }
            if let Some(list) = v["tokens"].as_array() {
                for t in list.iter().filter_map(Value::as_str) {
                    self.note_token(t);
                }
            }
        }
        assert_eq!(status, expect, "{what}: {text}");
        self.exchanges.push(Exchange {
            what,
            status,
            headers,
            body: text.clone(),
        });
        (text, location)
    }

    /// A call whose answer carries `{"token": ...}`.
    async fn token(&mut self, method: Method, path: &str, auth: Auth<'_>) -> String {
        let (body, _) = self.call(method, path, auth, Body::None, 200).await;
        let v: Value = serde_json::from_str(&body).expect("JSON");
        v["token"].as_str().expect("token").to_owned()
    }
}

fn last_segment(location: &Option<String>) -> String {
    location
        .as_deref()
        .and_then(|l| l.rsplit('/').next())
        .expect("a Location header")
        .to_owned()
}

fn token_id(t: &str) -> String {
    String::from_utf8(wire::parse(t).expect("token").identifier).expect("utf-8 identifier")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Runs the whole lifecycle; returns the session with everything it saw.
async fn lifecycle(s: &mut Session) {
    use Auth::*;
    let admin = Basic("admin", ADMIN_PW);
    let alice = Basic(ALICE, ALICE_PW);
    let bob = Basic(BOB, BOB_PW);

    // Users, with distinctive passwords.
    let (_, loc) = s
        .call(
            Method::POST,
            "/users",
            admin,
            Body::Json(json!({ "username": ALICE, "password": ALICE_PW })),
            201,
        )
        .await;
    let alice_id = last_segment(&loc);
    s.call(
        Method::POST,
        "/users",
        admin,
        Body::Json(json!({ "username": BOB, "password": BOB_PW })),
        201,
    )
    .await;
    // 409: the name is taken (the body carried a password).
    s.call(
        Method::POST,
        "/users",
        admin,
        Body::Json(json!({ "username": ALICE, "password": ALICE_PW })),
        409,
    )
    .await;

    // Logins, right and wrong.
    for _ in 0..3 {
        s.call(Method::GET, "/user", alice, Body::None, 200).await;
    }
    for i in 0..ALICE_FAILURES {
        s.call(
            Method::GET,
            "/user",
            Basic(ALICE, &wrong_pw(i)),
            Body::None,
            401,
        )
        .await;
    }
    s.call(Method::GET, "/user", alice, Body::None, 200).await;
    s.call(
        Method::GET,
        &format!("/users/{alice_id}"),
        bob,
        Body::None,
        403,
    )
    .await;

    // Access tokens, used every way.
    let a1 = s.token(Method::POST, "/user/client_tokens", alice).await;
    let a2 = s.token(Method::POST, "/user/client_tokens", alice).await;
    s.call(Method::GET, "/user", XAuthToken(&a1), Body::None, 200)
        .await;
    s.call(Method::GET, "/user", Bearer(&a1), Body::None, 200)
        .await;
    s.call(Method::GET, "/user", Macaroon(&a2), Body::None, 200)
        .await;
    s.call(
        Method::GET,
        "/user/client_tokens",
        XAuthToken(&a1),
        Body::None,
        200,
    )
    .await;

    // A space and a group of alice's; support and space-creation tokens.
    let (_, loc) = s
        .call(
            Method::POST,
            "/user/spaces",
            alice,
            Body::Json(json!({ "name": "secret-space" })),
            201,
        )
        .await;
    let space = last_segment(&loc);
    let (_, loc) = s
        .call(
            Method::POST,
            "/user/groups",
            XAuthToken(&a1),
            Body::Json(json!({ "name": "secret-group" })),
            201,
        )
        .await;
    let group = last_segment(&loc);
    let support_path = format!("/spaces/{space}/providers/token");
    let s1 = s.token(Method::POST, &support_path, alice).await;
    let s2 = s.token(Method::POST, &support_path, XAuthToken(&a1)).await;
    let s3 = s.token(Method::POST, &support_path, Bearer(&a2)).await;
    let c1 = s
        .token(Method::GET, &format!("/groups/{group}/spaces/token"), alice)
        .await;
    s.call(
        Method::GET,
        &format!("/spaces/{space}/tokens"),
        alice,
        Body::None,
        200,
    )
    .await;

    // A provider: its root token.
    let (body, _) = s
        .call(
            Method::POST,
            "/providers",
            admin,
            Body::Json(json!({ "name": "p-secrets", "domain": "p.example" })),
            201,
        )
        .await;
    let provider: Value = serde_json::from_str(&body).expect("JSON");
    let p = provider["providerRootToken"]
        .as_str()
        .expect("root token")
        .to_owned();
    s.call(Method::GET, "/providers", admin, Body::None, 200)
        .await;

    // Consumption: once, then refused.
    s.call(
        Method::POST,
        "/provider/spaces/support",
        XAuthToken(&p),
        Body::Json(json!({ "token": s1, "size": 1000 })),
        201,
    )
    .await;
    s.call(
        Method::POST,
        "/provider/spaces/support",
        Bearer(&p),
        Body::Json(json!({ "token": s1, "size": 1000 })),
        400,
    )
    .await;
    s.call(
        Method::POST,
        "/provider/spaces",
        XAuthToken(&p),
        Body::Json(json!({ "name": "by-provider", "token": c1, "size": "500" })),
        201,
    )
    .await;
    s.call(
        Method::GET,
        &format!("/spaces/{space}/providers"),
        XAuthToken(&a1),
        Body::None,
        200,
    )
    .await;

    // Revocation: by identifier, and by the whole token in the path.
    s.call(
        Method::DELETE,
        &format!("/tokens/{}", token_id(&s2)),
        alice,
        Body::None,
        204,
    )
    .await;
    s.call(
        Method::DELETE,
        &format!("/tokens/{s3}"),
        alice,
        Body::None,
        204,
    )
    .await;
    s.call(
        Method::POST,
        "/provider/spaces/support",
        XAuthToken(&p),
        Body::Json(json!({ "token": s2, "size": 1 })),
        400,
    )
    .await;

    // Examination.
    s.call(
        Method::POST,
        "/tokens/examine",
        alice,
        Body::Json(json!({ "token": a1 })),
        200,
    )
    .await;
    s.call(
        Method::POST,
        "/tokens/examine",
        alice,
        Body::Json(json!({ "token": s2 })),
        200,
    )
    .await;
    s.call(
        Method::POST,
        "/tokens/examine",
        alice,
        Body::Json(json!({ "token": "garbage-token-not-a-macaroon" })),
        400,
    )
    .await;
    s.call(
        Method::POST,
        "/tokens/examine",
        bob,
        Body::Json(json!({ "token": a1 })),
        403,
    )
    .await;

    // Attenuation: narrower, still usable; cannot mint access tokens.
    let a1x = wire::attenuate(&a1, &format!("time < {}", now() + 3600)).expect("attenuate");
    s.note_token(&a1x);
    s.call(Method::GET, "/user", XAuthToken(&a1x), Body::None, 200)
        .await;
    s.call(
        Method::POST,
        "/user/client_tokens",
        XAuthToken(&a1x),
        Body::None,
        403,
    )
    .await;
    let px = wire::attenuate(&p, "color = red").expect("attenuate");
    s.call(Method::GET, "/providers", XAuthToken(&px), Body::None, 401)
        .await;

    // Garbage and damaged tokens.
    let truncated = a1[..a1.len() - 9].to_owned();
    let mut tampered = a1.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let huge = "A".repeat(9000);
    for t in [
        "garbage-token-not-a-macaroon",
        truncated.as_str(),
        tampered.as_str(),
        s1.as_str(),
        c1.as_str(),
        huge.as_str(),
    ] {
        s.call(Method::GET, "/user", XAuthToken(t), Body::None, 401)
            .await;
    }
    s.call(Method::GET, "/user", Bearer(&tampered), Body::None, 401)
        .await;

    // Every kind of error.
    // 400: malformed JSON, unknown fields, conflicting or malformed credentials.
    s.call(
        Method::POST,
        "/users",
        admin,
        Body::Raw(format!(
            "{{\"username\":\"carl\",\"password\":\"{ALICE_PW}\",}}"
        )),
        400,
    )
    .await;
    s.call(
        Method::POST,
        "/users",
        admin,
        Body::Raw(format!("{{\"username\":\"carl\",\"password\":\"{BOB_PW}")),
        400,
    )
    .await;
    s.call(
        Method::POST,
        "/users",
        admin,
        Body::Json(json!({ "username": "carl", "password": ALICE_PW, "pasword": ALICE_PW })),
        400,
    )
    .await;
    s.call(
        Method::POST,
        "/users",
        admin,
        Body::Json(json!({ "username": "carl", "password": 12345 })),
        400,
    )
    .await;
    s.call(
        Method::GET,
        "/user",
        Both((ALICE, ALICE_PW), &a1),
        Body::None,
        400,
    )
    .await;
    let password_only = format!("Basic {}", STANDARD.encode(ALICE_PW));
    s.call(Method::GET, "/user", Raw(&password_only), Body::None, 400)
        .await;
    let not_base64 = format!("Basic {ALICE_PW}:{ALICE}");
    s.call(Method::GET, "/user", Raw(&not_base64), Body::None, 400)
        .await;
    let wrong_scheme = format!("Token {a1}");
    s.call(Method::GET, "/user", Raw(&wrong_scheme), Body::None, 400)
        .await;
    s.call(
        Method::POST,
        "/provider/spaces/support",
        XAuthToken(&p),
        Body::Json(json!({ "token": s1, "size": a1 })),
        400,
    )
    .await;
    // 401.
    s.call(Method::POST, &support_path, None, Body::None, 401)
        .await;
    // 403.
    s.call(Method::POST, &support_path, bob, Body::None, 403)
        .await;
    s.call(
        Method::POST,
        "/providers",
        alice,
        Body::Json(json!({ "name": "nope", "domain": "nope.example" })),
        403,
    )
    .await;
    s.call(
        Method::POST,
        "/provider/spaces/support",
        alice,
        Body::Json(json!({ "token": s1, "size": 1 })),
        403,
    )
    .await;
    // 404.
    let unknown = ozmint::Id::random();
    s.call(
        Method::POST,
        &format!("/spaces/{unknown}/providers/token"),
        alice,
        Body::None,
        404,
    )
    .await;
    s.call(
        Method::GET,
        "/no/such/route/at/all/here",
        alice,
        Body::None,
        404,
    )
    .await;
    // 405.
    s.call(Method::GET, &support_path, alice, Body::None, 405)
        .await;
    // 413: a body over the limit, with a password in it.
    let big =
        json!({ "username": "big", "password": format!("{ALICE_PW}{}", "x".repeat(70 * 1024)) });
    s.call(Method::POST, "/users", admin, Body::Json(big), 413)
        .await;
    // 429: failed logins for one name until it is throttled.
    for i in 0..LOGIN_FAILURES {
        s.call(
            Method::GET,
            "/user",
            Basic(MALLORY, &wrong_pw(100 + i)),
            Body::None,
            401,
        )
        .await;
    }
    s.call(
        Method::GET,
        "/user",
        Basic(MALLORY, &wrong_pw(200)),
        Body::None,
        429,
    )
    .await;

    // Root keys: rotate, mint under the new key, list, retire the old one.
    s.call(Method::POST, "/keys", admin, Body::None, 201).await;
    s.call(Method::GET, "/keys", admin, Body::None, 200).await;
    let s4 = s.token(Method::POST, &support_path, alice).await;
    let a3 = s.token(Method::POST, "/user/client_tokens", alice).await;
    s.call(Method::GET, "/user", XAuthToken(&a1), Body::None, 200)
        .await;
    s.call(
        Method::POST,
        "/tokens/examine",
        XAuthToken(&a3),
        Body::Json(json!({ "token": s4 })),
        200,
    )
    .await;
    s.call(Method::POST, "/keys/1/retire", admin, Body::None, 204)
        .await;
    s.call(Method::GET, "/user", XAuthToken(&a1), Body::None, 401)
        .await;
    s.call(Method::POST, "/keys/2/retire", admin, Body::None, 409)
        .await;

    // Password change: wrong old password first.
    s.call(
        Method::PATCH,
        "/user/password",
        XAuthToken(&a3),
        Body::Json(json!({ "oldPassword": wrong_pw(300), "newPassword": ALICE_PW2 })),
        403,
    )
    .await;
    s.call(
        Method::PATCH,
        "/user/password",
        alice,
        Body::Json(json!({ "oldPassword": ALICE_PW, "newPassword": ALICE_PW2 })),
        204,
    )
    .await;
    s.call(Method::GET, "/user", alice, Body::None, 401).await;
    s.call(
        Method::GET,
        "/user",
        Basic(ALICE, ALICE_PW2),
        Body::None,
        200,
    )
    .await;

    // Deleting an access token, named by the whole token.
    s.call(
        Method::DELETE,
        &format!("/user/client_tokens/{a2}"),
        Basic(ALICE, ALICE_PW2),
        Body::None,
        202,
    )
    .await;
    s.call(Method::GET, "/user", XAuthToken(&a2), Body::None, 401)
        .await;
    s.note_token(&truncated);
    s.note_token(&tampered);
}

// ---------------------------------------------------------------------------
// Needles: every secret in every usual encoding.
// ---------------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The usual text forms of secret bytes.
fn byte_forms(bytes: &[u8]) -> Vec<String> {
    let mut v = vec![
        hex(bytes),
        hex(bytes).to_uppercase(),
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
        wire::escape(&URL_SAFE_NO_PAD.encode(bytes)),
        format!("{bytes:?}"),
    ];
    v.sort();
    v.dedup();
    v
}

/// The text forms of a whole token: as sent, unescaped, and re-encoded.
fn token_forms(t: &str) -> Vec<String> {
    let mut v = vec![t.to_owned()];
    let plain = wire::unescape(t).unwrap_or_else(|| t.to_owned());
    v.push(plain.clone());
    if let Ok(bin) = URL_SAFE_NO_PAD.decode(plain.trim_end_matches('=')) {
        v.push(STANDARD.encode(&bin));
        v.push(STANDARD_NO_PAD.encode(&bin));
        v.push(URL_SAFE.encode(&bin));
        v.push(URL_SAFE_NO_PAD.encode(&bin));
    }
    v.sort();
    v.dedup();
    v
}

struct Needle {
    label: String,
    text: String,
}

fn push(needles: &mut Vec<Needle>, label: impl Into<String>, forms: Vec<String>) {
    let label = label.into();
    for text in forms {
        needles.push(Needle {
            label: label.clone(),
            text,
        });
    }
}

/// Every secret of the run, read back from the stopped store where needed.
async fn needles(s: &Session, data_dir: &Path) -> Vec<Needle> {
    let mut out = Vec::new();
    let mut passwords = vec![
        ADMIN_PW.to_owned(),
        ALICE_PW.to_owned(),
        ALICE_PW2.to_owned(),
        BOB_PW.to_owned(),
    ];
    passwords.extend((0..ALICE_FAILURES).map(wrong_pw));
    passwords.extend((100..100 + LOGIN_FAILURES).map(wrong_pw));
    passwords.push(wrong_pw(200));
    passwords.push(wrong_pw(300));
    for p in &passwords {
        push(&mut out, format!("password {p}"), vec![p.clone()]);
        push(
            &mut out,
            format!("password {p} (base64)"),
            vec![STANDARD.encode(p), URL_SAFE_NO_PAD.encode(p)],
        );
    }
    for h in &s.basic_headers {
        let mut forms = vec![h.clone()];
        if let Some((_, b64)) = h.split_once(' ') {
            if b64.len() >= 12 {
                forms.push(b64.to_owned());
            }
        }
        push(&mut out, format!("Authorization header {h}"), forms);
    }

    // The store: password hashes, root keys, token records.
    let store = open_stopped_store(data_dir).await;
    for name in ["admin", ALICE, BOB] {
        let (_, user) = store
            .user_by_name(name)
            .await
            .expect("read user")
            .unwrap_or_else(|| panic!("user {name}"));
        let phc = user.password_hash.clone();
        assert!(phc.starts_with("$argon2"), "a PHC string");
        let mut forms = vec![phc.clone()];
        if let Some(hash) = phc.rsplit('$').next() {
            forms.push(hash.to_owned());
        }
        push(&mut out, format!("password hash of {name}"), forms);
    }
    // Every root key, retired ones included (key 1 was retired).
    let mut roots: Vec<(u32, RootKey)> = Vec::new();
    for info in store.root_keys().await.expect("root keys").list() {
        let key = store
            .get(&ROOT_KEYS, &info.id)
            .await
            .expect("read a root key")
            .unwrap_or_else(|| panic!("root key {} is stored", info.id));
        roots.push((info.id, key));
    }
    assert!(roots.len() >= 2, "rotation added a key");
    for (id, key) in &roots {
        push(&mut out, format!("root key {id}"), byte_forms(&key.secret));
    }
    assert!(s.tokens.len() >= 10, "tokens seen: {}", s.tokens.len());
    assert!(s.minted.len() >= 8, "tokens minted: {}", s.minted.len());
    // Control: the root keys read back really signed the minted tokens, so
    // the per-token secrets and chains below are the real ones.
    for t in &s.minted {
        let raw = wire::parse(t).expect("a minted token parses");
        assert!(
            roots.iter().any(|(_, key)| wire::signature_matches(
                &raw,
                &keys::derive(&key.secret, &raw.identifier)
            )),
            "a root key reproduces the signature of every minted token"
        );
    }
    for t in &s.tokens {
        if t.len() < 20 {
            continue;
        }
        let short = &t[..16];
        push(&mut out, format!("token {short}..."), token_forms(t));
        let Ok(raw) = wire::parse(t) else { continue };
        push(
            &mut out,
            format!("signature of token {short}..."),
            byte_forms(&raw.signature),
        );
        // Per-token secrets under every root key, the libmacaroons signing
        // key, and every intermediate signature of the chain (each one lets
        // its holder forge tokens).
        for (id, key) in &roots {
            let secret = keys::derive(&key.secret, &raw.identifier);
            push(
                &mut out,
                format!("secret of token {short}... under key {id}"),
                byte_forms(&secret),
            );
            push(
                &mut out,
                format!("signing key of token {short}... under key {id}"),
                byte_forms(&wire::derived_key(&secret)),
            );
            for k in 0..=raw.caveats.len() {
                let sig = wire::signature(&secret, &raw.identifier, &raw.caveats[..k]);
                push(
                    &mut out,
                    format!("chain signature {k} of token {short}... under key {id}"),
                    byte_forms(&sig),
                );
            }
        }
    }
    out
}

/// Where a needle occurs in a haystack, with a little context.
fn find(hay: &str, needle: &str) -> Option<String> {
    let at = hay.find(needle)?;
    let start = hay[..at].char_indices().rev().nth(60).map_or(0, |(i, _)| i);
    let end = (at + needle.len() + 60).min(hay.len());
    let end = (end..=hay.len())
        .find(|&i| hay.is_char_boundary(i))
        .unwrap_or(hay.len());
    Some(hay[start..end].to_owned())
}

async fn run_lifecycle_and_search(json_logs: bool) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let data_s = data.to_str().expect("utf-8 path");
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--data",
        data_s,
        "--log-level",
        "trace",
    ];
    if json_logs {
        args.extend(["--log-format", "json"]);
    }
    let failures = LOGIN_FAILURES.to_string();
    let mut server = Server::start(
        tmp.path(),
        &args,
        &[
            ("OZMINT_ADMIN_PASSWORD", ADMIN_PW),
            ("OZMINT_LIMITS__LOGIN_FAILURES", &failures),
        ],
    );

    let mut s = Session::new(server.addr());
    lifecycle(&mut s).await;
    let requests = s.exchanges.len();
    // Close the clients' connections before stopping.
    s.h1 = reqwest::Client::new();
    s.h2 = reqwest::Client::new();
    let status = server.terminate(EXIT_DEADLINE).await;
    assert_eq!(status.code(), Some(0), "exit status");

    let stdout = server.stdout.join("\n");
    let stderr_raw = server.stderr();
    let stderr = strip_ansi(&stderr_raw);

    // The logs are not empty: request lines and many more verbose ones.
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let level_of = |l: &str| -> String {
        if json_logs {
            serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
                ["level"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        } else {
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
                .into_iter()
                .find(|lv| l.contains(&format!(" {lv} ")))
                .unwrap_or("")
                .to_owned()
        }
    };
    let verbose = lines
        .iter()
        .filter(|l| matches!(level_of(l).as_str(), "TRACE" | "DEBUG"))
        .count();
    let request_lines = lines
        .iter()
        .filter(|l| {
            if json_logs {
                serde_json::from_str::<Value>(l).is_ok_and(|v| v["message"] == "request")
            } else {
                l.contains("request_id=")
            }
        })
        .count();
    eprintln!(
        "{} log lines: {request_lines} request lines, {verbose} trace/debug lines; {requests} requests",
        lines.len()
    );
    assert_eq!(request_lines, requests, "one request line per request");
    assert!(
        verbose > 0 && lines.len() > request_lines,
        "trace/debug lines beyond the request lines"
    );

    // Search.
    let needles = needles(&s, &data).await;
    let errors: Vec<&Exchange> = s.exchanges.iter().filter(|e| e.status >= 300).collect();
    assert!(
        errors.len() >= 30,
        "many error answers were produced: {}",
        errors.len()
    );
    for code in [400, 401, 403, 404, 405, 409, 413, 429] {
        assert!(
            errors.iter().any(|e| e.status == code),
            "an error answer with status {code}"
        );
    }
    // Control: the search does find the token needles where tokens are
    // expected (the successful answers that hand them out).
    let in_success = needles
        .iter()
        .filter(|n| n.label.starts_with("token "))
        .filter(|n| {
            s.exchanges
                .iter()
                .any(|e| e.status < 300 && e.body.contains(&n.text))
        })
        .count();
    assert!(
        in_success >= s.minted.len(),
        "the minted tokens are found in the answers that carry them ({in_success})"
    );
    let mut hits: Vec<String> = Vec::new();
    let mut report = |place: &str, hay: &str| {
        for n in &needles {
            if let Some(ctx) = find(hay, &n.text) {
                hits.push(format!("{} in {place}: ...{ctx}...", n.label));
            }
        }
    };
    report("stdout", &stdout);
    report("stderr", &stderr_raw);
    report("stderr (ANSI stripped)", &stderr);
    for e in &errors {
        report(&format!("the {} body of {}", e.status, e.what), &e.body);
        for (k, v) in &e.headers {
            report(&format!("header {k} of the {} of {}", e.status, e.what), v);
        }
    }
    hits.sort();
    hits.dedup();
    assert!(
        hits.is_empty(),
        "{} secret(s) leaked ({} needles searched):\n{}",
        hits.len(),
        needles.len(),
        hits.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_trace_logs_or_error_bodies_human_format() {
    run_lifecycle_and_search(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_trace_logs_or_error_bodies_json_format() {
    run_lifecycle_and_search(true).await;
}
