//! Replays the checked-in fuzz corpora on stable, through the same bodies
//! the cargo-fuzz binaries call (`natter::fuzz_targets`).
//!
//! For every target, every file of `fuzz/corpus/NAME/` (seeds, which must
//! exist) and `fuzz/regressions/NAME/` (crashes found and fixed) must run
//! without a panic. The seeds are written by the ignored test below:
//! `cargo test --test fuzz_corpus -- --ignored write_seed_corpora`.

use natter::fuzz_targets::node::{cmd, frame, op};
use natter::fuzz_targets::{alice, bob, carol, established_pair, local, targets, Party, WALL_MS};
use natter::keyfile;
use natter_core::handshake::{Initiator, Responder};
use natter_core::transport::frame_raw;
use natter_core::wire::beacon::encode_beacon;
use natter_core::wire::codec::encode;
use natter_core::wire::frame::{
    Close, CloseReason, DirectMessage, FileData, FileEnd, FileEndReason, FileOffer, FileRequest,
    Frame, SyncRequest,
};
use natter_core::wire::limits::PROTOCOL_VERSION;
use natter_core::wire::{BeaconBody, Hello};
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    out.retain(|p| p.is_file());
    out.sort();
    out
}

#[test]
fn every_corpus_and_regression_file_replays_cleanly() {
    let mut failures = Vec::new();
    for (name, run) in targets() {
        let seeds = files(&fuzz_dir().join("corpus").join(name));
        assert!(!seeds.is_empty(), "fuzz/corpus/{name}/ has no seeds");
        let regressions = files(&fuzz_dir().join("regressions").join(name));
        for path in seeds.iter().chain(&regressions) {
            let data = fs::read(path).unwrap();
            if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
                failures.push(path.display().to_string());
            }
        }
    }
    assert!(failures.is_empty(), "these inputs panic: {failures:#?}");
}

