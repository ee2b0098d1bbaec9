//! The supervisor on real GStreamer pipelines: restarts with backoff, then `failed` once
//! `max_restarts` is used up within the window, with the reason; a good stream beside it
//! runs on.
use super::*;
use crate::config::SamplerConfig;
use crate::domain::StreamState;
use std::time::{Duration, Instant};

fn manager(max_restarts: u32) -> (Arc<StreamManager>, crossbeam_channel::Receiver<Frame>) {
    gstreamer::init().unwrap();
    let (tx, rx) = crossbeam_channel::bounded(64);
    let ctx = StreamContext {
        templates: Templates::load(None).unwrap(),
        queue: 64,
        frames: Mutex::new(Some(tx)),
        supervisor: SupervisorConfig {
            stall_ms: 5_000,
            backoff_initial_ms: 20,
            backoff_max_ms: 40,
            max_restarts,
            restart_window_s: 600,
        },
        classified: false,
    };
    (StreamManager::new(ctx), rx)
}

fn spec(id: &str, pipeline: &str, params: &[(&str, &str)]) -> StreamSpec {
    StreamSpec {
        id: id.into(),
        pipeline: pipeline.into(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        sampler: SamplerConfig::default(),
        origin: Origin::Static,
        metadata: BTreeMap::new(),
    }
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_stream_that_keeps_failing_is_marked_failed_after_max_restarts_with_its_reason() {
    let (m, _frames) = manager(3);
    let missing = "/nonexistent/streamguard-test.mp4";
    let bad = m.start(spec("bad", "file", &[("location", missing)]));
    let good = m.start(spec("good", "testsrc", &[]));
    wait_for("the bad stream failed", Duration::from_secs(30), || {
        bad.status().state == StreamState::Failed
    });
    let st = bad.status();
    assert_eq!(st.restarts, 3, "{st:?}");
    let reason = st.reason.unwrap();
    assert!(
        reason.starts_with("cannot start:")
            && reason.ends_with("gave up after 3 restarts in 600 s"),
        "{reason}"
    );
    assert!(bad.is_done());
    // Failed stays failed: no further session is started.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(bad.status().restarts, 3);
    // The other stream was never touched.
    wait_for("the good stream receiving", Duration::from_secs(10), || {
        good.stats
            .units_received
            .load(std::sync::atomic::Ordering::Relaxed)
            > 10
    });
    let g = good.status();
    assert_eq!((g.state, g.restarts), (StreamState::Running, 0), "{g:?}");
    m.shutdown();
}

#[test]
fn a_halted_stream_is_not_restarted() {
    let (m, _frames) = manager(20);
    let s = m.start(spec("h", "file", &[("location", "/nonexistent/x.mp4")]));
    s.set_halted(true);
    wait_for(
        "the halted stream left alone",
        Duration::from_secs(10),
        || s.status().state == StreamState::Halted,
    );
    assert_eq!(s.status().restarts, 0, "{:?}", s.status());
    m.shutdown();
}
