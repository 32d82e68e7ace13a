//! lbd as the slowpath sees it, through the lb.v1 gRPC API on lbd's Unix socket: who is
//! running (instance and configuration generation), the running services (as keepalived.conf
//! text, parsed by `kaconf`), what lbd shows for each checked server, and `SetHealth`.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lb_api::pb;

use crate::health::{Event, Prior, RsKey, ServerState, VsKey};

/// Longest wait for one API call; lbd answers in milliseconds when it is alive.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Who says so, in lbd's log and listings.
pub const SOURCE: &str = "lb-slowpath";

/// What lbd says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    /// Changes when lbd restarts (it then knows no health).
    pub id: u64,
    /// Changes with every configuration or health change lbd publishes.
    pub generation: u64,
    /// Changes with every change of lbd's running configuration (what is checked).
    pub revision: u64,
    /// False while lbd's backup sync daemon waits for its bulk sync: no preemption until then.
    pub sync_ready: bool,
}

/// A connection to lbd.
#[derive(Debug)]
pub struct Lbd {
    socket: PathBuf,
    client: Option<lb_api::Client>,
}

impl Lbd {
    /// Not connected yet; every call connects when needed.
    pub fn new(socket: &Path) -> Lbd {
        Lbd { socket: socket.to_owned(), client: None }
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    async fn client(&mut self) -> Result<&mut lb_api::Client, String> {
        if self.client.is_none() {
            let target = lb_api::Target::Unix(self.socket.clone());
            let c = tokio::time::timeout(CALL_TIMEOUT, lb_api::connect(&target)).await.map_err(|_| format!("cannot connect to lbd at {}: timed out", self.socket.display()))?.map_err(|e| e.to_string())?;
            self.client = Some(c);
        }
        self.client.as_mut().ok_or_else(|| "not connected".to_owned())
    }

    /// Runs one call; a failure drops the connection so the next call reconnects.
    async fn call<T, F, Fut>(&mut self, what: &str, f: F) -> Result<T, String>
    where
        F: FnOnce(lb_api::Client) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let c = self.client().await?.clone();
        match tokio::time::timeout(CALL_TIMEOUT, f(c)).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(s)) => {
                if matches!(s.code(), tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled) {
                    self.client = None;
                }
                Err(format!("lbd {what}: {}", s.message()))
            }
            Err(_) => {
                self.client = None;
                Err(format!("lbd {what}: no answer within {} s", CALL_TIMEOUT.as_secs()))
            }
        }
    }

    /// lbd's instance and generation.
    pub async fn instance(&mut self) -> Result<Instance, String> {
        let i = self.call("GetInfo", |mut c| async move { c.get_info(pb::GetInfoRequest {}).await }).await?;
        Ok(Instance { id: i.instance_id, generation: i.generation, revision: i.config_revision, sync_ready: i.sync_ready })
    }

    /// The running services as keepalived.conf text (what `lbctl save` prints): file, reloads
    /// and API edits included.
    pub async fn running_config(&mut self) -> Result<String, String> {
        let r = self.call("Save", |mut c| async move { c.save(pb::SaveRequest {}).await }).await?;
        Ok(r.keepalived_conf)
    }

    /// What lbd shows for every checked server: up or down as a check last said. Servers lbd
    /// only holds at its start-up default (nobody checked them yet) are `Unknown`.
    pub async fn priors(&mut self) -> Result<HashMap<RsKey, Prior>, String> {
        let r = self.call("ListServices", |mut c| async move { c.list_services(pb::ListServicesRequest { stats: false }).await }).await?;
        let mut out = HashMap::new();
        for s in &r.services {
            let Some(vs) = s.key.as_ref().and_then(vs_key) else { continue };
            for rs in &s.real_servers {
                let (Ok(ip), Ok(port)) = (rs.addr.parse::<Ipv4Addr>(), u16::try_from(rs.port)) else { continue };
                let prior = match pb::HealthState::try_from(rs.health) {
                    _ if rs.health_source != SOURCE => Prior::Unknown,
                    Ok(pb::HealthState::Up) => Prior::Up,
                    Ok(pb::HealthState::Down) => Prior::Down,
                    _ => Prior::Unknown,
                };
                out.insert(RsKey { vs, ip, port }, prior);
            }
        }
        Ok(out)
    }

    /// Sends a batch of verdicts; returns the updates lbd did not know (listed, not refused).
    pub async fn set_health(&mut self, servers: Vec<pb::HealthUpdate>, quorum: Vec<pb::QuorumUpdate>) -> Result<Vec<String>, String> {
        let req = pb::SetHealthRequest { servers, quorum, source: SOURCE.into() };
        let r = self.call("SetHealth", |mut c| async move { c.set_health(req).await }).await?;
        Ok(r.unknown)
    }
}

