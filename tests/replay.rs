//! `streamguard replay` on real recorded files (made here with GStreamer's x264enc): the same
//! sampling, decoding, analysis and policy code as the daemon, scored against labels.
#[path = "support/cmd.rs"]
mod cmd;
#[path = "support/record.rs"]
mod record;

use cmd::{stdout_ok, streamguard};
use record::replay_fixture;
use serde_json::Value;
use std::path::Path;
use std::process::Output;

/// A folder with the demo bank (action halt), a replay config and two recordings: the
/// image from 5.0 s to 6.52 s, and nothing.
fn fixture() -> tempfile::TempDir {
    replay_fixture(
        &[
            ("with-item.mp4", [125, 38, 100]),
            ("clean.mp4", [100, 0, 100]),
        ],
        r#"{"with-item.mp4": [[5.0, 6.52]], "clean.mp4": []}"#,
    )
}

/// `streamguard replay --config replay.toml --labels LABELS ARGS...` in `d`.
fn replay(d: &Path, labels: &str, args: &[&str]) -> Output {
    let mut all = vec!["replay", "--config", "replay.toml", "--labels", labels];
    all.extend_from_slice(args);
    streamguard(&all, d)
}

#[test]
fn adaptive_and_fixed_side_by_side() {
    let dir = fixture();
    let out = replay(
        dir.path(),
        "labels.json",
        &[
            "--json",
            "--compare",
            "all:2000",
            "--compare",
            "keyframes:2000",
            "with-item.mp4",
            "clean.mp4",
        ],
    );
    let v: Value = serde_json::from_str(&stdout_ok(&out)).unwrap();
    let overall = v["overall"].as_array().unwrap();
    let by = |name: &str| {
        overall
            .iter()
            .find(|s| s["policy"].as_str().unwrap().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {v}"))
            .clone()
    };
    let (adaptive, all, key) = (by("config"), by("all:2000"), by("keyframes:2000"));
    for s in [&adaptive, &all, &key] {
        assert_eq!(s["items"], 1, "{s}");
        assert_eq!(s["false_matches"], 0, "{s}");
        assert_eq!(s["failed_files"], 0, "{s}");
    }
    // Keyframes-only sampling every 2 s may miss a 1.5 s item (its keyframes fall outside).
    for s in [&adaptive, &all] {
        assert_eq!(s["detected"], 1, "{s}");
    }
    // Here it does: its keyframes at 4 s and 7 s (the 5 s scene cut is not due) miss it.
    assert_eq!(key["detected"], 0, "{key}");
    // Decode every frame of both files (263 + 200 units) vs keyframes only.
    assert_eq!(all["frames_decoded"], 463, "{all}");
    assert!(key["frames_decoded"].as_u64().unwrap() <= 12, "{key}");
    // The encoder cut the scene (an IDR where the image appears): the adaptive controller
    // analyses that very frame; the fixed policies wait for their next due frame.
    assert_eq!(adaptive["ttd_median_s"].as_f64(), Some(0.0), "{adaptive}");
    assert!(all["ttd_median_s"].as_f64().unwrap() > 0.5, "{all}");
    assert_eq!(adaptive["mode"], "adaptive");
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 6);
    let first = &runs[0];
    assert_eq!(first["file"], "with-item.mp4");
    assert_eq!(first["detections"][0]["bank"], "demo");
    assert_eq!(first["detections"][0]["item"], "demo-coffee");
    assert_eq!(first["detections"][0]["action"], "halt");
    assert!(first["triggers"]["warmup"].as_u64() == Some(1), "{first}");
    assert_eq!(first["feedback_timeouts"], 0);
    assert!(first["cpu_s"].as_f64().unwrap() > 0.0);

    // The same run as tables.
    let text = stdout_ok(&replay(
        dir.path(),
        "labels.json",
        &["--compare", "all:2000", "with-item.mp4"],
    ));
    assert!(text.contains("with-item.mp4") && text.contains("config (adaptive)"));
    assert!(
        text.contains("overall") && text.contains("ttd_median"),
        "{text}"
    );
}

#[test]
fn bad_labels_and_policies_are_named_before_anything_runs() {
    let dir = fixture();
    let d = dir.path();
    let run = |labels: &str, extra: &[&str]| {
        std::fs::write(d.join("l.json"), labels).unwrap();
        let out = replay(d, "l.json", extra);
        assert_eq!(out.status.code(), Some(2));
        assert!(out.stdout.is_empty(), "nothing replayed");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(r#"{"gone.mp4": [[1, 2]]}"#, &["clean.mp4"]);
    assert!(e.contains("l.json: 'gone.mp4': no such file"), "{e}");
    let e = run(r#"{"with-item.mp4": [[7, 5]]}"#, &["with-item.mp4"]);
    assert!(
        e.contains("l.json: 'with-item.mp4': interval 1 [7, 5]: inverted"),
        "{e}"
    );
    let e = run(r#"{"with-item.mp4": []}"#, &["clean.mp4"]);
    assert!(e.contains("clean.mp4: no entry in l.json"), "{e}");
    let e = run("{not json", &["clean.mp4"]);
    assert!(e.contains("l.json: not a labels file"), "{e}");
    let e = run(
        r#"{"clean.mp4": []}"#,
        &["--compare", "all:500", "--compare", "all:500", "clean.mp4"],
    );
    assert!(e.contains("--compare 'all:500' given twice"), "{e}");
    std::fs::write(d.join("clip.avi"), b"x").unwrap();
    let e = run(r#"{"clip.avi": []}"#, &["clip.avi"]);
    assert!(e.contains("clip.avi: unknown container"), "{e}");
    let e = run(r#"{"clean.mp4": []}"#, &["gone.mp4"]);
    assert!(e.contains("gone.mp4: cannot read"), "{e}");
    let e = run(r#"{"clean.mp4": []}"#, &["--compare", "all:0", "clean.mp4"]);
    assert!(e.contains("--compare 'all:0'"), "{e}");
    let out = streamguard(&["replay", "--labels", "nope.json", "clean.mp4"], d);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.json: cannot read labels"));
}

#[test]
fn a_broken_file_fails_alone() {
    let dir = fixture();
    let d = dir.path();
    std::fs::write(d.join("broken.mp4"), b"this is not a video").unwrap();
    std::fs::write(
        d.join("l.json"),
        r#"{"broken.mp4": [], "with-item.mp4": [[5.0, 6.52]]}"#,
    )
    .unwrap();
    let out = replay(d, "l.json", &["--json", "broken.mp4", "with-item.mp4"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert!(
        runs[0]["error"].as_str().unwrap().contains("broken.mp4"),
        "{v}"
    );
    assert_eq!(runs[1]["items"][0]["detected_s"], 5.0, "{v}");
    assert_eq!(v["overall"][0]["failed_files"], 1);
    assert_eq!(v["overall"][0]["detected"], 1);
}
