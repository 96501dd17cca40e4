//! The interactive front end, driven the way a person drives it: the real
//! binary runs in a pseudo-terminal inside a private tmux server, keys are
//! typed with `send-keys`, and assertions read the screen (`capture-pane`)
//! or the raw bytes natter wrote to the terminal (`pipe-pane`).
//!
//! Every node listens on 127.0.0.1 and finds its peer with `--connect`
//! (discovery off), so nothing leaves the loopback interface.
//!
//! tmux is needed; without it these tests skip with a message, unless `CI`
//! or `NATTER_REQUIRE_TMUX` is set, in which case a missing tmux fails them.

use natter::shell as net;
use natter_core::identity::LocalIdentity;
use natter_core::node::{Command, Node, NodeConfig};
use natter_core::rng::Rng;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command as Process, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

/// How long any one wait may take; generous for a loaded two-core machine.
const WAIT: Duration = Duration::from_secs(30);

fn tmux_available() -> bool {
    let ok = Process::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let required =
            std::env::var_os("NATTER_REQUIRE_TMUX").is_some() || std::env::var_os("CI").is_some();
        assert!(!required, "tmux is required for the terminal tests");
        eprintln!("SKIPPED: tmux is not installed; the terminal tests did not run");
    }
    ok
}

/// One natter in a pseudo-terminal: a private tmux server with one pane.
struct Terminal {
    dir: tempfile::TempDir,
    data_dir: PathBuf,
}

