//! Consistent copies and the consistency check, both read at one snapshot
//! (one read point of the engine), page by page, while the store serves.

use std::path::Path;

use super::relations::{
    Relation, GROUP_CHILDREN_REL, GROUP_USERS_REL, SPACE_GROUPS_REL, SPACE_PROVIDERS_REL,
    SPACE_USERS_REL,
};
use super::schema::{
    self, StoredValue, Table, DELETING, TOKENS, TOKENS_BY_EXPIRY, TOKENS_BY_TARGET, USERS,
    USER_NAMES,
};
use super::{Store, PAGE_MAX};
use crate::engine::sled::{SledEngine, SledOptions};
use crate::engine::{Commit, Durability, Engine, Snapshot, Write};
use crate::error::{Entity, Error, Result};
use crate::model::Id;

impl Store {
    /// Writes a consistent copy of the store into a new sled database at
    /// `dir` (which must not exist yet), while the store keeps serving. A
    /// backup directory is a sled store: restore it with `ozmint restore`.
    pub async fn backup_to(&self, dir: &Path) -> Result<()> {
        if dir.exists() {
            return Err(Error::Invalid(format!("{} already exists", dir.display())));
        }
        let target = SledEngine::open(dir, &SledOptions::default())?;
        self.copy_into(&target).await?;
        target.flush().await?;
        Ok(())
    }

    /// Copies every entry, as of one snapshot, into `target`, in commits
    /// within both engines' limits. Returns how many entries were copied.
    pub async fn copy_into(&self, target: &dyn Engine) -> Result<u64> {
        let snap = self.engine.snapshot().await?;
        let tl = target.limits();
        let per_commit = tl.max_writes.clamp(1, PAGE_MAX);
        let mut after: Option<Vec<u8>> = None;
        let mut copied = 0u64;
        loop {
            let page = snap.scan(&[], after.as_deref(), per_commit).await?;
            let mut writes = Vec::with_capacity(page.entries.len());
            let mut bytes = 0;
            for (k, v) in &page.entries {
                bytes += k.len() + v.len();
                writes.push(Write::Put(k.clone(), v.clone()));
                if bytes > tl.max_commit_bytes / 2 {
                    copied += writes.len() as u64;
                    commit_all(target, std::mem::take(&mut writes)).await?;
                    bytes = 0;
                }
            }
            copied += writes.len() as u64;
            commit_all(target, writes).await?;
            match page.next_after() {
                Some(a) => after = Some(a.to_vec()),
                None => break,
            }
        }
        target
            .commit(Commit::new(Vec::new(), Vec::new(), Durability::Immediate))
            .await?;
        Ok(copied)
    }

