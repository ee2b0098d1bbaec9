//! A real headless Chromium (Debian's `chromium`) driven through Debian's `chromedriver`
//! over the W3C WebDriver protocol, with a fresh profile. chromedriver runs on a free
//! loopback port in a process group of its own; the session is deleted and the whole group
//! (chromedriver and every Chromium process) stopped when the [`Browser`] is dropped.
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: super::Proc,
    base: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

/// An element found on the page.
#[derive(Clone, Debug)]
pub struct El(String);

impl Browser {
    /// Starts chromedriver and a headless Chromium with a 1366x768 window (a laptop).
    pub fn start() -> Browser {
        for bin in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            assert!(
                Path::new(bin).exists(),
                "{bin} missing: run scripts/setup.sh (it installs Debian's chromium and chromium-driver)"
            );
        }
        let port = super::free_port();
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let driver = super::Proc {
            child,
            what: "chromedriver".into(),
            image_shown: None,
        };
        let agent = super::api::agent(Duration::from_secs(60));
        let mut b = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            agent,
            _profile: tempfile::tempdir().unwrap(),
        };
        super::wait_until("chromedriver ready", Duration::from_secs(20), || {
            b.agent
                .get(format!("{}/status", b.base))
                .call()
                .ok()
                .filter(|r| r.status() == 200)
                .is_some()
        });
        let profile = b._profile.path().display().to_string();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-extensions",
                    "--window-size=1366,768", format!("--user-data-dir={profile}"),
                ],
            },
        }}});
        let session = b.raw("POST", "/session", Some(caps));
        let id = session["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {session}"))
            .to_string();
        b.base = format!("{}/session/{id}", b.base);
        // The viewport (not the window, which includes the browser's own bars) 1366x768.
        let inner = b.exec("return [window.innerWidth, window.innerHeight];", json!([]));
        let rect = b.raw("GET", "/window/rect", None);
        let (w, h) = (
            rect["width"].as_i64().unwrap() + 1366 - inner[0].as_i64().unwrap(),
            rect["height"].as_i64().unwrap() + 768 - inner[1].as_i64().unwrap(),
        );
        b.raw(
            "POST",
            "/window/rect",
            Some(json!({"width": w, "height": h})),
        );
        b
    }

    /// One WebDriver command: its `value`, or WebDriver's error.
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let url = format!("{}{path}", self.base);
        let (code, bytes) = super::api::send(
            &self.agent,
            method,
            &url,
            &[("Content-Type", "application/json")],
            &body,
        )?;
        let text = String::from_utf8_lossy(&bytes);
        if code != 200 {
            return Err(format!("{code} {text}"));
        }
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(v.get("value").cloned().unwrap_or(v))
    }

    /// [`Browser::cmd`], panicking with WebDriver's error.
    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.cmd(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    /// A command that may fail (an element that went stale, say): `None` on an error.
    fn try_cmd(&self, method: &str, path: &str, body: Option<Value>) -> Option<Value> {
        self.cmd(method, path, body).ok()
    }

    pub fn goto(&self, url: &str) {
        self.raw("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn find_all(&self, css: &str) -> Vec<El> {
        self.try_cmd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e[ELEMENT].as_str().map(|s| El(s.to_string())))
        .collect()
    }

    /// The first element matching `css` that is displayed, waiting up to 15 s for one.
    pub fn wait(&self, css: &str) -> El {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            for e in self.find_all(css) {
                if self.displayed(&e) {
                    return e;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no visible element '{css}'\n{}",
                self.diagnose()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits up to 15 s until `cond` holds.
    pub fn wait_until(&self, what: &str, mut cond: impl FnMut(&Browser) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !cond(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.diagnose()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The page's address, text and the browser's console log, for failure messages.
    pub fn diagnose(&self) -> String {
        let url = self.try_cmd("GET", "/url", None).unwrap_or_default();
        let text = self
            .try_cmd(
                "POST",
                "/execute/sync",
                Some(json!({"script": "return document.body ? document.body.innerText : document.documentElement.outerHTML;", "args": []})),
            )
            .unwrap_or_default();
        let log = self
            .try_cmd("POST", "/se/log", Some(json!({"type": "browser"})))
            .unwrap_or_default();
        format!(
            "page {url}:\n{}\nbrowser log: {log}",
            text.as_str().unwrap_or_default()
        )
    }

    pub fn displayed(&self, e: &El) -> bool {
        self.try_cmd("GET", &format!("/element/{}/displayed", e.0), None)
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    pub fn enabled(&self, e: &El) -> bool {
        self.raw("GET", &format!("/element/{}/enabled", e.0), None)
            .as_bool()
            .unwrap()
    }

    pub fn click(&self, e: &El) {
        self.raw("POST", &format!("/element/{}/click", e.0), Some(json!({})));
    }

    /// Clicks the first element matching `css`, finding it again if the page replaced it
    /// (tables are re-rendered on every live update) between finding and clicking.
    pub fn click_css(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let e = self.wait(css);
            if self
                .try_cmd("POST", &format!("/element/{}/click", e.0), Some(json!({})))
                .is_some()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "could not click '{css}'\n{}",
                self.diagnose()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Focuses the first element matching `css` (in the page, so it cannot go stale).
    pub fn focus_css(&self, css: &str) {
        let found = self.exec(
            "const e = document.querySelector(arguments[0]); if (e) e.focus(); return !!e;",
            json!([css]),
        );
        assert_eq!(found, true, "nothing matches '{css}'");
    }

    /// Whether the first element matching `css` is a control that is not disabled.
    pub fn enabled_css(&self, css: &str) -> bool {
        let v = self.exec(
            "const e = document.querySelector(arguments[0]); return e ? !e.disabled : null;",
            json!([css]),
        );
        v.as_bool()
            .unwrap_or_else(|| panic!("nothing matches '{css}'"))
    }

    pub fn focus(&self, e: &El) {
        self.exec("arguments[0].focus();", json!([{ ELEMENT: e.0 }]));
    }

    pub fn type_into(&self, e: &El, text: &str) {
        self.raw(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        );
    }

    pub fn text(&self, e: &El) -> String {
        self.try_cmd("GET", &format!("/element/{}/text", e.0), None)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The text of the first element matching `css` (empty when there is none).
    pub fn text_of(&self, css: &str) -> String {
        self.find_all(css)
            .first()
            .map(|e| self.text(e))
            .unwrap_or_default()
    }

    pub fn attr(&self, e: &El, name: &str) -> Option<String> {
        self.try_cmd("GET", &format!("/element/{}/attribute/{name}", e.0), None)
            .and_then(|v| v.as_str().map(str::to_string))
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its result; a
    /// returned promise is awaited.
    pub fn exec(&self, script: &str, args: Value) -> Value {
        self.raw(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Presses keys on whatever has the focus, one after the other (WebDriver key codes
    /// for special keys: "\u{E007}" is Enter, "\u{E004}" Tab).
    pub fn press(&self, keys: &str) {
        let mut actions = Vec::new();
        for k in keys.chars() {
            actions.push(json!({"type": "keyDown", "value": k.to_string()}));
            actions.push(json!({"type": "keyUp", "value": k.to_string()}));
        }
        self.raw(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        );
        self.raw("DELETE", "/actions", None);
    }

    /// The id attribute of the focused element (or its tag name when it has none).
    pub fn focused(&self) -> String {
        self.exec(
            "const e = document.activeElement; return e ? (e.id || e.className || e.tagName) : '';",
            json!([]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Saves a PNG of the window to `path`.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let b64 = self.raw("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends Chromium; then the group, in case anything is left.
        let _ = self.try_cmd("DELETE", "", None);
        let pgid = self.driver.pid();
        self.driver.stop();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status();
    }
}
