//! A scripted plain-HTTP/1.1 server for what a real API server never sends:
//! malformed watch events, events split across chunks, non-Status errors.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use svcnet_client::{Api, Client, Config, Error, WatchEvent, WatchParams};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Serves one connection: reads the request head, then writes `head` and
/// each of `chunks` as an HTTP/1.1 chunk, then ends the body.
async fn serve_once(head: &'static str, chunks: Vec<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let Ok((mut tcp, _)) = listener.accept().await else { return };
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tcp.write_all(head.as_bytes()).await;
        for chunk in chunks {
            let _ = tcp.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes()).await;
            let _ = tcp.flush().await;
            // Separate writes, so the client sees separate frames.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = tcp.write_all(b"0\r\n\r\n").await;
    });
    format!("http://{addr}")
}

const CHUNKED: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";

fn api(server: &str) -> Api<ConfigMap> {
    Api::namespaced(Client::new(Config::new(server).expect("config")).expect("client"), "default")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_skips_malformed_events_and_reassembles_split_ones() {
    let server = serve_once(
        CHUNKED,
        vec![
            "this is not json\n",
            r#"{"type":"ADDED","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"2"}}}"#,
            "\n{\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"bad\"},\"data\":{\"k\":1}}}\n",
            "{\"type\":\"SOMETHING\",\"object\":{}}\n{\"type\":\"MODIFIED\",\"object\":{\"metadata\":",
            "{\"name\":\"a\",\"resourceVersion\":\"3\"}}}\n",
            "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{\"resourceVersion\":\"4\"}}}\n",
            "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"reason\":\"Expired\",\"message\":\"too old\",\"code\":410}}\n",
        ],
    )
    .await;
    let mut watch = api(&server).watch(&WatchParams::default(), "1").await.expect("watch");
    let mut seen = Vec::new();
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(10), watch.next()).await.expect("an event") {
            Some(Ok(event)) => seen.push(event),
            other => break other,
        }
    };
    let rvs: Vec<_> = seen.iter().map(|e| e.resource_version().map(str::to_string)).collect();
    assert!(
        matches!(seen.as_slice(), [WatchEvent::Added(_), WatchEvent::Modified(_), WatchEvent::Bookmark { .. }]),
        "{seen:?}"
    );
    assert_eq!(rvs, [Some("2".into()), Some("3".into()), Some("4".into())]);
    assert!(matches!(end, Some(Err(Error::Gone(ref e))) if e.reason() == "Expired"), "{end:?}");
    assert!(watch.next().await.is_none(), "a Gone watch is over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_page_that_is_not_a_status_keeps_its_http_code() {
    let server = serve_once(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/html\r\ntransfer-encoding: chunked\r\n\r\n",
        vec!["<html>bad gateway</html>"],
    )
    .await;
    let err = api(&server).get("x").await.expect_err("503");
    let status = err.api_error().expect("an API error");
    assert_eq!(
        (status.code(), status.reason(), status.message()),
        (503, "ServiceUnavailable", "<html>bad gateway</html>")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_that_is_not_json_is_a_decode_error() {
    let server = serve_once(CHUNKED, vec!["{\"kind\":\"ConfigMap\",\"metadata\":"]).await;
    let err = api(&server).get("x").await.expect_err("truncated JSON");
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
}