    /// Checks every invariant the store keeps, at one snapshot, and returns
    /// what is broken: every record decodes, no entity under deletion still
    /// has its record, the user name index points both ways, every relation
    /// has both directions and live ends (or a deletion still cascading),
    /// every token record has its index entries, and no key lies outside the
    /// tables.
    pub async fn check(&self) -> Result<Vec<String>> {
        let snap = self.engine.snapshot().await?;
        let snap = snap.as_ref();
        let mut problems = Vec::new();
        let deleting: Vec<(Entity, Id)> = keys_of(snap, &DELETING).await?;
        let dying = |kind: Entity, id: &Id| deleting.contains(&(kind, *id));
        let limit = self.engine.limits().max_batch_keys;
        // A deletion removes the record in the commit that writes its mark, and
        // creation refuses a marked id: `require_in` relies on both.
        let marked: Vec<Vec<u8>> = deleting
            .iter()
            .filter_map(|(kind, id)| schema::entity_key(*kind, id))
            .collect();
        for chunk in marked.chunks(limit) {
            for (key, v) in chunk.iter().zip(get(snap, chunk).await?) {
                if v.is_some() {
                    let key = String::from_utf8_lossy(key);
                    problems.push(format!("{key}: a record under deletion"));
                }
            }
        }

        let users = for_each(snap, &USERS, |id, raw| match USERS.decode(raw) {
            Ok(u) => Some(Ok((id, u.name))),
            Err(e) => Some(Err(format!("user record: {e}"))),
        })
        .await?;
        let users = split(users, &mut problems);
        let admins: std::collections::HashSet<Id> =
            keys_of(snap, &schema::ADMINS).await?.into_iter().collect();
        for raw in for_each(snap, &USERS, |id, raw| Some((id, raw.to_vec()))).await? {
            let (id, raw) = raw;
            if let Ok(u) = USERS.decode(&raw) {
                if super::entities::is_admin(&u) != admins.contains(&id) {
                    problems.push(format!(
                        "user {:?}: the administrators index disagrees with its privileges",
                        u.name
                    ));
                }
            }
        }
        for chunk in users.chunks(limit) {
            let keys: Vec<Vec<u8>> = chunk.iter().map(|(_, n)| USER_NAMES.key(n)).collect();
            for ((id, name), v) in chunk.iter().zip(get(snap, &keys).await?) {
                if v.as_deref() != Some(id.as_bytes()) {
                    problems.push(format!("user {name:?}: name index does not point back"));
                }
            }
        }
        let names = for_each(snap, &USER_NAMES, |name, raw| Some((name, raw.to_vec()))).await?;
        for chunk in names.chunks(limit) {
            let keys: Vec<Vec<u8>> = chunk
                .iter()
                .map(|(_, id)| [USERS.prefix().as_slice(), id].concat())
                .collect();
            for ((name, _), v) in chunk.iter().zip(get(snap, &keys).await?) {
                if v.is_none() {
                    problems.push(format!("name index {name:?} names a missing user"));
                }
            }
        }
        check_relation(snap, &GROUP_USERS_REL, &dying, limit, &mut problems).await?;
        check_relation(snap, &GROUP_CHILDREN_REL, &dying, limit, &mut problems).await?;
        check_relation(snap, &SPACE_USERS_REL, &dying, limit, &mut problems).await?;
        check_relation(snap, &SPACE_GROUPS_REL, &dying, limit, &mut problems).await?;
        check_relation(snap, &SPACE_PROVIDERS_REL, &dying, limit, &mut problems).await?;
        for table in [
            schema::GROUPS.name,
            schema::SPACES.name,
            schema::PROVIDERS.name,
        ] {
            let bad = undecodable(snap, table).await?;
            problems.extend(bad.into_iter().map(|e| format!("{table}: {e}")));
        }
        let tokens = for_each(snap, &TOKENS, |id, raw| match TOKENS.decode(raw) {
            Ok(rec) => Some(Ok((id, rec))),
            Err(e) => Some(Err(format!("token {id}: {e}"))),
        })
        .await?;
        let records = split(tokens, &mut problems);
        for chunk in records.chunks(limit / 3) {
            let mut keys = Vec::with_capacity(chunk.len() * 3);
            for (id, rec) in chunk {
                keys.push(TOKENS_BY_TARGET.key(&(rec.target, *id)));
                keys.push(TOKENS_BY_EXPIRY.key(&(rec.expires, *id)));
                keys.push(schema::entity_key(rec.kind.target(), &rec.target).unwrap_or_default());
            }
            let got = get(snap, &keys).await?;
            for ((id, rec), got) in chunk.iter().zip(got.chunks(3)) {
                if got[..2].iter().any(Option::is_none) {
                    problems.push(format!("token {id}: an index entry is missing"));
                }
                if got[2].is_none() && !dying(rec.kind.target(), &rec.target) {
                    problems.push(format!("token {id}: its target does not exist"));
                }
            }
        }
        // Named tokens: every record decodes, has a live subject (or one
        // still cascading) and its name index entry, and every index entry
        // points at a record of that subject and name.
        let named = for_each(
            snap,
            &schema::NAMED_TOKENS,
            |id, raw| match schema::NAMED_TOKENS.decode(raw) {
                Ok(rec) => Some(Ok((id, rec))),
                Err(e) => Some(Err(format!("named token {id}: {e}"))),
            },
        )
        .await?;
        let named = split(named, &mut problems);
        for chunk in named.chunks((limit / 2).max(1)) {
            let mut keys = Vec::with_capacity(chunk.len() * 2);
            for (_, rec) in chunk {
                let (kind, sid) = super::named::subject_entity(&rec.subject);
                keys.push(schema::NAMED_TOKEN_NAMES.key(&(rec.subject, rec.name.clone())));
                keys.push(schema::entity_key(kind, &sid).unwrap_or_default());
            }
            let got = get(snap, &keys).await?;
            for ((id, rec), pair) in chunk.iter().zip(got.chunks(2)) {
                if pair[0].as_deref() != Some(id.as_bytes()) {
                    problems.push(format!("named token {id}: its name index entry is missing"));
                }
                let (kind, sid) = super::named::subject_entity(&rec.subject);
                if pair[1].is_none() && !dying(kind, &sid) {
                    problems.push(format!("named token {id}: its subject does not exist"));
                }
            }
        }
        let names = for_each(snap, &schema::NAMED_TOKEN_NAMES, |key, raw| {
            Some((key, raw.to_vec()))
        })
        .await?;
        for chunk in names.chunks(limit) {
            let keys: Vec<Vec<u8>> = chunk
                .iter()
                .map(|(_, id)| [schema::NAMED_TOKENS.prefix().as_slice(), id].concat())
                .collect();
            for (((subject, name), _), v) in chunk.iter().zip(get(snap, &keys).await?) {
                let ok = v
                    .and_then(|raw| schema::NAMED_TOKENS.decode(&raw).ok())
                    .is_some_and(|r| r.subject == *subject && r.name == *name);
                if !ok {
                    problems.push(format!(
                        "named token name index {name:?} does not point at its token"
                    ));
                }
            }
        }
        let bad = undecodable(snap, schema::TEMPORARY_SECRETS.name).await?;
        problems.extend(bad.into_iter().map(|e| format!("temporary secret: {e}")));
        // Index entries without a record are left by interrupted mints of
        // older releases: readers skip them and purging removes them.
        let bad = undecodable(snap, schema::ROOT_KEYS.name).await?;
        problems.extend(bad.into_iter().map(|e| format!("root key: {e}")));
        problems.extend(stray_keys(snap).await?);
        Ok(problems)
    }
}

