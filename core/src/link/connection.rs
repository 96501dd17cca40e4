//! One link as a value: what it is for, its protocol phase, its timers, the
//! frames waiting to be sealed and the bytes handed to the shell and not yet
//! written.
//!
//! Shaped like quinn-proto's `Connection`: bytes and time go in
//! ([`Connection::on_connected`], [`Connection::on_bytes`],
//! [`Connection::on_flushed`], [`Connection::handle_timeout`]), and the
//! caller drains what to write ([`Connection::poll_transmit`]) and when to
//! wake ([`Connection::poll_timeout`]). It knows nothing of other links or
//! of the peer table; the node routes between connections.
//!
//! ```text
//!   dial ──▶ Connecting ──on_connected──▶ Handshaking ──on_bytes: hello──▶ Established
//!   accept ─────────────────────────────▶ Handshaking
//! ```

use super::phase::Phase;
use super::timer::{Expiry, Timer, TimerTable};
use super::{Direction, LinkError, LinkPath, Received, Remote};
use crate::handshake::HandshakeConfig;
use crate::identity::{IdentityKey, LocalIdentity};
use crate::wire::{Close, CloseReason, Frame};

/// A link's unwritten data may exceed `max_queued_bytes` by this factor for
/// a short burst; beyond it the link is dropped at once.
pub const HARD_QUEUE_FACTOR: usize = 16;

/// Most bytes of the reason put in a `Close` frame (the wire allows
/// `MAX_CLOSE_DETAIL_LEN`, 256).
const CLOSE_DETAIL_BYTES: usize = 200;

/// `why` for a `Close` frame: at most [`CLOSE_DETAIL_BYTES`], cut at a
/// character and marked with `…` when cut, so that a cut number is not
/// read as a whole one.
fn close_detail(why: &str) -> String {
    if why.len() <= CLOSE_DETAIL_BYTES {
        return why.to_owned();
    }
    let kept = crate::names::truncate_to_boundary(why, CLOSE_DETAIL_BYTES - '…'.len_utf8());
    format!("{kept}…")
}

/// The per-link tunables (taken from the node's configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// Send a ping after this long without receiving anything.
    pub keepalive_ms: u64,
    /// Declare the link dead after this long without receiving anything.
    pub dead_after_ms: u64,
    /// The TCP connect and the handshake must finish within this.
    pub handshake_deadline_ms: u64,
    /// An accepted connection must deliver handshake message 1 within
    /// this.
    pub first_message_ms: u64,
    /// Unwritten bytes above which the send-stall timer runs.
    pub max_queued_bytes: usize,
    /// How long the backlog may stay above `max_queued_bytes` without write
    /// progress.
    pub send_stall_ms: u64,
}

/// What a link is for: decides what its success or failure changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Our dial of a known identity; the handshake must reach it.
    Dial(IdentityKey),
    /// Our dial of a `/connect` target whose identity is not known yet.
    Manual,
    /// A connection the peer opened.
    Inbound,
}

/// How far a link has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Our TCP connect is in flight.
    Connecting,
    /// The Noise handshake is running.
    Handshaking,
    /// The peer is authenticated; frames flow.
    Established,
}

/// Why sealing the pending frames failed; either way the link must go.
#[derive(Debug, PartialEq)]
pub enum SealError {
    /// The transport refused (not established, or closed).
    Link(LinkError),
    /// The backlog already handed out is above the hard bound: the peer is
    /// not reading. The batch was discarded.
    TooSlow,
}

/// One link. See the module documentation.
pub struct Connection {
    purpose: Purpose,
    remote: Remote,
    /// How the bytes travel, as the shell last reported.
    path: LinkPath,
    opened_ms: u64,
    /// `None` until our TCP connect succeeds.
    phase: Option<Phase>,
    /// Set once the handshake authenticated the peer (and the node saw it).
    peer: Option<IdentityKey>,
    timers: TimerTable,
    /// Last time the shell reported write progress (or the link opened).
    last_flush_ms: u64,
    /// Bytes handed out by `poll_transmit` and not yet reported flushed.
    queued: usize,
    /// Frames to seal together when the node next drains.
    pending: Vec<Frame>,
    /// Wire bytes ready for the shell (handshake messages, sealed frames).
    transmit: Vec<u8>,
    cfg: LinkConfig,
}

impl Connection {
    /// A dial we start (`purpose` is `Dial` or `Manual`); the shell
    /// answers with `on_connected` or the link goes.
    pub fn dial(now_ms: u64, remote: impl Into<Remote>, purpose: Purpose, cfg: LinkConfig) -> Self {
        Connection::new(now_ms, remote.into(), purpose, None, cfg)
    }

