//! The persistent outbox: which peer still has to ack which message, and the
//! delivery receipts left behind when they do.
//!
//! Two forms (schema version 9). Our own direct message waits for one peer,
//! the other side of its conversation: it is kept in runs of consecutive
//! messages, a burst as one row, waiting and receipt alike
//! (`direct_outbox`), and the message's own row never changes after it is
//! written. Every other queued (message, peer) pair, a room message's, is a
//! row of `outbox`, and its receipt a row of `deliveries`. Every query here
//! reads both forms.

use std::collections::HashSet;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::direct_outbox::{self as direct, runs_of, Run};
use super::messages::{query_messages, MessageInsert, SeqRange, MESSAGE_COLUMNS};
use super::{
    sql_limit, to_array, to_sql_u64, ConversationKey, DbError, IdentityBytes, MessageId, Store,
    StoredMessage,
};

/// The `seq` of our direct message `id` ?1 to the peer whose ref is ?2
/// (`identities.ref`), if there is one: found through the (id, author) index (at most one outgoing row has a
/// given id: the author of every outgoing row is us). The `+`s keep SQLite
/// on that index. Public for the benchmark, like
/// `messages::INSERT_MESSAGE`.
pub const FIND_OWN_DIRECT: &str = "SELECT seq FROM messages \
     WHERE id = ?1 AND +outgoing = 1 AND +conv_ref = ?2";

/// Whether `peer`'s entry for `msg` is a direct one: our own direct
/// message, to the peer of its conversation.
fn is_direct(msg: &StoredMessage, peer: &IdentityBytes) -> bool {
    msg.outgoing && msg.conversation == ConversationKey::Direct(*peer)
}

/// Queues the message stored as `seq` for `peer` in the `outbox` table;
/// returns whether the row is new.
fn queue(conn: &Connection, seq: i64, peer: &IdentityBytes) -> Result<bool, DbError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO outbox (peer, message_seq) VALUES (?1, ?2) \
         ON CONFLICT (peer, message_seq) DO NOTHING",
    )?;
    Ok(stmt.execute(params![&peer[..], seq])? == 1)
}

/// Runs a query returning one identity key per row.
fn query_keys<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> Result<Vec<IdentityBytes>, DbError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, |row| row.get::<_, Vec<u8>>(0))?;
    rows.map(|key| to_array("peer", key?)).collect()
}

impl Store {
    /// Stores a message and queues it for `recipients`, in one transaction, so
    /// a crash leaves either both or neither. Returns `false`, and changes
    /// nothing, if a message with that id is already stored. Also the way to
    /// queue a received public message for relaying on first receipt.
    pub fn insert_outgoing(
        &mut self,
        msg: &StoredMessage,
        recipients: &[IdentityBytes],
    ) -> Result<bool, DbError> {
        let inserted = self.insert_outgoing_batch(&[(msg, recipients)])?;
        Ok(inserted.first().copied().unwrap_or(false))
    }

