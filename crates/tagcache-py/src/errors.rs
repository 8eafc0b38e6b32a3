//! Library errors as Python exceptions (classes in `tagcache/_errors.py`).

use pyo3::prelude::*;
use tagcache::{ComputeError, ErrorKind};

/// The exception class of an error kind (see `tagcache/_errors.py`).
fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => "InvalidInput",
        ErrorKind::Timeout => "TimeoutError",
        ErrorKind::Connection => "ConnectionError",
        ErrorKind::Auth => "AuthError",
        ErrorKind::OutOfMemory => "OutOfMemory",
        ErrorKind::Script => "ScriptError",
        ErrorKind::Protocol => "ProtocolError",
        ErrorKind::Server => "ServerError",
        ErrorKind::Codec => "CodecError",
        ErrorKind::Layout => "LayoutError",
        ErrorKind::UnsafeEvictionPolicy => "UnsafeEvictionPolicy",
        ErrorKind::Contended => "Contended",
        ErrorKind::Config => "ConfigError",
        ErrorKind::CircuitOpen => "CircuitOpen",
        _ => "Error",
    }
}

/// A library error as the matching `tagcache` exception, with the
/// library's message and a `kind` attribute (`ErrorKind::as_str`).
pub(crate) fn to_py(e: tagcache::Error) -> PyErr {
    Python::with_gil(|py| build(py, &e).unwrap_or_else(|err| err))
}

fn build(py: Python<'_>, e: &tagcache::Error) -> PyResult<PyErr> {
    let module = py.import("tagcache._errors")?;
    let class = module.getattr(class_name(e.kind()))?;
    let exc = class.call1((e.to_string(),))?;
    exc.setattr("kind", e.kind().as_str())?;
    Ok(PyErr::from_value(exc))
}

/// A read-through error: the loader's own exception, or the cache's.
pub(crate) fn compute_to_py(e: ComputeError<PyErr>) -> PyErr {
    match e {
        ComputeError::Loader(e) => e,
        ComputeError::Cache(e) => to_py(e),
        other => pyo3::exceptions::PyRuntimeError::new_err(other.to_string()),
    }
}

/// `?`-friendly conversion of library results.
pub(crate) trait OrPy<T> {
    /// The result with its error as a Python exception.
    fn py(self) -> PyResult<T>;
}

impl<T> OrPy<T> for tagcache::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
