//! The Python methods, written once for the synchronous classes (`$run`
//! = [`crate::run_sync`]: blocks with the GIL released) and the asyncio
//! ones (`$run` = [`crate::spawn`]: returns an awaitable).
//!
//! The fail-safe macros repeat the signatures of the strict ones they
//! mirror (`set`, `get_or_compute`, `set_path`, `scope`, `group`, ...) on
//! purpose: the methods call other operations (`ops::fs_*`), return other
//! things and say so in their docs, so a macro per method would carry the
//! same name, signature, doc and call as arguments and share no logic.
//! What the bodies share is shared: the conversions (`convert`), the group
//! options (`configure_group!`) and the result shapes (`ops`).

/// What the macros below expand to needs in scope: `sync.rs`, `aio.rs` and
/// `views.rs` import it whole.
pub(crate) mod prelude {
    pub(crate) use pyo3::prelude::*;
    pub(crate) use pyo3::types::{PyDict, PyTuple};

    pub(crate) use crate::convert::{
        owner_path, pairs, set_options, In, Key, Keys, PartArg, PathArg, PatternArg, Secs,
    };
    pub(crate) use crate::errors::OrPy;
    pub(crate) use crate::methods::{
        cache_methods, class, failsafe_group_methods, failsafe_methods, failsafe_scope_methods,
        group_methods, scope_methods, twins,
    };
    pub(crate) use crate::ops;
    pub(crate) use crate::pager::Pager;
}

