//! Users, groups, spaces and providers: creation, lookup, update, deletion.
//!
//! Creation guards what must be unique (the id; a user's name) as absent.
//! Deletion runs in steps that each leave the store consistent: first one
//! commit removes the record (and a user's name) and marks the deletion as
//! running, so nothing new can attach to the entity from then on; then its
//! relations and tokens are removed in commits within the engine's limits;
//! last the mark goes. Readers treat edges to an entity without a record as
//! absent, and a deletion interrupted by a crash is finished when the store
//! is opened again.

use super::relations::{
    require_in, Relation, GROUP_CHILDREN_REL, GROUP_USERS_REL, SPACE_GROUPS_REL,
    SPACE_PROVIDERS_REL, SPACE_USERS_REL,
};
use super::schema::{
    ADMINS, DELETING, GROUPS, NAMED_TOKENS, NAMED_TOKEN_NAMES, PROVIDERS, PROVIDER_SEEN,
    PROVIDER_VERSIONS, SPACES, TEMPORARY_SECRETS, TOKENS, TOKENS_BY_EXPIRY, TOKENS_BY_TARGET,
    USERS, USER_NAMES,
};
use super::{Store, Txn, PAGE_MAX};
use crate::error::{Entity, Error, Result};
use crate::model::{
    now, Group, GroupPrivileges, GroupType, Id, Provider, Space, SpacePrivileges, Subject, User,
    ZonePrivileges,
};

/// Longest accepted user name, in bytes.
pub const MAX_USERNAME: usize = 64;
/// Longest accepted group, space or provider name or domain, in bytes.
pub const MAX_NAME: usize = 256;

/// Checks a display name: 1..=max bytes, not blank, no control characters.
pub(crate) fn check_name(what: &str, name: &str, max: usize) -> Result<()> {
    if name.trim().is_empty() || name.len() > max || name.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "{what} must be 1 to {max} bytes without control characters"
        )));
    }
    Ok(())
}

fn check_username(name: &str) -> Result<()> {
    check_name("username", name, MAX_USERNAME)?;
    if name.contains(':') || name.chars().any(char::is_whitespace) {
        return Err(Error::Invalid(
            "username must not contain ':' or white space".into(),
        ));
    }
    Ok(())
}

/// One side of a relation an entity takes part in: the tables to scan under
/// the entity's id, and how to name both directions of each edge found.
struct Side {
    /// Table whose keys start with the entity's id.
    scan: &'static str,
    /// The other direction's table.
    other: &'static str,
}

fn sides_of<V>(r: &Relation<V>, a_side: bool) -> Side {
    if a_side {
        Side {
            scan: r.fwd.name,
            other: r.rev.name,
        }
    } else {
        Side {
            scan: r.rev.name,
            other: r.fwd.name,
        }
    }
}

fn sides(kind: Entity) -> Vec<Side> {
    match kind {
        Entity::User => vec![
            sides_of(&GROUP_USERS_REL, false),
            sides_of(&SPACE_USERS_REL, false),
        ],
        Entity::Group => vec![
            sides_of(&GROUP_USERS_REL, true),
            sides_of(&GROUP_CHILDREN_REL, true),
            sides_of(&GROUP_CHILDREN_REL, false),
            sides_of(&SPACE_GROUPS_REL, false),
        ],
        Entity::Space => vec![
            sides_of(&SPACE_USERS_REL, true),
            sides_of(&SPACE_GROUPS_REL, true),
            sides_of(&SPACE_PROVIDERS_REL, true),
        ],
        Entity::Provider => vec![sides_of(&SPACE_PROVIDERS_REL, false)],
        Entity::Relation | Entity::Token | Entity::RootKey => Vec::new(),
    }
}

fn raw_key(table: &str, a: &[u8], b: &[u8]) -> Vec<u8> {
    [table.as_bytes(), b"/", a, b].concat()
}

