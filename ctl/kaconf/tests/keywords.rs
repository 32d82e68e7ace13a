//! The keyword table (docs/keepalived-keywords.md) is the parser's: each entry parses as its
//! status says, every keyword literal the parser dispatches on is listed, and the document is
//! what `keyword_table_markdown` generates (KACONF_REGENERATE_DOCS=1 rewrites it).

use std::path::{Path, PathBuf};

use kaconf::{keyword_table, keyword_table_markdown, parse_str, ErrorKind, KeywordStatus};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_document_is_generated() {
    let path = root().join("../../docs/keepalived-keywords.md");
    let want = keyword_table_markdown();
    if std::env::var_os("KACONF_REGENERATE_DOCS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is not what kaconf::keyword_table_markdown() generates; run\n  \
         KACONF_REGENERATE_DOCS=1 cargo test -p kaconf --test keywords",
        path.display()
    );
}

const VS_HEAD: &str = "virtual_server 10.0.0.1 80 {\n lb_algo rr\n lb_kind FNAT\n";
const RS_HEAD: &str = " real_server 10.0.1.1 80 {\n";
const VI_HEAD: &str = "vrrp_instance VI {\n interface eth0\n virtual_router_id 1\n";

/// A configuration with `kw` (no arguments) in `context`; its keyword is on the last line
/// that is not a `}`.
fn snippet(context: &str, kw: &str) -> String {
    match context {
        "top level" => format!("{kw}\n"),
        "global_defs" => format!("global_defs {{\n {kw}\n}}\n"),
        "lvs_sync_daemon option" => format!("global_defs {{\n lvs_sync_daemon eth0 VI {kw} 1\n}}\n{VI_HEAD}}}\n"),
        "virtual_server_group" => format!("virtual_server_group G {{\n {kw} 1\n}}\n"),
        "virtual_server" => format!("{VS_HEAD} {kw}\n}}\n"),
        "real_server" => format!("{VS_HEAD}{RS_HEAD}  {kw}\n }}\n}}\n"),
        "url" => format!("{VS_HEAD}{RS_HEAD}  HTTP_GET {{\n   url {{\n    {kw}\n   }}\n  }}\n }}\n}}\n"),
        "vrrp_instance" => format!("{VI_HEAD} {kw}\n}}\n"),
        "authentication" => format!("{VI_HEAD} authentication {{\n  {kw}\n }}\n}}\n"),
        "virtual_ipaddress line" => format!("{VI_HEAD} virtual_ipaddress {{\n  10.0.0.1 {kw} x\n }}\n}}\n"),
        "vrrp_sync_group" => format!("{VI_HEAD}}}\nvrrp_sync_group G {{\n group {{\n  VI\n }}\n {kw}\n}}\n"),
        check => format!("{VS_HEAD}{RS_HEAD}  {check} {{\n   {kw}\n  }}\n }}\n}}\n"),
    }
}

#[test]
fn every_entry_parses_as_its_status_says() {
    let table = keyword_table();
    assert!(table.len() > 250, "{}", table.len());
    for k in &table {
        for context in k.context.split(", ") {
            let text = snippet(context, k.keyword);
            let got = parse_str(&text, Path::new("k.conf"));
            let ctx = format!("{context}: {}: {:?}\n{text}", k.keyword, k.status);
            match k.status {
                KeywordStatus::Acted => match &got {
                    Ok(c) => assert!(c.warnings.iter().all(|w| w.keyword != k.keyword), "{ctx}"),
                    Err(e) => {
                        let refused = matches!(
                            e.kind,
                            ErrorKind::UnknownKeyword { .. } | ErrorKind::NotSupported { .. } | ErrorKind::Deprecated { .. }
                        ) && e.keyword == k.keyword;
                        assert!(!refused && !matches!(e.kind, ErrorKind::UnknownOption { .. }), "{ctx}{e}");
                    }
                },
                KeywordStatus::Refused => {
                    let e = got.expect_err(&ctx);
                    assert!(
                        matches!(e.kind, ErrorKind::NotSupported { .. } | ErrorKind::Deprecated { .. }),
                        "{ctx}{e}"
                    );
                    // At the keyword (or, for a word inside a line, at the word).
                    let line = text.lines().position(|l| l.split_whitespace().any(|w| w == k.keyword)).unwrap() + 1;
                    assert_eq!(e.line as usize, line, "{ctx}{e}");
                }
                KeywordStatus::Ignored => {
                    let c = got.unwrap_or_else(|e| panic!("{ctx}{e}"));
                    assert!(c.warnings.iter().any(|w| w.keyword == k.keyword), "{ctx}");
                }
            }
        }
    }
}

/// Keyword-like string literals in match arms of the parser's sources (`"weight" =>`,
/// `(_, "url") if ...`, `"a" | "b"`), except values that are not keywords.
fn dispatched_literals() -> Vec<(String, String)> {
    const NOT_KEYWORDS: &[&str] = &[
        // values and the names of the blocks a match is on
        "inet", "inet6", "HTTP", "group", "fwmark", "match",
    ];
    let mut out = Vec::new();
    for file in ["convert.rs", "vs.rs", "vsg.rs", "check.rs", "vrrp.rs", "sync.rs"] {
        let text = std::fs::read_to_string(root().join("src").join(file)).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let mut pattern = String::new();
        for line in code.lines() {
            let t = line.trim();
            // A match arm, possibly continued over lines (`"a" | "b"\n | "c" => ...`).
            let arm_start = t.starts_with('"') || t.starts_with("(_, \"") || t.starts_with("| \"") || t.starts_with("(\"");
            if arm_start || !pattern.is_empty() {
                pattern.push_str(t);
                pattern.push(' ');
            }
            if !pattern.is_empty() && (t.contains("=>") || !arm_start) {
                if t.contains("=>") {
                    let head = pattern.split("=>").next().unwrap_or_default();
                    for lit in head.split('"').skip(1).step_by(2) {
                        let keyword_like = !lit.is_empty()
                            && lit.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                            && !NOT_KEYWORDS.contains(&lit);
                        if keyword_like {
                            out.push((file.to_owned(), lit.to_owned()));
                        }
                    }
                }
                pattern.clear();
            }
        }
    }
    out
}

#[test]
fn every_keyword_the_parser_dispatches_on_is_listed() {
    let table = keyword_table();
    let found = dispatched_literals();
    assert!(found.len() > 100, "the scan found too little: {found:?}");
    for (file, lit) in found {
        assert!(table.iter().any(|k| k.keyword == lit), "{file}: {lit:?} is dispatched on but not in kaconf::keyword_table()");
    }
}
