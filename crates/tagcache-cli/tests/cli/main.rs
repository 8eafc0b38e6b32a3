//! The `tagcache` binary end to end: each test starts its own
//! redis-server and runs the built binary against it, checking exit codes
//! (0 ok, 1 not found, 2 error), what goes to stdout (results only) and
//! the JSON shapes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod demo;
mod entries;
mod errors;
mod migrate;
mod namespaces;
mod recovery;
mod upkeep;
mod values;

use std::ffi::OsStr;
use std::process::{Command, Output};

use serde_json::Value;

pub use tagcache_testkit::RedisServer;

/// The binary, with no URL or namespace inherited from the environment
/// (never the machine's Redis).
pub fn tagcache() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tagcache"));
    cmd.env_remove("REDIS_URL")
        .env_remove("TAGCACHE_NAMESPACE")
        .env_remove("RUST_LOG");
    cmd
}

/// Runs the binary on `url` with `args`.
pub fn run<I, S>(url: &str, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    tagcache()
        .arg("--url")
        .arg(url)
        .args(args)
        .output()
        .unwrap()
}

/// Asserts exit 0 and an empty stderr; returns stdout.
pub fn ok(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "stderr");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts exit `code`, nothing on stdout and one line on stderr;
/// returns that line.
pub fn fails(out: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "stdout");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.starts_with("tagcache: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Parses stdout as one JSON document.
pub fn json(out: &Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap()
}

/// Runs one raw Redis command on the server at `url` (to prepare states
/// the CLI cannot make).
pub fn redis_cmd<T: redis::FromRedisValue>(url: &str, args: &[&str]) -> T {
    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut con).unwrap()
}

/// A library handle on the same server, to prepare or inspect data.
pub fn with_cache<T>(url: &str, ns: &str, f: impl AsyncFnOnce(tagcache::Cache) -> T) -> T {
    with_built(lib_builder(url, ns), f)
}

/// The builder of [`with_cache`], for a test that changes a setting.
pub fn lib_builder(url: &str, ns: &str) -> tagcache::CacheBuilder {
    tagcache::Cache::builder(url).namespace(ns).auto_sweep(None)
}

/// Runs `f` on the cache `builder` builds, in a runtime of its own.
pub fn with_built<T>(
    builder: tagcache::CacheBuilder,
    f: impl AsyncFnOnce(tagcache::Cache) -> T,
) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cache = builder.build().await.unwrap();
        f(cache).await
    })
}
