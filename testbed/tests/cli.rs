//! The `lb-testbed` binary: up, exec (exit status), status, down, down again.
//! Needs root, iproute2, ethtool, nginx and curl.

use std::process::{Command, Output};

use lb_testbed::{netns, unique_name};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lb-testbed"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = cli(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "lb-testbed {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn up_exec_status_down() {
    let name = unique_name("c");
    let n = name.as_str();
    let up = ok(&["up", "--name", n, "--no-director", "--backends", "1"]);
    assert!(up.contains(&format!("lbt-{n}-rs-10.70.2.11")), "{up}");

    let body = ok(&[
        "exec",
        "--name",
        n,
        "rs-10.70.2.11",
        "--",
        "curl",
        "-sS",
        "-m",
        "5",
        "http://10.70.2.11/",
    ]);
    assert_eq!(body, "rs-10.70.2.11\n");
    let out = cli(&["exec", "--name", n, "client", "--", "sh", "-c", "exit 42"]);
    assert_eq!(out.status.code(), Some(42));
    let out = cli(&["exec", "--name", n, "rs-10.70.2.99", "--", "true"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));

    let status: serde_json::Value =
        serde_json::from_str(&ok(&["status", "--name", n, "--json"])).unwrap();
    assert_eq!(status["state"], "up");
    assert_eq!(status["namespaces"].as_array().unwrap().len(), 4);
    assert_eq!(status["backends"][0]["nginx_alive"], true);
    assert!(ok(&["list"]).lines().any(|l| l == n));

    ok(&["down", "--name", n]);
    assert!(!netns::list()
        .unwrap()
        .iter()
        .any(|ns| ns.starts_with(&format!("lbt-{n}-"))));
    let status: serde_json::Value =
        serde_json::from_str(&ok(&["status", "--name", n, "--json"])).unwrap();
    assert_eq!(status["state"], "down");
    // Down on nothing is a success.
    assert!(ok(&["down", "--name", n]).contains("removed 0 namespaces"));
}

#[test]
fn bad_arguments_are_rejected() {
    assert!(!cli(&["up", "--name", "x/y", "--no-director"])
        .status
        .success());
    assert!(!cli(&["up", "--driver", "pcap"]).status.success());
    assert!(
        !cli(&["exec", "client"]).status.success(),
        "exec needs a command after --"
    );
    for sub in ["up", "exec", "down", "status", "list"] {
        assert!(cli(&[sub, "--help"]).status.success());
    }
}

#[test]
fn up_from_a_keepalived_conf() {
    let name = unique_name("c");
    let n = name.as_str();
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/fnat-demo.conf");
    let up = ok(&["up", "--name", n, "--no-director", "--config", conf]);
    assert!(up.contains(&format!("lbt-{n}-rs-10.70.2.12")), "{up}");
    let copy = std::fs::read_to_string(format!("/run/lb-testbed/{n}/keepalived.conf")).unwrap();
    assert_eq!(copy, std::fs::read_to_string(conf).unwrap());
    let echo = ok(&[
        "exec",
        "--name",
        n,
        "rs-10.70.2.11",
        "--",
        "sh",
        "-c",
        "printf ping | socat -T2 - UDP4:10.70.2.11:5353",
    ]);
    assert_eq!(echo, "ping");
    let status: serde_json::Value =
        serde_json::from_str(&ok(&["status", "--name", n, "--json"])).unwrap();
    assert_eq!(status["backends"][1]["udp_echo_alive"], true, "{status}");
    ok(&["down", "--name", n]);
    assert!(!netns::list()
        .unwrap()
        .iter()
        .any(|ns| ns.starts_with(&format!("lbt-{n}-"))));
    // --config replaces the backend list: both together are refused.
    assert!(
        !cli(&["up", "--name", n, "--config", conf, "--backends", "3"])
            .status
            .success()
    );
}
