//! The zone never loses its last administrator (a user holding the zone
//! privilege `set_privileges`): stripping or deleting the last one is a 409,
//! also when two administrators try to strip each other at once; and an
//! operator can make a user an administrator again on a stopped server.

use std::sync::Arc;

use serde_json::json;
use testkit::server::{
    assert_error_code, start_demo, TestServer, ADMIN, ADMIN_ID, GUEST, GUEST_ID,
};
use testkit::spawned::{ozmint, run, text, Server};

async fn patch_privileges(
    s: &TestServer,
    who: (&str, &str),
    user: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    s.client
        .patch(s.url(&format!("/users/{user}/privileges")))
        .basic_auth(who.0, Some(who.1))
        .json(&body)
        .send()
        .await
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_administrator_cannot_be_stripped_or_deleted() {
    let s = start_demo().await;
    // The report's request: `set` with an empty list on the only administrator.
    let r = patch_privileges(
        &s,
        ADMIN,
        ADMIN_ID,
        json!({"operation": "set", "privileges": []}),
    )
    .await;
    let v = assert_error_code(r, 409, "last_admin").await;
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("set_privileges"),
        "{v}"
    );
    let r = patch_privileges(
        &s,
        ADMIN,
        ADMIN_ID,
        json!({"operation": "revoke", "privileges": ["set_privileges"]}),
    )
    .await;
    assert_error_code(r, 409, "last_admin").await;
    // Other privileges can go; set_privileges stays, so admin still administers.
    let r = patch_privileges(
        &s,
        ADMIN,
        ADMIN_ID,
        json!({"operation": "revoke", "privileges": ["list_users"]}),
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = s
        .client
        .delete(s.url(&format!("/users/{ADMIN_ID}")))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .unwrap();
    assert_error_code(r, 409, "last_admin").await;
    // With a second administrator, the first may go.
    let r = patch_privileges(
        &s,
        ADMIN,
        GUEST_ID,
        json!({"operation": "grant", "privileges": ["set_privileges", "oz_users_delete"]}),
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = patch_privileges(
        &s,
        GUEST,
        ADMIN_ID,
        json!({"operation": "set", "privileges": []}),
    )
    .await;
    assert_eq!(r.status(), 204);
    // Now guest is the last one.
    let r = patch_privileges(
        &s,
        GUEST,
        GUEST_ID,
        json!({"operation": "set", "privileges": []}),
    )
    .await;
    assert_error_code(r, 409, "last_admin").await;
    assert_eq!(s.store().admins().await.unwrap().len(), 1);
    assert!(s.store().check().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_administrators_stripping_each_other_at_once_leave_one() {
    let s = Arc::new(start_demo().await);
    for round in 0..10 {
        // Both are administrators again.
        for id in [ADMIN_ID, GUEST_ID] {
            let r = patch_privileges(
                &s,
                ADMIN,
                id,
                json!({"operation": "grant", "privileges": ["set_privileges"]}),
            )
            .await;
            assert_eq!(r.status(), 204, "round {round}");
        }
        let (a, b) = (s.clone(), s.clone());
        let strip_guest = tokio::spawn(async move {
            patch_privileges(
                &a,
                ADMIN,
                GUEST_ID,
                json!({"operation": "set", "privileges": []}),
            )
            .await
            .status()
            .as_u16()
        });
        let strip_admin = tokio::spawn(async move {
            patch_privileges(
                &b,
                GUEST,
                ADMIN_ID,
                json!({"operation": "revoke", "privileges": ["set_privileges"]}),
            )
            .await
            .status()
            .as_u16()
        });
        let (x, y) = (strip_guest.await.unwrap(), strip_admin.await.unwrap());
        let admins = s.store().admins().await.unwrap();
        assert_eq!(
            admins.len(),
            1,
            "round {round}: {x} {y}: one administrator left"
        );
        assert!(
            [x, y].contains(&204) && ([x, y].contains(&409) || [x, y].contains(&403)),
            "round {round}: one wins, the other is refused: {x} {y}"
        );
        // Restore the demo's administrator for the next round.
        let boss = if admins[0].to_string() == ADMIN_ID {
            ADMIN
        } else {
            GUEST
        };
        let r = patch_privileges(&s, boss, ADMIN_ID, json!({"operation": "set", "privileges": ["set_privileges", "list_users", "oz_users_delete"]})).await;
        assert_eq!(r.status(), 204);
    }
}

/// A store whose users hold no zone privilege at all (as an older release
/// could leave it): `ozmint restore-admin` makes `admin` an administrator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_admin_gives_back_every_zone_privilege_on_a_stopped_store() {
    let tmp = tempfile::tempdir().unwrap();
    let set = json!({
        "users": [{ "id": ADMIN_ID, "username": "admin", "password": "password" }],
    });
    let file = tmp.path().join("set.json");
    std::fs::write(&file, set.to_string()).unwrap();
    let mut import = ozmint(tmp.path());
    import.args(["import", "set.json", "--data", "d"]);
    let out = run(import);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let mut server = Server::start(tmp.path(), &["--listen", "127.0.0.1:0", "--data", "d"], &[]);
    let http = testkit::server::client();
    let users = || {
        http.get(server.url("/users"))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .send()
    };
    assert_eq!(users().await.unwrap().status(), 403, "no administrator");
    server.kill();
    drop(server);

    let mut restore = ozmint(tmp.path());
    restore.args(["restore-admin", "admin", "--data", "d"]);
    let out = run(restore);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("every zone privilege"),
        "{}",
        text(&out.stderr)
    );

    // A missing user is created, with a password printed once.
    let mut create = ozmint(tmp.path());
    create.args(["restore-admin", "rescue", "--data", "d"]);
    let out = run(create);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let password = stdout
        .split("password `")
        .nth(1)
        .and_then(|r| r.split('`').next())
        .expect("the generated password")
        .to_owned();

    let server = Server::start(tmp.path(), &["--listen", "127.0.0.1:0", "--data", "d"], &[]);
    let r = http
        .get(server.url("/users"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "admin administers again");
    let r = http
        .get(server.url("/users"))
        .basic_auth("rescue", Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the new administrator logs in");
}
