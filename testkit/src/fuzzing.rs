//! Fuzzing entry points.
//!
//! Each function takes arbitrary bytes, drives one part of the crate with
//! them and checks invariants that must hold for every input. None of them
//! panics by design: a panic is a bug in the code under test, or in an
//! invariant stated here (each assertion says which). They are called by the
//! cargo-fuzz targets in `fuzz/` (one line each) and replayed over the
//! committed corpus and regression inputs by `tests/fuzz_regressions.rs`.
//!
//! | entry point | drives | checks |
//! |---|---|---|
//! | [`token`] | `token::wire`, `Minter::verify`/`inspect` | wire round trip; only the minted token (or a holder's valid attenuation of it) verifies |
//! | [`http_request`] | `http::routes`, `http::credentials`, `http::json_depth` | routing agrees with the endpoint table, never routes dot segments; one credential at most; JSON depth is exact |
//! | [`decode`] | `codec::fuzz_decode` | no panic, decoded records re-encode and decode to themselves |
//! | [`store_ops`] | `Store` and `Minter` over a memory engine | every result, listing and effective privilege agrees with a plain model; `Store::check` finds nothing |
//!
//! Not part of the public API: hidden from the documentation and free to change.
#![doc(hidden)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use hyper::Method;

use crate::auth::Credentials;
use crate::codec;
use crate::error::{Entity, Error, Result};
use crate::http::routes::{self, Endpoint, PREFIX};
use crate::model::{
    now, Group, GroupPrivileges, GroupType, Id, PrivSet, Privilege, Provider, RootKey, Space,
    SpacePrivileges, Subject, Support, TokenKind, TokenRecord, TokenState, User, ZonePrivileges,
};
use crate::store::{
    Batch, Relation, Store, TreeName, GROUP_CHILDREN, GROUP_USERS, PAGE_MAX, SPACE_GROUPS,
    SPACE_PROVIDERS, SPACE_USERS,
};
use crate::token::wire::{self, RawToken, MAX_CAVEATS, MAX_TOKEN_LEN};
use crate::token::{Minter, MinterConfig, TokenError};

/// Reads fuzz input front to back; past the end every read yields zeros.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// An index below `n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::from(self.u16()) % n
        }
    }

    /// Up to `n` bytes.
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// A short byte string: a length byte, then that many bytes (capped at `max`).
    fn short(&mut self, max: usize) -> &'a [u8] {
        let n = usize::from(self.byte()) % (max + 1);
        self.take(n)
    }

    fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }
}

// ---------------------------------------------------------------------------
// token
// ---------------------------------------------------------------------------

/// Creation time of the fixture token (fixed, so crashes reproduce).
const FIXTURE_CREATED: u64 = 1_700_000_000;
/// Expiry of the fixture token: 2096, far enough for any run.
const FIXTURE_EXPIRES: u64 = 4_000_000_000;

/// One process-wide minter over a memory store holding one active access
/// token, minted deterministically (fixed root key, identifier and times).
struct TokenFixture {
    minter: Minter,
    token: String,
    raw: RawToken,
}

fn token_fixture() -> &'static TokenFixture {
    static FIXTURE: OnceLock<TokenFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let store = Arc::new(Store::memory());
        let root = RootKey {
            secret: [0x5a; 32],
            created: FIXTURE_CREATED,
            retired: None,
        };
        assert!(
            store.insert_root_key(1, &root).expect("memory store write"),
            "fixture: a fresh store already had a root key"
        );
        let minter = Minter::new(store.clone(), MinterConfig::default()).expect("fixture: minter");
        let user = Id([0x22; 32]);
        let record = TokenRecord {
            kind: TokenKind::Access,
            target: user,
            issuer: Subject::User(user),
            key_id: 1,
            created: FIXTURE_CREATED,
            expires: FIXTURE_EXPIRES,
            state: TokenState::Active,
        };
        let id = Id([0x11; 32]);
        store.insert_token(&id, &record).expect("fixture: token");
        let token = minter
            .render(&id, &record)
            .expect("fixture: render")
            .expect("fixture: key 1 is not retired");
        // A revoked sibling, so that arbitrary identifiers can hit a record
        // that must never verify.
        let revoked = TokenRecord {
            state: TokenState::Revoked {
                at: FIXTURE_CREATED,
            },
            ..record
        };
        store
            .insert_token(&Id([0x33; 32]), &revoked)
            .expect("fixture: revoked token");
        let raw = wire::parse(&token).expect("fixture: the minted token parses");
        assert!(
            minter.verify(&token).is_ok(),
            "fixture: the minted token verifies"
        );
        TokenFixture { minter, token, raw }
    })
}

/// Whether a caveat predicate is understood and satisfied at `now`, stated
/// independently of `token::caveat`: `tokenType = access_token` (the
/// fixture's kind) or `time < N` with N a plain decimal u64 of at most 20
/// digits, greater than `now`.
fn caveat_holds(c: &[u8], now: u64) -> bool {
    let Ok(s) = std::str::from_utf8(c) else {
        return false;
    };
    if s == "tokenType = access_token" {
        return true;
    }
    match s.strip_prefix("time < ") {
        Some(n) if !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit()) => {
            n.parse::<u64>().is_ok_and(|t| t > now)
        }
        _ => false,
    }
}

/// parse -> encode -> parse gives the same token.
fn check_round_trip(s: &str) {
    if let Ok(raw) = wire::parse(s) {
        let enc = wire::encode(&raw);
        let back = wire::parse(&enc);
        assert!(
            back.as_ref() == Ok(&raw),
            "round trip: a token of {} chars parses, but wire::encode turns it into {} chars \
             that parse as {}",
            s.trim().len(),
            enc.len(),
            match &back {
                Ok(_) => "another token".to_owned(),
                Err(e) => format!("Err({e:?})"),
            }
        );
    }
}

/// Verifies `tok` with the fixture minter and checks that a token that
/// verifies is the fixture token, possibly extended by caveats that all hold
/// (attenuation is the only change possible without the root key). Returns
/// whether it verified, and the parsed token if it did.
fn check_verify(fx: &TokenFixture, tok: &str) -> Option<RawToken> {
    let _ = fx.minter.inspect(tok);
    let before = now();
    let verified = fx.minter.verify(tok);
    if verified.is_err() {
        return None;
    }
    let raw = wire::parse(tok).expect("verify: a token that verifies must parse");
    assert_eq!(
        raw.identifier, fx.raw.identifier,
        "verify: accepted a token with another identifier"
    );
    assert!(
        raw.caveats.starts_with(&fx.raw.caveats),
        "verify: accepted a token whose caveats do not extend the minted ones: {raw:?}"
    );
    for c in &raw.caveats[fx.raw.caveats.len()..] {
        assert!(
            caveat_holds(c, before),
            "verify: accepted an unknown or unsatisfied caveat {:?}",
            String::from_utf8_lossy(c)
        );
    }
    if raw.caveats.len() == fx.raw.caveats.len() {
        assert!(
            raw.signature == fx.raw.signature,
            "verify: accepted the minted caveats under another signature"
        );
    }
    Some(raw)
}

