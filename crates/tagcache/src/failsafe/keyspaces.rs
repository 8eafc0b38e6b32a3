//! The fail-safe view of hierarchical keys and owner scopes: the same
//! outcomes as plain keys ([`Lookup`], [`Written`], [`Removal`]), each call
//! delegating to the strict one. A prefix invalidation or scope clear that
//! cannot reach Redis is journaled as the invalidation of the prefix's
//! reserved tag, exactly like [`FailSafeCache::invalidate_tag`]; until it is
//! replayed, reads of every key under the prefix bypass the cache, however
//! the entry was written (path, scope or plain key).

use serde::{de::DeserializeOwned, Serialize};

use super::{bytes, typed, FailSafeCache, Lookup, Removal, Written};
use crate::cache::SetOptions;
use crate::error::{Error, ErrorKind, Result};
use crate::failsafe::journal::Pending;
use crate::keyspace::scope::Scope;
use crate::layout::codec::Codec;
use crate::layout::path::{KeyPath, Part};
use crate::legacy::scoped::Read;

impl FailSafeCache {
    /// Stores a value under a hierarchical key (as [`crate::Cache::set_path`]);
    /// skipped (and said so) when Redis fails.
    ///
    /// # Errors
    /// Only for invalid input (an empty path or part, tags, TTL, size).
    pub async fn set_path<T: Serialize + ?Sized>(
        &self,
        path: &KeyPath,
        value: &T,
        opts: &SetOptions,
    ) -> Result<Written> {
        path.validate()?;
        let key = path.encode();
        self.written("set", Some(&key), self.cache.set_path(path, value, opts))
            .await
    }

    /// Reads the value under a hierarchical key; bypassed while a pending
    /// invalidation covers it (the path itself, one of its prefixes, or
    /// one of its tags).
    ///
    /// # Errors
    /// Only for invalid input.
    pub async fn get_path<T: DeserializeOwned>(&self, path: &KeyPath) -> Result<Lookup<T>> {
        path.validate()?;
        self.get(path.encode()).await
    }

    /// Deletes the entry under exactly this path; journaled when Redis is
    /// unreachable.
    ///
    /// # Errors
    /// Only for invalid input.
    pub async fn delete_path(&self, path: &KeyPath) -> Result<Removal> {
        path.validate()?;
        self.delete(path.encode()).await
    }

    /// Deletes the entry at `prefix` and every entry under it (as
    /// [`crate::Cache::invalidate_prefix`]); when Redis is unreachable the
    /// invalidation of the prefix's reserved tag is journaled and replayed
    /// like [`FailSafeCache::invalidate_tag`], and reads of every key under
    /// the prefix bypass the cache meanwhile.
    ///
    /// # Errors
    /// Only for invalid input.
    pub async fn invalidate_prefix(&self, prefix: &KeyPath) -> Result<Removal> {
        prefix.validate()?;
        let tag = prefix.as_prefix_tag();
        let removal = self
            .removal("invalidate", self.cache.invalidate_prefix(prefix), || {
                Pending::Tags(vec![tag])
            })
            .await?;
        if removal == Removal::Journaled {
            // The entry at the prefix itself is not in its own index.
            self.cache
                .journal()
                .push(Pending::Keys(vec![prefix.encode()]));
        }
        Ok(removal)
    }

