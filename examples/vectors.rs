//! Regenerates the golden token vectors in `data/vectors/`.
//!
//! `cargo run --example vectors` rewrites `data/vectors/*.token`,
//! `data/vectors/vectors.json` and `data/vectors/README.md` from fixed inputs
//! (a fixed root key, fixed identifiers, fixed expiry) through the library's
//! public API only. The output is deterministic: CI runs this example and then
//! `git diff --exit-code -- data/vectors`, so any change to the wire format,
//! the key derivation or the signature chain shows up as a diff.
//!
//! Before writing anything, every vector is checked: it parses with
//! `wire::parse`, its packets are what was minted, and its signature equals
//! `wire::signature(secret, identifier, caveats)`. Any mismatch panics.

use std::fmt::Write as _;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;

use ozmint::model::{Id, TokenKind};
use ozmint::token::{keys, wire, Caveat};

/// The test root key: the 32 bytes 0x00, 0x01, ..., 0x1f.
const ROOT_KEY: [u8; 32] = {
    let mut k = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        k[i] = i as u8;
        i += 1;
    }
    k
};

/// The `time <` caveat of every minted vector: 2030-01-01T00:00:00Z.
const EXPIRY: u64 = 1_893_456_000;

/// The extra caveat of the attenuated vector: 2027-01-15T08:00:00Z.
const ATTENUATION_EXPIRY: u64 = 1_800_000_000;

/// A fixed identifier: byte `i` of the id is `seed + 59 * i` (mod 256), so
/// the 43-character text uses a wide spread of the base64url alphabet
/// (including `-` and `_`).
fn fixed_id(seed: u8) -> String {
    Id(std::array::from_fn(|i| {
        seed.wrapping_add((i as u8).wrapping_mul(59))
    }))
    .to_string()
}

/// One golden vector, as written to `vectors.json`.
#[derive(Serialize)]
struct Vector {
    /// File stem of `NAME.token`.
    name: String,
    /// What the vector is.
    description: String,
    /// The escaped wire form (what the server hands out).
    token: String,
    /// The same token un-escaped: base64url without padding.
    token_plain: String,
    /// The zone's root key.
    root_key_hex: String,
    /// The identifier packet (43 base64url characters).
    identifier: String,
    /// `keys::derive(root, identifier)`: the per-token macaroon secret.
    token_secret_hex: String,
    /// libmacaroons' derived key: HMAC-SHA256("macaroons-key-generator", secret).
    derived_key_hex: String,
    /// The location packet.
    location: String,
    /// First-party caveat predicates, in order.
    caveats: Vec<String>,
    /// The final signature of the HMAC chain.
    signature_hex: String,
    /// The vector this one attenuates (its caveats plus one), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    attenuates: Option<String>,
}

