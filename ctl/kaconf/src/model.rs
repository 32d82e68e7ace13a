//! The typed configuration: what a keepalived.conf asks the director to do.
//!
//! Fields left out of the file hold keepalived's defaults (noted on each field). Positions
//! (`file`, `line`) say where an item was defined; compare two configurations by their
//! settings alone with [`Config::same_settings`].

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use ipnetwork::Ipv4Network;

use crate::error::Warning;

/// A whole keepalived.conf, includes resolved.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub global: GlobalDefs,
    pub local_address_groups: Vec<LocalAddressGroup>,
    /// Kept to write the configuration back; the services a `virtual_server group NAME`
    /// defines are already in [`Config::virtual_servers`], one per member.
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    /// Every service, those of `virtual_server group NAME` expanded: one per member address
    /// and port, each with that virtual_server's settings (and its file and line).
    pub virtual_servers: Vec<VirtualServer>,
    pub vrrp_instances: Vec<VrrpInstance>,
    pub vrrp_sync_groups: Vec<VrrpSyncGroup>,
    /// Keywords accepted without being acted on, in file order.
    pub warnings: Vec<Warning>,
}

/// `global_defs { ... }`: `router_id` and `lvs_sync_daemon` are modelled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GlobalDefs {
    pub router_id: Option<String>,
    /// LVS session sync; its `vrrp_instance` is defined in the same configuration.
    pub lvs_sync_daemon: Option<LvsSyncDaemon>,
}

/// LVS's sync id when none is given.
pub const DEFAULT_SYNCID: u8 = 255;
/// LVS's largest sync message (UDP payload) when none is given: a 1500-byte MTU less the IPv4
/// and UDP headers.
pub const DEFAULT_SYNC_MAXLEN: u16 = 1472;
/// LVS's sync port.
pub const DEFAULT_SYNC_PORT: u16 = 8848;
/// LVS's multicast TTL for sync messages.
pub const DEFAULT_SYNC_TTL: u8 = 1;
/// LVS's sync multicast group.
pub const DEFAULT_SYNC_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);

/// `lvs_sync_daemon INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N] [ttl N] [group ADDR]`
/// (keepalived 2.2, in `global_defs`): replicate sessions to the peer director. The daemon is
/// master (sends) while the VRRP instance is MASTER and backup (receives) otherwise. Options
/// left out are `None` and take LVS's defaults ([`LvsSyncDaemon::effective`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvsSyncDaemon {
    /// Where sync messages leave and arrive.
    pub interface: String,
    /// The `vrrp_instance` whose state decides master or backup.
    pub vrrp_instance: String,
    /// `id`, 0..=255; default [`DEFAULT_SYNCID`]. A backup with 0 accepts every sync id.
    pub syncid: Option<u8>,
    /// `maxlen`, 80..=65507 bytes of UDP payload (80: the largest sync record and the header); default [`DEFAULT_SYNC_MAXLEN`].
    pub maxlen: Option<u16>,
    /// `port`, 1..=65535; default [`DEFAULT_SYNC_PORT`].
    pub port: Option<u16>,
    /// `ttl`, 1..=255; default [`DEFAULT_SYNC_TTL`].
    pub ttl: Option<u8>,
    /// `group`, an IPv4 multicast address; default [`DEFAULT_SYNC_GROUP`].
    pub group: Option<Ipv4Addr>,
}

impl LvsSyncDaemon {
    /// `(syncid, maxlen, port, ttl, group)` with LVS's defaults in place of what was left out.
    pub fn effective(&self) -> (u8, u16, u16, u8, Ipv4Addr) {
        (
            self.syncid.unwrap_or(DEFAULT_SYNCID),
            self.maxlen.unwrap_or(DEFAULT_SYNC_MAXLEN),
            self.port.unwrap_or(DEFAULT_SYNC_PORT),
            self.ttl.unwrap_or(DEFAULT_SYNC_TTL),
            self.group.unwrap_or(DEFAULT_SYNC_GROUP),
        )
    }
}

