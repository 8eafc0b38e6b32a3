//! Every reader the L1 serves, against every writer: a hit after a fill
//! reaches no Redis command, and a change made through another handle
//! (its own connections, as another process has) is seen within the
//! announcement's delivery — never a stale read past the bound.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tagcache::{Cache, KeyPath, L1Options, Lookup, SetOptions, Source};
use tagcache_testkit::RedisServer;

use crate::l1::{l1_cache, wait_synced};

/// The key every reader reads: a path under `org:7`, so scope and path
/// readers name it too, and prefix invalidations cover it.
const KEY: &str = "org:7:k";
/// What a read-through's loader returns: "not in the cache".
const LOADED: i32 = -1;

/// A long check period: a loaded machine's listener stays within its
/// proof window, so hits are hits.
fn steady() -> L1Options {
    L1Options::new().check_period(Duration::from_secs(5))
}

fn opts() -> SetOptions {
    SetOptions::new().tag("t").ttl(Duration::from_secs(600))
}

#[derive(Debug, Clone, Copy)]
enum Reader {
    Get,
    GetBytes,
    GetBytesShared,
    GetPayload,
    GetPath,
    GetMany,
    GetManyBytes,
    GetOrCompute,
    GetOrComputeWith,
    GetOrRefresh,
    ScopeGet,
    ScopeGetBytes,
    FailSafeGet,
    FailSafeGetOrCompute,
    FailSafeGetOrRefresh,
    FailSafeScopeGet,
}

const READERS: [Reader; 16] = [
    Reader::Get,
    Reader::GetBytes,
    Reader::GetBytesShared,
    Reader::GetPayload,
    Reader::GetPath,
    Reader::GetMany,
    Reader::GetManyBytes,
    Reader::GetOrCompute,
    Reader::GetOrComputeWith,
    Reader::GetOrRefresh,
    Reader::ScopeGet,
    Reader::ScopeGetBytes,
    Reader::FailSafeGet,
    Reader::FailSafeGetOrCompute,
    Reader::FailSafeGetOrRefresh,
    Reader::FailSafeScopeGet,
];

fn msgpack(bytes: Option<Vec<u8>>) -> Option<i32> {
    bytes.map(|b| rmp_serde::from_slice(&b).unwrap())
}

fn lookup(l: Lookup<i32>) -> Option<i32> {
    match l {
        Lookup::Hit(v) => Some(v),
        Lookup::Miss => None,
        other => panic!("{other:?}"),
    }
}

/// The value `reader` sees under [`KEY`]; `None` when absent (a
/// read-through's loader ran: it stores [`LOADED`]).
async fn read(reader: Reader, c: &Cache) -> Option<i32> {
    let loader = || async { Ok::<_, std::io::Error>(LOADED) };
    let through = |v: i32| (v != LOADED).then_some(v);
    let scope = c.scope(["org", "7"]).unwrap();
    let fs = c.fail_safe();
    match reader {
        Reader::Get => c.get::<i32>(KEY).await.unwrap(),
        Reader::GetBytes => msgpack(c.get_bytes(KEY).await.unwrap()),
        Reader::GetBytesShared => msgpack(c.get_bytes_shared(KEY).await.unwrap().map(Vec::from)),
        Reader::GetPayload => c
            .get_payload(KEY)
            .await
            .unwrap()
            .map(|p| p.decode::<i32>().unwrap()),
        Reader::GetPath => c
            .get_path::<i32>(&KeyPath::from(["org", "7", "k"]))
            .await
            .unwrap(),
        Reader::GetMany => c.get_many::<i32, _>([KEY, KEY]).await.unwrap()[0],
        Reader::GetManyBytes => msgpack(c.get_many_bytes([KEY, KEY]).await.unwrap()[0].clone()),
        Reader::GetOrCompute => {
            through(c.get_or_compute(KEY, &opts(), loader).await.unwrap().value)
        }
        Reader::GetOrComputeWith => through(
            c.get_or_compute_with(KEY, &opts(), |_| loader())
                .await
                .unwrap()
                .value,
        ),
        Reader::GetOrRefresh => {
            through(c.get_or_refresh(KEY, &opts(), loader).await.unwrap().value)
        }
        Reader::ScopeGet => scope.get::<i32>("k").await.unwrap(),
        Reader::ScopeGetBytes => msgpack(scope.get_bytes("k").await.unwrap()),
        Reader::FailSafeGet => lookup(fs.get::<i32>(KEY).await.unwrap()),
        Reader::FailSafeGetOrCompute => {
            through(fs.get_or_compute(KEY, &opts(), loader).await.unwrap().value)
        }
        Reader::FailSafeGetOrRefresh => through(
            fs.get_or_refresh(KEY, &opts(), Duration::from_secs(1), loader)
                .await
                .unwrap()
                .value,
        ),
        Reader::FailSafeScopeGet => lookup(
            fs.scope(["org", "7"])
                .unwrap()
                .get::<i32>("k")
                .await
                .unwrap(),
        ),
    }
}

