//! `-o json`, generated from the lb.v1 messages: serde on the generated types (lb-api derives
//! `Serialize`), shaped by lb.v1's descriptor so every field a message has is shown, under its
//! proto name, and none is written by hand. The shaping, the same for every message:
//! - enum numbers become names (`rr`, `fnat`, `TCP`, `down`, as the tables print them; other
//!   enums their value name without the enum's prefix, lower-case: `backup`);
//! - `repeated Counter` lists become `{name: value}` objects;
//! - a service `key` (ServiceKey) and a sync `daemon` (SyncDaemon) are flattened into the
//!   message that holds them;
//! - empty strings and zero `*_unix_ms` times (proto3's "not set") are `null`.

use std::collections::HashMap;
use std::sync::OnceLock;

use lb_api::pb;
use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet};
use serde_json::{json, Map, Value};

/// Message fields whose contents are shown in the holding message: (type, field name).
const FLATTENED: &[(&str, &str)] = &[(".lb.v1.ServiceKey", "key"), (".lb.v1.SyncDaemon", "daemon")];

struct Descriptors {
    messages: HashMap<String, DescriptorProto>,
    enums: HashMap<String, EnumDescriptorProto>,
}

fn descriptors() -> &'static Descriptors {
    static D: OnceLock<Descriptors> = OnceLock::new();
    D.get_or_init(|| {
        let set = FileDescriptorSet::decode(lb_api::FILE_DESCRIPTOR_SET).unwrap_or_default();
        let mut d = Descriptors { messages: HashMap::new(), enums: HashMap::new() };
        for f in &set.file {
            let pkg = format!(".{}", f.package());
            for e in &f.enum_type {
                d.enums.insert(format!("{pkg}.{}", e.name()), e.clone());
            }
            for m in &f.message_type {
                add_message(&mut d, &pkg, m);
            }
        }
        d
    })
}

fn add_message(d: &mut Descriptors, scope: &str, m: &DescriptorProto) {
    let name = format!("{scope}.{}", m.name());
    for n in &m.nested_type {
        add_message(d, &name, n);
    }
    for e in &m.enum_type {
        d.enums.insert(format!("{name}.{}", e.name()), e.clone());
    }
    d.messages.insert(name, m.clone());
}

/// `SyncRole` → `SYNC_ROLE_`.
fn enum_prefix(enum_name: &str) -> String {
    let mut p = String::new();
    for (i, c) in enum_name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            p.push('_');
        }
        p.push(c.to_ascii_uppercase());
    }
    p + "_"
}

fn enum_value(type_name: &str, v: &Value) -> Value {
    let Some(n) = v.as_i64().and_then(|n| i32::try_from(n).ok()) else { return v.clone() };
    let named = match type_name {
        ".lb.v1.Protocol" => lb_api::protocol_name(n),
        ".lb.v1.Scheduler" => lb_api::scheduler_name(n),
        ".lb.v1.ForwardMode" => lb_api::forward_name(n),
        ".lb.v1.HealthState" => lb_api::health_name(n),
        _ => {
            let Some(e) = descriptors().enums.get(type_name) else { return v.clone() };
            let Some(value) = e.value.iter().find(|x| x.number() == n) else { return v.clone() };
            let prefix = enum_prefix(e.name());
            return json!(value.name().strip_prefix(&prefix).unwrap_or(value.name()).to_ascii_lowercase());
        }
    };
    json!(named)
}

fn each(v: Value, repeated: bool, f: impl Fn(Value) -> Value) -> Value {
    match v {
        Value::Array(a) if repeated => Value::Array(a.into_iter().map(f).collect()),
        v => f(v),
    }
}

fn shape(v: Value, type_name: &str) -> Value {
    let d = descriptors();
    let (Value::Object(mut obj), Some(msg)) = (v.clone(), d.messages.get(type_name)) else { return v };
    if msg.options.as_ref().is_some_and(|o| o.map_entry()) {
        return v;
    }
    let mut out = Map::new();
    for f in &msg.field {
        let name = f.name();
        let Some(val) = obj.remove(name) else { continue };
        let repeated = f.label() == Label::Repeated;
        let tn = f.type_name();
        let shaped = match f.r#type() {
            Type::Enum => each(val, repeated, |x| enum_value(tn, &x)),
            Type::Message if repeated && tn == ".lb.v1.Counter" => {
                let pairs = val.as_array().cloned().unwrap_or_default();
                Value::Object(pairs.iter().map(|c| (c["name"].as_str().unwrap_or("").to_owned(), c["value"].clone())).collect())
            }
            Type::Message => each(val, repeated, |x| shape(x, tn)),
            Type::String if val == json!("") => Value::Null,
            _ if name.ends_with("_unix_ms") && val == json!(0) => Value::Null,
            _ => val,
        };
        if FLATTENED.contains(&(tn, name)) {
            match shaped {
                Value::Object(inner) => out.extend(inner),
                // Not set: its fields are there, unset.
                _ => out.extend(d.messages.get(tn).iter().flat_map(|m| &m.field).map(|f| (f.name().to_owned(), Value::Null))),
            }
            continue;
        }
        out.insert(name.to_owned(), shaped);
    }
    Value::Object(out)
}

