//! Deterministic multi-node tests over the simulated network.

use super::*;
use crate::testkit::sim::{self, NetConfig, Sim};
use crate::wire::CloseReason;

fn mesh_time(sim: &mut Sim, limit_ms: u64) -> Option<u64> {
    let start = sim.now_ms;
    while sim.now_ms < start + limit_ms {
        sim.run_for(100);
        if sim.full_mesh() {
            return Some(sim.now_ms - start);
        }
    }
    None
}

#[test]
fn five_nodes_converge_to_a_full_mesh_despite_loss() {
    for seed in 0..5 {
        let mut s = Sim::new(
            seed,
            NetConfig {
                delay_ms: (1, 20),
                loss: 0.3,
            },
        );
        s.add_nodes(5);
        let t = mesh_time(&mut s, 60_000);
        assert!(t.is_some(), "seed {seed}: no full mesh after 60 s");
        // Stays a mesh: keepalives flow, nothing flaps.
        s.run_for(60_000);
        assert!(s.full_mesh(), "seed {seed}: mesh did not hold");
        for n in &s.nodes {
            assert!(
                !n.events.iter().any(|e| matches!(e, Event::PeerLost { .. })),
                "seed {seed}: a link was lost"
            );
        }
    }
}

#[test]
fn partition_is_detected_and_heals() {
    let mut s = Sim::new(1, NetConfig::default());
    s.add_nodes(4);
    assert!(mesh_time(&mut s, 20_000).is_some());
    s.partition(&[0, 1], &[2, 3]);
    let cut_at = s.now_ms;
    // Keepalive (5 s) + dead-after (15 s) bound the detection time.
    s.run_for(16_000);
    for i in 0..2 {
        let c = s.nodes[i].node.connected();
        assert!(
            !c.contains(&s.identity_of(2)) && !c.contains(&s.identity_of(3)),
            "node {i} still thinks it is linked"
        );
        assert!(
            c.contains(&s.identity_of(1 - i)),
            "same side of the partition stays linked"
        );
    }
    assert!(s.now_ms - cut_at <= 16_000);
    s.heal();
    let healed = mesh_time(&mut s, 60_000);
    assert!(
        healed.is_some(),
        "mesh did not come back after the partition healed"
    );
}

#[test]
fn simultaneous_dials_leave_exactly_one_link_on_both_sides() {
    for seed in 0..20 {
        let mut cfg0 = sim::node_config(0);
        cfg0.discovery = None;
        let mut cfg1 = sim::node_config(1);
        cfg1.discovery = None;
        let mut s = Sim::new(
            seed,
            NetConfig {
                delay_ms: (1, 10),
                loss: 0.0,
            },
        );
        s.add_node_with(sim::identity(0), cfg0);
        s.add_node_with(sim::identity(1), cfg1);
        let (a0, a1) = (s.nodes[0].addr, s.nodes[1].addr);
        // Both users type /connect at the same moment.
        s.input(0, Input::Command(Command::Connect(a1)));
        s.input(1, Input::Command(Command::Connect(a0)));
        s.run_for(5_000);
        assert!(s.full_mesh(), "seed {seed}: not exactly one link each");
        let l0 = s.nodes[0].node.link_of(&s.identity_of(1));
        let l1 = s.nodes[1].node.link_of(&s.identity_of(0));
        assert!(l0.is_some() && l1.is_some());
        // Data flows over the surviving link in both directions.
        let id1 = s.identity_of(1);
        s.input(
            0,
            Input::Command(Command::SendData {
                peer: id1,
                data: vec![1; 10],
            }),
        );
        s.run_for(100);
        assert!(
            s.nodes[1]
                .events
                .iter()
                .any(|e| matches!(e, Event::Data { len: 10, .. })),
            "seed {seed}"
        );
        s.run_for(30_000);
        assert!(s.full_mesh(), "seed {seed}: link flapped");
    }
}

