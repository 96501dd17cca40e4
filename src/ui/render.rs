//! Events to terminal lines. Pure: every function returns a `String` (lines
//! separated by `\n`, no trailing newline) and the caller prints it.
//!
//! Every string that may come from the network (nicknames, text, addresses,
//! link states, even fingerprints) goes through [`super::sanitize`] here, so
//! the only escape sequences in the output are the colour codes this module
//! adds itself, and none at all when colour is off.
//!
//! Trust is shown by a mark before the name, readable without colour; see
//! [`legend`]. Continuation lines of a message are indented by
//! [`CONTINUATION_INDENT`], so text sent by a peer can never look like the
//! start of a new line from someone else (every header starts with the time).

use natter_core::trust::TrustState;
use std::ffi::OsStr;

use super::sanitize::{sanitize_line, sanitize_nick, sanitize_text};

/// Indent of the second and later lines of a message (the width of the
/// `HH:MM ` timestamp plus two).
pub const CONTINUATION_INDENT: &str = "        ";

/// Indent of the second and later lines of a system line.
const SYSTEM_INDENT: &str = "    ";

/// Whether to use colour, and bidi isolates. The caller decides; see
/// [`Style::from_env`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
    /// Wrap untrusted fields in bidi isolates: on a terminal only, so
    /// scripts reading line mode get the text as it is.
    pub isolate: bool,
}

impl Style {
    /// No colour, no isolates: the output contains no escape sequences or
    /// format characters at all.
    pub const PLAIN: Style = Style {
        color: false,
        isolate: false,
    };

    /// Colour when the output is a terminal and `NO_COLOR` is not set to a
    /// non-empty value (<https://no-color.org>).
    pub fn from_env(is_tty: bool) -> Style {
        Style::decide(is_tty, std::env::var_os("NO_COLOR").as_deref())
    }

    /// The decision of [`Style::from_env`], given the value of `NO_COLOR`.
    pub fn decide(is_tty: bool, no_color: Option<&OsStr>) -> Style {
        Style {
            color: is_tty && no_color.is_none_or(OsStr::is_empty),
            isolate: is_tty,
        }
    }

    /// Wraps `s` in the SGR sequence `sgr` when colour is on.
    fn paint(&self, sgr: &str, s: &str) -> String {
        if self.color && !s.is_empty() {
            format!("\x1b[{sgr}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
}

// SGR parameters.
const DIM: &str = "2";
const BOLD: &str = "1";
const GREEN: &str = "32";
const YELLOW: &str = "33";
const RED_BOLD: &str = "1;31";
const RED_LOUD: &str = "1;7;31";
const YELLOW_BOLD: &str = "1;33";
const CYAN: &str = "36";
const PM: &str = "1;35";

/// Per-peer name colours. Red (warnings, key changes) and magenta (private
/// messages) are left out so a nickname cannot borrow their meaning.
const PALETTE: &[&str] = &[
    "1;32", "1;33", "1;34", "1;36", "1;92", "1;93", "1;94", "1;96",
];

/// How a trust state is drawn: a one-character mark, a word, a colour.
pub trait TrustMark: Copy {
    /// The one-character mark shown before a name.
    fn symbol(self) -> &'static str;
    /// The mark and a word, for tables.
    fn label(self) -> &'static str;
    /// The word alone ("verified", "KEY CHANGED").
    fn word(self) -> &'static str;
    fn sgr(self) -> &'static str;
}

impl TrustMark for TrustState {
    fn symbol(self) -> &'static str {
        match self {
            TrustState::Verified => "✓",
            TrustState::Unverified => "?",
            TrustState::KeyChanged => "!",
            TrustState::Local => "·",
        }
    }

    fn label(self) -> &'static str {
        match self {
            TrustState::Verified => "✓ verified",
            TrustState::Unverified => "? unverified",
            TrustState::KeyChanged => "! KEY CHANGED",
            TrustState::Local => "· you",
        }
    }

    fn word(self) -> &'static str {
        match self {
            TrustState::Verified => "verified",
            TrustState::Unverified => "unverified",
            TrustState::KeyChanged => "KEY CHANGED",
            TrustState::Local => "you",
        }
    }

    fn sgr(self) -> &'static str {
        match self {
            TrustState::Verified => GREEN,
            TrustState::Unverified => YELLOW,
            TrustState::KeyChanged => RED_LOUD,
            TrustState::Local => DIM,
        }
    }
}