/// `local_address_group <name> { <ip> [<ifname>] ... }`: FNAT source addresses (DPVS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddressGroup {
    pub name: String,
    /// In file order; a range `10.0.0.1-10` is expanded to its addresses.
    pub addrs: Vec<LocalAddr>,
    pub file: PathBuf,
    pub line: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddr {
    pub ip: Ipv4Addr,
    /// The port that owns the address (`dpdk0`), as DPVS writes it.
    pub ifname: Option<String>,
}

/// `virtual_server_group <name> { <vip>[-<last octet>] <port> ... }`: services that share one
/// `virtual_server group <name> { ... }` (keepalived). `fwmark` members are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServerGroup {
    pub name: String,
    /// In file order; at least one.
    pub entries: Vec<VsgEntry>,
    pub file: PathBuf,
    pub line: u32,
}

/// One line of a `virtual_server_group`: addresses `first..=last` (they differ in the last
/// octet only: keepalived's `10.0.0.1-10`) on `port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VsgEntry {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
    pub port: u16,
}

impl VsgEntry {
    /// The entry's (address, port) pairs, in address order.
    pub fn services(&self) -> impl Iterator<Item = (Ipv4Addr, u16)> + '_ {
        let [a, b, c, start] = self.first.octets();
        let end = self.last.octets()[3];
        (start..=end).map(move |d| (Ipv4Addr::new(a, b, c, d), self.port))
    }
}

impl VirtualServerGroup {
    /// Every (address, port) of the group, in file order.
    pub fn services(&self) -> Vec<(Ipv4Addr, u16)> {
        self.entries.iter().flat_map(VsgEntry::services).collect()
    }
}

/// Protocols, schedulers and forwarding modes: one definition shared with the API and the data
/// plane.
pub use lb_model::{ForwardMode, Protocol, Scheduler};

/// Spellings shared by the parser and the writer: the first one of a value is the written one.
pub(crate) const PROTOCOLS: &[(&str, Protocol)] = Protocol::SPELLINGS;
pub(crate) const LB_ALGOS: &[(&str, Scheduler)] = Scheduler::KEEPALIVED_SPELLINGS;
pub(crate) const LB_KINDS: &[(&str, ForwardMode)] = ForwardMode::SPELLINGS;

/// The written spelling of `value` in `table`.
pub(crate) fn spelling<T: PartialEq + Copy>(table: &[(&'static str, T)], value: T) -> &'static str {
    table
        .iter()
        .find(|(_, v)| *v == value)
        .map_or("?", |(s, _)| s)
}

/// keepalived's `persistence_timeout` with no value.
pub const DEFAULT_PERSISTENCE_TIMEOUT: u32 = 360;
/// keepalived's `delay_loop` when none is given.
pub const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);

/// `virtual_server <vip> <port> { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualServer {
    pub vip: Ipv4Addr,
    pub port: u16,
    /// Default TCP, as keepalived.
    pub protocol: Protocol,
    /// Required: we do not guess a scheduler.
    pub lb_algo: Scheduler,
    /// Required: keepalived would default to NAT, which is never what a DPVS user meant.
    pub lb_kind: ForwardMode,
    /// Seconds; the keyword alone means [`DEFAULT_PERSISTENCE_TIMEOUT`].
    pub persistence_timeout: Option<u32>,
    /// Netmask grouping clients for persistence.
    pub persistence_granularity: Option<Ipv4Addr>,
    /// Must name a [`LocalAddressGroup`] of the same config.
    pub laddr_group_name: Option<String>,
    /// Health-check interval; default [`DEFAULT_DELAY_LOOP`].
    pub delay_loop: Duration,
    pub alpha: bool,
    pub omega: bool,
    /// Default 1.
    pub quorum: u32,
    /// Default 0.
    pub hysteresis: u32,
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    /// Seconds.
    pub tcp_draining_timeout: Option<u32>,
    pub flow_control_cps: Option<u32>,
    pub flow_control_interval: Option<u32>,
    pub flow_control_pc: Option<u32>,
    /// Clients allowed (empty: all).
    pub client_ipaddr_allow: Vec<Ipv4Network>,
    /// Clients refused.
    pub client_ipaddr_exclude: Vec<Ipv4Network>,
    pub checker_off: bool,
    pub checker_merge: bool,
    pub sorry_server: Option<(Ipv4Addr, u16)>,
    /// `syn_proxy` (Alibaba's LVS and DPVS): the director answers SYNs with cookies and opens
    /// the real server's connection only for clients that complete the handshake. TCP with
    /// FNAT or NAT only (checked when parsing).
    pub syn_proxy: bool,
    /// `sh-port` / `mh-port` (IPVS's second scheduler flag, `flag-2`): the sh, mh and consh
    /// schedulers hash the client's port with its address.
    pub hash_port: bool,
    pub real_servers: Vec<RealServer>,
    pub file: PathBuf,
    pub line: u32,
}

/// `real_server <ip> <port> { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct RealServer {
    pub ip: Ipv4Addr,
    pub port: u16,
    /// 0..=65535, default 1.
    pub weight: u32,
    /// Set weight 0 instead of removing the server when its check fails. Set here, or for
    /// all servers by the virtual server's `inhibit_on_failure`.
    pub inhibit_on_failure: bool,
    pub check: Option<HealthCheck>,
    pub file: PathBuf,
    pub line: u32,
}

