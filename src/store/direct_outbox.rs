//! Our own direct messages' outbox entries and receipts, kept as runs of
//! consecutive `seq`s (schema version 9).
//!
//! A direct message waits for one peer, the other side of its
//! conversation, and messages sent in a burst get consecutive `seq`s and
//! are acked in bursts. So instead of a row per message, `direct_waiting`
//! holds one row per run `(peer, first_seq, last_seq)`: every `seq` from
//! `first_seq` to `last_seq` is our direct message to `peer`, not acked
//! yet. `direct_receipts` holds one row per run `(first_seq, last_seq,
//! acked_ms)`: every `seq` in it is our direct message that its peer first
//! acked at `acked_ms`. A burst of a thousand messages is one row written
//! when it is stored and one row moved when its ack comes, not a thousand.
//!
//! The invariants every function here keeps:
//! - a `seq` is in at most one waiting run, and in at most one receipt run;
//! - every `seq` in a run is our own direct message (to the run's peer, for
//!   a waiting run): runs are only ever made from such `seq`s, and only
//!   ever cut into smaller ones;
//! - a receipt is never rewritten: a message acked again after it was
//!   queued again keeps its first ack's time.

use std::ops::RangeInclusive;

use rusqlite::{params, Connection, OptionalExtension};

use super::{DbError, IdentityBytes};

/// A run of consecutive `seq`s, both ends included.
pub(super) type Run = RangeInclusive<i64>;

/// Queues our direct message run `first_seq` ?2 to `last_seq` ?3 for
/// `peer` ?1: one row for a whole burst. Public for the benchmark, like
/// `messages::INSERT_MESSAGE`.
pub const ADD_WAITING: &str =
    "INSERT INTO direct_waiting (peer, first_seq, last_seq) VALUES (?1, ?2, ?3)";

/// `peer` ?1's waiting runs that start at or before `seq` ?2, latest
/// first: the ones that may hold `seq` ?2 or anything before it. The
/// caller stops at the first run that ends before what it looks for.
pub const WAITING_BEFORE: &str = "SELECT first_seq, last_seq FROM direct_waiting \
     WHERE peer = ?1 AND first_seq <= ?2 ORDER BY first_seq DESC";

/// Removes `peer` ?1's waiting run starting at ?2.
pub const DELETE_WAITING: &str = "DELETE FROM direct_waiting WHERE peer = ?1 AND first_seq = ?2";

/// The receipt runs that start at or before `seq` ?1, latest first.
pub const RECEIPTS_BEFORE: &str = "SELECT first_seq, last_seq, acked_ms FROM direct_receipts \
     WHERE first_seq <= ?1 ORDER BY first_seq DESC";

/// A receipt run: `first_seq` ?1 to `last_seq` ?2, first acked at ?3 ms.
pub const ADD_RECEIPTS: &str =
    "INSERT INTO direct_receipts (first_seq, last_seq, acked_ms) VALUES (?1, ?2, ?3)";

/// Cuts sorted, distinct `seqs` into runs of consecutive values.
pub(super) fn runs_of(seqs: &[i64]) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for &s in seqs {
        match out.last_mut() {
            Some(run) if run.end().checked_add(1) == Some(s) => *run = *run.start()..=s,
            _ => out.push(s..=s),
        }
    }
    out
}

/// The runs that overlap `run`, latest first: `sql` ([`WAITING_BEFORE`]
/// or [`RECEIPTS_BEFORE`], with `params` ending at `run`'s end) gives
/// the runs that start at or before it, latest first, and they are read
/// until the first that ends before `run`.
fn overlapping<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    run: &Run,
) -> Result<Vec<Run>, DbError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, |row| {
        Ok(row.get::<_, i64>(0)?..=row.get::<_, i64>(1)?)
    })?;
    let mut out = Vec::new();
    for r in rows {
        let r = r?;
        if r.end() < run.start() {
            break;
        }
        out.push(r);
    }
    Ok(out)
}

/// Queues `run` (each `seq` our direct message to `peer`, none waiting
/// yet) for `peer`.
pub(super) fn add_waiting(
    conn: &Connection,
    peer: &IdentityBytes,
    run: &Run,
) -> Result<(), DbError> {
    let mut stmt = conn.prepare_cached(ADD_WAITING)?;
    stmt.execute(params![&peer[..], run.start(), run.end()])?;
    Ok(())
}

/// Whether our direct message `seq` waits for `peer`.
pub(super) fn is_waiting(
    conn: &Connection,
    peer: &IdentityBytes,
    seq: i64,
) -> Result<bool, DbError> {
    let mut stmt = conn.prepare_cached(WAITING_BEFORE)?;
    let last: Option<i64> = stmt
        .query_row(params![&peer[..], seq], |row| row.get(1))
        .optional()?;
    Ok(last.is_some_and(|last| last >= seq))
}

/// Ends `peer`'s wait for the messages of `run` (each one our direct
/// message to `peer`) and returns the parts of it that were waiting. A
/// waiting run that sticks out on either side keeps what sticks out.
pub(super) fn end_waiting(
    conn: &Connection,
    peer: &IdentityBytes,
    run: &Run,
) -> Result<Vec<Run>, DbError> {
    let hit = overlapping(conn, WAITING_BEFORE, params![&peer[..], run.end()], run)?;
    let mut ended = Vec::with_capacity(hit.len());
    if hit.is_empty() {
        return Ok(ended);
    }
    let mut delete = conn.prepare_cached(DELETE_WAITING)?;
    for waiting in hit {
        delete.execute(params![&peer[..], waiting.start()])?;
        if waiting.start() < run.start() {
            add_waiting(conn, peer, &(*waiting.start()..=run.start() - 1))?;
        }
        if waiting.end() > run.end() {
            add_waiting(conn, peer, &(run.end() + 1..=*waiting.end()))?;
        }
        ended.push(*waiting.start().max(run.start())..=*waiting.end().min(run.end()));
    }
    ended.reverse();
    Ok(ended)
}

