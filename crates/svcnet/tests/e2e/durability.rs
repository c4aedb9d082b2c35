//! State survives restarts, including kill -9, and resourceVersions keep
//! increasing.

use crate::harness::{Cluster, json};

#[test]
fn objects_survive_kill_dash_nine_and_resource_versions_keep_increasing() {
    let c = Cluster::start();
    for i in 0..20 {
        c.ok(&["create", "configmap", &format!("cm-{i}"), &format!("--from-literal=i={i}")]);
    }
    let before = json(&c.ok(&["get", "--raw", "/api/v1/namespaces/default/configmaps"]));
    let rv_before: u64 = before["metadata"]["resourceVersion"].as_str().expect("rv").parse().expect("number");
    let kubeconfig_before = std::fs::read_to_string(c.kubeconfig()).expect("kubeconfig");
    let dir = c.kill9();

    let c = Cluster::start_in(dir);
    let after = json(&c.ok(&["get", "--raw", "/api/v1/namespaces/default/configmaps"]));
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(names(&before), names(&after));
    let cm7 = after["items"].as_array().and_then(|a| a.iter().find(|i| i["metadata"]["name"] == "cm-7")).expect("cm-7");
    assert_eq!(cm7["data"]["i"], "7");
    // The same certificates are reused: the old kubeconfig still works.
    let kubeconfig_after = std::fs::read_to_string(c.kubeconfig()).expect("kubeconfig");
    assert_eq!(
        kubeconfig_before.lines().filter(|l| l.contains("-data:")).collect::<Vec<_>>(),
        kubeconfig_after.lines().filter(|l| l.contains("-data:")).collect::<Vec<_>>()
    );
    c.ok(&["create", "configmap", "later", "--from-literal=a=b"]);
    let later = json(&c.ok(&["get", "configmap", "later", "-o", "json"]));
    let rv_later: u64 = later["metadata"]["resourceVersion"].as_str().expect("rv").parse().expect("number");
    assert!(rv_later > rv_before, "{rv_later} <= {rv_before}");
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let mut c = Cluster::start();
    c.ok(&["create", "configmap", "x", "--from-literal=a=b"]);
    let status = c.terminate().expect("exit status");
    assert!(status.success(), "{status:?}");
}
