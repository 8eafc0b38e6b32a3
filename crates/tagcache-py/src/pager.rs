//! Listings (`keys_with_tag`, `paths_under`, `Scope.keys`) as iterators
//! and async iterators that fetch one page at a time.

use std::collections::VecDeque;
use std::sync::Arc;

use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;
use tagcache::{KeyPath, PathKeys, PathQuery, ScopeKeys, TagKeys};
use tokio::sync::Mutex;

use crate::convert::{key_out, path_out};
use crate::errors::OrPy;
use crate::{block, spawn};

/// The library's paged listings.
pub(crate) enum Pager {
    /// Keys carrying a tag.
    Tag(TagKeys),
    /// An owner's keys, as paths.
    Scope(ScopeKeys),
    /// Paths under a prefix.
    Paths(PathKeys),
    /// Paths matching a pattern, with their values.
    Query(PathQuery<rmpv::Value>),
}

/// One listed key or path.
pub(crate) enum Item {
    Key(Vec<u8>),
    Path(KeyPath),
    PathValue(KeyPath, rmpv::Value),
}

impl<'py> IntoPyObject<'py> for Item {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        match self {
            Item::Key(k) => Ok(key_out(py, &k)),
            Item::Path(p) => path_out(py, &p),
            Item::PathValue(p, v) => {
                let pair = (path_out(py, &p)?, crate::convert::from_value(py, &v)?);
                Ok(pair.into_pyobject(py)?.into_any())
            }
        }
    }
}

struct State {
    pager: Pager,
    buf: VecDeque<Item>,
    done: bool,
}

impl State {
    async fn next(&mut self) -> tagcache::Result<Option<Item>> {
        loop {
            if let Some(i) = self.buf.pop_front() {
                return Ok(Some(i));
            }
            if self.done {
                return Ok(None);
            }
            let page = match &mut self.pager {
                Pager::Tag(p) => p
                    .next_page()
                    .await?
                    .map(|v| v.into_iter().map(Item::Key).collect()),
                Pager::Scope(p) => p
                    .next_page()
                    .await?
                    .map(|v| v.into_iter().map(Item::Path).collect()),
                Pager::Paths(p) => p
                    .next_page()
                    .await?
                    .map(|v| v.into_iter().map(Item::Path).collect()),
                Pager::Query(p) => p
                    .next_page()
                    .await?
                    .map(|v| v.into_iter().map(|(k, v)| Item::PathValue(k, v)).collect()),
            };
            match page {
                Some(items) => self.buf = items,
                None => self.done = true,
            }
        }
    }
}

type Shared = Arc<Mutex<State>>;

fn shared(pager: Pager) -> Shared {
    Arc::new(Mutex::new(State {
        pager,
        buf: VecDeque::new(),
        done: false,
    }))
}

/// An iterator over a listing; fetches a page from Redis when its buffer
/// runs out (keys as `str`, or `bytes` when not UTF-8; paths as tuples).
#[pyclass(module = "tagcache", frozen)]
pub(crate) struct KeyIterator {
    state: Shared,
}

impl KeyIterator {
    pub(crate) fn new(pager: Pager) -> Self {
        Self {
            state: shared(pager),
        }
    }
}

#[pymethods]
impl KeyIterator {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Item>> {
        let state = self.state.clone();
        block(py, async move { state.lock().await.next().await.py() })
    }
}

/// An async iterator over a listing (`async for key in ...`).
#[pyclass(module = "tagcache", frozen)]
pub(crate) struct AsyncKeyIterator {
    state: Shared,
}

impl AsyncKeyIterator {
    pub(crate) fn new(pager: Pager) -> Self {
        Self {
            state: shared(pager),
        }
    }
}

#[pymethods]
impl AsyncKeyIterator {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let state = self.state.clone();
        spawn(py, async move {
            match state.lock().await.next().await.py()? {
                Some(i) => Ok(i),
                None => Err(PyStopAsyncIteration::new_err(())),
            }
        })
    }
}
