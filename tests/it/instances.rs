//! Two `Store`/`Zone` instances on one engine behave as one zone: every
//! invariant and every cache holds across them, as it will for two processes
//! on one replicated store. Each test runs on the memory engine and on sled.

use std::net::IpAddr;
use std::sync::Arc;

use ozmint::engine::memory::MemoryEngine;
use ozmint::engine::sled::{SledEngine, SledOptions};
use ozmint::engine::Engine;
use ozmint::error::OzError;
use ozmint::error::{Entity, Error};
use ozmint::model::{
    GroupPrivilege, GroupPrivileges, Id, SpacePrivilege, SpacePrivileges, Subject, ZonePrivileges,
};
use ozmint::ops::auth::hash_password;
use ozmint::ops::named_tokens::{NamedTokenPatch, NamedTokenRequest};
use ozmint::ops::token_auth::RequestContext;
use ozmint::ops::{AuthError, AuthFailure, Caller, Credentials};
use ozmint::store::{GROUP_CHILDREN_REL, GROUP_USERS_REL, SPACE_GROUPS_REL, SPACE_USERS_REL};
use ozmint::token::v2;
use ozmint::{TokenError, Zone};

/// Two zones over one engine, with a user `alice` who may mint support
/// tokens in `space` through group `group`, and a provider.
struct Pair {
    a: Zone,
    b: Zone,
    alice: Id,
    group: Id,
    space: Id,
    provider: Id,
    _dir: Option<tempfile::TempDir>,
}

use testkit::server::zone_on as zone;

/// The engines the pairs run on.
#[derive(Clone, Copy)]
enum On {
    Memory,
    /// Memory with the smallest limits the store must still work within.
    Tiny,
    Sled,
}

/// Limits far smaller than any real engine's: every multi-step plan of the
/// store (cascades, purges, batched reads, pages) takes many steps.
pub const TINY: ozmint::engine::Limits = ozmint::engine::Limits {
    max_guards: 16,
    max_writes: 12,
    max_commit_bytes: 64 * 1024,
    max_batch_keys: 4,
    max_page: 5,
};

async fn pair(on: On) -> Pair {
    let (engine, dir): (Arc<dyn Engine>, _) = match on {
        On::Sled => {
            let dir = tempfile::tempdir().expect("tempdir");
            let e =
                SledEngine::open(&dir.path().join("store"), &SledOptions::default()).expect("sled");
            (Arc::new(e), Some(dir))
        }
        On::Memory => (Arc::new(MemoryEngine::new()), None),
        On::Tiny => (Arc::new(MemoryEngine::with_limits(TINY)), None),
    };
    let a = zone(engine.clone()).await;
    let b = zone(engine).await;
    let s = a.store();
    let hash = hash_password("alice-pw").expect("hash");
    let alice = s
        .create_user("alice", hash, ZonePrivileges::empty())
        .await
        .expect("alice");
    let group = s.create_group("g", None).await.expect("group");
    let space = s.create_space("s", None).await.expect("space");
    s.put_relation(
        &GROUP_USERS_REL,
        &group,
        &alice,
        &GroupPrivileges::member_default(),
    )
    .await
    .expect("alice in g");
    let add: SpacePrivileges = [SpacePrivilege::AddProvider].into_iter().collect();
    s.put_relation(&SPACE_GROUPS_REL, &space, &group, &add)
        .await
        .expect("g in s");
    let provider = s.create_provider("p", "p.example").await.expect("provider");
    Pair {
        a,
        b,
        alice,
        group,
        space,
        provider,
        _dir: dir,
    }
}

