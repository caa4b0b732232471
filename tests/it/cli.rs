//! The `ozmint` binary: serving, bootstrapping, signals, flags, configuration
//! errors, export and import. Every child process runs in its own temporary
//! working directory, listens on 127.0.0.1 with an ephemeral port, and is
//! killed if a test fails.

use std::time::Duration;

use ozmint::Id;
use testkit::server::{client, expect_token, ADMIN, DEMO_GROUP, DEMO_SPACE};
use testkit::spawned::{ozmint, run, text, Server};

/// Upper bound for a server to exit after SIGTERM.
const EXIT_DEADLINE: Duration = Duration::from_secs(15);
/// Every subcommand of the binary.
const SUBCOMMANDS: [&str; 8] = [
    "serve", "import", "export", "admin", "backup", "restore", "check", "keys",
];

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Status of an authenticated POST to the space endpoint for a random
/// (unknown) space: 404 once authenticated, 401 otherwise.
async fn login_status(client: &reqwest::Client, server: &Server, user: &str, pw: &str) -> u16 {
    let unknown = Id::random().to_string();
    client
        .post(server.url(&format!("/spaces/{unknown}/providers/token")))
        .basic_auth(user, Some(pw))
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

// ---------------------------------------------------------------------------
// Serving.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_answers_the_seed_examples_and_exits_0_on_sigterm() {
    let tmp = tempdir();
    let data = tmp.path().join("d");
    let data_s = data.to_str().expect("utf-8 path");
    let mut server = Server::spawn(
        tmp.path(),
        &["--demo", "--listen", "127.0.0.1:0", "--data", data_s],
        &[],
    );
    let addr = server.wait_listening();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);
    assert!(
        server.stdout.iter().any(|l| l.contains("demo data set")),
        "stdout {:?}",
        server.stdout
    );

    let c = client();
    // curl -u admin:password -X POST .../spaces/{id}/providers/token
    let resp = c
        .post(server.url(&format!("/spaces/{DEMO_SPACE}/providers/token")))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("space request");
    expect_token(resp).await;
    // curl -k -u admin:password -X GET .../groups/{id}/spaces/token
    let resp = c
        .get(server.url(&format!("/groups/{DEMO_GROUP}/spaces/token")))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("group request");
    expect_token(resp).await;
    drop(c);

    assert!(data.join("tls").join("cert.pem").exists());
    let status = server.terminate(EXIT_DEADLINE).await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status:?}; stderr {}",
        server.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_listens_on_loopback_only_when_asked_for_all_interfaces() {
    let tmp = tempdir();
    let mut server = Server::spawn(
        tmp.path(),
        &["--demo", "--listen", "0.0.0.0:0", "--data", "d"],
        &[],
    );
    let addr = server.wait_listening();
    assert_eq!(addr.ip(), std::net::IpAddr::from([127, 0, 0, 1]));
    assert!(
        server.stdout.iter().any(|l| l.contains("loopback only")),
        "stdout {:?}",
        server.stdout
    );
    let c = client();
    let resp = c
        .post(server.url(&format!("/spaces/{DEMO_SPACE}/providers/token")))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("request");
    expect_token(resp).await;
    drop(c);
    assert_eq!(server.terminate(EXIT_DEADLINE).await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_store_takes_the_admin_password_from_the_environment() {
    let tmp = tempdir();
    let mut server = Server::spawn(
        tmp.path(),
        &["--listen", "127.0.0.1:0", "--data", "d"],
        &[("OZMINT_ADMIN_PASSWORD", "s3cret")],
    );
    server.wait_listening();
    assert!(
        server
            .stdout
            .iter()
            .any(|l| l.contains("OZMINT_ADMIN_PASSWORD")),
        "stdout {:?}",
        server.stdout
    );
    assert!(
        !server.stdout.iter().any(|l| l.contains("s3cret")),
        "the password is not printed: {:?}",
        server.stdout
    );
    let c = client();
    // Authenticated: the unknown space is a 404; a wrong password is a 401.
    assert_eq!(login_status(&c, &server, "admin", "s3cret").await, 404);
    assert_eq!(login_status(&c, &server, "admin", "password").await, 401);
    drop(c);
    assert_eq!(server.terminate(EXIT_DEADLINE).await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_store_prints_a_generated_admin_password_once() {
    let tmp = tempdir();
    let mut server = Server::spawn(tmp.path(), &["--listen", "127.0.0.1:0", "--data", "d"], &[]);
    server.wait_listening();
    let line = server
        .stdout
        .iter()
        .find(|l| l.contains("password `"))
        .unwrap_or_else(|| panic!("a generated password line in {:?}", server.stdout))
        .clone();
    let start = line.find("password `").expect("marker") + "password `".len();
    let len = line[start..].find('`').expect("closing backquote");
    let password = line[start..start + len].to_owned();
    assert!(password.len() >= 16, "a long password: {password:?}");
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));

    let c = client();
    assert_eq!(login_status(&c, &server, "admin", &password).await, 404);
    assert_eq!(login_status(&c, &server, "admin", "password").await, 401);
    drop(c);
    assert_eq!(server.terminate(EXIT_DEADLINE).await.code(), Some(0));

    // A second start on the same store prints no password, and the first one still works.
    let mut again = Server::spawn(tmp.path(), &["--listen", "127.0.0.1:0", "--data", "d"], &[]);
    again.wait_listening();
    assert!(
        !again
            .stdout
            .iter()
            .any(|l| l.to_lowercase().contains("password")),
        "no password on a second start: {:?}",
        again.stdout
    );
    let c = client();
    assert_eq!(login_status(&c, &again, "admin", &password).await, 404);
    drop(c);
    assert_eq!(again.terminate(EXIT_DEADLINE).await.code(), Some(0));
}

// ---------------------------------------------------------------------------
// Flags and configuration errors.
// ---------------------------------------------------------------------------

#[test]
fn version_prints_the_cargo_version() {
    let tmp = tempdir();
    let mut cmd = ozmint(tmp.path());
    cmd.arg("--version");
    let out = run(cmd);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.trim(),
        format!("ozmint {}", env!("CARGO_PKG_VERSION")),
        "stdout {stdout:?}"
    );
}

#[test]
fn help_mentions_every_subcommand_and_serve_help_every_flag() {
    let tmp = tempdir();
    let mut cmd = ozmint(tmp.path());
    cmd.arg("--help");
    let out = run(cmd);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for sub in SUBCOMMANDS {
        assert!(help.contains(sub), "{sub} in {help}");
    }

    let mut cmd = ozmint(tmp.path());
    cmd.args(["serve", "--help"]);
    let out = run(cmd);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for flag in [
        "--config",
        "--data",
        "--listen",
        "--demo",
        "--zone-name",
        "--durability",
        "--tls-cert",
        "--tls-key",
        "--no-tls",
        "--log-format",
        "--log-level",
    ] {
        assert!(help.contains(flag), "{flag} in {help}");
    }

    for sub in SUBCOMMANDS {
        let mut cmd = ozmint(tmp.path());
        cmd.args([sub, "--help"]);
        let out = run(cmd);
        assert!(out.status.success(), "{sub} --help: {}", text(&out.stderr));
        assert!(!out.stdout.is_empty(), "{sub} --help prints help");
    }
    for sub in ["import", "export"] {
        let mut cmd = ozmint(tmp.path());
        cmd.args([sub, "--help"]);
        let help = text(&run(cmd).stdout);
        assert!(help.contains("--data"), "--data in {sub} --help: {help}");
    }
    // Nothing was created by asking for help.
    assert!(!tmp.path().join("ozmint-data").exists());
}

#[test]
fn unknown_setting_in_the_environment_exits_2_naming_the_key() {
    let tmp = tempdir();
    let mut cmd = ozmint(tmp.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data", "d"])
        .env("OZMINT_NOPE", "1");
    let out = run(cmd);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr {stderr}");
    assert!(stderr.contains("nope"), "the key is named: {stderr}");
    assert!(!tmp.path().join("d").exists(), "no store was created");
}

#[test]
fn bad_durability_value_exits_2_naming_the_key() {
    let tmp = tempdir();
    let mut cmd = ozmint(tmp.path());
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        "d",
        "--durability",
        "sometimes",
    ]);
    let out = run(cmd);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr {stderr}");
    assert!(stderr.contains("sometimes"), "the value is named: {stderr}");
    assert!(
        stderr.contains("durability"),
        "the key (durability / --durability) is named: {stderr}"
    );
}

