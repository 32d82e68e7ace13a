//! `process_*` metrics under the names the Prometheus client libraries use, read from
//! `/proc/self` at each scrape (parsing kept apart from reading, so it is tested on text).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::families::{Family, Gathered};

/// Linux reports `/proc` times in USER_HZ, which is 100 on every architecture lbd runs on.
const USER_HZ: f64 = 100.0;

/// What the families are made of.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub start_time_seconds: f64,
    pub virtual_memory_bytes: u64,
    pub resident_memory_bytes: u64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
}

/// From `/proc/self/stat` (utime, stime, starttime), `/proc/self/status` (VmSize, VmRSS),
/// `/proc/stat` (btime) and `/proc/self/limits` (Max open files); `None` when `stat` is
/// unreadable.
pub fn parse(stat: &str, status: &str, proc_stat: &str, limits: &str, open_fds: u64) -> Option<ProcessStats> {
    // Fields after the command, whose parentheses may hold anything: ") S ppid ...".
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): utime is field 14, stime 15, starttime 22.
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let (utime, stime, start) = (field(14)?, field(15)?, field(22)?);
    let kb = |key: &str| status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()).map(|k| k * 1024);
    let btime = proc_stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
    let max_fds = limits.lines().find(|l| l.starts_with("Max open files")).and_then(|l| l.split_whitespace().nth(3)).and_then(|v| v.parse().ok());
    Some(ProcessStats {
        cpu_seconds: (utime + stime) as f64 / USER_HZ,
        start_time_seconds: btime as f64 + start as f64 / USER_HZ,
        virtual_memory_bytes: kb("VmSize:").unwrap_or(0),
        resident_memory_bytes: kb("VmRSS:").unwrap_or(0),
        open_fds,
        max_fds,
    })
}

/// This process, now.
pub fn read() -> Option<ProcessStats> {
    let r = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0);
    parse(&r("/proc/self/stat"), &r("/proc/self/status"), &r("/proc/stat"), &r("/proc/self/limits"), fds)
}

/// The families for `p`.
pub(crate) fn families(p: &ProcessStats) -> Vec<Family> {
    let mut cpu = Family::counter("process_cpu_seconds", "Total user and system CPU time spent in seconds.");
    cpu.push_f(vec![], p.cpu_seconds);
    let mut start = Family::gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.");
    start.push_f(vec![], p.start_time_seconds);
    let mut out = vec![
        cpu,
        start,
        Family::gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.").with(vec![], p.virtual_memory_bytes),
        Family::gauge("process_resident_memory_bytes", "Resident memory size in bytes.").with(vec![], p.resident_memory_bytes),
        Family::gauge("process_open_fds", "Number of open file descriptors.").with(vec![], p.open_fds),
    ];
    if let Some(m) = p.max_fds {
        out.push(Family::gauge("process_max_fds", "Maximum number of open file descriptors.").with(vec![], m));
    }
    out
}

/// The `process_*` collector.
#[derive(Debug)]
pub struct Process;

impl Collector for Process {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        match read() {
            Some(p) => Gathered(families(&p)).encode(encoder),
            None => Ok(()),
        }
    }
}
