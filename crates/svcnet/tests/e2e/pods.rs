//! Nodes and pods for real: `svcnet up --nodes 2` runs pods as processes in
//! network namespaces; kubectl sees them as it sees a kubelet's.

use std::process::Command;

use crate::assert_eventually;
use crate::harness::{Cluster, json, netns_with_prefix};

const ECHO_DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: echo
        image: svcnet/echoserver:1.0
        ports: [{containerPort: 80}]
        readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1}
"#;

fn client_pod(name: &str, node: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    command: [sleep, \"3600\"]\n"
    )
}

fn pods(c: &Cluster, selector: &str) -> Vec<serde_json::Value> {
    let list = json(&c.ok(&["get", "pods", "-l", selector, "-o", "json"]));
    list["items"].as_array().cloned().unwrap_or_default()
}

fn ready(p: &serde_json::Value) -> bool {
    p["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn wait_ready(c: &Cluster, name: &str) {
    assert_eventually!(
        30,
        !c.kubectl_fails_quietly(&["wait", "--for=condition=Ready", &format!("pod/{name}"), "--timeout=1s"]),
        "pod {name} never became Ready: {}",
        c.ok(&["get", "pod", name, "-o", "yaml"])
    );
}

#[test]
fn a_deployment_spreads_over_the_nodes_with_addresses_from_each_nodes_cidr() {
    let c = Cluster::with_nodes(2);
    let nodes = json(&c.ok(&["get", "nodes", "-o", "json"]));
    let mut cidrs = std::collections::HashMap::new();
    for n in nodes["items"].as_array().unwrap() {
        assert!(
            n["status"]["conditions"].as_array().unwrap().iter().any(|c| c["type"] == "Ready" && c["status"] == "True")
        );
        cidrs.insert(
            n["metadata"]["name"].as_str().unwrap().to_string(),
            n["spec"]["podCIDR"].as_str().unwrap().to_string(),
        );
    }
    assert_eq!(cidrs.get("node1").map(String::as_str), Some("10.244.1.0/24"));
    assert_eq!(cidrs.get("node2").map(String::as_str), Some("10.244.2.0/24"));

    c.apply(ECHO_DEPLOYMENT);
    assert_eventually!(
        60,
        pods(&c, "app=web").iter().filter(|p| ready(p)).count() == 3,
        "3 ready pods: {}",
        c.ok(&["get", "pods", "-o", "wide"])
    );
    let all = pods(&c, "app=web");
    let mut ips = std::collections::HashSet::new();
    let mut per_node = std::collections::HashMap::<String, usize>::new();
    for p in &all {
        let ip = p["status"]["podIP"].as_str().unwrap().to_string();
        let node = p["spec"]["nodeName"].as_str().unwrap().to_string();
        let prefix = cidrs[&node].trim_end_matches("0/24").to_string();
        assert!(ip.starts_with(&prefix), "{ip} is not in {node}'s {}", cidrs[&node]);
        assert_eq!(p["status"]["hostIP"].as_str().map(|h| h.starts_with("172.18.0.")), Some(true));
        ips.insert(ip);
        *per_node.entry(node).or_default() += 1;
    }
    assert_eq!(ips.len(), 3, "addresses are distinct");
    assert_eq!(per_node.len(), 2, "replicas spread over both nodes: {per_node:?}");
    // `get pods -o wide` shows IP and NODE as in the documents.
    let wide = c.ok(&["get", "pods", "-l", "app=web", "-o", "wide"]);
    for ip in &ips {
        assert!(wide.contains(ip.as_str()), "{wide}");
    }
    assert!(wide.contains("node1") && wide.contains("node2"), "{wide}");

    // Pod to pod, across nodes, from inside a client pod.
    c.apply(&client_pod("client", "node1"));
    wait_ready(&c, "client");
    for p in &all {
        let ip = p["status"]["podIP"].as_str().unwrap();
        let name = p["metadata"]["name"].as_str().unwrap();
        let body = c.ok(&["exec", "client", "--", "curl", "-s", "-m", "5", &format!("http://{ip}/")]);
        assert_eq!(body.lines().next(), Some(format!("{name} {ip}").as_str()), "{body}");
    }
    let client_ip =
        json(&c.ok(&["get", "pod", "client", "-o", "json"]))["status"]["podIP"].as_str().unwrap().to_string();
    let echoed = json(&c.ok(&[
        "exec",
        "client",
        "--",
        "curl",
        "-s",
        "-m",
        "5",
        "-H",
        "Accept: application/json",
        &format!("http://{}/x?y=1", all[0]["status"]["podIP"].as_str().unwrap()),
    ]));
    assert_eq!(echoed["clientIP"], client_ip.as_str(), "the echoserver sees the client pod's own address: {echoed}");
    assert_eq!(echoed["path"], "/x?y=1");
}

#[test]
fn pods_see_their_own_resolv_conf_hostname_and_address() {
    let c = Cluster::with_nodes(2);
    c.ok(&["create", "namespace", "dev"]);
    c.apply(
        &client_pod("client", "node2").replace("metadata: {name: client}", "metadata: {name: client, namespace: dev}"),
    );
    assert_eventually!(
        30,
        !c.kubectl_fails_quietly(&["-n", "dev", "wait", "--for=condition=Ready", "pod/client", "--timeout=1s"]),
        "client never became Ready"
    );
    let resolv = c.ok(&["-n", "dev", "exec", "client", "--", "cat", "/etc/resolv.conf"]);
    assert_eq!(
        resolv,
        "search dev.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
    );
    assert_eq!(c.ok(&["-n", "dev", "exec", "client", "--", "hostname"]).trim(), "client");
    let ip = json(&c.ok(&["-n", "dev", "get", "pod", "client", "-o", "json"]))["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip.starts_with("10.244.2."), "{ip}");
    let addrs = c.ok(&["-n", "dev", "exec", "client", "--", "ip", "-4", "-br", "addr"]);
    assert!(addrs.contains(&format!("{ip}/24")), "{addrs}");
    // No route out of the sandbox: only the pod network's gateway.
    let routes = c.ok(&["-n", "dev", "exec", "client", "--", "ip", "route"]);
    assert!(routes.contains("default via 10.244.2.1 dev eth0"), "{routes}");
    // `ip netns exec` shows the same per-namespace file.
    let prefix = c.netns_prefix.clone().unwrap();
    let ns = netns_with_prefix(&prefix).into_iter().find(|n| n.contains("-dev-client-")).expect("pod namespace");
    let out = Command::new("ip").args(["netns", "exec", &ns, "cat", "/etc/resolv.conf"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), resolv);
}

#[test]
fn readiness_follows_the_probe() {
    let c = Cluster::with_nodes(2);
    let flag = c.dir.path().join("ready-flag");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: probed}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    command: [sleep, \"3600\"]\n    readinessProbe:\n      exec: {{command: [test, -f, {}]}}\n      periodSeconds: 1\n      failureThreshold: 1\n",
        flag.display()
    );
    c.apply(&manifest);
    let is_ready = || ready(&json(&c.ok(&["get", "pod", "probed", "-o", "json"])));
    assert_eventually!(
        30,
        json(&c.ok(&["get", "pod", "probed", "-o", "json"]))["status"]["phase"] == "Running",
        "pod never ran"
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(!is_ready(), "ready without the flag");
    std::fs::write(&flag, "").unwrap();
    assert_eventually!(15, is_ready(), "never became ready once the probe passed");
    std::fs::remove_file(&flag).unwrap();
    assert_eventually!(15, !is_ready(), "stayed ready after the probe failed");
    let p = json(&c.ok(&["get", "pod", "probed", "-o", "json"]));
    assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 0, "readiness failures do not restart");
}

#[test]
fn a_killed_container_restarts_and_its_previous_log_stays() {
    let c = Cluster::with_nodes(2);
    let marker = marker(1);
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: crashy}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    command: [sh, -c, 'echo attempt; exec sleep {marker}']\n"
    );
    c.apply(&manifest);
    wait_ready(&c, "crashy");
    let pid = pid_of(&marker).expect("container process");
    Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert_eventually!(
        30,
        {
            let p = json(&c.ok(&["get", "pod", "crashy", "-o", "json"]));
            p["status"]["containerStatuses"][0]["restartCount"] == 1 && ready(&p)
        },
        "container did not restart: {}",
        c.ok(&["get", "pod", "crashy", "-o", "yaml"])
    );
    let p = json(&c.ok(&["get", "pod", "crashy", "-o", "json"]));
    let last = &p["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 137, "{last}");
    assert_eq!(last["reason"], "Error");
    assert_eq!(c.ok(&["logs", "crashy", "--previous"]), "attempt\n");
    assert_eq!(c.ok(&["logs", "crashy"]), "attempt\n");
    let new_pid = pid_of(&marker).expect("restarted process");
    assert_ne!(new_pid, pid);
}

