//! The route table: every Ingress we serve, compiled into an immutable
//! [`RouteTable`] that the proxy reads per request. [`build_table`] is pure
//! (objects in, table and [`Problem`]s out); the controller publishes each
//! new table with one pointer swap, so a request sees one whole table.
//!
//! Rules, in the order they apply to a request:
//!
//! 1. **Host.** An exact host rule for the request's host (port ignored)
//!    is chosen first, then a one-label wildcard (`*.foo.com`), then the
//!    rules without a host. The most specific host that has rules is the
//!    only one consulted (as ingress-nginx's per-host servers behave): if
//!    none of its paths matches, the default backend answers.
//! 2. **Path.** Among the chosen host's paths, the longest matching path
//!    wins; on equal length `Exact` beats `Prefix` (`paths.rs`).
//! 3. **Default backend.** `spec.defaultBackend` of the oldest Ingress that
//!    has one; with none, 404.
//!
//! Several Ingresses for the same host are merged. Two rules with the same
//! host, the same (normalized) path and the same effective path type
//! conflict: the rule of the oldest Ingress (by `creationTimestamp`, then
//! namespace/name) wins and the other Ingress gets a `RouteConflict` event.
//! The same order picks the certificate for a host that several Ingresses
//! name in `spec.tls`.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};

use k8s_openapi::api::core::v1::{Secret, Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend, IngressClass};
use rustls::sign::CertifiedKey;

use crate::annotations::{Annotations, BackendProtocol};
use crate::class::is_ours;
use crate::config::IngressConfig;
use crate::metrics::{RouteMetrics, ServiceMetrics};
use crate::paths::{HostRule, PathKind, PathRule, wildcard_suffix};

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The Service port `appProtocol` that makes us speak h2c to the backend.
pub const H2C_APP_PROTOCOL: &str = "kubernetes.io/h2c";

/// Which Ingress a route or problem belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IngressRef {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for IngressRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Something wrong with an Ingress that we serve around, reported as a
/// Warning Event on it (`reason` is the Event's reason).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Problem {
    pub ingress: IngressRef,
    pub reason: &'static str,
    pub message: String,
}

/// A ready endpoint of an upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// The affinity cookie's value for this endpoint: a stable hash of its
    /// address, the same in every process and every table.
    pub cookie: String,
}

/// A Service port as a set of ready endpoints, shared by every route that
/// names the same Service, port and protocol.
#[derive(Debug)]
pub struct Upstream {
    pub namespace: String,
    pub service: String,
    /// The port as the Ingress named it (number or name).
    pub port: String,
    pub protocol: BackendProtocol,
    /// Ready endpoints, sorted by address.
    pub endpoints: Vec<Endpoint>,
    /// Why there are no endpoints, for the 503 body.
    pub unavailable: Option<String>,
    /// Round-robin position; starts at a random place in each table.
    pub(crate) next: AtomicUsize,
    pub(crate) metrics: OnceLock<Arc<ServiceMetrics>>,
}

/// One path of one rule (or a default backend) of one Ingress.
#[derive(Debug)]
pub struct Route {
    pub ingress: IngressRef,
    pub host: Option<HostRule>,
    /// `None` for a default backend.
    pub path: Option<PathRule>,
    pub upstream: Arc<Upstream>,
    pub settings: Arc<Annotations>,
    /// Plain HTTP requests are redirected to HTTPS (308).
    pub ssl_redirect: bool,
    pub(crate) metrics: OnceLock<Arc<RouteMetrics>>,
}

/// Certificates by SNI name.
#[derive(Debug, Default)]
struct Certs {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

/// The compiled configuration the proxy serves from. Immutable: a change
/// builds a new table.
#[derive(Debug, Default)]
pub struct RouteTable {
    exact: HashMap<String, Vec<Arc<Route>>>,
    wildcard: HashMap<String, Vec<Arc<Route>>>,
    any_host: Vec<Arc<Route>>,
    default_backend: Option<Arc<Route>>,
    certs: Certs,
    upstreams: Vec<Arc<Upstream>>,
    /// The Ingresses served (sorted), for status.
    ingresses: Vec<IngressRef>,
}

impl RouteTable {
    /// A table that serves nothing (404 for everything).
    pub fn empty() -> RouteTable {
        RouteTable::default()
    }

