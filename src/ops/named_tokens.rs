//! Onedata 20.02+ named tokens: create, list, get, patch, delete.
//!
//! Authorization: the token's subject itself, or a user holding the zone
//! privilege `oz_tokens_manage`. Creating a token needs an unrestricted
//! caller (a password, or a token without caveats), as the legacy client
//! tokens do: a token its holder limited cannot mint itself a wider one.
//! Invite tokens carry privileges and a usage limit (see [`super::invites`]);
//! one is stored in the commit that checked its issuer's privileges.

use std::fmt;

use serde_json::{json, Map, Value};

use super::authorize::Action;
use super::invites;
use super::members::MemberPrivileges;
use super::token_auth::token_subject;
use super::{Caller, Zone};
use crate::error::{Entity, Error, Forbidden, OzError, Result};
use crate::model::{now, random_token_secret, Id, NamedToken, Subject, ZonePrivilege};
use crate::store::{subject_entity, Store};
use crate::token::caveat::Caveat;
use crate::token::v2::{self, supported_caveats, Persistence, Scope, TokenType, V2Identifier};

/// Most caveats a token may be created with.
pub const MAX_CAVEATS: usize = 64;
/// Largest custom metadata object, in bytes of its JSON text.
pub const MAX_CUSTOM_METADATA: usize = 4096;
/// Shortest and longest token name, in characters.
pub const NAME_CHARS: (usize, usize) = (2, 128);

/// Whether `name` follows Onezone's naming rules: 2-128 characters of
/// letters, digits, `()` and `_`; `-`, `.` and space also allowed, but not
/// first or last.
pub fn valid_name(name: &str) -> bool {
    let n = name.chars().count();
    let edge = |c: char| c.is_alphanumeric() || matches!(c, '_' | '(' | ')');
    let inner = |c: char| edge(c) || matches!(c, '-' | '.' | ' ');
    (NAME_CHARS.0..=NAME_CHARS.1).contains(&n)
        && name.chars().next().is_some_and(edge)
        && name.chars().last().is_some_and(edge)
        && name.chars().all(inner)
}

/// A named token: id, record and serialized form (a bearer secret).
#[derive(Clone)]
pub struct NamedTokenInfo {
    /// Its id.
    pub id: Id,
    /// Its record.
    pub record: NamedToken,
    /// The serialized token, rebuilt from the record.
    pub token: String,
}

impl fmt::Debug for NamedTokenInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedTokenInfo")
            .field("id", &self.id)
            .field("record", &self.record)
            .field("token", &"<redacted>")
            .finish()
    }
}

fn caveats_of(rec: &NamedToken) -> Result<Vec<Caveat>> {
    rec.caveats
        .iter()
        .map(|t| Caveat::from_text(t).map_err(|e| Error::Invalid(format!("stored caveat: {e}"))))
        .collect()
}

fn type_of(rec: &NamedToken) -> Result<TokenType> {
    TokenType::parse(&rec.token_type).map_err(|e| Error::Invalid(format!("stored type: {e}")))
}

impl NamedTokenInfo {
    /// Its type.
    pub fn token_type(&self) -> Result<TokenType> {
        type_of(&self.record)
    }

    /// Onezone's NamedToken JSON.
    pub fn to_json(&self) -> Result<Value> {
        let r = &self.record;
        let ty = type_of(r)?;
        let custom: Value = serde_json::from_str(&r.custom_metadata).unwrap_or_else(|_| json!({}));
        let mut metadata = json!({ "creationTime": r.created, "custom": custom });
        if ty.is_invite(None) {
            metadata["privileges"] = json!(r.privileges);
            metadata["usageLimit"] = r.usage_limit.map_or(json!("infinity"), |n| json!(n));
            metadata["usageCount"] = json!(r.usage_count);
        }
        Ok(json!({
            "id": self.id.to_string(),
            "name": r.name,
            "subject": token_subject(&r.subject).to_json(),
            "type": ty.to_json(),
            "caveats": caveats_of(r)?.iter().map(Caveat::to_json).collect::<Vec<_>>(),
            "metadata": metadata,
            "revoked": r.revoked,
            "token": self.token,
        }))
    }
}

