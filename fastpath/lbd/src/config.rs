//! `lbd.toml`: the appliance's own settings (EAL, ports, workers). Services come from a
//! keepalived.conf (see the FNAT work); this file says how the box is wired.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnetwork::Ipv4Network;
use serde::Deserialize;

mod ports;
mod synproxy;

pub use ports::{choose_exception, exception_device, exception_devargs, vhost_net_usable, ExceptionKind, ExceptionSetting, VHOST_NET};

/// Why a configuration was rejected. Messages name the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {msg}")]
    Syntax { path: PathBuf, msg: String },
    #[error("{path}: {field}: {msg}")]
    Invalid { path: PathBuf, field: String, msg: String },
}

/// EAL settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EalConfig {
    /// Run without hugepages (slower; needs no setup).
    #[serde(default)]
    pub no_huge: bool,
    /// Memory in MiB to reserve.
    #[serde(default = "default_memory")]
    pub memory_mb: u32,
    /// Runtime-file prefix; default `lbd-<pid>`.
    pub file_prefix: Option<String>,
    /// EAL log level (e.g. `warning`, `debug`).
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// Extra raw EAL arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// The CPU each worker lcore runs on, one per worker (DPVS's and VPP's worker core
    /// lists); empty: worker `i` on CPU `(i+1) % CPUs`. The main lcore stays on CPU 0.
    #[serde(default)]
    pub worker_cpus: Vec<u16>,
}

impl Default for EalConfig {
    fn default() -> Self {
        EalConfig { no_huge: false, memory_mb: default_memory(), file_prefix: None, log_level: default_log_level(), args: Vec::new(), worker_cpus: Vec::new() }
    }
}

fn default_memory() -> u32 {
    512
}
fn default_log_level() -> String {
    "warning".into()
}
fn default_workers() -> u16 {
    1
}
fn default_idle_sleep() -> u32 {
    0
}
fn default_mbufs() -> u32 {
    16383
}
fn default_desc() -> u16 {
    512
}
fn default_max_sessions() -> usize {
    1 << 20
}

/// Session sync tuning, named as LVS's sysctls (`net.ipv4.vs.sync_threshold` and
/// `sync_refresh_period`). The daemons themselves come from keepalived.conf's
/// `lvs_sync_daemon` or `lbctl --start-daemon`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSection {
    /// `[threshold, period]`, LVS's default `[3, 50]`: a session syncs at its `threshold`-th
    /// client packet and every `period` packets after (period 0: once).
    pub sync_threshold: Option<[u32; 2]>,
    /// Seconds; 0 (the default) off. When set, a session whose state did not change syncs at
    /// most once per period.
    pub sync_refresh_period: Option<u32>,
}

/// Session timeouts in seconds, named as `ipvsadm --set tcp tcpfin udp`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutSection {
    pub tcp: Option<u32>,
    pub tcpfin: Option<u32>,
    pub udp: Option<u32>,
    pub tcp_syn_recv: Option<u32>,
    pub tcp_close: Option<u32>,
}

/// What refused new connections get: a TCP reset (UDP: dropped) or a silent drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefuseSetting {
    Rst,
    Drop,
}

/// When TOA (client address in TCP option 254) is inserted toward real servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ToaSetting {
    Off,
    FirstAck,
    SynAndFirstAck,
}

/// One data port.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSection {
    /// Logical name (`wan`, `lan`, ...), used in logs and stats.
    pub name: String,
    /// DPDK vdev arguments, e.g. `net_af_packet0,iface=wan0` (or `pci`, not both).
    pub vdev: Option<String>,
    /// A PCI NIC bound to vfio-pci or uio, e.g. `0000:00:04.0` (or `vdev`, not both).
    pub pci: Option<String>,
    /// IPv4 addresses (with prefix) the director itself owns on this port.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Name of the kernel interface of the exception path (a TAP either way).
    pub kernel_tap: Option<String>,
    /// Which driver carries the exception path: `virtio-user`, `tap` or `auto` (the default).
    pub exception: Option<ExceptionSetting>,
    /// MTU to set on the port.
    pub mtu: Option<u16>,
    /// Receive descriptors per queue.
    #[serde(default = "default_desc")]
    pub rx_desc: u16,
    /// Transmit descriptors per queue.
    #[serde(default = "default_desc")]
    pub tx_desc: u16,
    /// Next hop for destinations on no connected subnet.
    pub gateway: Option<String>,
}

