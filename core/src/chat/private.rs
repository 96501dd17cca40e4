//! Invite-only rooms: the founder's signed membership log, replayed into
//! who is a member, the key epoch, and the room keys this node holds.
//!
//! Entries ([`RoomControl`]) are numbered from 0 (the founding) without
//! gaps and are applied in that order by every node, member or not, so
//! every node that has the same entries agrees on the members and the
//! epoch: non-members can refuse posts from non-members and stale epochs
//! without reading them. An entry that arrives ahead of a gap waits in
//! memory (at most [`MAX_PENDING_CONTROLS`] per room and
//! [`MAX_PENDING_CONTROL_BYTES`] in all) or, beyond that, in the store only,
//! where the chat core finds it when its turn comes. An entry that is validly
//! signed but does not fit the state (inviting a member, removing a
//! stranger, a wrong epoch, a member beyond [`MAX_ROOM_MEMBERS`]) is
//! applied as nothing, the same way everywhere.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::room_keys::{open_key, RoomKey};
use crate::identity::{domain, BoundKeys, IdentityKey, LocalIdentity, SignatureBytes};
use crate::wire::codec::encode;
use crate::wire::limits::MAX_ROOM_MEMBERS;
use crate::wire::room::SignedRoomControl;
use crate::wire::{MessageId, RoomChange, RoomControl, RoomFounding, RoomId};

/// Entries of one room kept while an earlier one is missing.
pub const MAX_PENDING_CONTROLS: usize = 1024;
/// Bytes ([`control_size`]) of such entries kept in memory, all rooms
/// together. Beyond, an entry is not kept: it is stored like any other,
/// and read back from the store once the gap before it is filled
/// ([`PrivateRooms::next_wanted`]).
pub const MAX_PENDING_CONTROL_BYTES: usize = 4 << 20;

/// What an entry weighs in history, in catch-up pages and in the stranger
/// quota: about its encoded size. A `Remove` carries an envelope for each
/// remaining member (112 bytes each), so it may weigh 28 KiB.
pub fn control_size(c: &RoomControl) -> usize {
    let change = match &c.change {
        RoomChange::Create { .. } => 80,
        RoomChange::Invite { .. } => 208,
        RoomChange::Remove { envelopes, .. } => 32 + 112 * envelopes.len(),
    };
    c.founding.name.len() + 128 + change
}

/// The id of the invite-only room this founding record names.
pub fn private_room_id(f: &RoomFounding) -> RoomId {
    let mut h = Sha256::new();
    h.update(domain::PRIVATE_ROOM);
    h.update(encode(f));
    RoomId(h.finalize().into())
}

/// The message id a log entry is stored and acked under: one per (room,
/// seq), so a founder's two different entries with one number collide.
pub fn control_id(room: &RoomId, seq: u32) -> MessageId {
    let mut h = Sha256::new();
    h.update(domain::ROOM_CONTROL_ID);
    h.update(room.0);
    h.update(seq.to_le_bytes());
    let d = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    id
}

/// The bytes the founder signs for an entry.
pub fn signed_control_bytes(c: &RoomControl) -> Vec<u8> {
    encode(&SignedRoomControl {
        founding: &c.founding,
        seq: c.seq,
        epoch: c.epoch,
        timestamp_ms: c.timestamp_ms,
        change: &c.change,
    })
}

/// An entry of `founding`'s log, signed by `signer` (only the founder's
/// signature makes it count).
pub fn sign_control(
    signer: &LocalIdentity,
    founding: RoomFounding,
    seq: u32,
    epoch: u32,
    timestamp_ms: u64,
    change: RoomChange,
) -> RoomControl {
    let mut c = RoomControl {
        founding,
        seq,
        epoch,
        timestamp_ms,
        change,
        signature: SignatureBytes([0; 64]),
    };
    c.signature = signer.sign(domain::ROOM_CONTROL, &signed_control_bytes(&c));
    c
}

/// Why an entry is refused before any state is looked at. Each is a
/// protocol error of the link that carried it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ControlError {
    #[error("the membership change is not signed by the room's founder")]
    BadSignature,
    #[error("a founding entry must be number 0 at epoch 0, and only it")]
    BadFounding,
    #[error("an invited member's key binding does not verify")]
    BadMember,
}

