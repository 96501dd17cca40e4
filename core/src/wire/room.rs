//! Room frames: a post to a named room, signed over the room it was written
//! for, and the list of open rooms a peer has joined.

use serde::{Deserialize, Serialize};

use serde_big_array::BigArray;

use super::codec::{check_count, check_len, WireError};
use super::frame::MessageId;
use super::limits::{MAX_ROOMS_ANNOUNCED, MAX_ROOM_MEMBERS, MAX_ROOM_NAME_LEN, MAX_TEXT_LEN};
use crate::identity::{BoundKeys, IdentityKey, SignatureBytes};

/// A room's 32-byte id. For an open room it is
/// `SHA-256("natter/1 open-room" || name)` (`chat::rooms::open_room_id`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomId(pub [u8; 32]);

impl std::fmt::Debug for RoomId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RoomId({})", crate::hex(&self.0[..6]))
    }
}

/// Payload of `Frame::RoomPost`: a message in a room, signed by its author
/// so that any peer may relay it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPost {
    pub room: RoomId,
    pub id: MessageId,
    pub author: IdentityKey,
    pub timestamp_ms: u64,
    pub text: String,
    /// Signature by `author` over `"natter/1 room-post" ||
    /// postcard(SignedRoomPost { room, id, author, timestamp_ms, text })`.
    pub signature: SignatureBytes,
}

/// The signed part of a room post: the frame's payload without its
/// signature.
#[derive(Serialize)]
pub struct SignedRoomPost<'a> {
    pub room: &'a RoomId,
    pub id: &'a MessageId,
    pub author: &'a IdentityKey,
    pub timestamp_ms: u64,
    pub text: &'a str,
}

/// What names an invite-only room: its hash is the room's id
/// (`chat::rooms::private_room_id`), so the founder and the name cannot be
/// changed without changing the room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomFounding {
    /// A room name ([`is_room_name`]); shown as `+name`.
    pub name: String,
    /// The room's admin: the only key whose membership changes count.
    pub founder: IdentityKey,
    pub created_ms: u64,
    /// Random, so two rooms of one founder and name differ.
    pub nonce: [u8; 16],
}

/// A 32-byte room key sealed to one member's Noise static key
/// (`chat::room_keys`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEnvelope {
    /// The sender's one-time X25519 public key.
    pub ephemeral: [u8; 32],
    /// ChaCha20-Poly1305 of the key: 32 bytes and the 16-byte tag.
    #[serde(with = "BigArray")]
    pub sealed: [u8; 48],
}

/// A membership change of an invite-only room, by its founder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoomChange {
    /// 0: the room exists (sequence 0 only); epoch 0's key for the founder.
    Create { envelope: KeyEnvelope },
    /// 1: `member` joins; the current epoch's key, for it.
    Invite {
        member: BoundKeys,
        envelope: KeyEnvelope,
    },
    /// 2: `member` leaves; a new epoch, whose key goes to every remaining
    /// member (the founder included), one envelope each.
    Remove {
        member: IdentityKey,
        envelopes: Vec<(IdentityKey, KeyEnvelope)>,
    },
}

/// Payload of `Frame::RoomControl`: one entry of an invite-only room's
/// membership log, signed by its founder. Entries are numbered from 0
/// without gaps and applied in that order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomControl {
    pub founding: RoomFounding,
    pub seq: u32,
    /// The key epoch once this entry is applied.
    pub epoch: u32,
    pub timestamp_ms: u64,
    pub change: RoomChange,
    /// By `founding.founder` over `"natter/1 room-control" ||` this
    /// payload without the signature.
    pub signature: SignatureBytes,
}

/// The signed part of a [`RoomControl`].
#[derive(Serialize)]
pub struct SignedRoomControl<'a> {
    pub founding: &'a RoomFounding,
    pub seq: u32,
    pub epoch: u32,
    pub timestamp_ms: u64,
    pub change: &'a RoomChange,
}

/// Payload of `Frame::SealedPost`: a message in an invite-only room,
/// encrypted to the room key of `epoch`, signed by its author so that
/// non-members can check and carry it without reading it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedPost {
    pub room: RoomId,
    pub id: MessageId,
    pub author: IdentityKey,
    pub timestamp_ms: u64,
    pub epoch: u32,
    pub nonce: [u8; 24],
    /// XChaCha20-Poly1305 of the text (its length plus 16).
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
    /// By `author` over `"natter/1 sealed-post" ||` this payload without
    /// the signature.
    pub signature: SignatureBytes,
}

/// The signed part of a [`SealedPost`].
#[derive(Serialize)]
pub struct SignedSealedPost<'a> {
    pub room: &'a RoomId,
    pub id: &'a MessageId,
    pub author: &'a IdentityKey,
    pub timestamp_ms: u64,
    pub epoch: u32,
    pub nonce: &'a [u8; 24],
    #[serde(with = "serde_bytes")]
    pub ciphertext: &'a [u8],
}

/// Whether `name` is a canonical room name: 1 to [`MAX_ROOM_NAME_LEN`]
/// bytes of `a-z`, `0-9`, `-` and `_`, starting with a letter or digit.
/// ASCII only, so no two names look alike.
pub fn is_room_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_ROOM_NAME_LEN
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
}

pub(super) fn check_post(p: &RoomPost) -> Result<(), WireError> {
    check_len("text", p.text.len(), MAX_TEXT_LEN)
}

pub(super) fn check_control(c: &RoomControl) -> Result<(), WireError> {
    check_name(&c.founding.name)?;
    if let RoomChange::Remove { envelopes, .. } = &c.change {
        check_len("room key envelopes", envelopes.len(), MAX_ROOM_MEMBERS)?;
    }
    Ok(())
}

pub(super) fn check_sealed(p: &SealedPost) -> Result<(), WireError> {
    check_count("sealed text", p.ciphertext.len(), MAX_TEXT_LEN + 16)
}

fn check_name(n: &str) -> Result<(), WireError> {
    check_len("room name", n.len(), MAX_ROOM_NAME_LEN)?;
    if !is_room_name(n) {
        return Err(WireError::Malformed(format!("room name {n:?}")));
    }
    Ok(())
}

pub(super) fn check_rooms(names: &[String]) -> Result<(), WireError> {
    check_len("room list", names.len(), MAX_ROOMS_ANNOUNCED)?;
    names.iter().try_for_each(|n| check_name(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_lowercase_ascii_words() {
        for good in ["lobby", "ops", "a", "0day", "team-a_b", &"x".repeat(32)] {
            assert!(is_room_name(good), "{good}");
        }
        for bad in [
            "",
            "-ops",
            "_x",
            "Ops",
            "#ops",
            "ops room",
            "оps", // Cyrillic o
            "ops\u{200b}",
            &"x".repeat(33),
        ] {
            assert!(!is_room_name(bad), "{bad:?}");
        }
    }
}
