//! The `ozmint admin`, `backup`, `restore` and `check` commands of the real
//! binary against an in-process HTTPS server on 127.0.0.1 (demo data set):
//! exit codes (0 on success, 1 with the HTTP status on failure), JSON on
//! stdout, the README's worked example verbatim, and a backup taken while the
//! server runs restored into a new data directory that a new server serves.
//!
//! Every child process runs with a clean `OZMINT_*` environment in a
//! temporary working directory and is killed if it outlives its deadline.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use testkit::server::{
    blocking, expect_token, start_demo, start_on, TestServer, ADMIN, CAROL, DEMO_SPACE, GUEST,
};

/// Longest a single command may run.
const CLI_DEADLINE: Duration = Duration::from_secs(60);
/// Longest a whole test may run.
const TEST_DEADLINE: Duration = Duration::from_secs(300);

/// What a finished command left.
#[derive(Debug)]
struct Out {
    args: Vec<String>,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    /// Asserts exit code 0 and a JSON object on stdout; returns it.
    fn json(&self) -> Value {
        assert_eq!(
            self.code,
            Some(0),
            "exit code of ozmint {:?}: {self:#?}",
            self.args
        );
        let v: Value = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"));
        assert!(v.is_object(), "stdout is a JSON object: {self:#?}");
        v
    }

    /// Asserts exit code 0 and a JSON object with a string `key`; returns it.
    fn field(&self, key: &str) -> String {
        let v = self.json();
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("a string `{key}` in {v}: {self:#?}"))
            .to_owned()
    }

    /// Asserts exit code 1 and `HTTP {status}` in the error message.
    fn fails_with(&self, status: u16) {
        assert_eq!(self.code, Some(1), "exit code of {self:#?}");
        assert!(
            self.stderr.contains(&format!("HTTP {status}")),
            "`HTTP {status}` in stderr: {self:#?}"
        );
        assert!(
            self.stdout.trim().is_empty(),
            "nothing on stdout: {self:#?}"
        );
    }
}

