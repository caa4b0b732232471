//! Operational behaviour of the `ozmint` binary: settings from a file, the
//! environment and flags; structured logs with one line per request; the
//! OpenMetrics endpoint (on the API listener and on its own listener); health
//! and readiness; graceful shutdown on SIGTERM/SIGINT with requests in flight;
//! `--help`, `--version` and exit codes.
//!
//! Every test spawns the real binary in a temporary directory, listens on
//! 127.0.0.1 only, bounds every wait, and kills the child if the test fails.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ozmint::token::wire;
use ozmint::{TokenKind, Zone, ZoneConfig};
use serde_json::json;
use testkit::server::{ADMIN, DEMO_GROUP, DEMO_SPACE, GUEST, PREFIX};
use testkit::spawned::{open_stopped_store, ozmint, run, strip_ansi, text, Server, EXIT_DEADLINE};

/// Timeout of every HTTP request made by the tests.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Harness.
// ---------------------------------------------------------------------------

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(CLIENT_TIMEOUT)
        .no_proxy()
}

fn client() -> reqwest::Client {
    client_builder().build().expect("client")
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The `token` field of a 200 JSON answer.
async fn token_of(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body = resp.text().await.expect("body");
    assert_eq!(status, 200, "body {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    v["token"].as_str().expect("token field").to_owned()
}

/// Opens the store of a stopped server and a zone over it.
async fn open_zone(data_dir: &Path) -> Zone {
    let store = open_stopped_store(data_dir).await;
    Zone::new(store, ZoneConfig::default()).await.expect("zone")
}

// ---------------------------------------------------------------------------
// Settings: file < environment < flags; errors name the key.
// ---------------------------------------------------------------------------

/// Starts a server, mints an access token as admin and returns its location;
/// the server is then stopped with SIGTERM (exit 0).
async fn zone_of_a_minted_token(
    cwd: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Option<String>, String) {
    let mut all_env = vec![("OZMINT_ADMIN_PASSWORD", "ops-admin-pw")];
    all_env.extend_from_slice(env);
    let mut server = Server::spawn(cwd, args, &all_env);
    server.wait_listening();
    let c = client();
    let resp = c
        .post(server.url("/user/client_tokens"))
        .basic_auth("admin", Some("ops-admin-pw"))
        .send()
        .await
        .expect("mint an access token");
    let token = token_of(resp).await;
    drop(c);
    let status = server.terminate(EXIT_DEADLINE).await;
    assert_eq!(status.code(), Some(0), "stderr {}", server.stderr());
    let raw = wire::parse(&token).expect("a parsable token");
    (raw.location, server.stderr())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_then_environment_then_flag_set_the_zone_name() {
    let tmp = tempdir();
    let data = tmp.path().join("data");
    let file = tmp.path().join("ozmint.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nzone_name = \"myzone\"\n\n[log]\nformat = \"json\"\n",
            path_str(&data)
        ),
    )
    .expect("write the settings file");
    let file_s = path_str(&file);

    // The file alone.
    let (zone, stderr) = zone_of_a_minted_token(tmp.path(), &["--config", file_s], &[]).await;
    assert_eq!(zone.as_deref(), Some("myzone"));
    assert!(
        data.join("store").exists(),
        "data_dir from the file is used"
    );
    // log.format = "json" from the file: every log line is a JSON object.
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "some log lines");
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v.is_object(), "{l}");
    }

    // The environment overrides the file.
    let (zone, _) = zone_of_a_minted_token(
        tmp.path(),
        &["--config", file_s],
        &[("OZMINT_ZONE_NAME", "envzone")],
    )
    .await;
    assert_eq!(zone.as_deref(), Some("envzone"));

    // A flag overrides both.
    let (zone, _) = zone_of_a_minted_token(
        tmp.path(),
        &["--config", file_s, "--zone-name", "flagzone"],
        &[("OZMINT_ZONE_NAME", "envzone")],
    )
    .await;
    assert_eq!(zone.as_deref(), Some("flagzone"));
}

/// `ozmint serve --config FILE` with `contents` exits 2 naming `key`, and
/// creates no store.
fn config_file_is_refused(contents: &str, key: &str) {
    let tmp = tempdir();
    let file = tmp.path().join("bad.toml");
    std::fs::write(&file, contents).expect("write");
    let mut cmd = ozmint(tmp.path());
    cmd.args([
        "serve",
        "--config",
        path_str(&file),
        "--listen",
        "127.0.0.1:0",
        "--data",
        "d",
    ]);
    let out = run(cmd);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr {stderr}");
    assert!(stderr.contains(key), "the key {key} is named: {stderr}");
    assert!(!tmp.path().join("d").exists(), "no store was created");
}

