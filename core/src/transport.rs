//! The established session: seals frames into length-prefixed Noise
//! transport messages and opens them again.
//!
//! Nonces are implicit and strictly sequential (Noise transport mode over an
//! ordered stream), so a replayed, reordered, dropped or altered message
//! fails authentication; the link is then closed, never resynchronised.

use crate::wire::codec::WireError;
use crate::wire::framing::write_framed;
use crate::wire::limits::{MAX_PLAINTEXT_LEN, NOISE_TAG_LEN};
use crate::wire::{decode_frames, Frame};

/// Why a transport message could not be sealed or opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransportError {
    #[error("message failed authentication (tampered, replayed or out of order)")]
    Decrypt,
    #[error("bad frame: {0}")]
    Frame(#[from] WireError),
    #[error("a single frame of {0} bytes does not fit in one Noise message")]
    FrameTooLarge(usize),
    #[error("internal Noise error: {0}")]
    Internal(String),
}

/// Noise transport state plus reusable buffers.
pub struct Transport {
    noise: snow::TransportState,
    plain: Vec<u8>,
    frame: Vec<u8>,
}

impl Transport {
    pub(crate) fn new(noise: snow::TransportState) -> Self {
        Transport {
            noise,
            plain: Vec::new(),
            frame: Vec::new(),
        }
    }

    /// Seal `frames`, packing as many as fit into each Noise message, and
    /// append the length-prefixed messages to `out`.
    pub fn seal<'a>(
        &mut self,
        frames: impl IntoIterator<Item = &'a Frame>,
        out: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
        self.plain.clear();
        for f in frames {
            // Encode straight into the plaintext; only when a frame does not
            // fit is it moved to start the next message.
            let start = self.plain.len();
            f.encode_into(&mut self.plain);
            let len = self.plain.len() - start;
            if len > MAX_PLAINTEXT_LEN {
                self.plain.truncate(start);
                return Err(TransportError::FrameTooLarge(len));
            }
            if self.plain.len() > MAX_PLAINTEXT_LEN {
                self.frame.clear();
                self.frame.extend_from_slice(&self.plain[start..]);
                self.plain.truncate(start);
                self.flush(out)?;
                self.plain.extend_from_slice(&self.frame);
            }
        }
        if !self.plain.is_empty() {
            self.flush(out)?;
        }
        Ok(())
    }

    /// Seal the buffered plaintext as one Noise message.
    fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), TransportError> {
        let len = self.plain.len() + NOISE_TAG_LEN;
        let start = out.len();
        out.resize(start + 2 + len, 0);
        let n = self
            .noise
            .write_message(&self.plain, &mut out[start + 2..])
            .map_err(|e| TransportError::Internal(e.to_string()))?;
        debug_assert_eq!(n, len);
        let prefix = u16::try_from(n).map_err(|_| TransportError::FrameTooLarge(n))?;
        out[start..start + 2].copy_from_slice(&prefix.to_be_bytes());
        self.plain.clear();
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
        self.plain.clear();
        self.plain.extend_from_slice(plaintext);
        self.flush(out)
    }

    /// Seal a single frame into its own length-prefixed message.
    pub fn seal_one(&mut self, frame: &Frame) -> Result<Vec<u8>, TransportError> {
        let mut out = Vec::new();
        self.seal(std::iter::once(frame), &mut out)?;
        Ok(out)
    }

    /// Open one Noise message (without its length prefix) into its frames.
    pub fn open(&mut self, msg: &[u8]) -> Result<Vec<Frame>, TransportError> {
        if msg.len() <= NOISE_TAG_LEN {
            return Err(TransportError::Decrypt);
        }
        self.plain.resize(msg.len(), 0);
        let n = self
            .noise
            .read_message(msg, &mut self.plain)
            .map_err(|_| TransportError::Decrypt)?;
        Ok(decode_frames(&self.plain[..n])?)
    }
}

/// Convenience for tests and tools: frame a raw message.
pub fn frame_raw(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 2);
    write_framed(msg, &mut out);
    out
}
