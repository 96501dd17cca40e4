//! The cryptography of invite-only rooms: a room key sealed to one member,
//! and posts encrypted under a room key.
//!
//! A room key (32 random bytes per key epoch) reaches a member in a
//! [`KeyEnvelope`]: a one-time X25519 key `e`, and the room key encrypted
//! with ChaCha20-Poly1305 (all-zero nonce: every key is used once) under
//!
//! ```text
//! k = BLAKE3-derive-key("natter/1 room-key-envelope", e_pub || member_noise || X25519(e, member_noise))
//! ```
//!
//! with associated data `room_id || epoch (u32 LE) || member identity`, so
//! an envelope opens only for that member, room and epoch. `member_noise`
//! is the member's Noise static key, bound to its identity by the binding
//! signature; the derivation's own context string keeps this use apart from
//! the Noise handshake's. A post's text is XChaCha20-Poly1305 under the
//! room key with a random 24-byte nonce and associated data `room_id ||
//! epoch (u32 LE) || id || author || timestamp_ms (u64 LE)`.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::identity::{domain, random_bytes, BoundKeys, IdentityKey};
use crate::wire::{KeyEnvelope, MessageId, RoomId, SealedPost};
use crate::x25519;

/// A room key of one epoch.
pub type RoomKey = Zeroizing<[u8; 32]>;

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoomKeyError {
    #[error("no randomness for a room key")]
    Random,
    #[error("the member's Noise key is of low order")]
    LowOrder,
    #[error("the envelope does not open with our key")]
    Envelope,
    #[error("the post does not decrypt with the room key of its epoch")]
    Post,
}

/// A fresh random room key.
pub fn new_room_key() -> Result<RoomKey, RoomKeyError> {
    let mut k = Zeroizing::new([0u8; 32]);
    random_bytes(&mut k[..]).map_err(|_| RoomKeyError::Random)?;
    Ok(k)
}

fn envelope_key(ephemeral: &[u8; 32], member_noise: &[u8; 32], dh: &[u8; 32]) -> [u8; 32] {
    let mut material = [0u8; 96];
    material[..32].copy_from_slice(ephemeral);
    material[32..64].copy_from_slice(member_noise);
    material[64..].copy_from_slice(dh);
    blake3::derive_key(domain::ROOM_KEY_ENVELOPE, &material)
}

fn envelope_aad(room: &RoomId, epoch: u32, member: &IdentityKey) -> Vec<u8> {
    [&room.0[..], &epoch.to_le_bytes(), &member.0].concat()
}

/// Seals `key` (epoch `epoch` of `room`) to `member`.
pub fn seal_key(
    key: &[u8; 32],
    room: &RoomId,
    epoch: u32,
    member: &BoundKeys,
) -> Result<KeyEnvelope, RoomKeyError> {
    let mut secret = Zeroizing::new([0u8; 32]);
    random_bytes(&mut secret[..]).map_err(|_| RoomKeyError::Random)?;
    seal_key_with_ephemeral(&secret, key, room, epoch, member)
}

/// [`seal_key`] with a given one-time secret: for test vectors only (a
/// reused one-time key would let anyone who saw both envelopes compare
/// them).
pub fn seal_key_with_ephemeral(
    ephemeral: &[u8; 32],
    key: &[u8; 32],
    room: &RoomId,
    epoch: u32,
    member: &BoundKeys,
) -> Result<KeyEnvelope, RoomKeyError> {
    if member.noise.is_low_order() {
        return Err(RoomKeyError::LowOrder);
    }
    let eph_pub = x25519::public_key(ephemeral);
    let dh = x25519::diffie_hellman(ephemeral, &member.noise.0).ok_or(RoomKeyError::LowOrder)?;
    let k = Zeroizing::new(envelope_key(&eph_pub, &member.noise.0, &dh));
    let aad = envelope_aad(room, epoch, &member.identity);
    let sealed = ChaCha20Poly1305::new(k.as_ref().into())
        .encrypt(
            &Nonce::default(),
            Payload {
                msg: key,
                aad: &aad,
            },
        )
        .map_err(|_| RoomKeyError::Envelope)?;
    let sealed: [u8; 48] = sealed.try_into().map_err(|_| RoomKeyError::Envelope)?;
    Ok(KeyEnvelope {
        ephemeral: eph_pub,
        sealed,
    })
}

