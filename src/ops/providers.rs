//! Providers: registration, and the consumption of invite tokens.
//!
//! A consumption is one transaction: it reads the token's record (guarded),
//! checks that it is still usable and that its issuer still holds the
//! privilege that allowed the mint, writes the effect (the support, or the
//! new space) and the consumed state together. Of any number of concurrent
//! consumers, through any number of instances, exactly one commits; the
//! others conflict, run again, and find the token used. A failed consumption
//! writes nothing, so the token stays usable.

use super::authorize::Action;
use super::tokens::Minted;
use super::{Caller, Zone};
use crate::error::{Entity, Error, Result};
use std::collections::HashMap;

use crate::engine::Durability;
use crate::model::{
    now, GroupPrivilege, Id, Provider, SpacePrivilege, SpacePrivileges, Subject, Support,
    TokenKind, TokenRecord, TokenState, ZonePrivilege,
};
use crate::store::schema::{
    GENERATION, PROVIDERS, PROVIDER_SEEN, PROVIDER_VERSIONS, SPACE_PROVIDERS, TOKENS, USERS,
};
use crate::store::{
    effective_group_privileges_in, effective_space_privileges_in, require_in, Store, Txn, PAGE_MAX,
    SPACE_GROUPS_REL, SPACE_PROVIDERS_REL,
};
use crate::token::{self, TokenError};

/// Longest provider version string accepted, in bytes.
pub const MAX_VERSION: usize = 32;

/// Checks a Onedata release version: `MAJOR.MINOR.PATCH` (1 to 4 digits
/// each, as `18.02.3`, `21.02.7` or `25.0.1`), optionally with a
/// pre-release suffix `-alphaN`, `-betaN` or `-rcN` (as `20.02.0-beta3`).
pub fn check_version(v: &str) -> Result<()> {
    let bad = || {
        Error::Invalid(format!(
            "`version` must be a Onedata release version such as 21.02.7 or 20.02.0-rc2 \
             (MAJOR.MINOR.PATCH, optionally -alphaN, -betaN or -rcN; at most {MAX_VERSION} bytes)"
        ))
    };
    if v.len() > MAX_VERSION {
        return Err(bad());
    }
    let number = |s: &str| !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit());
    let (release, pre) = match v.split_once('-') {
        Some((r, p)) => (r, Some(p)),
        None => (v, None),
    };
    let parts: Vec<&str> = release.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| number(p)) {
        return Err(bad());
    }
    if let Some(pre) = pre {
        let n = ["alpha", "beta", "rc"]
            .iter()
            .find_map(|k| pre.strip_prefix(k))
            .ok_or_else(bad)?;
        if !number(n) {
            return Err(bad());
        }
    }
    Ok(())
}

/// When this process last recorded each provider's last request, so that
/// the store is written at most once per half window per provider.
#[derive(Debug, Default)]
pub(crate) struct SeenCache(parking_lot::Mutex<HashMap<Id, u64>>);

/// Most providers [`SeenCache`] remembers (it forgets all beyond).
const SEEN_CACHE_MAX: usize = 100_000;

/// A provider as its JSON shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderInfo {
    /// Its id.
    pub id: Id,
    /// Its record.
    pub provider: Provider,
    /// The release version it declared, if any.
    pub version: Option<String>,
    /// Whether it made an authenticated request within the online window.
    pub online: bool,
}

impl ProviderInfo {
    /// Onezone's provider JSON (`providerId`, `clusterId`, `name`,
    /// `domain`, `online`, `creationTime`), with `version` (`null` when
    /// the provider never declared one).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "providerId": self.id.to_string(),
            "clusterId": self.id.to_string(),
            "name": self.provider.name,
            "domain": self.provider.domain,
            "version": self.version,
            "online": self.online,
            "creationTime": self.provider.created,
        })
    }
}

