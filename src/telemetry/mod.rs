//! Telemetry: log setup, per-stream counters, process-wide histograms ([`metrics`]) and the
//! `/metrics` text ([`prometheus`]).

pub mod metrics;
mod process;
pub mod prometheus;

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one stream, updated lock-free from GStreamer and worker threads.
#[derive(Debug, Default)]
pub struct StreamStats {
    /// The running session treats the stream as live: an overrun drops units and frames
    /// (counted below) instead of waiting. Network sources and live sources are live;
    /// files and synthetic sources that are not real time are not.
    pub live: std::sync::atomic::AtomicBool,
    /// Access units the parser produced.
    pub units_received: AtomicU64,
    /// Access units dropped because the sampler's queue was full (live streams only).
    pub units_dropped: AtomicU64,
    /// Access units sent to the decoder.
    pub units_decoded: AtomicU64,
    /// Frames chosen for analysis.
    pub frames_selected: AtomicU64,
    /// Decoded frames dropped because the analysis queue was full (live streams only).
    pub frames_dropped: AtomicU64,
    /// Frames hashed.
    pub frames_analysed: AtomicU64,
    /// Frames whose hash quality was below `analysis.min_quality` (not matched).
    pub frames_low_quality: AtomicU64,
    /// Bank matches found.
    pub matches: AtomicU64,
    /// Frames whose matches were suppressed because an `allow` bank matched them too.
    pub allowed: AtomicU64,
    /// When a frame of this stream was last analysed (ms since the Unix epoch; 0: never).
    pub last_analysis_ms: AtomicU64,
    /// Adaptive sampling: whether the stream is dense now, its current interval between
    /// analysed frames, how often each trigger fired (in `Trigger::ALL` order) and the gaps
    /// longer than `max_gap`.
    pub dense: std::sync::atomic::AtomicBool,
    pub interval_ms: AtomicU64,
    pub triggers: [AtomicU64; 7],
    pub missed_gaps: AtomicU64,
    /// Adaptive sampling and the global budget, in milli-frames per second: the rate the
    /// stream asks for, the least it must get, and what the budget granted (0: no budget).
    pub want_mfps: AtomicU64,
    pub floor_mfps: AtomicU64,
    pub granted_mfps: AtomicU64,
    /// 1 when the stream is high-risk (served first among dense streams).
    pub risk: AtomicU64,
    /// Stream time of the last access unit seen, in milliseconds.
    pub position_ms: AtomicU64,
    /// Replay (lockstep): analysed frames whose result did not come back in time.
    pub feedback_timeouts: AtomicU64,
    /// Frames scored by the classifiers, frames not classified because the classifier
    /// queue was full (live streams only), and classifier findings (labels over a
    /// threshold).
    pub frames_classified: AtomicU64,
    pub classify_dropped: AtomicU64,
    pub classifier_findings: AtomicU64,
}

/// A plain copy of [`StreamStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub units_received: u64,
    pub units_dropped: u64,
    pub units_decoded: u64,
    pub frames_selected: u64,
    pub frames_dropped: u64,
    pub frames_analysed: u64,
    pub frames_low_quality: u64,
    pub matches: u64,
    pub allowed: u64,
    pub frames_classified: u64,
    pub classify_dropped: u64,
    pub classifier_findings: u64,
}

/// One of [`StreamStats`]'s counters, e.g. `|s| &s.units_received`.
pub type Counter = fn(&StreamStats) -> &AtomicU64;

/// The per-stream counters summed over the process's life: every [`StreamStats::count`]
/// counts here too, so `/metrics` counters never go down when a stream ends (Prometheus
/// counter semantics). Only the counters are kept; the other fields stay 0.
pub static TOTALS: std::sync::LazyLock<StreamStats> =
    std::sync::LazyLock::new(StreamStats::default);

impl StreamStats {
    /// Adds `n` to one of this stream's counters and to the process's [`TOTALS`].
    pub fn count(&self, counter: Counter, n: u64) {
        counter(self).fetch_add(n, Ordering::Relaxed);
        counter(&TOTALS).fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            units_received: l(&self.units_received),
            units_dropped: l(&self.units_dropped),
            units_decoded: l(&self.units_decoded),
            frames_selected: l(&self.frames_selected),
            frames_dropped: l(&self.frames_dropped),
            frames_analysed: l(&self.frames_analysed),
            frames_low_quality: l(&self.frames_low_quality),
            matches: l(&self.matches),
            allowed: l(&self.allowed),
            frames_classified: l(&self.frames_classified),
            classify_dropped: l(&self.classify_dropped),
            classifier_findings: l(&self.classifier_findings),
        }
    }
}

/// Logs to stderr with `filter` unless `RUST_LOG` is set, as text (colours only on a
/// terminal) or one JSON object a line. Safe to call more than once.
pub fn init_logging(filter: &str, format: crate::config::LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        crate::config::LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        crate::config::LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

/// Hands freed heap memory back to the system. glibc keeps what a stream's pipelines and
/// queues freed in its arenas (515 MB stayed after 20 streams ended, in one probe), so RSS
/// would not follow the streams watched now; called when a stream's supervisor ends.
pub fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of the allocator to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Raises this process's soft limit of open files to its hard limit (the soft default is
/// often 1024: a few hundred streams' sockets, pipelines and HTTP connections need more).
/// What it got is logged; failing to raise it is not an error.
pub fn raise_fd_limit() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read only the struct given.
    let raised = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l) == 0
        }
    };
    tracing::debug!(raised, open_files = l.rlim_cur, "open file limit");
}

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The process's peak resident set size (`VmHWM` in `/proc/self/status`), where available.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}
