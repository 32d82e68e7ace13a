//! `lbctl`: control of the lbd director over its gRPC API, with ipvsadm's habits.
#![forbid(unsafe_code)]

mod args;
mod json;
mod names;
mod rules;
mod run;
mod sync;
mod table;
mod top;
mod vrrp;

use std::process::ExitCode;

use lb_api::Target;

use crate::args::Command;
use crate::run::CliError;

const HELP: &str = "lbctl - control the lbd director (ipvsadm habits, gRPC underneath)

ipvsadm spellings:
  lbctl -A|-E -t|-u vip:port [-s sched] [-p [timeout]] [-M netmask] [-j enable|disable]
        [service options]
  lbctl -D -t|-u vip:port
  lbctl -C
  lbctl -a|-e -t|-u vip:port -r rip[:port] [-g|-m|-b] [-w weight]
  lbctl -d -t|-u vip:port -r rip[:port]
  lbctl -L|-l [-n] [-t|-u vip:port] [--stats|--rate|--thresholds|-c|--timeout]
  lbctl -Z
  lbctl -S [-n]          rules on stdout (lbctl -S | lbctl -R reproduces the configuration)
  lbctl -R               rules from stdin; replaces the running services atomically
                         (ipvsadm adds line by line: there, run -C first)
  lbctl --set tcp tcpfin udp   (0 keeps a value)
  lbctl --start-daemon master|backup --mcast-interface IF [--syncid ID] [--sync-maxlen N]
        [--mcast-group ADDR] [--mcast-port P] [--mcast-ttl T]   (left out: LVS's defaults)
  lbctl --stop-daemon master|backup
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
  -o json|table   output format (default table)
  -n              numeric ports (no /etc/services names)

Exit codes: 0 ok, 1 runtime or server error, 2 usage or invalid argument, 3 not found.
";

fn target(g: &args::Globals) -> Target {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let token = g.token.clone().or_else(|| env("LBCTL_TOKEN"));
    if let Some(addr) = g.server.clone().or_else(|| if g.socket.is_none() { env("LBCTL_SERVER") } else { None }) {
        return Target::Tcp { addr, token };
    }
    Target::Unix(g.socket.clone().or_else(|| env("LBCTL_SOCKET")).unwrap_or_else(|| lb_api::DEFAULT_SOCKET.into()).into())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let result = match args::parse(&argv) {
        Err(e) => Err(CliError::Usage(e)),
        Ok((_, Command::Help)) => run::emit(HELP),
        Ok((_, Command::Version)) => run::emit(&format!("lbctl {}\n", env!("CARGO_PKG_VERSION"))),
        Ok((g, cmd)) => match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Err(e) => Err(CliError::Io(format!("cannot start the runtime: {e}"))),
            Ok(rt) => rt.block_on(async {
                let mut client = lb_api::connect(&target(&g)).await?;
                run::run(&g, cmd, &mut client).await
            }),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code();
            if code != 0 {
                eprintln!("lbctl: {e}");
                if matches!(e, CliError::Usage(_)) {
                    eprintln!("Try 'lbctl --help'.");
                }
            }
            ExitCode::from(code)
        }
    }
}
