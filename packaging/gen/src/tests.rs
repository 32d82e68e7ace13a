//! The generated pages say what the programs say, and render without complaint.

use std::process::Command;

use super::*;

fn file(rel: &str) -> String {
    files().unwrap().into_iter().find(|(r, _)| *r == rel).unwrap_or_else(|| panic!("{rel} generated")).1
}

/// The configuration block is cut at its markers; losing one is an error, not a short page.
#[test]
fn lbd_toml_5_has_the_whole_configuration_block() {
    let page = file("man5/lbd.toml.5");
    for key in ["workers", "idle_sleep_us", "stats_file", "mbufs", "no_huge", "memory_mb", "[[port]]", "vdev", "kernel_tap", "gateway", "services", "toa", "flow_refuse", "api_socket", "api_listen", "api_token", "metrics_listen", "[timeouts]", "[sync]", "[synproxy]", "ack_storm_thresh"] {
        assert!(page.contains(&escape(key)), "lbd.toml.5 documents {key}");
    }
    assert!(!page.contains("Signals:"), "the block ends before the signals paragraph");
    assert!(!page.contains("\n  workers"), "the doc comment's indent is removed");
    let (_, config, rest) = lbd_doc_parts().unwrap();
    assert!(config.starts_with("\nworkers") || config.starts_with("workers"), "{config:?}");
    assert!(rest.starts_with(CONFIG_END));
}

#[test]
fn lbd_8_documents_options_defaults_and_points_to_lbd_toml_5() {
    let page = file("man8/lbd.8");
    assert!(page.starts_with(".ie") || page.starts_with(".TH"), "{}", &page[..80]);
    assert!(page.contains("\\-\\-config") && page.contains("\\-\\-check"), "options listed");
    assert!(page.contains("/etc/lbd/lbd.toml"), "default config path");
    assert!(page.contains("lbd.toml(5)") && page.contains("READY=1"));
    assert!(!page.contains("idle_sleep_us"), "the settings are in lbd.toml.5, not repeated");
}

#[test]
fn slowpath_and_lbctl_pages_and_completion() {
    let page = file("man8/lb-slowpath.8");
    assert!(page.contains("\\-\\-services") && page.contains("/etc/lbd/lbd.toml"));
    let page = file("man8/lbctl.8");
    assert!(page.contains("\\-\\-start\\-daemon") && page.contains("LBCTL_SOCKET") && page.contains("laddr list"));
    let comp = file("completions/lbctl");
    assert!(comp.contains("complete -F _lbctl lbctl"));
}

/// groff reads every page without a warning (when groff is installed).
#[test]
fn pages_render_cleanly() {
    if Command::new("groff").arg("-v").output().is_err() {
        eprintln!("groff not installed: rendering not checked");
        return;
    }
    for (rel, text) in files().unwrap().into_iter().filter(|(r, _)| r.starts_with("man")) {
        let dir = std::env::temp_dir().join(format!("lb-gen-docs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(rel.replace('/', "_"));
        std::fs::write(&path, &text).unwrap();
        let out = Command::new("groff").args(["-man", "-Tutf8", "-ww", "-z"]).arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && err.trim().is_empty(), "{rel}: {err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn writes_every_file() {
    let dir = std::env::temp_dir().join(format!("lb-gen-docs-out-{}", std::process::id()));
    let written = write_all(&dir).unwrap();
    assert_eq!(written.len(), 5);
    for w in &written {
        assert!(std::fs::metadata(w).unwrap().len() > 100, "{}", w.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
