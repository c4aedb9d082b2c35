//! What a pod's spec means for its sandbox, as pure functions: the files
//! it sees over `/etc`, its hostname, each container's command and
//! environment.

use std::net::Ipv4Addr;
use std::path::Path;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};

/// The image svcnet runs itself; any tag.
pub const ECHOSERVER_IMAGE: &str = "svcnet/echoserver";

/// The program of the built-in image, when installed next to `svcnet`.
pub const ECHOSERVER_PROGRAM: &str = "svcnet-echoserver";

/// How the built-in image is run: the `svcnet-echoserver` program beside
/// the `svcnet` binary, which starts in a fraction of the time (it is
/// much smaller), or else `svcnet echoserver`.
pub fn echoserver_argv(svcnet_exe: &Path) -> Vec<String> {
    let program = svcnet_exe.with_file_name(ECHOSERVER_PROGRAM);
    if svcnet_exe.file_name().is_some() && program.is_file() {
        vec![program.display().to_string()]
    } else {
        vec![svcnet_exe.display().to_string(), "echoserver".into()]
    }
}

/// Cluster facts the pod files depend on.
#[derive(Debug, Clone)]
pub struct ClusterFacts {
    pub dns: Ipv4Addr,
    pub domain: String,
    pub node_name: String,
    pub node_ip: Ipv4Addr,
}

pub fn spec(pod: &Pod) -> PodSpec {
    pod.spec.clone().unwrap_or_default()
}

pub fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("")
}

pub fn namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}

pub fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

/// The pod's hostname: `spec.hostname`, else its name cut to 63
/// characters (without a trailing `-` or `.`), as the kubelet does.
pub fn hostname(pod: &Pod) -> String {
    let spec = pod.spec.as_ref();
    if let Some(h) = spec.and_then(|s| s.hostname.as_deref()).filter(|h| !h.is_empty()) {
        return h.to_string();
    }
    let name = name(pod);
    let cut = &name[..name.len().min(63)];
    cut.trim_end_matches(['-', '.']).to_string()
}

