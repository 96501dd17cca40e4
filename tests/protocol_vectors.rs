//! The test vectors of docs/PROTOCOL.md, recomputed from fixed inputs.
//!
//! Every ```` ```vector NAME ```` block in the document must equal what the
//! library computes, and every vector computed here must be in the document.
//! `NATTER_PRINT_VECTORS=1 cargo test --test protocol_vectors -- --nocapture`
//! prints them in the document's format.

use natter::keyfile;
use natter_core::files::proof;
use natter_core::handshake::{HandshakeConfig, Initiator, Responder};
use natter_core::identity::{domain, safety_number, LocalIdentity};
use natter_core::wire::beacon::encode_beacon;
use natter_core::wire::codec::encode;
use natter_core::wire::frame::{
    Close, CloseReason, DirectMessage, FileData, FileEnd, FileEndReason, FileOffer, FileRequest,
    Frame, PublicMessage, SignedPublic, SyncRequest,
};
use natter_core::wire::limits::PROTOCOL_VERSION;
use natter_core::wire::{decode_beacon, decode_frames, BeaconBody, Hello};

fn seq(start: u8) -> [u8; 32] {
    std::array::from_fn(|i| start + i as u8)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn compute() -> Vec<(&'static str, String)> {
    let alice = LocalIdentity::from_secrets(seq(0x00), seq(0x20)).unwrap();
    let bob = LocalIdentity::from_secrets(seq(0x40), seq(0x60)).unwrap();
    let mut v: Vec<(&'static str, String)> = Vec::new();

    let ak = alice.bound_keys();
    v.push(("alice.identity_key", hex(&ak.identity.0)));
    v.push(("alice.noise_static", hex(&ak.noise.0)));
    v.push(("alice.binding", hex(&ak.binding.0)));
    v.push(("alice.fingerprint", alice.fingerprint().grouped()));
    v.push(("alice.keyfile", hex(&keyfile::encode(&alice))));
    let bk = bob.bound_keys();
    v.push(("bob.identity_key", hex(&bk.identity.0)));
    v.push(("bob.noise_static", hex(&bk.noise.0)));
    v.push(("bob.fingerprint", bob.fingerprint().grouped()));
    v.push((
        "alice_bob.safety_number",
        safety_number(&ak.identity, &bk.identity),
    ));

    let body = BeaconBody {
        version: PROTOCOL_VERSION,
        keys: *ak,
        tcp_port: 47474,
        nickname: "alice".into(),
        instance: 0x0123_4567_89ab_cdef,
        seq: 1,
        timestamp_ms: 1_764_000_000_000,
    };
    let packet = encode_beacon(&body, &alice).unwrap();
    assert_eq!(decode_beacon(&packet).unwrap(), body);
    v.push(("beacon.body", hex(&encode(&body))));
    v.push(("beacon.packet", hex(&packet)));

    let hello = Hello {
        version: PROTOCOL_VERSION,
        keys: *bk,
        nickname: "bob".into(),
        listen_port: 47001,
        features: 0,
    };
    v.push(("bob.hello", hex(&hello.encode())));

    // Full handshake with fixed ephemeral keys.
    let mut acfg = HandshakeConfig::new("alice", 47000);
    acfg = acfg.with_fixed_ephemeral_for_tests(seq(0x80));
    let mut bcfg = HandshakeConfig::new("bob", 47001);
    bcfg = bcfg.with_fixed_ephemeral_for_tests(seq(0xa0));
    let (init, m1) = Initiator::start(&alice, &acfg, Some(bk.identity)).unwrap();
    let (resp, m2) = Responder::new(&bob, &bcfg).unwrap().read_msg1(&m1).unwrap();
    let (mut ea, m3) = init.read_msg2(&m2).unwrap();
    let mut eb = resp.read_msg3(&m3).unwrap();
    v.push(("handshake.msg1", hex(&m1)));
    v.push(("handshake.msg2", hex(&m2)));
    v.push(("handshake.msg3", hex(&m3)));
    v.push(("handshake.hash", hex(&ea.handshake_hash)));

    // First transport messages, length prefix included.
    let t1 = ea.transport.seal_one(&Frame::Ping(1)).unwrap();
    assert_eq!(eb.transport.open(&t1[2..]).unwrap(), vec![Frame::Ping(1)]);
    v.push(("transport.alice_first", hex(&t1)));
    let batch = [Frame::Pong(1), Frame::Nick("bobby".into())];
    let mut t2 = Vec::new();
    eb.transport.seal(&batch, &mut t2).unwrap();
    assert_eq!(ea.transport.open(&t2[2..]).unwrap(), batch.to_vec());
    v.push(("transport.bob_first", hex(&t2)));

    // Frame plaintexts.
    let id = [0x11u8; 16];
    let ts = 1_764_000_000_123u64;
    let text = "hello, world";
    let signed = SignedPublic {
        id: &id,
        author: &ak.identity,
        timestamp_ms: ts,
        text,
    };
    let signature = alice.sign(domain::PUBLIC_MESSAGE, &encode(&signed));
    let public = PublicMessage {
        id,
        author: ak.identity,
        timestamp_ms: ts,
        text: text.into(),
        signature,
    };
    let frames: [(&'static str, Frame); 9] = [
        ("frame.ping", Frame::Ping(300)),
        ("frame.pong", Frame::Pong(300)),
        (
            "frame.close",
            Frame::Close(Close {
                reason: CloseReason::DuplicateLink,
                detail: "dup".into(),
            }),
        ),
        ("frame.data", Frame::Data(vec![0xde, 0xad, 0xbe, 0xef])),
        ("frame.public", Frame::Public(Box::new(public))),
        (
            "frame.direct",
            Frame::Direct(DirectMessage {
                id,
                timestamp_ms: ts,
                text: text.into(),
            }),
        ),
        ("frame.ack", Frame::Ack(vec![id, [0x22; 16]])),
        (
            "frame.sync_request",
            Frame::SyncRequest(SyncRequest { since_ms: ts }),
        ),
        ("frame.nick", Frame::Nick("bobby".into())),
    ];
    for (name, f) in frames {
        let bytes = encode(&f);
        assert_eq!(decode_frames(&bytes).unwrap(), vec![f]);
        v.push((name, hex(&bytes)));
    }

    // Rooms (section 10.12): ids, a room post, the list of rooms.
    use natter_core::chat::{open_room_id, sign_room_post};
    let ops = open_room_id("ops");
    v.push(("room.id.lobby", hex(&open_room_id("lobby").0)));
    v.push(("room.id.ops", hex(&ops.0)));
    let post = sign_room_post(&alice, ops, id, ts, text.into());
    // The signed data is the frame less its variant byte and signature.
    let signed_post = encode(&natter_core::wire::room::SignedRoomPost {
        room: &ops,
        id: &id,
        author: &ak.identity,
        timestamp_ms: ts,
        text,
    });
    let frame = Frame::RoomPost(Box::new(post));
    let bytes = encode(&frame);
    assert_eq!(&bytes[1..bytes.len() - 64], &signed_post[..]);
    ak.identity
        .verify(
            domain::ROOM_POST,
            &signed_post,
            &match &frame {
                Frame::RoomPost(p) => p.signature,
                _ => unreachable!(),
            },
        )
        .unwrap();
    assert_eq!(decode_frames(&bytes).unwrap(), vec![frame]);
    v.push(("frame.room_post", hex(&bytes)));
    let rooms = Frame::Rooms(vec!["lobby".into(), "ops".into()]);
    let bytes = encode(&rooms);
    assert_eq!(decode_frames(&bytes).unwrap(), vec![rooms]);
    v.push(("frame.rooms", hex(&bytes)));

    // Invite-only rooms (section 10.13).
    use natter_core::chat::private::{control_id, private_room_id, signed_control_bytes};
    use natter_core::chat::room_keys::{
        decrypt_post, encrypt_post_with_nonce, open_key, seal_key_with_ephemeral,
    };
    use natter_core::chat::rooms::signed_sealed_bytes;
    use natter_core::identity::SignatureBytes;
    use natter_core::wire::{RoomChange, RoomControl, RoomFounding, SealedPost};
    let founding = RoomFounding {
        name: "team".into(),
        founder: ak.identity,
        created_ms: ts,
        nonce: [0x33; 16],
    };
    v.push(("room.private.founding", hex(&encode(&founding))));
    let team = private_room_id(&founding);
    v.push(("room.id.team", hex(&team.0)));
    v.push(("room.control_id.team_0", hex(&control_id(&team, 0))));
    let room_key = [0x55u8; 32];
    // Bob's envelope of the room key for epoch 0, one-time secret 44…44.
    let env = seal_key_with_ephemeral(&[0x44; 32], &room_key, &team, 0, bk).unwrap();
    assert_eq!(
        *open_key(bob.noise_secret(), bk, &env, &team, 0).unwrap(),
        room_key
    );
    v.push(("room.envelope.bob", hex(&encode(&env))));
    // Alice's log entries, each signed, checked as a receiver does, and
    // encoded as the frame that carries it.
    let entry = |seq: u32, epoch: u32, change: RoomChange| {
        let mut c = RoomControl {
            founding: founding.clone(),
            seq,
            epoch,
            timestamp_ms: ts + u64::from(seq),
            change,
            signature: SignatureBytes([0; 64]),
        };
        c.signature = alice.sign(domain::ROOM_CONTROL, &signed_control_bytes(&c));
        natter_core::chat::private::check_control(&c).unwrap();
        let frame = Frame::RoomControl(Box::new(c));
        let bytes = encode(&frame);
        assert_eq!(decode_frames(&bytes).unwrap(), vec![frame]);
        hex(&bytes)
    };
    // The founding entry: Alice's own envelope, one-time secret 45…45.
    let own = seal_key_with_ephemeral(&[0x45; 32], &room_key, &team, 0, ak).unwrap();
    v.push((
        "frame.room_control",
        entry(0, 0, RoomChange::Create { envelope: own }),
    ));
    // Entry 1: Alice invites Bob with the envelope above.
    let invite = RoomChange::Invite {
        member: *bk,
        envelope: env,
    };
    v.push(("frame.room_control.invite", entry(1, 0, invite)));
    v.push(("room.control_id.team_1", hex(&control_id(&team, 1))));
    // Entry 2: Alice removes Bob; epoch 1's key 57…57 goes to Alice only,
    // one-time secret 46…46.
    let next_key = [0x57u8; 32];
    let alices = seal_key_with_ephemeral(&[0x46; 32], &next_key, &team, 1, ak).unwrap();
    assert_eq!(
        *open_key(alice.noise_secret(), ak, &alices, &team, 1).unwrap(),
        next_key
    );
    let remove = RoomChange::Remove {
        member: bk.identity,
        envelopes: vec![(ak.identity, alices)],
    };
    v.push(("frame.room_control.remove", entry(2, 1, remove)));
    // Bob's post "hello, world" under that key, nonce 66…66.
    let nonce = [0x66u8; 24];
    let ciphertext =
        encrypt_post_with_nonce(&nonce, &room_key, &team, 0, &id, &bk.identity, ts, text).unwrap();
    let mut sealed = SealedPost {
        room: team,
        id,
        author: bk.identity,
        timestamp_ms: ts,
        epoch: 0,
        nonce,
        ciphertext,
        signature: SignatureBytes([0; 64]),
    };
    sealed.signature = bob.sign(domain::SEALED_POST, &signed_sealed_bytes(&sealed));
    assert_eq!(decrypt_post(&room_key, &sealed).unwrap(), text);
    let frame = Frame::SealedPost(Box::new(sealed));
    let bytes = encode(&frame);
    assert_eq!(decode_frames(&bytes).unwrap(), vec![frame]);
    v.push(("frame.sealed_post", hex(&bytes)));

    // Beyond the LAN (section 12): Alice's reach, as a frame and in a ticket.
    let reach = natter_core::wire::Reach::new(
        Some("https://relay.example.org/".into()),
        [
            "192.0.2.7:4433".parse().unwrap(),
            "[2001:db8::1]:4433".parse().unwrap(),
        ],
    );
    let frame = Frame::Reach(reach.clone());
    let bytes = encode(&frame);
    assert_eq!(decode_frames(&bytes).unwrap(), vec![frame]);
    v.push(("frame.reach", hex(&bytes)));
    let ticket = natter_core::wire::Ticket {
        identity: ak.identity,
        reach,
    };
    let text = ticket.encode();
    assert_eq!(natter_core::wire::Ticket::decode(&text), Ok(ticket));
    let raw = data_encoding::BASE32_NOPAD
        .decode(text["natter".len()..].to_ascii_uppercase().as_bytes())
        .unwrap();
    v.push(("ticket.body", hex(&raw[..raw.len() - 4])));
    v.push(("ticket.checksum", hex(&raw[raw.len() - 4..])));
    v.push(("ticket.text", text));

    file_vectors(&mut v);
    v
}

/// The file of section 16.8: `FILE_LEN` bytes, byte `i` is `i mod 251`.
const FILE_LEN: usize = 82_000;

fn file_content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Encodes groups `first .. first + count` with the real code.
fn encoded(content: &[u8], first: u64, count: u64) -> Vec<u8> {
    let (_, ob) = proof::outboard_in_memory(content);
    let mut out = Vec::new();
    proof::encode(content, &ob, content.len() as u64, first, count, &mut out).unwrap();
    out
}

/// The file-transfer vectors (sections 16.8 and 16.9), from the real code:
/// `natter_core::files::proof` for the tree, `natter_core::wire` for the
/// frames. The tree's chaining values come from the independent model
/// below ([`doc_tree`]), which must also give the same root.
fn file_vectors(v: &mut Vec<(&'static str, String)>) {
    let content = file_content(FILE_LEN);
    let size = FILE_LEN as u64;
    let (root, _) = proof::outboard_in_memory(&content);
    assert_eq!(proof::group_count(size), 6);
    v.push(("file.root", hex(&root)));

    let tree = DocTree::new(&content);
    assert_eq!(tree.root(), root);
    let cv = |lo: u64, hi: u64| hex(&tree.cv(lo, hi));
    let nodes = [
        ("cv(0)", cv(0, 1)),
        ("cv(1)", cv(1, 2)),
        ("cv(2)", cv(2, 3)),
        ("cv(3)", cv(3, 4)),
        ("cv(4)", cv(4, 5)),
        ("cv(5)", cv(5, 6)),
        ("cv(0-1)", cv(0, 2)),
        ("cv(2-3)", cv(2, 4)),
        ("cv(0-3)", cv(0, 4)),
        ("cv(4-5)", cv(4, 6)),
    ];
    let lines: Vec<String> = nodes.iter().map(|(n, h)| format!("{n} {h}")).collect();
    v.push(("file.chaining_values", lines.join(" ")));

    let g5 = encoded(&content, 5, 1);
    assert_eq!(g5, tree.encode(5, 1));
    v.push(("file.encoded_5", hex(&g5)));
    let g1_3 = encoded(&content, 1, 3);
    assert_eq!(g1_3, tree.encode(1, 3));
    v.push(("file.encoded_1_3.length", g1_3.len().to_string()));
    v.push((
        "file.encoded_1_3.blake3",
        hex(bao_tree::blake3::hash(&g1_3).as_bytes()),
    ));

    // Verification: each case is (name, root, size, first, count, bytes).
    let flip = |at: usize| {
        let mut b = g5.clone();
        b[at] ^= 1;
        b
    };
    let g0 = encoded(&content, 0, 1);
    let empty_root = *bao_tree::blake3::hash(b"").as_bytes();
    type Case<'a> = (&'a str, [u8; 32], u64, u64, u64, Vec<u8>);
    let cases: [Case; 11] = [
        ("5", root, size, 5, 1, g5.clone()),
        ("5-data-flipped", root, size, 5, 1, flip(g5.len() - 1)),
        ("5-sibling-flipped", root, size, 5, 1, flip(64)),
        ("5-root-pair-flipped", root, size, 5, 1, flip(0)),
        ("5-truncated", root, size, 5, 1, g5[..g5.len() - 1].to_vec()),
        ("5-trailing", root, size, 5, 1, [&g5[..], &[0]].concat()),
        ("5-size-82001", root, size + 1, 5, 1, g5.clone()),
        ("5-as-4", root, size, 4, 1, g5.clone()),
        ("6", root, size, 6, 1, Vec::new()),
        ("0-size-90000", root, 90_000, 0, 1, g0),
        ("empty", empty_root, 0, 0, 1, Vec::new()),
    ];
    let results: Vec<String> = cases
        .iter()
        .map(|(name, root, size, first, count, bytes)| {
            let verdict = match proof::verify(root, *size, *first, *count, bytes) {
                Ok(pieces) => {
                    // What verifies is the content at its offset.
                    let start = (*first * 16_384) as usize;
                    let got: Vec<u8> = pieces.iter().flat_map(|(_, b)| b.to_vec()).collect();
                    if *size > 0 {
                        assert_eq!(got, content[start..start + got.len()]);
                    }
                    "accept"
                }
                Err(_) => "reject",
            };
            format!("{name} {verdict}")
        })
        .collect();
    v.push(("file.verify", results.join(" ")));

    let transfer = [0x33u8; 16];
    let frames: [(&'static str, Frame); 5] = [
        (
            "frame.file_offer",
            Frame::FileOffer(FileOffer {
                transfer,
                name: "notes.txt".into(),
                size,
                root,
            }),
        ),
        (
            "frame.file_request",
            Frame::FileRequest(FileRequest {
                transfer,
                first_group: 0,
                count: 6,
            }),
        ),
        (
            "frame.file_data",
            Frame::FileData(FileData {
                transfer,
                first_group: 5,
                count: 1,
                encoded: g5.clone(),
            }),
        ),
        (
            "frame.file_end",
            Frame::FileEnd(FileEnd {
                transfer,
                reason: FileEndReason::Completed,
                from_sender: false,
            }),
        ),
        (
            "frame.file_end_sender",
            Frame::FileEnd(FileEnd {
                transfer,
                reason: FileEndReason::Cancelled,
                from_sender: true,
            }),
        ),
    ];
    for (name, f) in frames {
        let bytes = encode(&f);
        assert_eq!(decode_frames(&bytes).unwrap(), vec![f]);
        v.push((name, hex(&bytes)));
    }
}

/// The tree of PROTOCOL.md section 11.3 and the encoding of section 11.4,
/// written from the document with BLAKE3's own subtree functions
/// (`blake3::hazmat`), not with bao-tree.
struct DocTree<'a> {
    content: &'a [u8],
    groups: u64,
}

const GROUP: u64 = 16_384;

impl<'a> DocTree<'a> {
    fn new(content: &'a [u8]) -> Self {
        let groups = (content.len() as u64).div_ceil(GROUP).max(1);
        DocTree { content, groups }
    }

    fn group(&self, g: u64) -> &'a [u8] {
        let start = (g * GROUP) as usize;
        let end = ((g + 1) * GROUP).min(self.content.len() as u64) as usize;
        &self.content[start..end]
    }

    /// Where a node over groups `lo .. hi` (more than one) splits: its left
    /// child has the largest power of two of groups less than `hi - lo`.
    fn split(lo: u64, hi: u64) -> u64 {
        let n = hi - lo;
        lo + (1u64 << (63 - (n - 1).leading_zeros()))
    }

    /// The non-root chaining value of the node over groups `lo .. hi`.
    fn cv(&self, lo: u64, hi: u64) -> [u8; 32] {
        use bao_tree::blake3::hazmat::{merge_subtrees_non_root, HasherExt, Mode};
        if hi - lo == 1 {
            let mut h = bao_tree::blake3::Hasher::new();
            h.set_input_offset(lo * GROUP);
            h.update(self.group(lo));
            return h.finalize_non_root();
        }
        let mid = Self::split(lo, hi);
        merge_subtrees_non_root(&self.cv(lo, mid), &self.cv(mid, hi), Mode::Hash)
    }

    fn root(&self) -> [u8; 32] {
        use bao_tree::blake3::hazmat::{merge_subtrees_root, Mode};
        if self.groups == 1 {
            return *bao_tree::blake3::hash(self.content).as_bytes();
        }
        let mid = Self::split(0, self.groups);
        let (l, r) = (self.cv(0, mid), self.cv(mid, self.groups));
        *merge_subtrees_root(&l, &r, Mode::Hash).as_bytes()
    }

    /// Section 11.4: pre-order from the root, visiting only nodes that
    /// hold a group of the range; a parent sends both children's values.
    fn encode(&self, first: u64, count: u64) -> Vec<u8> {
        let mut out = Vec::new();
        self.visit(0, self.groups, first, first + count, &mut out);
        out
    }

    fn visit(&self, lo: u64, hi: u64, first: u64, end: u64, out: &mut Vec<u8>) {
        if hi - lo == 1 {
            out.extend_from_slice(self.group(lo));
            return;
        }
        let mid = Self::split(lo, hi);
        out.extend_from_slice(&self.cv(lo, mid));
        out.extend_from_slice(&self.cv(mid, hi));
        if first < mid {
            self.visit(lo, mid, first, end, out);
        }
        if end > mid {
            self.visit(mid, hi, first, end, out);
        }
    }
}

/// The document's tree and encoding agree with the implementation for
/// sizes around every shape up to 9 groups and every range of 1 to 3
/// groups, and the encodings verify.
#[test]
fn file_tree_and_encoding_are_as_documented() {
    let mut sizes = vec![0u64, 1, 1023, 1024, 1025, 8192, 16_383, 16_384];
    for groups in 2..=9u64 {
        for extra in [1, 1024, 2048 + 7, GROUP] {
            sizes.push((groups - 1) * GROUP + extra);
        }
    }
    for size in sizes {
        let content = file_content(size as usize);
        let tree = DocTree::new(&content);
        let (root, _) = proof::outboard_in_memory(&content);
        assert_eq!(tree.root(), root, "root of {size} bytes");
        assert_eq!(proof::group_count(size), tree.groups);
        for first in 0..tree.groups {
            for count in 1..=3u64.min(tree.groups - first) {
                let bytes = encoded(&content, first, count);
                assert_eq!(
                    bytes,
                    tree.encode(first, count),
                    "{size} bytes, {first}+{count}"
                );
                assert!(proof::verify(&root, size, first, count, &bytes).is_ok());
            }
        }
    }
}

/// The ```vector NAME blocks of the document, whitespace removed.
fn document_vectors() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/PROTOCOL.md"))
        .expect("docs/PROTOCOL.md exists");
    let mut out = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if let Some(name) = line.trim().strip_prefix("```vector ") {
            let mut value = String::new();
            for l in lines.by_ref() {
                if l.trim() == "```" {
                    break;
                }
                value.push_str(l.trim());
                value.push('\n');
            }
            out.push((name.trim().to_string(), value));
        }
    }
    out
}

