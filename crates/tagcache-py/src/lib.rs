//! The `tagcache` Python package's native module (`tagcache._tagcache`):
//! every operation calls the tagcache Rust library.
//!
//! Synchronous methods release the GIL and block on one shared Tokio
//! runtime; asynchronous ones return awaitables driven by that runtime and
//! resolved on the caller's asyncio loop (pyo3-async-runtimes).

mod aio;
mod build;
mod convert;
mod errors;
mod methods;
mod ops;
mod pager;
mod sync;

use std::future::Future;

use pyo3::prelude::*;

/// The runtime every call runs on (shared with the asyncio bridge).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Runs `fut` to completion with the GIL released.
pub(crate) fn block<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = PyResult<T>> + Send,
    T: Send,
{
    py.allow_threads(|| match tokio::runtime::Handle::try_current() {
        // Called from a task of the runtime (a loader calling the sync
        // API): block this worker without starving the others.
        Ok(handle) => tokio::task::block_in_place(|| handle.block_on(fut)),
        Err(_) => runtime().block_on(fut),
    })
}

/// [`block`], with the result converted to a Python object.
pub(crate) fn run_sync<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send,
    T: for<'a> IntoPyObject<'a> + Send,
{
    use pyo3::IntoPyObjectExt;
    block(py, fut)?.into_bound_py_any(py)
}

/// Runs `fut` on the runtime; an awaitable for the running asyncio loop.
pub(crate) fn spawn<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    pyo3_async_runtimes::tokio::future_into_py(py, fut)
}

/// The native module.
#[pymodule]
fn _tagcache(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<sync::Cache>()?;
    m.add_class::<sync::Scope>()?;
    m.add_class::<sync::Group>()?;
    m.add_class::<sync::FailSafeCache>()?;
    m.add_class::<pager::KeyIterator>()?;
    m.add_class::<aio::AsyncCache>()?;
    m.add_class::<aio::AsyncScope>()?;
    m.add_class::<aio::AsyncGroup>()?;
    m.add_class::<aio::AsyncFailSafeCache>()?;
    m.add_class::<pager::AsyncKeyIterator>()?;
    m.add("LAYOUT_VERSION", tagcache::LAYOUT_VERSION)?;
    Ok(())
}