    /// Every live path at or under `prefix` (as
    /// [`crate::Cache::paths_under`], collected), bounded by the view's
    /// timeout. Bypassed while a pending invalidation covers the prefix;
    /// paths a pending delete or prefix invalidation covers are left out.
    ///
    /// # Errors
    /// Only for invalid input.
    pub async fn paths_under(&self, prefix: &KeyPath) -> Result<Lookup<Vec<KeyPath>>> {
        prefix.validate()?;
        let journal = self.cache.journal();
        if journal.covers(&prefix.encode(), &[]) {
            return Ok(self.pending_bypass("paths_under"));
        }
        let mark = journal.mark();
        // Many pages: bound the whole listing, not each call.
        let listing = async {
            tokio::time::timeout(self.timeout, self.cache.paths_under(prefix).collect())
                .await
                .map_err(|_| Error::new(ErrorKind::Timeout, "paths_under: operation timeout"))?
        };
        let listed = self.bounded("paths_under", None, listing).await?;
        Ok(match listed {
            Ok(paths) => Lookup::Hit(
                paths
                    .into_iter()
                    .filter(|p| !journal.covers_read(mark, &p.encode(), &[]))
                    .collect(),
            ),
            Err(reason) => Lookup::Bypassed(reason),
        })
    }

    /// The fail-safe view of one owner's scope (see [`crate::Cache::scope`]).
    ///
    /// # Errors
    /// An empty owner path or part.
    pub fn scope(&self, owner: impl Into<KeyPath>) -> Result<FailSafeScope> {
        Ok(FailSafeScope {
            scope: self.cache.scope(owner)?,
            fs: self.clone(),
        })
    }
}

/// The fail-safe view of a [`Scope`]: `cache.fail_safe().scope(["dsr", id])`.
///
/// Reads say [`Lookup::Hit`], [`Lookup::Miss`] or [`Lookup::Bypassed`];
/// writes [`Written::Stored`] or [`Written::Skipped`]; `delete` and `clear`
/// are journaled when Redis is unreachable ([`Removal::Journaled`]) and
/// replayed when it answers, and until then every read of the owner's
/// entries bypasses the cache. Only invalid input is an `Err`.
///
/// A journaled `clear` is replayed as the invalidation of the owner's
/// prefix (every entry under the owner path); with legacy rules, the
/// owner's legacy keys are not part of the replay (they are read as
/// bypassed while it is pending): clear again once Redis is back.
///
/// ```no_run
/// # async fn demo(cache: tagcache::Cache) -> tagcache::Result<()> {
/// use std::time::Duration;
/// use tagcache::{Lookup, Removal, SetOptions};
/// let request = cache.fail_safe().scope(["dsr", "pr-1"])?;
/// request.set("identity:email", &"a@example.com", &SetOptions::new().ttl(Duration::from_secs(3600))).await?;
/// if let Lookup::Hit(email) = request.get::<String>("identity:email").await? {
///     println!("{email}");
/// }
/// match request.clear().await? {
///     Removal::Done(n) => println!("{n} entries erased"),
///     Removal::Journaled => println!("erasure journaled, replayed when Redis is back"),
///     _ => {}
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FailSafeScope {
    scope: Scope,
    fs: FailSafeCache,
}

impl FailSafeScope {
    /// The owner's path.
    pub fn owner(&self) -> &KeyPath {
        self.scope.owner()
    }

    /// The strict scope behind this view.
    pub fn strict(&self) -> &Scope {
        &self.scope
    }

    /// The full key of `part` (validated by the strict call it goes with).
    fn key(&self, part: &Part) -> Vec<u8> {
        self.scope.owner().clone().push(part.clone()).encode()
    }

    async fn lookup_raw(&self, part: Part) -> Result<Lookup<(Codec, Vec<u8>)>> {
        let key = self.key(&part);
        let mark = self.fs.cache.journal().mark();
        let read = self
            .fs
            .bounded("get", Some(&key), self.scope.read(part))
            .await?;
        Ok(match read {
            Ok(None) => self.fs.classify(&key, None, mark),
            Ok(Some(Read::Entry(raw))) => self.fs.classify(&key, Some(raw), mark),
            Ok(Some(Read::Legacy(_))) if self.fs.cache.journal().covers_read(mark, &key, &[]) => {
                self.fs.pending_bypass("get")
            }
            Ok(Some(Read::Legacy(value))) => Lookup::Hit((Codec::Raw, value)),
            Err(reason) => Lookup::Bypassed(reason),
        })
    }

