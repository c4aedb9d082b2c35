//! The `proxy` subresources of Services and Pods, as kube-apiserver serves
//! them: `kubectl proxy` then
//! `http://127.0.0.1:8001/api/v1/namespaces/NS/services/[https:]NAME[:PORT]/proxy/PATH`
//! reaches one ready endpoint of the Service (or the pod itself) with
//! plain HTTP/1.1.
//!
//! The endpoint is chosen as kube-apiserver chooses it: a port given by
//! number is first turned into the Service port's name; an endpoint port
//! of that name (the unnamed one when none is given) on a random ready
//! address. Connections to cluster addresses go through
//! [`Api::cluster_dial`] when set (`svcnet up` sets it to dial from inside
//! a node, the only place pod addresses exist) and straight from this
//! process otherwise. Connection upgrades are not proxied.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{Request, Response, Uri};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rand::Rng as _;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::body::{Body, BoxError, FallibleChannelBody};
use crate::error::{ApiError, Result};
use crate::handler::Api;
use crate::request::ResourceRequest;

/// Opens a TCP connection to a cluster address.
pub type Dial =
    Arc<dyn Fn(SocketAddr) -> Pin<Box<dyn Future<Output = std::io::Result<TcpStream>> + Send>> + Send + Sync>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a request is for `services/{name}/proxy` or `pods/{name}/proxy`.
pub fn handles(r: &ResourceRequest) -> bool {
    r.resource.group.is_empty()
        && matches!(r.resource.plural, "services" | "pods")
        && r.subresource.as_deref() == Some("proxy")
}

/// `[scheme:]name[:port]`, as kube-apiserver splits a proxy target.
fn split_target(id: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => return None,
    };
    (matches!(scheme, "" | "http" | "https") && !name.is_empty()).then_some((scheme, name, port))
}

pub async fn serve(api: &Api, req: Request<Incoming>, r: ResourceRequest) -> Result<Response<Body>> {
    let (Some(ns), Some(id)) = (r.namespace.as_deref(), r.name.as_deref()) else {
        return Err(ApiError::NoRoute);
    };
    let Some((scheme, name, port)) = split_target(id) else {
        return Err(ApiError::BadRequest(format!("invalid {} request {id:?}", r.resource.singular)));
    };
    if scheme == "https" {
        return Err(ApiError::BadRequest(format!(
            "proxying to {id:?} over https is not supported by svcnet; name the plain HTTP port"
        )));
    }
    let Some(rest) = proxied_path(req.uri().path(), r.resource.plural) else {
        // `.../proxy` without its slash: kube-apiserver redirects, so that
        // relative links in what is proxied resolve under the proxy.
        let location = match req.uri().query() {
            Some(q) => format!("{}/?{q}", req.uri().path()),
            None => format!("{}/", req.uri().path()),
        };
        let mut resp = Response::new(crate::body::full(Bytes::new()));
        *resp.status_mut() = http::StatusCode::MOVED_PERMANENTLY;
        if let Ok(v) = http::HeaderValue::from_str(&location) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return Ok(resp);
    };
    let target = match r.resource.plural {
        "services" => service_endpoint(api, ns, name, port).await?,
        _ => pod_endpoint(api, ns, name, port).await?,
    };
    forward(api, req, target, &rest).await
}

/// The path after `/{plural}/{name}/proxy` in the raw request path, with
/// its leading slash; `None` when the path stops at `proxy`.
fn proxied_path(path: &str, plural: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    let at = segments.windows(3).position(|w| w[0] == plural && w[2] == "proxy")?;
    let rest = &segments[at + 3..];
    if rest.is_empty() {
        return None;
    }
    Some(format!("/{}", rest.join("/")))
}

