//! Crash safety with real processes on loopback: a sender streams messages
//! while the receiver, or the sender itself, is killed with SIGKILL at
//! random points and restarted. At the end every message the sender
//! accepted is in the receiver's history exactly once.

mod common;

use common::{data_dir, free_tcp_port, Json, Lcg, Proc};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const MESSAGES: usize = 300;

fn receiver(dir: &std::path::Path, port: u16) -> Proc {
    let listen = format!("127.0.0.1:{port}");
    let p = Proc::spawn(
        dir,
        &["--nick", "bob", "--no-discovery", "--listen", &listen],
    );
    p.wait("receiver started", |v| v["event"] == "started");
    p
}

fn sender(dir: &std::path::Path, port: u16) -> Proc {
    let target = format!("127.0.0.1:{port}");
    let p = Proc::spawn(
        dir,
        &[
            "--nick",
            "alice",
            "--no-discovery",
            "--listen",
            "127.0.0.1:0",
            "--connect",
            &target,
        ],
    );
    p.wait("sender started", |v| v["event"] == "started");
    p
}

/// How often each text appears in the receiver's history of `conversation`.
fn history_counts(p: &mut Proc, command: &str) -> HashMap<String, usize> {
    p.drain();
    assert!(p.send(command));
    let h = p.wait("history", |v| v["event"] == "history");
    let mut counts = HashMap::new();
    for m in h["messages"].as_array().expect("messages") {
        *counts
            .entry(m["text"].as_str().unwrap_or_default().to_string())
            .or_insert(0) += 1;
    }
    counts
}

/// Wait until `pred(counts)` holds for the receiver's history.
fn wait_history(
    p: &mut Proc,
    command: &str,
    secs: u64,
    pred: impl Fn(&HashMap<String, usize>) -> bool,
) -> HashMap<String, usize> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let counts = history_counts(p, command);
        if pred(&counts) || Instant::now() > deadline {
            return counts;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Every accepted text is in the history, and nothing is there twice.
fn assert_each_exactly_once(accepted: &[String], counts: &HashMap<String, usize>) {
    let missing: Vec<&String> = accepted
        .iter()
        .filter(|t| !counts.contains_key(*t))
        .collect();
    assert!(
        missing.is_empty(),
        "{} accepted messages lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    let dup: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dup.is_empty(), "duplicates in history: {dup:?}");
}

fn sent_text(v: &Json) -> Option<String> {
    (v["event"] == "message_sent").then(|| {
        v["message"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    })
}

#[test]
fn receiver_killed_at_random_points_loses_and_duplicates_nothing() {
    let mut rng = Lcg::from_env("receiver_killed");
    let port = free_tcp_port();
    let (_ra, rdir) = data_dir();
    let (_sa, sdir) = data_dir();
    let mut bob = receiver(&rdir, port);
    let mut alice = sender(&sdir, port);
    alice.wait("connected", |v| v["event"] == "peer_connected");

    let mut accepted = Vec::new();
    let mut next_kill = 20 + rng.below(60) as usize;
    for i in 0..MESSAGES {
        let text = format!("direct message {i:04}");
        assert!(alice.send(&format!("/msg bob {text}")));
        if i == next_kill {
            bob.kill();
            std::thread::sleep(Duration::from_millis(rng.below(400)));
            bob = receiver(&rdir, port);
            next_kill = i + 20 + rng.below(60) as usize;
        }
        std::thread::sleep(Duration::from_millis(rng.below(6)));
        accepted.extend(alice.drain().iter().filter_map(sent_text));
    }
    accepted.extend(alice.collect_for(1000).iter().filter_map(sent_text));
    assert_eq!(accepted.len(), MESSAGES, "the sender refused messages");

    let counts = wait_history(&mut bob, "/history alice 10000", 60, |c| {
        c.len() >= MESSAGES
    });
    assert_each_exactly_once(&accepted, &counts);
    assert!(alice.quit());
    assert!(bob.quit());
}

#[test]
fn sender_killed_at_random_points_loses_nothing_it_accepted() {
    let mut rng = Lcg::from_env("sender_killed");
    let port = free_tcp_port();
    let (_ra, rdir) = data_dir();
    let (_sa, sdir) = data_dir();
    let mut bob = receiver(&rdir, port);
    let mut alice = sender(&sdir, port);
    alice.wait("connected", |v| v["event"] == "peer_connected");

    let mut accepted: Vec<String> = Vec::new();
    let mut next_kill = 20 + rng.below(60) as usize;
    for i in 0..MESSAGES {
        assert!(alice.send(&format!("public message {i:04}")));
        std::thread::sleep(Duration::from_millis(rng.below(6)));
        accepted.extend(alice.drain().iter().filter_map(sent_text));
        if i == next_kill {
            // Whatever alice had not confirmed before the kill may be gone;
            // whatever she confirmed must arrive.
            alice.kill();
            accepted.extend(alice.drain().iter().filter_map(sent_text));
            std::thread::sleep(Duration::from_millis(rng.below(300)));
            alice = sender(&sdir, port);
            next_kill = i + 20 + rng.below(60) as usize;
        }
    }
    accepted.extend(alice.collect_for(1000).iter().filter_map(sent_text));
    assert!(
        accepted.len() > MESSAGES / 2,
        "too few accepted: {}",
        accepted.len()
    );

    let counts = wait_history(&mut bob, "/history 10000", 60, |c| {
        accepted.iter().all(|t| c.contains_key(t))
    });
    assert_each_exactly_once(&accepted, &counts);
    assert!(alice.quit());
    assert!(bob.quit());
}

/// Start natter on `dir`; it must exit with an error. Returns its stderr.
fn start_must_fail(dir: &std::path::Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_natter"))
        .arg("--data-dir")
        .arg(dir)
        .args(["--no-discovery", "--listen", "127.0.0.1:0"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("runs");
    assert!(!out.status.success(), "natter started on {}", dir.display());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_second_process_on_the_same_data_dir_gets_a_clear_error() {
    let (_d, dir) = data_dir();
    let port = free_tcp_port();
    let _first = receiver(&dir, port);
    let err = start_must_fail(&dir);
    assert!(err.contains("another natter process"), "{err}");
}

#[test]
fn a_corrupt_history_database_is_refused_and_left_alone() {
    let (_d, dir) = data_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("history.sqlite3");
    std::fs::write(&db, vec![0x42u8; 8192]).unwrap();
    let err = start_must_fail(&dir);
    assert!(err.contains("history.sqlite3"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), vec![0x42u8; 8192]);
}
