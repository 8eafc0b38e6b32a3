//! Legacy key patterns and target templates: literal bytes and `{name}`
//! captures, each capture standing for one or more bytes.
//!
//! Syntax: `{name}` is a capture of one or more bytes (`name` =
//! `[A-Za-z_][A-Za-z0-9_]*`); `{name:class}` restricts its bytes to a
//! class: `digits`, `alnum`, `word` (alnum and `_`), `hex`, or a set such
//! as `[a-z0-9_]` or `[^-]` (ranges, `^` negation, `\` escapes). Classes
//! belong in the legacy pattern; targets write `{name}`. `{{` and `}}` are
//! literal braces; any other brace is an error. Two captures side by side
//! (`{a}{b}`) are refused: nothing could tell where one ends.
//!
//! Three algorithms work on templates:
//! - [`Template::parse_unique`] (here): does a key match, in exactly one
//!   way? A DP over (token, position) counting matches up to two, in
//!   O(tokens × key length);
//! - [`intersect`] (`pattern/intersect.rs`): can two templates match a
//!   common string? A search
//!   over pairs of positions of the two patterns (the product automaton,
//!   as for glob-vs-glob intersection), exact, with a witness string;
//! - [`match_joint`] (`pattern/joint.rs`): which capture values make
//!   several templates render
//!   given strings (the reverse mapping), enumerated up to a limit.

mod intersect;
mod joint;

pub(crate) use intersect::intersect;
pub(crate) use joint::match_joint;

/// A set of bytes a capture may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Class([u64; 4]);

impl Class {
    /// Every byte.
    pub(crate) const ANY: Self = Self([u64::MAX; 4]);

    fn none() -> Self {
        Self([0; 4])
    }

    pub(crate) fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    fn range(&mut self, lo: u8, hi: u8) {
        for b in lo..=hi {
            self.insert(b);
        }
    }

    fn negate(self) -> Self {
        Self(self.0.map(|w| !w))
    }

    fn and(self, other: Self) -> Self {
        Self([0, 1, 2, 3].map(|i| self.0[i] & other.0[i]))
    }

    /// A byte of the class, readable when possible (for witnesses).
    fn pick(&self) -> Option<u8> {
        b"x0aA_-.:"
            .iter()
            .copied()
            .chain(0..=255)
            .find(|&b| self.contains(b))
    }

    /// Parses the text after `name:`: a class name or a bracket set.
    fn parse(text: &str) -> Result<Self, String> {
        let mut c = Self::none();
        match text {
            "digits" => c.range(b'0', b'9'),
            "hex" => {
                c.range(b'0', b'9');
                c.range(b'a', b'f');
                c.range(b'A', b'F');
            }
            "alnum" | "word" => {
                c.range(b'0', b'9');
                c.range(b'a', b'z');
                c.range(b'A', b'Z');
                if text == "word" {
                    c.insert(b'_');
                }
            }
            _ => {
                let inner = text
                    .strip_prefix('[')
                    .and_then(|t| t.strip_suffix(']'))
                    .ok_or_else(|| {
                        format!(
                            "has an unknown class {text:?} (use digits, alnum, word, hex, \
                             or a set like [a-z0-9_] or [^-])"
                        )
                    })?;
                let (negated, inner) = match inner.strip_prefix('^') {
                    Some(rest) => (true, rest),
                    None => (false, inner),
                };
                let mut bytes = Vec::new();
                let mut it = inner.bytes();
                while let Some(b) = it.next() {
                    // `\x` is the byte x; a bare `-` between two bytes is a range.
                    let b = if b == b'\\' {
                        it.next().ok_or("has a set ending in '\\'")?
                    } else if b == b'-' && !bytes.is_empty() {
                        bytes.push(None);
                        continue;
                    } else {
                        b
                    };
                    bytes.push(Some(b));
                }
                let mut i = 0;
                while i < bytes.len() {
                    match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
                        (Some(lo), Some(None), Some(Some(hi))) => {
                            if lo > *hi {
                                return Err(format!("has an empty range in {text:?}"));
                            }
                            c.range(lo, *hi);
                            i += 3;
                        }
                        (Some(b), _, _) => {
                            c.insert(b);
                            i += 1;
                        }
                        (None, _, _) => {
                            c.insert(b'-');
                            i += 1;
                        }
                    }
                }
                if negated {
                    c = c.negate();
                }
            }
        }
        if c == Self::none() {
            return Err(format!("has an empty class {text:?}"));
        }
        Ok(c)
    }
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Token {
    /// These bytes exactly.
    Lit(Vec<u8>),
    /// Capture number `n` of the rule: one or more bytes of its class.
    Cap(usize, Class),
}

/// A parsed pattern or template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Template {
    pub(crate) tokens: Vec<Token>,
}

