//! Long-term identity: an ed25519 key that names a peer, an X25519 Noise
//! static key bound to it by a signature, and the human-facing forms of both
//! (fingerprints and safety numbers).
//!
//! Nothing here does IO; the key file lives in the application
//! (`natter::keyfile`).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_big_array::BigArray;
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

mod bindings;
mod parsed_keys;
pub use bindings::{VerifiedBindings, VERIFIED_BINDINGS_MAX};
pub use parsed_keys::{ParsedKeys, PARSED_KEYS_MAX};

/// Domain separation strings. Every signature and hash in natter starts with
/// one of these, so a signature made for one purpose is never valid for another.
pub mod domain {
    /// Binds a Noise static key to an identity key.
    pub const NOISE_BINDING: &[u8] = b"natter/1 noise-static-key";
    /// Signs a discovery beacon.
    pub const BEACON: &[u8] = b"natter/1 beacon";
    /// Signs a public chat message so it can be relayed.
    pub const PUBLIC_MESSAGE: &[u8] = b"natter/1 public-message";
    /// Signs a message in a room, over the room's id.
    pub const ROOM_POST: &[u8] = b"natter/1 room-post";
    /// Hashes an open room's name into its id.
    pub const OPEN_ROOM: &[u8] = b"natter/1 open-room";
    /// Hashes an invite-only room's founding record into its id.
    pub const PRIVATE_ROOM: &[u8] = b"natter/1 private-room";
    /// Signs an entry of an invite-only room's membership log.
    pub const ROOM_CONTROL: &[u8] = b"natter/1 room-control";
    /// Signs an encrypted message in an invite-only room.
    pub const SEALED_POST: &[u8] = b"natter/1 sealed-post";
    /// Derives the key that seals a room key to one member (BLAKE3 KDF context).
    pub const ROOM_KEY_ENVELOPE: &str = "natter/1 room-key-envelope";
    /// Names a room-control entry's message id in the store.
    pub const ROOM_CONTROL_ID: &[u8] = b"natter/1 room-control-id";
    /// Hashes an identity key into its fingerprint.
    pub const FINGERPRINT: &[u8] = b"natter/1 fingerprint";
    /// Hashes a pair of identity keys into their safety number.
    pub const SAFETY_NUMBER: &[u8] = b"natter/1 safety-number";
    /// Noise prologue, mixed into the handshake hash by both sides.
    pub const NOISE_PROLOGUE: &[u8] = b"natter/1";
}

/// Errors about keys and signatures.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("identity key is not a valid ed25519 point")]
    BadIdentityKey,
    #[error("Noise static key is all-zero or of low order")]
    LowOrderNoiseKey,
    #[error("the binding signature does not verify")]
    BadBinding,
    #[error("signature does not verify")]
    BadSignature,
    #[error("system random number generator failed: {0}")]
    Random(String),
}

/// Fill `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), IdentityError> {
    getrandom::getrandom(buf).map_err(|e| IdentityError::Random(e.to_string()))
}

/// An ed25519 public key: the name of a peer everywhere in natter.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdentityKey(pub [u8; 32]);

/// An X25519 public key used as a Noise static key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NoiseKey(pub [u8; 32]);

/// An ed25519 signature (`R || S`, 64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SignatureBytes(#[serde(with = "BigArray")] pub [u8; 64]);

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdentityKey({})", Fingerprint::of(self).short())
    }
}

impl std::fmt::Debug for NoiseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NoiseKey(")?;
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

impl std::fmt::Debug for SignatureBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignatureBytes(..)")
    }
}

impl IdentityKey {
    /// Verify `sig` over `domain || msg` with `verify_strict` (rejects
    /// non-canonical and small-order keys and signatures).
    pub fn verify(
        &self,
        domain: &[u8],
        msg: &[u8],
        sig: &SignatureBytes,
    ) -> Result<(), IdentityError> {
        verify_strict(&parsed_keys::parse(self)?, domain, msg, sig)
    }

    /// [`IdentityKey::verify`], taking the key's point from `keys` (made
    /// once per key): the same verdicts, for checking many posts.
    pub fn verify_with(
        &self,
        keys: &mut ParsedKeys,
        domain: &[u8],
        msg: &[u8],
        sig: &SignatureBytes,
    ) -> Result<(), IdentityError> {
        verify_strict(keys.get(self)?, domain, msg, sig)
    }

