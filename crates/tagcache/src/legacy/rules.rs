//! Mapping rules from legacy key formats to scoped entries: the rule
//! types, and loading them (compiling each, refusing rules that could
//! claim one key twice). Mapping keys with them, both ways, is
//! `rules/mapping.rs`.

use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::pattern::{intersect, Template};
use crate::error::{InvalidInput, Result};
use crate::layout::keys::RESERVED_TAG;
use crate::layout::path::{KeyPath, Part};

mod mapping;

pub(crate) use mapping::Classified;

/// One mapping from a legacy key format to an owner scope and part.
///
/// ```
/// use tagcache::legacy::LegacyRule;
/// let rule = LegacyRule::new("id-{id}-identity-{attr}")
///     .name("identity")
///     .scope(["dsr", "{id}"])
///     .part("identity:{attr}")
///     .tag("identity");
/// ```
///
/// `{name}` captures one or more bytes of the legacy key; the scope parts,
/// the part and the tags may use the captures (`{{` and `}}` are literal
/// braces). Every capture of the pattern must appear in the scope or the
/// part, so that each legacy key has its own new key and a new key tells
/// which legacy key to look for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[must_use]
pub struct LegacyRule {
    #[serde(default)]
    name: Option<String>,
    pattern: String,
    #[serde(default)]
    scope: Vec<String>,
    #[serde(default)]
    part: String,
    #[serde(default)]
    tags: Vec<String>,
}

impl LegacyRule {
    /// A rule for legacy keys of the form `pattern`.
    pub fn new(pattern: impl Into<String>) -> Self {
        Self {
            pattern: pattern.into(),
            ..Self::default()
        }
    }

    /// The rule's name in errors and reports. Default: the pattern.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The owner path, e.g. `["dsr", "{id}"]` (required).
    pub fn scope<I, S>(mut self, parts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scope = parts.into_iter().map(Into::into).collect();
        self
    }

    /// The part within the owner's scope, e.g. `identity:{attr}` (required).
    pub fn part(mut self, part: impl Into<String>) -> Self {
        self.part = part.into();
        self
    }

    /// A tag the migrated entry carries besides the owner's index.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{n:?} ({})", self.pattern),
            None => format!("{:?}", self.pattern),
        }
    }
}

/// A rule, compiled.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub(crate) source: LegacyRule,
    pub(crate) pattern: Template,
    pub(crate) captures: usize,
    pub(crate) owner: Vec<Template>,
    pub(crate) part: Template,
    pub(crate) tags: Vec<Template>,
}

/// Where a legacy key goes: its owner scope, part and extra tags.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LegacyTarget {
    /// The name of the rule that matched.
    pub rule: String,
    /// The owner scope (`cache.scope(owner)`).
    pub owner: KeyPath,
    /// The part within the scope.
    pub part: Part,
    /// Extra tags of the migrated entry (besides the owner's index).
    pub tags: Vec<Vec<u8>>,
}

impl LegacyTarget {
    /// The new entry's key: the owner path plus the part.
    pub fn key(&self) -> KeyPath {
        self.owner.clone().push(self.part.clone())
    }
}

/// Checked legacy mapping rules: no two rules match the same key or map to
/// the same new key, each rule matches a key in at most one way.
///
/// In code:
/// ```
/// use tagcache::legacy::{LegacyRule, LegacyRules};
/// let rules = LegacyRules::new([
///     LegacyRule::new("id-{id}-identity-{attr}").scope(["dsr", "{id}"]).part("identity:{attr}"),
///     LegacyRule::new("EN_id-{id}-identity-{attr}").scope(["dsr", "{id}"]).part("encoded:identity:{attr}"),
///     LegacyRule::new("dsr__{id}__retry__{n}").scope(["dsr", "{id}"]).part("retry:{n}").tag("retries"),
/// ])?;
/// // Overlapping rules are refused, naming both and a key they share.
/// let err = LegacyRules::new([
///     LegacyRule::new("id-{id}-identity-{attr}").scope(["dsr", "{id}"]).part("identity:{attr}"),
///     LegacyRule::new("id-{id}-{rest}").scope(["dsr", "{id}"]).part("other:{rest}"),
/// ]).unwrap_err();
/// assert!(err.is_invalid_input());
/// # Ok::<(), tagcache::Error>(())
/// ```
///
/// Or from TOML ([`LegacyRules::from_toml`]):
/// ```toml
/// default_ttl_secs = 86400   # TTL of migrated keys that had none
///
/// [[rule]]
/// name = "identity"
/// pattern = "id-{id}-identity-{attr}"
/// scope = ["dsr", "{id}"]
/// part = "identity:{attr}"
/// tags = ["identity"]
/// ```
///
/// A key matching a pattern in more than one way (`id-a-identity-b-identity-c`
/// for the first rule) is ambiguous: it is never read, moved or deleted by
/// tagcache, and bulk migration reports it. Keys that look like tagcache's
/// own (`{<ns>}:…`, `{<ns>.<b>}:…`) never match.
#[derive(Debug, Clone)]
pub struct LegacyRules {
    rules: Vec<Compiled>,
    default_ttl: Option<Duration>,
}

