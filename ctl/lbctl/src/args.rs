//! Command lines: ipvsadm's spellings (`-A -t vip:port -s rr`, `-Ln`, `-S`, `-R`, `--set`)
//! and noun-verb commands (`lbctl laddr add ...`), parsed into a [`Command`] without I/O.

use lb_api::pb::{self, ForwardMode, Protocol};

use crate::names;

/// A command line that cannot be run; exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage<T>(msg: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(msg.into()))
}

/// How a listing is shown (`-L` options).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListView {
    #[default]
    Services,
    Stats,
    Rate,
    Thresholds,
    Connections,
    Timeout,
}

/// Service settings given on a command line; `None` means "not given".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceOpts {
    pub key: pb::ServiceKey,
    pub scheduler: Option<pb::Scheduler>,
    /// `-p [timeout]`; `Some(None)` for `--no-persistent`.
    pub persistence: Option<Option<u32>>,
    pub netmask: Option<String>,
    pub forward: Option<ForwardMode>,
    pub laddr_group: Option<String>,
    pub cps: Option<u32>,
    pub cps_interval: Option<u32>,
    pub max_conns: Option<u32>,
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub draining_timeout: Option<u32>,
    pub sorry_server: Option<String>,
    /// `-j|--synproxy enable|disable` (DPVS's ipvsadm).
    pub syn_proxy: Option<bool>,
    /// `-b|--sched-flags sh-port|mh-port|flag-2` (ipvsadm 1.31): the source port joins the hash.
    pub hash_port: Option<bool>,
}

/// A real server on a command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RsOpts {
    pub service: pb::ServiceKey,
    pub addr: String,
    pub port: u32,
    pub weight: Option<u32>,
    pub forward: Option<ForwardMode>,
}

/// Which client list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessList {
    Allow,
    Deny,
}

/// Add, delete or show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Del,
    List,
}

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    List { view: ListView, service: Option<pb::ServiceKey> },
    AddService(ServiceOpts),
    EditService(ServiceOpts),
    DeleteService(pb::ServiceKey),
    Clear,
    AddRs(RsOpts),
    EditRs(RsOpts),
    DeleteRs(RsOpts),
    /// `rs list`: real servers with their health.
    RsList { service: Option<pb::ServiceKey> },
    Zero,
    /// `-S`: rules on stdout.
    SaveRules,
    /// `-R`: rules from stdin.
    Restore,
    SetTimeouts(u32, u32, u32),
    LaddrList,
    LaddrAdd { to: LaddrOf, addrs: Vec<String>, ifname: Option<String> },
    LaddrDel { from: LaddrOf, addrs: Vec<String> },
    /// `-G|--get-laddr [-t|-u vip:port]`: local addresses per FNAT service, DPVS's layout.
    LaddrGet { service: Option<pb::ServiceKey> },
    /// Sessions; `true` for ipvsadm's `-Lc` layout.
    Sessions(pb::ListSessionsRequest, bool),
    Stats { services: bool },
    Access { list: AccessList, op: Op, service: Option<pb::ServiceKey>, cidrs: Vec<String> },
    FlowSet { service: pb::ServiceKey, cps: Option<u32>, interval: Option<u32>, max_conns: Option<u32> },
    FlowList,
    Reload,
    Info,
    /// `vrrp`: VRRP instances and address ownership.
    Vrrp,
    /// `--start-daemon`: options left out (0, empty, no syncid) take LVS's defaults in lbd.
    StartDaemon(pb::SyncDaemon),
    /// `--stop-daemon`; `Unspecified` (`sync stop` without a role) stops both.
    StopDaemon(pb::SyncRole),
    /// `-L --daemon`.
    ListDaemons,
    /// keepalived.conf text of the running configuration.
    SaveConf,
    Top { once: bool, interval_s: u32 },
    Help,
    Version,
}

