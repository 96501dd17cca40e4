//! The chat core's side of invite-only rooms: replaying the stored logs at
//! start, taking and writing sealed posts, and the founder's changes
//! (create, invite, remove), which travel like room posts: stored, put in
//! the outbox of every known peer, relayed, served in catch-up.

use super::private::{control_id, private_room_id, sign_control, OwnKeys, RoomChanged};
use super::room_keys::{decrypt_post, encrypt_post, new_room_key, seal_key};
use super::rooms::signed_sealed_bytes;
use super::{stored_post, Chat, ChatError, SignedPost};
use crate::identity::{domain, BoundKeys, IdentityKey, LocalIdentity, SignatureBytes};
use crate::wire::limits::MAX_ROOM_MEMBERS;
use crate::wire::{Frame, MessageId, RoomChange, RoomControl, RoomFounding, RoomId, SealedPost};
use zeroize::Zeroizing;

/// What a membership change gives the node: frames to send now, and what
/// changed (for the UI).
pub type Published = (Vec<(IdentityKey, Frame)>, Vec<RoomChanged>);

/// An invite-only room as the node lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateRoomView {
    pub id: RoomId,
    pub name: String,
    pub founder: IdentityKey,
    pub members: Vec<IdentityKey>,
    pub epoch: u32,
}

fn view(r: &super::private::PrivateRoom) -> PrivateRoomView {
    PrivateRoomView {
        id: r.id,
        name: r.name().to_owned(),
        founder: r.founder(),
        members: r.members().map(|(m, _)| *m).collect(),
        epoch: r.epoch(),
    }
}

impl Chat {
    /// Gives the chat core our keys (to open room keys sealed to us) and
    /// replays every stored membership log.
    pub fn set_own_keys(&mut self, local: &LocalIdentity) -> Result<Vec<RoomChanged>, ChatError> {
        self.private.set_own_keys(OwnKeys {
            keys: *local.bound_keys(),
            noise_secret: Zeroizing::new(*local.noise_secret()),
        });
        let mut changes = Vec::new();
        for m in self.store.room_controls()? {
            let entry = m.wire.as_deref().and_then(SignedPost::from_wire);
            if let Some(SignedPost::Control(c)) = entry {
                changes.extend(self.private.take(*c));
            }
        }
        for room in self.private.ids() {
            self.pull_stored_controls(room, &mut changes)?;
        }
        Ok(changes)
    }

    /// Takes a checked entry just stored, then the later entries of its
    /// room that are stored but were not kept waiting in memory.
    pub(super) fn take_control(&mut self, c: RoomControl) -> Result<Vec<RoomChanged>, ChatError> {
        let room = private_room_id(&c.founding);
        let mut changes = self.private.take(c);
        self.pull_stored_controls(room, &mut changes)?;
        Ok(changes)
    }

    /// Applies the room's next entries from the store for as long as they
    /// are there: the entries that came ahead of a gap beyond what
    /// [`super::private::MAX_PENDING_CONTROL_BYTES`] keeps in memory.
    fn pull_stored_controls(
        &mut self,
        room: RoomId,
        changes: &mut Vec<RoomChanged>,
    ) -> Result<(), ChatError> {
        while let Some((founder, seq)) = self.private.next_wanted(&room) {
            let Some(m) = self
                .store
                .get_message(&founder.0, &control_id(&room, seq))?
            else {
                break;
            };
            let Some(SignedPost::Control(c)) = m.wire.as_deref().and_then(SignedPost::from_wire)
            else {
                break;
            };
            if c.seq != seq || private_room_id(&c.founding) != room {
                break;
            }
            changes.extend(self.private.take(*c));
            if self.private.next_wanted(&room) == Some((founder, seq)) {
                break;
            }
        }
        Ok(())
    }

    /// The text of a sealed post, or `None` if it must be refused: an
    /// unknown room, an author who is not a member, an old epoch, or (for
    /// a member) a text that does not decrypt. A non-member takes a
    /// fitting post with no text: it carries it without reading it. So
    /// does a member without the epoch's key (its envelope did not open):
    /// refusing would only make every author resend the post for ever.
    pub(super) fn open_sealed(&self, p: &SealedPost) -> Option<String> {
        let room = self.private.get(&p.room)?;
        if !room.is_member(&p.author) || p.epoch != room.epoch() {
            return None;
        }
        let me = self.private.own_identity()?;
        let Some(key) = room.key(p.epoch).filter(|_| room.is_member(&me)) else {
            return Some(String::new());
        };
        decrypt_post(key, p).ok().filter(|t| !t.trim().is_empty())
    }