/// Characters text edits draw from: the token alphabets and a few intruders.
const TOKEN_CHARS: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= \n%.";

/// One edit of a byte string: replace, insert or delete at a position.
fn edit(buf: &mut Vec<u8>, input: &mut Input<'_>, value: impl Fn(u8) -> u8) {
    let op = input.byte();
    let pos = usize::from(input.u16());
    let v = value(input.byte());
    match op % 3 {
        0 if !buf.is_empty() => {
            let i = pos % buf.len();
            buf[i] = v;
        }
        1 => buf.insert(pos % (buf.len() + 1), v),
        _ if !buf.is_empty() => {
            buf.remove(pos % buf.len());
        }
        _ => {}
    }
}

/// Most edits applied to one token.
const MAX_EDITS: usize = 16;

/// Fuzzes the token wire format and the verifier.
///
/// The input is first tried as a token itself (UTF-8-lossy): parsing must
/// round-trip through [`wire::encode`], and verification must accept only the
/// fixture token. Then the fixture token is changed as the input says (the
/// first byte picks how: edits of its text, edits of its binary form
/// re-encoded in any accepted form, structural changes re-encoded, or
/// attenuation with caveats taken from the input) and must verify exactly
/// when it still is the minted token, or a valid attenuation of it.
pub fn token(data: &[u8]) {
    let fx = token_fixture();
    let text = String::from_utf8_lossy(data);
    check_round_trip(&text);
    check_verify(fx, &text);

    let mut input = Input::new(data);
    match input.byte() % 4 {
        0 => {
            // Text edits on the escaped token.
            let mut buf = fx.token.as_bytes().to_vec();
            for _ in 0..MAX_EDITS {
                if input.is_empty() {
                    break;
                }
                edit(&mut buf, &mut input, |b| {
                    TOKEN_CHARS[usize::from(b) % TOKEN_CHARS.len()]
                });
            }
            let tok = String::from_utf8(buf).expect("text edits keep ASCII");
            check_unattenuated(fx, &tok);
        }
        1 => {
            // Binary edits, re-encoded in one of the accepted forms.
            let plain = wire::unescape(&fx.token).expect("fixture token is escaped");
            let mut bin = URL_SAFE_NO_PAD
                .decode(plain)
                .expect("fixture token is base64url");
            let form = input.byte();
            for _ in 0..MAX_EDITS {
                if input.is_empty() {
                    break;
                }
                edit(&mut bin, &mut input, |b| b);
            }
            let tok = match form % 5 {
                0 => wire::escape(&URL_SAFE_NO_PAD.encode(&bin)),
                1 => URL_SAFE_NO_PAD.encode(&bin),
                2 => URL_SAFE.encode(&bin),
                3 => STANDARD.encode(&bin),
                _ => STANDARD_NO_PAD.encode(&bin),
            };
            check_unattenuated(fx, &tok);
        }
        2 => {
            // Structural changes, re-encoded with wire::encode.
            let mut raw = fx.raw.clone();
            for _ in 0..MAX_EDITS {
                if input.is_empty() {
                    break;
                }
                let op = input.byte();
                match op % 8 {
                    0 => raw.location = None,
                    1 => raw.location = Some(String::from_utf8_lossy(input.short(64)).into_owned()),
                    2 => edit(&mut raw.identifier, &mut input, |b| b),
                    3 => raw.caveats.push(input.short(64).to_vec()),
                    4 if !raw.caveats.is_empty() => {
                        let i = input.below(raw.caveats.len());
                        raw.caveats.remove(i);
                    }
                    5 if !raw.caveats.is_empty() => {
                        let i = input.below(raw.caveats.len());
                        edit(&mut raw.caveats[i], &mut input, |b| b);
                    }
                    6 => {
                        let bit = input.byte();
                        raw.signature[usize::from(bit / 8) % 32] ^= 1 << (bit % 8);
                    }
                    _ if raw.caveats.len() > 1 => {
                        let i = input.below(raw.caveats.len());
                        let j = input.below(raw.caveats.len());
                        raw.caveats.swap(i, j);
                    }
                    _ => {}
                }
            }
            let tok = wire::encode(&raw);
            let accepted = check_unattenuated(fx, &tok);
            let same = raw.identifier == fx.raw.identifier
                && raw.caveats == fx.raw.caveats
                && raw.signature == fx.raw.signature;
            if same && within_cap(&tok) {
                assert!(
                    accepted,
                    "verify: the minted token re-encoded by wire::encode (location {:?}) is refused",
                    raw.location
                );
            }
        }
        _ => {
            // A holder's attenuation: caveats from the input, one per line.
            let mut tok = fx.token.clone();
            let mut caveats = Vec::new();
            let mut attenuated = true;
            for line in input.rest().split(|&b| b == b'\n').take(8) {
                let c = String::from_utf8_lossy(line).into_owned();
                match wire::attenuate(&tok, &c) {
                    Ok(t) => tok = t,
                    Err(e) => {
                        assert_eq!(
                            e,
                            TokenError::TooLong,
                            "attenuate: a valid token could not be attenuated"
                        );
                        attenuated = false;
                        break;
                    }
                }
                caveats.push(c);
            }
            check_round_trip(&tok);
            let before = now();
            let accepted = check_verify(fx, &tok).is_some();
            let after = now();
            let expect = |at: u64| {
                attenuated
                    && within_cap(&tok)
                    && fx.raw.caveats.len() + caveats.len() <= MAX_CAVEATS
                    && caveats.iter().all(|c| caveat_holds(c.as_bytes(), at))
            };
            // Time may pass during verification; only judge when it does not matter.
            if expect(before) == expect(after) {
                assert_eq!(
                    accepted,
                    expect(before),
                    "verify: attenuation with {caveats:?} judged wrongly"
                );
            }
        }
    }
}

/// Whether an escaped token (as `wire::encode` and `wire::attenuate` write
/// them) is within the length cap, which applies to the un-escaped form.
fn within_cap(escaped: &str) -> bool {
    escaped.len() <= 2 * MAX_TOKEN_LEN
        && wire::unescape(escaped).is_some_and(|plain| plain.len() <= MAX_TOKEN_LEN)
}

/// Round trip, then verification; the token was changed without the root
/// key and without attenuating, so it may verify only with the minted
/// identifier, caveats and signature (the unsigned location may differ).
fn check_unattenuated(fx: &TokenFixture, tok: &str) -> bool {
    check_round_trip(tok);
    match check_verify(fx, tok) {
        Some(raw) => {
            assert_eq!(
                raw.caveats.len(),
                fx.raw.caveats.len(),
                "verify: accepted added caveats without a new signature"
            );
            true
        }
        None => false,
    }
}

