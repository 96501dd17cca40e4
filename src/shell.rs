//! The tokio shell: sockets, timers and tasks around the sans-IO [`Node`].
//!
//! One task owns the node and runs a `select!` over the listener, the beacon
//! socket, link traffic, user commands and the node's next deadline. Every
//! link has a reader task (bounded channel into the node, so a fast sender
//! waits for us instead of filling memory) and a writer task (coalesces
//! queued messages into one write and reports what it flushed).

use natter_core::event::Event;
use natter_core::node::{Command, Input, Node, Output};
use natter_core::peer::LinkId;
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Default UDP port of discovery beacons.
pub const DEFAULT_BEACON_PORT: u16 = 47474;
/// Default TCP port natter listens on; when it is taken the system picks a free one.
pub const DEFAULT_LISTEN_PORT: u16 = 47475;
/// How long a TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest single read from a socket.
const READ_CHUNK: usize = 64 * 1024;
/// Most bytes the writer coalesces into one write.
const WRITE_BATCH: usize = 256 * 1024;
/// Inputs of one kind handled back to back before outputs are drained.
const BATCH_INPUTS: usize = 1024;
/// Reads buffered between reader tasks and the node.
const READ_QUEUE: usize = 64;

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

/// Messages from link tasks to the node task.
enum LinkMsg {
    Connected { link: LinkId, stream: TcpStream },
    ConnectFailed { link: LinkId, error: String },
    Flushed { link: LinkId, bytes: usize },
    Closed { link: LinkId, error: Option<String> },
}

struct LinkTasks {
    writer: mpsc::UnboundedSender<Vec<u8>>,
    reader: JoinHandle<()>,
}

