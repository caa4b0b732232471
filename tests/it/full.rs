//! A data directory on a small filesystem that fills under mint load, as a
//! user would see it: the server keeps running, writes answer 507 JSON,
//! `/readyz` says not ready, reads keep working; once space is freed writes
//! work again without a restart, and nothing acknowledged is lost.
//!
//! The test mounts a 48 MiB tmpfs itself; where mounting is not permitted it
//! prints a loud SKIPPED line and passes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::server::{client, ADMIN, DEMO_SPACE};
use testkit::spawned::Server;

/// A tmpfs mounted for the test, unmounted on drop.
struct Mount(PathBuf);

impl Mount {
    fn new(dir: &Path, size: &str) -> Option<Mount> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| Mount(dir.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_answers_507_keeps_reads_and_recovers_without_restart() {
    let work = tempfile::tempdir().expect("tempdir");
    let mnt = work.path().join("small");
    std::fs::create_dir(&mnt).expect("mount point");
    let Some(_mount) = Mount::new(&mnt, "48m") else {
        eprintln!(
            "SKIPPED: storage-full test: mounting a tmpfs is not permitted here (needs root or CAP_SYS_ADMIN)"
        );
        return;
    };
    let data = mnt.join("data");
    let data_arg = data.to_string_lossy().into_owned();
    let mut server = Server::start(
        work.path(),
        &["--demo", "--listen", "127.0.0.1:0", "--data", &data_arg],
        &[],
    );
    let http = client();
    let mint_url = server.url(&format!("/spaces/{DEMO_SPACE}/providers/token"));
    let mint = || {
        http.post(&mint_url)
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .send()
    };
    // An access token for reads while full.
    let access: serde_json::Value = http
        .post(server.url("/user/client_tokens"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("access token")
        .json()
        .await
        .expect("json");
    let access = access["token"].as_str().expect("token").to_owned();
    // Leave about 4 MiB, then mint until the disk is full.
    let filler = mnt.join("filler");
    let leave = 4 << 20;
    let fill = free_bytes(&mnt).saturating_sub(leave);
    std::fs::write(&filler, vec![0u8; fill as usize]).expect("filler");

    let mut acknowledged: Vec<String> = Vec::new();
    let mut full_answer = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    'fill: while Instant::now() < deadline {
        // 16 mints at once, as a loaded server sees them.
        let batch: Vec<_> = (0..16).map(|_| tokio::spawn(mint())).collect();
        for task in batch {
            let r = task
                .await
                .expect("task")
                .expect("the server answers while filling up");
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.expect("JSON answer");
            match status {
                200 => acknowledged.push(body["token"].as_str().expect("token").to_owned()),
                507 => {
                    full_answer = Some(body);
                    break 'fill;
                }
                other => panic!("unexpected {other} while filling: {body}"),
            }
        }
    }
    let full = full_answer.expect("the disk never filled within 120 s");
    assert_eq!(full["error"], "insufficient_storage", "{full}");
    assert!(
        full["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("out of space")),
        "{full}"
    );
    assert!(acknowledged.len() > 10, "some mints succeeded first");

    // While full: writes 507 at once, not ready, reads work, still running.
    let started = Instant::now();
    let r = mint().await.expect("answer");
    assert_eq!(r.status(), 507);
    assert!(started.elapsed() < Duration::from_secs(5), "a quick answer");
    let ready = http
        .get(format!("{}/readyz", server.base()))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503);
    let me = http
        .get(server.url("/user"))
        .header("x-auth-token", &access)
        .send()
        .await
        .expect("read");
    assert_eq!(
        me.status(),
        200,
        "reads work while full; server log:\n{}",
        server.stderr()
    );
    assert!(server.is_running(), "the server keeps running");

    // Free the space: writes work again by themselves.
    std::fs::remove_file(&filler).expect("free space");
    let deadline = Instant::now() + Duration::from_secs(30);
    let recovered = loop {
        let r = mint().await.expect("answer");
        if r.status() == 200 {
            let body: serde_json::Value = r.json().await.expect("json");
            break body["token"].as_str().expect("token").to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no recovery within 30 s: {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    acknowledged.push(recovered);
    let ready = http
        .get(format!("{}/readyz", server.base()))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200, "ready again");
    assert!(server.is_running());

    // Nothing acknowledged was lost: after a crash, every token verifies.
    server.kill();
    drop(server);
    let server = Server::start(
        work.path(),
        &["--listen", "127.0.0.1:0", "--data", &data_arg],
        &[],
    );
    for token in &acknowledged {
        let r = http
            .post(server.url("/tokens/examine"))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .json(&serde_json::json!({ "token": token }))
            .send()
            .await
            .expect("examine");
        assert_eq!(r.status(), 200, "an acknowledged token survived");
        let v: serde_json::Value = r.json().await.expect("json");
        assert_eq!(v["valid"], true, "{v}");
    }
    let mut server = server;
    server.kill();
    drop(server);
    let mut check = testkit::spawned::ozmint(work.path());
    check.args(["check", "--data", &data_arg]);
    let out = testkit::spawned::run(check);
    assert!(
        out.status.success(),
        "the store is consistent: {}{}",
        testkit::spawned::text(&out.stdout),
        testkit::spawned::text(&out.stderr)
    );
}
