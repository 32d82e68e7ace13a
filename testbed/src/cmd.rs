//! Running external commands with a bound on their run time, and small
//! process helpers (signals through `kill(1)`, liveness through `/proc`), so
//! the crate needs no libc calls of its own.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Default bound for the testbed's own short commands (`ip`, `sysctl`, `ethtool`, `curl`).
pub(crate) const SHORT: Duration = Duration::from_secs(30);

/// After a command exits, how long to keep reading pipes still held open by a
/// daemonised descendant before giving up on the rest of its output.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// A command line plus where it runs, for running and for error messages.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    argv: Vec<OsString>,
    netns: Option<String>,
}

impl Cmd {
    /// A command in the root namespace.
    pub(crate) fn root<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Cmd {
            argv: argv.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            netns: None,
        }
    }

    /// A command run inside `netns` through `ip netns exec`.
    pub(crate) fn in_netns<I, S>(netns: &str, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Cmd {
            argv: argv.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            netns: Some(netns.to_owned()),
        }
    }

    /// `ip -n <netns> <args>`: configures `netns` without entering it.
    pub(crate) fn ip<I, S>(netns: &str, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut argv: Vec<OsString> = vec!["ip".into(), "-n".into(), netns.into()];
        argv.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        Cmd {
            argv,
            netns: Some(netns.to_owned()),
        }
    }

    /// The command line as a user would type it (without the `ip netns exec` prefix).
    pub(crate) fn display(&self) -> String {
        self.argv
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `in netns X` or `in the root namespace`.
    pub(crate) fn location(&self) -> String {
        match &self.netns {
            Some(ns) => format!("in netns {ns}"),
            None => "in the root namespace".to_owned(),
        }
    }

    /// A `std::process::Command` for this command line. `ip -n` commands
    /// already carry their namespace; others are wrapped in `ip netns exec`.
    pub(crate) fn command(&self) -> Command {
        let wrapped = self.netns.is_some() && !self.is_ip_n();
        let mut cmd;
        if wrapped {
            cmd = Command::new("ip");
            cmd.args(["netns", "exec"]);
            cmd.arg(self.netns.as_deref().unwrap_or_default());
            cmd.args(&self.argv);
        } else {
            cmd = Command::new(&self.argv[0]);
            cmd.args(&self.argv[1..]);
        }
        cmd
    }

    fn is_ip_n(&self) -> bool {
        self.argv.len() >= 3 && self.argv[0] == "ip" && self.argv[1] == "-n"
    }

    /// Runs to completion (bounded by `timeout`), capturing output; a non-zero
    /// exit is *not* an error here.
    pub(crate) fn output(&self, timeout: Duration) -> Result<Output> {
        let mut command = self.command();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = command.spawn().map_err(|source| Error::Spawn {
            command: self.display(),
            location: self.location(),
            source,
        })?;
        wait_output(child, timeout).map_err(|()| Error::CommandTimeout {
            command: self.display(),
            location: self.location(),
            timeout,
        })
    }

    /// Runs to completion (bounded); a non-zero exit becomes
    /// [`Error::CommandFailed`] carrying stderr. Returns stdout.
    pub(crate) fn run(&self, timeout: Duration) -> Result<String> {
        let out = self.output(timeout)?;
        self.check(&out)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// [`Cmd::run`] with the default bound for short commands.
    pub(crate) fn run_short(&self) -> Result<String> {
        self.run(SHORT)
    }

    /// Turns an unsuccessful `Output` into [`Error::CommandFailed`].
    pub(crate) fn check(&self, out: &Output) -> Result<()> {
        if out.status.success() {
            return Ok(());
        }
        Err(Error::CommandFailed {
            command: self.display(),
            location: self.location(),
            status: out.status.to_string(),
            stderr: trimmed_or_empty(&out.stderr),
        })
    }
}

fn trimmed_or_empty(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes).trim().to_owned();
    if s.is_empty() {
        "<empty>".to_owned()
    } else {
        s
    }
}

/// Waits for `child` (stdout/stderr piped) for at most `timeout`; kills it and
/// returns `Err(())` when the bound is hit.
fn wait_output(mut child: Child, timeout: Duration) -> std::result::Result<Output, ()> {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let mut readers = 0;
    let pipes = [
        (
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            &stdout,
        ),
        (
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            &stderr,
        ),
    ];
    for (pipe, sink) in pipes {
        if let Some(mut pipe) = pipe {
            let sink = Arc::clone(sink);
            let done_tx = done_tx.clone();
            readers += 1;
            thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                    sink.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&chunk[..n]);
                }
                let _ = done_tx.send(());
            });
        }
    }
    drop(done_tx);
    let Some(status) = wait_child(&mut child, timeout) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(());
    };
    // A daemonised descendant may still hold a pipe open: wait a little for
    // EOF, then keep whatever arrived.
    let grace = Instant::now() + PIPE_GRACE;
    for _ in 0..readers {
        if done_rx
            .recv_timeout(grace.saturating_duration_since(Instant::now()))
            .is_err()
        {
            break;
        }
    }
    let take = |buf: &Arc<Mutex<Vec<u8>>>| {
        std::mem::take(&mut *buf.lock().unwrap_or_else(|e| e.into_inner()))
    };
    Ok(Output {
        status,
        stdout: take(&stdout),
        stderr: take(&stderr),
    })
}

