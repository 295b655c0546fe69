//! The `like` glob matcher (`claimgate::core::identity::Pattern`) against a naive reference.
//!
//! - A pattern compiles exactly when the reference finds it valid (length, wildcard count,
//!   escapes), and then matches exactly the values the reference matches.
//! - What the review and the index read from a pattern holds for the value too: a match
//!   starts with the literal prefix, a pattern of stars matches everything, a string
//!   `common_match` offers matches both patterns, and `No` means the value matches not both.
//! - Linear: values grow to tens of KiB against patterns of up to 16 wildcards; the matcher
//!   has no step counter, so a blow-up shows as a libFuzzer timeout (`scripts/fuzz.sh` passes
//!   `-timeout`), never as a wall-clock assert here.
//!
//! The input is a mode byte, then pattern, value and a second pattern separated by NUL
//! bytes: as text (mode 0), as letters of a small alphabet (1), or with the value a short
//! unit repeated up to 8191 times (2).
#![no_main]

use claimgate::core::identity::{Pattern, PatternError, MAX_PATTERN_BYTES, MAX_WILDCARDS};
use claimgate_fuzz::pattern_reference as reference;
use libfuzzer_sys::fuzz_target;

/// Characters that make matching interesting: wildcards, escapes, multi-byte text.
const ALPHABET: [char; 8] = ['a', 'b', '*', '?', '\\', 'é', '/', ':'];

fn small(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()])
        .collect()
}

/// The input's parts: pattern, value and a second pattern, separated by NUL bytes.
fn parts(data: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let mut it = data.splitn(3, |b| *b == 0);
    let mut next = || it.next().unwrap_or_default();
    (next(), next(), next())
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let (pattern, value, other) = parts(rest);
    let (pattern, other, value) = match mode % 3 {
        // Text as written (how the committed seeds are written).
        0 => (
            String::from_utf8_lossy(pattern).into_owned(),
            String::from_utf8_lossy(other).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ),
        // Bytes read as letters of a small alphabet, so that pattern and value meet often.
        1 => (small(pattern), small(other), small(value)),
        // A short unit repeated into a long value: adversarial for a backtracking matcher.
        _ => {
            let (times, unit) = match value {
                [a, b, unit @ ..] => (usize::from(u16::from_le_bytes([*a, *b]) % 8192), unit),
                _ => (0, value),
            };
            let unit = small(&unit[..unit.len().min(8)]);
            (
                small(pattern),
                small(other),
                unit.repeat(times) + &small(other),
            )
        }
    };
    let compiled = Pattern::compile(&pattern);
    let valid = reference::validity(&pattern, MAX_PATTERN_BYTES, MAX_WILDCARDS);
    match (&compiled, &valid) {
        (Ok(_), Ok(())) => {}
        (Err(PatternError::TooLong { .. }), Err(reference::Invalid::TooLong))
        | (Err(PatternError::TooManyWildcards { .. }), Err(reference::Invalid::TooManyWildcards))
        | (Err(PatternError::BadEscape { .. }), Err(reference::Invalid::BadEscape)) => {}
        _ => panic!("{pattern:?}: compiled {compiled:?}, reference {valid:?}"),
    }
    let Ok(p) = compiled else { return };
    let matched = p.matches(&value);
    // The reference is a dynamic programme over pattern × value: affordable for most inputs;
    // the longest values are only matched (a blow-up is a timeout).
    if pattern.len().saturating_mul(value.len()) <= 1 << 20 {
        assert_eq!(
            matched,
            reference::matches(&pattern, &value),
            "{pattern:?} on {value:?}"
        );
    }
    let (prefix, wild) = p.literal_prefix();
    if matched {
        assert!(value.starts_with(&prefix), "{pattern:?} {value:?}");
    }
    if !wild {
        assert_eq!(matched, value == prefix, "{pattern:?} {value:?}");
    }
    if p.matches_everything() {
        assert!(matched, "{pattern:?} matches everything but not {value:?}");
    }
    for k in [0, 1, 7] {
        let sample = p.sample(k);
        assert!(p.matches(&sample), "{pattern:?}: sample {sample:?}");
    }
    if let Ok(q) = Pattern::compile(&other) {
        if p.surely_within(&q) {
            assert!(
                !matched || q.matches(&value),
                "{pattern:?} within {other:?}"
            );
        }
        match p.common_match(&q) {
            claimgate::core::identity::Shared::Yes(s) => {
                assert!(
                    p.matches(&s) && q.matches(&s),
                    "{pattern:?} {other:?} {s:?}"
                );
            }
            claimgate::core::identity::Shared::No => {
                assert!(
                    !(matched && q.matches(&value)),
                    "{pattern:?} {other:?} {value:?}"
                );
            }
            claimgate::core::identity::Shared::Unknown => {}
        }
    }
});