/// keepalived's `connect_timeout` default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// keepalived's `retry` default (`MISC_CHECK`: [`DEFAULT_MISC_RETRY`]).
pub const DEFAULT_RETRY: u32 = 1;
/// keepalived's `retry` default for `MISC_CHECK`.
pub const DEFAULT_MISC_RETRY: u32 = 0;
/// keepalived's `delay_before_retry` default (`HTTP_GET`/`SSL_GET`: [`DEFAULT_HTTP_DELAY_BEFORE_RETRY`]).
pub const DEFAULT_DELAY_BEFORE_RETRY: Duration = Duration::from_secs(1);
/// keepalived's `delay_before_retry` default for `HTTP_GET` and `SSL_GET`.
pub const DEFAULT_HTTP_DELAY_BEFORE_RETRY: Duration = Duration::from_secs(3);

/// One real server's health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthCheck {
    /// `TCP_CHECK`: a connect succeeds.
    Tcp(ConnectOpts),
    /// `HTTP_GET`: each URL answers as expected.
    Http(HttpCheck),
    /// `SSL_GET`: as `HTTP_GET`, over TLS.
    Ssl(HttpCheck),
    /// `UDP_CHECK`: a datagram gets no ICMP error (or, with `require_reply`, an answer).
    Udp(UdpCheck),
    /// `MISC_CHECK`: a script exits 0 (or, with `misc_dynamic`, 2..=255 for a new weight).
    Misc(MiscCheck),
}

impl HealthCheck {
    /// The keyword that introduces this check.
    pub fn keyword(&self) -> &'static str {
        match self {
            HealthCheck::Tcp(_) => "TCP_CHECK",
            HealthCheck::Http(_) => "HTTP_GET",
            HealthCheck::Ssl(_) => "SSL_GET",
            HealthCheck::Udp(_) => "UDP_CHECK",
            HealthCheck::Misc(_) => "MISC_CHECK",
        }
    }

    /// Connection settings, for the checks that connect.
    pub fn connect(&self) -> Option<&ConnectOpts> {
        match self {
            HealthCheck::Tcp(c) => Some(c),
            HealthCheck::Http(h) | HealthCheck::Ssl(h) => Some(&h.connect),
            HealthCheck::Udp(u) => Some(&u.connect),
            HealthCheck::Misc(_) => None,
        }
    }

    /// Timing, start state and notify scripts: what every check has.
    pub fn common(&self) -> &CheckCommon {
        match self {
            HealthCheck::Tcp(c) => &c.common,
            HealthCheck::Http(h) | HealthCheck::Ssl(h) => &h.connect.common,
            HealthCheck::Udp(u) => &u.connect.common,
            HealthCheck::Misc(m) => &m.common,
        }
    }

    pub(crate) fn common_mut(&mut self) -> &mut CheckCommon {
        match self {
            HealthCheck::Tcp(c) => &mut c.common,
            HealthCheck::Http(h) | HealthCheck::Ssl(h) => &mut h.connect.common,
            HealthCheck::Udp(u) => &mut u.connect.common,
            HealthCheck::Misc(m) => &mut m.common,
        }
    }
}

