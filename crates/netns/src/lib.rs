//! Network namespaces for svcnet's nodes and pods: namespaces, bridges and
//! veths that never touch the host's own namespace ([`ip`]: iproute2 for
//! nodes, in-process netlink for pods), and [`NetnsSockets`], sockets
//! opened inside another namespace.

pub mod ip;
mod namespace;
mod netlink;
mod sockets;

pub use sockets::NetnsSockets;
