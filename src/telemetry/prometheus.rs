//! The text of `/metrics` in the Prometheus text format: stream states and counters summed
//! over the watched streams, queues, the latency histograms, and the store's counts.

use super::StreamStats;
use super::metrics::{
    ANALYSIS_LATENCY, CLASSIFY_LATENCY, CLASSIFY_QUEUE, DETECT_LATENCY, labelled, single,
};
use crate::domain::StreamState;
use crate::moderation::store::StoreCounts;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// What `/metrics` shows.
pub struct Inputs<'a> {
    /// Each watched stream's state (`running`, `failed`, ...) and counters.
    pub streams: Vec<(String, &'a StreamStats)>,
    /// The counters over the process's life ([`super::TOTALS`]): what the `*_total`
    /// families show, so that they never go down when a stream ends.
    pub totals: &'a StreamStats,
    /// Decoded frames waiting for an analysis thread.
    pub analysis_queue: usize,
    /// The store's counts; `None` when they could not be read (their families are left out).
    pub store: Option<&'a StoreCounts>,
    /// Whether the store takes writes, and what waits for it (`None`: no control plane).
    pub store_health: Option<crate::moderation::store::HealthSnapshot>,
}

/// One of a stream's counters.
type Counter = super::Counter;

/// Summed stream counters: the key of `streamguard_<key>_total`, its help, and the counter.
const COUNTERS: [(&str, &str, Counter); 9] = [
    (
        "units_received",
        "Access units received from ingest.",
        |s| &s.units_received,
    ),
    ("units_decoded", "Access units sent to a decoder.", |s| {
        &s.units_decoded
    }),
    ("frames_analysed", "Frames hashed and matched.", |s| {
        &s.frames_analysed
    }),
    (
        "frames_classified",
        "Frames scored by the classifiers.",
        |s| &s.frames_classified,
    ),
    (
        "units_dropped",
        "Access units dropped: sampler queue full.",
        |s| &s.units_dropped,
    ),
    (
        "frames_dropped",
        "Decoded frames dropped: analysis queue full.",
        |s| &s.frames_dropped,
    ),
    (
        "classify_dropped",
        "Frames not classified: classifier queue full.",
        |s| &s.classify_dropped,
    ),
    ("matches", "Bank matches.", |s| &s.matches),
    (
        "classifier_findings",
        "Classifier labels over a threshold.",
        |s| &s.classifier_findings,
    ),
];

/// The whole `/metrics` text.
pub fn render(inputs: &Inputs) -> String {
    let mut out = String::new();
    streams(&mut out, &inputs.streams, inputs.totals);
    single(
        &mut out,
        "streamguard_analysis_queue",
        "gauge",
        "Decoded frames waiting for an analysis thread.",
        inputs.analysis_queue,
    );
    single(
        &mut out,
        "streamguard_classify_queue",
        "gauge",
        "Frames waiting for a classifier worker.",
        CLASSIFY_QUEUE.load(Ordering::Relaxed),
    );
    ANALYSIS_LATENCY.render(
        "streamguard_analysis_latency_seconds",
        "From decoder output to the frame matched against every bank.",
        &mut out,
    );
    CLASSIFY_LATENCY.render(
        "streamguard_classify_latency_seconds",
        "From decoder output to every model's scores.",
        &mut out,
    );
    DETECT_LATENCY.render(
        "streamguard_detect_latency_seconds",
        "From decoder output of the frame that raised an alert to the alert committed.",
        &mut out,
    );
    single(
        &mut out,
        "streamguard_http_connections_refused_total",
        "counter",
        "HTTP connections closed at once: over http.max_connections or http.max_connections_per_client.",
        crate::http::CONNECTIONS_REFUSED.load(Ordering::Relaxed),
    );
    single(
        &mut out,
        "streamguard_http_requests_timed_out_total",
        "counter",
        "HTTP requests whose headers or body did not arrive in time (http.header_timeout_ms, http.body_timeout_ms).",
        crate::http::REQUESTS_TIMED_OUT.load(Ordering::Relaxed),
    );
    super::process::render(&mut out);
    if let Some(h) = &inputs.store_health {
        single(
            &mut out,
            "streamguard_store_up",
            "gauge",
            "1 while the alert store takes writes and nothing waits to be written; 0 while halts act from memory.",
            u8::from(h.ok),
        );
        single(
            &mut out,
            "streamguard_store_write_errors_total",
            "counter",
            "Writes of alerts, halts and audit entries the store refused (retried until taken).",
            h.errors_total,
        );
        single(
            &mut out,
            "streamguard_store_pending_writes",
            "gauge",
            "Alerts, halts and audit entries waiting for the store to take writes again.",
            h.pending_alerts + h.pending_writes,
        );
    }
    if let Some(k) = inputs.store {
        store(&mut out, k);
    }
    out
}

