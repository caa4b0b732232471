//! Who may do what: effective privileges in spaces and groups, or the
//! zone-level alternative. Read fresh for every decision (the group graph
//! through its generation-checked cache), so a revocation through any
//! instance holds from the next request on.

use super::{Caller, Zone};
use crate::error::{Error, Forbidden, Result};
use crate::model::{
    GroupPrivilege, Id, SpacePrivilege, Subject, TokenKind, TokenRecord, ZonePrivilege,
    ZonePrivileges,
};
use crate::store::Store;

/// Something a subject may try to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Mint a space support token for a space.
    CreateSupportToken(Id),
    /// Mint a space creation token for a group.
    CreateSpaceToken(Id),
    /// See a space's supporting providers.
    ViewSpace(Id),
    /// Register a provider.
    CreateProvider,
    /// List providers.
    ListProviders,
    /// Rotate, retire and list root keys; manage any token.
    ManageKeys,
    /// Something needing a group privilege, or else the zone privilege if any.
    Group(Id, GroupPrivilege, Option<ZonePrivilege>),
    /// Something needing a space privilege, or else the zone privilege if any.
    Space(Id, SpacePrivilege, Option<ZonePrivilege>),
    /// Something needing a zone privilege.
    Zone(ZonePrivilege),
}

async fn zone_of(store: &Store, user: &Id) -> Result<ZonePrivileges> {
    Ok(store
        .user(user)
        .await?
        .map(|u| u.zone_privileges)
        .unwrap_or_default())
}

/// Whether `subject` may perform `action`, by effective privileges or by the
/// zone-level alternative. Providers may do none of these.
pub async fn allowed(store: &Store, subject: &Subject, action: Action) -> Result<bool> {
    let Subject::User(user) = subject else {
        return Ok(false);
    };
    let zone = zone_of(store, user).await?;
    let space = |s: Id, p: SpacePrivilege| async move {
        Ok::<_, Error>(
            store
                .effective_space_privileges(user, &s)
                .await?
                .contains(p),
        )
    };
    let group = |g: Id, p: GroupPrivilege| async move {
        Ok::<_, Error>(
            store
                .effective_group_privileges(user, &g)
                .await?
                .contains(p),
        )
    };
    Ok(match action {
        Action::CreateSupportToken(s) => {
            zone.contains(ZonePrivilege::SpacesAddRelationships)
                || space(s, SpacePrivilege::AddProvider).await?
        }
        Action::CreateSpaceToken(g) => {
            zone.contains(ZonePrivilege::GroupsAddRelationships)
                || group(g, GroupPrivilege::CreateSpaceToken).await?
        }
        Action::ViewSpace(s) => {
            zone.contains(ZonePrivilege::ListProvidersOfSpace)
                || space(s, SpacePrivilege::ViewData).await?
        }
        Action::CreateProvider => zone.contains(ZonePrivilege::ProvidersCreate),
        Action::ListProviders => zone.contains(ZonePrivilege::ListProviders),
        Action::ManageKeys => zone.contains(ZonePrivilege::TokensManage),
        Action::Group(g, p, z) => z.is_some_and(|z| zone.contains(z)) || group(g, p).await?,
        Action::Space(s, p, z) => z.is_some_and(|z| zone.contains(z)) || space(s, p).await?,
        Action::Zone(z) => zone.contains(z),
    })
}

/// Whether `subject` may see, list or revoke a token record: whoever may mint
/// such a token for its target, the user or provider it authenticates, or a
/// zone token manager.
pub async fn may_manage_token(store: &Store, subject: &Subject, rec: &TokenRecord) -> Result<bool> {
    if allowed(store, subject, Action::ManageKeys).await? {
        return Ok(true);
    }
    match rec.kind {
        TokenKind::SpaceSupport => {
            allowed(store, subject, Action::CreateSupportToken(rec.target)).await
        }
        TokenKind::SpaceCreate => {
            allowed(store, subject, Action::CreateSpaceToken(rec.target)).await
        }
        TokenKind::Access => Ok(*subject == Subject::User(rec.target)),
        TokenKind::Provider => Ok(*subject == Subject::Provider(rec.target)),
    }
}

impl Zone {
    /// `Forbidden` unless the caller may do `action`.
    pub async fn require(&self, caller: &Caller, action: Action) -> Result<()> {
        if allowed(&self.store, &caller.subject, action).await? {
            Ok(())
        } else {
            Err(Error::Forbidden(Forbidden::Privileges))
        }
    }

    /// `NotFound` unless the entity exists.
    pub async fn require_exists(&self, kind: crate::error::Entity, id: &Id) -> Result<()> {
        if self.store.exists(kind, id).await? {
            Ok(())
        } else {
            Err(Error::NotFound(kind))
        }
    }
}