impl Store {
    /// Deletes an entity with all its relations and the tokens minted for it.
    pub async fn delete(&self, kind: Entity, id: &Id) -> Result<()> {
        self.transact(|mut tx| async move {
            require_in(&mut tx, kind, id).await?;
            match kind {
                Entity::User => {
                    let user = tx.get(&USERS, id).await?.ok_or(Error::NotFound(kind))?;
                    if is_admin(&user) {
                        another_admin_in(&mut tx, id).await?;
                        tx.delete(&ADMINS, id);
                    }
                    tx.delete(&USER_NAMES, &user.name);
                    tx.delete(&USERS, id);
                }
                Entity::Group => tx.delete(&GROUPS, id),
                Entity::Space => tx.delete(&SPACES, id),
                Entity::Provider => {
                    tx.delete(&PROVIDERS, id);
                    tx.delete(&PROVIDER_VERSIONS, id);
                    tx.delete(&PROVIDER_SEEN, id);
                }
                _ => return Err(Error::NotFound(kind)),
            }
            match kind {
                Entity::User => tx.delete(&TEMPORARY_SECRETS, &Subject::User(*id)),
                Entity::Provider => tx.delete(&TEMPORARY_SECRETS, &Subject::Provider(*id)),
                _ => {}
            }
            tx.put(&DELETING, &(kind, *id), &())?;
            Ok(tx.done(()))
        })
        .await?;
        self.cascade(kind, id).await
    }

    /// Finishes every deletion whose cascade was interrupted.
    pub(crate) async fn finish_deletions(&self) -> Result<()> {
        for (kind, id) in self.all_keys(&DELETING, &[]).await? {
            self.cascade(kind, &id).await?;
        }
        Ok(())
    }

    /// Removes the relations and tokens of a deleted entity, in commits
    /// within the engine's limits, then its deletion mark.
    async fn cascade(&self, kind: Entity, id: &Id) -> Result<()> {
        let budget = self.engine.limits().max_writes.saturating_sub(8).max(3);
        loop {
            let keys = self.cascade_step(kind, id, budget).await?;
            if keys.is_empty() {
                break;
            }
            let keys = &keys;
            self.transact(|mut tx| async move {
                for k in keys {
                    tx.delete_raw(k.clone());
                }
                Ok(tx.done(()))
            })
            .await?;
        }
        self.transact(|mut tx| async move {
            tx.delete(&DELETING, &(kind, *id));
            Ok(tx.done(()))
        })
        .await
    }

    /// Up to about `budget` keys still to delete for a deleted entity.
    async fn cascade_step(&self, kind: Entity, id: &Id, budget: usize) -> Result<Vec<Vec<u8>>> {
        let mut keys = Vec::new();
        for side in sides(kind) {
            let prefix = raw_key(side.scan, id.as_bytes(), &[]);
            let page = self
                .engine
                .scan(&prefix, None, (budget / 2).clamp(1, PAGE_MAX))
                .await?;
            for (k, _) in page.entries {
                let other = k[prefix.len()..].to_vec();
                keys.push(raw_key(side.other, &other, id.as_bytes()));
                keys.push(k);
                if keys.len() + 2 > budget {
                    return Ok(keys);
                }
            }
        }
        // Named tokens of a user or provider: index entry and record.
        let subject = match kind {
            Entity::User => Some(Subject::User(*id)),
            Entity::Provider => Some(Subject::Provider(*id)),
            _ => None,
        };
        if let Some(subject) = subject.filter(|_| keys.is_empty()) {
            let prefix = NAMED_TOKEN_NAMES.sub_prefix(&subject);
            let sub = &prefix[NAMED_TOKEN_NAMES.prefix().len()..];
            let (named, _) = self
                .page(
                    &NAMED_TOKEN_NAMES,
                    sub,
                    None,
                    (budget / 2).clamp(1, PAGE_MAX),
                )
                .await?;
            for (key, t) in named {
                keys.push(NAMED_TOKEN_NAMES.key(&key));
                keys.push(NAMED_TOKENS.key(&t));
            }
            if !keys.is_empty() {
                return Ok(keys);
            }
        }
        // Tokens minted for the entity: record and both index entries.
        let (tokens, _) = self
            .page(
                &TOKENS_BY_TARGET,
                id.as_bytes(),
                None,
                (budget / 3).clamp(1, PAGE_MAX),
            )
            .await?;
        let ids: Vec<Id> = tokens.iter().map(|((_, t), _)| *t).collect();
        let recs = self
            .get_raw_many(&ids.iter().map(|t| TOKENS.key(t)).collect::<Vec<_>>())
            .await?;
        for (t, rec) in ids.iter().zip(recs) {
            keys.push(TOKENS_BY_TARGET.key(&(*id, *t)));
            if let Some(raw) = rec {
                let rec = TOKENS.decode(&raw)?;
                keys.push(TOKENS.key(t));
                keys.push(TOKENS_BY_EXPIRY.key(&(rec.expires, *t)));
            }
        }
        Ok(keys)
    }

