//! Wiring: start the stages in data-flow order, stop them in reverse.
//!
//! Per stream (one supervisor each): ingest pipeline → (bounded channel) → sampler thread →
//! decode pipeline → (shared bounded channel) → analysis pool → (channel) → policy + alert
//! store thread → (halt verdicts) control plane → actuator. Beside them: the HTTP server
//! (health, readiness, ingest callbacks, stream API), the bank watcher and the reconciler.

use crate::analysis::{self, bank::BankSet};
use crate::config::{Config, IngestServer};
use crate::control::Control;
use crate::decode::Frame;
use crate::http::{HttpServer, HttpState};
use crate::ingest::{self, template::Templates};
use crate::moderation::actuator;
use crate::moderation::store::{AlertStore, MatchAlert, Recorded};
use crate::policy::{self, Finding};
use crate::supervisor::{Origin, StreamContext, StreamManager, StreamSpec};
use crate::telemetry::StatsSnapshot;
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use gstreamer as gst;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("GStreamer: {0}")]
    Gst(String),
    #[error("{}", .0.join("\n"))]
    Setup(Vec<String>),
}

/// A running daemon.
pub struct App {
    manager: Arc<StreamManager>,
    control: Arc<Control>,
    frames_tx: Option<Sender<Frame>>,
    workers: Vec<JoinHandle<()>>,
    classify: Option<crate::classify::stage::Stage>,
    delivery: Option<crate::delivery::Delivery>,
    moderation: Option<JoinHandle<()>>,
    banks: Arc<BankSet>,
    /// Background threads that run until stopped (dropping them stops them too).
    watcher: Stoppable,
    reconciler: Stoppable,
    budget: Stoppable,
    pruner: Stoppable,
    http: Option<HttpServer>,
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
    pub fn start(cfg: &Config) -> Result<App, AppError> {
        let setup = |e: String| AppError::Setup(vec![e]);
        let checked = preflight(cfg, false).map_err(AppError::Setup)?;
        drop(checked.pipelines);
        let banks = checked.banks;
        let templates = Templates::load(cfg.daemon.pipelines_dir.as_deref())
            .map_err(|e| setup(e.to_string()))?;
        let store = AlertStore::open(&cfg.store.path)
            .map_err(|e| setup(e.to_string()))?
            .with_sinks(sink_routes(cfg))
            .with_cooldown(cfg.policy.dismiss_cooldown_s * 1000);
        // The control plane's connection queues moderators' actions and halts for the sinks.
        let control_store = AlertStore::open(&cfg.store.path)
            .map_err(|e| setup(e.to_string()))?
            .with_sinks(sink_routes(cfg));

        let (frames_tx, frames_rx) = bounded::<Frame>(cfg.analysis.queue);
        let manager = StreamManager::new(StreamContext {
            templates,
            queue: cfg.sampler.queue,
            frames: std::sync::Mutex::new(Some(frames_tx.clone())),
            supervisor: cfg.supervisor.clone(),
            classified: !cfg.classify.models.is_empty(),
        });
        let control = Control::new(
            cfg,
            manager.clone(),
            control_store,
            actuator::from_config(&cfg.actuator),
        );

        let events = crate::http::events::Events::new();
        // The HTTP server comes before the banks so that /readyz answers 503 while they load.
        let http = match cfg.http.addr() {
            Some(addr) => Some(
                HttpServer::start(
                    addr,
                    HttpState {
                        banks: banks.clone(),
                        control: Some(control.clone()),
                        auth: Arc::new(
                            crate::http::auth::Auth::from_config(&cfg.http).map_err(setup)?,
                        ),
                        events: events.clone(),
                    },
                )
                .map_err(setup)?,
            ),
            None => None,
        };
        if let Err(errs) = banks.load_all() {
            if let Some(h) = http {
                h.stop();
            }
            // Callbacks may have started streams while the banks loaded.
            manager.shutdown();
            return Err(AppError::Setup(
                errs.into_iter().map(|e| e.to_string()).collect(),
            ));
        }
        let watcher = if cfg.analysis.bank_poll_ms > 0 {
            Stoppable::start(|rx| {
                Some(banks.spawn_watcher(Duration::from_millis(cfg.analysis.bank_poll_ms), rx))
            })
        } else {
            Stoppable::default()
        };

        // Delivery: alerts left in the outbox by an earlier run go out now, new ones as
        // the moderation thread records them. Messages of a sink no longer configured
        // cannot go anywhere: say so at every start, they are not dropped.
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
        let delivery = match crate::delivery::Delivery::start(&cfg.sinks, &cfg.store.path) {
            Ok(d) => d,
            Err(e) => {
                if let Some(h) = http {
                    h.stop();
                }
                manager.shutdown();
                return Err(setup(e.to_string()));
            }
        };
        let waker = delivery.waker();
        control.store().set_on_queued({
            let w = waker.clone();
            move || w.wake()
        });
        // Policy + store thread: the last stage, started before the ones feeding it.
        let (findings_tx, findings_rx) = unbounded::<Finding>();
        let mut store = store;
        store.set_on_queued(move || waker.wake());
        let halter = control.clone();
        let moderation = std::thread::Builder::new()
            .name("moderation".into())
            .spawn(move || {
                for f in findings_rx {
                    let (alert, recorded) = record(&mut store, &f);
                    let (id, raised) = match recorded {
                        Recorded::Raised(id) => (id, true),
                        Recorded::Attached(id) => (id, false),
                        // Dismissed within the cooldown: counted there, nothing else.
                        Recorded::Suppressed(_) => continue,
                    };
                    if raised && let Some(t) = f.decoded_at() {
                        crate::telemetry::metrics::DETECT_LATENCY.observe(t.elapsed());
                    }
                    // Evidence: the first frame's thumbnail (classifier alerts only).
                    if let policy::Finding::Score(s) = &f
                        && let Some(thumb) = &s.thumb
                        && let Err(e) = store.put_evidence(id, thumb)
                    {
                        tracing::error!(alert = id, error = %e, "evidence not stored");
                    }
                    events.send(
                        "alert",
                        serde_json::json!({
                            "id": id, "raised": raised, "stream": alert.stream,
                            "reason": alert.reason, "bank": alert.bank, "item_id": alert.item_id,
                            "action": alert.action, "score": alert.score,
                            "frame_pts_ms": alert.frame_pts_ms,
                        }),
                    );
                    if alert.action == "halt" && halt_for(&halter, &alert, id) {
                        events.send(
                            "stream",
                            serde_json::json!({ "stream": alert.stream, "halted": true, "alert_id": id }),
                        );
                    }
                }
            })
            .map_err(|e| AppError::Gst(e.to_string()))?;
        // Classifiers (if any) between analysis and moderation: their findings go to the
        // same policy + store thread.
        let (classify, submitter) = if cfg.classify.models.is_empty() {
            (None, None)
        } else {
            let evidence = cfg.store.evidence.then_some(cfg.store.evidence_width);
            match crate::classify::stage::Stage::start(
                &cfg.classify,
                findings_tx.clone(),
                false,
                evidence,
            ) {
                Ok((stage, submitter)) => (Some(stage), Some(submitter)),
                Err(e) => {
                    if let Some(h) = http {
                        h.stop();
                    }
                    manager.shutdown();
                    delivery.stop();
                    return Err(setup(e.to_string()));
                }
            }
        };
        let workers = analysis::start_pool(
            cfg.analysis.workers,
            cfg.analysis.min_quality,
            banks.clone(),
            frames_rx,
            findings_tx,
            submitter,
        );

        for s in &cfg.streams {
            manager.start(StreamSpec {
                id: s.id.clone(),
                pipeline: s.pipeline.clone(),
                params: s.params.clone(),
                sampler: s.sampler(&cfg.sampler),
                origin: Origin::Static,
                metadata: Default::default(),
            });
        }
        let budget = if cfg.analysis.capacity_fps > 0.0 {
            Stoppable::start(|rx| {
                Some(spawn_budget(manager.clone(), cfg.analysis.capacity_fps, rx))
            })
        } else {
            Stoppable::default()
        };
        let reconciler = Stoppable::start(|rx| control.spawn_reconciler(rx));
        // Retention: its own connection; a failed pass is logged and tried again later.
        let pruner = Stoppable::start(|rx| {
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
        Ok(App {
            manager,
            control,
            frames_tx: Some(frames_tx),
            workers,
            classify,
            delivery: Some(delivery),
            moderation: Some(moderation),
            banks,
            watcher,
            reconciler,
            budget,
            pruner,
            http,
        })
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
    pub fn shutdown(mut self) {
        self.budget.stop();
        self.reconciler.stop();
        self.pruner.stop();
        if let Some(h) = self.http.take() {
            h.stop();
        }
        // Stops every supervisor and drops the manager's frame sender, so that the analysis
        // workers see the channel close once the queue is empty.
        self.manager.shutdown();
        drop(self.frames_tx.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        // The analysis workers held the classifiers' inlets: the pool drains and ends.
        if let Some(c) = self.classify.take() {
            c.join();
        }
        if let Some(m) = self.moderation.take() {
            let _ = m.join();
        }
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

/// Halts the stream an alert is about (the control plane retries a failed actuator call).
/// Carries out a halt verdict; true if it halted the stream now (false: already halted, or
/// the halt failed).
/// Which sink gets which events (`[[sinks]]` name and `events`).
fn sink_routes(cfg: &Config) -> Vec<crate::moderation::store::SinkRoute> {
    cfg.sinks
        .iter()
        .map(|s| crate::moderation::store::SinkRoute {
            name: s.name.clone(),
            events: s.events.clone(),
        })
        .collect()
}

fn halt_for(control: &Control, alert: &MatchAlert, alert_id: i64) -> bool {
    let (reason, actor) = if alert.reason == "classifier" {
        (
            format!(
                "classifier '{}' label '{}' at score {:.3}",
                alert.bank,
                alert.item_id,
                alert.score.unwrap_or_default()
            ),
            format!("policy:classifier:{}", alert.bank),
        )
    } else {
        (
            format!(
                "bank '{}' item '{}' at distance {} ({})",
                alert.bank, alert.item_id, alert.distance, alert.variant
            ),
            format!("policy:bank:{}", alert.bank),
        )
    };
    if control.is_halted(&alert.stream) {
        return false;
    }
    match control.halt(&alert.stream, &actor, &reason, Some(alert_id)) {
        Ok(report) => {
            tracing::warn!(stream = %alert.stream, alert = alert_id, actuator = %report.actuator, "halt verdict carried out");
            true
        }
        Err(e) => {
            tracing::error!(stream = %alert.stream, error = %e, "halt verdict not carried out");
            false
        }
    }
}

/// Records a finding's alert (retrying until the store takes it) and returns it with what
/// the store did.
fn record(store: &mut AlertStore, f: &Finding) -> (MatchAlert, Recorded) {
    let mut alert = policy::verdict(f);
    alert.detect_ms = f.decoded_at().map(|t| t.elapsed().as_millis() as u64);
    // An alert is never dropped: retry until the store takes it.
    let mut delay = Duration::from_millis(100);
    loop {
        match store.record_match(&alert) {
            Ok(Recorded::Raised(id)) => {
                // What identifies the finding: the bank item and how close it matched, or
                // the model's label and its score.
                if let Some(score) = alert.score {
                    tracing::warn!(alert = id, stream = %alert.stream, reason = %alert.reason, model = %alert.bank,
                        label = %alert.item_id, score = %format!("{score:.3}"), action = %alert.action,
                        frame_ms = alert.frame_pts_ms, "alert raised");
                } else {
                    tracing::warn!(alert = id, stream = %alert.stream, reason = %alert.reason, bank = %alert.bank,
                        item = %alert.item_id, distance = alert.distance, variant = %alert.variant,
                        action = %alert.action, quality = alert.quality, frame_ms = alert.frame_pts_ms, "alert raised");
                }
                return (alert, Recorded::Raised(id));
            }
            Ok(Recorded::Attached(id)) => {
                tracing::debug!(alert = id, stream = %alert.stream, frame_ms = alert.frame_pts_ms, "match attached to open alert");
                return (alert, Recorded::Attached(id));
            }
            Ok(Recorded::Suppressed(id)) => {
                tracing::info!(alert = id, stream = %alert.stream, bank = %alert.bank, item = %alert.item_id,
                    frame_ms = alert.frame_pts_ms, "finding suppressed: its alert was dismissed within policy.dismiss_cooldown_s");
                return (alert, Recorded::Suppressed(id));
            }
            Err(e) => {
                tracing::error!(error = %e, ?alert, "alert not stored yet; retrying");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
