//! The domain model: entity ids, privilege sets and the records kept in the store.
//!
//! Everything here is plain data. Records derive serde so the codec can store
//! them; secret-bearing records (`User`, `RootKey`) implement `Debug` by hand so
//! that hashes and keys never reach a log line.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Length of an entity or token id in its text form (base64url of 32 bytes, unpadded).
pub const ID_TEXT_LEN: usize = 43;

/// An entity id (user, group, space, provider) or token identifier: 32 random bytes,
/// written as 43 base64url characters exactly like Onezone's ids.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    bincode::Encode,
    bincode::Decode,
)]
pub struct Id(pub [u8; 32]);

impl Id {
    /// A fresh random id, from the thread's CSPRNG (seeded from the
    /// operating system): ids are public and only have to be unique and
    /// unguessable, and this saves a system call per id (every temporary
    /// token gets one). Secrets come from the operating system directly.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        Id(bytes)
    }

    /// A fresh token identifier: the current time in microseconds (8 bytes,
    /// big-endian) followed by 24 random bytes. Still 43 characters of
    /// base64url and unguessable, but new token records sort after older
    /// ones, so the store appends to the end of its trees instead of
    /// rewriting random leaves of an ever larger index (the mint rate stays
    /// flat as records accumulate).
    pub fn time_ordered() -> Self {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&micros.to_be_bytes());
        // The thread's CSPRNG (seeded from the OS): an identifier is public,
        // it only has to be unique, and this saves a system call per mint.
        rand::thread_rng().fill_bytes(&mut bytes[8..]);
        Id(bytes)
    }

    /// The raw bytes (used as store keys).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Rebuilds an id from raw store key bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Id)
    }
}

/// Why a string is not an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadId;

impl fmt::Display for BadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an id is {ID_TEXT_LEN} base64url characters encoding 32 bytes"
        )
    }
}

impl std::error::Error for BadId {}

impl FromStr for Id {
    type Err = BadId;
    fn from_str(s: &str) -> Result<Self, BadId> {
        if s.len() != ID_TEXT_LEN {
            return Err(BadId);
        }
        let mut out = [0u8; 32];
        match URL_SAFE_NO_PAD.decode_slice(s, &mut out) {
            // Canonical form only: the last character must not carry stray bits.
            Ok(32) if URL_SAFE_NO_PAD.encode(out) == s => Ok(Id(out)),
            _ => Err(BadId),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; ID_TEXT_LEN];
        let n = URL_SAFE_NO_PAD
            .encode_slice(self.0, &mut buf)
            .map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf[..n]).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({self})")
    }
}

/// One kind of privilege (space, group or zone): a closed list of names.
pub trait Privilege: Copy + Eq + fmt::Debug + 'static {
    /// Every privilege of the kind, in bit order.
    const ALL: &'static [Self];
    /// The wire name, e.g. `space_add_provider`.
    fn name(self) -> &'static str;
    /// The bit index of this privilege in a [`PrivSet`].
    fn index(self) -> u32;
    /// Onezone's names (20.02 and later, and the earlier ones ozmint does not
    /// use) with the privileges each means here: none for one that governs
    /// something ozmint does not have (views, transfers, QoS, harvesters, ...).
    const ONEZONE: &'static [(&'static str, &'static [Self])];
    /// Looks a privilege up by its wire name.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.name() == name)
    }
}