/// Delivery state of one of our own messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMark {
    /// In the outbox, not yet acknowledged.
    Pending,
    /// The peer acknowledged it (it is stored there).
    Delivered,
}

impl DeliveryMark {
    pub fn symbol(self) -> &'static str {
        match self {
            DeliveryMark::Pending => "…",
            DeliveryMark::Delivered => "✓✓",
        }
    }
}

/// What the legend says; `/help` can print it after the command list.
pub fn legend() -> String {
    "Marks before a name (shown with or without colour):\n\
     \x20 ✓  verified: you compared fingerprints and ran /trust\n\
     \x20 ?  unverified: key recorded on first contact, not compared yet\n\
     \x20 !  KEY CHANGED: this name came with a different key; treat it as a\n\
     \x20    stranger until you /verify it\n\
     \x20 ·  you\n\
     After your own messages:\n\
     \x20 …  waiting for the peer to acknowledge (kept and resent)\n\
     \x20 ✓✓ delivered\n\
     Private messages show [pm from NAME] or [pm to NAME].\n\
     NAME#ABCD: the #ABCD is the start of the fingerprint, shown when\n\
     names look alike. Continuation lines of a message are indented."
        .to_owned()
}

/// A stable seed for a peer's colour from its identity (key or fingerprint
/// bytes): FNV-1a.
pub fn color_seed(identity: &[u8]) -> u64 {
    identity.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn peer_sgr(seed: u64) -> &'static str {
    // Mix the seed so that seeds differing only in high bits still spread.
    let mixed = (seed ^ (seed >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    let i = ((mixed >> 32) % PALETTE.len() as u64) as usize;
    PALETTE.get(i).copied().unwrap_or(BOLD)
}

/// `HH:MM` of a Unix time in milliseconds (UTC).
pub fn hhmm(time_ms: u64) -> String {
    let minutes = time_ms / 60_000;
    format!("{:02}:{:02}", (minutes / 60) % 24, minutes % 60)
}

/// One chat message, for [`chat_line`].
#[derive(Debug, Clone, Copy)]
pub struct ChatLineView<'a> {
    /// Unix time in milliseconds; shown as UTC `HH:MM`.
    pub time_ms: u64,
    /// A direct message rather than the public room.
    pub private: bool,
    /// Sent by us.
    pub outgoing: bool,
    /// The author's nickname (our own for outgoing lines). Untrusted.
    pub author_nick: &'a str,
    /// Start of the author's fingerprint, shown when nicknames collide.
    pub author_fp_suffix: Option<&'a str>,
    /// For an outgoing private message: the recipient's nickname.
    pub counterpart_nick: Option<&'a str>,
    /// For an outgoing private message: the recipient's fingerprint
    /// start, shown when nicknames collide.
    pub counterpart_fp_suffix: Option<&'a str>,
    /// Trust of the peer named on the line: the author of an incoming
    /// message, the recipient of an outgoing private one, and
    /// [`TrustState::Local`] for our own public messages.
    pub trust: TrustState,
    /// Our own messages: pending or delivered. Ignored when `None`.
    pub delivery: Option<DeliveryMark>,
    /// Our own room messages in a listing: how many peers have it, shown
    /// after the delivery mark.
    pub delivered_to: Option<usize>,
    /// The room, `#name`, when the line is not in the room being viewed.
    pub room: Option<&'a str>,
    /// The message's short id (listings), for `/info`.
    pub id_tag: Option<&'a str>,
    /// Colour of the peer named on the line (see [`color_seed`]).
    pub color_seed: u64,
    /// The message text. Untrusted.
    pub text: &'a str,
}

/// Renders a chat message:
///
/// ```text
/// 14:03 ✓ alice: hello
/// 14:03 ? bob#K3QF: hi
/// 14:04 · me: see you …
/// 14:05 [pm from ✓ alice] secret
///         second line of the secret
/// 14:05 [pm to ? bob] reply ✓✓
/// ```
pub fn chat_line(style: &Style, v: &ChatLineView) -> String {
    let mut time = style.paint(DIM, &hhmm(v.time_ms));
    if let Some(id) = v.id_tag {
        time.push(' ');
        time.push_str(&style.paint(DIM, id));
    }
    if let Some(room) = v.room {
        time.push(' ');
        time.push_str(&style.paint(BOLD, room));
    }
    let header = if v.private {
        let (dir, nick, suffix) = if v.outgoing {
            (
                "to",
                v.counterpart_nick.unwrap_or("?"),
                v.counterpart_fp_suffix,
            )
        } else {
            ("from", v.author_nick, v.author_fp_suffix)
        };
        format!(
            "{} {} {}{}",
            style.paint(PM, &format!("[pm {dir}")),
            style.paint(v.trust.sgr(), v.trust.symbol()),
            name(style, nick, suffix, v.color_seed, false),
            style.paint(PM, "]")
        )
    } else {
        let own = v.outgoing;
        format!(
            "{} {}:",
            style.paint(v.trust.sgr(), v.trust.symbol()),
            name(style, v.author_nick, v.author_fp_suffix, v.color_seed, own)
        )
    };
    let mut out = format!("{time} {header}");
    let text = sanitize_text(v.text);
    let mut previous_blank = false;
    for (i, line) in text.trim_end().lines().enumerate() {
        let blank = line.trim().is_empty();
        if i == 0 {
            out.push(' ');
            out.push_str(&isolate(style, line));
        } else if blank && previous_blank {
            continue; // collapse runs of empty lines
        } else {
            out.push('\n');
            if !blank {
                out.push_str(CONTINUATION_INDENT);
                out.push_str(&isolate(style, line));
            }
        }
        previous_blank = blank;
    }
    if let (true, Some(delivery)) = (v.outgoing, v.delivery) {
        let sgr = match delivery {
            DeliveryMark::Pending => DIM,
            DeliveryMark::Delivered => GREEN,
        };
        out.push(' ');
        out.push_str(&style.paint(sgr, delivery.symbol()));
        if let Some(n) = v.delivered_to.filter(|n| *n > 0) {
            out.push_str(&style.paint(sgr, &n.to_string()));
        }
    }
    out
}

/// A sanitised nickname, with its fingerprint suffix if given, coloured.
/// First strong isolate … pop directional isolate: untrusted text between
/// them cannot reorder what is around it on a bidi-aware terminal (an
/// Arabic or Hebrew nickname cannot pull the time, the trust mark or the
/// text across). The sanitiser has removed every bidi control from the text
/// itself, so the pair is always balanced; terminals draw neither.
pub fn isolate(style: &Style, s: &str) -> String {
    if style.isolate {
        format!("\u{2068}{s}\u{2069}")
    } else {
        s.to_owned()
    }
}

fn name(style: &Style, nick: &str, fp_suffix: Option<&str>, seed: u64, own: bool) -> String {
    let nick = isolate(style, &sanitize_nick(nick));
    let sgr = if own { BOLD } else { peer_sgr(seed) };
    let mut out = style.paint(sgr, &nick);
    if let Some(suffix) = fp_suffix {
        let suffix: String = sanitize_line(suffix).split_whitespace().collect();
        if !suffix.is_empty() {
            out.push_str(&style.paint(DIM, &format!("#{suffix}")));
        }
    }
    out
}

/// One row of the `/peers` table.
#[derive(Debug, Clone, Copy)]
pub struct PeerRowView<'a> {
    pub nick: &'a str,
    /// Short fingerprint, e.g. `K3QF-7XNA`.
    pub fingerprint_short: &'a str,
    pub trust: TrustState,
    /// Link state in words, e.g. `connected`, `connecting`, `offline`.
    pub link: &'a str,
    /// How the link travels: `lan`, `direct`, `relayed`, or `-`.
    pub path: &'a str,
    /// Last known address, or empty.
    pub address: &'a str,
    pub color_seed: u64,
}

