//! Relations (memberships, supports) and effective privileges.
//!
//! A [`Relation`] is an edge `a -> b` stored twice, `fwd[a ++ b] = value`
//! and `rev[b ++ a] = ()`, always in one commit. Adding an edge reads both
//! ends (guarded), so it cannot land after either end was deleted; adding a
//! child group also reads the graph generation (guarded) before it looks for
//! a cycle, so two concurrent additions that would close a cycle together
//! cannot both commit.
//!
//! Effective privileges of a user: the union of the user's direct privileges
//! and those held by every group the user reaches through nested groups
//! (`user -> group -> parent group -> ...`). The reached groups are cached per
//! user at the graph generation ([`super::generation`]); a group whose record
//! is gone (a deletion still cascading) is neither reached nor passed through.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use super::generation::Generation;
use super::schema::{
    StoredValue, Table, GENERATION, GROUP_CHILDREN, GROUP_PARENTS, GROUP_SPACES, GROUP_USERS,
    PROVIDER_SPACES, SPACE_GROUPS, SPACE_PROVIDERS, SPACE_USERS, USER_GROUPS, USER_SPACES,
};
use super::{Store, Txn, REACH_CACHE_MAX};
use crate::error::{Entity, Error, Result};
use crate::model::{GroupPrivileges, Id, SpacePrivileges, Support};

/// A typed relation `a -> b` carrying a value of type `V`.
pub struct Relation<V: 'static> {
    /// Table keyed `a ++ b`, holding the value.
    pub fwd: Table<(Id, Id), V>,
    /// Table keyed `b ++ a`, empty values.
    pub rev: Table<(Id, Id), ()>,
    /// Kind of `a`.
    pub a: Entity,
    /// Kind of `b`.
    pub b: Entity,
}

/// Users in groups: `(group, user)` with the user's group privileges.
pub const GROUP_USERS_REL: Relation<GroupPrivileges> = Relation {
    fwd: GROUP_USERS,
    rev: USER_GROUPS,
    a: Entity::Group,
    b: Entity::User,
};
/// Child groups: `(parent, child)` with the child's privileges in the parent.
pub const GROUP_CHILDREN_REL: Relation<GroupPrivileges> = Relation {
    fwd: GROUP_CHILDREN,
    rev: GROUP_PARENTS,
    a: Entity::Group,
    b: Entity::Group,
};
/// Users in spaces: `(space, user)` with the user's space privileges.
pub const SPACE_USERS_REL: Relation<SpacePrivileges> = Relation {
    fwd: SPACE_USERS,
    rev: USER_SPACES,
    a: Entity::Space,
    b: Entity::User,
};
/// Groups in spaces: `(space, group)` with the group's space privileges.
pub const SPACE_GROUPS_REL: Relation<SpacePrivileges> = Relation {
    fwd: SPACE_GROUPS,
    rev: GROUP_SPACES,
    a: Entity::Space,
    b: Entity::Group,
};
/// Supports: `(space, provider)` with the support size.
pub const SPACE_PROVIDERS_REL: Relation<Support> = Relation {
    fwd: SPACE_PROVIDERS,
    rev: PROVIDER_SPACES,
    a: Entity::Space,
    b: Entity::Provider,
};

impl<V: StoredValue> Relation<V> {
    /// Writes `a -> b = value` (both directions) in `tx`.
    pub fn put_in(&self, tx: &mut Txn<'_>, a: &Id, b: &Id, value: &V) -> Result<()> {
        tx.put(&self.fwd, &(*a, *b), value)?;
        tx.put(&self.rev, &(*b, *a), &())
    }

    /// Removes `a -> b` (both directions) in `tx`.
    pub fn remove_in(&self, tx: &mut Txn<'_>, a: &Id, b: &Id) {
        tx.delete(&self.fwd, &(*a, *b));
        tx.delete(&self.rev, &(*b, *a));
    }

    /// Whether this relation is part of the group graph.
    fn is_group_children(&self) -> bool {
        self.fwd.name == GROUP_CHILDREN.name
    }
}

