//! Machine facts around the runs: CPU shares from /proc/stat (steal included), a thread's CPU
//! time, and waiting until nothing else heavy runs (other builds, other directors).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lb_perf::bench::procs;
use serde_json::{json, Value};

/// Set by SIGINT/SIGTERM: the bench stops at the next run boundary and cleans up.
static STOP: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

/// Makes SIGINT and SIGTERM set the stop flag instead of killing the process (children and
/// namespaces are then removed by the normal path).
pub fn catch_signals() {
    let flag = Arc::clone(STOP.get_or_init(|| Arc::new(AtomicBool::new(false))));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
    }
}

/// Whether a stop was asked for.
pub fn stopped() -> bool {
    STOP.get().is_some_and(|f| f.load(Ordering::Relaxed))
}

/// The first line of /proc/stat: cumulative ticks per kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSample {
    user: u64,
    system: u64,
    idle: u64,
    softirq: u64,
    steal: u64,
    total: u64,
}

impl CpuSample {
    /// Now.
    pub fn now() -> CpuSample {
        let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let v: Vec<u64> = s
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        let f = |i: usize| v.get(i).copied().unwrap_or(0);
        CpuSample {
            user: f(0) + f(1),
            system: f(2) + f(5),
            idle: f(3) + f(4),
            softirq: f(6),
            steal: f(7),
            // guest time is already counted in user.
            total: (0..8).map(f).sum(),
        }
    }

    /// Shares of all CPUs (percent) from `self` to `later`.
    pub fn shares(&self, later: &CpuSample) -> Value {
        let dt = later.total.saturating_sub(self.total).max(1) as f64;
        let pct = |a: u64, b: u64| (1000.0 * b.saturating_sub(a) as f64 / dt).round() / 10.0;
        json!({
            "busy_pct": (1000.0 * (1.0 - later.idle.saturating_sub(self.idle) as f64 / dt)).round() / 10.0,
            "user_pct": pct(self.user, later.user),
            "system_pct": pct(self.system, later.system),
            "softirq_pct": pct(self.softirq, later.softirq),
            "steal_pct": pct(self.steal, later.steal),
        })
    }
}

/// User+system clock ticks of `pid`'s thread named `comm` (None: no such thread).
pub fn thread_ticks(pid: u32, comm: &str) -> Option<(u32, u64)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    for t in tasks.flatten() {
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if stat.get(open + 1..close) != Some(comm) {
            continue;
        }
        let f: Vec<&str> = stat
            .get(close + 2..)
            .unwrap_or("")
            .split_whitespace()
            .collect();
        // After the comm: state is field 3; utime and stime are fields 14 and 15.
        let ticks = f.get(11).and_then(|x| x.parse::<u64>().ok())?
            + f.get(12).and_then(|x| x.parse::<u64>().ok())?;
        let tid = t.file_name().to_string_lossy().parse().ok()?;
        return Some((tid, ticks));
    }
    None
}

/// User+system clock ticks of the whole process.
pub fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    let f: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Clock ticks per second (USER_HZ; 100 on Linux).
pub const TICKS_PER_S: f64 = 100.0;

/// Whether `pid` descends from this process.
fn ours(pid: u32) -> bool {
    let me = std::process::id();
    let mut p = pid;
    for _ in 0..64 {
        if p == me {
            return true;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            return false;
        };
        let ppid = stat
            .rfind(')')
            .and_then(|c| stat.get(c + 2..))
            .and_then(|r| r.split_whitespace().nth(1))
            .and_then(|x| x.parse::<u32>().ok());
        match ppid {
            Some(pp) if pp > 1 => p = pp,
            _ => return false,
        }
    }
    false
}

/// CPU ticks of the whole machine and of this process tree, to tell what others used.
#[derive(Debug, Clone, Copy, Default)]
pub struct Accounting {
    cpu: CpuSample,
    ours: u64,
}

