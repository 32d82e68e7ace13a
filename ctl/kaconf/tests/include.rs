//! `include` as keepalived reads it: glob(3) patterns relative to the including file's
//! directory, sorted matches, a warning when nothing matches, positions in included files,
//! cycles and depth bounded.

mod common;

use std::path::{Path, PathBuf};

use kaconf::{load, ErrorKind};

fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(rel)
}

#[test]
fn split_configuration_in_the_tree() {
    let main = data("include/keepalived.conf");
    let c = load(&main).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.global.router_id.as_deref(), Some("LB_SPLIT"));
    assert_eq!(c.local_address_groups[0].addrs.len(), 2);
    // services/*.conf in sorted order: dns.conf before web.conf.
    let ports: Vec<u16> = c.virtual_servers.iter().map(|v| v.port).collect();
    assert_eq!(ports, [53, 80]);
    let web = &c.virtual_servers[1];
    assert_eq!(web.file, data("include/conf.d/services/web.conf"));
    // rs/*.conf is read from conf.d/services, the including file's directory.
    let rs: Vec<(u32, PathBuf)> = web.real_servers.iter().map(|r| (r.weight, r.file.clone())).collect();
    assert_eq!(
        rs,
        [
            (1, data("include/conf.d/services/rs/11.conf")),
            (2, data("include/conf.d/services/rs/12.conf"))
        ]
    );
    // The empty directory's pattern (its .keep is hidden from `*`) is one warning.
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    let w = &c.warnings[0];
    assert_eq!((w.file.clone(), w.line, w.keyword.as_str()), (main, 10, "include"));
    assert!(w.msg.ends_with("conf.d/empty/*.conf matched no file; nothing included"), "{w}");
}

#[test]
fn a_missing_file_is_a_warning_as_in_keepalived() {
    let dir = common::scratch_dir("missing");
    let main = common::write(&dir, "k.conf", "\n  include nothere.conf\n");
    let c = load(&main).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.warnings.len(), 1);
    assert_eq!((c.warnings[0].line, c.warnings[0].keyword.as_str()), (2, "include"));
    assert_eq!(
        c.warnings[0].msg,
        format!("{} matched no file; nothing included", dir.join("nothere.conf").display())
    );
    // The main file itself must exist.
    let e = load(&dir.join("absent.conf")).unwrap_err();
    assert_eq!((e.line, e.column, e.keyword.as_str()), (1, 1, "file"));
    assert!(matches!(e.kind, ErrorKind::Io { .. }), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_including_directory_is_literal_and_absolute_paths_are_kept() {
    let dir = common::scratch_dir("lit");
    // A directory whose name is a pattern: only the written part is matched as one.
    let odd = dir.join("conf[1]*");
    // An absolute path is a pattern of its own (`[1]*` in it would be one too).
    let sub = common::write(&dir, "plain/rs.conf", "real_server 10.0.1.1 80\n");
    common::write(&odd, "rs2.conf", "real_server 10.0.1.2 80\n");
    let vs = "virtual_server 10.0.0.1 80 {\n lb_algo rr\n lb_kind DR\n include rs?.conf\n";
    let main = common::write(&odd, "k.conf", &format!("{vs} include {}\n}}\n", sub.display()));
    let c = load(&main).unwrap_or_else(|e| panic!("{e}"));
    let rs: Vec<&Path> = c.virtual_servers[0].real_servers.iter().map(|r| r.file.as_path()).collect();
    assert_eq!(rs, [odd.join("rs2.conf").as_path(), sub.as_path()]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn executable_files_are_skipped_with_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = common::scratch_dir("exec");
    let script = common::write(&dir, "d/x.conf", "garbage {\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    common::write(&dir, "d/y.conf", "local_address_group g {\n 10.0.0.1\n}\n");
    let main = common::write(&dir, "k.conf", "include d/*.conf\n");
    let c = load(&main).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.local_address_groups.len(), 1);
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].msg.contains("x.conf is executable; skipped"), "{}", c.warnings[0]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_patterns_are_refused_at_the_pattern() {
    let dir = common::scratch_dir("pat");
    let main = common::write(&dir, "k.conf", "! x\n   include \"conf.d/{a,b}.conf\"\n");
    let e = load(&main).unwrap_err();
    assert_eq!((e.file.clone(), e.line, e.column, e.keyword.as_str()), (main.clone(), 2, 12, "include"));
    assert!(matches!(e.kind, ErrorKind::NotSupported { .. }), "{e}");
    let main = common::write(&dir, "k.conf", "include conf.d/[a.conf\n");
    let e = load(&main).unwrap_err();
    assert_eq!((e.line, e.column), (1, 9));
    assert!(e.to_string().contains("not a glob pattern"), "{e}");
    for (text, kind) in [
        ("include\n", "missing argument"),
        ("include a b\n", "unexpected extra argument"),
        ("include \"\"\n", "empty file name"),
        ("include a {\n}\n", "takes no"),
    ] {
        let main = common::write(&dir, "k.conf", text);
        let e = load(&main).unwrap_err();
        assert!(e.to_string().contains(kind), "{text:?}: {e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_in_included_files_name_them() {
    let dir = common::scratch_dir("incerr");
    let inner = common::write(&dir, "conf.d/vs.conf", "virtual_server 10.0.0.1 80 {\n  lb_algo rr\n  lb_kind FNAT\n  bogus 1\n}\n");
    let main = common::write(&dir, "k.conf", "include conf.d/*.conf\n");
    let e = load(&main).unwrap_err();
    assert_eq!((e.file.clone(), e.line, e.column, e.keyword.as_str()), (inner, 4, 3, "bogus"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn include_depth_is_bounded() {
    let dir = common::scratch_dir("deep");
    let n = kaconf::tree::MAX_INCLUDE_DEPTH;
    for i in 0..=n {
        common::write(&dir, &format!("f{i}.conf"), &format!("include f{}.conf\n", i + 1));
    }
    common::write(&dir, &format!("f{}.conf", n + 1), "");
    let e = load(&dir.join("f0.conf")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::IncludeTooDeep { max: n });
    assert_eq!((e.file.clone(), e.line, e.column), (dir.join(format!("f{}.conf", n - 1)), 1, 1));
    // One file fewer loads.
    common::write(&dir, &format!("f{}.conf", n - 1), "");
    assert!(load(&dir.join("f0.conf")).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_glob_that_reaches_the_including_file_is_a_cycle() {
    let dir = common::scratch_dir("globcycle");
    let main = common::write(&dir, "a.conf", "include *.conf\n");
    let e = load(&main).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::IncludeCycle { .. }), "{e}");
    assert_eq!((e.file.clone(), e.line, e.column), (main, 1, 1));
    std::fs::remove_dir_all(&dir).unwrap();
}
