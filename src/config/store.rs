use super::Problem;
use serde::Deserialize;
use std::path::PathBuf;

/// `[store]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StoreConfig {
    /// SQLite database file holding alerts. Created, with its folder, when missing; its schema
    /// is created and migrated at start-up. Default: `var/streamguard.db`.
    pub path: PathBuf,
    /// Keep a small greyscale thumbnail of the frame that raised each classifier alert
    /// (served blurred; unblurred only to moderators, audited). Hash matches never keep
    /// pixels. Default: true.
    pub evidence: bool,
    /// The thumbnail's width in pixels (its height follows the frame's aspect). Default: 96.
    pub evidence_width: usize,
    /// Days a dismissed alert (and its evidence) is kept after the dismissal; 0 keeps it
    /// for ever. Default: 90.
    pub retain_dismissed_days: u32,
    /// Days a confirmed alert (its hashes, bank item, scores and evidence: reported
    /// material) is kept after the confirmation: 0 (for ever) or at least 365, since
    /// providers must preserve reported material for a year. Default: 365.
    pub retain_confirmed_days: u32,
    /// Days audit and delivery log entries are kept, except those of alerts still kept;
    /// 0 keeps them for ever. Default: 0.
    pub retain_log_days: u32,
    /// Seconds between retention passes (one runs at start-up). Default: 3600.
    pub prune_interval_s: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("var/streamguard.db"),
            evidence: true,
            evidence_width: 96,
            retain_dismissed_days: 90,
            retain_confirmed_days: 365,
            retain_log_days: 0,
            prune_interval_s: 3600,
        }
    }
}

impl StoreConfig {
    /// What the retention passes keep.
    pub fn retention(&self) -> crate::moderation::store::Retention {
        crate::moderation::store::Retention {
            dismissed_days: self.retain_dismissed_days,
            confirmed_days: self.retain_confirmed_days,
            log_days: self.retain_log_days,
        }
    }

    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        if (1..365).contains(&self.retain_confirmed_days) {
            problems.push(Problem::new(
                "store.retain_confirmed_days",
                format!(
                    "{} days is less than a year: confirmed alerts are reported material, which providers must preserve for at least 365 days (0 keeps them for ever)",
                    self.retain_confirmed_days
                ),
            ));
        }
        if !(60..=7 * 24 * 3600).contains(&self.prune_interval_s) {
            problems.push(Problem::new(
                "store.prune_interval_s",
                "must be between 60 (a minute) and 604800 (a week)",
            ));
        }
        if !(16..=320).contains(&self.evidence_width) {
            problems.push(Problem::new(
                "store.evidence_width",
                "must be between 16 and 320",
            ));
        }
        if self.path.as_os_str().is_empty() {
            problems.push(Problem::new("store.path", "must not be empty"));
        } else if self.path.is_dir() {
            problems.push(Problem::new(
                "store.path",
                format!("{} is a folder, not a database file", self.path.display()),
            ));
        }
    }
}