#[test]
fn bad_listen_value_exits_2_naming_the_key() {
    let tmp = tempdir();
    let mut cmd = ozmint(tmp.path());
    cmd.args(["serve", "--listen", "not-an-address", "--data", "d"]);
    let out = run(cmd);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr {stderr}");
    assert!(
        stderr.contains("listen"),
        "the key (listen / --listen) is named: {stderr}"
    );
}

// ---------------------------------------------------------------------------
// Export and import.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_after_a_demo_run_then_import_into_a_new_store_keeps_logins() {
    let tmp = tempdir();
    // A demo run creates the store.
    let mut server = Server::demo(tmp.path(), &[]);
    assert_eq!(server.terminate(EXIT_DEADLINE).await.code(), Some(0));

    // Export.
    let mut cmd = ozmint(tmp.path());
    cmd.args(["export", "--data", "d"]);
    let out = run(cmd);
    assert!(out.status.success(), "export: {}", text(&out.stderr));
    let exported = text(&out.stdout);
    let set: serde_json::Value = serde_json::from_str(&exported).expect("export is JSON");
    let users = set["users"].as_array().expect("users array");
    assert_eq!(users.len(), 3, "{exported}");
    let mut names: Vec<&str> = users
        .iter()
        .map(|u| u["username"].as_str().expect("username"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["admin", "carol", "guest"]);
    for u in users {
        let obj = u.as_object().expect("user object");
        assert!(
            !obj.contains_key("password"),
            "no plain password field: {u}"
        );
        let hash = u["password_hash"].as_str().expect("password_hash string");
        assert!(hash.starts_with("$argon2"), "a PHC hash: {hash}");
    }
    assert_eq!(set["groups"][0]["id"], DEMO_GROUP);
    assert_eq!(set["spaces"][0]["id"], DEMO_SPACE);

    // Import into a new store.
    let file = tmp.path().join("export.json");
    std::fs::write(&file, &exported).expect("write export");
    let mut cmd = ozmint(tmp.path());
    cmd.args(["import", file.to_str().expect("utf-8"), "--data", "new"]);
    let out = run(cmd);
    assert!(out.status.success(), "import: {}", text(&out.stderr));

    // A server on the new store (no demo flag, no bootstrap) accepts admin/password.
    let mut server = Server::spawn(
        tmp.path(),
        &["--listen", "127.0.0.1:0", "--data", "new"],
        &[],
    );
    server.wait_listening();
    assert!(
        !server
            .stdout
            .iter()
            .any(|l| l.contains("administrator") || l.contains("demo")),
        "no bootstrap on an imported store: {:?}",
        server.stdout
    );
    let c = client();
    let resp = c
        .post(server.url(&format!("/spaces/{DEMO_SPACE}/providers/token")))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("request");
    expect_token(resp).await;
    let resp = c
        .get(server.url(&format!("/groups/{DEMO_GROUP}/spaces/token")))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("request");
    expect_token(resp).await;
    // carol keeps her group-derived space privilege.
    let resp = c
        .post(server.url(&format!("/spaces/{DEMO_SPACE}/providers/token")))
        .basic_auth("carol", Some("carol"))
        .send()
        .await
        .expect("request");
    expect_token(resp).await;
    drop(c);
    assert_eq!(server.terminate(EXIT_DEADLINE).await.code(), Some(0));
}

