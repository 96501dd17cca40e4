//! Untrusted text to text that is safe to print on a terminal.
//!
//! Nicknames and message text arrive from the network. Printed as they are,
//! they could move the cursor, clear the screen, set the window title, write
//! the clipboard (OSC 52), reorder what is shown (bidi overrides) or hide
//! characters (zero-width). Everything here maps such characters to
//! harmless visible ones or removes them:
//!
//! * C0 controls (other than line breaks and tab) and DEL become the
//!   matching Unicode "control picture" (ESC → `␛`, NUL → `␀`, BEL → `␇`),
//!   so an escape sequence is shown as inert text such as `␛[2J`.
//! * C1 controls (U+0080–U+009F, including the one-byte CSI U+009B) become
//!   `�` (U+0085 NEXT LINE is a line break).
//! * Bidi controls, zero-width characters, and other invisible format
//!   characters (soft hyphen, tag characters, Hangul fillers, …) are removed.
//! * Runs of combining marks are capped, so "Zalgo" text cannot paint over
//!   the lines above and below.
//!
//! The result contains no character below U+0020 except `\n` (text only).

use natter_core::names::{self, is_combining_mark};
pub use natter_core::names::{
    is_invisible, looks_alike, skeleton as confusable_skeleton, truncate_to_boundary, ANONYMOUS,
    MAX_COMBINING_RUN, MAX_NICK_BYTES,
};

/// What to do with a line break.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Breaks {
    /// Keep as `\n` (message text).
    Keep,
    /// Turn into a space (single-line fields).
    Space,
}

/// Sanitises message text: printable characters and `\n` are kept, `\r\n`
/// and other line breaks become `\n`, a tab becomes a space, and every
/// control, bidi, zero-width or invisible format character is made visible
/// and inert or removed (see the module documentation). The caller indents
/// continuation lines.
pub fn sanitize_text(s: &str) -> String {
    clean(s, Breaks::Keep)
}

/// Sanitises a single-line field (an address, a link state, a fingerprint
/// from the network): like [`sanitize_text`] but line breaks become spaces.
pub fn sanitize_line(s: &str) -> String {
    clean(s, Breaks::Space)
}

/// Sanitises a nickname: like [`sanitize_line`], then whitespace runs are
/// collapsed to one space and trimmed, the result is cut to
/// [`MAX_NICK_BYTES`] bytes on a character boundary, and an empty result
/// becomes [`ANONYMOUS`].
pub fn sanitize_nick(s: &str) -> String {
    names::clamp_nick(&clean(s, Breaks::Space))
}

fn clean(s: &str, breaks: Breaks) -> String {
    let line_break = match breaks {
        Breaks::Keep => '\n',
        Breaks::Space => ' ',
    };
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    let mut combining_run = 0;
    while let Some(c) = chars.next() {
        if is_combining_mark(c) {
            combining_run += 1;
            if combining_run > MAX_COMBINING_RUN {
                continue;
            }
        } else {
            combining_run = 0;
        }
        match c {
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push(line_break);
                }
            }
            '\n' | '\u{85}' | '\u{2028}' | '\u{2029}' => out.push(line_break),
            '\t' => out.push(' '),
            '\0'..='\u{1f}' => out.push(control_picture(c)),
            '\u{7f}' => out.push('\u{2421}'),
            '\u{80}'..='\u{9f}' => out.push('\u{fffd}'),
            // Emoji presentation selectors are harmless in message text
            // (they pick the colour form of ❤); nicknames lose them.
            '\u{fe0e}' | '\u{fe0f}' if breaks == Breaks::Keep => out.push(c),
            // Other spaces (no-break, ideographic) stay spaces, not gaps.
            _ if c.is_whitespace() => out.push(' '),
            _ if is_invisible(c) => {}
            _ => out.push(c),
        }
    }
    out
}

