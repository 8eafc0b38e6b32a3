"""Typed stubs of the native module (every class is re-exported by
``tagcache``)."""

from datetime import timedelta
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
    overload,
)

Key = Union[str, bytes, bytearray]
"""A key, tag or group field: str (UTF-8) or bytes."""
Part = Union[str, bytes, int]
"""One part of a hierarchical key."""
Path = Union[Tuple[Part, ...], List[Part]]
"""A hierarchical key: parts, e.g. ("org", 7, "prj", 3)."""
Pattern = Union[Tuple[Optional[Part], ...], List[Optional[Part]]]
"""A path pattern: parts, None matching any one part."""
Duration = Union[int, float, timedelta]
"""Seconds, or a timedelta."""
Value = Any
"""bytes (stored raw), or dict / list / tuple / str / int / float / bool / None
(stored as MessagePack)."""
KeyOut = Union[str, bytes]
"""A listed key: str, or bytes when not UTF-8."""
PathOut = Tuple[KeyOut, ...]
"""A listed path: a tuple of parts (integers as decimal str)."""
Lookup = Tuple[Literal["hit", "miss", "bypassed"], Value, Optional[str]]
"""A fail-safe read: (status, value, bypass reason)."""

T = TypeVar("T")
Loader = Callable[[], Any]
AsyncLoader = Callable[[], Union[Any, Awaitable[Any]]]

LAYOUT_VERSION: int

class KeyIterator(Iterator[Any]):
    """A listing, fetched from Redis one page at a time."""
    def __iter__(self) -> "KeyIterator": ...
    def __next__(self) -> Any: ...

class AsyncKeyIterator(AsyncIterator[Any]):
    """A listing for ``async for``, fetched one page at a time."""
    def __aiter__(self) -> "AsyncKeyIterator": ...
    async def __anext__(self) -> Any: ...

class Cache:
    """A Redis cache whose entries carry tags. Connects and checks the
    server on construction. Thread-safe; the GIL is released while
    waiting on Redis."""

    def __init__(
        self,
        url: str,
        *,
        namespace: Optional[str] = ...,
        default_ttl: Optional[Duration] = ...,
        max_ttl: Optional[Duration] = ...,
        buckets: Optional[int] = ...,
        connect_timeout: Optional[Duration] = ...,
        response_timeout: Optional[Duration] = ...,
        op_timeout: Optional[Duration] = ...,
        max_tags: Optional[int] = ...,
        max_value_bytes: Optional[int] = ...,
        chunk_size: Optional[int] = ...,
        trim_limit: Optional[int] = ...,
        compression: Union[bool, int, None] = ...,
        eviction_check: Optional[Literal["refuse", "warn", "ignore"]] = ...,
        auto_sweep: Union[bool, Duration, None] = ...,
        fence_window: Optional[Duration] = ...,
        journal_capacity: Optional[int] = ...,
        cluster: Optional[Sequence[str]] = ...,
        tls_root_certificate: Union[str, bytes, None] = ...,
        breaker: Optional[Mapping[str, Union[int, Duration]]] = ...,
        key_logging: Union[Literal["off", "hashed"], int, None] = ...,
        l1: Union[bool, Mapping[str, Union[int, bool, Duration]], None] = ...,
        legacy_rules: Optional[str] = ...,
        legacy_mode: Optional[Literal["migrate", "read_only"]] = ...,
        lazy: bool = ...,
    ) -> None: ...
    @property
    def namespace(self) -> str:
        """The namespace this cache reads and writes."""
    @property
    def circuit_state(self) -> Literal["closed", "open", "half_open"]:
        """State of the circuit breaker in front of Redis."""
    def aio(self) -> "AsyncCache":
        """The asyncio API over the same connection."""
    def get(self, key: Key) -> Value:
        """A value; None when absent or expired."""
    def set(self, key: Key, value: Value, *, ttl: Optional[Duration] = None,
            tags: Optional[Iterable[Key]] = None) -> None:
        """Stores a value with its tags, atomically with its index edges."""
    def get_many(self, keys: Iterable[Key]) -> List[Value]:
        """Values in the order asked (None for a miss), one MGET."""
    def set_many(self, items: Union[Mapping[Key, Value], Iterable[Tuple[Key, Value]]], *,
                 ttl: Optional[Duration] = None, tags: Optional[Iterable[Key]] = None) -> None:
        """Stores many values with the same TTL and tags."""
    def delete(self, key: Key) -> bool:
        """Deletes an entry and its index edges; True if it existed."""
    def delete_many(self, keys: Iterable[Key]) -> int:
        """Deletes entries; how many existed."""
    def exists(self, key: Key) -> bool:
        """Whether an entry exists."""
    def ttl(self, key: Key) -> Optional[float]:
        """Remaining TTL in seconds; None when absent."""
    def tags(self, key: Key) -> Optional[List[KeyOut]]:
        """The entry's tags (reserved prefix tags included); None when absent."""
    def invalidate_tag(self, tag: Key) -> int:
        """Deletes every entry carrying the tag; how many."""
    def invalidate_tags(self, tags: Iterable[Key]) -> int:
        """Deletes every entry carrying any of the tags; how many."""
    def keys_with_tag(self, tag: Key, *, page_size: Optional[int] = None) -> KeyIterator:
        """The live keys carrying the tag (an iterator of KeyOut), page by page."""
    def tag_len(self, tag: Key) -> int:
        """How many live entries carry the tag."""
    def has_tag(self, key: Key, tag: Key) -> bool:
        """Whether the live entry carries the tag."""
    def prune(self, *, budget: Optional[int] = None) -> Dict[str, Union[int, bool]]:
        """One full sweep (or one bounded step); a report."""
    def stats(self) -> Dict[str, Union[int, str]]:
        """Index statistics."""
    def clear(self) -> int:
        """Deletes every entry and group of the namespace; how many."""
    def set_path(self, path: Path, value: Value, *, ttl: Optional[Duration] = None,
                 tags: Optional[Iterable[Key]] = None) -> None:
        """Stores a value at a hierarchical key."""
    def get_path(self, path: Path) -> Value:
        """The value at a hierarchical key; None when absent."""
    def delete_path(self, path: Path) -> bool:
        """Deletes the entry at a hierarchical key."""
    def invalidate_prefix(self, prefix: Path) -> int:
        """Deletes every entry under the prefix (and at it); how many."""
    def paths_under(self, prefix: Path) -> KeyIterator:
        """The live paths under the prefix (an iterator of PathOut)."""
    def query(self, pattern: Pattern, *, page_size: Optional[int] = None) -> KeyIterator:
        """(path, value) pairs of the entries matching the pattern."""
    @overload
    def scope(self, owner: Path) -> "Scope": ...
    @overload
    def scope(self, *owner: Part) -> "Scope":
        """The scope of one owner: cache.scope("dsr", "pr-1")."""
    def group(self, name: str, owner: Part, *, default_ttl: Optional[Duration] = None,
              cap: Optional[int] = None, tags: Optional[Iterable[Key]] = None,
              dry_run: bool = False) -> "Group":
        """The hash group ``name`` of ``owner``."""
    def get_or_compute(self, key: Key, loader: Loader, *, ttl: Optional[Duration] = None,
                       tags: Optional[Iterable[Key]] = None, return_source: bool = False) -> Any:
        """Reads the key; on a miss calls loader() and stores its value
        (single-flight, fenced). With return_source: (value, source)."""
    def fail_safe(self, *, timeout: Optional[Duration] = None) -> "FailSafeCache":
        """The fail-safe view."""

