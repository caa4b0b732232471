//! Several `ozmint serve` processes (the real binary) on one 3-member etcd
//! cluster behave as one Onezone: exactly-once consumption spread over the
//! front ends; a change made through one is honoured by the others on the
//! very next request; a demo bootstrap race ends with one copy; the etcd
//! leader killed under load loses no acknowledged answer; quorum lost and
//! back; one front end killed while another serves its tokens; a sled store
//! moved onto etcd.
//!
//! Tests that only read and write share one cluster (each its own prefix);
//! tests that stop or kill members run their own. Every process is stopped
//! by its id when its harness is dropped. Needs the `etcd` feature and the
//! `etcd` binary; without either, the tests say so loudly and pass.

#[cfg(not(feature = "etcd"))]
#[test]
fn etcd_frontend_tests_skipped() {
    use std::io::Write;
    let skip = "SKIPPED: etcd tests need the etcd binary (apt-get install etcd-server) and the etcd feature";
    let bar = "!".repeat(skip.len());
    // Straight to stderr, past the test harness's capture.
    let _ = writeln!(std::io::stderr(), "\n{bar}\n{skip}\n{bar}\n");
}

#[cfg(feature = "etcd")]
mod on_etcd {
    use std::collections::{BTreeMap, BTreeSet};
    use std::io::Write as _;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::{Duration, Instant};

    use reqwest::{Client, Method};
    use serde_json::{json, Value};
    use tempfile::TempDir;

    use testkit::etcd::Cluster;
    use testkit::server::{
        bounded, unix_now, ADMIN, ADMIN_ID, CAROL, CAROL_ID, DEMO_GROUP, DEMO_SPACE, GUEST,
        GUEST_ID, PREFIX,
    };
    use testkit::spawned::{ozmint, run, text, Server};

    /// The cluster of the tests that neither stop nor kill members.
    static SHARED: OnceLock<Option<Cluster>> = OnceLock::new();

