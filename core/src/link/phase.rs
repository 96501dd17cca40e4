//! The protocol phase of one stream, sans IO: the deframer, the typed
//! handshake states, then the established transport.
//!
//! The handshake module makes illegal transitions unrepresentable; this
//! module holds whichever of those typed states a stream is in, so a
//! [`Connection`](super::Connection) can own it. Stepping the phase moves
//! the typed state out (`std::mem::replace` with `Closed`), so any error
//! leaves it closed.

use super::{LinkError, Received};
use crate::handshake::{
    Established, HandshakeConfig, Initiator, PeerHello, Responder, ResponderAwaitingMsg3,
};
use crate::identity::{IdentityKey, LocalIdentity};
use crate::transport::Transport;
use crate::wire::framing::write_framed;
use crate::wire::limits::{MAX_HANDSHAKE_MSG_LEN, MAX_NOISE_MSG_LEN};
use crate::wire::{Deframer, Frame};

/// Every variant is boxed: a step moves the state out and back in, once
/// per Noise message for the life of the link, and unboxed the handshake
/// states (snow's `HandshakeState`) made that a copy of 960 bytes each way
/// for every message. Boxed it is a pointer, at the price of one
/// allocation per handshake step.
enum State {
    AwaitMsg1(Box<Responder>),
    AwaitMsg2(Box<Initiator>),
    AwaitMsg3(Box<ResponderAwaitingMsg3>),
    Open(Box<Transport>),
    Closed,
}

/// A connection's protocol state: the deframer and whichever typed
/// handshake state it is in, then the transport.
pub struct Phase {
    state: State,
    deframer: Deframer,
    peer: Option<PeerHello>,
    handshake_hash: Vec<u8>,
}

impl Phase {
    /// A dialled connection: returns the link and the bytes of message 1.
    pub fn outbound(
        local: &LocalIdentity,
        cfg: &HandshakeConfig,
        expected: Option<IdentityKey>,
    ) -> Result<(Phase, Vec<u8>), LinkError> {
        let (init, msg1) = Initiator::start(local, cfg, expected)?;
        let mut out = Vec::with_capacity(msg1.len() + 2);
        write_framed(&msg1, &mut out);
        Ok((
            Phase {
                state: State::AwaitMsg2(Box::new(init)),
                deframer: Deframer::new(MAX_HANDSHAKE_MSG_LEN),
                peer: None,
                handshake_hash: Vec::new(),
            },
            out,
        ))
    }

