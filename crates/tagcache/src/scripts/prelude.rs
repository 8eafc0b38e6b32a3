//! Which of `lib.lua`'s statements a script is sent with.
//!
//! A script's body runs on every call, and so does the prelude in front of
//! it: each `local function` of `lib.lua` makes a closure every time
//! (`redis-benchmark` of `EVALSHA` on Redis 7.0.15: `return 1` costs
//! 0.84 µs, the whole `lib.lua` + `return 1` 3.11 µs, ~0.14 µs per helper),
//! and each other top-level `local` (the globals bound to locals, the
//! constants, the `MALFORMED` marker table) runs too: ~0.4 µs a call for
//! all of them (0.63 → 1.05–1.08 µs, the same measure, stop 22). So a
//! script gets only the top-level statements that define a name it uses,
//! and those the kept ones use, in `lib.lua`'s order; the lines before the
//! first `local` (comments) come along. The scripts on the write path's
//! hot path stand alone (`scripts/mod.rs`).

use std::collections::HashSet;

/// One top-level statement of `lib.lua`: a `local function` or another
/// `local` (kept only when a name it defines is needed), with the comment
/// lines right above it and the lines up to the next such comment or
/// top-level `local`.
struct Item<'a> {
    /// The names it defines (none for the lines before the first `local`,
    /// which are always kept).
    defines: Vec<&'a str>,
    lines: Vec<&'a str>,
}

/// The names a top-level `local` line defines: the function's, or those
/// before the `=` of `local a, b = ...`.
fn defined_names(line: &str) -> Vec<&str> {
    if let Some(rest) = line.strip_prefix("local function ") {
        return rest.split('(').next().map(str::trim).into_iter().collect();
    }
    let names = line.strip_prefix("local ").unwrap_or_default();
    let names = names.split('=').next().unwrap_or_default();
    names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect()
}

/// `lib.lua` cut into its top-level statements (lines before the first
/// one are kept as an item of their own).
fn items(lib: &str) -> Vec<Item<'_>> {
    let mut out: Vec<Item<'_>> = vec![Item {
        defines: Vec::new(),
        lines: Vec::new(),
    }];
    for line in lib.lines() {
        if line.starts_with("local ") {
            // The comment right above a statement is its own.
            let mut lines = Vec::new();
            if let Some(last) = out.last_mut() {
                let keep = last
                    .lines
                    .iter()
                    .rposition(|l| !l.starts_with("--"))
                    .map_or(0, |i| i + 1);
                lines = last.lines.split_off(keep);
            }
            out.push(Item {
                defines: defined_names(line),
                lines,
            });
        }
        if let Some(last) = out.last_mut() {
            last.lines.push(line);
        }
    }
    out
}

/// The identifiers in Lua source, comments left out (a `--` outside a
/// quoted string starts one; block comments are not used in these files).
fn identifiers(source: &str) -> HashSet<&str> {
    let mut found = HashSet::new();
    for line in source.lines() {
        let bytes = line.as_bytes();
        let mut quote: Option<u8> = None;
        let mut start: Option<usize> = None;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            let word = b == b'_' || b.is_ascii_alphanumeric();
            if quote.is_none() && word {
                start.get_or_insert(i);
            } else {
                if let Some(s) = start.take() {
                    if !bytes[s].is_ascii_digit() {
                        found.insert(&line[s..i]);
                    }
                }
                match quote {
                    Some(_) if b == b'\\' => i += 1,
                    Some(q) if b == q => quote = None,
                    Some(_) => {}
                    None if b == b'\'' || b == b'"' => quote = Some(b),
                    None if b == b'-' && bytes.get(i + 1) == Some(&b'-') => break,
                    None => {}
                }
            }
            i += 1;
        }
        if let Some(s) = start {
            if !bytes[s].is_ascii_digit() {
                found.insert(&line[s..]);
            }
        }
    }
    found
}

