//! File transfer: offers, verified streaming, resume.
//!
//! The rules (PROTOCOL.md section 11 restates them for other
//! implementations):
//!
//! 1. **Offer.** The sender hashes the file (off the node thread: the node
//!    asks its shell with `Output::HashFile`), records the transfer and
//!    sends `FileOffer { transfer, name, size, root }`, again on every new
//!    link until the receiver answers. A transfer is named by (sender, id).
//! 2. **Answer.** The receiver records the offer and asks its user; offers
//!    above its size limit get `FileEnd(TooLarge)`, offers beyond
//!    [`OFFER_BURST`] (refilled one per [`OFFER_EVERY_MS`]) or beyond
//!    [`MAX_PENDING_OFFERS`] waiting get `FileEnd(Busy)`, neither is
//!    recorded. `/reject` sends `FileEnd(Rejected)`; `/accept` starts it.
//! 3. **Receiver drives.** The receiver asks for chunk groups in order
//!    with `FileRequest`, keeping at most its window in flight (2 MiB per
//!    transfer, 4 MiB per peer shared by its transfers). The sender
//!    answers each request with `FileData` frames of up to three groups,
//!    in order, serving its transfers to one peer in turn, and only while
//!    the link has less than [`SEND_BACKLOG`] unwritten, so chat frames
//!    never queue behind more than that.
//! 4. **Verify, then write.** Every `FileData` is checked against the
//!    offer's root and size ([`proof::verify`]) before a byte is written.
//!    Data that was not requested next, or that fails the check, ends the
//!    transfer (`FileEnd(Invalid)`); what was verified before stays. Every
//!    [`COMMIT_GROUPS`] groups the receiver makes the data durable and
//!    records its progress, so a restart resumes from there.
//! 5. **Finish.** When the last group is verified the whole file matches
//!    the root: the receiver moves it into place (never over another file)
//!    and sends `FileEnd(Completed)`.
//! 6. **Resume.** After a lost link or a restart of either side, the
//!    receiver asks again from its first missing group; the sender keeps
//!    its transfers until they end. A file changed since it was offered is
//!    caught when it is read (`FileEnd(Unavailable)`).

pub mod memory;
pub mod name;
pub mod proof;
pub mod store;

pub use memory::{MemoryDisk, MemoryFileStore};
pub use store::{FileStore, FileStoreError, TransferRecord, TransferState};

use crate::identity::IdentityKey;
use crate::wire::frame::{FileData, FileEnd, FileEndReason, FileOffer, FileRequest, TransferId};
use crate::wire::limits::{FILE_GROUP_SIZE, MAX_DATA_GROUPS, MAX_REQUEST_GROUPS};
use crate::wire::Frame;
use std::collections::{HashMap, VecDeque};

/// Offers a peer may make at once before the pacing starts.
pub const OFFER_BURST: u32 = 8;
/// After the burst, one more offer per this many ms (10 a minute).
pub const OFFER_EVERY_MS: u64 = 6_000;
/// Incoming offers waiting for an answer, from all peers together.
pub const MAX_PENDING_OFFERS: usize = 256;
/// The receiver makes data durable and records progress every this many
/// groups (4 MiB).
pub const COMMIT_GROUPS: u64 = 256;
/// Groups in flight per transfer (2 MiB) and per peer (4 MiB). Everything
/// in flight (socket buffers included) is ahead of a chat message sent
/// now: 4 MiB and 1 MiB of send backlog kept it 5.5 times its idle
/// latency in the benchmark, 2 MiB and 256 KiB 2.9 times, at a higher
/// rate; 1 MiB and 128 KiB gave 2.4 times but a lower rate.
pub const WINDOW_GROUPS: u64 = 128;
pub const PEER_WINDOW_GROUPS: u64 = 256;
/// The least window a transfer gets when a peer sends many at once.
pub const MIN_SHARE_GROUPS: u64 = 8;
/// A sender adds file data to a link only while it has less than this
/// unwritten (256 KiB).
pub const SEND_BACKLOG: usize = 256 << 10;
/// Offer buckets kept; beyond, those refilled to the full burst go.
const MAX_OFFER_BUCKETS: usize = 1024;
/// Requests a sender keeps per transfer; more is a protocol error.
pub const MAX_QUEUED_REQUESTS: usize = 16;
/// Progress events per transfer at most this often.
pub const PROGRESS_EVERY_MS: u64 = 250;
/// The largest file any receiver takes, whatever its own limit: file
/// offsets and sizes are signed 64-bit on disk and in the store.
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// What hashing a file to offer found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDigest {
    /// The file's own name (the last component of its path).
    pub name: String,
    pub size: u64,
    pub root: [u8; 32],
}

/// Settings of the receiving side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileLimits {
    /// Larger offers are refused (`FileEnd(TooLarge)`).
    pub max_size: u64,
    /// Accept offers from verified contacts without asking. Never for
    /// unverified keys.
    pub auto_accept_verified: bool,
}

impl Default for FileLimits {
    /// 16 GiB, asking every time.
    fn default() -> Self {
        FileLimits {
            max_size: 16 << 30,
            auto_accept_verified: false,
        }
    }
}

