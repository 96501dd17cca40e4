//! The chat core: message ids, signing and checking public messages,
//! delivery with acks and the persistent outbox, duplicate dropping, relaying
//! and public catch-up.
//!
//! No sockets and no clock: the node calls [`Chat`] synchronously, passes the
//! wall clock (`now_ms`, Unix milliseconds) and the set of peers it has an
//! authenticated link with, and sends the frames it gets back. [`Chat`] owns
//! the [`Store`]; every state that must survive a restart (messages, outbox,
//! delivery receipts, peers) lives there, and the little kept in memory (see
//! "Paging" below) is rebuilt by the next [`Chat::on_link_up`].
//!
//! # Rules
//!
//! 1. **Message.** A message has a random 128-bit id (from the operating
//!    system's CSPRNG), an author (an identity key), the author's wall clock
//!    `timestamp_ms`, a conversation (the public room, or the direct
//!    conversation with one peer) and a text of 1 to [`MAX_TEXT_LEN`] bytes of
//!    UTF-8 that is not only whitespace. Sending a longer or blank text is an
//!    error and stores nothing; receiving one is a [`Violation`].
//! 2. **Author.** The author of a `Direct` frame is the authenticated peer of
//!    the link it came on; the frame has no author field. A `Public` frame
//!    names its `author` and carries the author's ed25519 signature over
//!    `"natter/1 public-message" || postcard(SignedPublic { id, author,
//!    timestamp_ms, text })`; the receiver checks it (`verify_strict`) before
//!    storing, whoever relayed the frame. A bad signature is a [`Violation`]:
//!    the frame is not stored, not acked, not relayed, and counted in
//!    [`ChatStats::rejected`]. This is what makes relaying safe. A valid
//!    public message written by the local identity but missing from the store
//!    (our own message coming back after the database was lost) is stored
//!    like any other, as outgoing.
//! 3. **Delivery.** The receiver stores every new `Public`/`Direct` message
//!    (one SQLite transaction per batch of frames, `synchronous=FULL`, so it
//!    is on disk when the call returns) and only then acks it: `Ack(ids)` back
//!    on the same link, at most [`MAX_ACK_IDS`] ids per frame. A message is
//!    identified by its **(author, id)**: two authors' messages under one id
//!    are two messages, so no peer can hide another's message by using its
//!    id first. Duplicates (the same author, id and content already stored,
//!    also from before a restart, or twice in one batch) are dropped without
//!    a second [`ChatEvent::Received`] but are acked too, so a sender whose
//!    ack was lost stops resending; their signature is not checked again
//!    (identical bytes to a verified message). An id is acked once per
//!    batch. A message under a held (author, id) with other content is never
//!    acked: a validly signed one is a [`ChatEvent::Collision`] (the author
//!    signed two messages with one id), a forged one a
//!    [`Violation::BadSignature`], a direct one [`Violation::IdReused`].
//! 4. **Sender and outbox.** [`Chat::post_public`] stores the signed message
//!    and an outbox row for every known peer (every identity in the store's
//!    peers table except the local one) in one transaction, and returns
//!    frames for the peers connected now. [`Chat::send_direct`] does the same
//!    with one recipient, connected or not. An outbox row is removed when
//!    that peer acks the id (a delivery receipt is written in the same
//!    transaction) and [`ChatEvent::Delivered`] is reported; acks for ids that
//!    are not waiting for that peer change nothing. [`Chat::on_link_up`]
//!    resends the peer's outbox, oldest first, [`RESEND_PAGE`] messages at a
//!    time, followed by a `SyncRequest`.
//! 5. **Relay.** A public message newly stored from peer X is forwarded,
//!    unchanged (signature intact), to every other connected peer except X,
//!    its author and ourselves. Relays are not queued in the outbox: a peer
//!    offline now gets the message from its author's outbox or by catch-up.
//!    Dropping duplicates by id ends every loop.
//! 6. **Catch-up.** After a link comes up the node asks the peer for the
//!    public messages it missed: `SyncRequest { since_ms }` with
//!    `since_ms = max(newest − SYNC_SLACK_MS, now − SYNC_WINDOW_MS)`, where
//!    `newest` is the newest public timestamp stored that is not in the
//!    future (`≤ now`), or `now − SYNC_WINDOW_MS` when there is none. The
//!    slack covers authors whose clocks run behind ours; skipping future
//!    timestamps keeps one author with a fast clock from making everyone skip
//!    the backlog. The answer is the signed public messages with
//!    `timestamp_ms ≥ max(since_ms, now − SYNC_WINDOW_MS)` (the responder's
//!    now), oldest first, at most [`SYNC_MAX_MESSAGES`] messages and at most
//!    [`SYNC_MAX_BYTES`] bytes of text (always at least one message), as
//!    ordinary `Public` frames that the requester checks, stores, acks and
//!    relays like any other.
//! 7. **Errors.** A frame that breaks a rule (limit exceeded, blank text,
//!    timestamp beyond `i64::MAX`, bad signature) is reported as a typed
//!    [`Violation`] in [`Actions::rejected`]; the other frames of the batch
//!    are handled normally, and the node decides whether to close the link
//!    (it should, with `CloseReason::ProtocolError`). Nothing here panics or
//!    unwraps on input. [`ChatError`] is for local failures (the store, the
//!    random number generator) and for refusing what the local user typed.
//! 8. **Frames that are not chat.** `Ping`, `Pong`, `Close`, `Data` and `Nick`
//!    belong to the node; [`Chat::on_frames`] ignores them
//!    ([`is_chat_frame`] tells them apart).
//!
//! # Paging
//!
//! Two things are sent in pages so that one call never builds an unbounded
//! answer, and are continued by the chat core itself:
//!
//! - **Outbox resend.** [`Chat::on_link_up`] sends at most [`RESEND_PAGE`]
//!   messages and remembers their ids. When the peer has acked all of them
//!   and the outbox had more, the next page goes out with the actions of the
//!   call that handled the last ack. A message posted while a page is in
//!   flight is sent live and may be sent again in the next page (acked twice,
//!   harmless).
//! - **Catch-up.** A sync answer is limited, so the requester counts the
//!   public frames it receives from that peer with a timestamp in
//!   `[since_ms, now at request]`. When the count reaches
//!   [`SYNC_MAX_MESSAGES`], or their text comes within [`MAX_TEXT_LEN`] of
//!   [`SYNC_MAX_BYTES`] (the responder may have stopped for either reason), it
//!   asks again from the newest timestamp counted. The messages at that exact
//!   timestamp come again as duplicates; if the newest timestamp did not
//!   move (more than a page shares one millisecond) it stops. Late relays in
//!   the window may trigger an early follow-up request, which only costs a
//!   page of duplicates.
//!
//! Both are per link and forgotten by [`Chat::on_link_down`] and by the next
//! [`Chat::on_link_up`] for the same peer.
//!
//! # Known limits
//!
//! - Acks carry bare ids; an ack is read as being about the messages the
//!   acking peer got from us, which in our outbox are our own.
//! - Relaying and catch-up forward new messages to every connected peer,
//!   which mostly answer with duplicates' acks: O(peers) frames per message,
//!   fine on a LAN.

mod memory;
pub mod private;
pub mod quota;
mod room_admin;
pub mod room_keys;
pub mod rooms;
pub mod store;
#[cfg(test)]
mod tests;

pub use memory::MemoryStore;
pub use quota::QuotaLimits;
pub use rooms::{
    default_room, open_room_id, room_label, room_name, sign_room_post, RoomNameError, SignedPost,
    UnsignedPost, DEFAULT_ROOM,
};
pub use store::{ChatStore, StoreError};

use std::collections::{HashMap, HashSet};

use crate::identity::{
    domain, random_bytes, BoundKeys, IdentityError, IdentityKey, LocalIdentity, SignatureBytes,
};
use crate::wire::codec::encode;
use crate::wire::frame::{SignedPublic, SyncRequest};
use crate::wire::limits::{MAX_ACK_IDS, MAX_TEXT_LEN};
use crate::wire::{DirectMessage, Frame, MessageId, PublicMessage, RoomId, RoomPost, WireError};
use private::PrivateRooms;
pub use private::RoomChanged;
use quota::{Admission, Quota};
pub use room_admin::PrivateRoomView;
use store::{ConversationKey, StoredMessage};

/// Who the node has a link to now, as the chat core asks it: whether one
/// peer is linked (a direct message goes out at once or waits in the
/// outbox), or everyone linked (relaying and room posts go to all of them
/// anyway). A node answers the first from its peer table, so a batch of
/// direct messages costs nothing per linked peer.
pub trait Linked {
    fn is_linked(&self, id: &IdentityKey) -> bool;
    /// Every linked peer, each once.
    fn linked(&self) -> Vec<IdentityKey>;
}

impl Linked for [IdentityKey] {
    fn is_linked(&self, id: &IdentityKey) -> bool {
        self.contains(id)
    }

    fn linked(&self) -> Vec<IdentityKey> {
        let mut seen = HashSet::new();
        self.iter().copied().filter(|p| seen.insert(*p)).collect()
    }
}