// ---------------------------------------------------------------------------
// http_request
// ---------------------------------------------------------------------------

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Most header lines read from one input.
const MAX_HEADERS: usize = 32;

/// Fuzzes request routing, credential extraction and the JSON depth guard.
///
/// The input is `METHOD\nPATH\nName: value\n...\n\nBODY`: a method line, a
/// path line, header lines up to an empty line (invalid names or values are
/// skipped), and the rest as the body.
pub fn http_request(data: &[u8]) {
    let (method_line, rest) = split_line(data);
    let (path_line, mut rest) = split_line(rest);
    let method = Method::from_bytes(trim_cr(method_line)).unwrap_or(Method::GET);
    let path = String::from_utf8_lossy(trim_cr(path_line)).into_owned();
    let mut headers = HeaderMap::new();
    let mut body: &[u8] = &[];
    for _ in 0..MAX_HEADERS {
        if rest.is_empty() {
            break;
        }
        let (line, after) = split_line(rest);
        rest = after;
        let line = trim_cr(line);
        if line.is_empty() {
            body = rest;
            break;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &[][..]),
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    check_route(&method, &path);
    check_credentials(&headers);
    check_json(body);
}

/// The path parameters an endpoint carries, in path order (`None` for an
/// endpoint this function does not know yet).
fn endpoint_params(ep: &Endpoint) -> Option<Vec<&str>> {
    use Endpoint::*;
    #[allow(unreachable_patterns)]
    Some(match ep {
        SpaceSupportToken(a)
        | GroupSpaceToken(a)
        | ClientToken(a)
        | SpaceProviders(a)
        | SpaceTokens(a)
        | GroupTokens(a)
        | Token(a)
        | KeyRetire(a)
        | UserById(a)
        | UserPrivileges(a)
        | EffectiveChildren(a)
        | Container(_, a)
        | MemberList(_, a)
        | EffectiveUsers(_, a) => vec![a.as_str()],
        Member(_, a, b) | MemberPrivileges(_, a, b) | EffectiveUserPrivileges(_, a, b) => {
            vec![a.as_str(), b.as_str()]
        }
        ClientTokens | Providers | ProviderSpaceSupport | ProviderSpaces | TokenExamine | Keys
        | Users | Me | MyPassword | MyGroups | MySpaces | Groups | Spaces | Backup => vec![],
        _ => return None,
    })
}

fn check_route(method: &Method, path: &str) {
    let segs = routes::segments(path);
    let routed = routes::route(method, path);
    match &segs {
        Ok(Some(s)) => {
            assert!(
                path.starts_with(PREFIX),
                "segments: split a path outside the API"
            );
            assert!(s.len() <= 16, "segments: more than 16 segments");
            for seg in s {
                assert!(
                    !seg.is_empty() && seg != "." && seg != ".." && !seg.contains('/'),
                    "segments: let through the segment {seg:?} of {path:?}"
                );
            }
        }
        Ok(None) => assert!(
            matches!(&routed, Err(e) if e.status == 404),
            "route: a path outside the API is not a 404"
        ),
        Err(e) => {
            assert_eq!(e.status, 400, "segments: error other than 400");
            assert!(
                matches!(&routed, Err(r) if r.status == 400),
                "route: disagrees with segments on a bad path"
            );
        }
    }
    match routed {
        Ok(ep) => {
            let Ok(Some(s)) = segs else {
                panic!("route: found an endpoint for a path segments() refuses: {path:?}");
            };
            // Never an endpoint for a path with a dot segment, decoded or not.
            assert!(
                !path.split('/').any(|raw| raw == ".." || raw == "."),
                "route: routed a path with a dot segment: {path:?}"
            );
            assert_eq!(
                routes::resolve(&s).as_ref(),
                Some(&ep),
                "route: disagrees with resolve"
            );
            assert!(
                ep.methods().contains(method),
                "route: routed a method the endpoint does not answer"
            );
            // The template names the same literal segments and parameters.
            let template: Vec<&str> = ep.template().trim_start_matches('/').split('/').collect();
            assert_eq!(
                template.len(),
                s.len(),
                "route: {ep:?} has template {} for {s:?}",
                ep.template()
            );
            let mut params = Vec::new();
            for (t, seg) in template.iter().zip(&s) {
                if t.starts_with('{') {
                    params.push(seg.as_str());
                } else {
                    assert_eq!(t, seg, "route: {ep:?} matched {s:?}");
                }
            }
            if let Some(carried) = endpoint_params(&ep) {
                assert_eq!(carried, params, "route: {ep:?} carries other parameters");
            }
            // Encoding every segment differently routes to the same endpoint.
            let encoded: Vec<String> = s
                .iter()
                .map(|seg| {
                    percent_encoding::utf8_percent_encode(seg, percent_encoding::NON_ALPHANUMERIC)
                        .to_string()
                })
                .collect();
            let again = format!("{PREFIX}/{}", encoded.join("/"));
            assert_eq!(
                routes::route(method, &again).ok().as_ref(),
                Some(&ep),
                "route: percent-encoding the segments of {path:?} changes the endpoint"
            );
            if !path.ends_with('/') {
                assert_eq!(
                    routes::route(method, &format!("{path}/")).ok().as_ref(),
                    Some(&ep),
                    "route: a trailing slash changes the endpoint"
                );
            }
        }
        Err(e) => {
            assert!(
                matches!(e.status.as_u16(), 400 | 404 | 405),
                "route: unexpected status {}",
                e.status
            );
            if e.status == 405 {
                let Ok(Some(s)) = segs else {
                    panic!("route: 405 for a path that segments() refuses");
                };
                let ep = routes::resolve(&s).expect("route: 405 for a path no endpoint has");
                assert!(
                    !ep.methods().contains(method),
                    "route: 405 for an allowed method"
                );
                let allow: Vec<&str> = ep.methods().iter().map(Method::as_str).collect();
                assert_eq!(
                    e.allow.as_deref(),
                    Some(allow.join(", ").as_str()),
                    "route: Allow header disagrees with the endpoint"
                );
            }
        }
    }
}

fn check_credentials(headers: &HeaderMap) {
    let presented = headers.get_all(AUTHORIZATION).iter().count()
        + headers.get_all("x-auth-token").iter().count()
        + headers.get_all("macaroon").iter().count();
    match crate::http::credentials(headers) {
        Ok(None) => assert_eq!(presented, 0, "credentials: ignored a credential header"),
        Ok(Some(c)) => {
            assert_eq!(presented, 1, "credentials: accepted several credentials");
            match c {
                Credentials::Token(t) => assert_eq!(
                    t.trim(),
                    t,
                    "credentials: token keeps surrounding white space"
                ),
                Credentials::Basic { user, .. } => {
                    assert!(!user.contains(':'), "credentials: user name with ':'")
                }
            }
        }
        Err(e) => {
            assert_eq!(e.status, 400, "credentials: error other than 400");
            assert!(presented >= 1, "credentials: error without any credential");
        }
    }
}

/// Nesting depth of a JSON value, counted as `json_depth` counts it.
fn value_depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(value_depth).max().unwrap_or(0),
        serde_json::Value::Object(o) => 1 + o.values().map(value_depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn check_json(body: &[u8]) {
    let depth = crate::http::json_depth(body);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        assert_eq!(
            depth,
            value_depth(&v),
            "json_depth: wrong depth for a valid JSON body"
        );
    }
}

// ---------------------------------------------------------------------------
// decode
// ---------------------------------------------------------------------------

fn decode_round_trip<T: crate::codec::Record + PartialEq + Debug>(bytes: &[u8]) {
    if let Ok(v) = codec::decode::<T>(bytes) {
        let again = codec::encode(&v).expect("codec: a decoded record does not encode");
        assert_eq!(
            codec::decode::<T>(&again).as_ref(),
            Ok(&v),
            "codec: a decoded record does not round-trip"
        );
    }
}

/// Fuzzes the record codec: decoding arbitrary bytes as every record type
/// never panics, and whatever decodes re-encodes to bytes that decode to it.
pub fn decode(data: &[u8]) {
    codec::fuzz_decode(data);
    decode_round_trip::<User>(data);
    decode_round_trip::<Group>(data);
    decode_round_trip::<Space>(data);
    decode_round_trip::<Provider>(data);
    decode_round_trip::<Support>(data);
    decode_round_trip::<TokenRecord>(data);
    decode_round_trip::<RootKey>(data);
    decode_round_trip::<SpacePrivileges>(data);
    decode_round_trip::<GroupPrivileges>(data);
}

// ---------------------------------------------------------------------------
// store_ops
// ---------------------------------------------------------------------------

/// Most live entities of each kind.
const SLOTS: usize = 8;
/// Most operations run per input.
const MAX_OPS: usize = 64;
/// Most live token records.
const MAX_TOKENS: usize = 16;
/// An id no entity ever has.
const NEVER: Id = Id([0xff; 32]);

/// Entity kinds the model tracks, in a fixed order.
const KINDS: [Entity; 4] = [Entity::User, Entity::Group, Entity::Space, Entity::Provider];

fn kind_index(kind: Entity) -> usize {
    KINDS.iter().position(|k| *k == kind).unwrap_or(0)
}

/// User names: (name, valid as a login name).
fn user_name(i: u8) -> (String, bool) {
    let (name, ok) = match i % 16 {
        0 => ("alice", true),
        1 => ("bob", true),
        2 => ("carol", true),
        3 => ("dave", true),
        4 => ("eve", true),
        5 => ("a", true),
        6 => ("ünïcødé", true),
        7 => ("x.y-z_0", true),
        8 => ("", false),
        9 => (" ", false),
        10 => ("a:b", false),
        11 => ("a b", false),
        12 => ("bell\u{7}", false),
        13 => ("nbsp\u{a0}", false),
        14 => return ("x".repeat(64), true),
        _ => return ("x".repeat(65), false),
    };
    (name.to_owned(), ok)
}

fn privs<P: Privilege>(bits: u16) -> PrivSet<P> {
    P::ALL
        .iter()
        .copied()
        .filter(|p| u32::from(bits) & (1 << p.index()) != 0)
        .collect()
}

/// A relation value the model can make from input.
trait ModelValue: Copy + PartialEq + Debug + crate::codec::Record {
    fn from_input(input: &mut Input<'_>) -> Self;
}

impl<P: Privilege> ModelValue for PrivSet<P> {
    fn from_input(input: &mut Input<'_>) -> Self {
        privs(input.u16())
    }
}

impl ModelValue for Support {
    fn from_input(input: &mut Input<'_>) -> Self {
        Support {
            size: u64::from(input.u16()) << 20,
            since: u64::from(input.byte()),
        }
    }
}

type Edges<V> = BTreeMap<(Id, Id), V>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokState {
    Active,
    Consumed,
    Revoked,
}

struct ModelToken {
    token: String,
    kind: TokenKind,
    target: Id,
    expires: u64,
    expired: bool,
    state: TokState,
}

/// The plain model: sets of live entities and maps of edges.
#[derive(Default)]
struct Model {
    counter: u64,
    /// Every id ever used, by kind (live or deleted).
    known: [BTreeSet<Id>; 4],
    users: BTreeMap<Id, String>,
    groups: BTreeSet<Id>,
    spaces: BTreeSet<Id>,
    providers: BTreeSet<Id>,
    /// (group, user)
    gu: Edges<GroupPrivileges>,
    /// (parent, child)
    gc: Edges<GroupPrivileges>,
    /// (space, user)
    su: Edges<SpacePrivileges>,
    /// (space, group)
    sg: Edges<SpacePrivileges>,
    /// (space, provider)
    sp: Edges<Support>,
    tokens: BTreeMap<Id, ModelToken>,
    /// Tokens whose records are gone (deleted with their target, or purged).
    gone: Vec<(Id, String)>,
}

impl Model {
    fn count(&self, kind: Entity) -> usize {
        match kind {
            Entity::User => self.users.len(),
            Entity::Group => self.groups.len(),
            Entity::Space => self.spaces.len(),
            _ => self.providers.len(),
        }
    }

    fn is_live(&self, kind: Entity, id: &Id) -> bool {
        match kind {
            Entity::User => self.users.contains_key(id),
            Entity::Group => self.groups.contains(id),
            Entity::Space => self.spaces.contains(id),
            _ => self.providers.contains(id),
        }
    }

    fn live_ids(&self, kind: Entity) -> Vec<Id> {
        match kind {
            Entity::User => self.users.keys().copied().collect(),
            Entity::Group => self.groups.iter().copied().collect(),
            Entity::Space => self.spaces.iter().copied().collect(),
            _ => self.providers.iter().copied().collect(),
        }
    }

    /// Live and deleted ids of a kind, and [`NEVER`].
    fn candidates(&self, kind: Entity) -> Vec<Id> {
        let mut ids: Vec<Id> = self.known[kind_index(kind)].iter().copied().collect();
        ids.push(NEVER);
        ids
    }

    fn pick(&self, kind: Entity, input: &mut Input<'_>) -> Id {
        let ids = self.candidates(kind);
        ids[input.below(ids.len())]
    }

    fn fresh(&mut self) -> Id {
        self.counter += 1;
        Id(*blake3::hash(&self.counter.to_le_bytes()).as_bytes())
    }

    /// An id for a new entity: fresh, a deleted one of the kind, or a live one.
    fn new_id(&mut self, kind: Entity, input: &mut Input<'_>) -> Id {
        let choice = input.byte() % 4;
        let pool: Vec<Id> = match choice {
            2 => self.known[kind_index(kind)]
                .iter()
                .filter(|id| !self.is_live(kind, id))
                .copied()
                .collect(),
            3 => self.live_ids(kind),
            _ => Vec::new(),
        };
        if pool.is_empty() {
            self.fresh()
        } else {
            pool[input.below(pool.len())]
        }
    }

    fn add(&mut self, kind: Entity, id: Id) {
        self.known[kind_index(kind)].insert(id);
        match kind {
            Entity::Group => {
                self.groups.insert(id);
            }
            Entity::Space => {
                self.spaces.insert(id);
            }
            Entity::Provider => {
                self.providers.insert(id);
            }
            _ => unreachable!("users are added with their names"),
        }
    }

    /// Groups the user reaches: direct groups and all their ancestors.
    fn reach(&self, user: &Id) -> BTreeSet<Id> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<Id> = self
            .gu
            .keys()
            .filter(|(_, u)| u == user)
            .map(|(g, _)| *g)
            .collect();
        while let Some(g) = todo.pop() {
            if seen.insert(g) {
                todo.extend(self.gc.keys().filter(|(_, c)| *c == g).map(|(p, _)| *p));
            }
        }
        seen
    }

    /// The group and every group below it.
    fn descendants(&self, group: &Id) -> BTreeSet<Id> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![*group];
        while let Some(g) = todo.pop() {
            if seen.insert(g) {
                todo.extend(self.gc.keys().filter(|(p, _)| *p == g).map(|(_, c)| *c));
            }
        }
        seen
    }

    fn effective_group_users(&self, group: &Id) -> BTreeSet<Id> {
        let below = self.descendants(group);
        self.gu
            .keys()
            .filter(|(g, _)| below.contains(g))
            .map(|(_, u)| *u)
            .collect()
    }

    fn effective_space_users(&self, space: &Id) -> BTreeSet<Id> {
        let mut users: BTreeSet<Id> = self
            .su
            .keys()
            .filter(|(s, _)| s == space)
            .map(|(_, u)| *u)
            .collect();
        for (_, g) in self.sg.keys().filter(|(s, _)| s == space) {
            users.extend(self.effective_group_users(g));
        }
        users
    }

    fn effective_space_privileges(&self, user: &Id, space: &Id) -> SpacePrivileges {
        let mut p = self.su.get(&(*space, *user)).copied().unwrap_or_default();
        for g in self.reach(user) {
            if let Some(q) = self.sg.get(&(*space, g)) {
                p = p.union(*q);
            }
        }
        p
    }

    fn effective_group_privileges(&self, user: &Id, group: &Id) -> GroupPrivileges {
        let mut p = self.gu.get(&(*group, *user)).copied().unwrap_or_default();
        for g in self.reach(user) {
            if let Some(q) = self.gc.get(&(*group, g)) {
                p = p.union(*q);
            }
        }
        p
    }

    /// Removes an entity, its edges and the tokens minted for it.
    fn delete(&mut self, kind: Entity, id: &Id) {
        match kind {
            Entity::User => {
                self.users.remove(id);
                self.gu.retain(|(_, u), _| u != id);
                self.su.retain(|(_, u), _| u != id);
            }
            Entity::Group => {
                self.groups.remove(id);
                self.gu.retain(|(g, _), _| g != id);
                self.gc.retain(|(p, c), _| p != id && c != id);
                self.sg.retain(|(_, g), _| g != id);
            }
            Entity::Space => {
                self.spaces.remove(id);
                self.su.retain(|(s, _), _| s != id);
                self.sg.retain(|(s, _), _| s != id);
                self.sp.retain(|(s, _), _| s != id);
            }
            _ => {
                self.providers.remove(id);
                self.sp.retain(|(_, p), _| p != id);
            }
        }
        let doomed: Vec<Id> = self
            .tokens
            .iter()
            .filter(|(_, t)| t.target == *id)
            .map(|(k, _)| *k)
            .collect();
        for k in doomed {
            self.forget_token(&k);
        }
    }

    fn forget_token(&mut self, id: &Id) {
        if let Some(t) = self.tokens.remove(id) {
            self.gone.push((*id, t.token));
        }
    }
}

