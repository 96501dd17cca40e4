//! The node's connections, with the look-ups the node makes on every
//! input and timer kept as indexes: whose timers are due, which have frames
//! to seal, our unfinished dials, the unauthenticated inbound connections,
//! and each peer's established links.
//!
//! With a link to every peer of a LAN, scanning every connection for each
//! of these made the node's work per second grow with the square of the
//! number of peers (docs/PERFORMANCE.md, "Scale"). The indexes are kept in
//! step lazily: borrowing a connection mutably marks it dirty, and
//! [`Conns::reindex`] re-reads the dirty ones (deadline, stage, pending
//! frames). Every query that needs the indexes reindexes first, except
//! [`Conns::next_deadline`] (for `Node::poll_timeout`, which takes `&self`),
//! which looks at the dirty connections themselves; the node reindexes
//! whenever the shell drains it, so few are dirty by then.
//!
//! Only `&mut` borrows change a [`Connection`] (it has no interior
//! mutability), so a connection not marked dirty is as it was indexed.

use crate::identity::IdentityKey;
use crate::link::{Connection, Direction};
use crate::peer::LinkId;
use std::collections::{BTreeMap, BTreeSet};

/// What a connection was indexed as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Indexed {
    deadline: Option<u64>,
    class: Class,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Ours, not established: connecting or handshaking.
    Dialling,
    /// Accepted, not authenticated yet.
    Unauthenticated,
    Established(IdentityKey),
}

impl Indexed {
    fn of(c: &Connection) -> Indexed {
        let class = match (c.peer(), c.direction()) {
            (Some(id), _) => Class::Established(id),
            (None, Direction::Outbound) => Class::Dialling,
            (None, Direction::Inbound) => Class::Unauthenticated,
        };
        Indexed {
            deadline: c.poll_timeout(),
            class,
        }
    }
}

/// Every connection by link id, and the indexes above.
#[derive(Default)]
pub(super) struct Conns {
    map: BTreeMap<LinkId, Connection>,
    /// Borrowed mutably since last indexed.
    dirty: BTreeSet<LinkId>,
    /// How each connection not dirty was indexed.
    indexed: BTreeMap<LinkId, Indexed>,
    /// `(deadline, link)` of every indexed connection with a timer armed.
    deadlines: BTreeSet<(u64, LinkId)>,
    /// Connections that had frames queued when indexed (a superset of
    /// those that still have: sealing one alone leaves it here, harmlessly).
    pending: BTreeSet<LinkId>,
    dialling: BTreeSet<LinkId>,
    unauthenticated: BTreeSet<LinkId>,
    established: BTreeSet<(IdentityKey, LinkId)>,
}

impl Conns {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn contains_key(&self, link: &LinkId) -> bool {
        self.map.contains_key(link)
    }

    pub fn get(&self, link: &LinkId) -> Option<&Connection> {
        self.map.get(link)
    }

    /// The connection, marked dirty: whatever the caller does to it is
    /// re-read at the next reindex.
    pub fn get_mut(&mut self, link: &LinkId) -> Option<&mut Connection> {
        let c = self.map.get_mut(link)?;
        self.dirty.insert(*link);
        Some(c)
    }

    pub fn insert(&mut self, link: LinkId, c: Connection) {
        self.unindex(link);
        self.map.insert(link, c);
        self.dirty.insert(link);
    }

    pub fn remove(&mut self, link: &LinkId) -> Option<Connection> {
        self.unindex(*link);
        self.dirty.remove(link);
        self.pending.remove(link);
        self.map.remove(link)
    }

    pub fn keys(&self) -> impl Iterator<Item = &LinkId> {
        self.map.keys()
    }

