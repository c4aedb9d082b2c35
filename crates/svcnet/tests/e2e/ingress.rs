//! The Ingress controller end to end: the seed's ingress-http and
//! ingress-https examples, then the routing rules, classes, errors and a
//! WebSocket that outlives 100 configuration changes. curl and a Python
//! WebSocket client talk to `svcnet up --nodes 2` from the host (127.0.0.1
//! listeners) and from a pod (the nodes' addresses, port 80).

use std::collections::HashSet;
use std::process::Command;

use crate::assert_eventually;
use crate::harness::{Cluster, json};

fn example(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/");
    std::fs::read_to_string(format!("{path}{name}")).unwrap_or_else(|e| panic!("examples/{name}: {e}"))
}

/// curl through the host listener, `host` resolved to 127.0.0.1; returns
/// (status, body).
fn curl(port: u16, host: &str, path: &str, extra: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "10", "-o", "-", "-w", "\n%{http_code}"])
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .args(extra)
        .arg(format!("http://{host}:{port}{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The pod that answered (first word of the echoserver's first line).
fn pod_of(body: &str) -> String {
    body.lines().next().unwrap_or("").split(' ').next().unwrap_or("").to_string()
}

fn pods(c: &Cluster, ns: &str, selector: &str) -> HashSet<String> {
    c.ok(&["get", "pods", "-n", ns, "-l", selector, "-o", "jsonpath={.items[*].metadata.name}"])
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn ready_endpoints(c: &Cluster, ns: &str, svc: &str) -> usize {
    c.ok(&["get", "ep", svc, "-n", ns, "-o", "jsonpath={.subsets[*].addresses[*].ip}"]).split_whitespace().count()
}

/// Every pod behind `host` answers within `tries` requests.
fn reaches_all(port: u16, host: &str, want: &HashSet<String>, tries: usize) -> HashSet<String> {
    let mut seen = HashSet::new();
    for _ in 0..tries {
        let (code, body) = curl(port, host, "/", &[]);
        assert_eq!(code, 200, "{host}: {body}");
        seen.insert(pod_of(&body));
        if &seen == want {
            break;
        }
    }
    seen
}

fn openssl_cert(dir: &std::path::Path, stem: &str, cn: &str, sans: &str) {
    let status = Command::new("openssl")
        .args(["req", "-x509", "-sha256", "-nodes", "-days", "30", "-newkey", "rsa:2048"])
        .arg("-keyout")
        .arg(dir.join(format!("{stem}.key")))
        .arg("-out")
        .arg(dir.join(format!("{stem}.crt")))
        .args(["-subj", &format!("/O=svcnet-test/CN={cn}"), "-addext", &format!("subjectAltName={sans}")])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success(), "openssl req failed");
}

fn curl_tls(port: u16, host: &str, ca: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["-s", "-m", "10", "-w", "\n%{http_code} %{http_version}"])
        .arg("--cacert")
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .args(extra)
        .arg(format!("https://{host}:{port}/"))
        .output()
        .expect("curl")
}

#[test]
fn seed_ingress_http_and_https() {
    let c = Cluster::with_nodes(2);
    let (http, https) = (c.http_port, c.https_port);
    for f in ["namespace-dev.yaml", "nginx-deployment.yaml", "tomcat-deployment.yaml"] {
        c.apply(&example(f));
    }
    c.apply(&example("nginx-service.yaml"));
    c.apply(&example("tomcat-service.yaml"));
    assert_eventually!(
        120,
        ready_endpoints(&c, "dev", "nginx-service") == 3 && ready_endpoints(&c, "dev", "tomcat-service") == 3,
        "backends never became ready: {}",
        c.ok(&["get", "pods", "-n", "dev", "-o", "wide"])
    );
    // The IngressClass `up` made, marked default: the seed's Ingress names none.
    let class = json(&c.ok(&["get", "ingressclass", "svcnet", "-o", "json"]));
    assert_eq!(class["spec"]["controller"], "svcnet.io/ingress-controller");
    assert_eq!(class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"], "true");
    c.apply(&example("ingress-http.yaml"));
    // As kube-apiserver's DefaultIngressClass admission does, the class is
    // filled in on create.
    assert_eq!(c.ok(&["get", "ing", "ingress-http", "-n", "dev", "-o", "jsonpath={.spec.ingressClassName}"]), "svcnet");

    // Status: the nodes' addresses, as `kubectl get ing` shows them.
    assert_eventually!(
        30,
        c.ok(&["get", "ing", "ingress-http", "-n", "dev"]).contains("172.18.0.2,172.18.0.3"),
        "no address in status: {}",
        c.ok(&["get", "ing", "ingress-http", "-n", "dev", "-o", "yaml"])
    );

    // Host rules, every endpoint reached, the original Host and path seen
    // by the backend with the forwarding headers.
    let nginx = pods(&c, "dev", "app=nginx-pod");
    let tomcat = pods(&c, "dev", "app=tomcat-pod");
    assert_eventually!(30, curl(http, "nginx.itheima.com", "/", &[]).0 == 200, "nginx.itheima.com never routed");
    assert_eq!(reaches_all(http, "nginx.itheima.com", &nginx, 40), nginx, "round robin over nginx pods");
    assert_eq!(reaches_all(http, "tomcat.itheima.com", &tomcat, 40), tomcat, "round robin over tomcat pods");
    let (code, body) =
        curl(http, "nginx.itheima.com", "/a/b?x=1", &["-H", "Accept: application/json", "-H", "X-Request-ID: abc-123"]);
    assert_eq!(code, 200, "{body}");
    let seen = json(&body);
    assert_eq!(seen["host"], format!("nginx.itheima.com:{http}"));
    assert_eq!(seen["path"], "/a/b?x=1");
    assert_eq!(seen["namespace"], "dev");
    let headers = &seen["headers"];
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1", "{headers}");
    assert_eq!(headers["x-forwarded-proto"], "http", "{headers}");
    assert!(headers["x-forwarded-host"].as_str().is_some_and(|h| h.starts_with("nginx.itheima.com")), "{headers}");
    assert_eq!(headers["x-request-id"], "abc-123", "{headers}");
    let (code, body) = curl(http, "other.itheima.com", "/", &[]);
    assert_eq!(code, 404, "no rule for this host: {body}");

    // From a pod, through a node's address.
    c.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: client}\nspec:\n  nodeName: node2\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    command: [sleep, \"3600\"]\n",
    );
    c.ok(&["wait", "--for=condition=Ready", "pod/client", "--timeout=120s"]);
    for node in ["172.18.0.2", "172.18.0.3"] {
        let url = format!("http://{node}/");
        let via_node = || {
            let args = ["exec", "client", "--", "curl", "-s", "-m", "5", "-H", "Host: tomcat.itheima.com", &url];
            let out = c.kubectl_with(crate::harness::KUBECTL, &args, None);
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        assert_eventually!(30, tomcat.contains(&pod_of(&via_node())), "via {node}: {}", via_node());
    }

    // TLS from a Secret, chosen by SNI, checked against its certificate.
    let dir = tempfile::tempdir().expect("tempdir");
    openssl_cert(dir.path(), "tls", "itheima.com", "DNS:nginx.itheima.com,DNS:tomcat.itheima.com");
    let (crt, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let (crt_s, key_s) = (crt.display().to_string(), key.display().to_string());
    c.ok(&["create", "secret", "tls", "tls-secret", "-n", "dev", "--cert", &crt_s, "--key", &key_s]);
    c.apply(&example("ingress-https.yaml"));
    assert_eventually!(
        30,
        curl_tls(https, "nginx.itheima.com", &crt, &[]).status.success(),
        "https://nginx.itheima.com never verified: {:?}",
        curl_tls(https, "nginx.itheima.com", &crt, &["-v"])
    );
    let out = curl_tls(https, "tomcat.itheima.com", &crt, &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(tomcat.contains(&pod_of(&text)), "{text}");
    assert!(text.trim_end().ends_with("200 2"), "HTTP/2 over ALPN expected: {text}");
    let out = curl_tls(https, "tomcat.itheima.com", &crt, &["--http1.1"]);
    assert!(String::from_utf8_lossy(&out.stdout).trim_end().ends_with("200 1.1"), "HTTP/1.1 over TLS");
    // A name the Secret does not cover gets the default certificate, which
    // this CA does not sign.
    let out = curl_tls(https, "nobody.example", &crt, &[]);
    assert_eq!(out.status.code(), Some(60), "default certificate expected for an unknown name");
    // Plain HTTP to a TLS host is redirected, as ingress-nginx does.
    let (code, _) = curl(http, "nginx.itheima.com", "/x", &["-D", "-"]);
    assert_eq!(code, 308, "http→https redirect");
    // A Secret change is picked up without a restart.
    openssl_cert(dir.path(), "tls2", "itheima.com", "DNS:nginx.itheima.com,DNS:tomcat.itheima.com");
    let renewed = c.ok(&[
        "create",
        "secret",
        "tls",
        "tls-secret",
        "-n",
        "dev",
        "--dry-run=client",
        "-o",
        "yaml",
        "--cert",
        &dir.path().join("tls2.crt").display().to_string(),
        "--key",
        &dir.path().join("tls2.key").display().to_string(),
    ]);
    c.apply(&renewed);
    let ca2 = dir.path().join("tls2.crt");
    assert_eventually!(
        30,
        curl_tls(https, "nginx.itheima.com", &ca2, &[]).status.success(),
        "renewed certificate never served"
    );
    assert_eq!(curl_tls(https, "nginx.itheima.com", &crt, &[]).status.code(), Some(60), "old certificate still served");
    let out = c.ok(&["get", "ing", "ingress-https", "-n", "dev"]);
    assert!(out.contains("80, 443"), "{out}");
}

const BACKENDS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: svcnet/echoserver, ports: [{containerPort: 8080}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: svcnet/echoserver, ports: [{containerPort: 9090}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: fallback}
spec:
  replicas: 1
  selector: {matchLabels: {app: fallback}}
  template:
    metadata: {labels: {app: fallback}}
    spec:
      containers: [{name: fb, image: svcnet/echoserver, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports: [{name: grpc, port: 9000, targetPort: 9090}, {name: web, port: 8080, targetPort: 9090}]
---
apiVersion: v1
kind: Service
metadata: {name: fallback}
spec:
  selector: {app: fallback}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  selector: {app: nothing}
  ports: [{port: 80}]
"#;

const ROUTES: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: routes}
spec:
  defaultBackend: {service: {name: fallback, port: {number: 80}}}
  rules:
  - http:
      paths:
      - {path: /web, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
      - {path: /api, pathType: Exact, backend: {service: {name: api, port: {name: web}}}}
      - {path: /api/v2, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: wildcard}
spec:
  rules:
  - host: "*.example.com"
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: api, port: {number: 8080}}}}
  - host: empty.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: empty, port: {number: 80}}}}
  - host: missing.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: missing, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: other-class}