/// Whose local addresses: a named group (`laddr add GROUP ...`) or a service's own (DPVS's
/// `-P|--add-laddr -t vip:port -z addr`).
#[derive(Debug, Clone, PartialEq)]
pub enum LaddrOf {
    Group(String),
    Service(pb::ServiceKey),
}

/// Options that apply to every command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Globals {
    pub socket: Option<String>,
    pub server: Option<String>,
    pub token: Option<String>,
    /// `--ca FILE`: TLS to `--server` with this CA (PEM).
    pub ca: Option<String>,
    pub json: bool,
    pub numeric: bool,
    /// `--exact`: whole numbers in `--stats` / `--rate` (ipvsadm's K/M/G/T otherwise).
    pub exact: bool,
    /// `--nosort`: listings in lbd's order, not ipvsadm's sorted one.
    pub nosort: bool,
    /// `--persistent-conn`: the PersistConn column in `-L`, the engine columns in `-Lc`.
    pub persistent_conn: bool,
}

/// Flags that take no value and may be bundled (`-Ln`, `-lnc`).
const BUNDLE: &str = "LlnSRCcZgmbiAEDaed";

fn expand(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for a in args {
        let b = a.as_bytes();
        if b.len() > 2 && b[0] == b'-' && b[1] != b'-' && a[1..].chars().all(|c| BUNDLE.contains(c)) {
            out.extend(a[1..].chars().map(|c| format!("-{c}")));
        } else if let Some((k, v)) = a.split_once('=').filter(|(k, _)| k.starts_with("--")) {
            out.push(k.to_owned());
            out.push(v.to_owned());
        } else {
            out.push(a.clone());
        }
    }
    out
}

struct Tokens {
    v: Vec<String>,
    i: usize,
}

impl Tokens {
    fn value(&mut self, opt: &str) -> Result<String, UsageError> {
        self.i += 1;
        match self.v.get(self.i) {
            Some(v) => Ok(v.clone()),
            None => usage(format!("option {opt} needs a value")),
        }
    }
    fn number(&mut self, opt: &str) -> Result<u32, UsageError> {
        let v = self.value(opt)?;
        v.parse().or_else(|_| usage(format!("option {opt}: {v:?} is not a number")))
    }
    /// Whether the next token satisfies `f` (without taking it).
    fn next_is(&self, f: impl Fn(&str) -> bool) -> bool {
        self.v.get(self.i + 1).is_some_and(|v| f(v))
    }
    /// The next token if it is a number (for `-p [timeout]`).
    fn optional_number(&mut self) -> Option<u32> {
        let n = self.v.get(self.i + 1)?.parse().ok()?;
        self.i += 1;
        Some(n)
    }
}

/// ipvsadm's scheduler flags (`-b`): sh-fallback, sh-port, mh-fallback, mh-port, flag-1..3.
const SCHED_FLAGS: &[&str] = &["sh-fallback", "sh-port", "mh-fallback", "mh-port", "flag-1", "flag-2", "flag-3"];

fn is_sched_flags(v: &str) -> bool {
    v.split(',').all(|f| SCHED_FLAGS.contains(&f))
}

/// `-b LIST`: whether the source port joins the hash. The fallback flags change nothing, as
/// in keepalived.conf (kaconf's VS_IGNORED says why): lbd's hash tables hold only available
/// servers, so a client always falls back.
fn sched_flags(opt: &str, v: &str) -> Result<bool, UsageError> {
    let mut port = false;
    for f in v.split(',') {
        match f {
            "sh-port" | "mh-port" | "flag-2" => port = true,
            "sh-fallback" | "mh-fallback" | "flag-1" | "flag-3" => {}
            other => return usage(format!("{opt} {other:?}: scheduler flags are {}", SCHED_FLAGS.join(", "))),
        }
    }
    Ok(port)
}