    /// The route for a request to `host` (lower-case, no port) and `path`
    /// (no query): the rules above, including the default backend.
    pub fn lookup(&self, host: &str, path: &str) -> Option<&Arc<Route>> {
        let group = self
            .exact
            .get(host)
            .or_else(|| wildcard_suffix(host).and_then(|s| self.wildcard.get(s)))
            .unwrap_or(&self.any_host);
        // Sorted by precedence: the first match is the best.
        group.iter().find(|r| r.path.as_ref().is_some_and(|p| p.matches(path))).or(self.default_backend.as_ref())
    }

    /// The certificate for an SNI name from some Ingress's `spec.tls`;
    /// `None` means the default certificate.
    pub fn certificate(&self, sni: &str) -> Option<Arc<CertifiedKey>> {
        let sni = sni.trim_end_matches('.').to_ascii_lowercase();
        self.certs.exact.get(&sni).or_else(|| wildcard_suffix(&sni).and_then(|s| self.certs.wildcard.get(s))).cloned()
    }

    /// Every upstream of the table.
    pub fn upstreams(&self) -> &[Arc<Upstream>] {
        &self.upstreams
    }

    /// Every route of the table, default backend included.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.exact
            .values()
            .chain(self.wildcard.values())
            .flatten()
            .chain(self.any_host.iter())
            .chain(self.default_backend.iter())
    }

    /// The Ingresses this table serves (ours, whatever their state).
    pub fn ingresses(&self) -> &[IngressRef] {
        &self.ingresses
    }
}

/// Compiles the route table from the cluster's objects. Ingresses that are
/// not ours (`class.rs`) are ignored. See the module docs for the rules.
pub fn build_table(
    ingresses: &[Ingress],
    classes: &[IngressClass],
    services: &[Service],
    slices: &[EndpointSlice],
    secrets: &[Secret],
    config: &IngressConfig,
) -> (RouteTable, Vec<Problem>) {
    compile(ingresses, classes, services, slices, secrets, config, &mut CertCache::default())
}

/// The Secret type whose `tls.crt` and `tls.key` we serve.
pub const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

/// Certificates parsed by earlier builds, by Secret, reused while the
/// Secret's `resourceVersion` stays the same: a rebuild for an endpoint
/// change then parses no PEM and no private key. Entries of Secrets a
/// build no longer uses are dropped at its end.
#[derive(Debug, Default)]
pub(crate) struct CertCache {
    entries: HashMap<(String, String), CachedCert>,
    used: HashSet<(String, String)>,
}

#[derive(Debug)]
struct CachedCert {
    resource_version: String,
    parsed: Result<Arc<CertifiedKey>, String>,
}

impl CertCache {
    /// Forgets the Secrets this build did not look at.
    fn finish(&mut self) {
        let used = std::mem::take(&mut self.used);
        self.entries.retain(|k, _| used.contains(k));
    }
}