/// Run the node until it shuts down (`Command::Quit`, or the command channel
/// closes). Events go to `events`; the function returns after a best-effort
/// flush of every link.
pub async fn run(
    mut node: Node,
    listener: TcpListener,
    beacons: Option<UdpSocket>,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::UnboundedSender<Event>,
    clock: Instant,
) {
    let now = || u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (data_tx, mut data_rx) = mpsc::channel::<(LinkId, Vec<u8>)>(READ_QUEUE);
    let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel::<LinkMsg>();
    let mut links: HashMap<LinkId, LinkTasks> = HashMap::new();
    let mut writers: Vec<JoinHandle<()>> = Vec::new();
    let mut udp_buf = vec![0u8; 2048];
    let mut commands_open = true;

    loop {
        // Carry out everything the node asked for.
        while let Some(out) = node.poll_output() {
            match out {
                Output::Datagram { to, data } => {
                    if let Some(sock) = &beacons {
                        // A lost beacon is harmless; the next one follows.
                        let _ = sock.try_send_to(&data, to);
                    }
                }
                Output::Dial { link, addr } => {
                    let ctl = ctl_tx.clone();
                    tokio::spawn(async move {
                        let msg =
                            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
                                .await
                            {
                                Ok(Ok(stream)) => LinkMsg::Connected { link, stream },
                                Ok(Err(e)) => LinkMsg::ConnectFailed {
                                    link,
                                    error: e.to_string(),
                                },
                                Err(_) => LinkMsg::ConnectFailed {
                                    link,
                                    error: "timed out".into(),
                                },
                            };
                        let _ = ctl.send(msg);
                    });
                }
                Output::Send { link, data } => {
                    if let Some(t) = links.get(&link) {
                        let _ = t.writer.send(data);
                    }
                }
                Output::Close { link } => {
                    if let Some(t) = links.remove(&link) {
                        // Dropping the sender lets the writer flush and shut down.
                        t.reader.abort();
                    }
                }
                Output::Event(e) => {
                    let _ = events.send(e);
                }
            }
        }
        if node.is_shut_down() {
            break;
        }

        let deadline = node
            .poll_timeout()
            .map(|t| clock + Duration::from_millis(t));
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, remote)) = accepted {
                    if let Some(link) = node.accept(now(), remote) {
                        let tasks = spawn_link(link, stream, data_tx.clone(), ctl_tx.clone(), &mut writers);
                        links.insert(link, tasks);
                    }
                    // Over the limits: the stream is dropped, which closes it.
                }
            }
            received = recv_beacon(beacons.as_ref(), &mut udp_buf) => {
                if let Some((n, from)) = received {
                    node.handle(now(), Input::Datagram { from, data: udp_buf[..n].to_vec() });
                }
            }
                        Some((link, data)) = data_rx.recv() => {
                let t = now();
                node.handle(t, Input::Received { link, data });
                // Handle what else is ready before draining, so replies
                // (acks, pongs) of many reads share Noise messages.
                for _ in 0..BATCH_INPUTS {
                    match data_rx.try_recv() {
                        Ok((link, data)) => node.handle(t, Input::Received { link, data }),
                        Err(_) => break,
                    }
                }
            }
            Some(msg) = ctl_rx.recv() => match msg {
                LinkMsg::Connected { link, stream } => {
                    let tasks = spawn_link(link, stream, data_tx.clone(), ctl_tx.clone(), &mut writers);
                    links.insert(link, tasks);
                    node.handle(now(), Input::Connected { link });
                }
                LinkMsg::ConnectFailed { link, error } => node.handle(now(), Input::ConnectFailed { link, error }),
                LinkMsg::Flushed { link, bytes } => node.handle(now(), Input::Flushed { link, bytes }),
                LinkMsg::Closed { link, error } => {
                    if let Some(t) = links.remove(&link) {
                        t.reader.abort();
                        node.handle(now(), Input::Closed { link, error });
                    }
                }
            },
            cmd = commands.recv(), if commands_open => match cmd {
                                Some(cmd) => {
                    let t = now();
                    node.handle(t, Input::Command(cmd));
                    for _ in 0..BATCH_INPUTS {
                        match commands.try_recv() {
                            Ok(cmd) => node.handle(t, Input::Command(cmd)),
                            Err(_) => break,
                        }
                    }
                }
                None => {
                    commands_open = false;
                    node.handle(now(), Input::Command(Command::Quit));
                }
            },
            _ = sleep_until(deadline) => node.handle_timeout(now()),
        }
    }

    // Let writers flush the Close frames, within reason.
    drop(links);
    let flush = async {
        for w in writers {
            let _ = w.await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
}

async fn recv_beacon(sock: Option<&UdpSocket>, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    match sock {
        Some(s) => s.recv_from(buf).await.ok(),
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

fn spawn_link(
    link: LinkId,
    stream: TcpStream,
    data_tx: mpsc::Sender<(LinkId, Vec<u8>)>,
    ctl_tx: mpsc::UnboundedSender<LinkMsg>,
    writers: &mut Vec<JoinHandle<()>>,
) -> LinkTasks {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (writer_tx, mut writer_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let ctl = ctl_tx.clone();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; READ_CHUNK];
        let error = loop {
            match rd.read(&mut buf).await {
                Ok(0) => break None,
                Ok(n) => {
                    if data_tx.send((link, buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
                Err(e) => break Some(e.to_string()),
            }
        };
        let _ = ctl.send(LinkMsg::Closed { link, error });
    });
    let writer = tokio::spawn(async move {
        let mut batch = Vec::new();
        while let Some(first) = writer_rx.recv().await {
            batch.clear();
            batch.extend_from_slice(&first);
            while batch.len() < WRITE_BATCH {
                match writer_rx.try_recv() {
                    Ok(more) => batch.extend_from_slice(&more),
                    Err(_) => break,
                }
            }
            if let Err(e) = wr.write_all(&batch).await {
                let _ = ctl_tx.send(LinkMsg::Closed {
                    link,
                    error: Some(e.to_string()),
                });
                return;
            }
            let _ = ctl_tx.send(LinkMsg::Flushed {
                link,
                bytes: batch.len(),
            });
        }
        let _ = wr.shutdown().await;
    });
    writers.retain(|w| !w.is_finished());
    writers.push(writer);
    LinkTasks {
        writer: writer_tx,
        reader,
    }
}
