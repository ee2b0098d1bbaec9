//! Exact radius search over 256-bit PDQ hashes: multi-index hashing (Norouzi, Punjani and
//! Fleet, "Fast Search in Hamming Space with Multi-Index Hashing", CVPR 2012).
//!
//! The 256 bits are cut into `m` disjoint slots. If two hashes differ in at most `r` bits,
//! then by the pigeonhole principle at least one slot differs in at most `⌊r / m⌋` bits. So
//! each slot keeps a table from slot value to the entries having it, a query looks up every
//! slot value within `⌊r / m⌋` bits of its own in every slot, and each candidate found is
//! verified with a full popcount. Nothing is approximate: the result set is exactly that of
//! a brute-force scan (the tests check this on random and clustered data).
//!
//! Layout: the hashes in one flat array (32 bytes each), and per slot the entry numbers
//! (`u32`) sorted by slot value, found through a directory on the value's top bits plus one
//! byte per entry for the rest (see `Slot`): 5 bytes per entry per slot. No per-entry heap
//! objects. Slots get wider (16 to 24 bits, so fewer of them) as the bank grows, chosen by a
//! cost estimate ([`Layout::for_search`]): 16 slots of 16 bits up to about 2 million entries,
//! 11 slots of 23-24 bits beyond. Banks too small to profit are scanned. Queries work in
//! passes with software prefetching (see `search_into`).

use super::pdq::PdqHash;

pub mod synth;

/// Below this many entries a linear scan is as fast as any index.
const SCAN_BELOW: usize = 4096;

/// How many candidates ahead a query prefetches their hashes.
const AHEAD: usize = 16;

/// How the index cuts hashes into slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// No index: every query scans all entries.
    Scan,
    /// `slots` slots covering the 256 bits, widths differing by at most one bit.
    MultiIndex { slots: u32 },
}

impl Layout {
    /// The layout this module picks for `n` entries searched at radius 31 (Meta's
    /// recommended threshold).
    pub fn for_len(n: usize) -> Layout {
        Self::for_search(n, 31)
    }

    /// The layout with the lowest estimated query cost for `n` entries searched at `radius`:
    /// 11 to 16 slots, or a scan when that is cheaper. Each probe costs about three dependent
    /// memory accesses (directory, low bytes, ids) and each candidate one (its hash), so the
    /// estimate is `probes × (3 + n / 2^width)`; a scan reads memory in order, about ten times
    /// cheaper per entry. Measured (examples/index_bench): 1M entries, 16 slots 0.06 ms vs
    /// 11 slots 0.12 ms; 10M entries, 11 slots 0.27 ms vs 16 slots 0.9 ms.
    pub fn for_search(n: usize, radius: u32) -> Layout {
        if n < SCAN_BELOW {
            return Layout::Scan;
        }
        let (cost, slots) = (11..=16u32)
            .map(|m| (estimated_cost(n, m, radius), m))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap_or((f64::INFINITY, 16));
        if cost > n as f64 / 10.0 {
            Layout::Scan
        } else {
            Layout::MultiIndex { slots }
        }
    }
}

fn slot_widths(m: u32) -> impl Iterator<Item = u32> {
    let (base, extra) = (256 / m, 256 % m);
    (0..m).map(move |j| base + u32::from(j < extra))
}

fn estimated_cost(n: usize, m: u32, radius: u32) -> f64 {
    let per_slot = radius / m;
    slot_widths(m)
        .map(|w| {
            let probes: f64 = (0..=per_slot.min(w)).map(|k| binomial(w, k)).sum();
            probes * (3.0 + n as f64 / f64::from(w).exp2())
        })
        .sum()
}

/// Slot values index a directory by their top bits (about `log2(n) - 4` of them, so a bucket
/// holds ~16 entries); the remaining low bits (at most 8) are kept as one byte per entry,
/// sorted within each bucket, and found by a short scan. A directly addressed table of 2^24
/// offsets would cost 64 MiB per slot; this costs 5 bytes per entry and a few MiB.
struct Slot {
    /// First bit (0..256, bit k of limb k / 64) and number of bits.
    shift: u32,
    width: u32,
    /// Bits of the slot value below the directory index (0..=8).
    low_bits: u32,
    /// `dir[t]..dir[t + 1]` are the positions of the entries whose value's top bits are `t`.
    dir: Vec<u32>,
    /// Per position, the value's low bits (empty when `low_bits` is 0), ascending per bucket.
    low: Vec<u8>,
    /// Per position, the entry number.
    ids: Vec<u32>,
}

