//! The hostile-peer suite: attacks against a real running node on
//! 127.0.0.1, each followed by a check that the node still serves its honest
//! peer in both directions and lost nothing. SECURITY.md lists these cases
//! with the expected reaction.

use natter::keyfile;
use natter::shell as net;
use natter::store::Store;
use natter::ui::{frontend, render::Style};
use natter_core::event::Event;
use natter_core::handshake::{HandshakeConfig, Initiator, NOISE_PARAMS};
use natter_core::identity::{domain, LocalIdentity};
use natter_core::node::{Command, Node, NodeConfig};
use natter_core::rng::Rng;
use natter_core::transport::Transport;
use natter_core::wire::frame::DirectMessage;
use natter_core::wire::{encode_beacon, BeaconBody, Frame, Hello};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

const DEADLINE_MS: u64 = 1_500;

struct Running {
    cmd: mpsc::Sender<Command>,
    events: natter::shell::EventRx,
    addr: SocketAddr,
    beacon_port: u16,
    id: LocalIdentity,
}

fn identity(seed: u8) -> LocalIdentity {
    LocalIdentity::from_secrets([seed; 32], [seed.wrapping_add(77); 32]).unwrap()
}

/// A node with a real listener and a real beacon socket, beacons aimed at
/// the loopback broadcast address only.
async fn start(seed: u8, nick: &str, tune: impl FnOnce(&mut NodeConfig)) -> Running {
    start_with_store(seed, nick, tune, Store::open_in_memory().unwrap()).await
}

async fn start_with_store(
    seed: u8,
    nick: &str,
    tune: impl FnOnce(&mut NodeConfig),
    store: Store,
) -> Running {
    start_with_files(seed, nick, tune, store, None).await
}

/// A node whose files are kept under `files` (its store must be the
/// database there): received files land in `files/dl`.
async fn start_with_files(
    seed: u8,
    nick: &str,
    tune: impl FnOnce(&mut NodeConfig),
    store: Store,
    files: Option<&std::path::Path>,
) -> Running {
    let listener = net::listen("127.0.0.1:0".parse().unwrap(), false)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let beacon_port = probe.local_addr().unwrap().port();
    drop(probe);
    let udp = net::beacon_socket(SocketAddr::new([0, 0, 0, 0].into(), beacon_port)).unwrap();
    let mut cfg = NodeConfig {
        nickname: nick.into(),
        listen_port: addr.port(),
        beacon_targets: vec![SocketAddr::new([127, 255, 255, 255].into(), beacon_port)],
        handshake_deadline_ms: DEADLINE_MS,
        ..NodeConfig::default()
    };
    tune(&mut cfg);
    let mut node = Node::new(
        identity(seed),
        cfg,
        Box::new(store),
        Rng::new(u64::from(seed)),
        0,
        now_wall(),
    );
    if let Some(dir) = files {
        let fs = natter::files::FsFileStore::open(
            &dir.join(natter::store::DB_FILE),
            dir.join(natter::files::FILES_DIR),
            dir.join("dl"),
        )
        .unwrap();
        node.set_file_store(Box::new(fs));
    }
    let (cmd, cmd_rx) = mpsc::channel(64);
    let (ev_tx, events) = natter::shell::event_channel();
    tokio::spawn(net::run(
        node,
        listener,
        Some(udp),
        cmd_rx,
        ev_tx,
        Instant::now(),
    ));
    Running {
        cmd,
        events,
        addr,
        beacon_port,
        id: identity(seed),
    }
}

fn now_wall() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn wait_for(r: &mut Running, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout_at(deadline, r.events.recv()).await {
            Ok(Some(e)) if pred(&e) => return e,
            Ok(Some(_)) => {}
            Ok(None) => panic!("node stopped while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

/// Drain events for `ms`, returning them.
async fn events_for(r: &mut Running, ms: u64) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    let mut out = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, r.events.recv()).await {
        out.push(e);
    }
    out
}

/// Victim plus an honest peer linked to it.
async fn pair(tune: impl FnOnce(&mut NodeConfig)) -> (Running, Running) {
    let mut v = start(1, "victim", tune).await;
    let mut h = start(2, "honest", |_| {}).await;
    h.cmd.send(Command::Connect(v.addr)).await.unwrap();
    wait_for(&mut v, "honest peer connects", |e| {
        matches!(e, Event::PeerConnected { .. })
    })
    .await;
    wait_for(&mut h, "victim connected", |e| {
        matches!(e, Event::PeerConnected { .. })
    })
    .await;
    (v, h)
}

/// The honest peer and the victim still exchange messages both ways, and
/// the link between them is the same one (no loss event).
async fn still_serving(v: &mut Running, h: &mut Running, tag: &str) {
    let lost = events_for(v, 200)
        .await
        .into_iter()
        .any(|e| matches!(&e, Event::PeerLost { peer, .. } if peer.nickname == "honest"));
    assert!(!lost, "{tag}: the honest link was lost");
    let to_v = format!("{tag}: honest to victim");
    h.cmd.send(Command::Say(to_v.clone())).await.unwrap();
    wait_for(
        v,
        "message from honest",
        |e| matches!(e, Event::MessageReceived { message } if message.message.text == to_v),
    )
    .await;
    let to_h = format!("{tag}: victim to honest");
    v.cmd.send(Command::Say(to_h.clone())).await.unwrap();
    wait_for(
        h,
        "message from victim",
        |e| matches!(e, Event::MessageReceived { message } if message.message.text == to_h),
    )
    .await;
    wait_for(v, "delivery confirmed", |e| {
        matches!(e, Event::MessageDelivered { .. })
    })
    .await;
}

// ---- raw attackers ----------------------------------------------------------

async fn read_framed(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut body).await?;
    Ok(body)
}

fn framed(msg: &[u8]) -> Vec<u8> {
    natter_core::transport::frame_raw(msg)
}

