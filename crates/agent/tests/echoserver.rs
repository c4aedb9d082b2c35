//! The `svcnet/echoserver` image against real clients on 127.0.0.1: hyper
//! (HTTP/1.1, h2c), curl, tokio-tungstenite and a plain UDP socket.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use svcnet_agent::echoserver::{EchoConfig, serve};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

const POD: &str = "web-5d8f7-abcde";
const POD_IP: &str = "10.244.1.5";

/// An echoserver on ephemeral 127.0.0.1 ports, stopped when dropped.
struct Server {
    tcp: SocketAddr,
    udp: SocketAddr,
    task: JoinHandle<io::Result<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start() -> Server {
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind TCP");
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
    let (tcp_addr, udp_addr) = (tcp.local_addr().expect("TCP addr"), udp.local_addr().expect("UDP addr"));
    let cfg = EchoConfig {
        pod: POD.into(),
        namespace: "shop".into(),
        node: "node-1".into(),
        pod_ip: POD_IP.into(),
        tcp_ports: vec![tcp_addr.port()],
        udp_ports: vec![udp_addr.port()],
    };
    Server { tcp: tcp_addr, udp: udp_addr, task: tokio::spawn(serve(cfg, vec![tcp], vec![udp])) }
}

/// Fails the test instead of hanging it.
async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future).await.expect("timed out")
}

/// An HTTP/1.1 connection; its driver task is aborted on drop.
struct Http1 {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    local: SocketAddr,
    driver: JoinHandle<()>,
}

impl Drop for Http1 {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

async fn http1(server: &Server) -> Http1 {
    let stream = TcpStream::connect(server.tcp).await.expect("connect");
    let local = stream.local_addr().expect("local addr");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Http1 { sender, local, driver }
}

impl Http1 {
    async fn send(&mut self, request: Request<Full<Bytes>>) -> (Response<()>, Bytes) {
        within(async {
            self.sender.ready().await.expect("connection ready");
            let response = self.sender.send_request(request).await.expect("response");
            let (parts, body) = response.into_parts();
            let body = body.collect().await.expect("body").to_bytes();
            (Response::from_parts(parts, ()), body)
        })
        .await
    }
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path).header("host", "web.shop.svc").body(Full::default()).expect("request")
}

fn text(body: &Bytes) -> &str {
    std::str::from_utf8(body).expect("UTF-8 body")
}

#[tokio::test]
async fn plain_text_answer_starts_with_pod_name_and_ip() {
    let server = start().await;
    let mut client = http1(&server).await;
    let request = Request::get("/hello?x=1")
        .header("host", "web.shop.svc")
        .header("x-test", "yes")
        .body(Full::default())
        .expect("request");
    let (response, body) = client.send(request).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/plain; charset=utf-8");
    let lines: Vec<&str> = text(&body).lines().collect();
    assert_eq!(lines[0], format!("{POD} {POD_IP}"));
    for expected in [
        "namespace: shop".to_string(),
        "node: node-1".to_string(),
        format!("client: {}", client.local),
        "request: GET /hello?x=1 HTTP/1.1".to_string(),
        "host: web.shop.svc".to_string(),
        "  x-test: yes".to_string(),
    ] {
        assert!(lines.contains(&expected.as_str()), "no line {expected:?} in\n{}", text(&body));
    }
}

#[tokio::test]
async fn json_answer_reports_method_path_host_headers_and_client() {
    let server = start().await;
    let mut client = http1(&server).await;
    let request = Request::post("/orders?id=7")
        .header("host", "shop.example")
        .header("accept", "text/html, application/json;q=0.9")
        .header("x-multi", "one")
        .header("x-multi", "two")
        .body(Full::new(Bytes::from_static(b"hello world")))
        .expect("request");
    let (response, body) = client.send(request).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let echo: Value = serde_json::from_slice(&body).expect("JSON body");
    let client_addr = client.local.to_string();
    for (field, expected) in [
        ("pod", json!(POD)),
        ("namespace", json!("shop")),
        ("node", json!("node-1")),
        ("podIP", json!(POD_IP)),
        ("method", json!("POST")),
        ("path", json!("/orders?id=7")),
        ("host", json!("shop.example")),
        ("protocol", json!("HTTP/1.1")),
        ("client", json!(client_addr)),
        ("clientIP", json!("127.0.0.1")),
        ("bodyBytes", json!(11)),
    ] {
        assert_eq!(echo[field], expected, "field {field} of {echo}");
    }
    assert_eq!(echo["headers"]["x-multi"], "one, two", "{echo}");
    assert_eq!(echo["headers"]["host"], "shop.example", "{echo}");
    assert_eq!(echo["headers"]["content-length"], "11", "{echo}");
}

#[tokio::test]
async fn keep_alive_connection_serves_request_after_request() {
    let server = start().await;
    let mut client = http1(&server).await;
    let port = client.local.port().to_string();
    for i in 0..5 {
        let (response, body) = client.send(get(&format!("/n/{i}"))).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = text(&body);
        assert!(body.contains(&format!("request: GET /n/{i} HTTP/1.1")), "{body}");
        assert!(body.contains(&format!("client: 127.0.0.1:{port}\n")), "a new connection answered:\n{body}");
    }
}

