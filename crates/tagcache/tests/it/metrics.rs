//! The observability pack: every metric the Grafana dashboard
//! (docs/grafana/tagcache.json) queries is exported, and every metric the
//! code emits is in the catalogue (docs/metrics.md).

use std::collections::BTreeSet;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tagcache::{SetOptions, Source};
use tokio::sync::oneshot;

use tagcache_testkit::RedisServer;

const DASHBOARD: &str = include_str!("../../../../docs/grafana/tagcache.json");
const CATALOGUE: &str = include_str!("../../../../docs/metrics.md");

/// `tagcache_*` names in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("tagcache_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The metric names the dashboard's queries use.
fn dashboard_metrics() -> BTreeSet<String> {
    let dash: serde_json::Value = serde_json::from_str(DASHBOARD).unwrap();
    let mut exprs = String::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push_str(target["expr"].as_str().unwrap());
            exprs.push('\n');
        }
    }
    for var in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = var["query"]["query"].as_str() {
            exprs.push_str(q);
        }
    }
    metric_names(&exprs)
}

/// The metric names the catalogue lists (first column of its tables).
fn catalogue_metrics() -> BTreeSet<String> {
    CATALOGUE
        .lines()
        .filter(|l| l.starts_with("| `tagcache_"))
        .flat_map(|l| metric_names(l.split('|').nth(1).unwrap()))
        .collect()
}

#[test]
fn the_dashboard_uses_only_catalogued_metrics() {
    let catalogue = catalogue_metrics();
    assert!(catalogue.len() >= 20, "{catalogue:?}");
    for name in dashboard_metrics() {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name);
        assert!(
            catalogue.contains(base),
            "{name} is on the dashboard but not in docs/metrics.md"
        );
    }
}

/// Every metric name in the library's source is in the catalogue.
#[test]
fn every_metric_the_code_emits_is_catalogued() {
    let catalogue = catalogue_metrics();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src];
    let mut emitted = BTreeSet::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for line in text.lines() {
                    // Metric names are string literals: "tagcache_…".
                    for part in line.split('"').skip(1).step_by(2) {
                        if part.starts_with("tagcache_")
                            && part.len() > "tagcache_".len()
                            && part
                                .chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                        {
                            emitted.insert(part.to_owned());
                        }
                    }
                }
            }
        }
    }
    let missing: Vec<_> = emitted.difference(&catalogue).collect();
    assert!(missing.is_empty(), "not in docs/metrics.md: {missing:?}");
}

