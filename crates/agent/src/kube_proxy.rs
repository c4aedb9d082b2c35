//! kube-proxy as a Kubernetes user finds it on a kubeadm cluster: a
//! ConfigMap `kube-system/kube-proxy` whose `config.conf` is a
//! `KubeProxyConfiguration`, and one pod per node labelled
//! `k8s-app=kube-proxy`. The way to change the proxy mode is the kubeadm
//! one:
//!
//! ```sh
//! kubectl edit cm kube-proxy -n kube-system            # mode: "iptables"
//! kubectl delete pod -l k8s-app=kube-proxy -n kube-system
//! ```
//!
//! The node's proxy runs inside its agent, so its pod is a mirror pod
//! (annotation `kubernetes.io/config.mirror`, owned by the Node), which the
//! pod runtime does not run. [`KubeProxy`] keeps that pod in step with the
//! proxy: when the pod is deleted, it stops the proxy (which removes its
//! rules), starts it again in the mode the ConfigMap names, and publishes a
//! new pod, as a DaemonSet would replace it. Connections already tracked
//! by conntrack survive the change of kernel mode; connections through the
//! userspace proxy do not.
//!
//! Modes: `nftables`, `iptables`, `userspace` (round robin) and
//! `userspace-lc`; an empty mode is `iptables`, kube-proxy's default on
//! Linux. `ipvs` runs `iptables` with a Warning event: svcnet has no IPVS
//! data plane and this kernel has no `ip_vs` (kube-proxy, too, used to fall
//! back to iptables when IPVS was missing). A mode that is none of these
//! keeps the proxy as it was, with a Warning event naming the field.

use std::fs::File;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;
use svcnet_client::events::{EventType, Recorder, reference};
use svcnet_client::{Api, Client, ReflectorConfig};
use svcnet_client::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::access::{AccessError, LogRef};

/// Where kube-proxy's configuration and pods live.
pub const NAMESPACE: &str = "kube-system";
/// The ConfigMap, and the prefix of its pods' names.
pub const NAME: &str = "kube-proxy";
/// The ConfigMap key holding the `KubeProxyConfiguration`.
pub const CONFIG_KEY: &str = "config.conf";
/// The label every kube-proxy pod carries, as kubeadm's DaemonSet sets it.
pub const LABEL: &str = "k8s-app=kube-proxy";
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// The mode a pod's proxy runs in, on the pod.
const MODE_ANNOTATION: &str = "svcnet.io/proxy-mode";
const IMAGE: &str = "svcnet/kube-proxy";
/// How long a just-published pod may be missing from the watch before its
/// absence counts as a deletion (a force delete the watch never showed).
const WATCH_LAG: Duration = Duration::from_secs(10);

/// Whether a pod is a mirror pod: the agent reflects something it runs
/// itself, so the pod runtime leaves it alone.
pub fn is_mirror_pod(pod: &Pod) -> bool {
    pod.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
}

/// The mode a `KubeProxyConfiguration` (YAML or JSON) asks for; empty when
/// it names none.
pub fn requested_mode(config: &str) -> Result<String, String> {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(config).map_err(|e| format!("data[{CONFIG_KEY}]: not a KubeProxyConfiguration: {e}"))?;
    match doc.get("mode") {
        None | Some(serde_yaml::Value::Null) => Ok(String::new()),
        Some(serde_yaml::Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("data[{CONFIG_KEY}].mode: Invalid value: {other:?}: must be a string")),
    }
}

/// A requested mode resolved to one this node runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub mode: svcnet_proxy::Mode,
    /// Why the mode differs from the one asked for.
    pub fallback: Option<String>,
}

/// Resolves a `mode` value as kube-proxy reads it on Linux.
pub fn resolve_mode(requested: &str) -> Result<Resolved, String> {
    let plain = |mode| Ok(Resolved { mode, fallback: None });
    match requested {
        "" => plain(svcnet_proxy::Mode::Iptables),
        "ipvs" => Ok(Resolved {
            mode: svcnet_proxy::Mode::Iptables,
            fallback: Some(
                "mode \"ipvs\" needs IP Virtual Server, which svcnet does not implement and this kernel lacks \
                 (no ip_vs module): running in iptables mode, as kube-proxy did when IPVS was unavailable"
                    .to_string(),
            ),
        }),
        "kernelspace" => Err(format!(
            "data[{CONFIG_KEY}].mode: Unsupported value: \"kernelspace\": kernelspace is a Windows mode; \
             supported values: \"iptables\", \"nftables\", \"ipvs\", \"userspace\", \"userspace-lc\""
        )),
        other => svcnet_proxy::Mode::parse(other).map(|mode| Resolved { mode, fallback: None }).map_err(|_| {
            format!(
                "data[{CONFIG_KEY}].mode: Unsupported value: {other:?}: supported values: \"iptables\", \"nftables\", \
                 \"ipvs\", \"userspace\", \"userspace-lc\""
            )
        }),
    }
}

