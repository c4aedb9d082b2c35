//! The three data planes behind one enum (the `DataPlane` trait returns
//! `impl Future`, so it is not object-safe), and the snapshots the
//! benchmarks program.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use svcnet_proxy::iptables::IptablesProxy;
use svcnet_proxy::model::{Affinity, Endpoint, Protocol, ServicePort, Snapshot};
use svcnet_proxy::nft::NftProxy;
use svcnet_proxy::userspace::UserspaceProxy;
use svcnet_proxy::{DataPlane, Mode, NodeEnv};

use crate::BoxError;
use crate::lab::{NODE_IP, POD_CIDR, SERVICE_CIDR};

/// No sync may take longer than this.
const SYNC_LIMIT: Duration = Duration::from_secs(300);

pub enum Plane {
    Nft(NftProxy),
    Iptables(IptablesProxy),
    Userspace(UserspaceProxy),
}

impl Plane {
    pub fn new(mode: Mode, env: &NodeEnv) -> Plane {
        match mode {
            Mode::Nftables => Plane::Nft(NftProxy::new(env.clone())),
            Mode::Iptables => Plane::Iptables(IptablesProxy::new(env.clone())),
            Mode::Userspace(b) => Plane::Userspace(UserspaceProxy::new(env.clone(), b)),
        }
    }

    /// Syncs to `snap`; how long it took.
    pub async fn sync(&mut self, snap: &Snapshot) -> Result<Duration, BoxError> {
        let t = Instant::now();
        let result = match self {
            Plane::Nft(p) => tokio::time::timeout(SYNC_LIMIT, p.sync(snap)).await,
            Plane::Iptables(p) => tokio::time::timeout(SYNC_LIMIT, p.sync(snap)).await,
            Plane::Userspace(p) => tokio::time::timeout(SYNC_LIMIT, p.sync(snap)).await,
        };
        let took = t.elapsed();
        match result {
            Ok(Ok(())) => Ok(took),
            Ok(Err(e)) => Err(format!("sync of {} services failed after {took:?}: {e}", snap.services.len()).into()),
            Err(_) => Err(format!("sync of {} services took over {SYNC_LIMIT:?}", snap.services.len()).into()),
        }
    }

    pub async fn cleanup(&mut self) -> Result<Duration, BoxError> {
        let t = Instant::now();
        let result = match self {
            Plane::Nft(p) => tokio::time::timeout(SYNC_LIMIT, p.cleanup()).await,
            Plane::Iptables(p) => tokio::time::timeout(SYNC_LIMIT, p.cleanup()).await,
            Plane::Userspace(p) => tokio::time::timeout(SYNC_LIMIT, p.cleanup()).await,
        };
        match result {
            Ok(Ok(())) => Ok(t.elapsed()),
            Ok(Err(e)) => Err(format!("cleanup failed: {e}").into()),
            Err(_) => Err(format!("cleanup took over {SYNC_LIMIT:?}").into()),
        }
    }
}

pub fn parse_modes(list: &str) -> Result<Vec<Mode>, BoxError> {
    list.split(',').filter(|s| !s.is_empty()).map(|m| Mode::parse(m).map_err(BoxError::from)).collect()
}

pub fn endpoint(ip: Ipv4Addr, port: u16) -> Endpoint {
    Endpoint { ip, port, node: Some("node1".into()), ready: true, serving: true, terminating: false, local: true }
}

/// A ClusterIP service port.
pub fn service(namespace: &str, name: &str, vip: Ipv4Addr, port: u16, mut endpoints: Vec<Endpoint>) -> ServicePort {
    endpoints.sort_by_key(|e| (e.ip, e.port));
    ServicePort {
        namespace: namespace.into(),
        name: name.into(),
        port_name: String::new(),
        protocol: Protocol::Tcp,
        cluster_ip: vip,
        port,
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

pub fn snapshot(mut services: Vec<ServicePort>) -> Snapshot {
    services.sort_by_key(|s| s.id());
    Snapshot {
        node_name: "node1".into(),
        node_ips: vec![NODE_IP],
        // As the runtime builds it: the node's own pods are its pod CIDR.
        cluster_cidr: POD_CIDR.into(),
        service_cidr: SERVICE_CIDR.into(),
        services,
    }
}

/// One service `bench/<name>` at `vip:port` with the given endpoints.
pub fn single(name: &str, vip: SocketAddr, endpoints: &[SocketAddr]) -> Snapshot {
    let ip = |a: &SocketAddr| match a {
        SocketAddr::V4(v4) => *v4.ip(),
        SocketAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    };
    let eps = endpoints.iter().map(|e| endpoint(ip(e), e.port())).collect();
    snapshot(vec![service("bench", name, ip(&vip), vip.port(), eps)])
}

/// The cluster IP of service number `i` of a big snapshot: 10.96.0.1 up.
pub fn big_vip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 1)) + i as u32)
}

/// An address for made-up endpoint number `k`: 10.248.0.0 up (inside
/// the cluster CIDR, and answering nothing).
pub fn fake_ip(k: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 248, 0, 0)) + k as u32)
}

/// `services` ClusterIP services (`ns-<i % 100>/svc-<i>`, port 80) of
/// `per` made-up endpoints each on port 8080, sorted by id as a
/// snapshot is.
pub fn big(services: usize, per: usize) -> Snapshot {
    let all = (0..services)
        .map(|i| {
            let eps = (0..per).map(|e| endpoint(fake_ip(i * per + e), 8080)).collect();
            service(&format!("ns-{}", i % 100), &format!("svc-{i:05}"), big_vip(i), 80, eps)
        })
        .collect();
    snapshot(all)
}
