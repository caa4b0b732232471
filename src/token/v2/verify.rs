//! Caveat verification against the context of a request, as Onezone does it.
//!
//! Caveats are checked in order; the first that fails decides the error.
//! A caveat that does not parse is unknown (`tokenCaveatUnknown`, carrying
//! its text). A caveat of a kind the token's type does not support (see
//! [`supported_caveats`]) fails, and so does one the context does not
//! satisfy (`tokenCaveatUnverified`, carrying its JSON form); kinds the
//! context ignores pass. `api` caveats are lazy: they pass here and are
//! checked per operation ([`Verified::check_operation`]), together with the
//! limits that `service` and data-access caveats put on the API.

use std::fmt;
use std::net::Ipv4Addr;

use super::identifier::{Identifier, TokenSubject, TokenType};
use crate::token::caveat::api::{self, Gri, Operation};
use crate::token::caveat::{
    Caveat, CaveatKind, ConsumerKind, Interface, ListFilter, Region, Service, ServiceSpec, WILDCARD,
};

/// Where an IPv4 address is, as far as a GeoIP database knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    /// ISO 3166 country code (`PL`).
    pub country: Option<String>,
    /// Continent code (`EU`, `AS`, ...).
    pub continent: Option<String>,
    /// Whether the country is in the European Union.
    pub in_european_union: bool,
}

/// Why a GeoIP lookup has no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GeoError {
    /// No database of that kind is configured.
    NoDatabase,
    /// The database has no record for the address.
    NotFound,
    /// The database could not be read.
    Failed(String),
}

impl fmt::Display for GeoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GeoError::NoDatabase => f.write_str("no GeoIP database is configured"),
            GeoError::NotFound => f.write_str("the GeoIP database does not know the address"),
            GeoError::Failed(why) => write!(f, "the GeoIP lookup failed: {why}"),
        }
    }
}

/// GeoIP lookups for `asn`, `geo.country` and `geo.region` caveats
/// (`crate::geo` reads MaxMind databases).
pub trait GeoLookup: Send + Sync {
    /// The autonomous system number of an address.
    fn asn(&self, ip: Ipv4Addr) -> Result<u32, GeoError>;
    /// The country and continent of an address.
    fn location(&self, ip: Ipv4Addr) -> Result<Location, GeoError>;
}

/// The consumer of a token: who uses it (the bearer that presented it, or
/// who their consumer token names).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Consumer {
    /// A user.
    User(String),
    /// A Oneprovider.
    Provider(String),
}

/// Which session an access token may be bound to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SessionPolicy {
    /// Any session, or none (token verification endpoints).
    Any,
    /// The token must not be bound to a session (the default).
    #[default]
    None,
    /// The token must be bound to exactly this session.
    Exactly(String),
}

/// What the context asks of a token: everything, or only a proof of
/// identity (the deprecated scope under which access tokens carrying
/// `authorization = none` are accepted as identity proofs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Full authorization (the default).
    #[default]
    Unlimited,
    /// Identity only.
    IdentityOnly,
}

/// The context of a request, against which caveats are checked.
#[derive(Clone)]
pub struct Context<'a> {
    /// Unix time.
    pub now: u64,
    /// The peer's IPv4 address; `ip`, `asn` and `geo.*` caveats fail without one.
    pub peer_ip: Option<Ipv4Addr>,
    /// The interface the request came through; `interface` caveats fail without one.
    pub interface: Option<Interface>,
    /// The service the token is used in (default `ozw-onezone`); `service`
    /// caveats fail without one.
    pub service: Option<ServiceSpec>,
    /// The consumer, if known; `consumer` caveats fail without one.
    pub consumer: Option<Consumer>,
    /// The groups the consumer (a user) is an effective member of, for
    /// `grp-` entries of `consumer` caveats (the caller computes them).
    pub consumer_groups: &'a [String],
    /// Whether data-access caveats (`data.*`) are allowed.
    pub allow_data_access: bool,
    /// Kinds of caveat that pass unchecked (e.g. `service`, `interface` and
    /// `api` for `infer_access_token_scope`). Never for authorizing operations.
    pub ignored: &'a [CaveatKind],
    /// GeoIP lookups; `asn` and `geo.*` caveats fail without them.
    pub geo: Option<&'a dyn GeoLookup>,
    /// Which session an access token may be bound to.
    pub session: SessionPolicy,
    /// The scope asked for.
    pub scope: Scope,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("now", &self.now)
            .field("peer_ip", &self.peer_ip)
            .field("interface", &self.interface)
            .field("service", &self.service)
            .field("consumer", &self.consumer)
            .field("consumer_groups", &self.consumer_groups)
            .field("allow_data_access", &self.allow_data_access)
            .field("ignored", &self.ignored)
            .field("geo", &self.geo.map(|_| "<lookup>"))
            .field("session", &self.session)
            .field("scope", &self.scope)
            .finish()
    }
}

