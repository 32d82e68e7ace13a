//! `addr:port` arguments, with port names from /etc/services as ipvsadm accepts and prints
//! them (`10.0.0.1:http`). Addresses stay numeric: ranges and validity are lbd's to check.

use std::collections::HashMap;
use std::sync::OnceLock;

use lb_api::pb::{self, Protocol};

/// ipvsadm's persistence timeout when `-p` has no value.
pub const DEFAULT_PERSISTENCE: u32 = 300;

/// (name, proto) -> port and (port, proto) -> first name, from /etc/services.
struct Services {
    by_name: HashMap<(String, &'static str), u32>,
    by_port: HashMap<(u32, &'static str), String>,
}

fn services() -> &'static Services {
    static S: OnceLock<Services> = OnceLock::new();
    S.get_or_init(|| parse_services(&std::fs::read_to_string("/etc/services").unwrap_or_default()))
}

fn parse_services(text: &str) -> Services {
    let mut s = Services { by_name: HashMap::new(), by_port: HashMap::new() };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut w = line.split_whitespace();
        let (Some(name), Some(pp)) = (w.next(), w.next()) else { continue };
        let Some((port, proto)) = pp.split_once('/') else { continue };
        let Ok(port) = port.parse::<u32>() else { continue };
        let proto: &'static str = match proto {
            "tcp" => "tcp",
            "udp" => "udp",
            _ => continue,
        };
        s.by_port.entry((port, proto)).or_insert_with(|| name.to_owned());
        for n in std::iter::once(name).chain(w) {
            s.by_name.entry((n.to_owned(), proto)).or_insert(port);
        }
    }
    s
}

fn proto_str(p: Protocol) -> &'static str {
    if p == Protocol::Udp {
        "udp"
    } else {
        "tcp"
    }
}

/// A port number or name.
pub fn port(s: &str, proto: Protocol) -> Result<u32, String> {
    if let Ok(n) = s.parse::<u32>() {
        return Ok(n);
    }
    services().by_name.get(&(s.to_owned(), proto_str(proto))).copied().ok_or_else(|| format!("{s:?} is not a port number or a {} service name", proto_str(proto)))
}

/// `addr:port` as a service key.
pub fn service_key(s: &str, proto: Protocol) -> Result<pb::ServiceKey, String> {
    let (a, p) = s.rsplit_once(':').ok_or_else(|| "expected addr:port".to_owned())?;
    if a.is_empty() {
        return Err("expected addr:port".into());
    }
    Ok(pb::ServiceKey { vip: a.to_owned(), port: port(p, proto)?, protocol: proto as i32 })
}

/// `addr[:port]` of a real server; the port defaults to the service's, as in ipvsadm.
pub fn real_server(s: &str, default_port: u32, proto: Protocol) -> Result<(String, u32), String> {
    match s.rsplit_once(':') {
        Some((a, p)) if !a.is_empty() => Ok((a.to_owned(), port(p, proto)?)),
        Some(_) => Err("expected addr[:port]".into()),
        None => Ok((s.to_owned(), default_port)),
    }
}

/// `addr:port`, the port by name unless `numeric` (ipvsadm without -n).
pub fn addr_port(addr: &str, port: u32, proto: i32, numeric: bool) -> String {
    if !numeric {
        let p = if proto == Protocol::Udp as i32 { "udp" } else { "tcp" };
        if let Some(n) = services().by_port.get(&(port, p)) {
            return format!("{addr}:{n}");
        }
    }
    format!("{addr}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_resolve_both_ways() {
        let s = parse_services("http 80/tcp www # WorldWideWeb\nhttp 80/udp\ndomain 53/udp\n");
        assert_eq!(s.by_name[&("www".to_owned(), "tcp")], 80);
        assert_eq!(s.by_port[&(53, "udp")], "domain");
        assert_eq!(service_key("10.0.0.1:80", Protocol::Tcp).unwrap().port, 80);
        assert!(service_key("10.0.0.1", Protocol::Tcp).is_err());
        assert_eq!(real_server("10.0.0.2", 443, Protocol::Tcp).unwrap(), ("10.0.0.2".into(), 443));
        assert_eq!(real_server("10.0.0.2:8080", 443, Protocol::Tcp).unwrap(), ("10.0.0.2".into(), 8080));
        assert_eq!(addr_port("1.2.3.4", 80, Protocol::Tcp as i32, true), "1.2.3.4:80");
    }
}
