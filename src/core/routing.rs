//! Routes map a request (method, host, path) to the resource it targets and the role it needs.
//!
//! Templates are parsed once into segments; matching walks the request path without
//! allocating and records captured variables as byte ranges into it.
//!
//! Routes are written strict-first, so a request's spelling must not pick a looser route than
//! its meaning does: upstreams fold what HTTP leaves distinct. Methods compare without case;
//! the host loses its port and one trailing dot and compares without case (no host never meets
//! a `host:` route). Paths that are not normalized (dot segments, empty segments, backslashes,
//! encoded slashes, `;` parameters) match no route, so a path like `/public/../admin` can
//! never borrow a public route's decision for an upstream that normalizes it later.

use serde::Serialize;

use crate::core::role::Role;

mod normalize;
mod template;

use normalize::{config_host, decoded, decoded_literal, flaw};
pub use normalize::{normalized_host, normalized_path};
use template::{parse_resource, parse_template};

/// Why a literal segment whose percent-encodings decode to no text is refused.
const NOT_UTF8: &str =
    "its percent-encodings decode to bytes that are not UTF-8 (requests are compared decoded)";

/// Most variables one template may capture.
pub const MAX_VARS: usize = 8;

/// One segment of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Lit(Box<str>),
    Var,
    Rest,
}

/// How a route matches the path: by template or by whole-segment prefix.
#[derive(Debug, Clone)]
pub(crate) enum PathMatcher {
    Template(Box<[Seg]>),
    Prefix(Box<[Box<str>]>),
}

/// One part of a resource template: literal text or a captured variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Lit(Box<str>),
    Var(usize),
}

/// A resource name with `{var}` placeholders filled from the matched path.
#[derive(Debug, Clone)]
pub struct ResourceTemplate {
    // Crate-visible for the review's coverage analysis in `validate`.
    pub(crate) parts: Box<[Part]>,
    text: Box<str>,
}

impl ResourceTemplate {
    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether some filling of the variables gives `fqn` (a variable is never empty).
    pub fn can_name(&self, fqn: &str) -> bool {
        fn fits(parts: &[Part], s: &str) -> bool {
            match parts.split_first() {
                None => s.is_empty(),
                Some((Part::Lit(l), rest)) => s.strip_prefix(&**l).is_some_and(|s| fits(rest, s)),
                Some((Part::Var(_), rest)) => s
                    .char_indices()
                    .skip(1)
                    .map(|(i, _)| i)
                    .chain([s.len()])
                    .any(|i| !s.is_empty() && fits(rest, &s[i..])),
            }
        }
        fits(&self.parts, fqn)
    }

    /// The literal resource, if the template has no variables.
    pub fn literal(&self) -> Option<&str> {
        match &*self.parts {
            [] => Some(""),
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }
}

/// What a matched route asks for.
#[derive(Debug, Clone)]
pub enum Target {
    /// No token needed.
    Public,
    /// A role on a resource.
    Protected {
        /// The resource, possibly templated.
        resource: ResourceTemplate,
        /// The required role.
        role: Role,
    },
}

/// One compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    // Crate-visible for the review's coverage analysis in `validate`.
    pub(crate) path: PathMatcher,
    vars: Box<[Box<str>]>,
    methods: Option<Box<[Box<str>]>>,
    host: Option<Box<str>>,
    case_insensitive: bool,
    /// What the route grants access to.
    pub target: Target,
    /// The parent of the resource it targets, when that resource is not declared.
    pub parent: Option<ResourceTemplate>,
    /// The route's path or prefix as written, for logs and explain.
    pub display: Box<str>,
}

/// A route that matched, with the captured variables.
#[derive(Debug, Clone, Copy)]
pub struct RouteMatch<'r, 'p> {
    /// The route.
    pub route: &'r Route,
    /// Its index in the route list.
    pub index: usize,
    path: &'p str,
    captures: [(u32, u32); MAX_VARS],
}

