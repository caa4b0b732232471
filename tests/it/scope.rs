//! Providers' version and online flag (`POST /providers`, `GET|PATCH
//! /provider`, `GET /providers/{id}`) and `POST
//! /tokens/infer_access_token_scope` over HTTPS: tokens confined with
//! `data.path`, `data.objectid`, `service` and `time` caveats, legacy
//! tokens, provider tokens, Onezone's errors; the online flag across two
//! instances on one engine.

use std::sync::Arc;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};

use ozmint::engine::memory::MemoryEngine;
use ozmint::engine::Engine;
use ozmint::ops::token_auth::RequestContext;
use ozmint::ops::{Caller, Credentials};
use ozmint::token::caveat::data::objectid_of_file;

use testkit::server::*;

use super::modern::{call, oz_error, Cred};

/// Registers a provider as the admin; returns its id and root token.
async fn register(s: &TestServer, name: &str, version: Option<&str>) -> (String, String) {
    let mut body = json!({"name": name, "domain": format!("{name}.example.org")});
    if let Some(v) = version {
        body["version"] = json!(v);
    }
    let got = call(
        s,
        Method::POST,
        "/providers",
        Cred::Basic(ADMIN),
        Some(body),
    )
    .await;
    assert_eq!(got.0, 201, "{}", got.1);
    (
        got.1["providerId"].as_str().unwrap().to_owned(),
        got.1["providerRootToken"].as_str().unwrap().to_owned(),
    )
}

