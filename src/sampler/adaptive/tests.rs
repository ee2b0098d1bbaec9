//! Unit tests of the adaptive controller, with a fake clock (stream time passed in).
use super::*;

const S: u64 = 1_000_000_000;
const FRAME: u64 = S / 30;

fn calm_params() -> AdaptiveParams {
    AdaptiveParams {
        warmup_ms: 0,
        ..AdaptiveParams::default()
    }
}

/// Feeds `secs` of a 30 fps stream with a keyframe every `gop` frames, from `from` ns;
/// returns the decisions with their times.
fn run(c: &mut Controller, from: u64, secs: u64, gop_len: u64) -> Vec<(u64, Decision)> {
    run_with(c, from, secs, gop_len, false)
}

/// [`run`], saying whether the caller buffers the GOP.
fn run_with(
    c: &mut Controller,
    from: u64,
    secs: u64,
    gop_len: u64,
    gop: bool,
) -> Vec<(u64, Decision)> {
    (0..secs * 30)
        .map(|i| {
            let t = from + i * FRAME;
            let key = (from / FRAME + i).is_multiple_of(gop_len);
            (t, c.on_unit(t, if key { 20_000 } else { 2_000 }, key, gop))
        })
        .collect()
}

/// Frame times are rounded to whole nanoseconds: compare to within a frame.
fn near(a: u64, b: u64) -> bool {
    a.abs_diff(b) < FRAME
}

fn analysed(d: &[(u64, Decision)]) -> Vec<u64> {
    d.iter()
        .filter(|(_, d)| matches!(d, Decision::Analyse | Decision::AnalyseFromKeyframe))
        .map(|(t, _)| *t)
        .collect()
}

#[test]
fn calm_analyses_one_keyframe_per_base_interval_and_decodes_nothing_else() {
    let mut c = Controller::new(calm_params(), 0);
    let d = run(&mut c, 0, 20, 30); // keyframe every second
    let a = analysed(&d);
    assert_eq!(a.len(), 10, "{a:?}");
    assert!(a.windows(2).all(|w| near(w[1] - w[0], 2 * S)), "{a:?}");
    assert!(d.iter().all(|(_, d)| *d != Decision::Decode));
    assert_eq!(c.mode(), Mode::Calm);
    assert_eq!(c.missed_gaps(), 0);
}

#[test]
fn warmup_starts_dense_then_decays_to_calm() {
    let p = AdaptiveParams {
        warmup_ms: 3000,
        ..AdaptiveParams::default()
    };
    let mut c = Controller::new(p, 0);
    assert_eq!(c.mode(), Mode::Dense);
    let d = run(&mut c, 0, 3, 60);
    // 5 per second for 3 s, every frame decoded in between.
    assert_eq!(analysed(&d).len(), 15);
    assert!(d.iter().any(|(_, d)| *d == Decision::Decode));
    run(&mut c, 3 * S, 1, 60);
    assert_eq!(c.mode(), Mode::Calm);
    assert_eq!(c.trigger_counts()[5], (Trigger::Warmup, 1));
}

#[test]
fn dense_waits_for_a_keyframe_unless_given_the_gop() {
    let mut c = Controller::new(calm_params(), 0);
    run(&mut c, 0, 1, 60);
    // A near miss at 1 s (mid-GOP): dense, but delta frames are skipped until the keyframe
    // at 2 s, from which every frame is decoded.
    c.on_hash(S, PdqHash::default(), Some((40, 31)), true);
    assert_eq!(c.mode(), Mode::Dense);
    let d = run(&mut c, S + FRAME, 2, 60);
    let first_decoded = d.iter().find(|(_, d)| *d != Decision::Skip).unwrap().0;
    assert!(near(first_decoded, 2 * S), "{first_decoded}");
    assert!(
        d.iter()
            .filter(|(t, _)| *t >= first_decoded)
            .all(|(_, d)| *d != Decision::Skip)
    );
    assert_eq!(c.trigger_counts()[1], (Trigger::NearMiss, 1));
}

