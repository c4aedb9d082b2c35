//! Pod subresources served by the node's agent, as kube-apiserver proxies
//! them to the kubelet: `log` (a streamed body), `exec` (a WebSocket) and
//! `portforward` (an upgrade to SPDY/3.1, or a WebSocket tunnelling it),
//! the upgrades spliced byte for byte once the agent has accepted them.
//!
//! The agent of a node is found at its annotation
//! [`AGENT_ENDPOINT_ANNOTATION`] (`host:port`, plain HTTP/1.1) and trusts
//! requests carrying `Authorization: Bearer <agent token>`. Requests to it
//! are written by hand on a fresh TCP connection: the API server has no
//! HTTP client, and an upgrade is easiest to splice from the raw socket.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, UPGRADE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::body::{self, Body, ChannelBody};
use crate::error::{ApiError, Result};
use crate::handler::{Api, bytes_response};
use crate::request::{Query, ResourceRequest};

/// The Node annotation naming its agent's streaming endpoint.
pub const AGENT_ENDPOINT_ANNOTATION: &str = "svcnet.io/agent-endpoint";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the agent may take to answer a request's head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_HEAD: usize = 64 * 1024;
/// Error bodies passed through are cut here.
const MAX_ERROR_BODY: usize = 1024 * 1024;

/// Whether a request is for a pod subresource the agent serves.
pub fn handles(r: &ResourceRequest) -> bool {
    r.resource.group.is_empty()
        && r.resource.plural == "pods"
        && matches!(r.subresource.as_deref(), Some("log" | "exec" | "attach" | "portforward"))
}

/// Serves `pods/{name}/log`, `pods/{name}/exec`, `pods/{name}/attach` and
/// `pods/{name}/portforward`.
pub async fn serve(api: &Api, req: Request<Incoming>, r: ResourceRequest) -> Result<Response<Body>> {
    let (Some(ns), Some(name)) = (r.namespace.as_deref(), r.name.as_deref()) else {
        return Err(ApiError::NoRoute);
    };
    let query = Query::parse(req.uri().query());
    match (r.subresource.as_deref(), req.method()) {
        (Some("log"), &Method::GET) => {
            let target = target(api, ns, name, query.get("container")).await?;
            logs(api, &req, ns, name, &target).await
        }
        (Some("exec"), &Method::GET | &Method::POST) => {
            let target = target(api, ns, name, query.get("container")).await?;
            let path = agent_path("exec", ns, name, &target, req.uri().query());
            upgrade(api, req, &target, &path).await
        }
        (Some("portforward"), &Method::GET | &Method::POST) => {
            let target = node_target(api, ns, name).await?;
            let path = format!("/portForward/{ns}/{name}");
            upgrade(api, req, &target, &path).await
        }
        (Some("attach"), &Method::GET | &Method::POST) => {
            let target = target(api, ns, name, query.get("container")).await?;
            let path = agent_path("attach", ns, name, &target, req.uri().query());
            upgrade(api, req, &target, &path).await
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// Where a request goes: a container on a node whose agent listens at
/// `endpoint`.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    node: String,
    endpoint: String,
    container: String,
}

async fn target(api: &Api, ns: &str, name: &str, container: Option<&str>) -> Result<Target> {
    let (pod, node) = pod_and_node(api, ns, name).await?;
    let container = choose_container(&pod, name, container)?;
    agent_of(api, node, container).await
}

/// The agent of the pod's node, for a request about the whole pod.
async fn node_target(api: &Api, ns: &str, name: &str) -> Result<Target> {
    let (_, node) = pod_and_node(api, ns, name).await?;
    agent_of(api, node, String::new()).await
}

async fn pod_and_node(api: &Api, ns: &str, name: &str) -> Result<(Value, String)> {
    let pods = svcnet_api::resources::by_plural("", "pods").ok_or(ApiError::NoRoute)?;
    let pod = api.registry.get(pods, Some(ns), name).await?.value();
    let node = pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()).map(str::to_string);
    let Some(node) = node else {
        return Err(ApiError::BadRequest(format!("pod {name} does not have a host assigned")));
    };
    Ok((pod, node))
}

async fn agent_of(api: &Api, node: String, container: String) -> Result<Target> {
    let nodes = svcnet_api::resources::by_plural("", "nodes").ok_or(ApiError::NoRoute)?;
    let node = node.as_str();
    let node_object = api.registry.get(nodes, None, node).await?.value();
    let endpoint = node_object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(AGENT_ENDPOINT_ANNOTATION))
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty());
    let Some(endpoint) = endpoint else {
        return Err(ApiError::Unavailable(format!(
            "node {node} has no svcnet agent to stream from: its annotation {AGENT_ENDPOINT_ANNOTATION} is not set"
        )));
    };
    Ok(Target { node: node.to_string(), endpoint: endpoint.to_string(), container })
}

