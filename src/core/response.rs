//! What a client and an upstream see of a decision, whichever host renders it: the headers an
//! allow sets (and which client headers are claimgate's own, to be removed), a denial's
//! `www-authenticate`, headers and JSON body.
//!
//! The ext_authz server writes these into a `CheckResponse`; the proxy-wasm filter sets them
//! with host calls. Both take them from here, so the two answer the same bytes.

use std::borrow::Cow;

use crate::core::decision::{Allow, Deny, Reason};
use crate::core::decision_id;
use crate::core::role::Role;

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

/// Whether `name`, case folded and with `_` read as `-`, starts with `x-claimgate-`: CGI and
/// WSGI upstreams read `x_claimgate_identity` as `X-Claimgate-Identity`. Compared as bytes, so
/// a name with any UTF-8 in it is simply not one of ours.
pub fn is_ours(name: &[u8]) -> bool {
    const PREFIX: &[u8] = b"x-claimgate-";
    name.len() >= PREFIX.len()
        && name
            .iter()
            .zip(PREFIX)
            .all(|(n, p)| (if *n == b'_' { b'-' } else { *n }).eq_ignore_ascii_case(p))
}

/// A denial's `www-authenticate` value, if it has one (RFC 6750).
pub fn www_authenticate(deny: &Deny) -> Option<&'static str> {
    match deny.reason.status() {
        401 if deny.token_sent => Some(r#"Bearer realm="claimgate", error="invalid_token""#),
        401 => Some(r#"Bearer realm="claimgate""#),
        _ if deny.reason == Reason::InsufficientRole => {
            Some(r#"Bearer realm="claimgate", error="insufficient_scope""#)
        }
        _ => None,
    }
}

/// The first of `candidates` (the client's `x-request-id`, then the host's own id) that is a
/// sane token to echo in a denial; a new one when none is.
pub fn request_id<'r, const N: usize>(candidates: [&'r str; N]) -> Cow<'r, str> {
    for candidate in candidates {
        if !candidate.is_empty()
            && candidate.len() <= 128
            && candidate.bytes().all(|b| b.is_ascii_graphic())
        {
            return Cow::Borrowed(candidate);
        }
    }
    Cow::Owned(uuid::Uuid::new_v4().to_string())
}

/// A denial's JSON body, for the request `request_id` decided as `decision_id`.
pub fn deny_body(deny: &Deny, request_id: &str, decision_id: &str) -> String {
    serde_json::json!({
        "error": deny.reason.message(),
        "reason": deny.reason.code(),
        "request_id": request_id,
        "decision_id": decision_id,
    })
    .to_string()
}

/// A denial's headers, in order.
pub fn deny_headers<'a>(
    www_authenticate: Option<&'static str>,
    id: &'a str,
) -> impl Iterator<Item = (&'static str, &'a str)> {
    [
        ("content-type", "application/json"),
        (decision_id::HEADER, id),
    ]
    .into_iter()
    .chain(www_authenticate.map(|v| ("www-authenticate", v)))
}

/// What an allow sets, on the stack: (header, dynamic metadata field, value); a field without
/// a header goes to metadata only.
#[derive(Default)]
pub struct Fields<'a> {
    items: [(&'static str, &'static str, &'a str); 9],
    len: usize,
}

impl<'a> Fields<'a> {
    /// What `allow` sets, with decision id `id`.
    pub fn of(allow: &'a Allow, id: &'a str) -> Fields<'a> {
        let mut set = Fields::default();
        set.push((decision_id::HEADER, "decision_id", id));
        match allow {
            Allow::Public { .. } => {}
            Allow::Identity(g) => {
                set.identity([&g.identity, &g.sso, &g.subject, &g.resource], Some(g.role))
            }
            Allow::DryRun(d) => {
                set.push((DRY_RUN_HEADER, "dry_run", d.reason.code()));
                set.push(("", "reason", d.reason.code()));
                // The identity it was found to be, when it got that far; none without a token.
                if let (Some(who), Some((resource, _))) = (&d.who, &d.target) {
                    set.identity([&who.identity, &who.sso, &who.subject, resource], who.role);
                }
            }
        }
        set
    }

    fn push(&mut self, item: (&'static str, &'static str, &'a str)) {
        // Nine is every field an allow can set: the id, the dry-run pair and five of identity.
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = item;
            self.len += 1;
        }
    }

    /// Every field, in order.
    pub fn all(&self) -> &[(&'static str, &'static str, &'a str)] {
        &self.items[..self.len]
    }

    /// The fields that are headers.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &'static str, &'a str)> + '_ {
        self.all().iter().copied().filter(|(h, _, _)| !h.is_empty())
    }

    /// The identity headers and metadata: identity, SSO, subject, resource, and the role when
    /// one is held.
    fn identity(&mut self, values: [&'a str; 4], role: Option<Role>) {
        const FIELDS: [&str; 5] = ["identity", "sso", "subject", "resource", "role"];
        for ((h, field), v) in IDENTITY_HEADERS.iter().zip(FIELDS).zip(values) {
            self.push((h, field, v));
        }
        if let Some(role) = role {
            self.push((IDENTITY_HEADERS[4], FIELDS[4], role.as_str()));
        }
    }
}