/// The good items; the problems go to `problems`.
fn split<T>(items: Vec<Result<T, String>>, problems: &mut Vec<String>) -> Vec<T> {
    let mut good = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Ok(t) => good.push(t),
            Err(p) => problems.push(p),
        }
    }
    good
}

async fn commit_all(target: &dyn Engine, writes: Vec<Write>) -> Result<()> {
    if !writes.is_empty() {
        target
            .commit(Commit::new(Vec::new(), writes, Durability::Eventual))
            .await?;
    }
    Ok(())
}

async fn get(snap: &dyn Snapshot, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
    let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    Ok(snap.get_many(&refs).await?)
}

/// Calls `f` for every entry of `table` with its decoded key, collecting what it returns.
async fn for_each<K, V, T>(
    snap: &dyn Snapshot,
    table: &Table<K, V>,
    mut f: impl FnMut(K, &[u8]) -> Option<T>,
) -> Result<Vec<T>>
where
    K: schema::KeyPart,
    V: StoredValue,
{
    let prefix = table.prefix();
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = snap.scan(&prefix, after.as_deref(), PAGE_MAX).await?;
        for (k, v) in &page.entries {
            if let Some(t) = f(table.decode_key(k)?, v) {
                out.push(t);
            }
        }
        match page.next_after() {
            Some(a) => after = Some(a.to_vec()),
            None => return Ok(out),
        }
    }
}

async fn keys_of<K: schema::KeyPart, V: StoredValue>(
    snap: &dyn Snapshot,
    table: &Table<K, V>,
) -> Result<Vec<K>> {
    for_each(snap, table, |k, _| Some(k)).await
}

