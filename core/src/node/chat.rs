//! The node's side of the chat core: routing chat frames and commands,
//! naming peers, and turning messages into lines the UI can show.

use super::{CloseCause, Command, LinkedNow, Node, NodeError};
use crate::chat::store::TrustLevel;
use crate::chat::ChatStore;
use crate::chat::{default_room, ChatEvent, Conversation, MessageView, Target};
use crate::event::{ChatLine, Event, PeerInfo};
use crate::handshake::PeerHello;
use crate::identity::{safety_number, IdentityKey};
use crate::peer::LinkId;
use crate::trust::{self, TrustState};
use crate::wire::{CloseReason, Frame};
use std::collections::HashMap;
use std::net::SocketAddr;

/// Remembered peers dialled at start.
pub const MAX_REMEMBERED_DIALS: usize = 64;

/// Most lines `/history` and `/search` return.
pub const MAX_LISTING: usize = 10_000;

impl Node {
    /// Peers remembered from earlier runs are dialled at start, so natter
    /// works where broadcast is blocked.
    pub(super) fn remember_known_peers(&mut self) {
        let Ok(known) = self.chat.store().known_addrs() else {
            return;
        };
        let now = self.now_ms;
        // Most recently seen first; a bounded number, so a store full of
        // one-off identities does not turn every start into a dial storm.
        for (id, addr) in known.into_iter().take(MAX_REMEMBERED_DIALS) {
            let id = IdentityKey(id);
            let Ok(addr) = addr.parse::<SocketAddr>() else {
                continue;
            };
            if id == self.local.identity_key() || self.peers.contains(&id) {
                continue;
            }
            let nick = self.stored_nick(&id);
            self.peers.get_or_insert(id, &nick, Some(addr), now);
            let jitter = self.rng.range_ms(0, 500);
            self.peers.schedule_dial(&id, now, jitter);
        }
    }

    /// Record an authenticated peer in the trust store; warn if its nickname
    /// belongs to a verified contact with another key.
    pub(super) fn chat_peer_seen(&mut self, hello: &PeerHello, addr: Option<SocketAddr>) {
        let now = self.wall_ms(self.now_ms);
        let addr = addr.map(|a| a.to_string());
        let seen = self
            .chat
            .peer_seen(now, &hello.keys, &hello.nickname, addr.as_deref());
        let id = hello.identity();
        self.names.learn(id, &hello.nickname);
        match seen {
            Ok(_) => self.names.mark_stored(id),
            Err(e) => self.error(NodeError::RecordPeer(e)),
        }
        for gone in self.chat.take_pruned() {
            if !self.peers.contains(&gone) {
                self.names.remove(gone);
            }
        }
        let others = self.names.verified_lookalikes(&id, &hello.nickname);
        if !others.is_empty() && self.trust_of(&id, &hello.nickname) == TrustState::KeyChanged {
            let verified: Vec<PeerInfo> = others.iter().map(|v| self.info_of(v)).collect();
            let peer = self.info_of(&id);
            self.emit(Event::KeyWarning { peer, verified });
        }
    }

    /// A link to `id` became its established link: resend its outbox and
    /// ask for the public messages we missed.
    pub(super) fn chat_link_up(&mut self, id: IdentityKey) {
        let now = self.wall_ms(self.now_ms);
        let rooms = self.rooms_frame();
        self.queue_frame(&id, rooms);
        match self.chat.on_link_up(now, id) {
            Ok(frames) => {
                for f in frames {
                    self.queue_frame(&id, f);
                }
            }
            Err(e) => self.error(NodeError::LoadOutbox(e)),
        }
        self.files_link_up(id);
    }

    /// Chat frames from one read of `link` (authenticated as `from`),
    /// handled as one batch (one SQLite transaction, acks after the
    /// commit), with the signature verdicts the pool gave (`checks`), if
    /// it was asked.
    pub(super) fn take_chat_frames(
        &mut self,
        link: LinkId,
        from: IdentityKey,
        frames: Vec<Frame>,
        verdicts: Option<HashMap<usize, bool>>,
    ) {
        let now = self.wall_ms(self.now_ms);
        let linked = LinkedNow {
            peers: &self.peers,
            conns: &self.conns,
        };
        let taken = match verdicts {
            Some(v) => self.chat.on_checked_frames(now, from, frames, &v, &linked),
            None => self.chat.on_frames(now, from, frames, &linked),
        };
        match taken {
            Ok(actions) => {
                for (to, f) in actions.send {
                    self.queue_frame(&to, f);
                }
                let mut last = EventContext::default();
                for ev in actions.events {
                    self.chat_event(ev, &mut last);
                }
                if let Some(v) = actions.rejected.into_iter().next() {
                    let cause = CloseCause::ChatRules(v);
                    self.close(link, cause, Some(CloseReason::ProtocolError));
                }
            }
            Err(e) => {
                // Our store failed, not the peer: keep the link; the peer
                // resends what we did not ack.
                self.error(NodeError::StoreMessages(e));
            }
        }
    }

