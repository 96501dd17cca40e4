//! [`ChatStore`] in memory: what the simulator, the fuzz targets and unit
//! tests run on. It follows the SQLite store's rules (ordering, duplicates,
//! range checks); a test in the application compares the two on the same
//! operations. Search matches whole words, case-insensitively, where SQLite's
//! FTS5 also folds diacritics.

use super::store::{
    order_ms, peer_rank, ChatStore, ConversationKey, IdentityBytes, NoiseStaticKey, PeerRecord,
    RoomBytes, StoreError, StoredMessage, TrustLevel, MAX_STORED_INT,
};
use crate::wire::MessageId;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A [`ChatStore`] that keeps everything in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    /// In storage order; the index is the storage sequence.
    messages: Vec<StoredMessage>,
    /// (author, id) → index in `messages`.
    by_key: HashMap<(IdentityBytes, MessageId), usize>,
    /// id → indexes of every author's message with it, in storage order:
    /// what acks name.
    by_id: HashMap<MessageId, Vec<usize>>,
    /// (peer, index in `messages`): rows awaiting an ack.
    outbox: BTreeSet<(IdentityBytes, usize)>,
    /// (index in `messages`, peer, when): delivery receipts, in ack order.
    deliveries: Vec<(usize, IdentityBytes, u64)>,
    peers: BTreeMap<IdentityBytes, PeerRecord>,
    meta: BTreeMap<String, String>,
    /// Tests only: `get_messages` leaves its last answer out, as a broken
    /// store might.
    #[cfg(test)]
    pub(crate) answers_short: bool,
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn check(m: &StoredMessage) -> Result<(), StoreError> {
        for (field, value) in [
            ("timestamp_ms", m.timestamp_ms),
            ("received_ms", m.received_ms),
        ] {
            if value > MAX_STORED_INT {
                return Err(StoreError::OutOfRange { field, value });
            }
        }
        Ok(())
    }

    fn push(&mut self, m: &StoredMessage) {
        self.by_key.insert((m.author, m.id), self.messages.len());
        self.by_id
            .entry(m.id)
            .or_default()
            .push(self.messages.len());
        self.messages.push(m.clone());
    }

    fn contains(&self, m: &StoredMessage) -> bool {
        self.by_key.contains_key(&(m.author, m.id))
    }

    /// Our own message with this id, else the first stored: what acks name
    /// (as the SQLite store's `message_seq`).
    fn index_of_id(&self, id: &MessageId) -> Option<usize> {
        let held = self.by_id.get(id)?;
        held.iter()
            .copied()
            .find(|&i| self.messages[i].outgoing)
            .or_else(|| held.first().copied())
    }

    /// Messages matching `keep`, by (author timestamp, storage order).
    fn chronological(&self, keep: impl Fn(&StoredMessage) -> bool) -> Vec<&StoredMessage> {
        let mut v: Vec<(usize, &StoredMessage)> = self
            .messages
            .iter()
            .enumerate()
            .filter(|(_, m)| keep(m))
            .collect();
        v.sort_by_key(|(seq, m)| (order_ms(m), *seq));
        v.into_iter().map(|(_, m)| m).collect()
    }
}