#[test]
fn unknown_key_in_the_config_file_exits_2_naming_it() {
    config_file_is_refused("[limits]\nnope = 1\n", "nope");
}

#[test]
fn bad_value_in_the_config_file_exits_2_naming_the_key() {
    config_file_is_refused("durability = \"x\"\n", "durability");
}

// ---------------------------------------------------------------------------
// Logs.
// ---------------------------------------------------------------------------

/// The `x-request-id` header of a response.
fn request_id_of(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-request-id")
        .expect("an x-request-id header")
        .to_str()
        .expect("ascii request id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_one_request_line_per_request_with_template_and_request_id() {
    let tmp = tempdir();
    let mut server = Server::demo(tmp.path(), &["--log-format", "json"]);
    let c = client();
    let h1 = client_builder().http1_only().build().expect("client");

    // (request id, method, route template, status) of every request sent.
    let mut sent: Vec<(String, String, &str, u16)> = Vec::new();

    // A client-supplied id is echoed.
    let resp = c
        .get(format!("{}/healthz", server.base()))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("healthz");
    assert_eq!(resp.status(), 200);
    assert_eq!(request_id_of(&resp), "abc-123");
    sent.push(("abc-123".into(), "GET".into(), "/healthz", 200));

    // A server-made id is in the header and in the log line.
    for client in [&c, &h1] {
        let resp = client
            .post(server.url(&format!("/spaces/{DEMO_SPACE}/providers/token")))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .send()
            .await
            .expect("mint");
        let id = request_id_of(&resp);
        assert!(!id.is_empty());
        token_of(resp).await;
        sent.push((id, "POST".into(), "/spaces/{id}/providers/token", 200));
    }

    // Errors are logged with their template too; ids are unique per request.
    let cases: [(&str, reqwest::Method, String, &str, u16); 4] = [
        (
            "ops-readyz",
            reqwest::Method::GET,
            format!("{}/readyz", server.base()),
            "/readyz",
            200,
        ),
        (
            "ops-unmatched",
            reqwest::Method::GET,
            server.url("/no/such/route/here/at/all"),
            "unmatched",
            404,
        ),
        (
            "ops-unauthenticated",
            reqwest::Method::POST,
            server.url(&format!("/spaces/{DEMO_SPACE}/providers/token")),
            "/spaces/{id}/providers/token",
            401,
        ),
        (
            "ops-group-token",
            reqwest::Method::GET,
            server.url("/groups/HwUpk8jrwxKOe45uzLFX2GVC8lKEasj4q253sptVqF8/spaces/token"),
            "/groups/{id}/spaces/token",
            401,
        ),
    ];
    for (rid, method, url, template, status) in cases {
        let resp = h1
            .request(method.clone(), &url)
            .header("x-request-id", rid)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), status, "{method} {url}");
        assert_eq!(request_id_of(&resp), rid);
        sent.push((rid.to_owned(), method.as_str().into(), template, status));
    }
    drop((c, h1));
    let status = server.terminate(EXIT_DEADLINE).await;
    assert_eq!(status.code(), Some(0));

    let stderr = server.stderr();
    let mut requests: Vec<serde_json::Value> = Vec::new();
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v.is_object(), "a JSON object: {line}");
        if v["message"] == "request" {
            requests.push(v);
        }
    }
    assert_eq!(
        requests.len(),
        sent.len(),
        "exactly one request line per request; stderr:\n{stderr}"
    );
    for (rid, method, template, status) in &sent {
        let lines: Vec<&serde_json::Value> = requests
            .iter()
            .filter(|v| v["request_id"].as_str() == Some(rid.as_str()))
            .collect();
        assert_eq!(lines.len(), 1, "one line for {rid}; stderr:\n{stderr}");
        let l = lines[0];
        assert_eq!(l["method"].as_str(), Some(method.as_str()), "{l}");
        assert_eq!(l["route"], *template, "{l}");
        assert_eq!(l["status"].as_u64(), Some(u64::from(*status)), "{l}");
        assert!(l["latency_us"].is_u64(), "latency_us is a number: {l}");
    }
    // Routes by template only: the concrete ids never reach the logs.
    assert!(!stderr.contains(DEMO_SPACE), "concrete space id logged");
    assert!(
        !stderr.contains("HwUpk8jrwxKOe45uzLFX2GVC8lKEasj4q253sptVqF8"),
        "concrete group id logged"
    );
    assert!(!stderr.contains("/no/such/route"), "unmatched path logged");
}