/// What `POST .../tokens/named` asks for (Onezone's JSON, validated).
#[derive(Clone, Debug)]
pub struct NamedTokenRequest {
    /// Name.
    pub name: String,
    /// Type (default access).
    pub token_type: TokenType,
    /// Caveats, in order.
    pub caveats: Vec<Caveat>,
    /// Custom metadata (a JSON object).
    pub custom_metadata: Map<String, Value>,
    /// Created revoked?
    pub revoked: bool,
    /// Invite tokens only: the privileges carried (`None` for the types
    /// that carry none).
    pub privileges: Option<MemberPrivileges>,
    /// Invite tokens only: how many times it may be consumed (`None`:
    /// infinity, the default).
    pub usage_limit: Option<u64>,
}

/// Reads and checks the type and caveats of a token request (named or
/// temporary): access (no session) or identity; at most [`MAX_CAVEATS`]
/// caveats, each valid and supported by the type.
pub fn type_and_caveats(body: &Map<String, Value>) -> Result<(TokenType, Vec<Caveat>), OzError> {
    let token_type = match body.get("type") {
        None => TokenType::ACCESS,
        Some(v) => TokenType::from_json(v).map_err(|e| OzError::BadData("type", e.to_string()))?,
    };
    match &token_type {
        TokenType::Access { session: None } | TokenType::Identity => {}
        TokenType::Access { session: Some(_) } => {
            return Err(OzError::BadData(
                "type",
                "ozmint has no GUI sessions to bind access tokens to".into(),
            ))
        }
        TokenType::Invite { invite_type, .. } => invites::check_supported(*invite_type)?,
    }
    let caveats = match body.get("caveats") {
        None => Vec::new(),
        Some(Value::Array(list)) => {
            if list.len() > MAX_CAVEATS {
                return Err(OzError::TooLarge("caveats", MAX_CAVEATS));
            }
            let supported = supported_caveats(&token_type, Scope::Unlimited);
            list.iter()
                .map(|c| {
                    let c = Caveat::from_json(c)
                        .map_err(|e| OzError::BadData("caveats", e.to_string()))?;
                    if !supported.contains(&c.kind()) || matches!(c, Caveat::TokenType(_)) {
                        return Err(OzError::BadData(
                            "caveats",
                            format!("caveat '{c}' is not allowed in this type of token"),
                        ));
                    }
                    Ok(c)
                })
                .collect::<Result<_, _>>()?
        }
        Some(_) => return Err(OzError::BadData("caveats", "must be a list".into())),
    };
    Ok((token_type, caveats))
}

/// `badData` if a body has `privileges` or `usageLimit`: only named invite
/// tokens take them.
pub fn no_invite_parameters(body: &Map<String, Value>) -> Result<(), OzError> {
    for key in ["privileges", "usageLimit"] {
        if body.contains_key(key) {
            return Err(OzError::BadData(
                if key == "privileges" {
                    "privileges"
                } else {
                    "usageLimit"
                },
                "only named invite tokens take it".into(),
            ));
        }
    }
    Ok(())
}

fn custom_metadata(v: &Value) -> Result<Map<String, Value>, OzError> {
    let Value::Object(m) = v else {
        return Err(OzError::BadValueJson("customMetadata"));
    };
    if v.to_string().len() > MAX_CUSTOM_METADATA {
        return Err(OzError::TooLarge("customMetadata", MAX_CUSTOM_METADATA));
    }
    Ok(m.clone())
}

fn name_of(v: &Value) -> Result<String, OzError> {
    let name = v.as_str().ok_or(OzError::BadValueString("name"))?;
    if !valid_name(name) {
        return Err(OzError::BadValueName("name"));
    }
    Ok(name.to_owned())
}

fn object(body: &Value) -> Result<&Map<String, Value>, OzError> {
    body.as_object().ok_or(OzError::BadValueJson("data"))
}

impl NamedTokenRequest {
    /// Reads Onezone's JSON body; other keys are ignored, as Onezone does.
    pub fn from_json(body: &Value) -> Result<NamedTokenRequest, OzError> {
        let body = object(body)?;
        let name = name_of(
            body.get("name")
                .ok_or(OzError::MissingRequiredValue("name"))?,
        )?;
        let (token_type, caveats) = type_and_caveats(body)?;
        let (privileges, usage_limit) = match &token_type {
            TokenType::Invite { invite_type, .. } => (
                invites::requested_privileges(*invite_type, body.get("privileges"))?,
                body.get("usageLimit")
                    .map(invites::usage_limit)
                    .transpose()?
                    .flatten(),
            ),
            _ => {
                no_invite_parameters(body)?;
                (None, None)
            }
        };
        let custom_metadata = match body.get("customMetadata") {
            None => Map::new(),
            Some(v) => custom_metadata(v)?,
        };
        let revoked = match body.get("revoked") {
            None => false,
            Some(v) => v.as_bool().ok_or(OzError::BadValueBoolean("revoked"))?,
        };
        Ok(NamedTokenRequest {
            name,
            token_type,
            caveats,
            custom_metadata,
            revoked,
            privileges,
            usage_limit,
        })
    }
}

