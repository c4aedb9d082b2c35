//! The crate's error type: what can stop the controller from starting.
//! (Per-request failures are HTTP responses, mapped in `proxy.rs`.)

use std::net::SocketAddr;

use crate::tls::TlsError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("binding the metrics listener on {addr} failed: {source}")]
    MetricsBind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to the API server failed: {0}")]
    Api(#[from] svcnet_client::Error),
}
