//! Links beyond the LAN over the simulated network: tickets, the endpoint
//! identity rule, contacts learnt over the LAN and dialled over the WAN,
//! contacts kept across restarts, and `--wan` off.

use super::*;
use crate::link::{LinkPath, Remote};
use crate::testkit::sim::{self, NetConfig, Sim};
use crate::wire::{Frame, Reach, Ticket};

fn wan_config(i: usize) -> NodeConfig {
    NodeConfig {
        wan: true,
        ..sim::node_config(i)
    }
}

fn relay() -> Reach {
    Reach::new(Some("http://10.9.0.1:3340".into()), [])
}

fn ticket_of(s: &Sim, i: usize) -> Ticket {
    Ticket {
        identity: s.identity_of(i),
        reach: relay(),
    }
}

fn linked_over(s: &Sim, i: usize, j: usize) -> Option<LinkPath> {
    let id = s.identity_of(j);
    let link = s.nodes[i].node.peers().find(|p| p.identity == id)?.link()?;
    let c = s.nodes[i].node.conns.get(&link)?;
    c.is_established().then(|| c.path())
}

fn errors(s: &Sim, i: usize) -> Vec<String> {
    s.nodes[i]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Error { error } => Some(error.to_string()),
            _ => None,
        })
        .collect()
}

/// Two nodes with no LAN between them.
fn apart(seed: u64) -> Sim {
    let mut s = Sim::new(seed, NetConfig::default());
    s.add_node_with(sim::identity(0), wan_config(0));
    s.add_node_with(sim::identity(1), wan_config(1));
    s.partition(&[0], &[1]);
    for i in 0..2 {
        s.input(i, Input::OwnReach(relay()));
    }
    s
}

#[test]
fn a_ticket_links_two_nodes_with_no_lan_between_them() {
    let mut s = apart(1);
    s.input(0, Input::Command(Command::Ticket));
    let text = s.nodes[0].events.iter().find_map(|e| match e {
        Event::Ticket { ticket } => Some(ticket.clone()),
        _ => None,
    });
    let ticket = Ticket::decode(&text.expect("a ticket")).expect("it decodes");
    assert_eq!(ticket.identity, s.identity_of(0));
    s.input(1, Input::Command(Command::ConnectTicket(ticket)));
    s.run_for(2_000);
    assert_eq!(linked_over(&s, 1, 0), Some(LinkPath::Relayed));
    assert_eq!(linked_over(&s, 0, 1), Some(LinkPath::Relayed));
    // Messages both ways.
    let to = |s: &Sim, i: usize| s.identity_of(i).fingerprint().to_string();
    for (from, dest) in [(0, 1), (1, 0)] {
        let peer = to(&s, dest);
        let text = format!("over the wan from {from}");
        s.input(from, Input::Command(Command::Msg { peer, text }));
    }
    s.run_for(1_000);
    for i in 0..2 {
        let got = s.nodes[i].events.iter().any(|e| {
            matches!(e, Event::MessageReceived { message }
                if message.message.text == format!("over the wan from {}", 1 - i))
        });
        assert!(got, "node {i} did not receive");
    }
    // The shell's path report shows in /peers.
    let link = s.nodes[1].node.peers().find_map(|p| p.link()).unwrap();
    s.input(
        1,
        Input::Path {
            link,
            path: LinkPath::Direct,
        },
    );
    s.input(1, Input::Command(Command::Peers));
    let shown = s.nodes[1].events.iter().rev().find_map(|e| match e {
        Event::Peers { peers } => Some(peers[0].path),
        _ => None,
    });
    assert_eq!(shown, Some(Some(LinkPath::Direct)));
}

