//! Seed derivation shared by every layer that needs independent random streams from one seed (the
//! simulator's nodes and network, the runtime's fault layer and dialers): the same seed and salt
//! always give the same stream, and different salts give unrelated ones.

/// Deterministically derives an independent seed from `seed` and `salt` (splitmix64).
pub fn mix(seed: u64, salt: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::mix;

    #[test]
    fn the_same_inputs_give_the_same_seed_and_salts_separate_streams() {
        assert_eq!(mix(7, 1), mix(7, 1));
        assert_ne!(mix(7, 1), mix(7, 2));
        assert_ne!(mix(7, 1), mix(8, 1));
    }
}
