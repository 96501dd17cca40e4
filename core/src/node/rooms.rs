//! The node's side of rooms: which open rooms the user has joined (kept in
//! the store's settings), which rooms each linked peer says it joined (the
//! `Rooms` frame), unread counts, and the room commands.
//!
//! Every room's messages are stored and relayed whether or not the user
//! joined it (so a peer between two others carries their room, and anyone
//! can catch up through anyone); joining decides what is shown.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{Command, Node, NodeError};
use crate::chat::store::TrustLevel;
use crate::chat::{
    default_room, open_room_id, room_name, rooms::split_founder, Conversation, RoomChanged,
    DEFAULT_ROOM,
};
use crate::event::{Event, MembershipChange, PeerInfo, RoomView};
use crate::identity::{Fingerprint, IdentityKey};
use crate::trust::TrustState;
use crate::wire::limits::MAX_ROOMS_ANNOUNCED;
use crate::wire::{Frame, RoomId};

/// The setting that lists the joined open rooms, space-separated.
const JOINED_SETTING: &str = "rooms";

/// How far back `/who` counts a room's authors as present (1 hour).
pub const WHO_RECENT_MS: u64 = 60 * 60 * 1000;

/// Most peers whose unread private messages are counted.
pub const MAX_UNREAD_PEERS: usize = 1024;

/// How many of a room's latest messages `/who` looks at for authors.
const WHO_RECENT_MESSAGES: usize = 500;

/// Rooms as this node sees them.
#[derive(Debug, Default)]
pub(super) struct RoomBook {
    /// Joined open rooms, by name.
    joined: BTreeMap<String, RoomId>,
    /// Messages received in each joined room since the user last read it
    /// (this run), and how many of them named the user.
    unread: HashMap<RoomId, (u32, u32)>,
    /// Private messages received per peer since the user last read or
    /// wrote to that conversation (this run).
    unread_direct: HashMap<IdentityKey, u32>,
    /// The open rooms each linked peer said it joined.
    announced: HashMap<IdentityKey, Vec<String>>,
    /// The labels of our invite-only rooms as the user last heard them.
    private_labels: HashMap<RoomId, String>,
}

impl RoomBook {
    /// The joined rooms from the setting; the default room when there is
    /// none yet (a first start, or a store from before rooms).
    pub(super) fn load(setting: Option<String>) -> Self {
        let names: Vec<String> = match setting {
            Some(s) => s
                .split_whitespace()
                .filter_map(|n| room_name(n).ok())
                .collect(),
            None => vec![DEFAULT_ROOM.to_owned()],
        };
        RoomBook {
            joined: names
                .into_iter()
                .map(|n| (n.clone(), open_room_id(&n)))
                .collect(),
            ..RoomBook::default()
        }
    }

    fn is_joined_open(&self, room: &RoomId) -> bool {
        self.joined.values().any(|r| r == room)
    }

    /// The name of a joined open room, or of one a linked peer announced.
    fn open_name_of(&self, room: &RoomId) -> Option<String> {
        if *room == default_room() {
            return Some(DEFAULT_ROOM.to_owned());
        }
        if let Some((n, _)) = self.joined.iter().find(|(_, r)| *r == room) {
            return Some(n.clone());
        }
        self.announced
            .values()
            .flatten()
            .find(|n| open_room_id(n) == *room)
            .cloned()
    }

    fn names(&self) -> Vec<String> {
        self.joined
            .keys()
            .take(MAX_ROOMS_ANNOUNCED)
            .cloned()
            .collect()
    }

    fn setting(&self) -> String {
        self.names().join(" ")
    }

    /// A message arrived in a room shown to the user.
    pub(super) fn count_unread(&mut self, room: RoomId, calls_me: bool) {
        let e = self.unread.entry(room).or_default();
        e.0 += 1;
        e.1 += u32::from(calls_me);
    }

    pub(super) fn count_unread_direct(&mut self, peer: IdentityKey) {
        // Throwaway identities could each add a counter: beyond the cap,
        // new senders are not counted (their messages still show).
        if let Some(n) = self.unread_direct.get_mut(&peer) {
            *n += 1;
        } else if self.unread_direct.len() < MAX_UNREAD_PEERS {
            self.unread_direct.insert(peer, 1);
        }
    }

    pub(super) fn read_direct(&mut self, peer: &IdentityKey) {
        self.unread_direct.remove(peer);
    }

