//! `kubectl logs` and `kubectl exec` end to end: a real svcnet API server
//! in this process, the agent's streaming server on 127.0.0.1, and real
//! kubectl (1.32, WebSocket exec) against them. The "container" is a
//! `sleep` the test starts in fresh UTS, network and mount namespaces (the
//! tests run as root); its log is a CRI log file the test writes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use svcnet_agent::access::{AccessError, ContainerRef, LogRef, PodAccess};
use svcnet_apiserver::{ApiServer, ApiServerConfig};
use svcnet_store::EmbeddedStore;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

const TOKEN: &str = "agent-test-token";
const KUBECTL: &str = "/usr/bin/kubectl";
const HOSTNAME: &str = "pod-web";

/// Retries `$cond` (which may `.await`) every 50 ms until it holds or
/// `$secs` seconds pass, then fails with the message.
macro_rules! eventually {
    ($secs:expr, $cond:expr, $($msg:tt)+) => {{
        let deadline = tokio::time::Instant::now() + Duration::from_secs($secs);
        loop {
            if $cond {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                panic!($($msg)+);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }};
}

/// The pod runtime's side of the seam, as the test arranges it.
#[derive(Default)]
struct Runtime {
    pods: Mutex<HashMap<String, Vec<FakeContainer>>>,
}

#[derive(Clone)]
struct FakeContainer {
    name: String,
    pid: u32,
    env: Vec<(String, String)>,
    working_dir: Option<PathBuf>,
    log: PathBuf,
    finished: watch::Receiver<bool>,
}

impl Runtime {
    fn find(&self, namespace: &str, pod: &str, container: Option<&str>) -> Result<FakeContainer, AccessError> {
        let pods = self.pods.lock().expect("runtime lock");
        let Some(containers) = pods.get(&format!("{namespace}/{pod}")) else {
            return Err(AccessError::not_found(format!("pod {namespace}/{pod} is not running on this node")));
        };
        let found = match container {
            Some(name) => containers.iter().find(|c| c.name == name),
            None => containers.first(),
        };
        found
            .cloned()
            .ok_or_else(|| AccessError::not_found(format!("container {:?} not found", container.unwrap_or(""))))
    }
}

impl PodAccess for Runtime {
    fn container(&self, namespace: &str, pod: &str, container: Option<&str>) -> Result<ContainerRef, AccessError> {
        let c = self.find(namespace, pod, container)?;
        Ok(ContainerRef { container: c.name, pid: c.pid, env: c.env, working_dir: c.working_dir, stdin: None })
    }

    fn log(&self, namespace: &str, pod: &str, container: Option<&str>, previous: bool) -> Result<LogRef, AccessError> {
        if previous {
            return Err(AccessError::bad_request("previous terminated container not found"));
        }
        let c = self.find(namespace, pod, container)?;
        Ok(LogRef { container: c.name, path: c.log, finished: c.finished, live: None })
    }
}

/// A process the test started; killed and reaped however the test ends.
struct Spawned(std::process::Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running container: its process, log file and "has exited" switch.
struct Container {
    _process: Spawned,
    log: PathBuf,
    finished: watch::Sender<bool>,
    /// A directory that, inside the container's mount namespace only, is a
    /// tmpfs holding `marker`.
    private_dir: PathBuf,
}

impl Container {
    fn write_log(&self, lines: &[&str]) {
        let mut text = String::new();
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file opens");
        std::io::Write::write_all(&mut f, text.as_bytes()).expect("log is written");
    }
}

struct Harness {
    dir: tempfile::TempDir,
    _api: ApiServer,
    kubeconfig: PathBuf,
    agent: SocketAddr,
    runtime: Arc<Runtime>,
    agent_task: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.agent_task.abort();
    }
}

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Harness {
    /// An API server, the agent, and Node `node-1` pointing at the agent.
    async fn start() -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(&dir.path().join("store"), Default::default()).await.expect("store opens");
        let mut config = ApiServerConfig::new(dir.path(), 0);
        config.agent_token = Some(TOKEN.to_string());
        let api = ApiServer::start(config, store as Arc<_>).await.expect("API server starts");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("agent listens");
        let agent = listener.local_addr().expect("agent address");
        let runtime = Arc::new(Runtime::default());
        let agent_task = tokio::spawn(svcnet_agent::streaming::serve(
            listener,
            runtime.clone() as Arc<dyn PodAccess>,
            Some(TOKEN.into()),
        ));
        let h = Harness { kubeconfig: api.kubeconfig.clone(), _api: api, dir, agent, runtime, agent_task };
        h.apply(&format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-1\n  annotations:\n    svcnet.io/agent-endpoint: \"{agent}\"\n"
        ))
        .await;
        h
    }

    async fn apply(&self, yaml: &str) {
        let out = self.kubectl(&["apply", "-f", "-"], Some(yaml)).await;
        assert_eq!(out.code, 0, "kubectl apply failed: {out:?}\n{yaml}");
    }

    /// A pod in `default` with these containers, on `node` if given.
    async fn create_pod(&self, name: &str, containers: &[&str], node: Option<&str>) {
        let mut yaml = format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n");
        if let Some(node) = node {
            yaml.push_str(&format!("  nodeName: {node}\n"));
        }
        yaml.push_str("  containers:\n");
        for c in containers {
            yaml.push_str(&format!("  - name: {c}\n    image: svcnet/echoserver\n"));
        }
        self.apply(&yaml).await;
    }

    /// Starts the container `default/{pod}/{name}` as a sleep in its own
    /// namespaces and tells the runtime about it.
    async fn start_container(&self, pod: &str, name: &str) -> Container {
        let private_dir = self.dir.path().join(format!("private-{pod}-{name}"));
        std::fs::create_dir_all(&private_dir).expect("private dir");
        let script = format!(
            "hostname {HOSTNAME} && mount -t tmpfs tmpfs '{dir}' && echo inside > '{dir}/marker' && exec sleep 300",
            dir = private_dir.display()
        );
        let child = std::process::Command::new("unshare")
            .args(["--uts", "--net", "--mount", "sh", "-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare starts");
        let pid = child.id();
        let process = Spawned(child);
        // Seen through the process's root, the marker exists only once
        // its mount namespace is set up.
        let marker = PathBuf::from(format!("/proc/{pid}/root{}/marker", private_dir.display()));
        eventually!(10, marker.exists(), "the container's namespaces were never set up");
        let log = self.dir.path().join(format!("{pod}-{name}.log"));
        std::fs::write(&log, b"").expect("log file");
        let (finished, finished_rx) = watch::channel(false);
        let fake = FakeContainer {
            name: name.to_string(),
            pid,
            env: vec![("GREETING".into(), "hello from the pod".into())],
            working_dir: Some(private_dir.clone()),
            log: log.clone(),
            finished: finished_rx,
        };
        self.runtime.pods.lock().expect("runtime lock").entry(format!("default/{pod}")).or_default().push(fake);
        Container { _process: process, log, finished, private_dir }
    }

    /// curl against the API server with the admin's client certificate;
    /// stdout is the status code, a space, and the body.
    async fn curl_api(&self, args: &[&str]) -> Out {
        let mut files = Vec::new();
        for (name, field) in [
            ("ca.crt", "{.clusters[0].cluster.certificate-authority-data}"),
            ("client.crt", "{.users[0].user.client-certificate-data}"),
            ("client.key", "{.users[0].user.client-key-data}"),
        ] {
            let out = self.kubectl(&["config", "view", "--raw", "-o", &format!("jsonpath={field}")], None).await;
            assert_eq!(out.code, 0, "{out:?}");
            let path = self.dir.path().join(name);
            let mut decode = tokio::process::Command::new("base64");
            decode.arg("-d").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
            let pem = run(decode, Some(&out.stdout)).await;
            std::fs::write(&path, pem.stdout).expect("PEM file");
            files.push(path);
        }
        let server =
            self.kubectl(&["config", "view", "-o", "jsonpath={.clusters[0].cluster.server}"], None).await.stdout;
        let (path, flags) = args.split_last().expect("a path");
        let mut curl = tokio::process::Command::new("curl");
        curl.arg("-sS")
            .arg("--http1.1")
            .arg("--cacert")
            .arg(&files[0])
            .arg("--cert")
            .arg(&files[1])
            .arg("--key")
            .arg(&files[2]);
        curl.args(["-w", "%{http_code} ", "-o", "/dev/stderr"]).args(flags).arg(format!("{server}{path}"));
        curl.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let out = run(curl, None).await;
        // Body on stderr (-o), code on stdout: put them together.
        Out { code: out.code, stdout: format!("{}{}", out.stdout, out.stderr), stderr: String::new() }
    }

    fn kubectl_command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(KUBECTL);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args).kill_on_drop(true);
        cmd
    }

    async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = self.kubectl_command(args);
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        run(cmd, stdin).await
    }
}