/// Runs the binary with `args` and `env` in `cwd` (blocking, bounded).
fn run_sync(cwd: &Path, args: &[String], env: &[(String, String)]) -> Out {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let out_path = cwd.join(format!("stdout-{n}"));
    let err_path = cwd.join(format!("stderr-{n}"));
    let mut cmd = Command::new(testkit::spawned::bin());
    cmd.current_dir(cwd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OZMINT_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn ozmint");
    let deadline = Instant::now() + CLI_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for ozmint") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ozmint {args:?} ran longer than {CLI_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Out {
        args: args.to_vec(),
        code: status.code(),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// A place to run commands in, and the environment to give them.
struct Cli {
    cwd: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Cli {
    fn new(env: &[(&str, &str)]) -> Cli {
        Cli {
            cwd: tempfile::tempdir().expect("tempdir"),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// `ozmint ARGS`, off the async runtime so that the server keeps serving.
    async fn run(&self, args: &[&str]) -> Out {
        let cwd = self.cwd.path().to_owned();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env = self.env.clone();
        blocking(move || run_sync(&cwd, &args, &env)).await
    }

    /// `ozmint admin --url URL -k --user U --password P REST...`.
    async fn admin(&self, s: &TestServer, who: (&str, &str), rest: &[&str]) -> Out {
        let base = s.base();
        let mut args = vec![
            "admin",
            "--url",
            &base,
            "-k",
            "--user",
            who.0,
            "--password",
            who.1,
        ];
        args.extend_from_slice(rest);
        self.run(&args).await
    }
}

async fn bounded(f: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(TEST_DEADLINE, f)
        .await
        .expect("the test finishes within its deadline");
}

/// Asserts a JSON `{"id": ID, "location": "/{kind}/ID"}` answer; returns the id.
fn created(out: &Out, kind: &str) -> String {
    let id = out.field("id");
    assert_eq!(id.len(), 43, "{out:#?}");
    id.parse::<ozmint::Id>().expect("a well-formed id");
    assert_eq!(out.field("location"), format!("/{kind}/{id}"), "{out:#?}");
    id
}

/// The `privileges` of a JSON answer, sorted.
fn privileges(v: &Value) -> Vec<String> {
    let mut p: Vec<String> = v["privileges"]
        .as_array()
        .unwrap_or_else(|| panic!("privileges in {v}"))
        .iter()
        .map(|x| x.as_str().expect("a name").to_owned())
        .collect();
    p.sort();
    p
}

/// GET as admin through HTTPS; returns the JSON body.
async fn api_get(s: &TestServer, path: &str) -> Value {
    let r = s
        .client
        .get(s.url(path))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.expect("JSON body")
}

/// The `ozmint admin` lines of README.md's worked example, split into
/// arguments (without the program name and the trailing comments).
fn readme_example() -> Vec<Vec<String>> {
    let readme = include_str!("../../README.md");
    let at = readme
        .find("A worked example")
        .expect("README.md has the worked example");
    let block = &readme[at..];
    let block = &block[block.find("```sh\n").expect("a sh block") + 6..];
    let block = &block[..block.find("```").expect("the end of the block")];
    block
        .lines()
        .filter(|l| l.starts_with("ozmint admin"))
        .map(|l| {
            let l = l.split('#').next().unwrap_or_default();
            l.split_whitespace().skip(1).map(str::to_owned).collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_worked_example() {
    bounded(async {
        let s = start_demo().await;
        let url = s.base();
        let cli = Cli::new(&[("OZMINT_URL", &url), ("OZMINT_PASSWORD", "password")]);

        // The command lines exactly as README.md has them, with $DAVE and
        // $GROUP standing for the ids the first two print.
        let lines = readme_example();
        let shapes: Vec<&str> = lines.iter().map(|l| l[2].as_str()).collect();
        assert_eq!(
            shapes,
            ["users", "groups", "groups", "groups", "--user", "backup"],
            "the README example's shape changed; update this test: {lines:?}"
        );
        let mut vars: Vec<(&str, String)> = Vec::new();
        let mut outs = Vec::new();
        for line in &lines {
            let args: Vec<String> = line
                .iter()
                .map(|a| {
                    vars.iter()
                        .find(|(k, _)| a == k)
                        .map_or_else(|| a.clone(), |(_, v)| v.clone())
                })
                .collect();
            assert!(
                args.iter().all(|a| !a.starts_with('$')),
                "an unknown variable in {args:?}"
            );
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = cli.run(&refs).await;
            match outs.len() {
                0 => vars.push(("$DAVE", created(&out, "users"))),
                1 => vars.push(("$GROUP", created(&out, "groups"))),
                2 | 3 => assert_eq!(out.json(), json!({}), "{out:#?}"),
                _ => {}
            }
            outs.push(out);
        }
        let (dave, group) = (vars[0].1.clone(), vars[1].1.clone());
        let token = outs[4].field("token");
        let path = PathBuf::from(outs[5].field("path"));

        // What the example did, seen through the API.
        let v = api_get(&s, &format!("/groups/{group}")).await;
        assert_eq!((&v["name"], &v["type"]), (&json!("ops"), &json!("team")));
        let v = api_get(&s, &format!("/groups/{group}/users/{dave}/privileges")).await;
        assert_eq!(
            privileges(&v),
            ["group_create_space_token", "group_view_data"]
        );
        let r = s
            .client
            .post(s.url("/tokens/examine"))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .json(&json!({ "token": token }))
            .send()
            .await
            .expect("examine");
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.expect("JSON");
        assert_eq!(v["type"], "space_create_token", "{v}");
        assert_eq!(v["target"], group.as_str(), "{v}");
        assert_eq!(v["issuer"]["id"], dave.as_str(), "{v}");
        assert_eq!(v["valid"], true, "{v}");
        assert!(path.is_dir(), "backup at {}", path.display());
        assert!(path.starts_with(s.dir.path()));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_backup_restore_and_check() {
    bounded(async {
        let s = start_demo().await;
        let cli = Cli::new(&[]);

        // Users.
        let alice = created(
            &cli.admin(
                &s,
                ADMIN,
                &["users", "create", "alice", "--password", "alice-pw"],
            )
            .await,
            "users",
        );
        cli.admin(&s, ADMIN, &["users", "create", "alice", "--password", "x"])
            .await
            .fails_with(409);
        cli.admin(
            &s,
            GUEST,
            &["users", "create", "mallory", "--password", "x"],
        )
        .await
        .fails_with(403);
        cli.admin(&s, ADMIN, &["users", "create", "a:b", "--password", "x"])
            .await
            .fails_with(400);
        let out = cli.admin(&s, ADMIN, &["users", "show", &alice]).await;
        assert_eq!(out.field("name"), "alice");

        // Groups: top > bottom, alice in bottom.
        let top = created(
            &cli.admin(&s, ADMIN, &["groups", "create", "top"]).await,
            "groups",
        );
        let bottom = created(
            &cli.admin(&s, ADMIN, &["groups", "create", "bottom"]).await,
            "groups",
        );
        cli.admin(&s, ADMIN, &["groups", "add-child", &top, &bottom])
            .await
            .json();
        let out = cli
            .admin(&s, ADMIN, &["groups", "add-child", &bottom, &top])
            .await;
        out.fails_with(409);
        assert!(out.stderr.contains("cycle"), "{out:#?}");
        cli.admin(&s, ADMIN, &["groups", "add-child", &top, &top])
            .await
            .fails_with(409);
        cli.admin(&s, ADMIN, &["groups", "add-user", &bottom, &alice])
            .await
            .json();
        cli.admin(&s, CAROL, &["groups", "add-user", &bottom, &alice])
            .await
            .fails_with(403);
        let out = cli
            .admin(
                &s,
                ADMIN,
                &[
                    "groups",
                    "privileges",
                    &top,
                    "--child",
                    &bottom,
                    "--grant",
                    "group_create_space_token",
                ],
            )
            .await;
        out.json();
        let out = cli
            .admin(
                &s,
                ADMIN,
                &["groups", "privileges", &top, "--child", &bottom],
            )
            .await;
        assert_eq!(
            privileges(&out.json()),
            ["group_create_space_token", "group_view_data"]
        );
        cli.admin(
            &s,
            ADMIN,
            &[
                "groups",
                "privileges",
                &bottom,
                "--user",
                &alice,
                "--grant",
                "group_invite_user,group_change_data",
            ],
        )
        .await
        .json();
        let out = cli
            .admin(
                &s,
                ADMIN,
                &["groups", "privileges", &bottom, "--user", &alice],
            )
            .await;
        assert_eq!(
            privileges(&out.json()),
            ["group_change_data", "group_invite_user", "group_view_data"]
        );
        cli.admin(
            &s,
            ADMIN,
            &[
                "groups",
                "privileges",
                &bottom,
                "--user",
                &alice,
                "--grant",
                "nope",
            ],
        )
        .await
        .fails_with(400);
        let out = cli
            .admin(&s, ADMIN, &["groups", "effective-users", &top])
            .await;
        let v = out.json();
        let users: Vec<&str> = v["users"]
            .as_array()
            .expect("users")
            .iter()
            .map(|u| u.as_str().expect("id"))
            .collect();
        assert!(users.contains(&alice.as_str()), "{out:#?}");

        // Spaces: top joins the demo space with space_add_provider.
        cli.admin(&s, ADMIN, &["spaces", "add-group", DEMO_SPACE, &top])
            .await
            .json();
        cli.admin(&s, CAROL, &["spaces", "add-group", DEMO_SPACE, &bottom])
            .await
            .fails_with(403);
        cli.admin(
            &s,
            ADMIN,
            &[
                "spaces",
                "privileges",
                DEMO_SPACE,
                "--group",
                &top,
                "--grant",
                "space_add_provider",
            ],
        )
        .await
        .json();

        // Tokens, minted by alice through two levels of groups.
        let as_alice = ("alice", "alice-pw");
        let support = cli
            .admin(&s, as_alice, &["tokens", "support", DEMO_SPACE])
            .await
            .field("token");
        cli.admin(&s, as_alice, &["tokens", "create-space", &top])
            .await
            .field("token");
        let private = created(
            &cli.admin(&s, ADMIN, &["spaces", "create", "private"]).await,
            "spaces",
        );
        cli.admin(&s, GUEST, &["tokens", "support", &private])
            .await
            .fails_with(403);
        cli.admin(&s, as_alice, &["tokens", "support", &private])
            .await
            .fails_with(403);

        // Providers and keys.
        let out = cli
            .admin(&s, ADMIN, &["providers", "register", "p1", "p1.example"])
            .await;
        let pid = created(&out, "providers");
        assert_eq!(out.field("providerId"), pid);
        let provider_token = out.field("providerRootToken");
        cli.admin(&s, GUEST, &["providers", "register", "p2", "p2.example"])
            .await
            .fails_with(403);
        let out = cli.admin(&s, ADMIN, &["keys", "rotate"]).await;
        assert!(out.json()["keyId"].as_u64().is_some(), "{out:#?}");
        cli.admin(&s, GUEST, &["keys", "rotate"])
            .await
            .fails_with(403);

        // No credentials at all: exit 1, nothing sent.
        let base = s.base();
        let out = cli.run(&["admin", "--url", &base, "-k", "whoami"]).await;
        assert_eq!(out.code, Some(1), "{out:#?}");
        assert!(out.stderr.contains("--password"), "{out:#?}");

        // Backup while running (the top-level command), then a change it misses.
        let base = s.base();
        let backup_args = |who: (&'static str, &'static str)| {
            vec![
                "backup".to_string(),
                "--url".to_string(),
                base.clone(),
                "-k".to_string(),
                "--user".to_string(),
                who.0.to_string(),
                "--password".to_string(),
                who.1.to_string(),
            ]
        };
        let args = backup_args(GUEST);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        cli.run(&refs).await.fails_with(403);
        let args = backup_args(ADMIN);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let backup = cli.run(&refs).await.field("path");
        assert!(Path::new(&backup).is_dir());
        created(
            &cli.admin(
                &s,
                ADMIN,
                &["users", "create", "late", "--password", "late-pw"],
            )
            .await,
            "users",
        );

        // Restore into a new data directory, check it.
        let new = tempfile::tempdir().expect("tempdir");
        let data = new.path().to_string_lossy().into_owned();
        let out = cli.run(&["restore", &backup, "--data", &data]).await;
        assert_eq!(out.code, Some(0), "{out:#?}");
        let again = cli.run(&["restore", &backup, "--data", &data]).await;
        assert_eq!(again.code, Some(1), "restoring over a store: {again:#?}");
        assert!(again.stderr.contains("already holds a store"), "{again:#?}");
        let out = cli.run(&["check", "--data", &data]).await;
        assert_eq!(out.code, Some(0), "{out:#?}");
        assert_eq!(out.stdout.trim(), "store is consistent", "{out:#?}");

        // A server on the restored store: the users, memberships, privileges,
        // keys and tokens of the backup, and nothing after it.
        let restored = start_on(new, false).await;
        assert_eq!(restored.boot, ozmint::serve::Bootstrap::Existing);
        let r = restored
            .client
            .get(restored.url("/user"))
            .basic_auth("alice", Some("alice-pw"))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), 200, "alice logs in on the restored server");
        let me: Value = r.json().await.expect("JSON");
        assert_eq!(me["userId"], alice.as_str());
        let r = restored
            .client
            .get(restored.url("/user"))
            .basic_auth("late", Some("late-pw"))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), 401, "a user created after the backup");
        expect_token(restored.space_token_as(DEMO_SPACE, as_alice).await).await;
        // The provider consumes, on the restored server, the support token
        // minted before the backup.
        let r = restored
            .client
            .post(restored.url("/provider/spaces/support"))
            .header("x-auth-token", &provider_token)
            .json(&json!({ "token": support, "size": 1000 }))
            .send()
            .await
            .expect("support");
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
        let problems = restored.store().check().await.expect("check");
        assert!(problems.is_empty(), "{problems:?}");
    })
    .await;
}