    /// Creates a user. Fails with `AlreadyExists` if the name is taken.
    pub async fn create_user(
        &self,
        name: &str,
        password_hash: String,
        zone_privileges: ZonePrivileges,
    ) -> Result<Id> {
        let id = Id::random();
        let user = User {
            name: name.to_owned(),
            password_hash,
            zone_privileges,
            created: now(),
        };
        self.insert_user(id, &user).await?;
        Ok(id)
    }

    /// Inserts a user under a given id (import).
    pub async fn insert_user(&self, id: Id, user: &User) -> Result<()> {
        check_username(&user.name)?;
        self.transact(|mut tx| async move {
            Self::insert_user_in(&mut tx, id, user).await?;
            Ok(tx.done(()))
        })
        .await
    }

    pub(crate) async fn insert_user_in(tx: &mut Txn<'_>, id: Id, user: &User) -> Result<()> {
        if tx.exists(&USER_NAMES, &user.name).await?
            || tx.exists(&USERS, &id).await?
            || tx.exists(&DELETING, &(Entity::User, id)).await?
        {
            return Err(Error::AlreadyExists(Entity::User));
        }
        tx.put(&USERS, &id, user)?;
        if is_admin(user) {
            tx.put(&ADMINS, &id, &())?;
        }
        tx.put(&USER_NAMES, &user.name, &id)
    }

    /// A user by id.
    pub async fn user(&self, id: &Id) -> Result<Option<User>> {
        self.get(&USERS, id).await
    }

