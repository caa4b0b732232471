//! Micro benchmarks (criterion): mint; parse + verify against the bare
//! HMAC-SHA256 chain; biscuit-auth as a peer; effective-privilege checks for
//! nested chains and a space with 100 000 members; store put/get against raw
//! sled; record encode/decode.
//!
//! `cargo bench --bench micro` (full, a few minutes) or
//! `cargo bench --bench micro -- --test` (one iteration each).

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use biscuit_auth::macros::{authorizer, biscuit};
use biscuit_auth::{AuthorizerLimits, Biscuit, KeyPair};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

use common::{bare_chain, chain_input, sample_record, MintFixture, PrivFixture};
use ozmint::model::{GroupPrivileges, Id, User, ZonePrivileges};
use ozmint::store::{TreeName, GROUP_USERS};
use ozmint::token::wire;
use ozmint::{codec, Durability, Store};

/// Members of the big space.
const MEMBERS: usize = 100_000;

fn mint(c: &mut Criterion) {
    let mut g = c.benchmark_group("mint");
    let relaxed = MintFixture::on_disk(Durability::Relaxed);
    g.bench_function("sled_relaxed", |b| b.iter(|| black_box(relaxed.mint())));
    let memory = MintFixture::new(Arc::new(Store::memory()));
    g.bench_function("memory_engine", |b| b.iter(|| black_box(memory.mint())));
    drop((relaxed, memory));
    // One mint = one fsync when nobody shares it (single thread).
    g.sample_size(10);
    let durable = MintFixture::on_disk(Durability::Durable);
    g.bench_function("sled_durable_1_thread", |b| {
        b.iter(|| black_box(durable.mint()))
    });
    g.finish();
}

fn verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("verify");
    let fx = MintFixture::on_disk(Durability::Relaxed);
    let token = fx.mint();
    let input = chain_input(&fx.minter, &token);
    let raw = wire::parse(&token).expect("parse");
    g.bench_function("parse_and_verify", |b| {
        b.iter(|| black_box(fx.minter.verify(black_box(&token)).expect("verify")))
    });
    g.bench_function("parse_only", |b| {
        b.iter(|| black_box(wire::parse(black_box(&token)).expect("parse")))
    });
    g.bench_function("library_signature_check", |b| {
        b.iter(|| black_box(wire::signature_matches(black_box(&raw), &input.secret)))
    });
    g.bench_function("bare_hmac_chain", |b| {
        b.iter(|| {
            black_box(
                bare_chain(
                    black_box(&input.secret),
                    black_box(&input.identifier),
                    black_box(&input.caveats),
                ) == input.signature,
            )
        })
    });
    g.bench_function("blake3_secret_derivation", |b| {
        let root = [7u8; 32];
        b.iter(|| {
            black_box(ozmint::token::keys::derive(
                &root,
                black_box(&input.identifier),
            ))
        })
    });
    g.finish();
}

/// biscuit-auth (Ed25519) minting and verifying a token with the same content:
/// identifier, type, target and an expiry check.
fn biscuit_peer(c: &mut Criterion) {
    let mut g = c.benchmark_group("biscuit");
    let root = KeyPair::new();
    let public = root.public();
    let target = Id::random().to_string();
    let make = || {
        let id = Id::random().to_string();
        let target = target.as_str();
        let expiry = SystemTime::now() + Duration::from_secs(7 * 24 * 3600);
        biscuit!(
            r#"
            token_id({id});
            token_type("space_support_token");
            target({target});
            check if time($t), $t < {expiry};
            "#,
        )
        .build(&root)
        .expect("build biscuit")
        .to_base64()
        .expect("serialize biscuit")
    };
    g.bench_function("create", |b| b.iter(|| black_box(make())));
    let token = make();
    let check = |token: &str| {
        let parsed = Biscuit::from_base64(token, public).expect("parse biscuit");
        let now = SystemTime::now();
        let mut a = authorizer!(
            r#"
            time({now});
            allow if token_type("space_support_token");
            "#,
        )
        // The default 1 ms run limit trips when the machine is busy.
        .set_limits(AuthorizerLimits {
            max_time: Duration::from_secs(1),
            ..AuthorizerLimits::default()
        })
        .build(&parsed)
        .expect("authorizer");
        a.authorize().expect("authorized")
    };
    check(&token);
    g.bench_function("parse_and_verify", |b| {
        b.iter(|| black_box(check(black_box(&token))))
    });
    g.finish();
}

