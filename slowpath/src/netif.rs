//! The director's interfaces as lb-slowpath sees them: lbd's data ports (from lbd.toml) and the
//! exception-path TAPs the kernel holds for them. A keepalived `interface` may name a port
//! (`wan`), its TAP (`tap-wan`) or any kernel interface of this namespace; VRRP adverts and
//! gratuitous ARPs go out of the TAP, so lbd transmits them on the data port with its MAC.

use std::net::Ipv4Addr;
use std::path::Path;

/// One of lbd's data ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// `name` in lbd.toml.
    pub name: String,
    /// `kernel_tap`: the kernel's side of the port, if any.
    pub tap: Option<String>,
    /// The kernel interface the port's driver sits on (`iface=` in its vdev, for af_packet and
    /// af_xdp), if any.
    pub device: Option<String>,
}

/// lbd's ports from lbd.toml (only `name` and `kernel_tap` are read; lbd validates the rest).
pub fn ports_from_lbd_toml(table: &toml::Table) -> Vec<Port> {
    table
        .get("port")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let name = p.get("name")?.as_str()?.to_owned();
            let tap = p.get("kernel_tap").and_then(toml::Value::as_str).map(str::to_owned);
            let device = p.get("vdev").and_then(toml::Value::as_str).and_then(|v| v.split(',').find_map(|kv| kv.strip_prefix("iface=")).map(str::to_owned));
            Some(Port { name, tap, device })
        })
        .collect()
}

/// The kernel interface carrying `iface` (a port's name, its TAP or the interface its driver
/// sits on, all meaning the port's TAP; or another kernel interface that exists here), or why
/// there is none.
pub fn resolve(iface: &str, ports: &[Port], exists: &dyn Fn(&str) -> bool) -> Result<String, String> {
    if let Some(p) = ports.iter().find(|p| p.name == iface || p.tap.as_deref() == Some(iface) || p.device.as_deref() == Some(iface)) {
        return p.tap.clone().ok_or_else(|| format!("interface {iface}: lbd's port {} has no kernel_tap (VRRP and ARP go through the TAP)", p.name));
    }
    if exists(iface) {
        return Ok(iface.to_owned());
    }
    let known: Vec<String> = ports.iter().map(|p| format!("{}={}", p.name, p.tap.as_deref().unwrap_or("no tap"))).collect();
    Err(format!("interface {iface} is none of lbd's ports ({}) and no interface of this namespace", if known.is_empty() { "none".into() } else { known.join(", ") }))
}

/// Whether a kernel interface of this name exists (in this network namespace).
pub fn exists(iface: &str) -> bool {
    !iface.contains('/') && Path::new("/sys/class/net").join(iface).exists()
}

/// Whether the interface's link is up (`operstate` up or unknown, as TAPs report).
pub fn link_up(iface: &str) -> bool {
    match std::fs::read_to_string(Path::new("/sys/class/net").join(iface).join("operstate")) {
        Ok(s) => matches!(s.trim(), "up" | "unknown"),
        Err(_) => false,
    }
}

/// The interface's first IPv4 address (its primary address, VRRP's source).
pub fn primary_ip(iface: &str) -> Option<Ipv4Addr> {
    if_addrs::get_if_addrs().ok()?.into_iter().find_map(|i| match i.addr {
        if_addrs::IfAddr::V4(a) if i.name == iface => Some(a.ip),
        _ => None,
    })
}

/// The interface's MAC address.
pub fn mac(iface: &str) -> Option<[u8; 6]> {
    let text = std::fs::read_to_string(Path::new("/sys/class/net").join(iface).join("address")).ok()?;
    let mut out = [0u8; 6];
    let mut parts = text.trim().split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> Vec<Port> {
        let t: toml::Table = "[[port]]\nname = 'wan'\nvdev = 'net_af_packet0,iface=wan0'\nkernel_tap = 'tap-wan'\n[[port]]\nname = 'lan'\nvdev = 'y'\n".parse().unwrap();
        ports_from_lbd_toml(&t)
    }

    #[test]
    fn interface_names_map_to_taps() {
        let p = ports();
        assert_eq!(p, [Port { name: "wan".into(), tap: Some("tap-wan".into()), device: Some("wan0".into()) }, Port { name: "lan".into(), tap: None, device: None }]);
        let none = |_: &str| false;
        assert_eq!(resolve("wan", &p, &none), Ok("tap-wan".into()));
        assert_eq!(resolve("tap-wan", &p, &none), Ok("tap-wan".into()));
        assert_eq!(resolve("wan0", &p, &|_| true), Ok("tap-wan".into()), "the port's own device means its TAP");
        assert_eq!(resolve("eth9", &p, &|i| i == "eth9"), Ok("eth9".into()));
        assert_eq!(resolve("lan", &p, &none), Err("interface lan: lbd's port lan has no kernel_tap (VRRP and ARP go through the TAP)".into()));
        assert_eq!(resolve("bond0", &p, &none), Err("interface bond0 is none of lbd's ports (wan=tap-wan, lan=no tap) and no interface of this namespace".into()));
    }

    #[test]
    fn loopback_facts() {
        assert!(exists("lo"));
        assert!(!exists("../lo"));
        assert_eq!(primary_ip("lo"), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(mac("lo"), Some([0; 6]));
    }
}
