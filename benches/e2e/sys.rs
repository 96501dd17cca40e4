//! Facts about the machine and this process, from /proc (Linux). Each
//! returns `None` where /proc is unavailable.

/// The CPU model from /proc/cpuinfo.
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

/// The 1-minute load average from /proc/loadavg. Printed in the header:
/// figures taken on a busy machine are not worth comparing.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time (user + system, all threads) this process has used, in seconds,
/// from /proc/self/stat (10 ms resolution: USER_HZ is 100 on Linux).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, the 12th and 13th after the name.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// CPU time (user + system) the calling thread has used, in seconds, from
/// getrusage(RUSAGE_THREAD): microseconds, where /proc counts 10 ms ticks.
pub fn thread_cpu_seconds() -> Option<f64> {
    use nix::sys::resource::{getrusage, UsageWho};
    use nix::sys::time::TimeVal;
    let u = getrusage(UsageWho::RUSAGE_THREAD).ok()?;
    let secs = |t: TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Some(secs(u.user_time()) + secs(u.system_time()))
}
