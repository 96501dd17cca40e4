//! Identity keys decompressed once for many signature checks.
//!
//! `verify_strict` needs the author's key as a curve point; getting it from
//! the 32 bytes on the wire (a square root) is about a tenth of a check.
//! A batch of public posts mostly comes from few authors, so a check
//! worker keeps the points it has made. Only the point is kept, never a
//! verdict: every signature is still checked in full.

use super::{IdentityError, IdentityKey};
use ed25519_dalek::VerifyingKey;
use std::collections::hash_map::Entry;
use std::collections::HashMap;

/// Most keys a [`ParsedKeys`] holds. When a new key finds it full it is
/// emptied first: a stranger who signs every post with a fresh key costs
/// what checking without it costs, and the memory stays about 50 KiB.
pub const PARSED_KEYS_MAX: usize = 256;

/// Authors' keys as points, by their bytes; one per check worker.
#[derive(Default)]
pub struct ParsedKeys {
    points: HashMap<IdentityKey, VerifyingKey>,
}

impl ParsedKeys {
    /// `key` as a point: made once, then looked up. A key that is not a
    /// point is refused each time and never kept.
    pub fn get(&mut self, key: &IdentityKey) -> Result<&VerifyingKey, IdentityError> {
        if self.points.len() >= PARSED_KEYS_MAX && !self.points.contains_key(key) {
            self.points.clear();
        }
        match self.points.entry(*key) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(e) => Ok(e.insert(parse(key)?)),
        }
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// The point of `key`, or `BadIdentityKey`.
pub(super) fn parse(key: &IdentityKey) -> Result<VerifyingKey, IdentityError> {
    VerifyingKey::from_bytes(&key.0).map_err(|_| IdentityError::BadIdentityKey)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::tests::fixed;
    use crate::identity::{LocalIdentity, SignatureBytes};

    #[test]
    fn a_kept_key_checks_every_signature_in_full() {
        let me = fixed(7);
        let key = me.identity_key();
        let sig = me.sign(b"dom", b"hello");
        let mut keys = ParsedKeys::default();
        assert_eq!(key.verify_with(&mut keys, b"dom", b"hello", &sig), Ok(()));
        assert_eq!(keys.len(), 1);
        // The same author, now a wrong message and a wrong signature: the
        // point is reused, the verdict is not.
        assert_eq!(
            key.verify_with(&mut keys, b"dom", b"hullo", &sig),
            Err(IdentityError::BadSignature)
        );
        let mut bad = sig;
        bad.0[40] ^= 1;
        assert_eq!(
            key.verify_with(&mut keys, b"dom", b"hello", &bad),
            Err(IdentityError::BadSignature)
        );
        // Another author's signature under this key fails.
        let other = fixed(9).sign(b"dom", b"hello");
        assert_eq!(
            key.verify_with(&mut keys, b"dom", b"hello", &other),
            Err(IdentityError::BadSignature)
        );
        assert_eq!(keys.len(), 1);
    }

    #[test]
    fn keys_that_are_not_points_or_are_weak_are_refused_as_without_it() {
        let mut keys = ParsedKeys::default();
        let sig = SignatureBytes([0; 64]);
        // Not on the curve (y = 2 has no x), and the identity point (small order).
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        for bytes in [not_a_point, identity_point] {
            let key = IdentityKey(bytes);
            for _ in 0..2 {
                assert_eq!(
                    key.verify_with(&mut keys, b"dom", b"m", &sig),
                    key.verify(b"dom", b"m", &sig)
                );
                assert!(key.verify_with(&mut keys, b"dom", b"m", &sig).is_err());
            }
        }
        // The one that is no point is not kept.
        assert!(!keys.points.contains_key(&IdentityKey(not_a_point)));
    }

    #[test]
    fn the_keys_held_stay_bounded() {
        let mut keys = ParsedKeys::default();
        for n in 0..=PARSED_KEYS_MAX as u32 {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&n.to_le_bytes());
            let id = LocalIdentity::from_secrets(seed, [1; 32]).unwrap();
            let sig = id.sign(b"dom", b"m");
            assert_eq!(
                id.identity_key().verify_with(&mut keys, b"dom", b"m", &sig),
                Ok(())
            );
            assert!(keys.len() <= PARSED_KEYS_MAX);
        }
        // The key past the bound found it full and started it over.
        assert_eq!(keys.len(), 1);
    }
}