/// The `/peers` table: a header and one aligned row per peer, or a line
/// saying there are none.
pub fn peer_table(style: &Style, rows: &[PeerRowView]) -> String {
    if rows.is_empty() {
        return info(
            style,
            "no peers known yet (waiting for discovery; try /connect host:port)",
        );
    }
    let header = ["NAME", "FINGERPRINT", "TRUST", "LINK", "PATH", "ADDRESS"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let address = sanitize_line(r.address);
            [
                sanitize_nick(r.nick),
                sanitize_line(r.fingerprint_short),
                r.trust.label().to_owned(),
                sanitize_line(r.link),
                sanitize_line(r.path),
                if address.trim().is_empty() {
                    "-".to_owned()
                } else {
                    address
                },
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut lines = Vec::with_capacity(rows.len() + 1);
    let head: Vec<String> = header.iter().zip(widths).map(|(h, w)| pad(h, w)).collect();
    lines.push(style.paint(BOLD, head.join("  ").trim_end()));
    for (row, view) in cells.iter().zip(rows) {
        let sgrs = [peer_sgr(view.color_seed), DIM, view.trust.sgr(), "", "", ""];
        let last = row.len() - 1;
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .zip(sgrs)
            .enumerate()
            .map(|(i, ((cell, w), sgr))| {
                // Pad outside the colour so alignment ignores escape codes.
                let padding = if i == last {
                    0
                } else {
                    w.saturating_sub(cell.chars().count())
                };
                format!("{}{}", paint_opt(style, sgr, cell), " ".repeat(padding))
            })
            .collect();
        lines.push(line.join("  ").trim_end().to_owned());
    }
    lines.join("\n")
}

fn pad(s: &str, width: usize) -> String {
    format!("{s:<width$}")
}

fn paint_opt(style: &Style, sgr: &str, s: &str) -> String {
    if sgr.is_empty() {
        s.to_owned()
    } else {
        style.paint(sgr, s)
    }
}

/// How loud a system line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// A line from natter itself rather than a peer: `-!- ` then the message.
/// Warnings say `WARNING:` and errors `error:`, so they stand out without
/// colour too. The message is sanitised (it may quote a nickname);
/// continuation lines are indented.
pub fn system_line(style: &Style, level: Level, msg: &str) -> String {
    let text = sanitize_text(msg);
    let text = text.trim_end();
    let (prefix, sgr) = match level {
        Level::Info => ("-!- ", CYAN),
        Level::Warning => ("-!- WARNING: ", YELLOW_BOLD),
        Level::Error => ("-!- error: ", RED_BOLD),
    };
    let mut out = String::new();
    for (i, line) in text.split('\n').enumerate() {
        if i == 0 {
            out.push_str(&style.paint(sgr, prefix.trim_end()));
            out.push(' ');
            let body_sgr = if level == Level::Info { "" } else { sgr };
            out.push_str(&paint_opt(style, body_sgr, line));
        } else {
            out.push('\n');
            if !line.trim().is_empty() {
                out.push_str(SYSTEM_INDENT);
                out.push_str(line);
            }
        }
    }
    out.trim_end().to_owned()
}

/// [`system_line`] at [`Level::Info`].
pub fn info(style: &Style, msg: &str) -> String {
    system_line(style, Level::Info, msg)
}

/// [`system_line`] at [`Level::Warning`].
pub fn warning(style: &Style, msg: &str) -> String {
    system_line(style, Level::Warning, msg)
}

/// [`system_line`] at [`Level::Error`].
pub fn error(style: &Style, msg: &str) -> String {
    system_line(style, Level::Error, msg)
}

/// The warning shown when a known nickname arrives with a different key.
/// `new_peer_ref` is what the user types to name the new key (normally a
/// fingerprint prefix, since the nickname is now ambiguous).
pub fn key_change_warning(
    style: &Style,
    nick: &str,
    old_fp_short: &str,
    new_fp_short: &str,
    new_peer_ref: &str,
) -> String {
    let nick = sanitize_nick(nick);
    let peer_ref: String = sanitize_line(new_peer_ref).split_whitespace().collect();
    warning(
        style,
        &format!(
            "a peer calling itself \"{nick}\" has a DIFFERENT KEY than the {nick} you know\n\
             known key: {}\n\
             new key:   {}\n\
             It is shown as a separate peer marked ! and your earlier trust does not\n\
             carry over. It may be {nick} on a new device, or someone else. Ask {nick}\n\
             in person, then /verify {peer_ref}.",
            sanitize_line(old_fp_short),
            sanitize_line(new_fp_short),
        ),
    )
}

/// What `/verify` shows.
#[derive(Debug, Clone, Copy)]
pub struct VerifyView<'a> {
    pub own_nick: &'a str,
    pub own_fingerprint: &'a str,
    pub peer_nick: &'a str,
    pub peer_fingerprint: &'a str,
    /// Digits; any spacing is ignored and regrouped in fives.
    pub safety_number: &'a str,
    /// Current trust of the peer.
    pub trust: TrustState,
    /// What the user types to name the peer in `/trust` (its nickname, or a
    /// fingerprint prefix when nicknames collide).
    pub peer_ref: &'a str,
    pub color_seed: u64,
}

/// The `/verify` block: both fingerprints in groups of four, the safety
/// number in groups of five digits (four groups a row), and what to do.
pub fn verify_block(style: &Style, v: &VerifyView) -> String {
    let own_nick = sanitize_nick(v.own_nick);
    let peer_nick = sanitize_nick(v.peer_nick);
    let peer_ref: String = sanitize_line(v.peer_ref).split_whitespace().collect();
    let peer_ref = if peer_ref.is_empty() {
        peer_nick.clone()
    } else {
        peer_ref
    };
    let own_fp = group(&sanitize_line(v.own_fingerprint), 4, 8);
    let peer_fp = group(&sanitize_line(v.peer_fingerprint), 4, 8);
    let safety = group(&sanitize_line(v.safety_number), 5, 4);
    // Paint each line on its own so no colour spans a line break.
    let indent = |block: &str, sgr: &str| {
        block
            .lines()
            .map(|l| format!("      {}", paint_opt(style, sgr, l)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut out = Vec::new();
    out.push(format!(
        "{} {} {}",
        style.paint(CYAN, "-!-"),
        style.paint(BOLD, "Verify"),
        style.paint(peer_sgr(v.color_seed), &peer_nick)
    ));
    out.push(format!(
        "    status: {}",
        style.paint(v.trust.sgr(), v.trust.label())
    ));
    out.push(format!("    your fingerprint ({own_nick}):"));
    out.push(indent(&own_fp, ""));
    out.push(format!("    {peer_nick}'s fingerprint:"));
    out.push(indent(&peer_fp, BOLD));
    out.push("    safety number (the same on both sides):".to_owned());
    out.push(indent(&safety, BOLD));
    out.push(format!(
        "    Compare with {peer_nick} in person, or read it aloud on a call where you\n    \
         recognise their voice; not by chat. If every digit matches, have {peer_nick}\n    \
         read their fingerprint to you and type it:\n    \
         /trust {peer_ref} <fingerprint>\n    \
         If anything differs, do not trust: someone may be in between."
    ));
    out.join("\n")
}

/// Groups the characters of `s` (spaces and dashes removed) into groups of
/// `size`, `per_row` groups a row.
fn group(s: &str, size: usize, per_row: usize) -> String {
    let chars: Vec<char> = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let groups: Vec<String> = chars
        .chunks(size.max(1))
        .map(|g| g.iter().collect())
        .collect();
    groups
        .chunks(per_row.max(1))
        .map(|row| row.join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::testutil::{assert_inert, random_line, Rng};

    const COLOR: Style = Style {
        color: true,
        isolate: false,
    };

    const HOSTILE: &[&str] = &[
        "\u{1b}[2J",
        "\u{1b}]0;title\u{7}",
        "\u{1b}]52;c;SGVsbG8=\u{7}",
        "\u{9b}31m",
        "abc\u{202e}fed",
        "a\u{200d}b",
        "nul\0",
        "\u{1b}P+q\u{1b}\\",
        "\r\u{1b}[1A\u{1b}[2K12:00 ✓ bank: send money",
    ];

    /// Removes the colour codes this module emits: `ESC [ digits/; m`.
    fn strip_sgr(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("\x1b[") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let end = after
                .find(|c: char| !(c.is_ascii_digit() || c == ';'))
                .unwrap_or(after.len());
            if after[end..].starts_with('m') {
                rest = &after[end + 1..];
            } else {
                // Not ours: keep it so the caller's check fails.
                out.push_str("\x1b[");
                rest = after;
            }
        }
        out.push_str(rest);
        out
    }

    /// No ESC, no C0 other than `\n`, no DEL/C1, no bidi or zero-width.
    fn assert_clean(s: &str) {
        assert_inert(s, true);
    }

    /// The line as these tests compare it: without the isolates, which
    /// `untrusted_fields_are_isolated` checks on their own.
    fn chat_line(style: &Style, v: &ChatLineView) -> String {
        super::chat_line(style, v).replace(['\u{2068}', '\u{2069}'], "")
    }

    /// Each untrusted field is wrapped in a balanced isolate, so
    /// right-to-left text cannot reorder the line around it.
    #[test]
    fn untrusted_fields_are_isolated() {
        // A terminal without colour: isolates, no escapes.
        let style = Style::decide(true, Some(OsStr::new("1")));
        let rtl = "\u{5e9}\u{5dc}\u{5d5}\u{5dd}";
        let line = super::chat_line(&style, &view(rtl, "abc \u{5e9} 123\nsecond line"));
        assert!(line.contains(&format!("\u{2068}{rtl}\u{2069}")), "{line:?}");
        assert!(line.contains("\u{2068}abc \u{5e9} 123\u{2069}"), "{line:?}");
        assert!(line.contains("\u{2068}second line\u{2069}"), "{line:?}");
        for l in line.lines() {
            assert_eq!(
                l.matches('\u{2068}').count(),
                l.matches('\u{2069}').count(),
                "{l:?}"
            );
        }
        // A hostile field's own bidi controls never reach the line.
        let hostile = super::chat_line(&style, &view("a\u{2069}\u{202e}b", "x\u{2066}y"));
        assert_eq!(hostile.matches('\u{2069}').count(), 2, "{hostile:?}");
        assert!(!hostile.contains(['\u{202e}', '\u{2066}']), "{hostile:?}");
        // Not a terminal (line mode for scripts): the text as it is.
        let piped = super::chat_line(&Style::decide(false, None), &view(rtl, "x"));
        assert!(!piped.contains(['\u{2068}', '\u{2069}']), "{piped:?}");
    }

    fn view<'a>(nick: &'a str, text: &'a str) -> ChatLineView<'a> {
        ChatLineView {
            time_ms: 14 * 3_600_000 + 3 * 60_000 + 59_999,
            private: false,
            outgoing: false,
            author_nick: nick,
            author_fp_suffix: None,
            counterpart_nick: None,
            counterpart_fp_suffix: None,
            trust: TrustState::Verified,
            delivery: None,
            delivered_to: None,
            room: None,
            id_tag: None,
            color_seed: 7,
            text,
        }
    }

    #[test]
    fn style_decision() {
        assert!(Style::decide(true, None).color);
        assert!(!Style::decide(false, None).color);
        assert!(!Style::decide(true, Some(OsStr::new("1"))).color);
        assert!(
            !Style::decide(true, Some(OsStr::new("0"))).color,
            "any non-empty value disables colour"
        );
        assert!(
            Style::decide(true, Some(OsStr::new(""))).color,
            "empty NO_COLOR is ignored"
        );
        assert!(!Style::decide(false, Some(OsStr::new(""))).color);
    }

    #[test]
    fn time_is_utc_hh_mm() {
        assert_eq!(hhmm(0), "00:00");
        assert_eq!(hhmm(14 * 3_600_000 + 3 * 60_000 + 59_999), "14:03");
        assert_eq!(
            hhmm(86_400_000 * 365 + 23 * 3_600_000 + 59 * 60_000),
            "23:59"
        );
    }

    #[test]
    fn public_lines_show_trust_without_colour() {
        let p = Style::PLAIN;
        assert_eq!(
            chat_line(&p, &view("alice", "hello")),
            "14:03 ✓ alice: hello"
        );
        let v = ChatLineView {
            trust: TrustState::Unverified,
            author_fp_suffix: Some("K3QF"),
            ..view("bob", "hi")
        };
        assert_eq!(chat_line(&p, &v), "14:03 ? bob#K3QF: hi");
        let v = ChatLineView {
            trust: TrustState::KeyChanged,
            ..view("carol", "trust me")
        };
        assert_eq!(chat_line(&p, &v), "14:03 ! carol: trust me");
    }

    #[test]
    fn own_lines_show_delivery() {
        let p = Style::PLAIN;
        let mine = ChatLineView {
            outgoing: true,
            trust: TrustState::Local,
            delivery: Some(DeliveryMark::Pending),
            ..view("me", "see you")
        };
        assert_eq!(chat_line(&p, &mine), "14:03 · me: see you …");
        let done = ChatLineView {
            delivery: Some(DeliveryMark::Delivered),
            ..mine
        };
        assert_eq!(chat_line(&p, &done), "14:03 · me: see you ✓✓");
        // Delivery is never shown on someone else's line.
        let theirs = ChatLineView {
            delivery: Some(DeliveryMark::Delivered),
            ..view("alice", "x")
        };
        assert_eq!(chat_line(&p, &theirs), "14:03 ✓ alice: x");
    }

    #[test]
    fn private_lines() {
        let p = Style::PLAIN;
        let from = ChatLineView {
            private: true,
            ..view("alice", "secret")
        };
        assert_eq!(chat_line(&p, &from), "14:03 [pm from ✓ alice] secret");
        let to = ChatLineView {
            private: true,
            outgoing: true,
            author_nick: "me",
            counterpart_nick: Some("bob"),
            counterpart_fp_suffix: Some("AB12"),
            trust: TrustState::Unverified,
            delivery: Some(DeliveryMark::Delivered),
            ..view("me", "reply")
        };
        assert_eq!(chat_line(&p, &to), "14:03 [pm to ? bob#AB12] reply ✓✓");
        let c = chat_line(&COLOR, &from);
        assert!(c.contains("\x1b[1;35m[pm from\x1b[0m"), "{c:?}");
    }

    #[test]
    fn multi_line_text_is_indented() {
        let v = ChatLineView {
            outgoing: true,
            delivery: Some(DeliveryMark::Pending),
            ..view("alice", "one\r\ntwo\n\n\n\nthree\n\n")
        };
        assert_eq!(
            chat_line(&Style::PLAIN, &v),
            format!("14:03 ✓ alice: one\n{CONTINUATION_INDENT}two\n\n{CONTINUATION_INDENT}three …")
        );
        // A peer cannot fake a header line from someone else.
        let fake = chat_line(&Style::PLAIN, &view("mallory", "hi\n14:04 ✓ bank: pay now"));
        for line in fake.lines().skip(1) {
            assert!(line.starts_with(CONTINUATION_INDENT), "{line:?}");
        }
    }

    #[test]
    fn hostile_strings_are_inert_in_every_renderer() {
        for style in [Style::PLAIN, COLOR] {
            for h in HOSTILE {
                let mut outputs = vec![
                    chat_line(&style, &view(h, h)),
                    chat_line(
                        &style,
                        &ChatLineView {
                            author_fp_suffix: Some(h),
                            ..view(h, h)
                        },
                    ),
                    chat_line(
                        &style,
                        &ChatLineView {
                            private: true,
                            outgoing: true,
                            counterpart_nick: Some(h),
                            counterpart_fp_suffix: Some(h),
                            ..view(h, h)
                        },
                    ),
                    peer_table(
                        &style,
                        &[PeerRowView {
                            nick: h,
                            fingerprint_short: h,
                            trust: TrustState::Unverified,
                            link: h,
                            path: h,
                            address: h,
                            color_seed: 1,
                        }],
                    ),
                    info(&style, h),
                    warning(&style, h),
                    error(&style, h),
                    key_change_warning(&style, h, h, h, h),
                    verify_block(
                        &style,
                        &VerifyView {
                            own_nick: h,
                            own_fingerprint: h,
                            peer_nick: h,
                            peer_fingerprint: h,
                            safety_number: h,
                            trust: TrustState::Unverified,
                            peer_ref: h,
                            color_seed: 3,
                        },
                    ),
                ];
                outputs.push(legend());
                for out in outputs {
                    if style.color {
                        assert_clean(&strip_sgr(&out));
                    } else {
                        assert!(!out.contains('\u{1b}'), "{out:?}");
                        assert_clean(&out);
                    }
                }
            }
        }
    }

    #[test]
    fn no_color_has_no_escape_but_keeps_marks() {
        for trust in [
            TrustState::Verified,
            TrustState::Unverified,
            TrustState::KeyChanged,
            TrustState::Local,
        ] {
            let out = chat_line(
                &Style::PLAIN,
                &ChatLineView {
                    trust,
                    ..view("alice", "x")
                },
            );
            assert!(!out.contains('\u{1b}'));
            assert!(
                out.contains(&format!(" {} alice:", trust.symbol())),
                "{out}"
            );
            let colored = chat_line(
                &COLOR,
                &ChatLineView {
                    trust,
                    ..view("alice", "x")
                },
            );
            assert!(colored.contains('\u{1b}'));
            assert_eq!(strip_sgr(&colored), out, "colour only adds codes");
        }
    }

    #[test]
    fn marks_are_distinct_and_in_the_legend() {
        let all = [
            TrustState::Verified,
            TrustState::Unverified,
            TrustState::KeyChanged,
            TrustState::Local,
        ];
        let legend = legend();
        for (i, a) in all.iter().enumerate() {
            assert!(legend.contains(&format!("  {}  ", a.symbol())), "{a:?}");
            for b in &all[i + 1..] {
                assert_ne!(a.symbol(), b.symbol());
            }
        }
        assert!(legend.contains(DeliveryMark::Pending.symbol()));
        assert!(legend.contains(DeliveryMark::Delivered.symbol()));
    }

    #[test]
    fn peer_colours_are_stable_and_spread() {
        assert_eq!(
            peer_sgr(color_seed(b"alice-key")),
            peer_sgr(color_seed(b"alice-key"))
        );
        let used: std::collections::HashSet<&str> = (0u64..64)
            .map(|i| peer_sgr(color_seed(&i.to_le_bytes())))
            .collect();
        assert!(used.len() >= PALETTE.len() - 1, "{used:?}");
        for sgr in PALETTE {
            assert!(
                !sgr.contains("31")
                    && !sgr.contains("35")
                    && !sgr.contains("91")
                    && !sgr.contains("95")
            );
        }
        let a = chat_line(
            &COLOR,
            &ChatLineView {
                color_seed: color_seed(b"a"),
                ..view("x", "y")
            },
        );
        assert!(
            a.contains(&format!("\x1b[{}mx\x1b[0m", peer_sgr(color_seed(b"a")))),
            "{a:?}"
        );
    }

    #[test]
    fn peer_table_aligns() {
        let rows = [
            PeerRowView {
                nick: "alice",
                fingerprint_short: "K3QF-7XNA",
                trust: TrustState::Verified,
                link: "connected",
                path: "lan",
                address: "192.168.1.7:47474",
                color_seed: 1,
            },
            PeerRowView {
                nick: "bob",
                fingerprint_short: "ZZ2A-9QWE",
                trust: TrustState::KeyChanged,
                link: "offline",
                path: "-",
                address: "",
                color_seed: 2,
            },
        ];
        let plain = peer_table(&Style::PLAIN, &rows);
        let lines: Vec<&str> = plain.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            "NAME   FINGERPRINT  TRUST          LINK       PATH  ADDRESS"
        );
        assert_eq!(
            lines[1],
            "alice  K3QF-7XNA    ✓ verified     connected  lan   192.168.1.7:47474"
        );
        assert_eq!(
            lines[2],
            "bob    ZZ2A-9QWE    ! KEY CHANGED  offline    -     -"
        );
        assert_eq!(strip_sgr(&peer_table(&COLOR, &rows)), plain);
        assert!(peer_table(&Style::PLAIN, &[]).starts_with("-!- no peers"));
    }

    #[test]
    fn system_lines() {
        let p = Style::PLAIN;
        assert_eq!(info(&p, "connected to alice"), "-!- connected to alice");
        assert_eq!(warning(&p, "careful"), "-!- WARNING: careful");
        assert_eq!(
            error(&p, "missing argument <text>\nusage: /msg <peer> <text>"),
            "-!- error: missing argument <text>\n    usage: /msg <peer> <text>"
        );
        assert!(warning(&COLOR, "x").contains("\x1b[1;33m"));
        let k = key_change_warning(&p, "alice", "K3QF-7XNA", "ZZ2A-9QWE", "ZZ2A");
        assert!(k.starts_with("-!- WARNING: "), "{k}");
        assert!(
            k.contains("K3QF-7XNA") && k.contains("ZZ2A-9QWE") && k.contains("/verify ZZ2A"),
            "{k}"
        );
        for line in k.lines().skip(1) {
            assert!(line.starts_with(SYSTEM_INDENT), "{line:?}");
        }
    }

    #[test]
    fn verify_block_groups() {
        let v = VerifyView {
            own_nick: "me",
            own_fingerprint: "abcdEFGHijklMNOP",
            peer_nick: "alice",
            peer_fingerprint: "QRST-UVWX YZ23 4567",
            safety_number: "123451234512345123451234512345123451234512345123451234512345",
            trust: TrustState::Unverified,
            peer_ref: "alice",
            color_seed: 0,
        };
        let out = verify_block(&Style::PLAIN, &v);
        assert!(out.contains("      abcd EFGH ijkl MNOP\n"), "{out}");
        assert!(out.contains("      QRST UVWX YZ23 4567\n"), "{out}");
        assert!(out.contains("      12345 12345 12345 12345\n      12345 12345 12345 12345\n      12345 12345 12345 12345\n"), "{out}");
        assert!(out.contains("? unverified"));
        assert!(out.contains("/trust alice"));
        assert!(out.contains("aloud") && out.contains("in person"));
        assert!(!out.contains('\u{1b}'));
        assert_eq!(strip_sgr(&verify_block(&COLOR, &v)), out);
    }

    #[test]
    fn random_input_renders_clean() {
        let mut rng = Rng::new(7);
        for _ in 0..2000 {
            let s = random_line(&mut rng);
            let v = ChatLineView {
                author_fp_suffix: Some(&s),
                ..view(&s, &s)
            };
            assert_clean(&strip_sgr(&chat_line(&COLOR, &v)));
            let plain = chat_line(&Style::PLAIN, &v);
            assert_clean(&plain);
            for line in plain.lines().skip(1) {
                assert!(
                    line.is_empty() || line.starts_with(CONTINUATION_INDENT),
                    "{line:?}"
                );
            }
        }
    }
}
