//! Loopback sockets and runtimes. Everything binds and connects to
//! 127.0.0.1 only.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::thread;

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

/// A single-threaded runtime, one per thread in [`on_two_threads`].
pub fn current_thread_runtime() -> Result<Runtime> {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building a current-thread runtime")
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

/// Same as [`pair`] with blocking std sockets, so each end can be handed to
/// a different thread (and runtime).
pub fn std_pair() -> Result<(std::net::TcpStream, std::net::TcpStream)> {
    let listener = std::net::TcpListener::bind(LOOPBACK).context("binding 127.0.0.1")?;
    let dialled = std::net::TcpStream::connect(listener.local_addr()?)?;
    let (accepted, _) = listener.accept()?;
    for s in [&dialled, &accepted] {
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
    }
    Ok((dialled, accepted))
}

/// Runs `server` and `client` on two dedicated threads, each with its own
/// current-thread runtime, over a fresh loopback pair; returns what the client
/// returns once both have finished.
///
/// Why this shape for ping-pong: with both ends on one runtime (or on the
/// 2-worker pool) the wake-ups of the two ends interfere with the scheduler's
/// work stealing and the LIFO slot, and p99 depends on which worker happens to
/// run which task. Two threads with one current-thread runtime each behave
/// like two processes on one host — which is what two natter peers are — and
/// gave the most repeatable p50/p99 in trials on the 2-core VM.
pub fn on_two_threads<S, SF, C, CF, T>(server: S, client: C) -> Result<T>
where
    S: FnOnce(TcpStream) -> SF + Send + 'static,
    SF: Future<Output = Result<()>>,
    C: FnOnce(TcpStream) -> CF + Send + 'static,
    CF: Future<Output = Result<T>>,
    T: Send + 'static,
{
    let (dialled, accepted) = std_pair()?;
    let server =
        thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || -> Result<()> {
                let rt = current_thread_runtime()?;
                rt.block_on(async move { server(TcpStream::from_std(accepted)?).await })
            })?;
    let client =
        thread::Builder::new()
            .name("bench-client".into())
            .spawn(move || -> Result<T> {
                let rt = current_thread_runtime()?;
                rt.block_on(async move { client(TcpStream::from_std(dialled)?).await })
            })?;
    let client_result = client
        .join()
        .map_err(|_| anyhow::anyhow!("client thread panicked"))?;
    let server_result = server
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))?;
    let t = client_result?;
    server_result?;
    Ok(t)
}