/// Checks what needs no state: the founder's signature, the founding entry
/// being number 0 and the only one, an invitee's binding.
pub fn check_control(c: &RoomControl) -> Result<(), ControlError> {
    c.founding
        .founder
        .verify(domain::ROOM_CONTROL, &signed_control_bytes(c), &c.signature)
        .map_err(|_| ControlError::BadSignature)?;
    let creates = matches!(c.change, RoomChange::Create { .. });
    if creates != (c.seq == 0) || (creates && c.epoch != 0) {
        return Err(ControlError::BadFounding);
    }
    if let RoomChange::Invite { member, .. } = &c.change {
        member.verify().map_err(|_| ControlError::BadMember)?;
    }
    Ok(())
}

/// This node's own keys, to open envelopes sealed to it.
pub struct OwnKeys {
    pub keys: BoundKeys,
    pub noise_secret: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for OwnKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnKeys")
            .field("keys", &self.keys.identity)
            .finish_non_exhaustive()
    }
}

/// One invite-only room as replayed from its log.
#[derive(Debug)]
pub struct PrivateRoom {
    pub id: RoomId,
    pub founding: RoomFounding,
    /// The next entry to apply.
    next_seq: u32,
    pending: BTreeMap<u32, RoomControl>,
    /// Members and their keys (`None` for the founder, whose keys the log
    /// does not carry).
    members: BTreeMap<IdentityKey, Option<BoundKeys>>,
    epoch: u32,
    /// The room keys this node holds, by epoch.
    keys: HashMap<u32, RoomKey>,
}

/// What applying entries did, for the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomChanged {
    /// We became a member (or founded it).
    Joined { room: RoomId },
    /// `member` was added.
    Invited { room: RoomId, member: IdentityKey },
    /// `member` was removed (if it is us, we can no longer read).
    Removed { room: RoomId, member: IdentityKey },
    /// We are a member, but the envelope sealed to us for the current
    /// epoch did not open: we can neither read nor post there. Only we can
    /// tell (the others cannot open our envelope).
    KeyUnopened { room: RoomId },
}

