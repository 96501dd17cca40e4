//! A link becoming a peer's, and a link going away: the transitions of
//! docs/ARCHITECTURE.md section 5 that links cause.
//!
//! A peer names the link that stands for it (`PeerLink::Linked`); whether
//! that link is dialling, handshaking or established is the connection's
//! stage. So the transitions here only decide which link stands for a
//! peer, and what to do when none does.

use super::{CloseCause, Node};
use crate::event::Event;
use crate::handshake::PeerHello;
use crate::identity::IdentityKey;
use crate::link::{Connection, Direction};
use crate::peer::{LinkId, PeerLink};
use crate::wire::CloseReason;
use std::net::SocketAddr;
use std::sync::Arc;

impl Node {
    /// A link's handshake authenticated its peer.
    pub(super) fn on_established(&mut self, link_id: LinkId, hello: PeerHello) {
        if !self.wan_identity_holds(link_id, &hello) {
            return;
        }
        let Some(c) = self.conns.get(&link_id) else {
            return;
        };
        let direction = c.direction();
        let dial_addr = dial_back_addr(c, &hello);
        let id = hello.identity();
        self.record_peer(link_id, &hello, dial_addr);
        if self.settle_duplicate(link_id, id) {
            return;
        }
        self.cancel_losing_dials(link_id, id);
        if let Some(p) = self.peers.get_mut(&id) {
            p.link = PeerLink::Linked(link_id);
            p.backoff.reset();
            p.next_dial_ms = None;
        }
        let info = self.info_of(&id);
        self.emit(Event::PeerConnected {
            peer: info,
            direction,
        });
        self.chat_link_up(id);
        self.wan_link_up(id);
    }

    /// Create the peer if unknown (pinned if a `/connect` target reached
    /// it), take name and address from its hello, and tell the trust store.
    fn record_peer(&mut self, link_id: LinkId, hello: &PeerHello, dial_addr: Option<SocketAddr>) {
        let now = self.now_ms;
        let id = hello.identity();
        let pinned = self.take_manual_target(link_id);
        let (peer, is_new) = self
            .peers
            .get_or_insert(id, &hello.nickname, dial_addr, now);
        peer.nickname = hello.nickname.clone();
        peer.last_heard_ms = now;
        peer.pinned |= pinned;
        if dial_addr.is_some() {
            peer.addr = dial_addr;
        }
        self.names.learn(id, &hello.nickname);
        if is_new {
            let info = self.info_of(&id);
            self.emit(Event::PeerDiscovered { peer: info });
        }
        self.chat_peer_seen(hello, dial_addr);
    }

    /// Duplicate links: keep the one dialled by the lower identity key;
    /// between two dialled by the same side, the one with the smaller
    /// handshake hash. True if the peer already had an established link.
    fn settle_duplicate(&mut self, link_id: LinkId, id: IdentityKey) -> bool {
        let existing = self.link_of(&id);
        let Some(old) = existing.filter(|old| *old != link_id && self.conns.contains_key(old))
        else {
            return false;
        };
        let keep = self.preferred(old, link_id, id);
        let drop = if keep == old { link_id } else { old };
        if let Some(p) = self.peers.get_mut(&id) {
            p.link = PeerLink::Linked(keep);
        }
        self.close(
            drop,
            CloseCause::DuplicateLink,
            Some(CloseReason::DuplicateLink),
        );
        if keep == link_id {
            // Whatever was in flight on the old link is resent here.
            self.chat_link_up(id);
        }
        true
    }

    /// A link to the peer is up: a dial of ours to it still running is not
    /// needed, whichever key is lower. Our dial has not written handshake
    /// message 3, so the peer cannot have established it, and dropping it
    /// leaves both ends with the link that is up. (Letting the lower key's
    /// dial finish, as before, won the tie-break and closed this link: the
    /// peer, which had it established, saw its only link close when that
    /// `Close(DuplicateLink)` overtook message 3 of the other, and reported
    /// the peer lost and found again.)
    fn cancel_losing_dials(&mut self, link_id: LinkId, id: IdentityKey) {
        let pending: Vec<LinkId> = self
            .conns
            .dialling()
            .filter(|(l, c)| *l != link_id && c.expected() == Some(id))
            .map(|(l, _)| l)
            .collect();
        for l in pending {
            self.conns.remove(&l);
            self.release(l, false);
        }
    }

    fn is_wan(&self, link: LinkId) -> bool {
        self.conns.get(&link).is_some_and(|c| c.remote().is_wan())
    }

