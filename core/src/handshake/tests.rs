use super::*;
use crate::identity::{LocalIdentity, SignatureBytes};
use crate::transport::TransportError;
use crate::wire::Frame;

fn id(n: u8) -> LocalIdentity {
    LocalIdentity::from_secrets([n; 32], [n.wrapping_add(50); 32]).unwrap()
}

fn cfg(nick: &str) -> HandshakeConfig {
    HandshakeConfig::new(nick, 4000)
}

/// Run a full handshake in memory.
fn pair(
    a: &LocalIdentity,
    b: &LocalIdentity,
    expected: Option<IdentityKey>,
) -> Result<(Established, Established), HandshakeError> {
    let (init, m1) = Initiator::start(a, &cfg("alice"), expected)?;
    let (resp, m2) = Responder::new(b, &cfg("bob"))?.read_msg1(&m1)?;
    let (ea, m3) = init.read_msg2(&m2)?;
    let eb = resp.read_msg3(&m3)?;
    Ok((ea, eb))
}

/// A hand-driven Noise XX party that sends whatever hello bytes it likes,
/// the way a hostile peer would.
fn raw_builder(noise_secret: &[u8; 32]) -> snow::HandshakeState {
    snow::Builder::new(NOISE_PARAMS.parse().unwrap())
        .local_private_key(noise_secret)
        .unwrap()
        .prologue(domain::NOISE_PROLOGUE)
        .unwrap()
        .build_initiator()
        .unwrap()
}

fn raw_responder(noise_secret: &[u8; 32]) -> snow::HandshakeState {
    snow::Builder::new(NOISE_PARAMS.parse().unwrap())
        .local_private_key(noise_secret)
        .unwrap()
        .prologue(domain::NOISE_PROLOGUE)
        .unwrap()
        .build_responder()
        .unwrap()
}

fn hello_of(who: &LocalIdentity) -> Hello {
    Hello {
        version: PROTOCOL_VERSION,
        keys: *who.bound_keys(),
        nickname: "mallory".into(),
        listen_port: 1,
        features: 0,
    }
}

/// A hostile initiator with Noise key `noise_of` sending `hello` in msg 3.
fn evil_initiator(
    noise_of: &LocalIdentity,
    hello: &[u8],
    victim: &LocalIdentity,
) -> Result<Established, HandshakeError> {
    let mut hs = raw_builder(noise_of.noise_secret());
    let mut buf = vec![0u8; 2048];
    let n = hs.write_message(&[], &mut buf).unwrap();
    let (resp, m2) = Responder::new(victim, &cfg("victim"))?.read_msg1(&buf[..n])?;
    let mut p = vec![0u8; 2048];
    hs.read_message(&m2, &mut p).unwrap();
    let n = hs.write_message(hello, &mut buf).unwrap();
    resp.read_msg3(&buf[..n])
}

/// A hostile responder with Noise key `noise_of` sending `hello` in msg 2.
fn evil_responder(
    noise_of: &LocalIdentity,
    hello: &[u8],
    victim: &LocalIdentity,
    expected: Option<IdentityKey>,
) -> Result<(Established, Vec<u8>), HandshakeError> {
    let (init, m1) = Initiator::start(victim, &cfg("victim"), expected)?;
    let mut hs = raw_responder(noise_of.noise_secret());
    let mut p = vec![0u8; 2048];
    hs.read_message(&m1, &mut p).unwrap();
    let mut buf = vec![0u8; 2048];
    let n = hs.write_message(hello, &mut buf).unwrap();
    init.read_msg2(&buf[..n])
}

#[test]
fn success_in_both_roles_and_frames_flow_both_ways() {
    let (a, b) = (id(1), id(2));
    let (mut ea, mut eb) = pair(&a, &b, Some(b.identity_key())).unwrap();
    assert_eq!(ea.peer.identity(), b.identity_key());
    assert_eq!(eb.peer.identity(), a.identity_key());
    assert_eq!(ea.peer.nickname, "bob");
    assert_eq!(eb.peer.nickname, "alice");
    assert_eq!(eb.peer.listen_port, 4000);
    assert_eq!(ea.handshake_hash, eb.handshake_hash);

    let wire = ea.transport.seal_one(&Frame::Ping(7)).unwrap();
    assert_eq!(eb.transport.open(&wire[2..]).unwrap(), vec![Frame::Ping(7)]);
    let wire = eb.transport.seal_one(&Frame::Pong(7)).unwrap();
    assert_eq!(ea.transport.open(&wire[2..]).unwrap(), vec![Frame::Pong(7)]);
}

