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

/// Longest nickname, in bytes of UTF-8, after sanitising.
pub const MAX_NICK_BYTES: usize = 32;

/// Shown for a nickname that is empty after sanitising.
pub const ANONYMOUS: &str = "anonymous";

/// Longest run of combining marks kept on one base character.
pub const MAX_COMBINING_RUN: usize = 4;

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
    let line = clean(s, Breaks::Space);
    let mut out = String::with_capacity(line.len().min(MAX_NICK_BYTES));
    for word in line.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() >= MAX_NICK_BYTES {
            break;
        }
    }
    let cut = truncate_to_boundary(&out, MAX_NICK_BYTES).trim_end();
    if cut.is_empty() {
        ANONYMOUS.to_owned()
    } else {
        cut.to_owned()
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
pub fn truncate_to_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
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

/// Bidi controls, zero-width characters and other format characters that
/// draw nothing, plus blank-looking fillers. Removed from all output.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        // bidi embedding/override, isolates, marks
        '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{061c}'
            // zero-width space/non-joiner/joiner, word joiner, BOM
            | '\u{200b}'..='\u{200d}'
            | '\u{2060}'
            | '\u{feff}'
            // soft hyphen, combining grapheme joiner, Mongolian vowel separator
            | '\u{00ad}'
            | '\u{034f}'
            | '\u{180e}'
            // invisible operators, deprecated format characters
            | '\u{2061}'..='\u{2064}'
            | '\u{206a}'..='\u{206f}'
            // interlinear annotation
            | '\u{fff9}'..='\u{fffb}'
            // Hangul fillers (render blank)
            | '\u{115f}'
            | '\u{1160}'
            | '\u{3164}'
            | '\u{ffa0}'
            // musical symbol format controls
            | '\u{1d173}'..='\u{1d17a}'
            // tag characters (invisible "ASCII smuggling")
            | '\u{e0001}'
            | '\u{e0020}'..='\u{e007f}'
            // variation selectors supplement
            | '\u{e0100}'..='\u{e01ef}'
    )
}

/// Combining marks from the generic combining blocks (the ones "Zalgo"
/// text stacks).
fn is_combining_mark(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036f}'
            | '\u{1ab0}'..='\u{1aff}'
            | '\u{1dc0}'..='\u{1dff}'
            | '\u{20d0}'..='\u{20ff}'
            | '\u{fe20}'..='\u{fe2f}'
    )
}

/// A skeleton of a nickname for "looks alike" comparison: two nicknames
/// with the same skeleton could be mistaken for each other, so both are
/// shown with a fingerprint suffix.
///
/// The nickname is sanitised, combining marks are dropped, letters are
/// lower-cased, common homoglyphs are folded to one Latin letter (Cyrillic
/// and Greek look-alikes, full-width forms, `0`→`o`, `1`/`I`/`|`→`l`,
/// `5`→`s`, …) and `rn`→`m`, `vv`→`w`. The skeleton errs towards
/// collisions: a false match only costs a suffix on screen.
pub fn confusable_skeleton(nick: &str) -> String {
    let clean = sanitize_nick(nick);
    let mut out = String::with_capacity(clean.len());
    for c in clean.chars() {
        let c = fullwidth_to_ascii(c);
        if is_combining_mark(c) {
            continue;
        }
        if let Some(folded) = fold(c) {
            out.push(folded);
            continue;
        }
        for lower in c.to_lowercase() {
            out.push(fold(lower).unwrap_or(lower));
        }
    }
    out.replace("rn", "m").replace("vv", "w")
}

/// Whether two nicknames could be mistaken for each other.
pub fn looks_alike(a: &str, b: &str) -> bool {
    confusable_skeleton(a) == confusable_skeleton(b)
}

fn fullwidth_to_ascii(c: char) -> char {
    match c {
        '\u{ff01}'..='\u{ff5e}' => char::from_u32(u32::from(c) - 0xfee0).unwrap_or(c),
        _ => c,
    }
}

/// Homoglyphs folded to the Latin letter they look like. Upper-case forms
/// are listed where their lower-case form looks like something else
/// (Greek `Η` looks like `H`, but `η` like `n`).
fn fold(c: char) -> Option<char> {
    Some(match c {
        // digits and symbols
        '0' => 'o',
        '1' | '|' | 'I' | 'ı' | 'ℓ' | 'ⅼ' | 'Ι' | 'І' | 'Ӏ' | 'ӏ' => 'l',
        '5' => 's',
        '8' => 'b',
        'ⅰ' | 'і' | 'ι' => 'i',
        // Cyrillic
        'А' | 'а' => 'a',
        'В' | 'в' => 'b',
        'С' | 'с' => 'c',
        'ԁ' => 'd',
        'Е' | 'е' => 'e',
        'Н' | 'н' | 'һ' => 'h',
        'Ј' | 'ј' => 'j',
        'К' | 'к' => 'k',
        'М' | 'м' => 'm',
        'О' | 'о' => 'o',
        'Р' | 'р' => 'p',
        'ԛ' => 'q',
        'Ѕ' | 'ѕ' => 's',
        'Т' | 'т' => 't',
        'ԝ' => 'w',
        'Х' | 'х' => 'x',
        'У' | 'у' => 'y',
        // Greek
        'Α' | 'α' => 'a',
        'Β' | 'β' => 'b',
        'ϲ' => 'c',
        'Ε' | 'ε' => 'e',
        'Η' => 'h',
        'ϳ' => 'j',
        'Κ' | 'κ' => 'k',
        'Μ' => 'm',
        'Ν' | 'η' => 'n',
        'Ο' | 'ο' | 'σ' => 'o',
        'Ρ' | 'ρ' => 'p',
        'Τ' | 'τ' => 't',
        'υ' | 'μ' => 'u',
        'ν' => 'v',
        'ω' => 'w',
        'Χ' | 'χ' => 'x',
        'Υ' | 'γ' => 'y',
        'Ζ' => 'z',
        // Latin look-alikes
        'ɑ' => 'a',
        'ɡ' => 'g',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::testutil::{assert_inert, random_line, Rng};

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
