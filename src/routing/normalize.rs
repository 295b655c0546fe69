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
