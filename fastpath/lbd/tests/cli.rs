//! lbd's command line: bad vdevs, ports and configurations end in one clear line on stderr
//! and a non-zero exit, never a panic. Starts the EAL (with --no-huge) for the vdev cases.

use std::path::PathBuf;
use std::process::{Command, Output};

use tempfile::TempPath;

fn lbd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lbd")).args(args).output().expect("run lbd")
}

/// `text` in a new temp file named after `name` and ending in `suffix`, removed when the handle
/// drops: a test leaves nothing behind, on every path.
fn file(name: &str, suffix: &str, text: &str) -> TempPath {
    let f = tempfile::Builder::new().prefix(&format!("lbd-cli-{name}-")).suffix(suffix).tempfile().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f.into_temp_path()
}

fn write(name: &str, text: &str) -> TempPath {
    file(name, ".toml", text)
}

/// A new temp directory, removed with what it holds when the handle drops.
fn dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("lbd-cli-{name}-")).tempdir().unwrap()
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
    let services = file("bad", ".conf", "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind FNAT\n    real_server 10.0.1.1 80 {\n        weight abc\n    }\n}\n");
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
    for key in ["workers", "idle_sleep_us", "stats_file", "mbufs", "no_huge", "memory_mb", "file_prefix", "vdev", "pci = \"", "exception = \"", "virtio-user", "addresses", "kernel_tap", "gateway", "services", "toa", "timeouts", "flow_refuse", "max_client_list", "api_listen", "api_tls_cert", "api_tls_key", "metrics_listen", "api_max_connections", "api_idle_timeout_s"] {
        assert!(help.contains(key), "--help documents {key}");
    }
}

/// SIGTERM stops the workers, writes the final totals and exits 0 — not SIGSEGV at cleanup
/// (objects holding DPDK rings were dropped after `rte_eal_cleanup`).
#[test]
fn sigterm_stops_cleanly_with_exit_0() {
    use std::io::{BufRead, BufReader};
    let dir = dir("term");
    let sock = dir.path().join("lbd.sock");
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
    assert_eq!(o.status.code(), Some(0), "exit status {:?}; stderr: {}", o.status, String::from_utf8_lossy(&o.stderr));
    assert!(rest.contains("lbd: stopped; totals"), "final totals printed: {rest}");
}

