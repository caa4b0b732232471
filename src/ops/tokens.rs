//! Tokens: mint, verify, list, revoke, examine.
//!
//! A mint is one commit of the token's record and indexes, guarded on the
//! root keys' generation the token was signed under (taken from the cache, so
//! no extra read): if the keys changed meanwhile the commit conflicts and the
//! mint runs again with the fresh keys. A verification is one read of the
//! record and the keys' generation together, then the signature check; a
//! token this zone verified before (`token_cache`) is read together with its
//! subject and skips the parse and the signature while it was signed under
//! the key and keys' generation read.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::authorize::{may_manage_token, Action};
use super::token_cache::{Entry, Legacy, Lookup};
use super::{Caller, Zone};
use crate::error::{Entity, Error, Forbidden, Result};
use crate::model::{now, Id, Subject, TokenKind, TokenRecord, TokenState};
use crate::store::schema::{GENERATION, TOKENS};
use crate::store::{require_in, KeySet, Store, PAGE_MAX};
use crate::token::keys::KeySource;
use crate::token::{self, wire, Caveat, TokenError};

/// A freshly minted token.
pub struct Minted {
    /// The token in its escaped wire form (a bearer secret).
    pub token: String,
    /// Its identifier.
    pub id: Id,
    /// Its record.
    pub record: TokenRecord,
}

impl fmt::Debug for Minted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Minted")
            .field("token", &"<redacted>")
            .field("id", &self.id)
            .field("record", &self.record)
            .finish()
    }
}

/// A token whose signature, caveats and record all check out.
#[derive(Clone, Debug)]
pub struct Verified {
    /// Identifier.
    pub id: Id,
    /// The record as read during verification.
    pub record: TokenRecord,
    /// The caveats it carries.
    pub caveats: Vec<Caveat>,
}

/// The subject a legacy token authenticates: an access token's user, a
/// provider token's provider; invite tokens authenticate nobody.
pub fn legacy_subject(record: &TokenRecord) -> Option<Subject> {
    match record.kind {
        TokenKind::Access => Some(Subject::User(record.target)),
        TokenKind::Provider => Some(Subject::Provider(record.target)),
        _ => None,
    }
}

/// What an examination finds out about a token.
#[derive(Clone, Debug)]
pub struct Examination {
    /// Identifier.
    pub id: Id,
    /// The record.
    pub record: TokenRecord,
    /// The location packet.
    pub location: Option<String>,
    /// Caveat predicates as text.
    pub caveats: Vec<String>,
    /// `None` if the token verifies, else why not.
    pub error: Option<TokenError>,
}

/// The tokens of a space or a group that `list_invite_tokens` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InviteTarget {
    /// Support tokens of a space.
    Space(Id),
    /// Space creation tokens of a group.
    Group(Id),
}

impl Zone {
    /// Mints a token of `kind` for `target` with the configured lifetime.
    pub async fn mint(&self, kind: TokenKind, target: Id, issuer: Subject) -> Result<Minted> {
        self.mint_for(kind, target, issuer, self.config.lifetimes.of(kind))
            .await
    }

    /// Mints a token valid for `lifetime` seconds; `NotFound` unless its
    /// target exists (guarded: a concurrent deletion either sees the token
    /// and deletes it with the target, or makes this commit retry and fail).
    pub async fn mint_for(
        &self,
        kind: TokenKind,
        target: Id,
        issuer: Subject,
        lifetime: u64,
    ) -> Result<Minted> {
        let fresh_keys = AtomicBool::new(false);
        let fresh_keys = &fresh_keys;
        self.store
            .transact(|mut tx| async move {
                require_in(&mut tx, kind.target(), &target).await?;
                let keys = self
                    .keys_for_mint(fresh_keys.swap(true, Ordering::AcqRel))
                    .await?;
                let minted = self.new_token(&keys, kind, target, issuer, lifetime)?;
                tx.assume(&GENERATION, &"keys", keys.generation().map(<[u8]>::to_vec));
                Store::insert_token_in(&mut tx, &minted.id, &minted.record)?;
                Ok(tx.done(minted))
            })
            .await
    }

    /// The keys to mint with: the cache on a first attempt, else read fresh.
    pub(crate) async fn keys_for_mint(&self, retry: bool) -> Result<std::sync::Arc<KeySet>> {
        match (retry, self.store.cached_root_keys()) {
            (false, Some(k)) => Ok(k),
            _ => self.store.root_keys().await,
        }
    }