#[test]
fn every_target_has_a_binary_and_nothing_else_does() {
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for (name, _) in targets() {
        let bin = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let src = fs::read_to_string(&bin).unwrap_or_default();
        assert!(
            src.contains(&format!("natter::fuzz_targets::{name}(")),
            "{} must call natter::fuzz_targets::{name}",
            bin.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
    }
    for dir in ["fuzz_targets", "corpus", "regressions"] {
        for entry in fs::read_dir(fuzz_dir().join(dir)).into_iter().flatten() {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(
                targets().iter().any(|(name, _)| *name == stem),
                "{} belongs to no target in natter::fuzz_targets::targets()",
                path.display()
            );
        }
    }
}

/// A relay and two addresses, one of each family.
fn reach() -> natter_core::wire::Reach {
    natter_core::wire::Reach::new(
        Some("https://relay.example.org./".into()),
        [
            "192.0.2.7:4433".parse().unwrap(),
            "[2001:db8::1]:4433".parse().unwrap(),
        ],
    )
}

/// Seeds per target, from real encodings of the fixed parties.
fn seeds(target: &str) -> Vec<(&'static str, Vec<u8>)> {
    let (a, b) = (alice(), bob());
    match target {
        "beacon" => {
            let body = |p: &Party, nickname: &str, n: u64| BeaconBody {
                version: PROTOCOL_VERSION,
                keys: *p.id.bound_keys(),
                tcp_port: p.cfg.listen_port,
                nickname: nickname.into(),
                instance: n,
                seq: n,
                timestamp_ms: 1_764_000_000_000,
            };
            let beacon = |p: &Party, nick, n| encode_beacon(&body(p, nick, n), &p.id).unwrap();
            vec![
                ("alice", beacon(a, "alice", 1)),
                ("bob-long-nick", beacon(b, &"b".repeat(32), u64::MAX)),
                ("empty-nick", beacon(a, "", 0)),
                (
                    "signed-by-other",
                    encode_beacon(&body(a, "x", 2), &b.id).unwrap(),
                ),
            ]
        }
        "deframer" => {
            let mut stream = frame_raw(&[7; 32]);
            stream.extend(frame_raw(&[9; 200]));
            let with = |head: &[u8], stream: &[u8]| [head, stream].concat();
            vec![
                ("two-messages-whole", with(&[32, 200, 0], &stream)),
                (
                    "two-messages-chunked",
                    with(&[32, 255, 3, 0, 1, 30], &stream),
                ),
                ("second-too-long", with(&[32, 100, 1, 4], &stream)),
                ("zero-length", with(&[10, 10, 1, 0], &[0, 1, 5, 0, 0])),
            ]
        }
        "frames" => {
            let frames = [
                Frame::Ping(300),
                Frame::Pong(u64::MAX),
                Frame::Close(Close {
                    reason: CloseReason::DuplicateLink,
                    detail: "dup".into(),
                }),
                Frame::Data(vec![0xde, 0xad]),
                Frame::Direct(DirectMessage {
                    id: [0x11; 16],
                    timestamp_ms: 1_764_000_000_123,
                    text: "hello, world".into(),
                }),
                Frame::Ack(vec![[0x11; 16], [0x22; 16]]),
                Frame::SyncRequest(SyncRequest { since_ms: 5 }),
                Frame::Nick("bobby".into()),
                Frame::RoomPost(Box::new(natter_core::chat::sign_room_post(
                    &alice().id,
                    natter_core::chat::open_room_id("ops"),
                    [0x11; 16],
                    1_764_000_000_123,
                    "hello, world".into(),
                ))),
                Frame::Rooms(vec!["lobby".into(), "ops".into()]),
                Frame::RoomControl(Box::new(natter_core::wire::RoomControl {
                    founding: natter_core::wire::RoomFounding {
                        name: "team".into(),
                        founder: alice().id.identity_key(),
                        created_ms: 5,
                        nonce: [0x33; 16],
                    },
                    seq: 2,
                    epoch: 1,
                    timestamp_ms: 5,
                    change: natter_core::wire::RoomChange::Remove {
                        member: bob().id.identity_key(),
                        envelopes: vec![(
                            alice().id.identity_key(),
                            natter_core::wire::KeyEnvelope {
                                ephemeral: [4; 32],
                                sealed: [5; 48],
                            },
                        )],
                    },
                    signature: natter_core::identity::SignatureBytes([6; 64]),
                })),
                Frame::SealedPost(Box::new(natter_core::wire::SealedPost {
                    room: natter_core::wire::RoomId([7; 32]),
                    id: [0x11; 16],
                    author: bob().id.identity_key(),
                    timestamp_ms: 5,
                    epoch: 1,
                    nonce: [8; 24],
                    ciphertext: vec![9; 28],
                    signature: natter_core::identity::SignatureBytes([6; 64]),
                })),
                Frame::Reach(reach()),
            ];
            let all = frames.iter().flat_map(encode).collect();
            vec![
                ("ping", encode(&frames[0])),
                ("close", encode(&frames[2])),
                ("direct", encode(&frames[4])),
                ("ack", encode(&frames[5])),
                ("room-post", encode(&frames[8])),
                ("rooms", encode(&frames[9])),
                ("room-control", encode(&frames[10])),
                ("sealed-post", encode(&frames[11])),
                ("reach", encode(&frames[12])),
                ("all", all),
            ]
        }
        "ticket" => {
            let t = |reach| natter_core::wire::Ticket {
                identity: a.id.identity_key(),
                reach,
            };
            vec![
                ("full", t(reach()).encode().into_bytes()),
                ("bare", t(Default::default()).encode().into_bytes()),
                (
                    "shouted",
                    format!("  {}\n", t(reach()).encode().to_uppercase()).into_bytes(),
                ),
            ]
        }
        "hello" => {
            let hello = |p: &Party, nickname: &str| Hello {
                version: PROTOCOL_VERSION,
                keys: *p.id.bound_keys(),
                nickname: nickname.into(),
                listen_port: p.cfg.listen_port,
                features: 0,
            };
            vec![
                ("alice", hello(a, "alice").encode()),
                ("bob-long-nick", hello(b, &"b".repeat(32)).encode()),
            ]
        }
        "keyfile" => vec![
            ("alice", keyfile::encode(&a.id).to_vec()),
            ("bob", keyfile::encode(&b.id).to_vec()),
        ],
        "handshake_responder" | "handshake_initiator" => {
            let (init, m1) = Initiator::start(&a.id, &a.cfg, None).unwrap();
            let (_, m2) = Responder::new(&b.id, &b.cfg)
                .unwrap()
                .read_msg1(&m1)
                .unwrap();
            let (_, m3) = init.read_msg2(&m2).unwrap();
            if target == "handshake_responder" {
                let msg1 = [&[32u8][..], &m1].concat();
                vec![("msg1-msg3", [&msg1[..], &m3].concat()), ("msg1", msg1)]
            } else {
                let with = |who: u8| [&[who][..], &m2].concat();
                vec![("msg2", with(0)), ("msg2-expect-bob", with(1))]
            }
        }
        // A byte choosing the message (how % 3 + 1) and mutation (how / 3 % 3), then its argument.
        "handshake_roundtrip_mutation" => vec![
            ("intact", vec![0]),
            ("msg2-xor-byte-40", vec![1, 40, 0x01]),
            ("msg3-truncate", vec![5, 60]),
            ("msg1-append", vec![6, 0]),
        ],
        "transport" => {
            // Alice's first messages to Bob, then a plaintext Bob seals back.
            let (mut ea, _) = established_pair();
            let mut piece = |frames: &[Frame]| {
                let mut wire = Vec::new();
                ea.transport.seal(frames, &mut wire).unwrap();
                let msg = &wire[2..];
                [&[u8::try_from(msg.len()).unwrap()][..], msg].concat()
            };
            let first = piece(&[Frame::Ping(1)]);
            let second = piece(&[Frame::Pong(2), Frame::Nick("al".into())]);
            let plain = encode(&Frame::Data(vec![1, 2, 3]));
            let plain = [&[plain.len() as u8][..], &plain].concat();
            vec![
                ("alice-first", first.clone()),
                ("alice-two", [&first[..], &second].concat()),
                ("plaintext", plain),
            ]
        }
        "cli_parse" => [
            ("say", "hello, room"),
            ("msg", "/msg bob hi there\r\n"),
            ("trust", "/trust alice#ABCD 1234-ABCD efgh"),
            ("connect-v6", "/connect [fe80::1%eth0]:47474"),
            ("connect-name", "/connect host.lan.:1"),
            ("history", "/history bob 20"),
            ("search", "/search   two words "),
            ("nick-escape", "/nick \u{1b}]52;c;AAAA\u{7}"),
            ("slash-say", "//not a command"),
            ("bidi", "\u{202e}evil\u{9b}2J\u{2066}x\u{85}y\tz"),
            ("name", "b0b#"),
            ("typo", "/conect 1.2.3.4:5"),
            ("room-founder", "/room +team#abcd-e"),
        ]
        .into_iter()
        .map(|(label, line)| (label, line.as_bytes().to_vec()))
        .collect(),
        "discovery" => {
            let beacon = |p: &Party, port: u16, instance: u64, seq: u64, at: u64| {
                let body = BeaconBody {
                    version: PROTOCOL_VERSION,
                    keys: *p.id.bound_keys(),
                    tcp_port: port,
                    nickname: p.cfg.nickname.clone(),
                    instance,
                    seq,
                    timestamp_ms: WALL_MS + at,
                };
                encode_beacon(&body, &p.id).unwrap()
            };
            // flags (source, 0x40 poll, 0x80 expire), dt (ms = dt²), datagram.
            let record = |flags: u8, dt: u8, data: &[u8]| {
                let len = u16::try_from(data.len()).unwrap().to_be_bytes();
                [&[flags, dt][..], &len, data].concat()
            };
            let a1 = beacon(a, 47001, 1, 1, 0);
            let forged = {
                let mut f = beacon(b, 47002, 1, 1, 0);
                *f.last_mut().unwrap() ^= 1;
                f
            };
            vec![
                ("alice", record(0x40, 0, &a1)),
                (
                    "replay-other-source",
                    [record(0, 0, &a1), record(1, 10, &a1)].concat(),
                ),
                (
                    "two-peers-expire",
                    [
                        record(0x40, 0, &a1),
                        record(2, 1, &beacon(b, 47002, 9, 3, 0)),
                        record(0xc0, 255, &beacon(carol(), 47003, 2, 1, 65_000)),
                        record(0xc0, 255, &[]),
                    ]
                    .concat(),
                ),
                (
                    "restart",
                    [
                        record(0, 0, &beacon(a, 47001, 1, 5, 0)),
                        record(0x40, 40, &beacon(a, 47001, 2, 1, 1_600)),
                        record(0, 40, &beacon(a, 47001, 1, 6, 3_200)),
                    ]
                    .concat(),
                ),
                (
                    "own-zero-port-forged",
                    [
                        record(0, 0, &beacon(local(), 47474, 1, 1, 0)),
                        record(4, 0, &beacon(b, 0, 1, 1, 0)),
                        record(5, 0, &forged),
                    ]
                    .concat(),
                ),
                (
                    "garbage-and-burst",
                    [
                        record(0, 0, &[1, 2, 3]),
                        record(0, 0, &[0; 600]),
                        record(0, 0, &a1[..a1.len() - 1]),
                        record(0, 0, &a1),
                        record(0, 0, &a1),
                        record(0, 0, &a1),
                    ]
                    .concat(),
                ),
            ]
        }
        "node" => node_seeds(),
        "files" => files_seeds(),
        other => panic!("no seeds for fuzz target {other}"),
    }
}

/// Scripts for the node target (see `natter::fuzz_targets::node`).
fn node_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let piece = |s: &[u8]| [&[u8::try_from(s.len()).unwrap()][..], s].concat();
    let frames = |kind: u8, args: &[u8]| [&[op::FRAMES, 0, 0, kind][..], args].concat();
    let command = |kind: u8, args: &[u8]| [&[op::COMMAND, kind][..], args].concat();
    let direct = |id: u8, text: &str| {
        frames(
            frame::DIRECT,
            &[&[id, 16][..], &piece(text.as_bytes())].concat(),
        )
    };
    let public = |author: u8, id: u8, text: &str| {
        frames(
            frame::PUBLIC,
            &[&[author, id, 16][..], &piece(text.as_bytes())].concat(),
        )
    };
    let wait = |dt: u8| vec![op::WAIT, dt];
    let beacon = |party: u8, port: u16| {
        let [hi, lo] = port.to_be_bytes();
        vec![op::BEACON, party, 0, hi, lo, 1, 1]
    };
    let ping = {
        let mut p = encode(&Frame::Ping(1));
        p.extend(encode(&Frame::Pong(2)));
        p
    };
    let script = |steps: &[Vec<u8>]| steps.concat();
    vec![
        (
            // Alice dials in, talks, acks, syncs, renames and leaves.
            "session",
            script(&[
                vec![op::PEER_DIALS_IN, 0, 0],
                direct(1, "hi natter"),
                public(1, 2, "hello room, from bob via alice"),
                command(cmd::SAY, &piece(b"hello room")),
                command(cmd::MSG, &[&[0][..], &piece(b"hi alice")].concat()),
                frames(frame::ACK_RECEIVED, &[]),
                frames(frame::ACK, &[9]),
                frames(frame::SYNC_REQUEST, &[0]),
                frames(frame::NICK, &piece(b"al")),
                frames(frame::PING, &[7]),
                frames(frame::PLAINTEXT, &piece(&ping)),
                vec![op::FLUSHED, 0, 0xff, 0xff],
                wait(100),
                frames(frame::CLOSE, &[&[0][..], &piece(b"bye")].concat()),
            ]),
        ),
        (
            // Bob's beacon makes the node dial him; Bob answers as himself.
            "discovered-dial",
            script(&[
                beacon(1, 47002),
                wait(255),
                wait(255),
                vec![op::CONNECTED, 0, 1],
                direct(3, "hello from bob"),
                command(cmd::HISTORY, &[1, 1, 50]),
                command(cmd::SEARCH, &[&piece(b"hello")[..], &[10]].concat()),
                command(cmd::VERIFY, &[1]),
                command(cmd::TRUST, &[1, 1, 1]),
                command(cmd::UNTRUST, &[7]),
                command(cmd::SEND_DATA, &[&[1][..], &piece(b"data")].concat()),
                command(cmd::PEERS, &[]),
            ]),
        ),
        (
            // A manual connect answered by Carol, one refused, a rename.
            "manual-connect",
            script(&[
                command(cmd::CONNECT, &[0xb7, 0x9b]),
                command(cmd::CONNECT, &[0xb7, 0x9c]),
                vec![op::CONNECTED, 0, 2],
                vec![op::CONNECT_FAILED, 0],
                command(cmd::NICK, &piece(b"natter2")),
                frames(frame::DATA, &piece(b"xyz")),
                wait(255),
                wait(255),
            ]),
        ),
        (
            // Alice dials in twice and is also discovered: duplicate links.
            "duplicate-links",
            script(&[
                vec![op::PEER_DIALS_IN, 0, 0],
                vec![op::PEER_DIALS_IN, 0, 1],
                beacon(0, 47001),
                wait(255),
                vec![op::CONNECTED, 0, 0],
                vec![op::PEER_DIALS_IN, 2, 2],
                vec![op::CLOSED, 0],
            ]),
        ),
        (
            // Silent and junk connections up to the limits, then quit.
            "limits-and-quit",
            script(&[
                vec![op::ACCEPT, 0],
                vec![op::ACCEPT, 1],
                vec![op::ACCEPT, 2],
                vec![op::ACCEPT, 3],
                vec![op::ACCEPT, 4],
                vec![op::RAW, 0, 3, 0, 32, 7],
                vec![op::RAW, 1, 2, 0xff, 0xff],
                vec![op::DATAGRAM, 0, 3, 1, 2, 3],
                vec![op::PEER_DIALS_IN, 1, 5],
                wait(100),
                wait(100),
                command(cmd::QUIT, &[]),
            ]),
        ),
        (
            // Rooms: join, post, a peer's posts (one moved to another
            // room), its Rooms frames (one invalid), who, info, leave.
            "rooms",
            script(&[
                vec![op::PEER_DIALS_IN, 0, 0],
                command(cmd::JOIN, &[4]),
                command(cmd::POST, &[&[4][..], &piece(b"to ops")].concat()),
                frames(
                    frame::ROOM_POST,
                    &[&[1, 4, 3, 16][..], &piece(b"ops from bob via alice")].concat(),
                ),
                frames(frame::ROOMS, &[2, 0, 4]),
                command(cmd::WHO, &[4]),
                command(cmd::ROOMS, &[]),
                command(cmd::INFO, &piece(b"abcd")),
                command(cmd::HISTORY, &[2, 4, 10]),
                command(cmd::READ_ROOM, &[4]),
                command(cmd::LEAVE, &[4]),
                frames(frame::ROOMS, &[1, 20, 3, b'B', b'A', b'D']),
                frames(
                    frame::ROOM_POST,
                    &[&[1, 8, 5, 16][..], &piece(b"moved")].concat(),
                ),
            ]),
        ),
        (
            // Alice's invite-only room: founded, we are invited, she posts;
            // Bob forges an entry and posts without being a member; then our
            // own room: create, invite Alice (twice: unverified), kick her.
            "private-rooms",
            script(&[
                vec![op::PEER_DIALS_IN, 0, 0],
                frames(frame::ROOM_CONTROL, &[0, 0, 0, 0, 0]),
                frames(frame::ROOM_CONTROL, &[0, 1, 1, 3, 0]),
                frames(
                    frame::SEALED_POST,
                    &[&[0, 0, 21][..], &piece(b"for members only")].concat(),
                ),
                frames(frame::ROOM_CONTROL, &[1, 2, 2, 3, 1]),
                frames(
                    frame::SEALED_POST,
                    &[&[1, 0, 22][..], &piece(b"not a member")].concat(),
                ),
                frames(frame::ROOM_CONTROL, &[0, 2, 2, 3, 1]),
                frames(
                    frame::SEALED_POST,
                    &[&[0, 1, 23][..], &piece(b"after the kick")].concat(),
                ),
                command(cmd::CREATE, &[0]),
                command(cmd::INVITE, &[0, 0]),
                command(cmd::INVITE, &[0, 0]),
                command(
                    cmd::POST,
                    &[&[10][..], &piece(b"+lobby")[..], &piece(b"x")].concat(),
                ),
                command(cmd::KICK, &[0, 0]),
                command(cmd::ROOMS, &[]),
            ]),
        ),
        (
            // An established link that goes quiet: keepalive, then timeout.
            "keepalive-timeout",
            script(&[
                vec![op::PEER_DIALS_IN, 2, 0],
                wait(75),
                wait(75),
                wait(75),
                wait(75),
                wait(75),
            ]),
        ),
    ]
}

