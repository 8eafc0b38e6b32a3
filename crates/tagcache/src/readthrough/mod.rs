//! Read-through: `get_or_compute` and its fenced, single-flight stores
//! (`compute`).

pub(crate) mod compute;
