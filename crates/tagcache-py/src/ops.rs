//! The operations, as futures shared by the sync and asyncio classes:
//! each takes owned inputs (converted under the GIL) and returns values
//! converted to Python objects when handed over.

use std::collections::HashMap;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use rmpv::Value;
use tagcache::{
    BypassReason, Cache, ComputeError, Computed, FailSafeCache, FailSafeGroup, FailSafeScope,
    Fetched, Group, KeyPath, Lookup, Part, PruneReport, Removal, Scope, SetOptions, Source,
    Written,
};

use crate::convert::{DictOut, Field, In, KeyOut, Out};
use crate::errors::{compute_to_py, OrPy};

/// Stores one value: bytes raw, anything else as MessagePack.
pub(crate) async fn set(c: Cache, key: Vec<u8>, value: In, o: SetOptions) -> PyResult<()> {
    match value {
        In::Bytes(b) => c.set_bytes(&key, &b, &o).await,
        In::Value(v) => c.set(&key, &v, &o).await,
    }
    .py()
}

pub(crate) async fn get(c: Cache, key: Vec<u8>) -> PyResult<Option<Out>> {
    Ok(c.get::<Value>(&key).await.py()?.map(Out))
}

pub(crate) async fn get_many(c: Cache, keys: Vec<Vec<u8>>) -> PyResult<Vec<Option<Out>>> {
    Ok(c.get_many::<Value, _>(&keys)
        .await
        .py()?
        .into_iter()
        .map(|v| v.map(Out))
        .collect())
}

/// Stores many values: a key given twice keeps its last value; raw and
/// MessagePack values go in one batch each.
pub(crate) async fn set_many(c: Cache, items: Vec<(Vec<u8>, In)>, o: SetOptions) -> PyResult<()> {
    let mut last: HashMap<&[u8], usize> = HashMap::new();
    for (i, (k, _)) in items.iter().enumerate() {
        last.insert(k.as_slice(), i);
    }
    let keep: Vec<bool> = (0..items.len())
        .map(|i| last.get(items[i].0.as_slice()) == Some(&i))
        .collect();
    let (mut raw, mut typed) = (Vec::new(), Vec::new());
    for ((k, v), keep) in items.into_iter().zip(keep) {
        if !keep {
            continue;
        }
        match v {
            In::Bytes(b) => raw.push((k, b, o.clone())),
            In::Value(v) => typed.push((k, v, o.clone())),
        }
    }
    if !raw.is_empty() {
        c.set_many_bytes(raw).await.py()?;
    }
    if !typed.is_empty() {
        c.set_many(typed).await.py()?;
    }
    Ok(())
}

pub(crate) async fn delete(c: Cache, key: Vec<u8>) -> PyResult<bool> {
    c.delete(&key).await.py()
}

pub(crate) async fn delete_many(c: Cache, keys: Vec<Vec<u8>>) -> PyResult<u64> {
    c.delete_many(&keys).await.py()
}

pub(crate) async fn exists(c: Cache, key: Vec<u8>) -> PyResult<bool> {
    c.exists(&key).await.py()
}

pub(crate) async fn ttl(c: Cache, key: Vec<u8>) -> PyResult<Option<f64>> {
    Ok(c.ttl(&key).await.py()?.map(|d| d.as_secs_f64()))
}

pub(crate) async fn tags(c: Cache, key: Vec<u8>) -> PyResult<Option<Vec<KeyOut>>> {
    Ok(c.tags(&key)
        .await
        .py()?
        .map(|t| t.into_iter().map(KeyOut).collect()))
}

pub(crate) async fn invalidate_tags(c: Cache, tags: Vec<Vec<u8>>) -> PyResult<u64> {
    c.invalidate_tags(&tags).await.py()
}

pub(crate) async fn tag_len(c: Cache, tag: Vec<u8>) -> PyResult<u64> {
    c.tag_len(&tag).await.py()
}

pub(crate) async fn has_tag(c: Cache, key: Vec<u8>, tag: Vec<u8>) -> PyResult<bool> {
    c.has_tag(&key, &tag).await.py()
}

