//! The interactive terminal front end: a rustyline prompt with history, tab
//! completion and events printed above the line being typed.
//!
//! ```text
//!   editor thread ──Input (lines, quit)──▶ run() ──Command──▶ node
//!   (rustyline, blocking)                  │ ▲
//!        ▲                                 │ └───── Event ──── node
//!        └── ExternalPrinter ◀── printer thread ◀── text (describe)
//! ```
//!
//! `readline` blocks, so the editor lives on its own thread and hands each
//! finished line over a channel. Everything shown to the user (events,
//! replies, errors) goes through rustyline's `ExternalPrinter`, which
//! clears the prompt, prints the text and redraws the prompt with the
//! half-typed line intact. Events become text through
//! [`describe`](super::frontend::describe) exactly as in line mode, so
//! every event kind the node learns appears here without changes.
//!
//! Keys: Tab completes commands and peer names; Ctrl-C clears the line, or
//! quits on an empty line; Ctrl-D on an empty line quits; `/quit` quits.
//! Quitting saves the history, tells the node (which tells the peers) and
//! waits for it to stop.

use super::command::{parse, Command as CliCommand, ParseError};
use super::complete::complete;
use super::frontend::{describe, describe_in, describe_reply, dispatch, Reply};
use super::render::Style;
use super::sanitize::sanitize_nick;
use super::session::{self, Receipts, SharedSession, StartOutcome, StartSummary};
use crate::shell::EventRx;
use natter_core::event::{Event, PeerInfo};
use natter_core::identity::IdentityKey;
use natter_core::node::Command;
use rustyline::completion::Completer;
use rustyline::config::Config;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::{Hint, Hinter};
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Context, Editor, EventContext, EventHandler,
    ExternalPrinter, Helper, KeyEvent, Movement, RepeatCount,
};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;

/// Name of the input history file inside the data directory.
pub const HISTORY_FILE: &str = "input_history";

/// Lines kept in the input history.
pub const HISTORY_LINES: usize = 1000;

/// How long quitting waits for the node to close its links.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// What the editor thread hands to the async side.
#[derive(Debug)]
enum Input {
    /// A finished line, parsed.
    Line(Result<Option<CliCommand>, ParseError>),
    /// Something went wrong in the editor that the user should know.
    Problem(String),
    /// The user asked to quit (Ctrl-D, Ctrl-C on an empty line, `/quit`).
    /// The editor has returned the terminal to its normal mode.
    Quit,
}

/// State shared between the async side and the editor thread.
#[derive(Clone, Default)]
struct Shared {
    /// Nicknames and short fingerprints offered by tab completion.
    peer_names: Arc<Mutex<Vec<String>>>,
    /// The prompt for the next line.
    prompt: Arc<Mutex<String>>,
    /// Our nickname, for the prompt.
    nick: Arc<Mutex<String>>,
    /// Rooms joined and the current one.
    session: SharedSession,
}