    /// A connection the peer opened, waiting for message 1.
    pub fn inbound(
        now_ms: u64,
        remote: impl Into<Remote>,
        local: &LocalIdentity,
        hs: &HandshakeConfig,
        cfg: LinkConfig,
    ) -> Result<Self, LinkError> {
        let phase = Phase::inbound(local, hs)?;
        let mut conn = Connection::new(now_ms, remote.into(), Purpose::Inbound, Some(phase), cfg);
        conn.timers
            .set(Timer::FirstMessage, now_ms + cfg.first_message_ms);
        Ok(conn)
    }

    fn new(
        now_ms: u64,
        remote: Remote,
        purpose: Purpose,
        phase: Option<Phase>,
        cfg: LinkConfig,
    ) -> Self {
        let mut timers = TimerTable::default();
        // The deadline covers the TCP connect too.
        timers.set(Timer::Handshake, now_ms + cfg.handshake_deadline_ms);
        let path = match remote {
            Remote::Lan(_) => LinkPath::Lan,
            // Until iroh says otherwise; every WAN link starts at a relay.
            Remote::Wan(_) => LinkPath::Relayed,
        };
        Connection {
            purpose,
            remote,
            path,
            opened_ms: now_ms,
            phase,
            peer: None,
            timers,
            last_flush_ms: now_ms,
            queued: 0,
            pending: Vec::new(),
            transmit: Vec::new(),
            cfg,
        }
    }

    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    pub fn direction(&self) -> Direction {
        match self.purpose {
            Purpose::Inbound => Direction::Inbound,
            Purpose::Dial(_) | Purpose::Manual => Direction::Outbound,
        }
    }

    /// The identity a dial of ours means to reach, if known.
    pub fn expected(&self) -> Option<IdentityKey> {
        match self.purpose {
            Purpose::Dial(id) => Some(id),
            Purpose::Manual | Purpose::Inbound => None,
        }
    }

    /// The address dialled, or the one the peer connected from.
    pub fn remote(&self) -> Remote {
        self.remote
    }

    pub fn path(&self) -> LinkPath {
        self.path
    }

    /// The shell's report of how the link's bytes travel now.
    pub fn set_path(&mut self, path: LinkPath) {
        self.path = path;
    }

    /// The authenticated peer, once established.
    pub fn peer(&self) -> Option<IdentityKey> {
        self.peer
    }

    pub fn is_established(&self) -> bool {
        self.peer.is_some()
    }

    pub fn stage(&self) -> Stage {
        match (&self.phase, self.peer) {
            (None, _) => Stage::Connecting,
            (Some(_), None) => Stage::Handshaking,
            (Some(_), Some(_)) => Stage::Established,
        }
    }

    /// How far an unauthenticated connection has come, for choosing which
    /// to drop when the handshake slots are full: 0 nothing useful yet
    /// (connecting, or no message 1), 1 message 1 handled, 2 established.
    pub fn progress(&self) -> u8 {
        match (&self.phase, self.peer) {
            (_, Some(_)) => 2,
            (Some(p), None) if !p.awaits_first_message() => 1,
            _ => 0,
        }
    }

    /// When the connection was accepted or dialled.
    pub fn opened_ms(&self) -> u64 {
        self.opened_ms
    }

    /// The Noise handshake hash (empty before the handshake completes).
    pub fn handshake_hash(&self) -> &[u8] {
        self.phase.as_ref().map_or(&[], |p| p.handshake_hash())
    }

    /// Bytes handed to the shell and not yet written.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Our TCP connect succeeded: start the handshake (message 1 waits in
    /// `poll_transmit`). A second report is ignored.
    pub fn on_connected(
        &mut self,
        local: &LocalIdentity,
        hs: &HandshakeConfig,
    ) -> Result<(), LinkError> {
        if self.phase.is_some() {
            return Ok(());
        }
        let (phase, msg1) = Phase::outbound(local, hs, self.expected())?;
        self.phase = Some(phase);
        self.transmit.extend_from_slice(&msg1);
        Ok(())
    }

