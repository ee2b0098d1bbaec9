//! Replay results: per file and policy, and summed per policy; as a text table or JSON.

use super::{FileRun, Item, Policy};
use serde::Serialize;

/// One file replayed with one policy.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub file: String,
    pub policy: String,
    #[serde(flatten)]
    pub result: RunResult,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum RunResult {
    Done {
        #[serde(flatten)]
        run: FileRun,
        items: Vec<Item>,
        /// Alerting frames outside every labelled interval.
        false_matches: u64,
    },
    Failed {
        error: String,
    },
}

/// Totals of one policy over every file.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Summary {
    pub policy: String,
    pub mode: String,
    pub interval_ms: u64,
    pub files: usize,
    pub failed_files: usize,
    pub items: usize,
    pub detected: usize,
    pub missed: usize,
    pub ttd_median_s: Option<f64>,
    pub ttd_p95_s: Option<f64>,
    pub ttd_mean_s: Option<f64>,
    /// Mean time an item stayed visible before its first alert, a missed item counting
    /// with its whole visible time: time to detect that also charges misses.
    pub exposure_mean_s: Option<f64>,
    pub frames_decoded: u64,
    pub frames_analysed: u64,
    pub false_matches: u64,
    /// Analysed frames whose result did not come back within 2 s (lockstep); anything
    /// above 0 makes adaptive results unfaithful (see `replay`).
    #[serde(default)]
    pub feedback_timeouts: u64,
    pub stream_s: f64,
    pub cpu_s: f64,
    pub decoded_per_stream_min: f64,
    pub analysed_per_stream_min: f64,
    pub cpu_s_per_stream_min: f64,
}

/// The `q`-quantile (nearest rank) of sorted values.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// The median: the middle value, or the mean of the two middle ones.
fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

pub fn summarise(policy: &Policy, outcomes: &[Outcome]) -> Summary {
    let mine: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.policy == policy.name)
        .collect();
    let mut s = Summary {
        policy: policy.name.clone(),
        mode: super::mode_name(policy.sampler.mode).to_string(),
        interval_ms: policy.sampler.interval_ms,
        files: mine.len(),
        failed_files: 0,
        items: 0,
        detected: 0,
        missed: 0,
        ttd_median_s: None,
        ttd_p95_s: None,
        ttd_mean_s: None,
        exposure_mean_s: None,
        frames_decoded: 0,
        frames_analysed: 0,
        false_matches: 0,
        feedback_timeouts: 0,
        stream_s: 0.0,
        cpu_s: 0.0,
        decoded_per_stream_min: 0.0,
        analysed_per_stream_min: 0.0,
        cpu_s_per_stream_min: 0.0,
    };
    let mut ttds = Vec::new();
    let mut exposure = Vec::new();
    for o in mine {
        match &o.result {
            RunResult::Failed { .. } => s.failed_files += 1,
            RunResult::Done {
                run,
                items,
                false_matches,
            } => {
                s.items += items.len();
                ttds.extend(items.iter().filter_map(Item::ttd_s));
                exposure.extend(
                    items
                        .iter()
                        .map(|i| i.ttd_s().unwrap_or(i.end_s - i.start_s)),
                );
                s.frames_decoded += run.frames_decoded;
                s.frames_analysed += run.frames_analysed;
                s.false_matches += false_matches;
                s.feedback_timeouts += run.feedback_timeouts;
                s.stream_s += run.duration_s;
                s.cpu_s += run.cpu_s;
            }
        }
    }
    ttds.sort_by(f64::total_cmp);
    s.detected = ttds.len();
    s.missed = s.items - s.detected;
    s.ttd_median_s = median(&ttds);
    s.ttd_p95_s = quantile(&ttds, 0.95);
    s.ttd_mean_s = (!ttds.is_empty()).then(|| ttds.iter().sum::<f64>() / ttds.len() as f64);
    s.exposure_mean_s =
        (!exposure.is_empty()).then(|| exposure.iter().sum::<f64>() / exposure.len() as f64);
    if s.stream_s > 0.0 {
        let per_min = 60.0 / s.stream_s;
        s.decoded_per_stream_min = s.frames_decoded as f64 * per_min;
        s.analysed_per_stream_min = s.frames_analysed as f64 * per_min;
        s.cpu_s_per_stream_min = s.cpu_s * per_min;
    }
    s
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"))
}

