//! Why a stream went dense: the triggers of the adaptive controller, each counted (and
//! shown by the API and replay) under its name.

/// Why a stream went dense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    GreyZone,
    NearMiss,
    Match,
    Spike,
    SceneChange,
    Warmup,
    Risk,
}

impl Trigger {
    pub const ALL: [Trigger; 7] = [
        Trigger::GreyZone,
        Trigger::NearMiss,
        Trigger::Match,
        Trigger::Spike,
        Trigger::SceneChange,
        Trigger::Warmup,
        Trigger::Risk,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Trigger::GreyZone => "grey_zone",
            Trigger::NearMiss => "near_miss",
            Trigger::Match => "match",
            Trigger::Spike => "spike",
            Trigger::SceneChange => "scene_change",
            Trigger::Warmup => "warmup",
            Trigger::Risk => "risk",
        }
    }

    /// Its place in [`Trigger::ALL`] (the controller's counters).
    pub(super) fn index(self) -> usize {
        Trigger::ALL.iter().position(|&t| t == self).unwrap_or(0)
    }
}