impl<'a> Context<'a> {
    /// The context of a request at `now` from Onezone's REST API defaults:
    /// no peer address, interface or consumer known, service `ozw-onezone`,
    /// data-access caveats disallowed, nothing ignored, no GeoIP, no
    /// session, unlimited scope.
    pub fn new(now: u64) -> Context<'a> {
        Context {
            now,
            peer_ip: None,
            interface: None,
            service: Some(ServiceSpec::onezone()),
            consumer: None,
            consumer_groups: &[],
            allow_data_access: false,
            ignored: &[],
            geo: None,
            session: SessionPolicy::None,
            scope: Scope::Unlimited,
        }
    }

    /// With a peer address.
    pub fn peer_ip(mut self, ip: Ipv4Addr) -> Self {
        self.peer_ip = Some(ip);
        self
    }

    /// With an interface.
    pub fn interface(mut self, interface: Interface) -> Self {
        self.interface = Some(interface);
        self
    }

    /// With a service (`None`: the service is not known).
    pub fn service(mut self, service: Option<ServiceSpec>) -> Self {
        self.service = service;
        self
    }

    /// With a consumer and the groups it is in.
    pub fn consumer(mut self, consumer: Consumer, groups: &'a [String]) -> Self {
        self.consumer = Some(consumer);
        self.consumer_groups = groups;
        self
    }

    /// With data-access caveats allowed or not.
    pub fn allow_data_access(mut self, allow: bool) -> Self {
        self.allow_data_access = allow;
        self
    }

    /// Ignoring these kinds of caveat.
    pub fn ignoring(mut self, kinds: &'a [CaveatKind]) -> Self {
        self.ignored = kinds;
        self
    }

    /// With GeoIP lookups.
    pub fn geo(mut self, geo: &'a dyn GeoLookup) -> Self {
        self.geo = Some(geo);
        self
    }

    /// With a session policy.
    pub fn session(mut self, session: SessionPolicy) -> Self {
        self.session = session;
        self
    }

    /// With a scope.
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }
}

/// The kinds `infer_access_token_scope` ignores: `service`, `interface`, `api`.
pub const INFER_SCOPE_IGNORED: &[CaveatKind] =
    &[CaveatKind::Service, CaveatKind::Interface, CaveatKind::Api];

const ACCESS: &[CaveatKind] = &[
    CaveatKind::Time,
    CaveatKind::Ip,
    CaveatKind::Asn,
    CaveatKind::Country,
    CaveatKind::Region,
    CaveatKind::Service,
    CaveatKind::Consumer,
    CaveatKind::Interface,
    CaveatKind::Api,
    CaveatKind::DataReadonly,
    CaveatKind::DataPath,
    CaveatKind::DataObjectId,
];
const ACCESS_AS_IDENTITY: &[CaveatKind] = &[
    CaveatKind::IdentityScope,
    CaveatKind::Time,
    CaveatKind::Ip,
    CaveatKind::Asn,
    CaveatKind::Country,
    CaveatKind::Region,
    CaveatKind::Consumer,
    CaveatKind::Interface,
];
const IDENTITY: &[CaveatKind] = &[
    CaveatKind::Time,
    CaveatKind::Ip,
    CaveatKind::Asn,
    CaveatKind::Country,
    CaveatKind::Region,
    CaveatKind::Consumer,
    CaveatKind::Interface,
];
const INVITE: &[CaveatKind] = &[
    CaveatKind::Time,
    CaveatKind::Ip,
    CaveatKind::Asn,
    CaveatKind::Country,
    CaveatKind::Region,
    CaveatKind::Consumer,
];

