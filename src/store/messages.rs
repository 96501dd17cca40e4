//! Messages: insert with duplicate dropping, history, full-text search and
//! public catch-up.

use rusqlite::{params, CachedStatement, Connection, OptionalExtension, Row, TransactionBehavior};

use natter_core::chat::store::order_ms;

use super::identities::Interner;
use super::{
    from_sql_i64, sql_limit, to_array, to_sql_u64, ConversationKey, DbError, IdentityBytes,
    MessageId, Store, StoredMessage,
};

/// The columns [`RawMessage::from_row`] reads, from a table aliased `m`:
/// the two identity keys read through their refs (schema version 10).
pub(super) const MESSAGE_COLUMNS: &str = "m.id, \
     (SELECT key FROM identities WHERE ref = m.conv_ref), \
     (SELECT key FROM identities WHERE ref = m.author_ref), m.timestamp_ms, m.text, \
     m.signature, m.outgoing, m.received_ms, m.room, m.legacy, m.wire, m.conv_ref";

/// A message row as SQLite hands it over, before its invariants are checked.
pub(super) struct RawMessage {
    id: Vec<u8>,
    conv_peer: Option<Vec<u8>>,
    author: Vec<u8>,
    timestamp_ms: i64,
    text: String,
    signature: Option<Vec<u8>>,
    outgoing: i64,
    received_ms: i64,
    room: Option<Vec<u8>>,
    legacy: i64,
    wire: Option<Vec<u8>>,
    conv_ref: Option<i64>,
}

impl RawMessage {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<RawMessage> {
        Ok(RawMessage {
            id: row.get(0)?,
            conv_peer: row.get(1)?,
            author: row.get(2)?,
            timestamp_ms: row.get(3)?,
            text: row.get(4)?,
            signature: row.get(5)?,
            outgoing: row.get(6)?,
            received_ms: row.get(7)?,
            room: row.get(8)?,
            legacy: row.get(9)?,
            wire: row.get(10)?,
            conv_ref: row.get(11)?,
        })
    }
}

impl TryFrom<RawMessage> for StoredMessage {
    type Error = DbError;

    fn try_from(raw: RawMessage) -> Result<Self, DbError> {
        // The foreign key keeps this from happening unless the file was
        // edited with foreign keys off; read as public, it would be wrong.
        if raw.conv_ref.is_some() && raw.conv_peer.is_none() {
            return Err(DbError::InvalidData(
                "messages.conv_ref names no identity".into(),
            ));
        }
        Ok(StoredMessage {
            id: to_array("messages.id", raw.id)?,
            conversation: match (raw.conv_peer, raw.room, raw.legacy) {
                (Some(peer), _, _) => {
                    ConversationKey::Direct(to_array("messages.conv_peer", peer)?)
                }
                (None, Some(room), 2) => {
                    ConversationKey::RoomControl(to_array("messages.room", room)?)
                }
                (None, _, 1) | (None, None, _) => ConversationKey::Public,
                (None, Some(room), _) => ConversationKey::Room(to_array("messages.room", room)?),
            },
            author: to_array("messages.author", raw.author)?,
            timestamp_ms: from_sql_i64("messages.timestamp_ms", raw.timestamp_ms)?,
            text: raw.text,
            signature: raw
                .signature
                .map(|s| to_array("messages.signature", s))
                .transpose()?,
            outgoing: match raw.outgoing {
                0 => false,
                1 => true,
                other => {
                    return Err(DbError::InvalidData(format!(
                        "messages.outgoing is {other}"
                    )))
                }
            },
            received_ms: from_sql_i64("messages.received_ms", raw.received_ms)?,
            wire: raw.wire,
        })
    }
}

/// The peer of a direct conversation, whose ref is the `conv_ref` column;
/// `None` for the others.
pub(super) fn conv_peer(conv: &ConversationKey) -> Option<&IdentityBytes> {
    match conv {
        ConversationKey::Public | ConversationKey::Room(_) | ConversationKey::RoomControl(_) => {
            None
        }
        ConversationKey::Direct(peer) => Some(peer),
    }
}

