//! Whether two templates match a common string, with a witness: the
//! check that keeps legacy rules from claiming the same key.

use std::collections::VecDeque;

use super::{Class, Template, Token};

/// One step of a pattern, for the intersection search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom {
    /// Exactly one byte of the class.
    One(Class),
    /// Zero or more bytes of the class.
    Star(Class),
}

fn atoms(t: &Template) -> Vec<Atom> {
    let mut out = Vec::new();
    for tok in &t.tokens {
        match tok {
            Token::Lit(l) => out.extend(l.iter().map(|&b| {
                let mut c = Class::none();
                c.insert(b);
                Atom::One(c)
            })),
            // One or more bytes = one byte then any number.
            Token::Cap(_, c) => out.extend([Atom::One(*c), Atom::Star(*c)]),
        }
    }
    out
}

/// A string both templates match (captures as "one or more bytes of
/// their class", independently of each other), or `None` when their
/// languages are disjoint.
///
/// Exact: a breadth-first search over pairs of positions `(i, j)` of the
/// two patterns, i.e. the product of their automata. From `(i, j)`, a
/// star may match nothing (move past it), and one byte can be read when
/// both positions accept a common byte (a star stays put, a single byte
/// moves on). The languages intersect iff `(len a, len b)` is reachable;
/// the bytes read on the way are the witness. At most
/// `(|a| + 1) × (|b| + 1)` states, each visited once.
pub(crate) fn intersect(a: &Template, b: &Template) -> Option<Vec<u8>> {
    let (a, b) = (atoms(a), atoms(b));
    let width = b.len() + 1;
    let index = |i: usize, j: usize| i * width + j;
    // parent[state] = (previous state, byte read or None for a skip).
    let mut parent: Vec<Option<(usize, Option<u8>)>> = vec![None; (a.len() + 1) * width];
    let mut seen = vec![false; (a.len() + 1) * width];
    let mut queue = VecDeque::from([(0usize, 0usize)]);
    seen[0] = true;
    while let Some((i, j)) = queue.pop_front() {
        if i == a.len() && j == b.len() {
            let mut witness = Vec::new();
            let mut s = index(i, j);
            while let Some((prev, byte)) = parent[s] {
                witness.extend(byte);
                s = prev;
            }
            witness.reverse();
            return Some(witness);
        }
        let class = |atom: Atom| match atom {
            Atom::One(c) | Atom::Star(c) => c,
        };
        let is_star = |atom: Atom| matches!(atom, Atom::Star(_));
        let mut next = Vec::with_capacity(3);
        if a.get(i).copied().is_some_and(is_star) {
            next.push((i + 1, j, None));
        }
        if b.get(j).copied().is_some_and(is_star) {
            next.push((i, j + 1, None));
        }
        if let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
            if let Some(byte) = class(x).and(class(y)).pick() {
                let ni = if is_star(x) { i } else { i + 1 };
                let nj = if is_star(y) { j } else { j + 1 };
                next.push((ni, nj, Some(byte)));
            }
        }
        for (ni, nj, byte) in next {
            let s = index(ni, nj);
            if !seen[s] {
                seen[s] = true;
                parent[s] = Some((index(i, j), byte));
                queue.push_back((ni, nj));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::tests::pat;
    use super::super::Parse;
    use super::*;

    fn overlap(a: &str, b: &str) -> Option<String> {
        intersect(&pat(a).0, &pat(b).0).map(|w| String::from_utf8(w).unwrap())
    }

    #[test]
    fn overlapping_patterns_are_found_with_a_witness() {
        let w = overlap("id-{id}-identity-{attr}", "id-{id}-{rest}").unwrap();
        assert!(w.starts_with("id-") && w.contains("-identity-"), "{w}");
        let (a, na) = pat("id-{id}-identity-{attr}");
        let (b, nb) = pat("id-{id}-{rest}");
        assert!(a.parse_unique(w.as_bytes(), na.len()) != Parse::No);
        assert!(b.parse_unique(w.as_bytes(), nb.len()) != Parse::No);

        assert!(overlap("{a}", "x").is_some());
        assert!(overlap("{a}_x", "y_{b}").is_some());
        assert!(overlap("dsr__{id}__retry__{n}", "dsr__{id}__{what}").is_some());
        assert!(overlap("a{x}b", "ab").is_none(), "a capture is never empty");
        assert!(overlap("a{x}", "a").is_none());
        assert!(overlap("id-{id}-identity-{attr}", "EN_id-{id}-identity-{attr}").is_none());
        // "dsr__x__mask__y__retry__z" is both (id = "x__mask__y", n = "z";
        // id = "x", n = "y__retry__z").
        let w = overlap("dsr__{id}__retry__{n}", "dsr__{id}__mask__{n}").unwrap();
        assert!(w.contains("__mask__") && w.contains("__retry__"), "{w}");
        // Classes that keep the separator out of a capture make them disjoint.
        assert!(overlap("dsr__{id:[^_]}__retry__{n}", "dsr__{id:[^_]}__mask__{n}").is_none());
        assert!(overlap("id-{id}-identity-{a:[^-]}", "id-{id}-custom-{f:[^-]}").is_none());
        assert!(overlap("id-{id}-identity-{a}", "id-{id}-custom-{f}").is_some());
        assert!(overlap("r-{n:digits}", "r-{s:[a-z]}").is_none());
        assert!(overlap("r-{n:digits}", "r-{s:hex}").is_some());
        assert!(overlap("{a}-x", "{b}-y").is_none());
        assert!(overlap("{a}-x", "{b}x").is_some());
        assert!(overlap("k:{a}", "k:{a}").is_some());
    }

    /// The search agrees with brute force on short strings.
    #[test]
    fn intersection_agrees_with_brute_force() {
        let pats = [
            "a{x}",
            "{x}a",
            "{x}-{y}",
            "a-{x}",
            "{x:[^-]}-b",
            "-{x}-",
            "ab",
            "{x}b{y}",
            "{x:[a]}",
        ];
        let alphabet = [b'a', b'b', b'-'];
        for p in pats {
            for q in pats {
                let (tp, np) = pat(p);
                let (tq, nq) = pat(q);
                let mut common = false;
                'outer: for len in 0..7u32 {
                    for code in 0..3usize.pow(len) {
                        let key: Vec<u8> = (0..len)
                            .map(|i| alphabet[code / 3usize.pow(i) % 3])
                            .collect();
                        if tp.parse_unique(&key, np.len()) != Parse::No
                            && tq.parse_unique(&key, nq.len()) != Parse::No
                        {
                            common = true;
                            break 'outer;
                        }
                    }
                }
                let found = intersect(&tp, &tq);
                if let Some(w) = &found {
                    assert!(tp.parse_unique(w, np.len()) != Parse::No, "{p} {q} {w:?}");
                    assert!(tq.parse_unique(w, nq.len()) != Parse::No, "{p} {q} {w:?}");
                }
                if common {
                    assert!(found.is_some(), "{p} and {q} share a key");
                }
            }
        }
    }
}
