//! The L1's subscription: one dedicated RESP3 connection subscribed to
//! every bucket's shard channel, applying announcements in order and
//! checking their sequence numbers.
//!
//! Why the checks are sound: on one RESP3 connection, Redis writes push
//! messages and command replies into one ordered stream, and the client
//! hands every push to the channel below before it completes the reply
//! that follows it. So when `GET {ns.b}:l1` (on this same connection)
//! answers `v`, every announcement of bucket `b` up to `v` that Redis sent
//! us is already queued here; if the last one applied is still below `v`
//! after the queue is drained, one was lost (a killed connection, an
//! output buffer limit, a message dropped anywhere) and the bucket is
//! dropped. Between checks, a sequence number that skips one shows the
//! loss at once.

use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::announce::{self, Kind};
use super::{DropCause, L1};
use crate::layout::keys::KeySpace;

/// How a session ended.
pub(super) type Ended = String;

/// Where the subscription connects.
pub(crate) enum Backend {
    /// One server: a RESP3 client from [`client`].
    Single(redis::Client),
    /// Redis Cluster: see [`super::cluster_listener`].
    Cluster(super::cluster_listener::Seeds),
}

/// Runs the subscription until the L1 is dropped: connects, subscribes,
/// checks, applies; after a loss, unsyncs the L1 and starts again.
pub(crate) async fn run(
    l1: Weak<L1>,
    backend: Backend,
    space: KeySpace,
    connect_timeout: Duration,
) {
    let mut backoff = Duration::from_millis(50);
    let mut run_id: Option<String> = None;
    let mut warned = false;
    loop {
        let began = std::time::Instant::now();
        let result = match &backend {
            Backend::Single(client) => {
                session(&l1, client, &space, connect_timeout, &mut run_id).await
            }
            Backend::Cluster(seeds) => {
                super::cluster_listener::session(&l1, seeds, &space, connect_timeout).await
            }
        };
        let Some(strong) = l1.upgrade() else { return };
        strong.unsync_all();
        if began.elapsed() > Duration::from_secs(10) {
            // A session that lasted was healthy: a new loss is news.
            warned = false;
            backoff = Duration::from_millis(50);
        }
        match result {
            Ok(()) => return,
            // Once per run of failures; the L1 serves nothing meanwhile.
            Err(why) if !warned => {
                warned = true;
                tracing::warn!(namespace = space.namespace(), reason = %why, "L1 subscription lost; the L1 is bypassed until it is back")
            }
            Err(why) => {
                tracing::debug!(namespace = space.namespace(), reason = %why, "L1 subscription still down")
            }
        }

        drop(strong);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// A RESP3 client for the subscription, from the cache's URL and TLS root.
pub(crate) fn client(url: &str, tls_root: Option<&[u8]>) -> crate::Result<redis::Client> {
    use redis::IntoConnectionInfo;
    let config_error = |e: redis::RedisError| {
        crate::Error::with_source(
            crate::ErrorKind::Config,
            format!("invalid redis url {}", crate::server::conn::redact_url(url)),
            e,
        )
    };
    let info = crate::server::conn::normalize_url(url)
        .as_str()
        .into_connection_info()
        .map_err(config_error)?;
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(redis::ProtocolVersion::RESP3);
    let info = info.set_redis_settings(settings);
    match tls_root {
        None => redis::Client::open(info),
        Some(pem) => redis::Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            },
        ),
    }
    .map_err(config_error)
}

