//! Situation 2 of the brief: "is branch B protected in project P?" asked
//! constantly, answered from one Redis hash per project: hashed field
//! names, a tiny boolean value, TTL fixed at creation, a cap of fields,
//! dropped when the project's rules change, hit/miss counts and a dry-run
//! mode that reports mismatches.
//!
//! `cargo run --example protected_branches` (private redis-server unless
//! `REDIS_URL` is set). Exits non-zero when an outcome is wrong.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tagcache::{Cache, Fetched};

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("protected_branches: {what}"))
    }
}

/// The "database": protected branches are `main` and `release/*`.
fn is_protected(branch: &str, rules_version: u32) -> bool {
    branch == "main" || branch.starts_with("release/") || (rules_version > 1 && branch == "develop")
}

/// The scenario against the Redis at `url`.
pub async fn run(url: &str) -> Result<(), String> {
    let cache = Cache::builder(url)
        .namespace(format!("protected-branches-{}", std::process::id()))
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let loads = AtomicU32::new(0);
    let project = cache
        .group("protected_branches", 42)
        .map_err(|e| e.to_string())?
        .default_ttl(Duration::from_secs(3600))
        .cap(1000)
        .tag("project:42");
    let ask = |branch: &'static str, version: u32| {
        let loads = &loads;
        let project = project.clone();
        async move {
            project
                .fetch(branch, || async {
                    loads.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, String>(is_protected(branch, version))
                })
                .await
                .map(tagcache::Computed::into_parts)
                .map_err(|e| e.to_string())
        }
    };
    let (main, how) = ask("main", 1).await?;
    check(main && how == Fetched::Miss, "first ask computes")?;
    let (main, how) = ask("main", 1).await?;
    check(main && how == Fetched::Hit, "second ask hits")?;
    let (dev, _) = ask("develop", 1).await?;
    check(!dev, "develop is not protected yet")?;
    let ttl_before = project.ttl().await.map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    ask("release/1.0", 1).await?;
    let ttl_after = project.ttl().await.map_err(|e| e.to_string())?;
    check(ttl_after <= ttl_before, "later writes never extend the TTL")?;

    // The rules change: develop becomes protected. Dry run first: compute
    // anyway and report where the cache disagrees.
    let dry = project.clone().dry_run(true);
    let (dev, how) = dry
        .fetch("develop", || async {
            Ok::<_, String>(is_protected("develop", 2))
        })
        .await
        .map_err(|e| e.to_string())?
        .into_parts();
    check(
        dev && how == Fetched::Mismatch,
        "dry run reports the stale answer",
    )?;
    // Then drop the project's hash (or invalidate its tag) and recompute.
    check(
        project.clear().await.map_err(|e| e.to_string())?,
        "clear drops the hash",
    )?;
    let (dev, how) = ask("develop", 2).await?;
    check(dev && how == Fetched::Miss, "recomputed after clear")?;
    let removed = cache
        .invalidate_tag("project:42")
        .await
        .map_err(|e| e.to_string())?;
    check(removed == 1, "the project tag drops the hash")?;

    // A hash cannot grow without bound.
    let small = cache
        .group("protected_branches", 7)
        .map_err(|e| e.to_string())?
        .cap(10);
    for i in 0..25 {
        let name = format!("feature/{i}");
        small
            .fetch(&name, || async { Ok::<_, String>(false) })
            .await
            .map_err(|e| e.to_string())?
            .into_parts();
    }
    let fields = small.len().await.map_err(|e| e.to_string())?;
    check(fields <= 10, "capped at 10 fields")?;
    println!(
        "loader ran {} times; project 7 holds {fields} fields (cap 10)",
        loads.load(Ordering::SeqCst)
    );
    small.clear().await.map_err(|e| e.to_string())?;
    Ok(())
}

#[tokio::main]
#[allow(dead_code)]
async fn main() {
    tagcache_testkit::run_example(false, run).await;
}
