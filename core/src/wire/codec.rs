//! Exact, canonical postcard decoding.
//!
//! Every decoder in natter goes through [`decode_exact`]: the input must be
//! exactly one value, with no trailing bytes, in its one canonical encoding
//! (postcard would otherwise accept over-long varints). Re-encoding is cheap
//! next to the cryptography around it and makes "the bytes that were signed
//! are the bytes that were meant" easy to reason about.

use serde::{de::DeserializeOwned, Serialize};

/// Why bytes could not be decoded or encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("malformed encoding: {0}")]
    Malformed(String),
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    #[error("non-canonical encoding")]
    NonCanonical,
    #[error("{what} is {len} bytes, limit {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("unsupported protocol version {0}")]
    Version(u8),
    #[error("bad signature")]
    BadSignature,
    #[error("invalid key: {0}")]
    BadKey(&'static str),
}

/// Encode a value with postcard.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // postcard only fails to serialise for unsupported serde features (maps
    // with unknown length and the like), which no natter type uses; the
    // result would be empty.
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Append the postcard encoding of `value` to `out`. Should encoding fail
/// (see [`encode`]), `out` is left as it was.
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    let start = out.len();
    if postcard::serialize_with_flavor(value, AppendTo(out)).is_err() {
        out.truncate(start);
    }
}

/// A postcard output that appends to a borrowed buffer: the bytes of a
/// field are copied at once, and the buffer stays the caller's whatever
/// happens (handing postcard the `Vec` itself would lose it on an error).
struct AppendTo<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendTo<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Decode exactly one canonical value from `bytes`.
pub fn decode_exact<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, WireError> {
    let (value, rest) = decode_prefix::<T>(bytes)?;
    if !rest.is_empty() {
        return Err(WireError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

/// Decode one canonical value from the front of `bytes`, returning the rest.
///
/// postcard accepts exactly one kind of non-canonical input: an over-long
/// varint (a length, an enum tag or an integer written with more bytes than
/// needed). Booleans, option tags and UTF-8 are checked by the decoder
/// itself. An over-long varint always makes the input longer than the
/// value's canonical encoding, so comparing the consumed length with the
/// canonical length is the same as comparing the bytes, without building a
/// second copy (which matters for 64 KiB frames). The fuzz targets re-encode
/// every accepted input and compare bytes, which holds this argument to
/// account.
pub fn decode_prefix<T: DeserializeOwned + Serialize>(
    bytes: &[u8],
) -> Result<(T, &[u8]), WireError> {
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|e| WireError::Malformed(e.to_string()))?;
    let used = bytes.len() - rest.len();
    let canonical = postcard::experimental::serialized_size(&value)
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if canonical != used {
        return Err(WireError::NonCanonical);
    }
    Ok((value, rest))
}

/// Check a list or field that must hold 1 to `max` items.
pub fn check_count(what: &'static str, len: usize, max: usize) -> Result<(), WireError> {
    if len == 0 {
        return Err(WireError::Empty(what));
    }
    check_len(what, len, max)
}

/// Check a UTF-8 field against its limit.
pub fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), WireError> {
    if len > max {
        return Err(WireError::TooLong { what, len, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value postcard cannot encode: a sequence of unknown length.
    struct Unencodable;

    impl Serialize for Unencodable {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq([1u8, 2].iter().filter(|_| true))
        }
    }

    #[test]
    fn a_failed_encoding_leaves_the_buffer_as_it_was() {
        let mut out = vec![9, 9];
        encode_into(&7u8, &mut out);
        assert_eq!(out, [9, 9, 7]);
        // The tuple's first byte is written before the second field fails.
        encode_into(&(5u8, Unencodable), &mut out);
        assert_eq!(out, [9, 9, 7]);
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut bytes = encode(&7u32);
        bytes.push(0);
        assert_eq!(
            decode_exact::<u32>(&bytes),
            Err(WireError::TrailingBytes(1))
        );
    }

    #[test]
    fn overlong_varint_is_rejected() {
        // 0 encoded in two bytes instead of one.
        assert_eq!(
            decode_exact::<u32>(&[0x80, 0x00]),
            Err(WireError::NonCanonical)
        );
        assert_eq!(decode_exact::<u32>(&[0x00]), Ok(0));
    }

    #[test]
    fn overlong_lengths_and_tags_are_rejected_everywhere() {
        // A 3-byte string with its length written in two bytes.
        assert_eq!(
            decode_exact::<String>(&[0x83, 0x00, b'a', b'b', b'c']),
            Err(WireError::NonCanonical)
        );
        assert_eq!(
            decode_exact::<String>(&[0x03, b'a', b'b', b'c']),
            Ok("abc".into())
        );
        // An enum tag written in two bytes.
        assert_eq!(
            decode_exact::<Option<u8>>(&[0x81, 0x00, 7]).map_err(|_| ()),
            Err(())
        );
        let ping = encode(&crate::wire::Frame::Ping(5));
        let mut long_tag = vec![0x80, 0x00];
        long_tag.extend_from_slice(&ping[1..]);
        assert_eq!(
            decode_exact::<crate::wire::Frame>(&long_tag),
            Err(WireError::NonCanonical)
        );
    }

    #[test]
    fn invalid_bool_is_rejected() {
        assert!(matches!(
            decode_exact::<bool>(&[2]),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn truncated_input_is_rejected() {
        let bytes = encode(&String::from("hello"));
        assert!(decode_exact::<String>(&bytes[..3]).is_err());
    }

    #[test]
    fn encode_into_appends() {
        let mut out = vec![9u8];
        encode_into(&300u16, &mut out);
        assert_eq!(out, vec![9, 0xac, 0x02]);
    }
}