/// Reads an entity in `tx` (guarded); `NotFound` if it is gone or being
/// deleted. One key: a deletion removes the record in the commit that writes
/// its deletion mark, and creation refuses an id that is marked, so a record
/// is never there while its cascade runs (`Store::check` reports it if it is).
pub(crate) async fn require_in(tx: &mut Txn<'_>, kind: Entity, id: &Id) -> Result<()> {
    let Some(record) = super::schema::entity_key(kind, id) else {
        return Err(Error::NotFound(kind));
    };
    match tx.read_raw(&[record]).await?[..] {
        [Some(_)] => Ok(()),
        _ => Err(Error::NotFound(kind)),
    }
}

/// The union of the direct value of `(container, user)` in `direct` and of
/// `(container, g)` in `via` for every group `g` the user reaches, read in
/// `tx`: the graph generation and every value are guarded, so a decision
/// taken on them (an invitation's issuer still holding a privilege) cannot
/// commit after a concurrent change of the group graph or of a privilege.
async fn effective_in<P: StoredValue, F: Fn(P, P) -> P>(
    tx: &mut Txn<'_>,
    direct: &Table<(Id, Id), P>,
    via: &Table<(Id, Id), P>,
    user: &Id,
    container: &Id,
    union: F,
    empty: P,
) -> Result<P> {
    // Read (guarded) before the reach is computed: if the graph changes
    // after, the commit conflicts and the decision is taken again.
    tx.get(&GENERATION, &"graph").await?;
    let reach = tx.store().user_reach(user).await?;
    let mut privs = empty;
    for p in tx
        .get_many(direct, &[(*container, *user)])
        .await?
        .into_iter()
        .flatten()
    {
        privs = union(privs, p);
    }
    let keys: Vec<(Id, Id)> = reach.iter().map(|g| (*container, *g)).collect();
    for p in tx.get_many(via, &keys).await?.into_iter().flatten() {
        privs = union(privs, p);
    }
    Ok(privs)
}

/// A user's effective privileges in a space, read in `tx` (guarded).
pub(crate) async fn effective_space_privileges_in(
    tx: &mut Txn<'_>,
    user: &Id,
    space: &Id,
) -> Result<SpacePrivileges> {
    effective_in(
        tx,
        &SPACE_USERS,
        &SPACE_GROUPS,
        user,
        space,
        SpacePrivileges::union,
        SpacePrivileges::empty(),
    )
    .await
}

/// A user's effective privileges in a group, read in `tx` (guarded).
pub(crate) async fn effective_group_privileges_in(
    tx: &mut Txn<'_>,
    user: &Id,
    group: &Id,
) -> Result<GroupPrivileges> {
    effective_in(
        tx,
        &GROUP_USERS,
        &GROUP_CHILDREN,
        user,
        group,
        GroupPrivileges::union,
        GroupPrivileges::empty(),
    )
    .await
}

impl Store {
    /// The value of `a -> b`, if the relation exists.
    pub async fn relation<V: StoredValue>(
        &self,
        r: &Relation<V>,
        a: &Id,
        b: &Id,
    ) -> Result<Option<V>> {
        self.get(&r.fwd, &(*a, *b)).await
    }

    /// Creates or replaces `a -> b = value`. Both ends must exist; a child
    /// group that would close a cycle is refused. Returns whether it is new.
    pub async fn put_relation<V: StoredValue + Clone + Send + Sync>(
        &self,
        r: &Relation<V>,
        a: &Id,
        b: &Id,
        value: &V,
    ) -> Result<bool> {
        self.transact(|mut tx| async move {
            let is_new = Self::put_relation_in(&mut tx, r, a, b, value).await?;
            Ok(tx.done(is_new))
        })
        .await
    }

