//! `kubectl exec` over a WebSocket: the `v5.channel.k8s.io` and
//! `v4.channel.k8s.io` remotecommand protocols kubectl 1.30 and later
//! speak.
//!
//! Every message is binary and starts with a channel byte: 0 stdin,
//! 1 stdout, 2 stderr, 3 the final `metav1.Status`, 4 terminal resizes
//! (`{"Width":w,"Height":h}`), and in v5, 255 to close a channel
//! (`[255, 0]`: no more stdin). After the process has exited and its
//! output is sent, the status goes out on channel 3 and the server closes
//! the WebSocket; if the client goes first, the process group is killed.

use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};
use futures_util::{SinkExt as _, StreamExt as _};
use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderValue, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use super::process::{self, PtyMaster, SpawnError};
use super::query::ExecOptions;
use super::{Body, full};
use crate::access::{AccessError, ContainerRef};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
pub const CLOSE: u8 = 255;

/// How long output is still awaited after the process exited when
/// something it started keeps its stdout or stderr open.
const LINGER: Duration = Duration::from_secs(1);
/// How long the client has to answer our close.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V5,
    V4,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V5 => "v5.channel.k8s.io",
            Protocol::V4 => "v4.channel.k8s.io",
        }
    }

    /// Our choice among the subprotocols a client offers: v5 first.
    pub fn choose<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Protocol> {
        let offered: Vec<&str> = offered.into_iter().flat_map(|h| h.split(',')).map(str::trim).collect();
        [Protocol::V5, Protocol::V4].into_iter().find(|p| offered.contains(&p.name()))
    }
}

/// A valid WebSocket upgrade request, before it is answered.
pub struct Handshake {
    key: String,
    pub protocol: Protocol,
}

impl Handshake {
    pub fn from_request<B>(req: &Request<B>) -> Result<Handshake, AccessError> {
        let header = |name| req.headers().get_all(name).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<&str>>();
        let upgrade = header(UPGRADE).join(",").to_ascii_lowercase();
        if upgrade.contains("spdy") {
            return Err(AccessError::bad_request(
                "exec over SPDY is not supported: svcnet streams exec over WebSocket (v5.channel.k8s.io), \
                 which kubectl 1.30 and later use",
            ));
        }
        if !upgrade.split(',').any(|u| u.trim() == "websocket") {
            return Err(AccessError::bad_request(
                "Upgrade request required: exec needs a WebSocket upgrade (v5.channel.k8s.io or v4.channel.k8s.io)",
            ));
        }
        if header(SEC_WEBSOCKET_VERSION).first().map(|v| v.trim()) != Some("13") {
            return Err(AccessError::bad_request("unsupported WebSocket version: only version 13 is supported"));
        }
        let Some(key) = header(SEC_WEBSOCKET_KEY).first().map(|k| k.trim().to_string()) else {
            return Err(AccessError::bad_request("the WebSocket upgrade has no Sec-WebSocket-Key"));
        };
        let offered = header(SEC_WEBSOCKET_PROTOCOL);
        let Some(protocol) = Protocol::choose(offered.iter().copied()) else {
            return Err(AccessError::bad_request(format!(
                "none of the offered WebSocket subprotocols [{}] is supported: use v5.channel.k8s.io or v4.channel.k8s.io",
                offered.join(",")
            )));
        };
        Ok(Handshake { key, protocol })
    }

    /// The 101 answer.
    pub fn response(&self) -> Response<Body> {
        let mut resp = Response::new(full(Bytes::new()));
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = resp.headers_mut();
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(self.key.as_bytes())) {
            h.insert(SEC_WEBSOCKET_ACCEPT, accept);
        }
        h.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(self.protocol.name()));
        resp
    }
}

/// The final status of an exec, as the kubelet words it.
pub fn exit_status(command: &[String], code: i32) -> Value {
    if code == 0 {
        return json!({ "metadata": {}, "status": "Success" });
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            command.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": { "causes": [{ "reason": "ExitCode", "message": code.to_string() }] },
    })
}

/// The status of an exec that could not start.
pub fn spawn_failure(e: &SpawnError) -> Value {
    let cause = format!("error executing command in container: {e}");
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {cause}"),
        "reason": "InternalError",
        "details": { "causes": [{ "message": cause }] },
        "code": 500,
    })
}

