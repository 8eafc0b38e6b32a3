//! Python objects to and from the library's inputs and outputs: keys,
//! tags, TTLs, key paths and values (MessagePack via `rmpv::Value`).

use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};
use rmpv::Value;
use tagcache::{KeyPath, Part, PathPattern, SetOptions};

/// How deep nested lists and dicts may go (deeper values are refused
/// rather than overflowing the stack).
const MAX_DEPTH: usize = 128;

fn type_name(ob: &Bound<'_, PyAny>) -> String {
    ob.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// A key, tag or field: `str` (UTF-8) or `bytes`.
pub(crate) struct Key(pub(crate) Vec<u8>);

impl<'py> FromPyObject<'py> for Key {
    fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
        bytes_like(ob).map(Key).ok_or_else(|| {
            PyTypeError::new_err(format!(
                "keys and tags are str or bytes, not {}",
                type_name(ob)
            ))
        })
    }
}

fn bytes_like(ob: &Bound<'_, PyAny>) -> Option<Vec<u8>> {
    if let Ok(s) = ob.downcast::<PyString>() {
        return s.to_cow().ok().map(|s| s.as_bytes().to_vec());
    }
    if let Ok(b) = ob.downcast::<PyBytes>() {
        return Some(b.as_bytes().to_vec());
    }
    if let Ok(b) = ob.downcast::<PyByteArray>() {
        return Some(b.to_vec());
    }
    None
}

/// An iterable of keys or tags (a lone `str` or `bytes` is refused: it
/// would otherwise be read as one tag per character).
pub(crate) struct Keys(pub(crate) Vec<Vec<u8>>);

impl<'py> FromPyObject<'py> for Keys {
    fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
        if bytes_like(ob).is_some() {
            return Err(PyTypeError::new_err(
                "expected an iterable of str or bytes, not a single str or bytes",
            ));
        }
        let mut out = Vec::new();
        for item in ob.try_iter()? {
            out.push(item?.extract::<Key>()?.0);
        }
        Ok(Keys(out))
    }
}

/// A duration: seconds (`int` or `float`) or a `datetime.timedelta`.
/// Zero, negative or NaN durations reach the library as zero, which
/// refuses them with its own message.
pub(crate) struct Secs(pub(crate) Duration);

impl<'py> FromPyObject<'py> for Secs {
    fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
        let secs: f64 = if ob.is_instance_of::<PyBool>() {
            return Err(PyTypeError::new_err(
                "a duration is seconds (int or float) or a timedelta, not bool",
            ));
        } else if ob.is_instance_of::<PyInt>() || ob.is_instance_of::<PyFloat>() {
            ob.extract()?
        } else if ob.hasattr("total_seconds")? {
            ob.call_method0("total_seconds")?.extract()?
        } else {
            return Err(PyTypeError::new_err(format!(
                "a duration is seconds (int or float) or a timedelta, not {}",
                type_name(ob)
            )));
        };
        Ok(Secs(to_duration(secs)))
    }
}

fn to_duration(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::from_secs(u64::MAX / 4))
}

/// Write options from the keyword arguments.
pub(crate) fn set_options(ttl: Option<Secs>, tags: Option<Keys>) -> SetOptions {
    let mut o = SetOptions::new();
    if let Some(t) = ttl {
        o = o.ttl(t.0);
    }
    if let Some(t) = tags {
        o = o.tags(t.0);
    }
    o
}

/// One part of a key path: `str`, `bytes` or `int`.
pub(crate) struct PartArg(pub(crate) Part);

impl<'py> FromPyObject<'py> for PartArg {
    fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Some(b) = bytes_like(ob) {
            return Ok(PartArg(Part::from(b)));
        }
        if ob.is_instance_of::<PyInt>() && !ob.is_instance_of::<PyBool>() {
            let n: i128 = ob.extract()?;
            return Ok(PartArg(Part::from(n)));
        }
        Err(PyTypeError::new_err(format!(
            "path parts are str, bytes or int, not {}",
            type_name(ob)
        )))
    }
}

/// A key path: a tuple or list of parts.
pub(crate) struct PathArg(pub(crate) KeyPath);

