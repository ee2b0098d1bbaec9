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
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("var/streamguard.db"),
            evidence: true,
            evidence_width: 96,
        }
    }
}

impl StoreConfig {
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
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