/// The address a Service's proxy request goes to.
async fn service_endpoint(api: &Api, ns: &str, name: &str, port: &str) -> Result<SocketAddr> {
    let services = svcnet_api::resources::by_plural("", "services").ok_or(ApiError::NoRoute)?;
    let svc = api.registry.get(services, Some(ns), name).await?.value();
    let mut port_name = port.to_string();
    if let Ok(number) = port.parse::<i64>() {
        let ports = svc.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
        let Some(p) = ports.iter().find(|p| p.get("port").and_then(Value::as_i64) == Some(number)) else {
            return Err(ApiError::Unavailable(format!("no service port {number} found for service {name:?}")));
        };
        port_name = p.get("name").and_then(Value::as_str).unwrap_or("").to_string();
    }
    let slices = svcnet_api::resources::by_plural("discovery.k8s.io", "endpointslices").ok_or(ApiError::NoRoute)?;
    let owner = name.to_string();
    let opts = crate::registry::ListOptions {
        filter: Box::new(move |o| {
            o.value().pointer("/metadata/labels/kubernetes.io~1service-name").and_then(Value::as_str)
                == Some(owner.as_str())
        }),
        filtered: true,
        limit: 0,
        continue_token: None,
    };
    let list = api.registry.list(slices, Some(ns), &opts).await?;
    let mut candidates = Vec::new();
    for slice in list.objects.iter().map(|o| o.value()) {
        if slice.get("addressType").and_then(Value::as_str) != Some("IPv4") {
            continue;
        }
        let ports = slice.get("ports").and_then(Value::as_array).cloned().unwrap_or_default();
        let Some(number) = ports
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str).unwrap_or("") == port_name)
            .and_then(|p| p.get("port").and_then(Value::as_u64))
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for ep in slice.get("endpoints").and_then(Value::as_array).into_iter().flatten() {
            let ready = ep.pointer("/conditions/ready").and_then(Value::as_bool).unwrap_or(true);
            let ip = ep.pointer("/addresses/0").and_then(Value::as_str).and_then(|a| a.parse().ok());
            if let (true, Some(ip)) = (ready, ip) {
                candidates.push(SocketAddr::new(ip, number));
            }
        }
    }
    if candidates.is_empty() {
        return Err(ApiError::Unavailable(format!("no endpoints available for service {name:?}")));
    }
    Ok(candidates[rand::rng().random_range(0..candidates.len())])
}

/// The address a Pod's proxy request goes to: the port named, else the
/// first declared containerPort, else 80.
async fn pod_endpoint(api: &Api, ns: &str, name: &str, port: &str) -> Result<SocketAddr> {
    let pods = svcnet_api::resources::by_plural("", "pods").ok_or(ApiError::NoRoute)?;
    let pod = api.registry.get(pods, Some(ns), name).await?.value();
    let Some(ip) = pod.pointer("/status/podIP").and_then(Value::as_str).and_then(|a| a.parse().ok()) else {
        return Err(ApiError::BadRequest(format!("address not allocated yet for pod {name:?}")));
    };
    let declared = || {
        pod.pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.pointer("/ports/0/containerPort").and_then(Value::as_u64))
            .find_map(|p| u16::try_from(p).ok())
    };
    let port = if port.is_empty() {
        declared().unwrap_or(80)
    } else {
        port.parse::<u16>().map_err(|_| ApiError::BadRequest(format!("invalid port {port:?} for pod {name:?}")))?
    };
    Ok(SocketAddr::new(ip, port))
}

/// Hop-by-hop headers, and the client's credentials for us.
fn forwarded(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "authorization"
            | "proxy-authorization"
    )
}