/// A wrong method on a known resource (405, with `Allow`) matched a route:
/// its log line and its metrics label carry that route's template, like
/// every other answer from the resource, not `unmatched` (which is for
/// paths that match no route, 404).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_is_logged_and_counted_under_the_route_template() {
    let tmp = tempdir();
    let mut server = Server::demo(tmp.path(), &["--log-format", "json"]);
    let c = client();
    let resp = c
        .get(server.url(&format!("/spaces/{DEMO_SPACE}/providers/token")))
        .header("x-request-id", "ops-wrong-method")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 405);
    assert_eq!(
        resp.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    let (body, samples) = scrape(&c, &format!("{}/metrics", server.base())).await;
    drop(c);
    assert_eq!(server.terminate(EXIT_DEADLINE).await.code(), Some(0));

    let stderr = server.stderr();
    let line = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["request_id"] == "ops-wrong-method")
        .unwrap_or_else(|| panic!("a request line; stderr:\n{stderr}"));
    assert_eq!(line["status"], 405, "{line}");
    assert_eq!(
        line["route"], "/spaces/{id}/providers/token",
        "a 405 on a known resource is logged under its template: {line}"
    );
    assert_eq!(
        sample(
            &samples,
            "ozmint_http_requests_total",
            &[
                ("route", "/spaces/{id}/providers/token"),
                ("method", "GET"),
                ("status", "405")
            ]
        ),
        1.0,
        "a 405 on a known resource is counted under its template: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn human_logs_have_one_line_per_request() {
    let tmp = tempdir();
    let mut server = Server::demo(tmp.path(), &[]);
    let c = client();
    let ids = ["human-1", "human-2", "human-3", "human-4"];
    let urls = [
        format!("{}/healthz", server.base()),
        format!("{}/readyz", server.base()),
        server.url("/nope"),
        server.url(&format!("/spaces/{DEMO_SPACE}/providers/token")),
    ];
    for (rid, url) in ids.iter().zip(&urls) {
        let resp = c
            .get(url)
            .header("x-request-id", *rid)
            .send()
            .await
            .expect("request");
        assert_eq!(request_id_of(&resp), *rid);
    }
    let resp = c
        .post(server.url(&format!("/spaces/{DEMO_SPACE}/providers/token")))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("mint");
    let made = request_id_of(&resp);
    token_of(resp).await;
    drop(c);
    assert_eq!(server.terminate(EXIT_DEADLINE).await.code(), Some(0));

    let stderr = strip_ansi(&server.stderr());
    let request_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("request_id="))
        .collect();
    assert_eq!(
        request_lines.len(),
        ids.len() + 1,
        "one line per request; stderr:\n{stderr}"
    );
    for rid in ids.iter().copied().chain([made.as_str()]) {
        let n = request_lines
            .iter()
            .filter(|l| l.contains(&format!("request_id={rid} ")))
            .count();
        assert_eq!(n, 1, "one line for {rid}; stderr:\n{stderr}");
    }
    for l in &request_lines {
        assert!(
            serde_json::from_str::<serde_json::Value>(l).is_err(),
            "human, not JSON: {l}"
        );
        assert!(l.contains("route="), "{l}");
        assert!(l.contains("status="), "{l}");
        assert!(l.contains("latency_us="), "{l}");
    }
    assert!(
        request_lines
            .iter()
            .any(|l| l.contains("/spaces/{id}/providers/token")),
        "template in the human lines: {request_lines:?}"
    );
    assert!(!stderr.contains(DEMO_SPACE), "concrete space id logged");
}

// ---------------------------------------------------------------------------
// Metrics and health.
// ---------------------------------------------------------------------------

/// One sample of an OpenMetrics text: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|e| panic!("value in {line}: {e}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), Vec::new()),
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').expect("closing brace");
                let labels = rest
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').expect("label=value");
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels)
            }
        };
        out.push((name, labels, value));
    }
    out
}

/// The value of `name` with (at least) these labels, 0 if absent.
fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

