//! Onedata 20.02+ temporary tokens: not stored, signed with the subject's
//! shared secret of the current generation.
//!
//! Minting (and reading the generation) reads the secret together with the
//! subject's record (one engine call) and writes nothing (but the secret itself, the first time a subject
//! needs one). Verification reads the secret record on
//! every request (in the same engine call as the subject's record), so a
//! revocation through any instance holds on the very next request: no cache
//! of the secret would save that read, so none is kept.

use std::fmt;

use serde_json::Value;

use super::named_tokens::{no_invite_parameters, type_and_caveats};
use super::token_auth::token_subject;
use super::{Caller, Zone};
use crate::error::{Error, OzError, Result};
use crate::model::{now, Id, Subject, TemporarySecret};
use crate::store::subject_entity;
use crate::token::caveat::Caveat;
use crate::token::v2::{self, Persistence, TokenType, V2Identifier};

/// A minted temporary token.
pub struct TemporaryToken {
    /// The token in its escaped wire form (a bearer secret).
    pub token: String,
    /// Its type.
    pub token_type: TokenType,
    /// The generation of the subject's temporary tokens it belongs to.
    pub generation: u64,
}

impl fmt::Debug for TemporaryToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemporaryToken")
            .field("token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("generation", &self.generation)
            .finish()
    }
}

impl Zone {
    /// Mints a temporary token for `subject` from Onezone's JSON body
    /// (`type`, `caveats`): a `time` caveat is required, at most
    /// `max_temporary_token_ttl` from now (`tokenTimeCaveatRequired`).
    pub async fn create_temporary_token(
        &self,
        caller: &Caller,
        subject: Subject,
        body: &Value,
    ) -> Result<TemporaryToken> {
        let secret = self.secret_of_existing(&subject).await?;
        self.require_token_manager(caller, &subject).await?;
        caller.unrestricted()?;
        let body = body.as_object().ok_or(OzError::BadValueJson("data"))?;
        let (token_type, caveats) = type_and_caveats(body)?;
        // Temporary invites carry the default privileges and no usage limit.
        no_invite_parameters(body)?;
        self.check_invitation(&subject, &token_type, false).await?;
        let max_ttl = self.config.max_temporary_token_ttl;
        match Caveat::expiration(&caveats) {
            Some(until) if until.saturating_sub(now()) <= max_ttl => {}
            _ => return Err(OzError::TimeCaveatRequired { max_ttl }.into()),
        }
        let secret = match secret {
            Some(s) => s,
            None => self.store.ensure_temporary_secret(&subject).await?,
        };
        let ident = V2Identifier::new(
            Persistence::Temporary {
                generation: secret.generation,
            },
            token_subject(&subject),
            token_type.clone(),
            &Id::random().to_string(),
        )
        .map_err(|e| OzError::BadData("type", e.to_string()))?;
        let token = v2::mint(
            &self.config.location,
            &v2::Identifier::V2(ident),
            secret.secret.as_bytes(),
            &caveats,
        )?;
        Ok(TemporaryToken {
            token,
            token_type,
            generation: secret.generation,
        })
    }

    /// The current generation of a subject's temporary tokens (1 before
    /// any was minted or revoked).
    pub async fn temporary_token_generation(
        &self,
        caller: &Caller,
        subject: Subject,
    ) -> Result<u64> {
        let secret = self.secret_of_existing(&subject).await?;
        self.require_token_manager(caller, &subject).await?;
        Ok(secret.map_or(1, |s| s.generation))
    }

    /// The subject's temporary-token secret (none before the first mint),
    /// read with the subject in one engine call: 404 (before any 403) if
    /// the subject does not exist.
    async fn secret_of_existing(&self, subject: &Subject) -> Result<Option<TemporarySecret>> {
        let (secret, exists) = self.store.temporary_secret_and_subject(subject).await?;
        if !exists {
            return Err(Error::NotFound(subject_entity(subject).0));
        }
        Ok(secret)
    }

    /// Revokes every temporary token of a subject (a new secret, the next
    /// generation, one commit).
    pub async fn revoke_temporary_tokens(&self, caller: &Caller, subject: Subject) -> Result<u64> {
        let (kind, id) = subject_entity(&subject);
        self.require_exists(kind, &id).await?;
        self.require_token_manager(caller, &subject).await?;
        self.store.regenerate_temporary_secret(&subject).await
    }
}