/// [`build_table`] over owned objects or `Arc`s (the reflectors' stores),
/// so the controller need not copy every object for each rebuild.
pub(crate) fn compile<I, C, S, E, T>(
    ingresses: &[I],
    classes: &[C],
    services: &[S],
    slices: &[E],
    secrets: &[T],
    config: &IngressConfig,
    cache: &mut CertCache,
) -> (RouteTable, Vec<Problem>)
where
    I: Borrow<Ingress>,
    C: Borrow<IngressClass>,
    S: Borrow<Service>,
    E: Borrow<EndpointSlice>,
    T: Borrow<Secret>,
{
    let mut ours: Vec<&Ingress> = ingresses
        .iter()
        .map(Borrow::borrow)
        .filter(|i| i.metadata.name.is_some() && is_ours(i, classes, config))
        .collect();
    ours.sort_by_cached_key(|i| age_key(i));
    let mut builder = Builder {
        services: services
            .iter()
            .map(Borrow::borrow)
            .filter_map(|s| Some(((s.metadata.namespace.as_deref()?, s.metadata.name.as_deref()?), s)))
            .collect(),
        slices: HashMap::new(),
        secrets: secrets
            .iter()
            .map(Borrow::borrow)
            .filter_map(|s| Some(((s.metadata.namespace.as_deref()?, s.metadata.name.as_deref()?), s)))
            .collect(),
        upstreams: HashMap::new(),
        problems: Vec::new(),
        cache,
    };
    for slice in slices.iter().map(Borrow::borrow) {
        let svc = slice.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL));
        if let (Some(ns), Some(svc)) = (slice.metadata.namespace.as_deref(), svc) {
            builder.slices.entry((ns, svc.as_str())).or_default().push(slice);
        }
    }

    let mut table = RouteTable::default();
    // TLS first: which hosts have TLS decides the redirects.
    let mut tls_hosts: HashSet<HostRule> = HashSet::new();
    for ing in &ours {
        let (id, ns) = ingress_ref(ing);
        for tls in ing.spec.iter().flat_map(|s| s.tls.iter().flatten()) {
            let hosts: Vec<HostRule> = tls.hosts.iter().flatten().filter_map(|h| HostRule::parse(h)).collect();
            let cert = match tls.secret_name.as_deref().filter(|s| !s.is_empty()) {
                Some(secret) => builder.certificate(&id, ns, secret),
                None => None,
            };
            for host in hosts {
                if let Some(cert) = &cert {
                    let slot = match &host {
                        HostRule::Exact(h) => table.certs.exact.entry(h.clone()),
                        HostRule::Wildcard(s) => table.certs.wildcard.entry(s.clone()),
                    };
                    slot.or_insert_with(|| cert.clone());
                }
                tls_hosts.insert(host);
            }
        }
    }
    let has_tls = |host: &Option<HostRule>| match host {
        Some(h @ HostRule::Wildcard(_)) => tls_hosts.contains(h),
        Some(HostRule::Exact(name)) => {
            tls_hosts.contains(&HostRule::Exact(name.clone()))
                || wildcard_suffix(name).is_some_and(|s| tls_hosts.contains(&HostRule::Wildcard(s.to_string())))
        }
        None => false,
    };

    // (host, path rule) → taken by the first (oldest) Ingress.
    let mut taken: HashMap<(Option<HostRule>, PathRule), IngressRef> = HashMap::new();
    for ing in &ours {
        let (id, ns) = ingress_ref(ing);
        table.ingresses.push(id.clone());
        let (settings, bad) = Annotations::parse(ing.metadata.annotations.as_ref());
        for message in bad {
            builder.problem(&id, "InvalidAnnotation", message);
        }
        let settings = Arc::new(settings);
        let Some(spec) = ing.spec.as_ref() else { continue };
        if let Some(backend) = &spec.default_backend {
            if table.default_backend.is_none() {
                if let Some(upstream) = builder.upstream(&id, ns, backend, &settings) {
                    table.default_backend = Some(Arc::new(Route {
                        ingress: id.clone(),
                        host: None,
                        path: None,
                        upstream,
                        settings: settings.clone(),
                        ssl_redirect: settings.force_ssl_redirect,
                        metrics: OnceLock::new(),
                    }));
                }
            }
        }
        for rule in spec.rules.iter().flatten() {
            let host = match rule.host.as_deref().filter(|h| !h.is_empty()) {
                Some(h) => match HostRule::parse(h) {
                    Some(h) => Some(h),
                    None => {
                        builder.problem(
                            &id,
                            "InvalidHost",
                            format!("host {h:?} is not a name or a one-label wildcard"),
                        );
                        continue;
                    }
                },
                None => None,
            };
            let ssl_redirect = settings.force_ssl_redirect || (has_tls(&host) && settings.ssl_redirect != Some(false));
            for path in rule.http.iter().flat_map(|h| h.paths.iter()) {
                let written = path.path.as_deref().unwrap_or("/");
                let Some(kind) = PathKind::parse(Some(path.path_type.as_str()).filter(|t| !t.is_empty())) else {
                    builder.problem(
                        &id,
                        "InvalidPath",
                        format!("path {written:?}: unknown pathType {:?}", path.path_type),
                    );
                    continue;
                };
                let Some(path_rule) = PathRule::new(kind, written) else {
                    builder.problem(&id, "InvalidPath", format!("path {written:?} is not absolute"));
                    continue;
                };
                let key = (host.clone(), path_rule.clone());
                if let Some(owner) = taken.get(&key) {
                    if *owner != id {
                        let host_text = host.as_ref().map_or("*".to_string(), HostRule::to_string);
                        builder.problem(
                            &id,
                            "RouteConflict",
                            format!("host {host_text} path {written} ({kind:?}) is already served by the older Ingress {owner}; ignoring it here"),
                        );
                    }
                    continue;
                }
                let Some(upstream) = builder.upstream(&id, ns, &path.backend, &settings) else { continue };
                taken.insert(key, id.clone());
                let route = Arc::new(Route {
                    ingress: id.clone(),
                    host: host.clone(),
                    path: Some(path_rule),
                    upstream,
                    settings: settings.clone(),
                    ssl_redirect,
                    metrics: OnceLock::new(),
                });
                match &host {
                    Some(HostRule::Exact(h)) => table.exact.entry(h.clone()).or_default().push(route),
                    Some(HostRule::Wildcard(s)) => table.wildcard.entry(s.clone()).or_default().push(route),
                    None => table.any_host.push(route),
                }
            }
        }
    }
    // Stable: among equal precedence (impossible after conflict removal,
    // but cheap to keep) the older Ingress stays first.
    let by_precedence = |routes: &mut Vec<Arc<Route>>| {
        routes.sort_by(|a, b| match (&a.path, &b.path) {
            (Some(x), Some(y)) => x.precedence(y),
            _ => std::cmp::Ordering::Equal,
        })
    };
    table.exact.values_mut().for_each(by_precedence);
    table.wildcard.values_mut().for_each(by_precedence);
    by_precedence(&mut table.any_host);
    let mut upstreams: Vec<Arc<Upstream>> = builder.upstreams.into_values().collect();
    upstreams.sort_by(|a, b| (&a.namespace, &a.service, &a.port).cmp(&(&b.namespace, &b.service, &b.port)));
    table.upstreams = upstreams;
    builder.cache.finish();
    let mut problems = builder.problems;
    problems.sort();
    problems.dedup();
    (table, problems)
}

