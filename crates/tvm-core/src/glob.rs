//! IAM-style globs: `*` matches any run of characters (slashes included),
//! `?` matches exactly one. Everything else matches itself, case-sensitively.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    /// Bytes before the first wildcard: compared at once, before any
    /// wildcard matching (most rules fail there).
    literal: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("is empty")]
    Empty,
    #[error("is longer than 2048 characters")]
    TooLong,
    #[error("contains {0:?}; allowed are letters, digits and _+=,.@-:/ with * and ? as wildcards")]
    BadCharacter(char),
}

impl Glob {
    pub fn parse(pattern: &str) -> Result<Self, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        if pattern.len() > 2048 {
            return Err(GlobError::TooLong);
        }
        if let Some(c) = pattern.chars().find(|&c| {
            !(c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '_' | '+' | '=' | ',' | '.' | '@' | '-' | ':' | '/' | '*' | '?'
                ))
        }) {
            return Err(GlobError::BadCharacter(c));
        }
        Ok(Self {
            pattern: pattern.to_string(),
            literal: pattern.find(['*', '?']).unwrap_or(pattern.len()),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The literal prefix first, then an iterative wildcard match with a
    /// single backtracking point: linear in practice, never exponential.
    pub fn matches(&self, text: &str) -> bool {
        let (head, rest) = self.pattern.as_bytes().split_at(self.literal);
        match text.as_bytes().strip_prefix(head) {
            None => false,
            Some(t) if rest.is_empty() => t.is_empty(),
            Some(t) => wildcard(rest, t),
        }
    }
}

fn wildcard(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) && p[pi] != b'*' {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::parse(p).unwrap().matches(t)
    }

    #[test]
    fn star_spans_slashes_and_question_mark_is_one_character() {
        assert!(m(
            "arn:aws:sts::*:assumed-role/orders-task/*",
            "arn:aws:sts::111122223333:assumed-role/orders-task/acme"
        ));
        assert!(m("*", ""));
        assert!(m("a*b*c", "a-x/b-y/c"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(!m("orders-task", "orders-task2"));
        assert!(!m("Orders", "orders"));
        assert!(m("*-task/*", "orders-task/x"));
        assert!(!m("*-task/*", "orders-task"));
    }

    proptest::proptest! {
        /// The literal-prefix shortcut answers exactly as the plain wildcard
        /// matcher over the whole pattern.
        #[test]
        fn the_prefix_shortcut_agrees_with_the_wildcard_matcher(
            p in "[ab*?/]{1,8}",
            t in "[ab/]{0,10}",
        ) {
            let g = Glob::parse(&p).unwrap();
            proptest::prop_assert_eq!(g.matches(&t), wildcard(p.as_bytes(), t.as_bytes()));
        }
    }

    #[test]
    fn refuses_patterns_outside_the_arn_alphabet() {
        assert_eq!(Glob::parse(""), Err(GlobError::Empty));
        assert_eq!(Glob::parse("a b"), Err(GlobError::BadCharacter(' ')));
        assert_eq!(Glob::parse("a[bc]"), Err(GlobError::BadCharacter('[')));
        assert!(Glob::parse(&"a".repeat(2049)).is_err());
    }
}