impl Linked for Vec<IdentityKey> {
    fn is_linked(&self, id: &IdentityKey) -> bool {
        self.as_slice().is_linked(id)
    }

    fn linked(&self) -> Vec<IdentityKey> {
        self.as_slice().linked()
    }
}

impl<const N: usize> Linked for [IdentityKey; N] {
    fn is_linked(&self, id: &IdentityKey) -> bool {
        self.as_slice().is_linked(id)
    }

    fn linked(&self) -> Vec<IdentityKey> {
        self.as_slice().linked()
    }
}

/// A post ready to store: the row, its outbox recipients, the frame to send.
type Prepared = (StoredMessage, Vec<[u8; 32]>, Frame);

/// One item of [`Chat::post_many`]: the stored message and the frames to
/// send now, or why it was refused.
pub type PostResult = Result<(MessageView, Vec<(IdentityKey, Frame)>), ChatError>;

/// Peers that have not been seen for this long get no outbox rows for new
/// public messages (catch-up covers them if they return).
pub const OUTBOX_PEER_HORIZON_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// At most this many peers (verified, then long known, then most recently
/// seen) get outbox rows for a new public message.
pub const OUTBOX_MAX_PEERS: usize = 256;

/// Outbox rows of a peer met once (not verified, not long known) that has
/// not been seen for this long (7 days, the catch-up window) are dropped.
pub const ONE_OFF_OUTBOX_TTL_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// The trust store keeps at most this many unverified peers (the most
/// recently seen); verified peers are never dropped.
pub const MAX_UNVERIFIED_PEERS: usize = 10_000;

/// An unverified peer not seen for this long (30 days) is forgotten.
pub const UNVERIFIED_PEER_TTL_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// New identities recorded between two prunings of the trust store (so a
/// flood of them costs one pruning per this many, not one per handshake).
const PRUNE_EVERY_NEW_PEERS: u32 = 256;

/// How often that expiry runs, and how long a computed recipient list is
/// reused when nothing changed (1 hour).
const OUTBOX_EXPIRY_EVERY_MS: u64 = 60 * 60 * 1000;

/// Most peers whose bound keys are kept in memory for invitations.
pub const MAX_KNOWN_KEYS: usize = 16_384;

/// Most messages in one answer to a `SyncRequest`.
pub const SYNC_MAX_MESSAGES: usize = 500;
/// Most bytes of message text in one answer to a `SyncRequest` (1 MiB).
pub const SYNC_MAX_BYTES: usize = 1024 * 1024;
/// How far before the newest public message a returning node asks to
/// resume, to cover authors whose clocks run behind (10 minutes).
pub const SYNC_SLACK_MS: u64 = 10 * 60 * 1000;
/// How far back catch-up reaches at most (7 days), for requester and
/// responder alike.
pub const SYNC_WINDOW_MS: u64 = 7 * 24 * 60 * 60 * 1000;
/// No catch-up answer is built for a peer whose link has more than this
/// unwritten (1 MiB): answers wait until it reads.
pub const SYNC_BACKLOG_LIMIT: usize = 1024 * 1024;

/// Catch-up answers to one peer are paced at this many bytes per second
/// (1 MiB/s), after a burst of [`SYNC_BURST_BYTES`].
pub const SYNC_RATE_BYTES_PER_S: u64 = 1024 * 1024;
/// What a peer may get at once before the pacing starts (2 MiB: the first
/// page of a catch-up goes out without delay, the next once the budget
/// refills or, for a link that is backed up, once it drains).
pub const SYNC_BURST_BYTES: u64 = 2 * 1024 * 1024;
/// Bytes counted per answered message beside its text (keys, signature,
/// framing).
const SYNC_FRAME_OVERHEAD: usize = 160;
/// A page is answered only when the budget holds a whole page's worth.
const SYNC_PAGE_COST: u64 = (SYNC_MAX_BYTES + SYNC_MAX_MESSAGES * SYNC_FRAME_OVERHEAD) as u64;

/// Most outbox messages resent at once after a link comes up.
pub const RESEND_PAGE: usize = 1000;

/// The largest timestamp that can be stored (SQLite integers are signed).
const MAX_TIMESTAMP_MS: u64 = i64::MAX as u64;

/// A conversation, seen from the local user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Conversation {
    /// A room (see [`rooms`]); every peer stores and relays its messages.
    Room(RoomId),
    /// The direct conversation with this peer.
    Direct(IdentityKey),
}

impl Conversation {
    /// The default room, natter's public room from before rooms.
    pub fn lobby() -> Self {
        Conversation::Room(default_room())
    }

    /// The store's key for this conversation.
    pub fn into_store_key(self) -> ConversationKey {
        self.to_store()
    }

    fn to_store(self) -> ConversationKey {
        match self {
            Conversation::Room(room) => ConversationKey::Room(room.0),
            Conversation::Direct(peer) => ConversationKey::Direct(peer.0),
        }
    }

    fn from_store(key: ConversationKey) -> Self {
        match key {
            ConversationKey::Public => Conversation::lobby(),
            ConversationKey::Room(room) | ConversationKey::RoomControl(room) => {
                Conversation::Room(RoomId(room))
            }
            ConversationKey::Direct(peer) => Conversation::Direct(IdentityKey(peer)),
        }
    }
}

/// Checks the signatures of many room items at once: the chat core hands a
/// whole batch of received frames to it, so it may spread them over cores.
/// Results are in the order given; `true` means the signature verifies.
pub trait SignatureCheck: Send + std::fmt::Debug {
    fn verify_all(&self, posts: &[&SignedPost]) -> Vec<bool>;

    /// Signs a batch of our own posts to open rooms, in the order given
    /// (the author's half of the same work; one after another unless the
    /// implementation spreads them over cores).
    fn sign_all(&self, local: &LocalIdentity, posts: Vec<UnsignedPost>) -> Vec<RoomPost> {
        posts.into_iter().map(|p| p.sign(local)).collect()
    }
}

/// One check after another, on the calling thread.
#[derive(Debug, Default)]
pub struct OneByOne;

impl SignatureCheck for OneByOne {
    fn verify_all(&self, posts: &[&SignedPost]) -> Vec<bool> {
        SignedPost::verify_each(posts)
    }
}

/// Where a post goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Room(RoomId),
    Direct(IdentityKey),
}

/// A message as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    pub id: MessageId,
    pub conversation: Conversation,
    pub author: IdentityKey,
    /// The author's clock, Unix milliseconds.
    pub timestamp_ms: u64,
    /// Untrusted text: sanitise before display.
    pub text: String,
    /// Written by the local user.
    pub outgoing: bool,
    /// Outgoing only: acked by the recipient (direct) or by at least one
    /// peer (room). Always `false` for incoming messages.
    pub delivered: bool,
    /// Outgoing only: how many peers acked it (as far as this view knows:
    /// `0` in the event of a message just sent).
    pub delivered_to: usize,
}

impl MessageView {
    fn new(m: StoredMessage, delivered_to: usize) -> Self {
        MessageView {
            delivered: delivered_to > 0,
            delivered_to,
            id: m.id,
            conversation: Conversation::from_store(m.conversation),
            author: IdentityKey(m.author),
            timestamp_ms: m.timestamp_ms,
            text: m.text,
            outgoing: m.outgoing,
        }
    }
}

use crate::hex;

/// Something the UI should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// A message was stored for the first time.
    Received(MessageView),
    /// `peer` acked our message `id`; its outbox row is gone.
    Delivered { id: MessageId, peer: IdentityKey },
    /// A validly signed message arrived (through `via`) under an (author,
    /// id) already held with other content: the author signed two messages
    /// with one id. Neither stored nor acked.
    Collision {
        author: IdentityKey,
        id: MessageId,
        via: IdentityKey,
    },
    /// A stranger's message (first seen through `via`) was over its daily
    /// share of history ([`quota`]): not stored, not acked, so its sender
    /// keeps it for later. Once per author and window.
    OverQuota {
        author: IdentityKey,
        via: IdentityKey,
    },
    /// An invite-only room's membership changed (or we joined one).
    RoomChanged(RoomChanged),
}

/// What a call asks the node to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Actions {
    /// Frames to send, each on the link to its peer, in order.
    pub send: Vec<(IdentityKey, Frame)>,
    /// For the UI.
    pub events: Vec<ChatEvent>,
    /// Frames of the peer that broke a rule, one entry each; they were
    /// dropped. Non-empty means the node should close the link with
    /// `CloseReason::ProtocolError`.
    pub rejected: Vec<Violation>,
}

