//! Baselines without any protocol: raw tokio TCP over loopback and the raw
//! ChaCha20-Poly1305 seal.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Result;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::net;

/// Size of each write in the bulk runs.
pub const BULK_WRITE: usize = 64 * 1024;
/// Payload of one ping or pong.
pub const PING_SIZE: usize = 64;

/// Raw TCP bulk: one task writes 64 KiB buffers for `duration`, another reads
/// until EOF. Returns bytes per second as seen by the reader.
pub async fn tcp_bulk(duration: Duration) -> Result<f64> {
    let (tx, rx) = net::pair().await?;
    let writer = net::own_thread(tx, move |mut tx| async move {
        let buf = vec![0xA5u8; BULK_WRITE];
        let start = Instant::now();
        while start.elapsed() < duration {
            tx.write_all(&buf).await?;
        }
        tx.shutdown().await?;
        anyhow::Ok(())
    });
    let reader = net::own_thread(rx, move |mut rx| async move {
        let mut buf = vec![0u8; 4 * BULK_WRITE];
        let mut total = 0u64;
        let start = Instant::now();
        loop {
            let n = rx.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        anyhow::Ok(total as f64 / start.elapsed().as_secs_f64())
    });
    writer.await??;
    reader.await?
}

/// Raw TCP ping-pong of `PING_SIZE` bytes: `warmup` round trips that are not
/// recorded, then `rounds` recorded ones, on a current-thread runtime (see
/// [`net::ping_pong`]); each recorded round trip's time.
pub fn tcp_ping_pong_samples(warmup: usize, rounds: usize) -> Result<Vec<std::time::Duration>> {
    let total = warmup + rounds;
    net::ping_pong(
        move |mut s: TcpStream| async move {
            let mut buf = [0u8; PING_SIZE];
            for _ in 0..total {
                s.read_exact(&mut buf).await?;
                s.write_all(&buf).await?;
            }
            Ok(())
        },
        move |mut s: TcpStream| async move {
            let mut buf = [0x5Au8; PING_SIZE];
            let mut samples = Vec::with_capacity(rounds);
            for i in 0..total {
                let t = Instant::now();
                s.write_all(&buf).await?;
                s.read_exact(&mut buf).await?;
                if i >= warmup {
                    samples.push(t.elapsed());
                }
            }
            Ok(samples)
        },
    )
}

/// The plaintext sizes measured for the raw seal: a small chat frame, 1 KiB,
/// 16 KiB (the chat text limit) and 65519 B (the largest Noise plaintext,
/// 65535 minus the 16-byte tag).
pub const SEAL_SIZES: [usize; 4] = [64, 1024, 16 * 1024, 65_519];

/// Seals per second of `size` bytes by `seal(nonce, buffer)` on the calling
/// thread for `duration`, with a Noise-style counter nonce (4 zero bytes,
/// then the counter little endian).
fn seals_per_second(
    size: usize,
    duration: Duration,
    mut seal: impl FnMut([u8; 12], &mut [u8]),
) -> f64 {
    let mut buf = vec![0x42u8; size];
    let mut counter = 0u64;
    // Check the clock once per batch of about 256 KiB (at least one seal).
    let batch = (256 * 1024 / size.max(1)).max(1) as u64;
    let start = Instant::now();
    while start.elapsed() < duration {
        for _ in 0..batch {
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&counter.to_le_bytes());
            seal(nonce, black_box(&mut buf));
            counter += 1;
        }
    }
    counter as f64 / start.elapsed().as_secs_f64()
}

/// Raw ChaCha20-Poly1305 `encrypt_in_place_detached` (the pure-Rust crate,
/// snow's default) of `size` bytes with a fixed key. Returns seals per second.
pub fn aead_seal(size: usize, duration: Duration) -> f64 {
    let cipher = ChaCha20Poly1305::new(&Key::from([7u8; 32]));
    seals_per_second(size, duration, |nonce, buf| {
        let tag = cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &[], buf)
            .expect("seal of a bounded buffer");
        black_box(tag);
    })
}

/// As [`aead_seal`], with ring's ChaCha20-Poly1305 (`seal_in_place_separate_tag`),
/// the implementation natter's link uses.
pub fn aead_seal_ring(size: usize, duration: Duration) -> f64 {
    use ring::aead::{Aad, LessSafeKey, Nonce as RingNonce, UnboundKey, CHACHA20_POLY1305};
    let key = LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, &[7u8; 32]).expect("a 32-byte ChaCha20 key"),
    );
    seals_per_second(size, duration, |nonce, buf| {
        let tag = key
            .seal_in_place_separate_tag(RingNonce::assume_unique_for_key(nonce), Aad::empty(), buf)
            .expect("seal of a bounded buffer");
        let _ = black_box(tag);
    })
}

