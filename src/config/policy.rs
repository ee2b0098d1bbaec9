use super::Problem;
use serde::Deserialize;

/// `[policy]`: how findings become alerts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// After a moderator dismisses an alert, later findings of the same stream and item
    /// (bank item or classifier label) are counted on the dismissed alert instead of
    /// raising, halting or sending a new one, for this many seconds from the dismissal.
    /// 0 turns it off. Default: 600.
    pub dismiss_cooldown_s: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            dismiss_cooldown_s: 600,
        }
    }
}

impl PolicyConfig {
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        if self.dismiss_cooldown_s > 7 * 24 * 3600 {
            problems.push(Problem::new(
                "policy.dismiss_cooldown_s",
                "at most a week (604800)",
            ));
        }
    }
}
