//! `results.csv`, `results.json` and `report.md` of a tuning run, and capacity estimates.

use super::{Row, Sweep};
use std::fmt::Write as _;

/// Streams of this kind one core watches at a configuration: a core has 60 CPU-seconds per
/// minute; each stream costs `cpu_s_per_stream_min` of them.
pub fn streams_per_core(r: &Row) -> Option<f64> {
    let c = r.summary.cpu_s_per_stream_min;
    (c > 0.0).then(|| 60.0 / c)
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| format!("{v:.3}"))
}

/// One line per configuration: its swept values (empty for `current`), detection and cost.
pub fn csv(sweeps: &[Sweep], rows: &[Row], frontier: &[usize]) -> String {
    let mut out = String::from("id");
    for s in sweeps {
        out += &format!(",{}", s.key);
    }
    out += ",items,detected,missed,ttd_median_s,ttd_p95_s,exposure_mean_s,decoded_per_stream_min,analysed_per_stream_min,cpu_s_per_stream_min,streams_per_core,false_matches,frontier,config\n";
    for (i, r) in rows.iter().enumerate() {
        let s = &r.summary;
        out += &r.combo.id;
        for sw in sweeps {
            out += &format!(",{}", quote(r.combo.value(&sw.key).unwrap_or("")));
        }
        let _ = writeln!(
            out,
            ",{},{},{},{},{},{},{:.3},{:.3},{:.4},{},{},{},{}",
            s.items,
            s.detected,
            s.missed,
            opt(s.ttd_median_s),
            opt(s.ttd_p95_s),
            opt(s.exposure_mean_s),
            s.decoded_per_stream_min,
            s.analysed_per_stream_min,
            s.cpu_s_per_stream_min,
            opt(streams_per_core(r)),
            s.false_matches,
            frontier.contains(&i),
            quote(&r.combo.config.display().to_string())
        );
    }
    out
}

fn quote(v: &str) -> String {
    if v.contains([',', '"', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

pub fn json(rows: &[Row], frontier: &[usize]) -> serde_json::Value {
    serde_json::Value::Array(
        rows.iter()
            .enumerate()
            .map(|(i, r)| {
                let mut v = serde_json::to_value(&r.summary).expect("summary serialises");
                let values: serde_json::Map<String, serde_json::Value> = r
                    .combo
                    .values
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect();
                v["id"] = r.combo.id.clone().into();
                v["values"] = values.into();
                v["config"] = r.combo.config.display().to_string().into();
                v["frontier"] = frontier.contains(&i).into();
                v["streams_per_core"] = streams_per_core(r).into();
                v
            })
            .collect(),
    )
}

/// The config snippet that turns the base config into this row's.
pub fn snippet(r: &Row) -> String {
    let mut t = toml::Table::new();
    let mut notes = String::new();
    for (k, v) in &r.combo.values {
        if k.split('.').any(|s| s.chars().all(|c| c.is_ascii_digit())) {
            let _ = writeln!(notes, "# {k} = {v}  (an entry of a list of tables)");
        } else if let Err(e) = super::set_path(&mut t, k, super::toml_value(v)) {
            let _ = writeln!(notes, "# {k} = {v}  ({e})");
        }
    }
    let body = toml::to_string(&t).unwrap_or_default();
    if body.trim().is_empty() && notes.is_empty() {
        "# (the base config, unchanged)\n".into()
    } else {
        body + &notes
    }
}

/// The capacity table: streams per core at each frontier point (and the current config).
pub fn capacity(rows: &[Row], frontier: &[usize]) -> String {
    let mut out = String::from(
        "| configuration | exposure (s) | median time to detect (s) | items found | CPU-s per stream-minute | streams per core |\n|---|---|---|---|---|---|\n",
    );
    for (i, r) in rows.iter().enumerate() {
        if !frontier.contains(&i) && r.combo.id != "current" {
            continue;
        }
        let s = &r.summary;
        let _ = writeln!(
            out,
            "| {}{} | {} | {} | {}/{} | {:.3} | {} |",
            r.combo.id,
            if frontier.contains(&i) {
                " (frontier)"
            } else {
                ""
            },
            opt(s.exposure_mean_s),
            opt(s.ttd_median_s),
            s.detected,
            s.items,
            s.cpu_s_per_stream_min,
            streams_per_core(r).map_or("-".into(), |n| format!("{n:.0}"))
        );
    }
    out
}

/// `report.md`: the run, every row, the frontier with each point's snippet, capacity.
pub fn report(command: &str, sweeps: &[Sweep], rows: &[Row], frontier: &[usize]) -> String {
    let mut out = String::from("# streamguard tune report\n\n");
    let _ = writeln!(out, "Command: `{command}`\n");
    let _ = writeln!(
        out,
        "Every configuration replayed the same files. Time to detect is stream time from an \
         item's first visible frame to the first alerting frame inside its labelled interval; \
         CPU is the replaying process's (every thread) per minute of stream. Exposure is the \
         mean time an item stayed visible before its first alert, a missed item counting \
         with its whole visible time. A configuration is on the frontier when no other one \
         is at least as good on CPU and exposure, and better on one. CPU is measured, so \
         configurations that decode and analyse the same frames differ by noise.\n"
    );
    out += "![frontier](frontier.png)\n\n## All configurations\n\n| id |";
    for s in sweeps {
        let _ = write!(out, " `{}` |", s.key);
    }
    out += " found | median TTD (s) | p95 TTD (s) | exposure (s) | decoded/min | analysed/min | CPU-s/min | frontier |\n|---|";
    out += &"---|".repeat(sweeps.len() + 8);
    out += "\n";
    for (i, r) in rows.iter().enumerate() {
        let s = &r.summary;
        let _ = write!(out, "| {} |", r.combo.id);
        for sw in sweeps {
            let _ = write!(out, " {} |", r.combo.value(&sw.key).unwrap_or("(base)"));
        }
        let _ = writeln!(
            out,
            " {}/{} | {} | {} | {} | {:.0} | {:.1} | {:.3} | {} |",
            s.detected,
            s.items,
            opt(s.ttd_median_s),
            opt(s.ttd_p95_s),
            opt(s.exposure_mean_s),
            s.decoded_per_stream_min,
            s.analysed_per_stream_min,
            s.cpu_s_per_stream_min,
            if frontier.contains(&i) { "yes" } else { "" }
        );
    }
    out += "\n## Frontier configurations\n\n";
    let mut f: Vec<usize> = frontier.to_vec();
    f.sort_by(|&a, &b| {
        rows[a]
            .summary
            .cpu_s_per_stream_min
            .total_cmp(&rows[b].summary.cpu_s_per_stream_min)
    });
    for i in f {
        let r = &rows[i];
        let s = &r.summary;
        let _ = writeln!(
            out,
            "### {}: exposure {} s, median TTD {} s, {}/{} found, {:.3} CPU-s per stream-minute\n\n\
             Full config: `{}`. Set these keys in the base config (or replay that file):\n\n```toml\n{}```\n",
            r.combo.id,
            opt(s.exposure_mean_s),
            opt(s.ttd_median_s),
            s.detected,
            s.items,
            s.cpu_s_per_stream_min,
            r.combo.config.display(),
            snippet(r)
        );
    }
    out += "## Capacity\n\nOne core has 60 CPU-seconds a minute; streams like these cost the \
            figure above each.\n\n";
    out += &capacity(rows, frontier);
    out
}
