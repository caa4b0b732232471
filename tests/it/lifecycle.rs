//! The token lifecycle through HTTPS: access tokens, holder attenuation and
//! tampering, provider registration, support and space-creation consumption,
//! the issuer's privilege at consumption, double spending (HTTP/1.1 and
//! HTTP/2), revocation, expiry and purging, examination, root key rotation
//! and a restart in the middle of it all.
//!
//! Library calls are only used to set up state or to look into the store;
//! every operation under test goes through an in-process HTTPS server on
//! 127.0.0.1. Every test is bounded by [`testkit::server::TEST_LIMIT`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::{Client, Method, StatusCode, Version};
use serde_json::{json, Value};
use tempfile::TempDir;

use ozmint::config::Config;
use ozmint::http::App;
use ozmint::model::{GroupPrivileges, SpacePrivileges, Support, TokenRecord, TokenState};
use ozmint::serve::{Bootstrap, Running};
use ozmint::store::{GROUP_USERS_REL, SPACE_GROUPS_REL, SPACE_PROVIDERS_REL};
use ozmint::{DurabilityMode, Entity, Id, Store, Subject, TokenKind};
use testkit::onedata::{escape, unescape};
use testkit::server::{
    bounded, client, client_builder, id, open_store_within, unix_now, ADMIN_ID, CAROL_ID,
    DEMO_GROUP, DEMO_SPACE, GUEST_ID, PREFIX,
};

// ---------------------------------------------------------------------------
// The demo data set and limits.
// ---------------------------------------------------------------------------

const SPACE: &str = DEMO_SPACE;
const GROUP: &str = DEMO_GROUP;

const ADMIN: Cred<'static> = Cred::Basic("admin", "password");
const GUEST: Cred<'static> = Cred::Basic("guest", "guest");
const CAROL: Cred<'static> = Cred::Basic("carol", "carol");

/// Concurrent consumers in the double-spend tests.
const RACERS: usize = 32;
/// Trials of each double-spend test.
const TRIALS: usize = 5;

// ---------------------------------------------------------------------------
// The token wire format, handled independently of the crate.
// ---------------------------------------------------------------------------

/// The V1 binary form of an escaped token.
fn token_bin(token: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(unescape(token))
        .expect("the un-escaped token is base64url without padding")
}

/// V1 packets `(key, value)` of a binary macaroon.
fn packets(bin: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bin;
    while !rest.is_empty() {
        let len = usize::from_str_radix(std::str::from_utf8(&rest[..4]).expect("hex"), 16)
            .expect("packet length");
        assert!(len > 5 && len <= rest.len(), "packet length {len} fits");
        let body = &rest[4..len];
        assert_eq!(body.last(), Some(&b'\n'), "a packet ends with a newline");
        let body = &body[..body.len() - 1];
        let sp = body.iter().position(|&b| b == b' ').expect("key value");
        out.push((
            String::from_utf8(body[..sp].to_vec()).expect("utf-8 key"),
            body[sp + 1..].to_vec(),
        ));
        rest = &rest[len..];
    }
    out
}

