//! lbd's command line: bad vdevs, ports and configurations end in one clear line on stderr
//! and a non-zero exit, never a panic. Starts the EAL (with --no-huge) for the vdev cases.

use std::path::PathBuf;
use std::process::{Command, Output};

fn lbd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lbd")).args(args).output().expect("run lbd")
}

fn write(name: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("lbd-cli-{}-{name}.toml", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

fn last_line(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("").to_owned()
}

fn config(prefix: &str, vdev: &str) -> String {
    format!("[eal]\nno_huge = true\nmemory_mb = 256\nfile_prefix = \"{prefix}-{}\"\n[[port]]\nname = \"wan\"\nvdev = \"{vdev}\"\n", std::process::id())
}

fn assert_clean_failure(o: &Output, code: i32, wants: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "exit code; stderr: {err}");
    assert!(!err.contains("panicked"), "no panic: {err}");
    let line = last_line(o);
    assert!(line.starts_with("lbd: "), "one lbd line at the end: {err}");
    for w in wants {
        assert!(line.contains(w), "{line:?} should mention {w:?}");
    }
}

#[test]
fn interface_that_does_not_exist() {
    let p = write("noif", &config("cli-noif", "net_af_packet0,iface=lbdnosuch0"));
    let o = lbd(&["--config", p.to_str().unwrap()]);
    assert_clean_failure(&o, 1, &["port wan", "net_af_packet0", "iface=lbdnosuch0"]);
}

#[test]
fn driver_that_does_not_exist() {
    let p = write("nodrv", &config("cli-nodrv", "net_nosuchdriver0"));
    let o = lbd(&["--config", p.to_str().unwrap()]);
    assert_clean_failure(&o, 1, &["EAL initialisation failed", "net_nosuchdriver0"]);
}

#[test]
fn invalid_configurations_exit_2_naming_file_and_field() {
    let p = write("badkey", "wrokers = 2\n");
    assert_clean_failure(&lbd(&["--config", p.to_str().unwrap()]), 2, &["invalid configuration", "wrokers"]);
    let p = write("badaddr", &format!("{}addresses = [\"10.0.0.300/24\"]\n", config("x", "net_ring0")));
    assert_clean_failure(&lbd(&["--config", p.to_str().unwrap()]), 2, &["port[0] (wan).addresses", "10.0.0.300/24"]);
    let missing = "/nonexistent/lbd.toml";
    assert_clean_failure(&lbd(&["--config", missing]), 2, &["cannot read", missing]);
    let services = std::env::temp_dir().join(format!("lbd-cli-{}-bad.conf", std::process::id()));
    std::fs::write(&services, "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind FNAT\n    real_server 10.0.1.1 80 {\n        weight abc\n    }\n}\n").unwrap();
    let p = write("badsvc", &format!("services = \"{}\"\n{}", services.display(), config("x", "net_ring0")));
    let o = lbd(&["--config", p.to_str().unwrap(), "--check"]);
    assert_clean_failure(&o, 2, &["services", &format!("{}:5", services.display()), "weight"]);
}

#[test]
fn check_prints_the_eal_arguments_and_help_documents_the_keys() {
    let p = write("ok", &config("cli-ok", "net_ring0"));
    let o = lbd(&["--config", p.to_str().unwrap(), "--check"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("--no-pci") && out.contains("--vdev=net_ring0") && out.contains("--no-huge"), "{out}");
    let help = String::from_utf8_lossy(&lbd(&["--help"]).stdout).into_owned();
    for key in ["workers", "idle_sleep_us", "stats_file", "mbufs", "no_huge", "memory_mb", "file_prefix", "vdev", "addresses", "kernel_tap", "gateway", "services", "toa", "timeouts", "flow_refuse", "max_client_list", "api_listen", "metrics_listen", "api_max_connections", "api_idle_timeout_s"] {
        assert!(help.contains(key), "--help documents {key}");
    }
}

/// SIGTERM stops the workers, writes the final totals and exits 0 — not SIGSEGV at cleanup
/// (objects holding DPDK rings were dropped after `rte_eal_cleanup`).
#[test]
fn sigterm_stops_cleanly_with_exit_0() {
    use std::io::{BufRead, BufReader};
    let dir = std::env::temp_dir().join(format!("lbd-cli-{}-term", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("lbd.sock");
    let text = format!(
        "workers = 1\napi_socket = \"{}\"\n[eal]\nno_huge = true\nmemory_mb = 256\nfile_prefix = \"cli-term-{}\"\n[[port]]\nname = \"wan\"\nvdev = \"net_ring0\"\n[[port]]\nname = \"lan\"\nvdev = \"net_ring1\"\n",
        sock.display(),
        std::process::id()
    );
    let p = write("term", &text);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args(["--config", p.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start lbd");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        line.clear();
        let n = out.read_line(&mut line).unwrap();
        assert!(n > 0 && std::time::Instant::now() < deadline, "lbd never printed its ready line");
        if line.contains("lbd: ready") {
            break;
        }
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let o = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(o.status.code(), Some(0), "exit status {:?}; stderr: {}", o.status, String::from_utf8_lossy(&o.stderr));
    assert!(rest.contains("lbd: stopped; totals"), "final totals printed: {rest}");
}
