//! API discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/<g>/<v>`)
//! and `/version`, in the legacy (unaggregated) format that every
//! client-go version understands.

use serde_json::{Value, json};
use svcnet_api::resources::{GROUPS, RESOURCES};

/// The Kubernetes version svcnet's API corresponds to.
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "33";

pub fn version() -> Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": format!("v{KUBE_MAJOR}.{KUBE_MINOR}.0-svcnet.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "svcnet",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH }),
    })
}

pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }],
    })
}

fn group_entry(group: &str, version: &str) -> Value {
    let gv = json!({ "groupVersion": format!("{group}/{version}"), "version": version });
    json!({ "name": group, "versions": [gv.clone()], "preferredVersion": gv })
}

pub fn groups() -> Value {
    let groups: Vec<Value> = GROUPS.iter().filter(|(g, _)| !g.is_empty()).map(|(g, v)| group_entry(g, v)).collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

pub fn group(name: &str) -> Option<Value> {
    let (g, v) = GROUPS.iter().find(|(g, _)| !g.is_empty() && *g == name)?;
    let mut entry = group_entry(g, v);
    entry["kind"] = json!("APIGroup");
    entry["apiVersion"] = json!("v1");
    Some(entry)
}

const ALL_VERBS: [&str; 8] = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    if !GROUPS.iter().any(|(g, v)| *g == group && *v == version) {
        return None;
    }
    let mut resources = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group && r.version == version) {
        let verbs: Vec<&str> = if r.plural == "namespaces" {
            ALL_VERBS.iter().copied().filter(|v| *v != "deletecollection").collect()
        } else {
            ALL_VERBS.to_vec()
        };
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": verbs,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        resources.push(entry);
        if r.plural == "namespaces" {
            resources.push(json!({
                "name": "namespaces/finalize", "singularName": "", "namespaced": false,
                "kind": "Namespace", "verbs": ["update"],
            }));
        }
        if r.has_scale {
            resources.push(json!({
                "name": format!("{}/scale", r.plural), "singularName": "", "namespaced": r.namespaced,
                "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"],
            }));
        }
        if r.plural == "pods" {
            resources.push(json!({
                "name": "pods/ephemeralcontainers", "singularName": "", "namespaced": true,
                "kind": "Pod", "verbs": ["get", "patch", "update"],
            }));
        }
        if r.has_status {
            resources.push(json!({
                "name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced,
                "kind": r.kind, "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_discovery_lists_services_with_short_name_and_all_category() {
        let list = resource_list("", "v1").expect("core");
        let svc = list["resources"].as_array().and_then(|a| a.iter().find(|r| r["name"] == "services")).expect("svc");
        assert_eq!(svc["shortNames"], json!(["svc"]));
        assert_eq!(svc["categories"], json!(["all"]));
        assert_eq!(svc["namespaced"], true);
        assert!(list["resources"].as_array().is_some_and(|a| a.iter().any(|r| r["name"] == "services/status")));
    }

    #[test]
    fn deployments_have_a_scale_subresource_of_kind_scale() {
        let list = resource_list("apps", "v1").expect("apps");
        let scale = list["resources"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["name"] == "deployments/scale"))
            .expect("scale");
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["group"], "autoscaling");
        assert!(resource_list("apps", "v2").is_none());
    }
}