/// The container a request means, checked as kube-apiserver does.
fn choose_container(pod: &Value, name: &str, requested: Option<&str>) -> Result<String> {
    let names = |field: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{field}"))
            .and_then(Value::as_array)
            .map(|cs| cs.iter().filter_map(|c| c.get("name").and_then(Value::as_str)).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let containers = names("containers");
    let init = names("initContainers");
    let ephemeral = names("ephemeralContainers");
    match requested.filter(|c| !c.is_empty()) {
        Some(c) if containers.iter().chain(&init).chain(&ephemeral).any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::BadRequest(format!("container {c} is not valid for pod {name}"))),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => {
            let mut message =
                format!("a container name must be specified for pod {name}, choose one of: [{}]", containers.join(" "));
            if !init.is_empty() {
                message.push_str(&format!(" or one of the init containers: [{}]", init.join(" ")));
            }
            if !ephemeral.is_empty() {
                message.push_str(&format!(" or one of the ephemeral containers: [{}]", ephemeral.join(" ")));
            }
            Err(ApiError::BadRequest(message))
        }
    }
}

/// The agent's path for a subresource, with the client's query string
/// (the agent ignores what it does not know, such as `container`).
fn agent_path(kind: &str, ns: &str, name: &str, target: &Target, query: Option<&str>) -> String {
    let mut path = format!("/{kind}/{ns}/{name}/{}", target.container);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        path.push('?');
        path.push_str(q);
    }
    path
}

async fn logs(api: &Api, req: &Request<Incoming>, ns: &str, name: &str, target: &Target) -> Result<Response<Body>> {
    let path = agent_path("containerLogs", ns, name, target, req.uri().query());
    let mut agent = Agent::connect(target).await?;
    agent.send_head("GET", &path, api.agent_token.as_deref(), &[("Connection", "close".to_string())]).await?;
    let head = agent.read_head().await?;
    let content_type = head.header("content-type").unwrap_or("text/plain").to_string();
    let mut body = agent.into_body(&head);
    if head.code != 200 {
        return passthrough(&head, &mut body).await;
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        loop {
            // A follower may wait long for the next line; a client that
            // left must not keep the agent's stream open meanwhile.
            let chunk = tokio::select! {
                chunk = body.next() => chunk,
                _ = tx.closed() => return,
            };
            match chunk {
                Ok(Some(data)) => {
                    if tx.send(data).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "reading a log stream from the agent failed");
                    return;
                }
            }
        }
    });
    let mut resp = Response::new(ChannelBody::boxed(rx));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("text/plain")));
    Ok(resp)
}

/// Passes an upgrade (exec, port-forward) to the agent at `path` and, once
/// the agent has switched protocols, splices the two connections.
async fn upgrade(api: &Api, mut req: Request<Incoming>, target: &Target, path: &str) -> Result<Response<Body>> {
    // What the agent needs to judge and accept the upgrade: a WebSocket's
    // or SPDY's (exec refuses SPDY and says why).
    let mut headers = Vec::new();
    for name in [
        UPGRADE.as_str(),
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "x-stream-protocol-version",
    ] {
        let values: Vec<&str> = req.headers().get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
        if !values.is_empty() {
            headers.push((name, values.join(", ")));
        }
    }
    let upgrading = req.headers().contains_key(UPGRADE);
    if upgrading {
        headers.push(("Connection", "Upgrade".to_string()));
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let mut agent = Agent::connect(target).await?;
    agent.send_head("GET", path, api.agent_token.as_deref(), &headers).await?;
    let head = agent.read_head().await?;
    if head.code != 101 || !upgrading {
        let mut body = agent.into_body(&head);
        return passthrough(&head, &mut body).await;
    }
    let mut resp = Response::new(body::full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for name in ["upgrade", "connection", "sec-websocket-accept", "sec-websocket-protocol", "x-stream-protocol-version"]
    {
        if let Some(v) = head.header(name).and_then(|v| HeaderValue::from_str(v).ok()) {
            resp.headers_mut().insert(name, v);
        }
    }
    let (mut socket, early) = (agent.stream, agent.buffered);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "the client's upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(upgraded);
        // Bytes the agent sent right behind its 101 belong to the client.
        if !early.is_empty() && client.write_all(&early).await.is_err() {
            return;
        }
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut socket).await {
            tracing::debug!(error = %e, "upgraded stream ended with an error");
        }
    });
    Ok(resp)
}

