//! A built-in LoadBalancer address allocator, as MetalLB's controller or
//! k3s' ServiceLB give `type: LoadBalancer` Services an address on bare
//! metal: pure decisions over a [`Pool`] and the Services, no I/O. The
//! runtime (`runtime/loadbalancer.rs`) writes `status.loadBalancer` and
//! the events.
//!
//! Start at [`Allocator`]: [`Allocator::rebuild`] it from every Service at
//! start, then [`Allocator::sync`] each Service that changes; turn the
//! [`Decision`] into a status write with [`status_update`].
//! [`allocate_all`] does both for a whole snapshot.
//!
//! | a Service that | gets |
//! | --- | --- |
//! | is not `type: LoadBalancer` | nothing; its `status.loadBalancer` is cleared, its address freed |
//! | sets `spec.loadBalancerClass` | left alone: another implementation owns it (an address this allocator held is freed, and cleared from the status if shown there) |
//! | asks for an address | that address if it is in the pool and free (or shareable); else none, and an `AllocationFailed` event saying why |
//! | asks for none | the address it holds, or the one its status shows, if still in the pool and not another's; else the lowest free address |
//!
//! A Service asks for an address with, in this order of precedence, the
//! annotation `svcnet.io/load-balancer-ips`, MetalLB's
//! `metallb.universe.tf/loadBalancerIPs` (each a comma-separated list, of
//! which one IPv4 address; the pool is IPv4 only, so an IPv6 entry is not
//! allowed) or the deprecated `spec.loadBalancerIP`. Every one of them
//! that is set must name the same address.
//!
//! Services that carry the same non-empty `svcnet.io/allow-shared-ip`
//! annotation value (or MetalLB's `metallb.universe.tf/allow-shared-ip`)
//! may share an address when no two of them serve the same port and
//! protocol; automatic allocation then also picks the lowest address that
//! is free *or* shareable. Unlike MetalLB, `externalTrafficPolicy: Local`
//! Services are not required to select the same pods to share.
//!
//! At start, [`Allocator::rebuild`] takes back the addresses the statuses
//! show, oldest Service first (ties by namespace and name), so a restart
//! keeps every valid assignment and resolves a duplicate the same way each
//! time; Services are then synced with those that ask for an address
//! first, then the others, each oldest first.
//!
//! Left out: IPv6 and dual-stack, several pools or pool selection per
//! Service, announcing the addresses (ARP/BGP: the service proxy answers
//! for them on the nodes), and avoiding addresses other implementations
//! handed out from the same range.

mod pool;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, Service};
use k8s_openapi::jiff::Timestamp;
use svcnet_client::ObjectKey;

pub use pool::{Pool, PoolError, parse_pool};

/// The default pool, as text: the top of the sandbox's `172.18.0.0/16`,
/// well above the nodes' `172.18.0.0/24`.
pub const DEFAULT_POOL: &str = "172.18.255.1-172.18.255.254";

/// [`DEFAULT_POOL`], parsed.
pub fn default_pool() -> Pool {
    Pool::range(Ipv4Addr::new(172, 18, 255, 1), Ipv4Addr::new(172, 18, 255, 254))
}

/// Requested addresses (comma-separated), svcnet's own annotation.
pub const ANNOTATION_IPS: &str = "svcnet.io/load-balancer-ips";
/// Requested addresses, MetalLB's annotation.
pub const METALLB_ANNOTATION_IPS: &str = "metallb.universe.tf/loadBalancerIPs";
/// Sharing key: Services with the same value may share an address.
pub const ANNOTATION_SHARED: &str = "svcnet.io/allow-shared-ip";
/// Sharing key, MetalLB's annotation.
pub const METALLB_ANNOTATION_SHARED: &str = "metallb.universe.tf/allow-shared-ip";
/// The deprecated field, named as messages name it.
pub const FIELD_LOAD_BALANCER_IP: &str = "spec.loadBalancerIP";

/// Event reasons, as MetalLB's controller words them.
pub const REASON_ALLOCATED: &str = "IPAllocated";
pub const REASON_FAILED: &str = "AllocationFailed";

/// `status.loadBalancer.ingress[].ipMode`: traffic arrives for the address
/// itself, which the node's service proxy handles.
pub const IP_MODE_VIP: &str = "VIP";

