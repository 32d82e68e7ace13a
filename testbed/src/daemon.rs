//! A long-running process the testbed starts in a namespace and stops again
//! (lbd, lb-slowpath): started detached with `setsid ip netns exec`, output
//! to a log file, pid in a pid file, stopped with SIGTERM then SIGKILL. What
//! "ready" means is each daemon's own business ([`crate::director`],
//! [`crate::slowpath`]).

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd;
use crate::error::{Error, Result};
use crate::state;

/// How long a daemon gets after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long a daemon gets to disappear after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Lines of a daemon's log quoted in errors.
pub(crate) const LOG_TAIL_LINES: usize = 30;

/// What happens to an existing log file when a daemon starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogMode {
    /// Start a new log (the first start in a topology).
    Truncate,
    /// Append (a restart: earlier lines stay, readers keep their offsets).
    Append,
}

/// A running daemon: what it is called in messages, its pid, its `Child`
/// when this process started it, and its log.
#[derive(Debug)]
pub(crate) struct Daemon {
    what: &'static str,
    pid: u32,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `setsid ip netns exec <ns> <argv...>`, stdout and stderr to
    /// `log`, pid to `pid_file`. `setsid` and `ip netns exec` both exec in
    /// place, so the pid is the daemon's own.
    pub(crate) fn start(
        what: &'static str,
        ns: &str,
        argv: &[OsString],
        log: &Path,
        pid_file: &Path,
        mode: LogMode,
    ) -> Result<Daemon> {
        let out = open_log(log, mode)?;
        let err = out
            .try_clone()
            .map_err(|e| Error::io("duplicating handle of", log, e))?;
        let mut command = Command::new("setsid");
        command
            .args(["ip", "netns", "exec", ns])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = command.spawn().map_err(|source| Error::Spawn {
            command: format!(
                "setsid ip netns exec {ns} {}",
                argv.iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            location: format!("in netns {ns}"),
            source,
        })?;
        let pid = child.id();
        let daemon = Daemon {
            what,
            pid,
            child: Some(child),
            log: log.to_owned(),
        };
        state::write(pid_file, format!("{pid}\n").as_bytes())?;
        Ok(daemon)
    }

    /// The daemon recorded in `pid_file`, if that pid is alive and its
    /// command line contains `marker` (e.g. the topology's lbd.toml), so a
    /// recycled pid is never signalled.
    pub(crate) fn from_pid_file(
        what: &'static str,
        pid_file: &Path,
        marker: &Path,
        log: &Path,
    ) -> Option<Daemon> {
        let pid = state::read_pid(pid_file)?;
        let cmdline = cmd::pid_cmdline(pid)?;
        let ours = cmdline.contains(&*marker.to_string_lossy());
        (ours && cmd::pid_alive(pid)).then(|| Daemon {
            what,
            pid,
            child: None,
            log: log.to_owned(),
        })
    }

    /// Its pid.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// `Some(how it exited)` once it is gone.
    pub(crate) fn exited(&mut self) -> Option<String> {
        match &mut self.child {
            Some(child) => match child.try_wait() {
                Ok(Some(status)) => Some(status.to_string()),
                Ok(None) => None,
                Err(e) => Some(format!("unknown status: {e}")),
            },
            None => (!cmd::pid_alive(self.pid)).then(|| "exited".to_owned()),
        }
    }

    /// The last lines of its log.
    pub(crate) fn log_tail(&self) -> String {
        cmd::tail(&self.log, LOG_TAIL_LINES)
    }

    /// [`Error::Exited`] for this daemon, which exited with `status` before
    /// it was ready.
    /// Waits (bounded by `timeout`) until the daemon's log, from byte `since` on, has a line
    /// containing `needle`; fails at once with the log's tail if the daemon exits first, or
    /// with `what` ("lb-slowpath (pid 7) did not connect to lbd") when time runs out.
    pub(crate) fn wait_log(&mut self, log: &std::path::Path, since: u64, needle: &str, what: impl Fn(u32) -> String, timeout: std::time::Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if crate::slowpath::log_since(log, since)?.contains(needle) {
                return Ok(());
            }
            if let Some(status) = self.exited() {
                return Err(self.exited_error(status));
            }
            if std::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: what(self.pid()),
                    timeout,
                    detail: format!("; no {needle:?} in {}; its last lines:\n{}", log.display(), self.log_tail()),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    pub(crate) fn exited_error(&self, status: String) -> Error {
        Error::Exited {
            what: self.what.to_owned(),
            status,
            log: self.log.clone(),
            tail: self.log_tail(),
        }
    }

    /// Whether it is stopped (SIGSTOP): every live process of its group is.
    pub(crate) fn frozen(&self) -> bool {
        let members = cmd::group_members(self.pid);
        !members.is_empty() && members.iter().all(|(_, s)| *s == 'T' || *s == 't')
    }

    /// Sends `signal` to its whole process group (it leads one: `setsid`).
    pub(crate) fn signal_group(&self, signal: &str) -> Result<()> {
        cmd::signal_group(self.pid, signal)
    }

    /// SIGKILL to its whole process group (its children too, e.g.
    /// keepalived's VRRP process), then waits (5 s) until all are gone.
    pub(crate) fn kill_group(&mut self) -> Result<()> {
        self.signal_group("KILL")?;
        let deadline = Instant::now() + KILL_WAIT;
        loop {
            let gone = self.exited().is_some() && cmd::group_members(self.pid).is_empty();
            if gone {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!(
                        "{} (process group {}) did not exit after SIGKILL",
                        self.what, self.pid
                    ),
                    timeout: KILL_WAIT,
                    detail: format!("; still there: {:?}", cmd::group_members(self.pid)),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, up to [`STOP_GRACE`] to exit, then SIGKILL (and 5 s more).
    /// A frozen (SIGSTOPped) daemon is sent SIGCONT first.
    pub(crate) fn stop(&mut self) -> Result<()> {
        if self.exited().is_some() {
            return Ok(());
        }
        if self.frozen() {
            self.signal_group("CONT")?;
        }
        cmd::signal(self.pid, "TERM")?;
        if self.wait_exit(STOP_GRACE) {
            return Ok(());
        }
        self.kill()
    }

    /// SIGKILL, then waits (5 s) until it is gone (reaped, when it is our child).
    pub(crate) fn kill(&mut self) -> Result<()> {
        if self.exited().is_some() {
            return Ok(());
        }
        match &mut self.child {
            Some(child) => {
                let _ = child.kill();
            }
            None => cmd::signal(self.pid, "KILL")?,
        }
        if self.wait_exit(KILL_WAIT) {
            return Ok(());
        }
        Err(Error::Timeout {
            what: format!(
                "{} (pid {}) did not exit after SIGKILL",
                self.what, self.pid
            ),
            timeout: KILL_WAIT,
            detail: String::new(),
        })
    }

    fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.exited().is_some() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn open_log(path: &Path, mode: LogMode) -> Result<File> {
    let mut o = OpenOptions::new();
    match mode {
        LogMode::Truncate => o.write(true).create(true).truncate(true),
        LogMode::Append => o.append(true).create(true),
    };
    o.open(path).map_err(|e| Error::io("opening", path, e))
}

/// Finds binary `file` for a daemon: `explicit` (named `flag` in messages),
/// else the environment variable `env` (its value passed in as `env_value`),
/// else the first of `dirs` that holds a file `file`. The error says what was
/// tried.
pub(crate) fn resolve_binary(
    file: &str,
    explicit: Option<&Path>,
    flag: &str,
    env: &str,
    env_value: Option<OsString>,
    dirs: &[PathBuf],
) -> std::result::Result<PathBuf, String> {
    let check = |p: &Path, source: &str| {
        if p.is_file() {
            p.canonicalize()
                .map_err(|e| format!("resolving {}: {e}", p.display()))
        } else {
            Err(format!("{} (from {source}) is not a file", p.display()))
        }
    };
    if let Some(p) = explicit {
        return check(p, flag);
    }
    if let Some(p) = env_value.filter(|v| !v.is_empty()) {
        return check(Path::new(&p), env);
    }
    let mut tried = Vec::new();
    for dir in dirs {
        let c = dir.join(file);
        if c.is_file() {
            return Ok(c);
        }
        let c = c.display().to_string();
        if !tried.contains(&c) {
            tried.push(c);
        }
    }
    Err(format!(
        "no {flag}, {env} unset, and no {file} at {}",
        if tried.is_empty() {
            "any known place".to_owned()
        } else {
            tried.join(" or ")
        }
    ))
}

/// The directories a binary built in this workspace is looked for in: that
/// of the current executable, and its parent when that is a `deps/`
/// directory (tests).
pub(crate) fn exe_dirs() -> Result<Vec<PathBuf>> {
    let exe =
        std::env::current_exe().map_err(|e| Error::io("locating", "the current executable", e))?;
    Ok(dirs_of(&exe))
}

fn dirs_of(exe: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = exe.parent() {
        dirs.push(dir.to_owned());
        if dir.file_name().is_some_and(|n| n == "deps") {
            dirs.extend(dir.parent().map(Path::to_owned));
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lbt-daemon-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn resolution_order_is_explicit_env_dirs() {
        let d = scratch("order");
        let (a, b) = (d.join("a"), d.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("tool"), "").unwrap();
        let dirs = [a.clone(), b.clone()];
        // Only in the second directory.
        let got = resolve_binary("tool", None, "--tool", "TOOL_BIN", None, &dirs).unwrap();
        assert_eq!(got, b.join("tool"));
        // The first directory wins once it has one.
        std::fs::write(a.join("tool"), "").unwrap();
        let got = resolve_binary("tool", None, "--tool", "TOOL_BIN", None, &dirs).unwrap();
        assert_eq!(got, a.join("tool"));
        // The environment beats the directories; an empty value is unset.
        let env = Some(b.join("tool").into_os_string());
        let got = resolve_binary("tool", None, "--tool", "TOOL_BIN", env, &dirs).unwrap();
        assert_eq!(got, b.join("tool").canonicalize().unwrap());
        let got =
            resolve_binary("tool", None, "--tool", "TOOL_BIN", Some("".into()), &dirs).unwrap();
        assert_eq!(got, a.join("tool"));
        // Explicit beats everything, and must exist.
        let env = Some(a.join("tool").into_os_string());
        let got = resolve_binary(
            "tool",
            Some(&b.join("tool")),
            "--tool",
            "TOOL_BIN",
            env,
            &dirs,
        )
        .unwrap();
        assert_eq!(got, b.join("tool").canonicalize().unwrap());
        let err = resolve_binary(
            "tool",
            Some(&d.join("nope")),
            "--tool",
            "TOOL_BIN",
            None,
            &dirs,
        )
        .unwrap_err();
        assert!(err.ends_with("nope (from --tool) is not a file"), "{err}");
        let err = resolve_binary(
            "tool",
            None,
            "--tool",
            "TOOL_BIN",
            Some(d.join("nope").into()),
            &dirs,
        )
        .unwrap_err();
        assert!(err.ends_with("nope (from TOOL_BIN) is not a file"), "{err}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_everywhere_names_what_was_tried() {
        let d = scratch("missing");
        let err = resolve_binary(
            "tool",
            None,
            "--tool",
            "TOOL_BIN",
            None,
            &[d.clone(), d.clone()],
        )
        .unwrap_err();
        assert_eq!(
            err,
            format!(
                "no --tool, TOOL_BIN unset, and no tool at {}",
                d.join("tool").display()
            )
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn test_binaries_look_above_deps() {
        assert_eq!(
            dirs_of(Path::new("/t/debug/deps/x-123")),
            [PathBuf::from("/t/debug/deps"), PathBuf::from("/t/debug")]
        );
        assert_eq!(
            dirs_of(Path::new("/t/debug/lb-testbed")),
            [PathBuf::from("/t/debug")]
        );
    }

    #[test]
    fn append_keeps_earlier_lines() {
        let d = scratch("log");
        let log = d.join("x.log");
        std::fs::write(&log, "one\n").unwrap();
        use std::io::Write;
        open_log(&log, LogMode::Append)
            .unwrap()
            .write_all(b"two\n")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "one\ntwo\n");
        open_log(&log, LogMode::Truncate)
            .unwrap()
            .write_all(b"three\n")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "three\n");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
