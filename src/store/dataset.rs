//! Whole data sets in and out of a store (the format of `data/demo.json`).
//!
//! A data set is JSON: users (with a plain `password`, hashed on import, or an
//! exported `password_hash`), groups with their users and child groups, spaces
//! with their users, groups and supporting providers, and providers. Privilege
//! lists are arrays of names, or `"all"`, or `"member"` (the member defaults).
//! Token records and root keys are not part of a data set.
//!
//! Imports commit with eventual durability and make everything durable at
//! the end. In [`ImportMode::Merge`] an entity or relation that exists
//! already is left as it is, so that several front ends loading the same
//! data set into one empty store at once end with one copy of it.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::relations::{
    Relation, GROUP_CHILDREN_REL, GROUP_USERS_REL, SPACE_GROUPS_REL, SPACE_PROVIDERS_REL,
    SPACE_USERS_REL,
};
use super::schema::{KeyPart, Table};
use super::schema::{StoredValue, GROUPS, PROVIDERS, SPACES, USERS};
use super::{Store, PAGE_MAX};
use crate::engine::{Durability, Snapshot};
use crate::error::{Error, Result};
use crate::model::{
    now, GroupPrivileges, GroupType, Id, PrivSet, Privilege, SpacePrivileges, Support, User,
    ZonePrivileges,
};

/// A whole data set.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// Users.
    #[serde(default)]
    pub users: Vec<DatasetUser>,
    /// Groups with their members.
    #[serde(default)]
    pub groups: Vec<DatasetGroup>,
    /// Spaces with their members and supports.
    #[serde(default)]
    pub spaces: Vec<DatasetSpace>,
    /// Providers.
    #[serde(default)]
    pub providers: Vec<DatasetProvider>,
}

/// A user of a data set.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetUser {
    /// Id (43 characters).
    pub id: String,
    /// Login name.
    pub username: String,
    /// Plain password (demo and hand-written sets only; hashed on import).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Argon2id PHC hash (exports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// Zone privileges.
    #[serde(default)]
    pub zone_privileges: Privs,
}

impl std::fmt::Debug for DatasetUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatasetUser")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A member (user, group or provider) of a group or space, with its privileges.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetMember {
    /// Member id.
    pub id: String,
    /// Privileges of the member.
    #[serde(default)]
    pub privileges: Privs,
}

/// A group of a data set.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetGroup {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Onezone's group type; `role` when absent.
    #[serde(default, rename = "type")]
    pub kind: GroupType,
    /// Direct users.
    #[serde(default)]
    pub users: Vec<DatasetMember>,
    /// Direct child groups.
    #[serde(default)]
    pub children: Vec<DatasetMember>,
}

/// A space of a data set.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpace {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Direct users.
    #[serde(default)]
    pub users: Vec<DatasetMember>,
    /// Direct groups.
    #[serde(default)]
    pub groups: Vec<DatasetMember>,
    /// Supporting providers.
    #[serde(default)]
    pub providers: Vec<DatasetSupport>,
}

/// A support of a space by a provider.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSupport {
    /// Provider id.
    pub id: String,
    /// Size in bytes.
    pub size: u64,
}

/// A provider of a data set.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetProvider {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Domain.
    pub domain: String,
}

/// A privilege list: names, `"all"` or `"member"`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Privs {
    /// `"all"` or `"member"`.
    Preset(String),
    /// Explicit names.
    List(Vec<String>),
}

impl Default for Privs {
    fn default() -> Self {
        Privs::List(Vec::new())
    }
}

impl Privs {
    fn resolve<P: Privilege>(&self, member: PrivSet<P>) -> Result<PrivSet<P>> {
        match self {
            Privs::Preset(p) if p == "all" => Ok(PrivSet::all()),
            Privs::Preset(p) if p == "member" => Ok(member),
            Privs::Preset(p) => Err(Error::Invalid(format!("unknown privilege preset {p:?}"))),
            Privs::List(names) => PrivSet::from_names(names)
                .map_err(|n| Error::Invalid(format!("unknown privilege {n:?}"))),
        }
    }

    fn of<P: Privilege>(set: PrivSet<P>) -> Self {
        Privs::List(set.names().into_iter().map(String::from).collect())
    }
}

fn id(s: &str) -> Result<Id> {
    s.parse()
        .map_err(|_| Error::Invalid(format!("bad id {s:?} in data set")))
}

