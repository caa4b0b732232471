//! The token identifier (the macaroon's `identifier` packet), which carries
//! everything about a 20.02+ token but its caveats:
//!
//! `2/<persistence>/<subject>/<type>/<tokenId>`
//!
//! - persistence: `nmd` (named) or `tmp-<generation>` (temporary);
//! - subject: `usr-<userId>` or `prv-<providerId>`;
//! - type: `act`, `act:<sessionId>`, `idn`, or `<code>:<targetId>:<params>`
//!   for invites (see [`InviteType`]; params are `ge` for `ssp`, else empty);
//! - token id.
//!
//! An identifier without `/`, or whose first `/`-separated part is not an
//! integer, is a legacy (version 1) one: the whole identifier is the token
//! id, and the token is a named access token whose subject only its record
//! knows. An integer first part other than `2`, or a version 2 layout with
//! another number of parts, is an error.
//!
//! Parsing is strict where Onedata's is lax, so that an identifier always
//! prints back to the same text: the version is exactly `2` (not `02` or
//! `+2`), the generation a plain decimal, ids non-empty; `1/<id>` (which
//! ctool would read as version 1 with id `<id>`) is refused; subjects other
//! than users and providers are refused (Onedata never mints them); and
//! invite parameters are empty except for `ssp`, whose 20.02-era values
//! (`[gn][eln]`, data write and metadata replication) are read and printed as
//! `ge`, as Onedata 21.02+ does (the token's own identifier bytes, which its
//! signature covers, are kept by [`super::Token`]).

use std::fmt;

use serde_json::{json, Map, Value};

/// Why an identifier, subject or type was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentifierError(String);

impl IdentifierError {
    pub(crate) fn new(why: impl Into<String>) -> IdentifierError {
        IdentifierError(why.into())
    }
}

impl fmt::Display for IdentifierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IdentifierError {}

/// Whether `s` may be an id inside an identifier: non-empty, no `/`, no
/// control character, and none of `extra`.
fn valid_part(s: &str, extra: &[char]) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| c == '/' || c.is_control() || extra.contains(&c))
}

/// What an invite target may not hold besides `/` and control characters:
/// `:` separates the parts of a token type.
const TARGET_EXCLUDES: &[char] = &[':'];

fn checked(s: &str, what: &str, extra: &[char]) -> Result<String, IdentifierError> {
    if valid_part(s, extra) {
        Ok(s.to_owned())
    } else {
        Err(IdentifierError::new(format!("bad {what} {s:?}")))
    }
}

/// How a token is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Persistence {
    /// Stored by the zone (secret, metadata), revocable one by one: `nmd`.
    Named,
    /// Not stored; signed with the subject's shared secret of this
    /// generation, revoked all together by a new generation: `tmp-<N>`.
    Temporary {
        /// The shared secret's generation.
        generation: u64,
    },
}

impl Persistence {
    /// Parses `nmd` or `tmp-<N>`.
    pub fn parse(s: &str) -> Result<Persistence, IdentifierError> {
        if s == "nmd" {
            return Ok(Persistence::Named);
        }
        let bad = || IdentifierError::new(format!("bad persistence {s:?}"));
        let n = s.strip_prefix("tmp-").ok_or_else(bad)?;
        let canonical = !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
            && (n == "0" || !n.starts_with('0'));
        if !canonical {
            return Err(bad());
        }
        let generation = n.parse().map_err(|_| bad())?;
        Ok(Persistence::Temporary { generation })
    }

    /// Its name in JSON (`"named"` or `"temporary"`, as `examine` shows it).
    pub fn json_name(self) -> &'static str {
        match self {
            Persistence::Named => "named",
            Persistence::Temporary { .. } => "temporary",
        }
    }
}

impl fmt::Display for Persistence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Persistence::Named => f.write_str("nmd"),
            Persistence::Temporary { generation } => write!(f, "tmp-{generation}"),
        }
    }
}

/// Whom a 20.02+ token is issued for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TokenSubject {
    /// A user: `usr-<id>`, JSON `{"type":"user","id":...}`.
    User(String),
    /// A Oneprovider: `prv-<id>`, JSON `{"type":"oneprovider","id":...}`.
    Provider(String),
}

