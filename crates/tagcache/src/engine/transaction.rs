//! The transaction write path ([`WritePath::Transaction`]): a batch of
//! entries written with `MULTI`/`EXEC` instead of a script call.
//!
//! On Redis 7.0 a command run inside a script costs several times what the
//! same command costs sent directly, and a script call has a fixed cost of
//! its own, so the common write — new keys, or rewrites that keep or add
//! tags — goes as one transaction (one round trip):
//!
//! ```text
//! MULTI
//! SET <entry> <bytes> PXAT <expiry> GET     per entry
//! ZREM <index> <member> …                   per index of a tag known lost
//! ZADD <index> <expiry> <member> …          per index written (all its members)
//! ZADD <registry> LT <expiry> <tag> …       per bucket
//! EVALSHA guard.lua …                       when the batch has guarded stores
//! INCR {<ns>.<b>}:l1                        per bucket: the announcement
//! SPUBLISH {<ns>.<b>}:l1 <keys written>     (docs/l1.md)
//! EXEC
//! ```
//!
//! Lost tags known in advance: [`crate::engine::recent`] remembers the tags
//! this process last wrote per key; a rewrite that drops one of them
//! removes that edge in the transaction (`ZREM`, always right: after the
//! `EXEC` the entry lacks the tag). Guarded stores (a read-through's store,
//! refused when an invalidation or delete fenced its key or tags after its
//! read began) are written like the others and checked by [`guard.lua`]
//! in the same transaction, which undoes a refused one before any other
//! client runs a command.
//!
//! The expiry comes from the process's estimate of Redis' clock
//! ([`crate::server::clock`]); the entry's `PXAT` and its index scores are the same
//! number. `SET … GET` answers the old entry, so its tags are known exactly:
//! when it carried a tag the new value lacks, [`unlink.lua`] removes the
//! member from that index afterwards, if the entry does not carry the tag
//! by then (see `docs/redis-layout.md`, *Write*, for what this second step
//! means for listings). An old value of another type (`WRONGTYPE`: the
//! `SET` failed, the rest ran) or a transaction Redis refused (`EXECABORT`,
//! e.g. at maxmemory) sends those entries through `set.lua` instead, which
//! overwrites and reports errors as before.
//!
//! [`unlink.lua`]: crate::scripts::SCRIPTS
//! [`guard.lua`]: crate::scripts::SCRIPTS

use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use redis::Value;

use crate::engine::core::Core;
use crate::engine::recent::Tags;
use crate::engine::write::WriteOp;
use crate::error::{Error, ErrorKind, Result};
use crate::layout::codec;
use crate::layout::keys::KeySpace;
use crate::observe::metrics as names;
use crate::options::WritePath;
use crate::scripts::table::KeyTable;
use crate::scripts::{ScriptCall, SCRIPTS};

/// Values above this size go through `set.lua`: `SET … GET` returns the
/// whole old value, which for large entries costs more than the script's
/// 256-byte read of its header.
pub(crate) const MAX_TRANSACTION_VALUE: usize = 64 << 10;

/// A transaction ready to send, and where each entry's `SET` answers.
pub(crate) struct Transaction {
    /// `MULTI`, the commands, `EXEC` (a plain pipeline: every reply is
    /// read, so a refused command is seen).
    pub(crate) pipe: redis::Pipeline,
    /// Position of each entry's `SET` in the `EXEC` reply (`0..n`: the
    /// SETs are queued before every `ZADD`).
    sets: Vec<usize>,
    /// Commands between `MULTI` and `EXEC`.
    queued: usize,
    /// Position of `guard.lua`'s reply, when the batch has guarded stores.
    guard: Option<usize>,
    /// Per index a known lost tag was removed from: the positions of its
    /// `ZREM` and `EXISTS` replies, its bucket and tag. An index this
    /// batch emptied (`ZREM` removed a member, `EXISTS` says 0) is
    /// unfiled by the second step, which checks again.
    emptied: Vec<(usize, usize, u16, Vec<u8>)>,
}

