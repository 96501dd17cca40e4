//! Our direct messages stored lately, by id, so that their acks need not
//! look them up.
//!
//! An ack names its messages by id; finding each one's `seq` through the
//! `(id, author)` index (`FIND_OWN_DIRECT`) was a ninth of the sending
//! node's thread in the chat benchmark, where every message is acked a
//! few milliseconds after it was stored. Here the store remembers the
//! `seq` and peer of the direct messages it stored lately, and an ack
//! takes them from memory; anything not remembered is looked up as
//! before.
//!
//! Sound because what it remembers cannot change: an entry is added only
//! after the transaction that stored its message committed, a stored
//! message's row is never rewritten, and natter never deletes one (it
//! holds the data directory's lock, so no other natter writes the file
//! while this store is open). An entry answers only for the peer the
//! message went to; for any other peer the index decides, as before.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::{IdentityBytes, MessageId};

/// Hashes a message id by its last eight bytes, random ones we drew
/// ([`natter_core::chat::message_id_at`]): the ids in the map are only
/// ever ours, so a peer cannot choose them to collide, and a look-up of
/// an id it made up only probes. SipHash over all 16 bytes made the map
/// cost half of what it saved.
#[derive(Default)]
struct OurIdHasher(u64);

impl Hasher for OurIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // The array's bytes, after its length (written as a usize).
        let mut tail = [0u8; 8];
        let n = bytes.len().min(8);
        tail[..n].copy_from_slice(&bytes[bytes.len() - n..]);
        self.0 ^= u64::from_le_bytes(tail);
    }
}

/// The most messages remembered (about 64 bytes each, so about 1 MiB):
/// the several bursts a fast peer has in flight at once (the node thread
/// stores at most 1,024 posts per burst).
pub const SENT_LATELY: usize = 16_384;

/// Our direct messages stored lately: id → (`seq`, peer).
#[derive(Debug, Default)]
pub(super) struct SentLately {
    by_id: HashMap<MessageId, (i64, IdentityBytes), BuildHasherDefault<OurIdHasher>>,
}

impl SentLately {
    /// Remembers that our direct message `id` to `peer` is stored as
    /// `seq` (in a committed transaction). When full, the older half
    /// (by `seq`) is forgotten: acks come for recent messages. Each entry
    /// is another message, so another `seq`: at most half of the map is
    /// newer than the newest less `SENT_LATELY / 2`.
    pub(super) fn note(&mut self, id: MessageId, seq: i64, peer: IdentityBytes) {
        if self.by_id.len() >= SENT_LATELY {
            let newest = self.by_id.values().map(|(s, _)| *s).fold(seq, i64::max);
            let keep_from = newest.saturating_sub(i64::try_from(SENT_LATELY / 2).unwrap_or(0));
            self.by_id.retain(|_, (s, _)| *s > keep_from);
        }
        self.by_id.insert(id, (seq, peer));
    }

    /// The `seq` of our direct message `id` to `peer`, forgotten as it is
    /// given (its ack ends its wait); `None` if not remembered, or if it
    /// went to another peer.
    pub(super) fn take(&mut self, id: &MessageId, peer: &IdentityBytes) -> Option<i64> {
        match self.by_id.entry(*id) {
            Entry::Occupied(entry) if entry.get().1 == *peer => Some(entry.remove().0),
            _ => None,
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> MessageId {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&n.to_be_bytes());
        id
    }

    #[test]
    fn an_entry_answers_once_and_only_for_its_peer() {
        let mut sent = SentLately::default();
        sent.note(id(1), 7, [2; 32]);
        assert_eq!(sent.take(&id(1), &[3; 32]), None, "another peer's ack");
        assert_eq!(sent.take(&id(1), &[2; 32]), Some(7));
        assert_eq!(sent.take(&id(1), &[2; 32]), None, "taken by the first ack");
        assert_eq!(sent.take(&id(9), &[2; 32]), None, "never stored");
    }

    #[test]
    fn when_full_the_older_half_is_forgotten() {
        let mut sent = SentLately::default();
        let total = u32::try_from(SENT_LATELY).unwrap();
        for n in 1..=total + 1 {
            sent.note(id(n), i64::from(n), [2; 32]);
            assert!(sent.len() <= SENT_LATELY);
        }
        assert!(sent.len() <= SENT_LATELY / 2 + 1, "{}", sent.len());
        assert_eq!(sent.take(&id(1), &[2; 32]), None, "the oldest went");
        let newest = total + 1;
        assert_eq!(sent.take(&id(newest), &[2; 32]), Some(i64::from(newest)));
        assert_eq!(sent.take(&id(total), &[2; 32]), Some(i64::from(total)));
    }
}
