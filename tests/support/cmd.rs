//! Running the `streamguard` binary, and other commands, from tests (under a hang limit).
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Longest one command may run in a test. Not a speed check (the slowest runs here take
/// seconds): a command that hangs fails its test, with what it printed, instead of holding
/// up the whole suite until CI's time limit.
pub const HANG_LIMIT: Duration = Duration::from_secs(300);

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary in `dir`, without the caller's log filter or ONNX Runtime override.
pub fn streamguard(args: &[&str], dir: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streamguard"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("ORT_DYLIB_PATH");
    output_within(&mut cmd, &format!("streamguard {}", args.join(" ")))
}

/// Runs `cmd` to the end like [`Command::output`], but kills it and fails the test, naming
/// it as `what` and showing what it printed, when it runs longer than [`HANG_LIMIT`], or
/// when something it started still holds its output open that long.
pub fn output_within(cmd: &mut Command, what: &str) -> Output {
    // Its own process group, so that a hung command is killed with what it started.
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let deadline = Instant::now() + HANG_LIMIT;
    let kill_group = |pid: u32| {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
    };
    // Each pipe is read on a thread of its own (so that neither fills up and blocks the
    // command), into a buffer that can be shown while the thread still reads.
    let (closed_tx, closed) = mpsc::channel::<()>();
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (into, closed_tx) = (buf.clone(), closed_tx.clone());
        std::thread::spawn(move || {
            if let Some(mut p) = pipe {
                let mut chunk = [0u8; 8192];
                while let Ok(n @ 1..) = p.read(&mut chunk) {
                    into.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
            }
            let _ = closed_tx.send(());
        });
        buf
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let take = |b: &Arc<Mutex<Vec<u8>>>| std::mem::take(&mut *b.lock().unwrap());
    let printed = || {
        format!(
            "{}{}",
            String::from_utf8_lossy(&take(&stdout)),
            String::from_utf8_lossy(&take(&stderr))
        )
    };
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            kill_group(child.id());
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what}: still running after {HANG_LIMIT:?}, killed\n{}",
                printed()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Both pipes closed means all it printed has been read.
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        if closed
            .recv_timeout(left.max(Duration::from_secs(5)))
            .is_err()
        {
            kill_group(child.id());
            panic!(
                "{what}: ended ({status}), but what it started still held its output open \
                 after {HANG_LIMIT:?}, killed\n{}",
                printed()
            );
        }
    }
    Output {
        status,
        stdout: take(&stdout),
        stderr: take(&stderr),
    }
}

/// The standard output of a run that must have succeeded (both streams shown if not).
pub fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