macro_rules! privileges {
    (
        $(#[$meta:meta])* $name:ident { $($variant:ident => $wire:literal,)* }
        onezone { $($oz:literal => [$($means:ident),*],)* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        #[allow(missing_docs)]
        pub enum $name { $($variant,)* }

        impl Privilege for $name {
            const ALL: &'static [Self] = &[$($name::$variant,)*];
            const ONEZONE: &'static [(&'static str, &'static [Self])] =
                &[$(($oz, &[$($name::$means),*]),)*];
            fn name(self) -> &'static str {
                match self { $($name::$variant => $wire,)* }
            }
            fn index(self) -> u32 {
                self as u32
            }
        }
    };
}

privileges!(
    /// Privileges of a user or group in a space (the 12 of the seed-era API).
    SpacePrivilege {
        InviteUser => "space_invite_user",
        RemoveUser => "space_remove_user",
        InviteGroup => "space_invite_group",
        RemoveGroup => "space_remove_group",
        SetPrivileges => "space_set_privileges",
        Remove => "space_remove",
        AddProvider => "space_add_provider",
        RemoveProvider => "space_remove_provider",
        ChangeData => "space_change_data",
        ViewData => "space_view_data",
        ManageShares => "space_manage_shares",
        WriteFiles => "space_write_files",
    }
    // ctool's include/privileges.hrl (20.02 to 25.x), and the names of
    // 18.02/19.02 swagger files that differ from the seeds'.
    onezone {
        "space_view" => [ViewData],
        "space_update" => [ChangeData],
        "space_delete" => [Remove],
        "space_view_privileges" => [],
        "space_manage_in_marketplace" => [],
        "space_read_data" => [],
        "space_write_data" => [WriteFiles],
        "space_register_files" => [],
        "space_view_views" => [],
        "space_manage_views" => [],
        "space_query_views" => [],
        "space_view_indices" => [],
        "space_manage_indices" => [],
        "space_query_indices" => [],
        "space_view_statistics" => [],
        "space_view_changes_stream" => [],
        "space_view_transfers" => [],
        "space_schedule_replication" => [],
        "space_cancel_replication" => [],
        "space_schedule_eviction" => [],
        "space_cancel_eviction" => [],
        "space_view_qos" => [],
        "space_manage_qos" => [],
        "space_add_user" => [InviteUser],
        "space_add_group" => [InviteGroup],
        "space_add_support" => [AddProvider],
        "space_remove_support" => [RemoveProvider],
        "space_invite_provider" => [AddProvider],
        "space_add_harvester" => [],
        "space_remove_harvester" => [],
        "space_manage_datasets" => [],
        "space_view_archives" => [],
        "space_create_archives" => [],
        "space_manage_archives" => [],
        "space_remove_archives" => [],
        "space_recall_archives" => [],
        "space_view_atm_workflow_executions" => [],
        "space_schedule_atm_workflow_executions" => [],
        "space_manage_atm_workflow_executions" => [],
    }
);

privileges!(
    /// Privileges of a user or child group in a group (the 13 of the seed-era API).
    GroupPrivilege {
        ChangeData => "group_change_data",
        InviteUser => "group_invite_user",
        RemoveUser => "group_remove_user",
        JoinSpace => "group_join_space",
        CreateSpace => "group_create_space",
        SetPrivileges => "group_set_privileges",
        Remove => "group_remove",
        LeaveSpace => "group_leave_space",
        ViewData => "group_view_data",
        CreateSpaceToken => "group_create_space_token",
        JoinGroup => "group_join_group",
        InviteGroup => "group_invite_group",
        RemoveGroup => "group_remove_group",
    }
    // ctool's include/privileges.hrl (20.02 to 25.x). Creating a space for a
    // group, and the seeds' space creation tokens, need `group_add_space` there.
    onezone {
        "group_view" => [ViewData],
        "group_update" => [ChangeData],
        "group_delete" => [Remove],
        "group_view_privileges" => [],
        "group_add_parent" => [JoinGroup],
        "group_leave_parent" => [],
        "group_add_child" => [InviteGroup],
        "group_remove_child" => [RemoveGroup],
        "group_add_user" => [InviteUser],
        "group_add_space" => [JoinSpace, CreateSpace, CreateSpaceToken],
        "group_add_cluster" => [],
        "group_leave_cluster" => [],
        "group_create_handle_service" => [],
        "group_leave_handle_service" => [],
        "group_create_handle" => [],
        "group_leave_handle" => [],
        "group_add_harvester" => [],
        "group_remove_harvester" => [],
        "group_add_atm_inventory" => [],
        "group_remove_atm_inventory" => [],
    }
);

privileges!(
    /// Zone-level (administrator) privileges of a user: the rc14 list, the two
    /// relationship privileges of later releases, and four ozmint extensions
    /// (`oz_users_create`, `oz_providers_create`, `oz_tokens_manage`, `oz_backup`).
    ZonePrivilege {
        AddMemberToSpace => "add_member_to_space",
        ListGroups => "list_groups",
        ListGroupsOfProvider => "list_groups_of_provider",
        ListProviders => "list_providers",
        ListProvidersOfSpace => "list_providers_of_space",
        ListSpaces => "list_spaces",
        ListSpacesOfProvider => "list_spaces_of_provider",
        ListUsers => "list_users",
        ListUsersOfProvider => "list_users_of_provider",
        GroupsAddMembers => "oz_groups_add_members",
        GroupsListGroups => "oz_groups_list_groups",
        GroupsListUsers => "oz_groups_list_users",
        GroupsRemoveMembers => "oz_groups_remove_members",
        HandleServicesCreate => "oz_handle_services_create",
        HandleServicesList => "oz_handle_services_list",
        HandlesList => "oz_handles_list",
        ProvidersDelete => "oz_providers_delete",
        SharesList => "oz_shares_list",
        SpacesListGroups => "oz_spaces_list_groups",
        SpacesListUsers => "oz_spaces_list_users",
        UsersDelete => "oz_users_delete",
        RemoveMemberFromSpace => "remove_member_from_space",
        SetPrivileges => "set_privileges",
        ViewPrivileges => "view_privileges",
        SpacesAddRelationships => "oz_spaces_add_relationships",
        GroupsAddRelationships => "oz_groups_add_relationships",
        UsersCreate => "oz_users_create",
        ProvidersCreate => "oz_providers_create",
        TokensManage => "oz_tokens_manage",
        Backup => "oz_backup",
    }
    onezone {}
);

/// A set of privileges of one kind, stored as a bit set.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrivSet<P> {
    bits: u32,
    #[serde(skip)]
    kind: PhantomData<P>,
}