class Scope:
    """One owner's keys."""
    @property
    def owner(self) -> PathOut:
        """The owner's path."""
    def set(self, part: Part, value: Value, *, ttl: Optional[Duration] = None,
            tags: Optional[Iterable[Key]] = None) -> None:
        """Stores one of the owner's values."""
    def get(self, part: Part) -> Value:
        """One of the owner's values (legacy values as bytes)."""
    def delete(self, part: Part) -> bool:
        """Deletes one of the owner's values."""
    def contains(self, part: Part) -> bool:
        """Whether the owner has a live value under ``part``."""
    def ttl(self, part: Part) -> Optional[float]:
        """Remaining TTL in seconds."""
    def keys(self) -> KeyIterator:
        """The owner's keys as full paths (PathOut)."""
    def clear(self) -> int:
        """Deletes every entry under the owner's path; how many."""

class Group:
    """One owner's hash of small cached fields."""
    def fetch(self, field: Key, loader: Loader, *, return_source: bool = False) -> Any:
        """Reads a field; on a miss calls loader() and stores the value (fenced)."""
    def set(self, field: Key, value: Value) -> None:
        """Stores a field directly."""
    def len(self) -> int:
        """How many fields the group holds."""
    def ttl(self) -> Optional[float]:
        """The group's remaining TTL in seconds."""
    def clear(self) -> bool:
        """Drops the whole group; True if it existed."""