    /// A user by login name.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<(Id, User)>> {
        let Some(id) = self.get(&USER_NAMES, &name.to_owned()).await? else {
            return Ok(None);
        };
        Ok(self.user(&id).await?.map(|u| (id, u)))
    }

    /// Changes a user's record (password hash, zone privileges) in one
    /// guarded read-modify-write; the name is fixed. `f` may refuse. A change
    /// that would leave the zone without an administrator is refused
    /// ([`Error::LastAdmin`]).
    pub async fn update_user(&self, id: &Id, f: impl Fn(&mut User) -> Result<()>) -> Result<User> {
        let f = &f;
        self.transact(|mut tx| async move {
            let mut user = tx
                .get(&USERS, id)
                .await?
                .ok_or(Error::NotFound(Entity::User))?;
            let (name, was_admin) = (user.name.clone(), is_admin(&user));
            f(&mut user)?;
            user.name = name;
            match (was_admin, is_admin(&user)) {
                (true, false) => {
                    another_admin_in(&mut tx, id).await?;
                    tx.delete(&ADMINS, id);
                }
                (false, true) => tx.put(&ADMINS, id, &())?,
                _ => {}
            }
            tx.put(&USERS, id, &user)?;
            Ok(tx.done(user))
        })
        .await
    }

    /// The zone's administrators: users holding `set_privileges` (first page).
    pub async fn admins(&self) -> Result<Vec<Id>> {
        Ok(self
            .page(&ADMINS, &[], None, PAGE_MAX)
            .await?
            .0
            .into_iter()
            .map(|(id, ())| id)
            .collect())
    }

    /// A page of users in id order, after `after`; and whether more follow.
    pub async fn users(&self, after: Option<Id>, limit: usize) -> Result<(Vec<(Id, User)>, bool)> {
        self.page(&USERS, &[], after.as_ref(), limit).await
    }

    /// Creates a group of type `role`. The creator, if any, becomes a member
    /// with all group privileges.
    pub async fn create_group(&self, name: &str, creator: Option<Id>) -> Result<Id> {
        self.create_group_of_type(name, GroupType::Role, creator)
            .await
    }

    /// Creates a group of the given type. The creator, if any, becomes a
    /// member with all group privileges.
    pub async fn create_group_of_type(
        &self,
        name: &str,
        kind: GroupType,
        creator: Option<Id>,
    ) -> Result<Id> {
        let id = Id::random();
        self.insert_group(id, name, kind, creator).await?;
        Ok(id)
    }

    /// Inserts a group under a given id.
    pub async fn insert_group(
        &self,
        id: Id,
        name: &str,
        kind: GroupType,
        creator: Option<Id>,
    ) -> Result<()> {
        check_name("group name", name, MAX_NAME)?;
        let group = Group {
            name: name.to_owned(),
            kind,
            created: now(),
        };
        let group = &group;
        self.transact(|mut tx| async move {
            fresh_in(&mut tx, Entity::Group, &id).await?;
            tx.put(&GROUPS, &id, group)?;
            if let Some(user) = creator {
                require_in(&mut tx, Entity::User, &user).await?;
                GROUP_USERS_REL.put_in(&mut tx, &id, &user, &GroupPrivileges::all())?;
            }
            Ok(tx.done(()))
        })
        .await
    }

    /// A group by id.
    pub async fn group(&self, id: &Id) -> Result<Option<Group>> {
        self.get(&GROUPS, id).await
    }

    /// A page of groups in id order.
    pub async fn groups(
        &self,
        after: Option<Id>,
        limit: usize,
    ) -> Result<(Vec<(Id, Group)>, bool)> {
        self.page(&GROUPS, &[], after.as_ref(), limit).await
    }

    /// Changes a group's name, type or both.
    pub async fn update_group(
        &self,
        id: &Id,
        name: Option<&str>,
        kind: Option<GroupType>,
    ) -> Result<()> {
        if let Some(name) = name {
            check_name("group name", name, MAX_NAME)?;
        }
        self.transact(|mut tx| async move {
            let mut g = tx
                .get(&GROUPS, id)
                .await?
                .ok_or(Error::NotFound(Entity::Group))?;
            if let Some(name) = name {
                g.name = name.to_owned();
            }
            g.kind = kind.unwrap_or(g.kind);
            tx.put(&GROUPS, id, &g)?;
            Ok(tx.done(()))
        })
        .await
    }

    /// Creates a space. The creator, if any, becomes a member with all space privileges.
    pub async fn create_space(&self, name: &str, creator: Option<Id>) -> Result<Id> {
        let id = Id::random();
        self.insert_space(id, name, creator).await?;
        Ok(id)
    }

    /// Inserts a space under a given id.
    pub async fn insert_space(&self, id: Id, name: &str, creator: Option<Id>) -> Result<()> {
        self.transact(|mut tx| async move {
            Self::insert_space_in(&mut tx, id, name).await?;
            if let Some(user) = creator {
                require_in(&mut tx, Entity::User, &user).await?;
                SPACE_USERS_REL.put_in(&mut tx, &id, &user, &SpacePrivileges::all())?;
            }
            Ok(tx.done(()))
        })
        .await
    }

    /// Creates a space record inside a transaction.
    pub(crate) async fn insert_space_in(tx: &mut Txn<'_>, id: Id, name: &str) -> Result<()> {
        check_name("space name", name, MAX_NAME)?;
        fresh_in(tx, Entity::Space, &id).await?;
        tx.put(
            &SPACES,
            &id,
            &Space {
                name: name.to_owned(),
                created: now(),
            },
        )
    }

    /// A space by id.
    pub async fn space(&self, id: &Id) -> Result<Option<Space>> {
        self.get(&SPACES, id).await
    }

    /// A page of spaces in id order.
    pub async fn spaces(
        &self,
        after: Option<Id>,
        limit: usize,
    ) -> Result<(Vec<(Id, Space)>, bool)> {
        self.page(&SPACES, &[], after.as_ref(), limit).await
    }

    /// Renames a space.
    pub async fn rename_space(&self, id: &Id, name: &str) -> Result<()> {
        check_name("space name", name, MAX_NAME)?;
        self.transact(|mut tx| async move {
            let mut s = tx
                .get(&SPACES, id)
                .await?
                .ok_or(Error::NotFound(Entity::Space))?;
            s.name = name.to_owned();
            tx.put(&SPACES, id, &s)?;
            Ok(tx.done(()))
        })
        .await
    }

    /// Registers a provider.
    pub async fn create_provider(&self, name: &str, domain: &str) -> Result<Id> {
        let id = Id::random();
        self.insert_provider(id, name, domain).await?;
        Ok(id)
    }

    /// Inserts a provider under a given id.
    pub async fn insert_provider(&self, id: Id, name: &str, domain: &str) -> Result<()> {
        self.transact(|mut tx| async move {
            Self::insert_provider_in(&mut tx, id, name, domain).await?;
            Ok(tx.done(()))
        })
        .await
    }

    /// Creates a provider record inside a transaction.
    pub(crate) async fn insert_provider_in(
        tx: &mut Txn<'_>,
        id: Id,
        name: &str,
        domain: &str,
    ) -> Result<()> {
        check_name("provider name", name, MAX_NAME)?;
        check_name("provider domain", domain, MAX_NAME)?;
        fresh_in(tx, Entity::Provider, &id).await?;
        tx.put(
            &PROVIDERS,
            &id,
            &Provider {
                name: name.to_owned(),
                domain: domain.to_owned(),
                created: now(),
            },
        )
    }

    /// Checks a provider record's name and domain.
    pub(crate) fn check_provider(p: &Provider) -> Result<()> {
        check_name("provider name", &p.name, MAX_NAME)?;
        check_name("provider domain", &p.domain, MAX_NAME)
    }

    /// A provider by id.
    pub async fn provider(&self, id: &Id) -> Result<Option<Provider>> {
        self.get(&PROVIDERS, id).await
    }

    /// A page of providers in id order.
    pub async fn providers(
        &self,
        after: Option<Id>,
        limit: usize,
    ) -> Result<(Vec<(Id, Provider)>, bool)> {
        self.page(&PROVIDERS, &[], after.as_ref(), limit).await
    }
}

