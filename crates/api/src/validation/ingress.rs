//! networking.k8s.io/v1 Ingress and IngressClass validation
//! (`ValidateIngressCreate`/`Update`, `ValidateIngressClass`/`Update`).

use serde_json::Value;

use super::access::{get, int_of, list, obj, opt_str, str_of, strings};
use super::field::{FieldError, Path};
use super::text::{
    domain_prefixed_path_errors, each, is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_path_segment_name,
    is_port_name, is_port_num, is_wildcard_dns1123_subdomain, parse_ip_sloppy,
};

const PATH_TYPES: [&str; 3] = ["Exact", "ImplementationSpecific", "Prefix"];
const INVALID_PATH_SEQUENCES: [&str; 5] = ["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: [&str; 2] = ["/..", "/."];
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
const MAX_CONTROLLER_LEN: usize = 250;

/// Options kube derives from the old object so that stored, once-valid
/// data keeps validating.
#[derive(Default)]
struct Options {
    allow_invalid_secret_name: bool,
    allow_invalid_wildcard_host_rule: bool,
}

pub(crate) fn validate_create(ing: &Value) -> Vec<FieldError> {
    let mut errs = spec_errors(obj(ing, "spec"), &Options::default());
    let annotation = obj(obj(ing, "metadata"), "annotations").get(CLASS_ANNOTATION).and_then(Value::as_str);
    if let (Some(a), Some(class)) = (annotation, opt_str(obj(ing, "spec"), "ingressClassName")) {
        if a != class {
            errs.push(FieldError::invalid(
                format!("annotations.{CLASS_ANNOTATION}"),
                a,
                "must match `ingressClassName` when both are specified",
            ));
        }
    }
    errs
}

pub(crate) fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let old_spec = obj(old, "spec");
    let opts = Options {
        allow_invalid_secret_name: list(old_spec, "tls")
            .iter()
            .any(|t| !str_of(t, "secretName").is_empty() && !is_dns1123_subdomain(str_of(t, "secretName")).is_empty()),
        allow_invalid_wildcard_host_rule: list(old_spec, "rules").iter().any(|r| {
            str_of(r, "host").contains('*') && !rule_value_errors(r, &Path::root(""), &Options::default()).is_empty()
        }),
    };
    spec_errors(obj(new, "spec"), &opts)
}

fn spec_errors(spec: &Value, opts: &Options) -> Vec<FieldError> {
    let path = Path::root("spec");
    let mut errs = Vec::new();
    let rules = list(spec, "rules");
    let default_backend = get(spec, "defaultBackend");
    if rules.is_empty() && default_backend.is_none() {
        let go =
            if get(spec, "rules").is_some() { "[]networking.IngressRule{}" } else { "[]networking.IngressRule(nil)" };
        errs.push(
            FieldError::invalid(
                &path,
                Value::Array(Vec::new()),
                "either `defaultBackend` or `rules` must be specified",
            )
            .go(go),
        );
    }
    if let Some(b) = default_backend {
        errs.extend(backend_errors(b, &path.child("defaultBackend")));
    }
    for (i, rule) in rules.iter().enumerate() {
        let rp = path.child("rules").index(i);
        let host = str_of(rule, "host");
        let mut wildcard = false;
        if !host.is_empty() {
            if parse_ip_sloppy(host).is_some() {
                errs.push(FieldError::invalid(rp.child("host"), host, "must be a DNS name, not an IP address"));
            }
            if host.contains('*') {
                errs.extend(each(&rp.child("host"), host, is_wildcard_dns1123_subdomain(host)));
                wildcard = true;
            } else {
                errs.extend(each(&rp.child("host"), host, is_dns1123_subdomain(host)));
            }
        }
        if !wildcard || !opts.allow_invalid_wildcard_host_rule {
            errs.extend(rule_value_errors(rule, &rp, opts));
        }
    }
    for (i, tls) in list(spec, "tls").iter().enumerate() {
        let tp = path.child("tls").index(i);
        for (j, host) in strings(tls, "hosts").iter().enumerate() {
            let hp = tp.child("hosts").index(j);
            if host.contains('*') {
                errs.extend(each(&hp, host, is_wildcard_dns1123_subdomain(host)));
            } else {
                errs.extend(each(&hp, host, is_dns1123_subdomain(host)));
            }
        }
        let secret = str_of(tls, "secretName");
        if !opts.allow_invalid_secret_name && !secret.is_empty() {
            errs.extend(each(&tp.child("secretName"), secret, is_dns1123_subdomain(secret)));
        }
    }
    if let Some(class) = opt_str(spec, "ingressClassName") {
        errs.extend(each(&path.child("ingressClassName"), class, is_dns1123_subdomain(class)));
    }
    errs
}

fn rule_value_errors(rule: &Value, path: &Path, _opts: &Options) -> Vec<FieldError> {
    let Some(http) = get(rule, "http") else { return Vec::new() };
    let hp = path.child("http");
    let mut errs = Vec::new();
    let paths = list(http, "paths");
    if paths.is_empty() {
        errs.push(FieldError::required(hp.child("paths"), ""));
    }
    for (i, p) in paths.iter().enumerate() {
        errs.extend(http_path_errors(p, &hp.child("paths").index(i)));
    }
    errs
}

