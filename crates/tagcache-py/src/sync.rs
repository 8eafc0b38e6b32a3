//! The synchronous classes: every call releases the GIL while it waits on
//! Redis, so many threads can share one `Cache`.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::aio::AsyncCache;
use crate::build::{builder, connect};
use crate::convert::{
    owner_path, pairs, set_options, In, Key, Keys, PartArg, PathArg, PatternArg, Secs,
};
use crate::errors::OrPy;
use crate::methods::{
    cache_methods, failsafe_group_methods, failsafe_methods, failsafe_scope_methods, group_methods,
    scope_methods,
};
use crate::ops;
use crate::pager::{KeyIterator, Pager};
use crate::{block, run_sync};

/// A Redis cache whose entries carry tags. `Cache(url, namespace=...,
/// default_ttl=..., buckets=..., ...)` connects and checks the server.
#[pyclass(module = "tagcache", frozen)]
pub(crate) struct Cache {
    pub(crate) c: tagcache::Cache,
}

impl Cache {
    const ASYNC: bool = false;
}

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

/// One owner's keys (`cache.scope("dsr", "pr-1")`): entries under the
/// owner's path, listed and cleared together.
#[pyclass(module = "tagcache", frozen)]
pub(crate) struct Scope {
    pub(crate) s: tagcache::Scope,
}

scope_methods!(Scope, run_sync, KeyIterator);

/// One owner's hash of small cached fields (`cache.group(name, owner)`).
#[pyclass(module = "tagcache", frozen)]
pub(crate) struct Group {
    pub(crate) g: tagcache::Group,
}

impl Group {
    const ASYNC: bool = false;
}

group_methods!(Group, run_sync);

/// The fail-safe view of a cache (`cache.fail_safe()`).
#[pyclass(module = "tagcache", frozen)]
pub(crate) struct FailSafeCache {
    pub(crate) f: tagcache::FailSafeCache,
}

impl FailSafeCache {
    const ASYNC: bool = false;
}

failsafe_methods!(FailSafeCache, run_sync, FailSafeScope, FailSafeGroup);

/// The fail-safe view of one owner's scope.
#[pyclass(module = "tagcache", frozen)]
pub(crate) struct FailSafeScope {
    pub(crate) s: tagcache::FailSafeScope,
}

failsafe_scope_methods!(FailSafeScope, run_sync);

/// The fail-safe view of a hash group.
#[pyclass(module = "tagcache", frozen)]
pub(crate) struct FailSafeGroup {
    pub(crate) g: tagcache::FailSafeGroup,
}

impl FailSafeGroup {
    const ASYNC: bool = false;
}

failsafe_group_methods!(FailSafeGroup, run_sync);
