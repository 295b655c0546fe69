//! Glob patterns of `like` and `not_like` conditions, with the semantics of AWS `StringLike`:
//! `*` is any run of characters (none included), `?` exactly one character, `\*` `\?` `\\`
//! are literals; anchored at both ends; case-sensitive.
//!
//! Matching never backtracks over the input more than once per wildcard-free segment: the
//! text before the first `*` must be a prefix, the text after the last `*` a suffix, and each
//! segment between two stars is found at its leftmost place after the previous one (taking
//! the leftmost place never loses a match, since a segment matches a fixed number of
//! characters). A segment of plain text is found by `str::find` (linear); one with `?` by
//! trying each start, so a match costs at most O(n·m) for a claim of n bytes and a pattern of
//! m ≤ [`MAX_PATTERN_BYTES`] bytes, whatever the claim holds.

use std::collections::{HashMap, VecDeque};

/// Longest pattern accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 1024;
/// Most wildcards (`*` and `?`) in one pattern.
pub const MAX_WILDCARDS: usize = 16;

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Longer than [`MAX_PATTERN_BYTES`].
    #[error("pattern is {len} bytes long; at most {MAX_PATTERN_BYTES}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// More than [`MAX_WILDCARDS`] wildcards.
    #[error("pattern has {count} wildcards; at most {MAX_WILDCARDS}")]
    TooManyWildcards {
        /// How many it has.
        count: usize,
    },
    /// A backslash not followed by `*`, `?` or `\`.
    #[error("pattern has a bad escape `{escape}`: only \\*, \\? and \\\\ are escapes")]
    BadEscape {
        /// The backslash and what follows it (nothing at the end of the pattern).
        escape: String,
    },
}

/// One element of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom {
    Char(char),
    One,
    Star,
}

/// A run of a segment: plain text, or one `?`.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(Box<str>),
    One,
}

/// The part of a pattern between two stars (or an end).
#[derive(Debug, Clone, PartialEq)]
struct Segment {
    pieces: Box<[Piece]>,
}

/// A compiled `like` pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    source: Box<str>,
    atoms: Box<[Atom]>,
    head: Segment,
    /// Segments between stars, empty ones left out.
    middle: Box<[Segment]>,
    /// The segment after the last star; `None` when the pattern has no star.
    tail: Option<Segment>,
}

