//! The asyncio `AsyncCache`: methods return awaitables run on the shared
//! Tokio runtime and resolved on the running asyncio loop, which never
//! blocks. Its views are in `views.rs`.

use crate::build::{builder, connect, open};
use crate::methods::prelude::*;
use crate::pager::AsyncKeyIterator;
use crate::spawn;
use crate::sync::Cache;
use crate::views::{AsyncFailSafeCache, AsyncGroup, AsyncScope};

class!(
    /// The asyncio API: `await AsyncCache.connect(url, **options)` (or the
    /// blocking constructor), then every method is a coroutine.
    AsyncCache { c: tagcache::Cache },
    async = true
);

#[pymethods]
impl AsyncCache {
    #[new]
    #[pyo3(signature = (url, **options))]
    fn new(py: Python<'_>, url: &str, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Ok(Self {
            c: open(py, url, options)?,
        })
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
