//! The views of a cache as Python classes, each with its asyncio twin:
//! `Scope` / `AsyncScope`, `Group` / `AsyncGroup` and the fail-safe ones.
//! One `twins!` line declares both classes and generates both method sets.

use crate::methods::prelude::*;
use crate::pager::{AsyncKeyIterator, KeyIterator};

twins!(
    /// One owner's keys (`cache.scope("dsr", "pr-1")`): entries under the
    /// owner's path, listed and cleared together.
    Scope / AsyncScope { s: tagcache::Scope } => scope_methods(KeyIterator) / (AsyncKeyIterator)
);

twins!(
    /// One owner's hash of small cached fields (`cache.group(name, owner)`).
    Group / AsyncGroup { g: tagcache::Group } => group_methods() / ()
);

twins!(
    /// The fail-safe view of a cache (`cache.fail_safe()`).
    FailSafeCache / AsyncFailSafeCache { f: tagcache::FailSafeCache }
        => failsafe_methods(FailSafeScope, FailSafeGroup) / (AsyncFailSafeScope, AsyncFailSafeGroup)
);

twins!(
    /// The fail-safe view of one owner's scope.
    FailSafeScope / AsyncFailSafeScope { s: tagcache::FailSafeScope } => failsafe_scope_methods() / ()
);

twins!(
    /// The fail-safe view of a hash group.
    FailSafeGroup / AsyncFailSafeGroup { g: tagcache::FailSafeGroup } => failsafe_group_methods() / ()
);
