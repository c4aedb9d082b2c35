//! The `svcnet` binary: every component behind one command line.
//!
//! `svcnet up` runs the whole sandbox cluster in one process;
//! `svcnet apiserver` runs the API server alone. Start reading at [`run`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

mod ingress;

use clap::{Args, Parser, Subcommand};
use svcnet_apiserver::{ApiServer, ApiServerConfig};
use svcnet_controllers::{ControllerConfig, ControllerManager};
use svcnet_store::{EmbeddedStore, EmbeddedStoreConfig};

#[derive(Parser)]
#[command(name = "svcnet", version, about = "Kubernetes Service networking in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sandbox cluster: API server, store and controllers (nodes,
    /// DNS and ingress join as they land).
    Up(ServerArgs),
    /// Run the Kubernetes API server alone, on its embedded store.
    Apiserver(ServerArgs),
    /// Run the controllers (endpoints, endpointslices, deployments,
    /// replicasets, garbage collector) against an API server.
    ControllerManager(ClientArgs),
    /// Run the cluster DNS server (zone cluster.local) against an API server.
    Dns(DnsArgs),
    /// Run the Ingress controller (IngressClass `svcnet`) against an API
    /// server.
    Ingress(ingress::IngressArgs),
    /// Run a node agent against an API server: registers the node and runs
    /// the pods bound to it in network namespaces.
    Agent(AgentArgs),
    /// The built-in `svcnet/echoserver` image (run inside a pod by the agent).
    Echoserver,
    /// Inspect the nodes' service proxies.
    #[command(subcommand)]
    Proxy(ProxyCommand),
}

#[derive(Subcommand)]
enum ProxyCommand {
    /// What each node has programmed: one block per service address with
    /// its endpoints, the way `ipvsadm -Ln` reads.
    List {
        /// kubeconfig of the API server (default: $KUBECONFIG, ~/.kube/config).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Only this node.
        #[arg(long)]
        node: Option<String>,
    },
}

#[derive(Args, Clone)]
struct AgentArgs {
    /// kubeconfig of the API server (default: $KUBECONFIG, ~/.kube/config,
    /// or the in-cluster service account).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The node's name.
    #[arg(long)]
    node: String,
    /// The node's network namespace; created, with a pod bridge, if missing.
    #[arg(long)]
    node_netns: Option<String>,
    /// The node's address (inside its namespace).
    #[arg(long)]
    node_ip: std::net::Ipv4Addr,
    /// The node's pod CIDR.
    #[arg(long, value_parser = svcnet_agent::ipam::Ipv4Cidr::parse)]
    pod_cidr: svcnet_agent::ipam::Ipv4Cidr,
    /// Where the agent keeps logs and pod files.
    #[arg(long, default_value = "./svcnet-agent")]
    state_dir: PathBuf,
    /// Address of the agent's exec/logs server, as the API server reaches it.
    #[arg(long, default_value = "127.0.0.1:10250")]
    listen: std::net::SocketAddr,
    /// File holding the bearer token the API server presents to the agent.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// The cluster DNS Service's address, for pods' resolv.conf.
    #[arg(long, default_value = "10.96.0.10")]
    cluster_dns: std::net::Ipv4Addr,
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// The service proxy: nftables, iptables, userspace, userspace-lc, or
    /// none.
    #[arg(long, default_value = "nftables")]
    proxy_mode: String,
    /// The cluster's pod CIDR (traffic from outside it is masqueraded).
    #[arg(long, default_value = "10.244.0.0/16")]
    cluster_cidr: String,
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cidr: String,
}

#[derive(Args, Clone)]
struct DnsArgs {
    /// kubeconfig of the API server to follow (default: $KUBECONFIG,
    /// ~/.kube/config, or the in-cluster service account).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// UDP and TCP address to answer on.
    #[arg(long, default_value = "0.0.0.0:53")]
    listen: std::net::SocketAddr,
    /// The cluster domain served.
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// TTL of the answers, in seconds.
    #[arg(long, default_value_t = 5)]
    ttl: u32,
    /// Upstream resolvers for names outside the zone (repeatable; default:
    /// the nameservers of /etc/resolv.conf).
    #[arg(long)]
    upstream: Vec<std::net::SocketAddr>,
    /// Pod records: disabled, insecure or verified (as CoreDNS's `pods`).
    #[arg(long, default_value = "insecure", value_parser = parse_pods_mode)]
    pods: svcnet_dns::PodsMode,
    /// Address of the /metrics endpoint ("" to disable).
    #[arg(long, default_value = "0.0.0.0:9153")]
    metrics: String,
}

