//! Health-check keywords: every one keepalived 2.2 has is stored (and written back by `save`)
//! or refused at its file:line:column.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use kaconf::*;

fn vs(body: &str) -> String {
    format!("virtual_server 10.0.0.1 80 {{\n    lb_algo rr\n    lb_kind DR\n{body}\n}}\n")
}

fn parse(text: &str) -> Config {
    parse_str(text, Path::new("k.conf")).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Parses, writes, parses again: the second parse must ask for the same thing.
fn round_trip(text: &str) -> Config {
    let first = parse(text);
    let written = first.to_keepalived_string();
    let second =
        parse_str(&written, Path::new("saved.conf")).unwrap_or_else(|e| panic!("{e}\n{written}"));
    assert!(second.same_settings(&first), "{written}");
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    first
}

fn check(c: &Config, rs: usize) -> &HealthCheck {
    c.virtual_servers[0].real_servers[rs]
        .check
        .as_ref()
        .unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn tcp_connection_keywords_are_stored() {
    let c = round_trip(&vs("    real_server 10.0.1.1 80 {
        TCP_CHECK {
            connect_ip 10.0.2.1
            connect_port 8080
            bindto 10.0.3.1
            bind_port 4000
            connect_timeout 2
            log_all_failures
        }
    }"));
    let HealthCheck::Tcp(t) = check(&c, 0) else {
        panic!()
    };
    assert_eq!(t.connect_ip, Some(Ipv4Addr::new(10, 0, 2, 1)));
    assert_eq!(t.connect_port, Some(8080));
    assert_eq!(t.bindto, Some(Ipv4Addr::new(10, 0, 3, 1)));
    assert_eq!(t.bind_port, Some(4000));
    assert_eq!(t.connect_timeout, secs(2));
    assert!(t.common.log_all_failures);
}

#[test]
fn timing_inherits_check_then_real_server_then_virtual_server() {
    let c = round_trip(&vs("    delay_loop 10
    warmup 4
    retry 3
    connect_timeout 9
    alpha
    real_server 10.0.1.1 80 {
        delay_loop 8
        alpha false
        delay_before_retry 2
        TCP_CHECK {
            delay_loop 5
            warmup 1.5
            retry 0
        }
    }
    real_server 10.0.1.2 80 {
        warmup 0
        TCP_CHECK {
        }
    }
    real_server 10.0.1.3 80 {
        TCP_CHECK {
            alpha false
        }
    }"));
    let t0 = check(&c, 0).common();
    assert_eq!(
        (
            t0.delay_loop,
            t0.warmup,
            t0.retry,
            t0.delay_before_retry,
            t0.alpha
        ),
        (secs(5), Duration::from_millis(1500), 0, secs(2), false)
    );
    assert_eq!(check(&c, 0).connect().unwrap().connect_timeout, secs(9));
    let t1 = check(&c, 1).common();
    assert_eq!(
        (
            t1.delay_loop,
            t1.warmup,
            t1.retry,
            t1.delay_before_retry,
            t1.alpha
        ),
        (secs(10), secs(0), 3, secs(1), true)
    );
    assert!(!check(&c, 2).common().alpha);
    // Without any warmup, the first check waits up to delay_loop (keepalived 2.2).
    let d = parse(&vs(
        "    delay_loop 7\n    real_server 10.0.1.1 80 {\n TCP_CHECK {\n }\n }",
    ));
    assert_eq!(check(&d, 0).common().warmup, secs(7));
}

#[test]
fn notify_scripts_and_inhibit_are_stored_on_the_real_server() {
    let c = round_trip(&vs("    real_server 10.0.1.1 80 {
        notify_up \"/bin/up 10.0.1.1\"
        notify_down /bin/down
        inhibit_on_failure
        TCP_CHECK {
        }
    }"));
    let common = check(&c, 0).common();
    assert_eq!(common.notify_up.as_deref(), Some("/bin/up 10.0.1.1"));
    assert_eq!(common.notify_down.as_deref(), Some("/bin/down"));
    assert!(c.virtual_servers[0].real_servers[0].inhibit_on_failure);
}

#[test]
fn http_keywords_are_stored() {
    let c = round_trip(&vs("    virtualhost vs.example
    real_server 10.0.1.1 80 {
        HTTP_GET {
            url {
                path /a
                virtualhost url.example
            }
            url {
                path /b
            }
            http_protocol 1.0c
            nb_get_retry 2
        }
    }
    real_server 10.0.1.2 80 {
        virtualhost rs.example
        SSL_GET {
            url {
                path /
            }
            virtualhost check.example
            http_protocol 1.1
            enable_sni
        }
    }"));
    let HealthCheck::Http(h) = check(&c, 0) else {
        panic!()
    };
    assert_eq!(h.urls[0].virtualhost.as_deref(), Some("url.example"));
    assert_eq!(h.urls[1].virtualhost, None);
    assert_eq!(h.virtualhost.as_deref(), Some("vs.example"));
    assert_eq!(h.http_protocol, HttpProtocol::Http10Close);
    assert_eq!(h.connect.common.retry, 2);
    assert!(!h.enable_sni);
    let HealthCheck::Ssl(s) = check(&c, 1) else {
        panic!()
    };
    assert_eq!(s.virtualhost.as_deref(), Some("check.example"));
    assert_eq!(s.http_protocol, HttpProtocol::Http11);
    assert!(s.enable_sni);
    assert_eq!(
        s.connect.common.delay_before_retry,
        DEFAULT_HTTP_DELAY_BEFORE_RETRY
    );
}

#[test]
fn udp_payload_and_require_reply_are_stored() {
    let c = round_trip(&vs("    protocol UDP
    real_server 10.0.1.1 53 {
        UDP_CHECK {
            payload 0a0B 0c 1
            require_reply
        }
    }"));
    let HealthCheck::Udp(u) = check(&c, 0) else {
        panic!()
    };
    assert_eq!(u.payload.as_deref(), Some(&[0x0a, 0x0b, 0x0c, 0x01][..]));
    assert!(u.require_reply);
    assert!(c.to_keepalived_string().contains("payload 0a0b0c01\n"));
}

#[test]
fn misc_dynamic_and_common_keywords_are_stored() {
    let c = round_trip(&vs("    real_server 10.0.1.1 80 {
        MISC_CHECK {
            misc_path \"/bin/check 10.0.1.1\"
            misc_dynamic
            retry 2
            delay_before_retry 0.5
            warmup 3
            delay_loop 4
            alpha
            log_all_failures false
        }
    }"));
    let HealthCheck::Misc(m) = check(&c, 0) else {
        panic!()
    };
    assert!(m.misc_dynamic);
    assert_eq!(m.misc_timeout, None);
    let common = &m.common;
    assert_eq!(
        (
            common.retry,
            common.delay_before_retry,
            common.warmup,
            common.delay_loop
        ),
        (2, Duration::from_millis(500), secs(3), secs(4))
    );
    assert!(common.alpha && !common.log_all_failures);
}

/// (body of a virtual_server, line, column, keyword, words the message must hold)
const REFUSED: &[(&str, u32, u32, &str, &str)] = &[
    (
        "real_server 10.0.1.1 80 {\nTCP_CHECK {\n  bind_if eth0\n}\n}",
        6,
        3,
        "bind_if",
        "bind_if",
    ),
    (
        "real_server 10.0.1.1 80 {\nTCP_CHECK {\n fwmark 3\n}\n}",
        6,
        2,
        "fwmark",
        "fwmark",
    ),
    (
        "real_server 10.0.1.1 80 {\nHTTP_GET {\nurl { path / }\n fast_recovery\n}\n}",
        7,
        2,
        "fast_recovery",
        "fast_recovery",
    ),
    (
        "real_server 10.0.1.1 80 {\nSSL_GET {\nurl { path / }\ntls_compliant\n}\n}",
        7,
        1,
        "tls_compliant",
        "tls_compliant",
    ),
    (
        "real_server 10.0.1.1 80 {\nHTTP_GET {\nurl {\n path /\n  regex ok\n}\n}\n}",
        8,
        3,
        "regex",
        "regex",
    ),
    (
        "real_server 10.0.1.1 80 {\nHTTP_GET {\nurl {\n path /\nregex_no_match x\n}\n}\n}",
        8,
        1,
        "regex_no_match",
        "regex",
    ),
    (
        "real_server 10.0.1.1 80 {\nUDP_CHECK {\n min_reply_length 4\n}\n}",
        6,
        2,
        "min_reply_length",
        "reply length",
    ),
    (
        "real_server 10.0.1.1 80 {\nUDP_CHECK {\nmax_reply_length 4\n}\n}",
        6,
        1,
        "max_reply_length",
        "reply length",
    ),
    (
        "real_server 10.0.1.1 80 {\nUDP_CHECK {\n require_reply 0a\n}\n}",
        6,
        16,
        "require_reply",
        "reply data",
    ),
    (
        "real_server 10.0.1.1 80 {\nMISC_CHECK {\nmisc_path /bin/true\n  user nobody\n}\n}",
        7,
        3,
        "user",
        "own user",
    ),
    (
        "real_server 10.0.1.1 80 {\n  notify_up /bin/up\n}",
        5,
        3,
        "notify_up",
        "without a health check",
    ),
    (
        "real_server 10.0.1.1 80 {\nnotify_down /bin/down\n}",
        5,
        1,
        "notify_down",
        "without a health check",
    ),
];

#[test]
fn refused_keywords_name_file_line_column_and_keyword() {
    for (body, line, column, keyword, words) in REFUSED {
        let e = parse_str(&vs(body), Path::new("k.conf")).unwrap_err();
        assert_eq!(
            (e.line, e.column, e.keyword.as_str()),
            (*line, *column, *keyword),
            "{e}"
        );
        assert!(matches!(e.kind, ErrorKind::NotSupported { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "k.conf:{line}:{column}: {keyword}: not supported yet"
            )),
            "{text}"
        );
        assert!(text.contains(words), "{text}");
    }
}

#[test]
fn bad_values_are_errors() {
    for (body, line, keyword) in [
        (
            "real_server 10.0.1.1 80 {\nTCP_CHECK {\nconnect_ip 10.0.0\n}\n}",
            6,
            "connect_ip",
        ),
        (
            "real_server 10.0.1.1 80 {\nTCP_CHECK {\nbind_port 0\n}\n}",
            6,
            "bind_port",
        ),
        (
            "real_server 10.0.1.1 80 {\nTCP_CHECK {\nalpha maybe\n}\n}",
            6,
            "alpha",
        ),
        (
            "real_server 10.0.1.1 80 {\nUDP_CHECK {\npayload 0g\n}\n}",
            6,
            "payload",
        ),
        (
            "real_server 10.0.1.1 80 {\nHTTP_GET {\nurl { path / }\nhttp_protocol 2\n}\n}",
            7,
            "http_protocol",
        ),
        (
            "real_server 10.0.1.1 80 {\nTCP_CHECK {\ndelay_loop 0\n}\n}",
            6,
            "delay_loop",
        ),
        (
            "real_server 10.0.1.1 80 {\nTCP_CHECK {\nwarmup 1\nwarmup 2\n}\n}",
            7,
            "warmup",
        ),
    ] {
        let e = parse_str(&vs(body), Path::new("k.conf")).unwrap_err();
        assert_eq!((e.line, e.keyword.as_str()), (line, keyword), "{e}");
    }
}
