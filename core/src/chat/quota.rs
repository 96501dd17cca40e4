//! How much history strangers may add.
//!
//! Anyone can mint an identity, complete a handshake and post validly
//! signed messages, and every one of them would be stored for good. So new
//! messages by a **stranger** (an author who is neither verified nor long
//! known, [`peer_rank`](super::store::peer_rank)) are counted per author and
//! for all strangers together, in windows of [`QUOTA_WINDOW_MS`] (a day)
//! that start with the first message counted. A message over either budget
//! is neither stored nor acked nor relayed: its sender keeps it in its
//! outbox and sends it again on a later link, when the window has moved on.
//! Nothing is lost, and a flood of minted identities cannot fill the disk
//! or crowd verified and long-known contacts out (they are not counted).
//!
//! *Long known* (seen over a day) takes no more than two handshakes a day
//! apart, which anyone can do for any number of minted identities. So only
//! the [`MAX_EXEMPT_LONG_KNOWN`] long-known peers first seen earliest are
//! exempt: contacts met before an attack began keep their place, and the
//! minted ones are counted like any stranger.
//!
//! The accounting lives in memory: a restart gives every stranger a fresh
//! window, which costs an attacker a restart of the victim per day's budget.

use super::store::{is_long_known, ChatStore, PeerRecord, StoreError, TrustLevel};
use crate::identity::IdentityKey;
use std::collections::{HashMap, HashSet};

/// Long-known peers exempt from the quota at most: those first seen
/// earliest.
pub const MAX_EXEMPT_LONG_KNOWN: usize = 256;
/// How often the exempt long-known peers are read from the trust store
/// again (a peer becomes long known only after a day).
pub const LONG_KNOWN_REFRESH_MS: u64 = 60 * 60 * 1000;

/// The length of a quota window (a day).
pub const QUOTA_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;

/// What strangers may add to history per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Messages by one stranger.
    pub per_author_messages: u32,
    /// Bytes of text by one stranger.
    pub per_author_bytes: u64,
    /// Messages by all strangers together.
    pub all_messages: u32,
    /// Bytes of text by all strangers together.
    pub all_bytes: u64,
    /// Strangers counted at once; a new one beyond this waits for a window
    /// to end.
    pub max_authors: usize,
}

impl Default for QuotaLimits {
    /// 10,000 messages and 16 MiB per stranger, 100,000 messages and
    /// 256 MiB for all strangers, 16,384 strangers at once.
    fn default() -> Self {
        QuotaLimits {
            per_author_messages: 10_000,
            per_author_bytes: 16 << 20,
            all_messages: 100_000,
            all_bytes: 256 << 20,
            max_authors: 16_384,
        }
    }
}

/// One window's count.
#[derive(Clone, Copy, Debug, Default)]
struct Window {
    start_ms: u64,
    messages: u32,
    bytes: u64,
}

impl Window {
    fn roll(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.start_ms) >= QUOTA_WINDOW_MS {
            *self = Window {
                start_ms: now_ms,
                ..Window::default()
            };
        }
    }

    fn fits(&self, bytes: u64, max_messages: u32, max_bytes: u64) -> bool {
        self.messages < max_messages && self.bytes.saturating_add(bytes) <= max_bytes
    }

    fn charge(&mut self, bytes: u64) {
        self.messages = self.messages.saturating_add(1);
        self.bytes = self.bytes.saturating_add(bytes);
    }
}

/// What is known of one author.
#[derive(Clone, Copy, Debug)]
struct Author {
    /// Verified or long known (or ourselves): never counted.
    exempt: bool,
    window: Window,
    /// Whether the UI has been told this window that the author is over.
    reported: bool,
}

/// The verdict on one new message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Store it.
    Admitted,
    /// Over a budget: do not store or ack it. `first` is true once per
    /// author and window, for the UI.
    Refused { first: bool },
}

/// The counts. See the module documentation.
#[derive(Debug)]
pub struct Quota {
    limits: QuotaLimits,
    authors: HashMap<IdentityKey, Author>,
    all: Window,
    /// The exempt long-known peers, and when they were read.
    long_known: HashSet<IdentityKey>,
    long_known_at_ms: Option<u64>,
}

impl Quota {
    pub fn new(limits: QuotaLimits) -> Quota {
        Quota {
            limits,
            authors: HashMap::new(),
            all: Window::default(),
            long_known: HashSet::new(),
            long_known_at_ms: None,
        }
    }

