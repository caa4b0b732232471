//! The administration API over HTTPS against the demo server: users, groups,
//! spaces, memberships, privileges, effective membership, pagination,
//! deletion without dangling references, and backups while running.
//!
//! Every test starts its own server on 127.0.0.1 (ephemeral port, temporary
//! data directory) and is bounded in time. Status conventions under test
//! (Onezone rc14): create -> 201 with `Location`, PATCH -> 204, DELETE -> 202,
//! PUT of a group member -> 200, PUT of a space member -> 204; errors are
//! 401 (no credentials), 400 (malformed id, bad body, unknown privilege or
//! operation, bad query), 404 (unknown entity or relation), 403 (missing
//! privilege), 405 (wrong method, with `Allow`), 409 (taken name, cycle).

use std::collections::BTreeSet;

use reqwest::Method as M;
use serde_json::{json, Value};

use ozmint::Id;
use testkit::server::{
    assert_error, assert_error_code, bounded, content_type, expect_token, id, start_demo,
    TestServer, ADMIN, ADMIN_ID, CAROL, CAROL_ID, DEMO_GROUP, DEMO_SPACE, GUEST, GUEST_ID,
};

/// Basic credentials, or none.
type Cred<'a> = Option<(&'a str, &'a str)>;

const NOBODY: Cred<'static> = None;
const AS_ADMIN: Cred<'static> = Some(ADMIN);
const AS_GUEST: Cred<'static> = Some(GUEST);
const AS_CAROL: Cred<'static> = Some(CAROL);

/// The 13 group privileges (ONEZONE.md).
const GROUP_ALL: [&str; 13] = [
    "group_change_data",
    "group_invite_user",
    "group_remove_user",
    "group_join_space",
    "group_create_space",
    "group_set_privileges",
    "group_remove",
    "group_leave_space",
    "group_view_data",
    "group_create_space_token",
    "group_join_group",
    "group_invite_group",
    "group_remove_group",
];

/// The 12 space privileges (ONEZONE.md).
const SPACE_ALL: [&str; 12] = [
    "space_invite_user",
    "space_remove_user",
    "space_invite_group",
    "space_remove_group",
    "space_set_privileges",
    "space_remove",
    "space_add_provider",
    "space_remove_provider",
    "space_change_data",
    "space_view_data",
    "space_manage_shares",
    "space_write_files",
];

