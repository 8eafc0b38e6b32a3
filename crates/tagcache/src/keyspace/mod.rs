//! Views over the key space: hierarchical keys and queries (`paths`),
//! owner scopes (`scope`) and hash groups (`group`).

pub(crate) mod group;
pub(crate) mod paths;
pub(crate) mod scope;
