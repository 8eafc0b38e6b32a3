//! Hierarchical keys: a key made of parts, `["org", 7, "prj", 3]`.
//!
//! A path is stored as an ordinary entry whose key is the parts joined by
//! `:`, each part escaped (`\` → `\\`, `:` → `\:`), so `org:7:prj:3` is
//! what other languages see and no part can forge a separator. Integers
//! are written in decimal: `["org", 7]` and `["org", "7"]` are one key, on
//! purpose (services in other languages write `org:7`).
//!
//! **A path is a key.** `set_path(["org", 7, "prj"])`, `set("org:7:prj")`
//! and `scope(["org", 7]).set("prj")` name one entry: the bucket, the value
//! and the index edges are a function of the key bytes alone, whichever
//! API writes or reads them. Every write of a key whose bytes decode as a
//! path of two or more non-empty parts indexes it under each *proper*
//! prefix (`org`, `org:7`): a reserved tag `\0p<encoded prefix>` that the
//! entry carries like any other tag. So listing or invalidating
//! "everything under `org:7`" is a tag operation, with the same exactness,
//! atomicity and bounds, and it finds every entry under that path however
//! it was written. A key of `d` parts costs `d - 1` index edges (the
//! entry at the prefix itself is found by a point read).
//!
//! An entry with no edge at all (a flat key without tags) carries the
//! reserved tag [`ALL_TAG`] instead, so every entry is in some index: a
//! namespace clear walks the registry of indexes.

use std::fmt;

use crate::error::{Error, InvalidInput};
use crate::layout::keys::{self, ALL_TAG};

/// The deepest key tagcache indexes as a path: a key that decodes as a
/// path of more parts is refused (each level costs an index edge).
pub const MAX_PATH_DEPTH: usize = 32;

/// The prefix tags a write of `key` carries besides the caller's: the
/// index of every proper prefix when the key bytes decode as a path of
/// two or more non-empty parts. A function of the key bytes alone, so
/// every API derives the same edges.
///
/// # Errors
/// A key of more than [`MAX_PATH_DEPTH`] parts.
pub(crate) fn implied_tags(key: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    if !key.contains(&b':') {
        return Ok(Vec::new());
    }
    let Some(path) = KeyPath::decode(key) else {
        return Ok(Vec::new());
    };
    if path.0.len() < 2 || path.0.iter().any(|p| p.0.is_empty()) {
        return Ok(Vec::new());
    }
    if path.0.len() > MAX_PATH_DEPTH {
        return Err(InvalidInput::PathTooDeep(path.0.len(), MAX_PATH_DEPTH).into());
    }
    Ok((1..path.0.len())
        .map(|n| prefix_tag(&path.0[..n]))
        .collect())
}

/// Gives an entry with no index edge at all the all-entries tag
/// ([`ALL_TAG`]).
pub(crate) fn ensure_an_edge(tags: &mut Vec<Vec<u8>>) {
    if tags.is_empty() {
        tags.push(ALL_TAG.to_vec());
    }
}

/// One part of a [`KeyPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Part(Vec<u8>);

impl Part {
    /// The part's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for Part {
    fn from(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

impl From<String> for Part {
    fn from(s: String) -> Self {
        Self(s.into_bytes())
    }
}

impl From<&String> for Part {
    fn from(s: &String) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

impl From<&[u8]> for Part {
    fn from(b: &[u8]) -> Self {
        Self(b.to_vec())
    }
}

impl From<Vec<u8>> for Part {
    fn from(b: Vec<u8>) -> Self {
        Self(b)
    }
}

macro_rules! int_parts {
    ($($t:ty),*) => {$(
        impl From<$t> for Part {
            fn from(n: $t) -> Self {
                Self(n.to_string().into_bytes())
            }
        }
    )*};
}
int_parts!(i8, i16, i32, i64, i128, u8, u16, u32, u64, u128, isize, usize);

/// A hierarchical key: a non-empty list of non-empty parts.
///
/// ```
/// use tagcache::KeyPath;
/// let p = KeyPath::from_parts(["org", "7"]).push("prj").push(3);
/// assert_eq!(p.to_string(), "org:7:prj:3");
/// assert_eq!(KeyPath::from_parts(["a:b"]).to_string(), "a\\:b");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct KeyPath(Vec<Part>);

impl KeyPath {
    /// A path from parts.
    pub fn from_parts<I, P>(parts: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<Part>,
    {
        Self(parts.into_iter().map(Into::into).collect())
    }

    /// This path with one more part.
    #[must_use]
    pub fn push(mut self, part: impl Into<Part>) -> Self {
        self.0.push(part.into());
        self
    }

    /// The parts.
    pub fn parts(&self) -> &[Part] {
        &self.0
    }

    /// How many parts.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the path has no parts.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.0.is_empty() || self.0.iter().any(|p| p.0.is_empty()) {
            return Err(InvalidInput::EmptyPart.into());
        }
        Ok(())
    }

    /// The key bytes: escaped parts joined by `:`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        encode_parts(&self.0)
    }

    /// Decodes key bytes made by [`KeyPath::encode`].
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let mut parts = Vec::new();
        let mut cur = Vec::new();
        let mut escaped = false;
        for &b in bytes {
            match (escaped, b) {
                (true, b'\\' | b':') => {
                    cur.push(b);
                    escaped = false;
                }
                (true, _) => return None,
                (false, b'\\') => escaped = true,
                (false, b':') => parts.push(Part(std::mem::take(&mut cur))),
                (false, _) => cur.push(b),
            }
        }
        if escaped {
            return None;
        }
        parts.push(Part(cur));
        Some(Self(parts))
    }