const GROUP_MEMBER: [&str; 1] = ["group_view_data"];
const SPACE_MEMBER: [&str; 2] = ["space_view_data", "space_write_files"];

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `METHOD /api/v3/onezone{path}` with optional Basic credentials and JSON body.
async fn call(
    s: &TestServer,
    method: M,
    path: &str,
    who: Cred<'_>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = s.client.request(method.clone(), s.url(path));
    if let Some((u, p)) = who {
        req = req.basic_auth(u, Some(p));
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Like [`call`] with a raw body sent as `application/json`.
async fn call_raw(
    s: &TestServer,
    method: M,
    path: &str,
    who: Cred<'_>,
    body: &str,
) -> reqwest::Response {
    let mut req = s
        .client
        .request(method.clone(), s.url(path))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_owned());
    if let Some((u, p)) = who {
        req = req.basic_auth(u, Some(p));
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

async fn get(s: &TestServer, path: &str, who: Cred<'_>) -> reqwest::Response {
    call(s, M::GET, path, who, None).await
}

/// The `error` code expected with each error status (409s name theirs).
fn code_for(status: u16) -> &'static str {
    match status {
        400 => "invalid_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        other => panic!("no default error code for {other}"),
    }
}

/// `METHOD path` as `who`, without a body, answers the error `status`.
async fn fails(s: &TestServer, method: M, path: &str, who: Cred<'_>, status: u16) {
    let r = call(s, method, path, who, None).await;
    assert_error_code(r, status, code_for(status)).await;
}

/// Like [`fails`], with a JSON body.
async fn fails_json(
    s: &TestServer,
    method: M,
    path: &str,
    who: Cred<'_>,
    body: Value,
    status: u16,
) {
    let r = call(s, method, path, who, Some(body)).await;
    assert_error_code(r, status, code_for(status)).await;
}

/// Like [`fails`], with a raw body sent as JSON.
async fn fails_raw(s: &TestServer, method: M, path: &str, who: Cred<'_>, body: &str, status: u16) {
    let r = call_raw(s, method, path, who, body).await;
    assert_error_code(r, status, code_for(status)).await;
}

/// Asserts `status` and a JSON object body; returns the body.
async fn expect_json(resp: reqwest::Response, status: u16) -> Value {
    let got = resp.status().as_u16();
    let url = resp.url().path().to_owned();
    let ctype = content_type(&resp);
    let text = resp.text().await.expect("body");
    assert_eq!(got, status, "status of {url}; body: {text}");
    assert_eq!(ctype.as_deref(), Some("application/json"), "{url}: {text}");
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {text}"));
    assert!(v.is_object(), "{url}: not a JSON object: {text}");
    v
}

/// Asserts `status` and an empty body.
async fn expect_empty(resp: reqwest::Response, status: u16) {
    let got = resp.status().as_u16();
    let url = resp.url().path().to_owned();
    let text = resp.text().await.expect("body");
    assert_eq!(got, status, "status of {url}; body: {text}");
    assert!(text.is_empty(), "{url}: expected an empty body, got {text}");
}

/// Asserts 201 with `Location: /{kind}/{id}`; returns the id.
async fn expect_created(resp: reqwest::Response, kind: &str) -> String {
    let got = resp.status().as_u16();
    let url = resp.url().path().to_owned();
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|v| v.to_str().expect("ascii Location").to_owned());
    let text = resp.text().await.expect("body");
    assert_eq!(got, 201, "status of POST {url}; body: {text}");
    let location = location.unwrap_or_else(|| panic!("POST {url}: no Location header"));
    let id = location
        .strip_prefix(&format!("/{kind}/"))
        .unwrap_or_else(|| panic!("POST {url}: Location {location} is not /{kind}/{{id}}"));
    assert_eq!(id.len(), 43, "id in Location {location}");
    id.parse::<Id>()
        .unwrap_or_else(|e| panic!("id in Location {location}: {e:?}"));
    id.to_owned()
}

/// The `privileges` list of a body, as a set.
fn privs(v: &Value) -> BTreeSet<String> {
    let list = v["privileges"]
        .as_array()
        .unwrap_or_else(|| panic!("a `privileges` array in {v}"));
    let out: BTreeSet<String> = list
        .iter()
        .map(|p| p.as_str().expect("privilege names are strings").to_owned())
        .collect();
    assert_eq!(out.len(), list.len(), "no duplicate privileges in {v}");
    out
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The ids listed under `key`.
fn list(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("a `{key}` array in {v}"))
        .iter()
        .map(|x| x.as_str().expect("ids are strings").to_owned())
        .collect()
}

/// GET `path` (a list endpoint, one page of at most 1000) and the ids under `key`.
async fn ids(s: &TestServer, path: &str, who: Cred<'_>, key: &str) -> BTreeSet<String> {
    let v = expect_json(get(s, path, who).await, 200).await;
    assert!(v.get("next").is_none(), "{path}: one page expected: {v}");
    list(&v, key).into_iter().collect()
}

/// GET `path` (a privileges endpoint) as a set.
async fn privileges_of(s: &TestServer, path: &str, who: Cred<'_>) -> BTreeSet<String> {
    privs(&expect_json(get(s, path, who).await, 200).await)
}

/// PATCH a privileges endpoint; expects 204.
async fn patch_privs(s: &TestServer, path: &str, who: Cred<'_>, op: &str, names: &[&str]) {
    let body = json!({ "operation": op, "privileges": names });
    expect_empty(call(s, M::PATCH, path, who, Some(body)).await, 204).await;
}

/// Creates a user through the API as admin; returns the id.
async fn new_user(s: &TestServer, name: &str, password: &str) -> String {
    let body = json!({ "username": name, "password": password });
    expect_created(
        call(s, M::POST, "/users", AS_ADMIN, Some(body)).await,
        "users",
    )
    .await
}

/// Creates a group (`POST /groups`); returns the id.
async fn new_group(s: &TestServer, who: Cred<'_>, name: &str) -> String {
    let r = call(s, M::POST, "/groups", who, Some(json!({ "name": name }))).await;
    expect_created(r, "groups").await
}

/// Creates a space (`POST /spaces`); returns the id.
async fn new_space(s: &TestServer, who: Cred<'_>, name: &str) -> String {
    let r = call(s, M::POST, "/spaces", who, Some(json!({ "name": name }))).await;
    expect_created(r, "spaces").await
}

/// PUT a member; expects `status` (200 for groups, 204 for spaces) and no body.
async fn put_member(s: &TestServer, path: &str, who: Cred<'_>, status: u16) {
    expect_empty(call(s, M::PUT, path, who, None).await, status).await;
}

/// DELETE; expects 202 and no body.
async fn delete(s: &TestServer, path: &str, who: Cred<'_>) {
    expect_empty(call(s, M::DELETE, path, who, None).await, 202).await;
}

/// A well-formed id of nothing.
fn unknown() -> String {
    Id::random().to_string()
}

/// Mints a space support token as `who`; returns the status.
async fn support_status(s: &TestServer, space: &str, who: (&str, &str)) -> u16 {
    let r = s.space_token_as(space, who).await;
    let status = r.status().as_u16();
    if status == 200 {
        expect_token(r).await;
    } else {
        assert_error(r, status).await;
    }
    status
}

/// The store's consistency problems (none expected).
async fn store_problems(s: &TestServer) -> Vec<String> {
    s.store().check().await.expect("the consistency check runs")
}

// ---------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_created_listed_shown_and_deleted() {
    bounded(async {
        let s = start_demo().await;
        let body = json!({ "username": "dave", "password": "dave-pw" });
        fails_json(&s, M::POST, "/users", NOBODY, body.clone(), 401).await;
        fails_json(&s, M::POST, "/users", AS_GUEST, body.clone(), 403).await;
        let dave = new_user(&s, "dave", "dave-pw").await;
        // The new user logs in.
        let me = expect_json(get(&s, "/user", Some(("dave", "dave-pw"))).await, 200).await;
        assert_eq!(me["userId"], dave.as_str());
        assert_eq!(me["name"], "dave");

        // A taken name.
        assert_error_code(
            call(&s, M::POST, "/users", AS_ADMIN, Some(body.clone())).await,
            409,
            "already_exists",
        )
        .await;
        let taken = json!({ "username": "guest", "password": "x" });
        assert_error_code(
            call(&s, M::POST, "/users", AS_ADMIN, Some(taken)).await,
            409,
            "already_exists",
        )
        .await;
        // Bad names.
        let long = "x".repeat(65);
        for name in ["a:b", "", " ", "two words", "tab\there", long.as_str()] {
            let b = json!({ "username": name, "password": "pw" });
            fails_json(&s, M::POST, "/users", AS_ADMIN, b, 400).await;
        }
        // Bad bodies.
        for raw in [
            "",
            "not json",
            "[]",
            r#"{"username": "erin"}"#,
            r#"{"password": "pw"}"#,
            r#"{"username": 5, "password": "pw"}"#,
            r#"{"username": "erin", "password": "pw", "admin": true}"#,
        ] {
            fails_raw(&s, M::POST, "/users", AS_ADMIN, raw, 400).await;
        }
        // None of the refused requests created anyone.
        assert!(s.store().user_by_name("erin").await.unwrap().is_none());
        assert!(s.store().user_by_name("a:b").await.unwrap().is_none());

        // Listing.
        let all = ids(&s, "/users", AS_ADMIN, "users").await;
        assert_eq!(all, set(&[ADMIN_ID, GUEST_ID, CAROL_ID, &dave]));
        fails(&s, M::GET, "/users", AS_GUEST, 403).await;
        fails(&s, M::GET, "/users", NOBODY, 401).await;

        // One user.
        let path = format!("/users/{dave}");
        let v = expect_json(get(&s, &path, AS_ADMIN).await, 200).await;
        assert_eq!(v["userId"], dave.as_str());
        assert_eq!(v["name"], "dave");
        let v = expect_json(get(&s, &path, Some(("dave", "dave-pw"))).await, 200).await;
        assert_eq!(v["userId"], dave.as_str(), "a user sees themselves");
        fails(&s, M::GET, &path, AS_GUEST, 403).await;
        fails(&s, M::GET, &path, NOBODY, 401).await;
        fails(&s, M::GET, "/users/not-an-id", AS_ADMIN, 400).await;
        fails(&s, M::GET, &format!("/users/{}", unknown()), AS_ADMIN, 404).await;

        // Deletion.
        for who in [AS_GUEST, Some(("dave", "dave-pw"))] {
            fails(&s, M::DELETE, &path, who, 403).await;
        }
        fails(&s, M::DELETE, &path, NOBODY, 401).await;
        delete(&s, &path, AS_ADMIN).await;
        fails(&s, M::GET, &path, AS_ADMIN, 404).await;
        fails(&s, M::DELETE, &path, AS_ADMIN, 404).await;
        assert!(!ids(&s, "/users", AS_ADMIN, "users").await.contains(&dave));
        assert_error(get(&s, "/user", Some(("dave", "dave-pw"))).await, 401).await;
        // The name is free again, for a new id.
        let again = new_user(&s, "dave", "other-pw").await;
        assert_ne!(again, dave);
        let me = expect_json(get(&s, "/user", Some(("dave", "other-pw"))).await, 200).await;
        assert_eq!(me["userId"], again.as_str());
        assert!(store_problems(&s).await.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_account_and_password_change() {
    bounded(async {
        let s = start_demo().await;
        fails(&s, M::GET, "/user", NOBODY, 401).await;
        let me = expect_json(get(&s, "/user", AS_GUEST).await, 200).await;
        assert_eq!(me["userId"], GUEST_ID);
        assert_eq!(me["name"], "guest");

        new_user(&s, "erin", "old-pw").await;
        let erin_old = Some(("erin", "old-pw"));
        let erin_new = Some(("erin", "new-pw"));
        // Log in once so that the old credentials are cached by the server.
        expect_json(get(&s, "/user", erin_old).await, 200).await;

        let wrong = json!({ "oldPassword": "nope", "newPassword": "new-pw" });
        assert_error_code(
            call(&s, M::PATCH, "/user/password", erin_old, Some(wrong)).await,
            403,
            "invalid_credentials",
        )
        .await;
        let good = json!({ "oldPassword": "old-pw", "newPassword": "new-pw" });
        fails_json(&s, M::PATCH, "/user/password", NOBODY, good.clone(), 401).await;
        for raw in [
            "",
            "{}",
            r#"{"oldPassword": "old-pw"}"#,
            r#"{"old_password": "old-pw", "new_password": "new-pw"}"#,
            r#"{"oldPassword": "old-pw", "newPassword": 7}"#,
            r#"{"oldPassword": "old-pw", "newPassword": "x", "extra": 1}"#,
        ] {
            fails_raw(&s, M::PATCH, "/user/password", erin_old, raw, 400).await;
        }
        // Nothing changed so far.
        expect_json(get(&s, "/user", erin_old).await, 200).await;
        assert_error(get(&s, "/user", erin_new).await, 401).await;

        expect_empty(
            call(&s, M::PATCH, "/user/password", erin_old, Some(good.clone())).await,
            204,
        )
        .await;
        // The very next request with the old password fails (no stale cache)...
        assert_error_code(
            call(&s, M::GET, "/user", erin_old, None).await,
            401,
            "invalid_credentials",
        )
        .await;
        // ...and the new one works.
        let me = expect_json(get(&s, "/user", erin_new).await, 200).await;
        assert_eq!(me["name"], "erin");
        assert_error(get(&s, "/user", erin_old).await, 401).await;
        // The old password no longer changes anything.
        assert_error_code(
            call(&s, M::PATCH, "/user/password", erin_new, Some(good)).await,
            403,
            "invalid_credentials",
        )
        .await;

        // Another user changing their password right after a request: the
        // new one works on the very next request.
        let body = json!({ "oldPassword": "carol", "newPassword": "carol-2" });
        expect_json(get(&s, "/user", AS_CAROL).await, 200).await;
        expect_empty(
            call(&s, M::PATCH, "/user/password", AS_CAROL, Some(body)).await,
            204,
        )
        .await;
        let me = expect_json(get(&s, "/user", Some(("carol", "carol-2"))).await, 200).await;
        assert_eq!(me["userId"], CAROL_ID);
        assert_error(get(&s, "/user", AS_CAROL).await, 401).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_is_not_a_user() {
    bounded(async {
        let s = start_demo().await;
        let body = json!({ "name": "p1", "domain": "p1.example" });
        let v = expect_json(
            call(&s, M::POST, "/providers", AS_ADMIN, Some(body)).await,
            201,
        )
        .await;
        let token = v["providerRootToken"].as_str().expect("provider token");
        for (method, path, body) in [
            (M::GET, "/user", None),
            (M::POST, "/groups", Some(json!({ "name": "g" }))),
            (M::POST, "/user/spaces", Some(json!({ "name": "s" }))),
            (M::GET, "/user/groups", None),
            (M::GET, "/user/effective_groups", None),
            (M::GET, "/user/effective_spaces", None),
            (M::GET, "/user/effective_providers", None),
            (
                M::GET,
                &format!("/user/effective_groups/{DEMO_GROUP}"),
                None,
            ),
            (
                M::GET,
                &format!("/user/effective_spaces/{DEMO_SPACE}"),
                None,
            ),
            (M::GET, "/users", None),
            (
                M::PATCH,
                "/user/password",
                Some(json!({ "oldPassword": "a", "newPassword": "b" })),
            ),
        ] {
            let mut req = s
                .client
                .request(method.clone(), s.url(path))
                .header("x-auth-token", token);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let r = req.send().await.expect("request");
            assert_error_code(r, 403, "forbidden").await;
        }
        assert_eq!(
            s.store().groups(None, 1000).await.unwrap().0.len(),
            1,
            "no group created"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_privileges_are_set_granted_and_revoked() {
    bounded(async {
        let s = start_demo().await;
        let guest = format!("/users/{GUEST_ID}/privileges");
        assert!(
            privileges_of(&s, &guest, AS_GUEST).await.is_empty(),
            "own privileges"
        );
        assert!(privileges_of(&s, &guest, AS_ADMIN).await.is_empty());
        fails(&s, M::GET, &guest, AS_CAROL, 403).await;
        fails(&s, M::GET, &guest, NOBODY, 401).await;
        let admin = privileges_of(&s, &format!("/users/{ADMIN_ID}/privileges"), AS_ADMIN).await;
        for p in [
            "list_users",
            "oz_users_create",
            "set_privileges",
            "oz_backup",
        ] {
            assert!(admin.contains(p), "admin has {p}: {admin:?}");
        }

        let body = json!({ "operation": "grant", "privileges": ["list_users"] });
        fails_json(&s, M::PATCH, &guest, AS_GUEST, body.clone(), 403).await;
        fails_json(&s, M::PATCH, &guest, NOBODY, body, 401).await;
        fails(&s, M::GET, "/users", AS_GUEST, 403).await;

        patch_privs(&s, &guest, AS_ADMIN, "set", &["list_users"]).await;
        assert_eq!(
            privileges_of(&s, &guest, AS_ADMIN).await,
            set(&["list_users"])
        );
        expect_json(get(&s, "/users", AS_GUEST).await, 200).await;

        patch_privs(
            &s,
            &guest,
            AS_ADMIN,
            "grant",
            &["oz_users_create", "list_users"],
        )
        .await;
        assert_eq!(
            privileges_of(&s, &guest, AS_GUEST).await,
            set(&["list_users", "oz_users_create"])
        );
        let b = json!({ "username": "made-by-guest", "password": "pw" });
        expect_created(
            call(&s, M::POST, "/users", AS_GUEST, Some(b)).await,
            "users",
        )
        .await;

        patch_privs(&s, &guest, AS_ADMIN, "revoke", &["list_users"]).await;
        assert_eq!(
            privileges_of(&s, &guest, AS_ADMIN).await,
            set(&["oz_users_create"])
        );
        // Revocation takes effect on the very next request.
        fails(&s, M::GET, "/users", AS_GUEST, 403).await;

        // Without `operation`, the update sets (the Onezone default).
        let b = json!({ "privileges": ["list_groups"] });
        expect_empty(call(&s, M::PATCH, &guest, AS_ADMIN, Some(b)).await, 204).await;
        assert_eq!(
            privileges_of(&s, &guest, AS_ADMIN).await,
            set(&["list_groups"])
        );

        // Bad updates change nothing.
        for raw in [
            r#"{"operation": "grant", "privileges": ["nope"]}"#,
            r#"{"operation": "grant", "privileges": ["list_users", "nope"]}"#,
            r#"{"operation": "grant", "privileges": ["group_view_data"]}"#,
            r#"{"operation": "add", "privileges": ["list_users"]}"#,
            r#"{"operation": "grant"}"#,
            r#"{"operation": "grant", "privileges": "list_users"}"#,
            r#"{"operation": "grant", "privileges": ["list_users"], "extra": 1}"#,
            "not json",
            "",
        ] {
            fails_raw(&s, M::PATCH, &guest, AS_ADMIN, raw, 400).await;
        }
        assert_eq!(
            privileges_of(&s, &guest, AS_ADMIN).await,
            set(&["list_groups"])
        );

        patch_privs(&s, &guest, AS_ADMIN, "set", &[]).await;
        assert!(privileges_of(&s, &guest, AS_ADMIN).await.is_empty());

        let b = json!({ "operation": "set", "privileges": [] });
        fails_json(
            &s,
            M::PATCH,
            "/users/xyz/privileges",
            AS_ADMIN,
            b.clone(),
            400,
        )
        .await;
        let path = format!("/users/{}/privileges", unknown());
        fails_json(&s, M::PATCH, &path, AS_ADMIN, b, 404).await;
        fails(&s, M::GET, &path, AS_ADMIN, 404).await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_created_renamed_and_deleted() {
    bounded(async {
        let s = start_demo().await;
        let g1 = new_group(&s, AS_GUEST, "g1").await;
        let r = call(
            &s,
            M::POST,
            "/user/groups",
            AS_GUEST,
            Some(json!({ "name": "g2" })),
        )
        .await;
        let g2 = expect_created(r, "groups").await;
        // The creator holds every group privilege.
        for g in [&g1, &g2] {
            let path = format!("/groups/{g}/users/{GUEST_ID}/privileges");
            assert_eq!(privileges_of(&s, &path, AS_GUEST).await, set(&GROUP_ALL));
            assert_eq!(
                ids(&s, &format!("/groups/{g}/users"), AS_GUEST, "users").await,
                set(&[GUEST_ID])
            );
        }
        assert_eq!(
            ids(&s, "/user/groups", AS_GUEST, "groups").await,
            set(&[&g1, &g2, DEMO_GROUP])
        );

        let path = format!("/groups/{g1}");
        let v = expect_json(get(&s, &path, AS_GUEST).await, 200).await;
        assert_eq!(v["groupId"], g1.as_str());
        assert_eq!(v["name"], "g1");
        fails(&s, M::GET, &path, AS_CAROL, 403).await;
        fails(&s, M::GET, &path, NOBODY, 401).await;
        fails(&s, M::GET, "/groups/not-an-id", AS_GUEST, 400).await;
        fails(&s, M::GET, &format!("/groups/{}", unknown()), AS_GUEST, 404).await;

        // Rename.
        let b = json!({ "name": "renamed" });
        fails_json(&s, M::PATCH, &path, AS_CAROL, b.clone(), 403).await;
        expect_empty(call(&s, M::PATCH, &path, AS_GUEST, Some(b)).await, 204).await;
        assert_eq!(
            expect_json(get(&s, &path, AS_GUEST).await, 200).await["name"],
            "renamed"
        );
        for raw in [
            "",
            "{}",
            r#"{"name": ""}"#,
            r#"{"nom": "x"}"#,
            r#"{"name": 3}"#,
            "[1]",
        ] {
            fails_raw(&s, M::PATCH, &path, AS_GUEST, raw, 400).await;
        }
        assert_eq!(
            expect_json(get(&s, &path, AS_GUEST).await, 200).await["name"],
            "renamed"
        );

        // Bad creations.
        for raw in [
            "",
            "{}",
            r#"{"name": ""}"#,
            r#"{"name": "   "}"#,
            r#"{"nom": "x"}"#,
            "nope",
        ] {
            for p in ["/groups", "/user/groups"] {
                fails_raw(&s, M::POST, p, AS_GUEST, raw, 400).await;
            }
        }
        fails_json(&s, M::POST, "/groups", NOBODY, json!({ "name": "x" }), 401).await;

        // Listing all groups needs list_groups.
        assert_eq!(
            ids(&s, "/groups", AS_ADMIN, "groups").await,
            set(&[&g1, &g2, DEMO_GROUP])
        );
        fails(&s, M::GET, "/groups", AS_GUEST, 403).await;

        // Deletion.
        fails(&s, M::DELETE, &path, AS_CAROL, 403).await;
        delete(&s, &path, AS_GUEST).await;
        fails(&s, M::GET, &path, AS_GUEST, 404).await;
        fails(&s, M::DELETE, &path, AS_GUEST, 404).await;
        assert_eq!(
            ids(&s, "/groups", AS_ADMIN, "groups").await,
            set(&[&g2, DEMO_GROUP])
        );
        assert_eq!(
            ids(&s, "/user/groups", AS_GUEST, "groups").await,
            set(&[&g2, DEMO_GROUP])
        );
        assert!(store_problems(&s).await.is_empty());
    })
    .await;
}

/// rc14's `GroupCreateRequest` (and its example body) carries an optional
/// `type` ("organization", "unit", "team", "role", default "role"); it is
/// kept, shown, changed by `GroupUpdateRequest` and survives export/import.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_types_are_created_shown_and_changed() {
    bounded(async {
        let s = start_demo().await;
        let body = json!({ "name": "Test group", "type": "team" });
        let r = call(&s, M::POST, "/groups", AS_GUEST, Some(body)).await;
        let g = expect_created(r, "groups").await;
        let path = format!("/groups/{g}");
        let v = expect_json(get(&s, &path, AS_GUEST).await, 200).await;
        assert_eq!(v["name"], "Test group");
        assert_eq!(v["type"], "team");

        let plain = new_group(&s, AS_GUEST, "plain").await;
        let v = expect_json(get(&s, &format!("/groups/{plain}"), AS_GUEST).await, 200).await;
        assert_eq!(v["type"], "role", "the default type");

        // The type alone, then the name alone.
        let r = call(
            &s,
            M::PATCH,
            &path,
            AS_GUEST,
            Some(json!({ "type": "unit" })),
        )
        .await;
        expect_empty(r, 204).await;
        let r = call(
            &s,
            M::PATCH,
            &path,
            AS_GUEST,
            Some(json!({ "name": "Renamed" })),
        )
        .await;
        expect_empty(r, 204).await;
        let v = expect_json(get(&s, &path, AS_GUEST).await, 200).await;
        assert_eq!(
            (&v["name"], &v["type"]),
            (&json!("Renamed"), &json!("unit"))
        );

        // A child group is shown with its type too.
        put_member(&s, &format!("/groups/{plain}/children/{g}"), AS_GUEST, 200).await;
        let v = expect_json(
            get(&s, &format!("/groups/{plain}/children/{g}"), AS_GUEST).await,
            200,
        )
        .await;
        assert_eq!(v["type"], "unit");

        for bad in [
            json!({ "type": "club" }),
            json!({}),
            json!({ "type": null }),
        ] {
            fails_json(&s, M::PATCH, &path, AS_GUEST, bad, 400).await;
        }
        let bad = json!({ "name": "x", "type": "Role" });
        fails_json(&s, M::POST, "/groups", AS_GUEST, bad, 400).await;

        // Export and import keep the type.
        let gid: Id = g.parse().expect("group id");
        let set = s.store().export().await.expect("export");
        let exported = set.groups.iter().find(|x| x.id == g).expect("exported");
        assert_eq!(exported.kind, ozmint::model::GroupType::Unit);
        let json = serde_json::to_value(&set).expect("data set json");
        let again: ozmint::store::Dataset = serde_json::from_value(json).expect("round trip");
        let other = ozmint::store::Store::memory()
            .await
            .expect("a memory store");
        other
            .import(
                &again,
                |_| Ok(String::from("unused")),
                ozmint::store::ImportMode::Strict,
            )
            .await
            .expect("import");
        assert_eq!(
            other.group(&gid).await.expect("read").expect("group").kind,
            ozmint::model::GroupType::Unit
        );
        assert!(store_problems(&s).await.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_users_and_their_privileges() {
    bounded(async {
        let s = start_demo().await;
        let g = new_group(&s, AS_GUEST, "team").await;
        let carol = format!("/groups/{g}/users/{CAROL_ID}");
        let carol_privs = format!("{carol}/privileges");
        let admin = format!("/groups/{g}/users/{ADMIN_ID}");

        put_member(&s, &carol, AS_GUEST, 200).await;
        assert_eq!(
            ids(&s, &format!("/groups/{g}/users"), AS_GUEST, "users").await,
            set(&[GUEST_ID, CAROL_ID])
        );
        let v = expect_json(get(&s, &carol, AS_GUEST).await, 200).await;
        assert_eq!(v["userId"], CAROL_ID);
        assert_eq!(v["name"], "carol");
        assert_eq!(
            privileges_of(&s, &carol_privs, AS_GUEST).await,
            set(&GROUP_MEMBER)
        );
        // A plain member may view but not invite or set privileges.
        expect_json(get(&s, &format!("/groups/{g}"), AS_CAROL).await, 200).await;
        fails(&s, M::PUT, &admin, AS_CAROL, 403).await;
        let b = json!({ "operation": "grant", "privileges": ["group_remove"] });
        fails_json(&s, M::PATCH, &carol_privs, AS_CAROL, b, 403).await;

        patch_privs(&s, &carol_privs, AS_GUEST, "grant", &["group_invite_user"]).await;
        assert_eq!(
            privileges_of(&s, &carol_privs, AS_CAROL).await,
            set(&["group_view_data", "group_invite_user"])
        );
        put_member(&s, &admin, AS_CAROL, 200).await;
        assert_eq!(
            privileges_of(&s, &format!("{admin}/privileges"), AS_GUEST).await,
            set(&GROUP_MEMBER)
        );
        // PUT of an existing member keeps its privileges.
        put_member(&s, &carol, AS_GUEST, 200).await;
        assert_eq!(
            privileges_of(&s, &carol_privs, AS_GUEST).await,
            set(&["group_view_data", "group_invite_user"])
        );
        // Revoking view takes effect at once.
        patch_privs(&s, &carol_privs, AS_GUEST, "revoke", &["group_view_data"]).await;
        fails(&s, M::GET, &format!("/groups/{g}"), AS_CAROL, 403).await;
        patch_privs(&s, &carol_privs, AS_GUEST, "set", &GROUP_MEMBER).await;
        assert_eq!(
            privileges_of(&s, &carol_privs, AS_GUEST).await,
            set(&GROUP_MEMBER)
        );
        expect_json(get(&s, &format!("/groups/{g}"), AS_CAROL).await, 200).await;

        // Bad privilege updates: 400, nothing changes.
        for raw in [
            r#"{"operation": "grant", "privileges": ["group_fly"]}"#,
            r#"{"operation": "grant", "privileges": ["space_view_data"]}"#,
            r#"{"operation": "grant", "privileges": ["list_users"]}"#,
            r#"{"operation": "toggle", "privileges": ["group_remove"]}"#,
            r#"{"operation": "grant"}"#,
            "[]",
            "",
        ] {
            fails_raw(&s, M::PATCH, &carol_privs, AS_GUEST, raw, 400).await;
        }
        assert_eq!(
            privileges_of(&s, &carol_privs, AS_GUEST).await,
            set(&GROUP_MEMBER)
        );

        // Unknown relations, users and malformed ids.
        let stranger = new_user(&s, "stranger", "pw").await;
        let stranger_path = format!("/groups/{g}/users/{stranger}");
        fails(&s, M::GET, &stranger_path, AS_GUEST, 404).await;
        fails(
            &s,
            M::GET,
            &format!("{stranger_path}/privileges"),
            AS_GUEST,
            404,
        )
        .await;
        let b = json!({ "operation": "grant", "privileges": ["group_remove"] });
        fails_json(
            &s,
            M::PATCH,
            &format!("{stranger_path}/privileges"),
            AS_GUEST,
            b,
            404,
        )
        .await;
        fails(&s, M::DELETE, &stranger_path, AS_GUEST, 404).await;
        let nobody = format!("/groups/{g}/users/{}", unknown());
        fails(&s, M::PUT, &nobody, AS_GUEST, 404).await;
        let bad = format!("/groups/{g}/users/not-an-id");
        fails(&s, M::PUT, &bad, AS_GUEST, 400).await;

        // Removal.
        fails(&s, M::DELETE, &admin, AS_CAROL, 403).await;
        delete(&s, &carol, AS_GUEST).await;
        fails(&s, M::DELETE, &carol, AS_GUEST, 404).await;
        fails(&s, M::GET, &carol, AS_GUEST, 404).await;
        assert_eq!(
            ids(&s, &format!("/groups/{g}/users"), AS_GUEST, "users").await,
            set(&[GUEST_ID, ADMIN_ID])
        );
        fails(&s, M::GET, &format!("/groups/{g}"), AS_CAROL, 403).await;
        assert!(!ids(&s, "/user/groups", AS_CAROL, "groups")
            .await
            .contains(&g));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_groups_and_their_privileges() {
    bounded(async {
        let s = start_demo().await;
        let g = new_group(&s, AS_GUEST, "parent").await;
        let h = new_group(&s, AS_GUEST, "child").await;
        let k = new_group(&s, AS_GUEST, "other").await;
        let child = format!("/groups/{g}/children/{h}");
        let child_privs = format!("{child}/privileges");

        put_member(&s, &child, AS_GUEST, 200).await;
        assert_eq!(
            ids(&s, &format!("/groups/{g}/children"), AS_GUEST, "children").await,
            set(&[&h])
        );
        let v = expect_json(get(&s, &child, AS_GUEST).await, 200).await;
        assert_eq!(v["groupId"], h.as_str());
        assert_eq!(v["name"], "child");
        assert_eq!(
            privileges_of(&s, &child_privs, AS_GUEST).await,
            set(&GROUP_MEMBER)
        );
        patch_privs(
            &s,
            &child_privs,
            AS_GUEST,
            "grant",
            &["group_create_space_token"],
        )
        .await;
        assert_eq!(
            privileges_of(&s, &child_privs, AS_GUEST).await,
            set(&["group_view_data", "group_create_space_token"])
        );
        // Re-adding keeps the privileges.
        put_member(&s, &child, AS_GUEST, 200).await;
        assert_eq!(
            privileges_of(&s, &child_privs, AS_GUEST).await,
            set(&["group_view_data", "group_create_space_token"])
        );
        let raw = r#"{"operation": "grant", "privileges": ["space_add_provider"]}"#;
        fails_raw(&s, M::PATCH, &child_privs, AS_GUEST, raw, 400).await;
        let raw = r#"{"operation": "flip", "privileges": []}"#;
        fails_raw(&s, M::PATCH, &child_privs, AS_GUEST, raw, 400).await;

        // Not a child, unknown child, malformed child.
        let not_child = format!("/groups/{g}/children/{k}");
        fails(&s, M::GET, &not_child, AS_GUEST, 404).await;
        fails(
            &s,
            M::GET,
            &format!("{not_child}/privileges"),
            AS_GUEST,
            404,
        )
        .await;
        let b = json!({ "operation": "grant", "privileges": ["group_view_data"] });
        fails_json(
            &s,
            M::PATCH,
            &format!("{not_child}/privileges"),
            AS_GUEST,
            b,
            404,
        )
        .await;
        let missing = format!("/groups/{g}/children/{}", unknown());
        fails(&s, M::PUT, &missing, AS_GUEST, 404).await;
        let bad = format!("/groups/{g}/children/bad");
        fails(&s, M::PUT, &bad, AS_GUEST, 400).await;

        // A non-member may not add children; a member without invite_group neither.
        let carols = new_group(&s, AS_CAROL, "carol's").await;
        let path = format!("/groups/{g}/children/{carols}");
        fails(&s, M::PUT, &path, AS_CAROL, 403).await;
        put_member(&s, &format!("/groups/{g}/users/{CAROL_ID}"), AS_GUEST, 200).await;
        fails(&s, M::PUT, &path, AS_CAROL, 403).await;
        fails(&s, M::DELETE, &child, AS_CAROL, 403).await;
        let b = json!({ "operation": "set", "privileges": [] });
        fails_json(&s, M::PATCH, &child_privs, AS_CAROL, b, 403).await;
        // But may view.
        expect_json(get(&s, &child_privs, AS_CAROL).await, 200).await;

        delete(&s, &child, AS_GUEST).await;
        fails(&s, M::DELETE, &child, AS_GUEST, 404).await;
        fails(&s, M::GET, &child, AS_GUEST, 404).await;
        assert!(
            ids(&s, &format!("/groups/{g}/children"), AS_GUEST, "children")
                .await
                .is_empty()
        );
        // The child group itself still exists.
        expect_json(get(&s, &format!("/groups/{h}"), AS_GUEST).await, 200).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effective_members_of_nested_groups() {
    bounded(async {
        let s = start_demo().await;
        let top = new_group(&s, AS_ADMIN, "top").await;
        let mid = new_group(&s, AS_ADMIN, "mid").await;
        let bottom = new_group(&s, AS_ADMIN, "bottom").await;
        let fred = new_user(&s, "fred", "fred-pw").await;
        let as_fred = Some(("fred", "fred-pw"));
        put_member(&s, &format!("/groups/{top}/children/{mid}"), AS_ADMIN, 200).await;
        put_member(
            &s,
            &format!("/groups/{mid}/children/{bottom}"),
            AS_ADMIN,
            200,
        )
        .await;
        put_member(&s, &format!("/groups/{bottom}/users/{fred}"), AS_ADMIN, 200).await;

        let eff_users = format!("/groups/{top}/effective_users");
        assert_eq!(
            ids(&s, &eff_users, AS_ADMIN, "users").await,
            set(&[ADMIN_ID, &fred])
        );
        assert_eq!(
            ids(&s, &format!("/groups/{top}/users"), AS_ADMIN, "users").await,
            set(&[ADMIN_ID])
        );
        assert_eq!(
            ids(
                &s,
                &format!("/groups/{top}/effective_children"),
                AS_ADMIN,
                "children"
            )
            .await,
            set(&[&mid, &bottom])
        );
        assert_eq!(
            ids(
                &s,
                &format!("/groups/{mid}/effective_children"),
                AS_ADMIN,
                "children"
            )
            .await,
            set(&[&bottom])
        );
        assert!(ids(
            &s,
            &format!("/groups/{bottom}/effective_children"),
            AS_ADMIN,
            "children"
        )
        .await
        .is_empty());
        // fred sees top through his membership (mid holds group_view_data in top).
        assert_eq!(
            ids(&s, &eff_users, as_fred, "users").await,
            set(&[ADMIN_ID, &fred])
        );

        let fred_in_top = format!("/groups/{top}/effective_users/{fred}/privileges");
        assert_eq!(
            privileges_of(&s, &fred_in_top, AS_ADMIN).await,
            set(&GROUP_MEMBER)
        );
        assert_eq!(
            privileges_of(&s, &fred_in_top, as_fred).await,
            set(&GROUP_MEMBER)
        );
        assert_eq!(
            privileges_of(
                &s,
                &format!("/groups/{top}/effective_users/{ADMIN_ID}/privileges"),
                AS_ADMIN
            )
            .await,
            set(&GROUP_ALL)
        );
        fails(&s, M::GET, &fred_in_top, AS_CAROL, 403).await;
        fails(&s, M::GET, &eff_users, AS_CAROL, 403).await;
        // carol is no member of top: 404 for her own, 404 for admin asking.
        let carol_in_top = format!("/groups/{top}/effective_users/{CAROL_ID}/privileges");
        fails(&s, M::GET, &carol_in_top, AS_CAROL, 404).await;
        fails(&s, M::GET, &carol_in_top, AS_ADMIN, 404).await;
        let path = format!("/groups/{top}/effective_users/{}/privileges", unknown());
        fails(&s, M::GET, &path, AS_ADMIN, 404).await;
        let path = format!("/groups/{top}/effective_users/bad/privileges");
        fails(&s, M::GET, &path, AS_ADMIN, 400).await;

        // Group privileges flow down nested groups, and stop at once.
        let mid_in_top = format!("/groups/{top}/children/{mid}/privileges");
        assert_eq!(
            s.group_token_as(&top, ("fred", "fred-pw")).await.status(),
            403
        );
        patch_privs(
            &s,
            &mid_in_top,
            AS_ADMIN,
            "grant",
            &["group_create_space_token"],
        )
        .await;
        assert!(privileges_of(&s, &fred_in_top, AS_ADMIN)
            .await
            .contains("group_create_space_token"));
        expect_token(s.group_token_as(&top, ("fred", "fred-pw")).await).await;
        patch_privs(
            &s,
            &mid_in_top,
            AS_ADMIN,
            "revoke",
            &["group_create_space_token"],
        )
        .await;
        assert_error_code(
            s.group_token_as(&top, ("fred", "fred-pw")).await,
            403,
            "forbidden",
        )
        .await;

        // Cutting mid -> bottom: fred is no longer an effective member of top.
        delete(&s, &format!("/groups/{mid}/children/{bottom}"), AS_ADMIN).await;
        assert_eq!(
            ids(&s, &eff_users, AS_ADMIN, "users").await,
            set(&[ADMIN_ID])
        );
        fails(&s, M::GET, &fred_in_top, AS_ADMIN, 404).await;
        assert_eq!(
            ids(
                &s,
                &format!("/groups/{top}/effective_children"),
                AS_ADMIN,
                "children"
            )
            .await,
            set(&[&mid])
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_cycles_are_refused_with_409() {
    bounded(async {
        let s = start_demo().await;
        let a = new_group(&s, AS_GUEST, "a").await;
        let b = new_group(&s, AS_GUEST, "b").await;
        let c = new_group(&s, AS_GUEST, "c").await;
        put_member(&s, &format!("/groups/{a}/children/{b}"), AS_GUEST, 200).await;
        put_member(&s, &format!("/groups/{b}/children/{c}"), AS_GUEST, 200).await;
        for (parent, child) in [(&c, &a), (&c, &b), (&b, &a), (&a, &a), (&b, &b)] {
            let path = format!("/groups/{parent}/children/{child}");
            assert_error_code(call(&s, M::PUT, &path, AS_GUEST, None).await, 409, "cycle").await;
        }
        // The graph is unchanged.
        let children = |g: String| {
            let s = &s;
            async move { ids(s, &format!("/groups/{g}/children"), AS_GUEST, "children").await }
        };
        assert_eq!(children(a.clone()).await, set(&[&b]));
        assert_eq!(children(b.clone()).await, set(&[&c]));
        assert!(children(c.clone()).await.is_empty());
        // A shortcut is no cycle.
        put_member(&s, &format!("/groups/{a}/children/{c}"), AS_GUEST, 200).await;
        assert_eq!(children(a.clone()).await, set(&[&b, &c]));
        assert!(store_problems(&s).await.is_empty());
    })
    .await;
}

// ---------------------------------------------------------------------------
// Spaces
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spaces_are_created_renamed_and_deleted() {
    bounded(async {
        let s = start_demo().await;
        let s1 = new_space(&s, AS_GUEST, "s1").await;
        let r = call(
            &s,
            M::POST,
            "/user/spaces",
            AS_GUEST,
            Some(json!({ "name": "s2" })),
        )
        .await;
        let s2 = expect_created(r, "spaces").await;
        for sp in [&s1, &s2] {
            let path = format!("/spaces/{sp}/users/{GUEST_ID}/privileges");
            assert_eq!(privileges_of(&s, &path, AS_GUEST).await, set(&SPACE_ALL));
        }
        assert_eq!(
            ids(&s, "/user/spaces", AS_GUEST, "spaces").await,
            set(&[&s1, &s2, DEMO_SPACE])
        );
        let path = format!("/spaces/{s1}");
        let v = expect_json(get(&s, &path, AS_GUEST).await, 200).await;
        assert_eq!(v["spaceId"], s1.as_str());
        assert_eq!(v["name"], "s1");
        assert_eq!(v["providersSupports"], json!({}));
        fails(&s, M::GET, &path, AS_CAROL, 403).await;
        fails(&s, M::GET, &path, NOBODY, 401).await;
        fails(&s, M::GET, "/spaces/bad-id", AS_GUEST, 400).await;
        fails(&s, M::GET, &format!("/spaces/{}", unknown()), AS_GUEST, 404).await;

        let b = json!({ "name": "renamed" });
        fails_json(&s, M::PATCH, &path, AS_CAROL, b.clone(), 403).await;
        expect_empty(call(&s, M::PATCH, &path, AS_GUEST, Some(b)).await, 204).await;
        assert_eq!(
            expect_json(get(&s, &path, AS_GUEST).await, 200).await["name"],
            "renamed"
        );
        for raw in ["", "{}", r#"{"name": ""}"#, r#"{"name": "x", "y": 1}"#] {
            fails_raw(&s, M::PATCH, &path, AS_GUEST, raw, 400).await;
            for p in ["/spaces", "/user/spaces"] {
                fails_raw(&s, M::POST, p, AS_GUEST, raw, 400).await;
            }
        }

        assert_eq!(
            ids(&s, "/spaces", AS_ADMIN, "spaces").await,
            set(&[&s1, &s2, DEMO_SPACE])
        );
        fails(&s, M::GET, "/spaces", AS_GUEST, 403).await;

        let p2 = format!("/spaces/{s2}");
        fails(&s, M::DELETE, &p2, AS_CAROL, 403).await;
        delete(&s, &p2, AS_GUEST).await;
        fails(&s, M::GET, &p2, AS_GUEST, 404).await;
        fails(&s, M::DELETE, &p2, AS_GUEST, 404).await;
        assert_eq!(
            ids(&s, "/spaces", AS_ADMIN, "spaces").await,
            set(&[&s1, DEMO_SPACE])
        );
        assert_eq!(
            ids(&s, "/user/spaces", AS_GUEST, "spaces").await,
            set(&[&s1, DEMO_SPACE])
        );
        assert!(store_problems(&s).await.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn space_users_groups_and_effective_members() {
    bounded(async {
        let s = start_demo().await;
        let sp = new_space(&s, AS_GUEST, "shared").await;
        let carol = format!("/spaces/{sp}/users/{CAROL_ID}");
        let carol_privs = format!("{carol}/privileges");

        // Users.
        put_member(&s, &carol, AS_GUEST, 204).await;
        assert_eq!(
            ids(&s, &format!("/spaces/{sp}/users"), AS_GUEST, "users").await,
            set(&[GUEST_ID, CAROL_ID])
        );
        let v = expect_json(get(&s, &carol, AS_GUEST).await, 200).await;
        assert_eq!(v["userId"], CAROL_ID);
        assert_eq!(
            privileges_of(&s, &carol_privs, AS_GUEST).await,
            set(&SPACE_MEMBER)
        );
        expect_json(get(&s, &format!("/spaces/{sp}"), AS_CAROL).await, 200).await;
        assert!(ids(&s, "/user/spaces", AS_CAROL, "spaces")
            .await
            .contains(&sp));

        assert_eq!(support_status(&s, &sp, CAROL).await, 403);
        patch_privs(&s, &carol_privs, AS_GUEST, "grant", &["space_add_provider"]).await;
        assert_eq!(
            privileges_of(&s, &carol_privs, AS_CAROL).await,
            set(&["space_view_data", "space_write_files", "space_add_provider"])
        );
        assert_eq!(support_status(&s, &sp, CAROL).await, 200);
        patch_privs(
            &s,
            &carol_privs,
            AS_GUEST,
            "revoke",
            &["space_add_provider"],
        )
        .await;
        assert_eq!(support_status(&s, &sp, CAROL).await, 403);
        put_member(&s, &carol, AS_GUEST, 204).await;
        assert_eq!(
            privileges_of(&s, &carol_privs, AS_GUEST).await,
            set(&SPACE_MEMBER)
        );

        let admin = format!("/spaces/{sp}/users/{ADMIN_ID}");
        fails(&s, M::PUT, &admin, AS_CAROL, 403).await;
        let b = json!({ "operation": "set", "privileges": SPACE_ALL });
        fails_json(&s, M::PATCH, &carol_privs, AS_CAROL, b, 403).await;
        for raw in [
            r#"{"operation": "grant", "privileges": ["space_fly"]}"#,
            r#"{"operation": "grant", "privileges": ["group_view_data"]}"#,
            r#"{"operation": "nope", "privileges": []}"#,
            "{}",
        ] {
            fails_raw(&s, M::PATCH, &carol_privs, AS_GUEST, raw, 400).await;
        }
        assert_eq!(
            privileges_of(&s, &carol_privs, AS_GUEST).await,
            set(&SPACE_MEMBER)
        );

        // Groups.
        let sg = format!("/spaces/{sp}/groups/{DEMO_GROUP}");
        let sg_privs = format!("{sg}/privileges");
        put_member(&s, &sg, AS_GUEST, 204).await;
        assert_eq!(
            ids(&s, &format!("/spaces/{sp}/groups"), AS_GUEST, "groups").await,
            set(&[DEMO_GROUP])
        );
        let v = expect_json(get(&s, &sg, AS_GUEST).await, 200).await;
        assert_eq!(v["groupId"], DEMO_GROUP);
        assert_eq!(v["name"], "demo group");
        assert_eq!(
            privileges_of(&s, &sg_privs, AS_GUEST).await,
            set(&SPACE_MEMBER)
        );
        patch_privs(
            &s,
            &sg_privs,
            AS_GUEST,
            "set",
            &["space_view_data", "space_add_provider"],
        )
        .await;
        assert_eq!(
            privileges_of(&s, &sg_privs, AS_GUEST).await,
            set(&["space_view_data", "space_add_provider"])
        );

        // Effective: direct users and the demo group's members (admin, guest, carol).
        let eff = format!("/spaces/{sp}/effective_users");
        assert_eq!(
            ids(&s, &eff, AS_GUEST, "users").await,
            set(&[GUEST_ID, CAROL_ID, ADMIN_ID])
        );
        let admin_eff = format!("/spaces/{sp}/effective_users/{ADMIN_ID}/privileges");
        assert_eq!(
            privileges_of(&s, &admin_eff, AS_GUEST).await,
            set(&["space_view_data", "space_add_provider"])
        );
        let carol_eff = format!("/spaces/{sp}/effective_users/{CAROL_ID}/privileges");
        assert_eq!(
            privileges_of(&s, &carol_eff, AS_CAROL).await,
            set(&["space_view_data", "space_write_files", "space_add_provider"])
        );
        assert_eq!(
            support_status(&s, &sp, CAROL).await,
            200,
            "through the group"
        );

        // Errors on group members.
        let other = new_group(&s, AS_GUEST, "not in the space").await;
        let not_member = format!("/spaces/{sp}/groups/{other}");
        fails(&s, M::GET, &not_member, AS_GUEST, 404).await;
        fails(
            &s,
            M::GET,
            &format!("{not_member}/privileges"),
            AS_GUEST,
            404,
        )
        .await;
        let path = format!("/spaces/{sp}/groups/{}", unknown());
        fails(&s, M::PUT, &path, AS_GUEST, 404).await;
        let path = format!("/spaces/{sp}/groups/bad");
        fails(&s, M::PUT, &path, AS_GUEST, 400).await;
        fails(&s, M::PUT, &not_member, AS_CAROL, 403).await;

        // Removal of the group: carol loses what came through it, at once.
        fails(&s, M::DELETE, &sg, AS_CAROL, 403).await;
        delete(&s, &sg, AS_GUEST).await;
        fails(&s, M::DELETE, &sg, AS_GUEST, 404).await;
        assert_eq!(support_status(&s, &sp, CAROL).await, 403);
        assert_eq!(
            privileges_of(&s, &carol_eff, AS_CAROL).await,
            set(&SPACE_MEMBER)
        );
        fails(&s, M::GET, &admin_eff, AS_GUEST, 404).await;
        assert_eq!(
            ids(&s, &eff, AS_GUEST, "users").await,
            set(&[GUEST_ID, CAROL_ID])
        );

        // Removal of the user.
        delete(&s, &carol, AS_GUEST).await;
        fails(&s, M::DELETE, &carol, AS_GUEST, 404).await;
        fails(&s, M::GET, &carol_eff, AS_GUEST, 404).await;
        fails(&s, M::GET, &format!("/spaces/{sp}"), AS_CAROL, 403).await;
        assert_eq!(ids(&s, &eff, AS_GUEST, "users").await, set(&[GUEST_ID]));
        assert!(store_problems(&s).await.is_empty());
    })
    .await;
}

// ---------------------------------------------------------------------------
// Pagination
// ---------------------------------------------------------------------------

/// Walks a list with `limit`, following `next`; returns every page.
async fn walk(s: &TestServer, path: &str, key: &str, limit: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..100 {
        let url = match &after {
            None => format!("{path}?limit={limit}"),
            Some(a) => format!("{path}?limit={limit}&after={a}"),
        };
        let v = expect_json(get(s, &url, AS_ADMIN).await, 200).await;
        let page = list(&v, key);
        assert!(page.len() <= limit, "{url}: {} > {limit}", page.len());
        let next = v
            .get("next")
            .map(|n| n.as_str().expect("next is a string").to_owned());
        if page.len() == limit {
            assert_eq!(
                next.as_deref(),
                page.last().map(String::as_str),
                "{url}: next"
            );
        } else {
            assert_eq!(next, None, "{url}: a short page has no next");
        }
        pages.push(page);
        match next {
            Some(n) => after = Some(n),
            None => return pages,
        }
    }
    panic!("{path}: more than 100 pages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_paginated() {
    bounded(async {
        let s = start_demo().await;
        let mut created = BTreeSet::new();
        for i in 0..25 {
            created.insert(new_user(&s, &format!("user{i:02}"), "pw").await);
        }
        let expected: BTreeSet<String> = s
            .store()
            .users(None, 1000)
            .await
            .unwrap()
            .0
            .into_iter()
            .map(|(id, _)| id.to_string())
            .collect();
        assert_eq!(expected.len(), 28);
        assert!(created.is_subset(&expected));

        let first = expect_json(get(&s, "/users?limit=10", AS_ADMIN).await, 200).await;
        let page = list(&first, "users");
        assert_eq!(page.len(), 10);
        assert_eq!(first["next"].as_str(), page.last().map(String::as_str));

        let pages = walk(&s, "/users", "users", 10).await;
        assert_eq!(
            pages.iter().map(Vec::len).collect::<Vec<_>>(),
            [10, 10, 8],
            "{pages:?}"
        );
        let all: Vec<String> = pages.concat();
        let unique: BTreeSet<String> = all.iter().cloned().collect();
        assert_eq!(unique.len(), all.len(), "every user exactly once");
        assert_eq!(unique, expected);
        // In id order, so that `after` is a stable cursor.
        let order: Vec<Id> = all.iter().map(|x| x.parse().unwrap()).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "ids ascend");

        // A page size that divides the total: the last full page has a next
        // that leads to an empty page.
        let pages = walk(&s, "/users", "users", 14).await;
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [14, 14, 0]);
        let pages = walk(&s, "/users", "users", 1).await;
        assert_eq!(
            pages.concat().into_iter().collect::<BTreeSet<_>>(),
            expected
        );
        assert_eq!(pages.len(), 29);
        let v = expect_json(get(&s, "/users?limit=1000", AS_ADMIN).await, 200).await;
        assert_eq!(list(&v, "users").len(), 28);
        assert!(v.get("next").is_none());
        // `after` an id that is not a user still orders.
        let v = expect_json(
            get(&s, &format!("/users?after={}", unknown()), AS_ADMIN).await,
            200,
        )
        .await;
        assert!(list(&v, "users").len() <= 28);

        // Effective users paginate too.
        let g = new_group(&s, AS_ADMIN, "big").await;
        let mut members = BTreeSet::from([ADMIN_ID.to_string()]);
        for u in created.iter().take(6) {
            put_member(&s, &format!("/groups/{g}/users/{u}"), AS_ADMIN, 200).await;
            members.insert(u.clone());
        }
        for path in [
            format!("/groups/{g}/users"),
            format!("/groups/{g}/effective_users"),
        ] {
            let pages = walk(&s, &path, "users", 3).await;
            let got: Vec<String> = pages.concat();
            assert_eq!(got.len(), 7, "{path}");
            assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), members, "{path}");
        }

        // Bad queries.
        let lists = [
            "/users".to_string(),
            "/groups".to_string(),
            "/spaces".to_string(),
            "/user/groups".to_string(),
            "/user/spaces".to_string(),
            format!("/groups/{g}/users"),
            format!("/groups/{g}/children"),
            format!("/groups/{g}/effective_users"),
            format!("/groups/{g}/effective_children"),
            format!("/spaces/{DEMO_SPACE}/users"),
            format!("/spaces/{DEMO_SPACE}/groups"),
            format!("/spaces/{DEMO_SPACE}/effective_users"),
        ];
        for path in &lists {
            for q in [
                "limit=0",
                "limit=5000",
                "limit=1001",
                "limit=-1",
                "limit=ten",
                "limit=",
                "after=not-an-id",
                "after=",
                "foo=1",
                "limit=10&page=2",
            ] {
                let url = format!("{path}?{q}");
                fails(&s, M::GET, &url, AS_ADMIN, 400).await;
            }
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// The issue: privileges through nested groups, built through the API
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_group_space_privilege_is_granted_and_revoked_at_once() {
    bounded(async {
        let s = start_demo().await;
        let top = new_group(&s, AS_ADMIN, "top").await;
        let mid = new_group(&s, AS_ADMIN, "mid").await;
        let bottom = new_group(&s, AS_ADMIN, "bottom").await;
        put_member(&s, &format!("/groups/{top}/children/{mid}"), AS_ADMIN, 200).await;
        put_member(
            &s,
            &format!("/groups/{mid}/children/{bottom}"),
            AS_ADMIN,
            200,
        )
        .await;
        put_member(
            &s,
            &format!("/spaces/{DEMO_SPACE}/groups/{top}"),
            AS_ADMIN,
            204,
        )
        .await;
        let user = new_user(&s, "nina", "nina-pw").await;
        let nina = ("nina", "nina-pw");
        put_member(&s, &format!("/groups/{bottom}/users/{user}"), AS_ADMIN, 200).await;

        // A member of the space through three levels, without the privilege yet.
        let eff = format!("/spaces/{DEMO_SPACE}/effective_users/{user}/privileges");
        assert_eq!(privileges_of(&s, &eff, AS_ADMIN).await, set(&SPACE_MEMBER));
        assert!(ids(
            &s,
            &format!("/spaces/{DEMO_SPACE}/effective_users"),
            AS_ADMIN,
            "users"
        )
        .await
        .contains(&user));
        assert_error_code(s.space_token_as(DEMO_SPACE, nina).await, 403, "forbidden").await;

        let top_privs = format!("/spaces/{DEMO_SPACE}/groups/{top}/privileges");
        patch_privs(&s, &top_privs, AS_ADMIN, "grant", &["space_add_provider"]).await;
        assert!(privileges_of(&s, &top_privs, AS_ADMIN)
            .await
            .contains("space_add_provider"));
        expect_token(s.space_token_as(DEMO_SPACE, nina).await).await;
        expect_token(s.space_token_as(DEMO_SPACE, nina).await).await;
        assert!(privileges_of(&s, &eff, Some(nina))
            .await
            .contains("space_add_provider"));

        patch_privs(&s, &top_privs, AS_ADMIN, "revoke", &["space_add_provider"]).await;
        // The very next mint is refused.
        assert_error_code(s.space_token_as(DEMO_SPACE, nina).await, 403, "forbidden").await;
        assert_eq!(privileges_of(&s, &eff, AS_ADMIN).await, set(&SPACE_MEMBER));

        // Granted again, then the mid -> bottom link is cut: refused at once.
        patch_privs(&s, &top_privs, AS_ADMIN, "grant", &["space_add_provider"]).await;
        expect_token(s.space_token_as(DEMO_SPACE, nina).await).await;
        delete(&s, &format!("/groups/{mid}/children/{bottom}"), AS_ADMIN).await;
        assert_error_code(s.space_token_as(DEMO_SPACE, nina).await, 403, "forbidden").await;
        fails(&s, M::GET, &eff, AS_ADMIN, 404).await;

        // Relinked: allowed again; the top -> mid link cut: refused at once.
        put_member(
            &s,
            &format!("/groups/{mid}/children/{bottom}"),
            AS_ADMIN,
            200,
        )
        .await;
        expect_token(s.space_token_as(DEMO_SPACE, nina).await).await;
        delete(&s, &format!("/groups/{top}/children/{mid}"), AS_ADMIN).await;
        assert_error_code(s.space_token_as(DEMO_SPACE, nina).await, 403, "forbidden").await;

        // Relinked; removing nina from bottom, and top from the space, refuse at once too.
        put_member(&s, &format!("/groups/{top}/children/{mid}"), AS_ADMIN, 200).await;
        expect_token(s.space_token_as(DEMO_SPACE, nina).await).await;
        delete(&s, &format!("/groups/{bottom}/users/{user}"), AS_ADMIN).await;
        assert_error_code(s.space_token_as(DEMO_SPACE, nina).await, 403, "forbidden").await;
        put_member(&s, &format!("/groups/{bottom}/users/{user}"), AS_ADMIN, 200).await;
        expect_token(s.space_token_as(DEMO_SPACE, nina).await).await;
        delete(&s, &format!("/spaces/{DEMO_SPACE}/groups/{top}"), AS_ADMIN).await;
        assert_error_code(s.space_token_as(DEMO_SPACE, nina).await, 403, "forbidden").await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// Deletion
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_leaves_no_dangling_references() {
    bounded(async {
        let s = start_demo().await;
        // A user in groups and spaces, with an access token.
        let uid = new_user(&s, "victim", "victim-pw").await;
        let victim = ("victim", "victim-pw");
        let access = expect_token(s.client_token_as(victim).await).await;
        let other_space = new_space(&s, AS_ADMIN, "other").await;
        put_member(
            &s,
            &format!("/groups/{DEMO_GROUP}/users/{uid}"),
            AS_ADMIN,
            200,
        )
        .await;
        put_member(
            &s,
            &format!("/spaces/{DEMO_SPACE}/users/{uid}"),
            AS_ADMIN,
            204,
        )
        .await;
        put_member(
            &s,
            &format!("/spaces/{other_space}/users/{uid}"),
            AS_ADMIN,
            204,
        )
        .await;

        // A group with a parent, a child, a user, and two spaces; a space
        // creation token for it.
        let parent = new_group(&s, AS_ADMIN, "parent").await;
        let g = new_group(&s, AS_ADMIN, "doomed group").await;
        let child = new_group(&s, AS_ADMIN, "child").await;
        put_member(&s, &format!("/groups/{parent}/children/{g}"), AS_ADMIN, 200).await;
        put_member(&s, &format!("/groups/{g}/children/{child}"), AS_ADMIN, 200).await;
        put_member(&s, &format!("/groups/{g}/users/{uid}"), AS_ADMIN, 200).await;
        put_member(
            &s,
            &format!("/groups/{child}/users/{CAROL_ID}"),
            AS_ADMIN,
            200,
        )
        .await;
        put_member(
            &s,
            &format!("/spaces/{DEMO_SPACE}/groups/{g}"),
            AS_ADMIN,
            204,
        )
        .await;
        put_member(
            &s,
            &format!("/spaces/{other_space}/groups/{g}"),
            AS_ADMIN,
            204,
        )
        .await;
        expect_token(s.group_token_as(&g, ADMIN).await).await;

        // A space with users, groups, a supporting provider and a token.
        let doomed = new_space(&s, AS_ADMIN, "doomed space").await;
        put_member(
            &s,
            &format!("/spaces/{doomed}/users/{GUEST_ID}"),
            AS_ADMIN,
            204,
        )
        .await;
        put_member(
            &s,
            &format!("/spaces/{doomed}/groups/{DEMO_GROUP}"),
            AS_ADMIN,
            204,
        )
        .await;
        put_member(
            &s,
            &format!("/spaces/{doomed}/groups/{parent}"),
            AS_ADMIN,
            204,
        )
        .await;
        let b = json!({ "name": "p", "domain": "p.example" });
        let p = expect_json(
            call(&s, M::POST, "/providers", AS_ADMIN, Some(b)).await,
            201,
        )
        .await;
        let pid = p["providerId"].as_str().expect("provider id").to_owned();
        let ptoken = p["providerRootToken"]
            .as_str()
            .expect("provider token")
            .to_owned();
        let support = expect_token(s.space_token_as(&doomed, ADMIN).await).await;
        let r = s
            .client
            .post(s.url("/provider/spaces/support"))
            .header("x-auth-token", &ptoken)
            .json(&json!({ "token": support, "size": 1024 }))
            .send()
            .await
            .expect("support request");
        assert_eq!(
            r.status(),
            201,
            "support: {}",
            r.text().await.unwrap_or_default()
        );
        let v = expect_json(get(&s, &format!("/spaces/{doomed}"), AS_ADMIN).await, 200).await;
        assert_eq!(v["providersSupports"][&pid], 1024);
        expect_token(s.space_token_as(&doomed, ADMIN).await).await;
        assert!(store_problems(&s).await.is_empty(), "consistent before");

        // Delete all three through the API.
        delete(&s, &format!("/users/{uid}"), AS_ADMIN).await;
        delete(&s, &format!("/groups/{g}"), AS_ADMIN).await;
        delete(&s, &format!("/spaces/{doomed}"), AS_ADMIN).await;

        let problems = store_problems(&s).await;
        assert!(problems.is_empty(), "dangling references: {problems:?}");

        // No listing shows them.
        assert!(!ids(&s, "/users", AS_ADMIN, "users").await.contains(&uid));
        assert!(!ids(&s, "/groups", AS_ADMIN, "groups").await.contains(&g));
        assert!(!ids(&s, "/spaces", AS_ADMIN, "spaces")
            .await
            .contains(&doomed));
        for (path, key, gone) in [
            (format!("/groups/{DEMO_GROUP}/users"), "users", &uid),
            (
                format!("/groups/{DEMO_GROUP}/effective_users"),
                "users",
                &uid,
            ),
            (format!("/spaces/{DEMO_SPACE}/users"), "users", &uid),
            (
                format!("/spaces/{DEMO_SPACE}/effective_users"),
                "users",
                &uid,
            ),
            (format!("/spaces/{other_space}/users"), "users", &uid),
            (
                format!("/spaces/{other_space}/effective_users"),
                "users",
                &uid,
            ),
            (format!("/groups/{parent}/children"), "children", &g),
            (
                format!("/groups/{parent}/effective_children"),
                "children",
                &g,
            ),
            (format!("/spaces/{DEMO_SPACE}/groups"), "groups", &g),
            (format!("/spaces/{other_space}/groups"), "groups", &g),
            ("/user/spaces".to_string(), "spaces", &doomed),
            ("/user/groups".to_string(), "groups", &g),
        ] {
            let listed = ids(&s, &path, AS_ADMIN, key).await;
            assert!(
                !listed.contains(gone),
                "{path} still lists {gone}: {listed:?}"
            );
        }
        // The parent no longer reaches the child through the deleted group.
        assert!(ids(
            &s,
            &format!("/groups/{parent}/effective_children"),
            AS_ADMIN,
            "children"
        )
        .await
        .is_empty());
        assert_eq!(
            ids(
                &s,
                &format!("/groups/{parent}/effective_users"),
                AS_ADMIN,
                "users"
            )
            .await,
            set(&[ADMIN_ID])
        );
        // The child group and the provider themselves remain.
        expect_json(get(&s, &format!("/groups/{child}"), AS_ADMIN).await, 200).await;
        assert!(ids(&s, "/providers", AS_ADMIN, "providers")
            .await
            .contains(&pid));
        // Guest and carol lost the deleted space.
        assert!(!ids(&s, "/user/spaces", AS_GUEST, "spaces")
            .await
            .contains(&doomed));
        assert!(!ids(&s, "/user/spaces", AS_CAROL, "spaces")
            .await
            .contains(&doomed));
        // Everything about them is gone.
        for path in [
            format!("/users/{uid}"),
            format!("/groups/{g}"),
            format!("/spaces/{doomed}"),
            format!("/spaces/{doomed}/providers"),
            format!("/spaces/{doomed}/tokens"),
            format!("/groups/{g}/tokens"),
            format!("/groups/{g}/users"),
            format!("/spaces/{DEMO_SPACE}/users/{uid}"),
            format!("/spaces/{DEMO_SPACE}/groups/{g}"),
        ] {
            fails(&s, M::GET, &path, AS_ADMIN, 404).await;
        }
        assert_error_code(s.space_token_as(&doomed, ADMIN).await, 404, "not_found").await;
        assert_error_code(s.group_token_as(&g, ADMIN).await, 404, "not_found").await;
        // The user's credentials are dead.
        assert_error(get(&s, "/user", Some(victim)).await, 401).await;
        let r = s
            .client
            .get(s.url("/user"))
            .header("x-auth-token", &access)
            .send()
            .await
            .expect("request");
        assert_error(r, 401).await;
        assert!(store_problems(&s).await.is_empty());
    })
    .await;
}

// ---------------------------------------------------------------------------
// Backup
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_running() {
    bounded(async {
        let s = start_demo().await;
        let before = new_user(&s, "before", "pw").await;
        fails(&s, M::POST, "/backup", AS_GUEST, 403).await;
        fails(&s, M::POST, "/backup", NOBODY, 401).await;
        let r = get(&s, "/backup", AS_ADMIN).await;
        assert_eq!(
            r.headers()
                .get(reqwest::header::ALLOW)
                .map(|v| v.to_str().unwrap().to_owned()),
            Some("POST".to_owned())
        );
        assert_error_code(r, 405, "method_not_allowed").await;

        let v = expect_json(call(&s, M::POST, "/backup", AS_ADMIN, None).await, 201).await;
        let path = std::path::PathBuf::from(v["path"].as_str().expect("path"));
        assert_eq!(
            v.as_object().map(|o| o.len()),
            Some(1),
            "only the path: {v}"
        );
        assert!(path.is_dir(), "{} is a directory", path.display());
        assert!(
            path.starts_with(s.dir.path()),
            "{} is under the data directory",
            path.display()
        );
        // Two backups never collide.
        let v2 = expect_json(call(&s, M::POST, "/backup", AS_ADMIN, None).await, 201).await;
        assert_ne!(v2["path"], v["path"]);

        // The server keeps serving, and a change after the backup is not in it.
        let after = new_user(&s, "after", "pw").await;
        let copy = ozmint::Store::open_sled(
            &path,
            &ozmint::engine::sled::SledOptions::default(),
            ozmint::DurabilityMode::Durable,
        )
        .await
        .expect("the backup opens as a store");
        assert!(copy.check().await.expect("check").is_empty());
        assert!(copy.user(&id(&before)).await.unwrap().is_some());
        assert!(copy.user(&id(&after)).await.unwrap().is_none());
        assert!(copy.user_by_name("admin").await.unwrap().is_some());
    })
    .await;
}

// ---------------------------------------------------------------------------
// Every endpoint, every error class
// ---------------------------------------------------------------------------

/// Every administration endpoint with a method it answers and a valid body.
/// `{g}`, `{s}`, `{u}`, `{c}` stand for a group, a space, a user and a child group.
fn endpoints() -> Vec<(M, &'static str, Option<Value>)> {
    let privs = || Some(json!({ "operation": "grant", "privileges": [] }));
    let name = || Some(json!({ "name": "x" }));
    vec![
        (M::GET, "/users", None),
        (
            M::POST,
            "/users",
            Some(json!({ "username": "zed", "password": "pw" })),
        ),
        (M::GET, "/users/{u}", None),
        (M::DELETE, "/users/{u}", None),
        (M::GET, "/users/{u}/privileges", None),
        (M::PATCH, "/users/{u}/privileges", privs()),
        (M::GET, "/user", None),
        (
            M::PATCH,
            "/user/password",
            Some(json!({ "oldPassword": "a", "newPassword": "b" })),
        ),
        (M::GET, "/user/groups", None),
        (M::POST, "/user/groups", name()),
        (M::GET, "/user/spaces", None),
        (M::POST, "/user/spaces", name()),
        (M::GET, "/groups", None),
        (M::POST, "/groups", name()),
        (M::GET, "/spaces", None),
        (M::POST, "/spaces", name()),
        (M::GET, "/groups/{g}", None),
        (M::PATCH, "/groups/{g}", name()),
        (M::DELETE, "/groups/{g}", None),
        (M::GET, "/spaces/{s}", None),
        (M::PATCH, "/spaces/{s}", name()),
        (M::DELETE, "/spaces/{s}", None),
        (M::GET, "/groups/{g}/users", None),
        (M::GET, "/groups/{g}/children", None),
        (M::GET, "/spaces/{s}/users", None),
        (M::GET, "/spaces/{s}/groups", None),
        (M::PUT, "/groups/{g}/users/{u}", None),
        (M::GET, "/groups/{g}/users/{u}", None),
        (M::DELETE, "/groups/{g}/users/{u}", None),
        (M::PUT, "/groups/{g}/children/{c}", None),
        (M::GET, "/groups/{g}/children/{c}", None),
        (M::DELETE, "/groups/{g}/children/{c}", None),
        (M::PUT, "/spaces/{s}/users/{u}", None),
        (M::GET, "/spaces/{s}/users/{u}", None),
        (M::DELETE, "/spaces/{s}/users/{u}", None),
        (M::PUT, "/spaces/{s}/groups/{c}", None),
        (M::GET, "/spaces/{s}/groups/{c}", None),
        (M::DELETE, "/spaces/{s}/groups/{c}", None),
        (M::GET, "/groups/{g}/users/{u}/privileges", None),
        (M::PATCH, "/groups/{g}/users/{u}/privileges", privs()),
        (M::GET, "/groups/{g}/children/{c}/privileges", None),
        (M::PATCH, "/groups/{g}/children/{c}/privileges", privs()),
        (M::GET, "/spaces/{s}/users/{u}/privileges", None),
        (M::PATCH, "/spaces/{s}/users/{u}/privileges", privs()),
        (M::GET, "/spaces/{s}/groups/{c}/privileges", None),
        (M::PATCH, "/spaces/{s}/groups/{c}/privileges", privs()),
        (M::GET, "/groups/{g}/effective_users", None),
        (M::GET, "/groups/{g}/effective_children", None),
        (M::GET, "/groups/{g}/effective_users/{u}/privileges", None),
        (M::GET, "/spaces/{s}/effective_users", None),
        (M::GET, "/spaces/{s}/effective_users/{u}/privileges", None),
        (M::GET, "/user/effective_groups", None),
        (M::GET, "/user/effective_groups/{g}", None),
        (M::GET, "/user/effective_spaces", None),
        (M::GET, "/user/effective_spaces/{s}", None),
        (M::GET, "/user/effective_providers", None),
        (M::GET, "/groups/{g}/parents", None),
        (M::GET, "/groups/{g}/effective_parents", None),
        (M::GET, "/groups/{g}/effective_spaces", None),
        (M::GET, "/spaces/{s}/effective_groups", None),
        (M::POST, "/backup", None),
    ]
}

fn fill(template: &str, g: &str, sp: &str, u: &str, c: &str) -> String {
    template
        .replace("{g}", g)
        .replace("{s}", sp)
        .replace("{u}", u)
        .replace("{c}", c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_requires_credentials() {
    bounded(async {
        let s = start_demo().await;
        let g = new_group(&s, AS_ADMIN, "g").await;
        let c = new_group(&s, AS_ADMIN, "c").await;
        let sp = new_space(&s, AS_ADMIN, "s").await;
        for (i, (method, template, body)) in endpoints().into_iter().enumerate() {
            let path = fill(template, &g, &sp, GUEST_ID, &c);
            let r = call(&s, method.clone(), &path, NOBODY, body).await;
            assert!(
                r.headers().contains_key(reqwest::header::WWW_AUTHENTICATE),
                "{method} {path}"
            );
            assert_error_code(r, 401, "unauthorized").await;
            // Unknown credentials are 401 as well, never 403/404 (one name
            // per endpoint: a name is throttled after ten failures).
            let name = format!("nobody{i}");
            let r = call(&s, method.clone(), &path, Some((&name, "wrong")), None).await;
            assert_error_code(r, 401, "invalid_credentials").await;
        }
        assert!(store_problems(&s).await.is_empty());
        assert!(s.store().user_by_name("zed").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_rejects_malformed_ids() {
    bounded(async {
        let s = start_demo().await;
        let g = new_group(&s, AS_ADMIN, "g").await;
        let c = new_group(&s, AS_ADMIN, "c").await;
        let sp = new_space(&s, AS_ADMIN, "s").await;
        let bad_ids = ["not-an-id", "AAAA", "%21%21%21", &"A".repeat(44)];
        let mut checked = 0;
        for (method, template, body) in endpoints() {
            for slot in ["{g}", "{s}", "{u}", "{c}"] {
                if !template.contains(slot) {
                    continue;
                }
                for bad in bad_ids {
                    let pick = |x: &str, real: &str| {
                        if x == slot {
                            bad.to_owned()
                        } else {
                            real.to_owned()
                        }
                    };
                    let path = fill(
                        template,
                        &pick("{g}", &g),
                        &pick("{s}", &sp),
                        &pick("{u}", GUEST_ID),
                        &pick("{c}", &c),
                    );
                    let r = call(&s, method.clone(), &path, AS_ADMIN, body.clone()).await;
                    assert_error_code(r, 400, "invalid_request").await;
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "{checked}");
        assert!(store_problems(&s).await.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_reports_unknown_entities_and_relations() {
    bounded(async {
        let s = start_demo().await;
        let g = new_group(&s, AS_ADMIN, "g").await;
        let c = new_group(&s, AS_ADMIN, "c").await;
        let sp = new_space(&s, AS_ADMIN, "s").await;
        // Unknown entities, one slot at a time.
        for (method, template, body) in endpoints() {
            for slot in ["{g}", "{s}", "{u}", "{c}"] {
                if !template.contains(slot) {
                    continue;
                }
                let nothing = unknown();
                let pick = |x: &str, real: &str| {
                    if x == slot {
                        nothing.clone()
                    } else {
                        real.to_owned()
                    }
                };
                let path = fill(
                    template,
                    &pick("{g}", &g),
                    &pick("{s}", &sp),
                    &pick("{u}", GUEST_ID),
                    &pick("{c}", &c),
                );
                let r = call(&s, method.clone(), &path, AS_ADMIN, body.clone()).await;
                assert_error_code(r, 404, "not_found").await;
            }
        }
        // Existing entities, no relation between them: every member endpoint
        // but PUT answers 404 (guest is in neither g nor s; c is no child of
        // g and not in s).
        for (method, template, body) in endpoints() {
            let member =
                template.matches('{').count() == 2 && !template.contains("effective_users");
            if !member || method == M::PUT {
                continue;
            }
            let path = fill(template, &g, &sp, GUEST_ID, &c);
            let r = call(&s, method.clone(), &path, AS_ADMIN, body.clone()).await;
            assert_error_code(r, 404, "not_found").await;
        }
        for path in [
            format!("/groups/{g}/effective_users/{GUEST_ID}/privileges"),
            format!("/spaces/{sp}/effective_users/{GUEST_ID}/privileges"),
        ] {
            fails(&s, M::GET, &path, AS_ADMIN, 404).await;
        }
        assert!(store_problems(&s).await.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_checks_privileges() {
    bounded(async {
        let s = start_demo().await;
        // Entities carol has nothing to do with; guest is a member of both.
        let g = new_group(&s, AS_ADMIN, "g").await;
        let c = new_group(&s, AS_ADMIN, "c").await;
        let sp = new_space(&s, AS_ADMIN, "s").await;
        put_member(&s, &format!("/groups/{g}/users/{GUEST_ID}"), AS_ADMIN, 200).await;
        put_member(&s, &format!("/groups/{g}/children/{c}"), AS_ADMIN, 200).await;
        put_member(&s, &format!("/spaces/{sp}/users/{GUEST_ID}"), AS_ADMIN, 204).await;
        put_member(&s, &format!("/spaces/{sp}/groups/{c}"), AS_ADMIN, 204).await;
        // Endpoints about the caller themselves, open to every user.
        let own = |t: &str| t == "/user" || t.starts_with("/user/");
        let mut checked = 0;
        for (method, template, body) in endpoints() {
            let creates = method == M::POST && (template == "/groups" || template == "/spaces");
            if own(template) || creates {
                continue;
            }
            let path = fill(template, &g, &sp, GUEST_ID, &c);
            let r = call(&s, method.clone(), &path, AS_CAROL, body.clone()).await;
            assert_error_code(r, 403, "forbidden").await;
            checked += 1;
        }
        assert!(checked > 35, "{checked}");
        // A user's effective privileges are theirs to see, nobody else's.
        for template in [
            "/groups/{g}/effective_users/{u}/privileges",
            "/spaces/{s}/effective_users/{u}/privileges",
        ] {
            let path = fill(template, &g, &sp, GUEST_ID, &c);
            fails(&s, M::GET, &path, AS_CAROL, 403).await;
            expect_json(get(&s, &path, AS_GUEST).await, 200).await;
        }
        // Members with default privileges may view but not change.
        for (method, template, body) in endpoints() {
            if method == M::GET || own(template) || !template.contains('{') {
                continue;
            }
            if template.starts_with("/users/") {
                continue;
            }
            let path = fill(template, &g, &sp, CAROL_ID, &c);
            let r = call(&s, method.clone(), &path, AS_GUEST, body.clone()).await;
            assert_error_code(r, 403, "forbidden").await;
        }
        // Nothing changed.
        assert_eq!(
            ids(&s, &format!("/groups/{g}/users"), AS_ADMIN, "users").await,
            set(&[ADMIN_ID, GUEST_ID])
        );
        assert_eq!(
            ids(&s, &format!("/spaces/{sp}/users"), AS_ADMIN, "users").await,
            set(&[ADMIN_ID, GUEST_ID])
        );
        assert!(s.store().user_by_name("zed").await.unwrap().is_none());
        assert!(store_problems(&s).await.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_methods_are_405_with_allow() {
    bounded(async {
        let s = start_demo().await;
        let (g, sp, u) = (DEMO_GROUP, DEMO_SPACE, GUEST_ID);
        let cases: Vec<(M, String, &str)> = vec![
            (M::PUT, "/users".into(), "GET, POST"),
            (M::DELETE, "/users".into(), "GET, POST"),
            (M::PATCH, format!("/users/{u}"), "GET, DELETE"),
            (M::POST, format!("/users/{u}"), "GET, DELETE"),
            (M::PUT, format!("/users/{u}/privileges"), "GET, PATCH"),
            (M::POST, "/user".into(), "GET"),
            (M::DELETE, "/user".into(), "GET"),
            (M::GET, "/user/password".into(), "PATCH"),
            (M::PUT, "/user/password".into(), "PATCH"),
            (M::DELETE, "/user/groups".into(), "GET, POST"),
            (M::PUT, "/user/spaces".into(), "GET, POST"),
            (M::PATCH, "/groups".into(), "GET, POST"),
            (M::DELETE, "/spaces".into(), "GET, POST"),
            (M::PUT, format!("/groups/{g}"), "GET, PATCH, DELETE"),
            (M::POST, format!("/spaces/{sp}"), "GET, PATCH, DELETE"),
            (M::POST, format!("/groups/{g}/users"), "GET"),
            (M::PUT, format!("/spaces/{sp}/groups"), "GET"),
            (
                M::POST,
                format!("/groups/{g}/users/{u}"),
                "GET, PUT, DELETE",
            ),
            (
                M::PATCH,
                format!("/spaces/{sp}/users/{u}"),
                "GET, PUT, DELETE",
            ),
            (
                M::PATCH,
                format!("/groups/{g}/children/{g}"),
                "GET, PUT, DELETE",
            ),
            (
                M::DELETE,
                format!("/spaces/{sp}/users/{u}/privileges"),
                "GET, PATCH",
            ),
            (
                M::PUT,
                format!("/groups/{g}/users/{u}/privileges"),
                "GET, PATCH",
            ),
            (M::POST, format!("/groups/{g}/effective_users"), "GET"),
            (M::DELETE, format!("/groups/{g}/effective_children"), "GET"),
            (
                M::PATCH,
                format!("/spaces/{sp}/effective_users/{u}/privileges"),
                "GET",
            ),
            (M::GET, "/backup".into(), "POST"),
            (M::DELETE, "/backup".into(), "POST"),
        ];
        for (method, path, allow) in cases {
            for who in [AS_ADMIN, NOBODY] {
                let r = call(&s, method.clone(), &path, who, None).await;
                let got = r
                    .headers()
                    .get(reqwest::header::ALLOW)
                    .map(|v| v.to_str().expect("ascii Allow").to_owned());
                assert_eq!(got.as_deref(), Some(allow), "{method} {path}");
                assert_error_code(r, 405, "method_not_allowed").await;
            }
        }
        assert!(store_problems(&s).await.is_empty());
    })
    .await;
}

// ---------------------------------------------------------------------------
// Regressions: concurrent privilege changes, password length
// ---------------------------------------------------------------------------

/// Concurrent grants of different zone privileges to one user must all
/// survive, as they do for membership privileges (`update_relation` reads and
/// writes under the writer lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_zone_privilege_grants_are_not_lost() {
    bounded(async {
        let s = std::sync::Arc::new(start_demo().await);
        let names = [
            "list_users",
            "list_groups",
            "list_spaces",
            "list_providers",
            "oz_users_create",
            "oz_backup",
            "set_privileges",
            "view_privileges",
            "oz_tokens_manage",
            "oz_providers_create",
            "add_member_to_space",
            "remove_member_from_space",
        ];
        // Warm the credentials cache so that every request is quick.
        expect_json(get(&s, "/user", AS_ADMIN).await, 200).await;
        let path = format!("/users/{GUEST_ID}/privileges");
        for round in 0..5 {
            patch_privs(&s, &path, AS_ADMIN, "set", &[]).await;
            let mut tasks = tokio::task::JoinSet::new();
            for name in names {
                let (s, path) = (s.clone(), path.clone());
                tasks.spawn(async move {
                    patch_privs(&s, &path, AS_ADMIN, "grant", &[name]).await;
                });
            }
            while let Some(r) = tasks.join_next().await {
                r.expect("grant task");
            }
            let got = privileges_of(&s, &path, AS_ADMIN).await;
            assert_eq!(got, set(&names), "round {round}: lost grants");
        }
    })
    .await;
}

/// The server refuses to authenticate passwords longer than
/// `auth::MAX_PASSWORD` (1024 bytes); it must not accept one at creation or
/// password change, which would leave an account nobody can log in to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_too_long_to_log_in_with_are_refused() {
    bounded(async {
        let s = start_demo().await;
        let long = "p".repeat(ozmint::ops::auth::MAX_PASSWORD + 1);
        let body = json!({ "username": "longpw", "password": long });
        let r = call(&s, M::POST, "/users", AS_ADMIN, Some(body)).await;
        let status = r.status().as_u16();
        if status == 201 {
            // Accepted: then the user must be able to log in with it.
            let r = get(&s, "/user", Some(("longpw", &long))).await;
            assert_eq!(
                r.status(),
                200,
                "a created user cannot log in with its password"
            );
        } else {
            assert_error_code(r, 400, "invalid_request").await;
        }
        let body = json!({ "oldPassword": "carol", "newPassword": long });
        let r = call(&s, M::PATCH, "/user/password", AS_CAROL, Some(body)).await;
        if r.status() == 204 {
            let r = get(&s, "/user", Some(("carol", &long))).await;
            assert_eq!(
                r.status(),
                200,
                "carol locked herself out by changing her password"
            );
        } else {
            assert_error_code(r, 400, "invalid_request").await;
            expect_json(get(&s, "/user", AS_CAROL).await, 200).await;
        }
    })
    .await;
}

/// A privilege update needs the privilege to set privileges, nothing else:
/// zone `set_privileges` alone (no `view_privileges`, no `list_groups`)
/// updates zone and member privileges, and a mere viewer is refused with 403
/// whether or not the member it names is one (the check used to be the
/// viewing privilege followed by the relation's existence).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privilege_updates_need_set_privileges_only() {
    bounded(async {
        let s = start_demo().await;
        let setter = new_user(&s, "setter", "setter-pw").await;
        let who = Some(("setter", "setter-pw"));
        patch_privs(
            &s,
            &format!("/users/{setter}/privileges"),
            AS_ADMIN,
            "set",
            &["set_privileges"],
        )
        .await;
        let guest = format!("/users/{GUEST_ID}/privileges");
        fails(&s, M::GET, &guest, who, 403).await;
        patch_privs(&s, &guest, who, "grant", &["list_users"]).await;
        assert_eq!(
            privileges_of(&s, &guest, AS_ADMIN).await,
            set(&["list_users"])
        );

        let g = new_group(&s, AS_ADMIN, "g").await;
        put_member(&s, &format!("/groups/{g}/users/{GUEST_ID}"), AS_ADMIN, 200).await;
        let member = format!("/groups/{g}/users/{GUEST_ID}/privileges");
        fails(&s, M::GET, &member, who, 403).await;
        patch_privs(&s, &member, who, "grant", &["group_invite_user"]).await;
        assert_eq!(
            privileges_of(&s, &member, AS_ADMIN).await,
            set(&["group_view_data", "group_invite_user"])
        );
        // The setter may try a non-member: 404 once allowed.
        let body = json!({ "operation": "grant", "privileges": ["group_view_data"] });
        let carol = format!("/groups/{g}/users/{CAROL_ID}/privileges");
        fails_json(&s, M::PATCH, &carol, who, body.clone(), 404).await;
        // Guest may view the group but not set privileges: 403 for a member
        // and a non-member alike.
        fails_json(&s, M::PATCH, &member, AS_GUEST, body.clone(), 403).await;
        fails_json(&s, M::PATCH, &carol, AS_GUEST, body, 403).await;
        assert!(store_problems(&s).await.is_empty());
    })
    .await;
}

// ---------------------------------------------------------------------------
// Effective memberships seen from users, groups and spaces
// ---------------------------------------------------------------------------

/// Registers a provider as admin and has it support `space`; returns its id.
async fn supported_by_new_provider(s: &TestServer, space: &str, name: &str) -> String {
    let b = json!({ "name": name, "domain": format!("{name}.example") });
    let p = expect_json(call(s, M::POST, "/providers", AS_ADMIN, Some(b)).await, 201).await;
    let pid = p["providerId"].as_str().expect("provider id").to_owned();
    let ptoken = p["providerRootToken"].as_str().expect("provider token");
    let support = expect_token(s.space_token_as(space, ADMIN).await).await;
    let r = s
        .client
        .post(s.url("/provider/spaces/support"))
        .header("x-auth-token", ptoken)
        .json(&json!({ "token": support, "size": 4096 }))
        .send()
        .await
        .expect("support request");
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    pid
}

/// top > mid > bottom, carol in bottom, space `sp` holding top: carol's
/// effective groups, spaces and providers, the groups' parents and
/// effective spaces, and the space's effective groups follow the graph,
/// page like every list, and change at once when the graph does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effective_groups_spaces_providers_and_parents() {
    bounded(async {
        let s = start_demo().await;
        let top = new_group(&s, AS_ADMIN, "top").await;
        let mid = new_group(&s, AS_ADMIN, "mid").await;
        let bottom = new_group(&s, AS_ADMIN, "bottom").await;
        put_member(&s, &format!("/groups/{top}/children/{mid}"), AS_ADMIN, 200).await;
        put_member(
            &s,
            &format!("/groups/{mid}/children/{bottom}"),
            AS_ADMIN,
            200,
        )
        .await;
        put_member(
            &s,
            &format!("/groups/{bottom}/users/{CAROL_ID}"),
            AS_ADMIN,
            200,
        )
        .await;
        let sp = new_space(&s, AS_ADMIN, "sp").await;
        let other = new_space(&s, AS_ADMIN, "other").await;
        put_member(&s, &format!("/spaces/{sp}/groups/{top}"), AS_ADMIN, 204).await;
        let pid = supported_by_new_provider(&s, &sp, "p1").await;
        supported_by_new_provider(&s, &other, "p2").await;

        // Carol's own view (carol is also in the demo group, which is in the
        // demo space, which no provider supports).
        assert_eq!(
            ids(&s, "/user/groups", AS_CAROL, "groups").await,
            set(&[&bottom, DEMO_GROUP])
        );
        assert_eq!(
            ids(&s, "/user/effective_groups", AS_CAROL, "groups").await,
            set(&[&top, &mid, &bottom, DEMO_GROUP])
        );
        assert!(ids(&s, "/user/spaces", AS_CAROL, "spaces").await.is_empty());
        assert_eq!(
            ids(&s, "/user/effective_spaces", AS_CAROL, "spaces").await,
            set(&[&sp, DEMO_SPACE])
        );
        assert_eq!(
            ids(&s, "/user/effective_providers", AS_CAROL, "providers").await,
            set(&[&pid])
        );
        let v = expect_json(
            get(&s, &format!("/user/effective_groups/{top}"), AS_CAROL).await,
            200,
        )
        .await;
        assert_eq!(v, json!({ "groupId": top, "name": "top", "type": "role" }));
        let v = expect_json(
            get(&s, &format!("/user/effective_spaces/{sp}"), AS_CAROL).await,
            200,
        )
        .await;
        assert_eq!(
            v,
            json!({ "spaceId": sp, "name": "sp", "providersSupports": { pid.clone(): 4096 } })
        );
        // Not a member: 404, as for an unknown entity.
        fails(
            &s,
            M::GET,
            &format!("/user/effective_spaces/{other}"),
            AS_CAROL,
            404,
        )
        .await;
        fails(
            &s,
            M::GET,
            &format!("/user/effective_groups/{top}"),
            AS_GUEST,
            404,
        )
        .await;
        fails(
            &s,
            M::GET,
            &format!("/user/effective_groups/{}", unknown()),
            AS_CAROL,
            404,
        )
        .await;
        // Membership is enough: without `space_view_data` through top, carol
        // may not view the space as such, but still sees it as hers.
        patch_privs(
            &s,
            &format!("/spaces/{sp}/groups/{top}/privileges"),
            AS_ADMIN,
            "set",
            &[],
        )
        .await;
        fails(&s, M::GET, &format!("/spaces/{sp}"), AS_CAROL, 403).await;
        expect_json(
            get(&s, &format!("/user/effective_spaces/{sp}"), AS_CAROL).await,
            200,
        )
        .await;

        // The groups' and the space's side.
        assert_eq!(
            ids(&s, &format!("/groups/{bottom}/parents"), AS_ADMIN, "groups").await,
            set(&[&mid])
        );
        assert_eq!(
            ids(
                &s,
                &format!("/groups/{bottom}/effective_parents"),
                AS_ADMIN,
                "groups"
            )
            .await,
            set(&[&top, &mid])
        );
        assert!(
            ids(&s, &format!("/groups/{top}/parents"), AS_ADMIN, "groups")
                .await
                .is_empty()
        );
        for g in [&top, &mid, &bottom] {
            assert_eq!(
                ids(
                    &s,
                    &format!("/groups/{g}/effective_spaces"),
                    AS_ADMIN,
                    "spaces"
                )
                .await,
                set(&[&sp]),
                "{g}"
            );
        }
        assert_eq!(
            ids(
                &s,
                &format!("/spaces/{sp}/effective_groups"),
                AS_ADMIN,
                "groups"
            )
            .await,
            set(&[&top, &mid, &bottom])
        );
        assert_eq!(
            ids(
                &s,
                &format!("/spaces/{DEMO_SPACE}/effective_groups"),
                AS_ADMIN,
                "groups"
            )
            .await,
            set(&[DEMO_GROUP])
        );
        // A member of bottom may view bottom (group_view_data by default);
        // guest is in none of them.
        assert_eq!(
            ids(
                &s,
                &format!("/groups/{bottom}/effective_parents"),
                AS_CAROL,
                "groups"
            )
            .await,
            set(&[&top, &mid])
        );
        for path in [
            format!("/groups/{bottom}/parents"),
            format!("/groups/{bottom}/effective_parents"),
            format!("/groups/{bottom}/effective_spaces"),
            format!("/spaces/{sp}/effective_groups"),
        ] {
            fails(&s, M::GET, &path, AS_GUEST, 403).await;
        }

        // Pages of one.
        let pages = walk(&s, &format!("/spaces/{sp}/effective_groups"), "groups", 1).await;
        let flat: Vec<String> = pages.into_iter().flatten().collect();
        // Pages follow the ids' byte order (the store's key order), which is
        // not the order of their base64url text.
        let mut sorted = flat.clone();
        sorted.sort_by_key(|i| *testkit::server::id(i).as_bytes());
        assert_eq!(flat, sorted, "id order");
        assert_eq!(
            flat.into_iter().collect::<BTreeSet<_>>(),
            set(&[&top, &mid, &bottom])
        );
        let v = expect_json(
            get(&s, "/user/effective_groups?limit=2", AS_CAROL).await,
            200,
        )
        .await;
        assert_eq!(list(&v, "groups").len(), 2);
        assert!(v["next"].is_string(), "{v}");
        fails(&s, M::GET, "/user/effective_groups?limit=0", AS_CAROL, 400).await;
        fails(
            &s,
            M::GET,
            "/user/effective_spaces?after=nope",
            AS_CAROL,
            400,
        )
        .await;

        // Cutting mid out changes every view at once.
        delete(&s, &format!("/groups/{mid}"), AS_ADMIN).await;
        assert_eq!(
            ids(&s, "/user/effective_groups", AS_CAROL, "groups").await,
            set(&[&bottom, DEMO_GROUP])
        );
        assert_eq!(
            ids(&s, "/user/effective_spaces", AS_CAROL, "spaces").await,
            set(&[DEMO_SPACE])
        );
        assert!(ids(&s, "/user/effective_providers", AS_CAROL, "providers")
            .await
            .is_empty());
        fails(
            &s,
            M::GET,
            &format!("/user/effective_spaces/{sp}"),
            AS_CAROL,
            404,
        )
        .await;
        assert!(ids(
            &s,
            &format!("/groups/{bottom}/effective_parents"),
            AS_ADMIN,
            "groups"
        )
        .await
        .is_empty());
        assert!(ids(
            &s,
            &format!("/groups/{bottom}/effective_spaces"),
            AS_ADMIN,
            "spaces"
        )
        .await
        .is_empty());
        assert_eq!(
            ids(
                &s,
                &format!("/spaces/{sp}/effective_groups"),
                AS_ADMIN,
                "groups"
            )
            .await,
            set(&[&top])
        );
        assert!(store_problems(&s).await.is_empty());
    })
    .await;
}
