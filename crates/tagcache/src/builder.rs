//! Building a [`Cache`]: every option with its default, checked at `build`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::cache::{Cache, Inner};
use crate::engine::core::{Core, Limits};
use crate::engine::meta::Setup;
use crate::engine::queue::WriteQueue;
use crate::error::{Error, ErrorKind, InvalidInput, Result};
use crate::failsafe::journal::Journal;
use crate::layout::codec::Compression;
use crate::layout::keys::KeySpace;
use crate::observe::KeyLogging;
use crate::options::WritePath;
use crate::scripts::SCRIPTS;
use crate::server::breaker::{Breaker, BreakerConfig};
use crate::server::conn::{redact_url, Conn, Gate};
use crate::server::policy::{self, EvictionCheck};
use crate::server::ServerInfo;

/// Buckets of a new namespace on a single server (see [`CacheBuilder::buckets`]).
const SINGLE_SERVER_BUCKETS: u16 = 1;
/// Buckets of a new namespace on a cluster.
const CLUSTER_BUCKETS: u16 = 16;

/// Configures and connects a [`Cache`]. Created by [`Cache::builder`].
///
/// ```no_run
/// # async fn demo() -> tagcache::Result<()> {
/// use std::time::Duration;
/// let cache = tagcache::Cache::builder("redis://127.0.0.1:6379")
///     .namespace("shop")
///     .default_ttl(Duration::from_secs(600))
///     .max_ttl(Duration::from_secs(86_400))
///     .response_timeout(Duration::from_millis(250))
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct CacheBuilder {
    url: String,
    namespace: String,
    default_ttl: Duration,
    max_ttl: Duration,
    connect_timeout: Duration,
    response_timeout: Duration,
    buckets: Option<u16>,
    setup: Setup,
    cluster: Option<Vec<String>>,
    compression: Compression,
    max_tags: usize,
    max_value_bytes: usize,
    chunk_size: usize,
    trim_limit: usize,
    write_path: WritePath,
    eviction_check: EvictionCheck,
    auto_sweep: Option<Duration>,
    tls_root: Option<Vec<u8>>,
    fence_window: Duration,
    breaker: BreakerConfig,
    journal_capacity: usize,
    op_timeout: Duration,
    key_logging: KeyLogging,
    eager_permille: u16,
    lease: Option<crate::options::LeaseConfig>,
    legacy: Option<(crate::legacy::LegacyRules, crate::legacy::LegacyMode)>,
    l1: Option<crate::l1::L1Options>,
}

impl Cache {
    /// Starts configuring a cache for the Redis at `url`: `redis://`,
    /// `rediss://` (TLS), `redis+unix://` / `unix://` or a bare socket path;
    /// user and password go in the URL (`redis://user:pass@host:port/db`).
    pub fn builder(url: impl Into<String>) -> CacheBuilder {
        CacheBuilder::new(url)
    }
}

