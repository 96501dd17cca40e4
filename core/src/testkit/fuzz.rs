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

use crate::files::{FileStore, FileStoreError, TransferRecord, TransferState};
use crate::handshake::{Established, HandshakeConfig, HandshakeError, Initiator, Responder};
use crate::identity::{IdentityKey, LocalIdentity};
use crate::transport::frame_raw;
use crate::wire::beacon::{encode_beacon, parse_beacon, SIGNATURE_LEN};
use crate::wire::codec::encode;
use crate::wire::frame::TransferId;
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
    ("files", files),
    ("ticket", ticket),
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

/// A ticket as a person pastes it: whatever decodes re-encodes to the
/// same text (in its canonical lowercase, trimmed), and round-trips.
pub fn ticket(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(t) = crate::wire::Ticket::decode(&text) {
        let canonical = t.encode();
        assert_eq!(canonical, text.trim().to_ascii_lowercase());
        assert_eq!(crate::wire::Ticket::decode(&canonical), Ok(t));
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

// ---- files ---------------------------------------------------------------

/// Sizes of the files the `files` target knows: empty, one byte, one
/// partial group, one whole group, a group and a byte, the 40,000 and
/// 82,000 bytes of PROTOCOL.md's vectors, and 300 groups and a bit (past a
/// transfer's window and its commit interval).
pub const FUZZ_FILE_SIZES: [u64; 8] = [0, 1, 1000, 16_384, 16_385, 40_000, 82_000, 4_915_300];

/// One file of the `files` target: byte `i` is `i mod 251`.
pub struct FuzzFile {
    pub content: Vec<u8>,
    pub root: [u8; 32],
    outboard: bao_tree::io::outboard::PostOrderMemOutboard,
}

impl FuzzFile {
    pub fn size(&self) -> u64 {
        self.content.len() as u64
    }

    /// The genuine encoding of groups `first .. first + count`, if they
    /// lie inside the file.
    pub fn encoding(&self, first: u64, count: u64) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let size = self.size();
        crate::files::proof::encode(
            &self.content[..],
            &self.outboard,
            size,
            first,
            count,
            &mut out,
        )
        .ok()?;
        Some(out)
    }
}

/// The files of the `files` target, in the order of [`FUZZ_FILE_SIZES`].
pub fn fuzz_files() -> &'static [FuzzFile] {
    static F: OnceLock<Vec<FuzzFile>> = OnceLock::new();
    F.get_or_init(|| {
        FUZZ_FILE_SIZES
            .iter()
            .map(|&n| {
                let content: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
                let (root, outboard) = crate::files::proof::outboard_in_memory(&content);
                FuzzFile {
                    content,
                    root,
                    outboard,
                }
            })
            .collect()
    })
}

fn fuzz_file(b: u8) -> &'static FuzzFile {
    let all = fuzz_files();
    &all[usize::from(b) % all.len()]
}

fn fuzz_file_by_root(root: &[u8; 32]) -> Option<&'static FuzzFile> {
    fuzz_files().iter().find(|f| &f.root == root)
}

/// What `proof::verify` returned for a range of `f` claimed to be `size`
/// bytes long: contiguous pieces from the range's first byte, as long as
/// the range, each equal to the real content there.
fn assert_verified_is_content(
    f: &FuzzFile,
    size: u64,
    first: u64,
    count: u64,
    pieces: &[(u64, bytes::Bytes)],
) {
    use crate::wire::limits::FILE_GROUP_SIZE;
    let mut at = first.saturating_mul(FILE_GROUP_SIZE);
    for (offset, data) in pieces {
        assert_eq!(*offset, at, "verified pieces are not contiguous");
        let start = usize::try_from(*offset).expect("offsets of a known file fit");
        let real = f.content.get(start..start + data.len());
        assert_eq!(real, Some(&data[..]), "verified bytes differ from the file");
        at += data.len() as u64;
    }
    let len = at - first.saturating_mul(FILE_GROUP_SIZE);
    assert_eq!(len, crate::files::proof::range_len(size, first, count));
}