/// Compare ignoring line breaks inside hex, but keeping spaces that matter
/// (fingerprints and safety numbers are compared as written).
fn normalise(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(if s.contains(' ') { " " } else { "" })
}

#[test]
fn protocol_md_vectors_match_the_implementation() {
    let computed = compute();
    if std::env::var_os("NATTER_PRINT_VECTORS").is_some() {
        for (name, value) in &computed {
            println!("```vector {name}");
            if value.len() > 64 && !value.contains(' ') && !value.contains('-') {
                for chunk in value.as_bytes().chunks(64) {
                    println!("{}", String::from_utf8_lossy(chunk));
                }
            } else {
                println!("{value}");
            }
            println!("```\n");
        }
    }
    let doc = document_vectors();
    for (name, value) in &computed {
        let found = doc.iter().find(|(n, _)| n == name);
        let Some((_, dv)) = found else {
            panic!("vector {name} is missing from docs/PROTOCOL.md");
        };
        assert_eq!(
            &normalise(dv),
            value,
            "vector {name} differs from docs/PROTOCOL.md"
        );
    }
    for (name, _) in &doc {
        assert!(
            computed.iter().any(|(n, _)| n == name),
            "docs/PROTOCOL.md has vector {name} that the tests do not compute"
        );
    }
}

