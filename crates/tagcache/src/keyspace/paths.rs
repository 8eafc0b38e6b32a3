//! Hierarchical keys on the cache: write, read, list and invalidate at any
//! level, and wildcard queries (see [`crate::KeyPath`]).

use serde::{de::DeserializeOwned, Serialize};

use crate::cache::{Cache, SetOptions};
use crate::engine::listing::TagKeys;
use crate::error::{InvalidInput, Result};
use crate::layout::codec::{self, Codec};
use crate::layout::path::{KeyPath, PathPattern};

impl Cache {
    /// Stores a value under a hierarchical key, indexed under every proper
    /// prefix of the path besides `opts`' tags, in one atomic step. A path
    /// of `d` parts costs `d - 1` index edges. The same as
    /// [`Cache::set`] of the path's encoded bytes (`org:7:prj:3`): one
    /// key, one entry, whichever API writes it.
    ///
    /// ```no_run
    /// # async fn demo(cache: tagcache::Cache) -> tagcache::Result<()> {
    /// use tagcache::{KeyPath, SetOptions};
    /// let key = KeyPath::from(["org", "7"]).push("prj").push(3).push("pl").push(9);
    /// cache.set_path(&key, &"running", &SetOptions::new()).await?;
    /// cache.invalidate_prefix(&KeyPath::from(["org", "7", "prj", "3"])).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// An empty path or part, and as [`Cache::set`].
    pub async fn set_path<T: Serialize + ?Sized>(
        &self,
        path: &KeyPath,
        value: &T,
        opts: &SetOptions,
    ) -> Result<()> {
        path.validate()?;
        let payload = codec::to_msgpack(value)?;
        let op = self.prepare(&path.encode(), &payload, Codec::MsgPack, opts)?;
        self.submit(vec![op]).await.map(drop)
    }

    /// Reads the value under a hierarchical key.
    ///
    /// # Errors
    /// As [`Cache::get`].
    pub async fn get_path<T: DeserializeOwned>(&self, path: &KeyPath) -> Result<Option<T>> {
        path.validate()?;
        self.get(path.encode()).await
    }

    /// Deletes the entry under exactly this path (not its descendants).
    ///
    /// # Errors
    /// As [`Cache::delete`].
    pub async fn delete_path(&self, path: &KeyPath) -> Result<bool> {
        path.validate()?;
        self.delete(path.encode()).await
    }

    /// Deletes the entry at `prefix` and every entry under it, however it
    /// was written (paths, scopes, plain keys with the same bytes); exact,
    /// chunked and resumable like [`Cache::invalidate_tag`]. Returns how
    /// many were deleted.
    ///
    /// # Errors
    /// An empty path or part; Redis errors.
    pub async fn invalidate_prefix(&self, prefix: &KeyPath) -> Result<u64> {
        prefix.validate()?;
        let tag = prefix.as_prefix_tag();
        let under = self.core_arc().invalidate(std::slice::from_ref(&tag)).await;
        self.l1_tags_invalidated(&[&tag]);
        Ok(under? + u64::from(self.delete(prefix.encode()).await?))
    }

    /// The live paths at or under `prefix`, page by page.
    ///
    /// # Errors
    /// An empty path or part is reported by the first page.
    pub fn paths_under(&self, prefix: &KeyPath) -> PathKeys {
        PathKeys {
            invalid: prefix.validate().is_err(),
            at: Some((self.clone(), prefix.clone())),
            pages: TagKeys::reserved(self.core_arc().clone(), prefix.as_prefix_tag()),
        }
    }

    /// The live entries matching `pattern` (wildcards allowed after the
    /// first part), as (path, value) pages: read from the index of the
    /// pattern's longest exact prefix, filtered, then one `MGET` per page.
    /// Entries that expire between the listing and the read are skipped.
    pub fn query<T: DeserializeOwned>(&self, pattern: &PathPattern) -> PathQuery<T> {
        let prefix = pattern.exact_prefix();
        // A pattern without wildcards names one path: a point read (its
        // own path is not among the entry's index edges).
        let state = if prefix.validate().is_err() {
            QueryState::Invalid
        } else if prefix.len() == pattern.segments().len() {
            QueryState::Point(prefix.clone())
        } else {
            QueryState::Listing
        };
        PathQuery {
            cache: self.clone(),
            pattern: pattern.clone(),
            state,
            pages: TagKeys::reserved(self.core_arc().clone(), prefix.as_prefix_tag()),
            _value: std::marker::PhantomData,
        }
    }
}

