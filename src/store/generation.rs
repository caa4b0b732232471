//! Cache generations.
//!
//! A store instance caches what is costly to compute and rarely changes:
//! the groups each user reaches through nested groups, and the root keys.
//! Each cache belongs to a generation: a key in the store holding 16 random
//! bytes that every commit changing the cached data renews, in the same
//! commit ([`super::txn`] does it for every write to a covered table). A
//! cached value is used only while the generation read from the store (in the
//! same engine call as the other reads of the request, where possible) is the
//! one it was computed at, so a change made through any instance, in any
//! process, is honoured by every instance on its very next request.
//!
//! Random values rather than counters: two commits that both renew a
//! generation without reading it can never leave the value a cache was
//! computed at.

use rand::RngCore;

use super::schema::{
    GENERATION, GROUPS, GROUP_CHILDREN, GROUP_PARENTS, GROUP_USERS, ROOT_KEYS, USER_GROUPS,
};

/// A cache generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Generation {
    /// The group graph: groups, users in groups, groups in groups.
    Graph,
    /// The root keys.
    Keys,
}

impl Generation {
    fn name(self) -> &'static str {
        match self {
            Generation::Graph => "graph",
            Generation::Keys => "keys",
        }
    }

    /// The engine key holding the generation.
    pub fn key(self) -> Vec<u8> {
        GENERATION.key(&self.name())
    }

    /// The generations a write to `key` must renew.
    pub(crate) fn covering(key: &[u8]) -> impl Iterator<Item = Generation> + '_ {
        let graph = [
            GROUPS.name,
            GROUP_USERS.name,
            USER_GROUPS.name,
            GROUP_CHILDREN.name,
            GROUP_PARENTS.name,
        ];
        let in_table = move |name: &str| {
            key.strip_prefix(name.as_bytes())
                .is_some_and(|rest| rest.first() == Some(&b'/'))
        };
        let g = graph
            .iter()
            .any(|t| in_table(t))
            .then_some(Generation::Graph);
        let k = in_table(ROOT_KEYS.name).then_some(Generation::Keys);
        g.into_iter().chain(k)
    }

    /// A new generation value.
    pub(crate) fn fresh_value() -> Vec<u8> {
        let mut v = vec![0u8; 16];
        rand::thread_rng().fill_bytes(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Id;

    #[test]
    fn writes_renew_the_generations_they_cover() {
        let id = Id::random();
        let covered = |k: Vec<u8>| Generation::covering(&k).collect::<Vec<_>>();
        assert_eq!(covered(GROUP_USERS.key(&(id, id))), vec![Generation::Graph]);
        assert_eq!(covered(GROUPS.key(&id)), vec![Generation::Graph]);
        assert_eq!(covered(ROOT_KEYS.key(&1)), vec![Generation::Keys]);
        assert!(covered(crate::store::schema::USERS.key(&id)).is_empty());
        assert!(covered(crate::store::schema::SPACE_USERS.key(&(id, id))).is_empty());
        // A table whose name merely starts like a covered one is not covered.
        assert!(covered(b"groupid_groupx/abc".to_vec()).is_empty());
    }
}
