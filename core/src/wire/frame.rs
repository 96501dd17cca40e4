//! Frames: what travels inside the established, encrypted link.
//!
//! The plaintext of one Noise transport message is one or more frames, each
//! the canonical postcard encoding of [`Frame`], back to back with nothing
//! between them. Packing several small frames into one Noise message saves
//! an AEAD setup and a syscall per frame. An empty plaintext, an unknown
//! variant or a frame that breaks a limit is a protocol error that closes the
//! link.

use super::codec::{check_count, check_len, decode_prefix, encode_into, WireError};
use super::limits::{
    MAX_ACK_IDS, MAX_CLOSE_DETAIL_LEN, MAX_DATA_GROUPS, MAX_FILE_NAME_LEN, MAX_NICK_LEN,
    MAX_REQUEST_GROUPS, MAX_TEXT_LEN,
};
use super::room::{
    check_control, check_post, check_rooms, check_sealed, RoomControl, RoomPost, SealedPost,
};
use super::ticket::Reach;
use crate::identity::{IdentityKey, SignatureBytes};
use serde::{Deserialize, Serialize};

/// A random 128-bit message id.
pub type MessageId = [u8; 16];

/// One frame. Variant indices are part of the protocol: append only.
///
/// The four signed posts are boxed (serde encodes a box as its contents,
/// so the wire is the same): inline, the largest made every frame 376
/// bytes, and each frame is moved several times between the decoder and
/// the chat core. Boxed, a frame is 80 bytes; a post pays one allocation
/// beside its signature check. Keep new variants small or boxed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// 0: liveness probe; the peer answers with `Pong` of the same value.
    Ping(u64),
    /// 1: answer to `Ping`.
    Pong(u64),
    /// 2: the sender is closing the link, and why.
    Close(Close),
    /// 3: opaque application bytes (used by benchmarks and extensions).
    Data(#[serde(with = "serde_bytes")] Vec<u8>),
    /// 4: a public-room message, signed by its author so any peer may relay it.
    Public(Box<PublicMessage>),
    /// 5: a private message; its author is the authenticated peer of the link.
    Direct(DirectMessage),
    /// 6: the listed messages are stored durably by the sender of the ack.
    Ack(Vec<MessageId>),
    /// 7: please send the public messages you have with a timestamp ≥ `since_ms`.
    SyncRequest(SyncRequest),
    /// 8: the sender's nickname changed.
    Nick(String),
    /// 9: the sender offers a file (section 11 of PROTOCOL.md).
    FileOffer(FileOffer),
    /// 10: the receiver of an offer asks for chunk groups of it.
    FileRequest(FileRequest),
    /// 11: chunk groups of an offered file with their BLAKE3 proof.
    FileData(FileData),
    /// 12: a transfer is over (done, refused or given up), either side.
    FileEnd(FileEnd),
    /// 13: a message in a room, signed over the room by its author.
    RoomPost(Box<RoomPost>),
    /// 14: the open rooms the sender has joined (all of them, each time).
    Rooms(Vec<String>),
    /// 15: an entry of an invite-only room's membership log, by its founder.
    RoomControl(Box<RoomControl>),
    /// 16: a message in an invite-only room, encrypted to the room key.
    SealedPost(Box<SealedPost>),
    /// 17: where the sender's iroh endpoint can be reached beyond the LAN
    /// (section 12); sent by nodes with `--wan` on.
    Reach(Reach),
}

/// A random 128-bit transfer id, chosen by the sender of the offer; a
/// transfer is named by (sender, id).
pub type TransferId = [u8; 16];

/// Payload of [`Frame::FileOffer`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOffer {
    pub transfer: TransferId,
    /// The file's name as the sender has it, at most
    /// [`MAX_FILE_NAME_LEN`] bytes. Untrusted: the receiver makes its own
    /// safe name from it.
    pub name: String,
    pub size: u64,
    /// BLAKE3 hash of the whole content (the root of its tree).
    pub root: [u8; 32],
}

/// Payload of [`Frame::FileRequest`]: send chunk groups
/// `first_group .. first_group + count` of `transfer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRequest {
    pub transfer: TransferId,
    pub first_group: u64,
    /// 1 to [`MAX_REQUEST_GROUPS`].
    pub count: u32,
}

