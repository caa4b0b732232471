//! Root keys: listing, rotation, retirement (zone `oz_tokens_manage`).

use super::authorize::Action;
use super::{Caller, Zone};
use crate::error::Result;
use crate::store::KeyInfo;

impl Zone {
    /// Facts about every root key.
    pub async fn list_keys(&self, caller: &Caller) -> Result<Vec<KeyInfo>> {
        self.require(caller, Action::ManageKeys).await?;
        Ok(self.store.root_keys().await?.list())
    }

    /// Adds a new current root key; returns its id.
    pub async fn rotate_key(&self, caller: &Caller) -> Result<u32> {
        self.require(caller, Action::ManageKeys).await?;
        self.store.rotate_key().await
    }

    /// Retires a root key: tokens signed with it stop verifying everywhere.
    pub async fn retire_key(&self, caller: &Caller, id: u32) -> Result<()> {
        self.require(caller, Action::ManageKeys).await?;
        self.store.retire_key(id).await
    }
}