#[test]
fn a_peer_state_is_the_stage_of_the_link_that_stands_for_it() {
    let mut s = Sim::new(9, NetConfig::default());
    s.add_nodes(2);
    // States each node shows of the other, in order, without repeats.
    let mut seen: [Vec<&str>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..3_000 {
        s.run_for(1);
        for (i, states) in seen.iter_mut().enumerate() {
            let other = s.identity_of(1 - i);
            if let Some(st) = s.nodes[i].node.peer_state(&other) {
                if states.last() != Some(&st.name()) {
                    states.push(st.name());
                }
                assert_eq!(st.established_link(), s.nodes[i].node.link_of(&other));
            }
        }
    }
    // The side that dials (at once: the lower key) passes through every
    // stage of its connection.
    let dialled = |st: &Vec<&str>| {
        let st = st.strip_prefix(&["discovered"][..]).unwrap_or(st);
        st == ["dialling", "handshaking", "established"]
    };
    assert!(seen.iter().any(dialled), "{seen:?}");
    for st in &seen {
        assert_eq!(st.last(), Some(&"established"), "{seen:?}");
    }
}

#[test]
fn restarted_peer_comes_back() {
    let mut s = Sim::new(3, NetConfig::default());
    s.add_nodes(3);
    assert!(mesh_time(&mut s, 20_000).is_some());
    s.crash(2);
    s.run_for(2_000);
    assert!(!s.nodes[0].node.connected().contains(&s.identity_of(2)));
    assert!(s.nodes[0]
        .events
        .iter()
        .any(|e| matches!(e, Event::PeerLost { .. })));
    s.run_for(10_000);
    s.restart(2, sim::identity(2), sim::node_config(2));
    let back = mesh_time(&mut s, 30_000);
    assert!(back.is_some(), "restarted node did not rejoin");
}

#[test]
fn dead_peer_without_fin_is_detected_by_keepalive() {
    let mut s = Sim::new(4, NetConfig::default());
    s.add_nodes(2);
    assert!(mesh_time(&mut s, 20_000).is_some());
    // Cable pulled: nothing is delivered either way, no FIN.
    s.partition(&[0], &[1]);
    let t0 = s.now_ms;
    let mut detected = None;
    while s.now_ms < t0 + 30_000 {
        s.run_for(250);
        if s.nodes[0].node.connected().is_empty() {
            detected = Some(s.now_ms - t0);
            break;
        }
    }
    let d = detected.expect("dead peer never detected");
    assert!(d <= 15_250, "detected after {d} ms");
    assert!(d >= 5_000, "detected suspiciously early: {d} ms");
}

#[test]
fn manual_connect_retries_until_the_peer_appears() {
    let mut cfg0 = sim::node_config(0);
    cfg0.discovery = None;
    let mut cfg1 = sim::node_config(1);
    cfg1.discovery = None;
    let mut s = Sim::new(5, NetConfig::default());
    s.add_node_with(sim::identity(0), cfg0);
    s.add_node_with(sim::identity(1), cfg1.clone());
    s.crash(1);
    let a1 = s.nodes[1].addr;
    s.input(0, Input::Command(Command::Connect(a1)));
    s.run_for(20_000);
    assert!(s.nodes[0]
        .events
        .iter()
        .any(|e| matches!(e, Event::LinkFailed { .. })));
    s.restart(1, sim::identity(1), cfg1);
    s.run_for(40_000);
    assert!(s.full_mesh(), "manual target was not retried");
}

#[test]
fn quit_closes_links_and_the_peer_notices_at_once() {
    let mut s = Sim::new(6, NetConfig::default());
    s.add_nodes(2);
    assert!(mesh_time(&mut s, 20_000).is_some());
    s.input(0, Input::Command(Command::Quit));
    assert!(s.nodes[0]
        .events
        .iter()
        .any(|e| matches!(e, Event::Shutdown)));
    s.run_for(100);
    assert!(s.nodes[1].node.connected().is_empty());
    let lost = s.nodes[1].events.iter().find_map(|e| match e {
        Event::PeerLost { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert!(
        lost.is_some_and(|r| matches!(
            *r,
            CloseCause::PeerClosed {
                reason: CloseReason::Shutdown,
                ..
            }
        )),
        "peer was not told why"
    );
}

#[test]
fn a_peer_that_does_not_read_is_disconnected() {
    let mut cfg0 = sim::node_config(0);
    cfg0.max_queued_bytes = 100_000;
    let mut s = Sim::new(7, NetConfig::default());
    s.add_node_with(sim::identity(0), cfg0);
    s.add_node_with(sim::identity(1), sim::node_config(1));
    assert!(mesh_time(&mut s, 20_000).is_some());
    let id1 = s.identity_of(1);
    let link = s.nodes[0].node.link_of(&id1).unwrap();
    // Drive node 0 directly without reporting flushes: the queue only grows.
    let now = s.now_ms;
    let mut closed = false;
    for _ in 0..20 {
        s.nodes[0].node.handle(
            now,
            Input::Command(Command::SendData {
                peer: id1,
                data: vec![0; 10_000],
            }),
        );
        while let Some(o) = s.nodes[0].node.poll_output() {
            if matches!(o, Output::Close { link: l } | Output::Abort { link: l } if l == link) {
                closed = true;
            }
        }
    }
    // A burst over the soft bound is tolerated while writes progress...
    assert!(!closed, "a short burst must not disconnect the peer");
    // ...but with no write progress for send_stall_ms the link goes.
    let later = now + 5_001;
    s.nodes[0].node.handle_timeout(later);
    while let Some(o) = s.nodes[0].node.poll_output() {
        if matches!(o, Output::Close { link: l } | Output::Abort { link: l } if l == link) {
            closed = true;
        }
    }
    assert!(closed, "slow reader was never disconnected");
    // Far beyond the hard bound it goes at once.
    assert!(s.nodes[0].node.link_of(&id1).is_none());
}

#[test]
fn beacons_never_tear_down_or_redirect_a_live_link() {
    let mut s = Sim::new(8, NetConfig::default());
    s.add_nodes(2);
    assert!(mesh_time(&mut s, 20_000).is_some());
    let id1 = s.identity_of(1);
    let link_before = s.nodes[0].node.link_of(&id1);
    // A genuine beacon of node 1 replayed from another address, and garbage.
    let me = s.nodes[1].node.identity();
    let body = crate::wire::BeaconBody {
        version: crate::wire::limits::PROTOCOL_VERSION,
        keys: *me.bound_keys(),
        tcp_port: 9,
        nickname: "evil".into(),
        instance: 1,
        seq: 1,
        timestamp_ms: 1,
    };
    let forged = crate::wire::encode_beacon(&body, &sim::identity(9)).unwrap();
    let genuine_old = crate::wire::encode_beacon(&body, me).unwrap();
    let from: SocketAddr = "127.9.9.9:47474".parse().unwrap();
    for data in [forged, genuine_old, vec![0xff; 100], vec![]] {
        s.input(0, Input::Datagram { from, data });
    }
    s.run_for(20_000);
    assert_eq!(s.nodes[0].node.link_of(&id1), link_before);
    let p = s.nodes[0].node.peer(&id1).unwrap();
    assert_ne!(p.nickname, "evil");
    assert_ne!(p.addr.map(|a| a.port()), Some(9));
}

// ---- chat over the simulated network --------------------------------------

pub(super) fn chat_events(s: &Sim, i: usize) -> Vec<&crate::event::ChatLine> {
    s.nodes[i]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::MessageReceived { message } => Some(message),
            _ => None,
        })
        .collect()
}

fn say(s: &mut Sim, i: usize, text: &str) {
    s.input(i, Input::Command(Command::Say(text.into())));
}

#[test]
fn three_nodes_public_and_private_messages_with_offline_peer() {
    let mut s = Sim::new(
        11,
        NetConfig {
            delay_ms: (1, 20),
            loss: 0.2,
        },
    );
    s.add_nodes(3);
    assert!(mesh_time(&mut s, 30_000).is_some());
    say(&mut s, 0, "hello everyone");
    s.run_for(1_000);
    for i in [1, 2] {
        let got = chat_events(&s, i);
        assert_eq!(got.len(), 1, "node {i}");
        assert_eq!(got[0].message.text, "hello everyone");
        assert_eq!(got[0].author_nick, "node0");
    }
    assert!(s.nodes[0]
        .events
        .iter()
        .any(|e| matches!(e, Event::MessageDelivered { .. })));

    // Node 2 goes offline; a private message and public ones are written meanwhile.
    s.crash(2);
    s.run_for(1_000);
    let to = "node2".to_string();
    s.input(
        0,
        Input::Command(Command::Msg {
            peer: to,
            text: "are you there?".into(),
        }),
    );
    say(&mut s, 1, "while you were away");
    s.run_for(2_000);
    assert!(s.nodes[0]
        .events
        .iter()
        .any(|e| matches!(e, Event::MessageSent { .. })));

    // Node 2 comes back with its disk intact (same store).
    let store = s.take_store(2);
    s.restart_with(2, sim::identity(2), sim::node_config(2), store);
    assert!(mesh_time(&mut s, 30_000).is_some());
    s.run_for(3_000);
    let texts: Vec<String> = chat_events(&s, 2)
        .iter()
        .map(|l| l.message.text.clone())
        .collect();
    assert_eq!(
        texts.iter().filter(|t| *t == "are you there?").count(),
        1,
        "{texts:?}"
    );
    assert_eq!(
        texts.iter().filter(|t| *t == "while you were away").count(),
        1,
        "{texts:?}"
    );
    assert_eq!(
        texts.iter().filter(|t| *t == "hello everyone").count(),
        1,
        "duplicates shown: {texts:?}"
    );
}

#[test]
fn catch_up_from_a_peer_other_than_the_author() {
    let mut s = Sim::new(12, NetConfig::default());
    s.add_nodes(3);
    assert!(mesh_time(&mut s, 30_000).is_some());
    // Node 2 is cut off from everyone while node 0 posts.
    s.partition(&[2], &[0, 1]);
    s.run_for(20_000);
    say(&mut s, 0, "missed this");
    s.run_for(1_000);
    // Node 0 disappears for good; node 2 only ever reconnects to node 1.
    s.crash(0);
    s.heal();
    s.run_for(30_000);
    let got: Vec<String> = chat_events(&s, 2)
        .iter()
        .map(|l| l.message.text.clone())
        .collect();
    assert_eq!(got, vec!["missed this".to_string()]);
    assert_eq!(chat_events(&s, 2)[0].message.author, s.identity_of(0));
}

#[test]
fn a_relayed_public_message_with_a_broken_signature_is_rejected_and_closes_that_link() {
    let mut s = Sim::new(13, NetConfig::default());
    s.add_nodes(2);
    assert!(mesh_time(&mut s, 30_000).is_some());
    // Node 1 is hostile: it sends a public message "by node 0" it cannot sign.
    let author = s.identity_of(0);
    let forged = forged_public(author, [9; 16], "I owe you nothing");
    assert!(s.nodes[1].node.queue_frame(&author, forged));
    let now = s.now_ms;
    s.nodes[1].node.handle_timeout(now);
    s.run_for(1_000);
    assert!(chat_events(&s, 0).is_empty());
    assert!(s.nodes[0]
        .node
        .store()
        .get_message(&author.0, &[9; 16])
        .unwrap()
        .is_none());
    assert!(
        lost_to_chat_rules(&s, 0),
        "the offending link was not closed"
    );
}

/// A public message "by" `author` that nobody signed.
pub(super) fn forged_public(author: IdentityKey, id: [u8; 16], text: &str) -> Frame {
    Frame::Public(Box::new(crate::wire::PublicMessage {
        id,
        author,
        timestamp_ms: 1_700_000_000_000,
        text: text.into(),
        signature: crate::identity::SignatureBytes([0; 64]),
    }))
}

/// Node `i` closed a link for breaking the chat rules.
pub(super) fn lost_to_chat_rules(s: &Sim, i: usize) -> bool {
    s.nodes[i].events.iter().any(|e| {
        matches!(e, Event::PeerLost { reason, .. }
            if matches!(**reason, CloseCause::ChatRules(_)))
    })
}

/// One node with nobody around, at time 0, for tests that drive it by hand.
fn lone_node(cfg: NodeConfig) -> Node {
    Node::new(
        sim::identity(0),
        cfg,
        sim::memory_store(),
        Rng::new(1),
        0,
        1_700_000_000_000,
    )
}

/// Scripts rely on order: a `/search` right after a post sees it, and the
/// post's echo comes first, even when both arrive before the next drain.
#[test]
fn commands_take_effect_in_the_order_given() {
    let cfg = sim::node_config(0);
    let mut node = lone_node(cfg);
    node.handle(1, Input::Command(Command::Say("zebra crossing".into())));
    node.handle(1, Input::Command(Command::Say("zebra again".into())));
    node.handle(
        1,
        Input::Command(Command::Search {
            query: "zebra".into(),
            room: None,
            limit: 10,
        }),
    );
    node.handle(
        1,
        Input::Command(Command::Msg {
            peer: "nobody".into(),
            text: "x".into(),
        }),
    );
    node.handle(1, Input::Command(Command::Say("after the error".into())));
    let mut events = Vec::new();
    while let Some(out) = node.poll_output() {
        if let Output::Event(e) = out {
            events.push(e);
        }
    }
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            Event::MessageSent { .. } => "sent",
            Event::SearchResults { messages, .. } => {
                assert_eq!(messages.len(), 2, "the search sees both posts");
                "search"
            }
            Event::Error { .. } => "error",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["sent", "sent", "search", "error", "sent"]);
}

/// An honest initiator's handshake against `node`, accepted from `remote`:
/// whether it completed.
fn honest_handshake(node: &mut Node, now: u64, remote: SocketAddr) -> bool {
    use crate::link::{Connection, Purpose};
    let me = sim::identity(7);
    let hs = HandshakeConfig::new("honest", 1);
    let mut client = Connection::dial(now, remote, Purpose::Manual, node.cfg.link_config());
    if client.on_connected(&me, &hs).is_err() {
        return false;
    }
    let Some(link) = node.accept(now, remote) else {
        return false;
    };
    let mut to_node = client.poll_transmit();
    for _ in 0..4 {
        let Some(data) = to_node.take() else { break };
        node.handle(now, Input::Received { link, data });
        while let Some(out) = node.poll_output() {
            match out {
                Output::Send { link: l, data } if l == link => {
                    let _ = client.on_bytes(now, &data);
                    to_node = client.poll_transmit().or(to_node);
                }
                Output::Event(Event::PeerConnected { .. }) => return true,
                _ => {}
            }
        }
    }
    false
}

/// 300 and 3,000 connections that send one byte and hang used to fill the
/// 64 handshake slots, and every honest peer was refused until the 10 s
/// deadline: now each new connection takes the slot of one that has come
/// least far, so an honest handshake completes at once, whether the
/// stalled ones come from its own address or from many.
#[test]
fn stalled_connections_cannot_keep_an_honest_handshake_out() {
    for (stalled, many_sources) in [(300, false), (300, true), (3_000, true), (3_000, false)] {
        let cfg = sim::node_config(0);
        let mut node = lone_node(cfg);
        let honest: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        for i in 0..stalled {
            let remote = if many_sources {
                SocketAddr::new([10, 0, (i / 250) as u8, (i % 250) as u8].into(), 50_000)
            } else {
                SocketAddr::new(honest.ip(), 1_000 + i as u16)
            };
            if let Some(link) = node.accept(1, remote) {
                node.handle(
                    1,
                    Input::Received {
                        link,
                        data: vec![0],
                    },
                );
            }
            while node.poll_output().is_some() {}
        }
        let unauthenticated = node.unauthenticated_inbound(|_| true).len();
        assert!(
            unauthenticated <= node.cfg.max_handshakes,
            "{unauthenticated}"
        );
        assert!(
            honest_handshake(&mut node, 2, honest),
            "{stalled} stalled connections (many sources: {many_sources}) kept the honest peer out"
        );
        // Stalled slots free themselves within the first-message deadline.
        node.handle_timeout(2 + FIRST_MESSAGE_MS);
        while node.poll_output().is_some() {}
        assert_eq!(node.unauthenticated_inbound(|_| true).len(), 0);
        assert_eq!(node.connected().len(), 1);
    }
}

/// A closed link's socket still holds memory and a descriptor until the
/// shell reports it gone: it counts against `max_links` until then (or
/// until the grace time passes), so closing links cannot be used to exceed
/// the limit.
#[test]
fn closing_sockets_count_against_the_link_limit_until_gone() {
    let mut cfg = sim::node_config(0);
    cfg.max_links = 3;
    let mut node = lone_node(cfg);
    let remote = |i: u16| SocketAddr::new([10, 9, 0, i as u8].into(), 4000 + i);
    let links: Vec<LinkId> = (0..3).filter_map(|i| node.accept(1, remote(i))).collect();
    assert_eq!(links.len(), 3);
    // They never send message 1: closed at the first-message deadline.
    node.handle_timeout(1 + FIRST_MESSAGE_MS);
    let mut closed = Vec::new();
    while let Some(out) = node.poll_output() {
        if let Output::Close { link } | Output::Abort { link } = out {
            closed.push(link);
        }
    }
    assert_eq!(closed.len(), 3);
    assert_eq!(node.link_count(), 0);
    assert_eq!(node.closing_count(), 3);
    let now = 2 + FIRST_MESSAGE_MS;
    assert_eq!(
        node.accept(now, remote(7)),
        None,
        "closing sockets are not free"
    );
    for link in closed {
        node.handle(now, Input::Closed { link, error: None });
    }
    assert_eq!(node.closing_count(), 0);
    assert!(node.accept(now, remote(8)).is_some());
}

/// A marker is answered after everything typed before it has reported, so
/// a front end can print its own answers in input order.
#[test]
fn a_marker_follows_the_events_of_earlier_commands() {
    let cfg = sim::node_config(0);
    let mut node = lone_node(cfg);
    node.handle(1, Input::Command(Command::Say("first".into())));
    node.handle(1, Input::Command(Command::Marker(7)));
    node.handle(1, Input::Command(Command::Say("second".into())));
    let mut order = Vec::new();
    while let Some(out) = node.poll_output() {
        match out {
            Output::Event(Event::MessageSent { message }) => order.push(message.message.text),
            Output::Event(Event::Marker(n)) => order.push(format!("marker {n}")),
            _ => {}
        }
    }
    assert_eq!(order, ["first", "marker 7", "second"]);
}

// ------------------------------------------------------------------ files

fn file_content(len: usize, seed: u8) -> Vec<u8> {
    let mut r = crate::rng::Rng::new(u64::from(seed));
    (0..len).map(|_| r.next_u64() as u8).collect()
}

fn offered_id(s: &Sim, i: usize) -> Option<String> {
    s.nodes[i].events.iter().find_map(|e| match e {
        Event::FileOffered { transfer } if !transfer.outgoing => {
            Some(crate::hex(&transfer.id)[..8].to_owned())
        }
        _ => None,
    })
}

fn send_file(s: &mut Sim, from: usize, to: usize, path: &str) {
    let peer = format!("node{to}");
    s.input(
        from,
        Input::Command(Command::SendFile {
            peer,
            path: path.into(),
        }),
    );
}

#[test]
fn a_file_is_offered_accepted_verified_and_saved_while_chat_flows() {
    let mut s = Sim::new(3, NetConfig::default());
    s.add_nodes(2);
    assert!(mesh_time(&mut s, 30_000).is_some());
    let content = file_content(1_000_003, 1);
    s.nodes[0].disk.put("home/../report.pdf", content.clone());
    send_file(&mut s, 0, 1, "home/../report.pdf");
    s.run_for(500);
    let id = offered_id(&s, 1).expect("the offer reached the receiver");
    s.input(1, Input::Command(Command::AcceptFile(id)));
    say(&mut s, 0, "while the file flows");
    s.run_for(5_000);
    let done = s.nodes[1].events.iter().find_map(|e| match e {
        Event::FileCompleted { transfer } => Some(transfer.clone()),
        _ => None,
    });
    let done = done.expect("completed on the receiver");
    assert_eq!(done.size, content.len() as u64);
    assert_eq!(done.root, *bao_tree::blake3::hash(&content).as_bytes());
    let path = done.path.expect("a path");
    assert_eq!(
        path, "downloads/report.pdf",
        "the offered name's last component"
    );
    assert_eq!(s.nodes[1].disk.get(&path), Some(content));
    assert!(
        s.nodes[0]
            .events
            .iter()
            .any(|e| matches!(e, Event::FileCompleted { transfer } if transfer.outgoing)),
        "the sender heard it completed"
    );
    assert!(!chat_events(&s, 1).is_empty(), "chat kept flowing");
}

#[test]
fn an_offer_withdrawn_before_it_is_accepted_leaves_no_record() {
    let mut s = Sim::new(6, NetConfig::default());
    s.add_nodes(2);
    assert!(mesh_time(&mut s, 30_000).is_some());
    s.nodes[0].disk.put("a.txt", file_content(10_000, 5));
    send_file(&mut s, 0, 1, "a.txt");
    s.run_for(300);
    let id = offered_id(&s, 1).expect("offered");
    s.input(0, Input::Command(Command::CancelFile(id.clone())));
    s.run_for(300);
    assert!(s.nodes[1]
        .events
        .iter()
        .any(|e| matches!(e, Event::FileFailed { transfer, .. } if !transfer.outgoing)));
    s.input(1, Input::Command(Command::Files));
    let listed = s.nodes[1].events.iter().rev().find_map(|e| match e {
        Event::Files { transfers } => Some(transfers.len()),
        _ => None,
    });
    assert_eq!(listed, Some(0), "the receiver keeps nothing of it");
    s.input(1, Input::Command(Command::AcceptFile(id)));
    let last = s.nodes[1].events.last();
    assert!(
        matches!(last, Some(Event::Error { error }) if error.to_string().contains("no transfer matches")),
        "{last:?}"
    );
}

#[test]
fn a_transfer_resumes_after_the_link_is_lost() {
    let mut s = Sim::new(4, NetConfig::default());
    s.add_nodes(2);
    assert!(mesh_time(&mut s, 30_000).is_some());
    let content = file_content(64 << 20, 2);
    s.nodes[0].disk.put("big.bin", content.clone());
    send_file(&mut s, 0, 1, "big.bin");
    s.run_for(300);
    let id = offered_id(&s, 1).expect("offered");
    s.input(1, Input::Command(Command::AcceptFile(id)));
    // Cut the link part way through, then heal it.
    s.run_for(20);
    s.partition(&[0], &[1]);
    s.run_for(20_000);
    let completed = |s: &Sim| {
        s.nodes[1]
            .events
            .iter()
            .any(|e| matches!(e, Event::FileCompleted { .. }))
    };
    assert!(!completed(&s), "the cut came before the end");
    assert!(s.nodes[1]
        .events
        .iter()
        .any(|e| matches!(e, Event::PeerLost { .. })));
    s.heal();
    s.run_for(30_000);
    let done = s.nodes[1]
        .events
        .iter()
        .any(|e| matches!(e, Event::FileCompleted { .. }));
    assert!(done, "completed after the link came back");
    assert_eq!(s.nodes[1].disk.get("downloads/big.bin"), Some(content));
}

#[test]
fn a_file_changed_after_the_offer_is_caught_and_nothing_is_saved() {
    let mut s = Sim::new(5, NetConfig::default());
    s.add_nodes(2);
    assert!(mesh_time(&mut s, 30_000).is_some());
    s.nodes[0].disk.put("a.txt", file_content(100_000, 3));
    send_file(&mut s, 0, 1, "a.txt");
    s.run_for(300);
    s.nodes[0].disk.put("a.txt", file_content(100_000, 4));
    let id = offered_id(&s, 1).expect("offered");
    s.input(1, Input::Command(Command::AcceptFile(id)));
    s.run_for(3_000);
    assert!(s.nodes[1]
        .events
        .iter()
        .any(|e| matches!(e, Event::FileFailed { .. })));
    assert!(s.nodes[0]
        .events
        .iter()
        .any(|e| matches!(e, Event::FileFailed { transfer, .. } if transfer.outgoing)));
    assert!(s.nodes[1].disk.paths().is_empty(), "nothing saved");
}

#[test]
fn two_files_to_one_peer_share_the_link_and_both_arrive() {
    let mut s = Sim::new(6, NetConfig::default());
    s.add_nodes(2);
    assert!(mesh_time(&mut s, 30_000).is_some());
    let (one, two) = (file_content(3 << 20, 5), file_content(3 << 20, 6));
    s.nodes[0].disk.put("one.bin", one.clone());
    s.nodes[0].disk.put("two.bin", two.clone());
    send_file(&mut s, 0, 1, "one.bin");
    send_file(&mut s, 0, 1, "two.bin");
    s.run_for(300);
    let ids: Vec<String> = s.nodes[1]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::FileOffered { transfer } => Some(crate::hex(&transfer.id)[..8].to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 2);
    for id in ids {
        s.input(1, Input::Command(Command::AcceptFile(id)));
    }
    // Part way through, both have made progress: they take turns.
    s.run_for(15);
    let progressed: std::collections::HashSet<_> = s.nodes[1]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::FileProgress { transfer } if transfer.done > 0 => Some(transfer.id),
            _ => None,
        })
        .collect();
    assert_eq!(progressed.len(), 2, "both transfers moved");
    s.run_for(10_000);
    assert_eq!(s.nodes[1].disk.get("downloads/one.bin"), Some(one));
    assert_eq!(s.nodes[1].disk.get("downloads/two.bin"), Some(two));
}

