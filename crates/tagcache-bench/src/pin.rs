//! Keeps the bench's own threads off the private server's CPU while
//! server time is measured.
//!
//! On a small machine the kernel may run a bench thread on the CPU Redis
//! is using; Redis is then descheduled in the middle of a command, and
//! the command's `usec` in `INFO commandstats` (and a probe's PING wait)
//! counts time Redis spent waiting for the bench, not working. With at
//! least two CPUs, [`Pinned::start`] moves every thread of the private
//! redis-server to the last CPU and every thread of the bench to the
//! others; dropping it (or [`Pinned::stop`]) restores both CPU lists.
//! `--slow-server`'s hog then shares the server's CPU, never the bench's.

use std::process::{Command, Stdio};

use redis::aio::MultiplexedConnection;

use crate::error::{BenchError, Result};

/// The server and the bench on CPUs of their own, until dropped.
pub struct Pinned {
    server_pid: u32,
    /// The CPU lists (`taskset -p` format) before pinning.
    server_before: String,
    own_before: String,
    /// The server's CPU.
    pub server_cpu: u32,
    /// The bench's CPUs (`taskset` list).
    pub own_cpus: String,
}

impl Pinned {
    /// Pins the server at `conn` (the bench's private server: its process
    /// is found by `INFO server`) to the last CPU the bench may use and
    /// the bench to the others. `None` on a machine with one CPU, or when
    /// `taskset` is missing or refused (the bench then measures unpinned,
    /// as before, and says so in its log).
    pub async fn start(conn: &MultiplexedConnection) -> Result<Option<Self>> {
        let server_pid = server_pid(conn).await?;
        let own_pid = std::process::id();
        let (Ok(server_before), Ok(own_before)) = (cpu_list(server_pid), cpu_list(own_pid)) else {
            tracing::info!("taskset unavailable: the server and the bench share every CPU");
            return Ok(None);
        };
        let cpus = parse_cpus(&own_before);
        let Some(&server_cpu) = cpus.iter().max() else {
            return Ok(None);
        };
        let own: Vec<String> = cpus
            .iter()
            .filter(|&&c| c != server_cpu)
            .map(u32::to_string)
            .collect();
        if own.is_empty() {
            return Ok(None);
        }
        let own_cpus = own.join(",");
        taskset(&[
            "-a",
            "-pc",
            &server_cpu.to_string(),
            &server_pid.to_string(),
        ])?;
        let pinned = Self {
            server_pid,
            server_before,
            own_before,
            server_cpu,
            own_cpus,
        };
        taskset(&["-a", "-pc", &pinned.own_cpus, &own_pid.to_string()])?;
        tracing::info!(
            server_cpu,
            bench_cpus = %pinned.own_cpus,
            "server and bench pinned to CPUs of their own"
        );
        Ok(Some(pinned))
    }

    /// Restores both CPU lists.
    ///
    /// # Errors
    /// `taskset` refused.
    pub fn stop(mut self) -> Result<()> {
        self.restore()
    }

    fn restore(&mut self) -> Result<()> {
        if self.own_before.is_empty() {
            return Ok(());
        }
        let own = std::mem::take(&mut self.own_before);
        taskset(&["-a", "-pc", &own, &std::process::id().to_string()])?;
        taskset(&[
            "-a",
            "-pc",
            &self.server_before,
            &self.server_pid.to_string(),
        ])
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            tracing::warn!(error = %e, "cannot restore the CPU lists");
        }
    }
}

/// Runs `work` with the server and the bench pinned (when `private`: a
/// given server is left alone) and restores the CPU lists after it, also
/// when it fails. Answers what `work` answered and where the two ran
/// (`None`: not pinned).
pub async fn while_pinned<T>(
    conn: &MultiplexedConnection,
    private: bool,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<(T, Option<(u32, String)>)> {
    let pinned = if private {
        Pinned::start(conn).await?
    } else {
        None
    };
    let place = pinned.as_ref().map(|p| (p.server_cpu, p.own_cpus.clone()));
    let outcome = work.await;
    if let Some(p) = pinned {
        p.stop()?;
    }
    Ok((outcome?, place))
}

/// The server's process id (`INFO server`).
pub(crate) async fn server_pid(conn: &MultiplexedConnection) -> Result<u32> {
    let mut conn = conn.clone();
    let text: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| BenchError::error("INFO server has no process_id"))
}

/// `taskset -pc PID`: the CPU list, e.g. `0-3` or `0,2`.
pub(crate) fn cpu_list(pid: u32) -> Result<String> {
    let out = Command::new("taskset")
        .args(["-pc", &pid.to_string()])
        .output()
        .map_err(|e| BenchError::error(format!("cannot run taskset: {e}")))?;
    if !out.status.success() {
        return Err(BenchError::error(format!(
            "taskset -pc {pid}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.rsplit(':')
        .next()
        .map(|l| l.trim().to_owned())
        .ok_or_else(|| BenchError::error(format!("taskset answered {text:?}")))
}

/// The CPUs of a list such as `0-3,6`, ascending.
pub(crate) fn parse_cpus(list: &str) -> Vec<u32> {
    let mut cpus = Vec::new();
    for part in list.split(',') {
        let mut ends = part.trim().splitn(2, '-').map(|v| v.trim().parse::<u32>());
        match (ends.next(), ends.next()) {
            (Some(Ok(a)), None) => cpus.push(a),
            (Some(Ok(a)), Some(Ok(b))) if a <= b => cpus.extend(a..=b),
            _ => {}
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}

/// Runs `taskset` with `args`.
pub(crate) fn taskset(args: &[&str]) -> Result<()> {
    let out = Command::new("taskset")
        .args(args)
        .stdout(Stdio::null())
        .output()
        .map_err(|e| BenchError::error(format!("cannot run taskset: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BenchError::error(format!(
            "taskset {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_are_parsed_with_ranges_and_singles() {
        assert_eq!(parse_cpus("0-3,6"), vec![0, 1, 2, 3, 6]);
        assert_eq!(parse_cpus("1"), vec![1]);
        assert_eq!(parse_cpus("0,2-2, 5"), vec![0, 2, 5]);
        assert!(parse_cpus("x").is_empty());
    }
}
