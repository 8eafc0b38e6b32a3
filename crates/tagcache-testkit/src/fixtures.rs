//! Files several test suites read, kept once.

/// The path of the legacy-key rules file (the README's example: identity,
/// encoded identity and retry keys of a data-subject request), for
/// `tagcache migrate --rules`.
pub const LEGACY_RULES_FILE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/legacy-rules.toml");

/// The contents of [`LEGACY_RULES_FILE`].
pub const LEGACY_RULES_TOML: &str = include_str!("../fixtures/legacy-rules.toml");

/// The path of a rules file whose two rules overlap (`identity` and
/// `catch-all` both match `id-7-identity-email`): refused when read.
pub const OVERLAPPING_RULES_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/overlapping-rules.toml"
);

/// The contents of [`OVERLAPPING_RULES_FILE`].
pub const OVERLAPPING_RULES_TOML: &str = include_str!("../fixtures/overlapping-rules.toml");
