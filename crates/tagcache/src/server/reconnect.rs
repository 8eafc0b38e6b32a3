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
//! connection); a response timeout does not replace it (Redis may only be
//! slow). No attempt runs unless a call wants the connection, so a Redis
//! that stays down costs one attempt per call, as the circuit breaker
//! lets calls through.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisError, RedisFuture, Value};

/// A reconnecting multiplexed connection; clones share it.
#[derive(Clone)]
pub(crate) struct Reconnecting {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    config: AsyncConnectionConfig,
    connect_timeout: Duration,
    state: RwLock<State>,
    /// Woken when an attempt ends (either way).
    attempt_ended: tokio::sync::Notify,
}

enum State {
    Ready(MultiplexedConnection, u64),
    Connecting(u64),
    /// Why the last attempt failed, or the connection died.
    Broken(u64, RedisError),
}

impl State {
    fn generation(&self) -> u64 {
        match self {
            Self::Ready(_, g) | Self::Connecting(g) | Self::Broken(g, _) => *g,
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
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(response_timeout));
        Self {
            inner: Arc::new(Inner {
                client,
                config,
                connect_timeout,
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

    /// The current connection and its generation, connecting (or waiting
    /// for the attempt in flight) when there is none.
    async fn connection(&self) -> redis::RedisResult<(MultiplexedConnection, u64)> {
        if let State::Ready(c, g) = &*self.read() {
            return Ok((c.clone(), *g));
        }
        let ended = self.inner.attempt_ended.notified();
        tokio::pin!(ended);
        ended.as_mut().enable();
        let start = {
            let mut state = self.write();
            match &*state {
                State::Ready(c, g) => return Ok((c.clone(), *g)),
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
            State::Ready(c, g) => Ok((c.clone(), *g)),
            State::Connecting(_) => Err(not_connected("a connection attempt is still running")),
            State::Broken(_, e) => Err(e.clone()),
        }
    }

    /// One connection attempt; its outcome becomes the state.
    async fn attempt(&self) {
        let attempt = self
            .inner
            .client
            .get_multiplexed_async_connection_with_config(&self.inner.config);
        let outcome = tokio::time::timeout(self.inner.connect_timeout, attempt).await;
        {
            let mut state = self.write();
            let next = state.generation() + 1;
            *state = match outcome {
                Ok(Ok(c)) => State::Ready(c, next),
                Ok(Err(e)) => State::Broken(next, e),
                Err(_) => State::Broken(
                    next,
                    RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer within {:?}", self.inner.connect_timeout),
                    )),
                ),
            };
        }
        self.inner.attempt_ended.notify_waiters();
    }

    /// After a call on connection `generation` failed with `e`: a gone
    /// connection is dropped, and the next call connects again.
    fn check(&self, generation: u64, e: &RedisError) {
        if !(e.is_unrecoverable_error() || e.is_io_error() || e.is_connection_dropped()) {
            return;
        }
        let mut state = self.write();
        if matches!(&*state, State::Ready(_, g) if *g == generation) {
            *state = State::Broken(generation, e.clone());
        }
    }
}

fn not_connected(why: &str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        format!("not connected to redis: {why}"),
    ))
}

impl ConnectionLike for Reconnecting {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let (mut c, generation) = self.connection().await?;
            let result = c.send_packed_command(cmd).await;
            if let Err(e) = &result {
                self.check(generation, e);
            }
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let (mut c, generation) = self.connection().await?;
            let result = c.send_packed_commands(pipeline, offset, count).await;
            if let Err(e) = &result {
                self.check(generation, e);
            }
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.inner
            .client
            .get_connection_info()
            .redis_settings()
            .db()
    }
}
