//! Token records and root keys.
//!
//! Layout (all in [`TreeName::Tokens`]):
//! `b"r" ++ token id` -> record, `b"t" ++ target ++ token id` -> (),
//! `b"e" ++ expiry (u64 BE) ++ token id` -> (). Root keys live in
//! [`TreeName::KeyIdRootKey`] under their id as `u32` big-endian.

use super::{decode, encode, key_id, Batch, Store, TreeName, PAGE_MAX};
use crate::error::{Entity, Error, Result};
use crate::model::{Id, RootKey, TokenRecord};

/// The largest page of tokens a list call returns.
pub const TOKENS_PAGE_MAX: usize = PAGE_MAX;

const T: TreeName = TreeName::Tokens;

fn rec_key(id: &Id) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[0] = b'r';
    k[1..].copy_from_slice(id.as_bytes());
    k
}

fn target_key(target: &Id, id: &Id) -> Vec<u8> {
    [&b"t"[..], target.as_bytes(), id.as_bytes()].concat()
}

fn expiry_key(expires: u64, id: &Id) -> Vec<u8> {
    [&b"e"[..], &expires.to_be_bytes()[..], id.as_bytes()].concat()
}

fn removal_ops(batch: &mut Batch, id: &Id, rec: &TokenRecord) {
    batch.remove(T, rec_key(id).to_vec());
    batch.remove(T, target_key(&rec.target, id));
    batch.remove(T, expiry_key(rec.expires, id));
}

impl Store {
    /// Stores a new token record with its indexes. Three single-key writes
    /// instead of one batch (sled's multi-key batches take its global lock and
    /// write out its log buffer, several times the cost of a put): indexes
    /// first, the record last, so a crash in between leaves only index
    /// entries without a record, which readers skip and purging removes (the
    /// expiry entry carries the target for that).
    pub fn insert_token(&self, id: &Id, rec: &TokenRecord) -> Result<()> {
        self.insert_token_unsynced(id, rec)?;
        self.committed()
    }

    /// [`Store::insert_token`] without waiting for durability: the caller
    /// must call [`Store::committed`] or await [`Store::committed_async`]
    /// before handing the token out.
    pub fn insert_token_unsynced(&self, id: &Id, rec: &TokenRecord) -> Result<()> {
        self.engine
            .put(T, &expiry_key(rec.expires, id), rec.target.as_bytes())?;
        self.engine.put(T, &target_key(&rec.target, id), &[])?;
        Ok(self.engine.put(T, &rec_key(id), &encode(T, rec)?)?)
    }

    /// A token record by identifier.
    pub fn token(&self, id: &Id) -> Result<Option<TokenRecord>> {
        self.get_rec(T, &rec_key(id))
    }

    /// Reads a token record, lets `f` decide its next state and queue further
    /// writes, and applies both atomically under the writer lock. If `f` fails,
    /// nothing is written (a failed consumption leaves the token usable).
    pub fn transition_token<R>(
        &self,
        id: &Id,
        f: impl FnOnce(&Store, &TokenRecord, &mut Batch) -> Result<(TokenRecord, R)>,
    ) -> Result<R> {
        let out = self.transition_token_unsynced(id, f)?;
        self.committed()?;
        Ok(out)
    }

    /// [`Store::transition_token`] without waiting for durability: the
    /// caller must call [`Store::committed`] or await
    /// [`Store::committed_async`] before acknowledging the new state.
    pub fn transition_token_unsynced<R>(
        &self,
        id: &Id,
        f: impl FnOnce(&Store, &TokenRecord, &mut Batch) -> Result<(TokenRecord, R)>,
    ) -> Result<R> {
        let _w = self.lock();
        let rec = self.token(id)?.ok_or(Error::NotFound(Entity::Token))?;
        let mut batch = Batch::new();
        let (new, out) = f(self, &rec, &mut batch)?;
        batch.put(T, rec_key(id).to_vec(), encode(T, &new)?);
        let graph = batch
            .ops()
            .iter()
            .any(|(t, _, _)| matches!(t, TreeName::GroupUsers | TreeName::GroupChildren));
        self.engine.apply(&batch)?;
        if graph {
            self.graph.invalidate();
        }
        Ok(out)
    }

    /// A page of the tokens minted for `target`, in identifier order.
    pub fn tokens_of(
        &self,
        target: &Id,
        after: Option<Id>,
        limit: usize,
    ) -> Result<Vec<(Id, TokenRecord)>> {
        let prefix = [&b"t"[..], target.as_bytes()].concat();
        let after_key = after.map(|a| target_key(target, &a));
        let keys = self
            .engine
            .scan(T, &prefix, after_key.as_deref(), limit.min(PAGE_MAX))?;
        let mut out = Vec::with_capacity(keys.len());
        for (k, _) in keys {
            let id = key_id(T, &k[33..])?;
            if let Some(rec) = self.token(&id)? {
                out.push((id, rec));
            }
        }
        Ok(out)
    }

