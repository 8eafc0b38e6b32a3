//! `Cache(url, **options)`: the builder's options as keyword arguments.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict};
use tagcache::legacy::{LegacyMode, LegacyRules};
use tagcache::{
    BreakerConfig, CacheBuilder, Compression, EvictionCheck, InvalidInput, KeyLogging, L1Options,
};

use crate::convert::{Key, Secs};
use crate::errors::OrPy;

/// The keyword arguments `Cache` and `AsyncCache` accept.
pub(crate) const OPTIONS: &[&str] = &[
    "namespace",
    "default_ttl",
    "max_ttl",
    "buckets",
    "connect_timeout",
    "response_timeout",
    "op_timeout",
    "max_tags",
    "max_value_bytes",
    "chunk_size",
    "trim_limit",
    "compression",
    "eviction_check",
    "auto_sweep",
    "fence_window",
    "journal_capacity",
    "cluster",
    "tls_root_certificate",
    "breaker",
    "key_logging",
    "l1",
    "legacy_rules",
    "legacy_mode",
    "lazy",
];

/// A builder configured from `options`, and whether to build lazily.
pub(crate) fn builder(
    url: &str,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<(CacheBuilder, bool)> {
    let mut b = tagcache::Cache::builder(url);
    let mut lazy = false;
    let Some(options) = options else {
        return Ok((b, lazy));
    };
    let mut legacy_rules: Option<LegacyRules> = None;
    let mut legacy_mode = LegacyMode::Migrate;
    for (k, v) in options.iter() {
        let name: String = k.extract()?;
        if v.is_none() {
            continue;
        }
        b = match name.as_str() {
            "namespace" => b.namespace(v.extract::<String>()?),
            "default_ttl" => b.default_ttl(v.extract::<Secs>()?.0),
            "max_ttl" => b.max_ttl(v.extract::<Secs>()?.0),
            "buckets" => {
                let n: i64 = v.extract()?;
                let n = u16::try_from(n)
                    .map_err(|_| tagcache::Error::from(InvalidInput::Buckets))
                    .py()?;
                b.buckets(n)
            }
            "connect_timeout" => b.connect_timeout(v.extract::<Secs>()?.0),
            "response_timeout" => b.response_timeout(v.extract::<Secs>()?.0),
            "op_timeout" => b.op_timeout(v.extract::<Secs>()?.0),
            "max_tags" => b.max_tags(v.extract()?),
            "max_value_bytes" => b.max_value_bytes(v.extract()?),
            "chunk_size" => b.chunk_size(v.extract()?),
            "trim_limit" => b.trim_limit(v.extract()?),
            "compression" => b.compression(compression(&v)?),
            "eviction_check" => b.eviction_check(match v.extract::<String>()?.as_str() {
                "refuse" => EvictionCheck::Refuse,
                "warn" => EvictionCheck::Warn,
                "ignore" => EvictionCheck::Ignore,
                other => {
                    return Err(PyValueError::new_err(format!(
                        "eviction_check is 'refuse', 'warn' or 'ignore', not {other:?}"
                    )))
                }
            }),
            "auto_sweep" => {
                if v.is_instance_of::<PyBool>() {
                    if v.extract::<bool>()? {
                        b
                    } else {
                        b.auto_sweep(None)
                    }
                } else {
                    b.auto_sweep(Some(v.extract::<Secs>()?.0))
                }
            }
            "fence_window" => b.fence_window(v.extract::<Secs>()?.0),
            "journal_capacity" => b.journal_capacity(v.extract()?),
            "cluster" => b.cluster(v.extract::<Vec<String>>()?),
            "tls_root_certificate" => b.tls_root_certificate(v.extract::<Key>()?.0),
            "breaker" => b.breaker(breaker(&v)?),
            "key_logging" => b.key_logging(key_logging(&v)?),
            "l1" => {
                if v.is_instance_of::<PyBool>() {
                    if v.extract::<bool>()? {
                        b.l1(L1Options::new())
                    } else {
                        b
                    }
                } else {
                    b.l1(l1(&v)?)
                }
            }
            "legacy_rules" => {
                legacy_rules = Some(LegacyRules::from_toml(&v.extract::<String>()?).py()?);
                b
            }
            "legacy_mode" => {
                legacy_mode = match v.extract::<String>()?.as_str() {
                    "migrate" => LegacyMode::Migrate,
                    "read_only" => LegacyMode::ReadOnly,
                    other => {
                        return Err(PyValueError::new_err(format!(
                            "legacy_mode is 'migrate' or 'read_only', not {other:?}"
                        )))
                    }
                };
                b
            }
            "lazy" => {
                lazy = v.extract()?;
                b
            }
            other => {
                return Err(PyTypeError::new_err(format!(
                    "unexpected option {other:?}; the options are {}",
                    OPTIONS.join(", ")
                )))
            }
        };
    }
    if let Some(rules) = legacy_rules {
        b = b.legacy(rules, legacy_mode);
    }
    Ok((b, lazy))
}

/// `{"failures": n, "cooldown": secs, "max_cooldown": secs}` (any subset).
fn breaker(v: &Bound<'_, PyAny>) -> PyResult<BreakerConfig> {
    let d = v.downcast::<PyDict>()?;
    let mut c = BreakerConfig::default();
    for (k, v) in d.iter() {
        match k.extract::<String>()?.as_str() {
            "failures" => c = c.failures(v.extract()?),
            "cooldown" => c = c.cooldown(v.extract::<Secs>()?.0),
            "max_cooldown" => c = c.max_cooldown(v.extract::<Secs>()?.0),
            other => {
                return Err(PyTypeError::new_err(format!(
                    "unexpected breaker setting {other:?}: failures, cooldown, max_cooldown"
                )))
            }
        }
    }
    Ok(c)
}

/// `True`, or `{"capacity_bytes": n, "ttl": secs, "check_period": secs,
/// "serve_while_down": bool}` (any subset): the in-process L1 tier.
fn l1(v: &Bound<'_, PyAny>) -> PyResult<L1Options> {
    let d = v.downcast::<PyDict>()?;
    let mut o = L1Options::new();
    for (k, v) in d.iter() {
        o = match k.extract::<String>()?.as_str() {
            "capacity_bytes" => o.capacity_bytes(v.extract()?),
            "ttl" => o.ttl(v.extract::<Secs>()?.0),
            "check_period" => o.check_period(v.extract::<Secs>()?.0),
            "serve_while_down" => o.serve_while_down(v.extract()?),
            other => {
                return Err(PyTypeError::new_err(format!(
                    "unexpected l1 setting {other:?}: capacity_bytes, ttl, check_period, serve_while_down"
                )))
            }
        };
    }
    Ok(o)
}

/// `"off"`, `"hashed"`, or an int: keys truncated to that many bytes.
fn key_logging(v: &Bound<'_, PyAny>) -> PyResult<KeyLogging> {
    if let Ok(n) = v.extract::<usize>() {
        return Ok(KeyLogging::Truncated(n));
    }
    match v.extract::<String>()?.as_str() {
        "off" => Ok(KeyLogging::Off),
        "hashed" => Ok(KeyLogging::Hashed),
        other => Err(PyValueError::new_err(format!(
            "key_logging is 'off', 'hashed' or a length, not {other:?}"
        ))),
    }
}

/// `False` (never), `True` (the default: LZ4 from 1 KiB) or a threshold
/// in bytes.
fn compression(v: &Bound<'_, PyAny>) -> PyResult<Compression> {
    if v.is_instance_of::<PyBool>() {
        return Ok(if v.extract::<bool>()? {
            Compression::default()
        } else {
            Compression::none()
        });
    }
    Ok(Compression::lz4_above(v.extract()?))
}

/// Builds the cache: connects and checks the server, or (lazily) starts
/// connecting in the background.
pub(crate) async fn connect(b: CacheBuilder, lazy: bool) -> PyResult<tagcache::Cache> {
    if lazy {
        b.build_lazy().py()
    } else {
        b.build().await.py()
    }
}

/// The blocking constructors, `Cache(url, **options)` and
/// `AsyncCache(url, **options)`: builds and connects with the GIL released.
pub(crate) fn open(
    py: Python<'_>,
    url: &str,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<tagcache::Cache> {
    let (b, lazy) = builder(url, options)?;
    crate::block(py, connect(b, lazy))
}
