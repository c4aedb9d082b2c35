//! Creating, reading, changing and deleting objects with kubectl's
//! everyday commands.

use crate::harness::{Cluster, KUBECTL, KUBECTL_127, KUBECTL_133, json};

const SERVICE: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: service-clusterip
  namespace: default
  labels:
    tier: web
spec:
  selector:
    app: nginx-pod
  clusterIP: 10.97.97.97
  type: ClusterIP
  ports:
  - port: 80
    targetPort: 80
";

#[test]
fn apply_creates_then_updates_and_removes_fields_like_client_side_apply() {
    let c = Cluster::start();
    let out = c.apply(SERVICE);
    assert!(out.contains("service/service-clusterip created"), "{out}");
    let svc = json(&c.ok(&["get", "svc", "service-clusterip", "-o", "json"]));
    assert_eq!(svc["metadata"]["labels"]["tier"], "web");
    assert!(svc["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].is_string());
    let uid = svc["metadata"]["uid"].as_str().expect("uid").to_string();
    let rv1: u64 = svc["metadata"]["resourceVersion"].as_str().expect("rv").parse().expect("number");

    // Re-apply with a changed port and without the label: kubectl computes
    // a strategic merge patch that the server must honour.
    let changed = SERVICE
        .replace("  labels:\n    tier: web\n", "")
        .replace("port: 80\n    targetPort: 80", "port: 8080\n    targetPort: 80");
    let out = c.apply(&changed);
    assert!(out.contains("configured"), "{out}");
    let svc = json(&c.ok(&["get", "svc", "service-clusterip", "-o", "json"]));
    assert!(svc["metadata"]["labels"].get("tier").is_none(), "{svc}");
    assert_eq!(svc["spec"]["ports"].as_array().map(Vec::len), Some(1), "{svc}");
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
    assert_eq!(svc["metadata"]["uid"], uid.as_str());
    let rv2: u64 = svc["metadata"]["resourceVersion"].as_str().expect("rv").parse().expect("number");
    assert!(rv2 > rv1);

    // Applying the same thing again changes nothing.
    let out = c.apply(&changed);
    assert!(out.contains("unchanged"), "{out}");
}

#[test]
fn every_kubectl_version_can_create_get_and_delete() {
    let c = Cluster::start();
    for (i, bin) in [KUBECTL, KUBECTL_127, KUBECTL_133].into_iter().enumerate() {
        let name = format!("cm-{i}");
        c.ok_with(bin, &["create", "configmap", &name, "--from-literal=a=b"], None);
        let out = c.ok_with(bin, &["get", "configmap", &name], None);
        assert!(out.lines().next().is_some_and(|h| h.starts_with("NAME") && h.contains("DATA")), "{out}");
        assert!(out.contains(&name), "{out}");
        let manifest =
            SERVICE.replace("service-clusterip", &format!("svc-{i}")).replace("  clusterIP: 10.97.97.97\n", "");
        c.ok_with(bin, &["apply", "-f", "-"], Some(&manifest));
        let out = c.ok_with(bin, &["delete", "svc", &format!("svc-{i}")], None);
        assert!(out.contains("deleted"), "{out}");
        c.ok_with(bin, &["delete", "configmap", &name], None);
    }
}

#[test]
fn create_from_a_file_and_get_in_every_output_format() {
    let c = Cluster::start();
    let path = c.dir.path().join("svc.yaml");
    std::fs::write(&path, SERVICE).expect("write");
    c.ok(&["create", "-f", path.to_str().expect("path")]);
    // The built-in `kubernetes` Service is there too, as on any cluster.
    let name = c.ok(&["get", "svc", "-o", "name"]);
    assert_eq!(name.trim(), "service/kubernetes\nservice/service-clusterip");
    let jp = c.ok(&["get", "svc", "service-clusterip", "-o", "jsonpath={.spec.ports[0].targetPort}"]);
    assert_eq!(jp, "80");
    let yaml = c.ok(&["get", "svc", "service-clusterip", "-o", "yaml"]);
    assert!(yaml.contains("kind: Service") && yaml.contains("name: service-clusterip"), "{yaml}");
    let wide = c.ok(&["get", "svc", "-o", "wide"]);
    let header: Vec<&str> = wide.lines().next().expect("header").split_whitespace().collect();
    assert_eq!(header, ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]);
    assert!(wide.contains("app=nginx-pod"), "{wide}");
    let labels = c.ok(&["get", "svc", "--show-labels"]);
    assert!(labels.contains("tier=web"), "{labels}");
    let all_ns = c.ok(&["get", "svc", "-A"]);
    assert!(all_ns.lines().next().is_some_and(|h| h.starts_with("NAMESPACE")), "{all_ns}");
    let selected = c.ok(&["get", "svc", "-l", "tier=web", "-o", "name"]);
    assert_eq!(selected.trim(), "service/service-clusterip");
    let others = c.ok(&["get", "svc", "-l", "tier!=web", "-o", "name"]);
    assert_eq!(others.trim(), "service/kubernetes");
    // create again: AlreadyExists.
    let err = c.fails(&["create", "-f", path.to_str().expect("path")], None);
    assert!(err.contains("AlreadyExists") && err.contains("\"service-clusterip\" already exists"), "{err}");
}

#[test]
fn describe_service_shows_selector_type_ports_and_affinity() {
    let c = Cluster::start();
    c.apply(SERVICE);
    let out = c.ok(&["describe", "svc", "service-clusterip"]);
    for field in ["Name:", "Namespace:", "Selector:", "Type:", "Port:", "TargetPort:", "Session Affinity:"] {
        assert!(out.contains(field), "{field} missing:\n{out}");
    }
    assert!(out.contains("app=nginx-pod"), "{out}");
}

#[test]
fn patch_supports_strategic_merge_json_merge_and_json_patch() {
    let c = Cluster::start();
    c.apply(SERVICE);
    // A second port needs both ports named, as kube-apiserver insists.
    let err = c.fails(
        &[
            "patch",
            "svc",
            "service-clusterip",
            "-p",
            r#"{"spec":{"ports":[{"port":443,"targetPort":8443,"name":"https"}]}}"#,
        ],
        None,
    );
    assert!(err.contains("spec.ports[1].name: Required value"), "{err}");
    c.ok(&[
        "patch",
        "svc",
        "service-clusterip",
        "-p",
        r#"{"spec":{"ports":[{"port":80,"name":"http"},{"port":443,"targetPort":8443,"name":"https"}]}}"#,
    ]);
    let svc = json(&c.ok(&["get", "svc", "service-clusterip", "-o", "json"]));
    // Strategic merge keys ports by port: port 80 gains its name, 443 joins.
    let ports: Vec<i64> =
        svc["spec"]["ports"].as_array().expect("ports").iter().filter_map(|p| p["port"].as_i64()).collect();
    assert_eq!(ports.len(), 2, "{svc}");
    assert!(ports.contains(&80) && ports.contains(&443));

    c.ok(&[
        "patch",
        "svc",
        "service-clusterip",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"tier":null,"x":"y"}}}"#,
    ]);
    let svc = json(&c.ok(&["get", "svc", "service-clusterip", "-o", "json"]));
    assert!(svc["metadata"]["labels"].get("tier").is_none());
    assert_eq!(svc["metadata"]["labels"]["x"], "y");

    c.ok(&[
        "patch",
        "svc",
        "service-clusterip",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/selector/app","value":"other"}]"#,
    ]);
    let svc = json(&c.ok(&["get", "svc", "service-clusterip", "-o", "json"]));
    assert_eq!(svc["spec"]["selector"]["app"], "other");

    let err = c.fails(
        &["patch", "svc", "service-clusterip", "--type=json", "-p", r#"[{"op":"remove","path":"/spec/nothere"}]"#],
        None,
    );
    assert!(!err.is_empty());
}

