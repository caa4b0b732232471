//! Library errors. No HTTP here: the front end maps these to responses in one place.

use std::fmt;

use crate::codec::CodecError;
use crate::engine::EngineError;
use crate::token::caveat::ServiceSpec;
use crate::token::v2::{self, InviteType, TokenSubject, TokenType};
use crate::token::TokenError;
use serde_json::{json, Value};

/// What kind of thing was not found or conflicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Entity {
    /// A user.
    User,
    /// A group.
    Group,
    /// A space.
    Space,
    /// A provider.
    Provider,
    /// A membership or support relation.
    Relation,
    /// A token record.
    Token,
    /// A root key.
    RootKey,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Entity::User => "user",
            Entity::Group => "group",
            Entity::Space => "space",
            Entity::Provider => "provider",
            Entity::Relation => "relation",
            Entity::Token => "token",
            Entity::RootKey => "root key",
        })
    }
}

/// Every failure of the store and the minter.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The storage engine failed (I/O). Internal: never shown to clients in detail.
    Engine(EngineError),
    /// A stored value could not be decoded. Internal.
    Corrupt {
        /// The tree holding the value.
        tree: &'static str,
        /// What was wrong with it.
        error: CodecError,
    },
    /// The thing does not exist.
    NotFound(Entity),
    /// The thing exists already (a user name, a membership).
    AlreadyExists(Entity),
    /// Adding this child group would create a cycle in the group graph.
    Cycle,
    /// Input rejected before touching the store (empty name, bad size, ...).
    Invalid(String),
    /// A token could not be parsed, verified or used.
    Token(TokenError),
    /// The current root key cannot be retired (rotate first).
    CurrentKey,
    /// The caller may not do this; the text says why, for the caller.
    Forbidden(Forbidden),
    /// A transaction kept meeting concurrent changes and gave up; retry later.
    Contended,
    /// The change would leave the zone without an administrator (a user
    /// holding the zone privilege `set_privileges`).
    LastAdmin,
    /// An error of the Onedata 20.02+ API, with Onezone's id and details.
    Onezone(OzError),
}

impl From<OzError> for Error {
    fn from(e: OzError) -> Self {
        Error::Onezone(e)
    }
}

impl From<v2::Error> for Error {
    fn from(e: v2::Error) -> Self {
        Error::Onezone(OzError::Token(e))
    }
}

