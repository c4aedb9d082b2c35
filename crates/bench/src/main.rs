//! `svcnet-bench`: drives an API server over HTTPS the way client-go does
//! (one HTTP/2 connection per client, client-certificate auth) and prints
//! a Markdown table of throughput, latency percentiles, list time, watch
//! delivery latency and server RSS. `bench/apiserver.sh` runs it side by
//! side with the same write load against etcd.
//!
//! `svcnet-bench --kubeconfig K --pods N` runs the pod scenario instead
//! (`pods.rs`, behind `bench/pods.sh`): create-to-Ready latency of N pods
//! created at once on a cluster with nodes. `svcnet-bench --dns-memory ...`
//! measures cluster DNS processes' memory per object (`dns_memory.rs`,
//! behind `bench/dns-memory.sh`).

mod dns_memory;
mod pods;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http::{Method, Request};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser, Clone)]
struct Args {
    /// host:port of the API server.
    #[arg(long)]
    addr: String,
    /// svcnet data dir holding pki/ (ca.crt, admin.crt, admin.key).
    #[arg(long)]
    pki: std::path::PathBuf,
    /// Objects per write phase.
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Server process id, to read its RSS.
    #[arg(long)]
    pid: Option<u32>,
    /// Number of watchers for the delivery test.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Events created during the watch test.
    #[arg(long, default_value_t = 1_000)]
    watch_events: usize,
    /// Skip the create/update/delete phases (measure a fresh fill only).
    #[arg(long)]
    skip_writes: bool,
    /// Only run the etcd write comparison against this etcd client URL
    /// host:port (plain HTTP gRPC gateway).
    #[arg(long)]
    etcd: Option<String>,
    /// Run the endpoints-latency scenario instead: this many Services...
    #[arg(long)]
    endpoint_services: Option<usize>,
    /// ...each selecting this many pods.
    #[arg(long, default_value_t = 10)]
    pods_per_service: usize,
    /// Pods whose Ready change is timed.
    #[arg(long, default_value_t = 300)]
    samples: usize,
    /// Run the DNS programming-latency scenario against the cluster DNS at
    /// this UDP address: Services are created one at a time and each is
    /// timed until DNS answers its cluster IP.
    #[arg(long)]
    dns: Option<std::net::SocketAddr>,
    /// Services created (and timed) in the DNS scenario.
    #[arg(long, default_value_t = 300)]
    dns_services: usize,
    /// Services created before the DNS scenario times anything, so the
    /// zone is realistic in size.
    #[arg(long, default_value_t = 0)]
    dns_prefill: usize,
}

/// A DNS query for `name` A, id `id`.
fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, one question
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]); // root, A, IN
    q
}

/// Whether a response answers NOERROR with `ip` among its answers (the
/// address's four bytes end an A record's data).
fn dns_answers(resp: &[u8], ip: std::net::Ipv4Addr) -> bool {
    resp.len() > 12
        && resp[3] & 0x0f == 0
        && u16::from_be_bytes([resp[6], resp[7]]) > 0
        && resp.windows(4).any(|w| w == ip.octets())
}