    fn shared() -> Option<&'static Cluster> {
        SHARED.get_or_init(Cluster::start).as_ref()
    }

    fn unique(what: &str) -> String {
        format!("{what}-{:016x}", rand::random::<u64>())
    }

    /// Prints past the test harness's capture (measured figures).
    fn note(line: &str) {
        let _ = writeln!(std::io::stderr(), "etcd_frontends: {line}");
    }

    /// Upper bound on any one request in these tests: a hang fails the test.
    const HANG: Duration = Duration::from_secs(30);

    fn http() -> Client {
        reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .timeout(HANG)
            .no_proxy()
            .build()
            .expect("client")
    }

    /// One `ozmint serve` on `--store URL`, with its own working and data directory.
    struct Front {
        server: Server,
        _dir: TempDir,
    }

    impl Front {
        fn spawn(url: &str, demo: bool) -> Front {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut args = vec![
                "--listen",
                "127.0.0.1:0",
                "--data",
                "d",
                "--store",
                url,
                "--log-level",
                "warn",
            ];
            if demo {
                args.push("--demo");
            }
            Front {
                server: Server::spawn(dir.path(), &args, &[]),
                _dir: dir,
            }
        }

        /// A listening front end; `--demo` loads the demo data set into an empty store.
        fn start(url: &str, demo: bool) -> Front {
            let mut f = Front::spawn(url, demo);
            f.server.wait_listening();
            f
        }

        fn base(&self) -> String {
            self.server.base()
        }

        fn running(&mut self) -> bool {
            self.server.is_running()
        }
    }

    /// A credential presented with a request.
    #[derive(Clone, Copy)]
    enum Cred<'a> {
        None,
        Basic((&'a str, &'a str)),
        Token(&'a str),
    }

    /// A response, read completely.
    #[derive(Debug)]
    struct R {
        status: u16,
        json_type: bool,
        location: Option<String>,
        text: String,
        json: Value,
        took: Duration,
    }

    impl R {
        /// Asserts the status; for errors also the JSON error body and, if
        /// given, the `error` code.
        #[track_caller]
        fn expect(&self, status: u16, code: Option<&str>, what: &str) -> &R {
            assert_eq!(self.status, status, "{what}: body {}", self.text);
            if status >= 400 {
                assert!(self.is_json_error(), "{what}: error body {}", self.text);
                if let Some(code) = code {
                    assert_eq!(self.json["error"], code, "{what}: {}", self.text);
                }
            }
            self
        }

        fn is_json_error(&self) -> bool {
            self.json_type
                && self.json["error"].as_str().is_some_and(|e| !e.is_empty())
                && self.json["error_description"]
                    .as_str()
                    .is_some_and(|e| !e.is_empty())
        }

        /// The `token` of a 200 answer.
        #[track_caller]
        fn token(&self, what: &str) -> String {
            self.expect(200, None, what);
            self.json["token"].as_str().expect("token").to_owned()
        }

        /// The id in the `Location` of a 201 answer (`/{kind}/{id}`).
        #[track_caller]
        fn created(&self, kind: &str, what: &str) -> String {
            self.expect(201, None, what);
            let loc = self.location.as_deref().expect("Location");
            loc.strip_prefix(&format!("/{kind}/"))
                .unwrap_or_else(|| panic!("{what}: Location {loc}"))
                .to_owned()
        }
    }

    /// One request; `Err` for a transport failure (no answer at all).
    async fn try_call(
        http: &Client,
        base: &str,
        method: Method,
        path: &str,
        cred: Cred<'_>,
        body: Option<&Value>,
    ) -> Result<R, String> {
        let url = if matches!(path, "/healthz" | "/readyz") {
            format!("{base}{path}")
        } else {
            format!("{base}{PREFIX}{path}")
        };
        let mut req = http.request(method.clone(), url);
        req = match cred {
            Cred::None => req,
            Cred::Basic((u, p)) => req.basic_auth(u, Some(p)),
            Cred::Token(t) => req.header("x-auth-token", t),
        };
        if let Some(b) = body {
            req = req.json(b);
        }
        let t = Instant::now();
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status().as_u16();
        let json_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .is_some_and(|v| v == "application/json");
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp
            .text()
            .await
            .map_err(|e| format!("{method} {path}: body: {e}"))?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(R {
            status,
            json_type,
            location,
            text,
            json,
            took: t.elapsed(),
        })
    }

    async fn call(
        http: &Client,
        f: &Front,
        method: Method,
        path: &str,
        cred: Cred<'_>,
        body: Option<&Value>,
    ) -> R {
        try_call(http, &f.base(), method, path, cred, body)
            .await
            .unwrap_or_else(|e| panic!("{e}; stderr {}", f.server.stderr()))
    }

    const AS_ADMIN: Cred<'static> = Cred::Basic(ADMIN);

    /// The identifier of a token.
    fn tid(token: &str) -> String {
        let raw = ozmint::token::wire::parse(token).expect("a token");
        String::from_utf8(raw.identifier).expect("ascii identifier")
    }

    fn support_path(space: &str) -> String {
        format!("/spaces/{space}/providers/token")
    }

    async fn mint_support(http: &Client, f: &Front, space: &str, who: Cred<'_>) -> R {
        call(http, f, Method::POST, &support_path(space), who, None).await
    }

    async fn access_token(http: &Client, f: &Front, who: Cred<'_>) -> String {
        call(http, f, Method::POST, "/user/client_tokens", who, None)
            .await
            .token("minting an access token")
    }

    /// Registers a provider (as admin); its id and root token.
    async fn provider(http: &Client, f: &Front, name: &str) -> (String, String) {
        let body = json!({ "name": name, "domain": format!("{name}.example") });
        let r = call(http, f, Method::POST, "/providers", AS_ADMIN, Some(&body)).await;
        r.expect(201, None, "registering a provider");
        let id = r.json["providerId"]
            .as_str()
            .expect("providerId")
            .to_owned();
        let token = r.json["providerRootToken"]
            .as_str()
            .expect("providerRootToken")
            .to_owned();
        (id, token)
    }

    async fn new_space(http: &Client, f: &Front, name: &str) -> String {
        let body = json!({ "name": name });
        call(http, f, Method::POST, "/user/spaces", AS_ADMIN, Some(&body))
            .await
            .created("spaces", "creating a space")
    }

    async fn support(http: &Client, f: &Front, ptoken: &str, token: &str, size: Value) -> R {
        let body = json!({ "token": token, "size": size });
        let path = "/provider/spaces/support";
        call(
            http,
            f,
            Method::POST,
            path,
            Cred::Token(ptoken),
            Some(&body),
        )
        .await
    }

    /// The providers of a space and their sizes.
    async fn supports(http: &Client, f: &Front, space: &str) -> BTreeMap<String, u64> {
        let path = format!("/spaces/{space}/providers");
        let r = call(http, f, Method::GET, &path, AS_ADMIN, None).await;
        r.expect(200, None, "listing the providers of a space");
        r.json["providers"]
            .as_array()
            .expect("providers")
            .iter()
            .map(|p| {
                let p = p.as_str().expect("provider id").to_owned();
                let size = r.json["providersSupports"][&p].as_u64().expect("size");
                (p, size)
            })
            .collect()
    }

    async fn me(http: &Client, f: &Front, who: Cred<'_>) -> R {
        call(http, f, Method::GET, "/user", who, None).await
    }

    async fn examine(http: &Client, f: &Front, token: &str) -> R {
        let body = json!({ "token": token });
        call(
            http,
            f,
            Method::POST,
            "/tokens/examine",
            AS_ADMIN,
            Some(&body),
        )
        .await
    }

    /// The ids listed by `GET path` under `field`, as admin.
    async fn ids(http: &Client, f: &Front, path: &str, field: &str) -> BTreeSet<String> {
        let r = call(http, f, Method::GET, path, AS_ADMIN, None).await;
        r.expect(200, None, path);
        r.json[field]
            .as_array()
            .unwrap_or_else(|| panic!("{field} in {}", r.text))
            .iter()
            .map(|v| v.as_str().expect("an id").to_owned())
            .collect()
    }

    /// Waits (at most `wait`) until `f` holds.
    fn wait_for(wait: Duration, what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + wait;
        while !f() {
            assert!(Instant::now() < deadline, "{what} within {wait:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ozmint check --store URL` passes.
    fn check_store(url: &str) {
        let cwd = tempfile::tempdir().expect("tempdir");
        let mut cmd = ozmint(cwd.path());
        cmd.args(["check", "--store", url]);
        let out = run(cmd);
        assert!(
            out.status.success() && text(&out.stdout).contains("store is consistent"),
            "check: {} {}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    // -----------------------------------------------------------------------
    // 1. Double spend spread over both front ends.
    // -----------------------------------------------------------------------

    const RACERS: usize = 16;
    const ROUNDS: usize = 4;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_token_is_consumed_once_over_both_front_ends() {
        let Some(cluster) = shared() else { return };
        bounded(async {
            let url = cluster.url(&unique("spend"));
            let fronts = [Front::start(&url, true), Front::start(&url, true)];
            let [a, b] = &fronts;
            let bases = Arc::new([a.base(), b.base()]);
            let c = http();
            let (pid, ptoken) = provider(&c, a, "spender").await;
            let mut losers = BTreeMap::new();
            for round in 0..ROUNDS {
                let space = new_space(&c, &fronts[round % 2], &format!("spend{round}")).await;
                let token = mint_support(&c, a, &space, AS_ADMIN)
                    .await
                    .token("minting a support token");
                let later = format!("time < {}", unix_now() + 3600);
                let attenuated = ozmint::token::wire::attenuate(&token, &later).expect("attenuate");
                // One connection per racer, warm before the start.
                let mut racers = Vec::new();
                for i in 0..RACERS {
                    let client = http();
                    let f = &fronts[i % 2];
                    let r = try_call(&client, &f.base(), Method::GET, "/healthz", Cred::None, None)
                        .await
                        .expect("warm-up");
                    assert_eq!(r.status, 200);
                    racers.push(client);
                }
                let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
                let mut set = tokio::task::JoinSet::new();
                for (i, client) in racers.into_iter().enumerate() {
                    let (bases, barrier) = (bases.clone(), barrier.clone());
                    // Odd rounds: half the racers present an attenuated form.
                    let form = if round % 2 == 1 && i % 4 >= 2 {
                        &attenuated
                    } else {
                        &token
                    };
                    let body = json!({ "token": form, "size": i + 1 });
                    let cred = ptoken.clone();
                    set.spawn(async move {
                        barrier.wait().await;
                        let path = "/provider/spaces/support";
                        let base = &bases[i % 2];
                        let r = try_call(&client, base, Method::POST, path, Cred::Token(&cred), Some(&body))
                            .await
                            .expect("an answer");
                        (i, r)
                    });
                }
                let mut wins = Vec::new();
                while let Some(res) = set.join_next().await {
                    let (i, r) = res.expect("racer");
                    if r.status == 201 {
                        wins.push(i);
                    } else {
                        assert!(
                            matches!(r.status, 400 | 409) && r.is_json_error(),
                            "racer {i}: {} {}",
                            r.status,
                            r.text
                        );
                        let code = r.json["error"].as_str().unwrap_or_default();
                        *losers.entry(format!("{} {code}", r.status)).or_insert(0) += 1;
                    }
                }
                assert_eq!(wins.len(), 1, "round {round}: exactly one winner: {wins:?}");
                // Both front ends see exactly the winner's support.
                for f in [a, b] {
                    let got = supports(&c, f, &space).await;
                    let want = BTreeMap::from([(pid.clone(), wins[0] as u64 + 1)]);
                    assert_eq!(got, want, "round {round}");
                }
            }
            note(&format!(
                "double spend: {ROUNDS} rounds x {RACERS} racers over 2 front ends: 1 winner each; losers by status {losers:?}"
            ));

            // A refused consumption leaves the token usable, on either front end.
            let space = new_space(&c, a, "refused").await;
            let token = mint_support(&c, a, &space, AS_ADMIN)
                .await
                .token("minting a support token");
            for (f, size) in [(b, json!(0)), (a, json!(-5)), (b, json!("big"))] {
                support(&c, f, &ptoken, &token, size).await.expect(
                    400,
                    None,
                    "a consumption with a bad size",
                );
            }
            let other = "9ueUeoZA6KXxNgzlvqmmrbzqE_BQiaHEEDC21sY1Kuc-not-a-token";
            support(&c, a, &ptoken, other, json!(1))
                .await
                .expect(400, None, "a bad token");
            assert!(supports(&c, a, &space).await.is_empty());
            let r = examine(&c, b, &token).await;
            r.expect(200, None, "examining");
            assert_eq!(r.json["valid"], true, "{}", r.text);
            support(&c, b, &ptoken, &token, json!(7))
                .await
                .expect(201, None, "the consumption after the refused ones");
            assert_eq!(
                supports(&c, a, &space).await,
                BTreeMap::from([(pid.clone(), 7)])
            );
            support(&c, a, &ptoken, &token, json!(8))
                .await
                .expect(400, Some("invalid_token"), "consuming it again");
            // Refused at the end (the provider already supports the space):
            // the token is not consumed either; another provider uses it.
            let second = mint_support(&c, b, &space, AS_ADMIN)
                .await
                .token("minting a second support token");
            support(&c, a, &ptoken, &second, json!(8)).await.expect(
                409,
                Some("already_exists"),
                "a provider supporting the space again",
            );
            let (pid2, ptoken2) = provider(&c, b, "second").await;
            support(&c, b, &ptoken2, &second, json!(9))
                .await
                .expect(201, None, "another provider with the same token");
            assert_eq!(
                supports(&c, a, &space).await,
                BTreeMap::from([(pid.clone(), 7), (pid2, 9)])
            );
        })
        .await;
    }

    /// Runs `reqs` (front end index, method, path, body) at once, as admin,
    /// each on its own connection; the answers in order.
    async fn all_at_once(bases: &[String; 2], reqs: Vec<(usize, Method, String, Value)>) -> Vec<R> {
        let barrier = Arc::new(tokio::sync::Barrier::new(reqs.len()));
        let tasks: Vec<_> = reqs
            .into_iter()
            .map(|(f, method, path, body)| {
                let (base, barrier) = (bases[f].clone(), barrier.clone());
                tokio::spawn(async move {
                    let c = http();
                    try_call(&c, &base, Method::GET, "/healthz", Cred::None, None)
                        .await
                        .expect("warm-up");
                    barrier.wait().await;
                    try_call(&c, &base, method, &path, AS_ADMIN, Some(&body))
                        .await
                        .expect("an answer")
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("task"));
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_changes_over_both_front_ends_lose_nothing() {
        let Some(cluster) = shared() else { return };
        bounded(async {
            let url = cluster.url(&unique("rmw"));
            let (a, b) = (&Front::start(&url, true), &Front::start(&url, true));
            let bases = [a.base(), b.base()];
            let c = &http();
            // Distinct zone privileges granted to carol at once: all of them stay.
            let granted = [
                "list_groups",
                "list_providers",
                "list_spaces",
                "list_users",
                "oz_groups_add_members",
                "oz_groups_list_groups",
                "oz_groups_list_users",
                "oz_groups_remove_members",
                "oz_spaces_list_groups",
                "oz_spaces_list_users",
                "set_privileges",
                "view_privileges",
                "oz_users_create",
                "oz_providers_create",
                "oz_tokens_manage",
                "oz_backup",
            ];
            let path = format!("/users/{CAROL_ID}/privileges");
            let reqs = granted
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let body = json!({ "operation": "grant", "privileges": [p] });
                    (i % 2, Method::PATCH, path.clone(), body)
                })
                .collect();
            for r in all_at_once(&bases, reqs).await {
                r.expect(204, None, "a concurrent grant");
            }
            let r = call(c, b, Method::GET, &path, AS_ADMIN, None).await;
            let got: BTreeSet<&str> = r.json["privileges"]
                .as_array()
                .expect("privileges")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(got, BTreeSet::from(granted), "{}", r.text);

            // One user name claimed at once through both: one user.
            let reqs = (0..16)
                .map(|i| {
                    let body = json!({ "username": "dave", "password": format!("pw{i}") });
                    (i % 2, Method::POST, "/users".to_owned(), body)
                })
                .collect();
            let answers = all_at_once(&bases, reqs).await;
            let created = answers.iter().filter(|r| r.status == 201).count();
            for r in answers.iter().filter(|r| r.status != 201) {
                r.expect(409, Some("already_exists"), "the same name again");
            }
            assert_eq!(created, 1, "one dave");
            let users = ids(c, a, "/users", "users").await;
            assert_eq!(users.len(), 4, "{users:?}");

            // New members added to one group at once: all of them are in.
            let mut new = Vec::new();
            for i in 0..8 {
                let body = json!({ "username": format!("m{i}"), "password": "pw" });
                let r = call(
                    c,
                    [a, b][i % 2],
                    Method::POST,
                    "/users",
                    AS_ADMIN,
                    Some(&body),
                )
                .await;
                new.push(r.created("users", "a new user"));
            }
            let reqs = new
                .iter()
                .enumerate()
                .map(|(i, u)| {
                    (
                        i % 2,
                        Method::PUT,
                        format!("/groups/{DEMO_GROUP}/users/{u}"),
                        json!({}),
                    )
                })
                .collect();
            for r in all_at_once(&bases, reqs).await {
                r.expect(200, None, "a concurrent membership");
            }
            let members = ids(c, a, &format!("/groups/{DEMO_GROUP}/users"), "users").await;
            assert_eq!(members.len(), 3 + new.len(), "{members:?}");
            check_store(&url);
        })
        .await;
    }

    // -----------------------------------------------------------------------
    // 2. A change through A is honoured by B on the very next request.
    // -----------------------------------------------------------------------

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_change_through_one_front_end_holds_at_once_on_the_other() {
        let Some(cluster) = shared() else { return };
        bounded(async {
            let url = cluster.url(&unique("honour"));
            let a = &Front::start(&url, true);
            let b = &Front::start(&url, true);
            let c = &http();
            let as_carol = Cred::Basic(CAROL);
            let mint = |who| async move { mint_support(c, b, DEMO_SPACE, who).await };

            // Privileges: carol may mint through the demo group's space privileges.
            mint(as_carol).await.token("carol mints through B");
            let group_privs = format!("/spaces/{DEMO_SPACE}/groups/{DEMO_GROUP}/privileges");
            let patch = |op: &str| json!({ "operation": op, "privileges": ["space_add_provider"] });
            call(
                c,
                a,
                Method::PATCH,
                &group_privs,
                AS_ADMIN,
                Some(&patch("revoke")),
            )
            .await
            .expect(204, None, "revoking through A");
            mint(as_carol).await.expect(
                403,
                Some("forbidden"),
                "carol minting through B after the revocation",
            );
            call(
                c,
                a,
                Method::PATCH,
                &group_privs,
                AS_ADMIN,
                Some(&patch("grant")),
            )
            .await
            .expect(204, None, "granting through A");
            mint(as_carol).await.token("carol mints through B again");

            // Membership: carol leaves the demo group through A.
            let carol_in_group = format!("/groups/{DEMO_GROUP}/users/{CAROL_ID}");
            call(c, a, Method::DELETE, &carol_in_group, AS_ADMIN, None)
                .await
                .expect(202, None, "removing carol through A");
            mint(as_carol).await.expect(
                403,
                Some("forbidden"),
                "carol minting through B after leaving",
            );
            call(c, a, Method::PUT, &carol_in_group, AS_ADMIN, None)
                .await
                .expect(200, None, "adding carol back through A");
            mint(as_carol)
                .await
                .token("carol mints through B once back");

            // Password: B verified (and cached) guest's password; A changes it.
            let r = me(c, b, Cred::Basic(GUEST)).await;
            r.expect(200, None, "guest through B");
            assert_eq!(r.json["userId"], GUEST_ID);
            let body = json!({ "oldPassword": GUEST.1, "newPassword": "guest-2" });
            call(
                c,
                a,
                Method::PATCH,
                "/user/password",
                Cred::Basic(GUEST),
                Some(&body),
            )
            .await
            .expect(204, None, "changing guest's password through A");
            me(c, b, Cred::Basic(GUEST)).await.expect(
                401,
                Some("invalid_credentials"),
                "the old password through B",
            );
            me(c, b, Cred::Basic(("guest", "guest-2"))).await.expect(
                200,
                None,
                "the new password through B",
            );

            // Revocation of an invite token and of an access token.
            let (_pid, ptoken) = provider(c, a, "honour").await;
            let token = mint_support(c, a, DEMO_SPACE, AS_ADMIN)
                .await
                .token("minting through A");
            let r = examine(c, b, &token).await;
            assert_eq!(r.json["valid"], true, "{}", r.text);
            call(
                c,
                a,
                Method::DELETE,
                &format!("/tokens/{}", tid(&token)),
                AS_ADMIN,
                None,
            )
            .await
            .expect(204, None, "revoking through A");
            support(c, b, &ptoken, &token, json!(1)).await.expect(
                400,
                Some("invalid_token"),
                "consuming a revoked token through B",
            );
            let access = access_token(c, a, AS_ADMIN).await;
            me(c, b, Cred::Token(&access))
                .await
                .expect(200, None, "an access token through B");
            let path = format!("/user/client_tokens/{}", tid(&access));
            call(c, a, Method::DELETE, &path, AS_ADMIN, None)
                .await
                .expect(202, None, "revoking an access token through A");
            me(c, b, Cred::Token(&access)).await.expect(
                401,
                Some("invalid_token"),
                "a revoked access token through B",
            );

            // Keys: rotated through A, a token of the new key works on B at
            // once; the old key retired through A, its tokens fail on B at once.
            let old = access_token(c, a, AS_ADMIN).await;
            let old_support = mint_support(c, a, DEMO_SPACE, AS_ADMIN)
                .await
                .token("minting under the first key");
            me(c, b, Cred::Token(&old))
                .await
                .expect(200, None, "the first key on B");
            let r = call(c, a, Method::POST, "/keys", AS_ADMIN, None).await;
            r.expect(201, None, "rotating through A");
            let new_kid = r.json["keyId"].as_u64().expect("keyId");
            let new = access_token(c, a, AS_ADMIN).await;
            me(c, b, Cred::Token(&new))
                .await
                .expect(200, None, "a token of the new key on B");
            let new_support = mint_support(c, a, DEMO_SPACE, AS_ADMIN)
                .await
                .token("minting under the new key");
            // B mints under the new key as well: A verifies its token.
            let by_b = access_token(c, b, AS_ADMIN).await;
            let (_, new_ptoken) = provider(c, b, "after-rotation").await;
            me(c, a, Cred::Token(&by_b)).await.expect(
                200,
                None,
                "B's token after the rotation on A",
            );
            call(
                c,
                a,
                Method::POST,
                &format!("/keys/{}/retire", new_kid - 1),
                AS_ADMIN,
                None,
            )
            .await
            .expect(204, None, "retiring the old key through A");
            let r = me(c, b, Cred::Token(&old)).await;
            r.expect(
                401,
                Some("invalid_token"),
                "a token of the retired key on B",
            );
            assert!(r.text.contains("retired"), "{}", r.text);
            // The first provider's root token was signed with the old key too.
            let r = support(c, b, &ptoken, &new_support, json!(2)).await;
            r.expect(
                401,
                Some("invalid_token"),
                "a provider token of the retired key on B",
            );
            assert!(r.text.contains("retired"), "{}", r.text);
            let r = support(c, b, &new_ptoken, &old_support, json!(2)).await;
            r.expect(
                400,
                Some("invalid_token"),
                "consuming under the retired key on B",
            );
            assert!(r.text.contains("retired"), "{}", r.text);
            me(c, b, Cred::Token(&new))
                .await
                .expect(200, None, "the new key's token on B");
            me(c, b, Cred::Token(&by_b))
                .await
                .expect(200, None, "B's new token on B");
            support(c, b, &new_ptoken, &new_support, json!(2))
                .await
                .expect(201, None, "consuming under the new key on B");
        })
        .await;
    }

    // -----------------------------------------------------------------------
    // 3. Three front ends bootstrap the demo data set at once.
    // -----------------------------------------------------------------------

    const BOOT_ROUNDS: usize = 3;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn three_front_ends_starting_at_once_load_one_demo() {
        let Some(cluster) = shared() else { return };
        bounded(async {
            // A few rounds: the race is in the first moments of each.
            for round in 0..BOOT_ROUNDS {
                let url = cluster.url(&unique("boot"));
                let t = Instant::now();
                let mut fronts: Vec<Front> = (0..3).map(|_| Front::spawn(&url, true)).collect();
                for f in &mut fronts {
                    f.server.wait_listening();
                }
                let took = t.elapsed();
                let c = &http();
                let users = BTreeSet::from([ADMIN_ID, GUEST_ID, CAROL_ID].map(str::to_owned));
                let mut tokens = Vec::new();
                for f in &fronts {
                    assert_eq!(ids(c, f, "/users", "users").await, users);
                    assert_eq!(ids(c, f, "/groups", "groups").await.len(), 1);
                    assert_eq!(ids(c, f, "/spaces", "spaces").await.len(), 1);
                    let r = call(c, f, Method::GET, "/keys", AS_ADMIN, None).await;
                    let keys = r.json["keys"].as_array().expect("keys");
                    assert_eq!(keys.len(), 1, "one root key: {}", r.text);
                    tokens.push(access_token(c, f, AS_ADMIN).await);
                }
                // A token minted by each verifies on every other.
                for (i, t) in tokens.iter().enumerate() {
                    for (j, f) in fronts.iter().enumerate() {
                        let r = call(c, f, Method::GET, "/user", Cred::Token(t), None).await;
                        r.expect(200, None, &format!("token of front end {i} on {j}"));
                    }
                }
                let mut loaded = 0;
                for f in &mut fronts {
                    let st = f.server.terminate(Duration::from_secs(30)).await;
                    assert!(st.success(), "{st:?}; {}", f.server.stderr());
                    loaded += f.server.stdout.iter().filter(|l| l.contains("Loaded the demo")).count();
                }
                let cwd = tempfile::tempdir().expect("tempdir");
                let out = run({
                    let mut cmd = ozmint(cwd.path());
                    cmd.args(["export", "--store", &url]);
                    cmd
                });
                assert!(out.status.success(), "export: {}", text(&out.stderr));
                let set: Value = serde_json::from_slice(&out.stdout).expect("a JSON data set");
                let listed = |k: &str| set[k].as_array().map_or(0, Vec::len);
                assert_eq!(
                    (listed("users"), listed("groups"), listed("spaces")),
                    (3, 1, 1),
                    "one copy of the demo data set: {set}"
                );
                assert_eq!(set["groups"][0]["users"].as_array().map(Vec::len), Some(3));
                assert_eq!(set["spaces"][0]["users"].as_array().map(Vec::len), Some(2));
                assert_eq!(set["spaces"][0]["groups"].as_array().map(Vec::len), Some(1));
                check_store(&url);
                note(&format!(
                    "bootstrap race {round}: 3 front ends listening after {took:?}; {loaded} of them loaded the demo data set (merged)"
                ));
            }
        })
        .await;
    }

    // -----------------------------------------------------------------------
    // 4. The etcd leader SIGKILLed during mints and consumptions.
    // -----------------------------------------------------------------------

    /// What the front ends acknowledged under load.
    #[derive(Default)]
    struct Ledger {
        /// Tokens minted, with the index of the front end that minted them
        /// and the state they must be in.
        tokens: Vec<(String, usize, State)>,
        /// Consumptions acknowledged: space and size.
        consumed: Vec<(String, u64)>,
        /// Answers by status (and error code).
        answers: BTreeMap<String, usize>,
        /// Answers with a 2xx after the kill.
        ok_after_kill: usize,
        /// The slowest answer.
        slowest: Duration,
        /// Requests that got no answer at all.
        no_answer: Vec<String>,
        /// Answers that were neither 2xx nor a JSON 503.
        wrong: Vec<String>,
    }

    impl Ledger {
        /// Records one answer; true for a 2xx.
        fn answer(&mut self, what: &str, r: &Result<R, String>, killed: bool) -> bool {
            match r {
                Err(e) => {
                    self.no_answer.push(e.clone());
                    false
                }
                Ok(r) => {
                    self.slowest = self.slowest.max(r.took);
                    let key = if (200..300).contains(&r.status) {
                        r.status.to_string()
                    } else {
                        format!("{} {}", r.status, r.json["error"].as_str().unwrap_or("?"))
                    };
                    *self.answers.entry(key).or_insert(0) += 1;
                    if (200..300).contains(&r.status) {
                        if killed {
                            self.ok_after_kill += 1;
                        }
                        return true;
                    }
                    let unavailable = r.status == 503
                        && r.is_json_error()
                        && r.json["error"] == "store_unavailable";
                    if !unavailable {
                        self.wrong.push(format!("{what}: {} {}", r.status, r.text));
                    }
                    false
                }
            }
        }
    }

    /// The state of an acknowledged token afterwards.
    #[derive(Clone, Copy, Debug)]
    enum State {
        Active,
        Consumed,
        /// Its consumption was answered 503: it may have been made.
        Either,
    }

    impl State {
        fn allows(self, state: &Value) -> bool {
            match self {
                State::Active => state == "active",
                State::Consumed => state == "consumed",
                State::Either => state == "active" || state == "consumed",
            }
        }
    }

    struct Load {
        bases: [String; 2],
        ptoken: String,
        ledger: Mutex<Ledger>,
        stop: AtomicBool,
        killed: AtomicBool,
        spaces: AtomicUsize,
    }

    impl Load {
        async fn request(
            &self,
            c: &Client,
            front: usize,
            method: Method,
            path: &str,
            cred: Cred<'_>,
            body: Option<&Value>,
        ) -> Option<R> {
            let killed = self.killed.load(Ordering::SeqCst);
            let r = try_call(c, &self.bases[front], method, path, cred, body).await;
            let ok = self.ledger.lock().unwrap().answer(path, &r, killed);
            r.ok().filter(|_| ok)
        }

        /// Mints access and support tokens through `front` and consumes
        /// support tokens of new spaces through the other front end.
        async fn worker(&self, w: usize) {
            let c = http();
            let front = w % 2;
            for n in 0usize.. {
                if self.stop.load(Ordering::SeqCst) {
                    break;
                }
                match n % 3 {
                    0 => {
                        let path = "/user/client_tokens";
                        if let Some(r) = self
                            .request(&c, front, Method::POST, path, AS_ADMIN, None)
                            .await
                        {
                            let t = r.token("an access token");
                            self.ledger
                                .lock()
                                .unwrap()
                                .tokens
                                .push((t, front, State::Active));
                        }
                    }
                    1 => {
                        let path = support_path(DEMO_SPACE);
                        if let Some(r) = self
                            .request(&c, front, Method::POST, &path, AS_ADMIN, None)
                            .await
                        {
                            let t = r.token("a support token");
                            self.ledger
                                .lock()
                                .unwrap()
                                .tokens
                                .push((t, front, State::Active));
                        }
                    }
                    _ => self.consume(&c, front).await,
                }
            }
        }

        /// A new space, a support token for it through `front`, consumed
        /// through the other one; gives up at the first failure.
        async fn consume(&self, c: &Client, front: usize) {
            let k = self.spaces.fetch_add(1, Ordering::SeqCst);
            let body = json!({ "name": format!("load{k}") });
            let Some(r) = self
                .request(
                    c,
                    front,
                    Method::POST,
                    "/user/spaces",
                    AS_ADMIN,
                    Some(&body),
                )
                .await
            else {
                return;
            };
            let space = r.created("spaces", "a space");
            let Some(r) = self
                .request(
                    c,
                    front,
                    Method::POST,
                    &support_path(&space),
                    AS_ADMIN,
                    None,
                )
                .await
            else {
                return;
            };
            let token = r.token("a support token");
            let size = k as u64 + 1;
            let body = json!({ "token": token, "size": size });
            let path = "/provider/spaces/support";
            let other = 1 - front;
            let cred = Cred::Token(&self.ptoken);
            let consumed = self
                .request(c, other, Method::POST, path, cred, Some(&body))
                .await
                .is_some();
            let mut ledger = self.ledger.lock().unwrap();
            if consumed {
                ledger.consumed.push((space, size));
                ledger.tokens.push((token, front, State::Consumed));
            } else {
                ledger.tokens.push((token, front, State::Either));
            }
        }
    }

    /// Bound on one request while the leader dies: a read (one request
    /// timeout) and a commit whose outcome is resolved (at most three).
    const FAULT_BOUND: Duration = Duration::from_secs(21);

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn killing_the_etcd_leader_under_load_loses_no_acknowledged_answer() {
        let Some(cluster) = Cluster::start() else {
            return;
        };
        bounded(async {
            let url = cluster.url("load");
            let mut fronts = [Front::start(&url, true), Front::start(&url, true)];
            let c = http();
            let (pid, ptoken) = provider(&c, &fronts[0], "load").await;
            let load = Arc::new(Load {
                bases: [fronts[0].base(), fronts[1].base()],
                ptoken,
                ledger: Mutex::default(),
                stop: AtomicBool::new(false),
                killed: AtomicBool::new(false),
                spaces: AtomicUsize::new(0),
            });
            let workers: Vec<_> = (0..6)
                .map(|w| {
                    let load = load.clone();
                    tokio::spawn(async move { load.worker(w).await })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(2000)).await;
            let before = load.ledger.lock().unwrap().answers.clone();
            let leader = cluster.leader().expect("a leader");
            cluster.kill(leader);
            load.killed.store(true, Ordering::SeqCst);
            let killed_at = Instant::now();
            // Past the election and the resolution of commits stuck on the dead leader.
            tokio::time::sleep(Duration::from_secs(6)).await;
            cluster.restart(leader);
            tokio::time::sleep(Duration::from_secs(2)).await;
            load.stop.store(true, Ordering::SeqCst);
            for w in workers {
                tokio::time::timeout(FAULT_BOUND + HANG, w)
                    .await
                    .expect("a worker hung")
                    .expect("worker");
            }
            let under_fault = killed_at.elapsed();
            assert!(cluster.wait_healthy(Duration::from_secs(20)), "healthy again");
            for f in &mut fronts {
                assert!(f.running(), "a front end died: {}", f.server.stderr());
            }
            let ledger = std::mem::take(&mut *load.ledger.lock().unwrap());
            note(&format!(
                "leader kill: before the kill {before:?}; in all {:?}; {} ok after the kill \
                 (over {under_fault:?}); slowest answer {:?}; {} tokens and {} consumptions acknowledged",
                ledger.answers,
                ledger.ok_after_kill,
                ledger.slowest,
                ledger.tokens.len(),
                ledger.consumed.len()
            ));
            assert!(ledger.no_answer.is_empty(), "no answer: {:?}", ledger.no_answer);
            assert!(ledger.wrong.is_empty(), "not a JSON 503: {:?}", ledger.wrong);
            assert!(ledger.slowest <= FAULT_BOUND, "slowest {:?}", ledger.slowest);
            assert!(ledger.ok_after_kill > 0, "requests went on after the kill");
            assert!(!ledger.consumed.is_empty(), "consumptions were acknowledged");
            // Everything acknowledged holds, seen through the other front end.
            let load = Arc::new(ledger);
            let mut checks = tokio::task::JoinSet::new();
            let bases: Arc<[String; 2]> = Arc::new([fronts[0].base(), fronts[1].base()]);
            for part in 0..4 {
                let (load, bases, pid) = (load.clone(), bases.clone(), pid.clone());
                checks.spawn(async move {
                    let c = http();
                    for (token, front, state) in load.tokens.iter().skip(part).step_by(4) {
                        let body = json!({ "token": token });
                        let r = try_call(
                            &c,
                            &bases[1 - front],
                            Method::POST,
                            "/tokens/examine",
                            AS_ADMIN,
                            Some(&body),
                        )
                        .await
                        .expect("examine");
                        r.expect(200, None, "examining an acknowledged token");
                        assert!(
                            state.allows(&r.json["state"]),
                            "an acknowledged token, {state:?}: {}",
                            r.text
                        );
                    }
                    for (i, (space, size)) in load.consumed.iter().enumerate().skip(part).step_by(4) {
                        let path = format!("/spaces/{space}/providers");
                        let r = try_call(&c, &bases[i % 2], Method::GET, &path, AS_ADMIN, None)
                            .await
                            .expect("providers");
                        r.expect(200, None, "providers of a supported space");
                        assert_eq!(
                            r.json["providersSupports"][&pid].as_u64(),
                            Some(*size),
                            "an acknowledged consumption: {}",
                            r.text
                        );
                    }
                });
            }
            while let Some(r) = checks.join_next().await {
                r.expect("check");
            }
            check_store(&url);
        })
        .await;
    }

    // -----------------------------------------------------------------------
    // 5. Quorum lost and back.
    // -----------------------------------------------------------------------

    /// Bound on a write while etcd has no quorum (the request timeout is 5 s).
    const NO_QUORUM_BOUND: Duration = Duration::from_secs(12);

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn without_quorum_front_ends_answer_503_in_time_and_recover() {
        let Some(cluster) = Cluster::start() else {
            return;
        };
        bounded(async {
            let url = cluster.url("quorum");
            let mut fronts = [Front::start(&url, true), Front::start(&url, true)];
            let pids: Vec<String> = fronts.iter().map(|f| f.server.pid()).collect();
            let c = &http();
            let access = access_token(c, &fronts[0], AS_ADMIN).await;
            for f in &fronts {
                mint_support(c, f, DEMO_SPACE, AS_ADMIN)
                    .await
                    .token("minting with quorum");
                call(c, f, Method::GET, "/readyz", Cred::None, None)
                    .await
                    .expect(200, None, "ready with quorum");
            }
            let leader = cluster.leader().expect("a leader");
            let survivor = (leader + 1) % 3;
            for i in (0..3).filter(|&i| i != survivor) {
                cluster.stop(i);
            }
            wait_for(
                Duration::from_secs(10),
                "the last member to lose its leader",
                || cluster.leader().is_none(),
            );
            // A front end starting now cannot open the store: it says so and exits.
            let late_start = Instant::now();
            let mut late = Front::spawn(&url, true);
            let mut slowest = Duration::ZERO;
            for f in &fronts {
                // Everything that needs the store, at once: a mint, readiness,
                // a login nobody made on this front end yet, an access token.
                let (mint, ready, login, token, live) = tokio::join!(
                    mint_support(c, f, DEMO_SPACE, AS_ADMIN),
                    call(c, f, Method::GET, "/readyz", Cred::None, None),
                    me(c, f, Cred::Basic(CAROL)),
                    me(c, f, Cred::Token(&access)),
                    call(c, f, Method::GET, "/healthz", Cred::None, None),
                );
                for (r, what) in [
                    (&mint, "a mint"),
                    (&login, "a first login"),
                    (&token, "an access token"),
                ] {
                    r.expect(
                        503,
                        Some("store_unavailable"),
                        &format!("{what} without quorum"),
                    );
                }
                assert_eq!(ready.status, 503, "readyz without quorum: {}", ready.text);
                assert_eq!(ready.json["status"], "not ready", "{}", ready.text);
                live.expect(200, None, "healthz without quorum");
                for r in [&mint, &ready, &login, &token, &live] {
                    assert!(
                        r.took <= NO_QUORUM_BOUND,
                        "an answer took {:?}: {}",
                        r.took,
                        r.text
                    );
                    slowest = slowest.max(r.took);
                }
            }
            let st = late.server.wait_exit(Duration::from_secs(20)).await;
            let late_exit = late_start.elapsed();
            assert!(!st.success(), "a front end started without quorum: {st:?}");
            let log = late.server.stderr();
            assert!(log.contains("cannot open the store"), "{log}");
            note(&format!(
                "a front end started without quorum: {}",
                log.trim()
            ));
            for i in 0..3 {
                cluster.restart(i);
            }
            let back = Instant::now();
            let deadline = back + Duration::from_secs(30);
            for f in &fronts {
                loop {
                    let r = mint_support(c, f, DEMO_SPACE, AS_ADMIN).await;
                    if r.status == 200 {
                        break;
                    }
                    r.expect(
                        503,
                        Some("store_unavailable"),
                        "a mint while quorum returns",
                    );
                    assert!(Instant::now() < deadline, "writes still fail: {}", r.text);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                loop {
                    let r = call(c, f, Method::GET, "/readyz", Cred::None, None).await;
                    if r.status == 200 {
                        break;
                    }
                    assert!(Instant::now() < deadline, "still not ready: {}", r.text);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                // Nothing was held against the login or the token meanwhile.
                me(c, f, Cred::Basic(CAROL)).await.expect(
                    200,
                    None,
                    "carol's login after the return",
                );
                me(c, f, Cred::Token(&access)).await.expect(
                    200,
                    None,
                    "the access token after the return",
                );
            }
            note(&format!(
                "quorum loss: slowest answer {slowest:?}; a front end starting meanwhile exited \
                 after {late_exit:?}; writes and readyz back {:?} after the restart",
                back.elapsed()
            ));
            for (f, pid) in fronts.iter_mut().zip(&pids) {
                assert!(f.running(), "a front end died: {}", f.server.stderr());
                assert_eq!(&f.server.pid(), pid, "the same process");
            }
        })
        .await;
    }

    // -----------------------------------------------------------------------
    // 6. One front end SIGKILLed; the other serves its tokens.
    // -----------------------------------------------------------------------

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn when_one_front_end_is_killed_the_other_serves_its_tokens() {
        let Some(cluster) = shared() else { return };
        bounded(async {
            let url = cluster.url(&unique("survivor"));
            let mut a = Front::start(&url, true);
            let b = &Front::start(&url, true);
            let c = &http();
            let (_pid, ptoken) = provider(c, &a, "survivor").await;
            let access = access_token(c, &a, AS_ADMIN).await;
            let support_a = mint_support(c, &a, DEMO_SPACE, AS_ADMIN)
                .await
                .token("minting through A");
            let carol_token = access_token(c, &a, Cred::Basic(CAROL)).await;
            let st = a.server.kill();
            assert!(!st.success());
            assert!(!a.running());
            let r = call(c, b, Method::GET, "/user", Cred::Token(&access), None).await;
            r.expect(200, None, "A's access token on B");
            assert_eq!(r.json["userId"], ADMIN_ID);
            let r = call(c, b, Method::GET, "/user", Cred::Token(&carol_token), None).await;
            r.expect(200, None, "carol's access token of A on B");
            assert_eq!(r.json["userId"], CAROL_ID);
            let r = examine(c, b, &support_a).await;
            r.expect(200, None, "examining A's token on B");
            assert_eq!(r.json["valid"], true, "{}", r.text);
            // B mints, with A's access token as the credential too.
            let t = access_token(c, b, Cred::Token(&access)).await;
            call(c, b, Method::GET, "/user", Cred::Token(&t), None)
                .await
                .expect(200, None, "B's access token");
            mint_support(c, b, DEMO_SPACE, AS_ADMIN)
                .await
                .token("minting through B");
            support(c, b, &ptoken, &support_a, json!(5)).await.expect(
                201,
                None,
                "A's support token consumed through B",
            );
            assert_eq!(supports(c, b, DEMO_SPACE).await.len(), 1);
            call(c, b, Method::GET, "/readyz", Cred::None, None)
                .await
                .expect(200, None, "B ready");
        })
        .await;
    }

    // -----------------------------------------------------------------------
    // 7. A sled store moved onto etcd.
    // -----------------------------------------------------------------------

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_sled_store_restored_onto_etcd_keeps_its_tokens_and_logins() {
        let Some(cluster) = shared() else { return };
        bounded(async {
            let cwd = tempfile::tempdir().expect("tempdir");
            let c = &http();
            let mut sled = Server::demo(cwd.path(), &["--log-level", "warn"]);
            let base = sled.base();
            let at = |method, path: String, cred| {
                let base = base.clone();
                async move {
                    try_call(c, &base, method, &path, cred, None)
                        .await
                        .expect("an answer from the sled server")
                }
            };
            let access = at(Method::POST, "/user/client_tokens".into(), AS_ADMIN)
                .await
                .token("access");
            let support_t = at(Method::POST, support_path(DEMO_SPACE), AS_ADMIN)
                .await
                .token("support");
            let body = json!({ "name": "sledp", "domain": "sledp.example" });
            let r = try_call(c, &base, Method::POST, "/providers", AS_ADMIN, Some(&body))
                .await
                .expect("answer");
            r.expect(201, None, "a provider on sled");
            let ptoken = r.json["providerRootToken"]
                .as_str()
                .expect("token")
                .to_owned();
            at(Method::GET, "/user".into(), Cred::Token(&access))
                .await
                .expect(200, None, "the access token on sled");
            let st = sled.terminate(Duration::from_secs(30)).await;
            assert!(st.success(), "{st:?}");

            let url = cluster.url(&unique("moved"));
            let store = cwd.path().join("d/store");
            let out = run({
                let mut cmd = ozmint(cwd.path());
                cmd.arg("restore").arg(&store).args(["--store", &url]);
                cmd
            });
            assert!(out.status.success(), "restore: {}", text(&out.stderr));
            note(&format!("restore: {}", text(&out.stderr).trim()));
            check_store(&url);
            // Restoring again into the now full prefix is refused.
            let out = run({
                let mut cmd = ozmint(cwd.path());
                cmd.arg("restore").arg(&store).args(["--store", &url]);
                cmd
            });
            assert!(!out.status.success(), "a second restore into a full prefix");

            let f = &Front::start(&url, false);
            for (who, id) in [(ADMIN, ADMIN_ID), (GUEST, GUEST_ID), (CAROL, CAROL_ID)] {
                let r = call(c, f, Method::GET, "/user", Cred::Basic(who), None).await;
                r.expect(200, None, "a demo login on etcd");
                assert_eq!(r.json["userId"], id);
            }
            call(c, f, Method::GET, "/user", Cred::Token(&access), None)
                .await
                .expect(200, None, "the sled access token on etcd");
            let r = examine(c, f, &support_t).await;
            assert_eq!(r.json["valid"], true, "{}", r.text);
            support(c, f, &ptoken, &support_t, json!(9)).await.expect(
                201,
                None,
                "the sled support token consumed on etcd by the sled provider",
            );
            let r = call(c, f, Method::GET, "/keys", AS_ADMIN, None).await;
            assert_eq!(
                r.json["keys"].as_array().map(Vec::len),
                Some(1),
                "{}",
                r.text
            );
        })
        .await;
    }

    /// Six ports from `base` (the script's client ports base..base+2 and peer
    /// ports base+100..base+102) that nobody listens on now, and a turn: the
    /// tests that run the script hold it until their cluster is stopped, so
    /// that two of them cannot pick the same ports before either binds them.
    fn free_base() -> (u16, std::sync::MutexGuard<'static, ()>) {
        static TURN: Mutex<()> = Mutex::new(());
        let turn = TURN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bindable = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        let base = (0..200)
            .map(|_| 20_000 + rand::random::<u16>() % 9_000)
            .find(|&b| [0, 1, 2, 100, 101, 102].iter().all(|&o| bindable(b + o)))
            .expect("six free ports");
        (base, turn)
    }

    /// README's "Several front ends over etcd" walkthrough, run by bash as
    /// written, with its ports and directories moved into the test's own
    /// (and the test binary for `target/release/ozmint`): the script starts
    /// a cluster, two front ends share it, the printed status lines are what
    /// the README shows, and everything is stopped.
    #[test]
    fn readme_walkthrough_runs() {
        if shared().is_none() {
            testkit::etcd::skip_loudly();
            return;
        }
        let readme = include_str!("../../README.md");
        let section = readme
            .split_once("**Step by step**")
            .expect("README has the walkthrough")
            .1;
        let block = section
            .split_once("```sh\n")
            .and_then(|(_, rest)| rest.split_once("```"))
            .expect("the walkthrough's code block")
            .0;
        let tmp = tempfile::tempdir().expect("tempdir");
        let (base, _turn) = free_base();
        let (p1, p2) = {
            let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            (
                a.local_addr().unwrap().port(),
                b.local_addr().unwrap().port(),
            )
        };
        let etcd_dir = tmp.path().join("etcd");
        let bin = testkit::spawned::bin();
        let mut expected = Vec::new();
        let mut script = String::new();
        for line in block.lines() {
            if line.starts_with("cargo build") {
                continue; // the test binary is already built
            }
            if line.len() == 3 && line.bytes().all(|b| b.is_ascii_digit()) {
                expected.push(line.to_owned()); // an output line
                continue;
            }
            let line = line
                .replace("target/release/ozmint", &bin.display().to_string())
                .replace("/tmp/ozmint-etcd", &etcd_dir.display().to_string())
                .replace("/tmp/fe", &tmp.path().join("fe").display().to_string())
                .replace("8443", &p1.to_string())
                .replace("8444", &p2.to_string())
                .replace("2379", &base.to_string())
                .replace("2380", &(base + 1).to_string())
                .replace("2381", &(base + 2).to_string());
            let line = match line.strip_prefix("scripts/etcd-cluster.sh start ") {
                Some(dir) => format!("scripts/etcd-cluster.sh start {dir} {base}"),
                None => line,
            };
            script.push_str(&line);
            script.push('\n');
        }
        // Whatever happens, stop the front ends and the cluster.
        let cleanup = format!(
            "cleanup() {{ kill $(jobs -p) 2>/dev/null || true; wait || true; scripts/etcd-cluster.sh stop {} >/dev/null 2>&1; }}\n\
             trap cleanup EXIT\ntrap 'exit 1' TERM INT\nset -euo pipefail\n",
            etcd_dir.display()
        );
        let out = std::process::Command::new("timeout")
            .args(["120", "bash", "-c", &format!("{cleanup}{script}")])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("OZMINT_STORE__URL")
            .output()
            .expect("bash");
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "the walkthrough failed ({}):\n{script}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            text(&out.stderr)
        );
        let printed: Vec<&str> = stdout
            .lines()
            .filter(|l| l.len() == 3 && l.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        assert_eq!(printed, expected, "stdout:\n{stdout}");
        assert!(
            !std::path::Path::new(&etcd_dir).join("m0.pid").exists()
                || std::fs::read_to_string(etcd_dir.join("m0.pid"))
                    .ok()
                    .and_then(|p| p.trim().parse::<u32>().ok())
                    .is_none_or(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()),
            "the walkthrough left etcd running"
        );
    }

    /// The running processes (not zombies) with an argument under `dir`.
    fn processes_under(dir: &std::path::Path) -> Vec<u32> {
        let dir = dir.as_os_str().as_encoded_bytes();
        let names_dir = |pid: u32| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|arg| arg.starts_with(dir)))
        };
        let running = |pid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
                !s.lines()
                    .any(|l| l.starts_with("State:") && l.contains('Z'))
            })
        };
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| names_dir(pid) && running(pid))
            .collect()
    }

    /// `scripts/etcd-cluster.sh` under a load that makes each member slow to
    /// become etcd (a `nohup` on the PATH that waits half a second first):
    /// `start` waits for the members instead of reporting one as exited, and
    /// `stop` stops all three. Both failed so before the script knew a member
    /// by its arguments (CI: "member m0 exited" with an empty log).
    #[test]
    fn the_cluster_script_waits_for_members_slow_to_start() {
        if shared().is_none() {
            testkit::etcd::skip_loudly();
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let slow = tmp.path().join("bin");
        std::fs::create_dir(&slow).unwrap();
        let nohup = slow.join("nohup");
        let real_path = std::env::var("PATH").unwrap_or_default();
        // The real nohup, found on the PATH without this directory.
        let wrapper = format!("#!/bin/sh\nsleep 0.5\nPATH='{real_path}' exec nohup \"$@\"\n");
        std::fs::write(&nohup, wrapper).unwrap();
        let mut perms = std::fs::metadata(&nohup).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&nohup, perms).unwrap();
        let path = format!("{}:{real_path}", slow.display());
        let dir = tmp.path().join("etcd");
        let script = |args: &[&str]| {
            std::process::Command::new("timeout")
                .arg("60")
                .arg("scripts/etcd-cluster.sh")
                .args(args)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .env("PATH", &path)
                .output()
                .expect("the script runs")
        };
        let dir_arg = dir.display().to_string();
        let (base, _turn) = free_base();
        let base = base.to_string();
        let started = script(&["start", &dir_arg, &base]);
        let status = script(&["status", &dir_arg]);
        let stopped = script(&["stop", &dir_arg]);
        // A member that `stop` missed may still be on its way to etcd.
        std::thread::sleep(Duration::from_secs(1));
        let left = processes_under(&dir);
        for &pid in &left {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        assert!(
            started.status.success(),
            "start: {}\n{}",
            started.status,
            text(&started.stderr)
        );
        assert!(status.status.success(), "status:\n{}", text(&status.stdout));
        assert_eq!(text(&status.stdout).matches(" healthy").count(), 3);
        assert!(stopped.status.success(), "stop: {}", text(&stopped.stderr));
        assert!(left.is_empty(), "members left running: {left:?}");
    }
}
