//! The peer table, sans IO: one entry per remote identity, its redial
//! backoff, and the one rule for when to dial it.
//!
//! ```text
//!              beacon / hello / --connect
//!                        │
//!                        ▼
//!   ┌──────────────▶ Discovered ──dial due──▶ Dialling ──TCP up──▶ Handshaking
//!   │                    ▲                       │                    │
//!   │   backoff elapsed  │          dial failed  │   handshake failed │
//!   │                    │◀──────────────────────┴────────────────────┘
//!   │                    │                                            │ established
//!   │                  Lost ◀──── link closed / keepalive timeout ── Established
//!   │                    │                                            ▲
//!   │                    └───── inbound link established ─────────────┘ (from any state)
//!   └─ expired: not heard from for the discovery expiry and no link → removed
//! ```
//!
//! A peer is keyed by its identity key and nothing else: a beacon or a hello
//! can add an address where it may be reached, never change who it is.
//!
//! The table stores only which link stands for a peer ([`PeerLink`]); how
//! far that link has come is the connection's own state, so
//! [`Peer::state`] derives Dialling, Handshaking and Established from it
//! and there is one source of truth.

use crate::event::LinkState;
use crate::identity::IdentityKey;
use crate::link::Stage;
use crate::rng::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

pub use crate::link::LinkId;

/// Where a peer is in its lifecycle, as shown to the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    /// Known, not connected; a dial is scheduled at `next_dial_ms`.
    Discovered,
    /// A TCP connect we started is in flight.
    Dialling { link: LinkId },
    /// TCP is up and the Noise handshake of our dial is running.
    Handshaking { link: LinkId },
    /// An authenticated link is up.
    Established { link: LinkId },
    /// The link went away at `since_ms`; redial with backoff.
    Lost { since_ms: u64 },
}

impl PeerState {
    pub fn name(&self) -> &'static str {
        match self {
            PeerState::Discovered => "discovered",
            PeerState::Dialling { .. } => "dialling",
            PeerState::Handshaking { .. } => "handshaking",
            PeerState::Established { .. } => "established",
            PeerState::Lost { .. } => "lost",
        }
    }

    /// The state as events report it.
    pub fn link_state(&self) -> LinkState {
        match self {
            PeerState::Discovered => LinkState::Discovered,
            PeerState::Dialling { .. } => LinkState::Dialling,
            PeerState::Handshaking { .. } => LinkState::Handshaking,
            PeerState::Established { .. } => LinkState::Established,
            PeerState::Lost { .. } => LinkState::Lost,
        }
    }

    /// The link of a dial we started that has not finished.
    pub fn pending_dial(&self) -> Option<LinkId> {
        match *self {
            PeerState::Dialling { link } | PeerState::Handshaking { link } => Some(link),
            _ => None,
        }
    }

    pub fn established_link(&self) -> Option<LinkId> {
        match *self {
            PeerState::Established { link } => Some(link),
            _ => None,
        }
    }
}

/// What the table stores of a peer's link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerLink {
    /// No link; a dial may be scheduled.
    Discovered,
    /// The link went away at `since_ms`.
    Lost { since_ms: u64 },
    /// Our unfinished dial of it, or its established link.
    Linked(LinkId),
}

/// Exponential backoff with jitter for redials.
#[derive(Clone, Debug)]
pub struct Backoff {
    min_ms: u64,
    max_ms: u64,
    attempts: u32,
}

impl Backoff {
    pub fn new(min_ms: u64, max_ms: u64) -> Self {
        Backoff {
            min_ms,
            max_ms,
            attempts: 0,
        }
    }

    /// The delay before the next attempt: min·2^attempts, capped, ±25 %.
    pub fn next_delay(&mut self, rng: &mut Rng) -> u64 {
        let base = self
            .min_ms
            .saturating_mul(1u64 << self.attempts.min(20))
            .min(self.max_ms);
        self.attempts = self.attempts.saturating_add(1);
        rng.jitter(base, 0.25)
    }

