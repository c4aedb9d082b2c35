//! What a node's proxy programs, as plain data: every service port with
//! its addresses, options and endpoints. The data planes (`nft`,
//! `iptables`, `userspace`) turn a [`Snapshot`] into rules or listeners;
//! `build` makes one from Services and EndpointSlices.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// `tcp`, `udp`, `sctp`, as nft and iptables spell them.
    pub fn as_str(&self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }

    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "TCP" | "tcp" => Some(Protocol::Tcp),
            "UDP" | "udp" => Some(Protocol::Udp),
            "SCTP" | "sctp" => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

/// An IPv4 network, `10.244.0.0/16` (host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    net: Ipv4Addr,
    len: u8,
}

impl Cidr {
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Cidr> {
        if len > 32 {
            return None;
        }
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
        Some(Cidr { net: Ipv4Addr::from(u32::from(addr) & mask), len })
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        Cidr::new(ip, self.len).is_some_and(|c| c.net == self.net)
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, len) = s.trim().split_once('/').unwrap_or((s.trim(), "32"));
        let addr: Ipv4Addr = addr.parse().map_err(|_| format!("{s:?} is not an IPv4 CIDR"))?;
        let len: u8 = len.parse().map_err(|_| format!("{s:?} is not an IPv4 CIDR"))?;
        Cidr::new(addr, len).ok_or_else(|| format!("{s:?} is not an IPv4 CIDR"))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.len)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Affinity {
    None,
    /// `sessionAffinity: ClientIP`: a client keeps its endpoint while it
    /// sends within `timeout_seconds` of its last packet/connection.
    ClientIp {
        timeout_seconds: u32,
    },
}

/// One endpoint of a service port (its port already resolved from the
/// slice's port of the same name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    /// The node the endpoint's pod runs on, when known.
    pub node: Option<String>,
    /// `conditions.ready`: serving and not terminating.
    pub ready: bool,
    /// `conditions.serving`: passing readiness, terminating or not.
    pub serving: bool,
    pub terminating: bool,
    /// On this proxy's node.
    pub local: bool,
}

/// One port of one Service, as kube-proxy's `ServicePort`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub namespace: String,
    pub name: String,
    /// The port's name; empty for a single unnamed port.
    pub port_name: String,
    pub protocol: Protocol,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub node_port: Option<u16>,
    pub external_ips: Vec<Ipv4Addr>,
    /// status.loadBalancer.ingress IPs.
    pub load_balancer_ips: Vec<Ipv4Addr>,
    /// spec.loadBalancerSourceRanges (IPv4, sorted, deduplicated): when
    /// not empty, new connections to the load balancer IPs on `port` are
    /// accepted only from these sources (node ports, the cluster IP and
    /// external IPs are not filtered, as in kube-proxy).
    pub load_balancer_source_ranges: Vec<Cidr>,
    pub affinity: Affinity,
    /// externalTrafficPolicy: Local (only meaningful with node ports,
    /// external IPs or load balancer IPs).
    pub external_local: bool,
    /// internalTrafficPolicy: Local.
    pub internal_local: bool,
    /// kube-proxy answers `/healthz` here for externalTrafficPolicy Local.
    pub health_check_node_port: Option<u16>,
    /// Every endpoint the slices list for this port, sorted by (ip, port).
    pub endpoints: Vec<Endpoint>,
}

impl ServicePort {
    /// `namespace/name:port`, kube-proxy's ServicePortName, used in rule
    /// comments and chain names.
    pub fn id(&self) -> String {
        if self.port_name.is_empty() {
            format!("{}/{}", self.namespace, self.name)
        } else {
            format!("{}/{}:{}", self.namespace, self.name, self.port_name)
        }
    }

    /// Endpoints for traffic to the cluster IP (internalTrafficPolicy).
    pub fn cluster_endpoints(&self) -> Vec<&Endpoint> {
        usable(self.endpoints.iter().filter(|e| !self.internal_local || e.local))
    }

    /// Endpoints for traffic to node ports, external IPs and load balancer
    /// IPs (externalTrafficPolicy).
    pub fn external_endpoints(&self) -> Vec<&Endpoint> {
        usable(self.endpoints.iter().filter(|e| !self.external_local || e.local))
    }

    /// True when traffic to the load balancer IPs is filtered by source.
    pub fn has_source_ranges(&self) -> bool {
        !self.load_balancer_source_ranges.is_empty() && !self.load_balancer_ips.is_empty()
    }

    /// True when `source` may reach the load balancer IPs.
    pub fn source_allowed(&self, source: Ipv4Addr) -> bool {
        self.load_balancer_source_ranges.is_empty()
            || self.load_balancer_source_ranges.iter().any(|c| c.contains(source))
    }

    /// True when the service is exposed outside the cluster (node port,
    /// external IPs or load balancer IPs).
    pub fn is_external(&self) -> bool {
        self.node_port.is_some() || !self.external_ips.is_empty() || !self.load_balancer_ips.is_empty()
    }
}

/// Ready endpoints; when none is ready, serving terminating ones (so a
/// rolling update never leaves a gap), as kube-proxy's CategorizeEndpoints.
fn usable<'a>(eps: impl Iterator<Item = &'a Endpoint> + Clone) -> Vec<&'a Endpoint> {
    let ready: Vec<&Endpoint> = eps.clone().filter(|e| e.ready).collect();
    if !ready.is_empty() {
        return ready;
    }
    eps.filter(|e| e.serving && e.terminating).collect()
}

/// Everything one node programs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub node_name: String,
    /// The node's own addresses (node ports answer on these).
    pub node_ips: Vec<Ipv4Addr>,
    /// The pods this node treats as its own (the runtime gives the node's
    /// pod CIDR, kube-proxy's NodeCIDR local detection): traffic to a
    /// service from outside it is masqueraded, and traffic from inside it
    /// to a Local service's external address takes the cluster path.
    pub cluster_cidr: String,
    /// The service CIDR (10.96.0.0/12): traffic to an address in it that is
    /// no service is dropped.
    pub service_cidr: String,
    /// Sorted by id.
    pub services: Vec<ServicePort>,
}
