//! The established session: seals frames into length-prefixed Noise
//! transport messages and opens them again.
//!
//! Nonces are implicit and strictly sequential (Noise transport mode over an
//! ordered stream), so a replayed, reordered, dropped or altered message
//! fails authentication; the link is then closed, never resynchronised.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};

use crate::wire::codec::WireError;
use crate::wire::frame::decode_frames_into;
use crate::wire::framing::write_framed;
use crate::wire::limits::{MAX_PLAINTEXT_LEN, NOISE_TAG_LEN};
use crate::wire::Frame;

/// Why a transport message could not be sealed or opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransportError {
    #[error("message failed authentication (tampered, replayed or out of order)")]
    Decrypt,
    #[error("bad frame: {0}")]
    Frame(#[from] WireError),
    #[error("a single frame of {0} bytes does not fit in one Noise message")]
    FrameTooLarge(usize),
    #[error("the link has used every nonce; it must be replaced by a new handshake")]
    NoncesExhausted,
}

/// One direction of the session: a Noise `CipherState` after `Split()`.
///
/// natter seals and opens transport messages itself rather than through
/// snow's `TransportState`, whose `write_message` copies the plaintext into
/// the output before sealing it: sealing where the frames were encoded, and
/// opening where the message was received, saves a copy of every byte on
/// each side (docs/PERFORMANCE.md). The rule is Noise's (section 5.1): key
/// `k` from the split, nonce `n` from 0, `EncryptWithAd(ad = empty)` with
/// ChaCha20-Poly1305's 96-bit nonce = 32 zero bits ‖ `n` as 64-bit little
/// endian, `n` incremented after every message, 2^64 − 1 never used. A test
/// checks it against snow's transport byte for byte.
struct CipherState {
    key: LessSafeKey,
    n: u64,
}

impl CipherState {
    fn new(key: &[u8; 32]) -> Self {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, key);
        // A 32-byte key is the only thing `UnboundKey::new` checks.
        let unbound = match unbound {
            Ok(k) => k,
            Err(_) => unreachable!("ChaCha20-Poly1305 takes a 32-byte key"),
        };
        CipherState {
            key: LessSafeKey::new(unbound),
            n: 0,
        }
    }

    /// The nonce for the next message, or an error once 2^64 − 1 is
    /// reached (Noise reserves it). The counter moves on only through
    /// [`CipherState::advance`], after a seal or a successful open: a
    /// message that fails authentication does not consume a nonce (the
    /// pattern of RUSTSEC-2024-0011; natter closes the link then anyway).
    fn nonce(&self) -> Result<Nonce, TransportError> {
        if self.n == u64::MAX {
            return Err(TransportError::NoncesExhausted);
        }
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&self.n.to_le_bytes());
        Ok(Nonce::assume_unique_for_key(nonce))
    }

    fn advance(&mut self) {
        self.n += 1;
    }
}

/// Noise transport state (one cipher each way) plus reusable buffers: the
/// plaintext of [`Transport::open`], and a frame that starts the next message.
pub struct Transport {
    send: CipherState,
    recv: CipherState,
    plain: Vec<u8>,
    frame: Vec<u8>,
}

impl Transport {
    /// From the two keys of Noise's `Split()`: the first encrypts what the
    /// initiator sends, the second what the responder sends.
    pub(crate) fn new(initiator: bool, k1: &[u8; 32], k2: &[u8; 32]) -> Self {
        let (send, recv) = if initiator { (k1, k2) } else { (k2, k1) };
        Transport {
            send: CipherState::new(send),
            recv: CipherState::new(recv),
            plain: Vec::new(),
            frame: Vec::new(),
        }
    }