/// Service creation → first correct DNS answer, one Service at a time.
async fn dns_latency(args: &Args, tls: &Arc<rustls::ClientConfig>, dns: std::net::SocketAddr) -> Result<(), BoxError> {
    let ns = "dns-bench";
    let mut c = Client::connect(&args.addr, tls.clone()).await?;
    let body = Bytes::from(json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } }).to_string());
    c.call(c.request(Method::POST, "https", "/api/v1/namespaces", "application/json", body)).await?;
    if args.dns_prefill > 0 {
        let conns = connect_many(args, tls, 16).await?;
        let fill = Arc::new(move |c: &Client, i: usize| {
            let body = json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": format!("fill-{i}") },
                "spec": { "ports": [{ "port": 80 }] } });
            (create_service(c, ns, Bytes::from(body.to_string())), 201)
        });
        run_phase("prefill", &conns, args.dns_prefill, fill).await;
        // Let the DNS view catch up with the burst before timing.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    sock.connect(dns).await?;
    let mut lat = Vec::new();
    let mut buf = vec![0u8; 4096];
    for i in 0..args.dns_services {
        let name = format!("d{i}");
        let body = json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": name },
            "spec": { "ports": [{ "port": 80 }] } });
        let start = Instant::now();
        let (_, resp) = c.call(create_service(&c, ns, Bytes::from(body.to_string()))).await?;
        let v: Value = serde_json::from_slice(&resp)?;
        let Some(ip) = v["spec"]["clusterIP"].as_str().and_then(|s| s.parse::<std::net::Ipv4Addr>().ok()) else {
            continue;
        };
        let query = dns_query(i as u16, &format!("{name}.{ns}.svc.cluster.local"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            sock.send(&query).await?;
            if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(50), sock.recv(&mut buf)).await {
                if dns_answers(&buf[..n], ip) {
                    lat.push(start.elapsed());
                    break;
                }
            }
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    lat.sort();
    println!("| measure | samples | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| Service created → first correct DNS answer (zone of {} other Services) | {} | {:.1} | {:.1} | {:.1} |",
        args.dns_prefill + 1,
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    );
    Ok(())
}

#[derive(Clone)]
enum Sender {
    H2(SendRequest<Full<Bytes>>),
    /// etcd's JSON gateway speaks HTTP/1.1 only; one request at a time.
    H1(Arc<tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<Full<Bytes>>>>),
}

#[derive(Clone)]
struct Client {
    send: Sender,
    authority: String,
}

impl Client {
    async fn connect(addr: &str, tls: Arc<rustls::ClientConfig>) -> Result<Client, BoxError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let stream = tokio_rustls::TlsConnector::from(tls).connect(ServerName::try_from("localhost")?, tcp).await?;
        let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Client { send: Sender::H2(send), authority: addr.to_string() })
    }

    async fn plain_http1(addr: &str) -> Result<Client, BoxError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        Ok(Client { send: Sender::H1(Arc::new(tokio::sync::Mutex::new(send))), authority: addr.to_string() })
    }

    /// Sends a request and returns the streaming response.
    async fn open(&mut self, req: Request<Full<Bytes>>) -> Result<http::Response<hyper::body::Incoming>, BoxError> {
        match &mut self.send {
            Sender::H2(s) => {
                s.ready().await?;
                Ok(s.send_request(req).await?)
            }
            Sender::H1(s) => {
                let mut s = s.lock().await;
                s.ready().await?;
                Ok(s.send_request(req).await?)
            }
        }
    }

    fn request(&self, method: Method, scheme: &str, path: &str, ct: &str, body: Bytes) -> Request<Full<Bytes>> {
        // HTTP/2 carries the authority in the URI; HTTP/1.1 wants an
        // origin-form target and a Host header.
        let uri = match self.send {
            Sender::H2(_) => format!("{scheme}://{}{path}", self.authority),
            Sender::H1(_) => path.to_string(),
        };
        Request::builder()
            .method(method)
            .uri(uri)
            .header("host", &self.authority)
            .header("content-type", ct)
            .header("accept", "application/json")
            .body(Full::new(body))
            .expect("static request parts are valid")
    }

    async fn call(&mut self, req: Request<Full<Bytes>>) -> Result<(u16, Bytes), BoxError> {
        let resp = self.open(req).await?;
        let code = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((code, body))
    }
}

fn tls(pki: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, BoxError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(pki.join("ca.crt"))? {
        roots.add(c?)?;
    }
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(pki.join("admin.crt"))?.collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_file(pki.join("admin.key"))?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

/// The request that creates a Service from `body` in namespace `ns`.
fn create_service(c: &Client, ns: &str, body: Bytes) -> Request<Full<Bytes>> {
    c.request(Method::POST, "https", &format!("/api/v1/namespaces/{ns}/services"), "application/json", body)
}

fn service(name: &str) -> Bytes {
    let v = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": name, "labels": { "app": "bench", "tier": "web" } },
        "spec": { "selector": { "app": name }, "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }] },
    });
    Bytes::from(v.to_string())
}

