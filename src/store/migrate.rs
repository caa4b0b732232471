//! Schema migrations, each in chunks that leave the store consistent.
//!
//! Versions (the byte at `meta/schema`):
//! - 1, 2: written by releases that kept one sled tree per table. Version 1
//!   stored groups without their type. [`from_sled_trees`] copies such a
//!   store into the flat keyspace (keeping its version number), chunk by
//!   chunk; the legacy trees are dropped only after the last chunk, which
//!   writes the version, so an interrupted copy simply runs again.
//! - 3: the flat keyspace ([`super::schema`]). [`to_current`] brings a
//!   copied version 1 or 2 there: version 1 groups are rewritten with their
//!   type (`role`) in guarded chunks that record how far they got.
//! - 4: the index of administrators (`admin_userid`), built from the user
//!   records in chunks the same way.
//! - 5: the tables of Onedata 20.02+ tokens (`tokenid_namedtoken`,
//!   `subject_tokenname_tokenid`, `subject_temporarysecret`). A version 4
//!   store has none of their keys, so the step only writes the version; it
//!   exists so that releases which do not know these tables refuse a store
//!   that may hold them instead of calling their keys stray.

use super::schema::{GROUPS, META};
use crate::codec::{self, CodecError};
use crate::engine::sled::SledEngine;
use crate::engine::{Commit, Durability, Engine, EngineError, Guard, Write};
use crate::error::{Error, Result};
use crate::model::{Group, GroupType};

/// The current schema version.
pub const SCHEMA: u8 = 5;

/// Entries per chunk of a migration.
const CHUNK: usize = 500;

fn schema_key() -> Vec<u8> {
    META.key(&"schema")
}

fn cursor_key() -> Vec<u8> {
    META.key(&"migration_cursor")
}

/// The flat key of an entry of a legacy tree.
fn legacy_key(tree: &str, key: &[u8]) -> Option<Vec<u8>> {
    let (table, rest) = match tree {
        "tokens" => match key.split_first() {
            Some((b'r', rest)) => ("tokenid_token", rest),
            Some((b't', rest)) => ("targetid_tokenid", rest),
            Some((b'e', rest)) => ("expiry_tokenid", rest),
            _ => return None,
        },
        "meta"
        | "userid_user"
        | "username_userid"
        | "groupid_group"
        | "spaceid_space"
        | "providerid_provider"
        | "groupid_userid_privileges"
        | "userid_groupid"
        | "parentid_childid_privileges"
        | "childid_parentid"
        | "spaceid_userid_privileges"
        | "userid_spaceid"
        | "spaceid_groupid_privileges"
        | "groupid_spaceid"
        | "spaceid_providerid_support"
        | "providerid_spaceid"
        | "keyid_rootkey" => (tree, key),
        _ => return None,
    };
    Some([table.as_bytes(), b"/", rest].concat())
}

/// Copies a store of one-tree-per-table layout into the flat keyspace, then
/// drops the old trees. A no-op for a store that has none.
pub async fn from_sled_trees(engine: &SledEngine) -> Result<()> {
    let trees = engine.legacy_trees()?;
    if trees.is_empty() {
        return Ok(());
    }
    let copied = engine.get_many(&[&schema_key()]).await?[0].is_some();
    if !copied {
        let known: Vec<&String> = trees.iter().filter(|t| t.as_str() != "meta").collect();
        for tree in known {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = engine.legacy_page(tree, after.as_deref(), CHUNK)?;
                let Some((last, _)) = page.last() else { break };
                after = Some(last.clone());
                let writes: Vec<Write> = page
                    .into_iter()
                    .filter_map(|(k, v)| legacy_key(tree, &k).map(|k| Write::Put(k, v)))
                    .collect();
                engine
                    .commit(Commit::new(Vec::new(), writes, Durability::Eventual))
                    .await?;
            }
        }
        // The old version number goes last, with an immediate commit: once it
        // is in the flat keyspace the copy is complete.
        let has_meta = trees.iter().any(|t| t == "meta");
        let meta = if has_meta {
            engine.legacy_page("meta", None, CHUNK)?
        } else {
            Vec::new()
        };
        let meta_version = meta
            .iter()
            .find(|(k, _)| k.as_slice() == b"schema")
            .map(|(_, v)| v.clone());
        let mut writes: Vec<Write> = meta
            .into_iter()
            .filter(|(k, _)| k.as_slice() != b"schema")
            .filter_map(|(k, v)| legacy_key("meta", &k).map(|k| Write::Put(k, v)))
            .collect();
        let version = meta_version.unwrap_or_else(|| vec![2]);
        writes.push(Write::Put(schema_key(), version));
        engine
            .commit(Commit::new(Vec::new(), writes, Durability::Immediate))
            .await?;
    }
    for tree in trees {
        engine.drop_legacy_tree(&tree)?;
    }
    engine.flush().await?;
    Ok(())
}

