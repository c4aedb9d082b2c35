//! The registry of API resources svcnet serves: one [`ResourceInfo`] per
//! resource, the single source for routing, discovery, OpenAPI and tables.

/// Everything the server needs to know about one resource type.
#[derive(Debug)]
pub struct ResourceInfo {
    /// API group; "" for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub list_kind: &'static str,
    /// Lowercase plural used in URLs, e.g. "services".
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub namespaced: bool,
    pub categories: &'static [&'static str],
    /// Has a `/status` subresource.
    pub has_status: bool,
    /// Has a `/scale` subresource (autoscaling/v1 Scale).
    pub has_scale: bool,
    /// OpenAPI definition name of the kind, e.g. "io.k8s.api.core.v1.Service".
    pub definition: &'static str,
}

impl ResourceInfo {
    /// "v1" for the core group, "apps/v1" otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }

    /// The URL prefix of the group version: "/api/v1" or "/apis/apps/v1".
    pub fn group_version_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }
}

macro_rules! resource {
    ($group:literal, $version:literal, $kind:literal, $plural:literal, $singular:literal,
     short: [$($short:literal),*], namespaced: $ns:literal, categories: [$($cat:literal),*],
     status: $status:literal, scale: $scale:literal, def: $def:literal) => {
        ResourceInfo {
            group: $group,
            version: $version,
            kind: $kind,
            list_kind: concat!($kind, "List"),
            plural: $plural,
            singular: $singular,
            short_names: &[$($short),*],
            namespaced: $ns,
            categories: &[$($cat),*],
            has_status: $status,
            has_scale: $scale,
            definition: $def,
        }
    };
}

/// Every resource svcnet serves, in discovery order.
pub static RESOURCES: &[ResourceInfo] = &[
    resource!("", "v1", "Namespace", "namespaces", "namespace", short: ["ns"], namespaced: false,
        categories: [], status: true, scale: false, def: "io.k8s.api.core.v1.Namespace"),
    resource!("", "v1", "Node", "nodes", "node", short: ["no"], namespaced: false,
        categories: [], status: true, scale: false, def: "io.k8s.api.core.v1.Node"),
    resource!("", "v1", "Pod", "pods", "pod", short: ["po"], namespaced: true,
        categories: ["all"], status: true, scale: false, def: "io.k8s.api.core.v1.Pod"),
    resource!("", "v1", "Service", "services", "service", short: ["svc"], namespaced: true,
        categories: ["all"], status: true, scale: false, def: "io.k8s.api.core.v1.Service"),
    resource!("", "v1", "Endpoints", "endpoints", "endpoints", short: ["ep"], namespaced: true,
        categories: [], status: false, scale: false, def: "io.k8s.api.core.v1.Endpoints"),
    resource!("", "v1", "Secret", "secrets", "secret", short: [], namespaced: true,
        categories: [], status: false, scale: false, def: "io.k8s.api.core.v1.Secret"),
    resource!("", "v1", "ConfigMap", "configmaps", "configmap", short: ["cm"], namespaced: true,
        categories: [], status: false, scale: false, def: "io.k8s.api.core.v1.ConfigMap"),
    resource!("", "v1", "Event", "events", "event", short: ["ev"], namespaced: true,
        categories: [], status: false, scale: false, def: "io.k8s.api.core.v1.Event"),
    resource!("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", short: [],
        namespaced: true, categories: [], status: false, scale: false,
        def: "io.k8s.api.discovery.v1.EndpointSlice"),
    resource!("apps", "v1", "Deployment", "deployments", "deployment", short: ["deploy"], namespaced: true,
        categories: ["all"], status: true, scale: true, def: "io.k8s.api.apps.v1.Deployment"),
    resource!("apps", "v1", "ReplicaSet", "replicasets", "replicaset", short: ["rs"], namespaced: true,
        categories: ["all"], status: true, scale: true, def: "io.k8s.api.apps.v1.ReplicaSet"),
    resource!("apps", "v1", "StatefulSet", "statefulsets", "statefulset", short: ["sts"], namespaced: true,
        categories: ["all"], status: true, scale: true, def: "io.k8s.api.apps.v1.StatefulSet"),
    resource!("apps", "v1", "DaemonSet", "daemonsets", "daemonset", short: ["ds"], namespaced: true,
        categories: ["all"], status: true, scale: false, def: "io.k8s.api.apps.v1.DaemonSet"),
    resource!("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", short: [],
        namespaced: true, categories: [], status: false, scale: false,
        def: "io.k8s.api.apps.v1.ControllerRevision"),
    resource!("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", short: ["ing"], namespaced: true,
        categories: [], status: true, scale: false, def: "io.k8s.api.networking.v1.Ingress"),
    resource!("networking.k8s.io", "v1", "IngressClass", "ingressclasses", "ingressclass", short: [],
        namespaced: false, categories: [], status: false, scale: false,
        def: "io.k8s.api.networking.v1.IngressClass"),
];

/// The API groups served, with their single version, in discovery order.
/// The core group ("") is served under /api, the others under /apis.
pub static GROUPS: &[(&str, &str)] =
    &[("", "v1"), ("apps", "v1"), ("discovery.k8s.io", "v1"), ("networking.k8s.io", "v1")];

/// Looks a resource up by group and plural name.
pub fn by_plural(group: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES.iter().find(|r| r.group == group && r.plural == plural)
}

/// Looks a resource up by its apiVersion ("v1", "apps/v1") and kind.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES.iter().find(|r| r.kind == kind && r.api_version() == api_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_belongs_to_a_served_group() {
        for r in RESOURCES {
            assert!(GROUPS.iter().any(|(g, v)| *g == r.group && *v == r.version), "{}", r.kind);
        }
    }

    #[test]
    fn lookups_find_services_by_plural_and_kind() {
        assert_eq!(by_plural("", "services").map(|r| r.kind), Some("Service"));
        assert_eq!(by_kind("apps/v1", "Deployment").map(|r| r.plural), Some("deployments"));
        assert!(by_kind("v1", "Deployment").is_none());
    }
}
