//! A LAN of many nodes in the simulator: the mesh forms in bounded time and
//! discovery keeps to the protocol's beacon budget; the node's link and
//! dial indexes agree with a full scan through loss, crashes and partitions.
//! Simulated time only: nothing here depends on the wall clock.

use crate::testkit::sim::{self, NetConfig, Sim};

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