#[test]
fn protocol_md_states_the_limits_in_force() {
    use natter_core::wire::limits::*;
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/PROTOCOL.md")).unwrap();
    for (name, value) in [
        ("MAX_BEACON_LEN", MAX_BEACON_LEN),
        ("MAX_NICK_LEN", MAX_NICK_LEN),
        ("MAX_TEXT_LEN", MAX_TEXT_LEN),
        ("MAX_CLOSE_DETAIL_LEN", MAX_CLOSE_DETAIL_LEN),
        ("MAX_ACK_IDS", MAX_ACK_IDS),
        ("MAX_NOISE_MSG_LEN", MAX_NOISE_MSG_LEN),
        ("MAX_PLAINTEXT_LEN", MAX_PLAINTEXT_LEN),
        ("MAX_HANDSHAKE_MSG_LEN", MAX_HANDSHAKE_MSG_LEN),
        ("HANDSHAKE_DEADLINE_MS", HANDSHAKE_DEADLINE_MS as usize),
        ("MAX_FILE_NAME_LEN", MAX_FILE_NAME_LEN),
        ("FILE_GROUP_SIZE", FILE_GROUP_SIZE as usize),
        ("MAX_DATA_GROUPS", usize::from(MAX_DATA_GROUPS)),
        ("MAX_REQUEST_GROUPS", MAX_REQUEST_GROUPS as usize),
        ("MAX_ROOM_NAME_LEN", MAX_ROOM_NAME_LEN),
        ("MAX_ROOMS_ANNOUNCED", MAX_ROOMS_ANNOUNCED),
        ("MAX_ROOM_MEMBERS", MAX_ROOM_MEMBERS),
        ("MAX_TICKET_LEN", MAX_TICKET_LEN),
        ("MAX_REACH_ADDRS", MAX_REACH_ADDRS),
        ("MAX_RELAY_URL_LEN", MAX_RELAY_URL_LEN),
    ] {
        let row = format!("| `{name}` | {value} |");
        assert!(doc.contains(&row), "docs/PROTOCOL.md lacks the row {row}");
    }
    let skew = natter_core::chat::store::MAX_CLOCK_SKEW_MS;
    let row = format!("| {skew} ms | `MAX_CLOCK_SKEW_MS` |");
    assert!(doc.contains(&row), "docs/PROTOCOL.md lacks the row {row}");

    let pending = natter_core::chat::private::MAX_PENDING_CONTROLS;
    let row = format!(
        "| {pending} (beyond, not kept in memory: read back from the store once the gap is filled) | `MAX_PENDING_CONTROLS` |"
    );
    assert!(doc.contains(&row), "docs/PROTOCOL.md lacks the row {row}");
    let bytes = natter_core::chat::private::MAX_PENDING_CONTROL_BYTES;
    let row = format!("| {bytes} (beyond, as above) | `MAX_PENDING_CONTROL_BYTES` |");
    assert!(doc.contains(&row), "docs/PROTOCOL.md lacks the row {row}");
    let who = natter_core::node::WHO_RECENT_MS;
    let row = format!("stamped within {who} ms | `WHO_RECENT_MS` |");
    assert!(doc.contains(&row), "docs/PROTOCOL.md lacks the row {row}");
    let every = natter_core::node::REACH_SAVE_INTERVAL_MS;
    let row = format!(
        "| at most one per {every} ms, all peers together (the latest is kept in memory, and saved at quit) | `REACH_SAVE_INTERVAL_MS` |"
    );
    assert!(doc.contains(&row), "docs/PROTOCOL.md lacks the row {row}");
    let contacts = natter_core::node::MAX_WAN_CONTACTS;
    let row = format!(
        "| {contacts}; a new one replaces the unverified peer kept for the shortest time | `MAX_WAN_CONTACTS` |"
    );
    assert!(doc.contains(&row), "docs/PROTOCOL.md lacks the row {row}");
    let bindings = natter_core::identity::VERIFIED_BINDINGS_MAX;
    let row = format!("| {bindings}, oldest forgotten | `VERIFIED_BINDINGS_MAX` |");
    assert!(doc.contains(&row), "docs/PROTOCOL.md lacks the row {row}");

    // File transfer's behavioural values: "| setting | where |".
    use natter_core::files::*;
    let max_size = FileLimits::default().max_size;
    assert_eq!(MAX_FILE_SIZE, (1u64 << 63) - 1, "the table says 2^63 − 1");
    for (setting, place) in [
        (
            format!("{OFFER_BURST} at once, then one per {OFFER_EVERY_MS} ms; beyond, `FileEnd(Busy)`"),
            "`OFFER_BURST` / `OFFER_EVERY_MS`",
        ),
        (
            format!("{MAX_PENDING_OFFERS}; beyond, `FileEnd(Busy)`"),
            "`MAX_PENDING_OFFERS`",
        ),
        (
            format!(
                "{max_size} bytes (16 GiB), `--max-file-size` (at most 2^63 − 1, `MAX_FILE_SIZE`, \
                 whatever the setting); beyond, `FileEnd(TooLarge)`"
            ),
            "`FileLimits::default`, `MAX_FILE_SIZE`",
        ),
        (
            format!(
                "{WINDOW_GROUPS} per transfer, {PEER_WINDOW_GROUPS} per peer shared by its transfers \
                 (at least {MIN_SHARE_GROUPS} each, beyond the peer's {PEER_WINDOW_GROUPS} only with \
                 more than 32)"
            ),
            "`WINDOW_GROUPS` / `PEER_WINDOW_GROUPS` / `MIN_SHARE_GROUPS`",
        ),
        (format!("every {COMMIT_GROUPS} groups"), "`COMMIT_GROUPS`"),
        (
            format!("{MAX_QUEUED_REQUESTS}; one more ends the transfer with `FileEnd(Invalid)`"),
            "`MAX_QUEUED_REQUESTS`",
        ),
        (
            format!("only while fewer than {SEND_BACKLOG} bytes are unwritten"),
            "`SEND_BACKLOG`",
        ),
    ] {
        let row = format!("| {setting} | {place} |");
        assert!(doc.contains(&row), "docs/PROTOCOL.md lacks the row {row}");
    }
}

/// Section 3.8 lists every domain-separation string natter uses, with its
/// length: an implementer needs them all to check or make any signature.
#[test]
fn protocol_md_lists_every_domain_string() {
    use natter_core::identity::domain;
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/PROTOCOL.md")).unwrap();
    let section = doc
        .split("### 3.8 Domain-separation strings")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("section 3.8");
    for s in [
        domain::NOISE_BINDING,
        domain::BEACON,
        domain::PUBLIC_MESSAGE,
        domain::ROOM_POST,
        domain::OPEN_ROOM,
        domain::PRIVATE_ROOM,
        domain::ROOM_CONTROL,
        domain::SEALED_POST,
        domain::ROOM_KEY_ENVELOPE.as_bytes(),
        domain::ROOM_CONTROL_ID,
        domain::FINGERPRINT,
        domain::SAFETY_NUMBER,
        domain::NOISE_PROLOGUE,
        natter_core::wire::ticket::CHECKSUM_DOMAIN,
    ] {
        let text = std::str::from_utf8(s).unwrap();
        let row = format!("| `{text}` | {} |", s.len());
        assert!(section.contains(&row), "section 3.8 lacks the row {row}");
    }
}
