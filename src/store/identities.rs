//! Identity keys stored once (schema version 10): a message row names its
//! author and its conversation's peer by `ref`, the rowid of the key's row
//! in `identities`.
//!
//! Writing a message needs the refs of its two keys. Nearly every message
//! is by a key seen before (ours, or a peer's), so the store remembers the
//! refs it has used ([`IdentityRefs`]); a new key is added to `identities`
//! inside the transaction that stores its first message.
//!
//! Sound because a remembered ref cannot change: a ref is remembered only
//! after the transaction that read or wrote it committed
//! ([`Interner::committed`]; one that failed is dropped with what it
//! learnt), rows of `identities` are never rewritten, the foreign keys of
//! `messages` keep a referenced one from being deleted, and natter holds
//! the data directory's lock, so no other natter writes the file while
//! this store is open.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};

use super::{DbError, IdentityBytes};

/// The most refs remembered (about 80 bytes each, so about 1.3 MiB): every
/// peer a node talks to and the authors of the public room, with room to
/// spare. When full, the map is emptied and fills again with what is used.
pub const REMEMBERED_REFS: usize = 16_384;

/// Identity key → `identities.ref`, for keys whose row is committed.
#[derive(Debug, Default)]
pub(super) struct IdentityRefs {
    known: HashMap<IdentityBytes, i64>,
}

impl IdentityRefs {
    /// The ref of `key`, or `None` if no stored message names it (then
    /// nothing stored is by it or to it).
    pub(super) fn find(
        &self,
        conn: &Connection,
        key: &IdentityBytes,
    ) -> Result<Option<i64>, DbError> {
        if let Some(r) = self.known.get(key) {
            return Ok(Some(*r));
        }
        let mut stmt = conn.prepare_cached("SELECT ref FROM identities WHERE key = ?1")?;
        Ok(stmt.query_row([&key[..]], |row| row.get(0)).optional()?)
    }

    /// An interner for one write transaction.
    pub(super) fn interner(&mut self) -> Interner<'_> {
        Interner {
            refs: self,
            fresh: HashMap::new(),
            recent: [None; 2],
        }
    }

    fn remember(&mut self, key: IdentityBytes, r: i64) {
        if self.known.len() >= REMEMBERED_REFS {
            self.known.clear();
        }
        self.known.insert(key, r);
    }

    #[cfg(test)]
    pub(super) fn remembered(&self, key: &IdentityBytes) -> Option<i64> {
        self.known.get(key).copied()
    }
}

/// Refs used by one write transaction: what it learnt is remembered only
/// if [`Interner::committed`] is called after the commit.
pub(super) struct Interner<'a> {
    refs: &'a mut IdentityRefs,
    fresh: HashMap<IdentityBytes, i64>,
    /// The last two keys interned, newest first: a batch names the same
    /// one or two keys for every message (a peer's; ours and a peer's),
    /// and comparing 32 bytes costs less than hashing them.
    recent: [Option<(IdentityBytes, i64)>; 2],
}

impl Interner<'_> {
    /// The ref of `key`, adding its row to `identities` (inside the
    /// caller's transaction, `conn`) if it has none. The transaction
    /// holds the write lock, so nothing adds the row between the look-up
    /// and the insert.
    pub(super) fn intern(
        &mut self,
        conn: &Connection,
        key: &IdentityBytes,
    ) -> Result<i64, DbError> {
        if let Some((_, r)) = self.recent.iter().flatten().find(|(k, _)| k == key) {
            return Ok(*r);
        }
        let r = match self.fresh.get(key) {
            Some(r) => *r,
            None => {
                let r = match self.refs.find(conn, key)? {
                    Some(r) => r,
                    None => conn
                        .prepare_cached("INSERT INTO identities (key) VALUES (?1) RETURNING ref")?
                        .query_row([&key[..]], |row| row.get(0))?,
                };
                self.fresh.insert(*key, r);
                r
            }
        };
        self.recent = [Some((*key, r)), self.recent[0]];
        Ok(r)
    }

    /// The transaction committed: remember the refs it read or added.
    pub(super) fn committed(self) {
        for (key, r) in self.fresh {
            self.refs.remember(key, r);
        }
    }
}
