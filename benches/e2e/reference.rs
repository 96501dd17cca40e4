//! The reference link: tokio + snow `Noise_XX_25519_ChaChaPoly_BLAKE2s` +
//! `u16` big-endian length framing, no natter code. It is what a careful but
//! plain implementation of DESIGN §4 achieves; natter rows are compared to it.
//!
//! Handshake payloads are empty (natter's carry an identity payload and a
//! signature, which costs extra; the target allows for that).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use snow::resolvers::{DefaultResolver, FallbackResolver, RingResolver};
use snow::{Builder, HandshakeState, Keypair, TransportState};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::net;
use crate::stats::Latency;

pub const PATTERN: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
pub const PROLOGUE: &[u8] = b"natter/1";
/// The largest Noise message, and so the largest frame body.
pub const MAX_MESSAGE: usize = 65_535;
/// The Poly1305 tag added to every transport message.
pub const TAG: usize = 16;
/// The largest plaintext in one Noise transport message.
pub const MAX_PLAINTEXT: usize = MAX_MESSAGE - TAG;
/// Flush a batch of small frames once it holds this many bytes.
pub const BATCH_BYTES: usize = 64 * 1024;

/// Whose ChaCha20-Poly1305 the reference link uses. snow's default (the
/// pure-Rust `chacha20poly1305` crate) is what a plain implementation gets;
/// natter's link uses ring's, so the rows with `Ring` compare natter with a
/// plain link built on the same primitive.
#[derive(Clone, Copy, Debug)]
pub enum Cipher {
    SnowDefault,
    Ring,
}

fn builder(cipher: Cipher) -> Builder<'static> {
    let params = PATTERN.parse().expect("valid Noise pattern");
    match cipher {
        Cipher::SnowDefault => Builder::new(params),
        Cipher::Ring => Builder::with_resolver(
            params,
            Box::new(FallbackResolver::new(
                Box::new(RingResolver),
                Box::new(DefaultResolver),
            )),
        ),
    }
}

/// A fresh static key pair.
pub fn keypair() -> Result<Keypair> {
    Ok(builder(Cipher::SnowDefault).generate_keypair()?)
}

fn initiator(cipher: Cipher, key: &[u8]) -> Result<HandshakeState> {
    Ok(builder(cipher)
        .local_private_key(key)?
        .prologue(PROLOGUE)?
        .build_initiator()?)
}

fn responder(cipher: Cipher, key: &[u8]) -> Result<HandshakeState> {
    Ok(builder(cipher)
        .local_private_key(key)?
        .prologue(PROLOGUE)?
        .build_responder()?)
}

/// Appends one frame (length + Noise message sealing `payload`) to `out`.
pub fn push_frame(ts: &mut TransportState, payload: &[u8], out: &mut Vec<u8>) -> Result<()> {
    ensure!(payload.len() <= MAX_PLAINTEXT, "payload too large");
    let at = out.len();
    out.resize(at + 2 + payload.len() + TAG, 0);
    let n = ts.write_message(payload, &mut out[at + 2..])?;
    out[at..at + 2].copy_from_slice(&(n as u16).to_be_bytes());
    out.truncate(at + 2 + n);
    Ok(())
}

/// Reads frames from a byte stream through one buffer: read as much as the
/// socket has, hand out every complete frame, then read again.
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> FrameReader<R> {
        FrameReader {
            inner,
            // Room for two maximal frames, so one is always complete after a compaction.
            buf: vec![0; 2 * (2 + MAX_MESSAGE)],
            start: 0,
            end: 0,
        }
    }

    /// Length of the complete frame at the front of the buffer, if any.
    fn complete(&self) -> Option<usize> {
        let have = &self.buf[self.start..self.end];
        if have.len() < 2 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([have[0], have[1]]));
        (have.len() >= 2 + len).then_some(len)
    }

    /// The next frame body, or `None` on a clean EOF between frames.
    pub async fn next(&mut self) -> Result<Option<&[u8]>> {
        loop {
            if let Some(len) = self.complete() {
                let body = self.start + 2;
                self.start = body + len;
                return Ok(Some(&self.buf[body..body + len]));
            }
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            } else if self.buf.len() - self.start < 2 + MAX_MESSAGE {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let n = self.inner.read(&mut self.buf[self.end..]).await?;
            if n == 0 {
                if self.start == self.end {
                    return Ok(None);
                }
                bail!("EOF inside a frame");
            }
            self.end += n;
        }
    }
}