/// The kinds of caveat a token of this type may carry: access tokens all
/// but `authorization = none`, or, in the identity-only scope, that one and
/// those of identity tokens; identity tokens `time`, `ip`, `asn`,
/// `geo.country`, `geo.region`, `consumer`, `interface`; invite tokens the
/// same but `interface`. `tokenType` (legacy) is in none.
pub fn supported_caveats(token_type: &TokenType, scope: Scope) -> &'static [CaveatKind] {
    match (token_type, scope) {
        (TokenType::Access { .. }, Scope::Unlimited) => ACCESS,
        (TokenType::Access { .. }, Scope::IdentityOnly) => ACCESS_AS_IDENTITY,
        (TokenType::Identity, _) => IDENTITY,
        (TokenType::Invite { .. }, _) => INVITE,
    }
}

/// Why a caveat was not satisfied.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsatisfied {
    /// Tokens of this type may not carry caveats of this kind.
    NotSupported,
    /// The time is at or past the caveat's.
    Expired {
        /// The time of the check.
        now: u64,
    },
    /// The peer's address is not known.
    NoPeerIp,
    /// The peer's address is in none of the networks.
    IpNotAllowed(Ipv4Addr),
    /// The GeoIP lookup has no answer.
    Geo(GeoError),
    /// The peer's autonomous system is not listed.
    AsnNotAllowed(u32),
    /// The peer's country (`None`: unknown) is not allowed.
    CountryNotAllowed(Option<String>),
    /// The peer's regions are not allowed.
    RegionNotAllowed(Vec<Region>),
    /// The service is not known.
    NoService,
    /// The service is not listed.
    ServiceNotAllowed(ServiceSpec),
    /// No consumer is known.
    NoConsumer,
    /// The consumer is not listed.
    ConsumerNotAllowed(Consumer),
    /// The interface is not known.
    NoInterface,
    /// The request came through another interface.
    InterfaceNotAllowed(Interface),
    /// Data-access caveats are not allowed here.
    DataAccessNotAllowed,
    /// The token only proves identity, and more is asked.
    IdentityOnly,
    /// The operation is not allowed (see [`Verified::check_operation`]).
    OperationNotAllowed,
}

impl fmt::Display for Unsatisfied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsatisfied::NotSupported => f.write_str("tokens of this type may not carry it"),
            Unsatisfied::Expired { now } => write!(f, "the token has expired (now {now})"),
            Unsatisfied::NoPeerIp => f.write_str("the client's IP address is not known"),
            Unsatisfied::IpNotAllowed(ip) => write!(f, "{ip} is not allowed"),
            Unsatisfied::Geo(e) => write!(f, "{e}"),
            Unsatisfied::AsnNotAllowed(asn) => {
                write!(f, "the client's autonomous system {asn} is not allowed")
            }
            Unsatisfied::CountryNotAllowed(Some(c)) => {
                write!(f, "the client's country {c} is not allowed")
            }
            Unsatisfied::CountryNotAllowed(None) => {
                f.write_str("the client's country is not known")
            }
            Unsatisfied::RegionNotAllowed(r) => {
                let names: Vec<&str> = r.iter().map(|r| r.name()).collect();
                write!(
                    f,
                    "the client's regions ({}) are not allowed",
                    names.join(", ")
                )
            }
            Unsatisfied::NoService => f.write_str("the service using the token is not known"),
            Unsatisfied::ServiceNotAllowed(s) => write!(f, "service {s} is not allowed"),
            Unsatisfied::NoConsumer => {
                f.write_str("the consumer is not known (authenticate with a consumer token)")
            }
            Unsatisfied::ConsumerNotAllowed(Consumer::User(id)) => {
                write!(f, "user {id} may not consume this token")
            }
            Unsatisfied::ConsumerNotAllowed(Consumer::Provider(id)) => {
                write!(f, "provider {id} may not consume this token")
            }
            Unsatisfied::NoInterface => f.write_str("the interface is not known"),
            Unsatisfied::InterfaceNotAllowed(i) => {
                write!(f, "the {} interface is not allowed", i.name())
            }
            Unsatisfied::DataAccessNotAllowed => {
                f.write_str("data-access caveats are not allowed here")
            }
            Unsatisfied::IdentityOnly => {
                f.write_str("the token carries no authorization, only a proof of identity")
            }
            Unsatisfied::OperationNotAllowed => f.write_str("the operation is not allowed"),
        }
    }
}