/// Why a transfer did not complete.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FileFailure {
    #[error("the receiver declined it")]
    Rejected,
    #[error("cancelled by the peer")]
    CancelledByPeer,
    #[error("cancelled")]
    Cancelled,
    #[error("{size} bytes is over the limit of {max} bytes (--max-file-size)")]
    TooLarge { size: u64, max: u64 },
    #[error("the receiver is refusing offers for now (too many)")]
    Busy,
    #[error("too many offers from this peer; refused")]
    Flooded,
    #[error("the sender cannot serve it (the file is gone or has changed)")]
    Unavailable,
    #[error("the peer broke the transfer: {0}")]
    Invalid(&'static str),
    #[error("the receiver failed to store it")]
    ReceiverFailed,
    #[error("{0}")]
    Store(#[from] FileStoreError),
}

/// Something the UI should hear about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileEvent {
    /// An offer made (outgoing) or received and waiting for `/accept`.
    Offered(TransferRecord),
    /// Bytes verified (incoming) or sent (outgoing) so far.
    Progress { rec: TransferRecord, done: u64 },
    /// The whole file arrived, verified (`rec.path` is where, incoming).
    Completed(TransferRecord),
    /// It ended without the file.
    Failed {
        rec: TransferRecord,
        reason: FileFailure,
    },
    /// An offer refused without being recorded.
    Refused {
        peer: IdentityKey,
        name: String,
        size: u64,
        reason: FileFailure,
    },
}

/// What a call asks the node to do.
#[derive(Debug, Default)]
pub struct FileActions {
    pub send: Vec<(IdentityKey, Frame)>,
    pub events: Vec<FileEvent>,
}

/// Why a command about a transfer was refused.
#[derive(Debug, thiserror::Error)]
pub enum TransferCommandError {
    #[error("no transfer matches \"{0}\" (see /files)")]
    Unknown(String),
    #[error("\"{0}\" matches several transfers; give more of the id")]
    Ambiguous(String),
    #[error("transfer {id} is {state}; {what}")]
    WrongState {
        id: String,
        state: &'static str,
        what: &'static str,
    },
    #[error(transparent)]
    Store(#[from] FileStoreError),
}

/// A transfer we receive, while active.
#[derive(Debug)]
struct Receiving {
    rec: TransferRecord,
    groups: u64,
    /// The next group to arrive; all before it are verified and written.
    next_expected: u64,
    /// The next group to ask for.
    next_request: u64,
    /// Groups made durable (`FileStore::commit`).
    committed: u64,
    last_progress_ms: u64,
}

/// A transfer we send, until it ends.
#[derive(Debug)]
struct Sending {
    rec: TransferRecord,
    groups: u64,
    /// Requested ranges not yet sent, in order.
    ranges: VecDeque<(u64, u64)>,
    /// The end of the highest group sent (progress).
    sent_groups: u64,
    last_progress_ms: u64,
}

/// Offers a peer may still make now.
#[derive(Debug, Clone, Copy)]
struct OfferBucket {
    tokens: u32,
    refilled_ms: u64,
}

type Key = (IdentityKey, TransferId);

/// The file-transfer rules of one node, over a [`FileStore`].
#[derive(Debug)]
pub struct Files {
    store: Box<dyn FileStore>,
    limits: FileLimits,
    receiving: HashMap<Key, Receiving>,
    sending: HashMap<Key, Sending>,
    /// Per peer, the transfers with requests to serve, in turn.
    turns: HashMap<IdentityKey, VecDeque<TransferId>>,
    offers: HashMap<IdentityKey, OfferBucket>,
    pending_offers: usize,
}

fn key_of(rec: &TransferRecord) -> Key {
    (IdentityKey(rec.peer), rec.id)
}

fn end(transfer: TransferId, reason: FileEndReason, from_sender: bool) -> Frame {
    Frame::FileEnd(FileEnd {
        transfer,
        reason,
        from_sender,
    })
}

fn offer_frame(rec: &TransferRecord) -> Frame {
    Frame::FileOffer(FileOffer {
        transfer: rec.id,
        name: rec.name.clone(),
        size: rec.size,
        root: rec.root,
    })
}

/// Bytes of the first `groups` groups of a file of `size` bytes.
pub fn bytes_of(size: u64, groups: u64) -> u64 {
    proof::range_len(size, 0, groups)
}

impl Files {
    /// The rules over `store`; transfers it holds unfinished resume.
    pub fn new(store: Box<dyn FileStore>, limits: FileLimits) -> Files {
        let mut files = Files {
            store,
            limits,
            receiving: HashMap::new(),
            sending: HashMap::new(),
            turns: HashMap::new(),
            offers: HashMap::new(),
            pending_offers: 0,
        };
        for rec in files.store.unfinished().unwrap_or_default() {
            match (rec.outgoing, rec.state) {
                (true, _) => files.start_sending(rec),
                (false, TransferState::Active) => files.start_receiving(rec),
                (false, _) => files.pending_offers += 1,
            }
        }
        files
    }

    pub fn limits(&self) -> FileLimits {
        self.limits
    }

    fn start_sending(&mut self, rec: TransferRecord) {
        let groups = proof::group_count(rec.size);
        self.sending.insert(
            key_of(&rec),
            Sending {
                rec,
                groups,
                ranges: VecDeque::new(),
                sent_groups: 0,
                last_progress_ms: 0,
            },
        );
    }

    fn start_receiving(&mut self, rec: TransferRecord) {
        let groups = proof::group_count(rec.size);
        let done = rec.done_groups.min(groups);
        self.receiving.insert(
            key_of(&rec),
            Receiving {
                rec,
                groups,
                next_expected: done,
                next_request: done,
                committed: done,
                last_progress_ms: 0,
            },
        );
    }

    /// A file the local user offers to `peer` was hashed: record it and
    /// offer it now if the peer is `connected`, else on its next link.
    pub fn offer(
        &mut self,
        id: TransferId,
        peer: IdentityKey,
        path: String,
        digest: FileDigest,
        wall_ms: u64,
        connected: bool,
    ) -> Result<FileActions, FileStoreError> {
        let rec = TransferRecord {
            id,
            peer: peer.0,
            outgoing: true,
            name: digest.name,
            size: digest.size,
            root: digest.root,
            state: TransferState::Offered,
            done_groups: 0,
            path: Some(path),
            created_ms: wall_ms,
        };
        self.store.insert(&rec)?;
        let mut actions = FileActions::default();
        if connected {
            actions.send.push((peer, offer_frame(&rec)));
        }
        actions.events.push(FileEvent::Offered(rec.clone()));
        self.start_sending(rec);
        Ok(actions)
    }