    /// What a linked peer says it joined; invalid names never get here
    /// (the frame is refused whole).
    pub(super) fn peer_announced(&mut self, peer: IdentityKey, names: Vec<String>) {
        self.announced.insert(peer, names);
    }

    pub(super) fn peer_gone(&mut self, peer: &IdentityKey) {
        self.announced.remove(peer);
    }

    fn announced_by(&self, room: &str) -> Vec<IdentityKey> {
        let mut v: Vec<IdentityKey> = self
            .announced
            .iter()
            .filter(|(_, names)| names.iter().any(|n| n == room))
            .map(|(p, _)| *p)
            .collect();
        v.sort();
        v
    }
}

impl Node {
    /// The rooms shown to the user: joined open rooms (`#name`) and the
    /// invite-only rooms we are a member of (`+name`, or `+name#FOUNDER`
    /// where we are in several of that name: [`Node::room_label`]).
    pub fn joined_rooms(&self) -> Vec<String> {
        let open = self.rooms.names().into_iter().map(|n| format!("#{n}"));
        let private = self.chat.private_rooms().into_iter().map(|r| {
            self.room_label(&r.id)
                .unwrap_or_else(|| format!("+{}", r.name))
        });
        open.chain(private).collect()
    }

    /// Whether a room's messages are shown: a joined open room, or an
    /// invite-only room we are in.
    pub(super) fn shows_room(&self, room: &RoomId) -> bool {
        self.rooms.is_joined_open(room) || self.chat.is_private_member(room)
    }

    /// A room as the user sees it named: `#name` or `+name`.
    pub(super) fn room_label(&self, room: &RoomId) -> Option<String> {
        if self.chat.is_private(room) {
            let r = self.chat.private_room(room)?;
            let same = self.chat.private_rooms_named(&r.name);
            if same.len() > 1 && self.preferred_private(&same) != Some(r.id) {
                let founder = Fingerprint::of(&r.founder).short();
                return Some(format!("+{}#{founder}", r.name));
            }
            return Some(format!("+{}", r.name));
        }
        self.rooms.open_name_of(room).map(|n| format!("#{n}"))
    }

    /// Which of our invite-only rooms of one name a bare `+name` means:
    /// anyone may found a room with any name and invite us to it, so the
    /// one we founded, else the one whose founder we verified, when that
    /// leaves exactly one. The others are shown and typed with their
    /// founder's fingerprint (`+name#ABCD-EFGH`).
    fn preferred_private(&self, same_name: &[(RoomId, IdentityKey)]) -> Option<RoomId> {
        let only = |v: Vec<RoomId>| (v.len() == 1).then(|| v[0]);
        if let [(id, _)] = same_name {
            return Some(*id);
        }
        let me = self.local.identity_key();
        let ours: Vec<RoomId> = same_name
            .iter()
            .filter(|(_, f)| *f == me)
            .map(|(id, _)| *id)
            .collect();
        if !ours.is_empty() {
            return only(ours);
        }
        only(
            same_name
                .iter()
                .filter(|(_, f)| self.names.level(f) == Some(TrustLevel::Verified))
                .map(|(id, _)| *id)
                .collect(),
        )
    }

    /// The `Rooms` frame for a link that just came up (open rooms only:
    /// invite-only rooms are nobody else's business).
    pub(super) fn rooms_frame(&self) -> Frame {
        Frame::Rooms(self.rooms.names())
    }

    pub(super) fn on_rooms_frame(&mut self, from: IdentityKey, names: Vec<String>) {
        self.rooms.peer_announced(from, names);
    }

