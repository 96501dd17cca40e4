//! The trust store: every identity key seen, its Noise static key, nickname,
//! last address and trust level.

use natter_core::chat::store::LONG_KNOWN_MS;
use rusqlite::{params, Row, TransactionBehavior};

use super::{
    from_sql_i64, to_array, to_sql_u64, trust_from_db, DbError, IdentityBytes, NoiseStaticKey,
    PeerRecord, Store, TrustLevel,
};

const PEER_COLUMNS: &str = "identity, noise_static, nickname, first_seen_ms, last_seen_ms, \
     last_addr, trust, verified_ms";

/// A peer row as SQLite hands it over, before its invariants are checked.
struct RawPeer {
    identity: Vec<u8>,
    noise_static: Vec<u8>,
    nickname: String,
    first_seen_ms: i64,
    last_seen_ms: i64,
    last_addr: Option<String>,
    trust: String,
    verified_ms: Option<i64>,
}

impl RawPeer {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<RawPeer> {
        Ok(RawPeer {
            identity: row.get(0)?,
            noise_static: row.get(1)?,
            nickname: row.get(2)?,
            first_seen_ms: row.get(3)?,
            last_seen_ms: row.get(4)?,
            last_addr: row.get(5)?,
            trust: row.get(6)?,
            verified_ms: row.get(7)?,
        })
    }
}

impl TryFrom<RawPeer> for PeerRecord {
    type Error = DbError;

    fn try_from(raw: RawPeer) -> Result<Self, DbError> {
        Ok(PeerRecord {
            identity: to_array("peers.identity", raw.identity)?,
            noise_static: to_array("peers.noise_static", raw.noise_static)?,
            nickname: raw.nickname,
            first_seen_ms: from_sql_i64("peers.first_seen_ms", raw.first_seen_ms)?,
            last_seen_ms: from_sql_i64("peers.last_seen_ms", raw.last_seen_ms)?,
            last_addr: raw.last_addr,
            trust: trust_from_db(&raw.trust)?,
            verified_ms: raw
                .verified_ms
                .map(|v| from_sql_i64("peers.verified_ms", v))
                .transpose()?,
        })
    }
}

