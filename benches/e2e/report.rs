//! The result table: a registry of named measurements, each optionally
//! compared (as a ratio) with measurements taken earlier in the same run.
//!
//! ```ignore
//! report.section("natter");
//! report.add(
//!     Measurement::new("natter encrypted bulk", gbps, "GB/s")
//!         .vs(names::REF_BULK, Target::AtLeast(1.0))
//!         .vs(names::AEAD_SEAL_MAX, Target::AtLeast(0.6)),
//! );
//! ```
//!
//! The ratio is always `value / baseline value`, so for latencies a ratio
//! below 1 is better and for rates a ratio above 1 is better; the target says
//! which way is good. Absolute targets (store+ack rate, search latency, memory
//! per peer) use `Measurement::goal`. Targets are printed, never asserted.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// One figure in the table.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// Unique name; other rows refer to it by this name.
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    /// Free text shown in the last column (spread of runs, sample count, …).
    pub note: String,
    /// Baselines to compare with, by name, each with an optional target ratio.
    pub compare: Vec<Compare>,
    /// A target for the value itself, in its own unit (e.g. ≥ 50,000 msgs/s).
    pub goal: Option<Target>,
}

/// A comparison of a row with an earlier measurement.
#[derive(Clone, Debug)]
pub struct Compare {
    pub baseline: String,
    pub target: Option<Target>,
    /// For a row measured in turn with its baseline: the median of the
    /// rounds' ratios ([`crate::stats::InTurn::paired_ratio`]), shown
    /// instead of the ratio of the two medians.
    pub in_turn: Option<f64>,
}

/// A target for `value / baseline` (in [`Measurement::vs`]) or for the value
/// itself (in [`Measurement::goal`]). Printed as met or missed; never asserted.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// The ratio should be at least this (rates: higher is better).
    AtLeast(f64),
    /// The ratio should be at most this (latencies, memory: lower is better).
    AtMost(f64),
}

impl Target {
    fn parts(self) -> (&'static str, f64) {
        match self {
            Target::AtLeast(v) => ("≥", v),
            Target::AtMost(v) => ("≤", v),
        }
    }

    fn met(self, x: f64) -> bool {
        match self {
            Target::AtLeast(t) => x >= t,
            Target::AtMost(t) => x <= t,
        }
    }
}

impl Measurement {
    pub fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Measurement {
        Measurement {
            name: name.into(),
            value,
            unit,
            note: String::new(),
            compare: Vec::new(),
            goal: None,
        }
    }

    /// Sets the note column.
    pub fn note(mut self, note: impl Into<String>) -> Measurement {
        self.note = note.into();
        self
    }

    /// Adds a ratio column entry against the measurement named `baseline`,
    /// with a target ratio.
    #[allow(dead_code, reason = "used for the natter rows added later")]
    pub fn vs(mut self, baseline: &str, target: Target) -> Measurement {
        self.compare.push(Compare {
            baseline: baseline.to_owned(),
            target: Some(target),
            in_turn: None,
        });
        self
    }

    /// [`Measurement::vs`] or [`Measurement::ratio_to`] for a row measured
    /// in turn with `baseline`, round by round: `ratio` is the median of
    /// the rounds' ratios (`None`: the two were not measured together, and
    /// the ratio of the medians is shown).
    pub fn in_turn(mut self, baseline: &str, ratio: Option<f64>, target: Option<Target>) -> Self {
        self.compare.push(Compare {
            baseline: baseline.to_owned(),
            target,
            in_turn: ratio,
        });
        self
    }

    /// Sets an absolute target for the value, in the row's unit.
    #[allow(dead_code, reason = "used for the natter rows added later")]
    pub fn goal(mut self, target: Target) -> Measurement {
        self.goal = Some(target);
        self
    }

    /// Adds a ratio column entry against `baseline`, for information only.
    pub fn ratio_to(mut self, baseline: &str) -> Measurement {
        self.compare.push(Compare {
            baseline: baseline.to_owned(),
            target: None,
            in_turn: None,
        });
        self
    }
}

enum Entry {
    Section(String),
    Row(Measurement),
}

/// The registry of everything measured in this run, in order.
#[derive(Default)]
pub struct Report {
    entries: Vec<Entry>,
}

impl Report {
    pub fn new() -> Report {
        Report::default()
    }

    /// Starts a new section (e.g. "baseline", "natter"); rows follow it.
    pub fn section(&mut self, title: &str) {
        self.entries.push(Entry::Section(title.to_owned()));
    }

    /// Adds a row. A later row with the same name replaces nothing: names
    /// should be unique, and ratios use the first row with that name.
    pub fn add(&mut self, m: Measurement) {
        self.entries.push(Entry::Row(m));
    }

