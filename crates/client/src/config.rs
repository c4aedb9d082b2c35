//! Where the API server is and how to authenticate to it: [`Config`], from
//! a kubeconfig file or from a pod's service account.
//!
//! | field | default | meaning |
//! | --- | --- | --- |
//! | `server` | (required) | base URL, `https://host:port[/prefix]`; `http://` speaks HTTP/1.1 in the clear |
//! | `ca_pem` | system roots | PEM CA bundle the server certificate must chain to |
//! | `identity` | none | client certificate and key (PEM) |
//! | `auth` | `Auth::None` | bearer token, token file (re-read as it rotates), or basic auth |
//! | `namespace` | `default` | namespace of `Api::default_namespaced` |
//! | `insecure_skip_tls_verify` | `false` | accept any server certificate (discouraged) |
//! | `tls_server_name` | host of `server` | name the server certificate must carry |
//! | `user_agent` | `svcnet/<version>` | `User-Agent`, also the default field manager |
//! | `http2` | `true` | offer h2 in ALPN (HTTP/1.1 is used if the server does not pick h2) |
//! | `connect_timeout` | 10 s | TCP connect plus TLS handshake |
//! | `request_timeout` | 30 s | a whole non-watch request, body included |

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

/// Where the in-cluster service account credentials are mounted.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing kubeconfig {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("no kubeconfig found (KUBECONFIG unset, no ~/.kube/config) and not running in a cluster")]
    NotFound,
    #[error("the kubeconfig has no current-context and none was asked for")]
    NoCurrentContext,
    #[error("context {0:?} is not in the kubeconfig")]
    ContextNotFound(String),
    #[error("cluster {0:?} is not in the kubeconfig")]
    ClusterNotFound(String),
    #[error("user {0:?} is not in the kubeconfig")]
    UserNotFound(String),
    #[error("cluster {0:?} has no server")]
    NoServer(String),
    #[error("server URL {server:?} is invalid")]
    InvalidServer {
        server: String,
        #[source]
        source: http::uri::InvalidUri,
    },
    #[error("server URL {0:?} must be http:// or https:// with a host")]
    UnsupportedServer(String),
    #[error("{field} is not valid base64")]
    Base64 {
        field: &'static str,
        #[source]
        source: base64::DecodeError,
    },
    #[error("{0} is not supported by svcnet-client")]
    Unsupported(&'static str),
    #[error("not running in a cluster: {0} is not set")]
    NotInCluster(&'static str),
    #[error("{what} is not valid PEM")]
    Pem {
        what: &'static str,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{0} holds no certificate")]
    NoCertificates(&'static str),
    #[error("TLS configuration is invalid")]
    Tls(#[from] rustls::Error),
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
    #[error("{0:?} is not a valid HTTP header value")]
    InvalidHeader(String),
}

/// How requests authenticate besides a client certificate.
#[derive(Clone, Default)]
pub enum Auth {
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Token(String),
    /// A bearer token read from a file and re-read every minute, as the
    /// kubelet rotates projected service account tokens.
    TokenFile(PathBuf),
    Basic {
        username: String,
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Token(_) => f.write_str("Token(<redacted>)"),
            Auth::TokenFile(p) => f.debug_tuple("TokenFile").field(p).finish(),
            Auth::Basic { username, .. } => f.debug_struct("Basic").field("username", username).finish_non_exhaustive(),
        }
    }
}

/// A client certificate chain and its private key, PEM-encoded.
#[derive(Clone)]
pub struct Identity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .finish_non_exhaustive()
    }
}

/// Everything needed to reach and authenticate to one API server. See the
/// module documentation for the fields and their defaults.
#[derive(Clone, Debug)]
pub struct Config {
    pub server: http::Uri,
    pub ca_pem: Option<Vec<u8>>,
    pub identity: Option<Identity>,
    pub auth: Auth,
    pub namespace: String,
    pub insecure_skip_tls_verify: bool,
    pub tls_server_name: Option<String>,
    pub user_agent: String,
    pub http2: bool,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl Config {
    /// A configuration for `server` with every other field at its default.
    pub fn new(server: &str) -> Result<Config, ConfigError> {
        Ok(Config {
            server: parse_server(server)?,
            ca_pem: None,
            identity: None,
            auth: Auth::None,
            namespace: "default".into(),
            insecure_skip_tls_verify: false,
            tls_server_name: None,
            user_agent: concat!("svcnet/", env!("CARGO_PKG_VERSION")).into(),
            http2: true,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        })
    }

    /// As kubectl finds its configuration: the files in `KUBECONFIG`, else
    /// `~/.kube/config`, else the in-cluster service account.
    pub fn infer() -> Result<Config, ConfigError> {
        if let Some(list) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
            let paths: Vec<PathBuf> = std::env::split_paths(&list).filter(|p| p.exists()).collect();
            if !paths.is_empty() {
                return Kubeconfig::read_merged(&paths)?.config(None);
            }
        }
        if let Some(home) = std::env::var_os("HOME") {
            let path = Path::new(&home).join(".kube").join("config");
            if path.exists() {
                return Config::from_kubeconfig(&path);
            }
        }
        match Config::incluster() {
            Err(ConfigError::NotInCluster(_)) => Err(ConfigError::NotFound),
            other => other,
        }
    }

    /// The current context of the kubeconfig at `path`.
    pub fn from_kubeconfig(path: &Path) -> Result<Config, ConfigError> {
        Kubeconfig::read(path)?.config(None)
    }

    /// A named context of the kubeconfig at `path`.
    pub fn from_kubeconfig_context(path: &Path, context: &str) -> Result<Config, ConfigError> {
        Kubeconfig::read(path)?.config(Some(context))
    }

    /// The pod's service account: `KUBERNETES_SERVICE_HOST`/`_PORT` and the
    /// token, CA and namespace under [`SERVICE_ACCOUNT_DIR`].
    pub fn incluster() -> Result<Config, ConfigError> {
        let host = std::env::var("KUBERNETES_SERVICE_HOST")
            .map_err(|_| ConfigError::NotInCluster("KUBERNETES_SERVICE_HOST"))?;
        let port = std::env::var("KUBERNETES_SERVICE_PORT")
            .map_err(|_| ConfigError::NotInCluster("KUBERNETES_SERVICE_PORT"))?;
        Config::incluster_from(&host, &port, Path::new(SERVICE_ACCOUNT_DIR))
    }

    /// [`Config::incluster`] with the environment and mount point given.
    pub fn incluster_from(host: &str, port: &str, dir: &Path) -> Result<Config, ConfigError> {
        let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() };
        let mut config = Config::new(&format!("https://{host}:{port}"))?;
        let token = dir.join("token");
        // Fail now rather than on the first request if the token is missing.
        read(&token)?;
        config.auth = Auth::TokenFile(token);
        config.ca_pem = Some(read(&dir.join("ca.crt"))?);
        if let Ok(ns) = std::fs::read_to_string(dir.join("namespace")) {
            let ns = ns.trim();
            if !ns.is_empty() {
                config.namespace = ns.to_string();
            }
        }
        Ok(config)
    }
}

