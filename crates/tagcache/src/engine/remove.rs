//! Removing entries together with every index edge they have: the common
//! step of `delete` and of each invalidation chunk.
//!
//! `drop.lua` reads each entry's tags itself and removes exactly its edges.
//! Scripts may only touch keys they were given, so the caller declares the
//! tag indexes it expects; an entry with a tag not declared is reported
//! back with all its tags and removed by a second call that declares
//! exactly those. What to declare: the tags learnt from earlier chunks
//! while they are few (at most [`PEEK_ABOVE`] per member), else the tags
//! the chunk's entries carry, read first with one pipeline of `GETRANGE`s
//! (a declared index costs the script about a table slot and a key, so a
//! thousand learnt tags would cost more than reading 100 headers). In a
//! long invalidation most chunks take one call.

use std::collections::HashSet;

use redis::Value;

use crate::engine::core::Core;
use crate::error::{Error, ErrorKind, Result};
use crate::layout::codec;
use crate::layout::keys::{self, GROUP_TAGS_FIELD};
use crate::scripts::table::KeyTable;
use crate::scripts::SCRIPTS;

/// Most tag indexes one `drop.lua` call declares besides those an entry
/// needs, as a multiple of the chunk size. Every declared index costs the
/// script a little even when unused, so the set learnt from earlier chunks
/// is kept small and started afresh when it outgrows this.
const DECLARED_PER_CHUNK: usize = 1;
/// Calls for one set of members before giving up (each retry is caused by
/// a concurrent rewrite adding tags).
const MAX_ATTEMPTS: usize = 16;
/// Learnt tags per member of a chunk above which the chunk's own tags are
/// read first (one pipelined `GETRANGE` per member, ~0.5 µs of Redis time
/// with its protocol work) rather than declaring every learnt tag (~0.15–
/// 0.2 µs each in the script): reading pays from ~3 tags per member, and
/// costs a round trip.
const PEEK_ABOVE: usize = 4;
/// Bytes of an entry [`Core::peek_tags`] reads: what `drop.lua` reads
/// first (lib.lua's `HEAD_READ`), so the two agree on which sections fit.
const PEEK_BYTES: usize = 256;

/// Adds `tags` to the learnt set; the set starts afresh when it would
/// outgrow `cap`.
fn learn(known: &mut Vec<Vec<u8>>, tags: &[Vec<u8>], cap: usize) {
    let new: Vec<Vec<u8>> = tags
        .iter()
        .filter(|t| !known.contains(t))
        .cloned()
        .collect();
    if known.len() + new.len() > cap {
        known.clear();
    }
    if known.len() + new.len() <= cap {
        known.extend(new);
    }
}

/// What [`Core::drop_members`] did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Removed {
    /// Entries deleted.
    pub(crate) entries: u64,
    /// Members the first call processed before its time budget ran out
    /// (all it was sent when the budget sufficed): what fits in one call.
    pub(crate) first_reached: usize,
    /// Time the calls spent, by Redis' clock (µs): the server's own
    /// measure, unlike a round trip, which a busy client inflates.
    pub(crate) server_us: u64,
}

/// What one `drop.lua` call did.
#[derive(Debug)]
struct Dropped {
    /// Entries deleted.
    dropped: u64,
    /// Members processed: the first `reached` of those sent (≥ 1).
    reached: usize,
    /// Time the call spent, by Redis' clock (µs).
    server_us: u64,
    /// Members left because a tag's index was not declared, with all
    /// their tags.
    needs: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
}

/// Reads `drop.lua`'s answer: the count, the time spent, then one status
/// per member reached.
fn parse_drop_reply(reply: Vec<Value>, members: &[Vec<u8>]) -> Result<Dropped> {
    let mut it = reply.into_iter();
    let (dropped, server_us) = match (it.next(), it.next()) {
        (Some(Value::Int(d)), Some(Value::Int(us))) => (
            u64::try_from(d).unwrap_or(0),
            u64::try_from(us).unwrap_or(0),
        ),
        other => {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("drop.lua answered {other:?}"),
            ))
        }
    };
    let statuses: Vec<Value> = it.collect();
    if statuses.is_empty() || statuses.len() > members.len() {
        return Err(Error::new(
            ErrorKind::Protocol,
            format!(
                "drop.lua answered {} statuses for {} members",
                statuses.len(),
                members.len()
            ),
        ));
    }
    let reached = statuses.len();
    let mut needs = Vec::new();
    for (m, status) in members.iter().zip(statuses) {
        if let Value::Array(missing) = status {
            let names = missing
                .into_iter()
                .filter_map(|v| match v {
                    Value::BulkString(b) => Some(b),
                    _ => None,
                })
                .collect();
            needs.push((m.clone(), names));
        }
    }
    Ok(Dropped {
        dropped,
        reached,
        server_us,
        needs,
    })
}

