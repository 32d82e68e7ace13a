//! `lbctl -L --daemon` (and `lbctl sync`): the session sync daemons, first as ipvsadm 1.31
//! prints them (`master sync daemon (mcast=eth0, syncid=1, ...)`, one line each, which scripts
//! grep), then lbctl's lines: bulk sync, messages sent and received, drops by reason.

use std::fmt::Write as _;

use lb_api::pb::{self, SyncRole};
use serde_json::Value;

/// LVS's sync id, which an unset `SyncDaemon.syncid` stands for.
const DEFAULT_SYNCID: u32 = 255;

/// `master`, `backup`: ipvsadm's names, also those `--start-daemon` takes.
pub fn role_name(role: i32) -> &'static str {
    match SyncRole::try_from(role) {
        Ok(SyncRole::Master) => "master",
        Ok(SyncRole::Backup) => "backup",
        _ => "unspecified",
    }
}

pub fn role_from_name(name: &str) -> Option<SyncRole> {
    match name {
        "master" => Some(SyncRole::Master),
        "backup" => Some(SyncRole::Backup),
        _ => None,
    }
}

/// The drop counters that are not zero, by reason.
fn drops(s: &pb::SyncStatus) -> Vec<(&str, u64)> {
    let mut d: Vec<(&str, u64)> = s.dropped.iter().filter(|(_, n)| **n > 0).map(|(r, n)| (r.as_str(), *n)).collect();
    d.sort_unstable();
    d
}

/// The listing; empty when no daemon runs (as ipvsadm).
pub fn table(s: &pb::SyncStatus) -> String {
    let mut o = String::new();
    if s.daemons.is_empty() {
        return o;
    }
    for st in &s.daemons {
        let d = st.daemon.clone().unwrap_or_default();
        // ipvsadm 1.31's list_daemon(): the optional fields only when set.
        let _ = write!(o, "{} sync daemon (mcast={}, syncid={}", role_name(d.role), d.mcast_interface, d.syncid.unwrap_or(DEFAULT_SYNCID));
        if d.maxlen != 0 {
            let _ = write!(o, ", maxlen={}", d.maxlen);
        }
        if !d.group.is_empty() {
            let _ = write!(o, ", group={}", d.group);
        }
        if d.port != 0 {
            let _ = write!(o, ", port={}", d.port);
        }
        if d.ttl != 0 {
            let _ = write!(o, ", ttl={}", d.ttl);
        }
        o.push_str(")\n");
    }
    let state = if s.bulk_state.is_empty() { "none" } else { &s.bulk_state };
    let _ = write!(o, "bulk sync: {state} ({} of {} sessions)", s.bulk_received, s.bulk_expected);
    // Readiness only means something while a backup waits for its bulk sync.
    if s.daemons.iter().any(|st| st.daemon.as_ref().is_some_and(|d| d.role == SyncRole::Backup as i32)) {
        o.push_str(if s.ready { ", ready" } else { ", not ready" });
    }
    o.push('\n');
    let _ = writeln!(o, "sent: {} messages, {} sessions, {} dropped", s.sent_messages, s.sent_conns, s.send_dropped);
    let _ = writeln!(o, "received: {} messages, {} sessions, {} applied", s.received_messages, s.received_conns, s.applied_conns);
    let dropped = drops(s);
    if !dropped.is_empty() {
        let words: Vec<String> = dropped.iter().map(|(r, n)| format!("{r}={n}")).collect();
        let _ = writeln!(o, "dropped: {}", words.join(" "));
    }
    o
}

/// `-o json`: the whole status, roles by name, drops by reason (zeros included); generated,
/// see `json`.
pub fn to_json(s: &pb::SyncStatus) -> Value {
    crate::json::message(s)
}

#[cfg(test)]
#[path = "sync_tests.rs"]
mod tests;
