//! Progress bars for file transfers in the interactive front end.
//!
//! One line per running transfer, redrawn in place above the prompt:
//!
//! ```text
//! ⇣ [1a2b3c4d] big.iso  ▕██████▌       ▏  47%  1.2 GiB / 2.5 GiB  118.4 MiB/s  ETA 0:11
//! ```
//!
//! Why not indicatif: it draws on the terminal itself (cursor moves and
//! redraws on its own schedule), which fights rustyline for the cursor and
//! breaks the line being typed. Here the bars are plain text handed to
//! rustyline's `ExternalPrinter` like every other line; the printer moves
//! up over the previous bars only when nothing else was printed since
//! (`Printer::show_progress` in `interactive.rs`), so events are never
//! overwritten and the half-typed line is redrawn intact.

use super::frontend::human_bytes;
use super::sanitize::sanitize_line;
use natter_core::event::TransferView;
use natter_core::files::short_id;
use natter_core::wire::frame::TransferId;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Width of the bar, in cells.
const BAR_CELLS: usize = 20;
/// Longest name shown on a bar, in characters.
const NAME_CHARS: usize = 24;

/// The rate is the bytes moved over about this much time.
const RATE_WINDOW: Duration = Duration::from_secs(2);
/// No rate is shown until the samples span this much: progress events
/// reach the front end in bunches (a busy node thread, a busy printer), so
/// two taken a millisecond apart can say 1 GiB/s of a 300 MiB/s transfer.
const RATE_MIN_SPAN: Duration = Duration::from_millis(500);

#[derive(Debug)]
struct Bar {
    view: TransferView,
    /// When `view.done` changed, and to what, over the last
    /// [`RATE_WINDOW`] (and the sample just before it), oldest first.
    samples: VecDeque<(Instant, u64)>,
}

impl Bar {
    /// Bytes per second over the window, once it spans enough time.
    fn rate(&self) -> Option<f64> {
        let (&(t0, d0), &(t1, d1)) = (self.samples.front()?, self.samples.back()?);
        let span = t1.saturating_duration_since(t0);
        (span >= RATE_MIN_SPAN && d1 > d0).then(|| (d1 - d0) as f64 / span.as_secs_f64())
    }
}

/// The transfers running now, by id.
#[derive(Debug, Default)]
pub struct Board {
    bars: BTreeMap<(TransferId, bool), Bar>,
}

impl Board {
    /// A transfer moved on (or started).
    pub fn update(&mut self, now: Instant, view: &TransferView) {
        let bar = self
            .bars
            .entry((view.id, view.outgoing))
            .or_insert_with(|| Bar {
                view: view.clone(),
                samples: VecDeque::new(),
            });
        if bar.samples.back().is_none_or(|&(_, done)| view.done > done) {
            bar.samples.push_back((now, view.done));
        }
        // Keep one sample at or before the window's start, so the span
        // covers the whole window.
        while bar.samples.len() > 2
            && bar
                .samples
                .get(1)
                .is_some_and(|&(t, _)| now.saturating_duration_since(t) >= RATE_WINDOW)
        {
            bar.samples.pop_front();
        }
        bar.view = view.clone();
    }

    /// A transfer is over: its bar goes.
    pub fn remove(&mut self, view: &TransferView) {
        self.bars.remove(&(view.id, view.outgoing));
    }

    pub fn is_empty(&self) -> bool {
        self.bars.is_empty()
    }

    /// One line per transfer.
    pub fn render(&self) -> Vec<String> {
        self.bars.values().map(render_bar).collect()
    }
}

