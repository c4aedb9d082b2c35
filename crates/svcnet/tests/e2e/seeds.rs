//! The seed walkthroughs, replayed against `svcnet up`.
//!
//! `examples/` holds every Service, Endpoints, Deployment, Pod and Ingress
//! manifest of the blog posts our users follow (the seed set). These tests
//! apply each file with kubectl and then check the `kubectl get` and
//! `kubectl describe` output the posts show, except for the IPs and ports
//! the cluster picks itself.
//!
//! There are no nodes yet, so the tests play the kubelet: they mark pods
//! Running and Ready, at the pod IPs the seeds show, through the status
//! subresource. Start at [`Sandbox::up`] and [`seed_000_dev`].

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Output;

use crate::assert_eventually;
use crate::harness::{Cluster, KUBECTL, json};

/// Seed 000's pods (`kubectl get pods -n dev -o wide`), in the order of
/// their names there: pod IP and the IP of the node it ran on.
const SEED_000_PODS: [(&str, &str); 3] =
    [("10.244.1.40", "172.18.0.2"), ("10.244.2.33", "172.18.0.3"), ("10.244.1.39", "172.18.0.2")];

/// What seed 000 shows as the Endpoints of every app=nginx-pod Service.
const SEED_000_ENDPOINTS: &str = "10.244.1.39:80,10.244.1.40:80,10.244.2.33:80";

/// Seed 000's objects in namespace `dev`, in the order the seed creates
/// them, with what `kubectl create -f` answers (the Ingress part's
/// Deployments are left out: their pods would share pc-deployment's
/// app=nginx-pod label and never get IPs).
const SEED_000_DEV: &[(&str, &str)] = &[
    ("namespace-dev.yaml", "namespace/dev created"),
    ("service-manifest.yaml", "service/service created"),
    ("pc-deployment.yaml", "deployment.apps/pc-deployment created"),
    ("service-clusterip.yaml", "service/service-clusterip created"),
    ("service-clusterip-clientip.yaml", "service/service-clusterip-clientip created"),
    ("service-headliness.yaml", "service/service-headliness created"),
    ("service-nodeport.yaml", "service/service-nodeport created"),
    ("service-externalname.yaml", "service/service-externalname created"),
    ("nginx-service.yaml", "service/nginx-service created"),
    ("tomcat-service.yaml", "service/tomcat-service created"),
    ("tls-secret.yaml", "secret/tls-secret created"),
    ("ingress-http.yaml", "ingress.networking.k8s.io/ingress-http created"),
    ("ingress-https.yaml", "ingress.networking.k8s.io/ingress-https created"),
];

/// Seed 001's objects, all in namespace `default`.
const SEED_001: &[&str] = &[
    "service-web-clusterip.yaml",
    "deploy-webserver.yaml",
    "pod-client.yaml",
    "service-web-clusterip-static.yaml",
    "service-web-nodeport.yaml",
    "service-web-lb.yaml",
    "service-web-externalips.yaml",
];

/// Seeds 002 and 003's Services and Endpoints.
const SEEDS_002_003: &[&str] = &[
    "namespace-prod.yaml",
    "service-nginx-clusterip.yaml",
    "my-service-multiport.yaml",
    "my-service.yaml",
    "my-service-endpoints.yaml",
    "my-service-externalname.yaml",
    "service-nginx-headless.yaml",
    "deployment-nginx.yaml",
    "service-internal-traffic-policy.yaml",
    "my-service-with-selector.yaml",
    "my-nodeport-service.yaml",
    "my-service-externalips.yaml",
];

/// Seed 004's objects (the hdls examples).
const SEED_004: &[&str] = &[
    "hdls.yaml",
    "hdls-headless.yaml",
    "hdls-no-selector.yaml",
    "hdls-no-selector-endpoints.yaml",
    "hdls-multiport.yaml",
    "hdls-pod.yaml",
    "hdls-pod-hostnetwork.yaml",
    "hdls-nodeport.yaml",
];

/// A running `svcnet up` (API server and controllers) on its own data
/// directory, driven by kubectl: the harness's [`Cluster`] with the few
/// helpers these tests add.
struct Sandbox(Cluster);

impl Sandbox {
    fn up() -> Sandbox {
        Sandbox(Cluster::start())
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        self.0.kubectl_with(KUBECTL, args, None)
    }

