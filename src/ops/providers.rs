//! Providers: registration, and the consumption of invite tokens.
//!
//! A consumption is one transaction: it reads the token's record (guarded),
//! checks that it is still usable and that its issuer still holds the
//! privilege that allowed the mint, writes the effect (the support, or the
//! new space) and the consumed state together. Of any number of concurrent
//! consumers, through any number of instances, exactly one commits; the
//! others conflict, run again, and find the token used. A failed consumption
//! writes nothing, so the token stays usable.

use super::authorize::{allowed, Action};
use super::tokens::Minted;
use super::{Caller, Zone};
use crate::error::{Entity, Error, Result};
use crate::model::{now, Id, SpacePrivileges, Support, TokenKind, TokenRecord, TokenState};
use crate::store::schema::{GENERATION, SPACE_PROVIDERS, TOKENS};
use crate::store::{require_in, Store, Txn, PAGE_MAX, SPACE_GROUPS_REL, SPACE_PROVIDERS_REL};
use crate::token::{self, TokenError};

impl Zone {
    /// Registers a provider and mints its root token, in one commit.
    pub async fn register_provider(
        &self,
        caller: &Caller,
        name: &str,
        domain: &str,
    ) -> Result<(Id, Minted)> {
        self.require(caller, Action::CreateProvider).await?;
        let retry = std::sync::atomic::AtomicBool::new(false);
        let retry = &retry;
        self.store
            .transact(|mut tx| async move {
                let refresh = retry.swap(true, std::sync::atomic::Ordering::AcqRel);
                let out = self
                    .register_provider_in(&mut tx, caller.subject, name, domain, refresh)
                    .await?;
                Ok(tx.done(out))
            })
            .await
    }

    /// Registers a provider and mints its root token (issued by `issuer`)
    /// in `tx`. `refresh_keys`: read the root keys afresh (a retry).
    pub(crate) async fn register_provider_in(
        &self,
        tx: &mut Txn<'_>,
        issuer: crate::model::Subject,
        name: &str,
        domain: &str,
        refresh_keys: bool,
    ) -> Result<(Id, Minted)> {
        let pid = Id::random();
        Store::insert_provider_in(tx, pid, name, domain).await?;
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
                self.issuer_still_allowed(&rec, Action::CreateSupportToken(space))
                    .await?;
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
                self.issuer_still_allowed(&rec, Action::CreateSpaceToken(group))
                    .await?;
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

    async fn issuer_still_allowed(&self, rec: &TokenRecord, action: Action) -> Result<()> {
        if allowed(&self.store, &rec.issuer, action).await? {
            Ok(())
        } else {
            Err(Error::Token(TokenError::IssuerNotAllowed))
        }
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
