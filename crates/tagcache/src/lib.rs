//! # tagcache
//!
//! A Redis cache whose entries carry tags (secondary indexes), kept exact
//! and atomic, that never leaks index members and never blocks Redis:
//!
//! - every write stores the value and all its index edges in one atomic
//!   server-side step (a `MULTI`/`EXEC` transaction by default, or a Lua
//!   script whose keys are all declared: see [`WritePath`]);
//! - index members carry their entry's expiry and are trimmed on write and
//!   by a bounded background sweep: nothing outlives its entry for long;
//! - overwriting or deleting an entry removes every edge it left (an
//!   overwrite that drops tags through the transaction does so in a second
//!   step before it returns);
//! - invalidating a tag deletes every entry written before the call, in
//!   chunks of bounded size, resumable after a crash;
//! - no `KEYS`, no `SCAN` (outside the legacy-key migration paths), no
//!   unbounded server call.
//!
//! Start with [`Cache::builder`].
//!
//! ## Concurrent writes
//! Single writes made at the same time (`set`, `set_bytes`, the
//! read-through stores, scope and path writes) share server
//! calls: a lone write goes out at once; a burst is cut into batches of 8
//! to 128 entries (fewer when fewer wait), up to 4 of them in flight, so the
//! process prepares and answers one batch while Redis runs another (each
//! batch a task of its own: on a multi-thread runtime, on several
//! workers). Writes
//! of one key apply in the order they were made: one whose key is in a
//! batch still in flight waits for it. [`Cache::set_many`] sends its own
//! batches.
//!
//! ## Layout
//! Every key lives under the namespace, grouped in buckets that are Redis
//! Cluster hash tags (`{ns.b}`): an entry and its index edges share a
//! bucket (a function of the key bytes alone, whichever API writes it), so
//! a write is one atomic step even on a cluster. The normative
//! description, with every key, type and TTL rule, is
//! `docs/redis-layout.md`; the key names are built in one module only.
//!
//! ```text
//! {<ns>}:meta          hash    layout version, bucket count
//! {<ns>.<b>}:e:<key>   string  entry: header + tags + payload, PXAT expiry
//! {<ns>.<b>}:t:<tag>   zset    tag index: key -> expiry ms
//! {<ns>.<b>}:x:<tag>   zset    snapshot of a tag being invalidated
//! {<ns>.<b>}:reg       zset    tag -> lower bound of next expiry (the sweep's map)
//! {<ns>.<b>}:inv       zset    tag -> heartbeat of an invalidation in flight
//! {<ns>.<b>}:fence     zset    t<tag>/k<key> -> last invalidation/delete (guards read-through)
//! {<ns>.<b>}:l:<key>   string  load lease of a key: holder's token, PX expiry (opt-in)
//! {<ns>.<b>}:l1        string  announcement counter; also the bucket's shard channel (L1 tiers)
//! {<ns>}:legacy        hash    bulk legacy-key migration: cursor, counts (while one runs)
//! ```
//!
//! ## Legacy keys
//! A system moving to tagcache from its own key formats describes them
//! with [`legacy::LegacyRules`] ([`CacheBuilder::legacy`]): scoped reads fall back
//! to the legacy key and move it (value, remaining TTL, index) in one
//! script; listing and clearing a scope also cover its legacy keys until
//! [`Cache::legacy_migration`] has walked the keyspace once. These are the
//! only paths that use `SCAN`.

// Module map. The public front: `cache` (the handle and its operations),
// `builder`, `options`, `error`. Beneath it, by subsystem:
// - `layout`: what lives in Redis (key names, entry codec, paths);
// - `engine`: write, remove, invalidate, clear, listing, stats, sweep, and
//   opening the namespace (meta key);
// - `scripts`: the Lua scripts, their table and the KEYS/ARGV builder;
// - `server`: connection, circuit breaker, eviction-policy check;
// - `keyspace`: paths, owner scopes, hash groups;
// - `readthrough`: get_or_compute, the loader's context, eager refresh and
//   load leases;
// - `failsafe`: the view that degrades to misses, and its journal;
// - `l1`: the optional in-process tier and its announcement listener;
// - `observe`: what tracing may say about keys;
// - `legacy`: reading and migrating an application's older key formats;
// - `tasks`: the background sweeper and fail-safe journal replayer.
//
// Dependencies point down: layout <- scripts <- server <- engine <- l1,
// keyspace, readthrough, failsafe, legacy <- cache, builder, tasks. One
// deliberate exception: `keyspace`, `readthrough`, `failsafe` and `legacy`
// add methods to the handle (`impl Cache` blocks: each subsystem's
// operations live with it), so they name `Cache` and its
// state's accessors; the state the handle keeps for them (single-flight
// table, journal, lease config, sweep cursor) lives in modules that do not
// name `Cache` (`readthrough::flight`, `failsafe::journal`, `options`,
// `engine::core`). Their fail-safe variants wrap them, and they report a
// bypass with the fail-safe view's `BypassReason`, so these four also name
// each other; below them nothing points up.
mod builder;
mod cache;
mod engine;
mod error;
mod failsafe;
mod keyspace;
mod l1;
mod layout;
pub mod legacy;
mod observe;
mod options;
mod readthrough;
mod scripts;
mod server;
mod tasks;

pub use builder::CacheBuilder;
/// The shared byte buffer [`Cache::get_bytes_shared`] returns (re-exported
/// from the `bytes` crate, so callers need not depend on it).
pub use bytes::Bytes;
pub use cache::Cache;
pub use engine::clear::ClearProgress;
pub use engine::listing::TagKeys;
pub use engine::stats::{InflightInvalidation, Stats};
pub use engine::sweep::PruneReport;
pub use error::{Error, ErrorKind, InvalidInput, Result};
pub use failsafe::{
    BypassReason, FailSafeCache, FailSafeGroup, FailSafeScope, Lookup, Removal, Written,
};
pub use keyspace::group::{Fetched, Group, DEFAULT_GROUP_CAP};
pub use keyspace::paths::{PathKeys, PathQuery};
pub use keyspace::scope::{Scope, ScopeKeys};
pub use l1::{L1Options, L1Stats};
pub use layout::codec::Compression;
pub use layout::keys::{LAYOUT_VERSION, MAX_KEY_LEN, MAX_NAMESPACE_LEN, MAX_TAG_LEN};
pub use layout::path::{KeyPath, Part, PathPattern, Segment, MAX_PATH_DEPTH};
pub use layout::payload::{Encoding, Payload};
pub use layout::tag_kind::TagKind;
pub use observe::KeyLogging;
pub use options::{SetOptions, WritePath};
pub use readthrough::compute::{ComputeError, Computed, Source};
pub use readthrough::context::LoadContext;
pub use server::breaker::{BreakerConfig, CircuitState};
pub use server::policy::EvictionCheck;
pub use server::ServerInfo;

/// The guide (GUIDE.md at the repository root); its examples are compiled
/// as doc tests, so they stay true to the API.
#[doc = include_str!("../../../GUIDE.md")]
pub mod guide {}
