//! The store on its own: effective privileges, cycles, deletions that cascade
//! in bounded steps, interrupted deletions finished on open, shared flushes.

use std::sync::Arc;

use ozmint::engine::memory::MemoryEngine;
use ozmint::engine::sled::{SledEngine, SledOptions};
use ozmint::engine::{Commit, Durability, Engine};
use ozmint::error::{Entity, Error};
use ozmint::model::{
    GroupPrivilege, GroupPrivileges, Id, SpacePrivilege, SpacePrivileges, Subject, TokenKind,
    TokenRecord, TokenState, ZonePrivileges,
};
use ozmint::store::schema::{self, DELETING, GROUPS};
use ozmint::store::{GROUP_CHILDREN_REL, GROUP_USERS_REL, SPACE_GROUPS_REL};
use ozmint::{DurabilityMode, Store};

async fn user(s: &Store, name: &str) -> Id {
    s.create_user(name, "x".into(), ZonePrivileges::empty())
        .await
        .unwrap()
}

#[tokio::test]
async fn effective_privileges_follow_nested_groups_and_changes() {
    let s = Store::memory().await.unwrap();
    let alice = user(&s, "alice").await;
    let space = s.create_space("sp", None).await.unwrap();
    let top = s.create_group("top", None).await.unwrap();
    let mid = s.create_group("mid", None).await.unwrap();
    let bottom = s.create_group("bottom", None).await.unwrap();
    let member = GroupPrivileges::member_default();
    s.put_relation(&GROUP_CHILDREN_REL, &top, &mid, &member)
        .await
        .unwrap();
    s.put_relation(&GROUP_CHILDREN_REL, &mid, &bottom, &member)
        .await
        .unwrap();
    s.put_relation(&GROUP_USERS_REL, &bottom, &alice, &member)
        .await
        .unwrap();
    let add: SpacePrivileges = [SpacePrivilege::AddProvider].into_iter().collect();
    let has = |p: SpacePrivileges| p.contains(SpacePrivilege::AddProvider);
    assert!(!has(s
        .effective_space_privileges(&alice, &space)
        .await
        .unwrap()));
    s.put_relation(&SPACE_GROUPS_REL, &space, &top, &add)
        .await
        .unwrap();
    assert!(has(s
        .effective_space_privileges(&alice, &space)
        .await
        .unwrap()));
    // A cycle is refused, whatever its length.
    for (a, b) in [(bottom, top), (top, top), (mid, top)] {
        assert!(matches!(
            s.put_relation(&GROUP_CHILDREN_REL, &a, &b, &GroupPrivileges::empty())
                .await,
            Err(Error::Cycle)
        ));
    }
    // Cutting the middle link takes effect at once.
    assert!(s
        .remove_relation(&GROUP_CHILDREN_REL, &top, &mid)
        .await
        .unwrap());
    assert!(s
        .effective_space_privileges(&alice, &space)
        .await
        .unwrap()
        .is_empty());
    // Group privileges through a child group.
    let token: GroupPrivileges = [GroupPrivilege::CreateSpaceToken].into_iter().collect();
    s.put_relation(&GROUP_CHILDREN_REL, &top, &mid, &token)
        .await
        .unwrap();
    assert!(s
        .effective_group_privileges(&alice, &top)
        .await
        .unwrap()
        .contains(GroupPrivilege::CreateSpaceToken));
    s.update_relation(&GROUP_CHILDREN_REL, &top, &mid, |_| {
        Ok(GroupPrivileges::empty())
    })
    .await
    .unwrap();
    assert!(s
        .effective_group_privileges(&alice, &top)
        .await
        .unwrap()
        .is_empty());
    // Relations need both ends.
    assert!(matches!(
        s.put_relation(&GROUP_USERS_REL, &top, &Id::random(), &member)
            .await,
        Err(Error::NotFound(Entity::User))
    ));
    assert!(s.check().await.unwrap().is_empty());
}

/// Every key of every relation table that names `id`.
async fn keys_naming(s: &Store, id: &Id) -> Vec<String> {
    let mut found = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = s.engine().scan(&[], after.as_deref(), 1000).await.unwrap();
        for (k, _) in &page.entries {
            if k.windows(32).any(|w| w == id.as_bytes()) {
                found.push(String::from_utf8_lossy(&k[..k.len().min(30)]).into_owned());
            }
        }
        match page.next_after() {
            Some(a) => after = Some(a.to_vec()),
            None => return found,
        }
    }
}

