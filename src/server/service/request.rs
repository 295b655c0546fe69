//! Envoy's `CheckRequest`, read in place from the bytes it came in.
//!
//! A check reads eight things from a message that carries many more (peers, TLS, timestamps,
//! every header): the HTTP id, method, path and host, three request headers, the names of any
//! client-sent `x-claimgate-*` headers, and four context extensions. prost would decode all
//! of it into owned strings and hash maps first; here one pass over the bytes records where
//! those eight things are and skips the rest, so reading a request allocates nothing.
//!
//! It reads what prost would: a field repeated in the message is merged (the last scalar wins,
//! maps and lists add up), a map's later entry for a key wins, and every string read is checked
//! to be UTF-8. A message prost refuses may still be read here when the fault lies only in a
//! part claimgate skips; nothing skipped takes part in a decision. `tests/check_codec.rs` proves
//! the two equal on generated messages and on requests captured from Envoy.

use bytes::Bytes;

use super::wire::{Reader, Span, WireError, RECURSION_LIMIT};
use crate::core::response::is_ours;

// Field numbers, from envoy/service/auth/v3/{external_auth,attribute_context}.proto and
// envoy/config/core/v3/base.proto.
const CHECK_ATTRIBUTES: u32 = 1;
const ATTR_REQUEST: u32 = 4;
const ATTR_CONTEXT_EXTENSIONS: u32 = 10;
const REQUEST_HTTP: u32 = 2;
const HTTP_ID: u32 = 1;
const HTTP_METHOD: u32 = 2;
const HTTP_HEADERS: u32 = 3;
const HTTP_PATH: u32 = 4;
const HTTP_HOST: u32 = 5;
const HTTP_HEADER_MAP: u32 = 13;
const HEADER_MAP_HEADERS: u32 = 1;
const HEADER_KEY: u32 = 1;
const HEADER_VALUE: u32 = 2;
const HEADER_RAW_VALUE: u32 = 3;
const ENTRY_KEY: u32 = 1;
const ENTRY_VALUE: u32 = 2;

/// The three request headers a check reads.
const READ: [&str; 3] = ["authorization", ":authority", "x-request-id"];

/// Where a header's value is: a string of the message, or raw bytes that are not UTF-8
/// (read as U+FFFD, as before this reader existed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Text(Span),
    NotUtf8,
}

/// One encoding's view of the three headers read, and the `x-claimgate-*` names it carries.
#[derive(Debug, Default)]
struct HeaderSlots {
    /// In the map: the value of the (last) entry with this exact key. In the list: the
    /// first header with this name in any case.
    value: [Option<Value>; 3],
    /// How many headers had this name: more than one is an error for a single-value read.
    count: [u32; 3],
    /// Names that look like claimgate's own headers; almost always none, so seldom allocated.
    ours: Vec<Span>,
}

/// A `CheckRequest` read in place: the fields a check uses, as spans of the message bytes.
#[derive(Debug)]
pub struct RequestView {
    buf: Bytes,
    http: bool,
    id: Span,
    method: Span,
    path: Span,
    host: Span,
    map: HeaderSlots,
    list: HeaderSlots,
    /// Whether `header_map` held any header: then it, not the map, is the request's headers.
    list_used: bool,
    ext: [Option<Span>; 4],
}

/// The context extensions a check reads, in `RequestView::ext`'s order.
const EXTENSIONS: [&str; 4] = ["resource", "role", "enforcement", "parent"];

/// A header that should come once came more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeated;

/// The request's headers as Envoy sent them, in whichever encoding it used.
#[derive(Clone, Copy)]
pub struct Headers<'a> {
    view: &'a RequestView,
    slots: &'a HeaderSlots,
    /// The list encoding counts repeats; the map cannot have any.
    list: bool,
}

impl RequestView {
    /// Read `buf`, one `CheckRequest` message.
    pub fn parse(buf: Bytes) -> Result<RequestView, WireError> {
        // Read while the view is filled; the bytes move into it at the end.
        let mut view = RequestView {
            buf: Bytes::new(),
            http: false,
            id: Span::default(),
            method: Span::default(),
            path: Span::default(),
            host: Span::default(),
            map: HeaderSlots::default(),
            list: HeaderSlots::default(),
            list_used: false,
            ext: [None; 4],
        };
        let mut r = Reader::new(&buf);
        let limit = RECURSION_LIMIT;
        while let Some((tag, wt)) = r.key()? {
            match tag {
                CHECK_ATTRIBUTES => {
                    let span = r.delimited(wt)?;
                    view.attributes(r.nested(span), limit - 1)?;
                }
                _ => r.skip(tag, wt, limit)?,
            }
        }
        view.buf = buf;
        Ok(view)
    }

    fn attributes(&mut self, mut r: Reader<'_>, limit: u32) -> Result<(), WireError> {
        while let Some((tag, wt)) = r.key()? {
            match tag {
                ATTR_REQUEST => {
                    let span = r.delimited(wt)?;
                    let mut req = r.nested(span);
                    while let Some((tag, wt)) = req.key()? {
                        match tag {
                            REQUEST_HTTP => {
                                let span = req.delimited(wt)?;
                                self.http(req.nested(span), limit - 2)?;
                            }
                            _ => req.skip(tag, wt, limit - 1)?,
                        }
                    }
                }
                ATTR_CONTEXT_EXTENSIONS => {
                    let span = r.delimited(wt)?;
                    let (key, value) = entry(r.nested(span), limit - 1)?;
                    let key = r.slice(key);
                    if let Some(i) = EXTENSIONS.iter().position(|e| e.as_bytes() == key) {
                        self.ext[i] = Some(value);
                    }
                }
                _ => r.skip(tag, wt, limit)?,
            }
        }
        Ok(())
    }