/// What an operation is expected to fail with.
#[derive(Debug)]
enum Want {
    NotFound(Entity),
    AlreadyExists(Entity),
    Cycle,
    Invalid,
    Token(TokenError),
}

fn is(e: &Error, want: &Want) -> bool {
    match (e, want) {
        (Error::NotFound(a), Want::NotFound(b)) => a == b,
        (Error::AlreadyExists(a), Want::AlreadyExists(b)) => a == b,
        (Error::Cycle, Want::Cycle) => true,
        (Error::Invalid(_), Want::Invalid) => true,
        (Error::Token(a), Want::Token(b)) => a == b,
        _ => false,
    }
}

/// Asserts that `got` is the expected outcome: `Ok` when `want` is `None`.
#[track_caller]
fn expect<T: Debug>(op: &str, got: &Result<T>, want: Option<Want>) {
    match (got, &want) {
        (Ok(_), None) => {}
        (Err(e), Some(w)) if is(e, w) => {}
        _ => panic!("store_ops: {op}: got {got:?}, the model expects {want:?}"),
    }
}

/// One relation of the store and its edges in the model.
trait Rel {
    type V: ModelValue;
    fn rel() -> Relation<Self::V>;
    fn edges(m: &Model) -> &Edges<Self::V>;
    fn edges_mut(m: &mut Model) -> &mut Edges<Self::V>;
    fn name() -> &'static str;
}