/// Input: a mode byte, then the mode's input.
///
/// - mode 0, `frames`: the bytes decode as frames or not; accepted frames
///   re-encode to the same bytes, and the range of every `FileData` among
///   them is verified against a known file (picked by the first byte of
///   its transfer id) with [`proof::verify`](crate::files::proof::verify).
/// - mode 1, `verify`: `file size_delta first count how piece…` —
///   [`proof::verify`](crate::files::proof::verify) of a known file, its
///   size claimed `size_delta − 128` bytes off, on its genuine encoding of
///   the range changed as `how` says, or on raw bytes.
/// - mode 2: the [`Files`](crate::files::Files) state machine over a
///   [`MemoryFileStore`](crate::files::MemoryFileStore), fed by a script
///   of [`file_op`] steps: frames from two peers, the local user's
///   commands, links coming and going, restarts, a changed source file and
///   a full disk.
///
/// Whatever `verify` accepts is exactly the file's content at that offset;
/// the genuine encoding of a range inside the file with its real size is
/// accepted, and any other bytes for that range and size are refused.
///
/// Checked after every step of mode 2, besides no panic: every frame the
/// machine sends passes the frame checks, fits one transport message and
/// names a transfer it has in the right direction; every `FileData` it
/// sends verifies against its offer and is the file's content; every
/// `FileRequest` lies inside the file; every byte it writes is the offered
/// file's byte at that offset; a completed file has the offered size and
/// root; `running()` counts exactly the transfers the store has offered or
/// active (sending) and active (receiving); at most
/// [`MAX_PENDING_OFFERS`](crate::files::MAX_PENDING_OFFERS) offers wait.
pub fn files(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => files_frames(rest),
        1 => files_verify(rest),
        _ => files_machine(rest),
    }
}

fn files_frames(data: &[u8]) {
    let Ok(frames) = decode_frames(data) else {
        return;
    };
    let mut out = Vec::new();
    for f in &frames {
        assert_eq!(f.validate(), Ok(()));
        f.encode_into(&mut out);
    }
    assert_eq!(out, data);
    for frame in frames {
        let crate::wire::Frame::FileData(d) = frame else {
            continue;
        };
        let f = fuzz_file(d.transfer[0]);
        let count = u64::from(d.count);
        let verified =
            crate::files::proof::verify(&f.root, f.size(), d.first_group, count, &d.encoded);
        let genuine = f.encoding(d.first_group, count);
        match verified {
            Ok(pieces) => {
                assert_eq!(genuine.as_ref(), Some(&d.encoded), "other bytes verified");
                assert_verified_is_content(f, f.size(), d.first_group, count, &pieces);
            }
            Err(_) => assert_ne!(genuine.as_ref(), Some(&d.encoded), "genuine bytes refused"),
        }
    }
}

fn files_verify(data: &[u8]) {
    let mut input = Reader(data);
    let f = fuzz_file(input.byte());
    let delta = i64::from(input.byte()) - 128;
    let size = f.size().saturating_add_signed(delta);
    let first = u64::from(input.byte());
    let count = u64::from(input.byte());
    let how = input.byte();
    let genuine = f.encoding(first, count);
    let encoded = match (&genuine, how % 4) {
        (Some(g), 0) => g.clone(),
        // XOR the bytes that follow at a position, wrapping.
        (Some(g), 1) => {
            let mut e = g.clone();
            let at = usize::from(input.u16());
            for (i, x) in input.0.iter().enumerate() {
                if !e.is_empty() {
                    let j = (at + i) % e.len();
                    e[j] ^= x;
                }
            }
            e
        }
        // Cut, or extend with the bytes that follow.
        (Some(g), 2) => {
            let mut e = g.clone();
            let cut = usize::from(input.u16()).min(e.len());
            e.truncate(e.len() - cut);
            e.extend_from_slice(input.0);
            e
        }
        _ => input.0.to_vec(),
    };
    match crate::files::proof::verify(&f.root, size, first, count, &encoded) {
        Ok(pieces) => {
            if size == f.size() {
                assert_eq!(genuine.as_ref(), Some(&encoded), "other bytes verified");
            }
            assert_verified_is_content(f, size, first, count, &pieces);
        }
        Err(_) => assert!(
            size != f.size() || genuine.as_ref() != Some(&encoded),
            "the genuine encoding of groups {first}+{count} was refused"
        ),
    }
}

