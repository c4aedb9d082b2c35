//! The service proxy, end to end, in each of its modes: Services reached
//! from client pods with curl, dig and getent inside `kubectl exec`, and
//! node ports from the host.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::assert_eventually;
use crate::harness::{Cluster, json};

const BACKENDS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: echo
        image: svcnet/echoserver
        ports: [{containerPort: 8080, name: http}, {containerPort: 5353, protocol: UDP, name: echo-udp}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: udp, port: 53, protocol: UDP, targetPort: echo-udp}
---
apiVersion: v1
kind: Service
metadata: {name: sticky}
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 2}}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: nobody}
spec:
  selector: {app: nobody}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-local}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30081}]
---
apiVersion: v1
kind: Service
metadata: {name: web-udp-np}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 53, protocol: UDP, targetPort: echo-udp, nodePort: 30082}]
"#;

fn client(node: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: client}}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    command: [sleep, \"3600\"]\n"
    )
}

fn pod_ip(c: &Cluster, name: &str) -> String {
    json(&c.ok(&["get", "pod", name, "-o", "json"]))["status"]["podIP"].as_str().unwrap_or("").to_string()
}

fn svc_ip(c: &Cluster, name: &str) -> String {
    c.ok(&["get", "svc", name, "-o", "jsonpath={.spec.clusterIP}"])
}

/// The first line of the echoserver's answer: `<pod> <ip>`.
fn hit(c: &Cluster, url: &str) -> String {
    let body = c.ok(&["exec", "client", "--", "curl", "-s", "-m", "5", url]);
    body.lines().next().unwrap_or("").split(' ').next().unwrap_or("").to_string()
}

/// Node ports are also bound on the host's 127.0.0.1, so clusters running
/// side by side each get their own (`base` to `base + 2`).
fn setup(mode: &str, base: u16) -> Cluster {
    let c = Cluster::with_proxy(2, mode);
    c.apply(
        &BACKENDS
            .replace("30080", &base.to_string())
            .replace("30081", &(base + 1).to_string())
            .replace("30082", &(base + 2).to_string()),
    );
    c.apply(&client("node2"));
    assert_eventually!(
        90,
        c.ok(&["get", "ep", "web", "-o", "jsonpath={.subsets[*].addresses[*].ip}"]).split_whitespace().count() == 3
            && !c.kubectl_fails_quietly(&["wait", "--for=condition=Ready", "pod/client", "--timeout=1s"]),
        "backends and client never became ready: {}",
        c.ok(&["get", "pods", "-o", "wide"])
    );
    c
}

fn web_pods(c: &Cluster) -> HashSet<String> {
    c.ok(&["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"])
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn balancing_affinity_scaling_and_refusal(mode: &str, base: u16) {
    let c = setup(mode, base);
    let vip = svc_ip(&c, "web");
    // Every endpoint is reached (random in the kernel, round-robin in userspace).
    let mut seen = HashSet::new();
    for _ in 0..40 {
        seen.insert(hit(&c, &format!("http://{vip}/")));
        if seen.len() == 3 {
            break;
        }
    }
    assert_eq!(seen, web_pods(&c), "{mode}: not every endpoint was reached");
    // The Service name resolves through the pod's search path and the
    // cluster DNS, itself reached through the proxy.
    assert!(!hit(&c, "http://web/").is_empty(), "{mode}: http://web/ failed");
    let getent = c.ok(&["exec", "client", "--", "getent", "hosts", "web"]);
    assert!(getent.starts_with(&vip), "{mode}: getent hosts web: {getent}");
    let dig = c.ok(&["exec", "client", "--", "dig", "+short", "web.default.svc.cluster.local"]);
    assert_eq!(dig.trim(), vip, "{mode}: dig through 10.96.0.10");

    // ClientIP affinity sticks, then lets go after its timeout.
    let sticky = svc_ip(&c, "sticky");
    let first = hit(&c, &format!("http://{sticky}/"));
    for _ in 0..8 {
        assert_eq!(hit(&c, &format!("http://{sticky}/")), first, "{mode}: affinity did not stick");
    }
    let mut after = HashSet::new();
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(2600));
        after.insert(hit(&c, &format!("http://{sticky}/")));
        if after.len() > 1 {
            break;
        }
    }
    assert!(after.len() > 1, "{mode}: affinity never expired: {after:?}");

    // No endpoints: refused at once, not a timeout.
    let nobody = svc_ip(&c, "nobody");
    let started = Instant::now();
    let out = c.kubectl_with(
        crate::harness::KUBECTL,
        &["exec", "client", "--", "curl", "-s", "-m", "5", &format!("http://{nobody}/")],
        None,
    );
    assert_eq!(out.status.code(), Some(7), "{mode}: curl to a Service without endpoints: {out:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "{mode}: refusal took {:?}", started.elapsed());

    // Scaling up is picked up.
    c.ok(&["scale", "deployment", "web", "--replicas=4"]);
    assert_eventually!(
        60,
        web_pods(&c).len() == 4
            && c.ok(&["get", "ep", "web", "-o", "jsonpath={.subsets[*].addresses[*].ip}"]).split_whitespace().count()
                == 4,
        "{mode}: never scaled"
    );
    let mut seen = HashSet::new();
    for _ in 0..60 {
        seen.insert(hit(&c, &format!("http://{vip}/")));
        if seen.len() == 4 {
            break;
        }
    }
    assert_eq!(seen.len(), 4, "{mode}: the new endpoint is not used: {seen:?}");

    // A deleted backend is skipped.
    let victim = web_pods(&c).into_iter().next().unwrap();
    c.ok(&["delete", "pod", &victim, "--wait=true"]);
    assert_eventually!(
        30,
        !c.ok(&["get", "ep", "web", "-o", "jsonpath={.subsets[*].addresses[*].targetRef.name}"]).contains(&victim),
        "endpoint stayed"
    );
    for _ in 0..20 {
        let got = hit(&c, &format!("http://{vip}/"));
        assert_ne!(got, victim, "{mode}: the deleted pod was still chosen");
        assert!(!got.is_empty(), "{mode}: a request failed after a backend left");
    }

    // UDP through the Service: the echoserver answers with its pod name.
    let pods = web_pods(&c);
    let script = format!(
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3); \
         s.sendto(b'ping', ('{vip}', 53)); print(s.recv(512).decode().strip())"
    );
    let udp = c.ok(&["exec", "client", "--", "python3", "-c", &script]);
    assert!(pods.contains(udp.trim()), "{mode}: UDP answer {udp:?} is no backend of {pods:?}");
}

