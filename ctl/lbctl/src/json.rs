//! `-o json`: every view as JSON with names (not enum numbers), for scripts. The service key
//! is flattened into the service; every other field of the messages is here under its proto
//! name, which a test holds to lb.v1's descriptor so the JSON cannot drift from the API.

use lb_api::pb;
use serde_json::{json, Value};

fn conns(c: Option<&pb::ConnCounters>) -> Value {
    match c {
        Some(c) => json!({
            "active_conns": c.active_conns, "inactive_conns": c.inactive_conns, "pkts_in": c.pkts_in, "pkts_out": c.pkts_out,
            "conns": c.conns, "bytes_in": c.bytes_in, "bytes_out": c.bytes_out, "persistent_conns": c.persistent_conns,
        }),
        None => Value::Null,
    }
}

pub fn key(k: Option<&pb::ServiceKey>) -> Value {
    let k = k.cloned().unwrap_or_default();
    json!({"protocol": lb_api::protocol_name(k.protocol), "vip": k.vip, "port": k.port})
}

pub fn service(s: &pb::Service) -> Value {
    let f = s.flow.unwrap_or_default();
    let mut v = key(s.key.as_ref());
    let extra = json!({
        "scheduler": lb_api::scheduler_name(s.scheduler),
        "forward": lb_api::forward_name(s.forward),
        "persistence": s.persistence.as_ref().map(|p| json!({"timeout_s": p.timeout_s, "netmask": if p.netmask.is_empty() { "255.255.255.255" } else { &p.netmask }})),
        "laddr_group": s.laddr_group,
        "flow": {"cps": f.cps, "interval_s": f.interval_s, "max_conns": f.max_conns},
        "allow": s.allow,
        "deny": s.deny,
        "draining_timeout_s": s.draining_timeout_s,
        "sorry_server": if s.sorry_server.is_empty() { Value::Null } else { json!(s.sorry_server) },
        "syn_proxy": s.syn_proxy,
        "hash_port": s.hash_port,
        "stats": conns(s.stats.as_ref()),
        "real_servers": s.real_servers.iter().map(|r| json!({
            "addr": r.addr, "port": r.port, "weight": r.weight, "health_checked": r.health_checked, "stats": conns(r.stats.as_ref()),
            "health": lb_api::health_name(r.health),
            "health_since_unix_ms": if r.health_since_unix_ms > 0 { json!(r.health_since_unix_ms) } else { Value::Null },
            "last_error": if r.last_error.is_empty() { Value::Null } else { json!(r.last_error) },
            "checker": if r.checker.is_empty() { Value::Null } else { json!(r.checker) },
            "inhibited": r.inhibited, "effective_weight": r.effective_weight,
            "health_source": if r.health_source.is_empty() { Value::Null } else { json!(r.health_source) },
        })).collect::<Vec<_>>(),
        "quorum_up": s.quorum_up,
    });
    if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
        m.extend(e);
    }
    v
}

pub fn services(list: &[pb::Service]) -> Value {
    json!({"services": list.iter().map(service).collect::<Vec<_>>()})
}

pub fn session(s: &pb::Session) -> Value {
    json!({
        "worker": s.worker, "protocol": lb_api::protocol_name(s.protocol), "state": s.state, "expires_in_s": s.expires_in_s,
        "client": s.client, "vip": s.vip, "laddr": s.laddr, "real_server": s.real_server, "pkts_in": s.pkts_in, "pkts_out": s.pkts_out,
    })
}

pub fn sessions(r: &pb::ListSessionsResponse) -> Value {
    json!({"matched": r.matched, "sessions": r.sessions.iter().map(session).collect::<Vec<_>>()})
}

pub fn groups(list: &[pb::LocalAddressGroup]) -> Value {
    json!({"groups": list.iter().map(|g| json!({
        "name": g.name,
        "addrs": g.addrs.iter().map(|a| json!({"addr": a.addr, "ifname": if a.ifname.is_empty() { Value::Null } else { json!(a.ifname) }})).collect::<Vec<_>>(),
        "used_by": g.used_by.iter().map(|k| key(Some(k))).collect::<Vec<_>>(),
    })).collect::<Vec<_>>()})
}

fn counters(list: &[pb::Counter]) -> Value {
    Value::Object(list.iter().map(|c| (c.name.clone(), json!(c.value))).collect())
}

