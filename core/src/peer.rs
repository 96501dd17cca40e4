//! The lifecycle of one remote identity, sans IO.
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

use crate::identity::IdentityKey;
use crate::rng::Rng;
use std::net::SocketAddr;

pub use crate::link::LinkId;

/// Where a peer is in its lifecycle.
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
    pub state: PeerState,
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
            state: PeerState::Discovered,
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
}