/// Declares a class holding one library handle; `ASYNC` says whether the
/// loaders its methods take may return awaitables (the asyncio classes).
macro_rules! class {
    ($(#[$doc:meta])* $ty:ident { $field:ident: $inner:ty }, async = $async:literal) => {
        $(#[$doc])*
        #[pyclass(module = "tagcache", frozen)]
        pub(crate) struct $ty {
            pub(crate) $field: $inner,
        }

        impl $ty {
            // Read by the methods that take a loader (not every class has one).
            #[allow(dead_code)]
            const ASYNC: bool = $async;
        }
    };
}

/// Declares a synchronous class and its asyncio twin over one library
/// handle (see [`class!`]) and generates both method sets with `$methods!`
/// (the arguments after the class name: the sync ones, then the async).
macro_rules! twins {
    (
        $(#[$doc:meta])*
        $sync:ident / $aio:ident { $field:ident: $inner:ty }
            => $methods:ident($($sync_arg:ident),*) / ($($aio_arg:ident),*)
    ) => {
        crate::methods::class!($(#[$doc])* $sync { $field: $inner }, async = false);
        $methods!($sync, crate::run_sync $(, $sync_arg)*);

        crate::methods::class!(
            #[doc = concat!("[`", stringify!($sync), "`] with coroutine methods.")]
            $aio { $field: $inner },
            async = true
        );
        $methods!($aio, crate::spawn $(, $aio_arg)*);
    };
}

/// Applies `group(...)`'s keyword options to a `tagcache::Group` or
/// `tagcache::FailSafeGroup` (same setters, no common trait).
macro_rules! configure_group {
    ($g:expr, $default_ttl:expr, $cap:expr, $tags:expr, $dry_run:expr) => {{
        let mut g = $g;
        if let Some(t) = $default_ttl {
            g = g.default_ttl(t.0);
        }
        if let Some(n) = $cap {
            g = g.cap(n);
        }
        for t in $tags.map(|t| t.0).unwrap_or_default() {
            g = g.tag(t);
        }
        g.dry_run($dry_run)
    }};
}

/// Methods of `Cache` / `AsyncCache`.
macro_rules! cache_methods {
    ($ty:ident, $run:path, $scope:ident, $group:ident, $fs:ident, $iter:ident) => {
        #[pymethods]
        impl $ty {
            /// The namespace this cache reads and writes.
            #[getter]
            fn namespace(&self) -> &str {
                self.c.namespace()
            }

            /// State of the circuit breaker in front of Redis:
            /// "closed", "open" or "half_open".
            #[getter]
            fn circuit_state(&self) -> &'static str {
                match self.c.circuit_state() {
                    tagcache::CircuitState::Open => "open",
                    tagcache::CircuitState::HalfOpen => "half_open",
                    _ => "closed",
                }
            }

            fn __repr__(&self) -> String {
                format!("{}(namespace={:?})", stringify!($ty), self.c.namespace())
            }

            /// Reads a value; None when absent or expired. bytes stored
            /// raw come back as bytes, other values decoded from
            /// MessagePack (dict, list, str, int, float, bool, None).
            fn get<'py>(&self, py: Python<'py>, key: Key) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::get(self.c.clone(), key.0))
            }

            /// Stores a value (bytes raw, anything else as MessagePack)
            /// with its tags, atomically with its index edges. `ttl`:
            /// seconds or timedelta (default: the cache's default TTL).
            #[pyo3(signature = (key, value, *, ttl=None, tags=None))]
            fn set<'py>(
                &self,
                py: Python<'py>,
                key: Key,
                value: In,
                ttl: Option<Secs>,
                tags: Option<Keys>,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(
                    py,
                    ops::set(self.c.clone(), key.0, value, set_options(ttl, tags)),
                )
            }

            /// Reads many values with one MGET; a list in the order asked
            /// (None for a miss).
            fn get_many<'py>(&self, py: Python<'py>, keys: Keys) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::get_many(self.c.clone(), keys.0))
            }

            /// Stores many values (a dict, or an iterable of (key, value)
            /// pairs) with the same TTL and tags, in batched script calls.
            /// A key given twice keeps its last value.
            #[pyo3(signature = (items, *, ttl=None, tags=None))]
            fn set_many<'py>(
                &self,
                py: Python<'py>,
                items: &Bound<'py, PyAny>,
                ttl: Option<Secs>,
                tags: Option<Keys>,
            ) -> PyResult<Bound<'py, PyAny>> {
                let items = pairs(items)?;
                $run(
                    py,
                    ops::set_many(self.c.clone(), items, set_options(ttl, tags)),
                )
            }

            /// Deletes an entry and all its index edges; True if it existed.
            fn delete<'py>(&self, py: Python<'py>, key: Key) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::delete(self.c.clone(), key.0))
            }

            /// Deletes entries with their index edges; how many existed.
            fn delete_many<'py>(&self, py: Python<'py>, keys: Keys) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::delete_many(self.c.clone(), keys.0))
            }

            /// Whether an entry exists.
            fn exists<'py>(&self, py: Python<'py>, key: Key) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::exists(self.c.clone(), key.0))
            }

            /// The entry's remaining TTL in seconds; None when absent.
            fn ttl<'py>(&self, py: Python<'py>, key: Key) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::ttl(self.c.clone(), key.0))
            }

            /// The entry's tags in the order written (reserved prefix tags
            /// of hierarchical keys included, starting with "\x00p");
            /// None when absent.
            fn tags<'py>(&self, py: Python<'py>, key: Key) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::tags(self.c.clone(), key.0))
            }

            /// Deletes every entry carrying `tag`; how many were deleted.
            /// Exact: every entry written before the call is gone when it
            /// returns. Bounded: Redis works one chunk per call.
            fn invalidate_tag<'py>(
                &self,
                py: Python<'py>,
                tag: Key,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::invalidate_tags(self.c.clone(), vec![tag.0]))
            }

            /// Deletes every entry carrying any of `tags` (each counted once).
            fn invalidate_tags<'py>(
                &self,
                py: Python<'py>,
                tags: Keys,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::invalidate_tags(self.c.clone(), tags.0))
            }

            /// The live keys carrying `tag`, fetched page by page as the
            /// iterator advances (str, or bytes when not UTF-8).
            #[pyo3(signature = (tag, *, page_size=None))]
            fn keys_with_tag(&self, tag: Key, page_size: Option<usize>) -> $iter {
                let mut keys = self.c.keys_with_tag(&tag.0);
                if let Some(n) = page_size {
                    keys = keys.page_size(n);
                }
                $iter::new(Pager::Tag(keys))
            }

            /// How many live entries carry `tag`.
            fn tag_len<'py>(&self, py: Python<'py>, tag: Key) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::tag_len(self.c.clone(), tag.0))
            }

            /// Whether the live entry `key` carries `tag`.
            fn has_tag<'py>(
                &self,
                py: Python<'py>,
                key: Key,
                tag: Key,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::has_tag(self.c.clone(), key.0, tag.0))
            }

            /// One full sweep (or, with `budget`, one bounded step):
            /// trims expired index members, removes empty indexes,
            /// finishes abandoned invalidations. A dict report.
            #[pyo3(signature = (*, budget=None))]
            fn prune<'py>(
                &self,
                py: Python<'py>,
                budget: Option<u64>,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::prune(self.c.clone(), budget))
            }

            /// Index statistics as a dict.
            fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::stats(self.c.clone()))
            }

            /// Deletes every entry and group of the namespace (entries
            /// written during the call may survive); how many.
            fn clear<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::clear(self.c.clone()))
            }

            /// Stores a value at a hierarchical key (a tuple of parts: str,
            /// bytes or int), indexed under each of its prefixes. The same
            /// entry as set() of the escaped parts joined by ":".
            #[pyo3(signature = (path, value, *, ttl=None, tags=None))]
            fn set_path<'py>(
                &self,
                py: Python<'py>,
                path: PathArg,
                value: In,
                ttl: Option<Secs>,
                tags: Option<Keys>,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(
                    py,
                    ops::set_path(
                        self.c.clone(),
                        path.0,
                        value.into_value(),
                        set_options(ttl, tags),
                    ),
                )
            }

            /// Reads the value at a hierarchical key; None when absent.
            fn get_path<'py>(&self, py: Python<'py>, path: PathArg) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::get_path(self.c.clone(), path.0))
            }

            /// Deletes the entry at a hierarchical key; True if it existed.
            fn delete_path<'py>(
                &self,
                py: Python<'py>,
                path: PathArg,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::delete_path(self.c.clone(), path.0))
            }

            /// Deletes every entry under `prefix` (and the entry at the
            /// prefix itself), however it was written; how many.
            fn invalidate_prefix<'py>(
                &self,
                py: Python<'py>,
                prefix: PathArg,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::invalidate_prefix(self.c.clone(), prefix.0))
            }

            /// The live paths under `prefix`, as tuples, page by page.
            fn paths_under(&self, prefix: PathArg) -> $iter {
                $iter::new(Pager::Paths(self.c.paths_under(&prefix.0)))
            }

            /// The entries whose paths match `pattern` (parts, None for any
            /// one part; it must start with an exact part), as (path, value)
            /// pairs, page by page: `cache.query(("org", 7, "prj", None))`.
            #[pyo3(signature = (pattern, *, page_size=None))]
            fn query(&self, pattern: PatternArg, page_size: Option<usize>) -> $iter {
                let mut q = self.c.query::<rmpv::Value>(&pattern.0);
                if let Some(n) = page_size {
                    q = q.page_size(n);
                }
                $iter::new(Pager::Query(q))
            }

            /// The scope of one owner: `cache.scope("dsr", "pr-1")`.
            #[pyo3(signature = (*owner))]
            fn scope(&self, owner: &Bound<'_, PyTuple>) -> PyResult<$scope> {
                let owner = owner_path(owner)?;
                Ok($scope {
                    s: self.c.scope(owner).py()?,
                })
            }

            /// The hash group `name` of `owner`: small fields cached in
            /// one Redis hash with one TTL, dropped together by clear().
            #[pyo3(signature = (name, owner, *, default_ttl=None, cap=None, tags=None, dry_run=false))]
            fn group(
                &self,
                name: &str,
                owner: PartArg,
                default_ttl: Option<Secs>,
                cap: Option<usize>,
                tags: Option<Keys>,
                dry_run: bool,
            ) -> PyResult<$group> {
                let g = self.c.group(name, owner.0).py()?;
                Ok($group {
                    g: crate::methods::configure_group!(g, default_ttl, cap, tags, dry_run),
                })
            }

            /// Reads `key`; on a miss calls `loader()` (a callable; with
            /// AsyncCache it may return an awaitable), stores its value and
            /// returns it. Concurrent calls for one key in this process
            /// share one loader run; a delete or invalidation during the
            /// load keeps the value from being stored. The loader's
            /// exception propagates and nothing is cached. With
            /// `return_source`, returns (value, source), source one of
            /// "hit", "loaded", "loaded_not_stored", "shared", "stale".
            #[pyo3(signature = (key, loader, *, ttl=None, tags=None, return_source=false))]
            fn get_or_compute<'py>(
                &self,
                py: Python<'py>,
                key: Key,
                loader: Py<PyAny>,
                ttl: Option<Secs>,
                tags: Option<Keys>,
                return_source: bool,
            ) -> PyResult<Bound<'py, PyAny>> {
                let loader = ops::Loader {
                    f: loader,
                    allow_async: Self::ASYNC,
                };
                $run(
                    py,
                    ops::get_or_compute(
                        self.c.clone(),
                        key.0,
                        set_options(ttl, tags),
                        loader,
                        return_source,
                    ),
                )
            }

            /// The fail-safe view: reads and writes never raise for an
            /// unavailable Redis (misses/skips instead), removals are
            /// journaled and replayed. `timeout` bounds each call.
            #[pyo3(signature = (*, timeout=None))]
            fn fail_safe(&self, timeout: Option<Secs>) -> $fs {
                let mut f = self.c.fail_safe();
                if let Some(t) = timeout {
                    f = f.with_timeout(t.0);
                }
                $fs { f }
            }
        }
    };
}

