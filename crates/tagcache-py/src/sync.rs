//! The synchronous classes: every call releases the GIL while it waits on
//! Redis, so many threads can share one `Cache`.

use crate::aio::AsyncCache;
use crate::build::{builder, connect};
use crate::methods::prelude::*;
use crate::pager::KeyIterator;
use crate::{block, run_sync};

class!(
    /// A Redis cache whose entries carry tags. `Cache(url, namespace=...,
    /// default_ttl=..., buckets=..., ...)` connects and checks the server.
    Cache { c: tagcache::Cache },
    async = false
);

#[pymethods]
impl Cache {
    #[new]
    #[pyo3(signature = (url, **options))]
    fn new(py: Python<'_>, url: &str, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let (b, lazy) = builder(url, options)?;
        let c = block(py, connect(b, lazy))?;
        Ok(Self { c })
    }

    /// The asyncio API over the same connection, write queue and sweeper.
    fn aio(&self) -> AsyncCache {
        AsyncCache { c: self.c.clone() }
    }
}

cache_methods!(Cache, run_sync, Scope, Group, FailSafeCache, KeyIterator);

class!(
    /// One owner's keys (`cache.scope("dsr", "pr-1")`): entries under the
    /// owner's path, listed and cleared together.
    Scope { s: tagcache::Scope },
    async = false
);
scope_methods!(Scope, run_sync, KeyIterator);

class!(
    /// One owner's hash of small cached fields (`cache.group(name, owner)`).
    Group { g: tagcache::Group },
    async = false
);
group_methods!(Group, run_sync);

class!(
    /// The fail-safe view of a cache (`cache.fail_safe()`).
    FailSafeCache { f: tagcache::FailSafeCache },
    async = false
);
failsafe_methods!(FailSafeCache, run_sync, FailSafeScope, FailSafeGroup);

class!(
    /// The fail-safe view of one owner's scope.
    FailSafeScope { s: tagcache::FailSafeScope },
    async = false
);
failsafe_scope_methods!(FailSafeScope, run_sync);

class!(
    /// The fail-safe view of a hash group.
    FailSafeGroup { g: tagcache::FailSafeGroup },
    async = false
);
failsafe_group_methods!(FailSafeGroup, run_sync);
