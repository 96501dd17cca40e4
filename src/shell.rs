//! The tokio shell: sockets and tasks around the sans-IO [`Node`], which
//! runs on a thread of its own so that its SQLite commits (fsync with
//! synchronous=FULL) never block the async runtime. The tokio side does IO
//! and nothing else.
//!
//! ```text
//!  tokio runtime: IO only                           thread natter-node
//!
//!  reader task per link ─ Received ─┐ permit (64, shared
//!  beacon task ────────── Datagram ─┤  by reads and beacons)
//!  command task ───────── Command ──┤ permit (1024)
//!  writer task per link ─ Flushed ──┤
//!  io loop ─ Accept{token},         ├── std mpsc ───▶ Node::accept, handle,
//!            Connected, Closed, … ──┘                 handle_timeout
//!  io loop ◀─ Outputs(Send, Dial, Close, Datagram), ─ poll_output
//!             Accepted{token, link}  (tokio unbounded)
//!  UI ◀──────────────────────── Event ────────────── (a drain's events, one wake-up)
//! ```
//!
//! - The **io loop** accepts (parking the stream until the node answers
//!   `Accept`), dials, starts and stops the link tasks, sends beacons and
//!   carries out the node's outputs.
//! - A **reader task** reads up to 64 KiB at a time and queues it for the
//!   node once it holds a permit; the node thread gives permits back as it
//!   handles reads, so a fast sender waits for us instead of filling memory.
//! - A **writer task** coalesces queued `Send`s into one write and reports
//!   what it flushed.
//! - The **node thread** ([`node_thread`]) is the only owner of the node.
//! - With `--wan`, links beyond the LAN are one bidirectional stream of an
//!   iroh connection ([`crate::wan`]); reader and writer tasks are the same
//!   for both kinds of stream. An **accept task** per inbound iroh
//!   connection finishes its QUIC handshake before it is parked like a TCP
//!   stream, a **path task** per WAN link reports relayed or direct, and a
//!   **reach task** reports where our endpoint can be reached.

mod durable;
mod events;
mod node_thread;

pub use events::{event_queue, EventRx, EventTx, TryRecvError};

