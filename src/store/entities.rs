//! Users, groups, spaces and providers: creation, lookup, update, deletion.
//!
//! Deleting an entity removes, in the same atomic batch, every relation it takes
//! part in (both directions) and every token record minted for it, so no
//! dangling reference remains.

use super::relations::{
    Relation, Side, GROUP_CHILDREN, GROUP_USERS, SPACE_GROUPS, SPACE_PROVIDERS, SPACE_USERS,
};
use super::{encode, Batch, Store, TreeName};
use crate::codec::Record;
use crate::error::{Entity, Error, Result};
use crate::model::{
    now, Group, GroupPrivileges, GroupType, Id, Provider, Space, SpacePrivileges, User,
    ZonePrivileges,
};

/// Longest accepted user name, in bytes.
pub const MAX_USERNAME: usize = 64;
/// Longest accepted group, space or provider name or domain, in bytes.
pub const MAX_NAME: usize = 256;

/// Checks a display name: 1..=MAX_NAME bytes, no control characters.
pub(crate) fn check_name(what: &str, name: &str, max: usize) -> Result<()> {
    if name.trim().is_empty() || name.len() > max || name.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "{what} must be 1 to {max} bytes without control characters"
        )));
    }
    Ok(())
}

fn check_username(name: &str) -> Result<()> {
    check_name("username", name, MAX_USERNAME)?;
    if name.contains(':') || name.chars().any(char::is_whitespace) {
        return Err(Error::Invalid(
            "username must not contain ':' or white space".into(),
        ));
    }
    Ok(())
}

impl Entity {
    pub(crate) fn tree(self) -> TreeName {
        match self {
            Entity::User => TreeName::UserIdUser,
            Entity::Group => TreeName::GroupIdGroup,
            Entity::Space => TreeName::SpaceIdSpace,
            Entity::Provider => TreeName::ProviderIdProvider,
            Entity::Relation | Entity::Token | Entity::RootKey => TreeName::Meta,
        }
    }

    /// The relations an entity of this kind takes part in, and on which side.
    fn relations(self) -> &'static [(&'static dyn AnyRelation, Side)] {
        match self {
            Entity::User => &[(&GROUP_USERS, Side::B), (&SPACE_USERS, Side::B)],
            Entity::Group => &[
                (&GROUP_USERS, Side::A),
                (&GROUP_CHILDREN, Side::A),
                (&GROUP_CHILDREN, Side::B),
                (&SPACE_GROUPS, Side::B),
            ],
            Entity::Space => &[
                (&SPACE_USERS, Side::A),
                (&SPACE_GROUPS, Side::A),
                (&SPACE_PROVIDERS, Side::A),
            ],
            Entity::Provider => &[(&SPACE_PROVIDERS, Side::B)],
            Entity::Relation | Entity::Token | Entity::RootKey => &[],
        }
    }
}

/// Object-safe view of a [`Relation`] for cascading deletes.
pub(crate) trait AnyRelation: Sync {
    fn remove_all_ops(&self, store: &Store, id: &Id, side: Side, batch: &mut Batch) -> Result<()>;
    fn touches_graph(&self) -> bool;
}

impl<T: Sync> AnyRelation for Relation<T> {
    fn remove_all_ops(&self, store: &Store, id: &Id, side: Side, batch: &mut Batch) -> Result<()> {
        let tree = match side {
            Side::A => self.fwd,
            Side::B => self.rev,
        };
        for key in store.scan_keys(tree, id.as_bytes())? {
            let other = super::key_id(tree, &key[32..])?;
            match side {
                Side::A => self.remove_ops(batch, id, &other),
                Side::B => self.remove_ops(batch, &other, id),
            }
        }
        Ok(())
    }
    fn touches_graph(&self) -> bool {
        self.fwd == GROUP_USERS.fwd || self.fwd == GROUP_CHILDREN.fwd
    }
}

impl Store {
    fn get_entity<T: Record>(&self, kind: Entity, id: &Id) -> Result<Option<T>> {
        self.get_rec(kind.tree(), id.as_bytes())
    }

    fn put_entity<T: Record>(&self, kind: Entity, id: &Id, value: &T) -> Result<()> {
        let tree = kind.tree();
        self.engine
            .put(tree, id.as_bytes(), &encode(tree, value)?)?;
        Ok(())
    }

    /// Whether an entity exists.
    pub fn exists(&self, kind: Entity, id: &Id) -> Result<bool> {
        Ok(self.engine.get(kind.tree(), id.as_bytes())?.is_some())
    }

    pub(crate) fn require(&self, kind: Entity, id: &Id) -> Result<()> {
        if self.exists(kind, id)? {
            Ok(())
        } else {
            Err(Error::NotFound(kind))
        }
    }