/// An agent's error answer, status and body as the agent sent them.
async fn passthrough(head: &ResponseHead, body: &mut BodyReader) -> Result<Response<Body>> {
    let mut data = Vec::new();
    while let Some(chunk) = body.next().await.map_err(|e| agent_failed(&body.endpoint, e))? {
        data.extend_from_slice(&chunk);
        if data.len() > MAX_ERROR_BODY {
            data.truncate(MAX_ERROR_BODY);
            break;
        }
    }
    let code = StatusCode::from_u16(head.code).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut resp = bytes_response(code, Bytes::from(data), "application/json");
    if let Some(v) = head.header("content-type").and_then(|v| HeaderValue::from_str(v).ok()) {
        resp.headers_mut().insert(CONTENT_TYPE, v);
    }
    Ok(resp)
}

fn agent_failed(endpoint: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("error talking to the svcnet agent at {endpoint}: {e}"))
}

/// One HTTP/1.1 exchange with an agent.
struct Agent {
    endpoint: String,
    stream: TcpStream,
    /// Read past the response head.
    buffered: Vec<u8>,
}

impl Agent {
    async fn connect(target: &Target) -> Result<Agent> {
        let endpoint = target.endpoint.clone();
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&endpoint)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(ApiError::Unavailable(format!(
                    "error dialing the svcnet agent of node {} at {endpoint}: {e}",
                    target.node
                )));
            }
            Err(_) => {
                return Err(ApiError::Unavailable(format!(
                    "error dialing the svcnet agent of node {} at {endpoint}: timed out",
                    target.node
                )));
            }
        };
        let _ = stream.set_nodelay(true);
        Ok(Agent { endpoint, stream, buffered: Vec::new() })
    }

    async fn send_head(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, String)],
    ) -> Result<()> {
        let head = request_head(method, path, &self.endpoint, token, headers);
        self.stream.write_all(&head).await.map_err(|e| agent_failed(&self.endpoint, e))
    }

    async fn read_head(&mut self) -> Result<ResponseHead> {
        let endpoint = self.endpoint.clone();
        let read = async {
            let mut buf = vec![0; 8192];
            loop {
                if let Some(end) = find_head_end(&self.buffered) {
                    let head = parse_head(&self.buffered[..end])
                        .ok_or_else(|| agent_failed(&endpoint, "malformed response"))?;
                    self.buffered.drain(..end);
                    return Ok(head);
                }
                if self.buffered.len() > MAX_HEAD {
                    return Err(agent_failed(&endpoint, "response head too large"));
                }
                let n = self.stream.read(&mut buf).await.map_err(|e| agent_failed(&endpoint, e))?;
                if n == 0 {
                    return Err(agent_failed(&endpoint, "connection closed before a response"));
                }
                self.buffered.extend_from_slice(&buf[..n]);
            }
        };
        tokio::time::timeout(HEAD_TIMEOUT, read)
            .await
            .map_err(|_| agent_failed(&self.endpoint, "no response in time"))?
    }

    fn into_body(self, head: &ResponseHead) -> BodyReader {
        let framing = if head.header("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked")) {
            Framing::Chunked(ChunkedDecoder::default())
        } else if let Some(n) = head.header("content-length").and_then(|n| n.trim().parse().ok()) {
            Framing::Length(n)
        } else if head.code == 204 || head.code == 304 || head.code < 200 {
            Framing::Length(0)
        } else {
            Framing::Close
        };
        BodyReader { endpoint: self.endpoint, stream: self.stream, buffered: self.buffered, framing, done: false }
    }
}

