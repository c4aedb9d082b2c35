//! The matching rules of networking.k8s.io/v1 Ingress, as the Kubernetes
//! documentation states them: path types (`Exact`, `Prefix`,
//! `ImplementationSpecific`), element-wise prefixes, precedence among
//! paths, and host names with one-label wildcards. Pure functions; the
//! route table (`table.rs`) is built from them and the tests below are the
//! documentation's "Examples" table.

use std::cmp::Ordering;

/// How a rule's path is compared with a request's path.
///
/// `ImplementationSpecific` is matched as `Prefix` (ingress-nginx treats
/// it as a regular-expression prefix; we keep to the element-wise prefix,
/// which is what users almost always mean). It is kept apart from `Prefix`
/// only in [`PathKind::parse`]; a rule's effective kind is `Prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathKind {
    Exact,
    Prefix,
}

impl PathKind {
    /// The effective kind of a `pathType`; a missing one is
    /// `ImplementationSpecific` (the API server's default), hence `Prefix`.
    /// `None` for an unknown type.
    pub fn parse(path_type: Option<&str>) -> Option<PathKind> {
        match path_type {
            Some("Exact") => Some(PathKind::Exact),
            Some("Prefix") | Some("ImplementationSpecific") | None => Some(PathKind::Prefix),
            Some(_) => None,
        }
    }
}

/// A rule's path, normalized so that equal rules compare equal: a `Prefix`
/// path loses its trailing slashes (`/foo/` is `/foo`, `/` is the empty
/// prefix), an `Exact` path is kept as written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathRule {
    pub kind: PathKind,
    path: String,
}

impl PathRule {
    /// `None` unless `path` is absolute (the API server validates this too;
    /// a table built from unvalidated objects must not trust it).
    pub fn new(kind: PathKind, path: &str) -> Option<PathRule> {
        if !path.starts_with('/') {
            return None;
        }
        let path = match kind {
            PathKind::Exact => path.to_string(),
            PathKind::Prefix => path.trim_end_matches('/').to_string(),
        };
        Some(PathRule { kind, path })
    }

    /// The path as matched (for `Prefix`, without its trailing slash).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether a request for `request_path` (no query) matches.
    ///
    /// `Prefix` compares element by element, split on `/`: `/foo` matches
    /// `/foo`, `/foo/` and `/foo/bar` but not `/foobar`. Because the rule's
    /// trailing slash is gone, the request path must equal it or continue
    /// with `/`.
    pub fn matches(&self, request_path: &str) -> bool {
        match self.kind {
            PathKind::Exact => request_path == self.path,
            PathKind::Prefix => match request_path.strip_prefix(self.path.as_str()) {
                Some(rest) => rest.is_empty() || rest.starts_with('/'),
                None => false,
            },
        }
    }

    /// Precedence between two rules that both match: the longer path first,
    /// and on equal length `Exact` before `Prefix`. (`Less` = wins.) The
    /// length of a `Prefix` rule is its normalized length, so `/foo/` and
    /// `/foo` are the same rule.
    pub fn precedence(&self, other: &PathRule) -> Ordering {
        other.path.len().cmp(&self.path.len()).then(self.kind.cmp(&other.kind))
    }
}

/// A rule's host: an exact name, or `*.` and a suffix matching exactly one
/// more label.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostRule {
    Exact(String),
    /// The suffix after `*.`, e.g. `foo.com` for `*.foo.com`.
    Wildcard(String),
}

impl HostRule {
    /// Lower-cased; a `*` anywhere but as the whole first label is not a
    /// wildcard we understand (`None`).
    pub fn parse(host: &str) -> Option<HostRule> {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return None;
        }
        match host.strip_prefix("*.") {
            Some(suffix) if !suffix.is_empty() && !suffix.contains('*') => Some(HostRule::Wildcard(suffix.to_string())),
            Some(_) => None,
            None if host.contains('*') => None,
            None => Some(HostRule::Exact(host)),
        }
    }

    /// Whether `host` (lower-case, no port) matches: a wildcard stands for
    /// exactly one non-empty label, so `*.foo.com` matches `bar.foo.com`
    /// but neither `baz.bar.foo.com` nor `foo.com`.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostRule::Exact(h) => h == host,
            HostRule::Wildcard(suffix) => wildcard_suffix(host) == Some(suffix.as_str()),
        }
    }
}