fn node_ports_and_traffic_policies(mode: &str, base: u16) {
    let c = setup(mode, base + 50);
    let (np, np_local) = (base + 50, base + 51);
    let nodes = json(&c.ok(&["get", "nodes", "-o", "json"]));
    let node_ip = |name: &str| -> String {
        nodes["items"].as_array().unwrap().iter().find(|n| n["metadata"]["name"] == name).unwrap()["status"]["addresses"][0]["address"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (node1, node2) = (node_ip("node1"), node_ip("node2"));
    // NodePort on every node, from a pod.
    for ip in [&node1, &node2] {
        assert!(!hit(&c, &format!("http://{ip}:{np}/")).is_empty(), "{mode}: node port on {ip}");
    }
    // And from the host, at 127.0.0.1.
    assert_eventually!(
        20,
        {
            let out =
                Command::new("curl").args(["-s", "-m", "3", &format!("http://127.0.0.1:{np}/")]).output().unwrap();
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .is_some_and(|l| web_pods(&c).contains(l.split(' ').next().unwrap_or("")))
        },
        "{mode}: node port {np} from the host"
    );
    // A UDP node port from the host too: the echoserver answers a
    // datagram with its pod name.
    let np_udp = base + 52;
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let pods = web_pods(&c);
    assert_eventually!(
        20,
        {
            let mut buf = [0u8; 512];
            udp.send_to(b"ping", ("127.0.0.1", np_udp)).is_ok()
                && udp.recv(&mut buf).is_ok_and(|n| pods.contains(String::from_utf8_lossy(&buf[..n]).trim()))
        },
        "{mode}: UDP node port {np_udp} from the host"
    );
    // externalTrafficPolicy Local: the backend sees the client's own
    // address; Cluster: masqueraded to a node address.
    let client_ip = pod_ip(&c, "client");
    let local_nodes: HashSet<String> = json(&c.ok(&["get", "pods", "-l", "app=web", "-o", "json"]))["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str().unwrap().to_string())
        .collect();
    let target = if local_nodes.contains("node1") { &node1 } else { &node2 };
    let ask = |port: u16| {
        json(&c.ok(&[
            "exec",
            "client",
            "--",
            "curl",
            "-s",
            "-m",
            "5",
            "-H",
            "Accept: application/json",
            &format!("http://{target}:{port}/"),
        ]))
    };
    if mode != "userspace" && mode != "userspace-lc" {
        assert_eq!(ask(np_local)["clientIP"], client_ip.as_str(), "{mode}: Local policy must keep the client address");
        let masq = ask(np)["clientIP"].as_str().unwrap().to_string();
        assert_ne!(masq, client_ip, "{mode}: Cluster policy masquerades");
    }
    // The health check node port answers with the local endpoint count.
    let hc = c.ok(&["get", "svc", "web-local", "-o", "jsonpath={.spec.healthCheckNodePort}"]);
    if !hc.is_empty() {
        let health =
            json(&c.ok(&["exec", "client", "--", "curl", "-s", "-m", "5", &format!("http://{target}:{hc}/healthz")]));
        assert!(health["localEndpoints"].as_u64().unwrap_or(0) >= 1, "{mode}: {health}");
    }
    // `svcnet proxy list` shows what node1 programmed.
    let out = Command::new(env!("CARGO_BIN_EXE_svcnet"))
        .args(["proxy", "list", "--node", "node1", "--kubeconfig"])
        .arg(c.kubeconfig())
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.contains(&format!("{}:80", svc_ip(&c, "web"))) && list.contains("default/web"), "{mode}: {list}");
    assert!(list.contains("  -> 10.244."), "{mode}: endpoints listed: {list}");
}

macro_rules! proxy_suite {
    ($($module:ident => $mode:expr, $base:expr);* $(;)?) => {$(
        mod $module {
            #[test]
            fn balancing_affinity_scaling_and_refusal() {
                super::balancing_affinity_scaling_and_refusal($mode, $base);
            }

            #[test]
            fn node_ports_and_traffic_policies() {
                super::node_ports_and_traffic_policies($mode, $base);
            }
        }
    )*};
}

proxy_suite! {
    nftables => "nftables", 31100;
    iptables => "iptables", 31200;
    userspace => "userspace", 31300;
}

/// The kubeadm way to change kube-proxy's mode, as the seed does it:
/// `kubectl edit cm kube-proxy -n kube-system`, then `kubectl delete pod -l
/// k8s-app=kube-proxy -n kube-system`. Each node's proxy restarts in the
/// new mode behind a new pod; `ipvs` runs iptables, with a Warning event.
#[test]
fn kube_proxy_configmap_mode_applies_when_its_pods_are_deleted() {
    let c = setup("nftables", 31400);
    let prefix = c.netns_prefix.clone().expect("sandbox namespaces");
    let node1 = format!("{prefix}-node1");
    let in_node = |args: &[&str]| {
        let out = Command::new("ip").args(["netns", "exec", &node1]).args(args).output().expect("ip netns exec");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let proxy_pods = |c: &Cluster| -> Vec<(String, String, String)> {
        let list = json(&c.ok(&["get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-proxy", "-o", "json"]));
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let s = |ptr: &str| p.pointer(ptr).and_then(|v| v.as_str()).unwrap_or("").to_string();
                (s("/metadata/name"), s("/spec/nodeName"), s("/status/phase"))
            })
            .collect()
    };
    // One Running kube-proxy pod per node, and the ConfigMap naming the mode.
    assert_eventually!(30, proxy_pods(&c).len() == 2, "kube-proxy pods: {:?}", proxy_pods(&c));
    let before = proxy_pods(&c);
    let mut nodes: Vec<&str> = before.iter().map(|(_, n, _)| n.as_str()).collect();
    nodes.sort();
    assert_eq!(nodes, ["node1", "node2"]);
    assert!(before.iter().all(|(_, _, phase)| phase == "Running"), "{before:?}");
    let conf = c.ok(&["get", "cm", "kube-proxy", "-n", "kube-system", "-o", "jsonpath={.data.config\\.conf}"]);
    assert!(conf.contains("kind: KubeProxyConfiguration") && conf.contains("mode: \"nftables\""), "{conf}");
    assert!(in_node(&["nft", "list", "tables"]).contains("svcnet"));
    let vip = svc_ip(&c, "web");

    // kubectl edit, with an editor that changes the mode to ipvs.
    let editor = c.dir.path().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsed -i 's/mode: \"nftables\"/mode: \"ipvs\"/' \"$1\"\n").unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let edit = Command::new(crate::harness::KUBECTL)
        .arg("--kubeconfig")
        .arg(c.kubeconfig())
        .args(["edit", "cm", "kube-proxy", "-n", "kube-system"])
        .env("KUBE_EDITOR", &editor)
        .output()
        .unwrap();
    assert!(edit.status.success(), "kubectl edit: {}", String::from_utf8_lossy(&edit.stderr));
    assert!(String::from_utf8_lossy(&edit.stdout).contains("configmap/kube-proxy edited"));

    // Nothing changes until the pods are deleted.
    std::thread::sleep(Duration::from_secs(1));
    assert!(in_node(&["nft", "list", "tables"]).contains("svcnet"));
    c.ok(&["delete", "pod", "-l", "k8s-app=kube-proxy", "-n", "kube-system"]);
    let old: HashSet<String> = before.into_iter().map(|(n, _, _)| n).collect();
    assert_eventually!(
        30,
        {
            let now = proxy_pods(&c);
            now.len() == 2 && now.iter().all(|(n, _, phase)| !old.contains(n) && phase == "Running")
        },
        "kube-proxy pods after the delete: {:?}",
        proxy_pods(&c)
    );
    // node1 is now programmed by iptables, and its nftables table is gone.
    assert_eventually!(
        30,
        in_node(&["iptables-save", "-t", "nat"]).contains("default/web:http")
            && !in_node(&["nft", "list", "tables"]).contains("svcnet"),
        "node1 after the switch: {}\n{}",
        in_node(&["nft", "list", "tables"]),
        in_node(&["iptables-save", "-t", "nat"])
    );
    let events =
        c.ok(&["get", "events", "-n", "kube-system", "--field-selector", "reason=ProxyModeFallback", "-o", "name"]);
    assert_eq!(events.lines().count(), 2, "one ipvs fallback event per node: {events}");
    // Each new pod's log is its proxy's: the mode, the fallback, the first sync.
    let new_pod = proxy_pods(&c).into_iter().find(|(_, n, _)| n == "node1").map(|(p, _, _)| p).unwrap();
    let log = c.ok(&["logs", "-n", "kube-system", &new_pod]);
    assert!(
        log.contains("Using iptables proxier on node node1")
            && log.contains("mode \"ipvs\" needs IP Virtual Server")
            && log.contains("Synced proxy rules"),
        "kubectl logs {new_pod}: {log}"
    );
    assert!(!log.contains("nftables proxier"), "the old run's log is not the new pod's: {log}");
    let exec = c.fails(&["exec", "-n", "kube-system", &new_pod, "--", "true"], None);
    assert!(exec.contains("runs inside the svcnet agent"), "{exec}");
    let pods = web_pods(&c);
    let mut seen = HashSet::new();
    for _ in 0..30 {
        seen.insert(hit(&c, &format!("http://{vip}")));
        if seen == pods {
            break;
        }
    }
    assert_eq!(seen, pods, "the Service reaches every endpoint through iptables");
}

