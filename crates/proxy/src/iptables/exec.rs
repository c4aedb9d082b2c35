//! Running iptables, conntrack and ip inside the node's namespace (`ip
//! netns exec`), never in the agent's own.

use std::process::{Output, Stdio};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::ProxyError;

/// Runs `program args...` in namespace `netns`, feeding it `stdin`, and
/// returns its output whatever its exit status.
pub async fn run(netns: &str, program: &str, args: &[&str], stdin: Option<&str>) -> Result<Output, ProxyError> {
    let command = describe(netns, program, args);
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns, program]).args(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().map_err(|source| ProxyError::Spawn { command: command.clone(), source })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // The programs read all of stdin before writing much, so writing
        // first and collecting the output afterwards cannot deadlock.
        pipe.write_all(input.as_bytes())
            .await
            .map_err(|source| ProxyError::Spawn { command: command.clone(), source })?;
        drop(pipe);
    }
    child.wait_with_output().await.map_err(|source| ProxyError::Spawn { command, source })
}

/// Like [`run`], but a non-zero exit is an error carrying stderr.
pub async fn run_ok(netns: &str, program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, ProxyError> {
    let out = run(netns, program, args, stdin).await?;
    if !out.status.success() {
        return Err(ProxyError::Command {
            command: describe(netns, program, args),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn describe(netns: &str, program: &str, args: &[&str]) -> String {
    let mut s = format!("ip netns exec {netns} {program}");
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

/// `iptables-save` of the namespace.
pub async fn save(netns: &str) -> Result<String, ProxyError> {
    run_ok(netns, "iptables-save", &[], None).await
}

/// `iptables-restore --noflush` of `input`; on failure the error names the
/// input line iptables-restore complained about.
pub async fn restore(netns: &str, input: &str) -> Result<(), ProxyError> {
    let args = ["--noflush"];
    let out = run(netns, "iptables-restore", &args, Some(input)).await?;
    if out.status.success() {
        return Ok(());
    }
    let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if let Some(line) = failed_line(&stderr, input) {
        stderr.push_str(&format!(" (input: {line})"));
    }
    Err(ProxyError::Command { command: describe(netns, "iptables-restore", &args), stderr })
}

/// The input line an iptables-restore error (`line 7: ...` or `... at line: 7`)
/// points at.
fn failed_line<'a>(stderr: &str, input: &'a str) -> Option<&'a str> {
    let at = stderr.find("line")?;
    let digits: String =
        stderr[at + 4..].trim_start_matches([':', ' ']).chars().take_while(|c| c.is_ascii_digit()).collect();
    let n: usize = digits.parse().ok()?;
    input.lines().nth(n.checked_sub(1)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_error_points_at_its_input_line() {
        let input = "*nat\n:KUBE-X - [0:0]\n-X KUBE-X\nCOMMIT\n";
        let err =
            "iptables-restore v1.8.9 (nf_tables): \nline 3: CHAIN_DEL failed (Device or resource busy): chain KUBE-X";
        assert_eq!(failed_line(err, input), Some("-X KUBE-X"));
        assert_eq!(failed_line("iptables-restore: COMMIT expected at line: 2", input), Some(":KUBE-X - [0:0]"));
        assert_eq!(failed_line("no such thing", input), None);
    }
}
