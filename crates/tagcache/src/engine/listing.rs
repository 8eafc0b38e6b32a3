//! Listing the keys of a tag, page by page.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::Stream;
use redis::Value;

use crate::engine::core::Core;
use crate::error::{Error, ErrorKind, Result};
use crate::layout::keys::validate_tag;
use crate::scripts::{ScriptCall, SCRIPTS};

/// The live keys of one tag, read page by page in (expiry, key) order.
///
/// Each page is one bounded script call per bucket (`tag_page.lua`), so a
/// tag of any size is listed without blocking Redis. A key that is live and
/// tagged for the whole listing is returned exactly once; an entry written,
/// rewritten or removed meanwhile may or may not appear. Expired entries
/// never appear; under a `volatile-*` eviction policy each page is also
/// checked with `EXISTS`, so evicted entries do not either. Entries of an
/// invalidation still in progress are not listed (they are being deleted).
///
/// ```no_run
/// # async fn demo(cache: tagcache::Cache) -> tagcache::Result<()> {
/// let mut pages = cache.keys_with_tag("product:42").page_size(500);
/// while let Some(keys) = pages.next_page().await? {
///     for key in keys {
///         println!("{}", String::from_utf8_lossy(&key));
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use]
pub struct TagKeys {
    core: Arc<Core>,
    tag: Vec<u8>,
    /// The tag is tagcache's own (skip the caller-tag validation).
    reserved: bool,
    page_size: usize,
    bucket: u16,
    /// One past the last bucket to read.
    end: u16,
    /// Score and member of the last member read in this bucket.
    cursor: Option<(String, Vec<u8>)>,
    /// Members already read whose score equals the cursor's.
    ties: HashSet<Vec<u8>>,
    done: bool,
}

impl TagKeys {
    /// A listing of a caller's tag (validated by the first page).
    pub(crate) fn new(core: Arc<Core>, tag: Vec<u8>) -> Self {
        Self::of_any_tag(core, tag, false)
    }

    /// A listing of a reserved tag (prefix indexes): tagcache's own name,
    /// not validated as a caller's tag.
    pub(crate) fn reserved(core: Arc<Core>, tag: Vec<u8>) -> Self {
        Self::of_any_tag(core, tag, true)
    }

    fn of_any_tag(core: Arc<Core>, tag: Vec<u8>, reserved: bool) -> Self {
        let end = core.space.buckets();
        Self {
            core,
            tag,
            reserved,
            page_size: 1000,
            bucket: 0,
            end,
            cursor: None,
            ties: HashSet::new(),
            done: false,
        }
    }

    /// Members read per call. Default: 1000.
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// The next non-empty page, or `None` when the listing is complete.
    ///
    /// # Errors
    /// Invalid tag, Redis errors (the listing can be resumed by calling
    /// again).
    pub async fn next_page(&mut self) -> Result<Option<Vec<Vec<u8>>>> {
        if !self.reserved {
            validate_tag(&self.tag)?;
        }
        while !self.done {
            let raw = self.read_page().await?;
            if Self::is_empty_page(&raw) {
                self.bucket += 1;
                self.cursor = None;
                self.ties.clear();
                if self.bucket >= self.end {
                    self.done = true;
                }
                continue;
            }
            let keys = self.accept(raw);
            let keys = self.still_there(keys).await?;
            if !keys.is_empty() {
                return Ok(Some(keys));
            }
        }
        Ok(None)
    }

    /// Every remaining key, collected.
    ///
    /// # Errors
    /// As [`TagKeys::next_page`].
    pub async fn collect(mut self) -> Result<Vec<Vec<u8>>> {
        let mut all = Vec::new();
        while let Some(page) = self.next_page().await? {
            all.extend(page);
        }
        Ok(all)
    }

    /// The keys as a stream of single keys.
    pub fn into_stream(self) -> impl Stream<Item = Result<Vec<u8>>> {
        futures_util::stream::unfold(
            (self, Vec::<Vec<u8>>::new()),
            |(mut pages, mut buf)| async move {
                loop {
                    if let Some(k) = buf.pop() {
                        return Some((Ok(k), (pages, buf)));
                    }
                    match pages.next_page().await {
                        Ok(Some(mut page)) => {
                            page.reverse();
                            buf = page;
                        }
                        Ok(None) => return None,
                        Err(e) => {
                            pages.done = true;
                            return Some((Err(e), (pages, buf)));
                        }
                    }
                }
            },
        )
    }

    /// One raw page: `(now, [(member, score)])`.
    async fn read_page(&self) -> Result<(u64, Vec<(Vec<u8>, String)>)> {
        let key = self.core.space.tag(self.bucket, &self.tag);
        let mut call = ScriptCall::new(&SCRIPTS.tag_page, &[key]);
        call.arg(self.page_size);
        match &self.cursor {
            Some((score, member)) => call.arg(score.as_str()).arg(member.as_slice()),
            None => call.arg("").arg(""),
        };
        let reply: Vec<Value> = self.core.conn.run(&call).await?;
        let mut it = reply.into_iter();
        let now = match it.next() {
            Some(Value::BulkString(b)) => parse_u64(&b)?,
            other => return Err(protocol(format!("{other:?}"))),
        };
        let mut pairs = Vec::new();
        while let (Some(Value::BulkString(m)), Some(Value::BulkString(s))) = (it.next(), it.next())
        {
            pairs.push((m, String::from_utf8_lossy(&s).into_owned()));
        }
        Ok((now, pairs))
    }

    /// Drops expired members and repeats; moves the cursor.
    fn accept(&mut self, (now, pairs): (u64, Vec<(Vec<u8>, String)>)) -> Vec<Vec<u8>> {
        let mut keys = Vec::with_capacity(pairs.len());
        let now = now as f64;
        for (member, score) in pairs {
            let same = self.cursor.as_ref().is_some_and(|(s, _)| *s == score);
            if !same {
                self.ties.clear();
            }
            let repeat = same && self.ties.contains(&member);
            self.ties.insert(member.clone());
            let live = score.parse::<f64>().map(|s| s >= now).unwrap_or(false);
            // Hash groups (members starting with byte 0) are not keys: no
            // key API can read them, so a key listing never returns them.
            let key = member.first() != Some(&crate::layout::keys::RESERVED_TAG);
            if live && !repeat && key {
                keys.push(member.clone());
            }
            self.cursor = Some((score, member));
        }
        keys
    }

    /// Under an evicting policy, keeps only keys whose entry still exists.
    async fn still_there(&self, keys: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>> {
        if !self.core.limits.verify_listing || keys.is_empty() {
            return Ok(keys);
        }
        let mut pipe = redis::pipe();
        for k in &keys {
            pipe.exists(self.core.space.entry(self.bucket, k));
        }
        let present: Vec<bool> = self.core.conn.pipe(&pipe).await?;
        Ok(keys
            .into_iter()
            .zip(present)
            .filter(|(_, p)| *p)
            .map(|(k, _)| k)
            .collect())
    }
}

impl TagKeys {
    fn is_empty_page(raw: &(u64, Vec<(Vec<u8>, String)>)) -> bool {
        raw.1.is_empty()
    }
}

fn parse_u64(b: &[u8]) -> Result<u64> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| protocol("non-numeric time".into()))
}

fn protocol(what: String) -> Error {
    Error::new(ErrorKind::Protocol, format!("tag_page.lua answered {what}"))
}
