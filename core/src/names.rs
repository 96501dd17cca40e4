//! Nicknames: how natter keeps and shows them ([`clamp_nick`]) and how it
//! tells whether two of them could be mistaken for each other
//! ([`skeleton`], [`looks_alike`]).
//!
//! A nickname arrives from the network and is chosen by whoever sent it.
//! An attacker who wants to pass for a verified contact "alice" will pick a
//! name that *renders* as "alice" but is a different string. This module
//! closes the ways to do that which Unicode offers:
//!
//! * compatibility forms (full-width `ａｌｉｃｅ`, mathematical `𝐚𝐥𝐢𝐜𝐞`,
//!   ligatures `ﬁ`): NFKC in [`clamp_nick`], NFKD in [`skeleton`];
//! * characters that draw nothing or a blank ([`is_invisible`]): every
//!   Default_Ignorable_Code_Point (variation selectors, zero-width and bidi
//!   controls, tag characters, Hangul fillers, …), every other format
//!   character, unassigned code points, every space other than U+0020 and
//!   blank glyphs such as U+2800 BRAILLE PATTERN BLANK;
//! * combining marks of any script (General_Category Mn, Mc, Me,
//!   [`is_combining_mark`]): capped at [`MAX_COMBINING_RUN`] per base
//!   character when shown, and ignored altogether when comparing;
//! * homoglyphs from other scripts (Cyrillic `а`, Greek `ο`, Armenian `օ`,
//!   `0`/`O`, `1`/`I`/`l`, `rn`/`m`, …): the UTS #39 confusable skeleton,
//!   with the data of the `unicode-security` crate (confusables.txt);
//! * case: the skeleton is lower-cased.
//!
//! Terminal safety (control pictures, line breaks in message text) is the
//! UI's job; this module only drops control characters from nicknames.
//!
//! No IO, no global state, no panics on any input. Unicode data: the
//! `unicode-normalization`, `unicode-properties` and `unicode-security`
//! crates (all Unicode 18.0 at the versions pinned in Cargo.toml).

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

/// Longest nickname, in bytes of UTF-8: the wire limit, defined once.
pub use crate::wire::limits::MAX_NICK_LEN as MAX_NICK_BYTES;

/// Longest run of combining marks kept on one base character.
pub const MAX_COMBINING_RUN: usize = 4;

/// Shown/used for a nickname empty after clamping.
pub const ANONYMOUS: &str = "anonymous";

/// Longest [`skeleton`], in bytes of UTF-8.
///
/// Every step of the skeleton maps one character of the clamped nickname
/// (at most [`MAX_NICK_BYTES`], already NFKC) to a string of its own, and
/// no character maps to more than 7 bytes per byte of its UTF-8 (the worst
/// are Hangul syllables such as U+AF66, 3 bytes, whose jamo have
/// multi-jamo prototypes: 21 bytes). So a skeleton is at most 7 × 32 = 224
/// bytes; the unit test `skeleton_is_bounded` checks this for every
/// character. The skeleton is cut at 8 × [`MAX_NICK_BYTES`] (256) on a
/// character boundary anyway, so the bound holds whatever a future Unicode
/// table does; cutting keeps the guarantee that matters (equal skeletons
/// stay equal).
pub const MAX_SKELETON_BYTES: usize = 8 * MAX_NICK_BYTES;

/// Rounds of "confusable prototype, then lower case" that [`skeleton`]
/// applies at most. At most two change anything, for every character (e.g.
/// `M` → `m` → `rn`; `0` → `O` → `o` is one); the unit test
/// `skeleton_is_a_fixed_point` checks that, and the limit only bounds the
/// work.
const MAX_SKELETON_ROUNDS: usize = 4;

/// True for characters that render as nothing or as blank: every
/// Default_Ignorable_Code_Point, plus blank-rendering ones that are not
/// default-ignorable (U+2800, U+3164, U+FFA0, U+115F, U+1160, …) and every
/// Unicode space other than U+0020 that a terminal may render as blank.
///
/// Precisely, any of:
/// * Default_Ignorable_Code_Point (DerivedCoreProperties.txt; see
///   [`is_default_ignorable`]);
/// * General_Category Cf (format: bidi controls, zero-width characters,
///   interlinear annotation, Egyptian hieroglyph format controls, and the
///   few visible prepended marks such as U+0600, which only make sense
///   before digits);
/// * General_Category Cn (unassigned and noncharacters: no glyph, terminals
///   show nothing, a box or `�`);
/// * White_Space, and General_Category Zs/Zl/Zp, except U+0020 itself;
/// * glyphs that are drawn blank: U+2800 BRAILLE PATTERN BLANK, U+1D159
///   MUSICAL SYMBOL NULL NOTEHEAD and the Hangul fillers U+115F, U+1160,
///   U+3164, U+FFA0 (also default-ignorable, listed for clarity).
///
/// Control characters (Cc) other than white space are not included: they
/// are not "invisible" but dangerous, and [`clamp_nick`] drops them itself.
pub fn is_invisible(c: char) -> bool {
    if c == ' ' {
        return false;
    }
    if c.is_whitespace() {
        return true;
    }
    if c.is_ascii() {
        return false;
    }
    match c.general_category() {
        GeneralCategory::Format
        | GeneralCategory::Unassigned
        | GeneralCategory::SpaceSeparator
        | GeneralCategory::LineSeparator
        | GeneralCategory::ParagraphSeparator => true,
        // Default_Ignorable_Code_Point is Cf or Cn (above), or Mn
        // (variation selectors, U+034F, U+17B4, …) or Lo (Hangul fillers)
        // through Other_Default_Ignorable_Code_Point; the test
        // `default_ignorable_derivation_matches_derived_core_properties`
        // checks that no other category has any.
        GeneralCategory::NonspacingMark | GeneralCategory::OtherLetter => {
            is_blank_glyph(c) || is_default_ignorable(c)
        }
        _ => is_blank_glyph(c),
    }
}