    /// The measurement with this name, if it was taken in this run.
    pub fn get(&self, name: &str) -> Option<&Measurement> {
        self.entries.iter().find_map(|e| match e {
            Entry::Row(m) if m.name == name => Some(m),
            _ => None,
        })
    }

    /// Renders the table. `header` is the first line.
    pub fn render(&self, header: &str) -> String {
        let rows: Vec<(&Measurement, Vec<String>)> = self
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Row(m) => Some((m, self.ratio_cells(m))),
                Entry::Section(_) => None,
            })
            .collect();
        let w = |s: &str| s.chars().count();
        let name_w = rows
            .iter()
            .map(|(m, _)| w(&m.name))
            .chain(self.entries.iter().filter_map(|e| match e {
                Entry::Section(t) => Some(w(t)),
                Entry::Row(_) => None,
            }))
            .max()
            .unwrap_or(0)
            .max(8);
        let value_w = rows
            .iter()
            .map(|(m, _)| w(&format_value(m.value)))
            .max()
            .unwrap_or(0)
            .max(5);
        let unit_w = rows
            .iter()
            .map(|(m, _)| w(m.unit))
            .max()
            .unwrap_or(0)
            .max(4);
        let ratio_w = rows
            .iter()
            .flat_map(|(_, r)| r.iter().map(|c| w(c)))
            .max()
            .unwrap_or(0)
            .max(5);

        let mut out = String::new();
        let _ = writeln!(out, "{header}");
        let mut rows = rows.into_iter();
        for e in &self.entries {
            match e {
                Entry::Section(title) => {
                    let _ = writeln!(out);
                    let _ = writeln!(
                        out,
                        "{title:<name_w$}  {:>value_w$}  {:<unit_w$}  {:<ratio_w$}  note",
                        "value", "unit", "ratio"
                    );
                }
                Entry::Row(_) => {
                    let (m, ratios) = rows.next().expect("one rendered row per entry");
                    let first = ratios.first().map(String::as_str).unwrap_or("");
                    let line = format!(
                        "{:<name_w$}  {:>value_w$}  {:<unit_w$}  {first:<ratio_w$}  {}",
                        m.name,
                        format_value(m.value),
                        m.unit,
                        m.note
                    );
                    let _ = writeln!(out, "{}", line.trim_end());
                    for extra in ratios.iter().skip(1) {
                        let line = format!(
                            "{:<name_w$}  {:>value_w$}  {:<unit_w$}  {extra}",
                            "", "", ""
                        );
                        let _ = writeln!(out, "{}", line.trim_end());
                    }
                }
            }
        }
        out
    }

    fn ratio_cells(&self, m: &Measurement) -> Vec<String> {
        let goal = m.goal.map(|t| {
            let (sym, v) = t.parts();
            let verdict = if t.met(m.value) { "met" } else { "MISSED" };
            format!("[target {sym} {} {}: {verdict}]", format_value(v), m.unit)
        });
        m.compare
            .iter()
            .map(|c| {
                let target = |ratio: Option<f64>| match (c.target, ratio) {
                    (None, _) => String::new(),
                    (Some(t), r) => {
                        let (sym, v) = t.parts();
                        let verdict = match r {
                            Some(r) if t.met(r) => "met",
                            Some(_) => "MISSED",
                            None => "n/a",
                        };
                        format!(" [target {sym} {v:.2}: {verdict}]")
                    }
                };
                match (self.get(&c.baseline), c.in_turn) {
                    (Some(_), Some(r)) => {
                        format!("{r:.2}× {}, round by round{}", c.baseline, target(Some(r)))
                    }
                    (Some(b), None) if b.value != 0.0 => {
                        let r = m.value / b.value;
                        format!("{r:.2}× {}{}", c.baseline, target(Some(r)))
                    }
                    _ => format!("—  ({} not measured){}", c.baseline, target(None)),
                }
            })
            .chain(goal)
            .collect()
    }
}

/// Formats a value with at least three significant digits; large values are
/// printed as integers with thousands separators.
pub fn format_value(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v.abs() >= 1000.0 {
        let n = v.round() as i64;
        let digits = n.unsigned_abs().to_string();
        let mut grouped = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        if n < 0 {
            grouped.insert(0, '-');
        }
        grouped
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 || v == 0.0 {
        format!("{v:.2}")
    } else {
        // Three significant digits for small values (0.0271 GB/s).
        let decimals = (2.0 - v.abs().log10().floor()).clamp(0.0, 12.0) as usize;
        format!("{v:.decimals$}")
    }
}

/// Today's date (UTC) as `YYYY-MM-DD`, without a date crate.
pub fn today() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