/// The ipvsadm command flags.
fn ipvs_command(a: &str) -> Option<&'static str> {
    Some(match a {
        "-A" | "--add-service" => "-A",
        "-E" | "--edit-service" => "-E",
        "-D" | "--delete-service" => "-D",
        "-C" | "--clear" => "-C",
        "-a" | "--add-server" => "-a",
        "-e" | "--edit-server" => "-e",
        "-d" | "--delete-server" => "-d",
        "-L" | "-l" | "--list" => "-L",
        "-Z" | "--zero" => "-Z",
        "-S" | "--save" => "-S",
        "-R" | "--restore" => "-R",
        "--set" => "--set",
        "--start-daemon" => "--start-daemon",
        "-P" | "--add-laddr" => "-P",
        "-Q" | "--del-laddr" => "-Q",
        "-G" | "--get-laddr" => "-G",
        "--stop-daemon" => "--stop-daemon",
        "-h" | "--help" => "-h",
        "-V" | "--version" => "-V",
        _ => return None,
    })
}

#[derive(Default)]
struct Seen {
    cmd: Option<&'static str>,
    svc: Option<pb::ServiceKey>,
    so: ServiceOpts,
    rs: Option<String>,
    weight: Option<u32>,
    view: Option<ListView>,
    set: Option<(u32, u32, u32)>,
    words: Vec<String>,
    sessions: pb::ListSessionsRequest,
    ifname: Option<String>,
    /// `-z|--laddr`: DPVS's local address for `-P` / `-Q`.
    laddrs: Vec<String>,
    once: bool,
    interval: Option<u32>,
    services: bool,
    /// `--daemon`: `-L` lists the sync daemons.
    daemon: bool,
    role: Option<pb::SyncRole>,
    sync: pb::SyncDaemon,
    /// The first `--start-daemon` option given, to refuse it elsewhere.
    sync_opt: Option<String>,
}

/// `--start-daemon`'s and `--stop-daemon`'s value.
fn role(opt: &str, v: &str) -> Result<pb::SyncRole, UsageError> {
    crate::sync::role_from_name(v).ok_or_else(|| UsageError(format!("{opt} {v:?}: the roles are master and backup")))
}

