//! Discovery in the node: our beacons out, other peers' beacons in (a
//! sighting adds or refreshes a peer and schedules its first dial by the
//! peer table's dial rule), and peers discovery stopped seeing.

use super::{Node, Output};
use crate::discovery::Sighting;
use crate::event::Event;
use crate::identity::IdentityKey;
use std::net::SocketAddr;

impl Node {
    /// Send a beacon if one is due; forget peers discovery expired.
    pub(super) fn run_discovery(&mut self) {
        let now = self.now_ms;
        let wall = self.wall_ms(now);
        let Some(d) = self.discovery.as_mut() else {
            return;
        };
        if let Some(beacon) = d.poll_beacon(now, wall, &self.local) {
            for to in &self.cfg.beacon_targets {
                self.out.push_back(Output::Datagram {
                    to: *to,
                    data: beacon.clone(),
                });
            }
        }
        for id in d.expire(now) {
            self.on_expired(id);
        }
    }

    /// Discovery stopped seeing a peer. An idle one is forgotten unless the
    /// user gave it; one being dialled is forgotten if that dial fails.
    fn on_expired(&mut self, id: IdentityKey) {
        let forget = self
            .peers
            .get(&id)
            .is_some_and(|p| !p.pinned && p.is_idle());
        let established = self.link_of(&id).is_some();
        if forget {
            if let Some(p) = self.peers.remove(&id) {
                self.names.forget(id);
                let info = self.info(&p);
                self.emit(Event::PeerExpired { peer: info });
            }
        } else if let Some(p) = self.peers.get_mut(&id) {
            p.expired = !p.pinned && !established;
        }
    }

    pub(super) fn on_datagram(&mut self, from: SocketAddr, data: &[u8]) {
        let now = self.now_ms;
        let Some(d) = self.discovery.as_mut() else {
            return;
        };
        // Rejected beacons are counted by discovery and otherwise ignored:
        // a beacon is only ever a hint.
        if let Ok(s) = d.handle_datagram(now, from, data) {
            self.on_sighting(s);
        }
    }

    /// An accepted beacon: add or refresh the peer; dial it if idle and no
    /// dial is scheduled, or soon if it restarted.
    fn on_sighting(&mut self, s: Sighting) {
        let now = self.now_ms;
        let id = s.keys.identity;
        let established = self.link_of(&id).is_some();
        let (peer, is_new) = self.peers.get_or_insert(id, &s.nickname, Some(s.addr), now);
        peer.last_heard_ms = now;
        peer.expired = false;
        // A live link is authenticated knowledge; a beacon is only a hint
        // and never overrides it.
        if !established {
            peer.addr = Some(s.addr);
            if peer.nickname != s.nickname {
                self.names.learn(id, &s.nickname);
                peer.nickname = s.nickname;
            }
        }
        if peer.is_idle() && (is_new || s.restarted || peer.next_dial_ms.is_none()) {
            if s.restarted {
                peer.backoff.reset();
            }
            self.peers.schedule_dial(&id, now, 0);
        }
        if is_new {
            if let Some(p) = self.peers.get(&id) {
                self.names.learn(id, &p.nickname);
            }
            let info = self.info_of(&id);
            self.emit(Event::PeerDiscovered { peer: info });
        }
    }
}
