//! The option table in `usage.rs` (the source of lbctl.8 and the bash completion) against the
//! parser in `args.rs`: whatever one accepts, the other lists, with the same arity and values.

use std::collections::BTreeSet;

use crate::args::parse;
use crate::usage::{bash_completion, Arg, NOUNS, OPTIONS, REFUSED};

/// The parser's error for these arguments, or "" when it accepts them.
fn error(args: &[&str]) -> String {
    let v: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    parse(&v).err().map(|e| e.0).unwrap_or_default()
}

/// String literals in `text` that look like an option (`-x`, `--word-word`).
fn option_literals(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, lit) in text.split('"').enumerate() {
        let shaped = |l: &str| {
            let body = l.strip_prefix("--").or_else(|| l.strip_prefix('-'));
            body.is_some_and(|b| b.starts_with(|c: char| c.is_ascii_alphabetic()) && b.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        };
        if i % 2 == 1 && shaped(lit) {
            out.insert(lit.to_owned());
        }
    }
    out
}

fn table_names() -> BTreeSet<String> {
    OPTIONS.iter().flat_map(|o| o.names.iter().map(|n| (*n).to_owned())).collect()
}

/// An option added to the parser (args.rs) but not to the table fails here.
#[test]
fn every_option_of_the_parser_is_in_the_table() {
    let source = include_str!("args.rs");
    let found = option_literals(source);
    assert!(found.len() > 60, "the scan finds the parser's options: {found:?}");
    let known: BTreeSet<String> = table_names().into_iter().chain(REFUSED.iter().map(|s| (*s).to_owned())).collect();
    let missing: Vec<&String> = found.difference(&known).collect();
    assert!(missing.is_empty(), "options args.rs accepts but usage.rs OPTIONS lacks: {missing:?}");
}

/// Every option in the table is one the parser knows, taking what the table says it takes.
#[test]
fn every_option_of_the_table_parses_with_its_arity() {
    for o in OPTIONS {
        for name in o.names {
            let alone = error(&[name]);
            assert!(!alone.starts_with("unknown option"), "{name}: {alone}");
            let needs_value = alone.contains("needs a value");
            match o.arg {
                Arg::Flag | Arg::OptionalNumber => assert!(!needs_value, "{name} is listed as taking no value but: {alone}"),
                Arg::Value | Arg::File | Arg::Choice(_) | Arg::ThreeNumbers => assert!(needs_value, "{name} is listed as taking a value but alone it gives: {alone:?}"),
            }
            if let Arg::Choice(choices) = o.arg {
                for c in choices {
                    let e = error(&[name, c]);
                    assert!(!e.contains(&format!("{c:?}")), "{name} {c}: {e}");
                }
                let e = error(&[name, "no-such-choice"]);
                assert!(e.contains("\"no-such-choice\""), "{name} refuses what is not a choice: {e:?}");
            }
        }
    }
    assert!(!error(&["-p", "300", "-L"]).contains("300"));
    assert!(error(&["--set", "1", "2"]).contains("needs a value"));
    for name in REFUSED {
        assert!(error(&[name, "x"]).contains("not supported"), "{name}");
    }
    assert!(error(&["--no-such-option"]).starts_with("unknown option"));
}

/// The schedulers and forwarding modes offered are the API's.
#[test]
fn choices_follow_the_api() {
    let sched = OPTIONS.iter().find(|o| o.names.contains(&"-s")).unwrap();
    let Arg::Choice(offered) = sched.arg else { panic!("-s has choices") };
    for s in lb_api::lb_model::Scheduler::ALL {
        assert!(offered.contains(&s.name()), "-s {s} is not offered");
    }
    for name in offered {
        assert!(lb_api::scheduler_from_name(name).is_some(), "-s {name} is offered but not an API scheduler");
    }
    for f in crate::usage::FORWARD {
        assert!(lb_api::forward_from_name(f).is_some(), "--forward {f}");
    }
}