    /// The human-readable fingerprint of this key.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self)
    }
}

/// `sig` over `domain || msg` by `key`, strictly.
fn verify_strict(
    key: &VerifyingKey,
    domain: &[u8],
    msg: &[u8],
    sig: &SignatureBytes,
) -> Result<(), IdentityError> {
    let sig = Signature::from_bytes(&sig.0);
    let mut data = Vec::with_capacity(domain.len() + msg.len());
    data.extend_from_slice(domain);
    data.extend_from_slice(msg);
    key.verify_strict(&data, &sig)
        .map_err(|_| IdentityError::BadSignature)
}

impl NoiseKey {
    /// True for the all-zero key and every other key of small order, for
    /// which a Diffie-Hellman result would not depend on our secret.
    pub fn is_low_order(&self) -> bool {
        is_low_order(&self.0)
    }
}

/// The encodings of every X25519 public key of small order, as libsodium
/// lists them (`has_small_order` in `crypto_scalarmult/curve25519/ref10`):
/// 0, 1, the two points of order 8, p − 1, p and p + 1. X25519 ignores bit
/// 255, so the check does too. A table lookup costs nothing next to the
/// scalar multiplication the handshake does anyway; the tests check every
/// entry against x25519-dalek's own contributory check.
pub(crate) const SMALL_ORDER: [[u8; 32]; 7] = [
    [0; 32],
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ],
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
        0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
        0x11, 0x57,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

/// True for the all-zero key and every other X25519 key of small order,
/// for which a Diffie-Hellman result would not depend on our secret.
pub fn is_low_order(public: &[u8; 32]) -> bool {
    let mut k = *public;
    k[31] &= 0x7f;
    SMALL_ORDER.contains(&k)
}

/// The slow, obviously right check: X25519 with any clamped scalar (a
/// multiple of 8) sends every point of small order to the identity, which
/// x25519-dalek reports as non-contributory. The tests hold the table to it.
#[cfg(test)]
fn is_low_order_by_dh(public: &[u8; 32]) -> bool {
    let probe = x25519_dalek::StaticSecret::from([0x5a; 32]);
    !probe
        .diffie_hellman(&x25519_dalek::PublicKey::from(*public))
        .was_contributory()
}

/// The message signed to bind a Noise static key to an identity.
fn binding_message(noise: &NoiseKey) -> [u8; 32] {
    noise.0
}

/// The public half of an identity as peers announce it: the identity key,
/// the Noise static key, and the signature binding them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundKeys {
    pub identity: IdentityKey,
    pub noise: NoiseKey,
    pub binding: SignatureBytes,
}

impl BoundKeys {
    /// Check the binding signature and reject low-order Noise keys.
    pub fn verify(&self) -> Result<(), IdentityError> {
        if self.noise.is_low_order() {
            return Err(IdentityError::LowOrderNoiseKey);
        }
        self.identity
            .verify(
                domain::NOISE_BINDING,
                &binding_message(&self.noise),
                &self.binding,
            )
            .map_err(|e| match e {
                IdentityError::BadSignature => IdentityError::BadBinding,
                other => other,
            })
    }
}

/// The local node's secret keys.
pub struct LocalIdentity {
    signing: SigningKey,
    noise_secret: Zeroizing<[u8; 32]>,
    public: BoundKeys,
}

impl std::fmt::Debug for LocalIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalIdentity")
            .field("identity", &self.public.identity)
            .finish_non_exhaustive()
    }
}

impl LocalIdentity {
    /// Build an identity from its two 32-byte secrets.
    pub fn from_secrets(
        ed25519_seed: [u8; 32],
        x25519_secret: [u8; 32],
    ) -> Result<Self, IdentityError> {
        let signing = SigningKey::from_bytes(&ed25519_seed);
        let noise = NoiseKey(crate::x25519::public_key(&x25519_secret));
        if noise.is_low_order() {
            return Err(IdentityError::LowOrderNoiseKey);
        }
        let identity = IdentityKey(signing.verifying_key().to_bytes());
        let mut msg = Vec::with_capacity(domain::NOISE_BINDING.len() + 32);
        msg.extend_from_slice(domain::NOISE_BINDING);
        msg.extend_from_slice(&binding_message(&noise));
        let binding = SignatureBytes(signing.sign(&msg).to_bytes());
        Ok(LocalIdentity {
            signing,
            noise_secret: Zeroizing::new(x25519_secret),
            public: BoundKeys {
                identity,
                noise,
                binding,
            },
        })
    }