#[test]
fn spike_on_a_delta_frame_is_analysed_at_once_from_the_buffered_keyframe() {
    let mut c = Controller::new(calm_params(), 0);
    run(&mut c, 0, 3, 60);
    let t = 3 * S + 10 * FRAME;
    assert_eq!(
        c.on_unit(t, 50_000, false, true),
        Decision::AnalyseFromKeyframe
    );
    assert_eq!(c.mode(), Mode::Dense);
    // Then every frame is decoded, one analysed per 200 ms.
    assert_eq!(c.on_unit(t + FRAME, 2_000, false, true), Decision::Decode);
    assert_eq!(
        c.on_unit(t + 6 * FRAME, 2_000, false, true),
        Decision::Analyse
    );
    assert_eq!(c.trigger_counts()[3], (Trigger::Spike, 1));
    // A unit merely larger than usual, below the ratio, is not a spike.
    let mut calm = Controller::new(calm_params(), 0);
    run(&mut calm, 0, 3, 60);
    assert_eq!(calm.on_unit(t, 2_900, false, true), Decision::Skip);
    // Nor is one above the ratio when sizes vary that much anyway (busy content):
    // deltas alternating 1,000 and 3,000 bytes have a standard deviation of 1,000.
    let mut busy = Controller::new(calm_params(), 0);
    for i in 0..90u64 {
        let size = if i % 2 == 0 { 1_000 } else { 3_000 };
        busy.on_unit(i * FRAME, size, i % 60 == 0, true);
    }
    assert_eq!(busy.on_unit(t, 5_000, false, true), Decision::Skip);
    assert_eq!(
        busy.on_unit(t + FRAME, 9_000, false, true),
        Decision::AnalyseFromKeyframe
    );
}

#[test]
fn an_unscheduled_keyframe_is_a_scene_cut_analysed_at_once() {
    let mut c = Controller::new(calm_params(), 0);
    run(&mut c, 0, 3, 60); // keyframes at 0 and 2 s (analysed)
    // The encoder cuts the scene at 2.5 s, 1.5 s before the next keyframe is due: a
    // spike, analysed now.
    let t = 2 * S + 15 * FRAME;
    assert_eq!(c.on_unit(t, 20_000, true, false), Decision::Analyse);
    assert_eq!(c.mode(), Mode::Dense);
    assert_eq!(c.trigger_counts()[3], (Trigger::Spike, 1));
    // The next keyframe a whole GOP later is regular again.
    let mut d = c.clone();
    d.on_unit(t + 2 * S, 20_000, true, false);
    assert_eq!(d.trigger_counts()[3], (Trigger::Spike, 1));
    // An encoder that keeps its schedule after the cut: the keyframe at 4 s is early
    // after the cut but on time, and no second spike.
    let mut f = c.clone();
    f.on_unit(4 * S, 20_000, true, false);
    assert_eq!(f.trigger_counts()[3], (Trigger::Spike, 1));
    f.on_unit(6 * S, 20_000, true, false);
    assert_eq!(f.trigger_counts()[3], (Trigger::Spike, 1));
    // A cadence that really shortens stops counting after three early keyframes.
    let mut e = Controller::new(calm_params(), 0);
    run(&mut e, 0, 3, 60);
    for i in 1..=5 {
        e.on_unit(2 * S + i * 20 * FRAME, 20_000, true, false);
    }
    assert_eq!(e.trigger_counts()[3], (Trigger::Spike, 2));
    // A scheduled keyframe much larger than the stream's other keyframes (a cut that
    // fell on it) is a spike as well.
    let mut k = Controller::new(calm_params(), 0);
    run(&mut k, 0, 13, 60); // seven keyframes of 20,000 bytes
    assert_eq!(k.on_unit(14 * S, 70_000, true, false), Decision::Analyse);
    assert_eq!(k.trigger_counts()[3], (Trigger::Spike, 1));
    // Off when asked.
    let mut off = Controller::new(
        AdaptiveParams {
            scene_cut_keyframes: false,
            ..calm_params()
        },
        0,
    );
    run(&mut off, 0, 3, 60);
    assert_eq!(off.on_unit(t, 20_000, true, false), Decision::Skip);
}

