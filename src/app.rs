//! Wiring: start the stages in data-flow order, stop them in reverse.
//!
//! Per stream: ingest pipeline → (bounded channel) → sampler thread → decode pipeline →
//! (shared bounded channel) → analysis pool → (channel) → policy + alert store thread.

use crate::analysis::{self, bank::BankSet};
use crate::config::Config;
use crate::decode::{Decoder, Frame};
use crate::http::{HttpServer, HttpState};
use crate::ingest::{self, IngestEvent, template::Templates};
use crate::moderation::store::{AlertStore, Recorded};
use crate::policy::{self, Finding};
use crate::sampler::{Decision, FixedSampler};
use crate::telemetry::{StatsSnapshot, StreamStats};
use crossbeam_channel::{Receiver, Sender, bounded, select, unbounded};
use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("GStreamer: {0}")]
    Gst(String),
    #[error("{}", .0.join("\n"))]
    Setup(Vec<String>),
}

/// Control messages to a stream's sampler thread.
enum Control {
    Error(String),
    DecoderDone,
    Stop,
}

struct StreamHandle {
    id: String,
    stats: Arc<StreamStats>,
    control: Sender<Control>,
    finished: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// A running daemon.
pub struct App {
    streams: Vec<StreamHandle>,
    frames_tx: Option<Sender<Frame>>,
    workers: Vec<JoinHandle<()>>,
    moderation: Option<JoinHandle<()>>,
    banks: Arc<BankSet>,
    /// Dropping it stops the bank watcher.
    watcher_stop: Option<Sender<()>>,
    watcher: Option<JoinHandle<()>>,
    http: Option<HttpServer>,
}

/// What [`preflight`] checked and built: the banks (loaded only when asked) and one ingest
/// pipeline per configured stream, in config order. `check-config` drops it; [`App::start`]
/// runs it.
pub struct Checked {
    pub banks: Arc<BankSet>,
    pub pipelines: Vec<gst::Pipeline>,
}

/// Checks everything `start` needs without starting anything: templates render, pipelines
/// build, and, with `load_banks`, banks load. Returns every problem found.
pub fn preflight(cfg: &Config, load_banks: bool) -> Result<Checked, Vec<String>> {
    let mut problems = Vec::new();
    if let Err(e) = gst::init() {
        return Err(vec![format!("GStreamer: {e}")]);
    }
    let mut pipelines = Vec::new();
    match Templates::load(cfg.daemon.pipelines_dir.as_deref()) {
        Ok(templates) => {
            for s in &cfg.streams {
                let built = templates
                    .get(&s.pipeline)
                    .and_then(|t| t.render(&s.params))
                    .map_err(|e| format!("stream '{}': {e}", s.id))
                    .and_then(|d| ingest::build(&s.id, &d).map_err(|e| e.to_string()));
                match built {
                    Ok(p) => pipelines.push(p),
                    Err(e) => problems.push(e),
                }
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    let banks = BankSet::new(&cfg.banks);
    if load_banks && let Err(errs) = banks.load_all() {
        problems.extend(errs.into_iter().map(|e| e.to_string()));
    }
    if problems.is_empty() {
        Ok(Checked { banks, pipelines })
    } else {
        Err(problems)
    }
}

impl App {
    pub fn start(cfg: &Config) -> Result<App, AppError> {
        let checked = preflight(cfg, false).map_err(AppError::Setup)?;
        let banks = checked.banks;
        // The HTTP server comes first so that /readyz answers 503 while banks load.
        let http = match cfg.http.addr() {
            Some(addr) => Some(
                HttpServer::start(
                    addr,
                    HttpState {
                        banks: banks.clone(),
                    },
                )
                .map_err(|e| AppError::Setup(vec![e]))?,
            ),
            None => None,
        };
        let loaded = banks.load_all();
        if let Err(errs) = loaded {
            if let Some(h) = http {
                h.stop();
            }
            return Err(AppError::Setup(
                errs.into_iter().map(|e| e.to_string()).collect(),
            ));
        }
        let (watcher_stop, watcher) = if cfg.analysis.bank_poll_ms > 0 {
            let (tx, rx) = bounded::<()>(1);
            let t = banks.spawn_watcher(Duration::from_millis(cfg.analysis.bank_poll_ms), rx);
            (Some(tx), Some(t))
        } else {
            (None, None)
        };
        let mut store =
            AlertStore::open(&cfg.store.path).map_err(|e| AppError::Setup(vec![e.to_string()]))?;

        // Policy + store thread: the last stage, started first.
        let (findings_tx, findings_rx) = unbounded::<Finding>();
        let moderation = std::thread::Builder::new()
            .name("moderation".into())
            .spawn(move || {
                for f in findings_rx {
                    record(&mut store, &f);
                }
            })
            .map_err(|e| AppError::Gst(e.to_string()))?;

        let (frames_tx, frames_rx) = bounded::<Frame>(cfg.analysis.queue);
        let workers = analysis::start_pool(
            cfg.analysis.workers,
            cfg.analysis.min_quality,
            banks.clone(),
            frames_rx,
            findings_tx,
        );

        let mut streams = Vec::new();
        for (s, pipeline) in cfg.streams.iter().zip(checked.pipelines) {
            streams.push(start_stream(
                &s.id,
                pipeline,
                FixedSampler::new(&s.sampler(&cfg.sampler)),
                cfg.sampler.queue,
                frames_tx.clone(),
            )?);
        }
        Ok(App {
            streams,
            frames_tx: Some(frames_tx),
            workers,
            moderation: Some(moderation),
            banks,
            watcher_stop,
            watcher,
            http,
        })
    }

    /// The banks, at their current versions.
    pub fn banks(&self) -> &Arc<BankSet> {
        &self.banks
    }

    /// Where the HTTP server listens, if it runs.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http.as_ref().map(|h| h.addr)
    }

    /// Per-stream counters.
    pub fn stats(&self) -> Vec<(String, StatsSnapshot)> {
        self.streams
            .iter()
            .map(|s| (s.id.clone(), s.stats.snapshot()))
            .collect()
    }

    /// Waits until every stream has ended (finite sources) or `timeout` passes; true if all ended.
    pub fn wait_streams_finished(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self
                .streams
                .iter()
                .all(|s| s.finished.load(Ordering::Acquire))
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops every stage in reverse order; frames already queued are analysed and recorded.
    pub fn shutdown(mut self) {
        for s in &self.streams {
            let _ = s.control.send(Control::Stop);
        }
        for s in self.streams.drain(..) {
            let _ = s.thread.join();
            tracing::info!(stream = %s.id, stats = ?s.stats.snapshot(), "stream stopped");
        }
        drop(self.frames_tx.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if let Some(m) = self.moderation.take() {
            let _ = m.join();
        }
        drop(self.watcher_stop.take());
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
        if let Some(h) = self.http.take() {
            h.stop();
        }
    }
}

fn record(store: &mut AlertStore, f: &Finding) {
    let alert = policy::verdict(f);
    // An alert is never dropped: retry until the store takes it.
    let mut delay = Duration::from_millis(100);
    loop {
        match store.record_match(&alert) {
            Ok(Recorded::Raised(id)) => {
                tracing::warn!(alert = id, stream = %alert.stream, bank = %alert.bank, item = %alert.item_id,
                    distance = alert.distance, variant = %alert.variant, action = %alert.action,
                    quality = alert.quality, frame_ms = alert.frame_pts_ms, "alert raised");
                return;
            }
            Ok(Recorded::Attached(id)) => {
                tracing::debug!(alert = id, stream = %alert.stream, frame_ms = alert.frame_pts_ms, "match attached to open alert");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, ?alert, "alert not stored yet; retrying");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn start_stream(
    id: &str,
    pipeline: gst::Pipeline,
    sampler: FixedSampler,
    queue: usize,
    frames: Sender<Frame>,
) -> Result<StreamHandle, AppError> {
    let setup = |e: String| AppError::Setup(vec![e]);
    let stream: Arc<str> = Arc::from(id);
    let stats = Arc::new(StreamStats::default());
    let stopping = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let (units_tx, units_rx) = bounded::<IngestEvent>(queue);
    let (control_tx, control_rx) = unbounded::<Control>();

    watch_bus(&pipeline, control_tx.clone(), "ingest", false);
    let live = ingest::attach(id, &pipeline, units_tx, stats.clone(), stopping.clone())
        .map_err(|e| setup(e.to_string()))?;
    let decoder = Decoder::new(
        &stream,
        sampler.mode(),
        frames,
        live,
        stats.clone(),
        stopping.clone(),
    )
    .map_err(|e| setup(e.to_string()))?;
    watch_bus(&decoder.pipeline, control_tx.clone(), "decoder", true);
    decoder
        .pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| setup(format!("stream '{id}': decoder: {e}")))?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| setup(format!("stream '{id}': cannot start ingest pipeline: {e}")))?;
    tracing::info!(stream = id, live, mode = ?sampler.mode(), "stream started");

    let worker = StreamWorker {
        id: stream,
        sampler,
        decoder,
        pipeline,
        stats: stats.clone(),
        stopping,
        finished: finished.clone(),
    };
    let thread = std::thread::Builder::new()
        .name(format!("stream-{id}"))
        .spawn(move || worker.run(units_rx, control_rx))
        .map_err(|e| setup(e.to_string()))?;
    Ok(StreamHandle {
        id: id.to_string(),
        stats,
        control: control_tx,
        finished,
        thread,
    })
}

/// Forwards errors (and, for the decoder, end of stream) from a pipeline's bus.
fn watch_bus(
    pipeline: &gst::Pipeline,
    tx: Sender<Control>,
    what: &'static str,
    eos_means_done: bool,
) {
    let bus = pipeline.bus().expect("pipeline has a bus");
    bus.set_sync_handler(move |_, msg| {
        match msg.view() {
            gst::MessageView::Error(e) => {
                let src = msg
                    .src()
                    .map(|s| s.path_string().to_string())
                    .unwrap_or_default();
                let _ = tx.send(Control::Error(format!(
                    "{what}: {src}: {} ({:?})",
                    e.error(),
                    e.debug()
                )));
            }
            gst::MessageView::Eos(_) if eos_means_done => {
                let _ = tx.send(Control::DecoderDone);
            }
            _ => {}
        }
        gst::BusSyncReply::Drop
    });
}

struct StreamWorker {
    id: Arc<str>,
    sampler: FixedSampler,
    decoder: Decoder,
    pipeline: gst::Pipeline,
    stats: Arc<StreamStats>,
    stopping: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
}

impl StreamWorker {
    fn run(mut self, units: Receiver<IngestEvent>, control: Receiver<Control>) {
        // Once ingest has ended, its channel is replaced by one that never delivers, and the
        // loop waits for the decoder to drain (or for a stop).
        let never = crossbeam_channel::never();
        let mut units = Some(units);
        loop {
            select! {
                recv(units.as_ref().unwrap_or(&never)) -> ev => match ev {
                    Ok(IngestEvent::Unit(au)) => self.on_unit(au),
                    Ok(IngestEvent::End) | Err(_) => {
                        tracing::info!(stream = %self.id, "stream ended");
                        self.decoder.end_of_stream();
                        units = None;
                    }
                },
                recv(control) -> msg => match msg {
                    Ok(Control::Stop) | Err(_) => break,
                    Ok(Control::DecoderDone) if units.is_none() => break,
                    Ok(Control::DecoderDone) => {}
                    Ok(Control::Error(e)) => {
                        tracing::error!(stream = %self.id, error = %e, "stream failed");
                        break;
                    }
                },
            }
        }
        self.stopping.store(true, Ordering::Relaxed);
        drop(units);
        let _ = self.pipeline.set_state(gst::State::Null);
        let _ = self.decoder.pipeline.set_state(gst::State::Null);
        self.finished.store(true, Ordering::Release);
    }

    fn on_unit(&mut self, au: ingest::AccessUnit) {
        let decision = self.sampler.decide(au.pts_ns, au.keyframe);
        tracing::trace!(stream = %self.id, pts_ns = au.pts_ns, keyframe = au.keyframe, size = au.size, ?decision, "access unit");
        if decision == Decision::Skip {
            return;
        }
        let analyse = decision == Decision::Analyse;
        self.stats.units_decoded.fetch_add(1, Ordering::Relaxed);
        if analyse {
            self.stats.frames_selected.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(e) = self.decoder.push(au.buffer, au.pts_ns, analyse) {
            tracing::debug!(stream = %self.id, error = ?e, "decoder refused unit");
        }
    }
}