    /// A fresh identity from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, IdentityError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        let mut dh = Zeroizing::new([0u8; 32]);
        random_bytes(seed.as_mut())?;
        random_bytes(dh.as_mut())?;
        Self::from_secrets(*seed, *dh)
    }

    pub fn identity_key(&self) -> IdentityKey {
        self.public.identity
    }

    pub fn bound_keys(&self) -> &BoundKeys {
        &self.public
    }

    /// The secret ed25519 seed, for persisting the identity (the
    /// application's key file); nothing else should need it.
    pub fn ed25519_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// The secret X25519 key, for persisting the identity (the key file).
    pub fn noise_secret(&self) -> &[u8; 32] {
        &self.noise_secret
    }

    /// Sign `domain || msg`.
    pub fn sign(&self, domain: &[u8], msg: &[u8]) -> SignatureBytes {
        let mut data = Vec::with_capacity(domain.len() + msg.len());
        data.extend_from_slice(domain);
        data.extend_from_slice(msg);
        SignatureBytes(self.signing.sign(&data).to_bytes())
    }

    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.public.identity)
    }
}

/// A fingerprint: the first 20 bytes of `SHA-256("natter/1 fingerprint" ||
/// identity_key)`, in RFC 4648 base32 (32 characters), shown in eight groups
/// of four separated by `-`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Fingerprint(String);

/// Characters of a full fingerprint, without separators.
pub const FINGERPRINT_CHARS: usize = 32;
/// Characters of the short form shown beside nicknames.
pub const SHORT_FINGERPRINT_CHARS: usize = 8;

impl Fingerprint {
    pub fn of(key: &IdentityKey) -> Fingerprint {
        let mut h = Sha256::new();
        h.update(domain::FINGERPRINT);
        h.update(key.0);
        let digest = h.finalize();
        Fingerprint(data_encoding::BASE32_NOPAD.encode(&digest[..20]))
    }

    /// The 32 characters without separators.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Eight groups of four: `ABCD-EFGH-…`.
    pub fn grouped(&self) -> String {
        group(&self.0, 4, "-")
    }

    /// The first eight characters, as `ABCD-EFGH`.
    pub fn short(&self) -> String {
        group(&self.0[..SHORT_FINGERPRINT_CHARS], 4, "-")
    }

    /// Normalise what a user typed: drop spaces and dashes, uppercase.
    pub fn normalize_input(typed: &str) -> String {
        typed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .flat_map(char::to_uppercase)
            .collect()
    }

    /// What a user typed as a fingerprint or a prefix of one, normalised
    /// ([`Fingerprint::normalize_input`]): `None` unless what remains is
    /// base32 and no longer than a whole fingerprint.
    pub fn typed(text: &str) -> Option<String> {
        let t = Self::normalize_input(text);
        let base32 = |c: char| c.is_ascii_uppercase() || ('2'..='7').contains(&c);
        (t.len() <= FINGERPRINT_CHARS && t.chars().all(base32)).then_some(t)
    }

    /// A normalised fingerprint or prefix as fingerprints are shown:
    /// groups of four joined by `-`.
    pub fn group_typed(normalized: &str) -> String {
        group(normalized, 4, "-")
    }

    /// True if `typed` (normalised) is a prefix of this fingerprint.
    pub fn matches_prefix(&self, typed: &str) -> bool {
        let t = Self::normalize_input(typed);
        !t.is_empty() && self.0.starts_with(&t)
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.grouped())
    }
}

fn group(s: &str, n: usize, sep: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / n);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && i % n == 0 {
            out.push_str(sep);
        }
        out.push(c);
    }
    out
}

