//! Connections across reconfiguration: upgraded (WebSocket-style)
//! streams and keep-alive connections survive table swaps; h2c both ways;
//! shutdown lets an in-flight request finish.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use svcnet_ingress::testkit::{IngressBuilder, h2c, slice};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::harness::{World, backend, get, h1, proxy, read_reply, request};

/// The world with Service `a`, plus (on odd `n`) an extra Ingress and
/// Service, so consecutive tables differ.
fn world_variant(base: &World, n: usize) -> World {
    let mut w = base.clone();
    if n % 2 == 1 {
        w.ingresses.push(
            IngressBuilder::new("default", &format!("extra-{n}"))
                .path(Some(&format!("extra{n}.example.com")), "/", "Prefix", "a", "80")
                .build(),
        );
    }
    w
}

#[tokio::test]
async fn an_upgraded_connection_survives_100_table_swaps_while_echoing() {
    let a = backend("a").await;
    let mut base = World::default();
    base.service("default", "a", &[&a]);
    base.ingresses
        .push(IngressBuilder::new("default", "ws").path(Some("ws.example.com"), "/", "Prefix", "a", "80").build());
    let p = proxy(base.table()).await;
    let mut s = TcpStream::connect(p.http).await.expect("connect");
    s.write_all(b"GET /chat HTTP/1.1\r\nHost: ws.example.com\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.expect("101 head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");
    for i in 0..100 {
        p.server.publish(world_variant(&base, i).table());
        let msg = format!("message {i}\n");
        s.write_all(msg.as_bytes()).await.expect("write");
        let mut back = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
            .await
            .expect("echo in time")
            .expect("echo");
        assert_eq!(back, msg.as_bytes());
    }
}

#[tokio::test]
async fn a_keep_alive_connection_survives_table_swaps() {
    let a = backend("a").await;
    let mut base = World::default();
    base.service("default", "a", &[&a]);
    base.ingresses
        .push(IngressBuilder::new("default", "web").path(Some("foo.example.com"), "/", "Prefix", "a", "80").build());
    let p = proxy(base.table()).await;
    let mut client = h1(p.http).await;
    for i in 0..100 {
        p.server.publish(world_variant(&base, i).table());
        let r =
            read_reply(client.send_request(request("foo.example.com", &format!("/{i}"), &[])).await.expect("response"))
                .await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.line("uri"), Some(format!("/{i}").as_str()));
    }
    // A swap that removes the route answers 404 on the same connection.
    p.server.publish(World::default().table());
    let r = read_reply(client.send_request(request("foo.example.com", "/", &[])).await.expect("response")).await;
    assert_eq!(r.status, 404);
    assert_eq!(a.hits(), 100);
}

#[tokio::test]
async fn h2c_works_from_the_client_with_prior_knowledge_and_to_h2c_backends() {
    let g = backend("grpc").await;
    let mut w = World::default();
    w.services.push(h2c(crate::harness::http_service("default", "grpc")));
    w.slices.push(slice("default", "grpc", "grpc-1", &[("127.0.0.1", true)], &[("http", g.addr.port())]));
    w.ingresses.push(
        IngressBuilder::new("default", "grpc").path(Some("grpc.example.com"), "/", "Prefix", "grpc", "80").build(),
    );
    let p = proxy(w.table()).await;
    // HTTP/1.1 in, h2c out.
    let r = get(p.http, "grpc.example.com", "/pkg.Service/Method", &[("te", "trailers")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.line("version"), Some("HTTP/2.0"));
    assert_eq!(r.line("host"), Some("grpc.example.com"));
    assert_eq!(r.header_seen("te"), Some("trailers"));
    // h2c in (prior knowledge), h2c out, several streams on one connection.
    let stream = TcpStream::connect(p.http).await.expect("connect");
    let (mut s, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.expect("h2c handshake");
    tokio::spawn(conn);
    for i in 0..3 {
        let req = Request::get(format!("http://grpc.example.com/m/{i}")).body(Empty::<Bytes>::new()).expect("req");
        let r = read_reply(s.send_request(req).await.expect("response")).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.line("version"), Some("HTTP/2.0"));
        assert_eq!(r.line("uri"), Some(format!("/m/{i}").as_str()));
    }
}

#[tokio::test]
async fn shutdown_stops_accepting_and_closes_idle_connections() {
    let a = backend("a").await;
    let mut w = World::default();
    w.service("default", "a", &[&a]);
    w.ingresses.push(IngressBuilder::new("default", "web").path(None, "/", "Prefix", "a", "80").build());
    let p = proxy(w.table()).await;
    let _idle = h1(p.http).await;
    assert_eq!(get(p.http, "x", "/", &[]).await.status, 200);
    let addr = p.http;
    let started = tokio::time::Instant::now();
    p.server.shutdown(Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(4), "idle connections do not hold shutdown up");
    crate::eventually!(5, TcpStream::connect(addr).await.is_err(), "the listener is still open");
}
