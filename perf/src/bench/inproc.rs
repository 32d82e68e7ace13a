//! In-process figures: the fastpath examples that time lbd's code without a driver or a
//! generator (`pipeline_cost`: the pipeline's ns per frame; `sched_props`: the hashing
//! schedulers' balance and disruption). `make bench` builds them; lb-bench runs each one it
//! finds after the memif scenarios and keeps its table.

use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::procs;

/// Each example's name, what its table says, and the longest it may take.
const EXAMPLES: [(&str, &str, u64); 2] = [
    (
        "pipeline_cost",
        "lbd's pipeline alone: established FNAT UDP flows both ways, staged and processed 32 at a \
         time as the worker does, no driver, generator or memif. Best of nine rounds of 2 M frames, \
         buffer refill taken off. The VM's slow mode slows it too: compare minima across runs.",
        300,
    ),
    (
        "sched_props",
        "The hashing schedulers (Maglev, consistent hashing): balance for equal weights, share of \
         clients moved when one of N backends leaves, table build time.",
        300,
    ),
];

/// Runs every example found in `dir`; one record per example, `missing` when not built.
pub fn run(dir: &Path) -> Value {
    let mut out = serde_json::Map::new();
    for (name, about, limit) in EXAMPLES {
        let bin = dir.join(name);
        let mut v = if bin.is_file() {
            eprintln!("lb-bench: in process: {name}");
            let busy = procs::cpu_busy(Duration::from_millis(300));
            let mut v = run_one(&mut Command::new(&bin), Duration::from_secs(limit));
            v["others_cpu_pct_before"] = json!((busy * 10.0).round() / 10.0);
            v
        } else {
            json!({ "missing": bin.display().to_string() })
        };
        v["about"] = json!(about);
        out.insert(name.to_owned(), v);
    }
    Value::Object(out)
}

/// Runs `cmd`, keeping its standard output; killed after `limit`.
fn run_one(cmd: &mut Command, limit: Duration) -> Value {
    let started = Instant::now();
    let mut child = match cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => return json!({ "error": format!("cannot start {:?}: {e}", cmd.get_program()) }),
    };
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return json!({ "error": "no pipes to the example" });
    };
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if started.elapsed() < limit => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let text = reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    let mut v = json!({ "stdout": text, "seconds": started.elapsed().as_secs_f64() });
    match status {
        Some(st) if st.success() => {}
        Some(st) => v["error"] = json!(format!("exited with {st}: {}", err.trim())),
        None => v["error"] = json!(format!("killed after {:.1} s", limit.as_secs_f64())),
    }
    if let Some(rows) = table_rows(&text) {
        v["rows"] = rows;
    }
    v
}

/// The numeric rows of a two-column markdown table (`| key | value |`), as `[[key, value]]`.
fn table_rows(text: &str) -> Option<Value> {
    let rows: Vec<Value> = text
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim().trim_matches('|').split('|').map(str::trim).collect();
            match cells.as_slice() {
                [k, v] => Some(json!([k.parse::<f64>().ok()?, v.parse::<f64>().ok()?])),
                _ => None,
            }
        })
        .collect();
    (!rows.is_empty()).then(|| json!(rows))
}

/// The report's section: each example's table as it printed it.
pub fn section(rec: &Value) -> String {
    let Some(all) = rec["in_process"].as_object() else { return String::new() };
    let mut s = String::from("\n## In process (fastpath examples)\n\n");
    for (name, v) in all {
        let _ = writeln!(s, "### `{name}`\n\n{}\n", v["about"].as_str().unwrap_or(""));
        if let Some(m) = v["missing"].as_str() {
            let _ = writeln!(s, "Not run: {m} is not built (`cargo build --release -p fastpath --examples`).\n");
            continue;
        }
        if let Some(e) = v["error"].as_str() {
            let _ = writeln!(s, "**Failed**: {e}\n");
        }
        let _ = writeln!(
            s,
            "{}\n\n({:.0} s; others used {} % of the CPUs just before.)\n",
            v["stdout"].as_str().unwrap_or("").trim_end(),
            v["seconds"].as_f64().unwrap_or(0.0),
            v["others_cpu_pct_before"]
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_keep_only_numeric_two_column_rows() {
        let t = "| flows | ns per frame |\n|---:|---:|\n| 100 | 61.6 |\n| 10000 | 62.1 |\nnot a row\n| a | b | c |\n";
        assert_eq!(table_rows(t), Some(json!([[100.0, 61.6], [10000.0, 62.1]])));
        assert_eq!(table_rows("| x | y |\n"), None);
    }

    #[test]
    fn a_missing_example_is_said_not_hidden() {
        let v = run(Path::new("/nonexistent-lb-bench-examples"));
        assert!(v["pipeline_cost"]["missing"].is_string());
        let s = section(&json!({ "in_process": v }));
        assert!(s.contains("Not run") && s.contains("pipeline_cost"), "{s}");
    }

    #[test]
    fn an_example_that_fails_or_hangs_is_reported_with_why() {
        let v = run_one(&mut Command::new("false"), Duration::from_secs(5));
        assert!(v["error"].as_str().is_some_and(|e| e.contains("exited")), "{v}");
        let v = run_one(Command::new("sh").args(["-c", "echo '| 1 | 2 |'"]), Duration::from_secs(5));
        assert!(v["error"].is_null(), "{v}");
        assert_eq!(v["rows"], json!([[1.0, 2.0]]));
        let t = Instant::now();
        let v = run_one(Command::new("sleep").arg("30"), Duration::from_millis(300));
        assert!(v["error"].as_str().is_some_and(|e| e.contains("killed")), "{v}");
        assert!(t.elapsed() < Duration::from_secs(10), "the limit holds");
        let v = run_one(&mut Command::new("/nonexistent-lb-bench-example"), Duration::from_secs(1));
        assert!(v["error"].as_str().is_some_and(|e| e.contains("cannot start")), "{v}");
    }
}
