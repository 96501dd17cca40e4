//! Nicknames as natter compares and keeps them: the nickname clamp, the
//! characters that draw nothing, and the look-alike skeleton that trust
//! uses to spot a stranger wearing a verified contact's name.
//!
//! This is a bottom layer: it knows nothing of peers or terminals. The
//! user interface adds what only a terminal needs (control pictures, bidi
//! isolation) on top.

pub use crate::wire::limits::MAX_NICK_LEN as MAX_NICK_BYTES;

/// Used for a nickname that is empty after clamping.
pub const ANONYMOUS: &str = "anonymous";

/// Longest run of combining marks kept on one base character.
pub const MAX_COMBINING_RUN: usize = 4;

/// A nickname as natter keeps and shows it: control and invisible
/// characters removed, combining runs capped at [`MAX_COMBINING_RUN`],
/// whitespace runs collapsed to one space and trimmed, cut to
/// [`MAX_NICK_BYTES`] on a character boundary; empty becomes [`ANONYMOUS`].
pub fn clamp_nick(s: &str) -> String {
    let mut line = String::with_capacity(s.len());
    let mut combining_run = 0;
    for c in s.chars() {
        if is_combining_mark(c) {
            combining_run += 1;
            if combining_run > MAX_COMBINING_RUN {
                continue;
            }
        } else {
            combining_run = 0;
        }
        if c.is_control() {
            line.push(' ');
        } else if !is_invisible(c) {
            line.push(c);
        }
    }
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
pub fn is_combining_mark(c: char) -> bool {
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
/// The nickname is clamped, combining marks are dropped, letters are
/// lower-cased, common homoglyphs are folded to one Latin letter (Cyrillic
/// and Greek look-alikes, full-width forms, `0`→`o`, `1`/`I`/`|`→`l`,
/// `5`→`s`, …) and `rn`→`m`, `vv`→`w`. The skeleton errs towards
/// collisions: a false match only costs a suffix on screen.
pub fn skeleton(nick: &str) -> String {
    let clean = clamp_nick(nick);
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
    skeleton(a) == skeleton(b)
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