/// Decoding errors of every value of a record table.
async fn undecodable(snap: &dyn Snapshot, table: &'static str) -> Result<Vec<String>> {
    let t = |raw: &[u8]| -> Option<String> {
        let r = match table {
            n if n == schema::GROUPS.name => schema::GROUPS.decode(raw).map(|_| ()),
            n if n == schema::SPACES.name => schema::SPACES.decode(raw).map(|_| ()),
            n if n == schema::PROVIDERS.name => schema::PROVIDERS.decode(raw).map(|_| ()),
            n if n == schema::ROOT_KEYS.name => schema::ROOT_KEYS.decode(raw).map(|_| ()),
            _ => Ok(()),
        };
        r.err().map(|e| e.to_string())
    };
    let prefix = [table.as_bytes(), b"/"].concat();
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = snap.scan(&prefix, after.as_deref(), PAGE_MAX).await?;
        out.extend(page.entries.iter().filter_map(|(_, v)| t(v)));
        match page.next_after() {
            Some(a) => after = Some(a.to_vec()),
            None => return Ok(out),
        }
    }
}

async fn check_relation<V: StoredValue>(
    snap: &dyn Snapshot,
    r: &Relation<V>,
    dying: &dyn Fn(Entity, &Id) -> bool,
    limit: usize,
    problems: &mut Vec<String>,
) -> Result<()> {
    let name = r.fwd.name;
    let fwd = for_each(snap, &r.fwd, |(a, b), raw| {
        if r.fwd.decode(raw).is_err() {
            Some(Err(format!("{name}: undecodable value for {a} -> {b}")))
        } else {
            Some(Ok((a, b)))
        }
    })
    .await?;
    let edges = split(fwd, problems);
    let key = |kind: Entity, id: &Id| schema::entity_key(kind, id).unwrap_or_default();
    for chunk in edges.chunks((limit / 3).max(1)) {
        let mut keys = Vec::with_capacity(chunk.len() * 3);
        for (a, b) in chunk {
            keys.push(r.rev.key(&(*b, *a)));
            keys.push(key(r.a, a));
            keys.push(key(r.b, b));
        }
        let got = get(snap, &keys).await?;
        for ((a, b), three) in chunk.iter().zip(got.chunks(3)) {
            if three[0].is_none() {
                problems.push(format!("{name}: {a} -> {b} has no reverse entry"));
            }
            let a_gone = three[1].is_none() && !dying(r.a, a);
            let b_gone = three[2].is_none() && !dying(r.b, b);
            if a_gone || b_gone {
                problems.push(format!(
                    "{name}: {a} -> {b} names a missing {} or {}",
                    r.a, r.b
                ));
            }
        }
    }
    let rev = keys_of(snap, &r.rev).await?;
    for chunk in rev.chunks(limit) {
        let keys: Vec<Vec<u8>> = chunk.iter().map(|(b, a)| r.fwd.key(&(*a, *b))).collect();
        for ((b, a), v) in chunk.iter().zip(get(snap, &keys).await?) {
            if v.is_none() {
                problems.push(format!(
                    "{}: reverse entry {b} <- {a} has no forward entry",
                    r.rev.name
                ));
            }
        }
    }
    Ok(())
}

/// Keys outside every table (a store written by something else, or damage).
async fn stray_keys(snap: &dyn Snapshot) -> Result<Vec<String>> {
    let mut bounds: Vec<Vec<u8>> = schema::TABLES
        .iter()
        .map(|t| [t.as_bytes(), b"/"].concat())
        .collect();
    bounds.sort();
    let mut problems = Vec::new();
    // Everything before the first table, between tables, and after the last.
    let mut after: Option<Vec<u8>> = None;
    let mut count = 0usize;
    loop {
        let page = snap.scan(&[], after.as_deref(), PAGE_MAX).await?;
        for (k, _) in &page.entries {
            if !bounds.iter().any(|b| k.starts_with(b)) {
                count += 1;
            }
        }
        match page.next_after() {
            Some(a) => after = Some(a.to_vec()),
            None => break,
        }
    }
    if count > 0 {
        problems.push(format!("{count} key(s) outside every table"));
    }
    Ok(problems)
}