    /// An accepted connection, waiting for message 1.
    pub fn inbound(local: &LocalIdentity, cfg: &HandshakeConfig) -> Result<Phase, LinkError> {
        Ok(Phase {
            state: State::AwaitMsg1(Box::new(Responder::new(local, cfg)?)),
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
        matches!(self.state, State::Open(_))
    }

    /// Whether an accepted connection still waits for message 1, which an
    /// honest initiator sends as soon as TCP is up.
    pub fn awaits_first_message(&self) -> bool {
        matches!(self.state, State::AwaitMsg1(_))
    }

    /// Bytes received and not yet processed (bounded by the deframer).
    pub fn buffered(&self) -> usize {
        self.deframer.buffered()
    }

    /// Feed bytes from the socket. Handshake replies are appended to `out`.
    /// On error the link is dead and must be closed.
    pub fn on_bytes(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<Received, LinkError> {
        if matches!(self.state, State::Closed) {
            return Err(LinkError::Closed);
        }
        self.deframer.extend(data);
        let mut received = Received::default();
        let result = self.drain(out, &mut received);
        if result.is_err() {
            self.state = State::Closed;
        }
        result.map(|()| received)
    }

    /// Step through every whole message buffered; the frames of all the
    /// messages opened go to one list, in order.
    fn drain(&mut self, out: &mut Vec<u8>, received: &mut Received) -> Result<(), LinkError> {
        loop {
            let Some(msg) = self.deframer.next_message_mut()? else {
                return Ok(());
            };
            // Step the typed state machine; each arm consumes its state.
            self.state = match std::mem::replace(&mut self.state, State::Closed) {
                State::AwaitMsg1(r) => {
                    let (next, msg2) = r.read_msg1(msg)?;
                    write_framed(&msg2, out);
                    State::AwaitMsg3(Box::new(next))
                }
                State::AwaitMsg2(i) => {
                    let (est, msg3) = i.read_msg2(msg)?;
                    write_framed(&msg3, out);
                    self.open(est, received)
                }
                State::AwaitMsg3(r) => {
                    let est = r.read_msg3(msg)?;
                    self.open(est, received)
                }
                State::Open(mut t) => {
                    t.open_into(msg, &mut received.frames)?;
                    State::Open(t)
                }
                State::Closed => return Err(LinkError::Closed),
            };
        }
    }

    fn open(&mut self, est: Established, received: &mut Received) -> State {
        self.deframer.set_max_len(MAX_NOISE_MSG_LEN);
        self.peer = Some(est.peer.clone());
        self.handshake_hash = est.handshake_hash;
        received.established = Some(Box::new(est.peer));
        State::Open(Box::new(est.transport))
    }

    /// Seal frames for the peer, appending the wire bytes to `out`.
    pub fn send<'a>(
        &mut self,
        frames: impl IntoIterator<Item = &'a Frame>,
        out: &mut Vec<u8>,
    ) -> Result<(), LinkError> {
        match &mut self.state {
            State::Open(t) => Ok(t.seal(frames, out)?),
            State::Closed => Err(LinkError::Closed),
            _ => Err(LinkError::NotEstablished),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::framing::FramingError;

    fn id(n: u8) -> LocalIdentity {
        LocalIdentity::from_secrets([n; 32], [n + 9; 32]).unwrap()
    }

    /// Stepping moves the state out and back for every message.
    #[test]
    fn the_state_is_a_pointer() {
        assert!(std::mem::size_of::<State>() <= 16);
    }

    /// Shuttle bytes between two links, one byte at a time.
    #[test]
    fn handshake_and_frames_over_a_byte_by_byte_stream() {
        let (a, b) = (id(1), id(2));
        let cfg = HandshakeConfig::new("n", 1);
        let (mut la, mut to_b) = Phase::outbound(&a, &cfg, Some(b.identity_key())).unwrap();
        let mut lb = Phase::inbound(&b, &cfg).unwrap();
        let mut to_a = Vec::new();
        let mut received_a = Vec::new();
        let mut received_b = Vec::new();
        for _ in 0..4 {
            for byte in std::mem::take(&mut to_b) {
                received_b.push(lb.on_bytes(&[byte], &mut to_a).unwrap());
            }
            for byte in std::mem::take(&mut to_a) {
                received_a.push(la.on_bytes(&[byte], &mut to_b).unwrap());
            }
        }
        assert!(la.is_established() && lb.is_established());
        // Exactly one byte completed each handshake, and no frame came.
        for (received, other) in [(&received_a, &b), (&received_b, &a)] {
            let up: Vec<_> = received
                .iter()
                .filter_map(|r| r.established.as_ref())
                .collect();
            assert!(matches!(&up[..], [p] if p.identity() == other.identity_key()));
            assert!(received.iter().all(|r| r.frames.is_empty()));
        }

        let mut wire = Vec::new();
        la.send(&[Frame::Ping(1), Frame::Ping(2)], &mut wire)
            .unwrap();
        la.send(&[Frame::Ping(3)], &mut wire).unwrap();
        let received = lb.on_bytes(&wire, &mut Vec::new()).unwrap();
        assert_eq!(
            received,
            Received {
                established: None,
                frames: vec![Frame::Ping(1), Frame::Ping(2), Frame::Ping(3)]
            }
        );
    }

    #[test]
    fn sending_before_established_is_refused_and_errors_close() {
        let (a, b) = (id(1), id(2));
        let cfg = HandshakeConfig::new("n", 1);
        let (mut la, _) = Phase::outbound(&a, &cfg, None).unwrap();
        assert_eq!(
            la.send(&[Frame::Ping(1)], &mut Vec::new()),
            Err(LinkError::NotEstablished)
        );
        let mut lb = Phase::inbound(&b, &cfg).unwrap();
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
