//! Unit tests of retention, with a fake clock.
use super::super::tests::{m, raised};
use super::super::*;
use super::*;
use crate::domain::{AuditEvent, SinkEvent};

#[test]
fn retention_deletes_closed_alerts_and_old_logs_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.db");
    let raised = |r: Recorded| match r {
        Recorded::Raised(id) => id,
        other => panic!("{other:?}"),
    };
    let thumb = Thumbnail {
        width: 2,
        height: 1,
        grey: vec![0, 255],
    };
    let mut s = AlertStore::open(&path).unwrap();
    let open = raised(s.record_match(&m("a", "x", 10)).unwrap());
    let dismissed = raised(s.record_match(&m("b", "x", 10)).unwrap());
    let confirmed = raised(s.record_match(&m("c", "x", 10)).unwrap());
    s.put_evidence(dismissed, &thumb).unwrap();
    s.put_evidence(confirmed, &thumb).unwrap();
    s.act_on_alert(dismissed, AlertAction::Dismiss, "token:mo", "benign")
        .unwrap();
    let t = s
        .act_on_alert(confirmed, AlertAction::Confirm, "token:mo", "reported")
        .unwrap()
        .updated_at_ms;
    // A dismissed alert whose message a sink has not acknowledged yet.
    let mut q = AlertStore::open(&path)
        .unwrap()
        .with_sinks(vec![SinkRoute::all("hook")]);
    let pending = raised(q.record_match(&m("d", "x", 10)).unwrap());
    q.act_on_alert(pending, AlertAction::Dismiss, "token:mo", "benign")
        .unwrap();
    // The newest alert (never deleted, whatever its age: its id must not come back).
    let newest = raised(s.record_match(&m("z", "x", 10)).unwrap());
    // A log entry of no alert, and a stream halted now (its log stays while it is).
    s.record_event("e", AuditEvent::Halt, "token:mo", "by hand", "", None)
        .unwrap();
    assert!(s.halt("h", "token:mo", "by hand", None).unwrap());

    let r = Retention {
        dismissed_days: 90,
        confirmed_days: 365,
        log_days: 30,
    };
    let day = 86_400_000;
    let ids = |s: &AlertStore| -> Vec<i64> { s.alerts().unwrap().iter().map(|a| a.id).collect() };
    let all = ids(&s);
    // A fake clock: at +29 days nothing is old enough, at +89 still nothing is deleted
    // but the log entry of no alert.
    assert_eq!(s.prune_at(&r, t + 29 * day).unwrap(), Pruned::default());
    assert_eq!(
        s.prune_at(&r, t + 89 * day).unwrap(),
        Pruned {
            audit: 1,
            ..Pruned::default()
        }
    );
    assert_eq!(ids(&s), all);
    // +91 days: the dismissed alert goes with its evidence and its audit entry; the one
    // still in the outbox stays, as do the open and the confirmed ones.
    assert_eq!(
        s.prune_at(&r, t + 91 * day).unwrap(),
        Pruned {
            alerts: 1,
            evidence: 1,
            audit: 1,
            deliveries: 0
        }
    );
    assert!(s.alert(dismissed).unwrap().is_none());
    assert!(s.evidence(dismissed).unwrap().is_none());
    assert!(s.alert(pending).unwrap().is_some());
    assert!(s.evidence(confirmed).unwrap().is_some());
    // Kept alerts keep their history.
    let log = s.events(None).unwrap();
    assert!(log.iter().any(|e| e.alert_id == Some(confirmed)));
    assert!(!log.iter().any(|e| e.alert_id == Some(dismissed)));
    // Once both its messages (raised, dismissed) are delivered, the pending alert goes at
    // the next pass, with its delivery records.
    for row in q.outbox().unwrap() {
        q.outbox_delivered(&row).unwrap();
    }
    let p = s.prune_at(&r, t + 92 * day).unwrap();
    assert_eq!((p.alerts, p.deliveries), (1, 2));
    // A year and a day: the confirmed alert and its evidence go; the open one never does.
    let p = s.prune_at(&r, t + 366 * day).unwrap();
    assert_eq!((p.alerts, p.evidence), (1, 1));
    let p = s.prune_at(&r, t + 3650 * day).unwrap();
    assert_eq!(p.alerts, 0);
    assert_eq!(ids(&s), vec![open, newest]);
    assert!(s.events(Some("e")).unwrap().is_empty());
    assert_eq!(
        s.events(Some("h")).unwrap().len(),
        1,
        "the halt of a stream still halted is kept"
    );
    // 0 keeps for ever.
    let keep = Retention {
        dismissed_days: 0,
        confirmed_days: 0,
        log_days: 0,
    };
    s.act_on_alert(open, AlertAction::Dismiss, "token:mo", "benign")
        .unwrap();
    assert_eq!(
        s.prune_at(&keep, t + 36500 * day).unwrap(),
        Pruned::default()
    );
}