#[test]
fn wrong_binding_signature_is_rejected_in_both_directions() {
    let (victim, mallory) = (id(1), id(3));
    let mut hello = hello_of(&mallory);
    hello.keys.binding = SignatureBytes([7u8; 64]);
    let bytes = hello.encode();
    assert_eq!(
        evil_initiator(&mallory, &bytes, &victim).unwrap_err(),
        HandshakeError::BadBinding
    );
    assert_eq!(
        evil_responder(&mallory, &bytes, &victim, None).unwrap_err(),
        HandshakeError::BadBinding
    );
}

#[test]
fn hello_static_different_from_noise_static_is_rejected() {
    // Mallory runs Noise with her own key but claims Bob's identity, whose
    // binding is genuine (copied from one of Bob's beacons).
    let (victim, bob, mallory) = (id(1), id(2), id(3));
    let bytes = hello_of(&bob).encode();
    assert_eq!(
        evil_initiator(&mallory, &bytes, &victim).unwrap_err(),
        HandshakeError::StaticKeyMismatch
    );
    assert_eq!(
        evil_responder(&mallory, &bytes, &victim, Some(bob.identity_key())).unwrap_err(),
        HandshakeError::StaticKeyMismatch
    );
}

#[test]
fn dialled_identity_mismatch_is_rejected() {
    let (a, b, c) = (id(1), id(2), id(3));
    let err = pair(&a, &b, Some(c.identity_key())).unwrap_err();
    assert_eq!(
        err,
        HandshakeError::WrongIdentity {
            expected: c.identity_key(),
            got: b.identity_key()
        }
    );
}

#[test]
fn connecting_to_ourselves_is_rejected() {
    let a = id(1);
    assert_eq!(
        pair(&a, &a, None).unwrap_err(),
        HandshakeError::SelfConnection
    );
}

#[test]
fn low_order_ephemeral_keys_are_rejected() {
    let b = id(2);
    let order8: [u8; 32] = [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ];
    for bad in [[0u8; 32], order8] {
        let err = Responder::new(&b, &cfg("b"))
            .unwrap()
            .read_msg1(&bad)
            .err()
            .unwrap();
        assert_eq!(err, HandshakeError::LowOrderKey("ephemeral"));
    }
    // Message 2 whose ephemeral was replaced by a low-order point.
    let a = id(1);
    let (init, m1) = Initiator::start(&a, &cfg("a"), None).unwrap();
    let (_resp, mut m2) = Responder::new(&b, &cfg("b"))
        .unwrap()
        .read_msg1(&m1)
        .unwrap();
    m2[..32].copy_from_slice(&order8);
    assert_eq!(
        init.read_msg2(&m2).unwrap_err(),
        HandshakeError::LowOrderKey("ephemeral")
    );
}

#[test]
fn truncated_oversized_and_garbage_messages_fail_at_every_step() {
    let (a, b) = (id(1), id(2));
    let fresh = || {
        let (init, m1) = Initiator::start(&a, &cfg("a"), None).unwrap();
        let (resp, m2) = Responder::new(&b, &cfg("b"))
            .unwrap()
            .read_msg1(&m1)
            .unwrap();
        (init, m1, resp, m2)
    };
    // Step 1.
    let (_, m1, _, _) = fresh();
    for bad in [&m1[..31], &[m1.clone(), vec![0]].concat()[..], &[][..]] {
        assert!(matches!(
            Responder::new(&b, &cfg("b")).unwrap().read_msg1(bad),
            Err(HandshakeError::BadLength { step: 1, .. })
        ));
    }
    // Step 2: truncated, oversized, flipped, garbage.
    let (_, _, _, m2) = fresh();
    let mut cases: Vec<Vec<u8>> = vec![
        m2[..m2.len() - 1].to_vec(),
        m2[..50].to_vec(),
        vec![0x42; MAX_HANDSHAKE_MSG_LEN + 1],
        [m2.clone(), vec![1, 2, 3]].concat(),
    ];
    let mut garbage = m2.clone();
    for (i, b) in garbage.iter_mut().enumerate().skip(32) {
        *b = (i * 31) as u8;
    }
    cases.push(garbage);
    for i in [0usize, 40, 100, m2.len() - 1] {
        let mut f = m2.clone();
        f[i] ^= 0x10;
        cases.push(f);
    }
    for bad in cases {
        let (init, _, _, _) = fresh();
        assert!(
            init.read_msg2(&bad).is_err(),
            "msg2 of {} bytes accepted",
            bad.len()
        );
    }
    // Step 3.
    let (init, _, resp, m2) = fresh();
    let (_ea, m3) = init.read_msg2(&m2).unwrap();
    drop(resp);
    let mut cases: Vec<Vec<u8>> = vec![
        m3[..m3.len() - 1].to_vec(),
        m3[..20].to_vec(),
        vec![0x42; MAX_HANDSHAKE_MSG_LEN + 1],
        [m3.clone(), vec![0]].concat(),
        vec![0x55; m3.len()],
    ];
    for i in [0usize, 47, 60, m3.len() - 1] {
        let mut f = m3.clone();
        f[i] ^= 0x01;
        cases.push(f);
    }
    for bad in cases {
        // Re-run to the same point: a fresh pair for each case.
        let (init, _, resp, m2) = fresh();
        let (_ea, good) = init.read_msg2(&m2).unwrap();
        assert_eq!(good.len(), m3.len());
        assert!(
            resp.read_msg3(&bad).is_err(),
            "msg3 of {} bytes accepted",
            bad.len()
        );
    }
}