macro_rules! rel {
    ($ty:ident, $v:ty, $rel:ident, $field:ident) => {
        struct $ty;
        impl Rel for $ty {
            type V = $v;
            fn rel() -> Relation<$v> {
                $rel
            }
            fn edges(m: &Model) -> &Edges<$v> {
                &m.$field
            }
            fn edges_mut(m: &mut Model) -> &mut Edges<$v> {
                &mut m.$field
            }
            fn name() -> &'static str {
                stringify!($rel)
            }
        }
    };
}

rel!(Gu, GroupPrivileges, GROUP_USERS, gu);
rel!(Gc, GroupPrivileges, GROUP_CHILDREN, gc);
rel!(Su, SpacePrivileges, SPACE_USERS, su);
rel!(Sg, SpacePrivileges, SPACE_GROUPS, sg);
rel!(Sp, Support, SPACE_PROVIDERS, sp);

fn put_relation<R: Rel>(store: &Store, m: &mut Model, input: &mut Input<'_>) {
    let r = R::rel();
    let a = m.pick(r.a, input);
    let b = m.pick(r.b, input);
    let v = R::V::from_input(input);
    let got = store.put_relation(&r, &a, &b, &v);
    let op = format!("put {}", R::name());
    if !m.is_live(r.a, &a) {
        expect(&op, &got, Some(Want::NotFound(r.a)));
    } else if !m.is_live(r.b, &b) {
        expect(&op, &got, Some(Want::NotFound(r.b)));
    } else if r.fwd == TreeName::GroupChildren && (a == b || m.descendants(&b).contains(&a)) {
        expect(&op, &got, Some(Want::Cycle));
    } else {
        let is_new = R::edges_mut(m).insert((a, b), v).is_none();
        expect(&op, &got, None);
        assert_eq!(got.ok(), Some(is_new), "store_ops: {op}: is_new");
    }
    assert_eq!(
        store.relation(&r, &a, &b).ok().flatten(),
        R::edges(m).get(&(a, b)).copied(),
        "store_ops: {op}: stored value"
    );
}