    /// [`Store::insert_outgoing`] for many messages in ONE transaction (one
    /// fsync): group commit for bursts of outgoing messages. Returns, per
    /// message, whether it was new; a duplicate id changes nothing for that
    /// message. On error nothing at all is stored.
    pub fn insert_outgoing_batch(
        &mut self,
        items: &[(&StoredMessage, &[IdentityBytes])],
    ) -> Result<Vec<bool>, DbError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut refs = self.identities.interner();
        let mut out = Vec::with_capacity(items.len());
        let mut seqs = SeqRange::default();
        // Our direct messages, a run per peer and burst of consecutive seqs.
        let mut waiting: Vec<(IdentityBytes, Run)> = Vec::new();
        let mut sent = Vec::new();
        {
            let mut insert = MessageInsert::new(&tx)?;
            for (msg, recipients) in items {
                let Some(seq) = insert.insert(&mut refs, msg)? else {
                    out.push(false);
                    continue;
                };
                seqs.add(Some(seq));
                for peer in *recipients {
                    if !is_direct(msg, peer) {
                        queue(&tx, seq, peer)?;
                        continue;
                    }
                    sent.push((msg.id, seq, *peer));
                    match waiting.last_mut() {
                        Some((p, run)) if p == peer && *run.end() == seq => {}
                        Some((p, run)) if p == peer && *run.end() + 1 == seq => {
                            *run = *run.start()..=seq;
                        }
                        _ => waiting.push((*peer, seq..=seq)),
                    }
                }
                out.push(true);
            }
        }
        seqs.index(&tx)?;
        for (peer, run) in &waiting {
            direct::add_waiting(&tx, peer, run)?;
        }
        tx.commit()?;
        refs.committed();
        for (id, seq, peer) in sent {
            self.sent_lately.note(id, seq, peer);
        }
        Ok(out)
    }

    /// Queues stored messages for peers, in one transaction. Returns how many
    /// `(message, peer)` entries were new. Fails with
    /// [`DbError::UnknownMessage`] (and queues nothing) if a message is not
    /// stored.
    pub fn outbox_add(&mut self, entries: &[(MessageId, IdentityBytes)]) -> Result<usize, DbError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut added = 0;
        {
            let mut own = tx.prepare_cached(
                "SELECT 1 FROM messages WHERE seq = ?1 AND outgoing = 1 AND conv_ref = ?2",
            )?;
            for (id, peer) in entries {
                let seq = message_seq(&tx, id)?.ok_or(DbError::UnknownMessage { id: *id })?;
                // A peer without a ref has no direct conversation stored.
                let peer_ref = self.identities.find(&tx, peer)?;
                let new = if !own.exists(params![seq, peer_ref])? {
                    queue(&tx, seq, peer)?
                } else if direct::is_waiting(&tx, peer, seq)? {
                    false
                } else {
                    direct::add_waiting(&tx, peer, &(seq..=seq))?;
                    true
                };
                added += usize::from(new);
            }
        }
        tx.commit()?;
        Ok(added)
    }

    /// Messages `peer` has not acked yet, oldest first (author timestamp,
    /// then storage order), at most `limit`.
    pub fn outbox_for_peer(
        &self,
        peer: &IdentityBytes,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, DbError> {
        query_messages(
            &self.conn,
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages AS m \
                 WHERE m.seq IN (SELECT message_seq FROM outbox WHERE peer = ?1 \
                                 UNION ALL \
                                 SELECT d.seq FROM direct_waiting AS w \
                                   JOIN messages AS d \
                                   ON d.seq BETWEEN w.first_seq AND w.last_seq \
                                 WHERE w.peer = ?1) \
                 ORDER BY m.order_ms, m.seq LIMIT ?2"
            ),
            params![&peer[..], sql_limit(limit)],
        )
    }

    /// Records that `peer` acked `ids` at `now_ms`: ends their outbox entries
    /// and keeps delivery receipts (the first ack's time), in one
    /// transaction. Returns the ids whose outbox entry ended, in the order
    /// given; acks for messages that were not waiting for this peer
    /// (unknown, already acked, never queued) change nothing.
    pub fn outbox_ack(
        &mut self,
        peer: &IdentityBytes,
        ids: &[MessageId],
        now_ms: u64,
    ) -> Result<Vec<MessageId>, DbError> {
        enum Entry {
            Direct(i64),
            Room(bool),
        }
        let now = to_sql_u64("now_ms", now_ms)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut entries = Vec::with_capacity(ids.len());
        let mut direct = Vec::new();
        // A peer without a ref has no direct message of ours.
        let peer_ref = self.identities.find(&tx, peer)?;
        {
            let mut find_direct = tx.prepare_cached(FIND_OWN_DIRECT)?;
            let mut delete =
                tx.prepare_cached("DELETE FROM outbox WHERE peer = ?1 AND message_seq = ?2")?;
            let mut receipt = tx.prepare_cached(
                "INSERT INTO deliveries (message_seq, peer, acked_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (message_seq, peer) DO NOTHING",
            )?;
            for id in ids {
                let own = match (self.sent_lately.take(id, peer), peer_ref) {
                    (Some(seq), _) => Some(seq),
                    (None, Some(peer_ref)) => find_direct
                        .query_row(params![&id[..], peer_ref], |row| row.get(0))
                        .optional()?,
                    (None, None) => None,
                };
                if let Some(seq) = own {
                    direct.push(seq);
                    entries.push(Entry::Direct(seq));
                    continue;
                }
                let Some(seq) = message_seq(&tx, id)? else {
                    entries.push(Entry::Room(false));
                    continue;
                };
                let ended = delete.execute(params![&peer[..], seq])? == 1;
                if ended {
                    receipt.execute(params![seq, &peer[..], now])?;
                }
                entries.push(Entry::Room(ended));
            }
        }
        direct.sort_unstable();
        direct.dedup();
        let mut ended = HashSet::with_capacity(direct.len());
        for run in runs_of(&direct) {
            for part in direct::end_waiting(&tx, peer, &run)? {
                direct::add_receipts(&tx, &part, now)?;
                ended.extend(part);
            }
        }
        tx.commit()?;
        // In the order given; an id given twice ended once.
        let removed = ids
            .iter()
            .zip(entries)
            .filter(|(_, entry)| match entry {
                Entry::Direct(seq) => ended.remove(seq),
                Entry::Room(ended) => *ended,
            })
            .map(|(id, _)| *id)
            .collect();
        Ok(removed)
    }

    /// How many peers have not acked this message yet.
    pub fn pending_count(&self, id: &MessageId) -> Result<usize, DbError> {
        Ok(self.pending_peers(id)?.len())
    }

    /// The peers that have not acked this message yet, in key order.
    pub fn pending_peers(&self, id: &MessageId) -> Result<Vec<IdentityBytes>, DbError> {
        let mut peers = query_keys(
            &self.conn,
            "SELECT o.peer FROM outbox AS o JOIN messages AS m ON m.seq = o.message_seq \
             WHERE m.id = ?1",
            [&id[..]],
        )?;
        if let Some((seq, peer)) = own_direct(&self.conn, id)? {
            if direct::is_waiting(&self.conn, &peer, seq)? {
                peers.push(peer);
            }
        }
        peers.sort_unstable();
        Ok(peers)
    }

    /// Every peer with at least one unacked message, in key order.
    pub fn outbox_peers(&self) -> Result<Vec<IdentityBytes>, DbError> {
        query_keys(
            &self.conn,
            "SELECT peer FROM outbox \
             UNION \
             SELECT peer FROM direct_waiting \
             ORDER BY 1",
            [],
        )
    }

    /// The peers that acked this message (after it was queued for them), in
    /// the order their acks arrived. Empty if nobody has acked it yet.
    pub fn delivered_to(&self, id: &MessageId) -> Result<Vec<IdentityBytes>, DbError> {
        let mut acks: Vec<(i64, IdentityBytes)> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT d.acked_ms, d.peer FROM deliveries AS d \
                 JOIN messages AS m ON m.seq = d.message_seq WHERE m.id = ?1",
            )?;
            let rows = stmt.query_map([&id[..]], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
            })?;
            rows.map(|row| {
                let (at, peer) = row?;
                Ok((at, to_array("peer", peer)?))
            })
            .collect::<Result<_, DbError>>()?
        };
        if let Some((seq, peer)) = own_direct(&self.conn, id)? {
            if let Some(at) = direct::receipt_of(&self.conn, seq)? {
                acks.push((at, peer));
            }
        }
        acks.sort_unstable();
        Ok(acks.into_iter().map(|(_, peer)| peer).collect())
    }
}

/// Our own direct message with this id, if there is one: its `seq` and
/// the peer of its conversation.
fn own_direct(conn: &Connection, id: &MessageId) -> Result<Option<(i64, IdentityBytes)>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, (SELECT key FROM identities WHERE ref = conv_ref) FROM messages \
         WHERE id = ?1 AND +outgoing = 1 AND +conv_ref IS NOT NULL",
    )?;
    let row: Option<(i64, Vec<u8>)> = stmt
        .query_row([&id[..]], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    row.map(|(seq, peer)| Ok((seq, to_array("messages.conv_ref's key", peer)?)))
        .transpose()
}

/// The `seq` of the message with this id, if stored; our own first. Acks and
/// the outbox name messages by bare id, and only our own messages are ever
/// queued, so another author's message under the same id is never picked
/// while ours exists.
fn message_seq(conn: &Connection, id: &MessageId) -> Result<Option<i64>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq FROM messages WHERE id = ?1 ORDER BY outgoing DESC, seq LIMIT 1",
    )?;
    Ok(stmt.query_row([&id[..]], |row| row.get(0)).optional()?)
}
