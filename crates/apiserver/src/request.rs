//! Turning a request line into a [`RequestInfo`]: which resource, which
//! object, which verb — the same decomposition kube-apiserver's
//! `RequestInfoFactory` makes.

use std::collections::HashMap;

use svcnet_api::resources::{self, ResourceInfo};

use crate::error::{ApiError, Result};

/// A request for a resource (as opposed to discovery, health or OpenAPI).
#[derive(Debug)]
pub struct ResourceRequest {
    pub resource: &'static ResourceInfo,
    /// The namespace in the path, if any.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// Legacy `/watch/` path prefix.
    pub watch_path: bool,
}

/// Where a path points.
#[derive(Debug)]
pub enum Route {
    Resource(ResourceRequest),
    /// `/api`, `/apis`, `/api/v1`, `/apis/apps`, `/apis/apps/v1`.
    Discovery(DiscoveryPath),
    Version,
    Health(String),
    OpenApiV2,
    OpenApiV3Root,
    OpenApiV3(String),
    NotFound,
}

#[derive(Debug)]
pub enum DiscoveryPath {
    CoreVersions,
    Groups,
    Group(String),
    GroupVersion { group: String, version: String },
}

/// Decomposes a URL path.
pub fn route(path: &str) -> Result<Route> {
    let path = path.trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    let r = match parts.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "readyz" | "livez", ..] => Route::Health(path.to_string()),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Root,
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3(rest.join("/")),
        ["api"] => Route::Discovery(DiscoveryPath::CoreVersions),
        ["apis"] => Route::Discovery(DiscoveryPath::Groups),
        ["api", "v1"] => Route::Discovery(DiscoveryPath::GroupVersion { group: String::new(), version: "v1".into() }),
        ["apis", group] => Route::Discovery(DiscoveryPath::Group(group.to_string())),
        ["apis", group, version] => {
            Route::Discovery(DiscoveryPath::GroupVersion { group: group.to_string(), version: version.to_string() })
        }
        ["api", version, rest @ ..] => resource_route("", version, rest)?,
        ["apis", group, version, rest @ ..] => resource_route(group, version, rest)?,
        _ => Route::NotFound,
    };
    Ok(r)
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Result<Route> {
    let (watch_path, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    // namespaces/{ns}/{resource}... unless the path addresses a namespace
    // object itself (namespaces/{name}[/status|/finalize]).
    let (namespace, rest): (Option<String>, &[&str]) = match rest {
        ["namespaces", ns, resource, tail @ ..] if !matches!(*resource, "status" | "finalize") => {
            let mut v = vec![*resource];
            v.extend_from_slice(tail);
            return finish(group, version, Some(decode(ns)), &v, watch_path);
        }
        other => (None, other),
    };
    finish(group, version, namespace, rest, watch_path)
}

fn finish(group: &str, version: &str, namespace: Option<String>, rest: &[&str], watch_path: bool) -> Result<Route> {
    let Some((plural, tail)) = rest.split_first() else {
        return Ok(Route::NotFound);
    };
    // The legacy `namespaces/{ns}/bindings` collection binds the pod its
    // body names: the `pods/binding` subresource without a name.
    if group.is_empty() && *plural == "bindings" && namespace.is_some() && tail.is_empty() {
        let resource = resources::by_plural("", "pods").filter(|r| r.version == version);
        return Ok(resource.map_or(Route::NotFound, |resource| {
            Route::Resource(ResourceRequest {
                resource,
                namespace,
                name: None,
                subresource: Some("binding".into()),
                watch_path,
            })
        }));
    }
    let Some(resource) = resources::by_plural(group, plural).filter(|r| r.version == version) else {
        return Ok(Route::NotFound);
    };
    if namespace.is_some() && !resource.namespaced {
        return Ok(Route::NotFound);
    }
    let (name, subresource) = match tail {
        [] => (None, None),
        [name] => (Some(decode(name)), None),
        [name, sub] => (Some(decode(name)), Some(sub.to_string())),
        // `services/{name}/proxy/{path...}`: the rest is the proxied path.
        [name, "proxy", ..] => (Some(decode(name)), Some("proxy".to_string())),
        _ => return Ok(Route::NotFound),
    };
    Ok(Route::Resource(ResourceRequest { resource, namespace, name, subresource, watch_path }))
}

/// Parsed query string; repeated keys keep the last value, as Go's
/// `url.Values.Get` returns the first — both agree for what clients send.
#[derive(Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        let mut map = HashMap::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.entry(decode(k)).or_insert_with(|| decode(v));
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// `true`/`1` as Go's strconv.ParseBool reads them.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True" | "TRUE" | "t" | "T"))
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::BadRequest(format!("invalid value for {key}: {v:?} is not an integer"))),
        }
    }
}

