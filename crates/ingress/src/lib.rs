//! svcnet's Ingress controller: networking.k8s.io/v1 Ingresses served by
//! our own reverse proxy (hyper + rustls), straight to ready endpoints.
//!
//! Start at [`IngressController::start`] (against an API server) or
//! [`serve_static`] with a table from [`build_table`] (no API server). Data
//! flows: reflectors (`controller.rs`) → [`build_table`] (`table.rs`, pure;
//! matching rules in `paths.rs`, classes in `class.rs`, annotations in
//! `annotations.rs`) → one pointer swap → per request `proxy.rs` looks up
//! the route, `balance.rs` picks an endpoint, `pool.rs` lends a
//! connection. TLS certificates are chosen per handshake from the same
//! table (`tls.rs`). Counters in `metrics.rs`; listeners in `server.rs`.

mod annotations;
mod balance;
mod class;
mod config;
mod controller;
mod error;
mod h1;
mod metrics;
mod paths;
mod pool;
mod proxy;
mod server;
mod status;
mod table;
#[cfg(test)]
mod table_tests;
pub mod testkit;
mod tls;

pub use annotations::{Affinity, Annotations, BackendProtocol, Balance, NGINX_PREFIX, PREFIX};
pub use class::{DEFAULT_CLASS_ANNOTATION, LEGACY_CLASS_ANNOTATION, is_ours};
pub use config::{DEFAULT_CLASS_NAME, DEFAULT_CONTROLLER_NAME, IngressConfig};
pub use controller::IngressController;
pub use error::Error;
pub use paths::{HostRule, PathKind, PathRule};
pub use pool::{Connector, DirectConnector};
pub use server::{IngressServer, Listeners, serve_static};
pub use table::{
    Endpoint, H2C_APP_PROTOCOL, IngressRef, Problem, Route, RouteTable, SERVICE_NAME_LABEL, TLS_SECRET_TYPE, Upstream,
    build_table, cookie_for,
};
pub use tls::{DEFAULT_CERT_CN, TlsError};

#[cfg(test)]
mod tests {
    /// Callers box our errors and move the controller across tasks.
    #[test]
    fn public_types_are_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<crate::Error>();
        check::<crate::IngressController>();
        check::<crate::IngressServer>();
        check::<crate::RouteTable>();
    }
}
