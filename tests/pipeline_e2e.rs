//! End to end through real GStreamer pipelines: two synthetic H.264 streams (x264enc), one
//! showing the demo image (whose hash is in the demo bank) from 2 s to 3.5 s, one showing a
//! different benign image. Exactly one alert, for the right stream and bank, must be in SQLite.
use std::path::Path;
use std::time::Duration;
use streamguard::app::App;
use streamguard::config::Source;
use streamguard::moderation::store::{AlertRow, AlertStore};
use streamguard::telemetry::StatsSnapshot;

fn stream(id: &str, image: &Path) -> String {
    format!(
        "[[streams]]\nid = \"{id}\"\npipeline = \"testsrc-image\"\n\
         params = {{ image = \"{}\", before = \"60\", show = \"45\", after = \"60\", realtime = \"false\" }}\n",
        image.display()
    )
}

/// Runs the daemon on `streams` until they end; returns the per-stream counters and alerts.
fn run(dir: &Path, extra: &str, streams: &str) -> (Vec<(String, StatsSnapshot)>, Vec<AlertRow>) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let db = dir.join("alerts.db");
    let config = format!(
        "{extra}[[banks]]\nname = \"demo\"\npath = \"{}\"\n[store]\npath = \"{}\"\n[http]\nlisten = \"127.0.0.1:0\"\n{streams}",
        repo.join("config/demo-bank.txt").display(),
        db.display(),
    );
    let path = dir.join("c.toml");
    std::fs::write(&path, config).unwrap();
    let cfg = Source::File(path).load_with_env(Vec::new()).unwrap();
    let app = App::start(&cfg).unwrap();
    assert!(
        app.wait_streams_finished(Duration::from_secs(120)),
        "streams did not end: {:?}",
        app.stats()
    );
    let stats = app.stats();
    app.shutdown();
    (stats, AlertStore::open(&db).unwrap().alerts().unwrap())
}

#[test]
fn demo_image_raises_exactly_one_alert_for_its_stream() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let streams = stream("with-image", &repo.join("config/demo-image.png"))
        + &stream(
            "other-image",
            &repo.join("tests/data/pdq/images/chelsea_333x222.png"),
        );
    let (stats, alerts) = run(dir.path(), "", &streams);

    assert_eq!(
        stats.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        ["other-image", "with-image"],
        "both streams ran"
    );
    for (id, s) in &stats {
        assert_eq!(s.units_received, 165, "{id}: {s:?}");
        assert!(s.frames_analysed >= 3, "{id}: {s:?}");
        assert_eq!(
            s.units_decoded, s.frames_selected,
            "{id}: keyframes mode decodes only what it analyses"
        );
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(
        (a.stream.as_str(), a.bank.as_str(), a.item_id.as_str()),
        ("with-image", "demo", "demo-coffee")
    );
    assert!(a.distance <= 31 && a.quality >= 50, "{a:?}");
    assert!(
        (2000..3500).contains(&a.frame_pts_ms),
        "image is visible from 2000 to 3500 ms: {a:?}"
    );
}

/// A frame that also matches an `allow` bank raises nothing from the other banks (here the
/// demo bank, set to halt): counted as allowed, not as a match.
#[test]
fn an_allow_bank_match_suppresses_the_other_banks() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[banks]]\nname = \"allowlist\"\npath = \"{}\"\naction = \"allow\"\n",
        repo.join("config/demo-bank.txt").display()
    );
    let (stats, alerts) = run(
        dir.path(),
        &extra,
        &stream("with-image", &repo.join("config/demo-image.png")),
    );
    assert_eq!(stats.len(), 1);
    let s = stats[0].1;
    assert!(s.frames_analysed >= 3, "{s:?}");
    assert!(
        s.allowed >= 1,
        "the image's frames matched both banks: {s:?}"
    );
    assert_eq!(s.matches, 0, "{s:?}");
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn all_frames_mode_samples_on_the_interval() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let extra = "[sampler]\nmode = \"all\"\ninterval_ms = 500\n";
    let (stats, alerts) = run(
        dir.path(),
        extra,
        &stream("dense", &repo.join("config/demo-image.png")),
    );
    let s = stats[0].1;
    // 5.5 s of video at one analysed frame per 500 ms; every unit decoded.
    assert_eq!(s.units_decoded, 165, "{s:?}");
    assert_eq!(s.frames_selected, 11, "{s:?}");
    assert_eq!(s.frames_analysed, 11, "{s:?}");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    // The image appears at 2000 ms, exactly on the schedule: detected on that very frame.
    assert_eq!(alerts[0].frame_pts_ms, 2000, "{:?}", alerts[0]);
    assert_eq!(
        alerts[0].hits, 3,
        "frames at 2000, 2500 and 3000 ms show the image: {:?}",
        alerts[0]
    );
}

