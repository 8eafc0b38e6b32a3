//! `tagcache demo`: what tagcache is for, on a terminal, in about 20 s.
//!
//! A shop catalogue ([`catalogue`]) whose pages are read through the cache
//! by concurrent readers while writers change products and invalidate
//! every page showing them ([`workers`]). A live table ([`view`]) shows
//! throughput, hit ratio, latency, the namespace's size, invalidations
//! and the longest Redis stall a 1 ms PING probe saw. At the end the demo
//! checks its invariants — no stale page served after its invalidation
//! returned, no KEYS or SCAN — and exits 2 if one broke.
//!
//! With `--l1`, both this process and a second demo process ([`peer`])
//! read through the in-process L1 tier: the table adds both L1s' hit
//! ratios, the announcement lag and the peer's stale reads, and the
//! invariants include none past the L1's staleness bound.
//!
//! Without `--url` / `REDIS_URL` it runs on a private redis-server,
//! stopped at exit (and on Ctrl-C). With one, it writes only into a
//! namespace of its own, `tagcache-demo-<pid>`, and invalidates what it
//! wrote before it exits.

mod catalogue;
mod meter;
mod peer;
mod view;
mod workers;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{value_parser, Args};
use redis::aio::MultiplexedConnection;
use tagcache::Cache;

use crate::cmd::{Context, JsonFlag};
use crate::error::{CliError, Result};
use crate::output;
use crate::target::Target;
use catalogue::{category_tags, Catalogue};
use meter::Meter;
use tagcache_testkit::StallProbe;
use view::{Live, Summary, Tick};
use workers::Crew;

/// How often the background sweep runs in the demo (pages expire after
/// 10 s: the sweep keeps their index members from piling up).
const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// How long workers get to finish their current call at the end.
const WIND_DOWN: Duration = Duration::from_secs(5);

/// Options of `tagcache demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// How long the traffic runs.
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = value_parser!(u64).range(1..=3600))]
    pub seconds: u64,

    /// Concurrent readers.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = value_parser!(u32).range(1..=512))]
    pub readers: u32,

    /// Concurrent writers (each updates about 40 products a second).
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = value_parser!(u32).range(0..=64))]
    pub writers: u32,

    /// Read through the in-process L1 tier (docs/l1.md), here and in a
    /// second demo process started on the same server: the live table
    /// shows both L1s' hit ratios and the announcement lag, and the
    /// invariants include no read of the second process past the L1's
    /// staleness bound.
    #[arg(long)]
    pub l1: bool,

    /// Internal: run as the `--l1` demo's second process, reading the
    /// pages of namespace NAMESPACE.
    #[arg(long, hide = true, value_name = "NAMESPACE")]
    pub peer: Option<String>,

    #[command(flatten)]
    pub out: JsonFlag,
}

/// Runs the demo; exit 0 when its invariants held, 2 otherwise.
pub async fn run(args: DemoArgs, ctx: &Context) -> Result<ExitCode> {
    let target = Target::given_or_private(ctx.global.url.as_deref()).await?;
    if target.is_cluster() {
        return Err(CliError::error(
            "the demo runs on a single server (it reads the server's command statistics): pass a redis:// URL, or no URL for a private server",
        ));
    }
    if let Some(namespace) = &args.peer {
        peer::run(&target, namespace, args.readers, args.seconds).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let namespace = format!("tagcache-demo-{}", std::process::id());
    let mut builder = Cache::builder(target.url())
        .namespace(&namespace)
        .auto_sweep(Some(SWEEP_EVERY));
    if args.l1 {
        builder = builder.l1(peer::l1_options());
    }
    let cache = builder
        .build()
        .await
        .map_err(|e| target.cannot_connect(e))?;
    let outcome = traffic(&args, ctx, &target, &cache).await;
    // A given server gets back nothing of the demo's pages (a private one
    // goes away with everything in it).
    let cleaned = if target.is_private() {
        Ok(())
    } else {
        clean_up(&cache).await
    };
    let summary = outcome?;
    cleaned?;
    if ctx.json(args.out) {
        output::json(&summary.json());
    } else {
        output::print(&summary.text());
    }
    let broken = summary.broken();
    if broken.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::error(format!(
            "demo invariant broken: {}",
            broken.join("; ")
        )))
    }
}

