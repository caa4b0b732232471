//! Fixtures shared by the `micro` (criterion) and `e2e` benchmarks: the bare
//! HMAC-SHA256 macaroon chain, a zone on a sled store, and stores holding
//! nested group chains and a space with many members.
//!
//! The store and the operations are async: every fixture here is an async
//! function, run by the caller on its runtime (`micro` uses a current-thread
//! runtime, `e2e` its multi-thread one).
#![allow(dead_code)]

pub mod load;

/// The CI smoke run (`OZMINT_BENCH_SMOKE=1`): short rows, small stores.
pub fn smoke() -> bool {
    std::env::var("OZMINT_BENCH_SMOKE").is_ok_and(|v| v == "1")
}

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use ozmint::engine::memory::MemoryEngine;
use ozmint::engine::sled::SledOptions;
use ozmint::engine::{Commit, Durability, Write};
use ozmint::model::{
    GroupPrivileges, Id, SpacePrivilege, SpacePrivileges, Subject, TokenKind, TokenRecord,
    TokenState, User, ZonePrivileges,
};
use ozmint::store::schema::{SPACE_USERS, USERS, USER_NAMES, USER_SPACES};
use ozmint::store::{GROUP_CHILDREN_REL, GROUP_USERS_REL, SPACE_GROUPS_REL};
use ozmint::token::keys::KeySource;
use ozmint::{DurabilityMode, Store, Zone, ZoneConfig};

type HmacSha256 = Hmac<Sha256>;

/// libmacaroons' key-generator constant (the derived key is HMAC(this, secret)).
pub const KEY_GENERATOR: &[u8] = b"macaroons-key-generator";

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The bare macaroon signature chain computed with RustCrypto `hmac` + `sha2`:
/// the physical floor of verifying a macaroon with this identifier and these
/// caveats (no parsing, no store, no key derivation).
pub fn bare_chain(secret: &[u8; 32], identifier: &[u8], caveats: &[Vec<u8>]) -> [u8; 32] {
    let mut sig = hmac(&hmac(KEY_GENERATOR, secret), identifier);
    for c in caveats {
        sig = hmac(&sig, c);
    }
    sig
}

/// A current-thread runtime with timers and I/O (the sled engine's flushes
/// go to its blocking pool).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs `f` `iters` times in a row inside `rt` and returns the time taken:
/// for criterion's `iter_custom`, so that the loop runs in the runtime like a
/// request handler does and no iteration pays for entering it.
pub fn time_async<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future,
{
    rt.block_on(async {
        let t = Instant::now();
        for _ in 0..iters {
            std::hint::black_box(f().await);
        }
        t.elapsed()
    })
}

/// A sled store in a temporary directory on disk (like the server's; sled's
/// own `temporary` mode lives in /dev/shm and skips its log syncs), with the
/// server's default options. The directory is removed when this is dropped.
pub struct DiskStore {
    /// The store.
    pub store: Arc<Store>,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for DiskStore {
    type Target = Arc<Store>;
    fn deref(&self) -> &Arc<Store> {
        &self.store
    }
}

/// A sled store on disk in a new temporary directory.
pub async fn disk_store(mode: DurabilityMode) -> DiskStore {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_sled(&dir.path().join("store"), &SledOptions::default(), mode)
        .await
        .expect("open store");
    DiskStore {
        store: Arc::new(store),
        _dir: dir,
    }
}

/// A relaxed store on the in-memory engine (as `Store::memory()` was before
/// the engine redesign; it is durable now, which only the commit metrics see).
pub async fn memory_store() -> Store {
    Store::open(Arc::new(MemoryEngine::new()), DurabilityMode::Relaxed)
        .await
        .expect("memory store")
}

/// A zone over `store` with a space to mint for and a user issuing.
pub struct MintFixture {
    /// The zone (it mints and verifies).
    pub zone: Zone,
    /// The space tokens are minted for.
    pub space: Id,
    /// The issuing user.
    pub issuer: Subject,
    /// Keeps the store's directory while the fixture lives.
    _disk: Option<DiskStore>,
}

impl MintFixture {
    /// Creates the space and user on `store`.
    pub async fn new(store: Arc<Store>) -> Self {
        let user = store
            .create_user("bench", "x".into(), ZonePrivileges::all())
            .await
            .expect("create user");
        let space = store
            .create_space("bench", None)
            .await
            .expect("create space");
        let zone = Zone::new(store, ZoneConfig::default()).await.expect("zone");
        MintFixture {
            zone,
            space,
            issuer: Subject::User(user),
            _disk: None,
        }
    }