fn parse_pods_mode(s: &str) -> Result<svcnet_dns::PodsMode, String> {
    match s {
        "disabled" => Ok(svcnet_dns::PodsMode::Disabled),
        "insecure" => Ok(svcnet_dns::PodsMode::Insecure),
        "verified" => Ok(svcnet_dns::PodsMode::Verified),
        other => Err(format!("{other:?} is not one of disabled, insecure, verified")),
    }
}

#[derive(Args, Clone)]
struct ClientArgs {
    /// kubeconfig of the API server to control (default: $KUBECONFIG,
    /// ~/.kube/config, or the in-cluster service account).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Most endpoints per EndpointSlice.
    #[arg(long, default_value_t = 100)]
    max_endpoints_per_slice: usize,
}

#[derive(Args, Clone)]
struct ServerArgs {
    /// Where state, certificates and the kubeconfig live.
    #[arg(long, default_value = "./svcnet-data")]
    data_dir: PathBuf,
    /// HTTPS port of the API server on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    api_port: u16,
    /// The range Service cluster IPs come from.
    #[arg(long, default_value = "10.96.0.0/12", value_parser = parse_cidr)]
    service_cidr: (std::net::Ipv4Addr, u8),
    /// The range NodePorts come from.
    #[arg(long, default_value = "30000-32767", value_parser = parse_port_range)]
    service_node_port_range: (u16, u16),
    /// (`up` only) Port on 127.0.0.1 where the cluster DNS answers, for
    /// `dig @127.0.0.1 -p PORT`; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    dns_port: u16,
    /// (`up` only) How many nodes (network namespaces) to run; 0 runs the
    /// control plane alone, without root.
    #[arg(long, default_value_t = 2)]
    nodes: u32,
    /// (`up` only) The block node pod CIDRs (/24 each) come from.
    #[arg(long, default_value = "10.244.0.0/16", value_parser = svcnet_agent::ipam::Ipv4Cidr::parse)]
    cluster_cidr: svcnet_agent::ipam::Ipv4Cidr,
    /// (`up` only) Addresses LoadBalancer Services get (CIDRs, ranges
    /// a.b.c.d-e.f.g.h or addresses, comma-separated; "none" turns the
    /// allocator off).
    #[arg(long, default_value = svcnet_controllers::loadbalancer::DEFAULT_POOL)]
    lb_pool: String,
    /// (`up` only) The nodes' service proxy: nftables, iptables, userspace
    /// (round-robin) or userspace-lc (least connections).
    #[arg(long, default_value = "nftables", value_parser = svcnet_proxy::Mode::parse)]
    proxy_mode: svcnet_proxy::Mode,
    /// (`up` only) The node network, inside the sandbox.
    #[arg(long, default_value = "172.18.0.0/24", value_parser = svcnet_agent::ipam::Ipv4Cidr::parse)]
    node_cidr: svcnet_agent::ipam::Ipv4Cidr,
    /// (`up` only) Port on 127.0.0.1 where the Ingress controller serves
    /// HTTP (default 80, or a free port if 80 cannot be bound; 0 picks a
    /// free one).
    #[arg(long)]
    http_port: Option<u16>,
    /// (`up` only) Port on 127.0.0.1 for HTTPS (default 443, as --http-port).
    #[arg(long)]
    https_port: Option<u16>,
}

fn parse_cidr(s: &str) -> Result<(std::net::Ipv4Addr, u8), String> {
    svcnet_apiserver::allocation::parse_cidr(s).ok_or_else(|| format!("{s:?} is not an IPv4 CIDR such as 10.96.0.0/12"))
}

fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    svcnet_apiserver::allocation::parse_port_range(s)
        .ok_or_else(|| format!("{s:?} is not a port range such as 30000-32767"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("SVCNET_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Command::Ingress(ingress::IngressArgs { workers: Some(n), .. }) = &cli.command {
        builder.worker_threads((*n).max(1));
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("svcnet: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("svcnet: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn run(cli: Cli) -> Result<(), BoxError> {
    match cli.command {
        Command::Up(args) => serve(args, true).await,
        Command::Apiserver(args) => serve(args, false).await,
        Command::ControllerManager(args) => controller_manager(args).await,
        Command::Dns(args) => dns(args).await,
        Command::Ingress(args) => ingress::run(args).await,
        Command::Agent(args) => agent(args).await,
        Command::Proxy(ProxyCommand::List { kubeconfig, node }) => {
            proxy_list(kubeconfig.as_deref(), node.as_deref()).await
        }
        Command::Echoserver => {
            let config = svcnet_agent::echoserver::EchoConfig::from_env()?;
            svcnet_agent::echoserver::run(config).await?;
            Ok(())
        }
    }
}

async fn dns(args: DnsArgs) -> Result<(), BoxError> {
    let client = client_for(args.kubeconfig.as_deref(), "svcnet-dns")?;
    let metrics = if args.metrics.is_empty() { None } else { Some(args.metrics.parse()?) };
    let config = svcnet_dns::DnsConfig {
        listen: args.listen,
        cluster_domain: args.cluster_domain,
        ttl: args.ttl,
        upstreams: if args.upstream.is_empty() { None } else { Some(args.upstream) },
        pods: args.pods,
        metrics,
        ..svcnet_dns::DnsConfig::default()
    };
    let server = svcnet_dns::start(client, config).await?;
    println!("svcnet dns ready on {} (udp) and {} (tcp)", server.udp_addr(), server.tcp_addr());
    wait_for_signal().await?;
    server.shutdown().await;
    Ok(())
}

fn client_for(kubeconfig: Option<&std::path::Path>, component: &str) -> Result<svcnet_client::Client, BoxError> {
    let config = match kubeconfig {
        Some(path) => svcnet_client::Config::from_kubeconfig(path)?,
        None => svcnet_client::Config::infer()?,
    };
    let agent = format!("{component}/{}", env!("CARGO_PKG_VERSION"));
    Ok(svcnet_client::Client::new(config)?.with_user_agent(&agent)?)
}

async fn controller_manager(args: ClientArgs) -> Result<(), BoxError> {
    let client = client_for(args.kubeconfig.as_deref(), "svcnet-controller-manager")?;
    let config = ControllerConfig {
        max_endpoints_per_slice: args.max_endpoints_per_slice.max(1),
        ..ControllerConfig::default()
    };
    let manager = ControllerManager::start(client, config);
    manager.informers.wait_synced().await;
    println!("svcnet controller-manager ready");
    wait_for_signal().await?;
    Ok(())
}

async fn serve(args: ServerArgs, with_controllers: bool) -> Result<(), BoxError> {
    let nodes = if with_controllers { args.nodes } else { 0 };
    if nodes > 0 && !svcnet_agent::sys::can_manage_namespaces() {
        return Err(format!(
            "svcnet up runs its {nodes} nodes and their pods in network namespaces, which needs root \
             (or CAP_SYS_ADMIN and CAP_NET_ADMIN); run it as root, or pass --nodes 0 to run the API server, \
             controllers and DNS without nodes"
        )
        .into());
    }
    std::fs::create_dir_all(&args.data_dir)?;
    let agent_token = (nodes > 0).then(random_token);
    // The API server's watch cache is the store's only watcher and keeps its
    // own history for clients, so the store needs only enough history to
    // bridge a reconnect of that one watcher.
    let store_config = EmbeddedStoreConfig { history_events: 10_000, ..EmbeddedStoreConfig::default() };
    let store = EmbeddedStore::open(&args.data_dir.join("store"), store_config).await?;
    let mut config = ApiServerConfig::new(&args.data_dir, args.api_port);
    config.ranges = svcnet_apiserver::allocation::Ranges {
        service_cidr: args.service_cidr,
        node_ports: args.service_node_port_range,
    };
    config.agent_token = agent_token.clone();
    // Pods reach the API server as https://10.96.0.1 (the `kubernetes`
    // Service), so the serving certificate names that address.
    let first = u32::from(args.service_cidr.0) + 1;
    config.extra_san_ips.push(std::net::IpAddr::V4(std::net::Ipv4Addr::from(first)));
    let server = ApiServer::start(config, store.clone() as Arc<_>).await?;
    // The controllers talk to the API server over HTTPS like any client,
    // so they behave the same inside `up` and standalone.
    let _controllers = if with_controllers {
        let client = client_for(Some(&server.kubeconfig), "svcnet-controller-manager")?;
        let lb_pool = match args.lb_pool.as_str() {
            "none" | "" => None,
            pool => Some(svcnet_controllers::loadbalancer::parse_pool(pool).map_err(|e| format!("--lb-pool: {e}"))?),
        };
        let manager = ControllerManager::start(client, ControllerConfig { lb_pool, ..ControllerConfig::default() });
        manager.informers.wait_synced().await;
        Some(manager)
    } else {
        None
    };
    // Cluster DNS, on loopback until nodes give pods a way to reach it.
    let dns_config = svcnet_dns::DnsConfig {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], args.dns_port)),
        metrics: None,
        ..svcnet_dns::DnsConfig::default()
    };
    let mut dns = if with_controllers {
        let client = client_for(Some(&server.kubeconfig), "svcnet-dns")?;
        let dns = svcnet_dns::start(client, dns_config.clone()).await?;
        println!("svcnet cluster DNS on 127.0.0.1:{} (udp and tcp)", dns.udp_addr().port());
        Some(dns)
    } else {
        None
    };
    let agents = if nodes > 0 {
        let client = client_for(Some(&server.kubeconfig), "svcnet-agent")?;
        let (prefix, agents, planned) = start_sandbox(&args, nodes, client.clone(), agent_token).await?;
        // One socket thread per node namespace, shared by everything this
        // process serves inside the sandbox (DNS, API relays, Ingress).
        let planned = planned
            .into_iter()
            .map(|n| Ok((svcnet_netns::NetnsSockets::enter(&svcnet_netns::ip::netns_path(&n.netns))?, n)))
            .collect::<Result<Vec<_>, BoxError>>()?;
        let relays = match dns.as_mut() {
            Some(dns) => cluster_services(&client, &planned, server.addr, dns, &dns_config).await?,
            None => Vec::new(),
        };
        // Service and Pod proxy requests (`kubectl proxy`) reach pods
        // from inside the first node, as a control-plane node would.
        if let Some((sockets, _)) = planned.first() {
            let sockets = sockets.clone();
            let dial: svcnet_apiserver::service_proxy::Dial = Arc::new(move |addr| {
                let sockets = sockets.clone();
                Box::pin(async move { sockets.tcp_socket(addr.is_ipv6()).await?.connect(addr).await })
            });
            let _ = server.api.cluster_dial.set(dial);
        }
        Some((prefix, agents, relays, planned))
    } else {
        None
    };
    // From here on the sandbox exists: whatever fails, it is taken down
    // below before the error is returned.
    let ingress = async {
        if !with_controllers {
            return Ok(None);
        }
        let client = client_for(Some(&server.kubeconfig), "svcnet-ingress")?;
        let ports = ingress::HostPorts { http: args.http_port, https: args.https_port };
        let planned = agents.as_ref().map(|a| a.3.as_slice()).unwrap_or_default();
        Ok::<_, BoxError>(Some(ingress::start_in_sandbox(client, ports, planned).await?))
    }
    .await;
    let outcome = match ingress {
        Ok(ingress) => {
            println!(
                "svcnet API server ready at https://{} — export KUBECONFIG={}",
                server.addr,
                server.kubeconfig.display()
            );
            let waited = wait_for_signal().await;
            tracing::info!("shutting down");
            if let Some(ingress) = ingress {
                ingress.shutdown(std::time::Duration::from_secs(2)).await;
            }
            waited
        }
        Err(e) => Err(e),
    };
    if let Some((prefix, agents, relays, _)) = agents {
        for r in relays {
            r.abort();
        }
        let stops: Vec<_> =
            agents.into_iter().map(|a| tokio::spawn(a.shutdown(std::time::Duration::from_secs(2)))).collect();
        for s in stops {
            let _ = s.await;
        }
        if let Err(e) = svcnet_agent::sandbox::destroy(&prefix).await {
            tracing::warn!(error = %e, "removing the sandbox's network namespaces failed");
        }
    }
    if let Some(dns) = dns {
        dns.shutdown().await;
    }
    server.shutdown().await;
    store.close().await?;
    outcome
}

fn random_token() -> String {
    use std::fmt::Write;
    let bytes: [u8; 24] = rand::random();
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Builds the sandbox's nodes (removing what a crashed run left) and starts
/// an agent for each; returns the namespace prefix and the agents.
async fn start_sandbox(
    args: &ServerArgs,
    nodes: u32,
    client: svcnet_client::Client,
    token: Option<String>,
) -> Result<(String, Vec<svcnet_agent::Agent>, Vec<svcnet_agent::sandbox::SandboxNode>), BoxError> {
    let prefix = svcnet_agent::sandbox::prefix_for(&args.data_dir);
    let cfg = svcnet_agent::sandbox::SandboxConfig {
        prefix: prefix.clone(),
        nodes,
        cluster_cidr: args.cluster_cidr,
        node_cidr: args.node_cidr,
    };
    // kubeadm's kube-proxy ConfigMap: deleting a node's kube-proxy pod
    // restarts its proxy in the mode named there.
    svcnet_agent::kube_proxy::publish_config(&client, args.proxy_mode, &args.cluster_cidr.to_string()).await?;
    let planned = svcnet_agent::sandbox::create(&cfg).await?;
    let nodes_out = planned.clone();
    let exe = std::env::current_exe()?;
    let mut agents = Vec::new();
    for n in planned {
        let config = svcnet_agent::AgentConfig {
            node_name: n.name.clone(),
            node_netns: n.netns.clone(),
            netns_prefix: prefix.clone(),
            node_ip: n.ip,
            pod_cidr: n.pod_cidr,
            cluster_dns: std::net::Ipv4Addr::new(10, 96, 0, 10),
            cluster_domain: "cluster.local".into(),
            state_dir: args.data_dir.join("nodes").join(&n.name),
            svcnet_exe: exe.clone(),
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            token: token.clone(),
            labels: Vec::new(),
            proxy: Some(svcnet_agent::ProxySettings {
                mode: args.proxy_mode,
                host_node_ports: agents.is_empty(),
                cluster_cidr: args.cluster_cidr.to_string(),
                service_cidr: format!("{}/{}", args.service_cidr.0, args.service_cidr.1),
            }),
        };
        match svcnet_agent::Agent::start(client.clone(), config).await {
            Ok(a) => agents.push(a),
            Err(e) => {
                for a in agents {
                    a.shutdown(std::time::Duration::ZERO).await;
                }
                let _ = svcnet_agent::sandbox::destroy(&prefix).await;
                return Err(e.into());
            }
        }
    }
    println!("svcnet nodes running: {nodes} (network namespaces {prefix}-*)");
    Ok((prefix, agents, nodes_out))
}

/// Makes the cluster's own services reachable from pods, as in a real
/// cluster: the DNS server also answers on every node's address (port 53),
/// published as the kube-dns Service at 10.96.0.10; the API server is
/// relayed from every node's address, published as the `kubernetes`
/// Service's endpoints.
async fn cluster_services(
    client: &svcnet_client::Client,
    nodes: &[(svcnet_netns::NetnsSockets, svcnet_agent::sandbox::SandboxNode)],
    api: std::net::SocketAddr,
    dns: &mut svcnet_dns::DnsServer,
    dns_config: &svcnet_dns::DnsConfig,
) -> Result<Vec<tokio::task::JoinHandle<()>>, BoxError> {
    let mut relays = Vec::new();
    for (sockets, n) in nodes {
        let at = std::net::SocketAddr::from((n.ip, 53));
        let udp = sockets.udp_bind(at).await?.into_std()?;
        let tcp = sockets.tcp_listen(at).await?;
        dns.listen_also(udp, tcp, dns_config)?;
        let listener = sockets.tcp_listen(std::net::SocketAddr::from((n.ip, api.port()))).await?;
        relays.push(svcnet_proxy::relay_to_host(listener, api));
    }
    let addresses: Vec<serde_json::Value> =
        nodes.iter().map(|(_, n)| serde_json::json!({ "ip": n.ip.to_string(), "nodeName": n.name })).collect();
    let services: svcnet_client::Api<k8s_openapi::api::core::v1::Service> =
        svcnet_client::Api::namespaced(client.clone(), "kube-system");
    let kube_dns = serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "kube-dns", "namespace": "kube-system",
                      "labels": { "k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS", "kubernetes.io/cluster-service": "true" } },
        "spec": { "clusterIP": "10.96.0.10", "ports": [
            { "name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53 },
            { "name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53 } ] },
    });
    match services.create(&svcnet_client::PostParams::default(), &serde_json::from_value(kube_dns)?).await {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => {}
        Err(e) => return Err(e.into()),
    }
    let endpoints = |ns: &str, name: &str, ports: serde_json::Value| {
        serde_json::json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": { "name": name, "namespace": ns },
            "subsets": [{ "addresses": addresses, "ports": ports }],
        })
    };
    let put = |ns: &'static str, name: &'static str, body: serde_json::Value| {
        let api: svcnet_client::Api<k8s_openapi::api::core::v1::Endpoints> =
            svcnet_client::Api::namespaced(client.clone(), ns);
        async move {
            let obj: k8s_openapi::api::core::v1::Endpoints = serde_json::from_value(body)?;
            match api.get_opt(name).await? {
                Some(mut current) => {
                    current.subsets = obj.subsets;
                    api.replace(name, &svcnet_client::PostParams::default(), &current).await?;
                }
                None => {
                    api.create(&svcnet_client::PostParams::default(), &obj).await?;
                }
            }
            Ok::<(), BoxError>(())
        }
    };
    put(
        "kube-system",
        "kube-dns",
        endpoints(
            "kube-system",
            "kube-dns",
            serde_json::json!([
            { "name": "dns", "port": 53, "protocol": "UDP" }, { "name": "dns-tcp", "port": 53, "protocol": "TCP" } ]),
        ),
    )
    .await?;
    put(
        "default",
        "kubernetes",
        endpoints(
            "default",
            "kubernetes",
            serde_json::json!([{ "name": "https", "port": api.port(), "protocol": "TCP" }]),
        ),
    )
    .await?;
    Ok(relays)
}

async fn proxy_list(kubeconfig: Option<&std::path::Path>, only: Option<&str>) -> Result<(), BoxError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let client = client_for(kubeconfig, "svcnet-proxy-list")?;
    let nodes: svcnet_client::Api<k8s_openapi::api::core::v1::Node> = svcnet_client::Api::all(client);
    let list = nodes.list(&svcnet_client::ListParams::default()).await?;
    let mut out = String::new();
    for n in &list.items {
        let name = n.metadata.name.clone().unwrap_or_default();
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let Some(addr) = n.metadata.annotations.as_ref().and_then(|a| a.get("svcnet.io/proxy-endpoint")) else {
            out.push_str(&format!("Node {name}: no svcnet proxy\n\n"));
            continue;
        };
        let mut conn = tokio::net::TcpStream::connect(addr.as_str()).await?;
        conn.write_all(b"GET /proxy HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n").await?;
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).await?;
        let text = String::from_utf8_lossy(&raw);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        let services: Vec<svcnet_proxy::VirtualService> = serde_json::from_str(body)?;
        out.push_str(&format!("Node {name} ({addr})\n"));
        out.push_str(&svcnet_proxy::render_list(&services));
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

async fn agent(args: AgentArgs) -> Result<(), BoxError> {
    if !svcnet_agent::sys::can_manage_namespaces() {
        return Err(
            "svcnet agent runs pods in network namespaces, which needs root (or CAP_SYS_ADMIN and CAP_NET_ADMIN)"
                .into(),
        );
    }
    let client = client_for(args.kubeconfig.as_deref(), "svcnet-agent")?;
    let netns = args.node_netns.clone().unwrap_or_else(|| format!("svcnet-{}", args.node));
    if !svcnet_agent::net::netns_path(&netns).exists() {
        let node = svcnet_agent::net::NodeNet {
            netns: netns.clone(),
            index: 0,
            node_ip: args.node_ip,
            node_prefix_len: 32,
            gateway: args.pod_cidr.nth(1),
            pod_prefix_len: args.pod_cidr.prefix_len,
            peers: Vec::new(),
        };
        svcnet_agent::net::create_node(None, &node).await?;
    }
    let token = match &args.token_file {
        Some(p) => Some(std::fs::read_to_string(p)?.trim().to_string()),
        None => None,
    };
    let config = svcnet_agent::AgentConfig {
        node_name: args.node.clone(),
        node_netns: netns.clone(),
        netns_prefix: netns,
        node_ip: args.node_ip,
        pod_cidr: args.pod_cidr,
        cluster_dns: args.cluster_dns,
        cluster_domain: args.cluster_domain,
        state_dir: args.state_dir,
        svcnet_exe: std::env::current_exe()?,
        listen: args.listen,
        token,
        labels: Vec::new(),
        proxy: if args.proxy_mode == "none" {
            None
        } else {
            Some(svcnet_agent::ProxySettings {
                mode: svcnet_proxy::Mode::parse(&args.proxy_mode)?,
                host_node_ports: false,
                cluster_cidr: args.cluster_cidr.clone(),
                service_cidr: args.service_cidr.clone(),
            })
        },
    };
    let agent = svcnet_agent::Agent::start(client, config).await?;
    println!("svcnet agent for node {} ready; exec and logs at {}", args.node, agent.endpoint());
    wait_for_signal().await?;
    agent.shutdown(std::time::Duration::from_secs(30)).await;
    Ok(())
}

async fn wait_for_signal() -> Result<(), BoxError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
