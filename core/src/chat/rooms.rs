//! Rooms: named conversations that every peer stores and relays, and the
//! two signed forms a room message travels in.
//!
//! An **open room** is named by its name alone: its id is
//! `SHA-256("natter/1 open-room" || name)`, so `/join #ops` on two machines
//! that never met lands in the same room. Names are short lowercase ASCII
//! words ([`is_room_name`]), so no two rooms look alike on screen. The
//! default room, [`DEFAULT_ROOM`] (`#lobby`), is the public room of natter
//! before rooms: its old `Public` frames are still accepted and served, as
//! messages of `#lobby` (their signature has no room in it; a `Public`
//! frame can only ever be a `#lobby` message, and its domain string differs
//! from a room post's, so neither can be replayed as the other).

use sha2::{Digest, Sha256};

use super::private::{check_control, control_id, private_room_id};
use crate::identity::{
    domain, IdentityError, IdentityKey, LocalIdentity, ParsedKeys, SignatureBytes,
};
use crate::wire::codec::encode;
use crate::wire::frame::SignedPublic;
use crate::wire::room::{SignedRoomPost, SignedSealedPost};
use crate::wire::{
    is_room_name, Frame, MessageId, PublicMessage, RoomControl, RoomId, RoomPost, SealedPost,
};

/// The room everyone is in unless they leave it: natter's public room from
/// before rooms, whose history it keeps.
pub const DEFAULT_ROOM: &str = "lobby";

/// Why a typed room name is not one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoomNameError {
    #[error("a room name needs at least one letter or digit after '#'")]
    Empty,
    #[error("room names are at most {max} characters")]
    TooLong { max: usize },
    #[error(
        "room names use only a-z, 0-9, '-' and '_', and start with a letter or digit: {0:?} is not one"
    )]
    Invalid(String),
    #[error(
        "after '#' comes the founder's fingerprint, at least 4 of its characters (as /rooms shows it): {0:?} is not one"
    )]
    Founder(String),
}

/// The canonical name of a room the user typed: without a leading `#`,
/// ASCII letters lowercased. Anything else must already be canonical.
pub fn room_name(typed: &str) -> Result<String, RoomNameError> {
    let name = typed.trim();
    let name = name.strip_prefix('#').unwrap_or(name).to_ascii_lowercase();
    let max = crate::wire::limits::MAX_ROOM_NAME_LEN;
    if name.is_empty() {
        return Err(RoomNameError::Empty);
    }
    if name.len() > max {
        return Err(RoomNameError::TooLong { max });
    }
    if !is_room_name(&name) {
        return Err(RoomNameError::Invalid(name));
    }
    Ok(name)
}

/// How a typed room is shown and passed around: `#name` for an open room
/// (the `#` may be left out when typing), `+name` for an invite-only one,
/// or `+name#ABCD-EFGH` to say which of several invite-only rooms of that
/// name by its founder's fingerprint (anyone may found a room with any
/// name and invite you to it).
pub fn room_label(typed: &str) -> Result<String, RoomNameError> {
    let t = typed.trim();
    match t.strip_prefix('+') {
        Some(rest) => {
            let (name, founder) = split_founder(rest)?;
            Ok(match founder {
                Some(f) => format!("+{}#{f}", room_name(name)?),
                None => format!("+{}", room_name(name)?),
            })
        }
        None => Ok(format!("#{}", room_name(t)?)),
    }
}

/// `name#FINGERPRINT` of an invite-only room as typed (without its `+`):
/// the name, and the founder's fingerprint prefix, normalised and grouped
/// by four, if one was given.
pub fn split_founder(typed: &str) -> Result<(&str, Option<String>), RoomNameError> {
    let Some((name, founder)) = typed.split_once('#') else {
        return Ok((typed, None));
    };
    use crate::identity::Fingerprint;
    let f = Fingerprint::typed(founder)
        .filter(|f| f.len() >= 4)
        .ok_or_else(|| RoomNameError::Founder(founder.to_owned()))?;
    Ok((name, Some(Fingerprint::group_typed(&f))))
}

/// The id of the open room with this (canonical) name.
pub fn open_room_id(name: &str) -> RoomId {
    let mut h = Sha256::new();
    h.update(domain::OPEN_ROOM);
    h.update(name.as_bytes());
    RoomId(h.finalize().into())
}

/// The id of [`DEFAULT_ROOM`].
pub fn default_room() -> RoomId {
    open_room_id(DEFAULT_ROOM)
}

fn signed_room_bytes(
    room: &RoomId,
    id: &MessageId,
    author: &IdentityKey,
    timestamp_ms: u64,
    text: &str,
) -> Vec<u8> {
    encode(&SignedRoomPost {
        room,
        id,
        author,
        timestamp_ms,
        text,
    })
}

/// A post to an open room before it is signed: what
/// [`SignatureCheck::sign_all`](super::SignatureCheck::sign_all) is handed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedPost {
    pub room: RoomId,
    pub id: MessageId,
    pub timestamp_ms: u64,
    pub text: String,
}

