//! The two Onezone token endpoints through HTTPS: answers, the token wire
//! format, status codes and their order, effective privileges, credentials
//! and restarts.

use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use ozmint::model::{
    GroupPrivilege, GroupPrivileges, SpacePrivilege, SpacePrivileges, ZonePrivilege, ZonePrivileges,
};
use ozmint::store::{GROUP_CHILDREN_REL, GROUP_USERS_REL, SPACE_GROUPS_REL};
use ozmint::token::keys::KeySource;
use ozmint::{Entity, Id, Subject, TokenKind};
use testkit::onedata;
use testkit::server::*;

const WEEK: u64 = 7 * 24 * 3600;

// ---------------------------------------------------------------------------
// The wire format, decoded independently of the crate.
// ---------------------------------------------------------------------------

/// One V1 packet: the whole packet bytes, its key and its value.
struct Packet {
    raw: Vec<u8>,
    key: String,
    value: Vec<u8>,
}

/// Splits a V1 macaroon into packets, checking each 4-lowercase-hex-digit
/// length against the packet's real length and the trailing newline.
fn v1_packets(bin: &[u8]) -> Vec<Packet> {
    let mut out = Vec::new();
    let mut rest = bin;
    while !rest.is_empty() {
        assert!(rest.len() >= 4, "truncated packet header");
        let hex = std::str::from_utf8(&rest[..4]).expect("ascii length");
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "length {hex:?} is 4 lowercase hex digits"
        );
        let len = usize::from_str_radix(hex, 16).expect("hex length");
        assert!(len > 5 && len <= rest.len(), "packet length {len} fits");
        let raw = rest[..len].to_vec();
        assert_eq!(raw[len - 1], b'\n', "packet ends with a newline");
        let body = &raw[4..len - 1];
        let sp = body
            .iter()
            .position(|&b| b == b' ')
            .expect("`key value` packet");
        out.push(Packet {
            key: String::from_utf8(body[..sp].to_vec()).expect("utf-8 key"),
            value: body[sp + 1..].to_vec(),
            raw,
        });
        rest = &rest[len..];
    }
    out
}

/// The escaped token to its binary V1 form.
fn token_bytes(token: &str) -> Vec<u8> {
    assert!(
        token.bytes().all(|b| b.is_ascii_alphanumeric()),
        "an escaped token is purely alphanumeric: {token}"
    );
    let plain = onedata::unescape(token);
    assert!(!plain.contains('='), "no padding");
    URL_SAFE_NO_PAD
        .decode(&plain)
        .expect("base64url without padding")
}

/// The identifier of a token, read from its packets.
fn token_identifier(token: &str) -> String {
    let packets = v1_packets(&token_bytes(token));
    let p = packets
        .iter()
        .find(|p| p.key == "identifier")
        .expect("identifier packet");
    String::from_utf8(p.value.clone()).expect("utf-8 identifier")
}

