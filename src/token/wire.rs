//! The token wire format: the only module that touches the `macaroon` crate.
//!
//! A token is a libmacaroons V1 macaroon (packets `location`, `identifier`,
//! `cid`..., `signature`), encoded base64url without padding, then escaped by
//! Onedata's rule (`0`->`00`, `_`->`01`, `-`->`02`, `/`->`03`, `+`->`04`,
//! `=`->`05`). Readers accept the escaped form and plain base64/base64url with
//! or without padding. The signature chain is recomputed here with RustCrypto's
//! HMAC and compared in constant time; the crate's own verifier is not used.

use std::fmt;
use std::sync::Once;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use macaroon::{ByteString, Macaroon, MacaroonKey};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::TokenError;

/// Longest token accepted, in base64 characters after un-escaping (the
/// escaped form may be up to twice as long). Checked before any byte is
/// decoded (the macaroon crate's V1 parser, no longer used to read tokens,
/// recursed once per packet and overflowed the stack on inputs of ~90 KB).
///
/// Onedata itself accepts 1 MiB; ozmint's cap is deliberate. It was 8 KiB
/// for the legacy tokens (two short caveats); 20.02+ tokens carry their
/// subject and type in the identifier and list-valued caveats (`data.path`,
/// `data.objectid`, `api`), so it is 16 KiB: the fullest token of ctool's
/// compatibility tests (all 13 caveat kinds) is 1.1 KiB, so a token has
/// room for well over ten times that.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Most caveats accepted on one token.
pub const MAX_CAVEATS: usize = 64;

/// The key libmacaroons derives signing keys with.
const KEY_GENERATOR: &[u8] = b"macaroons-key-generator";

type HmacSha256 = Hmac<Sha256>;

/// A parsed, not yet verified token.
#[derive(Clone, PartialEq, Eq)]
pub struct RawToken {
    /// The `location` packet, if present.
    pub location: Option<String>,
    /// The `identifier` packet.
    pub identifier: Vec<u8>,
    /// First-party caveat predicates, in order.
    pub caveats: Vec<Vec<u8>>,
    /// The signature (secret: never printed).
    pub signature: [u8; 32],
}

impl fmt::Debug for RawToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawToken")
            .field("location", &self.location)
            .field("identifier", &String::from_utf8_lossy(&self.identifier))
            .field(
                "caveats",
                &self
                    .caveats
                    .iter()
                    .map(|c| String::from_utf8_lossy(c))
                    .collect::<Vec<_>>(),
            )
            .field("signature", &"<redacted>")
            .finish()
    }
}

fn init() {
    static INIT: Once = Once::new();
    // sodiumoxide's init only fails if libsodium cannot initialise at all, in
    // which case minting below fails loudly through the crate's own checks.
    INIT.call_once(|| {
        let _ = macaroon::initialize();
    });
}

/// Escapes base64 text by Onedata's rule.
pub fn escape(b64: &str) -> String {
    let mut out = String::with_capacity(b64.len() + b64.len() / 8);
    let mut rest = b64;
    // Runs without a replaced character are copied whole (a table lookup per
    // byte finds them: this runs on every token minted).
    while let Some(i) = rest.bytes().position(|b| ESCAPE_CODE[usize::from(b)] != 0) {
        let (run, tail) = rest.split_at(i);
        out.push_str(run);
        out.push('0');
        out.push(char::from(ESCAPE_CODE[usize::from(tail.as_bytes()[0])]));
        // The replaced character is ASCII: one byte.
        rest = &tail[1..];
    }
    out.push_str(rest);
    out
}

/// The characters [`escape`] replaces, and the digit that follows `0` for each.
const ESCAPED: [u8; 6] = *b"0_-/+=";
const ESCAPE_CODES: [u8; 6] = *b"012345";

