//! Every key layout of the store, written once.
//!
//! The engine holds one flat keyspace; each table owns the keys that start
//! with its name and a `/`. The name says what maps to what (`userid_user`:
//! a user id to its user record). `id` is the 32 raw bytes of an [`Id`];
//! `++` is concatenation.
//!
//! | table | key after `name/` | value |
//! |---|---|---|
//! | `meta` | `schema` | schema version (1 byte) |
//! | `generation` | `graph` \| `keys` | 16 random bytes, renewed by every change it covers |
//! | `userid_user` | user id | [`User`] |
//! | `username_userid` | user name (UTF-8) | user id (32 raw bytes) |
//! | `groupid_group` | group id | [`Group`] |
//! | `spaceid_space` | space id | [`Space`] |
//! | `providerid_provider` | provider id | [`Provider`] |
//! | `groupid_userid_privileges` | group id ++ user id | [`GroupPrivileges`] |
//! | `userid_groupid` | user id ++ group id | empty (reverse) |
//! | `parentid_childid_privileges` | parent id ++ child id | [`GroupPrivileges`] |
//! | `childid_parentid` | child id ++ parent id | empty (reverse) |
//! | `spaceid_userid_privileges` | space id ++ user id | [`SpacePrivileges`] |
//! | `userid_spaceid` | user id ++ space id | empty (reverse) |
//! | `spaceid_groupid_privileges` | space id ++ group id | [`SpacePrivileges`] |
//! | `groupid_spaceid` | group id ++ space id | empty (reverse) |
//! | `spaceid_providerid_support` | space id ++ provider id | [`Support`] |
//! | `providerid_spaceid` | provider id ++ space id | empty (reverse) |
//! | `tokenid_token` | token id | [`TokenRecord`] |
//! | `targetid_tokenid` | target id ++ token id | empty (tokens of a space, group, user, provider) |
//! | `expiry_tokenid` | expiry (u64 big-endian) ++ token id | target id (purging) |
//! | `keyid_rootkey` | key id (u32 big-endian) | [`RootKey`] |
//! | `deleting` | entity kind (1 byte) ++ id | empty: a deletion whose cascade is still running |
//! | `admin_userid` | user id | empty: the user holds zone `set_privileges` (an administrator) |
//! | `tokenid_namedtoken` | token id | [`NamedToken`] (20.02+ named tokens) |
//! | `subject_tokenname_tokenid` | subject ++ token name (UTF-8) | token id: the unique-name index, also the subject's list |
//! | `subject_temporarysecret` | subject | [`TemporarySecret`] |
//!
//! A subject is one tag byte (`u` user, `p` provider) ++ its id.
//!
//! Values that are records go through [`crate::codec`] (version byte + bincode 2).

use std::marker::PhantomData;

use crate::codec::{self, CodecError};
use crate::error::{Entity, Error, Result};
use crate::model::{
    Group, GroupPrivileges, Id, NamedToken, PrivSet, Provider, RootKey, Space, SpacePrivileges,
    Subject, Support, TemporarySecret, TokenRecord, User,
};

/// A table: the keys of the flat keyspace that start with `name/`, with a
/// key type `K` and a value type `V`.
pub struct Table<K, V> {
    /// The table's name (the key prefix without its `/`).
    pub name: &'static str,
    kv: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Table<K, V> {}

const fn table<K, V>(name: &'static str) -> Table<K, V> {
    Table {
        name,
        kv: PhantomData,
    }
}

impl<K: KeyPart, V: StoredValue> Table<K, V> {
    /// The prefix every key of the table starts with.
    pub fn prefix(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(self.name.len() + 1 + 64);
        p.extend_from_slice(self.name.as_bytes());
        p.push(b'/');
        p
    }

    /// The engine key of `key`.
    pub fn key(&self, key: &K) -> Vec<u8> {
        let mut k = self.prefix();
        key.put(&mut k);
        k
    }

    /// The engine-key prefix of every key whose first part is `first`.
    pub fn sub_prefix<F: KeyPart>(&self, first: &F) -> Vec<u8> {
        let mut k = self.prefix();
        first.put(&mut k);
        k
    }

