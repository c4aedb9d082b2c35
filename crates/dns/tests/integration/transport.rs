//! UDP and TCP, EDNS, truncation, malformed packets, metrics.

use std::net::UdpSocket;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{dig, server, server_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_queries_are_answered_like_udp_ones() {
    let s = server().await;
    let d = dig(s.tcp_addr(), &["+tcp", "web.default.svc.cluster.local"]).await;
    assert_eq!(d.answer, ["web.default.svc.cluster.local. 5 IN A 10.96.0.10"], "{}", d.raw);
    let d = dig(s.tcp_addr(), &["+tcp", "missing.default.svc.cluster.local"]).await;
    assert_eq!(d.status, "NXDOMAIN");
    assert_eq!(d.authority.len(), 1);
    s.shutdown().await;
}

/// A DNS query for `name` type A, without EDNS.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = vec![(id >> 8) as u8, id as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tcp_connection_carries_several_queries_in_order() {
    let s = server().await;
    let mut conn = tokio::net::TcpStream::connect(s.tcp_addr()).await.expect("test setup");
    let mut both = Vec::new();
    for (id, name) in [(1u16, "web.default.svc.cluster.local"), (2, "missing.default.svc.cluster.local")] {
        let q = query(id, name);
        both.extend_from_slice(&(q.len() as u16).to_be_bytes());
        both.extend_from_slice(&q);
    }
    conn.write_all(&both).await.expect("test setup");
    for (id, rcode) in [(1u16, 0u8), (2, 3)] {
        let mut len = [0u8; 2];
        conn.read_exact(&mut len).await.expect("test setup");
        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
        conn.read_exact(&mut msg).await.expect("test setup");
        assert_eq!(u16::from_be_bytes([msg[0], msg[1]]), id);
        assert_eq!(msg[3] & 0xf, rcode);
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edns_sizes_are_honoured_and_answered_with_our_opt_record() {
    let s = server().await;
    let a = s.udp_addr();
    // 40 addresses: about 700 bytes.
    let d = dig(a, &["+bufsize=1232", "mid.default.svc.cluster.local"]).await;
    assert!(!d.has_flag("tc"), "{}", d.raw);
    assert_eq!(d.answer.len(), 40, "{}", d.raw);
    assert_eq!(d.edns_udp, Some(1232), "{}", d.raw);
    let d = dig(a, &["+bufsize=600", "+ignore", "mid.default.svc.cluster.local"]).await;
    assert!(d.has_flag("tc"), "a client's smaller size is honoured: {}", d.raw);
    let d = dig(a, &["+noedns", "+ignore", "mid.default.svc.cluster.local"]).await;
    assert!(d.has_flag("tc"), "512 bytes without EDNS: {}", d.raw);
    assert_eq!(d.edns_udp, None, "no OPT for a query without one: {}", d.raw);
    // A client offering more than we send gets at most our 1232.
    let d = dig(a, &["+bufsize=4096", "+ignore", "big.default.svc.cluster.local"]).await;
    assert!(d.has_flag("tc"), "{}", d.raw);
    assert!(d.answer.is_empty());
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_udp_answers_make_dig_retry_over_tcp() {
    let s = server().await;
    let d = dig(s.udp_addr(), &["big.default.svc.cluster.local"]).await;
    assert!(d.raw.contains("Truncated, retrying in TCP mode"), "{}", d.raw);
    assert_eq!(d.answer.len(), 100, "{}", d.raw);
    assert!(!d.has_flag("tc"));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_get_formerr_and_never_stop_the_server() {
    let s = server().await;
    let sock = UdpSocket::bind("127.0.0.1:0").expect("test setup");
    sock.set_read_timeout(Some(Duration::from_millis(500))).expect("test setup");
    sock.connect(s.udp_addr()).expect("test setup");
    // A header promising a question, then garbage.
    sock.send(&[0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x3f, 0xff, 0xfe, 0x01, 0x99])
        .expect("test setup");
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("a FORMERR answer");
    assert_eq!(&buf[..2], &[0xab, 0xcd]);
    assert_eq!(buf[2] & 0x80, 0x80, "a response");
    assert_eq!(buf[3] & 0xf, 1, "FORMERR");
    assert_eq!(n, 12);
    // A compression loop in the question.
    sock.send(&[0, 7, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]).expect("test setup");
    let _ = sock.recv(&mut buf).expect("an answer");
    assert_eq!(buf[3] & 0xf, 1, "FORMERR");
    // Runts get nothing.
    sock.send(&[1, 2, 3]).expect("test setup");
    assert!(sock.recv(&mut buf).is_err(), "no answer to a runt");
    // A storm of random bytes, then a real query.
    let mut x: u32 = 12345;
    for _ in 0..2000 {
        let len = (x % 100) as usize;
        let packet: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let _ = sock.send(&packet);
    }
    let d = dig(s.udp_addr(), &["web.default.svc.cluster.local"]).await;
    assert_eq!(d.answer, ["web.default.svc.cluster.local. 5 IN A 10.96.0.10"], "{}", d.raw);
    s.shutdown().await;
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut c = tokio::net::TcpStream::connect(addr).await.expect("test setup");
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.expect("test setup");
    let mut body = String::new();
    c.read_to_string(&mut body).await.expect("test setup");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_under_coredns_names() {
    let config = svcnet_dns::DnsConfig {
        metrics: Some("127.0.0.1:0".parse().expect("test setup")),
        ..svcnet_dns::DnsConfig::local()
    };
    let s = server_with(config).await;
    dig(s.udp_addr(), &["web.default.svc.cluster.local"]).await;
    dig(s.udp_addr(), &["missing.default.svc.cluster.local"]).await;
    dig(s.tcp_addr(), &["+tcp", "web.default.svc.cluster.local", "AAAA"]).await;
    let addr = s.metrics_addr().expect("test setup");
    let text = http_get(addr, "/metrics").await;
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    let zone = format!("server=\"dns://{}\",zone=\"cluster.local.\"", s.udp_addr());
    assert!(
        text.contains(&format!("coredns_dns_requests_total{{{zone},proto=\"udp\",family=\"1\",type=\"A\"}} 2")),
        "{text}"
    );
    assert!(
        text.contains(&format!("coredns_dns_requests_total{{{zone},proto=\"tcp\",family=\"1\",type=\"AAAA\"}} 1")),
        "{text}"
    );
    assert!(text.contains(&format!("coredns_dns_responses_total{{{zone},rcode=\"NXDOMAIN\"}} 1")), "{text}");
    assert!(text.contains("coredns_dns_request_duration_seconds_bucket{"), "{text}");
    assert!(text.contains("coredns_cache_misses_total"), "{text}");
    assert!(
        text.contains(
            "coredns_kubernetes_dns_programming_duration_seconds_bucket{service_kind=\"headless_with_selector\""
        ),
        "{text}"
    );
    assert!(http_get(addr, "/ready").await.starts_with("HTTP/1.1 200"));
    assert!(http_get(addr, "/health").await.starts_with("HTTP/1.1 200"));
    assert!(http_get(addr, "/nope").await.starts_with("HTTP/1.1 404"));
    s.shutdown().await;
}
