//! Situation 3 of the brief: a data pipeline product caching metadata under
//! hierarchical keys (`org:{o}:prj:{p}:pl:{id}`), invalidated at org,
//! project or pipeline level, queried with wildcards, and a cache that
//! never breaks the app (the fail-safe view).
//!
//! `cargo run --example pipeline_metadata` (private redis-server unless
//! `REDIS_URL` is set). Exits non-zero when an outcome is wrong.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use tagcache::{Cache, KeyPath, Lookup, PathPattern, SetOptions};

fn pipeline(org: u32, prj: u32, pl: u32) -> KeyPath {
    KeyPath::from_parts(["org"])
        .push(org)
        .push("prj")
        .push(prj)
        .push("pl")
        .push(pl)
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("pipeline_metadata: {what}"))
    }
}

/// The scenario against the Redis at `url`.
pub async fn run(url: &str) -> Result<(), String> {
    let cache = Cache::builder(url)
        .namespace(format!("pipeline-metadata-{}", std::process::id()))
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let opts = SetOptions::new().ttl(Duration::from_secs(45 * 60));
    for org in [7u32, 8] {
        for prj in 1..=3u32 {
            for pl in 1..=4u32 {
                let key = pipeline(org, prj, pl);
                cache
                    .set_path(&key, &format!("status of {key}"), &opts)
                    .await
                    .map_err(|e| e.to_string())?;
                let workflow = key.clone().push("workflow");
                cache
                    .set_path(&workflow, &"steps: [extract, load]", &opts)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    // Wildcard: every pipeline 2 of org 7, whatever the project.
    let pattern = PathPattern::new()
        .part("org")
        .part(7)
        .part("prj")
        .any()
        .part("pl")
        .part(2);
    let found: Vec<(KeyPath, String)> = cache
        .query(&pattern)
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    println!("org:7:prj:*:pl:2 -> {} pipelines", found.len());
    check(
        found.len() == 3,
        "the wildcard query finds pipeline 2 of each project",
    )?;

    // Invalidate at every level.
    let one = cache
        .invalidate_prefix(&pipeline(7, 1, 1))
        .await
        .map_err(|e| e.to_string())?;
    let project = cache
        .invalidate_prefix(&KeyPath::from(["org", "7", "prj", "2"]))
        .await
        .map_err(|e| e.to_string())?;
    let org = cache
        .invalidate_prefix(&KeyPath::from(["org", "7"]))
        .await
        .map_err(|e| e.to_string())?;
    println!("invalidated: pipeline {one}, project {project}, rest of org {org} entries");
    check(one == 2, "a pipeline and its workflow")?;
    check(project == 8, "a project's 4 pipelines and workflows")?;
    check(org == 14, "the rest of org 7")?;
    let left = cache
        .paths_under(&KeyPath::from(["org", "8"]))
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    check(left.len() == 24, "org 8 untouched")?;

    // The app reads through the fail-safe view: never an error from Redis.
    let fs = cache.fail_safe();
    match fs
        .get::<String>(pipeline(8, 1, 1).to_string())
        .await
        .map_err(|e| e.to_string())?
    {
        Lookup::Hit(v) => println!("org:8:prj:1:pl:1 = {v:?}"),
        other => return Err(format!("pipeline_metadata: expected a hit, got {other:?}")),
    }
    cache
        .invalidate_prefix(&KeyPath::from(["org", "8"]))
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[tokio::main]
#[allow(dead_code)]
async fn main() {
    tagcache_testkit::run_example(false, run).await;
}
