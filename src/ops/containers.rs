//! Groups and spaces: creation, listing, lookup, change, deletion, effective
//! membership, and consistent backups.

use std::collections::BTreeSet;
use std::path::Path;

use super::authorize::Action;
use super::members::{Needs, GROUP_VIEW, SPACE_VIEW};
use super::{Caller, Listed, PageRequest, Zone};
use crate::error::{Entity, Error, Result};
use crate::model::{
    Group, GroupPrivilege as GP, GroupPrivileges, GroupType, Id, Space, SpacePrivilege as SP,
    SpacePrivileges, Support, ZonePrivilege as ZP,
};
use crate::store::{GROUP_USERS_REL, PAGE_MAX, SPACE_PROVIDERS_REL, SPACE_USERS_REL};

/// A container of members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// A group.
    Group,
    /// A space.
    Space,
}

impl Container {
    /// The entity kind.
    pub fn entity(self) -> Entity {
        match self {
            Container::Group => Entity::Group,
            Container::Space => Entity::Space,
        }
    }

    fn view(self) -> Needs {
        match self {
            Container::Group => GROUP_VIEW,
            Container::Space => SPACE_VIEW,
        }
    }
}

/// A user's effective privileges in a group or space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effective {
    /// In a group.
    Group(GroupPrivileges),
    /// In a space.
    Space(SpacePrivileges),
}

impl Zone {
    /// Creates a group; the calling user becomes a member with every group privilege.
    pub async fn create_group(&self, caller: &Caller, name: &str, kind: GroupType) -> Result<Id> {
        let uid = caller.user_id()?;
        self.store.create_group_of_type(name, kind, Some(uid)).await
    }

    /// Creates a space; the calling user becomes a member with every space privilege.
    pub async fn create_space(&self, caller: &Caller, name: &str) -> Result<Id> {
        let uid = caller.user_id()?;
        self.store.create_space(name, Some(uid)).await
    }

    /// A page of the calling user's groups (direct memberships).
    pub async fn my_groups(&self, caller: &Caller, page: PageRequest) -> Result<Listed<Id>> {
        let uid = caller.user_id()?;
        let (ids, more) = self
            .store
            .memberships(&GROUP_USERS_REL, &uid, page.after, page.limit)
            .await?;
        Ok(Listed::new(ids, more, |id| *id))
    }

    /// A page of the calling user's spaces (direct memberships).
    pub async fn my_spaces(&self, caller: &Caller, page: PageRequest) -> Result<Listed<Id>> {
        let uid = caller.user_id()?;
        let (ids, more) = self
            .store
            .memberships(&SPACE_USERS_REL, &uid, page.after, page.limit)
            .await?;
        Ok(Listed::new(ids, more, |id| *id))
    }

    /// A page of every group (zone `list_groups`) or space (zone `list_spaces`).
    pub async fn list_containers(
        &self,
        caller: &Caller,
        c: Container,
        page: PageRequest,
    ) -> Result<Listed<Id>> {
        let (ids, more) = match c {
            Container::Group => {
                self.require(caller, Action::Zone(ZP::ListGroups)).await?;
                let (p, more) = self.store.groups(page.after, page.limit).await?;
                (p.into_iter().map(|(id, _)| id).collect(), more)
            }
            Container::Space => {
                self.require(caller, Action::Zone(ZP::ListSpaces)).await?;
                let (p, more) = self.store.spaces(page.after, page.limit).await?;
                (p.into_iter().map(|(id, _)| id).collect(), more)
            }
        };
        Ok(Listed::new(ids, more, |id| *id))
    }

    /// A group (to whoever may view it).
    pub async fn get_group(&self, caller: &Caller, gid: Id) -> Result<Group> {
        self.require_exists(Entity::Group, &gid).await?;
        self.require(caller, GROUP_VIEW.on(gid)).await?;
        self.store
            .group(&gid)
            .await?
            .ok_or(Error::NotFound(Entity::Group))
    }

    /// A space with its supports (to whoever may view it).
    pub async fn get_space(&self, caller: &Caller, sid: Id) -> Result<(Space, Vec<(Id, Support)>)> {
        self.require_exists(Entity::Space, &sid).await?;
        self.require(caller, SPACE_VIEW.on(sid)).await?;
        self.space_with_supports(sid).await
    }