/// A rule broken by a peer's frame.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Violation {
    /// The frame breaks a wire limit (text too long, empty or oversized ack).
    #[error("malformed frame: {0}")]
    Malformed(#[from] WireError),
    /// The message text is empty or only whitespace.
    #[error("message {} has a blank text", hex(.id))]
    BlankText { id: MessageId },
    /// The timestamp cannot be stored.
    #[error("message {} has timestamp {timestamp_ms}, beyond the largest storable", hex(.id))]
    TimestampOutOfRange { id: MessageId, timestamp_ms: u64 },
    /// The peer sent a direct message under an id it had already used for
    /// another message.
    #[error("message {} reuses the id of another message by the same peer", hex(.id))]
    IdReused { id: MessageId },
    /// A signed post (public message, room post, sealed post) whose
    /// signature does not verify for its author.
    #[error("post {} does not carry a valid signature by {author:?}", hex(.id))]
    BadSignature { id: MessageId, author: IdentityKey },
    /// A room log entry that is not its founder's, or breaks the log's
    /// shape (a founding not numbered 0, a bad member binding).
    #[error("room log entry {} is not validly signed by its founder or is malformed", hex(.id))]
    BadLogEntry { id: MessageId },
}

/// Why a local request failed.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the message is empty")]
    EmptyText,
    #[error("the message is {len} bytes, the limit is {max}")]
    TextTooLong { len: usize, max: usize },
    #[error("a direct message to yourself has nowhere to go")]
    ToSelf,
    #[error("the identity given to sign is not this chat's identity")]
    WrongIdentity,
    #[error("cannot make a message id: {0}")]
    Random(#[from] IdentityError),
    #[error("the new message id is already taken")]
    IdCollision,
    #[error("the signer returned fewer signed posts than it was given")]
    Unsigned,
    #[error("{0:?} is not a message id: give its short id (4 to 20 hex digits) or all 32 digits")]
    BadIdPrefix(String),
    #[error("you are not a member of that room")]
    NotAMember,
    /// A member whose envelope for the current epoch did not open.
    #[error(
        "the room key its founder sealed to you does not open, so you can neither read nor post \
         there: ask the founder to remove you and invite you again"
    )]
    NoRoomKey,
    #[error("only the room's founder can change who is in it")]
    NotFounder,
    #[error("{0}")]
    Membership(String),
    #[error(transparent)]
    RoomKey(#[from] room_keys::RoomKeyError),
}

/// Counters since this [`Chat`] was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatStats {
    /// Messages received and stored for the first time.
    pub received: u64,
    /// Messages received that were already stored.
    pub duplicates: u64,
    /// Frames dropped for breaking a rule.
    pub rejected: u64,
    /// Public message frames forwarded to other peers.
    pub relayed: u64,
    /// Acks that removed an outbox row.
    pub delivered: u64,
    /// Signed messages dropped because their (author, id) was held with
    /// other content.
    pub collisions: u64,
    /// New messages of strangers refused for being over the quota.
    pub over_quota: u64,
    /// Posts to invite-only rooms refused: unknown room, author not a
    /// member, a stale epoch, or (for a member) not decrypting.
    pub sealed_refused: u64,
}

/// Whether [`Chat::on_frames`] handles this kind of frame.
pub fn is_chat_frame(frame: &Frame) -> bool {
    matches!(
        frame,
        Frame::Public(_)
            | Frame::RoomPost(_)
            | Frame::SealedPost(_)
            | Frame::RoomControl(_)
            | Frame::Direct(_)
            | Frame::Ack(_)
            | Frame::SyncRequest(_)
    )
}

/// Why a text may not be sent (the receiving side maps these to violations).
fn check_text(text: &str) -> Result<(), ChatError> {
    if text.len() > MAX_TEXT_LEN {
        return Err(ChatError::TextTooLong {
            len: text.len(),
            max: MAX_TEXT_LEN,
        });
    }
    if text.trim().is_empty() {
        return Err(ChatError::EmptyText);
    }
    Ok(())
}

/// The bytes an author signs for a public message (after the domain).
fn signed_public_bytes(
    id: &MessageId,
    author: &IdentityKey,
    timestamp_ms: u64,
    text: &str,
) -> Vec<u8> {
    encode(&SignedPublic {
        id,
        author,
        timestamp_ms,
        text,
    })
}

/// Sign a public message as `local`.
pub fn sign_public(
    local: &LocalIdentity,
    id: MessageId,
    timestamp_ms: u64,
    text: String,
) -> PublicMessage {
    let author = local.identity_key();
    let signature = local.sign(
        domain::PUBLIC_MESSAGE,
        &signed_public_bytes(&id, &author, timestamp_ms, &text),
    );
    PublicMessage {
        id,
        author,
        timestamp_ms,
        text,
        signature,
    }
}

/// Check a public message's signature by its author (strict).
pub fn verify_public(m: &PublicMessage) -> Result<(), IdentityError> {
    m.author.verify(
        domain::PUBLIC_MESSAGE,
        &signed_public_bytes(&m.id, &m.author, m.timestamp_ms, &m.text),
        &m.signature,
    )
}

/// A room item as stored: `outgoing` if `local` wrote it. `text` is the
/// clear text of a sealed post for a member, empty for everyone else.
fn stored_post(p: &SignedPost, local: IdentityKey, received_ms: u64, text: &str) -> StoredMessage {
    StoredMessage {
        id: p.id(),
        conversation: match p {
            SignedPost::Legacy(_) => ConversationKey::Public,
            SignedPost::Room(_) | SignedPost::Sealed(_) => ConversationKey::Room(p.room().0),
            SignedPost::Control(_) => ConversationKey::RoomControl(p.room().0),
        },
        author: p.author().0,
        timestamp_ms: p.timestamp_ms(),
        text: p.text().unwrap_or(text).to_owned(),
        signature: Some(p.signature().0),
        outgoing: p.author() == local,
        received_ms,
        wire: p.wire(),
    }
}

/// A stored room message as it travels, in the form it was signed in, if
/// it can be relayed (signed).
fn post_from_stored(m: StoredMessage) -> Option<SignedPost> {
    if let Some(wire) = &m.wire {
        return SignedPost::from_wire(wire);
    }
    let signature = SignatureBytes(m.signature?);
    let (id, author, timestamp_ms, text) = (m.id, IdentityKey(m.author), m.timestamp_ms, m.text);
    match m.conversation {
        ConversationKey::Public => Some(SignedPost::Legacy(Box::new(PublicMessage {
            id,
            author,
            timestamp_ms,
            text,
            signature,
        }))),
        ConversationKey::Room(room) => Some(SignedPost::Room(Box::new(crate::wire::RoomPost {
            room: RoomId(room),
            id,
            author,
            timestamp_ms,
            text,
            signature,
        }))),
        ConversationKey::Direct(_) | ConversationKey::RoomControl(_) => None,
    }
}

/// What is already held under a received message's (author, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    New,
    /// The same message again: acked, not stored twice.
    Same,
    /// Another message under the same (author, id): never acked.
    Different,
}

/// Whether `m`'s (author, id) is new, or already held (earlier in this
/// batch, or `stored`: what the store held before the batch) with the same
/// content or with other content.
fn seen(
    batch: &BatchIndex,
    incoming: &[(StoredMessage, Option<SignedPost>)],
    stored: Option<&StoredMessage>,
    m: &StoredMessage,
) -> Seen {
    match in_batch(batch, incoming, IdentityKey(m.author), m.id).or(stored) {
        None => Seen::New,
        Some(h) if same_content(h, m) => Seen::Same,
        Some(_) => Seen::Different,
    }
}

/// Where each new message of a received batch is in its list, by
/// (author, id).
type BatchIndex = HashMap<(IdentityKey, MessageId), usize>;

/// The message of this batch stored under (`author`, `id`), if any.
fn in_batch<'a>(
    batch: &BatchIndex,
    incoming: &'a [(StoredMessage, Option<SignedPost>)],
    author: IdentityKey,
    id: MessageId,
) -> Option<&'a StoredMessage> {
    let at = *batch.get(&(author, id))?;
    incoming.get(at).map(|(m, _)| m)
}

/// A chat frame of a received batch, after its wire checks. Items live
/// for one batch; boxing the large variant would cost an allocation per
/// message instead.
#[allow(clippy::large_enum_variant)]
enum Item {
    /// A frame that breaks a limit: a violation, in its place in the batch.
    Invalid(WireError),
    /// A room item, with what the store held under its (author, id).
    Signed(SignedPost, Option<StoredMessage>),
    /// `Direct`, `Ack`, `SyncRequest`.
    Other(Frame),
}

/// The signed room items of a batch whose signatures must be checked, by
/// item index: every one not held already with the same signature and
/// timestamp (rule 3: a copy of what is stored needs no second check).
fn to_check(items: &[Item]) -> Vec<(usize, &SignedPost)> {
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| match item {
            Item::Signed(post, held) => {
                let same = held.as_ref().is_some_and(|h| {
                    h.signature == Some(post.signature().0) && h.timestamp_ms == post.timestamp_ms()
                });
                (!same).then_some((i, post))
            }
            Item::Invalid(_) | Item::Other(_) => None,
        })
        .collect()
}

/// The direct messages of a batch after the insert: ids of the new ones,
/// and those whose (author, id) was already held.
#[derive(Default)]
struct DirectOutcome {
    new: Vec<MessageId>,
    held: Vec<StoredMessage>,
}

/// Two stored messages of one (author, id) say the same thing.
fn same_content(a: &StoredMessage, b: &StoredMessage) -> bool {
    a.conversation == b.conversation
        && a.timestamp_ms == b.timestamp_ms
        && a.text == b.text
        && a.signature == b.signature
        && a.wire == b.wire
}

