//! Random operation sequences against a model: after every step, what every
//! API answers and what Redis holds (read raw, in one atomic snapshot) must
//! equal the model exactly.
//!
//! The operations mix every API that writes, reads, lists or clears, on one
//! key universe where plain keys, paths and scopes name the same entries
//! (`o:1:a` is `set("o:1:a")`, `set_path(["o","1","a"])` and
//! `scope(["o","1"]).set("a")`), plus a hash group and legacy keys that
//! scoped reads, listings, deletes and clears migrate or remove; cases run
//! with 1 and 16 buckets, and (without the raw checks and legacy keys, which
//! need `SCAN`) on a 3-master cluster; each case writes through one of
//! the two write paths (`WritePath::Transaction`, whose overwrites that
//! drop tags take a second step, and `WritePath::Script`). The small key
//! universe makes most writes overwrites, many of them changing the tags.
//!
//! Expiry is modelled exactly rather than with margins: after each write
//! the test reads the entry's absolute expiry (`PEXPIRETIME`, the server's
//! own clock), and every check is bracketed by two `TIME` reads. An entry
//! whose expiry falls inside that bracket may be seen either way; every
//! other entry must be seen exactly as the model says. No assertion depends
//! on how fast the machine runs.
//!
//! `PROPTEST_CASES` overrides the default of 24 cases (6 on the cluster).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use redis::aio::MultiplexedConnection;
use tagcache::{Cache, KeyPath, SetOptions, WritePath};

use crate::raw::{self, RawState};
use tagcache_testkit::RedisCluster;
use tagcache_testkit::RedisServer;

/// The key universe: flat keys and paths of 3 and 4 parts.
const KEYS: [&str; 6] = ["k0", "k1", "o:1:a", "o:1:b", "o:10:a", "o:1:x:y"];
/// Includes separators and braces: they must stay inside their segment.
const TAGS: [&str; 4] = ["a", "b", "c:{x}", "d:e:k0"];
/// Prefixes listed and invalidated; the last three are also scope owners.
const PREFIXES: [&[&str]; 4] = [&["o"], &["o", "1"], &["o", "10"], &["o", "1", "x"]];
/// The hash group's tag (index into TAGS).
const GROUP_TAG: usize = 1;

fn path_of(key: usize) -> Option<KeyPath> {
    let parts: Vec<&str> = KEYS[key].split(':').collect();
    (parts.len() > 1).then(|| KeyPath::from_parts(parts))
}

fn prefix(p: usize) -> KeyPath {
    KeyPath::from_parts(PREFIXES[p].iter().copied())
}

/// Whether `key` is at (`or_at`) or strictly under prefix `p`.
fn under(key: usize, p: usize, or_at: bool) -> bool {
    let Some(path) = path_of(key) else {
        return false;
    };
    let pre = prefix(p);
    path.starts_with(&pre) && (or_at || path.len() > pre.len())
}