impl PrivateRoom {
    fn new(founding: RoomFounding) -> Self {
        PrivateRoom {
            id: private_room_id(&founding),
            founding,
            next_seq: 0,
            pending: BTreeMap::new(),
            members: BTreeMap::new(),
            epoch: 0,
            keys: HashMap::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.founding.name
    }

    pub fn founder(&self) -> IdentityKey {
        self.founding.founder
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The next entry's number (what the founder writes next).
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    pub fn is_member(&self, id: &IdentityKey) -> bool {
        self.members.contains_key(id)
    }

    pub fn members(&self) -> impl Iterator<Item = (&IdentityKey, &Option<BoundKeys>)> {
        self.members.iter()
    }

    /// The key of the current epoch, if we hold it.
    pub fn current_key(&self) -> Option<&RoomKey> {
        self.keys.get(&self.epoch)
    }

    pub fn key(&self, epoch: u32) -> Option<&RoomKey> {
        self.keys.get(&epoch)
    }

    /// Takes a checked entry: applies it and every waiting one it unblocks.
    /// `held` counts the bytes of waiting entries of every room.
    fn take(
        &mut self,
        c: RoomControl,
        own: Option<&OwnKeys>,
        held: &mut usize,
        out: &mut Vec<RoomChanged>,
    ) {
        if c.seq < self.next_seq || self.pending.contains_key(&c.seq) {
            return;
        }
        if c.seq > self.next_seq {
            let size = control_size(&c);
            if self.pending.len() < MAX_PENDING_CONTROLS
                && held.saturating_add(size) <= MAX_PENDING_CONTROL_BYTES
            {
                *held += size;
                self.pending.insert(c.seq, c);
            }
            return;
        }
        self.apply(c, own, out);
        self.next_seq += 1;
        while let Some(next) = self.pending.remove(&self.next_seq) {
            *held = held.saturating_sub(control_size(&next));
            self.apply(next, own, out);
            self.next_seq += 1;
        }
    }

    /// Nothing applied and nothing waiting: only an entry that was not
    /// kept made it.
    fn is_empty(&self) -> bool {
        self.next_seq == 0 && self.pending.is_empty()
    }

    fn apply(&mut self, c: RoomControl, own: Option<&OwnKeys>, out: &mut Vec<RoomChanged>) {
        let me = own.map(|o| o.keys.identity);
        let open = |env, epoch| {
            own.and_then(|o| open_key(&o.noise_secret, &o.keys, env, &self.id, epoch).ok())
        };
        match &c.change {
            RoomChange::Create { envelope } => {
                let founder = self.founding.founder;
                self.members.insert(founder, None);
                self.epoch = 0;
                if me == Some(founder) {
                    if let Some(k) = open(envelope, 0) {
                        self.keys.insert(0, k);
                    }
                    out.push(RoomChanged::Joined { room: self.id });
                }
            }
            RoomChange::Invite { member, envelope } => {
                let id = member.identity;
                // The cap holds for every log, not just ours: a `Remove`
                // carries an envelope per remaining member, and the frame
                // allows at most MAX_ROOM_MEMBERS of them.
                if c.epoch != self.epoch
                    || self.members.contains_key(&id)
                    || self.members.len() >= MAX_ROOM_MEMBERS
                {
                    return;
                }
                self.members.insert(id, Some(*member));
                if me == Some(id) {
                    let opened = open(envelope, c.epoch);
                    out.push(RoomChanged::Joined { room: self.id });
                    match opened {
                        Some(k) => drop(self.keys.insert(c.epoch, k)),
                        None => out.push(RoomChanged::KeyUnopened { room: self.id }),
                    }
                } else {
                    out.push(RoomChanged::Invited {
                        room: self.id,
                        member: id,
                    });
                }
            }
            RoomChange::Remove { member, envelopes } => {
                // One envelope for every remaining member, the founder
                // included: a member left without one would stay in the
                // room unable to read it, which no node but it could see.
                let named: BTreeSet<&IdentityKey> = envelopes.iter().map(|(to, _)| to).collect();
                let fits = Some(c.epoch) == self.epoch.checked_add(1)
                    && *member != self.founding.founder
                    && self.members.contains_key(member)
                    && named.len() == envelopes.len()
                    && envelopes.len() + 1 == self.members.len()
                    && named
                        .iter()
                        .all(|to| *to != member && self.members.contains_key(to));
                if !fits {
                    return;
                }
                self.members.remove(member);
                self.epoch = c.epoch;
                out.push(RoomChanged::Removed {
                    room: self.id,
                    member: *member,
                });
                // Every remaining member has an envelope (checked above).
                if let Some((_, env)) = envelopes.iter().find(|(to, _)| Some(*to) == me) {
                    match open(env, c.epoch) {
                        Some(k) => drop(self.keys.insert(c.epoch, k)),
                        None => out.push(RoomChanged::KeyUnopened { room: self.id }),
                    }
                }
            }
        }
    }
}

/// Every invite-only room this node has heard of.
#[derive(Debug, Default)]
pub struct PrivateRooms {
    rooms: HashMap<RoomId, PrivateRoom>,
    own: Option<OwnKeys>,
    /// Bytes of entries waiting for an earlier one, all rooms together
    /// (at most [`MAX_PENDING_CONTROL_BYTES`]).
    held: usize,
}

impl PrivateRooms {
    pub fn set_own_keys(&mut self, own: OwnKeys) {
        self.own = Some(own);
    }

    pub fn own_identity(&self) -> Option<IdentityKey> {
        self.own.as_ref().map(|o| o.keys.identity)
    }

    pub fn own_keys(&self) -> Option<&BoundKeys> {
        self.own.as_ref().map(|o| &o.keys)
    }

    /// Takes an entry that passed [`check_control`] (and is stored).
    pub fn take(&mut self, c: RoomControl) -> Vec<RoomChanged> {
        let id = private_room_id(&c.founding);
        let mut out = Vec::new();
        let room = self
            .rooms
            .entry(id)
            .or_insert_with(|| PrivateRoom::new(c.founding.clone()));
        room.take(c, self.own.as_ref(), &mut self.held, &mut out);
        if room.is_empty() {
            self.rooms.remove(&id);
        }
        out
    }

    /// The founder and number of the entry room `id` needs next, when it
    /// is not waiting in memory: the caller looks for it in the store (an
    /// entry that arrived ahead of a gap is stored even when it is not
    /// kept here).
    pub fn next_wanted(&self, id: &RoomId) -> Option<(IdentityKey, u32)> {
        let room = self.rooms.get(id)?;
        (!room.pending.contains_key(&room.next_seq))
            .then_some((room.founding.founder, room.next_seq))
    }

    /// Every room heard of.
    pub fn ids(&self) -> Vec<RoomId> {
        self.rooms.keys().copied().collect()
    }

    pub fn get(&self, id: &RoomId) -> Option<&PrivateRoom> {
        self.rooms.get(id)
    }

    pub fn contains(&self, id: &RoomId) -> bool {
        self.rooms.contains_key(id)
    }

    /// Rooms we are a member of.
    pub fn mine(&self) -> impl Iterator<Item = &PrivateRoom> {
        let me = self.own_identity();
        self.rooms
            .values()
            .filter(move |r| me.is_some_and(|m| r.is_member(&m)))
    }
}
