//! Users: creation, listing, lookup, deletion, zone privileges, passwords.

use super::authorize::Action;
use super::members::PrivilegeChange;
use super::{Caller, Listed, PageRequest, Zone};
use crate::error::{Entity, Error, Forbidden, Result};
use crate::model::{Id, Subject, User, ZonePrivilege as ZP, ZonePrivileges};
use crate::ops::auth::{hash_password, verify_password};

impl Zone {
    /// Creates a user with a password (zone `oz_users_create`).
    pub async fn create_user(&self, caller: &Caller, username: &str, password: &str) -> Result<Id> {
        self.require(caller, Action::Zone(ZP::UsersCreate)).await?;
        let hash = self.hash(password).await?;
        self.store
            .create_user(username, hash, ZonePrivileges::empty())
            .await
    }

    /// Hashes a password on the blocking pool.
    pub(crate) async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        self.hash_blocking(move || hash_password(&password))
            .await
            .map_err(|f| match f {
                super::AuthFailure::Internal(e) => e,
                _ => Error::Invalid("password could not be hashed".into()),
            })
    }

    /// A page of user ids (zone `list_users`).
    pub async fn list_users(&self, caller: &Caller, page: PageRequest) -> Result<Listed<Id>> {
        self.require(caller, Action::Zone(ZP::ListUsers)).await?;
        let (users, more) = self.store.users(page.after, page.limit).await?;
        let ids = users.into_iter().map(|(id, _)| id).collect();
        Ok(Listed::new(ids, more, |id| *id))
    }

    /// A user (themselves, or with zone `list_users`).
    pub async fn get_user(&self, caller: &Caller, uid: Id) -> Result<User> {
        let user = self
            .store
            .user(&uid)
            .await?
            .ok_or(Error::NotFound(Entity::User))?;
        if caller.subject != Subject::User(uid) {
            self.require(caller, Action::Zone(ZP::ListUsers)).await?;
        }
        Ok(user)
    }

    /// The calling user.
    pub async fn me(&self, caller: &Caller) -> Result<(Id, User)> {
        let uid = caller.user_id()?;
        let user = self
            .store
            .user(&uid)
            .await?
            .ok_or(Error::NotFound(Entity::User))?;
        Ok((uid, user))
    }

    /// Deletes a user (zone `oz_users_delete`).
    pub async fn delete_user(&self, caller: &Caller, uid: Id) -> Result<()> {
        self.require_exists(Entity::User, &uid).await?;
        self.require(caller, Action::Zone(ZP::UsersDelete)).await?;
        self.store.delete(Entity::User, &uid).await
    }

    /// A user's zone privileges (themselves, or zone `view_privileges`).
    pub async fn zone_privileges(&self, caller: &Caller, uid: Id) -> Result<ZonePrivileges> {
        let user = self
            .store
            .user(&uid)
            .await?
            .ok_or(Error::NotFound(Entity::User))?;
        if caller.subject != Subject::User(uid) {
            self.require(caller, Action::Zone(ZP::ViewPrivileges))
                .await?;
        }
        Ok(user.zone_privileges)
    }

    /// Changes a user's zone privileges (zone `set_privileges`), as one
    /// read-modify-write: concurrent grants add up.
    pub async fn update_zone_privileges(
        &self,
        caller: &Caller,
        uid: Id,
        change: PrivilegeChange<ZP>,
    ) -> Result<()> {
        self.require_exists(Entity::User, &uid).await?;
        self.require(caller, Action::Zone(ZP::SetPrivileges))
            .await?;
        self.store
            .update_user(&uid, |u| {
                u.zone_privileges = change.apply(u.zone_privileges);
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Changes the calling user's password, given the old one.
    pub async fn change_password(&self, caller: &Caller, old: &str, new: &str) -> Result<()> {
        let uid = caller.user_id()?;
        let user = self
            .store
            .user(&uid)
            .await?
            .ok_or(Error::NotFound(Entity::User))?;
        let (hash, old_pw) = (user.password_hash.clone(), old.to_owned());
        let ok = self
            .hash_blocking(move || Ok(verify_password(&hash, &old_pw)))
            .await
            .map_err(|_| Error::Invalid("password could not be checked".into()))?;
        if !ok {
            return Err(Error::Forbidden(Forbidden::WrongPassword));
        }
        let new_hash = self.hash(new).await?;
        let expected = user.password_hash;
        self.store
            .update_user(&uid, |u| {
                // Refuse if the password changed since it was checked.
                if u.password_hash != expected {
                    return Err(Error::Forbidden(Forbidden::WrongPassword));
                }
                u.password_hash = new_hash.clone();
                Ok(())
            })
            .await?;
        Ok(())
    }
}
