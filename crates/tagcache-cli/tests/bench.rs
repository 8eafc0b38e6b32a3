//! `tagcache bench` end to end: the built binary, a private redis-server,
//! small sizes, and the shape of the JSON it writes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use serde_json::Value;

/// The throughput rows of the `reads` and `fail-safe` phases, in order.
const READS_AND_FAIL_SAFE: [&str; 10] = [
    "get",
    "get_vs_managed",
    "get_or_compute_hit",
    "get_or_refresh_hit",
    "get_many",
    "l1_get",
    "l1_get_shared",
    "announce_share",
    "fail_safe_get",
    "fail_safe_set",
];

fn tagcache() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tagcache"));
    // Never the machine's Redis: the bench must start its own.
    cmd.env_remove("REDIS_URL").env_remove("TAGCACHE_NAMESPACE");
    cmd
}

/// `tagcache bench` on `entries` entries, one round, quiet, then `args`;
/// fails the test, showing stderr, unless it exits 0.
fn bench_ok<'a>(entries: &str, args: impl IntoIterator<Item = &'a str>) -> Output {
    let out = tagcache()
        .args(["bench", "--entries", entries, "--rounds", "1", "-q"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {stderr}",
        out.status
    );
    out
}

/// The `id` of each row of a JSON array.
fn row_ids(rows: &Value) -> Vec<&str> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

fn number(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} is not a number in {v:#}"))
}

#[test]
fn bench_runs_on_a_private_server_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let report = dir.path().join("report");
    let out = bench_ok(
        "2000",
        [
            "--slow-server",
            "--json",
            json.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Throughput"), "{stdout}");
    assert!(stdout.contains("goals:"), "{stdout}");

    // --report: Markdown, JSON and one chart per invalidation strategy.
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains("invalidation-tagcache.svg"), "{md}");
    serde_json::from_str::<Value>(&std::fs::read_to_string(report.join("report.json")).unwrap())
        .unwrap();
    for strategy in ["tagcache", "lua", "keys_del", "scan_unlink"] {
        let svg =
            std::fs::read_to_string(report.join(format!("invalidation-{strategy}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{svg}"
        );
    }

    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(number(&v, "/setup/entries"), 2000.0);
    assert_eq!(number(&v, "/setup/tags"), 2.0);
    assert_eq!(v["setup"]["server"], "private redis-server");

    let ids = row_ids(&v["throughput"]);
    for id in [
        "set_many",
        "set_bytes",
        "set_many_vs_lua",
        "set_many_vs_set",
    ]
    .into_iter()
    .chain(READS_AND_FAIL_SAFE)
    {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    for c in v["throughput"].as_array().unwrap() {
        assert!(c["ratio"].as_f64().unwrap() > 0.0, "{c:#}");
        assert!(
            c["tagcache"]["ops_per_sec"].as_f64().unwrap() > 0.0,
            "{c:#}"
        );
        assert!(
            c["baseline"]["server_usec_per_op"].as_f64().is_some(),
            "{c:#}"
        );
    }

    let runs = v["invalidation"]["runs"].as_array().unwrap();
    let strategies: Vec<&str> = runs
        .iter()
        .map(|r| r["strategy"].as_str().unwrap())
        .collect();
    assert_eq!(
        strategies,
        [
            "tagcache",
            "lua",
            "lua_edges",
            "lua_edges_batched",
            "keys_del",
            "scan_unlink",
            // --slow-server: the same on the slowed server.
            "tagcache_slowed",
            "lua_slowed",
            "lua_edges_slowed",
            "lua_edges_batched_slowed",
        ]
    );
    assert!(number(&v, "/invalidation/server_ratios/vs_lua_edges") > 0.0);
    assert!(number(&v, "/invalidation/server_ratios/vs_lua") > 0.0);
    assert!(number(&v, "/invalidation/slowed/server_ratios/vs_lua_edges") > 0.0);
    assert!(
        v["invalidation"]["slowed"]["idle_stalls"]["pings"]
            .as_u64()
            .unwrap()
            > 0
    );
    for r in runs {
        assert_eq!(r["deleted"], 2000, "{r:#}");
        // One blocking call can be over (2 ms on a quiet machine) before
        // the probe's first PING returns; the chunked runs always see some.
        let chunked = r["strategy"].as_str().unwrap().starts_with("tagcache");
        assert!(
            !chunked || r["stalls"]["pings"].as_u64().unwrap() > 0,
            "{r:#}"
        );
    }
    assert!(v["invalidation"]["census"]["sent"].as_u64().unwrap() >= 3);

    assert!(number(&v, "/memory/index_bytes_per_entry_tag") > 0.0);
    // 2000 entries × (2 tags + the `\0pitem` prefix edge).
    assert_eq!(v["memory"]["after_expiry"]["members_removed"], 6000);
    assert_eq!(v["memory"]["after_expiry"]["index_bytes_left"], 0);

    let ks = &v["keyspaces"];
    let ids = row_ids(&ks["writes"]);
    assert_eq!(ids, ["set_path_2", "set_path_4", "set_path_6"], "{ks:#}");
    assert_eq!(ks["prefix_query"]["tagcache_matches"], 1000, "{ks:#}");
    assert_eq!(ks["prefix_query"]["scan_matches"], 1000, "{ks:#}");
    assert!(number(&v, "/keyspaces/group_fetch/ratio") > 0.0);

    let open = &v["fail_safe_open"];
    assert_eq!(open["calls"], 10_000, "{open:#}");
    assert_eq!(open["bypassed"], 10_000, "{open:#}");
    assert!(number(&v, "/fail_safe_open/p99_us") > 0.0);

    // The sweep: every member removed, normal and slowed.
    let sweep = v["sweep"]["runs"].as_array().unwrap();
    let cases: Vec<(&str, bool)> = sweep
        .iter()
        .map(|r| (r["case"].as_str().unwrap(), r["slowed"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        cases,
        [
            ("expired", false),
            ("gone", false),
            ("expired", true),
            ("gone", true)
        ]
    );
    for r in sweep {
        // 2000 entries × (2 tags + the `\0pitem` prefix edge).
        assert_eq!(r["members_removed"], 6000, "{r:#}");
    }
    // The goals check the waits of both cases pooled, per condition.
    let pooled = v["sweep"]["pooled"].as_array().unwrap();
    assert_eq!(pooled.len(), 2, "{pooled:#?}");
    assert_eq!(pooled[1]["slowed"], true);
    for p in pooled {
        assert_eq!(p["rounds"], 1, "{p:#}");
        assert!(p["stalls"]["pings"].as_u64().is_some(), "{p:#}");
    }

    let goals = v["goals"].as_array().unwrap();
    assert_eq!(goals.len(), 28);
    for g in goals {
        assert!(g["pass"].is_boolean() && g["target"].is_number(), "{g:#}");
    }
    let passed = v["goals_passed"].as_u64().unwrap();
    let missed = v["goals_missed"].as_u64().unwrap();
    assert_eq!(passed + missed, 28);
}

#[test]
fn bench_only_edges_and_clear_reports_reserved_edge_costs_and_clears() {
    let out = bench_ok("300", ["--only", "edges,clear", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Only the phases asked for.
    assert!(
        v.get("invalidation").is_none() && v.get("memory").is_none(),
        "{v:#}"
    );
    assert_eq!(v["throughput"].as_array().unwrap().len(), 0);
    assert_eq!(v["setup"]["phases"], serde_json::json!(["edges", "clear"]));

    let modes = v["edges"]["modes"].as_array().unwrap();
    assert_eq!(modes.len(), 2);
    for m in modes {
        assert_eq!(m["entries"], 300, "{m:#}");
        let single = m["mode"] == "single";
        let cases = m["cases"].as_array().unwrap();
        // The read-through cases and the script floors run one call at a
        // time only.
        assert_eq!(cases.len(), if single { 23 } else { 19 }, "{m:#}");
        for c in cases {
            assert!(c["server_usec_per_op"].as_f64().unwrap() > 0.0, "{c:#}");
        }
        // tagcache sends one MULTI/EXEC (or one script call) per entry
        // (or per batch); each raw baseline sends its SET and ZADDs.
        let case = |id: &str, field: &str| {
            cases.iter().find(|c| c["id"] == id).unwrap()[field]
                .as_f64()
                .unwrap()
        };
        let sent = |id: &str| case(id, "commands_sent_per_op");
        assert_eq!(sent("raw_set"), 1.0);
        assert_eq!(sent("raw_path_2"), 5.0);
        assert!(sent("tc_path_2") <= 2.0, "{m:#}");
        assert!(sent("sc_flat_2") <= 1.0, "{m:#}");
        // The transaction's second step runs only when a tag another
        // process wrote is dropped, or an index empties.
        assert_eq!(case("tc_keep_2", "scripts_per_op"), 0.0, "{m:#}");
        assert!(case("tc_change_2", "scripts_per_op") < 0.5, "{m:#}");
        let elsewhere = case("tc_change_else_2", "scripts_per_op");
        assert!(elsewhere > case("tc_change_2", "scripts_per_op"), "{m:#}");
        assert!(!single || elsewhere >= 0.99, "{m:#}");
        let compared = m["comparisons"].as_array().unwrap().len();
        assert_eq!(compared, if single { 16 } else { 13 }, "{m:#}");
        if single {
            // The fenced store's floor: a GET, then one script call.
            let fenced = sent("raw_rt_2_fenced");
            assert!((2.0..2.1).contains(&fenced), "{m:#}");
            // The exact rewrite's floor: one script call.
            let exact = sent("raw_2_change_exact");
            assert!((1.0..1.1).contains(&exact), "{m:#}");
        }
        for c in m["comparisons"].as_array().unwrap() {
            assert!(c["ratio"].as_f64().unwrap() > 0.0, "{c:#}");
        }
        // The write-cost goals (≤ 2×) sit on single-call comparisons.
        let with_goal = m["comparisons"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c.get("goal").is_some())
            .count();
        assert_eq!(with_goal, if single { 8 } else { 0 }, "{m:#}");
        assert_eq!(m["attributions"].as_array().unwrap().len(), 7);
    }
    let goals = v["goals"].as_array().unwrap();
    assert_eq!(goals.len(), 8, "{goals:#?}");
    for g in goals {
        assert_eq!(g["target"], 2.0, "{g:#}");
        assert!(g["value"].as_f64().unwrap() > 0.0, "{g:#}");
    }
    assert_eq!(v["edges"]["goals"].as_array().unwrap().len(), 8);

    let clear = &v["clear"];
    assert_eq!(clear["entries"], 300, "{clear:#}");
    let runs = clear["runs"].as_array().unwrap();
    let strategies: Vec<&str> = runs
        .iter()
        .map(|r| r["strategy"].as_str().unwrap())
        .collect();
    assert_eq!(strategies, ["tagcache", "flushdb", "scan_unlink"]);
    assert_eq!(runs[0]["deleted"], 300, "{clear:#}");
    // What a clear leaves: the namespace's meta (and its empty bookkeeping,
    // and its buckets' announcement counter).
    assert!(runs[0]["keys_after"].as_u64().unwrap() <= 4, "{clear:#}");
    assert_eq!(runs[1]["keys_after"], 0, "{clear:#}");
    assert_eq!(runs[2]["keys_after"], 0, "{clear:#}");
    for r in runs {
        // Every strategy removed the whole namespace: entries and indexes.
        assert!(r["deleted"].as_u64().unwrap() >= 300, "{r:#}");
        assert!(r["entries_per_sec"].as_f64().unwrap() > 0.0, "{r:#}");
    }
    // (Any of them may end before the probe's first PING on a quiet
    // machine: 300 entries take a few ms; the probe ran and reported.)
    assert!(runs[0]["stalls"]["pings"].as_u64().is_some(), "{clear:#}");
    // MONITOR census: the total, a cut, at least one chunk and the sweep.
    assert_eq!(clear["census"]["entries"], 300, "{clear:#}");
    assert!(clear["census"]["sent"].as_u64().unwrap() >= 3, "{clear:#}");
}

#[test]
fn bench_only_runs_the_chosen_phases() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("reads.json");
    bench_ok(
        "300",
        [
            "--throughput-only",
            "reads,fail-safe",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let rows: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let ids = row_ids(&rows);
    assert_eq!(ids, READS_AND_FAIL_SAFE);
    for (i, _) in ids.iter().enumerate() {
        assert!(number(&rows, &format!("/{i}/ratio")) > 0.0, "{rows:#}");
    }
}

#[test]
fn bench_cluster_runs_on_a_local_cluster() {
    if Command::new("redis-cli").arg("--version").output().is_err() {
        eprintln!("redis-cli not installed: skipped");
        return;
    }
    let out = bench_ok("1000", ["--cluster", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["cluster"];
    assert_eq!(c["masters"], 3, "{c:#}");
    let ids = row_ids(&c["comparisons"]);
    assert_eq!(ids, ["cluster_set_many", "cluster_get"]);
    for r in c["comparisons"].as_array().unwrap() {
        assert!(r["ratio"].as_f64().unwrap() > 0.0, "{r:#}");
        assert!(
            r["tagcache"]["commands_sent_per_op"].as_f64().unwrap() > 0.0,
            "{r:#}"
        );
    }
    assert_eq!(c["invalidation"]["deleted"], 1000, "{c:#}");
    assert!(number(&v, "/cluster/invalidation/wall_ms") > 0.0);
}

#[test]
fn bad_options_exit_2_with_one_line() {
    let out = tagcache()
        .args(["bench", "--entries", "10", "--namespace", "bad.ns"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("namespace"), "{stderr}");
}