/// Whether a user is an administrator of the zone.
pub(crate) fn is_admin(user: &User) -> bool {
    user.zone_privileges
        .contains(crate::model::ZonePrivilege::SetPrivileges)
}

/// `LastAdmin` unless an administrator other than `id` exists; guarded on
/// that administrator's index entry, so that two concurrent changes cannot
/// each count on the other.
async fn another_admin_in(tx: &mut Txn<'_>, id: &Id) -> Result<()> {
    let (page, _) = tx.store().page(&ADMINS, &[], None, 2).await?;
    let other = page.into_iter().map(|(a, ())| a).find(|a| a != id);
    match other {
        Some(a) if tx.exists(&ADMINS, &a).await? => Ok(()),
        _ => Err(Error::LastAdmin),
    }
}

/// Guards that no entity of `kind` has `id`, nor is one with it being deleted.
async fn fresh_in(tx: &mut Txn<'_>, kind: Entity, id: &Id) -> Result<()> {
    let taken = match kind {
        Entity::Group => tx.exists(&GROUPS, id).await?,
        Entity::Space => tx.exists(&SPACES, id).await?,
        Entity::Provider => tx.exists(&PROVIDERS, id).await?,
        Entity::User => tx.exists(&USERS, id).await?,
        _ => false,
    };
    if taken || tx.exists(&DELETING, &(kind, *id)).await? {
        return Err(Error::AlreadyExists(kind));
    }
    Ok(())
}
