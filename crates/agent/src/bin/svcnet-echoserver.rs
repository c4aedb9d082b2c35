//! `svcnet-echoserver`: the built-in `svcnet/echoserver` image as a program
//! of its own, the same server `svcnet echoserver` runs (see
//! [`svcnet_agent::echoserver`]).
//!
//! The agent starts one for every echoserver container. It is a fraction
//! of the `svcnet` binary's size, so starting it (mapping and relocating
//! the program) costs a pod far less; the agent falls back to `svcnet
//! echoserver` when this program is not installed next to `svcnet`.

use std::process::ExitCode;

use svcnet_agent::echoserver::{EchoConfig, run};

fn main() -> ExitCode {
    // As `svcnet` logs: the same format, filtered by SVCNET_LOG. Without
    // it, a plain INFO level: what the filter "info" means, without
    // parsing one (this program starts once per container).
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr);
    match std::env::var_os("SVCNET_LOG") {
        Some(_) => logs
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("SVCNET_LOG").unwrap_or_else(|_| "info".into()),
            )
            .init(),
        None => logs.with_max_level(tracing::Level::INFO).init(),
    }
    // One thread: a test server answers a request in microseconds, and
    // worker threads (made at every container start, a stack and a TLS
    // block each) cost a pod more than they would ever save it.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("svcnet: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async {
        let config = EchoConfig::from_env().map_err(std::io::Error::other)?;
        run(config).await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("svcnet: {e}");
            ExitCode::FAILURE
        }
    }
}
