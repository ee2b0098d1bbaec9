//! The process's own metrics in `/metrics`, as Prometheus' client libraries name them
//! (`process_*`, base units), and `streamguard_build_info`. Read from `/proc/self` (Linux); a
//! value that cannot be read is left out.

use super::metrics::single;
use std::fmt::Write;

/// Appends `streamguard_build_info` and the `process_*` families.
pub fn render(out: &mut String) {
    let _ = write!(
        out,
        "# HELP streamguard_build_info The running build: its version.\n# TYPE streamguard_build_info gauge\n\
         streamguard_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    let Some(p) = read() else { return };
    single(
        out,
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time spent, in seconds.",
        p.cpu_seconds,
    );
    single(
        out,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        p.resident_bytes,
    );
    single(
        out,
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        p.virtual_bytes,
    );
    single(
        out,
        "process_open_fds",
        "gauge",
        "Open file descriptors.",
        p.open_fds,
    );
    single(
        out,
        "process_max_fds",
        "gauge",
        "The soft limit of open file descriptors.",
        p.max_fds,
    );
    single(
        out,
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch, in seconds.",
        p.start_time_seconds,
    );
    single(
        out,
        "process_threads",
        "gauge",
        "Threads of the process.",
        p.threads,
    );
}

struct Process {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    open_fds: u64,
    max_fds: u64,
    start_time_seconds: f64,
    threads: u64,
}

fn read() -> Option<Process> {
    // SAFETY: sysconf and getrlimit only read the process's settings into plain values.
    let (tick, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK) as f64,
            libc::sysconf(libc::_SC_PAGESIZE) as u64,
        )
    };
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces), from field 3 (`state`) on.
    let f: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { f.get(n - 3)?.parse().ok() };
    let cpu_seconds = (field(14)? + field(15)?) as f64 / tick;
    let threads = field(20)?;
    let start_ticks = field(22)?;
    let virtual_bytes = field(23)?;
    let resident_bytes = field(24)? * page;
    let btime: f64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct given.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) };
    Some(Process {
        cpu_seconds,
        resident_bytes,
        virtual_bytes,
        open_fds,
        max_fds: l.rlim_cur,
        start_time_seconds: btime + start_ticks as f64 / tick,
        threads,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let p = super::read().expect("/proc/self readable");
        assert!(p.resident_bytes > 1 << 20 && p.virtual_bytes >= p.resident_bytes);
        assert!(p.open_fds >= 3 && p.max_fds >= p.open_fds);
        assert!(p.threads >= 1);
        let now = crate::telemetry::unix_ms() as f64 / 1000.0;
        assert!(p.start_time_seconds > now - 3600.0 && p.start_time_seconds <= now + 1.0);
    }
}