/// A peer that completes a genuine handshake as `id`, then misbehaves.
struct Attacker {
    stream: TcpStream,
    transport: Transport,
}

/// An attacker whose handshake the victim has completed (it reported the
/// peer connected).
async fn linked_attacker(v: &mut Running, id: &LocalIdentity, nick: &str) -> Attacker {
    let a = attacker(v.addr, id, nick).await;
    wait_for(
        v,
        "the attacker connects",
        |e| matches!(e, Event::PeerConnected { peer, .. } if peer.nickname == nick),
    )
    .await;
    a
}

async fn attacker(victim: SocketAddr, id: &LocalIdentity, nick: &str) -> Attacker {
    let stream = TcpStream::connect(victim).await.unwrap();
    handshake_as(stream, id, nick).await
}

/// [`attacker`] from a loopback address of its own: the victim counts
/// handshakes per source address and evicts the least advanced one beyond
/// its share, so an attacker that must get through connects apart from
/// attackers that flood handshakes from 127.0.0.1.
async fn attacker_from(
    from: [u8; 4],
    victim: SocketAddr,
    id: &LocalIdentity,
    nick: &str,
) -> Attacker {
    linked_from(from, victim, id, nick, |_| {}).await
}

/// A handshake as `id` from the loopback address `from`, on a socket
/// `prepare` has set up. A victim at its connection cap lets go the oldest
/// connection whose message 1 it has not read yet (as designed); a loaded
/// victim may not have read ours. An attacker that needs the link connects
/// again, as a real one would.
async fn linked_from(
    from: [u8; 4],
    victim: SocketAddr,
    id: &LocalIdentity,
    nick: &str,
    prepare: impl Fn(&tokio::net::TcpSocket),
) -> Attacker {
    for _ in 0..HANDSHAKE_TRIES {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::new(from.into(), 0)).unwrap();
        prepare(&sock);
        let stream = sock.connect(victim).await.unwrap();
        if let Some(a) = try_handshake_as(stream, id, nick).await {
            return a;
        }
    }
    panic!("{nick}: no handshake in {HANDSHAKE_TRIES} tries");
}

/// Connections [`linked_from`] tries.
const HANDSHAKE_TRIES: usize = 5;

/// A genuine handshake as `id` over `stream`.
async fn handshake_as(stream: TcpStream, id: &LocalIdentity, nick: &str) -> Attacker {
    try_handshake_as(stream, id, nick)
        .await
        .expect("the victim closed the connection during the handshake")
}

/// [`handshake_as`], or `None` if the victim closed the connection first.
async fn try_handshake_as(
    mut stream: TcpStream,
    id: &LocalIdentity,
    nick: &str,
) -> Option<Attacker> {
    let cfg = HandshakeConfig::new(nick, 0);
    let (init, m1) = Initiator::start(id, &cfg, None).unwrap();
    stream.write_all(&framed(&m1)).await.ok()?;
    let m2 = read_framed(&mut stream).await.ok()?;
    let (est, m3) = init.read_msg2(&m2).unwrap();
    stream.write_all(&framed(&m3)).await.ok()?;
    Some(Attacker {
        stream,
        transport: est.transport,
    })
}

/// True once the victim has closed `stream` (EOF or reset) within `ms`.
async fn closed_within(stream: &mut TcpStream, ms: u64) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

async fn udp_from(ip: [u8; 4]) -> UdpSocket {
    UdpSocket::bind(SocketAddr::new(ip.into(), 0))
        .await
        .unwrap()
}

// ---- the cases --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_flipped_truncated_oversized_and_replayed_beacons_are_ignored() {
    let _serial = SERIAL.lock().await;
    let (mut v, mut h) = pair(|_| {}).await;
    let target = SocketAddr::new([127, 0, 0, 1].into(), v.beacon_port);
    let honest_keys = *h.id.bound_keys();
    let body = |port: u16, seq: u64, nick: &str| BeaconBody {
        version: 1,
        keys: honest_keys,
        tcp_port: port,
        nickname: nick.into(),
        instance: 42,
        seq,
        timestamp_ms: 1,
    };
    let mallory = identity(66);
    let forged = encode_beacon(&body(9, 99, "evil"), &mallory).unwrap();
    // A genuine beacon of the honest peer (an attacker recorded it), replayed
    // from another address with every copy.
    let genuine = encode_beacon(&body(9, 1, "evil"), &h.id).unwrap();
    let mut flipped = genuine.clone();
    flipped[40] ^= 0x04;
    let sock = udp_from([127, 0, 0, 2]).await;
    for pkt in [
        forged.clone(),
        flipped,
        genuine[..genuine.len() - 1].to_vec(),
        vec![0x01; 600],
        vec![],
        genuine.clone(),
        genuine.clone(),
    ] {
        sock.send_to(&pkt, target).await.unwrap();
    }
    still_serving(&mut v, &mut h, "beacons").await;
    v.cmd.send(Command::Peers).await.unwrap();
    let peers = wait_for(&mut v, "peers", |e| matches!(e, Event::Peers { .. })).await;
    let Event::Peers { peers } = peers else {
        unreachable!()
    };
    let honest = peers
        .iter()
        .find(|p| p.nickname == "honest")
        .expect("honest peer listed with its own nickname");
    assert_eq!(honest.state, natter_core::event::LinkState::Established);
    assert!(
        honest.addr.is_none_or(|a| a.port() != 9),
        "a beacon redirected the peer: {honest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_beacon_flood_costs_little_and_changes_nothing() {
    let _serial = SERIAL.lock().await;
    let (mut v, mut h) = pair(|_| {}).await;
    let target = SocketAddr::new([127, 0, 0, 1].into(), v.beacon_port);
    let sock = udp_from([127, 0, 0, 3]).await;
    // Well-formed beacons from many fresh identities plus garbage.
    let ids: Vec<LocalIdentity> = (100..140).map(identity).collect();
    let started = Instant::now();
    for round in 0..50u64 {
        for (i, id) in ids.iter().enumerate() {
            let b = BeaconBody {
                version: 1,
                keys: *id.bound_keys(),
                tcp_port: 1,
                nickname: format!("flood{i}"),
                instance: 7,
                seq: round + 1,
                timestamp_ms: round,
            };
            let _ = sock.send_to(&encode_beacon(&b, id).unwrap(), target).await;
            let _ = sock.send_to(&[0xffu8; 300], target).await;
        }
    }
    eprintln!("sent 4000 datagrams in {:?}", started.elapsed());
    still_serving(&mut v, &mut h, "beacon flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_slowloris_and_short_length_prefixes_are_closed_by_the_deadline() {
    let _serial = SERIAL.lock().await;
    let (mut v, mut h) = pair(|_| {}).await;
    // Garbage: an oversized length prefix is refused at once.
    let mut g = TcpStream::connect(v.addr).await.unwrap();
    g.write_all(&[0xff, 0xff, 1, 2, 3, 4]).await.unwrap();
    assert!(
        closed_within(&mut g, 1_000).await,
        "garbage connection not closed"
    );
    // A prefix that promises more than it sends, and a slowloris.
    let mut short = TcpStream::connect(v.addr).await.unwrap();
    short.write_all(&[0x00, 0x20, 1, 2, 3]).await.unwrap();
    let mut slow = TcpStream::connect(v.addr).await.unwrap();
    let t0 = Instant::now();
    // Slowloris: a valid length prefix, then one byte of message 1 at a time.
    slow.write_all(&[0x00, 0x20]).await.unwrap();
    let mut closed = false;
    for _ in 0..40 {
        if slow.write_all(&[0x42]).await.is_err() || closed_within(&mut slow, 100).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "slowloris survived the handshake deadline");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(DEADLINE_MS - 100),
        "closed before the deadline: {took:?}"
    );
    assert!(
        took < Duration::from_millis(DEADLINE_MS + 2_000),
        "closed late: {took:?}"
    );
    assert!(
        closed_within(&mut short, DEADLINE_MS + 1_000).await,
        "short prefix not closed"
    );
    still_serving(&mut v, &mut h, "slow handshakes").await;
}

