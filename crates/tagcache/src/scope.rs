//! Owner scopes: the keys of one owner (a request, a user, a job), kept in
//! one bucket and one index, listed, checked and cleared as a unit.

use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use crate::cache::{Cache, SetOptions};
use crate::codec::{self, Codec};
use crate::conn::ScriptCall;
use crate::error::Result;
use crate::listing::TagKeys;
use crate::path::{KeyPath, Part};
use crate::scripts::SCRIPTS;

/// The entries of one owner: `cache.scope(["dsr", request_id])`.
///
/// Each entry's key is the owner's path plus a part (`dsr:pr-1:identity`);
/// every entry carries the owner's index (the reserved prefix tag of the
/// owner path) and lives in the owner's bucket, so [`Scope::clear`] is one
/// exact, chunked pass over one index in one hash slot. Owners are whole
/// path parts: `pr-1` and `pr-10` never share anything. The index holds
/// each entry's expiry and is trimmed and swept like any tag index: it
/// never outlives the owner's entries, and never lists a key the owner no
/// longer has.
///
/// ```no_run
/// # async fn demo(cache: tagcache::Cache) -> tagcache::Result<()> {
/// use std::time::Duration;
/// let request = cache.scope(["dsr", "pr-1"])?;
/// request.set("identity:email", &"a@example.com", Duration::from_secs(3600)).await?;
/// assert!(request.contains("identity:email").await?);
/// let removed = request.clear().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Scope {
    cache: Cache,
    owner: KeyPath,
    index: Vec<u8>,
    bucket: u16,
}

impl Cache {
    /// The scope of one owner.
    ///
    /// # Errors
    /// An empty owner path or part.
    pub fn scope(&self, owner: impl Into<KeyPath>) -> Result<Scope> {
        let owner = owner.into();
        owner.validate()?;
        let bucket = self.core_arc().space.bucket_of(&owner.encode());
        Ok(Scope {
            cache: self.clone(),
            index: owner.as_prefix_tag(),
            owner,
            bucket,
        })
    }
}

impl Scope {
    /// The owner's path.
    pub fn owner(&self) -> &KeyPath {
        &self.owner
    }

    fn key(&self, part: impl Into<Part>) -> Result<Vec<u8>> {
        let path = self.owner.clone().push(part);
        path.validate()?;
        Ok(path.encode())
    }

    /// Stores a value for this owner with a TTL.
    ///
    /// # Errors
    /// As [`Cache::set`].
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        part: impl Into<Part>,
        value: &T,
        ttl: Duration,
    ) -> Result<()> {
        self.set_with(part, value, &SetOptions::new().ttl(ttl))
            .await
    }

    /// Stores a value for this owner with full options (extra tags, grace).
    ///
    /// # Errors
    /// As [`Cache::set`].
    pub async fn set_with<T: Serialize + ?Sized>(
        &self,
        part: impl Into<Part>,
        value: &T,
        opts: &SetOptions,
    ) -> Result<()> {
        let key = self.key(part)?;
        let payload = codec::to_msgpack(value)?;
        let op = self.cache.prepare_in(
            &key,
            &payload,
            Codec::MsgPack,
            opts,
            vec![self.index.clone()],
            Some(self.bucket),
        )?;
        self.cache.submit(vec![op]).await.map(drop)
    }

    /// Reads one of this owner's values.
    ///
    /// # Errors
    /// As [`Cache::get`].
    pub async fn get<T: DeserializeOwned>(&self, part: impl Into<Part>) -> Result<Option<T>> {
        let key = self.key(part)?;
        self.cache.get_in(self.bucket, &key).await
    }

    /// Deletes one of this owner's entries; `true` if it existed.
    ///
    /// # Errors
    /// As [`Cache::delete`].
    pub async fn delete(&self, part: impl Into<Part>) -> Result<bool> {
        let key = self.key(part)?;
        let core = self.cache.core_arc();
        Ok(core.delete_in_bucket(self.bucket, vec![key]).await? == 1)
    }

    /// Whether the owner has a live entry under `part`.
    ///
    /// # Errors
    /// As [`Cache::has_tag`].
    pub async fn contains(&self, part: impl Into<Part>) -> Result<bool> {
        let key = self.key(part)?;
        let core = self.cache.core_arc();
        let mut call = ScriptCall::new(
            &SCRIPTS.tag_member,
            &[core.space.tag(self.bucket, &self.index)],
        );
        call.arg(key);
        Ok(core.conn.run::<u8>(&call).await? == 1)
    }

    /// The owner's live keys, as full paths, page by page.
    pub fn keys(&self) -> ScopeKeys {
        let b = self.bucket;
        ScopeKeys(TagKeys::in_buckets(
            self.cache.core_arc().clone(),
            self.index.clone(),
            b..b + 1,
        ))
    }

    /// Deletes every entry of this owner (and nothing else), in bounded
    /// chunks; returns how many.
    ///
    /// # Errors
    /// Redis errors (an interrupted clear is finished by the next one or by
    /// the sweep).
    pub async fn clear(&self) -> Result<u64> {
        let b = self.bucket;
        self.cache
            .core_arc()
            .invalidate_in(b..b + 1, std::slice::from_ref(&self.index))
            .await
    }
}

/// An owner's keys, page by page (see [`Scope::keys`]).
#[derive(Debug)]
#[must_use]
pub struct ScopeKeys(TagKeys);

impl ScopeKeys {
    /// The next non-empty page of full paths, or `None` at the end.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn next_page(&mut self) -> Result<Option<Vec<KeyPath>>> {
        Ok(self
            .0
            .next_page()
            .await?
            .map(|keys| keys.iter().filter_map(|k| KeyPath::decode(k)).collect()))
    }

    /// Every remaining path.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn collect(mut self) -> Result<Vec<KeyPath>> {
        let mut all = Vec::new();
        while let Some(page) = self.next_page().await? {
            all.extend(page);
        }
        Ok(all)
    }
}