/// Bound on a handshake message: XX with empty payloads needs at most 96
/// bytes; natter's identity payloads fit easily too.
pub const MAX_HANDSHAKE: usize = 1024;

/// Reads exactly one frame without reading past it (for the handshake),
/// checking its length against the buffer before reading the body.
async fn read_one_frame<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut len = [0u8; 2];
    r.read_exact(&mut len).await?;
    let len = usize::from(u16::from_be_bytes(len));
    ensure!(len <= buf.len(), "handshake message too long");
    r.read_exact(&mut buf[..len]).await?;
    Ok(len)
}

async fn write_handshake<W: AsyncWrite + Unpin>(w: &mut W, hs: &mut HandshakeState) -> Result<()> {
    let mut msg = [0u8; 2 + MAX_HANDSHAKE];
    let n = hs.write_message(&[], &mut msg[2..])?;
    msg[..2].copy_from_slice(&(n as u16).to_be_bytes());
    w.write_all(&msg[..2 + n]).await?;
    Ok(())
}

async fn read_handshake<R: AsyncRead + Unpin>(r: &mut R, hs: &mut HandshakeState) -> Result<()> {
    let mut msg = [0u8; MAX_HANDSHAKE];
    let mut payload = [0u8; MAX_HANDSHAKE];
    let n = read_one_frame(r, &mut msg).await?;
    hs.read_message(&msg[..n], &mut payload)?;
    Ok(())
}

/// XX as initiator: -> e; <- e, ee, s, es; -> s, se.
pub async fn handshake_initiator<S>(s: &mut S, cipher: Cipher, key: &[u8]) -> Result<TransportState>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut hs = initiator(cipher, key)?;
    write_handshake(s, &mut hs).await?;
    read_handshake(s, &mut hs).await?;
    write_handshake(s, &mut hs).await?;
    Ok(hs.into_transport_mode()?)
}

/// XX as responder.
pub async fn handshake_responder<S>(s: &mut S, cipher: Cipher, key: &[u8]) -> Result<TransportState>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut hs = responder(cipher, key)?;
    read_handshake(s, &mut hs).await?;
    write_handshake(s, &mut hs).await?;
    read_handshake(s, &mut hs).await?;
    Ok(hs.into_transport_mode()?)
}

/// An established reference link over a loopback pair:
/// `(initiator stream, initiator state, responder stream, responder state)`.
async fn established(
    cipher: Cipher,
) -> Result<(TcpStream, TransportState, TcpStream, TransportState)> {
    let (mut a, mut b) = net::pair().await?;
    let (ka, kb) = (keypair()?, keypair()?);
    let (ta, tb) = tokio::try_join!(
        handshake_initiator(&mut a, cipher, &ka.private),
        handshake_responder(&mut b, cipher, &kb.private)
    )?;
    Ok((a, ta, b, tb))
}

/// Handshakes per second: `in_flight` dialling loops each `connect,
/// handshake` against one accepting server until `duration` has passed or
/// `max` handshakes were done ([`net::handshake_rate`]). A handshake counts
/// once both sides finished: the responder closes the socket after reading
/// msg3 and the initiator waits for that EOF.
pub async fn handshakes(in_flight: usize, duration: Duration, max: u64) -> Result<f64> {
    let server_key = Arc::new(keypair()?.private);
    let client_key = Arc::new(keypair()?.private);
    net::handshake_rate(
        in_flight,
        duration,
        max,
        move |mut s| {
            let key = Arc::clone(&client_key);
            async move {
                handshake_initiator(&mut s, Cipher::SnowDefault, &key).await?;
                Ok(s)
            }
        },
        move |mut s| {
            let key = Arc::clone(&server_key);
            async move {
                // An error here shows up as an error on the dialling side.
                let _ = handshake_responder(&mut s, Cipher::SnowDefault, &key).await;
            }
        },
    )
    .await
}