    /// A new token record and its wire form, signed with the current key.
    pub(crate) fn new_token(
        &self,
        keys: &KeySet,
        kind: TokenKind,
        target: Id,
        issuer: Subject,
        lifetime: u64,
    ) -> Result<Minted> {
        let (key_id, root) = keys.current().ok_or(Error::NotFound(Entity::RootKey))?;
        let id = Id::time_ordered();
        let created = now();
        let record = TokenRecord {
            kind,
            target,
            issuer,
            key_id,
            created,
            expires: created.saturating_add(lifetime),
            state: TokenState::Active,
        };
        let token = token::encode_legacy(&self.config.location, &root, &id, &record)?;
        Ok(Minted { token, id, record })
    }

    /// The token string of an existing record, exactly as it was minted.
    /// `None` if the record's root key is retired.
    pub async fn render(&self, id: &Id, record: &TokenRecord) -> Result<Option<String>> {
        let keys = self.store.root_keys().await?;
        Ok(match keys.secret(record.key_id) {
            Some(root) => Some(token::encode_legacy(
                &self.config.location,
                &root,
                id,
                record,
            )?),
            None => None,
        })
    }

    /// Verifies a token of any kind.
    pub async fn verify(&self, token: &str) -> Result<Verified> {
        let found = self.verified.lookup(token);
        Ok(self.verify_reading(token, found, false).await?.0)
    }

    /// Verifies a token that must be of `kind`.
    pub async fn verify_kind(&self, token: &str, kind: TokenKind) -> Result<Verified> {
        let v = self.verify(token).await?;
        if v.record.kind != kind {
            return Err(Error::Token(TokenError::WrongType));
        }
        Ok(v)
    }

    /// Verifies a token, `found` in the cache already; with `subject`, also
    /// finds out whether the subject it authenticates exists (`None`: not
    /// asked, or a token of no subject). A token verified before (see
    /// `token_cache`) is read in one engine call with its subject and skips
    /// its parse and signature check while its key and the keys' generation
    /// are the ones it was signed under.
    pub(crate) async fn verify_reading(
        &self,
        token: &str,
        found: Lookup,
        subject: bool,
    ) -> Result<(Verified, Option<bool>)> {
        let Lookup { slot, entry } = found;
        if let Some(Entry::Legacy(seen)) = entry {
            let with = seen.subject.as_ref().filter(|_| subject);
            let (record, generation, exists) =
                self.store.token_and_keys_generation(&seen.id, with).await?;
            let record = record.ok_or(TokenError::Unknown)?;
            if generation == seen.keys_generation
                && record.key_id == seen.key_id
                && legacy_subject(&record) == seen.subject
            {
                token::legacy_caveats_hold(&seen.caveats, &record, now())?;
                let verified = Verified {
                    id: seen.id,
                    record,
                    caveats: seen.caveats.clone(),
                };
                return Ok((verified, exists));
            }
            self.verified.remove(&slot);
        }
        let raw = wire::parse(token)?;
        let id = token::legacy_id(&raw)?;
        let (record, generation, _) = self.store.token_and_keys_generation(&id, None).await?;
        let record = record.ok_or(TokenError::Unknown)?;
        let keys = self.store.root_keys_at(generation.clone()).await?;
        let caveats = token::check_legacy(&raw, &record, keys.as_ref(), now())?;
        let seen = Legacy {
            id,
            key_id: record.key_id,
            keys_generation: generation,
            caveats: caveats.clone(),
            subject: legacy_subject(&record),
        };
        let exists = match seen.subject {
            Some(s) if subject => {
                let (kind, sid) = crate::store::subject_entity(&s);
                Some(self.store.exists(kind, &sid).await?)
            }
            _ => None,
        };
        self.verified.insert(slot, Entry::Legacy(Arc::new(seen)));
        Ok((
            Verified {
                id,
                record,
                caveats,
            },
            exists,
        ))
    }

    /// A space support token (`space_add_provider` in the space, or zone
    /// `oz_spaces_add_relationships`).
    pub async fn create_space_support_token(&self, caller: &Caller, space: Id) -> Result<Minted> {
        self.require_exists(Entity::Space, &space).await?;
        self.require(caller, Action::CreateSupportToken(space))
            .await?;
        self.mint(TokenKind::SpaceSupport, space, caller.subject)
            .await
    }

    /// A space creation token for a group (`group_create_space_token` in the
    /// group, or zone `oz_groups_add_relationships`).
    pub async fn create_group_space_token(&self, caller: &Caller, group: Id) -> Result<Minted> {
        self.require_exists(Entity::Group, &group).await?;
        self.require(caller, Action::CreateSpaceToken(group))
            .await?;
        self.mint(TokenKind::SpaceCreate, group, caller.subject)
            .await
    }

