//! The OpenAPI description (`api/openapi.json`, written by `api/openapi.py`).
//!
//! - It names exactly the routes the router serves: every template of
//!   [`routes::ROUTES`] with each of its methods, and the paths outside the
//!   prefix ([`routes::OUTSIDE`]); a difference fails with the paths and
//!   methods missing from either side.
//! - The server serves it, byte for byte, without credentials.
//! - openapi-spec-validator accepts it, and schemathesis, run against a live
//!   `ozmint serve --demo` (TLS with its self-signed certificate, as the
//!   demo administrator; examples, coverage, fuzzing and stateful phases,
//!   bounded in examples, with a fixed seed), finds no server error, no
//!   undocumented status, header or content type, no response off its
//!   schema, no method other than the documented ones answered, and no
//!   resource still there after its deletion or missing after its creation;
//!   afterwards the administrator still logs in. Invalid credentials are not
//!   sent (schemathesis' `ignored_auth`): they would trip the login throttle.
//!
//! The two tools live in a virtual environment at `target/openapi-venv`, set
//! up like pymacaroons' in [`super::interop`] (pinned versions, installed
//! once, offline afterwards), with the same loud skip outside CI.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use ozmint::http::routes::{self, PREFIX};
use ozmint::model::{GroupPrivilege, Privilege, SpacePrivilege, ZonePrivilege};
use serde_json::Value;
use testkit::server::{bounded, client, start_demo, ADMIN};
use testkit::spawned::Server;

use super::interop::{manifest_dir, run, run_ok, venv_python, Python, Venv, RUN_TIMEOUT};

const OPENAPI_VENV: Venv = Venv {
    dir: "target/openapi-venv",
    packages: &["schemathesis==4.32.5", "openapi-spec-validator==0.9.0"],
    probe: "import importlib.metadata as m, schemathesis, openapi_spec_validator; \
            print(m.version('schemathesis'))",
    what: "OpenAPI check (openapi-spec-validator, schemathesis)",
};

/// The whole schemathesis run, server start included, is bounded by this.
const SCHEMATHESIS_TIMEOUT: Duration = Duration::from_secs(480);

fn python() -> Option<Python> {
    static VENV: OnceLock<Result<Python, String>> = OnceLock::new();
    venv_python(&OPENAPI_VENV, &VENV)
}

/// A program of the venv (beside its python).
fn venv_bin(py: &Python, name: &str) -> std::path::PathBuf {
    py.exe
        .parent()
        .expect("the venv's bin directory")
        .join(name)
}

fn document() -> Value {
    serde_json::from_str(ozmint::http::OPENAPI).expect("api/openapi.json is JSON")
}

/// `(path, METHOD)` of every operation the document describes.
fn documented() -> BTreeSet<(String, String)> {
    let doc = document();
    let paths = doc["paths"].as_object().expect("a paths object");
    let mut out = BTreeSet::new();
    for (path, item) in paths {
        for method in item.as_object().expect("a path item").keys() {
            if [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ]
            .contains(&method.as_str())
            {
                out.insert((path.clone(), method.to_uppercase()));
            }
        }
    }
    out
}

/// `(path, METHOD)` of every route the router serves, from its own table.
fn served() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for r in routes::ROUTES {
        for m in r.methods() {
            out.insert((format!("{PREFIX}{}", r.template), m.as_str().to_owned()));
        }
    }
    for path in routes::OUTSIDE {
        out.insert((path.to_owned(), "GET".to_owned()));
    }
    out
}