/// Why a Service gets no address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    /// Outside the pool (or IPv6).
    #[error("\"{0}\" is not allowed in config")]
    NotAllowed(String),
    #[error("\"{ip}\" is already in use by {holder}")]
    InUse { ip: Ipv4Addr, holder: ObjectKey },
    /// Same sharing key, but both serve `port`.
    #[error("\"{ip}\" is already in use by {holder}, which also serves port {port}")]
    PortClash { ip: Ipv4Addr, holder: ObjectKey, port: String },
    #[error("no available IPs")]
    Exhausted,
    #[error("invalid IP {value:?} in {origin}")]
    Invalid { origin: &'static str, value: String },
    #[error("{origin} asks for more than one IPv4 address")]
    TooMany { origin: &'static str },
    #[error("{first} asks for \"{first_ip}\" but {second} for \"{second_ip}\"")]
    Conflicting { first: &'static str, first_ip: Ipv4Addr, second: &'static str, second_ip: Ipv4Addr },
}

/// The `AllocationFailed` event's message.
pub fn failure_message(key: &ObjectKey, error: &AllocationError) -> String {
    format!("Failed to allocate IP for \"{key}\": {error}")
}

/// The `IPAllocated` event's message.
pub fn assigned_message(ip: Ipv4Addr) -> String {
    format!("Assigned IP [\"{ip}\"]")
}

/// What a Service ends up with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Gone, or not `type: LoadBalancer`.
    NotLoadBalancer,
    /// `spec.loadBalancerClass` is set: another implementation's.
    OtherClass,
    Assigned(Ipv4Addr),
    Failed(AllocationError),
}

/// The outcome of one [`Allocator::sync`], and the address the Service
/// held before if it no longer does (others waiting may now fit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub freed: Option<Ipv4Addr>,
}

/// (protocol, port) a Service serves.
type PortKey = (String, i32);

/// What a Service asks of the allocator.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Wants {
    NotLoadBalancer,
    OtherClass,
    Any,
    Exact(Ipv4Addr),
    Invalid(AllocationError),
}

#[derive(Clone, Debug)]
struct Claim {
    uid: String,
    created: Option<Timestamp>,
    wants: Wants,
    sharing: Option<String>,
    ports: BTreeSet<PortKey>,
    /// The address `status.loadBalancer` shows.
    current: Option<Ipv4Addr>,
}

impl Claim {
    fn of(svc: &Service) -> Claim {
        let annotations = svc.metadata.annotations.as_ref();
        let annotation = |k: &str| annotations.and_then(|a| a.get(k)).map(|v| v.trim()).filter(|v| !v.is_empty());
        let ports = svc
            .spec
            .iter()
            .flat_map(|s| s.ports.iter().flatten())
            .map(|p| (p.protocol.clone().unwrap_or_else(|| "TCP".into()), p.port))
            .collect();
        Claim {
            uid: svc.metadata.uid.clone().unwrap_or_default(),
            created: svc.metadata.creation_timestamp.as_ref().map(|t| t.0),
            wants: wants(svc),
            sharing: annotation(ANNOTATION_SHARED)
                .or_else(|| annotation(METALLB_ANNOTATION_SHARED))
                .map(str::to_string),
            ports,
            current: status_ip(svc),
        }
    }

    fn holder(&self, key: &ObjectKey) -> Holder {
        Holder { key: key.clone(), uid: self.uid.clone(), sharing: self.sharing.clone(), ports: self.ports.clone() }
    }
}

fn wants(svc: &Service) -> Wants {
    let spec = svc.spec.as_ref();
    if spec.and_then(|s| s.type_.as_deref()) != Some("LoadBalancer") {
        return Wants::NotLoadBalancer;
    }
    if spec.and_then(|s| s.load_balancer_class.as_deref()).is_some_and(|c| !c.is_empty()) {
        return Wants::OtherClass;
    }
    match requested(svc) {
        Ok(None) => Wants::Any,
        Ok(Some(ip)) => Wants::Exact(ip),
        Err(e) => Wants::Invalid(e),
    }
}

/// The address the Service asks for, from whichever of the annotations
/// and `spec.loadBalancerIP` are set (all of which must agree).
fn requested(svc: &Service) -> Result<Option<Ipv4Addr>, AllocationError> {
    let annotations = svc.metadata.annotations.as_ref();
    let sources = [
        (ANNOTATION_IPS, annotations.and_then(|a| a.get(ANNOTATION_IPS))),
        (METALLB_ANNOTATION_IPS, annotations.and_then(|a| a.get(METALLB_ANNOTATION_IPS))),
        (FIELD_LOAD_BALANCER_IP, svc.spec.as_ref().and_then(|s| s.load_balancer_ip.as_ref())),
    ];
    let mut asked: Option<(&'static str, Ipv4Addr)> = None;
    for (origin, value) in sources {
        let Some(value) = value.map(|v| v.trim()).filter(|v| !v.is_empty()) else { continue };
        let ip = one_ipv4(origin, value)?;
        match asked {
            None => asked = Some((origin, ip)),
            Some((first, first_ip)) if first_ip != ip => {
                return Err(AllocationError::Conflicting { first, first_ip, second: origin, second_ip: ip });
            }
            Some(_) => {}
        }
    }
    Ok(asked.map(|(_, ip)| ip))
}

/// The one IPv4 address of a comma-separated list.
fn one_ipv4(origin: &'static str, list: &str) -> Result<Ipv4Addr, AllocationError> {
    let mut found = None;
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match entry.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) if found.is_none() => found = Some(ip),
            Ok(IpAddr::V4(_)) => return Err(AllocationError::TooMany { origin }),
            Ok(IpAddr::V6(_)) => return Err(AllocationError::NotAllowed(entry.to_string())),
            Err(_) => return Err(AllocationError::Invalid { origin, value: entry.to_string() }),
        }
    }
    found.ok_or_else(|| AllocationError::Invalid { origin, value: list.to_string() })
}

