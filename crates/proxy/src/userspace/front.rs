//! A front: one listener of one service port, the proxy port its
//! addresses are redirected to. A service port has a cluster front (its
//! cluster IP) and, when exposed, an external front (node port, external
//! IPs, load balancer IPs), so the proxy knows which traffic policy applies
//! from the listener a connection arrives on. A Service with
//! loadBalancerSourceRanges has a third, for its load balancer IPs only,
//! which turns away peers outside the ranges (TCP: reset at accept; UDP:
//! datagrams dropped).
//!
//! What a front does (its endpoints, balancing and affinity) is a
//! [`Route`], swapped whole on each sync that changes it; connections in
//! flight keep the route (and endpoints) they started with.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use svcnet_netns::NetnsSockets;
use tokio::sync::watch;
use tokio::time::Instant;

use super::balancer::{AffinityTable, ConnGuard, Picker, Pool};
use super::{Balance, Config, sys, tcp, udp};
use crate::model::{Cidr, Protocol};

/// Which addresses of a service port a front serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum FrontKind {
    /// The cluster IP (internalTrafficPolicy).
    Cluster,
    /// Node port, external IPs, load balancer IPs (externalTrafficPolicy).
    External,
    /// The load balancer IPs of a Service with loadBalancerSourceRanges
    /// (externalTrafficPolicy, and only peers inside the ranges).
    LoadBalancer,
}

/// Clients that count as inside the cluster: pods (the cluster CIDR) and
/// the node itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Internal {
    pub cluster_cidr: Option<(Ipv4Addr, u8)>,
    pub node_ips: Vec<Ipv4Addr>,
}

impl Internal {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        ip.is_loopback()
            || self.node_ips.contains(&ip)
            || self.cluster_cidr.is_some_and(|(net, len)| {
                let mask = u32::MAX.checked_shl(32 - u32::from(len.min(32))).unwrap_or(0);
                u32::from(ip) & mask == u32::from(net) & mask
            })
    }
}

/// Parses `10.244.0.0/16`.
pub(crate) fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, len) = s.split_once('/')?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    Some((ip.parse().ok()?, len))
}

/// What a front does now.
#[derive(Debug)]
pub(crate) struct Route {
    pub balance: Balance,
    /// ClientIP affinity's timeout.
    pub affinity: Option<Duration>,
    pub pool: Pool,
    /// externalTrafficPolicy Local: clients inside the cluster still use
    /// every cluster endpoint, as kube-proxy short-circuits them, so a pod
    /// can reach a node port on a node without local endpoints.
    pub internal: Option<(Pool, Internal)>,
    /// loadBalancerSourceRanges: the peers admitted (empty: any).
    pub sources: Vec<Cidr>,
}

impl Route {
    /// The endpoints for a connection from `client`.
    pub fn pool_for(&self, client: Ipv4Addr) -> &Pool {
        match &self.internal {
            Some((pool, internal)) if internal.contains(client) => pool,
            _ => &self.pool,
        }
    }

    /// True when some client can be served; else the front's addresses are
    /// rejected by nftables instead of redirected.
    /// True when `client` may use this front.
    pub fn admits(&self, client: Ipv4Addr) -> bool {
        self.sources.is_empty() || self.sources.iter().any(|c| c.contains(client))
    }

    pub fn has_endpoints(&self) -> bool {
        !self.pool.is_empty() || self.internal.as_ref().is_some_and(|(p, _)| !p.is_empty())
    }
}

/// Bytes moved, by how.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub spliced: AtomicU64,
    pub copied: AtomicU64,
}

/// What a front's tasks share with the proxy.
pub(crate) struct FrontShared {
    pub id: String,
    route: RwLock<Arc<Route>>,
    cursor: AtomicUsize,
    affinity: Arc<AffinityTable>,
    pub sockets: NetnsSockets,
    pub config: Arc<Config>,
    pub traffic: Arc<Traffic>,
}

impl FrontShared {
    pub fn new(
        id: String,
        route: Route,
        affinity: Arc<AffinityTable>,
        sockets: NetnsSockets,
        config: Arc<Config>,
        traffic: Arc<Traffic>,
    ) -> FrontShared {
        FrontShared {
            id,
            route: RwLock::new(Arc::new(route)),
            cursor: AtomicUsize::new(0),
            affinity,
            sockets,
            config,
            traffic,
        }
    }

