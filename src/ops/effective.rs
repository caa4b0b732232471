//! Effective memberships seen from below: a user's effective groups, spaces
//! and providers; a group's parents and effective spaces; a space's
//! effective groups.
//!
//! Authorization follows Onezone: the `/user/...` listings are the calling
//! user's own (providers are refused); a group's or space's listings need
//! its view privilege (`group_view_data` / `space_view_data`) or the zone
//! alternative (`oz_groups_list` / `oz_spaces_list`). A single effective
//! group or space of the caller is shown to any effective member, and is a
//! 404 to anyone else.

use super::containers::Container;
use super::members::{GROUP_VIEW, SPACE_VIEW};
use super::{slice, Caller, Listed, PageRequest, Zone};
use crate::error::{Entity, Error, Result};
use crate::model::{Group, Id, Space, Support};
use crate::store::GROUP_CHILDREN_REL;

impl Zone {
    /// A page of the calling user's groups, direct or through nested groups.
    pub async fn my_effective_groups(
        &self,
        caller: &Caller,
        page: PageRequest,
    ) -> Result<Listed<Id>> {
        let uid = caller.user_id()?;
        Ok(slice(&self.store.effective_user_groups(&uid).await?, page))
    }

    /// One of the calling user's effective groups; `NotFound` for a group
    /// the user does not belong to.
    pub async fn my_effective_group(&self, caller: &Caller, gid: Id) -> Result<Group> {
        let uid = caller.user_id()?;
        self.require_exists(Entity::Group, &gid).await?;
        if !self.store.is_effective_group_member(&uid, &gid).await? {
            return Err(Error::NotFound(Entity::Relation));
        }
        self.store
            .group(&gid)
            .await?
            .ok_or(Error::NotFound(Entity::Group))
    }

    /// A page of the calling user's spaces, direct or through groups.
    pub async fn my_effective_spaces(
        &self,
        caller: &Caller,
        page: PageRequest,
    ) -> Result<Listed<Id>> {
        let uid = caller.user_id()?;
        Ok(slice(&self.store.effective_user_spaces(&uid).await?, page))
    }

    /// One of the calling user's effective spaces with its supports;
    /// `NotFound` for a space the user does not belong to.
    pub async fn my_effective_space(
        &self,
        caller: &Caller,
        sid: Id,
    ) -> Result<(Space, Vec<(Id, Support)>)> {
        let uid = caller.user_id()?;
        self.require_exists(Entity::Space, &sid).await?;
        if !self.store.effective_user_spaces(&uid).await?.contains(&sid) {
            return Err(Error::NotFound(Entity::Relation));
        }
        self.space_with_supports(sid).await
    }

    /// A page of the providers supporting the calling user's effective spaces.
    pub async fn my_effective_providers(
        &self,
        caller: &Caller,
        page: PageRequest,
    ) -> Result<Listed<Id>> {
        let uid = caller.user_id()?;
        Ok(slice(
            &self.store.effective_user_providers(&uid).await?,
            page,
        ))
    }

    /// A page of a group's direct parent groups.
    pub async fn group_parents(
        &self,
        caller: &Caller,
        gid: Id,
        page: PageRequest,
    ) -> Result<Listed<Id>> {
        self.require_exists(Entity::Group, &gid).await?;
        self.require(caller, GROUP_VIEW.on(gid)).await?;
        let (ids, more) = self
            .store
            .memberships(&GROUP_CHILDREN_REL, &gid, page.after, page.limit)
            .await?;
        Ok(Listed::new(ids, more, |id| *id))
    }

    /// A page of the groups above a group (parents, their parents, ...).
    pub async fn group_effective_parents(
        &self,
        caller: &Caller,
        gid: Id,
        page: PageRequest,
    ) -> Result<Listed<Id>> {
        self.require_exists(Entity::Group, &gid).await?;
        self.require(caller, GROUP_VIEW.on(gid)).await?;
        let all = self.store.ancestors_of_group(&gid).await?;
        Ok(slice(&all.into_iter().collect(), page))
    }

    /// A page of the spaces a group's members belong to through it: those of
    /// the group and of every group above it.
    pub async fn group_effective_spaces(
        &self,
        caller: &Caller,
        gid: Id,
        page: PageRequest,
    ) -> Result<Listed<Id>> {
        self.require_exists(Entity::Group, &gid).await?;
        self.require(caller, GROUP_VIEW.on(gid)).await?;
        Ok(slice(&self.store.effective_group_spaces(&gid).await?, page))
    }

    /// A page of the groups of a space, direct or below one of its groups.
    pub async fn space_effective_groups(
        &self,
        caller: &Caller,
        sid: Id,
        page: PageRequest,
    ) -> Result<Listed<Id>> {
        self.require_exists(Container::Space.entity(), &sid).await?;
        self.require(caller, SPACE_VIEW.on(sid)).await?;
        Ok(slice(&self.store.effective_space_groups(&sid).await?, page))
    }
}
