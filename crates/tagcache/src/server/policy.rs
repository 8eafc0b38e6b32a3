//! Which `maxmemory-policy` settings keep invalidation exact.
//!
//! Entries always have a TTL; index keys (tag indexes, registries,
//! snapshots) never do: the sweep removes them instead. So a policy that
//! evicts only keys with a TTL (`volatile-*`) can drop entries, never the
//! index that an invalidation needs to find a live entry. An `allkeys-*`
//! policy can evict an index while its entries live, and a later
//! invalidation would miss them: tagcache refuses it unless told otherwise.
//!
//! | policy | safe | note |
//! |---|---|---|
//! | `noeviction` | yes | writes fail with OOM when memory is full |
//! | `volatile-lru`, `volatile-lfu`, `volatile-random`, `volatile-ttl` | yes | evicted entries leave dangling index members until their expiry; listings check existence |
//! | `allkeys-lru`, `allkeys-lfu`, `allkeys-random` | no | an evicted index hides live entries from invalidation |

use crate::error::{Error, ErrorKind, Result};

/// What tagcache does when Redis' eviction policy could evict index keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EvictionCheck {
    /// Refuse to build the cache (the default).
    #[default]
    Refuse,
    /// Build it, and log a warning.
    Warn,
    /// Build it silently.
    Ignore,
}

/// How safe a policy is for tagcache's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Safety {
    /// Index keys are never evicted.
    Safe,
    /// Index keys can be evicted.
    Unsafe,
    /// The policy could not be read (CONFIG disabled) or is unknown.
    Unknown,
}

/// Classifies a `maxmemory-policy` value.
pub(crate) fn safety(policy: &str) -> Safety {
    match policy {
        "noeviction" | "volatile-lru" | "volatile-lfu" | "volatile-random" | "volatile-ttl" => {
            Safety::Safe
        }
        "allkeys-lru" | "allkeys-lfu" | "allkeys-random" => Safety::Unsafe,
        _ => Safety::Unknown,
    }
}

/// Whether entries can vanish behind an index's back under this policy.
pub(crate) fn may_evict_entries(policy: &str) -> bool {
    policy != "noeviction"
}

/// Refuses, warns about or accepts the server's `maxmemory-policy` as
/// `check` says (see [`EvictionCheck`]).
pub(crate) fn check(policy: &str, check: EvictionCheck) -> Result<()> {
    match (safety(policy), check) {
        (Safety::Safe, _) | (_, EvictionCheck::Ignore) => Ok(()),
        (Safety::Unsafe, EvictionCheck::Refuse) => Err(Error::new(
            ErrorKind::UnsafeEvictionPolicy,
            format!(
                "maxmemory-policy {policy} can evict index keys while their entries live; \
                 use noeviction or a volatile-* policy, or EvictionCheck::Warn to accept the risk"
            ),
        )),
        (safety, _) => {
            tracing::warn!(
                policy,
                known = safety != Safety::Unknown,
                "maxmemory-policy may evict tagcache index keys: invalidations could miss entries"
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_matrix() {
        assert_eq!(safety("noeviction"), Safety::Safe);
        assert_eq!(safety("volatile-ttl"), Safety::Safe);
        assert_eq!(safety("allkeys-lru"), Safety::Unsafe);
        assert_eq!(safety(""), Safety::Unknown);
        assert!(!may_evict_entries("noeviction"));
        assert!(may_evict_entries("volatile-lru"));
    }
}
