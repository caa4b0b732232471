//! The caveat language: the first-party caveats tokens carry, in their text
//! form (the macaroon `cid`, exactly as Onedata's ctool writes it) and their
//! JSON form (as Onezone's REST API reads and writes them).
//!
//! | caveat | text | JSON |
//! |---|---|---|
//! | [`Caveat::TimeBefore`] | `time < 1571147494` | `{"type":"time","validUntil":1571147494}` |
//! | [`Caveat::Ip`] | `ip = 189.34.15.0/24\|167.73.12.17/32` | `{"type":"ip","whitelist":["189.34.15.0/24","167.73.12.17/32"]}` (input may omit `/32`) |
//! | [`Caveat::Asn`] | `asn = 631\|632` | `{"type":"asn","whitelist":[631,632]}` |
//! | [`Caveat::Country`] | `geo.country = PL\|FR`, `geo.country != PL` | `{"type":"geo.country","filter":"whitelist"\|"blacklist","list":["PL","FR"]}` |
//! | [`Caveat::Region`] | `geo.region = Asia\|EU`, `geo.region != EU` | `{"type":"geo.region","filter":...,"list":["Asia","EU"]}` |
//! | [`Caveat::Service`] | `service = ozw-onezone\|opw-*` | `{"type":"service","whitelist":["ozw-onezone","opw-*"]}` |
//! | [`Caveat::Consumer`] | `consumer = usr-u1\|grp-g1\|prv-*` | `{"type":"consumer","whitelist":[...]}` |
//! | [`Caveat::Interface`] | `interface = rest` | `{"type":"interface","interface":"rest"}` |
//! | [`Caveat::Api`] | `api = ozw/get/user.*.*:*\|all/all/space.s1.*:*` | `{"type":"api","whitelist":[...]}` (both may omit `:scope`) |
//! | [`Caveat::DataReadonly`] | `data.readonly` | `{"type":"data.readonly"}` |
//! | [`Caveat::DataPath`] | `data.path = L3MxL2Rpcg==\|...` (standard base64, padded) | `{"type":"data.path","whitelist":["L3MxL2Rpcg=="]}` |
//! | [`Caveat::DataObjectId`] | `data.objectid = 0000000000...\|...` | `{"type":"data.objectid","whitelist":[...]}` |
//! | [`Caveat::IdentityScope`] | `authorization = none` | `{"scope":"identityToken"}` |
//! | [`Caveat::TokenType`] (legacy) | `tokenType = space_support_token` | `{"type":"tokenType","tokenType":"space_support_token"}` (ozmint's) |
//!
//! Every value of this type is meant to be valid; [`Caveat::validate`] says
//! whether one built by hand is. Parsing is strict (fail closed): the text
//! form is accepted only as ctool writes it — lists non-empty and joined with
//! `|`, IPv4 masks with `/len`, no spaces, no leading zeros (except that
//! `time < N` keeps accepting them, as it always has, and that an `api`
//! pattern may omit its scope, which means `private` in ctool's reader too) —
//! and any text this
//! module does not understand is an error. Values are checked as Onezone
//! checks caveats it is given: country codes are two ASCII letters or
//! digits, regions one of [`Region`]'s, paths canonical, object ids those of
//! files, ids non-empty and free of `|` and control characters.
//!
//! `tokenType = ...` is the caveat of ozmint's legacy (18.02-style) tokens;
//! Onezone 20.02+ does not know it, and [`crate::token::v2`] verification
//! treats it as unknown.

pub mod api;
pub mod data;

use std::fmt;
use std::net::Ipv4Addr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::model::TokenKind;
pub use api::{Aspect, Gri, GriScope, MatchSpec, Operation};

/// Why a caveat (text or JSON) was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaveatError(String);

impl CaveatError {
    pub(crate) fn new(why: impl Into<String>) -> CaveatError {
        CaveatError(why.into())
    }
}

impl fmt::Display for CaveatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CaveatError {}