/// How a key matched a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parse {
    /// Not at all.
    No,
    /// In more than one way (left alone: nothing says which is meant).
    Ambiguous,
    /// In exactly one way: the value of each capture (indexed by capture
    /// number; `None` for captures the template does not use).
    One(Vec<Option<Vec<u8>>>),
}

/// Values of captures, by capture number.
pub(crate) type Bindings = Vec<Option<Vec<u8>>>;

impl Template {
    /// Parses `text`. With `define`, new capture names (and classes) are
    /// added to `names` (each at most once: a pattern); otherwise every
    /// name must already be in `names` (a target template) and may repeat.
    pub(crate) fn compile(
        text: &str,
        names: &mut Vec<(String, Class)>,
        define: bool,
    ) -> Result<Self, String> {
        if text.is_empty() {
            return Err("is empty".to_owned());
        }
        let bytes = text.as_bytes();
        let mut tokens: Vec<Token> = Vec::new();
        let mut lit = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'{' if bytes.get(i + 1) == Some(&b'{') => {
                    lit.push(b'{');
                    i += 2;
                }
                b'}' if bytes.get(i + 1) == Some(&b'}') => {
                    lit.push(b'}');
                    i += 2;
                }
                b'{' => {
                    let (name, class, end) = capture_at(text, i)?;
                    if !valid_name(name) {
                        return Err(format!(
                            "has an invalid capture name {name:?} (use [A-Za-z_][A-Za-z0-9_]*; \
                             write a literal brace as {{{{ or }}}})"
                        ));
                    }
                    if !lit.is_empty() {
                        tokens.push(Token::Lit(std::mem::take(&mut lit)));
                    }
                    if matches!(tokens.last(), Some(Token::Cap(..))) {
                        return Err(format!(
                            "has two captures side by side before {{{name}}}: \
                             nothing tells where one ends"
                        ));
                    }
                    if class.is_some() && !define {
                        return Err(format!(
                            "gives {{{name}}} a class: classes belong in the legacy pattern"
                        ));
                    }
                    let n = match names.iter().position(|(x, _)| x == name) {
                        Some(_) if define => {
                            return Err(format!("uses the capture {{{name}}} twice"))
                        }
                        Some(n) => n,
                        None if define => {
                            let class = match class {
                                Some(c) => Class::parse(c)?,
                                None => Class::ANY,
                            };
                            names.push((name.to_owned(), class));
                            names.len() - 1
                        }
                        None => {
                            return Err(format!(
                            "uses the capture {{{name}}}, which the legacy pattern does not have"
                        ))
                        }
                    };
                    let class = names.get(n).map_or(Class::ANY, |(_, c)| *c);
                    tokens.push(Token::Cap(n, class));
                    i = end + 1;
                }
                b'}' => return Err(format!("has an unmatched '}}' at byte {i}")),
                b => {
                    lit.push(b);
                    i += 1;
                }
            }
        }
        if !lit.is_empty() {
            tokens.push(Token::Lit(lit));
        }
        Ok(Self { tokens })
    }

    /// The capture numbers this template uses.
    pub(crate) fn captures(&self) -> impl Iterator<Item = usize> + '_ {
        self.tokens.iter().filter_map(|t| match t {
            Token::Cap(n, _) => Some(*n),
            Token::Lit(_) => None,
        })
    }

    /// The leading literal bytes.
    pub(crate) fn literal_prefix(&self) -> &[u8] {
        match self.tokens.first() {
            Some(Token::Lit(l)) => l,
            _ => &[],
        }
    }

    /// The template with captures replaced by their values; `None` when a
    /// capture it uses has no value.
    pub(crate) fn render(&self, values: &Bindings) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for t in &self.tokens {
            match t {
                Token::Lit(l) => out.extend_from_slice(l),
                Token::Cap(n, _) => out.extend_from_slice(values.get(*n)?.as_ref()?),
            }
        }
        Some(out)
    }

    /// A `SCAN MATCH` glob: literals and known captures glob-escaped,
    /// unknown captures as `?*` (one or more bytes, like a capture).
    pub(crate) fn glob(&self, values: &Bindings) -> Vec<u8> {
        let mut out = Vec::new();
        for t in &self.tokens {
            match t {
                Token::Lit(l) => glob_escape_into(l, &mut out),
                Token::Cap(n, _) => match values.get(*n).and_then(Option::as_ref) {
                    Some(v) => glob_escape_into(v, &mut out),
                    None => out.extend_from_slice(b"?*"),
                },
            }
        }
        out
    }

    /// Matches `key` and says whether it matched in exactly one way.
    /// `captures` is the rule's capture count.
    pub(crate) fn parse_unique(&self, key: &[u8], captures: usize) -> Parse {
        let toks = &self.tokens;
        let n = key.len();
        // ways[t][p]: matches of tokens[t..] against key[p..], capped at 2.
        // ones[t][p] / twos[t][p]: how many e >= p have ways[t][e] >= 1 / == 2
        // (exact counts, so window sums can be taken by subtraction).
        let mut ways = vec![vec![0u8; n + 1]; toks.len() + 1];
        let mut ones = vec![vec![0usize; n + 2]; toks.len() + 1];
        let mut twos = vec![vec![0usize; n + 2]; toks.len() + 1];
        let mut run = vec![0usize; n + 1];
        ways[toks.len()][n] = 1;
        for t in (0..=toks.len()).rev() {
            if let Some(Token::Cap(_, class)) = toks.get(t) {
                for p in (0..n).rev() {
                    run[p] = if class.contains(key[p]) {
                        run[p + 1] + 1
                    } else {
                        0
                    };
                }
            }
            for p in (0..=n).rev() {
                if t < toks.len() {
                    ways[t][p] = match &toks[t] {
                        Token::Lit(l) => {
                            if key[p..].starts_with(l) {
                                ways[t + 1][p + l.len()]
                            } else {
                                0
                            }
                        }
                        // Ends e in p+1 ..= p+run[p].
                        Token::Cap(..) => {
                            let (a, b) = (p + 1, p + run[p] + 1);
                            if a >= b {
                                0
                            } else {
                                let c1 = ones[t + 1][a] - ones[t + 1][b];
                                let c2 = twos[t + 1][a] - twos[t + 1][b];
                                match (c1, c2) {
                                    (0, _) => 0,
                                    (1, 0) => 1,
                                    _ => 2,
                                }
                            }
                        }
                    };
                }
                ones[t][p] = ones[t][p + 1] + usize::from(ways[t][p] >= 1);
                twos[t][p] = twos[t][p + 1] + usize::from(ways[t][p] >= 2);
            }
        }
        match ways[0][0] {
            0 => Parse::No,
            1 => {
                let mut values = vec![None; captures];
                let mut p = 0;
                for (t, tok) in toks.iter().enumerate() {
                    match tok {
                        Token::Lit(l) => p += l.len(),
                        Token::Cap(c, class) => {
                            // Exactly one way overall: exactly one end works.
                            let Some(e) = (p + 1..=n)
                                .take_while(|&e| class.contains(key[e - 1]))
                                .find(|&e| ways[t + 1][e] > 0)
                            else {
                                return Parse::No;
                            };
                            if let Some(slot) = values.get_mut(*c) {
                                *slot = Some(key[p..e].to_vec());
                            }
                            p = e;
                        }
                    }
                }
                Parse::One(values)
            }
            _ => Parse::Ambiguous,
        }
    }
}

