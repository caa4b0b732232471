//! Fuzzing entry points.
//!
//! Each function takes arbitrary bytes, drives one part of ozmint with them
//! and checks invariants that must hold for every input. None of them panics
//! by design: a panic is a bug in the code under test, or in an invariant
//! stated here (each assertion says which). They are called by the
//! cargo-fuzz targets in `fuzz/` (one line each) and replayed over the
//! committed corpus and regression inputs by `tests/it/fuzz_regressions.rs`.
//!
//! | entry point | drives | checks |
//! |---|---|---|
//! | [`token`] | `token::wire`, `Zone::{verify, examine_token, authenticate}` | wire round trip; only the minted token (or a holder's valid attenuation of it) verifies; examination and authentication agree with verification |
//! | [`http_request`] | `http::routes`, `http::credentials`, `http::json_depth` | routing agrees with the endpoint table, never routes dot segments; one credential at most; JSON depth is exact |
//! | [`decode`] | `codec::fuzz_decode` | no panic, decoded records re-encode and decode to themselves |
//! | [`store_ops`] | the operations layer (`Zone` methods with real `Caller`s) through two instances on one memory engine | every result (error kinds included), listing, effective privilege and member agrees with a plain model; `Store::check` finds nothing |
//!
//! The entry points are synchronous (libFuzzer calls them); the async
//! library runs on one current-thread tokio runtime per thread, built once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use hyper::Method;

use ozmint::codec;
use ozmint::engine::memory::MemoryEngine;
use ozmint::engine::Engine;
use ozmint::error::{Entity, Error, Forbidden, Result};
use ozmint::http::routes::{self, Endpoint, PREFIX};
use ozmint::model::{
    now, Group, GroupPrivilege, GroupPrivileges, GroupType, Id, PrivSet, Privilege, Provider,
    RootKey, Space, SpacePrivilege, SpacePrivileges, Subject, Support, TokenKind, TokenRecord,
    TokenState, User, ZonePrivilege,
};
use ozmint::ops::auth::{AuthError, AuthFailure};
use ozmint::ops::containers::{Container, Effective};
use ozmint::ops::members::{MemberPrivileges, Members, NamedChange, PrivilegeChange};
use ozmint::ops::tokens::{InviteTarget, Minted};
use ozmint::ops::{Caller, Credentials, Listed, PageRequest, Zone, ZoneConfig};
use ozmint::store::schema::{StoredValue, ROOT_KEYS, TOKENS};
use ozmint::store::{
    Relation, GROUP_CHILDREN_REL, GROUP_USERS_REL, PAGE_MAX, SPACE_GROUPS_REL, SPACE_PROVIDERS_REL,
    SPACE_USERS_REL,
};
use ozmint::token::caveat::Caveat;
use ozmint::token::wire::{self, RawToken, MAX_CAVEATS, MAX_TOKEN_LEN};
use ozmint::token::{Lifetimes, TokenError};
use ozmint::{DurabilityMode, Store};

thread_local! {
    /// The runtime the entry points drive the library on: current-thread,
    /// built once per thread (libFuzzer calls from one thread). Its clock is
    /// paused, so the backoff before a transaction's retry takes no time.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("fuzzing: a current-thread tokio runtime");
}

/// Runs a future to completion on this thread's runtime.
fn block_on<F: Future>(f: F) -> F::Output {
    RUNTIME.with(|rt| rt.block_on(f))
}

/// The peer address of authentications.
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The password hash of every fuzzed user: never checked (no argon2 here).
const FAKE_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ZnV6emluZw$ZnV6emluZ2Zhc3Q";

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
/// The user the fixture token authenticates (a zone token manager, so that
/// it may examine every token).
const FIXTURE_USER: Id = Id([0x22; 32]);

/// One process-wide zone over a memory store holding one active access
/// token, minted deterministically (fixed root key, identifier and times),
/// and a revoked sibling.
struct TokenFixture {
    zone: Zone,
    /// The fixture user, who may manage every token.
    admin: Caller,
    token: String,
    raw: RawToken,
}

fn token_fixture() -> &'static TokenFixture {
    static FIXTURE: OnceLock<TokenFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| block_on(build_token_fixture()))
}

/// Writes a token record with its indexes, as a mint does.
async fn put_token(store: &Store, id: Id, record: &TokenRecord) {
    store
        .transact(|mut tx| async move {
            Store::insert_token_in(&mut tx, &id, record)?;
            Ok(tx.done(()))
        })
        .await
        .expect("fixture: token record");
}

async fn build_token_fixture() -> TokenFixture {
    let store = Arc::new(Store::memory().await.expect("fixture: memory store"));
    // The root key goes in before the zone exists, so the zone keeps it
    // instead of making a random one.
    let root = RootKey {
        secret: [0x5a; 32],
        created: FIXTURE_CREATED,
        retired: None,
    };
    let root = &root;
    store
        .transact(|mut tx| async move {
            assert!(
                !tx.exists(&ROOT_KEYS, &1).await?,
                "fixture: a fresh store already had a root key"
            );
            tx.put(&ROOT_KEYS, &1, root)?;
            Ok(tx.done(()))
        })
        .await
        .expect("fixture: root key");
    let user = User {
        name: "fixture".into(),
        password_hash: FAKE_HASH.into(),
        zone_privileges: [ZonePrivilege::TokensManage].into_iter().collect(),
        created: FIXTURE_CREATED,
    };
    store
        .insert_user(FIXTURE_USER, &user)
        .await
        .expect("fixture: user");
    let zone = Zone::new(store.clone(), ZoneConfig::default())
        .await
        .expect("fixture: zone");
    let record = TokenRecord {
        kind: TokenKind::Access,
        target: FIXTURE_USER,
        issuer: Subject::User(FIXTURE_USER),
        key_id: 1,
        created: FIXTURE_CREATED,
        expires: FIXTURE_EXPIRES,
        state: TokenState::Active,
    };
    let id = Id([0x11; 32]);
    put_token(&store, id, &record).await;
    let token = zone
        .render(&id, &record)
        .await
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
    put_token(&store, Id([0x33; 32]), &revoked).await;
    let raw = wire::parse(&token).expect("fixture: the minted token parses");
    assert!(
        zone.verify(&token).await.is_ok(),
        "fixture: the minted token verifies"
    );
    TokenFixture {
        zone,
        admin: Caller::user(FIXTURE_USER),
        token,
        raw,
    }
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

/// Whether an added caveat repeats one the fixture token was minted with
/// (`tokenType = access_token`, or `time < N` with N its expiry): such a
/// caveat restricts nothing, so a token carrying only those is not
/// attenuated.
fn same_as_minted(c: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(c) else {
        return false;
    };
    if s == "tokenType = access_token" {
        return true;
    }
    match s.strip_prefix("time < ") {
        Some(n) if !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit()) => {
            n.parse::<u64>() == Ok(FIXTURE_EXPIRES)
        }
        _ => false,
    }
}

