//! Owner scopes: the keys of one owner (a request, a user, a job), found
//! through one prefix index, listed, checked and cleared as a unit.

use std::collections::HashSet;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use crate::cache::{Cache, SetOptions};
use crate::engine::listing::TagKeys;
use crate::error::Result;
use crate::layout::codec::{self, Codec};
use crate::layout::path::{KeyPath, Part};
use crate::legacy::scoped::{self as legacy, LegacyKeys, Read};
use crate::scripts::{ScriptCall, SCRIPTS};

/// The entries of one owner: `cache.scope(["dsr", request_id])`.
///
/// Each entry's key is the owner's path plus a part (`dsr:pr-1:identity`):
/// an ordinary path entry, the same entry as
/// `cache.set_path(["dsr", "pr-1", "identity"])` or
/// `cache.set("dsr:pr-1:identity")`. Every entry under the owner path,
/// however it was written, carries the owner's prefix index, so
/// [`Scope::clear`] is one exact, chunked pass over that index (per
/// bucket: entries spread over the namespace's buckets by their own key,
/// like every entry). Owners are whole path parts: `pr-1` and `pr-10`
/// never share anything. The index holds
/// each entry's expiry and is trimmed and swept like any tag index: it
/// never outlives the owner's entries, and never lists a key the owner no
/// longer has.
///
/// With legacy rules configured ([`crate::CacheBuilder::legacy`]), reads
/// fall back to the legacy key of a part, `delete` and `contains` cover
/// it, and `keys` and `clear` also find the owner's legacy keys (by
/// `SCAN`) until the namespace's bulk migration has completed: see
/// [`crate::legacy::LegacyRules`]. Without rules, no operation of a scope scans.
///
/// ```no_run
/// # async fn demo(cache: tagcache::Cache) -> tagcache::Result<()> {
/// use std::time::Duration;
/// use tagcache::SetOptions;
/// let request = cache.scope(["dsr", "pr-1"])?;
/// request.set("identity:email", &"a@example.com", &SetOptions::new().ttl(Duration::from_secs(3600))).await?;
/// assert!(request.contains("identity:email").await?);
/// let removed = request.clear().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Scope {
    cache: Cache,
    owner: KeyPath,
    index: Vec<u8>,
}

impl Cache {
    /// The scope of one owner.
    ///
    /// # Errors
    /// An empty owner path or part.
    pub fn scope(&self, owner: impl Into<KeyPath>) -> Result<Scope> {
        let owner = owner.into();
        owner.validate()?;
        Ok(Scope {
            cache: self.clone(),
            index: owner.as_prefix_tag(),
            owner,
        })
    }
}

impl Scope {
    /// The owner's path.
    pub fn owner(&self) -> &KeyPath {
        &self.owner
    }

    fn key(&self, part: impl Into<Part>) -> Result<Vec<u8>> {
        Ok(self.key_and_part(part)?.0)
    }

    fn key_and_part(&self, part: impl Into<Part>) -> Result<(Vec<u8>, Part)> {
        let part = part.into();
        let path = self.owner.clone().push(part.clone());
        path.validate()?;
        Ok((path.encode(), part))
    }

