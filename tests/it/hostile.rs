//! Hostile input and explicit limits, through the real HTTPS server.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use ozmint::config::Config;
use testkit::server::*;

/// A demo server with small limits, so each limit is cheap to hit.
async fn start_limited(f: impl FnOnce(&mut Config)) -> (tempfile::TempDir, ozmint::serve::Running) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(dir.path(), true);
    config.limits.max_body_bytes = 1024;
    config.limits.max_json_depth = 4;
    config.limits.max_headers = 16;
    config.limits.max_header_bytes = 8192;
    f(&mut config);
    let store = ozmint::serve::open_store(&config).await.unwrap();
    ozmint::serve::bootstrap(&store, true, None).await.unwrap();
    let running = ozmint::serve::start(&config, store, std::future::pending())
        .await
        .unwrap();
    (dir, running)
}

fn url(r: &ozmint::serve::Running, path: &str) -> String {
    format!("https://127.0.0.1:{}{PREFIX}{path}", r.addr.port())
}

async fn still_serving(r: &ozmint::serve::Running) {
    let resp = client()
        .post(url(r, &format!("/spaces/{DEMO_SPACE}/providers/token")))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("the server still answers");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn oversized_and_deep_bodies_are_refused() {
    let (_d, r) = start_limited(|_| {}).await;
    let c = client();
    let big = format!("{{\"name\":\"{}\",\"domain\":\"d\"}}", "x".repeat(2000));
    let resp = c
        .post(url(&r, "/providers"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .body(big)
        .send()
        .await
        .unwrap();
    let e = assert_error(resp, 413).await;
    assert_eq!(e["error"], "payload_too_large");
    let deep = format!("{}1{}", "[".repeat(5), "]".repeat(5));
    let resp = c
        .post(url(&r, "/providers"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .body(deep)
        .send()
        .await
        .unwrap();
    let e = assert_error(resp, 400).await;
    assert!(
        e["error_description"].as_str().unwrap().contains("nested"),
        "{e}"
    );
    // Depth inside strings does not count.
    let fine = serde_json::json!({ "name": "[[[[[[[[[[", "domain": "{{{{{{{{" }).to_string();
    let resp = c
        .post(url(&r, "/providers"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .body(fine)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    still_serving(&r).await;
}

#[tokio::test]
async fn header_limits_are_enforced() {
    let (_d, r) = start_limited(|_| {}).await;
    let c = client_builder().http1_only().build().unwrap();
    let mut req = c.get(url(&r, "/user")).basic_auth(ADMIN.0, Some(ADMIN.1));
    for i in 0..40 {
        req = req.header(format!("x-filler-{i}"), "v");
    }
    assert_eq!(req.send().await.unwrap().status(), 431);
    let resp = c
        .get(url(&r, "/user"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .header("x-big", "v".repeat(20_000))
        .send()
        .await;
    // hyper answers 431 or closes the connection: either way, no 2xx.
    if let Ok(resp) = resp {
        assert!(resp.status().is_client_error(), "{}", resp.status());
    }
    still_serving(&r).await;
}

#[tokio::test]
async fn oversized_and_malformed_tokens_are_refused() {
    // Headers may be large enough to carry an oversized token to the token parser.
    let (_d, r) = start_limited(|c| c.limits.max_header_bytes = 32 * 1024).await;
    let c = client();
    let path = url(&r, &format!("/spaces/{DEMO_SPACE}/providers/token"));
    for token in [
        "A".repeat(9000),
        "not a token".into(),
        "MDAx".into(),
        "%%%%".into(),
    ] {
        let resp = c
            .post(&path)
            .header("x-auth-token", token)
            .send()
            .await
            .unwrap();
        let e = assert_error(resp, 401).await;
        assert_eq!(e["error"], "invalid_token");
    }
    // The same token in two headers, or two kinds of credentials, is ambiguous.
    let minted = expect_token(
        c.post(url(&r, "/user/client_tokens"))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .send()
            .await
            .unwrap(),
    )
    .await;
    for (a, b) in [
        ("x-auth-token", "macaroon"),
        ("x-auth-token", "authorization"),
    ] {
        let second = if b == "authorization" {
            format!("Bearer {minted}")
        } else {
            minted.clone()
        };
        let resp = c
            .post(&path)
            .header(a, &minted)
            .header(b, second)
            .send()
            .await
            .unwrap();
        assert_error(resp, 400).await;
    }
    let resp = c
        .post(&path)
        .header("authorization", basic(ADMIN.0, ADMIN.1))
        .header("x-auth-token", &minted)
        .send()
        .await
        .unwrap();
    assert_error(resp, 400).await;
    let resp = c
        .post(&path)
        .header("authorization", basic(ADMIN.0, ADMIN.1))
        .header("authorization", basic(GUEST.0, GUEST.1))
        .send()
        .await
        .unwrap();
    assert_error(resp, 400).await;
    for bad in ["Basic !!!", "Basic Zm9v", "Digest abc", "Basic"] {
        let resp = c
            .post(&path)
            .header("authorization", bad)
            .send()
            .await
            .unwrap();
        assert_error(resp, 400).await;
    }
    still_serving(&r).await;
}

#[tokio::test]
async fn hostile_paths_get_clear_errors() {
    let (_d, r) = start_limited(|_| {}).await;
    let c = client();
    for (path, status) in [
        ("/spaces/abc/providers/token", 400),
        ("/spaces/a%2Fb/providers/token", 400),
        ("/spaces/%ff%fe/providers/token", 400),
        (&format!("/spaces/{DEMO_SPACE}x/providers/token"), 400),
        ("/spaces//providers/token", 400),
        ("/nope/nope", 404),
        (&format!("/spaces/{}/providers/token", "9".repeat(43)), 400),
    ] {
        let resp = c
            .post(format!("https://127.0.0.1:{}{PREFIX}{path}", r.addr.port()))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .send()
            .await
            .unwrap();
        assert_error(resp, status).await;
    }
    still_serving(&r).await;
}

/// Dot segments are normalised away by HTTP clients, so send them raw.
#[tokio::test]
async fn raw_dot_segments_and_invalid_utf8_get_400() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_d, r) = start_limited(|c| c.tls.enabled = false).await;
    let auth = basic(ADMIN.0, ADMIN.1);
    for path in [
        "/spaces/../providers/token",
        "/spaces/./providers/token",
        "/spaces/%2e%2e/providers/token",
        "/spaces/%C0%AF/providers/token",
    ] {
        let mut s = tokio::net::TcpStream::connect(r.addr).await.unwrap();
        let req = format!(
            "POST {PREFIX}{path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
            .await
            .unwrap()
            .unwrap();
        assert!(out.starts_with("HTTP/1.1 400"), "{path}: {out}");
        assert!(
            out.contains("application/json") && out.contains("\"error\""),
            "{out}"
        );
    }
}

#[tokio::test]
async fn http2_stream_floods_and_resets_leave_the_server_serving() {
    let (_d, r) = start_limited(|c| c.limits.h2_max_streams = 8).await;
    let c = client();
    // Many concurrent streams on one connection: served in turns, never an error status.
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let c = c.clone();
        let u = url(&r, "/user/client_tokens");
        tasks.push(tokio::spawn(async move {
            c.get(u)
                .basic_auth(ADMIN.0, Some(ADMIN.1))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for t in tasks {
        if let Ok(status) = t.await.unwrap() {
            assert_eq!(status, 200);
        }
    }
    // Streams cancelled half-way (RST_STREAM from the client side).
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let c = c.clone();
        let u = url(&r, &format!("/spaces/{DEMO_SPACE}/providers/token"));
        tasks.push(tokio::spawn(async move {
            let _ = c.post(u).basic_auth(ADMIN.0, Some(ADMIN.1)).send().await;
        }));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    for t in &tasks {
        t.abort();
    }
    still_serving(&r).await;
}

#[tokio::test]
async fn data_directory_and_key_material_are_private() {
    let (d, r) = start_limited(|_| {}).await;
    still_serving(&r).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(d.path()) & 0o077, 0, "data dir {:o}", mode(d.path()));
    assert_eq!(mode(&d.path().join("tls")), 0o700);
    assert_eq!(mode(&d.path().join("tls/key.pem")), 0o600);
}

#[tokio::test]
async fn brute_force_is_throttled_without_locking_out_others() {
    let (_d, r) = start_limited(|c| c.limits.login_failures = 3).await;
    let c = client();
    let path = url(&r, "/user");
    for _ in 0..3 {
        let resp = c
            .get(&path)
            .basic_auth("carol", Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_error(resp, 401).await;
    }
    let resp = c
        .get(&path)
        .basic_auth("carol", Some("wrong"))
        .send()
        .await
        .unwrap();
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    let e = assert_error(resp, 429).await;
    assert_eq!(e["error"], "too_many_requests");
    // Even the right password waits while the name is throttled (it was never verified).
    let resp = c
        .get(&path)
        .basic_auth("carol", Some("carol"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    // Other users from the same address are unaffected.
    let resp = c
        .get(&path)
        .basic_auth(GUEST.0, Some(GUEST.1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    still_serving(&r).await;
}