/// Oldest first; objects without a creation time (never from an API
/// server) after every dated one; then namespace/name.
fn age_key(ing: &Ingress) -> (bool, Option<i128>, String, String) {
    let ts = ing.metadata.creation_timestamp.as_ref().map(|t| t.0.as_nanosecond());
    (
        ts.is_none(),
        ts,
        ing.metadata.namespace.clone().unwrap_or_default(),
        ing.metadata.name.clone().unwrap_or_default(),
    )
}

fn ingress_ref(ing: &Ingress) -> (IngressRef, &str) {
    let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
    (IngressRef { namespace: ns.to_string(), name: ing.metadata.name.clone().unwrap_or_default() }, ns)
}

struct Builder<'a> {
    services: HashMap<(&'a str, &'a str), &'a Service>,
    slices: HashMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>,
    secrets: HashMap<(&'a str, &'a str), &'a Secret>,
    upstreams: HashMap<(String, String, String, BackendProtocol), Arc<Upstream>>,
    problems: Vec<Problem>,
    cache: &'a mut CertCache,
}

impl Builder<'_> {
    fn problem(&mut self, ingress: &IngressRef, reason: &'static str, message: String) {
        self.problems.push(Problem { ingress: ingress.clone(), reason, message });
    }

    fn certificate(&mut self, id: &IngressRef, ns: &str, secret: &str) -> Option<Arc<CertifiedKey>> {
        let Some(s) = self.secrets.get(&(ns, secret)).copied() else {
            self.problem(
                id,
                "MissingSecret",
                format!(
                    "TLS Secret {ns}/{secret} not found (only {TLS_SECRET_TYPE} Secrets are read); serving the default certificate for its hosts"
                ),
            );
            return None;
        };
        let type_ = s.type_.as_deref().unwrap_or("Opaque");
        if type_ != TLS_SECRET_TYPE {
            self.problem(
                id,
                "InvalidSecret",
                format!(
                    "Secret {ns}/{secret} is of type {type_}, not {TLS_SECRET_TYPE}; serving the default certificate"
                ),
            );
            return None;
        }
        let key = (ns.to_string(), secret.to_string());
        let rv = s.metadata.resource_version.as_deref();
        self.cache.used.insert(key.clone());
        let cached = self.cache.entries.get(&key).filter(|c| rv.is_some_and(|rv| rv == c.resource_version));
        let parsed = match cached {
            Some(c) => c.parsed.clone(),
            None => {
                let parsed = parse_secret(s).map(Arc::new);
                if let Some(rv) = rv {
                    let entry = CachedCert { resource_version: rv.to_string(), parsed: parsed.clone() };
                    self.cache.entries.insert(key, entry);
                }
                parsed
            }
        };
        match parsed {
            Ok(k) => Some(k),
            Err(e) => {
                self.problem(
                    id,
                    "InvalidSecret",
                    format!("Secret {ns}/{secret}: {e}; serving the default certificate"),
                );
                None
            }
        }
    }

    /// The upstream of a backend; `None` (with a problem) only for
    /// backends we cannot serve at all (resource backends); a missing
    /// Service gives an upstream without endpoints (503).
    fn upstream(
        &mut self,
        id: &IngressRef,
        ns: &str,
        backend: &IngressBackend,
        settings: &Annotations,
    ) -> Option<Arc<Upstream>> {
        let Some(svc_backend) = &backend.service else {
            self.problem(id, "UnsupportedBackend", "resource backends are not supported; only Service backends".into());
            return None;
        };
        let name = svc_backend.name.as_str();
        let port_ref = svc_backend.port.as_ref();
        let port_text = match port_ref {
            Some(p) => match (p.number, p.name.as_deref()) {
                (Some(n), _) => n.to_string(),
                (None, Some(n)) => n.to_string(),
                (None, None) => String::new(),
            },
            None => String::new(),
        };
        let service = self.services.get(&(ns, name)).copied();
        let svc_port: Option<&ServicePort> = service.and_then(|s| {
            let ports = s.spec.as_ref()?.ports.as_ref()?;
            match port_ref {
                Some(p) => match (p.number, p.name.as_deref()) {
                    (Some(n), _) => ports.iter().find(|sp| sp.port == n),
                    (None, Some(n)) => ports.iter().find(|sp| sp.name.as_deref() == Some(n)),
                    (None, None) => None,
                },
                // No port given (not valid in v1, but be kind): a Service
                // with a single port.
                None => (ports.len() == 1).then(|| &ports[0]),
            }
        });
        let protocol = settings.backend_protocol.unwrap_or_else(|| {
            if svc_port.and_then(|p| p.app_protocol.as_deref()) == Some(H2C_APP_PROTOCOL) {
                BackendProtocol::H2c
            } else {
                BackendProtocol::Http1
            }
        });
        // Problems belong to each Ingress, so they are found before an
        // upstream is shared.
        let broken = match (service, svc_port) {
            (None, _) => Some(("MissingService", format!("service {ns}/{name} not found"))),
            (Some(s), _) if s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName") => Some((
                "UnsupportedBackend",
                format!("service {ns}/{name} is an ExternalName Service, which an Ingress cannot proxy to"),
            )),
            (Some(_), None) => Some(("MissingServicePort", format!("service {ns}/{name} has no port {port_text}"))),
            (Some(_), Some(_)) => None,
        };
        if let Some((reason, why)) = &broken {
            self.problem(id, reason, format!("{why}; answering 503 for its paths"));
        }
        let key = (ns.to_string(), name.to_string(), port_text.clone(), protocol);
        if let Some(u) = self.upstreams.get(&key) {
            return Some(u.clone());
        }
        let (endpoints, unavailable) = match (broken, svc_port) {
            (Some((_, why)), _) => (Vec::new(), Some(why)),
            (None, Some(sp)) => {
                let eps = self.ready_endpoints(ns, name, sp);
                let why =
                    eps.is_empty().then(|| format!("no ready endpoints for service {ns}/{name} port {port_text}"));
                (eps, why)
            }
            (None, None) => (Vec::new(), Some(format!("service {ns}/{name} has no port {port_text}"))),
        };
        let upstream = Arc::new(Upstream {
            namespace: ns.to_string(),
            service: name.to_string(),
            port: port_text,
            protocol,
            endpoints,
            unavailable,
            // A random start: with frequent rebuilds (endpoint churn) a
            // start at 0 would send most requests to the first endpoint.
            next: AtomicUsize::new(rand::random::<u32>() as usize),
            metrics: OnceLock::new(),
        });
        self.upstreams.insert(key, upstream.clone());
        Some(upstream)
    }

    /// Ready endpoints of the Service port: the EndpointSlice port with the
    /// Service port's name gives the target port (so named target ports
    /// work as each pod defines them).
    fn ready_endpoints(&self, ns: &str, service: &str, port: &ServicePort) -> Vec<Endpoint> {
        let want = port.name.as_deref().unwrap_or("");
        let mut out: BTreeMap<SocketAddr, ()> = BTreeMap::new();
        for slice in self.slices.get(&(ns, service)).into_iter().flatten() {
            if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
                continue;
            }
            let Some(target) = slice
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref().unwrap_or("") == want && p.protocol.as_deref().unwrap_or("TCP") == "TCP")
                .and_then(|p| p.port)
                .and_then(|p| u16::try_from(p).ok())
            else {
                continue;
            };
            for ep in &slice.endpoints {
                if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                    continue;
                }
                // Consumers use the first address (the API's contract).
                if let Some(ip) = ep.addresses.first().and_then(|a| a.parse::<IpAddr>().ok()) {
                    out.insert(SocketAddr::new(ip, target), ());
                }
            }
        }
        out.into_keys().map(|addr| Endpoint { addr, cookie: cookie_for(addr) }).collect()
    }
}