/// Methods of `Scope` / `AsyncScope`.
macro_rules! scope_methods {
    ($ty:ident, $run:path, $iter:ident) => {
        #[pymethods]
        impl $ty {
            /// The owner's path, as a tuple.
            #[getter]
            fn owner<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                crate::convert::path_out(py, self.s.owner())
            }

            fn __repr__(&self) -> String {
                format!("{}({})", stringify!($ty), self.s.owner())
            }

            /// Stores one of the owner's values under `part` (bytes raw,
            /// else MessagePack).
            #[pyo3(signature = (part, value, *, ttl=None, tags=None))]
            fn set<'py>(
                &self,
                py: Python<'py>,
                part: PartArg,
                value: In,
                ttl: Option<Secs>,
                tags: Option<Keys>,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(
                    py,
                    ops::scope_set(self.s.clone(), part.0, value, set_options(ttl, tags)),
                )
            }

            /// Reads one of the owner's values (a legacy key's value, when
            /// legacy rules are set, comes back as bytes).
            fn get<'py>(&self, py: Python<'py>, part: PartArg) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::scope_get(self.s.clone(), part.0))
            }

            /// Deletes one of the owner's values; True if it existed.
            fn delete<'py>(&self, py: Python<'py>, part: PartArg) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::scope_delete(self.s.clone(), part.0))
            }

            /// Whether the owner has a live value under `part`.
            fn contains<'py>(&self, py: Python<'py>, part: PartArg) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::scope_contains(self.s.clone(), part.0))
            }

            /// The remaining TTL (seconds) of one of the owner's values.
            fn ttl<'py>(&self, py: Python<'py>, part: PartArg) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::scope_ttl(self.s.clone(), part.0))
            }

            /// The owner's live keys, as full paths (tuples), page by page.
            fn keys(&self) -> $iter {
                $iter::new(Pager::Scope(self.s.keys()))
            }

            /// Deletes every entry under the owner's path (and nothing
            /// else), however it was written; how many.
            fn clear<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::scope_clear(self.s.clone()))
            }
        }
    };
}