struct Phase {
    name: String,
    clients: usize,
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: usize,
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

impl Phase {
    fn row(&mut self) -> String {
        self.latencies.sort();
        format!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {} |",
            self.name,
            self.clients,
            self.ops,
            self.ops as f64 / self.elapsed.as_secs_f64(),
            pct(&self.latencies, 0.5),
            pct(&self.latencies, 0.99),
            self.errors
        )
    }
}

/// Builds the i-th request of a phase and the status code that means success.
type MakeRequest = Arc<dyn Fn(&Client, usize) -> (Request<Full<Bytes>>, u16) + Send + Sync>;

/// Runs `ops` operations split over `clients` connections; `make` builds
/// the i-th request and says which status codes count as success.
async fn run_phase(name: &str, clients: &[Client], ops: usize, make: MakeRequest) -> Phase {
    let start = Instant::now();
    let mut tasks = Vec::new();
    let n = clients.len();
    for (k, client) in clients.iter().enumerate() {
        let mut client = client.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut i = k;
            while i < ops {
                let (req, want) = make(&client, i);
                let t = Instant::now();
                match client.call(req).await {
                    Ok((code, _)) if code == want => lat.push(t.elapsed()),
                    Ok(_) | Err(_) => errors += 1,
                }
                i += n;
            }
            (lat, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            latencies.extend(l);
            errors += e;
        }
    }
    Phase { name: name.to_string(), clients: n, ops, elapsed: start.elapsed(), latencies, errors }
}

async fn connect_many(args: &Args, tls: &Arc<rustls::ClientConfig>, n: usize) -> Result<Vec<Client>, BoxError> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(Client::connect(&args.addr, tls.clone()).await?);
    }
    Ok(v)
}

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

async fn writes(
    args: &Args,
    tls: &Arc<rustls::ClientConfig>,
    clients: usize,
    prefix: &str,
    rows: &mut Vec<String>,
) -> Result<(), BoxError> {
    let conns = connect_many(args, tls, clients).await?;
    let ns = "default";
    let p = prefix.to_string();
    let create = Arc::new(move |c: &Client, i: usize| (create_service(c, ns, service(&format!("{p}-{i}"))), 201));
    rows.push(run_phase("create", &conns, args.objects, create).await.row());
    let p = prefix.to_string();
    let update = Arc::new(move |c: &Client, i: usize| {
        let patch = Bytes::from(json!({ "metadata": { "labels": { "rev": format!("r{i}") } } }).to_string());
        (
            c.request(
                Method::PATCH,
                "https",
                &format!("/api/v1/namespaces/{ns}/services/{p}-{i}"),
                "application/merge-patch+json",
                patch,
            ),
            200,
        )
    });
    rows.push(run_phase("update (merge patch)", &conns, args.objects, update).await.row());
    let p = prefix.to_string();
    let delete = Arc::new(move |c: &Client, i: usize| {
        (
            c.request(
                Method::DELETE,
                "https",
                &format!("/api/v1/namespaces/{ns}/services/{p}-{i}"),
                "application/json",
                Bytes::new(),
            ),
            200,
        )
    });
    rows.push(run_phase("delete", &conns, args.objects, delete).await.row());
    Ok(())
}

/// Durable creates against etcd, shaped as kube-apiserver sends them
/// (a compare-and-create txn). Success is judged by status only: keys are
/// unique, so no compare fails.
async fn etcd_writes(addr: &str, clients: usize, objects: usize, prefix: &str) -> Result<String, BoxError> {
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(Client::plain_http1(addr).await?);
    }
    use base64::Engine as _;
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let prefix = prefix.to_string();
    let put = Arc::new(move |c: &Client, i: usize| {
        let key = format!("/registry/services/specs/default/{prefix}-{i}");
        // Same compare-and-create shape kube-apiserver sends to etcd.
        let txn = json!({
            "compare": [{ "key": b64(key.as_bytes()), "target": "MOD", "mod_revision": "0", "result": "EQUAL" }],
            "success": [{ "request_put": { "key": b64(key.as_bytes()), "value": b64(&service(&format!("etcd-{i}"))) } }],
        });
        (c.request(Method::POST, "http", "/v3/kv/txn", "application/json", Bytes::from(txn.to_string())), 200)
    });
    let mut phase = run_phase("etcd txn create", &conns, objects, put).await;
    Ok(phase.row())
}

