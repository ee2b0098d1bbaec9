//! /healthz and /readyz over real HTTP on a free loopback port.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use streamguard::analysis::bank::BankSet;
use streamguard::config::BankConfig;
use streamguard::http::{HttpServer, HttpState};

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let code = resp[9..12].parse().unwrap();
    let body = resp
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (code, body)
}

#[test]
fn readyz_is_503_until_banks_load_and_never_shows_contents() {
    let dir = tempfile::tempdir().unwrap();
    let hash = "799dd9333637619c6598c832067663b937de69f6de1a87d8e399278078601f20";
    let bank = dir.path().join("b.csv");
    std::fs::write(&bank, format!("{hash},item-1,synthetic\n")).unwrap();
    let set = BankSet::new(&[BankConfig {
        name: "b".into(),
        path: Some(bank),
        ..BankConfig::default()
    }]);
    let server = HttpServer::start(
        "127.0.0.1:0".parse().unwrap(),
        HttpState {
            banks: set.clone(),
            control: None,
            auth: Default::default(),
            events: Default::default(),
        },
    )
    .unwrap();
    assert_eq!(get(server.addr, "/healthz"), (200, "ok\n".into()));
    let (code, body) = get(server.addr, "/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("\"ready\":false"), "{body}");

    set.load_all().unwrap();
    let (code, body) = get(server.addr, "/readyz");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ready"], true);
    assert_eq!(v["banks"][0]["entries"], 1);
    assert_eq!(
        v["banks"][0]["version"]["fingerprint"]
            .as_str()
            .unwrap()
            .len(),
        16
    );
    assert!(
        !body.contains(hash) && !body.contains("item-1"),
        "bank contents served: {body}"
    );
    server.stop();
}

#[test]
fn taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = HttpServer::start(
        addr,
        HttpState {
            banks: BankSet::new(&[]),
            control: None,
            auth: Default::default(),
            events: Default::default(),
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains(&addr.to_string()) && err.contains("http.listen"),
        "{err}"
    );
}

/// Unknown routes and wrong methods answer JSON like every other refusal.
#[test]
fn unknown_routes_and_methods_answer_json_errors() {
    let server = HttpServer::start(
        "127.0.0.1:0".parse().unwrap(),
        HttpState {
            banks: BankSet::new(&[]),
            control: None,
            auth: Default::default(),
            events: Default::default(),
        },
    )
    .unwrap();
    let (code, body) = get(server.addr, "/api/v1/nope");
    assert_eq!(code, 404, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("no route GET /api/v1/nope")),
        "{body}"
    );
    let mut s = TcpStream::connect(server.addr).unwrap();
    write!(
        s,
        "DELETE /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 405"), "{resp}");
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("DELETE")),
        "{resp}"
    );
    server.stop();
}
