//! lbctl's usage text and option table. Self-contained (std only): the packaging's generator
//! (packaging/gen) includes this file to write lbctl.8 and the bash completion, and
//! `usage_tests.rs` checks the table against the parser in `args.rs` (every option and
//! command it accepts is here, with the right arity and values), so neither can drift.

/// `lbctl --help`, also the body of lbctl.8.
pub const HELP: &str = "lbctl - control the lbd director (ipvsadm habits, gRPC underneath)

ipvsadm spellings:
  lbctl -A|-E -t|-u vip:port [-s sched] [-b sched-flags] [-p [timeout]] [-M netmask] [-j enable|disable]
        [service options]
  lbctl -D -t|-u vip:port
  lbctl -C
  lbctl -a|-e -t|-u vip:port -r rip[:port] [-g|-m|-b] [-w weight]
  lbctl -d -t|-u vip:port -r rip[:port]
  lbctl -L|-l [-n] [-t|-u vip:port] [--stats|--rate|--thresholds|--persistent-conn|-c|--timeout] [--exact] [--nosort]
  lbctl -Z
  lbctl -S [-n]          rules on stdout (lbctl -S | lbctl -R reproduces the configuration)
  lbctl -R               rules from stdin; replaces the running services atomically
                         (ipvsadm adds line by line: there, run -C first)
  lbctl --set tcp tcpfin udp   (0 keeps a value)
  lbctl --start-daemon master|backup --mcast-interface IF [--syncid ID] [--sync-maxlen N]
        [--mcast-group ADDR] [--mcast-port P] [--mcast-ttl T]   (left out: LVS's defaults)
  lbctl --stop-daemon master|backup
  lbctl -P|--add-laddr -t|-u vip:port -z laddr [-F ifname]   DPVS's order: the service first,
        its local addresses after; an FNAT service without any refuses new connections
        (no_local_address); its addresses go to a group named after it (tcp-VIP-PORT)
  lbctl -Q|--del-laddr -t|-u vip:port -z laddr   (the last one may go; open sessions keep it)
  lbctl -G|--get-laddr [-t|-u vip:port]          local addresses per FNAT service
  lbctl -L|-l --daemon   sync daemons as ipvsadm lists them, then bulk sync, sent, received
                         and dropped counters (nothing when no daemon runs)
  -b is FNAT (FullNat, as DPVS spells it), -g DR (Route), -m NAT (Masq); forwarding is per
  service: the first real server's mode sets it. -A defaults to -s wlc, as ipvsadm.
  -E changes only the options given (ipvsadm resets the others); --no-persistent clears -p.
  -j|--synproxy enable|disable: SYN proxy, as DPVS's ipvsadm (TCP, FNAT or NAT; -Ln shows
  `synproxy`; what it announces is lbd.toml's [synproxy]).

Service options (lbctl's, for what ipvsadm cannot say):
  --laddr-group NAME  --forward fnat|dr|nat  --cps N  --cps-interval S  --max-conns N
  --allow CIDR (repeat)  --deny CIDR (repeat)  --draining-timeout S  --sorry-server ip:port

Commands:
  service list|add|edit|del|clear      as -L/-A/-E/-D/-C
  rs add|edit|del                      as -a/-e/-d
  rs list [-t|-u vip:port]             real servers with health (up/down/unchecked), since, checker, last error
  laddr list | laddr add GROUP ADDR... [--ifname IF] | laddr del GROUP [ADDR...]
  session list [-t|-u vip:port] [--client IP] [--rs IP] [--state STATE] [--limit N]
  stats [--services]                   per-worker counters, drops by reason, ports
  allow|deny list [-t|-u vip:port] | allow|deny add|del -t|-u vip:port CIDR...
  flow list | flow set -t|-u vip:port [--cps N] [--cps-interval S] [--max-conns N]
  timeout get | timeout set TCP TCPFIN UDP
  reload                               re-read lbd's keepalived.conf (as SIGHUP)
  save                                 the running configuration as keepalived.conf
  info                                 version, workers, ports, uptime
  vrrp [list]                          VRRP instances (state, priority, master, since) and the
                                       VIPs and local addresses this director owns or not
  sync [list]                          as -L --daemon
  sync start master|backup --mcast-interface IF [--syncid ID] ...   as --start-daemon
  sync stop [master|backup]            as --stop-daemon (no role: both)
  top [--once] [--interval S]          live per-service view
  zero | restore                       as -Z / -R

Global options:
  --socket PATH   lbd's API socket (env LBCTL_SOCKET; default /run/lbd/lbd.sock)
  --server H:P    lbd's TCP API instead (env LBCTL_SERVER), with --token T (env LBCTL_TOKEN)
  --ca FILE       TLS to --server (lbd's api_tls_cert), trusting this CA (env LBCTL_CA);
                  --server https://H:P insists on TLS
  -o json|table   output format (default table)
  -n              numeric ports (no /etc/services names)

Exit codes: 0 ok, 1 runtime or server error, 2 usage or invalid argument, 3 not found.
";

/// What an option takes after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// Nothing.
    Flag,
    /// One value, free-form (an address, a number, a name).
    Value,
    /// One value, a file name.
    File,
    /// One value out of these.
    Choice(&'static [&'static str]),
    /// An optional number (`-p [timeout]`).
    OptionalNumber,
    /// Three numbers (`--set tcp tcpfin udp`).
    ThreeNumbers,
}

/// One option: its spellings (short and long) and what it takes.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    pub names: &'static [&'static str],
    pub arg: Arg,
}