/// `status.loadBalancer.ingress`.
fn ingress(svc: &Service) -> &[LoadBalancerIngress] {
    svc.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|lb| lb.ingress.as_deref()).unwrap_or(&[])
}

/// The first IPv4 address in `status.loadBalancer.ingress`.
pub fn status_ip(svc: &Service) -> Option<Ipv4Addr> {
    ingress(svc).iter().find_map(|i| i.ip.as_deref().and_then(|ip| ip.parse().ok()))
}

/// A Service holding an address.
#[derive(Clone, Debug)]
struct Holder {
    key: ObjectKey,
    uid: String,
    sharing: Option<String>,
    ports: BTreeSet<PortKey>,
}

/// Which Service holds which address of the pool. The runtime keeps one
/// and is its only writer, so it is ahead of what the informer shows.
#[derive(Clone, Debug)]
pub struct Allocator {
    pool: Pool,
    by_ip: BTreeMap<Ipv4Addr, Vec<Holder>>,
    by_key: BTreeMap<ObjectKey, Ipv4Addr>,
}

impl Allocator {
    /// An allocator with nothing assigned.
    pub fn new(pool: Pool) -> Allocator {
        Allocator { pool, by_ip: BTreeMap::new(), by_key: BTreeMap::new() }
    }

    /// The allocator after a restart: every Service keeps the address its
    /// status shows if it is in the pool, fits what the Service asks for,
    /// and no older Service (by creation time, then namespace and name)
    /// claimed it first. Returns the keys of all `services` in the order to
    /// [`Allocator::sync`] them: those asking for an address, then those
    /// taking any, then the rest, each oldest first.
    pub fn rebuild<'a>(pool: Pool, services: impl IntoIterator<Item = &'a Service>) -> (Allocator, Vec<ObjectKey>) {
        let mut claims: Vec<(ObjectKey, Claim)> =
            services.into_iter().filter_map(|s| Some((ObjectKey::of(s)?, Claim::of(s)))).collect();
        claims.sort_by(|(ka, a), (kb, b)| (a.created, ka).cmp(&(b.created, kb)));
        let mut this = Allocator::new(pool);
        for (key, claim) in &claims {
            let Some(ip) = claim.current else { continue };
            let fits = match claim.wants {
                Wants::Any => true,
                Wants::Exact(want) => want == ip,
                _ => false,
            };
            if fits && this.pool.contains(ip) && this.check(ip, claim).is_ok() {
                this.take(ip, claim.holder(key));
            }
        }
        // Stable: each group stays oldest first.
        claims.sort_by_key(|(_, c)| match c.wants {
            Wants::Exact(_) => 0,
            Wants::Any => 1,
            _ => 2,
        });
        (this, claims.into_iter().map(|(k, _)| k).collect())
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The address `key` holds.
    pub fn assigned(&self, key: &ObjectKey) -> Option<Ipv4Addr> {
        self.by_key.get(key).copied()
    }

    /// The Services holding an address.
    pub fn keys(&self) -> impl Iterator<Item = &ObjectKey> {
        self.by_key.keys()
    }

    /// Decides the address of the Service `key` (`None`: it is gone) and
    /// records it.
    pub fn sync(&mut self, key: &ObjectKey, svc: Option<&Service>) -> Decision {
        let claim = svc.map(Claim::of);
        let held = self.release(key);
        // A Service deleted and created again under the same name starts
        // afresh.
        let kept = held.as_ref().filter(|(_, h)| claim.as_ref().is_some_and(|c| c.uid == h.uid)).map(|(ip, _)| *ip);
        let outcome = match &claim {
            None => Outcome::NotLoadBalancer,
            Some(c) => self.decide(c, kept),
        };
        if let (Outcome::Assigned(ip), Some(c)) = (&outcome, &claim) {
            self.take(*ip, c.holder(key));
        }
        let freed = held.map(|(ip, _)| ip).filter(|ip| outcome != Outcome::Assigned(*ip));
        Decision { outcome, freed }
    }

    fn decide(&self, claim: &Claim, held: Option<Ipv4Addr>) -> Outcome {
        match &claim.wants {
            Wants::NotLoadBalancer => Outcome::NotLoadBalancer,
            Wants::OtherClass => Outcome::OtherClass,
            Wants::Invalid(e) => Outcome::Failed(e.clone()),
            Wants::Exact(ip) if !self.pool.contains(*ip) => {
                Outcome::Failed(AllocationError::NotAllowed(ip.to_string()))
            }
            Wants::Exact(ip) => match self.check(*ip, claim) {
                Ok(()) => Outcome::Assigned(*ip),
                Err(e) => Outcome::Failed(e),
            },
            Wants::Any => held
                .into_iter()
                .chain(claim.current)
                .find(|ip| self.pool.contains(*ip) && self.check(*ip, claim).is_ok())
                .or_else(|| self.pool.addresses().find(|ip| self.check(*ip, claim).is_ok()))
                .map_or(Outcome::Failed(AllocationError::Exhausted), Outcome::Assigned),
        }
    }

    /// Whether `claim` may take `ip` beside its current holders.
    fn check(&self, ip: Ipv4Addr, claim: &Claim) -> Result<(), AllocationError> {
        for h in self.by_ip.get(&ip).into_iter().flatten() {
            if claim.sharing.is_none() || claim.sharing != h.sharing {
                return Err(AllocationError::InUse { ip, holder: h.key.clone() });
            }
            if let Some((protocol, port)) = claim.ports.intersection(&h.ports).next() {
                return Err(AllocationError::PortClash {
                    ip,
                    holder: h.key.clone(),
                    port: format!("{port}/{protocol}"),
                });
            }
        }
        Ok(())
    }

    fn take(&mut self, ip: Ipv4Addr, holder: Holder) {
        self.by_key.insert(holder.key.clone(), ip);
        self.by_ip.entry(ip).or_default().push(holder);
    }

    fn release(&mut self, key: &ObjectKey) -> Option<(Ipv4Addr, Holder)> {
        let ip = self.by_key.remove(key)?;
        let holders = self.by_ip.get_mut(&ip)?;
        let at = holders.iter().position(|h| &h.key == key)?;
        let holder = holders.remove(at);
        if holders.is_empty() {
            self.by_ip.remove(&ip);
        }
        Some((ip, holder))
    }
}