/// A `--start-daemon` number option, checked against LVS's range.
fn sync_number(t: &mut Tokens, opt: &str, min: u32, max: u32) -> Result<u32, UsageError> {
    let n = t.number(opt)?;
    if !(min..=max).contains(&n) {
        return usage(format!("{opt} {n}: not in {min}..={max}"));
    }
    Ok(n)
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<(Globals, Command), UsageError> {
    let mut t = Tokens { v: expand(args), i: 0 };
    let mut g = Globals::default();
    let mut s = Seen::default();
    while t.i < t.v.len() {
        let a = t.v[t.i].clone();
        if let Some(c) = ipvs_command(&a) {
            if let Some(prev) = s.cmd.filter(|p| *p != c) {
                return usage(format!("{prev} and {a} cannot be combined"));
            }
            s.cmd = Some(c);
            if c == "--set" {
                s.set = Some((t.number("--set")?, t.number("--set")?, t.number("--set")?));
            }
            if c == "--start-daemon" || c == "--stop-daemon" {
                s.role = Some(role(c, &t.value(c)?)?);
            }
            t.i += 1;
            continue;
        }
        let fwd = |f| Some(f);
        match a.as_str() {
            "--socket" => g.socket = Some(t.value(&a)?),
            "--server" => g.server = Some(t.value(&a)?),
            "--token" => g.token = Some(t.value(&a)?),
            "--ca" => g.ca = Some(t.value(&a)?),
            "-o" | "--output" => {
                g.json = match t.value(&a)?.as_str() {
                    "json" => true,
                    "table" | "text" => false,
                    other => return usage(format!("-o {other:?}: the formats are json and table")),
                }
            }
            "-n" | "--numeric" => g.numeric = true,
            "-t" | "--tcp-service" | "-u" | "--udp-service" => {
                let v = t.value(&a)?;
                let proto = if a.starts_with("-t") || a == "--tcp-service" { Protocol::Tcp } else { Protocol::Udp };
                if s.svc.is_some() {
                    return usage("only one service (-t or -u) may be given");
                }
                s.svc = Some(names::service_key(&v, proto).map_err(|e| UsageError(format!("{a} {v}: {e}")))?);
            }
            "-f" | "--fwmark-service" => return usage("firewall-mark services (-f) are not supported"),
            "-s" | "--scheduler" => {
                let v = t.value(&a)?;
                s.so.scheduler = Some(lb_api::scheduler_from_name(&v).ok_or_else(|| UsageError(format!("-s {v:?}: unknown scheduler ({})", lb_api::lb_model::Scheduler::ALL.map(|s| s.name()).join(", "))))?);
            }
            "-p" | "--persistent" => s.so.persistence = Some(Some(t.optional_number().unwrap_or(names::DEFAULT_PERSISTENCE))),
            "--no-persistent" => s.so.persistence = Some(None),
            "-M" | "--netmask" => s.so.netmask = Some(t.value(&a)?),
            "-r" | "--real-server" => s.rs = Some(t.value(&a)?),
            "-w" | "--weight" => s.weight = Some(t.number(&a)?),
            "-g" | "--gatewaying" => s.so.forward = fwd(ForwardMode::Dr),
            "-m" | "--masquerading" => s.so.forward = fwd(ForwardMode::Nat),
            // ipvsadm 1.31's -b takes scheduler flags; DPVS's -b (no value) is FNAT.
            "-b" | "--sched-flags" if a == "--sched-flags" || t.next_is(is_sched_flags) => {
                let v = t.value(&a)?;
                s.so.hash_port = Some(sched_flags(&a, &v)?);
            }
            "-b" | "--fullnat" => s.so.forward = fwd(ForwardMode::Fnat),
            "-i" | "--ipip" => return usage("-i (IP-in-IP tunnelling) is not supported; use -b (FNAT), -g (DR) or -m (NAT)"),
            "-x" | "--u-threshold" | "-y" | "--l-threshold" => return usage(format!("{a}: per-server thresholds are not supported; use --max-conns on the service")),
            "--forward" => {
                let v = t.value(&a)?;
                s.so.forward = Some(lb_api::forward_from_name(&v).ok_or_else(|| UsageError(format!("--forward {v:?}: use fnat, dr or nat")))?);
            }
            "--laddr-group" => s.so.laddr_group = Some(t.value(&a)?),
            "--cps" => s.so.cps = Some(t.number(&a)?),
            "--cps-interval" | "--interval-s" => s.so.cps_interval = Some(t.number(&a)?),
            "--max-conns" => s.so.max_conns = Some(t.number(&a)?),
            "--allow" => s.so.allow.get_or_insert_with(Vec::new).push(t.value(&a)?),
            "--deny" => s.so.deny.get_or_insert_with(Vec::new).push(t.value(&a)?),
            "--draining-timeout" => s.so.draining_timeout = Some(t.number(&a)?),
            "--sorry-server" => s.so.sorry_server = Some(t.value(&a)?),
            "-j" | "--synproxy" => {
                s.so.syn_proxy = Some(match t.value(&a)?.as_str() {
                    "enable" => true,
                    "disable" => false,
                    other => return usage(format!("{a} {other:?}: the SYN proxy switch is enable or disable")),
                });
            }
            "-c" | "--connection" => s.view = Some(ListView::Connections),
            "--stats" => s.view = Some(ListView::Stats),
            "--rate" => s.view = Some(ListView::Rate),
            "--thresholds" => s.view = Some(ListView::Thresholds),
            "--timeout" => s.view = Some(ListView::Timeout),
            "--exact" => g.exact = true,
            // ipvsadm's default order.
            "--sort" => g.nosort = false,
            "--nosort" => g.nosort = true,
            "--persistent-conn" => g.persistent_conn = true,
            "--client" => s.sessions.client = t.value(&a)?,
            "--rs" => s.sessions.real_server = t.value(&a)?,
            "--state" => s.sessions.state = t.value(&a)?,
            "--limit" => s.sessions.limit = t.number(&a)?,
            "--ifname" | "-F" => s.ifname = Some(t.value(&a)?),
            "-z" | "--laddr" => s.laddrs.push(t.value(&a)?),
            "--once" => s.once = true,
            "--interval" => s.interval = Some(t.number(&a)?),
            "--services" => s.services = true,
            "--daemon" => s.daemon = true,
            "--mcast-interface" | "--syncid" | "--sync-maxlen" | "--mcast-group" | "--mcast-port" | "--mcast-ttl" => {
                s.sync_opt.get_or_insert_with(|| a.clone());
                match a.as_str() {
                    "--mcast-interface" => s.sync.mcast_interface = t.value(&a)?,
                    "--syncid" => s.sync.syncid = Some(sync_number(&mut t, &a, 0, 255)?),
                    "--sync-maxlen" => s.sync.maxlen = sync_number(&mut t, &a, 80, 65_507)?,
                    "--mcast-port" => s.sync.port = sync_number(&mut t, &a, 1, 65_535)?,
                    "--mcast-ttl" => s.sync.ttl = sync_number(&mut t, &a, 1, 255)?,
                    _ => {
                        let v = t.value(&a)?;
                        if !v.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_multicast()) {
                            return usage(format!("{a} {v}: not an IPv4 multicast address"));
                        }
                        s.sync.group = v;
                    }
                }
            }
            _ if a.starts_with('-') && a.len() > 1 && a.parse::<f64>().is_err() => return usage(format!("unknown option {a}")),
            _ => s.words.push(a.clone()),
        }
        t.i += 1;
    }
    let cmd = match s.cmd {
        Some(c) => ipvsadm(c, s)?,
        None if s.words.is_empty() => Command::Help,
        None => noun_verb(s)?,
    };
    Ok((g, cmd))
}

