//! Relations (memberships, supports) and effective privileges.
//!
//! A [`Relation`] is an edge `a -> b` stored twice: `fwd[a ++ b] = value` and
//! `rev[b ++ a] = ()`, always in one atomic batch.
//!
//! Effective privileges of a user: the union of the user's direct privileges
//! and those held by every group the user reaches through nested groups
//! (`user -> group -> parent group -> ...`). The set of reached groups is
//! cached per user and invalidated by a generation counter that every change
//! of the group graph bumps *after* applying it, so the very next request sees
//! the change.

use std::collections::{HashMap, HashSet, VecDeque};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{encode, key_id, pair, Batch, Store, TreeName, PAGE_MAX};
use crate::codec::Record;
use crate::error::{Entity, Error, Result};
use crate::model::{GroupPrivileges, Id, SpacePrivileges, Support};

/// Which end of a relation an entity is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The `a` end (the container: group, parent group, space).
    A,
    /// The `b` end (the member: user, child group, group, provider).
    B,
}

/// A typed relation `a -> b` carrying a value of type `T`.
pub struct Relation<T> {
    /// Tree keyed `a ++ b`, holding the value.
    pub fwd: TreeName,
    /// Tree keyed `b ++ a`, empty values.
    pub rev: TreeName,
    /// Kind of `a`.
    pub a: Entity,
    /// Kind of `b`.
    pub b: Entity,
    value: PhantomData<fn() -> T>,
}

const fn rel<T>(fwd: TreeName, rev: TreeName, a: Entity, b: Entity) -> Relation<T> {
    Relation {
        fwd,
        rev,
        a,
        b,
        value: PhantomData,
    }
}

/// Users in groups: `(group, user)` with the user's group privileges.
pub const GROUP_USERS: Relation<GroupPrivileges> = rel(
    TreeName::GroupUsers,
    TreeName::UserGroups,
    Entity::Group,
    Entity::User,
);
/// Child groups: `(parent, child)` with the child's privileges in the parent.
pub const GROUP_CHILDREN: Relation<GroupPrivileges> = rel(
    TreeName::GroupChildren,
    TreeName::GroupParents,
    Entity::Group,
    Entity::Group,
);
/// Users in spaces: `(space, user)` with the user's space privileges.
pub const SPACE_USERS: Relation<SpacePrivileges> = rel(
    TreeName::SpaceUsers,
    TreeName::UserSpaces,
    Entity::Space,
    Entity::User,
);
/// Groups in spaces: `(space, group)` with the group's space privileges.
pub const SPACE_GROUPS: Relation<SpacePrivileges> = rel(
    TreeName::SpaceGroups,
    TreeName::GroupSpaces,
    Entity::Space,
    Entity::Group,
);
/// Supports: `(space, provider)` with the support size.
pub const SPACE_PROVIDERS: Relation<Support> = rel(
    TreeName::SpaceProviders,
    TreeName::ProviderSpaces,
    Entity::Space,
    Entity::Provider,
);

impl<T> Relation<T> {
    /// Queues the removal of `a -> b`.
    pub(crate) fn remove_ops(&self, batch: &mut Batch, a: &Id, b: &Id) {
        batch.remove(self.fwd, pair(a, b).to_vec());
        batch.remove(self.rev, pair(b, a).to_vec());
    }

    fn is_graph(&self) -> bool {
        self.fwd == TreeName::GroupUsers || self.fwd == TreeName::GroupChildren
    }
}

impl<T: Record> Relation<T> {
    /// Queues `a -> b = value`.
    pub(crate) fn put_ops(&self, batch: &mut Batch, a: &Id, b: &Id, value: &T) -> Result<()> {
        batch.put(self.fwd, pair(a, b).to_vec(), encode(self.fwd, value)?);
        batch.put(self.rev, pair(b, a).to_vec(), Vec::new());
        Ok(())
    }
}

/// The groups a user reaches, with the graph generation they were computed at.
type Reach = (u64, Arc<[Id]>);

/// Per-user cache of reached groups, invalidated by a generation counter.
#[derive(Default)]
pub(crate) struct GraphCache {
    generation: AtomicU64,
    reach: Mutex<HashMap<Id, Reach>>,
}

