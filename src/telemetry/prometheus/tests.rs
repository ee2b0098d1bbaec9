use super::*;

/// Two streams (one in a state not listed by default) and a store with a sink that has
/// delivered nothing yet and one that has nothing pending.
#[test]
fn streams_and_store_text() {
    let a = StreamStats::default();
    a.units_received.store(7, Ordering::Relaxed);
    a.matches.store(3, Ordering::Relaxed);
    a.dense.store(true, Ordering::Relaxed);
    let b = StreamStats::default();
    b.units_received.store(5, Ordering::Relaxed);
    b.classifier_findings.store(2, Ordering::Relaxed);
    b.frames_dropped.store(9, Ordering::Relaxed);
    let k = StoreCounts {
        alerts: vec![("hash_match".into(), "alert".into(), "open".into(), 4)],
        outbox: vec![("hook".into(), 2, 5), ("nats".into(), 1, 1)],
        dead: vec![("nats".into(), 1)],
        deliveries: vec![("hook".into(), 10, 3), ("old".into(), 1, 0)],
        halted_streams: 1,
        halts: 6,
    };
    let streams = vec![
        ("running".to_string(), &a),
        ("weird".to_string(), &b),
        ("running".to_string(), &b),
    ];
    // The process's totals, not the streams', make the counters (streams that ended count
    // there too).
    let totals = StreamStats::default();
    for (counter, n) in [
        ((|s| &s.units_received) as crate::telemetry::Counter, 17),
        (|s| &s.matches, 3),
        (|s| &s.classifier_findings, 4),
        (|s| &s.frames_dropped, 18),
    ] {
        counter(&totals).store(n, Ordering::Relaxed);
    }
    let out = render(&Inputs {
        streams: streams.clone(),
        totals: &totals,
        analysis_queue: 3,
        store: Some(&k),
        store_health: None,
    });
    assert!(out.starts_with(STREAMS), "{out}");
    assert!(out.ends_with(STORE), "{out}");
    // The histograms sit between (their counts are process-wide).
    assert!(
        out.contains("\nstreamguard_detect_latency_seconds_count "),
        "{out}"
    );
    // Store counts unavailable: their families are left out.
    let out = render(&Inputs {
        streams,
        totals: &totals,
        analysis_queue: 3,
        store: None,
        store_health: None,
    });
    assert!(out.starts_with(STREAMS), "{out}");
    assert!(!out.contains("streamguard_alerts"), "{out}");
    assert!(out.contains("\nstreamguard_build_info{version=\""), "{out}");
    assert!(out.contains("\nprocess_resident_memory_bytes "), "{out}");
}

const STREAMS: &str = r#"# HELP streamguard_streams Watched streams by state (halted: watched and halted; see streamguard_halted_streams for the deny list).
# TYPE streamguard_streams gauge
streamguard_streams{state="ended"} 0
streamguard_streams{state="failed"} 0
streamguard_streams{state="halted"} 0
streamguard_streams{state="restarting"} 0
streamguard_streams{state="running"} 2
streamguard_streams{state="starting"} 0
streamguard_streams{state="stopped"} 0
streamguard_streams{state="weird"} 1
# HELP streamguard_streams_dense Adaptive streams sampling densely now.
# TYPE streamguard_streams_dense gauge
streamguard_streams_dense 1
# HELP streamguard_units_received_total Access units received from ingest.
# TYPE streamguard_units_received_total counter
streamguard_units_received_total 17
# HELP streamguard_units_decoded_total Access units sent to a decoder.
# TYPE streamguard_units_decoded_total counter
streamguard_units_decoded_total 0
# HELP streamguard_frames_analysed_total Frames hashed and matched.
# TYPE streamguard_frames_analysed_total counter
streamguard_frames_analysed_total 0
# HELP streamguard_frames_classified_total Frames scored by the classifiers.
# TYPE streamguard_frames_classified_total counter
streamguard_frames_classified_total 0
# HELP streamguard_units_dropped_total Access units dropped: sampler queue full.
# TYPE streamguard_units_dropped_total counter
streamguard_units_dropped_total 0
# HELP streamguard_frames_dropped_total Decoded frames dropped: analysis queue full.
# TYPE streamguard_frames_dropped_total counter
streamguard_frames_dropped_total 18
# HELP streamguard_classify_dropped_total Frames not classified: classifier queue full.
# TYPE streamguard_classify_dropped_total counter
streamguard_classify_dropped_total 0
# HELP streamguard_matches_total Bank matches.
# TYPE streamguard_matches_total counter
streamguard_matches_total 3
# HELP streamguard_classifier_findings_total Classifier labels over a threshold.
# TYPE streamguard_classifier_findings_total counter
streamguard_classifier_findings_total 4
# HELP streamguard_analysis_queue Decoded frames waiting for an analysis thread.
# TYPE streamguard_analysis_queue gauge
streamguard_analysis_queue 3
"#;

const STORE: &str = r#"# HELP streamguard_alerts Alerts in the store by reason, action and state.
# TYPE streamguard_alerts gauge
streamguard_alerts{reason="hash_match",action="alert",state="open"} 4
# HELP streamguard_outbox_pending Messages (alert and moderation events) waiting for their sink.
# TYPE streamguard_outbox_pending gauge
streamguard_outbox_pending{sink="hook"} 2
streamguard_outbox_pending{sink="nats"} 1
# HELP streamguard_outbox_dead Messages set aside because their sink can never take them (never sent; listed in /api/v1/outbox until discarded).
# TYPE streamguard_outbox_dead gauge
streamguard_outbox_dead{sink="nats"} 1
# HELP streamguard_deliveries_total Messages a sink acknowledged.
# TYPE streamguard_deliveries_total counter
streamguard_deliveries_total{sink="hook"} 10
streamguard_deliveries_total{sink="old"} 1
# HELP streamguard_delivery_failures_total Failed delivery attempts (delivered and pending messages).
# TYPE streamguard_delivery_failures_total counter
streamguard_delivery_failures_total{sink="hook"} 8
streamguard_delivery_failures_total{sink="old"} 0
streamguard_delivery_failures_total{sink="nats"} 1
# HELP streamguard_halted_streams Stream keys on the deny list, watched now or not.
# TYPE streamguard_halted_streams gauge
streamguard_halted_streams 1
# HELP streamguard_halts_total Halts recorded (policy and API).
# TYPE streamguard_halts_total counter
streamguard_halts_total 6
"#;
