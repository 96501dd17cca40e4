//! Links beyond the LAN, with real processes on loopback: a `natter relay`
//! on 127.0.0.1, nodes with `--wan --relay http://127.0.0.1:…` and their
//! iroh endpoints bound to 127.0.0.1. No public relay, DNS or pkarr is ever
//! asked: natter's endpoint has no address lookup, and the relay is given.

mod common;

use common::{data_dir, Proc, RelayProc};
use std::process::Command;
use std::time::{Duration, Instant};

/// `natter relay --listen LISTEN`.
fn relay(listen: &str) -> RelayProc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_natter"));
    cmd.args(["relay", "--listen", listen]);
    let relay = RelayProc::start(cmd);
    assert!(relay.url.starts_with("http://127.0.0.1:"), "{}", relay.url);
    relay
}

fn wan_node(dir: &std::path::Path, nick: &str, relay: &str, extra: &[&str]) -> Proc {
    let mut args = vec![
        "--nick",
        nick,
        "--no-discovery",
        "--listen",
        "127.0.0.1:0",
        "--wan",
        "--relay",
        relay,
    ];
    // --relay-only binds no UDP socket at all (and refuses --wan-bind).
    if !extra.contains(&"--relay-only") {
        args.extend_from_slice(&["--wan-bind", "127.0.0.1:0"]);
    }
    args.extend_from_slice(extra);
    let p = Proc::spawn(dir, &args);
    p.wait("started", |v| v["event"] == "started");
    p
}

/// `/ticket` until the endpoint has its relay (a few hundred ms).
fn ticket(p: &mut Proc) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        p.send("/ticket");
        let v = p.wait("ticket or error", |v| {
            v["event"] == "ticket" || v["event"] == "error"
        });
        if v["event"] == "ticket" {
            return v["ticket"].as_str().expect("a string").to_owned();
        }
        let text = v["text"].as_str().unwrap_or_default();
        assert!(text.contains("not reachable beyond the LAN yet"), "{v}");
        assert!(Instant::now() < deadline, "no ticket: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn path_to(p: &mut Proc, id: &str) -> Option<String> {
    p.send("/peers");
    let v = p.wait("peers", |v| v["event"] == "peers");
    v["peers"]
        .as_array()?
        .iter()
        .find(|x| x["identity"] == id)
        .and_then(|x| x["path"].as_str().map(str::to_owned))
}

fn exchange(a: &mut Proc, b: &mut Proc, a_nick: &str, b_nick: &str, tag: &str) {
    let to_b = format!("{tag}: from {a_nick}");
    let to_a = format!("{tag}: from {b_nick}");
    a.send(&format!("/msg {b_nick} {to_b}"));
    b.send(&format!("/msg {a_nick} {to_a}"));
    b.wait_secs(30, &to_b, |v| {
        v["event"] == "message_received" && v["message"]["text"] == to_b.as_str()
    });
    a.wait_secs(30, &to_a, |v| {
        v["event"] == "message_received" && v["message"]["text"] == to_a.as_str()
    });
}

#[test]
fn a_ticket_links_two_nodes_and_they_find_each_other_after_a_restart() {
    let relay = relay("127.0.0.1:0");
    let (_da, da) = data_dir();
    let (_db, db) = data_dir();
    let mut a = wan_node(&da, "alice", &relay.url, &[]);
    let mut b = wan_node(&db, "bob", &relay.url, &[]);
    let t = ticket(&mut a);
    assert!(t.starts_with("natter"), "{t}");
    b.send(&format!("/connect {t}"));
    let up = b.wait("peer_connected", |v| v["event"] == "peer_connected");
    let ia = up["peer"]["identity"].as_str().unwrap().to_owned();
    let up = a.wait("peer_connected", |v| v["event"] == "peer_connected");
    let ib = up["peer"]["identity"].as_str().unwrap().to_owned();
    assert_eq!(up["direction"], "inbound");
    exchange(&mut a, &mut b, "alice", "bob", "first");
    // On one host iroh finds the direct path at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while path_to(&mut b, &ia).as_deref() != Some("direct") {
        assert!(Instant::now() < deadline, "no direct path");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(path_to(&mut a, &ib).as_deref(), Some("direct"));

    // Bob is killed and comes back: it dials alice from its saved
    // contacts, and alice takes the new link over the one that lingers.
    b.kill();
    let mut b = wan_node(&db, "bob", &relay.url, &[]);
    b.wait_secs(30, "peer_connected after restart", |v| {
        v["event"] == "peer_connected" && v["peer"]["identity"] == ia.as_str()
    });
    exchange(&mut a, &mut b, "alice", "bob", "after bob's restart");
    // Alice is killed and comes back: bob finds her the same way.
    a.kill();
    let mut a = wan_node(&da, "alice", &relay.url, &[]);
    a.wait_secs(30, "peer_connected after restart", |v| {
        v["event"] == "peer_connected" && v["peer"]["identity"] == ib.as_str()
    });
    exchange(&mut a, &mut b, "alice", "bob", "after alice's restart");
    assert!(a.quit());
    assert!(b.quit());
}

