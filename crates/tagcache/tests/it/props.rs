//! Random operation sequences against a model: after every step, what the
//! API answers and what Redis holds (read raw, in one atomic snapshot) must
//! equal the model exactly.
//!
//! Expiry is modelled exactly rather than with margins: after each write
//! the test reads the entry's absolute expiry (`PEXPIRETIME`, the server's
//! own clock), and every check is bracketed by two `TIME` reads. An entry
//! whose expiry falls inside that bracket may be seen either way; every
//! other entry must be seen exactly as the model says. No assertion depends
//! on how fast the machine runs.
//!
//! `PROPTEST_CASES` overrides the default of 24 cases.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use redis::aio::MultiplexedConnection;
use tagcache::{Cache, SetOptions};

use crate::raw::{self, RawState};
use crate::support::RedisServer;

const KEYS: [&str; 6] = ["k0", "k1", "k2", "k3", "k4", "k5"];
/// Includes separators and braces: they must stay inside their segment.
const TAGS: [&str; 4] = ["a", "b", "c:{x}", "d:e:k0"];

#[derive(Debug, Clone, Copy)]
enum Ttl {
    /// The cache's default (600 s): outlives the case.
    Default,
    /// Expires during the case (the `Wait` op sleeps well past it).
    Short(u64),
}

#[derive(Debug, Clone)]
struct Write {
    key: usize,
    /// May repeat a tag: the cache keeps the first occurrence.
    tags: Vec<usize>,
    ttl: Ttl,
}

#[derive(Debug, Clone)]
enum Op {
    Set(Write),
    /// One `set_many` call (a key given twice keeps its last value).
    SetMany(Vec<Write>),
    Delete(Vec<usize>),
    Invalidate(Vec<usize>),
    /// Sleeps past every short TTL.
    Wait,
    Prune,
}

