//! Replays the checked-in fuzz corpora on stable, through the same bodies
//! the cargo-fuzz binaries call (`natter::fuzz_targets`).
//!
//! For every target, every file of `fuzz/corpus/NAME/` (seeds, which must
//! exist) and `fuzz/regressions/NAME/` (crashes found and fixed) must run
//! without a panic. The seeds are written by the ignored test below:
//! `cargo test --test fuzz_corpus -- --ignored write_seed_corpora`.

use natter::fuzz_targets::{alice, bob, established_pair, Party, TARGETS};
use natter::handshake::{Initiator, Responder};
use natter::identity::keyfile;
use natter::transport::frame_raw;
use natter::wire::beacon::encode_beacon;
use natter::wire::codec::encode;
use natter::wire::frame::{Close, CloseReason, DirectMessage, Frame, SyncRequest};
use natter::wire::limits::PROTOCOL_VERSION;
use natter::wire::{BeaconBody, Hello};
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
    for (name, run) in TARGETS {
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
    for (name, _) in TARGETS {
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
                TARGETS.iter().any(|(name, _)| *name == stem),
                "{} belongs to no target in natter::fuzz_targets::TARGETS",
                path.display()
            );
        }
    }
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
            ];
            let all = frames.iter().flat_map(encode).collect();
            vec![
                ("ping", encode(&frames[0])),
                ("close", encode(&frames[2])),
                ("direct", encode(&frames[4])),
                ("ack", encode(&frames[5])),
                ("all", all),
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
        other => panic!("no seeds for fuzz target {other}"),
    }
}

#[test]
fn checked_in_seeds_are_current() {
    for (name, _) in TARGETS {
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
    for (name, _) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        fs::create_dir_all(&dir).unwrap();
        for (label, data) in seeds(name) {
            fs::write(dir.join(label), data).unwrap();
        }
    }
}
