//! What the file-transfer rules need kept and done outside the core: the
//! transfers that must survive a restart, reading an offered file, and
//! writing a received one. The application implements [`FileStore`] over
//! SQLite and the file system; [`super::MemoryFileStore`] keeps everything
//! in memory for tests, the simulator and the fuzz targets.

use crate::wire::frame::TransferId;

/// A peer's identity key, as stored.
pub type PeerBytes = [u8; 32];

/// Where a transfer stands. Stored as its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransferState {
    /// Offered, not answered yet.
    Offered,
    /// Accepted: data is flowing or will when the link is up.
    Active,
    /// The whole file arrived and matched its root.
    Completed,
    /// The receiver said no.
    Rejected,
    /// Either side gave it up.
    Cancelled,
    /// It broke (see the reason the events gave); verified data is kept,
    /// and an incoming one can be accepted again to resume.
    Failed,
}

impl TransferState {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferState::Offered => "offered",
            TransferState::Active => "active",
            TransferState::Completed => "completed",
            TransferState::Rejected => "rejected",
            TransferState::Cancelled => "cancelled",
            TransferState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "offered" => TransferState::Offered,
            "active" => TransferState::Active,
            "completed" => TransferState::Completed,
            "rejected" => TransferState::Rejected,
            "cancelled" => TransferState::Cancelled,
            "failed" => TransferState::Failed,
            _ => return None,
        })
    }

    /// Nothing more will happen to it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TransferState::Completed | TransferState::Rejected | TransferState::Cancelled
        )
    }
}

/// One transfer, in either direction. A transfer is named by (peer,
/// direction, id): ids are chosen by senders, so one peer cannot take
/// another's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRecord {
    pub id: TransferId,
    pub peer: PeerBytes,
    pub outgoing: bool,
    /// Outgoing: the file's own name. Incoming: the name as offered
    /// (untrusted; the store makes a safe one when it creates the file).
    pub name: String,
    pub size: u64,
    pub root: [u8; 32],
    pub state: TransferState,
    /// Incoming: chunk groups from the start that are verified and on
    /// disk (what a resume starts from).
    pub done_groups: u64,
    /// Outgoing: the source file. Incoming: the finished file, once
    /// completed.
    pub path: Option<String>,
    /// Wall clock, Unix ms.
    pub created_ms: u64,
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FileStoreError {
    #[error("the file is gone: {0}")]
    NotFound(String),
    #[error("the file has changed since it was offered")]
    Changed,
    #[error("the disk is full (the partial file is kept for a resume)")]
    DiskFull,
    #[error("{0}")]
    Io(String),
    #[error("the transfer store failed: {0}")]
    Db(String),
}

/// The storage behind the file-transfer rules. Every call is synchronous;
/// the caller handles one transfer's calls in order.
pub trait FileStore: Send + std::fmt::Debug {
    /// Records a new transfer. An existing (peer, direction, id) is an
    /// error and changes nothing.
    fn insert(&mut self, rec: &TransferRecord) -> Result<(), FileStoreError>;

    /// The transfer named by (peer, direction, id).
    fn get(
        &self,
        peer: &PeerBytes,
        outgoing: bool,
        id: &TransferId,
    ) -> Result<Option<TransferRecord>, FileStoreError>;

    /// Transfers, newest first, at most `limit`.
    fn list(&self, limit: usize) -> Result<Vec<TransferRecord>, FileStoreError>;

    /// Transfers that are offered or active (to resume after a restart).
    fn unfinished(&self) -> Result<Vec<TransferRecord>, FileStoreError>;

    /// Moves a transfer to `state`. Leaving for `Cancelled` or `Rejected`
    /// also removes what the store keeps for it (a partial file, the
    /// sender's tree); `Failed` keeps the verified data.
    fn set_state(
        &mut self,
        rec: &TransferRecord,
        state: TransferState,
    ) -> Result<(), FileStoreError>;

    /// Removes a transfer that never started, an offer its sender withdrew
    /// before it was accepted: nothing of it is worth keeping, and a peer
    /// that offers and withdraws must not grow the table.
    fn forget(&mut self, rec: &TransferRecord) -> Result<(), FileStoreError>;

    /// Sender: appends the bao encoding of groups `first .. first + count`
    /// of the offered file to `out` (see [`super::proof::encode`]).
    fn encode(
        &mut self,
        rec: &TransferRecord,
        first: u64,
        count: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), FileStoreError>;

    /// Receiver: writes verified bytes at `offset` of the partial file
    /// (created on the first write). A store may queue the write and
    /// report its failure (a full disk) at a later call for the transfer.
    fn write(
        &mut self,
        rec: &TransferRecord,
        offset: u64,
        data: bytes::Bytes,
    ) -> Result<(), FileStoreError>;

    /// Receiver: makes what was written durable and records that the first
    /// `done_groups` groups are verified, so a restart resumes there. A
    /// store may do it later, in order with the writes, as long as the
    /// record never claims more than is durable.
    fn commit(&mut self, rec: &TransferRecord, done_groups: u64) -> Result<(), FileStoreError>;

    /// Receiver: the whole file is verified: make it durable, move it to
    /// its final place (never over an existing file) and mark the transfer
    /// completed. Returns the final path.
    fn complete(&mut self, rec: &TransferRecord) -> Result<String, FileStoreError>;
}