impl<'py> FromPyObject<'py> for PathArg {
    fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
        if !(ob.is_instance_of::<PyTuple>() || ob.is_instance_of::<PyList>()) {
            return Err(PyTypeError::new_err(format!(
                "a key path is a tuple or list of parts (str, bytes or int), not {}",
                type_name(ob)
            )));
        }
        let mut parts = Vec::new();
        for item in ob.try_iter()? {
            parts.push(item?.extract::<PartArg>()?.0);
        }
        Ok(PathArg(KeyPath::from_parts(parts)))
    }
}

/// A value to store: `bytes` go raw, anything else as MessagePack.
pub(crate) enum In {
    /// Stored as the entry's raw payload.
    Bytes(Vec<u8>),
    /// Stored as MessagePack.
    Value(Value),
}

impl<'py> FromPyObject<'py> for In {
    fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(b) = ob.downcast::<PyBytes>() {
            return Ok(In::Bytes(b.as_bytes().to_vec()));
        }
        if let Ok(b) = ob.downcast::<PyByteArray>() {
            return Ok(In::Bytes(b.to_vec()));
        }
        to_value(ob, 0).map(In::Value)
    }
}

impl In {
    /// The value as MessagePack data (bytes as a `bin`), for the APIs
    /// that only store typed values (paths, groups, loaders).
    pub(crate) fn into_value(self) -> Value {
        match self {
            In::Bytes(b) => Value::Binary(b),
            In::Value(v) => v,
        }
    }
}

/// A Python object as a MessagePack value.
pub(crate) fn to_value(ob: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "value nests deeper than {MAX_DEPTH} levels"
        )));
    }
    if ob.is_none() {
        return Ok(Value::Nil);
    }
    if let Ok(b) = ob.downcast::<PyBool>() {
        return Ok(Value::Boolean(b.is_true()));
    }
    if ob.is_instance_of::<PyInt>() {
        if let Ok(n) = ob.extract::<i64>() {
            return Ok(Value::from(n));
        }
        if let Ok(n) = ob.extract::<u64>() {
            return Ok(Value::from(n));
        }
        return Err(PyValueError::new_err(
            "int out of MessagePack's range (-2**63 to 2**64-1)",
        ));
    }
    if let Ok(f) = ob.downcast::<PyFloat>() {
        return Ok(Value::F64(f.value()));
    }
    if let Ok(s) = ob.downcast::<PyString>() {
        return Ok(Value::from(s.to_cow()?.as_ref()));
    }
    if let Ok(b) = ob.downcast::<PyBytes>() {
        return Ok(Value::Binary(b.as_bytes().to_vec()));
    }
    if let Ok(b) = ob.downcast::<PyByteArray>() {
        return Ok(Value::Binary(b.to_vec()));
    }
    if let Ok(d) = ob.downcast::<PyDict>() {
        let mut out = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            out.push((to_value(&k, depth + 1)?, to_value(&v, depth + 1)?));
        }
        return Ok(Value::Map(out));
    }
    if ob.is_instance_of::<PyList>() || ob.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for item in ob.try_iter()? {
            out.push(to_value(&item?, depth + 1)?);
        }
        return Ok(Value::Array(out));
    }
    Err(PyTypeError::new_err(format!(
        "cannot store a value of type {}: use bytes, str, int, float, bool, None, list, tuple or dict",
        type_name(ob)
    )))
}

/// A MessagePack value as a Python object.
pub(crate) fn from_value<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Nil => py.None().into_bound(py),
        Value::Boolean(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Integer(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => py.None().into_bound(py),
        },
        Value::F32(f) => PyFloat::new(py, f64::from(*f)).into_any(),
        Value::F64(f) => PyFloat::new(py, *f).into_any(),
        Value::String(s) => match s.as_str() {
            Some(s) => PyString::new(py, s).into_any(),
            None => PyBytes::new(py, s.as_bytes()).into_any(),
        },
        Value::Binary(b) => PyBytes::new(py, b).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for i in items {
                list.append(from_value(py, i)?)?;
            }
            list.into_any()
        }
        Value::Map(pairs) => {
            let d = PyDict::new(py);
            for (k, val) in pairs {
                d.set_item(hashable(py, k)?, from_value(py, val)?)?;
            }
            d.into_any()
        }
        Value::Ext(tag, data) => PyTuple::new(
            py,
            [
                tag.into_pyobject(py)?.into_any(),
                PyBytes::new(py, data).into_any(),
            ],
        )?
        .into_any(),
    })
}