/// Step op codes of the `files` state-machine mode (the op byte modulo
/// [`file_op::COUNT`]) and their arguments. The local node talks to two
/// peers: Alice (`p` even; her key is verified, so her offers are accepted
/// at once) and Bob (`p` odd). `t` picks a transfer among those listed by
/// `Files::list` (newest first, modulo their number), `file` a known file
/// ([`FUZZ_FILE_SIZES`], modulo), `id` a transfer id (16 times that byte).
/// Frames from a peer whose link is down are not delivered.
pub mod file_op {
    /// `p`: a link to the peer is up.
    pub const LINK_UP: u8 = 0;
    /// `p`: the link to the peer is gone.
    pub const LINK_DOWN: u8 = 1;
    /// `p id file how piece`: the peer offers a file; `how` bit 0 names it
    /// by the piece (else `f.bin`), bit 1 gives a wrong root, bits 2–3 the
    /// size: the file's (0), k groups off (1) or k bytes off (2), with
    /// k = `how >> 4` − 8, or `u64::MAX >> (how >> 4)` (3).
    pub const OFFER: u8 = 2;
    /// `t count how at_hi at_lo x`: if `t` is an active incoming transfer
    /// of a known file, its peer sends the `count % 3 + 1` groups after
    /// those received: genuine (`how % 3` = 0), with byte `at` (modulo the
    /// length) XORed with `x` (1), or starting one group late (2).
    pub const DATA_NEXT: u8 = 3;
    /// `t n`: the peer of an active incoming transfer sends its next 3·n
    /// groups, genuine, three to a frame, while the transfer runs.
    pub const DATA_RUN: u8 = 4;
    /// `p id first count piece`: the peer sends `FileData` of those bytes.
    pub const DATA: u8 = 5;
    /// `p id first_hi first_lo count_hi count_lo`: the peer asks for groups.
    pub const REQUEST: u8 = 6;
    /// `p id reason from_sender`: the peer ends a transfer.
    pub const END: u8 = 7;
    /// `p piece`: the peer sends this plaintext (decoded as frames).
    pub const RAW: u8 = 8;
    /// `p file`: the local user offers a known file to the peer, under
    /// transfer id `n` (16 times), n = 0, 1, 2, … for each offer made.
    pub const OFFER_OUT: u8 = 9;
    /// `p budget`: the node pumps file data to the peer, `budget` KiB.
    pub const PUMP: u8 = 10;
    /// `t`: the local user accepts a transfer.
    pub const ACCEPT: u8 = 11;
    /// `t`: the local user rejects a transfer.
    pub const REJECT: u8 = 12;
    /// `t`: the local user cancels a transfer.
    pub const CANCEL: u8 = 13;
    /// `dt`: time advances dt² × 10 ms.
    pub const WAIT: u8 = 14;
    /// The node restarts over the same store (links are down after).
    pub const RESTART: u8 = 15;
    /// `t`: the source file of an outgoing transfer changes on disk (for
    /// every offer of that file).
    pub const CHANGE: u8 = 16;
    /// `kib`: the store's disk holds `kib` KiB of partial files (0: no limit).
    pub const DISK: u8 = 17;
    pub const COUNT: u8 = 18;
}

/// A [`FileStore`](crate::files::FileStore) over a shared
/// [`MemoryFileStore`](crate::files::MemoryFileStore) that survives a
/// restart of the state machine, and checks every write: bytes of a known
/// file's transfer must be that file's bytes at that offset.
#[derive(Debug, Clone)]
struct CheckedStore(std::sync::Arc<std::sync::Mutex<crate::files::MemoryFileStore>>);

impl CheckedStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, crate::files::MemoryFileStore> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FileStore for CheckedStore {
    fn insert(&mut self, rec: &TransferRecord) -> Result<(), FileStoreError> {
        self.lock().insert(rec)
    }

