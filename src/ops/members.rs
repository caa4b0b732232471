//! Members of groups and spaces: listing, adding, removing, privileges.
//!
//! Each kind of membership ([`Members`]) states once which entities it joins
//! and which privilege (or zone alternative) each action needs.

use super::authorize::Action;
use super::{Caller, Listed, PageRequest, Zone};
use crate::error::{Entity, Error, Result};
use crate::model::{
    GroupPrivilege as GP, GroupPrivileges, Id, PrivSet, Privilege, SpacePrivilege as SP,
    SpacePrivileges, ZonePrivilege as ZP,
};
use crate::store::{
    Relation, GROUP_CHILDREN_REL, GROUP_USERS_REL, SPACE_GROUPS_REL, SPACE_USERS_REL,
};

/// A privilege update: set, grant or revoke a set of privileges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrivilegeChange<P: Privilege> {
    /// Replace the privileges.
    Set(PrivSet<P>),
    /// Add to them.
    Grant(PrivSet<P>),
    /// Take away from them.
    Revoke(PrivSet<P>),
}

impl<P: Privilege> PrivilegeChange<P> {
    /// Parses `{"operation": "set"|"grant"|"revoke", "privileges": [...]}`'s parts.
    pub fn parse<S: AsRef<str>>(operation: &str, names: &[S]) -> Result<Self> {
        let set = PrivSet::<P>::from_api_names(names)
            .map_err(|n| Error::Invalid(format!("Unknown privilege `{n}`.")))?;
        match operation {
            "set" => Ok(PrivilegeChange::Set(set)),
            "grant" => Ok(PrivilegeChange::Grant(set)),
            "revoke" => Ok(PrivilegeChange::Revoke(set)),
            other => Err(Error::Invalid(format!(
                "Unknown operation `{other}`: use set, grant or revoke."
            ))),
        }
    }

    /// The privileges after the change.
    pub fn apply(&self, old: PrivSet<P>) -> PrivSet<P> {
        match *self {
            PrivilegeChange::Set(s) => s,
            PrivilegeChange::Grant(s) => old.union(s),
            PrivilegeChange::Revoke(s) => old.difference(s),
        }
    }
}

/// A kind of membership, seen from its container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Members {
    /// Users of a group.
    GroupUsers,
    /// Child groups of a group.
    GroupChildren,
    /// Users of a space.
    SpaceUsers,
    /// Groups of a space.
    SpaceGroups,
}

/// A container privilege with its zone alternative, not yet bound to an id.
#[derive(Clone, Copy)]
pub(crate) enum Needs {
    Group(GP, Option<ZP>),
    Space(SP, Option<ZP>),
}

impl Needs {
    pub(crate) fn on(self, id: Id) -> Action {
        match self {
            Needs::Group(p, z) => Action::Group(id, p, z),
            Needs::Space(p, z) => Action::Space(id, p, z),
        }
    }
}

pub(crate) const GROUP_VIEW: Needs = Needs::Group(GP::ViewData, Some(ZP::ListGroups));
pub(crate) const SPACE_VIEW: Needs = Needs::Space(SP::ViewData, Some(ZP::ListSpaces));

/// What each kind of membership needs.
struct Kind<P: 'static> {
    relation: &'static Relation<PrivSet<P>>,
    container: Entity,
    member: Entity,
    view: Needs,
    add: Needs,
    remove: Needs,
    set: Needs,
    default: fn() -> PrivSet<P>,
}

const GROUP_USERS_KIND: Kind<GP> = Kind {
    relation: &GROUP_USERS_REL,
    container: Entity::Group,
    member: Entity::User,
    view: GROUP_VIEW,
    add: Needs::Group(GP::InviteUser, Some(ZP::GroupsAddMembers)),
    remove: Needs::Group(GP::RemoveUser, Some(ZP::GroupsRemoveMembers)),
    set: Needs::Group(GP::SetPrivileges, Some(ZP::SetPrivileges)),
    default: GroupPrivileges::member_default,
};

const GROUP_CHILDREN_KIND: Kind<GP> = Kind {
    relation: &GROUP_CHILDREN_REL,
    container: Entity::Group,
    member: Entity::Group,
    view: GROUP_VIEW,
    add: Needs::Group(GP::InviteGroup, Some(ZP::GroupsAddMembers)),
    remove: Needs::Group(GP::RemoveGroup, Some(ZP::GroupsRemoveMembers)),
    set: Needs::Group(GP::SetPrivileges, Some(ZP::SetPrivileges)),
    default: GroupPrivileges::member_default,
};