    /// On a new sled store on disk.
    pub async fn on_disk(mode: DurabilityMode) -> Self {
        let disk = disk_store(mode).await;
        let mut fx = MintFixture::new(disk.store.clone()).await;
        fx._disk = Some(disk);
        fx
    }

    /// On a new in-memory store.
    pub async fn in_memory() -> Self {
        MintFixture::new(Arc::new(memory_store().await)).await
    }

    /// Mints one space support token.
    pub async fn mint(&self) -> String {
        self.zone
            .mint(TokenKind::SpaceSupport, self.space, self.issuer)
            .await
            .expect("mint")
            .token
    }
}

/// What a token verification needs besides the token: the parsed parts and
/// its secret, for the bare-chain comparison.
pub struct ChainInput {
    /// The token's secret (derived from the root key and the identifier).
    pub secret: [u8; 32],
    /// The identifier packet.
    pub identifier: Vec<u8>,
    /// The caveat predicates.
    pub caveats: Vec<Vec<u8>>,
    /// The expected signature.
    pub signature: [u8; 32],
}

/// Parses `token` and looks up its secret, checking the bare chain agrees.
pub async fn chain_input(zone: &Zone, token: &str) -> ChainInput {
    let raw = ozmint::token::wire::parse(token).expect("parse");
    let id = ozmint::token::legacy_id(&raw).expect("identifier is an id");
    let rec = zone
        .store()
        .token(&id)
        .await
        .expect("store")
        .expect("record");
    let secret = zone
        .store()
        .root_keys()
        .await
        .expect("root keys")
        .token_secret(rec.key_id, &raw.identifier)
        .expect("key");
    let input = ChainInput {
        secret,
        identifier: raw.identifier.clone(),
        caveats: raw.caveats.clone(),
        signature: raw.signature,
    };
    assert_eq!(
        bare_chain(&input.secret, &input.identifier, &input.caveats),
        input.signature,
        "the bare chain must reproduce the minted signature"
    );
    input
}

/// One effective-privilege case: does `user` hold `AddProvider` in `space`.
pub struct PrivCase {
    /// Label for tables.
    pub label: String,
    /// The user.
    pub user: Id,
    /// The space.
    pub space: Id,
}

fn add_provider() -> SpacePrivileges {
    [SpacePrivilege::AddProvider].into_iter().collect()
}

/// A user reaching `space` through a chain of `depth` nested groups: the user
/// is in the deepest group, each group is a child of the one above, and the
/// top group holds `AddProvider` in the space.
pub async fn chain_case(store: &Store, space: Id, depth: usize, tag: &str) -> PrivCase {
    assert!(depth >= 1);
    let mut groups = Vec::with_capacity(depth);
    for i in 0..depth {
        groups.push(
            store
                .create_group(&format!("{tag}-g{i}"), None)
                .await
                .expect("group"),
        );
    }
    for w in groups.windows(2) {
        store
            .put_relation(
                &GROUP_CHILDREN_REL,
                &w[0],
                &w[1],
                &GroupPrivileges::member_default(),
            )
            .await
            .expect("nest");
    }
    let user = store
        .create_user(&format!("{tag}-user"), "x".into(), ZonePrivileges::empty())
        .await
        .expect("user");
    store
        .put_relation(
            &GROUP_USERS_REL,
            &groups[depth - 1],
            &user,
            &GroupPrivileges::member_default(),
        )
        .await
        .expect("membership");
    store
        .put_relation(&SPACE_GROUPS_REL, &space, &groups[0], &add_provider())
        .await
        .expect("space group");
    let case = PrivCase {
        label: format!("depth {depth}"),
        user,
        space,
    };
    assert!(
        effective_ok(store, &case).await,
        "{tag}: privilege not effective"
    );
    case
}

/// Whether the case's user effectively holds `AddProvider` (the checked operation).
pub async fn effective_ok(store: &Store, case: &PrivCase) -> bool {
    store
        .effective_space_privileges(&case.user, &case.space)
        .await
        .expect("effective privileges")
        .contains(SpacePrivilege::AddProvider)
}

/// Adds `n` users as direct members of `space` (raw engine writes of exactly
/// the keys and values the store itself writes, for speed), the last of them
/// with `AddProvider`. Returns that last member.
///
/// One single-put commit per key, as the former fixture's engine puts: with
/// many members per commit the build is faster, but sled is then still busy
/// with those large batches during the first measurement after it (depth 1
/// read 5 µs instead of 1 µs).
pub async fn add_direct_members(store: &Store, space: Id, n: usize) -> Id {
    let engine = store.engine();
    let put = |key: Vec<u8>, value: Vec<u8>| {
        engine.commit(Commit::new(
            Vec::new(),
            vec![Write::Put(key, value)],
            Durability::Eventual,
        ))
    };
    let mut last = Id([0; 32]);
    for i in 0..n {
        let user = Id::random();
        let name = format!("member{i}");
        let rec = User {
            name: name.clone(),
            password_hash: "x".into(),
            zone_privileges: ZonePrivileges::empty(),
            created: 0,
        };
        let privs = if i + 1 == n {
            add_provider()
        } else {
            SpacePrivileges::member_default()
        };
        put(USERS.key(&user), USERS.encode(&rec).expect("encode"))
            .await
            .expect("put");
        put(
            USER_NAMES.key(&name),
            USER_NAMES.encode(&user).expect("encode"),
        )
        .await
        .expect("put");
        put(
            SPACE_USERS.key(&(space, user)),
            SPACE_USERS.encode(&privs).expect("encode"),
        )
        .await
        .expect("put");
        put(
            USER_SPACES.key(&(user, space)),
            USER_SPACES.encode(&()).expect("encode"),
        )
        .await
        .expect("put");
        last = user;
    }
    last
}

/// The effective-privilege fixture: chains of depth 1, 8 and 32 in small
/// spaces, and a space with `members` direct members in which a direct member
/// and a depth-1 group member are checked.
pub struct PrivFixture {
    /// The store (sled on disk, relaxed).
    pub store: DiskStore,
    /// Depth 1, 8, 32 in small spaces.
    pub chains: Vec<PrivCase>,
    /// In the big space: a direct member, then a user through one group.
    pub big: Vec<PrivCase>,
    /// How many direct members the big space has.
    pub members: usize,
}

impl PrivFixture {
    /// Builds the fixture on a temporary sled store.
    pub async fn new(members: usize) -> Self {
        let store = disk_store(DurabilityMode::Relaxed).await;
        let mut chains = Vec::new();
        for depth in [1usize, 8, 32] {
            let space = store
                .create_space(&format!("chain{depth}"), None)
                .await
                .expect("space");
            chains.push(chain_case(&store, space, depth, &format!("c{depth}")).await);
        }
        let big_space = store.create_space("big", None).await.expect("space");
        let direct = add_direct_members(&store, big_space, members).await;
        let direct = PrivCase {
            label: format!("{members} members, direct"),
            user: direct,
            space: big_space,
        };
        assert!(effective_ok(&store, &direct).await);
        let mut via = chain_case(&store, big_space, 1, "big1").await;
        via.label = format!("{members} members, depth 1");
        PrivFixture {
            store,
            chains,
            big: vec![direct, via],
            members,
        }
    }
}

/// A token record like the ones a mint writes.
pub fn sample_record(target: Id, issuer: Id) -> TokenRecord {
    let created = ozmint::model::now();
    TokenRecord {
        kind: TokenKind::SpaceSupport,
        target,
        issuer: Subject::User(issuer),
        key_id: 1,
        created,
        expires: created + 7 * 24 * 3600,
        state: TokenState::Active,
    }
}

/// Writes one token record with its two index keys: the transaction a mint
/// commits, without the guard on the root keys' generation. This replaces the
/// former lone `Store::insert_token` call, which no longer exists (records are
/// written inside transactions, `Store::insert_token_in`).
pub async fn insert_token(store: &Store, id: &Id, rec: &TokenRecord) {
    store
        .transact(|mut tx| async move {
            Store::insert_token_in(&mut tx, id, rec)?;
            Ok(tx.done(()))
        })
        .await
        .expect("insert token");
}

/// Resident memory of this process in KiB (`VmRSS` of /proc/self/status).
pub fn vm_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