impl Shared {
    /// Sets the prompt from the nickname and the current room.
    fn refresh_prompt(&self) {
        let room = session::lock(&self.session).current().map(str::to_owned);
        let nick = lock(&self.nick).clone();
        *lock(&self.prompt) = prompt_for(&nick, room.as_deref());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The prompt for our nickname and current room.
fn prompt_for(nick: &str, room: Option<&str>) -> String {
    let room = room.map(|r| format!(" {r}")).unwrap_or_default();
    if nick.trim().is_empty() {
        format!("natter{room}> ")
    } else {
        format!("[{}{room}]> ", sanitize_nick(nick))
    }
}

/// The terminal bell, for a message that names us or is private.
const BELL: &str = "\u{7}";

/// Run the interactive front end until the user quits or the node stops.
///
/// Needs stdin and stdout to be a terminal; if the line editor cannot be
/// set up (for example `TERM=dumb`), falls back to line mode.
pub async fn run(
    commands: mpsc::Sender<Command>,
    mut events: EventRx,
    data_dir: &Path,
    bell: bool,
) {
    let style = Style::from_env(std::io::stdout().is_terminal());
    let shared = Shared {
        prompt: Arc::new(Mutex::new(prompt_for("", None))),
        ..Shared::default()
    };
    let mut names = PeerNames::default();
    let mut receipts = Receipts::default();
    let mut start = StartSummary::new(std::time::Instant::now());

    // Events already waiting (the startup banner) are printed before the
    // first prompt appears, and set the prompt's nickname.
    while let Ok(ev) = events.try_recv() {
        names.observe(&ev, &shared);
        if start.hold(&ev) {
            continue;
        }
        print_now(&describe(&ev, &style));
        if matches!(ev, Event::Shutdown) {
            return;
        }
    }

    let saved_mode = terminal::save();
    let history = data_dir.join(HISTORY_FILE);
    let (input_tx, mut inputs) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = std_mpsc::channel();
    let editor_shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("natter-editor".into())
        .spawn(move || editor_thread(history, editor_shared, ready_tx, input_tx));
    let ready = match spawned {
        Ok(_) => tokio::task::spawn_blocking(move || ready_rx.recv())
            .await
            .ok()
            .and_then(Result::ok),
        Err(e) => Some(Err(format!("cannot start the line editor thread: {e}"))),
    };
    let printer = match ready {
        Some(Ok(p)) => p,
        Some(Err(why)) => {
            eprintln!("natter: {why}; reading commands line by line instead");
            return super::headless::run(commands, events, false).await;
        }
        None => {
            eprintln!("natter: the line editor stopped; reading commands line by line instead");
            return super::headless::run(commands, events, false).await;
        }
    };
    let out = Printer::start(printer);
    let mut board = super::progress::Board::default();

    // Until the editor says the user quit, or the node stops by itself.
    let node_stopped = loop {
        tokio::select! {
            input = inputs.recv() => match input {
                Some(Input::Line(parsed)) => {
                    // The editor thread set the prompt for /join, /create and
                    // /room already; refreshing it from the session here
                    // would put the old room back before the node's
                    // room_joined arrives.
                    if let Some(r) = dispatch(parsed, &commands, &shared.session).await {
                        out.show(&describe_reply(&r, &style));
                    }
                }
                Some(Input::Problem(text)) => {
                    out.show(&describe_reply(&Reply::Error { text }, &style));
                }
                Some(Input::Quit) | None => break false,
            },
            () = sleep_until(start.due()) => show_start(&out, &style, start.finish()),
            ev = events.recv() => match ev {
                Some(ev) => {
                    names.observe(&ev, &shared);
                    if start.hold(&ev) || !receipts.shows(&ev) {
                        continue;
                    }
                    // Bars are redrawn as they go, and would end the
                    // summary on any start with a transfer to resume.
                    if !matches!(ev, Event::FileProgress { .. }) {
                        if let Some(outcome) = start.interrupt() {
                            show_start(&out, &style, outcome);
                        }
                    }
                    if bell && matches!(&ev, Event::MessageReceived { message } if message.calls_me) {
                        out.send(BELL.to_owned());
                    }
                    // Progress redraws the bars; the rest is printed as in
                    // line mode (a finished transfer's bar goes first).
                    match &ev {
                        Event::FileProgress { transfer } => {
                            board.update(std::time::Instant::now(), transfer);
                            out.show_progress(board.render());
                            continue;
                        }
                        Event::FileCompleted { transfer } | Event::FileFailed { transfer, .. } => {
                            board.remove(transfer);
                        }
                        _ => {}
                    }
                    let current = session::lock(&shared.session).current().map(str::to_owned);
                    out.show(&describe_in(&ev, &style, current.as_deref()));
                    if matches!(ev, Event::Shutdown) {
                        break true;
                    }
                }
                None => break true,
            },
        }
    };

    if node_stopped {
        // The node stopped on its own (SIGTERM, say) while the editor is
        // still waiting for a key with the terminal in raw mode. Let the
        // last lines reach the screen, then put the terminal back.
        out.finish().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        terminal::restore(saved_mode.as_ref());
        print_now("");
        return;
    }

    // The user quit: tell the node, which tells the peers, and wait for it.
    if commands.send(Command::Quit).await.is_ok() {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_WAIT;
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(ev)) => {
                    out.show(&describe(&ev, &style));
                    if matches!(ev, Event::Shutdown) {
                        break;
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    out.show(&describe_reply(
                        &Reply::Error {
                            text: "the node did not stop in time; leaving anyway".into(),
                        },
                        &style,
                    ));
                    break;
                }
            }
        }
    }
    out.finish().await;
    terminal::restore(saved_mode.as_ref());
}