    pub fn reset(&mut self) {
        self.attempts = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// Everything the node knows about one remote identity.
#[derive(Clone, Debug)]
pub struct Peer {
    pub identity: IdentityKey,
    /// Untrusted; from the latest beacon or hello.
    pub nickname: String,
    /// Where to dial: the latest address a beacon, hello or the user gave.
    pub addr: Option<SocketAddr>,
    /// Which link stands for it; its stage is read from the connection.
    pub link: PeerLink,
    pub backoff: Backoff,
    /// When the next dial is due, if one is scheduled.
    pub next_dial_ms: Option<u64>,
    /// Last beacon, hello or frame from this peer.
    pub last_heard_ms: u64,
    /// The user asked for this peer (`--connect`, `/connect`): never
    /// forgotten by discovery expiry.
    pub pinned: bool,
    /// Discovery stopped seeing it while a dial was running: forget it if
    /// that dial fails.
    pub expired: bool,
}

impl Peer {
    pub fn new(
        identity: IdentityKey,
        nickname: String,
        addr: Option<SocketAddr>,
        now_ms: u64,
        backoff: Backoff,
    ) -> Self {
        Peer {
            identity,
            nickname,
            addr,
            link: PeerLink::Discovered,
            backoff,
            next_dial_ms: None,
            last_heard_ms: now_ms,
            pinned: false,
            expired: false,
        }
    }

    pub fn identity(&self) -> IdentityKey {
        self.identity
    }

    /// The link standing for this peer, in whatever stage.
    pub fn link(&self) -> Option<LinkId> {
        match self.link {
            PeerLink::Linked(l) => Some(l),
            PeerLink::Discovered | PeerLink::Lost { .. } => None,
        }
    }

    /// No link stands for it: a dial may start.
    pub fn is_idle(&self) -> bool {
        self.link().is_none()
    }

    /// The lifecycle state, given the stage of each link (`None`: no such
    /// link, which the node never leaves behind).
    pub fn state(&self, stage_of: impl Fn(LinkId) -> Option<Stage>) -> PeerState {
        match self.link {
            PeerLink::Discovered => PeerState::Discovered,
            PeerLink::Lost { since_ms } => PeerState::Lost { since_ms },
            PeerLink::Linked(link) => match stage_of(link) {
                Some(Stage::Connecting) => PeerState::Dialling { link },
                Some(Stage::Handshaking) => PeerState::Handshaking { link },
                Some(Stage::Established) => PeerState::Established { link },
                None => PeerState::Discovered,
            },
        }
    }
}

/// The peers by identity, and the dial rule.
///
/// Scheduled dials are indexed by time, so that finding the next one and
/// the due ones does not scan every peer on every timer (with a peer per
/// node of a LAN, that scan made a node's work per second grow with the
/// square of the LAN). `next_dial_ms` is a public field, so the index is
/// kept in step lazily: a peer borrowed mutably is marked dirty and
/// re-read by [`PeerTable::reindex`].
pub struct PeerTable {
    local: IdentityKey,
    higher_dial_delay_ms: u64,
    backoff_min_ms: u64,
    backoff_max_ms: u64,
    peers: BTreeMap<IdentityKey, Peer>,
    /// Peers borrowed mutably since their dial time was indexed.
    dirty: BTreeSet<IdentityKey>,
    /// `(next_dial_ms, identity)` of every indexed peer with a dial scheduled.
    dials: BTreeSet<(u64, IdentityKey)>,
    /// The dial time each of those was indexed with.
    indexed: BTreeMap<IdentityKey, u64>,
}

impl PeerTable {
    /// `higher_dial_delay_ms`: how long the side with the higher identity
    /// key waits before dialling, so that usually only one side dials.
    pub fn new(
        local: IdentityKey,
        higher_dial_delay_ms: u64,
        backoff_min_ms: u64,
        backoff_max_ms: u64,
    ) -> Self {
        PeerTable {
            local,
            higher_dial_delay_ms,
            backoff_min_ms,
            backoff_max_ms,
            peers: BTreeMap::new(),
            dirty: BTreeSet::new(),
            dials: BTreeSet::new(),
            indexed: BTreeMap::new(),
        }
    }

    /// The dial rule, for every first dial and every redial after a lost
    /// link: after `wait_ms`, plus `higher_dial_delay_ms` if our key is the
    /// higher one (the lower key's dial wins the duplicate-link tie-break,
    /// so the higher key gives it a head start).
    pub fn dial_at(&self, id: &IdentityKey, now_ms: u64, wait_ms: u64) -> u64 {
        let grace = if self.local < *id {
            0
        } else {
            self.higher_dial_delay_ms
        };
        now_ms + wait_ms + grace
    }

    /// Schedule a peer's dial by the dial rule.
    pub fn schedule_dial(&mut self, id: &IdentityKey, now_ms: u64, wait_ms: u64) {
        let at = self.dial_at(id, now_ms, wait_ms);
        if let Some(p) = self.get_mut(id) {
            p.next_dial_ms = Some(at);
        }
    }

    pub fn new_backoff(&self) -> Backoff {
        Backoff::new(self.backoff_min_ms, self.backoff_max_ms)
    }

    /// The peer, created as Discovered if unknown; true if it was new.
    pub fn get_or_insert(
        &mut self,
        id: IdentityKey,
        nickname: &str,
        addr: Option<SocketAddr>,
        now_ms: u64,
    ) -> (&mut Peer, bool) {
        let backoff = self.new_backoff();
        let is_new = !self.peers.contains_key(&id);
        self.dirty.insert(id);
        let peer = self
            .peers
            .entry(id)
            .or_insert_with(|| Peer::new(id, nickname.to_string(), addr, now_ms, backoff));
        (peer, is_new)
    }

    pub fn get(&self, id: &IdentityKey) -> Option<&Peer> {
        self.peers.get(id)
    }

    /// The peer, marked dirty: its dial time is re-read at the next
    /// reindex.
    pub fn get_mut(&mut self, id: &IdentityKey) -> Option<&mut Peer> {
        let p = self.peers.get_mut(id)?;
        self.dirty.insert(*id);
        Some(p)
    }

    pub fn contains(&self, id: &IdentityKey) -> bool {
        self.peers.contains_key(id)
    }

    pub fn remove(&mut self, id: &IdentityKey) -> Option<Peer> {
        self.unindex(id);
        self.dirty.remove(id);
        self.peers.remove(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values()
    }

    /// Peers whose scheduled dial is due, in identity order.
    pub fn due(&mut self, now_ms: u64) -> Vec<IdentityKey> {
        self.reindex();
        let mut due: Vec<IdentityKey> = self
            .dials
            .iter()
            .take_while(|(t, _)| *t <= now_ms)
            .map(|(_, id)| *id)
            .collect();
        due.sort_unstable();
        due
    }

    /// The earliest scheduled dial.
    pub fn next_dial(&self) -> Option<u64> {
        // A dirty peer's indexed time may be stale: read it from the peer.
        let indexed = self
            .dials
            .iter()
            .find(|(_, id)| !self.dirty.contains(id))
            .map(|(t, _)| *t);
        let dirty = self
            .dirty
            .iter()
            .filter_map(|id| self.peers.get(id).and_then(|p| p.next_dial_ms));
        indexed.into_iter().chain(dirty).min()
    }

    /// Re-read the dial times of the peers borrowed mutably since.
    pub fn reindex(&mut self) {
        while let Some(id) = self.dirty.pop_first() {
            self.unindex(&id);
            if let Some(t) = self.peers.get(&id).and_then(|p| p.next_dial_ms) {
                self.dials.insert((t, id));
                self.indexed.insert(id, t);
            }
        }
    }

    fn unindex(&mut self, id: &IdentityKey) {
        if let Some(t) = self.indexed.remove(id) {
            self.dials.remove(&(t, *id));
        }
    }

    /// Panics if the dial index disagrees with the peers (tests).
    #[cfg(test)]
    pub fn assert_consistent(&mut self) {
        self.reindex();
        let expected: BTreeSet<(u64, IdentityKey)> = self
            .peers
            .values()
            .filter_map(|p| p.next_dial_ms.map(|t| (t, p.identity)))
            .collect();
        assert_eq!(self.dials, expected, "dial index");
        assert_eq!(self.indexed.len(), expected.len(), "indexed dial times");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_to_the_cap_with_bounded_jitter() {
        let mut rng = Rng::new(7);
        let mut b = Backoff::new(500, 30_000);
        let mut last_base = 0;
        for i in 0..12u32 {
            let d = b.next_delay(&mut rng);
            let base = (500u64 << i).min(30_000);
            assert!(
                d >= base * 3 / 4 && d <= base * 5 / 4 + 1,
                "attempt {i}: {d} vs {base}"
            );
            assert!(base >= last_base);
            last_base = base;
        }
        b.reset();
        let d = b.next_delay(&mut rng);
        assert!(d <= 625);
    }

    #[test]
    fn the_higher_key_waits_before_dialling() {
        let (lo, hi) = (IdentityKey([1; 32]), IdentityKey([2; 32]));
        assert_eq!(
            PeerTable::new(lo, 1_500, 500, 30_000).dial_at(&hi, 10, 5),
            15
        );
        assert_eq!(
            PeerTable::new(hi, 1_500, 500, 30_000).dial_at(&lo, 10, 5),
            1_515
        );
    }

    #[test]
    fn the_dial_index_follows_every_change() {
        let me = IdentityKey([0; 32]);
        let (a, b, c) = (
            IdentityKey([1; 32]),
            IdentityKey([2; 32]),
            IdentityKey([3; 32]),
        );
        let mut t = PeerTable::new(me, 1_500, 500, 30_000);
        for id in [a, b, c] {
            t.get_or_insert(id, "", None, 0);
        }
        assert_eq!(t.next_dial(), None);
        t.schedule_dial(&c, 100, 0);
        t.schedule_dial(&b, 100, 50);
        // Read before and after the index catches up.
        assert_eq!(t.next_dial(), Some(100));
        t.reindex();
        assert_eq!(t.next_dial(), Some(100));
        // Changed through a mutable borrow, not yet reindexed.
        if let Some(p) = t.get_mut(&a) {
            p.next_dial_ms = Some(20);
        }
        assert_eq!(t.next_dial(), Some(20));
        assert_eq!(t.due(19), Vec::<IdentityKey>::new());
        assert_eq!(t.due(150), vec![a, b, c], "identity order, not time order");
        if let Some(p) = t.get_mut(&a) {
            p.next_dial_ms = None;
        }
        t.remove(&c);
        assert_eq!(t.due(1_000), vec![b]);
        assert_eq!(t.next_dial(), Some(150));
        if let Some(p) = t.get_mut(&b) {
            p.next_dial_ms = None;
        }
        assert_eq!(t.next_dial(), None);
        t.reindex();
        assert!(t.dials.is_empty() && t.indexed.is_empty());
    }

    #[test]
    fn the_state_of_a_linked_peer_is_its_link_stage() {
        let mut p = Peer::new(
            IdentityKey([1; 32]),
            String::new(),
            None,
            0,
            Backoff::new(1, 2),
        );
        assert_eq!(p.state(|_| None), PeerState::Discovered);
        p.link = PeerLink::Linked(7);
        assert_eq!(
            p.state(|_| Some(Stage::Connecting)),
            PeerState::Dialling { link: 7 }
        );
        assert_eq!(p.state(|_| Some(Stage::Established)).name(), "established");
    }
}
