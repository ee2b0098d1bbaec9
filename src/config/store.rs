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
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("var/streamguard.db"),
        }
    }
}

impl StoreConfig {
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
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