    /// Decodes an engine key of this table.
    pub fn decode_key(&self, raw: &[u8]) -> Result<K> {
        raw.strip_prefix(self.prefix().as_slice())
            .and_then(K::take)
            .ok_or(self.corrupt(CodecError::Malformed))
    }

    /// Encodes a value.
    pub fn encode(&self, value: &V) -> Result<Vec<u8>> {
        value.to_bytes().map_err(|e| self.corrupt(e))
    }

    /// Decodes a stored value.
    pub fn decode(&self, raw: &[u8]) -> Result<V> {
        V::from_bytes(raw).map_err(|e| self.corrupt(e))
    }

    fn corrupt(&self, error: CodecError) -> Error {
        Error::Corrupt {
            tree: self.name,
            error,
        }
    }
}

/// A part of a key, written in an order-preserving binary form.
pub trait KeyPart: Sized {
    /// Appends the encoded part.
    fn put(&self, out: &mut Vec<u8>);
    /// Decodes a whole key (all of `bytes`).
    fn take(bytes: &[u8]) -> Option<Self>;
}

impl KeyPart for Id {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn take(bytes: &[u8]) -> Option<Self> {
        Id::from_slice(bytes)
    }
}

impl KeyPart for (Id, Id) {
    fn put(&self, out: &mut Vec<u8>) {
        self.0.put(out);
        self.1.put(out);
    }
    fn take(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 64 {
            return None;
        }
        Some((Id::from_slice(&bytes[..32])?, Id::from_slice(&bytes[32..])?))
    }
}

impl KeyPart for (u64, Id) {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_be_bytes());
        self.1.put(out);
    }
    fn take(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 40 {
            return None;
        }
        let t = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        Some((t, Id::from_slice(&bytes[8..])?))
    }
}

impl KeyPart for u32 {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn take(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(u32::from_be_bytes)
    }
}

impl KeyPart for String {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn take(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

impl KeyPart for &'static str {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn take(_: &[u8]) -> Option<Self> {
        None
    }
}

impl KeyPart for (Entity, Id) {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(entity_tag(self.0));
        self.1.put(out);
    }
    fn take(bytes: &[u8]) -> Option<Self> {
        let (tag, id) = bytes.split_first()?;
        Some((tag_entity(*tag)?, Id::from_slice(id)?))
    }
}

impl KeyPart for Subject {
    fn put(&self, out: &mut Vec<u8>) {
        let (tag, id) = match self {
            Subject::User(id) => (b'u', id),
            Subject::Provider(id) => (b'p', id),
        };
        out.push(tag);
        id.put(out);
    }
    fn take(bytes: &[u8]) -> Option<Self> {
        let (tag, id) = bytes.split_first()?;
        let id = Id::from_slice(id)?;
        match tag {
            b'u' => Some(Subject::User(id)),
            b'p' => Some(Subject::Provider(id)),
            _ => None,
        }
    }
}

impl KeyPart for (Subject, String) {
    fn put(&self, out: &mut Vec<u8>) {
        self.0.put(out);
        self.1.put(out);
    }
    fn take(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 33 {
            return None;
        }
        Some((Subject::take(&bytes[..33])?, String::take(&bytes[33..])?))
    }
}

fn entity_tag(e: Entity) -> u8 {
    match e {
        Entity::User => b'u',
        Entity::Group => b'g',
        Entity::Space => b's',
        Entity::Provider => b'p',
        Entity::Relation | Entity::Token | Entity::RootKey => b'?',
    }
}

fn tag_entity(t: u8) -> Option<Entity> {
    Some(match t {
        b'u' => Entity::User,
        b'g' => Entity::Group,
        b's' => Entity::Space,
        b'p' => Entity::Provider,
        _ => return None,
    })
}

/// How a value is stored.
pub trait StoredValue: Sized {
    /// The stored bytes.
    fn to_bytes(&self) -> Result<Vec<u8>, CodecError>;
    /// Back from the stored bytes.
    fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError>;
}

macro_rules! records {
    ($($t:ty),*) => {$(
        impl StoredValue for $t {
            fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
                codec::encode(self)
            }
            fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
                codec::decode(bytes)
            }
        }
    )*};
}

records!(
    User,
    Group,
    Space,
    Provider,
    Support,
    TokenRecord,
    RootKey,
    NamedToken,
    TemporarySecret,
    String,
    u64
);

