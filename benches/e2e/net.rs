//! Loopback sockets and runtimes. Everything binds and connects to
//! 127.0.0.1 only.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::{Builder, Runtime};

/// The only address this program uses: 127.0.0.1, any free port.
pub const LOOPBACK: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// The runtime for throughput and handshake runs: multi-thread, 2 workers,
/// so a sender and a receiver can each have a core.
pub fn multi_thread_runtime() -> Result<Runtime> {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the multi-thread runtime")
}

/// A single-threaded runtime, for latency runs (see [`ping_pong`]).
pub fn current_thread_runtime() -> Result<Runtime> {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building a current-thread runtime")
}

/// Runs `task` with `stream` on a current-thread runtime of its own, on a
/// thread of its own (tokio's blocking pool). Both ends of every bulk row
/// run like this. On one shared multi-thread runtime, tokio often runs a
/// woken task on the worker that woke it, so the reader and the writer
/// shared one worker for stretches of a run: the same row came out at 1.4
/// or at 1.8 cores busy, and 0.8–1.45 GB/s, from one run to the next
/// (docs/PERFORMANCE.md, "Why the bulk ratio swung").
pub fn own_thread<T, F, Fut>(stream: TcpStream, task: F) -> tokio::task::JoinHandle<Result<T>>
where
    T: Send + 'static,
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>>,
{
    let stream = stream.into_std();
    tokio::task::spawn_blocking(move || {
        let stream = stream.context("taking the socket off the shared runtime")?;
        let rt = current_thread_runtime()?;
        rt.block_on(async move {
            let stream = TcpStream::from_std(stream)?;
            task(stream).await
        })
    })
}

/// A listener on 127.0.0.1 with a free port.
pub async fn listen() -> Result<TcpListener> {
    TcpListener::bind(LOOPBACK)
        .await
        .context("binding 127.0.0.1")
}

/// A connected TCP pair over loopback `(dialler, acceptor)`, both with
/// TCP_NODELAY, as a messenger would set it.
pub async fn pair() -> Result<(TcpStream, TcpStream)> {
    let listener = listen().await?;
    let addr = listener.local_addr()?;
    let (dialled, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (dialled, (accepted, _)) = (dialled?, accepted?);
    dialled.set_nodelay(true)?;
    accepted.set_nodelay(true)?;
    Ok((dialled, accepted))
}

/// Runs one ping-pong measurement: a fresh loopback pair, `server` and
/// `client` spawned as two tasks on a new current-thread runtime; returns the
/// client's round-trip samples once both have finished.
///
/// Why a current-thread runtime: ping-pong has one message in flight, so
/// there is nothing to run in parallel, and what we want to compare is the
/// software cost per round trip. Trials on the 2-core VM (20k round trips,
/// raw TCP, 3 runs each, machine busy with builds) gave p50/p99 in µs:
/// - one current-thread runtime, both ends: 12.6/15.5, 12.7/17.4, 12.7/15.4
/// - 2-worker multi-thread runtime:         13.1/14.9, 12.9/17.7, 12.9/15.6
/// - two threads, a current-thread runtime each: 15.4/19.1, 15.6/37.0, 15.5/21.8
///
/// Two threads add a cross-core wake-up per message and the worst p99 jitter;
/// the multi-thread runtime only matches the single thread because its LIFO
/// slot happens to keep both tasks on one worker, which other tasks can upset.
/// So: one current-thread runtime. natter ping-pong rows must use the same
/// shape (both nodes' tasks on one current-thread runtime) to be comparable.
pub fn ping_pong<S, SF, C, CF>(server: S, client: C) -> Result<Vec<Duration>>
where
    S: FnOnce(TcpStream) -> SF,
    SF: Future<Output = Result<()>> + Send + 'static,
    C: FnOnce(TcpStream) -> CF,
    CF: Future<Output = Result<Vec<Duration>>> + Send + 'static,
{
    let rt = current_thread_runtime()?;
    rt.block_on(async move {
        let (dialled, accepted) = pair().await?;
        let server = tokio::spawn(server(accepted));
        let client = tokio::spawn(client(dialled));
        let samples = client.await.context("ping-pong client task")?;
        let served = server.await.context("ping-pong server task")?;
        let samples = samples?;
        served?;
        Ok(samples)
    })
}
