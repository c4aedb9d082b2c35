//! Which Ingresses are ours, by IngressClass, the way ingress-nginx decides:
//!
//! 1. `spec.ingressClassName: X` — ours if the IngressClass `X` has our
//!    `spec.controller`; if no IngressClass `X` exists, ours if `X` is our
//!    configured class name (so a cluster without IngressClass objects
//!    still works).
//! 2. else the legacy annotation `kubernetes.io/ingress.class: X` — the
//!    same test.
//! 3. else (no class at all) — if some IngressClass is annotated
//!    `ingressclass.kubernetes.io/is-default-class: "true"`, ours if such a
//!    default class has our controller; if there is no default class, ours
//!    when `watch_ingress_without_class` is set.

use std::borrow::Borrow;

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

use crate::config::IngressConfig;

pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// Whether `ingress` is ours to serve.
pub fn is_ours<C: Borrow<IngressClass>>(ingress: &Ingress, classes: &[C], config: &IngressConfig) -> bool {
    let named = ingress.spec.as_ref().and_then(|s| s.ingress_class_name.as_deref()).filter(|c| !c.is_empty());
    let legacy = ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LEGACY_CLASS_ANNOTATION))
        .map(|c| c.trim())
        .filter(|c| !c.is_empty());
    match named.or(legacy) {
        Some(class) => match classes.iter().map(Borrow::borrow).find(|c| c.metadata.name.as_deref() == Some(class)) {
            Some(c) => controller_of(c) == Some(config.controller_name.as_str()),
            None => class == config.class_name,
        },
        None => {
            let defaults: Vec<&IngressClass> = classes.iter().map(Borrow::borrow).filter(|c| is_default(c)).collect();
            if defaults.is_empty() {
                config.watch_ingress_without_class
            } else {
                defaults.iter().any(|c| controller_of(c) == Some(config.controller_name.as_str()))
            }
        }
    }
}

fn controller_of(class: &IngressClass) -> Option<&str> {
    class.spec.as_ref().and_then(|s| s.controller.as_deref())
}

fn is_default(class: &IngressClass) -> bool {
    class
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
        .is_some_and(|v| v.trim() == "true")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::networking::v1::{IngressClassSpec, IngressSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn class(name: &str, controller: &str, default: bool) -> IngressClass {
        IngressClass {
            metadata: ObjectMeta {
                name: Some(name.into()),
                annotations: default
                    .then(|| BTreeMap::from([(DEFAULT_CLASS_ANNOTATION.to_string(), "true".to_string())])),
                ..ObjectMeta::default()
            },
            spec: Some(IngressClassSpec { controller: Some(controller.into()), parameters: None }),
        }
    }

    fn ingress(class_name: Option<&str>, legacy: Option<&str>) -> Ingress {
        Ingress {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                annotations: legacy.map(|l| BTreeMap::from([(LEGACY_CLASS_ANNOTATION.to_string(), l.to_string())])),
                ..ObjectMeta::default()
            },
            spec: Some(IngressSpec { ingress_class_name: class_name.map(str::to_string), ..IngressSpec::default() }),
            status: None,
        }
    }

    const OURS: &str = "svcnet.io/ingress-controller";

    #[test]
    fn ingress_class_name_selects_by_the_class_controller() {
        let config = IngressConfig::default();
        let classes =
            [class("svcnet", OURS, false), class("nginx", "k8s.io/ingress-nginx", false), class("mine", OURS, false)];
        assert!(is_ours(&ingress(Some("svcnet"), None), &classes, &config));
        assert!(is_ours(&ingress(Some("mine"), None), &classes, &config));
        assert!(!is_ours(&ingress(Some("nginx"), None), &classes, &config));
        assert!(!is_ours(&ingress(Some("unknown"), None), &classes, &config));
        // Without IngressClass objects, our configured class name still counts.
        assert!(is_ours(&ingress(Some("svcnet"), None), &[] as &[IngressClass], &config));
        // An IngressClass named like ours but owned by someone else wins over the name.
        assert!(!is_ours(&ingress(Some("svcnet"), None), &[class("svcnet", "other", false)], &config));
    }

    #[test]
    fn the_legacy_annotation_counts_and_the_field_beats_it() {
        let config = IngressConfig::default();
        let classes = [class("nginx", "k8s.io/ingress-nginx", false)];
        assert!(is_ours(&ingress(None, Some("svcnet")), &classes, &config));
        assert!(!is_ours(&ingress(None, Some("nginx")), &classes, &config));
        assert!(!is_ours(&ingress(Some("nginx"), Some("svcnet")), &classes, &config));
    }

    #[test]
    fn ingresses_without_a_class_follow_the_default_class() {
        let config = IngressConfig::default();
        assert!(is_ours(&ingress(None, None), &[class("svcnet", OURS, true)], &config));
        assert!(!is_ours(
            &ingress(None, None),
            &[class("nginx", "k8s.io/ingress-nginx", true), class("svcnet", OURS, false)],
            &config
        ));
        // No default class: the watch_ingress_without_class switch.
        assert!(is_ours(&ingress(None, None), &[class("svcnet", OURS, false)], &config));
        let strict = IngressConfig { watch_ingress_without_class: false, ..IngressConfig::default() };
        assert!(!is_ours(&ingress(None, None), &[class("svcnet", OURS, false)], &strict));
    }
}
