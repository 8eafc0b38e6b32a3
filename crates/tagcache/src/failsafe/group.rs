//! The fail-safe view of hash groups: a fetch always returns the loader's
//! value when the cache cannot be used ([`Fetched::Bypassed`]), and a
//! clear that cannot reach Redis is journaled.

use std::future::Future;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use super::{note_bypass, BypassReason, FailSafeCache, Lookup, Removal, Written};
use crate::error::Result;
use crate::failsafe::journal::Pending;
use crate::keyspace::group::{Fetched, FieldRead, Group};
use crate::layout::codec;
use crate::layout::path::Part;
use crate::readthrough::compute::{ComputeError, Computed};

impl FailSafeCache {
    /// The fail-safe view of the hash group `name` of `owner` (see
    /// [`crate::Cache::group`]).
    ///
    /// # Errors
    /// An empty name or owner.
    pub fn group(&self, name: &str, owner: impl Into<Part>) -> Result<FailSafeGroup> {
        Ok(FailSafeGroup {
            group: self.cache.group(name, owner)?,
            fs: self.clone(),
        })
    }
}

/// The fail-safe view of a [`Group`]: `cache.fail_safe().group("flags", id)`.
///
/// [`FailSafeGroup::fetch`] never fails because of Redis: when the read
/// fails, a pending invalidation covers the group, or the store fails, the
/// loader's value is returned uncached with [`Fetched::Bypassed`]. Otherwise
/// it is [`Group::fetch`] (one loader run per field in this process, fenced
/// store). Only invalid input and the loader's own error are an `Err`.
///
/// ```no_run
/// # async fn demo(cache: tagcache::Cache) -> Result<(), Box<dyn std::error::Error>> {
/// let group = cache.fail_safe().group("protected_branches", 42)?.tag("project:42");
/// let fetched = group
///     .fetch("main", || async { Ok::<_, std::io::Error>(true) })
///     .await?;
/// let (protected, _how) = fetched.into_parts();
/// group.clear().await?; // Done, or Journaled while Redis is down
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct FailSafeGroup {
    group: Group,
    fs: FailSafeCache,
}

impl FailSafeGroup {
    /// As [`Group::default_ttl`].
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.group = self.group.default_ttl(ttl);
        self
    }

    /// As [`Group::cap`].
    pub fn cap(mut self, cap: usize) -> Self {
        self.group = self.group.cap(cap);
        self
    }

    /// As [`Group::tag`].
    pub fn tag(mut self, tag: impl AsRef<[u8]>) -> Self {
        self.group = self.group.tag(tag);
        self
    }

    /// As [`Group::dry_run`].
    pub fn dry_run(mut self, on: bool) -> Self {
        self.group = self.group.dry_run(on);
        self
    }

    /// The strict group behind this view.
    pub fn strict(&self) -> &Group {
        &self.group
    }

    /// Reads a field and the group's tags, bounded: the read, or why the
    /// cache must be bypassed (Redis failed, or a pending invalidation
    /// covers the group).
    async fn read(
        &self,
        op: &'static str,
        field: &[u8],
    ) -> Result<std::result::Result<FieldRead, BypassReason>> {
        let journal = self.fs.cache.journal();
        let mark = journal.mark();
        let read = match self.fs.bounded(op, None, self.group.read(field)).await? {
            Ok(read) => read,
            Err(reason) => return Ok(Err(reason)),
        };
        if read.value.is_some() {
            // (Tags matter only while something is pending.)
            let tags = if journal.is_active() {
                read.section
                    .as_deref()
                    .map(codec::parse_tags)
                    .transpose()
                    .unwrap_or_default()
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            if journal.covers_read(mark, self.group.member(), &tags) {
                let reason = BypassReason::PendingInvalidation;
                note_bypass(self.fs.cache.namespace(), op, reason);
                return Ok(Err(reason));
            }
        }
        Ok(Ok(read))
    }

    // Repeats `Group::fetch`'s signature on purpose: the fail-safe view has the same API.
    /// Reads a field through the cache (see the type's docs).
    ///
    /// # Errors
    /// The loader's error (nothing is cached), invalid tags or TTL.
    pub async fn fetch<T, E, F, Fut>(
        &self,
        field: impl AsRef<[u8]>,
        loader: F,
    ) -> std::result::Result<Computed<T, Fetched>, ComputeError<E>>
    where
        T: Serialize + DeserializeOwned + PartialEq,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        let field = Group::field(field.as_ref());
        let (value, source) = match self.read("group_fetch", &field).await? {
            Ok(read) => {
                self.group
                    .resolve(&field, read, loader, Some(self.fs.timeout))
                    .await?
            }
            Err(reason) => {
                let value = loader().await.map_err(ComputeError::Loader)?;
                (value, Fetched::Bypassed(reason))
            }
        };
        Ok(Computed { value, source })
    }

    /// Reads a field without computing it.
    ///
    /// # Errors
    /// Never (the signature leaves room for invalid input).
    pub async fn get<T: DeserializeOwned>(&self, field: impl AsRef<[u8]>) -> Result<Lookup<T>> {
        let field = Group::field(field.as_ref());
        Ok(match self.read("group_get", &field).await? {
            Ok(FieldRead { value: None, .. }) => Lookup::Miss,
            Ok(FieldRead {
                value: Some(bytes), ..
            }) => match codec::from_msgpack(&bytes) {
                Ok(v) => Lookup::Hit(v),
                Err(_) => Lookup::Bypassed(BypassReason::Undecodable),
            },
            Err(reason) => Lookup::Bypassed(reason),
        })
    }

    /// Stores a field directly; skipped when Redis fails.
    ///
    /// # Errors
    /// Invalid tags or TTL.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        field: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<Written> {
        self.fs
            .written("group_set", None, self.group.set(field, value))
            .await
    }

    /// Drops the whole group; journaled when Redis is unreachable (fetches
    /// bypass the group until the drop is replayed).
    ///
    /// # Errors
    /// Never (the signature leaves room for invalid input).
    pub async fn clear(&self) -> Result<Removal> {
        let member = self.group.member().to_vec();
        self.fs
            .removal(
                "delete",
                async { self.group.clear().await.map(u64::from) },
                || Pending::Keys(vec![member]),
            )
            .await
    }
}
