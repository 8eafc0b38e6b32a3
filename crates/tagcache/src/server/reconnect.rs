//! One multiplexed connection to a single server that replaces itself when
//! it breaks.
//!
//! redis-rs' `ConnectionManager` does this job too, but every call pays for
//! its generality (an `ArcSwap` load, a shared future cloned and polled,
//! one more boxed future): ~10 % of a `GET`'s client time, measured by
//! `tagcache bench` (`get_bytes` against `GET` on a bare multiplexed
//! connection). Here a call is a read lock, a clone of the connection
//! handle and the command.
//!
//! States: *ready* (a connection), *connecting* (one attempt in flight;
//! callers wait for it, at most the connect timeout), *broken* (the last
//! attempt failed or the connection died; the next call starts a new
//! attempt and waits for it). A connection is replaced when a call on it
//! fails with an error that says it is gone (I/O error, dropped
//! connection) or when it has not answered for the response timeout
//! ([`crate::server::watchdog`]: every call waiting on it fails as timed
//! out). No attempt runs unless a call wants the connection, so a Redis
//! that stays down costs one attempt per call, as the circuit breaker
//! lets calls through.
//!
//! TCP and Unix-socket connections are opened here, so their driver task
//! can be stopped by the watchdog; any other address (TLS) is opened by
//! redis-rs with its per-call response timeout.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Cmd, ConnectionAddr, Pipeline, RedisError, RedisFuture, Value};

use crate::server::watchdog::{no_answer, Watch};

/// A reconnecting multiplexed connection; clones share it.
#[derive(Clone)]
pub(crate) struct Reconnecting {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    config: AsyncConnectionConfig,
    connect_timeout: Duration,
    response_timeout: Duration,
    state: RwLock<State>,
    /// Woken when an attempt ends (either way).
    attempt_ended: tokio::sync::Notify,
}

enum State {
    Ready(Live),
    Connecting(u64),
    /// Why the last attempt failed, or the connection died.
    Broken(u64, RedisError),
}

/// The task that moves a connection's requests and replies.
type Driver = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A working connection: what a call needs.
#[derive(Clone)]
struct Live {
    conn: MultiplexedConnection,
    generation: u64,
    /// `None` when redis-rs times each call (a TLS connection).
    watch: Option<Arc<Watch>>,
}

impl State {
    fn generation(&self) -> u64 {
        match self {
            Self::Ready(l) => l.generation,
            Self::Connecting(g) | Self::Broken(g, _) => *g,
        }
    }
}