/// The safety number of a pair of identities: 60 digits in twelve groups of
/// five, the same on both sides. `SHA-512("natter/1 safety-number" || lo ||
/// hi)` with the two keys sorted bytewise; each group is five digest bytes
/// read as a big-endian integer modulo 100000, zero-padded.
pub fn safety_number(a: &IdentityKey, b: &IdentityKey) -> String {
    let (lo, hi) = if a.0 <= b.0 { (a, b) } else { (b, a) };
    let mut h = Sha512::new();
    h.update(domain::SAFETY_NUMBER);
    h.update(lo.0);
    h.update(hi.0);
    let digest = h.finalize();
    let groups: Vec<String> = digest[..60]
        .chunks(5)
        .map(|c| {
            let v = c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            format!("{:05}", v % 100_000)
        })
        .collect();
    groups.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An identity from fixed secrets (the tests of this module's
    /// submodules use it too).
    pub(super) fn fixed(n: u8) -> LocalIdentity {
        LocalIdentity::from_secrets([n; 32], [n.wrapping_add(100); 32]).unwrap()
    }

    #[test]
    fn binding_verifies_and_detects_tampering() {
        let id = fixed(1);
        let keys = *id.bound_keys();
        assert_eq!(keys.verify(), Ok(()));

        let mut other_noise = keys;
        other_noise.noise = fixed(2).bound_keys().noise;
        assert_eq!(other_noise.verify(), Err(IdentityError::BadBinding));

        let mut flipped = keys;
        flipped.binding.0[10] ^= 1;
        assert_eq!(flipped.verify(), Err(IdentityError::BadBinding));

        let mut other_id = keys;
        other_id.identity = fixed(3).identity_key();
        assert_eq!(other_id.verify(), Err(IdentityError::BadBinding));
    }

    #[test]
    fn signature_domains_do_not_cross() {
        let id = fixed(4);
        let sig = id.sign(domain::BEACON, b"payload");
        assert!(id
            .identity_key()
            .verify(domain::BEACON, b"payload", &sig)
            .is_ok());
        assert!(id
            .identity_key()
            .verify(domain::PUBLIC_MESSAGE, b"payload", &sig)
            .is_err());
    }

    #[test]
    fn low_order_keys_are_detected() {
        assert!(is_low_order(&[0u8; 32]));
        let mut one = [0u8; 32];
        one[0] = 1; // the point u = 1 has order 4
        assert!(is_low_order(&one));
        // A point of order 8.
        let order8 = [
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
        ];
        assert!(is_low_order(&order8));
        assert!(!fixed(5).bound_keys().noise.is_low_order());
    }

    #[test]
    fn the_small_order_table_agrees_with_x25519_dalek() {
        for entry in SMALL_ORDER {
            for high in [0u8, 0x80] {
                let mut k = entry;
                k[31] |= high;
                assert!(
                    is_low_order_by_dh(&k),
                    "table entry {k:02x?} is not small order"
                );
                assert!(is_low_order(&k));
            }
        }
        // Real keys and pseudo-random bytes: both checks say no.
        let mut x = 0x1234_5678_9abc_def0u64;
        for n in 0..200u8 {
            let mut k = [0u8; 32];
            for b in k.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            assert_eq!(is_low_order(&k), is_low_order_by_dh(&k), "{k:02x?}");
            let real = fixed(n).bound_keys().noise.0;
            assert!(!is_low_order(&real) && !is_low_order_by_dh(&real));
        }
    }

    #[test]
    fn fingerprint_shapes() {
        let fp = fixed(1).fingerprint();
        assert_eq!(fp.as_str().len(), FINGERPRINT_CHARS);
        assert_eq!(fp.grouped().len(), 32 + 7);
        assert_eq!(fp.short().len(), 9);
        assert!(fp.matches_prefix(&fp.short().to_lowercase()));
        assert!(!fp.matches_prefix(""));
    }

    #[test]
    fn safety_number_is_symmetric_and_pair_specific() {
        let (a, b, c) = (
            fixed(1).identity_key(),
            fixed(2).identity_key(),
            fixed(3).identity_key(),
        );
        let ab = safety_number(&a, &b);
        assert_eq!(ab, safety_number(&b, &a));
        assert_ne!(ab, safety_number(&a, &c));
        assert_eq!(ab.len(), 12 * 5 + 11);
        assert!(ab.chars().all(|ch| ch.is_ascii_digit() || ch == ' '));
    }
}
