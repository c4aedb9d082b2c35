//! kube-proxy's userspace mode, done well: a Tokio L4 proxy in the node's
//! network namespace, reached through nftables redirects.
//!
//! ```text
//! pod ──► 10.96.0.10:80 ─┐ nat prerouting/output: redirect to :<proxy port>      (rules.rs)
//! ext ──► node:30080  ───┘        │
//!                                 ▼
//!           listener 0.0.0.0:<proxy port> in the node namespace             (front.rs)
//!             accept ─► pick endpoint (rr | lc, ClientIP affinity)          (balancer.rs)
//!             connect from the node namespace, next endpoint on failure     (tcp.rs, udp.rs)
//!             relay both ways: small buffer first, splice(2) for bulk       (tcp.rs, sys.rs)
//! ```
//!
//! - Each service port has a *cluster* front (its cluster IP, with
//!   internalTrafficPolicy) and, when exposed, an *external* front (node
//!   port, external IPs, load balancer IPs, with externalTrafficPolicy;
//!   pods and the node itself still reach every endpoint there, as
//!   kube-proxy short-circuits them). The listener a connection arrives on
//!   tells which policy applies; `SO_ORIGINAL_DST` tells the address the
//!   client used, for logs.
//! - A service port without endpoints is not redirected but rejected by
//!   nftables (TCP reset, ICMP port unreachable): clients are refused at
//!   once rather than accepted and reset. Only if every endpoint fails to
//!   connect does the proxy reset an accepted connection (`SO_LINGER` 0).
//! - Listeners are reachable only through a redirect (`ct status dnat`), so
//!   the proxy ports do not expose cluster services on the node address.
//! - A sync changes only what differs: unchanged service ports keep their
//!   listener and connections; new endpoint lists are swapped into the
//!   running front; the rules change by one `nft -f` transaction of element
//!   additions and deletions.
//! - Draining: a removed endpoint gets no new connections, and its open ones
//!   go on; a removed service port stops accepting at once and its open
//!   connections get [`Config::drain_timeout`] to finish.
//! - `describe()` reads like `ipvsadm -Ln`: scheduler `rr` or `lc`, weight
//!   1 (0 for an endpoint that left and still has connections), active =
//!   connections open both ways (UDP: sessions), inactive = connections one
//!   side has closed, still draining the other (IPVS's InActConn).
//!   Least-connections compares active + inactive, per service port across
//!   its fronts.
//!
//! Only TCP and UDP are proxied; SCTP service ports are skipped.

mod balancer;
mod front;
mod rules;
mod sys;
mod tcp;
mod udp;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use self::balancer::{AffinityTable, Backend, Pool};
use self::front::{Front, FrontKind, FrontShared, Internal, Route, Traffic, parse_cidr};
use crate::model::{Affinity, Endpoint, Protocol, ServicePort, Snapshot};
use crate::{DataPlane, NodeEnv, ProxyError, RealServer, VirtualService};

pub use self::rules::TABLE;

/// How a new connection picks among a service's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    /// In turn, in the endpoints' (sorted) order.
    #[default]
    RoundRobin,
    /// The endpoint with the fewest open connections through this proxy.
    LeastConnections,
}

impl Balance {
    /// IPVS's name for it: `rr`, `lc`.
    pub fn scheduler(self) -> &'static str {
        match self {
            Balance::RoundRobin => "rr",
            Balance::LeastConnections => "lc",
        }
    }
}

