//! What the review needs to know about routes beyond matching one request: whether a route
//! matches every request a later one would, and which resources a route can target.

use crate::core::routing::{Part, PathMatcher, Route, Seg, Target};

/// Whether every request `later` matches, `first` matches too: placed first, it leaves
/// `later` nothing (first match wins).
pub(super) fn covers(first: &Route, later: &Route) -> bool {
    let methods = match (first.methods(), later.methods()) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(mine), Some(theirs)) => theirs.iter().all(|m| mine.contains(m)),
    };
    let host = match (first.host(), later.host()) {
        (None, _) => true,
        (Some(mine), Some(theirs)) => mine == theirs,
        (Some(_), None) => false,
    };
    let fold = Fold {
        first: first.case_insensitive(),
        later: later.case_insensitive(),
    };
    methods && host && path_covers(&first.path, &later.path, fold)
}

/// Whether `route` can target the resource `fqn`: its resource template, with each variable
/// filled as the path can fill it (one segment, or for `{*rest}` any rest).
pub(super) fn can_target(route: &Route, fqn: &str) -> bool {
    let Target::Protected { resource, .. } = &route.target else {
        return false;
    };
    let kinds: Vec<bool> = match &route.path {
        PathMatcher::Template(segs) => segs
            .iter()
            .filter_map(|s| match s {
                Seg::Var => Some(false),
                Seg::Rest => Some(true),
                Seg::Lit(_) => None,
            })
            .collect(),
        PathMatcher::Prefix(_) => Vec::new(),
    };
    fills(&resource.parts, &kinds, fqn)
}

/// Which of two routes compare literal segments without case.
#[derive(Debug, Clone, Copy)]
struct Fold {
    first: bool,
    later: bool,
}

impl Fold {
    /// Whether the first route's literal `mine` matches every segment the later route's
    /// literal `theirs` matches.
    fn lit(self, mine: &str, theirs: &str) -> bool {
        if self.first {
            mine.eq_ignore_ascii_case(theirs)
        } else {
            mine == theirs && !(self.later && theirs.bytes().any(|b| b.is_ascii_alphabetic()))
        }
    }
}

/// Whether every path `later` matches, `first` matches too.
fn path_covers(first: &PathMatcher, later: &PathMatcher, fold: Fold) -> bool {
    match (first, later) {
        (PathMatcher::Prefix(a), PathMatcher::Prefix(b)) => {
            a.len() <= b.len() && a.iter().zip(b.iter()).all(|(x, y)| fold.lit(x, y))
        }
        (PathMatcher::Prefix(a), PathMatcher::Template(b)) => {
            a.len() <= b.len()
                && a.iter()
                    .zip(b.iter())
                    .all(|(x, seg)| matches!(seg, Seg::Lit(l) if fold.lit(x, l)))
        }
        (PathMatcher::Template(a), PathMatcher::Prefix(b)) => {
            // `later` matches its prefix followed by anything, so `first` must end in a rest
            // right after (or before) the prefix's segments.
            for (i, seg) in a.iter().enumerate() {
                if i == b.len() {
                    return *seg == Seg::Rest;
                }
                match seg {
                    Seg::Lit(l) if !fold.lit(l, &b[i]) => return false,
                    Seg::Lit(_) | Seg::Var => {}
                    Seg::Rest => return true,
                }
            }
            false
        }
        (PathMatcher::Template(a), PathMatcher::Template(b)) => {
            let mut i = 0;
            loop {
                match (a.get(i), b.get(i)) {
                    (None, None) | (Some(Seg::Rest), _) => return true,
                    (None, Some(_)) | (Some(_), None) => return false,
                    (Some(Seg::Lit(x)), Some(Seg::Lit(y))) if fold.lit(x, y) => {}
                    (Some(Seg::Lit(_)), _) => return false,
                    (Some(Seg::Var), Some(Seg::Lit(_) | Seg::Var)) => {}
                    (Some(Seg::Var), Some(Seg::Rest)) => return false,
                }
                i += 1;
            }
        }
    }
}