/// Ids are base64url, so one in 64 begins with `-`: the admin commands take
/// such an id as a value, not as a flag (found by a CI run whose random user
/// id began with `-`).
#[tokio::test]
async fn admin_commands_take_ids_that_begin_with_a_hyphen() {
    let tmp = tempdir();
    let user = "-JFuBQO39bLsRIXIfujsXLJ1Eui4LAM5FfN-7bsh8Bw";
    let group = "-abcBQO39bLsRIXIfujsXLJ1Eui4LAM5FfN-7bsh8Bw";
    let set = serde_json::json!({
        "users": [{ "id": user, "username": "admin", "password": "password", "zone_privileges": "all" }],
        "groups": [{ "id": group, "name": "g", "users": [{ "id": user, "privileges": "all" }] }],
    });
    let file = tmp.path().join("set.json");
    std::fs::write(&file, set.to_string()).expect("write data set");
    let mut cmd = ozmint(tmp.path());
    cmd.args(["import", file.to_str().expect("utf-8"), "--data", "d"]);
    let out = run(cmd);
    assert!(out.status.success(), "import: {}", text(&out.stderr));

    let mut server = Server::start(tmp.path(), &["--listen", "127.0.0.1:0", "--data", "d"], &[]);
    let admin = |args: &[&str]| {
        let mut cmd = ozmint(tmp.path());
        cmd.args(["admin", "--url", &server.base(), "-k"])
            .args(["--user", "admin", "--password", "password"])
            .args(args);
        run(cmd)
    };
    for args in [
        &["users", "show", user][..],
        &["groups", "users", group][..],
        &["users", "privileges", user, "--grant", "oz_users_create"][..],
        &["users", "privileges", "--revoke", "oz_users_create", user][..],
    ] {
        let out = admin(args);
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: {}\n{stdout}",
            text(&out.stderr)
        );
    }
    let shown = text(&admin(&["users", "show", user]).stdout);
    assert!(shown.contains("\"admin\""), "the user is shown: {shown}");
    assert_eq!(server.terminate(EXIT_DEADLINE).await.code(), Some(0));
}
