//! Onedata 20.02+ invite tokens: what each type needs of its issuer, what
//! it carries, and their consumption.
//!
//! ozmint serves the invite types of its entities: `userJoinGroup`,
//! `groupJoinGroup`, `userJoinSpace`, `groupJoinSpace`, `supportSpace` and
//! `registerOneprovider`; the others (harvesters, clusters, automation
//! inventories) are `notSupported`. The inviter's privileges are Onezone's,
//! in ozmint's names: inviting a user or a group needs
//! `group_invite_user`/`group_invite_group` (or `space_invite_user`/
//! `space_invite_group`), a support request `space_add_provider`, each with
//! the zone alternative `oz_groups_add_relationships` or
//! `oz_spaces_add_relationships`; custom privileges also need
//! `group_set_privileges`/`space_set_privileges` (or the zone's
//! `set_privileges`); a provider registration token `oz_providers_create`
//! (ozmint's registration policy is restricted).
//!
//! A consumption is one transaction: it reads the named token's record (or
//! the temporary secret of its generation), the target, the issuer's
//! effective privileges and the membership, all guarded; checks the usage
//! limit (`inviteTokenUsageLimitReached`), the target
//! (`inviteTokenTargetIdInvalid`) and that the issuer still holds the
//! privilege (`inviteTokenSubjectNotAuthorized`); then writes the effect and
//! the incremented usage count together. Concurrent consumers through any
//! number of instances conflict, run again on fresh data, and exactly
//! `usageLimit` of them commit. A failed join writes nothing, so the count
//! only grows with joins.

use std::net::Ipv4Addr;

use serde_json::Value;

use super::authorize::Action;
use super::members::{MemberPrivileges, Members};
use super::token_auth::{token_subject, ContextParts};
use super::tokens::Minted;
use super::{Caller, Zone};
use crate::error::{Entity, Error, OzError, Result};
use crate::model::{
    now, GroupPrivilege as GP, GroupPrivileges, Id, SpacePrivilege as SP, SpacePrivileges, Subject,
    Support, ZonePrivilege as ZP,
};
use crate::store::schema::{NAMED_TOKENS, SPACE_PROVIDERS, TEMPORARY_SECRETS, USERS};
use crate::store::{
    effective_group_privileges_in, effective_space_privileges_in, require_in, Store, Txn,
    GROUP_CHILDREN_REL, GROUP_USERS_REL, SPACE_GROUPS_REL, SPACE_USERS_REL,
};
use crate::token::v2::{self, Consumer, Identifier, InviteType, Persistence, TokenType};

/// Most privilege names an invite token may carry.
pub const MAX_PRIVILEGES: usize = 64;

/// Longest auto name of a legacy invite token, in bytes (Onezone's).
pub const LEGACY_NAME_MAX: usize = 50;

/// `notSupported` unless ozmint serves invites of this type.
pub fn check_supported(t: InviteType) -> Result<(), OzError> {
    match t {
        InviteType::UserJoinGroup
        | InviteType::GroupJoinGroup
        | InviteType::UserJoinSpace
        | InviteType::GroupJoinSpace
        | InviteType::SupportSpace
        | InviteType::RegisterOneprovider => Ok(()),
        other => Err(OzError::InviteTypeNotSupported(other)),
    }
}

/// The membership an invite of this type creates, if it is a join.
pub fn membership(t: InviteType) -> Option<Members> {
    match t {
        InviteType::UserJoinGroup => Some(Members::GroupUsers),
        InviteType::GroupJoinGroup => Some(Members::GroupChildren),
        InviteType::UserJoinSpace => Some(Members::SpaceUsers),
        InviteType::GroupJoinSpace => Some(Members::SpaceGroups),
        _ => None,
    }
}

/// The kind of entity an invite's target id names.
fn target_entity(t: InviteType) -> Entity {
    match t {
        InviteType::UserJoinGroup | InviteType::GroupJoinGroup => Entity::Group,
        InviteType::RegisterOneprovider => Entity::User,
        _ => Entity::Space,
    }
}

