//! Inputs found by the kaconf fuzz target (fuzz.rs), kept as regression tests.

use std::path::Path;

/// A quorum_up command with a stray quote inside: `"ip addr add 10.0.0.10/32"dev lo"`
/// parses, but `to_keepalived_string` writes it back in a form that does not parse
/// ("quoted string is not closed on this line"). Found with FUZZ_SEED=777 FUZZ_ITERS=150000.
/// The same writer bug in other places: a misc_path `x"/usr/local/bin/check.sh 10.0.1.2"`
/// is written as `"x"/usr/local/bin/check.sh 10.0.1.2""`, which parses back as another
/// command (`x /usr/local/bin/check.sh 10.0.1.2""`): the writer quotes commands without
/// escaping or otherwise keeping the quotes inside them.
#[test]
#[ignore = "kaconf writer: a command containing a quote is written unparseable; source not changed here"]
fn command_with_a_stray_quote_round_trips() {
    let text = "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind NAT\n    quorum_up \"ip addr add 10.0.0.10/32\"dev lo\"\n    real_server 10.0.1.1 80 {\n    }\n}\n";
    let first = kaconf::parse_str(text, Path::new("q.conf")).unwrap();
    let written = first.to_keepalived_string();
    let second = kaconf::parse_str(&written, Path::new("saved.conf")).unwrap_or_else(|e| panic!("{e}\n{written}"));
    assert!(second.same_settings(&first), "{written}");
}
