//! The Node object: registered at start, its Ready condition kept fresh.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use serde_json::{Value, json};
use svcnet_client::{Api, Client, Patch, PatchParams, PostParams};

use crate::ipam::Ipv4Cidr;

/// Where the API server finds a node's agent (exec, logs): `host:port`.
pub const AGENT_ENDPOINT_ANNOTATION: &str = "svcnet.io/agent-endpoint";

/// Where a node's service proxy serves `/metrics`, `/healthz` and `/proxy`.
pub const PROXY_ENDPOINT_ANNOTATION: &str = "svcnet.io/proxy-endpoint";

/// How often the agent refreshes its Ready condition (the kubelet's
/// nodeStatusReportFrequency is 5 minutes with leases; svcnet has no
/// leases, so the condition itself is the heartbeat).
pub const HEARTBEAT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct NodeFacts {
    pub name: String,
    pub ip: Ipv4Addr,
    pub pod_cidr: Ipv4Cidr,
    pub agent_endpoint: SocketAddr,
    pub proxy_endpoint: Option<SocketAddr>,
    pub labels: Vec<(String, String)>,
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn memory_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| l.strip_prefix("MemTotal:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default()
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default()
}

fn node_object(f: &NodeFacts) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert("kubernetes.io/hostname".into(), json!(f.name));
    labels.insert("kubernetes.io/os".into(), json!("linux"));
    labels.insert(
        "kubernetes.io/arch".into(),
        json!(std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64")),
    );
    labels.insert("beta.kubernetes.io/os".into(), json!("linux"));
    labels.insert("beta.kubernetes.io/arch".into(), labels["kubernetes.io/arch"].clone());
    for (k, v) in &f.labels {
        labels.insert(k.clone(), json!(v));
    }
    let mut annotations = serde_json::Map::new();
    annotations.insert(AGENT_ENDPOINT_ANNOTATION.into(), json!(f.agent_endpoint.to_string()));
    if let Some(p) = f.proxy_endpoint {
        annotations.insert(PROXY_ENDPOINT_ANNOTATION.into(), json!(p.to_string()));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": f.name,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": { "podCIDR": f.pod_cidr.to_string(), "podCIDRs": [f.pod_cidr.to_string()] },
    })
}

fn node_status(f: &NodeFacts, ready_since: &str) -> Value {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let resources = json!({ "cpu": cpus.to_string(), "memory": format!("{}Ki", memory_kib()), "pods": "110", "ephemeral-storage": "0" });
    let now = now();
    let healthy = |kind: &str, reason: &str, message: &str| {
        json!({ "type": kind, "status": "False", "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": ready_since })
    };
    json!({
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            healthy("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            healthy("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            healthy("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            { "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "svcnet agent is posting ready status",
              "lastHeartbeatTime": now, "lastTransitionTime": ready_since },
        ],
        "addresses": [
            { "type": "InternalIP", "address": f.ip.to_string() },
            { "type": "Hostname", "address": f.name },
        ],
        "daemonEndpoints": { "kubeletEndpoint": { "Port": f.agent_endpoint.port() } },
        "nodeInfo": {
            "machineID": "", "systemUUID": "", "bootID": boot_id(),
            "kernelVersion": kernel(), "osImage": "svcnet sandbox node",
            "containerRuntimeVersion": concat!("svcnet://", env!("CARGO_PKG_VERSION")),
            "kubeletVersion": "v1.33.0", "kubeProxyVersion": "",
            "operatingSystem": "linux", "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        },
    })
}

/// Creates the Node (or takes over an existing one of the same name) and
/// writes its status.
pub async fn register(client: &Client, f: &NodeFacts) -> Result<(), svcnet_client::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let obj: Node = serde_json::from_value(node_object(f)).map_err(svcnet_client::Error::Encode)?;
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => {
            let patch = node_object(f);
            api.patch(&f.name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
        Err(e) => return Err(e),
    }
    let since = now();
    api.patch_status(&f.name, &PatchParams::default(), &Patch::Merge(&json!({ "status": node_status(f, &since) })))
        .await?;
    Ok(())
}

/// Refreshes the Ready condition every [`HEARTBEAT`] until cancelled;
/// re-registers the node if it was deleted.
pub async fn heartbeat(client: Client, f: NodeFacts) {
    let api: Api<Node> = Api::all(client.clone());
    let since = now();
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        let status = node_status(&f, &since);
        match api.patch_status(&f.name, &PatchParams::default(), &Patch::Merge(&json!({ "status": status }))).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {
                if let Err(e) = register(&client, &f).await {
                    tracing::warn!(node = %f.name, error = %e, "re-registering the node failed");
                }
            }
            Err(e) => tracing::warn!(node = %f.name, error = %e, "node heartbeat failed"),
        }
    }
}
