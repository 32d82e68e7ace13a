//! Health-check blocks inside a `real_server`: `TCP_CHECK`, `HTTP_GET`, `SSL_GET`,
//! `UDP_CHECK` and `MISC_CHECK`.
//!
//! Every keyword keepalived 2.2 has in these blocks is either stored in the model (the
//! slowpath acts on it) or refused with "not supported yet" at its position; none is skipped.
//! Settings a check leaves out come from its real server, then its virtual server, then
//! keepalived's defaults ([`CheckDefaults`]).

use std::time::Duration;

use crate::convert::{choice, command, parse, single, unknown, Cx, Seen, CHECKS_ACTED_ON};
use crate::error::{Error, ErrorKind};
use crate::model::{
    CheckCommon, ConnectOpts, HealthCheck, HttpCheck, HttpProtocol, MiscCheck, UdpCheck, Url,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_DELAY_BEFORE_RETRY, DEFAULT_DELAY_LOOP,
    DEFAULT_HTTP_DELAY_BEFORE_RETRY, DEFAULT_MISC_RETRY, DEFAULT_RETRY, HTTP_PROTOCOLS,
};
use crate::tree::Node;
use crate::value;
use crate::vs::MIN_TIMER;

/// Check types keepalived has that the director does not run.
pub(crate) const UNSUPPORTED: &[&str] = &[
    "DNS_CHECK",
    "SMTP_CHECK",
    "BFD_CHECK",
    "FILE_CHECK",
    "PING_CHECK",
];

/// keepalived keywords of the check blocks that are refused, with what the error says.
/// `(context, keyword, what)`; context `""` is any check.
pub(crate) const REFUSED: &[(&str, &str, &str)] = &[
    (
        "",
        "bind_if",
        "bind_if (probes leave by the route to their target)",
    ),
    ("", "fwmark", "fwmark on health-check probes"),
    (
        "HTTP",
        "fast_recovery",
        "fast_recovery (probing again at once while down)",
    ),
    ("HTTP", "tls_compliant", "tls_compliant"),
    ("url", "tls_compliant", "tls_compliant"),
    (
        "url",
        "regex",
        "regex matching of the body (use digest or status_code)",
    ),
    (
        "url",
        "regex_no_match",
        "regex matching of the body (use digest or status_code)",
    ),
    (
        "url",
        "regex_options",
        "regex matching of the body (use digest or status_code)",
    ),
    (
        "url",
        "regex_stack",
        "regex matching of the body (use digest or status_code)",
    ),
    (
        "url",
        "regex_min_offset",
        "regex matching of the body (use digest or status_code)",
    ),
    (
        "url",
        "regex_max_offset",
        "regex matching of the body (use digest or status_code)",
    ),
    (
        "UDP_CHECK",
        "min_reply_length",
        "min_reply_length (reply length limits)",
    ),
    (
        "UDP_CHECK",
        "max_reply_length",
        "max_reply_length (reply length limits)",
    ),
    (
        "MISC_CHECK",
        "user",
        "user (MISC_CHECK scripts run as the slowpath's own user)",
    ),
];

/// The "not supported yet" error for `c` inside `context`, if it is a refused keyword.
fn refused(c: &Node, context: &str) -> Option<Error> {
    let family = match context {
        "HTTP_GET" | "SSL_GET" => "HTTP",
        other => other,
    };
    let connecting = !matches!(context, "url" | "MISC_CHECK");
    REFUSED
        .iter()
        .find(|(ctx, kw, _)| *kw == c.keyword && (*ctx == family || (ctx.is_empty() && connecting)))
        .map(|(_, _, what)| {
            c.err(ErrorKind::NotSupported {
                what: (*what).into(),
            })
        })
}

/// True for every check keyword, supported or not, so that unsupported ones get a clear error.
pub(crate) fn is_check(kw: &str) -> bool {
    matches!(
        kw,
        "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "UDP_CHECK" | "MISC_CHECK"
    ) || UNSUPPORTED.contains(&kw)
}

