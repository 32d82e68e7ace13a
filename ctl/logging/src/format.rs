//! The stderr line format, and a capturing subscriber for tests.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::{Event, Level, Subscriber};
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

/// A subscriber writing [`Human`] lines for `prog` into the returned [`Capture`], with
/// `filter` (an `EnvFilter` directive): for tests, with `tracing::subscriber::with_default`
/// or `tracing::dispatcher::with_default`.
pub fn capture(prog: &'static str, filter: &str) -> (impl Subscriber + Send + Sync, Capture) {
    let cap = Capture::default();
    let filter = tracing_subscriber::EnvFilter::builder().parse_lossy(filter);
    let layer = tracing_subscriber::fmt::layer().event_format(Human::new(prog)).with_writer(cap.clone());
    (tracing_subscriber::registry().with(filter).with(layer), cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_the_program_the_level_and_the_fields() {
        let (sub, cap) = capture("lbd", "debug");
        tracing::subscriber::with_default(sub, || {
            tracing::info!(port = "wan", "ready");
            tracing::warn!("api_listen: accept: {}", "Too many open files");
            tracing::error!(code = 3, "boom");
            tracing::debug!("detail");
            tracing::trace!("not shown");
        });
        assert_eq!(cap.text(), "lbd: ready port=\"wan\"\nlbd: warning: api_listen: accept: Too many open files\nlbd: error: boom code=3\nlbd: debug: detail\n");
        assert_eq!(cap.lines_with("boom").len(), 1);
    }
}
