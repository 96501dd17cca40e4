//! What the user interface is shown of a peer: its `PeerInfo` (with the
//! lifecycle state read from its link) and its trust state, cached until
//! the peer table or the trust store changes.

use super::{NameCache, Node};
use crate::event::{hex_key, PeerInfo};
use crate::identity::IdentityKey;
use crate::peer::{Peer, PeerState};
use crate::trust::{self, TrustState};

impl Node {
    /// A known peer, or one only the trust store knows ("offline").
    pub(super) fn info_of(&self, id: &IdentityKey) -> PeerInfo {
        match self.peers.get(id) {
            Some(p) => self.info(p),
            None => {
                let nickname = self.stored_nick(id);
                PeerInfo {
                    identity: hex_key(id),
                    fingerprint: id.fingerprint().grouped(),
                    trust: self.trust_of(id, &nickname),
                    nickname,
                    state: "offline",
                    addr: None,
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
            identity: hex_key(&p.identity()),
            fingerprint: p.identity().fingerprint().grouped(),
            nickname: p.nickname.clone(),
            state: state.name(),
            addr: p.addr.map(|a| a.to_string()),
            trust: self.trust_of(&p.identity(), &p.nickname),
        }
    }

    /// Trust state of a key; a store failure shows as unverified. Cached
    /// until the peer table or the trust store changes.
    pub(super) fn trust_of(&self, id: &IdentityKey, nickname: &str) -> TrustState {
        let key = (*id, nickname.to_string());
        if let Some(t) = self.names.borrow().trust.get(&key) {
            return *t;
        }
        let t = self.trust_of_uncached(id, nickname);
        self.names.borrow_mut().trust.insert(key, t);
        t
    }

    /// Forget cached trust states and naming candidates: the peer table,
    /// a nickname or the trust store changed.
    pub(crate) fn names_changed(&self) {
        *self.names.borrow_mut() = NameCache::default();
    }

    fn trust_of_uncached(&self, id: &IdentityKey, nickname: &str) -> TrustState {
        trust::trust_state(self.chat.store(), &self.local.identity_key(), id, nickname)
            .unwrap_or(TrustState::Unverified)
    }
}
