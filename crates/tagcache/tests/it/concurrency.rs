//! Writers, invalidators and a deleter racing on overlapping keys and tags.
//!
//! Every write carries a unique value, so the entry that survives names the
//! exact write that produced it. Each write records when it started and
//! when it completed, each invalidation and delete when it started and
//! returned; the
//! checks only use orderings those instants prove (A completed before B
//! started), never guesses about what happened in between:
//!
//! - a surviving entry carries exactly its write's tags, in Redis (edges)
//!   and through the API, and no tag index lists anything else;
//! - a surviving entry was not overwritten by a write, deleted by a delete
//!   or removed by an invalidation of one of its tags that started after
//!   it completed;
//! - when a key's last write started after every other write of the key
//!   completed, the key is absent only if a delete of the key or an
//!   invalidation of one of that write's tags was still running when (or
//!   began after) it started.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tagcache::{Cache, SetOptions};
use tokio::sync::Mutex;

use crate::raw;
use tagcache_testkit::RedisServer;

const TAGS: [&str; 6] = ["t0", "t1", "t2", "t3", "t4", "t5"];
const WRITERS: usize = 8;
const INVALIDATORS: usize = 2;
/// Keys 0..16 belong to one writer each (two per writer, so each of them
/// is written sequentially); keys 16..24 are shared by every writer.
const OWNED_KEYS: usize = 16;
const SHARED_KEYS: usize = 8;
const KEYS: usize = OWNED_KEYS + SHARED_KEYS;

fn key_name(k: usize) -> String {
    format!("key{k}")
}