/// Any lb.v1 message as JSON.
pub fn message<M: prost::Name + serde::Serialize>(m: &M) -> Value {
    shape(serde_json::to_value(m).unwrap_or(Value::Null), &format!(".{}", M::full_name()))
}

pub fn service(s: &pb::Service) -> Value {
    message(s)
}

pub fn services(list: &[pb::Service]) -> Value {
    json!({"services": list.iter().map(message).collect::<Vec<_>>()})
}

pub fn sessions(r: &pb::ListSessionsResponse) -> Value {
    message(r)
}

pub fn groups(list: &[pb::LocalAddressGroup]) -> Value {
    json!({"groups": list.iter().map(message).collect::<Vec<_>>()})
}

pub fn stats(s: &pb::Stats) -> Value {
    message(s)
}

pub fn info(i: &pb::Info) -> Value {
    message(i)
}

pub fn timeouts(t: &pb::Timeouts) -> Value {
    message(t)
}

pub fn change(c: &pb::ConfigChange) -> Value {
    message(c)
}

/// A service key alone, as it appears flattened in services.
pub fn key(k: Option<&pb::ServiceKey>) -> Value {
    message(&k.cloned().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields lb.v1 declares for `message`.
    fn proto_fields(message: &str) -> Vec<String> {
        let m = descriptors().messages.get(&format!(".lb.v1.{message}")).unwrap_or_else(|| panic!("no message {message}"));
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

    /// Every field of every message `-o json` shows is in its output.
    #[test]
    fn json_carries_every_proto_field() {
        let c = Some(pb::ConnCounters::default());
        let s = pb::Service { real_servers: vec![pb::RealServer { stats: c, ..Default::default() }], stats: c, flow: Some(pb::FlowControl::default()), ..Default::default() };
        let v = service(&s);
        assert_covers(&v, "Service", &["key"]);
        assert_covers(&v, "ServiceKey", &[]);
        assert_covers(&v["real_servers"][0], "RealServer", &[]);
        assert_covers(&v["stats"], "ConnCounters", &[]);
        assert_covers(&v["flow"], "FlowControl", &[]);
        assert_covers(&sessions(&pb::ListSessionsResponse { sessions: vec![pb::Session::default()], matched: 1 })["sessions"][0], "Session", &[]);
        assert_covers(&timeouts(&pb::Timeouts::default()), "Timeouts", &[]);
        let i = info(&pb::Info { ports: vec![pb::PortInfo::default()], ..Default::default() });
        assert_covers(&i, "Info", &[]);
        assert_covers(&i["ports"][0], "PortInfo", &[]);
        assert_covers(&change(&pb::ConfigChange::default()), "ConfigChange", &[]);
        let st = pb::SyncStatus { daemons: vec![pb::SyncDaemonStatus { daemon: Some(pb::SyncDaemon::default()), ..Default::default() }], ..Default::default() };
        let j = message(&st);
        assert_covers(&j, "SyncStatus", &[]);
        assert_covers(&j["daemons"][0], "SyncDaemonStatus", &["daemon"]);
        assert_covers(&j["daemons"][0], "SyncDaemon", &[]);
    }

    #[test]
    fn enums_counters_keys_and_unset_values_are_shaped() {
        let s = pb::Service {
            key: Some(pb::ServiceKey { vip: "10.0.0.1".into(), port: 80, protocol: pb::Protocol::Udp as i32 }),
            scheduler: pb::Scheduler::Lblcr as i32,
            forward: pb::ForwardMode::Nat as i32,
            stats: Some(pb::ConnCounters { conns: 7, bytes_in: 100, bytes_out: 2000, ..Default::default() }),
            real_servers: vec![pb::RealServer { addr: "10.0.1.1".into(), port: 53, health: pb::HealthState::Down as i32, ..Default::default() }],
            ..Default::default()
        };
        let j = service(&s);
        assert_eq!((j["vip"].as_str(), j["port"].as_u64(), j["protocol"].as_str()), (Some("10.0.0.1"), Some(80), Some("UDP")), "{j}");
        assert_eq!((j["scheduler"].as_str(), j["forward"].as_str()), (Some("lblcr"), Some("nat")));
        assert_eq!((j["stats"]["conns"].as_u64(), j["stats"]["bytes_out"].as_u64()), (Some(7), Some(2000)), "what the hand-written JSON dropped");
        assert_eq!(j["real_servers"][0]["health"], "down");
        assert_eq!((j["sorry_server"].clone(), j["real_servers"][0]["health_since_unix_ms"].clone(), j["persistence"].clone()), (Value::Null, Value::Null, Value::Null));
        let st = pb::Stats { workers: vec![pb::WorkerStats { drops: vec![pb::Counter { name: "no_session".into(), value: 3 }], ..Default::default() }], ..Default::default() };
        assert_eq!(stats(&st)["workers"][0]["drops"], json!({"no_session": 3}));
        let sync = pb::SyncStatus { daemons: vec![pb::SyncDaemonStatus { daemon: Some(pb::SyncDaemon { role: pb::SyncRole::Backup as i32, ..Default::default() }), active: true, ..Default::default() }], ..Default::default() };
        let j = message(&sync);
        assert_eq!((j["daemons"][0]["role"].as_str(), j["daemons"][0]["active"].as_bool()), (Some("backup"), Some(true)), "{j}");
        assert_eq!(enum_prefix("SyncRole"), "SYNC_ROLE_");
    }
}