/// Entries kept before the cache is cleared wholesale.
const REACH_CACHE_MAX: usize = 65_536;

impl GraphCache {
    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl Store {
    /// The value of `a -> b`, if the relation exists.
    pub fn relation<T: Record>(&self, r: &Relation<T>, a: &Id, b: &Id) -> Result<Option<T>> {
        self.get_rec(r.fwd, &pair(a, b))
    }

    /// Creates or replaces `a -> b = value`. Both ends must exist; a group
    /// relation that would close a cycle is refused. Returns whether it is new.
    pub fn put_relation<T: Record>(
        &self,
        r: &Relation<T>,
        a: &Id,
        b: &Id,
        value: &T,
    ) -> Result<bool> {
        let _w = self.lock();
        self.require(r.a, a)?;
        self.require(r.b, b)?;
        if r.fwd == TreeName::GroupChildren && (a == b || self.ancestors_of_group(a)?.contains(b)) {
            return Err(Error::Cycle);
        }
        let is_new = self.engine.get(r.fwd, &pair(a, b))?.is_none();
        let mut batch = Batch::new();
        r.put_ops(&mut batch, a, b, value)?;
        self.engine.apply(&batch)?;
        if r.is_graph() {
            self.graph.invalidate();
        }
        drop(_w);
        self.committed()?;
        Ok(is_new)
    }

    /// Reads, changes and writes the value of an existing `a -> b` atomically.
    pub fn update_relation<T: Record>(
        &self,
        r: &Relation<T>,
        a: &Id,
        b: &Id,
        f: impl FnOnce(T) -> T,
    ) -> Result<T> {
        let _w = self.lock();
        let old = self
            .relation(r, a, b)?
            .ok_or(Error::NotFound(Entity::Relation))?;
        let new = f(old);
        self.engine.put(r.fwd, &pair(a, b), &encode(r.fwd, &new)?)?;
        if r.is_graph() {
            self.graph.invalidate();
        }
        drop(_w);
        self.committed()?;
        Ok(new)
    }

    /// Removes `a -> b`. Returns whether it existed.
    pub fn remove_relation<T>(&self, r: &Relation<T>, a: &Id, b: &Id) -> Result<bool> {
        let _w = self.lock();
        if self.engine.get(r.fwd, &pair(a, b))?.is_none() {
            return Ok(false);
        }
        let mut batch = Batch::new();
        r.remove_ops(&mut batch, a, b);
        self.engine.apply(&batch)?;
        if r.is_graph() {
            self.graph.invalidate();
        }
        drop(_w);
        self.committed()?;
        Ok(true)
    }

    /// A page of the `b` ends of `a -> *` with their values, in id order.
    pub fn members<T: Record>(
        &self,
        r: &Relation<T>,
        a: &Id,
        after: Option<Id>,
        limit: usize,
    ) -> Result<Vec<(Id, T)>> {
        self.page(r.fwd, a.as_bytes(), after, limit)
    }

    /// A page of the `a` ends of `* -> b`, in id order.
    pub fn memberships<T>(
        &self,
        r: &Relation<T>,
        b: &Id,
        after: Option<Id>,
        limit: usize,
    ) -> Result<Vec<Id>> {
        let after_key = after.map(|x| pair(b, &x));
        self.engine
            .scan(
                r.rev,
                b.as_bytes(),
                after_key.as_ref().map(|k| &k[..]),
                limit.min(PAGE_MAX),
            )?
            .into_iter()
            .map(|(k, _)| key_id(r.rev, &k[32..]))
            .collect()
    }

    fn rev_all(&self, tree: TreeName, id: &Id) -> Result<Vec<Id>> {
        self.scan_keys(tree, id.as_bytes())?
            .iter()
            .map(|k| key_id(tree, &k[32..]))
            .collect()
    }

    /// Every group above `group` (parents, their parents, ...), not including it.
    fn ancestors_of_group(&self, group: &Id) -> Result<HashSet<Id>> {
        self.closure(self.rev_all(TreeName::GroupParents, group)?)
    }

    /// Breadth-first upward closure over `GroupParents`, starting from `start`.
    fn closure(&self, start: Vec<Id>) -> Result<HashSet<Id>> {
        let mut seen: HashSet<Id> = HashSet::new();
        let mut queue: VecDeque<Id> = start.into();
        while let Some(g) = queue.pop_front() {
            if seen.insert(g) {
                queue.extend(self.rev_all(TreeName::GroupParents, &g)?);
            }
        }
        Ok(seen)
    }

    /// Every group the user belongs to, directly or through nested groups.
    pub fn user_reach(&self, user: &Id) -> Result<Arc<[Id]>> {
        let generation = self.graph.generation.load(Ordering::Acquire);
        if let Some((g, reach)) = self.graph.reach.lock().get(user) {
            if *g == generation {
                return Ok(reach.clone());
            }
        }
        let reach: Arc<[Id]> = self
            .closure(self.rev_all(TreeName::UserGroups, user)?)?
            .into_iter()
            .collect();
        let mut cache = self.graph.reach.lock();
        if cache.len() >= REACH_CACHE_MAX {
            cache.clear();
        }
        cache.insert(*user, (generation, reach.clone()));
        Ok(reach)
    }

    /// A user's effective privileges in a space.
    pub fn effective_space_privileges(&self, user: &Id, space: &Id) -> Result<SpacePrivileges> {
        let mut privs = self
            .relation(&SPACE_USERS, space, user)?
            .unwrap_or_default();
        for g in self.user_reach(user)?.iter() {
            if let Some(p) = self.relation(&SPACE_GROUPS, space, g)? {
                privs = privs.union(p);
            }
        }
        Ok(privs)
    }

    /// A user's effective privileges in a group.
    pub fn effective_group_privileges(&self, user: &Id, group: &Id) -> Result<GroupPrivileges> {
        let mut privs = self
            .relation(&GROUP_USERS, group, user)?
            .unwrap_or_default();
        for g in self.user_reach(user)?.iter() {
            if let Some(p) = self.relation(&GROUP_CHILDREN, group, g)? {
                privs = privs.union(p);
            }
        }
        Ok(privs)
    }

    /// Whether the user belongs to the group directly or through nested groups.
    pub fn is_effective_group_member(&self, user: &Id, group: &Id) -> Result<bool> {
        Ok(self.user_reach(user)?.contains(group))
    }

    /// Every user who belongs to `group` directly or through its descendants.
    pub fn effective_group_users(&self, group: &Id) -> Result<std::collections::BTreeSet<Id>> {
        let mut users = std::collections::BTreeSet::new();
        for g in self.descendants_of_group(group)? {
            for k in self.scan_keys(TreeName::GroupUsers, g.as_bytes())? {
                users.insert(key_id(TreeName::GroupUsers, &k[32..])?);
            }
        }
        Ok(users)
    }

    /// Every user who belongs to `space` directly or through its groups.
    pub fn effective_space_users(&self, space: &Id) -> Result<std::collections::BTreeSet<Id>> {
        let mut users = std::collections::BTreeSet::new();
        for k in self.scan_keys(TreeName::SpaceUsers, space.as_bytes())? {
            users.insert(key_id(TreeName::SpaceUsers, &k[32..])?);
        }
        for k in self.scan_keys(TreeName::SpaceGroups, space.as_bytes())? {
            let g = key_id(TreeName::SpaceGroups, &k[32..])?;
            users.extend(self.effective_group_users(&g)?);
        }
        Ok(users)
    }

    /// Every group below `group` (children, their children, ...), including it.
    pub fn descendants_of_group(&self, group: &Id) -> Result<HashSet<Id>> {
        let mut seen: HashSet<Id> = HashSet::new();
        let mut queue: VecDeque<Id> = VecDeque::from([*group]);
        while let Some(g) = queue.pop_front() {
            if seen.insert(g) {
                queue.extend(self.rev_all(TreeName::GroupChildren, &g)?);
            }
        }
        Ok(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GroupPrivilege, SpacePrivilege, ZonePrivileges};

    fn user(s: &Store, name: &str) -> Id {
        s.create_user(name, "x".into(), ZonePrivileges::empty())
            .unwrap()
    }

    #[test]
    fn effective_privileges_follow_nested_groups_and_changes() {
        let s = Store::memory();
        let alice = user(&s, "alice");
        let space = s.create_space("sp", None).unwrap();
        let top = s.create_group("top", None).unwrap();
        let mid = s.create_group("mid", None).unwrap();
        let bottom = s.create_group("bottom", None).unwrap();
        s.put_relation(
            &GROUP_CHILDREN,
            &top,
            &mid,
            &GroupPrivileges::member_default(),
        )
        .unwrap();
        s.put_relation(
            &GROUP_CHILDREN,
            &mid,
            &bottom,
            &GroupPrivileges::member_default(),
        )
        .unwrap();
        s.put_relation(
            &GROUP_USERS,
            &bottom,
            &alice,
            &GroupPrivileges::member_default(),
        )
        .unwrap();
        let add: SpacePrivileges = [SpacePrivilege::AddProvider].into_iter().collect();
        assert!(!s
            .effective_space_privileges(&alice, &space)
            .unwrap()
            .contains(SpacePrivilege::AddProvider));
        s.put_relation(&SPACE_GROUPS, &space, &top, &add).unwrap();
        assert!(s
            .effective_space_privileges(&alice, &space)
            .unwrap()
            .contains(SpacePrivilege::AddProvider));
        // A cycle is refused, whatever its length.
        assert!(matches!(
            s.put_relation(&GROUP_CHILDREN, &bottom, &top, &GroupPrivileges::empty()),
            Err(Error::Cycle)
        ));
        assert!(matches!(
            s.put_relation(&GROUP_CHILDREN, &top, &top, &GroupPrivileges::empty()),
            Err(Error::Cycle)
        ));
        // Cutting the middle link takes effect at once.
        assert!(s.remove_relation(&GROUP_CHILDREN, &top, &mid).unwrap());
        assert!(s
            .effective_space_privileges(&alice, &space)
            .unwrap()
            .is_empty());
        // Group privileges through a child group.
        let token: GroupPrivileges = [GroupPrivilege::CreateSpaceToken].into_iter().collect();
        s.put_relation(&GROUP_CHILDREN, &top, &mid, &token).unwrap();
        assert!(s
            .effective_group_privileges(&alice, &top)
            .unwrap()
            .contains(GroupPrivilege::CreateSpaceToken));
        s.update_relation(&GROUP_CHILDREN, &top, &mid, |_| GroupPrivileges::empty())
            .unwrap();
        assert!(s
            .effective_group_privileges(&alice, &top)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn deleting_a_group_removes_every_edge() {
        let s = Store::memory();
        let alice = user(&s, "alice");
        let space = s.create_space("sp", Some(alice)).unwrap();
        let parent = s.create_group("p", Some(alice)).unwrap();
        let g = s.create_group("g", Some(alice)).unwrap();
        let child = s.create_group("c", None).unwrap();
        s.put_relation(&GROUP_CHILDREN, &parent, &g, &GroupPrivileges::empty())
            .unwrap();
        s.put_relation(&GROUP_CHILDREN, &g, &child, &GroupPrivileges::empty())
            .unwrap();
        s.put_relation(&SPACE_GROUPS, &space, &g, &SpacePrivileges::empty())
            .unwrap();
        s.delete(Entity::Group, &g).unwrap();
        for tree in [
            TreeName::GroupUsers,
            TreeName::UserGroups,
            TreeName::GroupChildren,
            TreeName::GroupParents,
            TreeName::SpaceGroups,
            TreeName::GroupSpaces,
        ] {
            for (k, _) in s.engine.scan(tree, &[], None, usize::MAX).unwrap() {
                assert!(
                    !k.windows(32).any(|w| w == g.as_bytes()),
                    "{tree:?} still names the group"
                );
            }
        }
        assert_eq!(s.user_reach(&alice).unwrap().len(), 1);
        assert!(matches!(
            s.delete(Entity::Group, &g),
            Err(Error::NotFound(Entity::Group))
        ));
    }
}
