//! `kubectl port-forward`: SPDY/3.1 streams, each pair (`streamtype`
//! `error` and `data`, tied by `requestid`) one connection to
//! `localhost:<port>` inside the pod's network namespace, as the kubelet
//! does.
//!
//! Two ways in, one session: an HTTP upgrade to `SPDY/3.1` (protocol
//! `portforward.k8s.io`), which kubectl before 1.31 uses and later ones
//! fall back to, and a WebSocket with subprotocol
//! `SPDY/3.1+portforward.k8s.io` whose binary messages carry the same SPDY
//! bytes (kubectl 1.31 and later try it first).
//!
//! A failed connect is reported on the pair's error stream, in the
//! kubelet's words, which kubectl prints; the error stream is always
//! closed when a pair ends, however it ends, since kubectl waits for that.
//! When the pod closes its side, the client's side is given a second to
//! finish (as containerd does), then the pod connection is dropped.
//!
//! SPDY/3.1 flow control is not enforced: spdystream, kubectl's side,
//! neither sends nor waits for window updates. So one slow pod connection
//! cannot hold up the others, what the client sends is queued per
//! connection up to [`QUEUE_LIMIT`]; past it that connection is reset.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use http::{HeaderValue, Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::spdy::{self, Frame, Reader, Writer};
use super::{Body, full};
use crate::access::AccessError;

/// The port-forward protocol kubectl asks for (`X-Stream-Protocol-Version`).
pub const PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol that tunnels it.
pub const WEBSOCKET_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
const STREAM_PROTOCOL_HEADER: &str = "x-stream-protocol-version";
/// Data frames sent to the client carry at most this much.
const CHUNK: usize = 32 * 1024;
/// Client bytes queued for one pod connection that is not reading them.
pub const QUEUE_LIMIT: usize = 8 << 20;
/// How long the client's side may go on once the pod has closed its own.
const LINGER: std::time::Duration = std::time::Duration::from_secs(1);
/// Streams of a session still waiting for the other half of their pair.
const MAX_UNPAIRED: usize = 256;
/// SPDY RST_STREAM status for a stream that outran its queue.
const FLOW_CONTROL_ERROR: u32 = 7;

/// How the client reached us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// `Upgrade: SPDY/3.1`.
    Spdy,
    /// A WebSocket tunnelling SPDY, with its key.
    WebSocket { key: String },
}

impl Handshake {
    pub fn from_request<B>(req: &Request<B>) -> Result<Handshake, AccessError> {
        let header = |name| req.headers().get_all(name).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<&str>>();
        let list = |name| -> Vec<String> {
            header(name).iter().flat_map(|h| h.split(',')).map(|s| s.trim().to_string()).collect()
        };
        let upgrade = list(UPGRADE.as_str()).join(",").to_ascii_lowercase();
        if upgrade.split(',').any(|u| u == "websocket") {
            let offered = list(SEC_WEBSOCKET_PROTOCOL.as_str());
            if !offered.iter().any(|p| p == WEBSOCKET_PROTOCOL) {
                return Err(AccessError::bad_request(format!(
                    "none of the offered WebSocket subprotocols [{}] is supported: port-forward speaks {WEBSOCKET_PROTOCOL}",
                    offered.join(",")
                )));
            }
            let Some(key) = header(SEC_WEBSOCKET_KEY.as_str()).first().map(|k| k.trim().to_string()) else {
                return Err(AccessError::bad_request("the WebSocket upgrade has no Sec-WebSocket-Key"));
            };
            return Ok(Handshake::WebSocket { key });
        }
        if upgrade.split(',').any(|u| u == "spdy/3.1") {
            let offered = list(STREAM_PROTOCOL_HEADER);
            // No protocol header at all is the oldest clients' way, and
            // the kubelet accepts it too.
            if !offered.is_empty() && !offered.iter().any(|p| p == PROTOCOL) {
                return Err(AccessError::bad_request(format!(
                    "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports [\"{PROTOCOL}\"]"
                )));
            }
            return Ok(Handshake::Spdy);
        }
        Err(AccessError::bad_request(
            "Upgrade request required: port-forward needs an upgrade to SPDY/3.1 or a WebSocket",
        ))
    }