    /// The room a typed name stands for (`#ops`, `ops` or `+team`), which
    /// the user must be in: its label and id.
    pub(super) fn joined_room(&self, typed: &str) -> Result<(String, RoomId), NodeError> {
        let typed = typed.trim();
        if let Some(private) = typed.strip_prefix('+') {
            let (name, founder) = split_founder(private)?;
            let name = room_name(name)?;
            let all = self.chat.private_rooms_named(&name);
            let matching: Vec<(RoomId, IdentityKey)> = all
                .iter()
                .filter(|(_, f)| {
                    founder
                        .as_ref()
                        .is_none_or(|typed| Fingerprint::of(f).matches_prefix(typed))
                })
                .copied()
                .collect();
            let pick = match (&founder, &matching[..]) {
                (Some(_), [(id, _)]) => Some(*id),
                (Some(_), _) => None,
                (None, _) => self.preferred_private(&all),
            };
            return match pick {
                Some(id) => Ok((
                    self.room_label(&id).unwrap_or_else(|| format!("+{name}")),
                    id,
                )),
                None if matching.is_empty() => Err(NodeError::NotInRoom {
                    room: typed.to_owned(),
                    hint: "an invite-only room is joined when its founder invites you".into(),
                }),
                None => Err(NodeError::AmbiguousRoom {
                    room: format!("+{name}"),
                    choices: matching
                        .iter()
                        .map(|(_, f)| {
                            let fp = Fingerprint::of(f).short();
                            format!("+{name}#{fp} (founded by {})", self.nick_of(f))
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
            };
        }
        let name = room_name(typed)?;
        let id = open_room_id(&name);
        if !self.rooms.is_joined_open(&id) {
            return Err(NodeError::NotInRoom {
                room: format!("#{name}"),
                hint: format!("/join #{name} first"),
            });
        }
        Ok((format!("#{name}"), id))
    }

    pub(super) fn on_room_command(&mut self, cmd: Command) {
        if let Err(e) = self.try_room_command(cmd) {
            self.flush_posts();
            self.error(e);
        }
    }

    fn try_room_command(&mut self, cmd: Command) -> Result<(), NodeError> {
        match cmd {
            Command::Join(typed) => {
                if typed.trim().starts_with('+') {
                    return Err(NodeError::NotInRoom {
                        room: typed.trim().to_owned(),
                        hint: "an invite-only room is joined when its founder invites you".into(),
                    });
                }
                let name = room_name(&typed)?;
                let id = open_room_id(&name);
                if !self.rooms.is_joined_open(&id) {
                    if self.rooms.joined.len() >= MAX_ROOMS_ANNOUNCED {
                        return Err(NodeError::TooManyRooms {
                            max: MAX_ROOMS_ANNOUNCED,
                        });
                    }
                    self.rooms.joined.insert(name.clone(), id);
                    self.rooms_changed()?;
                }
                self.emit(Event::RoomJoined {
                    room: format!("#{name}"),
                });
            }
            Command::Leave(typed) => {
                let (label, id) = self.joined_room(&typed)?;
                if self.chat.is_private(&id) {
                    return Err(NodeError::CannotLeavePrivate { room: label });
                }
                self.rooms.joined.remove(label.trim_start_matches('#'));
                self.rooms.unread.remove(&id);
                self.rooms_changed()?;
                self.emit(Event::RoomLeft { room: label });
            }
            Command::Rooms => {
                let labels: Vec<(String, RoomId)> = self
                    .rooms
                    .joined
                    .iter()
                    .map(|(n, id)| (format!("#{n}"), *id))
                    .chain(self.chat.private_rooms().into_iter().map(|r| {
                        let label = self.room_label(&r.id);
                        (label.unwrap_or_else(|| format!("+{}", r.name)), r.id)
                    }))
                    .collect();
                let rooms = labels
                    .into_iter()
                    .map(|(name, id)| {
                        let (unread, mentions) =
                            self.rooms.unread.get(&id).copied().unwrap_or_default();
                        let linked_members = self.room_linked_members(&name, &id).len();
                        RoomView {
                            name,
                            unread,
                            mentions,
                            linked_members,
                        }
                    })
                    .collect();
                let mut private: Vec<(PeerInfo, u32)> = self
                    .rooms
                    .unread_direct
                    .iter()
                    .map(|(p, n)| (self.info_of(p), *n))
                    .collect();
                private.sort_by_key(|p| std::cmp::Reverse(p.1));
                self.emit(Event::Rooms { rooms, private });
            }
            Command::ReadRoom(typed) => {
                let (_, id) = self.joined_room(&typed)?;
                self.rooms.unread.remove(&id);
            }
            Command::Who(typed) => {
                let (label, id) = self.joined_room(&typed)?;
                let members = self.room_members(&label, id)?;
                self.emit(Event::Who {
                    room: label,
                    members,
                });
            }
            Command::CreateRoom(typed) => {
                let typed = typed.trim();
                let name = room_name(typed.strip_prefix('+').unwrap_or(typed))?;
                // Only our own: a room someone else founded under this
                // name (and invited us to) must not take it from us.
                let me = self.local.identity_key();
                if self
                    .chat
                    .private_rooms_named(&name)
                    .iter()
                    .any(|(_, f)| *f == me)
                {
                    return Err(NodeError::RoomExists {
                        room: format!("+{name}"),
                    });
                }
                let now = self.wall_ms(self.now_ms);
                let connected = self.connected();
                let (_, (frames, changes)) = self
                    .chat
                    .create_room(now, &self.local, &name, &connected)
                    .map_err(NodeError::RoomChange)?;
                self.after_room_change(frames, changes);
            }
            Command::Invite { peer, room } => {
                let (label, id) = self.joined_room(&room)?;
                let member = self.resolve_for_sending(&peer)?;
                let keys = self
                    .chat
                    .known_keys(&member)
                    .ok_or_else(|| NodeError::KeysUnknown {
                        nickname: crate::names::clamp_nick(&self.nick_of(&member)),
                    })?;
                // An unverified key gets a warning first; the same
                // invitation again means "yes, invite it anyway".
                let verified =
                    self.trust_of(&member, &self.nick_of(&member)) == TrustState::Verified;
                if !verified && self.pending_invite != Some((member, id)) {
                    self.pending_invite = Some((member, id));
                    return Err(NodeError::InviteUnverified {
                        nickname: crate::names::clamp_nick(&self.nick_of(&member)),
                        room: label,
                        peer,
                    });
                }
                self.pending_invite = None;
                let now = self.wall_ms(self.now_ms);
                let connected = self.connected();
                let (frames, changes) = self
                    .chat
                    .invite(now, &self.local, id, keys, &connected)
                    .map_err(NodeError::RoomChange)?;
                self.after_room_change(frames, changes);
            }
            Command::Kick { peer, room } => {
                let (_, id) = self.joined_room(&room)?;
                let member = self.resolve(&peer)?;
                let now = self.wall_ms(self.now_ms);
                let connected = self.connected();
                let (frames, changes) = self
                    .chat
                    .remove(now, &self.local, id, member, &connected)
                    .map_err(NodeError::RoomChange)?;
                self.after_room_change(frames, changes);
            }
            _ => {}
        }
        Ok(())
    }

    fn after_room_change(&mut self, frames: Vec<(IdentityKey, Frame)>, changes: Vec<RoomChanged>) {
        for (to, f) in frames {
            self.queue_frame(&to, f);
        }
        for c in changes {
            self.room_changed(c);
        }
    }

    /// Our invite-only rooms and their labels now.
    fn private_labels(&self) -> HashMap<RoomId, String> {
        self.chat
            .private_rooms()
            .into_iter()
            .filter_map(|r| Some((r.id, self.room_label(&r.id)?)))
            .collect()
    }

    /// At start: the user is told again of every invite-only room whose
    /// key sealed to us did not open (the replay of the logs reports
    /// nothing), after the `started` event.
    pub(super) fn report_keyless_rooms(&mut self) {
        let keyless: Vec<RoomId> = self
            .chat
            .private_rooms()
            .into_iter()
            .map(|r| r.id)
            .filter(|id| self.chat.lacks_room_key(id))
            .collect();
        for room in keyless {
            self.room_changed(RoomChanged::KeyUnopened { room });
        }
    }

    /// Learn the labels the user knows (at start).
    pub(super) fn remember_private_labels(&mut self) {
        self.rooms.private_labels = self.private_labels();
    }

    /// Tell the user of every invite-only room whose label moved (a room
    /// of its name came or went, or a founder was verified), so what the
    /// front end shows and accepts stays what the node resolves.
    pub(super) fn relabel_private_rooms(&mut self) {
        let now = self.private_labels();
        let mut moved: Vec<(String, String)> = now
            .iter()
            .filter_map(|(id, new)| {
                let old = self.rooms.private_labels.get(id)?;
                (old != new).then(|| (old.clone(), new.clone()))
            })
            .collect();
        moved.sort();
        self.rooms.private_labels = now;
        for (old, new) in moved {
            self.emit(Event::RoomRenamed { old, new });
        }
    }

    /// An invite-only room's membership changed: tell the user.
    pub(super) fn room_changed(&mut self, c: RoomChanged) {
        let (room, change) = match c {
            RoomChanged::Joined { room } => {
                let founder = self.chat.private_room(&room).map(|r| r.founder);
                let Some(founder) = founder else { return };
                (
                    room,
                    MembershipChange::YouJoined {
                        founder: self.founder_info(&founder),
                    },
                )
            }
            RoomChanged::Invited { room, member } => {
                (room, MembershipChange::Added(self.info_of(&member)))
            }
            RoomChanged::Removed { room, member } if member == self.local.identity_key() => {
                self.rooms.unread.remove(&room);
                (room, MembershipChange::YouWereRemoved)
            }
            RoomChanged::Removed { room, member } => {
                (room, MembershipChange::Removed(self.info_of(&member)))
            }
            RoomChanged::KeyUnopened { room } => {
                // Entries applied together (a catch-up page) may have
                // moved on to an epoch whose key did open.
                if !self.chat.lacks_room_key(&room) {
                    return;
                }
                let room = self
                    .room_label(&room)
                    .unwrap_or_else(|| "an invite-only room".into());
                self.error(NodeError::RoomKeyUnopened { room });
                return;
            }
        };
        // Labels move when a room of a name comes or goes. A room we
        // joined: the others' new labels first, so the front end never
        // holds two rooms under one label. A room we left: its label as
        // the user knew it, then the others' (one of them may take it).
        match change {
            MembershipChange::YouJoined { .. } => self.relabel_private_rooms(),
            MembershipChange::YouWereRemoved => {
                let label = self
                    .rooms
                    .private_labels
                    .get(&room)
                    .cloned()
                    .unwrap_or_else(|| "+?".to_owned());
                self.emit(Event::RoomMembership {
                    room: label,
                    change,
                });
                self.relabel_private_rooms();
                return;
            }
            _ => {}
        }
        // Rooms we are not in change silently: nobody asked.
        let Some(label) = self.room_label(&room) else {
            return;
        };
        self.emit(Event::RoomMembership {
            room: label,
            change,
        });
    }

    /// The founder as shown: our own name when we founded the room.
    fn founder_info(&self, founder: &IdentityKey) -> PeerInfo {
        let mut info = self.info_of(founder);
        if *founder == self.local.identity_key() {
            info.nickname = self.cfg.nickname.clone();
        }
        info
    }

    /// Linked peers known to be in a room: those that announced an open
    /// room, the linked members of an invite-only one.
    fn room_linked_members(&self, label: &str, id: &RoomId) -> Vec<IdentityKey> {
        if let Some(r) = self.chat.private_room(id) {
            let linked = self.connected();
            return r
                .members
                .into_iter()
                .filter(|m| linked.contains(m))
                .collect();
        }
        self.rooms.announced_by(label.trim_start_matches('#'))
    }

    /// An invite-only room's members, from its log; an open room's linked
    /// peers that joined it, then authors heard in it within
    /// [`WHO_RECENT_MS`].
    fn room_members(&self, label: &str, id: RoomId) -> Result<Vec<PeerInfo>, NodeError> {
        let local = self.local.identity_key();
        if let Some(r) = self.chat.private_room(&id) {
            return Ok(r
                .members
                .iter()
                .filter(|m| **m != local)
                .map(|m| self.info_of(m))
                .collect());
        }
        let mut seen: HashSet<IdentityKey> = HashSet::new();
        let mut out = Vec::new();
        for p in self.rooms.announced_by(label.trim_start_matches('#')) {
            if seen.insert(p) {
                out.push(self.info_of(&p));
            }
        }
        let since = self.wall_ms(self.now_ms).saturating_sub(WHO_RECENT_MS);
        let recent = self
            .chat
            .history(Conversation::Room(id), WHO_RECENT_MESSAGES)
            .map_err(NodeError::History)?;
        for m in recent.iter().rev() {
            if m.timestamp_ms >= since && m.author != local && seen.insert(m.author) {
                out.push(self.info_of(&m.author));
            }
        }
        Ok(out)
    }

    /// Saves the joined rooms and tells every linked peer.
    fn rooms_changed(&mut self) -> Result<(), NodeError> {
        let setting = self.rooms.setting();
        self.chat
            .set_setting(JOINED_SETTING, &setting)
            .map_err(NodeError::RoomsNotSaved)?;
        let frame = self.rooms_frame();
        self.queue_everywhere(frame);
        Ok(())
    }

    /// The setting's key, for loading at start.
    pub(super) fn joined_setting(store: &dyn crate::chat::ChatStore) -> Option<String> {
        store.get_meta(JOINED_SETTING).ok().flatten()
    }
}