impl RouteMatch<'_, '_> {
    /// The captured variables, by name, in template order.
    pub fn captures(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.route
            .vars
            .iter()
            .zip(self.captures.iter())
            .map(|(name, &(a, b))| {
                (
                    &**name,
                    self.path.get(a as usize..b as usize).unwrap_or_default(),
                )
            })
    }

    /// The resource this request targets, with variables filled in, written into `buf`; `None`
    /// when it does not fit (then [`RouteMatch::resource`] builds it on the heap).
    pub fn resource_in<'b>(
        &self,
        template: &ResourceTemplate,
        buf: &'b mut [u8],
    ) -> Option<&'b str> {
        let mut len = 0;
        for part in template.parts.iter() {
            let piece = match part {
                Part::Lit(s) => &**s,
                Part::Var(i) => {
                    let (a, b) = self.captures[*i];
                    &self.path[a as usize..b as usize]
                }
            };
            buf.get_mut(len..len + piece.len())?
                .copy_from_slice(piece.as_bytes());
            len += piece.len();
        }
        // Whole `str` pieces laid end to end are UTF-8; the check cannot fail.
        std::str::from_utf8(&buf[..len]).ok()
    }

    /// The resource this request targets, with variables filled in.
    pub fn resource(&self, template: &ResourceTemplate) -> String {
        let mut out = String::with_capacity(template.text.len() + 16);
        for part in template.parts.iter() {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var(i) => {
                    let (a, b) = self.captures[*i];
                    out.push_str(&self.path[a as usize..b as usize]);
                }
            }
        }
        out
    }
}

/// Why a route could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RouteError {
    /// The route field at fault.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> RouteError {
    RouteError {
        field,
        message: message.into(),
    }
}

/// The parts of a route as written, before compilation.
#[derive(Debug, Clone, Default)]
pub struct RouteSource<'a> {
    /// A path template.
    pub path: Option<&'a str>,
    /// A path prefix.
    pub path_prefix: Option<&'a str>,
    /// Allowed methods.
    pub methods: Option<&'a [String]>,
    /// Exact host, without a port; letter case and one trailing dot do not count.
    pub host: Option<&'a str>,
    /// The resource template.
    pub resource: Option<&'a str>,
    /// The required role.
    pub role: Option<Role>,
    /// No token needed.
    pub public: bool,
    /// Literal segments and prefixes compare without ASCII case.
    pub case_insensitive: bool,
}

