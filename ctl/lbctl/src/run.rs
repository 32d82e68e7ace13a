//! Runs a parsed command against lbd and prints the result.

use std::io::{Read, Write};
use std::time::Duration;

use lb_api::{pb, Client};
use tonic::Code;

use crate::args::{AccessList, Command, Globals, ListView, Op, UsageError};
use crate::table::Rate;
use crate::{json, laddr, rules, sync, table, top, vrrp};

/// Why a command failed; each kind has its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(#[from] UsageError),
    /// Boxed: a `Status` is large and errors travel through every call.
    #[error("{}", .0.message())]
    Status(Box<tonic::Status>),
    #[error("{0}")]
    Connect(#[from] lb_api::ConnectError),
    #[error("{0}")]
    Io(String),
    /// The reader went away; not an error for the user.
    #[error("broken pipe")]
    BrokenPipe,
}

impl From<tonic::Status> for CliError {
    fn from(s: tonic::Status) -> Self {
        CliError::Status(Box::new(s))
    }
}

impl CliError {
    /// 0 ok, 1 runtime or server error, 2 usage or invalid argument, 3 not found.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Status(s) => match s.code() {
                Code::InvalidArgument => 2,
                Code::NotFound => 3,
                _ => 1,
            },
            CliError::Connect(_) | CliError::Io(_) => 1,
            CliError::BrokenPipe => 0,
        }
    }
}

/// Writes to stdout; a closed pipe is reported as `BrokenPipe`, never a panic.
pub fn emit(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(CliError::BrokenPipe),
        Err(e) => Err(CliError::Io(format!("cannot write output: {e}"))),
    }
}

fn emit_json(v: &serde_json::Value) -> Result<(), CliError> {
    emit(&format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default()))
}

async fn get_service(c: &mut Client, key: &pb::ServiceKey, stats: bool) -> Result<pb::Service, CliError> {
    Ok(c.get_service(pb::GetServiceRequest { key: Some(key.clone()), stats }).await?.into_inner())
}

async fn services(c: &mut Client, stats: bool, only: Option<&pb::ServiceKey>) -> Result<Vec<pb::Service>, CliError> {
    match only {
        Some(k) => Ok(vec![get_service(c, k, stats).await?]),
        None => Ok(c.list_services(pb::ListServicesRequest { stats }).await?.into_inner().services),
    }
}

/// Per-second connection, packet and byte rates between two listings (`--rate`).
fn rates(a: &[pb::Service], b: &[pb::Service], secs: u64) -> Vec<(Rate, Vec<Rate>)> {
    let d = |x: Option<&pb::ConnCounters>, y: Option<&pb::ConnCounters>| {
        let (x, y) = (x.copied().unwrap_or_default(), y.copied().unwrap_or_default());
        Rate {
            cps: y.conns.saturating_sub(x.conns) / secs,
            inpps: y.pkts_in.saturating_sub(x.pkts_in) / secs,
            outpps: y.pkts_out.saturating_sub(x.pkts_out) / secs,
            inbps: y.bytes_in.saturating_sub(x.bytes_in) / secs,
            outbps: y.bytes_out.saturating_sub(x.bytes_out) / secs,
        }
    };
    b.iter()
        .map(|s| {
            let old = a.iter().find(|o| o.key == s.key);
            let rs = s.real_servers.iter().map(|r| d(old.and_then(|o| o.real_servers.iter().find(|x| x.addr == r.addr && x.port == r.port)).and_then(|x| x.stats.as_ref()), r.stats.as_ref())).collect();
            (d(old.and_then(|o| o.stats.as_ref()), s.stats.as_ref()), rs)
        })
        .collect()
}

async fn edit(c: &mut Client, service: pb::Service, fields: Vec<String>) -> Result<pb::Service, CliError> {
    Ok(c.edit_service(pb::EditServiceRequest { service: Some(service), fields }).await?.into_inner())
}