fn write() -> impl Strategy<Value = Write> {
    let ttl = prop_oneof![
        3 => Just(Ttl::Default),
        1 => (30u64..80).prop_map(Ttl::Short),
    ];
    (0..KEYS.len(), vec(0..TAGS.len(), 0..=4), ttl).prop_map(|(key, tags, ttl)| Write {
        key,
        tags,
        ttl,
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => write().prop_map(Op::Set),
        2 => vec(write(), 1..=4).prop_map(Op::SetMany),
        2 => vec(0..KEYS.len(), 1..=3).prop_map(Op::Delete),
        3 => vec(0..TAGS.len(), 1..=2).prop_map(Op::Invalidate),
        1 => Just(Op::Wait),
        1 => Just(Op::Prune),
    ]
}

fn scenario() -> impl Strategy<Value = (u16, Vec<Op>)> {
    (prop_oneof![Just(1u16), Just(2u16)], vec(op(), 1..=40))
}

#[derive(Debug, Clone)]
struct Entry {
    tags: Vec<usize>,
    value: u64,
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

fn all_key_names() -> Vec<Vec<u8>> {
    KEYS.iter().map(|k| k.as_bytes().to_vec()).collect()
}

fn all_tag_names() -> Vec<Vec<u8>> {
    TAGS.iter().map(|t| t.as_bytes().to_vec()).collect()
}

fn fail(step: usize, op: &Op, what: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(format!("after step {step} ({op:?}): {what}"))
}

struct Case<'a> {
    cache: Cache,
    con: MultiplexedConnection,
    buckets: u16,
    model: Model,
    step: usize,
    op: &'a Op,
}

impl Case<'_> {
    fn fail(&self, what: impl std::fmt::Display) -> TestCaseError {
        fail(self.step, self.op, what)
    }

    async fn now(&mut self) -> u64 {
        raw::server_ms(&mut self.con).await
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
                    expire_at: 0,
                },
            );
        }
        for w in writes {
            let key = KEYS[w.key];
            let name = format!(
                "{{test.{}}}:e:{key}",
                raw::bucket_of(key.as_bytes(), self.buckets)
            );
            let at: i64 = redis::cmd("PEXPIRETIME")
                .arg(name)
                .query_async(&mut self.con)
                .await
                .unwrap();
            // -2: a short TTL already ran out; the entry is simply dead.
            if let Some(e) = self.model.entries.get_mut(&w.key) {
                e.expire_at = at.max(0);
            }
        }
    }

    async fn apply(&mut self) -> Result<(), TestCaseError> {
        match self.op.clone() {
            Op::Set(w) => {
                let value = self.model.next_value;
                self.cache
                    .set(KEYS[w.key], &value, &options(&w))
                    .await
                    .map_err(|e| self.fail(e))?;
                self.record(std::slice::from_ref(&w)).await;
            }
            Op::SetMany(ws) => {
                let first = self.model.next_value;
                let items = ws
                    .iter()
                    .zip(first..)
                    .map(|(w, v)| (KEYS[w.key], v, options(w)));
                self.cache.set_many(items).await.map_err(|e| self.fail(e))?;
                self.record(&ws).await;
            }
            Op::Delete(keys) => {
                let distinct: BTreeSet<usize> = keys.iter().copied().collect();
                let t0 = self.now().await;
                let n = self
                    .cache
                    .delete_many(keys.iter().map(|k| KEYS[*k]))
                    .await
                    .map_err(|e| self.fail(e))?;
                let t1 = self.now().await;
                let (lo, hi) = self.model.count(distinct.iter().copied(), t0, t1);
                if !(lo..=hi).contains(&n) {
                    return Err(
                        self.fail(format!("delete_many returned {n}, expected {lo}..={hi}"))
                    );
                }
                for k in distinct {
                    self.model.entries.remove(&k);
                }
            }
            Op::Invalidate(tags) => {
                let hit: Vec<usize> = (0..KEYS.len())
                    .filter(|k| tags.iter().any(|t| self.model.has(*k, *t)))
                    .collect();
                let t0 = self.now().await;
                let n = self
                    .cache
                    .invalidate_tags(tags.iter().map(|t| TAGS[*t]))
                    .await
                    .map_err(|e| self.fail(e))?;
                let t1 = self.now().await;
                let (lo, hi) = self.model.count(hit.iter().copied(), t0, t1);
                if !(lo..=hi).contains(&n) {
                    return Err(self.fail(format!(
                        "invalidate_tags returned {n}, expected {lo}..={hi}"
                    )));
                }
                for k in hit {
                    self.model.entries.remove(&k);
                }
            }
            Op::Wait => tokio::time::sleep(Duration::from_millis(100)).await,
            Op::Prune => {
                let t0 = self.now().await;
                let report = self.cache.prune().await.map_err(|e| self.fail(e))?;
                if !report.complete {
                    return Err(self.fail(format!("prune did not complete: {report:?}")));
                }
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
            }
        }
        Ok(())
    }

    async fn raw(&mut self) -> RawState {
        raw::snapshot(
            &mut self.con,
            "test",
            self.buckets,
            &all_key_names(),
            &all_tag_names(),
        )
        .await
    }

    /// Everything the API says, compared with the model.
    async fn check_api(&mut self) -> Result<(), TestCaseError> {
        let c = self.cache.clone();
        let t0 = self.now().await;
        let mut got = Vec::new();
        let mut tags_of = Vec::new();
        for k in KEYS {
            got.push(c.get::<u64>(k).await.map_err(|e| self.fail(e))?);
            tags_of.push(c.tags(k).await.map_err(|e| self.fail(e))?);
        }
        let mut listed = Vec::new();
        let mut lens = Vec::new();
        let mut member = Vec::new();
        for t in TAGS {
            listed.push(
                c.keys_with_tag(t)
                    .page_size(2)
                    .collect()
                    .await
                    .map_err(|e| self.fail(e))?,
            );
            lens.push(c.tag_len(t).await.map_err(|e| self.fail(e))?);
            for k in KEYS {
                member.push(c.has_tag(k, t).await.map_err(|e| self.fail(e))?);
            }
        }
        let t1 = self.now().await;

        let m = &self.model;
        for (k, key) in KEYS.iter().enumerate() {
            let seen = m.seen(k, t0, t1);
            let want = m.entries.get(&k);
            let ok = match (seen, got[k]) {
                (Seen::Dead, None) | (Seen::Either, None) => true,
                (Seen::Live | Seen::Either, Some(v)) => want.map(|e| e.value) == Some(v),
                _ => false,
            };
            if !ok {
                return Err(self.fail(format!(
                    "get({key}) = {:?}, model {want:?} ({seen:?} during [{t0}, {t1}])",
                    got[k]
                )));
            }
            let want_tags: Option<Vec<Vec<u8>>> = want.map(|e| {
                e.tags
                    .iter()
                    .map(|t| TAGS[*t].as_bytes().to_vec())
                    .collect()
            });
            let ok = match (seen, &tags_of[k]) {
                (Seen::Dead | Seen::Either, None) => true,
                (Seen::Live | Seen::Either, Some(t)) => want_tags.as_ref() == Some(t),
                _ => false,
            };
            if !ok {
                return Err(self.fail(format!(
                    "tags({key}) = {:?}, model {want_tags:?} ({seen:?})",
                    tags_of[k]
                )));
            }
        }
        for (t, tag) in TAGS.iter().enumerate() {
            let list: BTreeSet<Vec<u8>> = listed[t].iter().cloned().collect();
            if list.len() != listed[t].len() {
                return Err(self.fail(format!(
                    "keys_with_tag({tag}) repeats keys: {:?}",
                    listed[t]
                )));
            }
            for (k, key) in KEYS.iter().enumerate() {
                let seen = if m.has(k, t) {
                    m.seen(k, t0, t1)
                } else {
                    Seen::Dead
                };
                let in_list = list.contains(key.as_bytes());
                let has = member[t * KEYS.len() + k];
                let bad = |x: bool| match seen {
                    Seen::Live => !x,
                    Seen::Dead => x,
                    Seen::Either => false,
                };
                if bad(in_list) {
                    return Err(self.fail(format!(
                        "keys_with_tag({tag}) = {list:?}: {key} should be {seen:?}"
                    )));
                }
                if bad(has) {
                    return Err(self.fail(format!(
                        "has_tag({key}, {tag}) = {has}, model says {seen:?}"
                    )));
                }
            }
            let (lo, hi) = m.count((0..KEYS.len()).filter(|k| m.has(*k, t)), t0, t1);
            if !(lo..=hi).contains(&lens[t]) {
                return Err(self.fail(format!(
                    "tag_len({tag}) = {}, expected {lo}..={hi}",
                    lens[t]
                )));
            }
        }
        Ok(())
    }

    /// The raw layout: the invariants, and the entries equal the model.
    async fn check_raw(&mut self) -> Result<(), TestCaseError> {
        let state = self.raw().await;
        state.check_quiescent().map_err(|e| self.fail(e))?;
        let now = state.now_ms as i64;
        for (k, key) in KEYS.iter().enumerate() {
            let want = self.model.entries.get(&k);
            match (state.entry(key.as_bytes()), want) {
                (None, None) => {}
                // Expired before the snapshot read it.
                (None, Some(e)) if e.expire_at < now => {}
                (Some(r), Some(e))
                    if r.expire_at == e.expire_at
                        && r.tags
                            == e.tags
                                .iter()
                                .map(|t| TAGS[*t].as_bytes().to_vec())
                                .collect::<Vec<_>>() => {}
                (r, e) => {
                    return Err(
                        self.fail(format!("raw entry {key} is {r:?}, model {e:?} (now {now})"))
                    )
                }
            }
        }
        // Other buckets hold no copy of any key.
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

async fn run_case(
    server: &RedisServer,
    mut con: MultiplexedConnection,
    buckets: u16,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let _: () = redis::cmd("FLUSHALL").query_async(&mut con).await.unwrap();
    // A fresh cache per case: `build` records the namespace's meta again.
    let cache = crate::builder(server)
        .buckets(buckets)
        .build()
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let idle = Op::Wait;
    let mut case = Case {
        cache,
        con,
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
        case.check_raw().await?;
    }
    Ok(())
}

#[test]
fn random_operations_match_the_model() {
    let mut config = Config {
        // Timing-dependent cases do not always replay; the failure message
        // prints the minimal sequence instead.
        failure_persistence: None,
        max_shrink_time: 120_000,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 24;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = RedisServer::start();
    let con = rt.block_on(raw::connect(&server));
    let mut runner = TestRunner::new(config);
    let result = runner.run(&scenario(), |(buckets, ops)| {
        rt.block_on(run_case(&server, con.clone(), buckets, &ops))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
