//! The asyncio classes: methods return awaitables run on the shared Tokio
//! runtime and resolved on the running asyncio loop, which never blocks.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

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
use crate::pager::{AsyncKeyIterator, Pager};
use crate::sync::Cache;
use crate::{block, spawn};

/// The asyncio API: `await AsyncCache.connect(url, **options)` (or the
/// blocking constructor), then every method is a coroutine.
#[pyclass(module = "tagcache", frozen)]
pub(crate) struct AsyncCache {
    pub(crate) c: tagcache::Cache,
}

impl AsyncCache {
    const ASYNC: bool = true;
}

#[pymethods]
impl AsyncCache {
    #[new]
    #[pyo3(signature = (url, **options))]
    fn new(py: Python<'_>, url: &str, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let (b, lazy) = builder(url, options)?;
        let c = block(py, connect(b, lazy))?;
        Ok(Self { c })
    }

    /// Connects without blocking the loop: `await AsyncCache.connect(url, ...)`.
    #[staticmethod]
    #[pyo3(signature = (url, **options))]
    fn connect<'py>(
        py: Python<'py>,
        url: &str,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (b, lazy) = builder(url, options)?;
        spawn(py, async move {
            connect(b, lazy).await.map(|c| AsyncCache { c })
        })
    }

    /// The synchronous API over the same connection.
    fn sync(&self) -> Cache {
        Cache { c: self.c.clone() }
    }
}

cache_methods!(
    AsyncCache,
    spawn,
    AsyncScope,
    AsyncGroup,
    AsyncFailSafeCache,
    AsyncKeyIterator
);

/// [`crate::sync::Scope`] with coroutine methods.
#[pyclass(module = "tagcache", frozen)]
pub(crate) struct AsyncScope {
    pub(crate) s: tagcache::Scope,
}

scope_methods!(AsyncScope, spawn, AsyncKeyIterator);

/// [`crate::sync::Group`] with coroutine methods.
#[pyclass(module = "tagcache", frozen)]
pub(crate) struct AsyncGroup {
    pub(crate) g: tagcache::Group,
}

impl AsyncGroup {
    const ASYNC: bool = true;
}

group_methods!(AsyncGroup, spawn);

/// [`crate::sync::FailSafeCache`] with coroutine methods.
#[pyclass(module = "tagcache", frozen)]
pub(crate) struct AsyncFailSafeCache {
    pub(crate) f: tagcache::FailSafeCache,
}

impl AsyncFailSafeCache {
    const ASYNC: bool = true;
}

failsafe_methods!(
    AsyncFailSafeCache,
    spawn,
    AsyncFailSafeScope,
    AsyncFailSafeGroup
);

/// The fail-safe view of one owner's scope (coroutine methods).
#[pyclass(module = "tagcache", frozen)]
pub(crate) struct AsyncFailSafeScope {
    pub(crate) s: tagcache::FailSafeScope,
}

failsafe_scope_methods!(AsyncFailSafeScope, spawn);

/// The fail-safe view of a hash group (coroutine methods).
#[pyclass(module = "tagcache", frozen)]
pub(crate) struct AsyncFailSafeGroup {
    pub(crate) g: tagcache::FailSafeGroup,
}

impl AsyncFailSafeGroup {
    const ASYNC: bool = true;
}

failsafe_group_methods!(AsyncFailSafeGroup, spawn);