impl Accounting {
    /// Now: /proc/stat and the utime+stime of every process descending from this one.
    pub fn now() -> Accounting {
        let mut ours = 0;
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                if let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() {
                    if ours_pid(pid) {
                        ours += process_ticks(pid).unwrap_or(0);
                    }
                }
            }
        }
        Accounting {
            cpu: CpuSample::now(),
            ours,
        }
    }

    /// Share of all CPUs (percent) that processes outside this tree used from `self` to
    /// `later` (busy time minus ours minus interrupt work, which mostly serves our traffic).
    pub fn others_pct(&self, later: &Accounting) -> f64 {
        let (a, b) = (&self.cpu, &later.cpu);
        let dt = b.total.saturating_sub(a.total).max(1);
        let busy = dt.saturating_sub(b.idle.saturating_sub(a.idle));
        let irq = b.softirq.saturating_sub(a.softirq);
        let others = busy.saturating_sub(later.ours.saturating_sub(self.ours) + irq);
        (1000.0 * others as f64 / dt as f64).round() / 10.0
    }
}

/// Whether `pid` is this process or descends from it.
pub fn ours_pid(pid: u32) -> bool {
    ours(pid)
}

/// Heavy processes that are not this bench's: builds, directors, generators, wrk.
pub fn others_heavy() -> Vec<String> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        let comm = comm.trim();
        let heavy = matches!(
            comm,
            "cargo" | "rustc" | "lbd" | "lb-pktgen" | "dpdk-testpmd" | "wrk" | "lb-slowpath"
        ) || comm.starts_with("lb-bench");
        if heavy && !ours(pid) {
            out.push(format!("{pid} {comm}"));
        }
    }
    out
}

/// Waits until no foreign heavy process runs (polling every 30 s) and other processes use at
/// most `quiet_pct` of the CPUs (1 s steps), drawing on `budget`. Returns what was seen last:
/// the busy share and the foreign processes.
pub fn wait_quiet(quiet_pct: f64, budget: &mut Duration, what: &str) -> (f64, Vec<String>) {
    let started = Instant::now();
    let mut said = false;
    loop {
        let heavy = others_heavy();
        let busy = procs::cpu_busy(Duration::from_millis(300));
        if (heavy.is_empty() && busy <= quiet_pct) || budget.is_zero() || stopped() {
            if said || !heavy.is_empty() {
                eprintln!(
                    "lb-bench-sync: {what}: going on after {:.0} s (others' CPU {busy:.0} %{})",
                    started.elapsed().as_secs_f64(),
                    if heavy.is_empty() {
                        String::new()
                    } else {
                        format!(", still running: {}", heavy.join(", "))
                    }
                );
            }
            return (busy, heavy);
        }
        let step = if heavy.is_empty() {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(30)
        };
        let step = step.min(*budget);
        if !said {
            eprintln!(
                "lb-bench-sync: {what}: waiting for quiet (others' CPU {busy:.0} %{}), at most {} s more",
                if heavy.is_empty() { String::new() } else { format!("; running: {}", heavy.join(", ")) },
                budget.as_secs()
            );
            said = true;
        }
        let until = Instant::now() + step;
        while Instant::now() < until && !stopped() {
            std::thread::sleep(Duration::from_millis(200));
        }
        *budget = budget.saturating_sub(step);
    }
}

/// Runs a command; its stdout on success, else an error with its stderr.
pub fn run(cmd: &Path, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{}: {e}", cmd.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} {}: {}",
            cmd.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The median of `v` (None when empty).
pub fn median(v: &[f64]) -> Option<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_samples() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        let a = CpuSample::now();
        std::thread::sleep(Duration::from_millis(30));
        let s = a.shares(&CpuSample::now());
        assert!(
            s["busy_pct"]
                .as_f64()
                .is_some_and(|b| (0.0..=100.0).contains(&b)),
            "{s}"
        );
        assert!(process_ticks(std::process::id()).is_some());
        assert!(ours(std::process::id()));
    }
}
