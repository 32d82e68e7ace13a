//! Network-namespace topologies with real Linux hosts around the director
//! daemon `lbd`.
//!
//! A topology named `<name>` consists of namespaces `lbt-<name>-client`,
//! `lbt-<name>-director` (where lbd runs on veth ends `wan0` and `lan0`),
//! `lbt-<name>-lan` (a bridge) and one `lbt-<name>-rs-<addr>` per backend
//! (each running nginx, and a UDP echo server where it has UDP ports).
//! Addresses exist only inside the namespaces, so several topologies coexist.
//! State lives in `/run/lb-testbed/<name>/`.
//!
//! [`TopologySpec::from_keepalived`] shapes a topology after a keepalived.conf
//! and [`UpOptions::keepalived_conf`] hands that file to lbd;
//! [`Testbed::up_from_keepalived`] does both, and starts lb-slowpath (the
//! health checks) beside lbd; tests stop and start backends, lb-slowpath and
//! lbd with [`Testbed::backend_stop`], [`Testbed::kill_slowpath`],
//! [`Testbed::start_lbd`] and friends.
//!
//! ```no_run
//! use lb_testbed::{unique_name, Testbed, TopologySpec, UpOptions};
//!
//! let tb = Testbed::up(&TopologySpec::default(), &UpOptions::new(unique_name("t")).without_director())?;
//! let body = tb.exec_ok("rs-10.70.2.11", ["curl", "-sS", "-m", "5", "http://10.70.2.12/"])?;
//! assert_eq!(body, "rs-10.70.2.12\n");
//! tb.down()?; // or just drop it
//! # Ok::<(), lb_testbed::Error>(())
//! ```
//!
//! Needs root, iproute2, ethtool, nginx and curl (python3 for UDP echo servers).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backend;
mod cmd;
mod daemon;
pub mod director;
pub mod directors;
mod error;
pub mod keepalived;
pub mod netns;
pub mod nginx;
pub mod pair;
mod peer;
pub mod slowpath;
pub mod spec;
pub mod state;
mod teardown;
mod testbed;
mod udp_echo;
mod vrrpconf;

pub use cmd::wait_until;
pub use director::{resolve_lbd, Driver};
pub use pair::{PairRecord, PeerConfig, PeerKind};
pub use peer::resolve_keepalived;
pub use slowpath::resolve_slowpath;
pub use error::{Error, Result};
pub use spec::{
    cidr, BackendSpec, ClientSpec, DirectorSpec, Ipv4Cidr, LanSpec, Node, PortSpec, Route,
    TopologySpec,
};
pub use state::{StatePaths, TopologyRecord};
pub use teardown::{down, list_topologies, TeardownReport, KILL_GRACE};
pub use testbed::{unique_name, Testbed, UpOptions, EXEC_TIMEOUT};