const fn opt(names: &'static [&'static str], arg: Arg) -> Opt {
    Opt { names, arg }
}

/// Schedulers `-s` accepts (the shared model's spellings, DPVS's `conhash` among them).
pub const SCHEDULERS: &[&str] = lb_model::Scheduler::NAMES;
/// `--forward`'s modes.
pub const FORWARD: &[&str] = &["fnat", "dr", "nat", "fullnat", "route", "masq"];
/// Sync daemon roles.
pub const ROLES: &[&str] = &["master", "backup"];

/// Every option the parser accepts, ipvsadm's commands included.
pub const OPTIONS: &[Opt] = &[
    // ipvsadm's commands
    opt(&["-A", "--add-service"], Arg::Flag),
    opt(&["-E", "--edit-service"], Arg::Flag),
    opt(&["-D", "--delete-service"], Arg::Flag),
    opt(&["-C", "--clear"], Arg::Flag),
    opt(&["-a", "--add-server"], Arg::Flag),
    opt(&["-e", "--edit-server"], Arg::Flag),
    opt(&["-d", "--delete-server"], Arg::Flag),
    opt(&["-L", "-l", "--list"], Arg::Flag),
    opt(&["-Z", "--zero"], Arg::Flag),
    opt(&["-S", "--save"], Arg::Flag),
    opt(&["-R", "--restore"], Arg::Flag),
    opt(&["--set"], Arg::ThreeNumbers),
    opt(&["--start-daemon"], Arg::Choice(ROLES)),
    opt(&["--stop-daemon"], Arg::Choice(ROLES)),
    opt(&["-P", "--add-laddr"], Arg::Flag),
    opt(&["-Q", "--del-laddr"], Arg::Flag),
    opt(&["-G", "--get-laddr"], Arg::Flag),
    opt(&["-h", "--help"], Arg::Flag),
    opt(&["-V", "--version"], Arg::Flag),
    // global options
    opt(&["--socket"], Arg::File),
    opt(&["--server"], Arg::Value),
    opt(&["--token"], Arg::Value),
    opt(&["--ca"], Arg::File),
    opt(&["-o", "--output"], Arg::Choice(&["json", "table", "text"])),
    opt(&["-n", "--numeric"], Arg::Flag),
    // services and real servers
    opt(&["-t", "--tcp-service"], Arg::Value),
    opt(&["-u", "--udp-service"], Arg::Value),
    opt(&["-s", "--scheduler"], Arg::Choice(SCHEDULERS)),
    opt(&["-p", "--persistent"], Arg::OptionalNumber),
    opt(&["--no-persistent"], Arg::Flag),
    opt(&["-M", "--netmask"], Arg::Value),
    opt(&["-r", "--real-server"], Arg::Value),
    opt(&["-w", "--weight"], Arg::Value),
    opt(&["-g", "--gatewaying"], Arg::Flag),
    opt(&["-m", "--masquerading"], Arg::Flag),
    opt(&["-b", "--fullnat"], Arg::Flag),
    opt(&["--forward"], Arg::Choice(FORWARD)),
    opt(&["--laddr-group"], Arg::Value),
    opt(&["--cps"], Arg::Value),
    opt(&["--cps-interval", "--interval-s"], Arg::Value),
    opt(&["--max-conns"], Arg::Value),
    opt(&["--allow"], Arg::Value),
    opt(&["--deny"], Arg::Value),
    opt(&["--draining-timeout"], Arg::Value),
    opt(&["--sorry-server"], Arg::Value),
    opt(&["-j", "--synproxy"], Arg::Choice(&["enable", "disable"])),
    opt(&["--sched-flags"], Arg::Value),
    opt(&["-z", "--laddr"], Arg::Value),
    // listings
    opt(&["-c", "--connection"], Arg::Flag),
    opt(&["--stats"], Arg::Flag),
    opt(&["--rate"], Arg::Flag),
    opt(&["--thresholds"], Arg::Flag),
    opt(&["--timeout"], Arg::Flag),
    opt(&["--exact"], Arg::Flag),
    opt(&["--sort"], Arg::Flag),
    opt(&["--nosort"], Arg::Flag),
    opt(&["--persistent-conn"], Arg::Flag),
    opt(&["--daemon"], Arg::Flag),
    opt(&["--services"], Arg::Flag),
    // sessions, local addresses, top
    opt(&["--client"], Arg::Value),
    opt(&["--rs"], Arg::Value),
    opt(&["--state"], Arg::Value),
    opt(&["--limit"], Arg::Value),
    opt(&["--ifname", "-F"], Arg::Value),
    opt(&["--once"], Arg::Flag),
    opt(&["--interval"], Arg::Value),
    // sync daemons
    opt(&["--mcast-interface"], Arg::Value),
    opt(&["--syncid"], Arg::Value),
    opt(&["--sync-maxlen"], Arg::Value),
    opt(&["--mcast-group"], Arg::Value),
    opt(&["--mcast-port"], Arg::Value),
    opt(&["--mcast-ttl"], Arg::Value),
];