/// What `PATCH /provider` changes (at least one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderPatch {
    /// A new name.
    pub name: Option<String>,
    /// A new domain.
    pub domain: Option<String>,
    /// A new release version.
    pub version: Option<String>,
}

impl Zone {
    /// Registers a provider and mints its root token, in one commit.
    pub async fn register_provider(
        &self,
        caller: &Caller,
        name: &str,
        domain: &str,
    ) -> Result<(Id, Minted)> {
        self.register_provider_with_version(caller, name, domain, None)
            .await
    }

    /// Registers a provider that declares its release `version` (checked
    /// by [`check_version`]) and mints its root token, in one commit.
    pub async fn register_provider_with_version(
        &self,
        caller: &Caller,
        name: &str,
        domain: &str,
        version: Option<&str>,
    ) -> Result<(Id, Minted)> {
        if let Some(v) = version {
            check_version(v)?;
        }
        self.require(caller, Action::CreateProvider).await?;
        let retry = std::sync::atomic::AtomicBool::new(false);
        let retry = &retry;
        self.store
            .transact(|mut tx| async move {
                let refresh = retry.swap(true, std::sync::atomic::Ordering::AcqRel);
                let out = self
                    .register_provider_in(&mut tx, caller.subject, name, domain, version, refresh)
                    .await?;
                Ok(tx.done(out))
            })
            .await
    }

    /// Notes that `provider` made an authenticated request now: recorded in
    /// the store (eventual durability) unless this process recorded it
    /// within half the online window. A failure to record is logged, never
    /// returned: it must not fail the request.
    pub(crate) async fn note_provider_request(&self, provider: Id) {
        let now = now();
        let half = (self.config.online_window / 2).max(1);
        {
            let mut seen = self.seen.0.lock();
            if seen
                .get(&provider)
                .is_some_and(|&t| now < t.saturating_add(half))
            {
                return;
            }
            if seen.len() >= SEEN_CACHE_MAX {
                seen.clear();
            }
            seen.insert(provider, now);
        }
        let recorded = self
            .store
            .transact(|mut tx| async move {
                tx.set_durability(Durability::Eventual);
                // Guarded: a provider deleted meanwhile is not brought back.
                if tx.get(&PROVIDERS, &provider).await?.is_none() {
                    return Ok(tx.done(()));
                }
                if tx
                    .get(&PROVIDER_SEEN, &provider)
                    .await?
                    .is_some_and(|t| t >= now)
                {
                    return Ok(tx.done(()));
                }
                tx.put(&PROVIDER_SEEN, &provider, &now)?;
                Ok(tx.done(()))
            })
            .await;
        if let Err(e) = recorded {
            // Try again on the next request.
            self.seen.0.lock().remove(&provider);
            tracing::warn!(error = %e, provider = %provider, "could not record a provider's last request");
        }
    }

    /// A provider with its version and online flag; `None` if it does not
    /// exist. No authorization: for the operations that decide it.
    pub(crate) async fn provider_info(&self, id: &Id) -> Result<Option<ProviderInfo>> {
        let Some(provider) = self.store.get(&PROVIDERS, id).await? else {
            return Ok(None);
        };
        let version = self.store.get(&PROVIDER_VERSIONS, id).await?;
        let seen = self.store.get(&PROVIDER_SEEN, id).await?;
        let online = seen.is_some_and(|t| now().saturating_sub(t) <= self.config.online_window);
        Ok(Some(ProviderInfo {
            id: *id,
            provider,
            version,
            online,
        }))
    }

    /// A provider, to itself or to whoever may list providers.
    pub async fn provider(&self, caller: &Caller, id: &Id) -> Result<ProviderInfo> {
        if caller.subject != crate::model::Subject::Provider(*id) {
            self.require(caller, Action::ListProviders).await?;
        }
        self.provider_info(id)
            .await?
            .ok_or(Error::NotFound(Entity::Provider))
    }

