//! Counting the commands clients send, apart from those scripts run.
//!
//! `INFO commandstats` counts a command run inside a script like one a
//! client sent, so a command tagcache both sends and runs in its scripts
//! (ZRANGE) cannot be told apart there. MONITOR marks script commands as
//! coming from `lua`: an untimed census under MONITOR gives the exact
//! number of commands (round trips) the client sent.

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;

use super::Bench;
use crate::error::{BenchError, Result};

/// How long the monitor may lag behind once the work is done.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// Commands seen while the work ran.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Census {
    /// Sent by clients (round trips, for one client waiting on each).
    pub sent: u64,
    /// Run inside scripts.
    pub in_scripts: u64,
}

/// Runs `work` under MONITOR and counts the commands it caused. Nothing
/// else may talk to the server meanwhile (the bench's own connections
/// stay quiet).
pub async fn count<T, F>(b: &Bench<'_>, work: F) -> Result<(T, Census)>
where
    F: Future<Output = Result<T>>,
{
    let monitor = b.client.get_async_monitor().await?;
    let marker = format!("tagcache-bench-census-end-{}", std::process::id());
    let end = marker.clone();
    let counting = tokio::spawn(async move {
        let mut lines = monitor.into_on_message::<String>();
        let mut census = Census::default();
        while let Some(line) = lines.next().await {
            if line.contains(&end) {
                return Some(census);
            }
            match source(&line) {
                Some("lua") => census.in_scripts += 1,
                Some(_) => census.sent += 1,
                None => {}
            }
        }
        None
    });
    let out = work.await;
    redis::cmd("ECHO")
        .arg(&marker)
        .query_async::<()>(&mut b.raw.clone())
        .await?;
    let mut counting = counting;
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, &mut counting).await;
    // Never leave a MONITOR connection behind.
    counting.abort();
    let census = drained
        .map_err(|_| BenchError::error("MONITOR census: the monitor fell behind"))?
        .map_err(|e| BenchError::error(format!("MONITOR census: {e}")))?
        .ok_or_else(|| BenchError::error("MONITOR census: the monitor connection closed"))?;
    Ok((out?, census))
}

/// The source of a MONITOR line: `lua`, or the client's address.
/// `1700000000.123456 [0 unix:/tmp/r.sock:0] "GET" "k"`.
fn source(line: &str) -> Option<&str> {
    let open = line.find('[')? + 1;
    let close = open + line[open..].find(']')?;
    line[open..close].split_once(' ').map(|(_db, src)| src)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_read_from_monitor_lines() {
        assert_eq!(source(r#"1.2 [0 lua] "DEL" "k""#), Some("lua"));
        assert_eq!(
            source(r#"1.2 [0 unix:/tmp/r.sock:0] "GET" "[x]""#),
            Some("unix:/tmp/r.sock:0")
        );
        assert_eq!(source("OK"), None);
    }
}