    /// A link to `peer` is up: offers it has not answered go out again,
    /// and transfers from it resume from their first missing group.
    ///
    /// A new link may replace one that is still up (the duplicate-link
    /// rule), so whatever was in flight on the old one is forgotten here
    /// too. Transfers already accepted are offered again as well: a
    /// receiver that ended one while we were apart (cancelled, completed)
    /// answers the offer with that end, which it could not send then.
    pub fn on_link_up(&mut self, peer: IdentityKey) -> FileActions {
        self.on_link_down(peer);
        let mut actions = FileActions::default();
        for s in self.sending.values() {
            if s.rec.peer == peer.0 {
                actions.send.push((peer, offer_frame(&s.rec)));
            }
        }
        self.request_more(peer, &mut actions);
        actions
    }

    /// The link to `peer` is gone: what was in flight is lost; the
    /// sender's queue for it is dropped, the receiver asks again later.
    pub fn on_link_down(&mut self, peer: IdentityKey) {
        self.turns.remove(&peer);
        for (k, s) in self.sending.iter_mut() {
            if k.0 == peer {
                s.ranges.clear();
            }
        }
        for (k, r) in self.receiving.iter_mut() {
            if k.0 == peer {
                r.next_request = r.next_expected;
            }
        }
    }

    /// A file frame from the authenticated peer `from` (`verified`: the
    /// user verified its key).
    pub fn on_frame(
        &mut self,
        now_ms: u64,
        wall_ms: u64,
        from: IdentityKey,
        verified: bool,
        frame: Frame,
    ) -> FileActions {
        let mut actions = FileActions::default();
        match frame {
            Frame::FileOffer(o) => self.on_offer(now_ms, wall_ms, from, verified, o, &mut actions),
            Frame::FileRequest(r) => self.on_request(from, r, &mut actions),
            Frame::FileData(d) => self.on_data(now_ms, from, d, &mut actions),
            Frame::FileEnd(e) => self.on_end(from, e, &mut actions),
            _ => {}
        }
        actions
    }

    fn on_offer(
        &mut self,
        now_ms: u64,
        wall_ms: u64,
        from: IdentityKey,
        verified: bool,
        o: FileOffer,
        actions: &mut FileActions,
    ) {
        // The same offer again (the sender restarted or reconnected): the
        // answer it may have missed, or nothing while the user decides.
        if let Ok(Some(held)) = self.store.get(&from.0, false, &o.transfer) {
            let answer = match held.state {
                TransferState::Completed => Some(FileEndReason::Completed),
                TransferState::Rejected => Some(FileEndReason::Rejected),
                TransferState::Cancelled => Some(FileEndReason::Cancelled),
                _ => None,
            };
            if let Some(reason) = answer {
                actions.send.push((from, end(o.transfer, reason, false)));
            }
            return;
        }
        let refuse = |reason: FileFailure, wire: FileEndReason, actions: &mut FileActions| {
            actions.send.push((from, end(o.transfer, wire, false)));
            actions.events.push(FileEvent::Refused {
                peer: from,
                name: o.name.clone(),
                size: o.size,
                reason,
            });
        };
        if !self.take_offer_token(now_ms, from) {
            // No event: a flood of offers must not flood the screen.
            actions
                .send
                .push((from, end(o.transfer, FileEndReason::Busy, false)));
            return;
        }
        // Ids are random (section 11.1): an offer under the id of a
        // transfer we send this peer only echoes ours, to make our
        // commands ambiguous (`/cancel <id>` could not say which).
        if matches!(self.store.get(&from.0, true, &o.transfer), Ok(Some(_))) {
            let reason = FileFailure::Invalid("offered under the id of a transfer we send it");
            return refuse(reason, FileEndReason::Invalid, actions);
        }
        let max = self.limits.max_size.min(MAX_FILE_SIZE);
        if o.size > max {
            let reason = FileFailure::TooLarge { size: o.size, max };
            return refuse(reason, FileEndReason::TooLarge, actions);
        }
        if self.pending_offers >= MAX_PENDING_OFFERS {
            return refuse(FileFailure::Busy, FileEndReason::Busy, actions);
        }
        let rec = TransferRecord {
            id: o.transfer,
            peer: from.0,
            outgoing: false,
            name: o.name,
            size: o.size,
            root: o.root,
            state: TransferState::Offered,
            done_groups: 0,
            path: None,
            created_ms: wall_ms,
        };
        if let Err(e) = self.store.insert(&rec) {
            actions.events.push(FileEvent::Failed {
                rec,
                reason: e.into(),
            });
            return;
        }
        self.pending_offers += 1;
        actions.events.push(FileEvent::Offered(rec.clone()));
        if verified && self.limits.auto_accept_verified {
            if let Err(e) = self.accept_record(rec.clone(), true, actions) {
                actions.events.push(FileEvent::Failed {
                    rec,
                    reason: FileFailure::Store(e),
                });
            }
        }
    }