/// The userspace proxy's settings.
///
/// | field | default | what |
/// | --- | --- | --- |
/// | `balance` | round-robin | how endpoints are picked |
/// | `connect_timeout` | 1 s | per endpoint; then the next one is tried |
/// | `udp_idle_timeout` | 30 s | a UDP session without traffic either way ends (conntrack's own UDP timeout; kube-proxy's 250 ms broke slow request/response protocols) |
/// | `drain_timeout` | 30 s | how long connections of a removed service port may go on |
/// | `max_udp_sessions` | 16384 | per listener; datagrams of further clients are dropped |
/// | `splice` | true | move bulk TCP data with `splice(2)` |
#[derive(Debug, Clone)]
pub struct Config {
    pub balance: Balance,
    pub connect_timeout: Duration,
    pub udp_idle_timeout: Duration,
    pub drain_timeout: Duration,
    pub max_udp_sessions: usize,
    pub splice: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            balance: Balance::RoundRobin,
            connect_timeout: Duration::from_secs(1),
            udp_idle_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
            max_udp_sessions: 16384,
            splice: true,
        }
    }
}

/// Bytes the proxy has relayed over TCP, by how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrafficStats {
    /// Moved with `splice(2)`, never copied into the proxy.
    pub spliced_bytes: u64,
    /// Copied through the proxy's buffers.
    pub copied_bytes: u64,
}

/// The userspace data plane of one node.
pub struct UserspaceProxy {
    env: NodeEnv,
    config: Arc<Config>,
    services: BTreeMap<(String, Protocol), ServiceState>,
    applied: rules::Applied,
    traffic: Arc<Traffic>,
    /// The node addresses node ports answer on, from the last sync.
    node_ips: Vec<Ipv4Addr>,
    /// Whether the kernel takes `reject` in prerouting (learnt on the first
    /// sync).
    prerouting_reject: bool,
}

impl UserspaceProxy {
    pub fn new(env: NodeEnv, balance: Balance) -> UserspaceProxy {
        UserspaceProxy::with_config(env, Config { balance, ..Config::default() })
    }

    pub fn with_config(env: NodeEnv, config: Config) -> UserspaceProxy {
        let node_ips = env.node_ips.clone();
        UserspaceProxy {
            env,
            config: Arc::new(config),
            services: BTreeMap::new(),
            applied: rules::Applied::default(),
            traffic: Arc::default(),
            node_ips,
            prerouting_reject: true,
        }
    }

    /// The port of the listener serving service port `id`
    /// (`namespace/name[:port]`): its cluster front, or with `external` its
    /// node port / external address front.
    pub fn proxy_port(&self, id: &str, protocol: Protocol, external: bool) -> Option<u16> {
        let state = self.services.get(&(id.to_string(), protocol))?;
        if external { state.external.as_ref().map(|f| f.proxy_port) } else { Some(state.cluster.proxy_port) }
    }

    /// Applies the rules for `elements`, changing only what differs from
    /// the last successful apply.
    async fn apply(&mut self, service_cidr: Option<&str>, elements: &rules::Elements) -> Result<(), ProxyError> {
        let skeleton = rules::skeleton(service_cidr, self.prerouting_reject);
        let Some(script) = self.applied.script(&skeleton, elements) else { return Ok(()) };
        match nft(&self.env.netns, &["-f", "-"], &script).await {
            Ok(()) => {
                self.applied.set(skeleton, elements.clone());
                Ok(())
            }
            Err(e) => {
                self.applied.invalidate();
                Err(e)
            }
        }
    }

    /// The TCP bytes relayed so far, by how they were moved.
    pub fn traffic(&self) -> TrafficStats {
        TrafficStats {
            spliced_bytes: self.traffic.spliced.load(Ordering::Relaxed),
            copied_bytes: self.traffic.copied.load(Ordering::Relaxed),
        }
    }

