//! Races between a privilege revocation and concurrent mints: no token is
//! minted by a request that started after the revocation was acknowledged.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ozmint::model::{SpacePrivilege, SpacePrivileges, ZonePrivileges};
use ozmint::store::SPACE_USERS_REL;
use testkit::server::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_mint_starts_after_an_acknowledged_revocation() {
    let s = start_demo().await;
    let user = s
        .add_user("racer", "racer-pw", ZonePrivileges::empty())
        .await;
    let space = id(DEMO_SPACE);
    let c = client();
    for trial in 0..5 {
        let privs: SpacePrivileges = [SpacePrivilege::AddProvider].into_iter().collect();
        s.store()
            .put_relation(&SPACE_USERS_REL, &space, &user, &privs)
            .await
            .unwrap();
        // (request start, status) of every mint.
        let log: Arc<Mutex<Vec<(Instant, u16)>>> = Arc::default();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (c, log, url, done) = (
                c.clone(),
                log.clone(),
                s.space_url(DEMO_SPACE),
                done.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while !done.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline
                {
                    let started = Instant::now();
                    if let Ok(r) = c
                        .post(&url)
                        .basic_auth("racer", Some("racer-pw"))
                        .send()
                        .await
                    {
                        log.lock().unwrap().push((started, r.status().as_u16()));
                    }
                }
            }));
        }
        // Revoke once mints succeed (however slow this machine is), a little
        // later in each trial.
        while !log.lock().unwrap().iter().any(|&(_, status)| status == 200) {
            assert!(
                Instant::now() < deadline,
                "trial {trial}: no mint succeeded"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(20 + trial * 40)).await;
        let resp = c
            .patch(s.url(&format!("/spaces/{DEMO_SPACE}/users/{user}/privileges")))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .json(
                &serde_json::json!({ "operation": "revoke", "privileges": ["space_add_provider"] }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
        let acked = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        let log = log.lock().unwrap();
        let before = log.iter().filter(|(t, s)| *t < acked && *s == 200).count();
        let after: Vec<u16> = log
            .iter()
            .filter(|(t, _)| *t > acked)
            .map(|(_, s)| *s)
            .collect();
        assert!(
            before > 0,
            "trial {trial}: no mint succeeded before the revocation; the race was not exercised"
        );
        assert!(
            !after.is_empty(),
            "trial {trial}: no request started after the revocation"
        );
        assert!(
            after.iter().all(|s| *s == 403),
            "trial {trial}: a mint that started after the acknowledged revocation was not refused: {after:?}"
        );
    }
}