/// Privileges in a space.
pub type SpacePrivileges = PrivSet<SpacePrivilege>;
/// Privileges in a group.
pub type GroupPrivileges = PrivSet<GroupPrivilege>;
/// Zone-level privileges.
pub type ZonePrivileges = PrivSet<ZonePrivilege>;

// The codec's native encoding: the bit set as one `u32`, byte for byte what
// serde's `transparent` form gives (checked in `codec`'s tests).
impl<P> bincode::Encode for PrivSet<P> {
    fn encode<E: bincode::enc::Encoder>(
        &self,
        encoder: &mut E,
    ) -> Result<(), bincode::error::EncodeError> {
        self.bits.encode(encoder)
    }
}

impl<P, C> bincode::Decode<C> for PrivSet<P> {
    fn decode<D: bincode::de::Decoder<Context = C>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        Ok(PrivSet {
            bits: u32::decode(decoder)?,
            kind: PhantomData,
        })
    }
}

impl<'de, P, C> bincode::BorrowDecode<'de, C> for PrivSet<P> {
    fn borrow_decode<D: bincode::de::BorrowDecoder<'de, Context = C>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        bincode::Decode::decode(decoder)
    }
}

impl<P> Clone for PrivSet<P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P> Copy for PrivSet<P> {}
impl<P> PartialEq for PrivSet<P> {
    fn eq(&self, other: &Self) -> bool {
        self.bits == other.bits
    }
}
impl<P> Eq for PrivSet<P> {}
impl<P> Default for PrivSet<P> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<P: Privilege> fmt::Debug for PrivSet<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