impl TokenSubject {
    /// A user subject; `Err` if the id cannot stand in an identifier.
    pub fn user(id: &str) -> Result<TokenSubject, IdentifierError> {
        Ok(TokenSubject::User(checked(id, "user id", &[])?))
    }

    /// A provider subject; `Err` if the id cannot stand in an identifier.
    pub fn provider(id: &str) -> Result<TokenSubject, IdentifierError> {
        Ok(TokenSubject::Provider(checked(id, "provider id", &[])?))
    }

    /// Its id.
    pub fn id(&self) -> &str {
        match self {
            TokenSubject::User(id) | TokenSubject::Provider(id) => id,
        }
    }

    /// Parses `usr-<id>` or `prv-<id>`.
    pub fn parse(s: &str) -> Result<TokenSubject, IdentifierError> {
        if let Some(id) = s.strip_prefix("usr-") {
            return TokenSubject::user(id);
        }
        if let Some(id) = s.strip_prefix("prv-") {
            return TokenSubject::provider(id);
        }
        Err(IdentifierError::new(format!(
            "bad subject {s:?} (only users and providers hold tokens)"
        )))
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        match self {
            TokenSubject::User(id) => json!({"type": "user", "id": id}),
            TokenSubject::Provider(id) => json!({"type": "oneprovider", "id": id}),
        }
    }

    /// The JSON form of an optional subject: `None` (a legacy token, whose
    /// subject only its record knows) is `{"type":"nobody","id":null}`.
    pub fn json_of(subject: Option<&TokenSubject>) -> Value {
        subject.map_or_else(
            || json!({"type": "nobody", "id": null}),
            TokenSubject::to_json,
        )
    }

    /// Parses the JSON form of a user or provider subject.
    pub fn from_json(v: &Value) -> Result<TokenSubject, IdentifierError> {
        let bad = || IdentifierError::new(format!("bad subject {v}"));
        let id = v.get("id").and_then(Value::as_str).ok_or_else(bad)?;
        match v.get("type").and_then(Value::as_str) {
            Some("user") => TokenSubject::user(id),
            Some("oneprovider") => TokenSubject::provider(id),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for TokenSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSubject::User(id) => write!(f, "usr-{id}"),
            TokenSubject::Provider(id) => write!(f, "prv-{id}"),
        }
    }
}

/// The kinds of invite token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InviteType {
    /// A user joins a group (`ujg`, target `groupId`).
    UserJoinGroup,
    /// A group joins a group (`gjg`, target `groupId`).
    GroupJoinGroup,
    /// A user joins a space (`ujs`, target `spaceId`).
    UserJoinSpace,
    /// A group joins a space (`gjs`, target `spaceId`).
    GroupJoinSpace,
    /// A Oneprovider supports a space (`ssp`, target `spaceId`).
    SupportSpace,
    /// A harvester joins a space (`hjs`, target `spaceId`).
    HarvesterJoinSpace,
    /// A Oneprovider registers for an admin user (`rop`, target `adminUserId`).
    RegisterOneprovider,
    /// A user joins a cluster (`ujc`, target `clusterId`).
    UserJoinCluster,
    /// A group joins a cluster (`gjc`, target `clusterId`).
    GroupJoinCluster,
    /// A user joins a harvester (`ujh`, target `harvesterId`).
    UserJoinHarvester,
    /// A group joins a harvester (`gjh`, target `harvesterId`).
    GroupJoinHarvester,
    /// A space joins a harvester (`sjh`, target `harvesterId`).
    SpaceJoinHarvester,
    /// A user joins an automation inventory (`uji`, target `atmInventoryId`).
    UserJoinAtmInventory,
    /// A group joins an automation inventory (`gji`, target `atmInventoryId`).
    GroupJoinAtmInventory,
}

impl InviteType {
    /// Every invite type.
    pub const ALL: [InviteType; 14] = [
        InviteType::UserJoinGroup,
        InviteType::GroupJoinGroup,
        InviteType::UserJoinSpace,
        InviteType::GroupJoinSpace,
        InviteType::SupportSpace,
        InviteType::HarvesterJoinSpace,
        InviteType::RegisterOneprovider,
        InviteType::UserJoinCluster,
        InviteType::GroupJoinCluster,
        InviteType::UserJoinHarvester,
        InviteType::GroupJoinHarvester,
        InviteType::SpaceJoinHarvester,
        InviteType::UserJoinAtmInventory,
        InviteType::GroupJoinAtmInventory,
    ];