/// The `config.conf` that `svcnet up` publishes: the fields svcnet reads,
/// in kubeadm's layout.
pub fn config_text(mode: svcnet_proxy::Mode, cluster_cidr: &str) -> String {
    format!(
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n\
         kind: KubeProxyConfiguration\n\
         # svcnet reads mode when a kube-proxy pod is deleted and restarts that\n\
         # node's proxy with it: nftables, iptables (also \"\"), userspace,\n\
         # userspace-lc, or ipvs (runs iptables: this kernel has no ip_vs).\n\
         mode: \"{}\"\n\
         clusterCIDR: {cluster_cidr}\n",
        mode_value(mode)
    )
}

/// How a mode is written in the ConfigMap.
fn mode_value(mode: svcnet_proxy::Mode) -> &'static str {
    match mode {
        svcnet_proxy::Mode::Userspace(svcnet_proxy::userspace::Balance::LeastConnections) => "userspace-lc",
        other => other.name(),
    }
}

/// Creates the ConfigMap, or sets its mode when it exists (other edits in
/// it are kept only when the mode already matches).
pub async fn publish_config(
    client: &Client,
    mode: svcnet_proxy::Mode,
    cluster_cidr: &str,
) -> svcnet_client::Result<()> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let text = config_text(mode, cluster_cidr);
    match api.get_opt(NAME).await? {
        Some(existing) => {
            let current = existing.data.as_ref().and_then(|d| d.get(CONFIG_KEY)).map(|c| requested_mode(c));
            if current == Some(Ok(mode_value(mode).to_string())) {
                return Ok(());
            }
            api.patch(NAME, &PatchParams::default(), &Patch::Merge(json!({ "data": { CONFIG_KEY: text } }))).await?;
        }
        None => {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(NAME.to_string()),
                    namespace: Some(NAMESPACE.to_string()),
                    labels: Some([("app".to_string(), NAME.to_string())].into()),
                    ..Default::default()
                },
                data: Some([(CONFIG_KEY.to_string(), text)].into()),
                ..Default::default()
            };
            match api.create(&PostParams::default(), &cm).await {
                Err(e) if e.is_conflict() => {}
                other => {
                    other?;
                }
            }
        }
    }
    Ok(())
}

/// What the supervisor needs to (re)start the node's proxy.
pub(crate) struct Settings {
    pub node: String,
    pub node_ip: std::net::Ipv4Addr,
    pub config: svcnet_proxy::ProxyConfig,
    /// Where the proxy's logs are kept (`kubectl logs` of its pod).
    pub log_dir: PathBuf,
}

/// One run of the proxy's log, a CRI-format file as containers' logs are.
struct LogRun {
    path: PathBuf,
    file: Option<File>,
    finished: watch::Sender<bool>,
}

#[derive(Default)]
struct LogState {
    runs: u32,
    current: Option<LogRun>,
    /// The pod that stands for the current run, once published.
    pod: Option<String>,
}

/// The logs of a node's kube-proxy: one file per run of the proxy, served
/// as the log of the pod that stands for that run. A restart is a new pod,
/// so there is never a previous container to show.
#[derive(Clone, Default)]
pub(crate) struct ProxyLogs {
    dir: PathBuf,
    state: Arc<Mutex<LogState>>,
}

