//! Micro benchmarks (criterion): the hot paths of the protocol in memory.
//! `cargo bench --bench micro`. Figures only; nothing here asserts a time.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use natter_core::handshake::{Established, HandshakeConfig, Initiator, Responder};
use natter_core::identity::{domain, LocalIdentity};
use natter_core::wire::codec::{decode_exact, encode};
use natter_core::wire::frame::{decode_frames, DirectMessage, PublicMessage, SignedPublic};
use natter_core::wire::{decode_beacon, encode_beacon, BeaconBody, Deframer, Frame};

fn id(n: u8) -> LocalIdentity {
    LocalIdentity::from_secrets([n; 32], [n.wrapping_add(1); 32]).expect("fixed keys")
}

fn pair() -> (Established, Established) {
    let (a, b) = (id(1), id(2));
    let cfg = HandshakeConfig::new("bench", 1);
    let (init, m1) = Initiator::start(&a, &cfg, None).expect("start");
    let (resp, m2) = Responder::new(&b, &cfg)
        .expect("responder")
        .read_msg1(&m1)
        .expect("msg1");
    let (ea, m3) = init.read_msg2(&m2).expect("msg2");
    let eb = resp.read_msg3(&m3).expect("msg3");
    (ea, eb)
}

fn beacons(c: &mut Criterion) {
    let me = id(1);
    let body = BeaconBody {
        version: 1,
        keys: *me.bound_keys(),
        tcp_port: 47475,
        nickname: "alice".into(),
        instance: 1,
        seq: 1,
        timestamp_ms: 1,
    };
    let packet = encode_beacon(&body, &me).expect("encodes");
    let mut g = c.benchmark_group("beacon");
    g.bench_function("sign+encode", |b| b.iter(|| encode_beacon(&body, &me)));
    g.bench_function("decode+verify", |b| b.iter(|| decode_beacon(&packet)));
    g.finish();
}

fn identity_checks(c: &mut Criterion) {
    let keys = *id(1).bound_keys();
    let mut g = c.benchmark_group("identity");
    g.bench_function("binding verify (incl. low-order check)", |b| {
        b.iter(|| keys.verify())
    });
    g.bench_function("low-order check", |b| {
        b.iter(|| natter_core::identity::is_low_order(&keys.noise.0))
    });
    g.finish();
}

fn handshakes(c: &mut Criterion) {
    let (a, b) = (id(1), id(2));
    let cfg = HandshakeConfig::new("bench", 1);
    let mut g = c.benchmark_group("handshake");
    g.bench_function("full XX, both sides", |bench| {
        bench.iter(|| {
            let (init, m1) = Initiator::start(&a, &cfg, None).expect("start");
            let (resp, m2) = Responder::new(&b, &cfg)
                .expect("r")
                .read_msg1(&m1)
                .expect("1");
            let (_ea, m3) = init.read_msg2(&m2).expect("2");
            resp.read_msg3(&m3).expect("3")
        })
    });
    g.finish();
}

fn transport(c: &mut Criterion) {
    let mut g = c.benchmark_group("transport");
    for size in [64usize, 1024, 16 * 1024, 65_000] {
        let (mut ea, _) = pair();
        let frame = Frame::Data(vec![0xab; size]);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("seal", size), &frame, |b, f| {
            let mut out = Vec::with_capacity(size + 64);
            b.iter(|| {
                out.clear();
                ea.transport
                    .seal(std::iter::once(f), &mut out)
                    .expect("seal");
            })
        });
        // Open needs messages sealed in order by its own peer.
        let (mut ea, mut eb) = pair();
        g.bench_with_input(BenchmarkId::new("seal+open", size), &frame, |b, f| {
            b.iter_batched(
                || ea.transport.seal_one(f).expect("seal"),
                |m| eb.transport.open(&m[2..]).expect("open"),
                BatchSize::SmallInput,
            )
        });
    }
    // Many 64-byte frames packed into one Noise message versus one each.
    let small: Vec<Frame> = (0..64).map(|_| Frame::Data(vec![7; 64])).collect();
    let (mut ea, _) = pair();
    g.throughput(Throughput::Elements(small.len() as u64));
    g.bench_function("64 frames of 64 B, packed", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            out.clear();
            ea.transport.seal(&small, &mut out).expect("seal");
        })
    });
    g.bench_function("64 frames of 64 B, one message each", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            out.clear();
            for f in &small {
                ea.transport
                    .seal(std::iter::once(f), &mut out)
                    .expect("seal");
            }
        })
    });
    g.finish();
}

fn deframing(c: &mut Criterion) {
    let mut stream = Vec::new();
    for i in 0..1000u32 {
        natter_core::wire::framing::write_framed(
            &vec![i as u8; 100 + (i as usize % 900)],
            &mut stream,
        );
    }
    let mut g = c.benchmark_group("deframe");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("1000 messages, 4 KiB reads", |b| {
        b.iter(|| {
            let mut d = Deframer::new(65_535);
            let mut n = 0;
            for chunk in stream.chunks(4096) {
                d.extend(chunk);
                while let Ok(Some(_)) = d.next_message() {
                    n += 1;
                }
            }
            n
        })
    });
    g.finish();
}

fn chat_frames(c: &mut Criterion) {
    let me = id(1);
    let text = "a typical chat line, about sixty bytes long, give or take".to_string();
    let signed = SignedPublic {
        id: &[1; 16],
        author: &me.identity_key(),
        timestamp_ms: 1,
        text: &text,
    };
    let public = Frame::Public(Box::new(PublicMessage {
        id: [1; 16],
        author: me.identity_key(),
        timestamp_ms: 1,
        text: text.clone(),
        signature: me.sign(domain::PUBLIC_MESSAGE, &encode(&signed)),
    }));
    let direct = Frame::Direct(DirectMessage {
        id: [2; 16],
        timestamp_ms: 1,
        text,
    });
    let ack = Frame::Ack((0..256).map(|i| [i as u8; 16]).collect());
    let mut g = c.benchmark_group("postcard");
    for (name, f) in [
        ("public", &public),
        ("direct", &direct),
        ("ack of 256", &ack),
    ] {
        let bytes = encode(f);
        g.bench_function(format!("encode {name}"), |b| b.iter(|| encode(f)));
        g.bench_function(format!("decode {name}"), |b| {
            b.iter(|| decode_frames(&bytes))
        });
    }
    let bytes = encode(&public);
    g.bench_function("decode_exact public (canonical check)", |b| {
        b.iter(|| decode_exact::<Frame>(&bytes))
    });
    g.finish();
}

criterion_group!(
    benches,
    beacons,
    identity_checks,
    handshakes,
    transport,
    deframing,
    chat_frames
);
criterion_main!(benches);
