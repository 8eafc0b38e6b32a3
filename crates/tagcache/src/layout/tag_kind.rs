//! What a tag is: the application's own, or one of the reserved tags
//! tagcache adds for its own indexes (they start with byte 0, which
//! application tags may not).
//!
//! | bytes                 | kind                                      |
//! |-----------------------|-------------------------------------------|
//! | `\0p<encoded path>`   | [`TagKind::Prefix`]: entries under a path  |
//! | `\0g<encoded id>`     | [`TagKind::Group`]: a hash group           |
//! | `\0a`                 | [`TagKind::All`]: every entry              |
//! | `\0<other>`           | [`TagKind::Reserved`]: a kind not known here |
//! | anything else         | [`TagKind::User`]                          |

use std::fmt;

use crate::layout::keys::{ALL_TAG, GROUP_KIND, PREFIX_KIND, RESERVED_TAG};

/// A tag, classified. Its [`Display`](fmt::Display) form is for people:
/// `prefix:org:7`, `group:rules:prj-3`, `all`, or the tag itself (bytes
/// that are not UTF-8 shown as U+FFFD).
///
/// ```
/// use tagcache::TagKind;
/// assert_eq!(TagKind::parse(b"product:42"), TagKind::User(b"product:42"));
/// assert_eq!(TagKind::parse(b"\0porg:7"), TagKind::Prefix(b"org:7"));
/// assert_eq!(TagKind::parse(b"\0porg:7").to_string(), "prefix:org:7");
/// assert_eq!(TagKind::parse(b"\0a").to_string(), "all");
/// assert!(TagKind::parse(b"\0a").is_reserved());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TagKind<'a> {
    /// A tag the application gave (any bytes not starting with byte 0).
    User(&'a [u8]),
    /// The index of every entry whose key path starts with this path (its
    /// encoded form, `org:7`, parts escaped as in [`crate::KeyPath`]).
    Prefix(&'a [u8]),
    /// The index entry of a hash group (its encoded `name:owner`).
    Group(&'a [u8]),
    /// The index of every entry of the namespace.
    All,
    /// A reserved tag of a kind this version does not know (all its bytes).
    Reserved(&'a [u8]),
}

impl<'a> TagKind<'a> {
    /// Classifies a tag's bytes (as listed by [`crate::Cache::tags`]).
    pub fn parse(tag: &'a [u8]) -> Self {
        match tag {
            [RESERVED_TAG, PREFIX_KIND, path @ ..] => Self::Prefix(path),
            [RESERVED_TAG, GROUP_KIND, id @ ..] => Self::Group(id),
            t if t == ALL_TAG => Self::All,
            [RESERVED_TAG, ..] => Self::Reserved(tag),
            _ => Self::User(tag),
        }
    }

    /// Whether tagcache added this tag (it starts with byte 0).
    pub fn is_reserved(&self) -> bool {
        !matches!(self, Self::User(_))
    }
}

impl fmt::Display for TagKind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(t) => f.write_str(&String::from_utf8_lossy(t)),
            Self::Prefix(p) => write!(f, "prefix:{}", String::from_utf8_lossy(p)),
            Self::Group(g) => write!(f, "group:{}", String::from_utf8_lossy(g)),
            Self::All => f.write_str("all"),
            Self::Reserved(t) => write!(f, "reserved:{}", t.escape_ascii()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_tags_are_recognised() {
        assert_eq!(TagKind::parse(b"\0ga:b"), TagKind::Group(b"a:b"));
        assert_eq!(TagKind::parse(b"\0ga:b").to_string(), "group:a:b");
        assert_eq!(TagKind::parse(b"\0az"), TagKind::Reserved(b"\0az"));
        assert_eq!(TagKind::parse(b"\0az").to_string(), "reserved:\\x00az");
        assert_eq!(TagKind::parse(b"\0").to_string(), "reserved:\\x00");
        assert_eq!(TagKind::parse(b"t\xff").to_string(), "t\u{fffd}");
        assert!(!TagKind::parse(b"p").is_reserved());
    }
}
