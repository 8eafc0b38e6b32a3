//! The operations on the index: the shared state (`core`), writing
//! (`write`, its `MULTI`/`EXEC` path `transaction`, the queue of single
//! writes `queue`), removing entries
//! with their edges (`remove`), invalidating tags (`invalidate`), clearing
//! a namespace (`clear`), listing (`listing`), statistics (`stats`), the
//! sweep (`sweep`, `gone`), pacing chunked work by time (`pace`) and
//! opening the namespace at build (`meta`). The background tasks that
//! drive the sweep and replay the fail-safe journal are `crate::tasks`.

pub(crate) mod clear;
pub(crate) mod core;
pub(crate) mod gone;
pub(crate) mod invalidate;
pub(crate) mod listing;
pub(crate) mod meta;
pub(crate) mod pace;
pub(crate) mod queue;
pub(crate) mod recent;
pub(crate) mod remove;
pub(crate) mod stats;
pub(crate) mod sweep;
pub(crate) mod transaction;
pub(crate) mod write;