/// The raw file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_workers")]
    workers: u16,
    #[serde(default = "default_idle_sleep")]
    idle_sleep_us: u32,
    stats_file: Option<PathBuf>,
    #[serde(default = "default_mbufs")]
    mbufs: u32,
    #[serde(default)]
    eal: EalConfig,
    #[serde(default)]
    port: Vec<PortSection>,
    services: Option<PathBuf>,
    #[serde(default = "default_max_sessions")]
    max_sessions: usize,
    timeouts: Option<TimeoutSection>,
    #[serde(default)]
    sync: Option<SyncSection>,
    synproxy: Option<synproxy::SynProxySection>,
    toa: Option<ToaSetting>,
    flow_refuse: Option<RefuseSetting>,
    max_client_list: Option<usize>,
    api_socket: Option<PathBuf>,
    api_listen: Option<String>,
    api_token: Option<String>,
    api_tls_cert: Option<PathBuf>,
    api_tls_key: Option<PathBuf>,
    metrics_listen: Option<String>,
    api_max_connections: Option<u32>,
    api_idle_timeout_s: Option<u32>,
}

/// `api_tls_cert` and `api_tls_key`: PEM files for TLS on `api_listen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A validated port.
#[derive(Debug, Clone)]
pub struct PortConfig {
    pub name: String,
    /// The vdev arguments; empty for a PCI port.
    pub vdev: String,
    /// The PCI address (DPDK's spelling, `0000:00:04.0`) of a PCI port.
    pub pci: Option<String>,
    /// The DPDK device name (the vdev up to its first comma, or the PCI address).
    pub device: String,
    pub addresses: Vec<Ipv4Network>,
    pub kernel_tap: Option<String>,
    /// Which driver carries the exception path (only with `kernel_tap`).
    pub exception: ExceptionSetting,
    pub mtu: Option<u16>,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub gateway: Option<Ipv4Addr>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub workers: u16,
    pub idle_sleep_us: u32,
    pub stats_file: Option<PathBuf>,
    pub mbufs: u32,
    pub eal: EalConfig,
    pub ports: Vec<PortConfig>,
    /// keepalived.conf with the virtual services (resolved against the file's directory).
    pub services: Option<PathBuf>,
    pub max_sessions: usize,
    pub timeouts: fastpath::session::Timeouts,
    pub toa: ToaSetting,
    /// What new connections refused by client lists or flow control get.
    pub flow_refuse: RefuseSetting,
    /// Most entries per client_ipaddr_allow / client_ipaddr_exclude list.
    pub max_client_list: usize,
    /// The control API's Unix socket, and whether it was configured (else the default).
    pub api_socket: PathBuf,
    pub api_socket_configured: bool,
    /// Optional TCP listener for the API; callers must present `api_token`.
    pub api_listen: Option<SocketAddr>,
    pub api_token: Option<String>,
    /// TLS on `api_listen`: PEM certificate chain and private key (read when the API starts).
    pub api_tls: Option<ApiTls>,
    /// Prometheus text endpoint (`GET /metrics`).
    pub metrics_listen: Option<SocketAddr>,
    /// Most connections open at once on `api_listen`, and on `metrics_listen`; one more is
    /// accepted and closed at once.
    pub api_max_connections: usize,
    /// Close a connection to `api_listen` or `metrics_listen` after this long without a byte
    /// read or written.
    pub api_idle_timeout: Duration,
    /// When workers sync sessions (`[sync]`).
    pub sync: fastpath::sync::SyncParams,
    /// What services with keepalived.conf's `syn_proxy` answer and allow (`[synproxy]`).
    pub synproxy: fastpath::synproxy::SynProxyConf,
}

