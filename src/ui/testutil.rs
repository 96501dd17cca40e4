//! Deterministic pseudo-random input for the "never panics" tests, without
//! a property-testing dependency.

/// xorshift64*.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A random line built from command names, separators, digits, terminal
/// escapes, bidi and zero-width characters, multi-byte text and arbitrary
/// Unicode scalar values.
pub(crate) fn random_line(rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "/",
        "//",
        " ",
        "  ",
        "\t",
        ":",
        "[",
        "]",
        "%",
        "-",
        "0",
        "1",
        "10000",
        "10001",
        "65535",
        "65536",
        "::1",
        "msg",
        "trust",
        "untrust",
        "verify",
        "peers",
        "history",
        "search",
        "nick",
        "connect",
        "help",
        "quit",
        "exit",
        "é",
        "日本",
        "\u{1b}[2J",
        "\u{1b}]0;t\u{7}",
        "\u{9b}",
        "\u{202e}",
        "\u{200d}",
        "\0",
        "\r",
        "\n",
        "🙂",
        "\u{fe0f}",
        "\u{301}",
        "\u{85}",
        "\u{2028}",
    ];
    let mut s = String::new();
    if rng.below(2) == 0 {
        s.push('/');
    }
    for _ in 0..rng.below(12) {
        if rng.below(4) == 0 {
            let c = char::from_u32((rng.next() % 0x11_0000) as u32).unwrap_or('\u{fffd}');
            s.push(c);
        } else {
            s.push_str(PIECES[rng.below(PIECES.len())]);
        }
    }
    s
}

/// Characters that must never reach the terminal from untrusted input,
/// listed here independently of the sanitiser so a gap in it makes tests
/// fail: C0 controls (except `\n` when `newlines`), DEL, C1 controls, line
/// and paragraph separators, bidi controls and zero-width characters.
pub(crate) fn forbidden(c: char, newlines: bool) -> bool {
    let c0 = c < ' ' && !(newlines && c == '\n');
    let c1 = ('\u{7f}'..='\u{9f}').contains(&c);
    let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}');
    let zero_width = matches!(
        c,
        '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{2028}' | '\u{2029}'
    );
    c0 || c1 || bidi || zero_width
}

/// Panics if `s` contains a [`forbidden`] character.
pub(crate) fn assert_inert(s: &str, newlines: bool) {
    if let Some(c) = s.chars().find(|c| forbidden(*c, newlines)) {
        panic!("{c:?} (U+{:04X}) in {s:?}", u32::from(c));
    }
}