impl std::fmt::Display for HostRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostRule::Exact(h) => f.write_str(h),
            HostRule::Wildcard(s) => write!(f, "*.{s}"),
        }
    }
}

/// What a one-label wildcard would have to be for `host` to match it:
/// everything after the first label (`bar.foo.com` → `foo.com`).
pub fn wildcard_suffix(host: &str) -> Option<&str> {
    let (first, rest) = host.split_once('.')?;
    (!first.is_empty() && !rest.is_empty()).then_some(rest)
}

/// The host a request is for, from its `Host` header or (HTTP/2) its
/// `:authority`: lower-cased, the port dropped (it plays no part in
/// matching), IPv6 brackets kept.
/// Borrowed when it is already in that form (the common case), so the
/// request path does not allocate for it.
pub fn request_host(authority: &str) -> std::borrow::Cow<'_, str> {
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => authority,
        }
    };
    let host = host.trim_end_matches('.');
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(host.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: &str, path: &str) -> PathRule {
        PathRule::new(PathKind::parse(Some(kind)).expect("kind"), path).expect("path")
    }

    /// The best matching rule among `rules` for `request`, by precedence.
    fn best<'a>(rules: &'a [PathRule], request: &str) -> Option<&'a PathRule> {
        rules.iter().filter(|r| r.matches(request)).min_by(|a, b| a.precedence(b))
    }

    /// The "Examples" table of the Kubernetes Ingress documentation
    /// (concepts/services-networking/ingress, "Examples"), row by row.
    #[test]
    fn the_kubernetes_documentation_examples_table() {
        let rows: &[(&[(&str, &str)], &str, Option<(&str, &str)>)] = &[
            (&[("Prefix", "/")], "/", Some(("Prefix", ""))),
            (&[("Prefix", "/")], "/anything/at/all", Some(("Prefix", ""))),
            (&[("Exact", "/foo")], "/foo", Some(("Exact", "/foo"))),
            (&[("Exact", "/foo")], "/bar", None),
            (&[("Exact", "/foo")], "/foo/", None),
            (&[("Exact", "/foo/")], "/foo", None),
            (&[("Prefix", "/foo")], "/foo", Some(("Prefix", "/foo"))),
            (&[("Prefix", "/foo")], "/foo/", Some(("Prefix", "/foo"))),
            (&[("Prefix", "/foo/")], "/foo", Some(("Prefix", "/foo"))),
            (&[("Prefix", "/foo/")], "/foo/", Some(("Prefix", "/foo"))),
            (&[("Prefix", "/aaa/bb")], "/aaa/bbb", None),
            (&[("Prefix", "/aaa/bbb")], "/aaa/bbb", Some(("Prefix", "/aaa/bbb"))),
            (&[("Prefix", "/aaa/bbb/")], "/aaa/bbb", Some(("Prefix", "/aaa/bbb"))),
            (&[("Prefix", "/aaa/bbb")], "/aaa/bbb/", Some(("Prefix", "/aaa/bbb"))),
            (&[("Prefix", "/aaa/bbb")], "/aaa/bbb/ccc", Some(("Prefix", "/aaa/bbb"))),
            (&[("Prefix", "/aaa/bbb")], "/aaa/bbbxyz", None),
            (&[("Prefix", "/"), ("Prefix", "/aaa")], "/aaa/ccc", Some(("Prefix", "/aaa"))),
            (&[("Prefix", "/"), ("Prefix", "/aaa"), ("Prefix", "/aaa/bbb")], "/aaa/bbb", Some(("Prefix", "/aaa/bbb"))),
            (&[("Prefix", "/"), ("Prefix", "/aaa"), ("Prefix", "/aaa/bbb")], "/ccc", Some(("Prefix", ""))),
            (&[("Prefix", "/aaa")], "/ccc", None),
            (&[("Prefix", "/foo"), ("Exact", "/foo")], "/foo", Some(("Exact", "/foo"))),
            (&[("Exact", "/foo"), ("Prefix", "/foo")], "/foo", Some(("Exact", "/foo"))),
        ];
        for (rules, request, want) in rows {
            let rules: Vec<PathRule> = rules.iter().map(|(k, p)| rule(k, p)).collect();
            let got = best(&rules, request).map(|r| (r.kind, r.path().to_string()));
            let want = want.map(|(k, p)| (PathKind::parse(Some(k)).expect("kind"), p.to_string()));
            assert_eq!(got, want, "rules {rules:?}, request {request}");
        }
    }

    #[test]
    fn the_longest_matching_path_wins_whatever_the_order() {
        let rules = [rule("Prefix", "/a"), rule("Prefix", "/a/b/c"), rule("Prefix", "/a/b"), rule("Exact", "/a/b/c/d")];
        assert_eq!(best(&rules, "/a/b/c/d").map(PathRule::path), Some("/a/b/c/d"));
        assert_eq!(best(&rules, "/a/b/c/d/e").map(PathRule::path), Some("/a/b/c"));
        assert_eq!(best(&rules, "/a/b/x").map(PathRule::path), Some("/a/b"));
        assert_eq!(best(&rules, "/a/bx").map(PathRule::path), Some("/a"));
    }

    #[test]
    fn a_longer_exact_path_beats_a_shorter_prefix_and_a_longer_prefix_beats_a_shorter_exact() {
        let rules = [rule("Exact", "/foo/"), rule("Prefix", "/foo")];
        assert_eq!(best(&rules, "/foo/").map(|r| r.kind), Some(PathKind::Exact));
        assert_eq!(best(&rules, "/foo").map(|r| r.kind), Some(PathKind::Prefix));
        let rules = [rule("Exact", "/foo"), rule("Prefix", "/foo/bar")];
        assert_eq!(best(&rules, "/foo/bar").map(|r| r.kind), Some(PathKind::Prefix));
    }

    #[test]
    fn implementation_specific_is_a_prefix_and_unknown_types_are_refused() {
        assert_eq!(PathKind::parse(Some("ImplementationSpecific")), Some(PathKind::Prefix));
        assert_eq!(PathKind::parse(None), Some(PathKind::Prefix));
        assert_eq!(PathKind::parse(Some("Regex")), None);
        assert!(rule("ImplementationSpecific", "/api").matches("/api/v1"));
        assert!(!rule("ImplementationSpecific", "/api").matches("/apis"));
        assert!(PathRule::new(PathKind::Prefix, "relative").is_none());
    }

    #[test]
    fn prefix_rules_with_and_without_trailing_slash_are_the_same_rule() {
        assert_eq!(rule("Prefix", "/foo/"), rule("Prefix", "/foo"));
        assert_eq!(rule("Prefix", "/foo//"), rule("Prefix", "/foo"));
        assert_ne!(rule("Exact", "/foo/"), rule("Exact", "/foo"));
    }

    #[test]
    fn host_wildcards_match_exactly_one_label() {
        let rows = [
            ("*.foo.com", "bar.foo.com", true),
            ("*.foo.com", "baz.bar.foo.com", false),
            ("*.foo.com", "foo.com", false),
            ("*.foo.com", ".foo.com", false),
            ("*.FOO.com", "bar.foo.com", true),
            ("foo.bar.com", "foo.bar.com", true),
            ("foo.bar.com", "bar.com", false),
            ("foo.bar.com", "x.foo.bar.com", false),
            ("Foo.Bar.com", "foo.bar.com", true),
        ];
        for (rule, host, want) in rows {
            assert_eq!(HostRule::parse(rule).expect("rule").matches(host), want, "{rule} vs {host}");
        }
        assert_eq!(HostRule::parse("foo.*.com"), None);
        assert_eq!(HostRule::parse("*"), None);
        assert_eq!(HostRule::parse("*.foo.com"), Some(HostRule::Wildcard("foo.com".into())));
    }

    #[test]
    fn the_request_host_drops_its_port_and_case() {
        assert_eq!(request_host("Foo.Example.com:8080"), "foo.example.com");
        assert_eq!(request_host("foo.example.com"), "foo.example.com");
        assert_eq!(request_host("foo.example.com."), "foo.example.com");
        assert_eq!(request_host("[::1]:443"), "[::1]");
        assert_eq!(request_host("127.0.0.1:80"), "127.0.0.1");
    }
}
