//! What the benchmark binaries share to keep and print a record: table cells, verdicts, lbd's
//! non-zero drops, and writing `DAY-STEM.{md,json}`.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// A value for a table cell: strings bare, null as "—", whole numbers without decimals.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.replace('|', "/"),
        Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), |x| if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x}") }),
        other => other.to_string().replace('|', "/"),
    }
}

/// Thousands as "123.4k".
pub fn thousands(v: &Value) -> String {
    v.as_f64().map_or_else(|| "—".into(), |x| format!("{:.1}k", x / 1000.0))
}

/// A target's verdict for a table ("not met" stands out).
pub fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "—",
    }
}

/// The drop reasons of lbd's `totals` that happened (to keep records readable).
pub fn nonzero_drops(totals: &Value) -> serde_json::Map<String, Value> {
    totals["drops"]
        .as_object()
        .map(|d| d.iter().filter(|(_, v)| v.as_u64().unwrap_or(0) > 0).map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// Writes `out/DAY-STEM.md` and `.json` (DAY from the record's machine date); returns both paths.
pub fn write(out: &Path, stem: &str, md: &str, rec: &Value) -> std::io::Result<(PathBuf, PathBuf)> {
    let day = rec["machine"]["date"].as_str().unwrap_or("undated");
    let (md_path, json_path) = (out.join(format!("{day}-{stem}.md")), out.join(format!("{day}-{stem}.json")));
    let text = serde_json::to_string_pretty(rec).unwrap_or_default();
    std::fs::create_dir_all(out)?;
    std::fs::write(&md_path, md)?;
    std::fs::write(&json_path, text + "\n")?;
    Ok((md_path, json_path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_drops_and_files() {
        assert_eq!((cell(&json!(3.0)), cell(&json!(2.5)), cell(&Value::Null), cell(&json!("a|b"))), ("3".into(), "2.5".into(), "—".into(), "a/b".into()));
        assert_eq!(thousands(&json!(12_345)), "12.3k");
        assert_eq!(nonzero_drops(&json!({"drops": {"a": 0, "b": 2}})).len(), 1);
        let dir = std::env::temp_dir().join(format!("lb-perf-record-{}", std::process::id()));
        let (m, j) = write(&dir, "x", "# md", &json!({"machine": {"date": "2026-01-02"}})).unwrap();
        assert!(m.ends_with("2026-01-02-x.md") && std::fs::read_to_string(&j).unwrap().contains("2026-01-02"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