/// Every Service's outcome for a whole snapshot, as a restarted controller
/// reaches it: [`Allocator::rebuild`], then [`Allocator::sync`] in its
/// order.
pub fn allocate_all<'a>(
    pool: Pool,
    services: impl IntoIterator<Item = &'a Service>,
) -> (Allocator, BTreeMap<ObjectKey, Outcome>) {
    let by_key: BTreeMap<ObjectKey, &Service> =
        services.into_iter().filter_map(|s| Some((ObjectKey::of(s)?, s))).collect();
    let (mut allocator, order) = Allocator::rebuild(pool, by_key.values().copied());
    let mut outcomes = BTreeMap::new();
    for key in order {
        let decision = allocator.sync(&key, by_key.get(&key).copied());
        outcomes.insert(key, decision.outcome);
    }
    (allocator, outcomes)
}

/// The Service with the `status.loadBalancer` that `decision` calls for,
/// or `None` if it already shows it: `[{ip, ipMode: VIP}]` for an
/// assigned address; empty for a Service that is not a LoadBalancer or
/// got none; untouched for another class's, unless it shows the address
/// this allocator just took from it.
pub fn status_update(svc: &Service, decision: &Decision) -> Option<Service> {
    let want = match &decision.outcome {
        Outcome::Assigned(ip) => vec![LoadBalancerIngress {
            ip: Some(ip.to_string()),
            ip_mode: Some(IP_MODE_VIP.to_string()),
            ..LoadBalancerIngress::default()
        }],
        Outcome::NotLoadBalancer | Outcome::Failed(_) => Vec::new(),
        Outcome::OtherClass if decision.freed.is_some() && status_ip(svc) == decision.freed => Vec::new(),
        Outcome::OtherClass => return None,
    };
    if ingress(svc) == want.as_slice() {
        return None;
    }
    let mut next = svc.clone();
    next.status.get_or_insert_with(Default::default).load_balancer =
        Some(LoadBalancerStatus { ingress: (!want.is_empty()).then_some(want) });
    Some(next)
}