    fn get(
        &self,
        peer: &[u8; 32],
        outgoing: bool,
        id: &TransferId,
    ) -> Result<Option<TransferRecord>, FileStoreError> {
        self.lock().get(peer, outgoing, id)
    }

    fn list(&self, limit: usize) -> Result<Vec<TransferRecord>, FileStoreError> {
        self.lock().list(limit)
    }

    fn unfinished(&self) -> Result<Vec<TransferRecord>, FileStoreError> {
        self.lock().unfinished()
    }

    fn set_state(
        &mut self,
        rec: &TransferRecord,
        state: TransferState,
    ) -> Result<(), FileStoreError> {
        self.lock().set_state(rec, state)
    }

    fn forget(&mut self, rec: &TransferRecord) -> Result<(), FileStoreError> {
        self.lock().forget(rec)
    }

    fn encode(
        &mut self,
        rec: &TransferRecord,
        first: u64,
        count: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), FileStoreError> {
        self.lock().encode(rec, first, count, out)
    }

    fn write(
        &mut self,
        rec: &TransferRecord,
        offset: u64,
        data: bytes::Bytes,
    ) -> Result<(), FileStoreError> {
        assert!(!rec.outgoing, "a write to an outgoing transfer");
        let end = offset.checked_add(data.len() as u64);
        assert!(
            end.is_some_and(|e| e <= rec.size),
            "a write past the offered size"
        );
        if let Some(f) = fuzz_file_by_root(&rec.root) {
            let start = usize::try_from(offset).expect("inside a known file");
            let real = f.content.get(start..start + data.len());
            assert_eq!(
                real,
                Some(&data[..]),
                "bytes written that are not the file's"
            );
        }
        self.lock().write(rec, offset, data)
    }

    fn commit(&mut self, rec: &TransferRecord, done_groups: u64) -> Result<(), FileStoreError> {
        assert!(done_groups <= crate::files::proof::group_count(rec.size));
        self.lock().commit(rec, done_groups)
    }

    fn complete(&mut self, rec: &TransferRecord) -> Result<String, FileStoreError> {
        self.lock().complete(rec)
    }
}

/// The limits of the state machine under test: a small size limit, so
/// that `TooLarge` is reached, and auto-accept from verified keys.
const FUZZ_FILE_LIMITS: crate::files::FileLimits = crate::files::FileLimits {
    max_size: 8 << 20,
    auto_accept_verified: true,
};

struct FilesDriver {
    files: crate::files::Files,
    store: CheckedStore,
    disk: crate::files::MemoryDisk,
    peers: [IdentityKey; 2],
    up: [bool; 2],
    now: u64,
    /// Outgoing transfers offered so far (their ids count up).
    offered: u8,
}

impl FilesDriver {
    fn new() -> FilesDriver {
        let disk = crate::files::MemoryDisk::default();
        let store = CheckedStore(std::sync::Arc::new(std::sync::Mutex::new(
            crate::files::MemoryFileStore::new(disk.clone()),
        )));
        FilesDriver {
            files: crate::files::Files::new(Box::new(store.clone()), FUZZ_FILE_LIMITS),
            store,
            disk,
            peers: [alice().id.identity_key(), bob().id.identity_key()],
            up: [false; 2],
            now: 0,
            offered: 0,
        }
    }

    /// A transfer by a byte of the input, among all the store lists.
    fn transfer(&self, b: u8) -> Option<TransferRecord> {
        let all = self.files.list(10_000).expect("the memory store lists");
        let n = all.len();
        (n > 0).then(|| all[usize::from(b) % n].0.clone())
    }

    fn peer_index(&self, key: &[u8; 32]) -> usize {
        self.peers
            .iter()
            .position(|p| &p.0 == key)
            .expect("a transfer with a known peer")
    }

    /// A frame from peer `p`, delivered as the node would: only on an up
    /// link, only if it passes the frame checks.
    fn deliver(&mut self, p: usize, frame: crate::wire::Frame) {
        if !self.up[p] || frame.validate().is_err() {
            return;
        }
        let verified = p == 0;
        let now = self.now;
        let actions = self
            .files
            .on_frame(now, WALL_MS + now, self.peers[p], verified, frame);
        self.check_actions(actions);
    }

