//! One TCP connection, sans IO: the stream deframer, the typed handshake
//! states, then the established transport.
//!
//! The handshake module makes illegal transitions unrepresentable; this
//! module holds whichever of those typed states a connection is in, so the
//! node can keep many connections in one table.

use crate::handshake::{
    Established, HandshakeConfig, HandshakeError, Initiator, PeerHello, Responder,
    ResponderAwaitingMsg3,
};
use crate::identity::{IdentityKey, LocalIdentity};
use crate::transport::{Transport, TransportError};
use crate::wire::framing::{write_framed, FramingError};
use crate::wire::limits::{MAX_HANDSHAKE_MSG_LEN, MAX_NOISE_MSG_LEN};
use crate::wire::{Deframer, Frame};

/// Who opened the TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Outbound,
    Inbound,
}

/// Why a link failed. Each variant closes only that link.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LinkError {
    #[error("framing: {0}")]
    Framing(#[from] FramingError),
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    #[error("link is not established")]
    NotEstablished,
    #[error("link is closed")]
    Closed,
}

enum Phase {
    AwaitMsg1(Responder),
    AwaitMsg2(Initiator),
    AwaitMsg3(ResponderAwaitingMsg3),
    Open(Box<Transport>),
    Closed,
}

/// What bytes from the peer produced.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// The handshake completed; from now on frames flow.
    Established(PeerHello),
    /// Frames received, in order.
    Frames(Vec<Frame>),
}

/// A connection's protocol state.
pub struct Link {
    phase: Phase,
    deframer: Deframer,
    peer: Option<PeerHello>,
    handshake_hash: Vec<u8>,
}

impl Link {
    /// A dialled connection: returns the link and the bytes of message 1.
    pub fn outbound(
        local: &LocalIdentity,
        cfg: &HandshakeConfig,
        expected: Option<IdentityKey>,
    ) -> Result<(Link, Vec<u8>), LinkError> {
        let (init, msg1) = Initiator::start(local, cfg, expected)?;
        let mut out = Vec::with_capacity(msg1.len() + 2);
        write_framed(&msg1, &mut out);
        Ok((
            Link {
                phase: Phase::AwaitMsg2(init),
                deframer: Deframer::new(MAX_HANDSHAKE_MSG_LEN),
                peer: None,
                handshake_hash: Vec::new(),
            },
            out,
        ))
    }

    /// An accepted connection, waiting for message 1.
    pub fn inbound(local: &LocalIdentity, cfg: &HandshakeConfig) -> Result<Link, LinkError> {
        Ok(Link {
            phase: Phase::AwaitMsg1(Responder::new(local, cfg)?),
            deframer: Deframer::new(MAX_HANDSHAKE_MSG_LEN),
            peer: None,
            handshake_hash: Vec::new(),
        })
    }

    /// The authenticated peer, once established.
    pub fn peer(&self) -> Option<&PeerHello> {
        self.peer.as_ref()
    }

    /// The Noise handshake hash (empty before the handshake completes):
    /// the same on both ends, unique to the session.
    pub fn handshake_hash(&self) -> &[u8] {
        &self.handshake_hash
    }

    pub fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// Bytes received and not yet processed (bounded by the deframer).
    pub fn buffered(&self) -> usize {
        self.deframer.buffered()
    }

