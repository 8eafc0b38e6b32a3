//! The synchronous `Cache`: every call releases the GIL while it waits on
//! Redis, so many threads can share one `Cache`. Its views are in
//! `views.rs`.

use crate::aio::AsyncCache;
use crate::build::open;
use crate::methods::prelude::*;
use crate::pager::KeyIterator;
use crate::run_sync;
use crate::views::{FailSafeCache, Group, Scope};

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
        Ok(Self {
            c: open(py, url, options)?,
        })
    }

    /// The asyncio API over the same connection, write queue and sweeper.
    fn aio(&self) -> AsyncCache {
        AsyncCache { c: self.c.clone() }
    }
}

cache_methods!(Cache, run_sync, Scope, Group, FailSafeCache, KeyIterator);
