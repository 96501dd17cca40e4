//! Why the node could not do what the user asked, or failed on its own
//! side (the store). Peers' misbehaviour is not here: it closes their
//! link and is reported as the link's close reason.

use crate::chat::{ChatError, StoreError, Violation};
use crate::identity::IdentityKey;
use crate::link::{Expiry, LinkError};
use crate::trust::{FingerprintError, ResolveError};
use crate::wire::CloseReason;

/// An error the node reports to the user ([`crate::event::Event::Error`]).
/// The display text is a full sentence for the user; sources are kept.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A peer name did not pick exactly one peer.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// `/trust` without the fingerprint: what to compare was shown.
    #[error(
        "not trusted yet: compare the fingerprint above with {nickname} over a channel you trust, \
         then type /trust {typed} <their full fingerprint>"
    )]
    NotTrustedYet {
        /// What the user typed to name the peer.
        typed: String,
        /// The peer's nickname, clamped.
        nickname: String,
    },
    /// `/trust` with a fingerprint that is short or wrong.
    #[error(transparent)]
    Fingerprint(#[from] FingerprintError),
    /// Sending by a bare nickname that now belongs to another key than the
    /// verified contact's.
    #[error(
        "NOT SENT: \"{nickname}\" ({short_fingerprint}) has the nickname of a contact you verified, \
         but a different key. Check with /verify, then /trust it, or name it by fingerprint to send anyway"
    )]
    NicknameOfVerifiedContact {
        nickname: String,
        short_fingerprint: String,
    },
    /// A message could not be stored for sending.
    #[error("not sent: {0}")]
    NotSent(#[source] ChatError),
    /// A whole burst of messages could not be stored.
    #[error("{count} message(s) not sent: {source}")]
    BurstNotSent {
        count: usize,
        #[source]
        source: ChatError,
    },
    /// `/ticket` or a ticket dial without `--wan`.
    #[error("links beyond the LAN are off: start natter with --wan (or /wan on, then restart)")]
    WanOff,
    /// `/ticket` before iroh knows where this node can be reached.
    #[error("not reachable beyond the LAN yet (no relay connection): try again in a few seconds, or check --relay")]
    WanNotReady,
    /// `/connect` with our own ticket.
    #[error("that is your own ticket")]
    OwnTicket,
    /// The WAN setting or a contact's address could not be saved (a contact is
    /// kept until exit).
    #[error("cannot save the WAN setting or contacts: {0}")]
    WanNotSaved(#[source] StoreError),
    /// A typed room name is not one.
    #[error(transparent)]
    RoomName(#[from] crate::chat::RoomNameError),
    #[error("you are not in {room}: {hint}")]
    NotInRoom { room: String, hint: String },
    #[error(
        "you are in several invite-only rooms called {room}; say which by its founder: {choices}"
    )]
    AmbiguousRoom { room: String, choices: String },
    #[error("{room} is invite-only: you leave it when its founder removes you")]
    CannotLeavePrivate { room: String },
    #[error("you already founded an invite-only room called {room}")]
    RoomExists { room: String },
    #[error("{0}")]
    RoomChange(#[source] ChatError),
    /// We are a member of `room`, but the key sealed to us did not open.
    #[error(
        "the room key the founder of {room} sealed to you does not open: you are a member but can \
         neither read nor post there; ask them to remove you and invite you again"
    )]
    RoomKeyUnopened { room: String },
    #[error("cannot invite {nickname}: natter has not linked to them since it started (their keys are needed)")]
    KeysUnknown { nickname: String },
    #[error(
        "{nickname}'s key is not verified: anyone could be behind it. Compare fingerprints \
         (/verify {peer}), or type /invite {peer} {room} again to invite it anyway"
    )]
    InviteUnverified {
        nickname: String,
        room: String,
        peer: String,
    },
    #[error("you are in {max} rooms already: /leave one first")]
    TooManyRooms { max: usize },
    #[error("rooms not saved: {0}")]
    RoomsNotSaved(#[source] StoreError),
    /// `/info` named no single message of ours.
    #[error("{0}")]
    NoSuchMessage(String),
    #[error("a nickname is 1 to {max} bytes")]
    BadNickname { max: usize },
    #[error("nickname not saved: {0}")]
    NicknameNotSaved(#[source] StoreError),
    #[error("peer is not connected")]
    NotConnected,
    /// `/accept`, `/reject`, `/cancel` named no single transfer, or one in
    /// the wrong state.
    #[error(transparent)]
    Transfer(#[from] crate::files::TransferCommandError),
    /// A file to send could not be read.
    #[error("cannot send {path}: {error}")]
    CannotReadFile { path: String, error: String },
    /// The transfer store failed.
    #[error("file transfer: {0}")]
    FileStore(#[source] crate::files::FileStoreError),
    #[error("cannot read history: {0}")]
    History(#[source] ChatError),
    #[error("cannot search: {0}")]
    Search(#[source] ChatError),
    #[error("cannot change trust: {0}")]
    Trust(#[source] StoreError),
    #[error("cannot record peer: {0}")]
    RecordPeer(#[source] ChatError),
    #[error("cannot load the outbox: {0}")]
    LoadOutbox(#[source] ChatError),
    /// The shell around the node failed to run it, or its thread ended
    /// abnormally; the shell's description.
    #[error("{0}")]
    Shell(String),
    /// Our store failed while answering a catch-up request.
    #[error("cannot answer a catch-up request: {0}")]
    CatchUp(#[source] ChatError),
    /// Our store failed while taking a peer's messages; the peer resends
    /// what was not acked.
    #[error("cannot store messages: {0}")]
    StoreMessages(#[source] ChatError),
}

/// Why a link went, typed ([`crate::event::Event::PeerLost`] and
/// [`crate::event::Event::LinkFailed`] carry it). The display text is the
/// sentence the user sees, and what a `Close` frame's detail says.
#[derive(Debug, thiserror::Error)]
pub enum CloseCause {
    /// Our TCP connect failed; the shell's description of why.
    #[error("connect failed: {0}")]
    ConnectFailed(String),
    /// The peer closed the TCP connection.
    #[error("connection closed by peer")]
    ClosedByPeer,
    /// The socket failed; the shell's description of why.
    #[error("{0}")]
    Socket(String),
    /// The peer sent `Close`. Its detail is untrusted text.
    #[error("peer closed the link ({reason:?}: {detail})")]
    PeerClosed { reason: CloseReason, detail: String },
    /// A timer of the link expired.
    #[error("{}", .0.why())]
    Expired(Expiry),
    /// Framing, the handshake or the transport failed.
    #[error(transparent)]
    Link(LinkError),
    #[error("cannot start handshake: {0}")]
    CannotStart(#[source] LinkError),
    #[error("cannot send: {0}")]
    CannotSend(#[source] LinkError),
    /// The peer's frames broke a chat rule.
    #[error("peer broke the chat rules: {0}")]
    ChatRules(#[source] Violation),
    /// Another link to the same peer won the tie-break.
    #[error("duplicate link")]
    DuplicateLink,
    /// The handshake slots were full and a newer connection took this one's.
    #[error("handshake slots full: gave way to a newer connection")]
    Displaced,
    #[error("shutting down")]
    ShuttingDown,
    /// A WAN link's Noise handshake authenticated another identity than
    /// the iroh endpoint it runs to.
    #[error("the iroh endpoint {} is not the identity {} that the handshake authenticated", endpoint.fingerprint().short(), identity.fingerprint().short())]
    EndpointMismatch {
        endpoint: IdentityKey,
        identity: IdentityKey,
    },
}
