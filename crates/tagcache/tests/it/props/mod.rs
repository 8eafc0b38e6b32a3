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
//!
//! Here: the key universe, the operations and their strategies, the
//! model and the runner; `apply.rs` applies an operation to the cache and
//! the model, `check.rs` compares every API and the raw state with it.

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

mod apply;
mod check;

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
        2 => (0..KEYS.len(), via).prop_map(|(k, v)| Op::Delete(k, v)),
        1 => vec(0..KEYS.len(), 1..=3).prop_map(Op::DeleteMany),
        3 => vec(0..TAGS.len(), 1..=2).prop_map(Op::Invalidate),
        2 => (0..PREFIXES.len()).prop_map(Op::InvalidatePrefix),
        2 => (1..PREFIXES.len()).prop_map(Op::ScopeClear),
        1 => Just(Op::Clear),
        1 => Just(Op::GroupSet),
        1 => Just(Op::GroupRefresh),
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
