//! The echoserver's WebSocket: the RFC 6455 handshake over hyper's HTTP/1.1
//! upgrade, then every message sent back as it came.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::Full;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{self, Message};

use super::handler::plain;

/// Whether the request asks for a WebSocket (`Upgrade: websocket`).
pub(super) fn is_upgrade<B>(request: &Request<B>) -> bool {
    has_token(request.headers(), UPGRADE, "websocket")
}

/// Answers a WebSocket request: `101 Switching Protocols` and an echo task
/// on the upgraded connection, or an error status if the handshake is wrong.
pub(super) fn accept<B>(mut request: Request<B>, shutdown: watch::Receiver<()>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET || request.version() != Version::HTTP_11 {
        return plain(StatusCode::BAD_REQUEST, "a WebSocket upgrade must be an HTTP/1.1 GET".into());
    }
    if !has_token(request.headers(), CONNECTION, "upgrade") {
        return plain(StatusCode::BAD_REQUEST, "a WebSocket upgrade needs \"Connection: Upgrade\"".into());
    }
    let Some(key) = request.headers().get(SEC_WEBSOCKET_KEY) else {
        return plain(StatusCode::BAD_REQUEST, "a WebSocket upgrade needs Sec-WebSocket-Key".into());
    };
    let accept_key = derive_accept_key(key.as_bytes());
    if request.headers().get(SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        let mut response = plain(StatusCode::UPGRADE_REQUIRED, "only WebSocket version 13 is spoken".into());
        response.headers_mut().insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return response;
    }
    // An echo speaks every subprotocol; taking the client's first choice
    // keeps clients that insist on one (browsers do) from failing.
    let protocol = first_token(request.headers(), SEC_WEBSOCKET_PROTOCOL);

    // Resolves once hyper has written the 101 below and hands over the
    // connection.
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(echo_until_closed(upgrade, shutdown));

    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    // A base64 string: always a valid header value.
    if let Ok(accept_key) = HeaderValue::from_str(&accept_key) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept_key);
    }
    if let Some(protocol) = protocol {
        headers.insert(SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    response
}

async fn echo_until_closed(upgrade: OnUpgrade, mut shutdown: watch::Receiver<()>) {
    tokio::select! {
        result = echo(upgrade) => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "echoserver: WebSocket ended with an error");
            }
        }
        // Nothing is ever sent: this resolves when the server stops.
        _ = shutdown.changed() => {}
    }
}

async fn echo(upgrade: OnUpgrade) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let upgraded = upgrade.await?;
    let mut socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
    // tungstenite answers pings and the closing handshake on its own while
    // reading; the stream ends once the connection is closed.
    while let Some(message) = socket.next().await {
        match message {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => socket.send(message).await?,
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Whether a comma-separated header (`Connection: keep-alive, Upgrade`)
/// holds `token`, compared without case.
fn has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value.as_bytes().split(|&b| b == b',').any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

fn first_token(headers: &HeaderMap, name: http::header::HeaderName) -> Option<HeaderValue> {
    let value = headers.get(name)?.as_bytes();
    let first = value.split(|&b| b == b',').next()?.trim_ascii();
    if first.is_empty() { None } else { HeaderValue::from_bytes(first).ok() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::get("/ws").version(Version::HTTP_11);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("request")
    }

    #[test]
    fn upgrade_tokens_are_matched_in_lists_without_case() {
        assert!(is_upgrade(&request(&[("upgrade", "WebSocket")])));
        assert!(is_upgrade(&request(&[("upgrade", "h2c, websocket")])));
        assert!(!is_upgrade(&request(&[("upgrade", "h2c")])));
        assert!(!is_upgrade(&request(&[])));
    }

    #[test]
    fn handshake_without_a_key_or_with_an_old_version_is_refused() {
        let (_tx, shutdown) = watch::channel(());
        let no_key = request(&[("upgrade", "websocket"), ("connection", "Upgrade"), ("sec-websocket-version", "13")]);
        assert_eq!(accept(no_key, shutdown.clone()).status(), StatusCode::BAD_REQUEST);
        let old = request(&[
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "8"),
        ]);
        let response = accept(old, shutdown);
        assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(response.headers()[SEC_WEBSOCKET_VERSION], "13");
    }

    #[test]
    fn first_offered_subprotocol_is_picked() {
        let headers = request(&[("sec-websocket-protocol", " chat.v2 , chat.v1")]).headers().clone();
        assert_eq!(first_token(&headers, SEC_WEBSOCKET_PROTOCOL), Some(HeaderValue::from_static("chat.v2")));
        assert_eq!(first_token(&HeaderMap::new(), SEC_WEBSOCKET_PROTOCOL), None);
    }
}
