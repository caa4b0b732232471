//! The key-value engine seam: the store talks to any engine through [`Engine`].
//!
//! An engine holds a fixed set of named trees ([`TreeName`]); each tree is an
//! ordered map from byte keys to byte values. Writes that span trees go through
//! [`Engine::apply`], which is atomic: after a crash either every operation of a
//! batch is visible or none is. Engines: [`super::SledEngine`] (on disk) and
//! [`super::MemEngine`] (in memory, for tests and embedding).

use std::fmt;

/// One logical tree. Key layouts are documented on each variant; `id` is the
/// 32 raw bytes of an [`crate::model::Id`], `++` is concatenation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TreeName {
    /// `b"schema"` -> store schema version (1 byte); `b"admin"` -> id of the first admin.
    Meta,
    /// `user id` -> `User`.
    UserIdUser,
    /// `user name (utf-8)` -> `user id` (32 bytes).
    UserNameUserId,
    /// `group id` -> `Group`.
    GroupIdGroup,
    /// `space id` -> `Space`.
    SpaceIdSpace,
    /// `provider id` -> `Provider`.
    ProviderIdProvider,
    /// `group id ++ user id` -> `GroupPrivileges` of the user in the group.
    GroupUsers,
    /// `user id ++ group id` -> empty (reverse of `GroupUsers`).
    UserGroups,
    /// `parent group id ++ child group id` -> `GroupPrivileges` of the child in the parent.
    GroupChildren,
    /// `child group id ++ parent group id` -> empty (reverse of `GroupChildren`).
    GroupParents,
    /// `space id ++ user id` -> `SpacePrivileges` of the user in the space.
    SpaceUsers,
    /// `user id ++ space id` -> empty (reverse of `SpaceUsers`).
    UserSpaces,
    /// `space id ++ group id` -> `SpacePrivileges` of the group in the space.
    SpaceGroups,
    /// `group id ++ space id` -> empty (reverse of `SpaceGroups`).
    GroupSpaces,
    /// `space id ++ provider id` -> `Support`.
    SpaceProviders,
    /// `provider id ++ space id` -> empty (reverse of `SpaceProviders`).
    ProviderSpaces,
    /// Token records and their indexes, in one tree so that a mint is one
    /// single-tree batch:
    /// - `b"r" ++ token identifier (32 bytes)` -> `TokenRecord`;
    /// - `b"t" ++ target id ++ token identifier` -> empty (tokens of a space,
    ///   group, user or provider);
    /// - `b"e" ++ expiry (u64 big-endian) ++ token identifier` -> empty (purging).
    Tokens,
    /// `key id (u32 big-endian)` -> `RootKey`.
    KeyIdRootKey,
}

impl TreeName {
    /// Every tree, in a fixed order (an engine may index by position).
    pub const ALL: [TreeName; 18] = [
        TreeName::Meta,
        TreeName::UserIdUser,
        TreeName::UserNameUserId,
        TreeName::GroupIdGroup,
        TreeName::SpaceIdSpace,
        TreeName::ProviderIdProvider,
        TreeName::GroupUsers,
        TreeName::UserGroups,
        TreeName::GroupChildren,
        TreeName::GroupParents,
        TreeName::SpaceUsers,
        TreeName::UserSpaces,
        TreeName::SpaceGroups,
        TreeName::GroupSpaces,
        TreeName::SpaceProviders,
        TreeName::ProviderSpaces,
        TreeName::Tokens,
        TreeName::KeyIdRootKey,
    ];

    /// The tree's name on disk.
    pub fn name(self) -> &'static str {
        match self {
            TreeName::Meta => "meta",
            TreeName::UserIdUser => "userid_user",
            TreeName::UserNameUserId => "username_userid",
            TreeName::GroupIdGroup => "groupid_group",
            TreeName::SpaceIdSpace => "spaceid_space",
            TreeName::ProviderIdProvider => "providerid_provider",
            TreeName::GroupUsers => "groupid_userid_privileges",
            TreeName::UserGroups => "userid_groupid",
            TreeName::GroupChildren => "parentid_childid_privileges",
            TreeName::GroupParents => "childid_parentid",
            TreeName::SpaceUsers => "spaceid_userid_privileges",
            TreeName::UserSpaces => "userid_spaceid",
            TreeName::SpaceGroups => "spaceid_groupid_privileges",
            TreeName::GroupSpaces => "groupid_spaceid",
            TreeName::SpaceProviders => "spaceid_providerid_support",
            TreeName::ProviderSpaces => "providerid_spaceid",
            TreeName::Tokens => "tokens",
            TreeName::KeyIdRootKey => "keyid_rootkey",
        }
    }

    /// Position in [`TreeName::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One write of a batch: `Some(value)` inserts, `None` removes.
pub type Op = (TreeName, Vec<u8>, Option<Vec<u8>>);

/// An atomic group of writes over any number of trees.
#[derive(Default, Clone)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }
    /// Queues an insert.
    pub fn put(&mut self, tree: TreeName, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((tree, key.into(), Some(value.into())));
    }
    /// Queues a removal.
    pub fn remove(&mut self, tree: TreeName, key: impl Into<Vec<u8>>) {
        self.ops.push((tree, key.into(), None));
    }
    /// The queued writes, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }
    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A failure of the underlying engine (I/O, corruption detected by the engine).
/// The message is the engine's; it never contains stored values.
#[derive(Debug, Clone)]
pub struct EngineError(pub String);

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage engine: {}", self.0)
    }
}

impl std::error::Error for EngineError {}

/// A key-value pair read from a tree.
pub type Entry = (Vec<u8>, Vec<u8>);

/// An ordered, multi-tree key-value engine.
pub trait Engine: Send + Sync + 'static {
    /// Reads one value.
    fn get(&self, tree: TreeName, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;
    /// Reads up to `limit` entries whose key starts with `prefix`, in key order,
    /// starting strictly after `after` when given.
    fn scan(
        &self,
        tree: TreeName,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, EngineError>;
    /// Writes one value.
    fn put(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), EngineError>;
    /// Applies a batch atomically.
    fn apply(&self, batch: &Batch) -> Result<(), EngineError>;
    /// Replaces `key`'s value with `new` only if it currently equals `old`
    /// (`None`: absent). Returns whether the swap happened.
    fn compare_and_swap(
        &self,
        tree: TreeName,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, EngineError>;
    /// Number of entries in a tree (may be O(n)).
    fn len(&self, tree: TreeName) -> Result<usize, EngineError>;
    /// Makes every write so far durable on disk (no-op in memory).
    fn flush(&self) -> Result<(), EngineError>;
    /// Bytes used on disk (0 in memory).
    fn size_on_disk(&self) -> u64;
}
