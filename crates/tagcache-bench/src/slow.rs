//! `--slow-server`: a slowed redis-server, to show that the invalidation's
//! stall bound is a time and not an entry count tuned on one machine. Two
//! ways to slow it (`--slow-by`):
//!
//! - `hog` (default): the private redis-server (every thread of it) and a
//!   CPU hog (a busy shell loop) are pinned with `taskset` to one CPU; the
//!   kernel shares that core between them, so Redis gets about half of it
//!   and is descheduled at any point, also in the middle of a script, for
//!   as long as the scheduler gives the hog (a few ms). The hog ends with
//!   the bench (killed by its id when the slowdown ends, and it stops by
//!   itself once its parent is gone); the server's CPU set is restored.
//! - `quota`: the server is moved into a CPU cgroup allowed 1 ms of CPU
//!   every 2 ms (the kernel's smallest quota): half a core, taken away in
//!   slices of at most 1 ms — a server uniformly twice as slow, without
//!   the scheduler's multi-ms waits. Needs a writable cgroup `cpu`
//!   controller (v1 at `/sys/fs/cgroup/cpu`, or v2); the server goes back
//!   to its own cgroup and the group is removed at the end.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use redis::aio::MultiplexedConnection;

use crate::error::{BenchError, Result};
use crate::pin::{cpu_list, parse_cpus, server_pid, taskset};
use crate::SlowBy;

/// A running slowdown; [`Slowdown::stop`] (or dropping it) ends it.
pub struct Slowdown {
    server_pid: u32,
    how: How,
    /// What slows the server, in words (printed with the results).
    pub description: String,
}

enum How {
    Hog {
        hog: Child,
        /// The server's CPU list before pinning (`taskset -p` format).
        previous: String,
    },
    Quota {
        /// The cgroup made for the server, and the one it came from.
        group: PathBuf,
        home: PathBuf,
    },
}

impl Slowdown {
    /// Slows the server at `conn` (which must be the bench's private
    /// server: its process is found by `INFO server`).
    ///
    /// # Errors
    /// `taskset` missing or refused, no writable cgroup, the server's
    /// process not found.
    pub async fn start(conn: &MultiplexedConnection, by: SlowBy) -> Result<Self> {
        let server_pid = server_pid(conn).await?;
        match by {
            SlowBy::Hog => Self::hog(server_pid),
            SlowBy::Quota => Self::quota(server_pid),
        }
    }

    fn hog(server_pid: u32) -> Result<Self> {
        let previous = cpu_list(server_pid)?;
        // The last CPU the server may use (where `Pinned` keeps it).
        let cpu = parse_cpus(&previous)
            .into_iter()
            .max()
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
        tracing::info!(
            cpu,
            server_pid,
            hog = hog.id(),
            "server slowed by a CPU hog"
        );
        Ok(Self {
            server_pid,
            how: How::Hog { hog, previous },
            description: format!("redis-server and a CPU hog pinned to CPU {cpu}"),
        })
    }

    fn quota(server_pid: u32) -> Result<Self> {
        let fail = |what: &str, e: std::io::Error| {
            BenchError::error(format!("--slow-by quota: cannot {what}: {e}"))
        };
        let v1 = PathBuf::from("/sys/fs/cgroup/cpu");
        let name = format!("tagcache-bench-{}", std::process::id());
        let (group, home) = if v1.join("cpu.cfs_quota_us").exists() {
            let home = v1.join(own_group(server_pid, |l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|c| c == "cpu"))
            })?);
            let group = v1.join(&name);
            std::fs::create_dir_all(&group).map_err(|e| fail("create the cgroup", e))?;
            std::fs::write(group.join("cpu.cfs_period_us"), "2000")
                .map_err(|e| fail("set cpu.cfs_period_us", e))?;
            std::fs::write(group.join("cpu.cfs_quota_us"), "1000")
                .map_err(|e| fail("set cpu.cfs_quota_us", e))?;
            (group, home)
        } else {
            let v2 = PathBuf::from("/sys/fs/cgroup");
            let home = v2.join(own_group(server_pid, |l| l.starts_with("0::"))?);
            let group = v2.join(&name);
            std::fs::create_dir_all(&group).map_err(|e| fail("create the cgroup", e))?;
            std::fs::write(group.join("cpu.max"), "1000 2000")
                .map_err(|e| fail("set cpu.max", e))?;
            (group, home)
        };
        std::fs::write(group.join("cgroup.procs"), server_pid.to_string())
            .map_err(|e| fail("move the server into the cgroup", e))?;
        tracing::info!(server_pid, group = %group.display(), "server slowed by a CPU quota");
        Ok(Self {
            server_pid,
            how: How::Quota { group, home },
            description: "redis-server limited to 1 ms of CPU every 2 ms (cgroup quota)".into(),
        })
    }

    /// Ends the slowdown: kills the hog and restores the server's CPU list,
    /// or moves the server home and removes its cgroup.
    ///
    /// # Errors
    /// The server's CPU list or cgroup cannot be restored.
    pub fn stop(mut self) -> Result<()> {
        self.end()
    }

    fn end(&mut self) -> Result<()> {
        match &mut self.how {
            How::Hog { hog, previous } => {
                if matches!(hog.try_wait(), Ok(None)) {
                    let _ = hog.kill();
                }
                let _ = hog.wait();
                if previous.is_empty() {
                    return Ok(());
                }
                let previous = std::mem::take(previous);
                taskset(&["-a", "-pc", &previous, &self.server_pid.to_string()])
            }
            How::Quota { group, home } => {
                if !group.exists() {
                    return Ok(());
                }
                // A server that is gone leaves an empty group behind.
                let _ = std::fs::write(home.join("cgroup.procs"), self.server_pid.to_string());
                std::fs::remove_dir(&*group).map_err(|e| {
                    BenchError::error(format!("cannot remove {}: {e}", group.display()))
                })
            }
        }
    }
}

impl Drop for Slowdown {
    fn drop(&mut self) {
        if let Err(e) = self.end() {
            tracing::warn!(error = %e, "cannot end the slowdown");
        }
    }
}

/// The cgroup path (relative, without the leading `/`) of `pid` in the
/// hierarchy whose `/proc/PID/cgroup` line `pick` selects.
fn own_group(pid: u32, pick: impl Fn(&str) -> bool) -> Result<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| BenchError::error(format!("cannot read /proc/{pid}/cgroup: {e}")))?;
    text.lines()
        .find(|l| pick(l))
        .and_then(|l| l.splitn(3, ':').nth(2))
        .map(|p| p.trim_start_matches('/').to_owned())
        .ok_or_else(|| BenchError::error(format!("no CPU cgroup for process {pid}")))
}