fn remove_relation<R: Rel>(store: &Store, m: &mut Model, input: &mut Input<'_>) {
    let r = R::rel();
    let a = m.pick(r.a, input);
    let b = m.pick(r.b, input);
    let existed = R::edges_mut(m).remove(&(a, b)).is_some();
    let got = store.remove_relation(&r, &a, &b);
    let op = format!("remove {}", R::name());
    expect(&op, &got, None);
    assert_eq!(got.ok(), Some(existed), "store_ops: {op}: existed");
}

fn update_relation<R: Rel>(store: &Store, m: &mut Model, input: &mut Input<'_>) {
    let r = R::rel();
    let a = m.pick(r.a, input);
    let b = m.pick(r.b, input);
    let v = R::V::from_input(input);
    let got = store.update_relation(&r, &a, &b, |_| v);
    let op = format!("update {}", R::name());
    match R::edges_mut(m).get_mut(&(a, b)) {
        Some(old) => {
            *old = v;
            expect(&op, &got, None);
            assert_eq!(got.ok(), Some(v), "store_ops: {op}: new value");
        }
        None => expect(&op, &got, Some(Want::NotFound(Entity::Relation))),
    }
}

/// Listings of one relation from both ends, whole and page by page.
fn compare_relation<R: Rel>(store: &Store, m: &Model) {
    let r = R::rel();
    let edges = R::edges(m);
    for a in m.candidates(r.a) {
        let want: Vec<(Id, R::V)> = edges
            .iter()
            .filter(|((x, _), _)| *x == a)
            .map(|((_, b), v)| (*b, *v))
            .collect();
        let got = store
            .members(&r, &a, None, PAGE_MAX)
            .expect("store_ops: members");
        assert_eq!(got, want, "store_ops: members of {} {a}", R::name());
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .members(&r, &a, after, 2)
                .expect("store_ops: members page");
            after = page.last().map(|(id, _)| *id);
            let n = page.len();
            paged.extend(page);
            if n < 2 {
                break;
            }
        }
        assert_eq!(paged, want, "store_ops: paged members of {} {a}", R::name());
    }
    for b in m.candidates(r.b) {
        let want: Vec<Id> = edges
            .keys()
            .filter(|(_, y)| *y == b)
            .map(|(a, _)| *a)
            .collect();
        let got = store
            .memberships(&r, &b, None, PAGE_MAX)
            .expect("store_ops: memberships");
        assert_eq!(got, want, "store_ops: memberships in {} of {b}", R::name());
        if let Some(first) = want.first() {
            let rest = store
                .memberships(&r, &b, Some(*first), PAGE_MAX)
                .expect("store_ops: memberships page");
            assert_eq!(
                rest,
                want[1..],
                "store_ops: memberships in {} of {b} after {first}",
                R::name()
            );
        }
    }
}

/// Everything the store can be asked, against the model.
fn compare(store: &Store, m: &Model) {
    // Entities.
    let users = store.users(None, PAGE_MAX).expect("store_ops: users");
    let want: Vec<(Id, String)> = m.users.iter().map(|(k, v)| (*k, v.clone())).collect();
    let got: Vec<(Id, String)> = users.into_iter().map(|(k, u)| (k, u.name)).collect();
    assert_eq!(got, want, "store_ops: users");
    for (kind, page) in [
        (Entity::Group, store.groups(None, PAGE_MAX).map(keys_of)),
        (Entity::Space, store.spaces(None, PAGE_MAX).map(keys_of)),
        (
            Entity::Provider,
            store.providers(None, PAGE_MAX).map(keys_of),
        ),
    ] {
        let got = page.expect("store_ops: entity listing");
        assert_eq!(got, m.live_ids(kind), "store_ops: {kind} listing");
    }
    for i in 0..16 {
        let (name, _) = user_name(i);
        let want = m.users.iter().find(|(_, n)| **n == name).map(|(id, _)| *id);
        let got = store
            .user_by_name(&name)
            .expect("store_ops: user_by_name")
            .map(|(id, _)| id);
        assert_eq!(got, want, "store_ops: user_by_name({name:?})");
    }
    for kind in KINDS {
        for id in m.candidates(kind) {
            assert_eq!(
                store.exists(kind, &id).expect("store_ops: exists"),
                m.is_live(kind, &id),
                "store_ops: exists({kind}, {id})"
            );
        }
    }

    // Relations.
    compare_relation::<Gu>(store, m);
    compare_relation::<Gc>(store, m);
    compare_relation::<Su>(store, m);
    compare_relation::<Sg>(store, m);
    compare_relation::<Sp>(store, m);

    // Effective membership and privileges.
    let users = m.candidates(Entity::User);
    let groups = m.candidates(Entity::Group);
    let spaces = m.candidates(Entity::Space);
    for u in &users {
        let reach: BTreeSet<Id> = store
            .user_reach(u)
            .expect("store_ops: user_reach")
            .iter()
            .copied()
            .collect();
        let want_reach = m.reach(u);
        assert_eq!(reach, want_reach, "store_ops: groups reached by {u}");
        for g in &groups {
            assert_eq!(
                store
                    .effective_group_privileges(u, g)
                    .expect("store_ops: effective_group_privileges"),
                m.effective_group_privileges(u, g),
                "store_ops: effective privileges of user {u} in group {g}"
            );
            assert_eq!(
                store
                    .is_effective_group_member(u, g)
                    .expect("store_ops: is_effective_group_member"),
                want_reach.contains(g),
                "store_ops: effective membership of user {u} in group {g}"
            );
        }
        for s in &spaces {
            assert_eq!(
                store
                    .effective_space_privileges(u, s)
                    .expect("store_ops: effective_space_privileges"),
                m.effective_space_privileges(u, s),
                "store_ops: effective privileges of user {u} in space {s}"
            );
        }
    }
    for g in &groups {
        assert_eq!(
            store
                .effective_group_users(g)
                .expect("store_ops: effective_group_users"),
            m.effective_group_users(g),
            "store_ops: effective users of group {g}"
        );
        let below: BTreeSet<Id> = store
            .descendants_of_group(g)
            .expect("store_ops: descendants_of_group")
            .into_iter()
            .collect();
        assert_eq!(
            below,
            m.descendants(g),
            "store_ops: descendants of group {g}"
        );
    }
    for s in &spaces {
        assert_eq!(
            store
                .effective_space_users(s)
                .expect("store_ops: effective_space_users"),
            m.effective_space_users(s),
            "store_ops: effective users of space {s}"
        );
    }

    // Tokens.
    assert_eq!(
        store.token_count().expect("store_ops: token_count"),
        m.tokens.len(),
        "store_ops: token_count"
    );
    let mut targets: BTreeSet<Id> = KINDS.iter().flat_map(|k| m.candidates(*k)).collect();
    targets.extend(m.tokens.values().map(|t| t.target));
    for target in targets {
        let got: Vec<(Id, TokState)> = store
            .tokens_of(&target, None, PAGE_MAX)
            .expect("store_ops: tokens_of")
            .into_iter()
            .map(|(id, rec)| (id, state_of(&rec)))
            .collect();
        let want: Vec<(Id, TokState)> = m
            .tokens
            .iter()
            .filter(|(_, t)| t.target == target)
            .map(|(id, t)| (*id, t.state))
            .collect();
        assert_eq!(got, want, "store_ops: tokens of {target}");
    }
    for (id, _) in &m.gone {
        assert!(
            store.token(id).expect("store_ops: token").is_none(),
            "store_ops: token {id} outlived its target or the purge"
        );
    }

    let problems = store.check().expect("store_ops: check");
    assert!(
        problems.is_empty(),
        "store_ops: Store::check found {problems:?}"
    );
}