/// A small deterministic generator (no `rand` dependency needed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// 0 to 3 distinct tags in random order.
    fn tags(&mut self) -> Vec<usize> {
        let mut out = Vec::new();
        for _ in 0..self.below(4) {
            let t = self.below(TAGS.len());
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
struct WriteRec {
    key: usize,
    tags: Vec<usize>,
    value: u64,
    start: Instant,
    end: Instant,
}

#[derive(Debug, Clone)]
struct DelRec {
    keys: Vec<usize>,
    start: Instant,
    end: Instant,
}

#[derive(Debug, Clone)]
struct InvRec {
    tags: Vec<usize>,
    start: Instant,
    end: Instant,
}

fn opts(tags: &[usize]) -> SetOptions {
    SetOptions::new().tags(tags.iter().map(|t| TAGS[*t]))
}

async fn writer(cache: Cache, id: usize, until: Instant, log: Arc<Mutex<Vec<WriteRec>>>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((id as u64 + 1) * 0x1234_5678));
    let mut seq = 0u64;
    let mut mine = Vec::new();
    while Instant::now() < until {
        // A batch of 1 to 3 distinct keys: single sets go through the
        // coalescing queue, batches through set_many.
        let n = 1 + rng.below(3);
        let mut batch: Vec<(usize, Vec<usize>, u64)> = Vec::new();
        while batch.len() < n {
            let key = if rng.below(2) == 0 {
                id * 2 + rng.below(2)
            } else {
                OWNED_KEYS + rng.below(SHARED_KEYS)
            };
            if batch.iter().any(|(k, _, _)| *k == key) {
                continue;
            }
            seq += 1;
            batch.push((key, rng.tags(), ((id as u64) << 32) | seq));
        }
        let start = Instant::now();
        if batch.len() == 1 {
            let (key, tags, value) = &batch[0];
            cache.set(key_name(*key), value, &opts(tags)).await.unwrap();
        } else {
            cache
                .set_many(
                    batch
                        .iter()
                        .map(|(k, tags, v)| (key_name(*k), *v, opts(tags))),
                )
                .await
                .unwrap();
        }
        let end = Instant::now();
        for (key, tags, value) in batch {
            mine.push(WriteRec {
                key,
                tags,
                value,
                start,
                end,
            });
        }
    }
    log.lock().await.extend(mine);
}

async fn invalidator(cache: Cache, id: usize, until: Instant, log: Arc<Mutex<Vec<InvRec>>>) {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ ((id as u64 + 7) * 0x9876_5431));
    let mut mine = Vec::new();
    while Instant::now() < until {
        // Mostly the first three tags, so both invalidators often work on
        // the same tag at once (the join path).
        let mut tags = vec![rng.below(3)];
        if rng.below(3) == 0 {
            let t = rng.below(TAGS.len());
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        let start = Instant::now();
        cache
            .invalidate_tags(tags.iter().map(|t| TAGS[*t]))
            .await
            .unwrap();
        let end = Instant::now();
        mine.push(InvRec { tags, start, end });
        tokio::time::sleep(Duration::from_millis(2 + rng.below(10) as u64)).await;
    }
    log.lock().await.extend(mine);
}

async fn deleter(cache: Cache, until: Instant, log: Arc<Mutex<Vec<DelRec>>>) {
    let mut rng = Rng(0x8CB9_2BA7_2F3D_8DD7);
    let mut mine = Vec::new();
    while Instant::now() < until {
        let keys = vec![rng.below(KEYS), rng.below(KEYS)];
        let start = Instant::now();
        cache
            .delete_many(keys.iter().map(|k| key_name(*k)))
            .await
            .unwrap();
        mine.push(DelRec {
            keys,
            start,
            end: Instant::now(),
        });
        tokio::time::sleep(Duration::from_millis(5 + rng.below(10) as u64)).await;
    }
    log.lock().await.extend(mine);
}

/// Runs the race for `run` (invalidations for `tail` longer) and checks
/// the outcome.
async fn race(buckets: u16, chunk: usize, run: Duration, tail: Duration) {
    race_with(buckets, chunk, run, tail, tagcache::WritePath::Transaction).await;
}

async fn race_with(
    buckets: u16,
    chunk: usize,
    run: Duration,
    tail: Duration,
    path: tagcache::WritePath,
) {
    let server = RedisServer::start();
    // Small chunks: each invalidation takes many calls, so writes land
    // between its snapshot, its reads and its deletes.
    let cache = crate::builder(&server)
        .buckets(buckets)
        .chunk_size(chunk)
        .write_path(path)
        .build()
        .await
        .unwrap();
    let writes = Arc::new(Mutex::new(Vec::new()));
    let invs = Arc::new(Mutex::new(Vec::new()));
    let dels = Arc::new(Mutex::new(Vec::new()));
    let until = Instant::now() + run;
    let mut tasks: Vec<_> = (0..WRITERS)
        .map(|id| tokio::spawn(writer(cache.clone(), id, until, writes.clone())))
        .collect();
    // With a tail, invalidations go on after the last write, so the final
    // state has mostly removed keys to check rather than survivors.
    let removals_until = until + tail;
    tasks.extend((0..INVALIDATORS).map(|id| {
        let log = invs.clone();
        tokio::spawn(invalidator(cache.clone(), id, removals_until, log))
    }));
    tasks.push(tokio::spawn(deleter(cache.clone(), until, dels.clone())));
    for t in tasks {
        t.await.unwrap();
    }
    let writes = writes.lock().await.clone();
    let invs = invs.lock().await.clone();
    let dels = dels.lock().await.clone();
    assert!(writes.len() > 200, "only {} writes", writes.len());
    assert!(invs.len() > 20, "only {} invalidations", invs.len());

    let keys: Vec<Vec<u8>> = (0..KEYS).map(|k| key_name(k).into_bytes()).collect();
    let tags: Vec<Vec<u8>> = TAGS.iter().map(|t| t.as_bytes().to_vec()).collect();
    let mut con = raw::connect(&server).await;
    let state = raw::snapshot(&mut con, "test", buckets, &keys, &tags).await;
    if let Err(e) = state.check_quiescent() {
        panic!("raw layout after the race:\n{e}");
    }

    let by_value: BTreeMap<u64, &WriteRec> = writes.iter().map(|w| (w.value, w)).collect();
    let mut errors = Vec::new();
    let mut survivors = 0;
    let mut justified_absent = 0;
    for (k, name) in keys.iter().enumerate() {
        let of_key: Vec<&WriteRec> = writes.iter().filter(|w| w.key == k).collect();
        let value: Option<u64> = cache.get(name).await.unwrap();
        let api_tags = cache.tags(name).await.unwrap();
        let raw_entry = state.entry(name);
        assert_eq!(
            value.is_some(),
            raw_entry.is_some(),
            "API and raw disagree on key {k}"
        );
        match value {
            Some(v) => {
                survivors += 1;
                let Some(w) = by_value.get(&v) else {
                    errors.push(format!("key {k} holds {v:#x}, which no write wrote"));
                    continue;
                };
                if w.key != k {
                    errors.push(format!("key {k} holds the value written to key {}", w.key));
                }
                let want: Vec<Vec<u8>> = w.tags.iter().map(|t| tags[*t].clone()).collect();
                if api_tags.as_ref() != Some(&want) {
                    errors.push(format!(
                        "key {k}: tags() = {api_tags:?}, its write had {want:?}"
                    ));
                }
                // Stored: the write's tags (the all-entries tag when none).
                let mut stored = want.clone();
                if stored.is_empty() {
                    stored.push(b"\0a".to_vec());
                }
                if raw_entry.map(|e| &e.tags) != Some(&stored) {
                    errors.push(format!("key {k}: stored tags differ from its write's"));
                }
                if let Some(x) = of_key.iter().find(|x| x.start > w.end) {
                    errors.push(format!(
                        "key {k} holds {v:#x} although write {:#x} started after it completed",
                        x.value
                    ));
                }
                if let Some(i) = invs
                    .iter()
                    .find(|i| i.start > w.end && i.tags.iter().any(|t| w.tags.contains(t)))
                {
                    errors.push(format!(
                        "key {k} ({v:#x}, tags {:?}) survived invalidation {:?} that began after the write completed",
                        w.tags, i.tags
                    ));
                }
                if dels.iter().any(|d| d.start > w.end && d.keys.contains(&k)) {
                    errors.push(format!(
                        "key {k} ({v:#x}) survived a delete that began after the write completed"
                    ));
                }
            }
            None => {
                if api_tags.is_some() {
                    errors.push(format!("key {k}: no value but tags {api_tags:?}"));
                }
                let Some(last) = of_key.iter().max_by_key(|w| w.start) else {
                    continue;
                };
                let dominates = of_key
                    .iter()
                    .all(|x| x.value == last.value || x.end < last.start);
                if !dominates {
                    continue; // overlapping writes: no order to check
                }
                let killer = invs
                    .iter()
                    .any(|i| i.end > last.start && i.tags.iter().any(|t| last.tags.contains(t)))
                    || dels
                        .iter()
                        .any(|d| d.end > last.start && d.keys.contains(&k));
                if killer {
                    justified_absent += 1;
                } else {
                    errors.push(format!(
                        "key {k} is gone, but its last write ({:#x}, tags {:?}) overlaps no invalidation of its tags and no delete",
                        last.value, last.tags
                    ));
                }
            }
        }
    }
    // Listing agrees with the entries.
    for (t, tag) in TAGS.iter().enumerate() {
        let listed: BTreeSet<Vec<u8>> = cache
            .keys_with_tag(tag)
            .page_size(3)
            .collect()
            .await
            .unwrap()
            .into_iter()
            .collect();
        let want: BTreeSet<Vec<u8>> = keys
            .iter()
            .filter(|k| state.entry(k).is_some_and(|e| e.tags.contains(&tags[t])))
            .cloned()
            .collect();
        if listed != want {
            errors.push(format!(
                "keys_with_tag({tag}) = {listed:?}, entries say {want:?}"
            ));
        }
        assert_eq!(cache.tag_len(tag).await.unwrap(), want.len() as u64);
    }
    assert!(
        errors.is_empty(),
        "{} writes, {} invalidations:\n{}",
        writes.len(),
        invs.len(),
        errors.join("\n")
    );
    eprintln!(
        "race(buckets {buckets}, chunk {chunk}): {} writes, {} invalidations, {} deletes, {survivors} survivors, {justified_absent} removed",
        writes.len(),
        invs.len(),
        dels.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writes_and_invalidations_stay_exact() {
    race(1, 3, Duration::from_secs(2), Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writes_and_invalidations_stay_exact_across_buckets() {
    race(3, 2, Duration::from_secs(2), Duration::from_millis(300)).await;
}

/// The same race with every write through `set.lua` (the default path,
/// a transaction plus `unlink.lua` when tags are dropped, is above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writes_and_invalidations_stay_exact_on_the_script_path() {
    race_with(
        3,
        2,
        Duration::from_secs(2),
        Duration::from_millis(300),
        tagcache::WritePath::Script,
    )
    .await;
}

/// An invalidation of a large tag runs while a writer keeps writing to the
/// tag: what was written before it began is gone, what was written after it
/// returned survives, and what was written meanwhile is either gone or a
/// correctly indexed survivor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_after_an_invalidation_returned_survive() {
    let server = RedisServer::start();
    let cache = crate::builder(&server)
        .chunk_size(50)
        .build()
        .await
        .unwrap();
    let before = 3_000;
    cache
        .set_many_bytes((0..before).map(|i| {
            (
                format!("old:{i}"),
                b"v".to_vec(),
                SetOptions::new().tags(["T", "other"]),
            )
        }))
        .await
        .unwrap();

    let inv = {
        let cache = cache.clone();
        tokio::spawn(async move {
            let n = cache.invalidate_tag("T").await.unwrap();
            (n, Instant::now())
        })
    };
    // Write during the invalidation and for a while after it returned.
    let mut log: Vec<(String, Instant, Instant)> = Vec::new();
    // Writes `key` tagged T, logging when the write started and ended.
    let write = async |log: &mut Vec<_>, key: String| {
        let start = Instant::now();
        cache
            .set_bytes(&key, b"v", &SetOptions::new().tags(["T", "other"]))
            .await
            .unwrap();
        log.push((key, start, Instant::now()));
    };
    let (removed, inv_end) = loop {
        if inv.is_finished() {
            break inv.await.unwrap();
        }
        let key = format!("new:{}", log.len());
        write(&mut log, key).await;
    };
    for i in 0..50 {
        write(&mut log, format!("after:{i}")).await;
    }
    assert!(removed >= before, "removed {removed} < {before}");

    for i in 0..before {
        assert!(
            !cache.exists(format!("old:{i}")).await.unwrap(),
            "old:{i} survived"
        );
    }
    let mut survivors = BTreeSet::new();
    for (key, start, _) in &log {
        let alive = cache.exists(key).await.unwrap();
        if *start > inv_end {
            assert!(
                alive,
                "{key} was written after the invalidation returned, yet it is gone"
            );
        }
        if alive {
            survivors.insert(key.clone().into_bytes());
        }
    }
    // Survivors are exactly the members of both their tags.
    for tag in ["T", "other"] {
        let listed: BTreeSet<Vec<u8>> = cache
            .keys_with_tag(tag)
            .collect()
            .await
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(listed, survivors, "tag {tag}");
    }
    let written = log.len() as u64 + before;
    assert_eq!(
        removed + survivors.len() as u64,
        written,
        "every entry was either removed (and counted) or survives"
    );
    let names: Vec<Vec<u8>> = log.iter().map(|(k, _, _)| k.clone().into_bytes()).collect();
    let mut con = raw::connect(&server).await;
    let state = raw::snapshot(
        &mut con,
        "test",
        1,
        &names,
        &[b"T".to_vec(), b"other".to_vec()],
    )
    .await;
    if let Err(e) = state.check_quiescent() {
        panic!("{e}");
    }
}

/// Listing a tag page by page while other entries of the tag are written,
/// rewritten with new expiries (so they move around the stable ones in the
/// index), untagged, deleted and left to expire: every entry that stays
/// live and tagged throughout is listed exactly once, in every listing.
async fn listing_under_churn(buckets: u16) {
    let server = RedisServer::start();
    let cache = crate::cache_with_buckets(&server, buckets).await;
    let stable = 300;
    let churn_keys = 100;
    cache
        .set_many_bytes((0..stable).map(|i| {
            (
                format!("stable:{i}"),
                b"v".to_vec(),
                SetOptions::new().tag("S").ttl(Duration::from_secs(300)),
            )
        }))
        .await
        .unwrap();
    let until = Instant::now() + Duration::from_millis(1500);
    let mut churners = Vec::new();
    for id in 0..4u64 {
        let cache = cache.clone();
        churners.push(tokio::spawn(async move {
            let mut rng = Rng(0xA076_1D64_78BD_642F ^ ((id + 1) * 0x1111_2222));
            let mut ops = 0u64;
            while Instant::now() < until {
                let key = format!("churn:{}", rng.below(churn_keys));
                // TTLs around the stable entries' expiry, so rewritten
                // members land before and after the listing's cursor.
                let ttl = match rng.below(4) {
                    0 => Duration::from_millis(5 + rng.below(40) as u64),
                    _ => Duration::from_millis(295_000 + rng.below(10_000) as u64),
                };
                match rng.below(6) {
                    0 => {
                        cache.delete(&key).await.unwrap();
                    }
                    1 => cache
                        .set_bytes(&key, b"w", &SetOptions::new().tag("other").ttl(ttl))
                        .await
                        .unwrap(),
                    _ => cache
                        .set_bytes(&key, b"w", &SetOptions::new().tag("S").ttl(ttl))
                        .await
                        .unwrap(),
                }
                ops += 1;
            }
            ops
        }));
    }
    let want: BTreeSet<Vec<u8>> = (0..stable)
        .map(|i| format!("stable:{i}").into_bytes())
        .collect();
    let mut listings = 0;
    while Instant::now() < until {
        let mut pages = cache.keys_with_tag("S").page_size(7);
        let mut seen: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        while let Some(page) = pages.next_page().await.unwrap() {
            for key in page {
                assert!(
                    key.starts_with(b"stable:") || key.starts_with(b"churn:"),
                    "listed a foreign key {key:?}"
                );
                *seen.entry(key).or_default() += 1;
            }
        }
        for key in &want {
            assert_eq!(
                seen.get(key).copied().unwrap_or(0),
                1,
                "listing {listings}: stable key {} listed {:?} times",
                String::from_utf8_lossy(key),
                seen.get(key)
            );
        }
        listings += 1;
    }
    let mut ops = 0;
    for c in churners {
        ops += c.await.unwrap();
    }
    assert!(listings >= 3, "only {listings} listings");
    eprintln!("listing_under_churn(buckets {buckets}): {listings} listings during {ops} writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_under_churn_returns_stable_keys_exactly_once() {
    listing_under_churn(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_under_churn_returns_stable_keys_exactly_once_across_buckets() {
    listing_under_churn(3).await;
}
