//! The etcd engine on real 3-member clusters (`testkit::etcd`): the
//! conformance suite on one shared cluster (a fresh prefix per check), and
//! failover on clusters of their own: a member down, quorum lost and back,
//! the leader killed under load; etcd authentication; TLS with client
//! certificates (one member of its own). The resolution of unknown outcomes is tested
//! deterministically by the engine's unit tests (`engine::etcd::tests`).
//!
//! Needs the `etcd` feature and the `etcd` binary; without either, the tests
//! say so loudly and pass.

#[cfg(not(feature = "etcd"))]
#[test]
fn etcd_tests_skipped() {
    use std::io::Write;
    let skip = "SKIPPED: etcd tests need the etcd binary (apt-get install etcd-server) and the etcd feature";
    let bar = "!".repeat(skip.len());
    // Straight to stderr, past the test harness's capture.
    let _ = writeln!(std::io::stderr(), "\n{bar}\n{skip}\n{bar}\n");
}

#[cfg(feature = "etcd")]
mod on_etcd {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, OnceLock};
    use std::time::{Duration, Instant};

    use async_trait::async_trait;
    use ozmint::engine::etcd::{EtcdEngine, EtcdOptions};
    use ozmint::engine::{Commit, Durability, Engine, EngineError, Guard, Write};
    use testkit::etcd::Cluster;

    /// The cluster of the conformance suite: processes and ports, shared by
    /// tests that each run their own runtime (and connect their own client).
    static SHARED: OnceLock<Option<Cluster>> = OnceLock::new();

    fn unique(what: &str) -> String {
        format!("{what}-{:016x}", rand::random::<u64>())
    }

    /// A fresh prefix on the shared cluster.
    struct Etcd {
        url: String,
    }

    #[async_trait]
    impl testkit::conformance::Place for Etcd {
        async fn open(&self) -> Arc<dyn Engine> {
            let opts = EtcdOptions::from_url(&self.url).expect("url");
            Arc::new(EtcdEngine::connect(opts).await.expect("connect"))
        }
        fn persistent(&self) -> bool {
            true
        }
    }

    fn etcd() -> Option<Box<dyn testkit::conformance::Place>> {
        let cluster = SHARED.get_or_init(Cluster::start).as_ref()?;
        Some(Box::new(Etcd {
            url: cluster.url(&unique("conformance")),
        }))
    }

    mod conformance {
        use super::*;
        testkit::conformance_tests!(etcd());
    }

    async fn connect(cluster: &Cluster, request_timeout: Duration) -> EtcdEngine {
        let mut opts = EtcdOptions::from_url(&cluster.url(&unique("t"))).expect("url");
        opts.request_timeout = request_timeout;
        EtcdEngine::connect(opts).await.expect("connect")
    }

    fn put(key: &str) -> Commit {
        Commit::new(
            vec![Guard::absent(key.as_bytes().to_vec())],
            vec![Write::Put(key.as_bytes().to_vec(), b"v".to_vec())],
            Durability::Immediate,
        )
    }

    /// Waits (at most `wait`) until `f` holds.
    fn wait_for(wait: Duration, what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + wait;
        while !f() {
            assert!(Instant::now() < deadline, "{what} within {wait:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A commit, a point read and a scan, each of which must succeed.
    async fn round(e: &EtcdEngine, i: usize) {
        let key = format!("k/{i:04}");
        e.commit(put(&key)).await.expect("commit");
        let got = e.get_many(&[key.as_bytes()]).await.expect("get_many");
        assert_eq!(got, vec![Some(b"v".to_vec())]);
        let page = e.scan(b"k/", None, 1000).await.expect("scan");
        assert_eq!(page.entries.len(), i + 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_one_member_down_reads_and_commits_go_on() {
        let Some(cluster) = Cluster::start() else {
            return;
        };
        let e = connect(&cluster, Duration::from_secs(5)).await;
        for i in 0..20 {
            round(&e, i).await;
        }
        // A follower dies: the client goes on with the other two at once.
        let leader = cluster.leader().expect("a leader");
        cluster.kill((leader + 1) % 3);
        for i in 20..120 {
            round(&e, i).await;
        }
        // It comes back; then the leader dies: once a new one is elected,
        // everything works through the two that are left.
        cluster.restart((leader + 1) % 3);
        assert!(
            cluster.wait_healthy(Duration::from_secs(20)),
            "healthy again"
        );
        cluster.kill(leader);
        wait_for(Duration::from_secs(10), "a new leader", || {
            cluster.leader().is_some()
        });
        for i in 120..220 {
            round(&e, i).await;
        }
        assert!(e.health().await.is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_quorum_calls_fail_in_time_then_work_again_by_themselves() {
        let Some(cluster) = Cluster::start() else {
            return;
        };
        let timeout = Duration::from_secs(2);
        let e = connect(&cluster, timeout).await;
        e.commit(put("before")).await.expect("commit");
        cluster.stop(0);
        cluster.stop(1);
        wait_for(
            Duration::from_secs(10),
            "the last member to lose its leader",
            || cluster.leader().is_none(),
        );
        let bound = timeout + Duration::from_secs(2);
        let fails_in_time = |what: &str, r: Result<(), EngineError>, t: Instant| {
            let took = t.elapsed();
            assert!(
                matches!(r, Err(EngineError::Unavailable(_) | EngineError::Timeout)),
                "{what} without quorum: {r:?}"
            );
            assert!(took <= bound, "{what} took {took:?}, more than {bound:?}");
        };
        let hang = bound + Duration::from_secs(5);
        let t = Instant::now();
        let r = tokio::time::timeout(hang, e.get_many(&[b"before"])).await;
        fails_in_time("get_many", r.expect("get_many hung").map(drop), t);
        let t = Instant::now();
        let r = tokio::time::timeout(hang, e.scan(b"", None, 10)).await;
        fails_in_time("scan", r.expect("scan hung").map(drop), t);
        let t = Instant::now();
        let r = tokio::time::timeout(hang, e.commit(put("lost"))).await;
        fails_in_time("commit", r.expect("commit hung"), t);
        let t = Instant::now();
        let r = tokio::time::timeout(hang, e.snapshot()).await;
        fails_in_time("snapshot", r.expect("snapshot hung").map(drop), t);
        let t = Instant::now();
        let r = tokio::time::timeout(hang, e.health()).await;
        fails_in_time("health", r.expect("health hung"), t);
        // Quorum returns: the same engine works again, with no help.
        cluster.restart(0);
        cluster.restart(1);
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Err(err) = e.commit(put("after")).await {
            assert!(Instant::now() < deadline, "still failing: {err}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Reads and health are linearizable reads through any member: one
        // that was just restarted may still time out or answer "leader
        // changed" for a moment.
        let got = loop {
            match e.get_many(&[b"before", b"lost", b"after"]).await {
                Ok(got) => break got,
                Err(err) => assert!(Instant::now() < deadline, "read still failing: {err}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(got, vec![Some(b"v".to_vec()), None, Some(b"v".to_vec())]);
        while let Err(err) = e.health().await {
            assert!(Instant::now() < deadline, "health still failing: {err}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_etcd_authentication_the_user_must_log_in() {
        let Some(cluster) = Cluster::start() else {
            return;
        };
        let password = "pw-s3cr3t-4f1c";
        let mut admin = etcd_client::Client::connect(cluster.endpoints(), None)
            .await
            .expect("connect");
        admin.user_add("root", password, None).await.expect("user");
        admin.user_grant_role("root", "root").await.expect("role");
        admin.auth_enable().await.expect("auth on");
        let url = cluster.url(&unique("auth"));
        let login = |user: Option<(&str, &str)>| {
            let mut opts = EtcdOptions::from_url(&url).expect("url");
            opts.user = user.map(|(u, p)| (u.to_string(), p.to_string()));
            EtcdEngine::connect(opts)
        };
        let e = login(Some(("root", password))).await.expect("log in");
        e.commit(put("k")).await.expect("commit");
        assert_eq!(e.get_many(&[b"k"]).await, Ok(vec![Some(b"v".to_vec())]));
        let wrong = login(Some(("root", "not-it"))).await.map(drop);
        let nobody = login(None)
            .await
            .expect("no login needed")
            .commit(put("j"))
            .await;
        for r in [wrong, nobody] {
            match r {
                Err(EngineError::Unavailable(why)) => {
                    assert!(
                        why.contains("credentials") && !why.contains(password),
                        "{why}"
                    )
                }
                other => panic!("not refused: {other:?}"),
            }
        }
    }

    /// One etcd member serving TLS (client certificates required), killed on drop.
    struct TlsMember(std::process::Child);

    impl Drop for TlsMember {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn over_tls_with_a_client_certificate() {
        use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
        if !testkit::etcd::etcd_installed() {
            testkit::etcd::skip_loudly();
            return;
        }
        let dir = tempfile::tempdir().expect("dir");
        let path = |name: &str| dir.path().join(name);
        let ca_key = KeyPair::generate().expect("key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).expect("ca");
        std::fs::write(path("ca.pem"), ca.pem()).expect("write");
        for (name, purpose) in [
            ("server", ExtendedKeyUsagePurpose::ServerAuth),
            ("client", ExtendedKeyUsagePurpose::ClientAuth),
        ] {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
            params.extended_key_usages = vec![purpose];
            let cert = params.signed_by(&key, &ca, &ca_key).expect("cert");
            std::fs::write(path(&format!("{name}.pem")), cert.pem()).expect("write");
            std::fs::write(path(&format!("{name}-key.pem")), key.serialize_pem()).expect("write");
        }
        let ports: Vec<u16> = (0..2)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("port"))
            .collect::<Vec<_>>()
            .iter()
            .map(|l| l.local_addr().expect("addr").port())
            .collect();
        let (client, peer) = (
            format!("https://127.0.0.1:{}", ports[0]),
            format!("http://127.0.0.1:{}", ports[1]),
        );
        let log = std::fs::File::create(path("etcd.log")).expect("log");
        let _member = TlsMember(
            std::process::Command::new("etcd")
                .arg("--data-dir")
                .arg(path("data"))
                .args(["--name", "m", "--logger", "zap"])
                .args([
                    "--listen-client-urls",
                    &client,
                    "--advertise-client-urls",
                    &client,
                ])
                .args([
                    "--listen-peer-urls",
                    &peer,
                    "--initial-advertise-peer-urls",
                    &peer,
                ])
                .args(["--initial-cluster", &format!("m={peer}")])
                .arg("--cert-file")
                .arg(path("server.pem"))
                .arg("--key-file")
                .arg(path("server-key.pem"))
                .arg("--trusted-ca-file")
                .arg(path("ca.pem"))
                .arg("--client-cert-auth")
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("etcd"),
        );
        let tls = |ca: &str, client: bool| ozmint::engine::etcd::EtcdTls {
            ca: path(ca),
            cert: client.then(|| path("client.pem")),
            key: client.then(|| path("client-key.pem")),
            domain: None,
        };
        let engine = |tls| {
            let opts = EtcdOptions {
                endpoints: vec![format!("127.0.0.1:{}", ports[0])],
                prefix: unique("tls"),
                request_timeout: Duration::from_secs(2),
                tls: Some(tls),
                ..EtcdOptions::default()
            };
            EtcdEngine::connect(opts)
        };
        let e = engine(tls("ca.pem", true)).await.expect("connect");
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Err(err) = e.health().await {
            assert!(
                Instant::now() < deadline,
                "the TLS member never served: {err}"
            );
        }
        e.commit(put("k")).await.expect("commit over TLS");
        assert_eq!(e.get_many(&[b"k"]).await, Ok(vec![Some(b"v".to_vec())]));
        // Without a client certificate, or trusting another CA: refused.
        std::fs::write(path("other-ca.pem"), {
            let key = KeyPair::generate().expect("key");
            let mut other = CertificateParams::new(Vec::<String>::new()).expect("params");
            other.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            other.self_signed(&key).expect("ca").pem()
        })
        .expect("write");
        for (tls, what) in [
            (tls("ca.pem", false), "no client certificate"),
            (tls("other-ca.pem", true), "an unknown CA"),
        ] {
            let e = engine(tls).await.expect("connect is lazy");
            let r = e.get_many(&[b"k"]).await;
            assert!(
                matches!(r, Err(EngineError::Unavailable(_) | EngineError::Timeout)),
                "{what}: {r:?}"
            );
        }
    }

    /// What a commit answered.
    enum Answer {
        Ok,
        /// Any error but `OutcomeUnknown`: nothing was written.
        NotApplied(String),
        Unknown,
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn killing_the_leader_under_load_loses_no_acknowledged_commit() {
        let Some(cluster) = Cluster::start() else {
            return;
        };
        let timeout = Duration::from_secs(5);
        let e = Arc::new(connect(&cluster, timeout).await);
        let stop = Arc::new(AtomicBool::new(false));
        let killed_at: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
        let mut tasks = Vec::new();
        for task in 0..8 {
            let (e, stop, killed_at) = (e.clone(), stop.clone(), killed_at.clone());
            tasks.push(tokio::spawn(async move {
                let mut answers = Vec::new();
                let mut ok_after_kill = 0;
                for n in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let key = format!("w/{task}/{n:06}");
                    let t = Instant::now();
                    let answer = match e.commit(put(&key)).await {
                        Ok(()) => Answer::Ok,
                        Err(EngineError::OutcomeUnknown(_)) => Answer::Unknown,
                        Err(EngineError::Conflict) => panic!("{key}: a conflict on a unique key"),
                        Err(other) => Answer::NotApplied(other.to_string()),
                    };
                    assert!(t.elapsed() <= timeout * 3 + Duration::from_secs(1));
                    if matches!(answer, Answer::Ok) && killed_at.get().is_some_and(|k| t > *k) {
                        ok_after_kill += 1;
                    }
                    answers.push((key, answer));
                }
                (answers, ok_after_kill)
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let leader = cluster.leader().expect("a leader");
        cluster.kill(leader);
        killed_at.set(Instant::now()).expect("once");
        // Long enough for an election and for commits stuck on the dead
        // leader to time out and be resolved.
        tokio::time::sleep(timeout + Duration::from_secs(3)).await;
        stop.store(true, Ordering::SeqCst);
        let mut answers = Vec::new();
        let mut ok_after_kill = 0;
        for t in tasks {
            let (a, n) = t.await.expect("task");
            answers.extend(a);
            ok_after_kill += n;
        }
        let mut present = BTreeSet::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = e.scan(b"w/", after.as_deref(), 1000).await.expect("scan");
            present.extend(page.entries.iter().map(|(k, _)| k.clone()));
            match page.next_after() {
                Some(a) => after = Some(a.to_vec()),
                None => break,
            }
        }
        let (mut ok, mut not_applied, mut unknown) = (0, 0, 0);
        let mut errors = BTreeSet::new();
        for (key, answer) in &answers {
            let there = present.contains(key.as_bytes());
            match answer {
                Answer::Ok => {
                    ok += 1;
                    assert!(there, "{key} was acknowledged but is missing");
                }
                Answer::NotApplied(why) => {
                    not_applied += 1;
                    errors.insert(why.as_str());
                    assert!(!there, "{key} failed definitely but was written");
                }
                Answer::Unknown => unknown += 1,
            }
        }
        assert_eq!(
            present.len(),
            ok + answers
                .iter()
                .filter(|(k, a)| { matches!(a, Answer::Unknown) && present.contains(k.as_bytes()) })
                .count(),
            "nothing but these commits is there"
        );
        eprintln!(
            "{} commits: {ok} ok ({ok_after_kill} after the kill), {not_applied} not applied \
             {errors:?}, {unknown} unknown",
            answers.len()
        );
        assert!(ok_after_kill > 0, "commits went on after the leader died");
        assert!(
            unknown * 100 <= answers.len(),
            "unknown outcomes are rare: {unknown} of {}",
            answers.len()
        );
    }

    /// Commit rates through the engine and raw, one key per commit.
    /// `cargo test --release --features etcd --test it -- --ignored --nocapture rates`;
    /// OZMINT_ETCD_BENCH_URL=etcd://... measures an existing cluster.
    #[tokio::test(flavor = "multi_thread")]
    #[ignore = "a measurement, not a test"]
    async fn commit_rates() {
        use std::io::Write as _;
        let cluster;
        let url = match std::env::var("OZMINT_ETCD_BENCH_URL") {
            Ok(url) => url,
            Err(_) => {
                cluster = Cluster::start();
                let Some(c) = &cluster else { return };
                c.url("bench")
            }
        };
        let opts = EtcdOptions::from_url(&url).expect("url");
        let secs = Duration::from_secs(5);
        for tasks in [1usize, 16] {
            let e = Arc::new(EtcdEngine::connect(opts.clone()).await.expect("connect"));
            let engine_rate = rate(tasks, secs, move |key| {
                let e = e.clone();
                async move { e.commit(put(&key)).await.expect("commit") }
            })
            .await;
            let client = etcd_client::Client::connect(&opts.endpoints, None)
                .await
                .expect("connect");
            let prefix = format!("{}/raw/", opts.prefix);
            let raw_rate = rate(tasks, secs, move |key| {
                let mut kv = client.kv_client();
                let key = format!("{prefix}{key}");
                async move {
                    use etcd_client::{Compare, CompareOp, Txn, TxnOp};
                    let txn = Txn::new()
                        .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
                        .and_then([TxnOp::put(key, "v", None)]);
                    assert!(kv.txn(txn).await.expect("txn").succeeded());
                }
            })
            .await;
            let _ = writeln!(
                std::io::stderr(),
                "{tasks:>2} task(s): engine {engine_rate:>6.0} commits/s, raw etcd-client {raw_rate:>6.0} txns/s"
            );
        }
    }

    /// Commits per second of `tasks` tasks calling `op` with unique keys for `secs`.
    async fn rate<F, Fut>(tasks: usize, secs: Duration, op: F) -> f64
    where
        F: Fn(String) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let run = unique("r");
        let start = Instant::now();
        let mut handles = Vec::new();
        for task in 0..tasks {
            let (op, run) = (op.clone(), run.clone());
            handles.push(tokio::spawn(async move {
                let mut n = 0u64;
                while start.elapsed() < secs {
                    op(format!("{run}/{task}/{n}")).await;
                    n += 1;
                }
                n
            }));
        }
        let mut total = 0;
        for h in handles {
            total += h.await.expect("task");
        }
        total as f64 / start.elapsed().as_secs_f64()
    }
}