/// The ids to ack for one batch, in order, each once: acks name bare ids,
/// so two authors' messages with one id need one ack.
struct AckList {
    ids: Vec<MessageId>,
    seen: HashSet<MessageId>,
}

impl AckList {
    fn with_capacity(n: usize) -> Self {
        AckList {
            ids: Vec::with_capacity(n),
            seen: HashSet::with_capacity(n),
        }
    }

    fn push(&mut self, id: MessageId) {
        if self.seen.insert(id) {
            self.ids.push(id);
        }
    }
}

/// Checks shared by received public and direct messages, after
/// [`Frame::validate`].
fn check_received(id: &MessageId, timestamp_ms: u64, text: &str) -> Result<(), Violation> {
    if text.trim().is_empty() {
        return Err(Violation::BlankText { id: *id });
    }
    if timestamp_ms > MAX_TIMESTAMP_MS {
        return Err(Violation::TimestampOutOfRange {
            id: *id,
            timestamp_ms,
        });
    }
    Ok(())
}

/// An outbox page sent to a peer and not fully acked yet.
#[derive(Debug)]
struct ResendPage {
    waiting: HashSet<MessageId>,
    more: bool,
}

/// One peer's token bucket for catch-up answers, in bytes.
#[derive(Debug, Clone, Copy)]
struct SyncBudget {
    tokens: u64,
    at_ms: u64,
}

impl SyncBudget {
    fn full(now_ms: u64) -> Self {
        SyncBudget {
            tokens: SYNC_BURST_BYTES,
            at_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.at_ms);
        let gained = elapsed.saturating_mul(SYNC_RATE_BYTES_PER_S) / 1000;
        self.tokens = self.tokens.saturating_add(gained).min(SYNC_BURST_BYTES);
        self.at_ms = self.at_ms.max(now_ms);
    }

    fn allows_a_page(&mut self, now_ms: u64) -> bool {
        self.refill(now_ms);
        self.tokens >= SYNC_PAGE_COST
    }

    fn spend(&mut self, bytes: usize) {
        self.tokens = self.tokens.saturating_sub(bytes as u64);
    }

    /// When the bucket will hold a page's worth again.
    fn page_due_ms(&self) -> u64 {
        let missing = SYNC_PAGE_COST.saturating_sub(self.tokens);
        self.at_ms + missing.saturating_mul(1000).div_ceil(SYNC_RATE_BYTES_PER_S)
    }
}

/// A catch-up in progress with one peer (see "Paging").
#[derive(Debug)]
struct SyncProgress {
    since_ms: u64,
    /// The requester's clock when it first asked.
    until_ms: u64,
    count: usize,
    bytes: usize,
    newest_ms: u64,
}

impl SyncProgress {
    fn new(since_ms: u64, until_ms: u64) -> Self {
        SyncProgress {
            since_ms,
            until_ms,
            count: 0,
            bytes: 0,
            newest_ms: since_ms,
        }
    }

    fn count(&mut self, m: &SignedPost) {
        let t = m.timestamp_ms();
        if (self.since_ms..=self.until_ms).contains(&t) {
            self.count += 1;
            self.bytes += m.size();
            self.newest_ms = self.newest_ms.max(t);
        }
    }

    fn page_may_be_full(&self) -> bool {
        self.count >= SYNC_MAX_MESSAGES || self.bytes + MAX_TEXT_LEN > SYNC_MAX_BYTES
    }
}

/// The chat core of one node. See the module documentation for the rules.
#[derive(Debug)]
pub struct Chat {
    store: Box<dyn ChatStore>,
    /// [`Chat::outbox_recipients`]'s last answer and when it was computed.
    recipients: Option<(u64, Vec<[u8; 32]>)>,
    next_outbox_expiry_ms: u64,
    /// New identities recorded since the trust store was last pruned, and
    /// when the next pruning is due regardless.
    new_peers_since_prune: u32,
    next_prune_ms: u64,
    /// Identities the last pruning forgot, for the node's directory.
    pruned: Vec<IdentityKey>,
    /// Per peer: how many bytes of catch-up answers it may still get now,
    /// and its latest request still waiting for that budget.
    sync_budget: HashMap<IdentityKey, SyncBudget>,
    deferred_sync: HashMap<IdentityKey, u64>,
    /// Peers whose link has more than [`SYNC_BACKLOG_LIMIT`] unwritten:
    /// no catch-up answer is built for them until it drains.
    backlogged: HashSet<IdentityKey>,
    /// What strangers may still add to history today.
    quota: Quota,
    /// Bound keys of peers that completed a handshake this run (what an
    /// invitation carries), at most [`MAX_KNOWN_KEYS`].
    known_keys: HashMap<IdentityKey, BoundKeys>,
    /// The key learnt last, the one a new key replaces when the map is
    /// full.
    newest_known_key: Option<IdentityKey>,
    /// Invite-only rooms, replayed from their stored membership logs.
    private: PrivateRooms,
    /// Checks the signatures of a batch of received room items.
    checker: Box<dyn SignatureCheck>,

    local: IdentityKey,
    resend: HashMap<IdentityKey, ResendPage>,
    sync: HashMap<IdentityKey, SyncProgress>,
    stats: ChatStats,
}

impl Chat {
    /// The chat core of the node whose identity is `local`, over `store`,
    /// with the default stranger quota.
    pub fn new(store: Box<dyn ChatStore>, local: IdentityKey) -> Self {
        Chat::with_quota(store, local, QuotaLimits::default())
    }

    /// The same with other limits on what strangers may add.
    pub fn with_quota(store: Box<dyn ChatStore>, local: IdentityKey, limits: QuotaLimits) -> Self {
        Chat {
            store,
            recipients: None,
            next_outbox_expiry_ms: 0,
            new_peers_since_prune: 0,
            next_prune_ms: 0,
            pruned: Vec::new(),
            sync_budget: HashMap::new(),
            deferred_sync: HashMap::new(),
            backlogged: HashSet::new(),
            quota: Quota::new(limits),
            private: PrivateRooms::default(),
            checker: Box::new(OneByOne),
            known_keys: HashMap::new(),
            newest_known_key: None,

            local,
            resend: HashMap::new(),
            sync: HashMap::new(),
            stats: ChatStats::default(),
        }
    }

    pub fn store(&self) -> &dyn ChatStore {
        self.store.as_ref()
    }

    /// Give up the chat core, keeping its store.
    pub fn into_store(self) -> Box<dyn ChatStore> {
        self.store
    }

    /// Writes go through the chat core's own methods; tests reach in.
    #[cfg(test)]
    pub(crate) fn store_mut(&mut self) -> &mut dyn ChatStore {
        self.store.as_mut()
    }

    pub fn local(&self) -> IdentityKey {
        self.local
    }

    pub fn stats(&self) -> ChatStats {
        self.stats
    }

    /// Records a peer in the trust store (see [`ChatStore::upsert_peer_seen`]);
    /// known peers get an outbox row for every later public message. The
    /// keys must be authenticated (binding checked) and the nickname
    /// sanitised by the caller. The local identity is never recorded.
    /// Returns whether the identity was new.
    pub fn peer_seen(
        &mut self,
        now_ms: u64,
        keys: &BoundKeys,
        nickname: &str,
        addr: Option<&str>,
    ) -> Result<bool, ChatError> {
        self.recipients = None;
        if keys.identity == self.local {
            return Ok(false);
        }
        let new =
            self.store
                .upsert_peer_seen(&keys.identity.0, &keys.noise.0, nickname, now_ms, addr)?;
        self.remember_keys(*keys);
        if new {
            self.new_peers_since_prune += 1;
        }
        if self.new_peers_since_prune >= PRUNE_EVERY_NEW_PEERS || now_ms >= self.next_prune_ms {
            self.prune(now_ms)?;
        }
        Ok(new)
    }

    /// Bounds the trust store: unverified peers unseen for
    /// [`UNVERIFIED_PEER_TTL_MS`] and those beyond the best
    /// [`MAX_UNVERIFIED_PEERS`] by [`store::peer_rank`] are forgotten (see
    /// [`Chat::take_pruned`]).
    fn prune(&mut self, now_ms: u64) -> Result<(), ChatError> {
        self.new_peers_since_prune = 0;
        self.next_prune_ms = now_ms.saturating_add(OUTBOX_EXPIRY_EVERY_MS);
        let cutoff = now_ms.saturating_sub(UNVERIFIED_PEER_TTL_MS);
        let gone = self.store.prune_peers(cutoff, MAX_UNVERIFIED_PEERS)?;
        self.pruned.extend(gone.into_iter().map(IdentityKey));
        Ok(())
    }

    /// The identities pruning forgot since the last call.
    pub fn take_pruned(&mut self) -> Vec<IdentityKey> {
        std::mem::take(&mut self.pruned)
    }