use natter_core::event::Event;
use natter_core::link::Remote;
use natter_core::node::{Command, Input, Node, Output};
use natter_core::peer::LinkId;
use node_thread::{NodeTx, ToIo, ToNode};
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Default UDP port of discovery beacons.
pub const DEFAULT_BEACON_PORT: u16 = 47474;
/// Default TCP port natter listens on; when it is taken the system picks a free one.
pub const DEFAULT_LISTEN_PORT: u16 = 47475;
/// How long a TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an iroh connect (through a relay, perhaps across the world)
/// may take, its stream included.
#[cfg(feature = "wan")]
const WAN_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Inbound iroh connections finishing their QUIC handshake (and opening
/// their stream) at once; a new one beyond displaces the oldest, so
/// connections that stall cannot keep an honest one out: it finishes in
/// a round trip, long before it is the oldest of 16.
#[cfg(feature = "wan")]
const MAX_WAN_ACCEPTING: usize = 16;
/// Largest single read from a socket.
const READ_CHUNK: usize = 64 * 1024;
/// Reads at least this large are handed to the node in the buffer they
/// were read into; smaller ones are copied out of it.
const HAND_OVER: usize = READ_CHUNK / 4;
/// Most bytes the writer hands to one write.
const WRITE_BATCH: usize = 256 * 1024;
/// Most buffers in one write (`writev`; the system's limit is 1024).
const WRITE_BUFFERS: usize = 64;
/// Inbound connections waiting for the node's verdict; beyond this the
/// listener is not polled. Small on purpose: a flood of new connections
/// must not run ahead of the reads of those already accepted, or it could
/// displace an honest handshake from its slot before its message 1 (already
/// in the kernel) is read.
const MAX_PARKED: usize = 4;
/// How long shutting down waits for writers to flush.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a link the node closed may take to write what it had queued
/// before its socket is dropped (the node counts it until then).
const CLOSE_FLUSH: Duration = Duration::from_millis(natter_core::node::CLOSE_FLUSH_MS);
/// Unacknowledged data may sit in the kernel this long before the
/// connection fails (`TCP_USER_TIMEOUT`), longer than the node's own 15 s
/// dead-link rule, so a vanished peer cannot pin socket buffers.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(20);

/// Shell-level errors (setting sockets up).
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the beacon socket on {addr}: {source}")]
    Beacon {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Bind the TCP listener. With `fallback`, a taken port is replaced by the
/// next free one (several natter processes on one host).
pub async fn listen(addr: SocketAddr, fallback: bool) -> Result<TcpListener, NetError> {
    match TcpListener::bind(addr).await {
        Ok(l) => Ok(l),
        Err(e) if fallback && e.kind() == std::io::ErrorKind::AddrInUse => {
            let any = SocketAddr::new(addr.ip(), 0);
            TcpListener::bind(any)
                .await
                .map_err(|source| NetError::Listen { addr: any, source })
        }
        Err(source) => Err(NetError::Listen { addr, source }),
    }
}

/// Bind the UDP beacon socket so that several processes on one host can
/// share the port (`SO_REUSEADDR`: every one of them receives broadcasts).
pub fn beacon_socket(bind: SocketAddr) -> Result<UdpSocket, NetError> {
    let err = |source| NetError::Beacon { addr: bind, source };
    let socket =
        Socket::new(Domain::for_address(bind), Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    socket.set_broadcast(true).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    socket.bind(&bind.into()).map_err(err)?;
    UdpSocket::from_std(socket.into()).map_err(err)
}

/// The broadcast address of every up, non-loopback IPv4 interface: where
/// beacons go by default. Empty if the host has none.
pub fn default_beacon_targets(port: u16) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for iface in if_addrs::get_if_addrs().unwrap_or_default() {
        if let if_addrs::IfAddr::V4(v4) = iface.addr {
            if v4.ip.is_loopback() {
                continue;
            }
            let subnet = Ipv4Addr::from(u32::from(v4.ip) | !u32::from(v4.netmask));
            // An address added without a broadcast address (`ip addr add
            // 10.0.0.1/24 dev eth0`) is reported by getifaddrs with the
            // interface's own address in the broadcast field.
            let bcast = match v4.broadcast {
                Some(b) if b != v4.ip && !b.is_unspecified() => b,
                _ => subnet,
            };
            let target = SocketAddr::new(IpAddr::V4(bcast), port);
            if !out.contains(&target) {
                out.push(target);
            }
        }
    }
    out
}

/// Events waiting for the user interface. A UI that falls this far behind
/// (a terminal that prints slower than messages arrive) misses the newest
/// events and is told how many (`Event::EventsDropped`); the messages
/// themselves are in the history. Bounded, so a flood cannot grow it.
pub const EVENT_QUEUE: usize = 65_536;

/// A queue of [`EVENT_QUEUE`] events for [`run`].
pub fn event_channel() -> (EventTx, EventRx) {
    event_queue(EVENT_QUEUE)
}

/// Run the node until it shuts down (`Command::Quit`, or the command channel
/// closes). Events go to `events`; the function returns after a best-effort
/// flush of every link and once the node thread has ended. If that thread
/// panics, the shell reports an [`Event::Error`] and ends the same way.
pub async fn run(
    node: Node,
    listener: TcpListener,
    beacons: Option<UdpSocket>,
    commands: mpsc::Receiver<Command>,
    events: EventTx,
    clock: Instant,
) {
    let opts = Options::default();
    run_with(node, listener, beacons, commands, events, clock, opts).await
}

/// What a shell may have besides its TCP listener and beacon socket.
#[derive(Default)]
pub struct Options {
    /// Where offered files' trees are written (`Output::HashFile`);
    /// without one, offering a file fails with a reason.
    pub files_dir: Option<std::path::PathBuf>,
    /// The node's store in group commit ([`crate::store::Store::group_commit`]):
    /// its commits return before their `fsync`, and what follows a commit
    /// leaves the node thread once the log is synced ([`durable`]).
    /// Without it the store syncs each commit itself.
    pub group_commit: Option<crate::store::GroupCommit>,
    /// The iroh endpoint for links beyond the LAN (`--wan`).
    #[cfg(feature = "wan")]
    pub wan: Option<crate::wan::Wan>,
}

/// [`run`], with everything [`Options`] holds.
pub async fn run_with(
    node: Node,
    listener: TcpListener,
    beacons: Option<UdpSocket>,
    commands: mpsc::Receiver<Command>,
    events: EventTx,
    clock: Instant,
    opts: Options,
) {
    let files_dir = opts.files_dir;
    let spawned = node_thread::spawn(node, events.clone(), clock, opts.group_commit);
    let (tx, mut from_node, thread) = match spawned {
        Ok(started) => started,
        Err(e) => {
            let text = format!("cannot start the node thread: {e}");
            events.send(shell_error(text));
            return;
        }
    };
    let beacons = beacons.map(Arc::new);
    let mut helpers = vec![tokio::spawn(forward_commands(commands, tx.clone()))];
    if let Some(sock) = &beacons {
        helpers.push(tokio::spawn(read_beacons(Arc::clone(sock), tx.clone())));
    }
    #[cfg(feature = "wan")]
    if let Some(wan) = &opts.wan {
        helpers.push(tokio::spawn(report_reach(wan.clone(), tx.clone())));
    }
    let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel();
    let mut io = Io {
        node: tx,
        ctl: ctl_tx,
        beacons,
        links: HashMap::new(),
        writers: Vec::new(),
        parked: HashMap::new(),
        next_token: 0,
        files_dir,
        #[cfg(feature = "wan")]
        wan: opts.wan,
        #[cfg(feature = "wan")]
        wan_accepting: std::collections::VecDeque::new(),
        #[cfg(feature = "wan")]
        wan_tokens: 0,
    };

    loop {
        tokio::select! {
            accepted = listener.accept(), if io.parked.len() < MAX_PARKED => {
                if let Ok((stream, remote)) = accepted {
                    io.park(LinkStream::Tcp(stream), Remote::Lan(remote));
                }
            }
            incoming = io.wan_incoming(), if io.wan_ready() => io.wan_accept(incoming),
            msg = from_node.recv() => match msg {
                Some(ToIo::Outputs(outputs)) => outputs.into_iter().for_each(|o| io.carry_out(o)),
                Some(ToIo::Accepted { token, link }) => io.accepted(token, link),
                // The node shut down (or its thread died).
                None => break,
            },
            Some(msg) = ctl_rx.recv() => io.on_link_msg(msg),
        }
    }

    io.node.close();
    helpers.iter().for_each(JoinHandle::abort);
    #[cfg(feature = "wan")]
    let wan = io.wan.clone();
    io.flush().await;
    #[cfg(feature = "wan")]
    if let Some(wan) = wan {
        let _ = tokio::time::timeout(FLUSH_TIMEOUT, wan.close()).await;
    }
    if let Ok(Err(panic)) = tokio::task::spawn_blocking(move || thread.join()).await {
        let text = format!("the node stopped unexpectedly: {}", panic_text(&*panic));
        events.send(shell_error(text));
    }
}

/// An error of the shell itself, for the user interface.
fn shell_error(text: String) -> Event {
    Event::Error {
        error: Arc::new(natter_core::node::NodeError::Shell(text)),
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    match panic.downcast_ref::<&str>() {
        Some(s) => s,
        None => panic.downcast_ref::<String>().map_or("", String::as_str),
    }
}

/// Messages from dial and link tasks to the io loop.
enum LinkMsg {
    Connected {
        link: LinkId,
        stream: LinkStream,
    },
    ConnectFailed {
        link: LinkId,
        error: String,
    },
    Closed {
        link: LinkId,
        error: Option<String>,
    },
    /// An inbound iroh connection finished its handshake (or failed to).
    #[cfg(feature = "wan")]
    WanIncoming(
        u64,
        Option<(natter_core::identity::IdentityKey, crate::wan::WanStream)>,
    ),
}

/// A link's byte stream: TCP on the LAN, or a stream of an iroh connection.
enum LinkStream {
    Tcp(TcpStream),
    #[cfg(feature = "wan")]
    Wan(crate::wan::WanStream),
}

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

struct LinkTasks {
    writer: mpsc::UnboundedSender<Vec<u8>>,
    reader: JoinHandle<()>,
    /// Dropped to tell the writer the link is closing: it then has
    /// `CLOSE_FLUSH` to write what is queued.
    _closing: tokio::sync::oneshot::Sender<()>,
    writer_task: tokio::task::AbortHandle,
    /// A WAN link's connection, closed once the link's stream is done.
    #[cfg(feature = "wan")]
    wan: Option<iroh::endpoint::Connection>,
}

impl LinkTasks {
    /// The link is gone from the io loop; `now`: its writer was aborted,
    /// so nothing is left to flush.
    fn end(self, now: bool) {
        self.reader.abort();
        if now {
            self.writer_task.abort();
        }
        #[cfg(feature = "wan")]
        if let Some(conn) = self.wan {
            // The writer has CLOSE_FLUSH to write and finish its stream;
            // closing the QUIC connection before that would drop it.
            let wait = if now { Duration::ZERO } else { CLOSE_FLUSH * 2 };
            tokio::spawn(async move {
                let _ = tokio::time::timeout(wait, conn.closed()).await;
                conn.close(0u32.into(), b"natter link closed");
            });
        }
    }
}

/// The io loop's state.
struct Io {
    node: NodeTx,
    ctl: mpsc::UnboundedSender<LinkMsg>,
    beacons: Option<Arc<UdpSocket>>,
    links: HashMap<LinkId, LinkTasks>,
    writers: Vec<JoinHandle<()>>,
    parked: HashMap<u64, LinkStream>,
    next_token: u64,
    /// Where offered files' trees go.
    files_dir: Option<std::path::PathBuf>,
    #[cfg(feature = "wan")]
    wan: Option<crate::wan::Wan>,
    /// Inbound iroh connections still in their QUIC handshake, oldest
    /// first: a token, and the task's handle to drop it by.
    #[cfg(feature = "wan")]
    wan_accepting: std::collections::VecDeque<(u64, tokio::task::AbortHandle)>,
    #[cfg(feature = "wan")]
    wan_tokens: u64,
}

impl Io {
    fn carry_out(&mut self, out: Output) {
        match out {
            Output::Datagram { to, data } => {
                if let Some(sock) = &self.beacons {
                    // A lost beacon is harmless; the next one follows.
                    let _ = sock.try_send_to(&data, to);
                }
            }
            Output::Dial { link, addr } => {
                tokio::spawn(dial(link, addr, self.ctl.clone()));
            }
            Output::DialWan { link, peer, reach } => self.dial_wan(link, peer, reach),
            Output::Send { link, data } => {
                if let Some(t) = self.links.get(&link) {
                    let _ = t.writer.send(data);
                }
            }
            Output::Close { link } => {
                if let Some(t) = self.links.remove(&link) {
                    // Dropping the sender and the closing signal lets the
                    // writer flush for at most CLOSE_FLUSH, then it reports
                    // the socket gone.
                    t.end(false);
                } else {
                    self.gone(link);
                }
            }
            Output::Abort { link } => {
                if let Some(t) = self.links.remove(&link) {
                    t.end(true);
                }
                // Both halves are dropped with their tasks.
                self.gone(link);
            }
            Output::HashFile { transfer, path } => self.hash_file(transfer, path),
            // The node thread sends events to the UI itself, and checks to
            // its pool.
            Output::Event(_) | Output::CheckSignatures { .. } => {}
        }
    }

    /// Tell the node a closed link's socket is gone.
    fn gone(&self, link: LinkId) {
        let _ = self
            .node
            .send(ToNode::Input(Input::Closed { link, error: None }));
    }

    /// Hold an inbound stream until the node says whether it takes it.
    fn park(&mut self, stream: LinkStream, remote: Remote) {
        let token = self.next_token;
        self.next_token += 1;
        self.parked.insert(token, stream);
        let _ = self.node.send(ToNode::Accept { token, remote });
    }

    /// Hash a file to offer on a blocking thread (it reads the whole
    /// file), then tell the node.
    fn hash_file(&self, transfer: natter_core::wire::frame::TransferId, path: String) {
        let node = self.node.clone();
        let Some(dir) = self.files_dir.clone() else {
            let result = Err("file transfer is not set up in this process".to_string());
            node.send(ToNode::Input(Input::FileHashed { transfer, result }));
            return;
        };
        tokio::task::spawn_blocking(move || {
            let outboard = crate::files::outboard_path(&dir, &transfer);
            let result = crate::files::hash_file(std::path::Path::new(&path), &outboard);
            node.send(ToNode::Input(Input::FileHashed { transfer, result }));
        });
    }

    fn accepted(&mut self, token: u64, link: Option<LinkId>) {
        // Refused (over the limits): dropping the stream closes it.
        if let (Some(stream), Some(link)) = (self.parked.remove(&token), link) {
            self.start_link(link, stream);
        }
    }

    fn on_link_msg(&mut self, msg: LinkMsg) {
        match msg {
            LinkMsg::Connected { link, stream } => {
                // Before the reader exists, so the node hears of the link
                // before any of its bytes.
                let _ = self.node.send(ToNode::Input(Input::Connected { link }));
                self.start_link(link, stream);
            }
            LinkMsg::ConnectFailed { link, error } => {
                let _ = self
                    .node
                    .send(ToNode::Input(Input::ConnectFailed { link, error }));
            }
            LinkMsg::Closed { link, error } => {
                if let Some(t) = self.links.remove(&link) {
                    t.end(false);
                    let _ = self.node.send(ToNode::Input(Input::Closed { link, error }));
                }
            }
            #[cfg(feature = "wan")]
            LinkMsg::WanIncoming(token, done) => {
                self.wan_accepting.retain(|(t, _)| *t != token);
                if let Some((peer, stream)) = done {
                    self.park(LinkStream::Wan(stream), Remote::Wan(peer));
                }
            }
        }
    }

    fn start_link(&mut self, link: LinkId, stream: LinkStream) {
        // A WAN link's connection: its path is watched, and it is closed
        // once the link's stream is done.
        #[cfg(feature = "wan")]
        let mut wan = None;
        let (rd, wr): (Reader, Writer) = match stream {
            LinkStream::Tcp(stream) => {
                let _ = stream.set_nodelay(true);
                let sock = socket2::SockRef::from(&stream);
                let _ = sock.set_tcp_user_timeout(Some(TCP_USER_TIMEOUT));
                let (rd, wr) = stream.into_split();
                (Box::new(rd), Box::new(wr))
            }
            #[cfg(feature = "wan")]
            LinkStream::Wan(s) => {
                let node = self.node.clone();
                tokio::spawn(crate::wan::watch_path(s.conn.clone(), move |path| {
                    node.send(ToNode::Input(Input::Path { link, path }))
                }));
                wan = Some(s.conn);
                (Box::new(s.recv), Box::new(s.send))
            }
        };
        let (writer, queue) = mpsc::unbounded_channel();
        let (closing_tx, closing) = tokio::sync::oneshot::channel();
        let reader = tokio::spawn(read_link(link, rd, self.node.clone(), self.ctl.clone()));
        let w = tokio::spawn(write_link(
            link,
            wr,
            Queue { queue, closing },
            self.node.clone(),
            self.ctl.clone(),
        ));
        let writer_task = w.abort_handle();
        self.writers.retain(|w| !w.is_finished());
        self.writers.push(w);
        let tasks = LinkTasks {
            writer,
            reader,
            _closing: closing_tx,
            writer_task,
            #[cfg(feature = "wan")]
            wan,
        };
        self.links.insert(link, tasks);
    }

    /// Stop reading, let writers flush what is queued (the `Close` frames),
    /// within reason.
    async fn flush(self) {
        for t in self.links.into_values() {
            t.end(false);
        }
        let all = async {
            for w in self.writers {
                let _ = w.await;
            }
        };
        let _ = tokio::time::timeout(FLUSH_TIMEOUT, all).await;
    }
}

async fn dial(link: LinkId, addr: SocketAddr, ctl: mpsc::UnboundedSender<LinkMsg>) {
    let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await;
    let _ = ctl.send(dialled(link, connect.map(|r| r.map(LinkStream::Tcp))));
}

/// What a dial that ran under a timeout tells the io loop.
fn dialled<E: std::fmt::Display>(
    link: LinkId,
    outcome: Result<Result<LinkStream, E>, tokio::time::error::Elapsed>,
) -> LinkMsg {
    match outcome {
        Ok(Ok(stream)) => LinkMsg::Connected { link, stream },
        Ok(Err(e)) => LinkMsg::ConnectFailed {
            link,
            error: e.to_string(),
        },
        Err(_) => LinkMsg::ConnectFailed {
            link,
            error: "timed out".into(),
        },
    }
}

async fn read_link(
    link: LinkId,
    mut rd: Reader,
    node: NodeTx,
    ctl: mpsc::UnboundedSender<LinkMsg>,
) {
    let mut buf = Vec::with_capacity(READ_CHUNK);
    let error = loop {
        match rd.read_buf(&mut buf).await {
            Ok(0) => break None,
            Ok(n) => {
                // A large read is handed over as it is (file data: no
                // copy); a small one is copied out and the buffer kept.
                let data = if n >= HAND_OVER {
                    std::mem::replace(&mut buf, Vec::with_capacity(READ_CHUNK))
                } else {
                    let small = buf.clone();
                    buf.clear();
                    small
                };
                if !node.input(Input::Received { link, data }).await {
                    return;
                }
            }
            Err(e) => break Some(e.to_string()),
        }
    };
    let _ = ctl.send(LinkMsg::Closed { link, error });
}

/// A writer's input: the bytes to write, and the signal that the link is
/// closing (its sender dropped).
struct Queue {
    queue: mpsc::UnboundedReceiver<Vec<u8>>,
    closing: tokio::sync::oneshot::Receiver<()>,
}

impl Queue {
    /// The next buffer; once the link is closing, `deadline` is set and
    /// what is still queued is drained.
    async fn next(&mut self, deadline: &mut Option<tokio::time::Instant>) -> Option<Vec<u8>> {
        loop {
            if deadline.is_some() {
                return self.queue.recv().await;
            }
            tokio::select! {
                buf = self.queue.recv() => return buf,
                _ = &mut self.closing => {
                    *deadline = Some(tokio::time::Instant::now() + CLOSE_FLUSH);
                }
            }
        }
    }
}

/// Writes a link's queued bytes. Once the node closes the link the writer
/// has `CLOSE_FLUSH` to write what is left; then the socket is dropped,
/// whatever remains discarded, and the node told it is gone.
async fn write_link(
    link: LinkId,
    mut wr: Writer,
    mut input: Queue,
    node: NodeTx,
    ctl: mpsc::UnboundedSender<LinkMsg>,
) {
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut deadline = None;
    let mut failed = false;
    while let Some(first) = input.next(&mut deadline).await {
        batch.clear();
        let mut bytes = first.len();
        batch.push(first);
        while bytes < WRITE_BATCH && batch.len() < WRITE_BUFFERS {
            match input.queue.try_recv() {
                Ok(more) => {
                    bytes += more.len();
                    batch.push(more);
                }
                Err(_) => break,
            }
        }
        let written = match deadline {
            Some(d) => tokio::time::timeout_at(d, write_all_vectored(&mut wr, &batch)).await,
            // A write to a peer that does not read can block for good: the
            // close must reach it here too, or the socket and everything
            // queued behind it would stay until the peer goes away.
            None => {
                let write = write_all_vectored(&mut wr, &batch);
                tokio::pin!(write);
                tokio::select! {
                    done = &mut write => Ok(done),
                    _ = &mut input.closing => {
                        let d = tokio::time::Instant::now() + CLOSE_FLUSH;
                        deadline = Some(d);
                        tokio::time::timeout_at(d, write).await
                    }
                }
            }
        };
        // What was written is freed now, not when the next write comes.
        batch.clear();
        match written {
            Ok(Ok(())) => {
                let _ = node.send(ToNode::Input(Input::Flushed { link, bytes }));
            }
            Ok(Err(e)) => {
                let error = Some(e.to_string());
                let _ = ctl.send(LinkMsg::Closed { link, error });
                failed = true;
                break;
            }
            // The flush time of a closed link is up.
            Err(_) => break,
        }
    }
    if failed {
        return;
    }
    // The link was closed (the queue's sender is gone): shut the socket
    // down within what is left of the flush time, then report it gone.
    let d = deadline.unwrap_or_else(|| tokio::time::Instant::now() + CLOSE_FLUSH);
    let _ = tokio::time::timeout_at(d, wr.shutdown()).await;
    drop(wr);
    let _ = node.send(ToNode::Input(Input::Closed { link, error: None }));
}

/// Writes every buffer of `bufs`, in order, with as few `writev` calls as
/// the socket takes: the node's sealed messages are not copied into one
/// buffer first.
async fn write_all_vectored(wr: &mut Writer, bufs: &[Vec<u8>]) -> std::io::Result<()> {
    let mut slices: Vec<std::io::IoSlice<'_>> = bufs
        .iter()
        .filter(|b| !b.is_empty())
        .map(|b| std::io::IoSlice::new(b))
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = wr.write_vectored(rest).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        std::io::IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

async fn read_beacons(sock: Arc<UdpSocket>, node: NodeTx) {
    let mut buf = vec![0u8; 2048];
    loop {
        if let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let data = buf[..n].to_vec();
            if !node.input(Input::Datagram { from, data }).await {
                return;
            }
        }
    }
}

async fn forward_commands(mut commands: mpsc::Receiver<Command>, node: NodeTx) {
    while let Some(cmd) = commands.recv().await {
        if !node.input(Input::Command(cmd)).await {
            return;
        }
    }
    // The UI went away: stop as if it had asked to.
    node.input(Input::Command(Command::Quit)).await;
}

// ---- beyond the LAN -------------------------------------------------------

#[cfg(feature = "wan")]
impl Io {
    /// Whether to take the next inbound iroh connection now.
    fn wan_ready(&self) -> bool {
        self.wan.is_some() && self.parked.len() < MAX_PARKED
    }

    /// The next inbound iroh connection (never, without `--wan`).
    async fn wan_incoming(&self) -> Option<iroh::endpoint::Incoming> {
        match &self.wan {
            Some(wan) => wan.accept().await,
            None => std::future::pending().await,
        }
    }

    /// Finish an inbound connection's handshake off the io loop; it is
    /// parked when its stream is open.
    fn wan_accept(&mut self, incoming: Option<iroh::endpoint::Incoming>) {
        let Some(incoming) = incoming else {
            // The endpoint closed: nothing more will come.
            self.wan = None;
            return;
        };
        if self.wan_accepting.len() >= MAX_WAN_ACCEPTING {
            if let Some((_, oldest)) = self.wan_accepting.pop_front() {
                oldest.abort();
            }
        }
        let token = self.wan_tokens;
        self.wan_tokens += 1;
        let ctl = self.ctl.clone();
        let task = tokio::spawn(async move {
            let done = crate::wan::finish_accept(incoming);
            let done = tokio::time::timeout(WAN_CONNECT_TIMEOUT, done).await;
            let _ = ctl.send(LinkMsg::WanIncoming(token, done.ok().and_then(Result::ok)));
        });
        self.wan_accepting.push_back((token, task.abort_handle()));
    }

    fn dial_wan(
        &mut self,
        link: LinkId,
        peer: natter_core::identity::IdentityKey,
        reach: natter_core::wire::Reach,
    ) {
        let ctl = self.ctl.clone();
        let Some(wan) = self.wan.clone() else {
            let error = "links beyond the LAN are off".to_string();
            let _ = ctl.send(LinkMsg::ConnectFailed { link, error });
            return;
        };
        tokio::spawn(async move {
            let dial = tokio::time::timeout(WAN_CONNECT_TIMEOUT, wan.dial(peer, &reach)).await;
            let _ = ctl.send(dialled(link, dial.map(|r| r.map(LinkStream::Wan))));
        });
    }
}

#[cfg(not(feature = "wan"))]
impl Io {
    fn wan_ready(&self) -> bool {
        false
    }

    async fn wan_incoming(&self) -> Option<std::convert::Infallible> {
        std::future::pending().await
    }

    fn wan_accept(&mut self, _: Option<std::convert::Infallible>) {}

    fn dial_wan(
        &mut self,
        link: LinkId,
        _: natter_core::identity::IdentityKey,
        _: natter_core::wire::Reach,
    ) {
        let error = "this natter was built without links beyond the LAN".to_string();
        let _ = self.ctl.send(LinkMsg::ConnectFailed { link, error });
    }
}

/// Tell the node where our endpoint can be reached, now and on each change.
#[cfg(feature = "wan")]
async fn report_reach(wan: crate::wan::Wan, node: NodeTx) {
    wan.watch_reach(|reach| node.send(ToNode::Input(Input::OwnReach(reach))))
        .await;
}
