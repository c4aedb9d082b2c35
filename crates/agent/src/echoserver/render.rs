//! The echo answer's two bodies, plain text and JSON, as pure functions of
//! the request.

use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Version};
use serde_json::{Map, Value, json};

use super::EchoConfig;

/// Everything an echo answer reports about one request.
pub(super) struct Echo<'a> {
    pub(super) cfg: &'a EchoConfig,
    pub(super) method: &'a str,
    /// Path and query, as requested.
    pub(super) path: &'a str,
    pub(super) version: Version,
    pub(super) host: &'a str,
    pub(super) headers: &'a HeaderMap,
    pub(super) client: SocketAddr,
    pub(super) body_bytes: u64,
}

impl Echo<'_> {
    /// The `text/plain` body; its first line is `<pod> <pod IP>`.
    pub(super) fn text(&self) -> Bytes {
        let cfg = self.cfg;
        let mut out = String::with_capacity(256 + 64 * self.headers.len());
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "{} {}\nnamespace: {}\nnode: {}\nclient: {}\nrequest: {} {} {}\nhost: {}\nbody bytes: {}\nheaders:\n",
            cfg.pod,
            cfg.pod_ip,
            cfg.namespace,
            cfg.node,
            self.client,
            self.method,
            self.path,
            protocol(self.version),
            self.host,
            self.body_bytes,
        );
        for (name, value) in self.headers {
            let _ = writeln!(out, "  {}: {}", name, String::from_utf8_lossy(value.as_bytes()));
        }
        Bytes::from(out)
    }

    /// The `application/json` body: one object, then a newline.
    pub(super) fn json(&self) -> Bytes {
        let mut headers = Map::new();
        for name in self.headers.keys() {
            let mut joined = String::new();
            for (i, value) in self.headers.get_all(name).iter().enumerate() {
                if i > 0 {
                    joined.push_str(", ");
                }
                joined.push_str(&String::from_utf8_lossy(value.as_bytes()));
            }
            // `HeaderName`s are lowercase already.
            headers.insert(name.as_str().to_owned(), Value::String(joined));
        }
        let cfg = self.cfg;
        let object = json!({
            "pod": cfg.pod,
            "namespace": cfg.namespace,
            "node": cfg.node,
            "podIP": cfg.pod_ip,
            "method": self.method,
            "path": self.path,
            "host": self.host,
            "protocol": protocol(self.version),
            "client": self.client.to_string(),
            "clientIP": self.client.ip().to_string(),
            "bodyBytes": self.body_bytes,
            "headers": headers,
        });
        let mut body = object.to_string();
        body.push('\n');
        Bytes::from(body)
    }
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn cfg() -> EchoConfig {
        EchoConfig {
            pod: "web-5d8f7-abcde".into(),
            namespace: "shop".into(),
            node: "node-1".into(),
            pod_ip: "10.244.1.5".into(),
            ..EchoConfig::default()
        }
    }

    fn headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.append("host", HeaderValue::from_static("web.shop.svc"));
        headers.append("x-trace", HeaderValue::from_static("a"));
        headers.append("x-trace", HeaderValue::from_static("b"));
        headers
    }

    fn echo<'a>(cfg: &'a EchoConfig, headers: &'a HeaderMap) -> Echo<'a> {
        Echo {
            cfg,
            method: "PUT",
            path: "/cart/7?full=1",
            version: Version::HTTP_11,
            host: "web.shop.svc",
            headers,
            client: "[::1]:40000".parse().expect("socket address"),
            body_bytes: 12,
        }
    }

    #[test]
    fn text_names_the_pod_first_then_the_request() {
        let (cfg, headers) = (cfg(), headers());
        let text = echo(&cfg, &headers).text();
        let expected = "web-5d8f7-abcde 10.244.1.5\n\
            namespace: shop\n\
            node: node-1\n\
            client: [::1]:40000\n\
            request: PUT /cart/7?full=1 HTTP/1.1\n\
            host: web.shop.svc\n\
            body bytes: 12\n\
            headers:\n  \
            host: web.shop.svc\n  \
            x-trace: a\n  \
            x-trace: b\n";
        assert_eq!(std::str::from_utf8(&text).expect("utf-8"), expected);
    }

    #[test]
    fn json_joins_repeated_headers_and_splits_the_client_address() {
        let (cfg, headers) = (cfg(), headers());
        let body = echo(&cfg, &headers).json();
        assert_eq!(body.last(), Some(&b'\n'));
        let value: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            value,
            json!({
                "pod": "web-5d8f7-abcde",
                "namespace": "shop",
                "node": "node-1",
                "podIP": "10.244.1.5",
                "method": "PUT",
                "path": "/cart/7?full=1",
                "host": "web.shop.svc",
                "protocol": "HTTP/1.1",
                "client": "[::1]:40000",
                "clientIP": "::1",
                "bodyBytes": 12,
                "headers": {"host": "web.shop.svc", "x-trace": "a, b"},
            })
        );
    }
}
