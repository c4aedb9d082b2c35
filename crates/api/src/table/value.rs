//! Lenient readers over stored JSON objects and the time helpers the printers
//! share.
//!
//! Printers read the JSON directly instead of decoding into k8s-openapi
//! types: a row must print even if an object is missing a field a typed
//! decode would insist on, and Go's zero values (`""`, `0`, `false`) are what
//! the Go printers see for absent fields anyway.

use jiff::Timestamp;
use serde_json::Value;

use super::human_duration;

/// The string at `v`, or "" when absent or not a string.
pub(super) fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The integer at `v`, or 0.
pub(super) fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// The array at `v`, or an empty slice.
pub(super) fn arr(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// Whether `v` is a present, non-null value (Go: a non-nil pointer).
pub(super) fn present(v: &Value) -> bool {
    !v.is_null()
}

/// A `metav1.Time`/`MicroTime`, or `None` for absent, unparsable, or Go's
/// zero time (`0001-01-01T00:00:00Z`), all of which Go treats as unset.
pub(super) fn time(v: &Value) -> Option<Timestamp> {
    let ts: Timestamp = v.as_str()?.parse().ok()?;
    (ts != go_zero_time()).then_some(ts)
}

fn go_zero_time() -> Timestamp {
    // -62135596800 is 0001-01-01T00:00:00Z, inside jiff's supported range.
    Timestamp::from_second(-62_135_596_800).unwrap_or(Timestamp::MIN)
}

/// Go's `translateTimestampSince`: the age of a timestamp, `<unknown>` if unset.
pub(super) fn since(ts: Option<Timestamp>, now: Timestamp) -> String {
    match ts {
        Some(ts) => human_duration(now.duration_since(ts)),
        None => "<unknown>".to_string(),
    }
}

/// The AGE cell of every printer.
pub(super) fn age(object: &Value, now: Timestamp) -> String {
    since(time(&object["metadata"]["creationTimestamp"]), now)
}

/// The default convertor's "Created At" cell: RFC 3339 in UTC, with Go's zero
/// time when the object has none.
pub(super) fn created_at(object: &Value) -> String {
    let ts = time(&object["metadata"]["creationTimestamp"]).unwrap_or_else(go_zero_time);
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `labels.FormatLabels`: sorted `k=v` pairs, `<none>` when empty.
pub(super) fn format_labels(map: &Value) -> String {
    let mut pairs: Vec<String> = map.as_object().into_iter().flatten().map(|(k, v)| format!("{k}={}", s(v))).collect();
    pairs.sort();
    if pairs.is_empty() { "<none>".to_string() } else { pairs.join(",") }
}

/// `layoutContainerCells`: container names and images, comma-joined.
pub(super) fn container_cells(pod_spec: &Value) -> (String, String) {
    let containers = arr(&pod_spec["containers"]);
    let names: Vec<&str> = containers.iter().map(|c| s(&c["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| s(&c["image"])).collect();
    (names.join(","), images.join(","))
}

/// `net.JoinHostPort`: IPv6 hosts get brackets.
pub(super) fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// The `a,b,c + N more...` form several printers use for long lists; an
/// empty list is `<unset>`.
pub(super) fn list_with_more(list: &[String], total: usize, max: usize) -> String {
    let joined = list.join(",");
    if total > max {
        return format!("{joined} + {} more...", total - max);
    }
    if joined.is_empty() { "<unset>".to_string() } else { joined }
}

/// Load balancer ingress points (IP, else hostname), sorted and de-duplicated
/// like Go's `sets.String`. Server-side tables are always generated "wide",
/// so the 16-character clipping kubectl once applied never happens here.
pub(super) fn load_balancer_addresses(status: &Value) -> Vec<String> {
    let mut out: Vec<String> = arr(&status["ingress"])
        .iter()
        .filter_map(|i| {
            let ip = s(&i["ip"]);
            let host = s(&i["hostname"]);
            if !ip.is_empty() {
                Some(ip.to_string())
            } else if !host.is_empty() {
                Some(host.to_string())
            } else {
                None
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}