    /// Every element the rules need for the current service ports.
    fn elements(&self) -> rules::Elements {
        let mut e = rules::Elements::default();
        for state in self.services.values() {
            let spec = &state.spec;
            let id = spec.id();
            let proto = spec.protocol;
            let cluster = &state.cluster;
            let target = cluster.shared.route().has_endpoints().then_some(cluster.proxy_port);
            if !spec.cluster_ip.is_unspecified() {
                e.address(spec.cluster_ip, proto, spec.port, target, &id);
            }
            e.proxy_port(proto, cluster.proxy_port, &id);
            if let Some(lb) = &state.load_balancer {
                // First, so that an LB IP also listed as an external IP
                // keeps its source check.
                let target = lb.shared.route().has_endpoints().then_some(lb.proxy_port);
                for ip in &spec.load_balancer_ips {
                    e.address(*ip, proto, spec.port, target, &id);
                }
                e.proxy_port(proto, lb.proxy_port, &id);
            }
            if let Some(ext) = &state.external {
                let target = ext.shared.route().has_endpoints().then_some(ext.proxy_port);
                let lbs: &[Ipv4Addr] = if state.load_balancer.is_some() { &[] } else { &spec.load_balancer_ips };
                for ip in spec.external_ips.iter().chain(lbs) {
                    e.address(*ip, proto, spec.port, target, &id);
                }
                if let Some(np) = spec.node_port {
                    e.node_port(proto, np, target, &id);
                }
                e.proxy_port(proto, ext.proxy_port, &id);
            }
        }
        e
    }

    async fn start_front(
        &self,
        kind: FrontKind,
        route: Route,
        id: &str,
        state_affinity: &Arc<AffinityTable>,
        protocol: Protocol,
    ) -> Result<Front, ProxyError> {
        let shared = Arc::new(FrontShared::new(
            id.to_string(),
            route,
            state_affinity.clone(),
            self.env.sockets.clone(),
            self.config.clone(),
            self.traffic.clone(),
        ));
        Front::start(kind, protocol, shared)
            .await
            .map_err(|e| ProxyError::Other(format!("userspace proxy: listening for {id} ({}): {e}", protocol.as_str())))
    }

    /// Starts the fronts of a new service port.
    async fn start_service(&self, spec: &ServicePort, internal: &Internal) -> Result<ServiceState, ProxyError> {
        let mut backends = HashMap::new();
        let (cluster_route, external_route, lb_route) = routes(spec, internal, self.config.balance, &mut backends);
        let affinity = Arc::new(AffinityTable::default());
        let id = spec.id();
        let cluster = self.start_front(FrontKind::Cluster, cluster_route, &id, &affinity, spec.protocol).await?;
        let external = match external_route {
            Some(route) => Some(self.start_front(FrontKind::External, route, &id, &affinity, spec.protocol).await?),
            None => None,
        };
        let load_balancer = match lb_route {
            Some(route) => Some(self.start_front(FrontKind::LoadBalancer, route, &id, &affinity, spec.protocol).await?),
            None => None,
        };
        Ok(ServiceState {
            spec: spec.clone(),
            internal: internal.clone(),
            backends,
            draining: Vec::new(),
            affinity,
            cluster,
            external,
            load_balancer,
        })
    }

    /// Brings a running service port to `spec`, in place.
    async fn update_service(
        &self,
        state: &mut ServiceState,
        spec: &ServicePort,
        internal: &Internal,
        retired: &mut Vec<Front>,
    ) -> Result<(), ProxyError> {
        state.draining.retain(|b| b.load() > 0);
        if state.spec == *spec && state.internal == *internal {
            return Ok(());
        }
        let mut backends = std::mem::take(&mut state.backends);
        let before: Vec<Arc<Backend>> = backends.values().cloned().collect();
        let (cluster_route, external_route, lb_route) = routes(spec, internal, self.config.balance, &mut backends);
        // Endpoints that left keep counting their open connections.
        for b in before {
            if !backends.contains_key(&b.addr) && b.load() > 0 {
                state.draining.push(b);
            }
        }
        state.backends = backends;
        state.cluster.shared.set_route(cluster_route);
        match (external_route, state.external.as_ref()) {
            (Some(route), Some(front)) => front.shared.set_route(route),
            (Some(route), None) => {
                let id = spec.id();
                state.external =
                    Some(self.start_front(FrontKind::External, route, &id, &state.affinity, spec.protocol).await?);
            }
            (None, _) => retired.extend(state.external.take()),
        }
        match (lb_route, state.load_balancer.as_ref()) {
            (Some(route), Some(front)) => front.shared.set_route(route),
            (Some(route), None) => {
                let id = spec.id();
                state.load_balancer =
                    Some(self.start_front(FrontKind::LoadBalancer, route, &id, &state.affinity, spec.protocol).await?);
            }
            (None, _) => retired.extend(state.load_balancer.take()),
        }
        state.spec = spec.clone();
        state.internal = internal.clone();
        Ok(())
    }
}

