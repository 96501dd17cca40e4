//! Small statistics helpers: percentiles of latency samples and the
//! median/spread of repeated throughput runs.

use std::time::{Duration, Instant};

use crate::sys;

/// Summary of a set of latency samples (one per round trip).
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub n: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub min: Duration,
    pub max: Duration,
}

impl Latency {
    /// Summarises `samples`; returns `None` when there are none.
    pub fn from_samples(mut samples: Vec<Duration>) -> Option<Latency> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        Some(Latency {
            n: samples.len(),
            p50: percentile(&samples, 50.0),
            p99: percentile(&samples, 99.0),
            min: samples[0],
            max: samples[samples.len() - 1],
        })
    }
}

/// Nearest-rank percentile of an ascending, non-empty slice (`p` in 0..=100).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    assert!(!sorted.is_empty(), "percentile of no samples");
    let p = p.clamp(0.0, 100.0);
    // Nearest rank: the smallest value with at least p % of samples <= it.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Microseconds as a float, for reporting.
pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The result of repeating a throughput measurement several times.
#[derive(Clone, Copy, Debug)]
pub struct Runs {
    pub n: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Average number of cores this process kept busy during the runs (CPU
    /// time / wall time): below what the measurement should use means other
    /// load on the machine starved it.
    pub cores: Option<f64>,
}

impl Runs {
    /// Summarises per-run values; returns `None` when there are none.
    pub fn from_values(values: &[f64]) -> Option<Runs> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_unstable_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        };
        Some(Runs {
            n: v.len(),
            median,
            min: v[0],
            max: v[v.len() - 1],
            cores: None,
        })
    }

    /// A short human description of the spread and CPU use, e.g.
    /// `median of 5, -3 %/+4 %, 1.9 cores`.
    pub fn describe(&self) -> String {
        let mut d = if self.n == 1 || self.median == 0.0 {
            format!("{} run", self.n)
        } else {
            let lo = (self.min / self.median - 1.0) * 100.0;
            let hi = (self.max / self.median - 1.0) * 100.0;
            format!("median of {}, {lo:+.0} %/{hi:+.0} %", self.n)
        };
        if let Some(c) = self.cores {
            d.push_str(&format!(", {c:.1} cores"));
        }
        d
    }
}

/// Runs `f` `runs` times (at least once) and summarises the values it
/// returns, with the cores used over all runs.
pub fn repeat<E>(runs: usize, mut f: impl FnMut() -> Result<f64, E>) -> Result<Runs, E> {
    let mut measured = repeat_interleaved(runs, &mut [&mut f])?;
    Ok(measured.rows.remove(0))
}

/// Rows measured in turn: each row's summary, and every round's values so
/// that two rows can be compared round by round.
pub struct InTurn {
    pub rows: Vec<Runs>,
    /// `values[row][round]`.
    values: Vec<Vec<f64>>,
}

impl InTurn {
    /// The summaries of the `N` rows measured, in the order given to
    /// [`repeat_interleaved`].
    pub fn summaries<const N: usize>(&self) -> anyhow::Result<[Runs; N]> {
        <[Runs; N]>::try_from(self.rows.as_slice())
            .map_err(|_| anyhow::anyhow!("{} rows measured, {N} expected", self.rows.len()))
    }

    /// The median over the rounds of row `a`'s value divided by row `b`'s
    /// in the same round. Each round's two figures were taken back to back,
    /// so a round's ratio compares the machine at one moment; the ratio of
    /// the two medians can pair a fast round of one row with a slow round
    /// of the other. `None` if `b` measured zero in a round.
    pub fn paired_ratio(&self, a: usize, b: usize) -> Option<f64> {
        let ratios: Option<Vec<f64>> = self
            .values
            .get(a)?
            .iter()
            .zip(self.values.get(b)?)
            .map(|(x, y)| (*y != 0.0).then(|| x / y))
            .collect();
        Runs::from_values(&ratios?).map(|r| r.median)
    }
}

/// Runs every measurement of `fs` once per round, in turn, for `runs`
/// rounds (at least one), and summarises each one's values with the cores
/// it used. Rows whose ratio is a target are measured this way: taken
/// minutes apart, two rows also compare the machine's load and clock at two
/// moments (a full run once put the handshake rows at 0.83-0.90 x the
/// reference where quick runs gave 0.99-1.17 x).
pub fn repeat_interleaved<E>(
    runs: usize,
    fs: &mut [&mut dyn FnMut() -> Result<f64, E>],
) -> Result<InTurn, E> {
    let mut values = vec![Vec::with_capacity(runs.max(1)); fs.len()];
    let mut cpu = vec![Some(0.0); fs.len()];
    let mut wall = vec![0.0; fs.len()];
    for _ in 0..runs.max(1) {
        for (i, f) in fs.iter_mut().enumerate() {
            let before = sys::process_cpu_seconds();
            let start = Instant::now();
            values[i].push(f()?);
            wall[i] += start.elapsed().as_secs_f64();
            cpu[i] = match (cpu[i], before, sys::process_cpu_seconds()) {
                (Some(sum), Some(b), Some(a)) => Some(sum + (a - b)),
                _ => None,
            };
        }
    }
    let rows = values
        .iter()
        .zip(cpu.iter().zip(&wall))
        .map(|(v, (cpu, wall))| {
            let mut summary = Runs::from_values(v).expect("at least one run");
            summary.cores = cpu.map(|c| c / wall);
            summary
        })
        .collect();
    Ok(InTurn { rows, values })
}
