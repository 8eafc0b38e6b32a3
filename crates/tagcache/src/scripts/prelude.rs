//! Which of `lib.lua`'s helpers a script is sent with.
//!
//! A script's body runs on every call, and so does the prelude in front of
//! it: each `local function` of `lib.lua` makes a closure every time
//! (`redis-benchmark` of `EVALSHA` on Redis 7.0.15: `return 1` costs
//! 0.84 µs, the whole `lib.lua` + `return 1` 3.11 µs, ~0.14 µs per helper).
//! So a script gets only the helpers it names, and the helpers those name,
//! in `lib.lua`'s order; everything else in `lib.lua` (the bound globals,
//! the constants) always comes along. That part is not free either: ~0.5–
//! 0.8 µs a call over an empty script (the same measure), which is why the
//! scripts on the write path's hot path stand alone (`scripts/mod.rs`).

use std::collections::HashSet;

/// One top-level statement of `lib.lua`: a `local function` (kept only
/// when needed) or anything else (always kept), with the lines up to the
/// next top-level `local`.
struct Item<'a> {
    /// The helper's name, for a `local function`.
    function: Option<&'a str>,
    text: String,
}

/// `lib.lua` cut into its top-level statements (lines before the first
/// one are kept as an item of their own).
fn items(lib: &str) -> Vec<Item<'_>> {
    let mut out: Vec<Item<'_>> = vec![Item {
        function: None,
        text: String::new(),
    }];
    for line in lib.lines() {
        if line.starts_with("local ") {
            let function = line
                .strip_prefix("local function ")
                .and_then(|rest| rest.split('(').next())
                .map(str::trim);
            out.push(Item {
                function,
                text: String::new(),
            });
        }
        if let Some(last) = out.last_mut() {
            last.text.push_str(line);
            last.text.push('\n');
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

/// `lib.lua` as `body` needs it: every statement that is not a helper,
/// and the helpers `body` names, with the helpers they name, in order.
pub(crate) fn prelude(lib: &str, body: &str) -> String {
    let items = items(lib);
    let uses: Vec<HashSet<&str>> = items.iter().map(|it| identifiers(&it.text)).collect();
    let mut needed: HashSet<&str> = identifiers(body);
    // Helpers only name helpers defined before them: one pass from the
    // last to the first closes the set.
    for (item, used) in items.iter().zip(&uses).rev() {
        if let Some(name) = item.function {
            if needed.contains(name) {
                needed.extend(used.iter().copied());
            }
        }
    }
    items
        .iter()
        .filter(|it| it.function.is_none_or(|name| needed.contains(name)))
        .map(|it| it.text.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIB: &str = "-- head\nlocal A = 1\nlocal function f()\n  return A\nend\n\
        -- g calls f\nlocal function g()\n  return f()\nend\nlocal function h()\n  return 2\nend\n";

    #[test]
    fn a_script_gets_the_helpers_it_names_and_theirs_in_order() {
        let p = prelude(LIB, "return g()\n");
        assert!(p.contains("local function f()"), "{p}");
        assert!(p.contains("local function g()"), "{p}");
        assert!(!p.contains("local function h()"), "{p}");
        assert!(p.find("function f").unwrap() < p.find("function g").unwrap());
        assert!(p.starts_with("-- head\nlocal A = 1\n"), "{p}");
    }

    #[test]
    fn names_in_comments_and_strings_do_not_count() {
        let p = prelude(LIB, "-- h()\nreturn 'h()', \"f\"\n");
        assert!(!p.contains("function h"), "{p}");
        assert!(!p.contains("function f"), "{p}");
        assert!(p.contains("local A = 1"), "{p}");
    }

    #[test]
    fn every_script_is_sent_with_the_helpers_it_calls() {
        let lib = include_str!("lib.lua");
        let helpers: Vec<&str> = items(lib).iter().filter_map(|it| it.function).collect();
        assert!(helpers.len() > 10, "{helpers:?}");
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
            for name in &helpers {
                let defined = script.source.contains(&format!("local function {name}("));
                if used.contains(name) {
                    assert!(defined, "{} calls {name} without it", script.name);
                }
            }
        }
    }
}