/// Topology-aware routing: with `trafficDistribution: PreferClose` the
/// EndpointSlice controller hints each endpoint for its node's zone, and a
/// node's proxy sends its clients only to endpoints of its own zone; a node
/// that loses its zone label goes back to every endpoint.
#[test]
fn prefer_close_keeps_traffic_in_the_clients_zone() {
    let c = setup("nftables", 31500);
    // Zones first: the Service's slices are then written with them.
    for (node, zone) in [("node1", "zone-a"), ("node2", "zone-b")] {
        c.ok(&["label", "node", node, &format!("topology.kubernetes.io/zone={zone}")]);
    }
    c.apply(
        "apiVersion: v1\nkind: Service\nmetadata: {name: close}\nspec:\n  selector: {app: web}\n  trafficDistribution: PreferClose\n  ports: [{port: 80, targetPort: 8080}]\n",
    );
    let hints = || {
        c.ok(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=close",
            "-o",
            "jsonpath={.items[*].endpoints[*].hints.forZones[*].name}",
        ])
    };
    assert_eventually!(
        90,
        hints().split_whitespace().count() == 3,
        "hints never set for 3 endpoints: {:?}; pods: {}",
        hints(),
        c.ok(&["get", "pods", "-o", "wide"])
    );
    let on_node = |node: &str| -> HashSet<String> {
        let pods = json(&c.ok(&["get", "pods", "-l", "app=web", "-o", "json"]));
        pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["spec"]["nodeName"] == node)
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (zone_b, all) = (on_node("node2"), web_pods(&c));
    assert!(!zone_b.is_empty() && zone_b.len() < all.len(), "the pods should be on both nodes: {all:?} / {zone_b:?}");
    let vip = svc_ip(&c, "close");
    let seen = |c: &Cluster, tries: usize| -> HashSet<String> {
        (0..tries).map(|_| hit(c, &format!("http://{vip}"))).collect()
    };
    let got = seen(&c, 24);
    assert!(got.is_subset(&zone_b), "a client on node2 (zone-b) reached {got:?}, zone-b's pods are {zone_b:?}");

    // node2 leaves its zone: its proxy uses every endpoint again.
    c.ok(&["label", "node", "node2", "topology.kubernetes.io/zone-"]);
    assert_eventually!(
        60,
        !seen(&c, 12).is_subset(&zone_b),
        "node2 still keeps to zone-b's pods after losing its zone"
    );
}
