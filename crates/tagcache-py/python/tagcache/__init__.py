"""tagcache: a Redis cache whose entries carry tags (secondary indexes),
kept exact and atomic, over the tagcache Rust library.

>>> cache = tagcache.Cache("redis://127.0.0.1:6379", namespace="shop")
>>> cache.set("page:/shoes", "<h1>Shoes</h1>", ttl=600, tags=["product:42"])
>>> cache.invalidate_tag("product:42")
1

``Cache`` is synchronous (the GIL is released while waiting on Redis);
``AsyncCache`` has the same methods as coroutines. ``bytes`` values are
stored raw; other values (dict, list, tuple, str, int, float, bool, None)
as MessagePack, readable by a Rust service with ``cache.get::<T>()``.
"""

from ._errors import (
    AuthError,
    CircuitOpen,
    CodecError,
    ConfigError,
    ConnectionError,
    Contended,
    Error,
    InvalidInput,
    LayoutError,
    OutOfMemory,
    ProtocolError,
    ScriptError,
    ServerError,
    TimeoutError,
    UnsafeEvictionPolicy,
)
from ._tagcache import (
    LAYOUT_VERSION,
    AsyncCache,
    AsyncFailSafeCache,
    AsyncFailSafeGroup,
    AsyncFailSafeScope,
    AsyncGroup,
    AsyncKeyIterator,
    AsyncScope,
    Cache,
    FailSafeCache,
    FailSafeGroup,
    FailSafeScope,
    Group,
    KeyIterator,
    Scope,
)

__all__ = [
    "LAYOUT_VERSION",
    "AsyncCache",
    "AsyncFailSafeCache",
    "AsyncFailSafeGroup",
    "AsyncFailSafeScope",
    "AsyncGroup",
    "AsyncKeyIterator",
    "AsyncScope",
    "Cache",
    "FailSafeCache",
    "FailSafeGroup",
    "FailSafeScope",
    "Group",
    "KeyIterator",
    "Scope",
    "AuthError",
    "CircuitOpen",
    "CodecError",
    "ConfigError",
    "ConnectionError",
    "Contended",
    "Error",
    "InvalidInput",
    "LayoutError",
    "OutOfMemory",
    "ProtocolError",
    "ScriptError",
    "ServerError",
    "TimeoutError",
    "UnsafeEvictionPolicy",
]
