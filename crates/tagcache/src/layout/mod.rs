//! What tagcache puts in Redis: key names and reserved-tag encodings
//! (`keys`), the entry format (`codec`, `payload`), hierarchical keys
//! (`path`) and tag classification (`tag_kind`). Nothing here talks to
//! Redis (reading and creating the namespace's meta key is
//! `engine::meta`). The normative description is `docs/redis-layout.md`.

pub(crate) mod codec;
pub(crate) mod keys;
pub(crate) mod path;
pub(crate) mod payload;
pub(crate) mod tag_kind;
