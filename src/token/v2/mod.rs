//! Onedata 20.02+ ("version 2") tokens, byte-compatible with Onedata's
//! ctool: minting, parsing, confinement, examination and verification, with
//! no storage inside (the caller supplies secrets and request context).
//!
//! A token is a libmacaroons V1 macaroon ([`crate::token::wire`]): location =
//! the Onezone domain, identifier = [`Identifier`] (version, persistence,
//! subject, type, id), first-party caveats in the [`Caveat`] language,
//! signed by the chain of HMACs from the token's secret. On the wire it may
//! carry a Oneprovider service prefix (`opw-` or `opp-`): which of a
//! provider's services presents it.
//!
//! Verification: parse (size-capped) -> the caller finds the secret (named:
//! from the token's record; temporary: the subject's shared secret of that
//! generation) -> signature chain (constant time) -> every caveat, in order,
//! against the [`Context`] -> session binding. What remains for the caller:
//! the record's state (revocation), the subject's existence, per-operation
//! checks ([`Verified::check_operation`]).

pub mod identifier;
pub mod verify;

use std::fmt;

use serde_json::{json, Value};

pub use identifier::{
    Identifier, IdentifierError, InviteType, Persistence, TokenSubject, TokenType, V2Identifier,
};
pub use verify::{
    supported_caveats, CaveatFailure, Consumer, Context, GeoError, GeoLookup, Location, Scope,
    SessionPolicy, Unsatisfied, Verified, INFER_SCOPE_IGNORED,
};

use super::caveat::{Caveat, CaveatError};
use super::wire::{self, RawToken};
use super::TokenError;

/// Why a token was refused or could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Longer than ozmint accepts (`tokenTooLarge`; see [`wire::MAX_TOKEN_LEN`]).
    TooLarge {
        /// The limit, in characters of the serialized token.
        limit: usize,
    },
    /// Not a token (`badToken`), with a reason for logs.
    BadToken(String),
    /// The signature does not match the secret (`tokenInvalid`).
    Invalid,
    /// A caveat is not understood (`tokenCaveatUnknown`, with its text).
    CaveatUnknown(String),
    /// A caveat is not satisfied (`tokenCaveatUnverified`, with its JSON form).
    CaveatUnverified(Box<CaveatFailure>),
    /// The access token is bound to another session (`tokenSessionInvalid`).
    SessionInvalid,
    /// A caveat given to mint or confine with is not valid.
    BadCaveat(CaveatError),
    /// An identifier given to mint with is not valid.
    BadIdentifier(IdentifierError),
}

impl Error {
    /// The Onezone error id.
    pub fn onezone_id(&self) -> &'static str {
        match self {
            Error::TooLarge { .. } => "tokenTooLarge",
            Error::BadToken(_) => "badToken",
            Error::Invalid => "tokenInvalid",
            Error::CaveatUnknown(_) => "tokenCaveatUnknown",
            Error::CaveatUnverified(_) => "tokenCaveatUnverified",
            Error::SessionInvalid => "tokenSessionInvalid",
            // Onezone validates REST input before it mints: its `badData`,
            // for the key the caller passed the value in.
            Error::BadCaveat(_) | Error::BadIdentifier(_) => "badData",
        }
    }

    /// The error as Onezone's REST API writes it (`{"id","description","details"?}`).
    pub fn to_onezone_json(&self) -> Value {
        let mut out = json!({"id": self.onezone_id(), "description": self.to_string()});
        let details = match self {
            Error::TooLarge { limit } => Some(json!({"limit": limit})),
            Error::CaveatUnknown(text) => Some(json!({"caveat": text})),
            Error::CaveatUnverified(f) => Some(json!({"caveat": f.caveat_json()})),
            Error::BadCaveat(e) => Some(json!({"key": "caveats", "hint": e.to_string()})),
            Error::BadIdentifier(e) => Some(json!({"key": "identifier", "hint": e.to_string()})),
            _ => None,
        };
        if let Some(d) = details {
            out["details"] = d;
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooLarge { limit } => {
                write!(f, "the token exceeds the allowed size ({limit} characters)")
            }
            Error::BadToken(why) => write!(f, "the token could not be understood: {why}"),
            Error::Invalid => f.write_str("the token is not valid"),
            Error::CaveatUnknown(text) => write!(f, "unknown caveat '{text}'"),
            Error::CaveatUnverified(failure) => write!(f, "the token is not valid: {failure}"),
            Error::SessionInvalid => f.write_str(
                "the token is bound to another session than the client's, or to none that exists",
            ),
            Error::BadCaveat(e) => write!(f, "invalid caveat: {e}"),
            Error::BadIdentifier(e) => write!(f, "invalid token identifier: {e}"),
        }
    }
}