/// Runs a command to its end (at most 60 s), feeding it `stdin`.
async fn run(mut cmd: tokio::process::Command, stdin: Option<&str>) -> Out {
    let mut child = cmd.spawn().expect("command starts");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let text = text.to_string();
        tokio::spawn(async move {
            let _ = pipe.write_all(text.as_bytes()).await;
        });
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the command finishes within 60 s")
        .expect("the command runs");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Collects what a child writes to stdout while it runs.
fn collect(mut pipe: tokio::process::ChildStdout) -> Arc<Mutex<String>> {
    let seen = Arc::new(Mutex::new(String::new()));
    let sink = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0; 4096];
        while let Ok(n) = pipe.read(&mut buf).await {
            if n == 0 {
                return;
            }
            sink.lock().expect("output lock").push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    seen
}

fn text(seen: &Mutex<String>) -> String {
    seen.lock().expect("output lock").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_shows_the_log_plain_tailed_timestamped_and_limited() {
    let h = Harness::start().await;
    h.create_pod("web", &["main"], Some("node-1")).await;
    let c = h.start_container("web", "main").await;
    c.write_log(&[
        "2024-05-01T10:00:00.123456789Z stdout F first line",
        "2024-05-01T10:00:01Z stderr F an error line",
        "2024-05-01T10:00:02.5Z stdout P joined ",
        "2024-05-01T10:00:02.6Z stdout F from two records",
    ]);

    let out = h.kubectl(&["logs", "web"], None).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "first line\nan error line\njoined from two records\n");

    let out = h.kubectl(&["logs", "web", "--tail=1"], None).await;
    assert_eq!(out.stdout, "joined from two records\n", "{out:?}");

    let out = h.kubectl(&["logs", "web", "-c", "main", "--timestamps", "--tail=2"], None).await;
    assert_eq!(
        out.stdout, "2024-05-01T10:00:01Z an error line\n2024-05-01T10:00:02.5Z joined from two records\n",
        "{out:?}"
    );

    let out = h.kubectl(&["logs", "web", "--limit-bytes=8"], None).await;
    assert_eq!(out.stdout, "first li", "{out:?}");

    // Only lines from the last hour: these are from 2024.
    let out = h.kubectl(&["logs", "web", "--since=1h"], None).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");

    let out = h.kubectl(&["logs", "web", "--previous"], None).await;
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("previous terminated container not found"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_follow_streams_new_lines_until_the_container_finishes() {
    let h = Harness::start().await;
    h.create_pod("web", &["main"], Some("node-1")).await;
    let c = h.start_container("web", "main").await;
    c.write_log(&["2024-05-01T10:00:00Z stdout F before"]);

    let mut cmd = h.kubectl_command(&["logs", "-f", "web"]);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut follower = cmd.spawn().expect("kubectl logs -f starts");
    let seen = collect(follower.stdout.take().expect("stdout"));
    eventually!(20, text(&seen) == "before\n", "the existing line never came: {:?}", text(&seen));

    c.write_log(&["2024-05-01T10:00:01Z stdout P while ", "2024-05-01T10:00:02Z stdout F following"]);
    eventually!(10, text(&seen) == "before\nwhile following\n", "the new line never came: {:?}", text(&seen));
    assert!(follower.try_wait().expect("kubectl status").is_none(), "kubectl logs -f ended while the container runs");

    // A second follower that goes away: the agent stops reading for it.
    assert_eq!(open_count(&c.log), 1);
    let mut cmd = h.kubectl_command(&["logs", "-f", "web"]);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut quitter = cmd.spawn().expect("kubectl logs -f starts");
    let quitter_seen = collect(quitter.stdout.take().expect("stdout"));
    eventually!(20, text(&quitter_seen).contains("following"), "the second follower saw {:?}", text(&quitter_seen));
    assert_eq!(open_count(&c.log), 2);
    quitter.start_kill().expect("kubectl is killed");
    let _ = quitter.wait().await;
    eventually!(10, open_count(&c.log) == 1, "the agent kept following for a client that left");

    // The last words, written just before the container is reported
    // finished, still arrive; then the stream ends.
    c.write_log(&["2024-05-01T10:00:03Z stdout F last words"]);
    c.finished.send_replace(true);
    let status = tokio::time::timeout(Duration::from_secs(10), follower.wait())
        .await
        .expect("kubectl logs -f ends once the container finished")
        .expect("kubectl status");
    assert!(status.success());
    eventually!(5, text(&seen) == "before\nwhile following\nlast words\n", "got {:?}", text(&seen));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_passes_stdout_stderr_and_the_exit_code() {
    let h = Harness::start().await;
    h.create_pod("web", &["main"], Some("node-1")).await;
    let _c = h.start_container("web", "main").await;

    let out = h.kubectl(&["exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3"], None).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stdout, "out\n");
    assert!(out.stderr.starts_with("err\n"), "{out:?}");
    assert!(out.stderr.contains("command terminated with exit code 3"), "{out:?}");

    let out = h.kubectl(&["exec", "web", "-c", "main", "--", "true"], None).await;
    assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (0, "", ""), "{out:?}");

    // Larger output arrives whole and in order.
    let out = h.kubectl(&["exec", "web", "--", "sh", "-c", "seq 1 20000"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let want: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    assert!(out.stdout == want, "seq output differs: {} bytes, want {}", out.stdout.len(), want.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_runs_in_the_containers_namespaces_environment_and_directory() {
    let h = Harness::start().await;
    h.create_pod("web", &["main"], Some("node-1")).await;
    let c = h.start_container("web", "main").await;
    let script = "hostname; ip -o link | wc -l; pwd; cat marker; echo \"$GREETING\"; echo \"$PATH\"";
    let out = h.kubectl(&["exec", "web", "--", "sh", "-c", script], None).await;
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    assert_eq!(
        lines,
        [
            HOSTNAME,
            "1", // only lo: the container's network namespace
            c.private_dir.to_str().expect("utf-8 path"),
            "inside", // the tmpfs only the container's mount namespace has
            "hello from the pod",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ],
        "{out:?}"
    );
    assert!(!c.private_dir.join("marker").exists(), "the container's mount leaked to the host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_with_stdin_sees_its_end() {
    let h = Harness::start().await;
    h.create_pod("web", &["main"], Some("node-1")).await;
    let _c = h.start_container("web", "main").await;
    let input = "hello\nworld\n";
    let out = h.kubectl(&["exec", "-i", "web", "--", "cat"], Some(input)).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, input), "{out:?}");
    let out = h.kubectl(&["exec", "-i", "web", "--", "sh", "-c", "wc -l; exit 2"], Some("a\nb\nc\n")).await;
    assert_eq!((out.code, out.stdout.trim()), (2, "3"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_with_a_terminal_gets_a_pty() {
    let h = Harness::start().await;
    h.create_pod("web", &["main"], Some("node-1")).await;
    let _c = h.start_container("web", "main").await;
    // script(1) gives kubectl a terminal, sized so that kubectl sends a
    // resize; `-e` returns the exit code of kubectl. The resize travels
    // beside the process's start (as with the kubelet), so the command
    // gives it a moment before reading the size: on a loaded machine
    // `stty size` could otherwise run first.
    let inner = format!(
        "stty cols 91 rows 27; {KUBECTL} --kubeconfig {} exec -it web -- sh -c 'tty; sleep 1; stty size; echo \"TERM=$TERM\"; exit 5'",
        h.kubeconfig.display()
    );
    let mut cmd = tokio::process::Command::new("script");
    cmd.args(["-qec", &inner, "/dev/null"]).kill_on_drop(true);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = run(cmd, Some("")).await;
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stdout.contains("/dev/pts/"), "{out:?}");
    assert!(out.stdout.contains("27 91"), "the terminal size never arrived: {out:?}");
    assert!(out.stdout.contains("TERM=xterm"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_of_a_missing_command_reports_the_runtime_error() {
    let h = Harness::start().await;
    h.create_pod("web", &["main"], Some("node-1")).await;
    let _c = h.start_container("web", "main").await;
    let out = h.kubectl(&["exec", "web", "--", "nosuch"], None).await;
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("exec: \"nosuch\": executable file not found in $PATH"), "{out:?}");
    let out = h.kubectl(&["exec", "web", "--", "/no/such/file"], None).await;
    assert!(out.stderr.contains("stat /no/such/file: no such file or directory"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_kills_the_exec_process_group() {
    let h = Harness::start().await;
    h.create_pod("web", &["main"], Some("node-1")).await;
    let _c = h.start_container("web", "main").await;
    let mut cmd = h.kubectl_command(&["exec", "web", "--", "sh", "-c", "sleep 1000 & echo $!; wait"]);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut kubectl = cmd.spawn().expect("kubectl exec starts");
    let seen = collect(kubectl.stdout.take().expect("stdout"));
    eventually!(20, text(&seen).ends_with('\n'), "the exec never printed its child's pid: {:?}", text(&seen));
    let pid: u32 = text(&seen).trim().parse().expect("a pid");
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    assert!(proc_dir.exists());
    kubectl.start_kill().expect("kubectl is killed");
    let _ = kubectl.wait().await;
    // The background sleep is in the exec's process group; the agent
    // kills the group (and reaps its leader; init reaps the rest).
    eventually!(10, !alive(&proc_dir), "the exec'd process group outlived its client");
}

/// How many descriptors of this process (the agent's) have `path` open.
fn open_count(path: &Path) -> usize {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else { return 0 };
    fds.filter_map(Result::ok).filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path)).count()
}

/// Whether a process exists and is not a zombie.
fn alive(proc_dir: &Path) -> bool {
    std::fs::read_to_string(proc_dir.join("stat"))
        .map(|s| s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_cannot_reach_a_container_say_why() {
    let h = Harness::start().await;
    h.create_pod("pending", &["main"], None).await;
    h.create_pod("two", &["a", "b"], Some("node-1")).await;
    h.create_pod("ghost", &["main"], Some("node-1")).await;
    h.apply("apiVersion: v1\nkind: Node\nmetadata:\n  name: bare\n").await;
    h.create_pod("stray", &["main"], Some("bare")).await;

    let failure = |out: &Out, want: &str| {
        assert_ne!(out.code, 0, "{out:?}");
        assert!(out.stderr.contains(want), "wanted {want:?} in {out:?}");
    };
    failure(&h.kubectl(&["logs", "pending"], None).await, "pod pending does not have a host assigned");
    failure(&h.kubectl(&["exec", "pending", "--", "true"], None).await, "pod pending does not have a host assigned");
    failure(&h.kubectl(&["logs", "two", "-c", "c"], None).await, "container c is not valid for pod two");
    failure(&h.kubectl(&["exec", "two", "-c", "c", "--", "true"], None).await, "container c is not valid for pod two");
    failure(&h.kubectl(&["logs", "stray"], None).await, "node bare has no svcnet agent");
    failure(&h.kubectl(&["logs", "nope"], None).await, "pods \"nope\" not found");
    // The agent's own answer comes through, for exec also after kubectl
    // falls back from WebSocket to SPDY.
    failure(&h.kubectl(&["logs", "ghost"], None).await, "pod default/ghost is not running on this node");
    failure(&h.kubectl(&["exec", "ghost", "--", "true"], None).await, "pod default/ghost is not running on this node");
}

/// The raw API: several containers and none named, attach, SPDY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_explains_ambiguous_containers_attach_and_spdy() {
    let h = Harness::start().await;
    h.create_pod("two", &["a", "b"], Some("node-1")).await;
    let c = h.start_container("two", "a").await;
    let out = h.kubectl(&["get", "--raw", "/api/v1/namespaces/default/pods/two/log"], None).await;
    assert!(out.stderr.contains("a container name must be specified for pod two, choose one of: [a b]"), "{out:?}");
    let out = h.kubectl(&["get", "--raw", "/api/v1/namespaces/default/pods/two/log?container=a"], None).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
    // kubectl attach: what the container writes from now on (not before),
    // until it finishes.
    c.write_log(&["2024-05-01T10:00:00Z stdout F before the attach"]);
    let mut cmd = h.kubectl_command(&["attach", "two", "-c", "a"]);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut attached = cmd.spawn().expect("kubectl attach starts");
    let seen = collect(attached.stdout.take().expect("stdout"));
    // Lines written until the attach is in place may be missed; keep
    // writing until one arrives.
    eventually!(
        20,
        {
            c.write_log(&["2024-05-01T10:00:01Z stdout F while attached"]);
            text(&seen).contains("while attached")
        },
        "attach never showed a new line: {:?}",
        text(&seen)
    );
    c.finished.send_replace(true);
    let status = tokio::time::timeout(Duration::from_secs(10), attached.wait())
        .await
        .expect("kubectl attach ends once the container finished")
        .expect("kubectl status");
    assert!(status.success());
    assert!(!text(&seen).contains("before the attach"), "attach does not replay: {:?}", text(&seen));

    // WebSocket exec works, so kubectl 1.32 never falls back to SPDY ...
    let out = h.kubectl(&["exec", "two", "-c", "a", "--", "true"], None).await;
    assert_eq!(out.code, 0, "{out:?}");
    // ... which kubectl 1.29 and older send, and are told why it fails.
    let out = h
        .curl_api(&[
            "-X",
            "POST",
            "-H",
            "Connection: Upgrade",
            "-H",
            "Upgrade: SPDY/3.1",
            "-H",
            "X-Stream-Protocol-Version: v4.channel.k8s.io",
            "/api/v1/namespaces/default/pods/two/exec?container=a&command=true&stdout=true",
        ])
        .await;
    assert!(out.stdout.starts_with("400 "), "{out:?}");
    assert!(out.stdout.contains("exec over SPDY is not supported"), "{out:?}");
    assert!(out.stdout.contains("kubectl 1.30 and later"), "{out:?}");
}

/// Straight to the agent: the token, v5 and v4, terminal resizes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_speaks_v5_and_v4_and_resizes_terminals() {
    let h = Harness::start().await;
    h.create_pod("web", &["main"], Some("node-1")).await;
    let _c = h.start_container("web", "main").await;

    // Without the token: 401.
    let mut tcp = TcpStream::connect(h.agent).await.expect("agent");
    tcp.write_all(b"GET /containerLogs/default/web/main HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.expect("answer");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("\"reason\":\"Unauthorized\""), "{answer}");

    // Following an empty log: the answer's head comes at once (the API
    // server waits for it), the body when there is something.
    let mut tcp = TcpStream::connect(h.agent).await.expect("agent");
    let request = format!(
        "GET /containerLogs/default/web/main?follow=true HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.expect("request");
    let mut head = vec![0; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut head))
        .await
        .expect("the head of a follow answer comes before any line")
        .expect("read");
    assert!(head[..n].starts_with(b"HTTP/1.1 200 OK\r\n"), "{}", String::from_utf8_lossy(&head[..n]));
    drop(tcp);

    // v5 with a terminal: the resize applies before the shell reads.
    let (protocol, stdout, status) = exec_ws(
        h.agent,
        "command=sh&stdin=true&stdout=true&tty=true",
        "v5.channel.k8s.io",
        &[frame(4, br#"{"Width":123,"Height":45}"#), frame(0, b"stty size; exit 7\n")],
    )
    .await;
    assert_eq!(protocol, "v5.channel.k8s.io");
    assert!(stdout.contains("45 123"), "{stdout:?}");
    assert_eq!(
        status,
        r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh], exit code 7","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}"#
    );

    // v5 closes stdin with [255, 0].
    let (_, stdout, status) = exec_ws(
        h.agent,
        "command=cat&input=1&output=1",
        "v4.channel.k8s.io, v5.channel.k8s.io",
        &[frame(0, b"abc"), frame(255, &[0])],
    )
    .await;
    assert_eq!((stdout.as_str(), status.as_str()), ("abc", r#"{"metadata":{},"status":"Success"}"#));

    // v4 alone.
    let (protocol, stdout, status) =
        exec_ws(h.agent, "command=echo&command=v4&stdout=1", "v4.channel.k8s.io", &[]).await;
    assert_eq!(
        (protocol.as_str(), stdout.as_str(), status.as_str()),
        ("v4.channel.k8s.io", "v4\n", r#"{"metadata":{},"status":"Success"}"#)
    );
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = vec![channel];
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

/// One exec over a WebSocket to the agent: the protocol it chose, the
/// stdout it sent and its final status.
async fn exec_ws(agent: SocketAddr, query: &str, protocols: &str, send: &[Message]) -> (String, String, String) {
    let mut request = format!("ws://{agent}/exec/default/web/main?{query}").into_client_request().expect("request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", protocols.parse().expect("header"));
    request.headers_mut().insert("Authorization", format!("Bearer {TOKEN}").parse().expect("header"));
    let tcp = TcpStream::connect(agent).await.expect("agent");
    let (mut ws, response) = tokio_tungstenite::client_async(request, tcp).await.expect("WebSocket handshake");
    let protocol =
        response.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    for m in send {
        ws.send(m.clone()).await.expect("send");
    }
    let (mut stdout, mut status) = (Vec::new(), String::new());
    let read = async {
        while let Some(message) = ws.next().await {
            match message.expect("a message") {
                Message::Binary(b) if b.first() == Some(&1) => stdout.extend_from_slice(&b[1..]),
                Message::Binary(b) if b.first() == Some(&3) => status = String::from_utf8_lossy(&b[1..]).into_owned(),
                Message::Close(frame) => {
                    assert_eq!(frame.map(|f| u16::from(f.code)), Some(1000), "a normal closure");
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read).await.expect("the exec ends");
    (protocol, String::from_utf8_lossy(&stdout).into_owned(), status)
}
