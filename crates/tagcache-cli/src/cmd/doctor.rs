//! `tagcache doctor`: is this Redis fit for tagcache? Each check prints
//! ok, warn, fail or skip; any failure makes the exit code 2.
//!
//! The checks are the library's own startup checks (version, scripts,
//! layout, eviction policy: `CacheBuilder::build` runs them in that order
//! and stops at the first failure), each reported on its own, plus a
//! round-trip measurement and the invalidations in flight (abandoned ones
//! warn). It writes nothing: the namespace is opened only if it exists.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use comfy_table::Table;
use serde_json::json;
use tagcache::{Cache, ErrorKind, EvictionCheck, InflightInvalidation};

use crate::cmd::{stats, Context, JsonFlag};
use crate::error::{CliError, Result};
use crate::output;
use crate::target::Target;

/// PINGs sent to measure the round trip.
const PINGS: usize = 20;
/// How long one call may take: generous, so that a slow server gets as
/// far as the latency check (which says how slow it is) instead of
/// failing with a bare timeout.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The fail-safe view's default operation timeout: a round trip this slow
/// makes most calls bypass the cache.
const FAIL_LATENCY: Duration = Duration::from_millis(100);
/// Round trips worth a warning (a remote or overloaded server).
const WARN_P50: Duration = Duration::from_millis(10);
const WARN_MAX: Duration = Duration::from_millis(50);

/// Options of `tagcache doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub out: JsonFlag,
}

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Fail,
    /// Not checked: an earlier check failed.
    Skip,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "fail",
            Self::Skip => "skip",
        }
    }
}

#[derive(Debug)]
struct Check {
    id: &'static str,
    title: &'static str,
    status: Status,
    detail: String,
}

fn check(
    id: &'static str,
    title: &'static str,
    status: Status,
    detail: impl Into<String>,
) -> Check {
    Check {
        id,
        title,
        status,
        detail: detail.into(),
    }
}

/// Runs the checks and prints them; exit 2 when one failed.
pub async fn run(args: DoctorArgs, ctx: &Context) -> Result<ExitCode> {
    let target = Target::given(ctx.global.url.as_deref())?;
    let ns = ctx.global.namespace.as_str();
    // Never writes: a namespace that does not exist is reported, not
    // created (nor given a bucket count).
    let built = Cache::builder(target.url())
        .namespace(ns)
        .auto_sweep(None)
        .connect_timeout(RESPONSE_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .eviction_check(EvictionCheck::Refuse)
        .existing_namespace()
        .build()
        .await;
    let built = match built {
        // Nothing to examine without a server that answers us.
        Err(e) if e.is_unavailable() || e.is_invalid_input() => {
            return Err(target.cannot_connect(e))
        }
        other => other,
    };
    let mut raw = match connect_raw(&target).await {
        Ok(raw) => raw,
        Err(raw_error) => {
            return Err(match built {
                Err(e) => target.cannot_connect(e),
                Ok(_) => raw_error,
            })
        }
    };
    let version = server_version(&mut raw).await?;
    let policy = eviction_policy(&mut raw).await;
    let version_ok = at_least_7(&version);
    let mut checks = vec![check(
        "redis_version",
        "redis version",
        if version_ok { Status::Ok } else { Status::Fail },
        if version_ok {
            version.clone()
        } else {
            format!("{version}: tagcache needs Redis 7.0 or newer")
        },
    )];
    checks.extend(startup_checks(&built, ns, policy.as_deref(), version_ok));
    checks.push(latency_check(&mut raw).await?);
    let (invalidations, in_flight) = invalidations_check(&built).await;
    checks.push(invalidations);
    report(&checks, ns, &in_flight, ctx.json(args.out));
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.title)
        .collect();
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::error(format!(
            "{} check(s) failed: {}",
            failed.len(),
            failed.join(", ")
        )))
    }
}

/// A plain connection for INFO, CONFIG GET and PING (on a cluster: the
/// first seed node).
async fn connect_raw(target: &Target) -> Result<redis::aio::MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(RESPONSE_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    target
        .node_client()?
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| target.cannot_connect(tagcache::Error::from(e)))
}