/// Lowercased runs of letters and digits: the words search compares.
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl ChatStore for MemoryStore {
    fn insert_messages(&mut self, msgs: &[StoredMessage]) -> Result<Vec<bool>, StoreError> {
        msgs.iter().try_for_each(Self::check)?;
        let mut out = Vec::with_capacity(msgs.len());
        for m in msgs {
            let new = !self.contains(m);
            if new {
                self.push(m);
            }
            out.push(new);
        }
        Ok(out)
    }

    fn has_message(&self, author: &IdentityBytes, id: &MessageId) -> Result<bool, StoreError> {
        Ok(self.by_key.contains_key(&(*author, *id)))
    }

    fn get_message(
        &self,
        author: &IdentityBytes,
        id: &MessageId,
    ) -> Result<Option<StoredMessage>, StoreError> {
        Ok(self
            .by_key
            .get(&(*author, *id))
            .map(|&i| self.messages[i].clone()))
    }

    #[cfg(test)]
    fn get_messages(
        &self,
        keys: &[(IdentityBytes, MessageId)],
    ) -> Result<Vec<Option<StoredMessage>>, StoreError> {
        let mut answers = keys
            .iter()
            .map(|(author, id)| self.get_message(author, id))
            .collect::<Result<Vec<_>, _>>()?;
        if self.answers_short {
            answers.pop();
        }
        Ok(answers)
    }

    fn outgoing_by_id_tag(
        &self,
        tag: &[u8],
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut v: Vec<StoredMessage> = self
            .messages
            .iter()
            .filter(|m| m.outgoing && m.id[crate::chat::ID_CLOCK_BYTES..].starts_with(tag))
            .cloned()
            .collect();
        v.sort_by_key(|m| m.id);
        v.truncate(limit);
        Ok(v)
    }

    fn room_controls(&self) -> Result<Vec<StoredMessage>, StoreError> {
        Ok(self
            .messages
            .iter()
            .filter(|m| matches!(m.conversation, ConversationKey::RoomControl(_)))
            .cloned()
            .collect())
    }

    fn message_count(&self) -> Result<u64, StoreError> {
        Ok(self.messages.len() as u64)
    }

    fn history(
        &self,
        conv: &ConversationKey,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let all = match conv.room() {
            Some(room) => self.chronological(|m| m.conversation.room() == Some(room)),
            None => self.chronological(|m| m.conversation == *conv),
        };
        let skip = all.len().saturating_sub(limit);
        Ok(all.into_iter().skip(skip).cloned().collect())
    }

    fn search(
        &self,
        query: &str,
        room: Option<&RoomBytes>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let wanted = words(query);
        if wanted.is_empty() {
            return Err(StoreError::EmptyQuery);
        }
        Ok(self
            .messages
            .iter()
            .rev()
            .filter(|m| room.is_none_or(|r| m.conversation.room() == Some(*r)))
            .filter(|m| {
                let have = words(&m.text);
                wanted.iter().all(|w| have.contains(w))
            })
            .take(limit)
            .cloned()
            .collect())
    }

    fn public_since(
        &self,
        since_ms: u64,
        until_ms: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        Ok(self
            .chronological(|m| {
                m.conversation.is_relayable()
                    && m.signature.is_some()
                    && order_ms(m) >= since_ms
                    && m.timestamp_ms <= until_ms
            })
            .into_iter()
            .take(limit)
            .cloned()
            .collect())
    }

    fn newest_public_timestamp(&self, at_most_ms: u64) -> Result<Option<u64>, StoreError> {
        Ok(self
            .messages
            .iter()
            .map(|m| (m, order_ms(m)))
            .filter(|(m, t)| m.conversation.room().is_some() && *t <= at_most_ms)
            .map(|(_, t)| t)
            .max())
    }

    fn insert_outgoing_batch(
        &mut self,
        items: &[(&StoredMessage, &[IdentityBytes])],
    ) -> Result<Vec<bool>, StoreError> {
        items.iter().try_for_each(|(m, _)| Self::check(m))?;
        let mut out = Vec::with_capacity(items.len());
        for (m, recipients) in items {
            let new = !self.contains(m);
            if new {
                let index = self.messages.len();
                self.push(m);
                for r in *recipients {
                    self.outbox.insert((*r, index));
                }
            }
            out.push(new);
        }
        Ok(out)
    }

    fn outbox_add(&mut self, entries: &[(MessageId, IdentityBytes)]) -> Result<usize, StoreError> {
        let indexes = entries
            .iter()
            .map(|(id, peer)| {
                let index = self
                    .index_of_id(id)
                    .ok_or(StoreError::UnknownMessage { id: *id })?;
                Ok((*peer, index))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(indexes
            .into_iter()
            .filter(|entry| self.outbox.insert(*entry))
            .count())
    }

    fn outbox_for_peer(
        &self,
        peer: &IdentityBytes,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut rows: Vec<(u64, usize)> = self
            .outbox
            .range((*peer, 0)..=(*peer, usize::MAX))
            .map(|&(_, i)| (order_ms(&self.messages[i]), i))
            .collect();
        rows.sort_unstable();
        Ok(rows
            .into_iter()
            .take(limit)
            .map(|(_, i)| self.messages[i].clone())
            .collect())
    }

    fn outbox_ack(
        &mut self,
        peer: &IdentityBytes,
        ids: &[MessageId],
        now_ms: u64,
    ) -> Result<Vec<MessageId>, StoreError> {
        let mut removed = Vec::new();
        for id in ids {
            let Some(index) = self.index_of_id(id) else {
                continue;
            };
            if self.outbox.remove(&(*peer, index)) {
                self.deliveries.push((index, *peer, now_ms));
                removed.push(*id);
            }
        }
        Ok(removed)
    }

    fn outbox_recipients(
        &self,
        seen_since_ms: u64,
        limit: usize,
    ) -> Result<Vec<IdentityBytes>, StoreError> {
        let mut v: Vec<&PeerRecord> = self
            .peers
            .values()
            .filter(|p| p.last_seen_ms >= seen_since_ms)
            .collect();
        v.sort_by(|a, b| {
            peer_rank(b)
                .cmp(&peer_rank(a))
                .then(a.identity.cmp(&b.identity))
        });
        Ok(v.into_iter().take(limit).map(|p| p.identity).collect())
    }

    fn expire_outbox(&mut self, unseen_since_ms: u64) -> Result<usize, StoreError> {
        let one_off: BTreeSet<IdentityBytes> = self
            .peers
            .values()
            .filter(|p| {
                let (verified, long_known, _) = peer_rank(p);
                !verified && !long_known && p.last_seen_ms < unseen_since_ms
            })
            .map(|p| p.identity)
            .collect();
        let before = self.outbox.len();
        self.outbox.retain(|(peer, _)| !one_off.contains(peer));
        Ok(before - self.outbox.len())
    }

    fn prune_peers(
        &mut self,
        unseen_since_ms: u64,
        keep_unverified: usize,
    ) -> Result<Vec<IdentityBytes>, StoreError> {
        let unverified: Vec<&PeerRecord> = self
            .peers
            .values()
            .filter(|p| p.trust == TrustLevel::Unverified)
            .collect();
        // Unseen ones go whatever their rank; the rest are kept best
        // ranked first, as the SQLite store orders them.
        let (stale, mut unverified): (Vec<&PeerRecord>, Vec<&PeerRecord>) = unverified
            .into_iter()
            .partition(|p| p.last_seen_ms < unseen_since_ms);
        unverified.sort_by(|a, b| {
            peer_rank(b)
                .cmp(&peer_rank(a))
                .then(a.identity.cmp(&b.identity))
        });
        let gone: Vec<IdentityBytes> = stale
            .iter()
            .chain(unverified.iter().skip(keep_unverified))
            .map(|p| p.identity)
            .collect();
        for id in &gone {
            self.peers.remove(id);
        }
        self.outbox.retain(|(peer, _)| !gone.contains(peer));
        let mut sorted = gone;
        sorted.sort_unstable();
        Ok(sorted)
    }

    fn pending_peers(&self, id: &MessageId) -> Result<Vec<IdentityBytes>, StoreError> {
        Ok(self
            .outbox
            .iter()
            .filter(|&&(_, i)| self.messages[i].id == *id)
            .map(|(p, _)| *p)
            .collect())
    }

    fn outbox_peers(&self) -> Result<Vec<IdentityBytes>, StoreError> {
        let set: BTreeSet<IdentityBytes> = self.outbox.iter().map(|(p, _)| *p).collect();
        Ok(set.into_iter().collect())
    }

    fn delivered_to(&self, id: &MessageId) -> Result<Vec<IdentityBytes>, StoreError> {
        let mut v: Vec<(u64, IdentityBytes)> = self
            .deliveries
            .iter()
            .filter(|&&(i, _, _)| self.messages[i].id == *id)
            .map(|&(_, peer, at)| (at, peer))
            .collect();
        v.sort_unstable();
        Ok(v.into_iter().map(|(_, peer)| peer).collect())
    }

    fn upsert_peer_seen(
        &mut self,
        identity: &IdentityBytes,
        noise_static: &NoiseStaticKey,
        nickname: &str,
        now_ms: u64,
        addr: Option<&str>,
    ) -> Result<bool, StoreError> {
        if now_ms > MAX_STORED_INT {
            return Err(StoreError::OutOfRange {
                field: "now_ms",
                value: now_ms,
            });
        }
        let new = !self.peers.contains_key(identity);
        let rec = self.peers.entry(*identity).or_insert_with(|| PeerRecord {
            identity: *identity,
            noise_static: *noise_static,
            nickname: nickname.to_string(),
            first_seen_ms: now_ms,
            last_seen_ms: now_ms,
            last_addr: None,
            trust: TrustLevel::Unverified,
            verified_ms: None,
        });
        rec.noise_static = *noise_static;
        rec.nickname = nickname.to_string();
        rec.last_seen_ms = now_ms;
        if let Some(a) = addr {
            rec.last_addr = Some(a.to_string());
        }
        Ok(new)
    }

    fn get_peer(&self, identity: &IdentityBytes) -> Result<Option<PeerRecord>, StoreError> {
        Ok(self.peers.get(identity).cloned())
    }

    fn peers(&self) -> Result<Vec<PeerRecord>, StoreError> {
        let mut v: Vec<PeerRecord> = self.peers.values().cloned().collect();
        v.sort_by(|a, b| {
            (a.nickname.to_ascii_lowercase(), a.identity)
                .cmp(&(b.nickname.to_ascii_lowercase(), b.identity))
        });
        Ok(v)
    }

    fn set_trust(
        &mut self,
        identity: &IdentityBytes,
        trust: TrustLevel,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let rec = self
            .peers
            .get_mut(identity)
            .ok_or(StoreError::UnknownPeer {
                identity: *identity,
            })?;
        rec.trust = trust;
        rec.verified_ms = (trust == TrustLevel::Verified).then_some(now_ms);
        Ok(())
    }

    fn known_addrs(&self) -> Result<Vec<(IdentityBytes, String)>, StoreError> {
        let mut v: Vec<&PeerRecord> = self
            .peers
            .values()
            .filter(|p| p.last_addr.is_some())
            .collect();
        v.sort_by(|a, b| {
            peer_rank(b)
                .cmp(&peer_rank(a))
                .then(a.identity.cmp(&b.identity))
        });
        Ok(v.into_iter()
            .filter_map(|p| p.last_addr.clone().map(|a| (p.identity, a)))
            .collect())
    }

    fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.meta.get(key).cloned())
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.meta.insert(key.to_string(), value.to_string());
        Ok(())
    }
}