impl Terminal {
    /// Starts natter with `args` (plus `--data-dir`) in a 120×40 terminal.
    /// Everything it writes to the terminal is also logged raw.
    fn start(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Terminal {
        let dir = tempfile::tempdir().unwrap();
        let t = Terminal {
            data_dir: data_dir.to_owned(),
            dir,
        };
        let conf = t.path("tmux.conf");
        std::fs::write(
            &conf,
            "set -g remain-on-exit on\nset -g status off\nset -g history-limit 5000\n",
        )
        .unwrap();
        // The pane waits for `go` so that the raw log misses nothing; after
        // natter exits it records the exit status and the terminal mode.
        let mut cmd = String::from("while [ ! -e go ]; do sleep 0.02; done; ");
        for (k, v) in env {
            cmd.push_str(&format!("{k}={} ", shell_quote(v)));
        }
        cmd.push_str(&shell_quote(env!("CARGO_BIN_EXE_natter")));
        cmd.push_str(" --data-dir ");
        cmd.push_str(&shell_quote(data_dir.to_str().unwrap()));
        for a in args {
            cmd.push(' ');
            cmd.push_str(&shell_quote(a));
        }
        cmd.push_str("; echo $? > status; stty -a > stty; touch done");
        std::fs::write(t.path("run.sh"), cmd).unwrap();
        t.tmux(&[
            "-f",
            conf.to_str().unwrap(),
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            "120",
            "-y",
            "40",
            "-c",
            t.dir.path().to_str().unwrap(),
            "sh run.sh",
        ]);
        let raw = t.path("raw.log");
        t.tmux(&[
            "pipe-pane",
            "-t",
            "=main:",
            "-o",
            &format!("cat >> {}", shell_quote(raw.to_str().unwrap())),
        ]);
        std::fs::write(t.path("go"), "").unwrap();
        t
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Process::new("tmux")
            .arg("-S")
            .arg(self.path("sock"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("tmux runs");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen and scrollback as text, wrapped lines joined, trailing
    /// blank lines and tmux's own notes dropped.
    fn screen(&self) -> String {
        let s = self.tmux(&["capture-pane", "-p", "-J", "-S", "-", "-t", "=main:"]);
        // tmux's own note once natter has exited (remain-on-exit).
        let s: Vec<&str> = s
            .lines()
            .filter(|l| !l.starts_with("Pane is dead"))
            .collect();
        // The bidi isolates around untrusted fields draw nothing.
        s.join("\n")
            .replace(['\u{2068}', '\u{2069}'], "")
            .trim_end()
            .to_owned()
    }

    /// The last non-blank line on the screen, trailing spaces dropped.
    fn last_line(&self) -> String {
        self.screen()
            .lines()
            .last()
            .unwrap_or_default()
            .trim_end()
            .to_owned()
    }

    /// Polls the screen until `pred` holds; panics with the screen if it
    /// does not within [`WAIT`].
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_for_text(&self, text: &str) -> String {
        self.wait_for(text, |s| s.contains(text))
    }

    fn wait_for_last_line(&self, line: &str) {
        let deadline = Instant::now() + WAIT;
        while self.last_line() != line {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for the last line {line:?}; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types `text` a key at a time, as a person does.
    fn type_text(&self, text: &str) {
        for c in text.chars() {
            self.tmux(&["send-keys", "-t", "=main:", "-l", &c.to_string()]);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Presses a key by its tmux name: `Enter`, `Tab`, `C-c`, `C-d`, `Up`.
    fn press(&self, key: &str) {
        self.tmux(&["send-keys", "-t", "=main:", key]);
    }

    /// The listening address from the startup line.
    fn listen_addr(&self) -> SocketAddr {
        let s = self.wait_for_text("listening on ");
        let rest = &s[s.find("listening on ").unwrap() + "listening on ".len()..];
        let end = rest.find(';').unwrap();
        rest[..end].parse().unwrap()
    }

    /// Waits for natter to exit; returns its exit status.
    fn wait_exit(&self) -> i32 {
        let deadline = Instant::now() + WAIT;
        while !self.path("done").exists() {
            assert!(
                Instant::now() < deadline,
                "natter did not exit; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::fs::read_to_string(self.path("status"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// The terminal mode after natter exited, as `stty -a` reports it.
    fn stty_after_exit(&self) -> String {
        std::fs::read_to_string(self.path("stty")).unwrap()
    }

    /// Everything natter wrote to the terminal, raw.
    fn raw_output(&self) -> Vec<u8> {
        std::fs::read(self.path("raw.log")).unwrap_or_default()
    }

    fn history(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("input_history")).unwrap_or_default()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Process::new("tmux")
            .arg("-S")
            .arg(self.path("sock"))
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A peer natter in line mode with JSON events (not in a terminal).
struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: std_mpsc::Receiver<serde_json::Value>,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Peer {
    fn spawn(nick: &str) -> Peer {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Process::new(env!("CARGO_BIN_EXE_natter"))
            .args(["--data-dir", dir.path().to_str().unwrap(), "--nick", nick])
            .args(["--json", "--no-discovery", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("natter starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        let mut p = Peer {
            child,
            stdin,
            lines,
            addr: "127.0.0.1:1".parse().unwrap(),
            _dir: dir,
        };
        let started = p.wait("started", |v| v["event"] == "started");
        p.addr = started["listen"].as_str().unwrap().parse().unwrap();
        p
    }

    fn wait(&self, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if pred(&v) => return v,
                Ok(_) => {}
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect_args(peer: &Peer) -> Vec<String> {
    vec![
        "--nick".into(),
        "alice".into(),
        "--no-discovery".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--connect".into(),
        peer.addr.to_string(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The one line of the screen that contains `needle`.
fn line_with<'s>(screen: &'s str, needle: &str) -> &'s str {
    let found: Vec<&str> = screen.lines().filter(|l| l.contains(needle)).collect();
    assert_eq!(found.len(), 1, "one line with {needle:?} in:\n{screen}");
    found[0].trim_end()
}

#[test]
fn events_print_above_the_line_being_typed() {
    if !tmux_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let mut bob = Peer::spawn("bob");
    let a = Terminal::start(data.path(), &strs(&connect_args(&bob)), &[]);
    a.wait_for_text("connected to bob");
    a.wait_for_last_line("[alice #lobby]>");

    a.type_text("hello wor");
    a.wait_for_last_line("[alice #lobby]> hello wor");

    // Bob renames himself while alice is in the middle of a line.
    bob.send("/nick bobby");
    let s = a.wait_for_text("is now known as");
    let renamed = line_with(&s, "is now known as");
    assert!(
        renamed.starts_with("-!- bob is now known as bobby (") && renamed.ends_with(')'),
        "{renamed:?}"
    );
    assert_eq!(a.last_line(), "[alice #lobby]> hello wor", "screen:\n{s}");

    // Then he leaves.
    bob.send("/quit");
    let s = a.wait_for_text("lost bobby");
    assert!(
        line_with(&s, "lost bobby").starts_with("-!- WARNING: lost bobby ("),
        "{s}"
    );
    assert_eq!(a.last_line(), "[alice #lobby]> hello wor", "screen:\n{s}");

    // The line is finished as if nothing had happened.
    a.type_text("ld");
    a.press("Enter");
    // The echo of the stored message is printed asynchronously, after the
    // prompt may already have been redrawn: wait for both.
    let s = a.wait_for("the finished line and its echo", |s| {
        matches!(s.lines().last(), Some(l) if l.trim_end() == "[alice #lobby]>")
            && s.contains("[alice #lobby]> hello world\n")
            && s.contains("alice: hello world")
    });
    assert_eq!(
        line_with(&s, "[alice #lobby]> hello"),
        "[alice #lobby]> hello world"
    );
    // The finished line was posted whole: natter echoes the stored message.
    let echo = line_with(&s, "alice: hello");
    assert!(echo.contains("· alice: hello world"), "{s}");

    a.press("C-d");
    assert_eq!(a.wait_exit(), 0, "screen:\n{}", a.screen());
    let history = a.history();
    assert!(history.lines().any(|l| l == "hello world"), "{history:?}");
}

/// Keys that arrive together (a paste without bracketed paste, an input
/// method committing a word, typing over a slow link) are all taken at
/// once, also while events are being printed. rustyline before 19 kept all
/// but the first key of such a burst until the next key press.
#[test]
fn a_burst_of_keys_is_not_held_back() {
    if !tmux_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let mut bob = Peer::spawn("bob");
    let a = Terminal::start(data.path(), &strs(&connect_args(&bob)), &[]);
    a.wait_for_text("connected to bob");
    a.wait_for_last_line("[alice #lobby]>");

    a.tmux(&["send-keys", "-t", "=main:", "-l", "hello wor"]);
    a.wait_for_last_line("[alice #lobby]> hello wor");
    bob.send("/nick bobby");
    a.wait_for_text("is now known as bobby");
    assert_eq!(a.last_line(), "[alice #lobby]> hello wor", "{}", a.screen());
    // The rest of the line and Enter in one burst.
    a.tmux(&["send-keys", "-t", "=main:", "-l", "ld\r"]);
    a.wait_for_text("[alice #lobby]> hello world\n");
    a.wait_for_last_line("[alice #lobby]>");
    a.tmux(&["send-keys", "-t", "=main:", "-l", "これはテストです"]);
    a.wait_for_last_line("[alice #lobby]> これはテストです");
    a.press("C-c");
    a.press("C-d");
    assert_eq!(a.wait_exit(), 0, "screen:\n{}", a.screen());
    assert!(a.history().lines().any(|l| l == "hello world"));
}

#[test]
fn tab_completes_commands_and_peer_names() {
    if !tmux_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let bob = Peer::spawn("bobcat");
    let a = Terminal::start(data.path(), &strs(&connect_args(&bob)), &[]);
    a.wait_for_text("connected to bobcat");
    a.wait_for_last_line("[alice #lobby]>");

    a.type_text("/pe");
    a.press("Tab");
    a.wait_for_last_line("[alice #lobby]> /peers");
    a.press("Enter");
    let s = a.wait_for_text("FINGERPRINT  TRUST");
    let row = line_with(&s, "? unverified");
    assert!(
        row.contains("established") && row.contains("unverified"),
        "{s}"
    );

    a.type_text("/msg bo");
    a.press("Tab");
    a.wait_for_last_line("[alice #lobby]> /msg bobcat");

    // Ctrl-C with text on the line clears the line and stays.
    a.press("C-c");
    a.wait_for_last_line("[alice #lobby]>");
    // A usage hint after a command name, not inserted by the right arrow.
    a.type_text("/msg ");
    a.wait_for_last_line("[alice #lobby]> /msg <peer> <text>");
    a.press("Right");
    a.type_text("x");
    a.wait_for_last_line("[alice #lobby]> /msg x");
    a.press("C-c");
    a.wait_for_last_line("[alice #lobby]>");

    // Ctrl-C on an empty line quits cleanly.
    a.press("C-c");
    assert_eq!(a.wait_exit(), 0, "screen:\n{}", a.screen());
    assert!(a.screen().ends_with("-!- bye"), "{}", a.screen());
}

#[test]
fn mistakes_get_one_line_of_explanation_and_usage() {
    if !tmux_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let a = Terminal::start(
        data.path(),
        &[
            "--nick",
            "alice",
            "--no-discovery",
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    a.wait_for_last_line("[alice #lobby]>");
    a.type_text("/nick");
    a.press("Enter");
    let s = a.wait_for_text("usage: /nick <name>");
    assert!(
        s.contains("-!- error: missing argument <name>\n    usage: /nick <name>\n[alice #lobby]>"),
        "{s}"
    );
    a.type_text("/pee");
    a.press("Enter");
    a.wait_for_text("did you mean /peers?");
    a.type_text("/nick carol");
    a.press("Enter");
    // The prompt follows our nickname.
    a.wait_for_last_line("[carol #lobby]>");
    // And the current room: /join makes a room current, /room switches,
    // plain text goes there; /room to a room not joined says what to do.
    a.type_text("/join #Ops");
    a.press("Enter");
    a.wait_for_text("joined #ops");
    a.wait_for_last_line("[carol #ops]>");
    a.type_text("/room #nowhere");
    a.press("Enter");
    a.wait_for_text("you are not in #nowhere: /join #nowhere first");
    a.type_text("/room #lobby");
    a.press("Enter");
    a.wait_for_text("talking in #lobby");
    a.wait_for_last_line("[carol #lobby]>");
    a.type_text("/quit");
    a.press("Enter");
    assert_eq!(a.wait_exit(), 0, "screen:\n{}", a.screen());
}

#[test]
fn ctrl_d_exits_restores_the_terminal_and_keeps_history() {
    if !tmux_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let args = [
        "--nick",
        "alice",
        "--no-discovery",
        "--listen",
        "127.0.0.1:0",
    ];
    let a = Terminal::start(data.path(), &args, &[]);
    a.wait_for_last_line("[alice #lobby]>");
    a.type_text("first line");
    a.press("Enter");
    a.wait_for_text("[alice #lobby]> first line\n");
    a.wait_for_last_line("[alice #lobby]>");
    a.type_text("/peers");
    a.press("Enter");
    a.wait_for_text("no peers known yet");
    a.wait_for_last_line("[alice #lobby]>");
    // A line starting with a space is not kept, as in shells.
    a.type_text(" not kept");
    a.press("Enter");
    a.wait_for_text("[alice #lobby]>  not kept\n");
    a.wait_for_last_line("[alice #lobby]>");
    a.press("C-d");
    assert_eq!(a.wait_exit(), 0, "screen:\n{}", a.screen());
    assert!(a.screen().ends_with("-!- bye"), "{}", a.screen());

    let history = a.history();
    let lines: Vec<&str> = history.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines, ["first line", "/peers"], "{history:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.path().join("input_history"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The terminal is back in its normal mode.
    let stty = a.stty_after_exit();
    let flags: Vec<&str> = stty.split_whitespace().collect();
    for flag in ["icanon", "echo", "isig"] {
        assert!(flags.contains(&flag), "{flag} not restored: {stty}");
    }
    drop(a);

    // The next session starts with the history: Up recalls the last line.
    let b = Terminal::start(data.path(), &args, &[]);
    b.wait_for_last_line("[alice #lobby]>");
    b.press("Up");
    b.wait_for_last_line("[alice #lobby]> /peers");
    b.press("Up");
    b.wait_for_last_line("[alice #lobby]> first line");
    b.press("C-c");
    b.wait_for_last_line("[alice #lobby]>");
    b.press("C-d");
    assert_eq!(b.wait_exit(), 0, "screen:\n{}", b.screen());
}

const HOSTILE: &str = "\x1b]0;pwned\x07\x1b[2J\u{202e}evil";
const HOSTILE_RENAME: &str = "\x1b]2;pwned2\x07\x1b[31mred\x1b[0m\u{202e}";

/// A peer built from the library, whose nickname carries terminal escapes
/// that `main` would refuse on the command line.
fn hostile_peer(
    rt: &tokio::runtime::Runtime,
    target: SocketAddr,
) -> tokio::sync::mpsc::Sender<Command> {
    rt.block_on(async {
        let listener = net::listen("127.0.0.1:0".parse().unwrap(), false)
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let cfg = NodeConfig {
            nickname: HOSTILE.into(),
            listen_port: port,
            discovery: None,
            ..NodeConfig::default()
        };
        let id = LocalIdentity::from_secrets([66; 32], [67; 32]).unwrap();
        let node = Node::new(
            id,
            cfg,
            Box::new(natter::store::Store::open_in_memory().unwrap()),
            Rng::new(66),
            0,
            1_700_000_000_000,
        );
        let (cmd, cmd_rx) = tokio::sync::mpsc::channel(16);
        let (ev_tx, mut events) = net::event_channel();
        tokio::spawn(net::run(
            node,
            listener,
            None,
            cmd_rx,
            ev_tx,
            Instant::now(),
        ));
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        cmd.send(Command::Connect(target)).await.unwrap();
        cmd
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn hostile_nicknames_reach_the_terminal_inert() {
    if !tmux_available() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let a = Terminal::start(
        data.path(),
        &[
            "--nick",
            "alice",
            "--no-discovery",
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let addr = a.listen_addr();
    a.wait_for_last_line("[alice #lobby]>");
    let evil = hostile_peer(&rt, addr);
    a.wait_for_text("connected to ");

    a.type_text("/peers");
    a.press("Enter");
    a.wait_for_text("established ");
    // Completion never offers the hostile name, only the fingerprint.
    a.type_text("/msg ");
    a.press("Tab");
    let short = LocalIdentity::from_secrets([66; 32], [67; 32])
        .unwrap()
        .fingerprint()
        .short();
    a.wait_for_last_line(&format!("[alice #lobby]> /msg {short}"));
    a.press("C-c");
    a.wait_for_last_line("[alice #lobby]>");

    rt.block_on(evil.send(Command::Nick(HOSTILE_RENAME.into())))
        .unwrap();
    a.wait_for_text("is now known as");

    a.press("C-d");
    assert_eq!(a.wait_exit(), 0, "screen:\n{}", a.screen());
    let raw = a.raw_output();
    let screen = a.screen();
    assert!(screen.contains("evil"), "{screen}");
    for bad in [
        &b"\x1b]"[..],
        b"pwned\x07",
        b"\x1b[2J",
        "\u{202e}".as_bytes(),
        b"\x1b[31mred",
    ] {
        assert!(
            !contains(&raw, bad),
            "{:?} reached the terminal:\n{}",
            String::from_utf8_lossy(bad),
            String::from_utf8_lossy(&raw).escape_debug()
        );
    }
    let title = a.tmux(&["display-message", "-p", "-t", "=main:", "#{pane_title}"]);
    assert!(!title.contains("pwned"), "{title}");
    drop(evil);
    rt.shutdown_background();
}