impl Dataset {
    /// Parses a data set from JSON.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Invalid(format!("data set: {e}")))
    }

    /// The same data set with every plain password replaced by its hash
    /// (slow: argon2 per user; run it off the async runtime).
    pub fn with_hashed_passwords(mut self, hash: impl Fn(&str) -> Result<String>) -> Result<Self> {
        for u in &mut self.users {
            if u.password_hash.is_none() {
                if let Some(p) = u.password.take() {
                    u.password_hash = Some(hash(&p)?);
                }
            }
        }
        Ok(self)
    }

    /// The data set as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// What an import does with entities and relations that exist already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportMode {
    /// Refuse them (`AlreadyExists`): an operator's import into a store.
    Strict,
    /// Leave them as they are: loading a known data set idempotently.
    Merge,
}

impl Store {
    /// Loads a data set. Plain passwords are hashed with `hash`. Entities are
    /// created before relations so the file order does not matter.
    pub async fn import(
        &self,
        set: &Dataset,
        hash: impl Fn(&str) -> Result<String>,
        mode: ImportMode,
    ) -> Result<()> {
        let skip = |r: Result<()>| match r {
            Err(Error::AlreadyExists(_)) if mode == ImportMode::Merge => Ok(()),
            other => other,
        };
        for u in &set.users {
            let password_hash = match (&u.password, &u.password_hash) {
                (Some(p), None) => hash(p)?,
                (None, Some(h)) => h.clone(),
                _ => {
                    return Err(Error::Invalid(format!(
                        "user {:?} needs exactly one of password and password_hash",
                        u.username
                    )))
                }
            };
            let user = User {
                name: u.username.clone(),
                password_hash,
                zone_privileges: u.zone_privileges.resolve(ZonePrivileges::empty())?,
                created: now(),
            };
            let (uid, user) = (id(&u.id)?, &user);
            skip(
                self.bulk(|mut tx| async move {
                    Store::insert_user_in(&mut tx, uid, user).await?;
                    Ok(tx.done(()))
                })
                .await,
            )?;
        }
        for g in &set.groups {
            let gid = id(&g.id)?;
            skip(self.insert_group(gid, &g.name, g.kind, None).await)?;
        }
        for s in &set.spaces {
            let sid = id(&s.id)?;
            skip(
                self.bulk(|mut tx| async move {
                    Store::insert_space_in(&mut tx, sid, &s.name).await?;
                    Ok(tx.done(()))
                })
                .await,
            )?;
        }
        for p in &set.providers {
            let pid = id(&p.id)?;
            skip(
                self.bulk(|mut tx| async move {
                    Store::insert_provider_in(&mut tx, pid, &p.name, &p.domain).await?;
                    Ok(tx.done(()))
                })
                .await,
            )?;
        }
        for g in &set.groups {
            let gid = id(&g.id)?;
            for m in &g.users {
                let p = m.privileges.resolve(GroupPrivileges::member_default())?;
                self.import_relation(&GROUP_USERS_REL, gid, id(&m.id)?, p, mode)
                    .await?;
            }
            for m in &g.children {
                let p = m.privileges.resolve(GroupPrivileges::member_default())?;
                self.import_relation(&GROUP_CHILDREN_REL, gid, id(&m.id)?, p, mode)
                    .await?;
            }
        }
        for s in &set.spaces {
            let sid = id(&s.id)?;
            for m in &s.users {
                let p = m.privileges.resolve(SpacePrivileges::member_default())?;
                self.import_relation(&SPACE_USERS_REL, sid, id(&m.id)?, p, mode)
                    .await?;
            }
            for m in &s.groups {
                let p = m.privileges.resolve(SpacePrivileges::member_default())?;
                self.import_relation(&SPACE_GROUPS_REL, sid, id(&m.id)?, p, mode)
                    .await?;
            }
            for m in &s.providers {
                let support = Support {
                    size: m.size,
                    since: now(),
                };
                self.import_relation(&SPACE_PROVIDERS_REL, sid, id(&m.id)?, support, mode)
                    .await?;
            }
        }
        self.sync().await
    }

