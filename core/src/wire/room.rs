//! Room frames: a post to a named room, signed over the room it was written
//! for, and the list of open rooms a peer has joined.

use serde::{Deserialize, Serialize};

use super::codec::{check_len, WireError};
use super::frame::MessageId;
use super::limits::{MAX_ROOMS_ANNOUNCED, MAX_ROOM_NAME_LEN, MAX_TEXT_LEN};
use crate::identity::{IdentityKey, SignatureBytes};

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

pub(super) fn check_rooms(names: &[String]) -> Result<(), WireError> {
    check_len("room list", names.len(), MAX_ROOMS_ANNOUNCED)?;
    for n in names {
        check_len("room name", n.len(), MAX_ROOM_NAME_LEN)?;
        if !is_room_name(n) {
            return Err(WireError::Malformed(format!("room name {n:?}")));
        }
    }
    Ok(())
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