/// Arguments only one test's container carries, to find its process on the
/// host: `sleep` adds up its arguments, so a tiny unique fraction changes
/// nothing.
fn marker(test: u32) -> String {
    format!("3600 0.{}{test}", std::process::id())
}

fn pid_of(marker: &str) -> Option<u32> {
    let out = Command::new("pgrep").args(["-f", marker]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).find(|p: &u32| {
        // pgrep also matches the `sh -c` parent before it execs; take the sleep.
        std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sleep")
    })
}

#[test]
fn a_deleted_pod_leaves_no_namespace_or_process_behind() {
    let c = Cluster::with_nodes(2);
    let marker = marker(2);
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: doomed}}\nspec:\n  terminationGracePeriodSeconds: 5\n  containers:\n  - name: c\n    image: busybox\n    command: [sh, -c, 'exec sleep {marker}']\n"
    );
    c.apply(&manifest);
    wait_ready(&c, "doomed");
    let prefix = c.netns_prefix.clone().unwrap();
    assert!(netns_with_prefix(&prefix).iter().any(|n| n.contains("-default-doomed-")));
    let pid = pid_of(&marker).expect("container process");
    // Its container's log, `NS_POD_UID_CONTAINER_ATTEMPT.log` in its node's
    // logs directory.
    let logs = || -> Vec<std::path::PathBuf> {
        let nodes = std::fs::read_dir(c.dir.path().join("nodes")).map(|d| d.flatten().collect()).unwrap_or(Vec::new());
        nodes
            .iter()
            .flat_map(|n| std::fs::read_dir(n.path().join("logs")).into_iter().flatten().flatten())
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|f| f.to_string_lossy().starts_with("default_doomed_")))
            .collect()
    };
    assert_eq!(logs().len(), 1, "{:?}", logs());
    assert!(logs()[0].to_string_lossy().ends_with("_c_0.log"), "{:?}", logs());
    // sleep dies of SIGTERM at once, well inside the grace period.
    let started = std::time::Instant::now();
    c.ok(&["delete", "pod", "doomed", "--timeout=20s"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "SIGTERM ended it without waiting out the grace period"
    );
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "process {pid} survived");
    assert!(!netns_with_prefix(&prefix).iter().any(|n| n.contains("-default-doomed-")), "namespace survived");
    // The kubelet removes a deleted pod's logs; so does the agent.
    assert_eq!(logs(), Vec::<std::path::PathBuf>::new(), "logs survived");
}