/// A caveat that was not satisfied, and why (Onezone's `tokenCaveatUnverified`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaveatFailure {
    /// The caveat.
    pub caveat: Caveat,
    /// Why.
    pub reason: Unsatisfied,
}

impl CaveatFailure {
    /// The caveat's JSON form (the error's `details.caveat`).
    pub fn caveat_json(&self) -> serde_json::Value {
        self.caveat.to_json()
    }
}

impl fmt::Display for CaveatFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "caveat '{}' is not satisfied: {}",
            self.caveat, self.reason
        )
    }
}

/// What a verified token grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The subject; `None` for legacy tokens (their record knows it).
    pub subject: Option<TokenSubject>,
    /// The token's type.
    pub token_type: TokenType,
    /// The session an access token is bound to.
    pub session: Option<String>,
    /// Every caveat, in order.
    pub caveats: Vec<Caveat>,
    /// The caveats that limit each operation (`api`, `service` and
    /// data-access caveats; see [`Verified::check_operation`]).
    pub deferred: Vec<Caveat>,
    /// Seconds until the earliest `time` caveat (negative if it has passed,
    /// which only an ignored `time` allows); `None` without one.
    pub ttl: Option<i64>,
}

impl Verified {
    /// Whether the token allows an operation in a service (see
    /// [`api::check_operation`]).
    pub fn check_operation(
        &self,
        service: Service,
        operation: Operation,
        gri: &Gri,
    ) -> Result<(), CaveatFailure> {
        api::check_operation(&self.deferred, service, operation, gri).map_err(|caveat| {
            CaveatFailure {
                caveat,
                reason: Unsatisfied::OperationNotAllowed,
            }
        })
    }
}

/// Why caveat verification failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaveatsError {
    /// A caveat is not understood (its text).
    Unknown(String),
    /// A caveat is not satisfied.
    Unverified(Box<CaveatFailure>),
    /// The access token is bound to another session than the context allows.
    SessionInvalid,
}

/// `ttl` of a set of caveats at `now`.
pub fn ttl(caveats: &[Caveat], now: u64) -> Option<i64> {
    Caveat::expiration(caveats).map(|t| {
        let diff = i128::from(t) - i128::from(now);
        i64::try_from(diff).unwrap_or(if diff < 0 { i64::MIN } else { i64::MAX })
    })
}

/// Checks caveat texts (in order) of a token with this identifier against
/// a context, then its session binding (see the module docs).
pub fn verify_caveats<C: AsRef<[u8]>>(
    identifier: &Identifier,
    caveats: &[C],
    ctx: &Context<'_>,
) -> Result<Verified, CaveatsError> {
    let token_type = identifier.token_type();
    let supported = supported_caveats(token_type, ctx.scope);
    let mut parsed = Vec::with_capacity(caveats.len());
    for text in caveats {
        let text = text.as_ref();
        let caveat = match Caveat::parse(text) {
            Some(Caveat::TokenType(_)) | None => {
                return Err(CaveatsError::Unknown(
                    String::from_utf8_lossy(text).into_owned(),
                ))
            }
            Some(c) => c,
        };
        let verdict = if !supported.contains(&caveat.kind()) {
            Err(Unsatisfied::NotSupported)
        } else if ctx.ignored.contains(&caveat.kind()) {
            Ok(())
        } else {
            check(&caveat, ctx)
        };
        if let Err(reason) = verdict {
            return Err(CaveatsError::Unverified(Box::new(CaveatFailure {
                caveat,
                reason,
            })));
        }
        parsed.push(caveat);
    }
    let session = match token_type {
        TokenType::Access { session } => match &ctx.session {
            SessionPolicy::Any => session.clone(),
            SessionPolicy::None if session.is_none() => None,
            SessionPolicy::Exactly(s) if session.as_ref() == Some(s) => session.clone(),
            _ => return Err(CaveatsError::SessionInvalid),
        },
        _ => None,
    };
    let deferred = parsed
        .iter()
        .filter(|c| matches!(c, Caveat::Api(_) | Caveat::Service(_)) || c.is_data_access())
        .cloned()
        .collect();
    Ok(Verified {
        subject: identifier.subject().cloned(),
        token_type: token_type.clone(),
        session,
        ttl: ttl(&parsed, ctx.now),
        caveats: parsed,
        deferred,
    })
}

