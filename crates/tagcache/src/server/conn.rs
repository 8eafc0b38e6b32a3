//! The one place tagcache talks to Redis: a multiplexed connection shared
//! by every clone of a [`crate::Cache`], with explicit timeouts, scripts run
//! by `EVALSHA` and reloaded on `NOSCRIPT`.

use std::time::Duration;

use std::sync::Arc;

use redis::{Cmd, FromRedisValue};

use crate::error::{Error, ErrorKind, Result};
use crate::observe::metrics as names;
use crate::scripts::{Script, ScriptCall};
use crate::server::breaker::{Admit, Breaker};
use crate::server::reconnect::Reconnecting;

/// The two executors: one server (a reconnecting multiplexed connection,
/// [`Reconnecting`]) or a Redis Cluster (redis-rs' cluster client, which routes each command
/// by its first key's slot, follows MOVED/ASK, and splits multi-slot
/// `MGET`). Everything above this enum is the same for both.
#[derive(Clone)]
pub(crate) enum Backend {
    /// A single server.
    Single(Reconnecting),
    /// A Redis Cluster.
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for Backend {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// A shared connection to one Redis server or cluster.
#[derive(Clone)]
pub(crate) struct Conn {
    manager: Backend,
    breaker: Arc<Breaker>,
    /// Closed until the startup checks passed (lazily built caches); `None`
    /// on the clone that runs those checks.
    gate: Option<Arc<Gate>>,
}

/// Whether the startup checks passed, and why not yet.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    open: std::sync::atomic::AtomicBool,
    reason: std::sync::Mutex<String>,
}

impl Gate {
    pub(crate) fn open(&self) {
        self.open.store(true, std::sync::atomic::Ordering::Release);
    }

    pub(crate) fn set_reason(&self, reason: String) {
        *self.reason.lock().unwrap_or_else(|p| p.into_inner()) = reason;
    }

