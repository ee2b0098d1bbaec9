//! Wiring: start the stages in data-flow order, stop them in reverse.
//!
//! Per stream (one supervisor each): ingest pipeline → (bounded channel) → sampler thread →
//! decode pipeline → the [`FramePath`] (shared bounded channel → analysis pool, classifier
//! stage) → (channel) → the [`Recorder`] (policy + alert store, halts through the control
//! plane → actuator). Beside them: the HTTP server (health, readiness, ingest callbacks, the
//! API and console), delivery to the sinks, the bank watcher, the budget, the reconciler and
//! retention. docs/ARCHITECTURE.md draws the whole flow.

use crate::analysis::bank::BankSet;
use crate::config::{Config, IngestServer, SamplerConfig, StreamConfig};
use crate::control::Control;
use crate::decode::Frame;
use crate::domain::SinkEvent;
use crate::frame_path::{FramePath, FramePathSettings};
use crate::http::events::Events;
use crate::http::{HttpServer, HttpState};
use crate::ingest::{self, template::Templates};
use crate::moderation::actuator;
use crate::moderation::recorder::Recorder;
use crate::moderation::store::AlertStore;
use crate::supervisor::{Origin, StreamContext, StreamManager, StreamSpec};
use crate::telemetry::StatsSnapshot;
use crossbeam_channel::{Receiver, Sender, bounded};
use gstreamer as gst;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{}", .0.join("\n"))]
    Setup(Vec<String>),
    #[error("cannot start a thread: {0}")]
    Thread(String),
}

/// One start-up problem.
fn setup(e: impl std::fmt::Display) -> AppError {
    AppError::Setup(vec![e.to_string()])
}

/// A running daemon. Dropping it (or [`App::shutdown`]) stops every stage that was started,
/// in reverse order; [`App::start`] relies on that to clean up after a failed start.
pub struct App {
    manager: Arc<StreamManager>,
    control: Arc<Control>,
    banks: Arc<BankSet>,
    /// The frame path's inlet that the stream manager's sender is cloned from.
    frames_tx: Option<Sender<Frame>>,
    frame_path: Option<FramePath>,
    recorder: Option<Recorder>,
    delivery: Option<crate::delivery::Delivery>,
    /// Background threads that run until stopped (dropping them stops them too).
    watcher: Stoppable,
    reconciler: Stoppable,
    /// `store-retry`: writes the control plane's held deny-list rows and audit entries.
    flusher: Stoppable,
    budget: Stoppable,
    pruner: Stoppable,
    http: Option<HttpServer>,
    /// `http.callback_listen`: nginx's callbacks alone.
    callbacks: Option<HttpServer>,
}

/// What [`preflight`] checked and built: the banks (loaded only when asked) and one ingest
/// pipeline per configured stream, in config order (built to check them; `check-config`
/// drops them and [`App::start`] builds its own).
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
    if cfg.ingest.server != IngestServer::None
        && let Ok(templates) = Templates::load(cfg.daemon.pipelines_dir.as_deref())
    {
        // A discovered stream's pipeline, with a sample app and name filled in.
        let params = cfg
            .ingest
            .params
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.replace("{app}", "app").replace("{name}", "name"),
                )
            })
            .collect();
        let built = templates
            .get(&cfg.ingest.pipeline)
            .and_then(|t| t.render(&params))
            .map_err(|e| format!("ingest.pipeline: {e}"))
            .and_then(|d| {
                ingest::build("app/name", &d).map_err(|e| format!("ingest.pipeline: {e}"))
            });
        if let Err(e) = built {
            problems.push(e);
        }
    }
    let banks = BankSet::new(&cfg.banks);
    if load_banks && let Err(errs) = banks.load_all() {
        problems.extend(errs.into_iter().map(|e| e.to_string()));
    }
    // The runtime once, then every model loads, fits its manifest and runs once (a broken
    // model stops start-up).
    problems.extend(crate::classify::stage::check(&cfg.classify));
    if problems.is_empty() {
        Ok(Checked { banks, pipelines })
    } else {
        Err(problems)
    }
}

