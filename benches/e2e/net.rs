//! Loopback sockets and runtimes. Everything binds and connects to
//! 127.0.0.1 only.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use tokio::io::AsyncReadExt;
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

/// Handshakes per second: `in_flight` loops each dial, run `dial` on the
/// new connection and wait for the server to close it, against one server
/// that runs `answer` on every connection it accepts; for `duration` or
/// until `max` handshakes are done. The reference and natter handshake rows
/// both run here, so they differ only in `dial` and `answer`.
///
/// One in flight: the server and the dialler each run on a current-thread
/// runtime of their own thread (as the bulk rows, [`own_thread`]), the
/// server answering one connection after the other. On the shared
/// runtime, whether tokio ran both on one worker or on two changed the rate
/// from run to run, and the ratio of two rows with it. Sixteen in flight
/// keep both workers of the shared runtime busy either way and run there.
pub async fn handshake_rate<D, DF, A, AF>(
    in_flight: usize,
    duration: Duration,
    max: u64,
    dial: D,
    answer: A,
) -> Result<f64>
where
    D: Fn(TcpStream) -> DF + Clone + Send + Sync + 'static,
    DF: Future<Output = Result<TcpStream>> + Send + 'static,
    A: Fn(TcpStream) -> AF + Send + Sync + 'static,
    AF: Future<Output = ()> + Send + 'static,
{
    let listener = listen().await?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let serial = in_flight <= 1;
    // One connection answered after the other when serial; else each on a
    // task of its own. The listener is rebuilt on the runtime that runs it.
    let accept_loop = {
        let (listener, stop) = (listener.into_std()?, Arc::clone(&stop));
        async move {
            let listener = TcpListener::from_std(listener)?;
            while !stop.load(Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_millis(20), listener.accept()).await {
                    Ok(Ok((s, _))) => {
                        let _ = s.set_nodelay(true);
                        if serial {
                            answer(s).await;
                        } else {
                            tokio::spawn(answer(s));
                        }
                    }
                    // E.g. out of file descriptors: back off.
                    Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(1)).await,
                    Err(_) => {}
                }
            }
            anyhow::Ok(())
        }
    };
    let server = if serial {
        tokio::task::spawn_blocking(move || current_thread_runtime()?.block_on(accept_loop))
    } else {
        tokio::spawn(accept_loop)
    };
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let dial_loop = {
        let done = Arc::clone(&done);
        move || {
            let (dial, done) = (dial.clone(), Arc::clone(&done));
            async move {
                while start.elapsed() < duration && done.load(Ordering::Relaxed) < max {
                    let s = TcpStream::connect(addr).await?;
                    s.set_nodelay(true)?;
                    let mut s = dial(s).await?;
                    let n = s.read(&mut [0u8; 1]).await?;
                    ensure!(n == 0, "responder sent data after the handshake");
                    done.fetch_add(1, Ordering::Relaxed);
                }
                anyhow::Ok(())
            }
        }
    };
    let mut clients = Vec::new();
    if serial {
        clients.push(tokio::task::spawn_blocking(move || {
            current_thread_runtime()?.block_on(dial_loop())
        }));
    } else {
        for _ in 0..in_flight {
            clients.push(tokio::spawn(dial_loop()));
        }
    }
    let mut result = Ok(());
    for c in clients {
        let r = c.await.context("handshake task").and_then(|r| r);
        if result.is_ok() {
            result = r;
        }
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let served = server.await.context("handshake server").and_then(|r| r);
    result?;
    served?;
    Ok(done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64())
}