    /// Deletes an entity with all its relations and the tokens minted for it.
    pub fn delete(&self, kind: Entity, id: &Id) -> Result<()> {
        let _w = self.lock();
        let mut batch = Batch::new();
        if kind == Entity::User {
            let user: User = self.get_entity(kind, id)?.ok_or(Error::NotFound(kind))?;
            batch.remove(TreeName::UserNameUserId, user.name.as_bytes());
        } else {
            self.require(kind, id)?;
        }
        batch.remove(kind.tree(), id.as_bytes());
        let mut graph = false;
        for (rel, side) in kind.relations() {
            rel.remove_all_ops(self, id, *side, &mut batch)?;
            graph |= rel.touches_graph();
        }
        self.token_removal_ops(id, &mut batch)?;
        self.engine.apply(&batch)?;
        if graph {
            self.graph.invalidate();
        }
        drop(_w);
        self.committed()
    }

    /// Creates a user. Fails with `AlreadyExists` if the name is taken.
    pub fn create_user(
        &self,
        name: &str,
        password_hash: String,
        zone_privileges: ZonePrivileges,
    ) -> Result<Id> {
        let id = Id::random();
        self.insert_user(
            id,
            &User {
                name: name.to_owned(),
                password_hash,
                zone_privileges,
                created: now(),
            },
        )?;
        Ok(id)
    }

    /// Inserts a user under a given id (import).
    pub fn insert_user(&self, id: Id, user: &User) -> Result<()> {
        check_username(&user.name)?;
        let _w = self.lock();
        if self
            .engine
            .get(TreeName::UserNameUserId, user.name.as_bytes())?
            .is_some()
            || self.exists(Entity::User, &id)?
        {
            return Err(Error::AlreadyExists(Entity::User));
        }
        let mut batch = Batch::new();
        batch.put(
            TreeName::UserIdUser,
            id.as_bytes().to_vec(),
            encode(TreeName::UserIdUser, user)?,
        );
        batch.put(
            TreeName::UserNameUserId,
            user.name.as_bytes(),
            id.as_bytes().to_vec(),
        );
        self.engine.apply(&batch)?;
        drop(_w);
        self.committed()
    }

    /// A user by id.
    pub fn user(&self, id: &Id) -> Result<Option<User>> {
        self.get_entity(Entity::User, id)
    }

    /// A user by login name.
    pub fn user_by_name(&self, name: &str) -> Result<Option<(Id, User)>> {
        let Some(raw) = self.engine.get(TreeName::UserNameUserId, name.as_bytes())? else {
            return Ok(None);
        };
        let id = super::key_id(TreeName::UserNameUserId, &raw)?;
        Ok(self.user(&id)?.map(|u| (id, u)))
    }

    /// Changes a user's record (password hash, zone privileges). The name is fixed.
    pub fn update_user(&self, id: &Id, f: impl FnOnce(&mut User)) -> Result<User> {
        let _w = self.lock();
        let mut user: User = self.user(id)?.ok_or(Error::NotFound(Entity::User))?;
        let name = user.name.clone();
        f(&mut user);
        user.name = name;
        self.put_entity(Entity::User, id, &user)?;
        drop(_w);
        self.committed()?;
        Ok(user)
    }

    /// A page of users in id order, after `after`.
    pub fn users(&self, after: Option<Id>, limit: usize) -> Result<Vec<(Id, User)>> {
        self.page(TreeName::UserIdUser, &[], after, limit)
    }

    /// Creates a group of type `role`. The creator, if any, becomes a member
    /// with all group privileges.
    pub fn create_group(&self, name: &str, creator: Option<Id>) -> Result<Id> {
        self.create_group_of_type(name, GroupType::Role, creator)
    }

    /// Creates a group of the given type. The creator, if any, becomes a
    /// member with all group privileges.
    pub fn create_group_of_type(
        &self,
        name: &str,
        kind: GroupType,
        creator: Option<Id>,
    ) -> Result<Id> {
        let id = Id::random();
        self.insert_group(id, name, kind, creator)?;
        Ok(id)
    }

    /// Inserts a group under a given id.
    pub fn insert_group(
        &self,
        id: Id,
        name: &str,
        kind: GroupType,
        creator: Option<Id>,
    ) -> Result<()> {
        check_name("group name", name, super::entities::MAX_NAME)?;
        let _w = self.lock();
        if self.exists(Entity::Group, &id)? {
            return Err(Error::AlreadyExists(Entity::Group));
        }
        let mut batch = Batch::new();
        let group = Group {
            name: name.to_owned(),
            kind,
            created: now(),
        };
        batch.put(
            TreeName::GroupIdGroup,
            id.as_bytes().to_vec(),
            encode(TreeName::GroupIdGroup, &group)?,
        );
        if let Some(user) = creator {
            self.require(Entity::User, &user)?;
            GROUP_USERS.put_ops(&mut batch, &id, &user, &GroupPrivileges::all())?;
        }
        self.engine.apply(&batch)?;
        self.graph.invalidate();
        drop(_w);
        self.committed()
    }