/// Installs the Prometheus exporter (process-wide), runs a workload that
/// exercises every read-through path against a private redis-server, and
/// checks the rendered exposition has every metric the dashboard queries.
#[tokio::test]
async fn the_prometheus_exporter_has_every_metric_the_dashboard_uses() {
    let prometheus = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".to_owned()),
            &[0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0],
        )
        .unwrap()
        .install_recorder()
        .expect("the only recorder of this test process");

    let mut server = RedisServer::start();
    let cache = crate::builder(&server)
        .op_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let opts = SetOptions::new().tag("t");

    // Loads, hits, a loader failure.
    for _ in 0..2 {
        cache
            .get_or_compute("a", &opts, || async { Ok::<_, String>(1) })
            .await
            .unwrap();
    }
    cache
        .get_or_compute("b", &opts, || async { Err::<u32, _>("db down") })
        .await
        .unwrap_err();

    // A stale value served.
    let graced = SetOptions::new()
        .ttl(Duration::from_millis(30))
        .grace(Duration::from_secs(60));
    cache.set("s", &1, &graced).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let c = cache
        .get_or_compute("s", &graced, || async { Err::<u32, _>("db down") })
        .await
        .unwrap();
    assert_eq!(c.source, Source::Stale);

    // A store refused by a fence.
    let (release, wait) = oneshot::channel::<()>();
    let loading = {
        let (cache, opts) = (cache.clone(), opts.clone());
        tokio::spawn(async move {
            cache
                .get_or_compute("r", &opts, || async {
                    let _ = wait.await;
                    Ok::<_, String>(1)
                })
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    cache.invalidate_tag("t").await.unwrap();
    release.send(()).unwrap();
    assert_eq!(loading.await.unwrap().source, Source::LoadedNotStored);

    // Waits: in process (a shared load) and across processes (a lease
    // held elsewhere, past the wait bound).
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_compute("w", &SetOptions::new(), || async {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok::<_, String>(1)
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let leased = crate::builder(&server)
        .load_lease(Duration::from_secs(30), Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    server.cmd::<()>(&[b"SET", b"{test.0}:l:l", b"elsewhere", b"PX", b"30000"]);
    leased
        .get_or_compute("l", &SetOptions::new(), || async { Ok::<_, String>(1) })
        .await
        .unwrap();

    // An eager refresh.
    let eager = SetOptions::new()
        .ttl(Duration::from_secs(10))
        .eager_refresh(0.01);
    cache.set("e", &1, &eager).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    cache
        .get_or_refresh("e", &eager, || async { Ok::<_, String>(2) })
        .await
        .unwrap();

    // Fail-safe reads, a sweep, a group fetch.
    let fs = cache.fail_safe();
    fs.get::<u32>("a").await.unwrap();
    fs.get::<u32>("missing").await.unwrap();
    cache.prune().await.unwrap();
    let group = cache.group("g", 1).unwrap();
    group
        .fetch("f", || async { Ok::<_, String>(1) })
        .await
        .unwrap();

    // An L1 tier: a miss, a hit, and a write elsewhere that drops its copy
    // (an announcement, with its lag).
    let near = crate::l1::l1_cache(&server, tagcache::L1Options::new()).await;
    near.set("n", &1, &SetOptions::new()).await.unwrap();
    for _ in 0..3 {
        near.get::<u32>("n").await.unwrap();
    }
    cache.set("n", &2, &SetOptions::new()).await.unwrap();
    let mut dropped = false;
    for _ in 0..250 {
        if near.get::<u32>("n").await.unwrap() == Some(2) {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dropped, "the L1 took the announcement");

    // Redis goes away: bypasses, errors, the circuit opens, and an
    // invalidation is journaled.
    server.kill();
    for _ in 0..8 {
        fs.get::<u32>("a").await.unwrap();
    }
    fs.invalidate_tag("t").await.unwrap();

    // Give the eager refresh and the recorder a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = prometheus.render();
    let exported: BTreeSet<String> = text
        .lines()
        .filter(|l| l.starts_with("tagcache_"))
        .flat_map(metric_names)
        .collect();
    let used = dashboard_metrics();
    assert!(used.len() >= 15, "{used:?}");
    let missing: Vec<_> = used.into_iter().filter(|m| !exported.contains(m)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics the exporter lacks: {missing:?}\n{text}"
    );
    // The new read-through metrics carry the namespace.
    assert!(
        text.contains("tagcache_read_through_total{namespace=\"test\",source=\"hit\"}"),
        "{text}"
    );
}

/// The `(name, value)` fields of one span.
type Fields = Vec<(String, String)>;

/// A subscriber that keeps the fields of every span it is shown.
#[derive(Default, Clone)]
struct SpanFields(std::sync::Arc<std::sync::Mutex<Vec<Fields>>>);

struct Visit<'a>(&'a mut Fields);

impl tracing::field::Visit for Visit<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl tracing::Subscriber for SpanFields {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = Vec::new();
        attrs.record(&mut Visit(&mut fields));
        let mut spans = self.0.lock().unwrap();
        spans.push(fields);
        tracing::span::Id::from_u64(spans.len() as u64)
    }
    fn record(&self, span: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut spans = self.0.lock().unwrap();
        let i = usize::try_from(span.into_u64()).unwrap() - 1;
        values.record(&mut Visit(&mut spans[i]));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn operation_spans_carry_the_opentelemetry_database_attributes() {
    let server = RedisServer::start();
    let cache = crate::cache(&server).await;
    let spans = SpanFields::default();
    let _guard = tracing::subscriber::set_default(spans.clone());
    cache
        .get_or_compute("k", &SetOptions::new(), || async { Ok::<_, String>(1) })
        .await
        .unwrap();
    cache.fail_safe().get::<u32>("k").await.unwrap();
    let spans = spans.0.lock().unwrap().clone();
    let find = |op: &str| {
        spans
            .iter()
            .find(|s| s.contains(&("db.operation.name".to_owned(), op.to_owned())))
            .unwrap_or_else(|| panic!("no span for {op}: {spans:?}"))
            .clone()
    };
    for (op, outcome) in [("get_or_compute", "loaded"), ("get", "ok")] {
        let span = find(op);
        for (name, value) in [
            ("db.system.name", "redis"),
            ("db.namespace", "test"),
            ("outcome", outcome),
        ] {
            assert!(
                span.contains(&(name.to_owned(), value.to_owned())),
                "{op}: {name} = {value} missing in {span:?}"
            );
        }
        // Keys are not logged by default.
        assert!(!span.iter().any(|(n, _)| n == "key"), "{span:?}");
    }
}