impl<P> PrivSet<P> {
    /// No privilege.
    pub const fn empty() -> Self {
        PrivSet {
            bits: 0,
            kind: PhantomData,
        }
    }
    /// Whether no privilege is held.
    pub fn is_empty(self) -> bool {
        self.bits == 0
    }
    /// The union of two sets.
    pub fn union(self, other: Self) -> Self {
        PrivSet {
            bits: self.bits | other.bits,
            kind: PhantomData,
        }
    }
    /// The privileges of `self` not in `other`.
    pub fn difference(self, other: Self) -> Self {
        PrivSet {
            bits: self.bits & !other.bits,
            kind: PhantomData,
        }
    }
}

impl<P: Privilege> PrivSet<P> {
    /// Every privilege of the kind.
    pub fn all() -> Self {
        Self::from_iter(P::ALL.iter().copied())
    }
    /// Whether `p` is in the set.
    pub fn contains(self, p: P) -> bool {
        self.bits & (1 << p.index()) != 0
    }
    /// Adds `p`.
    pub fn insert(&mut self, p: P) {
        self.bits |= 1 << p.index();
    }
    /// The privileges in the set, in canonical order.
    pub fn iter(self) -> impl Iterator<Item = P> {
        P::ALL.iter().copied().filter(move |p| self.contains(*p))
    }
    /// The wire names of the privileges in the set, in canonical order.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(P::name).collect()
    }
    /// Parses a list of names as clients send them: ozmint's wire names and
    /// Onezone's (see [`Privilege::ONEZONE`]); the first unknown name is the error.
    pub fn from_api_names<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        let mut set = Self::empty();
        for n in names {
            let n = n.as_ref();
            if let Some(p) = P::from_name(n) {
                set.insert(p);
            } else if let Some((_, means)) = P::ONEZONE.iter().find(|(name, _)| *name == n) {
                for p in *means {
                    set.insert(*p);
                }
            } else {
                return Err(n.to_owned());
            }
        }
        Ok(set)
    }
    /// Parses a list of ozmint's wire names (stored data); the first unknown
    /// name is the error.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        let mut set = Self::empty();
        for n in names {
            let n = n.as_ref();
            set.insert(P::from_name(n).ok_or_else(|| n.to_owned())?);
        }
        Ok(set)
    }
    /// Whether a stored bit pattern only holds known privileges.
    pub fn is_valid(self) -> bool {
        self.difference(Self::all()).is_empty()
    }
}

impl<P: Privilege> FromIterator<P> for PrivSet<P> {
    fn from_iter<I: IntoIterator<Item = P>>(iter: I) -> Self {
        let mut set = Self::empty();
        for p in iter {
            set.insert(p);
        }
        set
    }
}

impl SpacePrivileges {
    /// What a plain member of a space gets by default.
    pub fn member_default() -> Self {
        [SpacePrivilege::ViewData, SpacePrivilege::WriteFiles]
            .into_iter()
            .collect()
    }
}

impl GroupPrivileges {
    /// What a plain member of a group gets by default.
    pub fn member_default() -> Self {
        [GroupPrivilege::ViewData].into_iter().collect()
    }
}

/// A user account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct User {
    /// Login name, unique in the zone.
    pub name: String,
    /// Argon2id password hash in PHC string form.
    pub password_hash: String,
    /// Zone-level privileges.
    pub zone_privileges: ZonePrivileges,
    /// Creation time, unix seconds.
    pub created: u64,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password_hash", &"<redacted>")
            .field("zone_privileges", &self.zone_privileges)
            .field("created", &self.created)
            .finish()
    }
}

/// A group of users and other groups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Group {
    /// Display name.
    pub name: String,
    /// Onezone's group type (`role` unless set otherwise).
    pub kind: GroupType,
    /// Creation time, unix seconds.
    pub created: u64,
}

