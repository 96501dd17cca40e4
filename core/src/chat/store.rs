//! What the chat core keeps on disk, as a trait: the application implements
//! it over SQLite (`natter::store::Store`); [`MemoryStore`](super::MemoryStore)
//! implements it in memory for the simulator, the fuzz targets and tests.
//!
//! Every method is one atomic step: a write either happens whole or not at
//! all, and when it returns `Ok` it is durable (the chat core acks messages
//! only after [`ChatStore::insert_messages`] returned). Time is always an
//! argument, never read from a clock.

use crate::wire::MessageId;

/// An ed25519 public identity key, as raw bytes in stored rows.
pub type IdentityBytes = [u8; 32];
/// An X25519 public Noise static key.
pub type NoiseStaticKey = [u8; 32];
/// An ed25519 signature.
pub type Signature = [u8; 64];

/// A room's id, as raw bytes in stored rows.
pub type RoomBytes = [u8; 32];

/// Which conversation a message belongs to, seen from the local user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConversationKey {
    /// A message of the default room (`chat::rooms::DEFAULT_ROOM`) signed as
    /// an old `Public` frame, from before rooms: served again in that form.
    Public,
    /// A room post in this room (an open room's, or an invite-only room's
    /// sealed post: then `StoredMessage::wire` holds the frame).
    Room(RoomBytes),
    /// An entry of this invite-only room's membership log (the frame in
    /// `StoredMessage::wire`): relayed and served, never shown as a message.
    RoomControl(RoomBytes),
    /// The direct conversation with this peer (whoever wrote the message).
    Direct(IdentityBytes),
}

impl ConversationKey {
    /// The room a message belongs to (`Public` is the default room's), or
    /// `None` for a direct message.
    pub fn room(&self) -> Option<RoomBytes> {
        match self {
            ConversationKey::Public => Some(crate::chat::rooms::default_room().0),
            ConversationKey::Room(r) => Some(*r),
            ConversationKey::RoomControl(_) | ConversationKey::Direct(_) => None,
        }
    }

    /// Whether messages of this kind are signed room items, relayed and
    /// served in catch-up (every kind but direct messages).
    pub fn is_relayable(&self) -> bool {
        !matches!(self, ConversationKey::Direct(_))
    }
}

/// One chat message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: MessageId,
    pub conversation: ConversationKey,
    pub author: IdentityBytes,
    /// The author's clock, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    pub text: String,
    /// The author's signature over a public message, which lets any peer
    /// relay it; `None` for direct messages.
    pub signature: Option<Signature>,
    /// Written by the local user.
    pub outgoing: bool,
    /// The local clock when the message was stored.
    pub received_ms: u64,
    /// The whole frame, for the room items whose fields have no columns of
    /// their own (sealed posts, membership log entries); `None` otherwise.
    pub wire: Option<Vec<u8>>,
}

/// How far the local user trusts a peer's identity key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrustLevel {
    /// Seen, key pinned on first use, fingerprints not compared.
    Unverified,
    /// The user compared fingerprints and marked the key as verified.
    Verified,
}

impl TrustLevel {
    /// The stored spelling (`peers.trust` column).
    pub fn as_str(self) -> &'static str {
        match self {
            TrustLevel::Unverified => "unverified",
            TrustLevel::Verified => "verified",
        }
    }

    /// Parses [`TrustLevel::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unverified" => Some(TrustLevel::Unverified),
            "verified" => Some(TrustLevel::Verified),
            _ => None,
        }
    }
}

