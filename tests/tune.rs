//! `streamguard tune`: a small sweep on real recordings, its outputs checked against
//! individual replays, its pictures, and bad sweeps refused before anything runs.
#[path = "support/cmd.rs"]
mod cmd;
#[path = "support/record.rs"]
mod record;

use cmd::{stdout_ok as ok, streamguard};
use record::replay_fixture;
use serde_json::Value;
use std::path::Path;
use std::process::Output;

/// Two short recordings showing the demo image (cut in at 5.0 s and at 2.4 s), a replay
/// config with the demo bank, labels.
fn fixture() -> tempfile::TempDir {
    replay_fixture(
        &[("a.mp4", [125, 38, 100]), ("b.mp4", [60, 30, 150])],
        r#"{"a.mp4": [[5.0, 6.52]], "b.mp4": [[2.4, 3.6]]}"#,
    )
}

/// `streamguard tune --config replay.toml --labels labels.json ARGS...` in `d`.
fn tune(d: &Path, args: &[&str]) -> Output {
    let mut all = vec!["tune", "--config", "replay.toml", "--labels", "labels.json"];
    all.extend_from_slice(args);
    streamguard(&all, d)
}

#[test]
fn sweep_results_match_individual_replays() {
    let dir = fixture();
    let d = dir.path();
    let out = tune(
        d,
        &[
            "--sweep",
            "sampler.mode=adaptive,all",
            "--sweep",
            "sampler.adaptive.activity_hold_ms=0,1500",
            "--out",
            "out",
            "--jobs",
            "2",
            "--estimate-capacity",
            "a.mp4",
            "b.mp4",
        ],
    );
    let stdout = ok(&out);
    assert!(stdout.contains("streams per core"), "{stdout}");
    let o = d.join("out");
    let rows: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(o.join("results.json")).unwrap()).unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "current",
            "combo-001",
            "combo-002",
            "combo-003",
            "combo-004"
        ]
    );
    assert_eq!(rows[2]["values"]["sampler.mode"], "adaptive");
    assert_eq!(
        rows[2]["values"]["sampler.adaptive.activity_hold_ms"],
        "1500"
    );
    assert_eq!(rows[3]["values"]["sampler.mode"], "all");

    // Every row equals a replay of its config file, run on its own.
    for r in &rows {
        let single = streamguard(
            &[
                "replay",
                "--config",
                r["config"].as_str().unwrap(),
                "--labels",
                "labels.json",
                "--json",
                "a.mp4",
                "b.mp4",
            ],
            d,
        );
        let v: Value = serde_json::from_str(&ok(&single)).unwrap();
        let s = &v["overall"][0];
        for k in [
            "items",
            "detected",
            "missed",
            "ttd_median_s",
            "ttd_p95_s",
            "frames_decoded",
            "frames_analysed",
            "decoded_per_stream_min",
            "analysed_per_stream_min",
            "false_matches",
        ] {
            assert_eq!(
                r[k], s[k],
                "{} {k}: tune {} vs replay {}",
                r["id"], r[k], s[k]
            );
        }
    }
    // `all` mode decodes every frame of both files (263 + 240 units).
    assert_eq!(rows[3]["frames_decoded"], 503);

    // The CSV says the same as the JSON.
    let csv = std::fs::read_to_string(o.join("results.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 6, "{csv}");
    let head: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(
        &head[..3],
        ["id", "sampler.mode", "sampler.adaptive.activity_hold_ms"]
    );
    for (line, r) in lines[1..].iter().zip(&rows) {
        let f: Vec<&str> = line.split(',').collect();
        let col = |name: &str| f[head.iter().position(|h| *h == name).unwrap()];
        assert_eq!(col("id"), r["id"].as_str().unwrap());
        assert_eq!(col("detected"), r["detected"].to_string());
        assert_eq!(col("missed"), r["missed"].to_string());
        let ttd: f64 = col("ttd_median_s").parse().unwrap();
        assert!(
            (ttd - r["ttd_median_s"].as_f64().unwrap()).abs() < 1e-3,
            "{line}"
        );
        let dec: f64 = col("decoded_per_stream_min").parse().unwrap();
        assert!((dec - r["decoded_per_stream_min"].as_f64().unwrap()).abs() < 1e-3);
        assert_eq!(col("frontier"), r["frontier"].to_string());
    }
    assert!(rows.iter().any(|r| r["frontier"] == true));

    // Pictures of the stated size, and a report naming each frontier configuration with
    // its snippet.
    let png = image::open(o.join("frontier.png")).unwrap();
    assert_eq!((png.width(), png.height()), (1000, 700));
    let svg = std::fs::read_to_string(o.join("frontier.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("width=\"1000\"") && svg.contains("height=\"700\""),
        "{:.200}",
        svg
    );
    let report = std::fs::read_to_string(o.join("report.md")).unwrap();
    for r in rows.iter().filter(|r| r["frontier"] == true) {
        assert!(report.contains(&format!("### {}:", r["id"].as_str().unwrap())));
    }
    assert!(
        report.contains("```toml") && report.contains("## Capacity"),
        "{report}"
    );

    // Capacity again from the saved results, without replaying.
    let again = ok(&streamguard(
        &["tune", "--estimate-capacity", "--out", "out"],
        d,
    ));
    assert!(
        again.contains("streams per core") && again.contains("current"),
        "{again}"
    );
}

#[test]
fn bad_sweeps_are_refused_before_anything_runs() {
    let dir = fixture();
    let d = dir.path();
    // Each `--sweep` given: refused (exit 2) with nothing written, the error returned.
    let run = |sweeps: &[&str]| {
        let mut args = Vec::new();
        for sweep in sweeps {
            args.extend(["--sweep", sweep]);
        }
        args.extend(["--out", "bad", "a.mp4"]);
        let out = tune(d, &args);
        assert_eq!(out.status.code(), Some(2), "{sweeps:?}");
        assert!(!d.join("bad/results.json").exists());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&["sampler.adaptive.hodl_ms=1000,2000"]);
    assert!(
        e.contains("--sweep 'sampler.adaptive.hodl_ms=1000'") && e.contains("unknown key"),
        "{e}"
    );
    let e = run(&["sampler.adaptive.hold_ms=abc"]);
    assert!(
        e.contains("--sweep 'sampler.adaptive.hold_ms=abc'") && e.contains("hold_ms"),
        "{e}"
    );
    let e = run(&["sampler.mode="]);
    assert!(
        e.contains("--sweep 'sampler.mode='") && e.contains("empty value list"),
        "{e}"
    );
    let e = run(&["banks.4.threshold=20"]);
    assert!(e.contains("banks.4: the config has 1 banks"), "{e}");
    let e = run(&["sampler.adaptive.base_interval_ms=9000"]);
    assert!(
        e.contains("--sweep 'sampler.adaptive.base_interval_ms=9000'")
            && e.contains("must not exceed max_gap_ms"),
        "{e}"
    );
    // A combination that is valid key by key but not as a whole.
    let e = run(&[
        "sampler.adaptive.base_interval_ms=5000",
        "sampler.adaptive.max_gap_ms=4000",
    ]);
    assert!(
        e.contains(
            "combination sampler.adaptive.base_interval_ms=5000, sampler.adaptive.max_gap_ms=4000"
        ) && e.contains("must not exceed max_gap_ms"),
        "{e}"
    );
    let out = streamguard(&["tune", "--estimate-capacity", "--out", "nowhere"], d);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere/results.json"));
}