impl Route {
    /// Compile a route; errors name the field at fault.
    pub fn compile(src: &RouteSource<'_>) -> Result<Route, RouteError> {
        let (path, vars, display) = match (src.path, src.path_prefix) {
            (Some(_), Some(_)) => {
                return Err(err("path", "give either path or path_prefix, not both"))
            }
            (None, None) => return Err(err("path", "a route needs path or path_prefix")),
            (Some(t), None) => {
                let (segs, vars) = parse_template(t)?;
                (PathMatcher::Template(segs), vars, t)
            }
            (None, Some(p)) => {
                if !p.starts_with('/') {
                    return Err(err("path_prefix", "must start with '/'"));
                }
                let segs: Vec<Box<str>> = p
                    .split('/')
                    .skip(1)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        if s.contains(['{', '}']) {
                            Err(err(
                                "path_prefix",
                                "a prefix cannot hold variables; use path",
                            ))
                        } else if let Some(why) = flaw(s) {
                            Err(err("path_prefix", format!("segment {s:?}: {why}")))
                        } else {
                            decoded_literal(s).ok_or_else(|| {
                                err("path_prefix", format!("segment {s:?}: {NOT_UTF8}"))
                            })
                        }
                    })
                    .collect::<Result<_, _>>()?;
                (PathMatcher::Prefix(segs.into()), Box::default(), p)
            }
        };
        let methods = match src.methods {
            None => None,
            Some([]) => {
                return Err(err(
                    "methods",
                    "an empty list allows nothing; leave it out for any method",
                ))
            }
            Some(ms) => Some(
                ms.iter()
                    .map(|m| {
                        if !m.is_empty() && m.chars().all(|c| c.is_ascii_alphabetic()) {
                            Ok(Box::from(m.to_ascii_uppercase()))
                        } else {
                            Err(err("methods", format!("{m:?} is not an HTTP method")))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .into(),
            ),
        };
        let host = match src.host {
            None => None,
            Some(h) => Some(Box::from(
                config_host(h).map_err(|why| err("host", format!("{h:?}: {why}")))?,
            )),
        };
        let target = if src.public {
            if src.resource.is_some() || src.role.is_some() {
                return Err(err("public", "a public route names no resource or role"));
            }
            Target::Public
        } else {
            let resource = src
                .resource
                .ok_or_else(|| err("resource", "a route that is not public needs a resource"))?;
            let role = src
                .role
                .ok_or_else(|| err("role", "a route that is not public needs a role"))?;
            Target::Protected {
                resource: parse_resource(resource, &vars)?,
                role,
            }
        };
        Ok(Route {
            path,
            vars,
            methods,
            host,
            case_insensitive: src.case_insensitive,
            target,
            parent: None,
            display: display.into(),
        })
    }

    /// The route with a `parent` template (variables of its path), for a protected route.
    pub fn with_parent(mut self, parent: &str) -> Result<Route, RouteError> {
        if matches!(self.target, Target::Public) {
            return Err(err("parent", "a public route names no parent"));
        }
        let template = parse_resource(parent, &self.vars).map_err(|e| RouteError {
            field: "parent",
            message: e.message,
        })?;
        self.parent = Some(template);
        Ok(self)
    }

    /// The variable names the path captures.
    pub fn vars(&self) -> &[Box<str>] {
        &self.vars
    }

    /// The methods the route is limited to (upper case); `None` for any.
    pub fn methods(&self) -> Option<&[Box<str>]> {
        self.methods.as_deref()
    }

    /// The host the route is limited to (lower case, no trailing dot), if any.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Whether the route matches by `path_prefix` rather than a `path` template.
    pub fn is_prefix(&self) -> bool {
        matches!(self.path, PathMatcher::Prefix(_))
    }

    /// `host` is the request's host already normalized ([`normalized_host`]).
    fn matches_host(&self, host: &str) -> bool {
        self.host
            .as_deref()
            .is_none_or(|want| host.eq_ignore_ascii_case(want))
    }

    /// Whether the route compares literal segments without ASCII case.
    pub fn case_insensitive(&self) -> bool {
        self.case_insensitive
    }

    /// A request segment against a literal of the template or prefix (stored decoded): the
    /// segment is read decoded, as the upstream reads it, so no spelling of the literal
    /// misses it for a looser route.
    fn lit_eq(&self, seg: &str, lit: &str) -> bool {
        let mut seg = decoded(seg);
        let mut lit = lit.bytes();
        loop {
            match (seg.next(), lit.next()) {
                (None, None) => return true,
                (Some(a), Some(b))
                    if a == b || (self.case_insensitive && a.eq_ignore_ascii_case(&b)) => {}
                _ => return false,
            }
        }
    }

    fn matches_path(&self, path: &str, captures: &mut [(u32, u32); MAX_VARS]) -> bool {
        let mut segs = Segments::new(path);
        match &self.path {
            PathMatcher::Prefix(prefix) => prefix
                .iter()
                .all(|p| matches!(segs.next(), Some((s, _)) if self.lit_eq(s, p))),
            PathMatcher::Template(tpl) => {
                let mut var = 0;
                for seg in tpl.iter() {
                    match seg {
                        Seg::Lit(l) => match segs.next() {
                            Some((s, _)) if self.lit_eq(s, l) => {}
                            _ => return false,
                        },
                        Seg::Var => match segs.next() {
                            Some((_, range)) => {
                                captures[var] = range;
                                var += 1;
                            }
                            None => return false,
                        },
                        Seg::Rest => {
                            let start = segs.offset();
                            captures[var] = (start, path.len() as u32);
                            return true;
                        }
                    }
                }
                segs.next().is_none()
            }
        }
    }
}

/// Path segments with their byte ranges; the leading and one trailing slash are ignored.
struct Segments<'p> {
    path: &'p str,
    pos: usize,
}