/// Opens an envelope sealed to us: `noise_secret` is our Noise static
/// secret, `me` our bound keys.
pub fn open_key(
    noise_secret: &[u8; 32],
    me: &BoundKeys,
    envelope: &KeyEnvelope,
    room: &RoomId,
    epoch: u32,
) -> Result<RoomKey, RoomKeyError> {
    let dh =
        x25519::diffie_hellman(noise_secret, &envelope.ephemeral).ok_or(RoomKeyError::Envelope)?;
    let k = Zeroizing::new(envelope_key(&envelope.ephemeral, &me.noise.0, &dh));
    let aad = envelope_aad(room, epoch, &me.identity);
    let plain = Zeroizing::new(
        ChaCha20Poly1305::new(k.as_ref().into())
            .decrypt(
                &Nonce::default(),
                Payload {
                    msg: &envelope.sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| RoomKeyError::Envelope)?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    if plain.len() != 32 {
        return Err(RoomKeyError::Envelope);
    }
    key.copy_from_slice(&plain);
    Ok(key)
}

fn post_aad(room: &RoomId, epoch: u32, id: &MessageId, author: &IdentityKey, ts: u64) -> Vec<u8> {
    [
        &room.0[..],
        &epoch.to_le_bytes(),
        id,
        &author.0,
        &ts.to_le_bytes(),
    ]
    .concat()
}

/// The text of a post, encrypted: the random nonce and the ciphertext.
pub fn encrypt_post(
    key: &[u8; 32],
    room: &RoomId,
    epoch: u32,
    id: &MessageId,
    author: &IdentityKey,
    timestamp_ms: u64,
    text: &str,
) -> Result<([u8; 24], Vec<u8>), RoomKeyError> {
    let mut nonce = [0u8; 24];
    random_bytes(&mut nonce).map_err(|_| RoomKeyError::Random)?;
    let ct = encrypt_post_with_nonce(&nonce, key, room, epoch, id, author, timestamp_ms, text)?;
    Ok((nonce, ct))
}

/// [`encrypt_post`] with a given nonce (test vectors).
#[allow(clippy::too_many_arguments)]
pub fn encrypt_post_with_nonce(
    nonce: &[u8; 24],
    key: &[u8; 32],
    room: &RoomId,
    epoch: u32,
    id: &MessageId,
    author: &IdentityKey,
    timestamp_ms: u64,
    text: &str,
) -> Result<Vec<u8>, RoomKeyError> {
    let aad = post_aad(room, epoch, id, author, timestamp_ms);
    XChaCha20Poly1305::new(key.into())
        .encrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: text.as_bytes(),
                aad: &aad,
            },
        )
        .map_err(|_| RoomKeyError::Post)
}

/// The text of a sealed post, with the key of its epoch.
pub fn decrypt_post(key: &[u8; 32], p: &SealedPost) -> Result<String, RoomKeyError> {
    let aad = post_aad(&p.room, p.epoch, &p.id, &p.author, p.timestamp_ms);
    let plain = XChaCha20Poly1305::new(key.into())
        .decrypt(
            XNonce::from_slice(&p.nonce),
            Payload {
                msg: &p.ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| RoomKeyError::Post)?;
    String::from_utf8(plain).map_err(|_| RoomKeyError::Post)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::LocalIdentity;

    fn id(n: u8) -> LocalIdentity {
        LocalIdentity::from_secrets([n; 32], [n.wrapping_add(50); 32]).unwrap()
    }

    #[test]
    fn an_envelope_opens_only_for_its_member_room_and_epoch() {
        let (bob, carol) = (id(2), id(3));
        let room = RoomId([7; 32]);
        let key = new_room_key().unwrap();
        let env = seal_key(&key, &room, 4, bob.bound_keys()).unwrap();
        let got = open_key(bob.noise_secret(), bob.bound_keys(), &env, &room, 4).unwrap();
        assert_eq!(*got, *key);
        let wrong = [
            open_key(carol.noise_secret(), carol.bound_keys(), &env, &room, 4),
            open_key(
                bob.noise_secret(),
                bob.bound_keys(),
                &env,
                &RoomId([8; 32]),
                4,
            ),
            open_key(bob.noise_secret(), bob.bound_keys(), &env, &room, 5),
        ];
        assert!(wrong.iter().all(|r| r == &Err(RoomKeyError::Envelope)));
        let mut flipped = env.clone();
        flipped.sealed[3] ^= 1;
        assert!(open_key(bob.noise_secret(), bob.bound_keys(), &flipped, &room, 4).is_err());
        let mut low = *bob.bound_keys();
        low.noise.0 = [0; 32];
        assert_eq!(seal_key(&key, &room, 4, &low), Err(RoomKeyError::LowOrder));
    }

    #[test]
    fn a_post_decrypts_only_with_its_key_and_unchanged_fields() {
        let key = new_room_key().unwrap();
        let room = RoomId([1; 32]);
        let author = id(4).identity_key();
        let (nonce, ciphertext) =
            encrypt_post(&key, &room, 2, &[9; 16], &author, 77, "secret").unwrap();
        let post = SealedPost {
            room,
            id: [9; 16],
            author,
            timestamp_ms: 77,
            epoch: 2,
            nonce,
            ciphertext,
            signature: crate::identity::SignatureBytes([0; 64]),
        };
        assert_eq!(decrypt_post(&key, &post).unwrap(), "secret");
        let other = new_room_key().unwrap();
        assert_eq!(decrypt_post(&other, &post), Err(RoomKeyError::Post));
        for change in 0..4 {
            let mut p = post.clone();
            match change {
                0 => p.epoch = 3,
                1 => p.timestamp_ms = 78,
                2 => p.id[0] ^= 1,
                _ => p.room = RoomId([2; 32]),
            }
            assert_eq!(
                decrypt_post(&key, &p),
                Err(RoomKeyError::Post),
                "change {change}"
            );
        }
    }
}