/// The reserved tags an entry of `key` carries (prefix indexes), as
/// `Cache::tags` lists them after the caller's.
fn implied(key: usize) -> Vec<Vec<u8>> {
    let Some(path) = path_of(key) else {
        return Vec::new();
    };
    (1..path.len())
        .map(|n| {
            let mut t = b"\0p".to_vec();
            t.extend(
                path.parts()[..n]
                    .iter()
                    .map(|p| p.as_bytes())
                    .collect::<Vec<_>>()
                    .join(&b':'),
            );
            t
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Ttl {
    /// The cache's default (600 s): outlives the case.
    Default,
    /// Expires during the case (the `Wait` op sleeps well past it).
    Short(u64),
}

/// Which API writes, deletes or reads a key.
#[derive(Debug, Clone, Copy)]
enum Via {
    Plain,
    Path,
    Scope,
}

#[derive(Debug, Clone)]
struct Write {
    key: usize,
    /// May repeat a tag: the cache keeps the first occurrence.
    tags: Vec<usize>,
    ttl: Ttl,
    via: Via,
}

#[derive(Debug, Clone)]
enum Op {
    Set(Write),
    /// One `set_many` call (a key given twice keeps its last value).
    SetMany(Vec<Write>),
    /// Single sets issued together (one task, joined): the write queue
    /// coalesces them into one batch, a key given twice written twice, in
    /// order.
    SetJoined(Vec<Write>),
    Delete(usize, Via),
    DeleteMany(Vec<usize>),
    Invalidate(Vec<usize>),
    InvalidatePrefix(usize),
    /// `scope(PREFIXES[p]).clear()` (p >= 1).
    ScopeClear(usize),
    /// `Cache::clear`: the whole namespace.
    Clear,
    GroupSet,
    GroupRefresh,
    /// `get_or_compute` of a plain key: a hit, or a load stored with the
    /// write's tags (the guarded store).
    Compute(Write),
    /// `get_or_compute` whose loader invalidates tag `.1` before it
    /// returns: a load carrying that tag must not be stored.
    ComputeRaced(Write, usize),
    /// Writes the legacy key of a scoped key (raw `SET`, 600 s TTL).
    LegacyPut(usize),
    /// `scope(PREFIXES[p]).keys()`, which moves the owner's legacy keys.
    ScopeKeys(usize),
    /// Sleeps past every short TTL.
    Wait,
    Prune,
}

fn write(short: bool) -> impl Strategy<Value = Write> {
    let ttl = if short {
        prop_oneof![3 => Just(Ttl::Default), 1 => (30u64..80).prop_map(Ttl::Short)].boxed()
    } else {
        Just(Ttl::Default).boxed()
    };
    let via = prop_oneof![Just(Via::Plain), Just(Via::Path), Just(Via::Scope)];
    (0..KEYS.len(), vec(0..TAGS.len(), 0..=3), ttl, via).prop_map(|(key, tags, ttl, via)| Write {
        key,
        tags,
        ttl,
        via,
    })
}

/// Keys with a legacy twin: the rule maps `old-<id>-<attr>` to the scope
/// `["o", id]`, part `attr`.
const LEGACY: [usize; 3] = [2, 3, 4];

fn legacy_name(key: usize) -> String {
    let parts: Vec<&str> = KEYS[key].split(':').collect();
    format!("old-{}-{}", parts[1], parts[2])
}

fn legacy_rules() -> tagcache::legacy::LegacyRules {
    tagcache::legacy::LegacyRules::new([tagcache::legacy::LegacyRule::new(
        "old-{id:[^-]}-{attr:[^-]}",
    )
    .scope(["o", "{id}"])
    .part("{attr}")])
    .unwrap()
}

/// The owner index (into PREFIXES) of a legacy key's scope.
fn legacy_owner(key: usize) -> usize {
    if KEYS[key].starts_with("o:10:") {
        2
    } else {
        1
    }
}

/// MessagePack of a small unsigned integer: what a typed write stores and
/// what the legacy writer stores, so bytes compare equal.
fn msgpack(v: u64) -> Vec<u8> {
    match v {
        0..=127 => vec![v as u8],
        128..=255 => vec![0xcc, v as u8],
        _ => {
            let mut b = vec![0xcd];
            b.extend((v as u16).to_be_bytes());
            b
        }
    }
}

fn legacy_op(legacy: bool) -> BoxedStrategy<Op> {
    if legacy {
        prop_oneof![
            3 => (0..LEGACY.len()).prop_map(|i| Op::LegacyPut(LEGACY[i])),
            1 => (1..3usize).prop_map(Op::ScopeKeys),
        ]
        .boxed()
    } else {
        Just(Op::Prune).boxed()
    }
}

fn op(short: bool) -> impl Strategy<Value = Op> {
    op_with(short, false)
}

fn op_with(short: bool, legacy: bool) -> impl Strategy<Value = Op> {
    let via = prop_oneof![Just(Via::Plain), Just(Via::Path), Just(Via::Scope)];
    let timed = if short {
        prop_oneof![1 => Just(Op::Wait), 1 => Just(Op::Prune)].boxed()
    } else {
        Just(Op::Prune).boxed()
    };
    prop_oneof![
        8 => write(short).prop_map(Op::Set),
        2 => vec(write(short), 1..=4).prop_map(Op::SetMany),
        2 => (vec(write(short), 3..=4), 0..KEYS.len()).prop_map(|(mut ws, key)| {
            // Mostly one key: its writes after the first share a batch.
            for w in ws.iter_mut().skip(1) {
                w.key = key;
            }
            Op::SetJoined(ws)
        }),
        2 => (0..KEYS.len(), via).prop_map(|(k, v)| Op::Delete(k, v)),
        1 => vec(0..KEYS.len(), 1..=3).prop_map(Op::DeleteMany),
        3 => vec(0..TAGS.len(), 1..=2).prop_map(Op::Invalidate),
        2 => (0..PREFIXES.len()).prop_map(Op::InvalidatePrefix),
        2 => (1..PREFIXES.len()).prop_map(Op::ScopeClear),
        1 => Just(Op::Clear),
        1 => Just(Op::GroupSet),
        1 => Just(Op::GroupRefresh),
        2 => write(short).prop_map(Op::Compute),
        2 => (write(short), 0..TAGS.len()).prop_map(|(w, t)| Op::ComputeRaced(w, t)),
        2 => timed,
        3 => legacy_op(legacy),
    ]
}

#[derive(Debug, Clone)]
struct Entry {
    tags: Vec<usize>,
    value: u64,
    /// Moved from a legacy key: raw bytes (typed reads are a codec error).
    raw: bool,
    /// Absolute expiry in server ms, as Redis recorded it.
    expire_at: i64,
}

/// Whether an entry is live during a window `[t0, t1]` of server ms.
/// Redis keeps a key up to and including its expiry millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Live,
    Dead,
    Either,
}

#[derive(Debug, Default)]
struct Model {
    entries: BTreeMap<usize, Entry>,
    next_value: u64,
    /// The hash group holds a field.
    group: bool,
    /// Legacy keys present: key -> value.
    legacy: BTreeMap<usize, u64>,
}

impl Model {
    /// The legacy keys present under owner `p` (an index into PREFIXES).
    fn legacy_of(&self, p: usize) -> Vec<usize> {
        self.legacy
            .keys()
            .copied()
            .filter(|k| legacy_owner(*k) == p)
            .collect()
    }

    fn seen(&self, key: usize, t0: u64, t1: u64) -> Seen {
        match self.entries.get(&key) {
            None => Seen::Dead,
            Some(e) if e.expire_at >= t1 as i64 => Seen::Live,
            Some(e) if e.expire_at < t0 as i64 => Seen::Dead,
            Some(_) => Seen::Either,
        }
    }

    fn has(&self, key: usize, tag: usize) -> bool {
        self.entries
            .get(&key)
            .is_some_and(|e| e.tags.contains(&tag))
    }

    /// Bounds of how many of `keys` were live during `[t0, t1]`.
    fn count(&self, keys: impl Iterator<Item = usize>, t0: u64, t1: u64) -> (u64, u64) {
        let (mut lo, mut hi) = (0, 0);
        for k in keys {
            match self.seen(k, t0, t1) {
                Seen::Live => (lo, hi) = (lo + 1, hi + 1),
                Seen::Either => hi += 1,
                Seen::Dead => {}
            }
        }
        (lo, hi)
    }
}

fn dedup(tags: &[usize]) -> Vec<usize> {
    let mut out = Vec::new();
    for t in tags {
        if !out.contains(t) {
            out.push(*t);
        }
    }
    out
}

fn options(w: &Write) -> SetOptions {
    let o = SetOptions::new().tags(w.tags.iter().map(|t| TAGS[*t]));
    match w.ttl {
        Ttl::Default => o,
        Ttl::Short(ms) => o.ttl(Duration::from_millis(ms)),
    }
}

/// The scope owning `key` and the part: its path minus the last part.
fn scope_of(cache: &Cache, key: usize) -> Option<(tagcache::Scope, String)> {
    let path = path_of(key)?;
    let parts = path.parts();
    let owner = KeyPath::from_parts(parts[..parts.len() - 1].iter().cloned());
    let part = String::from_utf8(parts[parts.len() - 1].as_bytes().to_vec()).ok()?;
    Some((cache.scope(owner).ok()?, part))
}

async fn delete_via(cache: &Cache, key: usize, via: Via) -> tagcache::Result<bool> {
    match (via, path_of(key)) {
        (Via::Path, Some(path)) => cache.delete_path(&path).await,
        (Via::Scope, Some(_)) => {
            let (scope, part) = scope_of(cache, key).unwrap();
            scope.delete(part).await
        }
        _ => cache.delete(KEYS[key]).await,
    }
}

fn all_key_names() -> Vec<Vec<u8>> {
    KEYS.iter().map(|k| k.as_bytes().to_vec()).collect()
}

/// User tags, the all-entries tag and every prefix index.
fn all_tag_names() -> Vec<Vec<u8>> {
    let mut t: Vec<Vec<u8>> = TAGS.iter().map(|t| t.as_bytes().to_vec()).collect();
    t.push(b"\0a".to_vec());
    for p in PREFIXES {
        let mut x = b"\0p".to_vec();
        x.extend(p.join(":").into_bytes());
        t.push(x);
    }
    t
}

fn fail(step: usize, op: &Op, what: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(format!("after step {step} ({op:?}): {what}"))
}

/// One observation, judged once the check's time window is known.
#[derive(Debug)]
enum Obs {
    /// `key` was (`present`) or was not seen; it should be when `expect`
    /// and the model has it live.
    Seen {
        key: usize,
        expect: bool,
        present: bool,
        what: String,
    },
    /// A count of live keys among `keys`, plus `extra` (groups).
    Count {
        keys: Vec<usize>,
        got: u64,
        extra: u64,
        what: String,
    },
}

struct Case<'a> {
    cache: Cache,
    /// Legacy rules are configured (Migrate mode).
    with_legacy: bool,
    obs: Vec<Obs>,
    /// A connection to the single server (raw checks); `None` on the cluster.
    con: Option<MultiplexedConnection>,
    ns: String,
    buckets: u16,
    model: Model,
    step: usize,
    op: &'a Op,
}

type Check = Result<(), TestCaseError>;

impl Case<'_> {
    fn fail(&self, what: impl std::fmt::Display) -> TestCaseError {
        fail(self.step, self.op, what)
    }

    fn legacy(&self) -> bool {
        self.with_legacy
    }

    /// Server ms; on the cluster (default TTLs only) a constant is enough.
    async fn now(&mut self) -> u64 {
        match self.con.as_mut() {
            Some(con) => raw::server_ms(con).await,
            None => 0,
        }
    }

    fn group(&self) -> tagcache::Group {
        self.cache.group("g", 1).unwrap().tag(TAGS[GROUP_TAG])
    }

    /// Records what Redis made of the writes: their exact expiry.
    async fn record(&mut self, writes: &[Write]) {
        for w in writes {
            let value = self.model.next_value;
            self.model.next_value += 1;
            self.model.entries.insert(
                w.key,
                Entry {
                    tags: dedup(&w.tags),
                    value,
                    raw: false,
                    expire_at: i64::MAX,
                },
            );
        }
        for w in writes {
            self.record_expiry(w.key).await;
        }
    }

    /// Reads the entry's exact expiry into the model (single server).
    async fn record_expiry(&mut self, key: usize) {
        let Some(con) = self.con.as_mut() else {
            return;
        };
        let name = format!(
            "{{{}.{}}}:e:{}",
            self.ns,
            raw::bucket_of(KEYS[key].as_bytes(), self.buckets),
            KEYS[key]
        );
        let at: i64 = redis::cmd("PEXPIRETIME")
            .arg(name)
            .query_async(con)
            .await
            .unwrap();
        // -2: a short TTL already ran out; the entry is simply dead.
        if let Some(e) = self.model.entries.get_mut(&key) {
            e.expire_at = at.max(0);
        }
    }

    /// A legacy key read or listed in `Migrate` mode: with no entry it
    /// becomes one (raw, the legacy key's TTL); beside an entry it was a
    /// stale twin. Either way it is gone.
    async fn migrate(&mut self, key: usize) {
        let Some(value) = self.model.legacy.remove(&key) else {
            return;
        };
        if let std::collections::btree_map::Entry::Vacant(slot) = self.model.entries.entry(key) {
            slot.insert(Entry {
                tags: Vec::new(),
                value,
                raw: true,
                expire_at: i64::MAX,
            });
            self.record_expiry(key).await;
        }
    }

    /// A scoped write in Migrate mode deletes the part's legacy twin.
    fn forget_twin(&mut self, w: &Write) {
        if matches!(w.via, Via::Scope) && path_of(w.key).is_some() && self.legacy() {
            self.model.legacy.remove(&w.key);
        }
    }

    async fn set(&self, w: &Write, value: u64) -> tagcache::Result<()> {
        let opts = options(w);
        match (w.via, path_of(w.key)) {
            (Via::Path, Some(path)) => self.cache.set_path(&path, &value, &opts).await,
            (Via::Scope, Some(_)) => {
                let (scope, part) = scope_of(&self.cache, w.key).unwrap();
                scope.set(part, &value, &opts).await
            }
            _ => self.cache.set(KEYS[w.key], &value, &opts).await,
        }
    }

    /// Runs a removal returning a count, checks it against the model's
    /// bounds for `hit`, and forgets those keys.
    async fn removal<F>(&mut self, hit: Vec<usize>, what: &str, run: F) -> Check
    where
        F: std::future::Future<Output = tagcache::Result<u64>>,
    {
        let t0 = self.now().await;
        let n = run.await.map_err(|e| self.fail(e))?;
        let t1 = self.now().await;
        let (lo, hi) = self.model.count(hit.iter().copied(), t0, t1);
        if !(lo..=hi).contains(&n) {
            return Err(self.fail(format!("{what} returned {n}, expected {lo}..={hi}")));
        }
        for k in hit {
            self.model.entries.remove(&k);
        }
        Ok(())
    }

    async fn apply(&mut self) -> Check {
        let c = self.cache.clone();
        match self.op.clone() {
            Op::Set(w) => {
                let value = self.model.next_value;
                self.set(&w, value).await.map_err(|e| self.fail(e))?;
                self.forget_twin(&w);
                self.record(std::slice::from_ref(&w)).await;
            }
            Op::SetMany(ws) => {
                let first = self.model.next_value;
                let items = ws
                    .iter()
                    .zip(first..)
                    .map(|(w, v)| (KEYS[w.key], v, options(w)));
                c.set_many(items).await.map_err(|e| self.fail(e))?;
                self.record(&ws).await;
            }
            Op::SetJoined(ws) => {
                let first = self.model.next_value;
                let calls = ws.iter().zip(first..).map(|(w, v)| self.set(w, v));
                for result in futures_util::future::join_all(calls).await {
                    result.map_err(|e| self.fail(e))?;
                }
                for w in &ws {
                    self.forget_twin(w);
                }
                self.record(&ws).await;
            }
            Op::Delete(key, via) => {
                let scoped = matches!(via, Via::Scope) && path_of(key).is_some();
                let twin = scoped && self.model.legacy.remove(&key).is_some();
                self.removal(vec![key], "delete", async {
                    // A scoped delete also deletes the legacy key; `true`
                    // if either existed.
                    let existed = delete_via(&c, key, via).await?;
                    Ok(u64::from(existed && !twin))
                })
                .await
                .or_else(|e| if twin { Ok(()) } else { Err(e) })?;
                self.model.entries.remove(&key);
            }
            Op::DeleteMany(keys) => {
                let distinct: Vec<usize> = keys
                    .iter()
                    .copied()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let run = c.delete_many(keys.iter().map(|k| KEYS[*k]));
                self.removal(distinct, "delete_many", run).await?;
            }
            Op::Invalidate(tags) => {
                let hit: Vec<usize> = (0..KEYS.len())
                    .filter(|k| tags.iter().any(|t| self.model.has(*k, *t)))
                    .collect();
                // A live group carrying the tag is dropped and counted too.
                let group = u64::from(tags.contains(&GROUP_TAG) && self.model.group);
                if tags.contains(&GROUP_TAG) {
                    self.model.group = false;
                }
                let run = c.invalidate_tags(tags.iter().map(|t| TAGS[*t]));
                self.removal(hit, "invalidate_tags", async {
                    Ok(run.await?.saturating_sub(group))
                })
                .await?;
            }
            Op::InvalidatePrefix(p) => {
                let hit: Vec<usize> = (0..KEYS.len()).filter(|k| under(*k, p, true)).collect();
                let pre = prefix(p);
                let run = c.invalidate_prefix(&pre);
                self.removal(hit, "invalidate_prefix", run).await?;
            }
            Op::ScopeClear(p) => {
                let hit: Vec<usize> = (0..KEYS.len()).filter(|k| under(*k, p, false)).collect();
                // The owner's legacy keys are deleted first, and counted.
                let twins: Vec<usize> = self.model.legacy_of(p);
                for k in &twins {
                    self.model.legacy.remove(k);
                }
                let twins = twins.len() as u64;
                let scope = c.scope(prefix(p)).map_err(|e| self.fail(e))?;
                self.removal(hit, "scope clear", async move {
                    Ok(scope.clear().await?.saturating_sub(twins))
                })
                .await?;
            }
            Op::Clear => {
                let hit: Vec<usize> = (0..KEYS.len()).collect();
                let group = u64::from(self.model.group);
                self.model.group = false;
                self.removal(hit, "clear", async {
                    Ok(c.clear().await?.saturating_sub(group))
                })
                .await?;
            }
            Op::GroupSet => {
                self.group()
                    .set("f", &true)
                    .await
                    .map_err(|e| self.fail(e))?;
                self.model.group = true;
            }
            Op::GroupRefresh => {
                self.group().clear().await.map_err(|e| self.fail(e))?;
                self.model.group = false;
            }
            Op::Compute(w) => self.compute(w, None).await?,
            Op::ComputeRaced(w, tag) => self.compute(w, Some(tag)).await?,
            Op::LegacyPut(key) => {
                let value = self.model.next_value;
                self.model.next_value += 1;
                let con = self.con.as_mut().unwrap();
                let _: () = redis::cmd("SET")
                    .arg(legacy_name(key))
                    .arg(msgpack(value))
                    .arg("PX")
                    .arg(600_000)
                    .query_async(con)
                    .await
                    .unwrap();
                self.model.legacy.insert(key, value);
            }
            Op::ScopeKeys(p) => {
                let scope = c.scope(prefix(p)).map_err(|e| self.fail(e))?;
                let keys = scope.keys().collect().await.map_err(|e| self.fail(e))?;
                let moved: Vec<usize> = self.model.legacy_of(p);
                for k in moved {
                    self.migrate(k).await;
                }
                let listed: Vec<Vec<u8>> =
                    keys.iter().map(|p| p.to_string().into_bytes()).collect();
                self.judge_list(
                    &listed,
                    |k| under(k, p, false),
                    &format!("scope({}).keys with legacy", prefix(p)),
                )?;
            }
            Op::Wait => tokio::time::sleep(Duration::from_millis(100)).await,
            Op::Prune => {
                let t0 = self.now().await;
                let report = c.prune().await.map_err(|e| self.fail(e))?;
                if !report.complete {
                    return Err(self.fail(format!("prune did not complete: {report:?}")));
                }
                if self.con.is_some() {
                    self.check_pruned(t0).await?;
                }
            }
        }
        Ok(())
    }

    /// `get_or_compute` of `w`'s key (plain API); with `race`, the loader
    /// invalidates that tag before it returns.
    async fn compute(&mut self, w: Write, race: Option<usize>) -> Check {
        use tagcache::Source;
        if self.model.entries.get(&w.key).is_some_and(|e| e.raw) {
            // A moved legacy value is raw bytes: a typed read fails.
            return Ok(());
        }
        let value = self.model.next_value;
        let c = self.cache.clone();
        let t0 = self.now().await;
        let got = c
            .get_or_compute(KEYS[w.key], &options(&w), || async {
                if let Some(t) = race {
                    c.invalidate_tag(TAGS[t]).await?;
                }
                Ok::<_, tagcache::Error>(value)
            })
            .await
            .map_err(|e| self.fail(e))?;
        let t1 = self.now().await;
        let seen = self.model.seen(w.key, t0, t1);
        let loaded = !matches!(got.source, Source::Hit | Source::Stale);
        match (seen, loaded) {
            (Seen::Live, true) | (Seen::Dead, false) => {
                return Err(self.fail(format!("{:?} while the model says {seen:?}", got.source)));
            }
            (_, false) => {
                let want = self.model.entries.get(&w.key).map(|e| e.value);
                if Some(got.value) != want {
                    return Err(self.fail(format!("hit {} expected {want:?}", got.value)));
                }
                return Ok(());
            }
            (_, true) => {}
        }
        if let Some(t) = race {
            // The loader's invalidation removed every entry with the tag.
            let hit: Vec<usize> = (0..KEYS.len()).filter(|k| self.model.has(*k, t)).collect();
            for k in hit {
                self.model.entries.remove(&k);
            }
            if self.model.group && t == GROUP_TAG {
                self.model.group = false;
            }
        }
        let refused = race.is_some_and(|t| w.tags.contains(&t));
        let want = if refused {
            Source::LoadedNotStored
        } else {
            Source::Loaded
        };
        if got.source != want || got.value != value {
            return Err(self.fail(format!(
                "{:?} {} expected {want:?} {value}",
                got.source, got.value
            )));
        }
        if refused {
            self.model.next_value += 1;
            self.model.entries.remove(&w.key);
        } else {
            // (Takes `value`, the next value, as the stored one.)
            self.record(std::slice::from_ref(&w)).await;
        }
        Ok(())
    }

    async fn check_pruned(&mut self, t0: u64) -> Check {
        let state = self.raw().await;
        for ((b, t), members) in &state.indexes {
            if let Some((k, s)) = members.iter().find(|(_, s)| *s < t0 as f64) {
                return Err(self.fail(format!(
                    "prune (from {t0}) left expired member {k:?} (score {s}) in index {t:?} of bucket {b}"
                )));
            }
        }
        for (b, reg) in &state.registry {
            if let Some((t, s)) = reg.iter().find(|(_, s)| *s < t0 as f64) {
                return Err(self.fail(format!(
                    "prune (from {t0}) left {t:?} due in the registry of bucket {b} (score {s})"
                )));
            }
            // Registry members go with their index.
            if let Some((t, s)) = reg
                .iter()
                .find(|(t, _)| !state.indexes.contains_key(&(*b, t.clone())))
            {
                return Err(self.fail(format!(
                    "after prune, the registry of bucket {b} files {t:?} (score {s}) which has no index"
                )));
            }
        }
        Ok(())
    }

    async fn raw(&mut self) -> RawState {
        let con = self.con.as_mut().unwrap();
        raw::snapshot(
            con,
            &self.ns,
            self.buckets,
            &all_key_names(),
            &all_tag_names(),
        )
        .await
    }

    /// Notes whether `key` was seen, to be judged against the model.
    fn saw(&mut self, key: usize, expect: bool, present: bool, what: String) {
        self.obs.push(Obs::Seen {
            key,
            expect,
            present,
            what,
        });
    }

    /// Judges every observation made during `[t0, t1]`.
    fn judge(&mut self, t0: u64, t1: u64) -> Check {
        for o in std::mem::take(&mut self.obs) {
            match o {
                Obs::Seen {
                    key,
                    expect,
                    present,
                    what,
                } => {
                    let seen = if expect {
                        self.model.seen(key, t0, t1)
                    } else {
                        Seen::Dead
                    };
                    let ok = match seen {
                        Seen::Live => present,
                        Seen::Dead => !present,
                        Seen::Either => true,
                    };
                    if !ok {
                        return Err(self.fail(format!(
                            "{what}: present={present}, model says {seen:?} during [{t0}, {t1}]"
                        )));
                    }
                }
                Obs::Count {
                    keys,
                    got,
                    extra,
                    what,
                } => {
                    let (lo, hi) = self.model.count(keys.into_iter(), t0, t1);
                    if !(lo + extra..=hi + extra).contains(&got) {
                        return Err(self.fail(format!(
                            "{what} = {got}, expected {}..={}",
                            lo + extra,
                            hi + extra
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Scoped reads of keys with a legacy twin, first: they migrate it
    /// (or delete it as a stale twin), so every later observation of the
    /// check sees the state after.
    async fn check_legacy_reads(&mut self) -> Check {
        let c = self.cache.clone();
        let twins: Vec<usize> = self.model.legacy.keys().copied().collect();
        for k in twins {
            let (scope, part) = scope_of(&c, k).unwrap();
            let got = scope
                .get_bytes(part.as_str())
                .await
                .map_err(|e| self.fail(e))?;
            let want = match self.model.entries.get(&k) {
                Some(e) => e.value,
                None => self.model.legacy[&k],
            };
            if got != Some(msgpack(want)) {
                return Err(self.fail(format!(
                    "scope get_bytes({}) with a legacy twin = {got:?}, model {want}",
                    KEYS[k]
                )));
            }
            self.migrate(k).await;
        }
        Ok(())
    }

    /// Every point read of every key, through every API that can name it.
    async fn check_reads(&mut self) -> Check {
        let c = self.cache.clone();
        for (k, key) in KEYS.iter().enumerate() {
            let want = self.model.entries.get(&k).map(|e| e.value);
            let raw = self.model.entries.get(&k).is_some_and(|e| e.raw);
            let typed = |r: tagcache::Result<Option<u64>>| -> Result<Option<u64>, String> {
                match r {
                    // A legacy value is raw bytes: typed reads say so.
                    Err(e) if raw && e.kind() == tagcache::ErrorKind::Codec => Ok(want),
                    Err(e) => Err(e.to_string()),
                    Ok(v) => Ok(v),
                }
            };
            let mut reads = vec![(
                "get",
                typed(c.get::<u64>(key).await).map_err(|e| self.fail(e))?,
            )];
            let bytes = c.get_bytes(key).await.map_err(|e| self.fail(e))?;
            if bytes.is_some() && bytes != want.map(msgpack) {
                return Err(self.fail(format!("get_bytes({key}) = {bytes:?}, model {want:?}")));
            }
            self.saw(k, true, bytes.is_some(), format!("get_bytes({key})"));
            if let Some(path) = path_of(k) {
                reads.push((
                    "get_path",
                    typed(c.get_path::<u64>(&path).await).map_err(|e| self.fail(e))?,
                ));
                let (scope, part) = scope_of(&c, k).unwrap();
                reads.push((
                    "scope get",
                    typed(scope.get::<u64>(part.as_str()).await).map_err(|e| self.fail(e))?,
                ));
                let has = scope
                    .contains(part.as_str())
                    .await
                    .map_err(|e| self.fail(e))?;
                self.saw(k, true, has, format!("scope contains {key}"));
            }
            for (api, got) in reads {
                if got.is_some() && got != want {
                    return Err(self.fail(format!("{api}({key}) = {got:?}, model {want:?}")));
                }
                self.saw(k, true, got.is_some(), format!("{api}({key})"));
            }
            let tags = c.tags(key).await.map_err(|e| self.fail(e))?;
            self.saw(k, true, tags.is_some(), format!("tags({key})"));
            if let (Some(got), Some(e)) = (tags, self.model.entries.get(&k)) {
                let mut want: Vec<Vec<u8>> = e
                    .tags
                    .iter()
                    .map(|t| TAGS[*t].as_bytes().to_vec())
                    .collect();
                want.extend(implied(k));
                if got != want {
                    return Err(self.fail(format!("tags({key}) = {got:?}, model {want:?}")));
                }
            }
        }
        let fields = self.group().len().await.map_err(|e| self.fail(e))?;
        if fields != u64::from(self.model.group) {
            return Err(self.fail(format!(
                "group holds {fields} fields, model {}",
                self.model.group
            )));
        }
        Ok(())
    }

    /// Compares a listing (which must not repeat) with the model's keys.
    fn judge_list(
        &mut self,
        listed: &[Vec<u8>],
        expect: impl Fn(usize) -> bool,
        what: &str,
    ) -> Check {
        let set: BTreeSet<&Vec<u8>> = listed.iter().collect();
        if set.len() != listed.len() {
            return Err(self.fail(format!("{what} repeats keys: {listed:?}")));
        }
        for l in listed {
            if !KEYS.iter().any(|k| k.as_bytes() == l.as_slice()) {
                return Err(self.fail(format!("{what} lists unknown key {l:?}")));
            }
        }
        for (k, key) in KEYS.iter().enumerate() {
            let present = set.contains(&key.as_bytes().to_vec());
            self.saw(k, expect(k), present, format!("{what} lists {key}"));
        }
        Ok(())
    }

    /// Every listing: tags, prefixes, scopes; every listed key reads back
    /// (checked by `check_reads` through the same model).
    async fn check_listings(&mut self) -> Check {
        let c = self.cache.clone();
        for (t, tag) in TAGS.iter().enumerate() {
            let listed = c
                .keys_with_tag(tag)
                .page_size(2)
                .collect()
                .await
                .map_err(|e| self.fail(e))?;
            let tagged: Vec<bool> = (0..KEYS.len()).map(|k| self.model.has(k, t)).collect();
            self.judge_list(&listed, |k| tagged[k], &format!("keys_with_tag({tag})"))?;
            let len = c.tag_len(tag).await.map_err(|e| self.fail(e))?;
            self.obs.push(Obs::Count {
                keys: (0..KEYS.len()).filter(|k| tagged[*k]).collect(),
                got: len,
                extra: u64::from(t == GROUP_TAG && self.model.group),
                what: format!("tag_len({tag})"),
            });
            for (k, key) in KEYS.iter().enumerate() {
                let has = c.has_tag(key, tag).await.map_err(|e| self.fail(e))?;
                self.saw(k, tagged[k], has, format!("has_tag({key}, {tag})"));
            }
        }
        for p in 0..PREFIXES.len() {
            let pre = prefix(p);
            let paths = c
                .paths_under(&pre)
                .collect()
                .await
                .map_err(|e| self.fail(e))?;
            let listed: Vec<Vec<u8>> = paths.iter().map(|p| p.to_string().into_bytes()).collect();
            self.judge_list(
                &listed,
                |k| under(k, p, true),
                &format!("paths_under({pre})"),
            )?;
            if p > 0 {
                let scope = c.scope(pre.clone()).map_err(|e| self.fail(e))?;
                let keys = scope.keys().collect().await.map_err(|e| self.fail(e))?;
                let listed: Vec<Vec<u8>> =
                    keys.iter().map(|p| p.to_string().into_bytes()).collect();
                self.judge_list(
                    &listed,
                    |k| under(k, p, false),
                    &format!("scope({pre}).keys"),
                )?;
            }
        }
        let pattern = tagcache::PathPattern::new().part("o").any().part("a");
        let raw_match = [2, 4]
            .iter()
            .any(|k| self.model.entries.get(k).is_some_and(|e| e.raw));
        let found: Vec<(KeyPath, u64)> = match c.query(&pattern).collect().await {
            Ok(found) => found,
            // A typed query over a raw (legacy) value says so.
            Err(e) if raw_match && e.kind() == tagcache::ErrorKind::Codec => return Ok(()),
            Err(e) => return Err(self.fail(e)),
        };
        let listed: Vec<Vec<u8>> = found
            .iter()
            .map(|(p, _)| p.to_string().into_bytes())
            .collect();
        self.judge_list(
            &listed,
            |k| ["o:1:a", "o:10:a"].contains(&KEYS[k]),
            "query(o:*:a)",
        )?;
        for (p, v) in &found {
            let k = KEYS.iter().position(|k| *k == p.to_string()).unwrap();
            if self.model.entries.get(&k).map(|e| e.value) != Some(*v) {
                return Err(self.fail(format!("query returned {p} = {v}, model disagrees")));
            }
        }
        Ok(())
    }

    async fn check_api(&mut self) -> Check {
        self.check_legacy_reads().await?;
        let t0 = self.now().await;
        self.check_reads().await?;
        self.check_listings().await?;
        let t1 = match self.con {
            Some(_) => self.now().await,
            None => u64::MAX - 1,
        };
        self.judge(t0, t1)
    }

    /// The raw layout: the invariants, and the entries equal the model.
    async fn check_raw(&mut self) -> Check {
        let state = self.raw().await;
        state.check_quiescent().map_err(|e| self.fail(e))?;
        let now = state.now_ms as i64;
        for (k, key) in KEYS.iter().enumerate() {
            let want = self.model.entries.get(&k);
            let want_tags = want.map(|e| {
                let mut t: Vec<Vec<u8>> = e
                    .tags
                    .iter()
                    .map(|t| TAGS[*t].as_bytes().to_vec())
                    .collect();
                t.extend(implied(k));
                if t.is_empty() {
                    // An entry with no other edge carries the all-entries tag.
                    t.push(b"\0a".to_vec());
                }
                t
            });
            match (state.entry(key.as_bytes()), want) {
                (None, None) => {}
                // Expired before the snapshot read it.
                (None, Some(e)) if e.expire_at < now => {}
                (Some(r), Some(e))
                    if r.expire_at == e.expire_at && Some(&r.tags) == want_tags.as_ref() => {}
                (r, e) => {
                    return Err(
                        self.fail(format!("raw entry {key} is {r:?}, model {e:?} (now {now})"))
                    )
                }
            }
        }
        // Other buckets hold no copy of any key: one key, one entry.
        let expected: usize = KEYS
            .iter()
            .filter(|k| state.entry(k.as_bytes()).is_some())
            .count();
        if state.entries.len() != expected {
            return Err(self.fail(format!(
                "entries in foreign buckets: {:?}",
                state.entries.keys().collect::<Vec<_>>()
            )));
        }
        Ok(())
    }
}

/// The model's time window is only exact on a single server: there,
/// `check_api` brackets with the server's clock.
async fn run_case(
    cache: Cache,
    con: Option<MultiplexedConnection>,
    ns: &str,
    buckets: u16,
    with_legacy: bool,
    ops: &[Op],
) -> Check {
    let idle = Op::Prune;
    let mut case = Case {
        cache,
        with_legacy,
        obs: Vec::new(),
        con,
        ns: ns.to_owned(),
        buckets,
        model: Model::default(),
        step: 0,
        op: &idle,
    };
    for (step, op) in ops.iter().enumerate() {
        case.step = step;
        case.op = op;
        case.apply().await?;
        case.check_api().await?;
        if case.con.is_some() {
            case.check_raw().await?;
        }
    }
    Ok(())
}

fn config(default_cases: u32) -> Config {
    let mut config = Config {
        // Timing-dependent cases do not always replay; the failure message
        // prints the minimal sequence instead.
        failure_persistence: None,
        max_shrink_time: 120_000,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs model cases with 1 and 16 buckets on one private server (emptied
/// before each case); `legacy`: with legacy rules and legacy operations.
fn run_on_a_server(mut server: RedisServer, legacy: bool, cases: u32) {
    let rt = runtime();
    if legacy {
        server.allow_scan();
    }
    let con = rt.block_on(raw::connect(&server));
    let scenario = (
        prop_oneof![Just(1u16), Just(16u16)],
        prop_oneof![Just(WritePath::Transaction), Just(WritePath::Script)],
        vec(op_with(!legacy, legacy), 1..=30),
    );
    let mut runner = TestRunner::new(config(cases));
    let result = runner.run(&scenario, |(buckets, path, ops)| {
        rt.block_on(async {
            let mut con = con.clone();
            let _: () = redis::cmd("FLUSHALL").query_async(&mut con).await.unwrap();
            let mut builder = crate::builder(&server).buckets(buckets).write_path(path);
            if legacy {
                builder = builder.legacy(legacy_rules(), tagcache::legacy::LegacyMode::Migrate);
            }
            let cache = builder
                .build()
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            run_case(cache, Some(con), "test", buckets, legacy, &ops).await
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn random_operations_match_the_model() {
    run_on_a_server(RedisServer::start(), false, 24);
}

/// Legacy keys need `SCAN` (listing and clearing a scope in transition),
/// so they run on a server of their own that allows it; no short TTLs, so
/// a migrated entry's expiry is never in doubt.
#[test]
fn random_operations_with_legacy_keys_match_the_model() {
    run_on_a_server(RedisServer::start(), true, 16);
}

#[test]
fn random_operations_match_the_model_on_a_cluster() {
    let rt = runtime();
    let cluster = RedisCluster::start(3, 0);
    let scenario = vec(op(false), 1..=20);
    let mut runner = TestRunner::new(config(6));
    let n = std::sync::atomic::AtomicU32::new(0);
    let result = runner.run(&scenario, |ops| {
        let case = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ns = format!("model{case}");
        // Both write paths, alternately.
        let path = if case.is_multiple_of(2) {
            WritePath::Transaction
        } else {
            WritePath::Script
        };
        rt.block_on(async {
            let cache = Cache::builder("")
                .cluster(cluster.seeds())
                .namespace(ns.as_str())
                .write_path(path)
                .auto_sweep(None)
                .default_ttl(Duration::from_secs(600))
                .response_timeout(Duration::from_secs(5))
                .op_timeout(Duration::from_secs(5))
                .build()
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            run_case(cache, None, &ns, 16, false, &ops).await
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
