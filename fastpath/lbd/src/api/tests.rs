//! The API server in-process (no DPDK, no workers): gRPC over the Unix socket, field-named
//! errors with details, the health service, and the bearer token on TCP.

use std::path::Path;
use std::sync::Arc;

use lb_api::{pb, LoadBalancerClient, Target};
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_types::StatusExt;

use super::start;
use crate::config::Config;
use crate::control::tests::{control_with, CONF};

fn key(port: u32) -> Option<pb::ServiceKey> {
    Some(pb::ServiceKey { vip: "10.0.1.100".into(), port, protocol: pb::Protocol::Tcp as i32 })
}

#[test]
fn grpc_on_the_socket_and_token_on_tcp() {
    let dir = std::env::temp_dir().join(format!("lbd-api-test-{}", std::process::id()));
    let sock = dir.join("sub").join("lbd.sock");
    let port = 20000 + std::process::id() % 20000;
    let text = format!(
        "api_socket = \"{}\"\napi_listen = \"127.0.0.1:{port}\"\napi_token = \"0123456789abcdef\"\n[[port]]\nname = 'a'\nvdev = 'net_ring0'\n",
        sock.display()
    );
    let cfg = Config::parse(&text, Path::new("t.toml")).unwrap();
    let handle = start(&cfg, Arc::new(control_with(CONF, None))).unwrap();
    assert!(sock.exists(), "socket created with its directory");
    // A second server on the same configured socket is refused while the first serves.
    let e = start(&cfg, Arc::new(control_with(CONF, None))).unwrap_err().to_string();
    assert!(e.contains("another process is serving"), "{e}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let target = Target::Unix(sock.clone());
        let mut c = lb_api::connect(&target).await.unwrap();
        let l = c.list_services(pb::ListServicesRequest { stats: true }).await.unwrap().into_inner();
        assert_eq!(l.services.len(), 2);
        assert_eq!(l.services[0].real_servers[0].stats.unwrap().active_conns, 0);

        let bad = pb::Service { key: key(0), scheduler: pb::Scheduler::Rr as i32, laddr_group: "lg".into(), ..Default::default() };
        let e = c.add_service(pb::AddServiceRequest { service: Some(bad) }).await.unwrap_err();
        assert_eq!((e.code(), e.message()), (Code::InvalidArgument, "service.port: 0 is not a valid port"));
        let details = e.get_error_details();
        assert_eq!(details.bad_request().unwrap().field_violations[0].field, "service.port");

        let good = pb::Service { key: key(8080), scheduler: pb::Scheduler::Wrr as i32, laddr_group: "lg".into(), ..Default::default() };
        c.add_service(pb::AddServiceRequest { service: Some(good.clone()) }).await.unwrap();
        let e = c.add_service(pb::AddServiceRequest { service: Some(good) }).await.unwrap_err();
        assert_eq!(e.code(), Code::AlreadyExists);
        let rs = pb::RealServer { addr: "10.0.2.12".into(), port: 80, weight: 2, ..Default::default() };
        let s = c.add_real_server(pb::AddRealServerRequest { service: key(8080), real_server: Some(rs), forward: 0 }).await.unwrap().into_inner();
        assert_eq!(s.real_servers.len(), 1);
        let e = c.delete_real_server(pb::DeleteRealServerRequest { service: key(8080), addr: "10.0.2.99".into(), port: 80 }).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let e = c.edit_service(pb::EditServiceRequest { service: Some(pb::Service { key: key(8080), ..Default::default() }), fields: vec!["nope".into()] }).await.unwrap_err();
        assert_eq!(e.message(), "fields[0]: \"nope\" is not a service field (scheduler, forward, persistence, laddr_group, flow, allow, deny, draining_timeout_s, sorry_server, syn_proxy, hash_port, real_servers)");
        // sh-port through the API: kept, listed, and carried to keepalived.conf's sh-port.
        let hp = pb::Service { key: key(8080), hash_port: true, ..Default::default() };
        let s = c.edit_service(pb::EditServiceRequest { service: Some(hp), fields: vec!["hash_port".into()] }).await.unwrap().into_inner();
        assert!(s.hash_port && s.scheduler == pb::Scheduler::Wrr as i32, "only the named field changed");
        let edit = pb::Service { key: key(8080), flow: Some(pb::FlowControl { cps: 100, interval_s: 1, max_conns: 10 }), ..Default::default() };
        let s = c.edit_service(pb::EditServiceRequest { service: Some(edit), fields: vec!["flow".into()] }).await.unwrap().into_inner();
        assert_eq!((s.scheduler, s.flow.unwrap().max_conns), (pb::Scheduler::Wrr as i32, 10));
        let saved = c.save(pb::SaveRequest {}).await.unwrap().into_inner().keepalived_conf;
        assert!(saved.contains("virtual_server 10.0.1.100 8080 {") && saved.contains("flow_control_pc 10"), "{saved}");
        let e = c.reload(pb::ReloadRequest {}).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition);

        let mut h = HealthClient::new(lb_api::connect_channel(&target).await.unwrap());
        let r = h.check(HealthCheckRequest { service: "lb.v1.LoadBalancer".into() }).await.unwrap().into_inner();
        assert_eq!(r.status, 1, "SERVING");

        // TCP: refused without the token, served with it.
        let tcp = |token: Option<&str>| Target::Tcp { addr: format!("127.0.0.1:{port}"), token: token.map(str::to_owned), ca: None };
        let mut anon: LoadBalancerClient<_> = lb_api::connect(&tcp(None)).await.unwrap();
        let e = anon.get_info(pb::GetInfoRequest {}).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
        let mut wrong = lb_api::connect(&tcp(Some("0123456789abcdeX"))).await.unwrap();
        assert_eq!(wrong.get_info(pb::GetInfoRequest {}).await.unwrap_err().code(), Code::Unauthenticated);
        let mut ok = lb_api::connect(&tcp(Some("0123456789abcdef"))).await.unwrap();
        assert_eq!(ok.get_info(pb::GetInfoRequest {}).await.unwrap().into_inner().services, 3);
    });
    handle.stop();
    assert!(!sock.exists(), "socket removed on stop");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn set_health_through_grpc() {
    let dir = std::env::temp_dir().join(format!("lbd-api-health-{}", std::process::id()));
    let sock = dir.join("lbd.sock");
    let text = format!("api_socket = \"{}\"\n[[port]]\nname = 'a'\nvdev = 'net_ring0'\n", sock.display());
    let cfg = Config::parse(&text, Path::new("t.toml")).unwrap();
    let handle = start(&cfg, Arc::new(control_with(CONF, None))).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut c = lb_api::connect(&Target::Unix(sock.clone())).await.unwrap();
        let info = c.get_info(pb::GetInfoRequest {}).await.unwrap().into_inner();
        assert_ne!(info.instance_id, 0);
        let down = pb::HealthUpdate { service: key(80), addr: "10.0.2.11".into(), port: 80, up: false, checker: "TCP_CHECK".into(), reason: "connect: connection refused".into(), ..Default::default() };
        let stray = pb::HealthUpdate { addr: "10.0.2.99".into(), ..down.clone() };
        // Invalid: nothing applied, the field named.
        let bad = pb::HealthUpdate { addr: "10.0.2.300".into(), ..down.clone() };
        let e = c.set_health(pb::SetHealthRequest { servers: vec![down.clone(), bad], quorum: vec![], source: "lb-slowpath".into() }).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert_eq!(e.get_error_details().bad_request().unwrap().field_violations[0].field, "servers[1].addr");
        let before = c.get_info(pb::GetInfoRequest {}).await.unwrap().into_inner().generation;
        let r = c.set_health(pb::SetHealthRequest { servers: vec![down.clone(), stray], quorum: vec![], source: "lb-slowpath".into() }).await.unwrap().into_inner();
        assert_eq!((r.generation, r.changed, r.unknown), (before + 1, 1, vec!["TCP 10.0.1.100:80 rs 10.0.2.99:80".to_string()]));
        let s = c.get_service(pb::GetServiceRequest { key: key(80), stats: false }).await.unwrap().into_inner();
        let rs = &s.real_servers[0];
        assert_eq!((rs.health, rs.last_error.as_str(), rs.checker.as_str(), rs.effective_weight, rs.weight), (pb::HealthState::Down as i32, "connect: connection refused", "TCP_CHECK", 0, 1));
        assert!(rs.health_since_unix_ms > 0 && s.quorum_up);
        let l = c.list_services(pb::ListServicesRequest { stats: false }).await.unwrap().into_inner();
        let udp = l.services.iter().find(|s| s.key.as_ref().unwrap().port == 53).unwrap();
        assert_eq!(udp.real_servers[0].health, pb::HealthState::Unchecked as i32);
        // The same batch again: no new generation.
        let r = c.set_health(pb::SetHealthRequest { servers: vec![down], quorum: vec![], source: "lb-slowpath".into() }).await.unwrap().into_inner();
        assert_eq!((r.generation, r.changed), (before + 1, 0));
    });
    handle.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn set_ownership_and_list_vrrp_through_grpc() {
    let dir = std::env::temp_dir().join(format!("lbd-api-vrrp-{}", std::process::id()));
    let sock = dir.join("lbd.sock");
    let text = format!("api_socket = \"{}\"\n[[port]]\nname = 'a'\nvdev = 'net_ring0'\n", sock.display());
    let cfg = Config::parse(&text, Path::new("t.toml")).unwrap();
    let control = Arc::new(control_with(CONF, None));
    let handle = start(&cfg, Arc::clone(&control)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut c = lb_api::connect(&Target::Unix(sock.clone())).await.unwrap();
        let vi = pb::VrrpInstanceStatus { name: "VI_1".into(), state: "BACKUP".into(), priority: 100, effective_priority: 100, vrid: 51, interface: "wan".into(), ..Default::default() };
        let addr = |a: &str, owned| pb::AddressOwnership { addr: a.into(), owned, instance: "VI_1".into(), ..Default::default() };
        let req = |addresses| pb::SetOwnershipRequest { addresses, instances: vec![vi.clone()], source: "lb-slowpath".into(), replace_instances: true };
        // Invalid: nothing applied, the field named.
        let e = c.set_ownership(req(vec![addr("10.0.1.100", false), addr("10.0.1.x", false)])).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert_eq!(e.get_error_details().bad_request().unwrap().field_violations[0].field, "addresses[1].addr");
        let l = c.list_vrrp(pb::ListVrrpRequest {}).await.unwrap().into_inner();
        assert!(l.instances.is_empty() && l.addresses.iter().all(|a| a.owned));
        let before = c.get_info(pb::GetInfoRequest {}).await.unwrap().into_inner().generation;
        let r = c.set_ownership(req(vec![addr("10.0.1.100", false), addr("10.0.9.9", false)])).await.unwrap().into_inner();
        assert_eq!((r.generation, r.changed, r.unknown), (before + 1, 2, vec!["10.0.9.9".to_string()]));
        assert_eq!(control.table().addr("10.0.1.100".parse().unwrap()).map(|a| a.owned), Some(false));
        let l = c.list_vrrp(pb::ListVrrpRequest {}).await.unwrap().into_inner();
        assert_eq!(l.instances, vec![vi.clone()]);
        let shown: Vec<_> = l.addresses.iter().map(|a| (a.addr.as_str(), a.owned, a.kind.as_str())).collect();
        assert_eq!(shown, vec![("10.0.1.100", false, "vip"), ("10.0.2.100", true, "laddr"), ("10.0.9.9", false, "")]);
        // The same batch again: no new generation.
        let r = c.set_ownership(req(vec![addr("10.0.1.100", false)])).await.unwrap().into_inner();
        assert_eq!((r.generation, r.changed), (before + 1, 0));
    });
    handle.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// SYN proxy through gRPC: set, shown, saved; refused with InvalidArgument for UDP and DR,
