use super::*;

fn pod(yaml: &str) -> Pod {
    serde_yaml_like(yaml)
}

fn serde_yaml_like(json: &str) -> Pod {
    serde_json::from_str(json).unwrap()
}

fn facts() -> ClusterFacts {
    ClusterFacts {
        dns: "10.96.0.10".parse().unwrap(),
        domain: "cluster.local".into(),
        node_name: "node1".into(),
        node_ip: "172.18.0.2".parse().unwrap(),
    }
}

const HOST_RESOLV: &str = "nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n";

#[test]
fn cluster_first_points_at_cluster_dns_with_the_search_path() {
    let p = pod(r#"{"metadata":{"name":"client","namespace":"dev"},"spec":{"containers":[]}}"#);
    assert_eq!(
        resolv_conf(&p, &facts(), HOST_RESOLV),
        "search dev.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
    );
}

#[test]
fn dns_policies_follow_the_kubelet() {
    let host_net = pod(r#"{"metadata":{"name":"h"},"spec":{"hostNetwork":true,"containers":[]}}"#);
    assert_eq!(
        resolv_conf(&host_net, &facts(), HOST_RESOLV),
        "search corp.example\nnameserver 192.0.2.53\noptions edns0\n"
    );
    let with_host_net = pod(
        r#"{"metadata":{"name":"h"},"spec":{"hostNetwork":true,"dnsPolicy":"ClusterFirstWithHostNet","containers":[]}}"#,
    );
    assert!(resolv_conf(&with_host_net, &facts(), HOST_RESOLV).contains("nameserver 10.96.0.10\n"));
    let none = pod(
        r#"{"metadata":{"name":"n"},"spec":{"dnsPolicy":"None","dnsConfig":{"nameservers":["1.2.3.4"],"searches":["a.b"],
        "options":[{"name":"ndots","value":"2"},{"name":"edns0"}]},"containers":[]}}"#,
    );
    assert_eq!(resolv_conf(&none, &facts(), HOST_RESOLV), "search a.b\nnameserver 1.2.3.4\noptions ndots:2 edns0\n");
    let merged = pod(
        r#"{"metadata":{"name":"m","namespace":"x"},"spec":{"dnsConfig":{"options":[{"name":"ndots","value":"1"}]},"containers":[]}}"#,
    );
    assert!(resolv_conf(&merged, &facts(), HOST_RESOLV).ends_with("options ndots:1\n"));
}

#[test]
fn hosts_name_the_pod_and_its_subdomain() {
    let p = pod(r#"{"metadata":{"name":"web-0","namespace":"dev"},"spec":{"hostname":"web-0","subdomain":"web",
        "hostAliases":[{"ip":"10.1.2.3","hostnames":["foo.local","bar.local"]}],"containers":[]}}"#);
    let h = hosts_file(&p, "10.244.1.5".parse().unwrap(), &facts());
    assert!(h.contains("10.244.1.5\tweb-0.web.dev.svc.cluster.local\tweb-0\n"), "{h}");
    assert!(h.contains("10.1.2.3\tfoo.local\tbar.local\n"), "{h}");
    assert!(h.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
}

