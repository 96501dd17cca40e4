//! The persistent outbox: which peer still has to ack which message, and the
//! delivery receipts left behind when they do.
//!
//! Two forms (schema version 7). Our own direct message is waiting for one
//! peer, the other side of its conversation: its own row says so
//! (`messages.awaiting_ack`, and `messages.acked_ms` once acked), so
//! sending it is one insert and its ack one update. Every other queued
//! (message, peer) pair, a room message's, is a row of `outbox`, and its
//! receipt a row of `deliveries`. Every query here reads both forms.

use rusqlite::{params, Connection, TransactionBehavior};

use super::messages::{query_messages, MessageInsert, SeqRange, MESSAGE_COLUMNS};
use super::{
    from_sql_i64, sql_limit, to_array, to_sql_u64, ConversationKey, DbError, IdentityBytes,
    MessageId, Store, StoredMessage,
};

/// The ack of our direct message `id` ?1 by `peer` ?2 at ?3 ms: one
/// update through the (id, author) index. At most one outgoing row has a
/// given id (the author of every outgoing row is us). The `+`s keep SQLite
/// from walking the peer's waiting rows instead (a partial index that also
/// matches, and is as long as the outbox). Public for the benchmark, like
/// `messages::INSERT_MESSAGE`.
pub const ACK_OWN_ROW: &str =
    "UPDATE messages SET awaiting_ack = 0, acked_ms = coalesce(acked_ms, ?3) \
     WHERE id = ?1 AND +outgoing = 1 AND +awaiting_ack = 1 AND +conv_peer = ?2";

