//! StatefulSets: pods with stable names and DNS names under a headless
//! Service, made in order, updated from the highest ordinal down, rolled
//! back from their ControllerRevisions, and collected with the set.

use crate::assert_eventually;
use crate::harness::{Cluster, json};

const WEB: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: nginx, labels: {app: nginx}}
spec:
  clusterIP: None
  selector: {app: nginx}
  ports: [{port: 80, name: web}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: nginx
  replicas: 3
  selector: {matchLabels: {app: nginx}}
  template:
    metadata: {labels: {app: nginx}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: nginx
        image: svcnet/echoserver:1
        ports: [{containerPort: 80, name: web}]
        volumeMounts: [{name: www, mountPath: /usr/share/nginx/html}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"#;

fn pods(c: &Cluster) -> Vec<serde_json::Value> {
    json(&c.ok(&["get", "pods", "-l", "app=nginx", "-o", "json"]))["items"].as_array().cloned().unwrap_or_default()
}

fn names(c: &Cluster) -> Vec<String> {
    let mut n: Vec<String> = pods(c).iter().filter_map(|p| p["metadata"]["name"].as_str().map(String::from)).collect();
    n.sort();
    n
}

#[test]
fn a_statefulset_gives_pods_stable_names_dns_and_ordered_updates() {
    let c = Cluster::with_nodes(2);
    c.apply(WEB);
    c.ok(&["rollout", "status", "statefulset/web", "--timeout=90s"]);
    assert_eq!(names(&c), ["web-0", "web-1", "web-2"]);
    let all = pods(&c);
    let created = |i: usize| all.iter().find(|p| p["metadata"]["name"] == format!("web-{i}")).unwrap().clone();
    for i in 0..3 {
        let p = created(i);
        assert_eq!(p["spec"]["hostname"], format!("web-{i}"));
        assert_eq!(p["spec"]["subdomain"], "nginx");
        assert_eq!(p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"], format!("web-{i}"));
        assert_eq!(p["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"], format!("www-web-{i}"));
    }
    // In order: each pod was created after the one before it was Ready.
    let ready_at = |p: &serde_json::Value| {
        p["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap()["lastTransitionTime"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for i in 1..3 {
        let created_at = created(i)["metadata"]["creationTimestamp"].as_str().unwrap().to_string();
        assert!(created_at >= ready_at(&created(i - 1)), "web-{i} was created before web-{} was Ready", i - 1);
    }
    assert_eq!(
        c.ok(&["get", "statefulset", "web"]).lines().nth(1).map(|l| l.split_whitespace().nth(1)),
        Some(Some("3/3"))
    );

    // Each pod has its own DNS name under the headless Service.
    let ip0 = created(0)["status"]["podIP"].as_str().unwrap().to_string();
    assert_eventually!(
        20,
        c.dig(&["web-0.nginx.default.svc.cluster.local", "+short"]).trim() == ip0,
        "web-0.nginx: {}",
        c.dig(&["web-0.nginx.default.svc.cluster.local"])
    );

    // A new image rolls from web-2 down to web-0.
    c.ok(&["set", "image", "statefulset/web", "nginx=svcnet/echoserver:2"]);
    let status = c.ok(&["rollout", "status", "statefulset/web", "--timeout=120s"]);
    assert!(status.contains("roll out complete: 3 new pods have been updated"), "{status}");
    let revision = c.ok(&["get", "statefulset", "web", "-o", "jsonpath={.status.updateRevision}"]);
    assert_eq!(c.ok(&["get", "statefulset", "web", "-o", "jsonpath={.status.currentRevision}"]), revision);
    assert!(pods(&c).iter().all(|p| p["metadata"]["labels"]["controller-revision-hash"] == revision.as_str()));
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=StatefulSet",
        "--sort-by=.metadata.creationTimestamp",
        "-o",
        "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
    ]);
    let deletes: Vec<&str> = events.lines().filter(|l| l.starts_with("delete Pod")).collect();
    assert_eq!(
        deletes,
        [
            "delete Pod web-2 in StatefulSet web successful",
            "delete Pod web-1 in StatefulSet web successful",
            "delete Pod web-0 in StatefulSet web successful"
        ]
    );
    assert_eq!(c.ok(&["get", "controllerrevisions", "-o", "name"]).lines().count(), 2);

    // Undo goes back to the first template (its revision renumbered).
    c.ok(&["rollout", "undo", "statefulset/web"]);
    c.ok(&["rollout", "status", "statefulset/web", "--timeout=120s"]);
    assert_eq!(
        c.ok(&["get", "statefulset", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]),
        "svcnet/echoserver:1"
    );

    // Scaling down removes the highest ordinals.
    c.ok(&["scale", "statefulset/web", "--replicas=1"]);
    assert_eventually!(60, names(&c) == ["web-0"], "{:?}", names(&c));

    // Deleting the set collects its pods and revisions.
    c.ok(&["delete", "statefulset", "web"]);
    assert_eventually!(60, names(&c).is_empty(), "{:?}", names(&c));
    assert_eventually!(30, c.ok(&["get", "controllerrevisions", "-o", "name"]).trim().is_empty(), "revisions left");
}

#[test]
fn statefulset_mistakes_get_kubes_messages() {
    let c = Cluster::start();
    let bad = WEB.replace("serviceName: nginx", "serviceName: nginx\n  podManagementPolicy: Sometimes");
    let err = c.fails(&["apply", "-f", "-"], Some(&bad));
    assert!(
        err.contains(
            r#"spec.podManagementPolicy: Unsupported value: "Sometimes": supported values: "OrderedReady", "Parallel""#
        ),
        "{err}"
    );
    c.apply(WEB);
    let err =
        c.fails(&["patch", "statefulset", "web", "--type=merge", "-p", r#"{"spec":{"serviceName":"other"}}"#], None);
    assert!(err.contains("updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"), "{err}");
    let err = c.fails(
        &[
            "patch",
            "statefulset",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"template":{"spec":{"restartPolicy":"Never"}}}}"#,
        ],
        None,
    );
    assert!(
        err.contains(r#"spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always""#),
        "{err}"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "sts",
            "web",
            "-o",
            "jsonpath={.spec.podManagementPolicy} {.spec.updateStrategy.rollingUpdate.partition}"
        ]),
        "OrderedReady 0"
    );
}