impl ProxyLogs {
    pub fn new(dir: PathBuf) -> ProxyLogs {
        ProxyLogs { dir, state: Arc::default() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the log of a new run; what the proxy logs goes there.
    fn begin(&self) -> svcnet_proxy::LogSink {
        let mut state = self.state();
        state.runs += 1;
        let path = self.dir.join(format!("kube-proxy-{}.log", state.runs));
        let file = std::fs::create_dir_all(&self.dir).and_then(|()| File::create(&path)).ok();
        let run = LogRun { path, file, finished: watch::channel(false).0 };
        if let Some(old) = state.current.replace(run) {
            // A `kubectl logs -f` still reading it ends; the file goes (an
            // open reader keeps what it has).
            let _ = old.finished.send(true);
            let _ = std::fs::remove_file(&old.path);
        }
        state.pod = None;
        let logs = self.clone();
        Arc::new(move |line: String| logs.write(&line))
    }

    /// Appends a line to the current run, as kube-proxy writes to stderr.
    fn write(&self, line: &str) {
        let mut state = self.state();
        if let Some(file) = state.current.as_mut().and_then(|r| r.file.as_mut()) {
            let _ = writeln!(file, "{} stderr F {line}", jiff::Timestamp::now());
        }
    }

    fn published(&self, pod: &str) {
        self.state().pod = Some(pod.to_string());
    }

    /// The log of pod `kube-system/<pod>` when it is this node's kube-proxy.
    pub fn log(&self, namespace: &str, pod: &str, previous: bool) -> Option<Result<LogRef, AccessError>> {
        let state = self.state();
        if namespace != NAMESPACE || state.pod.as_deref() != Some(pod) {
            return None;
        }
        Some(match state.current.as_ref().filter(|_| !previous) {
            Some(r) => Ok(LogRef {
                container: NAME.to_string(),
                path: r.path.clone(),
                finished: r.finished.subscribe(),
                live: None,
            }),
            None => Err(AccessError::bad_request(format!(
                "previous terminated container \"{NAME}\" in pod \"{pod}\" not found"
            ))),
        })
    }
}

/// A node's proxy under supervision: restarted, in the ConfigMap's mode,
/// when its pod is deleted.
pub(crate) struct KubeProxy {
    metrics_addr: Option<SocketAddr>,
    logs: ProxyLogs,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl KubeProxy {
    /// Starts the proxy in `settings.config.mode` and its supervisor.
    pub async fn start(client: Client, mut settings: Settings) -> std::io::Result<KubeProxy> {
        let logs = ProxyLogs::new(settings.log_dir.clone());
        settings.config.log = Some(logs.begin());
        let proxy = svcnet_proxy::Proxy::start(client.clone(), settings.config.clone()).await?;
        let metrics_addr = proxy.metrics_addr();
        // A restarted proxy serves on the same address, which the Node
        // annotation publishes.
        settings.config.metrics = metrics_addr;
        let (stop, stopped) = oneshot::channel();
        let supervisor = Supervisor {
            recorder: Recorder::new(client.clone(), "kubelet"),
            client,
            settings,
            proxy: Some(proxy),
            pod: None,
            pending: Vec::new(),
            logs: logs.clone(),
        };
        let task = tokio::spawn(supervisor.run(stopped));
        Ok(KubeProxy { metrics_addr, logs, stop, task })
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The proxy's log, for its pod's `kubectl logs`.
    pub fn logs(&self) -> ProxyLogs {
        self.logs.clone()
    }

    /// Stops the proxy, which removes what it programmed. The pod object
    /// stays; the next agent of this node replaces it.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(10), &mut task).await.is_err() {
            // Stuck in a restart: stop it rather than leave it running
            // after the agent; the next agent reconciles what it left.
            tracing::warn!("kube-proxy supervisor did not stop in time; aborting it");
            task.abort();
        }
    }
}

/// The pod that stands for the running proxy.
struct Published {
    uid: String,
    name: String,
    /// Whether the watch has shown the pod yet: until then (for a while)
    /// its absence from the store is the watch lagging, not a deletion.
    seen: bool,
    at: std::time::Instant,
    /// Whether its status (Running, Ready) is written.
    status: Option<serde_json::Value>,
}

/// What the ConfigMap says, or why it could not be read.
enum ModeRead {
    Mode(Resolved),
    /// The ConfigMap is wrong: the proxy goes on as it is.
    Invalid(String),
    /// The API server could not be asked: try again later.
    Unavailable(String),
}

struct Supervisor {
    client: Client,
    recorder: Recorder,
    settings: Settings,
    proxy: Option<svcnet_proxy::Proxy>,
    pod: Option<Published>,
    /// Events for the next pod published (why its mode is what it is).
    pending: Vec<(EventType, &'static str, String)>,
    logs: ProxyLogs,
}

impl Supervisor {
    async fn run(mut self, mut stopped: oneshot::Receiver<()>) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NAMESPACE);
        let config = ReflectorConfig::default().labels(LABEL).fields(&format!("spec.nodeName={}", self.settings.node));
        let reflector = svcnet_client::Reflector::new(pods, config);
        let mut sub = reflector.subscribe();
        let store = sub.store().clone();
        let watching = tokio::spawn(reflector.run());
        let mut retry = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                n = sub.recv() => if n.is_none() { break },
                _ = retry.tick() => {}
            }
            if !store.is_synced() {
                continue;
            }
            let ours: Vec<Pod> = store.state().iter().map(|p| (**p).clone()).collect();
            self.reconcile(&ours).await;
        }
        watching.abort();
        if let Some(p) = self.proxy.take() {
            p.shutdown().await;
        }
    }

    /// Brings the node's kube-proxy pods in line with the proxy: the
    /// current pod's deletion restarts the proxy; pods of earlier runs go.
    async fn reconcile(&mut self, pods: &[Pod]) {
        let current = self.pod.as_ref().map(|p| p.uid.clone());
        // Some(None): the pod is gone; Some(Some(pod)): it is being deleted.
        let mut restart_for = None;
        if let Some(published) = self.pod.as_mut() {
            match pods.iter().find(|p| p.metadata.uid.as_deref() == Some(published.uid.as_str())) {
                None if published.seen || published.at.elapsed() > WATCH_LAG => restart_for = Some(None),
                None => {}
                Some(p) if p.metadata.deletion_timestamp.is_some() => restart_for = Some(Some(p.clone())),
                Some(_) => published.seen = true,
            }
        }
        for stale in pods.iter().filter(|p| is_mirror_pod(p) && p.metadata.uid != current) {
            finish_delete(&self.client, stale).await;
        }
        if let Some(old) = restart_for {
            self.restart(old.as_ref()).await;
        }
        if self.proxy.is_none() {
            // Neither mode started at the last restart: keep trying.
            match start_rebinding(&self.client, &self.settings.config).await {
                Ok(p) => self.proxy = Some(p),
                Err(e) => {
                    tracing::warn!(node = %self.settings.node, error = %e, "kube-proxy: starting the proxy failed; retrying")
                }
            }
        }
        if self.pod.is_none() {
            self.publish().await;
        }
        self.write_status().await;
    }

    /// Restarts the proxy in the mode the ConfigMap names, then completes
    /// the old pod's deletion.
    async fn restart(&mut self, old: Option<&Pod>) {
        let resolved = match self.read_mode().await {
            ModeRead::Unavailable(why) => {
                // The deletion is still there on the next tick: try again.
                tracing::warn!(node = %self.settings.node, "kube-proxy: {why}; retrying the restart");
                return;
            }
            ModeRead::Invalid(why) => Err(why),
            ModeRead::Mode(resolved) => Ok(resolved),
        };
        self.pod = None;
        match resolved {
            Ok(resolved) if resolved.mode == self.settings.config.mode && self.proxy.is_some() => {
                // Same mode: the running proxy is what a restarted one
                // would program, so its rules stay and nothing drops.
                self.logs.write(&format!(
                    "Pod replaced; the configuration still names {} mode, the proxy goes on",
                    mode_value(resolved.mode)
                ));
                if let Some(why) = resolved.fallback {
                    self.pending.push((EventType::Warning, "ProxyModeFallback", why));
                }
            }
            Ok(resolved) => {
                if let Some(p) = self.proxy.take() {
                    p.shutdown().await;
                }
                let previous = self.settings.config.mode;
                self.settings.config.mode = resolved.mode;
                self.settings.config.log = Some(self.logs.begin());
                if let Some(why) = &resolved.fallback {
                    self.logs.write(&format!("Warning: {why}"));
                }
                match start_rebinding(&self.client, &self.settings.config).await {
                    Ok(p) => self.proxy = Some(p),
                    Err(e) => {
                        let message = format!(
                            "starting the proxy in {} mode failed ({e}); back in {} mode",
                            mode_value(resolved.mode),
                            mode_value(previous)
                        );
                        tracing::error!(node = %self.settings.node, "kube-proxy: {message}");
                        self.logs.write(&message);
                        self.pending.push((EventType::Warning, "FailedStart", message));
                        // The next reconcile starts it, or keeps trying.
                        self.settings.config.mode = previous;
                    }
                }
                if let Some(why) = resolved.fallback {
                    self.pending.push((EventType::Warning, "ProxyModeFallback", why));
                }
            }
            Err(why) => {
                let message = format!("{why}; the proxy goes on in {} mode", mode_value(self.settings.config.mode));
                tracing::warn!(node = %self.settings.node, "kube-proxy: {message}");
                self.logs.write(&message);
                self.pending.push((EventType::Warning, "InvalidConfiguration", message));
            }
        }
        if let Some(old) = old {
            finish_delete(&self.client, old).await;
        }
    }

    /// The mode the ConfigMap asks for; without a ConfigMap, the current one.
    async fn read_mode(&self) -> ModeRead {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), NAMESPACE);
        let cm = match api.get_opt(NAME).await {
            Ok(cm) => cm,
            Err(e) => return ModeRead::Unavailable(format!("reading ConfigMap {NAMESPACE}/{NAME} failed: {e}")),
        };
        let Some(text) = cm.and_then(|c| c.data).and_then(|mut d| d.remove(CONFIG_KEY)) else {
            return ModeRead::Mode(Resolved { mode: self.settings.config.mode, fallback: None });
        };
        match requested_mode(&text).and_then(|m| resolve_mode(&m)) {
            Ok(r) => ModeRead::Mode(r),
            Err(why) => ModeRead::Invalid(why),
        }
    }

    /// Writes the current pod's status until it is written.
    async fn write_status(&mut self) {
        let Some(published) = self.pod.as_mut() else { return };
        let Some(status) = published.status.as_ref() else { return };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), NAMESPACE);
        match api.patch_status(&published.name, &PatchParams::default(), &Patch::Merge(status)).await {
            Ok(_) => published.status = None,
            Err(e) if e.is_not_found() => published.status = None,
            Err(e) => {
                tracing::debug!(node = %self.settings.node, error = %e, "writing the kube-proxy pod's status failed; retrying")
            }
        }
    }

    /// Creates the pod that stands for the running proxy, with its status,
    /// and records the events waiting for it.
    async fn publish(&mut self) {
        if self.proxy.is_none() {
            return;
        }
        let nodes: Api<Node> = Api::all(self.client.clone());
        // The pod is owned by its Node, as mirror pods are; until the
        // agent has registered the Node, try again on the next tick.
        let Ok(Some(node)) = nodes.get_opt(&self.settings.node).await else { return };
        let mode = mode_value(self.settings.config.mode);
        let suffix: String = {
            use rand::Rng;
            const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
            let mut rng = rand::rng();
            (0..5).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
        };
        let name = format!("{NAME}-{suffix}");
        let pod: Pod = match serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "labels": { "k8s-app": NAME },
                "annotations": { MIRROR_ANNOTATION: suffix, MODE_ANNOTATION: mode },
                "ownerReferences": [{
                    "apiVersion": "v1", "kind": "Node", "name": self.settings.node,
                    "uid": node.metadata.uid.unwrap_or_default(), "controller": true,
                }],
            },
            "spec": {
                "nodeName": self.settings.node,
                "hostNetwork": true,
                "priorityClassName": "system-node-critical",
                "terminationGracePeriodSeconds": 30,
                "tolerations": [{ "operator": "Exists" }],
                "containers": [{
                    "name": NAME,
                    "image": IMAGE,
                    "command": ["kube-proxy", "--config=/var/lib/kube-proxy/config.conf",
                                format!("--hostname-override={}", self.settings.node)],
                    "volumeMounts": [{ "name": NAME, "mountPath": "/var/lib/kube-proxy" }],
                }],
                "volumes": [{ "name": NAME, "configMap": { "name": NAME } }],
            },
        })) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "kube-proxy pod does not deserialize");
                return;
            }
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), NAMESPACE);
        let created = match api.create(&PostParams::default(), &pod).await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(node = %self.settings.node, error = %e, "creating the kube-proxy pod failed; retrying");
                return;
            }
        };
        let now = jiff::Timestamp::now().to_string();
        let ip = self.settings.node_ip.to_string();
        let ready = |kind: &str| json!({ "type": kind, "status": "True", "lastTransitionTime": now });
        let status = json!({ "status": {
            "phase": "Running",
            "conditions": [ready("PodReadyToStartContainers"), ready("Initialized"), ready("Ready"),
                           ready("ContainersReady"), ready("PodScheduled")],
            "hostIP": ip, "hostIPs": [{ "ip": ip }], "podIP": ip, "podIPs": [{ "ip": ip }],
            "startTime": now,
            "qosClass": "BestEffort",
            "containerStatuses": [{
                "name": NAME, "image": IMAGE, "imageID": IMAGE, "ready": true, "started": true,
                "restartCount": 0, "containerID": format!("svcnet://{}", created.metadata.uid.as_deref().unwrap_or_default()),
                "state": { "running": { "startedAt": now } },
            }],
        }});
        let object = reference("Pod", "v1", &created.metadata);
        self.recorder.record(
            object.clone(),
            EventType::Normal,
            "Started",
            format!("Started kube-proxy in {mode} mode"),
        );
        for (kind, reason, message) in self.pending.drain(..) {
            self.recorder.record(object.clone(), kind, reason, message);
        }
        tracing::info!(node = %self.settings.node, pod = %name, mode, "kube-proxy pod published");
        self.logs.published(&name);
        self.pod = Some(Published {
            uid: created.metadata.uid.clone().unwrap_or_default(),
            name: name.clone(),
            seen: false,
            at: std::time::Instant::now(),
            status: Some(status),
        });
        self.write_status().await;
    }
}

