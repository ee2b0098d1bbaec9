//! The moderation API over real HTTP with bearer tokens: roles, alert transitions, the audit
//! log, and bad input (malformed JSON, unknown ids, wrong transitions, oversized bodies,
//! the wrong role) refused with a clear 4xx and nothing changed. The alert comes from a real
//! GStreamer stream showing the demo image.
mod support;

use std::time::Duration;
use streamguard::app::App;
use streamguard::config::Source;
use streamguard::moderation::store::AlertStore;
use support::api::Api;
use support::repo;

const VIEWER: &str = "viewer-token-for-tests-0001";
const MODERATOR: &str = "moderator-token-for-tests-0002";
const ADMIN: &str = "admin-token-for-tests-0003";

/// Starts the daemon with `settings`, an HTTP server on a free loopback port (with the
/// `[http]` keys `http`) with viewer, moderator and admin tokens, and one stream `id` showing `image` from 2 s to 3.5 s; waits until
/// the stream has ended.
fn start(
    dir: &std::path::Path,
    settings: &str,
    http: &str,
    id: &str,
    image: &std::path::Path,
) -> (App, Api) {
    let config = format!(
        "{settings}[http]\nlisten = \"127.0.0.1:0\"\n{http}\
         [[http.tokens]]\nname = \"vera\"\nrole = \"viewer\"\ntoken = \"{VIEWER}\"\n\
         [[http.tokens]]\nname = \"mo\"\nrole = \"moderator\"\ntoken = \"{MODERATOR}\"\n\
         [[http.tokens]]\nname = \"ada\"\nrole = \"admin\"\ntoken = \"{ADMIN}\"\n\
         [[streams]]\nid = \"{id}\"\npipeline = \"testsrc-image\"\n\
         params = {{ image = \"{img}\", before = \"60\", show = \"45\", after = \"60\", realtime = \"false\" }}\n",
        img = image.display(),
    );
    let path = dir.join("c.toml");
    std::fs::write(&path, config).unwrap();
    let cfg = Source::File(path).load_with_env(Vec::new()).unwrap();
    let app = App::start(&cfg).unwrap();
    assert!(app.wait_streams_finished(Duration::from_secs(120)));
    let api = Api::new(format!("http://{}", app.http_addr().unwrap()));
    (app, api)
}

/// The id of the first alert `list` (an alerts URL) returns, waiting up to 10 s for one.
fn first_alert(api: &Api, list: &str) -> i64 {
    api.first_alert(list, VIEWER, Duration::from_secs(10))
}

/// Mean absolute difference between horizontally adjacent pixels: lower when blurred.
fn sharpness(img: &image::GrayImage) -> f64 {
    let (w, h) = img.dimensions();
    let mut total = 0u64;
    for y in 0..h {
        for x in 1..w {
            total += img.get_pixel(x, y)[0].abs_diff(img.get_pixel(x - 1, y)[0]) as u64;
        }
    }
    total as f64 / ((w - 1) * h) as f64
}