fn prune_report(r: &PruneReport) -> DictOut {
    DictOut(vec![
        ("indexes_visited", Field::Int(r.indexes_visited)),
        ("members_removed", Field::Int(r.members_removed)),
        ("indexes_removed", Field::Int(r.indexes_removed)),
        ("invalidations_resumed", Field::Int(r.invalidations_resumed)),
        ("entries_removed", Field::Int(r.entries_removed)),
        ("fences_removed", Field::Int(r.fences_removed)),
        ("complete", Field::Bool(r.complete)),
    ])
}

pub(crate) async fn prune(c: Cache, budget: Option<u64>) -> PyResult<DictOut> {
    let r = match budget {
        Some(b) => c.prune_step(b).await,
        None => c.prune().await,
    }
    .py()?;
    Ok(prune_report(&r))
}

pub(crate) async fn stats(c: Cache) -> PyResult<DictOut> {
    let s = c.stats().await.py()?;
    Ok(DictOut(vec![
        ("indexes", Field::Int(s.indexes)),
        ("members", Field::Int(s.members)),
        ("stale_members", Field::Int(s.stale_members)),
        ("index_memory_bytes", Field::Int(s.index_memory_bytes)),
        (
            "invalidations_in_flight",
            Field::Int(s.invalidations_in_flight),
        ),
        ("layout_version", Field::Int(u64::from(s.layout_version))),
        ("buckets", Field::Int(u64::from(s.buckets))),
        ("redis_version", Field::Str(s.redis_version)),
        ("eviction_policy", Field::Str(s.eviction_policy)),
    ]))
}

pub(crate) async fn clear(c: Cache) -> PyResult<u64> {
    c.clear().await.py()
}

// ---- paths ----

pub(crate) async fn set_path(c: Cache, p: KeyPath, v: Value, o: SetOptions) -> PyResult<()> {
    c.set_path(&p, &v, &o).await.py()
}

pub(crate) async fn get_path(c: Cache, p: KeyPath) -> PyResult<Option<Out>> {
    Ok(c.get_path::<Value>(&p).await.py()?.map(Out))
}

pub(crate) async fn delete_path(c: Cache, p: KeyPath) -> PyResult<bool> {
    c.delete_path(&p).await.py()
}

pub(crate) async fn invalidate_prefix(c: Cache, p: KeyPath) -> PyResult<u64> {
    c.invalidate_prefix(&p).await.py()
}

// ---- scopes ----

pub(crate) async fn scope_set(s: Scope, part: Part, v: In, o: SetOptions) -> PyResult<()> {
    match v {
        In::Bytes(b) => s.set_bytes(part, &b, &o).await,
        In::Value(v) => s.set(part, &v, &o).await,
    }
    .py()
}

pub(crate) async fn scope_get(s: Scope, part: Part) -> PyResult<Option<Out>> {
    Ok(s.get::<Value>(part).await.py()?.map(Out))
}

pub(crate) async fn scope_delete(s: Scope, part: Part) -> PyResult<bool> {
    s.delete(part).await.py()
}

pub(crate) async fn scope_contains(s: Scope, part: Part) -> PyResult<bool> {
    s.contains(part).await.py()
}

pub(crate) async fn scope_ttl(s: Scope, part: Part) -> PyResult<Option<f64>> {
    Ok(s.ttl(part).await.py()?.map(|d| d.as_secs_f64()))
}

pub(crate) async fn scope_clear(s: Scope) -> PyResult<u64> {
    s.clear().await.py()
}

// ---- groups ----

pub(crate) async fn group_set(g: Group, field: Vec<u8>, v: Value) -> PyResult<()> {
    g.set(&field, &v).await.py()
}

pub(crate) async fn group_len(g: Group) -> PyResult<u64> {
    g.len().await.py()
}

pub(crate) async fn group_ttl(g: Group) -> PyResult<Option<f64>> {
    Ok(g.ttl().await.py()?.map(|d| d.as_secs_f64()))
}

pub(crate) async fn group_clear(g: Group) -> PyResult<bool> {
    g.clear().await.py()
}

pub(crate) async fn group_fetch(
    g: Group,
    field: Vec<u8>,
    loader: Loader,
    with_source: bool,
) -> PyResult<ComputedOut> {
    let fetched = g.fetch(&field, || loader.run()).await;
    computed(fetched, with_source, Fetched::as_str)
}

// ---- read-through ----

/// A Python loader: a callable returning the value, or (async API only)
/// an awaitable of it.
pub(crate) struct Loader {
    pub(crate) f: Py<PyAny>,
    pub(crate) allow_async: bool,
}

