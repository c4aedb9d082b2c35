//! The HTTP/1.1 fast path: one task per client connection parses request
//! heads itself (`httparse`), routes them, and forwards them on pooled
//! upstream connections with a small client codec of its own, in the same
//! task: no per-request task, channel or boxed body. hyper (`proxy.rs`)
//! still serves everything this path hands off (see [`prepare`]):
//! HTTP/1.0, upgrades, `Expect`, non-origin-form targets, transfer
//! codings other than plain `chunked`, and routes to h2c backends. A
//! connection is handed off at a request boundary, with the bytes already
//! read, and stays with hyper from then on.
//!
//! Framing is strict (RFC 9112 6.3): a request with both `Content-Length`
//! and `Transfer-Encoding`, differing or malformed lengths, more than one
//! `Host`, or a malformed chunk is refused with 400 and the connection
//! closed. Bodies are streamed: a length is passed on as it is, chunked
//! bodies are decoded and re-encoded (chunk extensions dropped, trailers
//! kept), a response delimited by the backend closing is sent to the
//! client chunked.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf as _, BytesMut};
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::annotations::BackendProtocol;
use crate::balance;
use crate::paths::request_host;
use crate::pool::{ConnectError, InFlight};
use crate::proxy::{ConnInfo, request_id};
use crate::server::{HEADER_READ_TIMEOUT, Shared};
use crate::table::Route;

/// A request or response head larger than this is refused (431 / 502).
const MAX_HEAD: usize = 64 * 1024;
/// Header fields per head (hyper's default too).
const MAX_HEADERS: usize = 100;
/// A chunk-size line (with extensions) longer than this is refused.
const MAX_CHUNK_LINE: usize = 4096;
/// Trailer section size limit.
const MAX_TRAILERS: usize = 64 * 1024;
/// How much is read at a time.
const READ_SIZE: usize = 16 * 1024;

/// How a connection left the fast path.
pub(crate) enum Outcome<S> {
    /// Done with (closed, or to be closed by dropping it).
    Closed,
    /// hyper takes over, reading `buffered` first.
    HandOff(S, BytesMut),
}

/// Buffers kept for the life of a client connection.
struct Bufs {
    /// What goes to the client next (response head, first body bytes).
    out: Vec<u8>,
    /// The request head for the backend (kept for a retry).
    up_head: Vec<u8>,
    /// The request head and first body bytes, or re-encoded chunks.
    scratch: Vec<u8>,
    /// What the backend sent.
    ubuf: BytesMut,
}

/// A message body's length as its head declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyLen {
    None,
    Length(u64),
    Chunked,
}

/// What to do with a request head.
enum Step {
    NeedMore,
    HandOff,
    /// Refuse it and close the connection (not counted per route).
    Bad(StatusCode, &'static str),
    /// Answered here (404, 308, 503): the response is in `Bufs::out`.
    /// `consumed`: head (and body, when it is all buffered) to drop.
    Local {
        status: StatusCode,
        route: Option<Arc<Route>>,
        consumed: usize,
        close: bool,
    },
    Proxy(Exchange),
}

/// A request to forward; its head for the backend is in `Bufs::up_head`.
struct Exchange {
    route: Arc<Route>,
    head_len: usize,
    body: BodyLen,
    /// The client asked to close after this request.
    close: bool,
    /// A HEAD request: the response has no body whatever it says.
    head: bool,
    /// Idempotent and bodiless: may be sent again after a failure.
    replayable: bool,
    /// The endpoint the affinity cookie names.
    sticky: Option<usize>,
}

/// Serves HTTP/1.1 requests on `io` (`buffered`: bytes already read from
/// it) until the client closes, an error closes it, or a request is
/// handed to hyper.
pub(crate) async fn serve<S>(mut io: S, mut cbuf: BytesMut, info: &ConnInfo, shared: &Arc<Shared>) -> Outcome<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut shutdown = shared.shutdown.subscribe();
    let mut b = Bufs {
        out: Vec::with_capacity(4096),
        up_head: Vec::with_capacity(2048),
        scratch: Vec::new(),
        ubuf: BytesMut::with_capacity(READ_SIZE),
    };
    loop {
        let step = loop {
            if !cbuf.is_empty() {
                let closing = *shutdown.borrow();
                match prepare(&cbuf, info, shared, &mut b, closing) {
                    Step::NeedMore if cbuf.len() >= MAX_HEAD => {
                        break Step::Bad(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large");
                    }
                    Step::NeedMore => {}
                    step => break step,
                }
            }
            if cbuf.capacity() - cbuf.len() < 1024 {
                cbuf.reserve(READ_SIZE);
            }
            let idle = cbuf.is_empty();
            let read = tokio::time::timeout(HEADER_READ_TIMEOUT, io.read_buf(&mut cbuf));
            // Between requests, a shutdown closes the connection.
            let r = if idle {
                tokio::select! {
                    biased;
                    r = read => Some(r),
                    _ = shutdown.wait_for(|s| *s) => None,
                }
            } else {
                Some(read.await)
            };
            match r {
                Some(Ok(Ok(n))) if n > 0 => {}
                Some(_) => return Outcome::Closed,
                None => return close(io, info).await,
            }
        };
        let started = Instant::now();
        let keep = match step {
            Step::NeedMore => false,
            Step::HandOff => return Outcome::HandOff(io, cbuf),
            Step::Bad(status, why) => {
                local(
                    &mut b.out,
                    status,
                    &format!("{} {}: {why}\n", status.as_u16(), reason(status)),
                    None,
                    true,
                    false,
                );
                let _ = write_client(&mut io, &b.out).await;
                return close(io, info).await;
            }
            Step::Local { status, route, consumed, close } => {
                cbuf.advance(consumed);
                if write_client(&mut io, &b.out).await.is_err() {
                    return Outcome::Closed;
                }
                shared.metrics.route(route.as_deref()).observe(status.as_u16(), started.elapsed());
                !close
            }
            Step::Proxy(ex) => {
                cbuf.advance(ex.head_len);
                exchange(&mut io, &mut cbuf, ex, &mut b, shared, &shutdown, started).await
            }
        };
        if !keep || *shutdown.borrow() {
            return close(io, info).await;
        }
    }
}

/// Closes a connection we are done with: TLS says `close_notify` first.
async fn close<S: AsyncWrite + Unpin>(mut io: S, info: &ConnInfo) -> Outcome<S> {
    if info.tls {
        let _ = tokio::time::timeout(Duration::from_secs(1), io.shutdown()).await;
    }
    Outcome::Closed
}

/// Which header a field is, as far as proxying cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    Upgrade,
    Expect,
    Te,
    /// Other hop-by-hop fields: never forwarded.
    HopByHop,
    XForwardedFor,
    /// `X-Real-IP`, `X-Forwarded-Proto`, `-Port`, `-Host`: ours replace
    /// the client's.
    Replaced,
    XRequestId,
    Cookie,
    Date,
    Other,
}