    /// Feed bytes from the socket. Handshake replies are appended to `out`.
    /// On error the link is dead and must be closed.
    pub fn on_bytes(
        &mut self,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Vec<LinkEvent>, LinkError> {
        if matches!(self.phase, Phase::Closed) {
            return Err(LinkError::Closed);
        }
        self.deframer.extend(data);
        let mut events = Vec::new();
        let result = self.drain(out, &mut events);
        if result.is_err() {
            self.phase = Phase::Closed;
        }
        result.map(|()| events)
    }

    fn drain(&mut self, out: &mut Vec<u8>, events: &mut Vec<LinkEvent>) -> Result<(), LinkError> {
        loop {
            let Some(msg) = self.deframer.next_message()? else {
                return Ok(());
            };
            // Step the typed state machine; each arm consumes its state.
            self.phase = match std::mem::replace(&mut self.phase, Phase::Closed) {
                Phase::AwaitMsg1(r) => {
                    let (next, msg2) = r.read_msg1(msg)?;
                    write_framed(&msg2, out);
                    Phase::AwaitMsg3(next)
                }
                Phase::AwaitMsg2(i) => {
                    let (est, msg3) = i.read_msg2(msg)?;
                    write_framed(&msg3, out);
                    self.open(est, events)
                }
                Phase::AwaitMsg3(r) => {
                    let est = r.read_msg3(msg)?;
                    self.open(est, events)
                }
                Phase::Open(mut t) => {
                    let frames = t.open(msg)?;
                    match events.last_mut() {
                        Some(LinkEvent::Frames(v)) => v.extend(frames),
                        _ => events.push(LinkEvent::Frames(frames)),
                    }
                    Phase::Open(t)
                }
                Phase::Closed => return Err(LinkError::Closed),
            };
        }
    }

    fn open(&mut self, est: Established, events: &mut Vec<LinkEvent>) -> Phase {
        self.deframer.set_max_len(MAX_NOISE_MSG_LEN);
        self.peer = Some(est.peer.clone());
        self.handshake_hash = est.handshake_hash;
        events.push(LinkEvent::Established(est.peer));
        Phase::Open(Box::new(est.transport))
    }

    /// Seal frames for the peer, appending the wire bytes to `out`.
    pub fn send<'a>(
        &mut self,
        frames: impl IntoIterator<Item = &'a Frame>,
        out: &mut Vec<u8>,
    ) -> Result<(), LinkError> {
        match &mut self.phase {
            Phase::Open(t) => Ok(t.seal(frames, out)?),
            Phase::Closed => Err(LinkError::Closed),
            _ => Err(LinkError::NotEstablished),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> LocalIdentity {
        LocalIdentity::from_secrets([n; 32], [n + 9; 32]).unwrap()
    }

    /// Shuttle bytes between two links, one byte at a time.
    #[test]
    fn handshake_and_frames_over_a_byte_by_byte_stream() {
        let (a, b) = (id(1), id(2));
        let cfg = HandshakeConfig::new("n", 1);
        let (mut la, mut to_b) = Link::outbound(&a, &cfg, Some(b.identity_key())).unwrap();
        let mut lb = Link::inbound(&b, &cfg).unwrap();
        let mut to_a = Vec::new();
        let mut events_a = Vec::new();
        let mut events_b = Vec::new();
        for _ in 0..4 {
            for byte in std::mem::take(&mut to_b) {
                events_b.extend(lb.on_bytes(&[byte], &mut to_a).unwrap());
            }
            for byte in std::mem::take(&mut to_a) {
                events_a.extend(la.on_bytes(&[byte], &mut to_b).unwrap());
            }
        }
        assert!(la.is_established() && lb.is_established());
        assert!(
            matches!(&events_a[..], [LinkEvent::Established(p)] if p.identity() == b.identity_key())
        );
        assert!(
            matches!(&events_b[..], [LinkEvent::Established(p)] if p.identity() == a.identity_key())
        );

        let mut wire = Vec::new();
        la.send(&[Frame::Ping(1), Frame::Ping(2)], &mut wire)
            .unwrap();
        la.send(&[Frame::Ping(3)], &mut wire).unwrap();
        let ev = lb.on_bytes(&wire, &mut Vec::new()).unwrap();
        assert_eq!(
            ev,
            vec![LinkEvent::Frames(vec![
                Frame::Ping(1),
                Frame::Ping(2),
                Frame::Ping(3)
            ])]
        );
    }

    #[test]
    fn sending_before_established_is_refused_and_errors_close() {
        let (a, b) = (id(1), id(2));
        let cfg = HandshakeConfig::new("n", 1);
        let (mut la, _) = Link::outbound(&a, &cfg, None).unwrap();
        assert_eq!(
            la.send(&[Frame::Ping(1)], &mut Vec::new()),
            Err(LinkError::NotEstablished)
        );
        let mut lb = Link::inbound(&b, &cfg).unwrap();
        // A length prefix above the handshake bound.
        let err = lb.on_bytes(&[0xff, 0xff], &mut Vec::new()).unwrap_err();
        assert!(matches!(
            err,
            LinkError::Framing(FramingError::TooLong { .. })
        ));
        assert_eq!(
            lb.on_bytes(&[0, 1, 0], &mut Vec::new()),
            Err(LinkError::Closed)
        );
    }
}