/// Starts the probe, readers, writers and sampler; shows a tick a second
/// until the time is up or Ctrl-C; stops them and sums up.
async fn traffic(
    args: &DemoArgs,
    ctx: &Context,
    target: &Target,
    cache: &Cache,
) -> Result<Summary> {
    let client = target.client()?;
    let mut raw = raw_connection(&client, target).await?;
    let calls_before = keys_and_scans(&mut raw).await?;
    let probe = StallProbe::start_live(&client)?;
    let peer = if args.l1 {
        let namespace = cache.namespace();
        let peer = peer::Peer::start(target, namespace, args.readers, args.seconds)?;
        Some((peer, peer::SharedFences::new(raw.clone(), namespace)))
    } else {
        None
    };
    let crew = Crew {
        cache: cache.fail_safe(),
        catalogue: Arc::new(Catalogue::new()),
        meter: Arc::new(Meter::default()),
        stop: Arc::new(AtomicBool::new(false)),
        fences: peer.as_ref().map(|p| p.1.clone()),
    };
    let tasks = workers::spawn(&crew, cache, args.readers, args.writers);
    let title = format!(
        "tagcache demo · {} readers, {} writers · {}",
        args.readers,
        args.writers,
        target.shown()
    );
    let mut live = Live::choose(ctx.quiet(), ctx.json(args.out));
    let l1 = peer.as_ref().map(|p| (cache, &p.0));
    let watched = watch(args, ctx, &crew, &probe, &mut live, &title, l1).await;
    crew.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        if tokio::time::timeout(WIND_DOWN, task).await.is_err() {
            tracing::warn!("a demo worker did not stop within {WIND_DOWN:?}");
        }
    }
    let cleared = live.clear();
    let (ran, interrupted) = watched?;
    cleared?;
    let probe = probe.stop().await?;
    let l1 = match peer {
        Some((peer, _)) => {
            let report = peer.stop().await?;
            if !target.is_private() {
                redis::cmd("DEL")
                    .arg(peer::fences_key(cache.namespace()))
                    .query_async::<()>(&mut raw)
                    .await?;
            }
            Some(view::L1Summary {
                own: cache.l1_stats().unwrap_or_default(),
                peer: report,
            })
        }
        None => None,
    };
    let (keys, scans) = keys_and_scans(&mut raw).await?;
    // A last, exact look at the namespace now that traffic has stopped.
    workers::sample(cache, &crew.meter).await?;
    Ok(Summary {
        ran,
        interrupted,
        readers: args.readers,
        writers: args.writers,
        server: target.shown(),
        namespace: cache.namespace().to_owned(),
        counts: crew.meter.counts(),
        latency: crew.meter.overall(),
        pings: probe.pings,
        stall: probe.longest(),
        keys_calls: keys - calls_before.0,
        scan_calls: scans - calls_before.1,
        first_stale: crew.meter.first_stale(),
        l1,
    })
}

/// Shows a tick a second until the time is up or Ctrl-C; says how long the
/// traffic ran and whether Ctrl-C ended it.
async fn watch(
    args: &DemoArgs,
    ctx: &Context,
    crew: &Crew,
    probe: &StallProbe,
    live: &mut Live,
    title: &str,
    l1: Option<(&Cache, &peer::Peer)>,
) -> Result<(Duration, bool)> {
    let run_for = Duration::from_secs(args.seconds);
    let started = Instant::now();
    let (mut last, mut last_at) = (crew.meter.counts(), started);
    let mut last_l1 = view::L1Tick::default();
    loop {
        let mut interrupted = false;
        tokio::select! {
            () = tokio::time::sleep_until((last_at + Duration::from_secs(1)).into()) => {}
            () = ctx.interrupt.requested() => { interrupted = true; }
        }
        let now = Instant::now();
        let counts = crew.meter.counts();
        let tick = Tick {
            at: now - started,
            of: run_for,
            window: now - last_at,
            delta: counts.since(&last),
            latency: crew.meter.take_window(),
            total: counts,
            stall: (probe.take_window(), probe.so_far().1),
            l1: l1.map(|(cache, peer)| {
                let now = view::L1Tick {
                    own: cache.l1_stats().unwrap_or_default(),
                    peer: peer.latest().unwrap_or_default(),
                };
                let tick = (last_l1.clone(), now.clone());
                last_l1 = now;
                tick
            }),
        };
        (last, last_at) = (counts, now);
        live.show(&tick, title)?;
        if interrupted || now - started >= run_for {
            return Ok((started.elapsed(), interrupted));
        }
    }
}

async fn raw_connection(client: &redis::Client, target: &Target) -> Result<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| CliError::error(format!("cannot connect to {}: {e}", target.shown())))
}

/// KEYS and SCAN calls the server has counted since it started (or since
/// CONFIG RESETSTAT).
async fn keys_and_scans(raw: &mut MultiplexedConnection) -> Result<(u64, u64)> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(raw)
        .await?;
    Ok((calls(&info, "keys"), calls(&info, "scan")))
}

/// `calls=` of `cmdstat_<command>` in INFO commandstats.
fn calls(info: &str, command: &str) -> u64 {
    let prefix = format!("cmdstat_{command}:");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').find_map(|kv| kv.strip_prefix("calls=")))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Removes every page the demo wrote, then their expired index members.
async fn clean_up(cache: &Cache) -> Result<()> {
    let removed = cache
        .invalidate_tags(category_tags())
        .await
        .map_err(|e| CliError::from(e).context("cleaning up the demo's namespace"))?;
    cache
        .prune()
        .await
        .map_err(|e| CliError::from(e).context("cleaning up the demo's namespace"))?;
    tracing::info!(removed, namespace = cache.namespace(), "demo pages removed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_calls_are_read_from_commandstats() {
        let info = "# Commandstats\r\ncmdstat_get:calls=12,usec=3\r\ncmdstat_scan:calls=4,usec=9,usec_per_call=2.25\r\n";
        assert_eq!(calls(info, "scan"), 4);
        assert_eq!(calls(info, "keys"), 0);
        assert_eq!(calls(info, "get"), 12);
    }
}