    /// Our post to an invite-only room, encrypted and signed.
    pub(super) fn seal_post(
        &self,
        local: &LocalIdentity,
        room: RoomId,
        id: MessageId,
        now_ms: u64,
        text: &str,
    ) -> Result<SignedPost, ChatError> {
        let r = self.private.get(&room).ok_or(ChatError::NotAMember)?;
        let author = local.identity_key();
        if !r.is_member(&author) {
            return Err(ChatError::NotAMember);
        }
        let key = r.current_key().ok_or(ChatError::NoRoomKey)?;
        let epoch = r.epoch();
        let (nonce, ciphertext) = encrypt_post(key, &room, epoch, &id, &author, now_ms, text)?;
        let mut p = SealedPost {
            room,
            id,
            author,
            timestamp_ms: now_ms,
            epoch,
            nonce,
            ciphertext,
            signature: SignatureBytes([0; 64]),
        };
        p.signature = local.sign(domain::SEALED_POST, &signed_sealed_bytes(&p));
        Ok(SignedPost::Sealed(Box::new(p)))
    }

    /// Founds an invite-only room named `name` (already checked): its
    /// first log entry, stored, queued for every known peer, and the frames
    /// for the peers connected now.
    pub fn create_room(
        &mut self,
        now_ms: u64,
        local: &LocalIdentity,
        name: &str,
        connected: &[IdentityKey],
    ) -> Result<(RoomId, Published), ChatError> {
        let mut nonce = [0u8; 16];
        crate::identity::random_bytes(&mut nonce)?;
        let founding = RoomFounding {
            name: name.to_owned(),
            founder: local.identity_key(),
            created_ms: now_ms,
            nonce,
        };
        let id = private_room_id(&founding);
        let key = new_room_key()?;
        let envelope = seal_key(&key, &id, 0, local.bound_keys())?;
        let published = self.publish(
            now_ms,
            local,
            founding,
            0,
            0,
            RoomChange::Create { envelope },
            connected,
        )?;
        Ok((id, published))
    }

    /// The founder adds `member` (keys from a handshake or the trust
    /// store) and gives it the current key.
    pub fn invite(
        &mut self,
        now_ms: u64,
        local: &LocalIdentity,
        room: RoomId,
        member: BoundKeys,
        connected: &[IdentityKey],
    ) -> Result<Published, ChatError> {
        let r = self.founded(local, &room)?;
        if r.is_member(&member.identity) {
            return Err(ChatError::Membership("already a member".into()));
        }
        if r.members().count() >= MAX_ROOM_MEMBERS {
            return Err(ChatError::Membership(format!(
                "a room has at most {MAX_ROOM_MEMBERS} members"
            )));
        }
        let key = r.current_key().ok_or(ChatError::NotAMember)?;
        let (epoch, seq, founding) = (r.epoch(), r.next_seq(), r.founding.clone());
        let envelope = seal_key(key, &room, epoch, &member)?;
        let invitee = member.identity;
        let (frames, changes) = self.publish(
            now_ms,
            local,
            founding,
            seq,
            epoch,
            RoomChange::Invite { member, envelope },
            connected,
        )?;
        let mut earlier = self.hand_over_log(room, seq, invitee, connected)?;
        earlier.extend(frames);
        Ok((earlier, changes))
    }

    /// The invitee applies its `Invite` only after every earlier entry of
    /// the log, and those may be older than catch-up serves or written
    /// before we knew it: they go into its outbox, and to it now if it is
    /// connected, ahead of the `Invite`.
    fn hand_over_log(
        &mut self,
        room: RoomId,
        before: u32,
        invitee: IdentityKey,
        connected: &[IdentityKey],
    ) -> Result<Vec<(IdentityKey, Frame)>, ChatError> {
        let keys: Vec<_> = (0..before)
            .map(|seq| (self.local.0, control_id(&room, seq)))
            .collect();
        let entries: Vec<_> = self
            .store
            .get_messages(&keys)?
            .into_iter()
            .flatten()
            .collect();
        let queued: Vec<_> = entries.iter().map(|m| (m.id, invitee.0)).collect();
        self.store.outbox_add(&queued)?;
        if !connected.contains(&invitee) {
            return Ok(Vec::new());
        }
        Ok(entries
            .into_iter()
            .filter_map(super::post_from_stored)
            .map(|post| (invitee, post.into_frame()))
            .collect())
    }