    /// An authenticated link to `peer` is up: the first page of its outbox
    /// (oldest first) to resend, then a `SyncRequest` for the public room.
    pub fn on_link_up(&mut self, now_ms: u64, peer: IdentityKey) -> Result<Vec<Frame>, ChatError> {
        let mut frames = self.resend_page(peer)?;
        let floor = now_ms.saturating_sub(SYNC_WINDOW_MS);
        let since_ms = match self.store.newest_public_timestamp(now_ms)? {
            Some(newest) => newest.saturating_sub(SYNC_SLACK_MS).max(floor),
            None => floor,
        };
        self.sync.insert(peer, SyncProgress::new(since_ms, now_ms));
        frames.push(Frame::SyncRequest(SyncRequest { since_ms }));
        Ok(frames)
    }

    /// The link to `peer` is gone: forget the paging state kept for it.
    pub fn on_link_down(&mut self, peer: IdentityKey) {
        self.resend.remove(&peer);
        self.sync.remove(&peer);
        self.deferred_sync.remove(&peer);
        self.sync_budget.remove(&peer);
        self.backlogged.remove(&peer);
    }

    /// Whether `peer`'s link has more than [`SYNC_BACKLOG_LIMIT`] bytes
    /// unwritten. While it does, its catch-up requests wait: a peer that
    /// does not read gets no answer beyond what already waits for it.
    /// Returns whether the state changed.
    pub fn set_backlogged(&mut self, peer: IdentityKey, backlogged: bool) -> bool {
        if backlogged {
            self.backlogged.insert(peer)
        } else {
            self.backlogged.remove(&peer)
        }
    }

    /// The next page of `peer`'s outbox as frames, remembering what awaits
    /// an ack.
    fn resend_page(&mut self, peer: IdentityKey) -> Result<Vec<Frame>, ChatError> {
        let queued = self.store.outbox_for_peer(&peer.0, RESEND_PAGE)?;
        let more = queued.len() == RESEND_PAGE;
        let mut waiting = HashSet::with_capacity(queued.len());
        let mut frames = Vec::with_capacity(queued.len() + 1);
        for m in queued {
            let id = m.id;
            // Rows this core did not write (a public message without a
            // signature, a direct message for someone else) cannot be sent;
            // they stay in the outbox.
            let frame = match m.conversation {
                ConversationKey::Direct(to) if to == peer.0 && m.author == self.local.0 => {
                    Frame::Direct(DirectMessage {
                        id,
                        timestamp_ms: m.timestamp_ms,
                        text: m.text,
                    })
                }
                ConversationKey::Direct(_) => continue,
                ConversationKey::Public
                | ConversationKey::Room(_)
                | ConversationKey::RoomControl(_) => match post_from_stored(m) {
                    Some(post) => post.into_frame(),
                    None => continue,
                },
            };
            waiting.insert(id);
            frames.push(frame);
        }
        self.resend.insert(peer, ResendPage { waiting, more });
        Ok(frames)
    }

    /// Handles one frame from `from`; see [`Chat::on_frames`].
    pub fn on_frame(
        &mut self,
        now_ms: u64,
        from: IdentityKey,
        frame: Frame,
        connected: &(impl Linked + ?Sized),
    ) -> Result<Actions, ChatError> {
        self.on_frames(now_ms, from, vec![frame], connected)
    }

    /// Handles frames that arrived, in this order, on the authenticated link
    /// to `from`, while the node has links to `connected` (which may or may
    /// not include `from`). All new messages are stored in one transaction
    /// and all acks applied in another, before anything is returned; the
    /// returned acks may therefore be sent at once. Signatures are checked
    /// here, by the [`SignatureCheck`].
    pub fn on_frames(
        &mut self,
        now_ms: u64,
        from: IdentityKey,
        frames: Vec<Frame>,
        connected: &(impl Linked + ?Sized),
    ) -> Result<Actions, ChatError> {
        let items = self.items(frames)?;
        // Signatures first, all at once: the checker may spread them over
        // cores. Only items not already held identically need one.
        let verified = self.verify_batch(&items);
        self.take_items(now_ms, from, items, &verified, connected)
    }

    /// The signatures a batch of frames needs checked, by the index of the
    /// frame among the batch's chat frames: what the caller checks
    /// elsewhere (off its thread) before handing the same frames to
    /// [`Chat::on_checked_frames`]. Room items already held with the same
    /// content need none.
    pub fn signatures_to_check(
        &self,
        frames: &[Frame],
    ) -> Result<Vec<(usize, SignedPost)>, ChatError> {
        let items = self.items(frames.to_vec())?;
        Ok(to_check(&items)
            .into_iter()
            .map(|(i, post)| (i, post.clone()))
            .collect())
    }

    /// [`Chat::on_frames`] for a batch whose signatures were checked
    /// elsewhere: `checked` holds the verdicts by the index
    /// [`Chat::signatures_to_check`] gave. A signature it lacks (say the
    /// store changed in between) is checked here, so a verdict is never
    /// skipped, only moved.
    pub fn on_checked_frames(
        &mut self,
        now_ms: u64,
        from: IdentityKey,
        frames: Vec<Frame>,
        checked: &HashMap<usize, bool>,
        connected: &(impl Linked + ?Sized),
    ) -> Result<Actions, ChatError> {
        let items = self.items(frames)?;
        self.take_items(now_ms, from, items, checked, connected)
    }

    /// A batch's chat frames after their wire checks, each with what the
    /// store holds under its (author, id): one item per chat frame, in
    /// order (other frames are not the chat core's and are left out).
    fn items(&self, frames: Vec<Frame>) -> Result<Vec<Item>, ChatError> {
        let mut items = Vec::with_capacity(frames.len());
        // The (author, id) of each signed item, in order: what the store
        // holds is looked up for the whole batch at once, below.
        let mut keys: Vec<(store::IdentityBytes, MessageId)> = Vec::new();
        for frame in frames {
            if !is_chat_frame(&frame) {
                continue;
            }
            let m = match frame.validate() {
                Err(e) => {
                    items.push(Item::Invalid(e));
                    continue;
                }
                Ok(()) => match frame {
                    Frame::Public(m) => SignedPost::Legacy(m),
                    Frame::RoomPost(p) => SignedPost::Room(p),
                    Frame::SealedPost(p) => SignedPost::Sealed(p),
                    Frame::RoomControl(c) => SignedPost::Control(c),
                    other => {
                        items.push(Item::Other(other));
                        continue;
                    }
                },
            };
            keys.push((m.author().0, m.id()));
            items.push(Item::Signed(m, None));
        }
        let answers = self.store.get_messages(&keys)?;
        if answers.len() != keys.len() {
            return Err(ChatError::Store(StoreError::ShortAnswer {
                asked: keys.len(),
                got: answers.len(),
            }));
        }
        let signed = items.iter_mut().filter_map(|item| match item {
            Item::Signed(_, held) => Some(held),
            _ => None,
        });
        for (held, answer) in signed.zip(answers) {
            *held = answer;
        }
        Ok(items)
    }