/// A map key as a hashable Python object (arrays become tuples).
fn hashable<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    match v {
        Value::Array(items) => {
            let parts = items
                .iter()
                .map(|i| hashable(py, i))
                .collect::<PyResult<Vec<_>>>()?;
            Ok(PyTuple::new(py, parts)?.into_any())
        }
        other => from_value(py, other),
    }
}

/// A value read back, converted when handed to Python.
pub(crate) struct Out(pub(crate) Value);

impl<'py> IntoPyObject<'py> for Out {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        from_value(py, &self.0)
    }
}

/// Key or tag bytes handed back: `str` when they are UTF-8, else `bytes`.
pub(crate) struct KeyOut(pub(crate) Vec<u8>);

impl<'py> IntoPyObject<'py> for KeyOut {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        Ok(key_out(py, &self.0))
    }
}

pub(crate) fn key_out<'py>(py: Python<'py>, b: &[u8]) -> Bound<'py, PyAny> {
    match std::str::from_utf8(b) {
        Ok(s) => PyString::new(py, s).into_any(),
        Err(_) => PyBytes::new(py, b).into_any(),
    }
}

/// A key path as a tuple of parts (`str`, or `bytes` when not UTF-8;
/// integers come back as their decimal `str`).
pub(crate) fn path_out<'py>(py: Python<'py>, p: &KeyPath) -> PyResult<Bound<'py, PyAny>> {
    let parts: Vec<_> = p
        .parts()
        .iter()
        .map(|x| key_out(py, x.as_bytes()))
        .collect();
    Ok(PyTuple::new(py, parts)?.into_any())
}

/// A dict of named fields, built when handed to Python.
pub(crate) struct DictOut(pub(crate) Vec<(&'static str, Field)>);

/// One field of a [`DictOut`].
pub(crate) enum Field {
    Int(u64),
    Bool(bool),
    Str(String),
}

impl<'py> IntoPyObject<'py> for DictOut {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        let d = PyDict::new(py);
        for (k, v) in self.0 {
            match v {
                Field::Int(n) => d.set_item(k, n)?,
                Field::Bool(b) => d.set_item(k, b)?,
                Field::Str(s) => d.set_item(k, s)?,
            }
        }
        Ok(d.into_any())
    }
}

/// `set_many` items: a dict, or an iterable of `(key, value)` pairs.
pub(crate) fn pairs(items: &Bound<'_, PyAny>) -> PyResult<Vec<(Vec<u8>, In)>> {
    let mut out = Vec::new();
    if let Ok(d) = items.downcast::<PyDict>() {
        for (k, v) in d.iter() {
            out.push((k.extract::<Key>()?.0, v.extract::<In>()?));
        }
        return Ok(out);
    }
    for item in items.try_iter()? {
        let (k, v): (Key, In) = item?.extract().map_err(|_| {
            PyTypeError::new_err("set_many takes a dict or an iterable of (key, value) pairs")
        })?;
        out.push((k.0, v));
    }
    Ok(out)
}

/// A scope's owner from `scope(*owner)`: parts, or one tuple/list of parts.
pub(crate) fn owner_path(owner: &Bound<'_, PyTuple>) -> PyResult<KeyPath> {
    if owner.len() == 1 {
        let first = owner.get_item(0)?;
        if first.is_instance_of::<PyTuple>() || first.is_instance_of::<PyList>() {
            return Ok(first.extract::<PathArg>()?.0);
        }
    }
    Ok(owner.extract::<PathArg>()?.0)
}

/// A path pattern: a tuple or list of parts, `None` matching any one part.
pub(crate) struct PatternArg(pub(crate) PathPattern);

impl<'py> FromPyObject<'py> for PatternArg {
    fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
        if !(ob.is_instance_of::<PyTuple>() || ob.is_instance_of::<PyList>()) {
            return Err(PyTypeError::new_err(format!(
                "a path pattern is a tuple or list of parts (str, bytes, int, or None for any), not {}",
                type_name(ob)
            )));
        }
        let mut p = PathPattern::new();
        for item in ob.try_iter()? {
            let item = item?;
            p = if item.is_none() {
                p.any()
            } else {
                p.part(item.extract::<PartArg>()?.0)
            };
        }
        Ok(PatternArg(p))
    }
}