impl Slot {
    fn key(&self, h: &[u64; 4]) -> u32 {
        slot_key(h, self.shift, self.width)
    }

    /// The directory bucket of `key`.
    fn bucket(&self, key: u32) -> (usize, usize) {
        let t = (key >> self.low_bits) as usize;
        (self.dir[t] as usize, self.dir[t + 1] as usize)
    }

    /// The positions within `bucket` holding exactly `key`.
    fn positions(&self, key: u32, (a, b): (usize, usize)) -> (usize, usize) {
        if self.low_bits == 0 {
            return (a, b);
        }
        let lo = (key & ((1 << self.low_bits) - 1)) as u8;
        let run = &self.low[a..b];
        let start = run.iter().take_while(|&&v| v < lo).count();
        let end = start + run[start..].iter().take_while(|&&v| v == lo).count();
        (a + start, a + end)
    }
}

fn slot_key(h: &[u64; 4], shift: u32, width: u32) -> u32 {
    let limb = (shift / 64) as usize;
    let lo = h[limb] as u128 | ((*h.get(limb + 1).unwrap_or(&0) as u128) << 64);
    ((lo >> (shift % 64)) as u64 & ((1u64 << width) - 1)) as u32
}

/// An exact Hamming-radius index over a fixed set of hashes. Entry `i` is the `i`th hash
/// given to [`HashIndex::build`].
pub struct HashIndex {
    hashes: Vec<[u64; 4]>,
    slots: Vec<Slot>,
}

/// One hit: the entry number and its distance to the query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hit {
    pub entry: u32,
    pub distance: u32,
}

impl HashIndex {
    /// Builds the index with the layout [`Layout::for_search`] picks for `radius`, the
    /// radius most queries will use (any radius gives exact results).
    pub fn build(hashes: Vec<PdqHash>, radius: u32) -> HashIndex {
        let layout = Layout::for_search(hashes.len(), radius);
        Self::build_with(hashes, &layout)
    }

