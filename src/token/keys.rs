//! Root keys as the token core sees them: looked up by id through
//! [`KeySource`], with no storage behind it here.
//!
//! Every token's secret is derived from one root key and the token's
//! identifier with BLAKE3 in keyed mode, so no per-token secret is stored.
//! Rotation adds a key and makes it current; tokens signed with older keys
//! keep verifying until their key is retired.

/// Domain separation for token secret derivation.
const DERIVE_CONTEXT: &[u8] = b"ozmint token secret v1\0";

/// Where the token core finds root keys.
pub trait KeySource {
    /// The key new tokens are signed with, if it is usable.
    fn current(&self) -> Option<(u32, [u8; 32])>;
    /// The secret of key `id`, unless it is unknown or retired.
    fn secret(&self, id: u32) -> Option<[u8; 32]>;

    /// The secret of a token with `identifier` under key `id`.
    fn token_secret(&self, id: u32, identifier: &[u8]) -> Option<[u8; 32]> {
        self.secret(id).map(|root| derive(&root, identifier))
    }
}

/// Derives a token secret from a root key and the token identifier.
pub fn derive(root: &[u8; 32], identifier: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(root);
    h.update(DERIVE_CONTEXT);
    h.update(identifier);
    *h.finalize().as_bytes()
}
