//! A resource's `enforcement`, compiled: `enforce` (the default) or `dry_run`.

use super::compile::Ctx;
use crate::config::{Item, ResourceSpec};
use crate::decision::Enforcement;

/// A resource's `enforcement`; dry run is warned about, so that it is not forgotten.
pub(super) fn of(cx: &mut Ctx<'_>, item: &Item<ResourceSpec>) -> Enforcement {
    let Some(text) = &item.spec.enforcement else {
        return Enforcement::Enforce;
    };
    match Enforcement::parse(text) {
        Some(Enforcement::DryRun) => {
            cx.warn(
                item.origin,
                "resources",
                Some("enforcement"),
                format!(
                    "resource {} is in dry run: its denials are let through (with x-claimgate-dry-run) and only logged",
                    item.spec.fqn
                ),
            );
            Enforcement::DryRun
        }
        Some(e) => e,
        None => {
            cx.error(
                item.origin,
                "resources",
                Some("enforcement"),
                format!("enforcement {text:?} is not enforce or dry_run"),
            );
            Enforcement::Enforce
        }
    }
}