/// Rebuilds a binary macaroon from packets.
fn unpackets(ps: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in ps {
        let size = 4 + k.len() + 1 + v.len() + 1;
        out.extend_from_slice(format!("{size:04x}").as_bytes());
        out.extend_from_slice(k.as_bytes());
        out.push(b' ');
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

/// The escaped wire form of a binary macaroon.
fn bin_token(bin: &[u8]) -> String {
    escape(&URL_SAFE_NO_PAD.encode(bin))
}

/// The 43-character identifier of a token, read from its packets.
fn tid(token: &str) -> String {
    let ps = packets(&token_bin(token));
    let (_, v) = ps
        .iter()
        .find(|(k, _)| k == "identifier")
        .expect("an identifier packet");
    let s = String::from_utf8(v.clone()).expect("ascii identifier");
    assert_eq!(s.len(), 43, "identifier {s}");
    s
}

/// The first-party caveats of a token, as text.
fn caveats(token: &str) -> Vec<String> {
    packets(&token_bin(token))
        .into_iter()
        .filter(|(k, _)| k == "cid")
        .map(|(_, v)| String::from_utf8(v).expect("utf-8 caveat"))
        .collect()
}

// ---------------------------------------------------------------------------
// The in-process server and the HTTP client.
// ---------------------------------------------------------------------------

/// A credential presented with a request.
#[derive(Clone, Copy, Debug)]
enum Cred<'a> {
    None,
    Basic(&'a str, &'a str),
    XAuth(&'a str),
    Bearer(&'a str),
    Macaroon(&'a str),
}

/// A response, read completely.
#[derive(Debug)]
struct R {
    status: StatusCode,
    version: Version,
    location: Option<String>,
    text: String,
    json: Value,
}

impl R {
    /// Asserts the status; for errors also the JSON error body and, if
    /// given, the `error` code.
    #[track_caller]
    fn expect(&self, status: u16, code: Option<&str>, what: &str) -> &Self {
        assert_eq!(self.status.as_u16(), status, "{what}: body {}", self.text);
        if status >= 400 {
            assert!(
                self.json["error"].as_str().is_some_and(|e| !e.is_empty())
                    && self.json["error_description"].is_string(),
                "{what}: error body {}",
                self.text
            );
            if let Some(code) = code {
                assert_eq!(
                    self.json["error"], code,
                    "{what}: error code in {}",
                    self.text
                );
            }
        }
        self
    }

    fn description(&self) -> String {
        self.json["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

async fn read(resp: reqwest::Response) -> R {
    let status = resp.status();
    let version = resp.version();
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|v| v.to_str().expect("ascii Location").to_owned());
    let text = resp.text().await.expect("response body");
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    R {
        status,
        version,
        location,
        text,
        json,
    }
}

fn config_for(dir: &Path, durability: DurabilityMode) -> Config {
    let mut config = Config {
        data_dir: dir.into(),
        listen: "127.0.0.1:0".parse().expect("listen address"),
        demo: true,
        durability,
        ..Default::default()
    };
    config.limits.shutdown_grace_ms = 2_000;
    config
}

struct Server {
    running: Running,
    client: Client,
    base: String,
    boot: Bootstrap,
}

/// Starts a server on `dir` (the demo data set if the store is empty).
async fn start(dir: &Path, durability: DurabilityMode) -> Server {
    let config = config_for(dir, durability);
    let store = open_store_within(&config, Duration::from_secs(20)).await;
    let boot = ozmint::serve::bootstrap(&store, true, None)
        .await
        .expect("bootstrap");
    let running = ozmint::serve::start(&config, store, std::future::pending())
        .await
        .expect("the server starts");
    assert!(running.addr.ip().is_loopback());
    let base = format!("https://127.0.0.1:{}", running.addr.port());
    Server {
        running,
        client: client(),
        base,
        boot,
    }
}

async fn start_demo() -> (TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), DurabilityMode::Relaxed).await;
    assert_eq!(server.boot, Bootstrap::Demo);
    (dir, server)
}

impl Server {
    fn app(&self) -> &Arc<App> {
        &self.running.app
    }

    fn store(&self) -> &Arc<Store> {
        self.running.app.zone.store()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{PREFIX}{path}", self.base)
    }

    async fn call_with(
        &self,
        client: &Client,
        method: Method,
        path: &str,
        cred: Cred<'_>,
        body: Option<&Value>,
    ) -> R {
        let mut req = client.request(method.clone(), self.url(path));
        req = match cred {
            Cred::None => req,
            Cred::Basic(u, p) => req.basic_auth(u, Some(p)),
            Cred::XAuth(t) => req.header("X-Auth-Token", t),
            Cred::Bearer(t) => req.bearer_auth(t),
            Cred::Macaroon(t) => req.header("macaroon", t),
        };
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        read(resp).await
    }

    async fn call(&self, method: Method, path: &str, cred: Cred<'_>, body: Option<&Value>) -> R {
        self.call_with(&self.client, method, path, cred, body).await
    }

    async fn get(&self, path: &str, cred: Cred<'_>) -> R {
        self.call(Method::GET, path, cred, None).await
    }

    async fn post(&self, path: &str, cred: Cred<'_>, body: Option<&Value>) -> R {
        self.call(Method::POST, path, cred, body).await
    }

    async fn delete(&self, path: &str, cred: Cred<'_>) -> R {
        self.call(Method::DELETE, path, cred, None).await
    }

    /// Asserts a 200 `{"token": ...}` and returns the token.
    #[track_caller]
    fn token_of(r: &R, what: &str) -> String {
        r.expect(200, None, what);
        let obj = r.json.as_object().expect("a JSON object");
        assert_eq!(obj.len(), 1, "{what}: only `token` in {}", r.text);
        let t = obj["token"].as_str().expect("a string token").to_owned();
        assert!(!t.is_empty());
        t
    }

    /// A support token for `space`, minted through HTTPS.
    async fn support_token_for(&self, space: &str, cred: Cred<'_>) -> String {
        let r = self
            .post(&format!("/spaces/{space}/providers/token"), cred, None)
            .await;
        Self::token_of(&r, "minting a support token")
    }

    /// A support token for the demo space, minted through HTTPS.
    async fn support_token(&self, cred: Cred<'_>) -> String {
        self.support_token_for(SPACE, cred).await
    }

    /// A space creation token for the demo group, minted through HTTPS.
    async fn create_token(&self, cred: Cred<'_>) -> String {
        let r = self
            .get(&format!("/groups/{GROUP}/spaces/token"), cred)
            .await;
        Self::token_of(&r, "minting a space creation token")
    }

    /// A user access token, minted through HTTPS.
    async fn access_token(&self, cred: Cred<'_>) -> String {
        let r = self.post("/user/client_tokens", cred, None).await;
        Self::token_of(&r, "minting an access token")
    }

    /// Registers a provider as admin; returns its id and root token.
    async fn provider(&self, name: &str) -> (String, String) {
        let body = json!({ "name": name, "domain": format!("{name}.example") });
        let r = self.post("/providers", ADMIN, Some(&body)).await;
        r.expect(201, None, "registering a provider");
        let pid = r.json["providerId"]
            .as_str()
            .expect("providerId")
            .to_owned();
        let token = r.json["providerRootToken"]
            .as_str()
            .expect("providerRootToken")
            .to_owned();
        assert_eq!(pid.len(), 43, "provider id {pid}");
        assert_eq!(r.location.as_deref(), Some(&*format!("/providers/{pid}")));
        (pid, token)
    }

    /// `POST /provider/spaces/support` with a raw JSON body.
    async fn support_raw(&self, provider_token: &str, body: &Value) -> R {
        self.post(
            "/provider/spaces/support",
            Cred::XAuth(provider_token),
            Some(body),
        )
        .await
    }

    /// `POST /provider/spaces/support {"token": T, "size": size}`.
    async fn support(&self, provider_token: &str, token: &str, size: Value) -> R {
        self.support_raw(provider_token, &json!({ "token": token, "size": size }))
            .await
    }

    /// `POST /provider/spaces {"name": name, "token": T, "size": size}`.
    async fn create_space(&self, provider_token: &str, name: &str, token: &str, size: Value) -> R {
        let body = json!({ "name": name, "token": token, "size": size });
        self.post("/provider/spaces", Cred::XAuth(provider_token), Some(&body))
            .await
    }

    /// The providers of a space and their sizes, as admin.
    async fn space_supports(&self, space: &str) -> Vec<(String, u64)> {
        let r = self.get(&format!("/spaces/{space}/providers"), ADMIN).await;
        r.expect(200, None, "listing the providers of a space");
        let ids: Vec<String> = r.json["providers"]
            .as_array()
            .expect("providers array")
            .iter()
            .map(|v| v.as_str().expect("provider id").to_owned())
            .collect();
        ids.into_iter()
            .map(|p| {
                let size = r.json["providersSupports"][&p]
                    .as_u64()
                    .unwrap_or_else(|| panic!("size of {p} in {}", r.text));
                (p, size)
            })
            .collect()
    }

    /// The stored record of a token.
    async fn record(&self, token: &str) -> Option<TokenRecord> {
        self.store()
            .token(&id(&tid(token)))
            .await
            .expect("reading a token record")
    }

    /// Stops the server (dropping the client first so idle keep-alive
    /// connections do not hold the graceful shutdown).
    async fn stop(self) {
        let Server {
            running, client, ..
        } = self;
        drop(client);
        tokio::time::timeout(Duration::from_secs(30), running.stop())
            .await
            .expect("the server stops within 30 s")
            .expect("the server stops cleanly");
    }
}

// ---------------------------------------------------------------------------
// Access tokens.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_tokens_authenticate_list_and_revoke() {
    bounded(async {
        let (_dir, s) = start_demo().await;
        let token = s.access_token(ADMIN).await;
        assert_eq!(
            caveats(&token),
            vec![
                "tokenType = access_token".to_owned(),
                format!(
                    "time < {}",
                    s.record(&token).await.expect("a record").expires
                )
            ]
        );

        // Accepted in each of the three token headers: mint a support token with it.
        for cred in [
            Cred::XAuth(&token),
            Cred::Bearer(&token),
            Cred::Macaroon(&token),
        ] {
            let t = s.support_token(cred).await;
            assert_eq!(
                s.record(&t).await.expect("record").issuer,
                Subject::User(id(ADMIN_ID)),
                "{cred:?}"
            );
        }
        // Two credentials at once are refused.
        let resp = s
            .client
            .get(s.url("/user/client_tokens"))
            .basic_auth("admin", Some("password"))
            .header("X-Auth-Token", &token)
            .send()
            .await
            .expect("request");
        read(resp)
            .await
            .expect(400, None, "Basic and a token at once");

        // Listed, exactly as it was minted.
        let r = s.get("/user/client_tokens", ADMIN).await;
        r.expect(200, None, "listing client tokens");
        let listed: Vec<&str> = r.json["tokens"]
            .as_array()
            .expect("tokens array")
            .iter()
            .map(|v| v.as_str().expect("string"))
            .collect();
        assert!(listed.contains(&token.as_str()), "{listed:?}");
        // Not in another user's list.
        let r = s.get("/user/client_tokens", GUEST).await;
        r.expect(200, None, "guest's client tokens");
        assert!(!r.text.contains(&token), "{}", r.text);

        // Verified by the library: the identifier is the token id.
        let t_id = s
            .app()
            .zone
            .verify(&token)
            .await
            .expect("verifies")
            .id
            .to_string();
        assert_eq!(t_id, tid(&token));

        // Another user cannot delete it: 404, and it keeps working.
        let r = s
            .delete(&format!("/user/client_tokens/{t_id}"), GUEST)
            .await;
        r.expect(404, Some("not_found"), "guest deleting admin's token");
        s.get("/user/client_tokens", Cred::XAuth(&token))
            .await
            .expect(200, None, "the token after guest's attempt");
        // A malformed id is a 400, an unknown one a 404.
        s.delete("/user/client_tokens/nope", ADMIN)
            .await
            .expect(400, None, "malformed token id");
        let unknown = Id::random().to_string();
        s.delete(&format!("/user/client_tokens/{unknown}"), ADMIN)
            .await
            .expect(404, Some("not_found"), "unknown token id");

        // The owner deletes it: 202, and the very next request with it is a 401.
        let r = s
            .delete(&format!("/user/client_tokens/{t_id}"), ADMIN)
            .await;
        r.expect(202, None, "deleting the access token");
        for cred in [
            Cred::XAuth(&token),
            Cred::Bearer(&token),
            Cred::Macaroon(&token),
        ] {
            let r = s.get("/user/client_tokens", cred).await;
            r.expect(401, Some("invalid_token"), "a deleted access token");
            assert!(r.description().contains("revoked"), "{}", r.text);
        }
        assert!(matches!(
            s.record(&token).await.expect("record").state,
            TokenState::Revoked { .. }
        ));
        // Attenuated copies die with it.
        let copy = ozmint::token::wire::attenuate(&token, &format!("time < {}", unix_now() + 600))
            .expect("attenuate");
        s.get("/user/client_tokens", Cred::XAuth(&copy))
            .await
            .expect(
                401,
                Some("invalid_token"),
                "an attenuated copy of a deleted token",
            );
        // No longer listed.
        let r = s.get("/user/client_tokens", ADMIN).await;
        assert!(!r.text.contains(&token), "{}", r.text);

        // A provider token authenticates a provider, not a user: 403 on user endpoints.
        let (_pid, ptoken) = s.provider("acc").await;
        s.get("/user/client_tokens", Cred::XAuth(&ptoken))
            .await
            .expect(403, Some("forbidden"), "provider token on a user endpoint");
        s.post("/user/client_tokens", Cred::Bearer(&ptoken), None)
            .await
            .expect(403, Some("forbidden"), "provider minting an access token");
        s.post(
            &format!("/spaces/{SPACE}/providers/token"),
            Cred::XAuth(&ptoken),
            None,
        )
        .await
        .expect(403, Some("forbidden"), "provider minting a support token");

        // Invite tokens are not access tokens: 401.
        let invite = s.support_token(ADMIN).await;
        let create = s.create_token(ADMIN).await;
        for t in [&invite, &create] {
            for cred in [Cred::XAuth(t), Cred::Bearer(t), Cred::Macaroon(t)] {
                s.get("/user/client_tokens", cred).await.expect(
                    401,
                    Some("invalid_token"),
                    "an invite token as an access token",
                );
            }
        }
        // ... and they stay usable for what they are.
        s.support(&ptoken, &invite, json!(10)).await.expect(
            201,
            None,
            "the invite after its misuse",
        );

        s.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// Attenuation by a holder, and tampering.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attenuation_by_a_holder_and_tampering() {
    use ozmint::token::wire::attenuate;
    bounded(async {
        let (_dir, s) = start_demo().await;
        let token = s.access_token(ADMIN).await;
        let later = unix_now() + 3600;
        let earlier = unix_now() - 10;
        let sref = &s;
        let ok = |t: String| async move { sref.get("/user", Cred::XAuth(&t)).await };

        // A future time caveat: accepted, escaped and plain.
        let future = attenuate(&token, &format!("time < {later}")).expect("attenuate");
        assert_ne!(future, token);
        assert_eq!(
            caveats(&future).last().map(String::as_str),
            Some(&*format!("time < {later}"))
        );
        ok(future.clone())
            .await
            .expect(200, None, "attenuated (future) token, escaped");
        let plain = unescape(&future);
        ok(plain.clone())
            .await
            .expect(200, None, "attenuated (future) token, plain base64url");
        s.get("/user", Cred::Bearer(&plain)).await.expect(
            200,
            None,
            "plain attenuated token as Bearer",
        );
        // Two attenuations stack.
        let twice = attenuate(&future, &format!("time < {}", later + 60)).expect("attenuate");
        ok(twice).await.expect(200, None, "twice attenuated token");

        // A past time caveat: 401.
        let past = attenuate(&token, &format!("time < {earlier}")).expect("attenuate");
        let r = ok(past.clone()).await;
        r.expect(401, Some("invalid_token"), "attenuated (past) token");
        assert!(r.description().contains("expired"), "{}", r.text);
        ok(unescape(&past)).await.expect(
            401,
            Some("invalid_token"),
            "attenuated (past) token, plain",
        );

        // A caveat the server does not understand: 401.
        let colour = attenuate(&token, "colour = blue").expect("attenuate");
        let r = ok(colour.clone()).await;
        r.expect(401, Some("invalid_token"), "unknown caveat");
        assert!(r.description().contains("caveat"), "{}", r.text);
        ok(unescape(&colour))
            .await
            .expect(401, Some("invalid_token"), "unknown caveat, plain");
        // A caveat changing the type: 401.
        let retyped = attenuate(&token, "tokenType = provider_token").expect("attenuate");
        ok(retyped)
            .await
            .expect(401, Some("invalid_token"), "conflicting type caveat");

        // Plain forms of many fresh tokens all work (the un-escaping fallback).
        for _ in 0..20 {
            let t = s.access_token(ADMIN).await;
            ok(unescape(&t))
                .await
                .expect(200, None, "plain access token");
            let a = attenuate(&t, &format!("time < {later}")).expect("attenuate");
            ok(unescape(&a))
                .await
                .expect(200, None, "plain attenuated access token");
        }

        // Tampering: flip a signature byte.
        let bin = token_bin(&future);
        let ps = packets(&bin);
        assert_eq!(ps.last().map(|p| p.0.as_str()), Some("signature"));
        assert_eq!(ps.last().map(|p| p.1.len()), Some(32));
        assert_eq!(
            bin_token(&unpackets(&ps)),
            future,
            "the packet codec round-trips"
        );
        for i in [0usize, 17, 31] {
            let mut bad = ps.clone();
            bad.last_mut().expect("signature").1[i] ^= 0x01;
            let r = ok(bin_token(&unpackets(&bad))).await;
            r.expect(401, Some("invalid_token"), "flipped signature byte");
            assert!(r.description().contains("signature"), "{}", r.text);
        }
        // Drop a caveat: the one added by the holder, the time one, the type one.
        let cids: Vec<usize> = ps
            .iter()
            .enumerate()
            .filter(|(_, p)| p.0 == "cid")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(cids.len(), 3);
        for &i in &cids {
            let mut bad = ps.clone();
            bad.remove(i);
            let r = ok(bin_token(&unpackets(&bad))).await;
            r.expect(401, Some("invalid_token"), "a dropped caveat");
        }
        // Stripping the holder's past caveat does not revive the token either.
        let mut stripped = packets(&token_bin(&past));
        let n = stripped.len();
        stripped.remove(n - 2);
        ok(bin_token(&unpackets(&stripped))).await.expect(
            401,
            Some("invalid_token"),
            "the past caveat stripped",
        );
        // Changing a caveat's text: 401.
        let mut changed = ps.clone();
        changed[cids[2]].1 = format!("time < {}", later + 1).into_bytes();
        ok(bin_token(&unpackets(&changed))).await.expect(
            401,
            Some("invalid_token"),
            "a changed caveat",
        );
        // The untouched original still works.
        ok(token.clone())
            .await
            .expect(200, None, "the original token");

        // A provider attenuates an invite before consuming it.
        let (_pid, ptoken) = s.provider("att").await;
        let invite = s.support_token(ADMIN).await;
        let expired_invite = attenuate(&invite, &format!("time < {earlier}")).expect("attenuate");
        let r = s.support(&ptoken, &expired_invite, json!(5)).await;
        r.expect(
            400,
            Some("invalid_token"),
            "an invite attenuated into the past",
        );
        assert!(r.description().contains("expired"), "{}", r.text);
        let odd_invite = attenuate(&invite, "colour = blue").expect("attenuate");
        s.support(&ptoken, &odd_invite, json!(5)).await.expect(
            400,
            Some("invalid_token"),
            "an invite with an unknown caveat",
        );
        let fine = attenuate(&invite, &format!("time < {later}")).expect("attenuate");
        s.support(&ptoken, &unescape(&fine), json!(5)).await.expect(
            201,
            None,
            "an attenuated invite, plain form",
        );
        // It is the same token: consumed for every form.
        s.support(&ptoken, &invite, json!(5)).await.expect(
            400,
            Some("invalid_token"),
            "the original after the attenuated one",
        );
        // The provider's own token, attenuated, still authenticates it.
        let pt2 = attenuate(&ptoken, &format!("time < {later}")).expect("attenuate");
        let invite2 = s.support_token(ADMIN).await;
        let r = s.support(&pt2, &invite2, json!(5)).await;
        // The provider already supports the demo space: 409 means it was authenticated.
        r.expect(409, Some("already_exists"), "attenuated provider token");

        s.stop().await;
    })
    .await;
}

/// The `time <` caveats of a token, as unix times.
fn time_caveats(token: &str) -> Vec<u64> {
    caveats(token)
        .iter()
        .filter_map(|c| c.strip_prefix("time < "))
        .map(|n| n.parse().expect("a numeric time caveat"))
        .collect()
}

/// Regression (once a bug of the `GET /user/client_tokens` handler): a
/// holder who was given a time-limited copy of an access token (attenuated
/// with `time < N`) listed `GET /user/client_tokens` with it and received the
/// original, un-attenuated token string (re-rendered from its record), valid
/// for the full 30 days, thereby stripping its own caveat. Expected: the
/// listing is refused to an attenuated token (as `Zone::access_tokens` does
/// now), or every token it returns is itself bounded by the caller's
/// `time <` caveat.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attenuated_access_token_cannot_recover_the_unattenuated_token() {
    use ozmint::token::wire::attenuate;
    bounded(async {
        let (_dir, s) = start_demo().await;
        let token = s.access_token(ADMIN).await;
        let limit = unix_now() + 60;
        let limited = attenuate(&token, &format!("time < {limit}")).expect("attenuate");
        let r = s.get("/user/client_tokens", Cred::XAuth(&limited)).await;
        if r.status == StatusCode::OK {
            for t in r.json["tokens"].as_array().expect("tokens array") {
                let t = t.as_str().expect("a token string");
                assert!(
                    time_caveats(t).iter().any(|&n| n <= limit),
                    "a holder limited to time < {limit} obtained a token valid until {:?} \
                     (the original, caveat stripped: {})",
                    time_caveats(t),
                    t == token
                );
            }
        }
        s.stop().await;
    })
    .await;
}

/// Regression (once a bug of the `POST /user/client_tokens` handler): a
/// time-limited (attenuated) access token minted a fresh access token valid
/// for the full configured lifetime (30 days), escaping its `time <` caveat.
/// Expected: refused (as `Zone::create_access_token` does now), or the new
/// token expires no later than the caller's caveat.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attenuated_access_token_cannot_mint_a_longer_lived_one() {
    use ozmint::token::wire::attenuate;
    bounded(async {
        let (_dir, s) = start_demo().await;
        let token = s.access_token(ADMIN).await;
        let limit = unix_now() + 60;
        let limited = attenuate(&token, &format!("time < {limit}")).expect("attenuate");
        let r = s
            .post("/user/client_tokens", Cred::XAuth(&limited), None)
            .await;
        if r.status == StatusCode::OK {
            let fresh = r.json["token"].as_str().expect("token").to_owned();
            let expires = s.record(&fresh).await.expect("record").expires;
            assert!(
                expires <= limit || time_caveats(&fresh).iter().any(|&n| n <= limit),
                "a holder limited to time < {limit} minted a token valid until {expires}"
            );
        }
        s.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// Providers and space support.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn providers_register_and_support_spaces() {
    bounded(async {
        let (_dir, s) = start_demo().await;

        // Registration: admin only.
        let (p1, pt1) = s.provider("p1").await;
        let body = json!({ "name": "px", "domain": "px.example" });
        s.post("/providers", GUEST, Some(&body)).await.expect(
            403,
            Some("forbidden"),
            "guest registering a provider",
        );
        s.post("/providers", Cred::None, Some(&body)).await.expect(
            401,
            None,
            "anonymous registering a provider",
        );
        s.post("/providers", ADMIN, Some(&json!({ "name": "px" })))
            .await
            .expect(400, None, "registration without a domain");
        let r = s.get("/providers", ADMIN).await;
        r.expect(200, None, "listing providers");
        assert!(
            r.json["providers"]
                .as_array()
                .expect("providers array")
                .contains(&json!(p1)),
            "{}",
            r.text
        );
        s.get("/providers", GUEST)
            .await
            .expect(403, Some("forbidden"), "guest listing providers");
        let rec = s.record(&pt1).await.expect("the provider token's record");
        assert_eq!(rec.kind, TokenKind::Provider);
        assert_eq!(rec.target, id(&p1));
        // The root token authenticates the provider (a garbage one does not).
        s.support_raw(&pt1, &json!({}))
            .await
            .expect(400, None, "provider with an empty body");
        s.support_raw("garbage", &json!({})).await.expect(
            401,
            Some("invalid_token"),
            "garbage provider token",
        );

        // Support: a token minted by admin, consumed by the provider.
        let t = s.support_token(ADMIN).await;
        assert_eq!(
            caveats(&t)[0],
            "tokenType = space_support_token",
            "the type caveat comes first"
        );
        // Bad sizes: 400, and the token stays usable.
        let bad_sizes: Vec<(&str, Option<Value>)> = vec![
            ("0", Some(json!(0))),
            ("-1", Some(json!(-1))),
            ("\"abc\"", Some(json!("abc"))),
            ("\"\"", Some(json!(""))),
            ("1.5", Some(json!(1.5))),
            ("null", Some(Value::Null)),
            ("missing", None),
            ("true", Some(json!(true))),
            ("\"12a\"", Some(json!("12a"))),
            ("\"-5\"", Some(json!("-5"))),
            ("\"0\"", Some(json!("0"))),
            ("\"+5\"", Some(json!("+5"))),
            ("\" 5\"", Some(json!(" 5"))),
            ("\"1.5\"", Some(json!("1.5"))),
            ("[1]", Some(json!([1]))),
            ("{}", Some(json!({}))),
            ("1e3", Some(json!(1e3))),
            ("2^64 as text", Some(json!("18446744073709551616"))),
            ("huge as text", Some(json!("99999999999999999999999"))),
        ];
        for (what, size) in &bad_sizes {
            let mut body = json!({ "token": t });
            if let Some(v) = size {
                body["size"] = v.clone();
            }
            let r = s.support_raw(&pt1, &body).await;
            r.expect(400, None, &format!("size {what}"));
            assert!(
                matches!(
                    s.record(&t).await.expect("record").state,
                    TokenState::Active
                ),
                "size {what} consumed the token"
            );
        }
        // A body without a token, or with a non-string one: 400.
        s.support_raw(&pt1, &json!({ "size": 5 }))
            .await
            .expect(400, None, "no token");
        s.support_raw(&pt1, &json!({ "token": 5, "size": 5 }))
            .await
            .expect(400, None, "a numeric token");
        s.support(&pt1, "not a token", json!(5)).await.expect(
            400,
            Some("invalid_token"),
            "garbage token",
        );
        // A user may not consume: 403, token intact.
        s.post(
            "/provider/spaces/support",
            ADMIN,
            Some(&json!({ "token": t, "size": 1024 })),
        )
        .await
        .expect(403, Some("forbidden"), "a user consuming a support token");
        assert!(matches!(
            s.record(&t).await.expect("record").state,
            TokenState::Active
        ));

        let r = s.support(&pt1, &t, json!(1024)).await;
        r.expect(201, None, "support with size 1024");
        assert_eq!(r.location.as_deref(), Some(&*format!("/spaces/{SPACE}")));
        assert_eq!(s.space_supports(SPACE).await, vec![(p1.clone(), 1024)]);
        match s.record(&t).await.expect("record").state {
            TokenState::Consumed { by, .. } => assert_eq!(by, id(&p1)),
            other => panic!("state {other:?}"),
        }
        // Reusing it: 400 invalid_token.
        let r = s.support(&pt1, &t, json!(1024)).await;
        r.expect(400, Some("invalid_token"), "reusing a consumed token");
        assert!(r.description().contains("already used"), "{}", r.text);

        // Size as a string of digits; a second provider.
        let (p2, pt2) = s.provider("p2").await;
        let t2 = s.support_token(ADMIN).await;
        s.support(&pt2, &t2, json!("2048"))
            .await
            .expect(201, None, "support with size \"2048\"");
        let mut supports = s.space_supports(SPACE).await;
        supports.sort();
        let mut want = vec![(p1.clone(), 1024), (p2.clone(), 2048)];
        want.sort();
        assert_eq!(supports, want);

        // Wrong types: 400, and each stays usable where it belongs.
        let create = s.create_token(ADMIN).await;
        let r = s.support(&pt1, &create, json!(7)).await;
        r.expect(
            400,
            Some("invalid_token"),
            "a creation token used for support",
        );
        assert!(r.description().contains("wrong type"), "{}", r.text);
        let (p3, pt3) = s.provider("p3").await;
        let t3 = s.support_token(ADMIN).await;
        let r = s.create_space(&pt3, "wrong", &t3, json!(7)).await;
        r.expect(
            400,
            Some("invalid_token"),
            "a support token used for creation",
        );
        let access = s.access_token(ADMIN).await;
        for other in [&pt1, &access] {
            s.support(&pt3, other, json!(7)).await.expect(
                400,
                Some("invalid_token"),
                "an authentication token as an invite",
            );
        }
        s.create_space(&pt1, "made", &create, json!(7))
            .await
            .expect(201, None, "the creation token after its misuse");
        s.support(&pt3, &t3, json!(7)).await.expect(
            201,
            None,
            "the support token after its misuse",
        );

        // A space the provider already supports: 409, and the token stays usable.
        let t4 = s.support_token(ADMIN).await;
        let r = s.support(&pt1, &t4, json!(99)).await;
        r.expect(409, Some("already_exists"), "supporting twice");
        assert!(matches!(
            s.record(&t4).await.expect("record").state,
            TokenState::Active
        ));
        assert_eq!(
            s.store()
                .relation(&SPACE_PROVIDERS_REL, &id(SPACE), &id(&p1))
                .await
                .expect("read")
                .map(|x: Support| x.size),
            Some(1024),
            "the existing support is unchanged"
        );
        let (p4, pt4) = s.provider("p4").await;
        s.support(&pt4, &t4, json!(99))
            .await
            .expect(201, None, "the token after the conflict");
        let supports = s.space_supports(SPACE).await;
        assert_eq!(supports.len(), 4, "{supports:?}");
        assert!(supports.contains(&(p3, 7)) && supports.contains(&(p4.clone(), 99)));

        // Seeing a space's providers needs a privilege in it.
        s.get(&format!("/spaces/{SPACE}/providers"), GUEST)
            .await
            .expect(200, None, "a member viewing supports");
        let (_p5, pt5) = s.provider("p5").await;
        s.get(&format!("/spaces/{SPACE}/providers"), Cred::XAuth(&pt5))
            .await
            .expect(403, Some("forbidden"), "a provider viewing supports");

        // A deleted provider's root token no longer authenticates, and its
        // support is gone.
        s.store()
            .delete(Entity::Provider, &id(&p4))
            .await
            .expect("delete a provider");
        let t5 = s.support_token(ADMIN).await;
        s.support(&pt4, &t5, json!(1)).await.expect(
            401,
            Some("invalid_token"),
            "a deleted provider's token",
        );
        assert!(!s.space_supports(SPACE).await.iter().any(|(p, _)| *p == p4));
        s.support(&pt5, &t5, json!(1)).await.expect(
            201,
            None,
            "the invite after a deleted provider tried it",
        );

        s.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// Space creation.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn space_creation_token_creates_a_supported_group_space() {
    bounded(async {
        let (_dir, s) = start_demo().await;
        let (pid, pt) = s.provider("maker").await;
        let t = s.create_token(ADMIN).await;
        assert_eq!(caveats(&t)[0], "tokenType = space_create_token");
        let rec = s.record(&t).await.expect("record");
        assert_eq!((rec.kind, rec.target), (TokenKind::SpaceCreate, id(GROUP)));

        // Guest (plain member) may not mint one.
        s.get(&format!("/groups/{GROUP}/spaces/token"), GUEST)
            .await
            .expect(403, Some("forbidden"), "guest minting a creation token");

        // Failures first: none consumes the token.
        for (what, body) in [
            ("empty name", json!({ "name": "", "token": t, "size": 1 })),
            ("no name", json!({ "token": t, "size": 1 })),
            ("no size", json!({ "name": "x", "token": t })),
            ("size 0", json!({ "name": "x", "token": t, "size": "0" })),
        ] {
            s.post("/provider/spaces", Cred::XAuth(&pt), Some(&body))
                .await
                .expect(400, None, what);
            assert!(
                matches!(
                    s.record(&t).await.expect("record").state,
                    TokenState::Active
                ),
                "{what} consumed the token"
            );
        }
        s.post(
            "/provider/spaces",
            ADMIN,
            Some(&json!({ "name": "new", "token": t, "size": 1 })),
        )
        .await
        .expect(
            403,
            Some("forbidden"),
            "a user creating a space with a token",
        );

        let r = s.create_space(&pt, "new", &t, json!("4096")).await;
        r.expect(201, None, "creating a space");
        let loc = r.location.clone().expect("a Location header");
        let new_id = loc
            .strip_prefix("/spaces/")
            .unwrap_or_else(|| panic!("Location {loc}"))
            .to_owned();
        assert_eq!(new_id.len(), 43);
        assert_ne!(new_id, SPACE);
        let space = id(&new_id);
        let store = s.store();
        let rec = store
            .space(&space)
            .await
            .expect("read")
            .expect("the new space");
        assert_eq!(rec.name, "new");
        assert_eq!(
            store
                .relation(&SPACE_GROUPS_REL, &space, &id(GROUP))
                .await
                .expect("read"),
            Some(SpacePrivileges::all()),
            "the group holds every space privilege"
        );
        assert_eq!(
            store
                .relation(&SPACE_PROVIDERS_REL, &space, &id(&pid))
                .await
                .expect("read")
                .map(|x: Support| x.size),
            Some(4096)
        );
        assert_eq!(s.space_supports(&new_id).await, vec![(pid.clone(), 4096)]);
        match s.record(&t).await.expect("record").state {
            TokenState::Consumed { by, .. } => assert_eq!(by, id(&pid)),
            other => panic!("state {other:?}"),
        }
        // Group members now reach the space through the group: carol may
        // mint support tokens for it, guest may view it.
        s.support_token_for(&new_id, CAROL).await;
        s.get(&format!("/spaces/{new_id}/providers"), GUEST)
            .await
            .expect(200, None, "a group member viewing the new space");

        // Single use.
        s.create_space(&pt, "again", &t, json!(1)).await.expect(
            400,
            Some("invalid_token"),
            "reusing the creation token",
        );
        assert_eq!(
            store
                .spaces(None, 1000)
                .await
                .expect("spaces")
                .0
                .iter()
                .filter(|(_, sp)| sp.name == "again")
                .count(),
            0
        );

        // An integer size works as well.
        let t2 = s.create_token(ADMIN).await;
        let r = s.create_space(&pt, "second", &t2, json!(8192)).await;
        r.expect(201, None, "creating a space with an integer size");
        let second = r.location.expect("Location");
        assert_eq!(
            s.space_supports(second.trim_start_matches("/spaces/"))
                .await,
            vec![(pid, 8192)]
        );

        s.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// The issuer must still hold the privilege when the token is consumed.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issuer_must_still_hold_the_privilege_at_consumption() {
    bounded(async {
        let (_dir, s) = start_demo().await;
        let (_pid, pt) = s.provider("strict").await;
        // Carol holds space_add_provider only through the demo group.
        let t = s.support_token(CAROL).await;
        assert_eq!(
            s.record(&t).await.expect("record").issuer,
            Subject::User(id(CAROL_ID))
        );
        let store = s.store();
        let removed = store
            .remove_relation(&GROUP_USERS_REL, &id(GROUP), &id(CAROL_ID))
            .await
            .expect("remove carol from the group");
        assert!(removed);
        // Carol can no longer mint ...
        s.post(&format!("/spaces/{SPACE}/providers/token"), CAROL, None)
            .await
            .expect(403, Some("forbidden"), "carol outside the group");
        // ... and her token cannot be consumed, but is not used up either.
        let r = s.support(&pt, &t, json!(64)).await;
        r.expect(400, Some("invalid_token"), "the issuer lost the privilege");
        assert!(r.description().contains("issuer"), "{}", r.text);
        assert_eq!(
            s.record(&t).await.expect("record").state,
            TokenState::Active
        );
        assert!(s.space_supports(SPACE).await.is_empty());

        // Once carol is back, the very same token works.
        store
            .put_relation(
                &GROUP_USERS_REL,
                &id(GROUP),
                &id(CAROL_ID),
                &GroupPrivileges::member_default(),
            )
            .await
            .expect("carol rejoins");
        s.support(&pt, &t, json!(64)).await.expect(
            201,
            None,
            "the issuer holds the privilege again",
        );

        s.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// Double spending.
// ---------------------------------------------------------------------------

/// A client with one warm connection to the server.
async fn warm_client(s: &Server, builder: reqwest::ClientBuilder) -> Client {
    let c = builder.build().expect("client");
    let r = c
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .expect("warm-up request");
    assert_eq!(r.status(), 200);
    c
}

/// A new space (admin as creator) for one trial.
async fn trial_space(s: &Server, name: String) -> String {
    s.store()
        .create_space(&name, Some(id(ADMIN_ID)))
        .await
        .expect("create a trial space")
        .to_string()
}

/// Fires one consumption per `(client, provider token)` at the same time and
/// checks that exactly one succeeded.
/// With `mixed_forms`, racers present the same token in different forms:
/// escaped, plain base64url, attenuated (escaped and plain).
async fn race(
    s: &Arc<Server>,
    space: &str,
    token: &str,
    racers: Vec<(Client, String)>,
    mixed_forms: bool,
) {
    let later = unix_now() + 3600;
    let attenuated =
        ozmint::token::wire::attenuate(token, &format!("time < {later}")).expect("attenuate");
    let forms = [
        token.to_owned(),
        unescape(token),
        attenuated.clone(),
        unescape(&attenuated),
    ];
    let barrier = Arc::new(tokio::sync::Barrier::new(racers.len()));
    let mut set = tokio::task::JoinSet::new();
    for (i, (client, ptoken)) in racers.into_iter().enumerate() {
        let s = s.clone();
        let barrier = barrier.clone();
        let form = if mixed_forms {
            &forms[i % forms.len()]
        } else {
            token
        };
        let body = json!({ "token": form, "size": i + 1 });
        set.spawn(async move {
            barrier.wait().await;
            let r = s
                .call_with(
                    &client,
                    Method::POST,
                    "/provider/spaces/support",
                    Cred::XAuth(&ptoken),
                    Some(&body),
                )
                .await;
            (i, r)
        });
    }
    let mut wins = Vec::new();
    let mut others = Vec::new();
    while let Some(res) = set.join_next().await {
        let (i, r) = res.expect("racer task");
        if r.status == StatusCode::CREATED {
            wins.push(i);
        } else {
            assert!(
                r.status.is_client_error(),
                "racer {i}: {} {}",
                r.status,
                r.text
            );
            others.push(r.status.as_u16());
        }
    }
    assert_eq!(wins.len(), 1, "exactly one winner; others: {others:?}");
    let supports = s.space_supports(space).await;
    assert_eq!(supports.len(), 1, "exactly one support: {supports:?}");
    assert_eq!(supports[0].1, wins[0] as u64 + 1, "the winner's size");
    match s.record(token).await.expect("record").state {
        TokenState::Consumed { by, .. } => assert_eq!(by.to_string(), supports[0].0),
        other => panic!("state {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn double_spend_distinct_providers() {
    bounded(async {
        let (_dir, s) = start_demo().await;
        let s = Arc::new(s);
        let mut providers = Vec::new();
        for i in 0..RACERS {
            providers.push(s.provider(&format!("racer{i}")).await.1);
        }
        for trial in 0..TRIALS {
            let space = trial_space(&s, format!("distinct{trial}")).await;
            let token = s.support_token_for(&space, ADMIN).await;
            let mut racers = Vec::new();
            for p in &providers {
                racers.push((warm_client(&s, client_builder()).await, p.clone()));
            }
            race(&s, &space, &token, racers, trial % 2 == 1).await;
        }
        Arc::into_inner(s).expect("sole owner").stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn double_spend_one_provider_many_connections() {
    bounded(async {
        let (_dir, s) = start_demo().await;
        let s = Arc::new(s);
        let (_pid, pt) = s.provider("lonely").await;
        for trial in 0..TRIALS {
            let space = trial_space(&s, format!("same{trial}")).await;
            let token = s.support_token_for(&space, ADMIN).await;
            let mut racers = Vec::new();
            for _ in 0..RACERS {
                // One HTTP/1.1 connection per racer.
                racers.push((
                    warm_client(&s, client_builder().http1_only()).await,
                    pt.clone(),
                ));
            }
            race(&s, &space, &token, racers, false).await;
        }
        Arc::into_inner(s).expect("sole owner").stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn double_spend_http2_one_connection() {
    bounded(async {
        let (_dir, s) = start_demo().await;
        let s = Arc::new(s);
        let mut providers = Vec::new();
        for i in 0..8 {
            providers.push(s.provider(&format!("h2racer{i}")).await.1);
        }
        // One client, HTTP/2 only: every request is a stream on one connection.
        let h2 = warm_client(&s, client_builder().http2_prior_knowledge()).await;
        let r = h2
            .get(format!("{}/healthz", s.base))
            .send()
            .await
            .expect("h2 request");
        assert_eq!(r.version(), Version::HTTP_2);
        for trial in 0..TRIALS {
            let space = trial_space(&s, format!("h2{trial}")).await;
            let token = s.support_token_for(&space, ADMIN).await;
            let racers: Vec<(Client, String)> = (0..64)
                .map(|i| (h2.clone(), providers[i % providers.len()].clone()))
                .collect();
            race(&s, &space, &token, racers, trial % 2 == 1).await;
        }
        // Every answer came over HTTP/2.
        let r = s
            .call_with(&h2, Method::GET, "/providers", ADMIN, None)
            .await;
        assert_eq!(r.version, Version::HTTP_2);
        drop(h2);
        Arc::into_inner(s).expect("sole owner").stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// Revocation.
// ---------------------------------------------------------------------------

fn listed_state(list: &Value, token_id: &str) -> Option<String> {
    list["tokens"]
        .as_array()
        .expect("tokens array")
        .iter()
        .find(|t| t["id"] == token_id)
        .map(|t| t["state"].as_str().expect("state").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_of_invite_tokens() {
    bounded(async {
        let (_dir, s) = start_demo().await;
        let (_pid, pt) = s.provider("rev").await;
        let t1 = s.support_token(ADMIN).await;
        let t2 = s.support_token(CAROL).await;
        let (id1, id2) = (tid(&t1), tid(&t2));
        let tokens_path = format!("/spaces/{SPACE}/tokens");

        let r = s.get(&tokens_path, ADMIN).await;
        r.expect(200, None, "listing the space's tokens");
        assert_eq!(listed_state(&r.json, &id1).as_deref(), Some("active"));
        assert_eq!(listed_state(&r.json, &id2).as_deref(), Some("active"));
        let entry = r.json["tokens"]
            .as_array()
            .expect("array")
            .iter()
            .find(|t| t["id"] == id2)
            .expect("t2 listed")
            .clone();
        assert_eq!(entry["type"], "space_support_token");
        assert_eq!(entry["target"], SPACE);
        assert_eq!(entry["issuer"], json!({ "type": "user", "id": CAROL_ID }));
        assert!(entry["expires"].as_u64().expect("expires") > unix_now());
        // Tokens are listed by id, never as bearer strings.
        assert!(!r.text.contains(&t1) && !r.text.contains(&t2));

        // In the demo data set guest reaches space_add_provider through the
        // demo group, so guest may list (whoever may mint may list) ...
        s.get(&tokens_path, GUEST).await.expect(
            200,
            None,
            "guest (through the group) listing invites",
        );
        // ... but not once out of the group (guest stays a plain space member).
        assert!(s
            .store()
            .remove_relation(&GROUP_USERS_REL, &id(GROUP), &id(GUEST_ID))
            .await
            .expect("remove guest from the group"));
        s.get(&tokens_path, GUEST)
            .await
            .expect(403, Some("forbidden"), "guest listing invites");
        s.delete(&format!("/tokens/{id1}"), GUEST).await.expect(
            403,
            Some("forbidden"),
            "guest revoking an invite",
        );
        s.post(&format!("/spaces/{SPACE}/providers/token"), GUEST, None)
            .await
            .expect(403, Some("forbidden"), "guest minting an invite");
        assert_eq!(
            s.record(&t1).await.expect("record").state,
            TokenState::Active
        );

        // Unknown and malformed ids.
        s.delete(&format!("/tokens/{}", Id::random()), ADMIN)
            .await
            .expect(404, Some("not_found"), "revoking an unknown token");
        s.delete("/tokens/abc", ADMIN)
            .await
            .expect(400, None, "revoking a malformed token id");

        // Admin revokes t1: 204; consumption afterwards: 400.
        s.delete(&format!("/tokens/{id1}"), ADMIN)
            .await
            .expect(204, None, "revoking an invite");
        let r = s.support(&pt, &t1, json!(1)).await;
        r.expect(400, Some("invalid_token"), "consuming a revoked invite");
        assert!(r.description().contains("revoked"), "{}", r.text);
        let r = s.get(&tokens_path, ADMIN).await;
        assert_eq!(listed_state(&r.json, &id1).as_deref(), Some("revoked"));
        // Revoking again is harmless.
        s.delete(&format!("/tokens/{id1}"), ADMIN)
            .await
            .expect(204, None, "revoking twice");

        // t2 is unaffected; once consumed it stays consumed even if "revoked".
        s.support(&pt, &t2, json!(1))
            .await
            .expect(201, None, "consuming the other invite");
        s.delete(&format!("/tokens/{id2}"), ADMIN).await.expect(
            204,
            None,
            "revoking a consumed invite",
        );
        let r = s.get(&tokens_path, ADMIN).await;
        assert_eq!(listed_state(&r.json, &id2).as_deref(), Some("consumed"));

        // The whole token works as the path parameter too.
        let t3 = s.support_token(ADMIN).await;
        s.delete(&format!("/tokens/{t3}"), CAROL).await.expect(
            204,
            None,
            "carol (may mint) revoking by whole token",
        );
        assert!(matches!(
            s.record(&t3).await.expect("record").state,
            TokenState::Revoked { .. }
        ));

        // Creation tokens of the group.
        let c = s.create_token(ADMIN).await;
        let group_tokens = format!("/groups/{GROUP}/tokens");
        let r = s.get(&group_tokens, ADMIN).await;
        r.expect(200, None, "listing the group's tokens");
        assert_eq!(listed_state(&r.json, &tid(&c)).as_deref(), Some("active"));
        s.get(&group_tokens, GUEST).await.expect(
            403,
            Some("forbidden"),
            "guest listing group invites",
        );
        s.delete(&format!("/tokens/{}", tid(&c)), CAROL)
            .await
            .expect(403, Some("forbidden"), "carol revoking a creation token");
        s.delete(&format!("/tokens/{}", tid(&c)), ADMIN)
            .await
            .expect(204, None, "revoking a creation token");
        s.create_space(&pt, "nope", &c, json!(1)).await.expect(
            400,
            Some("invalid_token"),
            "consuming a revoked creation token",
        );

        s.stop().await;
    })
    .await;
}

/// Revocation racing consumption: whichever wins, the outcome is consistent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_racing_consumption_is_consistent() {
    bounded(async {
        let (_dir, s) = start_demo().await;
        let s = Arc::new(s);
        let (pid, pt) = s.provider("racy").await;
        let (mut consumed, mut revoked) = (0, 0);
        for trial in 0..10 {
            let space = trial_space(&s, format!("rvc{trial}")).await;
            let token = s.support_token_for(&space, ADMIN).await;
            let c1 = warm_client(&s, client_builder().http1_only()).await;
            let c2 = warm_client(&s, client_builder().http1_only()).await;
            let barrier = Arc::new(tokio::sync::Barrier::new(2));
            let consume = {
                let (s, b, pt, token) = (s.clone(), barrier.clone(), pt.clone(), token.clone());
                tokio::spawn(async move {
                    b.wait().await;
                    let body = json!({ "token": token, "size": 9 });
                    s.call_with(
                        &c1,
                        Method::POST,
                        "/provider/spaces/support",
                        Cred::XAuth(&pt),
                        Some(&body),
                    )
                    .await
                })
            };
            let revoke = {
                let (s, b, t) = (s.clone(), barrier.clone(), tid(&token));
                tokio::spawn(async move {
                    b.wait().await;
                    s.call_with(&c2, Method::DELETE, &format!("/tokens/{t}"), ADMIN, None)
                        .await
                })
            };
            let c = consume.await.expect("consumer");
            let r = revoke.await.expect("revoker");
            r.expect(204, None, "revoking during consumption");
            let state = s.record(&token).await.expect("record").state;
            let supports = s.space_supports(&space).await;
            match c.status.as_u16() {
                201 => {
                    consumed += 1;
                    assert!(
                        matches!(state, TokenState::Consumed { by, .. } if by == id(&pid)),
                        "{state:?}"
                    );
                    assert_eq!(supports, vec![(pid.clone(), 9)]);
                }
                400 => {
                    revoked += 1;
                    assert_eq!(c.json["error"], "invalid_token", "{}", c.text);
                    assert!(matches!(state, TokenState::Revoked { .. }), "{state:?}");
                    assert!(supports.is_empty(), "{supports:?}");
                }
                other => panic!("consumption during revocation: {other} {}", c.text),
            }
        }
        eprintln!("revocation race: {consumed} consumed first, {revoked} revoked first");
        Arc::into_inner(s).expect("sole owner").stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// Expiry.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_tokens_are_refused_and_purged() {
    bounded(async {
        let (_dir, s) = start_demo().await;
        let (_pid, pt) = s.provider("late").await;
        let minted = s
            .app()
            .zone
            .mint_for(
                TokenKind::SpaceSupport,
                id(SPACE),
                Subject::User(id(ADMIN_ID)),
                1,
            )
            .await
            .expect("mint a 1-second token");
        let token = minted.token.clone();
        assert_eq!(minted.record.expires, minted.record.created + 1);
        let access = s
            .app()
            .zone
            .mint_for(
                TokenKind::Access,
                id(ADMIN_ID),
                Subject::User(id(ADMIN_ID)),
                1,
            )
            .await
            .expect("mint a 1-second access token");
        tokio::time::sleep(Duration::from_millis(2_100)).await;

        // A holder cannot extend a token with a later time caveat.
        let extended =
            ozmint::token::wire::attenuate(&token, &format!("time < {}", unix_now() + 3600))
                .expect("attenuate");
        s.support(&pt, &extended, json!(1)).await.expect(
            400,
            Some("invalid_token"),
            "an expired token with a later caveat",
        );

        let r = s.support(&pt, &token, json!(1)).await;
        r.expect(400, Some("invalid_token"), "consuming an expired token");
        assert!(r.description().contains("expired"), "{}", r.text);
        let r = s
            .get("/user/client_tokens", Cred::XAuth(&access.token))
            .await;
        r.expect(401, Some("invalid_token"), "an expired access token");
        assert!(r.description().contains("expired"), "{}", r.text);
        // Examined: still there, not valid.
        let r = s
            .post("/tokens/examine", ADMIN, Some(&json!({ "token": token })))
            .await;
        r.expect(200, None, "examining an expired token");
        assert_eq!(r.json["valid"], false);
        assert_eq!(r.json["state"], "expired");
        assert_eq!(r.json["invalidReason"], "token has expired");
        // Not listed among the user's client tokens.
        let r = s.get("/user/client_tokens", ADMIN).await;
        assert!(!r.text.contains(&access.token));

        // Purging removes both records (nothing else has expired).
        let purged = s
            .store()
            .purge_expired(unix_now(), 100)
            .await
            .expect("purge");
        assert_eq!(purged, 2);
        assert!(s.record(&token).await.is_none(), "the record is gone");
        assert!(
            s.record(&access.token).await.is_none(),
            "the record is gone"
        );
        let r = s.support(&pt, &token, json!(1)).await;
        r.expect(400, Some("invalid_token"), "consuming a purged token");
        // Unexpired tokens survive a purge.
        let fresh = s.support_token(ADMIN).await;
        assert_eq!(
            s.store()
                .purge_expired(unix_now(), 100)
                .await
                .expect("purge"),
            0
        );
        s.support(&pt, &fresh, json!(1))
            .await
            .expect(201, None, "a fresh token after the purge");

        s.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// Examination.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn examine_describes_tokens_to_their_managers() {
    bounded(async {
        let (_dir, s) = start_demo().await;
        let t = s.create_token(ADMIN).await;
        let rec = s.record(&t).await.expect("record");
        let r = s
            .post("/tokens/examine", ADMIN, Some(&json!({ "token": t })))
            .await;
        r.expect(200, None, "examining a creation token");
        let v = &r.json;
        assert_eq!(v["id"], tid(&t));
        assert_eq!(v["type"], "space_create_token");
        assert_eq!(v["target"], GROUP);
        assert_eq!(v["issuer"], json!({ "type": "user", "id": ADMIN_ID }));
        assert_eq!(
            v["caveats"],
            json!([
                "tokenType = space_create_token",
                format!("time < {}", rec.expires)
            ])
        );
        assert_eq!(v["expires"], rec.expires);
        assert_eq!(v["created"], rec.created);
        assert_eq!(v["location"], "onezone");
        assert_eq!(v["state"], "active");
        assert_eq!(v["valid"], true);
        assert_eq!(v["invalidReason"], Value::Null);
        assert!(!r.text.contains(&t), "the token itself is not echoed");
        // The plain form is the same token.
        let r = s
            .post(
                "/tokens/examine",
                ADMIN,
                Some(&json!({ "token": unescape(&t) })),
            )
            .await;
        r.expect(200, None, "examining the plain form");
        assert_eq!(r.json["id"], tid(&t));

        // Guest may not examine admin's group token.
        s.post("/tokens/examine", GUEST, Some(&json!({ "token": t })))
            .await
            .expect(403, Some("forbidden"), "guest examining a creation token");
        // Carol may examine support tokens (she may mint them), not creation tokens.
        s.post("/tokens/examine", CAROL, Some(&json!({ "token": t })))
            .await
            .expect(403, Some("forbidden"), "carol examining a creation token");
        let st = s.support_token(ADMIN).await;
        let r = s
            .post("/tokens/examine", CAROL, Some(&json!({ "token": st })))
            .await;
        r.expect(200, None, "carol examining a support token");
        assert_eq!(r.json["type"], "space_support_token");

        // Garbage and malformed bodies: 400.
        for body in [
            json!({ "token": "garbage" }),
            json!({ "token": "" }),
            json!({ "token": "AAAA" }),
            json!({ "token": 5 }),
            json!({}),
        ] {
            s.post("/tokens/examine", ADMIN, Some(&body)).await.expect(
                400,
                None,
                &format!("examining {body}"),
            );
        }
        s.post("/tokens/examine", Cred::None, Some(&json!({ "token": t })))
            .await
            .expect(401, None, "anonymous examination");

        // After consumption: state consumed, not valid.
        let (pid, pt) = s.provider("ex").await;
        s.create_space(&pt, "examined", &t, json!(1))
            .await
            .expect(201, None, "consuming");
        let r = s
            .post("/tokens/examine", ADMIN, Some(&json!({ "token": t })))
            .await;
        r.expect(200, None, "examining a consumed token");
        assert_eq!(r.json["state"], "consumed");
        assert_eq!(r.json["valid"], false);
        assert!(r.json["stateChanged"].is_u64());
        assert!(r.json["invalidReason"]
            .as_str()
            .is_some_and(|x| x.contains("used")));
        // A tampered token: described, but not valid.
        let mut ps = packets(&token_bin(&st));
        ps.last_mut().expect("signature").1[0] ^= 0x80;
        let r = s
            .post(
                "/tokens/examine",
                ADMIN,
                Some(&json!({ "token": bin_token(&unpackets(&ps)) })),
            )
            .await;
        r.expect(200, None, "examining a tampered token");
        assert_eq!(r.json["valid"], false);
        assert_eq!(r.json["invalidReason"], "token signature is invalid");
        // A provider may examine its own root token.
        let r = s
            .post(
                "/tokens/examine",
                Cred::XAuth(&pt),
                Some(&json!({ "token": pt })),
            )
            .await;
        r.expect(200, None, "a provider examining its own token");
        assert_eq!(r.json["type"], "provider_token");
        assert_eq!(r.json["target"], pid);

        s.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// Root key rotation over HTTP.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn root_key_rotation_and_retirement() {
    bounded(async {
        let (_dir, s) = start_demo().await;
        let r = s.get("/keys", ADMIN).await;
        r.expect(200, None, "listing keys");
        let keys = r.json["keys"].as_array().expect("keys array");
        assert_eq!(keys.len(), 1, "{}", r.text);
        assert_eq!(keys[0]["id"], 1);
        assert_eq!(keys[0]["current"], true);
        assert_eq!(keys[0]["retired"], Value::Null);
        assert!(!r.text.contains("secret"), "{}", r.text);

        // Guest: nothing.
        s.get("/keys", GUEST)
            .await
            .expect(403, Some("forbidden"), "guest listing keys");
        s.post("/keys", GUEST, None)
            .await
            .expect(403, Some("forbidden"), "guest rotating");
        s.post("/keys/1/retire", GUEST, None).await.expect(
            403,
            Some("forbidden"),
            "guest retiring",
        );

        // Tokens minted under key 1.
        let old_access = s.access_token(ADMIN).await;
        let old_support = s.support_token(ADMIN).await;
        let old_support2 = s.support_token(ADMIN).await;
        assert_eq!(s.record(&old_access).await.expect("record").key_id, 1);

        let r = s.post("/keys", ADMIN, None).await;
        r.expect(201, None, "rotating");
        assert_eq!(r.json["keyId"], 2);
        let r = s.get("/keys", ADMIN).await;
        let keys = r.json["keys"].as_array().expect("keys array");
        assert_eq!(keys.len(), 2, "{}", r.text);
        let current: Vec<&Value> = keys.iter().filter(|k| k["current"] == true).collect();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0]["id"], 2);

        // Old tokens still verify and are consumable; new ones use key 2.
        s.get("/user/client_tokens", Cred::XAuth(&old_access))
            .await
            .expect(200, None, "an old access token after rotation");
        let (_p, pt) = s.provider("rot").await;
        assert_eq!(s.record(&pt).await.expect("record").key_id, 2);
        s.support(&pt, &old_support, json!(3)).await.expect(
            201,
            None,
            "an old support token after rotation",
        );
        let new_access = s.access_token(ADMIN).await;
        let new_support = s.support_token(ADMIN).await;
        let nid = s
            .app()
            .zone
            .verify(&new_support)
            .await
            .expect("verifies")
            .id;
        assert_eq!(
            s.store()
                .token(&nid)
                .await
                .expect("read")
                .expect("record")
                .key_id,
            2
        );
        assert_eq!(s.record(&new_access).await.expect("record").key_id, 2);
        // Both generations are listed.
        let r = s.get("/user/client_tokens", ADMIN).await;
        assert!(r.text.contains(&old_access) && r.text.contains(&new_access));

        // The current key cannot be retired; unknown keys are 404, bad ids 400.
        s.post("/keys/2/retire", ADMIN, None)
            .await
            .expect(409, None, "retiring the current key");
        s.post("/keys/99/retire", ADMIN, None)
            .await
            .expect(404, None, "retiring an unknown key");
        s.post("/keys/one/retire", ADMIN, None).await.expect(
            400,
            None,
            "retiring a malformed key id",
        );

        s.post("/keys/1/retire", ADMIN, None)
            .await
            .expect(204, None, "retiring key 1");
        let r = s.get("/keys", ADMIN).await;
        let k1 = r.json["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .find(|k| k["id"] == 1)
            .expect("key 1 listed")
            .clone();
        assert!(k1["retired"].is_u64(), "{}", r.text);
        // Old tokens now fail: 401 as credentials, 400 for consumption.
        let r = s.get("/user/client_tokens", Cred::XAuth(&old_access)).await;
        r.expect(
            401,
            Some("invalid_token"),
            "an access token under a retired key",
        );
        assert!(r.description().contains("retired"), "{}", r.text);
        let r = s.support(&pt, &old_support2, json!(3)).await;
        r.expect(400, Some("invalid_token"), "consuming under a retired key");
        // ... and old tokens are no longer listed.
        let r = s.get("/user/client_tokens", ADMIN).await;
        assert!(!r.text.contains(&old_access) && r.text.contains(&new_access));
        // New tokens are unaffected.
        s.get("/user/client_tokens", Cred::XAuth(&new_access))
            .await
            .expect(200, None, "a key-2 access token");
        let (_p2, pt2) = s.provider("rot2").await;
        s.support(&pt2, &new_support, json!(3))
            .await
            .expect(201, None, "a key-2 support token");
        // Retiring twice is harmless.
        s.post("/keys/1/retire", ADMIN, None)
            .await
            .expect(204, None, "retiring key 1 again");

        s.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// Restart in the middle of the lifecycle.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_keeps_the_lifecycle() {
    bounded(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = start(dir.path(), DurabilityMode::Durable).await;
        assert_eq!(s.boot, Bootstrap::Demo);

        let access = s.access_token(ADMIN).await;
        let (p1, pt1) = s.provider("before1").await;
        let (p2, pt2) = s.provider("before2").await;
        let support = s.support_token(ADMIN).await;
        let create = s.create_token(ADMIN).await;
        s.support(&pt1, &support, json!(111)).await.expect(
            201,
            None,
            "consuming before the restart",
        );
        s.delete(&format!("/user/client_tokens/{}", tid(&access)), ADMIN)
            .await
            .expect(202, None, "revoking before the restart");
        s.post("/keys", ADMIN, None)
            .await
            .expect(201, None, "rotating before the restart");
        let support2 = s.support_token(ADMIN).await;
        assert_eq!(s.record(&support2).await.expect("record").key_id, 2);
        s.stop().await;

        let s = start(dir.path(), DurabilityMode::Durable).await;
        assert_eq!(s.boot, Bootstrap::Existing);

        // Consumed stays consumed.
        let r = s.support(&pt2, &support, json!(5)).await;
        r.expect(400, Some("invalid_token"), "a consumed token after restart");
        assert!(r.description().contains("already used"), "{}", r.text);
        match s.record(&support).await.expect("record").state {
            TokenState::Consumed { by, .. } => assert_eq!(by, id(&p1)),
            other => panic!("state {other:?}"),
        }
        assert_eq!(s.space_supports(SPACE).await, vec![(p1.clone(), 111)]);
        // Revoked stays revoked.
        let r = s.get("/user/client_tokens", Cred::XAuth(&access)).await;
        r.expect(401, Some("invalid_token"), "a revoked token after restart");
        // The keys are as they were.
        let r = s.get("/keys", ADMIN).await;
        let keys = r.json["keys"].as_array().expect("keys");
        assert_eq!(keys.len(), 2, "{}", r.text);
        assert!(keys.iter().any(|k| k["id"] == 2 && k["current"] == true));
        // Provider root tokens (key 1) still authenticate; the unconsumed
        // creation token (key 1) and support token (key 2) still work.
        let r = s.create_space(&pt1, "after", &create, json!(222)).await;
        r.expect(201, None, "the creation token after restart");
        let new_space = r
            .location
            .expect("Location")
            .trim_start_matches("/spaces/")
            .to_owned();
        assert!(s
            .store()
            .exists(Entity::Space, &id(&new_space))
            .await
            .expect("read"));
        s.support(&pt2, &support2, json!(333)).await.expect(
            201,
            None,
            "a key-2 support token after restart",
        );
        let mut supports = s.space_supports(SPACE).await;
        supports.sort();
        let mut want = vec![(p1, 111), (p2, 333)];
        want.sort();
        assert_eq!(supports, want);
        // New tokens use the current key.
        let fresh = s.access_token(ADMIN).await;
        assert_eq!(s.record(&fresh).await.expect("record").key_id, 2);

        s.stop().await;
        drop(dir);
    })
    .await;
}