const SPACE_USERS_KIND: Kind<SP> = Kind {
    relation: &SPACE_USERS_REL,
    container: Entity::Space,
    member: Entity::User,
    view: SPACE_VIEW,
    add: Needs::Space(SP::InviteUser, Some(ZP::AddMemberToSpace)),
    remove: Needs::Space(SP::RemoveUser, Some(ZP::RemoveMemberFromSpace)),
    set: Needs::Space(SP::SetPrivileges, Some(ZP::SetPrivileges)),
    default: SpacePrivileges::member_default,
};

const SPACE_GROUPS_KIND: Kind<SP> = Kind {
    relation: &SPACE_GROUPS_REL,
    container: Entity::Space,
    member: Entity::Group,
    view: SPACE_VIEW,
    add: Needs::Space(SP::InviteGroup, Some(ZP::AddMemberToSpace)),
    remove: Needs::Space(SP::RemoveGroup, Some(ZP::RemoveMemberFromSpace)),
    set: Needs::Space(SP::SetPrivileges, Some(ZP::SetPrivileges)),
    default: SpacePrivileges::member_default,
};

/// Privileges of a member, of whichever kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberPrivileges {
    /// In a group.
    Group(GroupPrivileges),
    /// In a space.
    Space(SpacePrivileges),
}

impl MemberPrivileges {
    /// The privilege names, in canonical order.
    pub fn names(&self) -> Vec<&'static str> {
        match self {
            MemberPrivileges::Group(p) => p.names(),
            MemberPrivileges::Space(p) => p.names(),
        }
    }
}

/// A privilege change for a member, by its names (validated by the call).
#[derive(Clone, Debug)]
pub struct NamedChange {
    /// `set`, `grant` or `revoke`.
    pub operation: String,
    /// Privilege names.
    pub privileges: Vec<String>,
}

impl Members {
    /// The entity kind of the container (group or space).
    pub fn container(self) -> Entity {
        match self {
            Members::GroupUsers | Members::GroupChildren => Entity::Group,
            Members::SpaceUsers | Members::SpaceGroups => Entity::Space,
        }
    }

    /// The entity kind of the members.
    pub fn member(self) -> Entity {
        match self {
            Members::GroupUsers | Members::SpaceUsers => Entity::User,
            Members::GroupChildren | Members::SpaceGroups => Entity::Group,
        }
    }
}

/// Runs `$body` with `$k` bound to the [`Kind`] of `$m` (every arm has the
/// same result type; privilege sets of both kinds differ, so those callers
/// match by hand).
macro_rules! with_kind {
    ($m:expr, $k:ident => $body:expr) => {
        match $m {
            Members::GroupUsers => {
                let $k = &GROUP_USERS_KIND;
                $body
            }
            Members::GroupChildren => {
                let $k = &GROUP_CHILDREN_KIND;
                $body
            }
            Members::SpaceUsers => {
                let $k = &SPACE_USERS_KIND;
                $body
            }
            Members::SpaceGroups => {
                let $k = &SPACE_GROUPS_KIND;
                $body
            }
        }
    };
}

impl Zone {
    /// A page of the members of a group or space.
    pub async fn members(
        &self,
        caller: &Caller,
        m: Members,
        container: Id,
        page: PageRequest,
    ) -> Result<Listed<Id>> {
        with_kind!(m, k => self.list(caller, k, container, page).await)
    }

    /// Whether `member` is a direct member (`NotFound` if not); to viewers.
    pub async fn member(
        &self,
        caller: &Caller,
        m: Members,
        container: Id,
        member: Id,
    ) -> Result<()> {
        self.member_privileges(caller, m, container, member)
            .await
            .map(|_| ())
    }

    /// Adds a member with the default privileges; a member stays as it is.
    /// Returns whether it was added.
    pub async fn add_member(
        &self,
        caller: &Caller,
        m: Members,
        container: Id,
        member: Id,
    ) -> Result<bool> {
        with_kind!(m, k => self.add(caller, k, container, member).await)
    }

    /// Removes a member (`NotFound` if it is none).
    pub async fn remove_member(
        &self,
        caller: &Caller,
        m: Members,
        container: Id,
        member: Id,
    ) -> Result<()> {
        with_kind!(m, k => self.remove(caller, k, container, member).await)
    }