#[derive(Debug, Clone, Copy)]
enum Writer {
    Set,
    SetByScript,
    SetMany,
    SetPath,
    ScopeSet,
    Delete,
    InvalidateTag,
    InvalidatePrefix,
    ScopeClear,
    Clear,
}

const WRITERS: [Writer; 10] = [
    Writer::Set,
    Writer::SetByScript,
    Writer::SetMany,
    Writer::SetPath,
    Writer::ScopeSet,
    Writer::Delete,
    Writer::InvalidateTag,
    Writer::InvalidatePrefix,
    Writer::ScopeClear,
    Writer::Clear,
];

/// Applies `writer` (the value `v` for the writers that store); what a
/// reader must see afterwards.
async fn write(writer: Writer, tx: &Cache, script: &Cache, v: i32) -> Option<i32> {
    let path = KeyPath::from(["org", "7", "k"]);
    match writer {
        Writer::Set => tx.set(KEY, &v, &opts()).await.unwrap(),
        Writer::SetByScript => script.set(KEY, &v, &opts()).await.unwrap(),
        Writer::SetMany => tx
            .set_many([(KEY, v, opts()), ("other", v, opts())])
            .await
            .unwrap(),
        Writer::SetPath => tx.set_path(&path, &v, &opts()).await.unwrap(),
        Writer::ScopeSet => tx
            .scope(["org", "7"])
            .unwrap()
            .set("k", &v, &opts())
            .await
            .unwrap(),
        Writer::Delete => {
            tx.delete(KEY).await.unwrap();
            return None;
        }
        Writer::InvalidateTag => {
            tx.invalidate_tag("t").await.unwrap();
            return None;
        }
        Writer::InvalidatePrefix => {
            tx.invalidate_prefix(&KeyPath::from(["org", "7"]))
                .await
                .unwrap();
            return None;
        }
        Writer::ScopeClear => {
            tx.scope(["org", "7"]).unwrap().clear().await.unwrap();
            return None;
        }
        Writer::Clear => {
            tx.clear().await.unwrap();
            return None;
        }
    }
    Some(v)
}

/// Redis commands other than the listener's (`GET` of the counters,
/// `SSUBSCRIBE`) and the test's own `INFO`: every read that misses the L1
/// sends a `PTTL`, so a hit must leave this unchanged.
pub fn data_calls(server: &RedisServer) -> u64 {
    server
        .command_calls()
        .into_iter()
        .filter(|(name, _)| !matches!(name.as_str(), "get" | "info" | "ssubscribe"))
        .map(|(_, calls)| calls)
        .sum()
}