/// `lib.lua` as `body` needs it: the statements that define a name
/// `body` uses, with those their own text uses, in order.
pub(crate) fn prelude(lib: &str, body: &str) -> String {
    let items = items(lib);
    let mut needed: HashSet<&str> = identifiers(body);
    // A statement only names what statements before it define: one pass
    // from the last to the first closes the set and marks what is kept.
    let mut keep = vec![false; items.len()];
    for (item, kept) in items.iter().zip(&mut keep).rev() {
        let wanted = item.defines.iter().any(|n| needed.contains(n));
        if wanted {
            needed.extend(item.lines.iter().flat_map(|l| identifiers(l)));
        }
        *kept = wanted || item.defines.is_empty();
    }
    let mut out = String::with_capacity(lib.len());
    let kept = items.iter().zip(keep).filter(|(_, kept)| *kept);
    for line in kept.flat_map(|(it, _)| &it.lines) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIB: &str =
        "-- head\n\nlocal A = 1\nlocal B, C =\n  2, 3\nlocal function f()\n  return A\nend\n\
        -- g calls f\nlocal function g()\n  return f()\nend\nlocal function h()\n  return 2\nend\n";

    #[test]
    fn a_script_gets_the_helpers_it_names_and_theirs_in_order() {
        let p = prelude(LIB, "return g()\n");
        assert!(p.contains("local function f()"), "{p}");
        assert!(p.contains("local function g()"), "{p}");
        assert!(!p.contains("local function h()"), "{p}");
        assert!(p.find("function f").unwrap() < p.find("function g").unwrap());
        // f names A: A comes along; nothing names B or C.
        assert!(p.starts_with("-- head\n\nlocal A = 1\n"), "{p}");
        assert!(!p.contains("local B"), "{p}");
    }

    #[test]
    fn a_script_gets_the_constants_it_names_whole() {
        let p = prelude(LIB, "return C\n");
        assert_eq!(p, "-- head\n\nlocal B, C =\n  2, 3\n");
        // A helper's comment goes with it.
        let p = prelude(LIB, "return A\n");
        assert!(!p.contains("g calls f"), "{p}");
        assert!(prelude(LIB, "return g()\n").contains("-- g calls f\nlocal function g()"));
        assert_eq!(defined_names("local B, C ="), ["B", "C"]);
        assert_eq!(defined_names("local function f(x)"), ["f"]);
        assert_eq!(defined_names("local ZERO = '0'"), ["ZERO"]);
    }

    #[test]
    fn names_in_comments_and_strings_do_not_count() {
        let p = prelude(LIB, "-- h()\nreturn 'h()', \"f\", 'A'\n");
        assert!(!p.contains("function h"), "{p}");
        assert!(!p.contains("function f"), "{p}");
        assert!(!p.contains("local A = 1"), "{p}");
    }

    #[test]
    fn every_script_is_sent_with_the_helpers_it_calls() {
        let lib = include_str!("lib.lua");
        let helpers: Vec<&str> = items(lib)
            .iter()
            .flat_map(|it| it.defines.iter().copied())
            .collect();
        assert!(helpers.len() > 30, "{helpers:?}");
        let with_lib = crate::scripts::SCRIPTS
            .all()
            .into_iter()
            .filter(|s| s.source.contains("-- Shared helpers"));
        for script in crate::scripts::SCRIPTS.all() {
            // `identifiers` knows line comments and quoted strings only.
            assert!(
                !script.source.contains("[["),
                "{}: long bracket",
                script.name
            );
        }
        for script in with_lib {
            let used = identifiers(&script.source);
            // Every name of lib.lua the script (its body or a kept
            // statement) uses is defined in what is sent.
            let kept: Vec<&str> = items(&script.source)
                .iter()
                .flat_map(|it| it.defines.iter().copied())
                .collect();
            for name in &helpers {
                if used.contains(name) {
                    assert!(
                        kept.contains(name),
                        "{} uses {name} without it",
                        script.name
                    );
                }
            }
        }
    }
}
