//! Bodies of the fuzz targets, kept in the library so that stable
//! `cargo test` replays their corpora (tests/fuzz_corpus.rs) and the
//! cargo-fuzz binaries in fuzz/ are one line each.
//!
//! Every target must return normally on every input. Where a decoder accepts
//! its input, encoding the result again must give back the same bytes: each
//! value has one encoding. All keys, including Noise ephemerals, are fixed,
//! so every run is deterministic and seeds may hold real ciphertexts.
//!
//! Adding a target: a function here plus its line in [`CORE_TARGETS`],
//! `fuzz/fuzz_targets/NAME.rs` plus its `[[bin]]` in fuzz/Cargo.toml, and
//! seeds in the generator of tests/fuzz_corpus.rs.

use crate::handshake::{Established, HandshakeConfig, HandshakeError, Initiator, Responder};
use crate::identity::{IdentityKey, LocalIdentity};
use crate::transport::frame_raw;
use crate::wire::beacon::{encode_beacon, parse_beacon, SIGNATURE_LEN};
use crate::wire::codec::encode;
use crate::wire::limits::MAX_NOISE_MSG_LEN;
use crate::wire::{decode_beacon, decode_frames, BeaconBody, Deframer, FramingError, Hello};
use std::sync::OnceLock;

/// A target's name (of its cargo-fuzz binary and corpus directory) and body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target of the core (the application adds `keyfile` and `cli_parse`).
pub const CORE_TARGETS: &[Target] = &[
    ("beacon", beacon),
    ("deframer", deframer),
    ("frames", frames),
    ("hello", hello),
    ("handshake_responder", handshake_responder),
    ("handshake_initiator", handshake_initiator),
    ("handshake_roundtrip_mutation", handshake_roundtrip_mutation),
    ("transport", transport),
    ("discovery", discovery),
    ("node", node),
];

pub mod node;
pub use node::node;

/// A fixed local party: long-term keys and a handshake config with a fixed ephemeral key.
pub struct Party {
    pub id: LocalIdentity,
    pub cfg: HandshakeConfig,
}

/// The fixed long-term keys of party `n`.
pub fn identity(n: u8) -> LocalIdentity {
    LocalIdentity::from_secrets([n; 32], [n + 0x40; 32]).expect("fixed secrets are valid")
}

fn party(n: u8, nickname: &str) -> Party {
    let id = identity(n);
    let cfg = HandshakeConfig::new(nickname, 47000 + u16::from(n))
        .with_fixed_ephemeral_for_tests([n + 0x80; 32]);
    Party { id, cfg }
}

/// The dialling party of every handshake target.
pub fn alice() -> &'static Party {
    static P: OnceLock<Party> = OnceLock::new();
    P.get_or_init(|| party(1, "alice"))
}

/// The accepting party of every handshake target.
pub fn bob() -> &'static Party {
    static P: OnceLock<Party> = OnceLock::new();
    P.get_or_init(|| party(2, "bob"))
}

/// A third peer, for targets with several.
pub fn carol() -> &'static Party {
    static P: OnceLock<Party> = OnceLock::new();
    P.get_or_init(|| party(3, "carol"))
}

/// Party number of [`local`].
pub const LOCAL: u8 = 4;

/// The local party of the discovery and node targets.
pub fn local() -> &'static Party {
    static P: OnceLock<Party> = OnceLock::new();
    P.get_or_init(|| party(LOCAL, "natter"))
}

/// The parties a target may play, by a byte of the input.
pub fn peer_party(b: u8) -> &'static Party {
    [alice, bob, carol][usize::from(b) % 3]()
}

/// Alice dials Bob in memory; `tamper(step, msg)` may change each message on the way.
pub fn handshake(
    mut tamper: impl FnMut(u8, Vec<u8>) -> Vec<u8>,
) -> Result<(Established, Established), HandshakeError> {
    let (a, b) = (alice(), bob());
    let (init, m1) = Initiator::start(&a.id, &a.cfg, Some(b.id.identity_key()))?;
    let (resp, m2) = Responder::new(&b.id, &b.cfg)?.read_msg1(&tamper(1, m1))?;
    let (ea, m3) = init.read_msg2(&tamper(2, m2))?;
    let eb = resp.read_msg3(&tamper(3, m3))?;
    Ok((ea, eb))
}

