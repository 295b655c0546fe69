//! What a request path means, computed the slow and obvious way: RFC 3986 syntax-based
//! normalization (section 6.2.2) and the full percent-decoding an upstream framework applies
//! before it routes.

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 6.2.2.2: encoded unreserved characters decoded. (The case of the hex digits,
/// 6.2.2.1, is left as it is: routes compare decoded, so it never decides a route; the
/// normalize target checks that through the router.)
pub fn normalize_encodings(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                let c = h * 16 + l;
                if unreserved(c) {
                    out.push(c);
                } else {
                    out.extend_from_slice(&b[i..i + 3]);
                }
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    // Only ASCII was replaced by ASCII.
    String::from_utf8(out).expect("UTF-8 in, UTF-8 out")
}

/// RFC 3986 5.2.4, remove_dot_segments, step by step as the RFC writes it.
pub fn remove_dot_segments(path: &str) -> String {
    let mut input = path.to_owned();
    let mut output = String::new();
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest.to_owned();
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest.to_owned();
        } else if input.starts_with("/./") {
            input = input[2..].to_owned();
        } else if input == "/." {
            input = "/".to_owned();
        } else if input.starts_with("/../") || input == "/.." {
            input = format!("/{}", &input[if input == "/.." { 3 } else { 4 }..]);
            match output.rfind('/') {
                Some(i) => output.truncate(i),
                None => output.clear(),
            }
        } else if input == "." || input == ".." {
            input.clear();
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            output.push_str(&input[..end]);
            input = input[end..].to_owned();
        }
    }
    output
}

/// A path's RFC 3986 meaning: encoded unreserved characters decoded, then dot segments removed.
pub fn rfc_normal(path: &str) -> String {
    remove_dot_segments(&normalize_encodings(path))
}

/// Every `%XX` decoded, as most upstream frameworks decode a path before routing it; `None`
/// when the result is not UTF-8.
pub fn fully_decoded(path: &str) -> Option<String> {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_examples_normalize_as_the_rfc_says() {
        // RFC 3986 5.2.4's two worked examples.
        assert_eq!(remove_dot_segments("/a/b/c/./../../g"), "/a/g");
        assert_eq!(remove_dot_segments("mid/content=5/../6"), "mid/6");
        assert_eq!(rfc_normal("/%7Euser/%2e%2E/x%3a"), "/x%3a");
        assert_eq!(fully_decoded("/a%20b%3A"), Some("/a b:".to_owned()));
    }
}