/// Message ids as natter's chat core makes them, with the wall clock they
/// carry: `natter_core::chat::message_id_at` of the clock now and cheap
/// pseudo-random bytes (xorshift; the benchmarks need the shape, not
/// secrecy). The raw SQLite floor and the store-only row both use it, so
/// they store "the same rows" as the chat rows do.
pub fn natter_ids() -> impl FnMut() -> ([u8; 16], u64) {
    natter_ids_at(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    })
}

/// [`natter_ids`] with each id's clock (milliseconds) from `clock`.
pub fn natter_ids_at(mut clock: impl FnMut() -> u64) -> impl FnMut() -> ([u8; 16], u64) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    move || {
        let clock = clock();
        let mut random = [0u8; 16 - natter_core::chat::ID_CLOCK_BYTES];
        for chunk in random.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        (natter_core::chat::message_id_at(clock, &random), clock)
    }
}

/// `verify_strict` of `posts` on `threads` threads at once, each author's
/// key made a point once per thread (`ParsedKeys`, as natter's check
/// workers do), so what is timed is the check itself. Each thread takes
/// the next [`VERIFY_CHUNK`] posts (round and round) from a shared counter
/// until `duration` is up, so a core that is slow for a while (another
/// process, an interrupt) holds up nobody: with a thread per core, the
/// most the machine checks. Not natter's `AllCores` (which splits each
/// batch in equal parts and waits for the slowest one). Returns checks
/// per second; fails if one did not verify.
pub fn verify_rate(
    posts: &[natter_core::chat::SignedPost],
    threads: usize,
    duration: Duration,
) -> Result<f64> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    anyhow::ensure!(!posts.is_empty(), "no posts to check");
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let counts = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut keys = natter_core::identity::ParsedKeys::default();
                    let mut done = 0u64;
                    while start.elapsed() < duration {
                        let first = next.fetch_add(VERIFY_CHUNK, Ordering::Relaxed);
                        for i in first..first + VERIFY_CHUNK {
                            let post = &posts[i % posts.len()];
                            anyhow::ensure!(
                                post.verify_with(&mut keys).is_ok(),
                                "a signature did not verify"
                            );
                            done += 1;
                        }
                    }
                    anyhow::Ok(done)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .map_err(|_| anyhow::anyhow!("a check thread panicked"))?
            })
            .collect::<Result<Vec<u64>>>()
    })?;
    let elapsed = start.elapsed().as_secs_f64();
    Ok(counts.iter().sum::<u64>() as f64 / elapsed)
}

/// Posts a verify thread takes at a time: a few hundred microseconds of
/// work, so the counter is touched rarely and the clock checked often.
pub const VERIFY_CHUNK: usize = 16;

