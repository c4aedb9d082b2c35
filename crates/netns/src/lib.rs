//! Network namespaces for svcnet's nodes and pods: `ip` (iproute2)
//! plumbing that never touches the host's own namespace, and
//! [`NetnsSockets`], sockets opened inside another namespace.

pub mod ip;
mod sockets;

pub use sockets::NetnsSockets;
