//! Routing between connections: bytes in, events and frames out to the
//! right handler, the links' timers, closing a link, and sealing every
//! link's pending frames when the shell drains.

use super::{CloseCause, Node, Output};
use crate::event::Event;
use crate::identity::IdentityKey;
use crate::link::{Expiry, SealError};
use crate::peer::LinkId;
use crate::trust::TrustState;
use crate::wire::{CloseReason, Frame};
use std::sync::Arc;

impl Node {
    pub(super) fn on_received(&mut self, link_id: LinkId, data: &[u8]) {
        let Some(c) = self.conns.get_mut(&link_id) else {
            return;
        };
        let result = c.on_bytes(self.now_ms, data);
        // Handshake replies go out even if a later message failed.
        self.transmit(link_id);
        match result {
            Ok(received) => {
                if let Some(hello) = received.established {
                    self.on_established(link_id, *hello);
                }
                if !received.frames.is_empty() {
                    self.route_frames(link_id, received.frames);
                }
            }
            // A link whose transport failed cannot carry a Close frame.
            Err(e) => self.close(link_id, CloseCause::Link(e), None),
        }
    }

    /// Chat frames go to the chat core in one batch per read; the rest are
    /// the link's own.
    fn route_frames(&mut self, link_id: LinkId, frames: Vec<Frame>) {
        let mut chat = Vec::new();
        for f in frames {
            if !self.conns.contains_key(&link_id) {
                break;
            }
            if crate::chat::is_chat_frame(&f) {
                chat.push(f);
            } else {
                // Chat frames before a Close are handled (stored, acked)
                // before the link goes.
                if matches!(f, Frame::Close(_)) {
                    if !chat.is_empty() {
                        self.chat_frames(link_id, std::mem::take(&mut chat));
                    }
                    self.finish_checks_of(link_id);
                }
                self.on_frame(link_id, f);
            }
        }
        if !chat.is_empty() {
            self.chat_frames(link_id, chat);
        }
    }

    fn on_frame(&mut self, link_id: LinkId, frame: Frame) {
        let Some(c) = self.conns.get_mut(&link_id) else {
            return;
        };
        let Some(id) = c.peer() else { return };
        if let Some(p) = self.peers.get_mut(&id) {
            p.last_heard_ms = self.now_ms;
        }
        match frame {
            Frame::Ping(n) => c.queue(Frame::Pong(n)),
            Frame::Pong(_) => {}
            Frame::Close(close) => {
                let cause = CloseCause::PeerClosed {
                    reason: close.reason,
                    detail: close.detail,
                };
                self.close(link_id, cause, None);
            }
            Frame::Data(data) => self.emit(Event::Data {
                from: id,
                len: data.len(),
            }),
            Frame::Nick(nick) => self.on_nick(id, nick),
            Frame::FileOffer(_)
            | Frame::FileRequest(_)
            | Frame::FileData(_)
            | Frame::FileEnd(_) => self.file_frame(id, frame),
            Frame::Rooms(names) => self.on_rooms_frame(id, names),
            Frame::Reach(reach) => self.on_reach_frame(id, reach),
            // Routed to the chat core by route_frames.
            Frame::Public(_)
            | Frame::RoomPost(_)
            | Frame::SealedPost(_)
            | Frame::RoomControl(_)
            | Frame::Direct(_)
            | Frame::Ack(_)
            | Frame::SyncRequest(_) => {}
        }
    }

    /// A peer renamed itself.
    fn on_nick(&mut self, id: IdentityKey, nick: String) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut p.nickname, nick.clone());
        self.names.learn(id, &nick);
        let info = self.info_of(&id);
        let changed = info.trust == TrustState::KeyChanged;
        self.emit(Event::PeerRenamed {
            peer: info.clone(),
            old,
        });
        // Taking a verified contact's name is worth a warning.
        if changed {
            let verified = self
                .names
                .verified_lookalikes(&id, &nick)
                .iter()
                .map(|v| self.info_of(v))
                .collect();
            self.emit(Event::KeyWarning {
                peer: info,
                verified,
            });
        }
    }

    /// Run the timers that are due; close the links whose deadline passed.
    pub(super) fn check_links(&mut self) {
        let now = self.now_ms;
        let mut expired: Vec<(LinkId, Expiry)> = Vec::new();
        for l in self.conns.due(now) {
            if let Some(e) = self.conns.get_mut(&l).and_then(|c| c.handle_timeout(now)) {
                expired.push((l, e));
            }
        }
        for (l, e) in expired {
            if e == Expiry::SendStall {
                // Behind a backlog it does not read, a Close frame would
                // never arrive: drop the link and its queue.
                self.release(l, true);
                self.on_gone(l, Arc::new(CloseCause::Expired(e)));
            } else {
                self.close(l, CloseCause::Expired(e), e.close_reason());
            }
        }
    }

    /// Close a link: optionally tell the peer why, then drop it.
    pub(super) fn close(
        &mut self,
        link_id: LinkId,
        cause: CloseCause,
        reason: Option<CloseReason>,
    ) {
        let why = Arc::new(cause);
        if let Some(reason) = reason {
            if let Some(c) = self.conns.get_mut(&link_id) {
                c.queue_close(reason, &why.to_string());
            }
            self.flush_link(link_id);
        }
        if self.conns.contains_key(&link_id) {
            self.release(link_id, false);
        }
        self.on_gone(link_id, why);
    }

    /// Hand the shell what a link has ready to write.
    pub(super) fn transmit(&mut self, link_id: LinkId) {
        if let Some(data) = self.conns.get_mut(&link_id).and_then(|c| c.poll_transmit()) {
            self.out.push_back(Output::Send {
                link: link_id,
                data,
            });
            self.note_backlog(link_id);
        }
    }

    /// Tell the chat core whether a peer's link is backed up; when it has
    /// drained, catch-up answers that waited for it go out.
    pub(super) fn note_backlog(&mut self, link_id: LinkId) {
        let Some(c) = self.conns.get(&link_id) else {
            return;
        };
        let Some(peer) = c.peer() else { return };
        let backed_up = c.queued() > crate::chat::SYNC_BACKLOG_LIMIT;
        if self.chat.set_backlogged(peer, backed_up) && !backed_up {
            self.chat_timeout();
        }
    }

    /// Store the collected posts, then seal every link's pending frames,
    /// one batch per link. The shell drains the node after each input, so
    /// this is also where the link and peer indexes catch up.
    pub(super) fn flush(&mut self) {
        self.flush_posts();
        self.pump_files();
        for l in self.conns.take_pending() {
            self.flush_link(l);
        }
        self.conns.reindex();
        self.peers.reindex();
    }

    /// Seal and send one link's pending frames; a link whose peer does not
    /// read is dropped.
    fn flush_link(&mut self, link_id: LinkId) {
        let Some(c) = self.conns.get_mut(&link_id) else {
            return;
        };
        match c.seal_pending() {
            Ok(()) => self.transmit(link_id),
            Err(SealError::Link(e)) => self.close(link_id, CloseCause::CannotSend(e), None),
            Err(SealError::TooSlow) => {
                // Not reading: drop the link and what is queued for it.
                // What it missed stays in the outbox.
                self.release(link_id, true);
                self.on_gone(link_id, Arc::new(CloseCause::Expired(Expiry::SendStall)));
            }
        }
    }
}