/// One index's new edges: its bucket, its tag, and (expiry, member) pairs.
type IndexEdges<'a> = (u16, &'a [u8], Vec<(u64, &'a [u8])>);
/// An index (bucket, tag) and the members that lost its tag.
type LostEdges<'a> = ((u16, &'a [u8]), Vec<&'a [u8]>);
/// A script call's KEYS and ARGV.
type KeysAndArgs = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// Builds the transaction for `ops` (of one hash slot on a cluster), with
/// expiries counted from `now_ms` (Redis' clock), removing each entry from
/// the indexes of the tags `known` says it carried and no longer does.
/// The one place the transaction's commands are chosen: another command
/// that must be atomic with the write (an announcement, say) goes here.
pub(crate) fn build(
    space: &KeySpace,
    ops: &[&WriteOp],
    known: &[Option<Tags>],
    now_ms: u64,
) -> Transaction {
    let mut pipe = redis::Pipeline::with_capacity(2 * ops.len() + 8);
    pipe.cmd("MULTI");
    let mut sets = Vec::with_capacity(ops.len());
    // Edges grouped per index, in first-use order: (bucket, tag) -> members.
    let mut slots: HashMap<(u16, &[u8]), usize> = HashMap::new();
    let mut edges: Vec<IndexEdges<'_>> = Vec::new();
    let mut queued = 0;
    let mut expiries = Vec::with_capacity(ops.len());
    for op in ops {
        let fresh = now_ms.saturating_add(op.ttl_ms);
        let expiry = fresh.saturating_add(op.grace_ms);
        expiries.push(expiry);
        let entry = space.entry_name(op.bucket, &op.key);
        // Sized once: the value is most of the command.
        let mut cmd = redis::Cmd::with_capacity(6, entry.len() + op.value.len() + 40);
        cmd.arg("SET").arg(entry);
        if op.grace_ms > 0 {
            cmd.arg(with_fresh_until(&op.value, fresh));
        } else {
            cmd.arg(op.value.as_slice());
        }
        cmd.arg("PXAT").arg(expiry).arg("GET");
        pipe.add_command(cmd);
        sets.push(queued);
        queued += 1;
    }
    // Known lost edges go before every ZADD: when a batch writes one key
    // twice, the later write's edges must be the ones left.
    let mut lost: HashMap<(u16, &[u8]), Vec<&[u8]>> = HashMap::new();
    for (op, old) in ops.iter().zip(known) {
        let Some(old) = old else { continue };
        let new: HashSet<&[u8]> = op.tags.iter().map(Vec::as_slice).collect();
        for tag in old.iter().filter(|t| !new.contains(t.as_slice())) {
            lost.entry((op.bucket, tag.as_slice()))
                .or_default()
                .push(&op.key);
        }
    }
    let mut lost: Vec<LostEdges<'_>> = lost.into_iter().collect();
    lost.sort_unstable();
    let mut removals = Vec::with_capacity(lost.len());
    for ((bucket, tag), members) in &lost {
        pipe.cmd("ZREM")
            .arg(space.tag_name(*bucket, tag))
            .arg(members);
        removals.push(queued);
        queued += 1;
    }
    for (op, &expiry) in ops.iter().zip(&expiries) {
        for tag in op.tags.iter() {
            let at = *slots.entry((op.bucket, tag.as_slice())).or_insert_with(|| {
                edges.push((op.bucket, tag.as_slice(), Vec::new()));
                edges.len() - 1
            });
            edges[at].2.push((expiry, op.key.as_slice()));
        }
    }
    // Per bucket, each index's lowest new expiry: ZADD LT keeps the
    // registry score a lower bound of the index's next expiry, and files
    // an index that was not filed.
    let mut filings: BTreeMap<u16, Vec<(u64, &[u8])>> = BTreeMap::new();
    for (bucket, tag, members) in &edges {
        let index = space.tag_name(*bucket, tag);
        let bytes: usize = members.iter().map(|(_, m)| m.len() + 20).sum();
        let mut cmd = redis::Cmd::with_capacity(2 + 2 * members.len(), index.len() + bytes + 8);
        cmd.arg("ZADD").arg(index);
        let mut lowest = u64::MAX;
        for (expiry, member) in members {
            cmd.arg(*expiry).arg(*member);
            lowest = lowest.min(*expiry);
        }
        pipe.add_command(cmd);
        queued += 1;
        filings.entry(*bucket).or_default().push((lowest, tag));
    }
    for (bucket, tags) in filings {
        let cmd = pipe.cmd("ZADD").arg(space.registry(bucket)).arg("LT");
        for (expiry, tag) in tags {
            cmd.arg(expiry).arg(tag);
        }
        queued += 1;
    }
    // Whether those indexes are empty now (after this batch's ZADDs).
    let mut emptied = Vec::with_capacity(lost.len());
    for (((bucket, tag), _), removal) in lost.iter().zip(removals) {
        pipe.cmd("EXISTS").arg(space.tag_name(*bucket, tag));
        emptied.push((removal, queued, *bucket, tag.to_vec()));
        queued += 1;
    }
    let guard = guard_call(space, ops).map(|(keys, args)| {
        pipe.cmd("EVALSHA")
            .arg(SCRIPTS.guard.script.get_hash())
            .arg(keys.len())
            .arg(keys)
            .arg(args);
        queued += 1;
        queued - 1
    });
    // The L1 tiers' announcement, inside the same transaction as the
    // change (as every script makes its own).
    let mut written: BTreeMap<u16, Vec<&[u8]>> = BTreeMap::new();
    for op in ops {
        written
            .entry(op.bucket)
            .or_default()
            .push(op.key.as_slice());
    }
    // (Stamped with this host's clock in µs: the estimate of Redis'
    // clock is in ms, too coarse for a delivery lag.)
    let sent_us = crate::l1::announce::wall_us();
    for (bucket, keys) in written {
        queued += crate::l1::announce::queue(
            &mut pipe,
            space,
            bucket,
            crate::l1::announce::Kind::Keys,
            &keys,
            sent_us,
        );
    }
    pipe.cmd("EXEC");
    pipe.ignore_errors();
    Transaction {
        pipe,
        sets,
        queued,
        guard,
        emptied,
    }
}