spec:
  ingressClassName: other
  rules:
  - host: other.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#;

/// Keeps one WebSocket open through the Ingress, sending a message every
/// 20 ms and checking its echo, until the file named by argv[3] exists;
/// exits 0 only if every echo came back on the same connection.
const WS_CLIENT: &str = r#"
import base64, os, socket, struct, sys, time
port, stop = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(("GET /web/ws HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
head = b""
while b"\r\n\r\n" not in head:
    chunk = s.recv(1)
    if not chunk: sys.exit("closed during the handshake")
    head += chunk
if b" 101 " not in head.split(b"\r\n")[0]: sys.exit("no upgrade: %r" % head)
def recv_exact(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise SystemExit("connection closed after %d messages" % sent)
        b += c
    return b
sent = 0
deadline = time.time() + 120
while not os.path.exists(stop) or sent < 10:
    if time.time() > deadline: sys.exit("never told to stop")
    msg = ("message %d" % sent).encode()
    mask = os.urandom(4)
    s.sendall(bytes([0x81, 0x80 | len(msg)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(msg)))
    h = recv_exact(2)
    n = h[1] & 0x7f
    data = recv_exact(n)
    if data != msg: sys.exit("echo %r for %r" % (data, msg))
    sent += 1
    time.sleep(0.02)
print(sent)
"#;

#[test]
fn routing_rules_classes_errors_and_a_websocket_through_100_changes() {
    let c = Cluster::with_nodes(2);
    let http = c.http_port;
    c.apply(BACKENDS);
    assert_eventually!(
        120,
        ready_endpoints(&c, "default", "web") == 2
            && ready_endpoints(&c, "default", "api") == 1
            && ready_endpoints(&c, "default", "fallback") == 1,
        "backends never became ready: {}",
        c.ok(&["get", "pods", "-o", "wide"])
    );
    c.apply(ROUTES);
    let web = pods(&c, "default", "app=web");
    let api = pods(&c, "default", "app=api");
    let fallback = pods(&c, "default", "app=fallback");
    let who = |host: &str, path: &str| {
        let (code, body) = curl(http, host, path, &[]);
        (code, pod_of(&body))
    };
    assert_eventually!(30, web.contains(&who("any.host", "/web").1), "routes never served");

    // Path rules from the Kubernetes documentation's table.
    for (path, want) in [
        ("/web", &web),
        ("/web/", &web),
        ("/web/x/y", &web),
        ("/webx", &fallback), // Prefix matches whole path elements
        ("/api", &api),       // Exact
        ("/api/", &fallback), // Exact does not match a trailing slash
        ("/api/v2", &web),    // longest match
        ("/api/v2/users", &web),
        ("/", &fallback), // defaultBackend
    ] {
        let (code, pod) = who("any.host", path);
        assert_eq!(code, 200, "{path}");
        assert!(want.contains(&pod), "{path} reached {pod}, expected one of {want:?}");
    }
    // Wildcards match exactly one label; an exact host beats the rules
    // without a host.
    assert!(api.contains(&who("a.example.com", "/web").1), "*.example.com matches a.example.com");
    assert!(web.contains(&who("a.b.example.com", "/web").1), "*.example.com does not match a.b.example.com");
    assert!(fallback.contains(&who("example.com", "/").1), "*.example.com does not match example.com");
    // Another class is ignored, and gets no status.
    assert!(fallback.contains(&who("other.test", "/").1), "an Ingress of class `other` was served");
    assert_eventually!(
        30,
        !c.ok(&["get", "ing", "routes", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}"]).is_empty(),
        "routes has no status"
    );
    assert_eq!(c.ok(&["get", "ing", "other-class", "-o", "jsonpath={.status.loadBalancer.ingress}"]), "");

    // No endpoints: 503 naming the Service; a missing Service says why in
    // an Event too.
    let (code, body) = curl(http, "empty.test", "/", &[]);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("empty"), "{body}");
    let (code, body) = curl(http, "missing.test", "/", &[]);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("missing"), "{body}");
    assert_eventually!(
        30,
        c.ok(&["get", "events", "--field-selector", "involvedObject.name=wildcard", "-o", "json"]).contains("missing"),
        "no Event about the missing Service: {}",
        c.ok(&["get", "events"])
    );

    // A bad Ingress is refused with the API's validation message.
    let err = c.fails(
        &["apply", "-f", "-"],
        Some(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: bad}\nspec:\n  rules:\n  - http:\n      paths:\n      - {path: /x, backend: {service: {name: web, port: {number: 80}}}}\n",
        ),
    );
    assert!(err.contains("pathType: Required value"), "{err}");

    // A WebSocket stays open while 100 configuration changes are applied:
    // 50 Ingresses created (one kubectl apply), the backend scaled, the
    // 50 deleted.
    c.apply(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: ws}\nspec:\n  rules:\n  - host: ws.test\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}\n",
    );
    assert_eventually!(30, web.contains(&who("ws.test", "/").1), "ws.test never routed");
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("ws.py");
    let stop = dir.path().join("stop");
    std::fs::write(&script, WS_CLIENT).expect("write ws.py");
    let ws = Command::new("python3")
        .arg(&script)
        .arg(http.to_string())
        .arg(&stop)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let churn: String = (0..50)
        .map(|i| {
            format!(
                "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: churn-{i}}}\nspec:\n  rules:\n  - host: churn-{i}.test\n    http:\n      paths:\n      - {{path: /, pathType: Prefix, backend: {{service: {{name: api, port: {{number: 8080}}}}}}}}\n"
            )
        })
        .collect();
    c.apply(&churn);
    assert_eventually!(30, api.contains(&who("churn-49.test", "/").1), "churn Ingresses never served");
    c.ok(&["scale", "deployment", "web", "--replicas=3"]);
    assert_eventually!(60, ready_endpoints(&c, "default", "web") == 3, "web never scaled");
    let names: Vec<String> = (0..50).map(|i| format!("churn-{i}")).collect();
    let mut delete = vec!["delete", "ingress"];
    delete.extend(names.iter().map(String::as_str));
    c.ok(&delete);
    assert_eventually!(30, fallback.contains(&who("churn-49.test", "/").1), "churn Ingresses never removed");
    std::fs::write(&stop, "").expect("stop file");
    let out = ws.wait_with_output().expect("ws client");
    assert!(
        out.status.success(),
        "the WebSocket did not survive: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