#[test]
fn relay_only_links_go_through_the_relay_and_tickets_hold_no_address() {
    let relay = relay("127.0.0.1:0");
    let (_da, da) = data_dir();
    let (_db, db) = data_dir();
    let mut a = wan_node(&da, "alice", &relay.url, &["--relay-only"]);
    let mut b = wan_node(&db, "bob", &relay.url, &["--relay-only"]);
    let t = ticket(&mut a);
    let decoded = natter_core::wire::Ticket::decode(&t).expect("a valid ticket");
    assert!(decoded.reach.addrs.is_empty(), "{decoded:?}");
    assert!(decoded.reach.relay.is_some());
    b.send(&format!("/connect {t}"));
    let up = b.wait("peer_connected", |v| v["event"] == "peer_connected");
    let ia = up["peer"]["identity"].as_str().unwrap().to_owned();
    // Alice's side completes a relay round trip later than Bob's: `/msg
    // bob` before then would name nobody.
    a.wait("peer_connected", |v| v["event"] == "peer_connected");
    exchange(&mut a, &mut b, "alice", "bob", "relayed");
    assert_eq!(path_to(&mut b, &ia).as_deref(), Some("relayed"));
}

#[test]
fn bad_tickets_and_wan_off_get_clear_errors() {
    let (_d, d) = data_dir();
    let mut p = Proc::spawn(&d, &["--no-discovery", "--listen", "127.0.0.1:0"]);
    p.wait("started", |v| v["event"] == "started");
    let err = |p: &mut Proc, line: &str| -> String {
        p.send(line);
        let v = p.wait(line, |v| v["event"] == "error");
        v["text"].as_str().unwrap_or_default().to_owned()
    };
    assert!(err(&mut p, "/connect natter0189").contains("base32"));
    assert!(err(&mut p, "/connect natteraaaaaaaaaaaaaaaa").contains("checksum"));
    let long = format!("/connect natter{}", "a".repeat(2000));
    assert!(err(&mut p, &long).contains("at most 1024"));
    // A well-formed ticket, but this node has --wan off.
    let id = natter_core::identity::LocalIdentity::generate().unwrap();
    let t = natter_core::wire::Ticket {
        identity: id.identity_key(),
        reach: natter_core::wire::Reach::new(Some("http://127.0.0.1:9".into()), []),
    };
    let e = err(&mut p, &format!("/connect {}", t.encode()));
    assert!(e.contains("--wan"), "{e}");
    assert!(err(&mut p, "/ticket").contains("--wan"));
    // What the command line refuses, with the reason on stderr.
    let refused = |args: &[&std::ffi::OsStr]| -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_natter"))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let os = std::ffi::OsStr::new;
    // --relay-only binds no UDP socket, so a --wan-bind beside it is refused.
    let e = refused(&["--wan", "--relay-only", "--wan-bind", "127.0.0.1:0", "id"].map(os));
    assert!(e.contains("cannot be used with"), "{e}");
    // A relay's allow list with a typo is refused, naming the line.
    let list = d.join("allow.txt");
    std::fs::write(&list, "# the team\nABCD-EFGH\n").unwrap();
    let serve = ["relay", "--listen", "127.0.0.1:0"].map(os);
    let e = refused(&[&serve[..], &[os("--allow"), list.as_os_str()]].concat());
    assert!(e.contains("line 2 of the allow list"), "{e}");
    let e = refused(&[&serve[..], &["--client-rate", "9"].map(os)].concat());
    assert!(e.contains("at least 1K"), "{e}");
    // /wan on is saved for the next start, and says so.
    p.send("/wan on");
    let v = p.wait("wan", |v| v["event"] == "wan");
    assert_eq!(
        (v["active"].clone(), v["saved"].clone()),
        (false.into(), true.into())
    );
    assert!(p.quit());
    // The setting turns it on at the next start; --no-wan keeps it off.
    let relay = relay("127.0.0.1:0");
    let mut p = Proc::spawn(
        &d,
        &[
            "--no-discovery",
            "--listen",
            "127.0.0.1:0",
            "--relay",
            &relay.url,
            "--wan-bind",
            "127.0.0.1:0",
        ],
    );
    p.wait("started", |v| v["event"] == "started");
    p.send("/wan");
    let v = p.wait("wan", |v| v["event"] == "wan");
    assert_eq!(v["active"], true);
    assert!(ticket(&mut p).starts_with("natter"));
    assert!(p.quit());
    let mut p = Proc::spawn(
        &d,
        &["--no-discovery", "--listen", "127.0.0.1:0", "--no-wan"],
    );
    p.wait("started", |v| v["event"] == "started");
    assert!(err(&mut p, "/ticket").contains("--wan"));
    assert!(p.quit());
}
