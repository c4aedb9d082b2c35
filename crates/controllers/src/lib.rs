//! svcnet's controllers, as kube-controller-manager runs them.
//!
//! Each controller is a pure function from a snapshot of the objects it
//! reads to the objects it should write (sans-IO, table-tested); the
//! runtime that feeds them from watches and applies their output lives
//! beside them.

pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod endpointslice;
pub mod loadbalancer;
pub mod runtime;
pub mod scheduler;
pub mod statefulset;

pub use runtime::{ControllerConfig, ControllerManager};