    /// The calling provider changes its name, domain or version.
    pub async fn update_provider(&self, caller: &Caller, patch: &ProviderPatch) -> Result<()> {
        let provider = caller.provider_id()?;
        if patch.name.is_none() && patch.domain.is_none() && patch.version.is_none() {
            return Err(Error::Invalid(
                "give at least one of `name`, `domain`, `version`".into(),
            ));
        }
        if let Some(v) = &patch.version {
            check_version(v)?;
        }
        self.store
            .transact(|mut tx| async move {
                let mut rec = tx
                    .get(&PROVIDERS, &provider)
                    .await?
                    .ok_or(Error::NotFound(Entity::Provider))?;
                if patch.name.is_some() || patch.domain.is_some() {
                    if let Some(n) = &patch.name {
                        rec.name = n.clone();
                    }
                    if let Some(d) = &patch.domain {
                        rec.domain = d.clone();
                    }
                    Store::check_provider(&rec)?;
                    tx.put(&PROVIDERS, &provider, &rec)?;
                }
                if let Some(v) = &patch.version {
                    tx.put(&PROVIDER_VERSIONS, &provider, v)?;
                }
                Ok(tx.done(()))
            })
            .await
    }

    /// Registers a provider and mints its root token (issued by `issuer`)
    /// in `tx`, with its declared release `version` (already checked).
    /// `refresh_keys`: read the root keys afresh (a retry).
    pub(crate) async fn register_provider_in(
        &self,
        tx: &mut Txn<'_>,
        issuer: crate::model::Subject,
        name: &str,
        domain: &str,
        version: Option<&str>,
        refresh_keys: bool,
    ) -> Result<(Id, Minted)> {
        let pid = Id::random();
        Store::insert_provider_in(tx, pid, name, domain).await?;
        if let Some(v) = version {
            tx.put(&PROVIDER_VERSIONS, &pid, &v.to_owned())?;
        }
        let keys = self.keys_for_mint(refresh_keys).await?;
        let lifetime = self.config.lifetimes.of(TokenKind::Provider);
        let minted = self.new_token(&keys, TokenKind::Provider, pid, issuer, lifetime)?;
        tx.assume(&GENERATION, &"keys", keys.generation().map(<[u8]>::to_vec));
        Store::insert_token_in(tx, &minted.id, &minted.record)?;
        Ok((pid, minted))
    }

    /// The ids of every registered provider (first page).
    pub async fn list_providers(&self, caller: &Caller) -> Result<Vec<Id>> {
        self.require(caller, Action::ListProviders).await?;
        let (page, _) = self.store.providers(None, PAGE_MAX).await?;
        Ok(page.into_iter().map(|(id, _)| id).collect())
    }

    /// The supports of a space (to whoever may view it).
    pub async fn space_supports(&self, caller: &Caller, space: Id) -> Result<Vec<(Id, Support)>> {
        self.require_exists(Entity::Space, &space).await?;
        self.require(caller, Action::ViewSpace(space)).await?;
        Ok(self
            .store
            .members(&SPACE_PROVIDERS_REL, &space, None, PAGE_MAX)
            .await?
            .0)
    }

    /// The calling provider supports the space of a support token with
    /// `size` bytes. Returns the space.
    pub async fn support_space(&self, caller: &Caller, token: &str, size: u64) -> Result<Id> {
        let provider = caller.provider_id()?;
        check_size(size)?;
        let v = self.verify_kind(token, TokenKind::SpaceSupport).await?;
        let id = &v.id;
        self.store
            .transact(|mut tx| async move {
                let rec = consumable(&mut tx, id, TokenKind::SpaceSupport).await?;
                let space = rec.target;
                require_in(&mut tx, Entity::Space, &space).await?;
                issuer_still_allowed_in(&mut tx, &rec, Action::CreateSupportToken(space)).await?;
                if tx.exists(&SPACE_PROVIDERS, &(space, provider)).await? {
                    return Err(Error::AlreadyExists(Entity::Relation));
                }
                let support = Support { size, since: now() };
                Store::put_relation_in(&mut tx, &SPACE_PROVIDERS_REL, &space, &provider, &support)
                    .await?;
                consume(&mut tx, id, rec, provider)?;
                Ok(tx.done(space))
            })
            .await
    }

