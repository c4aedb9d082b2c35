//! The official Python client (from PyPI) creates, lists and watches
//! Services. test.sh installs it into a venv and names the interpreter in
//! SVCNET_TEST_PYTHON.

use crate::harness::Cluster;

const SCRIPT: &str = r#"
import sys, threading
from kubernetes import client, config, watch
config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
seen = []
def follow(rv):
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_service, "default", resource_version=rv, timeout_seconds=10):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) >= 2:
            w.stop()
rv = v1.list_namespaced_service("default").metadata.resource_version
t = threading.Thread(target=follow, args=(rv,))
t.start()
for name in ["py-a", "py-b"]:
    svc = client.V1Service(
        metadata=client.V1ObjectMeta(name=name, labels={"from": "python"}),
        spec=client.V1ServiceSpec(selector={"app": name}, ports=[client.V1ServicePort(port=80, target_port=8080)]),
    )
    v1.create_namespaced_service("default", svc)
t.join()
names = sorted(s.metadata.name for s in v1.list_namespaced_service("default", label_selector="from=python").items)
print("LIST", ",".join(names))
print("WATCH", ",".join(f"{t}:{n}" for t, n in seen))
try:
    v1.read_namespaced_service("missing", "default")
except client.exceptions.ApiException as e:
    print("MISSING", e.status)
"#;

#[test]
fn the_python_client_creates_lists_and_watches_services() {
    let Ok(python) = std::env::var("SVCNET_TEST_PYTHON") else {
        panic!("SVCNET_TEST_PYTHON is not set: run the suite through ./test.sh, which installs the Python client");
    };
    let c = Cluster::start();
    let script = c.dir.path().join("client.py");
    std::fs::write(&script, SCRIPT).expect("write");
    let out = std::process::Command::new(python).arg(&script).arg(c.kubeconfig()).output().expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("LIST py-a,py-b"), "{stdout}");
    assert!(stdout.contains("WATCH ADDED:py-a,ADDED:py-b"), "{stdout}");
    assert!(stdout.contains("MISSING 404"), "{stdout}");
}
