//! Strategic-merge-patch metadata: which list fields merge, by which key,
//! and which structs honour `$retainKeys`.
//!
//! In Go this lives in the `patchStrategy`/`patchMergeKey` struct tags of
//! k8s.io/api; k8s-openapi's schemas drop it, so it is written out here for
//! every type reachable from a served kind. A field absent from the table
//! has no strategy: its lists are replaced whole (e.g. `PodSpec.tolerations`,
//! `Endpoints.subsets`, `EndpointSlice.endpoints`, container statuses) and
//! its maps merge key by key.

use serde_json::{Map, Value};

/// The patch strategy of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PatchMeta {
    /// `patchStrategy:"merge"`: lists merge by `merge_key` (or, for lists of
    /// primitives, as a set union).
    pub merge: bool,
    /// `patchStrategy:"retainKeys"`: clients send `$retainKeys` for this
    /// struct (or, on a list, for each item) to clear fields not listed.
    pub retain_keys: bool,
    /// `patchMergeKey`: the item field identifying list items.
    pub merge_key: Option<&'static str>,
}

impl PatchMeta {
    /// No strategy: lists are replaced, maps merge.
    pub const NONE: PatchMeta = PatchMeta { merge: false, retain_keys: false, merge_key: None };

    const fn merge_by(key: &'static str) -> PatchMeta {
        PatchMeta { merge: true, retain_keys: false, merge_key: Some(key) }
    }

    const fn merge_retaining_keys_by(key: &'static str) -> PatchMeta {
        PatchMeta { merge: true, retain_keys: true, merge_key: Some(key) }
    }

    /// A list of primitives merged as a set.
    const MERGE_SET: PatchMeta = PatchMeta { merge: true, retain_keys: false, merge_key: None };

    const RETAIN_KEYS: PatchMeta = PatchMeta { merge: false, retain_keys: true, merge_key: None };

    /// The strategy as written in the Go tag and in
    /// `x-kubernetes-patch-strategy`: "merge", "retainKeys", "merge,retainKeys".
    pub fn strategy(&self) -> Option<&'static str> {
        match (self.merge, self.retain_keys) {
            (true, true) => Some("merge,retainKeys"),
            (true, false) => Some("merge"),
            (false, true) => Some("retainKeys"),
            (false, false) => None,
        }
    }
}

const CONTAINER_LISTS: [(&str, PatchMeta); 4] = [
    ("ports", PatchMeta::merge_by("containerPort")),
    ("env", PatchMeta::merge_by("name")),
    ("volumeMounts", PatchMeta::merge_by("mountPath")),
    ("volumeDevices", PatchMeta::merge_by("devicePath")),
];

const CONDITIONS: (&str, PatchMeta) = ("conditions", PatchMeta::merge_by("type"));