impl Pattern {
    /// Compile `source`, or say why it is refused.
    pub fn compile(source: &str) -> Result<Pattern, PatternError> {
        if source.len() > MAX_PATTERN_BYTES {
            return Err(PatternError::TooLong { len: source.len() });
        }
        let mut atoms = Vec::new();
        let mut chars = source.chars();
        while let Some(c) = chars.next() {
            atoms.push(match c {
                '\\' => match chars.next() {
                    Some(e @ ('*' | '?' | '\\')) => Atom::Char(e),
                    Some(e) => {
                        return Err(PatternError::BadEscape {
                            escape: format!("\\{e}"),
                        })
                    }
                    None => {
                        return Err(PatternError::BadEscape {
                            escape: "\\".into(),
                        })
                    }
                },
                '*' => Atom::Star,
                '?' => Atom::One,
                c => Atom::Char(c),
            });
        }
        let count = atoms.iter().filter(|a| !matches!(a, Atom::Char(_))).count();
        if count > MAX_WILDCARDS {
            return Err(PatternError::TooManyWildcards { count });
        }
        let mut groups: Vec<Segment> = atoms.split(|a| *a == Atom::Star).map(segment).collect();
        let head = groups.remove(0);
        let tail = groups.pop();
        groups.retain(|s| !s.pieces.is_empty());
        Ok(Pattern {
            source: source.into(),
            atoms: atoms.into(),
            head,
            middle: groups.into(),
            tail,
        })
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether `s` matches the whole pattern.
    pub fn matches(&self, s: &str) -> bool {
        let n = s.len();
        let Some(mut at) = self.head.match_at(s, 0, n) else {
            return false;
        };
        let Some(tail) = &self.tail else {
            return at == n;
        };
        let Some(limit) = tail.match_back(s, n, at) else {
            return false;
        };
        for segment in self.middle.iter() {
            match segment.find(s, at, limit) {
                Some(end) => at = end,
                None => return false,
            }
        }
        true
    }

    /// The text before the first wildcard, and whether the pattern has any wildcard.
    pub fn literal_prefix(&self) -> (String, bool) {
        let mut prefix = String::new();
        for atom in self.atoms.iter() {
            match atom {
                Atom::Char(c) => prefix.push(*c),
                _ => return (prefix, true),
            }
        }
        (prefix, false)
    }

    /// Whether the pattern is only stars, so it matches every string.
    pub fn matches_everything(&self) -> bool {
        !self.atoms.is_empty() && self.atoms.iter().all(|a| *a == Atom::Star)
    }

    /// Whether every string this pattern matches is matched by `other` too, as far as a
    /// cheap test can tell: `false` may be wrong, `true` never is.
    pub fn surely_within(&self, other: &Pattern) -> bool {
        other.matches_everything() || self.atoms == other.atoms
    }

    /// A string matching the pattern, the `k`-th of a family of distinct ones when the
    /// pattern has a wildcard (the same string for every `k` when it has none).
    pub fn sample(&self, k: usize) -> String {
        let mut out = String::new();
        let mut first = true;
        for atom in self.atoms.iter() {
            match atom {
                Atom::Char(c) => out.push(*c),
                Atom::One if first => {
                    first = false;
                    let c = u32::try_from(k % 50_000).unwrap_or(0) + 0x61;
                    out.push(char::from_u32(c).unwrap_or('x'));
                }
                Atom::Star if first => {
                    first = false;
                    out.extend(std::iter::repeat_n('x', k % 50_000));
                }
                Atom::One => out.push('x'),
                Atom::Star => {}
            }
        }
        out
    }

    /// A string both patterns match, if there is one: a search of the pairs of positions
    /// of the two patterns that one input can reach (their product automaton). The search
    /// stops after [`MAX_SEARCH_STATES`] pairs and then answers [`Shared::Unknown`].
    pub fn common_match(&self, other: &Pattern) -> Shared {
        let (a, b) = (&self.atoms, &other.atoms);
        // Each state remembers how it was reached, to spell the string that reached it.
        let mut from: HashMap<State, Option<(State, Option<char>)>> = HashMap::new();
        let mut queue = VecDeque::new();
        from.insert((0, 0), None);
        queue.push_back((0, 0));
        let accept = (a.len(), b.len());
        while let Some((i, j)) = queue.pop_front() {
            if from.len() > MAX_SEARCH_STATES {
                return Shared::Unknown;
            }
            if (i, j) == accept {
                let mut chars = Vec::new();
                let mut at = (i, j);
                while let Some(Some((prev, c))) = from.get(&at) {
                    chars.extend(*c);
                    at = *prev;
                }
                return Shared::Yes(chars.into_iter().rev().collect());
            }
            let mut next = Vec::with_capacity(3);
            if a.get(i) == Some(&Atom::Star) {
                next.push(((i + 1, j), None));
            }
            if b.get(j) == Some(&Atom::Star) {
                next.push(((i, j + 1), None));
            }
            if let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
                let c = match (x, y) {
                    (Atom::Char(p), Atom::Char(q)) if p != q => None,
                    (Atom::Char(p), _) => Some(*p),
                    (_, Atom::Char(q)) => Some(*q),
                    _ => Some('x'),
                };
                if let Some(c) = c {
                    let step = |k: usize, atom: &Atom| if *atom == Atom::Star { k } else { k + 1 };
                    next.push(((step(i, x), step(j, y)), Some(c)));
                }
            }
            for (state, c) in next {
                if let std::collections::hash_map::Entry::Vacant(e) = from.entry(state) {
                    e.insert(Some(((i, j), c)));
                    queue.push_back(state);
                }
            }
        }
        Shared::No
    }
}

/// Most pairs of positions a search for a common string visits: two ordinary patterns
/// need a few dozen; only two long runs of literals behind stars come near it.
pub const MAX_SEARCH_STATES: usize = 1 << 16;

/// Whether two patterns match a common string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shared {
    /// This string matches both.
    Yes(String),
    /// No string matches both.
    No,
    /// The search gave up (see [`MAX_SEARCH_STATES`]).
    Unknown,
}

/// A position in each of two patterns.
type State = (usize, usize);

