//! Issue 21, defect 2: idle and half-sent connections once used up the daemon's file
//! descriptors, and nginx's `on_publish` then failed, so nginx refused every new stream.
//! Here a real daemon (in-process, with the nginx-rtmp control plane) is flooded from one
//! loopback address (127.0.0.2) while nginx's callbacks come from another (127.0.0.1), and
//! a second flood from 127.0.0.1 itself fills the API port while the callbacks-only
//! listener (`http.callback_listen`) keeps answering.
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use streamguard::app::App;
use streamguard::config::Source;

/// Open file descriptors of this process (the daemon runs in it).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Lets this process hold a few thousand sockets (both ends of each flood connection).
fn raise_fd_limit() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut l), 0);
        l.rlim_cur = l.rlim_max.min(65_536);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &l), 0);
    }
}

/// A TCP connection to `to` from source address `from` (any port).
fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let src: std::net::Ipv4Addr = from.parse().unwrap();
    let std::net::IpAddr::V4(dst) = to.ip() else {
        unreachable!()
    };
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let sa = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(ip).to_be(),
            },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as u32;
        let s = sa(src, 0);
        let d = sa(dst, to.port());
        let stream = TcpStream::from_raw_fd(fd);
        if libc::bind(fd, &s as *const _ as *const libc::sockaddr, len) != 0
            || libc::connect(fd, &d as *const _ as *const libc::sockaddr, len) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// One request on a fresh connection from `from`; the status, or why there was none.
fn request_from(from: &str, to: SocketAddr, req: &str) -> Result<u16, String> {
    let mut s = connect_from(from, to).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    text.get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no answer: {text:?}"))
}

fn on_publish(name: &str) -> String {
    format!(
        "GET /ingest/nginx/on_publish?app=live&name={name}&addr=127.0.0.1&clientid=1 HTTP/1.1\r\n\
         Host: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
}

/// Reads until the server closes `s` (EOF, a reset, or a response): true if it did within
/// `within`.
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a 408 response, then the close
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

/// Both tests count this process's descriptors and connections: one at a time.
static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Whether the server still holds `s` open (nothing to read yet, no EOF).
fn still_open(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    let open = matches!((&*s).read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    open
}

fn start(dir: &std::path::Path, http: &str) -> App {
    let config = format!(
        "[store]\npath = \"{db}\"\n[ingest]\nserver = \"nginx-rtmp\"\napps = [\"live\"]\nstat_url = \"\"\n\
         [actuator]\nkind = \"none\"\n[http]\nlisten = \"127.0.0.1:0\"\n{http}",
        db = dir.join("alerts.db").display(),
    );
    let path = dir.join("c.toml");
    std::fs::write(&path, config).unwrap();
    App::start(&Source::File(path).load_with_env(Vec::new()).unwrap()).unwrap()
}

#[test]
fn a_flood_of_idle_and_half_sent_connections_neither_exhausts_nor_blocks_callbacks() {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let app = start(
        dir.path(),
        "max_connections = 256\nmax_connections_per_client = 32\nheader_timeout_ms = 4000\nbody_timeout_ms = 1500\n",
    );
    let addr = app.http_addr().unwrap();
    // A key halted ahead of its publish: its on_publish must be refused (403), flood or not.
    let halt = "POST /api/v1/streams/live%2Fbanned/halt HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Content-Length: 0\r\nConnection: close\r\n\r\n";
    assert_eq!(request_from("127.0.0.1", addr, halt), Ok(200));
    let before = open_fds();

    // 2,000 connections from one client: half idle, half with a request cut short.
    let mut flood = Vec::new();
    let mut refused_at_connect = 0;
    for i in 0..2000 {
        match connect_from("127.0.0.2", addr) {
            Ok(mut s) => {
                if i % 2 == 0 {
                    let _ = s.write_all(
                        b"POST /api/v1/streams/live%2Fx/halt HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Len",
                    );
                }
                flood.push(s);
            }
            Err(_) => refused_at_connect += 1,
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let during = open_fds();
    // Our own ends of the flood are `flood.len()` descriptors; the daemon may hold at most
    // max_connections_per_client of the other ends.
    let daemon_held = during.saturating_sub(before + flood.len());
    println!(
        "flood: {} connected ({refused_at_connect} refused at connect), daemon holds {daemon_held} of them",
        flood.len()
    );
    assert!(
        daemon_held <= 32 + 8,
        "the daemon holds {daemon_held} flood connections; at most 32 per client"
    );
    // Exactly max_connections_per_client of them are held open (admitted); the rest were
    // closed at once.
    let open = flood.iter().filter(|s| still_open(s)).count();
    assert_eq!(open, 32, "connections the daemon holds open");

    // nginx's callbacks, from its own address, still answer, both ways.
    assert_eq!(
        request_from("127.0.0.1", addr, &on_publish("banned")),
        Ok(403)
    );
    let (code, _) = support::get(&format!("http://{addr}/healthz"));
    assert_eq!(code, 200);

    // The admitted ones, idle or half-sent, are closed once their headers are overdue.
    let t = Instant::now();
    let mut closed = 0;
    for s in flood.iter_mut() {
        if closed_by_server(s, Duration::from_secs(15).saturating_sub(t.elapsed())) {
            closed += 1;
        }
    }
    assert_eq!(
        closed,
        flood.len(),
        "every flood connection closed by the server"
    );
    drop(flood);

    // A body that stalls after its headers: 408 once http.body_timeout_ms passed.
    let mut s = connect_from("127.0.0.3", addr).unwrap();
    s.write_all(
        b"POST /api/v1/streams/live%2Fy/halt HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"reason\":",
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    assert!(resp.contains("http.body_timeout_ms"), "{resp}");

    // Counted where an operator looks.
    let (_, metrics) = support::get(&format!("http://{addr}/metrics"));
    let value = |name: &str| -> u64 { support::metric(&metrics, name) };
    assert!(value("streamguard_http_connections_refused_total") >= 1000);
    assert!(value("streamguard_http_requests_timed_out_total") >= 1);
    // Nothing was halted by the cut-short requests.
    let (_, streams) = support::get(&format!("http://{addr}/api/v1/audit"));
    assert!(
        !streams.contains("live/x") && !streams.contains("live/y"),
        "{streams}"
    );
    app.shutdown();
}

#[test]
fn the_callback_listener_answers_while_the_api_port_is_full() {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let app = start(
        dir.path(),
        &format!(
            "callback_listen = \"127.0.0.1:{port}\"\nmax_connections = 64\nmax_connections_per_client = 64\n"
        ),
    );
    let api = app.http_addr().unwrap();
    let callbacks = app.callback_addr().unwrap();
    assert_eq!(callbacks.port(), port);
    let halt = "POST /api/v1/streams/live%2Fbanned/halt HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Content-Length: 0\r\nConnection: close\r\n\r\n";
    assert_eq!(request_from("127.0.0.1", api, halt), Ok(200));
    // Every place on the API port taken, from nginx's own address.
    let flood: Vec<_> = (0..200)
        .filter_map(|_| connect_from("127.0.0.1", api).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        request_from("127.0.0.1", api, &on_publish("banned")).is_err(),
        "the API port is full"
    );
    assert_eq!(
        request_from("127.0.0.1", callbacks, &on_publish("banned")),
        Ok(403)
    );
    // The callbacks listener serves callbacks and health only.
    let other = "GET /api/v1/streams HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    assert_eq!(request_from("127.0.0.1", callbacks, other), Ok(404));
    drop(flood);
    app.shutdown();
}