enum Called {
    Value(Value),
    Awaiting(std::pin::Pin<Box<dyn std::future::Future<Output = PyResult<Py<PyAny>>> + Send>>),
}

impl Loader {
    /// Calls the loader (and awaits what it returns, if awaitable).
    pub(crate) async fn run(self) -> PyResult<Value> {
        let called = Python::with_gil(|py| -> PyResult<Called> {
            let out = self.f.call0(py)?;
            let out = out.bind(py);
            if out.hasattr("__await__")? {
                if !self.allow_async {
                    if out.hasattr("close")? {
                        out.call_method0("close")?;
                    }
                    return Err(PyTypeError::new_err(
                        "the loader returned an awaitable: use AsyncCache for async loaders",
                    ));
                }
                let fut = pyo3_async_runtimes::tokio::into_future(out.clone())?;
                return Ok(Called::Awaiting(Box::pin(fut)));
            }
            Ok(Called::Value(out.extract::<In>()?.into_value()))
        })?;
        match called {
            Called::Value(v) => Ok(v),
            Called::Awaiting(fut) => {
                let out = fut.await?;
                Python::with_gil(|py| Ok(out.bind(py).extract::<In>()?.into_value()))
            }
        }
    }
}

/// A read-through's value, with where it came from when asked.
pub(crate) struct ComputedOut {
    value: Value,
    source: Option<&'static str>,
}

impl<'py> IntoPyObject<'py> for ComputedOut {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        let value = Out(self.value).into_pyobject(py)?;
        match self.source {
            None => Ok(value),
            Some(s) => Ok((value, s).into_pyobject(py)?.into_any()),
        }
    }
}

/// A read-through's result for Python; `name` names its source (a
/// `Source`, or a group fetch's `Fetched`).
fn computed<S>(
    r: Result<Computed<Value, S>, ComputeError<PyErr>>,
    with_source: bool,
    name: fn(S) -> &'static str,
) -> PyResult<ComputedOut> {
    let (value, source) = r.map_err(compute_to_py)?.into_parts();
    Ok(ComputedOut {
        value,
        source: with_source.then(|| name(source)),
    })
}

pub(crate) async fn get_or_compute(
    c: Cache,
    key: Vec<u8>,
    o: SetOptions,
    loader: Loader,
    with_source: bool,
) -> PyResult<ComputedOut> {
    computed(
        c.get_or_compute(&key, &o, || loader.run()).await,
        with_source,
        Source::as_str,
    )
}

// ---- fail-safe ----

/// A fail-safe read's outcome: `(status, value, reason)`.
pub(crate) type LookupOut = (&'static str, Option<Out>, Option<&'static str>);

fn lookup_out(l: Lookup<Value>) -> LookupOut {
    match l {
        Lookup::Hit(v) => ("hit", Some(Out(v)), None),
        Lookup::Miss => ("miss", None, None),
        Lookup::Bypassed(r) => ("bypassed", None, Some(reason(r))),
        _ => ("bypassed", None, None),
    }
}

fn reason(r: BypassReason) -> &'static str {
    r.as_str()
}

fn removal(r: Removal) -> Option<u64> {
    match r {
        Removal::Done(n) => Some(n),
        _ => None,
    }
}

pub(crate) async fn fs_lookup(f: FailSafeCache, key: Vec<u8>) -> PyResult<LookupOut> {
    Ok(lookup_out(f.get::<Value>(&key).await.py()?))
}

pub(crate) async fn fs_get(f: FailSafeCache, key: Vec<u8>) -> PyResult<Option<Out>> {
    Ok(f.get::<Value>(&key).await.py()?.hit().map(Out))
}

pub(crate) async fn fs_set(f: FailSafeCache, key: Vec<u8>, v: In, o: SetOptions) -> PyResult<bool> {
    let w = match v {
        In::Bytes(b) => f.set_bytes(&key, &b, &o).await,
        In::Value(v) => f.set(&key, &v, &o).await,
    }
    .py()?;
    Ok(matches!(w, Written::Stored))
}

pub(crate) async fn fs_delete_many(f: FailSafeCache, keys: Vec<Vec<u8>>) -> PyResult<Option<u64>> {
    Ok(removal(f.delete_many(&keys).await.py()?))
}

