//! The audit layer: which calls it logs, what it says about them, and (through the real
//! server on a Unix socket) exactly one line per change, with the caller's pid.

use std::path::Path;
use std::sync::Arc;

use lb_api::pb;
use prost::Message;

use super::*;
use crate::api::start;
use crate::config::Config;
use crate::control::tests::{control_with, CONF};

fn framed(m: &impl Message) -> Vec<u8> {
    let body = m.encode_to_vec();
    let mut v = vec![0];
    v.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    v.extend_from_slice(&body);
    v
}

fn key(port: u32) -> Option<pb::ServiceKey> {
    Some(pb::ServiceKey { vip: "10.0.1.100".into(), port, protocol: pb::Protocol::Tcp as i32 })
}

#[test]
fn only_changing_methods_of_the_load_balancer_are_audited() {
    assert_eq!(changing_method("/lb.v1.LoadBalancer/AddService"), Some("AddService"));
    assert_eq!(changing_method("/lb.v1.LoadBalancer/Reload"), Some("Reload"));
    assert_eq!(changing_method("/lb.v1.LoadBalancer/ListServices"), None);
    assert_eq!(changing_method("/lb.v1.LoadBalancer/Save"), None);
    assert_eq!(changing_method("/grpc.health.v1.Health/Check"), None);
    assert_eq!(changing_method("/other.Service/AddService"), None);
    assert_eq!(changing_method("AddService"), None);
}

#[test]
fn what_names_the_key_fields() {
    let svc = pb::Service { key: key(80), scheduler: pb::Scheduler::Wrr as i32, forward: pb::ForwardMode::Fnat as i32, ..Default::default() };
    assert_eq!(what("AddService", &framed(&pb::AddServiceRequest { service: Some(svc.clone()) })), " TCP 10.0.1.100:80 wrr FNAT");
    let edit = pb::EditServiceRequest { service: Some(svc), fields: vec!["flow".into(), "allow".into()] };
    assert_eq!(what("EditService", &framed(&edit)), " TCP 10.0.1.100:80 (flow, allow)");
    let rs = pb::AddRealServerRequest { service: key(80), real_server: Some(pb::RealServer { addr: "10.0.2.1".into(), port: 8080, weight: 3, ..Default::default() }), forward: 0 };
    assert_eq!(what("EditRealServer", &framed(&rs)), " TCP 10.0.1.100:80 rs 10.0.2.1:8080 weight 3");
    let del = pb::DeleteLocalAddressesRequest { group: "lg".into(), addrs: (1..=10).map(|i| format!("10.0.3.{i}")).collect(), service: None };
    assert_eq!(what("DeleteLocalAddresses", &framed(&del)), " group lg: 10.0.3.1, 10.0.3.2, 10.0.3.3, 10.0.3.4, 10.0.3.5, 10.0.3.6, 10.0.3.7, 10.0.3.8 and 2 more");
    let t = pb::SetTimeoutsRequest { timeouts: Some(pb::Timeouts { tcp: 900, tcpfin: 120, udp: 300 }) };
    assert_eq!(what("SetTimeouts", &framed(&t)), " tcp 900 tcpfin 120 udp 300");
    let d = pb::StartDaemonRequest { daemon: Some(pb::SyncDaemon { role: pb::SyncRole::Backup as i32, mcast_interface: "wan".into(), syncid: Some(7), ..Default::default() }) };
    assert_eq!(what("StartDaemon", &framed(&d)), " backup on wan syncid 7");
    assert_eq!(what("ZeroCounters", &framed(&pb::ZeroCountersRequest {})), "");
    assert_eq!(what("DeleteService", b"\x00\x00\x00\x00\x09garbage"), " (request not readable)");
    assert_eq!(what("DeleteService", b"\x01\x00\x00\x00\x00"), " (request not readable)", "compressed");
}

/// A change through the API server logs exactly one audit line naming the caller (this
/// process, over the Unix socket) and the object; a read logs none; a refused change one
/// line with its status; a status push that changes nothing none at info.
#[test]
fn one_audit_line_per_change_with_who_and_what() {
    let dir = std::env::temp_dir().join(format!("lbd-api-audit-{}", std::process::id()));
    let sock = dir.join("lbd.sock");
    let text = format!("api_socket = \"{}\"\n[[port]]\nname = 'a'\nvdev = 'net_ring0'\n", sock.display());
    let cfg = Config::parse(&text, Path::new("t.toml")).unwrap();
    let (d, cap) = lb_logging::capture("lbd", "info");
    // The API thread inherits the starting thread's subscriber.
    let handle = tracing::dispatcher::with_default(&d, || start(&cfg, Arc::new(control_with(CONF, None))).unwrap());
    let audit = || cap.lines_with("lbd: api: ");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut c = lb_api::connect(&lb_api::Target::Unix(sock.clone())).await.unwrap();
        c.list_services(pb::ListServicesRequest { stats: false }).await.unwrap();
        assert_eq!(audit(), Vec::<String>::new(), "reads are not audited");

        let good = pb::Service { key: key(8081), scheduler: pb::Scheduler::Rr as i32, laddr_group: "lg".into(), ..Default::default() };
        c.add_service(pb::AddServiceRequest { service: Some(good.clone()) }).await.unwrap();
        let lines = audit();
        assert_eq!(lines.len(), 1, "one line for one change: {}", cap.text());
        let me = format!("by pid {} ", std::process::id());
        assert!(lines[0].starts_with("lbd: api: AddService TCP 10.0.1.100:8081 rr by pid ") && lines[0].contains(&me) && lines[0].ends_with(": ok"), "{lines:?}");
        assert!(lines[0].contains(&format!("uid {} ", my_uid())), "{lines:?}");

        let e = c.add_service(pb::AddServiceRequest { service: Some(good) }).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::AlreadyExists);
        let lines = audit();
        assert_eq!(lines.len(), 2, "{}", cap.text());
        assert!(lines[1].starts_with("lbd: api: AddService TCP 10.0.1.100:8081 rr by pid ") && lines[1].contains(": refused: AlreadyExists: "), "{lines:?}");

        c.delete_service(pb::DeleteServiceRequest { key: key(8081) }).await.unwrap();
        let lines = audit();
        assert_eq!(lines.len(), 3, "{}", cap.text());
        assert!(lines[2].starts_with("lbd: api: DeleteService TCP 10.0.1.100:8081 by pid "), "{lines:?}");

        // lb-slowpath's repeated state: nothing changes, nothing at info.
        c.set_health(pb::SetHealthRequest { source: "lb-slowpath".into(), ..Default::default() }).await.unwrap();
        assert_eq!(audit().len(), 3, "{}", cap.text());
    });
    handle.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// This process's real uid, from /proc (no libc call needed).
fn my_uid() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().to_owned()
}