async fn server_version(raw: &mut redis::aio::MultiplexedConnection) -> Result<String> {
    let info: String = redis::cmd("INFO").arg("server").query_async(raw).await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("unknown")
        .trim()
        .to_owned())
}

/// `None` when CONFIG is refused (managed services often rename it).
async fn eviction_policy(raw: &mut redis::aio::MultiplexedConnection) -> Option<String> {
    let reply: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(raw)
        .await
        .ok()?;
    reply.into_iter().nth(1)
}

fn at_least_7(version: &str) -> bool {
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    major.is_some_and(|m| m >= 7)
}

/// Scripts, layout and eviction policy, read off the library's startup
/// checks (which run in that order and stop at the first failure).
fn startup_checks(
    built: &tagcache::Result<Cache>,
    ns: &str,
    policy: Option<&str>,
    version_ok: bool,
) -> [Check; 3] {
    let scripts_ok = || check("scripts", "script loading", Status::Ok, "loaded and run");
    let layout_ok = || {
        check(
            "layout",
            "layout version",
            Status::Ok,
            format!("namespace {ns}: version {}", tagcache::LAYOUT_VERSION),
        )
    };

    let skipped =
        |id, title, why: &str| check(id, title, Status::Skip, format!("not checked: {why}"));
    match built {
        Ok(_) => [policy_check(policy), scripts_ok(), layout_ok()],
        Err(e) => match e.kind() {
            ErrorKind::UnsafeEvictionPolicy => [
                check(
                    "eviction_policy",
                    "eviction policy",
                    Status::Fail,
                    e.to_string(),
                ),
                scripts_ok(),
                layout_ok(),
            ],
            ErrorKind::NamespaceNotFound => [
                policy_check(policy),
                scripts_ok(),
                check(
                    "layout",
                    "layout version",
                    Status::Ok,
                    format!("namespace {ns} does not exist yet: the first write creates it"),
                ),
            ],
            ErrorKind::Layout => [
                skipped(
                    "eviction_policy",
                    "eviction policy",
                    "the layout check failed",
                ),
                scripts_ok(),
                check("layout", "layout version", Status::Fail, e.to_string()),
            ],
            _ if !version_ok => [
                skipped("eviction_policy", "eviction policy", "needs Redis 7.0"),
                skipped("scripts", "script loading", "needs Redis 7.0"),
                skipped("layout", "layout version", "needs Redis 7.0"),
            ],
            _ => [
                skipped("eviction_policy", "eviction policy", "scripts failed"),
                check("scripts", "script loading", Status::Fail, e.to_string()),
                skipped("layout", "layout version", "scripts failed"),
            ],
        },
    }
}

/// What a policy means for tagcache.
fn policy_check(policy: Option<&str>) -> Check {
    let (status, detail) = match policy {
        None | Some("") => (
            Status::Warn,
            "unreadable (CONFIG GET refused): make sure it is noeviction or volatile-*".to_owned(),
        ),
        Some(p @ "noeviction") => (
            Status::Ok,
            format!("{p}: writes fail when memory is full, nothing is evicted"),
        ),
        Some(p) if p.starts_with("volatile-") => (
            Status::Ok,
            format!("{p}: only entries (they have a TTL) are evicted, never indexes"),
        ),
        // The library refuses these at build (a namespace that does not
        // exist is not built, so say it here).
        Some(p) if p.starts_with("allkeys-") => (
            Status::Fail,
            format!(
                "{p}: can evict index keys while their entries live; use noeviction or volatile-*"
            ),
        ),
        Some(p) => (
            Status::Warn,
            format!("{p}: unknown policy; indexes could be evicted while their entries live"),
        ),
    };
    check("eviction_policy", "eviction policy", status, detail)
}