/// Runs a test body on memory, memory with tiny limits, and sled.
macro_rules! on_both {
    ($($name:ident => $body:expr;)*) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn memory() {
                ($body)(pair(On::Memory).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn tiny_limits() {
                ($body)(pair(On::Tiny).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sled() {
                ($body)(pair(On::Sled).await).await;
            }
        }
    )*};
}

const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

async fn double_spend(p: Pair) {
    let p = Arc::new(p);
    let alice = Caller::user(p.alice);
    for round in 0..10 {
        let token =
            p.a.create_space_support_token(&alice, p.space)
                .await
                .expect("mint")
                .token;
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (p, token) = (p.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let zone = if i % 2 == 0 { &p.a } else { &p.b };
                zone.support_space(&Caller::provider(p.provider), &token, 1 + i as u64)
                    .await
            }));
        }
        let mut wins = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(space) => {
                    assert_eq!(space, p.space);
                    wins += 1;
                }
                // A loser sees the token used, or the support it lost to.
                Err(Error::Token(TokenError::Consumed))
                | Err(Error::AlreadyExists(Entity::Relation)) => {}
                Err(other) => panic!("round {round}: unexpected {other}"),
            }
        }
        assert_eq!(wins, 1, "round {round}: exactly one consumer wins");
        // Reset for the next round: the support goes away again.
        p.b.store()
            .remove_relation(&ozmint::store::SPACE_PROVIDERS_REL, &p.space, &p.provider)
            .await
            .expect("remove support");
    }
}

async fn privilege_revocation(p: Pair) {
    let alice = Caller::user(p.alice);
    p.b.create_space_support_token(&alice, p.space)
        .await
        .expect("b mints: alice may");
    // Revoke through a; b must refuse on its very next request.
    p.a.store()
        .update_relation(&SPACE_GROUPS_REL, &p.space, &p.group, |_| {
            Ok(SpacePrivileges::empty())
        })
        .await
        .expect("revoke");
    let err =
        p.b.create_space_support_token(&alice, p.space)
            .await
            .expect_err("b must honour the revocation");
    assert!(matches!(err, Error::Forbidden(_)), "{err}");
    // And a token minted before the revocation is refused at consumption on b.
    p.a.store()
        .update_relation(&SPACE_GROUPS_REL, &p.space, &p.group, |_| {
            Ok([SpacePrivilege::AddProvider].into_iter().collect())
        })
        .await
        .expect("grant again");
    let token =
        p.b.create_space_support_token(&alice, p.space)
            .await
            .expect("mint")
            .token;
    p.a.store()
        .update_relation(&SPACE_GROUPS_REL, &p.space, &p.group, |_| {
            Ok(SpacePrivileges::empty())
        })
        .await
        .expect("revoke");
    let err =
        p.b.support_space(&Caller::provider(p.provider), &token, 10)
            .await
            .expect_err("issuer lost the privilege");
    assert!(
        matches!(err, Error::Token(TokenError::IssuerNotAllowed)),
        "{err}"
    );
}

async fn membership_removal(p: Pair) {
    let alice = Caller::user(p.alice);
    // Warm b's reach cache for alice.
    assert!(p
        .b
        .store()
        .is_effective_group_member(&p.alice, &p.group)
        .await
        .unwrap());
    p.b.create_space_support_token(&alice, p.space)
        .await
        .expect("mint");
    assert!(p
        .a
        .store()
        .remove_relation(&GROUP_USERS_REL, &p.group, &p.alice)
        .await
        .unwrap());
    assert!(
        !p.b.store()
            .is_effective_group_member(&p.alice, &p.group)
            .await
            .unwrap(),
        "b's reach cache must notice the removal"
    );
    let err =
        p.b.create_space_support_token(&alice, p.space)
            .await
            .expect_err("no longer a member");
    assert!(matches!(err, Error::Forbidden(_)), "{err}");
    // Nested groups: alice in a child group of g, added through b, seen by a.
    let child = p.b.store().create_group("child", None).await.unwrap();
    p.b.store()
        .put_relation(
            &GROUP_CHILDREN_REL,
            &p.group,
            &child,
            &GroupPrivileges::empty(),
        )
        .await
        .unwrap();
    p.a.create_space_support_token(&alice, p.space)
        .await
        .expect_err("still not a member");
    p.b.store()
        .put_relation(
            &GROUP_USERS_REL,
            &child,
            &p.alice,
            &GroupPrivileges::empty(),
        )
        .await
        .unwrap();
    p.a.create_space_support_token(&alice, p.space)
        .await
        .expect("a sees the new nested membership");
}