/// Nouns and verbs in `noun_verb`'s patterns: `("a" | "b", Some("x" | "y"))`.
fn noun_verb_literals(source: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let body = &source[source.find("fn noun_verb").expect("noun_verb in args.rs")..];
    let body = &body[..body.find("\n}\n").unwrap_or(body.len())];
    let lits = |s: &str| s.split('"').skip(1).step_by(2).map(str::to_owned).collect::<Vec<_>>();
    let mut out = Vec::new();
    for line in body.lines().map(str::trim).filter(|l| l.starts_with("(\"") && l.contains("=>")) {
        let pattern = &line[..line.find("=>").unwrap_or(line.len())];
        for tuple in pattern.split(") | (") {
            let tuple = tuple.trim_start_matches('(');
            let (n, v) = tuple.split_once(", ").unwrap_or((tuple, ""));
            out.push((lits(n), lits(v)));
        }
    }
    out
}

/// A noun or verb added to the parser but not to the table fails here.
#[test]
fn every_command_of_the_parser_is_in_the_table() {
    let found = noun_verb_literals(include_str!("args.rs"));
    assert!(found.len() > 25, "the scan finds the parser's commands: {found:?}");
    for (nouns, verbs) in &found {
        for n in nouns {
            let entry = NOUNS.iter().find(|e| e.name == n || e.aliases.contains(&n.as_str()));
            let Some(entry) = entry else { panic!("noun {n:?} of args.rs is not in usage.rs NOUNS") };
            for v in verbs {
                assert!(entry.verbs.contains(&v.as_str()) || entry.verb_aliases.contains(&v.as_str()), "{n} {v}: verb of args.rs not in usage.rs NOUNS");
            }
        }
    }
}

/// Every noun and verb in the table is a command the parser knows.
#[test]
fn every_command_of_the_table_parses() {
    for n in NOUNS {
        for spelling in std::iter::once(n.name).chain(n.aliases.iter().copied()) {
            // A noun with verbs may need one (`allow add ...`); one without must stand alone.
            let e = error(&[spelling]);
            assert!(!n.verbs.is_empty() || !e.starts_with("unknown command"), "{spelling}: {e}");
            for v in n.verbs.iter().chain(n.verb_aliases) {
                let e = error(&[spelling, v]);
                assert!(!e.starts_with("unknown command") && !e.contains("the verbs are"), "{spelling} {v}: {e}");
            }
        }
    }
    assert!(error(&["no-such-command"]).starts_with("unknown command"));
}

/// Completes `line` (the last word is the one being completed) with the generated script.
fn complete(line: &str) -> Vec<String> {
    let mut words: Vec<&str> = line.split(' ').collect();
    if words.is_empty() {
        words.push("");
    }
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        "{}\nCOMP_WORDS=({})\nCOMP_CWORD={}\n_lbctl\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        bash_completion(),
        quoted.join(" "),
        words.len() - 1
    );
    let out = std::process::Command::new("bash").arg("--norc").arg("-c").arg(&script).output().expect("bash");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

#[test]
fn bash_completion_completes() {
    assert_eq!(complete("lbctl --sched"), ["--scheduler", "--sched-flags"]);
    assert_eq!(complete("lbctl --schedu"), ["--scheduler"]);
    assert_eq!(complete("lbctl -A -t 10.0.0.1:80 -s w"), ["wrr", "wlc"]);
    assert_eq!(complete("lbctl -o "), ["json", "table", "text"]);
    assert_eq!(complete("lbctl --start-daemon b"), ["backup"]);
    assert_eq!(complete("lbctl -A -t 10.0.0.1:80 -j "), ["enable", "disable"]);
    assert!(complete("lbctl --cps ").is_empty(), "nothing offered for a number");
    assert!(complete("lbctl --mcast-").contains(&"--mcast-interface".to_owned()));
    assert_eq!(complete("lbctl la"), ["laddr"]);
    assert_eq!(complete("lbctl svc "), ["list", "add", "edit", "del", "clear"]);
    assert_eq!(complete("lbctl -n sync s"), ["start", "stop"]);
    assert_eq!(complete("lbctl --socket /run/x.sock rs "), ["list", "add", "edit", "del"]);
    assert!(complete("lbctl rs add ").is_empty(), "no third word offered");
    let all = complete("lbctl ");
    assert_eq!(all.len(), NOUNS.len(), "{all:?}");
}