/// Check settings as given in one block (virtual server, real server or check); unset ones
/// come from the enclosing block, then keepalived's defaults.
#[derive(Debug, Clone, Default)]
pub(crate) struct CheckDefaults {
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) retry: Option<u32>,
    pub(crate) delay_before_retry: Option<Duration>,
    pub(crate) delay_loop: Option<Duration>,
    pub(crate) warmup: Option<Duration>,
    pub(crate) alpha: Option<bool>,
    pub(crate) virtualhost: Option<String>,
}

impl CheckDefaults {
    /// These values, falling back to `outer`'s.
    pub(crate) fn or(self, outer: &CheckDefaults) -> CheckDefaults {
        CheckDefaults {
            connect_timeout: self.connect_timeout.or(outer.connect_timeout),
            retry: self.retry.or(outer.retry),
            delay_before_retry: self.delay_before_retry.or(outer.delay_before_retry),
            delay_loop: self.delay_loop.or(outer.delay_loop),
            warmup: self.warmup.or(outer.warmup),
            alpha: self.alpha.or(outer.alpha),
            virtualhost: self.virtualhost.or_else(|| outer.virtualhost.clone()),
        }
    }
}

/// Keywords [`check_default`] reads, in the blocks that may carry them for their checks.
pub(crate) const VS_DEFAULTS: &[&str] = &[
    "connect_timeout",
    "retry",
    "delay_before_retry",
    "warmup",
    "virtualhost",
];
pub(crate) const RS_DEFAULTS: &[&str] = &[
    "connect_timeout",
    "retry",
    "delay_before_retry",
    "warmup",
    "delay_loop",
    "alpha",
    "virtualhost",
];

/// Reads one of `connect_timeout`, `retry` (or `nb_get_retry` / `nb_sock_retry`),
/// `delay_before_retry`, `warmup`, `delay_loop`, `alpha` or `virtualhost` from `c` into `out`.
pub(crate) fn check_default(
    c: &Node,
    seen: &mut Seen,
    out: &mut CheckDefaults,
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
        "delay_loop" => {
            seen.once(c, "delay_loop")?;
            out.delay_loop = Some(single(c, "seconds", |s| value::seconds(s, MIN_TIMER))?);
        }
        "warmup" => {
            seen.once(c, "warmup")?;
            out.warmup = Some(single(c, "seconds", |s| value::seconds(s, Duration::ZERO))?);
        }
        "alpha" => {
            seen.once(c, "alpha")?;
            out.alpha = Some(optional_bool(c)?);
        }
        "virtualhost" => {
            seen.once(c, "virtualhost")?;
            out.virtualhost = Some(single(c, "host name", value::name)?);
        }
        _ => {
            seen.once(c, "retry")?;
            out.retry = Some(single(c, "count", |s| value::u32_in(s, 0, u32::MAX))?);
        }
    }
    Ok(())
}

/// A flag that may carry keepalived's optional `true`/`false` (`inhibit_on_failure off`).
pub(crate) fn optional_bool(c: &Node) -> Result<bool, Error> {
    c.no_block()?;
    c.arity(0, 1, &[])?;
    match c.args.first() {
        None => Ok(true),
        Some(a) => parse(c, a, value::boolean),
    }
}

/// A check whose unset settings come from its real and virtual server.
pub(crate) struct Pending {
    check: HealthCheck,
    given: CheckDefaults,
}

/// A real server's `notify_up` and `notify_down`, stored on its check.
#[derive(Debug, Clone, Default)]
pub(crate) struct Notify {
    pub(crate) up: Option<String>,
    pub(crate) down: Option<String>,
}