/// Privilege sets of any kind.
impl<P> StoredValue for PrivSet<P> {
    fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode(self)
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        codec::decode(bytes)
    }
}

/// An id stored raw (32 bytes), as in indexes.
impl StoredValue for Id {
    fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        Ok(self.as_bytes().to_vec())
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        Id::from_slice(bytes).ok_or(CodecError::Malformed)
    }
}

/// An empty value (reverse indexes, markers).
impl StoredValue for () {
    fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        Ok(Vec::new())
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.is_empty() {
            Ok(())
        } else {
            Err(CodecError::TrailingBytes(bytes.len()))
        }
    }
}

/// Raw bytes (schema version, generations).
impl StoredValue for Vec<u8> {
    fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        Ok(self.clone())
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        Ok(bytes.to_vec())
    }
}

/// `meta/schema` and friends.
pub const META: Table<&'static str, Vec<u8>> = table("meta");
/// Cache generations (see [`super::generation`]).
pub const GENERATION: Table<&'static str, Vec<u8>> = table("generation");
/// Users by id.
pub const USERS: Table<Id, User> = table("userid_user");
/// User ids by login name.
pub const USER_NAMES: Table<String, Id> = table("username_userid");
/// Groups by id.
pub const GROUPS: Table<Id, Group> = table("groupid_group");
/// Spaces by id.
pub const SPACES: Table<Id, Space> = table("spaceid_space");
/// Providers by id.
pub const PROVIDERS: Table<Id, Provider> = table("providerid_provider");
/// Users of groups with their group privileges.
pub const GROUP_USERS: Table<(Id, Id), GroupPrivileges> = table("groupid_userid_privileges");
/// Groups of users.
pub const USER_GROUPS: Table<(Id, Id), ()> = table("userid_groupid");
/// Child groups with their privileges in the parent.
pub const GROUP_CHILDREN: Table<(Id, Id), GroupPrivileges> = table("parentid_childid_privileges");
/// Parents of groups.
pub const GROUP_PARENTS: Table<(Id, Id), ()> = table("childid_parentid");
/// Users of spaces with their space privileges.
pub const SPACE_USERS: Table<(Id, Id), SpacePrivileges> = table("spaceid_userid_privileges");
/// Spaces of users.
pub const USER_SPACES: Table<(Id, Id), ()> = table("userid_spaceid");
/// Groups of spaces with their space privileges.
pub const SPACE_GROUPS: Table<(Id, Id), SpacePrivileges> = table("spaceid_groupid_privileges");
/// Spaces of groups.
pub const GROUP_SPACES: Table<(Id, Id), ()> = table("groupid_spaceid");
/// Supports of spaces by providers.
pub const SPACE_PROVIDERS: Table<(Id, Id), Support> = table("spaceid_providerid_support");
/// Spaces supported by providers.
pub const PROVIDER_SPACES: Table<(Id, Id), ()> = table("providerid_spaceid");
/// Token records by identifier.
pub const TOKENS: Table<Id, TokenRecord> = table("tokenid_token");
/// Tokens minted for a target.
pub const TOKENS_BY_TARGET: Table<(Id, Id), ()> = table("targetid_tokenid");
/// Tokens by expiry, with their target.
pub const TOKENS_BY_EXPIRY: Table<(u64, Id), Id> = table("expiry_tokenid");
/// Root keys by id.
pub const ROOT_KEYS: Table<u32, RootKey> = table("keyid_rootkey");
/// Deletions whose cascade has not finished (the entity's record is removed in
/// the commit that writes the mark).
pub const DELETING: Table<(Entity, Id), ()> = table("deleting");
/// Users holding the zone privilege `set_privileges`: the zone's administrators.
pub const ADMINS: Table<Id, ()> = table("admin_userid");

/// Onedata 20.02+ named tokens by id.
pub const NAMED_TOKENS: Table<Id, NamedToken> = table("tokenid_namedtoken");
/// Named token ids by subject and name: unique names, and each subject's list.
pub const NAMED_TOKEN_NAMES: Table<(Subject, String), Id> = table("subject_tokenname_tokenid");
/// The temporary-token secret of each subject.
pub const TEMPORARY_SECRETS: Table<Subject, TemporarySecret> = table("subject_temporarysecret");

