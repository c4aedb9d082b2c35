//! Cluster DNS inside `svcnet up`, asked with dig: records follow Services
//! and their endpoints as they change.

use crate::assert_eventually;
use crate::harness::Cluster;

#[test]
fn dig_resolves_services_headless_endpoints_and_negative_answers_carry_the_soa() {
    let c = Cluster::start();
    assert_ne!(c.dns_port, 0, "svcnet up announced no DNS port");
    assert_eq!(c.dig(&["kubernetes.default.svc.cluster.local", "+short"]).trim(), "10.96.0.1");
    c.ok(&["apply", "-f", concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/namespace-dev.yaml")]);
    c.ok(&["apply", "-f", concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/service-clusterip.yaml")]);
    c.ok(&["apply", "-f", concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/service-headliness.yaml")]);
    assert_eventually!(
        5,
        c.dig(&["service-clusterip.dev.svc.cluster.local", "+short"]).trim() == "10.97.97.97",
        "no A record: {}",
        c.dig(&["service-clusterip.dev.svc.cluster.local"])
    );
    // A headless Service answers with its ready endpoints' addresses.
    c.ok(&["apply", "-f", concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/pc-deployment.yaml")]);
    assert_eventually!(10, c.ok(&["get", "pods", "-n", "dev", "-o", "name"]).lines().count() == 3, "three pods");
    let pods = c.ok(&["get", "pods", "-n", "dev", "-o", "jsonpath={.items[*].metadata.name}"]);
    for (pod, ip) in pods.split_whitespace().zip(["10.244.1.39", "10.244.1.40", "10.244.2.33"]) {
        let status = format!(
            r#"{{"status":{{"phase":"Running","podIP":"{ip}","podIPs":[{{"ip":"{ip}"}}],"conditions":[{{"type":"Ready","status":"True"}}]}}}}"#
        );
        c.ok(&["-n", "dev", "patch", "pod", pod, "--subresource=status", "--type=merge", "-p", &status]);
    }
    assert_eventually!(
        10,
        {
            let mut ips: Vec<String> =
                c.dig(&["service-headliness.dev.svc.cluster.local", "+short"]).lines().map(str::to_string).collect();
            ips.sort();
            ips == ["10.244.1.39", "10.244.1.40", "10.244.2.33"]
        },
        "headless answer: {}",
        c.dig(&["service-headliness.dev.svc.cluster.local"])
    );
    // NXDOMAIN for a missing name, NODATA for an empty non-terminal; both
    // with the zone's SOA so resolvers can cache them.
    let missing = c.dig(&["nothere.dev.svc.cluster.local"]);
    assert!(missing.contains("status: NXDOMAIN") && missing.contains("IN\tSOA"), "{missing}");
    let ent = c.dig(&["dev.svc.cluster.local"]);
    assert!(ent.contains("status: NOERROR") && ent.contains("ANSWER: 0") && ent.contains("IN\tSOA"), "{ent}");
    // Deleting the Service removes its record.
    c.ok(&["delete", "-n", "dev", "svc", "service-clusterip"]);
    assert_eventually!(
        5,
        c.dig(&["service-clusterip.dev.svc.cluster.local"]).contains("status: NXDOMAIN"),
        "record outlived its Service"
    );
}