/// Encrypted bulk: the initiator seals maximal messages (65519 B of
/// plaintext) for `duration`, one `write_all` per frame; the responder reads
/// and opens them until EOF. Returns plaintext bytes per second at the reader.
pub async fn bulk(cipher: Cipher, duration: Duration) -> Result<f64> {
    let (tx, mut ts_tx, rx, mut ts_rx) = established(cipher).await?;
    let writer = net::own_thread(tx, move |mut tx| async move {
        let plain = vec![0xA5u8; MAX_PLAINTEXT];
        let mut frame = Vec::with_capacity(2 + MAX_MESSAGE);
        let start = Instant::now();
        while start.elapsed() < duration {
            frame.clear();
            push_frame(&mut ts_tx, &plain, &mut frame)?;
            tx.write_all(&frame).await?;
        }
        tx.shutdown().await?;
        anyhow::Ok(())
    });
    let reader = net::own_thread(rx, move |rx| async move {
        let mut frames = FrameReader::new(rx);
        let mut plain = vec![0u8; MAX_MESSAGE];
        let mut total = 0u64;
        let start = Instant::now();
        while let Some(msg) = frames.next().await? {
            total += ts_rx.read_message(msg, &mut plain)? as u64;
        }
        anyhow::Ok(total as f64 / start.elapsed().as_secs_f64())
    });
    writer.await??;
    reader.await?
}

/// One-way small messages: the initiator seals one Noise message per
/// `size`-byte payload and writes them in batches of about 64 KiB (what a
/// BufWriter would do); the responder reads and opens each one. Returns
/// messages per second at the reader.
pub async fn one_way(size: usize, duration: Duration) -> Result<f64> {
    let (mut tx, mut ts_tx, rx, mut ts_rx) = established(Cipher::SnowDefault).await?;
    let writer = tokio::spawn(async move {
        let plain = vec![0x5Au8; size];
        let mut batch = Vec::with_capacity(BATCH_BYTES + 2 + MAX_MESSAGE);
        let start = Instant::now();
        while start.elapsed() < duration {
            batch.clear();
            while batch.len() < BATCH_BYTES {
                push_frame(&mut ts_tx, &plain, &mut batch)?;
            }
            tx.write_all(&batch).await?;
        }
        tx.shutdown().await?;
        anyhow::Ok(())
    });
    let reader = tokio::spawn(async move {
        let mut frames = FrameReader::new(rx);
        let mut plain = vec![0u8; MAX_MESSAGE];
        let mut count = 0u64;
        let start = Instant::now();
        while let Some(msg) = frames.next().await? {
            let n = ts_rx.read_message(msg, &mut plain)?;
            ensure!(n == size, "unexpected payload size");
            count += 1;
        }
        anyhow::Ok(count as f64 / start.elapsed().as_secs_f64())
    });
    writer.await??;
    reader.await?
}

/// Encrypted ping-pong of `size`-byte payloads, one Noise message each way,
/// on a current-thread runtime like the raw TCP ping-pong.
pub fn ping_pong(cipher: Cipher, size: usize, warmup: usize, rounds: usize) -> Result<Latency> {
    let total = warmup + rounds;
    let (ka, kb) = (keypair()?, keypair()?);
    let samples = net::ping_pong(
        move |mut s: TcpStream| async move {
            let mut ts = handshake_responder(&mut s, cipher, &kb.private).await?;
            let (rd, mut wr) = s.into_split();
            let mut frames = FrameReader::new(rd);
            let mut plain = vec![0u8; MAX_MESSAGE];
            let mut out = Vec::with_capacity(2 + MAX_MESSAGE);
            for _ in 0..total {
                let Some(msg) = frames.next().await? else {
                    bail!("EOF during ping-pong");
                };
                let n = ts.read_message(msg, &mut plain)?;
                out.clear();
                push_frame(&mut ts, &plain[..n], &mut out)?;
                wr.write_all(&out).await?;
            }
            Ok(())
        },
        move |mut s: TcpStream| async move {
            let mut ts = handshake_initiator(&mut s, cipher, &ka.private).await?;
            let (rd, mut wr) = s.into_split();
            let mut frames = FrameReader::new(rd);
            let mut plain = vec![0x5Au8; MAX_MESSAGE];
            let mut out = Vec::with_capacity(2 + MAX_MESSAGE);
            let mut samples = Vec::with_capacity(rounds);
            for i in 0..total {
                let t = Instant::now();
                out.clear();
                push_frame(&mut ts, &plain[..size], &mut out)?;
                wr.write_all(&out).await?;
                let Some(msg) = frames.next().await? else {
                    bail!("EOF during ping-pong");
                };
                let n = ts.read_message(msg, &mut plain)?;
                ensure!(n == size, "unexpected pong size");
                if i >= warmup {
                    samples.push(t.elapsed());
                }
            }
            Ok(samples)
        },
    )?;
    match Latency::from_samples(samples) {
        Some(l) => Ok(l),
        None => bail!("no ping-pong samples"),
    }
}
