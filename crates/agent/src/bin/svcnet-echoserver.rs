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
    // As `svcnet` logs: the same format, filtered by SVCNET_LOG.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("SVCNET_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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