/// The privileges a member joining through an invite of this type gets by
/// default (`None`: the type carries none).
pub fn default_privileges(t: InviteType) -> Option<MemberPrivileges> {
    match membership(t)? {
        Members::GroupUsers | Members::GroupChildren => {
            Some(MemberPrivileges::Group(GroupPrivileges::member_default()))
        }
        Members::SpaceUsers | Members::SpaceGroups => {
            Some(MemberPrivileges::Space(SpacePrivileges::member_default()))
        }
    }
}

/// The privileges an invite carries, from the `privileges` of a creation
/// request (`None`: the defaults). Group invites take group privilege
/// names, space invites space privilege names; other types take none.
pub fn requested_privileges(
    t: InviteType,
    names: Option<&Value>,
) -> Result<Option<MemberPrivileges>, OzError> {
    let default = default_privileges(t);
    let Some(v) = names else {
        return Ok(default);
    };
    let bad = |hint: String| OzError::BadData("privileges", hint);
    let Some(default) = default else {
        return Err(bad(format!(
            "'{}' invite tokens carry no privileges",
            t.json_name()
        )));
    };
    let list = v
        .as_array()
        .ok_or_else(|| bad("must be a list of privilege names".into()))?;
    if list.len() > MAX_PRIVILEGES {
        return Err(OzError::TooLarge("privileges", MAX_PRIVILEGES));
    }
    let names = list
        .iter()
        .map(|n| {
            n.as_str()
                .ok_or_else(|| bad("must be a list of privilege names".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let unknown = |n: String| bad(format!("unknown privilege '{n}'"));
    Ok(Some(match default {
        MemberPrivileges::Group(_) => {
            MemberPrivileges::Group(GroupPrivileges::from_api_names(&names).map_err(unknown)?)
        }
        MemberPrivileges::Space(_) => {
            MemberPrivileges::Space(SpacePrivileges::from_api_names(&names).map_err(unknown)?)
        }
    }))
}

/// The privileges a stored invite record carries (its names, or the defaults).
fn carried_privileges(
    t: InviteType,
    stored: Option<&[String]>,
) -> Result<Option<MemberPrivileges>> {
    let Some(names) = stored else {
        return Ok(default_privileges(t));
    };
    let corrupt = |n: String| Error::Invalid(format!("stored invite privilege '{n}'"));
    Ok(match default_privileges(t) {
        None => None,
        Some(MemberPrivileges::Group(_)) => Some(MemberPrivileges::Group(
            GroupPrivileges::from_names(names).map_err(corrupt)?,
        )),
        Some(MemberPrivileges::Space(_)) => Some(MemberPrivileges::Space(
            SpacePrivileges::from_names(names).map_err(corrupt)?,
        )),
    })
}

/// The `usageLimit` of a creation request: an integer of at least 1, or
/// `"infinity"` (`None`).
pub fn usage_limit(v: &Value) -> Result<Option<u64>, OzError> {
    match v {
        Value::String(s) if s == "infinity" => Ok(None),
        Value::Number(n) if n.as_u64().is_some_and(|n| n >= 1) => Ok(n.as_u64()),
        _ => Err(OzError::BadData(
            "usageLimit",
            "must be an integer of at least 1, or \"infinity\"".into(),
        )),
    }
}

/// Whether a consumer may use an invite of this type: a user for joins, a
/// provider for support requests, anyone (nobody too) for a registration.
pub fn valid_consumer(t: InviteType, consumer: Option<&Subject>) -> bool {
    match t {
        InviteType::SupportSpace => matches!(consumer, Some(Subject::Provider(_))),
        InviteType::RegisterOneprovider => true,
        _ => matches!(consumer, Some(Subject::User(_))),
    }
}

/// The target of an invite type as an id (`inviteTokenTargetIdInvalid`).
fn target_id(target: &str) -> Result<Id, OzError> {
    target
        .parse()
        .map_err(|_| OzError::InviteTargetIdInvalid(target.to_owned()))
}

/// `inviteTokenTargetIdInvalid` unless the target exists, read in `tx`.
async fn require_target(tx: &mut Txn<'_>, t: InviteType, target: &Id) -> Result<()> {
    match require_in(tx, target_entity(t), target).await {
        Err(Error::NotFound(_)) => Err(OzError::InviteTargetIdInvalid(target.to_string()).into()),
        other => other,
    }
}

/// Whether `issuer` may issue an invitation of type `t` to `target` (with
/// `custom` privileges), read in `tx` (guarded; see the module docs).
pub(crate) async fn may_invite_in(
    tx: &mut Txn<'_>,
    issuer: &Subject,
    t: InviteType,
    target: &Id,
    custom: bool,
) -> Result<bool> {
    let Subject::User(user) = issuer else {
        return Ok(false);
    };
    let zone = tx
        .get(&USERS, user)
        .await?
        .map(|u| u.zone_privileges)
        .unwrap_or_default();
    let (invite, set) = match t {
        InviteType::UserJoinGroup | InviteType::GroupJoinGroup => {
            let p = effective_group_privileges_in(tx, user, target).await?;
            let needed = if t == InviteType::UserJoinGroup {
                GP::InviteUser
            } else {
                GP::InviteGroup
            };
            (
                p.contains(needed) || zone.contains(ZP::GroupsAddRelationships),
                p.contains(GP::SetPrivileges) || zone.contains(ZP::SetPrivileges),
            )
        }
        InviteType::UserJoinSpace | InviteType::GroupJoinSpace | InviteType::SupportSpace => {
            let p = effective_space_privileges_in(tx, user, target).await?;
            let needed = match t {
                InviteType::UserJoinSpace => SP::InviteUser,
                InviteType::GroupJoinSpace => SP::InviteGroup,
                _ => SP::AddProvider,
            };
            (
                p.contains(needed) || zone.contains(ZP::SpacesAddRelationships),
                p.contains(SP::SetPrivileges) || zone.contains(ZP::SetPrivileges),
            )
        }
        InviteType::RegisterOneprovider => (zone.contains(ZP::ProvidersCreate), false),
        _ => (false, false),
    };
    Ok(invite && (!custom || set))
}

/// Checks in `tx` that an invitation may be issued: the target exists, the
/// issuer may invite (and set the privileges, if `custom`).
pub(crate) async fn ensure_valid_invitation(
    tx: &mut Txn<'_>,
    issuer: &Subject,
    t: InviteType,
    target: &Id,
    custom: bool,
) -> Result<()> {
    require_target(tx, t, target).await?;
    if !may_invite_in(tx, issuer, t, target, custom).await? {
        return Err(OzError::InviteSubjectNotAuthorized.into());
    }
    Ok(())
}

/// Who joins through a join invite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joiner {
    /// The calling user.
    Me,
    /// A group the calling user acts for (`/groups/{id}/...`).
    Group(Id),
}

/// What a consumption does once the token is found usable.
enum Effect<'a> {
    /// A new membership of `member` in the target.
    Join(Members, Id),
    /// The provider supports the target space with `size` bytes.
    Support(Id, u64),
    /// A new provider: name, domain, declared release version.
    Register(&'a str, &'a str, Option<&'a str>),
}

/// What a consumption made.
#[derive(Debug)]
pub enum Consumed {
    /// The id of the group or space joined, or of the space supported.
    Target(Id),
    /// A registered provider and its root token.
    Provider(Id, Minted),
}

/// The `relationAlreadyExists` error of a membership or support.
fn already(t: InviteType, member: &Id, target: &Id) -> Error {
    let (child_type, parent_type) = match t {
        InviteType::UserJoinGroup => ("user", "group"),
        InviteType::GroupJoinGroup => ("group", "group"),
        InviteType::UserJoinSpace => ("user", "space"),
        InviteType::GroupJoinSpace => ("group", "space"),
        _ => ("space", "provider"),
    };
    let (child, parent) = if t == InviteType::SupportSpace {
        (target, member)
    } else {
        (member, target)
    };
    OzError::RelationAlreadyExists {
        child_type,
        child_id: child.to_string(),
        parent_type,
        parent_id: parent.to_string(),
    }
    .into()
}

/// Writes a new membership with the carried privileges in `tx`.
async fn join_in(
    tx: &mut Txn<'_>,
    t: InviteType,
    m: Members,
    target: &Id,
    member: &Id,
    privileges: Option<MemberPrivileges>,
) -> Result<()> {
    let exists = match m {
        Members::GroupUsers => tx.exists(&GROUP_USERS_REL.fwd, &(*target, *member)).await?,
        Members::GroupChildren => {
            tx.exists(&GROUP_CHILDREN_REL.fwd, &(*target, *member))
                .await?
        }
        Members::SpaceUsers => tx.exists(&SPACE_USERS_REL.fwd, &(*target, *member)).await?,
        Members::SpaceGroups => {
            tx.exists(&SPACE_GROUPS_REL.fwd, &(*target, *member))
                .await?
        }
    };
    if exists {
        return Err(already(t, member, target));
    }
    let bad = || Error::Invalid("invite privileges of the wrong kind".into());
    match (m, privileges) {
        (Members::GroupUsers, Some(MemberPrivileges::Group(p))) => {
            Store::put_relation_in(tx, &GROUP_USERS_REL, target, member, &p).await?
        }
        (Members::GroupChildren, Some(MemberPrivileges::Group(p))) => {
            Store::put_relation_in(tx, &GROUP_CHILDREN_REL, target, member, &p).await?
        }
        (Members::SpaceUsers, Some(MemberPrivileges::Space(p))) => {
            Store::put_relation_in(tx, &SPACE_USERS_REL, target, member, &p).await?
        }
        (Members::SpaceGroups, Some(MemberPrivileges::Space(p))) => {
            Store::put_relation_in(tx, &SPACE_GROUPS_REL, target, member, &p).await?
        }
        _ => return Err(bad()),
    };
    Ok(())
}

/// Onezone's auto name of a legacy invite token:
/// `"<description> - <entity name> <6 hex>"`, the entity name shortened
/// (with `...`) to keep it within [`LEGACY_NAME_MAX`] bytes; characters a
/// token name may not hold become `_`.
pub fn legacy_invite_name(t: InviteType, entity_name: &str) -> String {
    let description = match t {
        InviteType::UserJoinGroup => "user invite to group",
        InviteType::GroupJoinGroup => "group invite to group",
        InviteType::UserJoinSpace => "user invite to space",
        InviteType::GroupJoinSpace => "group invite to space",
        InviteType::SupportSpace => "support request for space",
        _ => "Oneprovider rgstr. token for",
    };
    let suffix = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let clean: String = entity_name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '_' | '(' | ')' | '-' | '.' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = clean.as_str().to_owned();
    let mut shortened = false;
    loop {
        let dots = if shortened { "..." } else { "" };
        let full = format!("{description} - {name}{dots} {suffix}");
        if full.len() <= LEGACY_NAME_MAX || name.is_empty() {
            return full;
        }
        name.pop();
        shortened = true;
    }
}

impl Zone {
    /// A deprecated invite endpoint (`POST /spaces/{id}/users/token` and
    /// the like): a named invite token of the caller's with `usageLimit` 1,
    /// the default privileges and Onezone's auto name. `NotFound` without
    /// the target, `Forbidden` without the privilege to invite.
    pub async fn create_legacy_invite(
        &self,
        caller: &Caller,
        t: InviteType,
        target: Id,
    ) -> Result<super::named_tokens::NamedTokenInfo> {
        check_supported(t)?;
        let kind = target_entity(t);
        let name = match kind {
            Entity::Group => self.store.group(&target).await?.map(|g| g.name),
            Entity::Space => self.store.space(&target).await?.map(|s| s.name),
            _ => self.store.user(&target).await?.map(|u| u.name),
        }
        .ok_or(Error::NotFound(kind))?;
        let (subject, target_ref) = (&caller.subject, &target);
        let may = self
            .store
            .transact(|mut tx| async move {
                let may = may_invite_in(&mut tx, subject, t, target_ref, false).await?;
                Ok(tx.done(may))
            })
            .await?;
        if !may {
            return Err(Error::Forbidden(crate::error::Forbidden::Privileges));
        }
        let token_type = TokenType::invite(t, &target.to_string())
            .map_err(|e| Error::Invalid(format!("invite type: {e}")))?;
        // A random suffix taken already: draw another, a few times.
        let mut attempts = 0;
        loop {
            let req = super::named_tokens::NamedTokenRequest {
                name: legacy_invite_name(t, &name),
                token_type: token_type.clone(),
                caveats: Vec::new(),
                custom_metadata: serde_json::Map::new(),
                revoked: false,
                privileges: default_privileges(t),
                usage_limit: Some(1),
            };
            match self.create_named_token(caller, caller.subject, req).await {
                Err(Error::Onezone(OzError::IdentifierOccupied(_))) if attempts < 3 => {
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    /// Checks that `subject` may issue an invitation of `token_type` (with
    /// `custom` privileges), in a read-only transaction: temporary invite
    /// tokens, which are not stored.
    pub(crate) async fn check_invitation(
        &self,
        subject: &Subject,
        token_type: &TokenType,
        custom: bool,
    ) -> Result<()> {
        let TokenType::Invite {
            invite_type,
            target,
        } = token_type
        else {
            return Ok(());
        };
        check_supported(*invite_type)?;
        let target = target_id(target)?;
        self.store
            .transact(|mut tx| async move {
                ensure_valid_invitation(&mut tx, subject, *invite_type, &target, custom).await?;
                Ok(tx.done(()))
            })
            .await
    }

    /// The calling user (or a group the user acts for) joins the group of
    /// a `userJoinGroup` (`groupJoinGroup`) invite token. Returns the group.
    pub async fn join_group(
        &self,
        caller: &Caller,
        joiner: Joiner,
        token: &str,
        peer: Option<Ipv4Addr>,
    ) -> Result<Id> {
        let (t, member) = match joiner {
            Joiner::Me => (InviteType::UserJoinGroup, caller.user_id()?),
            Joiner::Group(g) => (InviteType::GroupJoinGroup, g),
        };
        self.join(caller, joiner, t, member, token, peer).await
    }

    /// The calling user (or a group the user acts for) joins the space of
    /// a `userJoinSpace` (`groupJoinSpace`) invite token. Returns the space.
    pub async fn join_space(
        &self,
        caller: &Caller,
        joiner: Joiner,
        token: &str,
        peer: Option<Ipv4Addr>,
    ) -> Result<Id> {
        let (t, member) = match joiner {
            Joiner::Me => (InviteType::UserJoinSpace, caller.user_id()?),
            Joiner::Group(g) => (InviteType::GroupJoinSpace, g),
        };
        self.join(caller, joiner, t, member, token, peer).await
    }

    async fn join(
        &self,
        caller: &Caller,
        joiner: Joiner,
        t: InviteType,
        member: Id,
        token: &str,
        peer: Option<Ipv4Addr>,
    ) -> Result<Id> {
        if let Joiner::Group(g) = joiner {
            // Onezone: group_add_parent / group_add_space in the child group.
            self.require_exists(Entity::Group, &g).await?;
            let needed = if t == InviteType::GroupJoinGroup {
                GP::JoinGroup
            } else {
                GP::JoinSpace
            };
            self.require(
                caller,
                Action::Group(g, needed, Some(ZP::GroupsAddRelationships)),
            )
            .await?;
        }
        let m = membership(t).ok_or_else(|| Error::Invalid("not a join".into()))?;
        match self
            .consume_invite(
                Some(&caller.subject),
                token,
                t,
                peer,
                Effect::Join(m, member),
            )
            .await?
        {
            Consumed::Target(id) => Ok(id),
            Consumed::Provider(..) => Err(Error::Invalid("not a join".into())),
        }
    }

    /// The calling provider supports the space of a `supportSpace` invite
    /// token with `size` bytes. Returns the space.
    pub async fn support_space_with_invite(
        &self,
        caller: &Caller,
        token: &str,
        size: u64,
        peer: Option<Ipv4Addr>,
    ) -> Result<Id> {
        let provider = caller.provider_id()?;
        if size == 0 {
            return Err(Error::Invalid("`size` must be a positive integer".into()));
        }
        match self
            .consume_invite(
                Some(&caller.subject),
                token,
                InviteType::SupportSpace,
                peer,
                Effect::Support(provider, size),
            )
            .await?
        {
            Consumed::Target(id) => Ok(id),
            Consumed::Provider(..) => Err(Error::Invalid("not a support".into())),
        }
    }

    /// Registers a provider with a `registerOneprovider` invite token, by
    /// anyone (`caller` `None`: an unauthenticated request). Returns the
    /// provider and its root token.
    pub async fn register_provider_with_invite(
        &self,
        caller: Option<&Caller>,
        token: &str,
        name: &str,
        domain: &str,
        version: Option<&str>,
        peer: Option<Ipv4Addr>,
    ) -> Result<(Id, Minted)> {
        if let Some(v) = version {
            super::providers::check_version(v)?;
        }
        match self
            .consume_invite(
                caller.map(|c| &c.subject),
                token,
                InviteType::RegisterOneprovider,
                peer,
                Effect::Register(name, domain, version),
            )
            .await?
        {
            Consumed::Provider(id, minted) => Ok((id, minted)),
            Consumed::Target(_) => Err(Error::Invalid("not a registration".into())),
        }
    }

    /// The consumption of an invite token of type `t` by `consumer` (see
    /// the module docs).
    async fn consume_invite(
        &self,
        consumer: Option<&Subject>,
        serialized: &str,
        t: InviteType,
        peer: Option<Ipv4Addr>,
        effect: Effect<'_>,
    ) -> Result<Consumed> {
        let bad_token = |e: OzError| OzError::BadValueToken("token", Box::new(e));
        let token = self.present(serialized).map_err(bad_token)?;
        let Identifier::V2(ident) = token.identifier() else {
            return Err(bad_token(OzError::NotAnInviteToken(Some(t), TokenType::ACCESS)).into());
        };
        let ty = ident.token_type().clone();
        let TokenType::Invite {
            invite_type,
            target,
        } = &ty
        else {
            return Err(bad_token(OzError::NotAnInviteToken(Some(t), ty.clone())).into());
        };
        if *invite_type != t {
            return Err(bad_token(OzError::NotAnInviteToken(Some(t), ty.clone())).into());
        }
        let parts = ContextParts {
            peer_ip: peer,
            consumer: consumer.map(|s| match s {
                Subject::User(u) => Consumer::User(u.to_string()),
                Subject::Provider(p) => Consumer::Provider(p.to_string()),
            }),
            ..ContextParts::default()
        };
        let (_, issuer) = self.verify_invite(&token, Some(t), &parts).await?;
        if !valid_consumer(t, consumer) {
            return Err(OzError::InviteConsumerInvalid(consumer.map(token_subject)).into());
        }
        let target = target_id(target)?;
        let persistence = ident.persistence();
        let token_id: Option<Id> = match persistence {
            Persistence::Named => Some(
                ident
                    .id()
                    .parse()
                    .map_err(|_| OzError::Token(v2::Error::Invalid))?,
            ),
            Persistence::Temporary { .. } => None,
        };
        let retry = std::sync::atomic::AtomicBool::new(false);
        let (retry, effect, issuer, target) = (&retry, &effect, &issuer, &target);
        self.store
            .transact(|mut tx| async move {
                // The token as it is now (guarded): still there, not
                // revoked, below its usage limit.
                let (record, privileges) = match (token_id, persistence) {
                    (Some(id), _) => {
                        let rec = tx
                            .get(&NAMED_TOKENS, &id)
                            .await?
                            .ok_or(OzError::Token(v2::Error::Invalid))?;
                        if rec.revoked {
                            return Err(OzError::Revoked.into());
                        }
                        if rec.usage_limit.is_some_and(|l| rec.usage_count >= l) {
                            return Err(OzError::InviteUsageLimitReached.into());
                        }
                        let privs = carried_privileges(t, rec.privileges.as_deref())?;
                        (Some((id, rec)), privs)
                    }
                    (None, Persistence::Temporary { generation }) => {
                        let current = tx
                            .get(&TEMPORARY_SECRETS, issuer)
                            .await?
                            .map_or(1, |s| s.generation);
                        if current > generation {
                            return Err(OzError::Revoked.into());
                        }
                        if current < generation {
                            return Err(OzError::Token(v2::Error::Invalid).into());
                        }
                        // Temporary invites carry the default privileges only.
                        (None, default_privileges(t))
                    }
                    (None, Persistence::Named) => {
                        return Err(OzError::Token(v2::Error::Invalid).into())
                    }
                };
                let custom = privileges != default_privileges(t);
                ensure_valid_invitation(&mut tx, issuer, t, target, custom).await?;
                let out = match *effect {
                    Effect::Join(m, member) => {
                        join_in(&mut tx, t, m, target, &member, privileges).await?;
                        Consumed::Target(*target)
                    }
                    Effect::Support(provider, size) => {
                        if tx.exists(&SPACE_PROVIDERS, &(*target, provider)).await? {
                            return Err(already(t, &provider, target));
                        }
                        let support = Support { size, since: now() };
                        Store::put_relation_in(
                            &mut tx,
                            &crate::store::SPACE_PROVIDERS_REL,
                            target,
                            &provider,
                            &support,
                        )
                        .await?;
                        Consumed::Target(*target)
                    }
                    Effect::Register(name, domain, version) => {
                        let refresh = retry.swap(true, std::sync::atomic::Ordering::AcqRel);
                        let (pid, minted) = self
                            .register_provider_in(&mut tx, *issuer, name, domain, version, refresh)
                            .await?;
                        Consumed::Provider(pid, minted)
                    }
                };
                if let Some((id, mut rec)) = record {
                    rec.usage_count = rec.usage_count.saturating_add(1);
                    tx.put(&NAMED_TOKENS, &id, &rec)?;
                }
                Ok(tx.done(out))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names_stay_within_fifty_bytes() {
        let n = legacy_invite_name(InviteType::UserJoinSpace, "lab");
        assert!(n.starts_with("user invite to space - lab "), "{n}");
        assert_eq!(n.len(), "user invite to space - lab ".len() + 6);
        let long = legacy_invite_name(InviteType::SupportSpace, &"ż".repeat(40));
        assert!(long.len() <= LEGACY_NAME_MAX, "{long}");
        assert!(long.contains("ż... "), "{long}");
        assert!(super::super::named_tokens::valid_name(&long), "{long}");
        let odd = legacy_invite_name(InviteType::UserJoinGroup, "a/b");
        assert!(odd.contains("a_b"), "{odd}");
    }

    #[test]
    fn usage_limits_and_privileges_parse() {
        use serde_json::json;
        assert_eq!(usage_limit(&json!(3)).unwrap(), Some(3));
        assert_eq!(usage_limit(&json!("infinity")).unwrap(), None);
        for bad in [json!(0), json!(-1), json!(1.5), json!("3"), json!(null)] {
            assert!(usage_limit(&bad).is_err(), "{bad}");
        }
        let t = InviteType::UserJoinSpace;
        assert_eq!(
            requested_privileges(t, None).unwrap(),
            default_privileges(t)
        );
        let p = requested_privileges(t, Some(&json!(["space_view_data"]))).unwrap();
        assert_ne!(p, default_privileges(t));
        assert!(requested_privileges(t, Some(&json!(["group_view_data"]))).is_err());
        assert!(requested_privileges(InviteType::SupportSpace, Some(&json!([]))).is_err());
        assert_eq!(
            requested_privileges(InviteType::SupportSpace, None).unwrap(),
            None
        );
    }
}