    /// Everything the machine asked to send is a valid frame for a
    /// transfer it has, and all `FileData` it sends verifies.
    fn check_actions(&mut self, actions: crate::files::FileActions) {
        use crate::files::proof;
        use crate::wire::limits::MAX_PLAINTEXT_LEN;
        use crate::wire::Frame;
        for (to, frame) in actions.send {
            self.peer_index(&to.0);
            assert_eq!(frame.validate(), Ok(()), "sent {frame:?}");
            let bytes = encode(&frame);
            assert!(
                bytes.len() <= MAX_PLAINTEXT_LEN,
                "a frame too long for a message"
            );
            assert_eq!(decode_frames(&bytes).as_deref(), Ok(&[frame.clone()][..]));
            let get = |outgoing, id| {
                self.store
                    .lock()
                    .get(&to.0, outgoing, id)
                    .expect("the memory store reads")
            };
            match &frame {
                Frame::FileOffer(o) => {
                    let rec = get(true, &o.transfer).expect("an offer of a transfer we send");
                    assert_eq!((&o.name, o.size, o.root), (&rec.name, rec.size, rec.root));
                }
                Frame::FileData(d) => {
                    let rec = get(true, &d.transfer).expect("data of a transfer we send");
                    let count = u64::from(d.count);
                    let pieces =
                        proof::verify(&rec.root, rec.size, d.first_group, count, &d.encoded)
                            .expect("the data we send verifies");
                    let f = fuzz_file_by_root(&rec.root).expect("we only offer known files");
                    assert_verified_is_content(f, rec.size, d.first_group, count, &pieces);
                }
                Frame::FileRequest(r) => {
                    let rec = get(false, &r.transfer).expect("a request for a transfer we receive");
                    assert_eq!(rec.state, TransferState::Active);
                    let end = r.first_group + u64::from(r.count);
                    assert!(
                        end <= proof::group_count(rec.size),
                        "a request past the end"
                    );
                }
                Frame::FileEnd(_) => {}
                other => panic!("the file machine sent {other:?}"),
            }
        }
        for ev in actions.events {
            if let crate::files::FileEvent::Completed(rec) = ev {
                if rec.outgoing {
                    continue;
                }
                let path = rec.path.as_deref().expect("a completed file has a path");
                let got = self
                    .disk
                    .get(path)
                    .expect("a completed file is on the disk");
                assert_eq!(
                    got.len() as u64,
                    rec.size,
                    "a completed file of another size"
                );
                assert_eq!(
                    *bao_tree::blake3::hash(&got).as_bytes(),
                    rec.root,
                    "a completed file that is not the one offered"
                );
            }
        }
    }

    /// The transfers running are exactly those the store has unfinished,
    /// and the offers waiting stay within their bound.
    fn check(&self) {
        let all = self
            .store
            .lock()
            .list(usize::MAX)
            .expect("the memory store lists");
        let count = |outgoing: bool, states: &[TransferState]| {
            all.iter()
                .filter(|r| r.outgoing == outgoing && states.contains(&r.state))
                .count()
        };
        let sending = count(true, &[TransferState::Offered, TransferState::Active]);
        let receiving = count(false, &[TransferState::Active]);
        assert_eq!(self.files.running(), (sending, receiving));
        let waiting = count(false, &[TransferState::Offered]);
        assert!(
            waiting <= crate::files::MAX_PENDING_OFFERS,
            "{waiting} offers waiting"
        );
    }