    /// The chat core's timers: catch-up answers that waited for their
    /// peer's byte budget.
    pub(super) fn chat_timeout(&mut self) {
        let now = self.wall_ms(self.now_ms);
        match self.chat.handle_timeout(now) {
            Ok(actions) => {
                for (to, f) in actions.send {
                    self.queue_frame(&to, f);
                }
            }
            Err(e) => self.error(NodeError::CatchUp(e)),
        }
    }

    /// One event of the chat core, for the UI. `last` holds what the
    /// events before it in the same batch derived (see [`EventContext`]).
    fn chat_event(&mut self, ev: ChatEvent, last: &mut EventContext) {
        match ev {
            ChatEvent::Received(view) => {
                // Every room is stored and relayed; only joined ones show.
                if let Conversation::Room(room) = view.conversation {
                    if !self.shows_room(&room) {
                        return;
                    }
                }
                let message = self.line_after(&mut last.line, view);
                match message.message.conversation {
                    Conversation::Room(room) => self.rooms.count_unread(room, message.calls_me),
                    Conversation::Direct(peer) => self.rooms.count_unread_direct(peer),
                }
                self.emit(Event::MessageReceived { message });
            }
            ChatEvent::Delivered { id, peer } => {
                let peer = match last.delivered_to.take() {
                    Some(info) if info.identity == peer => info,
                    _ => self.info_of(&peer),
                };
                last.delivered_to = Some(peer.clone());
                self.emit(Event::MessageDelivered { id, peer });
            }
            ChatEvent::Collision { author, id, via } => {
                let author = self.info_of(&author);
                let via = self.info_of(&via);
                self.emit(Event::MessageCollision { author, id, via });
            }
            ChatEvent::RoomChanged(c) => {
                // May rename rooms and peers: what was derived is stale.
                *last = EventContext::default();
                self.room_changed(c);
            }
            ChatEvent::OverQuota { author, via } => {
                let author = self.info_of(&author);
                let via = self.info_of(&via);
                self.emit(Event::OverQuota { author, via });
            }
        }
    }

    pub(super) fn on_chat_command(&mut self, cmd: Command) {
        if let Err(e) = self.try_chat_command(cmd) {
            // The answer to a command follows the posts typed before it.
            self.flush_posts();
            self.error(e);
        }
    }