#[test]
fn tokens_roles_transitions_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alerts.db");
    // A webhook sink that is down (nothing listens on its port): messages wait in the outbox.
    // Its URL carries credentials and a token, which no error may show.
    let settings = format!(
        "[[banks]]\nname = \"demo\"\npath = \"{bank}\"\n[store]\npath = \"{db}\"\n\
         [[sinks]]\nname = \"down\"\nkind = \"webhook\"\nurl = \"http://hook-user:hook-pw@127.0.0.1:{port}/in/tok-1234\"\n\
         secret = \"s\"\ntimeout_ms = 1000\nbackoff_initial_ms = 100\nbackoff_max_ms = 200\n",
        bank = repo().join("config/demo-bank.txt").display(),
        db = db.display(),
        port = support::free_port(),
    );
    let (app, api) = start(
        dir.path(),
        &settings,
        "max_body_bytes = 1024\n",
        "with-image",
        &repo().join("config/demo-image.png"),
    );
    let id = first_alert(&api, "/api/v1/alerts");
    let state = |api: &Api| {
        api.call("GET", &format!("/api/v1/alerts/{id}"), Some(VIEWER), "")
            .1["state"]
            .clone()
    };

    // No token, an unknown token: 401; the viewer reads but cannot act or halt: 403.
    assert_eq!(api.call("GET", "/api/v1/alerts", None, "").0, 401);
    assert_eq!(
        api.call(
            "GET",
            "/api/v1/streams",
            Some("not-a-real-token-at-all"),
            ""
        )
        .0,
        401
    );
    assert_eq!(api.call("GET", "/api/v1/streams", Some(VIEWER), "").0, 200);
    let (code, body) = api.call("POST", "/api/v1/streams/with-image/halt", Some(VIEWER), "");
    assert_eq!(code, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("role viewer"),
        "{body}"
    );
    let (code, _) = api.call(
        "POST",
        &format!("/api/v1/alerts/{id}/dismiss"),
        Some(VIEWER),
        "",
    );
    assert_eq!(code, 403);
    assert_eq!(state(&api), "open");

    // Bad input: each a 4xx, nothing changed.
    let bad: [(&str, String, &str, u16); 7] = [
        (
            "POST",
            format!("/api/v1/alerts/{id}/claim"),
            "{\"reason\": ",
            400,
        ),
        (
            "POST",
            format!("/api/v1/alerts/{id}/claim"),
            "{\"why\": \"x\"}",
            400,
        ),
        ("POST", "/api/v1/alerts/999999/claim".into(), "", 404),
        ("POST", "/api/v1/alerts/abc/claim".into(), "", 400),
        ("POST", format!("/api/v1/alerts/{id}/escalate"), "", 404),
        ("GET", "/api/v1/alerts?state=sleeping".into(), "", 400),
        ("GET", "/api/v1/alerts?limit=0".into(), "", 400),
    ];
    for (method, p, body, want) in &bad {
        let (code, resp) = api.call(method, p, Some(MODERATOR), body);
        assert_eq!(code, *want, "{method} {p} {body}: {resp}");
        assert!(resp["error"].is_string(), "{method} {p}: a message: {resp}");
    }
    let big = format!("{{\"reason\": \"{}\"}}", "x".repeat(4096));
    let (code, _) = api.call(
        "POST",
        &format!("/api/v1/alerts/{id}/claim"),
        Some(MODERATOR),
        &big,
    );
    assert_eq!(code, 413, "oversized body");
    assert_eq!(state(&api), "open", "nothing changed by bad requests");

    // Live updates: a viewer's event stream sees the moderator's claim as it happens.
    assert_eq!(api.call("GET", "/api/v1/events", None, "").0, 401);
    let addr = app.http_addr().unwrap();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel::<String>();
    let listener = std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /api/v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {VIEWER}\r\n\r\n"
        )
        .unwrap();
        let mut lines = BufReader::new(s).lines();
        let status = lines.next().unwrap().unwrap();
        seen_tx.send(status).unwrap();
        for line in lines.map_while(Result::ok) {
            if line.starts_with("data:") || line.starts_with("event:") {
                let done = line.contains("\"action\":\"claim\"");
                seen_tx.send(line).unwrap();
                if done {
                    return;
                }
            }
        }
    });
    let status = seen_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(status.contains("200"), "{status}");
    std::thread::sleep(Duration::from_millis(200)); // subscribed before the claim

    // The moderator claims, cannot claim twice, dismisses, cannot dismiss twice.
    let (code, a) = api.call(
        "POST",
        &format!("/api/v1/alerts/{id}/claim"),
        Some(MODERATOR),
        "{\"reason\": \"looking\"}",
    );
    assert_eq!(code, 200, "{a}");
    assert_eq!(
        (a["state"].as_str(), a["claimed_by"].as_str()),
        (Some("claimed"), Some("token:mo"))
    );
    assert_eq!(
        api.call(
            "POST",
            &format!("/api/v1/alerts/{id}/claim"),
            Some(MODERATOR),
            ""
        )
        .0,
        409
    );
    listener.join().unwrap();
    let events: Vec<String> = seen_rx.try_iter().collect();
    assert!(
        events.iter().any(|l| l == "event: alert")
            && events
                .iter()
                .any(|l| l.contains("\"state\":\"claimed\"") && l.contains("token:mo")),
        "{events:?}"
    );
    let (code, a) = api.call(
        "POST",
        &format!("/api/v1/alerts/{id}/dismiss"),
        Some(MODERATOR),
        "{\"reason\": \"synthetic test image\"}",
    );
    assert_eq!((code, a["state"].as_str()), (200, Some("dismissed")), "{a}");
    let (code, e) = api.call(
        "POST",
        &format!("/api/v1/alerts/{id}/dismiss"),
        Some(MODERATOR),
        "",
    );
    assert_eq!(code, 409, "{e}");
    assert!(e["error"].as_str().unwrap().contains("is dismissed"), "{e}");
    let (_, list) = api.call("GET", "/api/v1/alerts?state=dismissed", Some(VIEWER), "");
    assert_eq!(list["alerts"].as_array().unwrap().len(), 1);
    let (_, list) = api.call("GET", "/api/v1/alerts?state=open", Some(VIEWER), "");
    assert!(list["alerts"].as_array().unwrap().is_empty());

    // The audit log: both actions, by the token's name, with the reasons; newest first.
    let (code, audit) = api.call("GET", "/api/v1/audit?stream=with-image", Some(VIEWER), "");
    assert_eq!(code, 200);
    let rows: Vec<(String, String, String)> = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["event"].as_str().unwrap().to_string(),
                r["actor"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "alert_dismissed".to_string(),
                "token:mo".to_string(),
                "synthetic test image".to_string()
            ),
            (
                "alert_claimed".to_string(),
                "token:mo".to_string(),
                "looking".to_string()
            ),
        ]
    );

    // One alert's history, and paging back by entry id.
    let (_, hist) = api.call(
        "GET",
        &format!("/api/v1/audit?alert={id}"),
        Some(VIEWER),
        "",
    );
    let hist = hist["audit"].as_array().unwrap().clone();
    assert_eq!(hist.len(), 2, "{hist:?}");
    assert!(hist.iter().all(|e| e["alert_id"] == id), "{hist:?}");
    let (_, page) = api.call(
        "GET",
        "/api/v1/audit?stream=with-image&limit=1",
        Some(VIEWER),
        "",
    );
    let newest = &page["audit"][0];
    assert_eq!(newest["event"], "alert_dismissed");
    let (_, page) = api.call(
        "GET",
        &format!(
            "/api/v1/audit?stream=with-image&limit=1&before={}",
            newest["id"]
        ),
        Some(VIEWER),
        "",
    );
    assert_eq!(page["audit"][0]["event"], "alert_claimed", "{page}");
    for bad in ["alert=x", "before=later", "limit=0", "limit=1001"] {
        let (code, e) = api.call("GET", &format!("/api/v1/audit?{bad}"), Some(VIEWER), "");
        assert_eq!(code, 400, "{bad}: {e}");
    }

    // The outbox: the sink is down, so the alert and both actions wait in the order they
    // will be sent, the first with its failed attempts and the error.
    let outbox = |q: &str| -> Vec<serde_json::Value> {
        let (code, body) = api.call("GET", &format!("/api/v1/outbox{q}"), Some(VIEWER), "");
        assert_eq!(code, 200, "{body}");
        body["outbox"].as_array().unwrap().clone()
    };
    support::wait_until("two failed attempts", Duration::from_secs(15), || {
        outbox("")[0]["attempts"].as_u64() >= Some(2)
    });
    let waiting = outbox("");
    let events: Vec<&str> = waiting
        .iter()
        .map(|m| m["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["alert.raised", "alert.claimed", "alert.dismissed"],
        "{waiting:?}"
    );
    assert!(
        waiting
            .iter()
            .all(|m| m["sink"] == "down" && m["alert_id"] == id)
    );
    let error = waiting[0]["last_error"].as_str().unwrap();
    assert!(error.starts_with("http://127.0.0.1:"), "{error}");
    assert!(
        !error.contains("hook-pw") && !error.contains("tok-1234"),
        "{error}"
    );
    assert_eq!(waiting[1]["attempts"], 0, "held back behind the first");
    assert_eq!(outbox("?sink=down&limit=1").len(), 1);
    assert!(outbox("?sink=elsewhere").is_empty());
    assert_eq!(api.call("GET", "/api/v1/outbox", None, "").0, 401);
    assert_eq!(
        api.call("GET", "/api/v1/outbox?limit=0", Some(VIEWER), "")
            .0,
        400
    );

    // Giving up on the refused first message (an admin, with a reason): it leaves unsent,
    // the audit log says who and why, and the next message is first.
    let discard = format!("/api/v1/outbox/{}/discard", waiting[0]["id"]);
    let reason = r#"{"reason": "the receiver rejects it"}"#;
    assert_eq!(api.call("POST", &discard, Some(MODERATOR), reason).0, 403);
    for no_reason in ["", r#"{"reason": " "}"#] {
        let (code, e) = api.call("POST", &discard, Some(ADMIN), no_reason);
        assert_eq!(code, 400, "{no_reason}: {e}");
        assert!(e["error"].as_str().unwrap().contains("reason"), "{e}");
    }
    assert_eq!(outbox("").len(), 3, "a refused request changes nothing");
    let (code, gone) = api.call("POST", &discard, Some(ADMIN), reason);
    assert_eq!(code, 200, "{gone}");
    assert_eq!(gone["msg_id"], waiting[0]["msg_id"]);
    assert_eq!(gone["event"], "alert.raised");
    let left = outbox("");
    assert_eq!(left.len(), 2);
    assert_eq!(left[0]["event"], "alert.claimed");
    let (code, e) = api.call("POST", &discard, Some(ADMIN), reason);
    assert_eq!(code, 404, "{e}");
    assert!(e["error"].as_str().unwrap().contains("no message"), "{e}");
    let (code, _) = api.call("POST", "/api/v1/outbox/x/discard", Some(ADMIN), reason);
    assert_eq!(code, 400);
    let (_, page) = api.call(
        "GET",
        &format!("/api/v1/audit?alert={id}&limit=1"),
        Some(VIEWER),
        "",
    );
    let entry = &page["audit"][0];
    assert_eq!(entry["event"], "message_discarded", "{page}");
    assert_eq!(entry["actor"], "token:ada");
    assert_eq!(entry["reason"], "the receiver rejects it");
    assert!(
        entry["detail"].as_str().unwrap().contains("alert.raised"),
        "{entry}"
    );

    // /metrics: a viewer token, the Prometheus text format with what happened above.
    assert_eq!(api.call("GET", "/metrics", None, "").0, 401);
    let (code, text) = api.call("GET", "/metrics", Some(VIEWER), "");
    assert_eq!(code, 200);
    let text = text.as_str().unwrap().to_string();
    let value = |name: &str| -> f64 { support::metric(&text, name) };
    assert_eq!(value("streamguard_streams{state=\"ended\"}"), 1.0);
    assert!(value("streamguard_frames_analysed_total") >= 3.0);
    // Over the process's life: this test process runs another daemon beside this one.
    assert!(value("streamguard_units_received_total") >= 165.0);
    assert_eq!(
        value("streamguard_alerts{reason=\"hash_match\",action=\"review\",state=\"dismissed\"}"),
        1.0
    );
    assert!(value("streamguard_analysis_latency_seconds_count") >= 3.0);
    assert!(value("streamguard_detect_latency_seconds_count") >= 1.0);
    assert!(text.contains("# TYPE streamguard_analysis_latency_seconds histogram"));

    // The OpenAPI document: served without a token, and every path it lists is routed (a
    // route that does not exist gets axum's empty 404, not a JSON error).
    let (code, doc) = api.call("GET", "/api/v1/openapi.json", None, "");
    assert_eq!(code, 200);
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 8, "{paths:?}");
    for (path, ops) in paths {
        if path == "/api/v1/events" {
            continue; // an endless stream, checked above
        }
        let concrete = path
            .replace("/alerts/{id}", &format!("/alerts/{id}"))
            .replace("/streams/{id}", "/streams/with-image")
            .replace("{action}", "confirm");
        for method in ops.as_object().unwrap().keys() {
            let (code, body) = api.call(&method.to_uppercase(), &concrete, Some(VIEWER), "");
            assert!(
                code != 404 && code != 405 || body["error"].is_string(),
                "{method} {path} is documented but not routed ({code} {body})"
            );
        }
    }

    // A key no publish could have (path traversal, an app not watched, an empty name) is
    // refused like the ingest callbacks refuse it, and nothing is halted or sent.
    for (raw, want) in [
        ("..%2F..%2Fetc", 400),
        ("elsewhere%2Fk", 404),
        ("live%2F", 400),
        ("live%2Fa%3Fb", 400),
        ("live%2F%20k", 400),
    ] {
        let (code, body) = api.call(
            "POST",
            &format!("/api/v1/streams/{raw}/halt"),
            Some(MODERATOR),
            "",
        );
        assert_eq!(code, want, "{raw}: {body}");
    }
    // A key a publisher could use may be halted ahead of its publish.
    let (code, body) = api.call(
        "POST",
        "/api/v1/streams/live%2Fnext/halt",
        Some(MODERATOR),
        "",
    );
    assert_eq!(code, 200, "{body}");

    app.shutdown();
    let store = AlertStore::open(&db).unwrap();
    assert_eq!(store.alerts().unwrap()[0].state, "dismissed");
    let halted = store.halted_streams().unwrap();
    assert!(halted.contains(&"live/next".to_string()), "{halted:?}");
    assert!(
        !halted
            .iter()
            .any(|h| h.contains("etc") || h.starts_with("elsewhere") || h.starts_with("live/a")),
        "{halted:?}"
    );
}

