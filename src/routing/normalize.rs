//! The spelling of a request, checked before any route is tried: a path that is not in its
//! one normal form matches nothing. Every request goes through here, so nothing allocates.

/// Strip query and fragment; `None` when the path is not normalized and must match nothing.
pub fn normalized_path(raw: &str) -> Option<&str> {
    let end = raw.find(['?', '#']).unwrap_or(raw.len());
    let path = &raw[..end];
    if !path.starts_with('/') || path.contains('\\') {
        return None;
    }
    let body = path.strip_prefix('/').unwrap_or(path);
    let body = body.strip_suffix('/').unwrap_or(body);
    if body.is_empty() {
        return Some(path);
    }
    for seg in body.split('/') {
        if seg.is_empty() || is_dot_segment(seg) || has_encoded_separator(seg) {
            return None;
        }
    }
    Some(path)
}

/// `.` or `..`, also percent-encoded (`%2e`, `.%2E`, …); checked without allocating, since
/// every segment of every request path goes through here.
pub(super) fn is_dot_segment(seg: &str) -> bool {
    let b = seg.as_bytes();
    let (mut i, mut dots) = (0, 0);
    while i < b.len() {
        if b[i] == b'.' {
            i += 1;
        } else if b[i] == b'%'
            && b.get(i + 1) == Some(&b'2')
            && matches!(b.get(i + 2), Some(b'e' | b'E'))
        {
            i += 3;
        } else {
            return false;
        }
        dots += 1;
        if dots > 2 {
            return false;
        }
    }
    dots > 0
}

fn has_encoded_separator(seg: &str) -> bool {
    let b = seg.as_bytes();
    b.windows(3).any(|w| {
        w[0] == b'%' && w[1] == b'2' && (w[2] | 0x20) == b'f'
            || w[0] == b'%' && w[1] == b'5' && (w[2] | 0x20) == b'c'
    })
}

/// The host as a `host:` route compares it: without its port and one trailing dot. Letter
/// case is left to the comparison (`eq_ignore_ascii_case`), so nothing is copied.
pub fn normalized_host(raw: &str) -> &str {
    let host = if raw.starts_with('[') {
        // An IPv6 literal: a port can only follow the closing bracket.
        match raw.find(']') {
            Some(end) if is_port(&raw[end + 1..]) => &raw[..=end],
            _ => raw,
        }
    } else {
        match raw.split_once(':') {
            Some((h, port)) if is_port(&raw[h.len()..]) && !port.contains(':') => h,
            _ => raw,
        }
    };
    host.strip_suffix('.').unwrap_or(host)
}

/// Nothing, or `:` and digits (RFC 3986 allows an empty port).
fn is_port(s: &str) -> bool {
    s.is_empty()
        || s.strip_prefix(':')
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// A configured `host:` in the form requests are compared in: lower case, no trailing dot.
/// A port is refused rather than dropped: requests lose theirs, so it could never match.
pub(super) fn config_host(h: &str) -> Result<String, &'static str> {
    let lower = h.to_ascii_lowercase();
    let host = lower.strip_suffix('.').unwrap_or(&lower);
    let valid = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').is_some_and(|ip| {
            !ip.is_empty()
                && ip
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }),
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        }
    };
    if valid {
        Ok(host.to_owned())
    } else if host.contains(':') {
        Err("a host route names no port (requests are compared without theirs); an IPv6 address goes in brackets")
    } else {
        Err("not a host name or IP address (ASCII letters, digits, '-', '.', '_'; IPv6 in brackets; no wildcards)")
    }
}