    /// The rules of [`Chat::on_frames`] applied to a batch's items, with
    /// the signature verdicts known so far.
    fn take_items(
        &mut self,
        now_ms: u64,
        from: IdentityKey,
        items: Vec<Item>,
        verified: &HashMap<usize, bool>,
        connected: &(impl Linked + ?Sized),
    ) -> Result<Actions, ChatError> {
        let mut actions = Actions::default();
        // Messages to store, with the public frame to relay if new.
        let mut incoming: Vec<(StoredMessage, Option<SignedPost>)> = Vec::new();
        // (author, id) → where in `incoming`, for the messages of this
        // batch (an index, not a copy of each message and its text).
        let mut batch = BatchIndex::with_capacity(items.len());
        let mut to_ack = AckList::with_capacity(items.len());
        let mut acked: Vec<MessageId> = Vec::new();
        let mut sync_requests: Vec<u64> = Vec::new();

        for (index, item) in items.into_iter().enumerate() {
            let frame = match item {
                Item::Invalid(e) => {
                    self.reject(&mut actions, e.into());
                    continue;
                }
                Item::Signed(m, held) => Ok((m, held)),
                Item::Other(f) => Err(f),
            };
            match frame {
                Ok((m, held)) => {
                    if let Err(v) =
                        check_received(&m.id(), m.timestamp_ms(), m.text().unwrap_or("x"))
                    {
                        self.reject(&mut actions, v);
                        continue;
                    }
                    // An invite-only room takes sealed posts only: a
                    // clear-text post under its id is refused (no password
                    // room that accepts plaintext).
                    if let SignedPost::Room(p) = &m {
                        if self.private.contains(&p.room) {
                            self.stats.sealed_refused += 1;
                            continue;
                        }
                    }
                    // A sealed post is taken only from a member of a room
                    // we know, at its current epoch; a member also reads it.
                    let text = match &m {
                        SignedPost::Sealed(p) => match self.open_sealed(p) {
                            Some(text) => text,
                            None => {
                                self.stats.sealed_refused += 1;
                                continue;
                            }
                        },
                        _ => String::new(),
                    };
                    let stored = stored_post(&m, self.local, now_ms, &text);
                    let seen = seen(&batch, &incoming, held.as_ref(), &stored);
                    // Only a message that would be stored, or one that
                    // differs from what is stored under its (author, id),
                    // needs its signature checked (rule 3).
                    let valid = || match verified.get(&index) {
                        Some(v) => *v,
                        None => m.verify().is_ok(),
                    };
                    if seen != Seen::Same && !valid() {
                        let v = match &m {
                            SignedPost::Control(_) => Violation::BadLogEntry { id: m.id() },
                            _ => Violation::BadSignature {
                                id: m.id(),
                                author: m.author(),
                            },
                        };
                        self.reject(&mut actions, v);
                        continue;
                    }
                    if seen == Seen::Different {
                        // The author signed two messages with one id:
                        // neither stored twice nor acked.
                        self.collision(&mut actions, from, &stored);
                        continue;
                    }
                    if let Some(progress) = self.sync.get_mut(&from) {
                        progress.count(&m);
                    }
                    if seen == Seen::New
                        && !self.admit(now_ms, m.author(), m.size(), from, &mut actions)?
                    {
                        continue;
                    }
                    to_ack.push(m.id());
                    if seen == Seen::New {
                        batch.insert((m.author(), m.id()), incoming.len());
                        incoming.push((stored, Some(m)));
                    } else {
                        self.stats.duplicates += 1;
                    }
                }
                Err(Frame::Direct(m)) => {
                    if let Err(v) = check_received(&m.id, m.timestamp_ms, &m.text) {
                        self.reject(&mut actions, v);
                        continue;
                    }
                    let stored = StoredMessage {
                        id: m.id,
                        conversation: ConversationKey::Direct(from.0),
                        author: from.0,
                        timestamp_ms: m.timestamp_ms,
                        text: m.text,
                        signature: None,
                        outgoing: false,
                        received_ms: now_ms,
                        wire: None,
                    };
                    // Not looked up first: the insert tells a new message
                    // from a held one, and only held ones are compared
                    // (after the commit, in `settle_directs`).
                    match in_batch(&batch, &incoming, from, m.id) {
                        None => {
                            if !self.admit(now_ms, from, stored.text.len(), from, &mut actions)? {
                                continue;
                            }
                            batch.insert((from, m.id), incoming.len());
                            incoming.push((stored, None));
                        }
                        Some(b) if same_content(b, &stored) => {
                            to_ack.push(m.id);
                            self.stats.duplicates += 1;
                        }
                        Some(_) => self.reject(&mut actions, Violation::IdReused { id: m.id }),
                    }
                }
                Err(Frame::Ack(ids)) => acked.extend(ids),
                Err(Frame::SyncRequest(r)) => sync_requests.push(r.since_ms),
                Err(_) => {}
            }
        }

        let held = self.store_incoming(from, incoming, connected, &mut actions)?;
        self.settle_directs(from, held, &mut to_ack, &mut actions)?;
        for ids in to_ack.ids.chunks(MAX_ACK_IDS) {
            actions.send.push((from, Frame::Ack(ids.to_vec())));
        }
        self.apply_acks(now_ms, from, &acked, &mut actions)?;
        self.continue_sync(from, &mut actions);
        // One answer per batch (the last request), and answers to one peer
        // are paced in bytes per second: a message full of SyncRequests, or
        // one per segment from a peer that never reads, cannot make us
        // build answers faster than SYNC_RATE_BYTES_PER_S. A request that
        // finds the budget short waits (the latest one per peer) and is
        // answered by `handle_timeout`.
        if let Some(since_ms) = sync_requests.last().copied() {
            self.deferred_sync.insert(from, since_ms);
            self.answer_deferred_sync(now_ms, from, &mut actions)?;
        }
        Ok(actions)
    }

    /// The signature checks of a batch's signed room items that are not
    /// held already with the same content, by item index, done by the
    /// [`SignatureCheck`] (which may use every core).
    fn verify_batch(&self, items: &[Item]) -> HashMap<usize, bool> {
        let todo = to_check(items);
        if todo.len() < 2 {
            return HashMap::new();
        }
        let posts: Vec<&SignedPost> = todo.iter().map(|(_, p)| *p).collect();
        let results = self.checker.verify_all(&posts);
        todo.iter().map(|(i, _)| *i).zip(results).collect()
    }

    /// Spread signature checks with this checker (the application's uses
    /// every core; the default checks one after another).
    pub fn set_signature_check(&mut self, checker: Box<dyn SignatureCheck>) {
        self.checker = checker;
    }

    /// Whether a new message by `author` fits the stranger quota; reports
    /// the first refusal per author and window.
    fn admit(
        &mut self,
        now_ms: u64,
        author: IdentityKey,
        size: usize,
        via: IdentityKey,
        actions: &mut Actions,
    ) -> Result<bool, ChatError> {
        let verdict = self
            .quota
            .admit(now_ms, author, size, self.local, self.store.as_ref())?;
        match verdict {
            Admission::Admitted => Ok(true),
            Admission::Refused { first } => {
                self.stats.over_quota += 1;
                if first {
                    actions.events.push(ChatEvent::OverQuota { author, via });
                }
                Ok(false)
            }
        }
    }

    /// Answers `peer`'s waiting catch-up request if its budget allows.
    fn answer_deferred_sync(
        &mut self,
        now_ms: u64,
        peer: IdentityKey,
        actions: &mut Actions,
    ) -> Result<(), ChatError> {
        let Some(&since_ms) = self.deferred_sync.get(&peer) else {
            return Ok(());
        };
        if self.backlogged.contains(&peer) {
            return Ok(());
        }
        let budget = self
            .sync_budget
            .entry(peer)
            .or_insert_with(|| SyncBudget::full(now_ms));
        if !budget.allows_a_page(now_ms) {
            return Ok(());
        }
        self.deferred_sync.remove(&peer);
        let answer = self.sync_answer(now_ms, since_ms)?;
        let cost: usize = answer.iter().map(|m| m.size() + SYNC_FRAME_OVERHEAD).sum();
        if let Some(b) = self.sync_budget.get_mut(&peer) {
            b.spend(cost);
        }
        for m in answer {
            actions.send.push((peer, m.into_frame()));
        }
        Ok(())
    }

    /// When a waiting catch-up request can next be answered (wall clock,
    /// the `now_ms` the chat core is fed).
    pub fn poll_timeout(&self) -> Option<u64> {
        self.deferred_sync
            .keys()
            .filter(|p| !self.backlogged.contains(*p))
            .filter_map(|p| self.sync_budget.get(p))
            .map(SyncBudget::page_due_ms)
            .min()
    }

    /// Answers the waiting catch-up requests whose budget has refilled.
    pub fn handle_timeout(&mut self, now_ms: u64) -> Result<Actions, ChatError> {
        let mut actions = Actions::default();
        let waiting: Vec<IdentityKey> = self.deferred_sync.keys().copied().collect();
        for peer in waiting {
            self.answer_deferred_sync(now_ms, peer, &mut actions)?;
        }
        Ok(actions)
    }

    /// Whether `m`'s (author, id) is new, or already held (in this batch or
    /// in the store) with the same content or with other content.
    fn collision(&mut self, actions: &mut Actions, from: IdentityKey, m: &StoredMessage) {
        self.stats.collisions += 1;
        actions.events.push(ChatEvent::Collision {
            author: IdentityKey(m.author),
            id: m.id,
            via: from,
        });
    }

    fn reject(&mut self, actions: &mut Actions, violation: Violation) {
        self.stats.rejected += 1;
        actions.rejected.push(violation);
    }

    /// Stores the new messages of a batch in one transaction, then reports
    /// and relays the ones that were really new.
    /// Returns what [`Chat::settle_directs`] decides about the direct
    /// messages: the ids of the new ones, and the ones already held.
    fn store_incoming(
        &mut self,
        from: IdentityKey,
        incoming: Vec<(StoredMessage, Option<SignedPost>)>,
        connected: &(impl Linked + ?Sized),
        actions: &mut Actions,
    ) -> Result<DirectOutcome, ChatError> {
        let mut out = DirectOutcome::default();
        if incoming.is_empty() {
            return Ok(out);
        }
        let (stored, relays): (Vec<StoredMessage>, Vec<Option<SignedPost>>) =
            incoming.into_iter().unzip();
        let new = self.store.insert_messages(&stored)?;
        // Listed once, and only if something is relayed.
        let mut linked_now: Option<Vec<IdentityKey>> = None;
        for ((m, relay), is_new) in stored.into_iter().zip(relays).zip(new) {
            let direct = relay.is_none() && m.conversation.room().is_none();
            if !is_new {
                if direct {
                    out.held.push(m);
                } else {
                    self.stats.duplicates += 1;
                }
                continue;
            }
            self.stats.received += 1;
            if direct {
                out.new.push(m.id);
                actions
                    .events
                    .push(ChatEvent::Received(MessageView::new(m, 0)));
                continue;
            }
            if let Some(SignedPost::Control(c)) = &relay {
                let changes = self.take_control(c.as_ref().clone())?;
                actions
                    .events
                    .extend(changes.into_iter().map(ChatEvent::RoomChanged));
            }
            if let Some(post) = relay {
                let author = post.author();
                let shown = !matches!(post, SignedPost::Control(_));
                let frame = post.into_frame();
                for &peer in linked_now.get_or_insert_with(|| connected.linked()).iter() {
                    if peer != from && peer != author && peer != self.local {
                        self.stats.relayed += 1;
                        actions.send.push((peer, frame.clone()));
                    }
                }
                // Log entries are not messages; sealed posts we cannot
                // read (not a member) show nothing either.
                if !shown || m.text.is_empty() {
                    continue;
                }
            }
            actions
                .events
                .push(ChatEvent::Received(MessageView::new(m, 0)));
        }
        Ok(out)
    }

