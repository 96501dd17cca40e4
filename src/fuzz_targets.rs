//! Bodies of the fuzz targets, shared by the cargo-fuzz binaries in fuzz/
//! and by tests/fuzz_corpus.rs, which replays their corpora on stable.
//! The core's targets live in `natter_core::testkit::fuzz`; the two here
//! cover what only the application has: the key file and the command line.
//!
//! Adding a target: a function (here or in the core) plus its line in
//! [`TARGETS`], `fuzz/fuzz_targets/NAME.rs` plus its `[[bin]]` in
//! fuzz/Cargo.toml, and seeds in the generator of tests/fuzz_corpus.rs.

use crate::keyfile;
use natter_core::identity::LocalIdentity;
pub use natter_core::testkit::fuzz::*;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// Every target, the core's and the application's.
pub fn targets() -> Vec<Target> {
    let mut all = natter_core::testkit::fuzz::CORE_TARGETS.to_vec();
    all.push(("keyfile", keyfile));
    all.push(("cli_parse", cli_parse));
    all
}

pub fn keyfile(data: &[u8]) {
    let round_trip = |file: &[u8]| {
        if let Ok(id) = keyfile::decode(file) {
            assert_eq!(&keyfile::encode(&id)[..], file);
        }
    };
    round_trip(data);
    // Mutations rarely keep the checksum right; fix it so the fields behind it get fuzzed.
    if let Some(body_len) = data.len().checked_sub(8) {
        let mut fixed = data[..body_len].to_vec();
        fixed.extend_from_slice(&Sha256::digest(&fixed)[..8]);
        round_trip(&fixed);
    }
}

/// Input: one line of user input (invalid UTF-8 replaced). Parsing never
/// panics and what it accepts is well formed; sanitising leaves nothing a
/// terminal would act on; naming a peer never panics.
/// A room as the parser hands it on: `#name` or `+name`, a valid name.
fn label_ok(l: &str) -> bool {
    if let Some(open) = l.strip_prefix('#') {
        return natter_core::wire::is_room_name(open);
    }
    let Some(private) = l.strip_prefix('+') else {
        return false;
    };
    // `+name`, or `+name#ABCD-EFGH…`: the founder's fingerprint (or a
    // prefix of it) in groups of four.
    let (name, founder) = match private.split_once('#') {
        Some((n, f)) => (n, Some(f)),
        None => (private, None),
    };
    use natter_core::identity::Fingerprint;
    natter_core::wire::is_room_name(name)
        && founder.is_none_or(|f| {
            Fingerprint::typed(f).is_some_and(|n| n.len() >= 4 && Fingerprint::group_typed(&n) == f)
        })
}

pub fn cli_parse(data: &[u8]) {
    use crate::ui::command::{parse, Command, MAX_HISTORY};
    use crate::ui::sanitize::{sanitize_nick, sanitize_text, MAX_NICK_BYTES};
    let line = String::from_utf8_lossy(data);
    match parse(&line) {
        Ok(None) => assert!(line.trim().is_empty()),
        Ok(Some(cmd)) => match cmd {
            Command::Say(text) => assert!(!text.trim().is_empty()),
            Command::Msg { peer, text } => {
                assert!(!peer.is_empty() && !peer.contains(char::is_whitespace));
                assert!(!text.trim().is_empty());
            }
            Command::Trust { peer, fingerprint } => {
                assert!(!peer.is_empty() && !peer.contains(char::is_whitespace));
                if let Some(fp) = fingerprint {
                    assert!(!fp.is_empty() && !fp.contains([' ', '-']));
                }
            }
            Command::Untrust { peer } | Command::Verify { peer } => {
                assert!(!peer.is_empty() && !peer.contains(char::is_whitespace));
            }
            Command::History { peer, room, limit } => {
                assert!(peer.is_none_or(|p| !p.is_empty() && !p.starts_with('#')));
                assert!(room.is_none_or(|r| label_ok(&r)));
                assert!(limit.is_none_or(|n| (1..=MAX_HISTORY).contains(&n)));
            }
            Command::Search { room, query } => {
                assert!(room.is_none_or(|r| label_ok(&r)));
                assert!(!query.is_empty() && query == query.trim());
            }
            Command::Join { room } => assert!(room.starts_with('#') && label_ok(&room)),
            Command::Room { room } => assert!(label_ok(&room)),
            Command::Create { room } => assert!(room.starts_with('+') && label_ok(&room)),
            Command::Leave { room } | Command::Who { room } => {
                assert!(room.is_none_or(|r| label_ok(&r)));
            }
            Command::Invite { peer, room } | Command::Kick { peer, room } => {
                assert!(!peer.is_empty() && !peer.contains(char::is_whitespace));
                assert!(room.is_none_or(|r| r.starts_with('+') && label_ok(&r)));
            }
            Command::Info { id } => {
                assert!((4..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit()));
            }
            Command::Rooms => {}
            Command::Nick { name } => {
                assert!(!name.is_empty() && name.len() <= MAX_NICK_BYTES);
                assert_eq!(sanitize_nick(&name), name);
            }
            Command::Connect { addr } => {
                assert_ne!(addr.port, 0);
                assert!(!addr.host.is_empty());
            }
            Command::ConnectTicket { ticket } => {
                let text = ticket.encode();
                assert_eq!(
                    natter_core::wire::Ticket::decode(&text).as_ref(),
                    Ok(&ticket)
                );
            }
            Command::Ticket | Command::Wan { .. } => {}
            Command::Send { peer, path } => {
                assert!(!peer.is_empty() && !peer.contains(char::is_whitespace));
                assert!(!path.is_empty() && path == path.trim());
            }
            Command::Accept { id } | Command::Reject { id } | Command::Cancel { id } => {
                assert!(id.len() >= 4 && id.bytes().all(|b| b.is_ascii_hexdigit()));
            }
            Command::Peers | Command::Files | Command::Help { .. } | Command::Quit => {}
        },
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains('\u{1b}'), "{text:?}");
            assert!(text.lines().count() <= 2, "{text:?}");
        }
    }
    assert_inert(&sanitize_text(&line), true);
    let nick = sanitize_nick(&line);
    assert_inert(&nick, false);
    assert!(!nick.is_empty() && nick.len() <= MAX_NICK_BYTES);
    assert_eq!(sanitize_nick(&nick), nick);

    let candidates = candidates();
    if let Ok(key) = natter_core::trust::resolve(candidates, &line) {
        assert!(candidates.iter().any(|c| c.identity == key));
    }
}

/// No escape, C0 (but `\n` in text), DEL, C1 or bidi control.
fn assert_inert(s: &str, text: bool) {
    for c in s.chars() {
        let bad = match c {
            '\n' => !text,
            '\0'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
            _ => false,
        };
        assert!(!bad, "{c:?} left in {s:?}");
    }
}

/// Peers a typed name may refer to: distinct, shared and look-alike nicknames.
fn candidates() -> &'static [natter_core::trust::Candidate] {
    static C: OnceLock<Vec<natter_core::trust::Candidate>> = OnceLock::new();
    C.get_or_init(|| {
        let key = |n: u8| {
            LocalIdentity::from_secrets([n; 32], [n; 32])
                .expect("fixed secrets are valid")
                .identity_key()
        };
        ["alice", "bob", "Bob", "b0b", "", "caf\u{e9}"]
            .iter()
            .zip(1..)
            .map(|(nick, n)| natter_core::trust::Candidate {
                identity: key(n),
                nickname: (*nick).into(),
            })
            .collect()
    })
}