#[test]
fn a_trigger_right_after_an_analysed_frame_catches_up_without_analysing() {
    let mut c = Controller::new(calm_params(), 0);
    assert_eq!(c.on_unit(0, 20_000, true, false), Decision::Analyse);
    c.on_hash(0, PdqHash::default(), Some((10, 31)), true); // a match on that frame
    // The next unit is only 33 ms later: not due at 5 fps, but decoding catches up.
    assert_eq!(
        c.on_unit(FRAME, 2_000, false, true),
        Decision::DecodeFromKeyframe
    );
    assert_eq!(c.on_unit(2 * FRAME, 2_000, false, true), Decision::Decode);
    assert_eq!(c.on_unit(6 * FRAME, 2_000, false, true), Decision::Analyse);
}

#[test]
fn scene_change_and_match_and_grey_zone_trigger() {
    let mut c = Controller::new(calm_params(), 0);
    let a = PdqHash([0; 4]);
    let b = PdqHash([u64::MAX, u64::MAX, 0, 0]); // 128 bits away
    c.on_hash(0, a, None, true);
    assert_eq!(c.mode(), Mode::Calm);
    // A flat frame's hash says nothing about the scene.
    c.on_hash(S, b, None, false);
    assert_eq!(c.mode(), Mode::Calm);
    c.on_hash(2 * S, b, None, true);
    assert_eq!(c.mode(), Mode::Dense);
    // While dense, consecutive frames are too close for "change" to mean anything: no
    // new trigger, and the stream decays back to calm after the activity hold.
    c.on_hash(2 * S + S / 5, a, None, true);
    c.on_hash(2 * S + 2 * S / 5, b, None, true);
    assert_eq!(c.trigger_counts()[4], (Trigger::SceneChange, 1));
    run(&mut c, 2 * S + S / 2, 2, 60);
    assert_eq!(c.mode(), Mode::Calm);
    let mut m = Controller::new(calm_params(), 0);
    m.on_hash(0, a, Some((10, 31)), true);
    assert_eq!(m.trigger_counts()[2], (Trigger::Match, 1));
    let mut g = Controller::new(calm_params(), 0);
    g.on_score(0, 0.1, 0.8);
    assert_eq!(g.mode(), Mode::Calm);
    g.on_score(0, 0.5, 0.8);
    assert_eq!(
        (g.mode(), g.trigger_counts()[0]),
        (Mode::Dense, (Trigger::GreyZone, 1))
    );
}

#[test]
fn dense_decays_hold_after_the_last_trigger() {
    let mut c = Controller::new(calm_params(), 0);
    c.on_score(0, 0.5, 0.8);
    c.on_score(5 * S, 0.5, 0.8); // extends to 5 s + hold_ms (6 s)
    run(&mut c, 0, 10, 60);
    assert_eq!(c.mode(), Mode::Dense);
    run(&mut c, 10 * S, 2, 60);
    assert_eq!(c.mode(), Mode::Calm);
    // A spike holds only activity_hold_ms (1.5 s).
    let mut a = Controller::new(calm_params(), 0);
    run(&mut a, 0, 3, 60);
    a.on_unit(3 * S, 50_000, false, true);
    assert_eq!(a.mode(), Mode::Dense);
    run(&mut a, 3 * S + FRAME, 1, 60);
    assert_eq!(a.mode(), Mode::Dense);
    run(&mut a, 4 * S + FRAME, 1, 60);
    assert_eq!(a.mode(), Mode::Calm);
}