    /// Every connection, each marked dirty (for changes made to all links,
    /// such as a new nickname).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Connection> {
        self.dirty.extend(self.map.keys().copied());
        self.map.values_mut()
    }

    /// Re-read the dirty connections into the indexes.
    pub fn reindex(&mut self) {
        while let Some(link) = self.dirty.pop_first() {
            self.unindex(link);
            let Some(c) = self.map.get(&link) else {
                continue;
            };
            let ix = Indexed::of(c);
            if let Some(t) = ix.deadline {
                self.deadlines.insert((t, link));
            }
            match ix.class {
                Class::Dialling => self.dialling.insert(link),
                Class::Unauthenticated => self.unauthenticated.insert(link),
                Class::Established(id) => self.established.insert((id, link)),
            };
            if c.has_pending() {
                self.pending.insert(link);
            }
            self.indexed.insert(link, ix);
        }
    }

    fn unindex(&mut self, link: LinkId) {
        let Some(ix) = self.indexed.remove(&link) else {
            return;
        };
        if let Some(t) = ix.deadline {
            self.deadlines.remove(&(t, link));
        }
        match ix.class {
            Class::Dialling => self.dialling.remove(&link),
            Class::Unauthenticated => self.unauthenticated.remove(&link),
            Class::Established(id) => self.established.remove(&(id, link)),
        };
    }

    /// The earliest armed timer of any connection.
    pub fn next_deadline(&self) -> Option<u64> {
        // A dirty connection's indexed deadline may be stale: read it from
        // the connection.
        let indexed = self
            .deadlines
            .iter()
            .find(|(_, l)| !self.dirty.contains(l))
            .map(|(t, _)| *t);
        let dirty = self
            .dirty
            .iter()
            .filter_map(|l| self.map.get(l).and_then(Connection::poll_timeout));
        indexed.into_iter().chain(dirty).min()
    }

    /// Connections with a timer due at `now_ms`, in link order.
    pub fn due(&mut self, now_ms: u64) -> Vec<LinkId> {
        self.reindex();
        let mut due: Vec<LinkId> = self
            .deadlines
            .iter()
            .take_while(|(t, _)| *t <= now_ms)
            .map(|(_, l)| *l)
            .collect();
        due.sort_unstable();
        due
    }

    /// Connections that may have frames to seal, in link order; the set is
    /// emptied (sealing leaves none queued).
    pub fn take_pending(&mut self) -> Vec<LinkId> {
        self.reindex();
        let pending = std::mem::take(&mut self.pending);
        pending
            .into_iter()
            .filter(|l| self.map.get(l).is_some_and(Connection::has_pending))
            .collect()
    }

    /// Our dials that have not finished, in link order.
    pub fn dialling(&mut self) -> impl Iterator<Item = (LinkId, &Connection)> {
        self.reindex();
        let map = &self.map;
        self.dialling
            .iter()
            .filter_map(move |l| map.get(l).map(|c| (*l, c)))
    }

    /// Accepted connections not authenticated yet, in link order.
    pub fn unauthenticated(&mut self) -> impl Iterator<Item = (LinkId, &Connection)> {
        self.reindex();
        let map = &self.map;
        self.unauthenticated
            .iter()
            .filter_map(move |l| map.get(l).map(|c| (*l, c)))
    }

    /// The established link to `id` with the lowest link id.
    pub fn established_to(&mut self, id: IdentityKey) -> Option<LinkId> {
        self.reindex();
        self.established
            .range((id, LinkId::MIN)..=(id, LinkId::MAX))
            .next()
            .map(|(_, l)| *l)
    }

    /// Panics if an index disagrees with the connections (tests).
    #[cfg(test)]
    pub fn assert_consistent(&mut self) {
        self.reindex();
        assert_eq!(self.indexed.len(), self.map.len(), "indexed entries");
        for (l, c) in &self.map {
            let ix = Indexed::of(c);
            assert_eq!(self.indexed.get(l), Some(&ix), "link {l}");
            if let Some(t) = ix.deadline {
                assert!(self.deadlines.contains(&(t, *l)), "deadline of {l}");
            }
            if c.has_pending() {
                assert!(self.pending.contains(l), "pending of {l}");
            }
        }
        let classes = self.dialling.len() + self.unauthenticated.len() + self.established.len();
        assert_eq!(classes, self.map.len(), "class sets");
        assert_eq!(
            self.deadlines.len(),
            self.map
                .values()
                .filter(|c| c.poll_timeout().is_some())
                .count(),
            "deadline entries"
        );
    }
}