/// Onezone's group types; they label a group and change no privilege.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    bincode::Encode,
    bincode::Decode,
)]
#[serde(rename_all = "snake_case")]
pub enum GroupType {
    /// `organization`.
    Organization,
    /// `unit`.
    Unit,
    /// `team`.
    Team,
    /// `role`, Onezone's default.
    #[default]
    Role,
}

impl GroupType {
    /// Every type, in Onezone's order.
    pub const ALL: [GroupType; 4] = [
        GroupType::Organization,
        GroupType::Unit,
        GroupType::Team,
        GroupType::Role,
    ];

    /// Onezone's name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupType::Organization => "organization",
            GroupType::Unit => "unit",
            GroupType::Team => "team",
            GroupType::Role => "role",
        }
    }
}

impl fmt::Display for GroupType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GroupType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GroupType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!("unknown group type {s:?}: expected organization, unit, team or role")
            })
    }
}

/// A space (a logical data container supported by providers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Space {
    /// Display name.
    pub name: String,
    /// Creation time, unix seconds.
    pub created: u64,
}

/// A storage provider (Oneprovider) registered in the zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Provider {
    /// Display name.
    pub name: String,
    /// The provider's domain.
    pub domain: String,
    /// Creation time, unix seconds.
    pub created: u64,
}

/// Storage support of a space by a provider.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode,
)]
pub struct Support {
    /// Supported size in bytes.
    pub size: u64,
    /// When the support was granted, unix seconds.
    pub since: u64,
}

/// What a token is for. The wire name is the value of its `tokenType` caveat.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    bincode::Encode,
    bincode::Decode,
)]
pub enum TokenKind {
    /// Lets a provider support a space (`space_support_token`).
    SpaceSupport,
    /// Lets a provider create a space for a group (`space_create_token`).
    SpaceCreate,
    /// Authenticates a user (`access_token`).
    Access,
    /// Authenticates a provider (`provider_token`).
    Provider,
}

impl TokenKind {
    /// Every kind.
    pub const ALL: [TokenKind; 4] = [
        TokenKind::SpaceSupport,
        TokenKind::SpaceCreate,
        TokenKind::Access,
        TokenKind::Provider,
    ];
    /// The `tokenType` caveat value.
    pub fn wire_name(self) -> &'static str {
        match self {
            TokenKind::SpaceSupport => "space_support_token",
            TokenKind::SpaceCreate => "space_create_token",
            TokenKind::Access => "access_token",
            TokenKind::Provider => "provider_token",
        }
    }
    /// Parses a `tokenType` caveat value.
    pub fn from_wire_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.wire_name() == s)
    }
    /// Whether the token is an invite consumed once by a provider.
    pub fn is_invite(self) -> bool {
        matches!(self, TokenKind::SpaceSupport | TokenKind::SpaceCreate)
    }
    /// What kind of entity a token of this kind is minted for (its
    /// `target`): deleting that entity deletes the token.
    pub fn target(self) -> crate::error::Entity {
        use crate::error::Entity;
        match self {
            TokenKind::SpaceSupport => Entity::Space,
            TokenKind::SpaceCreate => Entity::Group,
            TokenKind::Access => Entity::User,
            TokenKind::Provider => Entity::Provider,
        }
    }
}

/// Who issued a token or performs a request.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    bincode::Encode,
    bincode::Decode,
)]
pub enum Subject {
    /// A user.
    User(Id),
    /// A provider.
    Provider(Id),
}

/// Where a token stands in its life.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode,
)]
pub enum TokenState {
    /// Usable.
    Active,
    /// Used by a provider (invite tokens are single-use).
    Consumed {
        /// When, unix seconds.
        at: u64,
        /// By which provider.
        by: Id,
    },
    /// Revoked by someone allowed to.
    Revoked {
        /// When, unix seconds.
        at: u64,
    },
}