#[test]
fn adaptive_mode_goes_dense_on_the_image_and_calm_again() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let extra = "[sampler]\nmode = \"adaptive\"\n\
                 [sampler.adaptive]\nbase_interval_ms = 2000\nmax_gap_ms = 6000\ndense_rate = 5\n\
                 hold_ms = 1000\nwarmup_ms = 0\nscene_change_distance = 80\n";
    // Real time, so that analysis feedback reaches the controller as it would live.
    let streams = format!(
        "[[streams]]\nid = \"adaptive\"\npipeline = \"testsrc-image\"\n\
         params = {{ image = \"{}\", before = \"60\", show = \"45\", after = \"60\", realtime = \"true\" }}\n",
        repo.join("config/demo-image.png").display()
    );
    let (stats, alerts) = run(dir.path(), extra, &streams);
    let s = stats[0].1;
    println!("adaptive: {s:?}, alerts {alerts:?}");
    // Calm alone would analyse the keyframes at 0, 2 and 4 s. The image (a scene change and a
    // match) makes the stream dense: more frames analysed, frames decoded that are not
    // analysed, yet not every unit decoded.
    assert!(s.frames_analysed > 3, "{s:?}");
    assert!(s.units_decoded > s.frames_selected, "never dense: {s:?}");
    assert!(s.units_decoded < 165, "decoded everything: {s:?}");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].frame_pts_ms, 2000, "{:?}", alerts[0]);
    assert!(
        alerts[0].hits >= 2,
        "dense sampling saw the image more than once: {:?}",
        alerts[0]
    );
    println!("adaptive: {s:?}, alert hits {}", alerts[0].hits);
}

#[test]
fn global_budget_stretches_calm_streams_towards_max_gap() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    // Two calm streams want one frame per 2 s each (1.0 fps together); the daemon can afford
    // 0.3 fps, less than even their guaranteed one per 6 s: each gets 0.15 fps, so the calm
    // interval stretches to max_gap (6 s) and the 5.5 s clips get one analysed frame each.
    let extra = "[analysis]\ncapacity_fps = 0.3\n[sampler]\nmode = \"adaptive\"\n\
                 [sampler.adaptive]\nbase_interval_ms = 2000\nmax_gap_ms = 6000\nwarmup_ms = 0\n\
                 spike_ratio = 0\nscene_change_distance = 0\n";
    let streams: String = ["a", "b"]
        .iter()
        .map(|id| {
            format!(
                "[[streams]]\nid = \"{id}\"\npipeline = \"testsrc-image\"\n\
                 params = {{ image = \"{}\", before = \"60\", show = \"45\", after = \"60\", realtime = \"true\" }}\n",
                repo.join("tests/data/pdq/images/chelsea_333x222.png").display()
            )
        })
        .collect();
    let (stats, _) = run(dir.path(), extra, &streams);
    for (id, s) in &stats {
        assert_eq!(s.frames_analysed, 1, "{id}: {s:?}");
    }
}

/// The shipped marker model on the daemon's frames: `[classify]` with models/marker (the
/// synthetic stand-in for a classifier of prohibited content); `config/demo-marker.png`
/// shows the marker on a benign photo from 2 s to 3.5 s.
fn marker_config(extra_sampler: &str) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    format!(
        "{extra_sampler}[classify]\nmodels = [\"{}\"]\nruntime = \"{}\"\nhalt_k = 3\nhalt_n = 5\n",
        repo.join("models/marker").display(),
        repo.join(".onnxruntime/libonnxruntime.so.1.31.1").display(),
    )
}

#[test]
fn marker_on_one_analysed_frame_raises_a_review_alert_only() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    // Keyframes every 2 s: only the keyframe at 2 s (and any scene-cut keyframe while the
    // image shows) sees the marker: fewer than halt_k frames, so review, not halt.
    let streams = stream("with-marker", &repo.join("config/demo-marker.png"))
        + &stream(
            "no-marker",
            &repo.join("tests/data/pdq/images/chelsea_333x222.png"),
        );
    let (stats, alerts) = run(dir.path(), &marker_config(""), &streams);
    for (id, s) in &stats {
        assert_eq!(
            s.frames_classified, s.frames_analysed,
            "{id}: every analysed frame is classified: {s:?}"
        );
        assert_eq!(s.classify_dropped, 0, "{id}: {s:?}");
    }
    let classifier: Vec<_> = alerts.iter().filter(|a| a.reason == "classifier").collect();
    assert_eq!(classifier.len(), 1, "{alerts:?}");
    let a = classifier[0];
    assert_eq!(
        (a.stream.as_str(), a.bank.as_str(), a.item_id.as_str()),
        ("with-marker", "marker", "marker")
    );
    assert!(
        (2000..3500).contains(&a.frame_pts_ms),
        "the marker shows from 2000 to 3500 ms: {a:?}"
    );
    assert_eq!(a.action, "review", "{a:?}");
    assert!(a.hits < 3, "{a:?}");
    assert!(a.score.unwrap() > 0.5, "{a:?}");
}

#[test]
fn marker_on_k_of_n_frames_halts_the_stream() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    // Every 250 ms: six frames (2000..3250 ms) show the marker; the third halts.
    let sampler = "[sampler]\nmode = \"all\"\ninterval_ms = 250\n";
    let (stats, alerts) = run(
        dir.path(),
        &marker_config(sampler),
        &stream("with-marker", &repo.join("config/demo-marker.png")),
    );
    println!("k-of-n: {:?}, alerts {alerts:?}", stats[0].1);
    let classifier: Vec<_> = alerts.iter().filter(|a| a.reason == "classifier").collect();
    assert_eq!(
        classifier.len(),
        1,
        "one open alert, later frames attach: {alerts:?}"
    );
    let a = classifier[0];
    assert_eq!(a.frame_pts_ms, 2000, "{a:?}");
    assert_eq!(a.action, "halt", "{a:?}");
    assert!(a.hits >= 3, "{a:?}");
    let store = AlertStore::open(&dir.path().join("alerts.db")).unwrap();
    let halts: Vec<_> = store
        .events(Some("with-marker"))
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "halt")
        .collect();
    assert_eq!(halts.len(), 1, "{halts:?}");
    assert_eq!(halts[0].actor, "policy:classifier:marker");
    assert_eq!(halts[0].alert_id, Some(a.id));
}