/// Sleeps until `when`, or forever for `None`.
async fn sleep_until(when: Option<std::time::Instant>) {
    match when {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

/// What the quiet time after start held, as it ends.
fn show_start(out: &Printer, style: &Style, outcome: StartOutcome) {
    match outcome {
        StartOutcome::Each(held) => {
            for ev in held {
                out.show(&describe(&ev, style));
            }
        }
        StartOutcome::Summary {
            connected,
            verified,
            discovered,
        } => out.show(&start_summary(style, &connected, verified, discovered)),
    }
}

/// One line for the peers found in the first moments after start.
fn start_summary(
    style: &Style,
    connected: &[PeerInfo],
    verified: usize,
    discovered: usize,
) -> String {
    let names: Vec<String> = connected
        .iter()
        .take(8)
        .map(|p| sanitize_nick(&p.nickname))
        .collect();
    let more = if connected.len() > names.len() {
        ", …"
    } else {
        ""
    };
    let waiting = if discovered > 0 {
        format!("; {discovered} more found, not linked yet")
    } else {
        String::new()
    };
    super::render::info(
        style,
        &format!(
            "linked to {} peers ({verified} verified): {}{more}{waiting}. /peers lists them",
            connected.len(),
            names.join(", ")
        ),
    )
}

/// Print directly (before the editor starts, or after it stopped).
fn print_now(text: &str) {
    let mut out = std::io::stdout().lock();
    if !text.is_empty() {
        let _ = writeln!(out, "{text}");
    } else {
        let _ = writeln!(out);
    }
    let _ = out.flush();
}

/// The names offered by completion, per peer identity.
#[derive(Default)]
struct PeerNames {
    by_identity: BTreeMap<IdentityKey, [String; 2]>,
}

impl PeerNames {
    fn observe(&mut self, ev: &Event, shared: &Shared) {
        if session::lock(&shared.session).observe(ev) {
            shared.refresh_prompt();
        }
        let changed = match ev {
            Event::Started { nickname, .. } => {
                *lock(&shared.nick) = nickname.clone();
                shared.refresh_prompt();
                false
            }
            Event::PeerDiscovered { peer }
            | Event::PeerConnected { peer, .. }
            | Event::PeerRenamed { peer, .. } => self.learn(peer),
            Event::Peers { peers } => {
                // Learn every peer: no short-circuit.
                let learned: Vec<bool> = peers.iter().map(|p| self.learn(p)).collect();
                learned.contains(&true)
            }
            _ => false,
        };
        if changed {
            let mut all: Vec<String> = self.by_identity.values().flatten().cloned().collect();
            all.sort();
            all.dedup();
            *lock(&shared.peer_names) = all;
        }
    }

    /// Records the peer's nickname (raw: completion refuses unsafe names)
    /// and short fingerprint. Returns whether anything changed.
    fn learn(&mut self, peer: &PeerInfo) -> bool {
        let short: String = peer
            .identity
            .fingerprint()
            .grouped()
            .chars()
            .take(9)
            .collect();
        let names = [peer.nickname.clone(), short];
        self.by_identity.insert(peer.identity, names.clone()) != Some(names)
    }
}

/// Hands text to rustyline's `ExternalPrinter` on a thread of its own: a
/// print can block until the editor thread has drawn the previous one.
struct Printer {
    tx: Option<std_mpsc::Sender<String>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Lines of progress bars printed last, right above the prompt: the
    /// next bars replace them. Any other text resets it.
    bars_above: std::cell::Cell<usize>,
}

impl Printer {
    fn start(mut printer: BoxedPrinter) -> Printer {
        let (tx, rx) = std_mpsc::channel::<String>();
        let thread = std::thread::Builder::new()
            .name("natter-printer".into())
            .spawn(move || {
                for text in rx {
                    if printer.print(text.clone()).is_err() {
                        print_now(text.trim_end_matches('\n'));
                    }
                }
            })
            .ok();
        Printer {
            tx: Some(tx),
            thread,
            bars_above: std::cell::Cell::new(0),
        }
    }

    /// Draw the progress bars, over the previous ones if nothing was
    /// printed since (cursor up over them, clear to the end of the screen;
    /// rustyline then redraws the prompt and the line being typed below).
    fn show_progress(&self, lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        let up = self.bars_above.get();
        let mut text = String::new();
        if up > 0 {
            text.push_str(&format!("\x1b[{up}A\x1b[J"));
        }
        text.push_str(&lines.join("\n"));
        self.send(text);
        self.bars_above.set(lines.len());
    }

    fn send(&self, text: String) {
        let sent = self.tx.as_ref().map(|tx| tx.send(format!("{text}\n")));
        if !matches!(sent, Some(Ok(()))) {
            print_now(&text);
        }
    }

    /// Show `text` above the prompt; nothing for an empty string.
    fn show(&self, text: &str) {
        if text.is_empty() {
            return;
        }
        // The newline matters when the editor is between two lines: then
        // rustyline writes the text as it is, and the next prompt would
        // overwrite a last line without one.
        self.bars_above.set(0);
        self.send(text.to_owned());
    }

    /// Wait until everything shown so far has been handed to the terminal.
    async fn finish(mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

/// rustyline's printer; its concrete type is private to rustyline.
type BoxedPrinter = Box<dyn ExternalPrinter + Send>;

/// The line editor loop. Sends the printer (or why there is none) on
/// `ready`, then every line on `inputs`, then `Input::Quit`.
fn editor_thread(
    history: PathBuf,
    shared: Shared,
    ready: std_mpsc::Sender<Result<BoxedPrinter, String>>,
    inputs: mpsc::UnboundedSender<Input>,
) {
    let mut editor = match new_editor(&shared) {
        Ok(e) => e,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot start the line editor: {e}")));
            return;
        }
    };
    match editor.create_external_printer() {
        Ok(p) => {
            if ready.send(Ok(Box::new(p))).is_err() {
                return;
            }
        }
        Err(e) => {
            let _ = ready.send(Err(format!("this terminal is not supported: {e}")));
            return;
        }
    }
    if let Err(problem) = load_history(&mut editor, &history) {
        let _ = inputs.send(Input::Problem(problem));
    }
    let mut history_ok = true;
    loop {
        let prompt = lock(&shared.prompt).clone();
        match editor.readline(&prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                    if let Err(e) = editor.append_history(&history) {
                        if history_ok {
                            let _ = inputs.send(Input::Problem(format!(
                                "cannot save the input history to {}: {e}",
                                history.display()
                            )));
                        }
                        history_ok = false;
                    }
                }
                let parsed = parse(&line);
                match &parsed {
                    Ok(Some(CliCommand::Quit)) => break,
                    // The node always takes a new nickname; the next prompt
                    // shows it. A room joined or switched to shows at once
                    // too (the events that follow agree).
                    Ok(Some(CliCommand::Nick { name })) => {
                        *lock(&shared.nick) = name.clone();
                        shared.refresh_prompt();
                    }
                    Ok(Some(
                        CliCommand::Join { room }
                        | CliCommand::Room { room }
                        | CliCommand::Create { room },
                    )) => {
                        let nick = lock(&shared.nick).clone();
                        let shown = if matches!(parsed, Ok(Some(CliCommand::Room { .. }))) {
                            session::lock(&shared.session).resolve(room).ok()
                        } else {
                            Some(room.clone())
                        };
                        if let Some(shown) = shown {
                            *lock(&shared.prompt) = prompt_for(&nick, Some(&shown));
                        }
                    }
                    _ => {}
                }
                if inputs.send(Input::Line(parsed)).is_err() {
                    break;
                }
            }
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => break,
            Err(e) => {
                let _ = inputs.send(Input::Problem(format!("the line editor failed: {e}")));
                break;
            }
        }
    }
    let _ = editor.append_history(&history);
    drop(editor);
    let _ = inputs.send(Input::Quit);
}

fn new_editor(shared: &Shared) -> rustyline::Result<Editor<NatterHelper, DefaultHistory>> {
    let config = Config::builder()
        .max_history_size(HISTORY_LINES)?
        .history_ignore_dups(true)?
        .history_ignore_space(true)
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .build();
    let mut editor = Editor::with_config(config)?;
    editor.set_helper(Some(NatterHelper {
        peer_names: shared.peer_names.clone(),
        dim_hints: Style::from_env(std::io::stdout().is_terminal()).color,
    }));
    editor.bind_sequence(
        KeyEvent::ctrl('C'),
        EventHandler::Conditional(Box::new(CtrlC)),
    );
    Ok(editor)
}

/// Loads the history file (a missing one is fine) and makes sure only the
/// user can read it: it holds everything typed, private messages included.
fn load_history(
    editor: &mut Editor<NatterHelper, DefaultHistory>,
    path: &Path,
) -> Result<(), String> {
    if !path.exists() {
        return Ok(());
    }
    restrict_permissions(path);
    editor
        .load_history(path)
        .map_err(|e| format!("cannot read the input history {}: {e}", path.display()))
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

#[cfg(not(unix))]
fn restrict_permissions(_: &Path) {}

/// Ctrl-C clears a non-empty line (like a shell) and quits on an empty one.
struct CtrlC;

impl ConditionalEventHandler for CtrlC {
    fn handle(
        &self,
        _: &rustyline::Event,
        _: RepeatCount,
        _: bool,
        ctx: &EventContext<'_>,
    ) -> Option<Cmd> {
        if ctx.line().is_empty() {
            Some(Cmd::Interrupt)
        } else {
            Some(Cmd::Kill(Movement::WholeLine))
        }
    }
}

/// Completion from [`complete`], and a usage hint after a command name.
struct NatterHelper {
    peer_names: Arc<Mutex<Vec<String>>>,
    dim_hints: bool,
}

impl Completer for NatterHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let names = lock(&self.peer_names).clone();
        Ok(complete(line, pos, &names))
    }
}