pub(crate) async fn fs_invalidate_tags(
    f: FailSafeCache,
    tags: Vec<Vec<u8>>,
) -> PyResult<Option<u64>> {
    Ok(removal(f.invalidate_tags(&tags).await.py()?))
}

pub(crate) async fn fs_clear(f: FailSafeCache) -> PyResult<Option<u64>> {
    Ok(removal(f.clear().await.py()?))
}

// The fail-safe adapters repeat the strict ones' shape on purpose: another type, no common trait.
pub(crate) async fn fs_get_or_compute(
    f: FailSafeCache,
    key: Vec<u8>,
    o: SetOptions,
    loader: Loader,
    with_source: bool,
) -> PyResult<ComputedOut> {
    computed(
        f.get_or_compute(&key, &o, || loader.run()).await,
        with_source,
        Source::as_str,
    )
}

// ---- fail-safe keyspaces ----

pub(crate) async fn fs_set_path(
    f: FailSafeCache,
    p: KeyPath,
    v: Value,
    o: SetOptions,
) -> PyResult<bool> {
    Ok(matches!(
        f.set_path(&p, &v, &o).await.py()?,
        Written::Stored
    ))
}

pub(crate) async fn fs_get_path(f: FailSafeCache, p: KeyPath) -> PyResult<Option<Out>> {
    Ok(f.get_path::<Value>(&p).await.py()?.hit().map(Out))
}

pub(crate) async fn fs_delete_path(f: FailSafeCache, p: KeyPath) -> PyResult<Option<u64>> {
    Ok(removal(f.delete_path(&p).await.py()?))
}

pub(crate) async fn fs_invalidate_prefix(f: FailSafeCache, p: KeyPath) -> PyResult<Option<u64>> {
    Ok(removal(f.invalidate_prefix(&p).await.py()?))
}

pub(crate) async fn fs_paths_under(
    f: FailSafeCache,
    p: KeyPath,
) -> PyResult<Option<Vec<crate::pager::Item>>> {
    Ok(f.paths_under(&p)
        .await
        .py()?
        .hit()
        .map(|v| v.into_iter().map(crate::pager::Item::Path).collect()))
}

pub(crate) async fn fss_get(s: FailSafeScope, part: Part) -> PyResult<Option<Out>> {
    Ok(s.get::<Value>(part).await.py()?.hit().map(Out))
}

pub(crate) async fn fss_lookup(s: FailSafeScope, part: Part) -> PyResult<LookupOut> {
    Ok(lookup_out(s.get::<Value>(part).await.py()?))
}

pub(crate) async fn fss_contains(s: FailSafeScope, part: Part) -> PyResult<Option<bool>> {
    Ok(match s.contains(part).await.py()? {
        Lookup::Hit(()) => Some(true),
        Lookup::Miss => Some(false),
        _ => None,
    })
}

pub(crate) async fn fss_set(s: FailSafeScope, part: Part, v: In, o: SetOptions) -> PyResult<bool> {
    let w = match v {
        In::Bytes(b) => s.set_bytes(part, &b, &o).await,
        In::Value(v) => s.set(part, &v, &o).await,
    }
    .py()?;
    Ok(matches!(w, Written::Stored))
}

pub(crate) async fn fss_delete(s: FailSafeScope, part: Part) -> PyResult<Option<u64>> {
    Ok(removal(s.delete(part).await.py()?))
}

pub(crate) async fn fss_clear(s: FailSafeScope) -> PyResult<Option<u64>> {
    Ok(removal(s.clear().await.py()?))
}

pub(crate) async fn fsg_fetch(
    g: FailSafeGroup,
    field: Vec<u8>,
    loader: Loader,
    with_source: bool,
) -> PyResult<ComputedOut> {
    let fetched = g.fetch(&field, || loader.run()).await;
    computed(fetched, with_source, Fetched::as_str)
}

pub(crate) async fn fsg_get(g: FailSafeGroup, field: Vec<u8>) -> PyResult<Option<Out>> {
    Ok(g.get::<Value>(&field).await.py()?.hit().map(Out))
}

pub(crate) async fn fsg_set(g: FailSafeGroup, field: Vec<u8>, v: Value) -> PyResult<bool> {
    Ok(matches!(g.set(&field, &v).await.py()?, Written::Stored))
}

pub(crate) async fn fsg_clear(g: FailSafeGroup) -> PyResult<Option<u64>> {
    Ok(removal(g.clear().await.py()?))
}
