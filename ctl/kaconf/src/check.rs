//! Health-check blocks inside a `real_server`: `TCP_CHECK`, `HTTP_GET`, `SSL_GET`,
//! `UDP_CHECK` (DPVS) and `MISC_CHECK`.

use std::time::Duration;

use crate::convert::{command, parse, single, unknown, Cx, Seen, CHECKS_ACTED_ON};
use crate::error::{Error, ErrorKind};
use crate::model::{ConnectOpts, HealthCheck, HttpCheck, MiscCheck, UdpCheck, Url};
use crate::tree::Node;
use crate::value;
use crate::vs::MIN_TIMER;

/// Check types keepalived has that the director does not run.
const UNSUPPORTED: &[&str] = &[
    "DNS_CHECK",
    "SMTP_CHECK",
    "BFD_CHECK",
    "FILE_CHECK",
    "PING_CHECK",
];

/// Keywords every connecting check accepts without acting on them.
const COMMON_IGNORED: &[&str] = &[
    "connect_ip",
    "bindto",
    "bind_port",
    "bind_if",
    "fwmark",
    "warmup",
    "delay_loop",
    "alpha",
    "log_all_failures",
];
const HTTP_IGNORED: &[&str] = &[
    "virtualhost",
    "http_protocol",
    "fast_recovery",
    "enable_sni",
    "tls_compliant",
];
const URL_IGNORED: &[&str] = &[
    "virtualhost",
    "regex",
    "regex_no_match",
    "regex_options",
    "regex_stack",
    "regex_min_offset",
    "regex_max_offset",
];
const UDP_IGNORED: &[&str] = &["payload", "require_reply"];
const MISC_IGNORED: &[&str] = &[
    "misc_dynamic",
    "user",
    "warmup",
    "delay_loop",
    "alpha",
    "log_all_failures",
];

/// True for every check keyword, supported or not, so that unsupported ones get a clear error.
pub(crate) fn is_check(kw: &str) -> bool {
    matches!(
        kw,
        "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "UDP_CHECK" | "MISC_CHECK"
    ) || UNSUPPORTED.contains(&kw)
}

/// `connect_timeout`, `retry` and `delay_before_retry` as given in one block; unset ones come
/// from the enclosing block.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ConnectDefaults {
    connect_timeout: Option<Duration>,
    retry: Option<u32>,
    delay_before_retry: Option<Duration>,
}

impl ConnectDefaults {
    /// These values, falling back to `outer`'s.
    pub(crate) fn or(self, outer: ConnectDefaults) -> ConnectDefaults {
        ConnectDefaults {
            connect_timeout: self.connect_timeout.or(outer.connect_timeout),
            retry: self.retry.or(outer.retry),
            delay_before_retry: self.delay_before_retry.or(outer.delay_before_retry),
        }
    }

    fn apply(self, opts: &mut ConnectOpts) {
        if let Some(v) = self.connect_timeout {
            opts.connect_timeout = v;
        }
        if let Some(v) = self.retry {
            opts.retry = v;
        }
        if let Some(v) = self.delay_before_retry {
            opts.delay_before_retry = v;
        }
    }
}

/// Reads `connect_timeout`, `retry` (or `nb_get_retry` / `nb_sock_retry`) or
/// `delay_before_retry` from `c` into `out`.
pub(crate) fn connect_default(
    c: &Node,
    seen: &mut Seen,
    out: &mut ConnectDefaults,
) -> Result<(), Error> {
    match c.keyword.as_str() {
        "connect_timeout" => {
            seen.once(c, "connect_timeout")?;
            out.connect_timeout = Some(single(c, "seconds", |s| value::seconds(s, MIN_TIMER))?);
        }
        "delay_before_retry" => {
            seen.once(c, "delay_before_retry")?;
            out.delay_before_retry =
                Some(single(c, "seconds", |s| value::seconds(s, Duration::ZERO))?);
        }
        _ => {
            seen.once(c, "retry")?;
            out.retry = Some(single(c, "count", |s| value::u32_in(s, 0, u32::MAX))?);
        }
    }
    Ok(())
}

/// A check whose unset connection settings come from its real and virtual server.
pub(crate) struct Pending {
    check: HealthCheck,
    given: ConnectDefaults,
}

impl Pending {
    pub(crate) fn finish(mut self, inherited: ConnectDefaults) -> HealthCheck {
        let values = self.given.or(inherited);
        match &mut self.check {
            HealthCheck::Tcp(c) => values.apply(c),
            HealthCheck::Http(h) | HealthCheck::Ssl(h) => values.apply(&mut h.connect),
            HealthCheck::Udp(u) => values.apply(&mut u.connect),
            HealthCheck::Misc(_) => {}
        }
        self.check
    }
}

