//! What tracing may say about keys. Values are never logged anywhere;
//! keys only as this policy allows (cached keys can carry user ids). The
//! metric names are in [`metrics`].

pub(crate) mod metrics;
pub(crate) use metrics::{
    count_read_through, count_refresh, count_refused, count_stale, count_wait, record_loader,
};

/// How keys appear in tracing spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyLogging {
    /// Keys never appear (the default).
    #[default]
    Off,
    /// The first 8 bytes of the key's SHA-1, in hex: correlates log lines
    /// about one key without revealing it.
    Hashed,
    /// The first N bytes, lossily decoded as UTF-8.
    Truncated(usize),
}

impl KeyLogging {
    /// The key as this policy shows it; `None` when keys are not shown.
    pub(crate) fn show(self, key: &[u8]) -> Option<String> {
        match self {
            Self::Off => None,
            Self::Hashed => {
                let digest = sha1_smol::Sha1::from(key).digest().bytes();
                Some(digest[..8].iter().map(|b| format!("{b:02x}")).collect())
            }
            Self::Truncated(n) => {
                let cut = &key[..key.len().min(n)];
                let mut s = String::from_utf8_lossy(cut).into_owned();
                if key.len() > n {
                    s.push('…');
                }
                Some(s)
            }
        }
    }
}

/// A span for one operation: namespace, operation and (by policy) key; the
/// outcome is recorded when known. It carries OpenTelemetry's database
/// attributes too: `db.system.name` = `redis`, `db.operation.name` = the
/// operation, `db.namespace` = the tagcache namespace.
pub(crate) fn op_span(
    namespace: &str,
    op: &'static str,
    key: Option<&[u8]>,
    policy: KeyLogging,
) -> tracing::Span {
    let span = tracing::debug_span!(
        "tagcache",
        namespace,
        op,
        "db.system.name" = "redis",
        "db.operation.name" = op,
        "db.namespace" = namespace,
        key = tracing::field::Empty,
        outcome = tracing::field::Empty
    );
    // Hashing or cutting the key is work for a subscriber only.
    if !span.is_disabled() {
        if let Some(shown) = key.and_then(|k| policy.show(k)) {
            span.record("key", shown.as_str());
        }
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hidden_hashed_or_truncated() {
        assert_eq!(KeyLogging::Off.show(b"user:42"), None);
        let h = KeyLogging::Hashed.show(b"user:42").unwrap();
        assert_eq!(h.len(), 16);
        assert!(!h.contains("42"));
        assert_eq!(KeyLogging::Truncated(4).show(b"user:42").unwrap(), "user…");
        assert_eq!(
            KeyLogging::Truncated(40).show(b"user:42").unwrap(),
            "user:42"
        );
    }
}