    /// Builds the index with a given layout (tests use this to force multi-index hashing on
    /// small sets).
    ///
    /// # Panics
    /// With more than `u32::MAX` entries, or a multi-index layout of 0 or more than 256 slots
    /// or with slots wider than 28 bits.
    pub fn build_with(hashes: Vec<PdqHash>, layout: &Layout) -> HashIndex {
        assert!(u32::try_from(hashes.len()).is_ok(), "too many entries");
        let hashes: Vec<[u64; 4]> = hashes.into_iter().map(|h| h.0).collect();
        let slots = match *layout {
            Layout::Scan => Vec::new(),
            Layout::MultiIndex { slots: m } => {
                assert!((1..=256).contains(&m), "slot count {m}");
                assert!(slot_widths(m).all(|w| w <= 28), "slots too wide");
                let mut shift = 0;
                slot_widths(m)
                    .map(|width| {
                        let slot = build_slot(&hashes, shift, width);
                        shift += width;
                        slot
                    })
                    .collect()
            }
        };
        HashIndex { hashes, slots }
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The hash of entry `i`.
    pub fn hash(&self, i: u32) -> PdqHash {
        PdqHash(self.hashes[i as usize])
    }

    pub fn layout(&self) -> Layout {
        if self.slots.is_empty() {
            Layout::Scan
        } else {
            Layout::MultiIndex {
                slots: self.slots.len() as u32,
            }
        }
    }

    /// Heap bytes held by the index (hashes, slot tables).
    pub fn memory_bytes(&self) -> usize {
        self.hashes.capacity() * 32
            + self
                .slots
                .iter()
                .map(|s| (s.dir.capacity() + s.ids.capacity()) * 4 + s.low.capacity())
                .sum::<usize>()
    }

    /// Every entry within `radius` bits of `query`, in entry order.
    pub fn search(&self, query: &PdqHash, radius: u32) -> Vec<Hit> {
        let mut hits = Vec::new();
        self.search_into(query, radius, &mut hits);
        hits.sort_unstable();
        hits
    }

    /// The linear scan: the reference the index must agree with.
    pub fn search_scan(&self, query: &PdqHash, radius: u32) -> Vec<Hit> {
        let mut hits = Vec::new();
        scan(&self.hashes, &query.0, radius, &mut hits);
        hits
    }

    /// Appends the hits for `query` to `hits` (unordered, each entry once).
    pub fn search_into(&self, query: &PdqHash, radius: u32, hits: &mut Vec<Hit>) {
        let q = &query.0;
        let m = self.slots.len() as u32;
        if m == 0 {
            return scan(&self.hashes, q, radius, hits);
        }
        let per_slot = radius / m;
        if self.scan_is_cheaper(per_slot) {
            return scan(&self.hashes, q, radius, hits);
        }
        let qkeys: Vec<u32> = self.slots.iter().map(|s| s.key(q)).collect();
        let cands = self.candidates(&qkeys, per_slot);
        for c in cands.iter().take(AHEAD) {
            prefetch(&self.hashes[c.0 as usize]);
        }
        for (n, &(id, j)) in cands.iter().enumerate() {
            if let Some(&(ahead, _)) = cands.get(n + AHEAD) {
                prefetch(&self.hashes[ahead as usize]);
            }
            let h = &self.hashes[id as usize];
            let d = distance(h, q);
            if d > radius {
                continue;
            }
            // Report each entry from the first slot that finds it only.
            let earlier = self.slots[..j as usize]
                .iter()
                .zip(&qkeys)
                .any(|(s, &qk)| (s.key(h) ^ qk).count_ones() <= per_slot);
            if !earlier {
                hits.push(Hit {
                    entry: id,
                    distance: d,
                });
            }
        }
    }

    /// Whether probing every value within `per_slot` bits of each slot's key costs more than
    /// a scan: it stops paying off for large radii, where the expected candidates approach
    /// the whole bank.
    fn scan_is_cheaper(&self, per_slot: u32) -> bool {
        let probes: f64 = self
            .slots
            .iter()
            .map(|s| {
                (0..=per_slot.min(s.width))
                    .map(|k| binomial(s.width, k))
                    .sum::<f64>()
            })
            .sum();
        let avg_bucket = self.hashes.len() as f64 / f64::from(1u32 << self.slots[0].width);
        probes * (avg_bucket + 1.0) > self.hashes.len() as f64 / 2.0
    }

    /// The candidates for query keys `qkeys` (one per slot): every entry whose value in some
    /// slot is within `per_slot` bits of the query's, as (entry, slot), once per slot that
    /// finds it.
    ///
    /// Three passes, each prefetching ahead, because every step is a random memory access
    /// into tables far larger than the caches: probe keys, then their id ranges, then the
    /// candidates' hashes (the caller's pass). Done one probe at a time, a query waits on
    /// thousands of misses in turn; done in passes, the misses overlap.
    fn candidates(&self, qkeys: &[u32], per_slot: u32) -> Vec<(u32, u32)> {
        let mut probes: Vec<(u32, u32)> = Vec::new();
        for (j, slot) in self.slots.iter().enumerate() {
            for_each_within(qkeys[j], slot.width, per_slot, |key| {
                probes.push((j as u32, key))
            });
        }
        // Pass 0: prefetch the directory entries.
        for &(j, key) in &probes {
            let slot = &self.slots[j as usize];
            prefetch(&slot.dir[(key >> slot.low_bits) as usize]);
        }
        // Pass 1: directory buckets; prefetch each bucket's low bytes for pass 2.
        let buckets: Vec<(usize, usize)> = probes
            .iter()
            .map(|&(j, key)| {
                let slot = &self.slots[j as usize];
                let bucket = slot.bucket(key);
                if let Some(l) = slot.low.get(bucket.0) {
                    prefetch(l);
                }
                bucket
            })
            .collect();
        // Pass 2: exact key runs; prefetch their ids for pass 3.
        let runs: Vec<(usize, usize)> = probes
            .iter()
            .zip(&buckets)
            .map(|(&(j, key), &bucket)| {
                let slot = &self.slots[j as usize];
                let run = slot.positions(key, bucket);
                if run.0 < run.1 {
                    prefetch(&slot.ids[run.0]);
                }
                run
            })
            .collect();
        // Pass 3: candidate entry numbers.
        let mut cands: Vec<(u32, u32)> = Vec::new();
        for (&(j, _), &(a, b)) in probes.iter().zip(&runs) {
            let slot = &self.slots[j as usize];
            cands.extend(slot.ids[a..b].iter().map(|&id| (id, j)));
        }
        cands
    }
}

fn build_slot(hashes: &[[u64; 4]], shift: u32, width: u32) -> Slot {
    let n_bits = usize::BITS - hashes.len().leading_zeros();
    // At most 8 low bits (one byte), so very wide slots get a bigger directory.
    let dir_bits = n_bits
        .saturating_sub(4)
        .clamp(16, 20)
        .max(width.saturating_sub(8));
    let low_bits = width.saturating_sub(dir_bits);
    let size = 1usize << (width - low_bits);
    let mut dir = vec![0u32; size + 1];
    for h in hashes {
        dir[(slot_key(h, shift, width) >> low_bits) as usize + 1] += 1;
    }
    for t in 0..size {
        dir[t + 1] += dir[t];
    }
    let mut fill = dir.clone();
    let mut ids = vec![0u32; hashes.len()];
    for (i, h) in hashes.iter().enumerate() {
        let t = (slot_key(h, shift, width) >> low_bits) as usize;
        ids[fill[t] as usize] = i as u32;
        fill[t] += 1;
    }
    drop(fill);
    let mut low = Vec::new();
    if low_bits > 0 {
        let mask = (1u32 << low_bits) - 1;
        let low_of = |id: u32| (slot_key(&hashes[id as usize], shift, width) & mask) as u8;
        // Within each bucket, order by the low bits (then entry number, for determinism).
        let mut pairs: Vec<(u8, u32)> = Vec::new();
        low = vec![0u8; hashes.len()];
        for t in 0..size {
            let (a, b) = (dir[t] as usize, dir[t + 1] as usize);
            pairs.clear();
            pairs.extend(ids[a..b].iter().map(|&id| (low_of(id), id)));
            pairs.sort_unstable();
            for (k, &(l, id)) in pairs.iter().enumerate() {
                low[a + k] = l;
                ids[a + k] = id;
            }
        }
    }
    Slot {
        shift,
        width,
        low_bits,
        dir,
        low,
        ids,
    }
}

fn scan(hashes: &[[u64; 4]], q: &[u64; 4], radius: u32, hits: &mut Vec<Hit>) {
    for (i, h) in hashes.iter().enumerate() {
        let d = distance(h, q);
        if d <= radius {
            hits.push(Hit {
                entry: i as u32,
                distance: d,
            });
        }
    }
}

#[inline(always)]
fn distance(a: &[u64; 4], b: &[u64; 4]) -> u32 {
    (a[0] ^ b[0]).count_ones()
        + (a[1] ^ b[1]).count_ones()
        + (a[2] ^ b[2]).count_ones()
        + (a[3] ^ b[3]).count_ones()
}

#[inline(always)]
fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(r as *const T as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

fn binomial(n: u32, k: u32) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * f64::from(n - i) / f64::from(i + 1))
}

/// Calls `f` with every `width`-bit value within `radius` bits of `key` (including `key`).
fn for_each_within(key: u32, width: u32, radius: u32, mut f: impl FnMut(u32)) {
    fn flip(key: u32, from: u32, width: u32, left: u32, f: &mut impl FnMut(u32)) {
        f(key);
        if left == 0 {
            return;
        }
        for b in from..width {
            flip(key ^ (1 << b), b + 1, width, left - 1, f);
        }
    }
    flip(key, 0, width, radius.min(width), &mut f);
}

#[cfg(test)]
mod tests;