    /// Creates `a -> b = value` unless the relation exists (then it is left
    /// as it is). Returns whether it was created.
    pub async fn add_relation<V: StoredValue + Clone + Send + Sync>(
        &self,
        r: &Relation<V>,
        a: &Id,
        b: &Id,
        value: &V,
    ) -> Result<bool> {
        self.transact(|mut tx| async move {
            if tx.exists(&r.fwd, &(*a, *b)).await? {
                return Ok(tx.done(false));
            }
            Self::put_relation_in(&mut tx, r, a, b, value).await?;
            Ok(tx.done(true))
        })
        .await
    }

    /// [`Store::put_relation`] inside a transaction.
    pub(crate) async fn put_relation_in<V: StoredValue>(
        tx: &mut Txn<'_>,
        r: &Relation<V>,
        a: &Id,
        b: &Id,
        value: &V,
    ) -> Result<bool> {
        require_in(tx, r.a, a).await?;
        require_in(tx, r.b, b).await?;
        if r.is_group_children() {
            // Guarded: a concurrent graph change makes this commit conflict
            // and the check runs again on the new graph.
            tx.get(&GENERATION, &"graph").await?;
            if a == b || tx.store().ancestors_of_group(a).await?.contains(b) {
                return Err(Error::Cycle);
            }
        }
        let is_new = !tx.exists(&r.fwd, &(*a, *b)).await?;
        r.put_in(tx, a, b, value)?;
        Ok(is_new)
    }

    /// Reads, changes and writes the value of an existing `a -> b` in one
    /// guarded transaction (concurrent changes add up). Returns the new value.
    pub async fn update_relation<V: StoredValue + Clone + Send + Sync>(
        &self,
        r: &Relation<V>,
        a: &Id,
        b: &Id,
        f: impl Fn(V) -> Result<V>,
    ) -> Result<V> {
        let f = &f;
        self.transact(|mut tx| async move {
            let old = tx
                .get(&r.fwd, &(*a, *b))
                .await?
                .ok_or(Error::NotFound(Entity::Relation))?;
            let new = f(old)?;
            tx.put(&r.fwd, &(*a, *b), &new)?;
            Ok(tx.done(new))
        })
        .await
    }

    /// Removes `a -> b`. Returns whether it existed.
    pub async fn remove_relation<V: StoredValue + Send + Sync>(
        &self,
        r: &Relation<V>,
        a: &Id,
        b: &Id,
    ) -> Result<bool> {
        self.transact(|mut tx| async move {
            if !tx.exists(&r.fwd, &(*a, *b)).await? {
                return Ok(tx.done(false));
            }
            r.remove_in(&mut tx, a, b);
            Ok(tx.done(true))
        })
        .await
    }

    /// A page of the `b` ends of `a -> *` with their values, in id order,
    /// after `after`; and whether more follow.
    pub async fn members<V: StoredValue>(
        &self,
        r: &Relation<V>,
        a: &Id,
        after: Option<Id>,
        limit: usize,
    ) -> Result<(Vec<(Id, V)>, bool)> {
        let after = after.map(|x| (*a, x));
        let (page, more) = self
            .page(&r.fwd, a.as_bytes(), after.as_ref(), limit)
            .await?;
        let ids: Vec<Id> = page.iter().map(|((_, b), _)| *b).collect();
        let live = self.existing(r.b, &ids).await?;
        let out = page
            .into_iter()
            .zip(live)
            .filter(|(_, live)| *live)
            .map(|(((_, b), v), _)| (b, v))
            .collect();
        Ok((out, more))
    }

    /// A page of the `a` ends of `* -> b`, in id order; and whether more follow.
    pub async fn memberships<V: StoredValue>(
        &self,
        r: &Relation<V>,
        b: &Id,
        after: Option<Id>,
        limit: usize,
    ) -> Result<(Vec<Id>, bool)> {
        let after = after.map(|x| (*b, x));
        let (page, more) = self
            .page(&r.rev, b.as_bytes(), after.as_ref(), limit)
            .await?;
        let ids: Vec<Id> = page.iter().map(|((_, a), _)| *a).collect();
        let live = self.existing(r.a, &ids).await?;
        let out = ids
            .into_iter()
            .zip(live)
            .filter(|(_, live)| *live)
            .map(|(a, _)| a)
            .collect();
        Ok((out, more))
    }

