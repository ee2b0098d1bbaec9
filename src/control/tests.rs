//! The control plane with a scripted actuator: a halt whose requests fail is audited as
//! `halt_failed`, repeated by reconciliation while the server still lists the stream,
//! audited as sent, and confirmed once the stream is gone; the deny list answers from
//! memory when the store refuses writes.
use super::*;
use crate::config::IngestServer;
use crate::domain::AuditEvent;
use crate::supervisor::StreamContext;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Fails the first `fail` requests (as an unreachable server would), then drops.
struct Scripted {
    fail: usize,
    calls: Arc<AtomicUsize>,
}

impl Actuator for Scripted {
    fn halt(&self, _key: &StreamKey) -> Result<HaltOutcome, ActuatorError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.fail {
            Err(ActuatorError::Request {
                url: "http://127.0.0.1:1/control".into(),
                message: "connection refused".into(),
            })
        } else {
            Ok(HaltOutcome::Dropped)
        }
    }
    fn name(&self) -> &'static str {
        "scripted"
    }
}

fn control(dir: &std::path::Path, fail: usize) -> (Arc<Control>, Arc<AtomicUsize>) {
    gstreamer::init().unwrap();
    let mut cfg = Config::default();
    cfg.ingest.server = IngestServer::NginxRtmp;
    cfg.ingest.apps = vec!["live".into()];
    let (frames, _) = crossbeam_channel::bounded(1);
    let manager = StreamManager::new(StreamContext {
        templates: crate::ingest::template::Templates::load(None).unwrap(),
        queue: 8,
        frames: Mutex::new(Some(frames)),
        supervisor: Default::default(),
        classified: false,
    });
    let store = AlertStore::open(&dir.join("a.db")).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let actuator = Box::new(Scripted {
        fail,
        calls: calls.clone(),
    });
    (Control::new(&cfg, manager, store, actuator).unwrap(), calls)
}

fn events(c: &Control) -> Vec<AuditEvent> {
    c.store()
        .events(Some("live/k"))
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect()
}

#[test]
fn a_failed_halt_is_repeated_by_reconciliation_until_it_goes_through() {
    let dir = tempfile::tempdir().unwrap();
    // The halt's own request and its three retries fail; reconciliation's first try too.
    let (c, calls) = control(dir.path(), 5);
    let key = StreamKey::from_id("live/k");
    let report = c.halt("live/k", "policy:bank:demo", "test", None).unwrap();
    assert!(report.newly_halted);
    assert!(report.actuator.starts_with("failed:"), "{report:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(events(&c), [AuditEvent::Halt, AuditEvent::HaltFailed]);

    // Still listed: asked again, fails, nothing audited yet.
    c.reconcile(std::slice::from_ref(&key), unix_ms());
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    assert_eq!(events(&c), [AuditEvent::Halt, AuditEvent::HaltFailed]);
    // Asked again at the next pass: goes through, audited.
    c.reconcile(std::slice::from_ref(&key), unix_ms());
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    assert_eq!(
        events(&c),
        [
            AuditEvent::Halt,
            AuditEvent::HaltFailed,
            AuditEvent::HaltSent
        ]
    );
    // Gone from the server: confirmed, and not asked again.
    c.reconcile(&[], unix_ms());
    assert_eq!(
        events(&c),
        [
            AuditEvent::Halt,
            AuditEvent::HaltFailed,
            AuditEvent::HaltSent,
            AuditEvent::HaltConfirmed
        ]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    assert!(c.is_halted("live/k"));
}

#[test]
fn the_deny_list_is_loaded_at_start_and_a_refused_publish_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (c, _) = control(dir.path(), 0);
        c.halt("live/k", "token:mo", "test", None).unwrap();
    }
    let (c, _) = control(dir.path(), 0);
    assert!(c.is_halted("live/k"), "the store's deny list, at start");
    let params: BTreeMap<String, String> = [("app", "live"), ("name", "k"), ("addr", "10.0.0.9")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(matches!(
        c.on_publish(&params),
        Err(ControlError::Halted(_))
    ));
    // Queued for the flusher thread (not started here), not written by the callback.
    assert_eq!(c.pending_writes(), 1);
    c.flush_pending();
    assert_eq!(c.pending_writes(), 0);
    assert_eq!(events(&c).last(), Some(&AuditEvent::PublishRefused));
    assert!(c.reinstate("live/k", "token:mo", "ok").unwrap());
    assert!(!c.is_halted("live/k"));
    assert!(!c.reinstate("live/k", "token:mo", "again").unwrap());
}
