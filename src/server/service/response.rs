//! Envoy's answer to a check, written straight into the response buffer: an allow's headers,
//! removals and dynamic metadata, or a denial's status, headers and JSON body. Built from the
//! decision alone; nothing here decides.
//!
//! An `Answer` owns what it needs (the decision shares the snapshot's names) and is encoded
//! as a `CheckResponse` without building prost values first: no maps, no owned copies of
//! header names. `reference.rs` builds the same response with prost, and the tests prove the
//! two decode equal.

use bytes::BufMut;

use super::request::Headers;
use super::wire::{
    delimited_len, put_bytes, put_delimited_head, put_varint_field, varint_field_len,
};
use crate::core::decision::{Allow, Deny, Reason};
use crate::core::decision_id;
use crate::core::response::{self, deny_headers, Fields};

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

// gRPC status codes (google.rpc.Code) used in CheckResponse.status; OK (0) is an empty status.
const PERMISSION_DENIED: u64 = 7;
const UNAVAILABLE: u64 = 14;
const UNAUTHENTICATED: u64 = 16;

/// `HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD`: a header claimgate sets replaces any the
/// client sent, never joins it.
const OVERWRITE_IF_EXISTS_OR_ADD: u64 = 2;

// Field numbers, from envoy/service/auth/v3/external_auth.proto, envoy/config/core/v3/base.proto,
// envoy/type/v3/http_status.proto, google/rpc/status.proto and google/protobuf/struct.proto.
const RESPONSE_STATUS: u32 = 1;
const RESPONSE_DENIED: u32 = 2;
const RESPONSE_OK: u32 = 3;
const RESPONSE_METADATA: u32 = 4;
const STATUS_CODE: u32 = 1;
const STATUS_MESSAGE: u32 = 2;
const DENIED_STATUS: u32 = 1;
const DENIED_HEADERS: u32 = 2;
const DENIED_BODY: u32 = 3;
const HTTP_STATUS_CODE: u32 = 1;
const OK_HEADERS: u32 = 2;
const OK_HEADERS_TO_REMOVE: u32 = 5;
const OPTION_HEADER: u32 = 1;
const OPTION_APPEND_ACTION: u32 = 3;
const HEADER_KEY: u32 = 1;
const HEADER_VALUE: u32 = 2;
const STRUCT_FIELDS: u32 = 1;
const ENTRY_KEY: u32 = 1;
const ENTRY_VALUE: u32 = 2;
const VALUE_STRING: u32 = 3;

/// What an allow puts in Envoy's dynamic metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllowMetadata {
    /// Every field the headers carry (identity, SSO, subject, resource, role), the decision
    /// id, and a dry run's reason: what the shipped access log prints.
    #[default]
    Full,
    /// Only the decision id (and a dry run's reason): Envoy's worker merges a much smaller
    /// struct per request, and the access log still joins the decision log by id.
    DecisionId,
}

impl AllowMetadata {
    /// `full` or `decision-id`, as on the command line.
    pub fn parse(s: &str) -> Option<AllowMetadata> {
        match s {
            "full" => Some(AllowMetadata::Full),
            "decision-id" => Some(AllowMetadata::DecisionId),
            _ => None,
        }
    }
}

/// A spelling that is not `full` or `decision-id`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not full or decision-id")]
pub struct UnknownAllowMetadata(pub String);

impl std::str::FromStr for AllowMetadata {
    type Err = UnknownAllowMetadata;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AllowMetadata::parse(s).ok_or_else(|| UnknownAllowMetadata(s.to_owned()))
    }
}

/// Envoy's answer to one check, ready to be written.
#[derive(Debug)]
pub struct Answer {
    id: [u8; decision_id::LEN],
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Allow {
        allow: Allow,
        /// Client-sent `x-claimgate-*` headers claimgate does not set: lowercase, sorted,
        /// once each. Almost always empty, and then never allocated.
        remove: Vec<Box<str>>,
        metadata: AllowMetadata,
    },
    Deny {
        reason: Reason,
        status: u16,
        www_authenticate: Option<&'static str>,
        body: String,
    },
}

