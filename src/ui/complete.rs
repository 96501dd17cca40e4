//! Tab completion, pure. The rustyline `Completer` wraps [`complete`].
//!
//! Completes command names after a leading `/`, command names after
//! `/help`, and peer names in the peer position of `/msg`, `/send`,
//! `/trust`, `/untrust`, `/verify` and `/history`. Candidates have no
//! trailing space.

use super::command::{find_command, COMMANDS};
use super::sanitize::sanitize_line;

/// Commands whose first argument names a peer.
const PEER_COMMANDS: &[&str] = &["msg", "send", "trust", "untrust", "verify", "history"];

/// Completion for `line` with the cursor at byte `pos` (rustyline style):
/// returns the byte offset where the word being completed starts and the
/// candidates that may replace `line[start..pos]`.
///
/// `peer_names` are nicknames and/or fingerprint prefixes; they are matched
/// case-insensitively. Names that contain whitespace, control, bidi or
/// invisible characters are never offered (they could not be typed back or
/// would inject into the line editor's display).
pub fn complete(line: &str, pos: usize, peer_names: &[String]) -> (usize, Vec<String>) {
    let mut pos = pos.min(line.len());
    while !line.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &line[..pos];
    let Some(body) = before.strip_prefix('/') else {
        return (pos, Vec::new());
    };
    if body.starts_with('/') {
        return (pos, Vec::new()); // `//text` is text
    }
    let Some(name_end) = body.find(char::is_whitespace) else {
        return (0, command_candidates(body, "/"));
    };
    let Some(spec) = find_command(&body[..name_end]) else {
        return (pos, Vec::new());
    };
    let word_start = before
        .rfind(char::is_whitespace)
        .map_or(0, |i| i + char_len_at(before, i));
    let word = &before[word_start..];
    let completed_args = before[1 + name_end..word_start].split_whitespace().count();
    if completed_args != 0 {
        return (pos, Vec::new());
    }
    let candidates = if PEER_COMMANDS.contains(&spec.name) {
        peer_candidates(word, peer_names)
    } else if spec.name == "help" {
        match word.strip_prefix('/') {
            Some(rest) => command_candidates(rest, "/"),
            None => command_candidates(word, ""),
        }
    } else {
        Vec::new()
    };
    (word_start, candidates)
}

fn char_len_at(s: &str, i: usize) -> usize {
    s[i..].chars().next().map_or(1, char::len_utf8)
}

/// Command names and aliases starting with `prefix` (case-insensitive), in
/// table order, each with `lead` in front.
fn command_candidates(prefix: &str, lead: &str) -> Vec<String> {
    let mut out = Vec::new();
    for spec in COMMANDS {
        for name in std::iter::once(&spec.name).chain(spec.aliases) {
            if starts_with_ignore_case(name, prefix) {
                out.push(format!("{lead}{name}"));
            }
        }
    }
    out
}

fn peer_candidates(prefix: &str, peer_names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = peer_names
        .iter()
        .filter(|name| is_offerable(name) && starts_with_ignore_case(name, prefix))
        .cloned()
        .collect();
    out.sort_by(|a, b| {
        a.to_lowercase()
            .cmp(&b.to_lowercase())
            .then_with(|| a.cmp(b))
    });
    out.dedup();
    out
}

