//! A bounded memory of identity bindings whose signature has already
//! verified, so a peer that reconnects with the same keys costs one
//! `verify_strict` per process rather than one per handshake.
//!
//! Why skipping the check is sound: `verify_strict` is a deterministic
//! function of (identity key, Noise key, signature). The cache holds whole
//! triples, compared byte for byte, and only triples that verified; a hit is
//! exactly the case in which a second check would give the same answer. A
//! triple differing in any byte (another key, a malleated signature) misses
//! and is checked in full. Low-order Noise keys are refused before the
//! cache is asked. Entries are public data; filling the cache only evicts
//! older entries, which then cost one check again.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{BoundKeys, IdentityError};

/// How many verified bindings a node remembers (about 130 bytes each).
pub const VERIFIED_BINDINGS_MAX: usize = 4096;

type Triple = [u8; 128];

/// Verified bindings shared by every handshake of one node; cloning shares
/// the same memory.
#[derive(Clone, Default)]
pub struct VerifiedBindings(Arc<Mutex<Seen>>);

#[derive(Default)]
struct Seen {
    set: HashSet<Triple>,
    /// Insertion order, for evicting the oldest entry.
    order: VecDeque<Triple>,
}

impl Seen {
    fn remember(&mut self, t: Triple) {
        if self.set.insert(t) {
            self.order.push_back(t);
            if self.order.len() > VERIFIED_BINDINGS_MAX {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

fn triple(keys: &BoundKeys) -> Triple {
    let mut t = [0u8; 128];
    t[..32].copy_from_slice(&keys.identity.0);
    t[32..64].copy_from_slice(&keys.noise.0);
    t[64..].copy_from_slice(&keys.binding.0);
    t
}

impl VerifiedBindings {
    /// [`BoundKeys::verify`], answered from memory when these exact keys and
    /// signature verified before.
    pub fn verify(&self, keys: &BoundKeys) -> Result<(), IdentityError> {
        if keys.noise.is_low_order() {
            return Err(IdentityError::LowOrderNoiseKey);
        }
        let t = triple(keys);
        if self.lock().set.contains(&t) {
            return Ok(());
        }
        // Verify without holding the lock: other handshakes need not wait.
        keys.verify()?;
        self.lock().remember(t);
        Ok(())
    }

    /// Number of remembered bindings.
    pub fn len(&self) -> usize {
        self.lock().set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Seen> {
        // The set is valid after any panic mid-update (insert, then push),
        // so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for VerifiedBindings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedBindings")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::LocalIdentity;

    fn keys(n: u8) -> BoundKeys {
        *LocalIdentity::from_secrets([n; 32], [n.wrapping_add(100); 32])
            .unwrap()
            .bound_keys()
    }

    #[test]
    fn only_exact_verified_triples_are_remembered() {
        let cache = VerifiedBindings::default();
        let good = keys(1);
        cache.verify(&good).unwrap();
        cache.verify(&good).unwrap();
        assert_eq!(cache.len(), 1);
        // Each field changed in one bit misses and fails the full check.
        for i in 0..128 {
            let mut t = triple(&good);
            t[i] ^= 1;
            let mut bad = good;
            bad.identity.0.copy_from_slice(&t[..32]);
            bad.noise.0.copy_from_slice(&t[32..64]);
            bad.binding.0.copy_from_slice(&t[64..]);
            assert!(cache.verify(&bad).is_err(), "byte {i}");
        }
        assert_eq!(cache.len(), 1, "failures are not remembered");
    }

    #[test]
    fn low_order_noise_keys_are_refused_before_the_cache() {
        let cache = VerifiedBindings::default();
        let mut k = keys(2);
        k.noise.0 = [0; 32];
        assert_eq!(cache.verify(&k), Err(IdentityError::LowOrderNoiseKey));
    }

    #[test]
    fn the_memory_is_bounded_and_forgets_the_oldest() {
        let cache = VerifiedBindings::default();
        let first = keys(0);
        cache.verify(&first).unwrap();
        let mut t = triple(&first);
        {
            // Fill with synthetic entries directly: signing 4096 keys is slow.
            let mut seen = cache.lock();
            for i in 0..VERIFIED_BINDINGS_MAX as u32 - 1 {
                t[..4].copy_from_slice(&i.to_le_bytes());
                t[4] = 0xff;
                seen.remember(t);
            }
        }
        assert_eq!(cache.len(), VERIFIED_BINDINGS_MAX);
        assert!(cache.lock().set.contains(&triple(&first)));
        cache.verify(&keys(3)).unwrap();
        assert_eq!(cache.len(), VERIFIED_BINDINGS_MAX);
        assert!(
            !cache.lock().set.contains(&triple(&first)),
            "oldest forgotten"
        );
        assert!(cache.lock().set.contains(&triple(&keys(3))));
    }
}
