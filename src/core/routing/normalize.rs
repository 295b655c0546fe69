//! The spelling of a request, checked before any route is tried: a path that is not in its
//! one normal form matches nothing. Every request goes through here, so nothing allocates.

/// Strip query and fragment; `None` when the path is not normalized and must match nothing.
pub fn normalized_path(raw: &str) -> Option<&str> {
    let end = raw.find(['?', '#']).unwrap_or(raw.len());
    let path = &raw[..end];
    if !path.starts_with('/') {
        return None;
    }
    let body = path.strip_prefix('/').unwrap_or(path);
    let body = body.strip_suffix('/').unwrap_or(body);
    if body.is_empty() {
        return Some(path);
    }
    if body.split('/').any(|seg| flaw(seg).is_some()) {
        return None;
    }
    Some(path)
}

/// Why no normalized path can hold this segment, if none can. Each of these is read
/// differently by some upstream than by a route: Tomcat and Spring drop a `;` parameter
/// (`admin;x` serves `admin`, `..;` climbs), and an encoded `;` is refused too, since an
/// upstream that decodes before it strips would do the same.
pub(super) fn flaw(seg: &str) -> Option<&'static str> {
    if seg.is_empty() {
        Some("empty segment ('//')")
    } else if is_dot_segment(seg) {
        Some("dot segments ('.', '..', '..;') never match")
    } else if seg.contains(';') {
        Some("a ';' parameter never matches: requests that carry one match no route")
    } else if seg.contains('\\') || has_encoded(seg) {
        Some("backslashes and encoded '/', '\\' or ';' never match")
    } else if has_encoded_unreserved(seg) {
        Some("a percent-encoded letter, digit, '-', '.', '_' or '~' never matches (a normalized path spells them plainly)")
    } else {
        None
    }
}

/// `.` or `..`, also percent-encoded (`%2e`, `.%2E`, …) and with a `;` parameter (`..;x`);
/// checked without allocating, since every segment of every request path goes through here.
pub(super) fn is_dot_segment(seg: &str) -> bool {
    let seg = seg.split_once(';').map_or(seg, |(name, _)| name);
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

/// An encoded `/` (`%2F`), `\` (`%5C`) or `;` (`%3B`).
fn has_encoded(seg: &str) -> bool {
    seg.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1], w[2] | 0x20),
                (b'2', b'f') | (b'5', b'c') | (b'3', b'b')
            )
    })
}

/// A percent-encoded unreserved character (RFC 3986: ALPHA DIGIT `-` `.` `_` `~`), such as
/// `%61` for `a`. Its normal form is the plain character (RFC 3986 6.2.2.2, and what Envoy's
/// `normalize_path` produces), so `/v1/things/%61dmin/x` is `/v1/things/admin/x` to an upstream
/// that decodes: compared as written it would skip the strict route for a looser one.
/// Refused rather than decoded, as encoded dots are: a check then compares the bytes it was
/// given, without a buffer.
fn has_encoded_unreserved(seg: &str) -> bool {
    let hex = |b: u8| (b as char).to_digit(16);
    seg.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && matches!((hex(w[1]), hex(w[2])), (Some(h), Some(l))
                if { let c = (h * 16 + l) as u8; c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') })
    })
}

/// The bytes of a path segment with every `%XX` decoded, as an upstream that decodes the
/// path before it routes reads them; a `%` without two hex digits after it stays as it is.
/// Literal segments of routes are compared with this, so `a%3Ab` meets the literal `a:b`
/// (reserved characters, which normalizing proxies leave encoded, as much as unreserved
/// ones) and cannot skip that route for a looser one. An iterator, so nothing allocates.
pub(super) fn decoded(seg: &str) -> impl Iterator<Item = u8> + '_ {
    let b = seg.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        let c = *b.get(i)?;
        let hex = |at: usize| b.get(at).and_then(|h| (*h as char).to_digit(16));
        if c == b'%' {
            if let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) {
                i += 3;
                return Some((h * 16 + l) as u8);
            }
        }
        i += 1;
        Some(c)
    })
}

/// A literal segment of a route as requests are compared with it: percent-encodings decoded
/// (see [`decoded`]); `None` when that is not UTF-8.
pub(super) fn decoded_literal(seg: &str) -> Option<Box<str>> {
    if !seg.contains('%') {
        return Some(seg.into());
    }
    String::from_utf8(decoded(seg).collect())
        .ok()
        .map(String::into_boxed_str)
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