/// The certificate and key of a TLS Secret, or why not.
fn parse_secret(s: &Secret) -> Result<CertifiedKey, String> {
    let data = s.data.as_ref();
    let (Some(crt), Some(key)) = (data.and_then(|d| d.get("tls.crt")), data.and_then(|d| d.get("tls.key"))) else {
        return Err("it has no tls.crt and tls.key".to_string());
    };
    crate::tls::certified_key_from_pem(&crt.0, &key.0).map_err(|e| e.to_string())
}

/// FNV-1a of the endpoint's address: stable across processes and
/// versions, unlike `std`'s hasher.
pub fn cookie_for(addr: SocketAddr) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in addr.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Where the current table is published: a reader clones the `Arc` under
/// a read lock held for a few nanoseconds; a publish swaps it. Requests
/// hold their own `Arc`, so a swap never disturbs one in flight.
#[derive(Debug, Default)]
pub(crate) struct TableCell(std::sync::RwLock<Arc<RouteTable>>);

impl TableCell {
    pub(crate) fn new(table: RouteTable) -> TableCell {
        TableCell(std::sync::RwLock::new(Arc::new(table)))
    }

    /// The route for a request, looked up under the read lock: no clone
    /// of the table's `Arc` (one contended counter less per request).
    pub(crate) fn lookup(&self, host: &str, path: &str) -> Option<Arc<Route>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).lookup(host, path).cloned()
    }

    pub(crate) fn load(&self) -> Arc<RouteTable> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn store(&self, table: Arc<RouteTable>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = table;
    }
}