pub(super) fn frame(channel: u8, data: &[u8]) -> Message {
    let mut b = BytesMut::with_capacity(data.len() + 1);
    b.put_u8(channel);
    b.put_slice(data);
    Message::Binary(b.freeze())
}

/// The body of `{"Width":w,"Height":h}` on the resize channel.
#[derive(Debug, serde::Deserialize)]
pub(super) struct TerminalSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// Runs one exec over an upgraded connection.
pub async fn run<S>(io: S, protocol: Protocol, container: ContainerRef, options: ExecOptions)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, writer, mut incoming) = accept(io).await;

    let mut process = match process::spawn(&container, &options) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(container = %container.container, error = %e, "exec failed to start");
            let reader = tokio::spawn(async move { while let Some(Ok(_)) = incoming.next().await {} });
            finish(out_tx, writer, reader, spawn_failure(&e)).await;
            return;
        }
    };

    let (exited_tx, exited) = watch::channel(false);
    let mut pumps = Vec::new();
    if let Some(r) = process.stdout.take() {
        pumps.push(tokio::spawn(pump(r, STDOUT, out_tx.clone(), exited.clone())));
    }
    if let Some(r) = process.stderr.take() {
        pumps.push(tokio::spawn(pump(r, STDERR, out_tx.clone(), exited.clone())));
    }
    let stdin = process.stdin.take();
    let terminal = process.terminal.clone();
    let mut reader = tokio::spawn(async move { read_client(&mut incoming, stdin, terminal, protocol).await });

    // Until the process exits and its output is sent, the client leaving
    // ends everything: nobody would read what the process does. The
    // process is reaped last, so that its group is still ours to kill.
    let pid = process.pid;
    let mut exit = tokio::task::spawn_blocking(move || process::wait_exit_unreaped(pid));
    let client_left = tokio::select! {
        _ = &mut exit => false,
        _ = &mut reader => true,
    };
    if !client_left {
        let _ = exited_tx.send(true);
    }
    let client_left = client_left
        || tokio::select! {
            _ = futures_util::future::join_all(pumps.iter_mut()) => false,
            _ = &mut reader => true,
        };
    if client_left {
        process.kill();
        pumps.iter().for_each(|p| p.abort());
        writer.abort();
    }
    let status = process.child.wait().await;
    if client_left {
        return;
    }
    let code = match status {
        Ok(s) => process::exit_code(s),
        Err(e) => {
            tracing::warn!(error = %e, "waiting for an exec'd process failed");
            1
        }
    };
    finish(out_tx, writer, reader, exit_status(&options.command, code)).await;
}

/// Sends the final status, closes the WebSocket and gives the client's
/// close a moment to arrive (the reader ends with it).
/// The server side of an upgraded WebSocket: a queue to its one writer
/// task (output and the final status go through it), the task, and what
/// the client sends.
pub(super) async fn accept<S>(
    io: S,
) -> (mpsc::Sender<Message>, JoinHandle<()>, futures_util::stream::SplitStream<WebSocketStream<S>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    let (mut sink, incoming) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(32);
    let writer = tokio::spawn(async move {
        while let Some(message) = out_rx.recv().await {
            if sink.send(message).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    (out_tx, writer, incoming)
}

pub(super) async fn finish(
    out_tx: mpsc::Sender<Message>,
    writer: JoinHandle<()>,
    mut reader: JoinHandle<()>,
    status: Value,
) {
    let status = serde_json::to_vec(&status).unwrap_or_default();
    let _ = out_tx.send(frame(ERROR, &status)).await;
    // client-go takes anything but a normal closure for an error.
    let _ = out_tx.send(Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() }))).await;
    drop(out_tx);
    let _ = writer.await;
    if tokio::time::timeout(CLOSE_WAIT, &mut reader).await.is_err() {
        reader.abort();
    }
}

