//! Kubernetes API object machinery for svcnet, free of I/O.
//!
//! - [`resources`]: the registry of served resources (start here).
//! - [`defaults`]: API defaulting, as kube-apiserver applies it on writes.
//! - [`schema`]: OpenAPI schemas of every served kind, built from
//!   k8s-openapi, and strict decoding against them.
//! - [`patch`]: JSON merge patch, JSON patch and strategic merge patch.
//! - [`selector`]: label and field selectors.
//! - [`table`]: server-side `meta.k8s.io/v1` Table columns per resource.
//! - [`managed`]: server-side apply and `metadata.managedFields` tracking.
//! - [`openapi`]: the OpenAPI v2 (JSON and protobuf) and v3 documents.
//! - [`protobuf`]: decoding of Kubernetes protobuf request bodies to JSON.
//! - [`validation`]: kind-specific validation with kube-apiserver's exact messages.

pub mod defaults;
pub mod managed;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod table;
pub mod validation;