impl App {
    /// Starts the stages in data-flow order, the last stage first so that nothing sends to a
    /// stage that is not there yet. On an error, whatever was started is stopped again.
    pub fn start(cfg: &Config) -> Result<App, AppError> {
        let banks = preflight(cfg, false).map_err(AppError::Setup)?.banks;
        let templates = Templates::load(cfg.daemon.pipelines_dir.as_deref()).map_err(setup)?;
        let store = open_store(cfg)?.with_cooldown(cfg.policy.dismiss_cooldown_s * 1000);
        // The control plane's connection queues moderators' actions and halts for the sinks.
        let control_store = open_store(cfg)?;
        let (frames_tx, frames_rx) = bounded::<Frame>(cfg.analysis.queue);
        let manager = StreamManager::new(StreamContext {
            templates,
            queue: cfg.sampler.queue,
            frames: std::sync::Mutex::new(Some(frames_tx.clone())),
            supervisor: cfg.supervisor.clone(),
            classified: !cfg.classify.models.is_empty(),
        });
        let actuator = actuator::from_config(&cfg.actuator);
        let control = Control::new(cfg, manager.clone(), control_store, actuator).map_err(setup)?;
        let events = Events::new();
        // From here on, dropping `app` (an early return) stops what was started.
        let mut app = App::new(manager, control, banks, frames_tx);
        // The HTTP server comes before the banks so that /readyz answers 503 while they load.
        (app.http, app.callbacks) = start_http(cfg, &app, events.clone())?;
        app.banks
            .load_all()
            .map_err(|errs| AppError::Setup(errs.into_iter().map(|e| e.to_string()).collect()))?;
        if cfg.analysis.bank_poll_ms > 0 {
            let poll = Duration::from_millis(cfg.analysis.bank_poll_ms);
            app.watcher = Stoppable::start(|rx| Some(app.banks.spawn_watcher(poll, rx)));
        }
        // Delivery: alerts left in the outbox by an earlier run go out now, new ones as the
        // recorder records them.
        warn_unrouted(cfg, &app.control);
        let delivery = crate::delivery::Delivery::start(&cfg.sinks, &cfg.store.path)
            .map_err(|e| setup(e.to_string()))?;
        let waker = delivery.waker();
        app.delivery = Some(delivery);
        app.control.store().set_on_queued({
            let w = waker.clone();
            move || w.wake()
        });
        let mut store = store;
        store.set_on_queued(move || waker.wake());
        // The recorder (policy + store + halts): the last stage, started before those feeding it.
        let (recorder, findings) = Recorder::start(store, app.control.clone(), events)
            .map_err(|e| AppError::Thread(e.to_string()))?;
        app.recorder = Some(recorder);
        let settings = FramePathSettings::live(cfg);
        let path = FramePath::start(&settings, app.banks.clone(), frames_rx, findings)
            .map_err(|e| setup(e.to_string()))?;
        app.frame_path = Some(path);
        for s in &cfg.streams {
            app.manager.start(static_spec(s, &cfg.sampler));
        }
        if cfg.analysis.capacity_fps > 0.0 {
            let (manager, capacity) = (app.manager.clone(), cfg.analysis.capacity_fps);
            app.budget = Stoppable::start(|rx| Some(spawn_budget(manager, capacity, rx)));
        }
        app.reconciler = Stoppable::start(|rx| app.control.spawn_reconciler(rx));
        app.flusher = Stoppable::start(|rx| Some(app.control.spawn_flusher(rx)));
        // Retention: its own connection; a failed pass is logged and tried again later.
        app.pruner = Stoppable::start(|rx| {
            crate::moderation::store::spawn_pruner(
                cfg.store.path.clone(),
                cfg.store.retention(),
                Duration::from_secs(cfg.store.prune_interval_s),
                rx,
            )
            .map_err(|e| tracing::error!(error = %e, "retention thread not started"))
            .ok()
        });
        if cfg.ingest.server != IngestServer::None {
            tracing::info!(server = ?cfg.ingest.server, apps = ?cfg.ingest.apps, stat_url = %cfg.ingest.stat_url,
                actuator = ?cfg.actuator.kind, "discovering streams at the ingest server");
        }
        Ok(app)
    }