fn render_bar(bar: &Bar) -> String {
    let v = &bar.view;
    let fraction = if v.size == 0 {
        1.0
    } else {
        (v.done as f64 / v.size as f64).clamp(0.0, 1.0)
    };
    let eighths = (fraction * (BAR_CELLS * 8) as f64).round() as usize;
    let mut cells = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) && cells.chars().count() < BAR_CELLS {
        cells.push([' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'][eighths % 8]);
    }
    let pad = BAR_CELLS.saturating_sub(cells.chars().count());
    let name: String = sanitize_line(&v.name).chars().take(NAME_CHARS).collect();
    let (rate, eta) = match bar.rate() {
        Some(r) => (
            format!("{}/s", human_bytes(r as u64)),
            eta(Duration::from_secs_f64(
                v.size.saturating_sub(v.done) as f64 / r,
            )),
        ),
        None => ("–".to_owned(), "–".to_owned()),
    };
    format!(
        "{} [{}] {name}  ▕{cells}{}▏ {:>3}%  {} / {}  {rate}  ETA {eta}",
        if v.outgoing { "⇡" } else { "⇣" },
        short_id(&v.id),
        " ".repeat(pad),
        (fraction * 100.0) as u64,
        human_bytes(v.done),
        human_bytes(v.size),
    )
}

/// `0:07`, `12:30`, `1:02:03`.
fn eta(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::event::{LinkState, PeerInfo};
    use natter_core::files::TransferState;
    use natter_core::identity::IdentityKey;
    use natter_core::trust::TrustState;

    fn view(done: u64, name: &str) -> TransferView {
        TransferView {
            id: [0xab; 16],
            peer: PeerInfo {
                identity: IdentityKey([1; 32]),
                nickname: "bob".into(),
                state: LinkState::Established,
                addr: None,
                trust: TrustState::Verified,
                path: None,
            },
            outgoing: false,
            name: name.into(),
            size: 100 << 20,
            root: [0; 32],
            state: TransferState::Active,
            done,
            path: None,
        }
    }

    #[test]
    fn a_bar_shows_fraction_bytes_rate_and_eta() {
        let t0 = Instant::now();
        let mut b = Board::default();
        b.update(t0, &view(0, "big.iso"));
        b.update(t0 + Duration::from_secs(1), &view(50 << 20, "big.iso"));
        let lines = b.render();
        assert_eq!(lines.len(), 1);
        let l = &lines[0];
        assert!(l.starts_with("⇣ [abababab] big.iso"), "{l}");
        assert!(l.contains(" 50%"), "{l}");
        assert!(l.contains("50.0 MiB / 100.0 MiB"), "{l}");
        assert!(l.contains("50.0 MiB/s"), "{l}");
        assert!(l.contains("ETA 0:01"), "{l}");
        assert_eq!(l.matches('█').count(), 10, "{l}");
        b.remove(&view(0, "big.iso"));
        assert!(b.is_empty());
    }

    #[test]
    fn bunched_events_do_not_make_up_a_rate() {
        // 10 MiB/s for 3 s, each second's events arriving together.
        let t0 = Instant::now();
        let mut b = Board::default();
        b.update(t0, &view(0, "f"));
        let ms = |n| t0 + Duration::from_millis(n);
        b.update(ms(1), &view(1 << 20, "f"));
        assert!(b.render()[0].contains("–  ETA –"), "no rate from 1 ms");
        for s in 1..=3u64 {
            b.update(ms(s * 1000), &view((s * 10 - 1) << 20, "f"));
            b.update(ms(s * 1000 + 1), &view((s * 10) << 20, "f"));
        }
        let r = b.bars.values().next().and_then(Bar::rate).unwrap_or(0.0);
        let mib = r / f64::from(1 << 20);
        assert!((9.0..11.0).contains(&mib), "{mib} MiB/s");
        // The window moved on: the first second's samples are gone.
        let oldest = b.bars.values().find_map(|bar| bar.samples.front().copied());
        assert_eq!(oldest, Some((ms(1001), 10 << 20)));
    }

    #[test]
    fn hostile_names_are_inert_and_short() {
        let mut b = Board::default();
        let name = format!("\u{1b}]0;owned\u{7}{}", "x".repeat(100));
        b.update(Instant::now(), &view(0, &name));
        let l = &b.render()[0];
        assert!(!l.contains('\u{1b}') && !l.contains('\u{7}'), "{l:?}");
        assert!(l.chars().count() < 120, "{l}");
    }

    #[test]
    fn eta_reads_like_a_clock() {
        assert_eq!(eta(Duration::from_secs(7)), "0:07");
        assert_eq!(eta(Duration::from_secs(750)), "12:30");
        assert_eq!(eta(Duration::from_secs(3723)), "1:02:03");
    }
}