fn need_service(s: &Seen, what: &str) -> Result<pb::ServiceKey, UsageError> {
    s.svc.clone().ok_or_else(|| UsageError(format!("{what} needs a service: -t|-u vip:port")))
}

fn rs_opts(s: &Seen, what: &str, add: bool) -> Result<RsOpts, UsageError> {
    let service = need_service(s, what)?;
    let Some(r) = &s.rs else { return usage(format!("{what} needs a real server: -r addr[:port]")) };
    let (addr, port) = names::real_server(r, service.port, Protocol::try_from(service.protocol).unwrap_or(Protocol::Tcp)).map_err(|e| UsageError(format!("-r {r}: {e}")))?;
    let weight = if add { Some(s.weight.unwrap_or(1)) } else { s.weight };
    Ok(RsOpts { service, addr, port, weight, forward: s.so.forward })
}

fn no_words(s: &Seen, what: &str) -> Result<(), UsageError> {
    match s.words.first() {
        Some(w) => usage(format!("{what}: unexpected argument {w:?}")),
        None => Ok(()),
    }
}

fn ipvsadm(c: &str, mut s: Seen) -> Result<Command, UsageError> {
    no_words(&s, c)?;
    if s.daemon && c != "-L" {
        return usage(format!("{c}: --daemon goes with -L (lbctl -L --daemon)"));
    }
    if let Some(o) = s.sync_opt.as_ref().filter(|_| c != "--start-daemon") {
        return usage(format!("{o} goes with --start-daemon"));
    }
    if !s.laddrs.is_empty() && c != "-P" && c != "-Q" {
        return usage(format!("{c}: -z|--laddr goes with -P|--add-laddr or -Q|--del-laddr"));
    }
    if s.ifname.is_some() && c != "-P" {
        return usage(format!("{c}: -F|--ifname goes with -P|--add-laddr (or laddr add)"));
    }
    Ok(match c {
        "-A" | "-E" => {
            let mut so = std::mem::take(&mut s.so);
            so.key = need_service(&s, c)?;
            if c == "-A" {
                // ipvsadm's default scheduler.
                so.scheduler.get_or_insert(pb::Scheduler::Wlc);
                Command::AddService(so)
            } else {
                Command::EditService(so)
            }
        }
        "-D" => Command::DeleteService(need_service(&s, c)?),
        "-C" => Command::Clear,
        "-a" => Command::AddRs(rs_opts(&s, c, true)?),
        "-e" => Command::EditRs(rs_opts(&s, c, false)?),
        "-d" => Command::DeleteRs(rs_opts(&s, c, false)?),
        "-L" if s.daemon => Command::ListDaemons,
        "-L" => match s.view.unwrap_or_default() {
            ListView::Connections => Command::Sessions(pb::ListSessionsRequest { service: s.svc, ..s.sessions }, true),
            view => Command::List { view, service: s.svc },
        },
        "-Z" => Command::Zero,
        "-S" => Command::SaveRules,
        "-R" => Command::Restore,
        "--set" => {
            let (a, b, d) = s.set.unwrap_or_default();
            Command::SetTimeouts(a, b, d)
        }
        "--start-daemon" => {
            if s.sync.mcast_interface.is_empty() {
                return usage("--start-daemon needs --mcast-interface IF");
            }
            Command::StartDaemon(pb::SyncDaemon { role: s.role.unwrap_or_default() as i32, ..s.sync })
        }
        "--stop-daemon" => Command::StopDaemon(s.role.unwrap_or_default()),
        "-P" | "-Q" => {
            let svc = need_service(&s, c)?;
            if s.laddrs.is_empty() {
                return usage(format!("{c} needs a local address: -z addr"));
            }
            if c == "-P" {
                Command::LaddrAdd { to: LaddrOf::Service(svc), addrs: s.laddrs, ifname: s.ifname }
            } else {
                Command::LaddrDel { from: LaddrOf::Service(svc), addrs: s.laddrs }
            }
        }
        "-G" => Command::LaddrGet { service: s.svc },
        "-V" => Command::Version,
        _ => Command::Help,
    })
}

