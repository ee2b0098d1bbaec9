//! Unit tests of the alert store (moved out of store.rs, which they made ~1,250 lines).
use super::*;
use crate::domain::{Action, AlertState, Reason, SinkEvent, Subject};

pub(super) fn m(stream: &str, item: &str, pts: u64) -> NewAlert {
    NewAlert {
        stream: stream.into(),
        subject: Subject::Hash(crate::domain::HashSubject {
            bank: "demo".into(),
            item_id: item.into(),
            label: None,
            distance: 4,
            quality: 90,
            hash: "00".repeat(32),
            variant: "flipx".into(),
        }),
        frame_pts_ms: pts,
        action: Action::Review,
        detect_ms: None,
    }
}

#[test]
fn one_open_alert_per_stream_and_item_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/alerts.db");
    let mut s = AlertStore::open(&path).unwrap();
    assert!(matches!(
        s.record_match(&m("a", "x", 10)).unwrap(),
        Recorded::Raised(_)
    ));
    assert!(matches!(
        s.record_match(&m("a", "x", 20)).unwrap(),
        Recorded::Attached(_)
    ));
    assert!(matches!(
        s.record_match(&m("b", "x", 30)).unwrap(),
        Recorded::Raised(_)
    ));
    drop(s);
    let s = AlertStore::open(&path).unwrap(); // migrations are idempotent
    let rows = s.alerts().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].stream.as_str(), rows[0].hits, rows[0].frame_pts_ms),
        ("a", 2, 10)
    );
    assert_eq!(
        (rows[0].action.as_str(), rows[0].variant.as_str()),
        ("review", "flipx")
    );
    let mode: String = s
        .conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn classifier_alerts_escalate_and_keep_the_highest_score() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = AlertStore::open(&dir.path().join("a.db")).unwrap();
    let c = |pts: u64, score: f64, action: &str| NewAlert {
        subject: Subject::Classifier(crate::domain::ClassifierSubject {
            model: "marker".into(),
            label: "marker".into(),
            score,
        }),
        action: Action::parse(action).unwrap(),
        ..m("a", "x", pts)
    };
    let Recorded::Raised(id) = s.record_match(&c(10, 0.7, "review")).unwrap() else {
        panic!("first finding raises")
    };
    assert_eq!(
        s.record_match(&c(20, 0.95, "halt")).unwrap(),
        Recorded::Attached(id)
    );
    assert_eq!(
        s.record_match(&c(30, 0.8, "review")).unwrap(),
        Recorded::Attached(id)
    );
    // A hash match on the same stream is a different alert.
    assert!(matches!(
        s.record_match(&m("a", "marker", 40)).unwrap(),
        Recorded::Raised(_)
    ));
    let rows = s.alerts().unwrap();
    assert_eq!(rows.len(), 2);
    let r = &rows[0];
    assert_eq!(
        (r.reason.as_str(), r.action.as_str(), r.hits, r.score),
        ("classifier", "halt", 3, Some(0.95))
    );
    assert_eq!(rows[1].score, None);
}