fn classify(name: &str) -> Field {
    let n = name.as_bytes();
    let is = |s: &str| n.eq_ignore_ascii_case(s.as_bytes());
    match n.len() {
        2 if is("te") => Field::Te,
        4 if is("host") => Field::Host,
        4 if is("date") => Field::Date,
        6 if is("cookie") => Field::Cookie,
        6 if is("expect") => Field::Expect,
        7 if is("upgrade") => Field::Upgrade,
        7 if is("trailer") => Field::HopByHop,
        9 if is("x-real-ip") => Field::Replaced,
        10 if is("connection") => Field::Connection,
        10 if is("keep-alive") => Field::HopByHop,
        12 if is("x-request-id") => Field::XRequestId,
        14 if is("content-length") => Field::ContentLength,
        15 if is("x-forwarded-for") => Field::XForwardedFor,
        16 if is("proxy-connection") => Field::HopByHop,
        16 if is("x-forwarded-port") || is("x-forwarded-host") => Field::Replaced,
        17 if is("transfer-encoding") => Field::TransferEncoding,
        17 if is("x-forwarded-proto") => Field::Replaced,
        18 if is("proxy-authenticate") => Field::HopByHop,
        19 if is("proxy-authorization") => Field::HopByHop,
        _ => Field::Other,
    }
}

/// Comma-separated tokens of a field value, trimmed, empty ones skipped.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|t| !t.is_empty())
}

/// What the `Connection` fields say.
#[derive(Default)]
struct ConnectionTokens<'a> {
    close: bool,
    upgrade: bool,
    /// Other fields it names (hop-by-hop for this message).
    named: Vec<&'a [u8]>,
}

impl<'a> ConnectionTokens<'a> {
    fn add(&mut self, value: &'a [u8]) {
        for t in tokens(value) {
            if t.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if t.eq_ignore_ascii_case(b"upgrade") {
                self.upgrade = true;
            } else if !t.eq_ignore_ascii_case(b"keep-alive") && !t.eq_ignore_ascii_case(b"te") {
                self.named.push(t);
            }
        }
    }

    fn names(&self, field: &str) -> bool {
        self.named.iter().any(|n| n.eq_ignore_ascii_case(field.as_bytes()))
    }
}

/// A `Content-Length` value: 1 to 19 digits, nothing else.
fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Whether a value is visible ASCII (what `HeaderValue::to_str` accepts).
fn visible(v: &[u8]) -> Option<&str> {
    if v.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) { std::str::from_utf8(v).ok() } else { None }
}

