//! Small helpers for user-facing text.

/// `n` followed by the singular or the plural noun: "1 claim", "2 claims".
pub fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plural_uses_the_singular_only_for_one() {
        assert_eq!(plural(0, "claim", "claims"), "0 claims");
        assert_eq!(plural(1, "claim", "claims"), "1 claim");
        assert_eq!(plural(2, "claim", "claims"), "2 claims");
    }
}
