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
    /// Starts nats-server with JetStream on a port of its own choosing (storing under
    /// `store`) and waits until it listens: the port is read back from the file nats-server
    /// writes once it has bound it, so no other process can have taken it in between.
    pub fn start(store: &Path) -> NatsServer {
        Self::start_as(store, None)
    }

    /// The same, requiring `user` and `password` of every client.
    pub fn start_as(store: &Path, user: Option<(&str, &str)>) -> NatsServer {
        let mut s = NatsServer {
            port: 0,
            store: store.to_path_buf(),
            user: user.map(|(u, p)| (u.to_string(), p.to_string())),
            child: None,
        };
        s.spawn(None);
        s
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
        self.spawn(Some(self.port));
    }

    /// Runs nats-server on `port` (`None`: any free one) and waits for its ports file.
    fn spawn(&mut self, port: Option<u16>) {
        assert!(self.child.is_none(), "already running");
        std::fs::create_dir_all(&self.store).unwrap();
        let ports_dir = self.store.with_extension("ports");
        std::fs::create_dir_all(&ports_dir).unwrap();
        let p = port.map_or("-1".to_string(), |p| p.to_string());
        let mut child =
            Command::new("nats-server")
                .args(["-js", "-a", "127.0.0.1", "-p", &p, "-sd"])
                .arg(&self.store)
                .arg("--ports_file_dir")
                .arg(&ports_dir)
                .args(self.user.iter().flat_map(|(u, p)| {
                    ["--user".to_string(), u.clone(), "--pass".into(), p.clone()]
                }))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("nats-server (scripts/setup.sh installs it)");
        let file = ports_dir.join(format!("nats-server_{}.ports", child.id()));
        let deadline = Instant::now() + Duration::from_secs(10);
        let bound = loop {
            // {"nats":["nats://127.0.0.1:PORT"]}, written once the listener is bound.
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let port = text
                .split("nats://127.0.0.1:")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .and_then(|n| n.parse::<u16>().ok());
            if let Some(port) = port {
                break port;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("nats-server (port {p}) exited: {status}");
            }
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        self.port = bound;
        self.child = Some(child);
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