    fn take_offer_token(&mut self, now_ms: u64, from: IdentityKey) -> bool {
        if self.offers.len() >= MAX_OFFER_BUCKETS {
            // A full bucket says no more than a missing one.
            self.offers.retain(|_, b| {
                let refill = now_ms.saturating_sub(b.refilled_ms) / OFFER_EVERY_MS;
                u64::from(b.tokens) + refill < u64::from(OFFER_BURST)
            });
            // Still full (identities that each spent some tokens lately):
            // the bucket refilled longest ago is nearest to full.
            if self.offers.len() >= MAX_OFFER_BUCKETS && !self.offers.contains_key(&from) {
                let oldest = self
                    .offers
                    .iter()
                    .min_by_key(|(id, b)| (b.refilled_ms, **id))
                    .map(|(id, _)| *id);
                if let Some(id) = oldest {
                    self.offers.remove(&id);
                }
            }
        }
        let b = self.offers.entry(from).or_insert(OfferBucket {
            tokens: OFFER_BURST,
            refilled_ms: now_ms,
        });
        let refill = now_ms.saturating_sub(b.refilled_ms) / OFFER_EVERY_MS;
        if refill > 0 {
            b.tokens = (b.tokens as u64 + refill).min(OFFER_BURST as u64) as u32;
            b.refilled_ms += refill * OFFER_EVERY_MS;
        }
        if b.tokens == 0 {
            return false;
        }
        b.tokens -= 1;
        true
    }

    fn on_request(&mut self, from: IdentityKey, r: FileRequest, actions: &mut FileActions) {
        let k = (from, r.transfer);
        if !self.sending.contains_key(&k) {
            // A transfer that failed (the receiver's disk was full, say) is
            // served again when the receiver accepts it again.
            if let Ok(Some(rec)) = self.store.get(&from.0, true, &r.transfer) {
                if rec.state == TransferState::Failed {
                    self.start_sending(rec);
                }
            }
        }
        let Some(s) = self.sending.get_mut(&k) else {
            // Unknown, or over: say so, so the receiver stops asking.
            let reason = match self.store.get(&from.0, true, &r.transfer) {
                Ok(Some(rec)) if rec.state == TransferState::Completed => FileEndReason::Completed,
                Ok(Some(rec)) if rec.state == TransferState::Cancelled => FileEndReason::Cancelled,
                _ => FileEndReason::Unavailable,
            };
            actions.send.push((from, end(r.transfer, reason, true)));
            return;
        };
        let last = r.first_group.saturating_add(u64::from(r.count));
        if last > s.groups || s.ranges.len() >= MAX_QUEUED_REQUESTS {
            let what = if last > s.groups {
                "asked for data outside the file"
            } else {
                "asked for too much at once"
            };
            return self.fail_sending(
                k,
                FileFailure::Invalid(what),
                FileEndReason::Invalid,
                actions,
            );
        }
        if matches!(s.rec.state, TransferState::Offered | TransferState::Failed) {
            if let Err(e) = self.store.set_state(&s.rec, TransferState::Active) {
                return self.fail_sending(k, e.into(), FileEndReason::Unavailable, actions);
            }
            s.rec.state = TransferState::Active;
            actions.events.push(FileEvent::Progress {
                rec: s.rec.clone(),
                done: 0,
            });
        }
        s.ranges.push_back((r.first_group, last));
        let turns = self.turns.entry(from).or_default();
        if !turns.contains(&r.transfer) {
            turns.push_back(r.transfer);
        }
    }

    /// The peers there is file data to send to, in key order (the node's
    /// outputs do not depend on a hash map's order): the node pumps these
    /// without looking at every link.
    pub fn peers_with_data(&self) -> Vec<IdentityKey> {
        let mut peers: Vec<IdentityKey> = self
            .turns
            .iter()
            .filter(|(_, t)| !t.is_empty())
            .map(|(p, _)| *p)
            .collect();
        peers.sort_unstable();
        peers
    }

    /// `FileData` frames for `peer`, about `budget` bytes of them: its
    /// transfers take turns, one frame each.
    pub fn pump(&mut self, now_ms: u64, peer: IdentityKey, budget: usize) -> FileActions {
        let mut actions = FileActions::default();
        let mut bytes = 0;
        while bytes < budget {
            let Some(id) = self.turns.get_mut(&peer).and_then(VecDeque::pop_front) else {
                break;
            };
            let k = (peer, id);
            let Some(s) = self.sending.get_mut(&k) else {
                continue;
            };
            let Some((first, last)) = s.ranges.front().copied() else {
                continue;
            };
            let count = (last - first).min(u64::from(MAX_DATA_GROUPS));
            let mut encoded = Vec::with_capacity((count * FILE_GROUP_SIZE) as usize + 2048);
            if let Err(e) = self.store.encode(&s.rec, first, count, &mut encoded) {
                self.fail_sending(k, e.into(), FileEndReason::Unavailable, &mut actions);
                continue;
            }
            bytes += encoded.len();
            actions.send.push((
                peer,
                Frame::FileData(FileData {
                    transfer: id,
                    first_group: first,
                    count: count as u8,
                    encoded,
                }),
            ));
            if first + count >= last {
                s.ranges.pop_front();
            } else if let Some(front) = s.ranges.front_mut() {
                front.0 = first + count;
            }
            s.sent_groups = s.sent_groups.max(first + count);
            if now_ms.saturating_sub(s.last_progress_ms) >= PROGRESS_EVERY_MS {
                s.last_progress_ms = now_ms;
                actions.events.push(FileEvent::Progress {
                    rec: s.rec.clone(),
                    done: bytes_of(s.rec.size, s.sent_groups),
                });
            }
            if !s.ranges.is_empty() {
                self.turns.entry(peer).or_default().push_back(id);
            }
        }
        actions
    }

