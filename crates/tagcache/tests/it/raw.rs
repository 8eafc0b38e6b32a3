//! Raw, layout-level views of a namespace, shared by the property and
//! concurrency tests: one consistent snapshot of every key a test knows
//! about (read by a single Lua call, so nothing moves while it is read),
//! and the invariants tagcache promises about it.

use std::collections::{BTreeMap, BTreeSet};

use redis::aio::MultiplexedConnection;
use redis::Value;

/// Reads, in one atomic script, the type and contents of every key given:
/// strings with their absolute expiry, zsets with their scores. `TIME` is
/// read last: whether Redis judges key expiry at the script's start (7.0)
/// or at each access, every read happened at or before that time, so "an
/// entry expiring at or after `now_ms` is present" holds either way.
const SNAPSHOT_LUA: &str = r"
local out = {0, 0}
for i, k in ipairs(KEYS) do
  local ty = redis.call('TYPE', k)['ok']
  if ty == 'string' then
    out[#out + 1] = {'string', redis.call('GET', k), redis.call('PEXPIRETIME', k)}
  elseif ty == 'zset' then
    out[#out + 1] = {'zset', redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')}
  else
    out[#out + 1] = {ty}
  end
end
local t = redis.call('TIME')
out[1], out[2] = t[1], t[2]
return out
";

/// CRC16/XMODEM modulo the bucket count: the bucket of a key, as the
/// layout document defines it.
// Repeats the library's `crc16` on purpose: written from the document, it
// checks the library's bucket choice independently.
pub fn bucket_of(key: &[u8], buckets: u16) -> u16 {
    let mut crc: u16 = 0;
    for &byte in key {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    if buckets == 1 {
        0
    } else {
        crc % buckets
    }
}

fn name(ns: &str, bucket: u16, kind: &str, rest: &[u8]) -> Vec<u8> {
    let mut k = format!("{{{ns}.{bucket}}}:{kind}").into_bytes();
    k.extend_from_slice(rest);
    k
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub tags: Vec<Vec<u8>>,
    /// `PEXPIRETIME`: absolute expiry in ms (-1 would mean none).
    pub expire_at: i64,
    pub bytes: Vec<u8>,
}

/// Members of a sorted set with their scores.
pub type Scored = Vec<(Vec<u8>, f64)>;

/// One consistent view of the keys of `keys` and `tags` in every bucket.
#[derive(Debug, Default)]
pub struct RawState {
    /// Server time (ms) when the snapshot was complete: every entry
    /// expiring at or after it is in `entries`.
    pub now_ms: u64,
    pub buckets: u16,
    /// (bucket, key) -> entry.
    pub entries: BTreeMap<(u16, Vec<u8>), RawEntry>,
    /// (bucket, tag) -> members with scores (only existing indexes).
    pub indexes: BTreeMap<(u16, Vec<u8>), Scored>,
    /// (bucket, tag) of every existing invalidation snapshot.
    pub snapshots: BTreeSet<(u16, Vec<u8>)>,
    /// bucket -> registry members.
    pub registry: BTreeMap<u16, Scored>,
    /// bucket -> in-flight invalidations.
    pub inflight: BTreeMap<u16, Scored>,
}

enum Slot {
    Entry(u16, Vec<u8>),
    Index(u16, Vec<u8>),
    Snapshot(u16, Vec<u8>),
    Registry(u16),
    Inflight(u16),
}

fn bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b.clone(),
        Value::SimpleString(s) => s.clone().into_bytes(),
        Value::Int(i) => i.to_string().into_bytes(),
        other => panic!("unexpected reply {other:?}"),
    }
}

fn text(v: &Value) -> String {
    String::from_utf8(bytes(v)).expect("utf-8 reply")
}

fn pairs(v: &Value) -> Scored {
    let Value::Array(items) = v else {
        panic!("expected an array, got {v:?}")
    };
    items
        .chunks(2)
        .map(|p| (bytes(&p[0]), text(&p[1]).parse().expect("numeric score")))
        .collect()
}

/// Splits an entry's tag section out of its stored bytes (format 1).
pub fn parse_entry_tags(stored: &[u8]) -> Vec<Vec<u8>> {
    assert!(stored.len() >= 6, "entry shorter than its header");
    assert_eq!(stored[0], 1, "entry format version");
    let len = u32::from_be_bytes([stored[2], stored[3], stored[4], stored[5]]) as usize;
    let mut section = &stored[6..6 + len];
    let mut tags = Vec::new();
    while !section.is_empty() {
        let n = usize::from(u16::from_be_bytes([section[0], section[1]]));
        tags.push(section[2..2 + n].to_vec());
        section = &section[2 + n..];
    }
    tags
}

/// A connection for raw reads next to the cache's own.
pub async fn connect(server: &tagcache_testkit::RedisServer) -> MultiplexedConnection {
    // Generous timeouts: a loaded test machine must not fail a check
    // (redis-rs' defaults are 500 ms per response).
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(std::time::Duration::from_secs(10)))
        .set_response_timeout(Some(std::time::Duration::from_secs(10)));
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap()
}

/// The server's clock in ms.
pub async fn server_ms(con: &mut MultiplexedConnection) -> u64 {
    let (s, us): (u64, u64) = redis::cmd("TIME").query_async(con).await.unwrap();
    s * 1000 + us / 1000
}

/// Reads every key of namespace `ns` that `keys` and `tags` can produce.
pub async fn snapshot(
    con: &mut MultiplexedConnection,
    ns: &str,
    buckets: u16,
    keys: &[Vec<u8>],
    tags: &[Vec<u8>],
) -> RawState {
    // Every entry also carries the all-entries index and, for keys that
    // are paths (tests use no escapes), the index of each proper prefix.
    let mut tags: Vec<Vec<u8>> = tags.to_vec();
    let mut implied = vec![b"\0a".to_vec()];
    for k in keys {
        let parts: Vec<&[u8]> = k.split(|b| *b == b':').collect();
        if parts.len() > 1 && parts.iter().all(|p| !p.is_empty()) {
            for n in 1..parts.len() {
                let mut t = b"\0p".to_vec();
                t.extend(parts[..n].join(&b':'));
                implied.push(t);
            }
        }
    }
    for t in implied {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let tags = &tags;
    let mut slots = Vec::new();
    let mut names = Vec::new();
    for b in 0..buckets {
        for k in keys {
            slots.push(Slot::Entry(b, k.clone()));
            names.push(name(ns, b, "e:", k));
        }
        for t in tags {
            slots.push(Slot::Index(b, t.clone()));
            names.push(name(ns, b, "t:", t));
            slots.push(Slot::Snapshot(b, t.clone()));
            names.push(name(ns, b, "x:", t));
        }
        slots.push(Slot::Registry(b));
        names.push(name(ns, b, "reg", b""));
        slots.push(Slot::Inflight(b));
        names.push(name(ns, b, "inv", b""));
    }
    let reply: Vec<Value> = redis::cmd("EVAL")
        .arg(SNAPSHOT_LUA)
        .arg(names.len())
        .arg(&names)
        .query_async(con)
        .await
        .unwrap();
    let secs: u64 = text(&reply[0]).parse().unwrap();
    let micros: u64 = text(&reply[1]).parse().unwrap();
    let mut state = RawState {
        now_ms: secs * 1000 + micros / 1000,
        buckets,
        ..RawState::default()
    };
    for (slot, v) in slots.into_iter().zip(&reply[2..]) {
        let Value::Array(parts) = v else {
            panic!("unexpected reply {v:?}")
        };
        let ty = text(&parts[0]);
        if ty == "none" {
            continue;
        }
        match slot {
            Slot::Entry(b, k) => {
                assert_eq!(ty, "string", "entry {k:?} has type {ty}");
                let stored = bytes(&parts[1]);
                let expire_at = text(&parts[2]).parse().unwrap();
                let tags = parse_entry_tags(&stored);
                state.entries.insert(
                    (b, k),
                    RawEntry {
                        tags,
                        expire_at,
                        bytes: stored,
                    },
                );
            }
            Slot::Index(b, t) => {
                assert_eq!(ty, "zset");
                state.indexes.insert((b, t), pairs(&parts[1]));
            }
            Slot::Snapshot(b, t) => {
                state.snapshots.insert((b, t));
            }
            Slot::Registry(b) => {
                assert_eq!(ty, "zset");
                state.registry.insert(b, pairs(&parts[1]));
            }
            Slot::Inflight(b) => {
                assert_eq!(ty, "zset");
                state.inflight.insert(b, pairs(&parts[1]));
            }
        }
    }
    state
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl RawState {
    /// The live entry of `key`, from whichever bucket holds it.
    pub fn entry(&self, key: &[u8]) -> Option<&RawEntry> {
        self.entries
            .get(&(bucket_of(key, self.buckets), key.to_vec()))
    }

    /// The invariants that hold whenever no write, delete or invalidation
    /// is in progress; `Err` describes every violation found.
    ///
    /// - every entry lives in its own bucket and has a finite expiry;
    /// - no missing edge: each tag of a live entry has an index member in
    ///   the entry's bucket scored with the entry's exact expiry;
    /// - no stale edge: each index member scored in the future is a live
    ///   entry of that bucket carrying that tag, with that expiry;
    /// - every index is filed in its bucket's registry with a score no
    ///   later than its first member's (so the sweep will find it);
    /// - no invalidation snapshot and nothing in flight.
    pub fn check_quiescent(&self) -> Result<(), String> {
        let mut errors = self.check_edges();
        for (b, t) in &self.snapshots {
            errors.push(format!("snapshot x:{} left in bucket {b}", show(t)));
        }
        for (b, inv) in &self.inflight {
            if !inv.is_empty() {
                errors.push(format!("bucket {b} has invalidations in flight: {inv:?}"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }

    /// The edge and registry invariants of [`RawState::check_quiescent`].
    pub fn check_edges(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let now = self.now_ms as f64;
        for ((b, k), e) in &self.entries {
            if *b != bucket_of(k, self.buckets) {
                errors.push(format!("entry {} is in bucket {b}", show(k)));
            }
            if e.expire_at < 0 {
                errors.push(format!("entry {} has no expiry", show(k)));
            }
            for t in &e.tags {
                let score = self
                    .indexes
                    .get(&(*b, t.clone()))
                    .and_then(|m| m.iter().find(|(x, _)| x == k))
                    .map(|(_, s)| *s);
                if score != Some(e.expire_at as f64) {
                    errors.push(format!(
                        "missing edge: entry {} (expires {}) has tag {} but the index scores it {score:?}",
                        show(k),
                        e.expire_at,
                        show(t)
                    ));
                }
            }
        }
        for ((b, t), members) in &self.indexes {
            for (k, s) in members {
                if *s < now {
                    continue; // expired garbage: the sweep's business
                }
                if k.first() == Some(&0) {
                    continue; // a hash group: not an entry string
                }
                match self.entries.get(&(*b, k.clone())) {
                    None => errors.push(format!(
                        "stale edge: index {} of bucket {b} lists {} (score {s}, now {now}) but there is no entry",
                        show(t),
                        show(k)
                    )),
                    Some(e) if !e.tags.contains(t) => errors.push(format!(
                        "stale edge: index {} lists {} whose tags are {:?}",
                        show(t),
                        show(k),
                        e.tags.iter().map(|x| show(x)).collect::<Vec<_>>()
                    )),
                    Some(e) if e.expire_at as f64 != *s => errors.push(format!(
                        "index {} scores {} {s} but it expires at {}",
                        show(t),
                        show(k),
                        e.expire_at
                    )),
                    Some(_) => {}
                }
            }
            let first = members
                .iter()
                .map(|(_, s)| *s)
                .fold(f64::INFINITY, f64::min);
            let filed = self
                .registry
                .get(b)
                .and_then(|r| r.iter().find(|(x, _)| x == t))
                .map(|(_, s)| *s);
            match filed {
                Some(s) if s <= first => {}
                other => errors.push(format!(
                    "index {} of bucket {b} (first expiry {first}) is filed in the registry as {other:?}",
                    show(t)
                )),
            }
        }
        errors
    }
}
