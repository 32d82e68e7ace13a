//! Per-real-server check timing (`delay_loop` on a real_server, keepalived 2.x) reaches the
//! check the slowpath runs; `ha_suspend` is refused where it is written.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use kaconf::{load, parse_str, ErrorKind};

#[test]
fn a_real_servers_delay_loop_overrides_its_virtual_servers() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/rs-delay-loop.conf");
    let c = load(&path).unwrap_or_else(|e| panic!("{e}"));
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.delay_loop, Duration::from_secs(10));
    let common = |i: usize| vs.real_servers[i].check.as_ref().unwrap().common().clone();
    // Its own interval, and the warmup that defaults to it.
    assert_eq!((common(0).delay_loop, common(0).warmup), (Duration::from_secs(2), Duration::from_secs(2)));
    assert_eq!((common(1).delay_loop, common(1).warmup), (Duration::from_secs(10), Duration::from_secs(10)));
    // Written on the check (where it differs from the service's) and read back the same.
    let text = c.to_keepalived_string();
    assert_eq!(text.matches("delay_loop 2").count(), 1, "{text}");
    let again = parse_str(&text, Path::new("saved.conf")).unwrap();
    assert!(again.same_settings(&c));
    // The check's own delay_loop wins over its real server's.
    let text = "virtual_server 10.0.0.1 80 {\n lb_algo rr\n lb_kind DR\n real_server 10.0.1.1 80 {\n  delay_loop 3\n  TCP_CHECK {\n   delay_loop 0.5\n  }\n }\n}\n";
    let c = parse_str(text, Path::new("k.conf")).unwrap();
    let check = c.virtual_servers[0].real_servers[0].check.as_ref().unwrap();
    assert_eq!(check.common().delay_loop, Duration::from_millis(500));
}

#[test]
fn real_server_delay_loop_errors_are_at_their_word() {
    let vs = |rs: &str| format!("virtual_server 10.0.0.1 80 {{\n lb_algo rr\n lb_kind DR\n real_server 10.0.1.1 80 {{\n{rs}\n  TCP_CHECK {{\n  }}\n }}\n}}\n");
    for (rs, column, what) in [
        ("  delay_loop 0", 14, "must be at least"),
        ("  delay_loop x", 14, "not a number of seconds"),
        ("  delay_loop", 3, "missing argument"),
        ("  delay_loop 1\n  delay_loop 2", 3, "given twice"),
    ] {
        let e = parse_str(&vs(rs), Path::new("k.conf")).unwrap_err();
        assert_eq!((e.column, e.keyword.as_str()), (column, "delay_loop"), "{rs}: {e}");
        assert!(e.to_string().contains(what), "{rs}: {e}");
    }
}

#[test]
fn ha_suspend_is_refused_at_its_keyword() {
    let text = "virtual_server 10.0.0.1 80 {\n lb_algo rr\n lb_kind DR\n   ha_suspend\n}\n";
    let e = parse_str(text, Path::new("k.conf")).unwrap_err();
    assert_eq!((e.line, e.column, e.keyword.as_str()), (4, 4, "ha_suspend"));
    assert!(matches!(e.kind, ErrorKind::NotSupported { .. }), "{e}");
    assert!(e.to_string().contains("lb-slowpath checks on master and backup alike"), "{e}");
}