#[tokio::test]
async fn deleting_a_group_removes_every_edge() {
    let s = Store::memory().await.unwrap();
    let alice = user(&s, "alice").await;
    let space = s.create_space("sp", Some(alice)).await.unwrap();
    let parent = s.create_group("p", Some(alice)).await.unwrap();
    let g = s.create_group("g", Some(alice)).await.unwrap();
    let child = s.create_group("c", None).await.unwrap();
    let e = GroupPrivileges::empty();
    s.put_relation(&GROUP_CHILDREN_REL, &parent, &g, &e)
        .await
        .unwrap();
    s.put_relation(&GROUP_CHILDREN_REL, &g, &child, &e)
        .await
        .unwrap();
    s.put_relation(&SPACE_GROUPS_REL, &space, &g, &SpacePrivileges::empty())
        .await
        .unwrap();
    s.delete(Entity::Group, &g).await.unwrap();
    assert_eq!(keys_naming(&s, &g).await, Vec::<String>::new());
    assert_eq!(
        s.user_reach(&alice).await.unwrap().len(),
        1,
        "only p is left"
    );
    assert!(matches!(
        s.delete(Entity::Group, &g).await,
        Err(Error::NotFound(Entity::Group))
    ));
    assert!(s.check().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_deletion_larger_than_one_commit_cascades_in_steps() {
    for tiny in [false, true] {
        a_deletion_larger_than_one_commit_cascades_in_steps_on(tiny).await;
    }
}

async fn a_deletion_larger_than_one_commit_cascades_in_steps_on(tiny: bool) {
    let engine = if tiny {
        MemoryEngine::with_limits(super::instances::TINY)
    } else {
        MemoryEngine::new()
    };
    let s = Store::open(Arc::new(engine), DurabilityMode::Durable)
        .await
        .unwrap();
    let limit = s.engine().limits().max_writes;
    let group = s.create_group("big", None).await.unwrap();
    let space = s.create_space("s", None).await.unwrap();
    // Each membership is two keys: more than one commit can hold.
    let n = limit / 2 + 50;
    for i in 0..n {
        let u = user(&s, &format!("u{i}")).await;
        s.put_relation(&GROUP_USERS_REL, &group, &u, &GroupPrivileges::empty())
            .await
            .unwrap();
    }
    s.put_relation(&SPACE_GROUPS_REL, &space, &group, &SpacePrivileges::all())
        .await
        .unwrap();
    s.delete(Entity::Group, &group).await.unwrap();
    assert!(keys_naming(&s, &group).await.is_empty());
    assert!(s
        .get(&DELETING, &(Entity::Group, group))
        .await
        .unwrap()
        .is_none());
    assert!(s.check().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_interrupted_deletion_grants_nothing_and_is_finished_on_open() {
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
    let s = Store::open(engine.clone(), DurabilityMode::Durable)
        .await
        .unwrap();
    let alice = user(&s, "alice").await;
    let space = s.create_space("s", None).await.unwrap();
    let g = s.create_group("g", None).await.unwrap();
    s.put_relation(&GROUP_USERS_REL, &g, &alice, &GroupPrivileges::all())
        .await
        .unwrap();
    s.put_relation(&SPACE_GROUPS_REL, &space, &g, &SpacePrivileges::all())
        .await
        .unwrap();
    assert!(!s
        .effective_space_privileges(&alice, &space)
        .await
        .unwrap()
        .is_empty());
    // What a crash right after the first step of `delete` leaves: the record
    // gone, the deletion marked, the edges still there.
    s.transact(|mut tx| async move {
        tx.delete(&GROUPS, &g);
        tx.put(&DELETING, &(Entity::Group, g), &())?;
        Ok(tx.done(()))
    })
    .await
    .unwrap();
    assert!(
        s.effective_space_privileges(&alice, &space)
            .await
            .unwrap()
            .is_empty(),
        "a group being deleted grants nothing"
    );
    let (mine, _) = s
        .memberships(&GROUP_USERS_REL, &alice, None, 10)
        .await
        .unwrap();
    assert!(mine.is_empty(), "listings skip it");
    assert!(
        s.check().await.unwrap().is_empty(),
        "a running cascade is no problem"
    );
    assert!(
        matches!(
            s.put_relation(&GROUP_USERS_REL, &g, &alice, &GroupPrivileges::all())
                .await,
            Err(Error::NotFound(Entity::Group))
        ),
        "nothing attaches to it any more"
    );
    assert!(
        matches!(
            s.insert_group(g, "again", Default::default(), None).await,
            Err(Error::AlreadyExists(Entity::Group))
        ),
        "its id is not reused while it cascades"
    );
    drop(s);
    let s = Store::open(engine, DurabilityMode::Durable).await.unwrap();
    assert!(keys_naming(&s, &g).await.is_empty(), "finished on open");
    assert!(s.check().await.unwrap().is_empty());
}

#[tokio::test]
async fn check_reports_broken_invariants() {
    let s = Store::memory().await.unwrap();
    let alice = user(&s, "alice").await;
    let g = s.create_group("g", None).await.unwrap();
    s.put_relation(&GROUP_USERS_REL, &g, &alice, &GroupPrivileges::all())
        .await
        .unwrap();
    // Break the reverse entry, add a stray key and mark the group deleted
    // while its record stays, behind the store's back.
    let rev = schema::USER_GROUPS.key(&(alice, g));
    let mark = schema::DELETING.key(&(ozmint::Entity::Group, g));
    s.engine()
        .commit(Commit::new(
            vec![],
            vec![
                ozmint::engine::Write::Delete(rev),
                ozmint::engine::Write::Put(b"stray/key".to_vec(), vec![]),
                ozmint::engine::Write::Put(mark, vec![]),
            ],
            Durability::Immediate,
        ))
        .await
        .unwrap();
    // A token whose target space was never created.
    let orphan = TokenRecord {
        kind: TokenKind::SpaceSupport,
        target: Id::random(),
        issuer: Subject::User(alice),
        key_id: 0,
        created: 1,
        expires: u64::MAX,
        state: TokenState::Active,
    };
    let orphan = &orphan;
    s.transact(|mut tx| async move {
        Store::insert_token_in(&mut tx, &Id::random(), orphan)?;
        Ok(tx.done(()))
    })
    .await
    .unwrap();
    let problems = s.check().await.unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("its target does not exist")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("no reverse entry")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("outside every table")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("a record under deletion")),
        "{problems:?}"
    );
}

/// A runtime whose blocking pool has a single thread: the sled engine's
/// flushes run there, so a test that holds it ([`hold_blocking_pool`]) makes
/// every durable commit wait for its flush as long as it needs.
fn one_blocking_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Occupies the blocking pool's one thread until the returned sender is dropped.
async fn hold_blocking_pool() -> std::sync::mpsc::Sender<()> {
    let (started, running) = tokio::sync::oneshot::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    tokio::task::spawn_blocking(move || {
        let _ = started.send(());
        let _ = released.recv();
    });
    running.await.expect("the blocking thread runs");
    release
}

#[test]
fn concurrent_durable_commits_share_flushes() {
    one_blocking_thread().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let engine = SledEngine::open(&dir.path().join("store"), &SledOptions::default()).unwrap();
        let s = Arc::new(
            Store::open(Arc::new(engine.clone()), DurabilityMode::Durable)
                .await
                .unwrap(),
        );
        let before = engine.flush_count();
        let write_outs_before = engine.write_out_count();
        // The commits come in while the first one's flush cannot run yet.
        let hold = hold_blocking_pool().await;
        let mut tasks = Vec::new();
        for i in 0..64 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.create_space(&format!("s{i}"), None).await
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        drop(hold);
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let flushes = engine.flush_count() - before;
        assert!(flushes >= 1, "durable commits flush");
        assert!(
            flushes < 64,
            "64 concurrent durable commits took {flushes} flushes"
        );
        let write_outs = engine.write_out_count() - write_outs_before;
        assert!(
            (1..64).contains(&write_outs),
            "64 concurrent durable commits went to sled in {write_outs} write-outs"
        );
        // Commits dropped while they wait for a flush (the first one leads
        // it, the others wait for it) leave no later commit stranded.
        let flushed = engine.flush_count();
        let hold = hold_blocking_pool().await;
        for i in 0..20 {
            let name = format!("x{i}");
            let commit = s.create_space(&name, None);
            tokio::pin!(commit);
            let first_poll = tokio::select! {
                biased;
                done = &mut commit => Some(done),
                () = std::future::ready(()) => None,
            };
            assert!(first_poll.is_none(), "commit x{i} waits for the held flush");
        }
        drop(hold);
        // Their flush ends first, so the next commit cannot share it.
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while engine.flush_count() == flushed {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the dropped commits' flush ends");
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            s.create_space("y", None),
        )
        .await
        .expect("not stranded")
        .unwrap();
    });
}