/// Lets this process hold `n` more sockets, if the hard limit allows.
fn allow_sockets(n: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let want = (soft + n).min(hard);
        let _ = setrlimit(Resource::RLIMIT_NOFILE, want, hard);
    }
}

/// 300 and 3,000 connections that each send one byte and hang, from the
/// honest peer's own address and from 3,000 others: a new honest peer
/// still completes its
/// handshake within 2 s while they hang (they used to fill the 64 slots
/// until the 10 s deadline), and the stalled ones are closed within the
/// first-message deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_stalled_connections_do_not_lock_out_honest_peers() {
    let _serial = SERIAL.lock().await;
    allow_sockets(8_000);
    for (count, many_sources) in [(300usize, false), (3_000, true), (3_000, false)] {
        let (mut v, mut h) = pair(|_| {}).await;
        let mut idle = Vec::new();
        for i in 0..count {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            if many_sources {
                let from = [127, 1, (i / 250) as u8, 1 + (i % 250) as u8];
                let _ = sock.bind(SocketAddr::new(from.into(), 0));
            }
            if let Ok(mut s) = sock.connect(v.addr).await {
                let _ = s.write_all(&[0]).await;
                idle.push(s);
            }
        }
        assert!(
            idle.len() >= count * 9 / 10,
            "only {} connected",
            idle.len()
        );
        still_serving(&mut v, &mut h, "stalled flood").await;
        let mut late = start(3, "late", |_| {}).await;
        let asked = Instant::now();
        late.cmd.send(Command::Connect(v.addr)).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let connected = loop {
            match tokio::time::timeout_at(deadline, late.events.recv()).await {
                Ok(Some(Event::PeerConnected { .. })) => break true,
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break false,
            }
        };
        assert!(
            connected,
            "with {count} stalled connections (many sources: {many_sources}) the honest peer \
             did not connect within 2 s"
        );
        println!(
            "{count} stalled connections (many sources: {many_sources}): honest handshake in {} ms",
            asked.elapsed().as_millis()
        );
        let wait = natter_core::node::FIRST_MESSAGE_MS + 1_000;
        let mut open = 0;
        for s in idle.iter_mut() {
            if !closed_within(s, 1).await {
                open += 1;
            }
        }
        if open > 0 {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            open = 0;
            for s in idle.iter_mut() {
                if !closed_within(s, 1).await {
                    open += 1;
                }
            }
        }
        assert_eq!(
            open, 0,
            "stalled connections outlived the first-message deadline"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_handshake_with_someone_elses_identity_is_refused() {
    let _serial = SERIAL.lock().await;
    let (mut v, mut h) = pair(|_| {}).await;
    // Mallory runs Noise with her own static key but presents the honest
    // peer's identity and genuine binding (copied from its beacons).
    let mallory = identity(66);
    let mut stream = TcpStream::connect(v.addr).await.unwrap();
    let mut hs = snow::Builder::new(NOISE_PARAMS.parse().unwrap())
        .local_private_key(&keyfile::encode(&mallory)[41..73])
        .unwrap()
        .prologue(domain::NOISE_PROLOGUE)
        .unwrap()
        .build_initiator()
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = hs.write_message(&[], &mut buf).unwrap();
    stream.write_all(&framed(&buf[..n])).await.unwrap();
    let m2 = read_framed(&mut stream).await.unwrap();
    let mut payload = vec![0u8; 1024];
    hs.read_message(&m2, &mut payload).unwrap();
    let hello = Hello {
        version: 1,
        keys: *h.id.bound_keys(),
        nickname: "honest".into(),
        listen_port: 1,
        features: 0,
    };
    let n = hs.write_message(&hello.encode(), &mut buf).unwrap();
    stream.write_all(&framed(&buf[..n])).await.unwrap();
    assert!(
        closed_within(&mut stream, 2_000).await,
        "impostor link was kept"
    );
    let failed = wait_for(&mut v, "handshake refused", |e| {
        matches!(e, Event::LinkFailed { .. })
    })
    .await;
    let Event::LinkFailed { reason, .. } = failed else {
        unreachable!()
    };
    assert!(reason.to_string().contains("static key"), "{reason}");
    still_serving(&mut v, &mut h, "impostor").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_replayed_unknown_and_oversized_frames_close_only_that_link() {
    let _serial = SERIAL.lock().await;
    let (mut v, mut h) = pair(|_| {}).await;
    let mallory = identity(66);
    type Attack = fn(&mut Transport) -> Vec<u8>;
    let cases: [(&str, Attack); 5] = [
        ("flipped bit", |t| {
            let mut m = t.seal_one(&Frame::Ping(1)).unwrap();
            m[5] ^= 0x20;
            m
        }),
        ("replayed message", |t| {
            let m = t.seal_one(&Frame::Ping(1)).unwrap();
            [m.clone(), m].concat()
        }),
        ("unknown frame variant", |t| {
            let mut out = Vec::new();
            t.seal_plaintext(&[0x55, 0x00], &mut out).unwrap();
            out
        }),
        ("oversized text", |t| {
            let big = Frame::Direct(DirectMessage {
                id: [3; 16],
                timestamp_ms: 1,
                text: "x".repeat(20_000),
            });
            t.seal_one(&big).unwrap()
        }),
        ("trailing bytes after a frame", |t| {
            let mut plain = Vec::new();
            Frame::Ping(5).encode_into(&mut plain);
            plain.push(0x00);
            plain.push(0x80);
            let mut out = Vec::new();
            t.seal_plaintext(&plain, &mut out).unwrap();
            out
        }),
    ];
    for (name, attack) in cases {
        let mut a = linked_attacker(&mut v, &mallory, "mallory").await;
        let bytes = attack(&mut a.transport);
        a.stream.write_all(&bytes).await.unwrap();
        assert!(
            closed_within(&mut a.stream, 2_000).await,
            "{name}: link not closed"
        );
        wait_for(
            &mut v,
            "mallory dropped",
            |e| matches!(e, Event::PeerLost { peer, .. } if peer.nickname == "mallory"),
        )
        .await;
        still_serving(&mut v, &mut h, name).await;
    }
}

/// `count` valid direct messages ("flood N"), 500 to a Noise message.
async fn flood_directs(a: &mut Attacker, count: u32) {
    let frames: Vec<Frame> = (0..count)
        .map(|n| {
            let mut id = [0x68; 16];
            id[..4].copy_from_slice(&n.to_be_bytes());
            Frame::Direct(DirectMessage {
                id,
                timestamp_ms: 1_700_000_000_000,
                text: format!("flood {n}"),
            })
        })
        .collect();
    for chunk in frames.chunks(500) {
        let mut out = Vec::new();
        a.transport.seal(chunk, &mut out).unwrap();
        if a.stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// A minted identity floods the victim with valid direct messages: it gets
/// a stranger's daily share of history (10,000 messages), the rest is
/// neither stored nor acked, the user is told once, and the honest peer is
/// served as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_flood_of_valid_messages_is_capped_at_its_daily_share() {
    let _serial = SERIAL.lock().await;
    let (mut v, mut h) = pair(|_| {}).await;
    let flood = identity(68);
    let mut a = linked_attacker(&mut v, &flood, "flood").await;
    flood_directs(&mut a, 12_000).await;
    let mut received = 0u32;
    let mut warned = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(1_500), v.events.recv()).await {
            Ok(Some(Event::MessageReceived { .. })) => received += 1,
            Ok(Some(Event::OverQuota { author, .. })) => {
                assert_eq!(author.nickname, "flood");
                warned += 1;
            }
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    assert_eq!(received, 10_000, "a stranger's daily share is stored");
    assert_eq!(warned, 1, "the user is told once");
    // Acks came back for the stored ones only.
    let mut acked = std::collections::HashSet::new();
    while let Ok(Ok(msg)) =
        tokio::time::timeout(Duration::from_millis(500), read_framed(&mut a.stream)).await
    {
        for f in a.transport.open(&msg).unwrap_or_default() {
            if let Frame::Ack(ids) = f {
                acked.extend(ids);
            }
        }
    }
    assert_eq!(acked.len(), 10_000, "only stored messages are acked");
    still_serving(&mut v, &mut h, "flood").await;
}

/// A peer writes posts far faster than they can be checked (6,000 signed
/// posts at once, one forged after them): the node parks at most
/// `MAX_PARKED_POSTS` for its check pool and stops reading meanwhile, takes
/// every valid post in the order sent, closes the link at the forgery, and
/// serves the honest peer throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_faster_than_the_check_pool_are_taken_whole_and_in_order() {
    let _serial = SERIAL.lock().await;
    let (mut v, mut h) = pair(|_| {}).await;
    let poster = identity(69);
    let mut a = linked_attacker(&mut v, &poster, "poster").await;
    const POSTS: u32 = 6_000;
    assert!(POSTS as usize > natter_core::node::MAX_PARKED_POSTS);
    let room = natter_core::chat::default_room();
    let at = now_wall();
    let post = |n: u32, text: String| {
        let mut id = [0x69; 16];
        id[..4].copy_from_slice(&n.to_be_bytes());
        natter_core::chat::sign_room_post(&poster, room, id, at, text)
    };
    let frames: Vec<Frame> = (0..POSTS)
        .map(|n| Frame::RoomPost(Box::new(post(n, format!("post {n}")))))
        .collect();
    let mut forged = post(POSTS, "forged".into());
    forged.text.push('!');
    let mut wire = Vec::new();
    for chunk in frames.chunks(300) {
        a.transport.seal(chunk, &mut wire).unwrap();
    }
    a.transport
        .seal(&[Frame::RoomPost(Box::new(forged))], &mut wire)
        .unwrap();
    a.stream.write_all(&wire).await.unwrap();

    let mut texts = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while texts.len() < POSTS as usize && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), v.events.recv()).await {
            Ok(Some(Event::MessageReceived { message })) => texts.push(message.message.text),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    assert_eq!(texts.len(), POSTS as usize, "every valid post is taken");
    assert!(
        texts
            .iter()
            .zip(0..)
            .all(|(t, n)| *t == format!("post {n}")),
        "in the order sent"
    );
    assert!(
        closed_within(&mut a.stream, 5_000).await,
        "the forger's link is closed"
    );
    still_serving(&mut v, &mut h, "posts").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_disconnected_and_gets_everything_when_it_returns() {
    let _serial = SERIAL.lock().await;
    let (mut v, mut h) = pair(|c| c.max_queued_bytes = 256 * 1024).await;
    let sloth = identity(67);
    let mut a = linked_attacker(&mut v, &sloth, "sloth").await;
    // The sloth never reads; the victim posts a lot.
    let text = "y".repeat(16_000);
    for _ in 0..400 {
        v.cmd.send(Command::Say(text.clone())).await.unwrap();
    }
    wait_for(&mut v, "sloth disconnected", |e| matches!(e, Event::PeerLost { peer, reason } if peer.nickname == "sloth" && reason.to_string().contains("not reading"))).await;
    // The honest peer got every one of them.
    let mut got = 0;
    while got < 400 {
        wait_for(&mut h, "bulk message", |e| matches!(e, Event::MessageReceived { message } if message.message.text.len() == 16_000)).await;
        got += 1;
    }
    still_serving(&mut v, &mut h, "sloth").await;
    drop(a.stream.shutdown().await);
    // The sloth comes back and reads: everything it missed is resent from
    // the victim's outbox.
    let mut back = attacker(v.addr, &sloth, "sloth").await;
    let mut ids = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ids.len() < 400 && Instant::now() < deadline {
        let Ok(Ok(msg)) =
            tokio::time::timeout(Duration::from_secs(5), read_framed(&mut back.stream)).await
        else {
            break;
        };
        for f in back.transport.open(&msg).unwrap() {
            if let Frame::RoomPost(p) = f {
                if p.text.len() == 16_000 {
                    ids.insert(p.id);
                }
            }
        }
    }
    assert_eq!(
        ids.len(),
        400,
        "the outbox lost messages for the disconnected peer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nicknames_full_of_escape_sequences_are_neutralised() {
    let _serial = SERIAL.lock().await;
    let (mut v, mut h) = pair(|_| {}).await;
    let hostile = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{202e}evil\u{9b}";
    assert!(hostile.len() <= 32);
    let mut a = attacker(v.addr, &identity(68), hostile).await;
    let ev = wait_for(&mut v, "hostile peer connects", |e| matches!(e, Event::PeerConnected { .. } if !matches!(e, Event::PeerConnected { peer, .. } if peer.nickname == "honest"))).await;
    let terminal = Style {
        color: true,
        isolate: true,
    };
    for style in [terminal, Style::PLAIN] {
        let text = frontend::describe(&ev, &style);
        let raw_escape = text.contains("\u{1b}]")
            || text.contains("\u{1b}[2J")
            || text.contains('\u{202e}')
            || text.contains('\u{9b}');
        assert!(!raw_escape, "terminal control reached the output: {text:?}");
        assert!(
            text.contains("evil"),
            "the visible part of the name is kept: {text:?}"
        );
    }
    // Its chat text is neutralised the same way.
    let msg = Frame::Direct(DirectMessage {
        id: [4; 16],
        timestamp_ms: now_wall(),
        text: "hi \u{1b}[31mred\u{1b}]52;c;Zm9v\u{7}".into(),
    });
    let bytes = a.transport.seal_one(&msg).unwrap();
    a.stream.write_all(&bytes).await.unwrap();
    let ev = wait_for(&mut v, "hostile message", |e| {
        matches!(e, Event::MessageReceived { .. })
    })
    .await;
    let no_colour = Style {
        color: false,
        isolate: true,
    };
    let text = frontend::describe(&ev, &no_colour);
    assert!(!text.contains('\u{1b}'), "{text:?}");
    still_serving(&mut v, &mut h, "hostile nickname").await;
}

/// A store holding `n` signed public messages of 3,000 bytes from the last
/// hour: what catch-up answers are made of.
fn history_store(n: u32) -> Store {
    use natter_core::chat::sign_public;
    let author = identity(40);
    let mut store = Store::open_in_memory().unwrap();
    let start_ms = now_wall() - 3_600_000;
    let text = "h".repeat(3_000);
    let rows: Vec<_> = (0..n)
        .map(|i| {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&i.to_le_bytes());
            let m = sign_public(&author, id, start_ms + u64::from(i), text.clone());
            natter::store::StoredMessage {
                id: m.id,
                conversation: natter::store::ConversationKey::Public,
                author: m.author.0,
                timestamp_ms: m.timestamp_ms,
                text: m.text,
                signature: Some(m.signature.0),
                outgoing: false,
                received_ms: m.timestamp_ms,
                wire: None,
            }
        })
        .collect();
    store.insert_messages(&rows).unwrap();
    store
}

/// A throwaway identity that completes a handshake with a 4 KiB receive
/// buffer, sends 90 SyncRequests in separate segments and never reads.
async fn greedy_reader(victim: SocketAddr, seed: u8) -> TcpStream {
    greedy_reader_from([127, 0, 0, 1], victim, seed).await
}

/// [`greedy_reader`] from the loopback address `from` (see
/// [`attacker_from`]).
async fn greedy_reader_from(from: [u8; 4], victim: SocketAddr, seed: u8) -> TcpStream {
    use natter_core::wire::frame::SyncRequest;
    let id = identity(seed);
    let nick = format!("greedy{seed}");
    let Attacker {
        mut stream,
        mut transport,
    } = linked_from(from, victim, &id, &nick, |sock| {
        sock.set_recv_buffer_size(4096).unwrap();
        sock.set_nodelay(true).unwrap();
    })
    .await;
    for _ in 0..90 {
        let ask = Frame::SyncRequest(SyncRequest { since_ms: 0 });
        let bytes = transport.seal_one(&ask).unwrap();
        if stream.write_all(&bytes).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stream
}

// ---- hostile file senders ---------------------------------------------------

/// What a hostile sender does when asked for data.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Serve {
    /// Sends the real, verifiable data.
    Honestly,
    /// Flips a byte in every encoding.
    WrongChunk,
    /// Sends a group that was not asked for.
    Unrequested,
}

/// Offers `content` under `name` and answers requests as `how` says, until
/// the victim ends the transfer; returns the victim's FileEnd.
async fn hostile_transfer(
    a: &mut Attacker,
    name: &str,
    content: &[u8],
    how: Serve,
) -> Option<natter_core::wire::frame::FileEnd> {
    use natter_core::files::proof;
    use natter_core::wire::frame::{FileData, FileOffer};
    let (root, ob) = proof::outboard_in_memory(content);
    let size = content.len() as u64;
    let mut transfer = [0u8; 16];
    transfer.copy_from_slice(&bao_tree::blake3::hash(name.as_bytes()).as_bytes()[..16]);
    let offer = Frame::FileOffer(FileOffer {
        transfer,
        name: name.into(),
        size,
        root,
    });
    let bytes = a.transport.seal_one(&offer).unwrap();
    a.stream.write_all(&bytes).await.unwrap();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), read_framed(&mut a.stream))
            .await
            .ok()?
            .ok()?;
        for f in a.transport.open(&msg).ok()? {
            match f {
                Frame::FileRequest(r) => {
                    let mut g = r.first_group;
                    let end = g + u64::from(r.count);
                    while g < end {
                        let n = (end - g).min(3);
                        let mut encoded = Vec::new();
                        let first = if how == Serve::Unrequested {
                            end + 1
                        } else {
                            g
                        };
                        let n = if how == Serve::Unrequested { 1 } else { n };
                        proof::encode(
                            content,
                            &ob,
                            size,
                            first.min(proof::group_count(size) - 1),
                            n,
                            &mut encoded,
                        )
                        .unwrap();
                        if how == Serve::WrongChunk {
                            let last = encoded.len() - 1;
                            encoded[last] ^= 1;
                        }
                        let data = Frame::FileData(FileData {
                            transfer,
                            first_group: first,
                            count: n as u8,
                            encoded,
                        });
                        let bytes = a.transport.seal_one(&data).unwrap();
                        a.stream.write_all(&bytes).await.ok()?;
                        g += n;
                    }
                }
                Frame::FileEnd(e) => return Some(e),
                Frame::Ping(n) => {
                    let bytes = a.transport.seal_one(&Frame::Pong(n)).unwrap();
                    a.stream.write_all(&bytes).await.ok()?;
                }
                _ => {}
            }
        }
    }
}

