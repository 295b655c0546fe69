//! Quoted values in diagnostics, cut to a short excerpt.
//!
//! Parsers quote the value they refused (`invalid type: string "…"`), and a diagnostic is
//! printed to CI logs, pull-request annotations and the server's log. Whatever a file holds
//! (a token pasted by mistake, a secret), a diagnostic shows at most the start of it.

/// The most characters of a quoted value a diagnostic shows.
pub const MAX_QUOTED_CHARS: usize = 40;

/// `message` with every `"…"` or `` `…` `` quotation longer than [`MAX_QUOTED_CHARS`] cut to
/// that many characters and `…`; an unclosed quotation is cut the same way.
pub fn excerpt_quotes(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(256));
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '"' && c != '`' {
            continue;
        }
        let mut escaped = false;
        let mut closed = false;
        for (shown, q) in chars.by_ref().enumerate() {
            if q == c && !escaped {
                closed = true;
                break;
            }
            // Debug formatting escapes quotes inside a value: `\"` does not end it.
            escaped = c == '"' && q == '\\' && !escaped;
            if shown < MAX_QUOTED_CHARS {
                out.push(q);
            } else if shown == MAX_QUOTED_CHARS {
                out.push('…');
            }
        }
        if closed {
            out.push(c);
        }
    }
    out
}