pub fn stats(s: &pb::Stats) -> Value {
    json!({
        "uptime_ms": s.uptime_ms,
        "workers": s.workers.iter().map(|w| json!({
            "worker": w.worker, "lcore": w.lcore, "sessions": w.sessions, "loops": w.loops, "busy_loops": w.busy_loops,
            "counters": counters(&w.counters), "drops": counters(&w.drops),
        })).collect::<Vec<_>>(),
        "ports": s.ports.iter().map(|p| json!({
            "name": p.name, "device": p.device, "kernel_tap": p.kernel_tap, "ipackets": p.ipackets, "opackets": p.opackets,
            "ibytes": p.ibytes, "obytes": p.obytes, "imissed": p.imissed, "ierrors": p.ierrors, "oerrors": p.oerrors, "rx_nombuf": p.rx_nombuf,
        })).collect::<Vec<_>>(),
        "services": s.services.iter().map(service).collect::<Vec<_>>(),
    })
}

pub fn info(i: &pb::Info) -> Value {
    json!({
        "version": i.version, "pid": i.pid, "workers": i.workers, "lcores": i.lcores, "uptime_ms": i.uptime_ms,
        "generation": i.generation, "services": i.services, "services_file": i.services_file, "max_sessions": i.max_sessions,
        "api_socket": i.api_socket, "metrics_listen": i.metrics_listen,
        "instance_id": i.instance_id, "config_revision": i.config_revision, "sync_ready": i.sync_ready,
        "ports": i.ports.iter().map(|p| json!({
            "name": p.name, "device": p.device, "mac": p.mac, "addresses": p.addresses, "kernel_tap": p.kernel_tap, "link_up": p.link_up,
        })).collect::<Vec<_>>(),
    })
}

pub fn timeouts(t: &pb::Timeouts) -> Value {
    json!({"tcp": t.tcp, "tcpfin": t.tcpfin, "udp": t.udp})
}

pub fn change(c: &pb::ConfigChange) -> Value {
    let keys = |v: &[pb::ServiceKey]| v.iter().map(|k| key(Some(k))).collect::<Vec<_>>();
    json!({
        "added": keys(&c.added), "removed": keys(&c.removed), "changed": keys(&c.changed),
        "unchanged": c.unchanged, "generation": c.generation, "notes": c.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    /// The fields lb.v1 declares for `message`.
    fn proto_fields(message: &str) -> Vec<String> {
        let set = prost_types::FileDescriptorSet::decode(lb_api::FILE_DESCRIPTOR_SET).expect("lb.v1 descriptor");
        let m = set.file.iter().flat_map(|f| &f.message_type).find(|m| m.name() == message).unwrap_or_else(|| panic!("no message {message}"));
        m.field.iter().map(|f| f.name().to_owned()).collect()
    }

    fn assert_covers(v: &Value, message: &str, flattened: &[&str]) {
        for f in proto_fields(message) {
            if flattened.contains(&f.as_str()) {
                continue;
            }
            assert!(v.get(&f).is_some(), "-o json drops {message}.{f}: {v}");
        }
    }

    /// Every field of the messages `-o json` shows is in its output: a field added to the proto
    /// fails here until the JSON carries it.
    #[test]
    fn json_carries_every_proto_field() {
        let c = Some(pb::ConnCounters::default());
        let s = pb::Service { real_servers: vec![pb::RealServer { stats: c, ..Default::default() }], stats: c, ..Default::default() };
        let v = service(&s);
        assert_covers(&v, "Service", &["key"]);
        assert_covers(&v, "ServiceKey", &[]);
        assert_covers(&v["real_servers"][0], "RealServer", &[]);
        assert_covers(&v["stats"], "ConnCounters", &[]);
        assert_covers(&v["flow"], "FlowControl", &[]);
        assert_covers(&session(&pb::Session::default()), "Session", &[]);
        assert_covers(&sessions(&pb::ListSessionsResponse::default()), "ListSessionsResponse", &[]);
        assert_covers(&timeouts(&pb::Timeouts::default()), "Timeouts", &[]);
        let i = info(&pb::Info { ports: vec![pb::PortInfo::default()], ..Default::default() });
        assert_covers(&i, "Info", &[]);
        assert_covers(&i["ports"][0], "PortInfo", &[]);
        assert_covers(&change(&pb::ConfigChange::default()), "ConfigChange", &[]);
    }
}