/// The server-side record of a token, keyed by its identifier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct TokenRecord {
    /// What the token is for.
    pub kind: TokenKind,
    /// The space (support), group (create), user (access) or provider (provider token).
    pub target: Id,
    /// Who minted it.
    pub issuer: Subject,
    /// The root key its secret is derived from.
    pub key_id: u32,
    /// Creation time, unix seconds.
    pub created: u64,
    /// Expiry time, unix seconds (the `time <` caveat minted into it).
    pub expires: u64,
    /// Lifecycle state.
    pub state: TokenState,
}

/// The stored record of an Onedata 20.02+ named token (`od_token`): the
/// serialized token is rebuilt from it on demand (identifier from the
/// subject, type and id; caveats in order; signed with the secret).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct NamedToken {
    /// Whom the token is issued for.
    pub subject: Subject,
    /// Its name, unique among the subject's named tokens.
    pub name: String,
    /// The token type in its identifier form (`act`, `idn`, `ujs:<id>:`).
    pub token_type: String,
    /// The caveats, in their text form, in order.
    pub caveats: Vec<String>,
    /// Custom metadata: a JSON object, as text.
    pub custom_metadata: String,
    /// Creation time, unix seconds.
    pub created: u64,
    /// Whether the token is revoked (reversibly).
    pub revoked: bool,
    /// The HMAC secret: 64 random hexadecimal characters (secret).
    pub secret: String,
    /// Invite tokens only: the privileges granted (`None`: the defaults).
    pub privileges: Option<Vec<String>>,
    /// Invite tokens only: how many times it may be consumed (`None`: infinity).
    pub usage_limit: Option<u64>,
    /// Invite tokens only: how many times it was consumed.
    pub usage_count: u64,
}

impl fmt::Debug for NamedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedToken")
            .field("subject", &self.subject)
            .field("name", &self.name)
            .field("token_type", &self.token_type)
            .field("caveats", &self.caveats)
            .field("custom_metadata", &self.custom_metadata)
            .field("created", &self.created)
            .field("revoked", &self.revoked)
            .field("secret", &"<redacted>")
            .field("privileges", &self.privileges)
            .field("usage_limit", &self.usage_limit)
            .field("usage_count", &self.usage_count)
            .finish()
    }
}

/// The secret all temporary tokens of one subject are signed with, and its
/// generation (Onezone's `temporary_token_secret`): revoking every
/// temporary token of the subject replaces the secret and bumps the generation.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct TemporarySecret {
    /// 64 random hexadecimal characters (secret).
    pub secret: String,
    /// Starts at 1; every revocation adds one.
    pub generation: u64,
}

impl fmt::Debug for TemporarySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemporarySecret")
            .field("secret", &"<redacted>")
            .field("generation", &self.generation)
            .finish()
    }
}

/// A fresh token secret as Onezone makes them: 32 random bytes written as
/// 64 lowercase hexadecimal characters, the text being the HMAC key.
pub fn random_token_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A root key of the minter. Token secrets are derived from it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct RootKey {
    /// 32 secret bytes.
    pub secret: [u8; 32],
    /// Creation time, unix seconds.
    pub created: u64,
    /// When it was retired (tokens signed with it stop verifying), unix seconds.
    pub retired: Option<u64>,
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootKey")
            .field("secret", &"<redacted>")
            .field("created", &self.created)
            .field("retired", &self.retired)
            .finish()
    }
}

