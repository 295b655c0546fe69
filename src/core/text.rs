//! Small helpers for user-facing text.

/// `n` followed by the singular or the plural noun: "1 claim", "2 claims".
pub fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A URL as it may be shown (logs, `/readyz`, `explain`, `diff`): its userinfo and its query
/// and fragment, which may carry credentials (`user:password@`, `?access_token=`), become
/// `***`. Works on text that does not parse as a URL too.
pub fn redact_url(raw: &str) -> String {
    let (scheme, rest) = match raw.find("://") {
        Some(i) => raw.split_at(i + 3),
        None => ("", raw),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let mut out = String::with_capacity(raw.len());
    out.push_str(scheme);
    match authority.rfind('@') {
        Some(at) => {
            out.push_str("***");
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    match tail.find(['?', '#']) {
        Some(q) => {
            out.push_str(&tail[..q]);
            out.push_str(&tail[q..q + 1]);
            out.push_str("***");
        }
        None => out.push_str(tail),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_userinfo_query_and_fragment_only() {
        let cases = [
            (
                "https://idp.example.com/keys",
                "https://idp.example.com/keys",
            ),
            (
                "https://user:pw@idp.example.com:8443/keys?access_token=t#f",
                "https://***@idp.example.com:8443/keys?***",
            ),
            ("https://idp.example.com?x=1", "https://idp.example.com?***"),
            (
                "https://idp.example.com/k#frag",
                "https://idp.example.com/k#***",
            ),
            ("https://a@b@idp/", "https://***@idp/"),
            ("not a url?secret", "not a url?***"),
            ("https://idp/path@x", "https://idp/path@x"),
        ];
        for (raw, shown) in cases {
            assert_eq!(redact_url(raw), shown, "{raw}");
        }
    }

    #[test]
    fn plural_uses_the_singular_only_for_one() {
        assert_eq!(plural(0, "claim", "claims"), "0 claims");
        assert_eq!(plural(1, "claim", "claims"), "1 claim");
        assert_eq!(plural(2, "claim", "claims"), "2 claims");
    }
}