    fn check(&self) -> Result<()> {
        if self.open.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        let reason = self
            .reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Err(Error::new(
            ErrorKind::Connection,
            format!("redis not reached yet: {reason}"),
        ))
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Conn")
    }
}

/// Turns a bare socket path into a `unix://` URL; other URLs pass through.
pub(crate) fn normalize_url(url: &str) -> String {
    if url.starts_with('/') {
        format!("unix://{url}")
    } else {
        url.to_owned()
    }
}

/// Strips passwords (userinfo or `pass=`/`password=` query parameters)
/// from a URL before it goes into an error or a log.
pub(crate) fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &base[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &base[..scheme], user, &base[at + 1..])
        }
        _ => base.to_owned(),
    };
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k == "pass" || k == "password" => format!("{k}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

impl Conn {
    /// A connection that connects on first use; calls fail until `gate`
    /// opens.
    pub(crate) fn lazy(
        url: &str,
        tls_root: Option<&[u8]>,
        connect_timeout: Duration,
        response_timeout: Duration,
        breaker: Breaker,
        gate: Arc<Gate>,
    ) -> Result<Self> {
        let client = client(url, tls_root)?;
        let manager = Reconnecting::lazy(client, connect_timeout, response_timeout);
        Ok(Self {
            manager: Backend::Single(manager),
            breaker: Arc::new(breaker),
            gate: Some(gate),
        })
    }

    /// This connection without the startup gate (for the startup checks).
    pub(crate) fn ungated(&self) -> Self {
        Self {
            manager: self.manager.clone(),
            breaker: self.breaker.clone(),
            gate: None,
        }
    }

    /// Connects, failing within about `connect_timeout`.
    pub(crate) async fn connect(
        url: &str,
        tls_root: Option<&[u8]>,
        connect_timeout: Duration,
        response_timeout: Duration,
        breaker: Breaker,
    ) -> Result<Self> {
        let shown = redact_url(url);
        let client = client(url, tls_root)?;
        // The attempt is bounded by the connect timeout; bound the whole
        // of it as well.
        let attempt = Reconnecting::connect(client, connect_timeout, response_timeout);
        let manager = match tokio::time::timeout(connect_timeout * 3, attempt).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                let e = Error::from(e);
                return Err(Error::new(
                    e.kind(),
                    format!("cannot connect to {shown}: {}", e.detail()),
                ));
            }
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("cannot connect to {shown}: no answer within {connect_timeout:?}"),
                ))
            }
        };
        Ok(Self {
            manager: Backend::Single(manager),
            breaker: Arc::new(breaker),
            gate: None,
        })
    }

    /// Connects to a Redis Cluster through its seed nodes.
    pub(crate) async fn connect_cluster(
        seeds: &[String],
        tls_root: Option<&[u8]>,
        connect_timeout: Duration,
        response_timeout: Duration,
        breaker: Breaker,
    ) -> Result<Self> {
        let shown: Vec<String> = seeds.iter().map(|s| redact_url(s)).collect();
        let shown = shown.join(",");
        if seeds.iter().any(|s| s.starts_with("rediss://")) {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let mut builder =
            redis::cluster::ClusterClient::builder(seeds.iter().map(|s| normalize_url(s)))
                .connection_timeout(connect_timeout)
                .response_timeout(response_timeout)
                .retries(3);
        if let Some(pem) = tls_root {
            builder = builder.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            });
        }
        let client = builder.build().map_err(|e| {
            Error::with_source(
                ErrorKind::Config,
                format!("invalid cluster seeds {shown}: {e}"),
                e,
            )
        })?;
        let attempt = client.get_async_connection();
        let conn = match tokio::time::timeout(connect_timeout * 3, attempt).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                let e = Error::from(e);
                return Err(Error::new(
                    e.kind(),
                    format!("cannot connect to cluster {shown}: {}", e.detail()),
                ));
            }
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "cannot connect to cluster {shown}: no answer within {connect_timeout:?}"
                    ),
                ))
            }
        };
        Ok(Self {
            manager: Backend::Cluster(conn),
            breaker: Arc::new(breaker),
            gate: None,
        })
    }

    /// Whether every call must stay within one hash slot (a cluster).
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.manager, Backend::Cluster(_))
    }

    /// Redis' clock (`TIME`), in Unix milliseconds.
    pub(crate) async fn server_time_ms(&self) -> Result<u64> {
        let (secs, micros): (u64, u64) = self.query_one_node(&redis::cmd("TIME")).await?;
        secs.checked_mul(1000)
            .and_then(|ms| ms.checked_add(micros / 1000))
            .ok_or_else(|| Error::new(ErrorKind::Protocol, "redis TIME out of range"))
    }

    /// Runs a keyless command on one node (any node of a cluster): for
    /// `INFO`, `CONFIG GET`, `TIME`, whose cluster-wide routing would
    /// aggregate or fan out.
    pub(crate) async fn query_one_node<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        self.guarded(|c| async move {
            match c {
                Backend::Single(mut m) => Ok(cmd.query_async(&mut m).await?),
                Backend::Cluster(mut cc) => {
                    use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
                    let v = cc
                        .route_command(
                            cmd.clone(),
                            RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
                        )
                        .await?;
                    Ok(redis::from_redis_value(v).map_err(redis::RedisError::from)?)
                }
            }
        })
        .await
    }

    /// The circuit breaker every call passes.
    pub(crate) fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Runs `call` if the breaker admits it, and reports whether Redis
    /// answered. When the cool-down is over, the caller that notices starts
    /// a `PING` probe in the background and fails fast like the others: no
    /// caller ever waits for (or can cancel) a probe.
    async fn guarded<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: FnOnce(Backend) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        if let Some(gate) = &self.gate {
            gate.check()?;
        }
        let admit = self.breaker.admit();
        match admit {
            Admit::Yes => {}
            Admit::Probe => {
                let (mut c, breaker) = (self.manager.clone(), self.breaker.clone());
                tokio::spawn(async move {
                    // A broken connection is replaced on its first failure:
                    // the second PING then uses the new one.
                    let mut unavailable = true;
                    for _ in 0..2 {
                        let ping: redis::RedisResult<String> =
                            redis::cmd("PING").query_async(&mut c).await;
                        unavailable = match ping {
                            Ok(_) => false,
                            Err(e) => Error::from(e).is_unavailable(),
                        };
                        if !unavailable {
                            break;
                        }
                    }
                    breaker.record(Admit::Probe, unavailable);
                });
                return Err(circuit_open());
            }
            Admit::No => return Err(circuit_open()),
        }
        let result = call(self.manager.clone()).await;
        let unavailable = matches!(&result, Err(e) if e.is_unavailable());
        self.breaker.record(admit, unavailable);
        if let Err(e) = &result {
            metrics::counter!(names::ERRORS_TOTAL, "namespace" => self.breaker.namespace().to_owned(), "kind" => e.kind().as_str())
                .increment(1);
        }
        result
    }

    /// Runs one command.
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        self.guarded(|mut c| async move { Ok(cmd.query_async(&mut c).await?) })
            .await
    }

    /// Runs a pipeline (never scripts: pipelines do not reload them).
    pub(crate) async fn pipe<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T> {
        self.guarded(|mut c| async move { Ok(pipe.query_async(&mut c).await?) })
            .await
    }

    /// Runs a script call, loading the script once if Redis lost it.
    pub(crate) async fn run<T: FromRedisValue>(&self, call: &ScriptCall) -> Result<T> {
        self.guarded(|mut c| async move {
            match call.cmd.query_async::<T>(&mut c).await {
                Err(e)
                    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    call.script
                        .script
                        .load_async(&mut c)
                        .await
                        .map_err(|e| script_error(call.script, e))?;
                    Ok(call.cmd.query_async(&mut c).await?)
                }
                other => other.map_err(|e| script_error(call.script, e)),
            }
        })
        .await
    }

    /// `SCRIPT LOAD`s a script.
    pub(crate) async fn load(&self, script: &Script) -> Result<()> {
        let mut c = self.manager.clone();
        script
            .script
            .load_async(&mut c)
            .await
            .map(|_| ())
            .map_err(|e| script_error(script, e))
    }
}