/// `/etc/resolv.conf` for the pod's `dnsPolicy` and `dnsConfig`.
/// `host_resolv` is the node's own resolv.conf, for `Default`.
pub fn resolv_conf(pod: &Pod, facts: &ClusterFacts, host_resolv: &str) -> String {
    let spec = spec(pod);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let host_network = spec.host_network.unwrap_or(false);
    let cluster = match policy {
        "ClusterFirst" => !host_network,
        "ClusterFirstWithHostNet" => true,
        _ => false,
    };
    let mut nameservers: Vec<String> = Vec::new();
    let mut searches: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    if cluster {
        nameservers.push(facts.dns.to_string());
        let d = &facts.domain;
        searches.extend([format!("{}.svc.{d}", namespace(pod)), format!("svc.{d}"), d.clone()]);
        options.push("ndots:5".into());
    } else if policy != "None" {
        for line in host_resolv.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => nameservers.extend(words.next().map(str::to_string)),
                Some("search") | Some("domain") => searches.extend(words.map(str::to_string)),
                Some("options") => options.extend(words.map(str::to_string)),
                _ => {}
            }
        }
    }
    if let Some(cfg) = &spec.dns_config {
        for n in cfg.nameservers.iter().flatten() {
            if !nameservers.contains(n) {
                nameservers.push(n.clone());
            }
        }
        for s in cfg.searches.iter().flatten() {
            if !searches.contains(s) {
                searches.push(s.clone());
            }
        }
        for o in cfg.options.iter().flatten() {
            let rendered = match &o.value {
                Some(v) => format!("{}:{v}", o.name.as_deref().unwrap_or("")),
                None => o.name.clone().unwrap_or_default(),
            };
            let key = rendered.split(':').next().unwrap_or("").to_string();
            options.retain(|e| e.split(':').next() != Some(&key));
            options.push(rendered);
        }
    }
    let mut out = String::new();
    if !searches.is_empty() {
        out.push_str(&format!("search {}\n", searches.join(" ")));
    }
    // The resolver reads at most three nameservers.
    for n in nameservers.iter().take(3) {
        out.push_str(&format!("nameserver {n}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// The kubelet-managed `/etc/hosts`.
pub fn hosts_file(pod: &Pod, ip: Ipv4Addr, facts: &ClusterFacts) -> String {
    let spec = spec(pod);
    let mut out = String::from("# Kubernetes-managed hosts file.\n");
    out.push_str("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    out.push_str("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n");
    let host = hostname(pod);
    match spec.subdomain.as_deref().filter(|s| !s.is_empty()) {
        Some(sub) => out.push_str(&format!("{ip}\t{host}.{sub}.{}.svc.{}\t{host}\n", namespace(pod), facts.domain)),
        None => out.push_str(&format!("{ip}\t{host}\n")),
    }
    for alias in spec.host_aliases.iter().flatten() {
        let names = alias.hostnames.clone().unwrap_or_default();
        if !names.is_empty() {
            out.push_str(&format!("\n# Entries added by HostAliases.\n{}\t{}\n", alias.ip, names.join("\t")));
        }
    }
    out
}

/// Why a container cannot start, as the kubelet reports a waiting container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// What to run for a container: `argv`, plus extra environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// An image reference without its registry (Docker Hub's), tag or digest:
/// `docker.io/library/busybox:1.36` is `busybox`.
fn repository(image: &str) -> &str {
    let repo = image.split('@').next().unwrap_or(image);
    let repo = match repo.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r,
        _ => repo,
    };
    let repo = repo.strip_prefix("docker.io/").unwrap_or(repo);
    repo.strip_prefix("library/").unwrap_or(repo)
}

pub fn is_echoserver(image: &str) -> bool {
    repository(image) == ECHOSERVER_IMAGE
}

/// Well-known images whose ENTRYPOINT is empty, with their CMD: their
/// containers run `args` as given (or the CMD without args), which host
/// programs can do. `kubectl run t --image=busybox -- wget -qO- http://web`
/// is the usual way to try a Service from inside the cluster.
const SHELL_IMAGES: &[(&str, &[&str])] = &[
    ("busybox", &["sh"]),
    ("alpine", &["/bin/sh"]),
    ("ubuntu", &["/bin/bash"]),
    ("debian", &["bash"]),
    ("fedora", &["/bin/bash"]),
    ("centos", &["/bin/bash"]),
    ("rockylinux", &["/bin/bash"]),
    ("almalinux", &["/bin/bash"]),
    ("amazonlinux", &["/bin/bash"]),
    ("nicolaka/netshoot", &["zsh"]),
    ("python", &["python3"]),
];

/// `curlimages/curl` runs `curl "$@"` unless its first argument is a
/// program (its entrypoint script's rule).
const CURL_IMAGE: &str = "curlimages/curl";

/// The process for a container. Containers are host processes, so an image
/// only matters when svcnet has it built in; any other image needs a
/// command. `echoserver` is how the built-in image runs
/// ([`echoserver_argv`]).
pub fn launch(container: &Container, index: usize, echoserver: &[String]) -> Result<Launch, Waiting> {
    let image = container.image.clone().unwrap_or_default();
    let command = container.command.clone().unwrap_or_default();
    let args = container.args.clone().unwrap_or_default();
    if is_echoserver(&image) && command.is_empty() {
        let ports = |proto: &str| -> String {
            container
                .ports
                .iter()
                .flatten()
                .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == proto)
                .map(|p| p.container_port.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        return Ok(Launch {
            argv: echoserver.to_vec(),
            env: vec![("SVCNET_ECHO_TCP_PORTS".into(), ports("TCP")), ("SVCNET_ECHO_UDP_PORTS".into(), ports("UDP"))],
        });
    }
    if command.is_empty() {
        let repo = repository(&image);
        if let Some((_, cmd)) = SHELL_IMAGES.iter().find(|(name, _)| *name == repo) {
            let argv = if args.is_empty() { cmd.iter().map(|c| c.to_string()).collect() } else { args };
            return Ok(Launch { argv, env: Vec::new() });
        }
        if repo == CURL_IMAGE {
            let program_first = args.first().is_some_and(|a| !a.starts_with('-') && on_path(a));
            let argv = if program_first { args } else { std::iter::once("curl".to_string()).chain(args).collect() };
            return Ok(Launch { argv, env: Vec::new() });
        }
        return Err(Waiting {
            reason: "ErrImagePull".into(),
            message: format!(
                "svcnet runs containers as host processes and has no image store: image {image:?} has no \
                 built-in entrypoint; set spec.containers[{index}].command to run a host program, or use image \
                 {ECHOSERVER_IMAGE} (or an image without an entrypoint, such as busybox, with args)"
            ),
        });
    }
    Ok(Launch { argv: command.into_iter().chain(args).collect(), env: Vec::new() })
}

/// Whether `program` names an executable: a path, or a name found on PATH.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |p: &Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        return executable(Path::new(program));
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| executable(&dir.join(program))))
        .unwrap_or(false)
}

/// Values the downward API and the environment can refer to.
#[derive(Debug, Clone)]
pub struct PodFacts<'a> {
    pub pod: &'a Pod,
    pub pod_ip: Ipv4Addr,
    pub host_ip: Ipv4Addr,
    pub node_name: &'a str,
}

