//! Helpers shared by the tests that run the real `natter` binary on
//! loopback (127.0.0.1 only).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub type Json = serde_json::Value;

/// A natter process in line mode with JSON events.
pub struct Proc {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Json>,
}

impl Proc {
    /// Start natter with `data_dir`, `--json` and `args`.
    pub fn spawn(data_dir: &Path, args: &[&str]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--json")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("natter starts");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        Proc {
            child,
            stdin,
            lines,
        }
    }

    /// Wait for an event matching `pred`, up to `secs` seconds.
    pub fn wait_secs(&self, secs: u64, what: &str, pred: impl Fn(&Json) -> bool) -> Json {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if pred(&v) => return v,
                Ok(_) => {}
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }

    pub fn wait(&self, what: &str, pred: impl Fn(&Json) -> bool) -> Json {
        self.wait_secs(20, what, pred)
    }

    /// Every event received so far (non-blocking).
    pub fn drain(&self) -> Vec<Json> {
        self.lines.try_iter().collect()
    }

    /// Events for up to `ms` milliseconds.
    pub fn collect_for(&self, ms: u64) -> Vec<Json> {
        let deadline = Instant::now() + Duration::from_millis(ms);
        let mut out = Vec::new();
        while let Ok(v) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            out.push(v);
        }
        out
    }

    /// Type a line. Returns false if the process is gone.
    pub fn send(&mut self, line: &str) -> bool {
        match self.stdin.as_mut() {
            Some(s) => writeln!(s, "{line}").and_then(|_| s.flush()).is_ok(),
            None => false,
        }
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `/quit`, then wait for a clean exit.
    pub fn quit(&mut self) -> bool {
        self.send("/quit");
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `natter relay` and the URL it printed (killed when dropped).
pub struct RelayProc {
    child: Child,
    pub url: String,
}

impl RelayProc {
    /// Start `cmd` (a `natter relay` command line) and read its first
    /// line, `natter relay serving at URL`.
    pub fn start(mut cmd: Command) -> RelayProc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("natter relay starts");
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the relay prints its URL");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_owned();
        assert!(line.starts_with("natter relay serving at "), "{line:?}");
        RelayProc { child, url }
    }
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A UDP port free on 127.0.0.1 right now.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A temporary data directory.
pub fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let p = d.path().to_path_buf();
    (d, p)
}

/// A tiny deterministic generator for kill points, seeded from the
/// environment (`NATTER_TEST_SEED`) or the clock, and printed.
pub struct Lcg(u64);

impl Lcg {
    pub fn from_env(name: &str) -> Lcg {
        let seed = std::env::var("NATTER_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("{name}: NATTER_TEST_SEED={seed}");
        Lcg(seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}