impl Answer {
    /// The answer to an allowed request whose headers were `headers`.
    pub(super) fn allow(
        allow: Allow,
        headers: Option<&Headers<'_>>,
        id: [u8; decision_id::LEN],
        metadata: AllowMetadata,
    ) -> Answer {
        let set = Fields::of(&allow, "");
        let ours = |n: &str| set.all().iter().any(|(h, _, _)| h.eq_ignore_ascii_case(n));
        let mut remove: Vec<Box<str>> = headers
            .map(|h| {
                h.ours()
                    .filter(|n| !ours(n))
                    // Envoy's own spelling of the name: lowercase, underscores kept.
                    .map(|n| n.to_ascii_lowercase().into_boxed_str())
                    .collect()
            })
            .unwrap_or_default();
        remove.sort();
        remove.dedup();
        Answer {
            id,
            kind: Kind::Allow {
                allow,
                remove,
                metadata,
            },
        }
    }

    /// The answer to a denied request.
    pub(super) fn deny(deny: &Deny, request_id: &str, id: [u8; decision_id::LEN]) -> Answer {
        let status = deny.reason.status();
        let www_authenticate = response::www_authenticate(deny);
        let body = response::deny_body(deny, request_id, id_str(&id));
        Answer {
            id,
            kind: Kind::Deny {
                reason: deny.reason,
                status,
                www_authenticate,
                body,
            },
        }
    }

    /// The decision id this answer carries.
    pub fn decision_id(&self) -> &str {
        id_str(&self.id)
    }

    /// The encoded `CheckResponse`'s length in bytes.
    pub fn encoded_len(&self) -> usize {
        match &self.kind {
            Kind::Allow {
                allow,
                remove,
                metadata,
            } => {
                let set = Fields::of(allow, self.decision_id());
                let (ok, meta) = allow_lens(&set, remove, *metadata);
                delimited_len(RESPONSE_STATUS, 0)
                    + delimited_len(RESPONSE_OK, ok)
                    + delimited_len(RESPONSE_METADATA, meta)
            }
            Kind::Deny {
                reason,
                status,
                www_authenticate,
                body,
            } => {
                let (st, denied, meta) = deny_lens(
                    *reason,
                    *status,
                    *www_authenticate,
                    body,
                    self.decision_id(),
                );
                delimited_len(RESPONSE_STATUS, st)
                    + delimited_len(RESPONSE_DENIED, denied)
                    + delimited_len(RESPONSE_METADATA, meta)
            }
        }
    }

    /// Write the `CheckResponse`.
    pub fn encode(&self, out: &mut impl BufMut) {
        let id = self.decision_id();
        match &self.kind {
            Kind::Allow {
                allow,
                remove,
                metadata,
            } => {
                let set = Fields::of(allow, id);
                let (ok, meta) = allow_lens(&set, remove, *metadata);
                // An explicit OK: an empty CheckResponse is also OK to Envoy, but says less.
                put_delimited_head(out, RESPONSE_STATUS, 0);
                put_delimited_head(out, RESPONSE_OK, ok);
                for (h, _, v) in set.headers() {
                    put_header_option(out, OK_HEADERS, h, v);
                }
                for name in remove {
                    put_bytes(out, OK_HEADERS_TO_REMOVE, name.as_bytes());
                }
                // Envoy files these under its filter's namespace (`envoy.filters.http.ext_authz`),
                // so an access log reads `%DYNAMIC_METADATA(envoy.filters.http.ext_authz:identity)%`.
                put_delimited_head(out, RESPONSE_METADATA, meta);
                for (_, field, v) in self::metadata(&set, *metadata) {
                    put_entry(out, field, v);
                }
            }
            Kind::Deny {
                reason,
                status,
                www_authenticate,
                body,
            } => {
                let (st, denied, meta) = deny_lens(*reason, *status, *www_authenticate, body, id);
                put_delimited_head(out, RESPONSE_STATUS, st);
                put_varint_field(out, STATUS_CODE, grpc_code(*status));
                put_bytes(out, STATUS_MESSAGE, reason.code().as_bytes());
                put_delimited_head(out, RESPONSE_DENIED, denied);
                put_delimited_head(
                    out,
                    DENIED_STATUS,
                    varint_field_len(HTTP_STATUS_CODE, u64::from(*status)),
                );
                put_varint_field(out, HTTP_STATUS_CODE, u64::from(*status));
                for (h, v) in deny_headers(*www_authenticate, id) {
                    put_header_option(out, DENIED_HEADERS, h, v);
                }
                put_bytes(out, DENIED_BODY, body.as_bytes());
                put_delimited_head(out, RESPONSE_METADATA, meta);
                put_entry(out, "reason", reason.code());
                put_entry(out, "decision_id", id);
            }
        }
    }