/// Characters with a glyph that is drawn blank, and that no property
/// marks as such.
fn is_blank_glyph(c: char) -> bool {
    matches!(
        c,
        '\u{2800}' // BRAILLE PATTERN BLANK (So)
            | '\u{1d159}' // MUSICAL SYMBOL NULL NOTEHEAD (So)
            // Hangul fillers (Lo; also default-ignorable, listed for clarity)
            | '\u{115f}'
            | '\u{1160}'
            | '\u{3164}'
            | '\u{ffa0}'
    )
}

/// Default_Ignorable_Code_Point, from the `unicode-security` crate's data.
///
/// That crate keeps the property (generated from DerivedCoreProperties.txt)
/// but does not export it; it does export the UTS #39 `skeleton`, whose
/// definition (UTS #39 §4, step 2) removes exactly the
/// Default_Ignorable_Code_Point characters after NFD. No default-ignorable
/// character has a canonical decomposition, and no other character
/// decomposes only into default-ignorable ones, so a character is
/// default-ignorable exactly when its skeleton is empty. The unit test
/// `default_ignorable_derivation_matches_derived_core_properties` checks
/// this against the 4174 code points of DerivedCoreProperties.txt
/// (Unicode 15.0 to 18.0, unchanged).
fn is_default_ignorable(c: char) -> bool {
    if c.is_ascii() {
        return false;
    }
    let mut buf = [0u8; 4];
    let mut prototype = unicode_security::skeleton(c.encode_utf8(&mut buf));
    prototype.next().is_none()
}

/// True for combining marks of every script (general categories Mn, Mc,
/// Me).
pub fn is_combining_mark(c: char) -> bool {
    !c.is_ascii() && c.general_category_group() == GeneralCategoryGroup::Mark
}

