//! TCP state as the director observes it, and draining after configuration changes.

use crate::service::ServiceKey;
use crate::session::ConnState;
use crate::wire::TcpFlags;
use crate::worker::{Ctx, WorkerState};

/// The state a TCP segment moves a session to.
pub(super) fn next_state(cur: ConnState, flags: TcpFlags, from_client: bool) -> ConnState {
    if flags.contains(TcpFlags::RST) {
        ConnState::Close
    } else if flags.contains(TcpFlags::FIN) || cur == ConnState::FinWait {
        ConnState::FinWait
    } else if cur == ConnState::SynRecv && from_client && flags.contains(TcpFlags::ACK) && !flags.contains(TcpFlags::SYN) {
        ConnState::Established
    } else {
        cur
    }
}

/// After a configuration change, checks once whether the session's real server is still
/// available; if not, the session drains (until it ends, or the service's draining timeout).
/// Returns false when the session's draining time is over (the caller drops the packet).
pub(super) fn still_allowed(id: u32, ctx: &Ctx<'_>, st: &mut WorkerState) -> bool {
    let generation = ctx.services.generation_tag();
    let s = st.sessions.get(id);
    if s.generation != generation && !s.draining() {
        let skey = ServiceKey { vip: s.vip.0, port: s.vip.1, proto: s.proto };
        let svc = ctx.services.lookup(&skey);
        let draining_timeout = svc.and_then(|(_, v)| v.draining_timeout_s);
        let found = svc.and_then(|(i, v)| {
            let j = v.real_servers.iter().position(|r| (r.addr, r.port) == s.rs)?;
            Some((i, j, v.real_servers[j].available()))
        });
        let s = st.sessions.get_mut(id);
        match found {
            Some((i, j, true)) => {
                s.svc = crate::session::index16(i);
                s.rs_idx = crate::session::index16(j);
                s.generation = generation;
            }
            _ => {
                s.set_draining(true);
                // Whole seconds, rounded up: the session gets at least the timeout.
                s.drain_deadline_s = match draining_timeout {
                    Some(t) if t > 0 => crate::session::whole_s(ctx.now_ms).saturating_add(t),
                    _ => 0,
                };
                st.counters.sessions_draining += 1;
            }
        }
    }
    let s = st.sessions.get(id);
    !(s.draining() && s.drain_deadline_s != 0 && ctx.now_ms / 1000 >= u64::from(s.drain_deadline_s))
}
