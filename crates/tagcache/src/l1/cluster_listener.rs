//! The L1's subscription on Redis Cluster: the same contract as
//! [`super::listener`] over redis-rs' cluster client (RESP3, a push
//! sender, `SSUBSCRIBE` of every bucket's shard channel, each routed to the
//! node that owns the bucket's slot).
//!
//! What differs from one server, and why the checks stay sound:
//!
//! - **Pushes come through an extra task.** Each node's connection hands
//!   its pushes to a task of the cluster client, which forwards them here;
//!   a command's reply does not wait for that task, so when a counter's
//!   `GET` answers `v`, announcements up to `v` may still be on their way.
//!   The check therefore runs `l1_check.lua`: in one atomic step it reads
//!   the counter and publishes a marker (unique to this check) on the
//!   bucket's own channel. One node's pushes keep their order through the
//!   forwarding task, and nothing is published between the read and the
//!   marker, so the announcements received before the marker are exactly
//!   those numbered up to `v`: when the marker arrives, a last applied
//!   number other than `v` is a loss (the bucket is dropped). Other
//!   listeners ignore the marker (it is not an announcement).
//! - **`run_id` is per node.** A restarted or failed-over node closes our
//!   connection to it, which the client reports as a `Disconnection` push,
//!   and a slot that moves away unsubscribes us (`SUNSUBSCRIBE` push):
//!   either ends the session, the L1 is dropped (unless it may serve while
//!   down), and the next session starts from fresh counters, keeping a
//!   bucket only if its counter is exactly the last number applied.
//! - **Proof of being in sequence** is dated at the check's *send*: every
//!   change made before it was applied when the last marker arrived.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::announce;
use super::listener::{apply_change, apply_in_sequence, check_ticker, Ended};
use super::{DropCause, L1};
use crate::layout::keys::KeySpace;
use crate::scripts::SCRIPTS;

/// The cluster's seed URLs and TLS root, to open each session's client
/// (a client's push sender is fixed when it is built).
pub(crate) struct Seeds {
    pub(crate) seeds: Vec<String>,
    pub(crate) tls_root: Option<Vec<u8>>,
}

/// Bucket channels by name.
type Channels = HashMap<Vec<u8>, u16>;

/// One cluster connection's life: `Ok` when the L1 is gone, `Err` when the
/// connection, a subscription or a check failed.
pub(super) async fn session(
    l1: &Weak<L1>,
    seeds: &Seeds,
    space: &KeySpace,
    connect_timeout: Duration,
) -> Result<(), Ended> {
    let (tx, mut rx) = unbounded_channel::<PushInfo>();
    let mut builder = redis::cluster::ClusterClient::builder(
        seeds
            .seeds
            .iter()
            .map(|s| crate::server::conn::normalize_url(s)),
    )
    .use_protocol(redis::ProtocolVersion::RESP3)
    .push_sender(tx)
    .connection_timeout(connect_timeout)
    .response_timeout(connect_timeout)
    .retries(1);
    if let Some(pem) = &seeds.tls_root {
        builder = builder.certs(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.clone()),
        });
    }
    let client = builder
        .build()
        .map_err(|e| format!("cluster client: {e}"))?;
    let mut conn = tokio::time::timeout(connect_timeout * 3, client.get_async_connection())
        .await
        .map_err(|_| "connect: timed out".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    // One command per channel: a subscription is routed by its first
    // channel's slot, and each bucket may live on another node.
    for b in 0..space.buckets() {
        conn.ssubscribe(space.l1(b))
            .await
            .map_err(|e| format!("SSUBSCRIBE: {e}"))?;
    }
    let channels: Channels = (0..space.buckets()).map(|b| (space.l1(b), b)).collect();
    let mut period = {
        let Some(l1) = l1.upgrade() else {
            return Ok(());
        };
        l1.options().check_period
    };
    let mut checker = Checker::new(space, connect_timeout);
    checker.run(l1, &conn, &mut rx, &channels, true).await?;
    let mut ticker = check_ticker(period).await;
    loop {
        tokio::select! {
            push = rx.recv() => {
                let Some(push) = push else { return Err("connection closed".into()) };
                let Some(l1) = l1.upgrade() else { return Ok(()) };
                if let Some((bucket, msg)) = message(push, &channels)? {
                    apply(&l1, bucket, &msg, false);
                }
            }
            _ = ticker.tick() => {
                checker.run(l1, &conn, &mut rx, &channels, false).await?;
                let Some(l1) = l1.upgrade() else { return Ok(()) };
                l1.prune_marks();
                if l1.options().check_period != period {
                    period = l1.options().check_period;
                    ticker = tokio::time::interval(period);
                }
            }
        }
    }
}