/// A PCI port: `--check` prints an allow-list of exactly the configured NICs and no
/// `--no-pci` (nothing is probed by --check; the EAL is not started).
#[test]
fn check_with_a_pci_port_allow_lists_it() {
    let text = format!("{}[[port]]\nname = \"lan\"\npci = \"00:04.0\"\n", config("cli-pci", "net_ring0"));
    let p = write("pci", &text);
    let o = lbd(&["--config", p.to_str().unwrap(), "--check"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let eal = out.lines().find(|l| l.starts_with("EAL arguments:")).unwrap_or_default();
    assert!(eal.contains(" -a 0000:00:04.0 ") && !eal.contains("--no-pci") && eal.contains("--vdev=net_ring0"), "{out}");
    assert_eq!(eal.matches(" -a ").count(), 1, "{eal}");
    let p = write("pci-bad", &format!("{}pci = \"0000:00:04.0\"\n", config("x", "net_ring0")));
    assert_clean_failure(&lbd(&["--config", p.to_str().unwrap(), "--check"]), 2, &["port[0] (wan).vdev/pci", "not both"]);
}

/// `exception = "virtio-user"` without a usable /dev/vhost-net stops lbd before the EAL starts,
/// naming the port and the device.
#[test]
fn virtio_user_exception_without_vhost_net_fails_naming_port_and_device() {
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/vhost-net").is_ok() {
        eprintln!("skipped: this machine has a usable /dev/vhost-net");
        return;
    }
    let text = format!("{}kernel_tap = \"lbdvu{}\"\nexception = \"virtio-user\"\n", config("cli-vu", "net_ring0"), std::process::id() % 100_000);
    let p = write("vu", &text);
    let o = lbd(&["--config", p.to_str().unwrap()]);
    assert_clean_failure(&o, 1, &["port wan", "virtio-user", "/dev/vhost-net"]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("EAL"), "refused before the EAL starts");
}

/// Without /dev/vhost-net, `auto` (the default) takes a TAP, and the kernel side carries the
/// port's MAC and is up (what the virtio-user path replicates). lbd runs in a network
/// namespace of its own (`unshare -n`) so that its TAP is visible to nothing else.
#[test]
fn auto_exception_takes_a_tap_without_vhost_net() {
    use std::io::{BufRead, BufReader};
    let vhost = std::fs::OpenOptions::new().read(true).write(true).open("/dev/vhost-net").is_ok();
    if vhost || Command::new("unshare").args(["-n", "true"]).status().map(|s| !s.success()).unwrap_or(true) {
        eprintln!("skipped: needs unshare -n and no usable /dev/vhost-net");
        return;
    }
    let dir = dir("auto");
    let tap = format!("lbdat{}", std::process::id() % 100_000);
    // A data port with a MAC of its own (net_ring's is all zeroes, and then both exception
    // drivers pick a random one): a TAP in the same private namespace.
    let mac = "02:5a:00:00:00:01";
    let vdev = format!("net_tap0,iface=lbdad{},mac={mac}", std::process::id() % 100_000);
    let text = format!("api_socket = \"{}\"\n{}kernel_tap = \"{tap}\"\n", dir.path().join("lbd.sock").display(), config("cli-auto", &vdev));
    let p = write("auto", &text);
    let mut child = Command::new("unshare")
        .args(["-n", env!("CARGO_BIN_EXE_lbd"), "--config", p.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start lbd");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut line, mut seen) = (String::new(), String::new());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        line.clear();
        let n = out.read_line(&mut line).unwrap();
        seen.push_str(&line);
        if n == 0 || std::time::Instant::now() > deadline {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("lbd never printed its ready line: {seen} {}", String::from_utf8_lossy(&o.stderr));
        }
        if line.contains("lbd: ready") {
            break;
        }
    }
    let pid = child.id().to_string();
    let link = Command::new("nsenter").args(["-t", &pid, "-n", "ip", "-br", "link", "show", "dev", &tap]).output().unwrap();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    assert!(seen.contains(&format!("lbd: port wan: exception path tap ({tap}; auto: /dev/vhost-net cannot be opened")), "{seen}");
    assert!(seen.contains(&format!("wan=net_tap0 ({mac},")), "the port's MAC: {seen}");
    let link = String::from_utf8_lossy(&link.stdout).into_owned();
    assert!(link.starts_with(&tap) && link.contains(mac) && link.contains("UP"), "kernel side {link:?} carries the port's MAC {mac} and is up");
}

/// lbd.toml for the testbed's two ports with `services` = `conf`.
fn testbed_toml(name: &str, conf: &std::path::Path) -> TempPath {
    write(
        name,
        &format!(
            "services = \"{}\"\n[[port]]\nname = \"wan\"\nvdev = \"net_ring0\"\naddresses = [\"10.70.1.3/24\"]\n[[port]]\nname = \"lan\"\nvdev = \"net_ring1\"\naddresses = [\"10.70.2.3/24\"]\n",
            conf.display()
        ),
    )
}

/// Every keepalived.conf the testbed runs, and the seed-style deployments an operator brings
/// (dual-VIP DR with HTTP_GET, EulerOS FNAT with its extensions, a NAT lab), pass
/// `lbd --check`; a misspelt keyword in any of them fails at its file:line:column.
#[test]
fn every_testbed_and_seed_configuration_passes_check() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testbed/configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "conf")).collect();
    files.sort();
    for seed in ["seed-dr-dual-vip.conf", "seed-euleros-fnat.conf", "seed-nat-lab.conf"] {
        assert!(files.iter().any(|f| f.ends_with(seed)), "{seed} is missing");
    }
    for f in &files {
        let o = lbd(&["--config", testbed_toml("check", f).to_str().unwrap(), "--check"]);
        assert!(o.status.success(), "{}: {}", f.display(), String::from_utf8_lossy(&o.stderr));
        // The same file with its first `lb_algo` (or `state`) misspelt.
        let text = std::fs::read_to_string(f).unwrap();
        let Some((line, col, kw)) = text.lines().enumerate().find_map(|(i, l)| {
            let kw = ["lb_algo", "state"].into_iter().find(|k| l.trim_start().starts_with(&format!("{k} ")))?;
            Some((i + 1, l.find(kw).unwrap() + 1, kw))
        }) else {
            panic!("{}: no lb_algo or state line", f.display())
        };
        let misspelt: Vec<String> = text.lines().enumerate().map(|(i, l)| if i + 1 == line { l.replacen(kw, &format!("{kw}x"), 1) } else { l.to_owned() }).collect();
        let bad = file("misspelt", ".conf", &misspelt.join("\n"));
        let o = lbd(&["--config", testbed_toml("misspelt", &bad).to_str().unwrap(), "--check"]);
        assert_clean_failure(&o, 2, &[&format!("{}:{line}:{col}", bad.display()), &format!("{kw}x")]);
    }
}