#[test]
fn retention_deletes_in_batches_until_done() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = AlertStore::open(&dir.path().join("alerts.db")).unwrap();
    let mut t = 0;
    for i in 0..5 {
        let Recorded::Raised(id) = s.record_match(&m("a", &format!("x{i}"), 10)).unwrap() else {
            panic!()
        };
        t = s
            .act_on_alert(id, AlertAction::Dismiss, "token:mo", "benign")
            .unwrap()
            .updated_at_ms;
    }
    let r = Retention {
        dismissed_days: 1,
        confirmed_days: 0,
        log_days: 1,
    };
    let later = t + 2 * 86_400_000;
    // Two rows per transaction: four of the five alerts (the newest stays, so that its id
    // is never given out again) in batches of 2, 2 and an empty one, then the audit
    // entries of the deleted ones in windows of two ids (1-2, 3-4, 5), each timed.
    let mut times = Vec::new();
    let p = s.prune_with(&r, later, 2, &mut |d| times.push(d)).unwrap();
    assert_eq!((p.alerts, p.audit), (4, 4));
    assert_eq!(times.len(), 3 + 3);
    let left = s.alerts().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(s.events(None).unwrap().len(), 1, "the kept alert's history");
    assert_eq!(s.prune_at(&r, later).unwrap(), Pruned::default());
    // The next alert gets a new id.
    let Recorded::Raised(next) = s.record_match(&m("a", "y", 10)).unwrap() else {
        panic!()
    };
    assert!(next > left[0].id, "{next} after {}", left[0].id);
}

#[test]
fn retention_is_not_held_back_by_a_halt_waiting_for_its_sink() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = AlertStore::open(&dir.path().join("a.db"))
        .unwrap()
        .with_sinks(vec![SinkRoute {
            name: "js".into(),
            events: vec![SinkEvent::StreamHalted, SinkEvent::StreamReinstated],
        }]);
    let mut t = 0;
    for item in ["x", "y"] {
        let Recorded::Raised(id) = s.record_match(&m("live/a", item, 10)).unwrap() else {
            panic!()
        };
        t = s
            .act_on_alert(id, AlertAction::Dismiss, "token:mo", "benign")
            .unwrap()
            .updated_at_ms;
    }
    // Queued with no alert id: an undelivered message of no alert must not hide the
    // closed alerts from retention (SQL's `NOT IN` and NULL).
    assert!(s.halt("live/b", "token:ad", "by hand", None).unwrap());
    assert!(s.reinstate("live/b", "token:ad", "done").unwrap());
    assert_eq!(s.outbox().unwrap().len(), 2);
    let r = Retention {
        dismissed_days: 1,
        confirmed_days: 0,
        log_days: 1,
    };
    let p = s.prune_at(&r, t + 2 * 86_400_000).unwrap();
    assert_eq!(p.alerts, 1, "the older alert goes, the newest stays");
    // Of the log, the newest row (the reinstatement) stays: a halt's message id is made of
    // its audit row id, which SQLite would hand out again.
    let log = s.events(None).unwrap();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[1].event, "reinstate");
    assert!(log.iter().all(|e| e.event != "halt"), "{log:?}");
    assert!(s.halt("live/b", "token:ad", "again", None).unwrap());
    let ids: Vec<String> = s.outbox().unwrap().into_iter().map(|r| r.msg_id).collect();
    assert_eq!(ids.len(), 3, "a new message, not a clash: {ids:?}");
}

#[test]
fn the_retention_thread_prunes_at_start_and_every_interval_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let mut s = AlertStore::open(&path).unwrap();
    // A dismissed alert made 3 days old, and an open one after it (kept).
    let dismissed_and_aged = |s: &mut AlertStore, item: &str| -> i64 {
        let Recorded::Raised(id) = s.record_match(&m("a", item, 10)).unwrap() else {
            panic!()
        };
        s.act_on_alert(id, AlertAction::Dismiss, "token:mo", "benign")
            .unwrap();
        s.conn
            .execute(
                "UPDATE alerts SET updated_at_ms = updated_at_ms - 3 * 86400000 WHERE id = ?1",
                params![id],
            )
            .unwrap();
        id
    };
    let first = dismissed_and_aged(&mut s, "x");
    let newest = raised(s.record_match(&m("a", "y", 10)).unwrap());
    let r = Retention {
        dismissed_days: 1,
        confirmed_days: 0,
        log_days: 0,
    };
    let (stop, rx) = crossbeam_channel::bounded::<()>(1);
    let t = spawn_pruner(path.clone(), r, std::time::Duration::from_millis(50), rx).unwrap();
    let gone = |s: &AlertStore, id: i64| {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while s.alert(id).unwrap().is_some() {
            assert!(std::time::Instant::now() < until, "alert {id} not pruned");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    gone(&s, first);
    // A later pass takes what aged since.
    let second = dismissed_and_aged(&mut s, "z");
    let _ = raised(s.record_match(&m("a", "w", 10)).unwrap());
    gone(&s, second);
    assert!(s.alert(newest).unwrap().is_some(), "open alerts stay");
    drop(stop);
    t.join().unwrap();
}