    /// Its code in identifiers, and its JSON name and target key.
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            InviteType::UserJoinGroup => ("ujg", "userJoinGroup", "groupId"),
            InviteType::GroupJoinGroup => ("gjg", "groupJoinGroup", "groupId"),
            InviteType::UserJoinSpace => ("ujs", "userJoinSpace", "spaceId"),
            InviteType::GroupJoinSpace => ("gjs", "groupJoinSpace", "spaceId"),
            InviteType::SupportSpace => ("ssp", "supportSpace", "spaceId"),
            InviteType::HarvesterJoinSpace => ("hjs", "harvesterJoinSpace", "spaceId"),
            InviteType::RegisterOneprovider => ("rop", "registerOneprovider", "adminUserId"),
            InviteType::UserJoinCluster => ("ujc", "userJoinCluster", "clusterId"),
            InviteType::GroupJoinCluster => ("gjc", "groupJoinCluster", "clusterId"),
            InviteType::UserJoinHarvester => ("ujh", "userJoinHarvester", "harvesterId"),
            InviteType::GroupJoinHarvester => ("gjh", "groupJoinHarvester", "harvesterId"),
            InviteType::SpaceJoinHarvester => ("sjh", "spaceJoinHarvester", "harvesterId"),
            InviteType::UserJoinAtmInventory => ("uji", "userJoinAtmInventory", "atmInventoryId"),
            InviteType::GroupJoinAtmInventory => ("gji", "groupJoinAtmInventory", "atmInventoryId"),
        }
    }

    /// Its three-letter code in identifiers (`ujs`, `ssp`, ...).
    pub fn code(self) -> &'static str {
        self.names().0
    }

    /// Its name in JSON (`userJoinSpace`, `supportSpace`, ...).
    pub fn json_name(self) -> &'static str {
        self.names().1
    }

    /// The JSON key of its target's id (`spaceId`, `groupId`, ...).
    pub fn target_key(self) -> &'static str {
        self.names().2
    }

    /// The invite type of a code.
    pub fn from_code(s: &str) -> Option<InviteType> {
        InviteType::ALL.into_iter().find(|t| t.code() == s)
    }

    /// The invite type of a JSON name.
    pub fn from_json_name(s: &str) -> Option<InviteType> {
        InviteType::ALL.into_iter().find(|t| t.json_name() == s)
    }

    /// Its parameters in identifiers: `ge` for `ssp` (20.02's default
    /// support parameters, data write global and metadata replication
    /// eager, which 21.02+ ignores), else empty.
    pub fn params(self) -> &'static str {
        match self {
            InviteType::SupportSpace => "ge",
            _ => "",
        }
    }

    /// Whether `params` are parameters a token of this type may carry.
    fn accepts_params(self, params: &str) -> bool {
        match self {
            InviteType::SupportSpace => {
                let b = params.as_bytes();
                b.len() == 2 && b"gn".contains(&b[0]) && b"eln".contains(&b[1])
            }
            _ => params.is_empty(),
        }
    }
}

/// The type of a token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TokenType {
    /// An access token (`act`), possibly bound to a session (`act:<id>`).
    Access {
        /// The session it is bound to.
        session: Option<String>,
    },
    /// An identity token (`idn`): proves its subject's identity only.
    Identity,
    /// An invite token.
    Invite {
        /// What it invites to.
        invite_type: InviteType,
        /// The id of the entity it invites to.
        target: String,
    },
}

impl TokenType {
    /// An access token not bound to a session.
    pub const ACCESS: TokenType = TokenType::Access { session: None };

    /// An access token bound to a session.
    pub fn access_for_session(session: &str) -> Result<TokenType, IdentifierError> {
        Ok(TokenType::Access {
            session: Some(checked(session, "session id", &[])?),
        })
    }

    /// An invite token.
    pub fn invite(invite_type: InviteType, target: &str) -> Result<TokenType, IdentifierError> {
        Ok(TokenType::Invite {
            invite_type,
            target: checked(target, "invite target", TARGET_EXCLUDES)?,
        })
    }

