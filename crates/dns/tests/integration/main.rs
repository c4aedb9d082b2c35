//! svcnet-dns end to end: servers on 127.0.0.1 queried with the real
//! `dig`, one module per scenario.

mod harness;

mod cluster;
mod forwarding;
mod records;
mod transport;
