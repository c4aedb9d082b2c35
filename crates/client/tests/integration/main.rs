//! svcnet-client against a real svcnet API server started in this process:
//! one module per scenario.

mod harness;

mod crud;
mod errors;
mod fake;
mod kubeconfig;
mod paging;
mod reflector;
mod restart;
mod watch;