/// [`ESCAPE_CODES`] by byte: the digit for a replaced character, else 0.
const ESCAPE_CODE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < ESCAPED.len() {
        t[ESCAPED[i] as usize] = ESCAPE_CODES[i];
        i += 1;
    }
    t
};

/// Reverses [`escape`]; `None` if `s` is not validly escaped.
pub fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(i) = memchr::memchr(b'0', rest) {
        out.extend_from_slice(&rest[..i]);
        let code = *rest.get(i + 1)?;
        out.push(ESCAPED[ESCAPE_CODES.iter().position(|c| *c == code)?]);
        rest = &rest[i + 2..];
    }
    out.extend_from_slice(rest);
    // Runs between escapes are copied whole and `0` never occurs inside a
    // multi-byte UTF-8 sequence, so the result is valid UTF-8.
    String::from_utf8(out).ok()
}

/// libmacaroons' derived key: HMAC-SHA256(key = "macaroons-key-generator", data = secret).
///
/// Secrets may be of any length: ozmint's are 32 bytes, Onezone's are the
/// ASCII hex of random bytes, ctool's tests use short phrases.
pub fn derived_key(secret: &[u8]) -> [u8; 32] {
    hmac(KEY_GENERATOR, secret)
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The signature of a macaroon with this secret, identifier and caveats.
pub fn signature(secret: &[u8], identifier: &[u8], caveats: &[Vec<u8>]) -> [u8; 32] {
    extend_signature(hmac(&derived_key(secret), identifier), caveats)
}

/// The signature after appending `caveats` to a macaroon signed `sig`.
fn extend_signature<C: AsRef<[u8]>>(mut sig: [u8; 32], caveats: &[C]) -> [u8; 32] {
    for c in caveats {
        sig = hmac(&sig, c.as_ref());
    }
    sig
}

/// Whether the token's signature is the one `secret` produces (constant time).
pub fn signature_matches(raw: &RawToken, secret: &[u8]) -> bool {
    let expected = signature(secret, &raw.identifier, &raw.caveats);
    expected.ct_eq(&raw.signature).into()
}

fn signature_of(m: &Macaroon) -> Result<[u8; 32], TokenError> {
    m.signature()[..]
        .try_into()
        .map_err(|_| TokenError::Malformed)
}

/// Mints a token: V1 macaroon signed with `secret`'s derived key, first-party
/// caveats in order, base64url without padding, escaped. Refused with
/// [`TokenError::TooLong`] past [`MAX_CAVEATS`] or [`MAX_TOKEN_LEN`], so that
/// what it returns always parses again.
pub fn mint(
    location: &str,
    secret: &[u8],
    identifier: &[u8],
    caveats: &[String],
) -> Result<String, TokenError> {
    check_parts(Some(location), identifier, caveats)?;
    init();
    // libmacaroons' key derivation, computed here with RustCrypto's faster
    // SHA-256 (same bytes as `MacaroonKey::generate`; the proptest below
    // compares whole tokens with the crate's).
    let key = MacaroonKey::from(&derived_key(secret));
    let mut m = Macaroon::create(
        Some(location.to_owned()),
        &key,
        ByteString(identifier.to_vec()),
    )
    .map_err(|_| TokenError::Malformed)?;
    for c in caveats {
        m.add_first_party_caveat(ByteString(c.as_bytes().to_vec()));
    }
    Ok(write_v1(
        Some(location),
        identifier,
        caveats.iter().map(|c| c.as_bytes()),
        &signature_of(&m)?,
    ))
}

/// Appends a first-party caveat to a token, as any holder can without the
/// secret. The result is in the escaped form.
pub fn attenuate(token: &str, caveat: &str) -> Result<String, TokenError> {
    let mut raw = parse(token)?;
    raw.signature = extend_signature(raw.signature, &[caveat]);
    raw.caveats.push(caveat.as_bytes().to_vec());
    Ok(encode(&raw))
}

/// Appends first-party caveats to a parsed token, as any holder can without
/// the secret (the chain goes on from the token's signature). Refused with
/// [`TokenError::TooLong`] past [`MAX_CAVEATS`] or [`MAX_TOKEN_LEN`], so that
/// what it returns always parses again.
pub fn confine<C: AsRef<[u8]>>(raw: &RawToken, caveats: &[C]) -> Result<RawToken, TokenError> {
    let mut out = raw.clone();
    out.caveats
        .extend(caveats.iter().map(|c| c.as_ref().to_vec()));
    out.signature = extend_signature(raw.signature, caveats);
    check_size(&out)?;
    Ok(out)
}

/// Whether a token fits the caps [`parse`] enforces: at most [`MAX_CAVEATS`]
/// caveats and [`MAX_TOKEN_LEN`] base64 characters.
pub fn check_size(raw: &RawToken) -> Result<(), TokenError> {
    check_parts(raw.location.as_deref(), &raw.identifier, &raw.caveats)
}

/// [`check_size`] of a token made of these parts.
fn check_parts<C: AsRef<[u8]>>(
    location: Option<&str>,
    identifier: &[u8],
    caveats: &[C],
) -> Result<(), TokenError> {
    if caveats.len() > MAX_CAVEATS || encoded_len(location, identifier, caveats) > MAX_TOKEN_LEN {
        return Err(TokenError::TooLong);
    }
    Ok(())
}

/// The length of a libmacaroons V1 packet: four hex digits of size, the
/// key, a space, the value and a newline.
fn packet_len(key: &str, value: usize) -> usize {
    4 + key.len() + 1 + value + 1
}

/// The length of the unpadded base64 of a token's packets.
fn encoded_len<C: AsRef<[u8]>>(location: Option<&str>, identifier: &[u8], caveats: &[C]) -> usize {
    let bin = location.map_or(0, |l| packet_len("location", l.len()))
        + packet_len("identifier", identifier.len())
        + caveats
            .iter()
            .map(|c| packet_len("cid", c.as_ref().len()))
            .sum::<usize>()
        + packet_len("signature", 32); // an HMAC-SHA256
    (bin * 4).div_ceil(3)
}

/// The binary packets of a token in any accepted form.
fn deserialize(token: &str) -> Result<Vec<u8>, TokenError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenError::Malformed);
    }
    if token.len() > 2 * MAX_TOKEN_LEN {
        return Err(TokenError::TooLong);
    }
    // The escaped form first (what Onezone hands out), then plain base64.
    let unescaped = unescape(token);
    let mut too_long = false;
    for candidate in [unescaped.as_deref(), Some(token)].into_iter().flatten() {
        if candidate.len() > MAX_TOKEN_LEN {
            too_long = true;
        } else if let Some(m) = from_base64(candidate) {
            return Ok(m);
        }
    }
    Err(if too_long {
        TokenError::TooLong
    } else {
        TokenError::Malformed
    })
}

