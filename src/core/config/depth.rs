//! How deeply a YAML file nests its collections, checked before a parser sees it.
//!
//! The YAML parser behind `serde_yaml` keeps one entry per open flow collection and walks them
//! all for every token, so its time grows with the square of the nesting depth: `routes:
//! [[[…]]]`, 80,000 levels in a 160 KB file, took 26 s, and again on every poll. A
//! configuration needs a handful of levels; a file deeper than [`MAX_NESTING`] is refused.
//!
//! Most files are cleared without tokenizing them: nesting needs either a flow collection (a
//! `[` or `{` where a node can start) or indentation (a block collection is indented at least
//! one column deeper than the one two levels up), so a file with few such brackets and
//! shallow lines cannot be deep. Any other file is tokenized up to the first place where it
//! is too deep, which costs time in proportion to its size.

use yaml_rust2::scanner::{Scanner, TokenType};

/// The deepest nesting of collections (block or flow) a configuration file may have.
pub const MAX_NESTING: usize = 64;

/// `Err((line, col, message))` when `text` nests deeper than [`MAX_NESTING`], or cannot be
/// tokenized up to the depth it reaches.
pub(super) fn check(text: &str) -> Result<(), (usize, usize, String)> {
    if shallow(text.as_bytes()) {
        return Ok(());
    }
    let mut scanner = Scanner::new(text.chars());
    let mut depth = 0usize;
    for token in &mut scanner {
        match token.1 {
            TokenType::BlockSequenceStart
            | TokenType::BlockMappingStart
            | TokenType::FlowSequenceStart
            | TokenType::FlowMappingStart => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err((token.0.line().max(1), token.0.col() + 1, too_deep()));
                }
            }
            TokenType::BlockEnd | TokenType::FlowSequenceEnd | TokenType::FlowMappingEnd => {
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
    // What cannot be tokenized cannot be cleared either: past the error, the parser may
    // read on where this scan did not.
    match scanner.get_error() {
        None => Ok(()),
        Some(e) => {
            let m = e.marker();
            // The tokenizer looks ahead through a flow collection and has a limit of its own.
            let message = if e.info().contains("recursion limit") {
                too_deep()
            } else {
                format!("invalid YAML: {}", e.info())
            };
            let (line, col) = super::marks::within(text, m.line(), m.col() + 1);
            Err((line, col, message))
        }
    }
}

fn too_deep() -> String {
    format!("collections are nested deeper than {MAX_NESTING} levels; the file is refused before it is parsed")
}

/// Whether `text` certainly nests no deeper than [`MAX_NESTING`], by a bound that never
/// undercounts: every bracket that could open a flow collection, plus twice the deepest
/// column at which a block collection could start.
fn shallow(text: &[u8]) -> bool {
    let mut brackets = 0usize;
    let mut column = 0usize;
    for line in text.split(|&b| b == b'\n') {
        // Leading spaces, then compact `- ` / `? ` indicators: where the line's node starts.
        let mut at = line.iter().take_while(|&&b| b == b' ').count();
        while matches!(line.get(at), Some(b'-' | b'?'))
            && matches!(line.get(at + 1), None | Some(b' ' | b'\t' | b'\r'))
        {
            at += 1;
            at += line[at..]
                .iter()
                .take_while(|&&b| b == b' ' || b == b'\t')
                .count();
        }
        column = column.max(at);
        // A bracket right after a plain scalar's character opens nothing: in block context it
        // is part of the scalar, in flow context the parser stops there with an error.
        brackets += line
            .iter()
            .enumerate()
            .filter(|&(i, &b)| {
                (b == b'[' || b == b'{')
                    && (i == 0
                        || !matches!(line[i - 1], b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'/' | b'*' | b'-'))
            })
            .count();
        if brackets + 2 * column + 1 > MAX_NESTING {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested_flow(levels: usize) -> String {
        format!("routes: {}{}\n", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn flow_nesting_deeper_than_the_limit_is_refused_where_it_gets_too_deep() {
        let (line, col, msg) = check(&nested_flow(80_000)).unwrap_err();
        assert_eq!(line, 1);
        assert!(col > 9 + MAX_NESTING && col < 1_000, "{col}");
        assert!(msg.contains("deeper than 64 levels"), "{msg}");
        // `routes:` is a mapping (1), then 63 brackets fit and the 64th does not.
        assert!(check(&nested_flow(MAX_NESTING - 1)).is_ok());
        let (_, col, _) = check(&nested_flow(MAX_NESTING)).unwrap_err();
        assert_eq!(col, 9 + MAX_NESTING - 1);
    }

    #[test]
    fn block_nesting_deeper_than_the_limit_is_refused() {
        let compact = format!("routes:\n{}x\n", "- ".repeat(80_000));
        let (line, _, msg) = check(&compact).unwrap_err();
        assert_eq!(line, 2);
        assert!(msg.contains("deeper than 64 levels"), "{msg}");
        let mut indented = String::new();
        for level in 0..100 {
            indented.push_str(&format!("{}k{level}:\n", " ".repeat(level)));
        }
        assert!(check(&indented).is_err());
    }

    #[test]
    fn usual_configurations_pass_whether_cleared_cheaply_or_tokenized() {
        let few = "routes:\n  - path: /v1/{org}/{*rest}\n    methods: [GET]\n    resource: model:{org}\n    role: viewer\n";
        assert!(shallow(few.as_bytes()));
        assert!(check(few).is_ok());
        // Many flow collections, each shallow: tokenized, and accepted.
        let many = format!(
            "routes:\n{}",
            "  - {path: '/a/[x]', methods: [GET, POST], claims: {a: [1, {b: c}]}}\n".repeat(500)
        );
        assert!(!shallow(many.as_bytes()));
        assert!(check(&many).is_ok());
    }

    #[test]
    fn brackets_in_quotes_comments_and_block_scalars_do_not_hide_nesting() {
        for prefix in ["a: ']]]]'\n", "a: \"]]]]\"\n", "# ]]]]\n", "a: |\n  ]]]]\n"] {
            let text = format!("{prefix}{}", nested_flow(1_000));
            assert!(check(&text).is_err(), "{prefix:?}");
        }
    }
}