/// Paths under a prefix, page by page (see [`Cache::paths_under`]).
#[derive(Debug)]
#[must_use]
pub struct PathKeys {
    invalid: bool,
    /// The prefix itself, checked once before the index is read (an
    /// entry's own path is not among its index edges).
    at: Option<(Cache, KeyPath)>,
    pages: TagKeys,
}

impl PathKeys {
    /// The next non-empty page, or `None` at the end.
    ///
    /// # Errors
    /// An invalid prefix, Redis errors.
    pub async fn next_page(&mut self) -> Result<Option<Vec<KeyPath>>> {
        if self.invalid {
            return Err(InvalidInput::EmptyPart.into());
        }
        if let Some((cache, path)) = self.at.take() {
            if cache.exists(path.encode()).await? {
                return Ok(Some(vec![path]));
            }
        }
        Ok(self
            .pages
            .next_page()
            .await?
            .map(|keys| keys.iter().filter_map(|k| KeyPath::decode(k)).collect()))
    }

    /// Every remaining path.
    ///
    /// # Errors
    /// As [`PathKeys::next_page`].
    pub async fn collect(mut self) -> Result<Vec<KeyPath>> {
        let mut all = Vec::new();
        while let Some(page) = self.next_page().await? {
            all.extend(page);
        }
        Ok(all)
    }
}

/// Entries matching a [`PathPattern`], page by page (see [`Cache::query`]).
#[derive(Debug)]
#[must_use]
pub struct PathQuery<T> {
    cache: Cache,
    pattern: PathPattern,
    state: QueryState,
    pages: TagKeys,
    _value: std::marker::PhantomData<fn() -> T>,
}

/// Where a [`PathQuery`] stands.
#[derive(Debug)]
enum QueryState {
    /// The pattern has no exact first part: every page is an error.
    Invalid,
    /// A pattern without wildcards names one path: read it once.
    Point(KeyPath),
    /// Pages of the exact prefix's index, filtered by the pattern.
    Listing,
    /// Nothing left to read.
    Done,
}

impl<T: DeserializeOwned> PathQuery<T> {
    /// Index members read per page. Default: 1000.
    pub fn page_size(mut self, n: usize) -> Self {
        self.pages = self.pages.page_size(n);
        self
    }

    /// The next page of matches (possibly empty when nothing on this page
    /// matched), or `None` at the end.
    ///
    /// # Errors
    /// A pattern without an exact first part, Redis and codec errors.
    pub async fn next_page(&mut self) -> Result<Option<Vec<(KeyPath, T)>>> {
        let paths: Vec<KeyPath> = match std::mem::replace(&mut self.state, QueryState::Done) {
            QueryState::Invalid => {
                self.state = QueryState::Invalid;
                return Err(InvalidInput::PatternNeedsPrefix.into());
            }
            QueryState::Done => return Ok(None),
            QueryState::Point(path) => vec![path],
            QueryState::Listing => {
                // Still listing if this read fails: a retry reads again.
                self.state = QueryState::Listing;
                let Some(keys) = self.pages.next_page().await? else {
                    self.state = QueryState::Done;
                    return Ok(None);
                };
                keys.iter()
                    .filter_map(|k| KeyPath::decode(k))
                    .filter(|p| self.pattern.matches(p))
                    .collect()
            }
        };
        let values: Vec<Option<T>> = self
            .cache
            .get_many(paths.iter().map(KeyPath::encode))
            .await?;
        Ok(Some(
            paths
                .into_iter()
                .zip(values)
                .filter_map(|(p, v)| v.map(|v| (p, v)))
                .collect(),
        ))
    }

    /// Every remaining match.
    ///
    /// # Errors
    /// As [`PathQuery::next_page`].
    pub async fn collect(mut self) -> Result<Vec<(KeyPath, T)>> {
        let mut all = Vec::new();
        while let Some(page) = self.next_page().await? {
            all.extend(page);
        }
        Ok(all)
    }
}
