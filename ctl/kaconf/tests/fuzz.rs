//! Fuzz target (bounded, deterministic; fuzz/README.md): keepalived.conf text. Mutants of
//! the sample configurations and fuzz/corpus/kaconf/ never panic the parser, and whatever
//! parses writes out (`to_keepalived_string`) to text that parses back to the same settings.
//! (robust.rs covers prefixes, character-level mutation and token garbage.)

mod common;

#[path = "../../../fuzz/harness.rs"]
mod harness;

use std::path::Path;

/// Mutants under `cargo test` (FUZZ_ITERS overrides).
const ITERS: usize = 10_000;

/// Keywords and punctuation a mutant may have spliced in (when the repair hint is off), so mutants stay
/// close to the grammar instead of only breaking it.
const WORDS: [&str; 26] = [
    "{", "}", "\n", "\"", "!", "#", " ", "virtual_server", "real_server", "vrrp_instance", "local_address_group", "TCP_CHECK",
    "HTTP_GET", "weight 0", "lb_kind DR", "lb_kind NAT", "lb_algo wlc", "persistence_timeout 60", "10.0.0.1", "10.0.0.1-300",
    "0.0.0.0/0", "65535", "-1", "include x.conf", "virtual_server group VSG_1", "10.0.0.1 80\n",
];

#[test]
fn fuzz_kaconf() {
    let seeds: Vec<Vec<u8>> = common::samples().iter().map(|(_, t)| t.as_bytes().to_vec()).collect();
    let path = Path::new("/nonexistent-kaconf-dir/fuzz.conf");
    let stats = harness::run("kaconf", &seeds, ITERS, 16 * 1024, |input, fix| {
        let mut text = String::from_utf8_lossy(input).into_owned();
        if !fix && !text.is_empty() {
            // A word at a char boundary picked from the input itself (deterministic).
            let h = input.iter().fold(0usize, |h, &b| h.wrapping_mul(31).wrapping_add(usize::from(b)));
            let mut at = h % text.len();
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.insert_str(at, WORDS[(h >> 16) % WORDS.len()]);
        }
        let Ok(first) = kaconf::parse_str(&text, path) else { return false };
        let written = first.to_keepalived_string();
        let second = kaconf::parse_str(&written, Path::new("saved.conf")).unwrap_or_else(|e| panic!("written form does not parse: {e}\n{written}"));
        assert!(second.same_settings(&first), "written form has other settings:\n{written}");
        true
    });
    stats.assert_deep("kaconf", 4);
}
