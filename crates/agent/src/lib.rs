//! svcnet's node agent: what the kubelet and a CNI plugin do for a node,
//! without containers. A node is a network namespace with a bridge; a pod is
//! a network namespace wired to that bridge by a veth pair; a container is a
//! host process started inside the pod's namespaces.
//!
//! - `sandbox`, `net`, `ipam`: nodes, pods' networks and addresses.
//! - `pod`: the pod runtime (sandbox, containers, probes, status).
//! - `node`: the Node object and its heartbeat.
//! - `access`: what the agent's HTTP server (exec, logs) needs from the pod
//!   runtime; `streaming`: that server.
//! - `echoserver`: the built-in `svcnet/echoserver` image.
//! - `kube_proxy`: the node's service proxy, published as a kube-proxy pod
//!   and restarted in the ConfigMap's mode when that pod is deleted.

pub mod access;
pub mod echoserver;
pub mod hostport;
pub mod ipam;
pub mod kube_proxy;
pub use svcnet_netns::ip as net;
pub mod node;
pub mod pod;
pub mod sandbox;
pub mod streaming;
pub mod sys;

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use svcnet_client::{Api, ChangeKind, Client, Notification, Reflector, ReflectorConfig};
use tokio::task::JoinHandle;

use ipam::{Ipam, Ipv4Cidr};
use pod::{Runtime, RuntimeConfig, spec::ClusterFacts};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("entering the node's network namespace {netns}: {source}")]
    Netns { netns: String, source: std::io::Error },
    #[error("listening on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("starting the service proxy: {0}")]
    Proxy(std::io::Error),
    #[error("registering node {node}: {source}")]
    Register { node: String, source: svcnet_client::Error },
}

/// One node's agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub node_name: String,
    /// The node's network namespace (it must exist).
    pub node_netns: String,
    /// Pods' namespaces are called `<netns_prefix>-<namespace>-<pod>-<uid>`.
    pub netns_prefix: String,
    pub node_ip: Ipv4Addr,
    pub pod_cidr: Ipv4Cidr,
    pub cluster_dns: Ipv4Addr,
    pub cluster_domain: String,
    /// Logs and per-pod files.
    pub state_dir: PathBuf,
    /// The svcnet binary, which runs the built-in images.
    pub svcnet_exe: PathBuf,
    /// Where the agent's HTTP server (exec, logs) listens.
    pub listen: SocketAddr,
    /// Bearer token the API server must present to that server.
    pub token: Option<String>,
    pub labels: Vec<(String, String)>,
    /// The service proxy this node runs, if any.
    pub proxy: Option<ProxySettings>,
}

/// How the node's service proxy runs.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    pub mode: svcnet_proxy::Mode,
    /// Forward 127.0.0.1:<nodePort> on the host to this node.
    pub host_node_ports: bool,
    pub cluster_cidr: String,
    pub service_cidr: String,
}

/// What the streaming server reaches on this node: the pod runtime's
/// containers, and the kube-proxy's log for its mirror pod.
struct NodeAccess {
    runtime: Runtime,
    kube_proxy: Option<kube_proxy::ProxyLogs>,
}

impl access::PodAccess for NodeAccess {
    fn container(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
    ) -> Result<access::ContainerRef, access::AccessError> {
        if self.kube_proxy.as_ref().is_some_and(|k| k.log(namespace, pod, false).is_some()) {
            return Err(access::AccessError::bad_request(format!(
                "pod {pod} is this node's kube-proxy, which runs inside the svcnet agent: it has no container to exec into"
            )));
        }
        self.runtime.container(namespace, pod, container)
    }

    fn log(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        previous: bool,
    ) -> Result<access::LogRef, access::AccessError> {
        match self.kube_proxy.as_ref().and_then(|k| k.log(namespace, pod, previous)) {
            Some(found) => found,
            None => self.runtime.log(namespace, pod, container, previous),
        }
    }
}

pub struct Agent {
    runtime: Runtime,
    proxy: Option<kube_proxy::KubeProxy>,
    endpoint: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    name: String,
}

