//! Replay: recorded files through the daemon's own ingest, sampler, decoder, analysis and
//! policy code, as fast as the machine allows, with every clock driven by stream time.
//!
//! Each file runs as one stream (the `file` pipeline template, not live, so ingest runs
//! ahead only as far as the bounded queues let it). Adaptive policies run in *lockstep*: the
//! sampler waits for each analysed frame's result before reading on, so the controller sees
//! the result at the stream time it would see it live. (A decoder holds frames of streams
//! with B-frames until later ones arrive; lockstep then waits up to 2 s per analysed frame
//! and counts `feedback_timeouts`: such recordings replay slowly and their adaptive results
//! are not faithful.) The global budget (`analysis.capacity_fps`) is not applied. Findings go through [`crate::policy::verdict`];
//! nothing is written to the alert store and no stream is halted.
//!
//! Ground truth comes from a [`labels::Labels`] file; [`score`] turns findings into detected
//! and missed items with their time to detect.

pub mod labels;
pub mod report;

use crate::analysis::bank::BankSet;
use crate::config::{Config, SamplerConfig, SamplingMode};
use crate::domain::Action;
use crate::frame_path::{FramePath, FramePathSettings};
use crate::ingest::{self, template::Templates};
use crate::policy;
use crate::sampler::adaptive::Trigger;
use crate::supervisor::session::{self, Exit, SessionOptions};
use crate::telemetry::StreamStats;
use crossbeam_channel::{bounded, unbounded};
use gstreamer as gst;
use gstreamer::prelude::*;
use labels::Interval;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("GStreamer: {0}")]
    Gst(String),
    #[error("{}", .0.join("\n"))]
    Banks(Vec<String>),
    #[error("{0}")]
    Template(String),
    #[error("{}", .0.join("\n"))]
    Classify(Vec<String>),
    #[error("--compare '{spec}': {message}")]
    Policy { spec: String, message: String },
    #[error("{file}: {message}")]
    File { file: String, message: String },
}

/// A sampling policy to replay with: the config's `[sampler]`, or a variant of it.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `config` for the configuration's own sampler, else the `--compare` spec.
    pub name: String,
    pub sampler: SamplerConfig,
}

impl Policy {
    /// The configuration's own `[sampler]`.
    pub fn from_config(cfg: &Config) -> Policy {
        Policy {
            name: format!("config ({})", mode_name(cfg.sampler.mode)),
            sampler: cfg.sampler.clone(),
        }
    }

    /// A `--compare` spec: `adaptive` (the config's `[sampler.adaptive]` settings),
    /// `all:MS` (decode every frame, analyse one per MS milliseconds: what fixed-interval
    /// tools do) or `keyframes:MS` (decode keyframes only, analyse one per MS).
    pub fn parse(spec: &str, base: &SamplerConfig) -> Result<Policy, ReplayError> {
        let bad = |message: &str| ReplayError::Policy {
            spec: spec.to_string(),
            message: message.to_string(),
        };
        let (mode, interval) = match spec.split_once(':') {
            None if spec == "adaptive" => (SamplingMode::Adaptive, base.interval_ms),
            Some((m, ms)) => {
                let mode = match m {
                    "all" => SamplingMode::All,
                    "keyframes" => SamplingMode::Keyframes,
                    _ => return Err(bad("expected adaptive, all:MS or keyframes:MS")),
                };
                let ms: u64 = ms
                    .parse()
                    .map_err(|_| bad("the interval must be a whole number of milliseconds"))?;
                if ms == 0 {
                    return Err(bad("the interval must be at least 1 ms"));
                }
                (mode, ms)
            }
            None => return Err(bad("expected adaptive, all:MS or keyframes:MS")),
        };
        Ok(Policy {
            name: spec.to_string(),
            sampler: SamplerConfig {
                mode,
                interval_ms: interval,
                ..base.clone()
            },
        })
    }
}