/// A hint that is only shown: the right arrow does not insert it.
struct UsageHint(String);

impl Hint for UsageHint {
    fn display(&self) -> &str {
        &self.0
    }

    fn completion(&self) -> Option<&str> {
        None
    }
}

impl Hinter for NatterHelper {
    type Hint = UsageHint;

    /// After `/name ` (a known command and one space, cursor at the end),
    /// shows the command's arguments, e.g. `<peer> <text>`.
    fn hint(&self, line: &str, pos: usize, _: &Context<'_>) -> Option<UsageHint> {
        usage_hint(line, pos).map(UsageHint)
    }
}

fn usage_hint(line: &str, pos: usize) -> Option<String> {
    if pos != line.len() {
        return None;
    }
    let name = line.strip_prefix('/')?.strip_suffix(' ')?;
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let spec = super::command::find_command(name)?;
    (!spec.args.is_empty()).then(|| spec.args.to_owned())
}

impl Highlighter for NatterHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.dim_hints {
            Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
        } else {
            Cow::Borrowed(hint)
        }
    }
}

impl Validator for NatterHelper {}

impl Helper for NatterHelper {}

/// Saving and restoring the terminal mode, for when the node stops while
/// the editor still holds the terminal in raw mode.
mod terminal {
    #[cfg(unix)]
    pub type Mode = nix::sys::termios::Termios;
    #[cfg(not(unix))]
    pub type Mode = ();