/// Brings the flat keyspace to [`SCHEMA`]. Safe to run from several
/// processes at once: every step is a guarded commit.
pub async fn to_current(engine: &dyn Engine) -> Result<()> {
    loop {
        let version = engine.get_many(&[&schema_key()]).await?.pop().flatten();
        match version.as_deref() {
            Some([SCHEMA]) => return Ok(()),
            None => {
                let any = engine.scan(&[], None, 1).await?;
                if !any.entries.is_empty() {
                    // Another process may have created the store since the
                    // version was read: the version is written first and
                    // never removed, so a version now means just that.
                    if engine.get_many(&[&schema_key()]).await?[0].is_some() {
                        continue;
                    }
                    return Err(Error::Corrupt {
                        tree: META.name,
                        error: CodecError::Malformed,
                    });
                }
                set_version(engine, None, SCHEMA).await?;
            }
            Some([4]) => set_version(engine, Some(4), 5).await?,
            Some([3]) => {
                index_admins(engine).await?;
                set_version(engine, Some(3), 4).await?;
            }
            Some([2]) => set_version(engine, Some(2), 3).await?,
            Some([1]) => {
                upgrade_groups_v1(engine).await?;
                set_version(engine, Some(1), 2).await?;
            }
            Some(other) => {
                return Err(Error::Corrupt {
                    tree: META.name,
                    error: CodecError::UnknownVersion(other.first().copied().unwrap_or(0)),
                })
            }
        }
    }
}