fn effective(c: &mut Criterion) {
    let mut g = c.benchmark_group("effective");
    let fx = PrivFixture::new(MEMBERS);
    for case in fx.chains.iter().chain(fx.big.iter()) {
        let name = case.label.replace(' ', "_").replace(',', "");
        g.bench_function(name, |b| {
            b.iter(|| black_box(common::effective_ok(&fx.store, black_box(case))))
        });
    }
    // Depth 32 right after a change of the group graph (reach cache cold): the
    // setup rewrites an unrelated membership, which bumps the generation.
    let (user, group) = {
        let u = fx
            .store
            .create_user("cold", "x".into(), ZonePrivileges::empty())
            .expect("user");
        let g = fx.store.create_group("cold", None).expect("group");
        fx.store
            .put_relation(&GROUP_USERS, &g, &u, &GroupPrivileges::member_default())
            .expect("membership");
        (u, g)
    };
    let deep = &fx.chains[2];
    g.bench_function("depth_32_cold_reach_cache", |b| {
        b.iter_batched(
            || {
                fx.store
                    .update_relation(&GROUP_USERS, &group, &user, |p| p)
                    .expect("touch graph")
            },
            |_| black_box(common::effective_ok(&fx.store, deep)),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// Store put/get through the engine seam against raw sled with the same bytes.
fn store_vs_sled(c: &mut Criterion) {
    let mut g = c.benchmark_group("store");
    let store = common::disk_store(Durability::Relaxed);
    // Raw sled on disk with the options the store uses.
    let raw_dir = tempfile::tempdir().expect("tempdir");
    let db = sled::Config::new()
        .path(raw_dir.path())
        .cache_capacity(64 * 1024 * 1024)
        .flush_every_ms(Some(500))
        .open()
        .expect("raw sled");
    let tree = db.open_tree("tokens").expect("tree");
    let rec = sample_record(Id::random(), Id::random());
    let value = codec::encode(&rec).expect("encode");
    let key = |n: u64| {
        let mut k = [0u8; 33];
        k[0] = b'r';
        k[1..9].copy_from_slice(&n.to_be_bytes());
        k
    };
    let counter = AtomicU64::new(0);
    g.bench_function("engine_put", |b| {
        b.iter(|| {
            let k = key(counter.fetch_add(1, Ordering::Relaxed));
            store
                .engine()
                .put(TreeName::Tokens, &k, &value)
                .expect("put")
        })
    });
    let counter = AtomicU64::new(0);
    g.bench_function("sled_raw_insert", |b| {
        b.iter(|| {
            let k = key(counter.fetch_add(1, Ordering::Relaxed));
            tree.insert(k, value.as_slice()).expect("insert")
        })
    });
    // A record mint writes: one record and two index keys in one batch.
    g.bench_function("store_insert_token", |b| {
        b.iter(|| store.insert_token(&Id::random(), &rec).expect("insert"))
    });
    g.bench_function("sled_raw_batch_same_3_keys", |b| {
        b.iter(|| {
            let id = Id::random();
            let mut batch = sled::Batch::default();
            batch.insert([&b"r"[..], id.as_bytes()].concat(), value.as_slice());
            batch.insert(
                [&b"t"[..], rec.target.as_bytes(), id.as_bytes()].concat(),
                &[][..],
            );
            batch.insert(
                [&b"e"[..], &rec.expires.to_be_bytes()[..], id.as_bytes()].concat(),
                &[][..],
            );
            tree.apply_batch(batch).expect("batch")
        })
    });
    // Reads of one existing record, warm cache.
    let id = Id::random();
    store.insert_token(&id, &rec).expect("insert");
    let rkey = [&b"r"[..], id.as_bytes()].concat();
    tree.insert(&rkey, value.as_slice()).expect("insert");
    g.bench_function("store_token_get_decode", |b| {
        b.iter(|| black_box(store.token(black_box(&id)).expect("get")))
    });
    g.bench_function("engine_get", |b| {
        b.iter(|| black_box(store.engine().get(TreeName::Tokens, &rkey).expect("get")))
    });
    g.bench_function("sled_raw_get", |b| {
        b.iter(|| black_box(tree.get(black_box(&rkey)).expect("get")))
    });
    g.finish();
}

fn codec_records(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    let rec = sample_record(Id::random(), Id::random());
    let bytes = codec::encode(&rec).expect("encode");
    g.bench_function("token_record_encode", |b| {
        b.iter(|| black_box(codec::encode(black_box(&rec)).expect("encode")))
    });
    g.bench_function("token_record_decode", |b| {
        b.iter(|| {
            black_box(
                codec::decode::<ozmint::model::TokenRecord>(black_box(&bytes)).expect("decode"),
            )
        })
    });
    let user = User {
        name: "alice".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0123456789abcdefghijklmnopqrstuvwxyzABCDE".into(),
        zone_privileges: ZonePrivileges::all(),
        created: 1_700_000_000,
    };
    let ubytes = codec::encode(&user).expect("encode");
    g.bench_function("user_encode", |b| {
        b.iter(|| black_box(codec::encode(black_box(&user)).expect("encode")))
    });
    g.bench_function("user_decode", |b| {
        b.iter(|| black_box(codec::decode::<User>(black_box(&ubytes)).expect("decode")))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = micro;
    config = config();
    targets = mint, verify, biscuit_peer, effective, store_vs_sled, codec_records
}
criterion_main!(micro);