/// Seconds since the unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ids_sort_by_creation_and_stay_random() {
        let a = Id::time_ordered();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = Id::time_ordered();
        assert!(a < b, "a later id sorts after an earlier one");
        assert_ne!(a.0[8..], b.0[8..], "the random part differs");
        assert_eq!(b.to_string().len(), ID_TEXT_LEN);
        assert_eq!(b.to_string().parse::<Id>().unwrap(), b);
    }

    #[test]
    fn seed_ids_parse_and_print_back() {
        for s in [
            "9ueUeoZA6KXxNgzlvqmmrbzqE_BQiaHEEDC21sY1Kuc",
            "HwUpk8jrwxKOe45uzLFX2GVC8lKEasj4q253sptVqF8",
        ] {
            let id: Id = s.parse().unwrap();
            assert_eq!(id.to_string(), s);
        }
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for s in [
            "",
            "short",
            "9ueUeoZA6KXxNgzlvqmmrbzqE_BQiaHEEDC21sY1Ku",
            "9ueUeoZA6KXxNgzlvqmmrbzqE_BQiaHEEDC21sY1Kuc=",
            "9ueUeoZA6KXxNgzlvqmmrbzqE+BQiaHEEDC21sY1Kuc",
            // same bytes as ...Kuc but with stray low bits: not canonical
            "9ueUeoZA6KXxNgzlvqmmrbzqE_BQiaHEEDC21sY1Kud",
        ] {
            assert!(s.parse::<Id>().is_err(), "{s}");
        }
    }

    #[test]
    fn privilege_names_round_trip() {
        assert_eq!(SpacePrivilege::ALL.len(), 12);
        assert_eq!(GroupPrivilege::ALL.len(), 13);
        let all = SpacePrivileges::all();
        assert_eq!(SpacePrivileges::from_names(&all.names()).unwrap(), all);
        assert_eq!(
            GroupPrivileges::from_names(&["nope"]).unwrap_err(),
            "nope".to_string()
        );
        assert!(GroupPrivileges::member_default().contains(GroupPrivilege::ViewData));
        assert!(!GroupPrivileges::member_default().contains(GroupPrivilege::CreateSpaceToken));
    }

    fn onezone_names_are_unambiguous<P: Privilege>() {
        let mut seen = std::collections::HashSet::new();
        for (name, _) in P::ONEZONE {
            assert!(
                P::from_name(name).is_none(),
                "{name} is also an ozmint name"
            );
            assert!(seen.insert(*name), "{name} twice");
        }
    }

    #[test]
    fn onezone_privilege_names_mean_ozmint_ones() {
        onezone_names_are_unambiguous::<SpacePrivilege>();
        onezone_names_are_unambiguous::<GroupPrivilege>();
        // Both vocabularies in one request; names for features ozmint lacks
        // grant nothing; stored data takes ozmint's names only.
        let set = SpacePrivileges::from_api_names(&[
            "space_add_user",
            "space_add_support",
            "space_view_transfers",
            "space_write_files",
        ])
        .unwrap();
        assert_eq!(
            set.names(),
            [
                "space_invite_user",
                "space_add_provider",
                "space_write_files"
            ]
        );
        assert!(SpacePrivileges::from_names(&["space_add_user"]).is_err());
        assert_eq!(
            GroupPrivileges::from_api_names(&["group_add_child", "group_add_user"])
                .unwrap()
                .names(),
            ["group_invite_user", "group_invite_group"]
        );
        assert_eq!(
            GroupPrivileges::from_api_names(&["group_add_user", "nope"]).unwrap_err(),
            "nope"
        );
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let key = RootKey {
            secret: [0xab; 32],
            created: 1,
            retired: None,
        };
        assert!(!format!("{key:?}").contains("171"));
        let user = User {
            name: "a".into(),
            password_hash: "$argon2id$secret".into(),
            zone_privileges: ZonePrivileges::empty(),
            created: 0,
        };
        assert!(!format!("{user:?}").contains("argon2id"));
        let secret = random_token_secret();
        assert_eq!(secret.len(), 64);
        assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
        let t = TemporarySecret {
            secret: secret.clone(),
            generation: 1,
        };
        assert!(!format!("{t:?}").contains(&secret));
        let n = NamedToken {
            subject: Subject::User(Id::random()),
            name: "n".into(),
            token_type: "act".into(),
            caveats: vec![],
            custom_metadata: "{}".into(),
            created: 0,
            revoked: false,
            secret: secret.clone(),
            privileges: None,
            usage_limit: None,
            usage_count: 0,
        };
        assert!(!format!("{n:?}").contains(&secret));
    }
}