#[test]
fn an_endpoint_that_is_not_the_noise_identity_is_closed() {
    let mut s = apart(2);
    // Host 2 runs its iroh endpoint under node 1's key but its Noise
    // handshake as itself (identity 2): whatever it dials, the identity
    // iroh authenticated is not the one Noise does.
    s.add_node_with(sim::identity(2), wan_config(2));
    s.partition(&[2], &[0, 1]);
    s.wan_endpoints.insert(2, s.identity_of(1));
    s.input(2, Input::OwnReach(relay()));
    let ticket = ticket_of(&s, 0);
    s.input(2, Input::Command(Command::ConnectTicket(ticket)));
    s.run_for(3_000);
    assert_eq!(linked_over(&s, 0, 1), None);
    assert_eq!(linked_over(&s, 0, 2), None);
    let refused = s.nodes[0].events.iter().any(|e| {
        matches!(e, Event::LinkFailed { addr: Remote::Wan(k), reason }
            if *k == s.identity_of(1)
                && matches!(**reason, CloseCause::EndpointMismatch { .. }))
    });
    assert!(refused, "{:?} / {:?}", s.nodes[0].events, s.nodes[2].events);
    // A ticket naming node 1 that leads to host 2: the handshake itself
    // refuses the identity (the dial expects node 1).
    s.wan_endpoints.clear();
    s.wan_endpoints.insert(2, s.identity_of(1));
    let to_1 = ticket_of(&s, 1);
    s.input(0, Input::Command(Command::ConnectTicket(to_1)));
    s.run_for(3_000);
    assert_eq!(linked_over(&s, 0, 1), None);
    assert_eq!(linked_over(&s, 0, 2), None);
    // The genuine node 1 still links (host 2 stops pretending).
    s.wan_endpoints.clear();
    s.run_for(60_000);
    assert_eq!(linked_over(&s, 0, 1), Some(LinkPath::Relayed));
}

#[test]
fn contacts_met_on_the_lan_are_found_over_the_wan_after_they_leave() {
    let mut s = Sim::new(3, NetConfig::default());
    s.add_node_with(sim::identity(0), wan_config(0));
    s.add_node_with(sim::identity(1), wan_config(1));
    for i in 0..2 {
        s.input(i, Input::OwnReach(relay()));
    }
    s.run_for(5_000);
    assert_eq!(linked_over(&s, 0, 1), Some(LinkPath::Lan));
    // Node 1 goes home: the office LAN no longer reaches it.
    s.partition(&[0], &[1]);
    s.run_for(60_000);
    assert_eq!(linked_over(&s, 0, 1), Some(LinkPath::Relayed));
    assert_eq!(linked_over(&s, 1, 0), Some(LinkPath::Relayed));
    // Back at the office, the LAN link takes over again only if the WAN
    // link goes; meanwhile the WAN link keeps working.
    s.heal();
    s.run_for(5_000);
    assert!(linked_over(&s, 0, 1).is_some());
}

#[test]
fn wan_contacts_are_dialled_again_after_a_restart() {
    let mut s = apart(4);
    let ticket = ticket_of(&s, 0);
    s.input(1, Input::Command(Command::ConnectTicket(ticket)));
    s.run_for(2_000);
    assert!(linked_over(&s, 1, 0).is_some());
    // Both restart, node 1 with its store and node 0 without (its disk
    // was wiped: only node 1 knows where the other is).
    s.crash(0);
    s.crash(1);
    let store = s.take_store(1);
    s.run_for(1_000);
    s.restart(0, sim::identity(0), wan_config(0));
    s.restart_with(1, sim::identity(1), wan_config(1), store);
    s.input(0, Input::OwnReach(relay()));
    s.input(1, Input::OwnReach(relay()));
    s.run_for(5_000);
    assert_eq!(linked_over(&s, 1, 0), Some(LinkPath::Relayed));
    assert_eq!(linked_over(&s, 0, 1), Some(LinkPath::Relayed));
}

#[test]
fn with_wan_off_nothing_goes_beyond_the_lan() {
    let mut s = Sim::new(5, NetConfig::default());
    s.add_nodes(2);
    s.input(0, Input::OwnReach(relay()));
    s.run_for(5_000);
    // Linked over the LAN, and no Reach was sent or kept.
    assert_eq!(linked_over(&s, 0, 1), Some(LinkPath::Lan));
    assert!(s.nodes[1].node.wan.contacts().next().is_none());
    let ticket = ticket_of(&s, 1);
    s.input(0, Input::Command(Command::ConnectTicket(ticket)));
    s.input(0, Input::Command(Command::Ticket));
    let errs = errors(&s, 0);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs.iter().all(|e| e.contains("--wan")), "{errs:?}");
    let now = s.now_ms;
    let other = s.identity_of(1);
    assert_eq!(s.nodes[0].node.accept_wan(now, other), None);
}

