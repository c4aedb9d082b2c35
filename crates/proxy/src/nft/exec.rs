//! Running `nft` and `conntrack` inside the node's network namespace.
//!
//! The child is started from the [`NetnsSockets`](svcnet_netns::NetnsSockets)
//! thread, which lives in the node's namespace, so it inherits that
//! namespace: the same effect as `ip netns exec NS nft`, without the `ip`
//! process and its mount namespace set-up on every sync.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use crate::{NodeEnv, ProxyError};

pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args` in the node's namespace, feeding it `stdin`.
pub async fn run(env: &NodeEnv, program: &str, args: &[&str], stdin: Option<String>) -> Result<Output, ProxyError> {
    let command = format!("{program} {}", args.join(" "));
    let spawn_err = |source: std::io::Error| ProxyError::Spawn { command: command.clone(), source };
    let handle = tokio::runtime::Handle::current();
    let program_owned = program.to_string();
    let args_owned: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let piped_stdin = stdin.is_some();
    let child = env
        .sockets
        .run(move || {
            // The reaper and the pipes belong to the caller's runtime.
            let _rt = handle.enter();
            tokio::process::Command::new(program_owned)
                .args(args_owned)
                .stdin(if piped_stdin { Stdio::piped() } else { Stdio::null() })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
        })
        .await
        .map_err(spawn_err)?
        .map_err(spawn_err)?;
    let mut child = child;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A refused transaction can make nft exit before reading it all;
        // its exit status tells, not the broken pipe.
        let _ = pipe.write_all(text.as_bytes()).await;
        drop(pipe);
    }
    let out = child.wait_with_output().await.map_err(spawn_err)?;
    Ok(Output {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// At most `max` bytes of `s` (nft echoes the offending lines, which can
/// be long).
pub fn shorten(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} more bytes)", &s[..cut], s.len() - cut)
}