#[test]
fn hostnames_are_cut_to_a_label() {
    let long = "a".repeat(62) + "-bcd";
    let p = pod(&format!(r#"{{"metadata":{{"name":"{long}"}},"spec":{{"containers":[]}}}}"#));
    assert_eq!(hostname(&p), "a".repeat(62));
}

#[test]
fn the_echoserver_image_runs_builtin_with_its_declared_ports() {
    let c: Container = serde_json::from_str(
        r#"{"name":"web","image":"svcnet/echoserver:1.0","ports":[{"containerPort":80},{"containerPort":53,"protocol":"UDP"},{"containerPort":8080,"protocol":"TCP"}]}"#,
    )
    .unwrap();
    let l = launch(&c, 0, &echoserver_argv(Path::new("/usr/bin/svcnet"))).unwrap();
    assert_eq!(l.argv, ["/usr/bin/svcnet", "echoserver"]);
    assert!(l.env.contains(&("SVCNET_ECHO_TCP_PORTS".into(), "80,8080".into())));
    assert!(l.env.contains(&("SVCNET_ECHO_UDP_PORTS".into(), "53".into())));
    for image in ["svcnet/echoserver", "docker.io/svcnet/echoserver:latest", "svcnet/echoserver@sha256:00"] {
        assert!(is_echoserver(image), "{image}");
    }
    for image in ["nginx:1.17.1", "svcnet/echoserverx", "example.com/svcnet/echoserver"] {
        assert!(!is_echoserver(image), "{image}");
    }
}

#[test]
fn the_echoserver_program_beside_svcnet_runs_the_image_when_installed() {
    let dir = tempfile::tempdir().unwrap();
    let svcnet = dir.path().join("svcnet");
    std::fs::write(&svcnet, "").unwrap();
    assert_eq!(echoserver_argv(&svcnet), [svcnet.display().to_string(), "echoserver".into()]);
    let program = dir.path().join("svcnet-echoserver");
    std::fs::write(&program, "").unwrap();
    assert_eq!(echoserver_argv(&svcnet), [program.display().to_string()]);
    let c: Container =
        serde_json::from_str(r#"{"name":"web","image":"svcnet/echoserver","ports":[{"containerPort":80}]}"#).unwrap();
    let l = launch(&c, 0, &echoserver_argv(&svcnet)).unwrap();
    assert_eq!(l.argv, [program.display().to_string()]);
    assert!(l.env.contains(&("SVCNET_ECHO_TCP_PORTS".into(), "80".into())));
}

#[test]
fn an_image_without_a_command_waits_with_a_reason() {
    let c: Container = serde_json::from_str(r#"{"name":"nginx","image":"nginx:1.17.1"}"#).unwrap();
    let w = launch(&c, 1, &echoserver_argv(Path::new("/svcnet"))).unwrap_err();
    assert_eq!(w.reason, "ErrImagePull");
    assert!(
        w.message.contains("\"nginx:1.17.1\"") && w.message.contains("spec.containers[1].command"),
        "{}",
        w.message
    );
    let c: Container =
        serde_json::from_str(r#"{"name":"nginx","image":"nginx","command":["sleep"],"args":["30"]}"#).unwrap();
    assert_eq!(launch(&c, 0, &echoserver_argv(Path::new("/svcnet"))).unwrap().argv, ["sleep", "30"]);
}

#[test]
fn images_without_an_entrypoint_run_their_args_or_their_cmd() {
    let run = |json: &str| launch(&serde_json::from_str::<Container>(json).unwrap(), 0, &[]).map(|l| l.argv);
    let args = r#","args":["wget","-qO-","http://web"]}"#;
    for image in ["busybox", "busybox:1.36", "docker.io/library/busybox@sha256:abc", "library/busybox"] {
        let argv = run(&format!(r#"{{"name":"t","image":"{image}"{args}"#)).unwrap();
        assert_eq!(argv, ["wget", "-qO-", "http://web"], "{image}");
    }
    assert_eq!(run(r#"{"name":"t","image":"busybox"}"#).unwrap(), ["sh"]);
    assert_eq!(run(r#"{"name":"t","image":"alpine:3.20"}"#).unwrap(), ["/bin/sh"]);
    // A command still replaces everything.
    assert_eq!(run(r#"{"name":"t","image":"busybox","command":["sleep"],"args":["9"]}"#).unwrap(), ["sleep", "9"]);
    // curlimages/curl: curl with the args, unless the first is a program.
    assert_eq!(
        run(r#"{"name":"t","image":"curlimages/curl","args":["-s","http://web"]}"#).unwrap(),
        ["curl", "-s", "http://web"]
    );
    assert_eq!(run(r#"{"name":"t","image":"curlimages/curl","args":["sh","-c","x"]}"#).unwrap(), ["sh", "-c", "x"]);
    // An image with an entrypoint svcnet does not have still waits.
    assert_eq!(run(r#"{"name":"t","image":"nginx","args":["-g","daemon off;"]}"#).unwrap_err().reason, "ErrImagePull");
}

#[test]
fn environment_resolves_the_downward_api_and_expands_references() {
    let p = pod(
        r#"{"metadata":{"name":"p","namespace":"dev","uid":"u-1","labels":{"app":"web"}},"spec":{"containers":[]}}"#,
    );
    let c: Container = serde_json::from_str(
        r#"{"name":"c","env":[{"name":"A","value":"x"},{"name":"B","value":"$(A)-$(NOPE)-$$(A)"},
        {"name":"IP","valueFrom":{"fieldRef":{"fieldPath":"status.podIP"}}},
        {"name":"APP","valueFrom":{"fieldRef":{"fieldPath":"metadata.labels['app']"}}},
        {"name":"NODE","valueFrom":{"fieldRef":{"fieldPath":"spec.nodeName"}}}]}"#,
    )
    .unwrap();
    let f = PodFacts {
        pod: &p,
        pod_ip: "10.244.1.9".parse().unwrap(),
        host_ip: "172.18.0.2".parse().unwrap(),
        node_name: "node1",
    };
    let env = environment(&c, &f, "p");
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("B"), Some("x-$(NOPE)-$(A)"));
    assert_eq!(get("IP"), Some("10.244.1.9"));
    assert_eq!(get("APP"), Some("web"));
    assert_eq!(get("NODE"), Some("node1"));
    assert_eq!(get("SVCNET_POD_NAMESPACE"), Some("dev"));
    assert_eq!(get("HOSTNAME"), Some("p"));
    assert_eq!(expand_argv(&["echo".into(), "$(A)".into()], &env), ["echo", "x"]);
}