async fn list(args: &Args, tls: &Arc<rustls::ClientConfig>, rows: &mut Vec<String>) -> Result<(), BoxError> {
    let mut c = Client::connect(&args.addr, tls.clone()).await?;
    let mut times = Vec::new();
    let mut items = 0;
    for _ in 0..5 {
        let req =
            c.request(Method::GET, "https", "/api/v1/namespaces/default/services", "application/json", Bytes::new());
        let t = Instant::now();
        let (_, body) = c.call(req).await?;
        times.push(t.elapsed());
        let v: Value = serde_json::from_slice(&body)?;
        items = v["items"].as_array().map_or(0, Vec::len);
    }
    times.sort();
    rows.push(format!(
        "| list {items} services (JSON), median of 5 | 1 | 5 | - | {:.1} | {:.1} | 0 |",
        pct(&times, 0.5),
        pct(&times, 1.0)
    ));
    let mut times = Vec::new();
    for _ in 0..3 {
        let req = Request::builder()
            .uri(format!("https://{}/api/v1/namespaces/default/services", c.authority))
            .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
            .body(Full::new(Bytes::new()))?;
        let t = Instant::now();
        c.call(req).await?;
        times.push(t.elapsed());
    }
    times.sort();
    rows.push(format!(
        "| list {items} services (Table, as kubectl get), median of 3 | 1 | 3 | - | {:.1} | {:.1} | 0 |",
        pct(&times, 0.5),
        pct(&times, 1.0)
    ));
    Ok(())
}

async fn watch(args: &Args, tls: &Arc<rustls::ClientConfig>) -> Result<String, BoxError> {
    // Watchers share 10 connections, as many informers share one client.
    let conns = connect_many(args, tls, 10).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String, Instant)>();
    let mut ready = Vec::new();
    for w in 0..args.watchers {
        let mut c = conns[w % conns.len()].clone();
        let tx = tx.clone();
        let (rtx, rrx) = tokio::sync::oneshot::channel();
        ready.push(rrx);
        tokio::spawn(async move {
            let req = c.request(
                Method::GET,
                "https",
                "/api/v1/namespaces/watch-bench/configmaps?watch=true&resourceVersion=0&timeoutSeconds=120",
                "application/json",
                Bytes::new(),
            );
            let Ok(resp) = c.open(req).await else { return };
            let _ = rtx.send(());
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else { continue };
                let now = Instant::now();
                buf.extend_from_slice(&data);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    if let Ok(v) = serde_json::from_slice::<Value>(&line)
                        && let Some(name) = v["object"]["metadata"]["name"].as_str()
                    {
                        let _ = tx.send((w, name.to_string(), now));
                    }
                }
            }
        });
    }
    for r in ready {
        let _ = r.await;
    }
    drop(tx);
    let mut writer = Client::connect(&args.addr, tls.clone()).await?;
    let mut sent = std::collections::HashMap::new();
    let start = Instant::now();
    for i in 0..args.watch_events {
        let name = format!("w-{i}");
        let body = Bytes::from(json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name }, "data": { "i": i.to_string() } }).to_string());
        let req = writer.request(
            Method::POST,
            "https",
            "/api/v1/namespaces/watch-bench/configmaps",
            "application/json",
            body,
        );
        let t = Instant::now();
        writer.call(req).await?;
        sent.insert(name, t);
        // An even, bounded rate: about 500 events/s.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let expected = args.watchers * args.watch_events;
    let mut delays = Vec::with_capacity(expected);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while delays.len() < expected {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((_, name, at))) => {
                if let Some(t) = sent.get(&name) {
                    delays.push(at.saturating_duration_since(*t));
                }
            }
            _ => break,
        }
    }
    let _ = start;
    delays.sort();
    Ok(format!(
        "| watch delivery: {} watchers x {} events | {} | {} | - | {:.2} | {:.2} | {} |",
        args.watchers,
        args.watch_events,
        args.watchers,
        delays.len(),
        pct(&delays, 0.5),
        pct(&delays, 0.99),
        expected - delays.len()
    ))
}