/// Whether `peer`'s entry for `msg` is kept in the message's own row: our
/// own direct message, to the peer of its conversation.
fn in_own_row(msg: &StoredMessage, peer: &IdentityBytes) -> bool {
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
        let mut out = Vec::with_capacity(items.len());
        let mut seqs = SeqRange::default();
        {
            let mut insert = MessageInsert::new(&tx)?;
            for (msg, recipients) in items {
                let awaiting = recipients.iter().any(|p| in_own_row(msg, p));
                let Some(seq) = insert.insert(msg, awaiting)? else {
                    out.push(false);
                    continue;
                };
                seqs.add(Some(seq));
                for peer in recipients.iter().filter(|p| !in_own_row(msg, p)) {
                    queue(&tx, seq, peer)?;
                }
                out.push(true);
            }
        }
        seqs.index(&tx)?;
        tx.commit()?;
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
            let mut own_row = tx.prepare_cached(
                "SELECT awaiting_ack FROM messages \
                 WHERE seq = ?1 AND outgoing = 1 AND conv_peer = ?2",
            )?;
            let mut wait =
                tx.prepare_cached("UPDATE messages SET awaiting_ack = 1 WHERE seq = ?1")?;
            for (id, peer) in entries {
                let seq = message_seq(&tx, id)?.ok_or(DbError::UnknownMessage { id: *id })?;
                let awaiting: Option<bool> = {
                    use rusqlite::OptionalExtension;
                    own_row
                        .query_row(params![seq, &peer[..]], |row| row.get(0))
                        .optional()?
                };
                let new = match awaiting {
                    Some(true) => false,
                    Some(false) => wait.execute([seq])? == 1,
                    None => queue(&tx, seq, peer)?,
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
                                 SELECT seq FROM messages WHERE awaiting_ack = 1 AND conv_peer = ?1) \
                 ORDER BY m.order_ms, m.seq LIMIT ?2"
            ),
            params![&peer[..], sql_limit(limit)],
        )
    }

    /// Records that `peer` acked `ids` at `now_ms`: ends their outbox entries
    /// and keeps delivery receipts (the first ack's time), in one
    /// transaction. Returns the ids whose outbox entry ended; acks for
    /// messages that were not waiting for this peer (unknown, already acked,
    /// never queued) change nothing.
    pub fn outbox_ack(
        &mut self,
        peer: &IdentityBytes,
        ids: &[MessageId],
        now_ms: u64,
    ) -> Result<Vec<MessageId>, DbError> {
        let now = to_sql_u64("now_ms", now_ms)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut removed = Vec::new();
        {
            let mut own_row = tx.prepare_cached(ACK_OWN_ROW)?;
            let mut delete =
                tx.prepare_cached("DELETE FROM outbox WHERE peer = ?1 AND message_seq = ?2")?;
            let mut receipt = tx.prepare_cached(
                "INSERT INTO deliveries (message_seq, peer, acked_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (message_seq, peer) DO NOTHING",
            )?;
            for id in ids {
                if own_row.execute(params![&id[..], &peer[..], now])? == 1 {
                    removed.push(*id);
                    continue;
                }
                let Some(seq) = message_seq(&tx, id)? else {
                    continue;
                };
                if delete.execute(params![&peer[..], seq])? == 1 {
                    receipt.execute(params![seq, &peer[..], now])?;
                    removed.push(*id);
                }
            }
        }
        tx.commit()?;
        Ok(removed)
    }

    /// How many peers have not acked this message yet.
    pub fn pending_count(&self, id: &MessageId) -> Result<usize, DbError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT (SELECT count(*) FROM outbox AS o JOIN messages AS m \
                     ON m.seq = o.message_seq WHERE m.id = ?1) \
                  + (SELECT count(*) FROM messages WHERE id = ?1 AND awaiting_ack = 1)",
        )?;
        let n: i64 = stmt.query_row([&id[..]], |row| row.get(0))?;
        let n = from_sql_i64("count", n)?;
        usize::try_from(n).map_err(|_| DbError::InvalidData(format!("count {n}")))
    }

    /// The peers that have not acked this message yet, in key order.
    pub fn pending_peers(&self, id: &MessageId) -> Result<Vec<IdentityBytes>, DbError> {
        query_keys(
            &self.conn,
            "SELECT o.peer FROM outbox AS o JOIN messages AS m ON m.seq = o.message_seq \
             WHERE m.id = ?1 \
             UNION ALL \
             SELECT conv_peer FROM messages WHERE id = ?1 AND awaiting_ack = 1 \
             ORDER BY 1",
            [&id[..]],
        )
    }

    /// Every peer with at least one unacked message, in key order.
    pub fn outbox_peers(&self) -> Result<Vec<IdentityBytes>, DbError> {
        query_keys(
            &self.conn,
            "SELECT peer FROM outbox \
             UNION \
             SELECT conv_peer FROM messages WHERE awaiting_ack = 1 \
             ORDER BY 1",
            [],
        )
    }

    /// The peers that acked this message (after it was queued for them), in
    /// the order their acks arrived. Empty if nobody has acked it yet.
    pub fn delivered_to(&self, id: &MessageId) -> Result<Vec<IdentityBytes>, DbError> {
        query_keys(
            &self.conn,
            "SELECT peer FROM ( \
               SELECT d.peer AS peer, d.acked_ms AS at FROM deliveries AS d \
                 JOIN messages AS m ON m.seq = d.message_seq WHERE m.id = ?1 \
               UNION ALL \
               SELECT conv_peer, acked_ms FROM messages WHERE id = ?1 AND acked_ms IS NOT NULL) \
             ORDER BY at, peer",
            [&id[..]],
        )
    }
}

/// The `seq` of the message with this id, if stored; our own first. Acks and
/// the outbox name messages by bare id, and only our own messages are ever
/// queued, so another author's message under the same id is never picked
/// while ours exists.
fn message_seq(conn: &Connection, id: &MessageId) -> Result<Option<i64>, DbError> {
    use rusqlite::OptionalExtension;
    let mut stmt = conn.prepare_cached(
        "SELECT seq FROM messages WHERE id = ?1 ORDER BY outgoing DESC, seq LIMIT 1",
    )?;
    Ok(stmt.query_row([&id[..]], |row| row.get(0)).optional()?)
}