/// The `room` column: the room of a room message or log entry.
fn room_column(conv: &ConversationKey) -> Option<Vec<u8>> {
    match conv {
        ConversationKey::RoomControl(r) => Some(r.to_vec()),
        other => other.room().map(|r| r.to_vec()),
    }
}

/// The `legacy` column: 1 an old `Public` frame, 2 a membership log entry,
/// 0 anything else.
fn form(conv: &ConversationKey) -> i64 {
    match conv {
        ConversationKey::Public => 1,
        ConversationKey::RoomControl(_) => 2,
        _ => 0,
    }
}

/// Runs a query whose rows are [`MESSAGE_COLUMNS`] and converts every row.
pub(super) fn query_messages<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> Result<Vec<StoredMessage>, DbError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, RawMessage::from_row)?;
    rows.map(|raw| StoredMessage::try_from(raw?)).collect()
}

/// Inserts one message unless its id is already stored. Returns its `seq`
/// when it was new.
/// The `seq`s inserted by one transaction, to add to the full-text index
/// with one statement (see schema_v2.sql for why not a trigger).
#[derive(Default)]
pub(super) struct SeqRange(Option<(i64, i64)>);

impl SeqRange {
    pub(super) fn add(&mut self, seq: Option<i64>) {
        if let Some(s) = seq {
            self.0 = Some(match self.0 {
                Some((lo, hi)) => (lo.min(s), hi.max(s)),
                None => (s, s),
            });
        }
    }

    /// Index the rows inserted in this transaction. Only this transaction
    /// writes (the store holds the database lock), so every row in the range
    /// is one of ours.
    pub(super) fn index(&self, conn: &Connection) -> Result<(), DbError> {
        if let Some((lo, hi)) = self.0 {
            let mut stmt = conn.prepare_cached(INDEX_INSERTED)?;
            stmt.execute([lo, hi])?;
        }
        Ok(())
    }
}

/// The statement that reads one message by its (author's ref, id), ?1 and
/// ?2: what [`Store::get_message`] and [`Store::get_messages`] run.
fn by_key_statement(conn: &Connection) -> Result<CachedStatement<'_>, DbError> {
    Ok(conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages AS m WHERE m.id = ?2 AND m.author_ref = ?1"
    ))?)
}

/// The message with this id by the author whose ref is `author`, by
/// [`by_key_statement`]; an author without a ref has no messages.
fn read_by_key(
    stmt: &mut CachedStatement<'_>,
    author: Option<i64>,
    id: &MessageId,
) -> Result<Option<StoredMessage>, DbError> {
    let Some(author) = author else {
        return Ok(None);
    };
    let raw = stmt
        .query_row(params![author, &id[..]], RawMessage::from_row)
        .optional()?;
    raw.map(StoredMessage::try_from).transpose()
}

/// Inserts one message: `id`, `conv_ref`, `author_ref`, `timestamp_ms`,
/// `text`, `signature`, `outgoing`, `received_ms`, `order_ms`, `room`,
/// `legacy`, `wire` as ?1 to ?12 (the refs are rows of `identities`).
/// Public (with [`INDEX_INSERTED`] and the direct outbox's statements in
/// `outbox`) so that the benchmark of natter's rows on plain SQLite runs
/// these very statements.
pub const INSERT_MESSAGE: &str = "INSERT INTO messages \
     (id, conv_ref, author_ref, timestamp_ms, text, signature, outgoing, received_ms, \
      order_ms, room, legacy, wire) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
     ON CONFLICT (id, author_ref) DO NOTHING";