    /// The founder removes `member`: a new epoch whose key goes to every
    /// remaining member, so the removed one cannot read what follows.
    pub fn remove(
        &mut self,
        now_ms: u64,
        local: &LocalIdentity,
        room: RoomId,
        member: IdentityKey,
        connected: &[IdentityKey],
    ) -> Result<Published, ChatError> {
        let r = self.founded(local, &room)?;
        if member == local.identity_key() {
            return Err(ChatError::Membership(
                "the founder cannot remove itself".into(),
            ));
        }
        if !r.is_member(&member) {
            return Err(ChatError::Membership("not a member".into()));
        }
        let epoch = r
            .epoch()
            .checked_add(1)
            .ok_or_else(|| ChatError::Membership("no epochs left".into()))?;
        let key = new_room_key()?;
        let mut envelopes = Vec::new();
        for (id, keys) in r.members() {
            if *id == member {
                continue;
            }
            let keys = match keys {
                Some(k) => *k,
                None => *local.bound_keys(),
            };
            envelopes.push((*id, seal_key(&key, &room, epoch, &keys)?));
        }
        let (seq, founding) = (r.next_seq(), r.founding.clone());
        self.publish(
            now_ms,
            local,
            founding,
            seq,
            epoch,
            RoomChange::Remove { member, envelopes },
            connected,
        )
    }

    fn founded(
        &self,
        local: &LocalIdentity,
        room: &RoomId,
    ) -> Result<&super::private::PrivateRoom, ChatError> {
        let r = self.private.get(room).ok_or(ChatError::NotAMember)?;
        if r.founder() != local.identity_key() {
            return Err(ChatError::NotFounder);
        }
        Ok(r)
    }

    /// Signs, stores (with outbox rows for every known peer) and applies a
    /// log entry; returns the frames for the peers connected now.
    #[allow(clippy::too_many_arguments)]
    fn publish(
        &mut self,
        now_ms: u64,
        local: &LocalIdentity,
        founding: RoomFounding,
        seq: u32,
        epoch: u32,
        change: RoomChange,
        connected: &[IdentityKey],
    ) -> Result<Published, ChatError> {
        let c = sign_control(local, founding, seq, epoch, now_ms, change);
        let room = private_room_id(&c.founding);
        let post = SignedPost::Control(Box::new(c.clone()));
        debug_assert_eq!(post.id(), control_id(&room, seq));
        let stored = stored_post(&post, self.local, now_ms, "");
        let everyone = self.outbox_recipients(now_ms)?;
        let new = self.store.insert_outgoing(&stored, &everyone)?;
        if !new {
            return Err(ChatError::IdCollision);
        }
        let changes = self.private.take(c);
        let frame = post.into_frame();
        let frames = connected
            .iter()
            .filter(|p| **p != self.local)
            .map(|p| (*p, frame.clone()))
            .collect();
        Ok((frames, changes))
    }

    /// Whether we are a member of this invite-only room.
    pub fn is_private_member(&self, room: &RoomId) -> bool {
        let me = self.local;
        self.private.get(room).is_some_and(|r| r.is_member(&me))
    }

    /// A member of this invite-only room without its current epoch's key
    /// (the envelope sealed to us did not open).
    pub fn lacks_room_key(&self, room: &RoomId) -> bool {
        let me = self.local;
        self.private
            .get(room)
            .is_some_and(|r| r.is_member(&me) && r.current_key().is_none())
    }

    /// Whether this room id names an invite-only room we know.
    pub fn is_private(&self, room: &RoomId) -> bool {
        self.private.contains(room)
    }

    /// The invite-only rooms we are a member of.
    pub fn private_rooms(&self) -> Vec<PrivateRoomView> {
        let mut v: Vec<PrivateRoomView> = self.private.mine().map(view).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        v
    }

    /// Our invite-only rooms called `name`: id and founder, by id.
    pub fn private_rooms_named(&self, name: &str) -> Vec<(RoomId, IdentityKey)> {
        let mut v: Vec<(RoomId, IdentityKey)> = self
            .private
            .mine()
            .filter(|r| r.name() == name)
            .map(|r| (r.id, r.founder()))
            .collect();
        v.sort_unstable();
        v
    }

    /// One invite-only room we are a member of, by id.
    pub fn private_room(&self, id: &RoomId) -> Option<PrivateRoomView> {
        let me = self.local;
        self.private.get(id).filter(|r| r.is_member(&me)).map(view)
    }
}

impl Chat {
    pub(super) fn remember_keys(&mut self, keys: BoundKeys) {
        if self.known_keys.len() >= super::MAX_KNOWN_KEYS
            && !self.known_keys.contains_key(&keys.identity)
        {
            // Throwaway identities must neither grow it nor push out the
            // keys of peers met before them: a new key replaces the one
            // learnt last, so a flood churns one place.
            let last = self
                .newest_known_key
                .filter(|k| self.known_keys.contains_key(k))
                .or_else(|| self.known_keys.keys().next().copied());
            if let Some(k) = last {
                self.known_keys.remove(&k);
            }
        }
        if self.known_keys.insert(keys.identity, keys).is_none() {
            self.newest_known_key = Some(keys.identity);
        }
    }

    /// A peer's bound keys, if it completed a handshake this run.
    pub fn known_keys(&self, id: &IdentityKey) -> Option<BoundKeys> {
        self.known_keys.get(id).copied()
    }
}
