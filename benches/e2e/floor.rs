//! The floor of a verified, written file transfer: what any transfer of a
//! file over a natter link must do per byte on top of the encrypted bulk
//! row, and nothing more. No node, no protocol, no tree: the same bare
//! `Phase` link loop as `natter_rows::bulk`, but
//!
//! - the sender reads each piece of [`PIECE`] bytes (the most one
//!   `FileData` frame carries) from a real file with `pread` (page cache),
//!   straight into the frame it seals;
//! - the receiver hashes each piece with BLAKE3 (what verification must
//!   at least do) and hands it to a writer thread that `pwrite`s it to a
//!   new file and `fdatasync`s every 4 MiB, as natter's `FsFileStore`
//!   does; the clock stops once the last piece is written and synced.
//!
//! natter's file row can approach this figure but not pass it, so its
//! ratio to the encrypted bulk row says what ratio is reachable at all.

use std::fs::File;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bao_tree::blake3;
use natter_core::wire::limits::{FILE_GROUP_SIZE, MAX_DATA_GROUPS};
use natter_core::wire::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::natter_rows;

/// Bytes of one piece: the data of the largest `FileData` frame (three
/// 16 KiB groups).
pub const PIECE: usize = FILE_GROUP_SIZE as usize * MAX_DATA_GROUPS as usize;
/// Size of the source file; the sender reads it round and round.
pub const SOURCE_BYTES: usize = 64 << 20;
/// The receiver makes its file durable every this many bytes, as natter
/// does (`files::COMMIT_GROUPS` groups).
const SYNC_EVERY: u64 = natter_core::files::COMMIT_GROUPS * FILE_GROUP_SIZE;
/// Pieces queued for the writer thread at most.
const WRITE_QUEUE: usize = 64;

/// Bytes per second for `duration`: `source` (of [`SOURCE_BYTES`]) read
/// piece by piece, sealed, sent, opened, hashed and written to a new file
/// in `dir`, which is removed afterwards.
pub async fn file_floor(source: &Path, dir: &Path, duration: Duration) -> Result<f64> {
    let source = File::open(source).context("opening the floor's source file")?;
    let received = dir.join("floor-received.bin");
    let sink = File::create(&received).context("creating the floor's file")?;
    let (mut tx, mut la, mut rx, mut lb) = natter_rows::established().await?;
    let sender = tokio::spawn(async move {
        let mut frames = [Frame::Data(vec![0; PIECE])];
        let mut out = Vec::with_capacity(2 + 65_535);
        // Whole pieces only, from the start again at the end of the file.
        let whole = (SOURCE_BYTES / PIECE) as u64;
        let mut n = 0u64;
        let start = Instant::now();
        while start.elapsed() < duration {
            if let Frame::Data(piece) = &mut frames[0] {
                source.read_exact_at(piece, (n % whole) * PIECE as u64)?;
            }
            n += 1;
            out.clear();
            la.send(&frames, &mut out)?;
            tx.write_all(&out).await?;
        }
        tx.shutdown().await?;
        anyhow::Ok(())
    });
    let (pieces, queue) = std::sync::mpsc::sync_channel::<Vec<u8>>(WRITE_QUEUE);
    let disk = std::thread::Builder::new()
        .name("floor-writer".into())
        .spawn(move || {
            let (mut at, mut synced) = (0u64, 0u64);
            for piece in queue {
                sink.write_all_at(&piece, at)?;
                at += piece.len() as u64;
                if at - synced >= SYNC_EVERY {
                    sink.sync_data()?;
                    synced = at;
                }
            }
            sink.sync_data()?;
            std::io::Result::Ok(at)
        })?;
    let start = Instant::now();
    let mut buf = vec![0u8; 256 * 1024];
    let mut unused = Vec::new();
    loop {
        let n = rx.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        for f in lb.on_bytes(&buf[..n], &mut unused)?.frames {
            if let Frame::Data(piece) = f {
                black_box(blake3::hash(&piece));
                pieces.send(piece).context("the floor's writer stopped")?;
            }
        }
    }
    drop(pieces);
    let written = tokio::task::spawn_blocking(move || disk.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the floor's writer panicked"))??;
    let secs = start.elapsed().as_secs_f64();
    sender.await??;
    std::fs::remove_file(&received)?;
    Ok(written as f64 / secs)
}
