//! One HTTP request to the echoserver: WebSocket upgrade or echo, after the
//! `status`/`delay_ms` query hooks.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::sync::watch;

use super::EchoConfig;
use super::render::Echo;
use super::websocket;

/// The longest `delay_ms` honoured.
const MAX_DELAY: Duration = Duration::from_millis(30_000);

/// What every request of one server shares.
pub(super) struct State {
    pub(super) cfg: EchoConfig,
    /// Closes when the server stops; upgraded WebSockets end with it.
    pub(super) shutdown: watch::Receiver<()>,
}

impl State {
    pub(super) fn new(cfg: EchoConfig, shutdown: watch::Receiver<()>) -> State {
        State { cfg, shutdown }
    }
}

/// Spawns HTTP/2 streams on Tokio, ending them when the server stops.
#[derive(Clone)]
pub(super) struct Executor {
    shutdown: watch::Receiver<()>,
}

impl Executor {
    pub(super) fn new(shutdown: watch::Receiver<()>) -> Executor {
        Executor { shutdown }
    }
}

impl<F> hyper::rt::Executor<F> for Executor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = future => {}
                // Nothing is ever sent: this resolves when the sender drops.
                _ = shutdown.changed() => {}
            }
        });
    }
}

/// Answers one request; never fails (errors are answers too).
pub(super) async fn answer(request: Request<Incoming>, client: SocketAddr, state: &State) -> Response<Full<Bytes>> {
    if websocket::is_upgrade(&request) {
        return websocket::accept(request, state.shutdown.clone());
    }
    let hooks = match Hooks::parse(request.uri().query()) {
        Ok(hooks) => hooks,
        Err(message) => return plain(StatusCode::BAD_REQUEST, message),
    };
    let (parts, mut body) = request.into_parts();
    let mut body_bytes = 0u64;
    // Read and drop the body, keeping only its size. An error means the
    // client went away; the answer below then goes nowhere, harmlessly.
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            body_bytes += data.len() as u64;
        }
    }
    if let Some(delay) = hooks.delay {
        tokio::time::sleep(delay).await;
    }

    let host = match parts.headers.get(HOST) {
        Some(host) => String::from_utf8_lossy(host.as_bytes()),
        None => parts.uri.authority().map(|authority| authority.as_str()).unwrap_or_default().into(),
    };
    let echo = Echo {
        cfg: &state.cfg,
        method: parts.method.as_str(),
        path: parts.uri.path_and_query().map(|path| path.as_str()).unwrap_or("/"),
        version: parts.version,
        host: &host,
        headers: &parts.headers,
        client,
        body_bytes,
    };
    let (content_type, body) = if wants_json(&parts.headers) {
        (HeaderValue::from_static("application/json"), echo.json())
    } else {
        (HeaderValue::from_static("text/plain; charset=utf-8"), echo.text())
    };
    let status = hooks.status.unwrap_or(StatusCode::OK);
    // These statuses have no body on the wire; say so rather than have the
    // framing disagree with the content.
    let body = if matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED) { Bytes::new() } else { body };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}

fn wants_json(headers: &http::HeaderMap) -> bool {
    headers.get_all(ACCEPT).iter().any(|accept| {
        accept.as_bytes().windows(b"application/json".len()).any(|w| w.eq_ignore_ascii_case(b"application/json"))
    })
}

/// A short plain-text answer, for requests the echoserver refuses.
pub(super) fn plain(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message + "\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// The query parameters that steer an answer.
#[derive(Debug, Default, PartialEq, Eq)]
struct Hooks {
    status: Option<StatusCode>,
    delay: Option<Duration>,
}

impl Hooks {
    fn parse(query: Option<&str>) -> Result<Hooks, String> {
        let mut hooks = Hooks::default();
        for pair in query.unwrap_or("").split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "status" => {
                    let status = value
                        .parse::<u16>()
                        .ok()
                        .filter(|code| (200..=599).contains(code))
                        .and_then(|code| StatusCode::from_u16(code).ok())
                        .ok_or_else(|| format!("status={value:?}: expected a status code from 200 to 599"))?;
                    hooks.status = Some(status);
                }
                "delay_ms" => {
                    let ms = value
                        .parse::<u64>()
                        .map_err(|_| format!("delay_ms={value:?}: expected a number of milliseconds"))?;
                    hooks.delay = Some(Duration::from_millis(ms).min(MAX_DELAY));
                }
                _ => {}
            }
        }
        Ok(hooks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_without_hooks_changes_nothing() {
        assert_eq!(Hooks::parse(None), Ok(Hooks::default()));
        assert_eq!(Hooks::parse(Some("a=1&b&&status_code=500")), Ok(Hooks::default()));
    }

    #[test]
    fn status_and_delay_hooks_are_read_and_delay_is_capped() {
        let hooks = Hooks::parse(Some("x=1&status=503&delay_ms=250")).expect("valid hooks");
        assert_eq!(
            hooks,
            Hooks { status: Some(StatusCode::SERVICE_UNAVAILABLE), delay: Some(Duration::from_millis(250)) }
        );
        let hooks = Hooks::parse(Some("delay_ms=99999999")).expect("valid hooks");
        assert_eq!(hooks.delay, Some(MAX_DELAY));
    }

    #[test]
    fn hook_values_out_of_range_are_refused() {
        for query in ["status=", "status=abc", "status=101", "status=600", "status=99999", "delay_ms=-1", "delay_ms=x"]
        {
            assert!(Hooks::parse(Some(query)).is_err(), "{query}");
        }
    }

    #[test]
    fn json_is_chosen_when_any_accept_header_mentions_it() {
        let mut headers = http::HeaderMap::new();
        assert!(!wants_json(&headers));
        headers.append(ACCEPT, HeaderValue::from_static("text/html"));
        assert!(!wants_json(&headers));
        headers.append(ACCEPT, HeaderValue::from_static("text/plain;q=0.5, Application/JSON"));
        assert!(wants_json(&headers));
    }
}
