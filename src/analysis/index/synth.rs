//! Deterministic synthetic hash sets for tests and benchmarks (no real material involved:
//! these are random bit strings).

use super::PdqHash;

/// SplitMix64: a small, fast, seeded generator.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn hash(&mut self) -> PdqHash {
        PdqHash([
            self.next_u64(),
            self.next_u64(),
            self.next_u64(),
            self.next_u64(),
        ])
    }

    /// `h` with `bits` distinct random bits flipped.
    pub fn flip(&mut self, mut h: PdqHash, bits: u32) -> PdqHash {
        let mut flipped = 0;
        let mut mask = PdqHash::default();
        while flipped < bits {
            let b = self.below(256) as usize;
            if mask.0[b / 64] >> (b % 64) & 1 == 0 {
                mask.0[b / 64] |= 1 << (b % 64);
                flipped += 1;
            }
        }
        for i in 0..4 {
            h.0[i] ^= mask.0[i];
        }
        h
    }
}

/// `n` hashes: half uniformly random, half in clusters of near-duplicates (each within
/// 0..=40 bits of one of `n / 200` centres), shuffled together. Clusters are what real
/// banks look like (many re-encodings of the same item) and what skews an index's buckets.
pub fn bank(n: usize, seed: u64) -> Vec<PdqHash> {
    let mut rng = SplitMix64(seed);
    let centres: Vec<PdqHash> = (0..(n / 200).max(1)).map(|_| rng.hash()).collect();
    let mut out: Vec<PdqHash> = (0..n)
        .map(|i| {
            if i % 2 == 0 {
                rng.hash()
            } else {
                let c = centres[rng.below(centres.len() as u64) as usize];
                let bits = rng.below(41) as u32;
                rng.flip(c, bits)
            }
        })
        .collect();
    for i in (1..out.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        out.swap(i, j);
    }
    out
}

/// Queries against `bank`: a third near entries (within 0..=40 bits), a third exact
/// entries, a third random.
pub fn queries(bank: &[PdqHash], n: usize, seed: u64) -> Vec<PdqHash> {
    let mut rng = SplitMix64(seed);
    (0..n)
        .map(|i| match i % 3 {
            0 if !bank.is_empty() => {
                let e = bank[rng.below(bank.len() as u64) as usize];
                let bits = rng.below(41) as u32;
                rng.flip(e, bits)
            }
            1 if !bank.is_empty() => bank[rng.below(bank.len() as u64) as usize],
            _ => rng.hash(),
        })
        .collect()
}