#[test]
fn label_annotate_and_edit_change_the_object() {
    let c = Cluster::start();
    c.apply(SERVICE);
    c.ok(&["label", "svc", "service-clusterip", "env=prod"]);
    c.ok(&["annotate", "svc", "service-clusterip", "owner=team-a"]);
    let svc = json(&c.ok(&["get", "svc", "service-clusterip", "-o", "json"]));
    assert_eq!(svc["metadata"]["labels"]["env"], "prod");
    assert_eq!(svc["metadata"]["annotations"]["owner"], "team-a");
    // Changing an existing label needs --overwrite, as with kube-apiserver.
    let err = c.fails(&["label", "svc", "service-clusterip", "env=dev"], None);
    assert!(err.contains("already has a value"), "{err}");
    c.ok(&["label", "svc", "service-clusterip", "env-"]);

    // kubectl edit with a scripted editor.
    let editor = c.dir.path().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsed -i 's/app: nginx-pod/app: edited/' \"$1\"\n").expect("write");
    std::process::Command::new("chmod").arg("+x").arg(&editor).status().expect("chmod");
    let out = std::process::Command::new(KUBECTL)
        .args(["--kubeconfig", c.kubeconfig().to_str().expect("path"), "edit", "svc", "service-clusterip"])
        .env("KUBE_EDITOR", &editor)
        .output()
        .expect("kubectl edit");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svc = json(&c.ok(&["get", "svc", "service-clusterip", "-o", "json"]));
    assert_eq!(svc["spec"]["selector"]["app"], "edited");
    assert!(svc["metadata"]["labels"].get("env").is_none());
}

