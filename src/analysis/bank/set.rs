//! [`BankSet`]: every configured bank at its current version, and the watcher that reloads a
//! bank when its files change (off the hot path, swapped in atomically, the old version kept
//! when the new one fails to load).

use super::{Bank, BankError, BankVersion};
use crate::config::BankConfig;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// What identifies a version of a file on disk without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        len: m.len(),
        modified: m.modified().ok(),
        inode: m.ino(),
    })
}

struct Handle {
    cfg: BankConfig,
    current: RwLock<Option<Arc<Bank>>>,
    watch: Mutex<WatchState>,
}

#[derive(Default)]
struct WatchState {
    /// Stamps of the files as last loaded (or last failed to load).
    loaded: Vec<Option<FileStamp>>,
    /// Stamps seen at the previous poll that differed from `loaded`: reload once they hold
    /// still for one more poll, so that a file being written is not read half-way.
    pending: Option<Vec<Option<FileStamp>>>,
    last_error: Option<String>,
    reloads: u64,
    failed_reloads: u64,
}

/// The state of one bank, for `/readyz` and logs: counts and versions, never contents.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BankStatus {
    pub name: String,
    pub loaded: bool,
    pub entries: usize,
    pub version: Option<BankVersion>,
    pub reloads: u64,
    pub failed_reloads: u64,
    /// The last load error (file, line and what was wrong), if the last attempt failed.
    pub last_error: Option<String>,
}

/// Every configured bank, each at its current version.
pub struct BankSet {
    handles: Vec<Handle>,
}

impl BankSet {
    /// A set with nothing loaded yet.
    pub fn new(cfgs: &[BankConfig]) -> Arc<BankSet> {
        Arc::new(BankSet {
            handles: cfgs
                .iter()
                .map(|cfg| Handle {
                    cfg: cfg.clone(),
                    current: RwLock::new(None),
                    watch: Mutex::new(WatchState::default()),
                })
                .collect(),
        })
    }

    /// Loads every bank, one after another, collecting every error.
    pub fn load_all(&self) -> Result<(), Vec<BankError>> {
        let errors: Vec<BankError> = self
            .handles
            .iter()
            .filter_map(|h| self.reload(h).err())
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Loads a set synchronously (for the CLI and tests).
    pub fn load(cfgs: &[BankConfig]) -> Result<Arc<BankSet>, Vec<BankError>> {
        let set = Self::new(cfgs);
        set.load_all()?;
        Ok(set)
    }

    /// Loads `h` from its files now; on success the new version replaces the old at once.
    fn reload(&self, h: &Handle) -> Result<(), BankError> {
        self.reload_if_unchanged(h, None).unwrap_or(Ok(()))
    }

    /// Like [`BankSet::reload`], but when `expected` is given the files must still have those
    /// stamps before and after reading, or nothing is swapped and `None` is returned (they
    /// are being written: try again at the next poll).
    fn reload_if_unchanged(
        &self,
        h: &Handle,
        expected: Option<&Vec<Option<FileStamp>>>,
    ) -> Option<Result<(), BankError>> {
        let files = h.cfg.files();
        let stamps: Vec<Option<FileStamp>> = files.iter().map(|f| stamp(f)).collect();
        if expected.is_some_and(|e| *e != stamps) {
            h.watch.lock().unwrap_or_else(|e| e.into_inner()).pending = Some(stamps);
            return None;
        }
        let result = Bank::load(&h.cfg);
        let after: Vec<Option<FileStamp>> = files.iter().map(|f| stamp(f)).collect();
        let mut w = h.watch.lock().unwrap_or_else(|e| e.into_inner());
        if expected.is_some() && after != stamps {
            w.pending = Some(after);
            return None;
        }
        w.loaded = stamps;
        w.pending = None;
        Some(match result {
            Ok(bank) => {
                let bank = Arc::new(bank);
                tracing::info!(bank = %bank.name, entries = bank.len(), version = %bank.version.fingerprint,
                    parse_ms = format!("{:.0}", bank.parse_ms), build_ms = format!("{:.0}", bank.build_ms), "bank loaded");
                let old = {
                    let mut current = h.current.write().unwrap_or_else(|e| e.into_inner());
                    current.replace(bank)
                };
                // The old version (possibly a gigabyte) is freed outside the lock; lookups
                // still holding it finish first.
                drop(old);
                w.reloads += 1;
                w.last_error = None;
                Ok(())
            }
            Err(e) => {
                w.failed_reloads += 1;
                w.last_error = Some(e.to_string());
                Err(e)
            }
        })
    }

    /// The currently loaded banks (a bank that never loaded is left out).
    pub fn snapshot(&self) -> Vec<Arc<Bank>> {
        self.handles
            .iter()
            .filter_map(|h| h.current.read().unwrap_or_else(|e| e.into_inner()).clone())
            .collect()
    }

    /// Whether every configured bank has a loaded version.
    pub fn ready(&self) -> bool {
        self.handles.iter().all(|h| {
            h.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .is_some()
        })
    }

    /// Whether any bank wants dihedral variants checked.
    pub fn wants_dihedral(&self) -> bool {
        self.handles.iter().any(|h| h.cfg.dihedral)
    }

    pub fn status(&self) -> Vec<BankStatus> {
        self.handles
            .iter()
            .map(|h| {
                let bank = h.current.read().unwrap_or_else(|e| e.into_inner()).clone();
                let w = h.watch.lock().unwrap_or_else(|e| e.into_inner());
                BankStatus {
                    name: h.cfg.name.clone(),
                    loaded: bank.is_some(),
                    entries: bank.as_ref().map_or(0, |b| b.len()),
                    version: bank.map(|b| b.version.clone()),
                    reloads: w.reloads,
                    failed_reloads: w.failed_reloads,
                    last_error: w.last_error.clone(),
                }
            })
            .collect()
    }

    /// One watcher step: reloads every bank whose files changed and then held still since
    /// the previous call. A failed reload keeps the loaded version and is logged.
    pub fn poll(&self) {
        for h in &self.handles {
            let stamps: Vec<Option<FileStamp>> = h.cfg.files().iter().map(|f| stamp(f)).collect();
            let due = {
                let mut w = h.watch.lock().unwrap_or_else(|e| e.into_inner());
                if stamps == w.loaded {
                    w.pending = None;
                    false
                } else if w.pending.as_ref() == Some(&stamps) {
                    true
                } else {
                    w.pending = Some(stamps.clone());
                    false
                }
            };
            if due && let Some(Err(e)) = self.reload_if_unchanged(h, Some(&stamps)) {
                tracing::error!(bank = %h.cfg.name, error = %e, "bank reload failed; keeping the loaded version");
            }
        }
    }

    /// Polls every `interval` on a thread of its own until `stop` is dropped or sent to.
    pub fn spawn_watcher(
        self: &Arc<Self>,
        interval: Duration,
        stop: crossbeam_channel::Receiver<()>,
    ) -> std::thread::JoinHandle<()> {
        let set = self.clone();
        std::thread::Builder::new()
            .name("bank-watcher".into())
            .spawn(move || {
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stop.recv_timeout(interval)
                {
                    set.poll();
                }
            })
            .expect("spawn bank watcher")
    }
}