    /// An app with nothing started but its stream manager and control plane.
    fn new(
        manager: Arc<StreamManager>,
        control: Arc<Control>,
        banks: Arc<BankSet>,
        frames_tx: Sender<Frame>,
    ) -> App {
        App {
            manager,
            control,
            banks,
            frames_tx: Some(frames_tx),
            frame_path: None,
            recorder: None,
            delivery: None,
            watcher: Stoppable::default(),
            reconciler: Stoppable::default(),
            flusher: Stoppable::default(),
            budget: Stoppable::default(),
            pruner: Stoppable::default(),
            http: None,
            callbacks: None,
        }
    }

    /// The banks, at their current versions.
    pub fn banks(&self) -> &Arc<BankSet> {
        &self.banks
    }

    /// The control plane (halts, reinstatements, callbacks).
    pub fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// Where the HTTP server listens, if it runs.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http.as_ref().map(|h| h.addr)
    }

    /// Where the callbacks-only server (`http.callback_listen`) listens, if configured.
    pub fn callback_addr(&self) -> Option<std::net::SocketAddr> {
        self.callbacks.as_ref().map(|h| h.addr)
    }

    /// Per-stream counters.
    pub fn stats(&self) -> Vec<(String, StatsSnapshot)> {
        self.manager
            .list()
            .iter()
            .map(|s| (s.spec.id.clone(), s.stats.snapshot()))
            .collect()
    }

    /// Waits until every watched stream is done (ended, failed, stopped or halted) or
    /// `timeout` passes; true if all are done.
    pub fn wait_streams_finished(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.manager.list().iter().all(|s| s.is_done()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops every stage in reverse order; frames already queued are analysed and recorded.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.budget.stop();
        self.reconciler.stop();
        self.pruner.stop();
        for h in [self.http.take(), self.callbacks.take()]
            .into_iter()
            .flatten()
        {
            h.stop();
        }
        // Stops every supervisor and drops the manager's frame sender, so that the analysis
        // workers see the channel close once the queue is empty.
        self.manager.shutdown();
        drop(self.frames_tx.take());
        if let Some(p) = self.frame_path.take() {
            p.finish();
        }
        // The frame path held the last finding senders: the recorder records what is queued.
        if let Some(r) = self.recorder.take() {
            r.join();
        }
        // Halts and audit entries the store never took: a last try, then logged in full.
        self.flusher.stop();
        self.control.log_unwritten();
        // What is not delivered yet stays in the outbox for the next start.
        if let Some(d) = self.delivery.take() {
            d.stop();
        }
        self.watcher.stop();
    }
}

/// A background thread that runs until the sending end of its stop channel is dropped.
#[derive(Default)]
struct Stoppable {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Stoppable {
    /// Makes a stop channel and hands its receiving end to `spawn` (`None` from it: no
    /// thread started).
    fn start(spawn: impl FnOnce(Receiver<()>) -> Option<JoinHandle<()>>) -> Stoppable {
        let (tx, rx) = bounded::<()>(1);
        Stoppable {
            stop: Some(tx),
            thread: spawn(rx),
        }
    }