    /// Seal `frames`, packing as many as fit into each Noise message, and
    /// append the length-prefixed messages to `out`. Frames are encoded
    /// straight into `out` and sealed where they lie.
    pub fn seal<'a>(
        &mut self,
        frames: impl IntoIterator<Item = &'a Frame>,
        out: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
        let mut msg = out.len();
        out.extend_from_slice(&[0, 0]);
        for f in frames {
            let start = out.len();
            f.encode_into(out);
            let len = out.len() - start;
            if len > MAX_PLAINTEXT_LEN {
                // Nothing of this message is sealed; messages before it are.
                out.truncate(msg);
                return Err(TransportError::FrameTooLarge(len));
            }
            if out.len() - (msg + 2) > MAX_PLAINTEXT_LEN {
                // This frame starts the next message.
                self.frame.clear();
                self.frame.extend_from_slice(&out[start..]);
                out.truncate(start);
                self.finish(msg, out)?;
                msg = out.len();
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&self.frame);
            }
        }
        self.finish_or_drop(msg, out)
    }

    /// Seal the message begun at `msg` if it holds anything, else remove its
    /// placeholder length.
    fn finish_or_drop(&mut self, msg: usize, out: &mut Vec<u8>) -> Result<(), TransportError> {
        if out.len() > msg + 2 {
            self.finish(msg, out)
        } else {
            out.truncate(msg);
            Ok(())
        }
    }

    /// Seal the plaintext after the 2-byte placeholder at `msg` in place,
    /// append its tag and fill in the length. On error the message is removed.
    fn finish(&mut self, msg: usize, out: &mut Vec<u8>) -> Result<(), TransportError> {
        let sealed = self.seal_at(msg, out);
        if sealed.is_err() {
            out.truncate(msg);
        }
        sealed
    }

    /// [`Transport::finish`] without the clean-up: everything that can fail
    /// is checked before the nonce is used.
    fn seal_at(&mut self, msg: usize, out: &mut Vec<u8>) -> Result<(), TransportError> {
        let body = msg + 2;
        let len = out.len() - body + NOISE_TAG_LEN;
        let prefix = u16::try_from(len).map_err(|_| TransportError::FrameTooLarge(len))?;
        let nonce = self.send.nonce()?;
        let tag = self
            .send
            .key
            .seal_in_place_separate_tag(nonce, Aad::empty(), &mut out[body..])
            // ring refuses only a plaintext over 2^38 bytes, far above ours.
            .map_err(|_| TransportError::FrameTooLarge(len))?;
        self.send.advance();
        out.extend_from_slice(tag.as_ref());
        out[msg..body].copy_from_slice(&prefix.to_be_bytes());
        Ok(())
    }

    /// Seal arbitrary plaintext bytes as one length-prefixed message. For
    /// hostile-peer tests and fuzzing, which need frames natter would never
    /// encode; natter itself only sends [`Transport::seal`]ed frames, and
    /// this exists only in tests and with the `testkit` feature.
    #[cfg(any(test, feature = "testkit"))]
    pub fn seal_plaintext(
        &mut self,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(TransportError::FrameTooLarge(plaintext.len()));
        }
        let msg = out.len();
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(plaintext);
        self.finish(msg, out)
    }

    /// Seal a single frame into its own length-prefixed message.
    pub fn seal_one(&mut self, frame: &Frame) -> Result<Vec<u8>, TransportError> {
        let mut out = Vec::new();
        self.seal(std::iter::once(frame), &mut out)?;
        Ok(out)
    }

    /// Open one Noise message (without its length prefix) into its frames.
    pub fn open(&mut self, msg: &[u8]) -> Result<Vec<Frame>, TransportError> {
        let mut plain = std::mem::take(&mut self.plain);
        plain.clear();
        plain.extend_from_slice(msg);
        let mut frames = Vec::new();
        let opened = self.open_into(&mut plain, &mut frames);
        self.plain = plain;
        opened.map(|()| frames)
    }

    /// [`Transport::open`] of a message the caller may overwrite: it is
    /// decrypted where it lies (the link's receive buffer), saving a copy,
    /// and its frames are appended to `frames` (on error, perhaps some of
    /// them: the link is dead then).
    pub fn open_into(
        &mut self,
        msg: &mut [u8],
        frames: &mut Vec<Frame>,
    ) -> Result<(), TransportError> {
        if msg.len() <= NOISE_TAG_LEN {
            return Err(TransportError::Decrypt);
        }
        // Opening with a spent nonce space fails like a bad tag: the peer
        // cannot have sealed anything under nonce 2^64 − 1.
        let nonce = self.recv.nonce().map_err(|_| TransportError::Decrypt)?;
        let plain = self
            .recv
            .key
            .open_in_place(nonce, Aad::empty(), msg)
            .map_err(|_| TransportError::Decrypt)?;
        self.recv.advance();
        Ok(decode_frames_into(plain, frames)?)
    }
}