/// Polls `child` until it exits or `timeout` passes; `None` on timeout.
pub(crate) fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    let mut nap = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            // try_wait only fails if the child was already reaped.
            Err(_) => return None,
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::sleep(nap.min(deadline - now));
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

/// Polls `cond` every `every` until it returns `Ok(true)` or `timeout` passes.
/// `what` names the failure, e.g. `"nginx in netns X did not answer"`; the
/// last error returned by `cond` (if any) is appended to the timeout error.
pub fn wait_until<F>(what: &str, timeout: Duration, every: Duration, mut cond: F) -> Result<()>
where
    F: FnMut() -> Result<bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match cond() {
            Ok(true) => return Ok(()),
            Ok(false) => None,
            Err(e) => Some(e),
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout {
                what: what.to_owned(),
                timeout,
                detail: last
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default(),
            });
        }
        thread::sleep(every.min(deadline - now));
    }
}

/// Sends `signal` (a name such as `TERM` or `KILL`) to `pid` with `kill(1)`.
/// A process that is already gone is not an error.
pub(crate) fn signal(pid: u32, signal: &str) -> Result<()> {
    let cmd = Cmd::root(["kill", "-s", signal, &pid.to_string()]);
    let out = cmd.output(SHORT)?;
    if out.status.success() || !pid_alive(pid) {
        return Ok(());
    }
    cmd.check(&out)
}

/// Sends `signal` to every process of process group `pgid` (`kill -s SIG -- -PGID`).
/// A group that is already gone is not an error.
pub(crate) fn signal_group(pgid: u32, signal: &str) -> Result<()> {
    let cmd = Cmd::root(["kill", "-s", signal, "--", &format!("-{pgid}")]);
    let out = cmd.output(SHORT)?;
    if out.status.success() || group_members(pgid).is_empty() {
        return Ok(());
    }
    cmd.check(&out)
}

/// The live (not zombie) processes of process group `pgid`, with their state
/// letter (`S`, `R`, `T` for stopped, ...).
pub(crate) fn group_members(pgid: u32) -> Vec<(u32, char)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.filter_map(|e| e.ok()) {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) STATE PPID PGRP ...`
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let state = fields.first().and_then(|s| s.chars().next()).unwrap_or('?');
        let pgrp = fields.get(2).and_then(|s| s.parse::<u32>().ok());
        if pgrp == Some(pgid) && state != 'Z' && state != 'X' {
            out.push((pid, state));
        }
    }
    out
}

/// Whether `pid` exists and is not a zombie.
pub(crate) fn pid_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Format: `pid (comm) S ...`; comm may contain spaces and parentheses.
    match stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
    {
        Some(state) => state != "Z" && state != "X",
        None => false,
    }
}

/// The command line of `pid`, arguments joined by spaces.
pub(crate) fn pid_cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let parts: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    Some(parts.join(" "))
}

/// The parent pid of `pid`.
pub(crate) fn pid_parent(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The last `n` lines of a text file, or a note saying why there are none.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            if lines.is_empty() {
                "<empty>".to_owned()
            } else {
                lines[start..].join("\n")
            }
        }
        Err(e) => format!("<cannot read: {e}>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_and_failure_carry_command_and_stderr() {
        let ok = Cmd::root(["sh", "-c", "echo hi"]).run(SHORT).unwrap();
        assert_eq!(ok, "hi\n");
        let err = Cmd::root(["sh", "-c", "echo oops >&2; exit 3"])
            .run(SHORT)
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("sh -c echo oops >&2; exit 3"), "{msg}");
        assert!(msg.contains("root namespace"), "{msg}");
        assert!(msg.contains("exit status: 3"), "{msg}");
        assert!(msg.contains("oops"), "{msg}");
    }

    #[test]
    fn timeout_kills() {
        let start = Instant::now();
        let err = Cmd::root(["sleep", "10"])
            .run(Duration::from_millis(200))
            .unwrap_err();
        assert!(matches!(err, Error::CommandTimeout { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn daemonised_descendant_does_not_hang_output() {
        let start = Instant::now();
        let out = Cmd::root(["sh", "-c", "(sleep 5 &) ; echo done"])
            .run(SHORT)
            .unwrap();
        assert_eq!(out, "done\n");
        assert!(start.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn own_pid_is_alive_and_has_cmdline() {
        let me = std::process::id();
        assert!(pid_alive(me));
        assert!(pid_cmdline(me).is_some());
        assert!(pid_parent(me).is_some());
        assert!(!pid_alive(u32::MAX));
    }

    #[test]
    fn wait_until_reports_what_and_last_error() {
        let err = wait_until(
            "the moon did not rise",
            Duration::from_millis(50),
            Duration::from_millis(10),
            || Err(Error::NoDirector("x".into())),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("the moon did not rise within"), "{msg}");
        assert!(msg.contains("no director"), "{msg}");
    }
}
