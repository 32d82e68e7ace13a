//! lbd's log against the real daemon (net_ring port, no hugepages): a stats file that cannot
//! be written (retried every 200 ms) is logged once, not every time; every change through the
//! API and every SIGHUP reload is one audit line naming the caller; reads log nothing; the
//! ready and stopped lines stay on stdout.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use lb_api::{pb, Target};

/// One lbd at a time (2 vCPUs shared with builds).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Lbd {
    child: Child,
    dir: PathBuf,
}

impl Lbd {
    fn start(name: &str, extra_args: &[&str]) -> Lbd {
        let prefix = format!("lbd-logging-{}-{name}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // The stats file's directory does not exist: every write fails.
        let text = format!(
            "workers = 1\nidle_sleep_us = 1000\nstats_file = \"{}\"\napi_socket = \"{}\"\n\
             [eal]\nno_huge = true\nmemory_mb = 256\nfile_prefix = \"{prefix}\"\n[[port]]\nname = \"wan\"\nvdev = \"net_ring0\"\n",
            dir.join("missing").join("stats.json").display(),
            dir.join("lbd.sock").display()
        );
        std::fs::write(dir.join("lbd.toml"), text).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_lbd"))
            .arg("--config")
            .arg(dir.join("lbd.toml"))
            .args(extra_args)
            .env_remove("LBD_LOG")
            .env_remove("RUST_LOG")
            .env_remove("JOURNAL_STREAM")
            .env_remove("LBD_LOG_OUTPUT")
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("stdout")).unwrap())
            .stderr(File::create(dir.join("stderr")).unwrap())
            .spawn()
            .expect("start lbd");
        let mut lbd = Lbd { child, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !lbd.stdout().contains("lbd: ready") {
            assert!(Instant::now() < deadline, "lbd not ready within 60 s: {}", lbd.stderr());
            assert!(lbd.child.try_wait().unwrap().is_none(), "lbd exited: {}", lbd.stderr());
            sleep(Duration::from_millis(100));
        }
        lbd
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join("stdout")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        assert!(Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap().success());
    }

    /// SIGTERM and the exit status.
    fn stop(&mut self) -> Option<i32> {
        self.signal("-TERM");
        self.child.wait().unwrap().code()
    }
}

impl Drop for Lbd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn lines(text: &str, needle: &str) -> Vec<String> {
    text.lines().filter(|l| l.contains(needle)).map(str::to_owned).collect()
}

#[test]
fn repeated_stats_failures_are_rate_limited_and_changes_are_audited_once() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut lbd = Lbd::start("main", &[]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut c = lb_api::connect(&Target::Unix(lbd.dir.join("lbd.sock"))).await.unwrap();
        c.get_info(pb::GetInfoRequest {}).await.unwrap();
        c.list_services(pb::ListServicesRequest { stats: true }).await.unwrap();
        c.set_timeouts(pb::SetTimeoutsRequest { timeouts: Some(pb::Timeouts { tcp: 600, tcpfin: 0, udp: 0 }) }).await.unwrap();
        c.zero_counters(pb::ZeroCountersRequest {}).await.unwrap();
    });
    lbd.signal("-HUP");
    // Well over a second of failing stats writes (one every 200 ms).
    sleep(Duration::from_millis(1500));
    assert_eq!(lbd.stop(), Some(0), "{}", lbd.stderr());
    let err = lbd.stderr();
    let stats = lines(&err, "cannot write stats file");
    assert_eq!(stats.len(), 1, "logged once, not every 200 ms: {err}");
    assert!(stats[0].starts_with("lbd: warning: cannot write stats file ") && stats[0].contains("missing"), "{err}");
    let audit = lines(&err, "lbd: api: ");
    let me = format!("by pid {} ", std::process::id());
    assert_eq!(audit.len(), 2, "one line per change, none for reads: {err}");
    assert!(audit[0].starts_with("lbd: api: SetTimeouts tcp 600 tcpfin 0 udp 0 ") && audit[0].contains(&me) && audit[0].ends_with(": ok"), "{audit:?}");
    assert!(audit[1].starts_with("lbd: api: ZeroCounters ") && audit[1].contains(&me), "{audit:?}");
    // No services file: the reload is refused, and says so once.
    assert_eq!(lines(&err, "reload (SIGHUP)").len(), 1, "{err}");
    let out = lbd.stdout();
    assert!(out.contains("lbd: ready") && out.contains("lbd: stopped; totals"), "{out}");
}

#[test]
fn log_level_warn_hides_the_audit_and_an_invalid_filter_is_refused() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut lbd = Lbd::start("warn", &["--log-level", "warn"]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut c = lb_api::connect(&Target::Unix(lbd.dir.join("lbd.sock"))).await.unwrap();
        c.zero_counters(pb::ZeroCountersRequest {}).await.unwrap();
    });
    assert_eq!(lbd.stop(), Some(0));
    let err = lbd.stderr();
    assert!(lines(&err, "lbd: api: ").is_empty(), "{err}");
    assert_eq!(lines(&err, "lbd: warning: cannot write stats file").len(), 1, "warnings still shown: {err}");

    let o = Command::new(env!("CARGO_BIN_EXE_lbd")).args(["--config", "/nonexistent/lbd.toml", "--log-level", "lbd=loud"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("lbd: invalid log filter from --log-level: "), "{err}");
}