impl Reconnecting {
    /// Not connected yet: the first call connects.
    pub(crate) fn lazy(
        client: redis::Client,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Self {
        // The response timeout is the watchdog's (see `open`).
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(None);
        Self {
            inner: Arc::new(Inner {
                client,
                config,
                connect_timeout,
                response_timeout,
                state: RwLock::new(State::Broken(0, not_connected("not connected yet"))),
                attempt_ended: tokio::sync::Notify::new(),
            }),
        }
    }

    /// Connects now; fails with the attempt's error.
    pub(crate) async fn connect(
        client: redis::Client,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> redis::RedisResult<Self> {
        let this = Self::lazy(client, connect_timeout, response_timeout);
        this.connection().await?;
        Ok(this)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The current connection, connecting (or waiting for the attempt in
    /// flight) when there is none.
    async fn connection(&self) -> redis::RedisResult<Live> {
        if let State::Ready(l) = &*self.read() {
            return Ok(l.clone());
        }
        let ended = self.inner.attempt_ended.notified();
        tokio::pin!(ended);
        ended.as_mut().enable();
        let start = {
            let mut state = self.write();
            match &*state {
                State::Ready(l) => return Ok(l.clone()),
                State::Connecting(_) => false,
                State::Broken(g, _) => {
                    *state = State::Connecting(*g);
                    true
                }
            }
        };
        if start {
            let this = self.clone();
            tokio::spawn(async move { this.attempt().await });
        }
        // (The attempt is bounded by the connect timeout; the margin
        // covers scheduling.)
        let _ = tokio::time::timeout(self.inner.connect_timeout * 2, ended).await;
        match &*self.read() {
            State::Ready(l) => Ok(l.clone()),
            State::Connecting(_) => Err(not_connected("a connection attempt is still running")),
            State::Broken(_, e) => Err(e.clone()),
        }
    }

    /// One connection attempt; its outcome becomes the state.
    async fn attempt(&self) {
        let next = self.read().generation() + 1;
        let outcome = tokio::time::timeout(self.inner.connect_timeout, self.open(next)).await;
        {
            let mut state = self.write();
            *state = match outcome {
                Ok(Ok(l)) => State::Ready(l),
                Ok(Err(e)) => State::Broken(next, e),
                Err(_) => State::Broken(next, no_answer(self.inner.connect_timeout)),
            };
        }
        self.inner.attempt_ended.notify_waiters();
    }

    /// Opens connection number `generation`: over TCP or a Unix socket
    /// with its own driver task, watched for the response timeout; any
    /// other address through redis-rs, which times each call.
    async fn open(&self, generation: u64) -> redis::RedisResult<Live> {
        let info = self.inner.client.get_connection_info();
        let settings = info.redis_settings();
        let config = self.inner.config.clone();
        let (conn, driver): (_, Driver) = match info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                stream.set_nodelay(true)?;
                let (c, d) =
                    MultiplexedConnection::new_with_config(settings, stream, config).await?;
                (c, Box::pin(d))
            }
            #[cfg(unix)]
            ConnectionAddr::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await?;
                let (c, d) =
                    MultiplexedConnection::new_with_config(settings, stream, config).await?;
                (c, Box::pin(d))
            }
            _ => {
                let config = config.set_response_timeout(Some(self.inner.response_timeout));
                let conn = self
                    .inner
                    .client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                return Ok(Live {
                    conn,
                    generation,
                    watch: None,
                });
            }
        };
        let driver = tokio::spawn(driver).abort_handle();
        let inner = Arc::downgrade(&self.inner);
        let timeout = self.inner.response_timeout;
        let watch = Watch::start(timeout, driver, move || stuck(&inner, generation, timeout));
        Ok(Live {
            conn,
            generation,
            watch: Some(watch),
        })
    }

    /// After a call on connection `generation` failed with `e`: a gone
    /// connection is dropped, and the next call connects again.
    fn check(&self, generation: u64, e: &RedisError) {
        if !(e.is_unrecoverable_error() || e.is_io_error() || e.is_connection_dropped()) {
            return;
        }
        self.inner.broken(generation, e.clone());
    }
}

impl Inner {
    /// Connection `generation`, if still the current one, is gone (`why`):
    /// the next call connects again.
    fn broken(&self, generation: u64, why: RedisError) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if matches!(&*state, State::Ready(l) if l.generation == generation) {
            *state = State::Broken(generation, why);
        }
    }
}

/// The watchdog stopped connection `generation` (no answer for `timeout`).
fn stuck(inner: &Weak<Inner>, generation: u64, timeout: Duration) {
    if let Some(inner) = inner.upgrade() {
        inner.broken(generation, no_answer(timeout));
    }
}

fn not_connected(why: &str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        format!("not connected to redis: {why}"),
    ))
}

impl Reconnecting {
    /// Sends through the current connection (`send` gets a handle of it):
    /// counted by its watchdog while in flight, and a failure that says
    /// the connection is gone replaces it.
    async fn call<T, Fut>(
        &self,
        send: impl FnOnce(MultiplexedConnection) -> Fut,
    ) -> redis::RedisResult<T>
    where
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let Live {
            conn,
            generation,
            watch,
        } = self.connection().await?;
        let result = match &watch {
            Some(w) => {
                let _in_flight = w.enter();
                tokio::select! {
                    biased;
                    r = send(conn) => r.map_err(|e| w.explain(e)),
                    () = w.stopped() => Err(no_answer(self.inner.response_timeout)),
                }
            }
            None => send(conn).await,
        };
        if let Err(e) = &result {
            self.check(generation, e);
        }
        result
    }
}

impl ConnectionLike for Reconnecting {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.call(move |mut c| async move { c.send_packed_command(cmd).await }))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(self.call(move |mut c| async move {
            c.send_packed_commands(pipeline, offset, count).await
        }))
    }

    fn get_db(&self) -> i64 {
        self.inner
            .client
            .get_connection_info()
            .redis_settings()
            .db()
    }
}