/// Inputs of the files target (see `natter::fuzz_targets::files`): mode 0
/// frames, mode 1 a verification, mode 2 a script of `file_op` steps.
fn files_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use natter::fuzz_targets::{file_op as op, fuzz_files};
    // Known files by index into FUZZ_FILE_SIZES: 5 is 40,000 bytes, 6 is
    // 82,000, 7 is 300 groups and 100 bytes.
    let f82 = &fuzz_files()[6];
    let piece = |s: &[u8]| [&[u8::try_from(s.len()).unwrap()][..], s].concat();
    let offer = Frame::FileOffer(FileOffer {
        transfer: [6; 16],
        name: "notes.txt".into(),
        size: f82.size(),
        root: f82.root,
    });
    let request = Frame::FileRequest(FileRequest {
        transfer: [6; 16],
        first_group: 0,
        count: 6,
    });
    // The transfer id's first byte picks the file the data is checked against.
    let data = |first: u64, count: u8| {
        Frame::FileData(FileData {
            transfer: [6; 16],
            first_group: first,
            count,
            encoded: f82.encoding(first, u64::from(count)).unwrap(),
        })
    };
    let end = Frame::FileEnd(FileEnd {
        transfer: [6; 16],
        reason: FileEndReason::Completed,
        from_sender: false,
    });
    let frames =
        |fs: &[Frame]| [&[0u8][..], &fs.iter().flat_map(encode).collect::<Vec<u8>>()].concat();
    let script = |steps: &[&[u8]]| [&[2u8][..], &steps.concat()].concat();
    let offer_in = |p: u8, id: u8, file: u8, how: u8| [op::OFFER, p, id, file, how, 0];
    vec![
        (
            "frames-exchange",
            frames(&[offer.clone(), request, data(5, 1), end]),
        ),
        ("frames-data-3", frames(&[data(1, 3)])),
        // file, size delta + 128, first, count, how (0 genuine, 1 XOR at, 2 cut, 3 raw).
        ("verify-genuine", vec![1, 6, 128, 5, 1, 0]),
        ("verify-flip", vec![1, 6, 128, 1, 3, 1, 0, 130, 1]),
        ("verify-cut", vec![1, 5, 128, 2, 1, 2, 0, 1]),
        ("verify-size", vec![1, 6, 129, 5, 1, 0]),
        ("verify-empty", vec![1, 0, 128, 0, 1, 3]),
        (
            // Alice (verified) offers; accepted at once, received whole.
            "receive",
            script(&[
                &[op::LINK_UP, 0],
                &offer_in(0, 1, 6, 0),
                &[op::DATA_RUN, 0, 2],
            ]),
        ),
        (
            // Bob's 300-group file: accepted, past a commit, the link lost,
            // resumed, the node restarted, resumed again, finished.
            "receive-resume",
            script(&[
                &[op::LINK_UP, 1],
                &offer_in(1, 2, 7, 0),
                &[op::ACCEPT, 0],
                &[op::DATA_RUN, 0, 90],
                &[op::LINK_DOWN, 1],
                &[op::LINK_UP, 1],
                &[op::DATA_RUN, 0, 1],
                &[op::RESTART],
                &[op::LINK_UP, 1],
                &[op::DATA_RUN, 0, 20],
            ]),
        ),
        (
            // Our offer to Bob: offered again on the link, asked for, sent, done.
            "send",
            script(&[
                &[op::OFFER_OUT, 1, 5],
                &[op::LINK_UP, 1],
                &[op::REQUEST, 1, 0, 0, 0, 0, 3],
                &[op::PUMP, 1, 255],
                &[op::END, 1, 0, 0, 0],
            ]),
        ),
        (
            // The file changes on disk before it is sent; a request outside it.
            "send-changed",
            script(&[
                &[op::LINK_UP, 0],
                &[op::OFFER_OUT, 0, 6],
                &[op::OFFER_OUT, 0, 5],
                &[op::REQUEST, 0, 0, 0, 0, 0, 6],
                &[op::CHANGE, 1],
                &[op::PUMP, 0, 255],
                &[op::REQUEST, 0, 1, 0, 3, 0, 1],
            ]),
        ),
        (
            // Flipped and early data, a resume of the failed transfer,
            // unrequested data for a transfer that is not running.
            "bad-data",
            script(&[
                &[op::LINK_UP, 0],
                &offer_in(0, 3, 5, 0),
                &[op::DATA_NEXT, 0, 0, 1, 0, 200, 1],
                &[op::ACCEPT, 0],
                &[op::DATA_NEXT, 0, 0, 2, 0, 0, 0],
                &[op::DATA, 0, 9, 0, 1, 0, 0],
            ]),
        ),
        (
            // Offers refused: too large, a flood, a wrong root; rejects,
            // cancels and ends both ways.
            "offers",
            script(&[
                &[op::LINK_UP, 1],
                &offer_in(1, 1, 7, 0x0c),
                &offer_in(1, 2, 6, 0x02),
                &offer_in(1, 3, 5, 0x94),
                &[op::OFFER, 1, 4, 1, 1, 3, b'a', b'/', b'.'],
                &offer_in(1, 5, 2, 0),
                &offer_in(1, 6, 3, 0),
                &offer_in(1, 7, 4, 0),
                &offer_in(1, 8, 0, 0),
                &offer_in(1, 9, 1, 0),
                &offer_in(1, 10, 2, 0),
                &[op::REJECT, 0],
                &[op::CANCEL, 1],
                &[op::END, 1, 8, 2, 1],
                &offer_in(1, 10, 2, 0),
                &[op::WAIT, 255],
                &offer_in(1, 11, 2, 0),
            ]),
        ),
        (
            // The disk fills up while receiving; raw frames from the peer.
            "disk-full",
            script(&[
                &[op::DISK, 20],
                &[op::LINK_UP, 0],
                &offer_in(0, 4, 6, 0),
                &[op::DATA_RUN, 0, 2],
                &[op::RAW, 0],
                &piece(&encode(&offer)),
            ]),
        ),
    ]
}

#[test]
fn checked_in_seeds_are_current() {
    for (name, _) in targets() {
        for (label, data) in seeds(name) {
            let path = fuzz_dir().join("corpus").join(name).join(label);
            assert!(
                fs::read(&path).ok() == Some(data),
                "{} is stale or missing; run: cargo test --test fuzz_corpus -- --ignored write_seed_corpora",
                path.display()
            );
        }
    }
}

/// Writes `fuzz/corpus/NAME/SEED` for every target; check the files in.
#[test]
#[ignore = "writes the seed corpora into the source tree"]
fn write_seed_corpora() {
    for (name, _) in targets() {
        let dir = fuzz_dir().join("corpus").join(name);
        fs::create_dir_all(&dir).unwrap();
        for (label, data) in seeds(name) {
            fs::write(dir.join(label), data).unwrap();
        }
    }
}
