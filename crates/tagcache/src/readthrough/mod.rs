//! Read-through: `get_or_compute` and its fenced, single-flight stores,
//! eager refresh (`refresh`), the loader's context (`context`), and the
//! load lease that makes the single flight span processes (`lease`).

pub(crate) mod compute;
pub(crate) mod context;
pub(crate) mod flight;
pub(crate) mod lease;
pub(crate) mod refresh;