/// One service port's running state.
struct ServiceState {
    spec: ServicePort,
    internal: Internal,
    /// Every current endpoint, by address, so an endpoint keeps its
    /// connection counts across syncs and fronts.
    backends: HashMap<SocketAddrV4, Arc<Backend>>,
    /// Endpoints that left with connections still open.
    draining: Vec<Arc<Backend>>,
    affinity: Arc<AffinityTable>,
    cluster: Front,
    external: Option<Front>,
    /// The LB IPs' front, with loadBalancerSourceRanges.
    load_balancer: Option<Front>,
}

impl ServiceState {
    fn drain(self, within: Duration) {
        self.cluster.drain(within);
        for f in [self.external, self.load_balancer].into_iter().flatten() {
            f.drain(within);
        }
    }
}

/// The routes of a service port's fronts: the cluster front's, the
/// external front's when the service is exposed, and the load balancer
/// front's when its LB IPs are limited to loadBalancerSourceRanges. `backends` is the
/// registry of endpoint objects; on return it holds exactly the endpoints
/// in some pool.
fn routes(
    spec: &ServicePort,
    internal: &Internal,
    balance: Balance,
    backends: &mut HashMap<SocketAddrV4, Arc<Backend>>,
) -> (Route, Option<Route>, Option<Route>) {
    let mut used = HashMap::new();
    let mut pool = |eps: Vec<&Endpoint>| {
        Pool::new(
            eps.into_iter()
                .map(|ep| {
                    let addr = SocketAddrV4::new(ep.ip, ep.port);
                    let b = used.get(&addr).or_else(|| backends.get(&addr)).cloned();
                    let b = b.unwrap_or_else(|| Backend::new(addr));
                    used.insert(addr, b.clone());
                    b
                })
                .collect(),
        )
    };
    let affinity = match spec.affinity {
        Affinity::ClientIp { timeout_seconds } => Some(Duration::from_secs(u64::from(timeout_seconds))),
        Affinity::None => None,
    };
    let cluster =
        Route { balance, affinity, pool: pool(spec.cluster_endpoints()), internal: None, sources: Vec::new() };
    let mut external_route = |sources: Vec<crate::model::Cidr>| Route {
        balance,
        affinity,
        pool: pool(spec.external_endpoints()),
        internal: spec.external_local.then(|| (pool(spec.cluster_endpoints()), internal.clone())),
        sources,
    };
    let external = spec.is_external().then(|| external_route(Vec::new()));
    let load_balancer = spec.has_source_ranges().then(|| external_route(spec.load_balancer_source_ranges.clone()));
    *backends = used;
    (cluster, external, load_balancer)
}

/// The service port's endpoints as `ipvsadm -Ln` lists them: the pool's
/// (weight 1), then the ones draining (weight 0).
fn real_servers(pool: &Pool, draining: &[Arc<Backend>]) -> Vec<RealServer> {
    let server = |b: &Arc<Backend>, weight| RealServer {
        address: b.addr.to_string(),
        weight,
        active: b.active(),
        inactive: b.inactive(),
    };
    let mut out: Vec<RealServer> = pool.backends().iter().map(|b| server(b, 1)).collect();
    let mut seen: BTreeSet<SocketAddrV4> = pool.backends().iter().map(|b| b.addr).collect();
    for b in draining {
        if b.load() > 0 && seen.insert(b.addr) {
            out.push(server(b, 0));
        }
    }
    out
}