/// Methods of `Group` / `AsyncGroup`.
macro_rules! group_methods {
    ($ty:ident, $run:path) => {
        #[pymethods]
        impl $ty {
            /// Reads `field`; on a miss calls `loader()` (with AsyncGroup
            /// it may return an awaitable) and stores its value, fenced
            /// against clear() and tag invalidations. With
            /// `return_source`, returns (value, source), source one of
            /// "hit", "miss", "shared", "not_stored", "dry_run", "mismatch".
            #[pyo3(signature = (field, loader, *, return_source=false))]
            fn fetch<'py>(
                &self,
                py: Python<'py>,
                field: Key,
                loader: Py<PyAny>,
                return_source: bool,
            ) -> PyResult<Bound<'py, PyAny>> {
                let loader = ops::Loader {
                    f: loader,
                    allow_async: Self::ASYNC,
                };
                $run(
                    py,
                    ops::group_fetch(self.g.clone(), field.0, loader, return_source),
                )
            }

            /// Stores a field directly (unfenced).
            fn set<'py>(
                &self,
                py: Python<'py>,
                field: Key,
                value: In,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(
                    py,
                    ops::group_set(self.g.clone(), field.0, value.into_value()),
                )
            }

            /// How many fields the group holds.
            fn len<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::group_len(self.g.clone()))
            }

            /// The group's remaining TTL in seconds; None when absent.
            fn ttl<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::group_ttl(self.g.clone()))
            }

            /// Drops the whole group; True if it existed. A fetch whose
            /// read began before cannot store its value afterwards.
            fn clear<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::group_clear(self.g.clone()))
            }
        }
    };
}