/// What `PATCH /tokens/named/{id}` changes (at least one).
#[derive(Clone, Debug, Default)]
pub struct NamedTokenPatch {
    /// A new name.
    pub name: Option<String>,
    /// New custom metadata.
    pub custom_metadata: Option<Map<String, Value>>,
    /// Revoke or unrevoke.
    pub revoked: Option<bool>,
}

impl NamedTokenPatch {
    /// Reads Onezone's JSON body.
    pub fn from_json(body: &Value) -> Result<NamedTokenPatch, OzError> {
        let body = object(body)?;
        let p = NamedTokenPatch {
            name: body.get("name").map(name_of).transpose()?,
            custom_metadata: body
                .get("customMetadata")
                .map(custom_metadata)
                .transpose()?,
            revoked: body
                .get("revoked")
                .map(|v| v.as_bool().ok_or(OzError::BadValueBoolean("revoked")))
                .transpose()?,
        };
        if p.name.is_none() && p.custom_metadata.is_none() && p.revoked.is_none() {
            return Err(OzError::MissingAtLeastOneValue(vec![
                "name",
                "customMetadata",
                "revoked",
            ]));
        }
        Ok(p)
    }
}

impl Zone {
    /// `Forbidden` unless the caller may manage the tokens of `subject`:
    /// the subject itself or a zone token manager.
    pub(crate) async fn require_token_manager(
        &self,
        caller: &Caller,
        subject: &Subject,
    ) -> Result<()> {
        if caller.subject == *subject {
            return Ok(());
        }
        self.require(caller, Action::Zone(ZonePrivilege::TokensManage))
            .await
    }

    /// `NotFound` unless the subject exists, then the check of
    /// [`Zone::require_token_manager`].
    async fn require_subject(&self, caller: &Caller, subject: &Subject) -> Result<()> {
        let (kind, id) = subject_entity(subject);
        self.require_exists(kind, &id).await?;
        self.require_token_manager(caller, subject).await
    }

    /// The serialized form of a named token.
    pub fn render_named(&self, id: &Id, rec: &NamedToken) -> Result<String> {
        let ident = V2Identifier::new(
            Persistence::Named,
            token_subject(&rec.subject),
            type_of(rec)?,
            &id.to_string(),
        )
        .map_err(|e| Error::Invalid(format!("token identifier: {e}")))?;
        Ok(v2::mint(
            &self.config.location,
            &v2::Identifier::V2(ident),
            rec.secret.as_bytes(),
            &caveats_of(rec)?,
        )?)
    }

    fn info(&self, id: Id, record: NamedToken) -> Result<NamedTokenInfo> {
        let token = self.render_named(&id, &record)?;
        Ok(NamedTokenInfo { id, record, token })
    }

    /// Creates a named token for `subject`.
    pub async fn create_named_token(
        &self,
        caller: &Caller,
        subject: Subject,
        req: NamedTokenRequest,
    ) -> Result<NamedTokenInfo> {
        self.require_subject(caller, &subject).await?;
        caller.unrestricted()?;
        let id = Id::time_ordered();
        let privileges = req
            .privileges
            .map(|p| p.names().into_iter().map(str::to_owned).collect::<Vec<_>>());
        let invite = match &req.token_type {
            TokenType::Invite {
                invite_type,
                target,
            } => Some((
                *invite_type,
                target
                    .parse::<Id>()
                    .map_err(|_| OzError::InviteTargetIdInvalid(target.clone()))?,
                req.privileges != invites::default_privileges(*invite_type),
            )),
            _ => None,
        };
        let record = NamedToken {
            subject,
            name: req.name,
            token_type: req.token_type.to_string(),
            caveats: req.caveats.iter().map(Caveat::to_text).collect(),
            custom_metadata: Value::Object(req.custom_metadata).to_string(),
            created: now(),
            revoked: req.revoked,
            secret: random_token_secret(),
            privileges,
            usage_limit: req.usage_limit,
            usage_count: 0,
        };
        // Minted before it is stored: a token over the size limit is refused.
        let info = self.info(id, record)?;
        let Some((t, target, custom)) = invite else {
            self.store.create_named_token(&id, &info.record).await?;
            return Ok(info);
        };
        // The issuer's right to invite is checked in the commit that stores it.
        let (rec, target, subject) = (&info.record, &target, &info.record.subject);
        self.store
            .transact(|mut tx| async move {
                invites::ensure_valid_invitation(&mut tx, subject, t, target, custom).await?;
                Store::create_named_token_in(&mut tx, &id, rec).await?;
                Ok(tx.done(()))
            })
            .await?;
        Ok(info)
    }

