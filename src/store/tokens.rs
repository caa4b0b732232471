//! Token records and their indexes.
//!
//! A record lives in `tokenid_token`; `targetid_tokenid` lists the tokens of
//! a target, `expiry_tokenid` orders them by expiry for purging. The three
//! keys are written in one commit. State changes (consumption, revocation)
//! are transactions guarded by the record as read (see `crate::ops`).

use super::generation::Generation;
use super::named::subject_entity;
use super::schema::{entity_key, TOKENS, TOKENS_BY_EXPIRY, TOKENS_BY_TARGET};
use super::{Store, Txn};
use crate::error::Result;
use crate::model::{Id, Subject, TokenRecord};

impl Store {
    /// Writes a new token record with its indexes in `tx`.
    pub fn insert_token_in(tx: &mut Txn<'_>, id: &Id, rec: &TokenRecord) -> Result<()> {
        tx.put(&TOKENS, id, rec)?;
        tx.put(&TOKENS_BY_TARGET, &(rec.target, *id), &())?;
        tx.put(&TOKENS_BY_EXPIRY, &(rec.expires, *id), &rec.target)
    }

    /// A token record by identifier.
    pub async fn token(&self, id: &Id) -> Result<Option<TokenRecord>> {
        self.get(&TOKENS, id).await
    }

    /// A token record and the root keys' generation and, given a subject,
    /// whether it exists (`None` without one), in one engine call.
    pub async fn token_and_keys_generation(
        &self,
        id: &Id,
        subject: Option<&Subject>,
    ) -> Result<(Option<TokenRecord>, Option<Vec<u8>>, Option<bool>)> {
        let mut keys = vec![TOKENS.key(id), Generation::Keys.key()];
        if let Some(s) = subject {
            let (kind, sid) = subject_entity(s);
            keys.push(entity_key(kind, &sid).unwrap_or_default());
        }
        let mut got = self.get_raw_many(&keys).await?.into_iter();
        let rec = got.next().flatten();
        let generation = got.next().flatten();
        let exists = got.next().map(|v| v.is_some());
        let rec = rec.map(|raw| TOKENS.decode(&raw)).transpose()?;
        Ok((rec, generation, exists))
    }

    /// A page of the tokens minted for `target`, in identifier order; and
    /// whether more follow.
    pub async fn tokens_of(
        &self,
        target: &Id,
        after: Option<Id>,
        limit: usize,
    ) -> Result<(Vec<(Id, TokenRecord)>, bool)> {
        let after = after.map(|a| (*target, a));
        let (page, more) = self
            .page(&TOKENS_BY_TARGET, target.as_bytes(), after.as_ref(), limit)
            .await?;
        let ids: Vec<Id> = page.iter().map(|((_, t), _)| *t).collect();
        let recs = self
            .get_raw_many(&ids.iter().map(|t| TOKENS.key(t)).collect::<Vec<_>>())
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, raw) in ids.into_iter().zip(recs) {
            if let Some(raw) = raw {
                out.push((id, TOKENS.decode(&raw)?));
            }
        }
        Ok((out, more))
    }

    /// Deletes up to `limit` token records that expired before `now`, oldest
    /// first, in guarded commits within the engine's limits. Returns how
    /// many were deleted: fewer than `limit` means none is left to purge.
    pub async fn purge_expired(&self, now: u64, limit: usize) -> Result<usize> {
        let mut purged = 0;
        while purged < limit {
            let n = self.purge_chunk(now, limit - purged).await?;
            if n == 0 {
                break;
            }
            purged += n;
        }
        Ok(purged)
    }

    /// One commit's worth of [`Store::purge_expired`].
    async fn purge_chunk(&self, now: u64, limit: usize) -> Result<usize> {
        let l = self.engine.limits();
        let chunk = limit
            .min(l.max_guards.saturating_sub(1))
            .min(l.max_writes / 3)
            .max(1);
        let (page, _) = self.page(&TOKENS_BY_EXPIRY, &[], None, chunk).await?;
        let due: Vec<((u64, Id), Id)> = page
            .into_iter()
            .take_while(|((expires, _), _)| *expires < now)
            .collect();
        if due.is_empty() {
            return Ok(0);
        }
        let due = &due;
        self.transact(|mut tx| async move {
            let ids: Vec<Id> = due.iter().map(|((_, id), _)| *id).collect();
            let recs = tx.get_many(&TOKENS, &ids).await?;
            for (((expires, id), target), rec) in due.iter().zip(recs) {
                tx.delete(&TOKENS_BY_EXPIRY, &(*expires, *id));
                // Without a record (left by an interrupted mint of an older
                // release) the index entry names the target.
                let target = rec.as_ref().map_or(*target, |r| r.target);
                tx.delete(&TOKENS_BY_TARGET, &(target, *id));
                tx.delete(&TOKENS, id);
            }
            Ok(tx.done(due.len()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Subject, TokenKind, TokenState};

    fn rec(target: Id, expires: u64) -> TokenRecord {
        TokenRecord {
            kind: TokenKind::SpaceSupport,
            target,
            issuer: Subject::User(Id::random()),
            key_id: 1,
            created: 1,
            expires,
            state: TokenState::Active,
        }
    }

    #[tokio::test]
    async fn expired_records_are_purged_with_their_indexes_in_chunks() {
        // Small limits: one purge call takes several commits.
        let tiny = crate::engine::Limits {
            max_guards: 4,
            max_writes: 9,
            ..crate::engine::memory::LIMITS
        };
        let engine = crate::engine::memory::MemoryEngine::with_limits(tiny);
        let s = Store::open(
            std::sync::Arc::new(engine),
            crate::store::DurabilityMode::Durable,
        )
        .await
        .unwrap();
        let target = Id::random();
        let mut ids = Vec::new();
        for i in 0..25u64 {
            let id = Id::random();
            let r = rec(target, if i < 20 { 5 + i } else { 1000 });
            s.transact(|mut tx| {
                let r = r.clone();
                async move {
                    Store::insert_token_in(&mut tx, &id, &r)?;
                    Ok(tx.done(()))
                }
            })
            .await
            .unwrap();
            ids.push(id);
        }
        // An index entry left without its record is purged too.
        let orphan = Id::random();
        s.transact(|mut tx| async move {
            tx.put(&TOKENS_BY_EXPIRY, &(3, orphan), &target)?;
            tx.put(&TOKENS_BY_TARGET, &(target, orphan), &())?;
            Ok(tx.done(()))
        })
        .await
        .unwrap();
        assert_eq!(s.purge_expired(100, 0).await.unwrap(), 0, "a limit of 0");
        // More than fits one commit of a small chunk: one call, several commits.
        assert_eq!(s.purge_expired(100, 7).await.unwrap(), 7);
        assert_eq!(s.purge_expired(100, 1000).await.unwrap(), 14);
        assert_eq!(s.purge_expired(100, 1000).await.unwrap(), 0);
        let (left, more) = s.tokens_of(&target, None, 100).await.unwrap();
        assert!(!more);
        assert_eq!(left.len(), 5, "the five unexpired records stay");
        assert_eq!(
            s.all_keys(&TOKENS_BY_EXPIRY, &[]).await.unwrap().len(),
            5,
            "no expiry entry of a purged record is left"
        );
        assert_eq!(s.all_keys(&TOKENS_BY_TARGET, &[]).await.unwrap().len(), 5);
    }
}
