//! Signature checks on the shell's pool, over the simulated network: the
//! simulator answers `Output::CheckSignatures` after `Sim::check_ms`, so
//! batches wait for their verdicts as they do behind natter's pool.

use super::room_tests::cmd;
use super::tests::{chat_events, forged_public, lost_to_chat_rules};
use super::*;
use crate::testkit::sim::{NetConfig, Sim};

fn texts(s: &Sim, i: usize) -> Vec<String> {
    chat_events(s, i)
        .iter()
        .map(|l| l.message.text.clone())
        .collect()
}

/// A full mesh of `n` nodes whose pool answers `check_ms` after a batch.
fn mesh(seed: u64, n: usize, check_ms: u64) -> Sim {
    let mut s = Sim::new(seed, NetConfig::default());
    s.check_ms = check_ms;
    s.add_nodes(n);
    s.run_for(5_000);
    assert!(s.full_mesh());
    s
}

#[test]
fn batches_are_taken_in_arrival_order_whatever_waits_for_its_checks() {
    let mut s = mesh(41, 3, 2_000);
    cmd(&mut s, 0, Command::Say("first".into()));
    s.run_for(200);
    // A direct message, nothing to check, arrives while the post waits.
    let to = "node1".to_string();
    cmd(
        &mut s,
        2,
        Command::Msg {
            peer: to,
            text: "second".into(),
        },
    );
    s.run_for(500);
    assert!(
        texts(&s, 1).is_empty(),
        "nothing is taken before the post's verdict"
    );
    assert!(s.nodes[1].node.parked_batches() >= 2);
    s.run_for(2_000);
    assert_eq!(texts(&s, 1), ["first", "second"]);
    assert_eq!(s.nodes[1].node.parked_batches(), 0);
    // The post was acked once taken.
    assert!(s.nodes[0]
        .events
        .iter()
        .any(|e| matches!(e, Event::MessageDelivered { .. })));
}

#[test]
fn a_close_takes_what_came_before_it_without_waiting_for_the_pool() {
    let mut s = mesh(42, 2, 10_000);
    cmd(&mut s, 0, Command::Say("last words".into()));
    cmd(&mut s, 0, Command::Quit);
    s.run_for(500);
    assert_eq!(texts(&s, 1), ["last words"]);
    assert_eq!(s.nodes[1].node.parked_batches(), 0);
    // The pool's late answer finds nothing waiting and changes nothing.
    s.run_for(10_000);
    assert_eq!(texts(&s, 1), ["last words"]);
}

#[test]
fn a_forged_post_behind_honest_ones_closes_the_link_once_its_verdict_is_in() {
    let mut s = mesh(43, 2, 1_000);
    let author = s.identity_of(0);
    cmd(&mut s, 1, Command::Say("honest".into()));
    let forged = forged_public(author, [7; 16], "not theirs");
    assert!(s.nodes[1].node.queue_frame(&author, forged));
    s.run_for(500);
    assert!(!lost_to_chat_rules(&s, 0), "closed before the verdict");
    s.run_for(1_000);
    assert!(
        lost_to_chat_rules(&s, 0),
        "the forger's link was not closed"
    );
    assert_eq!(texts(&s, 0), ["honest"]);
    assert!(s.nodes[0]
        .node
        .store()
        .get_message(&author.0, &[7; 16])
        .unwrap()
        .is_none());
}

#[test]
fn a_flood_of_posts_backlogs_the_checks_until_the_pool_catches_up() {
    let mut s = mesh(44, 2, 5_000);
    let n = MAX_PARKED_POSTS + 10;
    for i in 0..n {
        cmd(&mut s, 0, Command::Say(format!("post {i}")));
    }
    s.run_for(1_000);
    assert!(s.nodes[1].node.checks_backlogged());
    assert!(texts(&s, 1).is_empty());
    s.run_for(10_000);
    assert!(!s.nodes[1].node.checks_backlogged());
    assert_eq!(s.nodes[1].node.parked_batches(), 0);
    let got = texts(&s, 1);
    assert_eq!(got.len(), n);
    assert!(got.iter().zip(0..).all(|(t, i)| *t == format!("post {i}")));
}

#[test]
fn without_a_pool_nothing_is_parked() {
    let mut s = Sim::new(45, NetConfig::default());
    s.check_pool = false;
    s.add_nodes(2);
    s.run_for(5_000);
    cmd(&mut s, 0, Command::Say("here".into()));
    s.run_for(300);
    assert_eq!(texts(&s, 1), ["here"]);
    assert_eq!(s.nodes[1].node.parked_batches(), 0);
}

#[test]
fn a_close_finishes_only_up_to_the_closing_links_batches() {
    let mut s = mesh(46, 3, 10_000);
    // Node 2 does not hear node 0 (else it would relay node 0's post to
    // node 1 as it quits, which rightly finishes it there).
    s.partition(&[2], &[0]);
    // Node 1 holds a post of node 0's, parked for 10 s.
    cmd(&mut s, 0, Command::Say("from zero".into()));
    s.run_for(300);
    assert_eq!(s.nodes[1].node.parked_batches(), 1);
    // Node 2 quits: its link to node 1 closes with nothing of its parked
    // there, so node 0's post keeps waiting for the pool.
    cmd(&mut s, 2, Command::Quit);
    s.run_for(300);
    assert!(texts(&s, 1).is_empty());
    assert_eq!(s.nodes[1].node.parked_batches(), 1);
    s.run_for(10_000);
    assert_eq!(texts(&s, 1), ["from zero"]);
}
