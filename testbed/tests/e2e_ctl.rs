//! End-to-end control of a running lbd through its gRPC API with `lbctl`: listing, adding a
//! service and a real server then curling through the new VIP, deleting it, invalid requests,
//! `-S | -R`, reload (SIGHUP and `lbctl reload`), metrics, and adding and deleting a service
//! while wrk runs against another one without a single error.
//! Needs root, DPDK, iproute2, curl, wrk, nginx; `LBD_BIN`/`LBCTL_BIN` or built target/*/ binaries.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use lb_testbed::{unique_name, StatePaths, Testbed, UpOptions};

const VIP: &str = "10.70.1.100";

fn demo_conf() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/fnat-demo.conf")
}

/// `LBCTL_BIN`, else `lbctl` in the target directory this test was built into.
fn lbctl_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("LBCTL_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/e2e_ctl-HASH -> target/<profile>/lbctl
    let p = exe.parent().and_then(|d| d.parent()).expect("target dir").join("lbctl");
    assert!(p.exists(), "{} not found: build it (cargo build -p lbctl) or set LBCTL_BIN", p.display());
    p
}

struct Ctl {
    tb: Testbed,
    sock: String,
    bin: String,
}

impl Ctl {
    fn up(prefix: &str, workers: u32, extra: &str) -> Ctl {
        let mut opts = UpOptions::new(unique_name(prefix));
        opts.workers = workers;
        let sock = StatePaths::new(&opts.name).dir().join("api.sock").display().to_string();
        opts.extra_lbd_config = format!("api_socket = \"{sock}\"\n{extra}");
        let tb = Testbed::up_from_keepalived(&demo_conf(), &opts).unwrap_or_else(|e| panic!("testbed up: {e}"));
        Ctl { tb, sock, bin: lbctl_bin().display().to_string() }
    }

    /// Runs lbctl in the director's namespace.
    fn run(&self, args: &[&str]) -> Output {
        let mut v = vec![self.bin.as_str(), "--socket", self.sock.as_str()];
        v.extend_from_slice(args);
        self.tb.exec("director", v).expect("lbctl runs")
    }

    /// Runs lbctl and expects exit 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "lbctl {args:?} failed ({}): {}{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A shell line in the director's namespace, with `$L` for lbctl with its socket.
    fn sh(&self, script: &str) -> Output {
        let s = format!("L='{} --socket {}'; {script}", self.bin, self.sock);
        self.tb.exec("director", ["sh", "-c", &s]).expect("sh runs")
    }

    fn curl(&self, url: &str) -> Output {
        self.tb.exec("client", ["curl", "-sS", "-m", "3", url]).expect("curl runs")
    }
}

