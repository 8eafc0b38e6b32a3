"""Exceptions raised by tagcache, one per ``tagcache::ErrorKind``.

Every exception carries the Rust library's message (``str(e)``) and a
``kind`` attribute: the kind's stable name (``"timeout"``,
``"invalid_input"``, ...).
"""

import builtins


class Error(Exception):
    """Base class of every error tagcache raises (loader exceptions from
    ``get_or_compute`` propagate unchanged)."""

    kind: str = "error"


class InvalidInput(Error, ValueError):
    """The caller passed a value tagcache refuses (empty key, tag too long,
    TTL too short or above the maximum, ...)."""


class TimeoutError(Error, builtins.TimeoutError):  # noqa: A001
    """Redis did not answer within the response or connect timeout."""


class ConnectionError(Error, builtins.ConnectionError):  # noqa: A001
    """The connection to Redis failed, was refused or dropped."""


class AuthError(Error):
    """Authentication failed or the user lacks a permission (ACL)."""


class OutOfMemory(Error):
    """Redis refused a write because ``maxmemory`` was reached."""


class ScriptError(Error):
    """A tagcache script failed on the server."""


class ProtocolError(Error):
    """Redis answered something tagcache did not expect."""


class ServerError(Error):
    """Any other error reply from Redis."""


class CodecError(Error):
    """A value could not be encoded or decoded."""


class LayoutError(Error):
    """The namespace was written by an incompatible layout or configuration."""


class UnsafeEvictionPolicy(Error):
    """Redis' ``maxmemory-policy`` could evict index keys while their
    entries live (see the ``eviction_check`` option)."""


class Contended(Error):
    """A key kept changing under a multi-step operation; try again."""


class ConfigError(Error):
    """The client configuration is invalid (bad URL, bad option)."""


class CircuitOpen(Error):
    """The circuit breaker is open: Redis failed repeatedly and is not
    being called until a probe succeeds."""


__all__ = [
    "Error",
    "InvalidInput",
    "TimeoutError",
    "ConnectionError",
    "AuthError",
    "OutOfMemory",
    "ScriptError",
    "ProtocolError",
    "ServerError",
    "CodecError",
    "LayoutError",
    "UnsafeEvictionPolicy",
    "Contended",
    "ConfigError",
    "CircuitOpen",
]