    /// Direct messages from `from` whose id it had used already: a resend
    /// of the same message is acked, other content under that id is a
    /// violation and not acked. New ones stored this batch are acked too.
    fn settle_directs(
        &mut self,
        from: IdentityKey,
        outcome: DirectOutcome,
        to_ack: &mut AckList,
        actions: &mut Actions,
    ) -> Result<(), ChatError> {
        for id in outcome.new {
            to_ack.push(id);
        }
        for m in outcome.held {
            match self.store.get_message(&from.0, &m.id)? {
                Some(h) if same_content(&h, &m) => {
                    self.stats.duplicates += 1;
                    to_ack.push(m.id);
                }
                _ => self.reject(actions, Violation::IdReused { id: m.id }),
            }
        }
        Ok(())
    }

    /// Applies the acks `from` sent, reports deliveries and sends the next
    /// outbox page once the current one is fully acked.
    fn apply_acks(
        &mut self,
        now_ms: u64,
        from: IdentityKey,
        acked: &[MessageId],
        actions: &mut Actions,
    ) -> Result<(), ChatError> {
        if acked.is_empty() {
            return Ok(());
        }
        let removed = self.store.outbox_ack(&from.0, acked, now_ms)?;
        self.stats.delivered += removed.len() as u64;
        actions.events.extend(
            removed
                .into_iter()
                .map(|id| ChatEvent::Delivered { id, peer: from }),
        );
        let Some(page) = self.resend.get_mut(&from) else {
            return Ok(());
        };
        for id in acked {
            page.waiting.remove(id);
        }
        if page.waiting.is_empty() {
            let more = page.more;
            self.resend.remove(&from);
            if more {
                for frame in self.resend_page(from)? {
                    actions.send.push((from, frame));
                }
            }
        }
        Ok(())
    }

    /// Asks `from` for the next catch-up page if the last one may have been
    /// cut short by the limits.
    fn continue_sync(&mut self, from: IdentityKey, actions: &mut Actions) {
        let Some(progress) = self.sync.get_mut(&from) else {
            return;
        };
        if !progress.page_may_be_full() {
            return;
        }
        if progress.newest_ms > progress.since_ms {
            let since_ms = progress.newest_ms;
            *progress = SyncProgress::new(since_ms, progress.until_ms);
            actions
                .send
                .push((from, Frame::SyncRequest(SyncRequest { since_ms })));
        } else {
            self.sync.remove(&from);
        }
    }

    /// The answer to `SyncRequest { since_ms }` (rule 6).
    fn sync_answer(&self, now_ms: u64, since_ms: u64) -> Result<Vec<SignedPost>, ChatError> {
        let since_ms = since_ms.max(now_ms.saturating_sub(SYNC_WINDOW_MS));
        let mut bytes = 0usize;
        let mut out = Vec::new();
        let until_ms = now_ms.saturating_add(store::MAX_CLOCK_SKEW_MS);
        let signed = self
            .store
            .public_since(since_ms, until_ms, SYNC_MAX_MESSAGES)?;
        for m in signed.into_iter().filter_map(post_from_stored) {
            bytes += m.size();
            if bytes > SYNC_MAX_BYTES && !out.is_empty() {
                break;
            }
            out.push(m);
        }
        Ok(out)
    }

    /// Posts `text` to the default room: [`Chat::post_room`].
    pub fn post_public(
        &mut self,
        now_ms: u64,
        local: &LocalIdentity,
        text: &str,
        connected: &(impl Linked + ?Sized),
    ) -> Result<(MessageView, Vec<(IdentityKey, Frame)>), ChatError> {
        self.post_room(now_ms, local, default_room(), text, connected)
    }

    /// Posts `text` to `room`: signs it over the room, stores it with an
    /// outbox row for every known peer, and returns it with the frames for
    /// the peers `connected` now. One-item [`Chat::post_many`].
    pub fn post_room(
        &mut self,
        now_ms: u64,
        local: &LocalIdentity,
        room: RoomId,
        text: &str,
        connected: &(impl Linked + ?Sized),
    ) -> Result<(MessageView, Vec<(IdentityKey, Frame)>), ChatError> {
        self.post_one(now_ms, local, Target::Room(room), text, connected)
    }

    /// Sends `text` to `to`: stores it with an outbox row for `to`, and
    /// returns it with the frame to send now if `to` is `connected`.
    pub fn send_direct(
        &mut self,
        now_ms: u64,
        local: &LocalIdentity,
        to: IdentityKey,
        text: &str,
        connected: bool,
    ) -> Result<(MessageView, Option<Frame>), ChatError> {
        let linked: &[IdentityKey] = if connected {
            std::slice::from_ref(&to)
        } else {
            &[]
        };
        let (view, mut frames) = self.post_one(now_ms, local, Target::Direct(to), text, linked)?;
        Ok((view, frames.pop().map(|(_, f)| f)))
    }

    fn post_one(
        &mut self,
        now_ms: u64,
        local: &LocalIdentity,
        to: Target,
        text: &str,
        connected: &(impl Linked + ?Sized),
    ) -> PostResult {
        // Check before the store is touched, as post_many does per item.
        check_text(text)?;
        let items = [(to, text.to_owned())];
        self.post_many(now_ms, local, &items, connected)?
            .pop()
            .unwrap_or(Err(ChatError::IdCollision))
    }

    /// Many posts in one store transaction (group commit): each item is a
    /// room or a peer (direct message), with its text. Returns per item
    /// the stored message and the frames to send now, or why that item was
    /// refused (other items are unaffected). A store failure, or no random
    /// bytes for the ids, fails the whole batch and stores nothing.
    pub fn post_many(
        &mut self,
        now_ms: u64,
        local: &LocalIdentity,
        items: &[(Target, String)],
        connected: &(impl Linked + ?Sized),
    ) -> Result<Vec<PostResult>, ChatError> {
        if local.identity_key() != self.local {
            return Err(ChatError::WrongIdentity);
        }
        let everyone = self.outbox_recipients(now_ms)?;
        // Open-room posts are signed together after this pass, so the
        // signer may spread them over cores; `None` marks their places.
        let mut unsigned: Vec<UnsignedPost> = Vec::new();
        let mut prepared: Vec<Result<Option<Prepared>, ChatError>> = Vec::new();
        // The random part of every id at once: one call to the operating
        // system per burst, not one per message.
        let mut random = vec![[0u8; 16 - ID_CLOCK_BYTES]; items.len()];
        random_bytes(random.as_flattened_mut())?;
        for ((to, text), random) in items.iter().zip(&random) {
            let item = (|| {
                check_text(text)?;
                let id = message_id_at(now_ms, random);
                match to {
                    Target::Room(room) if self.private.contains(room) => {
                        let m = self.seal_post(local, *room, id, now_ms, text)?;
                        Ok(Some((
                            stored_post(&m, self.local, now_ms, text),
                            everyone.clone(),
                            m.into_frame(),
                        )))
                    }
                    Target::Room(room) => {
                        unsigned.push(UnsignedPost {
                            room: *room,
                            id,
                            timestamp_ms: now_ms,
                            text: text.clone(),
                        });
                        Ok(None)
                    }
                    Target::Direct(peer) if *peer == self.local => Err(ChatError::ToSelf),
                    Target::Direct(peer) => {
                        let stored = StoredMessage {
                            id,
                            conversation: ConversationKey::Direct(peer.0),
                            author: self.local.0,
                            timestamp_ms: now_ms,
                            text: text.clone(),
                            signature: None,
                            outgoing: true,
                            received_ms: now_ms,
                            wire: None,
                        };
                        let frame = Frame::Direct(DirectMessage {
                            id,
                            timestamp_ms: now_ms,
                            text: text.clone(),
                        });
                        Ok(Some((stored, vec![peer.0], frame)))
                    }
                }
            })();
            prepared.push(item);
        }
        let mut signed = if unsigned.is_empty() {
            Vec::new()
        } else {
            self.checker.sign_all(local, unsigned)
        }
        .into_iter();
        let prepared: Vec<Result<Prepared, ChatError>> = prepared
            .into_iter()
            .map(|item| match item? {
                Some(ready) => Ok(ready),
                None => {
                    let m = SignedPost::Room(Box::new(signed.next().ok_or(ChatError::Unsigned)?));
                    Ok((
                        stored_post(&m, self.local, now_ms, ""),
                        everyone.clone(),
                        m.into_frame(),
                    ))
                }
            })
            .collect();
        let batch: Vec<(&StoredMessage, &[[u8; 32]])> = prepared
            .iter()
            .filter_map(|p| p.as_ref().ok())
            .map(|(m, r, _)| (m, r.as_slice()))
            .collect();
        let mut inserted = self.store.insert_outgoing_batch(&batch)?.into_iter();
        let mut out = Vec::with_capacity(prepared.len());
        // Listed once, and only for a room post.
        let mut linked_now: Option<Vec<IdentityKey>> = None;
        for (item, (to, _)) in prepared.into_iter().zip(items) {
            out.push(item.and_then(|(stored, _, frame)| {
                if !inserted.next().unwrap_or(false) {
                    return Err(ChatError::IdCollision);
                }
                let targets: Vec<IdentityKey> = match to {
                    Target::Room(_) => linked_now
                        .get_or_insert_with(|| {
                            let mut all = connected.linked();
                            all.retain(|peer| *peer != self.local);
                            all
                        })
                        .clone(),
                    Target::Direct(peer) if connected.is_linked(peer) => vec![*peer],
                    Target::Direct(_) => Vec::new(),
                };
                // The last target takes the frame itself (a direct
                // message's only one): a copy of the text fewer.
                let mut frames = Vec::with_capacity(targets.len());
                if let Some((last, rest)) = targets.split_last() {
                    frames.extend(rest.iter().map(|peer| (*peer, frame.clone())));
                    frames.push((*last, frame));
                }
                Ok((MessageView::new(stored, 0), frames))
            }));
        }
        Ok(out)
    }