/// Hostile file senders against a victim that accepts everything offered:
/// a name that climbs out of the download directory, data that fails
/// verification, data that was not asked for, a size over the limit, and a
/// flood of offers. Each is contained (the file lands under a safe name, or
/// nothing is saved and the transfer alone ends), and chat goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_file_senders_cannot_escape_corrupt_or_flood() {
    let _serial = SERIAL.lock().await;
    use natter_core::wire::frame::FileEndReason;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut v = start_with_files(1, "victim", |_| {}, store, Some(dir.path())).await;
    let mut h = start(2, "honest", |_| {}).await;
    h.cmd.send(Command::Connect(v.addr)).await.unwrap();
    wait_for(&mut v, "honest peer connects", |e| {
        matches!(e, Event::PeerConnected { .. })
    })
    .await;
    let mallory = identity(70);
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let dl = dir.path().join("dl");
    let saved = || -> Vec<String> {
        std::fs::read_dir(&dl)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.ends_with(".part"))
                    .collect()
            })
            .unwrap_or_default()
    };
    for (case, name, how) in [
        (
            "traversal name",
            "../../../tmp/natter-escape\u{202e}txt.sh",
            Serve::Honestly,
        ),
        ("wrong chunk", "wrong.bin", Serve::WrongChunk),
        ("unrequested data", "unasked.bin", Serve::Unrequested),
    ] {
        let mut a = linked_attacker(&mut v, &mallory, "mallory").await;
        let accepter = async {
            let offered = wait_for(&mut v, "the offer", |e| {
                matches!(e, Event::FileOffered { .. })
            })
            .await;
            if let Event::FileOffered { transfer } = offered {
                let id = natter_core::files::short_id(&transfer.id);
                v.cmd.send(Command::AcceptFile(id)).await.unwrap();
            }
        };
        let serving = hostile_transfer(&mut a, name, &content, how);
        let (end, ()) = tokio::join!(serving, accepter);
        let end = end.unwrap_or_else(|| panic!("{case}: no FileEnd from the victim"));
        match how {
            Serve::Honestly => {
                assert_eq!(end.reason, FileEndReason::Completed, "{case}");
                let names = saved();
                assert_eq!(names.len(), 1, "{case}: {names:?}");
                assert!(
                    !names[0].contains('/') && !names[0].contains('\u{202e}'),
                    "{names:?}"
                );
                assert_eq!(std::fs::read(dl.join(&names[0])).unwrap(), content);
                assert!(!std::path::Path::new("/tmp/natter-escape").exists());
            }
            _ => {
                assert_eq!(end.reason, FileEndReason::Invalid, "{case}");
                wait_for(&mut v, "the transfer fails", |e| {
                    matches!(e, Event::FileFailed { .. })
                })
                .await;
                assert_eq!(saved().len(), 1, "{case}: nothing more saved");
            }
        }
        drop(a);
        still_serving(&mut v, &mut h, case).await;
    }

    // Too large, then a flood of offers: answered, bounded, not shown one by one.
    let mut a = attacker(v.addr, &mallory, "mallory").await;
    let mut offers = Vec::new();
    for n in 0..200u32 {
        let mut transfer = [0x77; 16];
        transfer[..4].copy_from_slice(&n.to_be_bytes());
        offers.push(Frame::FileOffer(natter_core::wire::frame::FileOffer {
            transfer,
            name: format!("flood-{n}"),
            size: if n == 0 { 1 << 40 } else { 10 },
            root: [0; 32],
        }));
    }
    let mut out = Vec::new();
    a.transport.seal(&offers, &mut out).unwrap();
    a.stream.write_all(&out).await.unwrap();
    let mut ends = std::collections::HashMap::new();
    while ends.values().sum::<usize>() < 200 {
        let Ok(Ok(msg)) =
            tokio::time::timeout(Duration::from_secs(5), read_framed(&mut a.stream)).await
        else {
            break;
        };
        for f in a.transport.open(&msg).unwrap_or_default() {
            if let Frame::FileEnd(e) = f {
                *ends.entry(format!("{:?}", e.reason)).or_insert(0usize) += 1;
            }
        }
        if ends.values().sum::<usize>() >= 200 - 7 {
            break;
        }
    }
    let evs = events_for(&mut v, 500).await;
    let shown = evs
        .iter()
        .filter(|e| matches!(e, Event::FileOffered { .. } | Event::FileRefused { .. }))
        .count();
    assert_eq!(ends.get("TooLarge"), Some(&1), "{ends:?}");
    assert!(ends.get("Busy").copied().unwrap_or(0) >= 190, "{ends:?}");
    assert!(shown <= 9, "{shown} offers shown of 200");
    drop(a);
    still_serving(&mut v, &mut h, "offer flood").await;
}