/// Where the control API listens unless `api_socket` says otherwise.
pub const DEFAULT_API_SOCKET: &str = "/run/lbd/lbd.sock";

/// `api_max_connections` unless configured, and its range.
pub const DEFAULT_API_MAX_CONNECTIONS: u32 = 256;
const MAX_API_CONNECTIONS: u32 = 65536;
/// `api_idle_timeout_s` unless configured, and its upper bound (a day).
pub const DEFAULT_API_IDLE_TIMEOUT_S: u32 = 60;
const MAX_API_IDLE_TIMEOUT_S: u32 = 86400;

/// Largest worker count: 2 vCPUs here, but real appliances have many cores.
const MAX_WORKERS: u16 = 64;
/// Linux interface names are at most 15 bytes.
const IFNAMSIZ: usize = 15;

impl Config {
    /// The settings that shape how services are converted.
    pub fn service_options(&self) -> crate::services::Options {
        crate::services::Options {
            toa: self.toa,
            refuse: match self.flow_refuse {
                RefuseSetting::Rst => fastpath::service::RefuseMode::Rst,
                RefuseSetting::Drop => fastpath::service::RefuseMode::Drop,
            },
            max_client_list: self.max_client_list,
            syn_proxy: self.synproxy,
        }
    }

    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Config::parse(&text, path)
    }

    /// Parses and validates text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| ConfigError::Syntax { path: path.into(), msg: e.to_string().trim_end().replace('\n', " ") })?;
        let invalid = |field: String, msg: String| ConfigError::Invalid { path: path.into(), field, msg };
        if raw.workers == 0 || raw.workers > MAX_WORKERS {
            return Err(invalid("workers".into(), format!("{} is out of range 1..={MAX_WORKERS}", raw.workers)));
        }
        let cpus = &raw.eal.worker_cpus;
        if !cpus.is_empty() && cpus.len() != usize::from(raw.workers) {
            return Err(invalid("eal.worker_cpus".into(), format!("{} CPUs for {} workers: give one per worker", cpus.len(), raw.workers)));
        }
        if let Some(c) = cpus.iter().enumerate().find_map(|(i, c)| cpus[..i].contains(c).then_some(c)) {
            return Err(invalid("eal.worker_cpus".into(), format!("CPU {c} is listed twice: a worker polls a CPU of its own")));
        }
        if raw.mbufs < 1024 {
            return Err(invalid("mbufs".into(), format!("{} is too few (at least 1024)", raw.mbufs)));
        }
        if raw.eal.memory_mb < 64 {
            return Err(invalid("eal.memory_mb".into(), format!("{} MiB is too little (at least 64)", raw.eal.memory_mb)));
        }
        if raw.port.is_empty() {
            return Err(invalid("port".into(), "no [[port]] section: the director needs at least one port".into()));
        }
        let mut ports: Vec<PortConfig> = Vec::new();
        let mut taps: Vec<&str> = Vec::new();
        for (i, p) in raw.port.iter().enumerate() {
            let field = |f: &str| format!("port[{i}] ({}).{f}", p.name);
            if p.name.is_empty() {
                return Err(invalid(format!("port[{i}].name"), "is empty".into()));
            }
            if ports.iter().any(|q| q.name == p.name) {
                return Err(invalid(field("name"), format!("{:?} is used by another port", p.name)));
            }
            let (vdev, pci, device) = match (&p.vdev, &p.pci) {
                (Some(vdev), None) => {
                    let device = vdev.split(',').next().unwrap_or("").trim().to_owned();
                    if device.is_empty() || !device.starts_with("net_") {
                        return Err(invalid(field("vdev"), format!("{vdev:?} does not start with a net_ driver name (e.g. net_af_packet0,iface=eth1)")));
                    }
                    (vdev.trim().to_owned(), None, device)
                }
                (None, Some(pci)) => {
                    let addr = ports::normalize_pci(pci).map_err(|msg| invalid(field("pci"), msg))?;
                    (String::new(), Some(addr.clone()), addr)
                }
                (Some(_), Some(_)) => return Err(invalid(field("vdev/pci"), "give either vdev or pci, not both".into())),
                (None, None) => return Err(invalid(field("vdev/pci"), "needs vdev (a DPDK virtual device) or pci (a NIC's PCI address)".into())),
            };
            let device_field = if pci.is_some() { "pci" } else { "vdev" };
            if ports.iter().any(|q| q.device == device) {
                return Err(invalid(field(device_field), format!("device {device:?} is used by another port")));
            }
            let mut addresses = Vec::new();
            for a in &p.addresses {
                let net: Ipv4Network = a
                    .parse()
                    .map_err(|e| invalid(field("addresses"), format!("{a:?} is not an IPv4 address with prefix (e.g. 10.0.0.1/24): {e}")))?;
                if net.ip().is_unspecified() || net.ip().is_multicast() || net.ip() == Ipv4Addr::BROADCAST {
                    return Err(invalid(field("addresses"), format!("{a:?} cannot be a host address")));
                }
                if let Some(q) = ports.iter().find(|q| q.addresses.iter().any(|n| n.ip() == net.ip())) {
                    return Err(invalid(field("addresses"), format!("{} is also an address of port {} (an address belongs to one port)", net.ip(), q.name)));
                }
                addresses.push(net);
            }
            if let Some(t) = &p.kernel_tap {
                if t.is_empty() || t.len() > IFNAMSIZ || t.contains(['/', ' ', ',', '=']) {
                    return Err(invalid(field("kernel_tap"), format!("{t:?} is not a valid interface name (1..=15 characters, no '/', ' ', ',' or '=')")));
                }
                if taps.contains(&t.as_str()) {
                    return Err(invalid(field("kernel_tap"), format!("{t:?} is used by another port")));
                }
                taps.push(t);
            }
            if p.exception.is_some() && p.kernel_tap.is_none() {
                return Err(invalid(field("exception"), "needs kernel_tap (the name of the kernel's interface)".into()));
            }
            if p.rx_desc == 0 || p.tx_desc == 0 {
                return Err(invalid(field("rx_desc/tx_desc"), "must be at least 1".into()));
            }
            if let Some(m) = p.mtu {
                if !(68..=9600).contains(&m) {
                    return Err(invalid(field("mtu"), format!("{m} is out of range 68..=9600")));
                }
            }
            let gateway = match &p.gateway {
                None => None,
                Some(g) => Some(g.parse::<Ipv4Addr>().map_err(|e| invalid(field("gateway"), format!("{g:?} is not an IPv4 address: {e}")))?),
            };
            ports.push(PortConfig {
                gateway,
                name: p.name.clone(),
                vdev,
                pci,
                device,
                addresses,
                kernel_tap: p.kernel_tap.clone(),
                exception: p.exception.unwrap_or_default(),
                mtu: p.mtu,
                rx_desc: p.rx_desc,
                tx_desc: p.tx_desc,
            });
        }
        if raw.max_sessions == 0 {
            return Err(invalid("max_sessions".into(), "must be at least 1".into()));
        }
        let mut timeouts = fastpath::session::Timeouts::default();
        if let Some(t) = raw.timeouts {
            for (name, v, slot) in [
                ("tcp", t.tcp, &mut timeouts.tcp_established),
                ("tcpfin", t.tcpfin, &mut timeouts.tcp_fin_wait),
                ("udp", t.udp, &mut timeouts.udp),
                ("tcp_syn_recv", t.tcp_syn_recv, &mut timeouts.tcp_syn_recv),
                ("tcp_close", t.tcp_close, &mut timeouts.tcp_close),
            ] {
                if let Some(v) = v {
                    if v == 0 || v > 31 * 24 * 3600 {
                        return Err(invalid(format!("timeouts.{name}"), format!("{v} s is out of range 1..=2678400")));
                    }
                    *slot = v;
                }
            }
        }
        let listen = |field: &str, v: &Option<String>| -> Result<Option<SocketAddr>, ConfigError> {
            match v {
                None => Ok(None),
                Some(a) => a.parse().map(Some).map_err(|e| invalid(field.into(), format!("{a:?} is not an address:port (e.g. 127.0.0.1:9100): {e}"))),
            }
        };
        let api_listen = listen("api_listen", &raw.api_listen)?;
        let metrics_listen = listen("metrics_listen", &raw.metrics_listen)?;
        if let Some(t) = &raw.api_token {
            if t.len() < 16 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid("api_token".into(), "must be at least 16 printable ASCII characters without blanks".into()));
            }
        }
        if api_listen.is_some() && raw.api_token.is_none() {
            return Err(invalid("api_listen".into(), "needs api_token: TCP callers must present a bearer token".into()));
        }
        let api_tls = match (raw.api_tls_cert, raw.api_tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) if api_listen.is_some() => Some(ApiTls { cert, key }),
            (Some(_), Some(_)) => return Err(invalid("api_tls_cert".into(), "needs api_listen: TLS protects the API's TCP listener".into())),
            (Some(_), None) => return Err(invalid("api_tls_cert".into(), "needs api_tls_key (the certificate's private key, PEM)".into())),
            (None, Some(_)) => return Err(invalid("api_tls_key".into(), "needs api_tls_cert (the certificate chain, PEM)".into())),
        };
        let api_max_connections = raw.api_max_connections.unwrap_or(DEFAULT_API_MAX_CONNECTIONS);
        if !(1..=MAX_API_CONNECTIONS).contains(&api_max_connections) {
            return Err(invalid("api_max_connections".into(), format!("{api_max_connections} is out of range 1..={MAX_API_CONNECTIONS}")));
        }
        let api_idle_timeout_s = raw.api_idle_timeout_s.unwrap_or(DEFAULT_API_IDLE_TIMEOUT_S);
        if !(1..=MAX_API_IDLE_TIMEOUT_S).contains(&api_idle_timeout_s) {
            return Err(invalid("api_idle_timeout_s".into(), format!("{api_idle_timeout_s} s is out of range 1..={MAX_API_IDLE_TIMEOUT_S}")));
        }
        let api_socket_configured = raw.api_socket.is_some();
        let api_socket = raw.api_socket.unwrap_or_else(|| PathBuf::from(DEFAULT_API_SOCKET));
        if api_socket.as_os_str().is_empty() || api_socket.file_name().is_none() {
            return Err(invalid("api_socket".into(), format!("{:?} is not a socket path", api_socket.display().to_string())));
        }
        let mut sync = fastpath::sync::SyncParams::default();
        if let Some(sec) = &raw.sync {
            if let Some([threshold, period]) = sec.sync_threshold {
                // As LVS: the threshold must be below the period (when there is one).
                if period > 0 && threshold >= period {
                    return Err(invalid("sync.sync_threshold".into(), format!("[{threshold}, {period}]: the threshold must be below the period")));
                }
                if period > 0 && threshold == 0 {
                    return Err(invalid("sync.sync_threshold".into(), format!("[{threshold}, {period}]: the threshold must be at least 1")));
                }
                sync.threshold = threshold;
                sync.period = period;
            }
            if let Some(r) = sec.sync_refresh_period {
                if r > 31 * 24 * 3600 {
                    return Err(invalid("sync.sync_refresh_period".into(), format!("{r} s is out of range 0..=2678400")));
                }
                sync.refresh_period_ms = u64::from(r) * 1000;
            }
        }
        let synproxy = raw.synproxy.unwrap_or_default().conf().map_err(|(field, msg)| invalid(field, msg))?;
        let services = raw.services.map(|s| if s.is_relative() { path.parent().unwrap_or(Path::new(".")).join(s) } else { s });
        Ok(Config {
            services,
            max_sessions: raw.max_sessions,
            timeouts,
            toa: raw.toa.unwrap_or(ToaSetting::FirstAck),
            flow_refuse: raw.flow_refuse.unwrap_or(RefuseSetting::Rst),
            max_client_list: match raw.max_client_list {
                Some(0) => return Err(invalid("max_client_list".into(), "must be at least 1".into())),
                Some(n) => n,
                None => 1000,
            },
            api_socket,
            api_socket_configured,
            api_listen,
            api_token: raw.api_token,
            api_tls,
            metrics_listen,
            api_max_connections: api_max_connections as usize,
            api_idle_timeout: Duration::from_secs(u64::from(api_idle_timeout_s)),
            sync,
            synproxy,
            workers: raw.workers,
            idle_sleep_us: raw.idle_sleep_us,
            stats_file: raw.stats_file,
            mbufs: raw.mbufs,
            eal: raw.eal,
            ports,
        })
    }

    /// The vdev argument for a port, with the queue count filled in for drivers that take it
    /// as a device argument and were not given one.
    pub fn vdev_with_queues(&self, port: &PortConfig) -> String {
        let n = self.workers;
        if port.device.starts_with("net_af_packet") && !port.vdev.contains("qpairs=") {
            format!("{},qpairs={n}", port.vdev)
        } else if port.device.starts_with("net_af_xdp") && !port.vdev.contains("queue_count=") && n > 1 {
            format!("{},queue_count={n}", port.vdev)
        } else {
            port.vdev.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("t.toml"))
    }

    const GOOD: &str = r#"
