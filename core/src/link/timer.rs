//! A link's timers as data: a kind per timer and a table of deadlines, so
//! the node's next wake-up is a minimum over tables and no task sleeps
//! (quinn-proto's `connection/timer.rs` is the model).

use crate::wire::CloseReason;

/// The timers of one link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// The handshake (TCP connect included) must finish by then.
    Handshake,
    /// An accepted connection must deliver handshake message 1 by then:
    /// an honest initiator sends it at once, so a slot held longer is
    /// held by someone who only means to hold it.
    FirstMessage,
    /// Nothing received for a while: send a ping. Disarmed while the ping
    /// is unanswered.
    KeepAlive,
    /// Nothing received for longer: the link is dead.
    Dead,
    /// The unwritten backlog is above its bound and no write progress was
    /// reported since: the peer is not reading.
    SendStall,
}

impl Timer {
    /// In the order they are checked when several are due at once: a link
    /// that is both stalled and silent is closed as stalled.
    pub const ALL: [Timer; 5] = [
        Timer::Handshake,
        Timer::FirstMessage,
        Timer::SendStall,
        Timer::Dead,
        Timer::KeepAlive,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Deadlines (ms) of the armed timers.
#[derive(Clone, Debug, Default)]
pub struct TimerTable {
    deadlines: [Option<u64>; 5],
}

impl TimerTable {
    pub fn set(&mut self, timer: Timer, at_ms: u64) {
        self.deadlines[timer.index()] = Some(at_ms);
    }

    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    pub fn get(&self, timer: Timer) -> Option<u64> {
        self.deadlines[timer.index()]
    }

    pub fn is_expired(&self, timer: Timer, now_ms: u64) -> bool {
        self.get(timer).is_some_and(|t| t <= now_ms)
    }

    /// The earliest armed deadline.
    pub fn next_timeout(&self) -> Option<u64> {
        self.deadlines.iter().flatten().min().copied()
    }
}

/// Why a timer closes its link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    HandshakeDeadline,
    /// No complete handshake message 1 on an accepted connection.
    FirstMessageDeadline,
    /// The peer is not reading.
    SendStall,
    /// No answer to the keepalive ping.
    Dead,
}

impl Expiry {
    /// For the user (`LinkFailed`, `PeerLost`) and the `Close` frame.
    pub fn why(self) -> &'static str {
        match self {
            Expiry::HandshakeDeadline => "handshake deadline passed",
            Expiry::FirstMessageDeadline => "no handshake message 1 in time",
            Expiry::SendStall => "peer is not reading (send queue full)",
            Expiry::Dead => "no answer to keepalive",
        }
    }

    /// The reason told to the peer; none before the handshake, as no
    /// frame can be sent yet.
    pub fn close_reason(self) -> Option<CloseReason> {
        match self {
            Expiry::HandshakeDeadline | Expiry::FirstMessageDeadline => None,
            Expiry::SendStall => Some(CloseReason::TooSlow),
            Expiry::Dead => Some(CloseReason::Timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_timeout_is_the_earliest_armed_deadline() {
        let mut t = TimerTable::default();
        assert_eq!(t.next_timeout(), None);
        t.set(Timer::Dead, 30);
        t.set(Timer::KeepAlive, 20);
        assert_eq!(t.next_timeout(), Some(20));
        t.stop(Timer::KeepAlive);
        assert_eq!(t.next_timeout(), Some(30));
        assert!(t.is_expired(Timer::Dead, 30) && !t.is_expired(Timer::Dead, 29));
    }
}
