//! Picking an endpoint: round robin, least-request with the power of two choices, and
//! consistent hashing ([`ring`]).
//!
//! The functions here are pure: they get the candidates (endpoints not ejected and not yet
//! tried by this request, with their weights and requests in flight), a counter or an RNG, and
//! return a position. [`crate::upstream`] builds the candidate list and keeps the state.

pub mod ring;

use rand::Rng;

/// An endpoint that may be picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Index into the upstream's current endpoint list.
    pub index: usize,
    pub weight: u32,
    pub in_flight: u32,
}

/// Weighted round robin: the `counter`-th pick walks the candidates by cumulative weight, so an
/// endpoint of weight 3 gets three turns of every `sum(weights)`. `None` for no candidates.
pub fn round_robin(counter: u64, candidates: &[Candidate]) -> Option<usize> {
    let total: u64 = candidates.iter().map(|c| u64::from(c.weight.max(1))).sum();
    if total == 0 {
        return None;
    }
    let mut slot = counter % total;
    for (pos, c) in candidates.iter().enumerate() {
        let w = u64::from(c.weight.max(1));
        if slot < w {
            return Some(pos);
        }
        slot -= w;
    }
    None
}

/// Least request, power of two choices: two distinct candidates drawn at random, the one with
/// the higher `weight / (in_flight + 1)` wins (Envoy's rule with an active-request bias of 1),
/// so equal weights compare requests in flight and a heavier endpoint takes more load.
pub fn least_request(rng: &mut impl Rng, candidates: &[Candidate]) -> Option<usize> {
    match candidates.len() {
        0 => None,
        1 => Some(0),
        n => {
            let a = rng.gen_range(0..n);
            let mut b = rng.gen_range(0..n - 1);
            if b >= a {
                b += 1;
            }
            let score = |c: &Candidate| f64::from(c.weight.max(1)) / (f64::from(c.in_flight) + 1.0);
            if score(&candidates[b]) > score(&candidates[a]) {
                Some(b)
            } else {
                Some(a)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn cands(weights: &[u32], in_flight: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .zip(in_flight)
            .enumerate()
            .map(|(index, (&weight, &in_flight))| Candidate {
                index,
                weight,
                in_flight,
            })
            .collect()
    }

    #[test]
    fn round_robin_cycles_through_all() {
        let c = cands(&[1, 1, 1], &[0, 0, 0]);
        let picks: Vec<_> = (0..6).filter_map(|i| round_robin(i, &c)).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(round_robin(0, &[]), None);
    }

    #[test]
    fn round_robin_honours_weights() {
        let c = cands(&[3, 1], &[0, 0]);
        let mut hits = [0; 2];
        for i in 0..400 {
            hits[round_robin(i, &c).expect("candidate")] += 1;
        }
        assert_eq!(hits, [300, 100]);
    }

    #[test]
    fn least_request_prefers_idle_endpoints() {
        let mut rng = StdRng::seed_from_u64(7);
        let c = cands(&[1, 1, 1], &[10, 0, 10]);
        let mut hits = [0; 3];
        for _ in 0..3000 {
            hits[least_request(&mut rng, &c).expect("candidate")] += 1;
        }
        // The idle one wins every draw it takes part in: 2 of 3 draws.
        assert!(hits[1] > 1900 && hits[1] < 2100, "{hits:?}");
    }

    #[test]
    fn least_request_honours_weights() {
        let mut rng = StdRng::seed_from_u64(11);
        // Equal load: the weight-5 endpoint wins every pair it is in.
        let c = cands(&[5, 1, 1], &[2, 2, 2]);
        let mut hits = [0; 3];
        for _ in 0..3000 {
            hits[least_request(&mut rng, &c).expect("candidate")] += 1;
        }
        assert!(hits[0] > 1900, "{hits:?}");
        assert_eq!(least_request(&mut rng, &c[..1]), Some(0));
        assert_eq!(least_request(&mut rng, &[]), None);
    }
}
