//! Child processes of the harness: spawn with logs, stop by pid (SIGTERM, then SIGKILL),
//! read a line with a deadline, and the machine facts recorded with every run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// A failure of the harness itself (a tool missing, a process that would not start).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot start {what} ({cmd}): {source}")]
    Spawn {
        what: String,
        cmd: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
    #[error("testbed: {0}")]
    Testbed(#[from] lb_testbed::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Shorthand.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;

/// A spawned process with a name for messages.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    pub child: Child,
    lines: Option<Receiver<String>>,
}

/// Starts `cmd`; stdout is piped (read with [`Proc::line`]) when `pipe_stdout`, else
/// written to `log`; stderr always goes to `log`.
pub fn spawn(
    name: &str,
    cmd: &mut Command,
    log: &Path,
    pipe_stdout: bool,
    pipe_stdin: bool,
) -> Result<Proc> {
    let err_file = std::fs::File::create(log).map_err(|source| BenchError::Io {
        path: log.into(),
        source,
    })?;
    let out: Stdio = if pipe_stdout {
        Stdio::piped()
    } else {
        err_file
            .try_clone()
            .map(Stdio::from)
            .map_err(|source| BenchError::Io {
                path: log.into(),
                source,
            })?
    };
    cmd.stdout(out).stderr(err_file).stdin(if pipe_stdin {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().map_err(|source| BenchError::Spawn {
        what: name.into(),
        cmd: format!("{cmd:?}"),
        source,
    })?;
    let lines = child.stdout.take().map(reader);
    Ok(Proc {
        name: name.into(),
        child,
        lines,
    })
}

fn reader(out: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out)
            .lines()
            .map_while(std::result::Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Proc {
    /// The pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next stdout line, waiting at most `timeout`; `None` on timeout or end of output.
    pub fn line(&mut self, timeout: Duration) -> Option<String> {
        self.lines.as_ref()?.recv_timeout(timeout).ok()
    }

    /// Whether it has exited (reaping it).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends SIGTERM (through kill(1), so this crate needs no libc calls of its own).
    pub fn term(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .stderr(Stdio::null())
            .status();
    }

    /// Writes a line to stdin (testpmd exits on Enter) and closes it.
    pub fn enter(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = std::io::Write::write_all(&mut stdin, b"\n");
        }
    }

    /// Waits up to `grace` for exit, then SIGKILLs; returns the status.
    pub fn wait_or_kill(&mut self, grace: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + grace;
        while Instant::now() < end {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "lb-bench: {} (pid {}) did not stop within {grace:?}; killing it",
            self.name,
            self.pid()
        );
        let _ = self.child.kill();
        self.child.wait().ok()
    }

    /// Resident set size in KiB, from /proc.
    pub fn rss_kb(&self) -> Option<u64> {
        rss_kb(self.pid())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.term();
            self.wait_or_kill(Duration::from_secs(5));
        }
    }
}

/// VmRSS of a process in KiB.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The first three fields of /proc/loadavg.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The all-CPU line of /proc/stat, in jiffies: everything, idle (with iowait), and what the
/// hypervisor stole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuSample {
    pub total: u64,
    pub idle: u64,
    pub steal: u64,
}

/// Reads /proc/stat's first line.
pub fn cpu_sample() -> Option<CpuSample> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    parse_cpu_line(s.lines().next()?)
}

fn parse_cpu_line(line: &str) -> Option<CpuSample> {
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    Some(CpuSample { total: v.iter().sum(), idle: v.get(3)? + v.get(4).copied().unwrap_or(0), steal: v.get(7).copied().unwrap_or(0) })
}

/// CPU time (user + system, jiffies, all threads) process `pid` has used since it started.
pub fn proc_jiffies(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_stat(&s)
}

fn parse_proc_stat(s: &str) -> Option<u64> {
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// What the rest of the machine took during a run: the share of all CPUs other processes used
/// (busy time minus steal minus `ours`, the jiffies of the run's own processes) and the share
/// the hypervisor stole, in percent.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CpuShares {
    pub others_pct: f64,
    pub steal_pct: f64,
}

/// [`CpuShares`] between two samples.
pub fn cpu_shares(a: CpuSample, b: CpuSample, ours: u64) -> Option<CpuShares> {
    let total = b.total.checked_sub(a.total).filter(|t| *t > 0)?;
    let busy = total.saturating_sub(b.idle.saturating_sub(a.idle));
    let steal = b.steal.saturating_sub(a.steal);
    let others = busy.saturating_sub(steal).saturating_sub(ours);
    let pct = |x: u64| (1000.0 * x as f64 / total as f64).round() / 10.0;
    Some(CpuShares { others_pct: pct(others), steal_pct: pct(steal) })
}

/// Share of all CPUs busy (not idle or iowait) over `window`, from /proc/stat, in percent.
/// Taken between runs, when none of the harness's own processes run, it is other people's load.
pub fn cpu_busy(window: Duration) -> f64 {
    let Some(a) = cpu_sample() else { return 0.0 };
    std::thread::sleep(window);
    let Some(b) = cpu_sample() else { return 0.0 };
    let (dt, di) = (b.total.saturating_sub(a.total), b.idle.saturating_sub(a.idle));
    if dt == 0 {
        0.0
    } else {
        100.0 * (dt - di.min(dt)) as f64 / dt as f64
    }
}

/// Waits until every path exists; false on timeout or if `alive` says the creator died.
pub fn wait_paths(paths: &[PathBuf], timeout: Duration, mut alive: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if paths.iter().all(|p| p.exists()) {
            return true;
        }
        if !alive() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The output of a short command, trimmed; empty on failure.
pub fn output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// A program next to the running one (the other binaries of the same build).
pub fn sibling(name: &str) -> std::path::PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| std::path::PathBuf::from(name))
}

/// Whether a program is on PATH (or is an existing path).
pub fn have(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// The last `n` lines of a log file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Today's date as YYYY-MM-DD (UTC), from the system clock.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_looks_like_a_date() {
        let t = today();
        assert_eq!(t.len(), 10, "{t}");
        assert!(t.starts_with("20"), "{t}");
        assert_eq!(&t[4..5], "-");
    }

    #[test]
    fn rss_of_self_is_known() {
        assert!(rss_kb(std::process::id()).is_some_and(|kb| kb > 0));
    }
}

#[cfg(test)]
mod cpu_tests {
    use super::*;

    #[test]
    fn shares_subtract_our_processes_and_steal() {
        let a = parse_cpu_line("cpu  100 0 100 700 0 0 0 0 0 0").unwrap();
        let b = parse_cpu_line("cpu  400 0 200 1000 100 0 0 200 0 0").unwrap();
        assert_eq!(b.steal, 200);
        // 1000 jiffies passed: 400 idle, 200 stolen, 300 ours, so 100 others.
        assert_eq!(cpu_shares(a, b, 300), Some(CpuShares { others_pct: 10.0, steal_pct: 20.0 }));
        assert_eq!(cpu_shares(a, a, 0), None);
        let stat = "4242 (rte worker) S 1 2 3 4 5 6 7 8 9 10 150 50 0 0 20 0";
        assert_eq!(parse_proc_stat(stat), Some(200));
    }
}