#[test]
fn deployments_scale_and_expose() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "web", "--image=svcnet/echoserver:1.0", "--replicas=2", "--port=8080"]);
    c.ok(&["scale", "deployment", "web", "--replicas=5"]);
    let d = json(&c.ok(&["get", "deploy", "web", "-o", "json"]));
    assert_eq!(d["spec"]["replicas"], 5);
    assert_eq!(d["metadata"]["generation"], 2);
    let scale = json(&c.ok(&["get", "--raw", "/apis/apps/v1/namespaces/default/deployments/web/scale"]));
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 5);
    assert_eq!(scale["status"]["selector"], "app=web");
    c.ok(&["expose", "deployment", "web", "--port=80", "--target-port=8080"]);
    let svc = json(&c.ok(&["get", "svc", "web", "-o", "json"]));
    assert_eq!(svc["spec"]["selector"]["app"], "web");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    let out = c.ok(&["get", "deploy"]);
    let header: Vec<&str> = out.lines().next().expect("header").split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
}

#[test]
fn create_secret_tls_stores_the_pair() {
    let c = Cluster::start();
    // The API server's own pair is as good a certificate as any.
    c.ok(&[
        "create",
        "secret",
        "tls",
        "tls-secret",
        "--cert",
        c.pki("apiserver.crt").to_str().expect("path"),
        "--key",
        c.pki("apiserver.key").to_str().expect("path"),
    ]);
    let s = json(&c.ok(&["get", "secret", "tls-secret", "-o", "json"]));
    assert_eq!(s["type"], "kubernetes.io/tls");
    assert!(s["data"]["tls.crt"].is_string() && s["data"]["tls.key"].is_string());
    let out = c.ok(&["get", "secrets"]);
    assert!(out.contains("kubernetes.io/tls"), "{out}");
}

#[test]
fn delete_by_file_and_name_returns_promptly() {
    let c = Cluster::start();
    let path = c.dir.path().join("svc.yaml");
    std::fs::write(&path, SERVICE).expect("write");
    c.ok(&["apply", "-f", path.to_str().expect("path")]);
    let start = std::time::Instant::now();
    let out = c.ok(&["delete", "-f", path.to_str().expect("path")]);
    assert!(out.contains("deleted"), "{out}");
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    let err = c.fails(&["get", "svc", "service-clusterip"], None);
    assert!(err.contains("NotFound") && err.contains("services \"service-clusterip\" not found"), "{err}");
}

#[test]
fn finalizers_hold_an_object_until_they_are_removed() {
    let c = Cluster::start();
    c.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\ndata:\n  a: b\n",
    );
    c.ok(&["delete", "configmap", "held", "--wait=false"]);
    let cm = json(&c.ok(&["get", "configmap", "held", "-o", "json"]));
    assert!(cm["metadata"]["deletionTimestamp"].is_string(), "{cm}");
    c.ok(&["patch", "configmap", "held", "--type=json", "-p", r#"[{"op":"remove","path":"/metadata/finalizers"}]"#]);
    let err = c.fails(&["get", "configmap", "held"], None);
    assert!(err.contains("NotFound"), "{err}");
}

#[test]
fn namespaces_are_emptied_and_removed_on_delete() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "dev"]);
    c.ok(&["-n", "dev", "create", "configmap", "one", "--from-literal=a=b"]);
    c.ok(&["delete", "namespace", "dev", "--timeout=20s"]);
    let err = c.fails(&["get", "namespace", "dev"], None);
    assert!(err.contains("NotFound"), "{err}");
    let err = c.fails(&["delete", "namespace", "default"], None);
    assert!(err.contains("may not be deleted"), "{err}");
}

#[test]
fn server_side_apply_tracks_managers_and_reports_conflicts() {
    let c = Cluster::start();
    let out = c.ok_with(KUBECTL, &["apply", "--server-side", "-f", "-"], Some(SERVICE));
    assert!(out.contains("serverside-applied"), "{out}");
    let svc = json(&c.ok(&["get", "svc", "service-clusterip", "-o", "json", "--show-managed-fields"]));
    let managers: Vec<&str> = svc["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"kubectl"), "{svc}");

    // Another manager setting the same field to another value conflicts.
    let other = SERVICE.replace("app: nginx-pod", "app: other");
    let err = c.fails(&["apply", "--server-side", "--field-manager=someone-else", "-f", "-"], Some(&other));
    assert!(err.contains("conflict"), "{err}");
    // ... unless it forces ownership.
    c.ok_with(
        KUBECTL,
        &["apply", "--server-side", "--field-manager=someone-else", "--force-conflicts", "-f", "-"],
        Some(&other),
    );
    let svc = json(&c.ok(&["get", "svc", "service-clusterip", "-o", "json"]));
    assert_eq!(svc["spec"]["selector"]["app"], "other");
}
