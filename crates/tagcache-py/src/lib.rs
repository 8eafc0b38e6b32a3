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
mod views;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;
use pyo3_async_runtimes::TaskLocals;

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
    block(py, fut)?.into_bound_py_any(py)
}

/// Bridged futures that have yet to hand their result to Python.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Runs `fut` on the runtime; returns an asyncio future of the running
/// loop, resolved (through `call_soon_threadsafe`) when `fut` completes.
/// Loaders awaited inside `fut` see the loop and context of the caller.
pub(crate) fn spawn<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let py_fut = event_loop.call_method0("create_future")?;
    let locals = TaskLocals::new(event_loop.clone()).copy_context(py)?;
    let (target, event_loop) = (py_fut.clone().unbind(), event_loop.unbind());
    let in_flight = InFlight::new();
    let task = runtime().spawn(async move {
        let _in_flight = in_flight;
        let result = pyo3_async_runtimes::tokio::scope(locals, fut).await;
        Python::with_gil(|py| {
            let (ok, value) = match result.and_then(|v| v.into_bound_py_any(py)) {
                Ok(v) => (true, v),
                Err(e) => (false, e.into_value(py).into_bound(py).into_any()),
            };
            let resolve = wrap_pyfunction!(resolve, py);
            // A closed loop (the caller gave up) has nobody to tell.
            let _ = resolve.and_then(|r| {
                event_loop
                    .bind(py)
                    .call_method1("call_soon_threadsafe", (r, target.bind(py), ok, value))
            });
        });
    });
    // A cancelled awaitable stops the Rust future at its next await.
    py_fut.call_method1("add_done_callback", (AbortOnCancel(task.abort_handle()),))?;
    Ok(py_fut)
}

/// Counts a bridged future until it is done or dropped (aborted).
struct InFlight;

impl InFlight {
    fn new() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The done-callback of a bridged asyncio future: aborts the Rust task
/// when the future was cancelled.
#[pyclass]
struct AbortOnCancel(tokio::task::AbortHandle);

#[pymethods]
impl AbortOnCancel {
    fn __call__(&self, fut: &Bound<'_, PyAny>) -> PyResult<()> {
        if fut.call_method0("cancelled")?.extract::<bool>()? {
            self.0.abort();
        }
        Ok(())
    }
}

/// Sets an asyncio future's result or exception, unless it was cancelled.
#[pyfunction]
fn resolve(fut: &Bound<'_, PyAny>, ok: bool, value: &Bound<'_, PyAny>) -> PyResult<()> {
    if fut.call_method0("cancelled")?.extract::<bool>()? {
        return Ok(());
    }
    if ok {
        fut.call_method1("set_result", (value,))?;
    } else {
        fut.call_method1("set_exception", (value,))?;
    }
    Ok(())
}

/// At interpreter exit: waits (up to 2 s) for bridged futures to finish
/// handing over their results, so no runtime thread touches Python while
/// it finalizes.
#[pyfunction]
fn drain(py: Python<'_>) {
    py.allow_threads(|| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while IN_FLIGHT.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    });
}

/// The native module.
#[pymodule]
fn _tagcache(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<sync::Cache>()?;
    m.add_class::<views::Scope>()?;
    m.add_class::<views::Group>()?;
    m.add_class::<views::FailSafeCache>()?;
    m.add_class::<views::FailSafeScope>()?;
    m.add_class::<views::FailSafeGroup>()?;
    m.add_class::<pager::KeyIterator>()?;
    m.add_class::<aio::AsyncCache>()?;
    m.add_class::<views::AsyncScope>()?;
    m.add_class::<views::AsyncGroup>()?;
    m.add_class::<views::AsyncFailSafeCache>()?;
    m.add_class::<views::AsyncFailSafeScope>()?;
    m.add_class::<views::AsyncFailSafeGroup>()?;
    m.add_class::<pager::AsyncKeyIterator>()?;
    m.add("LAYOUT_VERSION", tagcache::LAYOUT_VERSION)?;
    let py = m.py();
    py.import("atexit")?
        .call_method1("register", (wrap_pyfunction!(drain, m)?,))?;
    Ok(())
}