/// Base64 of either alphabet (as libmacaroons and the macaroon crate read
/// it: URL-safe if a `-` or `_` occurs, else standard), padded or not.
fn from_base64(text: &str) -> Option<Vec<u8>> {
    use base64::alphabet::{STANDARD, URL_SAFE};
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const CONFIG: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const URL: GeneralPurpose = GeneralPurpose::new(&URL_SAFE, CONFIG);
    const STD: GeneralPurpose = GeneralPurpose::new(&STANDARD, CONFIG);
    // Only the base64 forms are accepted (not the crate's V2 JSON): the
    // decoder refuses any other byte.
    let engine = if memchr::memchr2(b'-', b'_', text.as_bytes()).is_some() {
        &URL
    } else {
        &STD
    };
    engine.decode(text).ok()
}

/// Parses a token in any accepted form. Third-party caveats are refused.
pub fn parse(token: &str) -> Result<RawToken, TokenError> {
    read_v1(&deserialize(token)?)
}

/// Reads libmacaroons V1 packets in libmacaroons' order: `location`
/// (optional), `identifier`, first-party caveats (`cid`), `signature` (32
/// bytes), nothing after. Read here rather than by the macaroon crate, whose
/// parser makes a random key (a `getrandom` system call) for every token it
/// reads and recurses once per packet; it accepts everything this does, with
/// the same parts (a proptest compares them), and also packets out of order,
/// which libmacaroons and Onedata never write.
fn read_v1(mut bin: &[u8]) -> Result<RawToken, TokenError> {
    use TokenError::Malformed;
    let mut packet = next_packet(&mut bin)?;
    let mut location = None;
    if let Some((b"location", v)) = packet {
        location = Some(String::from_utf8(v.to_vec()).map_err(|_| Malformed)?);
        packet = next_packet(&mut bin)?;
    }
    let Some((b"identifier", identifier)) = packet else {
        return Err(Malformed);
    };
    let mut caveats = Vec::new();
    loop {
        match next_packet(&mut bin)? {
            Some((b"cid", _)) if caveats.len() == MAX_CAVEATS => return Err(TokenError::TooLong),
            Some((b"cid", c)) => caveats.push(c.to_vec()),
            // A third-party caveat's verifier id and location.
            Some((b"vid" | b"cl", _)) => return Err(TokenError::UnknownCaveat),
            Some((b"signature", sig)) if bin.is_empty() => {
                return Ok(RawToken {
                    location,
                    identifier: identifier.to_vec(),
                    caveats,
                    signature: sig.try_into().map_err(|_| Malformed)?,
                })
            }
            _ => return Err(Malformed),
        }
    }
}