fn field_ref(path: &str, f: &PodFacts<'_>) -> Option<String> {
    let meta = &f.pod.metadata;
    let spec = f.pod.spec.as_ref();
    if let Some(rest) = path.strip_prefix("metadata.labels['").and_then(|r| r.strip_suffix("']")) {
        return meta.labels.as_ref().and_then(|l| l.get(rest)).cloned();
    }
    if let Some(rest) = path.strip_prefix("metadata.annotations['").and_then(|r| r.strip_suffix("']")) {
        return meta.annotations.as_ref().and_then(|l| l.get(rest)).cloned();
    }
    Some(match path {
        "metadata.name" => meta.name.clone()?,
        "metadata.namespace" => meta.namespace.clone()?,
        "metadata.uid" => meta.uid.clone()?,
        "spec.nodeName" => f.node_name.to_string(),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.podIP" | "status.podIPs" => f.pod_ip.to_string(),
        "status.hostIP" | "status.hostIPs" => f.host_ip.to_string(),
        _ => return None,
    })
}

/// Expands `$(VAR)` references to variables defined earlier, as the
/// kubelet does; `$$` escapes a `$`; unknown references stay as written.
pub fn expand(value: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("$$") {
            out.push('$');
            rest = t;
        } else if let Some(close) = tail.strip_prefix("$(").and_then(|t| t.find(')')) {
            let name = &tail[2..2 + close];
            match env.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&tail[..3 + close]),
            }
            rest = &tail[3 + close..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// A container's environment: PATH, HOSTNAME, the pod identity variables
/// the echoserver reads, then `env` in order (values from the downward API
/// resolved, `$(VAR)` expanded).
pub fn environment(container: &Container, facts: &PodFacts<'_>, hostname: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()),
        ("HOSTNAME".into(), hostname.into()),
        ("SVCNET_POD_NAME".into(), name(facts.pod).into()),
        ("SVCNET_POD_NAMESPACE".into(), namespace(facts.pod).into()),
        ("SVCNET_NODE_NAME".into(), facts.node_name.into()),
        ("SVCNET_POD_IP".into(), facts.pod_ip.to_string()),
    ];
    for var in container.env.iter().flatten() {
        let value = if let Some(v) = &var.value {
            expand(v, &env)
        } else if let Some(path) =
            var.value_from.as_ref().and_then(|f| f.field_ref.as_ref()).map(|r| r.field_path.as_str())
        {
            field_ref(path, facts).unwrap_or_default()
        } else {
            String::new()
        };
        env.retain(|(k, _)| k != &var.name);
        env.push((var.name.clone(), value));
    }
    env
}

/// `$(VAR)` expansion in command and args, against the container's
/// environment.
pub fn expand_argv(argv: &[String], env: &[(String, String)]) -> Vec<String> {
    argv.iter().map(|a| expand(a, env)).collect()
}

#[cfg(test)]
mod tests;