/// Parses the request head at the start of `buf` and decides what to do
/// with it; for a request to forward, writes the backend's head.
fn prepare(buf: &[u8], info: &ConnInfo, shared: &Shared, b: &mut Bufs, closing: bool) -> Step {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Step::NeedMore,
        Err(httparse::Error::TooManyHeaders) => {
            return Step::Bad(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "too many header fields");
        }
        Err(_) => return Step::Bad(StatusCode::BAD_REQUEST, "malformed request head"),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Step::Bad(StatusCode::BAD_REQUEST, "malformed request line");
    };
    // HTTP/1.0 (keep-alive rules of its own), CONNECT, and absolute- or
    // asterisk-form targets: hyper's.
    if version != 1 || !target.starts_with('/') || method == "CONNECT" {
        return Step::HandOff;
    }
    let headers = req.headers;

    let mut host: Option<&[u8]> = None;
    let mut length: Option<u64> = None;
    let mut te: Option<&[u8]> = None;
    let mut conn = ConnectionTokens::default();
    let mut upgrade = false;
    let mut trailers = false;
    let mut xff = false;
    let mut has_request_id = false;
    for h in headers.iter() {
        match classify(h.name) {
            Field::Host if host.is_some() => {
                return Step::Bad(StatusCode::BAD_REQUEST, "more than one Host field");
            }
            Field::Host => host = Some(h.value.trim_ascii()),
            Field::ContentLength => match (parse_length(h.value), length) {
                (None, _) => return Step::Bad(StatusCode::BAD_REQUEST, "invalid Content-Length"),
                (Some(n), Some(m)) if n != m => {
                    return Step::Bad(StatusCode::BAD_REQUEST, "conflicting Content-Length");
                }
                (n, _) => length = n,
            },
            // Several fields: hyper's (it combines them).
            Field::TransferEncoding if te.is_some() => te = Some(b""),
            Field::TransferEncoding => te = Some(h.value),
            Field::Connection => conn.add(h.value),
            Field::Upgrade => upgrade = true,
            // 100-continue (and any other expectation): hyper's.
            Field::Expect => return Step::HandOff,
            Field::Te => {
                trailers |= tokens(h.value).any(|t| {
                    t.split(|&b| b == b';').next().is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"trailers"))
                });
            }
            Field::XForwardedFor => xff = true,
            Field::XRequestId => has_request_id = true,
            _ => {}
        }
    }
    let body = match (te, length) {
        (Some(_), Some(_)) => {
            return Step::Bad(StatusCode::BAD_REQUEST, "both Content-Length and Transfer-Encoding");
        }
        (Some(te), None) if te.trim_ascii().eq_ignore_ascii_case(b"chunked") => BodyLen::Chunked,
        // Other codings (`gzip, chunked`; a final coding that is not
        // chunked, which hyper refuses): hyper's.
        (Some(_), None) => return Step::HandOff,
        (None, Some(0)) | (None, None) => BodyLen::None,
        (None, Some(n)) => BodyLen::Length(n),
    };
    if upgrade && conn.upgrade {
        return Step::HandOff;
    }
    let close = conn.close || closing;
    let head = method == "HEAD";

    let authority = host.and_then(visible);
    let host_name = authority.map_or(Cow::Borrowed(""), request_host);
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let Some(route) = shared.table.lookup(&host_name, path) else {
        let msg = format!(
            "404 Not Found: no Ingress rule matches host {host_name:?} and path {path:?}, and there is no default backend\n"
        );
        return local_answer(
            b,
            StatusCode::NOT_FOUND,
            &msg,
            None,
            None,
            head,
            close,
            body,
            buf.len() - head_len,
            head_len,
        );
    };
    if route.ssl_redirect && !info.tls {
        let location = format!("https://{host_name}{target}");
        let msg = format!("308 Permanent Redirect: {location}\n");
        let status = StatusCode::PERMANENT_REDIRECT;
        return local_answer(
            b,
            status,
            &msg,
            Some(&location),
            Some(route),
            head,
            close,
            body,
            buf.len() - head_len,
            head_len,
        );
    }
    let upstream = &route.upstream;
    if upstream.protocol == BackendProtocol::H2c {
        return Step::HandOff;
    }
    if upstream.endpoints.is_empty() {
        let why = upstream.unavailable.as_deref().unwrap_or("no ready endpoints");
        let msg = format!("503 Service Unavailable: {why}\n");
        let status = StatusCode::SERVICE_UNAVAILABLE;
        return local_answer(b, status, &msg, None, Some(route), head, close, body, buf.len() - head_len, head_len);
    }

    // The backend's head: the original method, target and Host; one hop's
    // fields replaced by ours.
    let out = &mut b.up_head;
    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut sticky = None;
    let affinity = route.settings.affinity.as_ref();
    for h in headers.iter() {
        let field = classify(h.name);
        let kept = match field {
            Field::Host => true,
            Field::Other | Field::Cookie | Field::XRequestId | Field::Date => {
                conn.named.is_empty() || !conn.names(h.name)
            }
            _ => false,
        };
        if !kept {
            if field == Field::XRequestId {
                has_request_id = false;
            }
            continue;
        }
        if field == Field::Cookie && sticky.is_none() {
            if let Some(aff) = affinity {
                sticky = cookie(h.value, &aff.cookie_name).and_then(|c| balance::by_cookie(upstream, c));
            }
        }
        push_field(out, h.name.as_bytes(), h.value);
    }
    match body {
        BodyLen::None if length == Some(0) => push_field(out, b"content-length", b"0"),
        BodyLen::None => {}
        BodyLen::Length(n) => push_field(out, b"content-length", itoa(n, &mut [0; 20])),
        BodyLen::Chunked => push_field(out, b"transfer-encoding", b"chunked"),
    }
    if trailers {
        push_field(out, b"te", b"trailers");
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    if xff {
        for h in headers.iter().filter(|h| classify(h.name) == Field::XForwardedFor) {
            let v = h.value.trim_ascii();
            if !v.is_empty() {
                out.extend_from_slice(v);
                out.extend_from_slice(b", ");
            }
        }
    }
    out.extend_from_slice(info.ip.as_bytes());
    out.extend_from_slice(b"\r\n");
    push_field(out, b"x-real-ip", info.ip.as_bytes());
    push_field(out, b"x-forwarded-proto", if info.tls { b"https" } else { b"http" });
    push_field(out, b"x-forwarded-port", info.port.as_bytes());
    if let Some(a) = host {
        push_field(out, b"x-forwarded-host", a);
    }
    if !has_request_id {
        push_field(out, b"x-request-id", request_id().as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    let replayable = matches!(method, "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE") && body == BodyLen::None;
    Step::Proxy(Exchange { route, head_len, body, close, head, replayable, sticky })
}

fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The value of cookie `name` in one `Cookie` field.
fn cookie<'a>(value: &'a [u8], name: &str) -> Option<&'a str> {
    std::str::from_utf8(value)
        .ok()?
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// Decimal digits of `n`, in `buf`.
fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// Lower-case hex digits of `n`, in `buf`.
fn hex(mut n: u64, buf: &mut [u8; 16]) -> &[u8] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = DIGITS[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            return &buf[i..];
        }
    }
}

fn reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("")
}

