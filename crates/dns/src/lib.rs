//! svcnet's cluster DNS: the zone of the Kubernetes DNS-Based Service
//! Discovery specification (1.1.0), served from Services, EndpointSlices,
//! Namespaces and Pods, with names outside it forwarded to upstream
//! resolvers through a cache.
//!
//! Data flows one way:
//!
//! ```text
//! watchers   ──► zone::LiveZone ───────► ZoneView ──► Compiled ──► server (UDP threads, TCP)
//! (watch.rs)     per changed object:     (view.rs,    (compiled.rs:    │  handler::handle per packet
//!                its records (build.rs,   shared       answer() run    │  ├─ hit: copy a prepared response
//!                pure) before and after,  table        per changed     │  ├─ NXDOMAIN from the SOA template
//!                the difference applied   shards)      name)           │  ├─ answer::answer (pure)
//!                                                                      │  └─ forward.rs + cache.rs (upstream)
//! ```
//!
//! [`build_view`] builds the same view whole from every object: the
//! reference the incremental updates are tested against, and the way to
//! serve a fixed zone.
//!
//! Start at [`answer()`] for *what* is answered, [`handler`] for how a packet
//! becomes a response, and [`run`] / [`serve_static`] for the server.
//!
//! ```no_run
//! # async fn demo(client: svcnet_client::Client) -> Result<(), svcnet_dns::ServeError> {
//! let config = svcnet_dns::DnsConfig { cluster_domain: "cluster.local".into(), ..Default::default() };
//! svcnet_dns::run(client, config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod answer;
mod build;
mod cache;
mod compiled;
mod config;
mod forward;
pub mod handler;
mod http;
mod metrics;
pub mod name;
mod objects;
mod server;
mod slot;
mod store;
mod table;
#[doc(hidden)]
pub mod testkit;
mod udp;
mod view;
mod watch;
pub mod wire;
mod zone;

pub use answer::{Answer, Response, answer, soa_record};
pub use build::{Cluster, SERVICE_NAME_LABEL, build_view};
pub use compiled::Compiled;
pub use config::{ConfigError, DnsConfig, nameservers};
pub use forward::ForwardError;
pub use metrics::Metrics;
pub use name::{Name, NameError};
pub use server::{DnsServer, ServeError, serve_static};
pub use view::{Node, PodsMode, RRset, SCHEMA_VERSION, ViewBuilder, ZoneConfig, ZoneView};
pub use watch::{run, start};