/// The release version each provider declared (none for older records).
pub const PROVIDER_VERSIONS: Table<Id, String> = table("providerid_version");
/// When each provider last made an authenticated request (unix seconds,
/// recorded at most once per half online window per front end).
pub const PROVIDER_SEEN: Table<Id, u64> = table("providerid_lastseen");

/// Names of every table, for the consistency check.
pub const TABLES: [&str; 28] = [
    META.name,
    GENERATION.name,
    USERS.name,
    USER_NAMES.name,
    GROUPS.name,
    SPACES.name,
    PROVIDERS.name,
    GROUP_USERS.name,
    USER_GROUPS.name,
    GROUP_CHILDREN.name,
    GROUP_PARENTS.name,
    SPACE_USERS.name,
    USER_SPACES.name,
    SPACE_GROUPS.name,
    GROUP_SPACES.name,
    SPACE_PROVIDERS.name,
    PROVIDER_SPACES.name,
    TOKENS.name,
    TOKENS_BY_TARGET.name,
    TOKENS_BY_EXPIRY.name,
    ROOT_KEYS.name,
    DELETING.name,
    ADMINS.name,
    NAMED_TOKENS.name,
    NAMED_TOKEN_NAMES.name,
    TEMPORARY_SECRETS.name,
    PROVIDER_VERSIONS.name,
    PROVIDER_SEEN.name,
];

/// The record table of an entity kind.
pub fn entity_table(kind: Entity) -> Option<&'static str> {
    Some(match kind {
        Entity::User => USERS.name,
        Entity::Group => GROUPS.name,
        Entity::Space => SPACES.name,
        Entity::Provider => PROVIDERS.name,
        Entity::Relation | Entity::Token | Entity::RootKey => return None,
    })
}

/// The engine key of an entity's record (its table's prefix ++ id).
pub fn entity_key(kind: Entity, id: &Id) -> Option<Vec<u8>> {
    let name = entity_table(kind)?;
    let mut k = Vec::with_capacity(name.len() + 33);
    k.extend_from_slice(name.as_bytes());
    k.push(b'/');
    k.extend_from_slice(id.as_bytes());
    Some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_table_prefix_is_a_prefix_of_another() {
        for a in TABLES {
            for b in TABLES {
                if a != b {
                    assert!(!format!("{b}/").starts_with(&format!("{a}/")), "{a} {b}");
                }
            }
        }
    }

    #[test]
    fn keys_round_trip() {
        let (a, b) = (Id::random(), Id::random());
        assert_eq!(
            GROUP_USERS.decode_key(&GROUP_USERS.key(&(a, b))).unwrap(),
            (a, b)
        );
        let k = TOKENS_BY_EXPIRY.key(&(7, a));
        assert_eq!(TOKENS_BY_EXPIRY.decode_key(&k).unwrap(), (7, a));
        assert_eq!(ROOT_KEYS.decode_key(&ROOT_KEYS.key(&3)).unwrap(), 3);
        let n = USER_NAMES.key(&"alice".to_string());
        assert_eq!(USER_NAMES.decode_key(&n).unwrap(), "alice");
        assert_eq!(
            DELETING
                .decode_key(&DELETING.key(&(Entity::Space, a)))
                .unwrap(),
            (Entity::Space, a)
        );
        assert!(
            USERS.decode_key(&GROUPS.key(&a)).is_err(),
            "another table's key"
        );
        // Big-endian expiry keys sort by time.
        assert!(TOKENS_BY_EXPIRY.key(&(1, b)) < TOKENS_BY_EXPIRY.key(&(256, a)));
        assert_eq!(entity_key(Entity::User, &a).unwrap(), USERS.key(&a));
        let named = (Subject::Provider(a), "my token".to_string());
        let k = NAMED_TOKEN_NAMES.key(&named);
        assert_eq!(NAMED_TOKEN_NAMES.decode_key(&k).unwrap(), named);
        assert!(k.starts_with(&NAMED_TOKEN_NAMES.sub_prefix(&Subject::Provider(a))));
        assert_eq!(
            TEMPORARY_SECRETS
                .decode_key(&TEMPORARY_SECRETS.key(&Subject::User(b)))
                .unwrap(),
            Subject::User(b)
        );
    }
}