    /// Parses the identifier form.
    pub fn parse(s: &str) -> Result<TokenType, IdentifierError> {
        match s {
            "act" => return Ok(TokenType::ACCESS),
            "idn" => return Ok(TokenType::Identity),
            _ => {}
        }
        if let Some(session) = s.strip_prefix("act:").filter(|s| !s.is_empty()) {
            return TokenType::access_for_session(session);
        }
        let bad = || IdentifierError::new(format!("bad token type {s:?}"));
        let parts: Vec<&str> = s.split(':').collect();
        let [code, target, params] = parts.as_slice() else {
            return Err(bad());
        };
        let invite_type = InviteType::from_code(code).ok_or_else(bad)?;
        if !invite_type.accepts_params(params) {
            return Err(bad());
        }
        TokenType::invite(invite_type, target)
    }

    /// The key of its JSON form: `accessToken`, `identityToken` or
    /// `inviteToken`.
    pub fn json_key(&self) -> &'static str {
        match self {
            TokenType::Access { .. } => "accessToken",
            TokenType::Identity => "identityToken",
            TokenType::Invite { .. } => "inviteToken",
        }
    }

    /// The JSON form (`{"accessToken":{}}`, `{"identityToken":{}}`,
    /// `{"inviteToken":{"inviteType":...,"<targetKey>":...,"parameters":{}}}`).
    pub fn to_json(&self) -> Value {
        match self {
            TokenType::Access { session: None } => json!({"accessToken": {}}),
            TokenType::Access {
                session: Some(session),
            } => json!({"accessToken": {"sessionId": session}}),
            TokenType::Identity => json!({"identityToken": {}}),
            TokenType::Invite {
                invite_type,
                target,
            } => {
                let mut inner = Map::new();
                inner.insert("inviteType".into(), invite_type.json_name().into());
                inner.insert(invite_type.target_key().into(), target.clone().into());
                inner.insert("parameters".into(), json!({}));
                json!({"inviteToken": inner})
            }
        }
    }

    /// Parses the JSON form, as Onezone reads it: other members are ignored,
    /// an invite's `parameters` are optional (and ignored).
    pub fn from_json(v: &Value) -> Result<TokenType, IdentifierError> {
        let bad = || IdentifierError::new(format!("bad token type {v}"));
        let obj = v.as_object().ok_or_else(bad)?;
        if let Some(access) = obj.get("accessToken") {
            match access.get("sessionId") {
                Some(Value::String(session)) => return TokenType::access_for_session(session),
                None if access.as_object().is_some_and(Map::is_empty) => {
                    return Ok(TokenType::ACCESS)
                }
                _ => {}
            }
        }
        if obj.contains_key("identityToken") {
            return Ok(TokenType::Identity);
        }
        let invite = obj.get("inviteToken").ok_or_else(bad)?;
        let invite_type = invite
            .get("inviteType")
            .and_then(Value::as_str)
            .and_then(InviteType::from_json_name)
            .ok_or_else(bad)?;
        let target = invite
            .get(invite_type.target_key())
            .and_then(Value::as_str)
            .ok_or_else(bad)?;
        TokenType::invite(invite_type, target)
    }

    /// Whether this is an invite token (of `expected`, if given).
    pub fn is_invite(&self, expected: Option<InviteType>) -> bool {
        match self {
            TokenType::Invite { invite_type, .. } => expected.is_none_or(|e| e == *invite_type),
            _ => false,
        }
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenType::Access { session: None } => f.write_str("act"),
            TokenType::Access {
                session: Some(session),
            } => write!(f, "act:{session}"),
            TokenType::Identity => f.write_str("idn"),
            TokenType::Invite {
                invite_type,
                target,
            } => write!(
                f,
                "{}:{target}:{}",
                invite_type.code(),
                invite_type.params()
            ),
        }
    }
}

/// The parts of a version 2 identifier. Every value reads back as itself
/// from its text form: [`V2Identifier::new`] checks that, and
/// [`Identifier::parse`] builds only what it validated.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct V2Identifier {
    persistence: Persistence,
    subject: TokenSubject,
    token_type: TokenType,
    id: String,
}