/// The TOML file's shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    default_ttl_secs: Option<u64>,
    #[serde(default)]
    rule: Vec<LegacyRule>,
}

fn invalid(detail: String) -> crate::Error {
    InvalidInput::LegacyRule(detail).into()
}

impl LegacyRules {
    /// Compiles and checks rules.
    ///
    /// # Errors
    /// [`InvalidInput::LegacyRule`] for a bad pattern or template (syntax,
    /// adjacent captures, a capture the target uses but the pattern lacks,
    /// a pattern capture the key does not use, a reserved tag), and
    /// [`InvalidInput::OverlappingLegacyRules`] when two patterns can match
    /// one key or two rules can map to one new key.
    pub fn new(rules: impl IntoIterator<Item = LegacyRule>) -> Result<Self> {
        let mut compiled: Vec<Compiled> = Vec::new();
        for rule in rules {
            let c = compile(rule)?;
            for other in &compiled {
                check_disjoint(other, &c)?;
            }
            compiled.push(c);
        }
        Ok(Self {
            rules: compiled,
            default_ttl: None,
        })
    }

    /// Reads rules from TOML: an optional `default_ttl_secs`, then
    /// `[[rule]]` tables with `pattern`, `scope`, `part`, optional `name`
    /// and `tags` (see the type's docs).
    ///
    /// # Errors
    /// As [`LegacyRules::new`]; TOML syntax errors and unknown fields as
    /// [`InvalidInput::LegacyRule`].
    pub fn from_toml(text: &str) -> Result<Self> {
        let file: File = toml::from_str(text).map_err(|e| invalid(format!("rules file: {e}")))?;
        let rules = Self::new(file.rule)?;
        Ok(match file.default_ttl_secs {
            Some(s) => rules.default_ttl(Duration::from_secs(s)),
            None => rules,
        })
    }

    /// TTL given to migrated keys that had none in Redis (capped by the
    /// cache's maximum TTL). Default: the cache's default TTL.
    #[must_use]
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// The TTL set by [`LegacyRules::default_ttl`], if any.
    pub fn ttl_for_keys_without_one(&self) -> Option<Duration> {
        self.default_ttl
    }

    /// How many rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// A fingerprint of the rules (hex), so a saved migration cursor is
    /// only resumed with the rules it was made with.
    pub(crate) fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for r in &self.rules {
            let s = &r.source;
            for field in [s.name.as_deref().unwrap_or(""), &s.pattern, &s.part]
                .into_iter()
                .chain(s.scope.iter().map(String::as_str))
                .chain(["\u{1}"])
                .chain(s.tags.iter().map(String::as_str))
            {
                h.update((field.len() as u64).to_be_bytes());
                h.update(field.as_bytes());
            }
        }
        h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl Compiled {
    fn label(&self) -> String {
        self.source.label()
    }

    fn name(&self) -> String {
        self.source
            .name
            .clone()
            .unwrap_or_else(|| self.source.pattern.clone())
    }
}

fn compile(rule: LegacyRule) -> Result<Compiled> {
    let label = rule.label();
    let bad = |what: &str, e: String| invalid(format!("rule {label}: {what} {e}"));
    let mut names = Vec::new();
    let pattern = Template::compile(&rule.pattern, &mut names, true)
        .map_err(|e| bad("the legacy pattern", e))?;
    if rule.scope.is_empty() {
        return Err(bad("the scope", "is missing".to_owned()));
    }
    let owner = rule
        .scope
        .iter()
        .map(|s| Template::compile(s, &mut names, false))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad("a scope part", e))?;
    let part = Template::compile(&rule.part, &mut names, false).map_err(|e| bad("the part", e))?;
    let tags = rule
        .tags
        .iter()
        .map(|t| Template::compile(t, &mut names, false))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad("a tag", e))?;
    for (t, text) in tags.iter().zip(&rule.tags) {
        if t.literal_prefix().first() == Some(&RESERVED_TAG) || text.starts_with('\0') {
            return Err(bad("a tag", "starts with byte 0 (reserved)".to_owned()));
        }
    }
    let used: Vec<usize> = owner
        .iter()
        .chain(std::iter::once(&part))
        .flat_map(Template::captures)
        .collect();
    if let Some(unused) = (0..names.len()).find(|c| !used.contains(c)) {
        return Err(bad(
            "the legacy pattern",
            format!(
                "captures {{{}}}, which neither the scope nor the part uses: \
                 several legacy keys would map to one new key",
                names[unused].0
            ),
        ));
    }
    Ok(Compiled {
        captures: names.len(),
        source: rule,
        pattern,
        owner,
        part,
        tags,
    })
}