impl Pending {
    /// The check with every inherited setting resolved (`inherited`: the real server's
    /// settings already falling back to the virtual server's).
    pub(crate) fn finish(mut self, inherited: &CheckDefaults, notify: Notify) -> HealthCheck {
        let v = self.given.or(inherited);
        let (is_misc, is_http) = match &self.check {
            HealthCheck::Misc(_) => (true, false),
            HealthCheck::Http(_) | HealthCheck::Ssl(_) => (false, true),
            _ => (false, false),
        };
        let delay_loop = v.delay_loop.unwrap_or(DEFAULT_DELAY_LOOP);
        let common = self.check.common_mut();
        common.retry = v.retry.unwrap_or(if is_misc {
            DEFAULT_MISC_RETRY
        } else {
            DEFAULT_RETRY
        });
        common.delay_before_retry = v.delay_before_retry.unwrap_or(if is_http {
            DEFAULT_HTTP_DELAY_BEFORE_RETRY
        } else {
            DEFAULT_DELAY_BEFORE_RETRY
        });
        common.delay_loop = delay_loop;
        common.warmup = v.warmup.unwrap_or(delay_loop);
        common.alpha = v.alpha.unwrap_or(false);
        common.notify_up = notify.up;
        common.notify_down = notify.down;
        let timeout = v.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        match &mut self.check {
            HealthCheck::Tcp(c) => c.connect_timeout = timeout,
            HealthCheck::Udp(u) => u.connect.connect_timeout = timeout,
            HealthCheck::Http(h) | HealthCheck::Ssl(h) => {
                h.connect.connect_timeout = timeout;
                h.virtualhost = v.virtualhost;
            }
            HealthCheck::Misc(_) => {}
        }
        self.check
    }
}

/// The settings of a check block while it is read.
#[derive(Default)]
struct Fields {
    connect: ConnectOpts,
    urls: Vec<Url>,
    http_protocol: HttpProtocol,
    enable_sni: bool,
    ping_check_off: bool,
    payload: Option<Vec<u8>>,
    require_reply: bool,
    misc_path: Option<String>,
    misc_timeout: Option<Duration>,
    misc_dynamic: bool,
    log_all_failures: bool,
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
    let is_http = matches!(context, "HTTP_GET" | "SSL_GET");
    let mut seen = Seen::default();
    let mut given = CheckDefaults::default();
    let mut f = Fields::default();
    for c in body {
        if let Some(e) = refused(c, context) {
            return Err(e);
        }
        match (context, c.keyword.as_str()) {
            ("MISC_CHECK", "misc_path") => {
                seen.once(c, "misc_path")?;
                f.misc_path = Some(command(c)?);
            }
            ("MISC_CHECK", "misc_timeout") => {
                seen.once(c, "misc_timeout")?;
                f.misc_timeout = Some(single(c, "seconds", |s| value::seconds(s, MIN_TIMER))?);
            }
            ("MISC_CHECK", "misc_dynamic") => {
                seen.once(c, "misc_dynamic")?;
                c.flag()?;
                f.misc_dynamic = true;
            }
            (_, "log_all_failures") => {
                seen.once(c, "log_all_failures")?;
                f.log_all_failures = optional_bool(c)?;
            }
            (_, "retry" | "delay_before_retry" | "warmup" | "delay_loop" | "alpha") => {
                check_default(c, &mut seen, &mut given)?
            }
            ("MISC_CHECK", _) => return Err(unknown(c, context)),
            (_, "connect_ip") => {
                seen.once(c, "connect_ip")?;
                f.connect.connect_ip = Some(single(c, "IP address", value::ipv4)?);
            }
            (_, "connect_port") => {
                seen.once(c, "connect_port")?;
                f.connect.connect_port = Some(single(c, "port", value::nonzero_port)?);
            }
            (_, "bindto") => {
                seen.once(c, "bindto")?;
                f.connect.bindto = Some(single(c, "IP address", value::ipv4)?);
            }
            (_, "bind_port") => {
                seen.once(c, "bind_port")?;
                f.connect.bind_port = Some(single(c, "port", value::nonzero_port)?);
            }
            (_, "connect_timeout" | "nb_get_retry" | "nb_sock_retry") => {
                check_default(c, &mut seen, &mut given)?
            }
            (_, "url") if is_http => f.urls.push(url(c)?),
            (_, "virtualhost") if is_http => check_default(c, &mut seen, &mut given)?,
            (_, "http_protocol") if is_http => {
                seen.once(c, "http_protocol")?;
                f.http_protocol = choice(c, HTTP_PROTOCOLS, &[])?;
            }
            (_, "enable_sni") if is_http => {
                seen.once(c, "enable_sni")?;
                f.enable_sni = optional_bool(c)?;
            }
            ("UDP_CHECK", "ping_check_off") => {
                seen.once(c, "ping_check_off")?;
                c.flag()?;
                f.ping_check_off = true;
            }
            ("UDP_CHECK", "payload") => {
                seen.once(c, "payload")?;
                f.payload = Some(payload(c)?);
            }
            ("UDP_CHECK", "require_reply") => {
                seen.once(c, "require_reply")?;
                c.no_block()?;
                if let Some(first) = c.args.first() {
                    let what = "require_reply with reply data (matching the reply)".into();
                    return Err(c.arg_err(first, ErrorKind::NotSupported { what }));
                }
                f.require_reply = true;
            }
            _ => return Err(unknown(c, context)),
        }
    }
    let missing = |what: &str| n.err(ErrorKind::Missing { what: what.into() });
    let mut connect = f.connect;
    connect.common.log_all_failures = f.log_all_failures;
    let check = match context {
        "TCP_CHECK" => HealthCheck::Tcp(connect),
        "HTTP_GET" | "SSL_GET" => {
            if f.urls.is_empty() {
                return Err(missing("url { path ... }"));
            }
            let h = HttpCheck {
                urls: f.urls,
                connect,
                virtualhost: None,
                http_protocol: f.http_protocol,
                enable_sni: f.enable_sni,
            };
            if context == "HTTP_GET" {
                HealthCheck::Http(h)
            } else {
                HealthCheck::Ssl(h)
            }
        }
        "UDP_CHECK" => HealthCheck::Udp(UdpCheck {
            connect,
            ping_check_off: f.ping_check_off,
            payload: f.payload,
            require_reply: f.require_reply,
        }),
        _ => HealthCheck::Misc(MiscCheck {
            misc_path: f.misc_path.ok_or_else(|| missing("misc_path"))?,
            misc_timeout: f.misc_timeout,
            misc_dynamic: f.misc_dynamic,
            common: CheckCommon {
                log_all_failures: f.log_all_failures,
                ..CheckCommon::default()
            },
        }),
    };
    Ok(Pending { check, given })
}

