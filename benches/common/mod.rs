//! Fixtures shared by the `micro` (criterion) and `e2e` benchmarks: the bare
//! HMAC-SHA256 macaroon chain, a minter on a sled store, and stores holding
//! nested group chains and a space with many members.
#![allow(dead_code)]

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use ozmint::codec;
use ozmint::model::{
    GroupPrivileges, Id, SpacePrivilege, SpacePrivileges, Subject, TokenKind, TokenRecord,
    TokenState, User, ZonePrivileges,
};
use ozmint::store::{SledOptions, TreeName, GROUP_CHILDREN, GROUP_USERS, SPACE_GROUPS};
use ozmint::{Durability, Minter, MinterConfig, Store};

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
pub fn disk_store(durability: Durability) -> DiskStore {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        &dir.path().join("store"),
        &SledOptions::default(),
        durability,
    )
    .expect("open store");
    DiskStore {
        store: Arc::new(store),
        _dir: dir,
    }
}

/// A minter over `store` with a space to mint for and a user issuing.
pub struct MintFixture {
    /// The minter.
    pub minter: Minter,
    /// The space tokens are minted for.
    pub space: Id,
    /// The issuing user.
    pub issuer: Subject,
    /// Keeps the store's directory while the fixture lives.
    _disk: Option<DiskStore>,
}

impl MintFixture {
    /// Creates the space and user on `store`.
    pub fn new(store: Arc<Store>) -> Self {
        let user = store
            .create_user("bench", "x".into(), ZonePrivileges::all())
            .expect("create user");
        let space = store.create_space("bench", None).expect("create space");
        let minter = Minter::new(store, MinterConfig::default()).expect("minter");
        MintFixture {
            minter,
            space,
            issuer: Subject::User(user),
            _disk: None,
        }
    }

    /// On a new sled store on disk.
    pub fn on_disk(durability: Durability) -> Self {
        let disk = disk_store(durability);
        let mut fx = MintFixture::new(disk.store.clone());
        fx._disk = Some(disk);
        fx
    }

    /// Mints one space support token.
    pub fn mint(&self) -> String {
        self.minter
            .mint(TokenKind::SpaceSupport, self.space, self.issuer)
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
pub fn chain_input(minter: &Minter, token: &str) -> ChainInput {
    let raw = ozmint::token::wire::parse(token).expect("parse");
    let id: Id = std::str::from_utf8(&raw.identifier)
        .expect("utf-8 identifier")
        .parse()
        .expect("identifier is an id");
    let rec = minter.store().token(&id).expect("store").expect("record");
    let secret = minter
        .keys()
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
pub fn chain_case(store: &Store, space: Id, depth: usize, tag: &str) -> PrivCase {
    assert!(depth >= 1);
    let groups: Vec<Id> = (0..depth)
        .map(|i| {
            store
                .create_group(&format!("{tag}-g{i}"), None)
                .expect("group")
        })
        .collect();
    for w in groups.windows(2) {
        store
            .put_relation(
                &GROUP_CHILDREN,
                &w[0],
                &w[1],
                &GroupPrivileges::member_default(),
            )
            .expect("nest");
    }
    let user = store
        .create_user(&format!("{tag}-user"), "x".into(), ZonePrivileges::empty())
        .expect("user");
    store
        .put_relation(
            &GROUP_USERS,
            &groups[depth - 1],
            &user,
            &GroupPrivileges::member_default(),
        )
        .expect("membership");
    store
        .put_relation(&SPACE_GROUPS, &space, &groups[0], &add_provider())
        .expect("space group");
    let case = PrivCase {
        label: format!("depth {depth}"),
        user,
        space,
    };
    assert!(effective_ok(store, &case), "{tag}: privilege not effective");
    case
}

/// Whether the case's user effectively holds `AddProvider` (the checked operation).
pub fn effective_ok(store: &Store, case: &PrivCase) -> bool {
    store
        .effective_space_privileges(&case.user, &case.space)
        .expect("effective privileges")
        .contains(SpacePrivilege::AddProvider)
}

/// Adds `n` users as direct members of `space` (raw engine writes of exactly
/// the keys and values the store itself writes, for speed), the last of them
/// with `AddProvider`. Returns that last member.
pub fn add_direct_members(store: &Store, space: Id, n: usize) -> Id {
    let engine = store.engine();
    let member = codec::encode(&SpacePrivileges::member_default()).expect("encode");
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
        engine
            .put(
                TreeName::UserIdUser,
                user.as_bytes(),
                &codec::encode(&rec).expect("encode"),
            )
            .expect("put");
        engine
            .put(TreeName::UserNameUserId, name.as_bytes(), user.as_bytes())
            .expect("put");
        let privs = if i + 1 == n {
            codec::encode(&add_provider()).expect("encode")
        } else {
            member.clone()
        };
        engine
            .put(TreeName::SpaceUsers, &pair(&space, &user), &privs)
            .expect("put");
        engine
            .put(TreeName::UserSpaces, &pair(&user, &space), &[])
            .expect("put");
        last = user;
    }
    last
}

fn pair(a: &Id, b: &Id) -> [u8; 64] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(a.as_bytes());
    k[32..].copy_from_slice(b.as_bytes());
    k
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
    pub fn new(members: usize) -> Self {
        let store = disk_store(Durability::Relaxed);
        let mut chains = Vec::new();
        for depth in [1usize, 8, 32] {
            let space = store
                .create_space(&format!("chain{depth}"), None)
                .expect("space");
            chains.push(chain_case(&store, space, depth, &format!("c{depth}")));
        }
        let big_space = store.create_space("big", None).expect("space");
        let direct = add_direct_members(&store, big_space, members);
        let direct = PrivCase {
            label: format!("{members} members, direct"),
            user: direct,
            space: big_space,
        };
        assert!(effective_ok(&store, &direct));
        let mut via = chain_case(&store, big_space, 1, "big1");
        via.label = format!("{members} members, depth 1");
        PrivFixture {
            store,
            chains,
            big: vec![direct, via],
            members,
        }
    }
}

/// A token record like the ones the minter writes.
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

/// Resident memory of this process in KiB (`VmRSS` of /proc/self/status).
pub fn vm_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