/// A response of ours (404, 308, 503, errors) in `out`.
fn local(out: &mut Vec<u8>, status: StatusCode, body: &str, location: Option<&str>, close: bool, head: bool) {
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\ncontent-type: text/plain; charset=utf-8\r\n");
    push_field(out, b"content-length", itoa(body.len() as u64, &mut [0; 20]));
    if let Some(l) = location {
        push_field(out, b"location", l.as_bytes());
    }
    push_date(out);
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head {
        out.extend_from_slice(body.as_bytes());
    }
}

/// A local answer to a parsed request; its body (if any) is skipped when
/// it is all buffered, else the connection closes after the answer.
#[allow(clippy::too_many_arguments)]
fn local_answer(
    b: &mut Bufs,
    status: StatusCode,
    msg: &str,
    location: Option<&str>,
    route: Option<Arc<Route>>,
    head: bool,
    close: bool,
    body: BodyLen,
    buffered_body: usize,
    head_len: usize,
) -> Step {
    let (consumed, close) = match body {
        BodyLen::None => (head_len, close),
        BodyLen::Length(n) if n <= buffered_body as u64 => (head_len + n as usize, close),
        _ => (head_len, true),
    };
    local(&mut b.out, status, msg, location, close, head);
    Step::Local { status, route, consumed, close }
}

thread_local! {
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

/// `date: <IMF-fixdate>` (as hyper's server adds), formatted once a second
/// per thread.
fn push_date(out: &mut Vec<u8>) {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != secs {
            d.1 = imf_fixdate(secs);
            d.0 = secs;
        }
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(&d.1);
        out.extend_from_slice(b"\r\n");
    });
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for seconds since the epoch.
fn imf_fixdate(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    let two = |o: &mut [u8], v: i64| {
        o[0] = b'0' + (v / 10) as u8;
        o[1] = b'0' + (v % 10) as u8;
    };
    two(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    two(&mut out[12..14], year / 100);
    two(&mut out[14..16], year % 100);
    two(&mut out[17..19], (rem / 3600) as i64);
    two(&mut out[20..22], (rem / 60 % 60) as i64);
    two(&mut out[23..25], (rem % 60) as i64);
    out
}

async fn write_client<S: AsyncWrite + Unpin>(io: &mut S, data: &[u8]) -> std::io::Result<()> {
    io.write_all(data).await?;
    io.flush().await
}

/// Why sending a request to the backend stopped.
enum SendError {
    /// Nothing reached the backend (its first write failed).
    Unsent(String),
    /// The backend broke the exchange after taking some of it.
    Backend(String),
    /// The backend took nothing for the send timeout.
    BackendStall,
    /// The client sent no body data for the send timeout.
    ClientStall,
    /// The client closed or broke its connection mid-body.
    ClientGone,
    /// The client's chunked body is malformed.
    BadChunk,
}

/// Writes all of `data` to the backend, each write within `timeout`.
/// `first`: a failure before any byte was taken is [`SendError::Unsent`].
async fn write_up(up: &mut TcpStream, data: &[u8], timeout: Duration, first: bool) -> Result<(), SendError> {
    let mut off = 0;
    while off < data.len() {
        let unsent = first && off == 0;
        match tokio::time::timeout(timeout, up.write(&data[off..])).await {
            Err(_) => return Err(SendError::BackendStall),
            Ok(Ok(0)) => {
                let e = "the backend closed the connection".to_string();
                return Err(if unsent { SendError::Unsent(e) } else { SendError::Backend(e) });
            }
            Ok(Ok(n)) => off += n,
            Ok(Err(e)) => {
                let e = format!("writing to the backend: {e}");
                return Err(if unsent { SendError::Unsent(e) } else { SendError::Backend(e) });
            }
        }
    }
    Ok(())
}

/// Reads more of the request body from the client.
async fn read_client<S: AsyncRead + Unpin>(
    io: &mut S,
    cbuf: &mut BytesMut,
    timeout: Duration,
) -> Result<(), SendError> {
    if cbuf.capacity() - cbuf.len() < 1024 {
        cbuf.reserve(READ_SIZE);
    }
    match tokio::time::timeout(timeout, io.read_buf(cbuf)).await {
        Err(_) => Err(SendError::ClientStall),
        Ok(Ok(n)) if n > 0 => Ok(()),
        Ok(_) => Err(SendError::ClientGone),
    }
}

/// Sends the request head and body to the backend. The body streams from
/// the client; what of it is already buffered goes with the head.
async fn send<S: AsyncRead + Unpin>(
    up: &mut TcpStream,
    client: &mut S,
    cbuf: &mut BytesMut,
    head: &[u8],
    body: BodyLen,
    scratch: &mut Vec<u8>,
    timeout: Duration,
) -> Result<(), SendError> {
    match body {
        BodyLen::None => write_up(up, head, timeout, true).await,
        BodyLen::Length(n) => {
            let k = cbuf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            if k == 0 {
                write_up(up, head, timeout, true).await?;
            } else {
                scratch.clear();
                scratch.extend_from_slice(head);
                scratch.extend_from_slice(&cbuf[..k]);
                write_up(up, scratch, timeout, true).await?;
                cbuf.advance(k);
            }
            let mut left = n - k as u64;
            while left > 0 {
                if cbuf.is_empty() {
                    read_client(client, cbuf, timeout).await?;
                }
                let k = cbuf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                write_up(up, &cbuf[..k], timeout, false).await?;
                cbuf.advance(k);
                left -= k as u64;
            }
            Ok(())
        }
        BodyLen::Chunked => {
            let mut decoder = Chunked::default();
            scratch.clear();
            scratch.extend_from_slice(head);
            let mut first = true;
            loop {
                let done = decoder.decode(cbuf, scratch).map_err(|()| SendError::BadChunk)?;
                if !scratch.is_empty() {
                    // What was decoded is gone from `cbuf`: never "unsent".
                    write_up(up, scratch, timeout, false).await.map_err(|e| match e {
                        SendError::Unsent(e) if first => SendError::Backend(e),
                        e => e,
                    })?;
                    first = false;
                    scratch.clear();
                }
                if done {
                    return Ok(());
                }
                read_client(client, cbuf, timeout).await?;
            }
        }
    }
}

/// A chunked body being decoded and re-encoded: sizes in lower-case hex,
/// extensions dropped, trailer fields passed on.
#[derive(Debug, Default)]
struct Chunked {
    state: ChunkState,
    trailer_bytes: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

impl Chunked {
    /// Consumes what it can of `input`, appending the re-encoded body to
    /// `out`. `Ok(true)`: the body (trailers included) has ended; what is
    /// left in `input` is not part of it. `Err`: malformed.
    fn decode(&mut self, input: &mut BytesMut, out: &mut Vec<u8>) -> Result<bool, ()> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(end) = input.windows(2).position(|w| w == b"\r\n") else {
                        return if input.len() > MAX_CHUNK_LINE { Err(()) } else { Ok(false) };
                    };
                    let line = &input[..end];
                    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
                    if digits == 0 || digits > 16 {
                        return Err(());
                    }
                    let rest = &line[digits..];
                    // Extensions: `;name[=value]`, after optional spaces.
                    let rest = rest.trim_ascii_start();
                    if !(rest.is_empty() || rest[0] == b';')
                        || rest.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f))
                    {
                        return Err(());
                    }
                    let size = std::str::from_utf8(&line[..digits])
                        .ok()
                        .and_then(|s| u64::from_str_radix(s, 16).ok())
                        .ok_or(())?;
                    input.advance(end + 2);
                    if size == 0 {
                        out.extend_from_slice(b"0\r\n");
                        self.state = ChunkState::Trailers;
                    } else {
                        out.extend_from_slice(hex(size, &mut [0; 16]));
                        out.extend_from_slice(b"\r\n");
                        self.state = ChunkState::Data(size);
                    }
                }
                ChunkState::Data(left) => {
                    if input.is_empty() {
                        return Ok(false);
                    }
                    let k = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&input[..k]);
                    input.advance(k);
                    let left = left - k as u64;
                    self.state = if left == 0 { ChunkState::DataEnd } else { ChunkState::Data(left) };
                }
                ChunkState::DataEnd => {
                    if input.len() < 2 {
                        return Ok(false);
                    }
                    if &input[..2] != b"\r\n" {
                        return Err(());
                    }
                    input.advance(2);
                    out.extend_from_slice(b"\r\n");
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let Some(end) = input.windows(2).position(|w| w == b"\r\n") else {
                        return if self.trailer_bytes + input.len() > MAX_TRAILERS { Err(()) } else { Ok(false) };
                    };
                    let line = &input[..end];
                    if line.is_empty() {
                        input.advance(2);
                        out.extend_from_slice(b"\r\n");
                        self.state = ChunkState::Done;
                        return Ok(true);
                    }
                    // A field line: a token, a colon, a value without
                    // control characters.
                    let colon = line.iter().position(|&b| b == b':').ok_or(())?;
                    let name = &line[..colon];
                    if name.is_empty()
                        || !name.iter().all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
                        || line[colon + 1..].iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f))
                    {
                        return Err(());
                    }
                    self.trailer_bytes += end + 2;
                    if self.trailer_bytes > MAX_TRAILERS {
                        return Err(());
                    }
                    out.extend_from_slice(&input[..end + 2]);
                    input.advance(end + 2);
                }
                ChunkState::Done => return Ok(true),
            }
        }
    }
}