    /// Reads one of this owner's values (a legacy value is raw bytes:
    /// [`Lookup::Bypassed`] with [`super::BypassReason::Undecodable`] here,
    /// read it with [`FailSafeScope::get_bytes`]).
    ///
    /// # Errors
    /// Only for invalid input.
    pub async fn get<T: DeserializeOwned>(&self, part: impl Into<Part>) -> Result<Lookup<T>> {
        Ok(typed(self.lookup_raw(part.into()).await?))
    }

    /// Reads one of this owner's values as bytes.
    ///
    /// # Errors
    /// Only for invalid input.
    pub async fn get_bytes(&self, part: impl Into<Part>) -> Result<Lookup<Vec<u8>>> {
        Ok(bytes(self.lookup_raw(part.into()).await?))
    }

    /// Whether the owner has a live entry under `part`: [`Lookup::Hit`]
    /// when it does, [`Lookup::Miss`] when not, bypassed when Redis fails
    /// or a pending invalidation covers the entry.
    ///
    /// # Errors
    /// Only for invalid input.
    pub async fn contains(&self, part: impl Into<Part>) -> Result<Lookup<()>> {
        let part = part.into();
        let key = self.key(&part);
        if self.fs.cache.journal().is_active() {
            // Only a read knows the entry's tags.
            if let Lookup::Bypassed(reason) = self.lookup_raw(part.clone()).await? {
                return Ok(Lookup::Bypassed(reason));
            }
        }
        let found = self
            .fs
            .bounded("contains", Some(&key), self.scope.contains(part))
            .await?;
        Ok(match found {
            Ok(true) => Lookup::Hit(()),
            Ok(false) => Lookup::Miss,
            Err(reason) => Lookup::Bypassed(reason),
        })
    }

    /// Stores a value for this owner (as [`Scope::set`]); skipped when
    /// Redis fails.
    ///
    /// # Errors
    /// Only for invalid input.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        part: impl Into<Part>,
        value: &T,
        opts: &SetOptions,
    ) -> Result<Written> {
        let part = part.into();
        let key = self.key(&part);
        self.fs
            .written("set", Some(&key), self.scope.set(part, value, opts))
            .await
    }

    // The writes repeat `Scope`'s signatures on purpose: the fail-safe view has the same API.
    /// Stores raw bytes for this owner (as [`Scope::set_bytes`]); skipped
    /// when Redis fails.
    ///
    /// # Errors
    /// Only for invalid input.
    pub async fn set_bytes(
        &self,
        part: impl Into<Part>,
        value: impl AsRef<[u8]>,
        opts: &SetOptions,
    ) -> Result<Written> {
        let part = part.into();
        let key = self.key(&part);
        self.fs
            .written("set", Some(&key), self.scope.set_bytes(part, value, opts))
            .await
    }

    /// Deletes one of this owner's entries; journaled when Redis is
    /// unreachable (reads of it bypass until the delete is replayed).
    ///
    /// # Errors
    /// Only for invalid input.
    pub async fn delete(&self, part: impl Into<Part>) -> Result<Removal> {
        let part = part.into();
        let key = self.key(&part);
        self.fs
            .removal(
                "delete",
                async { self.scope.delete(part).await.map(u64::from) },
                || Pending::Keys(vec![key.clone()]),
            )
            .await
    }

    /// Deletes every entry of this owner; when Redis is unreachable the
    /// invalidation of the owner's prefix is journaled (see the type's
    /// docs) and every read of the owner's entries bypasses until it is
    /// replayed.
    ///
    /// # Errors
    /// Only for invalid input.
    pub async fn clear(&self) -> Result<Removal> {
        let tag = self.scope.owner().as_prefix_tag();
        self.fs
            .removal("invalidate", self.scope.clear(), || {
                Pending::Tags(vec![tag])
            })
            .await
    }
}