    /// The second parts of every key of `table` under `first`.
    async fn others<V: StoredValue>(
        &self,
        table: &Table<(Id, Id), V>,
        first: &Id,
    ) -> Result<Vec<Id>> {
        Ok(self
            .all_keys(table, first.as_bytes())
            .await?
            .into_iter()
            .map(|(_, b)| b)
            .collect())
    }

    /// Breadth-first closure over one table from `start`, through live groups only.
    async fn closure<V: StoredValue>(
        &self,
        table: &Table<(Id, Id), V>,
        start: Vec<Id>,
    ) -> Result<HashSet<Id>> {
        let mut seen: HashSet<Id> = HashSet::new();
        let mut level = start;
        while !level.is_empty() {
            level.retain(|g| !seen.contains(g));
            level.sort_unstable();
            level.dedup();
            let live = self.existing(Entity::Group, &level).await?;
            let mut next = Vec::new();
            for (g, live) in level.iter().zip(live) {
                if live && seen.insert(*g) {
                    next.extend(self.others(table, g).await?);
                }
            }
            level = next;
        }
        Ok(seen)
    }

    /// Every group above `group` (parents, their parents, ...), not including it.
    pub async fn ancestors_of_group(&self, group: &Id) -> Result<HashSet<Id>> {
        let parents = self.others(&GROUP_PARENTS, group).await?;
        self.closure(&GROUP_PARENTS, parents).await
    }

    /// Every group below `group` (children, their children, ...), including it.
    pub async fn descendants_of_group(&self, group: &Id) -> Result<HashSet<Id>> {
        self.closure(&GROUP_CHILDREN, vec![*group]).await
    }

    /// Every group the user belongs to, directly or through nested groups.
    /// Cached per user at the graph generation, which is read every time.
    pub async fn user_reach(&self, user: &Id) -> Result<Arc<[Id]>> {
        let generation = self
            .get_raw_many(&[Generation::Graph.key()])
            .await?
            .pop()
            .flatten()
            .unwrap_or_default();
        if let Some((g, reach)) = self.reach.lock().get(user) {
            if *g == generation {
                return Ok(reach.clone());
            }
        }
        let direct = self.others(&USER_GROUPS, user).await?;
        let reach: Arc<[Id]> = self
            .closure(&GROUP_PARENTS, direct)
            .await?
            .into_iter()
            .collect();
        let mut cache = self.reach.lock();
        if cache.len() >= REACH_CACHE_MAX {
            cache.clear();
        }
        cache.insert(*user, (generation, reach.clone()));
        Ok(reach)
    }

    /// The union of the direct value of `(container, user)` in `direct` and
    /// of `(container, g)` in `via` for every group `g` the user reaches.
    async fn effective<P: StoredValue, F: Fn(P, P) -> P>(
        &self,
        direct: &Table<(Id, Id), P>,
        via: &Table<(Id, Id), P>,
        user: &Id,
        container: &Id,
        union: F,
        empty: P,
    ) -> Result<P> {
        let reach = self.user_reach(user).await?;
        let mut keys = Vec::with_capacity(reach.len() + 1);
        keys.push(direct.key(&(*container, *user)));
        keys.extend(reach.iter().map(|g| via.key(&(*container, *g))));
        let mut privs = empty;
        for raw in self.get_raw_many(&keys).await?.into_iter().flatten() {
            privs = union(privs, direct.decode(&raw)?);
        }
        Ok(privs)
    }

    /// A user's effective privileges in a space.
    pub async fn effective_space_privileges(
        &self,
        user: &Id,
        space: &Id,
    ) -> Result<SpacePrivileges> {
        self.effective(
            &SPACE_USERS,
            &SPACE_GROUPS,
            user,
            space,
            SpacePrivileges::union,
            SpacePrivileges::empty(),
        )
        .await
    }