/// Parses one check block (`n.keyword` is a check keyword).
pub(crate) fn parse_check(n: &Node, cx: &mut Cx) -> Result<Pending, Error> {
    if UNSUPPORTED.contains(&n.keyword.as_str()) {
        let what = format!(
            "{} (use TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK or MISC_CHECK)",
            n.keyword
        );
        return Err(n.err(ErrorKind::NotSupported { what }));
    }
    n.arity(0, 0, &[])?;
    let body = n.block()?;
    if !CHECKS_ACTED_ON {
        cx.not_acted_on(n);
    }
    let context = n.keyword.as_str();
    let mut seen = Seen::default();
    let mut given = ConnectDefaults::default();
    let mut connect_port = None;
    let mut urls = Vec::new();
    let mut ping_check_off = false;
    let mut misc_path = None;
    let mut misc_timeout = None;
    let is_http = matches!(context, "HTTP_GET" | "SSL_GET");
    for c in body {
        let kw = c.keyword.as_str();
        match (context, kw) {
            ("MISC_CHECK", "misc_path") => {
                seen.once(c, "misc_path")?;
                misc_path = Some(command(c)?);
            }
            ("MISC_CHECK", "misc_timeout") => {
                seen.once(c, "misc_timeout")?;
                misc_timeout = Some(single(c, "seconds", |s| value::seconds(s, MIN_TIMER))?);
            }
            ("MISC_CHECK", kw) if MISC_IGNORED.contains(&kw) => cx.ignore(c),
            ("MISC_CHECK", _) => return Err(unknown(c, context)),
            (_, "connect_port") => {
                seen.once(c, "connect_port")?;
                connect_port = Some(single(c, "port", |s| {
                    value::port(s).and_then(|p| if p == 0 { Err("port 0".into()) } else { Ok(p) })
                })?);
            }
            (
                _,
                "connect_timeout" | "retry" | "nb_get_retry" | "nb_sock_retry"
                | "delay_before_retry",
            ) => connect_default(c, &mut seen, &mut given)?,
            (_, "url") if is_http => urls.push(url(c, cx)?),
            (_, kw) if is_http && HTTP_IGNORED.contains(&kw) => cx.ignore(c),
            ("UDP_CHECK", "ping_check_off") => {
                seen.once(c, "ping_check_off")?;
                c.flag()?;
                ping_check_off = true;
            }
            ("UDP_CHECK", kw) if UDP_IGNORED.contains(&kw) => cx.ignore(c),
            (_, kw) if COMMON_IGNORED.contains(&kw) => cx.ignore(c),
            _ => return Err(unknown(c, context)),
        }
    }
    let mut connect = ConnectOpts {
        connect_port,
        ..ConnectOpts::default()
    };
    given.apply(&mut connect);
    let missing = |what: &str| n.err(ErrorKind::Missing { what: what.into() });
    let check = match context {
        "TCP_CHECK" => HealthCheck::Tcp(connect),
        "HTTP_GET" | "SSL_GET" => {
            if urls.is_empty() {
                return Err(missing("url { path ... }"));
            }
            let h = HttpCheck { urls, connect };
            if context == "HTTP_GET" {
                HealthCheck::Http(h)
            } else {
                HealthCheck::Ssl(h)
            }
        }
        "UDP_CHECK" => HealthCheck::Udp(UdpCheck {
            connect,
            ping_check_off,
        }),
        _ => {
            let misc_path = misc_path.ok_or_else(|| missing("misc_path"))?;
            HealthCheck::Misc(MiscCheck {
                misc_path,
                misc_timeout,
            })
        }
    };
    Ok(Pending { check, given })
}

/// `url { path <path> [status_code <code>] [digest <md5>] }`.
fn url(n: &Node, cx: &mut Cx) -> Result<Url, Error> {
    n.arity(0, 0, &[])?;
    let mut seen = Seen::default();
    let (mut path, mut status_code, mut digest) = (None, None, None);
    for c in n.block()? {
        match c.keyword.as_str() {
            "path" => {
                seen.once(c, "path")?;
                path = Some(single(c, "path", value::name)?);
            }
            "status_code" => {
                seen.once(c, "status_code")?;
                c.no_block()?;
                if let Some(second) = c.args.get(1) {
                    let what = "several status codes in one url".into();
                    return Err(c.arg_err(second, ErrorKind::NotSupported { what }));
                }
                let arg = c.one_arg("HTTP status code")?;
                status_code = Some(parse(c, arg, |s| {
                    if s.contains('-') {
                        return Err("status code ranges are not supported yet".into());
                    }
                    value::uint(s, 100, 599)
                        .and_then(|v| u16::try_from(v).map_err(|e| e.to_string()))
                })?);
            }
            "digest" => {
                seen.once(c, "digest")?;
                digest = Some(single(c, "MD5 digest", |s| {
                    if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                        Ok(s.to_owned())
                    } else {
                        Err("not an MD5 digest (32 hex digits)".into())
                    }
                })?);
            }
            kw if URL_IGNORED.contains(&kw) => cx.ignore(c),
            _ => return Err(unknown(c, "url")),
        }
    }
    let path = path.ok_or_else(|| {
        n.err(ErrorKind::Missing {
            what: "path".into(),
        })
    })?;
    Ok(Url {
        path,
        status_code,
        digest,
    })
}