fn hmac256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Checks the packets of a freshly minted token of `caveat_type`, minted
/// no earlier than `before` (unix seconds). Returns (identifier, caveats, signature).
fn check_wire(token: &str, caveat_type: &str, before: u64) -> (String, Vec<Vec<u8>>, [u8; 32]) {
    let bin = token_bytes(token);
    let packets = v1_packets(&bin);
    assert_eq!(packets.len(), 5, "location, identifier, 2 cids, signature");

    assert_eq!(packets[0].raw, b"0015location onezone\n");

    let ident = &packets[1];
    assert_eq!(&ident.raw[..15], b"003bidentifier ");
    assert_eq!(ident.raw.len(), 0x3b);
    assert_eq!(ident.key, "identifier");
    assert_eq!(ident.value.len(), 43);
    assert!(
        ident
            .value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'),
        "base64url identifier"
    );
    let decoded = URL_SAFE_NO_PAD
        .decode(&ident.value)
        .expect("identifier decodes");
    assert_eq!(decoded.len(), 32, "32 random bytes");

    let want_type = format!("cid tokenType = {caveat_type}\n");
    assert_eq!(
        &packets[2].raw[4..],
        want_type.as_bytes(),
        "{}",
        String::from_utf8_lossy(&packets[2].raw)
    );
    assert_eq!(packets[2].raw.len(), 4 + want_type.len());

    let time = &packets[3];
    assert_eq!(time.key, "cid");
    let pred = std::str::from_utf8(&time.value).expect("utf-8 caveat");
    let n: u64 = pred
        .strip_prefix("time < ")
        .unwrap_or_else(|| panic!("time caveat, got {pred:?}"))
        .parse()
        .expect("unix seconds");
    assert!(n > before, "expiry {n} is in the future (now {before})");
    assert!(
        n <= before + WEEK + 60,
        "expiry {n} at most 7 days ahead (now {before})"
    );

    let sig = &packets[4];
    assert_eq!(&sig.raw[..14], b"002fsignature ");
    assert_eq!(sig.raw.len(), 0x2f);
    assert_eq!(sig.value.len(), 32);
    let signature: [u8; 32] = sig.value.as_slice().try_into().expect("32 bytes");

    // Nothing else: the packets cover the whole token.
    let total: usize = packets.iter().map(|p| p.raw.len()).sum();
    assert_eq!(total, bin.len());

    let identifier = String::from_utf8(ident.value.clone()).expect("utf-8");
    let caveats = vec![packets[2].value.clone(), packets[3].value.clone()];
    (identifier, caveats, signature)
}

// ---------------------------------------------------------------------------
// Both endpoints answer, over HTTP/1.1 and HTTP/2.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_endpoints_mint_for_admin_over_http1_and_http2() {
    let s = start_demo().await;
    let h1 = client_builder().http1_only().build().expect("client");
    let h2 = client();
    for (client, version) in [
        (&h1, reqwest::Version::HTTP_11),
        (&h2, reqwest::Version::HTTP_2),
    ] {
        let resp = client
            .post(s.space_url(DEMO_SPACE))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .send()
            .await
            .expect("space request");
        assert_eq!(resp.version(), version);
        expect_token(resp).await;

        let resp = client
            .get(s.group_url(DEMO_GROUP))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .send()
            .await
            .expect("group request");
        assert_eq!(resp.version(), version);
        expect_token(resp).await;
    }
    drop((h1, h2));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_tokens_from_each_endpoint_are_distinct_with_distinct_identifiers() {
    let s = start_demo().await;
    for group_endpoint in [false, true] {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let client = s.client.clone();
            let url = if group_endpoint {
                s.group_url(DEMO_GROUP)
            } else {
                s.space_url(DEMO_SPACE)
            };
            set.spawn(async move {
                let req = if group_endpoint {
                    client.get(url)
                } else {
                    client.post(url)
                };
                expect_token(
                    req.basic_auth(ADMIN.0, Some(ADMIN.1))
                        .send()
                        .await
                        .expect("request"),
                )
                .await
            });
        }
        let mut tokens = HashSet::new();
        let mut idents = HashSet::new();
        while let Some(t) = set.join_next().await {
            let t = t.expect("task");
            assert!(idents.insert(token_identifier(&t)), "identifier repeated");
            assert!(tokens.insert(t), "token repeated");
        }
        assert_eq!(tokens.len(), 50);
        assert_eq!(idents.len(), 50);
    }
    s.stop().await;
}