fn keys_of<T>(page: Vec<(Id, T)>) -> Vec<Id> {
    page.into_iter().map(|(k, _)| k).collect()
}

fn state_of(rec: &TokenRecord) -> TokState {
    match rec.state {
        TokenState::Active => TokState::Active,
        TokenState::Consumed { .. } => TokState::Consumed,
        TokenState::Revoked { .. } => TokState::Revoked,
    }
}

fn target_kind(kind: TokenKind) -> Entity {
    match kind {
        TokenKind::SpaceSupport => Entity::Space,
        TokenKind::SpaceCreate => Entity::Group,
        TokenKind::Access => Entity::User,
        TokenKind::Provider => Entity::Provider,
    }
}

/// A token to use: a live one or one whose record is gone (`None` if none).
fn pick_token(m: &Model, input: &mut Input<'_>) -> Option<(Id, String)> {
    let mut all: Vec<(Id, String)> = m
        .tokens
        .iter()
        .map(|(id, t)| (*id, t.token.clone()))
        .collect();
    all.extend(m.gone.iter().cloned());
    if all.is_empty() {
        return None;
    }
    Some(all.swap_remove(input.below(all.len())))
}

/// Why the model says a token cannot be used now, if it can't.
fn token_refusal(m: &Model, id: &Id) -> Option<TokenError> {
    match m.tokens.get(id) {
        None => Some(TokenError::Unknown),
        Some(t) if t.expired => Some(TokenError::Expired),
        Some(t) => match t.state {
            TokState::Active => None,
            TokState::Consumed => Some(TokenError::Consumed),
            TokState::Revoked => Some(TokenError::Revoked),
        },
    }
}