class FailSafeCache:
    """Reads and writes that never raise for an unavailable Redis."""
    def get(self, key: Key) -> Value:
        """A value; None on a miss or a bypass."""
    def lookup(self, key: Key) -> Lookup:
        """(status, value, reason)."""
    def set(self, key: Key, value: Value, *, ttl: Optional[Duration] = None,
            tags: Optional[Iterable[Key]] = None) -> bool:
        """False when skipped (Redis unavailable)."""
    def delete(self, key: Key) -> Optional[int]:
        """The count removed, or None when journaled."""
    def invalidate_tag(self, tag: Key) -> Optional[int]:
        """The count removed, or None when journaled."""
    def invalidate_tags(self, tags: Iterable[Key]) -> Optional[int]:
        """The count removed, or None when journaled."""
    def clear(self) -> Optional[int]:
        """The count removed, or None when journaled."""
    def get_or_compute(self, key: Key, loader: Loader, *, ttl: Optional[Duration] = None,
                       tags: Optional[Iterable[Key]] = None, return_source: bool = False) -> Any:
        """get_or_compute that serves the loader's value unstored when Redis is unavailable."""
    def pending(self) -> int:
        """How many removals are journaled, waiting for Redis."""
    def set_path(self, path: Path, value: Value, *, ttl: Optional[Duration] = None,
                 tags: Optional[Iterable[Key]] = None) -> bool:
        """False when skipped."""
    def get_path(self, path: Path) -> Value:
        """None on a miss or a bypass."""
    def delete_path(self, path: Path) -> Optional[int]:
        """The count, or None when journaled."""
    def invalidate_prefix(self, prefix: Path) -> Optional[int]:
        """The count, or None when journaled."""
    def paths_under(self, prefix: Path) -> Optional[List[PathOut]]:
        """The paths, or None when the cache could not be used."""
    @overload
    def scope(self, owner: Path) -> "FailSafeScope": ...
    @overload
    def scope(self, *owner: Part) -> "FailSafeScope":
        """The fail-safe view of one owner's scope."""
    def group(self, name: str, owner: Part, *, default_ttl: Optional[Duration] = None,
              cap: Optional[int] = None, tags: Optional[Iterable[Key]] = None,
              dry_run: bool = False) -> "FailSafeGroup":
        """The fail-safe view of a hash group."""

class FailSafeScope:
    """The fail-safe view of one owner's scope."""
    @property
    def owner(self) -> PathOut: ...
    def get(self, part: Part) -> Value: ...
    def lookup(self, part: Part) -> Lookup: ...
    def contains(self, part: Part) -> Optional[bool]: ...
    def set(self, part: Part, value: Value, *, ttl: Optional[Duration] = None,
            tags: Optional[Iterable[Key]] = None) -> bool: ...
    def delete(self, part: Part) -> Optional[int]: ...
    def clear(self) -> Optional[int]: ...

class FailSafeGroup:
    """The fail-safe view of a hash group."""
    def fetch(self, field: Key, loader: Loader, *, return_source: bool = False) -> Any: ...
    def get(self, field: Key) -> Value: ...
    def set(self, field: Key, value: Value) -> bool: ...
    def clear(self) -> Optional[int]: ...

class AsyncCache:
    """The asyncio API: the methods of Cache as coroutines."""

    def __init__(self, url: str, **options: Any) -> None: ...
    @staticmethod
    async def connect(url: str, **options: Any) -> "AsyncCache":
        """Connects without blocking the loop (options as for Cache)."""
    @property
    def namespace(self) -> str: ...
    @property
    def circuit_state(self) -> Literal["closed", "open", "half_open"]: ...
    def sync(self) -> Cache:
        """The synchronous API over the same connection."""
    async def get(self, key: Key) -> Value: ...
    async def set(self, key: Key, value: Value, *, ttl: Optional[Duration] = None,
                  tags: Optional[Iterable[Key]] = None) -> None: ...
    async def get_many(self, keys: Iterable[Key]) -> List[Value]: ...
    async def set_many(self, items: Union[Mapping[Key, Value], Iterable[Tuple[Key, Value]]], *,
                       ttl: Optional[Duration] = None, tags: Optional[Iterable[Key]] = None) -> None: ...
    async def delete(self, key: Key) -> bool: ...
    async def delete_many(self, keys: Iterable[Key]) -> int: ...
    async def exists(self, key: Key) -> bool: ...
    async def ttl(self, key: Key) -> Optional[float]: ...
    async def tags(self, key: Key) -> Optional[List[KeyOut]]: ...
    async def invalidate_tag(self, tag: Key) -> int: ...
    async def invalidate_tags(self, tags: Iterable[Key]) -> int: ...
    def keys_with_tag(self, tag: Key, *, page_size: Optional[int] = None) -> AsyncKeyIterator: ...
    async def tag_len(self, tag: Key) -> int: ...
    async def has_tag(self, key: Key, tag: Key) -> bool: ...
    async def prune(self, *, budget: Optional[int] = None) -> Dict[str, Union[int, bool]]: ...
    async def stats(self) -> Dict[str, Union[int, str]]: ...
    async def clear(self) -> int: ...
    async def set_path(self, path: Path, value: Value, *, ttl: Optional[Duration] = None,
                       tags: Optional[Iterable[Key]] = None) -> None: ...
    async def get_path(self, path: Path) -> Value: ...
    async def delete_path(self, path: Path) -> bool: ...
    async def invalidate_prefix(self, prefix: Path) -> int: ...
    def paths_under(self, prefix: Path) -> AsyncKeyIterator: ...
    def query(self, pattern: Pattern, *, page_size: Optional[int] = None) -> AsyncKeyIterator: ...
    @overload
    def scope(self, owner: Path) -> "AsyncScope": ...
    @overload
    def scope(self, *owner: Part) -> "AsyncScope": ...
    def group(self, name: str, owner: Part, *, default_ttl: Optional[Duration] = None,
              cap: Optional[int] = None, tags: Optional[Iterable[Key]] = None,
              dry_run: bool = False) -> "AsyncGroup": ...
    async def get_or_compute(self, key: Key, loader: AsyncLoader, *, ttl: Optional[Duration] = None,
                             tags: Optional[Iterable[Key]] = None, return_source: bool = False) -> Any: ...
    def fail_safe(self, *, timeout: Optional[Duration] = None) -> "AsyncFailSafeCache": ...

