//! Test harness for the ingest tests: a real nginx-rtmp on loopback with free ports, real
//! gst-launch-1.0 publishers, and a small HTTP client. Every process is stopped by its PID.
#![allow(dead_code)]

pub mod api;
pub mod browser;
pub mod nats;
pub mod webhook;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `cond` every 100 ms until it holds or `timeout` passes.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of the metric line `name value` in a Prometheus text (`name` with its labels,
/// if any); panics naming it when there is none.
pub fn metric<T: std::str::FromStr>(text: &str, name: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
        .parse()
        .unwrap()
}

/// GET; returns status and body.
pub fn get(url: &str) -> (u16, String) {
    request("GET", url, "")
}

/// POST with a body; returns status and body.
pub fn post(url: &str, body: &str) -> (u16, String) {
    request("POST", url, body)
}

fn request(method: &str, url: &str, body: &str) -> (u16, String) {
    let (code, bytes) = api::send(&api::agent(Duration::from_secs(5)), method, url, &[], body)
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    (code, String::from_utf8(bytes).unwrap())
}

/// A process stopped (SIGTERM, then SIGKILL) and reaped when dropped.
pub struct Proc {
    pub child: Child,
    pub what: String,
    /// For a publisher of the demo image: when its first image frame entered the encoder.
    pub image_shown: Option<std::sync::Arc<std::sync::Mutex<Option<Instant>>>>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited (and with what status).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    pub fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.exited().is_none() {
            // Each process leads its own group (nginx's worker included): kill the group.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.pid())])
                .status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// nginx with the RTMP module on free loopback ports, with its own prefix folder.
pub struct Nginx {
    pub rtmp_port: u16,
    pub http_port: u16,
    pub dir: PathBuf,
    proc: Option<Proc>,
}

impl Nginx {
    /// Writes the config; `daemon_port` is where the callbacks go (None: no callbacks).
    pub fn new(dir: &Path, daemon_port: Option<u16>) -> Nginx {
        let (rtmp_port, http_port) = (free_port(), free_port());
        let dir = dir.join("nginx");
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        let callbacks = daemon_port.map_or(String::new(), |p| {
            format!(
                "notify_method get;\n      on_publish http://127.0.0.1:{p}/ingest/nginx/on_publish;\n      on_publish_done http://127.0.0.1:{p}/ingest/nginx/on_publish_done;"
            )
        });
        let conf = format!(
            r#"load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/logs/error.log info;
events {{ worker_connections 256; }}
rtmp {{
  server {{
    listen 127.0.0.1:{rtmp_port};
    chunk_size 4096;
    application live {{
      live on;
      record off;
      idle_streams off;
      {callbacks}
    }}
  }}
}}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{http_port};
    location /stat {{ rtmp_stat all; }}
    location /control {{ rtmp_control all; }}
  }}
}}
"#,
            dir = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let mut n = Nginx {
            rtmp_port,
            http_port,
            dir,
            proc: None,
        };
        n.start();
        n
    }

    pub fn start(&mut self) {
        let child = Command::new("nginx")
            .process_group(0)
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .arg("-p")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (scripts/setup.sh installs it)");
        self.proc = Some(Proc {
            child,
            what: "nginx".into(),
            image_shown: None,
        });
        let url = format!("http://127.0.0.1:{}/stat", self.http_port);
        wait_until("nginx to listen", Duration::from_secs(10), || {
            api::send(&api::agent(Duration::from_secs(5)), "GET", &url, &[], "").is_ok()
        });
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
    }

    pub fn url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.rtmp_port)
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a synthetic publisher sends.
pub enum Content {
    /// Test pattern only.
    Pattern,
    /// Test pattern, then the demo image from `at_s` seconds on, for `for_s` seconds.
    DemoImageAt { at_s: u32, for_s: u32 },
    /// AAC audio only: not H.264 video.
    AudioOnly,
}

/// Publishes to `url` in real time with gst-launch-1.0 (x264enc, 2 s GOP at 30 fps).
pub fn publish(url: &str, content: Content) -> Proc {
    let enc = "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=1000 \
               ! video/x-h264,profile=baseline ! h264parse";
    let caps = "video/x-raw,format=I420,width=640,height=360,framerate=30/1";
    let sink = format!("flvmux streamable=true ! rtmp2sink location=\"{url}\" async-connect=false");
    let desc = match content {
        Content::Pattern => {
            format!("videotestsrc is-live=true pattern=ball ! {caps} ! {enc} ! {sink}")
        }
        Content::DemoImageAt { at_s, for_s } => {
            let img = repo().join("config/demo-image.png");
            format!(
                "videotestsrc pattern=ball num-buffers={} ! {caps} ! parts. \
                 filesrc location=\"{}\" ! pngdec ! videoconvert ! videoscale \
                   ! imagefreeze num-buffers={} ! {caps},pixel-aspect-ratio=1/1 ! parts. \
                 videotestsrc pattern=ball ! {caps} ! parts. \
                 concat name=parts ! identity name=mark silent=false sync=true ! {enc} ! {sink}",
                at_s * 30,
                img.display(),
                for_s * 30
            )
        }
        Content::AudioOnly => {
            format!("audiotestsrc is-live=true ! audioconvert ! avenc_aac ! aacparse ! {sink}")
        }
    };
    let marks = matches!(content, Content::DemoImageAt { .. });
    let args: Vec<String> = shell_words(&desc);
    let mut child = Command::new("gst-launch-1.0")
        .process_group(0)
        .arg(if marks { "-v" } else { "-q" })
        .args(&args)
        .stdout(if marks { Stdio::piped() } else { Stdio::null() })
        .stderr(Stdio::null())
        .spawn()
        .expect("gst-launch-1.0");
    // With -v, the `mark` identity prints every event and frame it passes, frames in real
    // time. concat starts each part with a new segment (and restarts timestamps), so the
    // first frame after the second segment event is the image's first frame.
    let image_shown = marks.then(|| {
        let shown = std::sync::Arc::new(std::sync::Mutex::new(None));
        let (out, s2) = (child.stdout.take().unwrap(), shown.clone());
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut segments = 0;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if !line.contains("GstIdentity:mark: last-message") {
                    continue;
                }
                if line.contains("type: segment") {
                    segments += 1;
                } else if segments >= 2 && line.contains("= chain") {
                    let mut s = s2.lock().unwrap();
                    if s.is_none() {
                        *s = Some(Instant::now());
                    }
                }
            }
        });
        shown
    });
    Proc {
        child,
        what: format!("publisher {url}"),
        image_shown,
    }
}

/// Splits a pipeline description into arguments, honouring double quotes.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