/// The whole `vectors.json`.
#[derive(Serialize)]
struct VectorFile {
    about: &'static str,
    root_key_hex: String,
    vectors: Vec<Vector>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn minted_caveats(kind: TokenKind) -> Vec<String> {
    vec![
        Caveat::TokenType(kind).to_predicate(),
        Caveat::TimeBefore(EXPIRY).to_predicate(),
    ]
}

/// Mints a vector with the fixed root key.
fn mint(name: &str, description: &str, location: &str, seed: u8, caveats: Vec<String>) -> Vector {
    let identifier = fixed_id(seed);
    let secret = keys::derive(&ROOT_KEY, identifier.as_bytes());
    let token = wire::mint(location, &secret, identifier.as_bytes(), &caveats)
        .unwrap_or_else(|e| panic!("{name}: mint failed: {e}"));
    complete(
        name,
        description,
        token,
        location,
        identifier,
        caveats,
        None,
    )
}

/// Fills in the derived fields of a vector from its token.
fn complete(
    name: &str,
    description: &str,
    token: String,
    location: &str,
    identifier: String,
    caveats: Vec<String>,
    attenuates: Option<String>,
) -> Vector {
    let secret = keys::derive(&ROOT_KEY, identifier.as_bytes());
    let token_plain =
        wire::unescape(&token).unwrap_or_else(|| panic!("{name}: token is not validly escaped"));
    let caveat_bytes: Vec<Vec<u8>> = caveats.iter().map(|c| c.as_bytes().to_vec()).collect();
    let signature = wire::signature(&secret, identifier.as_bytes(), &caveat_bytes);
    Vector {
        name: name.into(),
        description: description.into(),
        token,
        token_plain,
        root_key_hex: hex(&ROOT_KEY),
        identifier,
        token_secret_hex: hex(&secret),
        derived_key_hex: hex(&wire::derived_key(&secret)),
        location: location.into(),
        caveats,
        signature_hex: hex(&signature),
        attenuates,
    }
}

/// Panics unless the vector parses back to exactly what it claims.
fn check(v: &Vector) {
    let name = &v.name;
    let raw = wire::parse(&v.token).unwrap_or_else(|e| panic!("{name}: parse failed: {e}"));
    assert_eq!(
        raw.location.as_deref(),
        Some(v.location.as_str()),
        "{name}: location"
    );
    assert_eq!(
        raw.identifier,
        v.identifier.as_bytes(),
        "{name}: identifier"
    );
    let caveats: Vec<Vec<u8>> = v.caveats.iter().map(|c| c.as_bytes().to_vec()).collect();
    assert_eq!(raw.caveats, caveats, "{name}: caveats");
    let secret = keys::derive(&ROOT_KEY, v.identifier.as_bytes());
    let expected = wire::signature(&secret, &raw.identifier, &raw.caveats);
    assert_eq!(
        hex(&raw.signature),
        hex(&expected),
        "{name}: signature does not match wire::signature"
    );
    assert_eq!(hex(&expected), v.signature_hex, "{name}: signature_hex");
    assert_eq!(wire::escape(&v.token_plain), v.token, "{name}: escaping");
    assert!(!v.token_plain.contains('='), "{name}: plain form is padded");
    // The plain form is accepted too and means the same token.
    let plain =
        wire::parse(&v.token_plain).unwrap_or_else(|e| panic!("{name}: plain parse failed: {e}"));
    assert_eq!(plain, raw, "{name}: plain and escaped forms differ");
    // And it is the identifier of a well-formed id.
    let id: Id = v
        .identifier
        .parse()
        .unwrap_or_else(|_| panic!("{name}: identifier is not an id"));
    assert_eq!(id.to_string(), v.identifier, "{name}: identifier");
}

/// The V1 packets of a token: `(length field, key, value)`, checking every
/// length field against the packet's real length.
fn packets(v: &Vector) -> Vec<(String, String, Vec<u8>)> {
    let bin = URL_SAFE_NO_PAD
        .decode(&v.token_plain)
        .unwrap_or_else(|e| panic!("{}: not base64url: {e}", v.name));
    let mut out = Vec::new();
    let mut rest = &bin[..];
    while !rest.is_empty() {
        let len_field = std::str::from_utf8(&rest[..4.min(rest.len())])
            .unwrap_or_else(|_| panic!("{}: packet length is not text", v.name))
            .to_owned();
        let len = usize::from_str_radix(&len_field, 16)
            .unwrap_or_else(|_| panic!("{}: packet length {len_field:?}", v.name));
        assert!(len > 5 && len <= rest.len(), "{}: packet length", v.name);
        assert_eq!(rest[len - 1], b'\n', "{}: packet newline", v.name);
        let body = &rest[4..len - 1];
        let sp = body
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or_else(|| panic!("{}: packet without a space", v.name));
        let key = String::from_utf8(body[..sp].to_vec())
            .unwrap_or_else(|_| panic!("{}: packet key", v.name));
        out.push((len_field, key, body[sp + 1..].to_vec()));
        rest = &rest[len..];
    }
    out
}

fn readme(vectors: &[Vector]) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "# Golden token vectors

Generated by `cargo run --example vectors` (`examples/vectors.rs`); do not edit
by hand. CI regenerates them and fails on any difference
(`git diff --exit-code -- data/vectors`), so a change to the wire format, the
key derivation or the signature chain cannot go unnoticed.
`tests/interop.rs` checks every vector with pymacaroons.

## Files

- `NAME.token`: the token exactly as the server hands it out (escaped), one line.
- `vectors.json`: every vector with its inputs and intermediate values:
  `name`, `token` (escaped), `token_plain` (base64url, unpadded),
  `root_key_hex`, `identifier`, `token_secret_hex`, `derived_key_hex`,
  `location`, `caveats`, `signature_hex` and, for an attenuated vector,
  `attenuates` (the vector it extends by one caveat).

## Inputs

- Root key: the 32 bytes `00 01 02 ... 1f`
  (`{root}`). A test key: never use it in a zone.
- Identifiers: `Id(bytes).to_string()` (base64url of 32 bytes, no padding,
  43 characters) where byte `i` is `seed + 59 * i` mod 256, one seed per vector.
- Caveats: `tokenType = <type>` and `time < {EXPIRY}` (2030-01-01T00:00:00Z).
- Location: `onezone` (one vector uses `registry`, the older name).

## Derivation

1. Token secret: BLAKE3 in keyed mode, key = the root key, input =
   `\"ozmint token secret v1\\0\"` followed by the identifier text
   (`ozmint::token::keys::derive(root, identifier)`). The server stores no
   per-token secret; it derives it again from the token's identifier.
2. libmacaroons' derived key: `dk = HMAC-SHA256(key = \"macaroons-key-generator\",
   data = secret)` (`ozmint::token::wire::derived_key`). Libraries such as
   pymacaroons and libmacaroons take the *secret* and derive `dk` themselves.
3. Signature chain: `sig0 = HMAC-SHA256(dk, identifier)`, then
   `sig_i = HMAC-SHA256(sig_(i-1), caveat_i)` for every first-party caveat in
   order; the last one is the `signature` packet.
4. Wire form: the libmacaroons V1 packets `location`, `identifier`, `cid`...,
   `signature` (each a 4-digit lowercase hex length counting the whole packet,
   then `key value\\n`), base64url without padding, then escaped by Onedata's
   rule `0`->`00`, `_`->`01`, `-`->`02`, `/`->`03`, `+`->`04`, `=`->`05`.

Attenuation (appending a caveat) needs no secret: the holder computes
`HMAC-SHA256(old signature, caveat)`.

## The vectors

Packets are shown one per line as `LLLLkey value`; the signature value is
shown in hex (on the wire it is 32 raw bytes).",
        root = hex(&ROOT_KEY),
    );
    for v in vectors {
        let _ = writeln!(w, "\n### {}\n\n{}\n", v.name, v.description);
        if let Some(parent) = &v.attenuates {
            let _ = writeln!(
                w,
                "Made with `wire::attenuate` from `{parent}`: same identifier and secret, one more caveat.\n"
            );
        }
        let _ = writeln!(w, "- file: `{}.token`", v.name);
        let _ = writeln!(w, "- identifier: `{}`", v.identifier);
        let _ = writeln!(w, "- token secret: `{}`", v.token_secret_hex);
        let _ = writeln!(w, "- derived key: `{}`", v.derived_key_hex);
        let _ = writeln!(w, "- signature: `{}`", v.signature_hex);
        let _ = writeln!(w, "\nDecoded:\n\n```");
        for (len, key, value) in packets(v) {
            let value = if key == "signature" {
                hex(&value)
            } else {
                String::from_utf8_lossy(&value).into_owned()
            };
            let _ = writeln!(w, "{len}{key} {value}");
        }
        let _ = writeln!(w, "```\n\nEscaped token:\n\n```\n{}\n```", v.token);
    }
    s
}