/// A Onedata service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// Onezone's worker, `ozw`.
    OzWorker,
    /// Onezone's panel, `ozp`.
    OzPanel,
    /// Oneprovider's worker, `opw`.
    OpWorker,
    /// Oneprovider's panel, `opp`.
    OpPanel,
}

impl Service {
    /// Every service.
    pub const ALL: [Service; 4] = [
        Service::OzWorker,
        Service::OzPanel,
        Service::OpWorker,
        Service::OpPanel,
    ];

    /// Its three-letter short name.
    pub fn shortname(self) -> &'static str {
        match self {
            Service::OzWorker => "ozw",
            Service::OzPanel => "ozp",
            Service::OpWorker => "opw",
            Service::OpPanel => "opp",
        }
    }

    /// The service of a short name.
    pub fn from_shortname(s: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|v| v.shortname() == s)
    }
}

/// Onezone's cluster id: the service id of `ozw` and `ozp`.
pub const ONEZONE_CLUSTER_ID: &str = "onezone";

/// The id that matches any id of its type in `service` and `consumer` caveats.
pub const WILDCARD: &str = "*";

/// A service in a `service` caveat (`<shortname>-<id>`; id `*`: any).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServiceSpec {
    /// The type of service.
    pub service: Service,
    /// Its id: a provider id, [`ONEZONE_CLUSTER_ID`], or [`WILDCARD`].
    pub id: String,
}

impl ServiceSpec {
    /// A service spec.
    pub fn new(service: Service, id: &str) -> ServiceSpec {
        ServiceSpec {
            service,
            id: id.to_owned(),
        }
    }

    /// Onezone's worker, `ozw-onezone`: the service of Onezone's REST API.
    pub fn onezone() -> ServiceSpec {
        ServiceSpec::new(Service::OzWorker, ONEZONE_CLUSTER_ID)
    }

    /// Parses `<shortname>-<id>`.
    pub fn parse(s: &str) -> Result<ServiceSpec, CaveatError> {
        let bad = || CaveatError::new(format!("bad service {s:?}"));
        let (short, id) = s.split_once('-').ok_or_else(bad)?;
        let service = Service::from_shortname(short).ok_or_else(bad)?;
        if !valid_element(id) {
            return Err(bad());
        }
        Ok(ServiceSpec::new(service, id))
    }
}

impl fmt::Display for ServiceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.service.shortname(), self.id)
    }
}

/// The kind of a consumer in a `consumer` caveat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConsumerKind {
    /// `usr-`.
    User,
    /// `grp-`: any member of the group (Onezone gives no meaning to `grp-*`
    /// other than a group whose id is `*`).
    Group,
    /// `prv-`: a Oneprovider.
    Provider,
}

impl ConsumerKind {
    /// Its prefix, without the `-`.
    pub fn prefix(self) -> &'static str {
        match self {
            ConsumerKind::User => "usr",
            ConsumerKind::Group => "grp",
            ConsumerKind::Provider => "prv",
        }
    }
}

/// A consumer in a `consumer` caveat (`usr-<id>`, `grp-<id>`, `prv-<id>`;
/// id `*`: any user or any provider).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConsumerSpec {
    /// Kind.
    pub kind: ConsumerKind,
    /// Id, or [`WILDCARD`].
    pub id: String,
}

impl ConsumerSpec {
    /// A consumer spec.
    pub fn new(kind: ConsumerKind, id: &str) -> ConsumerSpec {
        ConsumerSpec {
            kind,
            id: id.to_owned(),
        }
    }

    /// Parses `usr-<id>`, `grp-<id>` or `prv-<id>`.
    pub fn parse(s: &str) -> Result<ConsumerSpec, CaveatError> {
        let bad = || CaveatError::new(format!("bad consumer {s:?}"));
        let (prefix, id) = s.split_once('-').ok_or_else(bad)?;
        let kind = [
            ConsumerKind::User,
            ConsumerKind::Group,
            ConsumerKind::Provider,
        ]
        .into_iter()
        .find(|k| k.prefix() == prefix)
        .ok_or_else(bad)?;
        if !valid_element(id) {
            return Err(bad());
        }
        Ok(ConsumerSpec::new(kind, id))
    }
}

