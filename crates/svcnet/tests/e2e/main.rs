//! End-to-end tests: a real `svcnet` process, driven by the real kubectl
//! (1.27, 1.32, 1.33), curl and the Python client. One module per scenario.

mod harness;

mod auth;
mod controllers;
mod daemonsets;
mod dns;
mod durability;
mod errors;
mod ingress;
mod kubectl_basics;
mod kubectl_objects;
mod pods;
mod proxy;
mod python_client;
mod seeds;
mod services;
mod statefulsets;
mod watch;
