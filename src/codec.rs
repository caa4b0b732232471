//! The record codec: the only module that knows how values are laid out on disk.
//!
//! Every value is one format-version byte followed by the bincode 2 (standard
//! configuration) encoding of the record. Records derive bincode's own
//! `Encode`/`Decode`, which write exactly the bytes bincode's serde path
//! writes (a test below holds every record type to that) but decode several
//! times faster: a fixed-size id is one copy instead of 32 visitor calls. Decoding checks the version,
//! bounds the allocation, and insists that the whole value was consumed, so an
//! unknown version or garbage is an error, never a panic.

use bincode::{Decode, Encode};

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

/// What the store can keep as a value: any type deriving bincode's `Encode`
/// and `Decode` (every record type in [`crate::model`] does). Store methods
/// take this bound, so no other module names the codec's crate.
pub trait Record: Encode + Decode<()> {}

impl<T: Encode + Decode<()>> Record for T {}

/// Encodes a record with its version byte.
pub fn encode<T: Record>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT_VERSION);
    bincode::encode_into_std_write(value, &mut out, config()).map_err(|_| CodecError::Encode)?;
    Ok(out)
}

/// Decodes a record written by [`encode`].
pub fn decode<T: Record>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnknownVersion(version));
    }
    let (value, used) =
        bincode::decode_from_slice(body, config()).map_err(|_| CodecError::Malformed)?;
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

    /// The native encoding is byte for byte bincode's serde encoding (the
    /// format of every store written before the switch), both ways.
    fn same_as_serde<T>(value: &T) -> Result<(), TestCaseError>
    where
        T: Record + serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let native = encode(value).unwrap();
        let mut serde_bytes = vec![FORMAT_VERSION];
        serde_bytes.extend(bincode::serde::encode_to_vec(value, config()).unwrap());
        prop_assert_eq!(&native, &serde_bytes);
        let (back, _): (T, usize) =
            bincode::serde::decode_from_slice(&native[1..], config()).unwrap();
        prop_assert_eq!(&back, value);
        prop_assert_eq!(&decode::<T>(&serde_bytes).unwrap(), value);
        Ok(())
    }

    proptest! {
        #[test]
        fn every_record_type_encodes_as_serde_did(
            rec in arb_record(),
            name in ".{0,40}",
            text in ".{0,100}",
            bits in any::<u32>(),
            n in any::<u64>(),
            m in any::<u64>(),
            secret in any::<[u8; 32]>(),
            retired in any::<Option<u64>>(),
            kind in 0usize..4,
        ) {
            same_as_serde(&rec)?;
            let mut zone = ZonePrivileges::empty();
            for p in ZonePrivilege::ALL { if bits & (1 << p.index()) != 0 { zone.insert(*p) } }
            same_as_serde(&User { name: name.clone(), password_hash: text.clone(), zone_privileges: zone, created: n })?;
            let kinds = [GroupType::Organization, GroupType::Unit, GroupType::Team, GroupType::Role];
            same_as_serde(&Group { name: name.clone(), kind: kinds[kind], created: n })?;
            same_as_serde(&Space { name: name.clone(), created: m })?;
            same_as_serde(&Provider { name, domain: text, created: n })?;
            same_as_serde(&Support { size: n, since: m })?;
            same_as_serde(&RootKey { secret, created: n, retired })?;
            let space: SpacePrivileges = SpacePrivilege::ALL.iter().copied().filter(|p| bits & (1 << p.index()) != 0).collect();
            same_as_serde(&space)?;
            let group: GroupPrivileges = GroupPrivilege::ALL.iter().copied().filter(|p| bits & (1 << p.index()) != 0).collect();
            same_as_serde(&group)?;
        }

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