/// A text report: one line per file and policy, then the totals per policy.
pub fn text(outcomes: &[Outcome], summaries: &[Summary]) -> String {
    let mut out = String::new();
    let w = outcomes
        .iter()
        .map(|o| o.file.len())
        .chain(summaries.iter().map(|s| s.policy.len()))
        .max()
        .unwrap_or(4)
        .max(6);
    let pw = summaries
        .iter()
        .map(|s| s.policy.len())
        .max()
        .unwrap_or(6)
        .max(6);
    out += &format!(
        "{:w$}  {:pw$}  {:>5}  {:>8}  {:>6}  {:>7}  {:>8}  {:>5}  {:>6}\n",
        "file", "policy", "items", "detected", "ttd_s", "decoded", "analysed", "false", "cpu_s"
    );
    for o in outcomes {
        match &o.result {
            RunResult::Done {
                run,
                items,
                false_matches,
            } => {
                let det = items.iter().filter(|i| i.detected_s.is_some()).count();
                let mut t: Vec<f64> = items.iter().filter_map(Item::ttd_s).collect();
                t.sort_by(f64::total_cmp);
                out += &format!(
                    "{:w$}  {:pw$}  {:>5}  {:>8}  {:>6}  {:>7}  {:>8}  {:>5}  {:>6.2}\n",
                    o.file,
                    o.policy,
                    items.len(),
                    det,
                    secs(median(&t)),
                    run.frames_decoded,
                    run.frames_analysed,
                    false_matches,
                    run.cpu_s
                );
            }
            RunResult::Failed { error } => {
                out += &format!("{:w$}  {:pw$}  FAILED: {error}\n", o.file, o.policy);
            }
        }
    }
    out += "\noverall (ttd: time to detect from the item's first frame, stream time)\n";
    out += &format!(
        "{:pw$}  {:>5}  {:>8}  {:>6}  {:>10}  {:>7}  {:>8}  {:>8}  {:>14}  {:>5}  {:>6}  {:>12}\n",
        "policy",
        "items",
        "detected",
        "missed",
        "ttd_median",
        "ttd_p95",
        "decoded",
        "analysed",
        "decoded+analys",
        "false",
        "cpu_s",
        "cpu_s/strmin"
    );
    for s in summaries {
        out += &format!(
            "{:pw$}  {:>5}  {:>8}  {:>6}  {:>10}  {:>7}  {:>8}  {:>8}  {:>14}  {:>5}  {:>6.2}  {:>12.3}\n",
            s.policy,
            s.items,
            s.detected,
            s.missed,
            secs(s.ttd_median_s),
            secs(s.ttd_p95_s),
            s.frames_decoded,
            s.frames_analysed,
            s.frames_decoded + s.frames_analysed,
            s.false_matches,
            s.cpu_s,
            s.cpu_s_per_stream_min
        );
        if s.failed_files > 0 {
            out += &format!("{:pw$}  ({} files failed)\n", "", s.failed_files);
        }
        if s.feedback_timeouts > 0 {
            out += &format!(
                "{:pw$}  ({} analysed frames had no result within 2 s: B-frames? not faithful)\n",
                "", s.feedback_timeouts
            );
        }
    }
    out
}

/// The JSON report: `{"overall": [Summary...], "runs": [Outcome...]}`.
pub fn json(outcomes: &[Outcome], summaries: &[Summary]) -> serde_json::Value {
    serde_json::json!({ "overall": summaries, "runs": outcomes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(median(&v), Some(2.5));
        assert_eq!(median(&v[..3]), Some(2.0));
        assert_eq!(quantile(&v, 0.95), Some(4.0));
        assert_eq!(quantile(&v, 0.5), Some(2.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn summary_counts_items_and_costs() {
        let p = Policy::parse("all:2000", &Default::default()).unwrap();
        let run = |ttd: &[Option<f64>], decoded| RunResult::Done {
            run: FileRun {
                duration_s: 30.0,
                frames_decoded: decoded,
                frames_analysed: 15,
                cpu_s: 1.5,
                ..Default::default()
            },
            items: ttd
                .iter()
                .map(|t| Item {
                    start_s: 10.0,
                    end_s: 12.0,
                    detected_s: t.map(|t| 10.0 + t),
                })
                .collect(),
            false_matches: 1,
        };
        let o = |f: &str, r| Outcome {
            file: f.into(),
            policy: "all:2000".into(),
            result: r,
        };
        let outcomes = vec![
            o("a", run(&[Some(1.0), None], 750)),
            o("b", run(&[Some(0.5), Some(2.0)], 750)),
            o("c", RunResult::Failed { error: "x".into() }),
        ];
        let s = summarise(&p, &outcomes);
        assert_eq!(
            (s.files, s.failed_files, s.items, s.detected, s.missed),
            (3, 1, 4, 3, 1)
        );
        assert_eq!(s.ttd_median_s, Some(1.0));
        // Detected after 1, 0.5 and 2 s; the missed one was visible for 2 s.
        assert_eq!(s.exposure_mean_s, Some(5.5 / 4.0));
        assert_eq!(s.frames_decoded, 1500);
        assert_eq!(s.false_matches, 2);
        assert!((s.decoded_per_stream_min - 1500.0).abs() < 1e-9);
        assert!((s.cpu_s_per_stream_min - 3.0).abs() < 1e-9);
        let t = text(&outcomes, std::slice::from_ref(&s));
        assert!(
            t.contains("FAILED: x") && t.contains("1 files failed"),
            "{t}"
        );
        let j = json(&outcomes, &[s]);
        assert_eq!(j["overall"][0]["detected"], 3);
        assert_eq!(j["runs"][2]["error"], "x");
        assert_eq!(j["runs"][0]["frames_decoded"], 750);
    }
}
