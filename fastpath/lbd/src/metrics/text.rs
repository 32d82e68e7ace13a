//! OpenMetrics text (what `prometheus-client` writes) as Prometheus text format 0.0.4: the
//! format `promtool check metrics` and scrapers without OpenMetrics read. For the counters
//! and gauges lbd exports the two differ in three places: a counter family's name carries
//! `_total` in 0.0.4 (in OpenMetrics only its samples do), 0.0.4 has no `# UNIT` lines, and no
//! `# EOF` terminator.

/// The 0.0.4 text for OpenMetrics `om`.
pub fn to_prometheus(om: &str) -> String {
    let mut out = String::with_capacity(om.len() + 1024);
    let mut lines = om.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        // A family's HELP comes before its TYPE: look ahead for the type.
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            let is_counter = lines.peek().is_some_and(|t| *t == format!("# TYPE {name} counter"));
            if is_counter && !name.ends_with("_total") {
                out.push_str(&format!("# HELP {name}_total{}\n", &rest[name.len()..]));
                continue;
            }
        }
        if let Some(name) = line.strip_prefix("# TYPE ").and_then(|r| r.strip_suffix(" counter")) {
            if !name.ends_with("_total") {
                out.push_str(&format!("# TYPE {name}_total counter\n"));
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}