fn http_path_errors(p: &Value, path: &Path) -> Vec<FieldError> {
    let Some(path_type) = opt_str(p, "pathType") else {
        return vec![FieldError::required(path.child("pathType"), "pathType must be specified")];
    };
    let mut errs = Vec::new();
    let value = str_of(p, "path");
    let pp = path.child("path");
    match path_type {
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errs.push(FieldError::invalid(&pp, value, "must be an absolute path"));
            }
            if !value.is_empty() {
                for seq in INVALID_PATH_SEQUENCES {
                    if value.contains(seq) {
                        errs.push(FieldError::invalid(&pp, value, format!("must not contain '{seq}'")));
                    }
                }
                for suffix in INVALID_PATH_SUFFIXES {
                    if value.ends_with(suffix) {
                        errs.push(FieldError::invalid(&pp, value, format!("cannot end with '{suffix}'")));
                    }
                }
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errs.push(FieldError::invalid(&pp, value, "must be an absolute path"));
            }
        }
        other => errs.push(FieldError::not_supported(path.child("pathType"), other, &PATH_TYPES)),
    }
    errs.extend(backend_errors(obj(p, "backend"), &path.child("backend")));
    errs
}

/// `validateIngressBackend`.
fn backend_errors(backend: &Value, path: &Path) -> Vec<FieldError> {
    let resource = get(backend, "resource");
    let service = get(backend, "service");
    match (resource, service) {
        (Some(_), Some(_)) => vec![FieldError::invalid(path, "", "cannot set both resource and service backends")],
        (Some(r), None) => typed_reference_errors(r, &path.child("resource")),
        (None, Some(s)) => {
            let mut errs = Vec::new();
            let name = str_of(s, "name");
            let sp = path.child("service");
            if name.is_empty() {
                errs.push(FieldError::required(sp.child("name"), ""));
            } else {
                errs.extend(each(&sp.child("name"), name, is_dns1035_label(name)));
            }
            let port = obj(s, "port");
            let port_name = str_of(port, "name");
            let number = int_of(port, "number").unwrap_or(0);
            match (!port_name.is_empty(), number != 0) {
                (true, true) => errs.push(FieldError::invalid(path, "", "cannot set both port name & port number")),
                (true, false) => errs.extend(each(&sp.child("port").child("name"), port_name, is_port_name(port_name))),
                (false, true) => {
                    for m in is_port_num(number) {
                        errs.push(FieldError::invalid(sp.child("port").child("number"), number, m));
                    }
                }
                (false, false) => errs.push(FieldError::required(path, "port name or number is required")),
            }
            errs
        }
        (None, None) => vec![FieldError::invalid(path, "", "resource or service backend is required")],
    }
}

/// `validateIngressTypedLocalObjectReference`.
fn typed_reference_errors(r: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(group) = opt_str(r, "apiGroup") {
        errs.extend(each(&path.child("apiGroup"), group, is_dns1123_subdomain(group)));
    }
    for field in ["kind", "name"] {
        let v = str_of(r, field);
        if v.is_empty() {
            errs.push(FieldError::required(path.child(field), ""));
        } else {
            errs.extend(each(&path.child(field), v, is_path_segment_name(v)));
        }
    }
    errs
}

pub(crate) fn validate_class(class: &Value) -> Vec<FieldError> {
    let spec = obj(class, "spec");
    let path = Path::root("spec");
    let mut errs = Vec::new();
    let controller = str_of(spec, "controller");
    if controller.is_empty() {
        errs.push(FieldError::required(path.child("controller"), ""));
    } else {
        if controller.len() > MAX_CONTROLLER_LEN {
            errs.push(FieldError::too_long(path.child("controller"), MAX_CONTROLLER_LEN));
        }
        errs.extend(domain_prefixed_path_errors(&path.child("controller"), controller));
    }
    if let Some(params) = get(spec, "parameters") {
        let pp = path.child("parameters");
        errs.extend(typed_reference_errors(params, &pp));
        // scope is defaulted to Cluster.
        let scope = opt_str(params, "scope").unwrap_or("Cluster");
        let namespace = opt_str(params, "namespace");
        match scope {
            "Namespace" => match namespace {
                None => {
                    errs.push(FieldError::required(pp.child("namespace"), "`parameters.scope` is set to 'Namespace'"))
                }
                Some(ns) => errs.extend(each(&pp.child("namespace"), ns, is_dns1123_label(ns))),
            },
            "Cluster" => {
                if namespace.is_some() {
                    errs.push(FieldError::forbidden(pp.child("namespace"), "`parameters.scope` is set to 'Cluster'"));
                }
            }
            other => errs.push(FieldError::not_supported(pp.child("scope"), other, &["Cluster", "Namespace"])),
        }
    }
    errs
}

pub(crate) fn validate_class_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let (n, o) = (str_of(obj(new, "spec"), "controller"), str_of(obj(old, "spec"), "controller"));
    let mut errs = Vec::new();
    if n != o {
        errs.push(FieldError::invalid("spec.controller", n, "field is immutable"));
    }
    errs.extend(validate_class(new));
    errs
}
