//! lbd's command line and its documentation. Only `clap` and `std` in here: the packaging's
//! man-page generator (packaging/gen) includes this file to render lbd.8 and lbd.toml.5 from
//! the same text `lbd --help` prints, so they cannot drift.

use std::path::PathBuf;

use clap::Parser;

/// Where `--config` points unless given (the Debian package's conffile).
pub const DEFAULT_CONFIG: &str = "/etc/lbd/lbd.toml";

/// The L4 load-balancer director daemon (DPDK poll-mode data plane).
///
/// Configuration (TOML), with defaults:
///
///   workers = 1              # worker lcores; each polls one rx/tx queue pair per port
///   idle_sleep_us = 0        # longest idle sleep, adaptive from 2 us (0 = always busy-poll)
///   stats_file = "/path"     # JSON counters rewritten every 200 ms (optional)
///   mbufs = 16383            # packet buffers in the shared pool
///   [eal]
///   no_huge = false          # true: no hugepages (slower, needs no setup)
///   memory_mb = 512
///   file_prefix = "lbd-PID"  # unique per DPDK process
///   log_level = "warning"
///   args = []                # extra raw EAL arguments
///   worker_cpus = []         # one CPU per worker (default: worker i on CPU i+1)
///   [[port]]                 # one section per data port
///   name = "wan"
///   vdev = "net_af_packet0,iface=wan0"   # any DPDK vdev; queue counts are added for
///                                        # af_packet (qpairs) and af_xdp (queue_count)
///   pci = "0000:00:04.0"     # or (not both): a PCI NIC bound to vfio-pci/uio, one rx/tx
///                            # queue pair per worker. EAL args: --no-pci unless a port is
///                            # PCI, then -a ADDR for each PCI port only (nothing else probed)
///   addresses = ["10.0.0.1/24"]          # addresses the director answers ARP/ping for
///   kernel_tap = "tap-wan"   # exception path: the kernel's TAP, with the port's MAC, up;
///                            # optional
///   exception = "auto"       # its driver: virtio-user (virtio_user on /dev/vhost-net) | tap
///                            # (net_tap) | auto: virtio-user if /dev/vhost-net opens, else
///                            # tap. virtio-user without /dev/vhost-net: lbd fails at start
///   mtu = 1500               # optional
///   rx_desc = 512
///   tx_desc = 512
///   gateway = "10.0.0.254"   # next hop off the connected subnets; optional
///   services = "keepalived.conf"  # virtual services (FNAT), relative to this file; optional
///   max_sessions = 1048576   # per worker
///   toa = "first-ack"        # off | first-ack | syn-and-first-ack (client address in TCP option 254)
///   flow_refuse = "rst"      # rst | drop: what connections refused by client lists or
///                            # flow control get (UDP is always dropped)
///   max_client_list = 1000   # most entries per client_ipaddr_allow/exclude list
///   api_socket = "/run/lbd/lbd.sock"   # control API (gRPC lb.v1, lbctl); directory created,
///                            # socket removed on exit. Only when configured is a socket in
///                            # use by another process an error (else: a warning, no socket)
///   api_listen = "127.0.0.1:7443"      # optional TCP listener for the API; needs
///                            # api_token; plaintext HTTP/2 unless api_tls_cert is set
///   api_token = "..."        # callers on api_listen send `authorization: Bearer <token>`
///   api_tls_cert = "/etc/lbd/api-cert.pem"  # TLS on api_listen: certificate chain and
///   api_tls_key = "/etc/lbd/api-key.pem"    # key, PEM, read and checked at start
///   metrics_listen = "127.0.0.1:9100"  # optional Prometheus endpoint, GET /metrics
///   api_max_connections = 256  # most connections open at once on api_listen, and on
///                            # metrics_listen; one more is accepted and closed at once
///   api_idle_timeout_s = 60  # close an api_listen or metrics_listen connection after this
///                            # long without a byte either way (also one that never sends a
///                            # request); keep it above the longest call (a few seconds)
///   [timeouts]               # seconds, as ipvsadm --set tcp tcpfin udp
///   tcp = 900
///   tcpfin = 120
///   udp = 300
///   tcp_syn_recv = 60
///   tcp_close = 10
///   [sync]                   # session sync (daemons: keepalived.conf's lvs_sync_daemon
///                            # or lbctl --start-daemon; messages go through kernel_tap)
///   sync_threshold = [3, 50] # LVS's: sync at the 3rd client packet, then every 50
///   sync_refresh_period = 0  # seconds; >0: an unchanged session syncs at most this often
///   [synproxy]               # SYN proxy of the services with keepalived.conf's syn_proxy
///                            # (lbctl -j enable); DPVS's knobs, one set for all of them
///   mss = 1452               # MSS announced in the SYN-ACK (lowered to the client's), 536..=65495
///   wscale = 7               # window scale offered to clients that offer it, 0..=14;
///                            # absent (the default): not offered
///   sack = true              # offer SACK to clients that offer it
///   ttl = 63                 # TTL of the SYN-ACKs and window updates the director sends
///   rs_syn_max_retry = 3     # SYN re-sent to the real server at most this often
///   ack_storm_thresh = 10    # identical pure ACKs in a row beyond which they are dropped (0: no limit)
///                            # (timestamp = true is refused: no TCP timestamps through it)
///
/// Signals: SIGTERM/SIGINT stop the workers, write final stats and exit 0. SIGHUP re-reads
/// the services file and applies the difference (an invalid file keeps the running services).
/// Under systemd (Type=notify, $NOTIFY_SOCKET) lbd sends READY=1 once its ports and workers
/// are up, RELOADING=1 then READY=1 around a SIGHUP reload, and STOPPING=1 on SIGTERM.
/// Logging: to the systemd journal when stderr is the journal (JOURNAL_STREAM), else lines on
/// stderr ("lbd: message", "lbd: warning: message"); LBD_LOG_OUTPUT=stderr|journald forces one.
/// Every change through the API and every reload is logged once (target lbd::audit) with the
/// caller (pid/uid on the Unix socket, address on api_listen).
/// Exit codes: 0 clean stop, 1 runtime failure, 2 invalid command line or configuration.
#[derive(Debug, Parser)]
#[command(name = "lbd", version, verbatim_doc_comment)]
pub struct Cli {
    /// Path to the daemon's TOML configuration.
    #[arg(long, short = 'c', value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Validate the configuration, print the EAL arguments it produces, and exit.
    #[arg(long)]
    pub check: bool,
    /// What to log: a level (error, warn, info, debug, trace) or tracing filter directives
    /// (e.g. "info,lbd::audit=off"). Default: $LBD_LOG, else $RUST_LOG, else info.
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
}