class AsyncScope:
    """Scope with coroutine methods."""
    @property
    def owner(self) -> PathOut: ...
    async def set(self, part: Part, value: Value, *, ttl: Optional[Duration] = None,
                  tags: Optional[Iterable[Key]] = None) -> None: ...
    async def get(self, part: Part) -> Value: ...
    async def delete(self, part: Part) -> bool: ...
    async def contains(self, part: Part) -> bool: ...
    async def ttl(self, part: Part) -> Optional[float]: ...
    def keys(self) -> AsyncKeyIterator: ...
    async def clear(self) -> int: ...

class AsyncGroup:
    """Group with coroutine methods."""
    async def fetch(self, field: Key, loader: AsyncLoader, *, return_source: bool = False) -> Any: ...
    async def set(self, field: Key, value: Value) -> None: ...
    async def len(self) -> int: ...
    async def ttl(self) -> Optional[float]: ...
    async def clear(self) -> bool: ...

class AsyncFailSafeCache:
    """FailSafeCache with coroutine methods."""
    async def get(self, key: Key) -> Value: ...
    async def lookup(self, key: Key) -> Lookup: ...
    async def set(self, key: Key, value: Value, *, ttl: Optional[Duration] = None,
                  tags: Optional[Iterable[Key]] = None) -> bool: ...
    async def delete(self, key: Key) -> Optional[int]: ...
    async def invalidate_tag(self, tag: Key) -> Optional[int]: ...
    async def invalidate_tags(self, tags: Iterable[Key]) -> Optional[int]: ...
    async def clear(self) -> Optional[int]: ...
    async def get_or_compute(self, key: Key, loader: AsyncLoader, *, ttl: Optional[Duration] = None,
                             tags: Optional[Iterable[Key]] = None, return_source: bool = False) -> Any: ...
    def pending(self) -> int: ...
    async def set_path(self, path: Path, value: Value, *, ttl: Optional[Duration] = None,
                       tags: Optional[Iterable[Key]] = None) -> bool: ...
    async def get_path(self, path: Path) -> Value: ...
    async def delete_path(self, path: Path) -> Optional[int]: ...
    async def invalidate_prefix(self, prefix: Path) -> Optional[int]: ...
    async def paths_under(self, prefix: Path) -> Optional[List[PathOut]]: ...
    @overload
    def scope(self, owner: Path) -> "AsyncFailSafeScope": ...
    @overload
    def scope(self, *owner: Part) -> "AsyncFailSafeScope": ...
    def group(self, name: str, owner: Part, *, default_ttl: Optional[Duration] = None,
              cap: Optional[int] = None, tags: Optional[Iterable[Key]] = None,
              dry_run: bool = False) -> "AsyncFailSafeGroup": ...

class AsyncFailSafeScope:
    """FailSafeScope with coroutine methods."""
    @property
    def owner(self) -> PathOut: ...
    async def get(self, part: Part) -> Value: ...
    async def lookup(self, part: Part) -> Lookup: ...
    async def contains(self, part: Part) -> Optional[bool]: ...
    async def set(self, part: Part, value: Value, *, ttl: Optional[Duration] = None,
                  tags: Optional[Iterable[Key]] = None) -> bool: ...
    async def delete(self, part: Part) -> Optional[int]: ...
    async def clear(self) -> Optional[int]: ...

class AsyncFailSafeGroup:
    """FailSafeGroup with coroutine methods."""
    async def fetch(self, field: Key, loader: AsyncLoader, *, return_source: bool = False) -> Any: ...
    async def get(self, field: Key) -> Value: ...
    async def set(self, field: Key, value: Value) -> bool: ...
    async def clear(self) -> Optional[int]: ...
