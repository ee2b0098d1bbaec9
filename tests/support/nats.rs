//! A real `nats-server -js` (Debian package, installed by scripts/setup.sh) on a loopback
//! port with its own store folder, and a consumer that reads back what a JetStream stream
//! holds. Stopped by its PID.
#![allow(dead_code)]

use futures_util::StreamExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NatsServer {
    pub port: u16,
    pub store: PathBuf,
    /// `--user` and `--pass`, when the server requires them.
    pub user: Option<(String, String)>,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts nats-server with JetStream on `port` (storing under `store`) and waits until
    /// it accepts connections.
    pub fn start(port: u16, store: &Path) -> NatsServer {
        Self::start_as(port, store, None)
    }

    /// The same, requiring `user` and `password` of every client.
    pub fn start_as(port: u16, store: &Path, user: Option<(&str, &str)>) -> NatsServer {
        let mut s = NatsServer {
            port,
            store: store.to_path_buf(),
            user: user.map(|(u, p)| (u.to_string(), p.to_string())),
            child: None,
        };
        // The port was free when picked, but another test may have bound it since (then
        // nats-server exits at once): try another.
        for _ in 0..5 {
            if s.try_start() {
                return s;
            }
            s.port = super::free_port();
        }
        panic!("nats-server did not start on any of 5 free ports");
    }

    /// Its URL, with the credentials when it requires them.
    pub fn url(&self) -> String {
        match &self.user {
            Some((u, p)) => format!("nats://{u}:{p}@127.0.0.1:{}", self.port),
            None => format!("nats://127.0.0.1:{}", self.port),
        }
    }

    /// Starts it again (same port, same store) after [`NatsServer::kill`].
    pub fn restart(&mut self) {
        assert!(
            self.try_start(),
            "nats-server did not start on port {}",
            self.port
        );
    }

    /// Starts it on `self.port`; false if it exited (the port was taken).
    fn try_start(&mut self) -> bool {
        assert!(self.child.is_none(), "already running");
        std::fs::create_dir_all(&self.store).unwrap();
        let child =
            Command::new("nats-server")
                .args([
                    "-js",
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-sd",
                ])
                .arg(&self.store)
                .args(self.user.iter().flat_map(|(u, p)| {
                    ["--user".to_string(), u.clone(), "--pass".into(), p.clone()]
                }))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("nats-server (scripts/setup.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Its own listener, not another process's on the same port: it is still running.
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                eprintln!("nats-server on port {} exited: {status}", self.port);
                self.child = None;
                return false;
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                std::thread::sleep(Duration::from_millis(100));
                if self.child.as_mut().unwrap().try_wait().unwrap().is_none() {
                    return true;
                }
                continue;
            }
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while c.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The bodies of every message in JetStream stream `stream` (empty if it does not exist),
/// read by a fresh consumer: what a subscriber of the alerts would receive.
pub fn consume_all(url: &str, stream: &str) -> Vec<serde_json::Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let js = jetstream(url).await;
        let Ok(s) = js.get_stream(stream).await else {
            return Vec::new();
        };
        let consumer = s
            .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
            .await
            .unwrap();
        let mut out = Vec::new();
        loop {
            let mut batch = consumer
                .fetch()
                .max_messages(100)
                .expires(Duration::from_millis(500))
                .messages()
                .await
                .unwrap();
            let before = out.len();
            while let Some(m) = batch.next().await {
                let m = m.unwrap();
                out.push(serde_json::from_slice(&m.payload).unwrap());
                m.ack().await.unwrap();
            }
            if out.len() == before {
                return out;
            }
        }
    })
}

/// A JetStream context on `url` (credentials in it given as the daemon gives them).
async fn jetstream(url: &str) -> async_nats::jetstream::Context {
    let (bare, auth) = streamguard::delivery::split_credentials(url);
    let client = auth
        .options()
        .connect(bare)
        .await
        .expect("connect to nats-server");
    async_nats::jetstream::new(client)
}

/// The duplicate window of JetStream stream `stream`.
pub fn duplicate_window(url: &str, stream: &str) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut s = jetstream(url).await.get_stream(stream).await.unwrap();
        s.info().await.unwrap().config.duplicate_window
    })
}
