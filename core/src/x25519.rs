//! X25519, for every Diffie-Hellman natter does (the Noise handshake, room
//! key envelopes): graviola's where the CPU allows it, x25519-dalek (what
//! snow's default resolver uses) everywhere else.
//!
//! Why: a handshake is four X25519 multiplications by the base and six by
//! a peer's key (both sides together), and with x25519-dalek they were most
//! of its CPU time. graviola runs s2n-bignum's X25519, x86_64 and aarch64
//! assembly proved correct in HOL Light, constant-time by construction:
//! 2.2 × x25519-dalek's speed per Diffie-Hellman and twice its speed by the
//! base on the reference machine (docs/PERFORMANCE.md, "Handshakes on
//! graviola's X25519"). Both compute RFC 7748's function, byte for byte;
//! the tests hold them to its vectors and to each other.
//!
//! graviola needs a few CPU features (x86_64: AES-NI, PCLMULQDQ, BMI1/2,
//! ADX, AVX, AVX2; aarch64: NEON, AES, PMULL, SHA2) and panics without them,
//! so the choice is made once, at run time, from what the CPU reports.

use std::sync::OnceLock;

use zeroize::Zeroizing;

/// Length of a key, a u-coordinate and a result.
pub const KEY_LEN: usize = 32;

/// Which implementation computes X25519 in this process
/// ([`Backend::current`]; graviola on a CPU without its features would
/// stop the process, so nothing else chooses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// graviola (s2n-bignum's assembly): the CPU has what it needs.
    Graviola,
    /// x25519-dalek: any other CPU.
    Dalek,
}

impl Backend {
    /// The implementation this process uses, chosen on first use.
    pub fn current() -> Backend {
        static CHOSEN: OnceLock<Backend> = OnceLock::new();
        *CHOSEN.get_or_init(|| {
            if graviola_runs_here() {
                Backend::Graviola
            } else {
                Backend::Dalek
            }
        })
    }

    /// X25519(`secret`, `u`): RFC 7748 section 5, the scalar clamped.
    pub(crate) fn scalar_mult(self, secret: &[u8; KEY_LEN], u: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
        match self {
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            Backend::Graviola => {
                use graviola::key_agreement::x25519;
                let secret = x25519::StaticPrivateKey::from_array(secret);
                match secret.diffie_hellman(&x25519::PublicKey::from_array(u)) {
                    Ok(shared) => shared.as_bytes(),
                    // graviola reports an all-zero result as an error; the
                    // function's value is those zeros.
                    Err(_) => [0; KEY_LEN],
                }
            }
            _ => x25519_dalek::x25519(*secret, *u),
        }
    }

    /// The public key of `secret`: X25519(`secret`, 9).
    pub(crate) fn public_key(self, secret: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
        match self {
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            Backend::Graviola => {
                graviola::key_agreement::x25519::StaticPrivateKey::from_array(secret)
                    .public_key()
                    .as_bytes()
            }
            _ => x25519_dalek::x25519(*secret, x25519_dalek::X25519_BASEPOINT_BYTES),
        }
    }
}

/// X25519(`secret`, `public`) on [`Backend::current`], or `None` when the
/// result is 32 zero bytes: `public` is of low order and the result would
/// be known to anyone (RFC 7748 section 6.1). The check reads every byte
/// whatever their values.
pub fn diffie_hellman(
    secret: &[u8; KEY_LEN],
    public: &[u8; KEY_LEN],
) -> Option<Zeroizing<[u8; KEY_LEN]>> {
    let shared = Zeroizing::new(Backend::current().scalar_mult(secret, public));
    let any = shared.iter().fold(0u8, |acc, b| acc | b);
    (any != 0).then_some(shared)
}

/// The public key of `secret` on [`Backend::current`].
pub fn public_key(secret: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    Backend::current().public_key(secret)
}