    /// The 101 answer.
    pub fn response(&self) -> Response<Body> {
        let mut resp = Response::new(full(Bytes::new()));
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = resp.headers_mut();
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        match self {
            Handshake::Spdy => {
                h.insert(UPGRADE, HeaderValue::from_static("SPDY/3.1"));
                h.insert(STREAM_PROTOCOL_HEADER, HeaderValue::from_static(PROTOCOL));
            }
            Handshake::WebSocket { key } => {
                h.insert(UPGRADE, HeaderValue::from_static("websocket"));
                if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
                    h.insert(SEC_WEBSOCKET_ACCEPT, accept);
                }
                h.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(WEBSOCKET_PROTOCOL));
            }
        }
        resp
    }
}

/// The pod a session forwards into.
#[derive(Debug, Clone)]
pub struct Target {
    /// `namespace/name`, for messages.
    pub pod: String,
    /// The pod's network namespace (`/proc/<pid>/ns/net` of a container).
    pub netns: PathBuf,
}

/// Serves one port-forward connection until the client goes.
pub async fn run<S>(io: S, handshake: Handshake, target: Target)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (incoming_tx, incoming) = mpsc::channel::<Vec<u8>>(16);
    let (out, outgoing) = mpsc::channel::<Vec<u8>>(64);
    let transport = match handshake {
        Handshake::Spdy => tokio::spawn(raw_transport(io, incoming_tx, outgoing)),
        Handshake::WebSocket { .. } => {
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
            tokio::spawn(websocket_transport(ws, incoming_tx, outgoing))
        }
    };
    Session::new(target, out).run(incoming).await;
    // The session dropped its sender: the transport flushes what is queued
    // and ends.
    let _ = transport.await;
}

/// Bytes in and frames out over the upgraded connection itself.
async fn raw_transport<S>(io: S, incoming: mpsc::Sender<Vec<u8>>, mut outgoing: mpsc::Receiver<Vec<u8>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let reading = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if incoming.send(buf[..n].to_vec()).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    while let Some(frame) = outgoing.recv().await {
        if wr.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = wr.shutdown().await;
    reading.abort();
}

/// The same over WebSocket binary messages.
async fn websocket_transport<S>(
    ws: WebSocketStream<S>,
    incoming: mpsc::Sender<Vec<u8>>,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let reading = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            let bytes = match msg {
                Message::Binary(b) => b.to_vec(),
                Message::Close(_) => break,
                // Pings are answered by the library; text is not SPDY.
                _ => continue,
            };
            if incoming.send(bytes).await.is_err() {
                break;
            }
        }
    });
    while let Some(frame) = outgoing.recv().await {
        if sink.send(Message::Binary(frame.into())).await.is_err() {
            break;
        }
    }
    let _ = sink.close().await;
    reading.abort();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Data,
    Error,
}

/// The two streams of one forwarded connection, as they arrive.
#[derive(Default)]
struct Pair {
    data: Option<u32>,
    error: Option<u32>,
    port: u16,
}

struct Session {
    target: Target,
    out: mpsc::Sender<Vec<u8>>,
    writer: Writer,
    pairs: HashMap<String, Pair>,
    /// Client bytes for each forwarded connection, by data stream.
    to_pod: HashMap<u32, Queue>,
    /// Each forwarded connection's task and error stream, by data stream.
    tasks: HashMap<u32, (JoinHandle<()>, u32)>,
    sockets: Option<svcnet_netns::NetnsSockets>,
}

/// What the client sent for one pod connection and the pod has not read
/// yet: never awaited by the session, so a stalled connection stalls alone.
struct Queue {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    queued: Arc<AtomicUsize>,
}

impl Session {
    fn new(target: Target, out: mpsc::Sender<Vec<u8>>) -> Session {
        Session {
            target,
            out,
            writer: Writer::default(),
            pairs: HashMap::new(),
            to_pod: HashMap::new(),
            tasks: HashMap::new(),
            sockets: None,
        }
    }