impl Core {
    /// The tag sections of entries of one bucket (`None`: no such entry).
    ///
    /// # Errors
    /// [`ErrorKind::Codec`] when an entry is not a valid tagcache entry
    /// (the same entries a read refuses).
    pub(crate) async fn read_sections(
        &self,
        bucket: u16,
        members: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let keys: Vec<Vec<u8>> = members
            .iter()
            .map(|m| self.space.entry(bucket, m))
            .collect();
        let call = crate::scripts::ScriptCall::new(&SCRIPTS.read_tags, &keys);
        let replies: Vec<Value> = self.conn.run(&call).await?;
        if replies.len() != members.len() {
            return Err(Error::new(
                ErrorKind::Protocol,
                "read_tags.lua answered the wrong count",
            ));
        }
        replies
            .into_iter()
            .map(|v| match v {
                Value::Nil => Ok(None),
                Value::BulkString(section) => Ok(Some(section)),
                // The script's verdict for bytes that are not an entry.
                Value::Int(_) => Err(crate::layout::codec::malformed()),
                other => Err(Error::new(
                    ErrorKind::Protocol,
                    format!("read_tags.lua answered {other:?}"),
                )),
            })
            .collect()
    }

    /// Removes entries of one bucket with all their edges; returns how many
    /// were deleted. `known` carries the tag names seen so far (by earlier
    /// chunks of the same invalidation): their indexes are declared up
    /// front, so a chunk whose entries carry only known tags is one call.
    /// With `invalidating = Some(tag)`, only entries still carrying the tag
    /// are deleted, and every member leaves that tag's snapshot. A call
    /// that spends its time budget before the last member is followed by
    /// another for the rest.
    pub(crate) async fn drop_members(
        &self,
        bucket: u16,
        members: &[Vec<u8>],
        invalidating: Option<&[u8]>,
        known: &mut Vec<Vec<u8>>,
    ) -> Result<Removed> {
        let cap = DECLARED_PER_CHUNK * self.limits.chunk_size;
        let chunk = self.limits.chunk_size.max(1);
        let mut dropped = 0;
        let mut server_us = 0;
        let mut first_reached = None;
        // First pass: declare the tags learnt from earlier chunks, or those
        // the chunk's entries carry when nothing was learnt yet or the
        // learnt set is several times the chunk.
        let mut retry: Vec<(Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
        let mut rest = members;
        while !rest.is_empty() {
            let part = &rest[..rest.len().min(chunk)];
            let peek_above = PEEK_ABOVE * part.len();
            let out = if known.is_empty() || known.len() > peek_above {
                let mut carried = self.peek_tags(bucket, part).await?;
                if known.len() <= peek_above {
                    learn(known, &carried, cap);
                }
                // At most PEEK_ABOVE declared indexes per member a call:
                // entries with tags past that go in the retries, which
                // group them under the cap.
                carried.truncate(PEEK_ABOVE * chunk);
                self.drop_call(bucket, part, invalidating, &carried).await?
            } else {
                self.drop_call(bucket, part, invalidating, known).await?
            };
            dropped += out.dropped;
            server_us += out.server_us;
            first_reached.get_or_insert(out.reached);
            retry.extend(out.needs);
            rest = &rest[out.reached..];
        }
        // Retries: each call declares exactly the tags its entries lacked
        // (grouped up to the cap, at least one entry a call), so every
        // entry succeeds unless a concurrent rewrite gave it new tags.
        for _ in 0..MAX_ATTEMPTS {
            if retry.is_empty() {
                return Ok(Removed {
                    entries: dropped,
                    first_reached: first_reached.unwrap_or(0),
                    server_us,
                });
            }
            let mut again = Vec::new();
            let mut start = 0;
            while start < retry.len() {
                let mut declared: Vec<Vec<u8>> = Vec::new();
                let mut end = start;
                while end < retry.len() {
                    let extra = retry[end]
                        .1
                        .iter()
                        .filter(|t| !declared.contains(t))
                        .count();
                    if end > start && (declared.len() + extra > cap || end - start >= chunk) {
                        break;
                    }
                    for t in &retry[end].1 {
                        if !declared.contains(t) {
                            declared.push(t.clone());
                        }
                    }
                    end += 1;
                }
                let batch: Vec<Vec<u8>> =
                    retry[start..end].iter().map(|(m, _)| m.clone()).collect();
                let out = self
                    .drop_call(bucket, &batch, invalidating, &declared)
                    .await?;
                dropped += out.dropped;
                server_us += out.server_us;
                again.extend(out.needs);
                // Later chunks of this invalidation will likely need these
                // too.
                learn(known, &declared, cap);
                // Members the call did not reach go in the next call.
                start += out.reached;
            }
            retry = again;
        }
        Err(Error::new(
            ErrorKind::Contended,
            "entries kept gaining tags during the removal",
        ))
    }

    /// The tags the entries at `members` carry now, each once: one
    /// pipeline of `GETRANGE`s of their first [`PEEK_BYTES`] (a group's
    /// tag field for a group member). Entries that are gone, malformed or
    /// whose tag section does not fit add nothing; `drop.lua` reads every
    /// entry again and reports what was not declared.
    async fn peek_tags(&self, bucket: u16, members: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for m in members {
            let key = self.space.entry(bucket, m);
            if keys::is_group_member(m) {
                pipe.cmd("HGET").arg(key).arg(GROUP_TAGS_FIELD);
            } else {
                pipe.cmd("GETRANGE").arg(key).arg(0).arg(PEEK_BYTES - 1);
            }
        }
        let replies: Vec<Value> = self.conn.pipe(&pipe).await?;
        let mut seen = HashSet::new();
        let mut tags = Vec::new();
        for (m, reply) in members.iter().zip(replies) {
            let Value::BulkString(bytes) = reply else {
                continue;
            };
            let carried: Box<dyn Iterator<Item = &[u8]>> = if keys::is_group_member(m) {
                Box::new(codec::tags_in_section(&bytes))
            } else {
                match codec::tags_in_head(&bytes) {
                    Some(t) => Box::new(t),
                    None => continue,
                }
            };
            for t in carried {
                if seen.insert(t.to_vec()) {
                    tags.push(t.to_vec());
                }
            }
        }
        Ok(tags)
    }

    /// One `drop.lua` call over members of one bucket.
    async fn drop_call(
        &self,
        bucket: u16,
        members: &[Vec<u8>],
        invalidating: Option<&[u8]>,
        known: &[Vec<u8>],
    ) -> Result<Dropped> {
        let mut table = KeyTable::new(&self.space);
        for m in members {
            table.entry(bucket, m);
        }
        table.registry(bucket);
        if let Some(tag) = invalidating {
            table.tag(bucket, tag);
        }
        for t in known {
            table.tag(bucket, t);
        }
        let extra = match invalidating {
            Some(tag) => vec![
                self.space.snapshot(bucket, tag),
                self.space.inflight(bucket),
            ],
            None => vec![],
        };
        let window = self.limits.fence_window_us();
        let mut call = table.call_by_key(
            &SCRIPTS.drop,
            [invalidating.unwrap_or(b""), window.as_bytes()],
            &extra,
        );
        call.arg(crate::engine::pace::SCRIPT_BUDGET_US)
            .arg(self.space.tag_prefix(bucket));
        for m in members {
            call.arg(m.as_slice());
        }
        let reply: Vec<Value> = self.conn.run(&call).await?;
        parse_drop_reply(reply, members)
    }

    /// Deletes entries (validated keys) with all their edges, bucket by
    /// bucket, in chunks; returns how many existed.
    pub(crate) async fn delete_keys(&self, keys: &[Vec<u8>]) -> Result<u64> {
        let mut by_bucket: Vec<Vec<Vec<u8>>> = vec![Vec::new(); usize::from(self.space.buckets())];
        let mut seen = std::collections::HashSet::new();
        for k in keys {
            if seen.insert(k.as_slice()) {
                by_bucket[usize::from(self.space.bucket_of(k))].push(k.clone());
            }
        }
        let mut total = 0;
        for (bucket, members) in (0u16..).zip(by_bucket) {
            for chunk in members.chunks(self.limits.chunk_size) {
                total += self.delete_in_bucket(bucket, chunk.to_vec()).await?;
            }
        }
        Ok(total)
    }

    /// Deletes entries of one bucket with all their edges; returns how many
    /// existed.
    pub(crate) async fn delete_in_bucket(&self, bucket: u16, members: Vec<Vec<u8>>) -> Result<u64> {
        let mut known = Vec::new();
        Ok(self
            .drop_members(bucket, &members, None, &mut known)
            .await?
            .entries)
    }
}