impl fmt::Display for ConsumerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.kind.prefix(), self.id)
    }
}

/// An interface a request comes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interface {
    /// REST APIs.
    Rest,
    /// Oneclient (a data-access interface).
    Oneclient,
    /// GraphSync (the GUI and the services' channel).
    Graphsync,
}

impl Interface {
    /// Every interface.
    pub const ALL: [Interface; 3] = [Interface::Rest, Interface::Oneclient, Interface::Graphsync];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Interface::Rest => "rest",
            Interface::Oneclient => "oneclient",
            Interface::Graphsync => "graphsync",
        }
    }

    /// The interface of a name.
    pub fn from_name(s: &str) -> Option<Interface> {
        Interface::ALL.into_iter().find(|i| i.name() == s)
    }
}

/// A geographic region of `geo.region` caveats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Region {
    /// `Africa` (continent code AF).
    Africa,
    /// `Antarctica` (AN).
    Antarctica,
    /// `Asia` (AS).
    Asia,
    /// `Europe` (EU).
    Europe,
    /// `EU`: a country in the European Union.
    EuropeanUnion,
    /// `NorthAmerica` (NA).
    NorthAmerica,
    /// `Oceania` (OC).
    Oceania,
    /// `SouthAmerica` (SA).
    SouthAmerica,
}

impl Region {
    /// Every region.
    pub const ALL: [Region; 8] = [
        Region::Africa,
        Region::Antarctica,
        Region::Asia,
        Region::Europe,
        Region::EuropeanUnion,
        Region::NorthAmerica,
        Region::Oceania,
        Region::SouthAmerica,
    ];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Region::Africa => "Africa",
            Region::Antarctica => "Antarctica",
            Region::Asia => "Asia",
            Region::Europe => "Europe",
            Region::EuropeanUnion => "EU",
            Region::NorthAmerica => "NorthAmerica",
            Region::Oceania => "Oceania",
            Region::SouthAmerica => "SouthAmerica",
        }
    }

    /// The region of a name.
    pub fn from_name(s: &str) -> Option<Region> {
        Region::ALL.into_iter().find(|r| r.name() == s)
    }

    /// The continent of a GeoIP continent code (`AF`, `AN`, `AS`, `EU`,
    /// `NA`, `OC`, `SA`).
    pub fn from_continent_code(code: &str) -> Option<Region> {
        Some(match code {
            "AF" => Region::Africa,
            "AN" => Region::Antarctica,
            "AS" => Region::Asia,
            "EU" => Region::Europe,
            "NA" => Region::NorthAmerica,
            "OC" => Region::Oceania,
            "SA" => Region::SouthAmerica,
            _ => return None,
        })
    }
}

/// Whether a `geo.*` caveat lists what is allowed or what is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListFilter {
    /// `=` / `"whitelist"`: the peer must be in one of the listed.
    Whitelist,
    /// `!=` / `"blacklist"`: the peer must be in none of the listed.
    Blacklist,
}

impl ListFilter {
    fn operator(self) -> &'static str {
        match self {
            ListFilter::Whitelist => "=",
            ListFilter::Blacklist => "!=",
        }
    }

    fn json_name(self) -> &'static str {
        match self {
            ListFilter::Whitelist => "whitelist",
            ListFilter::Blacklist => "blacklist",
        }
    }
}

/// An IPv4 network: an address and a prefix length (host bits may be set;
/// they are kept as written and ignored when matching).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpMask {
    /// The address.
    pub addr: Ipv4Addr,
    /// The prefix length, 0 to 32.
    pub len: u8,
}

