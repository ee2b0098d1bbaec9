//! The PDQ hash value: its hex form and Hamming distance, a hash with its quality, and the
//! eight dihedral variants (rotations and mirrors) of an image.

use std::fmt;
use std::str::FromStr;

/// A 256-bit PDQ hash. Bit `k` is coefficient `(k / 16, k % 16)` of the 16×16 DCT block;
/// the hex form is the 256-bit number with bit 255 first, as the reference prints it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PdqHash(pub [u64; 4]);

impl PdqHash {
    /// Hamming distance: the number of differing bits.
    pub fn distance(&self, other: &PdqHash) -> u32 {
        (0..4).map(|i| (self.0[i] ^ other.0[i]).count_ones()).sum()
    }

    pub(super) fn set_bit(&mut self, k: usize) {
        self.0[k / 64] |= 1u64 << (k % 64);
    }

    /// Whether bit `k` (0..256) is set.
    pub fn bit(&self, k: usize) -> bool {
        self.0[k / 64] >> (k % 64) & 1 == 1
    }
}

impl fmt::Display for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for limb in self.0.iter().rev() {
            write!(f, "{limb:016x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PdqHash({self})")
    }
}

/// Why a string is not a PDQ hash.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseHashError {
    #[error("a PDQ hash has 64 hex digits, this has {0}")]
    Length(usize),
    #[error("'{0}' is not a hex digit")]
    Digit(char),
}

impl FromStr for PdqHash {
    type Err = ParseHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(c) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(ParseHashError::Digit(c));
        }
        // Only ASCII hex digits from here on, so bytes are characters.
        if s.len() != 64 {
            return Err(ParseHashError::Length(s.len()));
        }
        let mut limbs = [0u64; 4];
        for (i, limb) in limbs.iter_mut().enumerate() {
            let start = (3 - i) * 16;
            // The digits were checked above, so this cannot fail.
            *limb = u64::from_str_radix(&s[start..start + 16], 16)
                .map_err(|_| ParseHashError::Length(64))?;
        }
        Ok(PdqHash(limbs))
    }
}

/// A hash with the reference's quality score (0..=100; below 50 means "not a usable hash").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PdqOutput {
    pub hash: PdqHash,
    pub quality: u32,
}

/// The eight dihedral transformations of an image, in the reference's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dihedral {
    Original,
    Rotate90,
    Rotate180,
    Rotate270,
    FlipX,
    FlipY,
    FlipPlus1,
    FlipMinus1,
}

impl Dihedral {
    pub const ALL: [Dihedral; 8] = [
        Dihedral::Original,
        Dihedral::Rotate90,
        Dihedral::Rotate180,
        Dihedral::Rotate270,
        Dihedral::FlipX,
        Dihedral::FlipY,
        Dihedral::FlipPlus1,
        Dihedral::FlipMinus1,
    ];

    /// Short name used in logs, alerts and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Dihedral::Original => "original",
            Dihedral::Rotate90 => "rot90",
            Dihedral::Rotate180 => "rot180",
            Dihedral::Rotate270 => "rot270",
            Dihedral::FlipX => "flipx",
            Dihedral::FlipY => "flipy",
            Dihedral::FlipPlus1 => "flip+1",
            Dihedral::FlipMinus1 => "flip-1",
        }
    }

    /// Applies the transformation to the 16×16 DCT block: a transpose and/or sign flips of
    /// odd rows or columns, exactly as the reference derives each variant from one DCT.
    pub(super) fn apply(self, a: &[[f32; 16]; 16]) -> [[f32; 16]; 16] {
        let mut b = [[0f32; 16]; 16];
        for i in 0..16 {
            for j in 0..16 {
                let v = a[i][j];
                let (negate, transpose) = match self {
                    Dihedral::Original => (false, false),
                    Dihedral::Rotate90 => (j & 1 == 0, true),
                    Dihedral::Rotate180 => ((i + j) & 1 == 1, false),
                    Dihedral::Rotate270 => (i & 1 == 0, true),
                    Dihedral::FlipX => (i & 1 == 0, false),
                    Dihedral::FlipY => (j & 1 == 0, false),
                    Dihedral::FlipPlus1 => (false, true),
                    Dihedral::FlipMinus1 => ((i + j) & 1 == 1, true),
                };
                let v = if negate { -v } else { v };
                if transpose {
                    b[j][i] = v;
                } else {
                    b[i][j] = v;
                }
            }
        }
        b
    }
}

/// The hashes of all eight dihedral variants of one image, from one DCT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PdqDihedral {
    /// Indexed like [`Dihedral::ALL`]; `hashes[0]` is the plain hash.
    pub hashes: [PdqHash; 8],
    pub quality: u32,
}