    pub fn route(&self) -> Arc<Route> {
        // Writers only swap an Arc; a poisoned lock still holds a valid one.
        self.route.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_route(&self, route: Route) {
        *self.route.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(route);
    }

    /// A backend for a new connection or session from `client`, reserved.
    pub fn choose(&self, route: &Route, client: Ipv4Addr, tried: &[SocketAddrV4]) -> Option<ConnGuard> {
        let picker = Picker {
            pool: route.pool_for(client),
            balance: route.balance,
            cursor: &self.cursor,
            affinity: route.affinity.map(|t| (&*self.affinity, t)),
        };
        picker.choose(client, tried, std::time::Instant::now())
    }

    /// Refreshes `client`'s affinity (a UDP session that is still talking).
    pub fn touch(&self, route: &Route, client: Ipv4Addr) {
        if let Some(timeout) = route.affinity {
            self.affinity.lookup(client, timeout, std::time::Instant::now());
        }
    }

    /// `backend` failed for `client`: do not send it back there.
    pub fn forget(&self, client: Ipv4Addr, backend: SocketAddrV4) {
        self.affinity.forget(client, backend);
    }
}

/// When a front's connections must end: None while it runs; Some(t) once
/// it stops accepting, existing connections being cut at `t`.
pub(crate) type Closing = watch::Receiver<Option<Instant>>;

/// Waits until the front stops accepting.
pub(crate) async fn closing_started(rx: &mut Closing) {
    loop {
        if rx.borrow_and_update().is_some() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Waits until connections of the front must be cut.
pub(crate) async fn cut(mut rx: Closing) {
    closing_started(&mut rx).await;
    let deadline = *rx.borrow();
    if let Some(t) = deadline {
        tokio::time::sleep_until(t).await;
    }
}

/// A running listener.
pub(crate) struct Front {
    pub proxy_port: u16,
    pub shared: Arc<FrontShared>,
    closing: watch::Sender<Option<Instant>>,
}

/// Pending connections the kernel queues for a listener.
const BACKLOG: u32 = 4096;

impl Front {
    /// Binds a listener on 0.0.0.0 with a port of the kernel's choosing in
    /// the node namespace, and starts serving it.
    pub async fn start(kind: FrontKind, protocol: Protocol, shared: Arc<FrontShared>) -> io::Result<Front> {
        let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let (closing, rx) = watch::channel(None);
        let proxy_port = match protocol {
            Protocol::Tcp => {
                let socket = shared.sockets.tcp_socket(false).await?;
                socket.set_reuseaddr(true)?;
                socket.bind(any)?;
                let listener = socket.listen(BACKLOG)?;
                let port = listener.local_addr()?.port();
                tokio::spawn(tcp::serve(listener, shared.clone(), rx));
                port
            }
            Protocol::Udp => {
                let socket = shared.sockets.udp_bind(any).await?;
                sys::enable_pktinfo(&socket)?;
                let port = socket.local_addr()?.port();
                tokio::spawn(udp::serve(Arc::new(socket), shared.clone(), rx));
                port
            }
            Protocol::Sctp => return Err(io::Error::new(io::ErrorKind::Unsupported, "SCTP is not proxied")),
        };
        tracing::debug!(service = %shared.id, ?kind, protocol = protocol.as_str(), proxy_port, "userspace proxy: listening");
        Ok(Front { proxy_port, shared, closing })
    }

    /// Stops accepting; connections in flight may go on for `within`.
    pub fn drain(self, within: Duration) {
        let deadline = Instant::now() + within;
        self.closing.send_replace(Some(deadline));
    }
}

impl Drop for Front {
    /// A front dropped without draining cuts its connections now.
    fn drop(&mut self) {
        self.closing.send_if_modified(|v| {
            if v.is_none() {
                *v = Some(Instant::now());
                true
            } else {
                false
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userspace::balancer::Backend;

    fn pool(last: &[u8]) -> Pool {
        Pool::new(last.iter().map(|l| Backend::new(SocketAddrV4::new(Ipv4Addr::new(10, 244, 2, *l), 80))).collect())
    }

    #[test]
    fn internal_clients_are_pods_and_the_node_itself() {
        let internal =
            Internal { cluster_cidr: parse_cidr("10.244.0.0/16"), node_ips: vec![Ipv4Addr::new(172, 18, 0, 2)] };
        assert!(internal.contains(Ipv4Addr::new(10, 244, 7, 3)));
        assert!(internal.contains(Ipv4Addr::new(172, 18, 0, 2)));
        assert!(internal.contains(Ipv4Addr::LOCALHOST));
        assert!(!internal.contains(Ipv4Addr::new(172, 18, 0, 3)));
        assert!(!internal.contains(Ipv4Addr::new(10, 245, 0, 1)));
        assert_eq!(parse_cidr("10.96.0.0/12"), Some((Ipv4Addr::new(10, 96, 0, 0), 12)));
        assert_eq!(parse_cidr("10.96.0.0/33"), None);
        assert_eq!(parse_cidr(""), None);
    }

    #[test]
    fn external_traffic_policy_local_serves_outsiders_from_local_endpoints_only() {
        let route = Route {
            balance: Balance::RoundRobin,
            affinity: None,
            pool: pool(&[5]),
            internal: Some((
                pool(&[5, 6, 7]),
                Internal { cluster_cidr: parse_cidr("10.244.0.0/16"), node_ips: vec![] },
            )),
            sources: Vec::new(),
        };
        assert_eq!(route.pool_for(Ipv4Addr::new(172, 18, 0, 9)).backends().len(), 1);
        assert_eq!(route.pool_for(Ipv4Addr::new(10, 244, 1, 9)).backends().len(), 3);
        assert!(route.has_endpoints());
        let none = Route {
            balance: Balance::RoundRobin,
            affinity: None,
            pool: Pool::default(),
            internal: None,
            sources: Vec::new(),
        };
        assert!(!none.has_endpoints());
        assert!(none.admits(Ipv4Addr::new(192, 0, 2, 1)), "no ranges: anyone");
    }

    #[test]
    fn source_ranges_admit_only_their_peers() {
        let route = Route {
            balance: Balance::RoundRobin,
            affinity: None,
            pool: pool(&[5]),
            internal: None,
            sources: vec!["10.244.1.0/24".parse().unwrap_or_else(|e| panic!("{e}"))],
        };
        assert!(route.admits(Ipv4Addr::new(10, 244, 1, 200)));
        assert!(!route.admits(Ipv4Addr::new(10, 244, 2, 1)));
        assert!(!route.admits(Ipv4Addr::new(172, 18, 0, 9)));
    }
}