/// Methods of `FailSafeCache` / `AsyncFailSafeCache`.
macro_rules! failsafe_methods {
    ($ty:ident, $run:path, $scope:ident, $group:ident) => {
        #[pymethods]
        impl $ty {
            /// Reads a value; None on a miss and when the cache could not
            /// be used (Redis down or slow, a pending invalidation covers
            /// the key, an undecodable entry).
            fn get<'py>(&self, py: Python<'py>, key: Key) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::fs_get(self.f.clone(), key.0))
            }

            /// Reads a value with its outcome: (status, value, reason),
            /// status "hit", "miss" or "bypassed" (reason set).
            fn lookup<'py>(&self, py: Python<'py>, key: Key) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::fs_lookup(self.f.clone(), key.0))
            }

            /// Stores a value; False when it was skipped (Redis
            /// unavailable). Invalid input still raises.
            #[pyo3(signature = (key, value, *, ttl=None, tags=None))]
            fn set<'py>(
                &self,
                py: Python<'py>,
                key: Key,
                value: In,
                ttl: Option<Secs>,
                tags: Option<Keys>,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(
                    py,
                    ops::fs_set(self.f.clone(), key.0, value, set_options(ttl, tags)),
                )
            }

            /// Deletes an entry: the count removed, or None when Redis was
            /// unreachable and the delete was journaled (reads bypass the
            /// key until it is replayed).
            fn delete<'py>(&self, py: Python<'py>, key: Key) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::fs_delete_many(self.f.clone(), vec![key.0]))
            }

            /// Invalidates a tag: the count, or None when journaled.
            fn invalidate_tag<'py>(
                &self,
                py: Python<'py>,
                tag: Key,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::fs_invalidate_tags(self.f.clone(), vec![tag.0]))
            }

            /// Invalidates tags: the count, or None when journaled.
            fn invalidate_tags<'py>(
                &self,
                py: Python<'py>,
                tags: Keys,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::fs_invalidate_tags(self.f.clone(), tags.0))
            }

            /// Clears the namespace: the count, or None when journaled.
            fn clear<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::fs_clear(self.f.clone()))
            }

            /// get_or_compute that never raises for an unavailable Redis:
            /// the loader's value is returned unstored instead.
            #[pyo3(signature = (key, loader, *, ttl=None, tags=None, return_source=false))]
            fn get_or_compute<'py>(
                &self,
                py: Python<'py>,
                key: Key,
                loader: Py<PyAny>,
                ttl: Option<Secs>,
                tags: Option<Keys>,
                return_source: bool,
            ) -> PyResult<Bound<'py, PyAny>> {
                let loader = ops::Loader {
                    f: loader,
                    allow_async: Self::ASYNC,
                };
                $run(
                    py,
                    ops::fs_get_or_compute(
                        self.f.clone(),
                        key.0,
                        set_options(ttl, tags),
                        loader,
                        return_source,
                    ),
                )
            }

            /// How many removals are journaled, waiting for Redis.
            fn pending(&self) -> usize {
                self.f.pending()
            }

            /// Stores a value at a hierarchical key; False when skipped.
            #[pyo3(signature = (path, value, *, ttl=None, tags=None))]
            fn set_path<'py>(
                &self,
                py: Python<'py>,
                path: PathArg,
                value: In,
                ttl: Option<Secs>,
                tags: Option<Keys>,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(
                    py,
                    ops::fs_set_path(
                        self.f.clone(),
                        path.0,
                        value.into_value(),
                        set_options(ttl, tags),
                    ),
                )
            }

            /// The value at a hierarchical key; None on a miss or a bypass.
            fn get_path<'py>(&self, py: Python<'py>, path: PathArg) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::fs_get_path(self.f.clone(), path.0))
            }

            /// Deletes the entry at a hierarchical key: the count, or None
            /// when journaled.
            fn delete_path<'py>(
                &self,
                py: Python<'py>,
                path: PathArg,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::fs_delete_path(self.f.clone(), path.0))
            }

            /// Deletes everything under a prefix: the count, or None when
            /// journaled (reads under the prefix bypass until replayed).
            fn invalidate_prefix<'py>(
                &self,
                py: Python<'py>,
                prefix: PathArg,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::fs_invalidate_prefix(self.f.clone(), prefix.0))
            }

            /// The live paths under a prefix, as a list of tuples (the
            /// whole listing bounded by the view's timeout); None when the
            /// cache could not be used.
            fn paths_under<'py>(
                &self,
                py: Python<'py>,
                prefix: PathArg,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::fs_paths_under(self.f.clone(), prefix.0))
            }

            /// The fail-safe view of one owner's scope.
            #[pyo3(signature = (*owner))]
            fn scope(&self, owner: &Bound<'_, PyTuple>) -> PyResult<$scope> {
                let owner = owner_path(owner)?;
                Ok($scope {
                    s: self.f.scope(owner).py()?,
                })
            }

            /// The fail-safe view of a hash group.
            #[pyo3(signature = (name, owner, *, default_ttl=None, cap=None, tags=None, dry_run=false))]
            fn group(
                &self,
                name: &str,
                owner: PartArg,
                default_ttl: Option<Secs>,
                cap: Option<usize>,
                tags: Option<Keys>,
                dry_run: bool,
            ) -> PyResult<$group> {
                let g = self.f.group(name, owner.0).py()?;
                Ok($group {
                    g: crate::methods::configure_group!(g, default_ttl, cap, tags, dry_run),
                })
            }
        }
    };
}