fn parse_server(server: &str) -> Result<http::Uri, ConfigError> {
    let uri: http::Uri =
        server.parse().map_err(|source| ConfigError::InvalidServer { server: server.to_string(), source })?;
    let scheme_ok = matches!(uri.scheme_str(), Some("https" | "http"));
    if !scheme_ok || uri.host().is_none_or(str::is_empty) {
        return Err(ConfigError::UnsupportedServer(server.to_string()));
    }
    Ok(uri)
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })
}

fn decode_b64(field: &'static str, data: &str) -> Result<Vec<u8>, ConfigError> {
    // kubeconfigs written by hand sometimes wrap base64 over several lines.
    let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact).map_err(|source| ConfigError::Base64 { field, source })
}

/// The parts of a kubeconfig file this client understands.
#[derive(Debug, Default, Deserialize)]
struct Kubeconfig {
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    users: Vec<Named<User>>,
    #[serde(default)]
    contexts: Vec<Named<Context>>,
    #[serde(rename = "current-context", default)]
    current_context: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    #[serde(default)]
    value: Option<T>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    server: Option<String>,
    certificate_authority: Option<PathBuf>,
    certificate_authority_data: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
    tls_server_name: Option<String>,
    proxy_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct User {
    client_certificate: Option<PathBuf>,
    client_certificate_data: Option<String>,
    client_key: Option<PathBuf>,
    client_key_data: Option<String>,
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<PathBuf>,
    username: Option<String>,
    password: Option<String>,
    exec: Option<serde_yaml::Value>,
    auth_provider: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct Context {
    cluster: String,
    user: Option<String>,
    namespace: Option<String>,
}

impl Kubeconfig {
    /// Reads one file, resolving its relative paths against its directory
    /// (as kubectl does).
    fn read(path: &Path) -> Result<Kubeconfig, ConfigError> {
        let bytes = read(path)?;
        let mut kc: Kubeconfig =
            serde_yaml::from_slice(&bytes).map_err(|source| ConfigError::Parse { path: path.to_path_buf(), source })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &mut Option<PathBuf>| {
            if let Some(p) = p.as_mut().filter(|p| p.is_relative()) {
                *p = base.join(&*p);
            }
        };
        for c in kc.clusters.iter_mut().filter_map(|c| c.value.as_mut()) {
            resolve(&mut c.certificate_authority);
        }
        for u in kc.users.iter_mut().filter_map(|u| u.value.as_mut()) {
            resolve(&mut u.client_certificate);
            resolve(&mut u.client_key);
            resolve(&mut u.token_file);
        }
        Ok(kc)
    }

    /// Reads several files and merges them the way kubectl merges
    /// `KUBECONFIG`: the first definition of a name wins, and so does the
    /// first `current-context`.
    fn read_merged(paths: &[PathBuf]) -> Result<Kubeconfig, ConfigError> {
        let mut merged = Kubeconfig::default();
        for path in paths {
            let kc = Kubeconfig::read(path)?;
            merged.current_context = merged.current_context.or(kc.current_context.filter(|c| !c.is_empty()));
            merge(&mut merged.clusters, kc.clusters);
            merge(&mut merged.users, kc.users);
            merge(&mut merged.contexts, kc.contexts);
        }
        Ok(merged)
    }

    fn config(&self, context: Option<&str>) -> Result<Config, ConfigError> {
        let context_name = match context {
            Some(c) => c,
            None => self.current_context.as_deref().filter(|c| !c.is_empty()).ok_or(ConfigError::NoCurrentContext)?,
        };
        let ctx =
            find(&self.contexts, context_name).ok_or_else(|| ConfigError::ContextNotFound(context_name.into()))?;
        let cluster =
            find(&self.clusters, &ctx.cluster).ok_or_else(|| ConfigError::ClusterNotFound(ctx.cluster.clone()))?;
        let user = match ctx.user.as_deref().filter(|u| !u.is_empty()) {
            Some(name) => Some(find(&self.users, name).ok_or_else(|| ConfigError::UserNotFound(name.into()))?),
            None => None,
        };

        let server = cluster.server.as_deref().filter(|s| !s.is_empty());
        let mut config = Config::new(server.ok_or_else(|| ConfigError::NoServer(ctx.cluster.clone()))?)?;
        if cluster.proxy_url.as_deref().is_some_and(|p| !p.is_empty()) {
            return Err(ConfigError::Unsupported("proxy-url"));
        }
        config.ca_pem = match (&cluster.certificate_authority_data, &cluster.certificate_authority) {
            (Some(data), _) if !data.is_empty() => Some(decode_b64("certificate-authority-data", data)?),
            (_, Some(path)) => Some(read(path)?),
            _ => None,
        };
        config.insecure_skip_tls_verify = cluster.insecure_skip_tls_verify;
        config.tls_server_name = cluster.tls_server_name.clone().filter(|s| !s.is_empty());
        if let Some(ns) = ctx.namespace.as_deref().filter(|n| !n.is_empty()) {
            config.namespace = ns.to_string();
        }
        if let Some(user) = user {
            if user.exec.is_some() {
                return Err(ConfigError::Unsupported("exec credential plugins (users[].user.exec)"));
            }
            if user.auth_provider.is_some() {
                return Err(ConfigError::Unsupported("auth-provider"));
            }
            let cert = match (&user.client_certificate_data, &user.client_certificate) {
                (Some(data), _) if !data.is_empty() => Some(decode_b64("client-certificate-data", data)?),
                (_, Some(path)) => Some(read(path)?),
                _ => None,
            };
            let key = match (&user.client_key_data, &user.client_key) {
                (Some(data), _) if !data.is_empty() => Some(decode_b64("client-key-data", data)?),
                (_, Some(path)) => Some(read(path)?),
                _ => None,
            };
            if let (Some(cert_pem), Some(key_pem)) = (cert, key) {
                config.identity = Some(Identity { cert_pem, key_pem });
            }
            config.auth = match (&user.token, &user.token_file, &user.username, &user.password) {
                (Some(t), _, _, _) if !t.is_empty() => Auth::Token(t.clone()),
                (_, Some(f), _, _) => Auth::TokenFile(f.clone()),
                (_, _, Some(u), Some(p)) => Auth::Basic { username: u.clone(), password: p.clone() },
                _ => Auth::None,
            };
        }
        Ok(config)
    }
}

fn find<'a, T>(items: &'a [Named<T>], name: &str) -> Option<&'a T> {
    items.iter().find(|i| i.name == name).and_then(|i| i.value.as_ref())
}

