//! Onedata 20.02+ named tokens and temporary-token secrets.
//!
//! A named token's record lives in `tokenid_namedtoken`; the index
//! `subject_tokenname_tokenid` maps (subject, name) to its id, which makes
//! names unique per subject (a create or rename reads the index entry, so
//! its commit is guarded by its absence) and lists each subject's tokens.
//! Record and index entry change in one commit.
//!
//! Each subject has at most one `subject_temporarysecret` record: the secret
//! and generation all its temporary tokens are signed under, created lazily
//! with generation 1; revoking the subject's temporary tokens replaces the
//! secret and bumps the generation in one guarded commit.

use super::relations::require_in;
use super::schema::{NAMED_TOKENS, NAMED_TOKEN_NAMES, TEMPORARY_SECRETS};
use super::{Store, Txn, PAGE_MAX};
use crate::error::{Entity, Error, OzError, Result};
use crate::model::{random_token_secret, Id, NamedToken, Subject, TemporarySecret};

/// The entity kind and id of a token subject.
pub fn subject_entity(subject: &Subject) -> (Entity, Id) {
    match subject {
        Subject::User(id) => (Entity::User, *id),
        Subject::Provider(id) => (Entity::Provider, *id),
    }
}

impl Store {
    /// Stores a new named token. `NotFound` if its subject does not exist;
    /// `badValueIdentifierOccupied` (key `name`) if the subject already has
    /// a token of that name.
    pub async fn create_named_token(&self, id: &Id, rec: &NamedToken) -> Result<()> {
        self.transact(|mut tx| async move {
            Self::create_named_token_in(&mut tx, id, rec).await?;
            Ok(tx.done(()))
        })
        .await
    }

    /// [`Store::create_named_token`] inside a transaction (an invite token
    /// is stored in the commit that checked its issuer's privileges).
    pub async fn create_named_token_in(tx: &mut Txn<'_>, id: &Id, rec: &NamedToken) -> Result<()> {
        let (kind, sid) = subject_entity(&rec.subject);
        require_in(tx, kind, &sid).await?;
        let name_key = (rec.subject, rec.name.clone());
        if tx.exists(&NAMED_TOKEN_NAMES, &name_key).await? {
            return Err(OzError::IdentifierOccupied("name").into());
        }
        if tx.exists(&NAMED_TOKENS, id).await? {
            return Err(Error::AlreadyExists(Entity::Token));
        }
        tx.put(&NAMED_TOKENS, id, rec)?;
        tx.put(&NAMED_TOKEN_NAMES, &name_key, id)?;
        Ok(())
    }

    /// A named token by id.
    pub async fn named_token(&self, id: &Id) -> Result<Option<NamedToken>> {
        self.get(&NAMED_TOKENS, id).await
    }

    /// A named token and whether the entity `subject` names exists, in one
    /// engine call (verification).
    pub async fn named_token_and_subject(
        &self,
        id: &Id,
        subject: &Subject,
    ) -> Result<(Option<NamedToken>, bool)> {
        let (kind, sid) = subject_entity(subject);
        let entity = super::schema::entity_key(kind, &sid).unwrap_or_default();
        let mut got = self.get_raw_many(&[NAMED_TOKENS.key(id), entity]).await?;
        let exists = got.pop().flatten().is_some();
        let rec = got
            .pop()
            .flatten()
            .map(|raw| NAMED_TOKENS.decode(&raw))
            .transpose()?;
        Ok((rec, exists))
    }

    /// A subject's named token by name.
    pub async fn named_token_by_name(
        &self,
        subject: &Subject,
        name: &str,
    ) -> Result<Option<(Id, NamedToken)>> {
        let Some(id) = self
            .get(&NAMED_TOKEN_NAMES, &(*subject, name.to_owned()))
            .await?
        else {
            return Ok(None);
        };
        Ok(self.named_token(&id).await?.map(|rec| (id, rec)))
    }

    /// The ids of a subject's named tokens, in name order.
    pub async fn named_tokens_of(&self, subject: &Subject) -> Result<Vec<Id>> {
        let prefix = NAMED_TOKEN_NAMES.sub_prefix(subject);
        let sub = &prefix[NAMED_TOKEN_NAMES.prefix().len()..];
        let mut out = Vec::new();
        let mut after: Option<(Subject, String)> = None;
        loop {
            let (page, more) = self
                .page(&NAMED_TOKEN_NAMES, sub, after.as_ref(), PAGE_MAX)
                .await?;
            after = page.last().map(|(k, _)| k.clone());
            out.extend(page.into_iter().map(|(_, id)| id));
            if !more {
                return Ok(out);
            }
        }
    }

    /// The ids of every named token, in id order.
    pub async fn all_named_tokens(&self) -> Result<Vec<Id>> {
        self.all_keys(&NAMED_TOKENS, &[]).await
    }

