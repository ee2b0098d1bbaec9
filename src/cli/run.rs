//! `streamguard check-config`, `streamguard run` and `streamguard alerts`: a configuration
//! checked, the daemon run on it, and the alerts in its store.

use super::load;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use streamguard::app::{self, App};
use streamguard::config::{IngestServer, Source};
use streamguard::domain::AlertState;
use streamguard::moderation::store::{AlertFilter, AlertStore};
use streamguard::telemetry;

pub fn check_config(file: Option<PathBuf>) -> ExitCode {
    let source = file.map_or(Source::Embedded, Source::File);
    let cfg = match load(&source) {
        Ok(cfg) => cfg,
        Err(code) => return code,
    };
    match app::preflight(&cfg, true) {
        Ok(checked) => {
            let banks = checked.banks.snapshot();
            let entries: usize = banks.iter().map(|b| b.len()).sum();
            println!(
                "{source}: ok ({} stream(s), {} bank(s) with {entries} hash(es), {} model(s))",
                cfg.streams.len(),
                banks.len(),
                cfg.classify.models.len()
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprintln!("error: config {source} has {} problem(s):", problems.len());
            for p in problems {
                eprintln!("  - {p}");
            }
            ExitCode::from(2)
        }
    }
}

pub fn run(config: Option<PathBuf>) -> ExitCode {
    let source = config.map_or(Source::Embedded, Source::File);
    let cfg = match load(&source) {
        Ok(cfg) => cfg,
        Err(code) => return code,
    };
    telemetry::init_logging(&cfg.daemon.log_level, cfg.daemon.log_format);
    telemetry::raise_fd_limit();
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = stop_tx.try_send(());
    }) {
        eprintln!("error: cannot install signal handler: {e}");
        return ExitCode::FAILURE;
    }
    let app = match App::start(&cfg) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(config = %source, store = %cfg.store.path.display(), "streamguard running; Ctrl-C stops");
    loop {
        if stop_rx.recv_timeout(Duration::from_millis(500)).is_ok() {
            tracing::info!("stopping");
            break;
        }
        if cfg.ingest.server == IngestServer::None && app.wait_streams_finished(Duration::ZERO) {
            tracing::info!("every stream has ended");
            break;
        }
    }
    app.shutdown();
    tracing::info!("stopped cleanly");
    ExitCode::SUCCESS
}

pub fn alerts(
    config: Option<PathBuf>,
    state: Option<&str>,
    stream: Option<String>,
    limit: Option<usize>,
) -> ExitCode {
    let source = config.map_or(Source::Embedded, Source::File);
    let state = match state.map(|s| (s, AlertState::parse(s))) {
        None => None,
        Some((_, Some(s))) => Some(s),
        Some((s, None)) => {
            eprintln!(
                "error: --state: '{s}' is not one of {}",
                AlertState::names()
            );
            return ExitCode::from(2);
        }
    };
    let result = source.load().map_err(|e| e.to_string()).and_then(|cfg| {
        let path = &cfg.store.path;
        // Reading must not create an empty store (a wrong folder would look like "no alerts").
        if !path.exists() {
            let cwd = std::env::current_dir().unwrap_or_default();
            return Err(format!(
                "no alert store at {} (store.path of {source}; a relative path resolves against the working directory, {})",
                path.display(),
                cwd.display()
            ));
        }
        let filter = AlertFilter {
            state,
            stream,
            reason: None,
            before: None,
            limit: limit.unwrap_or(i64::MAX as usize),
        };
        AlertStore::open(path)
            .and_then(|s| s.list_alerts(&filter))
            .map(|mut rows| {
                rows.reverse(); // oldest first, as before
                rows
            })
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(rows) => {
            println!(
                "id\tstream\treason\tbank\titem\tdistance\tquality\tframe_ms\thits\tstate\taction\tvariant"
            );
            for a in rows {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    a.id,
                    a.stream,
                    a.reason,
                    a.bank,
                    a.item_id,
                    a.distance,
                    a.quality,
                    a.frame_pts_ms,
                    a.hits,
                    a.state,
                    a.action,
                    a.variant
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