    fn step(&mut self, input: &mut Reader<'_>) {
        use crate::wire::frame::{FileData, FileEnd, FileEndReason, FileOffer, FileRequest};
        use crate::wire::Frame;
        let now = self.now;
        match input.byte() % file_op::COUNT {
            file_op::LINK_UP => {
                let p = usize::from(input.byte() % 2);
                self.up[p] = true;
                let actions = self.files.on_link_up(self.peers[p]);
                self.check_actions(actions);
            }
            file_op::LINK_DOWN => {
                let p = usize::from(input.byte() % 2);
                self.up[p] = false;
                self.files.on_link_down(self.peers[p]);
            }
            file_op::OFFER => {
                let p = usize::from(input.byte() % 2);
                let id = [input.byte(); 16];
                let f = fuzz_file(input.byte());
                let how = input.byte();
                let piece = input.piece();
                let name = if how & 1 != 0 {
                    String::from_utf8_lossy(piece).into_owned()
                } else {
                    "f.bin".into()
                };
                let k = i64::from(how >> 4) - 8;
                let size = match (how >> 2) & 3 {
                    0 => f.size(),
                    1 => f.size().saturating_add_signed(k * 16_384),
                    2 => f.size().saturating_add_signed(k),
                    _ => u64::MAX >> (how >> 4),
                };
                let mut root = f.root;
                if how & 2 != 0 {
                    root[0] ^= 1;
                }
                let offer = FileOffer {
                    transfer: id,
                    name,
                    size,
                    root,
                };
                self.deliver(p, Frame::FileOffer(offer));
            }
            file_op::DATA_NEXT => {
                let (t, count, how, at, x) = (
                    input.byte(),
                    input.byte() % 3 + 1,
                    input.byte(),
                    input.u16(),
                    input.byte(),
                );
                self.data_next(t, count, how, at, x);
            }
            file_op::DATA_RUN => {
                let (t, n) = (input.byte(), input.byte());
                if let Some(rec) = self.transfer(t).filter(|r| !r.outgoing) {
                    for _ in 0..n {
                        if !self.send_next(&rec, 3, 0, 0, 0) {
                            break;
                        }
                    }
                }
            }
            file_op::DATA => {
                let p = usize::from(input.byte() % 2);
                let id = [input.byte(); 16];
                let (first, count) = (u64::from(input.byte()), input.byte());
                let encoded = input.long_piece().to_vec();
                let data = FileData {
                    transfer: id,
                    first_group: first,
                    count,
                    encoded,
                };
                self.deliver(p, Frame::FileData(data));
            }
            file_op::REQUEST => {
                let p = usize::from(input.byte() % 2);
                let id = [input.byte(); 16];
                let first = u64::from(input.u16());
                let count = u32::from(input.u16());
                let req = FileRequest {
                    transfer: id,
                    first_group: first,
                    count,
                };
                self.deliver(p, Frame::FileRequest(req));
            }
            file_op::END => {
                let p = usize::from(input.byte() % 2);
                let id = [input.byte(); 16];
                let reason = match input.byte() % 8 {
                    0 => FileEndReason::Completed,
                    1 => FileEndReason::Rejected,
                    2 => FileEndReason::Cancelled,
                    3 => FileEndReason::TooLarge,
                    4 => FileEndReason::Busy,
                    5 => FileEndReason::Unavailable,
                    6 => FileEndReason::Invalid,
                    _ => FileEndReason::Failed,
                };
                let from_sender = input.byte() & 1 != 0;
                let end = FileEnd {
                    transfer: id,
                    reason,
                    from_sender,
                };
                self.deliver(p, Frame::FileEnd(end));
            }
            file_op::RAW => {
                let p = usize::from(input.byte() % 2);
                if let Ok(frames) = decode_frames(input.piece()) {
                    for f in frames {
                        self.deliver(p, f);
                    }
                }
            }
            file_op::OFFER_OUT => {
                let p = usize::from(input.byte() % 2);
                let k = input.byte();
                let f = fuzz_file(k);
                // Ids 0, 1, 2, … (as the peer's `id` byte names them), so
                // the peer's own transfers may share them.
                let n = self.offered;
                self.offered = self.offered.wrapping_add(1);
                let id = [n; 16];
                // One source file per known file, shared by its offers
                // (and changed for all of them by `CHANGE`): no copy of
                // megabytes per offer.
                let path = format!("out/{}.bin", f.size());
                if !self.disk.paths().contains(&path) {
                    self.disk.put(&path, f.content.clone());
                }
                let digest = crate::files::FileDigest {
                    name: format!("{}.bin", f.size()),
                    size: f.size(),
                    root: f.root,
                };
                let up = self.up[p];
                // A second offer under an id in use is refused by the store.
                let offered = self
                    .files
                    .offer(id, self.peers[p], path, digest, WALL_MS + now, up);
                if let Ok(actions) = offered {
                    self.check_actions(actions);
                }
            }
            file_op::PUMP => {
                let p = usize::from(input.byte() % 2);
                let budget = usize::from(input.byte()) * 1024;
                if self.up[p] {
                    let actions = self.files.pump(now, self.peers[p], budget);
                    self.check_actions(actions);
                }
            }
            op @ (file_op::ACCEPT | file_op::REJECT | file_op::CANCEL) => {
                let Some(rec) = self.transfer(input.byte()) else {
                    return;
                };
                let up = self.up[self.peer_index(&rec.peer)];
                let result = match op {
                    file_op::ACCEPT => self.files.accept(rec, up),
                    file_op::REJECT => self.files.reject(rec),
                    _ => self.files.cancel(rec),
                };
                if let Ok(actions) = result {
                    self.check_actions(actions);
                }
            }
            file_op::WAIT => self.now += u64::from(input.byte()).pow(2) * 10,
            file_op::RESTART => {
                self.files =
                    crate::files::Files::new(Box::new(self.store.clone()), FUZZ_FILE_LIMITS);
                self.up = [false; 2];
            }
            file_op::CHANGE => {
                let Some(rec) = self.transfer(input.byte()) else {
                    return;
                };
                if let Some(path) = rec.path.as_deref().filter(|_| rec.outgoing) {
                    if let Some(mut content) = self.disk.get(path) {
                        if let Some(b) = content.last_mut() {
                            *b ^= 1;
                        } else {
                            content.push(0);
                        }
                        self.disk.put(path, content);
                    }
                }
            }
            _ => {
                let kib = usize::from(input.byte());
                self.disk.set_capacity((kib > 0).then_some(kib * 1024));
            }
        }
    }