    /// A space with its supports, unchecked.
    pub(crate) async fn space_with_supports(&self, sid: Id) -> Result<(Space, Vec<(Id, Support)>)> {
        let space = self
            .store
            .space(&sid)
            .await?
            .ok_or(Error::NotFound(Entity::Space))?;
        let (supports, _) = self
            .store
            .members(&SPACE_PROVIDERS_REL, &sid, None, PAGE_MAX)
            .await?;
        Ok((space, supports))
    }

    /// Changes a group's name or type (`group_change_data`).
    pub async fn update_group(
        &self,
        caller: &Caller,
        gid: Id,
        name: Option<&str>,
        kind: Option<GroupType>,
    ) -> Result<()> {
        self.require_exists(Entity::Group, &gid).await?;
        self.require(caller, Action::Group(gid, GP::ChangeData, None))
            .await?;
        if name.is_none() && kind.is_none() {
            return Err(Error::Invalid(
                "Expected at least one of the fields name and type.".into(),
            ));
        }
        self.store.update_group(&gid, name, kind).await
    }

    /// Renames a space (`space_change_data`).
    pub async fn rename_space(&self, caller: &Caller, sid: Id, name: &str) -> Result<()> {
        self.require_exists(Entity::Space, &sid).await?;
        self.require(caller, Action::Space(sid, SP::ChangeData, None))
            .await?;
        self.store.rename_space(&sid, name).await
    }

    /// Deletes a group (`group_remove`) or space (`space_remove`) with its
    /// relations and tokens.
    pub async fn delete_container(&self, caller: &Caller, c: Container, id: Id) -> Result<()> {
        self.require_exists(c.entity(), &id).await?;
        let action = match c {
            Container::Group => Action::Group(id, GP::Remove, None),
            Container::Space => Action::Space(id, SP::Remove, None),
        };
        self.require(caller, action).await?;
        self.store.delete(c.entity(), &id).await
    }

    /// A page of the users of a group or space, direct or through groups.
    pub async fn effective_users(
        &self,
        caller: &Caller,
        c: Container,
        id: Id,
        page: PageRequest,
    ) -> Result<Listed<Id>> {
        self.require_exists(c.entity(), &id).await?;
        self.require(caller, c.view().on(id)).await?;
        let all = match c {
            Container::Group => self.store.effective_group_users(&id).await?,
            Container::Space => self.store.effective_space_users(&id).await?,
        };
        Ok(super::slice(&all, page))
    }

    /// A user's effective privileges in a group or space (the user, or a viewer).
    pub async fn effective_privileges(
        &self,
        caller: &Caller,
        c: Container,
        id: Id,
        uid: Id,
    ) -> Result<Effective> {
        self.require_exists(Entity::User, &uid).await?;
        self.require_exists(c.entity(), &id).await?;
        if caller.subject != crate::model::Subject::User(uid) {
            self.require(caller, c.view().on(id)).await?;
        }
        let not_member = || Error::NotFound(Entity::Relation);
        Ok(match c {
            Container::Group => {
                let p = self.store.effective_group_privileges(&uid, &id).await?;
                if p.is_empty() && !self.store.is_effective_group_member(&uid, &id).await? {
                    return Err(not_member());
                }
                Effective::Group(p)
            }
            Container::Space => {
                let p = self.store.effective_space_privileges(&uid, &id).await?;
                if p.is_empty() && !self.store.effective_space_users(&id).await?.contains(&uid) {
                    return Err(not_member());
                }
                Effective::Space(p)
            }
        })
    }

    /// A page of the groups below a group (children, their children, ...).
    pub async fn effective_children(
        &self,
        caller: &Caller,
        gid: Id,
        page: PageRequest,
    ) -> Result<Listed<Id>> {
        self.require_exists(Entity::Group, &gid).await?;
        self.require(caller, GROUP_VIEW.on(gid)).await?;
        let mut all: BTreeSet<Id> = self
            .store
            .descendants_of_group(&gid)
            .await?
            .into_iter()
            .collect();
        all.remove(&gid);
        Ok(super::slice(&all, page))
    }

    /// Writes a consistent copy of the store to `dir` (zone `oz_backup`).
    pub async fn backup(&self, caller: &Caller, dir: &Path) -> Result<()> {
        self.require(caller, Action::Zone(ZP::Backup)).await?;
        self.store.backup_to(dir).await
    }
}