/// Whether this CPU has every feature graviola requires: a superset of its
/// own check (`is_cpu_supported`), which it asserts on every call.
pub(crate) fn graviola_runs_here() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("aes")
            && std::is_x86_feature_detected!("pclmulqdq")
            && std::is_x86_feature_detected!("bmi1")
            && std::is_x86_feature_detected!("bmi2")
            && std::is_x86_feature_detected!("adx")
            && std::is_x86_feature_detected!("avx")
            && std::is_x86_feature_detected!("avx2")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("neon")
            && std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
            && std::arch::is_aarch64_feature_detected!("sha2")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        let v = hex::decode(s).unwrap();
        v.try_into().unwrap()
    }

    /// Every backend this machine can run; graviola's absence is said out
    /// loud, since then only one implementation is under test.
    fn backends() -> Vec<Backend> {
        if graviola_runs_here() {
            vec![Backend::Graviola, Backend::Dalek]
        } else {
            eprintln!("this CPU cannot run graviola: testing x25519-dalek only");
            vec![Backend::Dalek]
        }
    }

    #[test]
    fn the_process_uses_graviola_where_the_cpu_allows_it() {
        let expected = if graviola_runs_here() {
            Backend::Graviola
        } else {
            Backend::Dalek
        };
        assert_eq!(Backend::current(), expected);
    }

    /// RFC 7748 section 5.2: the two single-step vectors (the second has a
    /// u-coordinate with bit 255 set, which X25519 ignores), and the
    /// iterated function after 1 and 1,000 steps.
    #[test]
    fn rfc7748_vectors() {
        let single = [
            (
                "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
                "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
                "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
            ),
            (
                "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
                "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
                "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
            ),
        ];
        for backend in backends() {
            for (k, u, out) in single {
                assert_eq!(
                    backend.scalar_mult(&hex32(k), &hex32(u)),
                    hex32(out),
                    "{backend:?}"
                );
            }
            let (mut k, mut u) = ([0u8; 32], [0u8; 32]);
            k[0] = 9;
            u[0] = 9;
            for step in 1..=1000 {
                let next = backend.scalar_mult(&k, &u);
                u = k;
                k = next;
                if step == 1 {
                    assert_eq!(
                        k,
                        hex32("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"),
                        "{backend:?}"
                    );
                }
            }
            assert_eq!(
                k,
                hex32("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"),
                "{backend:?}"
            );
        }
    }

    /// RFC 7748 section 6.1: Alice's and Bob's key pairs and their shared
    /// secret.
    #[test]
    fn rfc7748_key_agreement() {
        let alice = hex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let alice_pub = hex32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let bob = hex32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        let bob_pub = hex32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let shared = hex32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        for backend in backends() {
            assert_eq!(backend.public_key(&alice), alice_pub, "{backend:?}");
            assert_eq!(backend.public_key(&bob), bob_pub, "{backend:?}");
            assert_eq!(backend.scalar_mult(&alice, &bob_pub), shared, "{backend:?}");
            assert_eq!(backend.scalar_mult(&bob, &alice_pub), shared, "{backend:?}");
        }
    }

    /// The two implementations agree on keys neither vector covers: random
    /// scalars (clamping included), random u-coordinates (points on the
    /// twist and non-canonical encodings among them), and every key of low
    /// order, whose result is 32 zero bytes on both.
    #[test]
    fn graviola_and_dalek_agree() {
        if !graviola_runs_here() {
            eprintln!("this CPU cannot run graviola: nothing to compare");
            return;
        }
        let mut rng = crate::rng::Rng::new(0x2551_9000);
        let mut fill = |b: &mut [u8; 32]| {
            for chunk in b.chunks_mut(8) {
                chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
            }
        };
        for _ in 0..2000 {
            let (mut k, mut u) = ([0u8; 32], [0u8; 32]);
            fill(&mut k);
            fill(&mut u);
            assert_eq!(
                Backend::Graviola.scalar_mult(&k, &u),
                Backend::Dalek.scalar_mult(&k, &u),
                "k {} u {}",
                hex::encode(k),
                hex::encode(u)
            );
            assert_eq!(
                Backend::Graviola.public_key(&k),
                Backend::Dalek.public_key(&k)
            );
        }
        let k = [0x5a; 32];
        for mut u in crate::identity::SMALL_ORDER {
            for top in [0, 0x80] {
                u[31] = (u[31] & 0x7f) | top;
                assert_eq!(Backend::Graviola.scalar_mult(&k, &u), [0; 32]);
                assert_eq!(Backend::Dalek.scalar_mult(&k, &u), [0; 32]);
            }
        }
    }

    /// What room key envelopes use: the shared secret, or nothing for a
    /// low-order peer key, whose result anyone knows.
    #[test]
    fn diffie_hellman_refuses_low_order_keys() {
        let alice = hex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let bob_pub = hex32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let shared = diffie_hellman(&alice, &bob_pub).expect("a contributory result");
        assert_eq!(
            *shared,
            hex32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        );
        assert_eq!(public_key(&alice), Backend::Dalek.public_key(&alice));
        for low in crate::identity::SMALL_ORDER {
            assert!(
                diffie_hellman(&alice, &low).is_none(),
                "{}",
                hex::encode(low)
            );
        }
    }
}
