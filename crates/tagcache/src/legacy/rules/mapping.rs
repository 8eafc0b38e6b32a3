//! Mapping keys with checked rules, both ways: a legacy key to its new
//! owner scope and part (`classify`, `map`), an owner's part back to the
//! legacy key it came from (`legacy_key_of`), and the `SCAN MATCH` globs
//! that find an owner's legacy keys (`owner_globs`).

use super::{Compiled, LegacyRules, LegacyTarget};
use crate::layout::keys::{is_tagcache_key, MAX_KEY_LEN, MAX_TAG_LEN, RESERVED_TAG};
use crate::layout::path::{KeyPath, Part};
use crate::legacy::pattern::{match_joint, Bindings, Parse, Template};

/// Most reverse matches looked at per lookup (more means ambiguous).
const REVERSE_LIMIT: usize = 2;

/// What [`LegacyRules::classify`] says about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Classified {
    /// No rule matches (or the key is one of tagcache's own).
    Unmatched,
    /// A rule matches in more than one way: left alone.
    Ambiguous,
    /// Exactly one way.
    Mapped(LegacyTarget),
}

impl LegacyRules {
    /// Where a legacy key goes, if exactly one rule matches it in exactly
    /// one way.
    pub fn map(&self, legacy_key: &[u8]) -> Option<LegacyTarget> {
        match self.classify(legacy_key) {
            Classified::Mapped(t) => Some(t),
            _ => None,
        }
    }

    /// The longest literal prefix every pattern starts with (a `SCAN
    /// MATCH` prefix for a whole-keyspace pass).
    pub(crate) fn common_prefix(&self) -> Vec<u8> {
        let mut it = self.rules.iter().map(|r| r.pattern.literal_prefix());
        let Some(first) = it.next() else {
            return Vec::new();
        };
        let mut len = first.len();
        for p in it {
            len = len.min(first.iter().zip(p).take_while(|(a, b)| a == b).count());
        }
        first[..len].to_vec()
    }

    /// Which rule maps a key, and where.
    pub(crate) fn classify(&self, key: &[u8]) -> Classified {
        if is_tagcache_key(key) {
            return Classified::Unmatched;
        }
        for r in &self.rules {
            match r.pattern.parse_unique(key, r.captures) {
                Parse::No => continue,
                Parse::Ambiguous => return Classified::Ambiguous,
                Parse::One(values) => return r.target(&values),
            }
        }
        Classified::Unmatched
    }

    /// The legacy key that maps to `part` of `owner`, verified by mapping
    /// it forward, with its target; `None` when no rule produces this key
    /// (or only ambiguously).
    pub(crate) fn legacy_key_of(
        &self,
        owner: &KeyPath,
        part: &Part,
    ) -> Option<(Vec<u8>, LegacyTarget)> {
        for r in &self.rules {
            let Some(mut pairs) = r.owner_pairs(owner) else {
                continue;
            };
            pairs.push((&r.part, part.as_bytes()));
            let Some(found) = match_joint(&pairs, r.captures, REVERSE_LIMIT) else {
                continue;
            };
            if found.len() != 1 {
                continue;
            }
            let Some(key) = r.pattern.render(&found[0]) else {
                continue;
            };
            // The key must map back to exactly this owner and part: the
            // forward map is the definition, the reverse only a lookup.
            if let Classified::Mapped(t) = self.classify(&key) {
                if &t.owner == owner && &t.part == part {
                    return Some((key, t));
                }
            }
        }
        None
    }

    /// `SCAN MATCH` globs that cover every legacy key of `owner` (one per
    /// rule whose scope can be this owner); exact matching comes after.
    pub(crate) fn owner_globs(&self, owner: &KeyPath) -> Vec<Vec<u8>> {
        let mut globs: Vec<Vec<u8>> = Vec::new();
        for r in &self.rules {
            let Some(pairs) = r.owner_pairs(owner) else {
                continue;
            };
            let Some(found) = match_joint(&pairs, r.captures, 8) else {
                // Out of budget: fall back to the rule's general glob.
                globs.push(r.pattern.glob(&vec![None; r.captures]));
                continue;
            };
            for values in found {
                let g = r.pattern.glob(&values);
                if !globs.contains(&g) {
                    globs.push(g);
                }
            }
        }
        globs
    }
}