/// The established sessions of an untampered handshake: (Alice's, Bob's).
pub fn established_pair() -> (Established, Established) {
    handshake(|_, m| m).expect("the fixed parties complete a handshake")
}

/// The first piece of `data`, introduced by a length byte, and what follows it.
fn split_piece(data: &[u8]) -> (&[u8], &[u8]) {
    match data.split_first() {
        Some((&len, rest)) => rest.split_at(usize::from(len).min(rest.len())),
        None => (&[], &[]),
    }
}

/// `data` as a sequence of length-byte-prefixed pieces.
fn pieces(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if data.is_empty() {
            return None;
        }
        let (piece, rest) = split_piece(data);
        data = rest;
        Some(piece)
    })
}

pub fn beacon(data: &[u8]) {
    let Ok((body, body_bytes, _)) = parse_beacon(data) else {
        assert!(decode_beacon(data).is_err());
        return;
    };
    assert_eq!(body_bytes, &data[..data.len() - SIGNATURE_LEN]);
    assert_eq!(encode(&body), body_bytes);
    if let Ok(full) = decode_beacon(data) {
        assert_eq!(full, body);
    }
    // Whatever passes the structural checks is accepted once honestly signed.
    let body = BeaconBody {
        keys: *alice().id.bound_keys(),
        ..body
    };
    let packet = encode_beacon(&body, &alice().id).expect("keys have a fixed size");
    assert_eq!(decode_beacon(&packet), Ok(body));
}

/// Input: two bytes choosing the length bound before and after the first
/// message, a count `n` and `n` chunk sizes, then the stream. The stream is
/// deframed once whole and once in those chunks; both must agree.
pub fn deframer(data: &[u8]) {
    let [before, after, n, rest @ ..] = data else {
        return;
    };
    let (sizes, stream) = rest.split_at(usize::from(*n).min(rest.len()));
    let limits = [bound(*before), bound(*after)];
    let whole = deframe(stream, limits, &[]);
    assert_eq!(deframe(stream, limits, sizes), whole);
}

fn bound(b: u8) -> usize {
    match b {
        0..=127 => usize::from(b),
        _ => usize::from(b - 128) * 600, // up to past MAX_NOISE_MSG_LEN
    }
}

type Deframed = (Vec<Vec<u8>>, Option<FramingError>);

fn deframe(stream: &[u8], limits: [usize; 2], sizes: &[u8]) -> Deframed {
    let mut d = Deframer::new(limits[0]);
    let (mut fed, mut used, mut msgs) = (0, 0, Vec::new());
    let mut sizes = sizes.iter().map(|&s| usize::from(s) + 1).cycle();
    while fed < stream.len() {
        let end = sizes
            .next()
            .map_or(stream.len(), |s| stream.len().min(fed + s));
        d.extend(&stream[fed..end]);
        fed = end;
        loop {
            assert_eq!(d.buffered(), fed - used);
            let m = match d.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => return (msgs, Some(e)),
            };
            let limit = limits[msgs.len().min(1)].min(MAX_NOISE_MSG_LEN);
            assert!(!m.is_empty() && m.len() <= limit);
            assert_eq!(frame_raw(m), stream[used..used + 2 + m.len()]);
            used += 2 + m.len();
            msgs.push(m.to_vec());
            d.set_max_len(limits[1]);
        }
    }
    (msgs, None)
}

pub fn frames(data: &[u8]) {
    if let Ok(frames) = decode_frames(data) {
        let mut out = Vec::new();
        for f in &frames {
            assert_eq!(f.validate(), Ok(()));
            f.encode_into(&mut out);
        }
        assert_eq!(out, data);
    }
}

pub fn hello(data: &[u8]) {
    if let Ok(h) = Hello::decode(data) {
        assert_eq!(h.encode(), data);
    }
}