    fn on_data(&mut self, now_ms: u64, from: IdentityKey, d: FileData, actions: &mut FileActions) {
        let k = (from, d.transfer);
        let Some(r) = self.receiving.get_mut(&k) else {
            // Data for a transfer that is not running here (cancelled,
            // finished, never accepted): what was in flight when it
            // ended. Dropped.
            return;
        };
        let count = u64::from(d.count);
        if d.first_group.saturating_add(count) <= r.next_expected {
            // Groups we hold already: what an old link still carried after
            // a new one asked again (the duplicate-link rule). Harmless.
            return;
        }
        if d.first_group != r.next_expected || d.first_group + count > r.next_request {
            return self.fail_receiving(
                k,
                FileFailure::Invalid("sent data that was not requested"),
                FileEndReason::Invalid,
                actions,
            );
        }
        let leaves = match proof::verify(&r.rec.root, r.rec.size, d.first_group, count, &d.encoded)
        {
            Ok(leaves) => leaves,
            Err(_) => {
                return self.fail_receiving(
                    k,
                    FileFailure::Invalid("sent data that fails verification"),
                    FileEndReason::Invalid,
                    actions,
                )
            }
        };
        for (offset, data) in leaves {
            if let Err(e) = self.store.write(&r.rec, offset, data) {
                return self.fail_receiving(k, e.into(), FileEndReason::Failed, actions);
            }
        }
        r.next_expected += count;
        if r.next_expected >= r.groups {
            return self.finish_receiving(k, actions);
        }
        if r.next_expected - r.committed >= COMMIT_GROUPS {
            if let Err(e) = self.store.commit(&r.rec, r.next_expected) {
                return self.fail_receiving(k, e.into(), FileEndReason::Failed, actions);
            }
            r.committed = r.next_expected;
            r.rec.done_groups = r.next_expected;
        }
        if now_ms.saturating_sub(r.last_progress_ms) >= PROGRESS_EVERY_MS {
            r.last_progress_ms = now_ms;
            actions.events.push(FileEvent::Progress {
                rec: r.rec.clone(),
                done: bytes_of(r.rec.size, r.next_expected),
            });
        }
        self.request_more(from, actions);
    }

    fn finish_receiving(&mut self, k: Key, actions: &mut FileActions) {
        let Some(r) = self.receiving.remove(&k) else {
            return;
        };
        match self.store.complete(&r.rec) {
            Ok(path) => {
                let mut rec = r.rec;
                rec.state = TransferState::Completed;
                rec.done_groups = r.groups;
                rec.path = Some(path);
                actions
                    .send
                    .push((k.0, end(k.1, FileEndReason::Completed, false)));
                actions.events.push(FileEvent::Completed(rec));
                // Its window is free for the peer's other transfers.
                self.request_more(k.0, actions);
            }
            Err(e) => {
                self.receiving.insert(k, r);
                self.fail_receiving(k, e.into(), FileEndReason::Failed, actions);
            }
        }
    }

    /// Ask `peer` for more of each of its transfers whose window has room.
    fn request_more(&mut self, peer: IdentityKey, actions: &mut FileActions) {
        let mine: Vec<Key> = self
            .receiving
            .keys()
            .filter(|(p, _)| *p == peer)
            .copied()
            .collect();
        if mine.is_empty() {
            return;
        }
        // The peer's window is shared by its transfers: a share each, and
        // never more than the window in all; with more than 32 transfers a
        // transfer with nothing in flight may still ask for its least
        // share (beyond the window rather than waiting its turn).
        let mine_count = mine.len();
        let share = (PEER_WINDOW_GROUPS / mine_count as u64).clamp(MIN_SHARE_GROUPS, WINDOW_GROUPS);
        let crowded = mine_count as u64 * MIN_SHARE_GROUPS > PEER_WINDOW_GROUPS;
        let mut in_flight_all: u64 = mine
            .iter()
            .filter_map(|k| self.receiving.get(k))
            .map(|r| r.next_request - r.next_expected)
            .sum();
        for k in mine {
            let Some(r) = self.receiving.get_mut(&k) else {
                continue;
            };
            let in_flight = r.next_request - r.next_expected;
            if in_flight > share / 2 || r.next_request >= r.groups {
                continue;
            }
            let room = PEER_WINDOW_GROUPS.saturating_sub(in_flight_all);
            let room = if crowded && in_flight == 0 {
                room.max(MIN_SHARE_GROUPS)
            } else {
                room
            };
            let want = (share - in_flight)
                .min(r.groups - r.next_request)
                .min(u64::from(MAX_REQUEST_GROUPS));
            let count = want.min(room);
            // Rather wait for room than ask in crumbs: every request is at
            // least half a share (or all that is wanted), so few are ever
            // outstanding at the sender.
            if count == 0 || (count < want && count < share / 2) {
                continue;
            }
            in_flight_all += count;
            actions.send.push((
                peer,
                Frame::FileRequest(FileRequest {
                    transfer: k.1,
                    first_group: r.next_request,
                    count: count as u32,
                }),
            ));
            r.next_request += count;
        }
    }