    /// Which of two established links to the same peer survives.
    fn preferred(&self, a: LinkId, b: LinkId, peer: IdentityKey) -> LinkId {
        let me = self.local.identity_key();
        let lower = me.min(peer);
        let dialled_by_lower = |l: LinkId| {
            self.conns.get(&l).is_some_and(|c| {
                let initiator = if c.direction() == Direction::Outbound {
                    me
                } else {
                    peer
                };
                initiator == lower
            })
        };
        match (dialled_by_lower(a), dialled_by_lower(b)) {
            (true, false) => a,
            (false, true) => b,
            // Both dialled by the same side, one of them over iroh: the
            // newer (PROTOCOL.md 12.2). A dialler dials only when it has no
            // link, so it gave the older one up; and a peer that vanished
            // from a QUIC connection (killed, or gone home from the office
            // LAN) leaves it looking alive here until keepalives fail.
            _ if self.is_wan(a) || self.is_wan(b) => a.max(b),
            // Both dialled by the same side: keep the one with the smaller
            // handshake hash, which both ends see alike (link ids do not).
            _ => {
                let hash = |l: LinkId| {
                    self.conns
                        .get(&l)
                        .map(|c| c.handshake_hash().to_vec())
                        .unwrap_or_default()
                };
                if hash(a) <= hash(b) {
                    a
                } else {
                    b
                }
            }
        }
    }

    /// A connection is gone: update the peer or target it stood for.
    pub(super) fn on_gone(&mut self, link_id: LinkId, why: Arc<CloseCause>) {
        let Some(c) = self.conns.remove(&link_id) else {
            return;
        };
        if self.manual_dial_failed(&c, &why) {
            return;
        }
        let id = c.peer().or(c.expected());
        let Some(id) = id.filter(|id| self.peers.contains(id)) else {
            if !c.is_established() {
                self.link_failed(&c, &why);
            }
            return;
        };
        // Extra links (a duplicate, a dial that lost the race) change nothing.
        let ours = self
            .peers
            .get(&id)
            .is_some_and(|p| p.link == PeerLink::Linked(link_id));
        if !ours {
            return;
        }
        if c.is_established() {
            self.established_link_gone(id, &why);
        } else {
            self.dial_failed(id, &c, &why);
        }
    }

    /// A peer's established link went: another established link to it
    /// takes over, or it is lost and redialled by the dial rule.
    fn established_link_gone(&mut self, id: IdentityKey, why: &Arc<CloseCause>) {
        let now = self.now_ms;
        let other = self.conns.established_to(id);
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        if let Some(other) = other {
            p.link = PeerLink::Linked(other);
            return;
        }
        p.link = PeerLink::Lost { since_ms: now };
        let wait = p.backoff.next_delay(&mut self.rng);
        self.chat.on_link_down(id);
        self.files.on_link_down(id);
        self.rooms.peer_gone(&id);
        self.peers.schedule_dial(&id, now, wait);
        if !self.shutting_down {
            let info = self.info_of(&id);
            self.emit(Event::PeerLost {
                peer: info,
                reason: why.clone(),
            });
        }
    }

    /// Our dial of a peer failed: forget the peer if discovery did, else
    /// redial after the backoff.
    fn dial_failed(&mut self, id: IdentityKey, c: &Connection, why: &Arc<CloseCause>) {
        let now = self.now_ms;
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        if p.expired {
            // Shown as it was, with the dial that just failed.
            let state = p.state(|_| Some(c.stage()));
            if let Some(p) = self.peers.remove(&id) {
                let info = self.info_as(&p, state);
                self.names.forget(id);
                self.emit(Event::PeerExpired { peer: info });
            }
            return;
        }
        let delay = p.backoff.next_delay(&mut self.rng);
        p.link = if p.backoff.attempts() > 1 {
            PeerLink::Lost { since_ms: now }
        } else {
            PeerLink::Discovered
        };
        p.next_dial_ms = Some(now + delay);
        self.link_failed(c, why);
    }

    pub(super) fn link_failed(&mut self, c: &Connection, why: &Arc<CloseCause>) {
        self.emit(Event::LinkFailed {
            addr: c.remote(),
            reason: why.clone(),
        });
    }
}

/// Where to dial the peer back: the address we dialled, or the one it
/// connected from with the port it listens on (none if it does not).
/// A WAN link gives no LAN address.
fn dial_back_addr(c: &Connection, hello: &PeerHello) -> Option<SocketAddr> {
    let remote = c.remote().lan()?;
    match c.direction() {
        Direction::Outbound => Some(remote),
        Direction::Inbound => {
            (hello.listen_port != 0).then(|| SocketAddr::new(remote.ip(), hello.listen_port))
        }
    }
}
