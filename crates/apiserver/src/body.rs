//! Response bodies: whole (JSON documents) or streamed (watches).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::mpsc;

/// A response body. Its error aborts the response (hyper resets the
/// stream or closes the connection), so a client never takes a body cut
/// short for a complete one.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never: Infallible| match never {}).boxed_unsync()
}

/// A body fed chunk by chunk from a channel; the stream ends when the
/// sender is dropped. Used for watches, where each event is flushed as it
/// happens.
pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl ChannelBody {
    /// The boxed response body streaming what `rx` yields.
    pub fn boxed(rx: mpsc::Receiver<Bytes>) -> Body {
        ChannelBody { rx }.map_err(|never: Infallible| match never {}).boxed_unsync()
    }
}

/// A body fed from a channel that can also carry the error that cut it
/// short; the response is then aborted rather than ended.
pub struct FallibleChannelBody {
    rx: mpsc::Receiver<Result<Bytes, BoxError>>,
}

impl FallibleChannelBody {
    pub fn boxed(rx: mpsc::Receiver<Result<Bytes, BoxError>>) -> Body {
        FallibleChannelBody { rx }.boxed_unsync()
    }
}

impl HttpBody for FallibleChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx).map(|chunk| chunk.map(|r| r.map(Frame::data)))
    }
}

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
