//! Library errors. No HTTP here: the front end maps these to responses in one place.

use std::fmt;

use crate::codec::CodecError;
use crate::engine::EngineError;
use crate::token::TokenError;

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