workers = 2
idle_sleep_us = 50
stats_file = "/tmp/s.json"
[eal]
no_huge = true
memory_mb = 256
[[port]]
name = "wan"
vdev = "net_af_packet0,iface=wan0"
addresses = ["10.70.1.1/24"]
kernel_tap = "tap-wan"
"#;

    #[test]
    fn good_file_parses() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.workers, 2);
        assert_eq!(c.ports[0].device, "net_af_packet0");
        assert_eq!(c.ports[0].addresses[0].prefix(), 24);
        assert_eq!(c.vdev_with_queues(&c.ports[0]), "net_af_packet0,iface=wan0,qpairs=2");
        assert!(c.eal.no_huge);
    }

    fn err(s: &str) -> String {
        parse(s).unwrap_err().to_string()
    }

    #[test]
    fn worker_cpus_give_one_cpu_per_worker() {
        let port = "[[port]]\nname='a'\nvdev='net_ring0'\n";
        let c = parse(&format!("workers = 2\n[eal]\nworker_cpus = [3, 5]\n{port}")).unwrap();
        assert_eq!(c.eal.worker_cpus, vec![3, 5]);
        let e = err(&format!("workers = 2\n[eal]\nworker_cpus = [3]\n{port}"));
        assert!(e.contains("eal.worker_cpus: 1 CPUs for 2 workers"), "{e}");
        let e = err(&format!("workers = 2\n[eal]\nworker_cpus = [4, 4]\n{port}"));
        assert!(e.contains("CPU 4 is listed twice"), "{e}");
        assert!(parse(port).unwrap().eal.worker_cpus.is_empty());
    }

    #[test]
    fn errors_name_the_field_and_value() {
        assert!(err("workers = 0\n[[port]]\nname='a'\nvdev='net_ring0'").contains("workers: 0 is out of range"));
        let e = err("wrokers = 1");
        assert!(e.contains("t.toml") && e.contains("wrokers"), "{e}");
        let e = err("[[port]]\nname='a'\nvdev='ring0'");
        assert!(e.contains("port[0] (a).vdev") && e.contains("ring0"), "{e}");
        let e = err("[[port]]\nname='a'\nvdev='net_ring0'\naddresses=['10.0.0.300/24']");
        assert!(e.contains("addresses") && e.contains("10.0.0.300/24"), "{e}");
        let e = err("[[port]]\nname='a'\nvdev='net_ring0'\nkernel_tap='a-very-long-interface-name'");
        assert!(e.contains("kernel_tap"), "{e}");
        let e = err("[[port]]\nname='a'\nvdev='net_ring0'\n[[port]]\nname='a'\nvdev='net_ring1'");
        assert!(e.contains("is used by another port"), "{e}");
        assert!(err("").contains("no [[port]] section"));
        let e = err("workers = 'two'\n[[port]]\nname='a'\nvdev='net_ring0'");
        assert!(e.contains("line 1"), "{e}");
        let port = "[[port]]\nname='a'\nvdev='net_ring0'";
        let e = err(&format!("api_listen = '127.0.0.1:7000'\n{port}"));
        assert!(e.contains("api_listen: needs api_token"), "{e}");
        let e = err(&format!("metrics_listen = 'localhost'\n{port}"));
        assert!(e.contains("metrics_listen: \"localhost\" is not an address:port"), "{e}");
        let e = err(&format!("api_token = 'short'\n{port}"));
        assert!(e.contains("api_token"), "{e}");
        let c = parse(&format!("api_listen = '127.0.0.1:7000'\napi_token = '0123456789abcdef'\n{port}")).unwrap();
        assert_eq!(c.api_listen, Some("127.0.0.1:7000".parse().unwrap()));
        assert_eq!(c.api_tls, None);
        let tls = "api_listen = '127.0.0.1:7000'\napi_token = '0123456789abcdef'\n";
        let c = parse(&format!("{tls}api_tls_cert = '/c.pem'\napi_tls_key = '/k.pem'\n{port}")).unwrap();
        assert_eq!(c.api_tls, Some(ApiTls { cert: "/c.pem".into(), key: "/k.pem".into() }));
        assert!(err(&format!("{tls}api_tls_cert = '/c.pem'\n{port}")).contains("api_tls_cert: needs api_tls_key"));
        assert!(err(&format!("{tls}api_tls_key = '/k.pem'\n{port}")).contains("api_tls_key: needs api_tls_cert"));
        assert!(err(&format!("api_tls_cert = '/c.pem'\napi_tls_key = '/k.pem'\n{port}")).contains("api_tls_cert: needs api_listen"));
        assert_eq!(c.api_socket, PathBuf::from(DEFAULT_API_SOCKET));
        assert!(!c.api_socket_configured);
        assert_eq!((c.api_max_connections, c.api_idle_timeout), (256, Duration::from_secs(60)));
        let c = parse(&format!("api_max_connections = 16\napi_idle_timeout_s = 2\n{port}")).unwrap();
        assert_eq!((c.api_max_connections, c.api_idle_timeout), (16, Duration::from_secs(2)));
        let e = err(&format!("api_max_connections = 0\n{port}"));
        assert!(e.contains("api_max_connections: 0 is out of range 1..=65536"), "{e}");
        let e = err(&format!("api_max_connections = 70000\n{port}"));
        assert!(e.contains("api_max_connections: 70000 is out of range"), "{e}");
        let e = err(&format!("api_idle_timeout_s = 0\n{port}"));
        assert!(e.contains("api_idle_timeout_s: 0 s is out of range 1..=86400"), "{e}");
        let e = err(&format!("api_idle_timeout_s = -1\n{port}"));
        assert!(e.contains("api_idle_timeout_s"), "{e}");
    }

    #[test]
    fn synproxy_section() {
        let port = "[[port]]\nname='a'\nvdev='net_ring0'";
        assert_eq!(parse(port).unwrap().synproxy, fastpath::synproxy::SynProxyConf::default());
        let c = parse(&format!("{port}\n[synproxy]\nmss = 1400\nwscale = 9")).unwrap();
        assert_eq!((c.synproxy.mss, c.synproxy.wscale), (1400, Some(9)));
        assert_eq!(c.service_options().syn_proxy, c.synproxy);
        let e = err(&format!("{port}\n[synproxy]\ntimestamp = true"));
        assert!(e.starts_with("t.toml: synproxy.timestamp: SYN proxy runs connections without TCP timestamps"), "{e}");
        let e = err(&format!("{port}\n[synproxy]\nmss = 100"));
        assert_eq!(e, "t.toml: synproxy.mss: 100 is out of range 536..=65495");
        let e = err(&format!("{port}\n[synproxy]\nwindow = 0"));
        assert!(e.starts_with("t.toml: ") && e.contains("unknown field `window`"), "{e}");
    }

    #[test]
    fn pci_ports() {
        let c = parse("[[port]]\nname='wan'\npci='00:04.0'\n[[port]]\nname='lan'\npci='0000:00:05.0'\nkernel_tap='tap-lan'\nexception='virtio-user'").unwrap();
        assert_eq!((c.ports[0].pci.as_deref(), c.ports[0].device.as_str(), c.ports[0].vdev.as_str()), (Some("0000:00:04.0"), "0000:00:04.0", ""));
        assert_eq!(c.ports[0].exception, ExceptionSetting::Auto);
        assert_eq!(c.ports[1].exception, ExceptionSetting::VirtioUser);
        let e = err("[[port]]\nname='wan'\npci='0000:00:04.0'\nvdev='net_ring0'");
        assert_eq!(e, "t.toml: port[0] (wan).vdev/pci: give either vdev or pci, not both");
        let e = err("[[port]]\nname='wan'");
        assert!(e.starts_with("t.toml: port[0] (wan).vdev/pci: needs vdev"), "{e}");
        let e = err("[[port]]\nname='wan'\npci='0000:00:04'");
        assert!(e.starts_with("t.toml: port[0] (wan).pci: \"0000:00:04\" is not a PCI address"), "{e}");
        let e = err("[[port]]\nname='wan'\npci='0000:00:04.0'\n[[port]]\nname='lan'\npci='00:04.0'");
        assert_eq!(e, "t.toml: port[1] (lan).pci: device \"0000:00:04.0\" is used by another port");
        let e = err("[[port]]\nname='wan'\nvdev='net_ring0'\nexception='tap'");
        assert_eq!(e, "t.toml: port[0] (wan).exception: needs kernel_tap (the name of the kernel's interface)");
        let e = err("[[port]]\nname='wan'\nvdev='net_ring0'\nkernel_tap='t0'\nexception='kni'");
        assert!(e.contains("unknown variant `kni`") && e.contains("virtio-user"), "{e}");
        for (v, want) in [("tap", ExceptionSetting::Tap), ("auto", ExceptionSetting::Auto), ("virtio-user", ExceptionSetting::VirtioUser)] {
            let c = parse(&format!("[[port]]\nname='wan'\nvdev='net_ring0'\nkernel_tap='t0'\nexception='{v}'")).unwrap();
            assert_eq!(c.ports[0].exception, want);
        }
    }

    /// `--no-pci` unless a port is a PCI NIC; then an allow-list of exactly those NICs (the
    /// machine's other PCI devices, its own NIC among them, are never probed).
    #[test]
    fn eal_arguments_for_pci_ports() {
        let args = |s: &str| crate::daemon::eal_builder(&parse(s).unwrap()).args();
        let a = args("[eal]\nfile_prefix='t'\n[[port]]\nname='wan'\nvdev='net_ring0'");
        assert!(a.contains(&"--no-pci".to_owned()) && !a.contains(&"-a".to_owned()), "{a:?}");
        assert!(a.contains(&"--vdev=net_ring0".to_owned()), "{a:?}");
        let a = args("[eal]\nfile_prefix='t'\n[[port]]\nname='wan'\npci='0000:00:04.0'\n[[port]]\nname='lan'\nvdev='net_ring0'\n[[port]]\nname='x'\npci='00:05.0'");
        assert!(!a.contains(&"--no-pci".to_owned()), "{a:?}");
        let allowed: Vec<&str> = a.windows(2).filter(|w| w[0] == "-a").map(|w| w[1].as_str()).collect();
        assert_eq!(allowed, ["0000:00:04.0", "0000:00:05.0"]);
        assert_eq!(a.iter().filter(|x| x.starts_with("--vdev")).collect::<Vec<_>>(), ["--vdev=net_ring0"]);
    }

    /// Hardening: one IPv4 address on two ports was accepted (ARP for it answered on both).
    #[test]
    fn one_address_on_two_ports_is_refused() {
        let e = err("[[port]]\nname='wan'\nvdev='net_ring0'\naddresses=['10.0.0.1/24']\n[[port]]\nname='lan'\nvdev='net_ring1'\naddresses=['10.0.1.1/24', '10.0.0.1/32']");
        assert_eq!(e, "t.toml: port[1] (lan).addresses: 10.0.0.1 is also an address of port wan (an address belongs to one port)");
    }
}