/// Starts a proxy on the metrics address its predecessor just released.
/// Any process this one forks (a container, `iptables-restore` for another
/// node) holds a copy of every socket until it execs, so the port can stay
/// taken for a moment after the old proxy closed it.
async fn start_rebinding(client: &Client, config: &svcnet_proxy::ProxyConfig) -> std::io::Result<svcnet_proxy::Proxy> {
    let mut tries = 0;
    loop {
        match svcnet_proxy::Proxy::start(client.clone(), config.clone()).await {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// Completes a pod's deletion (the kubelet's final delete), or deletes a
/// pod left by an earlier run.
async fn finish_delete(client: &Client, pod: &Pod) {
    let api: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let params = DeleteParams::default()
        .grace_period(0)
        .preconditions(Preconditions { uid: pod.metadata.uid.clone(), resource_version: None });
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    if let Err(e) = api.delete(name, &params).await {
        if !e.is_not_found() && !e.is_conflict() {
            tracing::warn!(pod = name, error = %e, "deleting a kube-proxy pod failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use svcnet_proxy::Mode;

    #[test]
    fn modes_resolve_as_kube_proxy_reads_them_on_linux() {
        let mode = |s: &str| resolve_mode(s).map(|r| (r.mode, r.fallback.is_some()));
        assert_eq!(mode(""), Ok((Mode::Iptables, false)));
        assert_eq!(mode("iptables"), Ok((Mode::Iptables, false)));
        assert_eq!(mode("nftables"), Ok((Mode::Nftables, false)));
        assert_eq!(mode("ipvs"), Ok((Mode::Iptables, true)));
        assert!(matches!(mode("userspace"), Ok((Mode::Userspace(_), false))));
        let bad = resolve_mode("ipvs2").unwrap_err();
        assert!(bad.contains("data[config.conf].mode: Unsupported value: \"ipvs2\""), "{bad}");
        assert!(resolve_mode("kernelspace").unwrap_err().contains("Windows"));
    }

    #[test]
    fn the_published_config_reads_back_as_its_mode() {
        for mode in
            [Mode::Nftables, Mode::Iptables, Mode::Userspace(svcnet_proxy::userspace::Balance::LeastConnections)]
        {
            let text = config_text(mode, "10.244.0.0/16");
            let requested = requested_mode(&text).unwrap();
            assert_eq!(resolve_mode(&requested).unwrap().mode, mode, "{text}");
        }
        // kubeadm's own file: mode empty, other fields svcnet ignores.
        let kubeadm = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n\
                       ipvs:\n  scheduler: \"\"\nmode: \"\"\n";
        assert_eq!(requested_mode(kubeadm).unwrap(), "");
        assert_eq!(requested_mode("kind: KubeProxyConfiguration\n").unwrap(), "");
        assert!(requested_mode("mode: [1]").unwrap_err().contains("mode: Invalid value"));
        assert!(requested_mode("mode: \"x\n").unwrap_err().contains("not a KubeProxyConfiguration"));
    }
}
