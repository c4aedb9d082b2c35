//! The Ingress controller inside `svcnet up`, and `svcnet ingress` alone.
//!
//! Inside `up` the controller runs in the svcnet process, on the host, yet
//! serves and proxies inside the sandbox: it listens on every node's
//! address (ports 80 and 443, opened inside each node's namespace), on
//! 127.0.0.1 for the host, and opens its connections to pods from inside
//! the first node's namespace, which routes to every pod CIDR.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use svcnet_ingress::{Connector, DirectConnector, IngressConfig, IngressController, Listeners};

use crate::BoxError;

/// The IngressClass `up` creates and marks default, and the controller it
/// names.
pub const CLASS_NAME: &str = "svcnet";
pub const CONTROLLER_NAME: &str = "svcnet.io/ingress-controller";

#[derive(clap::Args, Clone)]
pub struct IngressArgs {
    /// kubeconfig of the API server to follow (default: $KUBECONFIG,
    /// ~/.kube/config, or the in-cluster service account).
    #[arg(long)]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Plain HTTP address.
    #[arg(long, default_value = "0.0.0.0:80")]
    pub http_addr: SocketAddr,
    /// HTTPS address.
    #[arg(long, default_value = "0.0.0.0:443")]
    pub https_addr: SocketAddr,
    /// Address of /metrics and /healthz ("" to disable).
    #[arg(long, default_value = "0.0.0.0:10254")]
    pub metrics: String,
    /// The IngressClass this controller serves.
    #[arg(long, default_value = CLASS_NAME)]
    pub class: String,
    /// The `spec.controller` of the IngressClasses this controller serves.
    #[arg(long, default_value = CONTROLLER_NAME)]
    pub controller_name: String,
    /// Addresses published in status.loadBalancer.ingress (repeatable).
    #[arg(long)]
    pub status_address: Vec<IpAddr>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
}

/// `svcnet ingress`: the controller alone, against any API server.
pub async fn run(args: IngressArgs) -> Result<(), BoxError> {
    let client = crate::client_for(args.kubeconfig.as_deref(), "svcnet-ingress")?;
    let metrics = if args.metrics.is_empty() { None } else { Some(args.metrics.parse()?) };
    let config = IngressConfig {
        class_name: args.class,
        controller_name: args.controller_name,
        status_addresses: args.status_address,
        metrics,
        ..IngressConfig::default()
    };
    let http = bind(args.http_addr, "--http-addr").await?;
    let https = bind(args.https_addr, "--https-addr").await?;
    let (http_addr, https_addr) = (http.local_addr()?, https.local_addr()?);
    let listeners = Listeners { http: vec![http], https: vec![https] };
    let controller = IngressController::start(client, config, listeners, Arc::new(DirectConnector)).await?;
    println!(
        "svcnet ingress ready on http://{http_addr} and https://{https_addr}{}",
        controller.metrics_addr().map(|m| format!(" (metrics on http://{m}/metrics)")).unwrap_or_default()
    );
    crate::wait_for_signal().await?;
    controller.shutdown(std::time::Duration::from_secs(10)).await;
    Ok(())
}

async fn bind(addr: SocketAddr, flag: &str) -> Result<tokio::net::TcpListener, BoxError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("{flag} {addr}: cannot listen: {e}").into())
}

/// Opens connections to pods from inside a node's network namespace.
struct NodeConnector(svcnet_netns::NetnsSockets);

impl Connector for NodeConnector {
    fn connect(
        &self,
        addr: SocketAddr,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<tokio::net::TcpStream>> + Send + '_>> {
        Box::pin(async move {
            let socket = self.0.tcp_socket(addr.is_ipv6()).await?;
            socket.set_nodelay(true)?;
            socket.connect(addr).await
        })
    }
}

/// The host-side ports of `up` (`--http-port`, `--https-port`).
pub struct HostPorts {
    pub http: Option<u16>,
    pub https: Option<u16>,
}

/// A host listener on 127.0.0.1. An explicit port must be free; the default
/// (80 or 443) falls back to a free port when it is taken or privileged, and
/// the line `up` prints says which port it got.
async fn host_listener(explicit: Option<u16>, default: u16, flag: &str) -> Result<tokio::net::TcpListener, BoxError> {
    let at = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    match explicit {
        Some(port) => bind(at(port), flag).await,
        None => match tokio::net::TcpListener::bind(at(default)).await {
            Ok(l) => Ok(l),
            Err(e) => {
                eprintln!(
                    "svcnet: ingress cannot listen on 127.0.0.1:{default} ({e}); using a free port instead ({flag} picks one)"
                );
                bind(at(0), flag).await
            }
        },
    }
}

/// Starts the controller inside `up`: the `svcnet` IngressClass (default),
/// host listeners, and per node the node address's ports 80 and 443.
pub async fn start_in_sandbox(
    client: svcnet_client::Client,
    ports: HostPorts,
    nodes: &[(svcnet_netns::NetnsSockets, svcnet_agent::sandbox::SandboxNode)],
) -> Result<IngressController, BoxError> {
    ensure_default_class(&client).await?;
    let http = host_listener(ports.http, 80, "--http-port").await?;
    let https = host_listener(ports.https, 443, "--https-port").await?;
    let (http_port, https_port) = (http.local_addr()?.port(), https.local_addr()?.port());
    let mut listeners = Listeners { http: vec![http], https: vec![https] };
    let mut connector: Arc<dyn Connector> = Arc::new(DirectConnector);
    let mut status_addresses: Vec<IpAddr> = Vec::new();
    for (i, (sockets, n)) in nodes.iter().enumerate() {
        listeners.http.push(sockets.tcp_listen(SocketAddr::from((n.ip, 80))).await?);
        listeners.https.push(sockets.tcp_listen(SocketAddr::from((n.ip, 443))).await?);
        status_addresses.push(IpAddr::V4(n.ip));
        if i == 0 {
            connector = Arc::new(NodeConnector(sockets.clone()));
        }
    }
    if nodes.is_empty() {
        status_addresses.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let config = IngressConfig {
        class_name: CLASS_NAME.into(),
        controller_name: CONTROLLER_NAME.into(),
        status_addresses,
        metrics: None,
        ..IngressConfig::default()
    };
    let controller = IngressController::start(client, config, listeners, connector).await?;
    let on_nodes =
        if nodes.is_empty() { String::new() } else { " and on every node's address, ports 80 and 443".into() };
    println!("svcnet ingress on http://127.0.0.1:{http_port} and https://127.0.0.1:{https_port}{on_nodes}");
    Ok(controller)
}

/// Creates the `svcnet` IngressClass, marked default, unless an
/// IngressClass of that name exists (a user's edits are kept).
async fn ensure_default_class(client: &svcnet_client::Client) -> Result<(), BoxError> {
    use k8s_openapi::api::networking::v1::IngressClass;
    let classes: svcnet_client::Api<IngressClass> = svcnet_client::Api::all(client.clone());
    let class: IngressClass = serde_json::from_value(serde_json::json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": { "name": CLASS_NAME,
                      "annotations": { "ingressclass.kubernetes.io/is-default-class": "true" } },
        "spec": { "controller": CONTROLLER_NAME },
    }))?;
    match classes.create(&svcnet_client::PostParams::default(), &class).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_already_exists() => Ok(()),
        Err(e) => Err(e.into()),
    }
}