impl IpMask {
    /// A mask; `None` if `len` exceeds 32.
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<IpMask> {
        (len <= 32).then_some(IpMask { addr, len })
    }

    /// Parses `a.b.c.d/len`, or with `len_optional` also `a.b.c.d` (`/32`).
    fn parse(s: &str, len_optional: bool) -> Result<IpMask, CaveatError> {
        let bad = || CaveatError::new(format!("bad IPv4 mask {s:?}"));
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, l),
            None if len_optional => (s, "32"),
            None => return Err(bad()),
        };
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let len = canonical_u64(len).filter(|l| *l <= 32).ok_or_else(bad)?;
        IpMask::new(addr, len as u8).ok_or_else(bad)
    }

    /// Whether `ip` is in this network.
    pub fn matches(&self, ip: Ipv4Addr) -> bool {
        let shift = 32 - u32::from(self.len);
        u32::from(ip).checked_shr(shift).unwrap_or(0)
            == u32::from(self.addr).checked_shr(shift).unwrap_or(0)
    }
}

impl fmt::Display for IpMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// The kind of a caveat (Onedata's caveat types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CaveatKind {
    /// `time < ...`.
    Time,
    /// `ip = ...`.
    Ip,
    /// `asn = ...`.
    Asn,
    /// `geo.country ...`.
    Country,
    /// `geo.region ...`.
    Region,
    /// `service = ...`.
    Service,
    /// `consumer = ...`.
    Consumer,
    /// `interface = ...`.
    Interface,
    /// `api = ...`.
    Api,
    /// `data.readonly`.
    DataReadonly,
    /// `data.path = ...`.
    DataPath,
    /// `data.objectid = ...`.
    DataObjectId,
    /// `authorization = none` (deprecated identity scope).
    IdentityScope,
    /// `tokenType = ...` (ozmint's legacy tokens).
    LegacyTokenType,
}

/// A caveat.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Caveat {
    /// `tokenType = ...`: the legacy token is of this type and may only be
    /// used as such.
    TokenType(TokenKind),
    /// `time < N`: valid while the unix time is below `N`.
    TimeBefore(u64),
    /// `ip = ...`: the peer's IPv4 address is in one of the networks.
    Ip(Vec<IpMask>),
    /// `asn = ...`: the peer's autonomous system is one of these.
    Asn(Vec<u32>),
    /// `geo.country = ...` / `!= ...`: the peer's country (ISO 3166 code) is
    /// (or is not) one of these.
    Country {
        /// White- or blacklist.
        filter: ListFilter,
        /// Two-letter codes.
        list: Vec<String>,
    },
    /// `geo.region = ...` / `!= ...`: the peer's region is (or is not) one of these.
    Region {
        /// White- or blacklist.
        filter: ListFilter,
        /// Regions.
        list: Vec<Region>,
    },
    /// `service = ...`: the service the token is used in is one of these.
    Service(Vec<ServiceSpec>),
    /// `consumer = ...`: the token's consumer is one of these.
    Consumer(Vec<ConsumerSpec>),
    /// `interface = ...`: the request comes through this interface.
    Interface(Interface),
    /// `api = ...`: operations are limited to those matching one of these.
    Api(Vec<MatchSpec>),
    /// `data.readonly`: data may only be read.
    DataReadonly,
    /// `data.path = ...`: data may only be accessed under these canonical paths.
    DataPath(Vec<String>),
    /// `data.objectid = ...`: data may only be accessed under these objects.
    DataObjectId(Vec<String>),
    /// `authorization = none`: the token only proves its subject's identity
    /// (deprecated since 20.02, still accepted from Oneproviders).
    IdentityScope,
}

/// Whether `s` may be an element of a caveat's list: non-empty, no `|`, no
/// control character.
fn valid_element(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c == '|' || c.is_control())
}

