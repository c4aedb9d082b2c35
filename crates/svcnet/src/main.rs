//! The `svcnet` binary: every component behind one command line.
//!
//! `svcnet up` runs the whole sandbox cluster in one process;
//! `svcnet apiserver` runs the API server alone. Start reading at [`run`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

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
}

fn parse_cidr(s: &str) -> Result<(std::net::Ipv4Addr, u8), String> {
    svcnet_apiserver::allocation::parse_cidr(s).ok_or_else(|| format!("{s:?} is not an IPv4 CIDR such as 10.96.0.0/12"))
}

fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    svcnet_apiserver::allocation::parse_port_range(s).ok_or_else(|| format!("{s:?} is not a port range such as 30000-32767"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SVCNET_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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
    let config = ControllerConfig { max_endpoints_per_slice: args.max_endpoints_per_slice.max(1), ..ControllerConfig::default() };
    let manager = ControllerManager::start(client, config);
    manager.informers.wait_synced().await;
    println!("svcnet controller-manager ready");
    wait_for_signal().await?;
    Ok(())
}

async fn serve(args: ServerArgs, with_controllers: bool) -> Result<(), BoxError> {
    std::fs::create_dir_all(&args.data_dir)?;
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
    let server = ApiServer::start(config, store.clone() as Arc<_>).await?;
    // The controllers talk to the API server over HTTPS like any client,
    // so they behave the same inside `up` and standalone.
    let _controllers = if with_controllers {
        let client = client_for(Some(&server.kubeconfig), "svcnet-controller-manager")?;
        let manager = ControllerManager::start(client, ControllerConfig::default());
        manager.informers.wait_synced().await;
        Some(manager)
    } else {
        None
    };
    // Cluster DNS, on loopback until nodes give pods a way to reach it.
    let dns = if with_controllers {
        let client = client_for(Some(&server.kubeconfig), "svcnet-dns")?;
        let config = svcnet_dns::DnsConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], args.dns_port)),
            metrics: None,
            ..svcnet_dns::DnsConfig::default()
        };
        let dns = svcnet_dns::start(client, config).await?;
        println!("svcnet cluster DNS on 127.0.0.1:{} (udp and tcp)", dns.udp_addr().port());
        Some(dns)
    } else {
        None
    };
    println!(
        "svcnet API server ready at https://{} — export KUBECONFIG={}",
        server.addr,
        server.kubeconfig.display()
    );
    wait_for_signal().await?;
    tracing::info!("shutting down");
    if let Some(dns) = dns {
        dns.shutdown().await;
    }
    server.shutdown().await;
    store.close().await?;
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
