//! VRRP with real keepalived (Debian's 2.2.7) as the other director, both ways: ours master and
//! keepalived backup, then ours killed → keepalived takes over within 3 × advert_int + skew +
//! 1 s, then ours back → it preempts and serves the VIP again; and keepalived master with ours
//! backup, keepalived killed → ours takes over and serves. Neither side logs authentication,
//! version or interval errors; the adverts on the wire dissect as VRRP in tshark; only the
//! master answers ARP for the VIP. Needs root, DPDK, iproute2, curl, keepalived, tshark, arping.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lb_testbed::{unique_name, PeerConfig, PeerKind, StatePaths, Testbed, UpOptions};
use serde_json::Value;

const VIP: &str = "10.70.1.100";
/// director-1's client-facing MAC in a pair.
const D1_MAC: &str = "02:4c:42:00:01:01";

fn conf() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/vrrp-pair.conf")
}

fn lbctl_bin() -> String {
    if let Some(p) = std::env::var_os("LBCTL_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p).display().to_string();
    }
    let exe = std::env::current_exe().expect("test executable path");
    let p = exe.parent().and_then(|d| d.parent()).expect("target dir").join("lbctl");
    assert!(p.exists(), "{} not found: build it (cargo build -p lbctl) or set LBCTL_BIN", p.display());
    p.display().to_string()
}

fn up(prefix: &str, peer_priority: u8) -> (Testbed, String) {
    let opts = UpOptions::new(unique_name(prefix)).with_pair(PeerKind::Keepalived, PeerConfig::Priority(peer_priority));
    let sock = StatePaths::new(&opts.name).dir().join("lbd.sock").display().to_string();
    let tb = Testbed::up_from_keepalived(&conf(), &opts).unwrap_or_else(|e| panic!("testbed up: {e}"));
    (tb, sock)
}

/// VI_1's state as director-1's lbd lists it (lb-slowpath reports it), or "" when not yet.
fn our_state(tb: &Testbed, sock: &str) -> String {
    let out = tb.exec("director", [lbctl_bin().as_str(), "--socket", sock, "-o", "json", "vrrp"]).expect("lbctl runs");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["instances"].as_array().into_iter().flatten().find(|i| i["name"] == "VI_1").and_then(|i| i["state"].as_str()).unwrap_or("").to_owned()
}

fn wait<F: FnMut() -> bool>(what: &str, limit: Duration, tb: &Testbed, mut f: F) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < limit,
            "{what}: not within {limit:?}\nslowpath log:\n{}\nkeepalived log:\n{}",
            tb.slowpath_log().unwrap_or_default(),
            tb.keepalived_log().unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    t.elapsed()
}

fn keepalived_entered(tb: &Testbed, state: &str) -> usize {
    tb.keepalived_log().unwrap_or_default().matches(&format!("Entering {state} STATE")).count()
}

fn curl_ok(tb: &Testbed) -> bool {
    tb.exec("client", ["curl", "-sS", "-m", "2", &format!("http://{VIP}/")]).is_ok_and(|o| o.status.success())
}

fn no_protocol_errors(tb: &Testbed) {
    let log = tb.keepalived_log().unwrap_or_default().to_lowercase();
    for bad in ["auth", "mismatch", "invalid", "version", "wrong"] {
        assert!(!log.contains(bad), "keepalived logged {bad:?}:\n{log}");
    }
    let ours = tb.slowpath_log().unwrap_or_default().to_lowercase();
    assert!(!ours.contains("error"), "lb-slowpath logged an error:\n{ours}");
}

