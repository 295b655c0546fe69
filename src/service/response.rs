//! Envoy's answer to a check: an allow's headers, removals and dynamic metadata, or a
//! denial's status, headers and JSON body. Built from the decision alone; nothing here decides.

use std::collections::HashMap;

use envoy_types::ext_authz::v3::pb::{
    CheckResponse, DeniedHttpResponse, HeaderAppendAction, HeaderValue, HeaderValueOption,
    HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value as PbValue};
use envoy_types::pb::google::rpc::Status as RpcStatus;

use super::Headers;
use crate::decision::{Allow, Deny, Reason};
use crate::decision_id;
use crate::role::Role;

/// Headers claimgate sets on an allowed request; every other `x-claimgate-*` is removed.
pub const IDENTITY_HEADERS: [&str; 5] = [
    "x-claimgate-identity",
    "x-claimgate-sso",
    "x-claimgate-subject",
    "x-claimgate-resource",
    "x-claimgate-role",
];

/// The header that tells the upstream a denial was let through by dry run, and its reason.
pub const DRY_RUN_HEADER: &str = "x-claimgate-dry-run";

const HEADER_PREFIX: &str = "x-claimgate-";

// gRPC status codes (google.rpc.Code) used in CheckResponse.status.
const OK: i32 = 0;
const PERMISSION_DENIED: i32 = 7;
const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

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

fn header(key: &str, value: impl Into<String>) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value: value.into(),
            ..Default::default()
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..Default::default()
    }
}

fn string_value(s: &str) -> PbValue {
    PbValue {
        kind: Some(Kind::StringValue(s.to_owned())),
    }
}

/// Whether `name`, case folded and with `_` read as `-`, starts with `x-claimgate-` (the bare
/// prefix too): CGI and WSGI upstreams read `x_claimgate_identity` as `X-Claimgate-Identity`.
/// Compared as bytes, so a name with any UTF-8 in it is simply not one of ours.
fn is_identity_header(name: &str) -> bool {
    name.len() >= HEADER_PREFIX.len()
        && name
            .bytes()
            .zip(HEADER_PREFIX.bytes())
            .all(|(n, p)| (if n == b'_' { b'-' } else { n }).eq_ignore_ascii_case(&p))
}

pub(super) fn allow_response(
    allow: Allow,
    headers: Option<&Headers<'_>>,
    id: &str,
    what: AllowMetadata,
) -> CheckResponse {
    // What claimgate sets: (header, dynamic metadata field, value); a field without a header
    // goes to metadata only.
    let mut set = Fields::default();
    set.push((decision_id::HEADER, "decision_id", id));
    match &allow {
        Allow::Public { .. } => {}
        Allow::Identity(g) => identity_fields(
            &mut set,
            [&g.identity, &g.sso, &g.subject, &g.resource],
            Some(g.role),
        ),
        Allow::DryRun(d) => {
            set.push((DRY_RUN_HEADER, "dry_run", d.reason.code()));
            set.push(("", "reason", d.reason.code()));
            // The identity it was found to be, when it got that far; none without a token.
            if let (Some(who), Some((resource, _))) = (&d.who, &d.target) {
                identity_fields(
                    &mut set,
                    [&who.identity, &who.sso, &who.subject, resource],
                    who.role,
                );
            }
        }
    }
    // Remove every client-sent x-claimgate-* header we do not overwrite ourselves; on a
    // public route that is all of them but the decision id.
    let ours = |n: &str| set.all().iter().any(|(h, _, _)| h.eq_ignore_ascii_case(n));
    let mut headers_to_remove: Vec<String> = headers
        .map(|h| {
            h.names()
                .filter(|n| is_identity_header(n))
                .filter(|n| !ours(n))
                // Envoy's own spelling of the name: lowercase, underscores kept.
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default();
    headers_to_remove.sort();
    headers_to_remove.dedup();
    // Sized up front: a filtered iterator would let the map grow (and allocate) as it fills.
    let mut metadata: HashMap<String, PbValue> = HashMap::with_capacity(set.all().len());
    metadata.extend(
        set.all()
            .iter()
            .filter(|(_, field, _)| {
                what == AllowMetadata::Full
                    || matches!(*field, "decision_id" | "dry_run" | "reason")
            })
            .map(|(_, field, v)| ((*field).to_owned(), string_value(v))),
    );
    let mut headers = Vec::with_capacity(set.all().len());
    headers.extend(
        set.all()
            .iter()
            .filter(|(h, _, _)| !h.is_empty())
            .map(|(h, _, v)| header(h, *v)),
    );
    CheckResponse {
        status: Some(RpcStatus {
            code: OK,
            ..Default::default()
        }),
        // Envoy files these under its filter's namespace (`envoy.filters.http.ext_authz`), so an
        // access log reads `%DYNAMIC_METADATA(envoy.filters.http.ext_authz:identity)%`.
        dynamic_metadata: Some(Struct { fields: metadata }),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers,
            headers_to_remove,
            ..Default::default()
        })),
    }
}

/// What an allow sets, on the stack: (header, dynamic metadata field, value).
#[derive(Default)]
struct Fields<'a> {
    items: [(&'static str, &'static str, &'a str); 9],
    len: usize,
}

impl<'a> Fields<'a> {
    fn push(&mut self, item: (&'static str, &'static str, &'a str)) {
        // Nine is every field an allow can set: the id, the dry-run pair and five of identity.
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = item;
            self.len += 1;
        }
    }

    fn all(&self) -> &[(&'static str, &'static str, &'a str)] {
        &self.items[..self.len]
    }
}

/// The identity headers and metadata: identity, SSO, subject, resource, and the role when
/// one is held.
fn identity_fields<'a>(set: &mut Fields<'a>, values: [&'a str; 4], role: Option<Role>) {
    const FIELDS: [&str; 5] = ["identity", "sso", "subject", "resource", "role"];
    for ((h, field), v) in IDENTITY_HEADERS.iter().zip(FIELDS).zip(values) {
        set.push((h, field, v));
    }
    if let Some(role) = role {
        set.push((IDENTITY_HEADERS[4], FIELDS[4], role.as_str()));
    }
}

/// Build the denial Envoy sends to the client.
pub fn deny_response(deny: &Deny, request_id: &str, id: &str) -> CheckResponse {
    let status = deny.reason.status();
    let body = serde_json::json!({
        "error": deny.reason.message(),
        "reason": deny.reason.code(),
        "request_id": request_id,
        "decision_id": id,
    })
    .to_string();
    let mut headers = vec![
        header("content-type", "application/json"),
        header(decision_id::HEADER, id),
    ];
    match status {
        401 if deny.token_sent => headers.push(header(
            "www-authenticate",
            r#"Bearer realm="claimgate", error="invalid_token""#,
        )),
        401 => headers.push(header("www-authenticate", r#"Bearer realm="claimgate""#)),
        _ if deny.reason == Reason::InsufficientRole => headers.push(header(
            "www-authenticate",
            r#"Bearer realm="claimgate", error="insufficient_scope""#,
        )),
        _ => {}
    }
    let code = match status {
        401 => UNAUTHENTICATED,
        403 => PERMISSION_DENIED,
        _ => UNAVAILABLE,
    };
    CheckResponse {
        status: Some(RpcStatus {
            code,
            message: deny.reason.code().to_owned(),
            ..Default::default()
        }),
        dynamic_metadata: Some(Struct {
            fields: [
                ("reason".to_owned(), string_value(deny.reason.code())),
                ("decision_id".to_owned(), string_value(id)),
            ]
            .into_iter()
            .collect(),
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: status as i32,
            }),
            headers,
            body,
        })),
    }
}