#[test]
fn a_full_disk_fails_the_transfer_with_a_clear_reason_and_accepting_again_resumes_it() {
    let mut s = Sim::new(7, NetConfig::default());
    s.add_nodes(2);
    assert!(mesh_time(&mut s, 30_000).is_some());
    let disk = s.nodes[1].disk.clone();
    disk.set_capacity(Some(1 << 20));
    let content = file_content(3 << 20, 7);
    s.nodes[0].disk.put("big.bin", content);
    send_file(&mut s, 0, 1, "big.bin");
    s.run_for(300);
    let id = offered_id(&s, 1).expect("offered");
    s.input(1, Input::Command(Command::AcceptFile(id.clone())));
    s.run_for(2_000);
    let failed = s.nodes[1].events.iter().find_map(|e| match e {
        Event::FileFailed { reason, .. } => Some(reason.to_string()),
        _ => None,
    });
    assert!(
        failed
            .as_deref()
            .is_some_and(|r| r.contains("disk is full")),
        "{failed:?}"
    );
    assert!(disk.paths().is_empty(), "nothing saved");
    assert!(!s.nodes[1]
        .events
        .iter()
        .any(|e| matches!(e, Event::PeerLost { .. })));
    say(&mut s, 0, "still talking");
    s.run_for(500);
    assert!(!chat_events(&s, 1).is_empty());
    // Room again: accepting it again resumes it, and the sender serves it.
    disk.set_capacity(None);
    s.input(1, Input::Command(Command::AcceptFile(id)));
    s.run_for(5_000);
    assert_eq!(
        disk.get("downloads/big.bin"),
        s.nodes[0].disk.get("big.bin"),
        "resumed and completed"
    );
}

