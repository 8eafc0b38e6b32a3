//! Files several test suites read, kept once.

/// The path of the legacy-key rules file (the README's example: identity,
/// encoded identity and retry keys of a data-subject request), for
/// `tagcache migrate --rules`.
pub const LEGACY_RULES_FILE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/legacy-rules.toml");

/// The contents of [`LEGACY_RULES_FILE`].
pub const LEGACY_RULES_TOML: &str = include_str!("../fixtures/legacy-rules.toml");
