//! The `lb.v1.LoadBalancer` service: each call checks its request (errors name the field),
//! then runs the `Control` operation off the async threads (it may wait on the workers).

use std::sync::Arc;

use fastpath::DropReason;
use lb_api::pb;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::convert::{self as cv, Fields};
use crate::control::{Change, Control, ControlError, LaddrTarget};

/// The API's implementation over the control facade.
#[derive(Debug, Clone)]
pub struct Api {
    control: Arc<Control>,
}

impl Api {
    pub fn new(control: Arc<Control>) -> Api {
        Api { control }
    }

    /// The control facade.
    pub(crate) fn control(&self) -> &Arc<Control> {
        &self.control
    }
}

/// The gRPC status for a control error.
pub fn status(e: ControlError) -> Status {
    let msg = e.to_string();
    match e {
        ControlError::Invalid { field, msg: m } => {
            Status::with_error_details(Code::InvalidArgument, msg, ErrorDetails::with_bad_request_violation(field, m))
        }
        ControlError::Rejected(_) => Status::invalid_argument(msg),
        ControlError::NotFound(_) => Status::not_found(msg),
        ControlError::Exists(_) => Status::already_exists(msg),
        ControlError::InUse(_) | ControlError::Reload(_) | ControlError::NoFile => Status::failed_precondition(msg),
        ControlError::Workers(_) => Status::unavailable(msg),
    }
}

type Res<T> = Result<Response<T>, Status>;

/// Runs a control operation on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ControlError> + Send + 'static) -> Result<T, Status> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(status),
        Err(e) => Err(Status::internal(format!("control task failed: {e}"))),
    }
}

fn change_to_pb(c: Change) -> pb::ConfigChange {
    let keys = |v: Vec<fastpath::service::ServiceKey>| {
        v.into_iter()
            .map(|k| pb::ServiceKey { vip: k.vip.to_string(), port: u32::from(k.port), protocol: cv::proto_to_pb(k.proto) as i32 })
            .collect()
    };
    pb::ConfigChange {
        unchanged: u32::try_from(c.unchanged).unwrap_or(u32::MAX),
        generation: c.generation,
        notes: c.notes,
        added: keys(c.added),
        removed: keys(c.removed),
        changed: keys(c.changed),
    }
}

impl Api {
    /// Services as messages, with connection counts when asked.
    fn services(control: &Control, stats: bool) -> Result<(Vec<pb::Service>, u64), ControlError> {
        let counts = if stats { Some(control.conn_counts()?) } else { None };
        let (conf, health, generation) = control.config_with_health();
        Ok((conf.virtual_servers.iter().map(|v| cv::service_to_pb(v, &health, counts.as_ref())).collect(), generation))
    }

    /// Adds or edits a real server; `add` refuses one that exists, an edit one that does not.
    async fn real_server(&self, service: Option<pb::ServiceKey>, rs: Option<pb::RealServer>, forward: i32, add: bool) -> Res<pb::Service> {
        let key = cv::key("service", service.as_ref()).map_err(status)?;
        let (ip, port, weight) = cv::rs("real_server", rs.as_ref()).map_err(status)?;
        let kind = cv::kind("forward", forward).map_err(status)?;
        let c = Arc::clone(&self.control);
        let vs = blocking(move || {
            c.update_service(key, |vs| {
                if let Some(k) = kind {
                    if vs.real_servers.is_empty() && add {
                        vs.lb_kind = k;
                    } else if k != vs.lb_kind {
                        return Err(ControlError::invalid(
                            "forward",
                            format!("{} differs from the service's {}: forwarding is set per service here", cv::kind_name(k), cv::kind_name(vs.lb_kind)),
                        ));
                    }
                }
                match (vs.real_servers.iter_mut().find(|r| r.ip == ip && r.port == port), add) {
                    (Some(_), true) => Err(ControlError::Exists(format!("real server {ip}:{port} already exists in service {}", crate::control::key_text(key)))),
                    (None, true) => {
                        vs.real_servers.push(cv::new_rs(ip, port, weight));
                        Ok(())
                    }
                    (Some(r), false) => {
                        r.weight = weight;
                        Ok(())
                    }
                    (None, false) => Err(ControlError::NotFound(format!("real server {ip}:{port} is not in service {}", crate::control::key_text(key)))),
                }
            })
        })
        .await?;
        Ok(Response::new(cv::service_to_pb(&vs.1, &self.control.health(), None)))
    }
}

