//! FNV-1a (64-bit): the one stable, non-cryptographic hash the workspace uses where a value must
//! be the same on every run and machine (dummy-weight seeds, per-request sampling seeds, the
//! simulated tokenizer's word ids, SGLang-style output file names). `std`'s hashers are
//! randomized per process, so they cannot serve here.

use std::hash::Hasher;

/// The FNV-1a 64-bit offset basis.
const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_seeded(0, bytes)
}

/// FNV-1a of `bytes` started from the offset basis XOR `seed`, so one name hashes differently
/// under different seeds (`fnv1a_seeded(0, b) == fnv1a(b)`).
pub fn fnv1a_seeded(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = fnv::FnvHasher::with_key(OFFSET_BASIS ^ seed);
    h.write(bytes);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published FNV-1a 64 test vectors, and the hand-written fold it replaced.
    #[test]
    fn matches_the_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        let fold = |seed: u64, b: &[u8]| {
            b.iter().fold(OFFSET_BASIS ^ seed, |h, &x| {
                (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
            })
        };
        for (seed, b) in [
            (0, &b"layers.0.weight"[..]),
            (42, b"rid-7"),
            (u64::MAX, b""),
        ] {
            assert_eq!(fnv1a_seeded(seed, b), fold(seed, b));
        }
    }
}