#[test]
fn calm_resumes_at_the_next_keyframe_after_dense() {
    // A spike at 3.5 s: dense until 5 s (activity hold 1.5 s), analysed up to 4.9 s.
    let mut c = Controller::new(calm_params(), 0);
    run(&mut c, 0, 3, 60);
    c.on_unit(3 * S + 15 * FRAME, 50_000, false, true);
    let d = run(&mut c, 3 * S + 16 * FRAME, 5, 60);
    let a = analysed(&d);
    // The keyframe at 6 s is analysed though only ~1.1 s after the last dense frame;
    // then one keyframe per base interval again.
    let calm: Vec<u64> = a.into_iter().filter(|&t| t > 5 * S).collect();
    assert_eq!(calm.len(), 2, "{calm:?}");
    assert!(near(calm[0], 6 * S) && near(calm[1], 8 * S), "{calm:?}");
}

#[test]
fn budget_stretches_calm_up_to_max_gap_and_no_further() {
    let mut c = Controller::new(calm_params(), 0);
    c.set_granted_rate(0.25); // every 4 s
    let a = analysed(&run(&mut c, 0, 20, 30));
    assert!(a.windows(2).all(|w| near(w[1] - w[0], 4 * S)), "{a:?}");
    c.set_granted_rate(0.01); // 100 s asked; max_gap is 6 s
    assert_eq!(c.current_interval_ms(), 6000);
}

#[test]
fn gaps_longer_than_max_gap_are_counted_once_each() {
    let mut c = Controller::new(calm_params(), 0);
    // Keyframes only every 10 s: each gap exceeds max_gap (6 s).
    run(&mut c, 0, 31, 300);
    assert_eq!(c.missed_gaps(), 3);
}

#[test]
fn calm_takes_an_early_keyframe_rather_than_break_max_gap() {
    let p = AdaptiveParams {
        max_gap_ms: 2100,
        hold_ms: 1500,
        ..calm_params()
    };
    let mut c = Controller::new(p, 0);
    // Keyframes every 2 s; a trigger at 1 s leaves the stream dense until 2.5 s (the last
    // dense frame analysed at ~2.4 s); the calm keyframe at 4 s is only 1.6 s later but
    // the next (6 s) would be 3.6 s later: take 4 s.
    let mut d = run(&mut c, 0, 1, 60);
    c.on_score(S, 0.5, 0.8);
    d.extend(run(&mut c, S, 11, 60));
    let a = analysed(&d);
    assert!(
        a.windows(2).all(|w| w[1] - w[0] <= 2100 * 1_000_000),
        "{a:?}"
    );
    assert_eq!(c.missed_gaps(), 0);
}

#[test]
fn risk_goes_dense_once() {
    let mut c = Controller::new(calm_params(), 0);
    c.set_risk(true, 0);
    c.set_risk(true, S);
    assert_eq!(
        (c.mode(), c.trigger_counts()[6]),
        (Mode::Dense, (Trigger::Risk, 1))
    );
    assert!(c.is_high_risk());
}

#[test]
fn risk_from_metadata() {
    let p = AdaptiveParams {
        risk_args: vec!["new_account".into()],
        ..AdaptiveParams::default()
    };
    let m = |v: &str| {
        [("new_account".to_string(), v.to_string())]
            .into_iter()
            .collect()
    };
    assert!(p.is_high_risk(&m("1")));
    assert!(!p.is_high_risk(&m("0")));
    assert!(!p.is_high_risk(&m("false")));
    assert!(!p.is_high_risk(&Default::default()));
}

#[test]
fn bad_params_are_named() {
    let p = AdaptiveParams {
        base_interval_ms: 8000,
        max_gap_ms: 6000,
        dense_rate: 0.0,
        ..AdaptiveParams::default()
    };
    let keys: Vec<String> = p.problems("sampler").into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec!["sampler.base_interval_ms", "sampler.dense_rate"]);
}
