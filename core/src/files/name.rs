//! The name a received file is saved under. The offered name is untrusted:
//! it may hold path separators, `..`, control or bidi characters, a
//! reserved device name or a thousand bytes. [`safe_file_name`] makes a
//! plain name of one path component from it; [`free_name`] picks
//! `name (1).ext`, `name (2).ext`, … so nothing is ever overwritten.

use crate::names::{is_combining_mark, is_invisible, truncate_to_boundary};
use unicode_normalization::UnicodeNormalization;

/// Longest name made, in bytes (what common file systems allow).
pub const MAX_SAVED_NAME_LEN: usize = 200;

/// Names Windows reserves for devices, with any extension.
const RESERVED: [&str; 22] = [
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// A name of one path component, printable, not hidden, not reserved, at
/// most [`MAX_SAVED_NAME_LEN`] bytes with its extension kept; `file` when
/// nothing usable is left.
pub fn safe_file_name(offered: &str) -> String {
    let mut name = String::with_capacity(offered.len());
    let mut marks = 0;
    for c in offered.nfc() {
        let c = match c {
            '/' | '\\' | ':' | '<' | '>' | '"' | '|' | '?' | '*' => '_',
            c if c.is_control() => continue,
            // Before the invisibles, which include every space but U+0020.
            c if c.is_whitespace() => ' ',
            c if is_invisible(c) => continue,
            c => c,
        };
        // A few marks make real names; hundreds make a smear. Only kept
        // characters end a run.
        if is_combining_mark(c) {
            marks += 1;
            if marks > 4 {
                continue;
            }
        } else {
            marks = 0;
        }
        name.push(c);
    }
    // No leading dots (hidden files, `.` and `..`), no trailing dots or
    // spaces (Windows drops them), no run of spaces at either end.
    let trimmed = name.trim_matches(|c: char| c == ' ' || c == '.');
    let mut name = if trimmed.is_empty() {
        "file".to_owned()
    } else {
        trimmed.to_owned()
    };
    let stem = name
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end()
        .to_lowercase();
    if RESERVED.contains(&stem.as_str()) {
        name.insert(0, '_');
    }
    clamp_keeping_extension(&name, MAX_SAVED_NAME_LEN)
}

/// `name` cut to `max` bytes at a character boundary, keeping a short
/// extension.
fn clamp_keeping_extension(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, ext) = split_extension(name);
    if !ext.is_empty() && ext.len() + 1 < max / 2 {
        let stem = truncate_to_boundary(stem, max - ext.len() - 1);
        return format!("{}.{ext}", stem.trim_end_matches([' ', '.']));
    }
    truncate_to_boundary(name, max)
        .trim_end_matches([' ', '.'])
        .to_owned()
}

/// `("archive.tar", "gz")` for `archive.tar.gz`; no extension for `.x` or
/// `x`.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 && i + 1 < name.len() => (&name[..i], &name[i + 1..]),
        _ => (name, ""),
    }
}

/// `base` if it is not `taken`, else the first free `stem (n).ext`.
pub fn free_name(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_owned();
    }
    let (stem, ext) = split_extension(base);
    (1u64..)
        .map(|n| {
            if ext.is_empty() {
                format!("{stem} ({n})")
            } else {
                format!("{stem} ({n}).{ext}")
            }
        })
        .find(|candidate| !taken(candidate))
        .unwrap_or_else(|| base.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_name_without_an_extension_is_cut_to_the_limit_and_ends_in_no_dot() {
        for len in [201, 255, 1000] {
            let name = safe_file_name(&"x".repeat(len));
            assert_eq!(name, "x".repeat(MAX_SAVED_NAME_LEN), "{len}");
        }
        let name = safe_file_name(&format!("{}.iso", "y".repeat(300)));
        assert_eq!(name.len(), MAX_SAVED_NAME_LEN);
        assert!(name.ends_with("y.iso"), "{name}");
    }

    #[test]
    fn separators_and_traversal_stay_inside_one_component() {
        assert_eq!(safe_file_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_file_name("/etc/shadow"), "_etc_shadow");
        assert_eq!(safe_file_name("..\\..\\boot.ini"), "_.._boot.ini");
        assert_eq!(safe_file_name("C:\\x"), "C__x");
        assert_eq!(safe_file_name(".."), "file");
        assert_eq!(safe_file_name("."), "file");
        assert_eq!(safe_file_name("...."), "file");
        assert_eq!(safe_file_name(".bashrc"), "bashrc");
        for hostile in [
            "../x",
            "a/../../b",
            "/",
            "\\\\server\\share",
            "x/..",
            "~/.ssh/id",
        ] {
            let s = safe_file_name(hostile);
            assert!(!s.contains('/') && !s.contains('\\'), "{hostile} → {s}");
            assert!(
                s != ".." && s != "." && !s.starts_with('.'),
                "{hostile} → {s}"
            );
        }
    }

    #[test]
    fn controls_bidi_and_invisible_characters_are_removed() {
        assert_eq!(safe_file_name("a\u{1b}[31mb\n\r\t.txt"), "a[31mb.txt");
        // "exe.txt" shown reversed by a right-to-left override.
        assert_eq!(safe_file_name("report\u{202e}txt.exe"), "reporttxt.exe");
        assert_eq!(safe_file_name("in\u{200b}voice\u{2066}.pdf"), "invoice.pdf");
        assert_eq!(safe_file_name("\u{0}\u{7f}\u{85}"), "file");
        let marks = format!("a{}", "\u{0301}".repeat(100));
        assert!(safe_file_name(&marks).chars().count() <= 5);
        // A removed character between marks does not start a new run.
        let split = format!("a{}\u{200b}{}", "\u{0301}".repeat(4), "\u{0301}".repeat(4));
        assert_eq!(safe_file_name(&split).chars().count(), 5);
        // Other spaces become plain ones.
        assert_eq!(safe_file_name("a\u{00a0}b\u{3000}c"), "a b c");
    }

    #[test]
    fn reserved_device_names_are_prefixed() {
        assert_eq!(safe_file_name("CON"), "_CON");
        assert_eq!(safe_file_name("nul.txt"), "_nul.txt");
        assert_eq!(safe_file_name("Com1 .log"), "_Com1 .log");
        assert_eq!(safe_file_name("console.txt"), "console.txt");
    }

    #[test]
    fn long_names_are_cut_keeping_the_extension() {
        let long = format!("{}.tar.gz", "é".repeat(300));
        let s = safe_file_name(&long);
        assert!(s.len() <= MAX_SAVED_NAME_LEN);
        assert!(s.ends_with(".gz"), "{s}");
        let s = safe_file_name(&"x".repeat(1000));
        assert_eq!(s.len(), MAX_SAVED_NAME_LEN);
        let dots = format!("{}.{}", "x".repeat(190), ". ".repeat(100));
        let s = safe_file_name(&dots);
        assert!(!s.ends_with('.') && !s.ends_with(' '), "{s:?}");
    }

    #[test]
    fn nothing_is_overwritten() {
        let taken = ["a.txt", "a (1).txt", "b"];
        let is_taken = |n: &str| taken.contains(&n);
        assert_eq!(free_name("a.txt", is_taken), "a (2).txt");
        assert_eq!(free_name("b", is_taken), "b (1)");
        assert_eq!(free_name("c.txt", is_taken), "c.txt");
    }
}
