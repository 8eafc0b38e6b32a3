//! The reverse mapping: which capture values make several templates
//! render given strings (a scoped key back to its legacy captures).

use super::{Bindings, Template, Token};

/// Steps the reverse matcher may take before it gives up (and the caller
/// treats the match as ambiguous): keeps pathological inputs bounded.
const MATCH_BUDGET: usize = 100_000;

/// Capture values with which every template renders its string, with
/// captures shared between templates agreeing; at most `limit` of them.
/// `None` when the search ran out of budget.
pub(crate) fn match_joint(
    pairs: &[(&Template, &[u8])],
    captures: usize,
    limit: usize,
) -> Option<Vec<Bindings>> {
    let mut out = Vec::new();
    let mut budget = MATCH_BUDGET;
    let mut bound = vec![None; captures];
    let ok = joint(pairs, 0, 0, 0, &mut bound, &mut out, limit, &mut budget);
    ok.then_some(out)
}

/// Backtracking over (pair, token, position); false when out of budget.
#[allow(clippy::too_many_arguments)]
fn joint(
    pairs: &[(&Template, &[u8])],
    pair: usize,
    tok: usize,
    pos: usize,
    bound: &mut Bindings,
    out: &mut Vec<Bindings>,
    limit: usize,
    budget: &mut usize,
) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    if out.len() >= limit {
        return true;
    }
    let Some((template, s)) = pairs.get(pair) else {
        out.push(bound.clone());
        return true;
    };
    let Some(token) = template.tokens.get(tok) else {
        return pos != s.len() || joint(pairs, pair + 1, 0, 0, bound, out, limit, budget);
    };
    match token {
        Token::Lit(l) => {
            !s[pos..].starts_with(l)
                || joint(
                    pairs,
                    pair,
                    tok + 1,
                    pos + l.len(),
                    bound,
                    out,
                    limit,
                    budget,
                )
        }
        Token::Cap(c, class) => {
            if let Some(v) = bound.get(*c).cloned().flatten() {
                return !s[pos..].starts_with(&v)
                    || joint(
                        pairs,
                        pair,
                        tok + 1,
                        pos + v.len(),
                        bound,
                        out,
                        limit,
                        budget,
                    );
            }
            for end in pos + 1..=s.len() {
                if !class.contains(s[end - 1]) {
                    break;
                }
                if let Some(slot) = bound.get_mut(*c) {
                    *slot = Some(s[pos..end].to_vec());
                }
                let ok = joint(pairs, pair, tok + 1, end, bound, out, limit, budget);
                if !ok {
                    return false;
                }
                if out.len() >= limit {
                    break;
                }
            }
            if let Some(slot) = bound.get_mut(*c) {
                *slot = None;
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Class;
    use super::*;

    #[test]
    fn joint_matching_binds_shared_captures() {
        let mut names = vec![
            ("id".to_owned(), Class::ANY),
            ("attr".to_owned(), Class::ANY),
        ];
        let owner = Template::compile("{id}", &mut names, false).unwrap();
        let part = Template::compile("identity:{attr}", &mut names, false).unwrap();
        let m = match_joint(
            &[
                (&owner, b"pr-1".as_slice()),
                (&part, b"identity:email".as_slice()),
            ],
            2,
            4,
        )
        .unwrap();
        assert_eq!(
            m,
            vec![vec![Some(b"pr-1".to_vec()), Some(b"email".to_vec())]]
        );
        let two = Template::compile("{id}-{attr}", &mut names, false).unwrap();
        let m = match_joint(&[(&two, b"a-b-c".as_slice())], 2, 4).unwrap();
        assert_eq!(m.len(), 2);
        let tag = Template::compile("{id}", &mut names, false).unwrap();
        let m = match_joint(&[(&owner, b"x".as_slice()), (&tag, b"y".as_slice())], 2, 4).unwrap();
        assert!(m.is_empty(), "a shared capture must agree");
        let mut names = vec![("n".to_owned(), Class::parse("digits").unwrap())];
        let t = Template::compile("r:{n}", &mut names, false).unwrap();
        assert!(
            match_joint(&[(&t, b"r:12".as_slice())], 1, 4)
                .unwrap()
                .len()
                == 1
        );
        assert!(match_joint(&[(&t, b"r:1x".as_slice())], 1, 4)
            .unwrap()
            .is_empty());
    }
}
