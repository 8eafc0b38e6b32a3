//! Reading the server's own accounting: `INFO commandstats` (time and
//! calls per command), `INFO cpu`, `INFO memory`, `MEMORY USAGE`, and the
//! slow log, so the bench can say what each logical operation cost Redis.

use std::collections::HashMap;

use redis::aio::MultiplexedConnection;
use serde::Serialize;

use crate::error::{BenchError, Result};

/// Commands the bench itself sends to watch the server; never charged to
/// the operation measured.
const OVERHEAD: &[&str] = &[
    "info", "ping", "slowlog", "config", "memory", "script", "client",
];

/// The server's counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// command -> (calls, usec), from `INFO commandstats`.
    commands: HashMap<String, (u64, u64)>,
    /// `used_cpu_user + used_cpu_sys`, in microseconds.
    cpu_us: f64,
}

/// What the server did between two samples, per logical operation.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Cost {
    /// Time inside the commands the client sent (a script's time includes
    /// the commands it runs), microseconds per operation.
    pub server_usec_per_op: f64,
    /// Commands the client sent (`EVALSHA` counts one), per operation.
    pub commands_sent_per_op: f64,
    /// Commands executed, including those run inside scripts.
    pub commands_executed_per_op: f64,
    /// Server process CPU (user + system, all threads, including network
    /// I/O), microseconds per operation.
    pub process_cpu_usec_per_op: f64,
    /// Script calls (`EVALSHA`) sent, per operation.
    pub script_calls_per_op: f64,
}

impl Sample {
    /// Microseconds the server spent in `command` from `self` to `later`
    /// (including calls made inside scripts).
    pub fn usec_until(&self, later: &Sample, command: &str) -> u64 {
        let u0 = self.commands.get(command).map_or(0, |c| c.1);
        later
            .commands
            .get(command)
            .map_or(0, |c| c.1)
            .saturating_sub(u0)
    }

    /// The cost of the work done from `self` to `later`, over `ops`
    /// operations whose client sends only the commands `sent`.
    pub fn cost_until(&self, later: &Sample, sent: &[&str], ops: u64) -> Cost {
        self.cost_until_nested(later, sent, &[], ops)
    }

    /// As [`Sample::cost_until`], where each call of `outer` ran one call
    /// of `inner` that is also in `sent` (e.g. a script's `TIME`, in a
    /// script inside `EXEC`): those calls are counted once, in `outer`
    /// (at `inner`'s mean cost), not again as sent.
    pub fn cost_until_nested(
        &self,
        later: &Sample,
        sent: &[&str],
        nested: &[(&str, &str)],
        ops: u64,
    ) -> Cost {
        let delta = |name: &str| {
            let (c1, u1) = later.commands.get(name).copied().unwrap_or((0, 0));
            let (c0, u0) = self.commands.get(name).copied().unwrap_or((0, 0));
            (c1.saturating_sub(c0), u1.saturating_sub(u0))
        };
        let mut cost = self.cost(later, sent, ops);
        let per_op = ops.max(1) as f64;
        for (inner, outer) in nested {
            let (inner_calls, inner_usec) = delta(inner);
            let (outer_calls, _) = delta(outer);
            let twice = outer_calls.min(inner_calls);
            if twice == 0 {
                continue;
            }
            let mean = inner_usec as f64 / inner_calls as f64;
            cost.server_usec_per_op -= twice as f64 * mean / per_op;
            cost.commands_sent_per_op -= twice as f64 / per_op;
        }
        cost
    }

    fn cost(&self, later: &Sample, sent: &[&str], ops: u64) -> Cost {
        let ops = ops.max(1) as f64;
        let (mut sent_calls, mut sent_usec, mut executed) = (0u64, 0u64, 0u64);
        let mut scripts = 0u64;
        for (name, &(calls, usec)) in &later.commands {
            let (c0, u0) = self.commands.get(name).copied().unwrap_or((0, 0));
            let (calls, usec) = (calls.saturating_sub(c0), usec.saturating_sub(u0));
            let base = name.split('|').next().unwrap_or(name);
            if OVERHEAD.contains(&base) || calls == 0 {
                continue;
            }
            tracing::debug!(command = %name, calls, usec, sent = sent.contains(&base), "server work");
            executed += calls;
            if base == "evalsha" {
                scripts += calls;
            }
            if sent.contains(&base) {
                sent_calls += calls;
                sent_usec += usec;
            }
        }
        Cost {
            server_usec_per_op: sent_usec as f64 / ops,
            commands_sent_per_op: sent_calls as f64 / ops,
            commands_executed_per_op: executed as f64 / ops,
            process_cpu_usec_per_op: (later.cpu_us - self.cpu_us).max(0.0) / ops,
            script_calls_per_op: scripts as f64 / ops,
        }
    }
}

/// Reads the counters.
pub async fn sample(conn: &MultiplexedConnection) -> Result<Sample> {
    let mut conn = conn.clone();
    let text: String = redis::cmd("INFO")
        .arg("commandstats")
        .arg("cpu")
        .query_async(&mut conn)
        .await?;
    let mut s = Sample::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("cmdstat_") {
            if let Some((name, fields)) = rest.split_once(':') {
                let calls = field(fields, "calls=").unwrap_or(0.0) as u64;
                let usec = field(fields, "usec=").unwrap_or(0.0) as u64;
                s.commands.insert(name.to_owned(), (calls, usec));
            }
        } else if let Some(v) = line
            .strip_prefix("used_cpu_user:")
            .or_else(|| line.strip_prefix("used_cpu_sys:"))
        {
            s.cpu_us += v.trim().parse::<f64>().unwrap_or(0.0) * 1e6;
        }
    }
    Ok(s)
}

