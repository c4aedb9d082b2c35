//! svcnet's node agent: what the kubelet and a CNI plugin do for a node,
//! without containers. A node is a network namespace with a bridge; a pod is
//! a network namespace wired to that bridge by a veth pair; a container is a
//! host process started inside the pod's namespaces.
//!
//! - `access`: what the agent's HTTP server (exec, logs) needs from the pod
//!   runtime.
//! - `echoserver`: the built-in `svcnet/echoserver` image.
//! - `streaming`: the agent's HTTP server: `kubectl exec` over the
//!   `v5.channel.k8s.io` WebSocket protocol and `kubectl logs`.

pub mod access;
pub mod echoserver;
pub mod streaming;