#[test]
fn own_ticket_and_no_reach_yet_are_errors() {
    let mut s = Sim::new(6, NetConfig::default());
    s.add_node_with(sim::identity(0), wan_config(0));
    s.input(0, Input::Command(Command::Ticket));
    assert!(errors(&s, 0)[0].contains("not reachable beyond the LAN yet"));
    s.input(0, Input::OwnReach(relay()));
    let own = ticket_of(&s, 0);
    s.input(0, Input::Command(Command::ConnectTicket(own)));
    assert!(errors(&s, 0)[1].contains("your own ticket"));
}

#[test]
fn saved_contacts_survive_damage_and_stay_bounded() {
    let good = Ticket {
        identity: sim::identity(7).identity_key(),
        reach: relay(),
    };
    let setting = format!("garbage\n{}\nnatterzzzz", good.encode());
    let book = wan::WanBook::load(Some(setting));
    assert_eq!(book.contacts().count(), 1);
    assert_eq!(book.reach_of(&good.identity), Some(&relay()));

    let mut s = Sim::new(8, NetConfig::default());
    s.add_node_with(sim::identity(0), wan_config(0));
    for i in 0..(MAX_WAN_CONTACTS + 10) {
        let t = Ticket {
            identity: sim::identity(100 + i).identity_key(),
            reach: relay(),
        };
        s.input(0, Input::Command(Command::ConnectTicket(t)));
    }
    assert_eq!(s.nodes[0].node.wan.contacts().count(), MAX_WAN_CONTACTS);
}

#[test]
fn reaches_from_minted_identities_do_not_push_out_contacts_kept_before() {
    let mut s = Sim::new(10, NetConfig::default());
    s.add_node_with(sim::identity(0), wan_config(0));
    let ticket = |i: usize| Ticket {
        identity: sim::identity(100 + i).identity_key(),
        reach: relay(),
    };
    for i in 0..10 {
        s.input(0, Input::Command(Command::ConnectTicket(ticket(i))));
    }
    s.run_for(1_000);
    for i in 0..(2 * MAX_WAN_CONTACTS) {
        let minted = sim::identity(1_000 + i).identity_key();
        s.nodes[0].node.on_reach_frame(minted, relay());
    }
    // A ticket pasted now, with the book full of minted contacts, stays
    // too when more come.
    s.input(0, Input::Command(Command::ConnectTicket(ticket(10))));
    for i in 0..10 {
        let minted = sim::identity(5_000 + i).identity_key();
        s.nodes[0].node.on_reach_frame(minted, relay());
    }
    let book = &s.nodes[0].node.wan;
    assert_eq!(book.contacts().count(), MAX_WAN_CONTACTS);
    for i in 0..=10 {
        assert!(
            book.reach_of(&ticket(i).identity).is_some(),
            "ticket {i} kept"
        );
    }
}

#[test]
fn a_peer_changing_its_reach_again_and_again_costs_memory_not_the_disk() {
    let mut s = Sim::new(9, NetConfig::default());
    s.add_node_with(sim::identity(0), wan_config(0));
    s.add_nodes(1);
    s.run_for(5_000);
    assert_eq!(linked_over(&s, 0, 1), Some(LinkPath::Lan));
    let saved = |s: &Sim| -> Option<String> {
        s.nodes[0]
            .node
            .chat
            .store()
            .get_meta(wan::CONTACTS_SETTING)
            .unwrap()
    };
    let reach = |port: u16| Reach::new(None, [std::net::SocketAddr::from(([192, 0, 2, 1], port))]);
    let peer0 = s.identity_of(0);
    for port in 1..=500u16 {
        s.nodes[1]
            .node
            .queue_frame(&peer0, Frame::Reach(reach(port)));
        // Any input makes the simulator drain node 1's queued frames.
        s.input(1, Input::Command(Command::Marker(u64::from(port))));
        s.run_for(1);
    }
    s.run_for(100);
    let id1 = s.identity_of(1);
    // Kept in memory: the latest; saved: the first (one save in 10 s).
    assert_eq!(s.nodes[0].node.wan.reach_of(&id1), Some(&reach(500)));
    let first = Ticket {
        identity: id1,
        reach: reach(1),
    }
    .encode();
    assert_eq!(saved(&s).as_deref(), Some(first.as_str()));
    // Quitting saves what is unsaved.
    s.input(0, Input::Command(Command::Quit));
    let last = Ticket {
        identity: id1,
        reach: reach(500),
    }
    .encode();
    assert_eq!(saved(&s).as_deref(), Some(last.as_str()));
}