    fn on_end(&mut self, from: IdentityKey, e: FileEnd, actions: &mut FileActions) {
        let k = (from, e.transfer);
        if e.from_sender {
            // About a transfer we receive (active, or still an offer).
            let (rec, offer) = match self.receiving.remove(&k) {
                Some(r) => (Some(r.rec), false),
                None => match self.store.get(&from.0, false, &e.transfer) {
                    Ok(Some(rec)) if rec.state == TransferState::Offered => {
                        self.pending_offers = self.pending_offers.saturating_sub(1);
                        (Some(rec), true)
                    }
                    _ => (None, false),
                },
            };
            let Some(mut rec) = rec else { return };
            let (state, reason) = match e.reason {
                FileEndReason::Cancelled => {
                    (TransferState::Cancelled, FileFailure::CancelledByPeer)
                }
                FileEndReason::Invalid => (
                    TransferState::Failed,
                    FileFailure::Invalid("said we broke the transfer"),
                ),
                _ => (TransferState::Failed, FileFailure::Unavailable),
            };
            if offer {
                // Withdrawn before we accepted: told, not kept (if the
                // store cannot delete it, it is at least ended).
                if self.store.forget(&rec).is_err() {
                    let _ = self.store.set_state(&rec, state);
                }
                rec.state = state;
                actions.events.push(FileEvent::Failed { rec, reason });
                return;
            }
            let _ = self.record_end(rec, state, reason, actions);
            self.request_more(from, actions);
            return;
        }
        let Some(s) = self.sending.remove(&k) else {
            return;
        };
        self.drop_turn(&k);
        let mut rec = s.rec;
        let (state, reason) = match e.reason {
            FileEndReason::Completed => {
                let _ = self.store.set_state(&rec, TransferState::Completed);
                rec.state = TransferState::Completed;
                actions.events.push(FileEvent::Completed(rec));
                return;
            }
            FileEndReason::Rejected => (TransferState::Rejected, FileFailure::Rejected),
            FileEndReason::Cancelled => (TransferState::Cancelled, FileFailure::CancelledByPeer),
            FileEndReason::TooLarge => (
                TransferState::Rejected,
                FileFailure::TooLarge {
                    size: rec.size,
                    max: 0,
                },
            ),
            FileEndReason::Busy => (TransferState::Failed, FileFailure::Busy),
            FileEndReason::Invalid => (
                TransferState::Failed,
                FileFailure::Invalid("said we broke the transfer"),
            ),
            FileEndReason::Failed | FileEndReason::Unavailable => {
                (TransferState::Failed, FileFailure::ReceiverFailed)
            }
        };
        let _ = self.record_end(rec, state, reason, actions);
    }

    /// Records that `rec` ended in `state` without the file and tells the
    /// UI why; the store's answer is the caller's to weigh.
    fn record_end(
        &mut self,
        mut rec: TransferRecord,
        state: TransferState,
        reason: FileFailure,
        actions: &mut FileActions,
    ) -> Result<(), FileStoreError> {
        let stored = self.store.set_state(&rec, state);
        rec.state = state;
        actions.events.push(FileEvent::Failed { rec, reason });
        stored
    }

    fn drop_turn(&mut self, k: &Key) {
        if let Some(t) = self.turns.get_mut(&k.0) {
            t.retain(|id| *id != k.1);
        }
    }

    fn fail_sending(
        &mut self,
        k: Key,
        reason: FileFailure,
        wire: FileEndReason,
        actions: &mut FileActions,
    ) {
        self.drop_turn(&k);
        let Some(s) = self.sending.remove(&k) else {
            return;
        };
        actions.send.push((k.0, end(k.1, wire, true)));
        let _ = self.record_end(s.rec, TransferState::Failed, reason, actions);
    }

    fn fail_receiving(
        &mut self,
        k: Key,
        reason: FileFailure,
        wire: FileEndReason,
        actions: &mut FileActions,
    ) {
        let Some(mut r) = self.receiving.remove(&k) else {
            return;
        };
        // What was verified and written stays: the partial file and the
        // progress made durable so far (a resume starts there). After the
        // peer's bad data, everything verified before it is made durable
        // now, so `/accept` asks again only from there; not after our own
        // store failed, which is what would have to do it.
        if wire == FileEndReason::Invalid
            && r.next_expected > r.committed
            && self.store.commit(&r.rec, r.next_expected).is_ok()
        {
            r.rec.done_groups = r.next_expected;
        }
        actions.send.push((k.0, end(k.1, wire, false)));
        let _ = self.record_end(r.rec, TransferState::Failed, reason, actions);
        self.request_more(k.0, actions);
    }