// ---------------------------------------------------------------------------
// Wire format and signature.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minted_tokens_have_the_legacy_v1_wire_format_and_verify() {
    let s = start_demo().await;
    let admin = id(ADMIN_ID);
    let mut entity_ids: HashSet<String> = [DEMO_SPACE, DEMO_GROUP, ADMIN_ID, GUEST_ID, CAROL_ID]
        .into_iter()
        .map(String::from)
        .collect();
    {
        let store = s.store();
        let (users, more) = store.users(None, 1000).await.expect("users");
        assert!(!more, "every user on one page");
        entity_ids.extend(users.into_iter().map(|(i, _)| i.to_string()));
        let (groups, more) = store.groups(None, 1000).await.expect("groups");
        assert!(!more, "every group on one page");
        entity_ids.extend(groups.into_iter().map(|(i, _)| i.to_string()));
        let (spaces, more) = store.spaces(None, 1000).await.expect("spaces");
        assert!(!more, "every space on one page");
        entity_ids.extend(spaces.into_iter().map(|(i, _)| i.to_string()));
        let (providers, more) = store.providers(None, 1000).await.expect("providers");
        assert!(!more, "every provider on one page");
        entity_ids.extend(providers.into_iter().map(|(i, _)| i.to_string()));
    }

    for (group_endpoint, caveat, kind, target) in [
        (
            false,
            "space_support_token",
            TokenKind::SpaceSupport,
            DEMO_SPACE,
        ),
        (
            true,
            "space_create_token",
            TokenKind::SpaceCreate,
            DEMO_GROUP,
        ),
    ] {
        let before = unix_now();
        let resp = if group_endpoint {
            s.group_token_as(DEMO_GROUP, ADMIN).await
        } else {
            s.space_token_as(DEMO_SPACE, ADMIN).await
        };
        let token = expect_token(resp).await;
        let (identifier, caveats, signature) = check_wire(&token, caveat, before);

        // The library agrees: right kind, target and issuer.
        let v = s.zone().verify(&token).await.expect("token verifies");
        assert_eq!(v.record.kind, kind);
        assert_eq!(v.record.target, id(target));
        assert_eq!(v.record.issuer, Subject::User(admin));
        assert_eq!(v.id.to_string(), identifier);
        assert!(v.record.expires > before && v.record.expires <= before + WEEK + 60);
        s.zone()
            .verify_kind(&token, kind)
            .await
            .expect("verifies as its own kind");

        // The identifier is not any entity's id.
        assert!(
            !entity_ids.contains(&identifier),
            "identifier {identifier} equals an entity id"
        );
        assert_ne!(v.id, v.record.target);

        // The signature is the HMAC chain over the token's secret.
        let keys = s.store().root_keys().await.expect("root keys");
        let root = keys
            .secret(v.record.key_id)
            .expect("the token's root key is stored");
        let secret = ozmint::token::keys::derive(&root, identifier.as_bytes());
        let derived = hmac256(b"macaroons-key-generator", &secret);
        let mut sig = hmac256(&derived, identifier.as_bytes());
        for c in &caveats {
            sig = hmac256(&sig, c);
        }
        assert_eq!(sig, signature, "HMAC chain recomputed in the test");
        assert_eq!(
            ozmint::token::wire::signature(&secret, identifier.as_bytes(), &caveats),
            signature,
            "the crate's chain"
        );
        // Another secret does not produce it.
        let other = ozmint::token::keys::derive(&root, b"another identifier");
        assert_ne!(
            ozmint::token::wire::signature(&other, identifier.as_bytes(), &caveats),
            signature
        );
    }
    s.stop().await;
}

// ---------------------------------------------------------------------------
// Status codes and their order.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_is_401_before_404_and_before_a_malformed_id() {
    let s = start_demo().await;
    let unknown = Id::random().to_string();
    let too_long = format!("{DEMO_SPACE}A");
    for space in [DEMO_SPACE, unknown.as_str(), "abc", too_long.as_str()] {
        let resp = s
            .client
            .post(s.space_url(space))
            .send()
            .await
            .expect("request");
        assert!(resp.headers().contains_key("www-authenticate"));
        assert_error_code(resp, 401, "unauthorized").await;
    }
    for group in [DEMO_GROUP, unknown.as_str(), "abc", too_long.as_str()] {
        let resp = s
            .client
            .get(s.group_url(group))
            .send()
            .await
            .expect("request");
        assert_error_code(resp, 401, "unauthorized").await;
    }
    s.stop().await;
}