/// Streams by state, dense streams, and the counters over the process's life.
fn streams(out: &mut String, streams: &[(String, &StreamStats)], totals: &StreamStats) {
    // Every state is listed, 0 when no stream is in it.
    let mut states: BTreeMap<String, u64> = StreamState::ALL
        .iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    let mut dense = 0u64;
    for (state, st) in streams {
        *states.entry(state.clone()).or_default() += 1;
        dense += st.dense.load(Ordering::Relaxed) as u64;
    }
    labelled(
        out,
        "streamguard_streams",
        "gauge",
        "Watched streams by state (halted: watched and halted; see streamguard_halted_streams for the deny list).",
        "state",
        states,
    );
    single(
        out,
        "streamguard_streams_dense",
        "gauge",
        "Adaptive streams sampling densely now.",
        dense,
    );
    for (key, help, counter) in COUNTERS {
        single(
            out,
            &format!("streamguard_{key}_total"),
            "counter",
            help,
            counter(totals).load(Ordering::Relaxed),
        );
    }
}

/// Alerts by reason, action and state, the outbox and deliveries by sink, and halts.
fn store(out: &mut String, k: &StoreCounts) {
    let _ = out.write_str("# HELP streamguard_alerts Alerts in the store by reason, action and state.\n# TYPE streamguard_alerts gauge\n");
    for (reason, action, state, n) in &k.alerts {
        let _ = writeln!(
            out,
            "streamguard_alerts{{reason=\"{reason}\",action=\"{action}\",state=\"{state}\"}} {n}"
        );
    }
    labelled(
        out,
        "streamguard_outbox_pending",
        "gauge",
        "Messages (alert and moderation events) waiting for their sink.",
        "sink",
        k.outbox.iter().map(|(s, n, _)| (s.clone(), *n)),
    );
    labelled(
        out,
        "streamguard_outbox_dead",
        "gauge",
        "Messages set aside because their sink can never take them (never sent; listed in /api/v1/outbox until discarded).",
        "sink",
        k.dead.iter().cloned(),
    );
    labelled(
        out,
        "streamguard_deliveries_total",
        "counter",
        "Messages a sink acknowledged.",
        "sink",
        k.deliveries.iter().map(|(s, n, _)| (s.clone(), *n)),
    );
    // Failed attempts of delivered messages and of those still pending, per sink; a sink
    // that has delivered nothing yet still shows its pending messages' failures.
    let pending = |sink: &str| {
        k.outbox
            .iter()
            .find(|(o, _, _)| o == sink)
            .map_or(0, |(_, _, a)| *a)
    };
    let delivered = k
        .deliveries
        .iter()
        .map(|(s, _, f)| (s.clone(), f + pending(s)));
    let undelivered = k
        .outbox
        .iter()
        .filter(|(o, _, _)| !k.deliveries.iter().any(|(d, _, _)| d == o))
        .map(|(s, _, a)| (s.clone(), *a));
    labelled(
        out,
        "streamguard_delivery_failures_total",
        "counter",
        "Failed delivery attempts (delivered and pending messages).",
        "sink",
        delivered.chain(undelivered),
    );
    single(
        out,
        "streamguard_halted_streams",
        "gauge",
        "Stream keys on the deny list, watched now or not.",
        k.halted_streams,
    );
    single(
        out,
        "streamguard_halts_total",
        "counter",
        "Halts recorded (policy and API).",
        k.halts,
    );
}

#[cfg(test)]
mod tests;