/// The tests of this file run one at a time: some measure this process's
/// memory, which the others would disturb.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// This process's resident memory, in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// 20 throwaway identities complete a handshake, each send 90 SyncRequests
/// in separate segments with a 4 KiB receive buffer, and never read. The
/// queued answers used to pile up without bound (over 750 MiB); now no
/// catch-up answer is built for a peer whose link has 1 MiB unwritten, a
/// closed link's queue is flushed for at most 2 s (also by a writer already
/// blocked in a write to it), and growth stays within 64 MiB. Once the
/// victim has closed them, memory is back near its baseline although the
/// attackers still hold their sockets open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_ask_for_catch_up_and_never_read_cannot_exhaust_memory() {
    let _serial = SERIAL.lock().await;
    let store = history_store(3_000);
    let mut v = start_with_store(
        1,
        "victim",
        |c| {
            c.keepalive_ms = 1_000;
            c.dead_after_ms = 3_000;
        },
        store,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = rss_mib();
    let mut attackers = Vec::new();
    for n in 0..20u8 {
        attackers.push(greedy_reader(v.addr, 100 + n).await);
    }
    let mut peak = rss_mib();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss_mib());
    }
    // The victim closes them (silent: no keepalive answer) and drops
    // whatever their sockets still held, while the attackers still hold
    // their ends open; the allocator gives the pages back.
    let _ = events_for(&mut v, 5_000).await;
    let after = rss_mib();
    println!(
        "20 greedy non-readers: RSS {baseline:.1} MiB before, peak {peak:.1} MiB (+{:.1}), \
         {after:.1} MiB after they are gone",
        peak - baseline
    );
    assert!(
        peak - baseline <= 64.0,
        "RSS grew by {:.1} MiB under 20 peers that never read",
        peak - baseline
    );
    assert!(
        after - baseline <= 8.0,
        "RSS stayed {:.1} MiB above its baseline after the peers were closed",
        after - baseline
    );
    drop(attackers);
}

