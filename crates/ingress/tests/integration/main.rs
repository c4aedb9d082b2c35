//! svcnet-ingress end to end on 127.0.0.1: the proxy serving tables built
//! with `build_table`, real hyper backends and rustls clients, and one
//! scenario against an in-process API server. One module per scenario.

mod harness;

mod connections;
mod controller;
mod fastpath;
mod proxying;
mod routing;
mod tls;