/// Polls `reader` until it sees `want`; the time the old value was still
/// served. Fails past `bound`.
async fn seen_within(reader: Reader, c: &Cache, want: Option<i32>, bound: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = read(reader, c).await;
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < bound,
            "{reader:?}: still {got:?} after {:?}, want {want:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Every reader × every writer: fill, hit without Redis, change from
/// another handle, seen within the delivery bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reader_hits_without_redis_and_sees_every_writer_from_another_handle() {
    let server = RedisServer::start();
    let reader = l1_cache(&server, steady()).await;
    let tx = crate::cache(&server).await;
    let script = crate::cache_on(&server, tagcache::WritePath::Script).await;
    // Normal operation: the announcement's delivery (ms); generous for
    // a loaded CI machine, far below the silent-loss bound.
    let bound = Duration::from_secs(1);
    let mut v = 0;
    let mut worst = Duration::ZERO;
    for r in READERS {
        for w in WRITERS {
            v += 1;
            tx.set(KEY, &v, &opts()).await.unwrap();
            seen_within(r, &reader, Some(v), bound).await;
            // The fill's read may have raced the write's announcement
            // (then it was refused): read until a hit.
            let start = Instant::now();
            loop {
                let (calls, misses) = (data_calls(&server), reader.l1_stats().unwrap().misses);
                assert_eq!(read(r, &reader).await, Some(v), "{r:?}");
                let s = reader.l1_stats().unwrap();
                if s.misses == misses {
                    assert_eq!(data_calls(&server), calls, "{r:?}: a hit reached Redis");
                    break;
                }
                assert!(start.elapsed() < bound, "{r:?}: no L1 hit: {s:?}");
            }
            v += 1;
            let want = write(w, &tx, &script, v).await;
            let stale_for = seen_within(r, &reader, want, bound).await;
            worst = worst.max(stale_for);
        }
    }
    let s = reader.l1_stats().unwrap();
    assert_eq!(s.dropped_by_gap, 0, "{s:?}");
    eprintln!("worst time an old value was still served: {worst:?}; {s:?}");
}