/// Receipts at `now` for the messages of `run` that have none yet.
pub(super) fn add_receipts(conn: &Connection, run: &Run, now: i64) -> Result<(), DbError> {
    let held = overlapping(conn, RECEIPTS_BEFORE, [run.end()], run)?;
    let mut add = conn.prepare_cached(ADD_RECEIPTS)?;
    // The gaps between the runs that hold receipts already (latest first).
    let mut end = *run.end();
    for r in held {
        if *r.end() < end {
            add.execute(params![r.end() + 1, end, now])?;
        }
        end = r.start() - 1;
    }
    if end >= *run.start() {
        add.execute(params![run.start(), end, now])?;
    }
    Ok(())
}

/// When our direct message `seq` was first acked, if it was.
pub(super) fn receipt_of(conn: &Connection, seq: i64) -> Result<Option<i64>, DbError> {
    let mut stmt = conn.prepare_cached(RECEIPTS_BEFORE)?;
    let row: Option<(i64, i64)> = stmt
        .query_row([seq], |row| Ok((row.get(1)?, row.get(2)?)))
        .optional()?;
    Ok(row.and_then(|(last, at)| (last >= seq).then_some(at)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    const BOB: IdentityBytes = [0xb0; 32];

    fn rows(conn: &Connection, sql: &str) -> Vec<(i64, i64)> {
        crate::store::tests::pairs(conn, sql)
    }

    /// Receipts go to exactly the gaps between the runs that hold one:
    /// before, between and after them, none where one is held.
    #[test]
    fn receipts_fill_only_the_gaps() {
        let store = Store::open_in_memory().unwrap();
        let conn = &store.conn;
        for (first, last) in [(3, 4), (7, 7), (12, 15)] {
            conn.execute(ADD_RECEIPTS, params![first, last, 1]).unwrap();
        }
        add_receipts(conn, &(1..=13), 2).unwrap();
        assert_eq!(
            rows(
                conn,
                "SELECT first_seq, last_seq FROM direct_receipts ORDER BY 1"
            ),
            [(1, 2), (3, 4), (5, 6), (7, 7), (8, 11), (12, 15)]
        );
        assert_eq!(
            rows(
                conn,
                "SELECT first_seq, acked_ms FROM direct_receipts ORDER BY 1"
            ),
            [(1, 2), (3, 1), (5, 2), (7, 1), (8, 2), (12, 1)],
            "held receipts keep their time"
        );
        add_receipts(conn, &(2..=14), 3).unwrap();
        assert_eq!(
            rows(conn, "SELECT count(*), 0 FROM direct_receipts"),
            [(6, 0)],
            "nothing new: all held"
        );
        assert_eq!(receipt_of(conn, 6).unwrap(), Some(2));
        assert_eq!(receipt_of(conn, 15).unwrap(), Some(1));
        assert_eq!(receipt_of(conn, 16).unwrap(), None);
    }

    /// An ack run that spans several waiting runs ends what it covers of
    /// each and leaves what sticks out on either side waiting.
    #[test]
    fn ending_a_run_keeps_what_sticks_out() {
        let store = Store::open_in_memory().unwrap();
        let conn = &store.conn;
        for run in [1..=4, 6..=9, 12..=20] {
            add_waiting(conn, &BOB, &run).unwrap();
        }
        add_waiting(conn, &[0xc4; 32], &(5..=5)).unwrap();
        assert_eq!(
            end_waiting(conn, &BOB, &(3..=14)).unwrap(),
            [3..=4, 6..=9, 12..=14]
        );
        assert_eq!(
            rows(
                conn,
                "SELECT first_seq, last_seq FROM direct_waiting WHERE peer = x'b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0' ORDER BY 1"
            ),
            [(1, 2), (15, 20)]
        );
        assert!(is_waiting(conn, &[0xc4; 32], 5).unwrap(), "another peer's");
        assert!(end_waiting(conn, &BOB, &(5..=5)).unwrap().is_empty());
        assert_eq!(end_waiting(conn, &BOB, &(16..=17)).unwrap(), [16..=17]);
        assert_eq!(
            rows(
                conn,
                "SELECT first_seq, last_seq FROM direct_waiting WHERE peer = x'b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0' ORDER BY 1"
            ),
            [(1, 2), (15, 15), (18, 20)]
        );
        assert!(is_waiting(conn, &BOB, 15).unwrap());
        assert!(!is_waiting(conn, &BOB, 16).unwrap());
        assert!(!is_waiting(conn, &BOB, 21).unwrap());
    }

    #[test]
    fn runs_of_cuts_at_every_gap() {
        assert_eq!(runs_of(&[]), Vec::<Run>::new());
        assert_eq!(runs_of(&[4]), [4..=4]);
        assert_eq!(runs_of(&[1, 2, 3, 5, 6, 9]), [1..=3, 5..=6, 9..=9]);
        assert_eq!(
            runs_of(&[i64::MAX - 1, i64::MAX]),
            [i64::MAX - 1..=i64::MAX]
        );
    }
}
