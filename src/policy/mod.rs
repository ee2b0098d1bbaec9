//! Policy: findings to verdicts. For now every bank match within its threshold becomes an
//! alert carrying its bank's action (`halt` or `review`; `allow` banks suppress matches before
//! this stage); the store keeps one open alert per stream and item, later matches attach.

use crate::analysis::bank::BankMatch;
use crate::analysis::pdq::PdqOutput;
use crate::moderation::store::MatchAlert;

/// A bank match on one analysed frame.
#[derive(Debug, Clone)]
pub struct Finding {
    pub stream: String,
    pub frame_pts_ns: u64,
    pub pdq: PdqOutput,
    pub matched: BankMatch,
}

/// The alert a finding raises (or attaches to).
pub fn verdict(f: &Finding) -> MatchAlert {
    MatchAlert {
        stream: f.stream.clone(),
        bank: f.matched.bank.clone(),
        item_id: f.matched.id.clone(),
        label: f.matched.label.clone(),
        distance: f.matched.distance,
        quality: f.pdq.quality,
        hash: f.pdq.hash.to_string(),
        frame_pts_ms: f.frame_pts_ns / 1_000_000,
        action: f.matched.action.as_str().to_string(),
        variant: f.matched.variant.name().to_string(),
    }
}