/// What every check has, resolved: a value left out of the check comes from its real server,
/// then its virtual server, then keepalived's default (as keepalived 2.2 does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckCommon {
    /// Failed attempts retried before the server is marked down (`nb_get_retry` is the older
    /// name). Default [`DEFAULT_RETRY`], [`DEFAULT_MISC_RETRY`] for `MISC_CHECK`.
    pub retry: u32,
    /// Default [`DEFAULT_DELAY_BEFORE_RETRY`], [`DEFAULT_HTTP_DELAY_BEFORE_RETRY`] for HTTP/SSL.
    pub delay_before_retry: Duration,
    /// Interval between checks; the virtual server's `delay_loop` unless overridden.
    pub delay_loop: Duration,
    /// The first check runs after a random delay up to this; default: `delay_loop`.
    pub warmup: Duration,
    /// Start down until a check passes (`alpha` on the check, real or virtual server).
    pub alpha: bool,
    /// Log every failed attempt, not just state changes.
    pub log_all_failures: bool,
    /// Real server's `notify_up`: run when the server comes up.
    pub notify_up: Option<String>,
    /// Real server's `notify_down`: run when the server goes down.
    pub notify_down: Option<String>,
}

impl Default for CheckCommon {
    fn default() -> Self {
        CheckCommon {
            retry: DEFAULT_RETRY,
            delay_before_retry: DEFAULT_DELAY_BEFORE_RETRY,
            delay_loop: DEFAULT_DELAY_LOOP,
            warmup: DEFAULT_DELAY_LOOP,
            alpha: false,
            log_all_failures: false,
            notify_up: None,
            notify_down: None,
        }
    }
}

/// Settings shared by the checks that connect. Values left out come from the real server,
/// then the virtual server, then keepalived's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOpts {
    /// Address to probe (`connect_ip`); `None`: the real server's address.
    pub connect_ip: Option<Ipv4Addr>,
    /// Port to probe; `None`: the real server's port.
    pub connect_port: Option<u16>,
    /// Source address of the probe (`bindto`).
    pub bindto: Option<Ipv4Addr>,
    /// Source port of the probe (`bind_port`).
    pub bind_port: Option<u16>,
    pub connect_timeout: Duration,
    pub common: CheckCommon,
}

impl Default for ConnectOpts {
    fn default() -> Self {
        ConnectOpts {
            connect_ip: None,
            connect_port: None,
            bindto: None,
            bind_port: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            common: CheckCommon::default(),
        }
    }
}

/// `http_protocol`: the request line's version, and whether `Connection: close` is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HttpProtocol {
    /// `1.0` (keepalived's default).
    #[default]
    Http10,
    /// `1.1`: HTTP/1.1 with `Connection: close`.
    Http11,
    /// `1.0C`: HTTP/1.0 with `Connection: close`.
    Http10Close,
}

pub(crate) const HTTP_PROTOCOLS: &[(&str, HttpProtocol)] = &[
    ("1.0", HttpProtocol::Http10),
    ("1.1", HttpProtocol::Http11),
    ("1.0C", HttpProtocol::Http10Close),
];

impl fmt::Display for HttpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(spelling(HTTP_PROTOCOLS, *self))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// At least one.
    pub urls: Vec<Url>,
    pub connect: ConnectOpts,
    /// `Host:` header; a url's own `virtualhost` wins. Set on the check, or inherited from
    /// the real server, then the virtual server.
    pub virtualhost: Option<String>,
    pub http_protocol: HttpProtocol,
    /// `SSL_GET`: send the host name (SNI).
    pub enable_sni: bool,
}

