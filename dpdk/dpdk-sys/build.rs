//! Generates bindings to the system DPDK and compiles the static-inline shim.
//!
//! Flags come from the `pkg-config` binary (not the crate: it drops `-include rte_config.h`).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn pkg_config(arg: &str) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args([arg, "libdpdk"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run pkg-config ({e}); run scripts/setup.sh first"));
    if !out.status.success() {
        panic!(
            "pkg-config {arg} libdpdk failed: {}; install libdpdk-dev (scripts/setup.sh)",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // `-include rte_config.h` is two words that must stay together.
    let words: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let mut flags = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        if w == "-include" {
            if let Some(f) = it.next() {
                flags.push(format!("-include{f}"));
            }
        } else {
            flags.push(w);
        }
    }
    flags
}

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim.h");
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let cflags = pkg_config("--cflags");
    let libs = pkg_config("--libs");

    let mut build = cc::Build::new();
    build.file("shim.c").include(".").opt_level(3).warnings(false);
    for f in &cflags {
        build.flag(f);
    }
    build.compile("lbdpdkshim");

    for l in &libs {
        if let Some(name) = l.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={name}");
        } else if let Some(dir) = l.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        }
    }

    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(cflags.iter().filter(|f| !f.starts_with("-march")))
        .clang_arg("-I.")
        .allowlist_function("rte_.*")
        .allowlist_function("shim_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*")
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .opaque_type("rte_gtp_psc_generic_hdr")
        .opaque_type("rte_arp_hdr")
        .opaque_type("rte_arp_ipv4")
        .blocklist_function("rte_.*_dump")
        .derive_default(true)
        .derive_debug(false)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .generate()
        .expect("bindgen failed on the DPDK headers");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("bindings.rs");
    bindings.write_to_file(&out).expect("cannot write bindings");
}
