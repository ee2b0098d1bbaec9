//! Issue 21, defect 3: with the store's files made unwritable while the daemon ran, a
//! halt-bank match left the stream live until the store recovered (the recorder retried the
//! alert before it halted), and nothing but log lines said so. Here the daemon (a real
//! process, so that a crash shows as its exit) runs a stream that shows a bank item whose
//! action is `halt`; its store's files are made immutable (`chattr +i`, as root) before the
//! item appears. The stream must be halted while the store is still locked, /readyz and
//! /metrics must say the store refuses writes, and once the files are writable again every
//! held write must land, with the time it happened. The same again with the store on a
//! full file system (a small tmpfs mounted for the test, then filled).
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{free_port, get, repo, wait_until};

/// `chattr` `flag` on each of `files`; panics with a clear message where it cannot.
fn chattr(flag: &str, files: &[std::path::PathBuf]) {
    let out = Command::new("chattr")
        .arg(flag)
        .args(files)
        .output()
        .expect("chattr (e2fsprogs) runs");
    assert!(
        out.status.success(),
        "chattr {flag} failed (this test needs root on a file system with immutable files): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Unlocks the files however the test ends, so that the temporary folder can be removed.
struct Unlock(Vec<std::path::PathBuf>);

impl Drop for Unlock {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").args(&self.0).status();
    }
}

fn json(url: &str) -> (u16, serde_json::Value) {
    let (code, body) = get(url);
    (code, serde_json::from_str(&body).unwrap_or_default())
}

fn metric(base: &str, name: &str) -> u64 {
    support::metric(&get(&format!("{base}/metrics")).1, name)
}

fn config(dir: &Path, store: &Path, port: u16) -> std::path::PathBuf {
    let text = format!(
        "[[banks]]\nname = \"demo\"\npath = \"{bank}\"\naction = \"halt\"\n[store]\npath = \"{db}\"\n\
         [http]\nlisten = \"127.0.0.1:{port}\"\n\
         [[streams]]\nid = \"with-image\"\npipeline = \"testsrc-image\"\n\
         params = {{ image = \"{img}\", before = \"300\", show = \"90\", after = \"-1\", realtime = \"true\" }}\n",
        bank = repo().join("config/demo-bank.txt").display(),
        db = store.join("alerts.db").display(),
        img = repo().join("config/demo-image.png").display(),
    );
    let path = dir.join("c.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A store fault made by `fault` on the store's files, lifted when its guard is dropped.
fn store_fault_does_not_delay_a_halt<G>(
    dir: &Path,
    store: &Path,
    fault: impl FnOnce(&[std::path::PathBuf]) -> G,
) {
    // One daemon at a time: each runs a real-time x264 stream, and its fault must land before
    // the item appears.
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_streamguard"))
        .args(["run", "--config"])
        .arg(config(dir, store, port))
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("daemon.log")).unwrap())
        .spawn()
        .unwrap();
    let files: Vec<_> = ["alerts.db", "alerts.db-wal", "alerts.db-shm"]
        .iter()
        .map(|f| store.join(f))
        .collect();
    wait_until("the daemon ready", Duration::from_secs(30), || {
        files.iter().all(|f| f.exists()) && json(&format!("{base}/readyz")).0 == 200
    });
    // The item appears 10 s into the stream: break the store well before.
    let unlock = fault(&files);

    wait_until(
        "the stream halted while the store refuses writes",
        Duration::from_secs(40),
        || {
            let (_, v) = json(&format!("{base}/api/v1/streams"));
            v["streams"][0]["halted"] == true
        },
    );
    // Still locked: the halt did not wait for the store.
    let (code, ready) = json(&format!("{base}/readyz"));
    assert_eq!(code, 503, "{ready}");
    assert_eq!(ready["store"]["ok"], false, "{ready}");
    assert!(
        ready["store"]["pending_alerts"].as_u64() >= Some(1),
        "{ready}"
    );
    assert!(
        ready["store"]["pending_writes"].as_u64() >= Some(1),
        "{ready}"
    );
    assert!(ready["store"]["last_error"].is_string(), "{ready}");
    assert_eq!(metric(&base, "streamguard_store_up"), 0);
    assert!(metric(&base, "streamguard_store_pending_writes") >= 2);
    // A moderator cannot lift the halt while that would not be durable.
    let (code, body) = support::post(&format!("{base}/api/v1/streams/with-image/reinstate"), "");
    assert_eq!(code, 503, "{body}");
    assert!(daemon.try_wait().unwrap().is_none(), "the daemon died");
    let halted_at = streamguard::telemetry::unix_ms();

    drop(unlock);
    wait_until("everything held written", Duration::from_secs(20), || {
        json(&format!("{base}/readyz")).0 == 200
    });
    assert_eq!(metric(&base, "streamguard_store_up"), 1);
    assert_eq!(metric(&base, "streamguard_store_pending_writes"), 0);
    let (_, alerts) = json(&format!("{base}/api/v1/alerts"));
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 1, "{alerts}");
    assert_eq!(alerts["alerts"][0]["item_id"], "demo-coffee");
    let (_, audit) = json(&format!("{base}/api/v1/audit?stream=with-image"));
    let events: Vec<(&str, u64)> = audit["audit"]
        .as_array()
        .unwrap_or_else(|| panic!("{audit}"))
        .iter()
        .rev()
        .map(|e| (e["event"].as_str().unwrap(), e["at_ms"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        events.iter().map(|e| e.0).collect::<Vec<_>>(),
        ["halt", "halt_sent"],
        "{audit}"
    );
    assert!(
        events[0].1 <= halted_at,
        "stamped when it happened, not when written: {events:?}"
    );
    // Reinstating works again.
    let (code, body) = support::post(&format!("{base}/api/v1/streams/with-image/reinstate"), "");
    assert_eq!(code, 200, "{body}");

    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let status = daemon.wait().unwrap();
    assert!(status.success(), "daemon exit: {status:?}");
}

#[test]
fn a_store_whose_files_are_made_immutable_neither_crashes_nor_delays_a_halt() {
    let dir = tempfile::tempdir().unwrap();
    store_fault_does_not_delay_a_halt(dir.path(), dir.path(), |files| {
        chattr("+i", files);
        Unlock(files.to_vec())
    });
}

/// A small tmpfs for the store, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The file that fills a file system, removed when dropped.
struct Filler(std::path::PathBuf);

impl Drop for Filler {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_store_on_a_full_disk_neither_crashes_nor_delays_a_halt() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .output()
        .expect("mount runs");
    assert!(
        out.status.success(),
        "mount -t tmpfs failed (this test needs root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _mounted = Tmpfs(mnt.clone());
    store_fault_does_not_delay_a_halt(dir.path(), &mnt, |_| {
        // Every byte left taken (dd stops at ENOSPC).
        let fill = mnt.join("fill");
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=4k", "count=1024"])
            .arg(format!("of={}", fill.display()))
            .stderr(std::process::Stdio::null())
            .status();
        Filler(fill)
    });
}