#[test]
fn auto_accept_takes_files_from_verified_contacts_only() {
    let mut s = Sim::new(8, NetConfig::default());
    for i in 0..3 {
        let cfg = NodeConfig {
            files: crate::files::FileLimits {
                auto_accept_verified: true,
                ..crate::files::FileLimits::default()
            },
            ..sim::node_config(i)
        };
        s.add_node_with(sim::identity(i), cfg);
    }
    assert!(mesh_time(&mut s, 30_000).is_some());
    // Node 2 verifies node 0's key, not node 1's.
    let fingerprint = s.identity_of(0).fingerprint().grouped();
    s.input(
        2,
        Input::Command(Command::Trust {
            peer: "node0".into(),
            fingerprint: Some(fingerprint),
        }),
    );
    for from in [0, 1] {
        let path = format!("from{from}.bin");
        s.nodes[from]
            .disk
            .put(&path, file_content(50_000, from as u8));
        send_file(&mut s, from, 2, &path);
    }
    s.run_for(3_000);
    let disk = &s.nodes[2].disk;
    assert!(disk.get("downloads/from0.bin").is_some(), "verified: taken");
    assert!(
        disk.get("downloads/from1.bin").is_none(),
        "unverified: asked"
    );
    assert!(s.nodes[2].events.iter().any(|e| matches!(
        e,
        Event::FileOffered { transfer } if transfer.peer.nickname == "node1"
    )));
}
