//! The node's side of rooms: which open rooms the user has joined (kept in
//! the store's settings), which rooms each linked peer says it joined (the
//! `Rooms` frame), unread counts, and the room commands.
//!
//! Every room's messages are stored and relayed whether or not the user
//! joined it (so a peer between two others carries their room, and anyone
//! can catch up through anyone); joining decides what is shown.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{Command, Node, NodeError};
use crate::chat::{default_room, open_room_id, room_name, Conversation, DEFAULT_ROOM};
use crate::event::{Event, PeerInfo, RoomView};
use crate::identity::IdentityKey;
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

    pub(super) fn is_joined(&self, room: &RoomId) -> bool {
        self.joined.values().any(|r| r == room)
    }

    /// The name of a joined room, or of one a linked peer announced.
    pub(super) fn name_of(&self, room: &RoomId) -> Option<String> {
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

    /// A message arrived in `room`: counted if the room is joined.
    pub(super) fn count_unread(&mut self, room: RoomId, calls_me: bool) {
        if self.is_joined(&room) {
            let e = self.unread.entry(room).or_default();
            e.0 += 1;
            e.1 += u32::from(calls_me);
        }
    }

    pub(super) fn count_unread_direct(&mut self, peer: IdentityKey) {
        // Throwaway identities could each add a counter: beyond the cap,
        // new senders are not counted (their messages still show).
        if self.unread_direct.len() < MAX_UNREAD_PEERS || self.unread_direct.contains_key(&peer) {
            *self.unread_direct.entry(peer).or_default() += 1;
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
    /// The joined open rooms, by name.
    pub fn joined_rooms(&self) -> Vec<String> {
        self.rooms.names()
    }

    /// The `Rooms` frame for a link that just came up.
    pub(super) fn rooms_frame(&self) -> Frame {
        Frame::Rooms(self.rooms.names())
    }

    pub(super) fn on_rooms_frame(&mut self, from: IdentityKey, names: Vec<String>) {
        self.rooms.peer_announced(from, names);
    }

    /// The room a typed name stands for, which the user must have joined.
    pub(super) fn joined_room(&self, typed: &str) -> Result<(String, RoomId), NodeError> {
        let name = room_name(typed)?;
        let id = open_room_id(&name);
        if !self.rooms.is_joined(&id) {
            return Err(NodeError::NotInRoom { room: name });
        }
        Ok((name, id))
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
                let name = room_name(&typed)?;
                let id = open_room_id(&name);
                if !self.rooms.is_joined(&id) {
                    if self.rooms.joined.len() >= MAX_ROOMS_ANNOUNCED {
                        return Err(NodeError::TooManyRooms {
                            max: MAX_ROOMS_ANNOUNCED,
                        });
                    }
                    self.rooms.joined.insert(name.clone(), id);
                    self.rooms_changed()?;
                }
                self.emit(Event::RoomJoined { room: name });
            }
            Command::Leave(typed) => {
                let (name, id) = self.joined_room(&typed)?;
                self.rooms.joined.remove(&name);
                self.rooms.unread.remove(&id);
                self.rooms_changed()?;
                self.emit(Event::RoomLeft { room: name });
            }
            Command::Rooms => {
                let rooms = self
                    .rooms
                    .joined
                    .iter()
                    .map(|(name, id)| {
                        let (unread, mentions) =
                            self.rooms.unread.get(id).copied().unwrap_or_default();
                        RoomView {
                            name: name.clone(),
                            unread,
                            mentions,
                            linked_members: self.rooms.announced_by(name).len(),
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
                let (name, id) = self.joined_room(&typed)?;
                let members = self.room_members(&name, id)?;
                self.emit(Event::Who {
                    room: name,
                    members,
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Linked peers that say they joined the room, then authors heard in it
    /// within [`WHO_RECENT_MS`].
    fn room_members(&self, name: &str, id: RoomId) -> Result<Vec<PeerInfo>, NodeError> {
        let local = self.local.identity_key();
        let mut seen: HashSet<IdentityKey> = HashSet::new();
        let mut out = Vec::new();
        for p in self.rooms.announced_by(name) {
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
        for c in self.conns.values_mut().filter(|c| c.is_established()) {
            c.queue(frame.clone());
        }
        Ok(())
    }

    /// The setting's key, for loading at start.
    pub(super) fn joined_setting(store: &dyn crate::chat::ChatStore) -> Option<String> {
        store.get_meta(JOINED_SETTING).ok().flatten()
    }
}