    #[cfg(unix)]
    pub fn save() -> Option<Mode> {
        nix::sys::termios::tcgetattr(std::io::stdin()).ok()
    }

    #[cfg(unix)]
    pub fn restore(mode: Option<&Mode>) {
        if let Some(mode) = mode {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSADRAIN,
                mode,
            );
        }
    }

    #[cfg(not(unix))]
    pub fn save() -> Option<Mode> {
        None
    }

    #[cfg(not(unix))]
    pub fn restore(_: Option<&Mode>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::link::Direction;

    fn key(n: u8) -> IdentityKey {
        natter_core::identity::LocalIdentity::from_secrets([n; 32], [n; 32])
            .unwrap()
            .identity_key()
    }

    /// What completion offers for a peer besides its nickname.
    fn short(n: u8) -> String {
        key(n).fingerprint().grouped().chars().take(9).collect()
    }

    fn sorted<const N: usize>(names: [String; N]) -> Vec<String> {
        let mut v = names.to_vec();
        v.sort();
        v
    }

    fn peer(n: u8, nick: &str) -> PeerInfo {
        PeerInfo {
            identity: key(n),
            nickname: nick.into(),
            state: natter_core::event::LinkState::Established,
            addr: None,
            trust: natter_core::trust::TrustState::Unverified,
            path: None,
        }
    }

    #[test]
    fn peer_names_follow_events() {
        let shared = Shared::default();
        let mut names = PeerNames::default();
        names.observe(
            &Event::PeerConnected {
                peer: peer(1, "bob"),
                direction: Direction::Inbound,
            },
            &shared,
        );
        assert_eq!(*lock(&shared.peer_names), sorted([short(1), "bob".into()]));
        names.observe(
            &Event::PeerRenamed {
                peer: peer(1, "robert"),
                old: "bob".into(),
            },
            &shared,
        );
        assert_eq!(
            *lock(&shared.peer_names),
            sorted([short(1), "robert".into()])
        );
        names.observe(
            &Event::Peers {
                peers: vec![peer(1, "robert"), peer(2, "carol")],
            },
            &shared,
        );
        assert_eq!(
            *lock(&shared.peer_names),
            sorted([short(1), short(2), "carol".into(), "robert".into()])
        );
    }

    #[test]
    fn prompt_shows_the_nickname() {
        let shared = Shared::default();
        PeerNames::default().observe(
            &Event::Started {
                identity: key(1),
                nickname: "alice".into(),
                listen: "127.0.0.1:1".parse().unwrap(),
                beacon_targets: Vec::new(),
                rooms: vec!["#lobby".into(), "#ops".into()],
            },
            &shared,
        );
        assert_eq!(*lock(&shared.prompt), "[alice #lobby]> ");
        PeerNames::default().observe(
            &Event::RoomJoined {
                room: "#ops".into(),
            },
            &shared,
        );
        assert_eq!(*lock(&shared.prompt), "[alice #ops]> ");
        assert_eq!(prompt_for("", None), "natter> ");
        let hostile = prompt_for("\u{1b}]0;x\u{7}\u{202e}", None);
        assert!(
            !hostile.contains(['\u{1b}', '\u{7}', '\u{202e}']),
            "{hostile:?}"
        );
    }

    #[test]
    fn usage_hints() {
        assert_eq!(usage_hint("/msg ", 5).as_deref(), Some("<peer> <text>"));
        assert_eq!(usage_hint("/MSG ", 5).as_deref(), Some("<peer> <text>"));
        assert_eq!(usage_hint("/exit ", 6), None);
        assert_eq!(usage_hint("/msg b", 6), None);
        assert_eq!(usage_hint("/msg ", 4), None);
        assert_eq!(usage_hint("/nope ", 6), None);
        assert_eq!(usage_hint("msg ", 4), None);
    }
}
