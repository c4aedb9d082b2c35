//! Serves the sample cluster plus `--services N` synthetic ClusterIP
//! Services on 127.0.0.1 without an API server: for load tests (dnsperf)
//! and poking at with dig.
//!
//! ```text
//! cargo run --release -p svcnet-dns --example serve_static -- --port 5353 --workers 1 --services 1000
//! dig @127.0.0.1 -p 5353 web.default.svc.cluster.local
//! ```

use std::sync::Arc;

use svcnet_dns::testkit::{sample_cluster, service};
use svcnet_dns::{DnsConfig, ZoneConfig, build_view, serve_static};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = arg("--port", 5353) as u16;
    let workers = arg("--workers", 0);
    let services = arg("--services", 1000);
    let mut cluster = sample_cluster();
    for i in 0..services {
        let ip = format!("10.97.{}.{}", i / 250, i % 250 + 1);
        cluster.services.push(Arc::new(service("bench", &format!("svc-{i}"), &[&ip], &[("http", 80, "TCP")])));
    }
    let config = DnsConfig {
        listen: ([127, 0, 0, 1], port).into(),
        udp_workers: workers,
        upstreams: Some(Vec::new()),
        metrics: Some(([127, 0, 0, 1], 0).into()),
        ..DnsConfig::default()
    };
    let started = std::time::Instant::now();
    let view = build_view(&ZoneConfig::new("cluster.local")?, &cluster, 1);
    let built = started.elapsed();
    let server = serve_static(&config, view).await?;
    println!(
        "serving {} names on udp+tcp {} (metrics {:?}); view built in {built:?}, compiled and serving after {:?}",
        server.view().nodes().count(),
        server.udp_addr(),
        server.metrics_addr(),
        started.elapsed()
    );
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