    /// Changes a named token in one guarded transaction: `f` edits the
    /// record (not its subject); a new name must be free. Returns the new
    /// record. `NotFound` if there is none.
    pub async fn update_named_token<F>(&self, id: &Id, f: F) -> Result<NamedToken>
    where
        F: Fn(&mut NamedToken) -> Result<()>,
    {
        let f = &f;
        self.transact(|mut tx| async move {
            let old = tx
                .get(&NAMED_TOKENS, id)
                .await?
                .ok_or(Error::NotFound(Entity::Token))?;
            let mut rec = old.clone();
            f(&mut rec)?;
            rec.subject = old.subject;
            if rec.name != old.name {
                let new_key = (rec.subject, rec.name.clone());
                if tx.exists(&NAMED_TOKEN_NAMES, &new_key).await? {
                    return Err(OzError::IdentifierOccupied("name").into());
                }
                tx.delete(&NAMED_TOKEN_NAMES, &(old.subject, old.name.clone()));
                tx.put(&NAMED_TOKEN_NAMES, &new_key, id)?;
            }
            if rec != old {
                tx.put(&NAMED_TOKENS, id, &rec)?;
            }
            Ok(tx.done(rec))
        })
        .await
    }

    /// Deletes a named token and its index entry; returns the record.
    pub async fn delete_named_token(&self, id: &Id) -> Result<NamedToken> {
        self.transact(|mut tx| async move {
            let rec = tx
                .get(&NAMED_TOKENS, id)
                .await?
                .ok_or(Error::NotFound(Entity::Token))?;
            let name_key = (rec.subject, rec.name.clone());
            // The index entry is this token's (guarded as read).
            if tx.get(&NAMED_TOKEN_NAMES, &name_key).await? == Some(*id) {
                tx.delete(&NAMED_TOKEN_NAMES, &name_key);
            }
            tx.delete(&NAMED_TOKENS, id);
            Ok(tx.done(rec))
        })
        .await
    }

    /// Deletes every named token of a subject, in commits within the
    /// engine's limits. Returns how many were deleted.
    pub async fn delete_named_tokens_of(&self, subject: &Subject) -> Result<usize> {
        let l = self.engine.limits();
        let chunk = (l.max_writes / 2)
            .min(l.max_guards.saturating_sub(1) / 2)
            .clamp(1, PAGE_MAX);
        let prefix = NAMED_TOKEN_NAMES.sub_prefix(subject);
        let sub = prefix[NAMED_TOKEN_NAMES.prefix().len()..].to_vec();
        let sub = &sub;
        let mut deleted = 0;
        loop {
            let n = self
                .transact(|mut tx| async move {
                    let (page, _) = tx
                        .store()
                        .page(&NAMED_TOKEN_NAMES, sub, None, chunk)
                        .await?;
                    for (key, id) in &page {
                        // Guard both entries on what they hold now.
                        tx.get(&NAMED_TOKEN_NAMES, key).await?;
                        tx.get(&NAMED_TOKENS, id).await?;
                        tx.delete(&NAMED_TOKEN_NAMES, key);
                        tx.delete(&NAMED_TOKENS, id);
                    }
                    Ok(tx.done(page.len()))
                })
                .await?;
            if n == 0 {
                return Ok(deleted);
            }
            deleted += n;
        }
    }

    /// The spaces a provider supports (every page).
    pub async fn spaces_of_provider(&self, provider: &Id) -> Result<Vec<Id>> {
        Ok(self
            .all_keys(&super::schema::PROVIDER_SPACES, provider.as_bytes())
            .await?
            .into_iter()
            .map(|(_, s)| s)
            .collect())
    }

    /// A subject's temporary-token secret and whether the subject exists,
    /// in one engine call (minting and verification).
    pub async fn temporary_secret_and_subject(
        &self,
        subject: &Subject,
    ) -> Result<(Option<TemporarySecret>, bool)> {
        let (kind, sid) = subject_entity(subject);
        let entity = super::schema::entity_key(kind, &sid).unwrap_or_default();
        let mut got = self
            .get_raw_many(&[TEMPORARY_SECRETS.key(subject), entity])
            .await?;
        let exists = got.pop().flatten().is_some();
        let rec = got
            .pop()
            .flatten()
            .map(|raw| TEMPORARY_SECRETS.decode(&raw))
            .transpose()?;
        Ok((rec, exists))
    }

    /// A subject's temporary-token secret, created with generation 1 if it
    /// has none yet (the only write minting a temporary token may cause,
    /// once per subject). `NotFound` if the subject does not exist.
    pub async fn ensure_temporary_secret(&self, subject: &Subject) -> Result<TemporarySecret> {
        if let (Some(s), true) = self.temporary_secret_and_subject(subject).await? {
            return Ok(s);
        }
        self.transact(|mut tx| async move {
            let (kind, sid) = subject_entity(subject);
            require_in(&mut tx, kind, &sid).await?;
            if let Some(s) = tx.get(&TEMPORARY_SECRETS, subject).await? {
                return Ok(tx.done(s));
            }
            let s = TemporarySecret {
                secret: random_token_secret(),
                generation: 1,
            };
            tx.put(&TEMPORARY_SECRETS, subject, &s)?;
            Ok(tx.done(s))
        })
        .await
    }