fn request_head(method: &str, path: &str, host: &str, token: Option<&str>, headers: &[(&str, String)]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: svcnet-apiserver\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    for (name, value) in headers {
        // Header values come from a parsed request: no CR or LF in them.
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn find_head_end(data: &[u8]) -> Option<usize> {
    data.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// A response's status code and headers.
#[derive(Debug)]
struct ResponseHead {
    code: u16,
    headers: Vec<(String, String)>,
}

impl ResponseHead {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn parse_head(data: &[u8]) -> Option<ResponseHead> {
    let text = std::str::from_utf8(data).ok()?;
    let mut lines = text.split("\r\n");
    let status = lines.next()?;
    let mut parts = status.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?.parse().ok()?;
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(ResponseHead { code, headers })
}

enum Framing {
    Length(u64),
    Chunked(ChunkedDecoder),
    /// Until the agent closes the connection.
    Close,
}

/// A response body, decoded chunk by chunk as it arrives.
struct BodyReader {
    endpoint: String,
    stream: TcpStream,
    buffered: Vec<u8>,
    framing: Framing,
    done: bool,
}

impl BodyReader {
    async fn next(&mut self) -> std::io::Result<Option<Bytes>> {
        let mut buf = vec![0; 16 * 1024];
        loop {
            if self.done || matches!(self.framing, Framing::Length(0)) {
                return Ok(None);
            }
            let input = if self.buffered.is_empty() {
                let n = self.stream.read(&mut buf).await?;
                if n == 0 {
                    if matches!(self.framing, Framing::Close) {
                        self.done = true;
                        return Ok(None);
                    }
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf[..n].to_vec()
            } else {
                std::mem::take(&mut self.buffered)
            };
            match &mut self.framing {
                Framing::Length(left) => {
                    let take = input.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    *left -= take as u64;
                    return Ok(Some(Bytes::copy_from_slice(&input[..take])));
                }
                Framing::Chunked(decoder) => {
                    let mut out = Vec::new();
                    decoder
                        .feed(&input, &mut out)
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                    self.done = decoder.is_done();
                    if !out.is_empty() {
                        return Ok(Some(Bytes::from(out)));
                    }
                }
                Framing::Close => return Ok(Some(Bytes::from(input))),
            }
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed chunked encoding")]
pub struct ChunkError;

/// An incremental decoder of `Transfer-Encoding: chunked`.
#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    state: ChunkState,
}

#[derive(Debug)]
enum ChunkState {
    Size { size: u64, digits: u8 },
    Extension { size: u64 },
    SizeLf { size: u64 },
    Data { left: u64 },
    DataCr,
    DataLf,
    Trailer { line_empty: bool },
    Done,
}

impl Default for ChunkState {
    fn default() -> Self {
        ChunkState::Size { size: 0, digits: 0 }
    }
}

impl ChunkedDecoder {
    pub fn is_done(&self) -> bool {
        matches!(self.state, ChunkState::Done)
    }

    /// Decodes `input`, appending the data it carries to `out`; bytes
    /// after the end of the body are ignored.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            self.state = match self.state {
                ChunkState::Size { size, digits } => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        if digits >= 15 {
                            return Err(ChunkError);
                        }
                        let d = (b as char).to_digit(16).ok_or(ChunkError)?;
                        ChunkState::Size { size: size * 16 + u64::from(d), digits: digits + 1 }
                    }
                    _ if digits == 0 => return Err(ChunkError),
                    b';' | b' ' | b'\t' => ChunkState::Extension { size },
                    b'\r' => ChunkState::SizeLf { size },
                    b'\n' => Self::after_size(size),
                    _ => return Err(ChunkError),
                },
                ChunkState::Extension { size } => match b {
                    b'\r' => ChunkState::SizeLf { size },
                    b'\n' => Self::after_size(size),
                    _ => ChunkState::Extension { size },
                },
                ChunkState::SizeLf { size } => match b {
                    b'\n' => Self::after_size(size),
                    _ => return Err(ChunkError),
                },
                ChunkState::Data { left } => {
                    let take = (input.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&input[i..i + take]);
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 { ChunkState::DataCr } else { ChunkState::Data { left } };
                    continue;
                }
                ChunkState::DataCr => match b {
                    b'\r' => ChunkState::DataLf,
                    b'\n' => ChunkState::default(),
                    _ => return Err(ChunkError),
                },
                ChunkState::DataLf => match b {
                    b'\n' => ChunkState::default(),
                    _ => return Err(ChunkError),
                },
                ChunkState::Trailer { line_empty } => match b {
                    b'\n' if line_empty => ChunkState::Done,
                    b'\n' => ChunkState::Trailer { line_empty: true },
                    b'\r' => ChunkState::Trailer { line_empty },
                    _ => ChunkState::Trailer { line_empty: false },
                },
                ChunkState::Done => return Ok(()),
            };
            i += 1;
        }
        Ok(())
    }

    fn after_size(size: u64) -> ChunkState {
        if size == 0 { ChunkState::Trailer { line_empty: true } } else { ChunkState::Data { left: size } }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn decode_in_pieces(encoded: &[u8], piece: usize) -> (Vec<u8>, bool) {
        let mut d = ChunkedDecoder::default();
        let mut out = Vec::new();
        for part in encoded.chunks(piece) {
            d.feed(part, &mut out).expect("valid encoding");
        }
        (out, d.is_done())
    }

    #[test]
    fn chunked_bodies_decode_however_they_are_split() {
        let encoded = b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\nignored";
        for piece in [1, 2, 3, 7, encoded.len()] {
            let (out, done) = decode_in_pieces(encoded, piece);
            assert_eq!(out, b"hello 0123456789", "pieces of {piece}");
            assert!(done);
        }
        let (out, done) = decode_in_pieces(b"3\r\nab", 64);
        assert_eq!((out.as_slice(), done), (&b"ab"[..], false));
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for bad in [&b"zz\r\n"[..], b"\r\n", b"3\r\nabcX", b"3x\r\n", b"ffffffffffffffffff\r\n"] {
            let mut out = Vec::new();
            assert_eq!(ChunkedDecoder::default().feed(bad, &mut out), Err(ChunkError), "{bad:?}");
        }
    }

    #[test]
    fn response_heads_are_parsed_with_case_insensitive_headers() {
        let raw = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol:  v5.channel.k8s.io \r\n\r\n\x82\x01";
        let end = find_head_end(raw).expect("complete head");
        assert_eq!(&raw[end..], b"\x82\x01");
        let head = parse_head(&raw[..end]).expect("valid");
        assert_eq!(head.code, 101);
        assert_eq!(head.header("sec-websocket-protocol"), Some("v5.channel.k8s.io"));
        assert_eq!(head.header("UPGRADE"), Some("websocket"));
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_none());
    }

    #[test]
    fn requests_to_the_agent_carry_the_token_and_the_clients_query() {
        let target = Target { node: "n1".into(), endpoint: "127.0.0.1:10250".into(), container: "main".into() };
        let path = agent_path("exec", "default", "web", &target, Some("command=ls&container=main&stdout=true"));
        assert_eq!(path, "/exec/default/web/main?command=ls&container=main&stdout=true");
        let head = request_head("GET", &path, &target.endpoint, Some("t0k"), &[("Upgrade", "websocket".into())]);
        assert_eq!(
            String::from_utf8(head).expect("ascii"),
            "GET /exec/default/web/main?command=ls&container=main&stdout=true HTTP/1.1\r\nHost: 127.0.0.1:10250\r\n\
             User-Agent: svcnet-apiserver\r\nAuthorization: Bearer t0k\r\nUpgrade: websocket\r\n\r\n"
        );
        assert_eq!(agent_path("containerLogs", "a", "b", &target, None), "/containerLogs/a/b/main");
    }

    #[test]
    fn containers_are_chosen_as_kube_apiserver_chooses_them() {
        let one = json!({ "spec": { "containers": [{ "name": "app" }] } });
        assert_eq!(choose_container(&one, "web", None).ok(), Some("app".to_string()));
        assert_eq!(choose_container(&one, "web", Some("")).ok(), Some("app".to_string()));
        let e = choose_container(&one, "web", Some("db")).expect_err("unknown");
        assert_eq!(e.message(), "container db is not valid for pod web");

        let two = json!({ "spec": {
            "containers": [{ "name": "a" }, { "name": "b" }],
            "initContainers": [{ "name": "setup" }],
        } });
        let e = choose_container(&two, "web", None).expect_err("ambiguous");
        assert_eq!(
            e.message(),
            "a container name must be specified for pod web, choose one of: [a b] or one of the init containers: [setup]"
        );
        assert_eq!(e.code(), 400);
        assert_eq!(choose_container(&two, "web", Some("setup")).ok(), Some("setup".to_string()));
    }

    #[test]
    fn only_pod_log_exec_attach_and_portforward_are_proxied() {
        let route = |p: &str| match crate::request::route(p) {
            Ok(crate::request::Route::Resource(r)) => handles(&r),
            _ => false,
        };
        assert!(route("/api/v1/namespaces/default/pods/web/log"));
        assert!(route("/api/v1/namespaces/default/pods/web/exec"));
        assert!(route("/api/v1/namespaces/default/pods/web/attach"));
        assert!(route("/api/v1/namespaces/default/pods/web/portforward"));
        assert!(!route("/api/v1/namespaces/default/pods/web/status"));
        assert!(!route("/api/v1/namespaces/default/services/web/exec"));
    }
}