/// Raw SQLite on natter's own schema: what SQLite alone needs for the
/// sending node's rows. A store is created by `natter::store::Store::open`
/// (every migration, so every index and trigger of the app's file), closed,
/// and reopened by plain rusqlite with the store's pragmas; then `count`
/// direct messages are written with the statements the store runs, in
/// transactions of `batch`: the inserts (`natter::store::INSERT_MESSAGE`),
/// the batch's full-text entries (`INDEX_INSERTED`) and its waiting run
/// (`ADD_WAITING`); each batch is then acked in one transaction as the
/// store acks a burst it stored lately (each id's `seq` known from its
/// insert, as the store remembers them, `natter::store::SENT_LATELY`;
/// older ones it looks up with `FIND_OWN_DIRECT`): the waiting
/// runs before the last read (`WAITING_BEFORE`) and the batch's ended
/// (`DELETE_WAITING`), the receipts before it read (`RECEIPTS_BEFORE`) and
/// its receipt run written (`ADD_RECEIPTS`). No natter code runs while the
/// clock does. Sets apart what natter's rows cost SQLite (this against the
/// floor) from what natter's code adds (`natter store alone` against
/// this). Returns messages per second.
pub fn sqlite_natter_rows(count: usize, batch: usize) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    drop(natter::store::Store::open(dir.path())?);
    let mut conn = rusqlite::Connection::open(dir.path().join(natter::store::DB_FILE))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let (peer, me) = ([0x22u8; 32], [0x11u8; 32]);
    // The two keys' rows in `identities`, as the store adds them with a
    // peer's first message (schema version 10).
    let ref_of = |key: [u8; 32]| -> rusqlite::Result<i64> {
        conn.query_row(
            "INSERT INTO identities (key) VALUES (?1) RETURNING ref",
            [key],
            |row| row.get(0),
        )
    };
    let (peer_ref, me_ref) = (ref_of(peer)?, ref_of(me)?);
    let mut next_id = natter_ids();
    let start = Instant::now();
    let mut done = 0usize;
    while done < count {
        let n = batch.min(count - done);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (mut first, mut last) = (None, 0);
        {
            let mut insert = tx.prepare_cached(natter::store::INSERT_MESSAGE)?;
            for i in done..done + n {
                let (id, at) = next_id();
                let at = i64::try_from(at)?;
                let text = format!("message {i} of the chat benchmark");
                // A direct message of ours: no signature, room or wire
                // form; `legacy` 0 as for every direct message.
                let none: Option<&[u8]> = None;
                insert.execute(rusqlite::params![
                    id, peer_ref, me_ref, at, text, none, true, at, at, none, 0, none
                ])?;
                last = tx.last_insert_rowid();
                first.get_or_insert(last);
            }
        }
        let first = first.unwrap_or(0);
        tx.execute(natter::store::INDEX_INSERTED, [first, last])?;
        tx.execute(
            natter::store::ADD_WAITING,
            rusqlite::params![peer, first, last],
        )?;
        tx.commit()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let now = i64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_millis(),
            )?;
            let (lo, hi) = (first, last);
            let runs: Vec<(i64, i64)> = tx
                .prepare_cached(natter::store::WAITING_BEFORE)?
                .query_map(rusqlite::params![peer, hi], |r| Ok((r.get(0)?, r.get(1)?)))?
                .take(2)
                .collect::<Result<_, _>>()?;
            anyhow::ensure!(
                runs.first() == Some(&(lo, hi)),
                "an ack found no waiting run"
            );
            tx.execute(natter::store::DELETE_WAITING, rusqlite::params![peer, lo])?;
            let held: Option<(i64, i64)> = tx
                .prepare_cached(natter::store::RECEIPTS_BEFORE)?
                .query_map([hi], |r| Ok((r.get(0)?, r.get(1)?)))?
                .next()
                .transpose()?;
            anyhow::ensure!(
                held.is_none_or(|(_, last)| last < lo),
                "a receipt was there"
            );
            tx.execute(natter::store::ADD_RECEIPTS, [lo, hi, now])?;
        }
        tx.commit()?;
        done += n;
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

/// Raw SQLite, the floor under natter's chat rows: `count` direct messages
/// (16-byte id laid out as natter makes them, the clock's milliseconds
/// then random bytes (`natter_core::chat::ID_CLOCK_BYTES`), 32-byte peer
/// and author, timestamp, ~34 bytes of text)
/// inserted by rusqlite into a file with `journal_mode=WAL` and
/// `synchronous=FULL` (one fsync per commit, on the writing thread; natter
/// makes at most one per commit, on its sync thread), in transactions of
/// `batch`, with a conversation index and an external-content FTS5 index
/// filled once per transaction, as natter's store does. No natter code, no
/// sockets, one thread. Returns messages per second.
pub fn sqlite_inserts(count: usize, batch: usize) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let mut conn = floor_file(&dir.path().join("raw.sqlite"))?;
    let start = Instant::now();
    let mut done = 0usize;
    let mut next_id = natter_ids();
    while done < count {
        let n = batch.min(count - done);
        let rows: Vec<FloorRow> = (done..done + n)
            .map(|i| floor_row(&mut next_id, i))
            .collect();
        floor_store(&mut conn, &rows, &[])?;
        done += n;
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

/// One message of the floor: id, timestamp, text.
type FloorRow = ([u8; 16], i64, String);

fn floor_row(next_id: &mut impl FnMut() -> ([u8; 16], u64), i: usize) -> FloorRow {
    (
        next_id().0,
        i as i64,
        format!("message {i} of the chat benchmark"),
    )
}

/// A file as the floor writes it: WAL, `synchronous=FULL`, the message
/// table with its two indexes and FTS5.
fn floor_file(path: &std::path::Path) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE messages (
            seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, conv_peer BLOB,
            author BLOB NOT NULL, timestamp_ms INTEGER NOT NULL, text TEXT NOT NULL,
            outgoing INTEGER NOT NULL, received_ms INTEGER NOT NULL) STRICT;
         CREATE INDEX messages_by_conversation ON messages (conv_peer, timestamp_ms, seq);
         CREATE VIRTUAL TABLE messages_fts USING fts5 (text, content = 'messages',
            content_rowid = 'seq', tokenize = 'unicode61 remove_diacritics 2');",
    )?;
    Ok(conn)
}

