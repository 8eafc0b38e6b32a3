//! `--slow-server`: a slowed redis-server, to show that the invalidation's
//! stall bound is a time and not an entry count tuned on one machine.
//!
//! The private redis-server (every thread of it) is pinned with `taskset`
//! to one CPU, and a CPU hog (a busy shell loop) is pinned to the same
//! CPU: the kernel then shares that core between them, so Redis gets
//! about half of it, and a command that needs 1 ms of CPU takes 2 ms or
//! more of wall time, with Redis descheduled at any point (also in the
//! middle of a script). The hog ends with the bench (it is killed by its
//! id when the slowdown ends, and it stops by itself once its parent is
//! gone); the server's CPU set is restored.

use std::process::{Child, Command, Stdio};

use redis::aio::MultiplexedConnection;

use crate::error::{BenchError, Result};
use crate::pin::{cpu_list, parse_cpus, server_pid, taskset};

/// A running slowdown; [`Slowdown::stop`] (or dropping it) ends it.
pub struct Slowdown {
    hog: Child,
    server_pid: u32,
    /// The server's CPU list before pinning (`taskset -p` format).
    previous: String,
    /// The CPU both share.
    pub cpu: u32,
}

impl Slowdown {
    /// Pins the server at `conn` (which must be the bench's private
    /// server: its process is found by `INFO server`) and a hog to one
    /// CPU.
    ///
    /// # Errors
    /// `taskset` missing or refused, the server's process not found.
    pub async fn start(conn: &MultiplexedConnection) -> Result<Self> {
        let server_pid = server_pid(conn).await?;
        let previous = cpu_list(server_pid)?;
        // The last CPU the server may use: the bench's own threads tend to
        // start on the first.
        let cpu = last_cpu(&previous)
            .ok_or_else(|| BenchError::error(format!("cannot read the CPU list {previous:?}")))?;
        taskset(&["-a", "-pc", &cpu.to_string(), &server_pid.to_string()])?;
        let hog = Command::new("taskset")
            .args(["-c", &cpu.to_string(), "sh", "-c"])
            // Spins while its parent (the bench) lives.
            .arg("while kill -0 $PPID 2>/dev/null; do :; done")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| BenchError::error(format!("cannot start the CPU hog (taskset): {e}")))?;
        tracing::info!(cpu, server_pid, hog = hog.id(), "server slowed");
        Ok(Self {
            hog,
            server_pid,
            previous,
            cpu,
        })
    }

    /// Ends the slowdown: kills the hog, restores the server's CPU list.
    ///
    /// # Errors
    /// The CPU list cannot be restored.
    pub fn stop(mut self) -> Result<()> {
        self.end_hog();
        taskset(&["-a", "-pc", &self.previous, &self.server_pid.to_string()])
    }

    fn end_hog(&mut self) {
        if matches!(self.hog.try_wait(), Ok(None)) {
            let _ = self.hog.kill();
        }
        let _ = self.hog.wait();
    }
}

impl Drop for Slowdown {
    fn drop(&mut self) {
        self.end_hog();
    }
}

/// The highest CPU of a list such as `0-3,6`.
fn last_cpu(list: &str) -> Option<u32> {
    parse_cpus(list).into_iter().max()
}