#[test]
fn hello_with_trailing_bytes_or_bad_version_is_rejected() {
    let (victim, mallory) = (id(1), id(3));
    let mut bytes = hello_of(&mallory).encode();
    bytes.push(0);
    assert!(matches!(
        evil_initiator(&mallory, &bytes, &victim),
        Err(HandshakeError::BadHello(WireError::TrailingBytes(1)))
    ));
    let mut h = hello_of(&mallory);
    h.version = 2;
    assert!(matches!(
        evil_initiator(&mallory, &h.encode(), &victim),
        Err(HandshakeError::BadHello(WireError::Version(2)))
    ));
    assert!(matches!(
        evil_initiator(&mallory, b"", &victim),
        Err(HandshakeError::BadHello(_))
    ));
}

#[test]
fn flipped_bit_replay_and_reorder_in_transport_are_detected() {
    let (a, b) = (id(1), id(2));
    let (mut ea, mut eb) = pair(&a, &b, None).unwrap();
    let m1 = ea.transport.seal_one(&Frame::Data(vec![1; 100])).unwrap();
    let _second = ea.transport.seal_one(&Frame::Data(vec![2; 100])).unwrap();
    // Every single-bit flip of the first message fails.
    for bit in 0..(m1.len() - 2) * 8 {
        let (_, mut eb2) = {
            let (mut ea2, eb2) = pair(&a, &b, None).unwrap();
            let _ = ea2.transport.seal_one(&Frame::Ping(0));
            (ea2, eb2)
        };
        let mut f = m1[2..].to_vec();
        f[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(eb2.transport.open(&f), Err(TransportError::Decrypt));
        if bit > 64 {
            break; // a sample suffices; the tag covers every byte
        }
    }
    // Out of order.
    let (mut ea3, mut eb3) = pair(&a, &b, None).unwrap();
    let x1 = ea3.transport.seal_one(&Frame::Ping(1)).unwrap();
    let x2 = ea3.transport.seal_one(&Frame::Ping(2)).unwrap();
    assert_eq!(eb3.transport.open(&x2[2..]), Err(TransportError::Decrypt));
    drop(x1);
    // In order, then a replay.
    assert_eq!(
        eb.transport.open(&m1[2..]).unwrap(),
        vec![Frame::Data(vec![1; 100])]
    );
    assert_eq!(eb.transport.open(&m1[2..]), Err(TransportError::Decrypt));
}

#[test]
fn many_small_frames_share_one_noise_message_and_large_ones_split() {
    let (a, b) = (id(1), id(2));
    let (mut ea, mut eb) = pair(&a, &b, None).unwrap();
    let frames: Vec<Frame> = (0..100).map(Frame::Ping).collect();
    let mut out = Vec::new();
    ea.transport.seal(&frames, &mut out).unwrap();
    let mut d = crate::wire::Deframer::new(crate::wire::limits::MAX_NOISE_MSG_LEN);
    d.extend(&out);
    let msg = d.next_message().unwrap().unwrap().to_vec();
    assert!(
        d.next_message().unwrap().is_none(),
        "100 pings fit one message"
    );
    assert_eq!(eb.transport.open(&msg).unwrap(), frames);

    let big: Vec<Frame> = (0..3).map(|i| Frame::Data(vec![i; 40_000])).collect();
    let mut out = Vec::new();
    ea.transport.seal(&big, &mut out).unwrap();
    d.extend(&out);
    let mut got = Vec::new();
    while let Some(m) = d.next_message().unwrap() {
        let m = m.to_vec();
        got.extend(eb.transport.open(&m).unwrap());
    }
    assert_eq!(got, big);
    let too_big = Frame::Data(vec![0; 70_000]);
    assert!(matches!(
        ea.transport.seal_one(&too_big),
        Err(TransportError::FrameTooLarge(_))
    ));
}