impl Agent {
    /// Registers the node and starts running the pods bound to it.
    pub async fn start(client: Client, cfg: AgentConfig) -> Result<Agent, AgentError> {
        let sockets = sys::NetnsSockets::enter(&net::netns_path(&cfg.node_netns))
            .map_err(|source| AgentError::Netns { netns: cfg.node_netns.clone(), source })?;
        // Made now, off the async threads, rather than at the first
        // container's start.
        let _ = tokio::task::spawn_blocking(sys::prepare_mount_template).await;
        let runtime = Runtime::new(
            RuntimeConfig {
                node_name: cfg.node_name.clone(),
                node_netns: cfg.node_netns.clone(),
                netns_prefix: cfg.netns_prefix.clone(),
                node_ip: cfg.node_ip,
                facts: ClusterFacts {
                    dns: cfg.cluster_dns,
                    domain: cfg.cluster_domain.clone(),
                    node_name: cfg.node_name.clone(),
                    node_ip: cfg.node_ip,
                },
                state_dir: cfg.state_dir.clone(),
                svcnet_exe: cfg.svcnet_exe.clone(),
            },
            client.clone(),
            sockets.clone(),
            Ipam::new(cfg.pod_cidr),
        );
        let proxy = match &cfg.proxy {
            Some(p) => {
                let env = svcnet_proxy::NodeEnv {
                    node_name: cfg.node_name.clone(),
                    netns: cfg.node_netns.clone(),
                    sockets,
                    node_ips: vec![cfg.node_ip],
                    pod_cidr: cfg.pod_cidr.to_string(),
                    bridge: net::NODE_BRIDGE.to_string(),
                    cluster_cidr: p.cluster_cidr.clone(),
                    service_cidr: p.service_cidr.clone(),
                };
                let config = svcnet_proxy::ProxyConfig {
                    env,
                    mode: p.mode,
                    host_node_ports: p.host_node_ports,
                    metrics: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
                    log: None,
                };
                let settings = kube_proxy::Settings {
                    node: cfg.node_name.clone(),
                    node_ip: cfg.node_ip,
                    config,
                    log_dir: cfg.state_dir.join("kube-proxy"),
                };
                Some(kube_proxy::KubeProxy::start(client.clone(), settings).await.map_err(AgentError::Proxy)?)
            }
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| AgentError::Listen { addr: cfg.listen, source })?;
        let endpoint = listener.local_addr().map_err(|source| AgentError::Listen { addr: cfg.listen, source })?;
        let mut tasks = Vec::new();
        let access = NodeAccess { runtime: runtime.clone(), kube_proxy: proxy.as_ref().map(|p| p.logs()) };
        tasks.push(tokio::spawn(streaming::serve(listener, Arc::new(access), cfg.token.clone())));

        let facts = node::NodeFacts {
            name: cfg.node_name.clone(),
            ip: cfg.node_ip,
            pod_cidr: cfg.pod_cidr,
            agent_endpoint: endpoint,
            proxy_endpoint: proxy.as_ref().and_then(|p| p.metrics_addr()),
            labels: cfg.labels.clone(),
        };
        node::register(&client, &facts)
            .await
            .map_err(|source| AgentError::Register { node: cfg.node_name.clone(), source })?;
        tasks.push(tokio::spawn(node::heartbeat(client.clone(), facts)));

        let pods: Api<Pod> = Api::all(client.clone());
        let reflector =
            Reflector::new(pods, ReflectorConfig::default().fields(&format!("spec.nodeName={}", cfg.node_name)));
        let mut sub = reflector.subscribe();
        tasks.push(tokio::spawn(reflector.run()));
        let rt = runtime.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(n) = sub.recv().await {
                match n {
                    Notification::Resync => {
                        let pods = sub.store().state();
                        let live: HashSet<String> = pods.iter().map(|p| pod::spec::uid(p).to_string()).collect();
                        for p in pods.into_iter().filter(|p| !kube_proxy::is_mirror_pod(p)) {
                            rt.sync(p);
                        }
                        for uid in rt.running() {
                            if !live.contains(&uid) {
                                rt.forget(&uid);
                            }
                        }
                    }
                    Notification::Changed(c) => match c.kind {
                        // Mirror pods stand for what the agent runs itself.
                        ChangeKind::Applied if kube_proxy::is_mirror_pod(&c.object) => {}
                        ChangeKind::Applied => rt.sync(c.object),
                        ChangeKind::Deleted => rt.forget(pod::spec::uid(&c.object)),
                    },
                }
            }
        }));
        tracing::info!(node = %cfg.node_name, %endpoint, "agent started");
        Ok(Agent { runtime, proxy, endpoint, tasks, name: cfg.node_name })
    }

    /// The agent's HTTP server (exec, logs).
    pub fn endpoint(&self) -> SocketAddr {
        self.endpoint
    }

    /// Where the proxy serves `/metrics`, `/healthz` and `/proxy`.
    pub fn proxy_endpoint(&self) -> Option<SocketAddr> {
        self.proxy.as_ref().and_then(|p| p.metrics_addr())
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Stops watching, then stops every pod (SIGTERM, then SIGKILL after
    /// `grace`) and removes their namespaces. Pod objects stay; the next
    /// agent starts them again.
    pub async fn shutdown(self, grace: Duration) {
        for t in &self.tasks {
            t.abort();
        }
        self.runtime.shutdown(grace).await;
        if let Some(p) = self.proxy {
            p.shutdown().await;
        }
        tracing::info!(node = %self.name, "agent stopped");
    }
}