fn segment(atoms: &[Atom]) -> Segment {
    let mut pieces = Vec::new();
    let mut text = String::new();
    for atom in atoms {
        match atom {
            Atom::Char(c) => text.push(*c),
            _ => {
                if !text.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut text).into()));
                }
                pieces.push(Piece::One);
            }
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Lit(text.into()));
    }
    Segment {
        pieces: pieces.into(),
    }
}

impl Segment {
    /// Where a match of this segment starting at byte `at` of `s` ends, not passing `limit`.
    fn match_at(&self, s: &str, at: usize, limit: usize) -> Option<usize> {
        let mut p = at;
        for piece in self.pieces.iter() {
            let rest = s.get(p..limit)?;
            match piece {
                Piece::Lit(l) if rest.starts_with(&**l) => p += l.len(),
                Piece::Lit(_) => return None,
                Piece::One => p += rest.chars().next()?.len_utf8(),
            }
        }
        Some(p)
    }

    /// Where a match of this segment ending at byte `end` of `s` starts, not before `floor`.
    fn match_back(&self, s: &str, end: usize, floor: usize) -> Option<usize> {
        let mut p = end;
        for piece in self.pieces.iter().rev() {
            let rest = s.get(floor..p)?;
            match piece {
                Piece::Lit(l) if rest.ends_with(&**l) => p -= l.len(),
                Piece::Lit(_) => return None,
                Piece::One => p -= rest.chars().next_back()?.len_utf8(),
            }
        }
        Some(p)
    }

    /// Where the leftmost match of this segment within `s[from..limit]` ends.
    fn find(&self, s: &str, from: usize, limit: usize) -> Option<usize> {
        let hay = s.get(from..limit)?;
        if let [Piece::Lit(l)] = &*self.pieces {
            return hay.find(&**l).map(|i| from + i + l.len());
        }
        hay.char_indices()
            .find_map(|(i, _)| self.match_at(s, from + i, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::compile(s).expect("valid pattern")
    }

    #[test]
    fn stars_and_question_marks_match_as_aws_string_like_does() {
        let sub = p("repo:acme/*:ref:refs/heads/main");
        assert!(sub.matches("repo:acme/api:ref:refs/heads/main"));
        assert!(sub.matches("repo:acme/a/b:c:ref:refs/heads/main"));
        assert!(!sub.matches("repo:acme/api:ref:refs/heads/main2"));
        assert!(!sub.matches("xrepo:acme/api:ref:refs/heads/main"));
        assert!(!sub.matches("repo:ACME/api:ref:refs/heads/main"));
        assert!(p("a*").matches("a"));
        assert!(p("*").matches(""));
        assert!(!p("?").matches(""));
        assert!(p("?").matches("é"));
        assert!(!p("?").matches("ab"));
        assert!(p("a?c").matches("abc"));
        assert!(p("a*b*c").matches("abbbc"));
        assert!(!p("a*b*c").matches("acb"));
        assert!(p("*ab*ba*").matches("abba"));
        assert!(!p("*ab*ba*").matches("aba"));
        assert!(p("*a?b*").matches("xxaébyy"));
        assert!(p("?*?").matches("ab") && !p("?*?").matches("a"));
        assert!(p("").matches("") && !p("").matches("a"));
    }

    #[test]
    fn escapes_make_wildcards_literal() {
        assert!(p(r"a\*b").matches("a*b"));
        assert!(!p(r"a\*b").matches("axb"));
        assert!(p(r"\?").matches("?") && !p(r"\?").matches("x"));
        assert!(p(r"a\\*").matches(r"a\anything"));
    }

    #[test]
    fn malformed_patterns_are_refused_with_their_reason() {
        assert_eq!(
            Pattern::compile(r"a\b"),
            Err(PatternError::BadEscape {
                escape: r"\b".into()
            })
        );
        assert_eq!(
            Pattern::compile("a\\"),
            Err(PatternError::BadEscape {
                escape: "\\".into()
            })
        );
        assert_eq!(
            Pattern::compile(&"*".repeat(17)),
            Err(PatternError::TooManyWildcards { count: 17 })
        );
        assert!(Pattern::compile(&"?".repeat(16)).is_ok());
        assert_eq!(
            Pattern::compile(&"a".repeat(1025)),
            Err(PatternError::TooLong { len: 1025 })
        );
        assert!(Pattern::compile(&"a".repeat(1024)).is_ok());
    }

    #[test]
    fn an_adversarial_pattern_over_a_long_claim_is_answered_correctly() {
        let claim = "a".repeat(8 * 1024);
        assert!(!p("*a*a*a*a*a*b").matches(&claim));
        assert!(p("*a*a*a*a*a*").matches(&claim));
        let with_b = format!("{claim}b");
        assert!(p("*a*a*a*a*a*b").matches(&with_b));
        assert!(!p("*a?a*a?a*a?c*").matches(&with_b));
        assert!(p("*a?a*a?a*a?b").matches(&with_b));
    }

    #[test]
    fn two_patterns_share_a_string_exactly_when_the_search_finds_one() {
        let cases = [
            ("repo:acme/*", "repo:*:ref:main", true),
            ("repo:acme/*", "repo:other/*", false),
            ("a?c", "*b*", true),
            ("a?c", "a*d", false),
            ("*x", "*y", false),
            ("x*", "*y", true),
            ("", "*", true),
            ("", "?", false),
            (r"\*", "?", true),
        ];
        for (a, b, both) in cases {
            let found = p(a).common_match(&p(b));
            assert_eq!(
                matches!(found, Shared::Yes(_)),
                both,
                "{a} and {b}: {found:?}"
            );
            assert_ne!(found, Shared::Unknown);
            if let Shared::Yes(s) = found {
                assert!(p(a).matches(&s) && p(b).matches(&s), "{a} {b} {s:?}");
            }
        }
    }

    /// The textbook recursive glob matcher, exponential but obviously right.
    fn reference(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len()).any(|i| reference(rest, &s[i..])),
            Some(('?', rest)) => !s.is_empty() && reference(rest, &s[1..]),
            Some(('\\', rest)) => match rest.split_first() {
                Some((c, rest)) => s.first() == Some(c) && reference(rest, &s[1..]),
                None => false,
            },
            Some((c, rest)) => s.first() == Some(c) && reference(rest, &s[1..]),
        }
    }

