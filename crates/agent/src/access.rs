//! The seam between the pod runtime and the agent's streaming server.
//!
//! Container logs are files in the CRI format the kubelet reads: one line
//! per record, `<RFC 3339 timestamp with nanoseconds> <stdout|stderr> <F|P> <text>`,
//! where `P` marks a partial line continued by the next record and `F` a
//! line that ended with a newline (which is not part of `<text>`).

use std::path::PathBuf;

use tokio::sync::watch;

/// A failure to find what a request names, in the words kube uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AccessError {
    /// HTTP status for the API server to return (400 or 404).
    pub code: u16,
    pub message: String,
}

impl AccessError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        AccessError { code: 400, message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        AccessError { code: 404, message: message.into() }
    }
}

/// A running container an exec can join.
#[derive(Debug, Clone)]
pub struct ContainerRef {
    /// The container's name (defaulted when the request named none).
    pub container: String,
    /// Host pid of the container's main process: an exec joins its network,
    /// mount and UTS namespaces (`/proc/<pid>/ns/{net,mnt,uts}`).
    pub pid: u32,
    /// The container's environment, for the exec'd process.
    pub env: Vec<(String, String)>,
    /// The container's working directory, if it set one.
    pub working_dir: Option<PathBuf>,
    /// Its stdin, when the container asked for one (`stdin: true`).
    pub stdin: Option<StdinRef>,
}

/// A writer of a container's stdin: a pipe, or its terminal.
pub type StdinWriter = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// The write end of a container's stdin (a pipe, or with `tty: true` its
/// terminal), shared by the attaches to it; `None` inside once it is
/// closed.
#[derive(Clone)]
pub struct StdinRef {
    pub pipe: std::sync::Arc<tokio::sync::Mutex<Option<StdinWriter>>>,
    /// `stdinOnce`: the first attach that ends closes it for good.
    pub once: bool,
    /// The container's terminal, which attaches resize.
    pub terminal: Option<crate::streaming::PtyMaster>,
}

impl std::fmt::Debug for StdinRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdinRef").field("once", &self.once).field("terminal", &self.terminal.is_some()).finish()
    }
}

/// One attempt's log file.
#[derive(Debug, Clone)]
pub struct LogRef {
    pub container: String,
    pub path: PathBuf,
    /// Becomes `true` when this attempt has exited (and its log is
    /// complete); `follow` stops there. Already `true` for `previous`.
    pub finished: watch::Receiver<bool>,
    /// The attempt's output as it is read, before it is cut into log
    /// records (a prompt without a newline, a terminal's echo): what
    /// attach passes on. `None` where only the file is kept.
    pub live: Option<tokio::sync::broadcast::Sender<bytes::Bytes>>,
}

/// What the streaming server asks of the pod runtime.
pub trait PodAccess: Send + Sync + 'static {
    /// The running container `container` (or the pod's only/first container
    /// when `None`) of pod `namespace/pod`.
    fn container(&self, namespace: &str, pod: &str, container: Option<&str>) -> Result<ContainerRef, AccessError>;

    /// The log of the current (or, with `previous`, the last terminated)
    /// attempt of a container.
    fn log(&self, namespace: &str, pod: &str, container: Option<&str>, previous: bool) -> Result<LogRef, AccessError>;
}