    async fn run(mut self, mut incoming: mpsc::Receiver<Vec<u8>>) {
        let mut reader = Reader::default();
        'session: while let Some(bytes) = incoming.recv().await {
            reader.push(&bytes);
            loop {
                let frame = match reader.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(pod = %self.target.pod, error = %e, "port-forward: bad SPDY input, closing");
                        break 'session;
                    }
                };
                if !self.on_frame(frame).await {
                    break 'session;
                }
            }
        }
        for (_, (t, _)) in self.tasks.drain() {
            t.abort();
        }
    }

    /// Ends a pair at once: its task stops and its error stream is closed.
    async fn end_pair(&mut self, data: u32) {
        self.to_pod.remove(&data);
        if let Some((t, error)) = self.tasks.remove(&data) {
            t.abort();
            let _ = self.out.send(Writer::data(error, true, &[])).await;
        }
    }

    /// Acts on one frame; false ends the session.
    async fn on_frame(&mut self, frame: Frame) -> bool {
        match frame {
            Frame::SynStream { stream, headers, .. } => self.on_stream(stream, &headers).await,
            Frame::Data { stream, fin, data } => {
                if let Some(q) = self.to_pod.get(&stream) {
                    let len = data.len();
                    if q.queued.fetch_add(len, Ordering::Relaxed) + len > QUEUE_LIMIT {
                        tracing::debug!(pod = %self.target.pod, stream, "port-forward: the pod is not reading; resetting");
                        if self.out.send(Writer::rst_stream(stream, FLOW_CONTROL_ERROR)).await.is_err() {
                            return false;
                        }
                        self.end_pair(stream).await;
                        return true;
                    }
                    if len > 0 && q.tx.send(data).is_err() {
                        self.to_pod.remove(&stream);
                    }
                }
                if fin {
                    // Dropping the sender half-closes the pod connection.
                    self.to_pod.remove(&stream);
                }
                true
            }
            Frame::RstStream { stream, .. } => {
                self.end_pair(stream).await;
                true
            }
            Frame::Ping { id } => self.out.send(Writer::ping(id)).await.is_ok(),
            Frame::GoAway => false,
            _ => true,
        }
    }

    async fn on_stream(&mut self, stream: u32, headers: &spdy::HeaderBlock) -> bool {
        let kind = match headers.get("streamtype").map(String::as_str) {
            Some("data") => Kind::Data,
            Some("error") => Kind::Error,
            other => {
                tracing::debug!(?other, "port-forward: a stream of unknown type, refused");
                return self.out.send(Writer::rst_stream(stream, spdy::PROTOCOL_ERROR)).await.is_ok();
            }
        };
        let Some(port) = headers.get("port").and_then(|p| p.parse::<u16>().ok()).filter(|p| *p > 0) else {
            tracing::debug!(?headers, "port-forward: a stream without a valid port, refused");
            return self.out.send(Writer::rst_stream(stream, spdy::PROTOCOL_ERROR)).await.is_ok();
        };
        if self.pairs.len() >= MAX_UNPAIRED {
            tracing::debug!(pod = %self.target.pod, "port-forward: too many streams waiting for their pair, refused");
            return self.out.send(Writer::rst_stream(stream, spdy::PROTOCOL_ERROR)).await.is_ok();
        }
        let reply = self.writer.syn_reply(stream, false, &[]);
        if self.out.send(reply).await.is_err() {
            return false;
        }
        // Clients before requestid paired an error stream with the data
        // stream two ids later.
        let request = headers.get("requestid").cloned().unwrap_or_else(|| match kind {
            Kind::Error => stream.to_string(),
            Kind::Data => stream.saturating_sub(2).to_string(),
        });
        let pair = self.pairs.entry(request.clone()).or_default();
        pair.port = port;
        match kind {
            Kind::Data => pair.data = Some(stream),
            Kind::Error => pair.error = Some(stream),
        }
        if let (Some(data), Some(error)) = (pair.data, pair.error) {
            let port = pair.port;
            self.pairs.remove(&request);
            self.forward(data, error, port).await;
        }
        true
    }

    /// Connects the pair to `localhost:port` in the pod and copies both ways.
    async fn forward(&mut self, data: u32, error: u32, port: u16) {
        // Forget the pairs that have ended.
        self.tasks.retain(|_, (t, _)| !t.is_finished());
        let live = &self.tasks;
        self.to_pod.retain(|stream, _| live.contains_key(stream));
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        self.to_pod.insert(data, Queue { tx, queued: queued.clone() });
        if self.sockets.is_none() {
            // Entering the namespace starts a thread and waits for it.
            let netns = self.target.netns.clone();
            self.sockets = tokio::task::spawn_blocking(move || svcnet_netns::NetnsSockets::enter(&netns).ok())
                .await
                .ok()
                .flatten();
        }
        let sockets = self.sockets.clone();
        let out = self.out.clone();
        let pod = self.target.pod.clone();
        let task = tokio::spawn(async move {
            let connected = match sockets {
                Some(s) => connect(&s, port).await,
                None => Err(std::io::Error::other("the pod's network namespace is gone")),
            };
            match connected {
                Ok(conn) => pump(conn, rx, queued, out.clone(), data).await,
                Err(e) => {
                    let message = format!(
                        "error forwarding port {port} to pod {pod}: failed to connect to localhost:{port} inside the pod's network namespace: {e}"
                    );
                    tracing::debug!("port-forward: {message}");
                    let _ = out.send(Writer::data(error, false, message.as_bytes())).await;
                    let _ = out.send(Writer::data(data, true, &[])).await;
                }
            }
            let _ = out.send(Writer::data(error, true, &[])).await;
        });
        self.tasks.insert(data, (task, error));
    }
}