/// A read-through hit served from the L1 still triggers the eager
/// refresh: the entry's TTL and time left travel with the L1 entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_l1_hit_past_the_refresh_point_refreshes_in_the_background() {
    let server = RedisServer::start();
    let reader = l1_cache(&server, steady()).await;
    let loads = Arc::new(AtomicUsize::new(0));
    let opts = SetOptions::new()
        .ttl(Duration::from_millis(1500))
        .eager_refresh(0.5);
    let get = || {
        let loads = loads.clone();
        reader.get_or_refresh("k", &opts, move || async move {
            Ok::<_, std::io::Error>(loads.fetch_add(1, Ordering::SeqCst) as i32)
        })
    };
    assert_eq!(get().await.unwrap().source, Source::Loaded);
    // Its own store marked the key: the next read fills the L1, once the
    // store's announcement is in (a fill that begins before an
    // announcement of its key arrives is refused when it does).
    let start = Instant::now();
    while reader.l1_stats().unwrap().announcements < 1 {
        assert!(start.elapsed() < Duration::from_secs(5), "announced");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(get().await.unwrap().value, 0);
    let calls = data_calls(&server);
    let hits = reader.l1_stats().unwrap().hits;
    let got = get().await.unwrap();
    assert_eq!((got.value, got.source), (0, Source::Hit));
    assert_eq!(data_calls(&server), calls, "a hit before the refresh point");
    assert!(reader.l1_stats().unwrap().hits > hits);
    tokio::time::sleep(Duration::from_millis(900)).await;
    // Past half the TTL: served (from the L1 or Redis), refreshed behind.
    let got = get().await.unwrap();
    assert_eq!((got.value, got.source), (0, Source::Hit));
    let start = Instant::now();
    while loads.load(Ordering::SeqCst) < 2 {
        assert!(start.elapsed() < Duration::from_secs(5), "refreshed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let start = Instant::now();
    while get().await.unwrap().value != 1 {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the refresh is read"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `get_many` answers its hits from the L1 and reads only the misses,
/// in one round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_many_reads_only_its_misses_from_redis() {
    let server = RedisServer::start();
    let reader = l1_cache(&server, steady()).await;
    let writer = crate::builder(&server).build().await.unwrap();
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    for k in &keys[..10] {
        writer.set(k, &1, &SetOptions::new()).await.unwrap();
    }
    let start = Instant::now();
    while reader.l1_stats().unwrap().announcements < 10 {
        assert!(start.elapsed() < Duration::from_secs(5), "announced");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(
        reader.get_many::<i32, _>(&keys[..10]).await.unwrap(),
        vec![Some(1); 10]
    );
    let pttl = |s: &RedisServer| s.command_calls().get("pttl").copied().unwrap_or(0);
    let before = pttl(&server);
    let got = reader.get_many::<i32, _>(&keys).await.unwrap();
    assert_eq!(got[..10], vec![Some(1); 10]);
    assert_eq!(got[10..], vec![None; 10]);
    assert_eq!(pttl(&server), before + 10, "only the misses were read");
    assert_eq!(
        reader.get_many::<i32, _>(&keys[..10]).await.unwrap(),
        vec![Some(1); 10]
    );
    assert_eq!(pttl(&server), before + 10, "all hits");
    writer.set("k3", &2, &SetOptions::new()).await.unwrap();
    let start = Instant::now();
    while reader.get_many::<i32, _>(&keys[..10]).await.unwrap()[3] != Some(2) {
        assert!(start.elapsed() < Duration::from_secs(1));
    }
    wait_synced(&reader).await;
}

#[derive(Debug, Clone, Copy)]
enum GroupReader {
    Fetch,
    FailSafeGet,
    FailSafeFetch,
}

/// The value `reader` sees in field `f` of group `flags`/7; `None` when
/// absent (a fetch's loader ran: it stores [`LOADED`]).
async fn read_group(reader: GroupReader, c: &Cache) -> Option<i32> {
    let loader = || async { Ok::<_, std::io::Error>(LOADED) };
    let through = |v: i32| (v != LOADED).then_some(v);
    match reader {
        GroupReader::Fetch => {
            let g = c.group("flags", 7).unwrap().tag("t");
            through(g.fetch("f", loader).await.unwrap().value)
        }
        GroupReader::FailSafeGet => {
            let g = c.fail_safe().group("flags", 7).unwrap().tag("t");
            through(lookup(g.get::<i32>("f").await.unwrap())?)
        }
        GroupReader::FailSafeFetch => {
            let g = c.fail_safe().group("flags", 7).unwrap().tag("t");
            through(g.fetch("f", loader).await.unwrap().value)
        }
    }
}

/// Groups through the L1: every group reader × every writer that changes
/// a group (a field set, the group's clear, its tag's invalidation, a
/// namespace clear, a set of another field), from another handle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_reads_hit_without_redis_and_see_every_group_writer() {
    let server = RedisServer::start();
    let reader = l1_cache(&server, steady()).await;
    let writer = crate::cache(&server).await;
    let group = writer.group("flags", 7).unwrap().tag("t");
    let bound = Duration::from_secs(1);
    let until = |r: GroupReader, want: Option<i32>| {
        let reader = reader.clone();
        async move {
            let start = Instant::now();
            loop {
                let got = read_group(r, &reader).await;
                if got == want {
                    return;
                }
                assert!(
                    start.elapsed() < bound,
                    "{r:?}: still {got:?}, want {want:?}"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    };
    let mut v = 0;
    for r in [
        GroupReader::Fetch,
        GroupReader::FailSafeGet,
        GroupReader::FailSafeFetch,
    ] {
        for w in 0..5 {
            v += 1;
            group.set("f", &v).await.unwrap();
            until(r, Some(v)).await;
            let start = Instant::now();
            loop {
                let (calls, misses) = (data_calls(&server), reader.l1_stats().unwrap().misses);
                assert_eq!(read_group(r, &reader).await, Some(v), "{r:?}");
                if reader.l1_stats().unwrap().misses == misses {
                    assert_eq!(data_calls(&server), calls, "{r:?}: a hit reached Redis");
                    break;
                }
                assert!(start.elapsed() < bound, "{r:?}: no L1 hit");
            }
            v += 1;
            let want = match w {
                0 => {
                    group.set("f", &v).await.unwrap();
                    Some(v)
                }
                1 => {
                    group.clear().await.unwrap();
                    None
                }
                2 => {
                    writer.invalidate_tag("t").await.unwrap();
                    None
                }
                3 => {
                    writer.clear().await.unwrap();
                    None
                }
                _ => {
                    // Another field: the whole group's L1 fields are
                    // dropped (the announcement names the group), and
                    // this one is read again unchanged.
                    group.set("g", &v).await.unwrap();
                    Some(v - 1)
                }
            };
            until(r, want).await;
        }
    }
    // Its own writes: seen at once.
    let own = reader.group("flags", 7).unwrap().tag("t");
    own.set("f", &1000).await.unwrap();
    assert_eq!(read_group(GroupReader::Fetch, &reader).await, Some(1000));
    own.clear().await.unwrap();
    assert_eq!(read_group(GroupReader::FailSafeGet, &reader).await, None);
}