pub fn mode_name(m: SamplingMode) -> &'static str {
    match m {
        SamplingMode::Keyframes => "keyframes",
        SamplingMode::All => "all",
        SamplingMode::Adaptive => "adaptive",
    }
}

/// An analysed frame the policy turned into an alert (or attached to one).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Detection {
    pub pts_s: f64,
    pub bank: String,
    pub item: String,
    pub action: Action,
}

/// What one replay of one file cost and found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FileRun {
    /// Stream time of the last access unit.
    pub duration_s: f64,
    pub units: u64,
    /// Access units sent to the decoder.
    pub frames_decoded: u64,
    /// Frames hashed and matched.
    pub frames_analysed: u64,
    /// CPU time of the whole process (every thread) during this replay.
    pub cpu_s: f64,
    pub wall_s: f64,
    /// Adaptive sampling: how often each trigger fired, and gaps longer than `max_gap`.
    pub triggers: BTreeMap<String, u64>,
    pub missed_gaps: u64,
    /// Analysed frames whose result did not come back within 2 s (should be 0).
    pub feedback_timeouts: u64,
    pub detections: Vec<Detection>,
}

/// Progress of the file being replayed, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub position_s: f64,
    pub duration_s: Option<f64>,
}

/// Replays files with the banks, analysis settings and pipeline templates of one config.
pub struct Replayer {
    banks: Arc<BankSet>,
    templates: Templates,
    path: PathConfig,
}

/// The frame path as replay runs it, and the size of its frames channel.
struct PathConfig {
    settings: FramePathSettings,
    queue: usize,
}

impl Replayer {
    /// Initialises GStreamer and loads the banks and templates (every bank error at once).
    pub fn new(cfg: &Config) -> Result<Replayer, ReplayError> {
        gst::init().map_err(|e| ReplayError::Gst(e.to_string()))?;
        let banks = BankSet::load(&cfg.banks).map_err(|errs| {
            ReplayError::Banks(errs.into_iter().map(|e| e.to_string()).collect())
        })?;
        let templates = Templates::load(cfg.daemon.pipelines_dir.as_deref())
            .map_err(|e| ReplayError::Template(e.to_string()))?;
        templates
            .get("file")
            .map_err(|e| ReplayError::Template(e.to_string()))?;
        let problems = crate::classify::stage::check(&cfg.classify);
        if !problems.is_empty() {
            return Err(ReplayError::Classify(problems));
        }
        Ok(Replayer {
            banks,
            templates,
            path: PathConfig {
                settings: FramePathSettings::replay(cfg),
                queue: cfg.analysis.queue,
            },
        })
    }