/// A decimal number as Onedata writes it: digits, no sign, no leading zero.
fn canonical_u64(s: &str) -> Option<u64> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = s.len() > 1 && s.starts_with('0');
    if digits && !leading_zero {
        s.parse().ok()
    } else {
        None
    }
}

fn valid_country(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn valid_objectid(s: &str) -> bool {
    valid_element(s) && data::is_valid_objectid(s)
}

fn valid_path(s: &str) -> bool {
    // Paths are base64-encoded in both forms, so only the canonical form
    // matters; NUL is no part of a file name.
    data::is_canonical_path(s) && !s.contains('\0')
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    let mut out = String::new();
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        use fmt::Write as _;
        let _ = write!(out, "{t}");
    }
    out
}

/// Splits a non-empty `|`-separated list and parses each element.
fn split<T>(
    list: &str,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, CaveatError> {
    if list.is_empty() {
        return Err(CaveatError::new(format!("empty {what} list")));
    }
    list.split('|')
        .map(|e| parse(e).ok_or_else(|| CaveatError::new(format!("bad {what} {e:?}"))))
        .collect()
}

/// The strings of a non-empty JSON array, each parsed.
fn json_list<T>(
    v: Option<&Value>,
    what: &str,
    parse: impl Fn(&Value) -> Option<T>,
) -> Result<Vec<T>, CaveatError> {
    let items = v
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| CaveatError::new(format!("{what} must be a non-empty list")))?;
    items
        .iter()
        .map(|e| parse(e).ok_or_else(|| CaveatError::new(format!("bad {what} entry {e}"))))
        .collect()
}

fn json_filter(v: Option<&Value>) -> Result<ListFilter, CaveatError> {
    match v.and_then(Value::as_str) {
        Some("whitelist") => Ok(ListFilter::Whitelist),
        Some("blacklist") => Ok(ListFilter::Blacklist),
        _ => Err(CaveatError::new(
            "filter must be \"whitelist\" or \"blacklist\"",
        )),
    }
}

/// Decodes a `data.path` entry: standard base64 with padding, exactly as
/// Onedata encodes it, of a canonical UTF-8 path.
fn decode_path(b64: &str) -> Option<String> {
    let bytes = STANDARD.decode(b64).ok()?;
    let path = String::from_utf8(bytes).ok()?;
    (valid_path(&path) && STANDARD.encode(&path) == b64).then_some(path)
}

impl Caveat {
    /// Parses a predicate; `None` if it is not understood (see [`Caveat::from_text`]).
    pub fn parse(predicate: &[u8]) -> Option<Caveat> {
        let s = std::str::from_utf8(predicate).ok()?;
        Caveat::from_text(s).ok()
    }

    /// Parses the text form (a macaroon `cid`), strictly.
    pub fn from_text(s: &str) -> Result<Caveat, CaveatError> {
        let caveat = Self::from_text_lenient(s)?;
        // Only the form ctool writes: anything that would be written
        // differently is refused (`time <` and `api` scopes excepted, see
        // the module docs).
        if !matches!(caveat, Caveat::TimeBefore(_) | Caveat::Api(_)) && caveat.to_text() != s {
            return Err(CaveatError::new(format!(
                "caveat not in canonical form: {s:?}"
            )));
        }
        Ok(caveat)
    }