/// The counter checks of one session.
struct Checker {
    space: KeySpace,
    /// How long the markers may take to come back before the check fails.
    patience: Duration,
    /// Unique to this session (process, listener, session), so a marker of
    /// another listener or an earlier check is never taken for ours.
    token: String,
    n: u64,
}

impl Checker {
    fn new(space: &KeySpace, patience: Duration) -> Self {
        static SESSIONS: AtomicU64 = AtomicU64::new(0);
        let token = format!(
            "m{}.{}.{}",
            std::process::id(),
            SESSIONS.fetch_add(1, Ordering::Relaxed),
            announce::wall_us()
        );
        Self {
            space: space.clone(),
            patience,
            token,
            n: 0,
        }
    }

    /// Reads every bucket's counter with a marker behind it, applies the
    /// announcements up to each bucket's marker, and compares. `first`:
    /// the session's first check, which sets each bucket's baseline (a
    /// bucket whose counter moved while the L1 was not subscribed, or
    /// since the last session, is dropped).
    async fn run(
        &mut self,
        l1: &Weak<L1>,
        conn: &ClusterConnection,
        rx: &mut UnboundedReceiver<PushInfo>,
        channels: &Channels,
        first: bool,
    ) -> Result<(), Ended> {
        self.n += 1;
        let marker = format!("{}.{}", self.token, self.n).into_bytes();
        let sent = Instant::now();
        let reads = (0..self.space.buckets()).map(|b| {
            let mut conn = conn.clone();
            let key = self.space.l1(b);
            let marker = &marker;
            async move {
                SCRIPTS
                    .l1_check
                    .script
                    .key(key)
                    .arg(marker)
                    .invoke_async::<Option<u64>>(&mut conn)
                    .await
            }
        });
        let counters: Vec<u64> = futures_util::future::try_join_all(reads)
            .await
            .map_err(|e| format!("counter check: {e}"))?
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        let mut waiting = counters.len();
        let mut marked = vec![false; counters.len()];
        let deadline = tokio::time::Instant::now() + self.patience;
        while waiting > 0 {
            let push = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .map_err(|_| "counter check: markers did not come back".to_owned())?
                .ok_or_else(|| "connection closed".to_owned())?;
            let Some(l1) = l1.upgrade() else {
                return Ok(());
            };
            let Some((bucket, msg)) = message(push, channels)? else {
                continue;
            };
            let b = usize::from(bucket);
            if msg == marker {
                if !marked[b] {
                    marked[b] = true;
                    waiting -= 1;
                    settle(&l1, bucket, counters[b], first);
                }
                continue;
            }
            // Before its marker, a first check's announcement is one the
            // baseline counts: its change applies, its number does not.
            apply(&l1, bucket, &msg, first && !marked[b]);
        }
        if let Some(l1) = l1.upgrade() {
            l1.confirm_at(sent);
        }
        Ok(())
    }
}

/// A bucket's marker arrived: every announcement up to its counter `v` has
/// been applied, none after. A first check takes `v` as the baseline;
/// otherwise a last number other than `v` means one was lost.
fn settle(l1: &L1, bucket: u16, v: u64, first: bool) {
    let last = l1.last_seq(bucket);
    if first {
        // (No last number: this bucket of the L1 is still empty.)
        if last.is_some_and(|last| last != v) {
            l1.drop_bucket(bucket, DropCause::Disconnect);
        }
    } else if last != Some(v) {
        l1.drop_bucket(bucket, DropCause::Gap);
    }
    l1.set_seq(bucket, Some(v), true);
}

