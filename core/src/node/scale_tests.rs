//! A LAN of many nodes in the simulator: the mesh forms in bounded time and
//! discovery keeps to the protocol's beacon budget; the node's link and
//! dial indexes agree with a full scan through loss, crashes and partitions.
//! Simulated time only: nothing here depends on the wall clock.

use crate::discovery::DiscoveryConfig;
use crate::event::Event;
use crate::testkit::sim::{self, NetConfig, Sim};
use crate::wire::limits::MAX_BEACON_LEN;

/// Each node's beacons per second can be at most this many times
/// `MAX_BEACON_LEN`: periodic beacons come `interval_ms × (1 − jitter)` apart
/// at the closest, and once every identity is known nothing brings one
/// forward.
fn steady_beacons_per_s(d: &DiscoveryConfig) -> f64 {
    1000.0 / (d.interval_ms as f64 * (1.0 - d.jitter))
}

#[test]
fn fifty_nodes_reach_a_full_mesh_and_keep_to_the_beacon_budget() {
    const N: usize = 50;
    // Every node's first beacon reaches all 49 others within the global
    // burst (100), so each sights every other from the first round; the
    // lower key dials at once (32 unfinished at most, the rest put off by
    // at most 1.5 s), the higher key 1.5 s later if still unlinked, and a
    // handshake takes a few round trips of at most 5 ms. Twice 1.5 s plus
    // a margin.
    const MESH_DEADLINE_MS: u64 = 5_000;
    const STEADY_MS: u64 = 30_000;
    let d = DiscoveryConfig::default();
    let mut s = Sim::new(17, NetConfig::default());
    s.add_nodes(N);

    let mesh = s.run_until_mesh(50, MESH_DEADLINE_MS);
    assert!(
        mesh.is_some(),
        "no full mesh of {N} nodes after {MESH_DEADLINE_MS} ms"
    );
    let formation_ms = s.now_ms;

    // Until the mesh: beacons are brought forward by new identities, but
    // never closer together than `min_beacon_gap_ms`.
    for (i, n) in s.nodes.iter().enumerate() {
        let t = n.traffic;
        let most = 1 + formation_ms / d.min_beacon_gap_ms;
        assert!(
            t.datagrams_sent <= most,
            "node {i}: {} beacons in {formation_ms} ms",
            t.datagrams_sent
        );
        assert!(t.datagram_bytes_sent <= t.datagrams_sent * MAX_BEACON_LEN as u64);
    }

    // Then a steady LAN: periodic beacons only, every link kept.
    let before: Vec<_> = s.nodes.iter().map(|n| n.traffic).collect();
    s.run_for(STEADY_MS);
    assert!(s.full_mesh(), "the mesh did not hold");
    let secs = STEADY_MS as f64 / 1000.0;
    // One beacon may already have been brought forward when the window opened.
    let beacons_max = 1.0 + steady_beacons_per_s(&d) * secs;
    let mut all_sent = 0;
    for (i, (n, b)) in s.nodes.iter().zip(&before).enumerate() {
        assert!(
            !n.events.iter().any(|e| matches!(e, Event::PeerLost { .. })),
            "node {i} lost a link"
        );
        let sent = n.traffic.datagrams_sent - b.datagrams_sent;
        let bytes = n.traffic.datagram_bytes_sent - b.datagram_bytes_sent;
        assert!(sent >= 1, "node {i} stopped beaconing");
        assert!(
            sent as f64 <= beacons_max,
            "node {i}: {sent} beacons in {secs} s, at most {beacons_max:.1}"
        );
        let bytes_per_s = bytes as f64 / secs;
        let bound = beacons_max * MAX_BEACON_LEN as f64 / secs;
        assert!(
            bytes_per_s <= bound,
            "node {i}: {bytes_per_s:.0} beacon bytes/s, bound {bound:.0}"
        );
        all_sent += bytes;
    }
    // A broadcast reaches every node (its sender too), so what one node
    // receives is what all of them sent, give or take what was in flight at
    // either end of the window.
    for (i, (n, b)) in s.nodes.iter().zip(&before).enumerate() {
        let received = n.traffic.datagram_bytes_received - b.datagram_bytes_received;
        let slack = (N * MAX_BEACON_LEN) as u64;
        assert!(
            received.abs_diff(all_sent) <= slack,
            "node {i} received {received} beacon bytes, {all_sent} were sent"
        );
    }
}

#[test]
fn link_and_dial_indexes_agree_with_a_full_scan() {
    let mut s = Sim::new(
        5,
        NetConfig {
            delay_ms: (1, 20),
            loss: 0.2,
        },
    );
    s.add_nodes(12);
    let check = |s: &mut Sim| {
        for n in &mut s.nodes {
            n.node.conns.assert_consistent();
            n.node.peers.assert_consistent();
        }
    };
    for step in 0..300u64 {
        s.run_for(100);
        match step {
            40 => s.crash(3),
            60 => s.partition(&[0, 1, 2], &[4, 5, 6, 7]),
            90 => s.restart(3, sim::identity(3), sim::node_config(3)),
            150 => s.heal(),
            _ => {}
        }
        check(&mut s);
    }
    assert!(s.full_mesh(), "no mesh after the partition healed");
}
