//! The exposition: every counter exported with its doc comment, node_exporter's ipvs
//! families, `process_*`, and the 0.0.4 conversion.

use super::families::{worker_counter_name, worker_counters, Family, Gathered};
use super::*;
use fastpath::verdict::{Counters, SCALAR_INFO};
use fastpath::DropReason;

fn encode(families: Vec<Family>) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(Gathered(families)));
    let mut om = String::new();
    prometheus_client::encoding::text::encode(&mut om, &registry).unwrap();
    text::to_prometheus(&om)
}

/// New fast-path counters and drop reasons (the SYN proxy's among them) need no change
/// here: every one is exported, with its value and its doc comment, per worker.
#[test]
fn every_counter_and_drop_reason_is_exported_with_its_doc_comment() {
    let mut slots = [0u64; fastpath::verdict::COUNTER_SLOTS];
    for (i, v) in slots.iter_mut().enumerate() {
        *v = 1000 + i as u64;
    }
    let c = Counters::from_array(&slots);
    let mut fams = Vec::new();
    worker_counters(&mut fams, &["0".to_owned()], &[&c]);
    let o = encode(fams);
    for ((name, v), (_, unit, doc)) in c.scalars().iter().zip(SCALAR_INFO) {
        let m = format!("{}_total", worker_counter_name(name, unit));
        assert!(m.ends_with(&format!("{unit}_total")) || m.contains(&format!("_{unit}_")), "{m}: the unit is in the name");
        let want = format!("# HELP {m} {}\n# TYPE {m} counter\n{m}{{worker=\"0\"}} {v}\n", doc.trim());
        assert!(o.contains(&want), "{want}\nin\n{o}");
        assert!(!doc.trim().is_empty(), "{name} has a doc comment");
    }
    for r in DropReason::ALL {
        let line = format!("lbd_worker_dropped_packets_total{{worker=\"0\",reason=\"{}\"}} {}\n", r.name(), c.drops_for(*r));
        assert!(o.contains(&line), "{line}");
    }
    assert_eq!(o.lines().filter(|l| !l.starts_with('#')).count(), c.scalars().len() + DropReason::COUNT);
    assert_eq!(worker_counter_name("rx", "frames"), "lbd_worker_rx_frames");
    assert_eq!(worker_counter_name("sessions_created", "sessions"), "lbd_worker_sessions_created");
}

#[test]
fn openmetrics_counters_become_0_0_4_families() {
    let fams = vec![
        Family::counter("lbd_a_bytes", "Some \"bytes\".").with(vec![("x", "a\"b\\c\nd".to_owned())], 5),
        Family::gauge("lbd_g", "A gauge.").with(vec![], 7),
    ];
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(Gathered(fams)));
    let mut om = String::new();
    prometheus_client::encoding::text::encode(&mut om, &registry).unwrap();
    assert!(om.contains("# TYPE lbd_a_bytes counter\nlbd_a_bytes_total{"), "{om}");
    assert!(om.ends_with("# EOF\n"));
    let t = text::to_prometheus(&om);
    assert!(t.starts_with("# HELP lbd_a_bytes_total Some \"bytes\".\n# TYPE lbd_a_bytes_total counter\nlbd_a_bytes_total{x=\"a\\\"b\\\\c\\nd\"} 5\n"), "{t}");
    assert!(t.contains("# TYPE lbd_g gauge\nlbd_g 7\n"), "{t}");
    assert!(!t.contains("# EOF"));
}

#[test]
fn process_stats_parse_from_proc_text() {
    // A command with spaces and parentheses, as the kernel prints it.
    let stat = "4242 (lbd (w 1)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 123456 1048576000 5000 18446744073709551615";
    let status = "Name:\tlbd\nVmSize:\t 1024000 kB\nVmRSS:\t   20480 kB\nThreads:\t7\n";
    let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax open files            65536                524288               files     \n";
    let p = process::parse(stat, status, "cpu  1 2 3\nbtime 1700000000\n", limits, 12).unwrap();
    assert_eq!(p.cpu_seconds, 3.0, "(250 + 50) / 100");
    assert_eq!(p.start_time_seconds, 1_700_000_000.0 + 1234.56);
    assert_eq!((p.virtual_memory_bytes, p.resident_memory_bytes), (1_024_000 * 1024, 20_480 * 1024));
    assert_eq!((p.open_fds, p.max_fds), (12, Some(65536)));
    assert_eq!(process::parse("garbage", "", "", "", 0), None);
    // This process: the families as the client libraries name them.
    let o = encode(process::families(&process::read().unwrap()));
    for m in ["process_cpu_seconds_total", "process_start_time_seconds", "process_virtual_memory_bytes", "process_resident_memory_bytes", "process_open_fds", "process_max_fds"] {
        assert!(o.contains(&format!("# TYPE {m} ")), "{m}: {o}");
    }
}
