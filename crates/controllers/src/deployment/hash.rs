//! The `pod-template-hash`: FNV-32a over the pod template plus the
//! deployment's collisionCount, rendered with `rand.SafeEncodeString`'s
//! alphabet, as `controller.ComputeHash` does.
//!
//! One deliberate difference: Kubernetes feeds FNV a go-spew `%#v` dump of
//! the Go struct (every field, in Go declaration order, with Go type names
//! and `<nil>` for unset pointers), which depends on the exact struct layout
//! of the Kubernetes release. We feed it the template's canonical JSON
//! (object keys sorted, no insignificant whitespace) instead. The hash is
//! therefore stable and well distributed, and has Kubernetes' shape (the
//! decimal digits of a u32, each mapped into the same 27-letter alphabet),
//! but its value differs from what kube-controller-manager would pick for
//! the same template. Nothing depends on the value: the new ReplicaSet is
//! found by comparing templates, never by hash (`EqualIgnoreHash`).

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

/// `rand.SafeEncodeString`'s alphabet: no vowels (no words), no 0/1/3 (no
/// look-alikes).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

const FNV32_OFFSET: u32 = 0x811c_9dc5;
const FNV32_PRIME: u32 = 0x0100_0193;

/// FNV-32a.
pub(crate) fn fnv32a(bytes: &[u8]) -> u32 {
    fnv32a_extend(FNV32_OFFSET, bytes)
}

fn fnv32a_extend(mut hash: u32, bytes: &[u8]) -> u32 {
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(FNV32_PRIME);
    }
    hash
}

/// `rand.SafeEncodeString`: each byte mapped to `ALPHANUMS[byte % 27]`.
pub fn safe_encode_string(s: &str) -> String {
    s.bytes().map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()])).collect()
}

/// The `pod-template-hash` label value for `template` (the deployment's
/// template, without a hash label) and the deployment's
/// `status.collisionCount`.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut canonical = Vec::new();
    // Serializing a k8s-openapi value to a serde_json::Value cannot fail:
    // every key is a string and there are no non-finite floats.
    let value = serde_json::to_value(template).unwrap_or(Value::Null);
    write_canonical(&value, &mut canonical);
    let mut hash = fnv32a(&canonical);
    if let Some(count) = collision_count {
        // ComputeHash appends the count as 4 little-endian bytes.
        hash = fnv32a_extend(hash, &(count as u32).to_le_bytes());
    }
    safe_encode_string(&hash.to_string())
}

/// JSON with object keys in sorted order, whatever order the map kept them
/// in (the workspace enables serde_json's `preserve_order`).
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(&Value::String(k.clone()), out);
                out.push(b':');
                write_canonical(&map[k], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv32a_matches_reference_vectors() {
        assert_eq!(fnv32a(b""), 0x811c9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c292c);
        assert_eq!(fnv32a(b"foobar"), 0xbf9cf968);
    }

    #[test]
    fn safe_encoding_maps_digits_into_the_kubernetes_alphabet() {
        // '0'..'9' are bytes 48..57, i.e. alphabet positions 21..26, 0..3.
        assert_eq!(safe_encode_string("0123456789"), "456789bcdf");
        // The seed's pc-deployment hash decodes to a valid u32 this way.
        assert_eq!(safe_encode_string("2276156540"), "66cb59b984");
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = serde_json::json!({"b": 1, "a": {"d": [true, null], "c": "x"}});
        let mut out = Vec::new();
        write_canonical(&v, &mut out);
        assert_eq!(String::from_utf8_lossy(&out), r#"{"a":{"c":"x","d":[true,null]},"b":1}"#);
    }
}