/// Payload of [`Frame::FileData`]: groups `first_group .. first_group +
/// count` as a bao encoding (the parent hash pairs from the root down, then
/// the data), verifiable against the offer's root and size alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileData {
    pub transfer: TransferId,
    pub first_group: u64,
    /// 1 to [`MAX_DATA_GROUPS`].
    pub count: u8,
    #[serde(with = "serde_bytes")]
    pub encoded: Vec<u8>,
}

/// Why a transfer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileEndReason {
    /// 0: the receiver holds the whole file, verified.
    Completed,
    /// 1: the receiver does not want it.
    Rejected,
    /// 2: the user of either side gave it up.
    Cancelled,
    /// 3: the receiver refuses files this large.
    TooLarge,
    /// 4: too many offers from this sender; try later.
    Busy,
    /// 5: the sender cannot serve it (the file is gone or has changed).
    Unavailable,
    /// 6: the peer broke the transfer protocol (data not requested, data
    /// that fails verification, a request outside the file).
    Invalid,
    /// 7: the receiver failed locally (disk full, cannot write).
    Failed,
}

/// Payload of [`Frame::FileEnd`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEnd {
    pub transfer: TransferId,
    pub reason: FileEndReason,
    /// True when the frame's sender is the transfer's sender (the offer
    /// was its own); false when it is the receiver. Both sides may use one
    /// id for transfers of their own.
    pub from_sender: bool,
}

/// Why a link is being closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloseReason {
    /// 0: the user or the process is shutting down.
    Shutdown,
    /// 1: another link to the same peer won the duplicate-link tie-break.
    DuplicateLink,
    /// 2: the peer broke the protocol (bad frame, limit exceeded, …).
    ProtocolError,
    /// 3: the peer did not read fast enough; its queue overflowed.
    TooSlow,
    /// 4: the peer stopped answering keepalives.
    Timeout,
    /// 5: the peer is not the identity that was dialled.
    WrongIdentity,
    /// 6: the local node has too many links.
    Busy,
}

/// Payload of [`Frame::Close`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Close {
    pub reason: CloseReason,
    /// Free text for logs, at most [`MAX_CLOSE_DETAIL_LEN`] bytes. Untrusted.
    pub detail: String,
}

/// A public message as its author signed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicMessage {
    pub id: MessageId,
    pub author: IdentityKey,
    pub timestamp_ms: u64,
    pub text: String,
    /// Signature by `author` over `"natter/1 public-message" ||
    /// postcard(SignedPublic { id, author, timestamp_ms, text })`.
    pub signature: SignatureBytes,
}

/// The signed part of a public message.
#[derive(Serialize)]
pub struct SignedPublic<'a> {
    pub id: &'a MessageId,
    pub author: &'a IdentityKey,
    pub timestamp_ms: u64,
    pub text: &'a str,
}

/// A private message. No author field: the author is the link's peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectMessage {
    pub id: MessageId,
    pub timestamp_ms: u64,
    pub text: String,
}

/// Payload of [`Frame::SyncRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// Oldest timestamp (sender's view of message timestamps) wanted.
    pub since_ms: u64,
}

impl Frame {
    /// Check the limits a decoded frame must respect.
    pub fn validate(&self) -> Result<(), WireError> {
        match self {
            Frame::Close(c) => check_len("close detail", c.detail.len(), MAX_CLOSE_DETAIL_LEN),
            Frame::Public(m) => check_len("text", m.text.len(), MAX_TEXT_LEN),
            Frame::Direct(m) => check_len("text", m.text.len(), MAX_TEXT_LEN),
            Frame::Ack(ids) => check_count("ack", ids.len(), MAX_ACK_IDS),
            Frame::Nick(n) => check_len("nickname", n.len(), MAX_NICK_LEN),
            Frame::FileOffer(o) => check_count("file name", o.name.len(), MAX_FILE_NAME_LEN),
            Frame::FileRequest(r) => check_count(
                "file request",
                r.count as usize,
                MAX_REQUEST_GROUPS as usize,
            ),
            Frame::FileData(d) => check_count(
                "file data groups",
                d.count as usize,
                MAX_DATA_GROUPS as usize,
            ),
            Frame::RoomPost(p) => check_post(p),
            Frame::Rooms(names) => check_rooms(names),
            Frame::RoomControl(c) => check_control(c),
            Frame::SealedPost(p) => check_sealed(p),
            Frame::Reach(r) => r.validate(),
            Frame::Ping(_)
            | Frame::Pong(_)
            | Frame::Data(_)
            | Frame::SyncRequest(_)
            | Frame::FileEnd(_) => Ok(()),
        }
    }

