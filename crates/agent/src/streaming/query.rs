//! Query strings and what the exec endpoint reads from them.

use crate::access::AccessError;

/// A parsed query string; keys may repeat (`command=sh&command=-c`).
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        let pairs = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(k), decode(v))
            })
            .collect();
        Query(pairs)
    }

    /// The first value of `key`, as Go's `url.Values.Get`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }

    /// A boolean as Go's `strconv.ParseBool` reads it; absent or empty is
    /// false, anything unreadable is a 400.
    pub fn flag(&self, key: &str) -> Result<bool, AccessError> {
        match self.get(key) {
            None | Some("") => Ok(false),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(other) => {
                Err(AccessError::bad_request(format!("invalid value for {key}: {other:?} is not a boolean")))
            }
        }
    }

    /// The first of several spellings of one flag that is present.
    fn flag_any(&self, keys: &[&str]) -> Result<bool, AccessError> {
        for key in keys {
            if self.get(key).is_some() {
                return self.flag(key);
            }
        }
        Ok(false)
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, AccessError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| AccessError::bad_request(format!("invalid value for {key}: {v:?} is not an integer"))),
        }
    }
}

/// What an exec runs and which streams it attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOptions {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    /// Always false with a TTY: the terminal carries both outputs.
    pub stderr: bool,
    pub tty: bool,
}

impl ExecOptions {
    /// Reads kube's `PodExecOptions` names (`stdin`, `stdout`, `stderr`,
    /// `tty`, repeated `command`) and the kubelet's own (`input`,
    /// `output`, `error`).
    pub fn parse(query: &Query) -> Result<ExecOptions, AccessError> {
        let command = query.all("command");
        if command.is_empty() {
            return Err(AccessError::bad_request("you must specify at least one command for the container"));
        }
        let tty = query.flag("tty")?;
        let options = ExecOptions {
            command,
            stdin: query.flag_any(&["stdin", "input"])?,
            stdout: query.flag_any(&["stdout", "output"])?,
            stderr: query.flag_any(&["stderr", "error"])? && !tty,
            tty,
        };
        if !(options.stdin || options.stdout || options.stderr || tty) {
            return Err(AccessError::bad_request("you must specify at least one of stdin, stdout, stderr"));
        }
        Ok(options)
    }
}

/// Percent-decoding with `+` as a space, as Go's `url.ParseQuery` does.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_commands_keep_their_order_and_decode() {
        let q = Query::parse(Some("command=sh&command=-c&command=echo+hi%3B+exit%203&stdout=true&stderr=1"));
        let o = ExecOptions::parse(&q).expect("valid");
        assert_eq!(o.command, ["sh", "-c", "echo hi; exit 3"]);
        assert!(o.stdout && o.stderr && !o.stdin && !o.tty);
    }

    #[test]
    fn kubelet_stream_names_are_accepted_too() {
        let q = Query::parse(Some("command=cat&input=1&output=1&error=1"));
        let o = ExecOptions::parse(&q).expect("valid");
        assert!(o.stdin && o.stdout && o.stderr);
    }

    #[test]
    fn a_tty_carries_stderr_on_stdout() {
        let q = Query::parse(Some("command=sh&stdin=true&stdout=true&stderr=true&tty=true"));
        let o = ExecOptions::parse(&q).expect("valid");
        assert!(o.tty && !o.stderr);
    }

    #[test]
    fn exec_without_a_command_or_any_stream_is_refused() {
        let e = ExecOptions::parse(&Query::parse(Some("stdout=1"))).expect_err("no command");
        assert_eq!(e.code, 400);
        assert!(e.message.contains("at least one command"), "{}", e.message);
        let e = ExecOptions::parse(&Query::parse(Some("command=ls"))).expect_err("no stream");
        assert!(e.message.contains("stdin, stdout, stderr"), "{}", e.message);
        let e = ExecOptions::parse(&Query::parse(Some("command=ls&stdout=maybe"))).expect_err("bad bool");
        assert_eq!(e.message, "invalid value for stdout: \"maybe\" is not a boolean");
    }

    #[test]
    fn malformed_escapes_are_kept_literally() {
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(decode("%4"), "%4");
        assert_eq!(decode("a%2Fb"), "a/b");
    }
}