    /// The reserved tag of this path as a prefix.
    pub(crate) fn as_prefix_tag(&self) -> Vec<u8> {
        prefix_tag(&self.0)
    }

    /// Whether this path starts with `prefix`.
    pub fn starts_with(&self, prefix: &KeyPath) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.encode()))
    }
}

impl<P: Into<Part>, const N: usize> From<[P; N]> for KeyPath {
    fn from(parts: [P; N]) -> Self {
        Self::from_parts(parts)
    }
}

fn encode_parts(parts: &[Part]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.0.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b':');
        }
        for &b in &p.0 {
            if b == b'\\' || b == b':' {
                out.push(b'\\');
            }
            out.push(b);
        }
    }
    out
}

fn prefix_tag(parts: &[Part]) -> Vec<u8> {
    keys::prefix_tag(&encode_parts(parts))
}

/// One position of a [`PathPattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Segment {
    /// Exactly this part.
    Is(Part),
    /// Any one part.
    Any,
}

/// A path with wildcards, e.g. `org:7:*:pl:*`, matching paths of the
/// same length.
///
/// ```
/// use tagcache::{KeyPath, PathPattern};
/// let p = PathPattern::new().part("org").part(7).any().part("pl").any();
/// assert!(p.matches(&KeyPath::from(["org", "7", "prj-3", "pl", "9"])));
/// assert!(!p.matches(&KeyPath::from(["org", "70", "prj-3", "pl", "9"])));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct PathPattern(Vec<Segment>);

impl PathPattern {
    /// An empty pattern.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an exact part.
    pub fn part(mut self, p: impl Into<Part>) -> Self {
        self.0.push(Segment::Is(p.into()));
        self
    }

    /// Adds a wildcard for one part.
    pub fn any(mut self) -> Self {
        self.0.push(Segment::Any);
        self
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// Whether `path` matches (same length, equal where not `Any`).
    pub fn matches(&self, path: &KeyPath) -> bool {
        self.0.len() == path.0.len()
            && self.0.iter().zip(&path.0).all(|(s, p)| match s {
                Segment::Is(q) => q == p,
                Segment::Any => true,
            })
    }

    /// The longest exact prefix: the index a query reads.
    pub(crate) fn exact_prefix(&self) -> KeyPath {
        KeyPath(
            self.0
                .iter()
                .map_while(|s| match s {
                    Segment::Is(p) => Some(p.clone()),
                    Segment::Any => None,
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_injective_and_readable() {
        let cases: Vec<KeyPath> = vec![
            KeyPath::from(["org", "7"]),
            KeyPath::from(["org:7"]),
            KeyPath::from(["org\\", "7"]),
            KeyPath::from(["org\\:7"]),
            KeyPath::from_parts([b"a\\".as_slice(), b":b".as_slice()]),
        ];
        let encoded: Vec<Vec<u8>> = cases.iter().map(KeyPath::encode).collect();
        for (i, a) in encoded.iter().enumerate() {
            for b in &encoded[i + 1..] {
                assert_ne!(a, b);
            }
            assert_eq!(KeyPath::decode(a).as_ref(), Some(&cases[i]));
        }
        assert_eq!(KeyPath::from(["org", "7"]).to_string(), "org:7");
        assert_eq!(
            KeyPath::from_parts(["org"]).push(7),
            KeyPath::from(["org", "7"])
        );
    }

    #[test]
    fn implied_tags_cover_every_proper_prefix() {
        let p = KeyPath::from(["org", "7", "prj"]);
        let tags = implied_tags(&p.encode()).unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0], b"\x00porg");
        assert_eq!(tags[1], b"\x00porg:7");
        assert_eq!(KeyPath::from(["org", "7"]).as_prefix_tag(), tags[1]);
        // The same bytes written as a plain key derive the same edges.
        assert_eq!(implied_tags(b"org:7:prj").unwrap(), tags);
    }

    #[test]
    fn flat_keys_imply_no_prefix() {
        for k in [
            &b"plain"[..],
            b"a::b",
            b":a",
            b"a:",
            b"a\\:b",
            b"bad\\escape:x\\",
        ] {
            assert!(implied_tags(k).unwrap().is_empty(), "{k:?}");
        }
        let mut tags = Vec::new();
        ensure_an_edge(&mut tags);
        assert_eq!(tags, vec![ALL_TAG.to_vec()]);
        let mut tagged = vec![b"t".to_vec()];
        ensure_an_edge(&mut tagged);
        assert_eq!(tagged, vec![b"t".to_vec()]);
    }

    #[test]
    fn too_deep_keys_are_refused() {
        let deep = vec!["x"; MAX_PATH_DEPTH + 1].join(":");
        assert!(implied_tags(deep.as_bytes()).is_err());
        let ok = vec!["x"; MAX_PATH_DEPTH].join(":");
        assert_eq!(
            implied_tags(ok.as_bytes()).unwrap().len(),
            MAX_PATH_DEPTH - 1
        );
    }

    #[test]
    fn empty_parts_are_refused() {
        assert!(KeyPath::default().validate().is_err());
        assert!(KeyPath::from(["a", ""]).validate().is_err());
        assert!(KeyPath::from(["a"]).validate().is_ok());
    }

    #[test]
    fn exact_prefix_stops_at_the_first_wildcard() {
        let p = PathPattern::new().part("org").part(7).any().part("pl");
        assert_eq!(p.exact_prefix(), KeyPath::from(["org", "7"]));
        assert!(PathPattern::new().any().exact_prefix().is_empty());
    }
}