/// A new space of the admin, supported by the provider.
async fn supported_space(s: &TestServer, name: &str, provider_token: &str) -> String {
    let got = call(
        s,
        Method::POST,
        "/user/spaces",
        Cred::Basic(ADMIN),
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(got.0, 201, "{}", got.1);
    let loc = got.2["location"].to_str().unwrap().to_owned();
    let space = loc.rsplit('/').next().unwrap().to_owned();
    let t = expect_token(s.space_token_as(&space, ADMIN).await).await;
    let got = call(
        s,
        Method::POST,
        "/provider/spaces/support",
        Cred::XAuth(provider_token),
        Some(json!({"token": t, "size": 1000})),
    )
    .await;
    assert_eq!(got.0, 201, "{}", got.1);
    space
}

async fn named(s: &TestServer, name: &str, body: Value) -> String {
    let mut body = body;
    body["name"] = json!(name);
    let got = call(
        s,
        Method::POST,
        "/user/tokens/named",
        Cred::Basic(ADMIN),
        Some(body),
    )
    .await;
    assert_eq!(got.0, 201, "{}", got.1);
    got.1["token"].as_str().unwrap().to_owned()
}

async fn infer(s: &TestServer, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
    call(
        s,
        Method::POST,
        "/tokens/infer_access_token_scope",
        Cred::None,
        Some(body),
    )
    .await
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_declare_a_version_and_show_online() {
    bounded(async {
        let s = start_demo().await;
        // Bad versions are refused with a clear message, nothing registered.
        for bad in [
            "21.02",
            "21.02.7.1",
            "v21.02.7",
            "21.02.x",
            "21.02.7-gamma1",
            "21.02.7-rc",
            "1.2.3-rc1 ",
            "12345.0.0",
        ] {
            let body = json!({"name": "p", "domain": "p.example.org", "version": bad});
            let got = call(
                &s,
                Method::POST,
                "/providers",
                Cred::Basic(ADMIN),
                Some(body),
            )
            .await;
            assert_eq!(got.0, 400, "{bad}: {}", got.1);
            assert!(
                got.1["error_description"]
                    .as_str()
                    .unwrap()
                    .contains("version"),
                "{}",
                got.1
            );
        }
        let (pid, token) = register(&s, "alpha", Some("21.02.7")).await;
        let (old, _) = register(&s, "legacy", None).await;
        // The admin sees both; the one that never made a request is offline,
        // the one without a version has `null`.
        let got = call(
            &s,
            Method::GET,
            &format!("/providers/{old}"),
            Cred::Basic(ADMIN),
            None,
        )
        .await;
        assert_eq!(got.0, 200, "{}", got.1);
        assert_eq!(got.1["version"], Value::Null);
        assert_eq!(got.1["online"], false);
        assert_eq!(got.1["providerId"], old.as_str());
        assert_eq!(got.1["name"], "legacy");
        let got = call(
            &s,
            Method::GET,
            &format!("/providers/{pid}"),
            Cred::Basic(ADMIN),
            None,
        )
        .await;
        assert_eq!(
            (got.1["version"].as_str(), got.1["online"].as_bool()),
            (Some("21.02.7"), Some(false))
        );
        // Its own request makes it online.
        let got = call(&s, Method::GET, "/provider", Cred::XAuth(&token), None).await;
        assert_eq!(got.0, 200, "{}", got.1);
        assert_eq!(got.1["online"], true);
        assert_eq!(got.1["domain"], "alpha.example.org");
        let got = call(
            &s,
            Method::GET,
            &format!("/providers/{pid}"),
            Cred::Basic(ADMIN),
            None,
        )
        .await;
        assert_eq!(got.1["online"], true);
        // It changes its version; bad ones are refused.
        for ok in ["20.02.0-beta3", "25.0.1", "21.02.0-alpha28", "18.02.0-rc13"] {
            let got = call(
                &s,
                Method::PATCH,
                "/provider",
                Cred::XAuth(&token),
                Some(json!({"version": ok})),
            )
            .await;
            assert_eq!(got.0, 204, "{ok}: {}", got.1);
            let got = call(&s, Method::GET, "/provider", Cred::XAuth(&token), None).await;
            assert_eq!(got.1["version"], ok);
        }
        let got = call(
            &s,
            Method::PATCH,
            "/provider",
            Cred::XAuth(&token),
            Some(json!({"version": "25"})),
        )
        .await;
        assert_eq!(got.0, 400, "{}", got.1);
        let got = call(
            &s,
            Method::PATCH,
            "/provider",
            Cred::XAuth(&token),
            Some(json!({})),
        )
        .await;
        assert_eq!(got.0, 400, "{}", got.1);
        let got = call(
            &s,
            Method::PATCH,
            "/provider",
            Cred::XAuth(&token),
            Some(json!({"name": "alpha2"})),
        )
        .await;
        assert_eq!(got.0, 204, "{}", got.1);
        // Users are not providers; a user without `list_providers` sees none.
        let got = call(&s, Method::GET, "/provider", Cred::Basic(ADMIN), None).await;
        assert_eq!(got.0, 403, "{}", got.1);
        let got = call(
            &s,
            Method::PATCH,
            "/provider",
            Cred::Basic(ADMIN),
            Some(json!({"version": "25.0.1"})),
        )
        .await;
        assert_eq!(got.0, 403, "{}", got.1);
        let got = call(
            &s,
            Method::GET,
            &format!("/providers/{pid}"),
            Cred::Basic(GUEST),
            None,
        )
        .await;
        assert_eq!(got.0, 403, "{}", got.1);
        let got = call(
            &s,
            Method::GET,
            &format!("/providers/{}", DEMO_GROUP),
            Cred::Basic(ADMIN),
            None,
        )
        .await;
        assert_eq!(got.0, 404, "{}", got.1);
        assert!(s.store().check().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infer_access_token_scope_follows_the_caveats() {
    bounded(async {
        let s = start_demo().await;
        let (p1, t1) = register(&s, "first", Some("21.02.7")).await;
        let (p2, t2) = register(&s, "second", Some("20.02.20")).await;
        let a = supported_space(&s, "space-a", &t1).await;
        let b = supported_space(&s, "space-b", &t2).await;
        // p2 also supports a; p2 makes no request after this one (it stays
        // online within the window).
        let tok = expect_token(s.space_token_as(&a, ADMIN).await).await;
        let got = call(&s, Method::POST, "/provider/spaces/support", Cred::XAuth(&t2), Some(json!({"token": tok, "size": 5}))).await;
        assert_eq!(got.0, 201);

        // No caveats: every effective space of the admin, with its supports.
        let plain = named(&s, "plain", json!({})).await;
        let got = infer(&s, json!({"token": plain})).await;
        assert_eq!(got.0, 200, "{}", got.1);
        assert_eq!(got.1["validUntil"], Value::Null);
        let scope = &got.1["dataAccessScope"];
        assert_eq!(scope["readonly"], false);
        let spaces = &scope["spaces"];
        assert!(spaces.get(&a).is_some() && spaces.get(&b).is_some(), "{spaces}");
        assert_eq!(spaces[&a]["name"], "space-a");
        let mut both = vec![p1.clone(), p2.clone()];
        both.sort();
        assert_eq!(keys(&spaces[&a]["supports"]), both);
        assert_eq!(spaces[&a]["supports"][&p1], json!({"readonly": false}));
        assert_eq!(keys(&spaces[&b]["supports"]), vec![p2.clone()]);
        assert_eq!(
            scope["providers"][&p1],
            json!({"name": "first", "domain": "first.example.org", "version": "21.02.7", "online": true})
        );
        assert_eq!(scope["providers"][&p2]["version"], "20.02.20");

        // data.path: the first segment is the space; several paths are a
        // union, readonly shows.
        let b64 = |p: &str| base64::engine::general_purpose::STANDARD.encode(p);
        let until = unix_now() + 3600;
        let confined = named(&s, "by-path", json!({"caveats": [
            {"type": "data.path", "whitelist": [b64(&format!("/{a}/dir/file.txt"))]},
            {"type": "data.readonly"},
            {"type": "time", "validUntil": until},
        ]})).await;
        let got = infer(&s, json!({"token": confined})).await;
        assert_eq!(got.0, 200, "{}", got.1);
        assert_eq!(got.1["validUntil"], until);
        let scope = &got.1["dataAccessScope"];
        assert_eq!(scope["readonly"], true);
        assert_eq!(keys(&scope["spaces"]), vec![a.clone()]);
        assert_eq!(keys(&scope["providers"]), both);

        // data.objectid: the space of the CDMI object id; intersected with
        // a data.path naming the other space, nothing is left.
        let oid = objectid_of_file("some-file-uuid", &b).unwrap();
        let by_oid = named(&s, "by-objectid", json!({"caveats": [
            {"type": "data.objectid", "whitelist": [oid]},
        ]})).await;
        let got = infer(&s, json!({"token": by_oid})).await;
        assert_eq!(keys(&got.1["dataAccessScope"]["spaces"]), vec![b.clone()], "{}", got.1);
        assert_eq!(keys(&got.1["dataAccessScope"]["providers"]), vec![p2.clone()]);
        let none = named(&s, "disjoint", json!({"caveats": [
            {"type": "data.objectid", "whitelist": [oid]},
            {"type": "data.path", "whitelist": [b64(&format!("/{a}"))]},
        ]})).await;
        let got = infer(&s, json!({"token": none})).await;
        assert_eq!(got.1["dataAccessScope"]["spaces"], json!({}), "{}", got.1);

        // service: only p1's worker; interface is ignored too.
        let svc = named(&s, "by-service", json!({"caveats": [
            {"type": "service", "whitelist": [format!("opw-{p1}")]},
            {"type": "interface", "interface": "oneclient"},
        ]})).await;
        let got = infer(&s, json!({"token": svc})).await;
        assert_eq!(got.0, 200, "{}", got.1);
        let scope = &got.1["dataAccessScope"];
        assert_eq!(keys(&scope["providers"]), vec![p1.clone()]);
        assert_eq!(keys(&scope["spaces"][&a]["supports"]), vec![p1.clone()]);
        // b has no usable support left, and still shows.
        assert_eq!(scope["spaces"][&b]["supports"], json!({}));
        for (list, n) in [(json!(["opw-*"]), 2), (json!(["ozw-onezone"]), 0)] {
            let t = named(&s, &format!("svc {n}"), json!({"caveats": [{"type": "service", "whitelist": list}]})).await;
            let got = infer(&s, json!({"token": t})).await;
            assert_eq!(keys(&got.1["dataAccessScope"]["providers"]).len(), n, "{}", got.1);
        }

        // A legacy access token (no data caveats) and a provider's token.
        let legacy = expect_token(s.client_token_as(ADMIN).await).await;
        let got = infer(&s, json!({"token": legacy})).await;
        assert_eq!(got.0, 200, "{}", got.1);
        assert!(got.1["validUntil"].as_u64().unwrap() > unix_now());
        assert!(got.1["dataAccessScope"]["spaces"].get(&a).is_some());
        let got = infer(&s, json!({"token": t1})).await;
        assert_eq!(got.0, 200, "{}", got.1);
        assert_eq!(got.1["dataAccessScope"], Value::Null);

        // Errors, in Onezone's shape.
        let got = infer(&s, json!({"token": "garbage"})).await;
        let e = oz_error(&got, 400, "badValueToken");
        assert_eq!(e["details"]["key"], "token");
        assert!(e["details"]["tokenError"]["id"].is_string());
        oz_error(&infer(&s, json!({})).await, 400, "missingRequiredValue");
        oz_error(&infer(&s, json!({"token": plain, "consumerToken": 7})).await, 400, "badValueString");
        let ident = named(&s, "ident", json!({"type": {"identityToken": {}}})).await;
        let e = oz_error(&infer(&s, json!({"token": ident})).await, 400, "notAnAccessToken");
        assert_eq!(e["details"]["received"], json!({"identityToken": {}}));
        let expired = named(&s, "expired", json!({"caveats": [{"type": "time", "validUntil": unix_now() - 10}]})).await;
        oz_error(&infer(&s, json!({"token": expired})).await, 400, "tokenCaveatUnverified");
        // The consumer: the subject by default; nobody fails a consumer caveat.
        let cons = named(&s, "consumer", json!({"caveats": [{"type": "consumer", "whitelist": [format!("usr-{ADMIN_ID}")]}]})).await;
        assert_eq!(infer(&s, json!({"token": cons})).await.0, 200);
        oz_error(&infer(&s, json!({"token": cons, "consumerToken": null})).await, 400, "tokenCaveatUnverified");
        oz_error(&infer(&s, json!({"token": cons, "consumerToken": "garbage"})).await, 400, "badConsumerToken");
        // A wrong method is Onezone's error shape too.
        let got = call(&s, Method::GET, "/tokens/infer_access_token_scope", Cred::None, None).await;
        oz_error(&got, 405, "notSupported");
        assert_eq!(got.2["allow"], "POST");
    })
    .await;
}

use testkit::server::zone_on as zone;

/// A provider's request through one instance makes it online for the
/// other: the last request lives in the store.
#[tokio::test]
async fn the_online_flag_is_shared_by_instances_on_one_engine() {
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
    let a = zone(engine.clone()).await;
    let b = zone(engine).await;
    let admin = a
        .store()
        .create_user(
            "root",
            "unused".into(),
            ozmint::model::ZonePrivileges::all(),
        )
        .await
        .unwrap();
    let (pid, minted) = a
        .register_provider_with_version(&Caller::user(admin), "p", "p.example.org", Some("21.02.7"))
        .await
        .unwrap();
    let me = Caller::provider(pid);
    assert!(!b.provider(&me, &pid).await.unwrap().online);
    let ctx = RequestContext::rest("127.0.0.1".parse().unwrap());
    a.authenticate_request(Some(Credentials::Token(minted.token)), &ctx)
        .await
        .unwrap();
    let seen = b.provider(&me, &pid).await.unwrap();
    assert!(seen.online);
    assert_eq!(seen.version.as_deref(), Some("21.02.7"));
    // Deleting the provider removes its version and last request.
    a.store()
        .delete(ozmint::error::Entity::Provider, &pid)
        .await
        .unwrap();
    assert!(a.store().check().await.unwrap().is_empty());
}

/// A `service` caveat limits a token to the API Onezone allows that service
/// (ctool's service_caveats): a Oneprovider supporting the user may read the
/// user, not list the user's named tokens (`token.null.user_named_tokens,<id>`).
#[tokio::test]
async fn a_service_caveat_allows_what_onezone_allows_the_service() {
    bounded(async {
        let s = start_demo().await;
        // The provider proves itself with its (legacy) root token.
        let (_, root) = register(&s, "p2", None).await;
        supported_space(&s, "served", &root).await;
        let caveats = json!([{"type": "service", "whitelist": ["opw-*"]}]);
        let token = named(&s, "for providers", json!({ "caveats": caveats })).await;
        let get = |path: &str, service: Option<&str>| {
            let mut req = s.client.get(s.url(path)).header("x-auth-token", &token);
            if let Some(t) = service {
                req = req.header("x-onedata-service-token", t);
            }
            async move {
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        let got = get("/user", Some(&root)).await;
        assert_eq!(got.0, 200, "{}", got.1);
        let (status, v) = get("/user/tokens/named", Some(&root)).await;
        assert_eq!(status, 401, "{v}");
        let id = &v["error"]["details"]["authError"]["id"];
        assert_eq!(id, "tokenCaveatUnverified", "{v}");
        // Without the service token the service is Onezone, not whitelisted.
        assert_eq!(get("/user", None).await.0, 401);
    })
    .await;
}