impl UnsignedPost {
    /// `local`'s signature of it. Borrows the post, so a signer may sign
    /// posts where they lie and move each into its [`RoomPost`] after.
    pub fn signature(&self, local: &LocalIdentity) -> SignatureBytes {
        local.sign(
            domain::ROOM_POST,
            &signed_room_bytes(
                &self.room,
                &self.id,
                &local.identity_key(),
                self.timestamp_ms,
                &self.text,
            ),
        )
    }

    /// The post signed by `author` with `signature` ([`Self::signature`]).
    pub fn with_signature(self, author: IdentityKey, signature: SignatureBytes) -> RoomPost {
        RoomPost {
            room: self.room,
            id: self.id,
            author,
            timestamp_ms: self.timestamp_ms,
            text: self.text,
            signature,
        }
    }

    /// Signs it as `local`.
    pub fn sign(self, local: &LocalIdentity) -> RoomPost {
        let signature = self.signature(local);
        self.with_signature(local.identity_key(), signature)
    }
}

/// Signs a post to `room` as `local`.
pub fn sign_room_post(
    local: &LocalIdentity,
    room: RoomId,
    id: MessageId,
    timestamp_ms: u64,
    text: String,
) -> RoomPost {
    UnsignedPost {
        room,
        id,
        timestamp_ms,
        text,
    }
    .sign(local)
}

/// A room item as it travels: a post to an open room, an old `Public`
/// frame of the default room, an encrypted post to an invite-only room, or
/// an entry of an invite-only room's membership log. Each is signed
/// (the log by the room's founder) and relayed, stored and served alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedPost {
    Room(Box<RoomPost>),
    Legacy(Box<PublicMessage>),
    Sealed(Box<SealedPost>),
    Control(Box<RoomControl>),
}

/// The bytes an author signs for a sealed post.
pub fn signed_sealed_bytes(p: &SealedPost) -> Vec<u8> {
    encode(&SignedSealedPost {
        room: &p.room,
        id: &p.id,
        author: &p.author,
        timestamp_ms: p.timestamp_ms,
        epoch: p.epoch,
        nonce: &p.nonce,
        ciphertext: &p.ciphertext,
    })
}

impl SignedPost {
    pub fn room(&self) -> RoomId {
        match self {
            SignedPost::Room(p) => p.room,
            SignedPost::Legacy(_) => default_room(),
            SignedPost::Sealed(p) => p.room,
            SignedPost::Control(c) => private_room_id(&c.founding),
        }
    }

    pub fn id(&self) -> MessageId {
        match self {
            SignedPost::Room(p) => p.id,
            SignedPost::Legacy(m) => m.id,
            SignedPost::Sealed(p) => p.id,
            SignedPost::Control(c) => control_id(&self.room(), c.seq),
        }
    }

    pub fn author(&self) -> IdentityKey {
        match self {
            SignedPost::Room(p) => p.author,
            SignedPost::Legacy(m) => m.author,
            SignedPost::Sealed(p) => p.author,
            SignedPost::Control(c) => c.founding.founder,
        }
    }

    pub fn timestamp_ms(&self) -> u64 {
        match self {
            SignedPost::Room(p) => p.timestamp_ms,
            SignedPost::Legacy(m) => m.timestamp_ms,
            SignedPost::Sealed(p) => p.timestamp_ms,
            SignedPost::Control(c) => c.timestamp_ms,
        }
    }

    /// The text, for the forms that carry it in clear.
    pub fn text(&self) -> Option<&str> {
        match self {
            SignedPost::Room(p) => Some(&p.text),
            SignedPost::Legacy(m) => Some(&m.text),
            SignedPost::Sealed(_) | SignedPost::Control(_) => None,
        }
    }

    /// What it adds to history, in bytes (the quota and catch-up pages
    /// count this).
    pub fn size(&self) -> usize {
        match self {
            SignedPost::Room(p) => p.text.len(),
            SignedPost::Legacy(m) => m.text.len(),
            SignedPost::Sealed(p) => p.ciphertext.len(),
            SignedPost::Control(c) => super::private::control_size(c),
        }
    }

    pub fn signature(&self) -> &SignatureBytes {
        match self {
            SignedPost::Room(p) => &p.signature,
            SignedPost::Legacy(m) => &m.signature,
            SignedPost::Sealed(p) => &p.signature,
            SignedPost::Control(c) => &c.signature,
        }
    }

    pub fn is_legacy(&self) -> bool {
        matches!(self, SignedPost::Legacy(_))
    }

    /// The frame's encoding, kept in the store for the forms whose fields
    /// the messages table has no columns for (sealed posts, log entries).
    pub fn wire(&self) -> Option<Vec<u8>> {
        match self {
            SignedPost::Sealed(_) | SignedPost::Control(_) => {
                Some(encode(&self.clone().into_frame()))
            }
            SignedPost::Room(_) | SignedPost::Legacy(_) => None,
        }
    }

