//! The global analysis budget: capacity (analysed frames per second for the whole daemon)
//! shared by every stream, by risk. Pure arithmetic; tested with proptest.
//!
//! Order of service: first every stream's guaranteed rate (`1 / max_gap`; under an overload
//! so deep that even those do not fit, the capacity is shared in proportion to them, so no
//! stream starves); then dense streams up to their dense rate, highest risk first; then calm
//! streams up to their base rate, all equally (water-filling). So calm streams stretch
//! towards `max_gap` first, and dense high-risk streams keep their rate longest.

/// One stream's request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Demand {
    /// Frames per second it would like (`dense_rate` when dense, `1 / base_interval` when calm).
    pub want: f64,
    /// Frames per second it must get (`1 / max_gap`); at most `want`.
    pub floor: f64,
    pub dense: bool,
    /// Higher is served first among dense streams.
    pub risk: u8,
}

/// The rate granted to each stream, in the order of `demands`.
pub fn allocate(capacity: f64, demands: &[Demand]) -> Vec<f64> {
    let capacity = capacity.max(0.0);
    let floors: Vec<f64> = demands
        .iter()
        .map(|d| d.floor.min(d.want).max(0.0))
        .collect();
    let floor_sum: f64 = floors.iter().sum();
    if floor_sum >= capacity {
        let scale = if floor_sum > 0.0 {
            capacity / floor_sum
        } else {
            0.0
        };
        return floors.iter().map(|f| f * scale).collect();
    }
    let mut rates = floors.clone();
    let mut left = capacity - floor_sum;
    // Dense streams, highest risk first; equal risk shares equally.
    let mut risks: Vec<u8> = demands.iter().filter(|d| d.dense).map(|d| d.risk).collect();
    risks.sort_unstable_by(|a, b| b.cmp(a));
    risks.dedup();
    for risk in risks {
        let group: Vec<usize> = (0..demands.len())
            .filter(|&i| demands[i].dense && demands[i].risk == risk)
            .collect();
        left = water_fill(&group, demands, &mut rates, left);
    }
    let calm: Vec<usize> = (0..demands.len()).filter(|&i| !demands[i].dense).collect();
    water_fill(&calm, demands, &mut rates, left);
    rates
}

/// Raises `rates[i]` for `i` in `group` towards `want`, equally, spending at most `budget`;
/// returns what is left.
fn water_fill(group: &[usize], demands: &[Demand], rates: &mut [f64], mut budget: f64) -> f64 {
    let mut open: Vec<usize> = group
        .iter()
        .copied()
        .filter(|&i| rates[i] < demands[i].want)
        .collect();
    while !open.is_empty() && budget > 1e-12 {
        let share = budget / open.len() as f64;
        let mut next = Vec::new();
        for &i in &open {
            let room = demands[i].want - rates[i];
            let give = room.min(share);
            rates[i] += give;
            budget -= give;
            if room > share {
                next.push(i);
            }
        }
        if next.len() == open.len() {
            break; // everyone took a full share: the budget is spent
        }
        open = next;
    }
    budget.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn calm(n: usize) -> Vec<Demand> {
        vec![
            Demand {
                want: 0.5,
                floor: 1.0 / 6.0,
                dense: false,
                risk: 0,
            };
            n
        ]
    }

    #[test]
    fn enough_capacity_gives_everyone_what_they_want() {
        let mut d = calm(3);
        d.push(Demand {
            want: 5.0,
            floor: 1.0 / 6.0,
            dense: true,
            risk: 1,
        });
        let r = allocate(100.0, &d);
        assert_eq!(r, vec![0.5, 0.5, 0.5, 5.0]);
    }

    #[test]
    fn overload_stretches_calm_streams_first() {
        let mut d = calm(10);
        d.push(Demand {
            want: 5.0,
            floor: 1.0 / 6.0,
            dense: true,
            risk: 2,
        });
        // 10 calm want 5 fps, the dense one 5 fps; only 7 available.
        let r = allocate(7.0, &d);
        assert!((r[10] - 5.0).abs() < 1e-9, "{r:?}");
        let calm_rate = r[0];
        assert!(r[..10].iter().all(|x| (x - calm_rate).abs() < 1e-9));
        assert!((r.iter().sum::<f64>() - 7.0).abs() < 1e-9);
        assert!(calm_rate >= 1.0 / 6.0);
    }

    fn demand() -> impl Strategy<Value = Demand> {
        (0.01f64..10.0, 0.0f64..1.0, any::<bool>(), 0u8..4).prop_map(|(want, f, dense, risk)| {
            Demand {
                want,
                floor: want * f,
                dense,
                risk,
            }
        })
    }

    proptest! {
        #[test]
        fn never_exceeds_capacity_nor_wants(capacity in 0.0f64..50.0, ds in prop::collection::vec(demand(), 0..40)) {
            let r = allocate(capacity, &ds);
            prop_assert!(r.iter().sum::<f64>() <= capacity + 1e-6);
            for (x, d) in r.iter().zip(&ds) {
                prop_assert!(*x >= -1e-12 && *x <= d.want + 1e-9);
            }
        }

        #[test]
        fn floors_before_anything_more(capacity in 0.0f64..50.0, ds in prop::collection::vec(demand(), 1..40)) {
            let r = allocate(capacity, &ds);
            let someone_got_more = r.iter().zip(&ds).any(|(x, d)| *x > d.floor + 1e-9);
            if someone_got_more {
                for (x, d) in r.iter().zip(&ds) {
                    prop_assert!(*x >= d.floor - 1e-9, "{x} < floor {}", d.floor);
                }
            }
            // No stream starves: each gets its share of the floors at least.
            let floor_sum: f64 = ds.iter().map(|d| d.floor).sum();
            for (x, d) in r.iter().zip(&ds) {
                let fair = if floor_sum > 0.0 { d.floor * (capacity / floor_sum).min(1.0) } else { 0.0 };
                prop_assert!(*x >= fair - 1e-9);
            }
        }

        #[test]
        fn high_risk_dense_streams_keep_their_rate_under_overload(
            capacity in 1.0f64..50.0,
            ds in prop::collection::vec(demand(), 1..40),
        ) {
            let r = allocate(capacity, &ds);
            let top = ds.iter().filter(|d| d.dense).map(|d| d.risk).max();
            if let Some(top) = top {
                let floors: f64 = ds.iter().map(|d| d.floor).sum();
                let top_extra: f64 = ds.iter().filter(|d| d.dense && d.risk == top).map(|d| d.want - d.floor).sum();
                if floors + top_extra <= capacity {
                    for (x, d) in r.iter().zip(&ds) {
                        if d.dense && d.risk == top {
                            prop_assert!((x - d.want).abs() < 1e-6, "{x} vs {}", d.want);
                        }
                    }
                }
            }
        }
    }
}