/// An encoded slash in the id segment is refused by the router, before
/// authentication (documented in src/http/routes.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_slash_in_the_path_is_400_even_without_credentials() {
    let s = start_demo().await;
    let resp = s
        .client
        .post(s.space_url("abc%2Fdef"))
        .send()
        .await
        .expect("request");
    assert_error_code(resp, 400, "invalid_request").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_are_401_malformed_basic_is_400() {
    let s = start_demo().await;
    // Wrong password, unknown user: 401.
    for (user, pw) in [("admin", "wrong"), ("nobody", "password"), ("admin", "")] {
        let resp = s.space_token_as(DEMO_SPACE, (user, pw)).await;
        assert!(resp.headers().contains_key("www-authenticate"));
        assert_error_code(resp, 401, "invalid_credentials").await;
    }
    // Same with an unknown space: still 401 first.
    let resp = s
        .space_token_as(&Id::random().to_string(), ("admin", "wrong"))
        .await;
    assert_error(resp, 401).await;
    // Garbage Basic: not base64, no colon, unknown scheme: 400.
    let no_colon = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("adminpassword")
    );
    for header in ["Basic !!!not-base64!!!", no_colon.as_str(), "Digest abc"] {
        let resp = s
            .client
            .post(s.space_url(DEMO_SPACE))
            .header("authorization", header)
            .send()
            .await
            .expect("request");
        assert_error_code(resp, 400, "invalid_request").await;
    }
    // The right password still works after all that.
    expect_token(s.space_token_as(DEMO_SPACE, ADMIN).await).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_with_colons_and_non_ascii_characters_authenticate() {
    let s = start_demo().await;
    let zone: ZonePrivileges = [ZonePrivilege::SpacesAddRelationships]
        .into_iter()
        .collect();
    s.add_user("colon", "a:b:c", zone).await;
    s.add_user("unicode", "pässwörd ✓", zone).await;
    expect_token(s.space_token_as(DEMO_SPACE, ("colon", "a:b:c")).await).await;
    expect_token(
        s.space_token_as(DEMO_SPACE, ("unicode", "pässwörd ✓"))
            .await,
    )
    .await;
    assert_error(s.space_token_as(DEMO_SPACE, ("colon", "a:b")).await, 401).await;
    assert_error(s.space_token_as(DEMO_SPACE, ("colon", "a")).await, 401).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_in_x_auth_token_is_401_invalid_token() {
    let s = start_demo().await;
    // A valid space support token is not an access token either.
    let support = expect_token(s.space_token_as(DEMO_SPACE, ADMIN).await).await;
    for bad in ["garbage", "MDAxNWxvY2F0aW9uIG9uZXpvbmUK", support.as_str()] {
        let resp = s
            .client
            .post(s.space_url(DEMO_SPACE))
            .header("x-auth-token", bad)
            .send()
            .await
            .expect("request");
        assert_error_code(resp, 401, "invalid_token").await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_authenticate_in_every_accepted_header() {
    let s = start_demo().await;
    let admin = id(ADMIN_ID);
    let access = s
        .zone()
        .mint(TokenKind::Access, admin, Subject::User(admin))
        .await
        .expect("mint an access token")
        .token;
    for (name, value) in [
        ("x-auth-token", access.clone()),
        ("authorization", format!("Bearer {access}")),
        ("macaroon", access.clone()),
    ] {
        let resp = s
            .client
            .post(s.space_url(DEMO_SPACE))
            .header(name, value.as_str())
            .send()
            .await
            .expect("request");
        expect_token(resp).await;
        let resp = s
            .client
            .get(s.group_url(DEMO_GROUP))
            .header(name, value.as_str())
            .send()
            .await
            .expect("request");
        expect_token(resp).await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_credentials_at_once_are_400() {
    let s = start_demo().await;
    let admin = id(ADMIN_ID);
    let access = s
        .zone()
        .mint(TokenKind::Access, admin, Subject::User(admin))
        .await
        .expect("mint an access token")
        .token;
    // Basic + X-Auth-Token, both valid.
    let resp = s
        .client
        .post(s.space_url(DEMO_SPACE))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .header("x-auth-token", access.as_str())
        .send()
        .await
        .expect("request");
    assert_error_code(resp, 400, "invalid_request").await;
    // X-Auth-Token + macaroon, and on the group endpoint.
    let resp = s
        .client
        .get(s.group_url(DEMO_GROUP))
        .header("x-auth-token", access.as_str())
        .header("macaroon", access.as_str())
        .send()
        .await
        .expect("request");
    assert_error_code(resp, 400, "invalid_request").await;
    // Basic with a wrong password + a garbage token: still 400, not 401.
    let resp = s
        .client
        .post(s.space_url(DEMO_SPACE))
        .basic_auth("admin", Some("wrong"))
        .header("x-auth-token", "garbage")
        .send()
        .await
        .expect("request");
    assert_error(resp, 400).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ids_are_400_once_authenticated() {
    let s = start_demo().await;
    let too_long = format!("{DEMO_SPACE}A");
    let too_short = &DEMO_SPACE[..42];
    // 43 characters, but the last one carries bits beyond the 32 bytes.
    let non_canonical = format!("{}d", &DEMO_SPACE[..42]);
    let bad = [
        "abc",
        too_long.as_str(),
        too_short,
        non_canonical.as_str(),
        "abc%2Fdef",
    ];
    for id in bad {
        let resp = s.space_token_as(id, ADMIN).await;
        assert_error_code(resp, 400, "invalid_request").await;
        let resp = s.group_token_as(id, ADMIN).await;
        assert_error_code(resp, 400, "invalid_request").await;
        // A user without any privilege gets the same 400.
        let resp = s.group_token_as(id, CAROL).await;
        assert_error(resp, 400).await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_well_formed_ids_are_404_before_403() {
    let s = start_demo().await;
    s.add_user("nobody", "nobody-pw", ZonePrivileges::empty())
        .await;
    let unknown = Id::random().to_string();
    for who in [ADMIN, CAROL, GUEST, ("nobody", "nobody-pw")] {
        let resp = s.space_token_as(&unknown, who).await;
        assert_error_code(resp, 404, "not_found").await;
        let resp = s.group_token_as(&unknown, who).await;
        assert_error_code(resp, 404, "not_found").await;
        // An existing entity of the other kind is not found either.
        let resp = s.space_token_as(DEMO_GROUP, who).await;
        assert_error_code(resp, 404, "not_found").await;
        let resp = s.group_token_as(DEMO_SPACE, who).await;
        assert_error_code(resp, 404, "not_found").await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileges_of_the_demo_users_decide_200_or_403() {
    let s = start_demo().await;
    // carol: group member with default privileges; the group holds
    // space_add_provider in the demo space.
    assert_error_code(s.group_token_as(DEMO_GROUP, CAROL).await, 403, "forbidden").await;
    expect_token(s.space_token_as(DEMO_SPACE, CAROL).await).await;
    // guest: a plain member of the group.
    assert_error_code(s.group_token_as(DEMO_GROUP, GUEST).await, 403, "forbidden").await;
    // A fresh user without memberships.
    s.add_user("loner", "loner-pw", ZonePrivileges::empty())
        .await;
    let loner = ("loner", "loner-pw");
    assert_error_code(s.space_token_as(DEMO_SPACE, loner).await, 403, "forbidden").await;
    assert_error_code(s.group_token_as(DEMO_GROUP, loner).await, 403, "forbidden").await;
    // admin: both.
    expect_token(s.space_token_as(DEMO_SPACE, ADMIN).await).await;
    expect_token(s.group_token_as(DEMO_GROUP, ADMIN).await).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_is_405_with_allow_and_json() {
    let s = start_demo().await;
    for authenticated in [false, true] {
        let mut req = s.client.get(s.space_url(DEMO_SPACE));
        if authenticated {
            req = req.basic_auth(ADMIN.0, Some(ADMIN.1));
        }
        let resp = req.send().await.expect("request");
        assert_eq!(
            resp.headers().get("allow").map(|v| v.to_str().unwrap()),
            Some("POST")
        );
        assert_error_code(resp, 405, "method_not_allowed").await;

        let mut req = s.client.post(s.group_url(DEMO_GROUP));
        if authenticated {
            req = req.basic_auth(ADMIN.0, Some(ADMIN.1));
        }
        let resp = req.send().await.expect("request");
        assert_eq!(
            resp.headers().get("allow").map(|v| v.to_str().unwrap()),
            Some("GET")
        );
        assert_error_code(resp, 405, "method_not_allowed").await;
    }
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE] {
        let resp = s
            .client
            .request(method, s.space_url(DEMO_SPACE))
            .send()
            .await
            .expect("request");
        assert_error(resp, 405).await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_404_json() {
    let s = start_demo().await;
    let urls = [
        s.url("/nope"),
        format!("{}/", s.base()),
        // `/spaces/{id}` and `/groups/{id}` became routes of the growing
        // API (entity details), so they are no longer unknown paths.
        s.url(&format!("/spaces/{DEMO_SPACE}/providers/token/extra")),
        s.url(&format!("/groups/{DEMO_GROUP}/spaces/token/extra")),
        s.url(&format!("/spaces/{DEMO_SPACE}/nope")),
        s.url(&format!("/nope/{DEMO_SPACE}/providers/token")),
        format!(
            "{}/api/v2/onezone/spaces/{DEMO_SPACE}/providers/token",
            s.base()
        ),
        s.url(""),
        format!(
            "{}/api/v3/onezonex/spaces/{DEMO_SPACE}/providers/token",
            s.base()
        ),
    ];
    for url in urls {
        for authenticated in [false, true] {
            let mut req = s.client.get(&url);
            if authenticated {
                req = req.basic_auth(ADMIN.0, Some(ADMIN.1));
            }
            let resp = req.send().await.expect("request");
            assert_error_code(resp, 404, "not_found").await;
        }
    }
    s.stop().await;
}

// ---------------------------------------------------------------------------
// Effective privileges and zone privileges.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effective_privileges_follow_nested_groups_and_changes_at_once() {
    let s = start_demo().await;
    let user = s
        .add_user("nested", "nested-pw", ZonePrivileges::empty())
        .await;
    let who = ("nested", "nested-pw");
    let store = s.store();
    let space = id(DEMO_SPACE);
    let top = store.create_group("top", None).await.expect("top");
    let mid = store.create_group("mid", None).await.expect("mid");
    let bottom = store.create_group("bottom", None).await.expect("bottom");
    let member = GroupPrivileges::member_default();
    store
        .put_relation(&GROUP_CHILDREN_REL, &top, &mid, &member)
        .await
        .expect("top > mid");
    store
        .put_relation(&GROUP_CHILDREN_REL, &mid, &bottom, &member)
        .await
        .expect("mid > bottom");
    store
        .put_relation(&GROUP_USERS_REL, &bottom, &user, &member)
        .await
        .expect("user in bottom");

    // Not yet related to the space.
    assert_error_code(s.space_token_as(DEMO_SPACE, who).await, 403, "forbidden").await;

    let add: SpacePrivileges = [SpacePrivilege::AddProvider].into_iter().collect();
    store
        .put_relation(&SPACE_GROUPS_REL, &space, &top, &add)
        .await
        .expect("top in the space");
    expect_token(s.space_token_as(DEMO_SPACE, who).await).await;
    expect_token(s.space_token_as(DEMO_SPACE, who).await).await;

    // Cutting mid > bottom takes effect on the very next request.
    let removed = store
        .remove_relation(&GROUP_CHILDREN_REL, &mid, &bottom)
        .await
        .expect("remove mid > bottom");
    assert!(removed);
    assert_error_code(s.space_token_as(DEMO_SPACE, who).await, 403, "forbidden").await;

    // Restoring it, too.
    store
        .put_relation(
            &GROUP_CHILDREN_REL,
            &mid,
            &bottom,
            &GroupPrivileges::member_default(),
        )
        .await
        .expect("restore mid > bottom");
    expect_token(s.space_token_as(DEMO_SPACE, who).await).await;

    // Group endpoint: nobody in the chain holds group_create_space_token yet.
    let (top_s, mid_s, bottom_s) = (top.to_string(), mid.to_string(), bottom.to_string());
    for g in [&top_s, &mid_s, &bottom_s] {
        assert_error_code(s.group_token_as(g, who).await, 403, "forbidden").await;
    }
    // Grant it to `mid` inside `top`: members of mid (through bottom) may mint
    // space creation tokens for `top`...
    let grant: GroupPrivileges = [GroupPrivilege::ViewData, GroupPrivilege::CreateSpaceToken]
        .into_iter()
        .collect();
    store
        .update_relation(&GROUP_CHILDREN_REL, &top, &mid, |_| Ok(grant))
        .await
        .expect("grant to mid in top");
    let token = expect_token(s.group_token_as(&top_s, who).await).await;
    let v = s.zone().verify(&token).await.expect("verifies");
    assert_eq!(v.record.kind, TokenKind::SpaceCreate);
    assert_eq!(v.record.target, top);
    assert_eq!(v.record.issuer, Subject::User(user));
    // ...but not for `mid` itself (bottom holds only the member defaults in
    // mid) nor for `bottom` (the user's direct privileges are the defaults).
    assert_error_code(s.group_token_as(&mid_s, who).await, 403, "forbidden").await;
    assert_error_code(s.group_token_as(&bottom_s, who).await, 403, "forbidden").await;

    // Cutting mid > bottom also removes the privilege in top at once.
    assert!(store
        .remove_relation(&GROUP_CHILDREN_REL, &mid, &bottom)
        .await
        .expect("remove mid > bottom"));
    assert_error_code(s.group_token_as(&top_s, who).await, 403, "forbidden").await;
    // A direct grant in the user's own group works.
    store
        .update_relation(&GROUP_USERS_REL, &bottom, &user, |_| Ok(grant))
        .await
        .expect("grant to the user in bottom");
    expect_token(s.group_token_as(&bottom_s, who).await).await;
    // Revoking the space privilege of `top` leaves the user without it.
    store
        .put_relation(
            &GROUP_CHILDREN_REL,
            &mid,
            &bottom,
            &GroupPrivileges::member_default(),
        )
        .await
        .expect("restore mid > bottom");
    expect_token(s.space_token_as(DEMO_SPACE, who).await).await;
    store
        .update_relation(&SPACE_GROUPS_REL, &space, &top, |_| {
            Ok(SpacePrivileges::member_default())
        })
        .await
        .expect("revoke in the space");
    assert_error_code(s.space_token_as(DEMO_SPACE, who).await, 403, "forbidden").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_privileges_alone_allow_each_endpoint() {
    let s = start_demo().await;
    let spaces: ZonePrivileges = [ZonePrivilege::SpacesAddRelationships]
        .into_iter()
        .collect();
    let groups: ZonePrivileges = [ZonePrivilege::GroupsAddRelationships]
        .into_iter()
        .collect();
    s.add_user("spaceadmin", "sa-pw", spaces).await;
    s.add_user("groupadmin", "ga-pw", groups).await;
    let sa = ("spaceadmin", "sa-pw");
    let ga = ("groupadmin", "ga-pw");

    expect_token(s.space_token_as(DEMO_SPACE, sa).await).await;
    assert_error_code(s.group_token_as(DEMO_GROUP, sa).await, 403, "forbidden").await;

    expect_token(s.group_token_as(DEMO_GROUP, ga).await).await;
    assert_error_code(s.space_token_as(DEMO_SPACE, ga).await, 403, "forbidden").await;

    // Zone privileges do not turn an unknown entity into a 200.
    let unknown = Id::random().to_string();
    assert_error(s.space_token_as(&unknown, sa).await, 404).await;
    assert_error(s.group_token_as(&unknown, ga).await, 404).await;
    s.stop().await;
}

// ---------------------------------------------------------------------------
// Credentials changes are seen at once.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_refuses_the_old_password_on_the_next_request() {
    let s = start_demo().await;
    let carol = id(CAROL_ID);
    // Two successes: the second one comes from the credentials cache.
    expect_token(s.space_token_as(DEMO_SPACE, CAROL).await).await;
    expect_token(s.space_token_as(DEMO_SPACE, CAROL).await).await;

    let hash = blocking(|| ozmint::ops::auth::hash_password("carol-new").expect("hash")).await;
    s.store()
        .update_user(&carol, |u| {
            u.password_hash = hash.clone();
            Ok(())
        })
        .await
        .expect("change carol's password");

    assert_error_code(
        s.space_token_as(DEMO_SPACE, CAROL).await,
        401,
        "invalid_credentials",
    )
    .await;
    expect_token(s.space_token_as(DEMO_SPACE, ("carol", "carol-new")).await).await;
    assert_error(s.space_token_as(DEMO_SPACE, CAROL).await, 401).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_user_is_refused_on_the_next_request_despite_the_cache() {
    let s = start_demo().await;
    let user = s
        .add_user(
            "ephemeral",
            "eph-pw",
            [ZonePrivilege::SpacesAddRelationships]
                .into_iter()
                .collect(),
        )
        .await;
    let who = ("ephemeral", "eph-pw");
    expect_token(s.space_token_as(DEMO_SPACE, who).await).await;
    expect_token(s.space_token_as(DEMO_SPACE, who).await).await;
    s.store()
        .delete(Entity::User, &user)
        .await
        .expect("delete the user");
    assert_error_code(
        s.space_token_as(DEMO_SPACE, who).await,
        401,
        "invalid_credentials",
    )
    .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_privilege_revocation_is_seen_at_once() {
    let s = start_demo().await;
    let user = s
        .add_user(
            "zoner",
            "zoner-pw",
            [ZonePrivilege::GroupsAddRelationships]
                .into_iter()
                .collect(),
        )
        .await;
    let who = ("zoner", "zoner-pw");
    expect_token(s.group_token_as(DEMO_GROUP, who).await).await;
    s.store()
        .update_user(&user, |u| {
            u.zone_privileges = ZonePrivileges::empty();
            Ok(())
        })
        .await
        .expect("revoke");
    assert_error_code(s.group_token_as(DEMO_GROUP, who).await, 403, "forbidden").await;
    s.stop().await;
}

// ---------------------------------------------------------------------------
// Restart on the same data directory.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_users_and_certificate_survive_a_restart() {
    let s = start_demo().await;
    assert_eq!(s.boot, ozmint::serve::Bootstrap::Demo);
    let mut tokens = Vec::new();
    for i in 0..5 {
        let resp = if i % 2 == 0 {
            s.space_token_as(DEMO_SPACE, ADMIN).await
        } else {
            s.group_token_as(DEMO_GROUP, ADMIN).await
        };
        tokens.push(expect_token(resp).await);
    }
    let cert_path = s.dir.path().join("tls").join("cert.pem");
    let cert_before = std::fs::read(&cert_path).expect("cert.pem exists");
    let old_port = s.port();

    let dir = s.stop().await;
    // The old server no longer answers.
    let closed = client()
        .post(format!(
            "https://127.0.0.1:{old_port}{PREFIX}/spaces/{DEMO_SPACE}/providers/token"
        ))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await;
    assert!(closed.is_err(), "the stopped server still answers");

    let s = start_on(dir, false).await;
    assert_eq!(s.boot, ozmint::serve::Bootstrap::Existing);
    for (i, t) in tokens.iter().enumerate() {
        let v = s
            .zone()
            .verify(t)
            .await
            .unwrap_or_else(|e| panic!("token {i} verifies after the restart: {e}"));
        let kind = if i % 2 == 0 {
            TokenKind::SpaceSupport
        } else {
            TokenKind::SpaceCreate
        };
        assert_eq!(v.record.kind, kind);
    }
    let fresh = expect_token(s.space_token_as(DEMO_SPACE, ADMIN).await).await;
    assert!(!tokens.contains(&fresh));
    expect_token(s.group_token_as(DEMO_GROUP, ADMIN).await).await;
    assert_error(s.space_token_as(DEMO_SPACE, ("admin", "wrong")).await, 401).await;
    let cert_after = std::fs::read(&cert_path).expect("cert.pem still exists");
    assert_eq!(
        cert_before, cert_after,
        "cert.pem is unchanged by the restart"
    );
    s.stop().await;
}