impl CacheBuilder {
    pub(crate) fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            namespace: "tagcache".to_owned(),
            default_ttl: Duration::from_secs(3600),
            max_ttl: Duration::from_secs(7 * 24 * 3600),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_millis(100),
            buckets: None,
            setup: Setup::Create,
            cluster: None,
            compression: Compression::default(),
            max_tags: 4096,
            max_value_bytes: 64 << 20,
            chunk_size: 1000,
            trim_limit: 0,
            write_path: WritePath::default(),
            eviction_check: EvictionCheck::default(),
            auto_sweep: Some(Duration::from_secs(30)),
            tls_root: None,
            fence_window: Duration::from_secs(60),
            breaker: BreakerConfig::default(),
            journal_capacity: 10_000,
            op_timeout: Duration::from_millis(100),
            key_logging: KeyLogging::Off,
            eager_permille: 0,
            lease: None,
            legacy: None,
            l1: None,
        }
    }

    /// Puts an in-process L1 tier in front of Redis for [`Cache::get`],
    /// [`Cache::get_bytes`] and the fail-safe view's reads: hits are served
    /// without a round trip, and every change made anywhere (any process,
    /// any API) reaches it as an announcement from the script that made
    /// it. An L1 entry lives at most [`crate::L1Options::ttl`] after its read and
    /// never past its Redis expiry; the staleness bound is stated in
    /// docs/l1.md. Opens one more connection (the subscription; on Redis
    /// Cluster one per node). Default: off.
    pub fn l1(mut self, options: crate::l1::L1Options) -> Self {
        self.l1 = Some(options);
        self
    }

    /// The namespace all keys live under: 1 to 64 characters of
    /// `[A-Za-z0-9_-]`. Default: `tagcache`.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = ns.into();
        self
    }

    /// TTL of entries written without one. Default: 1 hour.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// The longest TTL an entry may have; longer TTLs are refused. Every
    /// entry expires, so every index member can be pruned. Default: 7 days.
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }

    /// How long connecting may take. Default: 2 s.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// How long one Redis call may take: every command, script and
    /// pipeline is bounded by it: a call fails with a timeout between 1 and
    /// 1.25 times this after it was sent (on a single server the connection
    /// keeps the bound as a whole, at no cost per call, and is replaced
    /// when it fires). Default: 100 ms, small enough for an application to fall
    /// back quickly; admin tools may want more. Every server call tagcache
    /// makes does bounded work (a few ms), so it fits.
    pub fn response_timeout(mut self, t: Duration) -> Self {
        self.response_timeout = t;
        self
    }

    /// How many buckets (hash slots) the namespace is spread over; fixed for
    /// the life of a namespace and recorded in its meta key. An entry and
    /// its index edges share a bucket, so every write is one atomic script
    /// even on Redis Cluster; an invalidation visits every bucket. Use 1 on
    /// a single server, and on a cluster a few per master. Default: 1 on a
    /// single server, 16 on a cluster.
    pub fn buckets(mut self, n: u16) -> Self {
        self.buckets = Some(n);
        self
    }

    /// Uses the bucket count recorded in the namespace's meta key, whatever
    /// [`buckets`](Self::buckets) says; a namespace that does not exist yet
    /// is created with [`buckets`](Self::buckets) (or its default). For
    /// tools that must work on any namespace. Default: off (a namespace
    /// recorded with another count is refused with [`ErrorKind::Layout`]).
    /// Needs [`build`](Self::build) (`build_lazy` refuses it).
    pub fn adopt_buckets(mut self) -> Self {
        self.setup = Setup::Adopt;
        self
    }

    /// Opens the namespace only if it exists, with the bucket count its
    /// meta key records, and never writes during `build`: the meta key is
    /// read with `HMGET`. A namespace that does not exist fails `build`
    /// with [`ErrorKind::NamespaceNotFound`]. For read-only tools
    /// (inspection must not create, or pin the bucket count of, a
    /// namespace an application will create later). Default: off.
    /// Needs [`build`](Self::build) (`build_lazy` refuses it).
    pub fn existing_namespace(mut self) -> Self {
        self.setup = Setup::Existing;
        self
    }

    /// Payload compression. Default: LZ4 for payloads of 1 KiB or more.
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }

    /// Most tags one entry may carry. Default: 4096.
    pub fn max_tags(mut self, n: usize) -> Self {
        self.max_tags = n;
        self
    }

    /// Largest encoded value accepted (and largest decompressed value
    /// read). Default: 64 MiB.
    pub fn max_value_bytes(mut self, n: usize) -> Self {
        self.max_value_bytes = n;
        self
    }

    /// Most entries one invalidation or delete call removes. Each call
    /// also bounds its own time (it stops after ~0.7 ms of reading and
    /// reports the rest, which the next call takes), so this is an upper
    /// bound, not the size of every call. Default: 1000.
    pub fn chunk_size(mut self, n: usize) -> Self {
        self.chunk_size = n.max(1);
        self
    }

    /// Expired members trimmed from an index each time it is written
    /// (0: none). Default: 0 — the sweep trims them (the registry files
    /// every index under its next expiry), and a write saves a `ZRANGE`
    /// per tag; set it when indexes must shrink between sweeps.
    pub fn trim_limit(mut self, n: usize) -> Self {
        self.trim_limit = n;
        self
    }

    /// How writes reach Redis. Default: [`WritePath::Transaction`]
    /// (`MULTI`/`EXEC`, no script for the common write); `Script` runs
    /// `set.lua` for every write.
    pub fn write_path(mut self, path: WritePath) -> Self {
        self.write_path = path;
        self
    }

    /// What to do when Redis' `maxmemory-policy` could evict index keys.
    /// Default: [`EvictionCheck::Refuse`].
    pub fn eviction_check(mut self, c: EvictionCheck) -> Self {
        self.eviction_check = c;
        self
    }

    /// Sweep in the background at about this interval (`None`: never; then
    /// call [`Cache::prune`] yourself). Default: every 30 s.
    pub fn auto_sweep(mut self, every: Option<Duration>) -> Self {
        self.auto_sweep = every;
        self
    }

    /// How long an invalidation or delete is remembered to refuse guarded
    /// writes ([`crate::Cache::get_or_compute`]) whose read began before
    /// it; a loader running longer than this cannot store its value.
    /// Default: 60 s.
    pub fn fence_window(mut self, window: Duration) -> Self {
        self.fence_window = window.max(Duration::from_millis(1));
        self
    }

    /// Read-throughs that may refresh in the background
    /// ([`crate::Cache::get_or_refresh`],
    /// [`crate::FailSafeCache::get_or_refresh`]) reload an entry once
    /// `fraction` of its TTL has passed, while serving the cached value:
    /// a hot key is refreshed before it expires. One refresh per key and
    /// process at a time; its store is fenced like any read-through store.
    /// Per call: [`crate::SetOptions::eager_refresh`]. `fraction` is
    /// clamped to 0..=1; 0 turns it off. Default: off.
    pub fn eager_refresh(mut self, fraction: f64) -> Self {
        self.eager_permille = crate::options::permille(fraction);
        self
    }

    /// Single flight across processes: a read-through miss takes a lease
    /// on the key in Redis (`SET NX PX lease`) before its loader runs; a
    /// miss in another process that finds the lease taken waits (polling,
    /// up to `max_wait`) for the holder's value instead of loading. The
    /// lease expires after `lease` if its holder dies; a waiter whose wait
    /// exceeds `max_wait` loads itself. `lease` should exceed the loader's
    /// usual run time (a longer run lets a second process load).
    /// Per call: [`crate::SetOptions::lease`]. Default: off (a call that
    /// asks for a lease without one configured here gets a 5 s lease and
    /// a 5 s wait).
    pub fn load_lease(mut self, lease: Duration, max_wait: Duration) -> Self {
        self.lease = Some(crate::options::LeaseConfig::new(lease, max_wait));
        self
    }

    /// Circuit breaker settings. Default: [`BreakerConfig::default`] (open
    /// after 5 consecutive failures, probe after 250 ms, backing off to 1 s).
    pub fn breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = config;
        self
    }

    /// How many invalidations and deletes the fail-safe view keeps while
    /// Redis is unreachable, to replay them when it answers. Default:
    /// 10 000. Past that, see [`crate::FailSafeCache`].
    pub fn journal_capacity(mut self, n: usize) -> Self {
        self.journal_capacity = n.max(1);
        self
    }

    /// Time limit of one operation through [`Cache::fail_safe`] (each call
    /// can override it). When it is not shorter than the response timeout,
    /// the connection's own timeout bounds the operation and no timer is
    /// set per call. Default: 100 ms (the response timeout's default).
    pub fn op_timeout(mut self, t: Duration) -> Self {
        self.op_timeout = t;
        self
    }

    /// How keys appear in tracing spans (values never do). Default:
    /// [`KeyLogging::Off`].
    pub fn key_logging(mut self, policy: KeyLogging) -> Self {
        self.key_logging = policy;
        self
    }

    /// Connects to a Redis Cluster through these seed nodes (`redis://host:port`
    /// each, credentials in the URLs) instead of the builder's URL. The URL
    /// form `redis+cluster://[user:pass@]host1:port1,host2:port2` does the
    /// same. See "Redis Cluster" in `docs/redis-layout.md`.
    pub fn cluster<I, S>(mut self, seeds: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.cluster = Some(seeds.into_iter().map(Into::into).collect());
        self
    }

    /// The cluster seeds, from `cluster` or a `redis+cluster://` URL.
    fn cluster_seeds(&self) -> Option<Vec<String>> {
        if let Some(seeds) = &self.cluster {
            return Some(seeds.clone());
        }
        let rest = self.url.strip_prefix("redis+cluster://")?;
        let (auth, hosts) = match rest.rsplit_once('@') {
            Some((a, h)) => (format!("{a}@"), h),
            None => (String::new(), rest),
        };
        Some(
            hosts
                .trim_end_matches('/')
                .split(',')
                .map(|h| format!("redis://{auth}{h}"))
                .collect(),
        )
    }

    /// Old key formats to fall back to and migrate from, for owner scopes
    /// (see [`crate::legacy::LegacyRules`]): scoped reads that miss read the legacy
    /// key and, with [`crate::legacy::LegacyMode::Migrate`], move it; listings and
    /// clears also scan for an owner's legacy keys until a bulk migration
    /// has completed. Default: none.
    pub fn legacy(
        mut self,
        rules: crate::legacy::LegacyRules,
        mode: crate::legacy::LegacyMode,
    ) -> Self {
        self.legacy = Some((rules, mode));
        self
    }

    /// For `rediss://` URLs: trust this root certificate (PEM) instead of
    /// the system's trust store. Default: the system's trust store.
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root = Some(pem.into());
        self
    }

    /// Connects and checks the server.
    ///
    /// # Errors
    /// - [`ErrorKind::InvalidInput`]: bad namespace, bucket count or TTLs;
    /// - [`ErrorKind::Config`]: bad URL, or Redis older than 7.0;
    /// - [`ErrorKind::Connection`], [`ErrorKind::Timeout`],
    ///   [`ErrorKind::Auth`]: Redis unreachable, slow, or refusing the
    ///   user (including a user who may not run scripts);
    /// - [`ErrorKind::Layout`]: the namespace was created with another
    ///   layout version or bucket count (without
    ///   [`adopt_buckets`](Self::adopt_buckets) /
    ///   [`existing_namespace`](Self::existing_namespace));
    /// - [`ErrorKind::NamespaceNotFound`] when the namespace does not
    ///   exist, with [`existing_namespace`](Self::existing_namespace);
    /// - [`ErrorKind::UnsafeEvictionPolicy`]: see [`EvictionCheck`].
    pub async fn build(self) -> Result<Cache> {
        let space = self.validate()?;
        let breaker = Breaker::new(self.breaker, &self.namespace);
        let conn = match self.cluster_seeds() {
            Some(seeds) => {
                Conn::connect_cluster(
                    &seeds,
                    self.tls_root.as_deref(),
                    self.connect_timeout,
                    self.response_timeout,
                    breaker,
                )
                .await?
            }
            None => {
                Conn::connect(
                    &self.url,
                    self.tls_root.as_deref(),
                    self.connect_timeout,
                    self.response_timeout,
                    breaker,
                )
                .await?
            }
        };
        let (info, space) = self.startup_checks(&conn, space).await?;
        let verify = policy::may_evict_entries(&info.eviction_policy);
        let cell = Arc::new(OnceLock::new());
        let _ = cell.set(info);
        Ok(self.assemble(conn, space, verify, cell))
    }

    /// Builds the cache without waiting for Redis, for applications that
    /// must start while Redis is down. Connecting and the checks of
    /// [`CacheBuilder::build`] run in the background (retried every
    /// second); until they pass, every call fails fast with
    /// [`ErrorKind::Connection`], which the [fail-safe view](Cache::fail_safe)
    /// turns into bypasses. A check that fails (wrong password, unsafe
    /// eviction policy, layout mismatch) is logged and retried.
    ///
    /// Must be called within a Tokio runtime.
    ///
    /// # Errors
    /// Only invalid settings: namespace, bucket count, TTLs, URL, and
    /// [`adopt_buckets`](Self::adopt_buckets) /
    /// [`existing_namespace`](Self::existing_namespace) (the bucket count
    /// must be known before Redis answers).
    pub fn build_lazy(self) -> Result<Cache> {
        let space = self.validate()?;
        if self.setup != Setup::Create {
            return Err(Error::new(
                ErrorKind::Config,
                "adopt_buckets and existing_namespace need build, not build_lazy",
            ));
        }
        if self.cluster_seeds().is_some() {
            return Err(Error::new(
                ErrorKind::Config,
                "build_lazy does not support Redis Cluster yet: use build",
            ));
        }
        let gate = Arc::new(Gate::default());
        gate.set_reason("connecting".to_owned());
        let conn = Conn::lazy(
            &self.url,
            self.tls_root.as_deref(),
            self.connect_timeout,
            self.response_timeout,
            Breaker::new(self.breaker, &self.namespace),
            gate.clone(),
        )?;
        let cell = Arc::new(OnceLock::new());
        let checker = conn.ungated();
        // Until the policy is known, listings check that entries exist.
        let cache = self
            .clone()
            .assemble(conn, space.clone(), true, cell.clone());
        let shown = redact_url(&self.url);
        tokio::spawn(async move {
            let mut last = String::new();
            // Stops when every clone of the cache is gone (the task holds
            // the last reference to the gate).
            while Arc::strong_count(&gate) > 1 {
                match self.startup_checks(&checker, space.clone()).await {
                    Ok((info, _)) => {
                        let _ = cell.set(info);
                        gate.open();
                        tracing::info!(url = %shown, namespace = %self.namespace, "tagcache connected");
                        break;
                    }
                    Err(e) => {
                        let reason = e.to_string();
                        if reason != last {
                            tracing::error!(url = %shown, namespace = %self.namespace, error = %reason, "tagcache cannot use redis yet; bypassing the cache");
                            last.clone_from(&reason);
                        }
                        gate.set_reason(reason);
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Ok(cache)
    }

    fn validate(&self) -> Result<KeySpace> {
        let default_buckets = if self.cluster_seeds().is_some() {
            CLUSTER_BUCKETS
        } else {
            SINGLE_SERVER_BUCKETS
        };
        let space = KeySpace::new(&self.namespace, self.buckets.unwrap_or(default_buckets))?;
        if self.default_ttl < Duration::from_millis(1) || self.max_ttl < Duration::from_millis(1) {
            return Err(InvalidInput::TtlTooShort.into());
        }
        if self.default_ttl > self.max_ttl {
            return Err(InvalidInput::TtlAboveMax(
                self.default_ttl.as_millis(),
                self.max_ttl.as_millis(),
            )
            .into());
        }
        Ok(space)
    }

    /// Version, scripts (which also proves the user may run them), layout
    /// and eviction policy; returns the key space to use (with the
    /// recorded bucket count, per [`Setup`]).
    async fn startup_checks(&self, conn: &Conn, space: KeySpace) -> Result<(ServerInfo, KeySpace)> {
        let info = ServerInfo::read(conn).await?;
        crate::server::check_version(&info.redis_version)?;
        for script in SCRIPTS.all() {
            conn.load(script).await?;
        }
        let space = crate::engine::meta::open(conn, space, self.setup).await?;
        policy::check(&info.eviction_policy, self.eviction_check)?;
        Ok((info, space))
    }

    fn assemble(
        self,
        conn: Conn,
        space: KeySpace,
        verify_listing: bool,
        info: Arc<OnceLock<ServerInfo>>,
    ) -> Cache {
        let limits = Limits {
            default_ttl: self.default_ttl,
            max_ttl: self.max_ttl,
            max_tags: self.max_tags,
            max_value_bytes: self.max_value_bytes,
            chunk_size: self.chunk_size,
            trim_limit: self.trim_limit,
            write_path: self.write_path,
            compression: self.compression,
            fence_window: self.fence_window,
            verify_listing,
            key_logging: self.key_logging,
            eager_permille: self.eager_permille,
            lease: self.lease,
        };
        let journal = Arc::new(Journal::new(
            self.journal_capacity,
            self.max_ttl,
            &self.namespace,
        ));
        let core = Arc::new(Core {
            conn,
            space,
            limits,
            gone: Default::default(),
            clock: Default::default(),
            recent: Default::default(),
        });
        let writes = WriteQueue::start(core.clone());
        let replayer = crate::tasks::start_replayer(&core, &journal);
        let sweeper = self
            .auto_sweep
            .map(|every| crate::tasks::start_sweeper(&core, every));
        let (l1, l1_listener) = match self.l1.clone().map(|o| self.start_l1(o, &core.space)) {
            Some(Ok((l1, listener))) => {
                journal.set_l1(l1.clone());
                (Some(l1), Some(listener))
            }
            Some(Err(e)) => {
                // The URL was already accepted by the main connection.
                tracing::error!(namespace = %self.namespace, error = %e, "L1 tier disabled");
                (None, None)
            }
            None => (None, None),
        };
        Cache::from_inner(Inner {
            core,
            writes,
            info,
            flights: Default::default(),
            journal,
            hot_metrics: crate::observe::metrics::HotMetrics::new(&self.namespace),
            op_timeout: self.op_timeout,
            response_timeout: self.response_timeout,
            legacy: self
                .legacy
                .map(|(rules, mode)| Arc::new(crate::legacy::Legacy::new(rules, mode))),
            l1,
            _l1_listener: l1_listener,
            _sweeper: sweeper,
            _replayer: replayer,
        })
    }

    /// The L1 tier and its subscription task.
    fn start_l1(
        &self,
        options: crate::l1::L1Options,
        space: &KeySpace,
    ) -> Result<(Arc<crate::l1::L1>, crate::tasks::AbortOnDrop)> {
        let backend = match self.cluster_seeds() {
            Some(seeds) => {
                crate::l1::listener::Backend::Cluster(crate::l1::cluster_listener::Seeds {
                    seeds,
                    tls_root: self.tls_root.clone(),
                })
            }
            None => crate::l1::listener::Backend::Single(crate::l1::listener::client(
                &self.url,
                self.tls_root.as_deref(),
            )?),
        };
        let l1 = Arc::new(crate::l1::L1::new(
            options,
            space.buckets(),
            &self.namespace,
        ));
        let task = tokio::spawn(crate::l1::listener::run(
            Arc::downgrade(&l1),
            backend,
            space.clone(),
            self.connect_timeout,
        ));
        Ok((l1, crate::tasks::AbortOnDrop::new(task)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README's sentence of defaults, rebuilt from the builder's own values.
    #[test]
    fn readme_states_the_builder_defaults() {
        let b = CacheBuilder::new("redis://localhost");
        let days = b.max_ttl.as_secs() / 86_400;
        let sweep = b.auto_sweep.map_or(0, |d| d.as_secs());
        let kib = crate::layout::codec::DEFAULT_COMPRESSION_THRESHOLD / 1024;
        assert_eq!(b.compression, Compression::default());
        let expected = format!(
            "namespace (`{}`), default TTL ({} h), maximum TTL ({days} days; there is no \"forever\"), \
             connect / response timeouts ({} s / {} ms), buckets ({SINGLE_SERVER_BUCKETS}; \
             {CLUSTER_BUCKETS} on a cluster), LZ4 compression (payloads ≥ {kib} KiB), chunk size \
             ({}), background sweep (every {sweep} s).",
            b.namespace,
            b.default_ttl.as_secs() / 3600,
            b.connect_timeout.as_secs(),
            b.response_timeout.as_millis(),
            b.chunk_size,
        );
        let readme = include_str!("../../../README.md");
        let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains(&expected), "README.md should say: {expected}");
    }
}