#[test]
fn alerts_are_queued_for_every_sink_and_leave_only_when_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let mut s = AlertStore::open(&path)
        .unwrap()
        .with_sinks(vec![SinkRoute::all("nats"), SinkRoute::all("hook")]);
    let instance = s.instance().to_string();
    assert_eq!(instance.len(), 12);
    let Recorded::Raised(id) = s.record_match(&m("a", "x", 10)).unwrap() else {
        panic!()
    };
    assert_eq!(
        s.outbox_unrouted(&["nats".into(), "hook".into()]).unwrap(),
        []
    );
    assert_eq!(
        s.outbox_unrouted(&["nats".into()]).unwrap(),
        [("hook".to_string(), 1)],
        "a sink removed from the config"
    );
    // Attaching queues nothing; escalating to halt queues one more message per sink.
    s.record_match(&m("a", "x", 20)).unwrap();
    s.record_match(&NewAlert {
        action: Action::Halt,
        ..m("a", "x", 30)
    })
    .unwrap();
    s.record_match(&NewAlert {
        action: Action::Halt,
        ..m("a", "x", 40)
    })
    .unwrap();
    let queued = s.outbox().unwrap();
    let ids: Vec<(&str, &str)> = queued
        .iter()
        .map(|r| (r.sink.as_str(), r.msg_id.as_str()))
        .collect();
    let raised = format!("{instance}-{id}-raised");
    let escalated = format!("{instance}-{id}-escalated");
    assert_eq!(
        ids,
        [
            ("nats", raised.as_str()),
            ("hook", raised.as_str()),
            ("nats", escalated.as_str()),
            ("hook", escalated.as_str())
        ]
    );
    let body: serde_json::Value = serde_json::from_str(&queued[0].payload).unwrap();
    assert_eq!(body["event"], "alert.raised");
    assert_eq!(body["alert"]["stream"], "a");
    assert_eq!(body["alert"]["id"], id);
    // A failure keeps it queued until its next attempt and holds back the messages after
    // it (a sink gets an alert's events in order); delivery moves it to the log.
    let now = now_ms();
    let first = s.outbox_due("nats", now, 10).unwrap();
    assert_eq!(first.len(), 2);
    s.outbox_failed(&first[0], "connection refused", now + 60_000)
        .unwrap();
    assert!(
        s.outbox_due("nats", now, 10).unwrap().is_empty(),
        "the escalation waits for the alert"
    );
    assert_eq!(s.outbox_next_due("nats").unwrap(), Some(now + 60_000));
    assert_eq!(
        s.outbox_due("hook", now, 10).unwrap().len(),
        2,
        "another sink is not held back"
    );
    drop(s);
    // Reopened (a restart): same instance id, the failed message still queued, first.
    let mut s = AlertStore::open(&path).unwrap();
    assert_eq!(s.instance(), instance);
    let later = s.outbox_due("nats", now + 60_000, 10).unwrap();
    let got: Vec<(&str, u32, Option<&str>)> = later
        .iter()
        .map(|r| (r.msg_id.as_str(), r.attempts, r.last_error.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (raised.as_str(), 1, Some("connection refused")),
            (escalated.as_str(), 0, None)
        ]
    );
    s.outbox_delivered(&later[0]).unwrap();
    s.outbox_delivered(&later[0]).unwrap(); // twice: logged once
    let log = s.deliveries().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].msg_id.as_str(), log[0].attempts),
        (raised.as_str(), 2)
    );
}

/// Issue 21, defect 6: one message no sink can take (here, over the size limit; a sink's
/// permanent refusal likewise) once held back every later message of that sink forever.
#[test]
fn a_message_no_sink_can_take_is_set_aside_dead_and_the_rest_go_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = AlertStore::open(&dir.path().join("a.db"))
        .unwrap()
        .with_sinks(vec![SinkRoute::all("nats")]);
    let huge = "x".repeat(MAX_MESSAGE_BYTES);
    raised(s.record_match(&m("live/a", &huge, 10)).unwrap());
    raised(s.record_match(&m("live/b", "small", 20)).unwrap());
    raised(s.record_match(&m("live/c", "refused", 30)).unwrap());
    let all = s.outbox().unwrap();
    assert_eq!(all.len(), 3);
    assert!(all[0].dead_at_ms.is_some(), "{:?}", all[0].last_error);
    assert!(
        all[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("-byte limit"),
        "{:?}",
        all[0].last_error
    );
    // Still queued and listed (never silently dropped), but not sent and not in the way.
    let due = s.outbox_due("nats", now_ms(), 32).unwrap();
    assert_eq!(
        due.iter().map(|r| r.id).collect::<Vec<_>>(),
        [all[1].id, all[2].id]
    );
    s.outbox_delivered(&due[0]).unwrap();
    s.outbox_dead(&due[1], "max payload size exceeded").unwrap();
    assert_eq!(s.outbox_due("nats", now_ms(), 32).unwrap(), []);
    assert_eq!(
        s.outbox_next_due("nats").unwrap(),
        None,
        "nothing left to send"
    );
    let left = s.outbox().unwrap();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|r| r.dead_at_ms.is_some()));
    assert_eq!(left[1].attempts, 1);
    let k = s.counts().unwrap();
    assert_eq!(k.dead, [("nats".to_string(), 2)]);
    // An operator's discard takes a dead message out like any other.
    assert!(
        s.outbox_discard(left[0].id, "token:ad", "too large")
            .unwrap()
            .is_some()
    );
    assert_eq!(s.counts().unwrap().dead, [("nats".to_string(), 1)]);
}