/// How the response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RespBody {
    None,
    Length(u64),
    Chunked,
    /// Until the backend closes (sent to the client chunked).
    Close,
}

/// A parsed final response head.
struct RespHead {
    len: usize,
    status: u16,
    body: RespBody,
    /// The connection may carry another request once this body is read.
    reusable: bool,
}

enum RespParse {
    Partial,
    /// A 1xx other than 101: skipped (this many bytes).
    Interim(usize),
    Final(RespHead),
    Invalid,
}

/// What the response head for the client needs to know of the request.
struct RespCtx<'a> {
    head: bool,
    close: bool,
    set_cookie: Option<&'a str>,
}

/// Parses a response head from the backend; for a final one, writes the
/// client's head to `out`.
fn parse_response(buf: &[u8], out: &mut Vec<u8>, ctx: &RespCtx<'_>) -> RespParse {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return RespParse::Partial,
        Err(_) => return RespParse::Invalid,
    };
    let (Some(code), Some(version)) = (resp.code, resp.version) else { return RespParse::Invalid };
    if (100..200).contains(&code) {
        // 101 only answers an upgrade, which this path never sends.
        return if code == 101 { RespParse::Invalid } else { RespParse::Interim(len) };
    }
    let headers = resp.headers;
    let mut length: Option<u64> = None;
    let mut te: Option<&[u8]> = None;
    let mut conn = ConnectionTokens::default();
    let mut date = false;
    for h in headers.iter() {
        match classify(h.name) {
            Field::ContentLength => match (parse_length(h.value), length) {
                (None, _) => return RespParse::Invalid,
                (Some(n), Some(m)) if n != m => return RespParse::Invalid,
                (n, _) => length = n,
            },
            Field::TransferEncoding => te = Some(h.value),
            Field::Connection => conn.add(h.value),
            Field::Date => date = true,
            _ => {}
        }
    }
    let chunked_last = |v: &[u8]| tokens(v).last().is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
    let body = if ctx.head || code == 204 || code == 304 {
        RespBody::None
    } else if let Some(te) = te {
        if chunked_last(te) { RespBody::Chunked } else { RespBody::Close }
    } else if let Some(n) = length {
        RespBody::Length(n)
    } else {
        RespBody::Close
    };
    let reusable = version == 1 && !conn.close && !(te.is_some() && length.is_some()) && body != RespBody::Close;

    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa(u64::from(code), &mut [0; 20]));
    out.push(b' ');
    out.extend_from_slice(resp.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in headers.iter() {
        let kept = match classify(h.name) {
            Field::ContentLength => matches!(body, RespBody::Length(_) | RespBody::None) && te.is_none(),
            Field::TransferEncoding | Field::Connection | Field::Upgrade | Field::Te | Field::HopByHop => false,
            _ => conn.named.is_empty() || !conn.names(h.name),
        };
        if kept {
            push_field(out, h.name.as_bytes(), h.value);
        }
    }
    if matches!(body, RespBody::Chunked | RespBody::Close) {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if let Some(c) = ctx.set_cookie {
        push_field(out, b"set-cookie", c.as_bytes());
    }
    if !date {
        push_date(out);
    }
    if ctx.close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    RespParse::Final(RespHead { len, status: code, body, reusable })
}

/// Why reading from the backend stopped.
enum RecvError {
    Timeout,
    /// Closed or broken before the response head was complete.
    Broken(String),
    Invalid,
}

/// Reads more of the backend's response, within `timeout`.
async fn read_up(up: &mut TcpStream, ubuf: &mut BytesMut, timeout: Duration) -> Result<usize, RecvError> {
    if ubuf.capacity() - ubuf.len() < 1024 {
        ubuf.reserve(READ_SIZE);
    }
    match tokio::time::timeout(timeout, up.read_buf(ubuf)).await {
        Err(_) => Err(RecvError::Timeout),
        Ok(Ok(0)) => Err(RecvError::Broken("the backend closed the connection".into())),
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(RecvError::Broken(format!("reading from the backend: {e}"))),
    }
}

/// Reads the response head (skipping 1xx); the client's head is in `out`.
async fn read_response(
    up: &mut TcpStream,
    ubuf: &mut BytesMut,
    out: &mut Vec<u8>,
    ctx: &RespCtx<'_>,
    timeout: Duration,
) -> Result<RespHead, RecvError> {
    loop {
        if !ubuf.is_empty() {
            match parse_response(ubuf, out, ctx) {
                RespParse::Final(h) => return Ok(h),
                RespParse::Interim(n) => {
                    ubuf.advance(n);
                    continue;
                }
                RespParse::Invalid => return Err(RecvError::Invalid),
                RespParse::Partial if ubuf.len() >= MAX_HEAD => return Err(RecvError::Invalid),
                RespParse::Partial => {}
            }
        }
        read_up(up, ubuf, timeout).await?;
    }
}

/// Where relaying a response body failed.
enum RelayError {
    Client,
    Backend,
}

/// Sends the response (head in `out`, body from the backend) to the
/// client. `Ok(true)`: the backend connection is clean for another
/// request.
async fn relay<S: AsyncWrite + Unpin>(
    io: &mut S,
    up: &mut TcpStream,
    ubuf: &mut BytesMut,
    out: &mut Vec<u8>,
    body: RespBody,
    timeout: Duration,
) -> Result<bool, RelayError> {
    let client = |_| RelayError::Client;
    match body {
        RespBody::None => {
            write_client(io, out).await.map_err(client)?;
            Ok(ubuf.is_empty())
        }
        RespBody::Length(n) => {
            let k = ubuf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            out.extend_from_slice(&ubuf[..k]);
            ubuf.advance(k);
            let mut left = n - k as u64;
            if left == 0 {
                write_client(io, out).await.map_err(client)?;
                return Ok(ubuf.is_empty());
            }
            io.write_all(out).await.map_err(client)?;
            while left > 0 {
                ubuf.clear();
                read_up(up, ubuf, timeout).await.map_err(|_| RelayError::Backend)?;
                let k = ubuf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                io.write_all(&ubuf[..k]).await.map_err(client)?;
                ubuf.advance(k);
                left -= k as u64;
            }
            io.flush().await.map_err(client)?;
            Ok(ubuf.is_empty())
        }
        RespBody::Chunked => {
            let mut decoder = Chunked::default();
            loop {
                let done = decoder.decode(ubuf, out).map_err(|()| RelayError::Backend)?;
                if !out.is_empty() {
                    io.write_all(out).await.map_err(client)?;
                    out.clear();
                }
                if done {
                    io.flush().await.map_err(client)?;
                    return Ok(ubuf.is_empty());
                }
                read_up(up, ubuf, timeout).await.map_err(|_| RelayError::Backend)?;
            }
        }
        RespBody::Close => {
            loop {
                if !ubuf.is_empty() {
                    out.extend_from_slice(hex(ubuf.len() as u64, &mut [0; 16]));
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(ubuf);
                    out.extend_from_slice(b"\r\n");
                    ubuf.clear();
                }
                if !out.is_empty() {
                    io.write_all(out).await.map_err(client)?;
                    out.clear();
                }
                match read_up(up, ubuf, timeout).await {
                    Ok(_) => {}
                    Err(RecvError::Broken(_)) if ubuf.is_empty() => break,
                    Err(_) => return Err(RelayError::Backend),
                }
            }
            write_client(io, b"0\r\n\r\n").await.map_err(client)?;
            Ok(false)
        }
    }
}

/// Whether a pooled connection still looks open (nothing to read, no
/// end of stream): checked before a request that could not be sent again.
fn looks_open(s: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(s.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Forwards one request and its response. Returns whether the client
/// connection may carry another request.
async fn exchange<S>(
    io: &mut S,
    cbuf: &mut BytesMut,
    ex: Exchange,
    b: &mut Bufs,
    shared: &Arc<Shared>,
    shutdown: &watch::Receiver<bool>,
    started: Instant,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let route = &ex.route;
    let upstream = &route.upstream;
    let settings = &route.settings;
    let client_cookie = ex.sticky;
    let mut tries = balance::Tries::new(upstream, ex.sticky);
    let mut fresh = false;
    let mut last_error = String::new();
    let mut timed_out = false;
    // The request body has been read from the client to its end.
    let mut body_done = ex.body == BodyLen::None;
    let metrics = || shared.metrics.route(Some(route));
    let (send_timeout, read_timeout) = (settings.send_timeout, settings.read_timeout);

    // What a failed attempt leads to.
    enum Next {
        Retry,
        Fail,
    }
    while let Some(i) = tries.next(upstream, settings.balance, &shared.pools) {
        let endpoint = &upstream.endpoints[i];
        let pool = shared.pools.endpoint(endpoint.addr, BackendProtocol::Http1);
        let mut pooled = None;
        if !std::mem::take(&mut fresh) {
            while let Some(s) = pool.take_raw() {
                // A request that could not be sent again is only sent on
                // a connection that has not been closed meanwhile.
                if ex.replayable || looks_open(&s) {
                    pooled = Some(s);
                    break;
                }
            }
        }
        let reused = pooled.is_some();
        let mut up = match pooled {
            Some(s) => s,
            None => match shared.pools.tcp(endpoint.addr, settings.connect_timeout).await {
                Ok(s) => s,
                Err(e) => {
                    // Nothing was sent: any request may go to the next endpoint.
                    shared.metrics.service(upstream).connect_errors.fetch_add(1, Relaxed);
                    tracing::debug!(error = %e, service = %upstream.service, "upstream connect failed; trying the next endpoint");
                    timed_out = matches!(e, ConnectError::Timeout(_));
                    last_error = e.to_string();
                    continue;
                }
            },
        };
        let _inflight = InFlight::new(pool.clone());

        // A failure after connecting: once more on a new connection when
        // a pooled one broke and the request can go again, else the next
        // endpoint for a replayable request, else give up.
        let mut broken = |error: String, unsent: bool, last_error: &mut String| -> Next {
            *last_error = error;
            // Registered (so rendered, at 0) even when nothing is counted.
            let service = shared.metrics.service(upstream);
            if !(unsent || ex.replayable) {
                service.resets.fetch_add(1, Relaxed);
                return Next::Fail;
            }
            if reused && tries.again_after_stale(i) {
                fresh = true;
            } else {
                service.resets.fetch_add(1, Relaxed);
            }
            Next::Retry
        };

        match send(&mut up, io, cbuf, &b.up_head, ex.body, &mut b.scratch, send_timeout).await {
            Ok(()) => body_done = true,
            Err(SendError::Unsent(e)) => match broken(e, true, &mut last_error) {
                Next::Retry => continue,
                Next::Fail => break,
            },
            Err(SendError::Backend(e)) => match broken(e, false, &mut last_error) {
                Next::Retry => continue,
                Next::Fail => break,
            },
            Err(SendError::BackendStall) => {
                shared.metrics.service(upstream).timeouts.fetch_add(1, Relaxed);
                let msg = format!(
                    "504 Gateway Timeout: service {}/{} took no request body data for {send_timeout:?}\n",
                    upstream.namespace, upstream.service
                );
                return answer(io, b, StatusCode::GATEWAY_TIMEOUT, &msg, true, &ex, started, metrics()).await;
            }
            Err(SendError::ClientStall) => {
                let msg = format!("408 Request Timeout: no request body data for {send_timeout:?}\n");
                return answer(io, b, StatusCode::REQUEST_TIMEOUT, &msg, true, &ex, started, metrics()).await;
            }
            Err(SendError::BadChunk) => {
                let msg = "400 Bad Request: malformed chunked request body\n";
                return answer(io, b, StatusCode::BAD_REQUEST, msg, true, &ex, started, metrics()).await;
            }
            Err(SendError::ClientGone) => return false,
        }

        let cookie_value = match &settings.affinity {
            Some(aff) if client_cookie != Some(i) => {
                let mut c = format!("{}={}; Path=/; HttpOnly", aff.cookie_name, endpoint.cookie);
                if let Some(age) = aff.max_age {
                    c.push_str(&format!("; Max-Age={age}"));
                }
                Some(c)
            }
            _ => None,
        };
        let close = ex.close || *shutdown.borrow();
        let ctx = RespCtx { head: ex.head, close, set_cookie: cookie_value.as_deref() };
        b.ubuf.clear();
        let resp = match read_response(&mut up, &mut b.ubuf, &mut b.out, &ctx, read_timeout).await {
            Ok(r) => r,
            Err(RecvError::Timeout) => {
                shared.metrics.service(upstream).timeouts.fetch_add(1, Relaxed);
                let msg = format!(
                    "504 Gateway Timeout: service {}/{} did not answer within {read_timeout:?}\n",
                    upstream.namespace, upstream.service
                );
                return answer(io, b, StatusCode::GATEWAY_TIMEOUT, &msg, ex.close, &ex, started, metrics()).await;
            }
            Err(RecvError::Broken(e)) => match broken(e, false, &mut last_error) {
                Next::Retry => continue,
                Next::Fail => break,
            },
            Err(RecvError::Invalid) => {
                let e = "the backend sent an invalid response head".to_string();
                match broken(e, false, &mut last_error) {
                    Next::Retry => continue,
                    Next::Fail => break,
                }
            }
        };
        b.ubuf.advance(resp.len);
        let status = resp.status;
        match relay(io, &mut up, &mut b.ubuf, &mut b.out, resp.body, read_timeout).await {
            Ok(clean) => {
                if clean && resp.reusable {
                    pool.give_back_raw(up);
                }
                metrics().observe(status, started.elapsed());
                return !close;
            }
            Err(RelayError::Client | RelayError::Backend) => {
                // The status line is out: all we can do is cut the
                // response off.
                metrics().observe(status, started.elapsed());
                return false;
            }
        }
    }
    let (status, what) = if timed_out {
        (StatusCode::GATEWAY_TIMEOUT, "504 Gateway Timeout")
    } else {
        (StatusCode::BAD_GATEWAY, "502 Bad Gateway")
    };
    let msg = format!("{what}: service {}/{}: {last_error}\n", upstream.namespace, upstream.service);
    answer(io, b, status, &msg, ex.close || !body_done, &ex, started, metrics()).await
}

/// Sends an error response of ours for a forwarded request.
#[allow(clippy::too_many_arguments)]
async fn answer<S: AsyncWrite + Unpin>(
    io: &mut S,
    b: &mut Bufs,
    status: StatusCode,
    msg: &str,
    close: bool,
    ex: &Exchange,
    started: Instant,
    metrics: &crate::metrics::RouteMetrics,
) -> bool {
    local(&mut b.out, status, msg, None, close, ex.head);
    metrics.observe(status.as_u16(), started.elapsed());
    write_client(io, &b.out).await.is_ok() && !close
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ()> {
        let mut d = Chunked::default();
        let mut out = Vec::new();
        // One byte at a time: every split point.
        let mut buf = BytesMut::new();
        for &byte in input {
            buf.extend_from_slice(&[byte]);
            if d.decode(&mut buf, &mut out)? {
                return Ok((out, buf.to_vec()));
            }
        }
        Err(())
    }

    #[test]
    fn chunked_bodies_are_re_encoded_whatever_the_split() {
        let (out, rest) = decode_all(b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nx-t: 1\r\n\r\n").expect("valid");
        assert_eq!(out, b"5\r\nhello\r\na\r\n0123456789\r\n0\r\nx-t: 1\r\n\r\n");
        assert!(rest.is_empty());
        let mut d = Chunked::default();
        let mut buf = BytesMut::from(&b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n"[..]);
        let mut out = Vec::new();
        assert_eq!(d.decode(&mut buf, &mut out), Ok(true));
        assert_eq!(&buf[..], b"GET / HTTP/1.1\r\n", "the next request stays");
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for bad in [
            &b"x\r\n"[..],
            b"5\r\nhelloXX",
            b"-1\r\n",
            b"11111111111111111\r\n",
            b"5 junk\r\nhello\r\n",
            b"0\r\nno colon\r\n\r\n",
            b"0\r\n: empty name\r\n\r\n",
        ] {
            let mut d = Chunked::default();
            let mut buf = BytesMut::from(bad);
            let mut out = Vec::new();
            assert_eq!(d.decode(&mut buf, &mut out), Err(()), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn lengths_are_digits_only() {
        assert_eq!(parse_length(b"42"), Some(42));
        assert_eq!(parse_length(b" 7 "), Some(7));
        for bad in [&b""[..], b"+1", b"-1", b"1,1", b"0x10", b"1 2", b"99999999999999999999"] {
            assert_eq!(parse_length(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn dates_are_imf_fixdate() {
        assert_eq!(&imf_fixdate(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&imf_fixdate(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(&imf_fixdate(4_102_444_799), b"Thu, 31 Dec 2099 23:59:59 GMT");
    }

    #[test]
    fn response_heads_lose_hop_by_hop_fields_and_get_their_framing() {
        let ctx = RespCtx { head: false, close: false, set_cookie: Some("C=1") };
        let mut out = Vec::new();
        let raw = b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nDate: x\r\nX-Kept: 2\r\n\r\n";
        let RespParse::Final(h) = parse_response(raw, &mut out, &ctx) else { panic!("final") };
        assert_eq!(h.body, RespBody::Chunked);
        assert!(h.reusable);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "HTTP/1.1 200 OK\r\nDate: x\r\nX-Kept: 2\r\ntransfer-encoding: chunked\r\nset-cookie: C=1\r\n\r\n"
        );
        // Both framings: chunked wins, the length goes, no reuse.
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        let RespParse::Final(h) = parse_response(raw, &mut out, &ctx) else { panic!("final") };
        assert_eq!(h.body, RespBody::Chunked);
        assert!(!h.reusable);
        assert!(!String::from_utf8_lossy(&out).to_ascii_lowercase().contains("content-length"));
        // No framing: until close, chunked to the client.
        let RespParse::Final(h) = parse_response(b"HTTP/1.0 200 OK\r\n\r\n", &mut out, &ctx) else { panic!() };
        assert_eq!(h.body, RespBody::Close);
        assert!(!h.reusable);
        assert!(matches!(parse_response(b"HTTP/1.1 100 Continue\r\n\r\n", &mut out, &ctx), RespParse::Interim(25)));
        assert!(matches!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &mut out, &ctx),
            RespParse::Invalid
        ));
        let head = RespCtx { head: true, close: true, set_cookie: None };
        let RespParse::Final(h) = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", &mut out, &head)
        else {
            panic!()
        };
        assert_eq!(h.body, RespBody::None);
        let s = String::from_utf8_lossy(&out);
        assert!(s.contains("Content-Length: 9\r\n") && s.contains("connection: close\r\n"), "{s}");
    }
}
