//! snow's X25519 (`Dh` for `25519`) on natter's [`crate::x25519`]: what the
//! handshake's resolver gives snow for its static and ephemeral keys.
//! Results of all zeros (a peer key of low order) are returned as they
//! are, as snow's default does: the handshake refuses such keys itself
//! (PROTOCOL.md 3.4), before or right after the Diffie-Hellman.

use zeroize::Zeroizing;

use crate::x25519::{Backend, KEY_LEN};

/// snow's `Dh` for `25519` on [`Backend::current`].
pub(super) struct NoiseX25519 {
    backend: Backend,
    secret: Zeroizing<[u8; KEY_LEN]>,
    public: [u8; KEY_LEN],
}

impl NoiseX25519 {
    pub(super) fn new() -> NoiseX25519 {
        NoiseX25519 {
            backend: Backend::current(),
            secret: Zeroizing::new([0; KEY_LEN]),
            public: [0; KEY_LEN],
        }
    }

    fn derive_public(&mut self) {
        self.public = self.backend.public_key(&self.secret);
    }
}

impl snow::types::Dh for NoiseX25519 {
    fn name(&self) -> &'static str {
        "25519"
    }

    fn pub_len(&self) -> usize {
        KEY_LEN
    }

    fn priv_len(&self) -> usize {
        KEY_LEN
    }

    fn set(&mut self, privkey: &[u8]) {
        // snow hands over `priv_len` bytes (the builder checks the length).
        let n = privkey.len().min(KEY_LEN);
        *self.secret = [0; KEY_LEN];
        self.secret[..n].copy_from_slice(&privkey[..n]);
        self.derive_public();
    }

    fn generate(&mut self, rng: &mut dyn snow::types::Random) -> Result<(), snow::Error> {
        rng.try_fill_bytes(&mut self.secret[..])?;
        self.derive_public();
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.public
    }

    fn privkey(&self) -> &[u8] {
        &self.secret[..]
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let (Some(u), Some(out)) = (pubkey.get(..KEY_LEN), out.get_mut(..KEY_LEN)) else {
            return Err(snow::Error::Dh);
        };
        let mut peer = [0; KEY_LEN];
        peer.copy_from_slice(u);
        out.copy_from_slice(&self.backend.scalar_mult(&self.secret, &peer));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use snow::resolvers::CryptoResolver;
    use snow::types::Dh;

    fn hex32(s: &str) -> [u8; 32] {
        let v = hex::decode(s).unwrap();
        v.try_into().unwrap()
    }

    /// snow's view: a key set or generated has the public key the function
    /// gives, and two parties reach the same secret.
    #[test]
    fn snow_dh_sets_generates_and_agrees() {
        let mut a = NoiseX25519::new();
        a.set(&hex32(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        assert_eq!(
            a.pubkey(),
            hex32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
        let mut rng = snow::resolvers::DefaultResolver
            .resolve_rng()
            .expect("snow's default random source");
        let mut b = NoiseX25519::new();
        b.generate(&mut *rng).unwrap();
        assert_eq!(
            b.pubkey(),
            Backend::Dalek.public_key(b.privkey().try_into().unwrap())
        );
        let (mut ab, mut ba) = ([0u8; 32], [0u8; 32]);
        a.dh(b.pubkey(), &mut ab).unwrap();
        b.dh(a.pubkey(), &mut ba).unwrap();
        assert_eq!(ab, ba);
        assert_ne!(ab, [0; 32]);
        assert_eq!(a.dh(&[9; 31], &mut ab), Err(snow::Error::Dh));
        assert_eq!(a.dh(b.pubkey(), &mut [0; 31]), Err(snow::Error::Dh));
    }
}
