//! The glob semantics of `like`, written the obvious way: AWS `StringLike` (`*` any run of
//! characters, `?` one character, `\*` `\?` `\\` literals), anchored, case-sensitive.

/// Why the reference finds a pattern invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// More than the byte limit.
    TooLong,
    /// More than the wildcard limit.
    TooManyWildcards,
    /// A backslash before anything but `*`, `?`, `\`, or at the end.
    BadEscape,
}

/// One element of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom {
    Char(char),
    One,
    Star,
}

fn atoms(pattern: &str) -> Result<Vec<Atom>, Invalid> {
    let mut out = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '\\' => match chars.next() {
                Some(e @ ('*' | '?' | '\\')) => Atom::Char(e),
                _ => return Err(Invalid::BadEscape),
            },
            '*' => Atom::Star,
            '?' => Atom::One,
            c => Atom::Char(c),
        });
    }
    Ok(out)
}

/// Whether `pattern` is a valid pattern under these limits, checked in the matcher's order
/// (length first, then escapes, then wildcards).
pub fn validity(pattern: &str, max_bytes: usize, max_wildcards: usize) -> Result<(), Invalid> {
    if pattern.len() > max_bytes {
        return Err(Invalid::TooLong);
    }
    let atoms = atoms(pattern)?;
    if atoms.iter().filter(|a| !matches!(a, Atom::Char(_))).count() > max_wildcards {
        return Err(Invalid::TooManyWildcards);
    }
    Ok(())
}

/// Whether `value` matches `pattern` (which must be valid): a table of which pattern prefix
/// matches which value prefix, one row per pattern atom.
pub fn matches(pattern: &str, value: &str) -> bool {
    let Ok(atoms) = atoms(pattern) else {
        return false;
    };
    let chars: Vec<char> = value.chars().collect();
    // row[j]: the atoms so far match the first j characters.
    let mut row = vec![false; chars.len() + 1];
    row[0] = true;
    for atom in atoms {
        let mut next = vec![false; chars.len() + 1];
        for j in 0..=chars.len() {
            next[j] = match atom {
                // Either the star takes nothing, or it takes one more character.
                Atom::Star => row[j] || (j > 0 && next[j - 1]),
                Atom::One => j > 0 && row[j - 1],
                Atom::Char(c) => j > 0 && row[j - 1] && chars[j - 1] == c,
            };
        }
        row = next;
    }
    row[chars.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_matches_as_string_like_does() {
        assert!(matches("a*b", "axxb") && !matches("a*b", "axxc"));
        assert!(matches("?", "é") && !matches("?", ""));
        assert!(matches(r"\*", "*") && !matches(r"\*", "x"));
        assert!(matches("", "") && matches("*", ""));
        assert_eq!(validity(r"a\b", 1024, 16), Err(Invalid::BadEscape));
        assert_eq!(
            validity(&"*".repeat(17), 1024, 16),
            Err(Invalid::TooManyWildcards)
        );
    }
}
