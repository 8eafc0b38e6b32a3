//! What tagcache puts in Redis: key names and reserved-tag encodings
//! (`keys`), the entry format (`codec`, `payload`), hierarchical keys
//! (`path`), tag classification (`tag_kind`) and the namespace's meta key
//! (`meta`). The normative description is `docs/redis-layout.md`.

pub(crate) mod codec;
pub(crate) mod keys;
pub(crate) mod meta;
pub(crate) mod path;
pub(crate) mod payload;
pub(crate) mod tag_kind;