#[test]
fn a_discarded_message_leaves_the_outbox_unsent_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = AlertStore::open(&dir.path().join("a.db"))
        .unwrap()
        .with_sinks(vec![SinkRoute::all("hook")]);
    let wakes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    s.set_on_queued({
        let w = wakes.clone();
        move || {
            w.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let id = raised(s.record_match(&m("live/a", "x", 10)).unwrap());
    assert!(s.halt("live/a", "policy", "bank demo", Some(id)).unwrap());
    let queued = s.outbox().unwrap();
    assert_eq!(queued.len(), 2);
    s.outbox_failed(&queued[0], "HTTP 400", now_ms() + 60_000)
        .unwrap();
    assert_eq!(
        s.outbox_discard(queued[1].id + 1, "token:ad", "r").unwrap(),
        None
    );
    let woken = wakes.load(std::sync::atomic::Ordering::SeqCst);

    // The refused alert: gone unsent (not in the delivery log), the halt is next and due.
    let gone = s
        .outbox_discard(queued[0].id, "token:ad", "receiver rejects it")
        .unwrap()
        .unwrap();
    assert_eq!((gone.id, gone.attempts), (queued[0].id, 1));
    assert_eq!(s.outbox().unwrap(), [queued[1].clone()]);
    assert_eq!(s.outbox_due("hook", now_ms(), 10).unwrap().len(), 1);
    assert!(s.deliveries().unwrap().is_empty());
    assert_eq!(wakes.load(std::sync::atomic::Ordering::SeqCst), woken + 1);
    assert_eq!(
        s.outbox_discard(queued[0].id, "token:ad", "again").unwrap(),
        None
    );
    let audit = |s: &AlertStore| {
        s.audit(&AuditFilter {
            stream: None,
            alert: Some(id),
            before: None,
            limit: 10,
        })
        .unwrap()
    };
    let e = &audit(&s)[0];
    assert_eq!(
        (
            e.stream.as_str(),
            e.event.as_str(),
            e.actor.as_str(),
            e.reason.as_str()
        ),
        (
            "live/a",
            "message_discarded",
            "token:ad",
            "receiver rejects it"
        )
    );
    let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap();
    assert_eq!(detail["sink"], "hook");
    assert_eq!(detail["msg_id"], queued[0].msg_id);
    assert_eq!(detail["event"], "alert.raised");
    assert_eq!(detail["attempts"], 1);
    assert_eq!(detail["last_error"], "HTTP 400");
    // A halt's message names its stream itself.
    s.outbox_discard(queued[1].id, "token:ad", "r")
        .unwrap()
        .unwrap();
    let e = &audit(&s)[0];
    assert_eq!((e.stream.as_str(), e.alert_id), ("live/a", Some(id)));
    assert!(e.detail.contains("stream.halted"), "{}", e.detail);
    assert!(s.outbox().unwrap().is_empty());
}

#[test]
fn alert_transitions_are_checked_and_audited_and_claimed_alerts_stay_open_for_findings() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = AlertStore::open(&dir.path().join("a.db")).unwrap();
    let Recorded::Raised(id) = s.record_match(&m("a", "x", 10)).unwrap() else {
        panic!()
    };
    let a = s
        .act_on_alert(id, AlertAction::Claim, "token:mo", "looking")
        .unwrap();
    assert_eq!(
        (a.state.as_str(), a.claimed_by.as_deref()),
        ("claimed", Some("token:mo"))
    );
    // A later match attaches to the claimed alert instead of opening another.
    assert_eq!(
        s.record_match(&m("a", "x", 20)).unwrap(),
        Recorded::Attached(id)
    );
    assert!(matches!(
        s.act_on_alert(id, AlertAction::Claim, "token:other", ""),
        Err(TransitionError::WrongState { .. })
    ));
    s.act_on_alert(id, AlertAction::Dismiss, "token:mo", "benign")
        .unwrap();
    for action in [
        AlertAction::Dismiss,
        AlertAction::Confirm,
        AlertAction::Claim,
    ] {
        let e = s.act_on_alert(id, action, "token:mo", "").unwrap_err();
        assert!(e.to_string().contains("is dismissed"), "{e}");
    }
    assert!(matches!(
        s.act_on_alert(id + 100, AlertAction::Confirm, "x", ""),
        Err(TransitionError::UnknownAlert(_))
    ));
    // Dismissed: the next match raises a new alert.
    assert!(matches!(
        s.record_match(&m("a", "x", 30)).unwrap(),
        Recorded::Raised(_)
    ));
    let audit = s
        .audit(&AuditFilter {
            stream: Some("a".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .unwrap();
    let events: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e.event.as_str(), e.reason.as_str()))
        .collect();
    assert_eq!(
        events,
        [("alert_dismissed", "benign"), ("alert_claimed", "looking")]
    );
    assert!(audit.iter().all(|e| e.alert_id == Some(id)));
    let listed = s
        .list_alerts(&AlertFilter {
            state: Some(AlertState::Open),
            limit: 10,
            ..AlertFilter::default()
        })
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_ne!(listed[0].id, id);
}

#[test]
fn findings_after_a_dismissal_are_suppressed_for_the_cooldown_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = AlertStore::open(&dir.path().join("a.db"))
        .unwrap()
        .with_cooldown(60_000)
        .with_sinks(vec![SinkRoute::all("hook")]);
    let Recorded::Raised(id) = s.record_match(&m("a", "x", 10)).unwrap() else {
        panic!()
    };
    let dismissed = s
        .act_on_alert(id, AlertAction::Dismiss, "token:mo", "benign")
        .unwrap()
        .updated_at_ms;
    let queued = s.outbox().unwrap().len();
    // A fake clock: 1 s and 59.9 s after the dismissal, suppressed (even a halt
    // finding); another item or stream is not; at 60 s a new alert opens.
    let halt = NewAlert {
        action: Action::Halt,
        ..m("a", "x", 20)
    };
    assert_eq!(
        s.record_match_at(&halt, dismissed + 1_000).unwrap(),
        Recorded::Suppressed(id)
    );
    assert_eq!(
        s.record_match_at(&m("a", "x", 30), dismissed + 59_900)
            .unwrap(),
        Recorded::Suppressed(id)
    );
    assert!(matches!(
        s.record_match_at(&m("a", "y", 30), dismissed + 2_000)
            .unwrap(),
        Recorded::Raised(_)
    ));
    assert!(matches!(
        s.record_match_at(&m("b", "x", 30), dismissed + 2_000)
            .unwrap(),
        Recorded::Raised(_)
    ));
    let a = s.alert(id).unwrap().unwrap();
    assert_eq!(
        (a.state.as_str(), a.hits, a.action.as_str()),
        ("dismissed", 3, "review")
    );
    assert_eq!(
        s.outbox().unwrap().len(),
        queued + 2,
        "suppressed findings send nothing"
    );
    assert!(matches!(
        s.record_match_at(&m("a", "x", 40), dismissed + 60_000).unwrap(),
        Recorded::Raised(n) if n != id
    ));
    // Without a cooldown a dismissal suppresses nothing.
    let mut plain = AlertStore::open(&dir.path().join("b.db")).unwrap();
    let Recorded::Raised(id) = plain.record_match(&m("a", "x", 10)).unwrap() else {
        panic!()
    };
    plain
        .act_on_alert(id, AlertAction::Dismiss, "x", "")
        .unwrap();
    assert!(matches!(
        plain.record_match(&m("a", "x", 20)).unwrap(),
        Recorded::Raised(_)
    ));
}

#[test]
fn halts_are_idempotent_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = AlertStore::open(&dir.path().join("a.db")).unwrap();
    assert!(s.halt("live/a", "policy", "bank demo", Some(7)).unwrap());
    assert!(!s.halt("live/a", "api", "again", None).unwrap());
    assert!(s.is_halted("live/a").unwrap());
    assert_eq!(s.halted_streams().unwrap(), vec!["live/a".to_string()]);
    assert!(s.reinstate("live/a", "api", "false positive").unwrap());
    assert!(!s.reinstate("live/a", "api", "again").unwrap());
    assert!(!s.is_halted("live/a").unwrap());
    let ev = s.events(Some("live/a")).unwrap();
    let kinds: Vec<_> = ev
        .iter()
        .map(|e| (e.event.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(kinds, vec![("halt", "policy"), ("reinstate", "api")]);
    assert_eq!(ev[0].alert_id, Some(7));
}

#[test]
fn unopenable_path_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let msg = AlertStore::open(&file.join("db.sqlite"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("db.sqlite") || msg.contains(&file.display().to_string()),
        "{msg}"
    );
}

#[test]
fn moderators_actions_and_halts_are_queued_for_the_sinks_that_take_them() {
    let dir = tempfile::tempdir().unwrap();
    let pager = SinkRoute {
        name: "pager".into(),
        events: vec![SinkEvent::AlertRaised, SinkEvent::StreamHalted],
    };
    let mut s = AlertStore::open(&dir.path().join("a.db"))
        .unwrap()
        .with_sinks(vec![SinkRoute::all("js"), pager]);
    let wakes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    s.set_on_queued({
        let w = wakes.clone();
        move || {
            w.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let inst = s.instance().to_string();
    let Recorded::Raised(id) = s.record_match(&m("live/a", "x", 10)).unwrap() else {
        panic!()
    };
    s.act_on_alert(id, AlertAction::Claim, "token:mo", "looking")
        .unwrap();
    s.act_on_alert(id, AlertAction::Dismiss, "token:mo", "benign")
        .unwrap();
    // Refused transitions and repeated halts queue nothing.
    assert!(
        s.act_on_alert(id, AlertAction::Dismiss, "token:mo", "again")
            .is_err()
    );
    assert!(s.halt("live/a", "policy", "bank demo", Some(id)).unwrap());
    assert!(!s.halt("live/a", "token:ad", "again", None).unwrap());
    assert!(s.reinstate("live/a", "token:mo", "appeal").unwrap());
    assert!(s.halt("live/a", "token:ad", "by hand", None).unwrap());
    assert_eq!(wakes.load(std::sync::atomic::Ordering::SeqCst), 6);

    let audit: Vec<i64> = s
        .events(Some("live/a"))
        .unwrap()
        .iter()
        .filter(|e| e.event == "halt" || e.event == "reinstate")
        .map(|e| e.id)
        .collect();
    assert_eq!(audit.len(), 3);
    let queued = s.outbox().unwrap();
    let got: Vec<(&str, &str, Option<i64>)> = queued
        .iter()
        .map(|r| (r.sink.as_str(), r.msg_id.as_str(), r.alert_id))
        .collect();
    let ids = [
        format!("{inst}-{id}-raised"),
        format!("{inst}-{id}-claimed"),
        format!("{inst}-{id}-dismissed"),
        format!("{inst}-stream-{}", audit[0]),
        format!("{inst}-stream-{}", audit[1]),
        format!("{inst}-stream-{}", audit[2]),
    ];
    assert_eq!(
        got,
        [
            ("js", ids[0].as_str(), Some(id)),
            ("pager", ids[0].as_str(), Some(id)),
            ("js", ids[1].as_str(), Some(id)),
            ("js", ids[2].as_str(), Some(id)),
            ("js", ids[3].as_str(), Some(id)),
            ("pager", ids[3].as_str(), Some(id)),
            ("js", ids[4].as_str(), None),
            ("js", ids[5].as_str(), None),
            ("pager", ids[5].as_str(), None),
        ]
    );
    let body =
        |i: usize| -> serde_json::Value { serde_json::from_str(&queued[i].payload).unwrap() };
    let claimed = body(2);
    assert_eq!(claimed["id"], ids[1].as_str());
    assert_eq!(claimed["event"], "alert.claimed");
    assert_eq!(claimed["daemon"], inst.as_str());
    assert_eq!(
        (&claimed["actor"], &claimed["reason"]),
        (&"token:mo".into(), &"looking".into())
    );
    assert_eq!(claimed["alert"]["id"], id);
    assert_eq!(claimed["alert"]["state"], "claimed");
    assert_eq!(claimed["alert"]["stream"], "live/a");
    assert_eq!(claimed["alert"]["claimed_by"], "token:mo");
    let dismissed = body(3);
    assert_eq!(dismissed["event"], "alert.dismissed");
    assert_eq!(dismissed["alert"]["state"], "dismissed");
    assert_eq!(dismissed["reason"], "benign");
    let halted = body(4);
    assert_eq!(halted["event"], "stream.halted");
    assert_eq!(
        (&halted["stream"], &halted["actor"], &halted["reason"]),
        (&"live/a".into(), &"policy".into(), &"bank demo".into())
    );
    assert_eq!(halted["alert_id"], id);
    let reinstated = body(6);
    assert_eq!(reinstated["event"], "stream.reinstated");
    assert_eq!(reinstated["actor"], "token:mo");
    assert!(reinstated["alert_id"].is_null());
    assert_eq!(body(7)["reason"], "by hand");

    // A message of no alert goes into the delivery log like any other.
    let row = queued[6].clone();
    s.outbox_delivered(&row).unwrap();
    let log = s.deliveries().unwrap();
    assert_eq!(
        (log[0].msg_id.as_str(), log[0].alert_id),
        (ids[4].as_str(), None)
    );
}

#[test]
fn queued_messages_survive_the_outbox_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    {
        // A store as version 9 left it, with one message queued and one delivered.
        let mut c = rusqlite::Connection::open(&path).unwrap();
        let tx = c.transaction().unwrap();
        for sql in &MIGRATIONS[..9] {
            tx.execute_batch(sql).unwrap();
        }
        tx.pragma_update(None, "user_version", 9).unwrap();
        tx.execute_batch(
            "INSERT INTO outbox (sink, msg_id, alert_id, payload, attempts, next_attempt_ms, last_error, created_at_ms)
             VALUES ('js', 'i-1-raised', 1, '{}', 2, 5, 'down', 3);
             INSERT INTO deliveries (sink, msg_id, alert_id, attempts, queued_at_ms, delivered_at_ms)
             VALUES ('hook', 'i-1-raised', 1, 1, 3, 4);",
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let s = AlertStore::open(&path).unwrap();
    let q = s.outbox().unwrap();
    assert_eq!(
        (
            q[0].msg_id.as_str(),
            q[0].alert_id,
            q[0].attempts,
            q[0].created_at_ms
        ),
        ("i-1-raised", Some(1), 2, 3)
    );
    assert_eq!(s.outbox_next_due("js").unwrap(), Some(5));
    let d = s.deliveries().unwrap();
    assert_eq!((d[0].sink.as_str(), d[0].alert_id), ("hook", Some(1)));
    let version: usize = s
        .conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, MIGRATIONS.len());
}

pub(super) fn raised(r: Recorded) -> i64 {
    match r {
        Recorded::Raised(id) => id,
        other => panic!("{other:?}"),
    }
}

#[test]
fn audit_filters_by_alert_and_pages_back_using_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = AlertStore::open(&dir.path().join("a.db")).unwrap();
    let a = raised(s.record_match(&m("live/a", "x", 10)).unwrap());
    let b = raised(s.record_match(&m("live/a", "y", 10)).unwrap());
    s.act_on_alert(a, AlertAction::Claim, "token:mo", "1")
        .unwrap();
    s.act_on_alert(b, AlertAction::Claim, "token:mo", "2")
        .unwrap();
    s.act_on_alert(a, AlertAction::Dismiss, "token:mo", "3")
        .unwrap();
    s.halt("live/a", "token:ad", "4", None).unwrap();
    let reasons = |f: AuditFilter| -> Vec<String> {
        s.audit(&f).unwrap().into_iter().map(|e| e.reason).collect()
    };
    let all = |limit| AuditFilter {
        limit,
        ..AuditFilter::default()
    };
    assert_eq!(reasons(all(10)), ["4", "3", "2", "1"]);
    assert_eq!(
        reasons(AuditFilter {
            alert: Some(a),
            ..all(10)
        }),
        ["3", "1"]
    );
    let newest = s.audit(&all(2)).unwrap();
    assert_eq!(
        reasons(AuditFilter {
            before: Some(newest[1].id),
            ..all(10)
        }),
        ["2", "1"]
    );
    assert_eq!(
        reasons(AuditFilter {
            stream: Some("live/a".into()),
            alert: Some(b),
            before: Some(newest[0].id),
            ..all(10)
        }),
        ["2"]
    );
    assert!(
        reasons(AuditFilter {
            stream: Some("live/b".into()),
            ..all(10)
        })
        .is_empty()
    );
    // One alert's history is looked up by index, not by scanning the whole log.
    let plan = query_plan(
        &s,
        audit_query(&AuditFilter {
            alert: Some(a),
            ..all(10)
        }),
    );
    assert!(plan.contains("stream_events_by_alert"), "{plan}");
}

/// SQLite's plan for a query, one line per step.
fn query_plan(s: &AlertStore, (sql, args): (String, Vec<rusqlite::types::Value>)) -> String {
    let plan: Vec<String> = s
        .conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap()
        .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    plan.join("\n")
}

#[test]
fn filtered_alert_lists_read_an_index_not_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let s = AlertStore::open(&dir.path().join("a.db")).unwrap();
    let f = |state: Option<&str>, stream: Option<&str>, before: Option<i64>| AlertFilter {
        state: state.and_then(AlertState::parse),
        stream: stream.map(str::to_string),
        reason: Some(Reason::HashMatch),
        before,
        limit: 200,
    };
    for filter in [
        f(Some("open"), None, None),
        f(None, Some("live/a"), None),
        f(Some("dismissed"), Some("live/a"), Some(100)),
    ] {
        let plan = query_plan(&s, alerts_query(&filter));
        assert!(
            !plan.contains("SCAN alerts") && !plan.contains("TEMP B-TREE"),
            "{filter:?}: {plan}"
        );
    }
    // A sink's delivery poll reads its oldest messages (`outbox_page`, `outbox_due`).
    let mut w = Where::default();
    w.add("sink =", Some("hook".to_string()));
    let plan = query_plan(&s, w.select_oldest_first("id", "outbox", 32));
    assert!(
        plan.contains("outbox_by_sink") && !plan.contains("TEMP B-TREE"),
        "{plan}"
    );
}

/// The deny list as `/api/v1/halts` serves it: newest halt first, reinstated streams gone,
/// and what the actuator last did about each halt since it was made.
#[test]
fn halts_list_the_deny_list_with_the_actuators_last_word() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = AlertStore::open(&dir.path().join("a.db")).unwrap();
    assert!(
        s.halt_at("live/a", "policy:bank:demo", "item", Some(7), 1_000)
            .unwrap()
    );
    s.record_event_at(
        "live/a",
        AuditEvent::HaltSent,
        "none",
        "item",
        "recorded",
        Some(7),
        1_000,
    )
    .unwrap();
    assert!(
        s.halt_at("live/b", "token:mo", "by hand", None, 2_000)
            .unwrap()
    );
    s.record_event_at(
        "live/b",
        AuditEvent::HaltFailed,
        "nginx-rtmp",
        "by hand",
        "refused",
        None,
        2_000,
    )
    .unwrap();
    assert!(
        s.halt_at("live/c", "token:mo", "gone", None, 3_000)
            .unwrap()
    );
    assert!(s.reinstate("live/c", "token:mo", "ok").unwrap());
    let h = s.halts().unwrap();
    assert_eq!(
        h.iter().map(|r| r.stream.as_str()).collect::<Vec<_>>(),
        ["live/b", "live/a"]
    );
    assert_eq!(
        (h[1].actor.as_str(), h[1].alert_id, h[1].since_ms),
        ("policy:bank:demo", Some(7), 1_000)
    );
    let a = h[1].actuator.as_ref().unwrap();
    assert_eq!(
        (a.event.as_str(), a.actuator.as_str(), a.detail.as_str()),
        ("halt_sent", "none", "recorded")
    );
    assert_eq!(h[0].actuator.as_ref().unwrap().event, "halt_failed");
}