/// (definition, fields) for every field with a patch strategy, checked
/// against the struct tags of k8s.io/api v0.33.
static TABLE: &[(&str, &[(&str, PatchMeta)])] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        &[("finalizers", PatchMeta::MERGE_SET), ("ownerReferences", PatchMeta::merge_by("uid"))],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        &[
            ("volumes", PatchMeta::merge_retaining_keys_by("name")),
            ("initContainers", PatchMeta::merge_by("name")),
            ("containers", PatchMeta::merge_by("name")),
            ("ephemeralContainers", PatchMeta::merge_by("name")),
            ("imagePullSecrets", PatchMeta::merge_by("name")),
            ("hostAliases", PatchMeta::merge_by("ip")),
            ("topologySpreadConstraints", PatchMeta::merge_by("topologyKey")),
            ("schedulingGates", PatchMeta::merge_by("name")),
            ("resourceClaims", PatchMeta::merge_retaining_keys_by("name")),
        ],
    ),
    ("io.k8s.api.core.v1.Container", &CONTAINER_LISTS),
    ("io.k8s.api.core.v1.EphemeralContainer", &CONTAINER_LISTS),
    (
        "io.k8s.api.core.v1.PodStatus",
        &[
            CONDITIONS,
            ("podIPs", PatchMeta::merge_by("ip")),
            ("hostIPs", PatchMeta::merge_by("ip")),
            ("resourceClaimStatuses", PatchMeta::merge_retaining_keys_by("name")),
        ],
    ),
    (
        "io.k8s.api.core.v1.ContainerStatus",
        &[
            ("volumeMounts", PatchMeta::merge_by("mountPath")),
            ("allocatedResourcesStatus", PatchMeta::merge_by("name")),
        ],
    ),
    ("io.k8s.api.core.v1.NodeSpec", &[("podCIDRs", PatchMeta::MERGE_SET)]),
    ("io.k8s.api.core.v1.NodeStatus", &[CONDITIONS, ("addresses", PatchMeta::merge_by("type"))]),
    ("io.k8s.api.core.v1.NamespaceStatus", &[CONDITIONS]),
    ("io.k8s.api.core.v1.ServiceSpec", &[("ports", PatchMeta::merge_by("port"))]),
    ("io.k8s.api.core.v1.ServiceStatus", &[CONDITIONS]),
    ("io.k8s.api.apps.v1.DeploymentSpec", &[("strategy", PatchMeta::RETAIN_KEYS)]),
    ("io.k8s.api.apps.v1.DeploymentStatus", &[CONDITIONS]),
    ("io.k8s.api.apps.v1.ReplicaSetStatus", &[CONDITIONS]),
    ("io.k8s.api.apps.v1.StatefulSetStatus", &[CONDITIONS]),
    ("io.k8s.api.apps.v1.DaemonSetStatus", &[CONDITIONS]),
];

/// The patch metadata of `field` in the struct `definition`.
pub(crate) fn lookup(definition: &str, field: &str) -> PatchMeta {
    TABLE
        .iter()
        .find(|(d, _)| *d == definition)
        .and_then(|(_, fields)| fields.iter().find(|(f, _)| *f == field))
        .map_or(PatchMeta::NONE, |(_, meta)| *meta)
}

/// Every (definition, field, metadata) with a patch strategy.
pub fn patch_strategies() -> impl Iterator<Item = (&'static str, &'static str, PatchMeta)> {
    TABLE.iter().flat_map(|(definition, fields)| fields.iter().map(move |(field, meta)| (*definition, *field, *meta)))
}

/// Publishes the table as kube-apiserver's OpenAPI does, on the properties.
pub(crate) fn annotate(definitions: &mut Map<String, Value>) {
    for (definition, field, meta) in patch_strategies() {
        let property = definitions
            .get_mut(definition)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(field))
            .and_then(Value::as_object_mut);
        let Some(property) = property else { continue };
        if let Some(key) = meta.merge_key {
            property.insert("x-kubernetes-patch-merge-key".into(), key.into());
        }
        if let Some(strategy) = meta.strategy() {
            property.insert("x-kubernetes-patch-strategy".into(), strategy.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{SchemaKind, Schemas};

    #[test]
    fn every_table_entry_names_an_existing_field() {
        for (definition, field, meta) in patch_strategies() {
            let node = Schemas::get().definition(definition).expect(definition);
            let property = node.property(field).unwrap_or_else(|| panic!("{definition}.{field}"));
            if meta.merge {
                assert_eq!(property.kind(), SchemaKind::Array, "{definition}.{field}");
            }
            if let (Some(key), Some(item)) = (meta.merge_key, property.items()) {
                assert!(item.has_property(key), "{definition}.{field} merge key {key}");
            }
        }
    }

    #[test]
    fn tolerations_and_endpoint_subsets_have_no_strategy() {
        assert_eq!(lookup("io.k8s.api.core.v1.PodSpec", "tolerations"), PatchMeta::NONE);
        assert_eq!(lookup("io.k8s.api.core.v1.Endpoints", "subsets"), PatchMeta::NONE);
    }
}