/// The next V1 packet of `data` (four hex digits giving the packet's whole
/// length, then `key value\n`) as key and value, advancing `data`.
#[allow(clippy::type_complexity)]
fn next_packet<'a>(data: &mut &'a [u8]) -> Result<Option<(&'a [u8], &'a [u8])>, TokenError> {
    if data.is_empty() {
        return Ok(None);
    }
    let size = data
        .get(..4)
        .and_then(|hex| {
            hex.iter().try_fold(0usize, |n, &b| {
                Some(n * 16 + (b as char).to_digit(16)? as usize)
            })
        })
        .ok_or(TokenError::Malformed)?;
    let packet = data
        .get(4..size)
        .and_then(|p| p.strip_suffix(b"\n"))
        .ok_or(TokenError::Malformed)?;
    *data = &data[size..];
    let space = memchr::memchr(b' ', packet).ok_or(TokenError::Malformed)?;
    Ok(Some((&packet[..space], &packet[space + 1..])))
}

/// Serializes a raw token to the escaped wire form (it signs nothing: the
/// signature is the one in `raw`).
pub fn encode(raw: &RawToken) -> String {
    write_v1(
        raw.location.as_deref(),
        &raw.identifier,
        raw.caveats.iter().map(Vec::as_slice),
        &raw.signature,
    )
}