/// Input: a length byte and message 1, then message 3.
pub fn handshake_responder(data: &[u8]) {
    let (msg1, msg3) = split_piece(data);
    let b = bob();
    let resp = Responder::new(&b.id, &b.cfg).expect("fixed config is valid");
    let Ok((resp, _msg2)) = resp.read_msg1(msg1) else {
        return;
    };
    if let Ok(est) = resp.read_msg3(msg3) {
        assert_eq!(est.peer.keys.verify(), Ok(()));
        assert_ne!(est.peer.identity(), b.id.identity_key());
    }
}

/// Input: a byte choosing whom Alice expects to reach, then message 2.
pub fn handshake_initiator(data: &[u8]) {
    let Some((&who, msg2)) = data.split_first() else {
        return;
    };
    let expected: Option<IdentityKey> = match who % 3 {
        0 => None,
        1 => Some(bob().id.identity_key()),
        _ => Some(IdentityKey([who; 32])),
    };
    let a = alice();
    let (init, _msg1) = Initiator::start(&a.id, &a.cfg, expected).expect("fixed config is valid");
    if let Ok((est, _msg3)) = init.read_msg2(msg2) {
        assert_eq!(est.peer.keys.verify(), Ok(()));
        assert_ne!(est.peer.identity(), a.id.identity_key());
        assert!(expected.is_none_or(|e| e == est.peer.identity()));
    }
}

/// Input: a byte choosing the message (1–3) and the mutation, then its argument.
/// A handshake with any message changed must fail; one left intact must
/// succeed exactly as the untampered one does.
pub fn handshake_roundtrip_mutation(data: &[u8]) {
    let Some((&how, arg)) = data.split_first() else {
        return;
    };
    let mut changed = false;
    let result = handshake(|step, msg| {
        if step != how % 3 + 1 {
            return msg;
        }
        let out = mutate(&msg, how / 3, arg);
        changed = out != msg;
        out
    });
    let Ok((mut ea, mut eb)) = result else {
        assert!(changed, "an intact handshake failed: {:?}", result.err());
        return;
    };
    assert!(!changed, "a changed handshake message was accepted");
    static REFERENCE: OnceLock<Vec<u8>> = OnceLock::new();
    let reference = REFERENCE.get_or_init(|| established_pair().0.handshake_hash);
    assert_eq!(&ea.handshake_hash, reference);
    assert_eq!(&eb.handshake_hash, reference);
    let ping = crate::wire::Frame::Ping(u64::from(how));
    let sealed = ea.transport.seal_one(&ping).expect("a ping fits");
    assert_eq!(eb.transport.open(&sealed[2..]), Ok(vec![ping]));
}

fn mutate(msg: &[u8], mode: u8, arg: &[u8]) -> Vec<u8> {
    let mut out = msg.to_vec();
    match (mode % 3, arg.split_first()) {
        (0, Some((&at, xor))) => {
            for (i, x) in xor.iter().enumerate() {
                let j = (usize::from(at) + i) % out.len();
                out[j] ^= x;
            }
        }
        (1, Some((&len, _))) => out.truncate(usize::from(len)),
        _ => out.extend_from_slice(arg),
    }
    out
}

/// Input: length-byte-prefixed pieces. Bob opens them as messages from
/// Alice until one fails, as the link would; each one that opens must be
/// exactly what Alice seals for its frames. Independently, every piece that
/// decodes as frames is sealed by Bob and must open at Alice unchanged.
pub fn transport(data: &[u8]) {
    let (mut a, mut b) = established_pair();
    for msg in pieces(data) {
        let Ok(frames) = b.transport.open(msg) else {
            break;
        };
        let mut wire = Vec::new();
        a.transport
            .seal(&frames, &mut wire)
            .expect("opened frames can be sealed");
        assert_eq!(wire, frame_raw(msg));
    }
    for piece in pieces(data) {
        let Ok(frames) = decode_frames(piece) else {
            continue;
        };
        let mut wire = Vec::new();
        b.transport
            .seal(&frames, &mut wire)
            .expect("decoded frames can be sealed");
        let mut d = Deframer::new(MAX_NOISE_MSG_LEN);
        d.extend(&wire);
        let mut opened = Vec::new();
        while let Some(msg) = d.next_message().expect("own framing is valid") {
            opened.extend(a.transport.open(msg).expect("own seal opens"));
        }
        assert_eq!(d.buffered(), 0);
        assert_eq!(opened, frames);
    }
}