impl<'p> Segments<'p> {
    fn new(path: &'p str) -> Self {
        Segments { path, pos: 1 }
    }

    fn offset(&self) -> u32 {
        self.pos.min(self.path.len()) as u32
    }
}

impl<'p> Iterator for Segments<'p> {
    type Item = (&'p str, (u32, u32));

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.path.len() {
            return None;
        }
        let rest = &self.path[self.pos..];
        let end = rest.find('/').unwrap_or(rest.len());
        let seg = &rest[..end];
        let range = (self.pos as u32, (self.pos + end) as u32);
        self.pos += end + 1;
        Some((seg, range))
    }
}

/// The ordered route list; the first match wins.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

/// One step of choosing what a request targets.
#[derive(Debug, Clone, Copy)]
pub enum TargetStep<'a> {
    /// Envoy named the resource and role in `context_extensions`; routes are not consulted.
    Extensions {
        /// `context_extensions.resource`.
        resource: Option<&'a str>,
        /// `context_extensions.role`.
        role: Option<&'a str>,
    },
    /// The path is not normalized, so no route is tried.
    Unnormalized,
    /// A route was tried and did not match.
    Missed {
        /// Its index in the route list.
        index: usize,
        /// The route.
        route: &'a Route,
        /// The first of its conditions the request failed.
        miss: RouteMiss,
    },
    /// The first route that matched.
    Matched(&'a RouteMatch<'a, 'a>),
    /// No route matched.
    Unrouted,
}

/// The condition of a route a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteMiss {
    /// The method is not in the route's `methods`.
    Method,
    /// The host is not the route's `host`.
    Host,
    /// The path does not fit the route's template or prefix.
    Path,
}

/// Watches [`Router::find_observed`] resolve a request's target. Does nothing by default.
pub trait RouteObserver {
    /// A step of resolving the request's target.
    fn target(&mut self, _step: TargetStep<'_>) {}
}

/// The unit observer sees nothing: what [`Router::find`] uses.
impl RouteObserver for () {}

impl Router {
    /// A router over these routes, in order.
    pub fn new(routes: Vec<Route>) -> Self {
        Router { routes }
    }

    /// The routes, in order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The first route matching the request, if any.
    pub fn find<'r, 'p>(
        &'r self,
        method: &str,
        host: &str,
        path: &'p str,
    ) -> Option<RouteMatch<'r, 'p>> {
        self.find_observed(method, host, path, &mut ())
    }

    /// [`Router::find`], reporting every route tried and why it did not match.
    pub fn find_observed<'r, 'p, O: RouteObserver>(
        &'r self,
        method: &str,
        host: &str,
        path: &'p str,
        obs: &mut O,
    ) -> Option<RouteMatch<'r, 'p>> {
        let Some(path) = normalized_path(path) else {
            obs.target(TargetStep::Unnormalized);
            return None;
        };
        let host = normalized_host(host);
        let mut captures = [(0u32, 0u32); MAX_VARS];
        for (index, route) in self.routes.iter().enumerate() {
            let miss = |miss| TargetStep::Missed { index, route, miss };
            // Methods are case-sensitive in HTTP, but upstream frameworks fold them: a
            // `delete` must meet the route written for DELETE, not the one after it.
            if let Some(ms) = &route.methods {
                if !ms.iter().any(|m| m.eq_ignore_ascii_case(method)) {
                    obs.target(miss(RouteMiss::Method));
                    continue;
                }
            }
            if !route.matches_host(host) {
                obs.target(miss(RouteMiss::Host));
                continue;
            }
            if route.matches_path(path, &mut captures) {
                let found = RouteMatch {
                    route,
                    index,
                    path,
                    captures,
                };
                obs.target(TargetStep::Matched(&found));
                return Some(found);
            }
            obs.target(miss(RouteMiss::Path));
        }
        obs.target(TargetStep::Unrouted);
        None
    }
}

#[cfg(test)]
pub(crate) mod tests;