/// Pod Ready → Endpoints / EndpointSlice latency: `services` Services of
/// `pods_per_service` pods each; then `samples` pods, one at a time, are
/// marked Ready with a new IP through the status subresource, and two
/// watches (Endpoints, EndpointSlices) time when that IP first appears.
async fn endpoints_latency(args: &Args, tls: &Arc<rustls::ClientConfig>, services: usize) -> Result<(), BoxError> {
    let ns = "ep-bench";
    let conns = connect_many(args, tls, 16).await?;
    let mut c = conns[0].clone();
    let body = Bytes::from(json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } }).to_string());
    c.call(c.request(Method::POST, "https", "/api/v1/namespaces", "application/json", body)).await?;
    let svc = Arc::new(move |c: &Client, i: usize| {
        let body = json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": format!("s{i}") },
            "spec": { "selector": { "app": format!("s{i}") }, "ports": [{ "port": 80, "targetPort": 8080 }] } });
        (create_service(c, ns, Bytes::from(body.to_string())), 201)
    });
    let t = Instant::now();
    run_phase("services", &conns, services, svc).await;
    let per = args.pods_per_service;
    let pods = services * per;
    let pod = Arc::new(move |c: &Client, i: usize| {
        let body = json!({ "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": format!("p{i}"), "labels": { "app": format!("s{}", i / per) } },
            "spec": { "containers": [{ "name": "c", "image": "svcnet/echoserver:1.0", "ports": [{ "containerPort": 8080 }] }] } });
        (
            c.request(
                Method::POST,
                "https",
                &format!("/api/v1/namespaces/{ns}/pods"),
                "application/json",
                Bytes::from(body.to_string()),
            ),
            201,
        )
    });
    run_phase("pods", &conns, pods, pod).await;
    // Half the pods start Ready, so every Service has endpoints to update.
    let ready = Arc::new(move |c: &Client, i: usize| {
        let ip = format!("10.{}.{}.{}", 200 + i / 65536, (i / 256) % 256, i % 256);
        let body = json!({ "status": { "phase": "Running", "podIP": ip, "podIPs": [{ "ip": ip }],
            "conditions": [{ "type": "Ready", "status": "True" }] } });
        (
            c.request(
                Method::PATCH,
                "https",
                &format!("/api/v1/namespaces/{ns}/pods/p{}/status", i * 2),
                "application/merge-patch+json",
                Bytes::from(body.to_string()),
            ),
            200,
        )
    });
    run_phase("ready", &conns, pods / 2, ready).await;
    eprintln!(
        "created {services} services and {pods} pods in {:.1}s; letting the controllers settle",
        t.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(5)).await;

    // Watch both kinds from now on.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(&'static str, String, Instant)>();
    for (kind, path) in [("endpoints", "endpoints"), ("slices", "endpointslices")] {
        let mut w = Client::connect(&args.addr, tls.clone()).await?;
        let api = if kind == "slices" { "/apis/discovery.k8s.io/v1" } else { "/api/v1" };
        let req = w.request(
            Method::GET,
            "https",
            &format!("{api}/namespaces/{ns}/{path}?watch=true&timeoutSeconds=600"),
            "application/json",
            Bytes::new(),
        );
        let resp = w.open(req).await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else { continue };
                let now = Instant::now();
                buf.extend_from_slice(&data);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    // Every IP in the object is a candidate; the receiver
                    // keeps the first sighting of the one it waits for.
                    let text = String::from_utf8_lossy(&line);
                    for part in text.split('"') {
                        if part.starts_with("10.2") && part.matches('.').count() == 3 {
                            let _ = tx.send((kind, part.to_string(), now));
                        }
                    }
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    while rx.try_recv().is_ok() {}
    let mut ep_lat = Vec::new();
    let mut slice_lat = Vec::new();
    let mut writer = Client::connect(&args.addr, tls.clone()).await?;
    for k in 0..args.samples.min(pods / 2) {
        // Odd pods are not ready yet: make one Ready with a fresh IP.
        let i = 2 * k + 1;
        let ip = format!("10.{}.{}.{}", 220 + i / 65536, (i / 256) % 256, i % 256);
        let body = json!({ "status": { "phase": "Running", "podIP": ip, "podIPs": [{ "ip": ip }],
            "conditions": [{ "type": "Ready", "status": "True" }] } });
        let start = Instant::now();
        let req = writer.request(
            Method::PATCH,
            "https",
            &format!("/api/v1/namespaces/{ns}/pods/p{i}/status"),
            "application/merge-patch+json",
            Bytes::from(body.to_string()),
        );
        writer.call(req).await?;
        let (mut ep, mut sl) = (None, None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while ep.is_none() || sl.is_none() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((kind, seen, at))) if seen == ip => {
                    let d = at.saturating_duration_since(start);
                    if kind == "endpoints" && ep.is_none() {
                        ep = Some(d);
                    } else if kind == "slices" && sl.is_none() {
                        sl = Some(d);
                    }
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        ep_lat.extend(ep);
        slice_lat.extend(sl);
    }
    ep_lat.sort();
    slice_lat.sort();
    println!("| operation | samples | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, l) in [("pod Ready → Endpoints", &ep_lat), ("pod Ready → EndpointSlice", &slice_lat)] {
        println!(
            "| {name} ({services} services x {per} pods) | {} | {:.1} | {:.1} | {:.1} |",
            l.len(),
            pct(l, 0.5),
            pct(l, 0.99),
            pct(l, 1.0)
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let argv: Vec<String> = std::env::args().collect();
    if dns_memory::wanted(&argv) {
        return dns_memory::main(argv).await;
    }
    if pods::wanted(&argv) {
        return pods::main(argv).await;
    }
    let args = Args::parse();
    if let Some(dns) = args.dns {
        let tls = tls(&args.pki)?;
        return dns_latency(&args, &tls, dns).await;
    }
    if let Some(services) = args.endpoint_services {
        let tls = tls(&args.pki)?;
        return endpoints_latency(&args, &tls, services).await;
    }
    if let Some(etcd) = &args.etcd {
        println!("| operation | clients | ops | ops/s | p50 ms | p99 ms | errors |");
        println!("| --- | --- | --- | --- | --- | --- | --- |");
        println!("{}", etcd_writes(etcd, 1, args.objects, "one").await?);
        println!("{}", etcd_writes(etcd, 32, args.objects, "many").await?);
        return Ok(());
    }
    let tls = tls(&args.pki)?;
    let mut rows = Vec::new();
    println!("| operation | clients | ops | ops/s | p50 ms | p99 ms | errors |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    if !args.skip_writes {
        writes(&args, &tls, 1, "one", &mut rows).await?;
        writes(&args, &tls, 32, "many", &mut rows).await?;
    }
    for r in rows.drain(..) {
        println!("{r}");
    }
    // Fill 10k services for the list and memory figures.
    let conns = connect_many(&args, &tls, 32).await?;
    let fill = Arc::new(|c: &Client, i: usize| {
        (
            c.request(
                Method::POST,
                "https",
                "/api/v1/namespaces/default/services",
                "application/json",
                service(&format!("svc-{i}")),
            ),
            201,
        )
    });
    run_phase("fill", &conns, args.objects, fill).await;
    drop(conns);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_stored = args.pid.and_then(rss_mib);
    list(&args, &tls, &mut rows).await?;
    for r in rows.drain(..) {
        println!("{r}");
    }
    if let Some(rss) = rss_stored {
        println!("| server RSS with {} services stored | - | - | - | {rss:.1} MiB | - | - |", args.objects);
    }
    if let Some(rss) = args.pid.and_then(rss_mib) {
        println!("| server RSS after listing them as JSON and Table | - | - | - | {rss:.1} MiB | - | - |");
    }
    let mut ns = Client::connect(&args.addr, tls.clone()).await?;
    let body = Bytes::from(
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "watch-bench" } }).to_string(),
    );
    let req = ns.request(Method::POST, "https", "/api/v1/namespaces", "application/json", body);
    ns.call(req).await?;
    println!("{}", watch(&args, &tls).await?);
    Ok(())
}