    /// Runs kubectl; its stdout, or the whole output as the error.
    fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = self.kubectl(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "kubectl {}\nstdout: {stdout}\nstderr: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Runs kubectl and fails the test unless it succeeds.
    fn ok(&self, args: &[&str]) -> String {
        self.run(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `kubectl apply -f examples/<file>`, which must succeed.
    fn apply(&self, file: &str) -> String {
        let path = example(file);
        self.ok(&["apply", "-f", path.to_str().expect("UTF-8 path")])
    }

    fn apply_all(&self, files: &[&str]) {
        for file in files {
            self.apply(file);
        }
    }

    /// Runs kubectl, returning its output whether or not it succeeded (for
    /// polling and for failure messages).
    fn text(&self, args: &[&str]) -> String {
        self.run(args).unwrap_or_else(|e| e)
    }
}

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn example(file: &str) -> PathBuf {
    examples_dir().join(file)
}

/// Every manifest in `examples/`, namespaces first (the rest need them).
fn example_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(examples_dir())
        .expect("read examples/")
        .map(|entry| entry.expect("examples/ entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json"))
        .collect();
    files.sort_by_key(|name| (!name.starts_with("namespace-"), name.clone()));
    files
}

/// A kubectl table, one map of column → value per row. Columns are cut at
/// the header's offsets, since values such as an Ingress's `80, 443` hold
/// spaces; headers are separated by at least two spaces (kubectl's padding
/// is three) and may hold one (`NOMINATED NODE`).
fn table(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else { return Vec::new() };
    let bytes = header.as_bytes();
    let mut starts = vec![0];
    for i in 2..bytes.len() {
        if bytes[i] != b' ' && bytes[i - 1] == b' ' && bytes[i - 2] == b' ' {
            starts.push(i);
        }
    }
    let cut = |line: &str, i: usize| -> String {
        let from = starts[i].min(line.len());
        let to = starts.get(i + 1).map_or(line.len(), |&s| s.min(line.len()));
        line.get(from..to).unwrap_or("").trim().to_string()
    };
    let names: Vec<String> = (0..starts.len()).map(|i| cut(header, i)).collect();
    lines.map(|line| names.iter().enumerate().map(|(i, name)| (name.clone(), cut(line, i))).collect()).collect()
}

/// The row named `name` of a kubectl table.
fn row(text: &str, name: &str) -> BTreeMap<String, String> {
    table(text)
        .into_iter()
        .find(|r| r.get("NAME").map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{text}"))
}

/// Checks the listed columns of row `name`, reporting every mismatch.
fn assert_row(text: &str, name: &str, expected: &[(&str, &str)]) {
    let row = row(text, name);
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(col, want)| row.get(*col).map(String::as_str) != Some(*want))
        .map(|(col, want)| format!("{col}: want {want:?}, got {:?}", row.get(*col)))
        .collect();
    assert!(wrong.is_empty(), "row {name}: {}\nin:\n{text}", wrong.join("; "));
}

/// `kubectl describe` fields as (key, value with runs of blanks collapsed),
/// in order; a key may repeat (one `Port:` per port).
fn described(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('\t'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect()
}

/// An address list such as `10.244.1.40:80,10.244.1.39:80`, sorted: since
/// kubectl 1.32 `describe` reads EndpointSlices, whose endpoints Kubernetes
/// keeps in no particular order (the seeds' older kubectl read the sorted
/// Endpoints object).
fn sorted_list(list: &str) -> String {
    let mut items: Vec<&str> = list.split(',').collect();
    items.sort_unstable();
    items.join(",")
}

/// The `kubectl describe` fields in `expected` that `text` lacks, each with
/// what it has instead. Endpoints compare as sets.
fn missing_fields(text: &str, expected: &[(&str, &str)]) -> Vec<String> {
    let fields = described(text);
    let same = |key: &str, got: &str, want: &str| {
        if key == "Endpoints" { sorted_list(got) == sorted_list(want) } else { got == want }
    };
    expected
        .iter()
        .filter(|(key, want)| !fields.iter().any(|(k, v)| k == key && same(key, v, want)))
        .map(|(key, want)| {
            let got: Vec<&String> = fields.iter().filter(|(k, _)| k == key).map(|(_, v)| v).collect();
            format!("{key}: want {want:?}, got {got:?}")
        })
        .collect()
}

/// Runs `kubectl describe args` until it shows the `expected` fields (the
/// EndpointSlices it reads may trail the Endpoints a test waited for).
fn wait_for_described(sb: &Sandbox, args: &[&str], expected: &[(&str, &str)]) {
    let args: Vec<&str> = ["describe"].iter().chain(args).copied().collect();
    assert_eventually!(30, missing_fields(&sb.text(&args), expected).is_empty(), "{}", {
        let text = sb.text(&args);
        format!("{}\nin:\n{text}", missing_fields(&text, expected).join("\n"))
    });
}

/// A cluster IP allocated from svcnet's default service range, 10.96.0.0/12.
fn is_allocated_cluster_ip(ip: &str) -> bool {
    ip.parse::<Ipv4Addr>().is_ok_and(|ip| u32::from(ip) >> 20 == u32::from(Ipv4Addr::new(10, 96, 0, 0)) >> 20)
}

/// `PORT(S)` of a NodePort or LoadBalancer Service port whose node port was
/// allocated: `<port>:<30000-32767>/TCP`.
fn is_allocated_node_port(ports: &str, port: u16) -> bool {
    ports
        .strip_prefix(&format!("{port}:"))
        .and_then(|rest| rest.strip_suffix("/TCP"))
        .and_then(|n| n.parse::<u16>().ok())
        .is_some_and(|n| (30000..=32767).contains(&n))
}

/// Names of the pods matching `selector` in `ns` that start with `prefix`.
fn pod_names(sb: &Sandbox, ns: &str, selector: &str, prefix: &str) -> Vec<String> {
    let out = sb.text(&["get", "pods", "-n", ns, "-l", selector, "-o", "jsonpath={.items[*].metadata.name}"]);
    let mut names: Vec<String> = out.split_whitespace().filter(|n| n.starts_with(prefix)).map(str::to_string).collect();
    names.sort();
    names
}

/// Waits for `count` pods and returns their names, sorted.
fn wait_for_pods(sb: &Sandbox, ns: &str, selector: &str, prefix: &str, count: usize) -> Vec<String> {
    assert_eventually!(
        30,
        pod_names(sb, ns, selector, prefix).len() == count,
        "want {count} pods {prefix}* ({selector}) in {ns}:\n{}",
        sb.text(&["get", "pods", "-n", ns, "-o", "wide", "--show-labels"])
    );
    pod_names(sb, ns, selector, prefix)
}

/// Reports a pod Running and Ready at `ip` on the node at `host_ip`, the way
/// the kubelet does: through the status subresource.
fn mark_running(sb: &Sandbox, ns: &str, pod: &str, ip: &str, host_ip: &str) {
    let spec = json(&sb.ok(&["get", "pod", pod, "-n", ns, "-o", "json"]));
    let now = "2026-01-01T00:00:00Z";
    let containers: Vec<serde_json::Value> = spec["spec"]["containers"]
        .as_array()
        .expect("pod has containers")
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c["name"], "image": c["image"], "imageID": "", "containerID": "",
                "ready": true, "started": true, "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            })
        })
        .collect();
    let condition = |t: &str| serde_json::json!({"type": t, "status": "True", "lastTransitionTime": now});
    let status = serde_json::json!({"status": {
        "phase": "Running",
        "podIP": ip, "podIPs": [{"ip": ip}],
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "startTime": now,
        "conditions": [condition("Initialized"), condition("Ready"), condition("ContainersReady"), condition("PodScheduled")],
        "containerStatuses": containers,
    }});
    sb.ok(&["patch", "pod", pod, "-n", ns, "--subresource=status", "--type=merge", "-p", &status.to_string()]);
}

/// Marks pc-deployment's three pods Running and Ready at the seed's IPs.
fn mark_pc_deployment_ready(sb: &Sandbox) {
    let pods = wait_for_pods(sb, "dev", "app=nginx-pod", "pc-deployment-", 3);
    for (pod, (ip, host)) in pods.iter().zip(SEED_000_PODS) {
        mark_running(sb, "dev", pod, ip, host);
    }
}

/// Seed 000's `dev` namespace, made with `kubectl create -f` as the seed
/// does: its Services, Ingresses and pc-deployment, with the three pods
/// Running and Ready at the seed's IPs when `ready`.
fn seed_000_dev(ready: bool) -> Sandbox {
    let sb = Sandbox::up();
    for (file, created) in SEED_000_DEV {
        let out = sb.ok(&["create", "-f", example(file).to_str().expect("UTF-8 path")]);
        assert_eq!(out.trim(), *created, "kubectl create -f {file}");
    }
    if ready {
        mark_pc_deployment_ready(&sb);
    }
    sb
}

/// Waits until `kubectl get ep <name>` shows `want` as its ENDPOINTS.
fn wait_for_endpoints(sb: &Sandbox, ns: &str, name: &str, want: &str) {
    let endpoints =
        || table(&sb.text(&["get", "ep", name, "-n", ns])).first().and_then(|r| r.get("ENDPOINTS").cloned());
    assert_eventually!(
        30,
        endpoints().as_deref() == Some(want),
        "endpoints {ns}/{name}: want {want}, got {:?}\n{}",
        endpoints(),
        sb.text(&["get", "ep", name, "-n", ns, "-o", "yaml"])
    );
}

#[test]
fn every_example_names_its_seed_and_is_listed_in_the_examples_readme() {
    let readme = std::fs::read_to_string(example("README.md")).expect("examples/README.md");
    for file in example_files() {
        let text = std::fs::read_to_string(example(&file)).expect("read example");
        assert!(text.starts_with("# Seed"), "{file} does not open with a comment naming its seed");
        assert!(readme.contains(&format!("`{file}`")), "examples/README.md does not list {file}");
    }
}

#[test]
fn every_example_applies_cleanly_and_applying_them_again_changes_nothing() {
    let sb = Sandbox::up();
    let files = example_files();
    assert!(files.len() >= 40, "examples/ lost manifests: {files:?}");
    let mut failures = Vec::new();
    let mut objects = 0;
    for file in &files {
        let path = example(file);
        match sb.run(&["apply", "-f", path.to_str().expect("UTF-8 path")]) {
            Ok(out) if out.lines().all(|l| l.ends_with(" created")) => objects += out.lines().count(),
            Ok(out) => failures.push(format!("{file}: not created:\n{out}")),
            Err(e) => failures.push(format!("{file}: {e}")),
        }
    }
    assert!(failures.is_empty(), "examples that do not apply cleanly:\n{}", failures.join("\n"));

    // Applying the whole directory again is a no-op, as on Kubernetes: the
    // server's defaults and the controllers' writes do not show up as
    // differences from the manifests.
    let again = sb.ok(&["apply", "-f", examples_dir().to_str().expect("UTF-8 path")]);
    let changed: Vec<&str> = again.lines().filter(|l| !l.ends_with(" unchanged")).collect();
    assert!(changed.is_empty(), "second apply changed objects:\n{}", changed.join("\n"));
    assert_eq!(again.lines().count(), objects, "second apply saw a different set of objects:\n{again}");
}

#[test]
fn get_svc_wide_in_dev_shows_the_seed_services_with_their_types_ips_ports_and_selectors() {
    let sb = seed_000_dev(false);
    let svc = sb.ok(&["get", "svc", "-n", "dev", "-o", "wide"]);
    let nginx_pod = |rest: &[(&'static str, &'static str)]| {
        [rest, &[("EXTERNAL-IP", "<none>"), ("SELECTOR", "app=nginx-pod")]].concat()
    };
    assert_row(
        &svc,
        "service-clusterip",
        &nginx_pod(&[("TYPE", "ClusterIP"), ("CLUSTER-IP", "10.97.97.97"), ("PORT(S)", "80/TCP")]),
    );
    assert_row(
        &svc,
        "service-headliness",
        &nginx_pod(&[("TYPE", "ClusterIP"), ("CLUSTER-IP", "None"), ("PORT(S)", "80/TCP")]),
    );
    assert_row(&svc, "service-nodeport", &nginx_pod(&[("TYPE", "NodePort"), ("PORT(S)", "80:30002/TCP")]));
    assert_row(&svc, "service-clusterip-clientip", &nginx_pod(&[("TYPE", "ClusterIP"), ("PORT(S)", "80/TCP")]));
    assert_row(
        &svc,
        "service-externalname",
        &[
            ("TYPE", "ExternalName"),
            ("CLUSTER-IP", "<none>"),
            ("EXTERNAL-IP", "www.baidu.com"),
            ("PORT(S)", "<none>"),
            ("SELECTOR", "<none>"),
        ],
    );
    assert_row(
        &svc,
        "service",
        &[("TYPE", "NodePort"), ("EXTERNAL-IP", "<none>"), ("PORT(S)", "3017:31122/TCP"), ("SELECTOR", "app=nginx")],
    );
    assert_row(
        &svc,
        "nginx-service",
        &[("TYPE", "ClusterIP"), ("CLUSTER-IP", "None"), ("EXTERNAL-IP", "<none>"), ("PORT(S)", "80/TCP")],
    );
    assert_row(
        &svc,
        "tomcat-service",
        &[("TYPE", "ClusterIP"), ("CLUSTER-IP", "None"), ("EXTERNAL-IP", "<none>"), ("PORT(S)", "8080/TCP")],
    );
    for name in ["service-nodeport", "service-clusterip-clientip", "service"] {
        let ip = &row(&svc, name)["CLUSTER-IP"];
        assert!(is_allocated_cluster_ip(ip), "{name} got cluster IP {ip:?}, not one from 10.96.0.0/12:\n{svc}");
    }
    // The seed looks at one Service by name, too.
    let one = sb.ok(&["get", "svc", "service-headliness", "-n", "dev", "-o", "wide"]);
    assert_row(&one, "service-headliness", &[("TYPE", "ClusterIP"), ("CLUSTER-IP", "None"), ("PORT(S)", "80/TCP")]);
    assert_eq!(table(&one).len(), 1, "{one}");
}

#[test]
fn ready_pc_deployment_pods_show_the_seed_ips_and_become_the_endpoints_of_every_nginx_pod_service() {
    let sb = seed_000_dev(false);
    // Pods without IPs are no endpoints yet: the Endpoints exist, empty.
    wait_for_endpoints(&sb, "dev", "service-clusterip", "<none>");
    mark_pc_deployment_ready(&sb);

    let pods = sb.ok(&["get", "pods", "-n", "dev", "-o", "wide", "--show-labels"]);
    let names = pod_names(&sb, "dev", "app=nginx-pod", "pc-deployment-");
    for (name, (ip, _)) in names.iter().zip(SEED_000_PODS) {
        // pc-deployment-<pod-template-hash>-<5 random characters>, as in the seed.
        let parts: Vec<&str> = name.split('-').collect();
        assert!(
            parts.len() == 4 && !parts[2].is_empty() && parts[3].len() == 5,
            "pod name {name} is not pc-deployment-<hash>-<xxxxx>"
        );
        let r = row(&pods, name);
        assert_eq!((r["READY"].as_str(), r["STATUS"].as_str(), r["IP"].as_str()), ("1/1", "Running", ip), "{pods}");
        assert_eq!(r["LABELS"], format!("app=nginx-pod,pod-template-hash={}", parts[2]), "{pods}");
    }

    for service in [
        "service-clusterip",
        "service-headliness",
        "service-nodeport",
        "service-clusterip-clientip",
        "service",
        "nginx-service",
    ] {
        let want = if service == "service" { "<none>" } else { SEED_000_ENDPOINTS };
        wait_for_endpoints(&sb, "dev", service, want);
    }
    // `service` selects app=nginx and targets 5003: it has no pods.
    let ep = sb.ok(&["get", "ep", "-n", "dev"]);
    assert_row(&ep, "service-clusterip", &[("ENDPOINTS", SEED_000_ENDPOINTS)]);
    assert_row(&ep, "tomcat-service", &[("ENDPOINTS", "<none>")]);
    // ExternalName Services have no selector and get no Endpoints.
    assert!(
        table(&ep).iter().all(|r| r["NAME"] != "service-externalname"),
        "ExternalName Service got Endpoints:\n{ep}"
    );
}

#[test]
fn describe_service_clusterip_shows_what_the_seed_shows() {
    let sb = seed_000_dev(true);
    wait_for_endpoints(&sb, "dev", "service-clusterip", SEED_000_ENDPOINTS);
    wait_for_described(
        &sb,
        &["svc", "service-clusterip", "-n", "dev"],
        &[
            ("Name", "service-clusterip"),
            ("Namespace", "dev"),
            ("Labels", "<none>"),
            ("Selector", "app=nginx-pod"),
            ("Type", "ClusterIP"),
            ("IP", "10.97.97.97"),
            ("Port", "<unset> 80/TCP"),
            ("TargetPort", "80/TCP"),
            ("Endpoints", SEED_000_ENDPOINTS),
            ("Session Affinity", "None"),
        ],
    );

    // The seed ends with `kubectl delete -f service-clusterip.yaml`; the
    // Service's Endpoints and EndpointSlices go with it.
    let deleted = sb.ok(&["delete", "-f", example("service-clusterip.yaml").to_str().expect("UTF-8 path")]);
    assert_eq!(deleted.trim(), r#"service "service-clusterip" deleted"#);
    let endpoints = || sb.ok(&["get", "ep", "-n", "dev", "-o", "name"]);
    let slices = || {
        sb.ok(&[
            "get",
            "endpointslices",
            "-n",
            "dev",
            "-l",
            "kubernetes.io/service-name=service-clusterip",
            "-o",
            "name",
        ])
    };
    assert_eventually!(
        30,
        !endpoints().lines().any(|l| l == "endpoints/service-clusterip") && slices().trim().is_empty(),
        "left behind:\n{}{}",
        endpoints(),
        slices()
    );
}

#[test]
fn headless_service_has_no_cluster_ip_and_describes_with_ip_none_and_the_pod_endpoints() {
    let sb = seed_000_dev(true);
    assert_eq!(sb.ok(&["get", "svc", "service-headliness", "-n", "dev", "-o", "jsonpath={.spec.clusterIP}"]), "None");
    wait_for_endpoints(&sb, "dev", "service-headliness", SEED_000_ENDPOINTS);
    wait_for_described(
        &sb,
        &["svc", "service-headliness", "-n", "dev"],
        &[
            ("Name", "service-headliness"),
            ("Selector", "app=nginx-pod"),
            ("Type", "ClusterIP"),
            ("IP", "None"),
            ("Port", "<unset> 80/TCP"),
            ("TargetPort", "80/TCP"),
            ("Endpoints", SEED_000_ENDPOINTS),
            ("Session Affinity", "None"),
        ],
    );
}

#[test]
fn client_ip_session_affinity_defaults_to_a_timeout_of_10800_seconds() {
    let sb = seed_000_dev(true);
    let timeout = sb.ok(&[
        "get",
        "svc",
        "service-clusterip-clientip",
        "-n",
        "dev",
        "-o",
        "jsonpath={.spec.sessionAffinity} {.spec.sessionAffinityConfig.clientIP.timeoutSeconds}",
    ]);
    assert_eq!(timeout, "ClientIP 10800");
    // Without affinity there is no affinity config to default.
    let none = sb.ok(&["get", "svc", "service-clusterip", "-n", "dev", "-o", "json"]);
    let none = json(&none);
    assert_eq!(none["spec"]["sessionAffinity"], "None");
    assert!(none["spec"]["sessionAffinityConfig"].is_null(), "{none}");
    wait_for_endpoints(&sb, "dev", "service-clusterip-clientip", SEED_000_ENDPOINTS);
    wait_for_described(
        &sb,
        &["svc", "service-clusterip-clientip", "-n", "dev"],
        &[("Session Affinity", "ClientIP"), ("Endpoints", SEED_000_ENDPOINTS)],
    );
}

#[test]
fn pc_deployment_is_ready_3_of_3_and_its_rollout_completes_only_once_its_pods_are_ready() {
    let sb = seed_000_dev(false);
    wait_for_pods(&sb, "dev", "app=nginx-pod", "pc-deployment-", 3);
    let deploy = || sb.text(&["get", "deploy", "pc-deployment", "-n", "dev", "-o", "wide"]);
    assert_eventually!(
        30,
        table(&deploy()).first().is_some_and(|r| r["READY"] == "0/3" && r["UP-TO-DATE"] == "3"),
        "pending pods: want READY 0/3, UP-TO-DATE 3:\n{}",
        deploy()
    );
    let pending = sb.kubectl(&["rollout", "status", "deployment/pc-deployment", "-n", "dev", "--timeout=2s"]);
    assert!(
        !pending.status.success(),
        "rollout reported complete with no pod ready: {}",
        String::from_utf8_lossy(&pending.stdout)
    );

    mark_pc_deployment_ready(&sb);
    assert_eventually!(
        30,
        table(&deploy())
            .first()
            .is_some_and(|r| r["READY"] == "3/3" && r["UP-TO-DATE"] == "3" && r["AVAILABLE"] == "3"),
        "want READY 3/3, UP-TO-DATE 3, AVAILABLE 3:\n{}",
        deploy()
    );
    assert_row(
        &deploy(),
        "pc-deployment",
        &[("CONTAINERS", "nginx"), ("IMAGES", "svcnet/echoserver:1.0"), ("SELECTOR", "app=nginx-pod")],
    );
    let done = sb.ok(&["rollout", "status", "deployment/pc-deployment", "-n", "dev", "--timeout=30s"]);
    assert!(done.contains("deployment \"pc-deployment\" successfully rolled out"), "{done}");
}

#[test]
fn selectorless_services_keep_their_manual_endpoints_which_are_mirrored_into_endpointslices() {
    let sb = Sandbox::up();
    sb.apply_all(&[
        "my-service.yaml",
        "my-service-endpoints.yaml",
        "hdls-no-selector.yaml",
        "hdls-no-selector-endpoints.yaml",
    ]);
    for (name, endpoint, ip, port) in
        [("my-service", "1.2.3.4:9376", "1.2.3.4", 9376), ("hdls-no-selector", "1.2.3.4:8000", "1.2.3.4", 8000)]
    {
        let slices = || {
            serde_json::from_str::<serde_json::Value>(&sb.text(&[
                "get",
                "endpointslices",
                "-l",
                &format!("kubernetes.io/service-name={name}"),
                "-o",
                "json",
            ]))
            .unwrap_or_default()
        };
        assert_eventually!(
            30,
            slices()["items"].as_array().is_some_and(|items| items.len() == 1),
            "no mirrored EndpointSlice for {name}: {}",
            sb.text(&["get", "endpointslices", "-o", "yaml"])
        );
        let slice = &slices()["items"][0];
        assert_eq!(slice["addressType"], "IPv4", "{slice}");
        assert_eq!(slice["endpoints"][0]["addresses"][0], ip, "{slice}");
        assert_eq!(slice["ports"][0]["port"], port, "{slice}");
        assert_eq!(
            slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
            "endpointslicemirroring-controller.k8s.io",
            "{slice}"
        );

        // The Endpoints controller leaves a selector-less Service's Endpoints alone.
        wait_for_endpoints(&sb, "default", name, endpoint);
        wait_for_described(
            &sb,
            &["svc", name],
            &[("Selector", "<none>"), ("Type", "ClusterIP"), ("Endpoints", endpoint)],
        );
    }
    let slices = sb.ok(&["get", "endpointslices"]);
    let mirrored: Vec<_> = table(&slices).into_iter().filter(|r| r["NAME"].starts_with("my-service-")).collect();
    assert_eq!(mirrored.len(), 1, "{slices}");
    assert_eq!(
        (mirrored[0]["ADDRESSTYPE"].as_str(), mirrored[0]["PORTS"].as_str(), mirrored[0]["ENDPOINTS"].as_str()),
        ("IPv4", "9376", "1.2.3.4"),
        "{slices}"
    );
}

#[test]
fn manual_endpoints_applied_before_their_selectorless_service_are_kept() {
    // `kubectl apply -f examples/` goes through the files in name order, so
    // my-service-endpoints.yaml comes before my-service.yaml. Kubernetes'
    // Endpoints controller acts on Services, Pods and Endpoints deletions
    // only: an Endpoints object that arrives before its Service stays.
    let sb = Sandbox::up();
    sb.apply_all(&["my-service-endpoints.yaml", "my-service.yaml"]);
    let mirrored = || sb.text(&["get", "endpointslices", "-l", "kubernetes.io/service-name=my-service", "-o", "name"]);
    assert_eventually!(
        30,
        mirrored().lines().count() == 1,
        "no mirrored EndpointSlice for my-service: {}\nEndpoints: {}",
        mirrored(),
        sb.text(&["get", "ep", "my-service"])
    );
    wait_for_endpoints(&sb, "default", "my-service", "1.2.3.4:9376");
}

#[test]
fn contrail_web_services_list_and_describe_like_the_seed_once_the_webserver_pod_is_ready() {
    let sb = Sandbox::up();
    sb.apply_all(SEED_001);
    // svcnet's LoadBalancer allocator gives service-web-lb an address from
    // its pool where the seed's cluster (without one) shows <pending>.
    let lb_ip = || sb.ok(&["get", "svc", "service-web-lb", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"]);
    crate::assert_eventually!(20, !lb_ip().is_empty(), "service-web-lb never got an address");
    let lb_ip: &'static str = Box::leak(lb_ip().into_boxed_str());
    assert!(lb_ip.starts_with("172.18.255."), "{lb_ip}");
    let svc = sb.ok(&["get", "svc", "-o", "wide"]);
    let web = |rest: &[(&'static str, &'static str)]| [rest, &[("SELECTOR", "app=webserver")]].concat();
    assert_row(
        &svc,
        "service-web-clusterip",
        &web(&[("TYPE", "ClusterIP"), ("EXTERNAL-IP", "<none>"), ("PORT(S)", "8888/TCP")]),
    );
    assert_row(
        &svc,
        "service-web-clusterip-static",
        &web(&[
            ("TYPE", "ClusterIP"),
            ("CLUSTER-IP", "10.101.150.150"),
            ("EXTERNAL-IP", "<none>"),
            ("PORT(S)", "8888/TCP"),
        ]),
    );
    assert_row(
        &svc,
        "service-web-nodeport",
        &web(&[("TYPE", "NodePort"), ("EXTERNAL-IP", "<none>"), ("PORT(S)", "80:32001/TCP")]),
    );
    assert_row(&svc, "service-web-lb", &web(&[("TYPE", "LoadBalancer"), ("EXTERNAL-IP", lb_ip)]));
    assert_row(
        &svc,
        "service-web-externalips",
        &web(&[("TYPE", "ClusterIP"), ("EXTERNAL-IP", "101.101.101.1"), ("PORT(S)", "8888/TCP")]),
    );
    let lb_ports = &row(&svc, "service-web-lb")["PORT(S)"];
    assert!(
        is_allocated_node_port(lb_ports, 8888),
        "LoadBalancer needs a node port, 8888:<30000-32767>/TCP, got {lb_ports:?}"
    );
    for name in ["service-web-clusterip", "service-web-nodeport", "service-web-lb", "service-web-externalips"] {
        let ip = &row(&svc, name)["CLUSTER-IP"];
        assert!(is_allocated_cluster_ip(ip), "{name} got cluster IP {ip:?}:\n{svc}");
    }

    // The seed's one webserver pod on cent333 and the client pod on cent222.
    let webserver = wait_for_pods(&sb, "default", "app=webserver", "webserver-", 1);
    mark_running(&sb, "default", &webserver[0], "10.47.255.238", "10.85.188.21");
    mark_running(&sb, "default", "client", "10.47.255.252", "10.85.188.20");
    // The seed's set-based selector finds the same pod.
    let pods = sb.ok(&["get", "pod", "-o", "wide", "-l", "app in (webserver)"]);
    assert_eq!(table(&pods).len(), 1, "{pods}");
    assert_row(&pods, &webserver[0], &[("READY", "1/1"), ("STATUS", "Running"), ("IP", "10.47.255.238")]);

    for name in [
        "service-web-clusterip",
        "service-web-clusterip-static",
        "service-web-nodeport",
        "service-web-lb",
        "service-web-externalips",
    ] {
        wait_for_endpoints(&sb, "default", name, "10.47.255.238:80");
    }
    wait_for_described(
        &sb,
        &["service", "service-web-nodeport"],
        &[
            ("Name", "service-web-nodeport"),
            ("Namespace", "default"),
            ("Labels", "<none>"),
            ("Annotations", "<none>"),
            ("Selector", "app=webserver"),
            ("Type", "NodePort"),
            ("Port", "<unset> 80/TCP"),
            ("TargetPort", "80/TCP"),
            ("NodePort", "<unset> 32001/TCP"),
            ("Endpoints", "10.47.255.238:80"),
            ("Session Affinity", "None"),
            ("External Traffic Policy", "Cluster"),
        ],
    );
    wait_for_described(
        &sb,
        &["service", "service-web-externalips"],
        &[("External IPs", "101.101.101.1"), ("Port", "<unset> 8888/TCP"), ("TargetPort", "80/TCP")],
    );
}

#[test]
fn handbook_and_overview_services_list_with_their_types_ports_and_selectors() {
    let sb = Sandbox::up();
    sb.apply_all(SEEDS_002_003);
    let svc = sb.ok(&["get", "svc", "-o", "wide"]);
    let my_app = ("SELECTOR", "app=MyApp");
    assert_row(
        &svc,
        "nginx-clusterip",
        &[("TYPE", "ClusterIP"), ("EXTERNAL-IP", "<none>"), ("PORT(S)", "80/TCP"), ("SELECTOR", "run=nginx")],
    );
    assert_row(&svc, "my-service-multiport", &[("TYPE", "ClusterIP"), ("PORT(S)", "80/TCP,443/TCP"), my_app]);
    assert_row(
        &svc,
        "my-service",
        &[("TYPE", "ClusterIP"), ("EXTERNAL-IP", "<none>"), ("PORT(S)", "80/TCP"), ("SELECTOR", "<none>")],
    );
    assert_row(
        &svc,
        "nginx",
        &[("TYPE", "ClusterIP"), ("CLUSTER-IP", "None"), ("PORT(S)", "80/TCP"), ("SELECTOR", "app=nginx")],
    );
    assert_row(&svc, "my-service-local", &[("TYPE", "ClusterIP"), ("PORT(S)", "80/TCP"), my_app]);
    assert_row(&svc, "my-service-with-selector", &[("TYPE", "ClusterIP"), ("PORT(S)", "80/TCP"), my_app]);
    assert_row(
        &svc,
        "my-nodeport-service",
        &[("TYPE", "NodePort"), ("EXTERNAL-IP", "<none>"), ("PORT(S)", "80:30036/TCP"), my_app],
    );
    assert_row(
        &svc,
        "my-service-externalips",
        &[("TYPE", "ClusterIP"), ("EXTERNAL-IP", "80.11.12.10"), ("PORT(S)", "80/TCP"), my_app],
    );
    let prod = sb.ok(&["get", "svc", "-n", "prod", "-o", "wide"]);
    assert_row(
        &prod,
        "my-service",
        &[
            ("TYPE", "ExternalName"),
            ("CLUSTER-IP", "<none>"),
            ("EXTERNAL-IP", "my.database.example.com"),
            ("PORT(S)", "<none>"),
            ("SELECTOR", "<none>"),
        ],
    );

    // Seed 003's `kubectl get all` lists the NodePort Service among the rest.
    let all = sb.ok(&["get", "all"]);
    let line = all.lines().find(|l| l.starts_with("service/my-nodeport-service ")).unwrap_or_else(|| panic!("{all}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!((cells[1], cells[3], cells[4]), ("NodePort", "<none>", "80:30036/TCP"), "{all}");
    assert!(is_allocated_cluster_ip(cells[2]), "{all}");

    let text = sb.ok(&["describe", "svc", "my-service-multiport"]);
    let ports: Vec<(String, String)> =
        described(&text).into_iter().filter(|(k, _)| k == "Port" || k == "TargetPort").collect();
    let want =
        [("Port", "http 80/TCP"), ("TargetPort", "9376/TCP"), ("Port", "https 443/TCP"), ("TargetPort", "9377/TCP")];
    assert_eq!(ports, want.map(|(k, v)| (k.to_string(), v.to_string())), "{text}");
    wait_for_described(&sb, &["svc", "my-service-local"], &[("Internal Traffic Policy", "Local")]);

    // The headless nginx Service resolves to its two pods in the seed (dig
    // answers 172.26.1.5 and 172.26.2.5): those are its Endpoints.
    let pods = wait_for_pods(&sb, "default", "app=nginx", "nginx-", 2);
    mark_running(&sb, "default", &pods[0], "172.26.2.5", "10.0.0.2");
    mark_running(&sb, "default", &pods[1], "172.26.1.5", "10.0.0.8");
    wait_for_endpoints(&sb, "default", "nginx", "172.26.1.5:80,172.26.2.5:80");
    let ep = json(&sb.ok(&["get", "ep", "nginx", "-o", "json"]));
    assert_eq!(ep["subsets"][0]["ports"][0]["name"], "tcp-80-80-3b6tl", "{ep}");
    assert_eq!(ep["subsets"][0]["addresses"][0]["targetRef"]["kind"], "Pod", "{ep}");
}

#[test]
fn hdls_services_list_with_their_ports_and_send_traffic_to_the_hdls_pods() {
    let sb = Sandbox::up();
    sb.apply_all(SEED_004);
    let svc = sb.ok(&["get", "svc", "-o", "wide"]);
    let hdls = ("SELECTOR", "app=hdls");
    assert_row(&svc, "hdls", &[("TYPE", "ClusterIP"), ("EXTERNAL-IP", "<none>"), ("PORT(S)", "8080/TCP"), hdls]);
    assert_row(&svc, "hdls-headless", &[("TYPE", "ClusterIP"), ("CLUSTER-IP", "None"), ("PORT(S)", "8080/TCP"), hdls]);
    assert_row(&svc, "hdls-no-selector", &[("TYPE", "ClusterIP"), ("PORT(S)", "8080/TCP"), ("SELECTOR", "<none>")]);
    assert_row(&svc, "hdls-multiport", &[("TYPE", "ClusterIP"), ("PORT(S)", "8080/TCP,8080/UDP"), hdls]);
    assert_row(&svc, "hdls-nodeport", &[("TYPE", "NodePort"), ("PORT(S)", "8080:30800/TCP"), hdls]);

    // A hostNetwork pod's IP is its node's IP.
    mark_running(&sb, "default", "hdls-pod", "10.244.3.7", "172.18.0.4");
    mark_running(&sb, "default", "hdls-pod-hostnetwork", "172.18.0.5", "172.18.0.5");
    for name in ["hdls", "hdls-headless", "hdls-nodeport"] {
        wait_for_endpoints(&sb, "default", name, "10.244.3.7:8000,172.18.0.5:8000");
    }
    // Without targetPort both named ports forward to pod port 8080.
    let ep = json(&sb.ok(&["get", "ep", "hdls-multiport", "-o", "json"]));
    let mut ports: Vec<String> = ep["subsets"][0]["ports"]
        .as_array()
        .map(|ports| {
            ports.iter().map(|p| format!("{}/{}/{}", p["name"], p["port"], p["protocol"]).replace('"', "")).collect()
        })
        .unwrap_or_default();
    ports.sort();
    assert_eq!(ports, ["dns-tcp/8080/UDP", "dns/8080/TCP"], "{ep}");
}

#[test]
fn ingresses_list_their_hosts_and_ports_and_describe_their_rules_like_the_seed() {
    let sb = seed_000_dev(true);
    sb.apply_all(&["ingress-test.yaml", "hdls.yaml", "hdls-ingress.yaml"]);
    let ing = sb.ok(&["get", "ing", "-n", "dev"]);
    assert_row(&ing, "ingress-http", &[("HOSTS", "nginx.itheima.com,tomcat.itheima.com"), ("PORTS", "80")]);
    assert_row(&ing, "ingress-https", &[("HOSTS", "nginx.itheima.com,tomcat.itheima.com"), ("PORTS", "80, 443")]);
    let ing = sb.ok(&["get", "ing"]);
    assert_row(&ing, "test", &[("HOSTS", "foo.bar.com,bar.foo.com"), ("PORTS", "80")]);
    assert_row(&ing, "hdls-ingress", &[("HOSTS", "hdls.me"), ("PORTS", "80")]);

    // kubectl prints each host on a line of its own and its paths below it
    // (the seed's older kubectl put them on one line); the backends' address
    // lists compare as sets.
    let rules = |text: &str| -> Vec<String> {
        let lines: Vec<String> = text
            .lines()
            .map(|l| {
                let l = l.split_whitespace().collect::<Vec<_>>().join(" ");
                match l.strip_suffix(')').and_then(|l| l.split_once(" (")) {
                    Some((backend, list)) => format!("{backend} ({})", sorted_list(list)),
                    None => l,
                }
            })
            .collect();
        lines.windows(2).map(|w| format!("{} {}", w[0], w[1])).chain(lines.iter().cloned()).collect()
    };
    let nginx_rule = format!("nginx.itheima.com / nginx-service:80 ({SEED_000_ENDPOINTS})");
    for name in ["ingress-http", "ingress-https"] {
        let describe = || sb.text(&["describe", "ing", name, "-n", "dev"]);
        assert_eventually!(
            30,
            rules(&describe()).contains(&nginx_rule),
            "{name}: no rule {nginx_rule:?} in:\n{}",
            describe()
        );
        let text = describe();
        let lines = rules(&text);
        assert!(lines.iter().any(|l| l.starts_with("tomcat.itheima.com / tomcat-service:8080 ")), "{name}:\n{text}");
        if name == "ingress-https" {
            let tls = "tls-secret terminates nginx.itheima.com,tomcat.itheima.com".to_string();
            assert!(lines.contains(&tls), "{name}: no line {tls:?} in:\n{text}");
        }
    }
    let text = sb.ok(&["describe", "ing", "hdls-ingress"]);
    assert!(rules(&text).iter().any(|l| l.starts_with("hdls.me /web hdls:8080 ")), "{text}");
}

#[test]
fn ingress_in_extensions_v1beta1_as_the_seeds_write_it_is_refused_as_by_kubernetes_since_1_22() {
    let sb = Sandbox::up();
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = dir.path().join("ingress-http.yaml");
    std::fs::write(
        &seed,
        "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: ingress-http\nspec:\n  rules:\n  - host: nginx.itheima.com\n    http:\n      paths:\n      - path: /\n        backend:\n          serviceName: nginx-service\n          servicePort: 80\n",
    )
    .expect("write manifest");
    let err = sb
        .run(&["apply", "-f", seed.to_str().expect("UTF-8 path")])
        .expect_err("extensions/v1beta1 Ingress was accepted");
    assert!(err.contains(r#"no matches for kind "Ingress" in version "extensions/v1beta1""#), "{err}");
    // The examples' networking.k8s.io/v1 form is what works instead.
    sb.apply_all(&["namespace-dev.yaml", "ingress-http.yaml"]);
}

#[test]
fn node_port_8000_from_the_hdls_seed_is_rejected_as_outside_the_node_port_range() {
    let sb = Sandbox::up();
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = dir.path().join("hdls-nodeport.yaml");
    std::fs::write(
        &seed,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: hdls\nspec:\n  type: NodePort\n  ports:\n  - port: 8080\n    targetPort: 8000\n    nodePort: 8000\n  selector:\n    app: hdls\n",
    )
    .expect("write manifest");
    let err = sb.run(&["apply", "-f", seed.to_str().expect("UTF-8 path")]).expect_err("nodePort 8000 was accepted");
    let want = "spec.ports[0].nodePort: Invalid value: 8000: provided port is not in the valid range. The range of valid ports is 30000-32767";
    assert!(err.contains(want), "want {want:?} in:\n{err}");
    assert!(sb.run(&["get", "svc", "hdls"]).is_err(), "the rejected Service exists");
    sb.apply("hdls-nodeport.yaml");
}
