//! Objects every cluster has from its first start: the built-in
//! namespaces and the `kubernetes` Service at the first address of the
//! service CIDR, as kube-apiserver creates them.

use serde_json::json;
use svcnet_api::resources::{self, ResourceInfo};

use crate::error::{ApiError, Result};
use crate::registry::{Registry, WriteOptions};

/// Namespaces that exist in every cluster.
pub const BUILTIN_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

pub(crate) fn ns_resource() -> &'static ResourceInfo {
    // Namespaces are always served.
    resources::by_plural("", "namespaces").expect("namespaces are served")
}

fn services() -> &'static ResourceInfo {
    resources::by_plural("", "services").expect("services are served")
}

/// Creates whatever of the built-in objects does not exist yet.
pub async fn ensure(registry: &Registry, api_port: u16) -> Result<()> {
    let opts = WriteOptions::default();
    for name in BUILTIN_NAMESPACES {
        let obj = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } });
        match registry.create(ns_resource(), None, obj, &opts).await {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let ip = registry.ranges.nth_ip(1).to_string();
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": { "component": "apiserver", "provider": "kubernetes" },
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": ip,
            "ports": [{ "name": "https", "port": 443, "protocol": "TCP", "targetPort": api_port }],
            "sessionAffinity": "None",
        },
    });
    match registry.create(services(), Some("default"), service, &opts).await {
        Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
