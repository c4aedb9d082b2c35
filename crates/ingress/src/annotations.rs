//! The Ingress annotations we honour, under our own prefix `svcnet.io/` and
//! under ingress-nginx's `nginx.ingress.kubernetes.io/`, so that manifests
//! written for ingress-nginx keep working. When both are set, ours wins.
//! Values that do not parse are reported (an Event on the Ingress) and the
//! default is used.

use std::collections::BTreeMap;
use std::time::Duration;

pub const PREFIX: &str = "svcnet.io/";
pub const NGINX_PREFIX: &str = "nginx.ingress.kubernetes.io/";

/// How an upstream's endpoint is chosen per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Balance {
    #[default]
    RoundRobin,
    /// The less busy (fewer requests in flight) of two endpoints picked at
    /// random ("power of two choices"). `ewma` maps here: it is the same
    /// idea (prefer the less loaded) without latency bookkeeping.
    LeastRequest,
}

/// How we talk to the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum BackendProtocol {
    #[default]
    Http1,
    /// HTTP/2 with prior knowledge over plain TCP (gRPC, h2c).
    H2c,
}

/// Cookie-based session affinity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Affinity {
    pub cookie_name: String,
    pub max_age: Option<u64>,
}

/// The settings an Ingress's annotations give its routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotations {
    /// `None` = default (redirect when the host has TLS).
    pub ssl_redirect: Option<bool>,
    pub force_ssl_redirect: bool,
    pub affinity: Option<Affinity>,
    pub balance: Balance,
    /// `None` = the Service port's appProtocol decides.
    pub backend_protocol: Option<BackendProtocol>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub send_timeout: Duration,
}

/// ingress-nginx's defaults: 5 s to connect, 60 s between reads and writes.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for Annotations {
    fn default() -> Self {
        Annotations {
            ssl_redirect: None,
            force_ssl_redirect: false,
            affinity: None,
            balance: Balance::RoundRobin,
            backend_protocol: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            send_timeout: DEFAULT_SEND_TIMEOUT,
        }
    }
}

impl Annotations {
    /// Reads the annotations; the second value lists `(annotation, problem)`
    /// for values we could not use.
    pub fn parse(annotations: Option<&BTreeMap<String, String>>) -> (Annotations, Vec<String>) {
        let mut out = Annotations::default();
        let mut problems = Vec::new();
        let Some(map) = annotations else { return (out, problems) };
        let get = |name: &str| {
            map.get(&format!("{PREFIX}{name}")).or_else(|| map.get(&format!("{NGINX_PREFIX}{name}"))).map(|v| v.trim())
        };
        let mut bad = |name: &str, value: &str, want: &str| {
            problems.push(format!("annotation {name}: {value:?} is not {want}; using the default"));
        };
        if let Some(v) = get("ssl-redirect") {
            match parse_bool(v) {
                Some(b) => out.ssl_redirect = Some(b),
                None => bad("ssl-redirect", v, "true or false"),
            }
        }
        if let Some(v) = get("force-ssl-redirect") {
            match parse_bool(v) {
                Some(b) => out.force_ssl_redirect = b,
                None => bad("force-ssl-redirect", v, "true or false"),
            }
        }
        if let Some(v) = get("affinity") {
            if v == "cookie" {
                let cookie_name = get("session-cookie-name")
                    .filter(|n| !n.is_empty() && n.bytes().all(is_cookie_name_byte))
                    .unwrap_or("INGRESSCOOKIE")
                    .to_string();
                let max_age = match get("session-cookie-max-age") {
                    Some(m) => match m.parse::<u64>() {
                        Ok(m) => Some(m),
                        Err(_) => {
                            bad("session-cookie-max-age", m, "a number of seconds");
                            None
                        }
                    },
                    None => None,
                };
                out.affinity = Some(Affinity { cookie_name, max_age });
            } else if !v.is_empty() {
                bad("affinity", v, "\"cookie\"");
            }
        }
        if let Some(v) = get("load-balance") {
            match v {
                "round_robin" | "round-robin" => out.balance = Balance::RoundRobin,
                "ewma" | "least_request" | "least-request" | "least_conn" => out.balance = Balance::LeastRequest,
                _ => bad("load-balance", v, "round_robin, ewma or least_request"),
            }
        }
        if let Some(v) = get("backend-protocol") {
            match v.to_ascii_uppercase().as_str() {
                "HTTP" => out.backend_protocol = Some(BackendProtocol::Http1),
                "GRPC" | "H2C" => out.backend_protocol = Some(BackendProtocol::H2c),
                _ => bad("backend-protocol", v, "HTTP, GRPC or H2C (HTTPS and GRPCS backends are not supported)"),
            }
        }
        for (name, slot) in [
            ("proxy-connect-timeout", &mut out.connect_timeout),
            ("proxy-read-timeout", &mut out.read_timeout),
            ("proxy-send-timeout", &mut out.send_timeout),
        ] {
            if let Some(v) = get(name) {
                match v.trim_end_matches('s').parse::<u64>() {
                    Ok(secs) if secs > 0 => *slot = Duration::from_secs(secs),
                    _ => problems.push(format!(
                        "annotation {name}: {v:?} is not a positive number of seconds; using the default"
                    )),
                }
            }
        }
        (out, problems)
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// RFC 6265 token characters, so a configured name cannot break the header.
fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> (Annotations, Vec<String>) {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Annotations::parse(Some(&map))
    }

    #[test]
    fn both_prefixes_are_read_and_ours_wins() {
        let (a, p) = parse(&[
            ("nginx.ingress.kubernetes.io/ssl-redirect", "false"),
            ("nginx.ingress.kubernetes.io/load-balance", "ewma"),
            ("svcnet.io/load-balance", "round_robin"),
            ("nginx.ingress.kubernetes.io/proxy-read-timeout", "5"),
            ("svcnet.io/backend-protocol", "GRPC"),
        ]);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(a.ssl_redirect, Some(false));
        assert_eq!(a.balance, Balance::RoundRobin);
        assert_eq!(a.read_timeout, Duration::from_secs(5));
        assert_eq!(a.backend_protocol, Some(BackendProtocol::H2c));
    }

    #[test]
    fn cookie_affinity_has_ingress_nginx_defaults() {
        let (a, _) = parse(&[("nginx.ingress.kubernetes.io/affinity", "cookie")]);
        assert_eq!(a.affinity, Some(Affinity { cookie_name: "INGRESSCOOKIE".into(), max_age: None }));
        let (a, _) = parse(&[
            ("svcnet.io/affinity", "cookie"),
            ("svcnet.io/session-cookie-name", "route"),
            ("svcnet.io/session-cookie-max-age", "3600"),
        ]);
        assert_eq!(a.affinity, Some(Affinity { cookie_name: "route".into(), max_age: Some(3600) }));
    }

    #[test]
    fn bad_values_are_reported_and_defaulted() {
        let (a, p) = parse(&[("svcnet.io/proxy-connect-timeout", "soon"), ("svcnet.io/ssl-redirect", "maybe")]);
        assert_eq!(a, Annotations::default());
        assert_eq!(p.len(), 2, "{p:?}");
    }
}