impl V2Identifier {
    /// An identifier; `Err` if an id cannot stand in one (empty, or with `/`
    /// or a control character in it; `:` in an invite target).
    pub fn new(
        persistence: Persistence,
        subject: TokenSubject,
        token_type: TokenType,
        id: &str,
    ) -> Result<V2Identifier, IdentifierError> {
        // The parts may have been built by hand: each must be what `parse`
        // accepts in its place, so that the identifier reads back as itself
        // (a property test holds the two to each other).
        let type_ok = match &token_type {
            TokenType::Access { session } => session.as_deref().is_none_or(|s| valid_part(s, &[])),
            TokenType::Identity => true,
            TokenType::Invite { target, .. } => valid_part(target, TARGET_EXCLUDES),
        };
        if !valid_part(subject.id(), &[]) || !type_ok {
            return Err(IdentifierError::new(format!(
                "identifier does not read back: {:?}",
                format!("{subject}/{token_type}")
            )));
        }
        Ok(V2Identifier {
            persistence,
            subject,
            token_type,
            id: checked(id, "token id", &[])?,
        })
    }

    /// Persistence.
    pub fn persistence(&self) -> Persistence {
        self.persistence
    }

    /// Subject.
    pub fn subject(&self) -> &TokenSubject {
        &self.subject
    }

    /// Type.
    pub fn token_type(&self) -> &TokenType {
        &self.token_type
    }

    /// Token id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for V2Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "2/{}/{}/{}/{}",
            self.persistence, self.subject, self.token_type, self.id
        )
    }
}

/// A token identifier of either version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identifier {
    /// Version 1 (legacy): the identifier is the token id; a named access
    /// token whose subject only its record knows.
    V1(String),
    /// Version 2 (Onedata 20.02+).
    V2(V2Identifier),
}

/// The access type every legacy token has.
const LEGACY_TYPE: TokenType = TokenType::ACCESS;

impl Identifier {
    /// Parses an identifier (see the module docs).
    pub fn parse(s: &str) -> Result<Identifier, IdentifierError> {
        let mut parts = s.split('/');
        let first = parts.next().unwrap_or_default();
        let integer = {
            let digits = first.strip_prefix(['+', '-']).unwrap_or(first);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        };
        if !s.contains('/') || !integer {
            if s.is_empty() || s.chars().any(char::is_control) {
                return Err(IdentifierError::new("bad legacy identifier"));
            }
            return Ok(Identifier::V1(s.to_owned()));
        }
        if first != "2" {
            return Err(IdentifierError::new(format!(
                "unsupported token version {first:?}"
            )));
        }
        let rest: Vec<&str> = parts.collect();
        let [persistence, subject, token_type, id] = rest.as_slice() else {
            return Err(IdentifierError::new(
                "a version 2 identifier has 5 parts separated by /",
            ));
        };
        Ok(Identifier::V2(V2Identifier {
            persistence: Persistence::parse(persistence)?,
            subject: TokenSubject::parse(subject)?,
            token_type: TokenType::parse(token_type)?,
            id: checked(id, "token id", &[])?,
        }))
    }

    /// The version: 1 or 2.
    pub fn version(&self) -> u32 {
        match self {
            Identifier::V1(_) => 1,
            Identifier::V2(_) => 2,
        }
    }

    /// The token id.
    pub fn id(&self) -> &str {
        match self {
            Identifier::V1(id) => id,
            Identifier::V2(v) => &v.id,
        }
    }

    /// Persistence (named for legacy tokens).
    pub fn persistence(&self) -> Persistence {
        match self {
            Identifier::V1(_) => Persistence::Named,
            Identifier::V2(v) => v.persistence,
        }
    }

    /// The subject; `None` for legacy tokens.
    pub fn subject(&self) -> Option<&TokenSubject> {
        match self {
            Identifier::V1(_) => None,
            Identifier::V2(v) => Some(&v.subject),
        }
    }

    /// The type (an access token for legacy tokens).
    pub fn token_type(&self) -> &TokenType {
        match self {
            Identifier::V1(_) => &LEGACY_TYPE,
            Identifier::V2(v) => &v.token_type,
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identifier::V1(id) => f.write_str(id),
            Identifier::V2(v) => v.fmt(f),
        }
    }
}

macro_rules! json_serde {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.to_json().serialize(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                let v = Value::deserialize(d)?;
                <$t>::from_json(&v).map_err(serde::de::Error::custom)
            }
        }
    };
}

json_serde!(TokenSubject);
json_serde!(TokenType);

#[cfg(test)]
pub(crate) mod tests;