    /// Replays one file with one policy; `progress` is called about ten times a second.
    pub fn run_file(
        &self,
        file: &Path,
        policy: &Policy,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<FileRun, ReplayError> {
        let shown = file.display().to_string();
        let fail = |message: String| ReplayError::File {
            file: shown.clone(),
            message,
        };
        let (id, pipeline) = self.pipeline_for(file).map_err(fail)?;
        let stats = Arc::new(StreamStats::default());
        let (frames_tx, frames_rx) = bounded(self.path.queue);
        let (findings_tx, findings_rx) = unbounded();
        let (cpu0, t0) = (cpu_seconds(), Instant::now());
        // The daemon's frame path; with classifiers, every analysed frame is scored
        // (blocking: none is dropped), and lockstep waits for the scores too.
        let path = FramePath::start(
            &self.path.settings,
            self.banks.clone(),
            frames_rx,
            findings_tx,
        )
        .map_err(|e| fail(e.to_string()))?;
        let classified = path.classified();
        let started = session::start(
            &id,
            pipeline.clone(),
            policy.sampler.clone(),
            frames_tx,
            stats.clone(),
            SessionOptions {
                queue: policy.sampler.queue,
                high_risk: false,
                lockstep: true,
                classified,
            },
        );
        let exit = match started {
            Ok(session) => follow(session, &stats, &pipeline, progress),
            Err(e) => Exit::Failed(e.to_string()),
        };
        // The session's decoder held the last frame sender: the path drains and ends.
        path.finish();
        let detections = findings_rx
            .try_iter()
            .map(|f| {
                let alert = policy::verdict(&f);
                Detection {
                    pts_s: f.frame_pts_ns() as f64 / 1e9,
                    bank: alert.subject.source().to_string(),
                    item: alert.subject.item().to_string(),
                    action: alert.action,
                }
            })
            .collect();
        if let Exit::Failed(e) = exit {
            return Err(fail(e));
        }
        Ok(FileRun {
            cpu_s: cpu_seconds() - cpu0,
            wall_s: t0.elapsed().as_secs_f64(),
            detections,
            ..FileRun::counted(&stats)
        })
    }

    /// The `file` template's ingest pipeline for `file`, and the stream id (the file name).
    fn pipeline_for(&self, file: &Path) -> Result<(String, gst::Pipeline), String> {
        if !file.is_file() {
            return Err("no such file".into());
        }
        let demux = demuxer_for(file).ok_or_else(|| UNKNOWN_CONTAINER.to_string())?;
        let params: BTreeMap<String, String> = [
            ("location", file.display().to_string()),
            ("demux", demux.to_string()),
            ("realtime", "false".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let description = self
            .templates
            .get("file")
            .and_then(|t| t.render(&params))
            .map_err(|e| e.to_string())?;
        let id = file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let pipeline = ingest::build(&id, &description).map_err(|e| e.to_string())?;
        Ok((id, pipeline))
    }
}

/// Reports progress about ten times a second until the session ends; how it ended.
fn follow(
    session: session::Session,
    stats: &StreamStats,
    pipeline: &gst::Pipeline,
    progress: &mut dyn FnMut(Progress),
) -> Exit {
    while !session.is_finished() {
        progress(Progress {
            position_s: stats.position_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            duration_s: pipeline
                .query_duration::<gst::ClockTime>()
                .map(|d| d.nseconds() as f64 / 1e9),
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    session.finish()
}

impl FileRun {
    /// The stream's counters; cost and detections left empty.
    fn counted(stats: &StreamStats) -> FileRun {
        let l = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        FileRun {
            duration_s: l(&stats.position_ms) as f64 / 1000.0,
            units: l(&stats.units_received),
            frames_decoded: l(&stats.units_decoded),
            frames_analysed: l(&stats.frames_analysed),
            triggers: Trigger::ALL
                .iter()
                .enumerate()
                .map(|(i, t)| (t.name().to_string(), l(&stats.triggers[i])))
                .collect(),
            missed_gaps: l(&stats.missed_gaps),
            feedback_timeouts: l(&stats.feedback_timeouts),
            ..FileRun::default()
        }
    }
}

const UNKNOWN_CONTAINER: &str = "unknown container (expected .mp4, .mov, .mkv, .webm, .flv or .ts)";

/// Why replay's inputs were refused before anything ran.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Labels(#[from] labels::LabelsError),
    #[error("{file}: {UNKNOWN_CONTAINER}")]
    UnknownContainer { file: String },
}

/// Checks replay's inputs before anything runs, and returns each file's labelled intervals:
/// the labels file reads, every file is listed in it, exists and has a known container.
pub fn ground_truth(labels: &Path, files: &[PathBuf]) -> Result<Vec<Vec<Interval>>, InputError> {
    let labels = labels::Labels::load(labels)?;
    files
        .iter()
        .map(|f| {
            let intervals = labels.intervals(f)?;
            if demuxer_for(f).is_none() {
                return Err(InputError::UnknownContainer {
                    file: f.display().to_string(),
                });
            }
            Ok(intervals.to_vec())
        })
        .collect()
}

/// The demuxer for a file's container, from its extension.
fn demuxer_for(file: &Path) -> Option<&'static str> {
    let ext = file.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "mp4" | "m4v" | "mov" => "qtdemux",
        "mkv" | "webm" => "matroskademux",
        "flv" => "flvdemux",
        "ts" | "m2ts" => "tsdemux",
        _ => return None,
    })
}

/// CPU time (user + system) of this process so far, every thread included, in seconds.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// One labelled item: detected (the first frame inside its interval that raised an alert)
/// or missed.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Item {
    pub start_s: f64,
    pub end_s: f64,
    pub detected_s: Option<f64>,
}

impl Item {
    /// Time to detect, from the start of the interval.
    pub fn ttd_s(&self) -> Option<f64> {
        self.detected_s.map(|d| (d - self.start_s).max(0.0))
    }
}

/// Frame times carry rounding: a frame this close to an interval's edge is on that side.
const EDGE_S: f64 = 0.001;

/// Matches detections against labelled intervals, `[start, end)` (a frame starting at
/// `end_s` no longer shows the item, so abutting intervals never share a frame): each
/// interval is detected by the first alerting frame inside it; alerting frames outside
/// every interval are false matches.
pub fn score(intervals: &[Interval], detections: &[Detection]) -> (Vec<Item>, u64) {
    let inside =
        |d: &Detection, i: &Interval| d.pts_s >= i.start_s - EDGE_S && d.pts_s < i.end_s - EDGE_S;
    let items = intervals
        .iter()
        .map(|i| Item {
            start_s: i.start_s,
            end_s: i.end_s,
            detected_s: detections
                .iter()
                .filter(|d| inside(d, i))
                .map(|d| d.pts_s)
                .min_by(f64::total_cmp),
        })
        .collect();
    let false_matches = detections
        .iter()
        .filter(|d| !intervals.iter().any(|i| inside(d, i)))
        .count() as u64;
    (items, false_matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(pts_s: f64) -> Detection {
        Detection {
            pts_s,
            bank: "b".into(),
            item: "i".into(),
            action: Action::Halt,
        }
    }

    #[test]
    fn first_frame_inside_an_interval_detects_it() {
        let iv = [
            Interval {
                start_s: 10.0,
                end_s: 12.0,
            },
            Interval {
                start_s: 30.0,
                end_s: 31.0,
            },
        ];
        let (items, fp) = score(
            &iv,
            &[det(11.5), det(10.4), det(20.0), det(29.9995), det(31.0)],
        );
        assert_eq!(items[0].detected_s, Some(10.4));
        assert!((items[0].ttd_s().unwrap() - 0.4).abs() < 1e-9);
        // Rounded a hair before the start still counts; a frame at the end does not.
        assert_eq!(items[1].detected_s, Some(29.9995));
        assert_eq!(fp, 2);
        // Abutting intervals: the frame at 2.0 belongs to the second only.
        let ab = [
            Interval {
                start_s: 1.0,
                end_s: 2.0,
            },
            Interval {
                start_s: 2.0,
                end_s: 3.0,
            },
        ];
        let (items, _) = score(&ab, &[det(2.0)]);
        assert_eq!(
            (items[0].detected_s, items[1].detected_s),
            (None, Some(2.0))
        );
        let (items, fp) = score(&iv, &[]);
        assert!(items.iter().all(|i| i.detected_s.is_none()));
        assert_eq!(fp, 0);
    }

    #[test]
    fn compare_specs() {
        let base = SamplerConfig::default();
        let p = Policy::parse("all:2000", &base).unwrap();
        assert_eq!(
            (p.sampler.mode, p.sampler.interval_ms),
            (SamplingMode::All, 2000)
        );
        let p = Policy::parse("keyframes:500", &base).unwrap();
        assert_eq!(p.sampler.mode, SamplingMode::Keyframes);
        assert_eq!(
            Policy::parse("adaptive", &base).unwrap().sampler.mode,
            SamplingMode::Adaptive
        );
        for bad in ["all", "all:0", "all:x", "every:100", ""] {
            let e = Policy::parse(bad, &base).unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
    }
}