impl Compiled {
    /// Pairs (owner template, owner part) when the part counts agree.
    fn owner_pairs<'a>(&'a self, owner: &'a KeyPath) -> Option<Vec<(&'a Template, &'a [u8])>> {
        (self.owner.len() == owner.len()).then(|| {
            self.owner
                .iter()
                .zip(owner.parts())
                .map(|(t, p)| (t, p.as_bytes()))
                .collect()
        })
    }

    /// The target of a unique parse, if it is a valid key whose owner and
    /// part lead back to these captures only.
    fn target(&self, values: &Bindings) -> Classified {
        let render = |t: &Template| t.render(values);
        let (Some(owner), Some(part)) = (
            self.owner.iter().map(render).collect::<Option<Vec<_>>>(),
            render(&self.part),
        ) else {
            return Classified::Unmatched;
        };
        let tags: Option<Vec<Vec<u8>>> = self.tags.iter().map(render).collect();
        let Some(tags) = tags else {
            return Classified::Unmatched;
        };
        // Templates such as "{a}-{b}" can render two capture sets alike;
        // then two legacy keys would share one new key: leave both alone.
        let mut pairs: Vec<(&Template, &[u8])> = self
            .owner
            .iter()
            .zip(&owner)
            .map(|(t, p)| (t, p.as_slice()))
            .collect();
        pairs.push((&self.part, &part));
        match match_joint(&pairs, self.captures, REVERSE_LIMIT) {
            Some(found) if found.len() == 1 => {}
            _ => return Classified::Ambiguous,
        }
        let owner = KeyPath::from_parts(owner);
        let part = Part::from(part);
        let target = LegacyTarget {
            rule: self.name(),
            owner,
            part,
            tags,
        };
        let key = target.key();
        if key.validate().is_err()
            || key.encode().len() > MAX_KEY_LEN
            || target
                .tags
                .iter()
                .any(|t| t.is_empty() || t.len() > MAX_TAG_LEN || t[0] == RESERVED_TAG)
        {
            return Classified::Unmatched;
        }
        Classified::Mapped(target)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::rules;
    use super::super::LegacyRule;
    use super::*;

    #[test]
    fn keys_map_forward_and_back() {
        let r = rules();
        let t = r.map(b"id-pr-1-identity-email").unwrap();
        assert_eq!(t.rule, "identity");
        assert_eq!(t.owner, KeyPath::from(["dsr", "pr-1"]));
        assert_eq!(t.part, Part::from("identity:email"));
        assert_eq!(t.key().to_string(), "dsr:pr-1:identity\\:email");
        let t = r.map(b"dsr__pr-10__retry__3").unwrap();
        assert_eq!(t.tags, vec![b"retries".to_vec(), b"dsr:pr-10".to_vec()]);
        let key_of = |o: &[&str], p: &str| {
            r.legacy_key_of(&KeyPath::from_parts(o.iter().copied()), &Part::from(p))
                .map(|(k, _)| k)
        };
        assert_eq!(
            key_of(&["dsr", "pr-1"], "identity:email"),
            Some(b"id-pr-1-identity-email".to_vec())
        );
        assert_eq!(
            key_of(&["dsr", "pr-1"], "retry:2"),
            Some(b"dsr__pr-1__retry__2".to_vec())
        );
        assert_eq!(key_of(&["dsr", "pr-1"], "other"), None);
        assert_eq!(key_of(&["dsr", "pr-1", "x"], "retry:2"), None);
        // Ambiguous keys are neither mapped nor looked up.
        assert_eq!(
            r.classify(b"id-a-identity-b-identity-c"),
            Classified::Ambiguous
        );
        assert_eq!(key_of(&["dsr", "a-identity-b"], "identity:c"), None);
        assert_eq!(key_of(&["dsr", "a"], "identity:b-identity-c"), None);
        // tagcache's own keys never match, even under a catch-all rule.
        let all = LegacyRules::new([LegacyRule::new("{k}").scope(["all"]).part("{k}")]).unwrap();
        assert!(all.map(b"{test.0}:e:x").is_none());
        assert!(all.map(b"{test}:meta").is_none());
        assert!(all.map(b"plain").is_some());
    }

    #[test]
    fn owner_globs_substitute_and_escape() {
        let r = rules();
        let globs = r.owner_globs(&KeyPath::from(["dsr", "p*1"]));
        assert_eq!(
            globs,
            vec![
                b"id-p\\*1-identity-?*".to_vec(),
                b"EN_id-p\\*1-identity-?*".to_vec(),
                b"dsr__p\\*1__retry__?*".to_vec(),
            ]
        );
        assert!(r.owner_globs(&KeyPath::from(["other", "x"])).is_empty());
    }

    #[test]
    fn common_prefix() {
        assert_eq!(rules().common_prefix(), b"".to_vec());
        let r = LegacyRules::new([
            LegacyRule::new("app:id-{a}").scope(["{a}"]).part("x"),
            LegacyRule::new("app:dsr-{a}").scope(["{a}"]).part("y"),
        ])
        .unwrap();
        assert_eq!(r.common_prefix(), b"app:".to_vec());
    }
}