async fn latency_check(raw: &mut redis::aio::MultiplexedConnection) -> Result<Check> {
    let mut waits = Vec::with_capacity(PINGS);
    for _ in 0..PINGS {
        let sent = Instant::now();
        redis::cmd("PING").query_async::<()>(raw).await?;
        waits.push(sent.elapsed());
    }
    waits.sort_unstable();
    let p50 = waits[PINGS / 2];
    let max = waits[PINGS - 1];
    let status = if p50 >= FAIL_LATENCY {
        Status::Fail
    } else if p50 >= WARN_P50 || max >= WARN_MAX {
        Status::Warn
    } else {
        Status::Ok
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut detail = format!(
        "p50 {:.2} ms, max {:.2} ms ({PINGS} PINGs)",
        ms(p50),
        ms(max)
    );
    if status == Status::Fail {
        detail.push_str(&format!(
            ": above the fail-safe timeout of {} ms, most calls would bypass the cache",
            FAIL_LATENCY.as_millis()
        ));
    }
    Ok(check("latency", "round trip", status, detail))
}

/// Invalidations in flight, and above all those a crashed process left
/// for the sweep: a warning says which, how much is left, and when the
/// sweep finishes them.
async fn invalidations_check(
    built: &tagcache::Result<Cache>,
) -> (Check, Vec<InflightInvalidation>) {
    let (id, title) = ("invalidations", "invalidations");
    let cache = match built {
        Ok(cache) => cache,
        Err(e) if e.kind() == ErrorKind::NamespaceNotFound => {
            return (
                check(id, title, Status::Ok, "none (no namespace yet)"),
                Vec::new(),
            )
        }
        Err(_) => {
            let skipped = check(
                id,
                title,
                Status::Skip,
                "not checked: the cache could not be opened",
            );
            return (skipped, Vec::new());
        }
    };
    let stats = match cache.stats().await {
        Ok(stats) => stats,
        Err(e) => {
            return (
                check(id, title, Status::Warn, format!("cannot read them: {e}")),
                Vec::new(),
            )
        }
    };
    let abandoned: Vec<&InflightInvalidation> =
        stats.invalidations.iter().filter(|i| i.abandoned).collect();
    let detail = match (stats.invalidations_in_flight, abandoned.as_slice()) {
        (0, _) => "none in flight".to_owned(),
        (n, []) => format!("{n} in flight, none abandoned"),
        (n, abandoned) => {
            let mut text = format!(
                "{n} in flight, {} abandoned by a stopped process: ",
                abandoned.len()
            );
            let shown: Vec<String> = abandoned
                .iter()
                .take(3)
                .map(|i| stats::describe(i))
                .collect();
            text.push_str(&shown.join("; "));
            if abandoned.len() > 3 {
                text.push_str(&format!(
                    "; and {} more (tagcache stats)",
                    abandoned.len() - 3
                ));
            }
            text
        }
    };
    let status = if abandoned.is_empty() {
        Status::Ok
    } else {
        Status::Warn
    };
    (check(id, title, status, detail), stats.invalidations)
}

fn report(checks: &[Check], ns: &str, in_flight: &[InflightInvalidation], json: bool) {
    if json {
        let list: Vec<serde_json::Value> = checks
            .iter()
            .map(|c| json!({ "check": c.id, "status": c.status.as_str(), "detail": c.detail }))
            .collect();
        let ok = checks.iter().all(|c| c.status != Status::Fail);
        output::json(&json!({
            "namespace": ns,
            "ok": ok,
            "checks": list,
            "invalidations": stats::invalidations_json(in_flight),
        }));
        return;
    }
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    for c in checks {
        table.add_row(vec![c.status.as_str(), c.title, c.detail.as_str()]);
    }
    output::print(&output::plain_table(&table));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_floor() {
        assert!(at_least_7("7.0.15"));
        assert!(at_least_7("8.2.0"));
        assert!(!at_least_7("6.2.14"));
        assert!(!at_least_7("unknown"));
    }

    #[test]
    fn policies_are_explained() {
        assert_eq!(policy_check(Some("noeviction")).status, Status::Ok);
        assert_eq!(policy_check(Some("volatile-lru")).status, Status::Ok);
        assert_eq!(policy_check(None).status, Status::Warn);
        assert_eq!(policy_check(Some("something-new")).status, Status::Warn);
    }
}