/// The nickname as natter keeps and shows it:
///
/// 1. control characters (C0, DEL, C1) and [`is_invisible`] characters
///    other than white space are removed — before normalisation, so that a
///    removed character cannot stand between a letter and its accent;
/// 2. NFKC (`ﬁ` → `fi`, `ａ` → `a`, `𝐚` → `a`, `e`+U+0301 → `é`);
/// 3. white space runs become one U+0020, leading and trailing white space
///    is removed, and invisible or control characters that NFKC produced
///    are removed;
/// 4. combining marks (any script) are kept at most [`MAX_COMBINING_RUN`]
///    in a row, and dropped where they have no base character (at the
///    start, where they would stack on whatever the UI printed before);
/// 5. the result is cut to [`MAX_NICK_BYTES`] on a character boundary
///    (after NFKC, so it is the normalised form that fits), and a space
///    left at the end is trimmed;
/// 6. an empty result becomes [`ANONYMOUS`].
///
/// Clamping is idempotent: `clamp_nick(clamp_nick(x)) == clamp_nick(x)`
/// (removing characters before NFKC, and cutting only a prefix of the NFKC
/// result, keep the output NFKC; the unit tests check it for every
/// character in the risky positions and on random strings). Work is linear
/// in the input up to the point where [`MAX_NICK_BYTES`] are filled (NFKC
/// sorts one run of combining marks at a time). Controls are dropped, not
/// shown as pictures: making terminal text inert is the UI's job.
pub fn clamp_nick(s: &str) -> String {
    let mut out = String::with_capacity(MAX_NICK_BYTES + 4);
    let mut pending_space = false;
    let mut run = 0usize;
    let kept = s
        .chars()
        .filter(|&c| c.is_whitespace() || !(c.is_control() || is_invisible(c)));
    for c in kept.nfkc() {
        if out.len() >= MAX_NICK_BYTES {
            break;
        }
        if c.is_whitespace() {
            pending_space |= !out.is_empty();
            continue;
        }
        if c.is_control() || is_invisible(c) {
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
            run = 0;
        }
        if is_combining_mark(c) {
            if out.is_empty() || run >= MAX_COMBINING_RUN {
                continue;
            }
            run += 1;
        } else {
            run = 0;
        }
        out.push(c);
    }
    let end = truncate_to_boundary(&out, MAX_NICK_BYTES).len();
    out.truncate(end);
    let trimmed = out.trim_end_matches(' ').len();
    out.truncate(trimmed);
    if out.is_empty() {
        ANONYMOUS.to_owned()
    } else {
        out
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
pub fn truncate_to_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let end = (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    s.get(..end).unwrap_or("")
}

/// UTS #39 skeleton of a nickname, for comparison only (never shown):
/// clamp-like cleaning (NFKC, invisible removed, ALL combining marks
/// removed — so "alice"+U+0483 skeletons as "alice"), case folded
/// (lowercase), whitespace removed, then the UTS #39 confusable skeleton.
/// Two names that look alike on a terminal must give the same skeleton.
///
/// Exactly:
/// 1. the nickname as shown: [`clamp_nick`] (so a raw and a clamped
///    nickname give the same skeleton, and an empty one is "anonymous");
/// 2. NFKD, then combining marks, invisible characters, white space and
///    controls removed (`é` → `e`, `が` → `か`, `क़` → `क`);
/// 3. rounds of: the UTS #39 skeleton (`unicode_security::skeleton`:
///    Cyrillic `а` → `a`, `0` → `O`, `1`/`I`/`|` → `l`, `m` → `rn`, …),
///    step 2 again (prototypes may carry marks), lower case, step 2 again,
///    and `i` → `l` — until a round changes nothing (at most
///    `MAX_SKELETON_ROUNDS`);
/// 4. cut to [`MAX_SKELETON_BYTES`] on a character boundary.
///
/// `i` → `l`: UTS #39 maps capital `I` to `l` (they look alike), while case
/// folding maps `I` to `i`. A skeleton has to merge both, so `i` and `l`
/// share one (`alice` and `allce` look alike: a false match costs only a
/// suffix on screen, a missed one lets "aIice" pass for "alice").
///
/// The direction of `rn`/`m`: UTS #39 maps `m` to `rn`, so the skeleton of
/// "modern" is "rnodern".
pub fn skeleton(s: &str) -> String {
    let shown = clamp_nick(s);
    let mut cur = strip(shown.chars());
    for _ in 0..MAX_SKELETON_ROUNDS {
        let next = skeleton_round(&cur);
        if next == cur {
            break;
        }
        cur = next;
    }
    let end = truncate_to_boundary(&cur, MAX_SKELETON_BYTES).len();
    cur.truncate(end);
    cur
}

/// One round of step 3 of [`skeleton`].
fn skeleton_round(s: &str) -> String {
    let prototypes = strip(unicode_security::skeleton(s));
    let lower = strip(prototypes.chars().flat_map(char::to_lowercase));
    lower
        .chars()
        .map(|c| if c == 'i' { 'l' } else { c })
        .collect()
}

/// NFKD, without combining marks, invisible characters, white space and
/// controls.
fn strip(chars: impl Iterator<Item = char>) -> String {
    chars
        .nfkd()
        .filter(|&c| {
            !(is_combining_mark(c) || is_invisible(c) || c.is_whitespace() || c.is_control())
        })
        .collect()
}

/// `skeleton(a) == skeleton(b)`: whether two nicknames could be mistaken
/// for each other on a terminal.
pub fn looks_alike(a: &str, b: &str) -> bool {
    skeleton(a) == skeleton(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code point in `lo..=hi` that is a `char`.
    fn range(lo: u32, hi: u32) -> impl Iterator<Item = char> {
        (lo..=hi).filter_map(char::from_u32)
    }

    fn all_chars() -> impl Iterator<Item = char> {
        range(0, 0x10_ffff)
    }

    /// All of Unicode for the costlier tests (a debug build normalises
    /// about 10⁵ short strings a second), less most members of the large
    /// uniform sets: unassigned and private-use code points (every 997th
    /// kept) and unified CJK ideographs (every 61st kept). Every assigned
    /// character of every other block is included, compatibility
    /// ideographs (U+F900–U+FAFF, which NFKC maps) and Hangul syllables too.
    fn sample_chars() -> impl Iterator<Item = char> {
        all_chars().filter(|&c| {
            let cp = c as u32;
            let ideograph = matches!(cp, 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0x2_0000..=0x3_ffff);
            match c.general_category() {
                GeneralCategory::Unassigned | GeneralCategory::PrivateUse => cp.is_multiple_of(997),
                _ if ideograph => cp.is_multiple_of(61),
                _ => true,
            }
        })
    }

    /// Longest run of consecutive combining marks in `s`.
    fn longest_mark_run(s: &str) -> usize {
        let (mut best, mut run) = (0, 0);
        for c in s.chars() {
            run = if is_combining_mark(c) { run + 1 } else { 0 };
            best = best.max(run);
        }
        best
    }

    /// Tiny deterministic generator (xorshift64*), so the random tests
    /// need no crate and always test the same strings.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Characters that exercise every mechanism: ASCII, controls, spaces,
    /// default-ignorables, blanks, marks of several scripts (and ones that
    /// compose), compatibility forms, homoglyphs, Hangul jamo, emoji,
    /// regional indicators, noncharacters, the longest decompositions.
    const POOL: &str = "\
        aeilmnorAIO01 \t\n\r\u{0}\u{1b}\u{7f}\u{85}\u{9b}\u{a0}\u{ad}\u{b4}\u{a8}\u{300}\u{301}\
        \u{316}\u{327}\u{328}\u{334}\u{338}\u{344}\u{345}\u{34f}\u{483}\u{488}\u{489}\u{5b0}\
        \u{61c}\u{64b}\u{670}\u{93c}\u{93e}\u{94d}\u{9be}\u{9c7}\u{b47}\u{b3e}\u{cc6}\u{cc2}\
        \u{cd5}\u{e31}\u{f71}\u{f72}\u{f80}\u{1100}\u{1161}\u{11a8}\u{115f}\u{1160}\u{1680}\
        \u{17b4}\u{180e}\u{2000}\u{200b}\u{200d}\u{200e}\u{2028}\u{202e}\u{202f}\u{205f}\u{2060}\
        \u{2066}\u{20dd}\u{2800}\u{3000}\u{3099}\u{309a}\u{3164}\u{304b}\u{30ab}\u{ff76}\u{ff9e}\
        \u{ac00}\u{fb01}\u{fdfa}\u{fe0f}\u{feff}\u{ff41}\u{ffa0}\u{fffe}\u{378}\u{430}\u{435}\
        \u{3bf}\u{585}\u{130}\u{1e9e}\u{df}\u{1d41a}\u{1d159}\u{1d173}\u{1f642}\u{1f1fa}\
        \u{1f1f8}\u{1f3fb}\u{e0001}\u{e0041}\u{e0100}\u{10ffff}日éßİ";

    /// A random string: mostly from [`POOL`], sometimes any code point,
    /// sometimes long runs of one character.
    fn random_string(rng: &mut Rng) -> String {
        let pool: Vec<char> = POOL.chars().collect();
        let len = rng.below(48);
        let mut s = String::new();
        for _ in 0..len {
            let c = match rng.below(10) {
                0..=6 => pool[rng.below(pool.len())],
                7 => char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{fffd}'),
                8 => char::from_u32(rng.below(0x3000) as u32).unwrap_or('x'),
                _ => {
                    let c = pool[rng.below(pool.len())];
                    for _ in 0..rng.below(40) {
                        s.push(c);
                    }
                    c
                }
            };
            s.push(c);
        }
        s
    }

    // ---- the attacker review --------------------------------------------

    /// Guards: removal of default-ignorables (U+FE0F), of blank renderers
    /// (U+2800), and stripping of non-Latin combining marks (U+0483) in the
    /// skeleton. These three were reported as undetected.
    #[test]
    fn report_inputs_look_like_alice() {
        for s in ["alice\u{fe0f}", "alice\u{2800}", "alice\u{483}"] {
            assert!(looks_alike(s, "alice"), "{s:?}");
            assert_eq!(skeleton(s), skeleton("alice"), "{s:?}");
        }
        // The two that were detected before still are.
        assert!(looks_alike("\u{430}lice", "alice"));
        assert!(looks_alike("al\u{200b}ice", "alice"));
        // Shown: the invisible ones are gone, the mark is kept (capped).
        assert_eq!(clamp_nick("alice\u{fe0f}"), "alice");
        assert_eq!(clamp_nick("alice\u{2800}"), "alice");
        assert_eq!(clamp_nick("alice\u{483}"), "alice\u{483}");
    }

    // ---- default-ignorables ---------------------------------------------

    /// The default-ignorable code points the issue names.
    fn named_default_ignorables() -> Vec<char> {
        let ranges: &[(u32, u32)] = &[
            (0xfe00, 0xfe0f),   // variation selectors
            (0xe0100, 0xe01ef), // variation selectors supplement
            (0x200b, 0x200d),   // ZW space, non-joiner, joiner
            (0x2060, 0x2064),   // word joiner, invisible operators
            (0xad, 0xad),       // soft hyphen
            (0x34f, 0x34f),     // combining grapheme joiner (Mn)
            (0x61c, 0x61c),     // Arabic letter mark
            (0x115f, 0x1160),   // Hangul choseong/jungseong fillers
            (0x17b4, 0x17b5),   // Khmer inherent vowels (Mn)
            (0x180b, 0x180f),   // Mongolian FVS1-4, vowel separator
            (0xe0000, 0xe007f), // tag characters (and reserved E0000)
            (0xfeff, 0xfeff),   // BOM / ZW no-break space
            (0x3164, 0x3164),   // Hangul filler
            (0xffa0, 0xffa0),   // halfwidth Hangul filler
            (0x1d173, 0x1d17a), // musical symbol format controls
            (0x202a, 0x202e),   // bidi embeddings/overrides
            (0x2066, 0x2069),   // bidi isolates
            (0x200e, 0x200f),   // LRM, RLM
            (0x2065, 0x2065),   // reserved, default-ignorable
            (0xfff0, 0xfff8),   // reserved, default-ignorable
            (0x1bca0, 0x1bca3), // shorthand format controls
            (0xe0080, 0xe0fff), // reserved, default-ignorable
        ];
        ranges.iter().flat_map(|&(lo, hi)| range(lo, hi)).collect()
    }

    /// Guards: `is_default_ignorable` (and so `is_invisible`) and its use in
    /// both `clamp_nick` and `skeleton`. Many of these are Mn (variation
    /// selectors, U+034F, U+17B4, U+180B) or Lo (fillers) or Cn (reserved),
    /// so neither the Cf rule nor mark stripping would remove them from the
    /// shown name.
    #[test]
    fn default_ignorables_are_removed() {
        let named = named_default_ignorables();
        assert!(named.len() > 4000);
        for c in named {
            assert!(is_invisible(c), "U+{:04X}", c as u32);
            assert!(is_default_ignorable(c), "U+{:04X}", c as u32);
            for s in [
                format!("al{c}ice"),
                format!("{c}alice"),
                format!("alice{c}"),
                format!("alice{c}{c}{c}{c}{c}{c}"),
            ] {
                assert_eq!(clamp_nick(&s), "alice", "U+{:04X}", c as u32);
                assert!(looks_alike(&s, "alice"), "U+{:04X}", c as u32);
            }
            // A name made only of them is shown as anonymous.
            assert_eq!(clamp_nick(&c.to_string().repeat(20)), ANONYMOUS);
        }
        // A removed ignorable cannot split a letter from its accent: the
        // result is NFKC, as if the ignorable had never been there.
        assert_eq!(clamp_nick("e\u{34f}\u{301}"), "\u{e9}");
        assert_eq!(clamp_nick("e\u{fe0f}\u{301}"), "\u{e9}");
    }

    /// Guards: the derivation of Default_Ignorable_Code_Point from
    /// `unicode-security`. Compares all of Unicode with the ranges of
    /// DerivedCoreProperties.txt (15.0.0; 16.0 to 18.0 list the same 4174
    /// code points). Fails if the crate stops removing default-ignorables in
    /// its skeleton, or if a crate update changes the property.
    #[test]
    fn default_ignorable_derivation_matches_derived_core_properties() {
        // DerivedCoreProperties.txt, "Derived Property:
        // Default_Ignorable_Code_Point", Unicode 15.0.0 (2022-08-05).
        const DERIVED_CORE_PROPERTIES: &[(u32, u32)] = &[
            (0x00ad, 0x00ad),
            (0x034f, 0x034f),
            (0x061c, 0x061c),
            (0x115f, 0x1160),
            (0x17b4, 0x17b5),
            (0x180b, 0x180f),
            (0x200b, 0x200f),
            (0x202a, 0x202e),
            (0x2060, 0x206f),
            (0x3164, 0x3164),
            (0xfe00, 0xfe0f),
            (0xfeff, 0xfeff),
            (0xffa0, 0xffa0),
            (0xfff0, 0xfff8),
            (0x1bca0, 0x1bca3),
            (0x1d173, 0x1d17a),
            (0xe0000, 0xe0fff),
        ];
        let listed = |c: char| {
            DERIVED_CORE_PROPERTIES
                .iter()
                .any(|&(lo, hi)| (lo..=hi).contains(&(c as u32)))
        };
        let mut count = 0;
        for c in all_chars() {
            let derived = is_default_ignorable(c);
            assert_eq!(derived, listed(c), "U+{:04X}", c as u32);
            // is_invisible looks for them only in Cf, Cn, Mn and Lo.
            assert!(!derived || is_invisible(c), "U+{:04X}", c as u32);
            count += usize::from(derived);
        }
        assert_eq!(count, 4174);
    }

    // ---- blank renderers ------------------------------------------------

    /// Guards: the blank-glyph list (U+2800, U+1D159) and the white space /
    /// Zs rule of `is_invisible`, and white space removal in `skeleton`.
    #[test]
    fn blank_renderers_are_removed() {
        let blanks: Vec<char> = [
            '\u{2800}',
            '\u{3164}',
            '\u{ffa0}',
            '\u{115f}',
            '\u{1160}',
            '\u{205f}',
            '\u{3000}',
            '\u{a0}',
            '\u{1680}',
            '\u{202f}',
            '\u{1d159}',
            '\u{2028}',
            '\u{2029}',
            '\u{85}',
        ]
        .into_iter()
        .chain(range(0x2000, 0x200a))
        .collect();
        for c in blanks {
            assert!(is_invisible(c), "U+{:04X}", c as u32);
            assert_eq!(
                clamp_nick(&format!("alice{c}")),
                "alice",
                "U+{:04X}",
                c as u32
            );
            assert_eq!(clamp_nick(&format!("{c}{c}alice")), "alice");
            assert_eq!(clamp_nick(&c.to_string().repeat(10)), ANONYMOUS);
            assert!(looks_alike(&format!("alice{c}"), "alice"));
            assert!(looks_alike(&format!("al{c}ice"), "alice"));
            assert!(looks_alike(&format!("{c}alice{c}{c}"), "alice"));
        }
        // Every White_Space character but U+0020 is invisible.
        for c in all_chars().filter(|c| c.is_whitespace() && *c != ' ') {
            assert!(is_invisible(c), "U+{:04X}", c as u32);
        }
        assert!(!is_invisible(' '));
        // Inside a name, a space-like character is shown as one space...
        assert_eq!(clamp_nick("al\u{3000}\u{a0}\u{2003}ice"), "al ice");
        assert_eq!(clamp_nick("al\u{1680}ice"), "al ice");
        // ...while a blank glyph that is not white space is removed.
        assert_eq!(clamp_nick("al\u{2800}ice"), "alice");
        assert_eq!(clamp_nick("al\u{1d159}ice"), "alice");
    }

    /// Guards: the Cf and Cn rules of `is_invisible` — format characters
    /// that are not default-ignorable (interlinear annotation, Egyptian
    /// hieroglyph format controls, Arabic number sign) and unassigned code
    /// points / noncharacters.
    #[test]
    fn other_format_and_unassigned_are_removed() {
        for c in [
            '\u{fff9}',  // interlinear annotation anchor (Cf)
            '\u{fffb}',  // interlinear annotation terminator (Cf)
            '\u{13430}', // Egyptian hieroglyph vertical joiner (Cf)
            '\u{600}',   // Arabic number sign (Cf)
            '\u{378}',   // unassigned
            '\u{fdd0}',  // noncharacter
            '\u{fffe}',  // noncharacter
            '\u{10ffff}',
        ] {
            assert!(is_invisible(c), "U+{:04X}", c as u32);
            assert_eq!(clamp_nick(&format!("al{c}ice")), "alice");
        }
        // Visible characters are not invisible.
        for c in [
            'a',
            '日',
            '\u{1f642}',
            '\u{e000}',
            '\u{fffd}',
            '_',
            '\u{2422}',
        ] {
            assert!(!is_invisible(c), "U+{:04X}", c as u32);
        }
    }

    // ---- combining marks --------------------------------------------------

    /// Marks of several scripts and all three categories, with a base that
    /// suits them.
    const MARKS: &[(char, char)] = &[
        ('e', '\u{301}'),   // Latin, Mn
        ('e', '\u{483}'),   // Cyrillic titlo, Mn
        ('e', '\u{484}'),   // Cyrillic palatalisation, Mn
        ('e', '\u{485}'),   // Mn
        ('e', '\u{486}'),   // Mn
        ('e', '\u{487}'),   // Mn
        ('e', '\u{488}'),   // Cyrillic hundred thousands sign, Me
        ('e', '\u{489}'),   // Cyrillic millions sign, Me
        ('ש', '\u{5b0}'),   // Hebrew sheva, Mn
        ('ب', '\u{64b}'),   // Arabic fathatan, Mn
        ('क', '\u{93c}'),   // Devanagari nukta, Mn
        ('क', '\u{93e}'),   // Devanagari vowel sign AA, Mc
        ('க', '\u{bcd}'),   // Tamil virama, Mn
        ('ก', '\u{e31}'),   // Thai mai han-akat, Mn
        ('e', '\u{20dd}'),  // enclosing circle, Me
        ('e', '\u{20e3}'),  // enclosing keycap, Me
        ('e', '\u{1ab0}'),  // combining diacritical marks extended, Mn
        ('か', '\u{3099}'), // combining kana voiced mark, Mn
    ];

    /// Guards: `is_combining_mark` covering Mn, Mc and Me of every script,
    /// and mark stripping in `skeleton`. Fails if marks are limited to the
    /// Latin combining blocks (the old behaviour), or not stripped.
    #[test]
    fn combining_marks_of_every_script_look_like_the_base() {
        for &(base, mark) in MARKS {
            assert!(is_combining_mark(mark), "U+{:04X}", mark as u32);
            let plain = format!("ali{base}");
            for s in [
                format!("ali{base}{mark}"),
                format!("ali{base}{mark}{mark}{mark}"),
                format!("a{mark}li{base}{mark}"),
            ] {
                assert!(looks_alike(&s, &plain), "{s:?}");
            }
        }
        // General_Category Mark exactly.
        for c in all_chars() {
            let gc = c.general_category();
            let mark = matches!(
                gc,
                GeneralCategory::NonspacingMark
                    | GeneralCategory::SpacingMark
                    | GeneralCategory::EnclosingMark
            );
            assert_eq!(is_combining_mark(c), mark, "U+{:04X}", c as u32);
        }
        assert!(!is_combining_mark('a') && !is_combining_mark('日'));
    }

    /// Guards: the run cap in `clamp_nick` (MAX_COMBINING_RUN) for marks of
    /// every script, and the dropping of marks without a base.
    #[test]
    fn zalgo_runs_are_capped_in_every_script() {
        for &(base, mark) in MARKS {
            let zalgo = format!("{base}{}", mark.to_string().repeat(50));
            let shown = clamp_nick(&zalgo);
            assert!(longest_mark_run(&shown) <= MAX_COMBINING_RUN, "{shown:?}");
            // The base (perhaps composed with the first mark by NFKC) and
            // exactly MAX_COMBINING_RUN of the remaining marks.
            assert_eq!(shown.chars().count(), 1 + MAX_COMBINING_RUN, "{shown:?}");
            // A short run is kept whole.
            assert_eq!(
                clamp_nick(&format!("x{base}{mark}")),
                format!("x{base}{mark}").nfc().collect::<String>()
            );
        }
        // Every mark of Unicode, 50 times on one base.
        for mark in all_chars().filter(|&c| is_combining_mark(c) && !is_invisible(c)) {
            let shown = clamp_nick(&format!("a{}", mark.to_string().repeat(50)));
            assert!(
                longest_mark_run(&shown) <= MAX_COMBINING_RUN,
                "U+{:04X}",
                mark as u32
            );
        }
        // Different marks (as Zalgo generators use) are capped too, and the
        // run restarts on each base.
        let zalgo: String = "zalgo"
            .chars()
            .flat_map(|c| std::iter::once(c).chain(range(0x300, 0x36f).take(30)))
            .collect();
        assert!(longest_mark_run(&clamp_nick(&zalgo)) <= MAX_COMBINING_RUN);
        // Marks with no base are dropped.
        assert_eq!(clamp_nick("\u{301}\u{483}alice"), "alice");
        assert_eq!(clamp_nick("\u{20dd}"), ANONYMOUS);
        assert_eq!(clamp_nick(" \u{301}alice"), "alice");
    }

    // ---- homoglyphs -------------------------------------------------------

    /// Guards: the UTS #39 skeleton (confusables.txt) for other scripts, and
    /// NFKC/NFKD for fullwidth and mathematical forms.
    #[test]
    fn homoglyphs_from_other_scripts_look_alike() {
        let pairs = [
            ("\u{430}lice", "alice"),                           // Cyrillic а
            ("alic\u{435}", "alice"),                           // Cyrillic е
            ("b\u{43e}b", "bob"),                               // Cyrillic о
            ("\u{440}\u{430}\u{443}\u{440}\u{430}l", "paypal"), // Cyrillic р а у
            ("\u{441}\u{43e}\u{441}\u{43e}", "coco"),           // Cyrillic с о
            ("\u{445}avier", "xavier"),                         // Cyrillic х
            ("\u{3bf}scar", "oscar"),                           // Greek ο
            ("ΗΑΝΚ", "hank"),                                   // Greek capitals
            ("b\u{585}b", "bob"),                               // Armenian օ
            ("𝐚𝐥𝐢𝐜𝐞", "alice"),                                 // mathematical bold
            ("𝒶𝓁𝒾𝒸ℯ", "alice"),                                 // mathematical script
            ("𝖆𝖑𝖎𝖈𝖊", "alice"),                                 // fraktur bold
            ("𝚊𝚕𝚒𝚌𝚎", "alice"),                                 // monospace
            ("ａｌｉｃｅ", "alice"),                            // fullwidth
            ("ＢＯＢ", "bob"),                                  // fullwidth capitals
        ];
        for (fake, real) in pairs {
            assert!(looks_alike(fake, real), "{fake:?} vs {real:?}");
        }
        // The homoglyph is really different, and still shown as it is.
        assert_ne!(clamp_nick("\u{430}lice"), "alice");
    }

    /// Guards: the UTS #39 mappings for ASCII look-alikes, the skeleton's
    /// round of lower-casing after prototypes (`0` → `O` → `o`) and the
    /// `i` → `l` merge.
    #[test]
    fn ascii_lookalikes_and_case() {
        // rn / m: UTS #39 maps "m" to "rn" (not the other way round).
        assert_eq!(skeleton("m"), "rn");
        assert_eq!(skeleton("rn"), "rn");
        assert!(looks_alike("modern", "rnodern"));
        assert!(looks_alike("sam", "sarn"));
        // I / l / 1 / |, and lower-case i with them.
        for s in [
            "alice", "aIice", "a1ice", "a|ice", "ALICE", "Alice", "alIce", "aııce",
        ] {
            assert!(looks_alike(s, "alice"), "{s:?}");
        }
        assert!(looks_alike("Ian", "ian"));
        assert!(looks_alike("Ian", "lan"));
        // 0 / O / o.
        for s in ["b0b", "bOb", "BOB", "B0B", "Bob"] {
            assert!(looks_alike(s, "bob"), "{s:?}");
        }
        // Case, where the lower-case letter has a prototype of its own:
        // needs a second round (M -> m -> rn).
        assert_eq!(skeleton("M"), "rn");
        assert!(looks_alike("SAM", "sam"));
        assert!(looks_alike("MODERN", "modern"));
        assert!(looks_alike("\u{39c}\u{399}\u{39a}\u{395}", "mike")); // Greek ΜΙΚΕ
                                                                      // Case.
        assert!(looks_alike("Alice", "alice"));
        assert!(looks_alike("ZOË", "zoe"));
        assert!(looks_alike("STRASSE", "strasse"));
    }

    // ---- clamp_nick -------------------------------------------------------

    /// Guards: NFKC, white space collapsing and trimming, control removal
    /// and the length cut of `clamp_nick`.
    #[test]
    fn clamp_nick_rules() {
        // NFKC.
        assert_eq!(clamp_nick("\u{fb01}sh"), "fish");
        assert_eq!(clamp_nick("ａｌｉｃｅ"), "alice");
        assert_eq!(clamp_nick("𝐚𝐥𝐢𝐜𝐞"), "alice");
        assert_eq!(clamp_nick("e\u{301}"), "\u{e9}");
        assert_eq!(clamp_nick("\u{2460}"), "1"); // circled digit one
        assert_eq!(clamp_nick("\u{ff76}\u{ff9e}"), "\u{30ac}"); // halfwidth ｶﾞ → ガ
                                                                // White space.
        assert_eq!(clamp_nick("  alice  "), "alice");
        assert_eq!(clamp_nick("al \t\n  ice"), "al ice");
        assert_eq!(clamp_nick(""), ANONYMOUS);
        assert_eq!(clamp_nick("   "), ANONYMOUS);
        // Controls are dropped (showing them inertly is the UI's job).
        assert_eq!(clamp_nick("evil\u{1b}[31m"), "evil[31m");
        assert_eq!(clamp_nick("a\u{0}b\u{7f}c\u{9b}d"), "abcd");
        assert_eq!(clamp_nick("e\u{7}\u{301}"), "\u{e9}");
        // Length, on a character boundary.
        assert_eq!(clamp_nick(&"x".repeat(40)), "x".repeat(32));
        assert_eq!(clamp_nick(&"é".repeat(20)), "é".repeat(16));
        assert_eq!(clamp_nick(&"日".repeat(20)), "日".repeat(10));
        assert_eq!(clamp_nick(&format!("a{}", "日".repeat(20))).len(), 31);
        assert_eq!(clamp_nick(&"\u{1f642}".repeat(20)), "\u{1f642}".repeat(8));
        // The cut is of the normalised form: 32 "e"+U+0301 pairs are 96
        // bytes, but 32 bytes of "é".
        assert_eq!(clamp_nick(&"e\u{301}".repeat(32)), "é".repeat(16));
        // ...and 32 "ﬁ" (3 bytes each) become 16 "fi", not 10 "ﬁ".
        assert_eq!(clamp_nick(&"\u{fb01}".repeat(32)), "fi".repeat(16));
        // No space is left at the end of a cut.
        assert_eq!(clamp_nick(&format!("{} b", "a".repeat(31))), "a".repeat(31));
        // A long hostile nickname stays bounded.
        let long = "\u{1b}]0;x\u{7}\u{200b}\u{301}".repeat(100_000);
        assert!(clamp_nick(&long).len() <= MAX_NICK_BYTES);
        let marks = format!("a{}", "\u{301}\u{316}".repeat(50_000));
        assert!(clamp_nick(&marks).len() <= MAX_NICK_BYTES);
    }

    /// Guards: that emoji are not mistaken for invisible characters, and
    /// that U+FE0F (default-ignorable) is removed from them.
    #[test]
    fn emoji_names_survive() {
        for s in [
            "\u{1f642}\u{1f44d}",
            "\u{1f431}",
            "\u{1f1fa}\u{1f1f8}",
            "\u{1f44d}\u{1f3fb}",
        ] {
            assert_eq!(clamp_nick(s), s);
            assert_ne!(skeleton(s), skeleton(ANONYMOUS));
        }
        assert_eq!(clamp_nick("\u{2764}\u{fe0f}"), "\u{2764}");
        assert!(looks_alike("\u{2764}\u{fe0f}", "\u{2764}"));
        assert!(!looks_alike("\u{1f642}", "\u{1f44d}"));
    }

    /// Guards: all of `clamp_nick`'s output invariants at once, and the
    /// fixed-point loop that makes it idempotent; `skeleton`'s bound and its
    /// use of the shown name. Thousands of random strings from a
    /// deterministic generator.
    #[test]
    fn random_input_invariants() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let s = random_string(&mut rng);
            let nick = clamp_nick(&s);
            assert!(!nick.is_empty() && nick.len() <= MAX_NICK_BYTES, "{s:?}");
            assert!(!nick.chars().any(is_invisible), "{s:?} -> {nick:?}");
            assert!(!nick.chars().any(char::is_control), "{s:?} -> {nick:?}");
            assert_eq!(nick, nick.trim(), "{s:?}");
            assert!(!nick.contains("  "), "{s:?}");
            assert!(longest_mark_run(&nick) <= MAX_COMBINING_RUN, "{s:?}");
            assert!(!nick.starts_with(is_combining_mark), "{s:?}");
            assert_eq!(nick.nfkc().collect::<String>(), nick, "NFKC {s:?}");
            assert_eq!(clamp_nick(&nick), nick, "idempotent on {s:?}");
            let sk = skeleton(&s);
            assert!(sk.len() <= MAX_SKELETON_BYTES, "{s:?}");
            assert_eq!(skeleton(&nick), sk, "{s:?}");
        }
    }

    /// Guards: idempotence of `clamp_nick` where it is most at risk —
    /// every character of Unicode between a letter and an accent, after a
    /// letter, before an accent, and between Hangul jamo (composition), and
    /// every character repeated past the length cut.
    #[test]
    fn clamp_nick_is_idempotent_for_every_character() {
        for c in sample_chars() {
            for s in [
                format!("e{c}\u{301}"),
                format!("a{c}"),
                format!("{c}\u{301}\u{316}"),
                format!("\u{1100}{c}\u{1161}"),
                c.to_string().repeat(MAX_NICK_BYTES / c.len_utf8() + 1),
            ] {
                let once = clamp_nick(&s);
                assert_eq!(clamp_nick(&once), once, "U+{:04X}", c as u32);
            }
        }
    }

    // ---- non-collisions ---------------------------------------------------

    /// Guards: that the skeleton does not over-merge (e.g. by mapping whole
    /// scripts or dropping letters).
    #[test]
    fn different_names_do_not_look_alike() {
        let pairs = [
            ("alice", "alicf"),
            ("alice", "bob"),
            ("bob", "rob"),
            ("alice", "alicia"),
            ("ann", "anna"),
            ("王小明", "王小红"),
            ("李雷", "韩梅梅"),
            ("张伟", "张三"),
            ("さくら", "ひまわり"),
            ("たなか", "やまだ"),
            ("佐藤", "鈴木"),
            ("サクラ", "サユリ"),
            ("김민수", "김민준"),
            ("Ольга", "Олег"),
            ("Νίκος", "Γιώργος"),
            ("\u{1f642}", "\u{1f643}"),
            ("alice", ANONYMOUS),
        ];
        for (a, b) in pairs {
            assert!(!looks_alike(a, b), "{a:?} vs {b:?}");
            assert_ne!(clamp_nick(a), clamp_nick(b));
        }
        // CJK names keep their characters when shown.
        assert_eq!(clamp_nick("王小明"), "王小明");
        assert_eq!(clamp_nick("さくら"), "さくら");
    }

    /// Guards: `truncate_to_boundary` (the cut of `clamp_nick` and
    /// `skeleton`) never splits a character.
    #[test]
    fn truncate_on_boundary() {
        assert_eq!(truncate_to_boundary("héllo", 2), "h");
        assert_eq!(truncate_to_boundary("héllo", 3), "hé");
        assert_eq!(truncate_to_boundary("hi", 10), "hi");
        assert_eq!(truncate_to_boundary("🙂", 3), "");
        assert_eq!(truncate_to_boundary("", 0), "");
        let s = "a\u{e9}\u{65e5}\u{1f642}";
        for max in 0..=s.len() + 1 {
            let t = truncate_to_boundary(s, max);
            assert!(t.len() <= max && s.starts_with(t));
            assert!(t.len() + 4 > max || t == s);
        }
    }

    // ---- bounds -----------------------------------------------------------

    /// Guards: the bound on the skeleton's size (documented on
    /// MAX_SKELETON_BYTES: at most 7 bytes per byte of the clamped name,
    /// 224 for a full one): for every character after a letter, then for
    /// nicknames filled with the worst characters, and that `skeleton`
    /// works on the clamped name for hostile input of any length.
    #[test]
    fn skeleton_is_bounded() {
        let mut worst: Vec<(usize, char)> = Vec::new();
        for c in sample_chars() {
            let s = format!("x{c}");
            let shown = clamp_nick(&s);
            let sk = skeleton(&s);
            assert!(sk.len() <= 7 * shown.len(), "U+{:04X}", c as u32);
            // Bytes of skeleton per byte of shown name, in sevenths.
            worst.push((7 * sk.len() / shown.len(), c));
        }
        worst.sort_unstable();
        let filled: Vec<char> = worst.iter().rev().take(200).map(|&(_, c)| c).collect();
        assert!(filled.contains(&'\u{af66}'), "the documented worst case");
        for c in filled
            .iter()
            .copied()
            .chain(['\u{fdfa}', 'M', 'm', '\u{a0}'])
        {
            let s = c.to_string().repeat(MAX_NICK_BYTES / c.len_utf8() + 1);
            let sk = skeleton(&s);
            assert!(sk.len() <= 7 * MAX_NICK_BYTES, "U+{:04X}", c as u32);
            assert!(sk.len() <= MAX_SKELETON_BYTES, "U+{:04X}", c as u32);
        }
        // The worst case, as documented: 3-byte syllables filling the name.
        assert_eq!(
            skeleton(&"\u{af66}".repeat(20)).len(),
            7 * (MAX_NICK_BYTES / 3 * 3)
        );
        // Huge input does not make a huge skeleton, nor take long.
        for unit in [
            "\u{fdfa}\u{301}\u{200b}",
            "\u{af66}",
            "M\u{fe0f}",
            "\u{301}",
        ] {
            let huge = unit.repeat(50_000);
            let sk = skeleton(&huge);
            assert!(sk.len() <= MAX_SKELETON_BYTES);
            assert_eq!(sk, skeleton(&clamp_nick(&huge)));
        }
    }

    /// Guards: MAX_SKELETON_ROUNDS being enough — the skeleton of every
    /// character (alone and as a full nickname) is a fixed point of one
    /// more round, so the round limit never cuts the mapping short.
    #[test]
    fn skeleton_is_a_fixed_point() {
        for c in sample_chars() {
            let sk = skeleton(&c.to_string());
            assert_eq!(skeleton_round(&sk), sk, "U+{:04X}", c as u32);
        }
    }
}
