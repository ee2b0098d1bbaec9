//! Alert delivery with real parts: a real `nats-server -js` on loopback, a webhook receiver
//! on loopback, the daemon (in-process, and as a process killed with SIGKILL). Alerts come
//! from a synthetic stream showing the demo image (whose hash is in the demo bank).
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use streamguard::app::App;
use streamguard::config::Source;
use streamguard::moderation::store::AlertStore;
use support::nats::{NatsServer, consume_all, duplicate_window};
use support::webhook::webhook_receiver;
use support::{repo, wait_until};

/// A config with the demo bank, a store in `dir`, `sinks` and one stream showing the demo
/// image from 2 s to 3.5 s (at the frame rate when `realtime`).
fn config(dir: &Path, sinks: &str, realtime: bool) -> PathBuf {
    let text = format!(
        "[[banks]]\nname = \"demo\"\npath = \"{bank}\"\n[store]\npath = \"{db}\"\n[http]\nlisten = \"\"\n\
         {sinks}\n[[streams]]\nid = \"with-image\"\npipeline = \"testsrc-image\"\n\
         params = {{ image = \"{img}\", before = \"60\", show = \"45\", after = \"60\", realtime = \"{realtime}\" }}\n",
        bank = repo().join("config/demo-bank.txt").display(),
        db = dir.join("alerts.db").display(),
        img = repo().join("config/demo-image.png").display(),
    );
    let path = dir.join("c.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn nats_sink(url: &str, backoff_max_ms: u64) -> String {
    format!(
        "[[sinks]]\nname = \"jetstream\"\nkind = \"nats\"\nurl = \"{url}\"\nsubject = \"test.alerts\"\n\
         stream = \"TEST_ALERTS\"\ntimeout_ms = 2000\nbackoff_initial_ms = 200\nbackoff_max_ms = {backoff_max_ms}\n"
    )
}

fn store(dir: &Path) -> AlertStore {
    AlertStore::open(&dir.join("alerts.db")).unwrap()
}

#[test]
fn webhook_answering_500_is_retried_until_accepted_with_a_valid_signature() {
    let dir = tempfile::tempdir().unwrap();
    let (port, got) = webhook_receiver(3);
    let sinks = format!(
        "[[sinks]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/alerts\"\n\
         secret = \"test-secret\"\nbackoff_initial_ms = 100\nbackoff_max_ms = 400\n"
    );
    let cfg = Source::File(config(dir.path(), &sinks, false))
        .load_with_env(Vec::new())
        .unwrap();
    let app = App::start(&cfg).unwrap();
    wait_until(
        "the webhook accepted the alert",
        Duration::from_secs(60),
        || got.lock().unwrap().iter().any(|r| r.answered == 204),
    );
    app.shutdown();

    let got = got.lock().unwrap().clone();
    assert_eq!(
        got.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 500, 500, 204],
        "retried after each 500, nothing after the 204"
    );
    for r in &got {
        assert_eq!(r.body, got[0].body, "the same message each time");
        assert_eq!(
            r.header("x-streamguard-id"),
            got[0].header("x-streamguard-id")
        );
        assert_eq!(
            r.header("x-streamguard-signature").unwrap(),
            streamguard::delivery::webhook::signature(b"test-secret", &r.body),
            "HMAC-SHA256 of the body"
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["event"], "alert.raised");
    assert_eq!(body["alert"]["stream"], "with-image");
    assert_eq!(body["alert"]["bank"], "demo");
    assert_eq!(body["id"].as_str(), got[0].header("x-streamguard-id"));
    let s = store(dir.path());
    assert!(
        s.outbox().unwrap().is_empty(),
        "delivered: out of the outbox"
    );
    let log = s.deliveries().unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!((log[0].sink.as_str(), log[0].attempts), ("hook", 4));
}

#[test]
fn jetstream_keeps_one_copy_of_a_message_sent_twice() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start(&dir.path().join("js"));
    let toml = nats_sink(&server.url(), 1000);
    let cfg: streamguard::config::Config = {
        let path = dir.path().join("c.toml");
        std::fs::write(&path, &toml).unwrap();
        Source::File(path).load_with_env(Vec::new()).unwrap()
    };
    let mut sink = streamguard::delivery::sink_for(&cfg.sinks[0]).unwrap();
    let msg = streamguard::moderation::store::OutboxRow {
        id: 1,
        sink: "jetstream".into(),
        msg_id: "abc-1-raised".into(),
        alert_id: Some(1),
        payload: "{\"id\":\"abc-1-raised\"}".into(),
        attempts: 0,
        created_at_ms: 0,
        last_error: None,
        next_attempt_ms: 0,
        dead_at_ms: None,
    };
    // Sent, "crash" before it was marked delivered, sent again: JetStream keeps one.
    sink.deliver(&msg).unwrap();
    sink.deliver(&msg).unwrap();
    let other = streamguard::moderation::store::OutboxRow {
        msg_id: "abc-2-raised".into(),
        payload: "{\"id\":\"abc-2-raised\"}".into(),
        ..msg.clone()
    };
    sink.deliver(&other).unwrap();
    let ids: Vec<_> = consume_all(&server.url(), "TEST_ALERTS")
        .into_iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["abc-1-raised", "abc-2-raised"]);
    // The stream streamguard created de-duplicates over its documented window.
    assert_eq!(
        duplicate_window(&server.url(), "TEST_ALERTS"),
        streamguard::delivery::DUPLICATE_WINDOW
    );
    assert_eq!(
        streamguard::delivery::DUPLICATE_WINDOW,
        Duration::from_secs(600)
    );
    // A message over the server's max_payload (1 MiB) can never go: a permanent error,
    // which the delivery loop sets aside as dead instead of retrying it forever.
    let big = streamguard::moderation::store::OutboxRow {
        msg_id: "abc-3-raised".into(),
        payload: format!("{{\"id\":\"{}\"}}", "x".repeat(1_100_000)),
        ..msg.clone()
    };
    let e = sink.deliver(&big).unwrap_err();
    assert!(e.is_permanent(), "{e}");
    sink.deliver(&other).unwrap();
}

