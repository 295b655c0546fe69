//! The same answers built as prost values, the way claimgate built them before it wrote them
//! by hand: the reference the hand-written encoding is proven against.

use std::collections::HashMap;

use envoy_types::ext_authz::v3::pb::{
    CheckResponse, DeniedHttpResponse, HeaderAppendAction, HeaderValue, HeaderValueOption,
    HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::protobuf::{value::Kind as PbKind, Struct, Value as PbValue};
use envoy_types::pb::google::rpc::Status as RpcStatus;

use super::{metadata, Answer, Fields, Kind};
use crate::core::decision_id;

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
        kind: Some(PbKind::StringValue(s.to_owned())),
    }
}

/// `answer` as prost builds it.
pub(super) fn check_response(answer: &Answer) -> CheckResponse {
    let id = answer.decision_id();
    match &answer.kind {
        Kind::Allow {
            allow,
            remove,
            metadata: what,
        } => {
            let set = Fields::of(allow, id);
            let metadata: HashMap<String, PbValue> = metadata(&set, *what)
                .map(|(_, field, v)| (field.to_owned(), string_value(v)))
                .collect();
            CheckResponse {
                status: Some(RpcStatus {
                    code: 0,
                    ..Default::default()
                }),
                dynamic_metadata: Some(Struct { fields: metadata }),
                http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                    headers: set.headers().map(|(h, _, v)| header(h, v)).collect(),
                    headers_to_remove: remove.iter().map(|n| n.to_string()).collect(),
                    ..Default::default()
                })),
            }
        }
        Kind::Deny {
            reason,
            status,
            www_authenticate,
            body,
        } => {
            let mut headers = vec![
                header("content-type", "application/json"),
                header(decision_id::HEADER, id),
            ];
            if let Some(v) = www_authenticate {
                headers.push(header("www-authenticate", *v));
            }
            let code = match status {
                401 => 16,
                403 => 7,
                _ => 14,
            };
            CheckResponse {
                status: Some(RpcStatus {
                    code,
                    message: reason.code().to_owned(),
                    ..Default::default()
                }),
                dynamic_metadata: Some(Struct {
                    fields: [
                        ("reason".to_owned(), string_value(reason.code())),
                        ("decision_id".to_owned(), string_value(id)),
                    ]
                    .into_iter()
                    .collect(),
                }),
                http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                    status: Some(HttpStatus {
                        code: i32::from(*status),
                    }),
                    headers,
                    body: body.clone(),
                })),
            }
        }
    }
}