/// Copies one output stream into its channel until EOF, or, once the
/// process has exited, until it has been quiet for [`LINGER`].
async fn pump(
    mut reader: Box<dyn AsyncRead + Send + Unpin>,
    channel: u8,
    out: mpsc::Sender<Message>,
    mut exited: watch::Receiver<bool>,
) {
    let mut buf = vec![0; 32 * 1024];
    loop {
        let has_exited = *exited.borrow() || exited.has_changed().is_err();
        let read = if has_exited {
            match tokio::time::timeout(LINGER, reader.read(&mut buf)).await {
                Ok(r) => r,
                Err(_) => return,
            }
        } else {
            tokio::select! {
                r = reader.read(&mut buf) => r,
                _ = exited.changed() => continue,
            }
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if out.send(frame(channel, &buf[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Reads the client's messages until it closes: stdin, resizes, and
/// (v5) the end of stdin.
async fn read_client<R>(
    incoming: &mut R,
    mut stdin: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    terminal: Option<PtyMaster>,
    protocol: Protocol,
) where
    R: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    while let Some(message) = incoming.next().await {
        let data = match message {
            Ok(Message::Binary(data)) => data,
            Ok(Message::Close(_)) | Err(_) => return,
            Ok(_) => continue,
        };
        let Some((&channel, payload)) = data.split_first() else { continue };
        match channel {
            STDIN => {
                if let Some(w) = stdin.as_mut() {
                    if w.write_all(payload).await.is_err() {
                        // The process closed its stdin; drop what follows.
                        stdin = None;
                    }
                }
            }
            RESIZE => {
                if let (Some(t), Ok(size)) = (&terminal, serde_json::from_slice::<TerminalSize>(payload)) {
                    t.resize(size.width, size.height);
                }
            }
            CLOSE if protocol == Protocol::V5 && payload.first() == Some(&STDIN) => {
                if let Some(mut w) = stdin.take() {
                    if terminal.is_some() {
                        // A terminal cannot be half-closed: end of input
                        // is the EOF character, as a user's ^D.
                        let _ = w.write_all(b"\x04").await;
                    } else {
                        let _ = w.shutdown().await;
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v5_is_preferred_and_only_offered_protocols_are_chosen() {
        assert_eq!(Protocol::choose(["v4.channel.k8s.io, v5.channel.k8s.io"]), Some(Protocol::V5));
        assert_eq!(Protocol::choose(["v4.channel.k8s.io", "channel.k8s.io"]), Some(Protocol::V4));
        assert_eq!(Protocol::choose(["base64.channel.k8s.io"]), None);
        assert_eq!(Protocol::choose([]), None);
    }

    #[test]
    fn statuses_read_as_the_kubelet_writes_them() {
        let ok = exit_status(&["true".into()], 0);
        assert_eq!(serde_json::to_string(&ok).expect("json"), r#"{"metadata":{},"status":"Success"}"#);
        let failed = exit_status(&["sh".into(), "-c".into(), "exit 3".into()], 3);
        assert_eq!(
            serde_json::to_string(&failed).expect("json"),
            r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
        );
        let missing = spawn_failure(&SpawnError::NotInPath { program: "nosuch".into() });
        assert_eq!(
            missing["message"],
            "Internal error occurred: error executing command in container: exec: \"nosuch\": executable file not found in $PATH"
        );
    }

    #[test]
    fn handshakes_need_websocket_version_13_a_key_and_a_channel_protocol() {
        let req = |upgrade: &str, protocol: &str| {
            Request::builder()
                .header(UPGRADE, upgrade)
                .header(CONNECTION, "Upgrade")
                .header(SEC_WEBSOCKET_VERSION, "13")
                .header(SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
                .header(SEC_WEBSOCKET_PROTOCOL, protocol)
                .body(())
                .expect("request")
        };
        let h = Handshake::from_request(&req("websocket", "v4.channel.k8s.io,v5.channel.k8s.io")).expect("valid");
        assert_eq!(h.protocol, Protocol::V5);
        let resp = h.response();
        assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
        // RFC 6455's example key and answer.
        assert_eq!(resp.headers()[SEC_WEBSOCKET_ACCEPT], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(resp.headers()[SEC_WEBSOCKET_PROTOCOL], "v5.channel.k8s.io");

        let spdy = Handshake::from_request(&req("SPDY/3.1", "v4.channel.k8s.io")).err().expect("refused");
        assert!(spdy.message.starts_with("exec over SPDY is not supported"), "{}", spdy.message);
        let other = Handshake::from_request(&req("websocket", "base64.channel.k8s.io")).err().expect("refused");
        assert!(other.message.contains("[base64.channel.k8s.io]"), "{}", other.message);
    }
}