/// KEYS and ARGV of `guard.lua` for the guarded stores among `ops`
/// (`None` when there are none).
fn guard_call(space: &KeySpace, ops: &[&WriteOp]) -> Option<KeysAndArgs> {
    let guarded: Vec<&&WriteOp> = ops.iter().filter(|o| o.since > 0).collect();
    if guarded.is_empty() {
        return None;
    }
    let mut keys = Vec::new();
    let mut args = vec![guarded.len().to_string().into_bytes()];
    for op in guarded {
        keys.push(space.fence(op.bucket));
        keys.push(space.registry(op.bucket));
        keys.push(space.entry(op.bucket, &op.key));
        keys.extend(op.tags.iter().map(|t| space.tag(op.bucket, t)));
        args.push(op.since.to_string().into_bytes());
        args.push(op.key.clone());
        args.push(op.tags.len().to_string().into_bytes());
        args.extend(op.tags.iter().cloned());
    }
    Some((keys, args))
}

/// An entry's bytes with its fresh-until field (after the tag section)
/// set.
fn with_fresh_until(value: &[u8], fresh: u64) -> Vec<u8> {
    let mut out = value.to_vec();
    if out.len() >= 6 {
        let len = u32::from_be_bytes([out[2], out[3], out[4], out[5]]) as usize;
        if let Some(field) = out.get_mut(6 + len..14 + len) {
            field.copy_from_slice(&fresh.to_be_bytes());
        }
    }
    out
}

/// Tags an old entry carried that the new one lacks (empty for a new key,
/// a malformed old value — its tags cannot be read, as in `set.lua` — or
/// a rewrite keeping its tags), less those `known` had (the transaction
/// removed those edges already).
fn lost_tags(old: &[u8], new: &WriteOp, known: Option<&Tags>) -> Vec<Vec<u8>> {
    let Ok(decoded) = codec::decode_entry(old) else {
        return Vec::new();
    };
    let new_len = new
        .value
        .get(2..6)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
    if new.value.get(6..6 + new_len) == Some(decoded.tag_section) {
        return Vec::new();
    }
    let Ok(old_tags) = codec::parse_tags(decoded.tag_section) else {
        return Vec::new();
    };
    let mut kept: HashSet<&[u8]> = new.tags.iter().map(Vec::as_slice).collect();
    kept.extend(known.iter().flat_map(|k| k.iter()).map(Vec::as_slice));
    old_tags
        .into_iter()
        .filter(|t| !kept.contains(t.as_slice()))
        .collect()
}