    /// Revokes every temporary token of a subject: a new secret and the next
    /// generation, in one commit guarded by the record as read. Returns the
    /// new generation. `NotFound` if the subject does not exist.
    pub async fn regenerate_temporary_secret(&self, subject: &Subject) -> Result<u64> {
        self.transact(|mut tx| async move {
            let (kind, sid) = subject_entity(subject);
            require_in(&mut tx, kind, &sid).await?;
            let generation = match tx.get(&TEMPORARY_SECRETS, subject).await? {
                Some(s) => s.generation.saturating_add(1),
                // No secret yet stands for generation 1.
                None => 2,
            };
            let s = TemporarySecret {
                secret: random_token_secret(),
                generation,
            };
            tx.put(&TEMPORARY_SECRETS, subject, &s)?;
            Ok(tx.done(generation))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{now, ZonePrivileges};
    use std::sync::Arc;

    fn rec(subject: Subject, name: &str) -> NamedToken {
        NamedToken {
            subject,
            name: name.into(),
            token_type: "act".into(),
            caveats: vec![],
            custom_metadata: "{}".into(),
            created: now(),
            revoked: false,
            secret: random_token_secret(),
            privileges: None,
            usage_limit: None,
            usage_count: 0,
        }
    }

    #[tokio::test]
    async fn names_are_unique_per_subject_across_instances_and_renames() {
        let engine: Arc<dyn crate::engine::Engine> = Arc::new(
            crate::engine::memory::MemoryEngine::with_limits(crate::engine::Limits {
                max_guards: 8,
                max_writes: 6,
                ..crate::engine::memory::LIMITS
            }),
        );
        let a = Store::open(engine.clone(), crate::DurabilityMode::Durable)
            .await
            .unwrap();
        let b = Store::open(engine, crate::DurabilityMode::Durable)
            .await
            .unwrap();
        let u = a
            .create_user("u", "x".into(), ZonePrivileges::empty())
            .await
            .unwrap();
        let v = a
            .create_user("v", "x".into(), ZonePrivileges::empty())
            .await
            .unwrap();
        let (su, sv) = (Subject::User(u), Subject::User(v));
        let (t1, t2) = (Id::random(), Id::random());
        // Both instances race for one name: exactly one wins.
        let (x, y) = (rec(su, "same"), rec(su, "same"));
        let (r1, r2) = tokio::join!(a.create_named_token(&t1, &x), b.create_named_token(&t2, &y));
        assert!(r1.is_ok() != r2.is_ok(), "{r1:?} {r2:?}");
        // Another subject may use it.
        b.create_named_token(&Id::random(), &rec(sv, "same"))
            .await
            .unwrap();
        let winner = if r1.is_ok() { t1 } else { t2 };
        let other = Id::random();
        a.create_named_token(&other, &rec(su, "other"))
            .await
            .unwrap();
        let e = b
            .update_named_token(&other, |r| {
                r.name = "same".into();
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            Error::Onezone(OzError::IdentifierOccupied("name"))
        ));
        b.update_named_token(&winner, |r| {
            r.name = "renamed".into();
            Ok(())
        })
        .await
        .unwrap();
        // The old name is free again, the new one points at the token.
        a.create_named_token(&Id::random(), &rec(su, "same"))
            .await
            .unwrap();
        assert_eq!(
            a.named_token_by_name(&su, "renamed")
                .await
                .unwrap()
                .unwrap()
                .0,
            winner
        );
        for i in 0..7 {
            a.create_named_token(&Id::random(), &rec(su, &format!("t{i}")))
                .await
                .unwrap();
        }
        assert_eq!(a.named_tokens_of(&su).await.unwrap().len(), 10);
        // Deleting all takes several commits on these limits.
        assert_eq!(b.delete_named_tokens_of(&su).await.unwrap(), 10);
        assert!(a.named_tokens_of(&su).await.unwrap().is_empty());
        assert_eq!(a.named_tokens_of(&sv).await.unwrap().len(), 1);
        assert_eq!(a.all_named_tokens().await.unwrap().len(), 1);
        assert!(a.check().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn temporary_secrets_start_at_one_and_regenerate() {
        let s = Store::memory().await.unwrap();
        let u = Subject::User(
            s.create_user("u", "x".into(), ZonePrivileges::empty())
                .await
                .unwrap(),
        );
        assert!(matches!(
            s.ensure_temporary_secret(&Subject::User(Id::random()))
                .await,
            Err(Error::NotFound(Entity::User))
        ));
        let first = s.ensure_temporary_secret(&u).await.unwrap();
        assert_eq!(first.generation, 1);
        assert_eq!(s.ensure_temporary_secret(&u).await.unwrap(), first);
        assert_eq!(s.regenerate_temporary_secret(&u).await.unwrap(), 2);
        let w = Subject::User(
            s.create_user("w", "x".into(), ZonePrivileges::empty())
                .await
                .unwrap(),
        );
        assert_eq!(s.regenerate_temporary_secret(&w).await.unwrap(), 2);
        let second = s.ensure_temporary_secret(&u).await.unwrap();
        assert_eq!(second.generation, 2);
        assert_ne!(second.secret, first.secret);
    }
}