/// Adds the full-text entries of the messages stored as `seq` ?1 to ?2
/// (one transaction's inserts, [`SeqRange::index`]).
pub const INDEX_INSERTED: &str = "INSERT INTO messages_fts (rowid, text) \
     SELECT seq, text FROM messages WHERE seq BETWEEN ?1 AND ?2";

/// The statement that inserts one message, prepared once per transaction:
/// a batch of a thousand messages looks the cached statement up once, not
/// a thousand times (rusqlite hashes the SQL text at every look-up).
pub(super) struct MessageInsert<'c> {
    conn: &'c Connection,
    stmt: rusqlite::CachedStatement<'c>,
}

impl<'c> MessageInsert<'c> {
    pub(super) fn new(conn: &'c Connection) -> Result<Self, DbError> {
        let stmt = conn.prepare_cached(INSERT_MESSAGE)?;
        Ok(MessageInsert { conn, stmt })
    }

    /// Inserts one message, returning its `seq`, or `None` if that
    /// author's message with that id is stored. The full-text entry is
    /// added per batch ([`SeqRange::index`]); the keys' refs come from
    /// `refs`, the transaction's interner.
    pub(super) fn insert(
        &mut self,
        refs: &mut Interner<'_>,
        msg: &StoredMessage,
    ) -> Result<Option<i64>, DbError> {
        let conv_ref = conv_peer(&msg.conversation)
            .map(|peer| refs.intern(self.conn, peer))
            .transpose()?;
        let author_ref = refs.intern(self.conn, &msg.author)?;
        let inserted = self.stmt.execute(params![
            &msg.id[..],
            conv_ref,
            author_ref,
            to_sql_u64("timestamp_ms", msg.timestamp_ms)?,
            msg.text,
            msg.signature.as_ref().map(|s| &s[..]),
            msg.outgoing,
            to_sql_u64("received_ms", msg.received_ms)?,
            to_sql_u64("order_ms", order_ms(msg))?,
            room_column(&msg.conversation),
            form(&msg.conversation),
            msg.wire,
        ])?;
        Ok((inserted == 1).then(|| self.conn.last_insert_rowid()))
    }
}

/// Turns arbitrary user input into an FTS5 query that matches rows holding
/// every word.
///
/// The input is split on whitespace and control characters (FTS5 would read
/// a NUL as the end of the query); each word becomes an FTS5 string (in
/// double quotes, inner `"` doubled), so nothing the user types is FTS5
/// syntax: `NEAR(`, `*`, `-`, `^`, `:`, `AND`/`OR`/`NOT` are all just text.
/// Inside a string the tokenizer splits again on punctuation, so `foo-bar`
/// looks for the phrase `foo bar`. Words without a letter or digit are
/// dropped, and if nothing is left the query is [`DbError::EmptyQuery`].
pub(super) fn fts_query(input: &str) -> Result<String, DbError> {
    let mut query = String::new();
    let separator = |c: char| c.is_whitespace() || c.is_control();
    for word in input.split(separator) {
        if !word.chars().any(char::is_alphanumeric) {
            continue;
        }
        if !query.is_empty() {
            query.push(' ');
        }
        query.push('"');
        query.push_str(&word.replace('"', "\"\""));
        query.push('"');
    }
    if query.is_empty() {
        Err(DbError::EmptyQuery)
    } else {
        Ok(query)
    }
}