#[test]
fn an_image_svcnet_cannot_run_waits_with_a_reason() {
    let c = Cluster::with_nodes(2);
    c.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: nginx}\nspec:\n  containers:\n  - name: nginx\n    image: nginx:1.17.1\n");
    assert_eventually!(
        30,
        c.ok(&["get", "pod", "nginx"]).contains("ErrImagePull"),
        "{}",
        c.ok(&["get", "pod", "nginx"])
    );
    let p = json(&c.ok(&["get", "pod", "nginx", "-o", "json"]));
    let waiting = &p["status"]["containerStatuses"][0]["state"]["waiting"];
    assert!(waiting["message"].as_str().unwrap().contains("nginx:1.17.1"), "{waiting}");
    assert_eq!(p["status"]["phase"], "Pending");
}

#[test]
fn host_network_pods_run_in_the_nodes_namespace_with_its_address() {
    let c = Cluster::with_nodes(2);
    c.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: hostnet}\nspec:\n  hostNetwork: true\n  nodeName: node2\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    command: [sleep, \"3600\"]\n");
    wait_ready(&c, "hostnet");
    let p = json(&c.ok(&["get", "pod", "hostnet", "-o", "json"]));
    assert_eq!(p["status"]["podIP"], p["status"]["hostIP"]);
    let addrs = c.ok(&["exec", "hostnet", "--", "ip", "-4", "-br", "addr"]);
    assert!(addrs.contains("cni0") && addrs.contains("10.244.2.1/24"), "{addrs}");
}

#[test]
fn stopping_svcnet_removes_every_namespace_and_process() {
    let mut c = Cluster::with_nodes(2);
    let marker = marker(3);
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    command: [sh, -c, 'exec sleep {marker}']\n"
    ));
    wait_ready(&c, "p");
    let prefix = c.netns_prefix.clone().unwrap();
    assert!(netns_with_prefix(&prefix).len() >= 4, "net, 2 nodes, a pod");
    let pid = pid_of(&marker).expect("process");
    let status = c.terminate().expect("exit status");
    assert!(status.success(), "{status:?}");
    assert_eq!(netns_with_prefix(&prefix), Vec::<String>::new());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn the_next_up_cleans_up_after_a_crash_and_runs_the_pods_again() {
    let c = Cluster::with_nodes(2);
    c.apply(&client_pod("survivor", "node1"));
    wait_ready(&c, "survivor");
    let prefix = c.netns_prefix.clone().unwrap();
    let before = netns_with_prefix(&prefix);
    let dir = c.kill9();
    // The namespaces outlive a SIGKILL; the processes die with svcnet.
    assert_eq!(netns_with_prefix(&prefix), before);
    // The log of a pod deleted while svcnet was down.
    let stray = dir.path().join("nodes/node1/logs/default_gone_0000_c_0.log");
    std::fs::write(&stray, "old\n").expect("a stray log");
    let c = Cluster::launch_in(dir, 2);
    wait_ready(&c, "survivor");
    assert!(!stray.exists(), "the last run's logs stayed");
    let after = netns_with_prefix(&prefix);
    assert_eq!(after.len(), before.len(), "{before:?} -> {after:?}");
}