    /// Append this frame's encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        encode_into(self, out)
    }
}

/// Decode a transport plaintext into its frames.
pub fn decode_frames(plaintext: &[u8]) -> Result<Vec<Frame>, WireError> {
    let mut frames = Vec::new();
    decode_frames_into(plaintext, &mut frames)?;
    Ok(frames)
}

/// [`decode_frames`], appending to `frames`: a link that opens several
/// messages from one read collects their frames in one list. On error some
/// frames of this plaintext may have been appended; the caller drops the
/// link and them.
pub fn decode_frames_into(mut plaintext: &[u8], frames: &mut Vec<Frame>) -> Result<(), WireError> {
    if plaintext.is_empty() {
        return Err(WireError::Empty("plaintext"));
    }
    while !plaintext.is_empty() {
        let (frame, rest) = decode_prefix::<Frame>(plaintext)?;
        frame.validate()?;
        frames.push(frame);
        plaintext = rest;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::codec::encode;

    /// A variant added inline must not make every frame large again.
    #[test]
    fn a_frame_stays_small() {
        assert!(
            std::mem::size_of::<Frame>() <= 80,
            "{}",
            std::mem::size_of::<Frame>()
        );
    }

    #[test]
    fn several_frames_in_one_plaintext() {
        let frames = vec![
            Frame::Ping(1),
            Frame::Data(vec![1, 2, 3]),
            Frame::Pong(u64::MAX),
        ];
        let mut buf = Vec::new();
        for f in &frames {
            f.encode_into(&mut buf);
        }
        assert_eq!(decode_frames(&buf).unwrap(), frames);
    }

    #[test]
    fn unknown_variant_is_an_error() {
        assert!(decode_frames(&[9]).is_err());
        assert!(decode_frames(&[0x7f, 0]).is_err());
    }

    /// An `Option`'s tag is one raw byte, 0 or 1 (PROTOCOL.md 2.3): `Reach`
    /// (17) with no relay and no addresses, then with bad tags.
    #[test]
    fn an_option_tag_is_one_byte_zero_or_one() {
        assert_eq!(
            decode_frames(&[17, 0, 0]).unwrap(),
            [Frame::Reach(Reach {
                relay: None,
                addrs: vec![]
            })]
        );
        for bad in [&[17, 2, 0][..], &[17, 0x81, 0, 0], &[17, 0x80, 0, 0]] {
            assert!(decode_frames(bad).is_err(), "{bad:02x?}");
        }
        let mut some = vec![17, 1, 8];
        some.extend(b"http://h");
        some.push(0);
        assert_eq!(
            decode_frames(&some).unwrap(),
            [Frame::Reach(Reach {
                relay: Some("http://h".into()),
                addrs: vec![]
            })]
        );
    }

    #[test]
    fn empty_plaintext_and_partial_frame_are_errors() {
        assert!(decode_frames(&[]).is_err());
        let mut buf = encode(&Frame::Ping(300));
        buf.pop();
        assert!(decode_frames(&buf).is_err());
    }

    #[test]
    fn limits_are_enforced() {
        let big = Frame::Direct(DirectMessage {
            id: [0; 16],
            timestamp_ms: 0,
            text: "x".repeat(MAX_TEXT_LEN + 1),
        });
        assert!(decode_frames(&encode(&big)).is_err());
        assert!(decode_frames(&encode(&Frame::Ack(vec![]))).is_err());
        assert!(decode_frames(&encode(&Frame::Nick("n".repeat(MAX_NICK_LEN + 1)))).is_err());
    }
}