/// The capture starting at the `{` at byte `i`: name, class text, and the
/// index of its closing `}`.
fn capture_at(text: &str, i: usize) -> Result<(&str, Option<&str>, usize), String> {
    let unclosed = || format!("has an unclosed '{{' at byte {i}");
    let body = &text[i + 1..];
    let name_end = body.find([':', '}']).ok_or_else(unclosed)?;
    let name = &body[..name_end];
    if body.as_bytes()[name_end] == b'}' {
        return Ok((name, None, i + 1 + name_end));
    }
    // A class: a word, or a bracket set that may itself hold '}' or ']'.
    let rest = &body[name_end + 1..];
    let class_len = if rest.starts_with('[') {
        let bytes = rest.as_bytes();
        let mut j = 1;
        loop {
            match bytes.get(j) {
                None => return Err(unclosed()),
                Some(b'\\') => j += 2,
                Some(b']') => break j + 1,
                Some(_) => j += 1,
            }
        }
    } else {
        rest.find('}').ok_or_else(unclosed)?
    };
    if rest.as_bytes().get(class_len) != Some(&b'}') {
        return Err(unclosed());
    }
    Ok((
        name,
        Some(&rest[..class_len]),
        i + 1 + name_end + 1 + class_len,
    ))
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Escapes the glob metacharacters of `SCAN MATCH` (`* ? [ ] \`).
pub(crate) fn glob_escape_into(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn pat(text: &str) -> (Template, Vec<(String, Class)>) {
        let mut names = Vec::new();
        let t = Template::compile(text, &mut names, true).unwrap();
        (t, names)
    }

    #[test]
    fn syntax() {
        let (t, names) = pat("id-{id}-identity-{attr}");
        let names: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["id", "attr"]);
        assert_eq!(t.tokens.len(), 4);
        let (t, _) = pat("a{{b}}c");
        assert_eq!(t.tokens, vec![Token::Lit(b"a{b}c".to_vec())]);
        let (_, names) = pat("k-{n:digits}-{s:[^}\\]-]}-{w:word}");
        assert!(names[0].1.contains(b'7') && !names[0].1.contains(b'a'));
        assert!(!names[1].1.contains(b'}') && !names[1].1.contains(b']'));
        assert!(!names[1].1.contains(b'-') && names[1].1.contains(b'a'));
        assert!(names[2].1.contains(b'_') && !names[2].1.contains(b'-'));
        let (_, names) = pat("{r:[a-c_]}");
        assert!(
            names[0].1.contains(b'b') && names[0].1.contains(b'_') && !names[0].1.contains(b'd')
        );
        let mut names = Vec::new();
        for bad in [
            "",
            "{a}{b}",
            "x{a",
            "x}",
            "{1a}",
            "{}",
            "{a}-{a}",
            "{a b}",
            "{a:nope}",
            "{a:[z-a]}",
            "{a:[x}",
            "{a:[^\x00-\u{7f}]}x{b:[]}",
        ] {
            assert!(
                Template::compile(bad, &mut names, true).is_err(),
                "{bad:?} accepted"
            );
            names.clear();
        }
        let mut names = vec![("id".to_owned(), Class::ANY)];
        assert!(Template::compile("{id}:{id}", &mut names, false).is_ok());
        assert!(Template::compile("{other}", &mut names, false).is_err());
        assert!(Template::compile("{id:digits}", &mut names, false).is_err());
    }

    #[test]
    fn unique_parse() {
        let (t, names) = pat("id-{id}-identity-{attr}");
        let n = names.len();
        assert_eq!(
            t.parse_unique(b"id-pr-1-identity-email", n),
            Parse::One(vec![Some(b"pr-1".to_vec()), Some(b"email".to_vec())])
        );
        assert_eq!(
            t.parse_unique(b"id-a-identity-b-identity-c", n),
            Parse::Ambiguous
        );
        assert_eq!(t.parse_unique(b"id--identity-x", n), Parse::No);
        assert_eq!(t.parse_unique(b"id-x-identity-", n), Parse::No);
        assert_eq!(t.parse_unique(b"EN_id-x-identity-y", n), Parse::No);
        let (t, names) = pat("dsr__{id}__retry__{n}");
        assert_eq!(
            t.parse_unique(b"dsr__pr-1__retry__3", names.len()),
            Parse::One(vec![Some(b"pr-1".to_vec()), Some(b"3".to_vec())])
        );
        // A class removes the ambiguity.
        let (t, names) = pat("id-{id}-identity-{attr:[^-]}");
        assert_eq!(
            t.parse_unique(b"id-a-identity-b-identity-c", names.len()),
            Parse::One(vec![Some(b"a-identity-b".to_vec()), Some(b"c".to_vec())])
        );
        let (t, names) = pat("r-{n:digits}");
        assert_eq!(t.parse_unique(b"r-12x", names.len()), Parse::No);
        assert_eq!(
            t.parse_unique(b"r-12", names.len()),
            Parse::One(vec![Some(b"12".to_vec())])
        );
    }

    /// The DP agrees with brute force over every split.
    #[test]
    fn unique_parse_counts_like_brute_force() {
        fn brute(toks: &[Token], key: &[u8]) -> usize {
            match toks.split_first() {
                None => usize::from(key.is_empty()),
                Some((Token::Lit(l), rest)) => {
                    if key.starts_with(l) {
                        brute(rest, &key[l.len()..])
                    } else {
                        0
                    }
                }
                Some((Token::Cap(_, c), rest)) => (1..=key.len())
                    .take_while(|&e| c.contains(key[e - 1]))
                    .map(|e| brute(rest, &key[e..]))
                    .sum(),
            }
        }
        let pats = ["a{x}b{y}", "{x}-{y}-{z}", "{x:[ab]}b{y}", "ab{x}", "{x}"];
        let alphabet = [b'a', b'b', b'-'];
        for p in pats {
            let (t, names) = pat(p);
            for len in 0..7u32 {
                for code in 0..3usize.pow(len) {
                    let key: Vec<u8> = (0..len)
                        .map(|i| alphabet[code / 3usize.pow(i) % 3])
                        .collect();
                    let want = brute(&t.tokens, &key);
                    let got = t.parse_unique(&key, names.len());
                    match want {
                        0 => assert_eq!(got, Parse::No, "{p} {key:?}"),
                        1 => assert!(matches!(got, Parse::One(_)), "{p} {key:?}"),
                        _ => assert_eq!(got, Parse::Ambiguous, "{p} {key:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn globs_escape_metacharacters() {
        let (t, names) = pat("id-{id}-identity-{attr}");
        let mut values = vec![None; names.len()];
        values[0] = Some(b"p*[1]?\\".to_vec());
        assert_eq!(
            t.glob(&values),
            b"id-p\\*\\[1\\]\\?\\\\-identity-?*".to_vec()
        );
    }
}