    /// A direct member's privileges (to viewers).
    pub async fn member_privileges(
        &self,
        caller: &Caller,
        m: Members,
        container: Id,
        member: Id,
    ) -> Result<MemberPrivileges> {
        Ok(match m {
            Members::GroupUsers => MemberPrivileges::Group(
                self.privs(caller, &GROUP_USERS_KIND, container, member)
                    .await?,
            ),
            Members::GroupChildren => MemberPrivileges::Group(
                self.privs(caller, &GROUP_CHILDREN_KIND, container, member)
                    .await?,
            ),
            Members::SpaceUsers => MemberPrivileges::Space(
                self.privs(caller, &SPACE_USERS_KIND, container, member)
                    .await?,
            ),
            Members::SpaceGroups => MemberPrivileges::Space(
                self.privs(caller, &SPACE_GROUPS_KIND, container, member)
                    .await?,
            ),
        })
    }

    /// Changes a direct member's privileges, as one read-modify-write.
    pub async fn update_member_privileges(
        &self,
        caller: &Caller,
        m: Members,
        container: Id,
        member: Id,
        change: &NamedChange,
    ) -> Result<()> {
        with_kind!(m, k => self.set_privs(caller, k, container, member, change).await)
    }

    /// What [`Zone::update_member_privileges`] checks before it looks at the
    /// change, without changing anything: both ends exist (404), then the
    /// caller may set privileges in the container (403).
    pub async fn may_update_member_privileges(
        &self,
        caller: &Caller,
        m: Members,
        container: Id,
        member: Id,
    ) -> Result<()> {
        with_kind!(m, k => self.may_set(caller, k, container, member).await)
    }

    async fn may_set<P: Privilege + Send + Sync>(
        &self,
        caller: &Caller,
        k: &Kind<P>,
        container: Id,
        member: Id,
    ) -> Result<()> {
        self.ends(k, &container, &member).await?;
        self.require(caller, k.set.on(container)).await
    }

    async fn ends<P: Privilege>(&self, k: &Kind<P>, container: &Id, member: &Id) -> Result<()> {
        self.require_exists(k.container, container).await?;
        self.require_exists(k.member, member).await
    }

    async fn list<P: Privilege + Send + Sync>(
        &self,
        caller: &Caller,
        k: &Kind<P>,
        container: Id,
        page: PageRequest,
    ) -> Result<Listed<Id>> {
        self.require_exists(k.container, &container).await?;
        self.require(caller, k.view.on(container)).await?;
        let (members, more) = self
            .store
            .members(k.relation, &container, page.after, page.limit)
            .await?;
        let ids = members.into_iter().map(|(id, _)| id).collect();
        Ok(Listed::new(ids, more, |id| *id))
    }

    async fn add<P: Privilege + Send + Sync>(
        &self,
        caller: &Caller,
        k: &Kind<P>,
        container: Id,
        member: Id,
    ) -> Result<bool> {
        self.ends(k, &container, &member).await?;
        self.require(caller, k.add.on(container)).await?;
        self.store
            .add_relation(k.relation, &container, &member, &(k.default)())
            .await
    }

    async fn remove<P: Privilege + Send + Sync>(
        &self,
        caller: &Caller,
        k: &Kind<P>,
        container: Id,
        member: Id,
    ) -> Result<()> {
        self.ends(k, &container, &member).await?;
        self.require(caller, k.remove.on(container)).await?;
        if self
            .store
            .remove_relation(k.relation, &container, &member)
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound(Entity::Relation))
        }
    }

    async fn privs<P: Privilege + Send + Sync>(
        &self,
        caller: &Caller,
        k: &Kind<P>,
        container: Id,
        member: Id,
    ) -> Result<PrivSet<P>> {
        self.ends(k, &container, &member).await?;
        self.require(caller, k.view.on(container)).await?;
        self.store
            .relation(k.relation, &container, &member)
            .await?
            .ok_or(Error::NotFound(Entity::Relation))
    }

    async fn set_privs<P: Privilege + Send + Sync>(
        &self,
        caller: &Caller,
        k: &Kind<P>,
        container: Id,
        member: Id,
        change: &NamedChange,
    ) -> Result<()> {
        self.may_set(caller, k, container, member).await?;
        let change = PrivilegeChange::<P>::parse(&change.operation, &change.privileges)?;
        self.store
            .update_relation(k.relation, &container, &member, |old| Ok(change.apply(old)))
            .await?;
        Ok(())
    }
}