/// Bytes of a fuzz input, read front to back; past the end every read is empty.
pub(crate) struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }

    /// Two bytes, big-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// A length byte and that many bytes (fewer at the end).
    pub fn piece(&mut self) -> &'a [u8] {
        let (piece, rest) = split_piece(self.0);
        self.0 = rest;
        piece
    }

    /// Two length bytes (big-endian) and that many bytes.
    pub fn long_piece(&mut self) -> &'a [u8] {
        let len = usize::from(self.u16()).min(self.0.len());
        let (piece, rest) = self.0.split_at(len);
        self.0 = rest;
        piece
    }
}

/// Wall-clock time (ms since the Unix epoch) at monotonic time 0 in the
/// discovery and node targets.
pub const WALL_MS: u64 = 1_764_000_000_000;

/// Where datagrams come from in the discovery and node targets: a few
/// loopback addresses, and one of them as IPv4-mapped IPv6.
pub fn source(b: u8) -> std::net::SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    let v4 = Ipv4Addr::new(127, 0, 0, 1 + b % 4);
    let ip = if b & 4 == 0 {
        IpAddr::V4(v4)
    } else {
        IpAddr::V6(v4.to_ipv6_mapped())
    };
    SocketAddr::new(ip, 47000 + u16::from(b % 8))
}

/// Input: records `[flags, dt, len_hi, len_lo, datagram…]`. Time advances
/// by dt² ms; the low three bits of `flags` pick the source ([`source`]),
/// bit 0x40 polls for a beacon first, bit 0x80 expires identities after.
/// Discovery never panics and its counters add up.
pub fn discovery(data: &[u8]) {
    use crate::discovery::{Discovery, DiscoveryConfig};
    use crate::rng::Rng;
    let me = &local().id;
    let config = DiscoveryConfig::default();
    let mut d = Discovery::new(config.clone(), me, "natter".into(), 47474, 7, Rng::new(7));
    let (mut now, mut fed, mut sent) = (0u64, 0u64, 0u64);
    let mut input = Reader(data);
    while !input.is_empty() {
        let flags = input.byte();
        now += u64::from(input.byte()).pow(2);
        let datagram = input.long_piece();
        if flags & 0x40 != 0 {
            if let Some(beacon) = d.poll_beacon(now, WALL_MS + now, me) {
                sent += 1;
                let body = decode_beacon(&beacon).expect("own beacons decode");
                assert_eq!(body.keys.identity, me.identity_key());
                use crate::discovery::Rejected::{GlobalRateLimited, Own, RateLimited};
                let looped = d.handle_datagram(now, source(flags), &beacon);
                assert!(matches!(looped, Err(Own | RateLimited | GlobalRateLimited)));
                fed += 1;
            }
        }
        let from = source(flags);
        fed += 1;
        if let Ok(s) = d.handle_datagram(now, from, datagram) {
            assert_ne!(s.keys.identity, me.identity_key());
            assert_eq!(s.keys.verify(), Ok(()));
            assert_ne!(s.addr.port(), 0);
            assert_eq!(s.addr.ip(), from.ip().to_canonical());
            assert!(!(s.new_identity && s.restarted));
        }
        if flags & 0x80 != 0 {
            let gone = d.expire(now);
            let mut unique = gone.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(
                unique.len(),
                gone.len(),
                "an identity expired twice at once"
            );
        }
        assert!(d.poll_timeout().is_some());
        let s = d.stats();
        let rejected = s.too_large
            + s.rate_limited
            + s.global_rate_limited
            + s.malformed
            + s.own
            + s.replay
            + s.bad_signature
            + s.bad_binding
            + s.zero_port;
        assert_eq!(s.accepted + rejected, fed);
        assert!(s.accepted <= fed);
        assert_eq!(s.verify_calls, s.accepted + s.bad_signature + s.bad_binding);
        assert_eq!(s.beacons_sent, sent);
        assert_eq!(s.encode_errors, 0);
        assert!(d.tracked_len() as u64 <= s.accepted);
        assert!(d.tracked_len() <= config.max_tracked);
        assert!(d.source_table_len() <= config.max_sources);
    }
}
