//! `svcnet-bench-ingress`: svcnet's Ingress proxy with a fixed route table,
//! for `bench/ingress.sh`, where it stands beside nginx in front of the
//! same loopback backend. No API server: the API refuses loopback
//! endpoints, and the benchmark measures the data plane.
//!
//! The table is what the controller would build from one Ingress (host
//! `bench.test`, path `/` Prefix, TLS for `bench.test` with `ssl-redirect:
//! "false"`, so plain HTTP is proxied as nginx does) over a Service
//! whose one ready endpoint is `--backend`. With `--churn-ms N` the table
//! is rebuilt from its objects and swapped every N ms, alternating with a
//! second version that has one more Ingress — the reconfiguration the
//! controller does on every change. Prints `ready` and its addresses, then
//! serves until SIGTERM or SIGINT; with `--churn-ms` it prints how many
//! swaps it made when stopped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Parser;
use svcnet_ingress::testkit::{IngressBuilder, service, slice, tls_secret};
use svcnet_ingress::{DirectConnector, IngressConfig, Listeners, RouteTable, build_table, serve_static};

#[derive(Parser, Debug, Clone)]
#[command(name = "svcnet-bench-ingress", about = "svcnet's Ingress proxy over a fixed table, for bench/ingress.sh")]
struct Args {
    /// Tokio worker threads.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// The one backend endpoint (IP:port).
    #[arg(long)]
    backend: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:0")]
    http: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:0")]
    https: SocketAddr,
    /// PEM certificate and key for host bench.test (else the default
    /// certificate only).
    #[arg(long, requires = "key")]
    cert: Option<std::path::PathBuf>,
    #[arg(long)]
    key: Option<std::path::PathBuf>,
    /// Swap in a rebuilt table every this many milliseconds (0: never).
    #[arg(long, default_value_t = 0)]
    churn_ms: u64,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn table(args: &Args, tls: Option<(&str, &str)>, extra: bool) -> RouteTable {
    let port = args.backend.port();
    let services = vec![service("bench", "backend", &[("http", 80, i32::from(port))])];
    let ip = args.backend.ip().to_string();
    let slices = vec![slice("bench", "backend", "backend-1", &[(ip.as_str(), true)], &[("http", port)])];
    let mut main = IngressBuilder::new("bench", "bench").path(Some("bench.test"), "/", "Prefix", "backend", "80");
    let mut secrets = Vec::new();
    if let Some((crt, key)) = tls {
        // nginx in bench/ingress.sh serves bench.test on both its plain
        // and its TLS listener; without this, plain HTTP would get our 308
        // to HTTPS instead of being proxied (ingress-nginx's default too).
        main = main.tls(&["bench.test"], "bench-tls").annotation("nginx.ingress.kubernetes.io/ssl-redirect", "false");
        secrets.push(tls_secret("bench", "bench-tls", crt, key));
    }
    let mut ingresses = vec![main.created(1).build()];
    if extra {
        ingresses.push(
            IngressBuilder::new("bench", "churn")
                .path(Some("churn.test"), "/", "Prefix", "backend", "80")
                .created(2)
                .build(),
        );
    }
    let (table, problems) = build_table(&ingresses, &[], &services, &slices, &secrets, &IngressConfig::default());
    for p in problems {
        eprintln!("svcnet-bench-ingress: {}: {}", p.reason, p.message);
    }
    table
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.workers.max(1)).enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<(), BoxError> {
    let pem = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => Some((std::fs::read_to_string(c)?, std::fs::read_to_string(k)?)),
        _ => None,
    };
    let tls = pem.as_ref().map(|(c, k)| (c.as_str(), k.as_str()));
    let listeners = Listeners {
        http: vec![tokio::net::TcpListener::bind(args.http).await?],
        https: vec![tokio::net::TcpListener::bind(args.https).await?],
    };
    let server = Arc::new(serve_static(table(&args, tls, false), listeners, Arc::new(DirectConnector), None).await?);
    println!("ready http={} https={}", server.http_addrs()[0], server.https_addrs()[0]);
    let swaps = Arc::new(AtomicU64::new(0));
    let churn = (args.churn_ms > 0).then(|| {
        let (server, swaps, args, pem) = (server.clone(), swaps.clone(), args.clone(), pem.clone());
        tokio::spawn(async move {
            let tls = pem.as_ref().map(|(c, k)| (c.as_str(), k.as_str()));
            let mut tick = tokio::time::interval(Duration::from_millis(args.churn_ms));
            loop {
                tick.tick().await;
                let n = swaps.fetch_add(1, Ordering::Relaxed);
                // Rebuilt from the objects each time, as the controller does.
                server.publish(table(&args, tls, n % 2 == 0));
            }
        })
    });
    wait_for_signal().await?;
    if let Some(task) = churn {
        task.abort();
        println!("swaps={}", swaps.load(Ordering::Relaxed));
    }
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