#[test]
fn nats_down_when_the_alert_is_raised_gets_it_once_after_restarting_30_s_later() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::start(&dir.path().join("js"));
    server.kill();
    let cfg = Source::File(config(dir.path(), &nats_sink(&server.url(), 2000), false))
        .load_with_env(Vec::new())
        .unwrap();
    let app = App::start(&cfg).unwrap();
    wait_until("the alert recorded", Duration::from_secs(60), || {
        !store(dir.path()).alerts().unwrap().is_empty()
    });
    let raised = Instant::now();
    wait_until("failed attempts", Duration::from_secs(20), || {
        store(dir.path())
            .outbox()
            .unwrap()
            .first()
            .is_some_and(|m| m.attempts >= 2)
    });
    std::thread::sleep(Duration::from_secs(30).saturating_sub(raised.elapsed()));
    assert_eq!(store(dir.path()).outbox().unwrap().len(), 1, "still queued");
    server.restart();
    wait_until(
        "delivered after the restart",
        Duration::from_secs(30),
        || store(dir.path()).outbox().unwrap().is_empty(),
    );
    app.shutdown();
    let got = consume_all(&server.url(), "TEST_ALERTS");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["alert"]["stream"], "with-image");
    let log = store(dir.path()).deliveries().unwrap();
    assert_eq!(log.len(), 1);
    assert!(log[0].attempts >= 3, "{log:?}");
    println!(
        "delivered after {} attempts, {:.1} s after it was queued",
        log[0].attempts,
        (log[0].delivered_at_ms - log[0].queued_at_ms) as f64 / 1000.0
    );
}

/// SIGKILL while a message is still queued (its NATS server down at the kill, so it cannot
/// have gone out), then a restart: delivered exactly once. The server requires a user and
/// password given in the sink's URL, and both daemons log the NATS client at `trace`: the
/// password appears
/// in no log line (issue 21, defect 7: the client once logged it at debug level).
#[test]
fn daemon_killed_with_a_message_queued_delivers_it_on_restart_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let password = "pw-Zq83xK-not-for-logs";
    let mut server = NatsServer::start_as(&dir.path().join("js"), Some(("alerts", password)));
    server.kill();
    let path = config(dir.path(), &nats_sink(&server.url(), 1000), true);
    let daemon = |log: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_streamguard"))
            .args(["run", "--config"])
            .arg(&path)
            .env("RUST_LOG", "info,async_nats=trace")
            .env_remove("ORT_DYLIB_PATH")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join(log)).unwrap())
            .spawn()
            .unwrap()
    };
    let mut first = daemon("first.log");
    wait_until(
        "the alert's message tried and refused",
        Duration::from_secs(60),
        || {
            AlertStore::open(&dir.path().join("alerts.db"))
                .is_ok_and(|s| s.outbox().unwrap().first().is_some_and(|m| m.attempts >= 1))
        },
    );
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let queued = store(dir.path()).outbox().unwrap();
    assert!(!queued.is_empty(), "killed with nothing queued");
    assert!(
        queued
            .iter()
            .any(|m| m.event().as_deref() == Some("alert.raised")),
        "{queued:?}"
    );
    println!(
        "killed with {} message(s) still in the outbox",
        queued.len()
    );

    server.restart();
    let mut second = daemon("second.log");
    wait_until("the outbox empty", Duration::from_secs(60), || {
        store(dir.path()).outbox().unwrap().is_empty()
    });
    // The restarted stream shows the image again: the match attaches to the open alert,
    // so there is nothing new to send.
    std::thread::sleep(Duration::from_secs(7));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status();
    second.wait().unwrap();
    let s = store(dir.path());
    assert_eq!(s.alerts().unwrap().len(), 1);
    assert!(s.outbox().unwrap().is_empty());
    let got = consume_all(&server.url(), "TEST_ALERTS");
    assert_eq!(got.len(), 1, "exactly once at the consumer: {got:?}");
    assert_eq!(got[0]["event"], "alert.raised");
    for log in ["first.log", "second.log"] {
        let text = std::fs::read_to_string(dir.path().join(log)).unwrap();
        assert!(
            text.contains("async_nats"),
            "{log}: the NATS client's own lines are logged at trace"
        );
        assert!(!text.contains(password), "{log} holds the NATS password");
    }
    let text = std::fs::read_to_string(dir.path().join("second.log")).unwrap();
    assert!(text.contains("message delivered"), "{text}");
}
