//! The GOP buffer of an adaptive stream: the current GOP's access units from its keyframe,
//! kept while calm, so that a trigger on a delta frame can decode the GOP at once
//! ([`Decision::AnalyseFromKeyframe`](super::Decision::AnalyseFromKeyframe)) instead of
//! waiting for the next keyframe.
//!
//! Generic over the unit (a `gst::Buffer` in the stream's worker) so that it is tested alone.

use super::adaptive::Mode;

/// Longest GOP kept for a retroactive decode (units); longer GOPs decode from the next
/// keyframe instead.
pub const GOP_BUFFER_MAX: usize = 600;

/// The current GOP's units with their times, keyframe first, at most [`GOP_BUFFER_MAX`].
#[derive(Debug)]
pub struct GopBuffer<U> {
    units: Vec<(U, u64)>,
}

impl<U> Default for GopBuffer<U> {
    fn default() -> Self {
        Self { units: Vec::new() }
    }
}

impl<U: Clone> GopBuffer<U> {
    /// Whether the GOP of a unit is buffered from its keyframe, so that it can be decoded
    /// now: a delta unit (a keyframe starts a GOP of its own), after a buffered keyframe, in
    /// a GOP not past the maximum.
    pub fn holds_gop_of(&self, keyframe: bool) -> bool {
        !keyframe && !self.units.is_empty() && self.units.len() < GOP_BUFFER_MAX
    }

    /// A keyframe starts a new GOP: the old one is dropped.
    pub fn clear_at_keyframe(&mut self) {
        self.units.clear();
    }

    /// The buffered units, oldest first, for a retroactive decode; the buffer is left empty.
    pub fn take(&mut self) -> Vec<(U, u64)> {
        std::mem::take(&mut self.units)
    }

    /// Follows a unit the controller has just seen, in the mode it left: while calm the
    /// unit is kept (up to the maximum); dense decodes every unit, so nothing is kept.
    pub fn follow(&mut self, mode: Mode, unit: &U, pts_ns: u64) {
        if mode == Mode::Calm && self.units.len() < GOP_BUFFER_MAX {
            self.units.push((unit.clone(), pts_ns));
        } else if mode == Mode::Dense {
            self.units.clear();
        }
    }

    /// Units held.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calm_gop(n: usize) -> GopBuffer<u32> {
        let mut g = GopBuffer::default();
        for i in 0..n {
            g.follow(Mode::Calm, &(i as u32), i as u64);
        }
        g
    }

    #[test]
    fn empty_holds_nothing() {
        let g = GopBuffer::<u32>::default();
        assert!(g.is_empty());
        assert!(!g.holds_gop_of(false));
        assert!(!g.holds_gop_of(true));
    }

    #[test]
    fn calm_keeps_units_in_order_and_take_empties_it() {
        let mut g = calm_gop(3);
        assert_eq!(g.len(), 3);
        assert!(g.holds_gop_of(false));
        assert!(!g.holds_gop_of(true), "a keyframe starts its own GOP");
        assert_eq!(g.take(), vec![(0, 0), (1, 1), (2, 2)]);
        assert!(g.is_empty());
        assert!(!g.holds_gop_of(false));
    }

    #[test]
    fn cleared_at_keyframe_and_when_dense() {
        let mut g = calm_gop(5);
        g.clear_at_keyframe();
        assert!(g.is_empty());
        let mut g = calm_gop(5);
        g.follow(Mode::Dense, &9, 9);
        assert!(g.is_empty());
    }

    #[test]
    fn bounded_and_not_held_once_full() {
        let mut g = calm_gop(GOP_BUFFER_MAX - 1);
        assert!(g.holds_gop_of(false));
        g.follow(Mode::Calm, &0, 0);
        assert_eq!(g.len(), GOP_BUFFER_MAX);
        assert!(!g.holds_gop_of(false), "a full buffer may miss units");
        g.follow(Mode::Calm, &1, 1);
        assert_eq!(g.len(), GOP_BUFFER_MAX, "no unit past the maximum");
        // A full buffer is still cleared by the next keyframe, and fills again.
        g.clear_at_keyframe();
        g.follow(Mode::Calm, &2, 2);
        assert!(g.holds_gop_of(false));
    }
}