async fn password_change(p: Pair) {
    let creds = |pw: &str| {
        Some(Credentials::Basic {
            user: "alice".into(),
            password: pw.into(),
        })
    };
    // b has verified (and cached) alice's credentials.
    p.b.authenticate(creds("alice-pw"), PEER)
        .await
        .expect("login");
    p.b.authenticate(creds("alice-pw"), PEER)
        .await
        .expect("cached login");
    let alice = Caller::user(p.alice);
    p.a.change_password(&alice, "alice-pw", "new-pw")
        .await
        .expect("change");
    let err =
        p.b.authenticate(creds("alice-pw"), PEER)
            .await
            .expect_err("the old password must fail on b at once");
    assert!(matches!(err, AuthFailure::Auth(_)), "{err:?}");
    p.b.authenticate(creds("new-pw"), PEER)
        .await
        .expect("new password");
}

async fn token_revocation(p: Pair) {
    let alice = Caller::user(p.alice);
    let access = p.a.create_access_token(&alice).await.expect("access token");
    let creds = || Some(Credentials::Token(access.token.clone()));
    assert_eq!(
        p.b.authenticate(creds(), PEER)
            .await
            .expect("b accepts it")
            .subject,
        Subject::User(p.alice)
    );
    p.a.revoke_access_token(&alice, &access.id.to_string())
        .await
        .expect("revoke");
    let err =
        p.b.authenticate(creds(), PEER)
            .await
            .expect_err("b must refuse a revoked token");
    assert!(
        matches!(
            err,
            AuthFailure::Auth(ozmint::ops::AuthError::BadToken(TokenError::Revoked))
        ),
        "{err:?}"
    );
}

async fn key_rotation_and_retirement(p: Pair) {
    let alice = Caller::user(p.alice);
    // b verifies with its cached keys first.
    let old =
        p.b.create_access_token(&alice)
            .await
            .expect("old key token");
    p.b.verify(&old.token).await.expect("b verifies");
    let admin = make_key_admin(&p).await;
    let new_key = p.a.rotate_key(&admin).await.expect("rotate on a");
    // A token minted with the new key on a verifies on b.
    let fresh =
        p.a.create_access_token(&alice)
            .await
            .expect("new key token");
    assert_eq!(fresh.record.key_id, new_key);
    p.b.verify(&fresh.token)
        .await
        .expect("b verifies the new key");
    // b mints with the new key too (its cached keys are renewed).
    let from_b = p.b.create_access_token(&alice).await.expect("b mints");
    assert_eq!(
        from_b.record.key_id, new_key,
        "b mints with the current key"
    );
    // Retiring the old key through a is honoured by b at once.
    p.a.retire_key(&admin, old.record.key_id)
        .await
        .expect("retire");
    let err = p.b.verify(&old.token).await.expect_err("retired on b");
    assert!(matches!(err, Error::Token(TokenError::KeyRetired)), "{err}");
    p.b.verify(&fresh.token)
        .await
        .expect("the new key still verifies");
}

async fn make_key_admin(p: &Pair) -> Caller {
    zone_admin(p, "keyadmin", ozmint::model::ZonePrivilege::TokensManage).await
}

/// A new user `name` holding the zone privilege `privilege`.
async fn zone_admin(p: &Pair, name: &str, privilege: ozmint::model::ZonePrivilege) -> Caller {
    let mut zone = ZonePrivileges::empty();
    zone.insert(privilege);
    let id =
        p.a.store()
            .create_user(name, "x".into(), zone)
            .await
            .expect("zone admin");
    Caller::user(id)
}