#[test]
fn document_names_every_route_and_nothing_else() {
    let (doc, served) = (documented(), served());
    let list = |s: Vec<&(String, String)>| {
        s.iter()
            .map(|(p, m)| format!("  {m} {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let missing: Vec<_> = served.difference(&doc).collect();
    let extra: Vec<_> = doc.difference(&served).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "api/openapi.json disagrees with src/http/routes.rs (edit api/openapi.py, then run \
         python3 api/openapi.py).\nServed but not in the document:\n{}\nIn the document but \
         not served:\n{}",
        list(missing),
        list(extra)
    );
    assert!(served.len() > 80, "{} operations", served.len());
}

/// Every path parameter of the document is a parameter of the route's
/// template and the reverse (the templates name them the same way).
/// The privilege names a schema lists.
fn enum_of(schema: &str) -> Vec<String> {
    let doc = document();
    doc["components"]["schemas"][schema]["properties"]["privileges"]["items"]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{schema} lists privilege names"))
        .iter()
        .map(|n| n.as_str().expect("a name").to_owned())
        .collect()
}

fn names<P: Privilege>(onezone: bool) -> Vec<String> {
    let mut out: Vec<String> = P::ALL.iter().map(|p| p.name().to_owned()).collect();
    if onezone {
        out.extend(P::ONEZONE.iter().map(|(n, _)| (*n).to_owned()));
    }
    out
}

#[test]
fn privilege_names_are_the_servers() {
    // Answers list ozmint's names; requests may use Onezone's as well.
    assert_eq!(enum_of("GroupPrivileges"), names::<GroupPrivilege>(false));
    assert_eq!(enum_of("SpacePrivileges"), names::<SpacePrivilege>(false));
    assert_eq!(enum_of("ZonePrivileges"), names::<ZonePrivilege>(false));
    assert_eq!(
        enum_of("GroupPrivilegesUpdate"),
        names::<GroupPrivilege>(true)
    );
    assert_eq!(
        enum_of("SpacePrivilegesUpdate"),
        names::<SpacePrivilege>(true)
    );
    assert_eq!(
        enum_of("ZonePrivilegesUpdate"),
        names::<ZonePrivilege>(true)
    );
}

#[test]
fn path_parameters_match_the_templates() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let in_path: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, op) in item.as_object().expect("path item") {
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().expect("a name"))
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(declared, in_path, "{method} {path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_without_credentials() {
    bounded(async {
        let s = start_demo().await;
        let r = s
            .client
            .get(s.url("/openapi.json"))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200);
        assert_eq!(
            testkit::server::content_type(&r).as_deref(),
            Some("application/json")
        );
        let body = r.text().await.expect("body");
        assert_eq!(body, ozmint::http::OPENAPI);
        let on_disk = std::fs::read_to_string(manifest_dir().join("api/openapi.json"))
            .expect("api/openapi.json");
        assert_eq!(body, on_disk);
        // Any other method is a 405, as on every route.
        let r = s
            .client
            .post(s.url("/openapi.json"))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 405);
    })
    .await;
}

#[test]
fn openapi_spec_validator_accepts_the_document() {
    let Some(py) = python() else { return };
    let out = run_ok(
        Command::new(venv_bin(&py, "openapi-spec-validator"))
            .arg(manifest_dir().join("api/openapi.json")),
        RUN_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.stdout.contains(": OK"), "{}", out.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_defect_on_a_live_server() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::demo(tmp.path(), &[]);
    let cert = tmp.path().join("d/tls/cert.pem");
    assert!(
        cert.exists(),
        "the demo's certificate at {}",
        cert.display()
    );
    let report = tmp.path().join("report");
    // One worker: schemathesis' threads trip a CPython 3.11 bug ("AST
    // constructor recursion depth mismatch") under load, a tool error that
    // says nothing about the server.
    let mut cmd = Command::new(venv_bin(&py, "schemathesis"));
    cmd.args(["run", &server.url("/openapi.json")])
        .args(["--url", &server.base()])
        .args(["--auth", &format!("{}:{}", ADMIN.0, ADMIN.1)])
        .arg("--tls-verify")
        .arg(&cert)
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,response_schema_conformance,\
             content_type_conformance,response_headers_conformance,unsupported_method,\
             allow_header_conformance,use_after_free,ensure_resource_availability",
        ])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", "40", "--seed", "1", "--workers", "1"])
        .args(["--request-timeout", "10", "--no-shrink"])
        .args(["--report", "junit", "--report-dir"])
        .arg(&report)
        .env("NO_COLOR", "1")
        .current_dir(tmp.path());
    let out = tokio::task::spawn_blocking(move || run(&mut cmd, SCHEMATHESIS_TIMEOUT))
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = server.stderr();
    assert!(
        out.status.success(),
        "schemathesis {} found defects:\n{}\n--- server log (tail)\n{}",
        py.version,
        out.describe(),
        tail(&stderr, 40)
    );
    assert!(!stderr.contains("panicked"), "{}", tail(&stderr, 40));
    // The zone is not locked out: the administrator still logs in.
    let r = client()
        .get(server.url("/user"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "admin after the run");
    assert_eq!(
        server.terminate(Duration::from_secs(30)).await.code(),
        Some(0)
    );
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------
// Defects schemathesis found, one regression test each
// ---------------------------------------------------------------------------

/// `/healthz`, `/readyz` and `/metrics` answered every method (TRACE, POST,
/// DELETE, ...) with 200; they answer GET, and anything else is the JSON 405
/// with `Allow: GET` of every other route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_paths_answer_get_only() {
    bounded(async {
        let s = start_demo().await;
        for path in routes::OUTSIDE {
            let url = format!("{}{path}", s.base());
            let r = s.client.get(&url).send().await.expect("GET");
            assert_eq!(r.status(), 200, "GET {path}");
            for method in ["POST", "PUT", "PATCH", "DELETE", "TRACE", "OPTIONS"] {
                let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
                let r = s
                    .client
                    .request(m, &url)
                    .body("{}")
                    .send()
                    .await
                    .expect("request");
                assert_eq!(r.status(), 405, "{method} {path}");
                assert_eq!(r.headers()["allow"], "GET", "{method} {path}");
                let v: Value = r.json().await.expect("a JSON error");
                assert_eq!(v["error"], "method_not_allowed", "{method} {path}");
            }
        }
    })
    .await;
}
