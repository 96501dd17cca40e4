//! Dialling: scheduled dials of known peers, `/connect` targets whose
//! identity is not known yet, and TCP connects completing.
//!
//! When a dial is due is the peer table's business (`PeerTable::dial_at`,
//! the one dial rule); this module starts the dials that are due, within
//! [`MAX_PENDING_DIALS`](super::MAX_PENDING_DIALS).

use super::{CloseCause, ManualTarget, Node, Output, MAX_PENDING_DIALS};
use crate::event::Event;
use crate::identity::IdentityKey;
use crate::link::{Connection, Purpose, Remote, Stage};
use crate::peer::{LinkId, PeerLink};
use std::net::SocketAddr;
use std::sync::Arc;

impl Node {
    /// Start the dials that are due.
    pub(super) fn run_dials(&mut self) {
        let now = self.now_ms;
        for id in self.peers.due(now) {
            self.dial_peer(id);
        }
        for i in 0..self.manual.len() {
            let addr = self.manual[i].addr;
            if self.manual[i].next_dial_ms.is_some_and(|t| t <= now) && !self.dialling_manual(addr)
            {
                self.manual[i].next_dial_ms = None;
                self.dial(addr, Purpose::Manual);
            }
        }
    }

    fn dial_peer(&mut self, id: IdentityKey) {
        let pending = self.conns.dialling().count();
        let retry = self.now_ms + self.rng.range_ms(500, 1_500);
        let over_wan = self.dial_over_wan(&id);
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        p.next_dial_ms = None;
        if !p.is_idle() || (p.addr.is_none() && !over_wan) {
            return;
        }
        // Beacons name addresses; a flood of them must not turn into a flood
        // of connects (nor crowd out inbound handshakes).
        if pending >= MAX_PENDING_DIALS {
            p.next_dial_ms = Some(retry);
            return;
        }
        let Some(addr) = p.addr.filter(|_| !over_wan) else {
            self.dial_wan(id);
            return;
        };
        let link = self.dial(addr, Purpose::Dial(id));
        if let Some(p) = self.peers.get_mut(&id) {
            p.link = PeerLink::Linked(link);
        }
    }

    fn dial(&mut self, addr: SocketAddr, purpose: Purpose) -> LinkId {
        let id = self.alloc_link();
        let conn = Connection::dial(self.now_ms, addr, purpose, self.cfg.link_config());
        self.conns.insert(id, conn);
        self.out.push_back(Output::Dial { link: id, addr });
        id
    }

    /// Our TCP connect succeeded: send handshake message 1.
    pub(super) fn on_connected(&mut self, link_id: LinkId) {
        let cfg = self.handshake_config();
        let Some(c) = self.conns.get_mut(&link_id) else {
            return;
        };
        if c.stage() != Stage::Connecting {
            return;
        }
        match c.on_connected(&self.local, &cfg) {
            Ok(()) => self.transmit(link_id),
            Err(e) => self.close(link_id, CloseCause::CannotStart(e), None),
        }
    }

    // ---- /connect targets -------------------------------------------------

    /// `/connect addr`: dial it now and keep retrying until a handshake
    /// succeeds.
    pub(super) fn connect(&mut self, addr: SocketAddr) {
        let linked = self
            .peers
            .iter()
            .any(|p| p.addr == Some(addr) && self.state_of(p).established_link().is_some());
        if linked {
            self.emit(Event::AlreadyConnected {
                addr: Remote::Lan(addr),
            });
            return;
        }
        if self.manual.iter().any(|m| m.addr == addr) {
            return;
        }
        let backoff = self.new_backoff();
        self.dial(addr, Purpose::Manual);
        self.manual.push(ManualTarget {
            addr,
            next_dial_ms: None,
            backoff,
        });
    }

    /// Whether a `/connect` target's dial is running.
    fn dialling_manual(&mut self, addr: SocketAddr) -> bool {
        self.conns
            .dialling()
            .any(|(_, c)| c.purpose() == Purpose::Manual && c.remote() == Remote::Lan(addr))
    }

    /// The `/connect` target this link served, removed now that it reached
    /// an identity (which becomes a pinned peer).
    pub(super) fn take_manual_target(&mut self, link_id: LinkId) -> bool {
        let Some(c) = self.conns.get(&link_id) else {
            return false;
        };
        if c.purpose() != Purpose::Manual {
            return false;
        }
        let Remote::Lan(addr) = c.remote() else {
            return false;
        };
        let before = self.manual.len();
        self.manual.retain(|m| m.addr != addr);
        self.manual.len() != before
    }

    /// A gone link that was a `/connect` target's dial: retry after the
    /// backoff. False if the link served no target.
    pub(super) fn manual_dial_failed(&mut self, c: &Connection, why: &Arc<CloseCause>) -> bool {
        if c.purpose() != Purpose::Manual || c.is_established() {
            return false;
        }
        let Some(i) = self
            .manual
            .iter()
            .position(|m| Remote::Lan(m.addr) == c.remote())
        else {
            return false;
        };
        let delay = self.manual[i].backoff.next_delay(&mut self.rng);
        self.manual[i].next_dial_ms = Some(self.now_ms + delay);
        self.link_failed(c, why);
        true
    }
}