    /// The transfer whose hex id starts with `prefix` (at least 4
    /// characters), among those `keep` accepts.
    pub fn find(
        &self,
        prefix: &str,
        keep: impl Fn(&TransferRecord) -> bool,
    ) -> Result<TransferRecord, TransferCommandError> {
        let p = prefix.trim().to_ascii_lowercase();
        if p.len() < 4 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TransferCommandError::Unknown(prefix.to_owned()));
        }
        let mut found: Vec<TransferRecord> = self
            .store
            .list(10_000)?
            .into_iter()
            .filter(|r| crate::hex(&r.id).starts_with(&p) && keep(r))
            .collect();
        match found.len() {
            0 => Err(TransferCommandError::Unknown(prefix.to_owned())),
            1 => Ok(found.remove(0)),
            _ => Err(TransferCommandError::Ambiguous(prefix.to_owned())),
        }
    }

    /// `/accept`: start (or resume) an incoming transfer.
    pub fn accept(
        &mut self,
        rec: TransferRecord,
        connected: bool,
    ) -> Result<FileActions, TransferCommandError> {
        if rec.outgoing || !matches!(rec.state, TransferState::Offered | TransferState::Failed) {
            return Err(TransferCommandError::WrongState {
                id: short_id(&rec.id),
                state: rec.state.as_str(),
                what: "only an incoming offer (or a failed one, to resume) can be accepted",
            });
        }
        let mut actions = FileActions::default();
        self.accept_record(rec, connected, &mut actions)?;
        Ok(actions)
    }

    fn accept_record(
        &mut self,
        mut rec: TransferRecord,
        connected: bool,
        actions: &mut FileActions,
    ) -> Result<(), FileStoreError> {
        if rec.state == TransferState::Offered {
            self.pending_offers = self.pending_offers.saturating_sub(1);
        }
        self.store.set_state(&rec, TransferState::Active)?;
        rec.state = TransferState::Active;
        let peer = IdentityKey(rec.peer);
        let done = bytes_of(rec.size, rec.done_groups);
        actions.events.push(FileEvent::Progress {
            rec: rec.clone(),
            done,
        });
        self.start_receiving(rec);
        if connected {
            self.request_more(peer, actions);
        }
        Ok(())
    }

    /// `/reject`: decline an incoming offer.
    pub fn reject(&mut self, rec: TransferRecord) -> Result<FileActions, TransferCommandError> {
        if rec.outgoing || rec.state != TransferState::Offered {
            return Err(TransferCommandError::WrongState {
                id: short_id(&rec.id),
                state: rec.state.as_str(),
                what: "only an incoming offer can be rejected",
            });
        }
        self.pending_offers = self.pending_offers.saturating_sub(1);
        let mut actions = FileActions::default();
        actions.send.push((
            IdentityKey(rec.peer),
            end(rec.id, FileEndReason::Rejected, false),
        ));
        self.record_end(
            rec,
            TransferState::Rejected,
            FileFailure::Rejected,
            &mut actions,
        )?;
        Ok(actions)
    }

    /// `/cancel`: give up a transfer in either direction; the peer is told.
    pub fn cancel(&mut self, rec: TransferRecord) -> Result<FileActions, TransferCommandError> {
        if rec.state.is_final() {
            return Err(TransferCommandError::WrongState {
                id: short_id(&rec.id),
                state: rec.state.as_str(),
                what: "it is over already",
            });
        }
        let k = key_of(&rec);
        if rec.outgoing {
            self.sending.remove(&k);
            self.drop_turn(&k);
        } else {
            self.receiving.remove(&k);
            if rec.state == TransferState::Offered {
                self.pending_offers = self.pending_offers.saturating_sub(1);
            }
        }
        let mut actions = FileActions::default();
        actions
            .send
            .push((k.0, end(rec.id, FileEndReason::Cancelled, rec.outgoing)));
        let incoming = !rec.outgoing;
        self.record_end(
            rec,
            TransferState::Cancelled,
            FileFailure::Cancelled,
            &mut actions,
        )?;
        if incoming {
            self.request_more(k.0, &mut actions);
        }
        Ok(actions)
    }

    /// `/files`: transfers, newest first, with what is done of each.
    pub fn list(&self, limit: usize) -> Result<Vec<(TransferRecord, u64)>, FileStoreError> {
        Ok(self
            .store
            .list(limit)?
            .into_iter()
            .map(|rec| {
                let k = key_of(&rec);
                let done = if rec.outgoing {
                    self.sending
                        .get(&k)
                        .map(|s| bytes_of(rec.size, s.sent_groups))
                        .unwrap_or(if rec.state == TransferState::Completed {
                            rec.size
                        } else {
                            0
                        })
                } else {
                    self.receiving
                        .get(&k)
                        .map(|r| bytes_of(rec.size, r.next_expected))
                        .unwrap_or_else(|| bytes_of(rec.size, rec.done_groups))
                };
                (rec, done)
            })
            .collect())
    }

    /// Transfers running now, both ways (for tests and the fuzz target).
    pub fn running(&self) -> (usize, usize) {
        (self.sending.len(), self.receiving.len())
    }
}

