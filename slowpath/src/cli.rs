//! lb-slowpath's command line and its documentation. Only `clap` and `std` in here: the
//! packaging's man-page generator (packaging/gen) includes this file to render lb-slowpath.8
//! from the same text `lb-slowpath --help` prints.

use std::path::PathBuf;

use clap::Parser;

/// lbd's configuration unless `--config` is given (the Debian package's conffile, lbd's default).
pub const DEFAULT_CONFIG: &str = "/etc/lbd/lbd.toml";

/// Health checks for the director's real servers, beside lbd.
///
/// Reads the same keepalived.conf as lbd (TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, MISC_CHECK
/// with delay_loop, retry/nb_get_retry, delay_before_retry, connect_timeout, connect_ip,
/// connect_port, bindto, warmup, alpha, omega, quorum/hysteresis, inhibit_on_failure,
/// sorry_server, notify_up/notify_down, checker_off, checker_merge) and tells lbd which real
/// servers are up through lbd's gRPC API (SetHealth). Probes go through the kernel's network
/// stack (the exception-path TAPs), from the director's kernel-side addresses or `bindto`.
///
/// Once lbd answers, its running configuration is what gets checked: reloads (SIGHUP to lbd,
/// `lbctl reload`) and API edits are picked up within a second. SIGHUP to lb-slowpath asks lbd
/// to reload its services file (one command reloads both). SIGTERM stops the checks; lbd keeps
/// the last verdicts. A restarted lb-slowpath starts from what lbd shows (no flapping); a
/// restarted lbd is sent the whole state again. VRRP (`vrrp_instance`, `vrrp_sync_group`) is
/// read from the services file at start: a change there needs a restart of lb-slowpath.
///
/// Logging: to the systemd journal when stderr is the journal (JOURNAL_STREAM), else lines on
/// stderr ("lb-slowpath: message", "lb-slowpath: warning: message"); LBD_LOG_OUTPUT=stderr|journald
/// forces one. Repeating trouble (a failing advert, a refused peer) is logged at most once a minute.
///
/// Exit codes: 0 stopped by a signal, 1 could not run, 2 invalid configuration.
#[derive(Debug, Parser)]
#[command(name = "lb-slowpath", version, verbatim_doc_comment)]
pub struct Cli {
    /// lbd's configuration: `services` (keepalived.conf) and `api_socket` are read from it.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// keepalived.conf to check (overrides `services` in lbd.toml).
    #[arg(long)]
    pub services: Option<PathBuf>,
    /// lbd's API socket (overrides `api_socket` in lbd.toml).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Validate the configuration and exit.
    #[arg(long)]
    pub check: bool,
    /// Seed for spreading the first probes over their interval (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// What to log: a level (error, warn, info, debug, trace) or tracing filter directives.
    /// Default: $LBD_LOG, else $RUST_LOG, else info.
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
}
