//! A virtual server's quorum with hysteresis, as keepalived 2.2's ipwrapper.c
//! (`set_quorum_states`, `update_quorum_state`) decides it:
//!
//! - At start the quorum is up when the alive weight is at least `quorum + hysteresis`.
//! - Down → up when the alive weight reaches `quorum + hysteresis`.
//! - Up → down when it is 0 or below `quorum - hysteresis`.
//! - Starting (or reloading) with the quorum down and a sorry server not yet in use: the
//!   quorum-down action runs (sorry server in, `quorum_down` run) once.

/// Quorum state of one virtual server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Quorum {
    pub up: bool,
    /// The sorry server is serving (keepalived's `ISALIVE(vs->s_svr)`).
    pub sorry_active: bool,
}

impl Quorum {
    /// The state keepalived starts with for alive weight `sum`.
    pub(crate) fn start(sum: u64, quorum: u64, hysteresis: u64) -> Quorum {
        Quorum {
            up: sum >= quorum.saturating_add(hysteresis),
            sorry_active: false,
        }
    }

    /// Re-evaluates with alive weight `sum`; `init` at start and after a reload. Returns the
    /// new state when the quorum-up or quorum-down action must run.
    pub(crate) fn update(
        &mut self,
        sum: u64,
        quorum: u64,
        hysteresis: u64,
        has_sorry_server: bool,
        init: bool,
    ) -> Option<bool> {
        if !self.up && sum >= quorum.saturating_add(hysteresis) {
            self.up = true;
            self.sorry_active = false;
            return Some(true);
        }
        let lost = self.up && (sum == 0 || sum < quorum.saturating_sub(hysteresis));
        let starting_down = init && !self.up && has_sorry_server && !self.sorry_active;
        if lost || starting_down {
            self.up = false;
            self.sorry_active = has_sorry_server;
            return Some(false);
        }
        None
    }
}