#[tokio::test]
async fn http2_prior_knowledge_is_served_on_the_same_port() {
    let server = start().await;
    let stream = TcpStream::connect(server.tcp).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.expect("h2 handshake");
    let driver = tokio::spawn(connection);

    let request = Request::get("http://echo.test/h2?q=2")
        .header("accept", "application/json")
        .body(Full::<Bytes>::default())
        .expect("request");
    let response = within(sender.send_request(request)).await.expect("h2 response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let body = within(response.into_body().collect()).await.expect("body").to_bytes();
    let echo: Value = serde_json::from_slice(&body).expect("JSON body");
    assert_eq!(echo["protocol"], "HTTP/2.0", "{echo}");
    assert_eq!(echo["host"], "echo.test", "{echo}");
    assert_eq!(echo["path"], "/h2?q=2", "{echo}");
    assert_eq!(echo["pod"], POD, "{echo}");
    driver.abort();
}

#[tokio::test]
async fn curl_gets_the_pod_over_http2_prior_knowledge() {
    let server = start().await;
    let url = format!("http://{}/from-curl", server.tcp);
    let output = within(
        tokio::process::Command::new("curl")
            .args(["--silent", "--show-error", "--http2-prior-knowledge", "--max-time", "10", "--write-out"])
            .arg("%{http_version}")
            .arg(&url)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("run curl");
    assert!(output.status.success(), "curl failed: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    assert!(stdout.starts_with(&format!("{POD} {POD_IP}\n")), "{stdout}");
    assert!(stdout.contains("request: GET /from-curl HTTP/2.0\n"), "{stdout}");
    // --write-out's http_version comes after the body.
    assert!(stdout.ends_with("\n2"), "{stdout}");
}

#[tokio::test]
async fn websocket_echoes_text_and_binary_and_answers_pings() {
    let server = start().await;
    let stream = TcpStream::connect(server.tcp).await.expect("connect");
    let url = format!("ws://{}/ws?x=1", server.tcp);
    let (mut socket, response) = within(tokio_tungstenite::client_async(url, stream)).await.expect("ws handshake");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);

    let sent = [
        Message::text("hello, echo"),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::text(""),
        Message::binary(vec![7u8; 100_000]),
    ];
    for message in &sent {
        within(socket.send(message.clone())).await.expect("send");
        let echoed = within(socket.next()).await.expect("an echo").expect("a message");
        assert_eq!(&echoed, message);
    }

    within(socket.send(Message::Ping(Bytes::from_static(b"are you there")))).await.expect("ping");
    let pong = within(socket.next()).await.expect("a pong").expect("a message");
    assert_eq!(pong, Message::Pong(Bytes::from_static(b"are you there")));

    within(socket.close(None)).await.expect("close");
    // The server answers the close; then the stream ends.
    loop {
        match within(socket.next()).await {
            Some(Ok(Message::Close(_))) => {}
            Some(Ok(other)) => panic!("unexpected message after close: {other:?}"),
            Some(Err(e)) => panic!("close handshake failed: {e}"),
            None => break,
        }
    }
}

#[tokio::test]
async fn udp_datagram_is_answered_with_the_pod_name() {
    let server = start().await;
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");
    let mut buf = [0u8; 512];
    for payload in [&b"ping"[..], &b""[..], &[0u8; 1200][..]] {
        client.send_to(payload, server.udp).await.expect("send");
        let (n, from) = within(client.recv_from(&mut buf)).await.expect("reply");
        assert_eq!(from, server.udp);
        assert_eq!(&buf[..n], format!("{POD}\n").as_bytes());
    }
}

#[tokio::test]
async fn status_query_sets_the_response_code() {
    let server = start().await;
    let mut client = http1(&server).await;
    let (response, body) = client.send(get("/fail?status=503")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(text(&body).starts_with(&format!("{POD} {POD_IP}\n")), "{}", text(&body));

    let (response, body) = client.send(get("/?status=204")).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(body.is_empty());

    let (response, body) = client.send(get("/?status=abc")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(text(&body).contains("status"), "{}", text(&body));

    // The connection is still good after all of that.
    let (response, _) = client.send(get("/")).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn delay_query_holds_the_answer_back() {
    let server = start().await;
    let mut client = http1(&server).await;
    let started = Instant::now();
    let (response, _) = client.send(get("/slow?delay_ms=300")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300), "answered after {:?}", started.elapsed());
}

#[tokio::test]
async fn stopping_the_server_closes_listeners_and_connections() {
    let mut server = start().await;
    let mut client = http1(&server).await;
    let (response, _) = client.send(get("/")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let stream = TcpStream::connect(server.tcp).await.expect("connect");
    let (mut socket, _) =
        within(tokio_tungstenite::client_async(format!("ws://{}/", server.tcp), stream)).await.expect("ws handshake");

    server.task.abort();
    let stopped = within(&mut server.task).await;
    assert!(stopped.is_err_and(|e| e.is_cancelled()), "the server stopped by itself");

    // The idle keep-alive connection is closed...
    within(async {
        while !client.sender.is_closed() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // ...the WebSocket ends...
    match within(socket.next()).await {
        None | Some(Err(_)) => {}
        Some(Ok(message)) => panic!("unexpected message from a stopped server: {message:?}"),
    }
    // ...and nothing listens any more.
    let refused = TcpStream::connect(server.tcp).await.expect_err("listener is gone");
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
}