/// `url { path ... status_code ... digest ... virtualhost ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub path: String,
    /// 100..=599.
    pub status_code: Option<u16>,
    /// MD5 of the body, 32 hex digits (as written).
    pub digest: Option<String>,
    /// `Host:` header for this url (wins over the check's).
    pub virtualhost: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpCheck {
    pub connect: ConnectOpts,
    /// DPVS's `ping_check_off`: do not ping before probing.
    pub ping_check_off: bool,
    /// Datagram to send (`payload`, written in hex); `None`: an empty datagram.
    pub payload: Option<Vec<u8>>,
    /// Only an answer proves the server up (without it, only an ICMP error fails).
    pub require_reply: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiscCheck {
    /// The command line to run.
    pub misc_path: String,
    /// `None`: the virtual server's `delay_loop` (keepalived's rule).
    pub misc_timeout: Option<Duration>,
    /// `misc_dynamic`: exit 0 up, 1 down, 2..=255 up with weight code - 2.
    pub misc_dynamic: bool,
    pub common: CheckCommon,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpState {
    Master,
    Backup,
}

/// VRRPv2 authentication; keepalived's `AH` is refused by the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    /// Simple text password (RFC 2338), carried in the advert's 8 bytes of auth data.
    Pass,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    pub auth_type: AuthType,
    /// 1..=8 bytes (the VRRPv2 field).
    pub auth_pass: String,
}

/// A `virtual_ipaddress` line: `<ip>[/<len>] [dev <ifname>] [label <label>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualIp {
    /// A bare address is a /32.
    pub addr: Ipv4Network,
    pub dev: Option<String>,
    pub label: Option<String>,
}

/// A `track_interface` line: `<name> [weight <n>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub name: String,
    /// -254..=254. `None`: the instance goes to FAULT while the interface is down; `Some(w)`:
    /// it stays up and `w` is added to its priority while the interface is up (w > 0) or down
    /// (w < 0), as keepalived does.
    pub weight: Option<i32>,
}

/// keepalived's `priority` default.
pub const DEFAULT_PRIORITY: u8 = 100;
/// keepalived's `advert_int` default, in seconds.
pub const DEFAULT_ADVERT_INT: f32 = 1.0;
/// keepalived's VRRP version when neither the instance nor `global_defs` names one.
pub const DEFAULT_VRRP_VERSION: u8 = 2;
/// keepalived's `garp_master_delay` default (`VRRP_GARP_DELAY`).
pub const DEFAULT_GARP_MASTER_DELAY: Duration = Duration::from_secs(5);
/// keepalived's `garp_master_repeat` default (`VRRP_GARP_REP`).
pub const DEFAULT_GARP_MASTER_REPEAT: u32 = 5;
/// keepalived's `garp_master_refresh_repeat` default (`VRRP_GARP_REFRESH_REP`).
pub const DEFAULT_GARP_MASTER_REFRESH_REPEAT: u32 = 1;

/// `vrrp_instance <name> { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpInstance {
    pub name: String,
    /// Initial state; default BACKUP.
    pub state: VrrpState,
    pub interface: String,
    /// 1..=255.
    pub virtual_router_id: u8,
    /// 1..=255; default [`DEFAULT_PRIORITY`], or 255 (address owner) with `state MASTER`
    /// as keepalived 2.2 does.
    pub priority: u8,
    /// Seconds, default [`DEFAULT_ADVERT_INT`]: whole seconds 1..=255 for VRRPv2,
    /// centiseconds 0.01..=40.95 for VRRPv3. See [`VrrpInstance::advert_centis`].
    pub advert_int: f32,
    /// `version 2|3`; `None`: [`DEFAULT_VRRP_VERSION`].
    pub version: Option<u8>,
    pub nopreempt: bool,
    pub preempt_delay: Option<Duration>,
    /// VRRPv2 only.
    pub authentication: Option<Authentication>,
    pub virtual_ipaddress: Vec<VirtualIp>,
    /// Moved with the instance but not carried in adverts.
    pub virtual_ipaddress_excluded: Vec<VirtualIp>,
    /// Source of adverts (`unicast_src_ip`); `None`: the interface's primary address.
    pub unicast_src_ip: Option<Ipv4Addr>,
    /// `mcast_src_ip`: keepalived's older name for the advert source; the same setting as
    /// `unicast_src_ip` (both may not be given).
    pub mcast_src_ip: Option<Ipv4Addr>,
    /// Adverts go to these peers instead of 224.0.0.18.
    pub unicast_peer: Vec<Ipv4Addr>,
    pub track_interface: Vec<Track>,
    /// Gratuitous ARPs again this long after becoming master; `None`:
    /// [`DEFAULT_GARP_MASTER_DELAY`]; zero: no second burst.
    pub garp_master_delay: Option<Duration>,
    /// Gratuitous ARPs per address per burst, >= 1; `None`: [`DEFAULT_GARP_MASTER_REPEAT`].
    pub garp_master_repeat: Option<u32>,
    /// While master, a burst every this long; `None` or zero: none.
    pub garp_master_refresh: Option<Duration>,
    /// Gratuitous ARPs per refresh burst, >= 1; `None`: [`DEFAULT_GARP_MASTER_REFRESH_REPEAT`].
    pub garp_master_refresh_repeat: Option<u32>,
    pub notify_master: Option<String>,
    pub notify_backup: Option<String>,
    pub notify_fault: Option<String>,
    pub notify_stop: Option<String>,
    /// Run with `INSTANCE <name> <STATE> <priority>` appended on every transition.
    pub notify: Option<String>,
    pub file: PathBuf,
    pub line: u32,
}

