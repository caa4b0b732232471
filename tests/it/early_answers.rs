//! Errors answered before the body is needed (no credentials: 401; an
//! unknown path: 404; too large: 413) reach HTTP/2 clients that are still
//! sending the body: the server reads (or drains) it first, so the client
//! gets the JSON error instead of a reset stream. The failure this guards
//! against is a race, so every case runs many times, with curl's default
//! HTTP/2 and with a second HTTP/2 client (hyper's, through reqwest).

use std::process::Command;

use testkit::server::{start_demo, DEMO_SPACE};

const ROUNDS: usize = 40;

/// The bodies sent: small, one flow-control window's worth, and just
/// under the 64 KiB limit.
fn bodies() -> Vec<String> {
    [200usize, 16 * 1024, 60 * 1024]
        .into_iter()
        .map(|n| format!("{{\"token\":\"{}\",\"size\":1}}", "a".repeat(n)))
        .collect()
}

/// One curl request with its default protocol (HTTP/2 over TLS): (status, body).
fn curl(url: &str, body_file: &std::path::Path) -> Result<(u16, String), String> {
    let out = Command::new("curl")
        .args([
            "-sk",
            "-o",
            "-",
            "-w",
            "\n%{http_code} %{http_version}",
            "-X",
            "POST",
        ])
        .args(["-H", "content-type: application/json", "--data-binary"])
        .arg(format!("@{}", body_file.display()))
        .arg(url)
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "curl exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').ok_or("no status line")?;
    let (code, version) = tail.split_once(' ').ok_or("no version")?;
    if version != "2" {
        return Err(format!("curl spoke HTTP/{version}, not HTTP/2"));
    }
    Ok((code.parse().map_err(|_| "status")?, body.to_owned()))
}

fn check(case: &str, status: u16, body: &str, want: u16, code: &str) {
    assert_eq!(status, want, "{case}: {body}");
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{case}: not JSON ({e}): {body}"));
    assert_eq!(v["error"], code, "{case}: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_errors_reach_http2_clients_still_sending() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("SKIPPED: curl is not installed; the reqwest HTTP/2 half still runs");
    }
    let s = start_demo().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let h2 = testkit::server::client_builder()
        .http2_prior_knowledge()
        .build()
        .expect("HTTP/2 client");
    let too_large = format!("{{\"x\":\"{}\"}}", "b".repeat(200 * 1024));
    let mut cases: Vec<(String, String, String, u16, &str)> = Vec::new();
    for (i, body) in bodies().into_iter().enumerate() {
        let space = s.url(&format!("/spaces/{DEMO_SPACE}/providers/token"));
        cases.push((
            format!("no credentials, body {i}"),
            space,
            body.clone(),
            401,
            "unauthorized",
        ));
        cases.push((
            format!("unknown path, body {i}"),
            s.url("/no/such/path"),
            body.clone(),
            404,
            "not_found",
        ));
        cases.push((
            format!("provider support without credentials, body {i}"),
            s.url("/provider/spaces/support"),
            body,
            401,
            "unauthorized",
        ));
    }
    cases.push((
        "too large".into(),
        s.url("/provider/spaces/support"),
        too_large,
        413,
        "payload_too_large",
    ));
    let curl_ok = Command::new("curl").arg("--version").output().is_ok();
    for (case, url, body, want, code) in &cases {
        let file = dir.path().join("body.json");
        std::fs::write(&file, body).expect("body file");
        for round in 0..ROUNDS {
            let r = h2
                .post(url)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("reqwest, {case}, round {round}: {e}"));
            assert_eq!(r.version(), reqwest::Version::HTTP_2);
            let status = r.status().as_u16();
            let text = r.text().await.expect("body");
            check(
                &format!("reqwest, {case}, round {round}"),
                status,
                &text,
                *want,
                code,
            );
            if curl_ok {
                let (url, file) = (url.clone(), file.clone());
                let got = tokio::task::spawn_blocking(move || curl(&url, &file))
                    .await
                    .expect("curl task");
                let (status, text) =
                    got.unwrap_or_else(|e| panic!("curl, {case}, round {round}: {e}"));
                check(
                    &format!("curl, {case}, round {round}"),
                    status,
                    &text,
                    *want,
                    code,
                );
            }
        }
    }
}