    fn http(&mut self, mut r: Reader<'_>, limit: u32) -> Result<(), WireError> {
        self.http = true;
        while let Some((tag, wt)) = r.key()? {
            match tag {
                HTTP_ID => self.id = r.string(wt)?,
                HTTP_METHOD => self.method = r.string(wt)?,
                HTTP_PATH => self.path = r.string(wt)?,
                HTTP_HOST => self.host = r.string(wt)?,
                HTTP_HEADERS => {
                    let span = r.delimited(wt)?;
                    let (key, value) = entry(r.nested(span), limit - 1)?;
                    let name = r.slice(key);
                    // A map has one value per key: a later entry replaces an earlier one.
                    if let Some(i) = READ.iter().position(|h| h.as_bytes() == name) {
                        self.map.value[i] = Some(Value::Text(value));
                        self.map.count[i] = 1;
                    }
                    if is_ours(name) {
                        self.map.ours.push(key);
                    }
                }
                HTTP_HEADER_MAP => {
                    let span = r.delimited(wt)?;
                    self.header_map(r.nested(span), limit - 1)?;
                }
                _ => r.skip(tag, wt, limit)?,
            }
        }
        Ok(())
    }

    fn header_map(&mut self, mut r: Reader<'_>, limit: u32) -> Result<(), WireError> {
        while let Some((tag, wt)) = r.key()? {
            match tag {
                HEADER_MAP_HEADERS => {
                    let span = r.delimited(wt)?;
                    self.list_used = true;
                    self.header_value(r.nested(span), limit - 1)?;
                }
                _ => r.skip(tag, wt, limit)?,
            }
        }
        Ok(())
    }

    /// One `HeaderValue`: its value is `raw_value` when set, else `value`.
    fn header_value(&mut self, mut r: Reader<'_>, limit: u32) -> Result<(), WireError> {
        let (mut key, mut value, mut raw) = (Span::default(), Span::default(), Span::default());
        while let Some((tag, wt)) = r.key()? {
            match tag {
                HEADER_KEY => key = r.string(wt)?,
                HEADER_VALUE => value = r.string(wt)?,
                HEADER_RAW_VALUE => raw = r.delimited(wt)?,
                _ => r.skip(tag, wt, limit)?,
            }
        }
        let name = r.slice(key);
        if let Some(i) = READ
            .iter()
            .position(|h| name.eq_ignore_ascii_case(h.as_bytes()))
        {
            if self.list.count[i] == 0 {
                self.list.value[i] = Some(match raw.is_empty() {
                    true => Value::Text(value),
                    false if std::str::from_utf8(r.slice(raw)).is_ok() => Value::Text(raw),
                    false => Value::NotUtf8,
                });
            }
            self.list.count[i] = self.list.count[i].saturating_add(1);
        }
        if is_ours(name) {
            self.list.ours.push(key);
        }
        Ok(())
    }

    fn text(&self, span: Span) -> &str {
        // Every span read as text was checked to be UTF-8 when it was read.
        std::str::from_utf8(span.of(&self.buf)).unwrap_or_default()
    }

    /// Whether Envoy sent HTTP attributes (the HTTP ext_authz filter always does).
    pub fn has_http(&self) -> bool {
        self.http
    }

    /// Envoy's id for the HTTP request.
    pub fn id(&self) -> &str {
        self.text(self.id)
    }

    /// The request method.
    pub fn method(&self) -> &str {
        self.text(self.method)
    }

    /// The request path, with its query.
    pub fn path(&self) -> &str {
        self.text(self.path)
    }

    /// The request's host, as Envoy filled it in.
    pub fn host(&self) -> &str {
        self.text(self.host)
    }

    /// The headers, when Envoy sent HTTP attributes.
    pub fn headers(&self) -> Option<Headers<'_>> {
        self.http.then_some(Headers {
            view: self,
            slots: if self.list_used {
                &self.list
            } else {
                &self.map
            },
            list: self.list_used,
        })
    }

    /// A context extension the route set: `resource`, `role`, `enforcement` or `parent`.
    pub fn extension(&self, name: &str) -> Option<&str> {
        let i = EXTENSIONS.iter().position(|e| *e == name)?;
        self.ext[i].map(|s| self.text(s))
    }
}

impl<'a> Headers<'a> {
    /// The single value of `authorization`, `:authority` or `x-request-id`; `Err` when the
    /// header came more than once.
    pub fn single(&self, name: &str) -> Result<Option<&'a str>, Repeated> {
        let Some(i) = READ.iter().position(|h| *h == name) else {
            return Ok(None);
        };
        if self.list && self.slots.count[i] > 1 {
            return Err(Repeated);
        }
        Ok(self.slots.value[i].map(|v| match v {
            Value::Text(s) => self.view.text(s),
            Value::NotUtf8 => "\u{fffd}",
        }))
    }

    /// The names of every header that looks like one of claimgate's own, as sent.
    pub fn ours(&self) -> impl Iterator<Item = &'a str> + 'a {
        let view = self.view;
        self.slots.ours.iter().map(move |s| view.text(*s))
    }
}

/// A map entry's key and value, each the last given or empty.
fn entry(mut r: Reader<'_>, limit: u32) -> Result<(Span, Span), WireError> {
    let (mut key, mut value) = (Span::default(), Span::default());
    while let Some((tag, wt)) = r.key()? {
        match tag {
            ENTRY_KEY => key = r.string(wt)?,
            ENTRY_VALUE => value = r.string(wt)?,
            _ => r.skip(tag, wt, limit)?,
        }
    }
    Ok((key, value))
}