/// Refuses two rules that could match one key or map to one new key.
fn check_disjoint(a: &Compiled, b: &Compiled) -> Result<()> {
    if let Some(key) = intersect(&a.pattern, &b.pattern) {
        return Err(InvalidInput::OverlappingLegacyRules {
            first: a.label(),
            second: b.label(),
            example: format!("legacy key {:?}", String::from_utf8_lossy(&key)),
        }
        .into());
    }
    // The targets are compared part by part, each capture on its own: a
    // conservative test (it may refuse rules that a shared capture would
    // keep apart) that is exact when no capture repeats.
    if a.owner.len() != b.owner.len() {
        return Ok(());
    }
    let mut example = Vec::new();
    for (x, y) in a
        .owner
        .iter()
        .chain([&a.part])
        .zip(b.owner.iter().chain([&b.part]))
    {
        match intersect(x, y) {
            Some(w) => example.push(w),
            None => return Ok(()),
        }
    }
    let key = KeyPath::from_parts(example);
    Err(InvalidInput::OverlappingLegacyRules {
        first: a.label(),
        second: b.label(),
        example: format!("new key {:?}", key.to_string()),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn identity() -> LegacyRule {
        LegacyRule::new("id-{id}-identity-{attr}")
            .name("identity")
            .scope(["dsr", "{id}"])
            .part("identity:{attr}")
    }

    pub(super) fn rules() -> LegacyRules {
        LegacyRules::new([
            identity(),
            LegacyRule::new("EN_id-{id}-identity-{attr}")
                .scope(["dsr", "{id}"])
                .part("encoded:identity:{attr}"),
            LegacyRule::new("dsr__{id}__retry__{n}")
                .scope(["dsr", "{id}"])
                .part("retry:{n}")
                .tag("retries")
                .tag("dsr:{id}"),
        ])
        .unwrap()
    }

    fn refused(rules: Vec<LegacyRule>) -> String {
        let e = LegacyRules::new(rules).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        e.to_string()
    }

    #[test]
    fn overlapping_rules_are_refused_naming_both() {
        let msg = refused(vec![
            identity(),
            LegacyRule::new("id-{id}-{rest}")
                .name("catch-all")
                .scope(["dsr", "{id}"])
                .part("other:{rest}"),
        ]);
        assert!(
            msg.contains("\"identity\"") && msg.contains("\"catch-all\""),
            "{msg}"
        );
        assert!(msg.contains("-identity-"), "{msg}");
        // Same new key from two formats.
        let msg = refused(vec![
            identity(),
            LegacyRule::new("EN_id-{id}-identity-{attr}")
                .scope(["dsr", "{id}"])
                .part("identity:{attr}"),
        ]);
        assert!(msg.contains("new key"), "{msg}");
        // Disjoint ones pass.
        rules();
    }

    #[test]
    fn bad_rules_are_refused() {
        let base = || LegacyRule::new("k-{a}-{b}").scope(["o", "{a}"]);
        assert!(refused(vec![base().part("{b}").tag("{c}")]).contains("{c}"));
        assert!(refused(vec![base().part("x")]).contains("{b}"));
        assert!(
            refused(vec![LegacyRule::new("k{a}{b}").scope(["{a}"]).part("{b}")])
                .contains("side by side")
        );
        assert!(refused(vec![base().part("{b}").tag("\0x")]).contains("reserved"));
        assert!(refused(vec![LegacyRule::new("k-{a}").part("{a}")]).contains("scope"));
        assert!(refused(vec![LegacyRule::new("k-{a}").scope(["o"])]).contains("part"));
    }

    #[test]
    fn toml_rules() {
        let r = LegacyRules::from_toml(
            r#"
            default_ttl_secs = 60
            [[rule]]
            name = "identity"
            pattern = "id-{id}-identity-{attr}"
            scope = ["dsr", "{id}"]
            part = "identity:{attr}"
            tags = ["identity"]

            [[rule]]
            pattern = "dsr__{id}__retry__{n}"
            scope = ["dsr", "{id}"]
            part = "retry:{n}"
            "#,
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r.ttl_for_keys_without_one(), Some(Duration::from_secs(60)));
        assert_eq!(
            r.map(b"id-x-identity-y").unwrap().tags,
            vec![b"identity".to_vec()]
        );
        assert_eq!(r.fingerprint(), r.clone().fingerprint());
        assert_ne!(r.fingerprint(), rules().fingerprint());
        let e = LegacyRules::from_toml("[[rule]]\npattern = \"x\"\nscop = []\n").unwrap_err();
        assert!(
            e.is_invalid_input() && e.to_string().contains("scop"),
            "{e}"
        );
        let e = LegacyRules::from_toml(
            "[[rule]]\npattern = \"a-{x}\"\nscope=[\"{x}\"]\npart=\"p\"\n\
             [[rule]]\npattern = \"{y}-b\"\nscope=[\"{y}\"]\npart=\"q\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("legacy key \"a-"), "{e}");
    }
}