/// Fuzzes the store and the minter against a plain model.
///
/// The input is a sequence of operations (at most 64, at most 8 live
/// entities of each kind and 16 live tokens): creating users, groups, spaces
/// and providers (fresh ids, reused ids of deleted entities, or ids in use),
/// putting, updating and removing relations of every kind, deleting
/// entities, minting, revoking, verifying and consuming tokens, purging, and
/// full comparisons. Every result is checked against the model as the
/// operation runs; the full comparison (listings, effective privileges,
/// effective members, tokens by target, `Store::check`) runs when the input
/// asks and once at the end.
///
/// Encoding: one opcode byte (`% 16`) then its arguments; a *pick* is a
/// little-endian u16 indexing the ids ever used for that kind (sorted, live
/// or deleted) followed by one id that never existed; a *new id* is a byte
/// (`% 4`: 0, 1 fresh; 2 a deleted id of the kind, 3 a live one, each then
/// followed by a u16 index when there is such an id, else fresh);
/// *privileges* are a u16 bit set, a *support* a u16 (size in MiB) and a byte.
///
/// | op | meaning | arguments |
/// |---|---|---|
/// | 0 | insert user | new id, name byte (`% 16`, a table of valid and invalid names) |
/// | 1, 2 | insert group, space | new id, flags (`% 8 == 0`: blank name; `& 0x10`: a creator pick follows) |
/// | 3 | insert provider | new id |
/// | 4-6 | relation | byte: relation `% 5` (group users, group children, space users, space groups, space providers), action `/ 5 % 3` (put, remove, update); pick a, pick b; value for put and update |
/// | 7, 8 | delete | kind byte (`% 4`: user, group, space, provider), pick |
/// | 9 | mint | kind byte (`% 4`: support, create, access, provider), target pick, flags (`& 1 == 0`: already expired), issuer pick |
/// | 10, 11 | revoke, verify | token index (u16; live tokens by id, then gone ones) |
/// | 12 | consume | token index, kind byte, provider pick |
/// | 13 | purge expired | limit byte (`% 4`) |
/// | 14, 15 | full comparison | none |
pub fn store_ops(data: &[u8]) {
    let store = Arc::new(Store::memory());
    let minter = Minter::new(store.clone(), MinterConfig::default()).expect("store_ops: minter");
    let mut m = Model::default();
    let mut input = Input::new(data);
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        match input.byte() % 16 {
            0 if m.count(Entity::User) < SLOTS => {
                let id = m.new_id(Entity::User, &mut input);
                let (name, valid) = user_name(input.byte());
                let user = User {
                    name: name.clone(),
                    password_hash: "$argon2id$fuzz".into(),
                    zone_privileges: ZonePrivileges::empty(),
                    created: 0,
                };
                let got = store.insert_user(id, &user);
                if !valid {
                    expect("insert_user", &got, Some(Want::Invalid));
                } else if m.users.contains_key(&id) || m.users.values().any(|n| *n == name) {
                    expect("insert_user", &got, Some(Want::AlreadyExists(Entity::User)));
                } else {
                    expect("insert_user", &got, None);
                    m.known[kind_index(Entity::User)].insert(id);
                    m.users.insert(id, name);
                }
            }
            op @ (1 | 2) => {
                let kind = if op == 1 {
                    Entity::Group
                } else {
                    Entity::Space
                };
                if m.count(kind) >= SLOTS {
                    continue;
                }
                let id = m.new_id(kind, &mut input);
                let flags = input.byte();
                let name = if flags % 8 == 0 { " " } else { "team" };
                let creator = (flags & 0x10 != 0).then(|| m.pick(Entity::User, &mut input));
                let got = if kind == Entity::Group {
                    store.insert_group(id, name, GroupType::ALL[usize::from(flags >> 6)], creator)
                } else {
                    store.insert_space(id, name, creator)
                };
                let op = if kind == Entity::Group {
                    "insert_group"
                } else {
                    "insert_space"
                };
                if name.trim().is_empty() {
                    expect(op, &got, Some(Want::Invalid));
                } else if m.is_live(kind, &id) {
                    expect(op, &got, Some(Want::AlreadyExists(kind)));
                } else if creator.is_some_and(|u| !m.users.contains_key(&u)) {
                    expect(op, &got, Some(Want::NotFound(Entity::User)));
                } else {
                    expect(op, &got, None);
                    m.add(kind, id);
                    if let Some(u) = creator {
                        if kind == Entity::Group {
                            m.gu.insert((id, u), GroupPrivileges::all());
                        } else {
                            m.su.insert((id, u), SpacePrivileges::all());
                        }
                    }
                }
                assert_eq!(
                    store.exists(kind, &id).ok(),
                    Some(m.is_live(kind, &id)),
                    "store_ops: {op} left a half-made entity"
                );
            }
            3 if m.count(Entity::Provider) < SLOTS => {
                let id = m.new_id(Entity::Provider, &mut input);
                let got = store.insert_provider(id, "provider", "p.example.org");
                if m.is_live(Entity::Provider, &id) {
                    expect(
                        "insert_provider",
                        &got,
                        Some(Want::AlreadyExists(Entity::Provider)),
                    );
                } else {
                    expect("insert_provider", &got, None);
                    m.add(Entity::Provider, id);
                }
            }
            4..=6 => {
                let op = input.byte();
                let which = op % 5;
                let action = op / 5 % 3;
                match (action, which) {
                    (0, 0) => put_relation::<Gu>(&store, &mut m, &mut input),
                    (0, 1) => put_relation::<Gc>(&store, &mut m, &mut input),
                    (0, 2) => put_relation::<Su>(&store, &mut m, &mut input),
                    (0, 3) => put_relation::<Sg>(&store, &mut m, &mut input),
                    (0, _) => put_relation::<Sp>(&store, &mut m, &mut input),
                    (1, 0) => remove_relation::<Gu>(&store, &mut m, &mut input),
                    (1, 1) => remove_relation::<Gc>(&store, &mut m, &mut input),
                    (1, 2) => remove_relation::<Su>(&store, &mut m, &mut input),
                    (1, 3) => remove_relation::<Sg>(&store, &mut m, &mut input),
                    (1, _) => remove_relation::<Sp>(&store, &mut m, &mut input),
                    (_, 0) => update_relation::<Gu>(&store, &mut m, &mut input),
                    (_, 1) => update_relation::<Gc>(&store, &mut m, &mut input),
                    (_, 2) => update_relation::<Su>(&store, &mut m, &mut input),
                    (_, 3) => update_relation::<Sg>(&store, &mut m, &mut input),
                    (_, _) => update_relation::<Sp>(&store, &mut m, &mut input),
                }
            }
            7 | 8 => {
                let kind = KINDS[usize::from(input.byte()) % 4];
                let id = m.pick(kind, &mut input);
                let got = store.delete(kind, &id);
                if m.is_live(kind, &id) {
                    expect("delete", &got, None);
                    m.delete(kind, &id);
                } else {
                    expect("delete", &got, Some(Want::NotFound(kind)));
                }
                assert_eq!(
                    store.exists(kind, &id).ok(),
                    Some(false),
                    "store_ops: deleted {kind} still exists"
                );
            }
            9 if m.tokens.len() < MAX_TOKENS => {
                let kind = TokenKind::ALL[usize::from(input.byte()) % 4];
                let target = m.pick(target_kind(kind), &mut input);
                let flags = input.byte();
                let expired = flags & 1 == 0;
                let lifetime = if expired { 0 } else { 86_400 };
                let issuer = Subject::User(m.pick(Entity::User, &mut input));
                let minted = minter
                    .mint_for(kind, target, issuer, lifetime)
                    .expect("store_ops: mint");
                assert_eq!(minted.record.target, target, "store_ops: minted target");
                m.tokens.insert(
                    minted.id,
                    ModelToken {
                        token: minted.token,
                        kind,
                        target,
                        expires: minted.record.expires,
                        expired,
                        state: TokState::Active,
                    },
                );
            }
            10 => {
                let Some((id, _)) = pick_token(&m, &mut input) else {
                    continue;
                };
                let got = minter.revoke(&id);
                match m.tokens.get_mut(&id) {
                    Some(t) => {
                        expect("revoke", &got, None);
                        if t.state == TokState::Active {
                            t.state = TokState::Revoked;
                        }
                        assert_eq!(
                            got.ok().map(|r| state_of(&r)),
                            Some(t.state),
                            "store_ops: revoke: state"
                        );
                    }
                    None => expect("revoke", &got, Some(Want::NotFound(Entity::Token))),
                }
            }
            11 => {
                let Some((id, tok)) = pick_token(&m, &mut input) else {
                    continue;
                };
                let got = minter.verify(&tok);
                match token_refusal(&m, &id) {
                    Some(e) => expect("verify", &got, Some(Want::Token(e))),
                    None => {
                        expect("verify", &got, None);
                        let v = got.expect("checked");
                        let t = &m.tokens[&id];
                        assert_eq!(v.id, id, "store_ops: verify: id");
                        assert_eq!(v.record.kind, t.kind, "store_ops: verify: kind");
                        assert_eq!(v.record.target, t.target, "store_ops: verify: target");
                    }
                }
            }
            12 => {
                let Some((id, tok)) = pick_token(&m, &mut input) else {
                    continue;
                };
                let kind = TokenKind::ALL[usize::from(input.byte()) % 4];
                let provider = m.pick(Entity::Provider, &mut input);
                let got = minter.consume(&tok, kind, provider, |_, _, _: &mut Batch| Ok(()));
                match token_refusal(&m, &id) {
                    Some(e) => expect("consume", &got, Some(Want::Token(e))),
                    None if m.tokens[&id].kind != kind => {
                        expect("consume", &got, Some(Want::Token(TokenError::WrongType)))
                    }
                    None => {
                        expect("consume", &got, None);
                        if let Some(t) = m.tokens.get_mut(&id) {
                            t.state = TokState::Consumed;
                        }
                    }
                }
            }
            13 => {
                let limit = usize::from(input.byte() % 4);
                let mut order: Vec<(u64, Id)> =
                    m.tokens.iter().map(|(id, t)| (t.expires, *id)).collect();
                order.sort();
                order.truncate(limit);
                let got = store.purge_expired(u64::MAX, limit);
                expect("purge_expired", &got, None);
                assert_eq!(
                    got.ok(),
                    Some(order.len()),
                    "store_ops: purge_expired count"
                );
                for (_, id) in order {
                    m.forget_token(&id);
                }
            }
            14 | 15 => compare(&store, &m),
            _ => {}
        }
    }
    compare(&store, &m);
}