    /// Who gets outbox rows for a new public message: at most
    /// [`OUTBOX_MAX_PEERS`] peers seen within [`OUTBOX_PEER_HORIZON_MS`],
    /// verified first, then long known (first seen earliest first), then
    /// most recent ([`store::peer_rank`]), so minted identities can neither make a post
    /// cost more nor push genuine peers out. Cached until a peer is seen or
    /// its trust changes; expires one-off peers' rows on the way.
    fn outbox_recipients(&mut self, now_ms: u64) -> Result<Vec<[u8; 32]>, ChatError> {
        if now_ms >= self.next_outbox_expiry_ms {
            let cutoff = now_ms.saturating_sub(ONE_OFF_OUTBOX_TTL_MS);
            self.store.expire_outbox(cutoff)?;
            self.next_outbox_expiry_ms = now_ms.saturating_add(OUTBOX_EXPIRY_EVERY_MS);
        }
        if let Some((at, list)) = &self.recipients {
            if now_ms.saturating_sub(*at) < OUTBOX_EXPIRY_EVERY_MS {
                return Ok(list.clone());
            }
        }
        let since = now_ms.saturating_sub(OUTBOX_PEER_HORIZON_MS);
        let mut list = self.store.outbox_recipients(since, OUTBOX_MAX_PEERS + 1)?;
        list.retain(|p| *p != self.local.0);
        list.truncate(OUTBOX_MAX_PEERS);
        self.recipients = Some((now_ms, list.clone()));
        Ok(list)
    }

    /// Marks a known peer verified or unverified again.
    pub fn set_trust(
        &mut self,
        peer: IdentityKey,
        level: store::TrustLevel,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.recipients = None;
        self.quota.trust_changed(peer);
        self.store.set_trust(&peer.0, level, now_ms)
    }

    /// Changes a setting (the local nickname).
    pub fn set_setting(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.store.set_meta(key, value)
    }

    /// The last `n` messages of a conversation, oldest first.
    pub fn history(&self, conv: Conversation, n: usize) -> Result<Vec<MessageView>, ChatError> {
        let msgs = self.store.history(&conv.to_store(), n)?;
        self.views(self.only_sealed_in_private(msgs))
    }

    /// An invite-only room shows its sealed posts only: a clear-text post
    /// stored under its id (before its founding arrived) is never shown
    /// as the room's.
    fn only_sealed_in_private(&self, msgs: Vec<StoredMessage>) -> Vec<StoredMessage> {
        msgs.into_iter()
            .filter(|m| match m.conversation {
                // An empty text: a post we carry but cannot read.
                ConversationKey::Room(r) if self.private.contains(&RoomId(r)) => {
                    m.wire.is_some() && !m.text.is_empty()
                }
                _ => true,
            })
            .collect()
    }

    /// Messages containing every word of `words`, most recently stored
    /// first, at most `n`, only `room`'s if given (see
    /// [`ChatStore::search`]).
    pub fn search(
        &self,
        words: &str,
        room: Option<RoomId>,
        n: usize,
    ) -> Result<Vec<MessageView>, ChatError> {
        let msgs = self.store.search(words, room.map(|r| r.0).as_ref(), n)?;
        self.views(self.only_sealed_in_private(msgs))
    }

    /// Our own messages by id, at most `n`: `digits` is the start of a
    /// short id ([`short_id`]; 4 to 20 hex digits of the id's random part)
    /// or a whole id (32 hex digits).
    pub fn own_messages_by_id(
        &self,
        digits: &str,
        n: usize,
    ) -> Result<Vec<MessageView>, ChatError> {
        let p = digits.trim().to_ascii_lowercase();
        let bad = || ChatError::BadIdPrefix(digits.to_owned());
        if !is_id_digits(&p) {
            return Err(bad());
        }
        let whole = p.len() == 2 * 16;
        let even = &p[..p.len() & !1];
        let bytes = data_encoding::HEXLOWER
            .decode(even.as_bytes())
            .map_err(|_| bad())?;
        let mine = |m: &StoredMessage| m.outgoing && m.author == self.local.0;
        let msgs: Vec<StoredMessage> = if whole {
            let id = MessageId::try_from(bytes.as_slice()).map_err(|_| bad())?;
            self.store
                .get_message(&self.local.0, &id)?
                .into_iter()
                .filter(mine)
                .collect()
        } else {
            // An odd last digit is matched on the hex form.
            self.store
                .outgoing_by_id_tag(&bytes, n.saturating_mul(16))?
                .into_iter()
                .filter(|m| mine(m) && crate::hex(&m.id[ID_CLOCK_BYTES..]).starts_with(&p))
                .take(n)
                .collect()
        };
        self.views(msgs)
    }

    /// Who acked our message `id`, in the order the acks came, and who has
    /// not yet.
    pub fn receipts(
        &self,
        id: &MessageId,
    ) -> Result<(Vec<IdentityKey>, Vec<IdentityKey>), ChatError> {
        let keys = |v: Vec<[u8; 32]>| v.into_iter().map(IdentityKey).collect();
        Ok((
            keys(self.store.delivered_to(id)?),
            keys(self.store.pending_peers(id)?),
        ))
    }

    fn views(&self, msgs: Vec<StoredMessage>) -> Result<Vec<MessageView>, ChatError> {
        msgs.into_iter()
            .map(|m| {
                let delivered = if m.outgoing {
                    self.store.delivered_to(&m.id)?.len()
                } else {
                    0
                };
                Ok(MessageView::new(m, delivered))
            })
            .collect()
    }
}

/// How many leading bytes of a message id natter fills with the author's
/// clock: milliseconds since the Unix epoch, the low 48 bits, big-endian.
/// The other 10 bytes are random. Each author's ids then sort by time, so
/// the stores' unique index of (id, author) grows at its end, a few hot
/// pages per commit, instead of at a random place per message (which made
/// the chat rate fall with the size of the history; PERFORMANCE.md). Any
/// 16 bytes unique per author are a valid id (PROTOCOL.md section 10.1):
/// nothing relies on this layout but speed and the short id.
pub const ID_CLOCK_BYTES: usize = 6;

/// Bytes of a message id its short id shows: the first of its random part.
const SHORT_ID_BYTES: usize = 4;

/// natter's id layout: [`ID_CLOCK_BYTES`] of `now_ms`, then `random`.
/// Public so that benchmarks store ids of the same shape.
pub fn message_id_at(now_ms: u64, random: &[u8; 16 - ID_CLOCK_BYTES]) -> MessageId {
    let mut id = [0u8; 16];
    let (clock, rest) = id.split_at_mut(ID_CLOCK_BYTES);
    clock.copy_from_slice(&now_ms.to_be_bytes()[8 - ID_CLOCK_BYTES..]);
    rest.copy_from_slice(random);
    id
}

/// Whether `digits` name a message as `/info` takes it: the start of a
/// short id (4 hex digits up to the whole random part, 20) or a whole id
/// (32 hex digits). Either case.
pub fn is_id_digits(digits: &str) -> bool {
    let random_digits = 2 * (16 - ID_CLOCK_BYTES);
    (digits.len() == 2 * 16 || (4..=random_digits).contains(&digits.len()))
        && digits.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A message's short id, what listings show and `/info` takes: 8 hex
/// digits from the start of the id's random part. The clock part would
/// be shared by every message of the same minute.
pub fn short_id(id: &MessageId) -> String {
    crate::hex(&id[ID_CLOCK_BYTES..ID_CLOCK_BYTES + SHORT_ID_BYTES])
}