#[test]
fn list_add_curl_delete_and_invalid_requests() {
    // Two workers: the mailbox asks both, and both take the new local address into their pools.
    let c = Ctl::up("ctl", 2, "metrics_listen = \"127.0.0.1:9100\"\n");
    let list = c.ok(&["-Ln"]);
    let lines: Vec<&str> = list.lines().map(str::trim_end).collect();
    assert_eq!(lines[..4], ["IP Virtual Server version 1.2.1 (size=4096)", "Prot LocalAddress:Port Scheduler Flags", "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn", "TCP  10.70.1.100:80 rr"], "{list}");
    assert!(lines.contains(&"  -> 10.70.2.11:80                FullNat 1      0          0"), "{list}");
    assert!(lines.contains(&"UDP  10.70.1.100:53 rr"), "{list}");

    // A new local-address group, service and real server, then HTTP through the new VIP (the
    // director now answers ARP for the VIP and the new local address).
    c.ok(&["laddr", "add", "lg_new", "10.70.2.110"]);
    c.ok(&["-A", "-t", "10.70.1.150:80", "-s", "rr", "--laddr-group", "lg_new"]);
    c.ok(&["-a", "-t", "10.70.1.150:80", "-r", "10.70.2.12:80", "-b", "-w", "1"]);
    assert!(c.ok(&["-Ln"]).contains("TCP  10.70.1.150:80 rr\n  -> 10.70.2.12:80                FullNat 1"));
    for _ in 0..3 {
        let out = c.curl("http://10.70.1.150/");
        assert!(out.status.success(), "curl through the new VIP: {}\nlbd log: {}", String::from_utf8_lossy(&out.stderr), c.tb.lbd_log().unwrap_or_default());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "rs-10.70.2.12\n");
    }
    let sessions = c.ok(&["session", "list", "-t", "10.70.1.150:80"]);
    assert_eq!(sessions.lines().count(), 4, "three sessions and a header:\n{sessions}");
    let json: serde_json::Value = serde_json::from_str(&c.ok(&["-o", "json", "-Ln"])).expect("json");
    assert_eq!(json["services"][2]["real_servers"][0]["stats"]["inactive_conns"].as_u64().unwrap_or(0) + json["services"][2]["real_servers"][0]["stats"]["active_conns"].as_u64().unwrap_or(0), 3, "{json}");

    // Metrics name the new service.
    let m = c.tb.exec_ok("director", ["curl", "-sS", "-m", "3", "http://127.0.0.1:9100/metrics"]).expect("metrics");
    assert!(m.contains("lbd_real_server_weight{proto=\"TCP\",vip=\"10.70.1.150\",vport=\"80\",rip=\"10.70.2.12\",rport=\"80\"} 1"), "{m}");
    assert!(m.contains("lbd_worker_dropped_packets_total{worker=\"1\",reason=\"no_session\"}"), "{m}");
    assert!(m.contains("lbd_service_connections_total{proto=\"TCP\",vip=\"10.70.1.150\",vport=\"80\"} 3"), "{m}");
    let bytes_line = m.lines().find(|l| l.starts_with("lbd_real_server_outgoing_bytes_total{proto=\"TCP\",vip=\"10.70.1.150\"")).unwrap_or_default();
    let bytes: u64 = bytes_line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!(bytes > 3 * 200, "responses counted in bytes: {bytes_line}");
    // ipvsadm --stats columns: Conns InPkts OutPkts InBytes OutBytes, cumulative.
    let stats = c.ok(&["-Ln", "--stats"]);
    let row = stats.lines().find(|l| l.starts_with("TCP  10.70.1.150:80")).unwrap_or_else(|| panic!("{stats}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[2], "3", "three connections: {row}");
    assert!(cols[3..].iter().all(|c| *c != "0"), "packets and bytes both ways: {row}");
    let sessions = c.ok(&["session", "list", "-t", "10.70.1.150:80"]);
    assert!(sessions.lines().skip(1).all(|l| l.contains(" 10.70.2.110:")), "sessions use the new local address:\n{sessions}");

    // Deleted: gone from the list, and the VIP no longer serves.
    c.ok(&["-D", "-t", "10.70.1.150:80"]);
    assert!(!c.ok(&["-Ln"]).contains("10.70.1.150"));
    assert!(!c.curl("http://10.70.1.150/").status.success(), "the deleted VIP still answers");
    assert!(c.curl(&format!("http://{VIP}/")).status.success(), "the other service still answers");

    // Invalid requests: exit 2 and the field named; missing objects: exit 3.
    let out = c.run(&["-A", "-t", "10.70.1.151:0", "-s", "rr", "--laddr-group", "laddr_g1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("service.port: 0 is not a valid port"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = c.run(&["-a", "-t", "10.70.1.100:80", "-r", "10.70.2.13:80", "-w", "70000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("real_server.weight: 70000 is out of range"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(c.run(&["-D", "-t", "10.70.1.152:80"]).status.code(), Some(3));
    assert_eq!(c.run(&["-A", "-t"]).status.code(), Some(2), "usage error");

    // -S | -R reproduces the configuration exactly.
    let before = c.ok(&["-S", "-n"]);
    let out = c.sh("$L -S > /tmp/$$.rules && $L -C && $L -S -n > /tmp/$$.empty && $L -R < /tmp/$$.rules && cat /tmp/$$.empty; rm -f /tmp/$$.rules /tmp/$$.empty");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("laddr add laddr_g1"), "-C kept the groups and removed the services: {}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(c.ok(&["-S", "-n"]), before);
    assert!(c.curl(&format!("http://{VIP}/")).status.success(), "restored service answers");
}

#[test]
fn reload_by_sighup_and_lbctl() {
    let c = Ctl::up("ctr", 1, "");
    let conf = StatePaths::new(c.tb.name()).keepalived_conf();
    let orig = std::fs::read_to_string(&conf).expect("keepalived.conf");
    std::fs::write(&conf, orig.replacen("lb_algo rr", "lb_algo wrr", 1)).unwrap();
    let pid = c.tb.lbd_pid().expect("lbd pid");
    assert!(std::process::Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap().success());
    lb_testbed::wait_until("SIGHUP reload", Duration::from_secs(5), Duration::from_millis(100), || Ok(c.ok(&["-Ln"]).contains("TCP  10.70.1.100:80 wrr"))).unwrap();
    assert!(c.tb.lbd_log().unwrap_or_default().contains("reload (SIGHUP): 0 added, 0 removed, 1 changed, 1 unchanged"));
    // An invalid file keeps the running configuration; the error names file:line.
    std::fs::write(&conf, "virtual_server 10.70.1.100 80 {\n    lb_algo bogus\n}\n").unwrap();
    let out = c.run(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keepalived.conf:2:") && err.contains("running configuration is unchanged"), "{err}");
    assert!(c.ok(&["-Ln"]).contains("TCP  10.70.1.100:80 wrr"));
    std::fs::write(&conf, &orig).unwrap();
    assert!(c.ok(&["reload"]).starts_with("reloaded: 0 added, 0 removed, 1 changed, 1 unchanged"));
    assert!(c.curl(&format!("http://{VIP}/")).status.success());
}

#[test]
fn adding_and_deleting_a_service_under_wrk_gives_no_errors() {
    let mut c = Ctl::up("ctw", 2, "");
    // New connections all along (no keep-alive), so sessions are created across every snapshot change.
    let wrk = c.tb.spawn("client", ["wrk", "-t", "2", "-c", "16", "-d", "8s", "-H", "Connection: close", &format!("http://{VIP}/")]).expect("wrk starts");
    std::thread::sleep(Duration::from_secs(1));
    for i in 0..5 {
        let vip = format!("10.70.1.{}:80", 160 + i);
        c.ok(&["-A", "-t", &vip, "-s", "wrr", "--laddr-group", "laddr_g1"]);
        c.ok(&["-a", "-t", &vip, "-r", "10.70.2.11:80", "-b"]);
        c.ok(&["-e", "-t", "10.70.1.100:80", "-r", "10.70.2.12:80", "-w", if i % 2 == 0 { "2" } else { "1" }]);
        std::thread::sleep(Duration::from_millis(400));
        c.ok(&["-D", "-t", &vip]);
        std::thread::sleep(Duration::from_millis(400));
    }
    let out = wrk.wait_with_output().expect("wrk ends");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("Socket errors"), "wrk saw socket errors:\n{text}");
    assert!(!text.contains("Non-2xx"), "wrk saw non-2xx responses:\n{text}");
    let requests: u64 = text.lines().find_map(|l| l.trim().split_once(" requests in ").map(|(n, _)| n.trim().parse().unwrap_or(0))).unwrap_or(0);
    assert!(requests > 500, "only {requests} requests:\n{text}");
    let stats: serde_json::Value = serde_json::from_str(&c.ok(&["stats", "-o", "json"])).expect("stats json");
    for w in 0..2 {
        assert_eq!(stats["workers"][w]["drops"]["no_session"], 0, "{stats}");
    }
    eprintln!("wrk during 5 service adds/deletes: {requests} requests, no errors");
}

/// The operator's path: `lb-testbed up --config`, then `lb-testbed exec director -- lbctl -Ln`
/// (exec puts the project's binaries on PATH and points lbctl at that topology's lbd).
#[test]
fn lbctl_through_lb_testbed_exec_reaches_that_topologys_lbd() {
    let tb = env!("CARGO_BIN_EXE_lb-testbed");
    let name = unique_name("cx");
    let run = |args: &[&str]| std::process::Command::new(tb).args(args).output().expect("lb-testbed runs");
    let up = run(&["up", "--name", &name, "--config", &demo_conf().display().to_string()]);
    let result = std::panic::catch_unwind(|| {
        assert!(up.status.success(), "up: {}", String::from_utf8_lossy(&up.stderr));
        let out = run(&["exec", "--name", &name, "director", "--", "lbctl", "-Ln"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "lbctl: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("TCP  10.70.1.100:80 rr") && text.contains("FullNat"), "{text}");
    });
    let down = run(&["down", "--name", &name]);
    assert!(down.status.success(), "down: {}", String::from_utf8_lossy(&down.stderr));
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// Drops of `reason` summed over the workers (`lbctl stats -o json`).
fn drops(c: &Ctl, reason: &str) -> u64 {
    let stats: serde_json::Value = serde_json::from_str(&c.ok(&["stats", "-o", "json"])).expect("stats json");
    stats["workers"].as_array().expect("workers").iter().map(|w| w["drops"][reason].as_u64().unwrap_or(0)).sum()
}

/// A DPVS operator's session: the FNAT service and its real server first, with no local
/// address (connections are refused and counted), then `--add-laddr`, traffic from the new
/// local address, `--get-laddr`, `--del-laddr` (refused again), `-D`.
#[test]
fn dpvs_style_session_adds_local_addresses_after_the_service() {
    let c = Ctl::up("dpvs", 1, "");
    let svc = "10.70.1.160:80";
    c.ok(&["-A", "-t", svc, "-s", "rr"]);
    c.ok(&["-a", "-t", svc, "-r", "10.70.2.11:80", "-b"]);
    assert!(c.ok(&["-Ln"]).contains("TCP  10.70.1.160:80 rr\n  -> 10.70.2.11:80                FullNat 1"));
    let before = drops(&c, "no_local_address");
    assert!(!c.curl("http://10.70.1.160/").status.success(), "a service without local addresses answered");
    assert!(drops(&c, "no_local_address") > before, "the refusal is counted as no_local_address");

    c.ok(&["-P", "-t", svc, "-z", "10.70.2.120", "-F", "lan"]);
    let get = c.ok(&["-G", "-t", svc]);
    let lines: Vec<&str> = get.lines().map(str::trim_end).collect();
    assert_eq!(lines, ["VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS", "10.70.1.160:80       1", "                              10.70.2.120          -          -"], "{get}");
    for _ in 0..3 {
        let out = c.curl("http://10.70.1.160/");
        assert!(out.status.success(), "curl after --add-laddr: {}\nlbd log: {}", String::from_utf8_lossy(&out.stderr), c.tb.lbd_log().unwrap_or_default());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "rs-10.70.2.11\n");
    }
    let sessions = c.ok(&["session", "list", "-t", svc]);
    assert!(sessions.lines().count() == 4 && sessions.lines().skip(1).all(|l| l.contains(" 10.70.2.120:")), "sessions from the added local address:\n{sessions}");
    assert!(c.ok(&["laddr", "list"]).contains("tcp-10.70.1.160-80"), "the service's own group is listed");

    c.ok(&["-Q", "-t", svc, "-z", "10.70.2.120"]);
    assert!(c.ok(&["-G"]).contains("10.70.1.160:80       0"), "no local address left");
    let before = drops(&c, "no_local_address");
    assert!(!c.curl("http://10.70.1.160/").status.success(), "answered after --del-laddr of the last address");
    assert!(drops(&c, "no_local_address") > before);
    let out = c.run(&["-Q", "-t", svc, "-z", "10.70.2.120"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("10.70.2.120"), "deleting it twice: {}", String::from_utf8_lossy(&out.stderr));
    c.ok(&["-D", "-t", svc]);
    assert!(!c.ok(&["-Ln"]).contains("10.70.1.160"));
    assert!(c.curl(&format!("http://{VIP}/")).status.success(), "the file's service still answers");
}