fn noun_verb(mut s: Seen) -> Result<Command, UsageError> {
    let words = std::mem::take(&mut s.words);
    let noun = words[0].as_str();
    let verb = words.get(1).map(String::as_str);
    let rest: Vec<String> = words.iter().skip(2).cloned().collect();
    let only = |n: usize, what: &str| -> Result<(), UsageError> {
        match words.get(n) {
            Some(w) => usage(format!("{what}: unexpected argument {w:?}")),
            None => Ok(()),
        }
    };
    let ipvs = |c: &'static str, s: Seen| ipvsadm(c, s);
    Ok(match (noun, verb) {
        ("service" | "svc", Some("list" | "ls")) | ("service" | "svc", None) => ipvs("-L", s)?,
        ("service" | "svc", Some("add")) => ipvs("-A", s)?,
        ("service" | "svc", Some("edit")) => ipvs("-E", s)?,
        ("service" | "svc", Some("del" | "delete" | "rm")) => ipvs("-D", s)?,
        ("service" | "svc", Some("clear")) => ipvs("-C", s)?,
        ("rs" | "real-server", Some("add")) => ipvs("-a", s)?,
        ("rs" | "real-server", Some("edit")) => ipvs("-e", s)?,
        ("rs" | "real-server", Some("del" | "delete" | "rm")) => ipvs("-d", s)?,
        ("rs" | "real-server", Some("list" | "ls") | None) => {
            only(2, "rs list")?;
            Command::RsList { service: s.svc }
        }
        ("laddr", Some("list" | "ls")) | ("laddr", None) => {
            only(2, "laddr list")?;
            Command::LaddrList
        }
        ("laddr", Some("add")) => {
            let Some((group, addrs)) = rest.split_first() else { return usage("laddr add GROUP ADDR... [--ifname IF]") };
            if addrs.is_empty() {
                return usage("laddr add GROUP ADDR... [--ifname IF]: no address given");
            }
            Command::LaddrAdd { to: LaddrOf::Group(group.clone()), addrs: addrs.to_vec(), ifname: s.ifname }
        }
        ("laddr", Some("del" | "delete" | "rm")) => {
            let Some((group, addrs)) = rest.split_first() else { return usage("laddr del GROUP [ADDR...]") };
            Command::LaddrDel { from: LaddrOf::Group(group.clone()), addrs: addrs.to_vec() }
        }
        ("session" | "sessions" | "conn", Some("list" | "ls") | None) => {
            only(2, "session list")?;
            Command::Sessions(pb::ListSessionsRequest { service: s.svc, ..s.sessions }, false)
        }
        ("stats", None) => Command::Stats { services: s.services },
        ("allow" | "deny", Some(v)) => {
            let list = if noun == "allow" { AccessList::Allow } else { AccessList::Deny };
            let op = match v {
                "add" => Op::Add,
                "del" | "delete" | "rm" => Op::Del,
                "list" | "ls" => Op::List,
                other => return usage(format!("{noun} {other}: the verbs are add, del and list")),
            };
            if op != Op::List && (s.svc.is_none() || rest.is_empty()) {
                return usage(format!("{noun} {v} -t|-u vip:port CIDR..."));
            }
            Command::Access { list, op, service: s.svc, cidrs: rest }
        }
        ("flow", Some("set")) => {
            only(2, "flow set")?;
            let service = need_service(&s, "flow set")?;
            Command::FlowSet { service, cps: s.so.cps, interval: s.so.cps_interval, max_conns: s.so.max_conns }
        }
        ("flow", Some("list" | "ls" | "show") | None) => Command::FlowList,
        ("timeout", Some("get") | None) => Command::List { view: ListView::Timeout, service: None },
        ("timeout", Some("set")) => {
            let n: Vec<u32> = rest.iter().map(|w| w.parse().or_else(|_| usage(format!("timeout set: {w:?} is not a number")))).collect::<Result<_, _>>()?;
            let [a, b, c] = n[..] else { return usage("timeout set TCP TCPFIN UDP (0 keeps a value)") };
            Command::SetTimeouts(a, b, c)
        }
        ("reload", None) => Command::Reload,
        ("info", None) => Command::Info,
        ("vrrp", Some("list" | "ls" | "show") | None) => {
            only(2, "vrrp")?;
            Command::Vrrp
        }
        ("sync", Some("list" | "ls" | "show") | None) => {
            only(2, "sync list")?;
            s.daemon = true;
            ipvs("-L", s)?
        }
        ("sync", Some(v @ ("start" | "stop"))) => {
            only(3, &format!("sync {v}"))?;
            s.role = match (rest.first(), v) {
                (Some(r), _) => Some(role(&format!("sync {v}"), r)?),
                (None, "stop") => Some(pb::SyncRole::Unspecified),
                (None, _) => return usage("sync start master|backup --mcast-interface IF [...]"),
            };
            ipvs(if v == "start" { "--start-daemon" } else { "--stop-daemon" }, s)?
        }
        ("save", None) => Command::SaveConf,
        ("restore", None) => Command::Restore,
        ("zero", None) => Command::Zero,
        ("top", None) => Command::Top { once: s.once, interval_s: s.interval.unwrap_or(1).max(1) },
        ("help", _) => Command::Help,
        ("version", None) => Command::Version,
        (n, Some(v)) => return usage(format!("unknown command: {n} {v}")),
        (n, None) => return usage(format!("unknown command: {n}")),
    })
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