#[test]
fn ours_master_keepalived_takes_over_and_ours_preempts_back() {
    let (tb, sock) = up("vra", 100);
    wait("ours MASTER", Duration::from_secs(8), &tb, || our_state(&tb, &sock) == "MASTER");
    wait("keepalived BACKUP", Duration::from_secs(5), &tb, || keepalived_entered(&tb, "BACKUP") >= 1);
    assert_eq!(keepalived_entered(&tb, "MASTER"), 0, "keepalived never mastered while ours did");
    assert!(curl_ok(&tb), "the VIP is served by director-1");
    // Only the master answers ARP for the VIP.
    let arp = tb.exec("client", ["arping", "-c", "3", "-w", "4", "-I", "c0", VIP]).expect("arping");
    let text = String::from_utf8_lossy(&arp.stdout).to_lowercase();
    assert!(text.contains(D1_MAC), "director-1 answers: {text}");
    assert!(text.lines().filter(|l| l.contains("reply from")).all(|l| l.contains(D1_MAC)), "nobody else answers: {text}");
    // The adverts on the segment dissect as VRRP: ours, priority 150, VRID 51.
    let cap = tb
        .exec_timeout("client", ["tshark", "-i", "c0", "-a", "duration:3", "-Y", "vrrp", "-T", "fields", "-e", "ip.src", "-e", "vrrp.virt_rtr_id", "-e", "vrrp.prio", "-e", "ip.ttl"], Duration::from_secs(20))
        .expect("tshark");
    let adverts = String::from_utf8_lossy(&cap.stdout);
    assert!(adverts.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["10.70.1.2", "51", "150", "255"]), "VRRP adverts from tap-wan:\n{adverts}");

    // Ours dies: keepalived (priority 100) takes over within 3 x 1 s + skew + 1 s.
    let t = Instant::now();
    tb.stop_director(1, false).expect("kill director-1");
    wait("keepalived MASTER", Duration::from_secs(5), &tb, || keepalived_entered(&tb, "MASTER") >= 1);
    eprintln!("keepalived took over {:?} after director-1 was killed", t.elapsed());
    // Ours comes back with the higher priority and preempts; it serves the VIP again.
    let t = Instant::now();
    tb.start_director(1).expect("restart director-1");
    wait("ours MASTER again", Duration::from_secs(10), &tb, || our_state(&tb, &sock) == "MASTER");
    wait("keepalived BACKUP again", Duration::from_secs(5), &tb, || keepalived_entered(&tb, "BACKUP") >= 2);
    wait("the VIP served again", Duration::from_secs(5), &tb, || curl_ok(&tb));
    eprintln!("director-1 mastered and served again {:?} after its restart", t.elapsed());
    no_protocol_errors(&tb);
    tb.down().expect("teardown");
}

#[test]
fn keepalived_master_ours_takes_over_when_it_stops() {
    let (tb, sock) = up("vrb", 200);
    wait("keepalived MASTER", Duration::from_secs(8), &tb, || keepalived_entered(&tb, "MASTER") >= 1);
    wait("ours BACKUP", Duration::from_secs(8), &tb, || our_state(&tb, &sock) == "BACKUP");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(our_state(&tb, &sock), "BACKUP", "ours stays backup under a higher-priority master");
    assert!(!curl_ok(&tb), "a backup does not serve the VIP (keepalived's node has no web server)");
    let t = Instant::now();
    tb.stop_director(2, false).expect("kill keepalived");
    wait("ours MASTER", Duration::from_secs(5), &tb, || our_state(&tb, &sock) == "MASTER");
    wait("the VIP served by ours", Duration::from_secs(5), &tb, || curl_ok(&tb));
    eprintln!("ours took over and served {:?} after keepalived was killed", t.elapsed());
    no_protocol_errors(&tb);
    tb.down().expect("teardown");
}

/// VI_1's and VI_2's states on director `n` (lb-slowpath reports them to that director's lbd).
fn states(tb: &Testbed, n: u8) -> (String, String) {
    let sock = tb.director_paths(n).api_socket().display().to_string();
    let node = if n == 1 { "director-1" } else { "director-2" };
    let out = tb.exec(node, [lbctl_bin().as_str(), "--socket", sock.as_str(), "-o", "json", "vrrp"]).expect("lbctl runs");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let get = |name: &str| v["instances"].as_array().into_iter().flatten().find(|i| i["name"] == name).and_then(|i| i["state"].as_str()).unwrap_or("").to_owned();
    (get("VI_1"), get("VI_2"))
}

/// One short request (a poll: a failed attempt must not hide the moment the VIP is back).
fn curl_vip(tb: &Testbed, vip: &str) -> bool {
    tb.exec("client", ["curl", "-sS", "--connect-timeout", "0.3", "-m", "0.6", &format!("http://{vip}/")]).is_ok_and(|o| o.status.success())
}