    /// Bytes from the peer. Handshake replies wait in `poll_transmit`, also
    /// when an error follows them. On error the link must be closed.
    pub fn on_bytes(&mut self, now_ms: u64, data: &[u8]) -> Result<Received, LinkError> {
        let Some(phase) = self.phase.as_mut() else {
            return Ok(Received::default());
        };
        let received = phase.on_bytes(data, &mut self.transmit);
        if !phase.awaits_first_message() {
            self.timers.stop(Timer::FirstMessage);
        }
        let received = received?;
        if let Some(hello) = &received.established {
            self.peer = Some(hello.identity());
            self.timers.stop(Timer::Handshake);
            self.arm_stall();
        }
        if self.is_established() {
            // Anything heard answers the keepalive.
            self.timers
                .set(Timer::KeepAlive, now_ms + self.cfg.keepalive_ms);
            self.timers
                .set(Timer::Dead, now_ms + self.cfg.dead_after_ms);
        }
        Ok(received)
    }

    /// Queue a frame; frames are sealed together by `seal_pending`.
    pub fn queue(&mut self, frame: Frame) {
        self.pending.push(frame);
    }

    /// Queue a `Close` telling the peer why, if a frame can reach it.
    pub fn queue_close(&mut self, reason: CloseReason, why: &str) {
        if self.is_established() {
            self.queue(Frame::Close(Close {
                reason,
                detail: close_detail(why),
            }));
        }
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Seal the pending frames in one `Transport::seal` call, so they share
    /// Noise messages; the bytes wait in `poll_transmit`.
    pub fn seal_pending(&mut self) -> Result<(), SealError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let frames = std::mem::take(&mut self.pending);
        // The backlog already handed out, not this batch, decides: a batch
        // is bounded by the chat core's page sizes, and a peer that reads
        // must be able to receive a whole resend page.
        let hard = self.cfg.max_queued_bytes.saturating_mul(HARD_QUEUE_FACTOR);
        if self.queued > hard {
            return Err(SealError::TooSlow);
        }
        let Some(phase) = self.phase.as_mut() else {
            return Ok(());
        };
        // Sealed straight into the bytes waiting for `poll_transmit`; on an
        // error only whole messages are left there.
        phase
            .send(&frames, &mut self.transmit)
            .map_err(SealError::Link)
    }