    /// A new access token for the calling user (not with an attenuated token).
    pub async fn create_access_token(&self, caller: &Caller) -> Result<Minted> {
        let user = caller.user_id()?;
        caller.unrestricted()?;
        self.mint(TokenKind::Access, user, caller.subject).await
    }

    /// The calling user's active access tokens, in their wire form.
    pub async fn access_tokens(&self, caller: &Caller) -> Result<Vec<String>> {
        let user = caller.user_id()?;
        caller.unrestricted()?;
        let t = now();
        let (records, _) = self.store.tokens_of(&user, None, PAGE_MAX).await?;
        let mut out = Vec::new();
        for (id, rec) in records {
            if rec.kind == TokenKind::Access && rec.state == TokenState::Active && rec.expires > t {
                if let Some(tok) = self.render(&id, &rec).await? {
                    out.push(tok);
                }
            }
        }
        Ok(out)
    }

    /// Revokes one of the calling user's access tokens (by id or whole token).
    pub async fn revoke_access_token(&self, caller: &Caller, token_or_id: &str) -> Result<()> {
        let user = caller.user_id()?;
        let id = self.token_id(token_or_id)?;
        match self.store.token(&id).await? {
            Some(rec) if rec.kind == TokenKind::Access && rec.target == user => {}
            _ => return Err(Error::NotFound(Entity::Token)),
        }
        self.revoke(&id).await
    }

    /// The invite tokens of a space or group, to whoever may mint them.
    pub async fn invite_tokens(
        &self,
        caller: &Caller,
        target: InviteTarget,
    ) -> Result<Vec<(Id, TokenRecord)>> {
        let (kind, id, action) = match target {
            InviteTarget::Space(s) => (Entity::Space, s, Action::CreateSupportToken(s)),
            InviteTarget::Group(g) => (Entity::Group, g, Action::CreateSpaceToken(g)),
        };
        self.require_exists(kind, &id).await?;
        self.require(caller, action).await?;
        Ok(self.store.tokens_of(&id, None, PAGE_MAX).await?.0)
    }

    /// Revokes any token the caller may manage (by id or whole token).
    pub async fn revoke_token(&self, caller: &Caller, token_or_id: &str) -> Result<()> {
        let id = self.token_id(token_or_id)?;
        let rec = self
            .store
            .token(&id)
            .await?
            .ok_or(Error::NotFound(Entity::Token))?;
        if !may_manage_token(&self.store, &caller.subject, &rec).await? {
            return Err(Error::Forbidden(Forbidden::Privileges));
        }
        self.revoke(&id).await
    }

    /// Revokes a token by identifier (a revoked one stays as it is).
    pub async fn revoke(&self, id: &Id) -> Result<()> {
        self.store
            .transact(|mut tx| async move {
                let mut rec = tx
                    .get(&TOKENS, id)
                    .await?
                    .ok_or(Error::NotFound(Entity::Token))?;
                if rec.state == TokenState::Active {
                    rec.state = TokenState::Revoked { at: now() };
                    tx.put(&TOKENS, id, &rec)?;
                }
                Ok(tx.done(()))
            })
            .await
    }

    /// Describes a token the caller may manage, valid or not.
    pub async fn examine_token(&self, caller: &Caller, token: &str) -> Result<Examination> {
        let raw = wire::parse(token)?;
        let id = token::legacy_id(&raw)?;
        let record = self
            .store
            .token(&id)
            .await?
            .ok_or(Error::Token(TokenError::Unknown))?;
        if !may_manage_token(&self.store, &caller.subject, &record).await? {
            return Err(Error::Forbidden(Forbidden::Privileges));
        }
        let error = match self.verify(token).await {
            Ok(_) => None,
            Err(Error::Token(e)) => Some(e),
            Err(e) => return Err(e),
        };
        Ok(Examination {
            id,
            record,
            location: raw.location.clone(),
            caveats: raw
                .caveats
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect(),
            error,
        })
    }

    /// A token path parameter: an identifier, or a whole token.
    pub fn token_id(&self, token_or_id: &str) -> Result<Id> {
        if let Ok(id) = token_or_id.parse::<Id>() {
            return Ok(id);
        }
        wire::parse(token_or_id)
            .ok()
            .and_then(|raw| token::legacy_id(&raw).ok())
            .ok_or_else(|| Error::Invalid("Malformed token id.".into()))
    }
}