    /// A user's effective privileges in a group.
    pub async fn effective_group_privileges(
        &self,
        user: &Id,
        group: &Id,
    ) -> Result<GroupPrivileges> {
        self.effective(
            &GROUP_USERS,
            &GROUP_CHILDREN,
            user,
            group,
            GroupPrivileges::union,
            GroupPrivileges::empty(),
        )
        .await
    }

    /// Whether the user belongs to the group directly or through nested groups.
    pub async fn is_effective_group_member(&self, user: &Id, group: &Id) -> Result<bool> {
        Ok(self.user_reach(user).await?.contains(group))
    }

    /// Every live user who belongs to `group` directly or through its descendants.
    pub async fn effective_group_users(&self, group: &Id) -> Result<BTreeSet<Id>> {
        let mut users = BTreeSet::new();
        for g in self.descendants_of_group(group).await? {
            users.extend(self.others(&GROUP_USERS, &g).await?);
        }
        self.keep_live(Entity::User, users).await
    }

    /// Every live user who belongs to `space` directly or through its groups.
    pub async fn effective_space_users(&self, space: &Id) -> Result<BTreeSet<Id>> {
        let mut users: BTreeSet<Id> = self
            .others(&SPACE_USERS, space)
            .await?
            .into_iter()
            .collect();
        for g in self.others(&SPACE_GROUPS, space).await? {
            users.extend(self.effective_group_users(&g).await?);
        }
        self.keep_live(Entity::User, users).await
    }

    /// Every live group the user belongs to, directly or through nested groups.
    pub async fn effective_user_groups(&self, user: &Id) -> Result<BTreeSet<Id>> {
        let reach: BTreeSet<Id> = self.user_reach(user).await?.iter().copied().collect();
        self.keep_live(Entity::Group, reach).await
    }

    /// Every live space the user belongs to, directly or through groups.
    pub async fn effective_user_spaces(&self, user: &Id) -> Result<BTreeSet<Id>> {
        let mut spaces: BTreeSet<Id> = self.others(&USER_SPACES, user).await?.into_iter().collect();
        for g in self.user_reach(user).await?.iter() {
            spaces.extend(self.others(&GROUP_SPACES, g).await?);
        }
        self.keep_live(Entity::Space, spaces).await
    }

    /// Every live provider supporting one of the user's effective spaces.
    pub async fn effective_user_providers(&self, user: &Id) -> Result<BTreeSet<Id>> {
        let mut providers = BTreeSet::new();
        for s in self.effective_user_spaces(user).await? {
            providers.extend(self.others(&SPACE_PROVIDERS, &s).await?);
        }
        self.keep_live(Entity::Provider, providers).await
    }

    /// Every live space of `group` or of a group above it (its members are
    /// effective members of those spaces).
    pub async fn effective_group_spaces(&self, group: &Id) -> Result<BTreeSet<Id>> {
        let mut groups = self.ancestors_of_group(group).await?;
        groups.insert(*group);
        let mut spaces = BTreeSet::new();
        for g in groups {
            spaces.extend(self.others(&GROUP_SPACES, &g).await?);
        }
        self.keep_live(Entity::Space, spaces).await
    }

    /// Every live group in `space`, directly or below one of its groups.
    pub async fn effective_space_groups(&self, space: &Id) -> Result<BTreeSet<Id>> {
        let direct = self.others(&SPACE_GROUPS, space).await?;
        Ok(self
            .closure(&GROUP_CHILDREN, direct)
            .await?
            .into_iter()
            .collect())
    }

    async fn keep_live(&self, kind: Entity, ids: BTreeSet<Id>) -> Result<BTreeSet<Id>> {
        let list: Vec<Id> = ids.into_iter().collect();
        let live = self.existing(kind, &list).await?;
        Ok(list
            .into_iter()
            .zip(live)
            .filter(|(_, l)| *l)
            .map(|(id, _)| id)
            .collect())
    }
}
