//! Logs and metrics as an operator's tools read them (issue 18, item 3): JSON logs parse
//! line by line, text logs carry no colour codes when stderr is not a terminal, `*_total`
//! counters never go down when a stream ends, and `/metrics` passes `promtool check metrics`
//! (from Debian's `prometheus` package, which scripts/setup.sh unpacks into .tools/).
mod support;

use std::process::Command;
use std::time::Duration;
use streamguard::app::App;
use streamguard::config::Source;
use support::{get, repo, wait_until};

/// `streamguard run` on one short synthetic stream (it exits when the stream ends), with
/// `log_format`; returns its stderr.
fn run_logs(log_format: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[daemon]\nlog_format = \"{log_format}\"\n[store]\npath = \"{db}\"\n[http]\nlisten = \"\"\n\
         [[banks]]\nname = \"demo\"\npath = \"{bank}\"\n\
         [[streams]]\nid = \"s\"\npipeline = \"testsrc-image\"\n\
         params = {{ image = \"{img}\", before = \"60\", show = \"45\", after = \"60\", realtime = \"false\" }}\n",
        db = dir.path().join("a.db").display(),
        bank = repo().join("config/demo-bank.txt").display(),
        img = repo().join("config/demo-image.png").display(),
    );
    std::fs::write(dir.path().join("c.toml"), config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_streamguard"))
        .args(["run", "--config", "c.toml"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        // GStreamer's own debug output goes to stderr beside ours: none of it here.
        .env("GST_DEBUG", "0")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{text}");
    text
}

#[test]
fn json_logs_are_one_object_a_line_and_text_logs_have_no_colour_codes_in_a_file() {
    let text = run_logs("json");
    let mut messages = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        assert!(
            v["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("streamguard")),
            "{line}"
        );
        messages.push(
            v["fields"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        if v["fields"]["message"] == "stream stopped" {
            // Fields, not a debug dump of a struct.
            assert!(
                v["fields"]["units_received"].as_u64() >= Some(165),
                "{line}"
            );
            assert!(v["fields"]["frames_analysed"].is_u64(), "{line}");
        }
    }
    for want in ["bank loaded", "alert raised", "stream stopped"] {
        assert!(
            messages.iter().any(|m| m == want),
            "no '{want}' in {messages:?}"
        );
    }
    let text = run_logs("text");
    assert!(text.contains("alert raised"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log written to a pipe: {text}"
    );
    assert!(!text.contains("StatsSnapshot"), "{text}");
}

/// The number after `name ` in a metrics text.
fn value(metrics: &str, name: &str) -> f64 {
    support::metric(metrics, name)
}

#[test]
fn counters_never_go_down_when_a_stream_ends_and_promtool_accepts_the_text() {
    let dir = tempfile::tempdir().unwrap();
    // Discovered streams run a synthetic pipeline here (no nginx needed): a publish starts
    // one, its publish-done forgets it.
    let config = format!(
        "[store]\npath = \"{db}\"\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [[banks]]\nname = \"demo\"\npath = \"{bank}\"\n\
         [ingest]\nserver = \"nginx-rtmp\"\napps = [\"live\"]\nstat_url = \"\"\npipeline = \"testsrc-image\"\n\
         params = {{ image = \"{img}\", before = \"60\", show = \"45\", after = \"60\", realtime = \"false\" }}\n",
        db = dir.path().join("a.db").display(),
        bank = repo().join("config/demo-bank.txt").display(),
        img = repo().join("config/demo-image.png").display(),
    );
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config).unwrap();
    let app = App::start(&Source::File(path).load_with_env(Vec::new()).unwrap()).unwrap();
    let base = format!("http://{}", app.http_addr().unwrap());
    let metrics = || get(&format!("{base}/metrics")).1;
    let before = value(&metrics(), "streamguard_units_received_total");

    let (code, body) = get(&format!("{base}/ingest/nginx/on_publish?app=live&name=a"));
    assert_eq!(code, 200, "{body}");
    wait_until("the stream's 165 units", Duration::from_secs(60), || {
        let (_, s) = get(&format!("{base}/api/v1/streams"));
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        v["streams"][0]["units_received"].as_u64() >= Some(165)
    });
    let m1 = metrics();
    let during = value(&m1, "streamguard_units_received_total");
    assert!(during >= before + 165.0, "{before} -> {during}");
    let matches = value(&m1, "streamguard_matches_total");
    assert!(matches >= 1.0, "the demo image matched");

    let (code, _) = get(&format!(
        "{base}/ingest/nginx/on_publish_done?app=live&name=a"
    ));
    assert_eq!(code, 200);
    let (_, s) = get(&format!("{base}/api/v1/streams"));
    assert!(s.contains("\"streams\":[]"), "forgotten: {s}");
    let m2 = metrics();
    assert!(
        value(&m2, "streamguard_units_received_total") >= during,
        "went down: {m2}"
    );
    assert!(
        value(&m2, "streamguard_matches_total") >= matches,
        "went down: {m2}"
    );
    let build = format!(
        "streamguard_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value(&m2, &build), 1.0);
    assert!(value(&m2, "process_resident_memory_bytes") > 1e6);
    assert!(value(&m2, "process_open_fds") >= 3.0);

    let mut promtool = Command::new(repo().join(".tools/promtool"))
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (scripts/setup.sh puts it in .tools/)");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(m2.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    app.shutdown();
}