/// One row of the trust store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRecord {
    pub identity: IdentityBytes,
    pub noise_static: NoiseStaticKey,
    pub nickname: String,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    /// The last address this peer was reached at or announced, `host:port`.
    pub last_addr: Option<String>,
    pub trust: TrustLevel,
    /// When the peer was marked verified; `None` while unverified.
    pub verified_ms: Option<u64>,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A search contained no word to look for.
    #[error("nothing to search for: give at least one word")]
    EmptyQuery,
    /// The message id is not in the store.
    #[error("no message with id {}", crate::hex(.id))]
    UnknownMessage { id: MessageId },
    /// The identity key is not in the trust store.
    #[error("no peer with identity key {}", crate::hex(.identity))]
    UnknownPeer { identity: IdentityBytes },
    /// A number does not fit in the store's signed 64-bit integers.
    #[error("{field} = {value} is too large to store")]
    OutOfRange { field: &'static str, value: u64 },
    /// A batch look-up came back with a different number of answers than
    /// keys: the store broke its contract, so nothing of the batch is used.
    #[error("the store answered {got} of {asked} look-ups")]
    ShortAnswer { asked: usize, got: usize },
    /// The storage engine failed (disk, database); the source says how.
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// How far ahead of the receiver's clock an author's timestamp may run and
/// still place the message in history (10 minutes). Beyond it the message
/// sorts as if stamped this long after it arrived, and catch-up does not
/// serve it.
pub const MAX_CLOCK_SKEW_MS: u64 = 10 * 60 * 1000;

/// Where a message sorts in its conversation: the author's timestamp, but
/// never later than its arrival plus [`MAX_CLOCK_SKEW_MS`], so an author
/// whose clock runs ahead (or who lies) cannot pin a message after every
/// later genuine one. Equal to `timestamp_ms` for every message stamped
/// before it arrived.
pub fn order_ms(m: &StoredMessage) -> u64 {
    m.timestamp_ms
        .min(m.received_ms.saturating_add(MAX_CLOCK_SKEW_MS))
}

/// A peer seen over at least this span (first to last sighting, 1 day) is
/// *long known*: it ranks above peers met once, so a flood of fresh
/// identities cannot push it out of the outbox or the start-up dials.
pub const LONG_KNOWN_MS: u64 = 24 * 60 * 60 * 1000;

/// Whether a peer was seen over at least [`LONG_KNOWN_MS`].
pub fn is_long_known(p: &PeerRecord) -> bool {
    p.last_seen_ms.saturating_sub(p.first_seen_ms) >= LONG_KNOWN_MS
}

/// The rank of a known peer where only some can be served or kept (outbox
/// rows for a public message, dials at start, the unverified peers the
/// trust store keeps): verified first, then long known, the one first seen
/// earliest first, then the most recently seen. Higher is first. Long
/// known takes only two sightings a day apart, so among long-known peers
/// the older acquaintance wins: identities minted for an attack are met
/// later than the contacts it would push out.
pub fn peer_rank(p: &PeerRecord) -> (bool, bool, u64) {
    let long_known = is_long_known(p);
    let then = if long_known {
        u64::MAX - p.first_seen_ms
    } else {
        p.last_seen_ms
    };
    (p.trust == TrustLevel::Verified, long_known, then)
}

/// The largest number the store keeps (SQLite integers are signed).
pub const MAX_STORED_INT: u64 = i64::MAX as u64;

/// The chat core's persistent state: history, outbox, delivery receipts,
/// the trust store and settings.
pub trait ChatStore: Send + std::fmt::Debug {
    /// Stores received or sent messages in one transaction. A message is
    /// identified by its (author, id): two authors may use the same id.
    /// Returns, for each input, `true` if it was new and `false` if that
    /// author's message with that id was already stored (then the stored
    /// one is kept unchanged). Duplicates within `msgs` count too.
    fn insert_messages(&mut self, msgs: &[StoredMessage]) -> Result<Vec<bool>, StoreError>;
    /// Whether `author`'s message with this id is stored.
    fn has_message(&self, author: &IdentityBytes, id: &MessageId) -> Result<bool, StoreError>;
    /// `author`'s stored message with this id.
    fn get_message(
        &self,
        author: &IdentityBytes,
        id: &MessageId,
    ) -> Result<Option<StoredMessage>, StoreError>;
    /// [`ChatStore::get_message`] for each (author, id) in `keys`, in
    /// order. One call per received batch: a store with per-call costs (a
    /// read transaction each) pays them once.
    fn get_messages(
        &self,
        keys: &[(IdentityBytes, MessageId)],
    ) -> Result<Vec<Option<StoredMessage>>, StoreError> {
        keys.iter()
            .map(|(author, id)| self.get_message(author, id))
            .collect()
    }
    /// Messages written by the local user whose id, after its
    /// [`ID_CLOCK_BYTES`](crate::chat::ID_CLOCK_BYTES) clock bytes, starts
    /// with `tag` (what `/info` takes), at most `limit`, in id order.
    fn outgoing_by_id_tag(
        &self,
        tag: &[u8],
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError>;
    /// Every stored membership log entry of invite-only rooms
    /// ([`ConversationKey::RoomControl`]), in storage order.
    fn room_controls(&self) -> Result<Vec<StoredMessage>, StoreError>;
    /// Number of stored messages.
    fn message_count(&self) -> Result<u64, StoreError>;
    /// The last `limit` messages of a conversation, in chronological order:
    /// by [`order_ms`], ties in the order they were stored. A room's history
    /// holds its messages of either form ([`ConversationKey::room`]):
    /// `Room(default room)` and `Public` give the same history.
    fn history(
        &self,
        conv: &ConversationKey,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError>;
    /// Messages containing every word of `words` (case ignored), the most
    /// recently stored first, at most `limit`, only those of `room` if it is
    /// given. `words` is plain user text; input without any letter or digit
    /// is [`StoreError::EmptyQuery`].
    fn search(
        &self,
        words: &str,
        room: Option<&RoomBytes>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError>;
    /// Signed room messages (every room, either form) with [`order_ms`] `>= since_ms` and an author
    /// timestamp `<= until_ms`, by [`order_ms`] then storage order, at most
    /// `limit`: a catch-up answer, bounded above so a far-future message is
    /// not handed to every peer that asks.
    fn public_since(
        &self,
        since_ms: u64,
        until_ms: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError>;
    /// The newest [`order_ms`] of a room message (any room) that is at most
    /// `at_most_ms`.
    fn newest_public_timestamp(&self, at_most_ms: u64) -> Result<Option<u64>, StoreError>;
    /// Stores messages and queues each for its recipients, all in ONE
    /// transaction. Returns, per message, whether it was new; a duplicate
    /// (author, id) changes nothing for that message. On error nothing is stored.
    fn insert_outgoing_batch(
        &mut self,
        items: &[(&StoredMessage, &[IdentityBytes])],
    ) -> Result<Vec<bool>, StoreError>;
    /// One message and its recipients: [`ChatStore::insert_outgoing_batch`]
    /// of one item.
    fn insert_outgoing(
        &mut self,
        msg: &StoredMessage,
        recipients: &[IdentityBytes],
    ) -> Result<bool, StoreError> {
        Ok(self
            .insert_outgoing_batch(&[(msg, recipients)])?
            .first()
            .copied()
            .unwrap_or(false))
    }
    /// Queues messages already stored for peers (`(id, peer)` pairs), in
    /// one transaction. Returns how many entries were new. Fails with
    /// [`StoreError::UnknownMessage`], and queues nothing, if one is not
    /// stored.
    fn outbox_add(&mut self, entries: &[(MessageId, IdentityBytes)]) -> Result<usize, StoreError>;
    /// Messages `peer` has not acked yet, oldest first ([`order_ms`], then
    /// storage order), at most `limit`.
    fn outbox_for_peer(
        &self,
        peer: &IdentityBytes,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError>;
    /// Records that `peer` acked `ids`: removes their outbox rows and writes
    /// delivery receipts, in one transaction. Returns the ids whose outbox
    /// row was removed.
    fn outbox_ack(
        &mut self,
        peer: &IdentityBytes,
        ids: &[MessageId],
        now_ms: u64,
    ) -> Result<Vec<MessageId>, StoreError>;
    /// Up to `limit` known peers last seen at or after `seen_since_ms`, best
    /// [`peer_rank`] first (ties by identity): who gets outbox rows for a
    /// new public message.
    fn outbox_recipients(
        &self,
        seen_since_ms: u64,
        limit: usize,
    ) -> Result<Vec<IdentityBytes>, StoreError>;
    /// Removes the outbox rows of peers met once ([`peer_rank`]: not
    /// verified, not long known) and not seen since `unseen_since_ms`.
    /// Returns how many rows went.
    fn expire_outbox(&mut self, unseen_since_ms: u64) -> Result<usize, StoreError>;
    /// Forgets unverified peers last seen before `unseen_since_ms`, and of
    /// the rest those beyond the best `keep_unverified` by [`peer_rank`]
    /// (long known first, first seen earliest, then most recently seen),
    /// with their outbox rows; verified peers are never forgotten. Returns
    /// who was forgotten.
    fn prune_peers(
        &mut self,
        unseen_since_ms: u64,
        keep_unverified: usize,
    ) -> Result<Vec<IdentityBytes>, StoreError>;
    /// The peers that have not acked this message yet, in key order.
    fn pending_peers(&self, id: &MessageId) -> Result<Vec<IdentityBytes>, StoreError>;
    /// Every peer with at least one unacked message, in key order.
    fn outbox_peers(&self) -> Result<Vec<IdentityBytes>, StoreError>;
    /// The peers that acked this message, in the order their acks arrived.
    fn delivered_to(&self, id: &MessageId) -> Result<Vec<IdentityBytes>, StoreError>;
    /// Records that an authenticated peer was seen at `now_ms` (see
    /// `natter::store::Store::upsert_peer_seen`). Returns whether it was new.
    fn upsert_peer_seen(
        &mut self,
        identity: &IdentityBytes,
        noise_static: &NoiseStaticKey,
        nickname: &str,
        now_ms: u64,
        addr: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// The trust-store entry of this identity.
    fn get_peer(&self, identity: &IdentityBytes) -> Result<Option<PeerRecord>, StoreError>;
    /// Every known peer, by nickname (ASCII case folded), then identity key.
    fn peers(&self) -> Result<Vec<PeerRecord>, StoreError>;
    /// Sets the trust level of a known peer ([`StoreError::UnknownPeer`]
    /// for an identity never seen).
    fn set_trust(
        &mut self,
        identity: &IdentityBytes,
        trust: TrustLevel,
        now_ms: u64,
    ) -> Result<(), StoreError>;
    /// The last known address of every peer that has one, best
    /// [`peer_rank`] first.
    fn known_addrs(&self) -> Result<Vec<(IdentityBytes, String)>, StoreError>;
    /// A setting.
    fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Changes a setting.
    fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError>;
}