impl VrrpInstance {
    /// The VRRP version this instance speaks.
    pub fn version(&self) -> u8 {
        self.version.unwrap_or(DEFAULT_VRRP_VERSION)
    }

    /// `advert_int` in centiseconds (the parser allows two decimals at most).
    pub fn advert_centis(&self) -> u16 {
        // The parser bounds advert_int to 0.01..=255 with two decimals: this is exact.
        let c = (f64::from(self.advert_int) * 100.0).round();
        if c <= 0.0 {
            1
        } else if c >= 25_500.0 {
            25_500
        } else {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let c = c as u16;
            c
        }
    }

    /// The advert source set by `unicast_src_ip` or `mcast_src_ip`.
    pub fn src_ip(&self) -> Option<Ipv4Addr> {
        self.unicast_src_ip.or(self.mcast_src_ip)
    }
}

/// `vrrp_sync_group <name> { group { <instance> ... } notify_* }`: instances that change
/// state together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpSyncGroup {
    pub name: String,
    /// Names of `vrrp_instance`s, each in at most one group; at least one.
    pub group: Vec<String>,
    pub notify_master: Option<String>,
    pub notify_backup: Option<String>,
    pub notify_fault: Option<String>,
    pub notify_stop: Option<String>,
    pub notify: Option<String>,
    pub file: PathBuf,
    pub line: u32,
}

impl Config {
    /// This configuration without positions or warnings: what it asks for, not where.
    pub fn without_positions(&self) -> Config {
        let mut c = self.clone();
        c.warnings.clear();
        for g in &mut c.local_address_groups {
            (g.file, g.line) = (PathBuf::new(), 0);
        }
        for g in &mut c.virtual_server_groups {
            (g.file, g.line) = (PathBuf::new(), 0);
        }
        for vs in &mut c.virtual_servers {
            (vs.file, vs.line) = (PathBuf::new(), 0);
            for rs in &mut vs.real_servers {
                (rs.file, rs.line) = (PathBuf::new(), 0);
            }
        }
        for vi in &mut c.vrrp_instances {
            (vi.file, vi.line) = (PathBuf::new(), 0);
        }
        for g in &mut c.vrrp_sync_groups {
            (g.file, g.line) = (PathBuf::new(), 0);
        }
        c
    }

    /// True when both ask for the same thing, wherever it was written.
    pub fn same_settings(&self, other: &Config) -> bool {
        self.without_positions() == other.without_positions()
    }

    /// The VRRP instance called `name`.
    pub fn vrrp_instance(&self, name: &str) -> Option<&VrrpInstance> {
        self.vrrp_instances.iter().find(|v| v.name == name)
    }

    /// The virtual server group called `name`.
    pub fn virtual_server_group(&self, name: &str) -> Option<&VirtualServerGroup> {
        self.virtual_server_groups.iter().find(|g| g.name == name)
    }

    /// The local address group called `name`.
    pub fn local_address_group(&self, name: &str) -> Option<&LocalAddressGroup> {
        self.local_address_groups.iter().find(|g| g.name == name)
    }
}