fn write(dir: &Path, name: &str, contents: &str) {
    let path = dir.join(name);
    std::fs::write(&path, contents)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    let shown = path
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(&path);
    println!("wrote {} ({} bytes)", shown.display(), contents.len());
}

fn main() {
    let support = mint(
        "space_support",
        "A space support token (`tokenType = space_support_token`).",
        "onezone",
        1,
        minted_caveats(TokenKind::SpaceSupport),
    );
    let attenuated = {
        let caveat = Caveat::TimeBefore(ATTENUATION_EXPIRY).to_predicate();
        let token = wire::attenuate(&support.token, &caveat)
            .unwrap_or_else(|e| panic!("attenuate failed: {e}"));
        let mut caveats = support.caveats.clone();
        caveats.push(caveat);
        complete(
            "space_support_attenuated",
            "The `space_support` vector with an extra `time < 1800000000` caveat \
             (2027-01-15T08:00:00Z) appended by its holder.",
            token,
            &support.location,
            support.identifier.clone(),
            caveats,
            Some(support.name.clone()),
        )
    };
    let vectors = vec![
        support,
        mint(
            "space_create",
            "A space creation token (`tokenType = space_create_token`).",
            "onezone",
            2,
            minted_caveats(TokenKind::SpaceCreate),
        ),
        mint(
            "access",
            "A user access token (`tokenType = access_token`).",
            "onezone",
            3,
            minted_caveats(TokenKind::Access),
        ),
        mint(
            "provider",
            "A provider root token (`tokenType = provider_token`).",
            "onezone",
            4,
            minted_caveats(TokenKind::Provider),
        ),
        attenuated,
        mint(
            "registry_location",
            "A space support token with location `registry`, the zone's older name.",
            "registry",
            6,
            minted_caveats(TokenKind::SpaceSupport),
        ),
    ];
    for v in &vectors {
        check(v);
    }

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/vectors");
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    for v in &vectors {
        write(
            &dir,
            &format!("{}.token", v.name),
            &format!("{}\n", v.token),
        );
    }
    let file = VectorFile {
        about:
            "ozmint golden token vectors; generated by `cargo run --example vectors`, see README.md",
        root_key_hex: hex(&ROOT_KEY),
        vectors,
    };
    let mut json = serde_json::to_string_pretty(&file).expect("serialize vectors.json");
    json.push('\n');
    write(&dir, "vectors.json", &json);
    write(&dir, "README.md", &readme(&file.vectors));
    println!("{} vectors checked and written", file.vectors.len());
}