fn peer(ctx: &Context<'_>) -> Result<Ipv4Addr, Unsatisfied> {
    ctx.peer_ip.ok_or(Unsatisfied::NoPeerIp)
}

fn geo<'a>(ctx: &Context<'a>) -> Result<&'a dyn GeoLookup, Unsatisfied> {
    ctx.geo.ok_or(Unsatisfied::Geo(GeoError::NoDatabase))
}

fn filtered(filter: ListFilter, any_listed: bool) -> bool {
    match filter {
        ListFilter::Whitelist => any_listed,
        ListFilter::Blacklist => !any_listed,
    }
}

/// Checks one supported, not ignored caveat.
fn check(caveat: &Caveat, ctx: &Context<'_>) -> Result<(), Unsatisfied> {
    let ok = |cond: bool, why: Unsatisfied| if cond { Ok(()) } else { Err(why) };
    match caveat {
        Caveat::TimeBefore(t) => ok(ctx.now < *t, Unsatisfied::Expired { now: ctx.now }),
        Caveat::Ip(masks) => {
            let ip = peer(ctx)?;
            ok(
                masks.iter().any(|m| m.matches(ip)),
                Unsatisfied::IpNotAllowed(ip),
            )
        }
        Caveat::Asn(list) => {
            let ip = peer(ctx)?;
            let asn = geo(ctx)?.asn(ip).map_err(Unsatisfied::Geo)?;
            ok(list.contains(&asn), Unsatisfied::AsnNotAllowed(asn))
        }
        Caveat::Country { filter, list } => {
            let ip = peer(ctx)?;
            let location = geo(ctx)?.location(ip).map_err(Unsatisfied::Geo)?;
            let Some(country) = location.country else {
                return Err(Unsatisfied::CountryNotAllowed(None));
            };
            let listed = list.contains(&country);
            ok(
                filtered(*filter, listed),
                Unsatisfied::CountryNotAllowed(Some(country)),
            )
        }
        Caveat::Region { filter, list } => {
            let ip = peer(ctx)?;
            let location = geo(ctx)?.location(ip).map_err(Unsatisfied::Geo)?;
            // As Onezone: the record must name a country and a known continent.
            let continent = location
                .continent
                .as_deref()
                .and_then(Region::from_continent_code)
                .filter(|_| location.country.is_some())
                .ok_or(Unsatisfied::Geo(GeoError::NotFound))?;
            let mut regions = vec![continent];
            if location.in_european_union {
                regions.push(Region::EuropeanUnion);
            }
            let listed = list.iter().any(|r| regions.contains(r));
            ok(
                filtered(*filter, listed),
                Unsatisfied::RegionNotAllowed(regions),
            )
        }
        Caveat::Service(list) => {
            let service = ctx.service.as_ref().ok_or(Unsatisfied::NoService)?;
            let allowed = list
                .iter()
                .any(|s| s.service == service.service && (s.id == WILDCARD || s.id == service.id));
            ok(allowed, Unsatisfied::ServiceNotAllowed(service.clone()))
        }
        Caveat::Consumer(list) => {
            let consumer = ctx.consumer.as_ref().ok_or(Unsatisfied::NoConsumer)?;
            let allowed = list.iter().any(|c| match (c.kind, consumer) {
                (ConsumerKind::Group, Consumer::User(_)) => ctx.consumer_groups.contains(&c.id),
                (ConsumerKind::User, Consumer::User(id))
                | (ConsumerKind::Provider, Consumer::Provider(id)) => {
                    c.id == WILDCARD || c.id == *id
                }
                _ => false,
            });
            ok(allowed, Unsatisfied::ConsumerNotAllowed(consumer.clone()))
        }
        Caveat::Interface(i) => {
            let actual = ctx.interface.ok_or(Unsatisfied::NoInterface)?;
            ok(actual == *i, Unsatisfied::InterfaceNotAllowed(actual))
        }
        Caveat::Api(_) => Ok(()),
        Caveat::IdentityScope => ok(ctx.scope == Scope::IdentityOnly, Unsatisfied::IdentityOnly),
        Caveat::DataReadonly | Caveat::DataPath(_) | Caveat::DataObjectId(_) => {
            ok(ctx.allow_data_access, Unsatisfied::DataAccessNotAllowed)
        }
        // Never supported, so never checked.
        Caveat::TokenType(_) => Err(Unsatisfied::NotSupported),
    }
}