    /// Ends it and waits for the thread.
    fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Shares `capacity` analysed frames per second among the adaptive streams every 250 ms
/// (`sampler::budget::allocate`), through each stream's counters: streams publish what they
/// ask for, the budget writes what they get.
fn spawn_budget(
    manager: Arc<StreamManager>,
    capacity: f64,
    stop: crossbeam_channel::Receiver<()>,
) -> JoinHandle<()> {
    use crate::sampler::budget::{Demand, allocate};
    use std::sync::atomic::Ordering::Relaxed;
    std::thread::Builder::new()
        .name("budget".into())
        .spawn(move || {
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                stop.recv_timeout(Duration::from_millis(250))
            {
                let streams: Vec<_> = manager
                    .list()
                    .into_iter()
                    .filter(|i| !i.is_done() && i.stats.want_mfps.load(Relaxed) > 0)
                    .collect();
                let demands: Vec<Demand> = streams
                    .iter()
                    .map(|i| Demand {
                        want: i.stats.want_mfps.load(Relaxed) as f64 / 1000.0,
                        floor: i.stats.floor_mfps.load(Relaxed) as f64 / 1000.0,
                        dense: i.stats.dense.load(Relaxed),
                        risk: i.stats.risk.load(Relaxed).min(255) as u8,
                    })
                    .collect();
                for (info, rate) in streams.iter().zip(allocate(capacity, &demands)) {
                    // 0 means "no budget": a stream granted nothing still gets 1 mfps.
                    info.stats
                        .granted_mfps
                        .store(((rate * 1000.0) as u64).max(1), Relaxed);
                }
            }
        })
        .expect("spawn budget thread")
}

/// The alert store at `store.path`, with the sinks' routes.
fn open_store(cfg: &Config) -> Result<AlertStore, AppError> {
    let routes = cfg
        .sinks
        .iter()
        .map(|s| crate::moderation::store::SinkRoute {
            name: s.name.clone(),
            // Validated at load: every name is a sink event.
            events: s
                .events
                .iter()
                .filter_map(|e| SinkEvent::parse(e))
                .collect(),
        })
        .collect();
    Ok(AlertStore::open(&cfg.store.path)
        .map_err(setup)?
        .with_sinks(routes))
}

/// The HTTP servers: everything on `http.listen`, and nginx's callbacks alone on
/// `http.callback_listen`; each if configured, with the same state and limits.
fn start_http(
    cfg: &Config,
    app: &App,
    events: Arc<Events>,
) -> Result<(Option<HttpServer>, Option<HttpServer>), AppError> {
    let state = HttpState {
        banks: app.banks.clone(),
        control: Some(app.control.clone()),
        auth: Arc::new(crate::http::auth::Auth::from_config(&cfg.http).map_err(setup)?),
        events,
    };
    let limits = crate::http::Limits::from_config(&cfg.http);
    let http = cfg
        .http
        .addr()
        .map(|addr| HttpServer::start_with(addr, state.clone(), limits.clone()))
        .transpose()
        .map_err(setup)?;
    let callbacks = cfg
        .http
        .callback_addr()
        .map(|addr| HttpServer::start_callbacks(addr, state, limits))
        .transpose()
        .map_err(setup)?;
    Ok((http, callbacks))
}

/// Messages of a sink no longer configured cannot go anywhere: say so at every start, they
/// are not dropped.
fn warn_unrouted(cfg: &Config, control: &Control) {
    let names: Vec<String> = cfg.sinks.iter().map(|s| s.name.clone()).collect();
    match control.store().outbox_unrouted(&names) {
        Ok(left) => {
            for (sink, messages) in left {
                tracing::warn!(
                    sink = %sink,
                    messages,
                    "outbox: messages queued for a sink that is no longer configured stay unsent; \
                     configure [[sinks]] '{sink}' again to deliver them, or discard them (POST /api/v1/outbox/{{id}}/discard, admin)"
                );
            }
        }
        Err(e) => tracing::error!(error = %e, "outbox not read"),
    }
}

/// A `[[streams]]` entry as the stream manager starts it.
fn static_spec(s: &StreamConfig, sampler: &SamplerConfig) -> StreamSpec {
    StreamSpec {
        id: s.id.clone(),
        pipeline: s.pipeline.clone(),
        params: s.params.clone(),
        sampler: s.sampler(sampler),
        origin: Origin::Static,
        metadata: Default::default(),
    }
}
