//! `lb-slowpath`: the director's slow path, a process beside lbd. It reads the same
//! keepalived.conf as lbd (through `kaconf`), runs health checks with keepalived semantics
//! through the kernel network stack (the exception-path TAPs), and tells lbd what it found
//! through the lb.v1 gRPC API on lbd's Unix socket.
//!
//! The decision logic (`health`) is I/O-free: state machines driven by probe results and a
//! clock, tested with a fake clock. The I/O shell (`probe`, `lbd`, `run`) is thin.
#![forbid(unsafe_code)]

pub mod health;
pub mod lbd;
pub mod netif;
pub mod probe;
pub mod run;
pub mod vrrp;
pub mod vrrp_net;
pub mod vrrp_shell;