/// Runs one command.
pub async fn run(g: &Globals, cmd: Command, c: &mut Client) -> Result<(), CliError> {
    let n = g.numeric;
    match cmd {
        Command::Help | Command::Version => unreachable!("handled before connecting"),
        Command::List { view: ListView::Timeout, .. } => {
            let t = c.get_timeouts(pb::GetTimeoutsRequest {}).await?.into_inner();
            if g.json {
                return emit_json(&json::timeouts(&t));
            }
            emit(&table::timeouts(&t))
        }
        Command::List { view, service } => {
            let mut list = services(c, true, service.as_ref()).await?;
            let mut r = Vec::new();
            if view == ListView::Rate {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let later = services(c, true, service.as_ref()).await?;
                r = rates(&list, &later, 1);
                list = later;
            }
            if g.json {
                return emit_json(&json::services(&list));
            }
            let f = table::ListFmt { view, numeric: n, exact: g.exact, nosort: g.nosort, persistent_conn: g.persistent_conn, one_service: service.is_some() };
            emit(&table::services(&list, f, &r))
        }
        Command::AddService(so) => {
            let s = c.add_service(pb::AddServiceRequest { service: Some(rules::service_from_opts(&so)) }).await?.into_inner();
            if g.json {
                return emit_json(&json::service(&s));
            }
            Ok(())
        }
        Command::EditService(so) => {
            let mut s = get_service(c, &so.key, false).await?;
            let fields = rules::overlay(&mut s, &so);
            if fields.is_empty() {
                return Err(UsageError("-E: nothing to change (give -s, -p, -M, --laddr-group, --cps, ...)".into()).into());
            }
            let s = edit(c, s, fields).await?;
            if g.json {
                return emit_json(&json::service(&s));
            }
            Ok(())
        }
        Command::DeleteService(key) => {
            c.delete_service(pb::DeleteServiceRequest { key: Some(key) }).await?;
            Ok(())
        }
        Command::Clear => {
            c.clear_services(pb::ClearServicesRequest {}).await?;
            Ok(())
        }
        Command::AddRs(r) => {
            let rs = pb::RealServer { addr: r.addr, port: r.port, weight: r.weight.unwrap_or(1), ..Default::default() };
            let forward = r.forward.map_or(0, |f| f as i32);
            let s = c.add_real_server(pb::AddRealServerRequest { service: Some(r.service), real_server: Some(rs), forward }).await?.into_inner();
            if g.json {
                return emit_json(&json::service(&s));
            }
            Ok(())
        }
        Command::EditRs(r) => {
            let rs = pb::RealServer { addr: r.addr, port: r.port, weight: r.weight.unwrap_or(1), ..Default::default() };
            let forward = r.forward.map_or(0, |f| f as i32);
            let s = c.edit_real_server(pb::EditRealServerRequest { service: Some(r.service), real_server: Some(rs), forward }).await?.into_inner();
            if g.json {
                return emit_json(&json::service(&s));
            }
            Ok(())
        }
        Command::DeleteRs(r) => {
            c.delete_real_server(pb::DeleteRealServerRequest { service: Some(r.service), addr: r.addr, port: r.port }).await?;
            Ok(())
        }
        Command::Zero => {
            c.zero_counters(pb::ZeroCountersRequest {}).await?;
            Ok(())
        }
        Command::SaveRules => {
            let list = services(c, false, None).await?;
            let groups = c.list_local_address_groups(pb::ListLocalAddressGroupsRequest {}).await?.into_inner().groups;
            let t = c.get_timeouts(pb::GetTimeoutsRequest {}).await?.into_inner();
            if g.json {
                return emit_json(&serde_json::json!({"groups": json::groups(&groups)["groups"], "services": json::services(&list)["services"], "timeouts": json::timeouts(&t)}));
            }
            emit(&rules::save(&groups, &list, Some(&t), n, g.nosort))
        }
        Command::Restore => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| CliError::Io(format!("cannot read rules from stdin: {e}")))?;
            let req = rules::restore(&text)?;
            let ch = c.apply(req).await?.into_inner();
            if g.json {
                return emit_json(&json::change(&ch));
            }
            Ok(())
        }
        Command::SetTimeouts(tcp, tcpfin, udp) => {
            let t = c.set_timeouts(pb::SetTimeoutsRequest { timeouts: Some(pb::Timeouts { tcp, tcpfin, udp }) }).await?.into_inner();
            if g.json {
                return emit_json(&json::timeouts(&t));
            }
            Ok(())
        }
        Command::LaddrList => {
            let groups = c.list_local_address_groups(pb::ListLocalAddressGroupsRequest {}).await?.into_inner().groups;
            if g.json {
                return emit_json(&json::groups(&groups));
            }
            emit(&table::groups(&groups))
        }
        Command::LaddrAdd { to, addrs, ifname } => {
            let addrs = addrs.into_iter().map(|addr| pb::LocalAddress { addr, ifname: ifname.clone().unwrap_or_default() }).collect();
            let (group, service) = laddr::request_target(to);
            let gr = c.add_local_addresses(pb::AddLocalAddressesRequest { group, addrs, service }).await?.into_inner();
            if g.json {
                return emit_json(&json::groups(&[gr]));
            }
            Ok(())
        }
        Command::LaddrDel { from, addrs } => {
            let (group, service) = laddr::request_target(from);
            c.delete_local_addresses(pb::DeleteLocalAddressesRequest { group, addrs, service }).await?;
            Ok(())
        }
        Command::LaddrGet { service } => {
            let services = c.list_services(pb::ListServicesRequest { stats: false }).await?.into_inner().services;
            let groups = c.list_local_address_groups(pb::ListLocalAddressGroupsRequest {}).await?.into_inner().groups;
            let shown = laddr::per_service(&services, &groups, service.as_ref()).map_err(|m| CliError::Status(Box::new(tonic::Status::not_found(m))))?;
            if g.json {
                return emit_json(&laddr::json(&shown));
            }
            emit(&laddr::dpvs_table(&shown))
        }
        Command::Sessions(req, ipvsadm_style) => {
            let r = c.list_sessions(req).await?.into_inner();
            if g.json {
                return emit_json(&json::sessions(&r));
            }
            if ipvsadm_style {
                emit(&table::connections(&r.sessions, n, g.persistent_conn))
            } else {
                emit(&table::sessions(&r.sessions, r.matched))
            }
        }
        Command::RsList { service } => {
            let list = services(c, false, service.as_ref()).await?;
            if g.json {
                return emit_json(&json::services(&list));
            }
            let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            emit(&table::real_servers(&list, now_ms))
        }
        Command::Stats { services: with } => {
            let s = c.get_stats(pb::GetStatsRequest { services: with }).await?.into_inner();
            if g.json {
                return emit_json(&json::stats(&s));
            }
            let mut text = table::stats(&s);
            if with {
                text.push('\n');
                text.push_str(&table::services(&s.services, table::ListFmt { view: ListView::Stats, numeric: true, ..Default::default() }, &[]));
            }
            emit(&text)
        }
        Command::Access { list, op, service, cidrs } => access(g, c, list, op, service, cidrs).await,
        Command::FlowSet { service, cps, interval, max_conns } => {
            let so = crate::args::ServiceOpts { key: service.clone(), cps, cps_interval: interval, max_conns, ..Default::default() };
            let mut s = get_service(c, &service, false).await?;
            let fields = rules::overlay(&mut s, &so);
            if fields.is_empty() {
                return Err(UsageError("flow set: give --cps, --cps-interval and/or --max-conns".into()).into());
            }
            let s = edit(c, s, fields).await?;
            if g.json {
                return emit_json(&json::service(&s));
            }
            Ok(())
        }
        Command::FlowList => {
            let list = services(c, false, None).await?;
            if g.json {
                return emit_json(&json::services(&list));
            }
            emit(&table::service_lines(&list, |s| {
                let f = s.flow.unwrap_or_default();
                format!("cps {} interval {} s max-conns {}", f.cps, f.interval_s.max(1), f.max_conns)
            }))
        }
        Command::Reload => {
            let ch = c.reload(pb::ReloadRequest {}).await?.into_inner();
            if g.json {
                return emit_json(&json::change(&ch));
            }
            let mut text = format!("reloaded: {} added, {} removed, {} changed, {} unchanged (generation {})\n", ch.added.len(), ch.removed.len(), ch.changed.len(), ch.unchanged, ch.generation);
            for note in &ch.notes {
                text.push_str(&format!("note: {note}\n"));
            }
            emit(&text)
        }
        Command::Info => {
            let i = c.get_info(pb::GetInfoRequest {}).await?.into_inner();
            if g.json {
                return emit_json(&json::info(&i));
            }
            emit(&table::info(&i))
        }
        Command::Vrrp => {
            let r = c.list_vrrp(pb::ListVrrpRequest {}).await?.into_inner();
            if g.json {
                return emit_json(&vrrp::to_json(&r));
            }
            let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            emit(&vrrp::table(&r, now_ms))
        }
        Command::StartDaemon(daemon) => {
            let st = c.start_daemon(pb::StartDaemonRequest { daemon: Some(daemon) }).await?.into_inner();
            if g.json {
                return emit_json(&sync::to_json(&st));
            }
            Ok(())
        }
        Command::StopDaemon(role) => {
            let st = c.stop_daemon(pb::StopDaemonRequest { role: role as i32 }).await?.into_inner();
            if g.json {
                return emit_json(&sync::to_json(&st));
            }
            Ok(())
        }
        Command::ListDaemons => {
            let st = c.list_daemons(pb::ListDaemonsRequest {}).await?.into_inner();
            if g.json {
                return emit_json(&sync::to_json(&st));
            }
            emit(&sync::table(&st))
        }
        Command::SaveConf => {
            let s = c.save(pb::SaveRequest {}).await?.into_inner();
            if g.json {
                return emit_json(&serde_json::json!({"keepalived_conf": s.keepalived_conf}));
            }
            emit(&s.keepalived_conf)
        }
        Command::Top { once, interval_s } => top::run(c, once, interval_s, g.json).await,
    }
}