    /// Queues the removal of every token minted for `target` (caller holds the lock).
    pub(crate) fn token_removal_ops(&self, target: &Id, batch: &mut Batch) -> Result<()> {
        let prefix = [&b"t"[..], target.as_bytes()].concat();
        for k in self.scan_keys(T, &prefix)? {
            let id = key_id(T, &k[33..])?;
            if let Some(rec) = self.token(&id)? {
                removal_ops(batch, &id, &rec);
            }
        }
        Ok(())
    }

    /// Deletes up to `limit` token records that expired before `now`, oldest
    /// first. Returns how many were deleted.
    pub fn purge_expired(&self, now: u64, limit: usize) -> Result<usize> {
        let keys = self.engine.scan(T, b"e", None, limit)?;
        let _w = self.lock();
        let mut batch = Batch::new();
        let mut n = 0;
        for (k, v) in keys {
            let expires = u64::from_be_bytes(k[1..9].try_into().map_err(|_| Error::Corrupt {
                tree: T.name(),
                error: crate::codec::CodecError::Malformed,
            })?);
            if expires >= now {
                break;
            }
            let id = key_id(T, &k[9..])?;
            match self.token(&id)? {
                Some(rec) => removal_ops(&mut batch, &id, &rec),
                None => {
                    // Left by a mint interrupted before its record was written.
                    if let Some(target) = Id::from_slice(&v) {
                        batch.remove(T, target_key(&target, &id));
                    }
                    batch.remove(T, k);
                }
            }
            n += 1;
        }
        if !batch.is_empty() {
            self.engine.apply(&batch)?;
            drop(_w);
            self.committed()?;
        }
        Ok(n)
    }

    /// Number of token records.
    pub fn token_count(&self) -> Result<usize> {
        // Each record has exactly three keys.
        Ok(self.engine.len(T)? / 3)
    }

    /// All root keys, by id.
    pub fn root_keys(&self) -> Result<Vec<(u32, RootKey)>> {
        self.engine
            .scan(TreeName::KeyIdRootKey, &[], None, usize::MAX)?
            .into_iter()
            .map(|(k, v)| {
                let id = k
                    .as_slice()
                    .try_into()
                    .map(u32::from_be_bytes)
                    .map_err(|_| Error::Corrupt {
                        tree: TreeName::KeyIdRootKey.name(),
                        error: crate::codec::CodecError::Malformed,
                    })?;
                Ok((id, decode(TreeName::KeyIdRootKey, &v)?))
            })
            .collect()
    }

    /// Stores a root key (new or retired).
    pub fn put_root_key(&self, id: u32, key: &RootKey) -> Result<()> {
        let tree = TreeName::KeyIdRootKey;
        self.engine
            .put(tree, &id.to_be_bytes(), &encode(tree, key)?)?;
        self.committed()
    }

    /// Stores a root key only if no key has that id yet; returns whether it did.
    pub fn insert_root_key(&self, id: u32, key: &RootKey) -> Result<bool> {
        let tree = TreeName::KeyIdRootKey;
        let ok = self.engine.compare_and_swap(
            tree,
            &id.to_be_bytes(),
            None,
            Some(&encode(tree, key)?),
        )?;
        self.committed()?;
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Subject, TokenKind, TokenState};

    #[test]
    fn an_interrupted_mint_leaves_only_purgeable_index_entries() {
        let s = Store::memory();
        let (id, target) = (Id::random(), Id::random());
        // What a crash between the index writes and the record write leaves.
        s.engine
            .put(T, &expiry_key(5, &id), target.as_bytes())
            .unwrap();
        s.engine.put(T, &target_key(&target, &id), &[]).unwrap();
        assert!(s.tokens_of(&target, None, 10).unwrap().is_empty());
        assert!(s.check().unwrap().is_empty());
        assert_eq!(s.purge_expired(10, 100).unwrap(), 1);
        assert!(s.engine.scan(T, &[], None, usize::MAX).unwrap().is_empty());
        // A complete record is listed, then purged with all three keys.
        let rec = TokenRecord {
            kind: TokenKind::SpaceSupport,
            target,
            issuer: Subject::User(Id::random()),
            key_id: 1,
            created: 1,
            expires: 6,
            state: TokenState::Active,
        };
        s.insert_token(&id, &rec).unwrap();
        assert_eq!(s.tokens_of(&target, None, 10).unwrap(), vec![(id, rec)]);
        assert_eq!(s.purge_expired(10, 100).unwrap(), 1);
        assert!(s.engine.scan(T, &[], None, usize::MAX).unwrap().is_empty());
    }
}