fn client(url: &str, tls_root: Option<&[u8]>) -> Result<redis::Client> {
    let shown = redact_url(url);
    if url.starts_with("rediss://") {
        // rustls needs one process-wide crypto provider; keep the one the
        // application installed, if any.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    match tls_root {
        None => redis::Client::open(normalize_url(url)),
        Some(pem) => redis::Client::build_with_tls(
            normalize_url(url),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            },
        ),
    }
    .map_err(|e| {
        Error::with_source(
            ErrorKind::Config,
            format!("invalid redis url {shown}: {e}"),
            e,
        )
    })
}

fn circuit_open() -> Error {
    Error::new(
        ErrorKind::CircuitOpen,
        "redis failed repeatedly; not calling it until a probe succeeds",
    )
}

fn script_error(script: &Script, e: redis::RedisError) -> Error {
    if let Some(denied) =
        crate::error::permission_denied(&e, Some((script.name, script.source.as_str())))
    {
        return denied;
    }
    let e = Error::from(e);
    // (A WRONGTYPE inside a script is the script's failure, not a codec
    // error of the entry being read.)
    if matches!(e.kind(), ErrorKind::Server | ErrorKind::Codec) {
        Error::new(
            ErrorKind::Script,
            format!("script {} failed: {e}", script.name),
        )
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact_url("redis://host"), "redis://host");
        assert_eq!(
            redact_url("unix:///r.sock?user=u&pass=secret&db=1"),
            "unix:///r.sock?user=u&pass=***&db=1"
        );
        assert_eq!(normalize_url("/tmp/r.sock"), "unix:///tmp/r.sock");
    }
}