    fn from_text_lenient(s: &str) -> Result<Caveat, CaveatError> {
        let unknown = || CaveatError::new(format!("unknown caveat {s:?}"));
        if let Some(kind) = s.strip_prefix("tokenType = ") {
            return TokenKind::from_wire_name(kind)
                .map(Caveat::TokenType)
                .ok_or_else(unknown);
        }
        if let Some(n) = s.strip_prefix("time < ") {
            if n.is_empty() || n.len() > 20 || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(CaveatError::new(format!("bad time caveat {s:?}")));
            }
            return n
                .parse()
                .map(Caveat::TimeBefore)
                .map_err(|_| CaveatError::new(format!("bad time caveat {s:?}")));
        }
        if let Some(list) = s.strip_prefix("ip = ") {
            return split(list, "IP mask", |e| IpMask::parse(e, false).ok()).map(Caveat::Ip);
        }
        if let Some(list) = s.strip_prefix("asn = ") {
            return split(list, "ASN", |e| {
                canonical_u64(e).and_then(|n| u32::try_from(n).ok())
            })
            .map(Caveat::Asn);
        }
        for (prefix, filter) in [
            ("geo.country = ", ListFilter::Whitelist),
            ("geo.country != ", ListFilter::Blacklist),
        ] {
            if let Some(list) = s.strip_prefix(prefix) {
                let list = split(list, "country", |e| valid_country(e).then(|| e.to_owned()))?;
                return Ok(Caveat::Country { filter, list });
            }
        }
        for (prefix, filter) in [
            ("geo.region = ", ListFilter::Whitelist),
            ("geo.region != ", ListFilter::Blacklist),
        ] {
            if let Some(list) = s.strip_prefix(prefix) {
                let list = split(list, "region", Region::from_name)?;
                return Ok(Caveat::Region { filter, list });
            }
        }
        if s == "authorization = none" {
            return Ok(Caveat::IdentityScope);
        }
        if let Some(list) = s.strip_prefix("service = ") {
            return split(list, "service", |e| ServiceSpec::parse(e).ok()).map(Caveat::Service);
        }
        if let Some(list) = s.strip_prefix("consumer = ") {
            return split(list, "consumer", |e| ConsumerSpec::parse(e).ok()).map(Caveat::Consumer);
        }
        if let Some(i) = s.strip_prefix("interface = ") {
            return Interface::from_name(i)
                .map(Caveat::Interface)
                .ok_or_else(|| CaveatError::new(format!("bad interface {i:?}")));
        }
        if let Some(list) = s.strip_prefix("api = ") {
            return split(list, "API match specification", |e| {
                MatchSpec::parse(e).ok()
            })
            .map(Caveat::Api);
        }
        if s == "data.readonly" {
            return Ok(Caveat::DataReadonly);
        }
        if let Some(list) = s.strip_prefix("data.path = ") {
            return split(list, "data path", decode_path).map(Caveat::DataPath);
        }
        if let Some(list) = s.strip_prefix("data.objectid = ") {
            return split(list, "object id", |e| {
                valid_objectid(e).then(|| e.to_owned())
            })
            .map(Caveat::DataObjectId);
        }
        Err(unknown())
    }

    /// The text form (the macaroon `cid`), as ctool writes it.
    pub fn to_text(&self) -> String {
        match self {
            Caveat::TokenType(k) => format!("tokenType = {}", k.wire_name()),
            Caveat::TimeBefore(t) => format!("time < {t}"),
            Caveat::Ip(masks) => format!("ip = {}", join(masks)),
            Caveat::Asn(asns) => format!("asn = {}", join(asns)),
            Caveat::Country { filter, list } => {
                format!("geo.country {} {}", filter.operator(), join(list))
            }
            Caveat::Region { filter, list } => {
                let names: Vec<&str> = list.iter().map(|r| r.name()).collect();
                format!("geo.region {} {}", filter.operator(), join(&names))
            }
            Caveat::Service(list) => format!("service = {}", join(list)),
            Caveat::Consumer(list) => format!("consumer = {}", join(list)),
            Caveat::Interface(i) => format!("interface = {}", i.name()),
            Caveat::Api(list) => format!("api = {}", join(list)),
            Caveat::DataReadonly => "data.readonly".to_owned(),
            Caveat::DataPath(paths) => {
                let encoded: Vec<String> = paths.iter().map(|p| STANDARD.encode(p)).collect();
                format!("data.path = {}", join(&encoded))
            }
            Caveat::DataObjectId(ids) => format!("data.objectid = {}", join(ids)),
            Caveat::IdentityScope => "authorization = none".to_owned(),
        }
    }

    /// The text form; the name the legacy code uses.
    pub fn to_predicate(&self) -> String {
        self.to_text()
    }

    /// Whether a caveat built by hand is valid: its text form reads back as
    /// the same caveat (non-empty lists, valid elements).
    pub fn validate(&self) -> Result<(), CaveatError> {
        let text = self.to_text();
        match Caveat::from_text(&text) {
            Ok(c) if c == *self => Ok(()),
            Ok(_) => Err(CaveatError::new(format!(
                "caveat does not survive its text form {text:?}"
            ))),
            Err(e) => Err(e),
        }
    }

    /// The JSON form, as Onezone's REST API writes it.
    pub fn to_json(&self) -> Value {
        match self {
            Caveat::TokenType(k) => json!({"type": "tokenType", "tokenType": k.wire_name()}),
            Caveat::TimeBefore(t) => json!({"type": "time", "validUntil": t}),
            Caveat::Ip(masks) => json!({
                "type": "ip",
                "whitelist": masks.iter().map(IpMask::to_string).collect::<Vec<_>>(),
            }),
            Caveat::Asn(asns) => json!({"type": "asn", "whitelist": asns}),
            Caveat::Country { filter, list } => json!({
                "type": "geo.country",
                "filter": filter.json_name(),
                "list": list,
            }),
            Caveat::Region { filter, list } => json!({
                "type": "geo.region",
                "filter": filter.json_name(),
                "list": list.iter().map(|r| r.name()).collect::<Vec<_>>(),
            }),
            Caveat::Service(list) => json!({
                "type": "service",
                "whitelist": list.iter().map(ServiceSpec::to_string).collect::<Vec<_>>(),
            }),
            Caveat::Consumer(list) => json!({
                "type": "consumer",
                "whitelist": list.iter().map(ConsumerSpec::to_string).collect::<Vec<_>>(),
            }),
            Caveat::Interface(i) => json!({"type": "interface", "interface": i.name()}),
            Caveat::Api(list) => json!({
                "type": "api",
                "whitelist": list.iter().map(MatchSpec::to_string).collect::<Vec<_>>(),
            }),
            Caveat::DataReadonly => json!({"type": "data.readonly"}),
            Caveat::DataPath(paths) => json!({
                "type": "data.path",
                "whitelist": paths.iter().map(|p| STANDARD.encode(p)).collect::<Vec<_>>(),
            }),
            Caveat::DataObjectId(ids) => json!({"type": "data.objectid", "whitelist": ids}),
            Caveat::IdentityScope => json!({"scope": "identityToken"}),
        }
    }

    /// Parses the JSON form, as Onezone's REST API reads it: other members
    /// are ignored; an IP mask may omit `/32`; an API match specification
    /// may omit its scope (`private`).
    pub fn from_json(v: &Value) -> Result<Caveat, CaveatError> {
        let obj = v
            .as_object()
            .ok_or_else(|| CaveatError::new("a caveat must be a JSON object"))?;
        let Some(ty) = obj.get("type") else {
            return match obj.get("scope").and_then(Value::as_str) {
                Some("identityToken") => Ok(Caveat::IdentityScope),
                _ => Err(CaveatError::new("a caveat needs a \"type\"")),
            };
        };
        let whitelist = obj.get("whitelist");
        let str_of = |e: &Value| e.as_str().map(str::to_owned);
        let caveat = match ty.as_str().unwrap_or_default() {
            "time" => Caveat::TimeBefore(
                obj.get("validUntil")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| CaveatError::new("validUntil must be a unix time"))?,
            ),
            "ip" => Caveat::Ip(json_list(whitelist, "ip", |e| {
                IpMask::parse(e.as_str()?, true).ok()
            })?),
            "asn" => Caveat::Asn(json_list(whitelist, "asn", |e| {
                u32::try_from(e.as_u64()?).ok()
            })?),
            "geo.country" => Caveat::Country {
                filter: json_filter(obj.get("filter"))?,
                list: json_list(obj.get("list"), "geo.country", |e| {
                    str_of(e).filter(|c| valid_country(c))
                })?,
            },
            "geo.region" => Caveat::Region {
                filter: json_filter(obj.get("filter"))?,
                list: json_list(obj.get("list"), "geo.region", |e| {
                    Region::from_name(e.as_str()?)
                })?,
            },
            "service" => Caveat::Service(json_list(whitelist, "service", |e| {
                ServiceSpec::parse(e.as_str()?).ok()
            })?),
            "consumer" => Caveat::Consumer(json_list(whitelist, "consumer", |e| {
                ConsumerSpec::parse(e.as_str()?).ok()
            })?),
            "interface" => Caveat::Interface(
                obj.get("interface")
                    .and_then(Value::as_str)
                    .and_then(Interface::from_name)
                    .ok_or_else(|| {
                        CaveatError::new("interface must be rest, oneclient or graphsync")
                    })?,
            ),
            "api" => Caveat::Api(json_list(whitelist, "api", |e| {
                MatchSpec::parse(e.as_str()?).ok()
            })?),
            "data.readonly" => Caveat::DataReadonly,
            "data.path" => Caveat::DataPath(json_list(whitelist, "data.path", |e| {
                decode_path(e.as_str()?)
            })?),
            "data.objectid" => Caveat::DataObjectId(json_list(whitelist, "data.objectid", |e| {
                str_of(e).filter(|id| valid_objectid(id))
            })?),
            "tokenType" => Caveat::TokenType(
                obj.get("tokenType")
                    .and_then(Value::as_str)
                    .and_then(TokenKind::from_wire_name)
                    .ok_or_else(|| CaveatError::new("unknown tokenType"))?,
            ),
            _ => return Err(CaveatError::new(format!("unknown caveat type {ty}"))),
        };
        caveat.validate()?;
        Ok(caveat)
    }

    /// Its kind.
    pub fn kind(&self) -> CaveatKind {
        match self {
            Caveat::TokenType(_) => CaveatKind::LegacyTokenType,
            Caveat::TimeBefore(_) => CaveatKind::Time,
            Caveat::Ip(_) => CaveatKind::Ip,
            Caveat::Asn(_) => CaveatKind::Asn,
            Caveat::Country { .. } => CaveatKind::Country,
            Caveat::Region { .. } => CaveatKind::Region,
            Caveat::Service(_) => CaveatKind::Service,
            Caveat::Consumer(_) => CaveatKind::Consumer,
            Caveat::Interface(_) => CaveatKind::Interface,
            Caveat::Api(_) => CaveatKind::Api,
            Caveat::DataReadonly => CaveatKind::DataReadonly,
            Caveat::DataPath(_) => CaveatKind::DataPath,
            Caveat::DataObjectId(_) => CaveatKind::DataObjectId,
            Caveat::IdentityScope => CaveatKind::IdentityScope,
        }
    }

    /// Whether it is a data-access caveat (`data.*`, `interface = oneclient`):
    /// a token carrying one is meant for data access only, and Onezone's
    /// API is limited to what data access needs.
    pub fn is_data_access(&self) -> bool {
        matches!(
            self,
            Caveat::DataReadonly
                | Caveat::DataPath(_)
                | Caveat::DataObjectId(_)
                | Caveat::Interface(Interface::Oneclient)
        )
    }

    /// The earliest `time <` among `caveats`, if any.
    pub fn expiration(caveats: &[Caveat]) -> Option<u64> {
        caveats
            .iter()
            .filter_map(|c| match c {
                Caveat::TimeBefore(t) => Some(*t),
                _ => None,
            })
            .min()
    }
}

impl fmt::Display for Caveat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl serde::Serialize for Caveat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Caveat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Caveat, D::Error> {
        let v = Value::deserialize(d)?;
        Caveat::from_json(&v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
pub(crate) mod tests;
