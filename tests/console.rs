//! The moderator console in a real headless Chromium (Debian's `chromium`, driven through
//! `chromedriver`), against the daemon with bearer tokens, a hash bank and the marker
//! classifier (its synthetic stand-in positive). Without a token the page shows nothing but
//! the sign-in form and the API answers 401; a viewer sees the queue but cannot halt (the
//! button is disabled and the API answers 403); a moderator, by keyboard only, opens a
//! classifier alert (evidence blurred), reveals it (audit entry written), dismisses it, and
//! halts and reinstates a stream. Screenshots of each step are saved under
//! `target/artefacts/console/` (or `$STREAMGUARD_ARTEFACTS/console/`).
mod support;

use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use streamguard::app::App;
use streamguard::config::Source;
use support::api::Api;
use support::browser::Browser;
use support::repo;

const VIEWER: &str = "viewer-token-for-console-01";
const MODERATOR: &str = "moderator-token-for-console-02";
const ENTER: &str = "\u{E007}";

fn artefacts() -> PathBuf {
    std::env::var_os("STREAMGUARD_ARTEFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/artefacts"))
        .join("console")
}

/// The alert id of the queue row holding the focus (JSON null if none).
fn row_of_focus(b: &Browser) -> serde_json::Value {
    b.exec(
        "const r = document.activeElement && document.activeElement.closest('#alerts tr'); \
         return r ? r.dataset.id : null;",
        json!([]),
    )
}

/// Signs in with the moderator's token and Enter, moves down the queue with `j` until the
/// focus is on `alert`'s row, and opens it with Enter: the keyboard only.
fn moderator_opens(b: &Browser, alert: i64) {
    b.type_into(&b.wait("#token"), &format!("{MODERATOR}{ENTER}"));
    b.wait(&format!("#alerts tr[data-id=\"{alert}\"]"));
    b.wait_until("focus on the queue", |b| row_of_focus(b).is_string());
    for _ in 0..20 {
        if row_of_focus(b) == json!(alert.to_string()) {
            break;
        }
        b.press("j");
    }
    assert_eq!(row_of_focus(b), json!(alert.to_string()));
    b.press(ENTER);
}

/// Whether the page shows no data: the app hidden, every table empty, no alert open and no
/// evidence image loaded (JSON true).
fn nothing_shown(b: &Browser) -> serde_json::Value {
    b.exec(
        "return document.getElementById('app').hidden \
         && [...document.querySelectorAll('tbody')].every(t => t.rows.length === 0) \
         && document.getElementById('detail-body').hidden \
         && !document.getElementById('evidence').hasAttribute('src');",
        json!([]),
    )
}

