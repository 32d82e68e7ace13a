//! The stderr line format, and a capturing subscriber for tests.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tracing::{Dispatch, Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

/// `prog: [level: ]message key=value ...`, one line per event: the daemons' historical
/// `lbd: ...` / `lbd: warning: ...` lines, with the event's fields after the message.
#[derive(Debug, Clone, Copy)]
pub struct Human {
    prog: &'static str,
}

impl Human {
    pub fn new(prog: &'static str) -> Human {
        Human { prog }
    }
}

impl<S, N> FormatEvent<S, N> for Human
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let tag = match *event.metadata().level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            Level::INFO => "",
            Level::DEBUG => "debug: ",
            Level::TRACE => "trace: ",
        };
        write!(w, "{}: {tag}", self.prog)?;
        ctx.format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Lines written by a [`capture`] subscriber.
#[derive(Debug, Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }

    /// The lines that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.text().lines().filter(|l| l.contains(needle)).map(str::to_owned).collect()
    }
}

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// A dispatcher writing [`Human`] lines for `prog` into the returned [`Capture`], with
/// `filter` (an `EnvFilter` directive): for tests, with `tracing::dispatcher::with_default`
/// (or `set_default` on the threads that should be captured).
///
/// tracing-core 0.1 caches a callsite's interest process-wide. While exactly one `Dispatch`
/// is registered it asks *the registering thread's* default instead of that dispatch
/// (tokio-rs/tracing#3611), so a test thread without a subscriber that reaches a log line
/// first would switch that line off for the capture on another thread for good. A second
/// registered dispatch, kept for the life of the process, keeps tracing on the general path
/// (every registered dispatch is asked); the interest of lines seen before is rebuilt.
pub fn capture(prog: &'static str, filter: &str) -> (Dispatch, Capture) {
    static SECOND: OnceLock<Dispatch> = OnceLock::new();
    SECOND.get_or_init(|| Dispatch::new(tracing_subscriber::registry()));
    let cap = Capture::default();
    let filter = tracing_subscriber::EnvFilter::builder().parse_lossy(filter);
    let layer = tracing_subscriber::fmt::layer().event_format(Human::new(prog)).with_writer(cap.clone());
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(filter).with(layer));
    tracing::callsite::rebuild_interest_cache();
    (dispatch, cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_the_program_the_level_and_the_fields() {
        let (d, cap) = capture("lbd", "debug");
        tracing::dispatcher::with_default(&d, || {
            tracing::info!(port = "wan", "ready");
            tracing::warn!("api_listen: accept: {}", "Too many open files");
            tracing::error!(code = 3, "boom");
            tracing::debug!("detail");
            tracing::trace!("not shown");
        });
        assert_eq!(cap.text(), "lbd: ready port=\"wan\"\nlbd: warning: api_listen: accept: Too many open files\nlbd: error: boom code=3\nlbd: debug: detail\n");
        assert_eq!(cap.lines_with("boom").len(), 1);
    }

    /// tokio-rs/tracing#3611: a thread without a subscriber reaching a line first must not
    /// switch it off for a capture living on another thread. (Fails on the old `capture` when
    /// run alone: other tests of this binary register dispatches of their own.)
    #[test]
    fn a_line_first_reached_elsewhere_is_still_captured() {
        fn line(n: u32) {
            tracing::warn!("first reached on another thread {n}");
        }
        let (d, cap) = capture("lbd", "info");
        std::thread::spawn(|| line(1)).join().unwrap();
        tracing::dispatcher::with_default(&d, || line(2));
        assert_eq!(cap.text(), "lbd: warning: first reached on another thread 2\n");
    }
}