/// One transaction of the floor: `rows` inserted, their full-text entries
/// added in one statement, and the acked runs `acks` (first and last
/// timestamp) recorded, if any (only the pipeline's sender has them, in
/// the `acked` table it adds to its file; the floor's transaction stays
/// its inserts and their index).
fn floor_store(
    conn: &mut rusqlite::Connection,
    rows: &[FloorRow],
    acks: &[(i64, i64)],
) -> Result<()> {
    let (peer, author) = ([0x22u8; 32], [0x11u8; 32]);
    let tx = conn.transaction()?;
    let mut first = None;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO messages (id, conv_peer, author, timestamp_ms, text, outgoing, \
             received_ms) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?4)",
        )?;
        for (id, at, text) in rows {
            insert.execute(rusqlite::params![id, peer, author, at, text])?;
            first.get_or_insert(tx.last_insert_rowid());
        }
        if !acks.is_empty() {
            let mut ack = tx.prepare_cached("INSERT INTO acked (first, last) VALUES (?1, ?2)")?;
            for (a, b) in acks {
                ack.execute([a, b])?;
            }
        }
    }
    if let Some(first) = first {
        tx.execute(
            "INSERT INTO messages_fts (rowid, text) SELECT seq, text FROM messages \
             WHERE seq BETWEEN ?1 AND ?2",
            [first, tx.last_insert_rowid()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// The least two nodes' chat can cost: the floor's work done twice, as a
/// pipeline of two threads with no protocol between them. The sending
/// thread stores each batch of `batch` (a floor transaction, fsynced) and
/// only then hands it to the receiving thread, which stores all it has been
/// handed in one transaction (fsynced) and only then acks it; the sender
/// records the acks that came back in its next transaction, and after its
/// last batch in one more per arrival. The clock stops when the last ack is
/// recorded. Durable before passed on, as natter's nodes are; no link, no
/// frames, no events. Returns messages per second.
pub fn sqlite_pipeline(count: usize, batch: usize) -> Result<f64> {
    use std::sync::mpsc;
    let dir = tempfile::tempdir()?;
    let mut sender = floor_file(&dir.path().join("sender.sqlite"))?;
    sender.execute_batch(
        "CREATE TABLE acked (first INTEGER PRIMARY KEY, last INTEGER NOT NULL) STRICT;",
    )?;
    let mut receiver = floor_file(&dir.path().join("receiver.sqlite"))?;
    let (hand_over, handed) = mpsc::channel::<Vec<FloorRow>>();
    let (ack, acks) = mpsc::channel::<(i64, i64)>();
    let start = Instant::now();
    let receiving = std::thread::spawn(move || -> Result<()> {
        while let Ok(mut rows) = handed.recv() {
            rows.extend(handed.try_iter().flatten());
            floor_store(&mut receiver, &rows, &[])?;
            if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
                // The sender may have stopped on an error of its own.
                let _ = ack.send((first.1, last.1));
            }
        }
        Ok(())
    });
    let mut next_id = natter_ids();
    let (mut done, mut acked) = (0usize, 0usize);
    let messages_in = |runs: &[(i64, i64)]| -> usize {
        runs.iter()
            .map(|(first, last)| usize::try_from(last - first + 1).unwrap_or(0))
            .sum()
    };
    let sent = (|| -> Result<()> {
        while done < count {
            let n = batch.min(count - done);
            let rows: Vec<FloorRow> = (done..done + n)
                .map(|i| floor_row(&mut next_id, i))
                .collect();
            let runs: Vec<_> = acks.try_iter().collect();
            acked += messages_in(&runs);
            floor_store(&mut sender, &rows, &runs)?;
            hand_over.send(rows)?;
            done += n;
        }
        while acked < count {
            let mut runs = vec![acks.recv()?];
            runs.extend(acks.try_iter());
            acked += messages_in(&runs);
            floor_store(&mut sender, &[], &runs)?;
        }
        Ok(())
    })();
    let elapsed = start.elapsed();
    drop(hand_over);
    let received = receiving
        .join()
        .map_err(|_| anyhow::anyhow!("the receiving thread panicked"))?;
    // The receiver's error explains a sender that lost its acks.
    received?;
    sent?;
    Ok(count as f64 / elapsed.as_secs_f64())
}
