//! JSON merge patch (RFC 7386) as evanphx/json-patch's `MergePatch`, which
//! kube-apiserver uses, applies it.
//!
//! It follows the RFC, plus one detail of that implementation: a value the
//! patch adds (rather than merges into an existing object) has its null
//! object members pruned at every depth, including inside arrays, while the
//! array elements themselves are kept even when null.

use serde_json::{Map, Value};

/// Applies `patch` to `target`: objects merge member by member, `null`
/// deletes a member, anything else replaces.
pub fn json_merge_patch(target: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(patch) => {
            let mut doc = match target {
                Value::Object(target) => target.clone(),
                _ => Map::new(),
            };
            merge_docs(&mut doc, patch);
            Value::Object(doc)
        }
        other => pruned(other),
    }
}

fn merge_docs(doc: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            doc.shift_remove(key);
            continue;
        }
        match doc.get_mut(key) {
            Some(Value::Object(current)) => match value {
                Value::Object(value) => merge_docs(current, value),
                // Replacing an object: the new value is taken as it is.
                other => {
                    doc.insert(key.clone(), other.clone());
                }
            },
            Some(current) if !current.is_null() => *current = pruned(value),
            _ => {
                doc.insert(key.clone(), pruned(value));
            }
        }
    }
}

/// A copy with null members removed from every object inside.
fn pruned(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), pruned(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(pruned).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 7386 Appendix A, every example.
    #[test]
    fn rfc7386_appendix_a_examples_hold() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (json!({"a": "b", "b": "c"}), json!({"a": null}), json!({"b": "c"})),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (json!({"a": {"b": "c"}}), json!({"a": {"b": "d", "c": null}}), json!({"a": {"b": "d"}})),
            (json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (json!({"e": null}), json!({"a": 1}), json!({"e": null, "a": 1})),
            (json!([1, 2]), json!({"a": "b", "c": null}), json!({"a": "b"})),
            (json!({}), json!({"a": {"bb": {"ccc": null}}}), json!({"a": {"bb": {}}})),
        ];
        for (target, patch, expected) in cases {
            assert_eq!(json_merge_patch(&target, &patch), expected, "{target} + {patch}");
        }
    }

    #[test]
    fn labels_merge_and_null_removes_one() {
        let target = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}, "spec": {"replicas": 1}});
        let patch = json!({"metadata": {"labels": {"tier": null, "env": "prod"}}});
        assert_eq!(
            json_merge_patch(&target, &patch),
            json!({"metadata": {"labels": {"app": "web", "env": "prod"}}, "spec": {"replicas": 1}})
        );
    }

    #[test]
    fn lists_are_replaced_whole() {
        let target = json!({"spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b"}]}});
        let patch = json!({"spec": {"containers": [{"name": "a", "image": "a:2"}]}});
        assert_eq!(json_merge_patch(&target, &patch), patch);
    }

    #[test]
    fn nulls_inside_added_values_are_pruned_like_kube_apiserver() {
        let patch = json!({"a": [{"b": null, "c": 1}, null], "d": {"e": null}});
        assert_eq!(json_merge_patch(&json!({}), &patch), json!({"a": [{"c": 1}, null], "d": {}}));
    }
}
