//! The stream framing of a TCP link: `u16` big-endian length, then that many
//! bytes of Noise message.
//!
//! The deframer reads the length, checks it against the bound for the
//! current phase *before* buffering anything more, and only then waits for
//! the body. It never allocates from an unchecked length.

use super::limits::MAX_NOISE_MSG_LEN;

/// A length prefix the deframer refuses.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FramingError {
    #[error("zero-length message")]
    Empty,
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLong { len: usize, max: usize },
}

/// Append `msg` to `out` with its length prefix.
///
/// # Panics
/// Never for callers inside natter: every producer bounds its messages to
/// [`MAX_NOISE_MSG_LEN`]. The length is debug-asserted.
pub fn write_framed(msg: &[u8], out: &mut Vec<u8>) {
    debug_assert!(!msg.is_empty() && msg.len() <= MAX_NOISE_MSG_LEN);
    let len = u16::try_from(msg.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
}

/// Splits a byte stream into length-prefixed messages.
#[derive(Debug)]
pub struct Deframer {
    buf: Vec<u8>,
    start: usize,
    max_len: usize,
}

impl Deframer {
    /// A deframer that accepts messages of 1..=`max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        Deframer {
            buf: Vec::new(),
            start: 0,
            max_len: max_len.min(MAX_NOISE_MSG_LEN),
        }
    }

    /// Change the bound, e.g. when the handshake completes.
    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len.min(MAX_NOISE_MSG_LEN);
    }

    /// Bytes received but not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Feed bytes read from the socket.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<&[u8]>, FramingError> {
        Ok(self.next_message_mut()?.map(|m| &*m))
    }

    /// [`Deframer::next_message`], writable: the transport decrypts it in
    /// place. The bytes are consumed either way.
    pub fn next_message_mut(&mut self) -> Result<Option<&mut [u8]>, FramingError> {
        let avail = &self.buf[self.start..];
        if avail.len() < 2 {
            self.compact();
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([avail[0], avail[1]]));
        if len == 0 {
            return Err(FramingError::Empty);
        }
        if len > self.max_len {
            return Err(FramingError::TooLong {
                len,
                max: self.max_len,
            });
        }
        if avail.len() < 2 + len {
            self.compact();
            return Ok(None);
        }
        let body = self.start + 2;
        self.start = body + len;
        Ok(Some(&mut self.buf[body..body + len]))
    }

    /// Move unread bytes to the front so the buffer does not grow without bound.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_messages_across_arbitrary_reads() {
        let mut stream = Vec::new();
        write_framed(b"hello", &mut stream);
        write_framed(&[7u8; 300], &mut stream);
        for chunk in 1..stream.len() {
            let mut d = Deframer::new(1000);
            let mut got: Vec<Vec<u8>> = Vec::new();
            for piece in stream.chunks(chunk) {
                d.extend(piece);
                while let Some(m) = d.next_message().unwrap() {
                    got.push(m.to_vec());
                }
            }
            assert_eq!(
                got,
                vec![b"hello".to_vec(), vec![7u8; 300]],
                "chunk {chunk}"
            );
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn length_above_bound_is_refused_before_the_body_arrives() {
        let mut d = Deframer::new(1024);
        d.extend(&[0x04, 0x01]); // 1025, and no body at all
        assert_eq!(
            d.next_message(),
            Err(FramingError::TooLong {
                len: 1025,
                max: 1024
            })
        );
    }

    #[test]
    fn zero_length_is_refused() {
        let mut d = Deframer::new(10);
        d.extend(&[0, 0]);
        assert_eq!(d.next_message(), Err(FramingError::Empty));
    }

    #[test]
    fn partial_prefix_waits() {
        let mut d = Deframer::new(10);
        d.extend(&[0]);
        assert_eq!(d.next_message(), Ok(None));
        d.extend(&[1, 42]);
        assert_eq!(d.next_message(), Ok(Some(&[42u8][..])));
    }
}