#[test]
fn without_root_up_says_why_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"])
        .arg(env!("CARGO_BIN_EXE_svcnet"))
        .args(["up", "--api-port", "0", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs root") && err.contains("--nodes 0"), "{err}");
}

#[test]
fn logs_and_exec_behave_as_in_kubernetes() {
    let c = Cluster::with_nodes(2);
    c.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: talker}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    command: [sh, -c, 'for i in 1 2 3; do echo line $i; done; echo oops >&2; exec sleep 3600']\n",
    );
    wait_ready(&c, "talker");
    assert_eventually!(10, c.ok(&["logs", "talker"]).lines().count() == 4, "{}", c.ok(&["logs", "talker"]));
    let logs = c.ok(&["logs", "talker"]);
    // stdout and stderr are separate pipes, so only each stream's own order holds.
    assert!(logs.replace("oops\n", "") == "line 1\nline 2\nline 3\n" && logs.contains("oops\n"), "{logs}");
    assert_eq!(c.ok(&["logs", "talker", "--tail=1"]).lines().count(), 1);
    let stamped = c.ok(&["logs", "talker", "--timestamps", "--tail=1"]);
    let stamp = stamped.split(' ').next().unwrap();
    assert!(stamp.starts_with("20") && stamp.ends_with('Z'), "{stamped}");

    // exec: output, exit codes, stdin, environment and the pod's hostname.
    assert_eq!(c.ok(&["exec", "talker", "--", "sh", "-c", "echo $HOSTNAME"]).trim(), "talker");
    let out = c.kubectl_with(
        crate::harness::KUBECTL,
        &["exec", "talker", "--", "sh", "-c", "echo out; echo err >&2; exit 3"],
        None,
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));
    let out = c.kubectl_with(crate::harness::KUBECTL, &["exec", "-i", "talker", "--", "wc", "-l"], Some("a\nb\nc\n"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
    // `exec -it POD -- /bin/sh`, as the documents do, under a terminal.
    let kubeconfig = c.kubeconfig();
    let script =
        format!("kubectl --kubeconfig {} exec -it talker -- /bin/sh -c 'tty; echo in-a-tty'", kubeconfig.display());
    let out = Command::new("script")
        .args(["-qec", &script, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/") && text.contains("in-a-tty"), "{text}");
    let missing = c.fails(&["exec", "talker", "--", "no-such-program"], None);
    assert!(missing.contains("executable file not found"), "{missing}");

    // A pod that finishes: `logs -f` follows it to the end.
    c.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: once}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: busybox\n    command: [sh, -c, 'echo first; sleep 2; echo second']\n",
    );
    assert_eventually!(30, !c.kubectl_fails_quietly(&["logs", "once"]), "logs never available");
    assert_eq!(c.ok(&["logs", "-f", "once"]), "first\nsecond\n");
    assert_eventually!(
        10,
        json(&c.ok(&["get", "pod", "once", "-o", "json"]))["status"]["phase"] == "Succeeded",
        "phase"
    );
    assert!(c.ok(&["get", "pod", "once"]).contains("Completed"));

    // describe shows the kubelet's events.
    let described = c.ok(&["describe", "pod", "talker"]);
    for want in ["Scheduled", "Pulled", "Created", "Started", "kubelet"] {
        assert!(described.contains(want), "{want} missing from:\n{described}");
    }
}

#[test]
fn host_ports_reach_the_pod_through_the_node_address() {
    let c = Cluster::with_nodes(2);
    c.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: hp}\nspec:\n  nodeName: node1\n  containers:\n  - name: echo\n    image: svcnet/echoserver\n    ports: [{containerPort: 80, hostPort: 8080}]\n",
    );
    c.apply(&client_pod("far", "node2"));
    c.apply(&client_pod("near", "node1"));
    for p in ["hp", "far", "near"] {
        wait_ready(&c, p);
    }
    let node1 = json(&c.ok(&["get", "pod", "hp", "-o", "json"]))["status"]["hostIP"].as_str().unwrap().to_string();
    let hp_ip = json(&c.ok(&["get", "pod", "hp", "-o", "json"]))["status"]["podIP"].as_str().unwrap().to_string();
    for client in ["far", "near"] {
        let body = c.ok(&["exec", client, "--", "curl", "-s", "-m", "5", &format!("http://{node1}:8080/")]);
        assert_eq!(body.lines().next(), Some(format!("hp {hp_ip}").as_str()), "from {client}: {body}");
    }
    // The table names the pod, and goes away with it.
    let prefix = c.netns_prefix.clone().unwrap();
    let list = |c: &Cluster| {
        let _ = c;
        let out = Command::new("ip")
            .args(["netns", "exec", &format!("{prefix}-node1"), "nft", "list", "table", "ip", "svcnet-hostports"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(list(&c).contains("default/hp hostPort 8080"), "{}", list(&c));
    c.ok(&["delete", "pod", "hp", "--timeout=20s"]);
    assert!(!list(&c).contains("default/hp"), "{}", list(&c));
}

#[test]
fn a_failing_liveness_probe_restarts_the_container() {
    let c = Cluster::with_nodes(2);
    let flag = c.dir.path().join("alive-flag");
    std::fs::write(&flag, "").unwrap();
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: lively}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    command: [sleep, \"3600\"]\n    livenessProbe:\n      exec: {{command: [test, -f, {}]}}\n      periodSeconds: 1\n      failureThreshold: 2\n",
        flag.display()
    ));
    wait_ready(&c, "lively");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let restarts = |c: &Cluster| {
        json(&c.ok(&["get", "pod", "lively", "-o", "json"]))["status"]["containerStatuses"][0]["restartCount"].as_u64()
    };
    assert_eq!(restarts(&c), Some(0), "restarted while the probe passed");
    std::fs::remove_file(&flag).unwrap();
    assert_eventually!(
        20,
        restarts(&c) >= Some(1),
        "never restarted: {}",
        c.ok(&["get", "pod", "lively", "-o", "yaml"])
    );
    let events = c.ok(&["get", "events", "--field-selector", "involvedObject.name=lively"]);
    assert!(events.contains("Liveness probe failed") && events.contains("will be restarted"), "{events}");
}