/// Checks (without applying) a fresh table against the kernel.
async fn check(netns: &str, skeleton: &str) -> Result<(), ProxyError> {
    let script = format!("table ip {TABLE}\ndelete table ip {TABLE}\n{skeleton}");
    nft(netns, &["-c", "-f", "-"], &script).await
}

/// Runs `nft ARGS` with `script` on stdin in the node's namespace.
async fn nft(netns: &str, args: &[&str], script: &str) -> Result<(), ProxyError> {
    let command = format!("ip netns exec {netns} nft {}", args.join(" "));
    let spawn = |source| ProxyError::Spawn { command: command.clone(), source };
    let mut child = tokio::process::Command::new("ip")
        .args(["netns", "exec", netns, "nft"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).await.map_err(spawn)?;
    }
    let out = child.wait_with_output().await.map_err(spawn)?;
    if !out.status.success() {
        return Err(ProxyError::Command { command, stderr: String::from_utf8_lossy(&out.stderr).trim().to_string() });
    }
    Ok(())
}

impl DataPlane for UserspaceProxy {
    async fn sync(&mut self, snap: &Snapshot) -> Result<(), ProxyError> {
        let cidr = if snap.cluster_cidr.is_empty() { &self.env.cluster_cidr } else { &snap.cluster_cidr };
        let node_ips = if snap.node_ips.is_empty() { self.env.node_ips.clone() } else { snap.node_ips.clone() };
        let internal = Internal { cluster_cidr: parse_cidr(cidr), node_ips: node_ips.clone() };
        self.node_ips = node_ips;

        let mut wanted = BTreeSet::new();
        let mut retired = Vec::new();
        let mut failed = None;
        for spec in &snap.services {
            if !matches!(spec.protocol, Protocol::Tcp | Protocol::Udp) {
                tracing::debug!(service = %spec.id(), "userspace proxy: only TCP and UDP are proxied, skipping");
                continue;
            }
            let key = (spec.id(), spec.protocol);
            wanted.insert(key.clone());
            let result = match self.services.remove(&key) {
                Some(mut state) => {
                    let r = self.update_service(&mut state, spec, &internal, &mut retired).await;
                    self.services.insert(key, state);
                    r
                }
                None => self.start_service(spec, &internal).await.map(|state| {
                    self.services.insert(key, state);
                }),
            };
            if let Err(e) = result {
                failed.get_or_insert(e);
            }
        }

        let service_cidr = if snap.service_cidr.is_empty() { &self.env.service_cidr } else { &snap.service_cidr };
        let service_cidr = parse_cidr(service_cidr).map(|(ip, len)| format!("{ip}/{len}"));
        // What went away stays alive (listening, connections open) until
        // the rules no longer send new traffic to it.
        let gone: Vec<_> = self.services.keys().filter(|k| !wanted.contains(*k)).cloned().collect();
        let gone: Vec<ServiceState> = gone.into_iter().filter_map(|k| self.services.remove(&k)).collect();
        let elements = self.elements();
        let mut applied = self.apply(service_cidr.as_deref(), &elements).await;
        if applied.is_err() && self.prerouting_reject {
            // Kernels before 6.x refuse `reject` in prerouting: fall back to
            // input and forward, once.
            let cidr = service_cidr.as_deref();
            if check(&self.env.netns, &rules::skeleton(cidr, true)).await.is_err()
                && check(&self.env.netns, &rules::skeleton(cidr, false)).await.is_ok()
            {
                tracing::info!("userspace proxy: no reject in prerouting on this kernel, rejecting in input/forward");
                self.prerouting_reject = false;
                applied = self.apply(service_cidr.as_deref(), &elements).await;
            }
        }

        // Now stop the listeners of what went away, letting their
        // connections finish.
        for state in gone {
            state.drain(self.config.drain_timeout);
        }
        for front in retired {
            front.drain(self.config.drain_timeout);
        }
        applied?;
        failed.map_or(Ok(()), Err)
    }

    async fn cleanup(&mut self) -> Result<(), ProxyError> {
        // Dropping the fronts closes the listeners and cuts connections.
        self.services.clear();
        self.applied.invalidate();
        nft(&self.env.netns, &["-f", "-"], &rules::delete_script()).await
    }

