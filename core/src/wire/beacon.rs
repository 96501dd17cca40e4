//! The UDP discovery beacon.
//!
//! A beacon datagram is `body || signature`: the postcard encoding of
//! [`BeaconBody`] followed by 64 bytes of ed25519 signature by the identity
//! key over `"natter/1 beacon" || body`. The receiver verifies the exact bytes
//! it received, then decodes them with the exact, canonical decoder.

use super::codec::{check_len, decode_exact, encode, WireError};
use super::limits::{MAX_BEACON_LEN, MAX_NICK_LEN, PROTOCOL_VERSION};
use crate::identity::{domain, BoundKeys, LocalIdentity, SignatureBytes};
use serde::{Deserialize, Serialize};

/// What a beacon announces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeaconBody {
    /// [`PROTOCOL_VERSION`].
    pub version: u8,
    /// Identity key, Noise static key and the binding signature.
    pub keys: BoundKeys,
    /// TCP port the sender accepts links on.
    pub tcp_port: u16,
    /// Display name, at most [`MAX_NICK_LEN`] bytes of UTF-8. Untrusted.
    pub nickname: String,
    /// Random per process start; a new value means the peer restarted.
    pub instance: u64,
    /// Increases by one with every beacon of this instance.
    pub seq: u64,
    /// Sender's clock, milliseconds since the Unix epoch. Informational.
    pub timestamp_ms: u64,
}

/// Length of the signature trailer.
pub const SIGNATURE_LEN: usize = 64;

/// Sign and encode a beacon.
pub fn encode_beacon(body: &BeaconBody, id: &LocalIdentity) -> Result<Vec<u8>, WireError> {
    check_len("nickname", body.nickname.len(), MAX_NICK_LEN)?;
    let mut out = encode(body);
    let sig = id.sign(domain::BEACON, &out);
    out.extend_from_slice(&sig.0);
    check_len("beacon", out.len(), MAX_BEACON_LEN)?;
    Ok(out)
}

/// Cheap structural checks only: size, exact decoding, version, limits.
/// No cryptography; callers rate-limit before calling [`verify_beacon`].
pub fn parse_beacon(packet: &[u8]) -> Result<(BeaconBody, &[u8], SignatureBytes), WireError> {
    check_len("beacon", packet.len(), MAX_BEACON_LEN)?;
    if packet.len() <= SIGNATURE_LEN {
        return Err(WireError::Malformed(
            "beacon shorter than its signature".into(),
        ));
    }
    let (body_bytes, sig) = packet.split_at(packet.len() - SIGNATURE_LEN);
    let body: BeaconBody = decode_exact(body_bytes)?;
    if body.version != PROTOCOL_VERSION {
        return Err(WireError::Version(body.version));
    }
    check_len("nickname", body.nickname.len(), MAX_NICK_LEN)?;
    let mut s = [0u8; SIGNATURE_LEN];
    s.copy_from_slice(sig);
    Ok((body, body_bytes, SignatureBytes(s)))
}

/// Full check: structure, the beacon signature over the exact body bytes,
/// and the identity binding of the announced Noise key.
pub fn decode_beacon(packet: &[u8]) -> Result<BeaconBody, WireError> {
    let (body, body_bytes, sig) = parse_beacon(packet)?;
    body.keys
        .identity
        .verify(domain::BEACON, body_bytes, &sig)
        .map_err(|_| WireError::BadSignature)?;
    body.keys
        .verify()
        .map_err(|_| WireError::BadKey("identity binding"))?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(id: &LocalIdentity) -> BeaconBody {
        BeaconBody {
            version: PROTOCOL_VERSION,
            keys: *id.bound_keys(),
            tcp_port: 47474,
            nickname: "alice".into(),
            instance: 7,
            seq: 1,
            timestamp_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn round_trip() {
        let id = LocalIdentity::from_secrets([1; 32], [2; 32]).unwrap();
        let pkt = encode_beacon(&body(&id), &id).unwrap();
        assert_eq!(decode_beacon(&pkt).unwrap(), body(&id));
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let id = LocalIdentity::from_secrets([1; 32], [2; 32]).unwrap();
        let pkt = encode_beacon(&body(&id), &id).unwrap();
        for i in 0..pkt.len() * 8 {
            let mut p = pkt.clone();
            p[i / 8] ^= 1 << (i % 8);
            assert!(decode_beacon(&p).is_err(), "bit {i}");
        }
    }

    #[test]
    fn someone_elses_keys_with_my_signature_are_rejected() {
        let alice = LocalIdentity::from_secrets([1; 32], [2; 32]).unwrap();
        let mallory = LocalIdentity::from_secrets([3; 32], [4; 32]).unwrap();
        // Mallory announces Alice's keys but can only sign with her own key.
        let pkt = encode_beacon(&body(&alice), &mallory).unwrap();
        assert_eq!(decode_beacon(&pkt), Err(WireError::BadSignature));
    }

    #[test]
    fn truncated_trailing_and_oversized_are_rejected() {
        let id = LocalIdentity::from_secrets([1; 32], [2; 32]).unwrap();
        let pkt = encode_beacon(&body(&id), &id).unwrap();
        assert!(decode_beacon(&pkt[..pkt.len() - 1]).is_err());
        let mut longer = pkt.clone();
        longer.push(0);
        assert!(decode_beacon(&longer).is_err());
        assert!(decode_beacon(&[0u8; MAX_BEACON_LEN + 1]).is_err());
        assert!(decode_beacon(&[]).is_err());
        let mut b = body(&id);
        b.nickname = "x".repeat(MAX_NICK_LEN + 1);
        assert!(encode_beacon(&b, &id).is_err());
    }
}