#[test]
fn classifier_evidence_is_blurred_unless_a_moderator_reveals_it() {
    let dir = tempfile::tempdir().unwrap();
    let settings = format!(
        "[store]\npath = \"{db}\"\n[classify]\nmodels = [\"{model}\"]\nruntime = \"{rt}\"\n",
        db = dir.path().join("alerts.db").display(),
        model = repo().join("models/marker").display(),
        rt = repo()
            .join(".onnxruntime/libonnxruntime.so.1.31.1")
            .display(),
    );
    let (app, api) = start(
        dir.path(),
        &settings,
        "",
        "marked",
        &repo().join("config/demo-marker.png"),
    );
    let id = first_alert(&api, "/api/v1/alerts?reason=classifier");
    let evidence = format!("/api/v1/alerts/{id}/evidence");
    let (code, blurred) = api.bytes(&evidence, VIEWER);
    assert_eq!(code, 200);
    let blurred = image::load_from_memory(&blurred).unwrap().into_luma8();
    assert_eq!(
        blurred.dimensions(),
        (96, 54),
        "greyscale, 96 wide, the frame's aspect"
    );
    // The viewer may not reveal it; the moderator may, and that is audited.
    let (code, _) = api.bytes(&format!("{evidence}?reveal=true"), VIEWER);
    assert_eq!(code, 403);
    let (code, sharp) = api.bytes(&format!("{evidence}?reveal=true"), MODERATOR);
    assert_eq!(code, 200);
    let sharp = image::load_from_memory(&sharp).unwrap().into_luma8();
    let (b, s) = (sharpness(&blurred), sharpness(&sharp));
    println!("sharpness: blurred {b:.2}, revealed {s:.2}");
    assert!(b * 2.0 < s, "served blurred: {b} vs {s}");
    let (_, audit) = api.call("GET", "/api/v1/audit?stream=marked", Some(VIEWER), "");
    let reveals: Vec<_> = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "evidence_revealed")
        .collect();
    assert_eq!(reveals.len(), 1, "{audit}");
    assert_eq!(reveals[0]["actor"], "token:mo");
    assert_eq!(reveals[0]["alert_id"], id);
    // No evidence for an alert that does not exist; bad query: 400.
    assert_eq!(api.bytes("/api/v1/alerts/999999/evidence", VIEWER).0, 404);
    assert_eq!(
        api.bytes(&format!("{evidence}?reveal=maybe"), VIEWER).0,
        400
    );
    app.shutdown();
}
