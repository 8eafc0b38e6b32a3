//! Single flight across processes: a read-through miss takes the key's load
//! lease (`{<ns>.<b>}:l:<key>`, `SET NX PX` with a token) before its loader
//! runs; a miss that finds the lease taken polls the entry until the
//! holder's value is there, the lease is gone (it takes it), or its wait
//! bound passes (it loads without the lease). Leases are released by
//! compare-and-delete (`lease_release.lua`) and expire if their holder
//! dies. Stores stay fenced: the lease only saves loader runs, it never
//! decides what is stored.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cache::Cache;
use crate::error::Result;
use crate::layout::codec::{self, is_stale};
use crate::layout::keys::{validate_key, KeySpace};
use crate::options::LeaseConfig;
use crate::scripts::{ScriptCall, SCRIPTS};

/// First pause between two polls of a waiter; doubles up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(5);
/// Longest pause between two polls.
const MAX_POLL: Duration = Duration::from_millis(100);

/// A lease this process holds; released (compare-and-delete) when dropped,
/// in the background if [`Held::release`] was not awaited.
#[derive(Debug)]
pub(crate) struct Held {
    cache: Cache,
    name: Vec<u8>,
    token: String,
    released: bool,
}

impl Held {
    /// Gives the lease back, if it is still ours.
    pub(crate) async fn release(mut self) {
        // A failed release only leaves the lease to expire. If this future
        // is dropped midway, `drop` releases in the background (releasing
        // twice is harmless: compare-and-delete).
        let _ = release(&self.cache, &self.name, &self.token).await;
        self.released = true;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // The holder's future was dropped (cancelled) before it released.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (cache, name, token) = (
                self.cache.clone(),
                std::mem::take(&mut self.name),
                std::mem::take(&mut self.token),
            );
            rt.spawn(async move {
                let _ = release(&cache, &name, &token).await;
            });
        }
    }
}

async fn release(cache: &Cache, name: &[u8], token: &str) -> Result<()> {
    let mut call = ScriptCall::new(&SCRIPTS.lease_release, &[name]);
    call.arg(token);
    cache.core_arc().conn.run::<i64>(&call).await.map(drop)
}

/// What a miss gets from the lease.
#[derive(Debug)]
pub(crate) enum Leased {
    /// This process holds the lease: load, store (fenced by `since`),
    /// release.
    Held(Held, u64),
    /// Another process loaded and stored the value: the entry's bytes.
    Value(Vec<u8>),
    /// The wait bound passed: load without the lease, fenced by `since`.
    Alone(u64),
}

/// The lease key of `key` and the round trip that tries to take it and
/// reads the entry after: `SET <lease> <token> NX PX <ms>`, `GET <entry>`,
/// `TIME` (one slot: the lease shares the entry's bucket).
fn lease_pipeline(
    space: &KeySpace,
    key: &[u8],
    token: &str,
    lease_ms: u64,
) -> (Vec<u8>, redis::Pipeline) {
    let bucket = space.bucket_of(key);
    let name = space.lease(bucket, key);
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(&name)
        .arg(token)
        .arg("NX")
        .arg("PX")
        .arg(lease_ms)
        .cmd("GET")
        .arg(space.entry_name(bucket, key))
        .cmd("TIME");
    (name, pipe)
}

/// A token no other holder has: process id, a per-process counter and the
/// clock in ns.
fn token() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:x}.{:x}.{:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

impl Cache {
    /// One round trip: tries to take the key's lease (`SET NX PX`), then
    /// reads the entry and Redis' clock (µs). Reading after the `SET`
    /// means a value stored before this lease was taken is always seen.
    async fn lease_and_read(
        &self,
        key: &[u8],
        cfg: LeaseConfig,
    ) -> Result<(Option<Held>, Option<Vec<u8>>, u64)> {
        let core = self.core_arc();
        validate_key(key)?;
        let token = token();
        let (name, pipe) = lease_pipeline(&core.space, key, &token, cfg.lease_ms());
        type Reply = (Option<String>, Option<Vec<u8>>, (u64, u64));
        let (taken, raw, (secs, micros)): Reply = core.conn.pipe(&pipe).await?;
        let held = taken.map(|_| Held {
            cache: self.clone(),
            name,
            token,
            released: false,
        });
        Ok((held, raw, secs * 1_000_000 + micros))
    }

    /// Tries once to take the key's lease; `None` when another holds it.
    pub(crate) async fn try_lease(&self, key: &[u8], cfg: LeaseConfig) -> Result<Option<Held>> {
        Ok(self.lease_and_read(key, cfg).await?.0)
    }

    /// Takes the key's lease, or waits for the holder's value. Every
    /// `since` returned was read before the caller's loader runs, so its
    /// store stays fenced.
    pub(crate) async fn lease_or_wait(&self, key: &[u8], cfg: LeaseConfig) -> Result<Leased> {
        let deadline = Instant::now() + cfg.max_wait;
        let mut pause = FIRST_POLL;
        let mut waited = false;
        loop {
            let (held, raw, since) = self.lease_and_read(key, cfg).await?;
            if let Some(raw) = raw {
                let fresh = codec::decode_entry(&raw).is_ok_and(|d| !is_stale(&d, since / 1000));
                if fresh {
                    if let Some(held) = held {
                        held.release().await;
                    }
                    if waited {
                        crate::observe::count_wait(self.namespace(), "redis", "value");
                    }
                    return Ok(Leased::Value(raw));
                }
            }
            if let Some(held) = held {
                if waited {
                    crate::observe::count_wait(self.namespace(), "redis", "took_over");
                }
                return Ok(Leased::Held(held, since));
            }
            waited = true;
            let now = Instant::now();
            if now >= deadline {
                crate::observe::count_wait(self.namespace(), "redis", "timed_out");
                return Ok(Leased::Alone(since));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_round_trip_sends_set_nx_px_get_time_in_the_entrys_bucket() {
        let space = KeySpace::new("ns", 1).unwrap();
        let (name, pipe) = lease_pipeline(&space, b"user:7", "tok", 5000);
        assert_eq!(name, b"{ns.0}:l:user:7");
        let packed = String::from_utf8(pipe.get_packed_pipeline()).unwrap();
        let words: Vec<&str> = packed
            .split("\r\n")
            .filter(|l| !l.is_empty() && !l.starts_with('*') && !l.starts_with('$'))
            .collect();
        assert_eq!(
            words,
            [
                "SET",
                "{ns.0}:l:user:7",
                "tok",
                "NX",
                "PX",
                "5000",
                "GET",
                "{ns.0}:e:user:7",
                "TIME"
            ]
        );
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(token(), token());
    }
}