    /// Bytes to write now; they count as queued until `on_flushed`.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.transmit.is_empty() {
            return None;
        }
        let data = std::mem::take(&mut self.transmit);
        self.queued += data.len();
        self.arm_stall();
        Some(data)
    }

    /// The shell wrote `bytes` of what `poll_transmit` handed out.
    pub fn on_flushed(&mut self, now_ms: u64, bytes: usize) {
        self.queued = self.queued.saturating_sub(bytes);
        if bytes > 0 {
            self.last_flush_ms = now_ms;
        }
        self.arm_stall();
    }

    /// The earliest deadline of this link.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.next_timeout()
    }

    /// Run the timers due at `now_ms`: a due keepalive queues a ping; a
    /// deadline that means the link is over is returned.
    pub fn handle_timeout(&mut self, now_ms: u64) -> Option<Expiry> {
        for timer in Timer::ALL {
            if !self.timers.is_expired(timer, now_ms) {
                continue;
            }
            match timer {
                Timer::Handshake => return Some(Expiry::HandshakeDeadline),
                Timer::FirstMessage => return Some(Expiry::FirstMessageDeadline),
                Timer::SendStall => return Some(Expiry::SendStall),
                Timer::Dead => return Some(Expiry::Dead),
                Timer::KeepAlive => {
                    // Disarmed until something is heard again.
                    self.timers.stop(Timer::KeepAlive);
                    self.queue(Frame::Ping(now_ms));
                }
            }
        }
        None
    }

    /// The stall timer runs while an established link's backlog is above
    /// its bound, from the last write progress.
    fn arm_stall(&mut self) {
        if self.is_established() && self.queued > self.cfg.max_queued_bytes {
            self.timers.set(
                Timer::SendStall,
                self.last_flush_ms + self.cfg.send_stall_ms,
            );
        } else {
            self.timers.stop(Timer::SendStall);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    #[test]
    fn close_details_fit_the_wire_and_say_when_they_were_cut() {
        use crate::wire::limits::MAX_CLOSE_DETAIL_LEN;
        assert_eq!(close_detail("short"), "short");
        let number = format!("timestamp {}", u64::MAX);
        let long = format!("{} {number}", "x".repeat(CLOSE_DETAIL_BYTES));
        let cut = close_detail(&long);
        assert!(
            cut.len() <= CLOSE_DETAIL_BYTES && cut.ends_with('…'),
            "{cut}"
        );
        // Four-byte characters: cut at a character, within the wire limit.
        let wide = "🦀".repeat(100);
        let cut = close_detail(&wide);
        assert!(cut.len() <= MAX_CLOSE_DETAIL_LEN, "{}", cut.len());
        assert!(cut.trim_end_matches('…').chars().all(|c| c == '🦀'));
    }

    fn id(n: u8) -> LocalIdentity {
        LocalIdentity::from_secrets([n; 32], [n + 9; 32]).unwrap()
    }

    fn cfg() -> LinkConfig {
        LinkConfig {
            keepalive_ms: 5_000,
            dead_after_ms: 15_000,
            handshake_deadline_ms: 10_000,
            first_message_ms: 2_000,
            max_queued_bytes: 1_000,
            send_stall_ms: 5_000,
        }
    }

    /// An accepted connection that sends nothing, or a fragment of message
    /// 1, gives up its slot after `first_message_ms`; one whose message 1
    /// arrived does not, and has come further.
    #[test]
    fn an_accepted_connection_must_deliver_message_1_quickly() {
        let remote: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let hs = HandshakeConfig::new("b", 1);
        let mut idle = Connection::inbound(0, remote, &id(2), &hs, cfg()).unwrap();
        idle.on_bytes(10, &[0x00]).unwrap();
        assert_eq!(idle.progress(), 0);
        assert_eq!(idle.poll_timeout(), Some(2_000));
        assert_eq!(idle.handle_timeout(1_999), None);
        assert_eq!(
            idle.handle_timeout(2_000),
            Some(Expiry::FirstMessageDeadline)
        );

        let mut dialled = Connection::dial(0, remote, Purpose::Manual, cfg());
        dialled.on_connected(&id(1), &hs).unwrap();
        let msg1 = dialled.poll_transmit().unwrap();
        let mut honest = Connection::inbound(0, remote, &id(2), &hs, cfg()).unwrap();
        honest.on_bytes(10, &msg1).unwrap();
        assert_eq!(honest.progress(), 1);
        assert_eq!(honest.handle_timeout(2_000), None);
        assert_eq!(honest.poll_timeout(), Some(10_000));
    }

    /// A dial from `a` to `b`, shuttled until both are established at 100.
    fn pair() -> (Connection, Connection) {
        let (a, b) = (id(1), id(2));
        let hs = HandshakeConfig::new("n", 1);
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut ca = Connection::dial(0, addr, Purpose::Dial(b.identity_key()), cfg());
        let mut cb = Connection::inbound(0, addr, &b, &hs, cfg()).unwrap();
        assert_eq!(ca.stage(), Stage::Connecting);
        ca.on_connected(&a, &hs).unwrap();
        assert_eq!(ca.stage(), Stage::Handshaking);
        for _ in 0..3 {
            if let Some(d) = ca.poll_transmit() {
                cb.on_bytes(100, &d).unwrap();
            }
            if let Some(d) = cb.poll_transmit() {
                ca.on_bytes(100, &d).unwrap();
            }
        }
        assert_eq!(ca.stage(), Stage::Established);
        assert_eq!(cb.peer(), Some(a.identity_key()));
        (ca, cb)
    }

    #[test]
    fn the_handshake_deadline_closes_a_link_that_never_connects() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut c = Connection::dial(0, addr, Purpose::Manual, cfg());
        assert_eq!(c.poll_timeout(), Some(10_000));
        assert_eq!(c.handle_timeout(9_999), None);
        assert_eq!(c.handle_timeout(10_000), Some(Expiry::HandshakeDeadline));
    }

    #[test]
    fn keepalive_pings_once_then_the_link_is_dead() {
        let (mut a, _b) = pair();
        assert_eq!(a.poll_timeout(), Some(5_100));
        assert_eq!(a.handle_timeout(5_100), None);
        assert!(a.has_pending());
        // The ping is outstanding: the next deadline is the dead link.
        assert_eq!(a.poll_timeout(), Some(15_100));
        assert_eq!(a.handle_timeout(15_100), Some(Expiry::Dead));
    }

    #[test]
    fn a_backlog_without_write_progress_stalls_and_one_far_above_the_bound_drops() {
        let (mut a, _b) = pair();
        a.transmit = vec![0; 1_001];
        let _ = a.poll_transmit();
        assert_eq!(a.poll_timeout(), Some(5_000));
        a.on_flushed(4_000, a.queued());
        assert_eq!(a.poll_timeout(), Some(5_100), "back under the bound");
        a.transmit = vec![0; 16_001];
        let _ = a.poll_transmit();
        assert_eq!(a.handle_timeout(9_000), Some(Expiry::SendStall));
        a.queue(Frame::Ping(1));
        assert_eq!(a.seal_pending(), Err(SealError::TooSlow));
        assert_eq!(a.poll_transmit(), None, "the batch is discarded");
    }
}