async fn unique_names(p: Pair) {
    let p = Arc::new(p);
    for round in 0..10 {
        let mut tasks = Vec::new();
        for i in 0..8 {
            let p = p.clone();
            tasks.push(tokio::spawn(async move {
                let zone = if i % 2 == 0 { &p.a } else { &p.b };
                zone.store()
                    .create_user(&format!("dup{round}"), "h".into(), ZonePrivileges::empty())
                    .await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(_) => ok += 1,
                Err(Error::AlreadyExists(Entity::User)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(ok, 1, "round {round}: one user per name");
    }
    assert!(p.a.store().check().await.expect("check").is_empty());
}

async fn concurrent_cycle(p: Pair) {
    let p = Arc::new(p);
    // x -> y through a and y -> x through b at the same moment: never both.
    for round in 0..20 {
        let s = p.a.store();
        let x = s.create_group(&format!("x{round}"), None).await.unwrap();
        let y = s.create_group(&format!("y{round}"), None).await.unwrap();
        let (p1, p2) = (p.clone(), p.clone());
        let t1 = tokio::spawn(async move {
            p1.a.store()
                .put_relation(&GROUP_CHILDREN_REL, &x, &y, &GroupPrivileges::empty())
                .await
        });
        let t2 = tokio::spawn(async move {
            p2.b.store()
                .put_relation(&GROUP_CHILDREN_REL, &y, &x, &GroupPrivileges::empty())
                .await
        });
        let (r1, r2) = (t1.await.unwrap(), t2.await.unwrap());
        let oks = [&r1, &r2].iter().filter(|r| r.is_ok()).count();
        assert_eq!(oks, 1, "round {round}: {r1:?} {r2:?}");
        assert!(
            [&r1, &r2].iter().any(|r| matches!(r, Err(Error::Cycle))),
            "round {round}: the other is a cycle"
        );
    }
}

async fn concurrent_privilege_grants(p: Pair) {
    let p = Arc::new(p);
    s_member(&p).await;
    let privs = [
        GroupPrivilege::ChangeData,
        GroupPrivilege::InviteUser,
        GroupPrivilege::RemoveUser,
        GroupPrivilege::JoinSpace,
        GroupPrivilege::CreateSpace,
        GroupPrivilege::SetPrivileges,
    ];
    let mut tasks = Vec::new();
    for (i, priv_) in privs.into_iter().enumerate() {
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            let zone = if i % 2 == 0 { &p.a } else { &p.b };
            zone.store()
                .update_relation(&GROUP_USERS_REL, &p.group, &p.alice, |old| {
                    let mut new = old;
                    new.insert(priv_);
                    Ok(new)
                })
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("grant");
    }
    let now =
        p.b.store()
            .relation(&GROUP_USERS_REL, &p.group, &p.alice)
            .await
            .unwrap()
            .unwrap();
    for priv_ in privs {
        assert!(now.contains(priv_), "{priv_:?} lost: {now:?}");
    }
}

async fn s_member(p: &Pair) {
    p.a.store()
        .put_relation(
            &SPACE_USERS_REL,
            &p.space,
            &p.alice,
            &SpacePrivileges::member_default(),
        )
        .await
        .unwrap();
}

async fn last_admin_survives(p: Pair) {
    let p = Arc::new(p);
    let set = ozmint::model::ZonePrivilege::SetPrivileges;
    let mut all = ZonePrivileges::empty();
    all.insert(set);
    let x = p.a.store().create_user("x", "h".into(), all).await.unwrap();
    let y = p.a.store().create_user("y", "h".into(), all).await.unwrap();
    for round in 0..40 {
        for id in [x, y] {
            p.a.store()
                .update_user(&id, |u| {
                    u.zone_privileges.insert(set);
                    Ok(())
                })
                .await
                .unwrap();
        }
        let strip = |zone: usize, id: Id| {
            let p = p.clone();
            tokio::spawn(async move {
                let z = if zone == 0 { &p.a } else { &p.b };
                z.store()
                    .update_user(&id, |u| {
                        u.zone_privileges = ZonePrivileges::empty();
                        Ok(())
                    })
                    .await
            })
        };
        let (r1, r2) = (strip(0, x), strip(1, y));
        let (r1, r2) = (r1.await.unwrap(), r2.await.unwrap());
        let left = p.b.store().admins().await.unwrap();
        assert_eq!(left.len(), 1, "round {round}: {r1:?} {r2:?}");
        assert!(
            matches!(
                (&r1, &r2),
                (Ok(_), Err(Error::LastAdmin)) | (Err(Error::LastAdmin), Ok(_))
            ),
            "round {round}: {r1:?} {r2:?}"
        );
    }
}

/// b authenticates with `token`, then `change` runs through a: b must
/// refuse the token on its very next request, though it verified it (and
/// remembered it verified) just before.
async fn refused_on_b_after(
    p: &Pair,
    token: &str,
    change: impl std::future::Future<Output = ()>,
) -> AuthFailure {
    let ctx = RequestContext::rest(PEER);
    let creds = || Some(Credentials::Token(token.to_owned()));
    for _ in 0..2 {
        let ok =
            p.b.authenticate_request(creds(), &ctx)
                .await
                .expect("b accepts it");
        assert_eq!(ok.caller.subject, Subject::User(p.alice));
    }
    change.await;
    p.b.authenticate_request(creds(), &ctx)
        .await
        .expect_err("b must refuse it at once")
}

/// A named access token of alice, minted through a.
async fn named_token(p: &Pair) -> ozmint::ops::named_tokens::NamedTokenInfo {
    let req = NamedTokenRequest::from_json(&serde_json::json!({ "name": "cached token" }));
    p.a.create_named_token(
        &Caller::user(p.alice),
        Subject::User(p.alice),
        req.expect("request"),
    )
    .await
    .expect("named token")
}

async fn modern_token_revocation(p: Pair) {
    let alice = Caller::user(p.alice);
    let named = named_token(&p).await;
    let revoke = |revoked: bool| {
        let patch =
            NamedTokenPatch::from_json(&serde_json::json!({ "revoked": revoked })).expect("patch");
        let (a, id) = (&p.a, named.id);
        async move {
            a.update_named_token(&alice, &id, patch)
                .await
                .expect("update")
        }
    };
    let err = refused_on_b_after(&p, &named.token, revoke(true)).await;
    assert!(
        matches!(err, AuthFailure::Auth(AuthError::Onezone(OzError::Revoked))),
        "{err:?}"
    );
    // Unrevoked through a, b accepts it again at once.
    revoke(false).await;
    let ctx = RequestContext::rest(PEER);
    p.b.authenticate_request(Some(Credentials::Token(named.token.clone())), &ctx)
        .await
        .expect("unrevoked");
    let deleted = async {
        p.a.delete_named_token(&alice, &named.id)
            .await
            .expect("delete");
    };
    let err = refused_on_b_after(&p, &named.token, deleted).await;
    assert!(
        matches!(
            err,
            AuthFailure::Auth(AuthError::Onezone(OzError::Token(v2::Error::Invalid)))
        ),
        "{err:?}"
    );
    // Temporary tokens: a new generation through a.
    let body = serde_json::json!({ "caveats": [{ "type": "time", "validUntil": ozmint::model::now() + 600 }] });
    let temporary =
        p.a.create_temporary_token(&alice, Subject::User(p.alice), &body)
            .await
            .expect("temporary token")
            .token;
    let regenerate = async {
        p.a.revoke_temporary_tokens(&alice, Subject::User(p.alice))
            .await
            .expect("revoke temporary tokens");
    };
    let err = refused_on_b_after(&p, &temporary, regenerate).await;
    assert!(
        matches!(err, AuthFailure::Auth(AuthError::Onezone(OzError::Revoked))),
        "{err:?}"
    );
}

async fn subject_deletion(p: Pair) {
    let alice = Caller::user(p.alice);
    let legacy = p.a.create_access_token(&alice).await.expect("access token");
    let named = named_token(&p).await;
    let admin = zone_admin(&p, "deleter", ozmint::model::ZonePrivilege::UsersDelete).await;
    let ctx = RequestContext::rest(PEER);
    for t in [&legacy.token, &named.token] {
        for _ in 0..2 {
            p.b.authenticate_request(Some(Credentials::Token(t.clone())), &ctx)
                .await
                .expect("b accepts it");
        }
    }
    p.a.delete_user(&admin, p.alice)
        .await
        .expect("delete alice");
    let err =
        p.b.authenticate_request(Some(Credentials::Token(legacy.token.clone())), &ctx)
            .await
            .expect_err("the legacy token of a deleted user");
    // The user's token records go with the user.
    assert!(
        matches!(
            err,
            AuthFailure::Auth(AuthError::Gone | AuthError::BadToken(TokenError::Unknown))
        ),
        "{err:?}"
    );
    let err =
        p.b.authenticate_request(Some(Credentials::Token(named.token.clone())), &ctx)
            .await
            .expect_err("the named token of a deleted user");
    assert!(
        matches!(err, AuthFailure::Auth(AuthError::Onezone(_))),
        "{err:?}"
    );
}

/// A mint whose caller was authenticated before its target was deleted
/// (through the other instance) fails and leaves no token behind; mints
/// racing the deletion leave none either (`Store::check` finds a token
/// whose target is gone).
async fn mint_after_deletion(p: Pair) {
    let alice = Caller::user(p.alice);
    let admin = zone_admin(&p, "deleter", ozmint::model::ZonePrivilege::UsersDelete).await;
    for _ in 0..10 {
        p.b.create_access_token(&alice).await.expect("before");
    }
    let deleted = std::sync::atomic::AtomicBool::new(false);
    let racing = async {
        while !deleted.load(std::sync::atomic::Ordering::Acquire) {
            match p.b.create_access_token(&alice).await {
                Ok(_) => tokio::task::yield_now().await,
                Err(Error::NotFound(Entity::User)) => break,
                Err(e) => panic!("a mint racing the deletion: {e:?}"),
            }
        }
    };
    let delete = async {
        p.a.delete_user(&admin, p.alice)
            .await
            .expect("delete alice");
        deleted.store(true, std::sync::atomic::Ordering::Release);
    };
    tokio::join!(racing, delete);
    let late = p.b.create_access_token(&alice).await;
    assert!(
        matches!(late, Err(Error::NotFound(Entity::User))),
        "{late:?}"
    );
    let provider =
        p.b.mint(
            ozmint::model::TokenKind::Provider,
            Id::random(),
            Subject::User(p.alice),
        )
        .await;
    assert!(
        matches!(provider, Err(Error::NotFound(Entity::Provider))),
        "{provider:?}"
    );
    let problems = p.a.store().check().await.expect("check");
    assert!(problems.is_empty(), "{problems:?}");
}

on_both! {
    last_admin_survives_concurrent_strips => last_admin_survives;
    a_mint_after_its_target_is_deleted_fails_and_leaves_nothing => mint_after_deletion;
    double_spend_over_two_instances => double_spend;
    privilege_revocation_is_seen_by_the_other_instance => privilege_revocation;
    membership_removal_is_seen_by_the_other_instance => membership_removal;
    password_change_is_seen_by_the_other_instance => password_change;
    token_revocation_is_seen_by_the_other_instance => token_revocation;
    key_rotation_and_retirement_are_seen_by_the_other_instance => key_rotation_and_retirement;
    modern_token_revocation_is_seen_by_the_other_instance => modern_token_revocation;
    subject_deletion_is_seen_by_the_other_instance => subject_deletion;
    user_names_stay_unique_across_instances => unique_names;
    no_cycle_through_two_instances => concurrent_cycle;
    concurrent_privilege_grants_add_up => concurrent_privilege_grants;
}