    /// Stores a value for this owner (TTL, extra tags, grace: as
    /// [`Cache::set`]).
    ///
    /// # Errors
    /// As [`Cache::set`].
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        part: impl Into<Part>,
        value: &T,
        opts: &SetOptions,
    ) -> Result<()> {
        self.write(part, &codec::to_msgpack(value)?, Codec::MsgPack, opts)
            .await
    }

    /// Stores raw bytes for this owner (read them with
    /// [`Scope::get_bytes`]).
    ///
    /// # Errors
    /// As [`Cache::set_bytes`].
    pub async fn set_bytes(
        &self,
        part: impl Into<Part>,
        value: impl AsRef<[u8]>,
        opts: &SetOptions,
    ) -> Result<()> {
        self.write(part, value.as_ref(), Codec::Raw, opts).await
    }

    /// One write; in legacy `Migrate` mode the part's legacy twin goes too
    /// (so an old value cannot come back once the entry expires).
    async fn write(
        &self,
        part: impl Into<Part>,
        payload: &[u8],
        codec: Codec,
        opts: &SetOptions,
    ) -> Result<()> {
        let (key, part) = self.key_and_part(part)?;
        let op = self.cache.prepare(&key, payload, codec, opts)?;
        self.cache.submit(vec![op]).await?;
        if let Some(l) = self.cache.legacy().filter(|l| l.migrates()) {
            legacy::delete(self.cache.core_arc(), l, &self.owner, &part).await?;
        }
        Ok(())
    }

    /// The stored entry of `part`, or its legacy value (see the type's docs).
    pub(crate) async fn read(&self, part: impl Into<Part>) -> Result<Option<Read>> {
        let (key, part) = self.key_and_part(part)?;
        let core = self.cache.core_arc();
        let bucket = core.space.bucket_of(&key);
        match self.cache.legacy() {
            Some(l) => legacy::read(core, l, &self.owner, bucket, &part).await,
            // (Through the L1 when there is one.)
            None => Ok(self.cache.get_raw(&key).await?.map(Read::Entry)),
        }
    }

    /// Reads one of this owner's values.
    ///
    /// # Errors
    /// As [`Cache::get`]; [`ErrorKind::Codec`](crate::ErrorKind::Codec) for a legacy value (raw
    /// bytes: read it with [`Scope::get_bytes`]).
    pub async fn get<T: DeserializeOwned>(&self, part: impl Into<Part>) -> Result<Option<T>> {
        if self.cache.legacy().is_none() {
            let key = self.key(part)?;
            return self.cache.get(&key).await;
        }
        match self.read(part).await? {
            None => Ok(None),
            Some(Read::Entry(bytes)) => self.cache.decode_fresh(&bytes),
            Some(Read::Legacy(v)) => codec::from_raw(
                &v,
                "the value is a legacy key's raw bytes; read it with get_bytes",
            )
            .map(Some),
        }
    }

    /// Reads one of this owner's values as bytes: an entry's payload, or
    /// a legacy key's value.
    ///
    /// # Errors
    /// As [`Cache::get_bytes`].
    pub async fn get_bytes(&self, part: impl Into<Part>) -> Result<Option<Vec<u8>>> {
        match self.read(part).await? {
            None => Ok(None),
            Some(Read::Entry(bytes)) => self.cache.decode_bytes_fresh(&bytes),
            Some(Read::Legacy(value)) => Ok(Some(value)),
        }
    }

    /// The remaining TTL of one of this owner's entries; `None` when absent
    /// (legacy keys are not consulted).
    ///
    /// # Errors
    /// As [`Cache::ttl`].
    pub async fn ttl(&self, part: impl Into<Part>) -> Result<Option<Duration>> {
        self.cache.ttl(self.key(part)?).await
    }

    /// Deletes one of this owner's entries (and its legacy key, if legacy
    /// rules are configured); `true` if either existed.
    ///
    /// # Errors
    /// As [`Cache::delete`].
    pub async fn delete(&self, part: impl Into<Part>) -> Result<bool> {
        let (key, part) = self.key_and_part(part)?;
        let core = self.cache.core_arc();
        let old = match self.cache.legacy() {
            Some(l) => legacy::delete(core, l, &self.owner, &part).await?,
            None => false,
        };
        Ok(self.cache.delete(&key).await? || old)
    }

    /// Whether the owner has a live entry under `part` (or, with legacy
    /// rules, a legacy key that maps to it).
    ///
    /// # Errors
    /// As [`Cache::has_tag`].
    pub async fn contains(&self, part: impl Into<Part>) -> Result<bool> {
        let (key, part) = self.key_and_part(part)?;
        let core = self.cache.core_arc();
        let mut call = ScriptCall::new(
            &SCRIPTS.tag_member,
            &[core.space.tag(core.space.bucket_of(&key), &self.index)],
        );
        call.arg(key);
        if core.conn.run::<u8>(&call).await? == 1 {
            return Ok(true);
        }
        match self.cache.legacy() {
            Some(l) => legacy::contains(core, l, &self.owner, &part).await,
            None => Ok(false),
        }
    }

    /// The owner's live keys, as full paths, page by page.
    ///
    /// With legacy rules, while the namespace is in transition, the
    /// owner's legacy keys come first (as the paths they map to; moved
    /// first in `Migrate` mode), found by a paged `SCAN MATCH`; each key
    /// is listed once.
    pub fn keys(&self) -> ScopeKeys {
        let core = self.cache.core_arc().clone();
        ScopeKeys {
            legacy: self
                .cache
                .legacy()
                .map(|l| LegacyKeys::new(core.clone(), l.clone(), self.owner.clone())),
            index: TagKeys::reserved(core, self.index.clone()),
            seen: HashSet::new(),
        }
    }

    /// Deletes every entry under the owner's path (and nothing else),
    /// however it was written, in bounded chunks; returns how many. The
    /// same as [`Cache::invalidate_prefix`] of the owner path, except that
    /// an entry *at* the owner path itself is not the owner's.
    ///
    /// With legacy rules, while the namespace is in transition, the
    /// owner's legacy keys are deleted first (found by a paged `SCAN
    /// MATCH`, matched exactly) and counted too.
    ///
    /// # Errors
    /// Redis errors (an interrupted clear is finished by the next one or by
    /// the sweep).
    pub async fn clear(&self) -> Result<u64> {
        let core = self.cache.core_arc();
        // Legacy keys first: a read moving one concurrently then either
        // lands in the index before it is cut, or finds its key gone.
        let old = match self.cache.legacy() {
            Some(l) => legacy::clear(core, l, &self.owner).await?,
            None => 0,
        };
        Ok(old + core.invalidate(std::slice::from_ref(&self.index)).await?)
    }
}

/// An owner's keys, page by page (see [`Scope::keys`]).
#[derive(Debug)]
#[must_use]
pub struct ScopeKeys {
    legacy: Option<LegacyKeys>,
    index: TagKeys,
    /// Member keys the legacy phase returned (the index may list them too).
    seen: HashSet<Vec<u8>>,
}

impl ScopeKeys {
    /// The next non-empty page of full paths, or `None` at the end.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn next_page(&mut self) -> Result<Option<Vec<KeyPath>>> {
        if let Some(l) = self.legacy.as_mut() {
            match l.next_page(&mut self.seen).await? {
                Some(page) => return Ok(Some(page)),
                None => self.legacy = None,
            }
        }
        while let Some(keys) = self.index.next_page().await? {
            let page: Vec<KeyPath> = keys
                .iter()
                .filter(|k| !self.seen.contains(*k))
                .filter_map(|k| KeyPath::decode(k))
                .collect();
            if !page.is_empty() {
                return Ok(Some(page));
            }
        }
        Ok(None)
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