    /// Every string of up to `len` characters over `alphabet`.
    fn strings(alphabet: &[char], len: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..len {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    proptest::proptest! {
        #[test]
        fn matching_agrees_with_the_reference_matcher(
            source in "([ab*?é]|\\\\[*?\\\\]){0,8}",
            text in "[ab*?é\\\\]{0,10}",
        ) {
            let pattern = p(&source);
            let pc: Vec<char> = source.chars().collect();
            let sc: Vec<char> = text.chars().collect();
            proptest::prop_assert_eq!(pattern.matches(&text), reference(&pc, &sc), "{} {}", source, text);
        }

        #[test]
        fn two_patterns_are_called_exclusive_only_when_no_string_matches_both(
            a in "[ab*?]{0,4}",
            b in "[ab*?]{0,4}",
        ) {
            let (pa, pb) = (p(&a), p(&b));
            match pa.common_match(&pb) {
                Shared::Yes(s) => proptest::prop_assert!(pa.matches(&s) && pb.matches(&s), "{} {} {:?}", a, b, s),
                Shared::Unknown => proptest::prop_assert!(false, "{} {} undecided", a, b),
                Shared::No => {
                    // Any common string is at most as long as both patterns together.
                    for s in strings(&['a', 'b', 'x'], a.len() + b.len()) {
                        proptest::prop_assert!(!(pa.matches(&s) && pb.matches(&s)), "{} {} both match {:?}", a, b, s);
                    }
                }
            }
        }
    }

    #[test]
    fn a_search_too_large_to_finish_is_undecided_never_exclusive() {
        let long = format!("*{}", "a".repeat(1000));
        let other = format!("*{}b", "a".repeat(999));
        assert_eq!(p(&long).common_match(&p(&other)), Shared::Unknown);
        let same = format!("*{}", "a".repeat(100));
        assert!(matches!(p(&same).common_match(&p(&same)), Shared::Yes(_)));
    }

    #[test]
    fn samples_match_and_differ_when_the_pattern_has_a_wildcard() {
        for src in ["a*b", "a?b", "x", "*"] {
            let pat = p(src);
            let s: Vec<String> = (0..5).map(|k| pat.sample(k)).collect();
            assert!(s.iter().all(|x| pat.matches(x)), "{src}: {s:?}");
            let distinct: std::collections::HashSet<_> = s.iter().collect();
            assert_eq!(distinct.len() > 1, pat.literal_prefix().1, "{src}");
        }
    }
}