/// The bucket and payload of a shard message; `Err` for a push that ends
/// the session (the connection to a node lost, a slot moved away).
fn message(push: PushInfo, channels: &Channels) -> Result<Option<(u16, Vec<u8>)>, Ended> {
    match push.kind {
        PushKind::SMessage => {}
        PushKind::Disconnection => return Err("disconnected from a node".into()),
        PushKind::SUnsubscribe => return Err("unsubscribed by the server".into()),
        _ => return Ok(None),
    }
    let mut data = push.data.into_iter();
    let (Some(Value::BulkString(channel)), Some(Value::BulkString(msg))) =
        (data.next(), data.next())
    else {
        return Ok(None);
    };
    Ok(channels.get(&channel).map(|&b| (b, msg)))
}

/// Applies one announcement. `counted`: it is at or below the baseline
/// being set (its change applies, its number is not checked). Otherwise an
/// announcement in sequence is applied, and one that skips a number drops
/// its bucket first.
fn apply(l1: &Arc<L1>, bucket: u16, msg: &[u8], counted: bool) {
    let Some(a) = announce::parse(msg) else {
        return;
    };
    if counted {
        apply_change(l1, bucket, &a, a.seq);
        return;
    }
    apply_in_sequence(l1, bucket, &a);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::L1Options;

    fn msg(seq: u64) -> Vec<u8> {
        let mut m = format!("k{seq} 1\n").into_bytes();
        m.extend_from_slice(&[0, 1, b'x']);
        m
    }

    fn l1() -> Arc<L1> {
        Arc::new(L1::new(L1Options::new(), 2, "t"))
    }

    #[test]
    fn a_first_check_counts_what_came_before_its_marker_and_starts_at_the_counter() {
        let l1 = l1();
        // Before the marker: numbered at or below the counter (5), counted.
        apply(&l1, 0, &msg(4), true);
        apply(&l1, 0, &msg(0), true);
        settle(&l1, 0, 5, true);
        assert_eq!(l1.last_seq(0), Some(5));
        // After it: the next numbers, a MULTI's 0 included.
        apply(&l1, 0, &msg(6), false);
        apply(&l1, 0, &msg(0), false);
        assert_eq!(l1.last_seq(0), Some(7));
        let s = l1.stats();
        assert_eq!((s.dropped_by_gap, s.dropped_by_disconnect), (0, 0), "{s:?}");
    }

    #[test]
    fn a_marker_behind_a_missing_announcement_is_a_gap() {
        let l1 = l1();
        settle(&l1, 1, 3, true);
        apply(&l1, 1, &msg(4), false);
        // The counter says 5, the marker came right behind 4: 5 was lost.
        settle(&l1, 1, 5, false);
        assert_eq!(l1.stats().dropped_by_gap, 1);
        assert_eq!(l1.last_seq(1), Some(5));
        // In sequence again: no more drops.
        apply(&l1, 1, &msg(6), false);
        settle(&l1, 1, 6, false);
        assert_eq!(l1.stats().dropped_by_gap, 1);
    }

    #[test]
    fn a_new_session_keeps_a_bucket_only_at_its_last_number() {
        let l1 = l1();
        settle(&l1, 0, 2, true);
        settle(&l1, 1, 2, true);
        // Next session: bucket 0 unchanged, bucket 1 moved meanwhile.
        settle(&l1, 0, 2, true);
        settle(&l1, 1, 4, true);
        assert_eq!(l1.stats().dropped_by_disconnect, 1);
    }

    #[test]
    fn disconnections_and_lost_slots_end_the_session_and_markers_are_ignored() {
        let channels: Channels = [(b"c".to_vec(), 0)].into_iter().collect();
        let push = |kind| PushInfo {
            kind,
            data: vec![
                Value::BulkString(b"c".to_vec()),
                Value::BulkString(b"m1.2".to_vec()),
            ],
        };
        assert!(message(push(PushKind::Disconnection), &channels).is_err());
        assert!(message(push(PushKind::SUnsubscribe), &channels).is_err());
        let got = message(push(PushKind::SMessage), &channels).unwrap();
        assert_eq!(got, Some((0, b"m1.2".to_vec())));
        // Another listener's marker is no announcement.
        assert!(announce::parse(b"m1.2").is_none());
    }
}