    /// A transaction committed with eventual durability.
    async fn bulk<'s, T, F, Fut>(&'s self, mut f: F) -> Result<T>
    where
        F: FnMut(super::Txn<'s>) -> Fut,
        Fut: std::future::Future<Output = Result<super::Done<'s, T>>>,
    {
        self.transact(|mut tx| {
            tx.set_durability(Durability::Eventual);
            f(tx)
        })
        .await
    }

    async fn import_relation<V: StoredValue + Send + Sync>(
        &self,
        r: &Relation<V>,
        a: Id,
        b: Id,
        value: V,
        mode: ImportMode,
    ) -> Result<()> {
        let value = &value;
        self.bulk(|mut tx| async move {
            if mode == ImportMode::Merge && tx.exists(&r.fwd, &(a, b)).await? {
                return Ok(tx.done(()));
            }
            Store::put_relation_in(&mut tx, r, &a, &b, value).await?;
            Ok(tx.done(()))
        })
        .await
    }

    /// Writes the whole store (but tokens and keys) as a data set, read at
    /// one snapshot.
    pub async fn export(&self) -> Result<Dataset> {
        let snap = self.engine.snapshot().await?;
        let snap = snap.as_ref();
        let mut set = Dataset::default();
        let users = all(snap, &USERS).await?;
        let groups = all(snap, &GROUPS).await?;
        let spaces = all(snap, &SPACES).await?;
        let providers = all(snap, &PROVIDERS).await?;
        let (live_users, live_groups, live_providers) =
            (ids_of(&users), ids_of(&groups), ids_of(&providers));
        for (uid, u) in &users {
            set.users.push(DatasetUser {
                id: uid.to_string(),
                username: u.name.clone(),
                password: None,
                password_hash: Some(u.password_hash.clone()),
                zone_privileges: Privs::of(u.zone_privileges),
            });
        }
        for (gid, g) in &groups {
            set.groups.push(DatasetGroup {
                id: gid.to_string(),
                name: g.name.clone(),
                kind: g.kind,
                users: members(live(under(snap, &GROUP_USERS_REL, gid).await?, &live_users)),
                children: members(live(
                    under(snap, &GROUP_CHILDREN_REL, gid).await?,
                    &live_groups,
                )),
            });
        }
        for (sid, s) in &spaces {
            let supports = live(
                under(snap, &SPACE_PROVIDERS_REL, sid).await?,
                &live_providers,
            );
            set.spaces.push(DatasetSpace {
                id: sid.to_string(),
                name: s.name.clone(),
                users: members(live(under(snap, &SPACE_USERS_REL, sid).await?, &live_users)),
                groups: members(live(
                    under(snap, &SPACE_GROUPS_REL, sid).await?,
                    &live_groups,
                )),
                providers: supports
                    .into_iter()
                    .map(|((_, p), s)| DatasetSupport {
                        id: p.to_string(),
                        size: s.size,
                    })
                    .collect(),
            });
        }
        for (pid, p) in &providers {
            set.providers.push(DatasetProvider {
                id: pid.to_string(),
                name: p.name.clone(),
                domain: p.domain.clone(),
            });
        }
        Ok(set)
    }
}

fn ids_of<T>(list: &[(Id, T)]) -> HashSet<Id> {
    list.iter().map(|(id, _)| *id).collect()
}

/// The edges whose far end is live (a deletion may still be cascading).
fn live<V>(edges: Vec<((Id, Id), V)>, alive: &HashSet<Id>) -> Vec<((Id, Id), V)> {
    edges
        .into_iter()
        .filter(|((_, b), _)| alive.contains(b))
        .collect()
}

fn members<P: Privilege>(list: Vec<((Id, Id), PrivSet<P>)>) -> Vec<DatasetMember> {
    list.into_iter()
        .map(|((_, id), p)| DatasetMember {
            id: id.to_string(),
            privileges: Privs::of(p),
        })
        .collect()
}

/// Every entry of a table at the snapshot.
async fn all<K: KeyPart, V: StoredValue>(
    snap: &dyn Snapshot,
    table: &Table<K, V>,
) -> Result<Vec<(K, V)>> {
    entries(snap, table, table.prefix()).await
}

/// Every edge `a -> *` of a relation at the snapshot.
async fn under<V: StoredValue>(
    snap: &dyn Snapshot,
    r: &Relation<V>,
    a: &Id,
) -> Result<Vec<((Id, Id), V)>> {
    entries(snap, &r.fwd, r.fwd.sub_prefix(a)).await
}

async fn entries<K: KeyPart, V: StoredValue>(
    snap: &dyn Snapshot,
    table: &Table<K, V>,
    prefix: Vec<u8>,
) -> Result<Vec<(K, V)>> {
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = snap.scan(&prefix, after.as_deref(), PAGE_MAX).await?;
        for (k, v) in &page.entries {
            out.push((table.decode_key(k)?, table.decode(v)?));
        }
        match page.next_after() {
            Some(a) => after = Some(a.to_vec()),
            None => return Ok(out),
        }
    }
}