async fn scrape(c: &reqwest::Client, url: &str) -> (String, Vec<Sample>) {
    let resp = c.get(url).send().await.expect("GET /metrics");
    assert_eq!(resp.status(), 200);
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        ctype.starts_with("application/openmetrics-text"),
        "content-type {ctype}"
    );
    let body = resp.text().await.expect("body");
    assert!(
        body.ends_with("# EOF\n"),
        "OpenMetrics ends with # EOF: {body}"
    );
    let samples = parse_metrics(&body);
    (body, samples)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_latency_tokens_auth_failures_flushes_and_store_size() {
    let tmp = tempdir();
    let port = free_port();
    let file = tmp.path().join("metrics.toml");
    std::fs::write(
        &file,
        format!("durability = \"durable\"\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .expect("write");
    let mut server = Server::spawn(
        tmp.path(),
        &[
            "--config",
            path_str(&file),
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--data",
            "d",
        ],
        &[],
    );
    server.wait_listening();
    let c = client();
    let metrics_url = format!("{}/metrics", server.base());

    let (_, before) = scrape(&c, &metrics_url).await;
    let route = "/spaces/{id}/providers/token";
    let minted = |s: &[Sample]| {
        sample(
            s,
            "ozmint_tokens_minted_total",
            &[("type", "space_support_token")],
        )
    };
    let reqs = |s: &[Sample], status: &str| {
        sample(
            s,
            "ozmint_http_requests_total",
            &[("route", route), ("method", "POST"), ("status", status)],
        )
    };
    let failures = |s: &[Sample]| sample(s, "ozmint_auth_failures_total", &[]);

    const MINTS: usize = 3;
    let mut tokens = Vec::new();
    for _ in 0..MINTS {
        let resp = c
            .post(server.url(&format!("/spaces/{DEMO_SPACE}/providers/token")))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .send()
            .await
            .expect("mint");
        tokens.push(token_of(resp).await);
    }
    // A provider consumes the first token; the admin revokes the second.
    let resp = c
        .post(server.url("/providers"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .json(&serde_json::json!({ "name": "p", "domain": "p.example" }))
        .send()
        .await
        .expect("register a provider");
    assert_eq!(resp.status(), 201);
    let v: serde_json::Value = resp.json().await.expect("JSON");
    let provider_token = v["providerRootToken"].as_str().expect("token");
    let resp = c
        .post(server.url("/provider/spaces/support"))
        .header("x-auth-token", provider_token)
        .json(&serde_json::json!({ "token": tokens[0], "size": 1 }))
        .send()
        .await
        .expect("consume");
    assert_eq!(resp.status(), 201);
    let resp = c
        .post(server.url("/tokens/examine"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .json(&serde_json::json!({ "token": tokens[1] }))
        .send()
        .await
        .expect("examine");
    let v: serde_json::Value = resp.json().await.expect("JSON");
    let tid = v["id"].as_str().expect("token id");
    let resp = c
        .delete(server.url(&format!("/tokens/{tid}")))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("revoke");
    assert_eq!(resp.status(), 204);
    let consumed = |s: &[Sample]| {
        sample(
            s,
            "ozmint_tokens_consumed_total",
            &[("type", "space_support_token")],
        )
    };
    let revoked = |s: &[Sample]| sample(s, "ozmint_tokens_revoked_total", &[]);
    let latencies = |s: &[Sample]| {
        sample(
            s,
            "ozmint_http_request_duration_seconds_count",
            &[("route", route)],
        )
    };
    // An unknown space: counted as a 404 request, mints nothing.
    let unknown = ozmint::Id::random().to_string();
    let resp = c
        .post(server.url(&format!("/spaces/{unknown}/providers/token")))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("unknown space");
    assert_eq!(resp.status(), 404);
    // A wrong password.
    let resp = c
        .post(server.url(&format!("/spaces/{DEMO_SPACE}/providers/token")))
        .basic_auth(ADMIN.0, Some("not-the-password"))
        .send()
        .await
        .expect("bad password");
    assert_eq!(resp.status(), 401);

    let (body, after) = scrape(&c, &metrics_url).await;
    assert_eq!(
        reqs(&after, "200") - reqs(&before, "200"),
        MINTS as f64,
        "{body}"
    );
    assert_eq!(reqs(&after, "404") - reqs(&before, "404"), 1.0, "{body}");
    assert_eq!(reqs(&after, "401") - reqs(&before, "401"), 1.0, "{body}");
    assert_eq!(minted(&after) - minted(&before), MINTS as f64, "{body}");
    assert_eq!(failures(&after) - failures(&before), 1.0, "{body}");
    assert_eq!(consumed(&after) - consumed(&before), 1.0, "{body}");
    assert_eq!(revoked(&after) - revoked(&before), 1.0, "{body}");
    assert_eq!(
        latencies(&after) - latencies(&before),
        (MINTS + 2) as f64,
        "every request on the route is in its latency histogram: {body}"
    );
    assert!(
        sample(&after, "ozmint_store_size_bytes", &[]) > 0.0,
        "store size: {body}"
    );
    assert!(
        sample(
            &after,
            "ozmint_auth_failures_total",
            &[("reason", "password")]
        ) >= 1.0,
        "{body}"
    );
    // The previous scrape of /metrics itself is counted.
    assert!(
        sample(
            &after,
            "ozmint_http_requests_total",
            &[("route", "/metrics"), ("method", "GET"), ("status", "200")]
        ) >= 1.0,
        "{body}"
    );
    assert!(
        body.contains("ozmint_store_flush_duration_seconds"),
        "flush histogram: {body}"
    );
    assert!(
        sample(&after, "ozmint_store_flush_duration_seconds_count", &[]) >= 1.0,
        "durable mints flush the store: {body}"
    );
    // Labels carry templates, never concrete ids.
    assert!(!body.contains(DEMO_SPACE), "{body}");
    assert!(!body.contains(&unknown), "{body}");

    // The separate plain-HTTP metrics listener serves the same registry.
    let plain = client_builder().build().expect("client");
    let (body2, on_metrics_port) =
        scrape(&plain, &format!("http://127.0.0.1:{port}/metrics")).await;
    assert!(
        minted(&on_metrics_port) >= minted(&after),
        "same counters: {body2}"
    );
    assert!(body2.contains("ozmint_http_requests_total"), "{body2}");
    // Every request above has ended: on the API listener only the scrape
    // itself is in flight, on this one nothing.
    assert_eq!(
        sample(&after, "ozmint_http_requests_in_flight", &[]),
        1.0,
        "{body}"
    );
    assert_eq!(
        sample(&on_metrics_port, "ozmint_http_requests_in_flight", &[]),
        0.0,
        "{body2}"
    );
    let resp = plain
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .expect("healthz on the metrics port");
    assert_eq!(resp.status(), 200);
    // GET only there too (schemathesis found every method answered 200).
    let resp = plain
        .post(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("POST /metrics on the metrics port");
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET");
    let resp = plain
        .get(format!("http://127.0.0.1:{port}{PREFIX}/spaces"))
        .send()
        .await
        .expect("API path on the metrics port");
    assert_eq!(resp.status(), 404, "the metrics port serves no API");
    drop((c, plain));
    assert_eq!(server.terminate(EXIT_DEADLINE).await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_20_02_tokens_invites_and_failures_on_public_endpoints() {
    let tmp = tempdir();
    let mut server = Server::demo(tmp.path(), &[]);
    let c = client();
    let metrics_url = format!("{}/metrics", server.base());
    let v2_minted = |s: &[Sample], persistence: &str, ty: &str| {
        sample(
            s,
            "ozmint_v2_tokens_minted_total",
            &[("persistence", persistence), ("type", ty)],
        )
    };
    let consumed = |s: &[Sample], invite_type: &str| {
        sample(
            s,
            "ozmint_invites_consumed_total",
            &[("invite_type", invite_type)],
        )
    };
    let bad_tokens = |s: &[Sample]| sample(s, "ozmint_auth_failures_total", &[("reason", "token")]);
    let post = |path: &str, auth: (&str, &str), body: serde_json::Value| {
        c.post(server.url(path))
            .basic_auth(auth.0, Some(auth.1))
            .json(&body)
            .send()
    };
    let (_, before) = scrape(&c, &metrics_url).await;

    let resp = post("/user/tokens/named", GUEST, json!({ "name": "metrics" }))
        .await
        .expect("named token");
    assert_eq!(resp.status(), 201);
    let until = ozmint::model::now() + 600;
    let time = json!([{ "type": "time", "validUntil": until }]);
    let resp = post("/user/tokens/temporary", GUEST, json!({ "caveats": time }))
        .await
        .expect("temporary token");
    assert_eq!(resp.status(), 201);
    let resp = post(
        "/user/tokens/named",
        ADMIN,
        json!({ "name": "to the group",
            "type": { "inviteToken": { "inviteType": "userJoinGroup", "groupId": DEMO_GROUP } } }),
    )
    .await
    .expect("invite");
    assert_eq!(resp.status(), 201);
    let invite: serde_json::Value = resp.json().await.expect("JSON");
    let resp = post(
        "/users",
        ADMIN,
        json!({ "username": "mia", "password": "mia-pw" }),
    )
    .await
    .expect("new user");
    assert_eq!(resp.status(), 201);
    let resp = post(
        "/user/groups/join",
        ("mia", "mia-pw"),
        json!({ "token": invite["token"] }),
    )
    .await
    .expect("join");
    assert_eq!(resp.status(), 201);
    // The deprecated invite endpoint mints a named invite too.
    let resp = post(
        &format!("/spaces/{DEMO_SPACE}/users/token"),
        ADMIN,
        json!({}),
    )
    .await
    .expect("legacy invite");
    assert_eq!(resp.status(), 200);
    // A public endpoint presented a token that does not authenticate.
    let resp = c
        .post(server.url("/tokens/examine"))
        .header("x-auth-token", "not a token")
        .json(&json!({ "token": invite["token"] }))
        .send()
        .await
        .expect("examine");
    assert_eq!(resp.status(), 401);

    let (body, after) = scrape(&c, &metrics_url).await;
    let delta = |f: &dyn Fn(&[Sample]) -> f64| f(&after) - f(&before);
    assert_eq!(
        delta(&|s| v2_minted(s, "named", "accessToken")),
        1.0,
        "{body}"
    );
    assert_eq!(
        delta(&|s| v2_minted(s, "temporary", "accessToken")),
        1.0,
        "{body}"
    );
    assert_eq!(
        delta(&|s| v2_minted(s, "named", "inviteToken")),
        2.0,
        "{body}"
    );
    assert_eq!(delta(&|s| consumed(s, "userJoinGroup")), 1.0, "{body}");
    assert_eq!(delta(&bad_tokens), 1.0, "{body}");
    drop(c);
    assert_eq!(server.terminate(EXIT_DEADLINE).await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_answer_200_while_running() {
    let tmp = tempdir();
    let mut server = Server::demo(tmp.path(), &[]);
    let c = client();
    let resp = c
        .get(format!("{}/healthz", server.base()))
        .send()
        .await
        .expect("healthz");
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.expect("JSON");
    assert_eq!(v, serde_json::json!({ "status": "ok" }));
    let resp = c
        .get(format!("{}/readyz", server.base()))
        .send()
        .await
        .expect("readyz");
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.expect("JSON");
    assert_eq!(v["status"], "ready", "{v}");
    drop(c);
    assert_eq!(server.terminate(EXIT_DEADLINE).await.code(), Some(0));
}

// ---------------------------------------------------------------------------
// Shutdown.
// ---------------------------------------------------------------------------

/// SIGTERM sent the moment the listening line appears is a clean stop
/// (exit 0), every time: the handlers are in place before the line is
/// printed (a CI run once saw the default action, death by signal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_right_after_the_listening_line_exits_0() {
    let tmp = tempdir();
    for start in 0..50 {
        let mut server = Server::start(
            tmp.path(),
            &["--listen", "127.0.0.1:0", "--data", "d"],
            &[("OZMINT_ADMIN_PASSWORD", "ops-admin-pw")],
        );
        let status = server.terminate(EXIT_DEADLINE).await;
        assert_eq!(
            status.code(),
            Some(0),
            "start {start}: {status}; stderr {}",
            server.stderr()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_mints_in_flight_exits_0_and_every_answered_token_verifies() {
    let tmp = tempdir();
    let data = tmp.path().join("d");
    let mut server = Server::spawn(
        tmp.path(),
        &[
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--data",
            path_str(&data),
            "--durability",
            "durable",
        ],
        &[],
    );
    server.wait_listening();
    let url = server.url(&format!("/spaces/{DEMO_SPACE}/providers/token"));

    // 50 concurrent mints, each on its own HTTP/1.1 connection. The
    // credential cache is cold, so most of them queue for argon2.
    const N: usize = 50;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..N {
        let url = url.clone();
        let tx = tx.clone();
        tasks.spawn(async move {
            let c = client_builder()
                .http1_only()
                .pool_max_idle_per_host(0)
                .build()
                .expect("client");
            let result = match c.post(&url).basic_auth(ADMIN.0, Some(ADMIN.1)).send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    match resp.text().await {
                        Ok(body) => Ok((status, body)),
                        Err(e) => Err(format!("body: {e}")),
                    }
                }
                Err(e) => Err(format!("{e:?}")),
            };
            let _ = tx.send(());
            (result, Instant::now())
        });
    }
    drop(tx);
    // SIGTERM as soon as the first request finished: the others are in flight.
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("a first request finishes within 60 s");
    let signalled = Instant::now();
    server.signal("TERM");

    let mut tokens = Vec::new();
    let mut failed = Vec::new();
    let mut answered_after_signal = 0;
    let all = tokio::time::timeout(Duration::from_secs(90), async {
        let mut out = Vec::new();
        while let Some(r) = tasks.join_next().await {
            out.push(r.expect("request task"));
        }
        out
    })
    .await
    .expect("every request ends within 90 s");
    for (result, at) in all {
        match result {
            Ok((status, body)) => {
                assert_eq!(status, 200, "an answered request is a success: {body}");
                let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
                tokens.push(v["token"].as_str().expect("token").to_owned());
                if at > signalled {
                    answered_after_signal += 1;
                }
            }
            Err(e) => failed.push(e),
        }
    }
    let status = server.wait_exit(EXIT_DEADLINE).await;
    eprintln!(
        "{} answered ({} after SIGTERM), {} without an answer: {:?}",
        tokens.len(),
        answered_after_signal,
        failed.len(),
        failed.iter().take(3).collect::<Vec<_>>()
    );
    assert_eq!(status.code(), Some(0), "stderr {}", server.stderr());
    assert!(!tokens.is_empty());
    assert!(
        answered_after_signal >= 1,
        "requests in flight at SIGTERM are completed, not cut"
    );
    assert_eq!(tokens.len() + failed.len(), N);

    // Every token that was handed out was durably recorded.
    let zone = open_zone(&data).await;
    for t in &tokens {
        let v = zone
            .verify_kind(t, TokenKind::SpaceSupport)
            .await
            .unwrap_or_else(|e| panic!("an answered token verifies after shutdown: {e}"));
        assert_eq!(v.record.target.to_string(), DEMO_SPACE);
    }
}

/// A TLS client config trusting only the server's generated certificate.
fn tls_client(data_dir: &Path) -> tokio_rustls::TlsConnector {
    use tokio_rustls::rustls;
    let pem = std::fs::read(data_dir.join("tls").join("cert.pem")).expect("cert.pem");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.expect("PEM certificate")).expect("add root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Reads one HTTP/1.1 response (head and Content-Length body), bounded.
async fn read_response<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> (u16, String) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                    return (head, body);
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) => panic!("connection closed mid-response: {:?}", text(&buf)),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read: {e}; got {:?}", text(&buf)),
            }
        }
    };
    let (head, body) = tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("a response within 20 s");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line: {head}"));
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_new_connections_are_refused_and_readyz_is_503_while_an_in_flight_mint_completes(
) {
    use base64::Engine as _;
    use tokio::io::AsyncWriteExt;

    let tmp = tempdir();
    let data = tmp.path().join("d");
    let probe_port = free_port();
    let probe_addr = format!("127.0.0.1:{probe_port}");
    let mut server = Server::spawn(
        tmp.path(),
        &[
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--data",
            path_str(&data),
            "--durability",
            "durable",
        ],
        &[("OZMINT_METRICS__LISTEN", &probe_addr)],
    );
    let addr = server.wait_listening();
    let probes = client_builder().build().expect("client");
    let probe = |path: &'static str| {
        let (probes, url) = (probes.clone(), format!("http://{probe_addr}{path}"));
        async move {
            let r = probes.get(url).send().await.expect("probe");
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.expect("JSON"))
        }
    };
    assert_eq!(probe("/readyz").await.0, 200, "ready before SIGTERM");

    // A provider registration (which mints its root token) whose body is
    // held back: the request is in the handler, waiting for the body.
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("127.0.0.1")
        .expect("server name")
        .to_owned();
    let mut tls = tokio::time::timeout(
        Duration::from_secs(10),
        tls_client(&data).connect(name, tcp),
    )
    .await
    .expect("TLS handshake within 10 s")
    .expect("TLS handshake");
    let body = br#"{"name":"in-flight","domain":"in-flight.example"}"#;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", ADMIN.0, ADMIN.1));
    let head = format!(
        "POST {PREFIX}/providers HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        addr.port(),
        body.len()
    );
    tls.write_all(head.as_bytes()).await.expect("write head");
    tls.write_all(&body[..10])
        .await
        .expect("write part of the body");
    tls.flush().await.expect("flush");
    // The server has read the head: the request is in flight.
    let metrics_url = format!("http://{probe_addr}/metrics");
    let in_flight = || async {
        let (_, samples) = scrape(&probes, &metrics_url).await;
        sample(&samples, "ozmint_http_requests_in_flight", &[])
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while in_flight().await != 1.0 {
        assert!(
            Instant::now() < deadline,
            "the held request is not in flight"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    server.signal("TERM");
    // The listener closes: new connections are refused while the server
    // still waits for the request in flight.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::net::TcpStream::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            // A connection attempt racing the listener's close is reset.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("unexpected connect error: {e}"),
            Ok(s) => drop(s),
        }
        assert!(
            Instant::now() < deadline,
            "new connections still accepted 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        server.is_running(),
        "the server waits for the request in flight"
    );
    // Meanwhile the probe listener says: alive, not ready.
    let (status, v) = probe("/readyz").await;
    assert_eq!(
        (status, &v["status"]),
        (503, &serde_json::json!("not ready")),
        "{v}"
    );
    assert_eq!(probe("/healthz").await.0, 200);
    assert_eq!(
        in_flight().await,
        1.0,
        "the drain waits for the held request"
    );

    // The held request completes.
    tls.write_all(&body[10..]).await.expect("write the rest");
    tls.flush().await.expect("flush");
    let (status, answer) = read_response(&mut tls).await;
    assert_eq!(status, 201, "{answer}");
    let v: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
    let token = v["providerRootToken"].as_str().expect("token").to_owned();
    drop(tls);

    let status = server.wait_exit(EXIT_DEADLINE).await;
    assert_eq!(status.code(), Some(0), "stderr {}", server.stderr());
    // Still refused after the exit, on both listeners.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    assert!(tokio::net::TcpStream::connect(&probe_addr).await.is_err());
    let zone = open_zone(&data).await;
    zone.verify_kind(&token, TokenKind::Provider)
        .await
        .expect("the provider token minted during shutdown verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_exits_0() {
    let tmp = tempdir();
    let mut server = Server::spawn(
        tmp.path(),
        &["--demo", "--listen", "127.0.0.1:0", "--data", "d"],
        &[],
    );
    let addr = server.wait_listening();
    let c = client();
    let resp = c
        .get(format!("{}/healthz", server.base()))
        .send()
        .await
        .expect("healthz");
    assert_eq!(resp.status(), 200);
    drop(c);
    server.signal("INT");
    let status = server.wait_exit(EXIT_DEADLINE).await;
    assert_eq!(status.code(), Some(0), "stderr {}", server.stderr());
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

// ---------------------------------------------------------------------------
// Help, version, exit codes.
// ---------------------------------------------------------------------------

#[test]
fn help_of_every_command_exits_0_with_a_description() {
    let tmp = tempdir();
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["import"],
        &["export"],
        &["admin"],
        &["admin", "users"],
        &["admin", "groups"],
        &["admin", "spaces"],
        &["admin", "tokens"],
        &["admin", "keys"],
        &["backup"],
        &["restore"],
        &["check"],
        &["keys"],
    ];
    for args in commands {
        let mut cmd = ozmint(tmp.path());
        cmd.args(*args).arg("--help");
        let out = run(cmd);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?} --help: {}",
            text(&out.stderr)
        );
        let description = stdout.lines().next().unwrap_or("").trim();
        assert!(
            !description.is_empty() && !description.starts_with("Usage:"),
            "{args:?} --help starts with a description: {stdout}"
        );
        assert!(stdout.contains("Usage:"), "{args:?} --help: {stdout}");
    }
    assert!(
        !tmp.path().join("ozmint-data").exists(),
        "help creates nothing"
    );
}

#[test]
fn version_prints_the_cargo_version() {
    let tmp = tempdir();
    let mut cmd = ozmint(tmp.path());
    cmd.arg("--version");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout).trim(),
        format!("ozmint {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_error_exits_2() {
    let tmp = tempdir();
    let mut cmd = ozmint(tmp.path());
    cmd.args(["serve", "--nope"]);
    let out = run(cmd);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr {stderr}");
    assert!(stderr.contains("--nope"), "{stderr}");
    assert!(!tmp.path().join("ozmint-data").exists());
}

#[test]
fn listening_on_an_address_in_use_exits_1() {
    let tmp = tempdir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let mut cmd = ozmint(tmp.path());
    cmd.args(["serve", "--listen", &addr, "--data", "d"])
        .env("OZMINT_ADMIN_PASSWORD", "in-use-test");
    let out = run(cmd);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr {stderr}");
    assert!(stderr.contains(&addr), "the address is named: {stderr}");
    drop(taken);
}