#[test]
fn a_container_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let c = Cluster::with_nodes(2);
    c.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: stubborn}\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: c\n    image: busybox\n    command: [sh, -c, 'trap \"\" TERM; while true; do sleep 1; done']\n",
    );
    wait_ready(&c, "stubborn");
    let started = std::time::Instant::now();
    c.ok(&["delete", "pod", "stubborn", "--timeout=30s"]);
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(1800), "deleted before the grace period ended: {took:?}");
    assert!(took < std::time::Duration::from_secs(10), "SIGKILL did not follow the grace period: {took:?}");
}

/// A `kubectl port-forward` running in the background; stopped (by its
/// pid, through the child handle) when dropped.
struct PortForward {
    child: std::process::Child,
    /// Local port for each remote port, in the order asked for.
    local: Vec<u16>,
    output: std::sync::mpsc::Receiver<String>,
}

impl PortForward {
    fn start(c: &Cluster, kubectl: &str, target: &str, remote: &[u16]) -> PortForward {
        use std::io::BufRead as _;
        let mut cmd = Command::new(kubectl);
        cmd.arg("--kubeconfig").arg(c.kubeconfig()).args(["port-forward", target]);
        cmd.args(remote.iter().map(|p| format!(":{p}")));
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn kubectl port-forward");
        let (tx, output) = std::sync::mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        // "Forwarding from 127.0.0.1:40123 -> 80", once per port.
        let mut local = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while local.len() < remote.len() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line =
                output.recv_timeout(left).unwrap_or_else(|_| panic!("kubectl port-forward {target} never started"));
            if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:") {
                local.push(rest.split(' ').next().and_then(|p| p.parse().ok()).expect("local port"));
            }
        }
        PortForward { child, local, output }
    }

    fn lines(&self) -> Vec<String> {
        self.output.try_iter().collect()
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kubectl port-forward` to a pod and to a Service, over the WebSocket
/// tunnel kubectl 1.32 uses and over SPDY as kubectl 1.27 does: bytes go
/// both ways intact, every connection is handled, and a port nothing
/// listens on is reported as the kubelet reports it. Then the API
/// server's `proxy` subresources, which `kubectl proxy` serves.
#[test]
fn port_forward_and_the_proxy_subresources_reach_pods() {
    let c = Cluster::with_nodes(2);
    c.apply(ECHO_DEPLOYMENT);
    c.apply(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 8080, targetPort: 80}]\n",
    );
    // A pod that counts what it is sent and answers with the count, and
    // serves a file, both as host processes in its namespace.
    let dir = tempfile::tempdir().unwrap();
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(dir.path().join("blob"), &payload).unwrap();
    let counter = "import socket\nl=socket.socket()\nl.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\nl.bind(('0.0.0.0',9000))\nl.listen()\nwhile True:\n  c,_=l.accept();n=0\n  while True:\n    d=c.recv(65536)\n    if not d: break\n    n+=len(d)\n  c.sendall(str(n).encode());c.close()\n";
    std::fs::write(dir.path().join("count.py"), counter).unwrap();
    // 9001 says hello and closes first; 9002 answers HTTP with a chunked
    // body it breaks off.
    let tricks = "import socket,threading\ndef serve(port, reply):\n  l=socket.socket()\n  l.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n  l.bind(('0.0.0.0',port))\n  l.listen()\n  while True:\n    c,_=l.accept()\n    if port==9002: c.recv(65536)\n    c.sendall(reply);c.close()\nthreading.Thread(target=serve,args=(9001,b'hello\\n')).start()\nserve(9002,b'HTTP/1.1 200 OK\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nhello\\r\\n')\n";
    std::fs::write(dir.path().join("tricks.py"), tricks).unwrap();
    let d = dir.path().display();
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: files}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: http\n    image: python\n    command: [python3, -m, http.server, \"8000\", --bind, 127.0.0.1, --directory, \"{d}\"]\n  - name: count\n    image: python\n    command: [python3, \"{d}/count.py\"]\n    readinessProbe: {{tcpSocket: {{port: 9000}}, periodSeconds: 1}}\n  - name: tricks\n    image: python\n    command: [python3, \"{d}/tricks.py\"]\n    readinessProbe: {{tcpSocket: {{port: 9002}}, periodSeconds: 1}}\n"
    ));
    assert_eventually!(
        60,
        pods(&c, "app=web").iter().filter(|p| ready(p)).count() == 3,
        "web pods never became ready: {}",
        c.ok(&["get", "pods", "-o", "wide"])
    );
    wait_ready(&c, "files");
    let web: std::collections::HashSet<String> =
        pods(&c, "app=web").iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_string()).collect();

    for kubectl in [crate::harness::KUBECTL, crate::harness::KUBECTL_127] {
        // A Service: kubectl picks one of its pods and maps 8080 to 80.
        let pf = PortForward::start(&c, kubectl, "svc/web", &[8080]);
        for _ in 0..3 {
            let out = Command::new("curl")
                .args(["-s", "-m", "5"])
                .arg(format!("http://127.0.0.1:{}/", pf.local[0]))
                .output()
                .unwrap();
            let body = String::from_utf8_lossy(&out.stdout);
            let pod = body.split(' ').next().unwrap_or("");
            assert!(web.contains(pod), "{kubectl}: {body:?} names no web pod");
        }
        drop(pf);

        // A pod with several ports: a 3 MB download (the server binds
        // 127.0.0.1 only, as port-forward connects inside the pod), a
        // 3 MB upload, and a port nothing listens on.
        let pf = PortForward::start(&c, kubectl, "pod/files", &[8000, 9000, 9999, 9001]);
        let out = Command::new("curl")
            .args(["-s", "-m", "20"])
            .arg(format!("http://127.0.0.1:{}/blob", pf.local[0]))
            .output()
            .unwrap();
        assert_eq!(
            fingerprint(&out.stdout),
            fingerprint(&payload),
            "{kubectl}: download of {} bytes",
            out.stdout.len()
        );
        let mut s = std::net::TcpStream::connect(("127.0.0.1", pf.local[1])).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        std::io::Write::write_all(&mut s, &payload).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut s, &mut answer).unwrap();
        assert_eq!(answer, payload.len().to_string(), "{kubectl}: upload counted by the pod");
        // The pod closes first: the local connection ends too.
        let mut s = std::net::TcpStream::connect(("127.0.0.1", pf.local[3])).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let mut hello = String::new();
        std::io::Read::read_to_string(&mut s, &mut hello).expect("EOF after the pod closed");
        assert_eq!(hello, "hello\n", "{kubectl}");
        let refused = Command::new("curl")
            .args(["-s", "-m", "5"])
            .arg(format!("http://127.0.0.1:{}/", pf.local[2]))
            .output()
            .unwrap();
        assert!(!refused.status.success());
        assert_eventually!(
            10,
            pf.lines()
                .iter()
                .any(|l| l.contains("error forwarding port 9999 to pod default/files")
                    && l.contains("Connection refused")),
            "{kubectl}: no error reported for port 9999"
        );
    }

    // services/NAME:PORT/proxy/PATH: a ready endpoint, the path and query
    // passed on; a port given by number is the Service's port.
    let answer = |path: &str| json(&c.ok(&["get", "--raw", path]));
    let got = answer("/api/v1/namespaces/default/services/web:8080/proxy/some/path?x=1");
    assert!(web.contains(got["pod"].as_str().unwrap_or("")), "{got}");
    assert_eq!(got["path"], "/some/path?x=1");
    assert!(got["headers"].get("authorization").is_none(), "the client's credentials stay behind: {got}");
    let got = answer("/api/v1/namespaces/default/services/web/proxy/");
    assert!(web.contains(got["pod"].as_str().unwrap_or("")), "the only port by default: {got}");
    let pod = web.iter().next().unwrap();
    let got = answer(&format!("/api/v1/namespaces/default/pods/{pod}:80/proxy/hello"));
    assert_eq!((got["pod"].as_str(), got["path"].as_str()), (Some(pod.as_str()), Some("/hello")));
    let err = c.fails(&["get", "--raw", "/api/v1/namespaces/default/services/web:9/proxy/"], None);
    assert!(err.contains("no service port 9 found for service \"web\""), "{err}");
    let err = c.fails(&["get", "--raw", &format!("/api/v1/namespaces/default/pods/{pod}:81/proxy/")], None);
    assert!(err.contains("error trying to reach service") && err.contains("81"), "{err}");
    // A body the backend breaks off is not passed on as a whole one.
    c.fails(&["get", "--raw", "/api/v1/namespaces/default/pods/files:9002/proxy/"], None);
    // `kubectl run -i --rm` with busybox (no entrypoint: its args run):
    // attach streams the output, kubectl exits with the container's code.
    let run = c.kubectl_with(
        crate::harness::KUBECTL,
        &[
            "run",
            "-i",
            "--rm",
            "try",
            "--image=busybox",
            "--restart=Never",
            "--",
            "sh",
            "-c",
            "sleep 1; curl -s http://web:8080/; exit 3",
        ],
        None,
    );
    let said = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(3), "kubectl run: {said} {}", String::from_utf8_lossy(&run.stderr));
    assert!(web.iter().any(|p| said.contains(p.as_str())), "the output came through attach: {said}");
    // With stdin: what kubectl reads goes to the container's shell.
    let run = c.kubectl_with(
        crate::harness::KUBECTL,
        &["run", "-i", "--rm", "shell", "--image=busybox", "--restart=Never", "--", "sh"],
        Some("echo typed-$((6*7))\ncurl -s http://web:8080/ | head -1\nexit 4\n"),
    );
    let said = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(4), "kubectl run sh: {said} {}", String::from_utf8_lossy(&run.stderr));
    assert!(said.contains("typed-42") && web.iter().any(|p| said.contains(p.as_str())), "{said}");
    // Without a port, a pod's first declared containerPort (80 here).
    let got = answer(&format!("/api/v1/namespaces/default/pods/{pod}/proxy/x"));
    assert_eq!(got["path"], "/x");
}

/// Length and FNV-1a hash, to compare payloads in assertion messages
/// without printing megabytes.
fn fingerprint(data: &[u8]) -> (usize, u64) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (data.len(), h)
}

/// `kubectl debug` adds an ephemeral container to a running pod: it runs
/// in the pod's network namespace, kubectl attaches to it, the pod stays
/// Ready, it is not restarted, and the API server keeps ephemeral
/// containers append-only.
#[test]
fn kubectl_debug_runs_an_ephemeral_container_in_the_pod() {
    let c = Cluster::with_nodes(1);
    c.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: target}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: web\n    image: svcnet/echoserver\n    ports: [{containerPort: 80}]\n",
    );
    wait_ready(&c, "target");
    let ip = c.ok(&["get", "pod", "target", "-o", "jsonpath={.status.podIP}"]);
    let run = c.kubectl_with(
        crate::harness::KUBECTL,
        &[
            "debug",
            "target",
            "-i",
            "--image=busybox",
            "--container=dbg",
            "--target=web",
            "--profile=general",
            "--",
            "sh",
        ],
        // As with a kubelet, closing stdin does not end the session of a
        // container whose stdin outlives it (no stdinOnce): its end does.
        Some("wget -qO- http://localhost:80/ | head -1\necho from-$(hostname)\nexit 0\n"),
    );
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "kubectl debug: {said} {}", String::from_utf8_lossy(&run.stderr));
    assert!(said.contains(&format!("target {ip}")), "localhost is the pod's own: {said}");
    assert!(said.contains("from-target"), "the pod's hostname: {said}");

    let exit_code = |name: &str| {
        let path =
            format!("jsonpath={{.status.ephemeralContainerStatuses[?(@.name==\"{name}\")].state.terminated.exitCode}}");
        c.ok(&["get", "pod", "target", "-o", &path])
    };
    assert_eventually!(
        10,
        exit_code("dbg") == "0",
        "dbg never ended: {}",
        c.ok(&["get", "pod", "target", "-o", "yaml"])
    );
    let pod = json(&c.ok(&["get", "pod", "target", "-o", "json"]));
    let statuses = pod["status"]["ephemeralContainerStatuses"].as_array().cloned().unwrap_or_default();
    assert_eq!(statuses.len(), 1, "{pod}");
    assert_eq!(statuses[0]["name"], "dbg");
    assert_eq!(statuses[0]["state"]["terminated"]["exitCode"], 0, "{pod}");
    assert_eq!(pod["status"]["containerStatuses"].as_array().map(Vec::len), Some(1), "{pod}");
    assert!(ready(&pod), "an ephemeral container does not change readiness: {pod}");
    assert!(c.ok(&["describe", "pod", "target"]).contains("Ephemeral Containers:"));
    let events = c.ok(&["get", "events", "--field-selector", "involvedObject.name=target", "-o", "json"]);
    assert!(events.contains("spec.ephemeralContainers{dbg}"), "{events}");

    // Append-only, and only what an ephemeral container may have.
    let err = c.fails(
        &[
            "patch",
            "pod",
            "target",
            "--subresource=ephemeralcontainers",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/spec/ephemeralContainers/0"}]"#,
        ],
        None,
    );
    assert!(err.contains(r#"existing ephemeral containers "dbg" may not be removed"#), "{err}");
    let err = c.fails(
        &[
            "patch",
            "pod",
            "target",
            "--subresource=ephemeralcontainers",
            "--type=strategic",
            "-p",
            r#"{"spec":{"ephemeralContainers":[{"name":"bad","image":"busybox","ports":[{"containerPort":81}]}]}}"#,
        ],
        None,
    );
    assert!(
        err.contains("spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container"),
        "{err}"
    );
    // An update of the pod itself leaves them alone.
    c.ok(&["label", "pod", "target", "debugged=yes"]);
    let kept = c.ok(&["get", "pod", "target", "-o", "jsonpath={.spec.ephemeralContainers[*].name}"]);
    assert_eq!(kept, "dbg");
    // Without -i kubectl leaves it running on its own.
    c.ok(&[
        "debug",
        "target",
        "--image=busybox",
        "--container=once",
        "--profile=general",
        "--",
        "sh",
        "-c",
        "echo done-once",
    ]);
    assert_eventually!(
        30,
        exit_code("once") == "0",
        "the ephemeral container never finished: {}",
        c.ok(&["get", "pod", "target", "-o", "yaml"])
    );
    assert_eq!(c.ok(&["logs", "target", "-c", "once"]).trim(), "done-once");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let restarts = c.ok(&[
        "get",
        "pod",
        "target",
        "-o",
        "jsonpath={.status.ephemeralContainerStatuses[?(@.name==\"once\")].restartCount}",
    ]);
    assert_eq!(restarts, "0");
}

/// `kubectl run -it` and `kubectl debug -it` give the container a
/// terminal: a prompt, echo, `tty` names a pty, and the shell's exit code
/// comes back. kubectl only asks for one when its own stdin is a terminal,
/// so it runs under `script`.
#[test]
fn kubectl_run_it_and_debug_it_give_the_container_a_terminal() {
    let c = Cluster::with_nodes(1);
    let in_terminal = |kubectl_args: &str, input: &str| {
        let command = format!("{} --kubeconfig {} {kubectl_args}", crate::harness::KUBECTL, c.kubeconfig().display());
        // The input waits for the session (typed earlier, it would sit in
        // script's terminal, which is fine, but the prompt would not show).
        let script = format!("(sleep 4; {input}; sleep 2) | script -qfec \"{command}\" /dev/null");
        let out = Command::new("timeout").args(["60", "sh", "-c", &script]).output().expect("script");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).replace('\r', ""))
    };
    let (code, said) = in_terminal(
        "run -it --rm term --image=busybox --restart=Never -- sh",
        "printf 'tty\\n'; sleep 1; printf 'echo $((6*7))\\n'; sleep 1; printf 'exit 7\\n'",
    );
    assert_eq!(code, Some(7), "kubectl run -it: {said}");
    // Under load the lines may reach the terminal together, so their echo
    // and the shell's output interleave; each is still there.
    assert!(said.contains("/dev/pts/"), "a terminal: {said}");
    let output_42 = said.lines().any(|l| l.trim_start_matches(['#', '$', ' ']) == "42");
    assert!(said.contains("echo $((6*7))") && output_42, "echo and output: {said}");
    assert!(said.contains("# ") || said.contains("$ "), "a prompt: {said}");

    c.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: target}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: web\n    image: svcnet/echoserver\n    ports: [{containerPort: 80}]\n",
    );
    wait_ready(&c, "target");
    let (_, said) = in_terminal(
        "debug target -it --image=busybox --container=term --profile=general -- sh",
        "printf 'tty; hostname\\n'; sleep 1; printf 'exit 0\\n'",
    );
    assert!(said.contains("/dev/pts/"), "a terminal: {said}");
    assert!(said.lines().any(|l| l.trim_start_matches(['#', '$', ' ']) == "target"), "in the pod: {said}");
    let tty = c.ok(&["get", "pod", "target", "-o", "jsonpath={.spec.ephemeralContainers[0].tty}"]);
    assert_eq!(tty, "true");

    // Attach passes output on as it is written, not line by line: a
    // prompt without a newline arrives while the container waits.
    c.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: asks}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    command: [sh, -c, 'sleep 10; printf \"name? \"; sleep 60']\n",
    );
    wait_ready(&c, "asks");
    let out = Command::new("timeout")
        .args(["20", crate::harness::KUBECTL, "--kubeconfig"])
        .arg(c.kubeconfig())
        .args(["attach", "asks"])
        .output()
        .expect("kubectl attach");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("name? "), "the prompt came through before any newline: {said:?}");
}