    /// The calling provider creates a space named `name` for the group of a
    /// space creation token, and supports it with `size` bytes. The group
    /// gets every space privilege. Returns the new space.
    pub async fn create_space_with_token(
        &self,
        caller: &Caller,
        name: &str,
        token: &str,
        size: u64,
    ) -> Result<Id> {
        let provider = caller.provider_id()?;
        check_size(size)?;
        let v = self.verify_kind(token, TokenKind::SpaceCreate).await?;
        let id = &v.id;
        self.store
            .transact(|mut tx| async move {
                let rec = consumable(&mut tx, id, TokenKind::SpaceCreate).await?;
                let group = rec.target;
                require_in(&mut tx, Entity::Group, &group).await?;
                issuer_still_allowed_in(&mut tx, &rec, Action::CreateSpaceToken(group)).await?;
                let space = Id::random();
                Store::insert_space_in(&mut tx, space, name).await?;
                Store::put_relation_in(
                    &mut tx,
                    &SPACE_GROUPS_REL,
                    &space,
                    &group,
                    &SpacePrivileges::all(),
                )
                .await?;
                let support = Support { size, since: now() };
                Store::put_relation_in(&mut tx, &SPACE_PROVIDERS_REL, &space, &provider, &support)
                    .await?;
                consume(&mut tx, id, rec, provider)?;
                Ok(tx.done(space))
            })
            .await
    }
}

/// Whether the issuer of `rec` still holds the privilege that allowed the
/// mint, read in `tx` (guarded: a revocation committed meanwhile makes the
/// consumption conflict and run again).
async fn issuer_still_allowed_in(
    tx: &mut Txn<'_>,
    rec: &TokenRecord,
    action: Action,
) -> Result<()> {
    let Subject::User(user) = &rec.issuer else {
        return Err(Error::Token(TokenError::IssuerNotAllowed));
    };
    let zone = tx
        .get(&USERS, user)
        .await?
        .map(|u| u.zone_privileges)
        .unwrap_or_default();
    let ok = match action {
        Action::CreateSupportToken(space) => {
            zone.contains(ZonePrivilege::SpacesAddRelationships)
                || effective_space_privileges_in(tx, user, &space)
                    .await?
                    .contains(SpacePrivilege::AddProvider)
        }
        Action::CreateSpaceToken(group) => {
            zone.contains(ZonePrivilege::GroupsAddRelationships)
                || effective_group_privileges_in(tx, user, &group)
                    .await?
                    .contains(GroupPrivilege::CreateSpaceToken)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Token(TokenError::IssuerNotAllowed))
    }
}

fn check_size(size: u64) -> Result<()> {
    if size == 0 {
        return Err(Error::Invalid("`size` must be a positive integer".into()));
    }
    Ok(())
}

/// The record of a token about to be consumed, read in `tx` (guarded) and
/// checked to be of `kind` and still usable.
async fn consumable(tx: &mut Txn<'_>, id: &Id, kind: TokenKind) -> Result<TokenRecord> {
    let rec = tx
        .get(&TOKENS, id)
        .await?
        .ok_or(Error::Token(TokenError::Unknown))?;
    if rec.kind != kind {
        return Err(Error::Token(TokenError::WrongType));
    }
    token::state_ok(&rec, now())?;
    Ok(rec)
}

/// Marks the token consumed by `provider` in `tx`.
fn consume(tx: &mut Txn<'_>, id: &Id, mut rec: TokenRecord, provider: Id) -> Result<()> {
    rec.state = TokenState::Consumed {
        at: now(),
        by: provider,
    };
    tx.put(&TOKENS, id, &rec)
}