    fn try_chat_command(&mut self, cmd: Command) -> Result<(), NodeError> {
        let now = self.wall_ms(self.now_ms);
        match cmd {
            // Posts are collected and stored together when the shell next
            // drains (group commit: one fsync for a burst).
            Command::Say(text) => self.posts.push((Target::Room(default_room()), text)),
            Command::Post { room, text } => {
                let (_, id) = self.joined_room(&room)?;
                self.posts.push((Target::Room(id), text));
            }
            Command::Msg { peer, text } => {
                let to = self.resolve_for_sending(&peer)?;
                self.rooms.read_direct(&to);
                self.posts.push((Target::Direct(to), text));
            }
            Command::History { peer, room, limit } => {
                let conv = match (&peer, &room) {
                    (Some(name), _) => {
                        let peer = self.resolve(name)?;
                        self.rooms.read_direct(&peer);
                        Conversation::Direct(peer)
                    }
                    (None, Some(room)) => Conversation::Room(self.joined_room(room)?.1),
                    (None, None) => Conversation::lobby(),
                };
                let views = self
                    .chat
                    .history(conv, limit.min(MAX_LISTING))
                    .map_err(NodeError::History)?;
                let messages = views.into_iter().map(|v| self.line(v)).collect();
                self.emit(Event::History {
                    conversation: conv,
                    messages,
                });
            }
            Command::Search { query, room, limit } => {
                let room = match &room {
                    Some(r) => Some(self.joined_room(r)?.1),
                    None => None,
                };
                let views = self
                    .chat
                    .search(&query, room, limit.min(MAX_LISTING))
                    .map_err(NodeError::Search)?;
                // Rooms the user is not in stay out of sight.
                let messages = views
                    .into_iter()
                    .filter(|v| match v.conversation {
                        Conversation::Room(r) => self.shows_room(&r),
                        Conversation::Direct(_) => true,
                    })
                    .map(|v| self.line(v))
                    .collect();
                self.emit(Event::SearchResults { query, messages });
            }
            Command::Info(digits) => self.message_info(&digits)?,
            Command::Verify { peer } => {
                let id = self.resolve(&peer)?;
                let info = self.info_of(&id);
                self.emit(Event::Verify {
                    peer: info,
                    local: self.local.identity_key(),
                    safety_number: safety_number(&self.local.identity_key(), &id),
                });
            }
            Command::Trust { peer, fingerprint } => {
                let id = self.resolve(&peer)?;
                let Some(typed) = fingerprint else {
                    // Never trust on a nickname alone: show what to compare.
                    let info = self.info_of(&id);
                    self.emit(Event::Verify {
                        peer: info,
                        local: self.local.identity_key(),
                        safety_number: safety_number(&self.local.identity_key(), &id),
                    });
                    return Err(NodeError::NotTrustedYet {
                        nickname: crate::names::clamp_nick(&self.nick_of(&id)),
                        typed: peer,
                    });
                };
                trust::check_typed_fingerprint(&typed, &id.fingerprint())?;
                self.set_trust(id, TrustLevel::Verified, now)?;
            }
            Command::Untrust { peer } => {
                let id = self.resolve(&peer)?;
                self.set_trust(id, TrustLevel::Unverified, now)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Store and send the posts collected since the last drain, in one
    /// transaction; `MessageSent` means the message is on disk.
    pub(super) fn flush_posts(&mut self) {
        if self.posts.is_empty() {
            return;
        }
        let items = std::mem::take(&mut self.posts);
        let now = self.wall_ms(self.now_ms);
        let linked = LinkedNow {
            peers: &self.peers,
            conns: &self.conns,
        };
        match self.chat.post_many(now, &self.local, &items, &linked) {
            Ok(results) => {
                let mut last = None;
                for r in results {
                    match r {
                        Ok((view, sends)) => {
                            for (to, f) in sends {
                                self.queue_frame(&to, f);
                            }
                            let message = self.line_after(&mut last, view);
                            self.emit(Event::MessageSent { message });
                        }
                        Err(e) => self.error(NodeError::NotSent(e)),
                    }
                }
            }
            Err(source) => self.error(NodeError::BurstNotSent {
                count: items.len(),
                source,
            }),
        }
    }

    fn set_trust(&mut self, id: IdentityKey, level: TrustLevel, now: u64) -> Result<(), NodeError> {
        self.chat
            .set_trust(id, level, now)
            .map_err(NodeError::Trust)?;
        self.names.set_level(id, level);
        let peer = self.info_of(&id);
        self.emit(Event::TrustChanged { peer });
        // A verified founder's room is what a bare +name means.
        self.relabel_private_rooms();
        Ok(())
    }

    pub(super) fn resolve(&self, name: &str) -> Result<IdentityKey, NodeError> {
        Ok(self.names.resolve(name)?)
    }

    /// Like `resolve`, but a bare nickname that now belongs to a key other
    /// than the verified contact's is refused until the user decides.
    pub(super) fn resolve_for_sending(&self, name: &str) -> Result<IdentityKey, NodeError> {
        let id = self.resolve(name)?;
        let nick = self.current_nick(&id);
        let by_fingerprint = name.contains('#') || !nick.eq_ignore_ascii_case(name.trim());
        if !by_fingerprint && self.trust_of(&id, nick) == TrustState::KeyChanged {
            return Err(NodeError::NicknameOfVerifiedContact {
                nickname: crate::names::clamp_nick(nick),
                short_fingerprint: id.fingerprint().short(),
            });
        }
        Ok(id)
    }

    /// Latest nickname of a key: live peer first, then the trust store.
    pub(super) fn nick_of(&self, id: &IdentityKey) -> String {
        self.current_nick(id).to_owned()
    }

    /// [`Node::nick_of`], borrowed (empty if none is known).
    fn current_nick(&self, id: &IdentityKey) -> &str {
        if *id == self.local.identity_key() {
            return &self.cfg.nickname;
        }
        match self.peers.get(id) {
            Some(p) => &p.nickname,
            None => self.names.nickname(id).unwrap_or_default(),
        }
    }

    /// The nickname the directory knows for a key (empty if none).
    pub(super) fn stored_nick(&self, id: &IdentityKey) -> String {
        self.names.nickname(id).unwrap_or_default().to_owned()
    }

    /// `/info`: one of our messages by short id (or whole id), and who has it.
    fn message_info(&mut self, digits: &str) -> Result<(), NodeError> {
        let mine: Vec<MessageView> = self
            .chat
            .own_messages_by_id(digits, 2)
            .map_err(|e| NodeError::NoSuchMessage(e.to_string()))?;
        let view = match <[MessageView; 1]>::try_from(mine) {
            Ok([v]) => v,
            Err(v) if v.is_empty() => {
                return Err(NodeError::NoSuchMessage(format!(
                    "none of your messages has a short id starting with {digits}"
                )))
            }
            Err(_) => {
                return Err(NodeError::NoSuchMessage(format!(
                    "several of your messages have short ids starting with {digits}: \
                     give more digits"
                )))
            }
        };
        let (delivered, pending) = self.chat.receipts(&view.id).map_err(NodeError::History)?;
        let delivered_to = delivered.iter().map(|p| self.info_of(p)).collect();
        let pending = pending.iter().map(|p| self.info_of(p)).collect();
        let message = self.line(view);
        self.emit(Event::MessageInfo {
            message,
            delivered_to,
            pending,
        });
        Ok(())
    }

    /// A message with author, trust and naming for display.
    fn line(&self, message: MessageView) -> ChatLine {
        self.line_after(&mut None, message)
    }

    /// [`Node::line`], taking the author's and conversation's part from
    /// `last` when the message before it had the same ones, and leaving
    /// this message's there. Only for lines made together: `last` goes
    /// stale when names, trust or rooms change.
    fn line_after(&self, last: &mut Option<LineContext>, message: MessageView) -> ChatLine {
        let context = match last.take() {
            Some(c) if c.author == message.author && c.conversation == message.conversation => c,
            _ => self.line_context(message.author, message.conversation),
        };
        let calls_me = !message.outgoing
            && match message.conversation {
                Conversation::Direct(_) => true,
                Conversation::Room(_) => mentions(&message.text, &self.cfg.nickname),
            };
        let line = ChatLine {
            author_nick: context.author_nick.clone(),
            trust: context.trust,
            peer_nick: context.peer_nick.clone(),
            nick_collides: context.nick_collides,
            room: context.room.clone(),
            calls_me,
            message,
        };
        *last = Some(context);
        line
    }

    /// What a line shows of its author and conversation.
    fn line_context(&self, author: IdentityKey, conversation: Conversation) -> LineContext {
        let author_nick = self.nick_of(&author);
        let about = match conversation {
            Conversation::Direct(peer) => peer,
            Conversation::Room(_) => author,
        };
        let trust = self.trust_of(&about, self.current_nick(&about));
        let (peer_nick, room) = match conversation {
            Conversation::Direct(peer) => (Some(self.nick_of(&peer)), None),
            Conversation::Room(r) => (None, self.room_label(&r)),
        };
        let nick_collides = self.names.has_lookalike(&author, &author_nick);
        LineContext {
            author,
            conversation,
            author_nick,
            trust,
            peer_nick,
            nick_collides,
            room,
        }
    }

    /// Give up the node, keeping its store (simulated restarts).
    pub fn into_store(self) -> Box<dyn ChatStore> {
        self.chat.into_store()
    }

    /// Checks received signatures with `checker` (the application's spreads
    /// them over cores).
    pub fn set_signature_check(&mut self, checker: Box<dyn crate::chat::SignatureCheck>) {
        self.chat.set_signature_check(checker);
    }

    /// The chat core's counters (received, relayed, duplicates, …).
    pub fn chat_stats(&self) -> crate::chat::ChatStats {
        self.chat.stats()
    }

    /// The chat core's store, read-only.
    pub fn store(&self) -> &dyn ChatStore {
        self.chat.store()
    }
}

/// What [`Node::line`] derives from a message's author and conversation:
/// nicknames, trust, look-alikes, the room's label. Each takes map
/// look-ups by key (SipHash of 32 bytes) and an allocation; a batch of
/// events from one peer is nearly always one author in one conversation,
/// so it is derived once per run of such lines, not once per message.
/// With the store's interner and the unread counter, such look-ups were
/// 7.7 % of a receiving node's thread in the chat benchmark, now 2.5 %.
pub(super) struct LineContext {
    author: IdentityKey,
    conversation: Conversation,
    author_nick: String,
    trust: TrustState,
    peer_nick: Option<String>,
    nick_collides: bool,
    room: Option<String>,
}

/// What the events of one batch from the chat core derived for the event
/// before, to reuse for the next (see [`LineContext`]).
#[derive(Default)]
pub(super) struct EventContext {
    line: Option<LineContext>,
    /// The peer of the last `MessageDelivered`, as the UI sees it.
    delivered_to: Option<PeerInfo>,
}

/// Whether `text` names `nick` as a word (case ignored): not inside a longer
/// word, so "al" is not called by "hallo".
pub(super) fn mentions(text: &str, nick: &str) -> bool {
    let nick = nick.trim().to_lowercase();
    if nick.is_empty() {
        return false;
    }
    let text = text.to_lowercase();
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    text.match_indices(&nick).any(|(i, m)| {
        !word(text[..i].chars().next_back()) && !word(text[i + m.len()..].chars().next())
    })
}

#[cfg(test)]
mod mention_tests {
    use super::mentions;

    #[test]
    fn a_mention_is_the_nickname_as_a_word() {
        assert!(mentions("hi alice", "alice"));
        assert!(mentions("@Alice: look", "alice"));
        assert!(mentions("ALICE!", "Alice"));
        assert!(!mentions("malice aforethought", "alice"));
        assert!(!mentions("alice_b here", "alice"));
        assert!(!mentions("anything", ""));
        assert!(mentions("ping zoë.", "Zoë"));
    }
}

#[cfg(test)]
mod line_tests {
    use super::*;
    use crate::rng::Rng;
    use crate::testkit::sim;

    fn view(n: u8, author: IdentityKey, conversation: Conversation, text: &str) -> MessageView {
        MessageView {
            id: [n; 16],
            conversation,
            author,
            timestamp_ms: 1_700_000_000_000 + u64::from(n),
            text: text.into(),
            outgoing: false,
            delivered: false,
            delivered_to: 0,
        }
    }

    /// Lines made together, each reusing what the line before derived
    /// when it can, show what each line made alone shows: a run of one
    /// author and conversation shares its part, a change of either does
    /// not carry the part over.
    #[test]
    fn lines_made_together_show_what_lines_made_alone_show() {
        let mut node = Node::new(
            sim::identity(0),
            sim::node_config(0),
            sim::memory_store(),
            Rng::new(1),
            0,
            1_700_000_000_000,
        );
        let (bob, b0b, carol) = (
            sim::identity(1).identity_key(),
            sim::identity(2).identity_key(),
            sim::identity(3).identity_key(),
        );
        node.names.learn(bob, "bob");
        // Looks like "bob": lines by either show fingerprints.
        node.names.learn(b0b, "b0b");
        node.names.learn(carol, "carol");
        let me = node.local.identity_key();
        let lobby = Conversation::lobby();
        let views = [
            view(1, bob, Conversation::Direct(bob), "hi"),
            view(2, bob, Conversation::Direct(bob), "node0?"),
            view(3, bob, lobby, "hello node0"),
            view(4, carol, lobby, "hi all"),
            view(5, carol, lobby, "anyone?"),
            view(6, b0b, lobby, "me"),
            view(7, carol, Conversation::Direct(carol), "psst"),
            view(8, me, Conversation::Direct(carol), "yes?"),
            view(9, carol, Conversation::Direct(carol), "later"),
        ];
        let mut last = None;
        let together: Vec<ChatLine> = views
            .iter()
            .map(|v| node.line_after(&mut last, v.clone()))
            .collect();
        let alone: Vec<ChatLine> = views.iter().map(|v| node.line(v.clone())).collect();
        assert_eq!(together, alone);
        // The lines differ where they should, so the comparison means something.
        assert_eq!(together[0].author_nick, "bob");
        assert!(together[0].nick_collides);
        assert_eq!(together[3].author_nick, "carol");
        assert!(!together[3].nick_collides);
        assert_eq!(together[6].peer_nick.as_deref(), Some("carol"));
        assert_eq!(together[7].author_nick, "node0");
        assert!(together[2].calls_me && !together[3].calls_me);
    }
}
