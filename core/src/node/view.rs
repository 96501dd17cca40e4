//! What the user interface is shown of a peer: its `PeerInfo` (with the
//! lifecycle state read from its link) and its trust state, from the
//! directory of names (`trust::Directory`).

use super::Node;
use crate::event::{LinkState, PeerInfo};
use crate::identity::IdentityKey;
use crate::peer::{Peer, PeerState};
use crate::trust::TrustState;

impl Node {
    /// A known peer, or one only the trust store knows ("offline").
    pub(super) fn info_of(&self, id: &IdentityKey) -> PeerInfo {
        match self.peers.get(id) {
            Some(p) => self.info(p),
            None => {
                let nickname = self.stored_nick(id);
                PeerInfo {
                    identity: *id,
                    trust: self.trust_of(id, &nickname),
                    nickname,
                    state: LinkState::Offline,
                    addr: None,
                    path: None,
                }
            }
        }
    }

    pub(super) fn info(&self, p: &Peer) -> PeerInfo {
        self.info_as(p, self.state_of(p))
    }

    /// A peer shown in a given state (a peer being removed has no link to
    /// read it from).
    pub(super) fn info_as(&self, p: &Peer, state: PeerState) -> PeerInfo {
        PeerInfo {
            identity: p.identity(),
            nickname: p.nickname.clone(),
            state: state.link_state(),
            addr: p.addr,
            trust: self.trust_of(&p.identity(), &p.nickname),
            path: state
                .established_link()
                .and_then(|l| self.conns.get(&l))
                .map(|c| c.path()),
        }
    }

    /// Trust state of a key under its current nickname: one look-up in
    /// the directory.
    pub(super) fn trust_of(&self, id: &IdentityKey, nickname: &str) -> TrustState {
        self.names
            .trust_state(&self.local.identity_key(), id, nickname)
    }
}