/// whether the API's own check or the fast path's table refuses it.
#[test]
fn syn_proxy_through_grpc() {
    let dir = std::env::temp_dir().join(format!("lbd-api-synproxy-{}", std::process::id()));
    let sock = dir.join("lbd.sock");
    let text = format!("api_socket = \"{}\"\n[[port]]\nname = 'a'\nvdev = 'net_ring0'\n", sock.display());
    let cfg = Config::parse(&text, Path::new("t.toml")).unwrap();
    let control = Arc::new(control_with(CONF, None));
    let handle = start(&cfg, Arc::clone(&control)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut c = lb_api::connect(&Target::Unix(sock.clone())).await.unwrap();
        let on = pb::Service { key: key(8081), scheduler: pb::Scheduler::Rr as i32, laddr_group: "lg".into(), syn_proxy: true, ..Default::default() };
        assert!(c.add_service(pb::AddServiceRequest { service: Some(on.clone()) }).await.unwrap().into_inner().syn_proxy);
        assert!(c.get_service(pb::GetServiceRequest { key: key(8081), stats: false }).await.unwrap().into_inner().syn_proxy);
        let k = fastpath::service::ServiceKey { vip: "10.0.1.100".parse().unwrap(), port: 8081, proto: fastpath::L4Proto::Tcp };
        assert_eq!(control.table().lookup(&k).unwrap().1.syn_proxy, Some(fastpath::synproxy::SynProxyConf::default()));
        let saved = c.save(pb::SaveRequest {}).await.unwrap().into_inner().keepalived_conf;
        assert!(saved.contains("    laddr_group_name lg\n    syn_proxy\n"), "{saved}");
        // Editing forward alone to DR: the API's check names the field.
        let dr = pb::Service { forward: pb::ForwardMode::Dr as i32, ..on.clone() };
        let e = c.edit_service(pb::EditServiceRequest { service: Some(dr), fields: vec!["forward".into()] }).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert_eq!(e.get_error_details().bad_request().unwrap().field_violations[0].field, "service.syn_proxy");
        let udp = pb::Service { key: Some(pb::ServiceKey { protocol: pb::Protocol::Udp as i32, ..key(8082).unwrap() }), ..on.clone() };
        let e = c.add_service(pb::AddServiceRequest { service: Some(udp) }).await.unwrap_err();
        assert_eq!((e.code(), e.message()), (Code::InvalidArgument, "service.syn_proxy: SYN proxy answers TCP handshakes; this service is UDP"));
        // The first real server of a service may set its forwarding: to DR, the table refuses.
        let rs = pb::RealServer { addr: "10.0.1.12".into(), port: 8081, weight: 1, ..Default::default() };
        let e = c.add_real_server(pb::AddRealServerRequest { service: key(8081), real_server: Some(rs), forward: pb::ForwardMode::Dr as i32 }).await.unwrap_err();
        assert_eq!((e.code(), e.message()), (Code::InvalidArgument, "virtual service TCP 10.0.1.100:8081: syn_proxy needs FNAT or NAT (DR replies bypass the director)"));
        // Switched off by name; the table follows.
        let off = pb::Service { syn_proxy: false, ..on };
        assert!(!c.edit_service(pb::EditServiceRequest { service: Some(off), fields: vec!["syn_proxy".into()] }).await.unwrap().into_inner().syn_proxy);
        assert_eq!(control.table().lookup(&k).unwrap().1.syn_proxy, None);
    });
    handle.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn api_listen_off_loopback_is_warned_about() {
    assert_eq!(super::exposed_warning("127.0.0.1:7443".parse().unwrap(), false), None);
    assert_eq!(super::exposed_warning("[::1]:7443".parse().unwrap(), false), None);
    let w = super::exposed_warning("0.0.0.0:7443".parse().unwrap(), false).unwrap();
    assert!(w.starts_with("api_listen 0.0.0.0:7443 is not a loopback address and has no TLS") && w.contains("api_tls_cert"), "{w}");
    assert!(super::exposed_warning("10.0.0.1:7443".parse().unwrap(), false).is_some());
    assert_eq!(super::exposed_warning("10.0.0.1:7443".parse().unwrap(), true), None, "TLS protects it");
}