/// Everything at once against one node while two honest peers chat: 3,000
/// stalled connections arrive from 3,000 addresses while 20 peers ask for
/// catch-up and never read, garbage beacons flood in, 100 minted
/// identities complete a handshake and leave (each handshake racing the
/// flood for a slot), and a far-future public message arrives.
/// Every honest message arrives exactly once, a new honest peer completes
/// its handshake within 2 s, and memory stays bounded. (Where the
/// far-future message sorts is checked by the chat and store tests: within
/// its 10 minutes of allowed skew it may still sort last.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_attacks_at_once_leave_honest_peers_unharmed() {
    let _serial = SERIAL.lock().await;
    allow_sockets(8_000);
    let mut v = start_with_store(
        1,
        "victim",
        |c| {
            c.keepalive_ms = 1_000;
            c.dead_after_ms = 3_000;
        },
        history_store(3_000),
    )
    .await;
    let mut h = start(2, "honest", |_| {}).await;
    h.cmd.send(Command::Connect(v.addr)).await.unwrap();
    wait_for(&mut h, "victim connected", |e| {
        matches!(e, Event::PeerConnected { .. })
    })
    .await;
    let baseline = rss_mib();
    let victim = v.addr;
    let beacon_port = v.beacon_port;

    let stalled = async move {
        let mut held = Vec::new();
        for i in 0..3_000usize {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            let from = [127, 1, (i / 250) as u8, 1 + (i % 250) as u8];
            let _ = sock.bind(SocketAddr::new(from.into(), 0));
            if let Ok(mut s) = sock.connect(victim).await {
                let _ = s.write_all(&[0]).await;
                held.push(s);
            }
        }
        held
    };
    let stalled = tokio::spawn(stalled);
    let greedy = tokio::spawn(async move {
        let mut held = Vec::new();
        // Each from its own address, as the far and flood attackers
        // below: the minted identities race for 127.0.0.1's handshake
        // slots, and a handshake these need could lose.
        for n in 0..20u8 {
            held.push(greedy_reader_from([127, 0, 3, 1 + n], victim, 100 + n).await);
        }
        held
    });
    let beacons = tokio::spawn(async move {
        let sock = udp_from([127, 0, 0, 9]).await;
        let target = SocketAddr::new([127, 0, 0, 1].into(), beacon_port);
        for i in 0..4_000u32 {
            let _ = sock.send_to(&i.to_le_bytes().repeat(30), target).await;
        }
    });
    // Minted identities, one after another, each gone once linked. They
    // race the stalled flood for 127.0.0.1's handshake slots, so the victim
    // may let one go before it is linked (as designed): it moves on. (Had
    // it panicked, the panic's backtrace, symbolized from this binary's
    // debug info, would have added about 200 MiB to this process's RSS
    // and failed the bound below: CI saw +243 MiB twice.)
    let minted = tokio::spawn(async move {
        let mut linked = 0usize;
        for n in 0..100u8 {
            if let Ok(stream) = TcpStream::connect(victim).await {
                if try_handshake_as(stream, &identity(150 + n), "minted")
                    .await
                    .is_some()
                {
                    linked += 1;
                }
            }
        }
        linked
    });
    let far = {
        let mut a = attacker_from([127, 0, 4, 1], victim, &identity(99), "clock").await;
        let m = natter_core::chat::sign_public(
            &identity(99),
            [0x99; 16],
            i64::MAX as u64,
            "I stay last forever".into(),
        );
        let bytes = a.transport.seal_one(&Frame::Public(Box::new(m))).unwrap();
        a.stream.write_all(&bytes).await.unwrap();
        a
    };

    // A minted identity floods valid direct messages, far beyond a
    // stranger's daily share.
    let flood = tokio::spawn(async move {
        let mut a = attacker_from([127, 0, 4, 2], victim, &identity(98), "flood").await;
        flood_directs(&mut a, 12_000).await;
        a
    });

    // The honest peers chat throughout, both ways.
    const EACH_WAY: usize = 150;
    for i in 0..EACH_WAY {
        let peer = "victim".to_string();
        let text = format!("honest to victim {i}");
        h.cmd.send(Command::Msg { peer, text }).await.unwrap();
        let peer = "honest".to_string();
        let text = format!("victim to honest {i}");
        v.cmd.send(Command::Msg { peer, text }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A new honest peer arrives in the middle of it all.
    let mut late = start(3, "late", |_| {}).await;
    let asked = Instant::now();
    late.cmd.send(Command::Connect(victim)).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let joined = loop {
        match tokio::time::timeout_at(deadline, late.events.recv()).await {
            Ok(Some(Event::PeerConnected { .. })) => break true,
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => break false,
        }
    };
    let joined_ms = asked.elapsed().as_millis();

    // Count, on each side, the honest messages received and delivered.
    let mut got_v = std::collections::HashMap::new();
    let mut got_h = std::collections::HashMap::new();
    let mut delivered_h = 0usize;
    let mut flooded = 0usize;
    let mut peak = rss_mib();
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < until
        && (got_v.len() < EACH_WAY || got_h.len() < EACH_WAY || delivered_h < EACH_WAY)
    {
        peak = peak.max(rss_mib());
        tokio::select! {
            Some(e) = v.events.recv() => if let Event::MessageReceived { message } = e {
                if message.message.text.starts_with("honest to victim") {
                    *got_v.entry(message.message.text).or_insert(0usize) += 1;
                } else if message.message.text.starts_with("flood ") {
                    flooded += 1;
                }
            },
            Some(e) = h.events.recv() => match e {
                Event::MessageReceived { message } if message.message.text.starts_with("victim to honest") => {
                    *got_h.entry(message.message.text).or_insert(0usize) += 1;
                }
                Event::MessageDelivered { .. } => delivered_h += 1,
                _ => {}
            },
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    let _ = beacons.await;
    let minted = minted.await.expect("the minted identities' task");
    let held_greedy = greedy.await.unwrap();
    let held_stalled = stalled.await.unwrap();
    let held_flood = flood.await.unwrap();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(500), v.events.recv()).await
    {
        if matches!(&e, Event::MessageReceived { message } if message.message.text.starts_with("flood "))
        {
            flooded += 1;
        }
    }
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss_mib());
    }
    println!(
        "all attacks at once: {}/{EACH_WAY} and {}/{EACH_WAY} honest messages, {delivered_h} acked; \
         late honest handshake in {joined_ms} ms; RSS {baseline:.1} MiB before, peak {peak:.1} MiB (+{:.1}); \
         {} stalled and {} greedy connections held; {flooded} of 12000 flood messages stored; \
         {minted} of 100 minted identities linked",
        got_v.len(),
        got_h.len(),
        peak - baseline,
        held_stalled.len(),
        held_greedy.len(),
    );
    assert!(
        flooded <= 10_000,
        "a stranger stored {flooded} messages in a day"
    );
    assert_eq!(got_v.len(), EACH_WAY, "honest messages to the victim lost");
    assert_eq!(
        got_h.len(),
        EACH_WAY,
        "victim's messages to the honest peer lost"
    );
    assert!(
        got_v.values().chain(got_h.values()).all(|n| *n == 1),
        "a message arrived twice"
    );
    assert!(delivered_h >= EACH_WAY, "deliveries missing: {delivered_h}");
    assert!(joined, "the late honest peer did not connect within 2 s");
    // This process holds all sides: three nodes, 3,000 stalled client
    // sockets and the attackers.
    assert!(
        peak - baseline <= 128.0,
        "RSS grew by {:.1} MiB",
        peak - baseline
    );

    drop(far);
    drop(held_flood);
}