/// The seed deployment: two of our directors, each master of one VIP; director-1 dies and its
/// VIP (and the local addresses that go with it) is served from director-2 within
/// 3 × advert_int + skew + 1 s; it comes back and preempts.
#[test]
fn dual_vip_pair_fails_over_and_back() {
    let opts = UpOptions::new(unique_name("vrd")).with_pair(PeerKind::Lbd, PeerConfig::Priority(120));
    let conf = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/vrrp-dual.conf");
    let tb = Testbed::up_from_keepalived(&conf, &opts).unwrap_or_else(|e| panic!("testbed up: {e}"));
    let m = |s: &str| s.to_owned();
    wait("director-1 VI_1 MASTER, VI_2 BACKUP", Duration::from_secs(8), &tb, || states(&tb, 1) == (m("MASTER"), m("BACKUP")));
    wait("director-2 VI_1 BACKUP, VI_2 MASTER", Duration::from_secs(8), &tb, || states(&tb, 2) == (m("BACKUP"), m("MASTER")));
    wait("both VIPs served", Duration::from_secs(5), &tb, || curl_vip(&tb, "10.70.1.100") && curl_vip(&tb, "10.70.1.101"));

    // Director-1 dies: VI_1 moves; its VIP is served again within 3 x 1 + (256-120)/256 + 1 s.
    let t = Instant::now();
    tb.stop_director(1, false).expect("kill director-1");
    let bound = Duration::from_millis(3000 + 532 + 1000);
    wait("VIP 1 served from director-2", bound, &tb, || curl_vip(&tb, "10.70.1.100"));
    eprintln!("VIP 1 served again {:?} after director-1 was killed (bound {bound:?})", t.elapsed());
    assert_eq!(states(&tb, 2), (m("MASTER"), m("MASTER")));
    assert!(curl_vip(&tb, "10.70.1.101"), "VIP 2 unaffected");

    // Director-1 rejoins with the higher priority for VI_1 and takes it back (preempt).
    tb.start_director(1).expect("restart director-1");
    wait("director-1 VI_1 MASTER again", Duration::from_secs(10), &tb, || states(&tb, 1) == (m("MASTER"), m("BACKUP")));
    wait("director-2 back to BACKUP for VI_1", Duration::from_secs(5), &tb, || states(&tb, 2) == (m("BACKUP"), m("MASTER")));
    wait("both VIPs served again", Duration::from_secs(5), &tb, || curl_vip(&tb, "10.70.1.100") && curl_vip(&tb, "10.70.1.101"));
    tb.down().expect("teardown");
}

/// The same pair with VI_1 under `nopreempt`: director-1 (priority 150) masters it first, dies,
/// director-2 takes it, and director-1 comes back as BACKUP and leaves it there.
#[test]
fn nopreempt_pair_does_not_take_the_vip_back() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs");
    let opts = UpOptions::new(unique_name("vrn")).with_pair(PeerKind::Lbd, PeerConfig::File(dir.join("vrrp-nopreempt-peer.conf")));
    let tb = Testbed::up_from_keepalived(&dir.join("vrrp-nopreempt.conf"), &opts).unwrap_or_else(|e| panic!("testbed up: {e}"));
    let m = |s: &str| s.to_owned();
    wait("director-1 masters VI_1 (higher priority, shorter timer)", Duration::from_secs(8), &tb, || states(&tb, 1).0 == "MASTER");
    wait("director-2 masters VI_2", Duration::from_secs(8), &tb, || states(&tb, 2) == (m("BACKUP"), m("MASTER")));
    tb.stop_director(1, false).expect("kill director-1");
    wait("VIP 1 served from director-2", Duration::from_millis(3000 + 532 + 1000), &tb, || curl_vip(&tb, "10.70.1.100"));
    tb.start_director(1).expect("restart director-1");
    wait("director-1 reports its state", Duration::from_secs(8), &tb, || !states(&tb, 1).0.is_empty());
    // Well past a master-down interval: with nopreempt it stays BACKUP.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(states(&tb, 1), (m("BACKUP"), m("BACKUP")), "nopreempt: director-1 does not take VI_1 back");
    assert_eq!(states(&tb, 2), (m("MASTER"), m("MASTER")));
    assert!(curl_vip(&tb, "10.70.1.100") && curl_vip(&tb, "10.70.1.101"), "both VIPs served by director-2");
    tb.down().expect("teardown");
}