/// One connection's life. `Ok` when the L1 is gone (stop), `Err` when the
/// connection or a check failed (start again).
async fn session(
    l1: &Weak<L1>,
    client: &redis::Client,
    space: &KeySpace,
    connect_timeout: Duration,
    run_id: &mut Option<String>,
) -> Result<(), Ended> {
    let (tx, mut rx) = unbounded_channel::<PushInfo>();
    let config = redis::AsyncConnectionConfig::new()
        .set_push_sender(tx)
        .set_connection_timeout(Some(connect_timeout))
        .set_response_timeout(Some(connect_timeout));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    // A restarted Redis (new run id) lost everything: whatever the
    // counters say, nothing kept may be served.
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .map_err(|e| format!("INFO: {e}"))?;
    let id = info
        .lines()
        .find_map(|l| l.strip_prefix("run_id:"))
        .map(|s| s.trim().to_owned());
    if run_id.is_some() && *run_id != id {
        if let Some(l1) = l1.upgrade() {
            l1.drop_all(DropCause::Disconnect);
            for b in 0..space.buckets() {
                l1.set_seq(b, None, false);
            }
        }
    }
    run_id.clone_from(&id);
    // One channel per command: each SSUBSCRIBE is answered by exactly one
    // confirmation, which the client takes as its reply.
    for b in 0..space.buckets() {
        redis::cmd("SSUBSCRIBE")
            .arg(space.l1(b))
            .query_async::<Value>(&mut conn)
            .await
            .map_err(|e| format!("SSUBSCRIBE: {e}"))?;
    }
    let channels: std::collections::HashMap<Vec<u8>, u16> =
        (0..space.buckets()).map(|b| (space.l1(b), b)).collect();
    let mut period = {
        let Some(l1) = l1.upgrade() else {
            return Ok(());
        };
        l1.options().check_period
    };
    check(l1, &mut conn, &mut rx, space, &channels, true).await?;
    let mut ticker = check_ticker(period).await;
    loop {
        tokio::select! {
            push = rx.recv() => {
                let Some(push) = push else { return Err("connection closed".into()) };
                let Some(l1) = l1.upgrade() else { return Ok(()) };
                apply(&l1, push, &channels, None)?;
            }
            _ = ticker.tick() => {
                check(l1, &mut conn, &mut rx, space, &channels, false).await?;
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

/// Reads every bucket's counter on the subscribed connection, applies what
/// was queued before the answer, and drops the buckets whose last applied
/// announcement is below their counter. The first check of a session
/// (`first`) sets each bucket's baseline instead: a bucket whose counter
/// moved while the L1 was not subscribed is dropped.
async fn check(
    l1: &Weak<L1>,
    conn: &mut MultiplexedConnection,
    rx: &mut UnboundedReceiver<PushInfo>,
    space: &KeySpace,
    channels: &std::collections::HashMap<Vec<u8>, u16>,
    first: bool,
) -> Result<(), Ended> {
    let mut pipe = redis::pipe();
    for b in 0..space.buckets() {
        pipe.cmd("GET").arg(space.l1(b));
    }
    let counters: Vec<Option<u64>> = pipe
        .query_async(conn)
        .await
        .map_err(|e| format!("counter check: {e}"))?;
    let Some(l1) = l1.upgrade() else {
        return Ok(());
    };
    let counters: Vec<u64> = counters
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect();
    if first {
        // Queued messages are at most the counters (published after the
        // subscription, before the answer): apply them (they only drop),
        // then start each bucket at its counter.
        let mut queued = Vec::new();
        while let Ok(push) = rx.try_recv() {
            queued.push(push);
        }
        for (b, &v) in (0u16..).zip(&counters) {
            // (No baseline yet: the L1 of this bucket is empty.)
            if l1.last_seq(b).is_some_and(|last| last != v) {
                l1.drop_bucket(b, DropCause::Disconnect);
            }
            l1.set_seq(b, Some(v), true);
        }
        for push in queued {
            apply(&l1, push, channels, Some(&counters))?;
        }
        l1.confirm();
        return Ok(());
    }
    while let Ok(push) = rx.try_recv() {
        apply(&l1, push, channels, None)?;
    }
    for (b, &v) in (0u16..).zip(&counters) {
        if l1.last_seq(b).unwrap_or(0) < v {
            l1.drop_bucket(b, DropCause::Gap);
            l1.set_seq(b, Some(v), true);
        }
    }
    l1.confirm();
    Ok(())
}

/// Applies one push: an announcement in sequence is applied; one that
/// skips a number drops its bucket first. `baseline`: the counters read at
/// the start of a session (messages at or below them were already counted).
fn apply(
    l1: &Arc<L1>,
    push: PushInfo,
    channels: &std::collections::HashMap<Vec<u8>, u16>,
    baseline: Option<&[u64]>,
) -> Result<(), Ended> {
    match push.kind {
        PushKind::SMessage | PushKind::Message => {}
        PushKind::Disconnection => return Err("disconnected".into()),
        PushKind::SUnsubscribe | PushKind::Unsubscribe => {
            // Redis drops shard subscriptions when a slot moves away.
            return Err("unsubscribed by the server".into());
        }
        _ => return Ok(()),
    }
    let mut data = push.data.into_iter();
    let (Some(Value::BulkString(channel)), Some(Value::BulkString(msg))) =
        (data.next(), data.next())
    else {
        return Ok(());
    };
    let Some(&bucket) = channels.get(&channel) else {
        return Ok(());
    };
    let Some(a) = announce::parse(&msg) else {
        return Ok(());
    };
    if baseline.is_some_and(|c| a.seq <= c[usize::from(bucket)]) {
        // (A MULTI's message, numbered 0, lands here too: if it was in
        // fact published after the baseline, the next check sees one
        // more than was counted and drops the bucket: safe.)
        apply_change(l1, bucket, &a, a.seq);
        return Ok(());
    }
    apply_in_sequence(l1, bucket, &a);
    Ok(())
}

/// The counter checks' clock (both listeners): every `period`, a late
/// tick delayed rather than bunched, its immediate first tick taken.
pub(super) async fn check_ticker(period: Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    ticker
}

/// Applies an announcement past the session's baseline (both listeners):
/// in sequence it is applied; one that skips a number drops its bucket
/// first.
pub(super) fn apply_in_sequence(l1: &Arc<L1>, bucket: u16, a: &announce::Announcement) {
    let seq = match (a.seq, l1.last_seq(bucket)) {
        // From a MULTI: the INCR beside it made it the next number.
        (0, Some(last)) => last + 1,
        (s, Some(last)) if s == last + 1 => s,
        (s, _) => {
            l1.drop_bucket(bucket, DropCause::Gap);
            s
        }
    };
    l1.set_seq(bucket, Some(seq), true);
    // A MULTI's number is inferred: it excuses no read (see `Seen`).
    apply_change(l1, bucket, a, if a.seq == 0 { u64::MAX } else { seq });
    l1.record_lag(announce::wall_us().saturating_sub(a.time_us));
}

pub(super) fn apply_change(l1: &Arc<L1>, bucket: u16, a: &announce::Announcement, seq: u64) {
    let seq = if seq == 0 { u64::MAX } else { seq };
    match a.kind {
        Kind::Keys => l1.keys_announced(bucket, seq, &a.items),
        Kind::Tags => l1.tags_announced(bucket, seq, &a.items),
        Kind::Clear => l1.drop_bucket(bucket, DropCause::Announcement),
    }
}
