//! The record codec: the only module that knows how values are laid out on disk.
//!
//! Every value is one format-version byte followed by the bincode 2 (serde,
//! standard configuration) encoding of the record. Decoding checks the version,
//! bounds the allocation, and insists that the whole value was consumed, so an
//! unknown version or garbage is an error, never a panic.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The format version written in front of every value.
pub const FORMAT_VERSION: u8 = 1;

/// The largest record the decoder will allocate for.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_RECORD_BYTES>,
>;

fn config() -> Config {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
}

/// Why a stored value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The value is empty (not even a version byte).
    Empty,
    /// The version byte names a format this build does not know.
    UnknownVersion(u8),
    /// The bytes after the version byte are not a valid record.
    Malformed,
    /// A valid record was followed by extra bytes.
    TrailingBytes(usize),
    /// The record could not be encoded (too large).
    Encode,
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodecError::Empty => write!(f, "empty record"),
            CodecError::UnknownVersion(v) => write!(f, "unknown record format version {v}"),
            CodecError::Malformed => write!(f, "malformed record"),
            CodecError::TrailingBytes(n) => write!(f, "{n} trailing bytes after record"),
            CodecError::Encode => write!(f, "record could not be encoded"),
        }
    }
}

impl std::error::Error for CodecError {}

/// Encodes a record with its version byte.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT_VERSION);
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .map_err(|_| CodecError::Encode)?;
    Ok(out)
}

/// Decodes a record written by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnknownVersion(version));
    }
    let (value, used) =
        bincode::serde::decode_from_slice(body, config()).map_err(|_| CodecError::Malformed)?;
    if used != body.len() {
        return Err(CodecError::TrailingBytes(body.len() - used));
    }
    Ok(value)
}

#[doc(hidden)]
/// Fuzzing entry point: decodes arbitrary bytes as every record type.
pub fn fuzz_decode(bytes: &[u8]) {
    use crate::model::*;
    let _ = decode::<User>(bytes);
    let _ = decode::<Group>(bytes);
    let _ = decode::<Space>(bytes);
    let _ = decode::<Provider>(bytes);
    let _ = decode::<Support>(bytes);
    let _ = decode::<TokenRecord>(bytes);
    let _ = decode::<RootKey>(bytes);
    let _ = decode::<SpacePrivileges>(bytes);
    let _ = decode::<GroupPrivileges>(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use proptest::prelude::*;

    fn arb_id() -> impl Strategy<Value = Id> {
        any::<[u8; 32]>().prop_map(Id)
    }

    fn arb_record() -> impl Strategy<Value = TokenRecord> {
        (
            0usize..4,
            arb_id(),
            arb_id(),
            any::<bool>(),
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            0u8..3,
        )
            .prop_map(
                |(kind, target, who, user, key_id, created, expires, state)| TokenRecord {
                    kind: TokenKind::ALL[kind],
                    target,
                    issuer: if user {
                        Subject::User(who)
                    } else {
                        Subject::Provider(who)
                    },
                    key_id,
                    created,
                    expires,
                    state: match state {
                        0 => TokenState::Active,
                        1 => TokenState::Consumed {
                            at: created,
                            by: who,
                        },
                        _ => TokenState::Revoked { at: expires },
                    },
                },
            )
    }

    proptest! {
        #[test]
        fn token_records_round_trip(rec in arb_record()) {
            let bytes = encode(&rec).unwrap();
            prop_assert_eq!(bytes[0], FORMAT_VERSION);
            prop_assert_eq!(decode::<TokenRecord>(&bytes).unwrap(), rec);
        }

        #[test]
        fn users_round_trip(name in ".{0,40}", hash in ".{0,100}", bits in any::<u32>(), created in any::<u64>()) {
            let mut zone = ZonePrivileges::empty();
            for p in ZonePrivilege::ALL { if bits & (1 << p.index()) != 0 { zone.insert(*p) } }
            let user = User { name, password_hash: hash, zone_privileges: zone, created };
            prop_assert_eq!(decode::<User>(&encode(&user).unwrap()).unwrap(), user);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            fuzz_decode(&bytes);
        }
    }

    #[test]
    fn unknown_version_and_trailing_bytes_are_errors() {
        let g = Group {
            name: "g".into(),
            kind: GroupType::Team,
            created: 7,
        };
        let mut bytes = encode(&g).unwrap();
        bytes.push(0);
        assert_eq!(decode::<Group>(&bytes), Err(CodecError::TrailingBytes(1)));
        bytes.pop();
        bytes[0] = 99;
        assert_eq!(decode::<Group>(&bytes), Err(CodecError::UnknownVersion(99)));
        assert_eq!(decode::<Group>(&[]), Err(CodecError::Empty));
        // A length prefix claiming a huge string must not allocate it.
        assert_eq!(
            decode::<Group>(&[
                FORMAT_VERSION,
                0xfd,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0x7f
            ]),
            Err(CodecError::Malformed)
        );
    }
}