fn field(fields: &str, name: &str) -> Option<f64> {
    fields
        .split(',')
        .find_map(|f| f.strip_prefix(name))
        .and_then(|v| v.parse().ok())
}

/// One numeric field of an `INFO` section.
async fn info_field(conn: &MultiplexedConnection, section: &str, name: &str) -> Result<f64> {
    let mut conn = conn.clone();
    let text: String = redis::cmd("INFO")
        .arg(section)
        .query_async(&mut conn)
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| BenchError::error(format!("INFO {section} has no {name}")))
}

/// `used_memory`, once lazily freed objects are gone and incremental
/// rehashing (a few cron ticks) has had time to finish.
pub async fn used_memory(conn: &MultiplexedConnection) -> Result<u64> {
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for _ in 0..500 {
        if info_field(conn, "memory", "lazyfree_pending_objects").await? == 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Ok(info_field(conn, "memory", "used_memory").await? as u64)
}

/// `redis_version`.
pub async fn version(conn: &MultiplexedConnection) -> Result<String> {
    let mut conn = conn.clone();
    let text: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("unknown")
        .trim()
        .to_owned())
}

/// Total `MEMORY USAGE` (every element counted) of the keys that exist.
pub async fn memory_usage(conn: &MultiplexedConnection, keys: &[String]) -> Result<u64> {
    let mut conn = conn.clone();
    let mut total = 0;
    for chunk in keys.chunks(100) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.cmd("MEMORY").arg("USAGE").arg(k).arg("SAMPLES").arg(0);
        }
        let sizes: Vec<Option<u64>> = pipe.query_async(&mut conn).await?;
        total += sizes.into_iter().flatten().sum::<u64>();
    }
    Ok(total)
}

/// How many of `keys` exist.
pub async fn existing(conn: &MultiplexedConnection, keys: &[String]) -> Result<u64> {
    let mut conn = conn.clone();
    let mut total = 0;
    for chunk in keys.chunks(1000) {
        total += redis::cmd("EXISTS")
            .arg(chunk)
            .query_async::<u64>(&mut conn)
            .await?;
    }
    Ok(total)
}

/// The slow log, available only on a server the bench owns (it changes
/// the server's configuration).
#[derive(Debug, Clone)]
pub struct SlowLog {
    conn: MultiplexedConnection,
}

impl SlowLog {
    /// Logs every command of 1 ms or more.
    pub async fn enable(conn: &MultiplexedConnection) -> Result<Self> {
        let mut c = conn.clone();
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("slowlog-log-slower-than")
            .arg(1000)
            .arg("slowlog-max-len")
            .arg(4096)
            .query_async::<()>(&mut c)
            .await?;
        Ok(Self { conn: c })
    }

    /// Empties the log.
    pub async fn reset(&self) -> Result<()> {
        let mut c = self.conn.clone();
        redis::cmd("SLOWLOG")
            .arg("RESET")
            .query_async::<()>(&mut c)
            .await?;
        Ok(())
    }

    /// The longest command logged since the reset, in milliseconds (0
    /// when none took 1 ms).
    pub async fn longest_ms(&self) -> Result<f64> {
        let mut c = self.conn.clone();
        let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
            .arg("GET")
            .arg(-1)
            .query_async(&mut c)
            .await?;
        // The bench's own `SLOWLOG RESET` can be logged too (it frees the
        // log's entries: 17 ms on the slowed server): not the work's.
        let own = |args: Option<&redis::Value>| match args {
            Some(redis::Value::Array(a)) => matches!(a.first(),
                Some(redis::Value::BulkString(b)) if b.eq_ignore_ascii_case(b"slowlog")),
            _ => false,
        };
        let longest = entries
            .iter()
            .filter_map(|e| match e {
                redis::Value::Array(fields) => match fields.get(2) {
                    Some(redis::Value::Int(us)) if !own(fields.get(3)) => {
                        Some((*us, fields.get(3)))
                    }
                    _ => None,
                },
                _ => None,
            })
            .max_by_key(|(us, _)| *us);
        let Some((us, args)) = longest else {
            return Ok(0.0);
        };
        // Which command it was: its name, and a script's SHA (never the
        // keys or values).
        let mut words = match args {
            Some(redis::Value::Array(a)) => a
                .iter()
                .take(2)
                .filter_map(|v| match v {
                    redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        };
        let script = words
            .first()
            .is_some_and(|w| w.eq_ignore_ascii_case("evalsha"));
        words.truncate(if script { 2 } else { 1 });
        tracing::info!(ms = us as f64 / 1000.0, command = %words.join(" "), "longest command in the slow log");
        Ok(us as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_charges_sent_commands_only() {
        let mut a = Sample::default();
        a.commands.insert("evalsha".into(), (10, 100));
        a.commands.insert("set".into(), (10, 10));
        let mut b = a.clone();
        b.commands.insert("evalsha".into(), (12, 300));
        b.commands.insert("set".into(), (210, 210));
        b.commands.insert("info".into(), (5, 50));
        b.cpu_us = 1000.0;
        let c = a.cost_until(&b, &["evalsha"], 200);
        assert_eq!(c.server_usec_per_op, 1.0);
        assert_eq!(c.commands_sent_per_op, 0.01);
        assert_eq!(c.commands_executed_per_op, 1.01);
        assert_eq!(c.process_cpu_usec_per_op, 5.0);
    }
}