/// Whether `parts` can spell `s` when variable `i` takes one path segment (`kinds[i]` false:
/// non-empty, no `/`) or any rest of the path (`kinds[i]` true).
fn fills(parts: &[Part], kinds: &[bool], s: &str) -> bool {
    match parts.split_first() {
        None => s.is_empty(),
        Some((Part::Lit(l), rest)) => s
            .strip_prefix(&**l)
            .is_some_and(|tail| fills(rest, kinds, tail)),
        Some((Part::Var(i), rest)) => {
            let any_rest = kinds.get(*i).copied().unwrap_or(false);
            let limit = if any_rest {
                s.len()
            } else {
                s.find('/').unwrap_or(s.len())
            };
            let first = usize::from(!any_rest);
            (first..=limit)
                .filter(|end| s.is_char_boundary(*end))
                .any(|end| fills(rest, kinds, &s[end..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::routing::tests::{case_insensitive, compiled};

    #[test]
    fn a_route_covers_later_ones_only_when_it_matches_all_their_requests() {
        let any = compiled("/v1/{*rest}", None, "x:a");
        let get = compiled("/v1/items/{id}", Some(&["GET"]), "x:{id}");
        let lit = compiled("/v1/items/7", Some(&["GET"]), "x:a");
        let prefix = compiled("prefix:/v1/items", None, "x:a");
        let root = compiled("prefix:/", None, "x:a");
        assert!(covers(&any, &get) && covers(&any, &lit) && covers(&any, &prefix));
        assert!(covers(&get, &lit));
        assert!(!covers(&lit, &get));
        assert!(
            !covers(&get, &any),
            "methods: GET only does not cover any method"
        );
        assert!(covers(&prefix, &lit) && covers(&prefix, &get));
        assert!(!covers(&get, &prefix), "the prefix matches deeper paths");
        assert!(covers(&root, &any) && covers(&root, &prefix));
        let items_rest = compiled("/v1/items/{*rest}", None, "x:a");
        assert!(covers(&items_rest, &prefix) && covers(&prefix, &items_rest));
        assert!(!covers(&items_rest, &any));
        let two = compiled("/v1/{a}/{b}", None, "x:a");
        let one = compiled("/v1/{a}", None, "x:a");
        assert!(!covers(&two, &one) && !covers(&one, &two));
    }

    #[test]
    fn a_case_insensitive_route_covers_only_what_it_folds() {
        let ci = case_insensitive("/v1/Admin/{*rest}", "x:a");
        let lower = compiled("/v1/admin/x", None, "x:a");
        let upper = compiled("/V1/ADMIN/x", None, "x:a");
        assert!(covers(&ci, &lower) && covers(&ci, &upper));
        let sensitive = compiled("/v1/admin/{*rest}", None, "x:a");
        let ci_later = case_insensitive("/v1/admin/x", "x:a");
        assert!(
            !covers(&sensitive, &ci_later),
            "the later route also matches /V1/ADMIN/x"
        );
        let digits = compiled("/42/{*rest}", None, "x:a");
        assert!(covers(&digits, &case_insensitive("/42/x", "x:a")));
        let prefix = compiled("prefix:/v1", None, "x:a");
        assert!(!covers(&prefix, &ci_later));
        assert!(covers(&case_insensitive("prefix:/V1", "x:a"), &ci_later));
    }

    #[test]
    fn a_resource_template_targets_what_its_variables_can_spell() {
        let r = compiled(
            "/v1/models/{org}/{name}/{*rest}",
            None,
            "model:{org}/{name}",
        );
        assert!(can_target(&r, "model:acme/llama"));
        assert!(!can_target(&r, "model:acme"));
        assert!(
            !can_target(&r, "model:acme/llama/x"),
            "one segment per variable"
        );
        assert!(!can_target(&r, "workspace:acme/llama"));
        let rest = compiled("/files/{*path}", None, "file:{path}");
        assert!(can_target(&rest, "file:a/b/c") && can_target(&rest, "file:"));
        let lit = compiled("/x", None, "mcp-server:search");
        assert!(can_target(&lit, "mcp-server:search") && !can_target(&lit, "mcp-server:other"));
    }
}