    /// Whether `author` is exempt: us, a verified contact, or one of the
    /// long-known peers first seen earliest.
    fn exempt(
        &mut self,
        now_ms: u64,
        author: IdentityKey,
        local: IdentityKey,
        store: &dyn ChatStore,
    ) -> Result<bool, StoreError> {
        if author == local {
            return Ok(true);
        }
        let Some(p) = store.get_peer(&author.0)? else {
            return Ok(false);
        };
        if p.trust == TrustLevel::Verified {
            return Ok(true);
        }
        if !is_long_known(&p) {
            return Ok(false);
        }
        let stale = self
            .long_known_at_ms
            .is_none_or(|at| now_ms.saturating_sub(at) >= LONG_KNOWN_REFRESH_MS);
        if stale {
            let mut old: Vec<PeerRecord> = store
                .peers()?
                .into_iter()
                .filter(|p| p.trust != TrustLevel::Verified && is_long_known(p))
                .collect();
            old.sort_unstable_by_key(|p| (p.first_seen_ms, p.identity));
            self.long_known = old
                .into_iter()
                .take(MAX_EXEMPT_LONG_KNOWN)
                .map(|p| IdentityKey(p.identity))
                .collect();
            self.long_known_at_ms = Some(now_ms);
        }
        Ok(self.long_known.contains(&author))
    }

    pub fn limits(&self) -> QuotaLimits {
        self.limits
    }

    /// Counts a new message of `bytes` of text by `author`, if it fits.
    /// Whether an author is exempt is read from the trust store once, when
    /// it is first counted.
    pub fn admit(
        &mut self,
        now_ms: u64,
        author: IdentityKey,
        bytes: usize,
        local: IdentityKey,
        store: &dyn ChatStore,
    ) -> Result<Admission, StoreError> {
        let bytes = bytes as u64;
        if !self.authors.contains_key(&author) {
            let exempt = self.exempt(now_ms, author, local, store)?;
            if !exempt && self.authors.len() >= self.limits.max_authors {
                self.forget_ended(now_ms);
                if self.authors.len() >= self.limits.max_authors {
                    return Ok(Admission::Refused { first: false });
                }
            }
            self.authors.insert(
                author,
                Author {
                    exempt,
                    window: Window {
                        start_ms: now_ms,
                        ..Window::default()
                    },
                    reported: false,
                },
            );
        }
        let Some(a) = self.authors.get_mut(&author) else {
            return Ok(Admission::Refused { first: false });
        };
        if a.exempt {
            return Ok(Admission::Admitted);
        }
        if now_ms.saturating_sub(a.window.start_ms) >= QUOTA_WINDOW_MS {
            a.reported = false;
        }
        a.window.roll(now_ms);
        self.all.roll(now_ms);
        let l = &self.limits;
        if a.window
            .fits(bytes, l.per_author_messages, l.per_author_bytes)
            && self.all.fits(bytes, l.all_messages, l.all_bytes)
        {
            a.window.charge(bytes);
            self.all.charge(bytes);
            return Ok(Admission::Admitted);
        }
        let first = !a.reported;
        a.reported = true;
        Ok(Admission::Refused { first })
    }

    /// `/trust` and `/untrust`: a verified author is never counted; one
    /// made unverified again is judged afresh by its next message.
    pub fn trust_changed(&mut self, author: IdentityKey) {
        self.authors.remove(&author);
    }

    /// Drops the strangers whose window has ended (they start afresh).
    fn forget_ended(&mut self, now_ms: u64) {
        self.authors
            .retain(|_, a| a.exempt || now_ms.saturating_sub(a.window.start_ms) < QUOTA_WINDOW_MS);
    }