fn vs_key(k: &pb::ServiceKey) -> Option<VsKey> {
    let protocol = match pb::Protocol::try_from(k.protocol) {
        Ok(pb::Protocol::Tcp) => kaconf::Protocol::Tcp,
        Ok(pb::Protocol::Udp) => kaconf::Protocol::Udp,
        _ => return None,
    };
    Some(VsKey { vip: k.vip.parse().ok()?, port: u16::try_from(k.port).ok()?, protocol })
}

/// The API's key for a virtual server.
pub fn pb_key(vs: &VsKey) -> pb::ServiceKey {
    let protocol = match vs.protocol {
        kaconf::Protocol::Tcp => pb::Protocol::Tcp,
        kaconf::Protocol::Udp => pb::Protocol::Udp,
    };
    pb::ServiceKey { vip: vs.vip.to_string(), port: u32::from(vs.port), protocol: protocol as i32 }
}

impl Lbd {
    /// Tells lbd which addresses it owns (VRRP) and how the instances stand.
    pub async fn set_ownership(&mut self, req: pb::SetOwnershipRequest) -> Result<Vec<String>, String> {
        let r = self.call("SetOwnership", |mut c| async move { c.set_ownership(req).await }).await?;
        Ok(r.unknown)
    }
}

/// One server's verdict as lbd takes it.
pub fn update(rs: &RsKey, up: bool, weight: Option<u32>, inhibit: bool, checker: &str, reason: &str) -> pb::HealthUpdate {
    pb::HealthUpdate {
        service: Some(pb_key(&rs.vs)),
        addr: rs.ip.to_string(),
        port: u32::from(rs.port),
        up,
        checker: checker.to_owned(),
        reason: reason.to_owned(),
        weight,
        inhibit,
    }
}

/// The whole state, for a fresh lbd or after a reconnect.
pub fn full_state(servers: &[ServerState], quorum: &[(VsKey, bool)]) -> (Vec<pb::HealthUpdate>, Vec<pb::QuorumUpdate>) {
    let s = servers
        .iter()
        .filter(|s| s.checker.is_some())
        .map(|s| update(&s.rs, s.up, s.weight, s.inhibit, s.checker.unwrap_or_default(), s.last_error.as_deref().unwrap_or_default()))
        .collect();
    let q = quorum.iter().map(|(vs, up)| pb::QuorumUpdate { service: Some(pb_key(vs)), up: *up }).collect();
    (s, q)
}

/// An event as an update (servers only; quorum events are separate).
pub fn event_update(e: &Event, checker: &str) -> Option<pb::HealthUpdate> {
    match e {
        Event::Server { rs, up, weight, inhibit, reason, .. } => Some(update(rs, *up, *weight, *inhibit, checker, reason)),
        Event::Quorum { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let vs = VsKey { vip: Ipv4Addr::new(10, 0, 0, 1), port: 53, protocol: kaconf::Protocol::Udp };
        assert_eq!(vs_key(&pb_key(&vs)), Some(vs));
        assert_eq!(vs_key(&pb::ServiceKey { vip: "x".into(), port: 1, protocol: 1 }), None);
        assert_eq!(vs_key(&pb::ServiceKey { vip: "10.0.0.1".into(), port: 70000, protocol: 1 }), None);
        assert_eq!(vs_key(&pb::ServiceKey { vip: "10.0.0.1".into(), port: 1, protocol: 0 }), None);
    }
}