impl Store {
    fn query_peers<P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
    ) -> Result<Vec<PeerRecord>, DbError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params, RawPeer::from_row)?;
        rows.map(|raw| PeerRecord::try_from(raw?)).collect()
    }

    /// Records that a peer was seen (beacon or authenticated link) at
    /// `now_ms`. A new identity is created `Unverified`; a known one gets the
    /// given Noise static key, nickname and last-seen time, and `addr` if it
    /// is `Some` (a `None` keeps the last known address). The trust level is
    /// never changed here. Returns `true` if the identity was new.
    ///
    /// Callers pass only keys they have authenticated (binding signature
    /// checked) and a nickname they have sanitised.
    pub fn upsert_peer_seen(
        &mut self,
        identity: &IdentityBytes,
        noise_static: &NoiseStaticKey,
        nickname: &str,
        now_ms: u64,
        addr: Option<&str>,
    ) -> Result<bool, DbError> {
        let now = to_sql_u64("now_ms", now_ms)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let created =
            tx.prepare_cached(
                "INSERT INTO peers \
                 (identity, noise_static, nickname, first_seen_ms, last_seen_ms, last_addr) \
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5) \
                 ON CONFLICT (identity) DO NOTHING",
            )?
            .execute(params![
                &identity[..],
                &noise_static[..],
                nickname,
                now,
                addr
            ])? == 1;
        if !created {
            tx.prepare_cached(
                "UPDATE peers SET noise_static = ?2, nickname = ?3, last_seen_ms = ?4, \
                 last_addr = coalesce(?5, last_addr) \
                 WHERE identity = ?1",
            )?
            .execute(params![
                &identity[..],
                &noise_static[..],
                nickname,
                now,
                addr
            ])?;
        }
        tx.commit()?;
        Ok(created)
    }

    /// The trust-store entry of this identity.
    pub fn get_peer(&self, identity: &IdentityBytes) -> Result<Option<PeerRecord>, DbError> {
        let mut peers = self.query_peers(
            &format!("SELECT {PEER_COLUMNS} FROM peers WHERE identity = ?1"),
            [&identity[..]],
        )?;
        Ok(peers.pop())
    }

    /// Every known peer, by nickname (ASCII case folded), then identity key.
    pub fn peers(&self) -> Result<Vec<PeerRecord>, DbError> {
        self.query_peers(
            &format!(
                "SELECT {PEER_COLUMNS} FROM peers \
                 ORDER BY nickname COLLATE NOCASE, identity"
            ),
            [],
        )
    }

    /// The peers using this nickname, compared with ASCII case folded (so
    /// `Bob` and `bob` meet), most recently seen first. More than one result
    /// means the nickname is ambiguous and must be shown with fingerprints.
    pub fn peers_by_nickname(&self, nickname: &str) -> Result<Vec<PeerRecord>, DbError> {
        self.query_peers(
            &format!(
                "SELECT {PEER_COLUMNS} FROM peers \
                 WHERE nickname = ?1 COLLATE NOCASE \
                 ORDER BY last_seen_ms DESC, identity"
            ),
            [nickname],
        )
    }

    /// Sets the trust level of a known peer. `Verified` records `now_ms` as
    /// the verification time; `Unverified` clears it. Fails with
    /// [`DbError::UnknownPeer`] for an identity never seen.
    pub fn set_trust(
        &mut self,
        identity: &IdentityBytes,
        trust: TrustLevel,
        now_ms: u64,
    ) -> Result<(), DbError> {
        let verified_ms = match trust {
            TrustLevel::Verified => Some(to_sql_u64("now_ms", now_ms)?),
            TrustLevel::Unverified => None,
        };
        let changed = self
            .conn
            .prepare_cached("UPDATE peers SET trust = ?2, verified_ms = ?3 WHERE identity = ?1")?
            .execute(params![&identity[..], trust.as_str(), verified_ms])?;
        if changed == 0 {
            return Err(DbError::UnknownPeer {
                identity: *identity,
            });
        }
        Ok(())
    }

    /// Up to `limit` peers last seen at or after `seen_since_ms`, best
    /// [`natter_core::chat::store::peer_rank`] first: verified, then long
    /// known (seen over `LONG_KNOWN_MS` or more) first seen earliest, then
    /// most recently seen. A flood of fresh identities cannot push a genuine
    /// peer out of the outbox of a new public message.
    pub fn outbox_recipients(
        &self,
        seen_since_ms: u64,
        limit: usize,
    ) -> Result<Vec<IdentityBytes>, DbError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT identity FROM peers WHERE last_seen_ms >= ?1 \
             ORDER BY trust = 'verified' DESC, last_seen_ms - first_seen_ms >= ?2 DESC, \
                      CASE WHEN last_seen_ms - first_seen_ms >= ?2 \
                           THEN -first_seen_ms ELSE last_seen_ms END DESC, identity LIMIT ?3",
        )?;
        let since = i64::try_from(seen_since_ms).unwrap_or(i64::MAX);
        let rows = stmt.query_map(
            params![
                since,
                to_sql_u64("LONG_KNOWN_MS", LONG_KNOWN_MS)?,
                super::sql_limit(limit)
            ],
            |row| row.get::<_, Vec<u8>>(0),
        )?;
        rows.map(|r| to_array("peers.identity", r?)).collect()
    }

    /// Removes the outbox rows of peers met once (unverified, not long
    /// known) that were not seen since `unseen_since_ms`; returns how many.
    pub fn expire_outbox(&mut self, unseen_since_ms: u64) -> Result<usize, DbError> {
        let since = i64::try_from(unseen_since_ms).unwrap_or(i64::MAX);
        let long_known = to_sql_u64("LONG_KNOWN_MS", LONG_KNOWN_MS)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        const MET_ONCE: &str = "SELECT identity FROM peers \
             WHERE trust = 'unverified' AND last_seen_ms < ?1 \
               AND last_seen_ms - first_seen_ms < ?2";
        // Both forms of outbox entry (see `outbox`); a direct run counts
        // every message it holds.
        let mut n = tx.execute(
            &format!("DELETE FROM outbox WHERE peer IN ({MET_ONCE})"),
            params![since, long_known],
        )?;
        {
            let mut runs = tx.prepare(&format!(
                "DELETE FROM direct_waiting WHERE peer IN ({MET_ONCE}) \
                 RETURNING last_seq - first_seq + 1"
            ))?;
            for len in runs.query_map(params![since, long_known], |row| row.get::<_, i64>(0))? {
                let len = len?;
                n += usize::try_from(len)
                    .map_err(|_| DbError::InvalidData(format!("a direct run of {len}")))?;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Forgets unverified peers last seen before `unseen_since_ms` and the
    /// unverified ones ranked below the best `keep_unverified` (long known
    /// first, first seen earliest, then most recently seen), with their
    /// outbox rows, in one transaction; returns them in key order. Verified
    /// peers are never forgotten.
    pub fn prune_peers(
        &mut self,
        unseen_since_ms: u64,
        keep_unverified: usize,
    ) -> Result<Vec<IdentityBytes>, DbError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let since = i64::try_from(unseen_since_ms).unwrap_or(i64::MAX);
        let long_known = to_sql_u64("LONG_KNOWN_MS", LONG_KNOWN_MS)?;
        let gone: Vec<IdentityBytes> = {
            let mut stmt = tx.prepare_cached(
                "SELECT identity FROM peers WHERE trust = 'unverified' AND (last_seen_ms < ?1 \
                   OR identity IN (SELECT identity FROM peers \
                                   WHERE trust = 'unverified' AND last_seen_ms >= ?1 \
                                   ORDER BY last_seen_ms - first_seen_ms >= ?3 DESC, \
                                            CASE WHEN last_seen_ms - first_seen_ms >= ?3 \
                                                 THEN -first_seen_ms ELSE last_seen_ms END DESC, \
                                            identity \
                                   LIMIT -1 OFFSET ?2)) \
                 ORDER BY identity",
            )?;
            let rows = stmt.query_map(
                params![since, super::sql_limit(keep_unverified), long_known],
                |row| row.get::<_, Vec<u8>>(0),
            )?;
            rows.map(|r| to_array("peers.identity", r?))
                .collect::<Result<_, DbError>>()?
        };
        {
            let mut del_outbox = tx.prepare_cached("DELETE FROM outbox WHERE peer = ?1")?;
            let mut end_waits = tx.prepare_cached("DELETE FROM direct_waiting WHERE peer = ?1")?;
            let mut del_peer = tx.prepare_cached("DELETE FROM peers WHERE identity = ?1")?;
            for id in &gone {
                del_outbox.execute([&id[..]])?;
                end_waits.execute([&id[..]])?;
                del_peer.execute([&id[..]])?;
            }
        }
        tx.commit()?;
        Ok(gone)
    }

    /// The last known address of every peer that has one, ranked as
    /// [`Store::outbox_recipients`]: what to dial at start when no beacon
    /// arrives.
    pub fn known_addrs(&self) -> Result<Vec<(IdentityBytes, String)>, DbError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT identity, last_addr FROM peers WHERE last_addr IS NOT NULL \
             ORDER BY trust = 'verified' DESC, last_seen_ms - first_seen_ms >= ?1 DESC, \
                      CASE WHEN last_seen_ms - first_seen_ms >= ?1 \
                           THEN -first_seen_ms ELSE last_seen_ms END DESC, identity",
        )?;
        let rows = stmt.query_map([to_sql_u64("LONG_KNOWN_MS", LONG_KNOWN_MS)?], |row| {
            Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, String>(1)?))
        })?;
        rows.map(|row| {
            let (identity, addr) = row?;
            Ok((to_array("peers.identity", identity)?, addr))
        })
        .collect()
    }
}