async fn connect(sockets: &svcnet_netns::NetnsSockets, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let socket = sockets.tcp_socket(false).await?;
    let conn = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        socket.connect(SocketAddr::from(([127, 0, 0, 1], port))),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = conn.set_nodelay(true);
    Ok(conn)
}

/// Copies the client's bytes to the pod and the pod's back as data
/// frames, half-closing each way on its own. Once the pod has closed its
/// side, the client's gets [`LINGER`] to finish.
async fn pump(
    conn: tokio::net::TcpStream,
    mut from_client: mpsc::UnboundedReceiver<Vec<u8>>,
    queued: Arc<AtomicUsize>,
    out: mpsc::Sender<Vec<u8>>,
    data: u32,
) {
    let (mut rd, mut wr) = conn.into_split();
    let upstream = async move {
        while let Some(chunk) = from_client.recv().await {
            let len = chunk.len();
            let written = wr.write_all(&chunk).await;
            queued.fetch_sub(len, Ordering::Relaxed);
            if written.is_err() {
                return;
            }
        }
        let _ = wr.shutdown().await;
    };
    let downstream = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out.send(Writer::data(data, false, &buf[..n])).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = out.send(Writer::data(data, true, &[])).await;
    };
    tokio::pin!(upstream, downstream);
    tokio::select! {
        () = &mut downstream => {
            let _ = tokio::time::timeout(LINGER, &mut upstream).await;
        }
        () = &mut upstream => downstream.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method("POST").uri("/portForward/default/web");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn spdy_and_websocket_upgrades_are_told_apart() {
        let spdy = request(&[("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", "portforward.k8s.io")]);
        assert_eq!(Handshake::from_request(&spdy), Ok(Handshake::Spdy));
        let resp = Handshake::Spdy.response();
        assert_eq!(resp.status(), 101);
        assert_eq!(resp.headers()["x-stream-protocol-version"], "portforward.k8s.io");
        let ws = request(&[
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Protocol", "SPDY/3.1+portforward.k8s.io"),
        ]);
        let hs = Handshake::from_request(&ws).unwrap();
        let resp = hs.response();
        assert_eq!(resp.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(resp.headers()["sec-websocket-protocol"], "SPDY/3.1+portforward.k8s.io");
    }

    #[test]
    fn other_protocols_are_refused_with_the_reason() {
        let e = Handshake::from_request(&request(&[
            ("Upgrade", "SPDY/3.1"),
            ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
        ]))
        .unwrap_err();
        assert!(e.message.contains("unable to negotiate protocol"), "{e}");
        let e = Handshake::from_request(&request(&[
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", "x"),
            ("Sec-WebSocket-Protocol", "v5.channel.k8s.io"),
        ]))
        .unwrap_err();
        assert!(e.message.contains("SPDY/3.1+portforward.k8s.io"), "{e}");
        let e = Handshake::from_request(&request(&[])).unwrap_err();
        assert!(e.message.contains("Upgrade request required"), "{e}");
    }
}
