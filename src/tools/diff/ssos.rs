//! SSO integrations, field by field: who may issue tokens, for which audience, signed with
//! which keys and algorithms. A key added to a committed key file is a change too: whoever
//! holds its private half can now sign tokens the SSO accepts.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::Change;
use crate::core::config::SsoSpec;
use crate::core::load::Loaded;
use crate::core::snapshot::Sso;
use crate::core::text::redact_url;

/// Each field of an SSO the diff compares, as shown.
fn fields(spec: &SsoSpec, sso: &Sso) -> Vec<(&'static str, Value)> {
    let source = match (&spec.jwks_file, &spec.jwks_uri, spec.discovery) {
        (Some(f), _, _) => format!("jwks_file {f}"),
        (_, Some(u), _) => format!("jwks_uri {}", redact_url(u)),
        _ => format!("discovery from {}", spec.issuer),
    };
    let keys = sso.keys.load();
    let kids: Vec<Value> = keys
        .keys()
        .iter()
        .map(|k| Value::from(k.kid.as_deref().unwrap_or("(no kid)")))
        .collect();
    vec![
        ("issuer", Value::from(&*sso.issuer)),
        (
            "audiences",
            Value::from(
                sso.audiences
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>(),
            ),
        ),
        ("key_source", Value::from(source)),
        // Pinning a hosting service's keys in a file is a reviewed choice: show it.
        ("pinned_keys", Value::from(spec.pinned_keys)),
        ("keys", Value::from(kids)),
        ("algorithms", Value::from(sso.algorithms.names())),
        ("login_enabled", Value::from(sso.login_enabled)),
        ("leeway_seconds", Value::from(sso.leeway)),
    ]
}

fn by_name(loaded: &Loaded) -> BTreeMap<&str, (&SsoSpec, &Sso)> {
    loaded
        .config
        .ssos
        .iter()
        .filter_map(|item| {
            let sso = loaded
                .snapshot
                .ssos
                .iter()
                .find(|s| *s.name == *item.spec.name)?;
            Some((item.spec.name.as_str(), (&item.spec, sso)))
        })
        .collect()
}

pub(super) fn ssos(base: &Loaded, new_loaded: &Loaded, out: &mut Vec<Change>) {
    let was = by_name(base);
    let now = by_name(new_loaded);
    let mut names: Vec<&str> = was.keys().chain(now.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let old = was.get(name).map(|(spec, sso)| fields(spec, sso));
        let new = now.get(name).map(|(spec, sso)| fields(spec, sso));
        let mut changed = Map::new();
        match (&old, &new) {
            (Some(old), Some(new)) => {
                for ((field, a), (_, b)) in old.iter().zip(new.iter()) {
                    if a != b {
                        changed.insert(field.to_string(), json!({"was": a, "now": b}));
                    }
                }
                // Shown redacted, compared whole: other credentials or another query in the
                // same URL is a change too, whose text must not show them.
                let uri = |side: &BTreeMap<&str, (&SsoSpec, &Sso)>| {
                    side.get(name).and_then(|(spec, _)| spec.jwks_uri.clone())
                };
                if !changed.contains_key("key_source") && uri(&was) != uri(&now) {
                    let shown = |s: &[(&str, Value)]| {
                        s.iter()
                            .find(|(field, _)| *field == "key_source")
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default()
                    };
                    changed.insert(
                        "key_source".into(),
                        json!({"was": shown(old), "now": format!("{} (other credentials or query)", shown(new).as_str().unwrap_or_default())}),
                    );
                }
                // The same key ids in a key file whose keys changed: a key replaced in place.
                if !changed.contains_key("keys") && !changed.contains_key("key_source") {
                    let (Some((a, _)), Some((b, _))) = (was.get(name), now.get(name)) else {
                        continue;
                    };
                    if key_document(base, a) != key_document(new_loaded, b) {
                        changed.insert(
                            "keys".into(),
                            json!({"was": "the key file as it was", "now": "other keys under the same key ids"}),
                        );
                    }
                }
            }
            (Some(old), None) => {
                changed.insert("defined".into(), json!({"was": true, "now": false}));
                for (field, a) in old {
                    changed.insert(field.to_string(), json!({"was": a, "now": null}));
                }
            }
            (None, Some(new)) => {
                changed.insert("defined".into(), json!({"was": false, "now": true}));
                for (field, b) in new {
                    changed.insert(field.to_string(), json!({"was": null, "now": b}));
                }
            }
            (None, None) => {}
        }
        if !changed.is_empty() {
            out.push(Change::SsoChanged {
                sso: name.to_owned(),
                fields: changed,
            });
        }
    }
}

/// The keys of an SSO's key file as JSON, so that reformatting the file is no change.
fn key_document(loaded: &Loaded, spec: &SsoSpec) -> Option<Value> {
    let path = loaded.config.key_file(spec.jwks_file.as_deref()?).ok()?;
    let meta = std::fs::metadata(&path).ok()?;
    if meta.len() > crate::core::config::MAX_KEY_FILE_BYTES {
        return None;
    }
    let doc: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    doc.get("keys").cloned()
}