async fn forward(api: &Api, req: Request<Incoming>, target: SocketAddr, rest: &str) -> Result<Response<Body>> {
    if req.headers().contains_key(header::UPGRADE) {
        return Err(ApiError::BadRequest("svcnet does not proxy connection upgrades to Services or Pods".into()));
    }
    let unreachable = |e: &dyn std::fmt::Display| ApiError::Unavailable(format!("error trying to reach service: {e}"));
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    let dial = api.cluster_dial.get().cloned();
    let connect = async {
        match dial {
            Some(dial) => dial(target).await,
            None => TcpStream::connect(target).await,
        }
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| unreachable(&format!("dial tcp {target}: i/o timeout")))?
        .map_err(|e| unreachable(&format!("dial tcp {target}: {e}")))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| unreachable(&e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "proxy connection to a cluster endpoint ended with an error");
        }
    });
    let (parts, body) = req.into_parts();
    let uri: Uri = path_and_query.parse().map_err(|_| ApiError::BadRequest("invalid proxy path".into()))?;
    let mut out = Request::builder().method(parts.method).uri(uri);
    for (name, value) in parts.headers.iter().filter(|(n, _)| forwarded(n) && *n != header::HOST) {
        out = out.header(name, value);
    }
    out = out.header(header::HOST, target.to_string());
    let out = out.body(body).map_err(|e| ApiError::Internal(e.to_string()))?;
    // No deadline for the answer, as kube-apiserver sets none: a slow
    // upload is answered only once it is read. The client going away ends
    // the exchange.
    let resp = sender.send_request(out).await.map_err(|e| unreachable(&e))?;
    let (parts, mut incoming) = resp.into_parts();
    let (tx, rx) = mpsc::channel::<std::result::Result<Bytes, BoxError>>(8);
    tokio::spawn(async move {
        loop {
            let frame = tokio::select! {
                f = incoming.frame() => f,
                () = tx.closed() => return,
            };
            match frame {
                None => return,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if tx.send(Ok(data)).await.is_err() {
                            return;
                        }
                    }
                }
                // The backend broke off: abort the client's response too,
                // rather than end it as if it were whole.
                Some(Err(e)) => {
                    let _ = tx.send(Err(Box::new(e))).await;
                    return;
                }
            }
        }
    });
    let mut resp = Response::new(FallibleChannelBody::boxed(rx));
    *resp.status_mut() = parts.status;
    for (name, value) in parts.headers.iter().filter(|(n, _)| forwarded(n) && *n != header::CONTENT_LENGTH) {
        resp.headers_mut().append(name, value.clone());
    }
    if let Some(len) = parts.headers.get(header::CONTENT_LENGTH) {
        // Kept so clients see the size; the body streams exactly that much.
        resp.headers_mut().insert(header::CONTENT_LENGTH, len.clone());
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_as_kube_apiserver_splits_them() {
        assert_eq!(split_target("web"), Some(("", "web", "")));
        assert_eq!(split_target("web:80"), Some(("", "web", "80")));
        assert_eq!(split_target("web:http"), Some(("", "web", "http")));
        assert_eq!(split_target("https:web:443"), Some(("https", "web", "443")));
        assert_eq!(split_target("ftp:web:21"), None);
        assert_eq!(split_target(":80"), None);
        assert_eq!(split_target("a:b:c:d"), None);
    }

    #[test]
    fn the_proxied_path_is_what_follows_proxy_in_the_raw_path() {
        let p = |path| proxied_path(path, "services");
        assert_eq!(p("/api/v1/namespaces/dev/services/web:80/proxy/a/b/").as_deref(), Some("/a/b/"));
        assert_eq!(p("/api/v1/namespaces/dev/services/web%3A80/proxy/x").as_deref(), Some("/x"));
        assert_eq!(p("/api/v1/namespaces/dev/services/web/proxy/").as_deref(), Some("/"));
        assert_eq!(p("/api/v1/namespaces/dev/services/web/proxy"), None);
        // A path that itself contains "proxy" further on.
        assert_eq!(
            p("/api/v1/namespaces/dev/services/web/proxy/services/x/proxy").as_deref(),
            Some("/services/x/proxy")
        );
        assert_eq!(proxied_path("/api/v1/namespaces/dev/pods/p-1/proxy/healthz", "pods").as_deref(), Some("/healthz"));
    }

    #[test]
    fn credentials_and_hop_by_hop_headers_stay_behind() {
        for h in ["authorization", "connection", "transfer-encoding", "upgrade"] {
            assert!(!forwarded(&HeaderName::from_static(h)), "{h}");
        }
        for h in ["accept", "user-agent", "x-forwarded-for", "content-type"] {
            assert!(forwarded(&HeaderName::from_static(h)), "{h}");
        }
    }
}