/// Percent-decoding with `+` as space, as in application/x-www-form-urlencoded.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(path: &str) -> ResourceRequest {
        match route(path).expect("route") {
            Route::Resource(r) => r,
            other => panic!("{path} routed to {other:?}"),
        }
    }

    #[test]
    fn namespaced_item_paths_name_namespace_resource_and_object() {
        let r = resource("/api/v1/namespaces/dev/services/web/status");
        assert_eq!(r.resource.plural, "services");
        assert_eq!(r.namespace.as_deref(), Some("dev"));
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.subresource.as_deref(), Some("status"));
    }

    #[test]
    fn namespace_objects_and_their_subresources_are_cluster_scoped() {
        let r = resource("/api/v1/namespaces/dev");
        assert_eq!(r.resource.plural, "namespaces");
        assert_eq!(r.name.as_deref(), Some("dev"));
        assert!(r.namespace.is_none());
        let r = resource("/api/v1/namespaces/dev/finalize");
        assert_eq!(r.subresource.as_deref(), Some("finalize"));
    }

    #[test]
    fn group_paths_and_legacy_watch_prefix_are_understood() {
        let r = resource("/apis/apps/v1/watch/namespaces/default/deployments");
        assert!(r.watch_path);
        assert_eq!(r.resource.kind, "Deployment");
        assert!(matches!(route("/apis/apps/v2/deployments"), Ok(Route::NotFound)));
        assert!(matches!(route("/api/v1/namespaces/x/nodes"), Ok(Route::NotFound)));
    }

    #[test]
    fn proxy_subresources_carry_a_path_of_their_own() {
        let Ok(Route::Resource(r)) = route("/api/v1/namespaces/dev/services/https:web:8443/proxy/a/b/") else {
            panic!()
        };
        assert_eq!(
            (r.resource.plural, r.name.as_deref(), r.subresource.as_deref()),
            ("services", Some("https:web:8443"), Some("proxy"))
        );
        let Ok(Route::Resource(r)) = route("/api/v1/namespaces/dev/pods/web-1/proxy") else { panic!() };
        assert_eq!(r.subresource.as_deref(), Some("proxy"));
        assert!(matches!(route("/api/v1/namespaces/dev/pods/web-1/status/extra"), Ok(Route::NotFound)));
    }

    #[test]
    fn bindings_route_to_the_binding_subresource_of_pods() {
        let r = resource("/api/v1/namespaces/dev/pods/web/binding");
        assert_eq!(
            (r.resource.plural, r.name.as_deref(), r.subresource.as_deref()),
            ("pods", Some("web"), Some("binding"))
        );
        let r = resource("/api/v1/namespaces/dev/bindings");
        assert_eq!((r.resource.plural, r.name.as_deref(), r.subresource.as_deref()), ("pods", None, Some("binding")));
        assert_eq!(r.namespace.as_deref(), Some("dev"));
        assert!(matches!(route("/api/v1/bindings"), Ok(Route::NotFound)));
        assert!(matches!(route("/api/v1/namespaces/dev/bindings/web"), Ok(Route::NotFound)));
    }

    #[test]
    fn query_strings_are_percent_decoded() {
        let q = Query::parse(Some("labelSelector=app%3Dweb%2Ctier+in+(a)&limit=5&watch=true"));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert_eq!(q.int("limit").ok().flatten(), Some(5));
        assert!(q.flag("watch"));
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
    }
}
