//! The test vectors of docs/PROTOCOL.md, recomputed from fixed inputs.
//!
//! Every ```` ```vector NAME ```` block in the document must equal what the
//! library computes, and every vector computed here must be in the document.
//! `NATTER_PRINT_VECTORS=1 cargo test --test protocol_vectors -- --nocapture`
//! prints them in the document's format.

use natter::keyfile;
use natter_core::handshake::{HandshakeConfig, Initiator, Responder};
use natter_core::identity::{domain, safety_number, LocalIdentity};
use natter_core::wire::beacon::encode_beacon;
use natter_core::wire::codec::encode;
use natter_core::wire::frame::{
    Close, CloseReason, DirectMessage, Frame, PublicMessage, SignedPublic, SyncRequest,
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
        ("frame.public", Frame::Public(public)),
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
    v
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
    ] {
        let row = format!("| `{name}` | {value} |");
        assert!(doc.contains(&row), "docs/PROTOCOL.md lacks the row {row}");
    }
    let skew = natter_core::chat::store::MAX_CLOCK_SKEW_MS;
    let row = format!("| {skew} ms | `MAX_CLOCK_SKEW_MS` |");
    assert!(doc.contains(&row), "docs/PROTOCOL.md lacks the row {row}");
}
