//! Choosing among weighted options: a weighted split (random, or sticky by a hash of the
//! caller), smooth weighted round robin, and the orderings of least-in-flight and
//! lowest-latency balancing. Pure functions and one small state, tested here and by the
//! property test in `tests`.

use std::sync::Mutex;

/// The index whose weight range holds `point` (taken modulo the total weight). `None` when
/// every weight is 0.
pub fn pick_weighted(weights: &[u32], point: u64) -> Option<usize> {
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    let mut at = point % total;
    for (i, w) in weights.iter().enumerate() {
        let w = u64::from(*w);
        if at < w {
            return Some(i);
        }
        at -= w;
    }
    None
}

/// A stable 64-bit hash of a sticky value within one rule (FNV-1a, then a splitmix64
/// finaliser to spread it): the same caller lands on the same side on every instance and
/// after every restart, as long as the rule keeps its name and weights.
pub fn sticky_point(rule: &str, value: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in rule.bytes().chain([0xff]).chain(value.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// The order to try weighted options in: `first`, then the others by weight, heaviest first
/// (ties in written order).
pub fn chosen_then_heaviest(weights: &[u32], first: usize) -> Vec<usize> {
    let mut rest: Vec<usize> = (0..weights.len()).filter(|i| *i != first).collect();
    rest.sort_by_key(|i| std::cmp::Reverse(weights[*i]));
    std::iter::once(first).chain(rest).collect()
}

/// Smooth weighted round robin (nginx's): every pick adds each weight to its running score
/// and takes the highest, which then pays back the total. Weights 5,1,1 give a a b a c a a,
/// spread out rather than bunched.
#[derive(Debug, Default)]
pub struct RoundRobin {
    scores: Mutex<Vec<i64>>,
}

impl RoundRobin {
    pub fn pick(&self, weights: &[u32]) -> usize {
        let Ok(mut scores) = self.scores.lock() else {
            return 0;
        };
        if scores.len() != weights.len() {
            *scores = vec![0; weights.len()];
        }
        let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
        let mut best = 0;
        for (i, w) in weights.iter().enumerate() {
            scores[i] += i64::from(*w);
            if scores[i] > scores[best] {
                best = i;
            }
        }
        if let Some(s) = scores.get_mut(best) {
            *s -= total;
        }
        best
    }
}

/// Indices sorted by a load figure, lowest first, ties in written order (a stable sort).
pub fn by_lowest(loads: &[u64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..loads.len()).collect();
    order.sort_by_key(|i| loads[*i]);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_pick_covers_each_range() {
        let w = [90, 10];
        assert_eq!(pick_weighted(&w, 0), Some(0));
        assert_eq!(pick_weighted(&w, 89), Some(0));
        assert_eq!(pick_weighted(&w, 90), Some(1));
        assert_eq!(pick_weighted(&w, 99), Some(1));
        assert_eq!(pick_weighted(&w, 100), Some(0));
        assert_eq!(pick_weighted(&[0, 3], 1), Some(1));
        assert_eq!(pick_weighted(&[0, 0], 1), None);
    }

    #[test]
    fn smooth_round_robin_spreads_by_weight() {
        let rr = RoundRobin::default();
        let picks: Vec<usize> = (0..7).map(|_| rr.pick(&[5, 1, 1])).collect();
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0]);
        let rr = RoundRobin::default();
        let picks: Vec<usize> = (0..6).map(|_| rr.pick(&[1, 1, 1])).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn sticky_points_are_stable_and_distinct() {
        assert_eq!(sticky_point("r", "alice"), sticky_point("r", "alice"));
        assert_ne!(sticky_point("r", "alice"), sticky_point("r", "bob"));
        assert_ne!(sticky_point("r1", "alice"), sticky_point("r2", "alice"));
        // Pinned: a change here moves every sticky caller to another side of its splits.
        assert_eq!(
            sticky_point("routes[0]", "alice"),
            13_194_697_033_016_416_991
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Over many requests each side of a split gets its weight's share, whether the
        /// point is random or a sticky caller's hash (20,000 draws: within 2 points, some six
        /// standard deviations).
        #[test]
        fn weighted_splits_converge_to_their_weights(
            weights in proptest::collection::vec(0u32..100, 1..6),
            seed in proptest::prelude::any::<u64>(),
        ) {
            proptest::prop_assume!(weights.iter().any(|w| *w > 0));
            let total: u32 = weights.iter().sum();
            let n = 20_000u32;
            for sticky in [false, true] {
                let mut counts = vec![0u32; weights.len()];
                for i in 0..n {
                    let point = if sticky {
                        sticky_point("routes[0]", &format!("user-{seed}-{i}"))
                    } else {
                        crate::random_u64()
                    };
                    counts[pick_weighted(&weights, point).unwrap()] += 1;
                }
                for (w, c) in weights.iter().zip(&counts) {
                    let want = f64::from(*w) / f64::from(total);
                    let got = f64::from(*c) / f64::from(n);
                    proptest::prop_assert!((want - got).abs() < 0.02, "weights {weights:?}: {counts:?} (sticky {sticky})");
                }
            }
        }
    }

    #[test]
    fn fallback_order_is_chosen_then_heaviest() {
        assert_eq!(chosen_then_heaviest(&[10, 60, 30], 0), [0, 1, 2]);
        assert_eq!(chosen_then_heaviest(&[10, 60, 30], 2), [2, 1, 0]);
        assert_eq!(by_lowest(&[5, 1, 5, 0]), [3, 1, 0, 2]);
    }
}