    /// The encoded `CheckResponse`, in a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out
    }
}

fn id_str(id: &[u8; decision_id::LEN]) -> &str {
    // Written by `DecisionId::encode`: ASCII hex and dashes.
    std::str::from_utf8(id).unwrap_or_default()
}

fn grpc_code(status: u16) -> u64 {
    match status {
        401 => UNAUTHENTICATED,
        403 => PERMISSION_DENIED,
        _ => UNAVAILABLE,
    }
}

/// What an allow puts in dynamic metadata: the fields `what` asks for.
fn metadata<'s, 'a>(
    set: &'s Fields<'a>,
    what: AllowMetadata,
) -> impl Iterator<Item = (&'static str, &'static str, &'a str)> + 's {
    set.all().iter().copied().filter(move |(_, field, _)| {
        what == AllowMetadata::Full || matches!(*field, "decision_id" | "dry_run" | "reason")
    })
}

/// The lengths of an allow's `OkHttpResponse` and metadata `Struct`.
fn allow_lens(set: &Fields<'_>, remove: &[Box<str>], what: AllowMetadata) -> (usize, usize) {
    let ok = set
        .headers()
        .map(|(h, _, v)| delimited_len(OK_HEADERS, header_option_len(h, v)))
        .chain(
            remove
                .iter()
                .map(|n| delimited_len(OK_HEADERS_TO_REMOVE, n.len())),
        )
        .sum();
    let meta = metadata(set, what).map(|(_, f, v)| entry_len(f, v)).sum();
    (ok, meta)
}

/// The lengths of a denial's `google.rpc.Status`, `DeniedHttpResponse` and metadata `Struct`.
fn deny_lens(
    reason: Reason,
    status: u16,
    www_authenticate: Option<&'static str>,
    body: &str,
    id: &str,
) -> (usize, usize, usize) {
    let st = varint_field_len(STATUS_CODE, grpc_code(status))
        + delimited_len(STATUS_MESSAGE, reason.code().len());
    let denied = delimited_len(
        DENIED_STATUS,
        varint_field_len(HTTP_STATUS_CODE, u64::from(status)),
    ) + deny_headers(www_authenticate, id)
        .map(|(h, v)| delimited_len(DENIED_HEADERS, header_option_len(h, v)))
        .sum::<usize>()
        + delimited_len(DENIED_BODY, body.len());
    let meta = entry_len("reason", reason.code()) + entry_len("decision_id", id);
    (st, denied, meta)
}

fn header_len(key: &str, value: &str) -> usize {
    delimited_len(HEADER_KEY, key.len()) + delimited_len(HEADER_VALUE, value.len())
}

/// A `HeaderValueOption` that overwrites: its header and its append action.
fn header_option_len(key: &str, value: &str) -> usize {
    delimited_len(OPTION_HEADER, header_len(key, value))
        + varint_field_len(OPTION_APPEND_ACTION, OVERWRITE_IF_EXISTS_OR_ADD)
}

fn put_header_option(out: &mut impl BufMut, tag: u32, key: &str, value: &str) {
    put_delimited_head(out, tag, header_option_len(key, value));
    put_delimited_head(out, OPTION_HEADER, header_len(key, value));
    put_bytes(out, HEADER_KEY, key.as_bytes());
    put_bytes(out, HEADER_VALUE, value.as_bytes());
    put_varint_field(out, OPTION_APPEND_ACTION, OVERWRITE_IF_EXISTS_OR_ADD);
}

/// One `Struct` field holding a string `Value`, with its map-entry framing.
fn entry_len(key: &str, value: &str) -> usize {
    let entry = delimited_len(ENTRY_KEY, key.len())
        + delimited_len(ENTRY_VALUE, delimited_len(VALUE_STRING, value.len()));
    delimited_len(STRUCT_FIELDS, entry)
}

fn put_entry(out: &mut impl BufMut, key: &str, value: &str) {
    let value_len = delimited_len(VALUE_STRING, value.len());
    let entry = delimited_len(ENTRY_KEY, key.len()) + delimited_len(ENTRY_VALUE, value_len);
    put_delimited_head(out, STRUCT_FIELDS, entry);
    put_bytes(out, ENTRY_KEY, key.as_bytes());
    put_delimited_head(out, ENTRY_VALUE, value_len);
    put_bytes(out, VALUE_STRING, value.as_bytes());
}