impl Store {
    /// Stores received or sent messages in one transaction. Returns, for each
    /// input, `true` if it was new and `false` if a message with that author
    /// and id was already stored (then the stored one is kept unchanged). Duplicates
    /// within `msgs` count as duplicates too.
    pub fn insert_messages(&mut self, msgs: &[StoredMessage]) -> Result<Vec<bool>, DbError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut refs = self.identities.interner();
        let mut new = Vec::with_capacity(msgs.len());
        let mut seqs = SeqRange::default();
        {
            let mut insert = MessageInsert::new(&tx)?;
            for msg in msgs {
                let seq = insert.insert(&mut refs, msg)?;
                seqs.add(seq);
                new.push(seq.is_some());
            }
        }
        seqs.index(&tx)?;
        tx.commit()?;
        refs.committed();
        Ok(new)
    }

    /// Whether `author`'s message with this id is stored.
    pub fn has_message(&self, author: &IdentityBytes, id: &MessageId) -> Result<bool, DbError> {
        let Some(author) = self.identities.find(&self.conn, author)? else {
            return Ok(false);
        };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM messages WHERE id = ?2 AND author_ref = ?1")?;
        Ok(stmt.exists(params![author, &id[..]])?)
    }

    /// `author`'s stored message with this id.
    pub fn get_message(
        &self,
        author: &IdentityBytes,
        id: &MessageId,
    ) -> Result<Option<StoredMessage>, DbError> {
        let author = self.identities.find(&self.conn, author)?;
        read_by_key(&mut by_key_statement(&self.conn)?, author, id)
    }

    /// [`Store::get_message`] for each (author, id) in `keys`, in order,
    /// inside one read transaction: outside one, every query takes and
    /// drops the WAL read lock (two `fcntl` calls), which cost a received
    /// public post as much as the look-up itself.
    pub fn get_messages(
        &self,
        keys: &[(IdentityBytes, MessageId)],
    ) -> Result<Vec<Option<StoredMessage>>, DbError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // Read-only: ending it by rollback or commit is the same.
        let tx = self.conn.unchecked_transaction()?;
        let mut stmt = by_key_statement(&tx)?;
        let out = keys
            .iter()
            .map(|(author, id)| {
                let author = self.identities.find(&tx, author)?;
                read_by_key(&mut stmt, author, id)
            })
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        tx.commit()?;
        Ok(out)
    }

    /// Number of stored messages.
    pub fn message_count(&self) -> Result<u64, DbError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM messages", [], |row| row.get(0))?;
        from_sql_i64("count", n)
    }

    /// The last `limit` messages of a conversation, in chronological order:
    /// by `order_ms` (the author's timestamp, capped at arrival plus
    /// MAX_CLOCK_SKEW_MS), ties in the order they were stored.
    pub fn history(
        &self,
        conv: &ConversationKey,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, DbError> {
        // A room's history holds both forms of its messages (`room` is set
        // for legacy ones too).
        let mut msgs = match (conv.room(), conv_peer(conv)) {
            (Some(room), _) => query_messages(
                &self.conn,
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages AS m \
                     WHERE m.room = ?1 AND m.legacy < 2 \
                     ORDER BY m.order_ms DESC, m.seq DESC LIMIT ?2"
                ),
                params![&room[..], sql_limit(limit)],
            )?,
            (None, peer) => {
                // NULL: the public room. A peer without a ref has no
                // conversation stored.
                let conv_ref = match peer {
                    None => None,
                    Some(peer) => match self.identities.find(&self.conn, peer)? {
                        Some(r) => Some(r),
                        None => return Ok(Vec::new()),
                    },
                };
                query_messages(
                    &self.conn,
                    &format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages AS m \
                         WHERE m.conv_ref IS ?1 \
                         ORDER BY m.order_ms DESC, m.seq DESC LIMIT ?2"
                    ),
                    params![conv_ref, sql_limit(limit)],
                )?
            }
        };
        msgs.reverse();
        Ok(msgs)
    }

    /// Full-text search over all conversations: messages containing every
    /// word of `words` (case and diacritics ignored), the most recently
    /// stored first, at most `limit`. `words` is plain user text: each
    /// whitespace-separated word is searched for literally (FTS5 operators
    /// and punctuation have no effect), and input without any letter or digit
    /// is [`DbError::EmptyQuery`].
    pub fn search(
        &self,
        words: &str,
        room: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, DbError> {
        let query = fts_query(words)?;
        // FTS5 is the outer loop and consumes `ORDER BY rowid DESC`: it walks
        // its index backwards and stops after `limit` hits, with no sort over
        // all matches (the test `hot_queries_do_not_sort_or_scan` checks the
        // plan).
        query_messages(
            &self.conn,
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages_fts AS f \
                 JOIN messages AS m ON m.seq = f.rowid \
                 WHERE messages_fts MATCH ?1 AND (?3 IS NULL OR m.room = ?3) \
                 ORDER BY f.rowid DESC LIMIT ?2"
            ),
            params![query, sql_limit(limit), room.map(|r| &r[..])],
        )
    }

    /// Every stored membership log entry, in storage order.
    pub fn room_controls(&self) -> Result<Vec<StoredMessage>, DbError> {
        query_messages(
            &self.conn,
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages AS m \
                 WHERE m.legacy = 2 ORDER BY m.seq"
            ),
            [],
        )
    }

    /// The local user's messages whose id, after its clock bytes
    /// ([`natter_core::chat::ID_CLOCK_BYTES`]), starts with `tag`, in id
    /// order, at most `limit`: what `/info` looks up by short id. The
    /// random part of an id is not the start of any index's key, so this
    /// reads every row (about 0.1 s per million messages); `/info` is typed
    /// by a person, and an index of it would cost a random write per
    /// message sent.
    pub fn outgoing_by_id_tag(
        &self,
        tag: &[u8],
        limit: usize,
    ) -> Result<Vec<StoredMessage>, DbError> {
        let from = i64::try_from(natter_core::chat::ID_CLOCK_BYTES + 1)
            .map_err(|_| DbError::InvalidData("id layout".into()))?;
        query_messages(
            &self.conn,
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages AS m \
                 WHERE m.outgoing = 1 AND substr(m.id, ?1, length(?2)) = ?2 \
                 ORDER BY m.id LIMIT ?3"
            ),
            params![from, tag, sql_limit(limit)],
        )
    }

    /// Signed public messages with `order_ms >= since_ms` and
    /// `timestamp_ms <= until_ms`, oldest first, at most `limit`: what a peer
    /// that was offline asks for to catch up. Unsigned public rows cannot be
    /// relayed and are left out. `since_ms` may come from a peer: any value
    /// is accepted.
    pub fn public_since(
        &self,
        since_ms: u64,
        until_ms: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, DbError> {
        // No stored timestamp is beyond i64::MAX.
        let Ok(since) = i64::try_from(since_ms) else {
            return Ok(Vec::new());
        };
        let until = i64::try_from(until_ms).unwrap_or(i64::MAX);
        query_messages(
            &self.conn,
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages AS m \
                 WHERE m.conv_ref IS NULL AND m.order_ms >= ?1 \
                   AND m.timestamp_ms <= ?2 AND m.signature IS NOT NULL \
                 ORDER BY m.order_ms, m.seq LIMIT ?3"
            ),
            params![since, until, sql_limit(limit)],
        )
    }

    /// The newest `order_ms` among public messages that is at most
    /// `at_most_ms`, if there is one: where a node that comes back asks its
    /// peers to resume the public room. Timestamps beyond `at_most_ms` (an
    /// author whose clock runs ahead) are passed over, so one such message
    /// cannot make catch-up skip everything up to its date.
    pub fn newest_public_timestamp(&self, at_most_ms: u64) -> Result<Option<u64>, DbError> {
        // No stored timestamp is beyond i64::MAX.
        let at_most = i64::try_from(at_most_ms).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare_cached(
            "SELECT m.order_ms FROM messages AS m \
             WHERE m.conv_ref IS NULL AND m.order_ms <= ?1 \
             ORDER BY m.order_ms DESC LIMIT 1",
        )?;
        let newest: Option<i64> = stmt.query_row([at_most], |row| row.get(0)).optional()?;
        newest
            .map(|ts| from_sql_i64("messages.order_ms", ts))
            .transpose()
    }
}
