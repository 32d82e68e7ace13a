//! `StartDaemon`, `StopDaemon`, `ListDaemons`: session sync daemons between the lb.v1 messages
//! and [`crate::sync`]. The sync thread opens and closes the sockets within ~100 ms of a change.

use lb_api::pb;
use tonic::{Response, Status};

use super::service::Api;
use crate::sync::{DaemonSpec, Role, Source, SpecInput, SyncView};

fn role_of(r: i32) -> Option<Role> {
    match pb::SyncRole::try_from(r) {
        Ok(pb::SyncRole::Master) => Some(Role::Master),
        Ok(pb::SyncRole::Backup) => Some(Role::Backup),
        _ => None,
    }
}

fn pb_role(r: Role) -> i32 {
    match r {
        Role::Master => pb::SyncRole::Master as i32,
        Role::Backup => pb::SyncRole::Backup as i32,
    }
}

fn invalid(field: &str, msg: impl Into<String>) -> Status {
    let msg = msg.into();
    <Status as tonic_types::StatusExt>::with_error_details(tonic::Code::InvalidArgument, format!("{field}: {msg}"), tonic_types::ErrorDetails::with_bad_request_violation(field, msg))
}

/// The lb.v1 view of sync: daemons, counters (the workers' adoption counts added), bulk state.
pub fn status_pb(v: &SyncView, applied: u64, worker_drops: &[(&'static str, u64)]) -> pb::SyncStatus {
    let mut dropped: std::collections::HashMap<String, u64> = v.counters.dropped.iter().map(|(k, n)| ((*k).to_string(), *n)).collect();
    for (k, n) in worker_drops {
        if *n > 0 {
            *dropped.entry((*k).to_string()).or_default() += n;
        }
    }
    pb::SyncStatus {
        daemons: v
            .daemons
            .iter()
            .map(|d| pb::SyncDaemonStatus {
                daemon: Some(pb::SyncDaemon {
                    role: pb_role(d.role),
                    mcast_interface: d.spec.interface.clone(),
                    syncid: Some(u32::from(d.spec.syncid)),
                    maxlen: u32::from(d.spec.maxlen),
                    group: d.spec.group.to_string(),
                    port: u32::from(d.spec.port),
                    ttl: u32::from(d.spec.ttl),
                }),
                source: match d.source {
                    Source::Api(_) => "api".into(),
                    Source::Config { .. } => "keepalived.conf".into(),
                },
                vrrp_instance: match &d.source {
                    Source::Config { vrrp_instance } => vrrp_instance.clone(),
                    Source::Api(_) => String::new(),
                },
                active: d.active,
            })
            .collect(),
        sent_messages: v.counters.sent_messages,
        sent_conns: v.counters.sent_conns,
        send_dropped: v.counters.send_dropped,
        received_messages: v.counters.received_messages,
        received_conns: v.counters.received_conns,
        applied_conns: applied,
        dropped,
        bulk_state: v.bulk.name().into(),
        bulk_received: v.bulk_received,
        bulk_expected: v.bulk_expected,
        bulk_served: v.bulk_served,
        bulk_sent_conns: v.bulk_sent_conns,
        ready: v.ready,
    }
}

impl Api {
    /// What `ListDaemons` answers: the sync thread's view plus the workers' counters.
    pub(crate) fn sync_status(&self) -> pb::SyncStatus {
        let shared = self.control().shared();
        let mut totals = fastpath::Counters::default();
        for (_, c) in self.control().worker_counters() {
            totals.merge(&c);
        }
        let drops = [
            ("no_service", totals.sync_no_service),
            ("no_laddr", totals.sync_no_laddr),
            ("unknown_rs", totals.sync_unknown_rs),
            ("port_busy", totals.sync_port_busy),
            ("table_full", totals.sync_table_full),
            ("bad_record", totals.sync_bad_record),
            ("worker_queue_full", totals.sync_queue_full),
        ];
        status_pb(&shared.sync.view(), totals.sync_adopted + totals.sync_updated, &drops)
    }

    pub(crate) async fn start_daemon_impl(&self, r: pb::StartDaemonRequest) -> Result<Response<pb::SyncStatus>, Status> {
        let d = r.daemon.ok_or_else(|| invalid("daemon", "is required"))?;
        let role = role_of(d.role).ok_or_else(|| invalid("daemon.role", format!("{} is not master or backup", d.role)))?;
        let input = SpecInput { interface: d.mcast_interface, syncid: d.syncid, maxlen: d.maxlen, group: d.group, port: d.port, ttl: d.ttl };
        let c = self.control();
        let spec = DaemonSpec::new(&input, |n| c.tap_of(n)).map_err(|e| invalid(&format!("daemon.{}", e.field), e.msg))?;
        let taken = self.control().shared().sync.view().daemons.iter().any(|v| v.role == role);
        {
            let mut api = self.control().shared().sync.api.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let slot = if role == Role::Master { &mut api.master } else { &mut api.backup };
            if slot.is_some() || taken {
                return Err(Status::already_exists(format!("a {} sync daemon is already running", role.name())));
            }
            *slot = Some(spec.clone());
        }
        // The sync thread opens the socket within ~100 ms: answer once it has, so a listing
        // right after shows the daemon (as ipvsadm's does). A socket that cannot be opened yet
        // (no address on the TAP) keeps being retried; the answer then lists it not running.
        self.settle(|v| v.daemons.iter().any(|d| d.role == role)).await;
        Ok(Response::new(self.sync_status()))
    }

    pub(crate) async fn stop_daemon_impl(&self, r: pb::StopDaemonRequest) -> Result<Response<pb::SyncStatus>, Status> {
        let roles: Vec<Role> = match pb::SyncRole::try_from(r.role) {
            Ok(pb::SyncRole::Unspecified) => vec![Role::Master, Role::Backup],
            _ => vec![role_of(r.role).ok_or_else(|| invalid("role", format!("{} is not master or backup", r.role)))?],
        };
        let mut stopped = 0;
        {
            let mut api = self.control().shared().sync.api.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for role in &roles {
                let slot = if *role == Role::Master { &mut api.master } else { &mut api.backup };
                if slot.take().is_some() {
                    stopped += 1;
                }
            }
        }
        if stopped == 0 {
            let which = if roles.len() == 2 { "sync daemon" } else { roles[0].name() };
            return Err(Status::not_found(format!("no {which} started through the API is running (keepalived.conf's lvs_sync_daemon is stopped by removing it and reloading)")));
        }
        self.settle(|v| !v.daemons.iter().any(|d| roles.contains(&d.role) && matches!(d.source, Source::Api(_)))).await;
        Ok(Response::new(self.sync_status()))
    }

    /// Waits (at most a second) until the sync thread's view satisfies `done`.
    async fn settle(&self, done: impl Fn(&SyncView) -> bool) {
        for _ in 0..100 {
            if done(&self.control().shared().sync.view()) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