async fn set_version(engine: &dyn Engine, from: Option<u8>, to: u8) -> Result<()> {
    let guard = Guard {
        key: schema_key(),
        expect: from.map(|v| vec![v]),
    };
    let writes = vec![
        Write::Put(schema_key(), vec![to]),
        Write::Delete(cursor_key()),
    ];
    match engine
        .commit(Commit::new(vec![guard], writes, Durability::Immediate))
        .await
    {
        // Another process did it: the loop reads the version again.
        Ok(()) | Err(EngineError::Conflict) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Writes an `admin_userid` entry for every user holding `set_privileges`.
async fn index_admins(engine: &dyn Engine) -> Result<()> {
    use super::schema::{ADMINS, USERS};
    rewrite_in_chunks(engine, &USERS.prefix(), |k, v| {
        let user = USERS.decode(v)?;
        if !super::entities::is_admin(&user) {
            return Ok(None);
        }
        Ok(Some(Write::Put(
            ADMINS.key(&USERS.decode_key(k)?),
            Vec::new(),
        )))
    })
    .await
}

/// Version 1 groups had no type.
#[derive(bincode::Encode, bincode::Decode)]
struct GroupV1 {
    name: String,
    created: u64,
}

/// Rewrites version 1 group records with their type (`role`).
async fn upgrade_groups_v1(engine: &dyn Engine) -> Result<()> {
    let corrupt = |error| Error::Corrupt {
        tree: GROUPS.name,
        error,
    };
    rewrite_in_chunks(engine, &GROUPS.prefix(), |k, v| {
        let old: GroupV1 = codec::decode(v).map_err(corrupt)?;
        let group = Group {
            name: old.name,
            kind: GroupType::Role,
            created: old.created,
        };
        Ok(Some(Write::Put(
            k.to_vec(),
            codec::encode(&group).map_err(corrupt)?,
        )))
    })
    .await
}

/// Runs `step` over every entry under `prefix`, a chunk per commit; each
/// commit also records the last key done (guarded), so concurrent or resumed
/// runs neither skip nor redo an entry.
async fn rewrite_in_chunks(
    engine: &dyn Engine,
    prefix: &[u8],
    step: impl Fn(&[u8], &[u8]) -> Result<Option<Write>>,
) -> Result<()> {
    let per_commit = CHUNK
        .min(engine.limits().max_writes.saturating_sub(1))
        .max(1);
    loop {
        let cursor = engine.get_many(&[&cursor_key()]).await?.pop().flatten();
        let after = cursor.as_ref().map(|last| [prefix, last].concat());
        let page = engine.scan(prefix, after.as_deref(), per_commit).await?;
        let Some((last, _)) = page.entries.last() else {
            return Ok(());
        };
        let last = last[prefix.len()..].to_vec();
        let mut writes = Vec::with_capacity(page.entries.len() + 1);
        for (k, v) in &page.entries {
            writes.extend(step(k, v)?);
        }
        writes.push(Write::Put(cursor_key(), last));
        let guard = Guard {
            key: cursor_key(),
            expect: cursor,
        };
        match engine
            .commit(Commit::new(vec![guard], writes, Durability::Immediate))
            .await
        {
            Ok(()) | Err(EngineError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryEngine;
    use crate::engine::sled::SledOptions;
    use crate::model::Id;
    use crate::store::{DurabilityMode, Store};
    use std::sync::Arc;

    /// A version 1 store (one sled tree per table, groups without a type)
    /// opens as version 3 with every group of type `role`; other records are
    /// untouched; the old trees are gone.
    #[tokio::test]
    async fn a_one_tree_per_table_version_1_store_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<Id> = (0..1200).map(|_| Id::random()).collect();
        let user = Id::random();
        let boss_id = Id::random();
        {
            let db = ::sled::open(dir.path()).unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert(b"schema", &[1])
                .unwrap();
            let groups = db.open_tree("groupid_group").unwrap();
            for (i, id) in ids.iter().enumerate() {
                let old = GroupV1 {
                    name: format!("g{i}"),
                    created: 7,
                };
                groups
                    .insert(id.as_bytes(), codec::encode(&old).unwrap())
                    .unwrap();
            }
            let rec = crate::model::User {
                name: "alice".into(),
                password_hash: "h".into(),
                zone_privileges: crate::model::ZonePrivileges::empty(),
                created: 1,
            };
            db.open_tree("userid_user")
                .unwrap()
                .insert(user.as_bytes(), codec::encode(&rec).unwrap())
                .unwrap();
            db.open_tree("username_userid")
                .unwrap()
                .insert(b"alice", user.as_bytes())
                .unwrap();
            let boss = crate::model::User {
                name: "boss".into(),
                password_hash: "h".into(),
                zone_privileges: crate::model::ZonePrivileges::all(),
                created: 1,
            };
            db.open_tree("userid_user")
                .unwrap()
                .insert(boss_id.as_bytes(), codec::encode(&boss).unwrap())
                .unwrap();
            db.open_tree("username_userid")
                .unwrap()
                .insert(b"boss", boss_id.as_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        let store = Store::open_sled(dir.path(), &SledOptions::default(), DurabilityMode::Durable)
            .await
            .unwrap();
        assert_eq!(
            store.get(&META, &"schema").await.unwrap(),
            Some(vec![SCHEMA])
        );
        for (i, id) in ids.iter().enumerate() {
            let g = store.group(id).await.unwrap().expect("group kept");
            assert_eq!(g.name, format!("g{i}"));
            assert_eq!(g.kind, GroupType::Role);
            assert_eq!(g.created, 7);
        }
        assert_eq!(
            store.user_by_name("alice").await.unwrap().map(|(id, _)| id),
            Some(user)
        );
        assert_eq!(
            store.admins().await.unwrap(),
            vec![boss_id],
            "administrators indexed"
        );
        assert!(store.check().await.unwrap().is_empty());
        drop(store);
        // Opening again is a no-op; the legacy trees are gone. (The last
        // flush task may hold the database for a moment after the drop.)
        let engine = loop {
            match SledEngine::open(dir.path(), &SledOptions::default()) {
                Ok(e) => break e,
                Err(EngineError::Unavailable(_)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert!(engine.legacy_trees().unwrap().is_empty());
        drop(engine);
        loop {
            match Store::open_sled(dir.path(), &SledOptions::default(), DurabilityMode::Durable)
                .await
            {
                Ok(_) => break,
                Err(crate::Error::Engine(EngineError::Unavailable(_))) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// A memory engine on which another process opens the store (writes
    /// the schema version, then a record) right after the first read of the
    /// version, as when several front ends start at once on an empty store.
    struct OpenedMeanwhile {
        inner: Arc<MemoryEngine>,
        first: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl Engine for OpenedMeanwhile {
        fn name(&self) -> &'static str {
            "opened-meanwhile"
        }
        fn limits(&self) -> crate::engine::Limits {
            self.inner.limits()
        }
        async fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, EngineError> {
            let got = self.inner.get_many(keys).await?;
            if self.first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                let other = Store::open(self.inner.clone(), DurabilityMode::Durable)
                    .await
                    .expect("the other process opens the store");
                other
                    .create_space("theirs", None)
                    .await
                    .expect("and writes");
            }
            Ok(got)
        }
        async fn scan(
            &self,
            prefix: &[u8],
            after: Option<&[u8]>,
            limit: usize,
        ) -> Result<crate::engine::Page, EngineError> {
            self.inner.scan(prefix, after, limit).await
        }
        async fn snapshot(&self) -> Result<Box<dyn crate::engine::Snapshot>, EngineError> {
            self.inner.snapshot().await
        }
        async fn commit(&self, commit: Commit) -> Result<(), EngineError> {
            self.inner.commit(commit).await
        }
        async fn health(&self) -> Result<(), EngineError> {
            self.inner.health().await
        }
    }

    /// Regression: a store found without a schema version and then not
    /// empty was called corrupt, though another process had just created it
    /// (three front ends starting at once on an empty etcd prefix: one of
    /// them failed with "corrupt record in meta").
    #[tokio::test]
    async fn a_store_created_by_another_process_meanwhile_opens() {
        let engine = Arc::new(OpenedMeanwhile {
            inner: Arc::new(MemoryEngine::new()),
            first: std::sync::atomic::AtomicBool::new(true),
        });
        let store = Store::open(engine, DurabilityMode::Durable)
            .await
            .expect("opens");
        assert_eq!(
            store.get(&META, &"schema").await.unwrap(),
            Some(vec![SCHEMA])
        );
        assert_eq!(store.spaces(None, 10).await.unwrap().0.len(), 1);
    }

    #[tokio::test]
    async fn an_unknown_schema_is_refused() {
        let engine = Arc::new(MemoryEngine::new());
        engine
            .commit(Commit::new(
                vec![],
                vec![Write::Put(schema_key(), vec![9])],
                Durability::Immediate,
            ))
            .await
            .unwrap();
        let err = Store::open(engine, DurabilityMode::Durable)
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().contains('9'), "{err}");
    }
}