impl Core {
    /// Whether `op` may take the transaction path: that path is chosen,
    /// no trim is asked, and the value is small.
    pub(crate) fn fits_transaction(&self, op: &WriteOp) -> bool {
        self.limits.write_path == WritePath::Transaction
            && self.limits.trim_limit == 0
            && op.value.len() <= MAX_TRANSACTION_VALUE
    }

    /// Writes `ops` (of one hash slot on a cluster; batch-bounded by the
    /// caller) in one transaction, then unlinks lost tags; entries the
    /// transaction could not write go through `set.lua`, in order.
    pub(crate) async fn write_transaction(&self, ops: &[&WriteOp]) -> Result<Vec<bool>> {
        let now = self.clock.now_ms(&self.conn).await?;
        let known: Vec<Option<Tags>> = ops.iter().map(|o| self.recent.get(&o.key)).collect();
        let tx = build(&self.space, ops, &known, now);
        let replies: Value = self.conn.pipe(&tx.pipe).await?;
        let exec = match replies {
            Value::Array(mut all) if all.len() == tx.queued + 2 => all.pop(),
            other => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("a write transaction answered {other:?}"),
                ))
            }
        };
        let results = match exec {
            Some(Value::Array(r)) if r.len() == tx.queued => r,
            // Refused before running (EXECABORT: a command was refused
            // when queued, e.g. OOM at maxmemory; nothing ran): the script
            // writes the batch and reports the reason.
            _ => {
                self.count_fallbacks("refused", 1);
                return self.write_scripted(ops).await;
            }
        };
        // The SETs come first (see `build`), the index and registry ZADDs
        // after them.
        let edges_failed = results
            .iter()
            .enumerate()
            .skip(tx.sets.len())
            .any(|(i, r)| Some(i) != tx.guard && matches!(r, Value::ServerError(_)));
        if edges_failed {
            // An index or registry key of another type (a foreign writer):
            // the script reports it as it always did.
            self.count_fallbacks("index", 1);
            return self.write_scripted(ops).await;
        }
        let mut stored = vec![true; ops.len()];
        if let Some(at) = tx.guard {
            for undone in self.guard_outcome(ops, &results[at]).await? {
                stored[undone] = false;
            }
        }
        let emptied: HashSet<(u16, &[u8])> = tx
            .emptied
            .iter()
            .filter(|(zrem, exists, _, _)| {
                !matches!(results[*zrem], Value::Int(0)) && results[*exists] == Value::Int(0)
            })
            .map(|(_, _, b, t)| (*b, t.as_slice()))
            .collect();
        // Entries the transaction could not write, by their place in `ops`.
        let mut again: Vec<usize> = Vec::new();
        let mut unlinks: Vec<(&WriteOp, Vec<Vec<u8>>)> = Vec::new();
        // A key written again in this batch: its earlier write's ZADDs ran
        // after the known removals, so they prove nothing for the later
        // writes, whose lost tags are all checked by the second step.
        let mut seen: HashSet<&[u8]> = HashSet::with_capacity(ops.len());
        for (i, ((op, &at), old_known)) in ops.iter().zip(&tx.sets).zip(&known).enumerate() {
            let removed = if seen.insert(op.key.as_slice()) {
                old_known.as_ref()
            } else {
                None
            };
            // Known lost tags whose index this batch emptied: unfiled by
            // the second step, as set.lua would have.
            let mut unfile: Vec<Vec<u8>> = match old_known {
                Some(k) if !emptied.is_empty() => k
                    .iter()
                    .filter(|t| {
                        emptied.contains(&(op.bucket, t.as_slice())) && !op.tags.contains(t)
                    })
                    .cloned()
                    .collect(),
                _ => Vec::new(),
            };
            match &results[at] {
                Value::Nil => {}
                Value::BulkString(old) => {
                    unfile.extend(lost_tags(old, op, removed));
                }
                // WRONGTYPE (another type at the entry key): the SET did
                // not run; the script overwrites it.
                _ => again.push(i),
            }
            if !unfile.is_empty() {
                unlinks.push((op, unfile));
            }
        }
        if !unlinks.is_empty() {
            metrics::counter!(names::WRITE_UNLINKS_TOTAL, "namespace" => self.space.namespace().to_owned())
                .increment(unlinks.len() as u64);
            self.unlink(&unlinks).await?;
        }
        if !again.is_empty() {
            self.count_fallbacks("entry", again.len() as u64);
            let rewrite: Vec<&WriteOp> = again.iter().map(|&i| ops[i]).collect();
            for (&i, ok) in again.iter().zip(self.write_scripted(&rewrite).await?) {
                stored[i] = ok;
            }
        }
        // What each key carries now: its new tags when stored (by the
        // transaction or set.lua), nothing known when refused.
        self.recent
            .record(ops.iter().zip(&stored).map(|(op, &kept)| {
                let tags = kept.then(|| op.tags.clone());
                (op.key.as_slice(), tags)
            }));
        Ok(stored)
    }

    /// The guarded stores `guard.lua` undid (indexes into `ops`). When the
    /// call failed inside the transaction (`NOSCRIPT`: Redis lost its
    /// scripts), the same check runs now, as its own call: later than the
    /// write by one round trip, and refusing on every fence up to now.
    async fn guard_outcome(&self, ops: &[&WriteOp], reply: &Value) -> Result<Vec<usize>> {
        let reply = match reply {
            Value::ServerError(e) => {
                tracing::warn!(error = ?e.code(), "guard.lua failed inside a write transaction; checking the fences again");
                let Some((keys, args)) = guard_call(&self.space, ops) else {
                    return Ok(Vec::new());
                };
                let mut call = ScriptCall::new(&SCRIPTS.guard, &keys);
                for a in args {
                    call.arg(a);
                }
                self.conn.run::<Value>(&call).await?
            }
            other => other.clone(),
        };
        let numbers: Vec<usize> = redis::from_redis_value(reply)
            .map_err(|e| Error::new(ErrorKind::Protocol, format!("guard.lua answered {e}")))?;
        let guarded: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].since > 0).collect();
        numbers
            .into_iter()
            .map(|n| {
                n.checked_sub(1)
                    .and_then(|i| guarded.get(i).copied())
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::Protocol,
                            "guard.lua answered a store it was not given",
                        )
                    })
            })
            .collect()
    }

    /// Counts entries sent through `set.lua` after the transaction.
    fn count_fallbacks(&self, reason: &'static str, n: u64) {
        metrics::counter!(names::WRITE_FALLBACKS_TOTAL, "namespace" => self.space.namespace().to_owned(), "reason" => reason)
            .increment(n);
    }

    /// Removes entries from the indexes of tags they lost, when they do not
    /// carry them now (`unlink.lua`, one call).
    async fn unlink(&self, lost: &[(&WriteOp, Vec<Vec<u8>>)]) -> Result<()> {
        let mut table = KeyTable::new(&self.space);
        let mut shapes = Vec::with_capacity(lost.len());
        for (op, tags) in lost {
            table.entry(op.bucket, &op.key);
            let nums: Vec<usize> = tags.iter().map(|t| table.tag(op.bucket, t)).collect();
            shapes.push(nums);
        }
        let mut call = table.call(&SCRIPTS.unlink, [b"", b""], &[]);
        for ((op, _), nums) in lost.iter().zip(&shapes) {
            call.arg(op.key.as_slice()).arg(nums.len());
            for j in nums {
                call.arg(*j);
            }
        }
        let _removed: i64 = self.conn.run(&call).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(key: &str, tags: &[&str], grace_ms: u64) -> WriteOp {
        let tags: Vec<Vec<u8>> = tags.iter().map(|t| t.as_bytes().to_vec()).collect();
        WriteOp {
            key: key.as_bytes().to_vec(),
            bucket: 0,
            value: codec::encode_entry(
                &tags,
                b"v",
                codec::Codec::Raw,
                codec::Compression::default(),
                grace_ms > 0,
                None,
            ),
            ttl_ms: 1000,
            grace_ms,
            tags: tags.into(),
            since: 0,
        }
    }

    fn words(pipe: &redis::Pipeline) -> Vec<String> {
        let text = String::from_utf8_lossy(&pipe.get_packed_pipeline()).into_owned();
        text.split("\r\n")
            .filter(|l| !l.is_empty() && !l.starts_with('*') && !l.starts_with('$'))
            .map(str::to_owned)
            .collect()
    }

    /// Pins the commands of a two-entry transaction: one ZADD per index
    /// with every member, one registry ZADD LT with each index's lowest
    /// expiry.
    #[test]
    fn one_zadd_per_index_and_one_registry_filing() {
        let space = KeySpace::new("ns", 1).unwrap();
        let (a, b) = (op("a", &["x", "y"], 0), op("b", &["x"], 0));
        let tx = build(&space, &[&a, &b], &[None, None], 5000);
        let w = words(&tx.pipe);
        assert_eq!(w[0], "MULTI");
        assert_eq!(&w[1..3], ["SET", "{ns.0}:e:a"]);
        assert_eq!(&w[4..7], ["PXAT", "6000", "GET"]);
        assert_eq!(&w[7..9], ["SET", "{ns.0}:e:b"]);
        let mut rest: Vec<&str> = w[13..].iter().map(String::as_str).collect();
        // The announcement: kind, number 0 (a MULTI cannot know it), the
        // sender's clock in µs, then the keys.
        let msg = rest[rest.len() - 2];
        assert!(
            msg.starts_with("k0 ") && msg.ends_with("\n\u{0}\u{1}a\u{0}\u{1}b"),
            "{msg:?}"
        );
        let at = rest.len() - 2;
        rest[at] = "<announcement>";
        assert_eq!(
            rest,
            [
                "ZADD",
                "{ns.0}:t:x",
                "6000",
                "a",
                "6000",
                "b",
                "ZADD",
                "{ns.0}:t:y",
                "6000",
                "a",
                "ZADD",
                "{ns.0}:reg",
                "LT",
                "6000",
                "x",
                "6000",
                "y",
                "INCR",
                "{ns.0}:l1",
                "SPUBLISH",
                "{ns.0}:l1",
                "<announcement>",
                "EXEC"
            ]
        );
        assert_eq!(tx.sets, vec![0, 1]);
        assert_eq!(tx.queued, 7);
    }

    #[test]
    fn grace_sets_fresh_until_and_expiry_includes_it() {
        let space = KeySpace::new("ns", 1).unwrap();
        let g = op("g", &["x"], 500);
        let tx = build(&space, &[&g], &[None], 5000);
        let packed = tx.pipe.get_packed_pipeline();
        let fresh = 6000u64.to_be_bytes();
        assert!(packed.windows(8).any(|w| w == fresh));
        assert!(words(&tx.pipe).iter().any(|w| w == "6500"));
    }

    #[test]
    fn lost_tags_are_the_old_ones_the_new_value_lacks() {
        let old = op("k", &["x", "y", "z"], 0);
        let new = op("k", &["y", "w"], 0);
        assert_eq!(
            lost_tags(&old.value, &new, None),
            vec![b"x".to_vec(), b"z".to_vec()]
        );
        let known: Tags = Tags::from(vec![b"x".to_vec()]);
        assert_eq!(
            lost_tags(&old.value, &new, Some(&known)),
            vec![b"z".to_vec()]
        );
        assert!(lost_tags(&new.value, &new, None).is_empty());
        assert!(lost_tags(b"\x07garbage", &new, None).is_empty());
    }

    /// A rewrite dropping a tag this process wrote removes the edge in the
    /// transaction, before every ZADD; guarded stores get one guard.lua
    /// call after the edges.
    #[test]
    fn known_lost_tags_and_guarded_stores_go_inside_the_transaction() {
        let space = KeySpace::new("ns", 1).unwrap();
        let mut k = op("k", &["y"], 0);
        k.since = 77;
        let known = Some(Tags::from(vec![b"x".to_vec(), b"y".to_vec()]));
        let tx = build(&space, &[&k], &[known], 5000);
        let w = words(&tx.pipe);
        let at = |word: &str| w.iter().position(|x| x == word).unwrap();
        assert_eq!(&w[at("ZREM")..at("ZREM") + 3], ["ZREM", "{ns.0}:t:x", "k"]);
        assert!(at("ZREM") < at("ZADD"));
        let eval = at("EVALSHA");
        assert_eq!(
            &w[eval + 2..eval + 12],
            [
                "4",
                "{ns.0}:fence",
                "{ns.0}:reg",
                "{ns.0}:e:k",
                "{ns.0}:t:y",
                "1",
                "77",
                "k",
                "1",
                "y"
            ]
        );
        assert_eq!(tx.guard, Some(5));
        assert_eq!(tx.emptied, vec![(1, 4, 0, b"x".to_vec())]);
    }
}
