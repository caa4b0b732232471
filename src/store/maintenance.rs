//! Consistent backups and the consistency check.

use std::path::Path;

use super::relations::{GROUP_CHILDREN, GROUP_USERS, SPACE_GROUPS, SPACE_PROVIDERS, SPACE_USERS};
use super::{key_id, Engine, SledEngine, SledOptions, Store, TreeName};
use crate::error::{Entity, Error, Result};
use crate::model::{Id, TokenRecord, User};

/// Entries copied per engine call during a backup.
const CHUNK: usize = 4096;

impl Store {
    /// Copies every tree into a new sled database at `dir` (which must not
    /// exist yet) while holding the writer lock, so the copy is a consistent
    /// snapshot of every relation. Mints that run meanwhile are single-key
    /// writes: each is in the copy entirely or not at all. A backup directory
    /// is a store directory: serve it with `--data` after moving it to
    /// `<data>/store`, or restore it with `ozmint restore`.
    pub fn backup_to(&self, dir: &Path) -> Result<()> {
        if dir.exists() {
            return Err(Error::Invalid(format!("{} already exists", dir.display())));
        }
        let target = SledEngine::open(dir, &SledOptions::default())?;
        let _w = self.lock();
        self.copy_into(&target)?;
        target.flush()?;
        Ok(())
    }

    /// Copies every entry of every tree into `target`.
    pub fn copy_into(&self, target: &dyn Engine) -> Result<()> {
        for tree in TreeName::ALL {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let chunk = self.engine.scan(tree, &[], after.as_deref(), CHUNK)?;
                let mut batch = super::Batch::new();
                for (k, v) in &chunk {
                    batch.put(tree, k.clone(), v.clone());
                }
                target.apply(&batch)?;
                match chunk.last() {
                    Some((k, _)) if chunk.len() == CHUNK => after = Some(k.clone()),
                    _ => break,
                }
            }
        }
        Ok(())
    }

    /// Checks every invariant the store keeps and returns what is broken:
    /// both directions of every relation, endpoints of relations exist, the
    /// user name index, token indexes, and that every record decodes.
    pub fn check(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let all = |t: TreeName| self.engine.scan(t, &[], None, usize::MAX);
        for (k, v) in all(TreeName::UserIdUser)? {
            match super::decode::<User>(TreeName::UserIdUser, &v) {
                Ok(u) => {
                    let indexed = self
                        .engine
                        .get(TreeName::UserNameUserId, u.name.as_bytes())?;
                    if indexed.as_deref() != Some(k.as_slice()) {
                        problems.push(format!("user {:?}: name index does not point back", u.name));
                    }
                }
                Err(e) => problems.push(format!("user record: {e}")),
            }
        }
        for (name, id) in all(TreeName::UserNameUserId)? {
            if self.engine.get(TreeName::UserIdUser, &id)?.is_none() {
                problems.push(format!(
                    "name index {:?} names a missing user",
                    String::from_utf8_lossy(&name)
                ));
            }
        }
        self.check_relation(&GROUP_USERS, &mut problems)?;
        self.check_relation(&GROUP_CHILDREN, &mut problems)?;
        self.check_relation(&SPACE_USERS, &mut problems)?;
        self.check_relation(&SPACE_GROUPS, &mut problems)?;
        self.check_relation(&SPACE_PROVIDERS, &mut problems)?;
        for (k, _) in all(TreeName::Tokens)? {
            match k.first() {
                Some(b'r') => {
                    let id = key_id(TreeName::Tokens, &k[1..])?;
                    match self.token(&id) {
                        Ok(Some(rec)) => self.check_token(&id, &rec, &mut problems)?,
                        Ok(None) => {}
                        Err(e) => problems.push(format!("token {id}: {e}")),
                    }
                }
                // Index entries without a record are left by a mint interrupted
                // before its record was written: harmless (readers skip them)
                // and removed by purging, so not a problem.
                Some(b't') if k.len() == 65 => {}
                Some(b'e') if k.len() == 41 => {}
                _ => problems.push("malformed key in the tokens tree".into()),
            }
        }
        Ok(problems)
    }

    fn check_token(&self, id: &Id, rec: &TokenRecord, problems: &mut Vec<String>) -> Result<()> {
        let t = [&b"t"[..], rec.target.as_bytes(), id.as_bytes()].concat();
        let e = [&b"e"[..], &rec.expires.to_be_bytes()[..], id.as_bytes()].concat();
        if self.engine.get(TreeName::Tokens, &t)?.is_none()
            || self.engine.get(TreeName::Tokens, &e)?.is_none()
        {
            problems.push(format!("token {id}: an index entry is missing"));
        }
        Ok(())
    }

    fn check_relation<T: crate::codec::Record>(
        &self,
        r: &super::Relation<T>,
        problems: &mut Vec<String>,
    ) -> Result<()> {
        let exists = |kind: Entity, id: &Id| self.engine.get(kind.tree(), id.as_bytes());
        for (k, v) in self.engine.scan(r.fwd, &[], None, usize::MAX)? {
            let (a, b) = (key_id(r.fwd, &k[..32])?, key_id(r.fwd, &k[32..])?);
            if super::decode::<T>(r.fwd, &v).is_err() {
                problems.push(format!(
                    "{}: undecodable value for {a} -> {b}",
                    r.fwd.name()
                ));
            }
            if self.engine.get(r.rev, &super::pair(&b, &a))?.is_none() {
                problems.push(format!("{}: {a} -> {b} has no reverse entry", r.fwd.name()));
            }
            if exists(r.a, &a)?.is_none() || exists(r.b, &b)?.is_none() {
                problems.push(format!(
                    "{}: {a} -> {b} names a missing {} or {}",
                    r.fwd.name(),
                    r.a,
                    r.b
                ));
            }
        }
        for (k, _) in self.engine.scan(r.rev, &[], None, usize::MAX)? {
            let (b, a) = (key_id(r.rev, &k[..32])?, key_id(r.rev, &k[32..])?);
            if self.engine.get(r.fwd, &super::pair(&a, &b))?.is_none() {
                problems.push(format!(
                    "{}: reverse entry {b} <- {a} has no forward entry",
                    r.rev.name()
                ));
            }
        }
        Ok(())
    }
}