impl std::error::Error for Error {}

fn from_wire(e: TokenError) -> Error {
    match e {
        // The escaped form may be up to twice the cap.
        TokenError::TooLong => Error::TooLarge {
            limit: 2 * wire::MAX_TOKEN_LEN,
        },
        TokenError::UnknownCaveat => Error::BadToken("it has a third-party caveat".into()),
        _ => Error::BadToken("not a macaroon in an accepted encoding".into()),
    }
}

impl From<verify::CaveatsError> for Error {
    fn from(e: verify::CaveatsError) -> Error {
        match e {
            verify::CaveatsError::Unknown(text) => Error::CaveatUnknown(text),
            verify::CaveatsError::Unverified(f) => Error::CaveatUnverified(f),
            verify::CaveatsError::SessionInvalid => Error::SessionInvalid,
        }
    }
}

/// Which of a Oneprovider's services presents a token (the wire prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OneproviderService {
    /// `opw-`: the Oneprovider worker.
    Worker,
    /// `opp-`: the Oneprovider panel.
    Panel,
}

impl OneproviderService {
    /// Its short name (`opw`, `opp`).
    pub fn shortname(self) -> &'static str {
        match self {
            OneproviderService::Worker => "opw",
            OneproviderService::Panel => "opp",
        }
    }
}

/// Prefixes a serialized token with a Oneprovider service indication.
pub fn add_service_indication(service: OneproviderService, serialized: &str) -> String {
    format!("{}-{serialized}", service.shortname())
}

/// A parsed, not yet verified token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    raw: RawToken,
    identifier: Identifier,
    service_indication: Option<OneproviderService>,
}

/// What is knowable about a token without its secret (`/tokens/examine`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Examination {
    /// The Onezone domain (the location).
    pub domain: Option<String>,
    /// The identifier: version, id, persistence, subject, type.
    pub identifier: Identifier,
    /// The caveats, in order.
    pub caveats: Vec<Caveat>,
}

impl Examination {
    /// The JSON Onezone's `/tokens/examine` answers: `onezoneDomain`, `id`,
    /// `persistence`, `subject`, `type`, `caveats`.
    pub fn to_json(&self) -> Value {
        json!({
            "onezoneDomain": self.domain,
            "id": self.identifier.id(),
            "persistence": self.identifier.persistence().json_name(),
            "subject": TokenSubject::json_of(self.identifier.subject()),
            "type": self.identifier.token_type().to_json(),
            "caveats": self.caveats.iter().map(Caveat::to_json).collect::<Vec<_>>(),
        })
    }
}

fn caveat_texts(caveats: &[Caveat]) -> Result<Vec<String>, Error> {
    caveats
        .iter()
        .map(|c| {
            c.validate().map_err(Error::BadCaveat)?;
            Ok(c.to_text())
        })
        .collect()
}

/// Mints a token: `domain` as location, `identifier`, `caveats` in order,
/// signed with `secret` (of any length). The escaped wire form, without
/// service indication.
pub fn mint(
    domain: &str,
    identifier: &Identifier,
    secret: &[u8],
    caveats: &[Caveat],
) -> Result<String, Error> {
    let text = identifier.to_string();
    // A version 2 identifier reads back by construction (`V2Identifier::new`
    // checks it, `Identifier::parse` validated it); a legacy one is a bare
    // string anyone can build, so it is read back here.
    if let Identifier::V1(_) = identifier {
        match Identifier::parse(&text) {
            Ok(back) if back == *identifier => {}
            Ok(_) => {
                return Err(Error::BadIdentifier(IdentifierError::new(format!(
                    "{text:?} does not read back as the same identifier"
                ))))
            }
            Err(e) => return Err(Error::BadIdentifier(e)),
        }
    }
    let texts = caveat_texts(caveats)?;
    wire::mint(domain, secret, text.as_bytes(), &texts).map_err(from_wire)
}