    /// The ids of a subject's named tokens.
    pub async fn list_named_tokens(&self, caller: &Caller, subject: Subject) -> Result<Vec<Id>> {
        self.require_subject(caller, &subject).await?;
        self.store.named_tokens_of(&subject).await
    }

    /// The ids of every named token (zone `oz_tokens_manage`).
    pub async fn list_all_named_tokens(&self, caller: &Caller) -> Result<Vec<Id>> {
        self.require(caller, Action::Zone(ZonePrivilege::TokensManage))
            .await?;
        self.store.all_named_tokens().await
    }

    /// A subject's named token by name.
    pub async fn named_token_by_name(
        &self,
        caller: &Caller,
        subject: Subject,
        name: &str,
    ) -> Result<NamedTokenInfo> {
        self.require_subject(caller, &subject).await?;
        let (id, rec) = self
            .store
            .named_token_by_name(&subject, name)
            .await?
            .ok_or(Error::NotFound(Entity::Token))?;
        self.info(id, rec)
    }

    async fn managed(&self, caller: &Caller, id: &Id) -> Result<NamedToken> {
        let rec = self
            .store
            .named_token(id)
            .await?
            .ok_or(Error::NotFound(Entity::Token))?;
        self.require_token_manager(caller, &rec.subject).await?;
        Ok(rec)
    }

    /// A named token by id.
    pub async fn named_token(&self, caller: &Caller, id: &Id) -> Result<NamedTokenInfo> {
        let rec = self.managed(caller, id).await?;
        self.info(*id, rec)
    }

    /// Whether a named token is revoked (the shared scope: any
    /// authenticated caller may ask, as services do before honouring it).
    pub async fn named_token_revoked(&self, _caller: &Caller, id: &Id) -> Result<bool> {
        Ok(self
            .store
            .named_token(id)
            .await?
            .ok_or(Error::NotFound(Entity::Token))?
            .revoked)
    }

    /// Renames, changes the custom metadata of, revokes or unrevokes a named token.
    pub async fn update_named_token(
        &self,
        caller: &Caller,
        id: &Id,
        patch: NamedTokenPatch,
    ) -> Result<()> {
        let subject = self.managed(caller, id).await?.subject;
        let patch = &patch;
        self.store
            .update_named_token(id, |rec| {
                // The record may have changed hands since: only its subject's.
                if rec.subject != subject {
                    return Err(Error::Forbidden(Forbidden::Privileges));
                }
                if let Some(n) = &patch.name {
                    rec.name.clone_from(n);
                }
                if let Some(m) = &patch.custom_metadata {
                    rec.custom_metadata = Value::Object(m.clone()).to_string();
                }
                if let Some(r) = patch.revoked {
                    rec.revoked = r;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Deletes a named token: it stops verifying (`tokenInvalid`).
    pub async fn delete_named_token(&self, caller: &Caller, id: &Id) -> Result<()> {
        self.managed(caller, id).await?;
        self.store.delete_named_token(id).await?;
        Ok(())
    }

    /// Deletes every named token of a subject.
    pub async fn delete_all_named_tokens(&self, caller: &Caller, subject: Subject) -> Result<()> {
        self.require_subject(caller, &subject).await?;
        self.store.delete_named_tokens_of(&subject).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_onezone_rules() {
        for ok in [
            "ab",
            "my token",
            "a.b-c_d",
            "(x)",
            "Żółw 1",
            &"n".repeat(128),
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            " ab",
            "ab ",
            "-ab",
            "ab.",
            "a/b",
            "a\nb",
            &"n".repeat(129),
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