    /// A group by id.
    pub fn group(&self, id: &Id) -> Result<Option<Group>> {
        self.get_entity(Entity::Group, id)
    }

    /// A page of groups in id order.
    pub fn groups(&self, after: Option<Id>, limit: usize) -> Result<Vec<(Id, Group)>> {
        self.page(TreeName::GroupIdGroup, &[], after, limit)
    }

    /// Renames a group.
    pub fn rename_group(&self, id: &Id, name: &str) -> Result<()> {
        self.update_group(id, Some(name), None)
    }

    /// Changes a group's name, type or both.
    pub fn update_group(&self, id: &Id, name: Option<&str>, kind: Option<GroupType>) -> Result<()> {
        if let Some(name) = name {
            check_name("group name", name, MAX_NAME)?;
        }
        let _w = self.lock();
        let mut g: Group = self.group(id)?.ok_or(Error::NotFound(Entity::Group))?;
        if let Some(name) = name {
            g.name = name.to_owned();
        }
        g.kind = kind.unwrap_or(g.kind);
        self.put_entity(Entity::Group, id, &g)?;
        drop(_w);
        self.committed()
    }

    /// Creates a space. The creator, if any, becomes a member with all space privileges.
    pub fn create_space(&self, name: &str, creator: Option<Id>) -> Result<Id> {
        let id = Id::random();
        self.insert_space(id, name, creator)?;
        Ok(id)
    }

    /// Inserts a space under a given id.
    pub fn insert_space(&self, id: Id, name: &str, creator: Option<Id>) -> Result<()> {
        let mut batch = Batch::new();
        let _w = self.lock();
        self.space_ops(&mut batch, id, name)?;
        if let Some(user) = creator {
            self.require(Entity::User, &user)?;
            SPACE_USERS.put_ops(&mut batch, &id, &user, &SpacePrivileges::all())?;
        }
        self.engine.apply(&batch)?;
        drop(_w);
        self.committed()
    }

    /// Queues the creation of a space (caller holds the writer lock).
    pub(crate) fn space_ops(&self, batch: &mut Batch, id: Id, name: &str) -> Result<()> {
        check_name("space name", name, MAX_NAME)?;
        if self.exists(Entity::Space, &id)? {
            return Err(Error::AlreadyExists(Entity::Space));
        }
        let space = Space {
            name: name.to_owned(),
            created: now(),
        };
        batch.put(
            TreeName::SpaceIdSpace,
            id.as_bytes().to_vec(),
            encode(TreeName::SpaceIdSpace, &space)?,
        );
        Ok(())
    }

    /// A space by id.
    pub fn space(&self, id: &Id) -> Result<Option<Space>> {
        self.get_entity(Entity::Space, id)
    }

    /// A page of spaces in id order.
    pub fn spaces(&self, after: Option<Id>, limit: usize) -> Result<Vec<(Id, Space)>> {
        self.page(TreeName::SpaceIdSpace, &[], after, limit)
    }

    /// Renames a space.
    pub fn rename_space(&self, id: &Id, name: &str) -> Result<()> {
        check_name("space name", name, MAX_NAME)?;
        let _w = self.lock();
        let mut s: Space = self.space(id)?.ok_or(Error::NotFound(Entity::Space))?;
        s.name = name.to_owned();
        self.put_entity(Entity::Space, id, &s)?;
        drop(_w);
        self.committed()
    }

    /// Registers a provider.
    pub fn create_provider(&self, name: &str, domain: &str) -> Result<Id> {
        let id = Id::random();
        self.insert_provider(id, name, domain)?;
        Ok(id)
    }

    /// Inserts a provider under a given id.
    pub fn insert_provider(&self, id: Id, name: &str, domain: &str) -> Result<()> {
        check_name("provider name", name, MAX_NAME)?;
        check_name("provider domain", domain, MAX_NAME)?;
        let _w = self.lock();
        if self.exists(Entity::Provider, &id)? {
            return Err(Error::AlreadyExists(Entity::Provider));
        }
        let p = Provider {
            name: name.to_owned(),
            domain: domain.to_owned(),
            created: now(),
        };
        self.put_entity(Entity::Provider, &id, &p)?;
        drop(_w);
        self.committed()
    }

    /// A provider by id.
    pub fn provider(&self, id: &Id) -> Result<Option<Provider>> {
        self.get_entity(Entity::Provider, id)
    }

    /// A page of providers in id order.
    pub fn providers(&self, after: Option<Id>, limit: usize) -> Result<Vec<(Id, Provider)>> {
        self.page(TreeName::ProviderIdProvider, &[], after, limit)
    }
}