/// Methods of `FailSafeScope` / `AsyncFailSafeScope`.
macro_rules! failsafe_scope_methods {
    ($ty:ident, $run:path) => {
        #[pymethods]
        impl $ty {
            /// The owner's path, as a tuple.
            #[getter]
            fn owner<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                crate::convert::path_out(py, self.s.owner())
            }

            /// One of the owner's values; None on a miss or a bypass.
            fn get<'py>(&self, py: Python<'py>, part: PartArg) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::fss_get(self.s.clone(), part.0))
            }

            /// One of the owner's values with its outcome: (status, value,
            /// reason).
            fn lookup<'py>(&self, py: Python<'py>, part: PartArg) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::fss_lookup(self.s.clone(), part.0))
            }

            /// Whether the owner has a live value under `part`; None when
            /// the cache could not be used.
            fn contains<'py>(&self, py: Python<'py>, part: PartArg) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::fss_contains(self.s.clone(), part.0))
            }

            /// Stores one of the owner's values; False when skipped.
            #[pyo3(signature = (part, value, *, ttl=None, tags=None))]
            fn set<'py>(
                &self,
                py: Python<'py>,
                part: PartArg,
                value: In,
                ttl: Option<Secs>,
                tags: Option<Keys>,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(
                    py,
                    ops::fss_set(self.s.clone(), part.0, value, set_options(ttl, tags)),
                )
            }

            /// Deletes one of the owner's values: the count, or None when
            /// journaled.
            fn delete<'py>(&self, py: Python<'py>, part: PartArg) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::fss_delete(self.s.clone(), part.0))
            }

            /// Clears the owner's scope: the count, or None when journaled.
            fn clear<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::fss_clear(self.s.clone()))
            }
        }
    };
}

/// Methods of `FailSafeGroup` / `AsyncFailSafeGroup`.
macro_rules! failsafe_group_methods {
    ($ty:ident, $run:path) => {
        #[pymethods]
        impl $ty {
            /// Reads a field through the cache; when the cache cannot be
            /// used, the loader's value is returned unstored (source
            /// "bypassed").
            #[pyo3(signature = (field, loader, *, return_source=false))]
            fn fetch<'py>(
                &self,
                py: Python<'py>,
                field: Key,
                loader: Py<PyAny>,
                return_source: bool,
            ) -> PyResult<Bound<'py, PyAny>> {
                let loader = ops::Loader {
                    f: loader,
                    allow_async: Self::ASYNC,
                };
                $run(
                    py,
                    ops::fsg_fetch(self.g.clone(), field.0, loader, return_source),
                )
            }

            /// A field; None on a miss or a bypass.
            fn get<'py>(&self, py: Python<'py>, field: Key) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::fsg_get(self.g.clone(), field.0))
            }

            /// Stores a field; False when skipped.
            fn set<'py>(
                &self,
                py: Python<'py>,
                field: Key,
                value: In,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(
                    py,
                    ops::fsg_set(self.g.clone(), field.0, value.into_value()),
                )
            }

            /// Drops the group: the count, or None when journaled.
            fn clear<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::fsg_clear(self.g.clone()))
            }
        }
    };
}

pub(crate) use {
    cache_methods, class, configure_group, failsafe_group_methods, failsafe_methods,
    failsafe_scope_methods, group_methods, scope_methods, twins,
};
