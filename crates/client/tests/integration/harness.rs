//! A real svcnet API server on a real embedded store, in this process, and
//! clients configured from the kubeconfig it writes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use svcnet_apiserver::{ApiServer, ApiServerConfig};
use svcnet_client::{Client, Config};
use svcnet_store::EmbeddedStore;

/// Retries `$cond` (which may `.await`) every 50 ms until it holds or `$secs`
/// seconds pass, then fails with the message.
#[macro_export]
macro_rules! eventually {
    ($secs:expr, $cond:expr, $($msg:tt)+) => {{
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs($secs);
        loop {
            if $cond {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                panic!($($msg)+);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }};
}

/// An API server with its data directory; it can be stopped and started
/// again on the same directory and port.
pub struct Server {
    dir: tempfile::TempDir,
    running: Option<(ApiServer, Arc<EmbeddedStore>)>,
    pub addr: SocketAddr,
}

/// Logs go to the test's output when `SVCNET_LOG` asks for them, e.g.
/// `SVCNET_LOG=svcnet_client=debug`.
fn init_logging() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("SVCNET_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
}

impl Server {
    pub async fn start() -> Server {
        init_logging();
        let dir = tempfile::tempdir().expect("tempdir");
        let (server, store) = boot(dir.path(), 0).await;
        let addr = server.addr;
        Server { dir, running: Some((server, store)), addr }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The configuration of the kubeconfig as svcnet wrote it for this
    /// server's address.
    pub fn config(&self) -> Config {
        let mut config = Config::from_kubeconfig(&self.kubeconfig()).expect("the kubeconfig svcnet wrote loads");
        config.server = format!("https://{}", self.addr).parse().expect("server URL");
        config
    }

    pub fn client(&self) -> Client {
        Client::new(self.config()).expect("client").with_user_agent("svcnet-client-tests/0.1.0").expect("user agent")
    }

    /// Shuts the API server down and closes its store; the data stays.
    pub async fn stop(&mut self) {
        if let Some((server, store)) = self.running.take() {
            server.shutdown().await;
            store.close().await.expect("store closes");
        }
    }

    /// Starts the API server again on the same data directory and port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let (server, store) = boot(self.dir.path(), self.addr.port()).await;
        assert_eq!(server.addr, self.addr);
        self.running = Some((server, store));
    }

    /// Runs `f` against a second API server on this data directory but
    /// another port, while this one is stopped: changes clients of this
    /// server cannot see as they happen. This server is started again after.
    pub async fn behind_the_back<F, Fut>(&mut self, f: F)
    where
        F: FnOnce(Client) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        self.stop().await;
        let (other, store) = boot(self.dir.path(), 0).await;
        let mut config = self.config();
        config.server = format!("https://{}", other.addr).parse().expect("server URL");
        f(Client::new(config).expect("client")).await;
        other.shutdown().await;
        store.close().await.expect("store closes");
        self.restart().await;
    }
}

async fn boot(dir: &Path, port: u16) -> (ApiServer, Arc<EmbeddedStore>) {
    let store = EmbeddedStore::open(&dir.join("store"), Default::default()).await.expect("store opens");
    // The port of a server that just stopped may take a moment to be free.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match ApiServer::start(ApiServerConfig::new(dir, port), store.clone() as Arc<_>).await {
            Ok(server) => return (server, store),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "API server did not start yet");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("API server does not start: {e}"),
        }
    }
}

pub fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta { name: Some(name.into()), ..ObjectMeta::default() },
        data: Some(data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        ..ConfigMap::default()
    }
}

pub fn labelled(mut cm: ConfigMap, labels: &[(&str, &str)]) -> ConfigMap {
    cm.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    cm
}

/// A fresh namespace per test, so tests sharing a server cannot interfere.
pub async fn namespace(client: &Client, name: &str) -> String {
    use k8s_openapi::api::core::v1::Namespace;
    let ns =
        Namespace { metadata: ObjectMeta { name: Some(name.into()), ..ObjectMeta::default() }, ..Namespace::default() };
    svcnet_client::Api::<Namespace>::all(client.clone())
        .create(&Default::default(), &ns)
        .await
        .expect("namespace is created");
    name.to_string()
}