fn is_offerable(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_whitespace) && sanitize_line(name) == name
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    let mut s = s.chars().flat_map(char::to_lowercase);
    prefix
        .chars()
        .flat_map(char::to_lowercase)
        .all(|p| s.next() == Some(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::testutil::{random_line, Rng};

    fn peers() -> Vec<String> {
        [
            "alice",
            "Albert",
            "bob",
            "K3QF7XNA",
            "alice",
            "evil\u{1b}[2J",
            "two words",
            "zoë",
            "\u{202e}alice",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    fn c(line: &str) -> (usize, Vec<String>) {
        complete(line, line.len(), &peers())
    }

    #[test]
    fn command_names() {
        assert_eq!(
            c("/"),
            (
                0,
                COMMANDS
                    .iter()
                    .flat_map(|s| std::iter::once(&s.name).chain(s.aliases))
                    .map(|n| format!("/{n}"))
                    .collect()
            )
        );
        assert_eq!(c("/m"), (0, vec!["/msg".to_owned()]));
        assert_eq!(c("/tr"), (0, vec!["/trust".to_owned()]));
        assert_eq!(c("/ti"), (0, vec!["/ticket".to_owned()]));
        assert_eq!(c("/HI"), (0, vec!["/history".to_owned()]));
        assert_eq!(c("/e"), (0, vec!["/exit".to_owned()]));
        assert_eq!(c("/xyz"), (0, vec![]));
        // cursor inside the command word: only what is before it counts
        assert_eq!(
            complete("/ms bob", 3, &peers()),
            (0, vec!["/msg".to_owned()])
        );
    }

    #[test]
    fn peer_names_in_peer_position() {
        assert_eq!(
            c("/msg al"),
            (5, vec!["Albert".to_owned(), "alice".to_owned()])
        );
        assert_eq!(
            c("/msg AL"),
            (5, vec!["Albert".to_owned(), "alice".to_owned()])
        );
        assert_eq!(c("/msg ali"), (5, vec!["alice".to_owned()]));
        assert_eq!(c("/send ali"), (6, vec!["alice".to_owned()]));
        assert_eq!(c("/msg k3"), (5, vec!["K3QF7XNA".to_owned()]));
        assert_eq!(c("/trust   b"), (9, vec!["bob".to_owned()]));
        assert_eq!(c("/untrust z"), (9, vec!["zoë".to_owned()]));
        assert_eq!(c("/verify bo"), (8, vec!["bob".to_owned()]));
        assert_eq!(c("/history b"), (9, vec!["bob".to_owned()]));
        assert_eq!(
            c("/msg "),
            (
                5,
                vec![
                    "Albert".into(),
                    "alice".into(),
                    "bob".into(),
                    "K3QF7XNA".into(),
                    "zoë".into()
                ]
            )
        );
        // hostile or untypeable names are never offered
        let (_, all) = c("/msg ");
        assert!(all
            .iter()
            .all(|n| !n.contains('\u{1b}') && !n.contains(' ') && !n.contains('\u{202e}')));
    }

    #[test]
    fn nothing_outside_peer_position() {
        assert_eq!(c("/msg bob al").1, Vec::<String>::new());
        assert_eq!(c("/msg bob hi al").1, Vec::<String>::new());
        assert_eq!(c("/nick al").1, Vec::<String>::new());
        assert_eq!(c("/search al").1, Vec::<String>::new());
        assert_eq!(c("/connect al").1, Vec::<String>::new());
        assert_eq!(c("hello al").1, Vec::<String>::new());
        assert_eq!(c("//msg al").1, Vec::<String>::new());
        assert_eq!(c("/nope al").1, Vec::<String>::new());
        assert_eq!(c("").1, Vec::<String>::new());
    }

    #[test]
    fn help_topics() {
        assert_eq!(c("/help ve"), (6, vec!["verify".to_owned()]));
        assert_eq!(c("/help /ve"), (6, vec!["/verify".to_owned()]));
        assert_eq!(c("/help ex"), (6, vec!["exit".to_owned()]));
        assert_eq!(c("/help msg x").1, Vec::<String>::new());
    }

    #[test]
    fn odd_positions_do_not_panic() {
        let line = "/msg zoë";
        for pos in 0..=line.len() + 3 {
            let (start, _) = complete(line, pos, &peers());
            assert!(start <= line.len() && line.is_char_boundary(start));
        }
        // Unicode whitespace before the word.
        assert_eq!(c("/msg\u{3000}bo"), (7, vec!["bob".to_owned()]));
        let mut rng = Rng::new(99);
        for _ in 0..3000 {
            let s = random_line(&mut rng);
            let pos = rng.below(s.len() + 2);
            let (start, cands) = complete(&s, pos, &peers());
            assert!(
                start <= pos.min(s.len()) && s.is_char_boundary(start),
                "{s:?} {pos}"
            );
            assert!(cands.iter().all(|c| !c.contains('\u{1b}')));
        }
    }
}