    /// Checks the author's signature (strict), each form under its own
    /// domain string; a log entry also its shape (`private::check_control`).
    pub fn verify(&self) -> Result<(), IdentityError> {
        self.verify_by(|author, domain, msg, sig| author.verify(domain, msg, sig))
    }

    /// [`SignedPost::verify`] with the authors' keys made points once, in
    /// `keys` (a check worker's): the same verdicts.
    pub fn verify_with(&self, keys: &mut ParsedKeys) -> Result<(), IdentityError> {
        self.verify_by(|author, domain, msg, sig| author.verify_with(keys, domain, msg, sig))
    }

    /// The verdicts of `posts`, in order, each author's key made a point
    /// once for the run: what a batch check does on one thread.
    pub fn verify_each(posts: &[&SignedPost]) -> Vec<bool> {
        let mut keys = ParsedKeys::default();
        posts
            .iter()
            .map(|p| p.verify_with(&mut keys).is_ok())
            .collect()
    }

    /// The author's signature over the form's bytes, checked by `verify`.
    fn verify_by(
        &self,
        mut verify: impl FnMut(&IdentityKey, &[u8], &[u8], &SignatureBytes) -> Result<(), IdentityError>,
    ) -> Result<(), IdentityError> {
        match self {
            SignedPost::Sealed(p) => verify(
                &p.author,
                domain::SEALED_POST,
                &signed_sealed_bytes(p),
                &p.signature,
            ),
            SignedPost::Control(c) => check_control(c).map_err(|_| IdentityError::BadSignature),
            SignedPost::Room(p) => verify(
                &p.author,
                domain::ROOM_POST,
                &signed_room_bytes(&p.room, &p.id, &p.author, p.timestamp_ms, &p.text),
                &p.signature,
            ),
            SignedPost::Legacy(m) => verify(
                &m.author,
                domain::PUBLIC_MESSAGE,
                &encode(&SignedPublic {
                    id: &m.id,
                    author: &m.author,
                    timestamp_ms: m.timestamp_ms,
                    text: &m.text,
                }),
                &m.signature,
            ),
        }
    }

    pub fn into_frame(self) -> Frame {
        match self {
            SignedPost::Room(p) => Frame::RoomPost(p),
            SignedPost::Legacy(m) => Frame::Public(m),
            SignedPost::Sealed(p) => Frame::SealedPost(p),
            SignedPost::Control(c) => Frame::RoomControl(c),
        }
    }

    /// The form a stored frame encoding holds.
    pub fn from_wire(bytes: &[u8]) -> Option<SignedPost> {
        match crate::wire::codec::decode_exact::<Frame>(bytes).ok()? {
            Frame::SealedPost(p) => Some(SignedPost::Sealed(p)),
            Frame::RoomControl(c) => Some(SignedPost::Control(c)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invite_only_room_may_be_named_with_its_founder() {
        assert_eq!(room_label("+Team").unwrap(), "+team");
        assert_eq!(room_label("+team#abcd efgh").unwrap(), "+team#ABCD-EFGH");
        assert_eq!(room_label(" +team#ABCDE ").unwrap(), "+team#ABCD-E");
        for bad in ["+team#abc", "+team#abcd1", "+team#", "+#abcd"] {
            assert!(room_label(bad).is_err(), "{bad}");
        }
        // An open room has no founder.
        assert!(room_label("#ops#abcd").is_err());
    }

    #[test]
    fn typed_names_are_canonicalised_or_refused_with_a_reason() {
        assert_eq!(room_name("#Ops").unwrap(), "ops");
        assert_eq!(room_name(" lobby ").unwrap(), "lobby");
        assert_eq!(room_name("#"), Err(RoomNameError::Empty));
        assert!(matches!(
            room_name(&"a".repeat(33)),
            Err(RoomNameError::TooLong { .. })
        ));
        assert!(matches!(room_name("#оps"), Err(RoomNameError::Invalid(_))));
        assert!(matches!(room_name("#a b"), Err(RoomNameError::Invalid(_))));
    }

    #[test]
    fn open_room_ids_depend_on_the_name_only() {
        assert_eq!(open_room_id("ops"), open_room_id("ops"));
        assert_ne!(open_room_id("ops"), open_room_id("dev"));
        assert_eq!(default_room(), open_room_id("lobby"));
    }

    #[test]
    fn a_post_verifies_only_in_its_own_room() {
        let me = LocalIdentity::from_secrets([7; 32], [8; 32]).unwrap();
        let post = sign_room_post(&me, open_room_id("ops"), [1; 16], 5, "hi".into());
        assert!(SignedPost::Room(Box::new(post.clone())).verify().is_ok());
        let mut moved = post.clone();
        moved.room = open_room_id("dev");
        assert!(SignedPost::Room(Box::new(moved)).verify().is_err());
        // The same signature is no good as an old public message either.
        let legacy = PublicMessage {
            id: post.id,
            author: post.author,
            timestamp_ms: post.timestamp_ms,
            text: post.text,
            signature: post.signature,
        };
        assert!(SignedPost::Legacy(Box::new(legacy)).verify().is_err());
    }
}