/// The first 8 hex characters of a transfer id, as the UI shows it.
pub fn short_id(id: &TransferId) -> String {
    crate::hex(id).chars().take(8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A receiver with no size limit that takes offers from verified keys
    /// at once.
    fn taking_everything() -> Files {
        let store = memory::MemoryFileStore::new(memory::MemoryDisk::default());
        let limits = FileLimits {
            max_size: u64::MAX,
            auto_accept_verified: true,
        };
        Files::new(Box::new(store), limits)
    }

    /// A size no file system or store can hold is refused as too large,
    /// with an answer (a failure without one would have the sender offer
    /// it again on every link), even when the user's limit is higher.
    #[test]
    fn sizes_beyond_any_file_are_too_large_whatever_the_limit() {
        let mut files = taking_everything();
        let from = IdentityKey([5; 32]);
        for (n, size) in [(1u8, MAX_FILE_SIZE + 1), (2, u64::MAX)] {
            let offer = FileOffer {
                transfer: [n; 16],
                name: "huge".into(),
                size,
                root: [0; 32],
            };
            let mut actions = FileActions::default();
            files.on_offer(0, 0, from, true, offer, &mut actions);
            assert!(
                matches!(
                    &actions.send[..],
                    [(_, Frame::FileEnd(e))] if e.reason == FileEndReason::TooLarge
                ),
                "{size}: {:?}",
                actions.send
            );
            assert!(matches!(
                &actions.events[..],
                [FileEvent::Refused {
                    reason: FileFailure::TooLarge { .. },
                    ..
                }]
            ));
        }
    }

    /// Bad data from the sender fails the transfer, but what was verified
    /// before it is kept, made durable, and is where `/accept` resumes.
    #[test]
    fn after_bad_data_accepting_again_resumes_after_what_was_verified() {
        let (a, b) = (IdentityKey([1; 32]), IdentityKey([2; 32]));
        let src = memory::MemoryDisk::default();
        let content: Vec<u8> = (0..100 * FILE_GROUP_SIZE as usize)
            .map(|i| (i % 251) as u8)
            .collect();
        src.put("f.bin", content);
        let digest = src.digest("f.bin").unwrap();
        let mut sender = Files::new(
            Box::new(memory::MemoryFileStore::new(src)),
            FileLimits::default(),
        );
        let dst = memory::MemoryDisk::default();
        let mut receiver = Files::new(
            Box::new(memory::MemoryFileStore::new(dst.clone())),
            FileLimits {
                auto_accept_verified: true,
                ..FileLimits::default()
            },
        );
        let offer = sender
            .offer([9; 16], b, "f.bin".into(), digest, 0, true)
            .unwrap();
        let mut to_receiver: VecDeque<Frame> = offer.send.into_iter().map(|(_, f)| f).collect();
        let mut data_frames = 0;
        let mut failed = None;
        while let Some(mut frame) = to_receiver.pop_front() {
            if let Frame::FileData(d) = &mut frame {
                data_frames += 1;
                if data_frames == 8 {
                    // Past the first groups: one byte of data flipped.
                    let last = d.encoded.len() - 1;
                    d.encoded[last] ^= 1;
                }
            }
            let back = receiver.on_frame(0, 0, a, true, frame);
            for e in &back.events {
                if let FileEvent::Failed { rec, .. } = e {
                    failed = Some(rec.clone());
                }
            }
            for (_, f) in back.send {
                sender.on_frame(0, 0, b, true, f);
            }
            to_receiver.extend(sender.pump(0, b, 1 << 20).send.into_iter().map(|(_, f)| f));
        }
        let failed = failed.expect("the bad frame failed the transfer");
        assert!(
            failed.done_groups >= 7,
            "the groups verified before the bad frame are kept: {}",
            failed.done_groups
        );
        // What the store says, as `/accept` reads it.
        let held = receiver
            .find(&crate::hex(&[9; 16]), |r| !r.outgoing)
            .unwrap();
        assert_eq!(held.done_groups, failed.done_groups);
        let resumed = receiver.accept(held, true).unwrap();
        let first = resumed.send.iter().find_map(|(_, f)| match f {
            Frame::FileRequest(r) => Some(r.first_group),
            _ => None,
        });
        assert_eq!(first, Some(failed.done_groups));
    }

    /// A peer that offers a file under the id of one we send it is
    /// refused: otherwise no command could name ours alone.
    #[test]
    fn an_offer_echoing_the_id_of_our_own_transfer_is_refused() {
        let src = memory::MemoryDisk::default();
        src.put("mine.bin", vec![7; 1000]);
        let digest = src.digest("mine.bin").unwrap();
        let mut files = Files::new(
            Box::new(memory::MemoryFileStore::new(src)),
            FileLimits {
                auto_accept_verified: true,
                ..FileLimits::default()
            },
        );
        let peer = IdentityKey([5; 32]);
        files
            .offer([4; 16], peer, "mine.bin".into(), digest, 0, true)
            .unwrap();
        let echo = FileOffer {
            transfer: [4; 16],
            name: "theirs".into(),
            size: 10,
            root: [1; 32],
        };
        let mut actions = FileActions::default();
        files.on_offer(0, 0, peer, true, echo, &mut actions);
        assert!(
            matches!(
                &actions.send[..],
                [(_, Frame::FileEnd(e))] if e.reason == FileEndReason::Invalid && !e.from_sender
            ),
            "{:?}",
            actions.send
        );
        let ours = files.find(&crate::hex(&[4; 16]), |_| true).unwrap();
        assert!(ours.outgoing, "one transfer has that id: ours");
    }

    /// Transfers accepted one after another from one peer never have more
    /// than the peer's window requested and not yet received.
    #[test]
    fn transfers_from_one_peer_share_its_window() {
        let mut files = taking_everything();
        let from = IdentityKey([5; 32]);
        let mut asked = 0u64;
        for n in 1..=4u8 {
            let offer = FileOffer {
                transfer: [n; 16],
                name: format!("f{n}"),
                size: 100 << 20,
                root: [n; 32],
            };
            let mut actions = FileActions::default();
            files.on_offer(0, 0, from, true, offer, &mut actions);
            for (_, f) in &actions.send {
                if let Frame::FileRequest(r) = f {
                    asked += u64::from(r.count);
                }
            }
            assert!(
                asked <= PEER_WINDOW_GROUPS,
                "after {n} offers: {asked} groups asked"
            );
        }
        assert!(asked >= PEER_WINDOW_GROUPS / 2, "{asked}");
        // The two that asked are cancelled: the two that waited ask at once
        // (nothing else would wake them on a quiet link), each for a whole
        // share, not in crumbs.
        let mut asking = Vec::new();
        for n in 1..=2u8 {
            let rec = files.find(&crate::hex(&[n; 16]), |_| true).unwrap();
            for (_, f) in files.cancel(rec).unwrap().send {
                if let Frame::FileRequest(r) = f {
                    asking.push((r.transfer[0], r.count));
                }
            }
        }
        asking.sort_unstable();
        let share = (PEER_WINDOW_GROUPS / 4) as u32;
        assert_eq!(asking.first().map(|a| a.0), Some(3), "{asking:?}");
        assert!(asking.iter().any(|a| a.0 == 4), "{asking:?}");
        assert!(asking.iter().all(|a| a.1 >= share / 2), "{asking:?}");
    }

    /// Identities that each spend one token keep their buckets (none is
    /// full), yet the map never holds more than MAX_OFFER_BUCKETS, and a
    /// newcomer still gets its burst.
    #[test]
    fn offer_buckets_stay_bounded_under_churning_identities() {
        let store = memory::MemoryFileStore::new(memory::MemoryDisk::default());
        let mut files = Files::new(Box::new(store), FileLimits::default());
        for i in 0..3 * MAX_OFFER_BUCKETS as u64 {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&i.to_le_bytes());
            assert!(files.take_offer_token(i, IdentityKey(key)));
            assert!(files.offers.len() <= MAX_OFFER_BUCKETS);
        }
        let newcomer = IdentityKey([0xff; 32]);
        let now = 3 * MAX_OFFER_BUCKETS as u64;
        for _ in 0..OFFER_BURST {
            assert!(files.take_offer_token(now, newcomer));
        }
        assert!(!files.take_offer_token(now, newcomer));
    }
}
