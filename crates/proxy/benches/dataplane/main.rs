//! Service proxy benchmarks: the three data planes side by side on a
//! mini node built in network namespaces (`svbench-<pid>-*`), in one run.
//!
//! ```text
//! dataplane connect      [--connections 5000] [--rounds 5] [--modes nftables,iptables,userspace]
//! dataplane throughput   [--seconds 5] [--rounds 5] [--streams 1] [--modes userspace,nftables,iptables]
//! dataplane program      [--services 10000] [--endpoints 10] [--changes 30] [--modes nftables,iptables]
//! dataplane first-packet [--services 100,10000] [--probes 500] [--modes nftables,iptables]
//! ```
//!
//! Each prints a markdown table. `program` runs every mode in a fresh
//! child process (this binary again, with `--mode M --json`), so that
//! each one's memory is its own. Build and run everything with
//! `bench/proxy.sh`. Needs root, `ip`, `nft`, `iptables-restore`,
//! `conntrack`; `throughput` also `iperf3` and
//! `haproxy`.
//!
//! Every namespace and process the run creates is removed at exit, on
//! error, panic, SIGINT, SIGTERM and SIGHUP; every loop is bounded in
//! count and in time.

mod client;
mod connect;
mod lab;
mod plane;
mod program;
mod stats;
mod throughput;

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `--name value` options after the subcommand.
pub struct Args {
    pub command: String,
    opts: HashMap<String, String>,
    flags: Vec<String>,
}

impl Args {
    fn parse(raw: Vec<String>) -> Result<Args, BoxError> {
        // `cargo bench` passes `--bench`.
        let mut it = raw.into_iter().filter(|a| a != "--bench").peekable();
        let command = it.next().unwrap_or_default();
        let mut opts = HashMap::new();
        let mut flags = Vec::new();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else { return Err(format!("unexpected argument {a:?}").into()) };
            match it.peek() {
                Some(v) if !v.starts_with("--") => {
                    opts.insert(name.to_string(), it.next().unwrap_or_default());
                }
                _ => flags.push(name.to_string()),
            }
        }
        Ok(Args { command, opts, flags })
    }

    pub fn str(&self, name: &str, default: &str) -> String {
        self.opts.get(name).cloned().unwrap_or_else(|| default.to_string())
    }

    pub fn num(&self, name: &str, default: usize) -> Result<usize, BoxError> {
        match self.opts.get(name) {
            Some(v) => v.parse().map_err(|_| format!("--{name} {v:?} is not a number").into()),
            None => Ok(default),
        }
    }

    pub fn list(&self, name: &str, default: &str) -> Result<Vec<usize>, BoxError> {
        self.str(name, default)
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|v| v.parse().map_err(|_| format!("--{name}: {v:?} is not a number").into()))
            .collect()
    }

    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }
}

const USAGE: &str = "usage: dataplane connect|throughput|program|first-packet [--options]; see the source's header";

async fn run(args: Args) -> Result<(), BoxError> {
    match args.command.as_str() {
        "connect" => connect::run(&args).await,
        "throughput" => throughput::run(&args).await,
        "program" => program::run_program(&args).await,
        "first-packet" => program::run_first_packet(&args).await,
        "" | "help" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown subcommand {other:?}; {USAGE}").into()),
    }
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1).collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("dataplane: {e}; {USAGE}");
            return ExitCode::from(2);
        }
    };
    lab::install_panic_hook();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dataplane: runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = rt.block_on(async {
        tokio::select! {
            r = run(args) => match r {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("dataplane: {e}");
                    1
                }
            },
            sig = lab::signalled() => {
                eprintln!("dataplane: {sig}: cleaning up");
                130
            }
        }
    });
    // The run's own guards have run by now (its future is dropped); this
    // catches anything still registered.
    lab::cleanup_all();
    rt.shutdown_timeout(Duration::from_secs(1));
    ExitCode::from(code)
}
