//! Servers on free loopback ports, and `dig` with its output parsed.

use std::net::SocketAddr;
use std::sync::Arc;

use svcnet_dns::testkit::{headless, sample_cluster, slice};
use svcnet_dns::{Cluster, DnsConfig, DnsServer, ZoneConfig, build_view, serve_static};

/// Retries `$cond` (which may `.await`) every 50 ms until it holds or `$secs`
/// seconds pass, then fails with the message.
#[macro_export]
macro_rules! eventually {
    ($secs:expr, $cond:expr, $($msg:tt)+) => {{
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs($secs);
        loop {
            if $cond {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                panic!($($msg)+);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }};
}

/// Logs go to the test's output when `SVCNET_LOG` asks for them.
pub fn init_logging() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("SVCNET_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
}

/// The sample cluster plus headless Services `big` with 100 ready
/// endpoints (an answer too big for 512 bytes and for 1232) and `mid`
/// with 40 (too big for 512 only).
pub fn test_cluster() -> Cluster {
    let mut c = sample_cluster();
    for (name, count, net) in [("big", 100, 3), ("mid", 40, 4)] {
        let addrs: Vec<String> = (1..=count).map(|i| format!("10.{net}.0.{i}")).collect();
        let eps: Vec<(&str, Option<&str>, bool)> = addrs.iter().map(|a| (a.as_str(), None, true)).collect();
        c.services.push(Arc::new(headless("default", name, &[("http", 80, "TCP")])));
        c.slices.push(Arc::new(slice("default", name, &format!("{name}-1"), &eps, &[("http", 80, "TCP")])));
    }
    c
}

pub async fn server_with(config: DnsConfig) -> DnsServer {
    init_logging();
    let zone = ZoneConfig {
        ttl: config.ttl,
        pods: config.pods,
        ..ZoneConfig::new(&config.cluster_domain).expect("test setup")
    };
    serve_static(&config, build_view(&zone, &test_cluster(), 42)).await.expect("the server starts")
}

pub async fn server() -> DnsServer {
    server_with(DnsConfig::local()).await
}

/// What dig printed, parsed.
#[derive(Debug, Default)]
pub struct Dig {
    pub status: String,
    pub flags: Vec<String>,
    pub answer: Vec<String>,
    pub authority: Vec<String>,
    pub additional: Vec<String>,
    /// The UDP size of the response's OPT record, if it had one.
    pub edns_udp: Option<u16>,
    pub raw: String,
}

impl Dig {
    pub fn has_flag(&self, f: &str) -> bool {
        self.flags.iter().any(|x| x == f)
    }
}

/// Runs `dig @addr -p port <args>` (one try, 3 s) and parses its output.
pub async fn dig(addr: SocketAddr, args: &[&str]) -> Dig {
    let mut cmd = std::process::Command::new("dig");
    cmd.arg(format!("@{}", addr.ip())).arg("-p").arg(addr.port().to_string()).args(["+tries=1", "+time=3"]).args(args);
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("dig task")
        .expect("dig runs (Debian package dnsutils)");
    parse(&String::from_utf8_lossy(&output.stdout))
}

fn parse(text: &str) -> Dig {
    let mut d = Dig { raw: text.to_string(), ..Dig::default() };
    let mut section: Option<usize> = None;
    for line in text.lines() {
        if let Some(rest) = line.split("status: ").nth(1) {
            d.status = rest.split(',').next().unwrap_or_default().to_string();
        }
        if let Some(rest) = line.strip_prefix(";; flags: ") {
            d.flags = rest.split(';').next().unwrap_or_default().split_whitespace().map(String::from).collect();
        }
        if let Some(rest) = line.split("udp: ").nth(1) {
            d.edns_udp = rest.trim().parse().ok();
        }
        match line {
            ";; ANSWER SECTION:" => section = Some(0),
            ";; AUTHORITY SECTION:" => section = Some(1),
            ";; ADDITIONAL SECTION:" => section = Some(2),
            "" => section = None,
            _ => {
                if let Some(s) = section {
                    if !line.starts_with(';') {
                        let record = line.split_whitespace().collect::<Vec<_>>().join(" ");
                        [&mut d.answer, &mut d.authority, &mut d.additional][s].push(record);
                    }
                }
            }
        }
    }
    d
}

pub const SOA: &str = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5";