fn halted(api: &Api, stream: &str) -> bool {
    let (_, body) = api.call("GET", "/api/v1/streams", Some(VIEWER), "");
    body["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == stream)
        .unwrap_or_else(|| panic!("no stream {stream}: {body}"))["halted"]
        .as_bool()
        .unwrap()
}

fn audit_has(api: &Api, event: &str, alert: i64) -> bool {
    let (_, body) = api.call("GET", "/api/v1/audit", Some(VIEWER), "");
    body["audit"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"] == event && e["alert_id"] == alert && e["actor"] == "token:mo")
}

#[test]
fn console_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let stream = |id: &str, image: &str| {
        format!(
            "[[streams]]\nid = \"{id}\"\npipeline = \"testsrc-image\"\n\
             params = {{ image = \"{img}\", before = \"60\", show = \"45\", after = \"60\", realtime = \"false\" }}\n",
            img = repo().join(image).display()
        )
    };
    let config = format!(
        "[[banks]]\nname = \"demo\"\npath = \"{bank}\"\n\
         [store]\npath = \"{db}\"\n\
         [classify]\nmodels = [\"{model}\"]\nruntime = \"{rt}\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\n\
         [[http.tokens]]\nname = \"vera\"\nrole = \"viewer\"\ntoken = \"{VIEWER}\"\n\
         [[http.tokens]]\nname = \"mo\"\nrole = \"moderator\"\ntoken = \"{MODERATOR}\"\n\
         {hashed}{marked}",
        bank = repo().join("config/demo-bank.txt").display(),
        db = dir.path().join("alerts.db").display(),
        model = repo().join("models/marker").display(),
        rt = repo()
            .join(".onnxruntime/libonnxruntime.so.1.31.1")
            .display(),
        hashed = stream("with-image", "config/demo-image.png"),
        marked = stream("marked", "config/demo-marker.png"),
    );
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config).unwrap();
    let cfg = Source::File(path).load_with_env(Vec::new()).unwrap();
    let app = App::start(&cfg).unwrap();
    assert!(app.wait_streams_finished(Duration::from_secs(120)));
    let api = Api::new(format!("http://{}", app.http_addr().unwrap()));
    let base = api.base.clone();
    let newest = |reason: &str| {
        api.first_alert(
            &format!("/api/v1/alerts?reason={reason}"),
            VIEWER,
            Duration::from_secs(20),
        )
    };
    let (hash_alert, marker_alert) = (newest("hash_match"), newest("classifier"));
    let shots = artefacts();
    let _ = std::fs::remove_dir_all(&shots);

    let b = Browser::start();

    // No token: the sign-in form and nothing else; the API refuses the page's calls.
    b.goto(&format!("{base}/"));
    b.wait("#token");
    assert!(b.find_all("#alerts tbody tr").is_empty());
    assert!(!b.displayed(&b.find_all("#app")[0]));
    let status = b.exec(
        "return fetch('/api/v1/alerts').then(r => r.status);",
        json!([]),
    );
    assert_eq!(status, 401);
    b.screenshot(&shots.join("01-sign-in.png"));
    b.type_into(
        &b.wait("#token"),
        &format!("not-a-real-token-at-all{ENTER}"),
    );
    b.wait_until("the refusal", |b| {
        b.text_of("#signin-error").contains("not accepted")
    });
    assert!(!b.displayed(&b.find_all("#app")[0]));

    // A viewer sees the queue and the streams; cannot halt: the button is disabled and the
    // API answers 403 to the same request from the page; nothing changed.
    b.type_into(&b.wait("#token"), VIEWER);
    b.click(&b.wait("#signin-submit"));
    b.wait(&format!("#alerts tr[data-id=\"{marker_alert}\"]"));
    b.wait(&format!("#alerts tr[data-id=\"{hash_alert}\"]"));
    assert!(b.text_of("#who").contains("vera (viewer)"));
    let halt_button = "#streams tr[data-stream=\"with-image\"] button";
    b.wait_until("the Halt button", |b| b.text_of(halt_button) == "Halt");
    assert!(
        !b.enabled_css(halt_button),
        "a viewer's halt button is disabled"
    );
    let status = b.exec(
        "return fetch('/api/v1/streams/with-image/halt', {method: 'POST', \
         headers: {Authorization: 'Bearer ' + arguments[0]}}).then(r => r.status);",
        json!([VIEWER]),
    );
    assert_eq!(status, 403);
    assert!(!halted(&api, "with-image"));
    b.screenshot(&shots.join("02-viewer-queue.png"));
    b.click(&b.wait("#signout"));
    b.wait("#token");
    assert_eq!(nothing_shown(&b), json!(true), "signed out: no data");

    // A moderator, by keyboard only: token and Enter; j/k to the classifier alert, Enter
    // opens it with the evidence blurred; r reveals (audited); d and Enter dismiss it.
    moderator_opens(&b, marker_alert);
    assert!(b.text_of("#who").contains("mo (moderator)"));
    b.wait_until("the alert's detail", |b| {
        b.text_of("#detail-h") == format!("Alert #{marker_alert}")
    });
    let img = b.wait("#evidence");
    b.wait_until("blurred evidence", |b| {
        b.attr(&img, "data-state").as_deref() == Some("blurred")
    });
    let width = b.exec(
        "return document.getElementById('evidence').naturalWidth;",
        json!([]),
    );
    assert!(width.as_u64().unwrap() > 0, "the thumbnail decoded");
    assert!(!audit_has(&api, "evidence_revealed", marker_alert));
    b.screenshot(&shots.join("03-alert-blurred.png"));

    b.press("r");
    b.wait_until("revealed evidence", |b| {
        b.attr(&img, "data-state").as_deref() == Some("revealed")
    });
    assert!(audit_has(&api, "evidence_revealed", marker_alert));
    b.wait_until("the reveal in the alert's history", |b| {
        b.text_of("#detail-audit")
            .contains("evidence revealed by mo")
    });
    b.screenshot(&shots.join("04-alert-revealed.png"));

    // Signing out drops everything, the revealed image included; signed in again, the
    // alert opens blurred (a reveal lasts as long as the alert stays open).
    b.click(&b.wait("#signout"));
    b.wait("#token");
    assert_eq!(nothing_shown(&b), json!(true), "signed out: nothing left");
    moderator_opens(&b, marker_alert);
    let img = b.wait("#evidence");
    b.wait_until("blurred evidence again", |b| {
        b.attr(&img, "data-state").as_deref() == Some("blurred")
    });

    b.press("d");
    let reason = b.wait("#confirm-reason");
    assert_eq!(b.focused(), "confirm-reason", "the dialog takes the focus");
    // The suggested reason is selected: End keeps it, then add to it.
    b.press("\u{E010}");
    b.type_into(&reason, " (console test)");
    b.press(ENTER);
    b.wait_until("the dismissal", |b| {
        b.text_of("#detail-fields").contains("dismissed")
    });
    let (_, a) = api.call(
        "GET",
        &format!("/api/v1/alerts/{marker_alert}"),
        Some(VIEWER),
        "",
    );
    assert_eq!(a["state"], "dismissed");
    // Time to detect: recorded with the alert, shown in its row of the queue.
    let ttd = a["detect_ms"].as_u64().expect("detect_ms recorded");
    let shown = b.text_of(&format!(
        "#alerts tr[data-id=\"{marker_alert}\"] td:last-child"
    ));
    if ttd < 1000 {
        assert_eq!(
            shown,
            format!("{ttd} ms"),
            "the queue shows the time to detect"
        );
    } else {
        assert!(
            shown.ends_with(" s"),
            "the queue shows the time to detect: {shown}"
        );
    }
    assert!(audit_has(&api, "alert_dismissed", marker_alert));
    let (_, log) = api.call("GET", "/api/v1/audit", Some(VIEWER), "");
    assert!(
        log["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "alert_dismissed"
                && e["reason"] == "false positive (console test)"),
        "the reason typed is recorded: {log}"
    );
    assert!(
        !b.enabled_css("#act-dismiss"),
        "dismissed: no second dismissal"
    );
    b.screenshot(&shots.join("05-alert-dismissed.png"));

    // Live updates: another moderator claims the hash alert through the API; the page shows
    // it without a reload.
    let (code, body) = api.call(
        "POST",
        &format!("/api/v1/alerts/{hash_alert}/claim"),
        Some(MODERATOR),
        "",
    );
    assert_eq!(code, 200, "{body}");
    b.wait_until("the claim pushed to the page", |b| {
        b.text_of(&format!("#alerts tr[data-id=\"{hash_alert}\"]"))
            .contains("claimed")
    });

    // Halt and reinstate a stream from the streams table (focus the button, Enter, Enter).
    assert!(b.enabled_css(halt_button));
    b.focus_css(halt_button);
    b.press(ENTER);
    b.wait("#confirm-reason");
    b.press(ENTER);
    b.wait_until("the halt", |_| halted(&api, "with-image"));
    b.wait_until("the Reinstate button", |b| {
        b.text_of(halt_button) == "Reinstate"
    });
    b.screenshot(&shots.join("06-stream-halted.png"));
    b.click_css(halt_button);
    b.wait("#confirm-reason");
    b.press(ENTER);
    b.wait_until("the reinstatement", |_| !halted(&api, "with-image"));
    b.wait_until("the audit trail", |b| {
        [
            "halt",
            "reinstate",
            "evidence_revealed",
            "alert_dismissed",
            "alert_claimed",
        ]
        .iter()
        .all(|e| {
            !b.find_all(&format!("#audit tr[data-event=\"{e}\"]"))
                .is_empty()
        })
    });
    b.screenshot(&shots.join("07-audit-trail.png"));

    // The audit trail shows the latest 50 entries; "Older entries" adds the next page.
    for _ in 0..50 {
        let path = format!("/api/v1/alerts/{marker_alert}/evidence?reveal=true");
        assert_eq!(api.bytes(&path, MODERATOR).0, 200);
    }
    let (_, log) = api.call("GET", "/api/v1/audit?limit=1000", Some(VIEWER), "");
    let total = log["audit"].as_array().unwrap().len();
    assert!((51..100).contains(&total), "{total}");
    let older_shown = |b: &Browser| b.find_all("#audit-older").iter().any(|e| b.displayed(e));
    b.wait_until(
        "the first page of the audit trail (reveals are pushed live)",
        |b| b.find_all("#audit tbody tr").len() == 50 && older_shown(b),
    );
    b.screenshot(&shots.join("08-audit-first-page.png"));
    b.click_css("#audit-older");
    b.wait_until("the older entries", |b| {
        b.find_all("#audit tbody tr").len() == total
    });
    assert!(!older_shown(&b), "nothing older to load");

    // An audit entry whose alert retention deleted (a stand-in row naming an alert id that
    // was never given out): its link says so and leaves the detail panel closed.
    streamguard::moderation::store::AlertStore::open(&dir.path().join("alerts.db"))
        .unwrap()
        .record_event(
            "marked",
            streamguard::domain::AuditEvent::AlertDismissed,
            "token:mo",
            "old",
            "",
            Some(9999),
        )
        .unwrap();
    // Halting pushes an event, and so a refresh.
    api.call("POST", "/api/v1/streams/marked/halt", Some(MODERATOR), "");
    let gone_link = |b: &Browser| {
        b.find_all("#audit tbody button")
            .into_iter()
            .find(|e| b.text(e) == "#9999")
    };
    b.wait_until("the entry on the page", |b| gone_link(b).is_some());
    b.focus(&gone_link(&b).unwrap());
    b.press(ENTER);
    b.wait_until("the deleted alert explained", |b| {
        b.text_of("#status").contains("no longer in the store")
    });
    assert!(!b.displayed(&b.find_all("#detail-body")[0]));

    // The same when retention deletes the alert open on the page (here deleted by hand):
    // the next live refresh closes the panel and says why.
    b.focus(&b.wait(&format!("#alerts tr[data-id=\"{hash_alert}\"] button")));
    b.press(ENTER);
    b.wait_until("the hash alert open", |b| {
        b.text_of("#detail-h") == format!("Alert #{hash_alert}")
            && b.displayed(&b.find_all("#detail-body")[0])
    });
    rusqlite::Connection::open(dir.path().join("alerts.db"))
        .unwrap()
        .execute("DELETE FROM alerts WHERE id = ?1", [hash_alert])
        .unwrap();
    // Reinstating pushes an event, and so a refresh.
    api.call(
        "POST",
        "/api/v1/streams/marked/reinstate",
        Some(MODERATOR),
        "",
    );
    b.wait_until("the deleted open alert explained", |b| {
        b.text_of("#status")
            .contains(&format!("Alert #{hash_alert} is no longer in the store"))
            && !b.displayed(&b.find_all("#detail-body")[0])
    });
    // The halted-streams view: the deny list, a key that is not live included, and a halt
    // that no actuator carried out (this daemon has none) said to be so. Reinstate there.
    let (code, body) = api.call(
        "POST",
        "/api/v1/streams/live%2Felsewhere/halt",
        Some(MODERATOR),
        "",
    );
    assert_eq!(code, 200, "{body}");
    let row = "#halts tr[data-stream=\"live/elsewhere\"]";
    b.wait_until("the halted key listed", |b| b.text_of(row).contains("gone"));
    let text = b.text_of(row);
    assert!(
        text.contains("recorded only") && text.contains("mo"),
        "{text}"
    );
    b.screenshot(&shots.join("09-halted-streams.png"));
    b.click_css(&format!("{row} button.reinstate"));
    b.wait("#confirm-reason");
    b.press(ENTER);
    b.wait_until("the reinstatement from the halted view", |_| {
        let (_, h) = api.call("GET", "/api/v1/halts", Some(VIEWER), "");
        !h.to_string().contains("live/elsewhere")
    });
    b.wait_until("its row gone", |b| b.find_all(row).is_empty());
    for shot in [
        "01-sign-in.png",
        "02-viewer-queue.png",
        "03-alert-blurred.png",
        "04-alert-revealed.png",
        "05-alert-dismissed.png",
        "06-stream-halted.png",
        "07-audit-trail.png",
        "08-audit-first-page.png",
        "09-halted-streams.png",
    ] {
        let png = image::open(shots.join(shot)).unwrap();
        assert_eq!((png.width(), png.height()), (1366, 768), "{shot}");
    }
    drop(b);
    app.shutdown();
}
