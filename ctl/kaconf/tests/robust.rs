//! No input makes the parser panic: every prefix of a valid config, mutations, garbage.

mod common;

use std::path::Path;

fn no_panic(text: &str) {
    let _ = kaconf::parse_str(text, Path::new("/nonexistent-kaconf-dir/fuzz.conf"));
}

#[test]
fn every_prefix_of_a_valid_config() {
    for (_, text) in common::samples() {
        for (i, _) in text.char_indices() {
            no_panic(&text[..i]);
        }
        no_panic(text);
    }
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

#[test]
fn mutated_configs() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let pieces = [
        "{",
        "}",
        "\"",
        "!",
        "#",
        "\n",
        "\\\n",
        " ",
        "-",
        "/",
        "0",
        "999999999999",
        "é",
        "\0",
    ];
    for (_, text) in common::samples() {
        let chars: Vec<char> = text.chars().collect();
        for _ in 0..400 {
            let mut s: String = String::new();
            for &c in &chars {
                match rng.below(60) {
                    0 => {}
                    1 => s.push_str(pieces[rng.below(pieces.len())]),
                    _ => s.push(c),
                }
            }
            no_panic(&s);
        }
    }
}

#[test]
fn garbage() {
    let mut rng = Rng(42);
    let words = [
        "virtual_server",
        "real_server",
        "vrrp_instance",
        "local_address_group",
        "global_defs",
        "include",
        "TCP_CHECK",
        "HTTP_GET",
        "url",
        "path",
        "weight",
        "lb_kind",
        "lb_algo",
        "10.0.0.1",
        "80",
        "{",
        "}",
        "\n",
        "\"",
        "!",
        "-1",
        "10.0.0.1-300",
        "virtual_ipaddress",
        "track_interface",
        "weight",
        "dev",
        "client_ipaddr_allow",
        "0.0.0.0/0",
        "*",
    ];
    for _ in 0..3000 {
        let n = rng.below(40);
        let text: Vec<&str> = (0..n).map(|_| words[rng.below(words.len())]).collect();
        no_panic(&text.join(" "));
    }
    for _ in 0..500 {
        let bytes: Vec<u8> = (0..rng.below(200))
            .map(|_| (rng.next() & 0xff) as u8)
            .collect();
        no_panic(&String::from_utf8_lossy(&bytes));
    }
    no_panic(&"{".repeat(100_000));
    no_panic(&"}".repeat(1000));
    no_panic(&"a {".repeat(10_000));
    no_panic(&"\\".repeat(10_000));
}
