//! `SetOwnership` and `ListVrrp`: address ownership and VRRP instance statuses between the
//! lb.v1 messages and [`crate::control::ownership`]. Requests are checked whole here (errors
//! name the field), then by `Control::set_ownership`.

use std::sync::Arc;

use fastpath::service::AddrKind;
use lb_api::pb;
use tonic::{Response, Status};

use super::convert as cv;
use super::service::{status, Api};
use crate::control::ownership::{AddrView, OwnershipUpdate, VrrpInstance, VrrpState};
use crate::control::ControlError;

type R<T> = Result<T, ControlError>;

/// The addresses and instances of a `SetOwnership` request, checked field by field.
pub fn ownership_request(r: &pb::SetOwnershipRequest) -> R<(Vec<OwnershipUpdate>, Vec<VrrpInstance>)> {
    let addrs = r
        .addresses
        .iter()
        .enumerate()
        .map(|(i, a)| Ok(OwnershipUpdate { addr: cv::ip(&format!("addresses[{i}].addr"), &a.addr)?, owned: a.owned, instance: a.instance.clone() }))
        .collect::<R<Vec<_>>>()?;
    let instances = r.instances.iter().enumerate().map(|(i, v)| instance(&format!("instances[{i}]"), v)).collect::<R<Vec<_>>>()?;
    Ok((addrs, instances))
}

fn instance(f: &str, v: &pb::VrrpInstanceStatus) -> R<VrrpInstance> {
    let bad = |field: &str, msg: String| ControlError::invalid(format!("{f}.{field}"), msg);
    let state = VrrpState::from_name(&v.state).ok_or_else(|| bad("state", format!("{:?} is not a VRRP state ({})", v.state, lb_api::VRRP_STATES.join(", "))))?;
    let vrid = u8::try_from(v.vrid).map_err(|_| bad("vrid", format!("{} is out of range 0..=255", v.vrid)))?;
    for (name, p) in [("priority", v.priority), ("effective_priority", v.effective_priority)] {
        if p > 255 {
            return Err(bad(name, format!("{p} is out of range 0..=255")));
        }
    }
    let master_addr = if v.master_addr.is_empty() { None } else { Some(cv::ip(&format!("{f}.master_addr"), &v.master_addr)?) };
    let text = |field: &str, s: &str| -> R<String> {
        if s.len() > 64 || s.chars().any(char::is_control) {
            return Err(bad(field, format!("{s:?} is not a name (at most 64 characters)")));
        }
        Ok(s.to_owned())
    };
    Ok(VrrpInstance {
        name: v.name.clone(),
        state,
        priority: v.priority,
        effective_priority: v.effective_priority,
        master_addr,
        since_ms: v.since_unix_ms,
        transitions: v.transitions,
        interface: text("interface", &v.interface)?,
        vrid,
        addresses: v.addresses.iter().enumerate().map(|(i, a)| text(&format!("addresses[{i}]"), a)).collect::<R<_>>()?,
        adverts_sent: v.adverts_sent,
        adverts_received: v.adverts_received,
        auth_errors: v.auth_errors,
        other_errors: v.other_errors,
        sync_group: text("sync_group", &v.sync_group)?,
    })
}

/// An instance as a message.
pub fn instance_to_pb(v: &VrrpInstance) -> pb::VrrpInstanceStatus {
    pb::VrrpInstanceStatus {
        name: v.name.clone(),
        state: v.state.name().into(),
        priority: v.priority,
        effective_priority: v.effective_priority,
        master_addr: v.master_addr.map(|a| a.to_string()).unwrap_or_default(),
        since_unix_ms: v.since_ms,
        transitions: v.transitions,
        interface: v.interface.clone(),
        vrid: u32::from(v.vrid),
        addresses: v.addresses.clone(),
        adverts_sent: v.adverts_sent,
        adverts_received: v.adverts_received,
        auth_errors: v.auth_errors,
        other_errors: v.other_errors,
        sync_group: v.sync_group.clone(),
    }
}

/// An address as a listing shows it.
pub fn addr_to_pb(a: &AddrView) -> pb::AddressOwnership {
    let kind = match a.kind {
        Some(AddrKind::Vip) => "vip",
        Some(AddrKind::Laddr) => "laddr",
        None => "",
    };
    pb::AddressOwnership { addr: a.addr.to_string(), owned: a.owned, instance: a.instance.clone(), kind: kind.into() }
}

impl Api {
    /// `SetOwnership`: checked whole, then applied whole.
    pub(crate) async fn set_ownership_impl(&self, r: pb::SetOwnershipRequest) -> Result<Response<pb::SetOwnershipResponse>, Status> {
        let (addrs, instances) = ownership_request(&r).map_err(status)?;
        let source = r.source.chars().filter(char::is_ascii_graphic).take(64).collect::<String>();
        let c = Arc::clone(self.control());
        let out = tokio::task::spawn_blocking(move || c.set_ownership(&addrs, instances, r.replace_instances, &source))
            .await
            .map_err(|e| Status::internal(format!("control task failed: {e}")))?
            .map_err(status)?;
        super::service::changed(out.changed, out.unknown.len());
        Ok(Response::new(pb::SetOwnershipResponse { generation: out.generation, changed: out.changed, unknown: out.unknown }))
    }

    /// `ListVrrp`.
    pub(crate) fn list_vrrp_impl(&self) -> pb::ListVrrpResponse {
        let (instances, addrs) = self.control().vrrp();
        pb::ListVrrpResponse { instances: instances.iter().map(instance_to_pb).collect(), addresses: addrs.iter().map(addr_to_pb).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_the_field() {
        let vi = pb::VrrpInstanceStatus { name: "VI_1".into(), state: "MASTER".into(), priority: 100, effective_priority: 100, vrid: 51, ..Default::default() };
        let ok = pb::SetOwnershipRequest {
            addresses: vec![pb::AddressOwnership { addr: "10.0.1.100".into(), owned: true, instance: "VI_1".into(), ..Default::default() }],
            instances: vec![vi.clone()],
            ..Default::default()
        };
        let (a, i) = ownership_request(&ok).unwrap();
        assert_eq!((a.len(), i[0].state, i[0].vrid), (1, VrrpState::Master, 51));
        let err = |f: &dyn Fn(&mut pb::SetOwnershipRequest)| {
            let mut r = ok.clone();
            f(&mut r);
            ownership_request(&r).unwrap_err().to_string()
        };
        assert_eq!(err(&|r| r.addresses[0].addr = "10.0.1.300".into()), "addresses[0].addr: \"10.0.1.300\" is not an IPv4 address");
        assert_eq!(err(&|r| r.instances[0].state = "LEADER".into()), "instances[0].state: \"LEADER\" is not a VRRP state (MASTER, BACKUP, FAULT, INIT)");
        assert_eq!(err(&|r| r.instances[0].vrid = 256), "instances[0].vrid: 256 is out of range 0..=255");
        assert_eq!(err(&|r| r.instances[0].master_addr = "x".into()), "instances[0].master_addr: \"x\" is not an IPv4 address");
        assert_eq!(instance_to_pb(&instance("i", &vi).unwrap()), vi, "round trip");
    }
}