/// The errors of Onezone's 20.02+ token API that ozmint answers, each with
/// Onezone's id, description and details (`ctool/src/errors.erl`). No HTTP
/// status here: the front end's one error map decides it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OzError {
    /// From the token core: `badToken`, `tokenInvalid`, `tokenTooLarge`,
    /// `tokenCaveatUnknown`, `tokenCaveatUnverified`, `tokenSessionInvalid`,
    /// `badData` (a bad caveat or identifier).
    Token(v2::Error),
    /// `tokenRevoked`.
    Revoked,
    /// `tokenSubjectInvalid`: the subject does not exist or is not the record's.
    SubjectInvalid,
    /// `tokenTimeCaveatRequired`, with the largest ttl allowed.
    TimeCaveatRequired {
        /// Seconds.
        max_ttl: u64,
    },
    /// `tokenServiceForbidden`: the subject may not use tokens in that service.
    ServiceForbidden(ServiceSpec),
    /// `notAnAccessToken`, with the type received.
    NotAnAccessToken(TokenType),
    /// `notAnIdentityToken`, with the type received.
    NotAnIdentityToken(TokenType),
    /// `notAnInviteToken`, with the type expected (`None`: any) and received.
    NotAnInviteToken(Option<InviteType>, TokenType),
    /// `badValueToken`: the value of `key` is not a valid token.
    BadValueToken(&'static str, Box<OzError>),
    /// `badServiceToken`.
    BadServiceToken(Box<OzError>),
    /// `badConsumerToken`.
    BadConsumerToken(Box<OzError>),
    /// `badValueIdentifierOccupied`: e.g. a token name already taken.
    IdentifierOccupied(&'static str),
    /// `badValueName`: a name that breaks Onezone's naming rules.
    BadValueName(&'static str),
    /// `missingRequiredValue`.
    MissingRequiredValue(&'static str),
    /// `missingAtLeastOneValue`.
    MissingAtLeastOneValue(Vec<&'static str>),
    /// `badValueJSON`: the value of the key must be a JSON object.
    BadValueJson(&'static str),
    /// `badValueBoolean`.
    BadValueBoolean(&'static str),
    /// `badValueString`.
    BadValueString(&'static str),
    /// `badValueTextTooLarge`: longer than the limit (bytes or items).
    TooLarge(&'static str, usize),
    /// `badData`, with a hint.
    BadData(&'static str, String),
    /// `badValueIPv4Address`.
    BadValueIpv4(&'static str),
    /// `notSupported`: an invite type for entities ozmint does not have
    /// (harvesters, clusters, automation inventories).
    InviteTypeNotSupported(InviteType),
    /// `inviteTokenUsageLimitReached`.
    InviteUsageLimitReached,
    /// `inviteTokenSubjectNotAuthorized`: the inviter lacks (or lost) the
    /// privilege to issue the invitation.
    InviteSubjectNotAuthorized,
    /// `inviteTokenConsumerInvalid`: this kind of consumer cannot use this
    /// type of invite token (`None`: nobody).
    InviteConsumerInvalid(Option<TokenSubject>),
    /// `inviteTokenTargetIdInvalid`: the invite's target does not exist.
    InviteTargetIdInvalid(String),
    /// `relationAlreadyExists` (409): the consumer is already a member (or
    /// the space already supported by the provider).
    RelationAlreadyExists {
        /// `user`, `group`, `space`.
        child_type: &'static str,
        /// The member's id.
        child_id: String,
        /// `group`, `space`, `provider`.
        parent_type: &'static str,
        /// The container's id.
        parent_id: String,
    },
}

/// The description Onezone gives names it refuses.
pub const NAME_REQUIREMENTS: &str = "Name must be 2-128 characters long and composed only of UTF-8 letters, digits, brackets and underscores. Dashes, spaces and dots are allowed (but not at the beginning or the end).";

impl OzError {
    /// Onezone's error id.
    pub fn id(&self) -> &'static str {
        match self {
            OzError::Token(e) => e.onezone_id(),
            OzError::Revoked => "tokenRevoked",
            OzError::SubjectInvalid => "tokenSubjectInvalid",
            OzError::TimeCaveatRequired { .. } => "tokenTimeCaveatRequired",
            OzError::ServiceForbidden(_) => "tokenServiceForbidden",
            OzError::NotAnAccessToken(_) => "notAnAccessToken",
            OzError::NotAnIdentityToken(_) => "notAnIdentityToken",
            OzError::NotAnInviteToken(..) => "notAnInviteToken",
            OzError::BadValueToken(..) => "badValueToken",
            OzError::BadServiceToken(_) => "badServiceToken",
            OzError::BadConsumerToken(_) => "badConsumerToken",
            OzError::IdentifierOccupied(_) => "badValueIdentifierOccupied",
            OzError::BadValueName(_) => "badValueName",
            OzError::MissingRequiredValue(_) => "missingRequiredValue",
            OzError::MissingAtLeastOneValue(_) => "missingAtLeastOneValue",
            OzError::BadValueJson(_) => "badValueJSON",
            OzError::BadValueBoolean(_) => "badValueBoolean",
            OzError::BadValueString(_) => "badValueString",
            OzError::TooLarge(..) => "badValueTextTooLarge",
            OzError::BadData(..) => "badData",
            OzError::BadValueIpv4(_) => "badValueIPv4Address",
            OzError::InviteTypeNotSupported(_) => "notSupported",
            OzError::InviteUsageLimitReached => "inviteTokenUsageLimitReached",
            OzError::InviteSubjectNotAuthorized => "inviteTokenSubjectNotAuthorized",
            OzError::InviteConsumerInvalid(_) => "inviteTokenConsumerInvalid",
            OzError::InviteTargetIdInvalid(_) => "inviteTokenTargetIdInvalid",
            OzError::RelationAlreadyExists { .. } => "relationAlreadyExists",
        }
    }

    /// The error as Onezone writes it: `{"id","description","details"?}`.
    pub fn to_json(&self) -> Value {
        if let OzError::Token(e) = self {
            return e.to_onezone_json();
        }
        let details = match self {
            OzError::TimeCaveatRequired { max_ttl } => Some(json!({ "maxTtl": max_ttl })),
            OzError::ServiceForbidden(s) => Some(json!({ "service": s.to_string() })),
            OzError::NotAnAccessToken(t) | OzError::NotAnIdentityToken(t) => {
                Some(json!({ "received": t.to_json() }))
            }
            OzError::NotAnInviteToken(expected, t) => Some(json!({
                "expectedInviteType": expected.map_or("any", |e| e.json_name()),
                "received": t.to_json(),
            })),
            OzError::BadValueToken(key, e) => {
                Some(json!({ "key": key, "tokenError": e.to_json() }))
            }
            OzError::BadServiceToken(e) | OzError::BadConsumerToken(e) => {
                Some(json!({ "tokenError": e.to_json() }))
            }
            OzError::IdentifierOccupied(key)
            | OzError::BadValueName(key)
            | OzError::MissingRequiredValue(key)
            | OzError::BadValueJson(key)
            | OzError::BadValueBoolean(key)
            | OzError::BadValueString(key)
            | OzError::BadValueIpv4(key) => Some(json!({ "key": key })),
            OzError::MissingAtLeastOneValue(keys) => Some(json!({ "keys": keys })),
            OzError::TooLarge(key, limit) => Some(json!({ "key": key, "limit": limit })),
            OzError::BadData(key, hint) => Some(json!({ "key": key, "hint": hint })),
            OzError::InviteConsumerInvalid(c) => {
                Some(json!({ "consumer": TokenSubject::json_of(c.as_ref()) }))
            }
            OzError::InviteTargetIdInvalid(id) => Some(json!({ "id": id })),
            OzError::RelationAlreadyExists {
                child_type,
                child_id,
                parent_type,
                parent_id,
            } => Some(json!({
                "childType": child_type,
                "childId": child_id,
                "parentType": parent_type,
                "parentId": parent_id,
            })),
            _ => None,
        };
        let mut out = json!({ "id": self.id(), "description": self.to_string() });
        if let Some(d) = details {
            out["details"] = d;
        }
        out
    }
}

fn printable(t: &TokenType) -> &'static str {
    match t {
        TokenType::Access { .. } => "access token",
        TokenType::Identity => "identity token",
        TokenType::Invite { .. } => "invite token",
    }
}

impl fmt::Display for OzError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OzError::Token(e) => write!(f, "{e}"),
            OzError::Revoked => f.write_str("Provided token has been revoked."),
            OzError::SubjectInvalid => f.write_str(
                "The token subject is invalid (does not exist or is different than expected).",
            ),
            OzError::TimeCaveatRequired { max_ttl } => write!(
                f,
                "You must specify a time caveat with maximum TTL of {max_ttl} seconds."
            ),
            OzError::ServiceForbidden(s) => {
                write!(f, "The service {s} is forbidden for this subject.")
            }
            OzError::NotAnAccessToken(t) => write!(
                f,
                "Expected an access token, but received a(n) {}.",
                printable(t)
            ),
            OzError::NotAnIdentityToken(t) => write!(
                f,
                "Expected an identity token, but received a(n) {}.",
                printable(t)
            ),
            OzError::NotAnInviteToken(e, t) => write!(
                f,
                "Expected an invitation token of type '{}', but received a(n) {}.",
                e.map_or("any", |e| e.json_name()),
                printable(t)
            ),
            OzError::BadValueToken(key, _) => write!(
                f,
                "Bad value: provided \"{key}\" is not a valid token (see details)."
            ),
            OzError::BadServiceToken(_) => {
                f.write_str("Provided service token is not valid (see details).")
            }
            OzError::BadConsumerToken(_) => {
                f.write_str("Provided consumer token is not valid (see details).")
            }
            OzError::IdentifierOccupied(key) => write!(
                f,
                "Bad value: provided identifier (\"{key}\") is already occupied."
            ),
            OzError::BadValueName(key) => {
                write!(f, "Bad value provided for \"{key}\": {NAME_REQUIREMENTS}")
            }
            OzError::MissingRequiredValue(key) => write!(f, "Missing required value: {key}."),
            OzError::MissingAtLeastOneValue(keys) => write!(
                f,
                "Missing data, you must provide at least one of: {}.",
                keys.join(", ")
            ),
            OzError::BadValueJson(key) => {
                write!(f, "Bad value: provided \"{key}\" must be a valid JSON.")
            }
            OzError::BadValueBoolean(key) => {
                write!(f, "Bad value: provided \"{key}\" must be a boolean.")
            }
            OzError::BadValueString(key) => {
                write!(f, "Bad value: provided \"{key}\" must be a string.")
            }
            OzError::TooLarge(key, limit) => write!(
                f,
                "Bad value: provided \"{key}\" must not exceed {limit} (bytes, or entries of a list)."
            ),
            OzError::BadData(key, hint) => {
                write!(f, "Bad value: provided \"{key}\" could not be understood by the server: {hint}")
            }
            OzError::BadValueIpv4(key) => write!(
                f,
                "Bad value: provided \"{key}\" is not a valid IPv4 address."
            ),
            OzError::InviteTypeNotSupported(t) => write!(
                f,
                "This operation is not supported: ozmint has no {}, so it serves no '{}' invite tokens.",
                match t {
                    InviteType::HarvesterJoinSpace
                    | InviteType::UserJoinHarvester
                    | InviteType::GroupJoinHarvester
                    | InviteType::SpaceJoinHarvester => "harvesters",
                    InviteType::UserJoinCluster | InviteType::GroupJoinCluster => "clusters",
                    _ => "automation inventories",
                },
                t.json_name()
            ),
            OzError::InviteUsageLimitReached => {
                f.write_str("The usage limit of this invite token has been reached.")
            }
            OzError::InviteSubjectNotAuthorized => f.write_str(
                "The subject of this token is not (or no longer) authorized to issue such invitations.",
            ),
            OzError::InviteConsumerInvalid(c) => write!(
                f,
                "The consumer '{}' is invalid for this type of invite token.",
                match c {
                    None => "nobody".to_owned(),
                    Some(TokenSubject::User(id)) => format!("user:{id}"),
                    Some(TokenSubject::Provider(id)) => format!("provider:{id}"),
                }
            ),
            OzError::InviteTargetIdInvalid(id) => write!(
                f,
                "The target id '{id}' is invalid for this type of invite token."
            ),
            OzError::RelationAlreadyExists {
                child_type,
                child_id,
                parent_type,
                parent_id,
            } => write!(
                f,
                "Bad value: {child_type}:{child_id} {} {parent_type}:{parent_id}.",
                if *parent_type == "provider" {
                    "is already supported by"
                } else {
                    "is already a member of"
                }
            ),
        }
    }
}

/// Why a caller may not do something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Forbidden {
    /// The caller lacks a privilege.
    Privileges,
    /// Only users may do this.
    UsersOnly,
    /// Only providers may do this.
    ProvidersOnly,
    /// A token its holder attenuated cannot mint or list unrestricted credentials.
    Attenuated,
    /// The old password given is wrong.
    WrongPassword,
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Forbidden::Privileges => {
                "You are not authorized to perform this operation (insufficient privileges?)."
            }
            Forbidden::UsersOnly => "This operation is for users only.",
            Forbidden::ProvidersOnly => {
                "This operation is for providers only: authenticate with the provider's token."
            }
            Forbidden::Attenuated => {
                "An attenuated token cannot create or list access tokens; use a password or an unattenuated token."
            }
            Forbidden::WrongPassword => "The old password is wrong.",
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Engine(e) => write!(f, "{e}"),
            Error::Corrupt { tree, error } => write!(f, "corrupt record in {tree}: {error}"),
            Error::NotFound(e) => write!(f, "{e} not found"),
            Error::AlreadyExists(e) => write!(f, "{e} already exists"),
            Error::Cycle => write!(f, "the group relation would create a cycle"),
            Error::Invalid(why) => write!(f, "invalid input: {why}"),
            Error::Token(e) => write!(f, "{e}"),
            Error::CurrentKey => write!(f, "the current root key cannot be retired"),
            Error::Forbidden(why) => write!(f, "forbidden: {why}"),
            Error::Contended => write!(f, "the store is busy with concurrent changes; retry"),
            Error::LastAdmin => write!(
                f,
                "the zone would be left without an administrator (a user holding set_privileges)"
            ),
            Error::Onezone(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<EngineError> for Error {
    fn from(e: EngineError) -> Self {
        Error::Engine(e)
    }
}

impl From<TokenError> for Error {
    fn from(e: TokenError) -> Self {
        Error::Token(e)
    }
}

/// Result of library operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
