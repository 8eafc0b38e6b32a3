//! The handle's index operations: removing entries with their edges,
//! invalidating and listing tags, the sweep, statistics and clearing the
//! namespace (reads and writes of entries are in `cache.rs`).

use crate::engine::clear::ClearProgress;
use crate::engine::listing::TagKeys;
use crate::engine::stats::Stats;
use crate::engine::sweep::PruneReport;
use crate::error::Result;
use crate::layout::keys::{validate_key, validate_tag};
use crate::scripts::{ScriptCall, SCRIPTS};

use super::Cache;

impl Cache {
    /// Deletes an entry and all its index edges; `true` if it existed.
    ///
    /// # Errors
    /// Invalid key, Redis errors.
    pub async fn delete(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.delete_many([key]).await? == 1)
    }

    /// Deletes entries with all their index edges, in bounded chunks;
    /// returns how many existed.
    ///
    /// # Errors
    /// Invalid key, Redis errors.
    pub async fn delete_many<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<u64> {
        let keys: Vec<Vec<u8>> = keys.into_iter().map(|k| k.as_ref().to_vec()).collect();
        for k in &keys {
            validate_key(k)?;
        }
        let deleted = self.core().delete_keys(&keys).await;
        self.l1_keys_changed(&keys);
        deleted
    }

    /// Deletes every entry carrying `tag`; returns how many were deleted.
    ///
    /// Exact: every entry whose write completed before this call began is
    /// gone when it returns; writes completed after it returns survive.
    /// Bounded: Redis works at most one chunk (`chunk_size` entries) per call.
    ///
    /// # Errors
    /// Invalid tag, Redis errors. An invalidation interrupted by an error
    /// or a crash is finished by the next invalidation of the tag or by
    /// the sweep; nothing it covered is orphaned.
    pub async fn invalidate_tag(&self, tag: impl AsRef<[u8]>) -> Result<u64> {
        self.invalidate_tags([tag]).await
    }

    /// Deletes every entry carrying any of `tags` (the union, each entry
    /// counted once).
    ///
    /// # Errors
    /// As [`Cache::invalidate_tag`].
    pub async fn invalidate_tags<T: AsRef<[u8]>>(
        &self,
        tags: impl IntoIterator<Item = T>,
    ) -> Result<u64> {
        let mut list: Vec<Vec<u8>> = Vec::new();
        for t in tags {
            validate_tag(t.as_ref())?;
            if !list.iter().any(|x| x.as_slice() == t.as_ref()) {
                list.push(t.as_ref().to_vec());
            }
        }
        let span = tracing::debug_span!(
            "invalidate",
            namespace = self.namespace(),
            tags = list.len()
        );
        let _guard = span.enter();
        let invalidated = self.core().invalidate(&list).await;
        self.l1_tags_invalidated(&list);
        invalidated
    }

    /// The live keys carrying `tag`, page by page (never expired or deleted
    /// ones). See [`TagKeys`] for the guarantees under concurrent writes.
    ///
    /// # Errors
    /// An invalid tag is reported by the first page.
    pub fn keys_with_tag(&self, tag: impl AsRef<[u8]>) -> TagKeys {
        TagKeys::new(self.inner.core.clone(), tag.as_ref().to_vec())
    }

    /// How many live entries carry `tag`.
    ///
    /// # Errors
    /// Invalid tag, Redis errors.
    pub async fn tag_len(&self, tag: impl AsRef<[u8]>) -> Result<u64> {
        let tag = tag.as_ref();
        validate_tag(tag)?;
        self.tag_len_any(tag).await
    }

    /// [`Cache::tag_len`] of any tag, reserved ones included.
    pub(crate) async fn tag_len_any(&self, tag: &[u8]) -> Result<u64> {
        let core = self.core();
        let mut total = 0u64;
        for b in 0..core.space.buckets() {
            let call = ScriptCall::new(&SCRIPTS.tag_count, &[core.space.tag(b, tag)]);
            total += core.conn.run::<u64>(&call).await?;
        }
        Ok(total)
    }

    /// Whether the live entry `key` carries `tag`.
    ///
    /// # Errors
    /// Invalid key or tag, Redis errors.
    pub async fn has_tag(&self, key: impl AsRef<[u8]>, tag: impl AsRef<[u8]>) -> Result<bool> {
        let (key, tag) = (key.as_ref(), tag.as_ref());
        validate_key(key)?;
        validate_tag(tag)?;
        let core = self.core();
        let mut call = ScriptCall::new(
            &SCRIPTS.tag_member,
            &[core.space.tag(core.space.bucket_of(key), tag)],
        );
        call.arg(key);
        Ok(core.conn.run::<u8>(&call).await? == 1)
    }

    /// One full sweep: trims every expired index member, removes empty
    /// indexes, finishes abandoned invalidations, and checks every index
    /// for members whose entry is gone (evicted, or deleted behind
    /// tagcache's back). Runs as many bounded steps as needed; safe
    /// alongside traffic and other sweepers, and when Redis is at
    /// `maxmemory` (it only frees memory).
    ///
    /// # Errors
    /// Redis errors (the work done so far stays done).
    pub async fn prune(&self) -> Result<PruneReport> {
        self.core().prune_all().await
    }

    /// One bounded sweep step of about `budget` members or indexes;
    /// [`PruneReport::complete`] says whether anything due is left and a
    /// whole pass of the gone-entry check has ended. Successive steps on
    /// one handle resume that pass where the last one stopped.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn prune_step(&self, budget: u64) -> Result<PruneReport> {
        self.core().prune_step(budget).await
    }

    /// Index statistics, read by walking the registries page by page.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn stats(&self) -> Result<Stats> {
        crate::engine::stats::collect(self.core(), &self.server_info()).await
    }

    /// Deletes every entry and group of the namespace, tagged or not, with
    /// all their index edges, in bounded chunks (the stall bound of
    /// [`Cache::invalidate_tag`]); returns how many were deleted. Never
    /// uses `SCAN` or `KEYS`.
    ///
    /// Exact like an invalidation: every entry written before the call
    /// began is gone when it returns. Legacy keys (see
    /// [`crate::legacy::LegacyRules`]) are not tagcache's and are left alone.
    ///
    /// ```no_run
    /// # async fn demo(cache: tagcache::Cache) -> tagcache::Result<()> {
    /// let deleted = cache.clear().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Redis errors; an interrupted clear is finished by the next clear or
    /// by the sweep.
    pub async fn clear(&self) -> Result<u64> {
        self.clear_with_progress(|_| {}).await
    }

    /// [`Cache::clear`], calling `progress` after every chunk.
    ///
    /// # Errors
    /// As [`Cache::clear`].
    pub async fn clear_with_progress(
        &self,
        mut progress: impl FnMut(ClearProgress) + Send,
    ) -> Result<u64> {
        let span = tracing::info_span!("clear", namespace = self.namespace());
        let _guard = span.enter();
        let cleared = self.core_arc().clear(&mut progress).await;
        self.l1_drop_all();
        cleared
    }
}
