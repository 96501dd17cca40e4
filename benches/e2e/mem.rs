//! Resident memory of this process, for the "memory per idle peer" figure:
//! read it, open N idle peers, let them settle, read it again, divide.

/// Resident set size (VmRSS from /proc/self/status) in bytes, or `None`
/// where /proc is unavailable.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

/// Extracts `VmRSS:   1234 kB` from the text of /proc/<pid>/status.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let rest = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut parts = rest.split_whitespace();
    let n: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => n.checked_mul(1024),
        _ => None,
    }
}

/// Bytes per item of the growth between two readings (saturating at 0).
#[allow(
    dead_code,
    reason = "used for the natter memory-per-peer row added later"
)]
pub fn per_item(before: u64, after: u64, items: usize) -> f64 {
    if items == 0 {
        return 0.0;
    }
    after.saturating_sub(before) as f64 / items as f64
}