#[tonic::async_trait]
impl lb_api::LoadBalancer for Api {
    async fn get_info(&self, _: Request<pb::GetInfoRequest>) -> Res<pb::Info> {
        let c = &self.control;
        let env = c.env();
        let (generation, config_revision) = c.versions();
        Ok(Response::new(pb::Info {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            workers: u32::try_from(env.workers.len()).unwrap_or(u32::MAX),
            lcores: env.workers.iter().map(|w| w.lcore).collect(),
            ports: env
                .ports
                .iter()
                .map(|p| pb::PortInfo {
                    name: p.name.clone(),
                    device: p.device.clone(),
                    mac: p.mac.clone(),
                    addresses: p.addresses.clone(),
                    kernel_tap: p.tap.as_ref().map(|(n, _)| n.clone()).unwrap_or_default(),
                    link_up: p.port.as_ref().and_then(|x| x.link().ok()).is_some_and(|l| l.up),
                })
                .collect(),
            uptime_ms: u64::try_from(env.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            generation,
            services: u32::try_from(c.table().services().len()).unwrap_or(u32::MAX),
            services_file: env.services_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            max_sessions: u64::try_from(env.max_sessions).unwrap_or(u64::MAX),
            api_socket: env.api_socket.display().to_string(),
            metrics_listen: env.metrics_listen.map(|a| a.to_string()).unwrap_or_default(),
            config_revision,
            instance_id: c.instance_id(),
            sync_ready: c.shared().sync.ready(),
        }))
    }

    async fn list_services(&self, req: Request<pb::ListServicesRequest>) -> Res<pb::ListServicesResponse> {
        let stats = req.into_inner().stats;
        let c = Arc::clone(&self.control);
        let (services, generation) = blocking(move || Self::services(&c, stats)).await?;
        Ok(Response::new(pb::ListServicesResponse { services, generation }))
    }

    async fn get_service(&self, req: Request<pb::GetServiceRequest>) -> Res<pb::Service> {
        let r = req.into_inner();
        let key = cv::key("key", r.key.as_ref()).map_err(status)?;
        let c = Arc::clone(&self.control);
        let s = blocking(move || {
            let vs = c.service(key)?;
            let counts = if r.stats { Some(c.conn_counts()?) } else { None };
            Ok(cv::service_to_pb(&vs, &c.health(), counts.as_ref()))
        })
        .await?;
        Ok(Response::new(s))
    }

    async fn add_service(&self, req: Request<pb::AddServiceRequest>) -> Res<pb::Service> {
        let s = req.into_inner().service.ok_or_else(|| status(ControlError::invalid("service", "is required")))?;
        let vs = cv::service(&s, None, Fields::ALL).map_err(status)?;
        let c = Arc::clone(&self.control);
        let vs = blocking(move || {
            c.add_service(vs.clone())?;
            Ok(vs)
        })
        .await?;
        Ok(Response::new(cv::service_to_pb(&vs, &self.control.health(), None)))
    }

    async fn edit_service(&self, req: Request<pb::EditServiceRequest>) -> Res<pb::Service> {
        let r = req.into_inner();
        let s = r.service.ok_or_else(|| status(ControlError::invalid("service", "is required")))?;
        let key = cv::key("service", s.key.as_ref()).map_err(status)?;
        let fields = Fields::from_mask(&r.fields).map_err(status)?;
        let c = Arc::clone(&self.control);
        let (_, vs) = blocking(move || {
            c.update_service(key, |vs| {
                *vs = cv::service(&s, Some(vs), fields)?;
                Ok(())
            })
        })
        .await?;
        Ok(Response::new(cv::service_to_pb(&vs, &self.control.health(), None)))
    }

    async fn delete_service(&self, req: Request<pb::DeleteServiceRequest>) -> Res<pb::DeleteServiceResponse> {
        let key = cv::key("key", req.into_inner().key.as_ref()).map_err(status)?;
        let c = Arc::clone(&self.control);
        blocking(move || c.delete_service(key)).await?;
        Ok(Response::new(pb::DeleteServiceResponse {}))
    }

    async fn clear_services(&self, _: Request<pb::ClearServicesRequest>) -> Res<pb::ClearServicesResponse> {
        let c = Arc::clone(&self.control);
        let ch = blocking(move || c.clear_services()).await?;
        Ok(Response::new(pb::ClearServicesResponse { removed: u32::try_from(ch.removed.len()).unwrap_or(u32::MAX) }))
    }

    async fn add_real_server(&self, req: Request<pb::AddRealServerRequest>) -> Res<pb::Service> {
        let r = req.into_inner();
        self.real_server(r.service, r.real_server, r.forward, true).await
    }

    async fn edit_real_server(&self, req: Request<pb::EditRealServerRequest>) -> Res<pb::Service> {
        let r = req.into_inner();
        self.real_server(r.service, r.real_server, r.forward, false).await
    }

    async fn delete_real_server(&self, req: Request<pb::DeleteRealServerRequest>) -> Res<pb::Service> {
        let r = req.into_inner();
        let key = cv::key("service", r.service.as_ref()).map_err(status)?;
        let ip = cv::ip("addr", &r.addr).map_err(status)?;
        let port = cv::port("port", r.port).map_err(status)?;
        let c = Arc::clone(&self.control);
        let (_, vs) = blocking(move || {
            c.update_service(key, |vs| {
                let before = vs.real_servers.len();
                vs.real_servers.retain(|x| !(x.ip == ip && x.port == port));
                if vs.real_servers.len() == before {
                    return Err(ControlError::NotFound(format!("real server {ip}:{port} is not in service {}", crate::control::key_text(key))));
                }
                Ok(())
            })
        })
        .await?;
        Ok(Response::new(cv::service_to_pb(&vs, &self.control.health(), None)))
    }

    async fn list_local_address_groups(&self, _: Request<pb::ListLocalAddressGroupsRequest>) -> Res<pb::ListLocalAddressGroupsResponse> {
        let groups = self.control.groups().iter().map(|(g, used)| cv::group_to_pb(g, used)).collect();
        Ok(Response::new(pb::ListLocalAddressGroupsResponse { groups }))
    }

    async fn add_local_addresses(&self, req: Request<pb::AddLocalAddressesRequest>) -> Res<pb::LocalAddressGroup> {
        let r = req.into_inner();
        let target = laddr_target(&r.group, r.service.as_ref()).map_err(status)?;
        if r.addrs.is_empty() {
            return Err(status(ControlError::invalid("addrs", "at least one local address is required")));
        }
        let addrs = cv::laddrs("addrs", &r.addrs).map_err(status)?;
        let c = Arc::clone(&self.control);
        let g = blocking(move || c.add_laddrs(&target, addrs)).await?;
        Ok(Response::new(cv::group_to_pb(&g, &[])))
    }

    async fn delete_local_addresses(&self, req: Request<pb::DeleteLocalAddressesRequest>) -> Res<pb::DeleteLocalAddressesResponse> {
        let r = req.into_inner();
        let target = laddr_target(&r.group, r.service.as_ref()).map_err(status)?;
        let addrs = r.addrs.iter().enumerate().map(|(i, a)| cv::ip(&format!("addrs[{i}]"), a)).collect::<Result<Vec<_>, _>>().map_err(status)?;
        let c = Arc::clone(&self.control);
        blocking(move || c.delete_laddrs(&target, &addrs)).await?;
        Ok(Response::new(pb::DeleteLocalAddressesResponse {}))
    }

    async fn get_timeouts(&self, _: Request<pb::GetTimeoutsRequest>) -> Res<pb::Timeouts> {
        let t = self.control.timeouts();
        Ok(Response::new(pb::Timeouts { tcp: t.tcp_established, tcpfin: t.tcp_fin_wait, udp: t.udp }))
    }

    async fn set_timeouts(&self, req: Request<pb::SetTimeoutsRequest>) -> Res<pb::Timeouts> {
        let t = req.into_inner().timeouts.ok_or_else(|| status(ControlError::invalid("timeouts", "is required")))?;
        let c = Arc::clone(&self.control);
        let t = blocking(move || c.set_timeouts(t.tcp, t.tcpfin, t.udp)).await?;
        Ok(Response::new(pb::Timeouts { tcp: t.tcp_established, tcpfin: t.tcp_fin_wait, udp: t.udp }))
    }

    async fn list_sessions(&self, req: Request<pb::ListSessionsRequest>) -> Res<pb::ListSessionsResponse> {
        let r = req.into_inner();
        let filter = cv::session_filter(&r).map_err(status)?;
        let limit = match r.limit {
            0 => 1000,
            n if n > 100_000 => return Err(status(ControlError::invalid("limit", format!("{n} is above 100000")))),
            n => n as usize,
        };
        let c = Arc::clone(&self.control);
        let (list, matched) = blocking(move || c.sessions(filter, limit)).await?;
        Ok(Response::new(pb::ListSessionsResponse { sessions: list.iter().map(cv::session_to_pb).collect(), matched }))
    }

    async fn get_stats(&self, req: Request<pb::GetStatsRequest>) -> Res<pb::Stats> {
        let with_services = req.into_inner().services;
        let c = Arc::clone(&self.control);
        let services = if with_services { blocking(move || Self::services(&c, true)).await?.0 } else { Vec::new() };
        let c = &self.control;
        let workers = c
            .worker_counters()
            .into_iter()
            .map(|(w, counters)| pb::WorkerStats {
                worker: u32::try_from(w.worker).unwrap_or(u32::MAX),
                lcore: w.lcore,
                sessions: w.sessions.load(std::sync::atomic::Ordering::Relaxed),
                loops: w.loops.load(std::sync::atomic::Ordering::Relaxed),
                busy_loops: w.busy_loops.load(std::sync::atomic::Ordering::Relaxed),
                counters: counters.scalars().iter().map(|(n, v)| pb::Counter { name: (*n).into(), value: *v }).collect(),
                drops: DropReason::ALL.iter().map(|r| pb::Counter { name: r.name().into(), value: counters.drops_for(*r) }).collect(),
            })
            .collect();
        let mut ports = Vec::new();
        for p in &c.env().ports {
            let entries = p.port.iter().map(|x| (p.name.clone(), x, false)).chain(p.tap.iter().map(|(n, x)| (n.clone(), x, true)));
            for (name, port, tap) in entries {
                let s = port.stats().unwrap_or_default();
                ports.push(pb::PortStats {
                    name,
                    device: port.name().into(),
                    kernel_tap: tap,
                    ipackets: s.ipackets,
                    opackets: s.opackets,
                    ibytes: s.ibytes,
                    obytes: s.obytes,
                    imissed: s.imissed,
                    ierrors: s.ierrors,
                    oerrors: s.oerrors,
                    rx_nombuf: s.rx_nombuf,
                });
            }
        }
        let uptime_ms = u64::try_from(c.env().started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(Response::new(pb::Stats { uptime_ms, workers, ports, services }))
    }

    async fn zero_counters(&self, _: Request<pb::ZeroCountersRequest>) -> Res<pb::ZeroCountersResponse> {
        let c = Arc::clone(&self.control);
        blocking(move || c.zero_counters()).await?;
        Ok(Response::new(pb::ZeroCountersResponse {}))
    }

    async fn reload(&self, _: Request<pb::ReloadRequest>) -> Res<pb::ConfigChange> {
        let c = Arc::clone(&self.control);
        let ch = blocking(move || c.reload()).await?;
        super::audit::result(format!("reload (API): {ch}"));
        Ok(Response::new(change_to_pb(ch)))
    }

    async fn save(&self, _: Request<pb::SaveRequest>) -> Res<pb::SaveResponse> {
        Ok(Response::new(pb::SaveResponse { keepalived_conf: self.control.save() }))
    }

    async fn apply(&self, req: Request<pb::ApplyRequest>) -> Res<pb::ConfigChange> {
        let r = req.into_inner();
        let groups = r.groups.iter().enumerate().map(|(i, g)| cv::group(&format!("groups[{i}]"), g)).collect::<Result<Vec<_>, _>>().map_err(status)?;
        let (running, _) = self.control.config();
        let mut services = Vec::new();
        for (i, s) in r.services.iter().enumerate() {
            let key = cv::key(&format!("services[{i}]"), s.key.as_ref()).map_err(status)?;
            let base = running.virtual_servers.iter().find(|v| crate::control::vs_key(v) == key);
            // Settings the API cannot express (health checks, ...) survive on services and real
            // servers that stay.
            let vs = cv::service(s, base, Fields::ALL).map_err(|e| status(prefix_field(e, &format!("services[{i}]"))))?;
            services.push(vs);
        }
        let c = Arc::clone(&self.control);
        let timeouts = r.timeouts;
        let ch = blocking(move || {
            let ch = c.apply(groups, services)?;
            if let Some(t) = timeouts {
                c.set_timeouts(t.tcp, t.tcpfin, t.udp)?;
            }
            Ok(ch)
        })
        .await?;
        Ok(Response::new(change_to_pb(ch)))
    }

    async fn set_health(&self, req: Request<pb::SetHealthRequest>) -> Res<pb::SetHealthResponse> {
        self.set_health_impl(req.into_inner()).await
    }

    async fn set_ownership(&self, req: Request<pb::SetOwnershipRequest>) -> Res<pb::SetOwnershipResponse> {
        self.set_ownership_impl(req.into_inner()).await
    }

    async fn list_vrrp(&self, _: Request<pb::ListVrrpRequest>) -> Res<pb::ListVrrpResponse> {
        Ok(Response::new(self.list_vrrp_impl()))
    }

    async fn start_daemon(&self, req: Request<pb::StartDaemonRequest>) -> Res<pb::SyncStatus> {
        self.start_daemon_impl(req.into_inner()).await
    }

    async fn stop_daemon(&self, req: Request<pb::StopDaemonRequest>) -> Res<pb::SyncStatus> {
        self.stop_daemon_impl(req.into_inner()).await
    }

    async fn list_daemons(&self, _: Request<pb::ListDaemonsRequest>) -> Res<pb::SyncStatus> {
        Ok(Response::new(self.sync_status()))
    }
}

impl Api {
    /// `SetHealth`: the batch is checked whole here and in `Control::set_health`, then applied.
    pub(crate) async fn set_health_impl(&self, r: pb::SetHealthRequest) -> Res<pb::SetHealthResponse> {
        let (servers, quorum) = cv::health_updates(&r).map_err(status)?;
        let source = r.source.chars().filter(|c| c.is_ascii_graphic()).take(64).collect::<String>();
        let c = Arc::clone(&self.control);
        let out = blocking(move || c.set_health(&servers, &quorum, &source)).await?;
        changed(out.changed, out.unknown.len());
        Ok(Response::new(pb::SetHealthResponse { generation: out.generation, changed: out.changed, unknown: out.unknown }))
    }
}

/// Tells the audit line what a status push (`SetHealth`, `SetOwnership`) changed; one that
/// changed nothing is not worth an info line (lb-slowpath repeats its state).
pub(crate) fn changed(changed: u32, unknown: usize) {
    if changed == 0 {
        super::audit::unchanged();
    }
    super::audit::result(if unknown == 0 { format!("{changed} changed") } else { format!("{changed} changed, {unknown} unknown") });
}

/// `service.port` of the i-th service of a list becomes `services[i].port`.
fn prefix_field(e: ControlError, prefix: &str) -> ControlError {
    match e {
        ControlError::Invalid { field, msg } => ControlError::Invalid { field: field.strip_prefix("service").map_or(field.clone(), |rest| format!("{prefix}{rest}")), msg },
        other => other,
    }
}

/// A local-address request names a group or a service, not both.
fn laddr_target(group: &str, service: Option<&pb::ServiceKey>) -> Result<LaddrTarget, ControlError> {
    match (group.is_empty(), service) {
        (false, None) => Ok(LaddrTarget::Group(cv::group_name("group", group)?)),
        (true, Some(k)) => Ok(LaddrTarget::Service(cv::key("service", Some(k))?)),
        (true, None) => Err(ControlError::invalid("group", "name a local-address group or a service")),
        (false, Some(_)) => Err(ControlError::invalid("service", "name a local-address group or a service, not both")),
    }
}