    /// Strangers and exempt authors currently tracked.
    pub fn tracked(&self) -> usize {
        self.authors.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::store::TrustLevel;
    use crate::chat::MemoryStore;

    const T0: u64 = 1_700_000_000_000;

    fn key(n: u8) -> IdentityKey {
        IdentityKey([n; 32])
    }

    fn small() -> QuotaLimits {
        QuotaLimits {
            per_author_messages: 3,
            per_author_bytes: 100,
            all_messages: 5,
            all_bytes: 1_000,
            max_authors: 4,
        }
    }

    fn admit(q: &mut Quota, now: u64, author: u8, bytes: usize, s: &MemoryStore) -> Admission {
        q.admit(now, key(author), bytes, key(0), s).unwrap()
    }

    #[test]
    fn a_stranger_gets_its_budget_per_window_and_is_reported_once() {
        let s = MemoryStore::new();
        let mut q = Quota::new(small());
        for _ in 0..3 {
            assert_eq!(admit(&mut q, T0, 1, 10, &s), Admission::Admitted);
        }
        assert_eq!(
            admit(&mut q, T0 + 1, 1, 10, &s),
            Admission::Refused { first: true }
        );
        assert_eq!(
            admit(&mut q, T0 + 2, 1, 10, &s),
            Admission::Refused { first: false }
        );
        // A day later the window has moved on.
        assert_eq!(
            admit(&mut q, T0 + QUOTA_WINDOW_MS, 1, 10, &s),
            Admission::Admitted
        );
    }

    #[test]
    fn bytes_count_as_well_as_messages() {
        let s = MemoryStore::new();
        let mut q = Quota::new(small());
        assert_eq!(admit(&mut q, T0, 1, 60, &s), Admission::Admitted);
        assert_eq!(
            admit(&mut q, T0, 1, 41, &s),
            Admission::Refused { first: true }
        );
        assert_eq!(admit(&mut q, T0, 1, 40, &s), Admission::Admitted);
    }

    #[test]
    fn all_strangers_share_one_budget() {
        let s = MemoryStore::new();
        let mut q = Quota::new(small());
        for author in 1..=2 {
            for _ in 0..2 {
                assert_eq!(admit(&mut q, T0, author, 1, &s), Admission::Admitted);
            }
        }
        assert_eq!(admit(&mut q, T0, 3, 1, &s), Admission::Admitted);
        assert_eq!(
            admit(&mut q, T0, 4, 1, &s),
            Admission::Refused { first: true }
        );
    }

    #[test]
    fn verified_long_known_and_local_authors_are_never_counted() {
        let mut s = MemoryStore::new();
        let noise = [9; 32];
        s.upsert_peer_seen(&key(1).0, &noise, "v", T0, None)
            .unwrap();
        s.set_trust(&key(1).0, TrustLevel::Verified, T0).unwrap();
        s.upsert_peer_seen(
            &key(2).0,
            &noise,
            "old",
            T0 - 2 * super::super::store::LONG_KNOWN_MS,
            None,
        )
        .unwrap();
        s.upsert_peer_seen(&key(2).0, &noise, "old", T0, None)
            .unwrap();
        let mut q = Quota::new(small());
        for _ in 0..50 {
            for author in [0, 1, 2] {
                assert_eq!(admit(&mut q, T0, author, 50, &s), Admission::Admitted);
            }
        }
        // Strangers still have the whole shared budget.
        assert_eq!(admit(&mut q, T0, 3, 1, &s), Admission::Admitted);
    }

    /// Two handshakes a day apart make any identity long known; only the
    /// MAX_EXEMPT_LONG_KNOWN first seen earliest are exempt.
    #[test]
    fn long_known_identities_minted_later_are_counted() {
        let mut s = MemoryStore::new();
        let long = super::super::store::LONG_KNOWN_MS;
        let key16 = |i: u16| {
            let mut k = [0u8; 32];
            k[..2].copy_from_slice(&i.to_le_bytes());
            k[31] = 1;
            IdentityKey(k)
        };
        // A contact of old, then 300 identities minted later.
        let old = key16(9999);
        s.upsert_peer_seen(&old.0, &[9; 32], "old", T0 - 30 * long, None)
            .unwrap();
        s.upsert_peer_seen(&old.0, &[9; 32], "old", T0, None)
            .unwrap();
        for i in 0..300 {
            let k = key16(i);
            let first = T0 - 2 * long + u64::from(i);
            s.upsert_peer_seen(&k.0, &[9; 32], "m", first, None)
                .unwrap();
            s.upsert_peer_seen(&k.0, &[9; 32], "m", T0, None).unwrap();
        }
        let limits = QuotaLimits {
            all_messages: 1_000_000,
            all_bytes: u64::MAX,
            max_authors: 1_000,
            ..small()
        };
        let mut q = Quota::new(limits);
        let admitted = |q: &mut Quota, k: IdentityKey| {
            (0..10)
                .filter(|_| q.admit(T0, k, 1, key(0), &s).unwrap() == Admission::Admitted)
                .count()
        };
        assert_eq!(admitted(&mut q, old), 10, "the old contact is exempt");
        let counted: Vec<u16> = (0..300)
            .filter(|&i| admitted(&mut q, key16(i)) < 10)
            .collect();
        // The old contact took one of the places.
        assert_eq!(counted, (255..300).collect::<Vec<u16>>());
    }

    #[test]
    fn trusting_an_author_lifts_its_quota() {
        let mut s = MemoryStore::new();
        let mut q = Quota::new(small());
        for _ in 0..3 {
            admit(&mut q, T0, 1, 1, &s);
        }
        assert_eq!(
            admit(&mut q, T0, 1, 1, &s),
            Admission::Refused { first: true }
        );
        s.upsert_peer_seen(&key(1).0, &[9; 32], "a", T0, None)
            .unwrap();
        s.set_trust(&key(1).0, TrustLevel::Verified, T0).unwrap();
        q.trust_changed(key(1));
        assert_eq!(admit(&mut q, T0, 1, 1, &s), Admission::Admitted);
    }

    #[test]
    fn the_author_table_is_bounded() {
        let s = MemoryStore::new();
        let limits = QuotaLimits {
            all_messages: 1_000,
            ..small()
        };
        let mut q = Quota::new(limits);
        for author in 1..=4 {
            assert_eq!(admit(&mut q, T0, author, 1, &s), Admission::Admitted);
        }
        assert_eq!(
            admit(&mut q, T0, 5, 1, &s),
            Admission::Refused { first: false }
        );
        assert_eq!(q.tracked(), 4);
        // Once their windows end, new strangers are counted again.
        assert_eq!(
            admit(&mut q, T0 + QUOTA_WINDOW_MS, 5, 1, &s),
            Admission::Admitted
        );
        assert_eq!(q.tracked(), 1);
    }
}
