//! Onedata 20.02+ tokens over HTTPS: named and temporary tokens, their use
//! as credentials (revocation, generations, caveats, api caveats per
//! operation), the public examine/confine/verify endpoints and Onezone's
//! error shape; temporary-token revocation across two instances.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};

use ozmint::engine::memory::MemoryEngine;
use ozmint::engine::Engine;
use ozmint::error::OzError;
use ozmint::model::{Subject, ZonePrivileges};
use ozmint::ops::token_auth::RequestContext;
use ozmint::ops::{AuthError, AuthFailure, Caller, Credentials};
use ozmint::token::v2;

use testkit::server::*;

pub(crate) enum Cred<'a> {
    None,
    Basic((&'a str, &'a str)),
    XAuth(&'a str),
    Bearer(&'a str),
    Macaroon(&'a str),
}

pub(crate) async fn call(
    s: &TestServer,
    method: Method,
    path: &str,
    cred: Cred<'_>,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = s.client.request(method, s.url(path));
    req = match cred {
        Cred::None => req,
        Cred::Basic((u, p)) => req.basic_auth(u, Some(p)),
        Cred::XAuth(t) => req.header("X-Auth-Token", t),
        Cred::Bearer(t) => req.bearer_auth(t),
        Cred::Macaroon(t) => req.header("macaroon", t),
    };
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"))
    };
    (status, v, headers)
}

/// Asserts Onezone's error shape and id; returns the error object.
pub(crate) fn oz_error(
    got: &(u16, Value, reqwest::header::HeaderMap),
    status: u16,
    id: &str,
) -> Value {
    assert_eq!(got.0, status, "status; body {}", got.1);
    let e = &got.1["error"];
    assert_eq!(e["id"], id, "error id in {}", got.1);
    assert!(e["description"].as_str().is_some_and(|d| !d.is_empty()));
    e.clone()
}

/// Asserts a 401 whose `authError` has the id.
fn auth_error(got: &(u16, Value, reqwest::header::HeaderMap), id: &str) -> Value {
    let e = oz_error(got, 401, "unauthorized");
    assert_eq!(e["details"]["authError"]["id"], id, "in {}", got.1);
    e["details"]["authError"].clone()
}

pub(crate) async fn create_named(
    s: &TestServer,
    who: (&str, &str),
    body: Value,
) -> (String, String) {
    let got = call(
        s,
        Method::POST,
        "/user/tokens/named",
        Cred::Basic(who),
        Some(body),
    )
    .await;
    assert_eq!(got.0, 201, "{}", got.1);
    let id = got.1["tokenId"].as_str().expect("tokenId").to_owned();
    assert_eq!(
        got.2.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/tokens/named/{id}").as_str())
    );
    (id, got.1["token"].as_str().expect("token").to_owned())
}

#[tokio::test]
async fn named_tokens_are_created_used_revoked_and_deleted_over_http() {
    bounded(async {
        let s = start_demo().await;
        let (id, token) = create_named(&s, GUEST, json!({ "name": "my token" })).await;
        assert!(token.starts_with("MDA"), "{token}");
        // Accepted in every header access tokens are accepted in.
        for cred in [
            Cred::XAuth(&token),
            Cred::Bearer(&token),
            Cred::Macaroon(&token),
        ] {
            let got = call(&s, Method::GET, "/user", cred, None).await;
            assert_eq!(got.0, 200, "{}", got.1);
        }
        // Names are unique per subject and follow Onezone's rules.
        let got = call(
            &s,
            Method::POST,
            "/user/tokens/named",
            Cred::Basic(GUEST),
            Some(json!({ "name": "my token" })),
        )
        .await;
        let e = oz_error(&got, 400, "badValueIdentifierOccupied");
        assert_eq!(e["details"]["key"], "name");
        let got = call(
            &s,
            Method::POST,
            "/user/tokens/named",
            Cred::Basic(GUEST),
            Some(json!({ "name": " x" })),
        )
        .await;
        oz_error(&got, 400, "badValueName");
        let got = call(
            &s,
            Method::POST,
            "/user/tokens/named",
            Cred::Basic(GUEST),
            Some(json!({})),
        )
        .await;
        oz_error(&got, 400, "missingRequiredValue");
        let many: Vec<Value> = (0..65)
            .map(|_| json!({"type": "time", "validUntil": 4_000_000_000u64}))
            .collect();
        let got = call(
            &s,
            Method::POST,
            "/user/tokens/named",
            Cred::Basic(GUEST),
            Some(json!({ "name": "many", "caveats": many })),
        )
        .await;
        oz_error(&got, 400, "badValueTextTooLarge");
        let big = "x".repeat(5000);
        let got = call(
            &s,
            Method::POST,
            "/user/tokens/named",
            Cred::Basic(GUEST),
            Some(json!({ "name": "big", "customMetadata": { "a": big } })),
        )
        .await;
        oz_error(&got, 400, "badValueTextTooLarge");
        // Another user may have the same name.
        create_named(&s, CAROL, json!({ "name": "my token" })).await;

        // Listing and reading, in the reference's shapes.
        let got = call(
            &s,
            Method::GET,
            "/user/tokens/named",
            Cred::Basic(GUEST),
            None,
        )
        .await;
        assert_eq!(got.1, json!({ "tokens": [id] }));
        let got = call(
            &s,
            Method::GET,
            "/user/tokens/named/name/my%20token",
            Cred::Basic(GUEST),
            None,
        )
        .await;
        assert_eq!(got.0, 200, "{}", got.1);
        let t = &got.1;
        assert_eq!(t["id"], id);
        assert_eq!(t["name"], "my token");
        assert_eq!(t["subject"], json!({ "type": "user", "id": GUEST_ID }));
        assert_eq!(t["type"], json!({ "accessToken": {} }));
        assert_eq!(t["caveats"], json!([]));
        assert_eq!(t["metadata"]["custom"], json!({}));
        assert!(t["metadata"]["creationTime"].as_u64().unwrap() >= unix_now() - 60);
        assert_eq!(t["revoked"], false);
        assert_eq!(t["token"], token, "rebuilt deterministically");
        let got = call(
            &s,
            Method::GET,
            &format!("/tokens/named/{id}"),
            Cred::Basic(GUEST),
            None,
        )
        .await;
        assert_eq!(&got.1, t);
        // Others may not; a zone token manager may.
        let got = call(
            &s,
            Method::GET,
            &format!("/tokens/named/{id}"),
            Cred::Basic(CAROL),
            None,
        )
        .await;
        oz_error(&got, 403, "forbidden");
        let got = call(
            &s,
            Method::GET,
            &format!("/tokens/named/{id}"),
            Cred::Basic(ADMIN),
            None,
        )
        .await;
        assert_eq!(got.0, 200);
        let got = call(&s, Method::GET, "/tokens/named", Cred::Basic(GUEST), None).await;
        oz_error(&got, 403, "forbidden");
        let got = call(&s, Method::GET, "/tokens/named", Cred::Basic(ADMIN), None).await;
        assert_eq!(got.1["tokens"].as_array().unwrap().len(), 2);
        let got = call(
            &s,
            Method::POST,
            &format!("/users/{GUEST_ID}/tokens/named"),
            Cred::Basic(ADMIN),
            Some(json!({ "name": "by admin" })),
        )
        .await;
        assert_eq!(got.0, 201, "{}", got.1);
        let got = call(
            &s,
            Method::POST,
            &format!("/users/{GUEST_ID}/tokens/named"),
            Cred::Basic(CAROL),
            Some(json!({ "name": "by carol" })),
        )
        .await;
        oz_error(&got, 403, "forbidden");

        // Revocation is reversible; the status says so.
        let status = format!("/tokens/named/{id}/status");
        let got = call(
            &s,
            Method::PATCH,
            &format!("/tokens/named/{id}"),
            Cred::Basic(GUEST),
            Some(json!({ "revoked": true, "customMetadata": {"k": 1} })),
        )
        .await;
        assert_eq!(got.0, 204, "{}", got.1);
        assert_eq!(
            call(&s, Method::GET, &status, Cred::Basic(GUEST), None)
                .await
                .1,
            json!({ "revoked": true })
        );
        auth_error(
            &call(
                &s,
                Method::GET,
                "/user/tokens/named",
                Cred::XAuth(&token),
                None,
            )
            .await,
            "tokenRevoked",
        );
        // The legacy endpoints answer in their own shape.
        let got = call(&s, Method::GET, "/user", Cred::XAuth(&token), None).await;
        assert_eq!(got.1["error"], "invalid_token");
        let got = call(
            &s,
            Method::PATCH,
            &format!("/tokens/named/{id}"),
            Cred::Basic(GUEST),
            Some(json!({ "revoked": false })),
        )
        .await;
        assert_eq!(got.0, 204);
        assert_eq!(
            call(&s, Method::GET, "/user", Cred::XAuth(&token), None)
                .await
                .0,
            200
        );
        let got = call(
            &s,
            Method::PATCH,
            &format!("/tokens/named/{id}"),
            Cred::Basic(GUEST),
            Some(json!({})),
        )
        .await;
        oz_error(&got, 400, "missingAtLeastOneValue");
        let got = call(
            &s,
            Method::PATCH,
            &format!("/tokens/named/{id}"),
            Cred::Basic(GUEST),
            Some(json!({ "name": "renamed" })),
        )
        .await;
        assert_eq!(got.0, 204);
        let got = call(
            &s,
            Method::GET,
            "/user/tokens/named/name/renamed",
            Cred::Basic(GUEST),
            None,
        )
        .await;
        assert_eq!(got.1["metadata"]["custom"], json!({"k": 1}));

        // Examination: public, no verification, the reference's shape.
        let got = call(
            &s,
            Method::POST,
            "/tokens/examine",
            Cred::None,
            Some(json!({ "token": token })),
        )
        .await;
        assert_eq!(got.0, 200, "{}", got.1);
        assert_eq!(got.1["id"], id);
        assert_eq!(got.1["persistence"], "named");
        assert_eq!(got.1["onezoneDomain"], "onezone");
        assert_eq!(got.1["subject"], json!({ "type": "user", "id": GUEST_ID }));

        // Public verification.
        let got = call(
            &s,
            Method::POST,
            "/tokens/verify_access_token",
            Cred::None,
            Some(json!({ "token": token })),
        )
        .await;
        assert_eq!(
            got.1,
            json!({ "subject": { "type": "user", "id": GUEST_ID }, "ttl": null })
        );
        let got = call(
            &s,
            Method::POST,
            "/tokens/verify_identity_token",
            Cred::None,
            Some(json!({ "token": token })),
        )
        .await;
        oz_error(&got, 400, "notAnIdentityToken");
        let got = call(
            &s,
            Method::POST,
            "/tokens/verify_access_token",
            Cred::None,
            Some(json!({ "token": "garbage" })),
        )
        .await;
        let e = oz_error(&got, 400, "badValueToken");
        assert_eq!(e["details"]["tokenError"]["id"], "badToken");
        let got = call(
            &s,
            Method::POST,
            "/tokens/verify_invite_token",
            Cred::None,
            Some(json!({ "token": token })),
        )
        .await;
        oz_error(&got, 400, "notAnInviteToken");
        let until = unix_now() + 100;
        let got = call(
            &s,
            Method::POST,
            "/tokens/confine",
            Cred::None,
            Some(json!({ "token": token, "caveats": [{"type": "time", "validUntil": until}] })),
        )
        .await;
        assert_eq!(got.0, 200, "{}", got.1);
        let confined = got.1["token"].as_str().unwrap().to_owned();
        let got = call(
            &s,
            Method::POST,
            "/tokens/verify_access_token",
            Cred::None,
            Some(json!({ "token": confined })),
        )
        .await;
        let ttl = got.1["ttl"].as_i64().unwrap();
        assert!((90..=100).contains(&ttl), "{ttl}");
        let got = call(
            &s,
            Method::GET,
            "/provider/public/get_current_time",
            Cred::None,
            None,
        )
        .await;
        let ms = got.1["timeMillis"].as_u64().unwrap();
        assert!(ms / 1000 >= unix_now() - 5 && ms / 1000 <= unix_now() + 5);

        // Deleted: tokenInvalid; delete-all empties the list.
        let got = call(
            &s,
            Method::DELETE,
            &format!("/tokens/named/{id}"),
            Cred::Basic(GUEST),
            None,
        )
        .await;
        assert_eq!(got.0, 204);
        auth_error(
            &call(
                &s,
                Method::GET,
                "/user/tokens/named",
                Cred::XAuth(&token),
                None,
            )
            .await,
            "tokenInvalid",
        );
        let got = call(
            &s,
            Method::POST,
            "/tokens/verify_access_token",
            Cred::None,
            Some(json!({ "token": token })),
        )
        .await;
        oz_error(&got, 400, "tokenInvalid");
        assert_eq!(
            call(
                &s,
                Method::DELETE,
                "/user/tokens/named",
                Cred::Basic(GUEST),
                None
            )
            .await
            .0,
            204
        );
        assert_eq!(
            call(
                &s,
                Method::GET,
                "/user/tokens/named",
                Cred::Basic(GUEST),
                None
            )
            .await
            .1,
            json!({ "tokens": [] })
        );
        assert!(s.store().check().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn caveats_of_v2_tokens_hold_on_the_rest_api() {
    bounded(async {
        let s = start_demo().await;
        // An api caveat: reading user data only.
        let (_, api) = create_named(&s, GUEST, json!({ "name": "reader", "caveats": [{"type": "api", "whitelist": ["ozw/get/user.*.*:*"]}] })).await;
        assert_eq!(call(&s, Method::GET, "/user", Cred::XAuth(&api), None).await.0, 200);
        // Listing tokens is an operation on tokens (Onezone's GRI
        // `token.null.user_named_tokens,<userId>`), not on the user.
        auth_error(&call(&s, Method::GET, "/user/tokens/named", Cred::XAuth(&api), None).await, "tokenCaveatUnverified");
        let (_, lister) = create_named(&s, GUEST, json!({ "name": "lister", "caveats": [{"type": "api", "whitelist": ["ozw/get/token.null.user_named_tokens,*:private"]}] })).await;
        let got = call(&s, Method::GET, "/user/tokens/named", Cred::XAuth(&lister), None).await;
        assert_eq!(got.0, 200, "{}", got.1);
        assert_eq!(call(&s, Method::GET, "/user", Cred::XAuth(&lister), None).await.0, 401);
        // A token sent to a public endpoint is held to its caveats there too.
        let confine = json!({ "token": lister, "caveats": [{"type": "interface", "interface": "rest"}] });
        auth_error(&call(&s, Method::POST, "/tokens/confine", Cred::XAuth(&api), Some(confine.clone())).await, "tokenCaveatUnverified");
        auth_error(&call(&s, Method::POST, "/tokens/examine", Cred::XAuth(&api), Some(json!({ "token": lister }))).await, "tokenCaveatUnverified");
        assert_eq!(call(&s, Method::POST, "/tokens/confine", Cred::None, Some(confine.clone())).await.0, 200);
        let (_, confiner) = create_named(&s, GUEST, json!({ "name": "confiner", "caveats": [{"type": "api", "whitelist": ["ozw/create/token.null.confine:public"]}] })).await;
        let got = call(&s, Method::POST, "/tokens/confine", Cred::XAuth(&confiner), Some(confine)).await;
        assert_eq!(got.0, 200, "{}", got.1);
        let got = call(&s, Method::GET, "/spaces", Cred::XAuth(&api), None).await;
        assert_eq!(got.0, 401, "{}", got.1);
        let e = auth_error(
            &call(&s, Method::DELETE, "/user/tokens/named", Cred::XAuth(&api), None).await,
            "tokenCaveatUnverified",
        );
        assert_eq!(e["details"]["caveat"]["type"], "api");
        auth_error(&call(&s, Method::POST, "/user/tokens/named", Cred::XAuth(&api), Some(json!({"name": "more"}))).await, "tokenCaveatUnverified");
        // Legacy endpoints too.
        let got = call(&s, Method::POST, "/user/client_tokens", Cred::XAuth(&api), None).await;
        assert_eq!((got.0, &got.1["error"]), (401, &json!("invalid_token")), "{}", got.1);
        // Expired; data access (not on Onezone's REST API); interface.
        let past = unix_now() - 10;
        let (_, expired) = create_named(&s, GUEST, json!({ "name": "expired", "caveats": [{"type": "time", "validUntil": past}] })).await;
        auth_error(&call(&s, Method::GET, "/user/tokens/named", Cred::XAuth(&expired), None).await, "tokenCaveatUnverified");
        let (_, data) = create_named(&s, GUEST, json!({ "name": "data", "caveats": [{"type": "data.readonly"}] })).await;
        auth_error(&call(&s, Method::GET, "/user/tokens/named", Cred::XAuth(&data), None).await, "tokenCaveatUnverified");
        let got = call(&s, Method::POST, "/tokens/verify_access_token", Cred::None, Some(json!({ "token": data, "allowDataAccessCaveats": true }))).await;
        assert_eq!(got.0, 200, "{}", got.1);
        let (_, rest) = create_named(&s, GUEST, json!({ "name": "rest", "caveats": [{"type": "interface", "interface": "rest"}, {"type": "ip", "whitelist": ["127.0.0.0/8"]}] })).await;
        assert_eq!(call(&s, Method::GET, "/user", Cred::XAuth(&rest), None).await.0, 200);
        let (_, elsewhere) = create_named(&s, GUEST, json!({ "name": "elsewhere", "caveats": [{"type": "ip", "whitelist": ["10.0.0.0/8"]}] })).await;
        auth_error(&call(&s, Method::GET, "/user/tokens/named", Cred::XAuth(&elsewhere), None).await, "tokenCaveatUnverified");
        // No GeoIP database configured: the reason says so.
        let (_, asn) = create_named(&s, GUEST, json!({ "name": "asn", "caveats": [{"type": "asn", "whitelist": [1]}] })).await;
        let e = auth_error(&call(&s, Method::GET, "/user/tokens/named", Cred::XAuth(&asn), None).await, "tokenCaveatUnverified");
        assert!(e["description"].as_str().unwrap().contains("no GeoIP database"), "{e}");
        // A consumer caveat needs a consumer token.
        let (_, ident) = create_named(&s, CAROL, json!({ "name": "me", "type": {"identityToken": {}} })).await;
        let carol_consumer = json!([{"type": "consumer", "whitelist": [format!("usr-{CAROL_ID}")]}]);
        let (_, for_carol) = create_named(&s, GUEST, json!({ "name": "for carol", "caveats": carol_consumer })).await;
        auth_error(&call(&s, Method::GET, "/user/tokens/named", Cred::XAuth(&for_carol), None).await, "tokenCaveatUnverified");
        let got = s.client.get(s.url("/user")).header("x-auth-token", &for_carol).header("x-onedata-consumer-token", &ident).send().await.unwrap();
        assert_eq!(got.status(), 200);
        let got = call(&s, Method::POST, "/tokens/verify_access_token", Cred::None, Some(json!({ "token": for_carol, "consumerToken": ident }))).await;
        assert_eq!(got.0, 200, "{}", got.1);
        // Identity tokens are no access tokens.
        auth_error(&call(&s, Method::GET, "/user/tokens/named", Cred::XAuth(&ident), None).await, "notAnAccessToken");
        let got = call(&s, Method::POST, "/tokens/verify_identity_token", Cred::None, Some(json!({ "token": ident }))).await;
        assert_eq!(got.1["subject"]["id"], CAROL_ID);
        // A token with caveats cannot mint itself a wider one.
        let got = call(&s, Method::POST, "/user/tokens/named", Cred::XAuth(&rest), Some(json!({"name": "wider"}))).await;
        oz_error(&got, 403, "forbidden");
        // Legacy tokens keep working as before.
        let legacy = expect_token(s.client_token_as(GUEST).await).await;
        assert_eq!(call(&s, Method::GET, "/user", Cred::XAuth(&legacy), None).await.0, 200);
    })
    .await;
}

/// Onezone 20.02+ verifies the legacy client and provider tokens it migrated;
/// ozmint's legacy tokens verify on the same endpoints, failing in Onezone's
/// terms.
#[tokio::test]
async fn legacy_tokens_verify_on_the_20_02_endpoints() {
    bounded(async {
        let s = start_demo().await;
        let verify = |what: &'static str, token: String| {
            let s = &s;
            async move {
                let path = format!("/tokens/verify_{what}_token");
                call(
                    s,
                    Method::POST,
                    &path,
                    Cred::None,
                    Some(json!({ "token": token })),
                )
                .await
            }
        };
        let legacy = expect_token(s.client_token_as(GUEST).await).await;
        let got = verify("access", legacy.clone()).await;
        assert_eq!(got.0, 200, "{}", got.1);
        assert_eq!(got.1["subject"], json!({ "type": "user", "id": GUEST_ID }));
        let ttl = got.1["ttl"].as_i64().expect("a ttl: legacy tokens expire");
        assert!(ttl > 0, "{}", got.1);
        // A user's access token is no identity token (only providers' are).
        oz_error(
            &verify("identity", legacy.clone()).await,
            400,
            "notAnIdentityToken",
        );
        // Attenuated by its holder: an expired time caveat, an unknown caveat.
        let expired = ozmint::token::wire::attenuate(&legacy, "time < 1000").unwrap();
        let e = oz_error(
            &verify("access", expired).await,
            400,
            "tokenCaveatUnverified",
        );
        assert_eq!(
            e["details"]["caveat"],
            json!({ "type": "time", "validUntil": 1000 })
        );
        let odd = ozmint::token::wire::attenuate(&legacy, "color = blue").unwrap();
        let e = oz_error(&verify("access", odd).await, 400, "tokenCaveatUnknown");
        assert_eq!(e["details"]["caveat"], "color = blue");
        // A provider's root token: an access and an identity token of the provider.
        let got = call(
            &s,
            Method::POST,
            "/providers",
            Cred::Basic(ADMIN),
            Some(json!({"name": "p1", "domain": "p1.example.org"})),
        )
        .await;
        assert_eq!(got.0, 201, "{}", got.1);
        let (pid, root) = (
            got.1["providerId"].clone(),
            got.1["providerRootToken"].as_str().unwrap().to_owned(),
        );
        for what in ["access", "identity"] {
            let got = verify(what, root.clone()).await;
            assert_eq!(got.0, 200, "{what}: {}", got.1);
            assert_eq!(
                got.1["subject"],
                json!({ "type": "oneprovider", "id": pid })
            );
        }
        // A legacy support token (Onezone did not migrate 18.02 invites).
        let support = expect_token(s.space_token_as(DEMO_SPACE, ADMIN).await).await;
        oz_error(&verify("access", support).await, 400, "tokenInvalid");
        // Deleted by its owner.
        let id = ozmint::token::legacy_id(&ozmint::token::wire::parse(&legacy).unwrap()).unwrap();
        let path = format!("/user/client_tokens/{id}");
        let got = call(&s, Method::DELETE, &path, Cred::Basic(GUEST), None).await;
        assert!((200..300).contains(&got.0), "{}: {}", got.0, got.1);
        oz_error(&verify("access", legacy).await, 400, "tokenInvalid");
    })
    .await;
}

#[tokio::test]
async fn temporary_tokens_need_a_time_caveat_write_nothing_and_revoke_by_generation() {
    bounded(async {
        let s = start_demo().await;
        let path = "/user/tokens/temporary";
        let got = call(&s, Method::POST, path, Cred::Basic(GUEST), Some(json!({}))).await;
        let e = oz_error(&got, 400, "tokenTimeCaveatRequired");
        assert_eq!(e["details"]["maxTtl"], 604800);
        let far = unix_now() + 604800 + 100;
        let got = call(
            &s,
            Method::POST,
            path,
            Cred::Basic(GUEST),
            Some(json!({"caveats": [{"type": "time", "validUntil": far}]})),
        )
        .await;
        oz_error(&got, 400, "tokenTimeCaveatRequired");
        let body = json!({"caveats": [{"type": "time", "validUntil": unix_now() + 600}]});
        let got = call(
            &s,
            Method::POST,
            path,
            Cred::Basic(GUEST),
            Some(body.clone()),
        )
        .await;
        assert_eq!(got.0, 201, "{}", got.1);
        assert!(got.2.get("location").is_none());
        let first = got.1["token"].as_str().unwrap().to_owned();
        assert_eq!(
            call(&s, Method::GET, "/user", Cred::XAuth(&first), None)
                .await
                .0,
            200
        );
        assert_eq!(
            call(&s, Method::GET, path, Cred::Basic(GUEST), None)
                .await
                .1,
            json!({"generation": 1})
        );
        // Once the secret exists, minting writes nothing.
        let engine = s.store().engine().clone();
        let before = engine.scan(&[], None, 1000).await.unwrap().entries;
        let got = call(
            &s,
            Method::POST,
            path,
            Cred::Basic(GUEST),
            Some(body.clone()),
        )
        .await;
        assert_eq!(got.0, 201);
        let second = got.1["token"].as_str().unwrap().to_owned();
        assert_eq!(engine.scan(&[], None, 1000).await.unwrap().entries, before);
        assert_ne!(first, second);
        // DELETE revokes all of them: the older generation is tokenRevoked.
        assert_eq!(
            call(&s, Method::DELETE, path, Cred::Basic(GUEST), None)
                .await
                .0,
            204
        );
        auth_error(
            &call(
                &s,
                Method::GET,
                "/user/tokens/named",
                Cred::XAuth(&first),
                None,
            )
            .await,
            "tokenRevoked",
        );
        auth_error(
            &call(
                &s,
                Method::GET,
                "/user/tokens/named",
                Cred::XAuth(&second),
                None,
            )
            .await,
            "tokenRevoked",
        );
        assert_eq!(
            call(&s, Method::GET, path, Cred::Basic(GUEST), None)
                .await
                .1,
            json!({"generation": 2})
        );
        let got = call(
            &s,
            Method::POST,
            path,
            Cred::Basic(GUEST),
            Some(body.clone()),
        )
        .await;
        let third = got.1["token"].as_str().unwrap().to_owned();
        assert_eq!(
            call(&s, Method::GET, "/user", Cred::XAuth(&third), None)
                .await
                .0,
            200
        );
        // A generation newer than the subject's is forged: tokenInvalid.
        let guest = Subject::User(id(GUEST_ID));
        let (secret, _) = s
            .store()
            .temporary_secret_and_subject(&guest)
            .await
            .unwrap();
        let secret = secret.unwrap();
        let forged = v2::mint(
            "onezone",
            &v2::Identifier::V2(
                v2::V2Identifier::new(
                    v2::Persistence::Temporary {
                        generation: secret.generation + 1,
                    },
                    v2::TokenSubject::user(GUEST_ID).unwrap(),
                    v2::TokenType::ACCESS,
                    "forged",
                )
                .unwrap(),
            ),
            secret.secret.as_bytes(),
            &[],
        )
        .unwrap();
        auth_error(
            &call(
                &s,
                Method::GET,
                "/user/tokens/named",
                Cred::XAuth(&forged),
                None,
            )
            .await,
            "tokenInvalid",
        );
        // Admins manage others' temporary tokens; others may not.
        let other = format!("/users/{GUEST_ID}/tokens/temporary");
        oz_error(
            &call(&s, Method::DELETE, &other, Cred::Basic(CAROL), None).await,
            403,
            "forbidden",
        );
        assert_eq!(
            call(&s, Method::DELETE, &other, Cred::Basic(ADMIN), None)
                .await
                .0,
            204
        );
        auth_error(
            &call(
                &s,
                Method::GET,
                "/user/tokens/named",
                Cred::XAuth(&third),
                None,
            )
            .await,
            "tokenRevoked",
        );

        // A deleted subject: tokenSubjectInvalid; its named tokens go with it.
        let dave = s.add_user("dave", "dave-pw", ZonePrivileges::empty()).await;
        let got = call(
            &s,
            Method::POST,
            path,
            Cred::Basic(("dave", "dave-pw")),
            Some(body.clone()),
        )
        .await;
        let daves = got.1["token"].as_str().unwrap().to_owned();
        create_named(&s, ("dave", "dave-pw"), json!({"name": "daves"})).await;
        s.store().delete(ozmint::Entity::User, &dave).await.unwrap();
        auth_error(
            &call(
                &s,
                Method::GET,
                "/user/tokens/named",
                Cred::XAuth(&daves),
                None,
            )
            .await,
            "tokenSubjectInvalid",
        );
        let got = call(&s, Method::GET, "/tokens/named", Cred::Basic(ADMIN), None).await;
        assert_eq!(got.1, json!({"tokens": []}));
        assert!(s.store().check().await.unwrap().is_empty());
    })
    .await;
}

use testkit::server::zone_on as zone;

#[tokio::test]
async fn a_temporary_token_revoked_through_one_instance_is_refused_by_the_other_at_once() {
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
    let a = zone(engine.clone()).await;
    let b = zone(engine).await;
    let alice = a
        .store()
        .create_user("alice", "unused".into(), ZonePrivileges::empty())
        .await
        .unwrap();
    let caller = Caller::user(alice);
    let subject = Subject::User(alice);
    let body = json!({"caveats": [{"type": "time", "validUntil": unix_now() + 600}]});
    let token = a
        .create_temporary_token(&caller, subject, &body)
        .await
        .unwrap()
        .token;
    let ctx = RequestContext::rest("127.0.0.1".parse().unwrap());
    for z in [&a, &b] {
        let got = z
            .authenticate_request(Some(Credentials::Token(token.clone())), &ctx)
            .await
            .unwrap();
        assert_eq!(got.caller.subject, subject);
    }
    assert_eq!(
        b.revoke_temporary_tokens(&caller, subject).await.unwrap(),
        2
    );
    let e = a
        .authenticate_request(Some(Credentials::Token(token.clone())), &ctx)
        .await
        .unwrap_err();
    assert!(
        matches!(e, AuthFailure::Auth(AuthError::Onezone(OzError::Revoked))),
        "{e:?}"
    );
    // A token minted by a after the revocation verifies on b.
    let fresh = a
        .create_temporary_token(&caller, subject, &body)
        .await
        .unwrap()
        .token;
    b.authenticate_request(Some(Credentials::Token(fresh)), &ctx)
        .await
        .unwrap();
    // And a named token revoked through b is refused by a.
    let req =
        ozmint::ops::named_tokens::NamedTokenRequest::from_json(&json!({"name": "nn"})).unwrap();
    let info = a.create_named_token(&caller, subject, req).await.unwrap();
    a.authenticate_request(Some(Credentials::Token(info.token.clone())), &ctx)
        .await
        .unwrap();
    b.update_named_token(
        &caller,
        &info.id,
        ozmint::ops::named_tokens::NamedTokenPatch {
            revoked: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let e = a
        .authenticate_request(Some(Credentials::Token(info.token)), &ctx)
        .await
        .unwrap_err();
    assert!(
        matches!(e, AuthFailure::Auth(AuthError::Onezone(OzError::Revoked))),
        "{e:?}"
    );
}