    async fn describe(&self) -> Vec<VirtualService> {
        let mut out = Vec::new();
        for state in self.services.values() {
            let spec = &state.spec;
            let route = state.cluster.shared.route();
            let entry = |address: String, route: &Route| VirtualService {
                service: spec.id(),
                protocol: spec.protocol.as_str().to_string(),
                address,
                scheduler: route.balance.scheduler().to_string(),
                flags: route.affinity.map(|t| format!("persistent {}", t.as_secs())).unwrap_or_default(),
                endpoints: real_servers(&route.pool, &state.draining),
            };
            if !spec.cluster_ip.is_unspecified() {
                out.push(entry(format!("{}:{}", spec.cluster_ip, spec.port), &route));
            }
            if let Some(lb) = &state.load_balancer {
                let route = lb.shared.route();
                for ip in &spec.load_balancer_ips {
                    out.push(entry(format!("{ip}:{}", spec.port), &route));
                }
            }
            if let Some(ext) = &state.external {
                let route = ext.shared.route();
                let lbs: &[Ipv4Addr] = if state.load_balancer.is_some() { &[] } else { &spec.load_balancer_ips };
                for ip in spec.external_ips.iter().chain(lbs) {
                    out.push(entry(format!("{ip}:{}", spec.port), &route));
                }
                if let Some(np) = spec.node_port {
                    for ip in &self.node_ips {
                        out.push(entry(format!("{ip}:{np}"), &route));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(last: u8, local: bool, ready: bool) -> Endpoint {
        Endpoint {
            ip: Ipv4Addr::new(10, 244, if local { 1 } else { 2 }, last),
            port: 8080,
            node: None,
            ready,
            serving: true,
            terminating: !ready,
            local,
        }
    }

    fn spec(endpoints: Vec<Endpoint>) -> ServicePort {
        ServicePort {
            namespace: "default".into(),
            name: "web".into(),
            port_name: "http".into(),
            protocol: Protocol::Tcp,
            cluster_ip: Ipv4Addr::new(10, 96, 0, 10),
            port: 80,
            node_port: None,
            external_ips: vec![],
            load_balancer_ips: vec![],
            load_balancer_source_ranges: Vec::new(),
            affinity: Affinity::None,
            external_local: false,
            internal_local: false,
            health_check_node_port: None,
            endpoints,
        }
    }

    fn addrs(pool: &Pool) -> Vec<u8> {
        pool.backends().iter().map(|b| b.addr.ip().octets()[3] + 10 * b.addr.ip().octets()[2]).collect()
    }

    #[test]
    fn cluster_traffic_uses_ready_endpoints_and_internal_policy_local_keeps_to_the_node() {
        let mut s = spec(vec![ep(5, true, true), ep(6, false, true), ep(7, true, false)]);
        let mut reg = HashMap::new();
        let (cluster, external, _) = routes(&s, &Internal::default(), Balance::RoundRobin, &mut reg);
        assert_eq!(addrs(&cluster.pool), [15, 26]);
        assert!(external.is_none(), "not exposed: no external front");
        assert_eq!(reg.len(), 2);
        s.internal_local = true;
        let (cluster, _, _) = routes(&s, &Internal::default(), Balance::RoundRobin, &mut reg);
        assert_eq!(addrs(&cluster.pool), [15]);
        assert_eq!(reg.len(), 1, "the registry forgets endpoints no pool uses");
    }

    #[test]
    fn terminating_serving_endpoints_are_used_only_when_none_is_ready() {
        let s = spec(vec![ep(5, true, false), ep(6, false, false)]);
        let (cluster, _, _) = routes(&s, &Internal::default(), Balance::RoundRobin, &mut HashMap::new());
        assert_eq!(addrs(&cluster.pool), [15, 26]);
    }

    #[test]
    fn external_policy_local_sends_outsiders_to_local_endpoints_and_pods_to_all() {
        let mut s = spec(vec![ep(5, true, true), ep(6, false, true)]);
        s.node_port = Some(30080);
        s.external_local = true;
        let internal = Internal { cluster_cidr: parse_cidr("10.244.0.0/16"), node_ips: vec![] };
        let (cluster, external, _) = routes(&s, &internal, Balance::RoundRobin, &mut HashMap::new());
        let Some(external) = external else { panic!("node port: external front") };
        assert_eq!(addrs(external.pool_for(Ipv4Addr::new(172, 18, 0, 50))), [15]);
        assert_eq!(addrs(external.pool_for(Ipv4Addr::new(10, 244, 2, 9))), [15, 26]);
        // One endpoint is one object in every pool, so its counts are shared.
        assert!(Arc::ptr_eq(&external.pool.backends()[0], &cluster.pool.backends()[0]));

        // No local endpoint: outsiders have none, pods still do.
        s.endpoints = vec![ep(6, false, true)];
        let (_, external, _) = routes(&s, &internal, Balance::RoundRobin, &mut HashMap::new());
        let Some(external) = external else { panic!("node port: external front") };
        assert!(external.pool_for(Ipv4Addr::new(172, 18, 0, 50)).is_empty());
        assert!(external.has_endpoints());
    }

    #[test]
    fn source_ranges_give_the_lb_ips_a_front_of_their_own_that_checks_peers() {
        let mut s = spec(vec![ep(5, true, true)]);
        s.node_port = Some(30080);
        s.load_balancer_source_ranges = vec!["10.244.0.0/16".parse().unwrap_or_else(|e| panic!("{e}"))];
        let (_, external, lb) = routes(&s, &Internal::default(), Balance::RoundRobin, &mut HashMap::new());
        assert!(lb.is_none(), "no LB IP, nothing to filter");
        s.load_balancer_ips = vec![Ipv4Addr::new(198, 51, 100, 7)];
        let (_, external2, lb) = routes(&s, &Internal::default(), Balance::RoundRobin, &mut HashMap::new());
        let (Some(external), Some(external2), Some(lb)) = (external, external2, lb) else { panic!("fronts") };
        assert!(external.admits(Ipv4Addr::new(172, 18, 0, 50)) && external2.admits(Ipv4Addr::new(172, 18, 0, 50)));
        assert!(!lb.admits(Ipv4Addr::new(172, 18, 0, 50)));
        assert!(lb.admits(Ipv4Addr::new(10, 244, 2, 9)));
        assert_eq!(addrs(&lb.pool), [15]);
    }

    #[test]
    fn endpoints_keep_their_connection_counts_across_updates() {
        let s = spec(vec![ep(5, true, true), ep(6, true, true)]);
        let mut reg = HashMap::new();
        let (cluster, _, _) = routes(&s, &Internal::default(), Balance::LeastConnections, &mut reg);
        let held = cluster.pool.backends()[0].reserve();
        let (cluster2, _, _) = routes(&s, &Internal::default(), Balance::LeastConnections, &mut reg);
        assert_eq!(cluster2.pool.backends()[0].active(), 1);
        let servers = real_servers(&cluster2.pool, &[]);
        assert_eq!((servers[0].address.as_str(), servers[0].weight, servers[0].active), ("10.244.1.5:8080", 1, 1));
        // The endpoint leaves: it is listed as draining while it has connections.
        let gone = cluster2.pool.backends()[0].clone();
        let s2 = spec(vec![ep(6, true, true)]);
        let (cluster3, _, _) = routes(&s2, &Internal::default(), Balance::LeastConnections, &mut reg);
        let servers = real_servers(&cluster3.pool, std::slice::from_ref(&gone));
        assert_eq!(servers.len(), 2);
        assert_eq!((servers[1].weight, servers[1].active), (0, 1));
        drop(held);
        assert_eq!(real_servers(&cluster3.pool, &[gone]).len(), 1);
    }
}