async fn access(g: &Globals, c: &mut Client, list: AccessList, op: Op, service: Option<pb::ServiceKey>, cidrs: Vec<String>) -> Result<(), CliError> {
    let name = if list == AccessList::Allow { "allow" } else { "deny" };
    if op == Op::List {
        let all = services(c, false, service.as_ref()).await?;
        if g.json {
            return emit_json(&json::services(&all));
        }
        return emit(&table::service_lines(&all, |s| {
            let l = if list == AccessList::Allow { &s.allow } else { &s.deny };
            format!("{name}: {}", if l.is_empty() { "-".to_owned() } else { l.join(" ") })
        }));
    }
    let key = service.ok_or_else(|| UsageError(format!("{name}: a service is needed (-t|-u vip:port)")))?;
    let mut s = get_service(c, &key, false).await?;
    let l = if list == AccessList::Allow { &mut s.allow } else { &mut s.deny };
    for cidr in cidrs {
        if op == Op::Add {
            if !l.contains(&cidr) {
                l.push(cidr);
            }
        } else {
            let before = l.len();
            l.retain(|x| x != &cidr && x.split('/').next() != Some(cidr.as_str()));
            if l.len() == before {
                return Err(tonic::Status::not_found(format!("{cidr} is not in the {name} list of {key}")).into());
            }
        }
    }
    let s = edit(c, s, vec![name.to_owned()]).await?;
    if g.json {
        return emit_json(&json::service(&s));
    }
    Ok(())
}
