//! A resource's `enforcement`, compiled: unset (enforced, unless `serve --enforcement dry_run`
//! or Envoy says otherwise), an explicit `enforce` (which nothing relaxes), or `dry_run`.

use super::compile::Ctx;
use crate::config::{section, Item, ResourceSpec};
use crate::decision::Enforcement;

/// A resource's `enforcement`, if it sets one; dry run is warned about, so that it is not
/// forgotten.
pub(super) fn of(cx: &mut Ctx<'_>, item: &Item<ResourceSpec>) -> Option<Enforcement> {
    let text = item.spec.enforcement.as_ref()?;
    match Enforcement::parse(text) {
        Some(Enforcement::DryRun) => {
            cx.warn(
                item.origin,
                section::RESOURCES,
                Some("enforcement"),
                format!(
                    "resource {} is in dry run: its denials are let through (with x-claimgate-dry-run) and only logged",
                    item.spec.fqn
                ),
            );
            Some(Enforcement::DryRun)
        }
        Some(e) => Some(e),
        None => {
            cx.error(
                item.origin,
                section::RESOURCES,
                Some("enforcement"),
                format!("enforcement {text:?} is not enforce or dry_run"),
            );
            Some(Enforcement::Enforce)
        }
    }
}