/// Convenience for tests and tools: frame a raw message.
pub fn frame_raw(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 2);
    write_framed(msg, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::NOISE_PARAMS;

    /// A finished XX handshake between two snow states (snow's own
    /// resolver): our transports from the raw split, and snow's transports.
    fn sessions() -> (
        (Transport, snow::TransportState),
        (Transport, snow::TransportState),
    ) {
        let builder = || snow::Builder::new(NOISE_PARAMS.parse().expect("valid params"));
        let ka = builder().generate_keypair().expect("key");
        let kb = builder().generate_keypair().expect("key");
        let mut a = builder()
            .local_private_key(&ka.private)
            .expect("key")
            .build_initiator()
            .expect("initiator");
        let mut b = builder()
            .local_private_key(&kb.private)
            .expect("key")
            .build_responder()
            .expect("responder");
        let (mut m, mut p) = ([0u8; 1024], [0u8; 1024]);
        let n = a.write_message(&[], &mut m).expect("msg1");
        b.read_message(&m[..n], &mut p).expect("msg1");
        let n = b.write_message(&[], &mut m).expect("msg2");
        a.read_message(&m[..n], &mut p).expect("msg2");
        let n = a.write_message(&[], &mut m).expect("msg3");
        b.read_message(&m[..n], &mut p).expect("msg3");
        let ours = |hs: &mut snow::HandshakeState| {
            let (k1, k2) = hs.dangerously_get_raw_split();
            Transport::new(hs.is_initiator(), &k1, &k2)
        };
        let (oa, ob) = (ours(&mut a), ours(&mut b));
        (
            (oa, a.into_transport_mode().expect("finished")),
            (ob, b.into_transport_mode().expect("finished")),
        )
    }

    #[test]
    fn sealed_bytes_equal_snows_transport_and_open_each_other() {
        let ((mut oa, mut sa), (mut ob, mut sb)) = sessions();
        let mut buf = vec![0u8; 70_000];
        for (i, len) in [1usize, 64, 1000, 16_384, MAX_PLAINTEXT_LEN, 7]
            .into_iter()
            .enumerate()
        {
            let plain: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
            // a -> b: ours seals exactly what snow seals.
            let mut ours = Vec::new();
            oa.seal_plaintext(&plain, &mut ours).expect("seal");
            let n = sa.write_message(&plain, &mut buf).expect("snow seal");
            assert_eq!(&ours[2..], &buf[..n], "message {i} of {len} bytes");
            assert_eq!(usize::from(u16::from_be_bytes([ours[0], ours[1]])), n);
            // snow opens ours (b's snow state has not seen it yet: use b's
            // ours for this one, snow's for the next direction).
            let mut body = ours[2..].to_vec();
            let opened = ob.recv.nonce().expect("nonce");
            let got = ob
                .recv
                .key
                .open_in_place(opened, Aad::empty(), &mut body)
                .expect("ours opens ours");
            assert_eq!(got, &plain[..]);
            ob.recv.advance();
            let n = sb
                .read_message(&ours[2..], &mut buf)
                .expect("snow opens ours");
            assert_eq!(&buf[..n], &plain[..]);
            // b -> a: snow seals, ours opens (as a frame stream: a Ping).
            let ping = Frame::Ping(i as u64);
            let mut enc = Vec::new();
            ping.encode_into(&mut enc);
            let n = sb.write_message(&enc, &mut buf).expect("snow seal");
            let mut ours_b = Vec::new();
            ob.seal(std::iter::once(&ping), &mut ours_b).expect("seal");
            assert_eq!(&ours_b[2..], &buf[..n], "b's message {i}");
            assert_eq!(oa.open(&buf[..n]), Ok(vec![ping]));
            let _ = sa
                .read_message(&buf[..n], &mut vec![0u8; 1024])
                .expect("snow opens");
        }
    }

    #[test]
    fn the_last_nonce_is_never_used() {
        let ((mut oa, _), (mut ob, _)) = sessions();
        oa.send.n = u64::MAX - 1;
        ob.recv.n = u64::MAX - 1;
        let wire = oa
            .seal_one(&Frame::Ping(1))
            .expect("nonce 2^64 - 2 is usable");
        assert_eq!(ob.open(&wire[2..]), Ok(vec![Frame::Ping(1)]));
        let mut out = vec![9];
        assert_eq!(
            oa.seal(std::iter::once(&Frame::Ping(2)), &mut out),
            Err(TransportError::NoncesExhausted)
        );
        assert_eq!(out, vec![9], "nothing half-sealed is left behind");
        assert_eq!(ob.open(&wire[2..]), Err(TransportError::Decrypt));
    }

    #[test]
    fn a_message_that_fails_authentication_consumes_no_nonce() {
        let ((mut oa, _), (mut ob, _)) = sessions();
        let wire = oa.seal_one(&Frame::Ping(5)).expect("seal");
        let mut bad = wire[2..].to_vec();
        bad[0] ^= 1;
        assert_eq!(ob.open(&bad), Err(TransportError::Decrypt));
        assert_eq!(ob.open(&wire[2..]), Ok(vec![Frame::Ping(5)]));
    }

    #[test]
    fn a_frame_too_large_leaves_only_whole_messages() {
        let ((mut oa, _), (mut ob, _)) = sessions();
        let frames = [
            Frame::Data(vec![1; 60_000]),
            Frame::Data(vec![2; 10_000]),
            Frame::Data(vec![3; MAX_PLAINTEXT_LEN + 1]),
        ];
        let mut out = Vec::new();
        assert!(matches!(
            oa.seal(&frames, &mut out),
            Err(TransportError::FrameTooLarge(_))
        ));
        // The first frame filled a message of its own; the second, begun
        // in a message the third did not fit, was dropped with it.
        let len = usize::from(u16::from_be_bytes([out[0], out[1]]));
        assert_eq!(out.len(), 2 + len);
        assert_eq!(ob.open(&out[2..]), Ok(vec![frames[0].clone()]));
    }
}