/// Verifies `tok` with the fixture zone and checks that a token that
/// verifies is the fixture token, possibly extended by caveats that all hold
/// (attenuation is the only change possible without the root key); that
/// examining it finds what verification found, and that authenticating with
/// it succeeds exactly when it verifies, as the fixture user, restricted
/// exactly when a caveat was added. Returns the parsed token if it verified.
fn check_verify(fx: &TokenFixture, tok: &str) -> Option<RawToken> {
    let before = now();
    let (examined, verified, authenticated) = block_on(async {
        let examined = fx.zone.examine_token(&fx.admin, tok).await;
        let verified = fx.zone.verify(tok).await;
        let creds = Some(Credentials::Token(tok.to_owned()));
        let authenticated = fx.zone.authenticate(creds, LOCALHOST).await;
        (examined, verified, authenticated)
    });
    // An added `time <` caveat may expire between the three calls: judge
    // their agreement only when no second passed.
    if now() == before {
        match &verified {
            Ok(_) => {
                assert!(
                    matches!(&examined, Ok(e) if e.error.is_none()),
                    "examine: disagrees with verify, which accepts the token: {examined:?}"
                );
                assert!(
                    matches!(&authenticated, Ok(c) if c.subject == Subject::User(FIXTURE_USER)),
                    "authenticate: disagrees with verify, which accepts the token: {authenticated:?}"
                );
            }
            Err(Error::Token(e)) => {
                assert!(
                    match &examined {
                        Ok(x) => x.error == Some(*e),
                        Err(Error::Token(x)) => x == e,
                        Err(_) => false,
                    },
                    "examine: disagrees with verify, which refuses the token with {e:?}: \
                     {examined:?}"
                );
                assert!(
                    matches!(&authenticated, Err(AuthFailure::Auth(AuthError::BadToken(x))) if x == e),
                    "authenticate: disagrees with verify, which refuses the token with {e:?}: \
                     {authenticated:?}"
                );
            }
            Err(e) => panic!("verify: failed with {e:?}, not a token error"),
        }
    }
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
    let added = &raw.caveats[fx.raw.caveats.len()..];
    for c in added {
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
    if let Ok(caller) = &authenticated {
        let restricted = added.iter().any(|c| !same_as_minted(c));
        assert_eq!(
            caller.restricted,
            restricted,
            "authenticate: restricted is {} for added caveats {:?}",
            caller.restricted,
            added
                .iter()
                .map(|c| String::from_utf8_lossy(c))
                .collect::<Vec<_>>()
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
        | EffectiveUsers(_, a)
        | MyEffectiveGroup(a)
        | MyEffectiveSpace(a)
        | GroupParents(a)
        | GroupEffectiveParents(a)
        | GroupEffectiveSpaces(a)
        | SpaceEffectiveGroups(a) => vec![a.as_str()],
        Member(_, a, b) | MemberPrivileges(_, a, b) | EffectiveUserPrivileges(_, a, b) => {
            vec![a.as_str(), b.as_str()]
        }
        ClientTokens | Providers | ProviderSpaceSupport | ProviderSpaces | TokenExamine | Keys
        | Users | Me | MyPassword | MyGroups | MySpaces | Groups | Spaces | Backup
        | MyEffectiveGroups | MyEffectiveSpaces | MyEffectiveProviders | OpenApi => vec![],
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
    match ozmint::http::credentials(headers) {
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
    let depth = ozmint::http::json_depth(body);
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

fn decode_round_trip<T: codec::Record + PartialEq + Debug>(bytes: &[u8]) {
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
const MAX_TOKENS: usize = 24;
/// An id no entity ever has.
const NEVER: Id = Id([0xff; 32]);
/// An expiry for the caveat an attenuation adds: after every token's own.
const FAR_FUTURE: u64 = 4_000_000_000;

/// Entity kinds the model tracks, in a fixed order.
const KINDS: [Entity; 4] = [Entity::User, Entity::Group, Entity::Space, Entity::Provider];

fn kind_index(kind: Entity) -> usize {
    KINDS.iter().position(|k| *k == kind).unwrap_or(0)
}

use GroupPrivilege as GP;
use SpacePrivilege as SP;
use ZonePrivilege as ZP;

/// The model's privilege sets: bit `p.index()` for privilege `p`.
fn bit<P: Privilege>(p: P) -> u64 {
    1 << p.index()
}

fn bits_of<P: Privilege>(set: PrivSet<P>) -> u64 {
    set.iter().map(bit).fold(0, |a, b| a | b)
}

fn all_bits<P: Privilege>() -> u64 {
    P::ALL.iter().copied().map(bit).fold(0, |a, b| a | b)
}

fn set_of<P: Privilege>(bits: u64) -> PrivSet<P> {
    P::ALL
        .iter()
        .copied()
        .filter(|p| bits & bit(*p) != 0)
        .collect()
}

fn names_of<P: Privilege>(bits: u64) -> Vec<String> {
    P::ALL
        .iter()
        .filter(|p| bits & bit(**p) != 0)
        .map(|p| p.name().to_owned())
        .collect()
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

/// Group and space names: (name, valid).
fn container_name(i: u8) -> (String, bool) {
    match i % 8 {
        0 => (" ".into(), false),
        1 => ("x".repeat(257), false),
        2 => ("tab\there".into(), false),
        3 => ("x".repeat(256), true),
        4 => ("ünïcødé".into(), true),
        5 => ("lab".into(), true),
        _ => ("team".into(), true),
    }
}

/// Zone privileges a user is created with or changed by: mostly none, all,
/// or the few that open one kind of operation.
fn zone_profile(i: u8) -> u64 {
    let ps: &[ZP] = match i % 16 {
        1 => return all_bits::<ZP>(),
        2 => &[ZP::SpacesAddRelationships],
        3 => &[ZP::GroupsAddRelationships],
        4 => &[ZP::ListGroups, ZP::ListSpaces],
        5 => &[ZP::SetPrivileges],
        6 => &[ZP::UsersDelete, ZP::ListUsers, ZP::ViewPrivileges],
        7 => &[ZP::ProvidersCreate, ZP::ListProviders],
        8 => &[ZP::TokensManage],
        9 => &[ZP::GroupsAddMembers, ZP::GroupsRemoveMembers],
        10 => &[ZP::AddMemberToSpace, ZP::RemoveMemberFromSpace],
        11 => &[ZP::ListProvidersOfSpace],
        _ => &[],
    };
    ps.iter().copied().map(bit).fold(0, |a, b| a | b)
}

/// A page size: 1 to 3, or the largest.
fn page_limit(b: u8) -> usize {
    match b % 4 {
        3 => PAGE_MAX,
        n => usize::from(n) + 1,
    }
}

/// What a privileged operation needs: a privilege in a group or space, or
/// else a zone privilege if there is one.
#[derive(Clone, Copy, Debug)]
enum Need {
    Group(GP, Option<ZP>),
    Space(SP, Option<ZP>),
}

/// A kind of membership as the model states it (independently of
/// `ops::members`): which entities it joins, what each action needs, what
/// a new member gets.
struct Kind {
    members: Members,
    container: Entity,
    member: Entity,
    /// Whether the values are group privileges (else space privileges).
    group: bool,
    view: Need,
    add: Need,
    remove: Need,
    set: Need,
    default: u64,
}

const GROUP_VIEW: Need = Need::Group(GP::ViewData, Some(ZP::ListGroups));
const SPACE_VIEW: Need = Need::Space(SP::ViewData, Some(ZP::ListSpaces));

fn member_kind(b: u8) -> Kind {
    match b % 4 {
        0 => Kind {
            members: Members::GroupUsers,
            container: Entity::Group,
            member: Entity::User,
            group: true,
            view: GROUP_VIEW,
            add: Need::Group(GP::InviteUser, Some(ZP::GroupsAddMembers)),
            remove: Need::Group(GP::RemoveUser, Some(ZP::GroupsRemoveMembers)),
            set: Need::Group(GP::SetPrivileges, Some(ZP::SetPrivileges)),
            default: bit(GP::ViewData),
        },
        1 => Kind {
            members: Members::GroupChildren,
            container: Entity::Group,
            member: Entity::Group,
            group: true,
            view: GROUP_VIEW,
            add: Need::Group(GP::InviteGroup, Some(ZP::GroupsAddMembers)),
            remove: Need::Group(GP::RemoveGroup, Some(ZP::GroupsRemoveMembers)),
            set: Need::Group(GP::SetPrivileges, Some(ZP::SetPrivileges)),
            default: bit(GP::ViewData),
        },
        2 => Kind {
            members: Members::SpaceUsers,
            container: Entity::Space,
            member: Entity::User,
            group: false,
            view: SPACE_VIEW,
            add: Need::Space(SP::InviteUser, Some(ZP::AddMemberToSpace)),
            remove: Need::Space(SP::RemoveUser, Some(ZP::RemoveMemberFromSpace)),
            set: Need::Space(SP::SetPrivileges, Some(ZP::SetPrivileges)),
            default: bit(SP::ViewData) | bit(SP::WriteFiles),
        },
        _ => Kind {
            members: Members::SpaceGroups,
            container: Entity::Space,
            member: Entity::Group,
            group: false,
            view: SPACE_VIEW,
            add: Need::Space(SP::InviteGroup, Some(ZP::AddMemberToSpace)),
            remove: Need::Space(SP::RemoveGroup, Some(ZP::RemoveMemberFromSpace)),
            set: Need::Space(SP::SetPrivileges, Some(ZP::SetPrivileges)),
            default: bit(SP::ViewData) | bit(SP::WriteFiles),
        },
    }
}

/// Edges of a relation: `(a, b)` to privilege bits or a support size.
type Edges = BTreeMap<(Id, Id), u64>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokState {
    Active,
    /// Consumed by this provider.
    Consumed(Id),
    Revoked,
}

fn state_of(state: &TokenState) -> TokState {
    match state {
        TokenState::Active => TokState::Active,
        TokenState::Consumed { by, .. } => TokState::Consumed(*by),
        TokenState::Revoked { .. } => TokState::Revoked,
    }
}

struct MUser {
    name: String,
    zone: u64,
}

struct MTok {
    token: String,
    kind: TokenKind,
    target: Id,
    issuer: Subject,
    key: u32,
    expires: u64,
    /// Minted with lifetime 0: expired from the start.
    expired: bool,
    state: TokState,
}

/// The plain model: live entities, edges, token records and root keys.
#[derive(Default)]
struct Model {
    /// Every id ever created, by kind, in creation order (live or deleted):
    /// ids are random, so inputs pick them by position.
    known: [Vec<Id>; 4],
    users: BTreeMap<Id, MUser>,
    groups: BTreeMap<Id, (String, GroupType)>,
    spaces: BTreeMap<Id, String>,
    providers: BTreeSet<Id>,
    /// (group, user)
    gu: Edges,
    /// (parent, child)
    gc: Edges,
    /// (space, user)
    su: Edges,
    /// (space, group)
    sg: Edges,
    /// (space, provider): support size
    sp: Edges,
    /// Every token ever minted, in mint order (its record may be gone).
    minted: Vec<(Id, String)>,
    /// Token records in the store.
    tokens: BTreeMap<Id, MTok>,
    /// Root keys: id to retired.
    keys: BTreeMap<u32, bool>,
}

/// What an operation is expected to fail with.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    NotFound(Entity),
    AlreadyExists(Entity),
    Cycle,
    Invalid,
    Token(TokenError),
    Forbidden(Forbidden),
    CurrentKey,
    LastAdmin,
}

fn is(e: &Error, want: &Want) -> bool {
    match (e, want) {
        (Error::NotFound(a), Want::NotFound(b)) => a == b,
        (Error::AlreadyExists(a), Want::AlreadyExists(b)) => a == b,
        (Error::Cycle, Want::Cycle) => true,
        (Error::Invalid(_), Want::Invalid) => true,
        (Error::Token(a), Want::Token(b)) => a == b,
        (Error::Forbidden(a), Want::Forbidden(b)) => a == b,
        (Error::CurrentKey, Want::CurrentKey) => true,
        (Error::LastAdmin, Want::LastAdmin) => true,
        _ => false,
    }
}

/// `Ok(())` if `cond`, else the failure `w`.
fn need(cond: bool, w: Want) -> Result<(), Want> {
    if cond {
        Ok(())
    } else {
        Err(w)
    }
}

const PRIVILEGES: Want = Want::Forbidden(Forbidden::Privileges);

/// Whether to print every checked outcome to stderr (`STORE_OPS_TRACE=1`),
/// to see what an input does.
fn tracing() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("STORE_OPS_TRACE").is_some_and(|v| v == "1"))
}

/// Asserts that `got` succeeded exactly when the model expects, and failed
/// with the expected kind of error otherwise.
#[track_caller]
fn check<T: Debug, U: Debug>(op: &str, got: &Result<T>, want: &Result<U, Want>) {
    if tracing() {
        match got {
            Ok(_) => eprintln!("store_ops: {op}: ok"),
            Err(e) => eprintln!("store_ops: {op}: {e:?}"),
        }
    }
    match (got, want) {
        (Ok(_), Ok(_)) => {}
        (Err(e), Err(w)) if is(e, w) => {}
        _ => panic!("store_ops: {op}: got {got:?}, the model expects {want:?}"),
    }
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

    fn live(&self, kind: Entity, id: &Id) -> bool {
        match kind {
            Entity::User => self.users.contains_key(id),
            Entity::Group => self.groups.contains_key(id),
            Entity::Space => self.spaces.contains_key(id),
            _ => self.providers.contains(id),
        }
    }

    /// Live ids of a kind, in id order.
    fn live_ids(&self, kind: Entity) -> Vec<Id> {
        match kind {
            Entity::User => self.users.keys().copied().collect(),
            Entity::Group => self.groups.keys().copied().collect(),
            Entity::Space => self.spaces.keys().copied().collect(),
            _ => self.providers.iter().copied().collect(),
        }
    }

    /// Every id of a kind ever created, and [`NEVER`].
    fn candidates(&self, kind: Entity) -> Vec<Id> {
        let mut ids = self.known[kind_index(kind)].clone();
        ids.push(NEVER);
        ids
    }

    /// An id of a kind: one byte indexing [`Model::candidates`].
    fn pick(&self, kind: Entity, input: &mut Input<'_>) -> Id {
        let ids = self.candidates(kind);
        ids[usize::from(input.byte()) % ids.len()]
    }

    /// A caller: one byte; bit 7 a provider (else a user), bit 6 restricted
    /// (authenticated with an attenuated token), the rest indexes the
    /// candidates (deleted and never-existing ones too: stale credentials).
    fn caller(&self, input: &mut Input<'_>) -> Caller {
        let b = input.byte();
        let provider = b & 0x80 != 0;
        let ids = self.candidates(if provider {
            Entity::Provider
        } else {
            Entity::User
        });
        let id = ids[usize::from(b & 0x3f) % ids.len()];
        Caller {
            subject: if provider {
                Subject::Provider(id)
            } else {
                Subject::User(id)
            },
            restricted: b & 0x40 != 0,
        }
    }

    /// A token ever minted (one byte), if any was.
    fn pick_token(&self, input: &mut Input<'_>) -> Option<(Id, String)> {
        let b = usize::from(input.byte());
        if self.minted.is_empty() {
            return None;
        }
        Some(self.minted[b % self.minted.len()].clone())
    }

    fn edges(&self, m: Members) -> &Edges {
        match m {
            Members::GroupUsers => &self.gu,
            Members::GroupChildren => &self.gc,
            Members::SpaceUsers => &self.su,
            Members::SpaceGroups => &self.sg,
        }
    }

    fn edges_mut(&mut self, m: Members) -> &mut Edges {
        match m {
            Members::GroupUsers => &mut self.gu,
            Members::GroupChildren => &mut self.gc,
            Members::SpaceUsers => &mut self.su,
            Members::SpaceGroups => &mut self.sg,
        }
    }

    /// The `b` ends of `a -> *`, in id order.
    fn members_of(edges: &Edges, a: &Id) -> Vec<Id> {
        edges
            .keys()
            .filter(|(x, _)| x == a)
            .map(|(_, b)| *b)
            .collect()
    }

    /// The `a` ends of `* -> b`, in id order.
    fn memberships_of(edges: &Edges, b: &Id) -> Vec<Id> {
        edges
            .keys()
            .filter(|(_, y)| y == b)
            .map(|(a, _)| *a)
            .collect()
    }

    /// Groups the user reaches: direct groups and all their ancestors.
    fn reach(&self, user: &Id) -> BTreeSet<Id> {
        let mut seen = BTreeSet::new();
        let mut todo = Self::memberships_of(&self.gu, user);
        while let Some(g) = todo.pop() {
            if seen.insert(g) {
                todo.extend(Self::memberships_of(&self.gc, &g));
            }
        }
        seen
    }

    /// The group and every group below it (none if it does not exist).
    fn descendants(&self, group: &Id) -> BTreeSet<Id> {
        let mut seen = BTreeSet::new();
        if !self.live(Entity::Group, group) {
            return seen;
        }
        let mut todo = vec![*group];
        while let Some(g) = todo.pop() {
            if seen.insert(g) {
                todo.extend(Self::members_of(&self.gc, &g));
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
        let mut users: BTreeSet<Id> = Self::members_of(&self.su, space).into_iter().collect();
        for g in Self::members_of(&self.sg, space) {
            users.extend(self.effective_group_users(&g));
        }
        users
    }

    /// A user's privileges in a space: direct ones and those of every group
    /// the user reaches in the space.
    fn space_privs(&self, user: &Id, space: &Id) -> u64 {
        let mut p = self.su.get(&(*space, *user)).copied().unwrap_or(0);
        for g in self.reach(user) {
            p |= self.sg.get(&(*space, g)).copied().unwrap_or(0);
        }
        p
    }

    /// A user's privileges in a group: direct ones and those of every group
    /// the user reaches as a child of the group.
    fn group_privs(&self, user: &Id, group: &Id) -> u64 {
        let mut p = self.gu.get(&(*group, *user)).copied().unwrap_or(0);
        for g in self.reach(user) {
            p |= self.gc.get(&(*group, g)).copied().unwrap_or(0);
        }
        p
    }

    /// Whether the subject, a live user, holds a zone privilege.
    /// `LastAdmin` if `uid` is the zone's only administrator (the only live
    /// user holding `set_privileges`) and would stop being one.
    fn keeps_an_admin(&self, uid: &Id, stays_admin: bool) -> Result<(), Want> {
        let admin = |u: &MUser| u.zone & bit(ZP::SetPrivileges) != 0;
        let is_admin = self.users.get(uid).is_some_and(admin);
        let another = self.users.iter().any(|(id, u)| id != uid && admin(u));
        need(!is_admin || stays_admin || another, Want::LastAdmin)
    }

    fn has_zone(&self, s: &Subject, z: ZP) -> bool {
        match s {
            Subject::User(u) => self.users.get(u).is_some_and(|u| u.zone & bit(z) != 0),
            Subject::Provider(_) => false,
        }
    }

    /// Whether the subject may do what `need` says on `on`. Providers may
    /// do none of these.
    fn may(&self, s: &Subject, need: Need, on: Id) -> bool {
        let Subject::User(u) = s else {
            return false;
        };
        match need {
            Need::Group(p, z) => {
                z.is_some_and(|z| self.has_zone(s, z)) || self.group_privs(u, &on) & bit(p) != 0
            }
            Need::Space(p, z) => {
                z.is_some_and(|z| self.has_zone(s, z)) || self.space_privs(u, &on) & bit(p) != 0
            }
        }
    }

    fn may_support_token(&self, s: &Subject, space: Id) -> bool {
        self.may(
            s,
            Need::Space(SP::AddProvider, Some(ZP::SpacesAddRelationships)),
            space,
        )
    }

    fn may_space_token(&self, s: &Subject, group: Id) -> bool {
        self.may(
            s,
            Need::Group(GP::CreateSpaceToken, Some(ZP::GroupsAddRelationships)),
            group,
        )
    }

    /// Whether the subject may see or revoke a token: a zone token manager,
    /// whoever may mint such a token for its target, or whom it authenticates.
    fn may_manage(&self, s: &Subject, t: &MTok) -> bool {
        self.has_zone(s, ZP::TokensManage)
            || match t.kind {
                TokenKind::SpaceSupport => self.may_support_token(s, t.target),
                TokenKind::SpaceCreate => self.may_space_token(s, t.target),
                TokenKind::Access => *s == Subject::User(t.target),
                TokenKind::Provider => *s == Subject::Provider(t.target),
            }
    }

    /// Why the token with this id does not verify now, if it does not: no
    /// record, its key retired, expired, then its state.
    fn refusal(&self, id: &Id) -> Option<TokenError> {
        let Some(t) = self.tokens.get(id) else {
            return Some(TokenError::Unknown);
        };
        if self.keys.get(&t.key).copied().unwrap_or(true) {
            return Some(TokenError::KeyRetired);
        }
        if t.expired {
            return Some(TokenError::Expired);
        }
        match t.state {
            TokState::Active => None,
            TokState::Consumed(_) => Some(TokenError::Consumed),
            TokState::Revoked => Some(TokenError::Revoked),
        }
    }

    fn current_key(&self) -> u32 {
        self.keys.keys().next_back().copied().unwrap_or(0)
    }

    fn add(&mut self, kind: Entity, id: Id) {
        assert!(
            !KINDS
                .iter()
                .any(|k| self.known[kind_index(*k)].contains(&id)),
            "store_ops: a new {kind} has an id already used"
        );
        self.known[kind_index(kind)].push(id);
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
        self.tokens.retain(|_, t| t.target != *id);
    }

    /// Checks a freshly minted token against what the model expects and
    /// records it.
    fn minted(
        &mut self,
        op: &str,
        minted: &Minted,
        (kind, target, issuer): (TokenKind, Id, Subject),
        expiring: bool,
    ) {
        let r = &minted.record;
        assert_eq!(
            (r.kind, r.target, r.issuer, &r.state),
            (kind, target, issuer, &TokenState::Active),
            "store_ops: {op}: the minted record"
        );
        assert_eq!(
            r.key_id,
            self.current_key(),
            "store_ops: {op}: minted with another key than the current one"
        );
        let lifetime = if expiring {
            0
        } else {
            Lifetimes::default().of(kind)
        };
        assert_eq!(
            r.expires,
            r.created + lifetime,
            "store_ops: {op}: the minted token's expiry"
        );
        assert!(
            !self.minted.iter().any(|(id, _)| *id == minted.id),
            "store_ops: {op}: a token id minted twice"
        );
        self.minted.push((minted.id, minted.token.clone()));
        self.tokens.insert(
            minted.id,
            MTok {
                token: minted.token.clone(),
                kind,
                target,
                issuer,
                key: r.key_id,
                expires: r.expires,
                expired: expiring,
                state: TokState::Active,
            },
        );
    }
}

/// The instances an input drives: two zones on one memory engine (each
/// operation goes through one of them, alternating), and a third whose
/// tokens are minted with lifetime 0 (expired at once).
struct Env {
    zones: [Zone; 2],
    expiring: Zone,
}

impl Env {
    async fn new() -> Env {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
        let zone = |config: ZoneConfig| {
            let engine = engine.clone();
            async move {
                let store = Store::open(engine, DurabilityMode::Durable)
                    .await
                    .expect("store_ops: open a store");
                Zone::new(Arc::new(store), config)
                    .await
                    .expect("store_ops: a zone")
            }
        };
        let a = zone(ZoneConfig::default()).await;
        let b = zone(ZoneConfig::default()).await;
        let expiring = zone(ZoneConfig {
            lifetimes: Lifetimes {
                space_support: 0,
                space_create: 0,
                access: 0,
                provider: 0,
                ..Lifetimes::default()
            },
            ..ZoneConfig::default()
        })
        .await;
        Env {
            zones: [a, b],
            expiring,
        }
    }

    /// The zone mints go through: the expiring one when `expiring`.
    fn minting<'e>(&'e self, z: &'e Zone, expiring: bool) -> &'e Zone {
        if expiring {
            &self.expiring
        } else {
            z
        }
    }
}

/// Every page of a listing, following the cursors.
async fn all_pages<F, Fut>(limit: usize, mut f: F) -> Result<Vec<Id>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Listed<Id>>>,
{
    let mut out: Vec<Id> = Vec::new();
    let mut after = None;
    for _ in 0..=2 * PAGE_MAX {
        let page = f(PageRequest { after, limit }).await?;
        assert!(
            page.items.len() <= limit,
            "store_ops: a page of {} for a limit of {limit}",
            page.items.len()
        );
        out.extend(page.items);
        match page.next {
            Some(next) => {
                assert_eq!(
                    Some(&next),
                    out.last(),
                    "store_ops: the cursor is not the last id of the page"
                );
                after = Some(next);
            }
            None => return Ok(out),
        }
    }
    panic!("store_ops: paging does not end");
}

/// Compares a listing with the model's when both succeeded.
#[track_caller]
fn check_list(op: &str, got: &Result<Vec<Id>>, want: &Result<Vec<Id>, Want>) {
    check(op, got, want);
    if let (Ok(g), Ok(w)) = (got, want) {
        assert_eq!(g, w, "store_ops: {op}: listing");
    }
}

// Entities -------------------------------------------------------------------

async fn create_user(z: &Zone, m: &mut Model, input: &mut Input<'_>) {
    let (name, valid) = user_name(input.byte());
    let zone = zone_profile(input.byte());
    if m.count(Entity::User) >= SLOTS {
        return;
    }
    let got = z
        .store()
        .create_user(&name, FAKE_HASH.into(), set_of(zone))
        .await;
    let want = if !valid {
        Err(Want::Invalid)
    } else if m.users.values().any(|u| u.name == name) {
        Err(Want::AlreadyExists(Entity::User))
    } else {
        Ok(())
    };
    check("create_user", &got, &want);
    if let Ok(id) = got {
        m.add(Entity::User, id);
        m.users.insert(id, MUser { name, zone });
    }
}

async fn create_container(z: &Zone, m: &mut Model, input: &mut Input<'_>, group: bool) {
    let caller = m.caller(input);
    let flags = input.byte();
    let (name, valid) = container_name(flags);
    let kind = GroupType::ALL[usize::from(flags >> 6)];
    let (entity, op) = if group {
        (Entity::Group, "create_group")
    } else {
        (Entity::Space, "create_space")
    };
    if m.count(entity) >= SLOTS {
        return;
    }
    let got = if group {
        z.create_group(&caller, &name, kind).await
    } else {
        z.create_space(&caller, &name).await
    };
    let want = (|| {
        let Subject::User(u) = caller.subject else {
            return Err(Want::Forbidden(Forbidden::UsersOnly));
        };
        need(valid, Want::Invalid)?;
        need(m.live(Entity::User, &u), Want::NotFound(Entity::User))?;
        Ok(u)
    })();
    check(op, &got, &want);
    if let (Ok(id), Ok(u)) = (got, want) {
        m.add(entity, id);
        if group {
            m.groups.insert(id, (name, kind));
            m.gu.insert((id, u), all_bits::<GP>());
        } else {
            m.spaces.insert(id, name);
            m.su.insert((id, u), all_bits::<SP>());
        }
        assert!(
            z.store().exists(entity, &id).await.expect("exists"),
            "store_ops: {op}: the new {entity} does not exist"
        );
    }
}

async fn register_provider(env: &Env, z: &Zone, m: &mut Model, input: &mut Input<'_>) {
    let caller = m.caller(input);
    let flags = input.byte();
    let expiring = flags & 2 != 0;
    let (name, valid) = if flags & 1 != 0 {
        (" ", false)
    } else {
        ("provider", true)
    };
    if m.count(Entity::Provider) >= SLOTS || m.tokens.len() >= MAX_TOKENS {
        return;
    }
    let got = env
        .minting(z, expiring)
        .register_provider(&caller, name, "p.example.org")
        .await;
    let want = need(m.has_zone(&caller.subject, ZP::ProvidersCreate), PRIVILEGES)
        .and_then(|_| need(valid, Want::Invalid));
    check("register_provider", &got, &want);
    if let Ok((pid, minted)) = got {
        m.add(Entity::Provider, pid);
        m.providers.insert(pid);
        m.minted(
            "register_provider",
            &minted,
            (TokenKind::Provider, pid, caller.subject),
            expiring,
        );
    }
}

async fn delete_container(z: &Zone, m: &mut Model, input: &mut Input<'_>) {
    let caller = m.caller(input);
    let group = input.byte() & 1 == 0;
    let (c, entity, need_remove) = if group {
        (
            Container::Group,
            Entity::Group,
            Need::Group(GP::Remove, None),
        )
    } else {
        (
            Container::Space,
            Entity::Space,
            Need::Space(SP::Remove, None),
        )
    };
    let id = m.pick(entity, input);
    let got = z.delete_container(&caller, c, id).await;
    let want = need(m.live(entity, &id), Want::NotFound(entity))
        .and_then(|_| need(m.may(&caller.subject, need_remove, id), PRIVILEGES));
    check("delete_container", &got, &want);
    if got.is_ok() {
        m.delete(entity, &id);
    }
    assert_eq!(
        z.store().exists(entity, &id).await.expect("exists"),
        m.live(entity, &id),
        "store_ops: delete_container: whether the {entity} exists"
    );
}

async fn delete_user(z: &Zone, m: &mut Model, input: &mut Input<'_>) {
    let caller = m.caller(input);
    let id = m.pick(Entity::User, input);
    let got = z.delete_user(&caller, id).await;
    let want = need(m.live(Entity::User, &id), Want::NotFound(Entity::User))
        .and_then(|_| need(m.has_zone(&caller.subject, ZP::UsersDelete), PRIVILEGES))
        .and_then(|_| m.keeps_an_admin(&id, false));
    check("delete_user", &got, &want);
    if got.is_ok() {
        m.delete(Entity::User, &id);
    }
}

/// Providers are deleted through the store: the zone has no such operation.
async fn delete_provider(z: &Zone, m: &mut Model, input: &mut Input<'_>) {
    let id = m.pick(Entity::Provider, input);
    let got = z.store().delete(Entity::Provider, &id).await;
    let want = need(
        m.live(Entity::Provider, &id),
        Want::NotFound(Entity::Provider),
    );
    check("delete provider", &got, &want);
    if got.is_ok() {
        m.delete(Entity::Provider, &id);
    }
}

// Memberships ------------------------------------------------------------------

/// Both ends of a membership exist.
fn ends(m: &Model, k: &Kind, c: &Id, x: &Id) -> Result<(), Want> {
    need(m.live(k.container, c), Want::NotFound(k.container))?;
    need(m.live(k.member, x), Want::NotFound(k.member))
}

async fn membership(z: &Zone, m: &mut Model, input: &mut Input<'_>, op: u8) {
    let caller = m.caller(input);
    let k = member_kind(input.byte());
    let c = m.pick(k.container, input);
    let x = m.pick(k.member, input);
    let s = caller.subject;
    let edge = m.edges(k.members).get(&(c, x)).copied();
    let name = format!("{:?}", k.members);
    match op {
        // Add with the default privileges.
        7 => {
            let got = z.add_member(&caller, k.members, c, x).await;
            let want = (|| {
                ends(m, &k, &c, &x)?;
                need(m.may(&s, k.add, c), PRIVILEGES)?;
                if edge.is_some() {
                    return Ok(false);
                }
                let cycle = k.members == Members::GroupChildren
                    && (c == x || m.descendants(&x).contains(&c));
                need(!cycle, Want::Cycle)?;
                Ok(true)
            })();
            let op = format!("add_member {name}");
            check(&op, &got, &want);
            if let (Ok(g), Ok(w)) = (&got, &want) {
                assert_eq!(g, w, "store_ops: {op}: whether it was added");
                if *w {
                    m.edges_mut(k.members).insert((c, x), k.default);
                }
            }
        }
        // Remove.
        8 => {
            let got = z.remove_member(&caller, k.members, c, x).await;
            let want = ends(m, &k, &c, &x)
                .and_then(|_| need(m.may(&s, k.remove, c), PRIVILEGES))
                .and_then(|_| need(edge.is_some(), Want::NotFound(Entity::Relation)));
            check(&format!("remove_member {name}"), &got, &want);
            if got.is_ok() {
                m.edges_mut(k.members).remove(&(c, x));
            }
        }
        // Read a member's privileges.
        9 => {
            let got = z
                .member_privileges(&caller, k.members, c, x)
                .await
                .map(|p| match p {
                    MemberPrivileges::Group(p) => bits_of(p),
                    MemberPrivileges::Space(p) => bits_of(p),
                });
            let want = ends(m, &k, &c, &x)
                .and_then(|_| need(m.may(&s, k.view, c), PRIVILEGES))
                .and_then(|_| edge.ok_or(Want::NotFound(Entity::Relation)));
            let op = format!("member_privileges {name}");
            check(&op, &got, &want);
            if let (Ok(g), Ok(w)) = (&got, &want) {
                assert_eq!(g, w, "store_ops: {op}: privileges");
            }
            let got = z.member(&caller, k.members, c, x).await;
            check(&format!("member {name}"), &got, &want);
        }
        // Change a member's privileges by name.
        _ => {
            let how = input.byte();
            let given = u64::from(input.u16());
            let (mut names, given) = if k.group {
                (names_of::<GP>(given), given & all_bits::<GP>())
            } else {
                (names_of::<SP>(given), given & all_bits::<SP>())
            };
            let foreign = how & 0x80 != 0;
            if foreign {
                // A privilege of the other kind is unknown here.
                let other = if k.group {
                    "space_view_data"
                } else {
                    "group_view_data"
                };
                names.insert(usize::from(how) % (names.len() + 1), other.into());
            }
            let operation = ["set", "grant", "revoke", "replace"][usize::from(how % 4)];
            let change = NamedChange {
                operation: operation.into(),
                privileges: names,
            };
            let got = z
                .update_member_privileges(&caller, k.members, c, x, &change)
                .await;
            let want = (|| {
                ends(m, &k, &c, &x)?;
                need(m.may(&s, k.set, c), PRIVILEGES)?;
                need(how % 4 != 3 && !foreign, Want::Invalid)?;
                let old = edge.ok_or(Want::NotFound(Entity::Relation))?;
                Ok(match how % 4 {
                    0 => given,
                    1 => old | given,
                    _ => old & !given,
                })
            })();
            check(&format!("update_member_privileges {name}"), &got, &want);
            if let Ok(new) = want {
                m.edges_mut(k.members).insert((c, x), new);
            }
        }
    }
}

async fn list_members(z: &Zone, m: &mut Model, input: &mut Input<'_>) {
    let caller = m.caller(input);
    let k = member_kind(input.byte());
    let c = m.pick(k.container, input);
    let limit = page_limit(input.byte());
    let got = all_pages(limit, |p| z.members(&caller, k.members, c, p)).await;
    let want = need(m.live(k.container, &c), Want::NotFound(k.container))
        .and_then(|_| need(m.may(&caller.subject, k.view, c), PRIVILEGES))
        .map(|_| Model::members_of(m.edges(k.members), &c));
    check_list(&format!("members {:?}", k.members), &got, &want);
}

/// A group or a space, from one byte.
fn container(b: u8) -> (Container, Entity, Need) {
    if b & 1 == 0 {
        (Container::Group, Entity::Group, GROUP_VIEW)
    } else {
        (Container::Space, Entity::Space, SPACE_VIEW)
    }
}

async fn effective(z: &Zone, m: &mut Model, input: &mut Input<'_>, op: u8) {
    let caller = m.caller(input);
    let s = caller.subject;
    match op {
        12 => {
            let (c, entity, view) = container(input.byte());
            let id = m.pick(entity, input);
            let limit = page_limit(input.byte());
            let got = all_pages(limit, |p| z.effective_users(&caller, c, id, p)).await;
            let want = need(m.live(entity, &id), Want::NotFound(entity))
                .and_then(|_| need(m.may(&s, view, id), PRIVILEGES))
                .map(|_| {
                    let users = if entity == Entity::Group {
                        m.effective_group_users(&id)
                    } else {
                        m.effective_space_users(&id)
                    };
                    users.into_iter().collect()
                });
            check_list(&format!("effective_users {c:?}"), &got, &want);
        }
        13 => {
            let (c, entity, view) = container(input.byte());
            let id = m.pick(entity, input);
            let uid = m.pick(Entity::User, input);
            let got = z
                .effective_privileges(&caller, c, id, uid)
                .await
                .map(|e| match e {
                    Effective::Group(p) => bits_of(p),
                    Effective::Space(p) => bits_of(p),
                });
            let want = (|| {
                need(m.live(Entity::User, &uid), Want::NotFound(Entity::User))?;
                need(m.live(entity, &id), Want::NotFound(entity))?;
                if s != Subject::User(uid) {
                    need(m.may(&s, view, id), PRIVILEGES)?;
                }
                let (p, member) = if entity == Entity::Group {
                    (m.group_privs(&uid, &id), m.reach(&uid).contains(&id))
                } else {
                    (
                        m.space_privs(&uid, &id),
                        m.effective_space_users(&id).contains(&uid),
                    )
                };
                need(p != 0 || member, Want::NotFound(Entity::Relation))?;
                Ok(p)
            })();
            let op = format!("effective_privileges {c:?}");
            check(&op, &got, &want);
            if let (Ok(g), Ok(w)) = (&got, &want) {
                assert_eq!(g, w, "store_ops: {op}: privileges of {uid} in {id}");
            }
        }
        _ => {
            let gid = m.pick(Entity::Group, input);
            let limit = page_limit(input.byte());
            let got = all_pages(limit, |p| z.effective_children(&caller, gid, p)).await;
            let want = need(m.live(Entity::Group, &gid), Want::NotFound(Entity::Group))
                .and_then(|_| need(m.may(&s, GROUP_VIEW, gid), PRIVILEGES))
                .map(|_| {
                    let mut below = m.descendants(&gid);
                    below.remove(&gid);
                    below.into_iter().collect()
                });
            check_list("effective_children", &got, &want);
        }
    }
}

/// The caller's own groups or spaces, and listings of every entity of a kind.
async fn listings(z: &Zone, m: &mut Model, input: &mut Input<'_>, op: u8) {
    let caller = m.caller(input);
    let which = input.byte();
    let limit = page_limit(input.byte());
    let s = caller.subject;
    if op == 15 {
        let group = which & 1 == 0;
        let got = if group {
            all_pages(limit, |p| z.my_groups(&caller, p)).await
        } else {
            all_pages(limit, |p| z.my_spaces(&caller, p)).await
        };
        let want = match s {
            Subject::User(u) => Ok(Model::memberships_of(if group { &m.gu } else { &m.su }, &u)),
            Subject::Provider(_) => Err(Want::Forbidden(Forbidden::UsersOnly)),
        };
        check_list(if group { "my_groups" } else { "my_spaces" }, &got, &want);
        return;
    }
    match which % 3 {
        0 => {
            let got = all_pages(limit, |p| z.list_containers(&caller, Container::Group, p)).await;
            let want =
                need(m.has_zone(&s, ZP::ListGroups), PRIVILEGES).map(|_| m.live_ids(Entity::Group));
            check_list("list groups", &got, &want);
        }
        1 => {
            let got = all_pages(limit, |p| z.list_containers(&caller, Container::Space, p)).await;
            let want =
                need(m.has_zone(&s, ZP::ListSpaces), PRIVILEGES).map(|_| m.live_ids(Entity::Space));
            check_list("list spaces", &got, &want);
        }
        _ => {
            let got = z.list_providers(&caller).await;
            let want = need(m.has_zone(&s, ZP::ListProviders), PRIVILEGES)
                .map(|_| m.live_ids(Entity::Provider));
            check_list("list_providers", &got, &want);
        }
    }
}

/// The supports of a space in the model: (provider, size) in provider order.
fn supports_of(m: &Model, space: &Id) -> Vec<(Id, u64)> {
    m.sp.iter()
        .filter(|((s, _), _)| s == space)
        .map(|((_, p), size)| (*p, *size))
        .collect()
}

fn sizes(supports: Vec<(Id, Support)>) -> Vec<(Id, u64)> {
    supports.into_iter().map(|(p, s)| (p, s.size)).collect()
}

async fn get_container(z: &Zone, m: &mut Model, input: &mut Input<'_>) {
    let caller = m.caller(input);
    let which = input.byte() % 3;
    let s = caller.subject;
    if which == 0 {
        let g = m.pick(Entity::Group, input);
        let got = z.get_group(&caller, g).await.map(|g| (g.name, g.kind));
        let want = need(m.live(Entity::Group, &g), Want::NotFound(Entity::Group))
            .and_then(|_| need(m.may(&s, GROUP_VIEW, g), PRIVILEGES))
            .map(|_| m.groups[&g].clone());
        check("get_group", &got, &want);
        if let (Ok(a), Ok(b)) = (&got, &want) {
            assert_eq!(a, b, "store_ops: get_group: name and type");
        }
        return;
    }
    let sid = m.pick(Entity::Space, input);
    let live = need(m.live(Entity::Space, &sid), Want::NotFound(Entity::Space));
    if which == 1 {
        let got = z
            .get_space(&caller, sid)
            .await
            .map(|(space, supports)| (space.name, sizes(supports)));
        let want = live
            .and_then(|_| need(m.may(&s, SPACE_VIEW, sid), PRIVILEGES))
            .map(|_| (m.spaces[&sid].clone(), supports_of(m, &sid)));
        check("get_space", &got, &want);
        if let (Ok(a), Ok(b)) = (&got, &want) {
            assert_eq!(a, b, "store_ops: get_space: name and supports");
        }
    } else {
        let got = z.space_supports(&caller, sid).await.map(sizes);
        let view = Need::Space(SP::ViewData, Some(ZP::ListProvidersOfSpace));
        let want = live
            .and_then(|_| need(m.may(&s, view, sid), PRIVILEGES))
            .map(|_| supports_of(m, &sid));
        check("space_supports", &got, &want);
        if let (Ok(a), Ok(b)) = (&got, &want) {
            assert_eq!(a, b, "store_ops: space_supports");
        }
    }
}

async fn change_container(z: &Zone, m: &mut Model, input: &mut Input<'_>) {
    let caller = m.caller(input);
    let group = input.byte() & 1 == 0;
    let flags = input.byte();
    let s = caller.subject;
    if group {
        let g = m.pick(Entity::Group, input);
        let name = (flags & 8 == 0).then(|| container_name(flags));
        let kind = (flags & 0x10 != 0).then(|| GroupType::ALL[usize::from(flags >> 6)]);
        let got = z
            .update_group(&caller, g, name.as_ref().map(|(n, _)| n.as_str()), kind)
            .await;
        let want = (|| {
            need(m.live(Entity::Group, &g), Want::NotFound(Entity::Group))?;
            need(m.may(&s, Need::Group(GP::ChangeData, None), g), PRIVILEGES)?;
            need(name.is_some() || kind.is_some(), Want::Invalid)?;
            need(name.as_ref().is_none_or(|(_, ok)| *ok), Want::Invalid)
        })();
        check("update_group", &got, &want);
        if got.is_ok() {
            let entry = m.groups.get_mut(&g).expect("live group");
            if let Some((n, _)) = name {
                entry.0 = n;
            }
            if let Some(k) = kind {
                entry.1 = k;
            }
        }
    } else {
        let sid = m.pick(Entity::Space, input);
        let (name, valid) = container_name(flags);
        let got = z.rename_space(&caller, sid, &name).await;
        let want = need(m.live(Entity::Space, &sid), Want::NotFound(Entity::Space))
            .and_then(|_| {
                need(
                    m.may(&s, Need::Space(SP::ChangeData, None), sid),
                    PRIVILEGES,
                )
            })
            .and_then(|_| need(valid, Want::Invalid));
        check("rename_space", &got, &want);
        if got.is_ok() {
            m.spaces.insert(sid, name);
        }
    }
}

async fn users(z: &Zone, m: &mut Model, input: &mut Input<'_>) {
    let caller = m.caller(input);
    let action = input.byte() % 5;
    let uid = m.pick(Entity::User, input);
    let how = input.byte();
    let profile = zone_profile(input.byte());
    let s = caller.subject;
    let live = need(m.live(Entity::User, &uid), Want::NotFound(Entity::User));
    let own = s == Subject::User(uid);
    match action {
        0 => {
            let set = set_of::<ZP>(profile);
            let change = match how % 3 {
                0 => PrivilegeChange::Set(set),
                1 => PrivilegeChange::Grant(set),
                _ => PrivilegeChange::Revoke(set),
            };
            let got = z.update_zone_privileges(&caller, uid, change).await;
            let after = m.users.get(&uid).map(|u| match how % 3 {
                0 => profile,
                1 => u.zone | profile,
                _ => u.zone & !profile,
            });
            let stays_admin = after.is_some_and(|z| z & bit(ZP::SetPrivileges) != 0);
            let want = live
                .and_then(|_| need(m.has_zone(&s, ZP::SetPrivileges), PRIVILEGES))
                .and_then(|_| m.keeps_an_admin(&uid, stays_admin));
            check("update_zone_privileges", &got, &want);
            if let (Ok(_), Some(after)) = (&got, after) {
                m.users.get_mut(&uid).expect("live user").zone = after;
            }
        }
        1 => {
            let got = z.zone_privileges(&caller, uid).await.map(bits_of);
            let want = live
                .and_then(|_| need(own || m.has_zone(&s, ZP::ViewPrivileges), PRIVILEGES))
                .map(|_| m.users[&uid].zone);
            check("zone_privileges", &got, &want);
            if let (Ok(a), Ok(b)) = (&got, &want) {
                assert_eq!(a, b, "store_ops: zone_privileges");
            }
        }
        2 => {
            let got = z
                .get_user(&caller, uid)
                .await
                .map(|u| (u.name, bits_of(u.zone_privileges)));
            let want = live
                .and_then(|_| need(own || m.has_zone(&s, ZP::ListUsers), PRIVILEGES))
                .map(|_| (m.users[&uid].name.clone(), m.users[&uid].zone));
            check("get_user", &got, &want);
            if let (Ok(a), Ok(b)) = (&got, &want) {
                assert_eq!(a, b, "store_ops: get_user");
            }
        }
        3 => {
            let got = all_pages(page_limit(how), |p| z.list_users(&caller, p)).await;
            let want =
                need(m.has_zone(&s, ZP::ListUsers), PRIVILEGES).map(|_| m.live_ids(Entity::User));
            check_list("list_users", &got, &want);
        }
        _ => {
            let got = z.me(&caller).await.map(|(id, u)| (id, u.name));
            let want = match s {
                Subject::User(u) => need(m.live(Entity::User, &u), Want::NotFound(Entity::User))
                    .map(|_| (u, m.users[&u].name.clone())),
                Subject::Provider(_) => Err(Want::Forbidden(Forbidden::UsersOnly)),
            };
            check("me", &got, &want);
            if let (Ok(a), Ok(b)) = (&got, &want) {
                assert_eq!(a, b, "store_ops: me");
            }
        }
    }
}

// Tokens ---------------------------------------------------------------------

async fn mint(env: &Env, z: &Zone, m: &mut Model, input: &mut Input<'_>, op: u8) {
    let caller = m.caller(input);
    let s = caller.subject;
    let flags = input.byte();
    let expiring = flags & 1 != 0;
    let zone = env.minting(z, expiring);
    let target = match op {
        20 => Some(m.pick(Entity::Space, input)),
        21 => Some(m.pick(Entity::Group, input)),
        _ => None,
    };
    if m.tokens.len() >= MAX_TOKENS {
        return;
    }
    let (op, got, want) = match (op, target) {
        (20, Some(space)) => (
            "create_space_support_token",
            zone.create_space_support_token(&caller, space).await,
            need(m.live(Entity::Space, &space), Want::NotFound(Entity::Space))
                .and_then(|_| need(m.may_support_token(&s, space), PRIVILEGES))
                .map(|_| (TokenKind::SpaceSupport, space)),
        ),
        (21, Some(group)) => (
            "create_group_space_token",
            zone.create_group_space_token(&caller, group).await,
            need(m.live(Entity::Group, &group), Want::NotFound(Entity::Group))
                .and_then(|_| need(m.may_space_token(&s, group), PRIVILEGES))
                .map(|_| (TokenKind::SpaceCreate, group)),
        ),
        _ => (
            "create_access_token",
            zone.create_access_token(&caller).await,
            match s {
                // A stale caller (a deleted user) gets no token: the mint
                // reads its target in the transaction that writes it.
                Subject::User(u) => {
                    need(!caller.restricted, Want::Forbidden(Forbidden::Attenuated))
                        .and_then(|_| need(m.live(Entity::User, &u), Want::NotFound(Entity::User)))
                        .map(|_| (TokenKind::Access, u))
                }
                Subject::Provider(_) => Err(Want::Forbidden(Forbidden::UsersOnly)),
            },
        ),
    };
    check(op, &got, &want);
    if let (Ok(minted), Ok((kind, target))) = (&got, want) {
        m.minted(op, minted, (kind, target, s), expiring);
    }
}

/// The stored state of a token agrees with the model.
async fn check_token_state(z: &Zone, m: &Model, op: &str, id: &Id) {
    let got = z
        .store()
        .token(id)
        .await
        .expect("token")
        .map(|r| state_of(&r.state));
    assert_eq!(
        got,
        m.tokens.get(id).map(|t| t.state),
        "store_ops: {op}: the state of token {id}"
    );
}

async fn revoke(z: &Zone, m: &mut Model, input: &mut Input<'_>, op: u8) {
    let caller = m.caller(input);
    let flags = input.byte();
    let Some((id, tok)) = m.pick_token(input) else {
        return;
    };
    let s = caller.subject;
    // By identifier or by the whole token.
    let text = if flags & 1 != 0 { id.to_string() } else { tok };
    let t = m.tokens.get(&id);
    let (op, got, want) = if op == 23 {
        (
            "revoke_token",
            z.revoke_token(&caller, &text).await,
            t.ok_or(Want::NotFound(Entity::Token))
                .and_then(|t| need(m.may_manage(&s, t), PRIVILEGES)),
        )
    } else {
        (
            "revoke_access_token",
            z.revoke_access_token(&caller, &text).await,
            match s {
                Subject::User(u) => need(
                    t.is_some_and(|t| t.kind == TokenKind::Access && t.target == u),
                    Want::NotFound(Entity::Token),
                ),
                Subject::Provider(_) => Err(Want::Forbidden(Forbidden::UsersOnly)),
            },
        )
    };
    check(op, &got, &want);
    if got.is_ok() {
        let t = m.tokens.get_mut(&id).expect("a live token");
        if t.state == TokState::Active {
            t.state = TokState::Revoked;
        }
    }
    check_token_state(z, m, op, &id).await;
}

/// Verification, examination and listings of tokens.
async fn token_query(z: &Zone, m: &mut Model, input: &mut Input<'_>) {
    let sel = input.byte() % 6;
    let caller = m.caller(input);
    let s = caller.subject;
    match sel {
        0..=2 => {
            let kind = TokenKind::ALL[usize::from(input.byte()) % 4];
            let Some((id, tok)) = m.pick_token(input) else {
                return;
            };
            let refusal = m.refusal(&id);
            if sel == 2 {
                let got = z.examine_token(&caller, &tok).await;
                let want = m
                    .tokens
                    .get(&id)
                    .ok_or(Want::Token(TokenError::Unknown))
                    .and_then(|t| need(m.may_manage(&s, t), PRIVILEGES));
                check("examine_token", &got, &want);
                if let Ok(x) = got {
                    let t = &m.tokens[&id];
                    assert_eq!(x.id, id, "store_ops: examine_token: id");
                    assert_eq!(x.error, refusal, "store_ops: examine_token: error");
                    assert_eq!(
                        (x.record.kind, x.record.target, x.record.issuer),
                        (t.kind, t.target, t.issuer),
                        "store_ops: examine_token: record"
                    );
                    assert_eq!(
                        (x.record.key_id, x.record.expires, state_of(&x.record.state)),
                        (t.key, t.expires, t.state),
                        "store_ops: examine_token: record"
                    );
                    assert_eq!(
                        x.caveats,
                        [
                            format!("tokenType = {}", t.kind.wire_name()),
                            format!("time < {}", t.expires)
                        ],
                        "store_ops: examine_token: caveats"
                    );
                    assert_eq!(x.location.as_deref(), Some("onezone"));
                }
                return;
            }
            let (op, got) = if sel == 0 {
                ("verify", z.verify(&tok).await)
            } else {
                ("verify_kind", z.verify_kind(&tok, kind).await)
            };
            let want = match refusal {
                Some(e) => Err(Want::Token(e)),
                None if sel == 1 && m.tokens[&id].kind != kind => {
                    Err(Want::Token(TokenError::WrongType))
                }
                None => Ok(()),
            };
            check(op, &got, &want);
            if let Ok(v) = got {
                let t = &m.tokens[&id];
                assert_eq!(v.id, id, "store_ops: {op}: id");
                assert_eq!(
                    (
                        v.record.kind,
                        v.record.target,
                        v.record.issuer,
                        v.record.key_id
                    ),
                    (t.kind, t.target, t.issuer, t.key),
                    "store_ops: {op}: record"
                );
                assert_eq!(
                    v.caveats,
                    [Caveat::TokenType(t.kind), Caveat::TimeBefore(t.expires)],
                    "store_ops: {op}: caveats"
                );
            }
        }
        3 => {
            let got = z.access_tokens(&caller).await;
            let want = match s {
                Subject::User(u) => {
                    need(!caller.restricted, Want::Forbidden(Forbidden::Attenuated)).map(|_| {
                        m.tokens
                            .values()
                            .filter(|t| {
                                t.target == u
                                    && t.kind == TokenKind::Access
                                    && t.state == TokState::Active
                                    && !t.expired
                                    && m.keys.get(&t.key) == Some(&false)
                            })
                            .map(|t| t.token.clone())
                            .collect::<Vec<_>>()
                    })
                }
                Subject::Provider(_) => Err(Want::Forbidden(Forbidden::UsersOnly)),
            };
            check("access_tokens", &got, &want);
            if let (Ok(a), Ok(b)) = (&got, &want) {
                assert!(a == b, "store_ops: access_tokens: another list of tokens");
            }
        }
        _ => {
            let (target, entity) = if sel == 4 {
                let sid = m.pick(Entity::Space, input);
                (InviteTarget::Space(sid), Entity::Space)
            } else {
                let gid = m.pick(Entity::Group, input);
                (InviteTarget::Group(gid), Entity::Group)
            };
            let (InviteTarget::Space(id) | InviteTarget::Group(id)) = target;
            let got = z.invite_tokens(&caller, target).await.map(|list| {
                list.into_iter()
                    .map(|(id, r)| (id, r.kind, state_of(&r.state)))
                    .collect::<Vec<_>>()
            });
            let may = if entity == Entity::Space {
                m.may_support_token(&s, id)
            } else {
                m.may_space_token(&s, id)
            };
            let want = need(m.live(entity, &id), Want::NotFound(entity))
                .and_then(|_| need(may, PRIVILEGES))
                .map(|_| {
                    m.tokens
                        .iter()
                        .filter(|(_, t)| t.target == id)
                        .map(|(tid, t)| (*tid, t.kind, t.state))
                        .collect::<Vec<_>>()
                });
            check("invite_tokens", &got, &want);
            if let (Ok(a), Ok(b)) = (&got, &want) {
                assert_eq!(a, b, "store_ops: invite_tokens");
            }
        }
    }
}

/// Authentication with a token (never a password: no argon2 here).
async fn authenticate(z: &Zone, m: &mut Model, input: &mut Input<'_>) {
    let flags = input.byte();
    let Some((id, tok)) = m.pick_token(input) else {
        return;
    };
    let t = m.tokens.get(&id);
    // Attenuated with a caveat that restricts (a later expiry), or with one
    // the token already has (restricts nothing).
    let (text, restricted) = match flags % 3 {
        0 => (tok, false),
        1 => (
            wire::attenuate(&tok, &format!("time < {FAR_FUTURE}")).expect("attenuate"),
            true,
        ),
        _ => {
            let kind = t.map_or(TokenKind::Access, |t| t.kind);
            let caveat = format!("tokenType = {}", kind.wire_name());
            (wire::attenuate(&tok, &caveat).expect("attenuate"), false)
        }
    };
    let got = z
        .authenticate(Some(Credentials::Token(text)), LOCALHOST)
        .await;
    let want = match m.refusal(&id) {
        Some(e) => Err(AuthError::BadToken(e)),
        None => {
            let t = &m.tokens[&id];
            match t.kind {
                TokenKind::Access if m.live(Entity::User, &t.target) => Ok(Caller {
                    subject: Subject::User(t.target),
                    restricted,
                }),
                TokenKind::Provider if m.live(Entity::Provider, &t.target) => Ok(Caller {
                    subject: Subject::Provider(t.target),
                    restricted,
                }),
                TokenKind::Access | TokenKind::Provider => Err(AuthError::Gone),
                _ => Err(AuthError::BadToken(TokenError::WrongType)),
            }
        }
    };
    let agrees = match (&got, &want) {
        (Ok(a), Ok(b)) => a == b,
        (Err(AuthFailure::Auth(a)), Err(b)) => match (a, b) {
            (AuthError::BadToken(x), AuthError::BadToken(y)) => x == y,
            (AuthError::Gone, AuthError::Gone) => true,
            _ => false,
        },
        _ => false,
    };
    if tracing() {
        eprintln!("store_ops: authenticate: {got:?}");
    }
    assert!(
        agrees,
        "store_ops: authenticate: got {got:?}, the model expects {want:?}"
    );
}

/// A provider consumes a token: supports a space, or creates one.
async fn consume(z: &Zone, m: &mut Model, input: &mut Input<'_>, op: u8) {
    let caller = m.caller(input);
    let size = u64::from(input.byte()) << 20;
    let (name, valid) = container_name(input.byte());
    let Some((id, tok)) = m.pick_token(input) else {
        return;
    };
    let (kind, op) = if op == 27 {
        (TokenKind::SpaceSupport, "support_space")
    } else {
        if m.count(Entity::Space) >= SLOTS {
            return;
        }
        (TokenKind::SpaceCreate, "create_space_with_token")
    };
    let got = if kind == TokenKind::SpaceSupport {
        z.support_space(&caller, &tok, size).await
    } else {
        z.create_space_with_token(&caller, &name, &tok, size).await
    };
    let want = (|| {
        let Subject::Provider(p) = caller.subject else {
            return Err(Want::Forbidden(Forbidden::ProvidersOnly));
        };
        need(size > 0, Want::Invalid)?;
        if let Some(e) = m.refusal(&id) {
            return Err(Want::Token(e));
        }
        let t = &m.tokens[&id];
        need(t.kind == kind, Want::Token(TokenError::WrongType))?;
        if kind == TokenKind::SpaceSupport {
            need(
                m.live(Entity::Space, &t.target),
                Want::NotFound(Entity::Space),
            )?;
            need(
                m.may_support_token(&t.issuer, t.target),
                Want::Token(TokenError::IssuerNotAllowed),
            )?;
            need(
                !m.sp.contains_key(&(t.target, p)),
                Want::AlreadyExists(Entity::Relation),
            )?;
        } else {
            need(
                m.live(Entity::Group, &t.target),
                Want::NotFound(Entity::Group),
            )?;
            need(
                m.may_space_token(&t.issuer, t.target),
                Want::Token(TokenError::IssuerNotAllowed),
            )?;
            need(valid, Want::Invalid)?;
        }
        need(
            m.live(Entity::Provider, &p),
            Want::NotFound(Entity::Provider),
        )?;
        Ok((t.target, p))
    })();
    check(op, &got, &want);
    if let (Ok(space), Ok((target, p))) = (got, want) {
        if kind == TokenKind::SpaceSupport {
            assert_eq!(space, target, "store_ops: {op}: the space supported");
        } else {
            // A new space, owned by the token's group, supported by the provider.
            m.add(Entity::Space, space);
            m.spaces.insert(space, name);
            m.sg.insert((space, target), all_bits::<SP>());
        }
        m.sp.insert((space, p), size);
        m.tokens.get_mut(&id).expect("a live token").state = TokState::Consumed(p);
    }
    check_token_state(z, m, op, &id).await;
}

/// Purging: the oldest records first, at most `limit`, those expired by
/// `now` (only the expired ones at the real time, or any at the end of time).
async fn purge(z: &Zone, m: &mut Model, input: &mut Input<'_>) {
    let b = input.byte();
    let limit = usize::from(b % 4);
    let at = if b & 4 != 0 { u64::MAX } else { now() + 1 };
    let got = z.store().purge_expired(at, limit).await;
    let mut order: Vec<(u64, Id)> = m.tokens.iter().map(|(id, t)| (t.expires, *id)).collect();
    order.sort();
    let due: Vec<Id> = order
        .iter()
        .take(limit)
        .take_while(|(expires, _)| *expires < at)
        .map(|(_, id)| *id)
        .collect();
    let want: Result<usize, Want> = Ok(due.len());
    check("purge_expired", &got, &want);
    if tracing() {
        eprintln!("store_ops: purge_expired: {got:?}");
    }
    assert_eq!(got.ok(), want.ok(), "store_ops: purge_expired: how many");
    for id in due {
        m.tokens.remove(&id);
    }
}

// Root keys ------------------------------------------------------------------

async fn keys(z: &Zone, m: &mut Model, input: &mut Input<'_>) {
    let caller = m.caller(input);
    let action = input.byte() % 3;
    let b = input.byte();
    let may = need(m.has_zone(&caller.subject, ZP::TokensManage), PRIVILEGES);
    let current = m.current_key();
    match action {
        0 => {
            let got = z.rotate_key(&caller).await;
            let want = may.map(|_| current + 1);
            check("rotate_key", &got, &want);
            if let (Ok(a), Ok(b)) = (&got, &want) {
                assert_eq!(a, b, "store_ops: rotate_key: the new key's id");
                m.keys.insert(*a, false);
            }
        }
        1 => {
            let id = u32::from(b) % (current + 2);
            let got = z.retire_key(&caller, id).await;
            let want = may
                .and_then(|_| need(id != current, Want::CurrentKey))
                .and_then(|_| need(m.keys.contains_key(&id), Want::NotFound(Entity::RootKey)));
            check("retire_key", &got, &want);
            if got.is_ok() {
                m.keys.insert(id, true);
            }
        }
        _ => {
            let got = z.list_keys(&caller).await.map(|list| {
                list.into_iter()
                    .map(|k| (k.id, k.retired.is_some(), k.current))
                    .collect::<Vec<_>>()
            });
            let want = may.map(|_| {
                m.keys
                    .iter()
                    .map(|(id, retired)| (*id, *retired, *id == current))
                    .collect::<Vec<_>>()
            });
            check("list_keys", &got, &want);
            if let (Ok(a), Ok(b)) = (&got, &want) {
                assert_eq!(a, b, "store_ops: list_keys");
            }
        }
    }
}

// Full comparison ------------------------------------------------------------

/// One relation from both ends, whole and page by page, against its edges.
async fn compare_relation<V: StoredValue>(
    store: &Store,
    m: &Model,
    r: &Relation<V>,
    edges: &Edges,
    value: fn(&V) -> u64,
) {
    let name = r.fwd.name;
    for a in m.candidates(r.a) {
        let want: Vec<(Id, u64)> = edges
            .iter()
            .filter(|((x, _), _)| *x == a)
            .map(|((_, b), v)| (*b, *v))
            .collect();
        let (got, more) = store
            .members(r, &a, None, PAGE_MAX)
            .await
            .expect("store_ops: members");
        let got: Vec<(Id, u64)> = got.iter().map(|(b, v)| (*b, value(v))).collect();
        assert!(!more, "store_ops: members of {name} {a}: more after all");
        assert_eq!(got, want, "store_ops: members of {name} {a}");
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let (page, more) = store
                .members(r, &a, after, 2)
                .await
                .expect("store_ops: members page");
            after = page.last().map(|(id, _)| *id);
            paged.extend(page.iter().map(|(b, v)| (*b, value(v))));
            if !more {
                break;
            }
        }
        assert_eq!(paged, want, "store_ops: paged members of {name} {a}");
    }
    for b in m.candidates(r.b) {
        let want = Model::memberships_of(edges, &b);
        let (got, _) = store
            .memberships(r, &b, None, PAGE_MAX)
            .await
            .expect("store_ops: memberships");
        assert_eq!(got, want, "store_ops: memberships in {name} of {b}");
        if let Some(first) = want.first() {
            let (rest, _) = store
                .memberships(r, &b, Some(*first), PAGE_MAX)
                .await
                .expect("store_ops: memberships page");
            assert_eq!(
                rest,
                want[1..],
                "store_ops: memberships in {name} of {b} after {first}"
            );
        }
    }
}

/// Everything the store of `z` can be asked, against the model.
async fn compare(z: &Zone, m: &Model) {
    if tracing() {
        eprintln!("store_ops: full comparison");
    }
    let store = z.store();
    // Entities.
    let (users, _) = store.users(None, PAGE_MAX).await.expect("users");
    let got: Vec<(Id, String, u64)> = users
        .into_iter()
        .map(|(id, u)| (id, u.name, bits_of(u.zone_privileges)))
        .collect();
    let want: Vec<(Id, String, u64)> = m
        .users
        .iter()
        .map(|(id, u)| (*id, u.name.clone(), u.zone))
        .collect();
    assert_eq!(got, want, "store_ops: users");
    for i in 0..16 {
        let (name, _) = user_name(i);
        let want = m
            .users
            .iter()
            .find(|(_, u)| u.name == name)
            .map(|(id, _)| *id);
        let got = store
            .user_by_name(&name)
            .await
            .expect("user_by_name")
            .map(|(id, _)| id);
        assert_eq!(got, want, "store_ops: user_by_name({name:?})");
    }
    let (groups, _) = store.groups(None, PAGE_MAX).await.expect("groups");
    let got: Vec<(Id, String, GroupType)> = groups
        .into_iter()
        .map(|(id, g)| (id, g.name, g.kind))
        .collect();
    let want: Vec<(Id, String, GroupType)> = m
        .groups
        .iter()
        .map(|(id, (n, k))| (*id, n.clone(), *k))
        .collect();
    assert_eq!(got, want, "store_ops: groups");
    let (spaces, _) = store.spaces(None, PAGE_MAX).await.expect("spaces");
    let got: Vec<(Id, String)> = spaces.into_iter().map(|(id, s)| (id, s.name)).collect();
    let want: Vec<(Id, String)> = m.spaces.iter().map(|(id, n)| (*id, n.clone())).collect();
    assert_eq!(got, want, "store_ops: spaces");
    let (providers, _) = store.providers(None, PAGE_MAX).await.expect("providers");
    let got: Vec<Id> = providers.into_iter().map(|(id, _)| id).collect();
    assert_eq!(got, m.live_ids(Entity::Provider), "store_ops: providers");
    for kind in KINDS {
        for id in m.candidates(kind) {
            assert_eq!(
                store.exists(kind, &id).await.expect("exists"),
                m.live(kind, &id),
                "store_ops: exists({kind}, {id})"
            );
        }
    }

    // Relations.
    let privs = |p: &GroupPrivileges| bits_of(*p);
    let space_privs = |p: &SpacePrivileges| bits_of(*p);
    compare_relation(store, m, &GROUP_USERS_REL, &m.gu, privs).await;
    compare_relation(store, m, &GROUP_CHILDREN_REL, &m.gc, privs).await;
    compare_relation(store, m, &SPACE_USERS_REL, &m.su, space_privs).await;
    compare_relation(store, m, &SPACE_GROUPS_REL, &m.sg, space_privs).await;
    compare_relation(store, m, &SPACE_PROVIDERS_REL, &m.sp, |s: &Support| s.size).await;

    // Effective membership and privileges.
    let users = m.candidates(Entity::User);
    let groups = m.candidates(Entity::Group);
    let spaces = m.candidates(Entity::Space);
    for u in &users {
        let reach: BTreeSet<Id> = store
            .user_reach(u)
            .await
            .expect("user_reach")
            .iter()
            .copied()
            .collect();
        let want_reach = m.reach(u);
        assert_eq!(reach, want_reach, "store_ops: groups reached by {u}");
        for g in &groups {
            let p = store
                .effective_group_privileges(u, g)
                .await
                .expect("effective_group_privileges");
            assert_eq!(
                bits_of(p),
                m.group_privs(u, g),
                "store_ops: effective privileges of user {u} in group {g}"
            );
            assert_eq!(
                store
                    .is_effective_group_member(u, g)
                    .await
                    .expect("is_effective_group_member"),
                want_reach.contains(g),
                "store_ops: effective membership of user {u} in group {g}"
            );
        }
        for s in &spaces {
            let p = store
                .effective_space_privileges(u, s)
                .await
                .expect("effective_space_privileges");
            assert_eq!(
                bits_of(p),
                m.space_privs(u, s),
                "store_ops: effective privileges of user {u} in space {s}"
            );
        }
    }
    for g in &groups {
        assert_eq!(
            store
                .effective_group_users(g)
                .await
                .expect("effective_group_users"),
            m.effective_group_users(g),
            "store_ops: effective users of group {g}"
        );
        let below: BTreeSet<Id> = store
            .descendants_of_group(g)
            .await
            .expect("descendants_of_group")
            .into_iter()
            .collect();
        assert_eq!(below, m.descendants(g), "store_ops: descendants of {g}");
    }
    for s in &spaces {
        assert_eq!(
            store
                .effective_space_users(s)
                .await
                .expect("effective_space_users"),
            m.effective_space_users(s),
            "store_ops: effective users of space {s}"
        );
    }

    // Tokens: every record in the store, and the tokens of every target.
    let page = store
        .engine()
        .scan(&TOKENS.prefix(), None, PAGE_MAX)
        .await
        .expect("scan tokens");
    assert!(!page.more, "store_ops: more token records than ever minted");
    let got: Vec<(Id, TokenKind, Id, Subject, u32, u64, TokState)> = page
        .entries
        .iter()
        .map(|(k, v)| {
            let id = TOKENS.decode_key(k).expect("a token key");
            let r = TOKENS.decode(v).expect("a token record");
            let state = state_of(&r.state);
            (id, r.kind, r.target, r.issuer, r.key_id, r.expires, state)
        })
        .collect();
    let want: Vec<(Id, TokenKind, Id, Subject, u32, u64, TokState)> = m
        .tokens
        .iter()
        .map(|(id, t)| (*id, t.kind, t.target, t.issuer, t.key, t.expires, t.state))
        .collect();
    assert_eq!(got, want, "store_ops: token records");
    let mut targets: BTreeSet<Id> = KINDS.iter().flat_map(|k| m.candidates(*k)).collect();
    targets.extend(m.tokens.values().map(|t| t.target));
    for target in targets {
        let (records, _) = store
            .tokens_of(&target, None, PAGE_MAX)
            .await
            .expect("tokens_of");
        let got: Vec<(Id, TokState)> = records
            .into_iter()
            .map(|(id, r)| (id, state_of(&r.state)))
            .collect();
        let want: Vec<(Id, TokState)> = m
            .tokens
            .iter()
            .filter(|(_, t)| t.target == target)
            .map(|(id, t)| (*id, t.state))
            .collect();
        assert_eq!(got, want, "store_ops: tokens of {target}");
    }

    // Root keys.
    let current = m.current_key();
    let got: Vec<(u32, bool, bool)> = store
        .root_keys()
        .await
        .expect("root_keys")
        .list()
        .into_iter()
        .map(|k| (k.id, k.retired.is_some(), k.current))
        .collect();
    let want: Vec<(u32, bool, bool)> = m
        .keys
        .iter()
        .map(|(id, retired)| (*id, *retired, *id == current))
        .collect();
    assert_eq!(got, want, "store_ops: root keys");

    let problems = store.check().await.expect("check");
    assert!(
        problems.is_empty(),
        "store_ops: Store::check found {problems:?}"
    );
}

/// Fuzzes the operations layer against a plain model.
///
/// Two zones share one memory engine; operation `i` goes through zone
/// `i % 2` (bit 7 of its opcode byte swaps), so what one instance caches
/// (groups reached, root keys) must be invalidated through the generations
/// in the store. A third zone on the engine mints with lifetime 0: its
/// tokens are expired from the start. Users are created through the store
/// with a fixed fake password hash (no argon2); every other change goes
/// through a `Zone` method with a `Caller` built from the input: users with
/// various zone and membership privileges, providers, attenuated
/// credentials, and stale ones (deleted or never-existing subjects).
///
/// The input is a sequence of operations (at most 64; at most 8 live
/// entities of each kind and 24 live token records). Every result is
/// compared with the model's, error kinds included (`NotFound` of which
/// entity, `Forbidden` and why, `AlreadyExists`, `Cycle`, `Invalid`,
/// `Token(..)`, `CurrentKey`), and so are the effects: listings, effective
/// privileges and members, supports, token states. The full comparison
/// (every listing from both ends, effective privileges and members of
/// every pair, every token record, the root keys, `Store::check`) runs when
/// the input asks, and at the end through each of the three instances.
///
/// Encoding: one opcode byte (`& 0x1f`; bit 7 swaps the instance), then its
/// arguments, each one byte: a *pick* of a kind indexes the ids ever created
/// of it (in creation order, live or deleted) followed by one that never
/// existed; a *caller* is a byte whose bit 7 makes it a provider (else a
/// user), bit 6 restricted, and the low six bits pick; a *token* indexes the
/// tokens ever minted (in mint order, whether or not their record is left);
/// a *page* size is `% 4` (1, 2, 3 or the largest).
///
/// | op | operation | arguments |
/// |---|---|---|
/// | 0 | `Store::create_user` | name (`% 16`, valid and invalid names), zone privileges (`% 16`, a table of profiles) |
/// | 1, 2 | `create_group`, `create_space` | caller, flags (name `% 8`; group type `>> 6`) |
/// | 3 | `register_provider` (mints its token) | caller, flags (`& 1` blank name, `& 2` expiring zone) |
/// | 4 | `delete_container` | caller, `& 1` space (else group), pick |
/// | 5 | `delete_user` | caller, user pick |
/// | 6 | `Store::delete` of a provider | provider pick |
/// | 7-10 | `add_member`, `remove_member`, `member_privileges` and `member`, `update_member_privileges` | caller, membership kind (`% 4`: group users, group children, space users, space groups), container pick, member pick; for 10: operation (`% 4`: set, grant, revoke, an unknown one; bit 7 adds a privilege of the other kind), privileges (u16 bit set) |
/// | 11 | `members` (every page) | caller, membership kind, container pick, page size |
/// | 12 | `effective_users` | caller, `& 1` space, pick, page size |
/// | 13 | `effective_privileges` | caller, `& 1` space, pick, user pick |
/// | 14 | `effective_children` | caller, group pick, page size |
/// | 15 | `my_groups`, `my_spaces` | caller, `& 1` spaces, page size |
/// | 16 | `list_containers` (groups, spaces), `list_providers` | caller, `% 3`, page size |
/// | 17 | `get_group`, `get_space`, `space_supports` | caller, `% 3`, pick |
/// | 18 | `update_group`, `rename_space` | caller, `& 1` space, flags (name `% 8`, `& 8` no name, `& 0x10` a type `>> 6`), pick |
/// | 19 | `update_zone_privileges`, `zone_privileges`, `get_user`, `list_users`, `me` | caller, `% 5`, user pick, how (`% 3` set, grant, revoke; page size), profile |
/// | 20, 21 | `create_space_support_token`, `create_group_space_token` | caller, flags (`& 1` expiring zone), space or group pick |
/// | 22 | `create_access_token` | caller, flags (`& 1` expiring zone) |
/// | 23, 24 | `revoke_token`, `revoke_access_token` | caller, flags (`& 1` by identifier, else the whole token), token |
/// | 25 | `verify`, `verify_kind`, `examine_token`, `access_tokens`, `invite_tokens` of a space, of a group | `% 6`, caller, then kind (`% 4`) and token, or a pick |
/// | 26 | `authenticate` with a token | flags (`% 3`: as minted, attenuated with a later `time <`, attenuated with its own `tokenType`), token |
/// | 27, 28 | `support_space`, `create_space_with_token` | provider caller, size (MiB; 0 is invalid), name, token |
/// | 29 | `Store::purge_expired` | `% 4` limit, `& 4` at the end of time (else now) |
/// | 30 | `rotate_key`, `retire_key`, `list_keys` | caller, `% 3`, key id (`%` current + 2) |
/// | 31 | full comparison | none |
pub fn store_ops(data: &[u8]) {
    block_on(run_store_ops(data));
}

async fn run_store_ops(data: &[u8]) {
    let env = Env::new().await;
    let mut m = Model::default();
    m.keys.insert(1, false);
    let mut input = Input::new(data);
    for step in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let b = input.byte();
        let z = &env.zones[(step + usize::from(b >> 7)) % 2];
        let m = &mut m;
        let input = &mut input;
        match b & 0x1f {
            0 => create_user(z, m, input).await,
            op @ (1 | 2) => create_container(z, m, input, op == 1).await,
            3 => register_provider(&env, z, m, input).await,
            4 => delete_container(z, m, input).await,
            5 => delete_user(z, m, input).await,
            6 => delete_provider(z, m, input).await,
            op @ 7..=10 => membership(z, m, input, op).await,
            11 => list_members(z, m, input).await,
            op @ 12..=14 => effective(z, m, input, op).await,
            op @ (15 | 16) => listings(z, m, input, op).await,
            17 => get_container(z, m, input).await,
            18 => change_container(z, m, input).await,
            19 => users(z, m, input).await,
            op @ 20..=22 => mint(&env, z, m, input, op).await,
            op @ (23 | 24) => revoke(z, m, input, op).await,
            25 => token_query(z, m, input).await,
            26 => authenticate(z, m, input).await,
            op @ (27 | 28) => consume(z, m, input, op).await,
            29 => purge(z, m, input).await,
            30 => keys(z, m, input).await,
            _ => compare(z, m).await,
        }
    }
    for z in env.zones.iter().chain([&env.expiring]) {
        compare(z, &m).await;
    }
}