/// libmacaroons V1 packets, base64url without padding, escaped. Written here
/// rather than by the macaroon crate's serializer, which encodes with an
/// older, slower base64 and pads (the output is the same bytes: the tests
/// compare both).
fn write_v1<'a>(
    location: Option<&str>,
    identifier: &[u8],
    caveats: impl Iterator<Item = &'a [u8]>,
    signature: &[u8; 32],
) -> String {
    fn packet(out: &mut Vec<u8>, key: &str, value: &[u8]) {
        use std::io::Write as _;
        let size = packet_len(key, value.len());
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{size:04x}");
        out.extend_from_slice(key.as_bytes());
        out.push(b' ');
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    let mut bin = Vec::with_capacity(256);
    if let Some(l) = location {
        packet(&mut bin, "location", l.as_bytes());
    }
    packet(&mut bin, "identifier", identifier);
    for c in caveats {
        packet(&mut bin, "cid", c);
    }
    packet(&mut bin, "signature", signature);
    escape(&URL_SAFE_NO_PAD.encode(bin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use proptest::prelude::*;

    const SECRET: [u8; 32] = [7; 32];
    const IDENT: &[u8] = b"8HfHARHgklqBkZVI4l6MBTvSSvt98ppp6948s8Q7SOk";

    fn sample() -> String {
        mint(
            "onezone",
            &SECRET,
            IDENT,
            &[
                "tokenType = space_support_token".into(),
                "time < 1496140144".into(),
            ],
        )
        .unwrap()
    }

    #[test]
    fn minted_token_has_the_legacy_packets() {
        let t = sample();
        let plain = unescape(&t).unwrap();
        let bin = URL_SAFE_NO_PAD.decode(&plain).unwrap();
        let text = String::from_utf8_lossy(&bin);
        assert!(
            bin.starts_with(b"0015location onezone\n003bidentifier 8HfH"),
            "{text}"
        );
        assert!(
            text.contains("0028cid tokenType = space_support_token\n"),
            "{text}"
        );
        assert!(text.contains("001acid time < 1496140144\n"), "{text}");
        assert!(bin[bin.len() - 47..].starts_with(b"002fsignature "));
        assert!(!plain.contains('='));
        assert_eq!(escape(&plain), t);
    }

    #[test]
    fn the_crate_and_our_chain_agree() {
        let raw = parse(&sample()).unwrap();
        assert!(signature_matches(&raw, &SECRET));
        assert!(!signature_matches(&raw, &[8; 32]));
        assert_eq!(raw.location.as_deref(), Some("onezone"));
        assert_eq!(raw.identifier, IDENT);
        assert_eq!(raw.caveats.len(), 2);
    }

    #[test]
    fn every_plain_form_parses_to_the_same_token() {
        let t = sample();
        let bin = URL_SAFE_NO_PAD.decode(unescape(&t).unwrap()).unwrap();
        let want = parse(&t).unwrap();
        for form in [
            URL_SAFE_NO_PAD.encode(&bin),
            URL_SAFE.encode(&bin),
            STANDARD.encode(&bin),
        ] {
            assert_eq!(parse(&form).unwrap(), want, "{form}");
        }
    }

    #[test]
    fn attenuation_keeps_the_chain_valid() {
        let t = attenuate(&sample(), "time < 99").unwrap();
        let raw = parse(&t).unwrap();
        assert_eq!(raw.caveats.last().unwrap(), b"time < 99");
        assert!(signature_matches(&raw, &SECRET));
        // Dropping the caveat again breaks the chain.
        let mut stripped = raw.clone();
        stripped.caveats.pop();
        assert!(!signature_matches(&stripped, &SECRET));
    }

    #[test]
    fn the_documented_example_token_parses() {
        // The 200 response of the rc14 specification; its first two characters
        // are mangled in the document ("JK" for "MD").
        let doc = "MDAxNWxvY2F0aW9uIG9uZXpvbmUKMDAzYmlkZW50aWZpZXIgOEhmSEFSSGdrbHFCa1pWSTRsNk1CVHZTU3Z0OThwcHA2OTQ4czhRN1NPawowMDFhY2lkIHRpbWUgPCAxNDk2MTQwMTQ0CjAwMmZzaWduYXR1cmUg88OIBmav38YI0Z2-dw-fvrZ3XP-J0HjCN0taT3_WungK";
        let raw = parse(doc).unwrap();
        assert_eq!(raw.location.as_deref(), Some("onezone"));
        assert_eq!(raw.identifier, IDENT);
        assert_eq!(raw.caveats, vec![b"time < 1496140144".to_vec()]);
        assert_eq!(encode(&raw), escape(doc.trim_end_matches('=')));
    }

    #[test]
    fn hostile_inputs_are_errors_not_crashes() {
        assert_eq!(parse(""), Err(TokenError::Malformed));
        assert_eq!(
            parse(&"A".repeat(MAX_TOKEN_LEN + 1)),
            Err(TokenError::TooLong)
        );
        // ~90 KB of tiny packets would overflow the crate's recursive parser.
        let many = "0005a\n".repeat(15_000);
        assert_eq!(
            parse(&URL_SAFE_NO_PAD.encode(many)),
            Err(TokenError::TooLong)
        );
        assert_eq!(parse("{\"v\":2}"), Err(TokenError::Malformed));
        assert_eq!(parse("not a token"), Err(TokenError::Malformed));
        let within = "0005a\n".repeat(1000);
        assert!(parse(&URL_SAFE_NO_PAD.encode(within)).is_err());
    }

    #[test]
    fn mint_refuses_what_parse_would_refuse() {
        let many: Vec<String> = (0..=MAX_CAVEATS).map(|i| format!("c{i}")).collect();
        assert_eq!(
            mint("onezone", &SECRET, IDENT, &many),
            Err(TokenError::TooLong)
        );
        let at_the_cap = mint("onezone", &SECRET, IDENT, &many[1..]).unwrap();
        assert_eq!(parse(&at_the_cap).unwrap().caveats.len(), MAX_CAVEATS);
        let long = ["x".repeat(MAX_TOKEN_LEN)];
        assert_eq!(
            mint("onezone", &SECRET, IDENT, &long),
            Err(TokenError::TooLong)
        );
    }

    #[test]
    fn confine_continues_the_chain() {
        let t = sample();
        let raw = parse(&t).unwrap();
        let confined = confine(&raw, &["time < 99", "ip = 10.0.0.0/8"]).unwrap();
        let stepwise = attenuate(&attenuate(&t, "time < 99").unwrap(), "ip = 10.0.0.0/8").unwrap();
        assert_eq!(encode(&confined), stepwise);
        assert!(signature_matches(&confined, &SECRET));
        assert_eq!(confine(&raw, &[] as &[&str]).unwrap(), raw);
        let many = vec!["time < 1"; MAX_CAVEATS - 1];
        assert_eq!(confine(&raw, &many), Err(TokenError::TooLong));
        assert!(confine(&raw, &many[..MAX_CAVEATS - 2]).is_ok());
        let long = "x".repeat(MAX_TOKEN_LEN);
        assert_eq!(confine(&raw, &[long.as_str()]), Err(TokenError::TooLong));
    }

    #[test]
    fn secrets_of_any_length_sign() {
        let short = mint("onezone", b"verySecretSecret1", IDENT, &[]).unwrap();
        let raw = parse(&short).unwrap();
        assert!(signature_matches(&raw, b"verySecretSecret1"));
        assert!(!signature_matches(&raw, b"verySecretSecret2"));
        assert!(!signature_matches(&raw, b""));
        // HMAC keys shorter than a block are zero-padded: a trailing NUL
        // makes a different secret for libmacaroons, and here.
        assert!(!signature_matches(&raw, b"verySecretSecret1\0"));
    }

    #[test]
    fn a_cap_sized_token_of_tiny_packets_does_not_overflow_the_stack() {
        // The most packets a token within the cap can hold, parsed on a
        // thread with the test harness' default stack size.
        let packets = MAX_TOKEN_LEN * 3 / 4 / 6;
        let b64 = URL_SAFE_NO_PAD.encode("0005a\n".repeat(packets));
        assert!(b64.len() <= MAX_TOKEN_LEN);
        let parsed = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || parse(&b64).is_ok())
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert!(!parsed);
    }

    /// One V1 packet as libmacaroons writes it.
    fn v1_packet(key: &str, value: &[u8]) -> Vec<u8> {
        let mut out = format!("{:04x}{key} ", 4 + key.len() + 1 + value.len() + 1).into_bytes();
        out.extend_from_slice(value);
        out.push(b'\n');
        out
    }

    /// The macaroon crate's reading of a binary token, in our terms (`None`
    /// where it refuses, or where it reads a third-party caveat).
    fn crate_reads(bin: &[u8]) -> Option<RawToken> {
        let m = Macaroon::deserialize_binary(bin).ok()?;
        let mut caveats = Vec::new();
        for c in m.caveats() {
            match c {
                macaroon::Caveat::FirstParty(fp) => caveats.push(fp.predicate().0),
                macaroon::Caveat::ThirdParty(_) => return None,
            }
        }
        Some(RawToken {
            location: m.location(),
            identifier: m.identifier().0,
            caveats,
            signature: m.signature()[..].try_into().ok()?,
        })
    }

    /// Packet sequences near the V1 layout: known and unknown keys in any
    /// order, values of any bytes (32 often, as signatures need), sometimes
    /// a byte changed or the end cut.
    fn packet_soup() -> impl Strategy<Value = Vec<u8>> {
        let key = prop::sample::select(vec![
            "location",
            "identifier",
            "cid",
            "vid",
            "cl",
            "signature",
            "sig",
        ]);
        let value = prop_oneof![
            prop::collection::vec(any::<u8>(), 32),
            prop::collection::vec(any::<u8>(), 0..40),
            "[a-z =<0-9]{0,30}".prop_map(String::into_bytes),
        ];
        // libmacaroons' layout, sometimes with one packet's key replaced.
        let canonical = (
            any::<bool>(),
            prop::collection::vec(value.clone(), 0..4),
            prop::collection::vec(any::<u8>(), 32),
            any::<u16>(),
            prop::option::of(key.clone()),
        )
            .prop_map(|(loc, cids, sig, at, swap)| {
                let mut ps: Vec<(&str, Vec<u8>)> = Vec::new();
                if loc {
                    ps.push(("location", b"onezone".to_vec()));
                }
                ps.push(("identifier", b"id".to_vec()));
                ps.extend(cids.into_iter().map(|c| ("cid", c)));
                ps.push(("signature", sig));
                if let Some(k) = swap {
                    let at = at as usize % ps.len();
                    ps[at].0 = k;
                }
                ps.iter()
                    .flat_map(|(k, v)| v1_packet(k, v))
                    .collect::<Vec<u8>>()
            });
        let soup = prop::collection::vec((key, value), 0..7).prop_map(|ps| {
            ps.iter()
                .flat_map(|(k, v)| v1_packet(k, v))
                .collect::<Vec<u8>>()
        });
        (
            prop_oneof![canonical, soup],
            any::<u16>(),
            any::<u8>(),
            0..3u8,
        )
            .prop_map(|(mut b, at, byte, how)| {
                if !b.is_empty() {
                    let at = at as usize % b.len();
                    match how {
                        0 => b[at] = byte,
                        1 => b.truncate(at),
                        _ => {}
                    }
                }
                b
            })
    }

    proptest! {
        /// What ozmint reads, the macaroon crate reads too, as the same parts;
        /// and the layout libmacaroons writes is always read.
        #[test]
        fn the_crate_reads_what_we_read(bin in packet_soup()) {
            match read_v1(&bin) {
                Ok(ours) => prop_assert_eq!(crate_reads(&bin), Some(ours)),
                Err(_) => {
                    // Refused: then it is not libmacaroons' layout of first-party caveats.
                    let theirs = crate_reads(&bin);
                    if let Some(t) = theirs {
                        let mut canonical = Vec::new();
                        if let Some(l) = &t.location {
                            canonical.extend(v1_packet("location", l.as_bytes()));
                        }
                        canonical.extend(v1_packet("identifier", &t.identifier));
                        for c in &t.caveats {
                            canonical.extend(v1_packet("cid", c));
                        }
                        canonical.extend(v1_packet("signature", &t.signature));
                        prop_assert_ne!(canonical, bin);
                    }
                }
            }
        }
    }

    proptest! {
        /// Secrets of any length derive the key libmacaroons derives (the
        /// crate's `MacaroonKey::generate`).
        #[test]
        fn variable_length_secrets_match_the_crate(
            secret in proptest::collection::vec(any::<u8>(), 0..100),
            caveats in proptest::collection::vec("[ -~]{1,30}", 0..4),
        ) {
            let ours = mint("onezone", &secret, IDENT, &caveats).unwrap();
            let mut m = Macaroon::create(
                Some("onezone".into()),
                &MacaroonKey::generate(&secret),
                ByteString(IDENT.to_vec()),
            ).unwrap();
            for c in &caveats {
                m.add_first_party_caveat(ByteString(c.as_bytes().to_vec()));
            }
            let theirs = m.serialize(macaroon::Format::V1).unwrap();
            prop_assert_eq!(ours, escape(theirs.trim_end_matches('=')));
        }

        /// Minted tokens are byte for byte what the macaroon crate's own V1
        /// serializer writes (base64url unpadded, escaped).
        #[test]
        fn minted_tokens_match_the_crate_serializer(
            location in "[a-z.]{1,20}",
            identifier in proptest::collection::vec(any::<u8>(), 1..80),
            caveats in proptest::collection::vec("[ -~]{1,60}", 0..6),
            secret in any::<[u8; 32]>(),
        ) {
            let ours = mint(&location, &secret, &identifier, &caveats).unwrap();
            let mut m = Macaroon::create(
                Some(location.clone()),
                &MacaroonKey::generate(&secret),
                ByteString(identifier.clone()),
            ).unwrap();
            for c in &caveats {
                m.add_first_party_caveat(ByteString(c.as_bytes().to_vec()));
            }
            let theirs = m.serialize(macaroon::Format::V1).unwrap();
            prop_assert_eq!(ours, escape(theirs.trim_end_matches('=')));
        }

        #[test]
        fn escape_round_trips(s in "[A-Za-z0-9_=+/-]{0,200}") {
            prop_assert_eq!(unescape(&escape(&s)), Some(s));
        }

        #[test]
        fn escape_is_the_rule_character_by_character(s in "([A-Za-z0-9_=+/-]|\\PC){0,100}") {
            let rule: String = s
                .chars()
                .map(|c| match c {
                    '0' => "00".to_owned(),
                    '_' => "01".to_owned(),
                    '-' => "02".to_owned(),
                    '/' => "03".to_owned(),
                    '+' => "04".to_owned(),
                    '=' => "05".to_owned(),
                    c => c.to_string(),
                })
                .collect();
            prop_assert_eq!(escape(&s), rule);
        }

        #[test]
        fn wire_round_trips(
            loc in proptest::option::of("[a-z]{1,20}"),
            ident in "[A-Za-z0-9_-]{1,60}",
            caveats in proptest::collection::vec("[a-zA-Z0-9 <=_]{1,40}", 0..8),
            sig in any::<[u8; 32]>(),
        ) {
            let raw = RawToken {
                location: loc,
                identifier: ident.into_bytes(),
                caveats: caveats.into_iter().map(String::into_bytes).collect(),
                signature: sig,
            };
            prop_assert_eq!(parse(&encode(&raw)).unwrap(), raw);
        }

        #[test]
        fn minted_tokens_verify(ident in "[A-Za-z0-9_-]{43}", secret in any::<[u8; 32]>(), t in any::<u32>()) {
            let c = vec![format!("time < {t}")];
            let tok = mint("onezone", &secret, ident.as_bytes(), &c).unwrap();
            let raw = parse(&tok).unwrap();
            prop_assert!(signature_matches(&raw, &secret));
            prop_assert_eq!(raw.caveats, vec![c[0].clone().into_bytes()]);
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,300}") {
            let _ = parse(&s);
        }
    }
}