/// keepalived's hex string (`payload 01 02ab ff`): pairs of hex digits, blanks between
/// bytes allowed; a lone digit before a blank is one byte.
pub(crate) fn hex_bytes(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        let digits: Vec<char> = word.chars().collect();
        for pair in digits.chunks(2) {
            let s: String = pair.iter().collect();
            let byte = u8::from_str_radix(&s, 16)
                .ok()
                .filter(|_| pair.iter().all(char::is_ascii_hexdigit))
                .ok_or_else(|| format!("{s:?} is not hex (like 0a1b or 0a 1b)"))?;
            out.push(byte);
        }
    }
    if out.is_empty() {
        return Err("empty hex string".into());
    }
    Ok(out)
}

fn payload(c: &Node) -> Result<Vec<u8>, Error> {
    c.no_block()?;
    c.arity(1, usize::MAX, &["hex string"])?;
    let text: Vec<&str> = c.args.iter().map(|a| a.text.as_str()).collect();
    hex_bytes(&text.join(" ")).map_err(|why| c.bad(&c.args[0], why))
}

/// `url { path <path> [status_code <code>] [digest <md5>] [virtualhost <host>] }`.
fn url(n: &Node) -> Result<Url, Error> {
    n.arity(0, 0, &[])?;
    let mut seen = Seen::default();
    let (mut path, mut status_code, mut digest, mut virtualhost) = (None, None, None, None);
    for c in n.block()? {
        if let Some(e) = refused(c, "url") {
            return Err(e);
        }
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
            "virtualhost" => {
                seen.once(c, "virtualhost")?;
                virtualhost = Some(single(c, "host name", value::name)?);
            }
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
        virtualhost,
    })
}

#[cfg(test)]
mod tests {
    use super::hex_bytes;

    #[test]
    fn hex_strings_as_keepalived_reads_them() {
        assert_eq!(hex_bytes("0a1B ff"), Ok(vec![0x0a, 0x1b, 0xff]));
        assert_eq!(hex_bytes("1 02"), Ok(vec![0x01, 0x02]));
        assert_eq!(hex_bytes("abc"), Ok(vec![0xab, 0x0c]));
        assert!(hex_bytes("zz").unwrap_err().contains("not hex"));
        assert!(hex_bytes("+1").is_err());
        assert!(hex_bytes("  ").is_err());
    }
}
