//! lb-slowpath's command line: a bad services file is one line naming file:line:column and
//! exit code 2; a bad lbd.toml likewise; `--check` validates without running anything.

use std::process::{Command, Output};

fn slowpath(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lb-slowpath")).args(args).output().expect("run lb-slowpath")
}

/// `text` in a new temp file ending in `-name`, removed when the handle drops: a test leaves
/// nothing behind, on every path.
fn write(name: &str, text: &str) -> tempfile::TempPath {
    let f = tempfile::Builder::new().prefix("lb-slowpath-cli-").suffix(&format!("-{name}")).tempfile().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f.into_temp_path()
}

fn stderr_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr).lines().map(str::to_owned).collect()
}

const GOOD: &str = "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind DR\n    real_server 10.0.1.1 80 {\n        TCP_CHECK {\n            connect_timeout 2\n        }\n    }\n}\n";

#[test]
fn bad_services_file_is_one_line_with_file_line_column_and_exit_2() {
    let bad = write("bad.conf", &GOOD.replace("connect_timeout 2", "connect_timeout two"));
    let o = slowpath(&["--services", bad.to_str().unwrap(), "--socket", "/nonexistent/lbd.sock"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let lines = stderr_lines(&o);
    assert_eq!(lines.len(), 1, "one line: {lines:?}");
    assert!(lines[0].starts_with(&format!("lb-slowpath: {}:6:29", bad.display())), "{lines:?}");
    assert!(lines[0].contains("connect_timeout"), "{lines:?}");
    // A check keyword that is parsed elsewhere but not supported: refused, not ignored.
    let regex = write("regex.conf", &GOOD.replace("TCP_CHECK {\n            connect_timeout 2", "HTTP_GET {\n            url {\n                path /\n                regex \"ok\"\n            }"));
    let o = slowpath(&["--services", regex.to_str().unwrap(), "--socket", "/x", "--check"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(stderr_lines(&o)[0].contains(":8:17"), "{o:?}");
}

#[test]
fn lbd_toml_names_the_services_and_check_validates() {
    let conf = write("good.conf", GOOD);
    let toml = write("lbd.toml", &format!("services = \"{}\"\napi_socket = \"/run/x/lbd.sock\"\nworkers = 1\n", conf.display()));
    let o = slowpath(&["--config", toml.to_str().unwrap(), "--check"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("valid; 1 real server(s) with a health check; lbd at /run/x/lbd.sock"), "{out}");
    let toml = write("bad.toml", "services = 3\n");
    let o = slowpath(&["--config", toml.to_str().unwrap(), "--check"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr_lines(&o), [format!("lb-slowpath: {}: services: expected a path string, found integer", toml.display())]);
    let o = slowpath(&["--config", "/nonexistent/lbd.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_lines(&o)[0].starts_with("lb-slowpath: /nonexistent/lbd.toml: cannot read"), "{o:?}");
}