/// ipvsadm options the parser knows only to refuse with an explanation (never completed).
pub const REFUSED: &[&str] = &["-f", "--fwmark-service", "-i", "--ipip", "-x", "--u-threshold", "-y", "--l-threshold"];

/// A noun-verb command: its name, other spellings, the verbs offered and other verb spellings.
#[derive(Debug, Clone, Copy)]
pub struct Noun {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub verb_aliases: &'static [&'static str],
}

const fn noun(name: &'static str, aliases: &'static [&'static str], verbs: &'static [&'static str], verb_aliases: &'static [&'static str]) -> Noun {
    Noun { name, aliases, verbs, verb_aliases }
}

/// Every noun-verb command.
pub const NOUNS: &[Noun] = &[
    noun("service", &["svc"], &["list", "add", "edit", "del", "clear"], &["ls", "delete", "rm"]),
    noun("rs", &["real-server"], &["list", "add", "edit", "del"], &["ls", "delete", "rm"]),
    noun("laddr", &[], &["list", "add", "del"], &["ls", "delete", "rm"]),
    noun("session", &["sessions", "conn"], &["list"], &["ls"]),
    noun("stats", &[], &[], &[]),
    noun("allow", &[], &["list", "add", "del"], &["ls", "delete", "rm"]),
    noun("deny", &[], &["list", "add", "del"], &["ls", "delete", "rm"]),
    noun("flow", &[], &["list", "set"], &["ls", "show"]),
    noun("timeout", &[], &["get", "set"], &[]),
    noun("reload", &[], &[], &[]),
    noun("info", &[], &[], &[]),
    noun("vrrp", &[], &["list"], &["ls", "show"]),
    noun("sync", &[], &["list", "start", "stop"], &["ls", "show"]),
    noun("save", &[], &[], &[]),
    noun("restore", &[], &[], &[]),
    noun("zero", &[], &[], &[]),
    noun("top", &[], &[], &[]),
    noun("help", &[], &[], &[]),
    noun("version", &[], &[], &[]),
];

/// Words for a bash `case` pattern (`a|b|c`).
fn alternatives<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    words.into_iter().collect::<Vec<_>>().join("|")
}

/// The bash completion script for lbctl, from [`OPTIONS`] and [`NOUNS`].
pub fn bash_completion() -> String {
    let mut s = String::from(
        "# bash completion for lbctl(8). Generated from lbctl's option table (ctl/lbctl/src/usage.rs,\n\
         # tested against its parser) by packaging/gen: do not edit.\n\
         _lbctl() {\n    local cur prev\n    cur=\"${COMP_WORDS[COMP_CWORD]}\"\n    prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n    case \"$prev\" in\n",
    );
    let names = |o: &Opt| alternatives(o.names.iter().copied());
    for o in OPTIONS {
        match o.arg {
            Arg::Choice(c) => s.push_str(&format!("        {}) COMPREPLY=($(compgen -W \"{}\" -- \"$cur\")); return ;;\n", names(o), c.join(" "))),
            Arg::File => s.push_str(&format!("        {}) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n", names(o))),
            _ => {}
        }
    }
    let valued: Vec<&str> = OPTIONS.iter().filter(|o| matches!(o.arg, Arg::Value | Arg::ThreeNumbers)).flat_map(|o| o.names.iter().copied()).collect();
    let takes_value: Vec<&str> = OPTIONS.iter().filter(|o| matches!(o.arg, Arg::Value | Arg::ThreeNumbers | Arg::File | Arg::Choice(_))).flat_map(|o| o.names.iter().copied()).collect();
    s.push_str(&format!("        {}) return ;;\n    esac\n", alternatives(valued)));
    let all: Vec<&str> = OPTIONS.iter().flat_map(|o| o.names.iter().copied()).collect();
    s.push_str(&format!("    if [[ \"$cur\" == -* ]]; then\n        COMPREPLY=($(compgen -W \"{}\" -- \"$cur\"))\n        return\n    fi\n", all.join(" ")));
    s.push_str(&format!(
        "    local i w noun=\"\" words=0\n    for ((i = 1; i < COMP_CWORD; i++)); do\n        w=\"${{COMP_WORDS[i]}}\"\n        case \"${{COMP_WORDS[i-1]}}\" in\n            {}) continue ;;\n        esac\n        [[ \"$w\" == -* ]] && continue\n        words=$((words + 1))\n        [[ $words == 1 ]] && noun=\"$w\"\n    done\n",
        alternatives(takes_value)
    ));
    s.push_str(&format!("    if [[ $words == 0 ]]; then\n        COMPREPLY=($(compgen -W \"{}\" -- \"$cur\"))\n    elif [[ $words == 1 ]]; then\n        case \"$noun\" in\n", NOUNS.iter().map(|n| n.name).collect::<Vec<_>>().join(" ")));
    for n in NOUNS.iter().filter(|n| !n.verbs.is_empty()) {
        let spellings = alternatives(std::iter::once(n.name).chain(n.aliases.iter().copied()));
        s.push_str(&format!("            {spellings}) COMPREPLY=($(compgen -W \"{}\" -- \"$cur\")) ;;\n", n.verbs.join(" ")));
    }
    s.push_str("        esac\n    fi\n}\ncomplete -F _lbctl lbctl\n");
    s
}
