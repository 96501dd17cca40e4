//! A small deterministic pseudo-random generator for timing decisions:
//! beacon jitter and reconnect backoff.
//!
//! **Not for keys, nonces or anything secret.** Keys come from the operating
//! system through [`crate::identity::random_bytes`]. This generator exists so
//! the state machines can take their randomness as a value: tests seed it
//! with a constant and get the same schedule every run; the node seeds it
//! once from the OS with [`Rng::from_os`].
//!
//! The algorithm is SplitMix64 (Steele, Lea, Flood 2014): one 64-bit word of
//! state, passes BigCrush, and every seed (zero included) is fine.

/// The operating system's random source could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("system random number generator failed: {0}")]
pub struct RngError(String);

/// SplitMix64. Cheap to copy; clone it to fork a reproducible stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose whole output is fixed by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// A generator seeded from the operating system.
    pub fn from_os() -> Result<Rng, RngError> {
        let mut seed = [0u8; 8];
        getrandom::getrandom(&mut seed).map_err(|e| RngError(e.to_string()))?;
        Ok(Rng::new(u64::from_le_bytes(seed)))
    }

    /// The next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`, without modulo bias. `below(0)` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Lemire's multiply-and-reject: the high word of x * n is uniform in
        // 0..n once the few low words that would bias it are rejected.
        let threshold = n.wrapping_neg() % n; // (2^64 - n) mod n
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// Uniform in `lo..=hi` (both ends included). If `hi < lo` the two are
    /// swapped.
    pub fn range_ms(&mut self, lo: u64, hi: u64) -> u64 {
        let (lo, hi) = if hi < lo { (hi, lo) } else { (lo, hi) };
        match (hi - lo).checked_add(1) {
            Some(span) => lo + self.below(span),
            None => self.next_u64(), // the whole u64 range
        }
    }

    /// Uniform in `base × (1 ± fraction)`, both ends included, in whole
    /// milliseconds. `fraction` is clamped to `0.0..=1.0`; NaN counts as 0.
    pub fn jitter(&mut self, base_ms: u64, fraction: f64) -> u64 {
        let f = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        // `as` from f64 saturates, so this cannot overflow.
        let spread = (base_ms as f64 * f) as u64;
        let spread = spread.min(base_ms);
        self.range_ms(base_ms - spread, base_ms.saturating_add(spread))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_values() {
        // First outputs for seed 1234567 of the published algorithm
        // (splitmix64.c), cross-checked with an independent implementation.
        let mut r = Rng::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(r.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(42);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(42);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(43);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn below_stays_below_and_covers_the_range() {
        let mut r = Rng::new(7);
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below(1), 0);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let v = r.below(10);
            assert!(v < 10);
            seen[v as usize] += 1;
        }
        // Each bucket expects 1000; a fair generator lands well inside this.
        for (i, n) in seen.iter().enumerate() {
            assert!((850..1150).contains(n), "bucket {i}: {n}");
        }
        // A large n near 2^64 must not loop forever or exceed n.
        for _ in 0..1000 {
            assert!(r.below(u64::MAX - 1) < u64::MAX - 1);
        }
    }

    #[test]
    fn range_ms_is_inclusive_and_order_insensitive() {
        let mut r = Rng::new(9);
        let (mut lo_hit, mut hi_hit) = (false, false);
        for _ in 0..2000 {
            let v = r.range_ms(200, 205);
            assert!((200..=205).contains(&v));
            lo_hit |= v == 200;
            hi_hit |= v == 205;
        }
        assert!(lo_hit && hi_hit);
        assert_eq!(r.range_ms(5, 5), 5);
        for _ in 0..100 {
            assert!((3..=8).contains(&r.range_ms(8, 3)));
        }
        let _ = r.range_ms(0, u64::MAX); // whole range: no overflow
    }

    #[test]
    fn jitter_stays_within_bounds_and_actually_varies() {
        let mut r = Rng::new(11);
        let mut values = std::collections::BTreeSet::new();
        for _ in 0..2000 {
            let v = r.jitter(5000, 0.2);
            assert!((4000..=6000).contains(&v), "{v}");
            values.insert(v);
        }
        assert!(values.len() > 100, "jitter barely varies");
        assert!(*values.first().unwrap() < 4200 && *values.last().unwrap() > 5800);
        assert_eq!(r.jitter(5000, 0.0), 5000);
        assert_eq!(r.jitter(5000, f64::NAN), 5000);
        assert!(r.jitter(5000, 7.0) <= 10_000); // clamped to ±100 %
        assert!(r.jitter(u64::MAX, 0.5) >= u64::MAX / 2 - 1);
    }

    #[test]
    fn from_os_seeds_differ() {
        let a = Rng::from_os().unwrap();
        let b = Rng::from_os().unwrap();
        assert_ne!(a, b);
    }
}