    /// The peer of incoming transfer `t` sends its next `count` groups.
    fn data_next(&mut self, t: u8, count: u8, how: u8, at: u16, x: u8) {
        if let Some(rec) = self.transfer(t).filter(|r| !r.outgoing) {
            self.send_next(&rec, count, how, at, x);
        }
    }

    /// The peer of incoming transfer `rec` sends its next `count` groups
    /// (see [`file_op::DATA_NEXT`]). False if it sent nothing: the transfer
    /// is not running, is whole, or is not of a known file.
    fn send_next(&mut self, rec: &TransferRecord, count: u8, how: u8, at: u16, x: u8) -> bool {
        use crate::wire::frame::FileData;
        use crate::wire::limits::FILE_GROUP_SIZE;
        let Some(f) = fuzz_file_by_root(&rec.root) else {
            return false;
        };
        let running = self
            .files
            .list(10_000)
            .expect("the memory store lists")
            .into_iter()
            .find(|(r, _)| r.id == rec.id && r.peer == rec.peer && !r.outgoing)
            .filter(|(r, _)| r.state == TransferState::Active);
        let Some((_, done)) = running else {
            return false;
        };
        let mut first = done / FILE_GROUP_SIZE;
        if how % 3 == 2 {
            first += 1;
        }
        let groups = crate::files::proof::group_count(f.size());
        let count = u64::from(count).min(groups.saturating_sub(first)).max(1);
        let Some(mut encoded) = f.encoding(first, count) else {
            return false;
        };
        if how % 3 == 1 && !encoded.is_empty() {
            let i = usize::from(at) % encoded.len();
            encoded[i] ^= x.max(1);
        }
        let p = self.peer_index(&rec.peer);
        let data = FileData {
            transfer: rec.id,
            first_group: first,
            count: count as u8,
            encoded,
        };
        self.deliver(p, crate::wire::Frame::FileData(data));
        true
    }
}

fn files_machine(data: &[u8]) {
    let mut d = FilesDriver::new();
    let mut input = Reader(data);
    while !input.is_empty() {
        d.step(&mut input);
        d.check();
    }
}