fn merge<T>(into: &mut Vec<Named<T>>, from: Vec<Named<T>>) {
    for item in from {
        if !into.iter().any(|i| i.name == item.name) {
            into.push(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Kubeconfig {
        serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("test kubeconfig does not parse: {e}"))
    }

    const TWO_CONTEXTS: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: a
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: Q0E=
    tls-server-name: kubernetes
- name: b
  cluster:
    server: https://[::1]:443/prefix
    insecure-skip-tls-verify: true
users:
- name: cert
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
- name: tok
  user:
    token: s3cret
contexts:
- name: first
  context: {cluster: a, user: cert, namespace: dev}
- name: second
  context: {cluster: b, user: tok}
current-context: first
"#;

    #[test]
    fn the_current_context_picks_cluster_user_and_namespace() {
        let config = parse(TWO_CONTEXTS).config(None).expect("test setup");
        assert_eq!(config.server, "https://127.0.0.1:6443/");
        assert_eq!(config.ca_pem.as_deref(), Some(&b"CA"[..]));
        assert_eq!(config.tls_server_name.as_deref(), Some("kubernetes"));
        assert_eq!(config.namespace, "dev");
        let identity = config.identity.expect("an identity");
        assert_eq!((identity.cert_pem.as_slice(), identity.key_pem.as_slice()), (&b"CERT"[..], &b"KEY"[..]));
        assert!(matches!(config.auth, Auth::None));
    }

    #[test]
    fn a_named_context_can_be_chosen_and_defaults_the_namespace() {
        let config = parse(TWO_CONTEXTS).config(Some("second")).expect("test setup");
        assert_eq!(config.server.host(), Some("[::1]"));
        assert!(config.insecure_skip_tls_verify);
        assert_eq!(config.namespace, "default");
        assert!(matches!(config.auth, Auth::Token(ref t) if t == "s3cret"));
        assert!(!format!("{config:?}").contains("s3cret"), "secrets must not leak into Debug output");
    }

    #[test]
    fn a_missing_context_or_exec_plugin_is_an_error_not_a_panic() {
        assert!(matches!(parse(TWO_CONTEXTS).config(Some("nope")), Err(ConfigError::ContextNotFound(_))));
        let exec = "clusters: [{name: c, cluster: {server: 'https://x'}}]\nusers: [{name: u, user: {exec: {command: aws}}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n";
        assert!(matches!(parse(exec).config(None), Err(ConfigError::Unsupported(_))));
        assert!(matches!(parse("clusters: []").config(None), Err(ConfigError::NoCurrentContext)));
    }

    #[test]
    fn servers_must_be_http_or_https_urls() {
        assert!(Config::new("https://10.0.0.1:6443").is_ok());
        assert!(Config::new("http://localhost:8080").is_ok());
        assert!(matches!(Config::new("ftp://x"), Err(ConfigError::UnsupportedServer(_))));
        assert!(Config::new("not a url").is_err());
    }

    #[test]
    fn relative_paths_resolve_against_the_kubeconfig_directory() {
        let dir = tempfile::tempdir().expect("test setup");
        std::fs::write(dir.path().join("ca.pem"), b"CA FILE").expect("test setup");
        std::fs::write(dir.path().join("token"), b"t0k\n").expect("test setup");
        let yaml = "clusters: [{name: c, cluster: {server: 'https://x', certificate-authority: ca.pem}}]\nusers: [{name: u, user: {tokenFile: token}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n";
        let path = dir.path().join("config");
        std::fs::write(&path, yaml).expect("test setup");
        let config = Config::from_kubeconfig(&path).expect("test setup");
        assert_eq!(config.ca_pem.as_deref(), Some(&b"CA FILE"[..]));
        assert!(matches!(config.auth, Auth::TokenFile(ref p) if *p == dir.path().join("token")));
    }

    #[test]
    fn merged_kubeconfigs_keep_the_first_definition_of_each_name() {
        let dir = tempfile::tempdir().expect("test setup");
        let one = dir.path().join("one");
        let two = dir.path().join("two");
        std::fs::write(&one, "clusters: [{name: c, cluster: {server: 'https://one'}}]\n").expect("test setup");
        std::fs::write(&two, "clusters: [{name: c, cluster: {server: 'https://two'}}]\ncontexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n").expect("test setup");
        let config = Kubeconfig::read_merged(&[one, two]).and_then(|k| k.config(None)).expect("test setup");
        assert_eq!(config.server.host(), Some("one"));
    }

    #[test]
    fn in_cluster_config_reads_the_service_account_mount() {
        let dir = tempfile::tempdir().expect("test setup");
        std::fs::write(dir.path().join("token"), b"tok").expect("test setup");
        std::fs::write(dir.path().join("ca.crt"), b"CA").expect("test setup");
        std::fs::write(dir.path().join("namespace"), b"kube-system\n").expect("test setup");
        let config = Config::incluster_from("fd00::1", "443", dir.path()).expect("test setup");
        assert_eq!(config.server, "https://[fd00::1]:443/");
        assert_eq!(config.namespace, "kube-system");
        assert!(matches!(config.auth, Auth::TokenFile(_)));
        let missing = tempfile::tempdir().expect("test setup");
        assert!(matches!(Config::incluster_from("10.96.0.1", "443", missing.path()), Err(ConfigError::Read { .. })));
    }
}