/// Appends caveats to a serialized token (Onezone's `/tokens/confine`): the
/// escaped wire form of the result, without service indication.
pub fn confine(serialized: &str, caveats: &[Caveat]) -> Result<String, Error> {
    Ok(Token::parse(serialized)?.confine(caveats)?.serialize())
}

impl Token {
    /// Parses a serialized token: an optional `opw-`/`opp-` prefix (any other
    /// `<3 chars>-` prefix is refused), then the wire form, then its
    /// identifier (a legacy or a version 2 one).
    pub fn parse(serialized: &str) -> Result<Token, Error> {
        let serialized = serialized.trim();
        let (service_indication, rest) = match serialized.as_bytes().get(3) {
            Some(b'-') => {
                let service = match &serialized[..3] {
                    "opw" => OneproviderService::Worker,
                    "opp" => OneproviderService::Panel,
                    other => {
                        return Err(Error::BadToken(format!(
                            "unknown service indication {other:?}"
                        )))
                    }
                };
                (Some(service), &serialized[4..])
            }
            _ => (None, serialized),
        };
        let raw = wire::parse(rest).map_err(from_wire)?;
        let text = std::str::from_utf8(&raw.identifier)
            .map_err(|_| Error::BadToken("the identifier is not UTF-8".into()))?;
        let identifier =
            Identifier::parse(text).map_err(|e| Error::BadToken(format!("identifier: {e}")))?;
        Ok(Token {
            raw,
            identifier,
            service_indication,
        })
    }

    /// The parsed identifier.
    pub fn identifier(&self) -> &Identifier {
        &self.identifier
    }

    /// The Onezone domain (the location packet).
    pub fn domain(&self) -> Option<&str> {
        self.raw.location.as_deref()
    }

    /// The service indication it was presented with.
    pub fn service_indication(&self) -> Option<OneproviderService> {
        self.service_indication
    }

    /// The macaroon's packets.
    pub fn raw(&self) -> &RawToken {
        &self.raw
    }

    /// Its caveats, in order; [`Error::CaveatUnknown`] for the first that
    /// does not parse.
    pub fn caveats(&self) -> Result<Vec<Caveat>, Error> {
        self.raw
            .caveats
            .iter()
            .map(|c| {
                Caveat::parse(c)
                    .ok_or_else(|| Error::CaveatUnknown(String::from_utf8_lossy(c).into_owned()))
            })
            .collect()
    }

    /// The escaped wire form (without service indication).
    pub fn serialize(&self) -> String {
        wire::encode(&self.raw)
    }

    /// The token with `caveats` appended, as any holder can make it.
    pub fn confine(&self, caveats: &[Caveat]) -> Result<Token, Error> {
        let texts = caveat_texts(caveats)?;
        let raw = wire::confine(&self.raw, &texts).map_err(from_wire)?;
        Ok(Token {
            raw,
            identifier: self.identifier.clone(),
            service_indication: self.service_indication,
        })
    }

    /// Everything knowable without the secret. Refused if a caveat is not
    /// understood.
    pub fn examine(&self) -> Result<Examination, Error> {
        Ok(Examination {
            domain: self.raw.location.clone(),
            identifier: self.identifier.clone(),
            caveats: self.caveats()?,
        })
    }

    /// Whether the signature is the one `secret` makes (constant time).
    pub fn signature_matches(&self, secret: &[u8]) -> bool {
        wire::signature_matches(&self.raw, secret)
    }

    /// Verifies the token with its secret: the signature chain (constant
    /// time), then every caveat against `ctx` for the token's type, then the
    /// session binding.
    pub fn verify(&self, secret: &[u8], ctx: &Context<'_>) -> Result<Verified, Error> {
        if !self.signature_matches(secret) {
            return Err(Error::Invalid);
        }
        self.verify_caveats(ctx)
    }

    /// The checks of [`Token::verify`] after the signature: every caveat
    /// against `ctx`, then the session binding. Only for a token whose
    /// signature was seen to match its secret (ozmint's cache of verified
    /// tokens, `ops::token_cache`).
    pub(crate) fn verify_caveats(&self, ctx: &Context<'_>) -> Result<Verified, Error> {
        Ok(verify::verify_caveats(
            &self.identifier,
            &self.raw.caveats,
            ctx,
        )?)
    }
}

#[cfg(test)]
mod tests;