/// U+2400 + c for a C0 control: `␀` … `␟`.
fn control_picture(c: char) -> char {
    char::from_u32(0x2400 + u32::from(c)).unwrap_or('\u{fffd}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::testutil::{assert_inert, random_line, Rng};

    #[test]
    fn ansi_and_osc_become_inert_visible_text() {
        assert_eq!(sanitize_text("a\u{1b}[2Jb"), "a␛[2Jb");
        assert_eq!(sanitize_text("\u{1b}]0;title\u{7}"), "␛]0;title␇");
        let clip = "\u{1b}]52;c;SGVsbG8=\u{7}";
        assert_eq!(sanitize_text(clip), "␛]52;c;SGVsbG8=␇");
        assert_eq!(
            sanitize_text("\u{1b}]52;c;SGVsbG8=\u{1b}\\"),
            "␛]52;c;SGVsbG8=␛\\"
        );
        assert_eq!(sanitize_text("x\u{9b}31mred"), "x\u{fffd}31mred");
        assert_eq!(sanitize_text("nul\0here\u{7f}"), "nul␀here␡");
        assert_eq!(sanitize_text("\u{8}\u{8}\u{8}xxx"), "␈␈␈xxx");
        for hostile in [
            "\u{1b}[2J",
            "\u{1b}]0;title\u{7}",
            "\u{9b}2J",
            "\u{90}dcs\u{9c}",
            "\u{1b}P1$q\u{1b}\\",
        ] {
            assert_inert(&sanitize_text(hostile), true);
            assert_inert(&sanitize_nick(hostile), false);
        }
    }

    #[test]
    fn line_breaks_and_tabs() {
        assert_eq!(sanitize_text("a\r\nb\rc\nd"), "a\nb\nc\nd");
        assert_eq!(sanitize_text("a\tb"), "a b");
        assert_eq!(sanitize_text("a\u{85}b\u{2028}c\u{2029}d"), "a\nb\nc\nd");
        assert_eq!(sanitize_line("a\r\nb\rc\nd\te"), "a b c d e");
    }

    #[test]
    fn bidi_and_zero_width_are_removed() {
        assert_eq!(sanitize_text("abc\u{202e}fed"), "abcfed");
        assert_eq!(
            sanitize_text("\u{2066}x\u{2069}\u{200e}\u{200f}\u{61c}"),
            "x"
        );
        assert_eq!(
            sanitize_text("al\u{200d}ice\u{200b}\u{200c}\u{2060}\u{feff}"),
            "alice"
        );
        assert_eq!(sanitize_text("soft\u{ad}hyphen"), "softhyphen");
        assert_eq!(sanitize_text("tag\u{e0041}\u{e0042}"), "tag");
        assert_eq!(sanitize_nick("\u{3164}"), ANONYMOUS);
    }

    #[test]
    fn ordinary_text_is_untouched() {
        for s in [
            "hello, world!",
            "zoë",
            "日本語",
            "🙂👍",
            "ünïcödé ✓",
            "x\u{301}",
            "❤\u{fe0f}",
            "a\nb",
        ] {
            assert_eq!(sanitize_text(s), s);
        }
    }

    #[test]
    fn combining_runs_are_capped() {
        let zalgo = format!("z{}", "\u{301}".repeat(100));
        assert_eq!(
            sanitize_text(&zalgo),
            format!("z{}", "\u{301}".repeat(MAX_COMBINING_RUN))
        );
        assert_eq!(sanitize_text("e\u{301}e\u{301}"), "e\u{301}e\u{301}");
    }

    #[test]
    fn nick_rules() {
        assert_eq!(sanitize_nick("  alice  "), "alice");
        assert_eq!(sanitize_nick("al \t\n  ice"), "al ice");
        assert_eq!(sanitize_nick("al\u{3000}\u{a0}ice"), "al ice");
        assert_eq!(sanitize_nick(""), ANONYMOUS);
        assert_eq!(sanitize_nick(" \u{200b}\u{202e} "), ANONYMOUS);
        assert_eq!(sanitize_nick("evil\u{1b}[31m"), "evil␛[31m");
        assert_eq!(sanitize_nick("x".repeat(40).as_str()), "x".repeat(32));
        // Multi-byte: 'é' is two bytes, '日' three: cut on a char boundary.
        assert_eq!(sanitize_nick(&"é".repeat(20)), "é".repeat(16));
        let jp = sanitize_nick(&"日".repeat(20));
        assert_eq!(jp, "日".repeat(10));
        assert_eq!(jp.len(), 30);
        let mixed = format!("a{}", "日".repeat(20));
        let cut = sanitize_nick(&mixed);
        assert!(
            cut.len() <= MAX_NICK_BYTES && cut.len() == 31,
            "{}",
            cut.len()
        );
        // Cutting does not leave a trailing space.
        let spaced = format!("{} b", "a".repeat(31));
        assert_eq!(sanitize_nick(&spaced), "a".repeat(31));
        // A very long hostile nickname stays bounded.
        let long = "\u{1b}]0;x\u{7}".repeat(100_000);
        let n = sanitize_nick(&long);
        assert!(n.len() <= MAX_NICK_BYTES);
        assert_inert(&n, false);
    }

    #[test]
    fn truncate_on_boundary() {
        assert_eq!(truncate_to_boundary("héllo", 2), "h");
        assert_eq!(truncate_to_boundary("héllo", 3), "hé");
        assert_eq!(truncate_to_boundary("hi", 10), "hi");
        assert_eq!(truncate_to_boundary("🙂", 3), "");
    }

    #[test]
    fn confusables_share_a_skeleton() {
        assert!(looks_alike("\u{430}lice", "alice")); // Cyrillic а
        assert!(looks_alike("Alice", "alice"));
        assert!(looks_alike("b\u{43e}b", "bob")); // Cyrillic о
        assert!(looks_alike(
            "\u{440}\u{430}\u{443}\u{440}\u{430}l",
            "paypal"
        )); // р а у
        assert!(looks_alike("\u{3bf}scar", "oscar")); // Greek ο
        assert!(looks_alike("b0b", "bob"));
        assert!(looks_alike("a1ice", "alice"));
        assert!(looks_alike("aIice", "alice")); // capital I
        assert!(looks_alike("modern", "rnodern"));
        assert!(looks_alike("ｂｏｂ", "bob")); // full-width
        assert!(looks_alike("a\u{200d}lice", "alice"));
        assert!(looks_alike("alice\u{301}", "alice"));
        assert!(looks_alike("ΗΑΝΚ", "hank")); // Greek capitals
        assert!(looks_alike("  alice ", "alice"));
        assert!(!looks_alike("alice", "bob"));
        assert!(!looks_alike("alice", "alicia"));
        assert!(!looks_alike("ann", "anna"));
    }

    #[test]
    fn random_input_is_always_inert() {
        let mut rng = Rng::new(42);
        for _ in 0..5000 {
            let s = random_line(&mut rng);
            assert_inert(&sanitize_text(&s), true);
            assert_inert(&sanitize_line(&s), false);
            let nick = sanitize_nick(&s);
            assert_inert(&nick, false);
            assert!(!nick.is_empty() && nick.len() <= MAX_NICK_BYTES);
            assert_eq!(nick, nick.trim());
            assert_eq!(
                sanitize_nick(&nick),
                nick,
                "sanitize_nick is idempotent on {s:?}"
            );
            let _ = confusable_skeleton(&s);
        }
    }
}
