//! Persistent state on disk: message history with full-text search, the
//! per-peer outbox, delivery receipts, the trust store and a few settings, all
//! in one SQLite database per data directory.
//!
//! # Files in the data directory
//!
//! - `natter.lock`: an exclusive advisory lock (`File::try_lock`) held for the
//!   lifetime of a [`Store`]. Two natter processes on one data directory would
//!   both believe they own the outbox and would resend, ack and migrate behind
//!   each other's back, so a second [`Store::open`] fails with
//!   [`DbError::Locked`]. The operating system drops the lock when the
//!   process dies, so a crash never leaves a stale lock behind.
//! - `history.sqlite3` (plus `-wal` and `-shm` beside it): the database,
//!   created with mode 0600 inside a 0700 directory on Unix.
//!
//! # Durability
//!
//! The receiver of a message persists it and only then acks it; the sender
//! forgets its outbox row only when the ack arrives. That contract is only as
//! good as the commit, so the database runs with `journal_mode=WAL` (readers
//! do not block the writer, commits append to one file) and
//! `synchronous=FULL` (the WAL is fsynced on every commit, so a transaction
//! that returned is on disk even if power fails right after the ack is sent),
//! until [`Store::group_commit`] moves the fsync off the commit: natter runs
//! that way, and its node thread then holds the ack, and everything else a
//! commit leads to, until the WAL is synced ([`group_commit`]).
//! Every multi-row write ([`Store::insert_messages`],
//! [`Store::insert_outgoing`], [`Store::outbox_ack`]) is one transaction, so a
//! crash never leaves a message without its outbox rows or an ack half-applied.
//!
//! # Damaged or foreign databases
//!
//! [`Store::open`] runs `PRAGMA quick_check` before it changes anything. A file
//! that is not a database or is malformed yields [`DbError::Corrupt`] and is
//! left exactly as it was, and so is its WAL: never deleted, recreated,
//! checkpointed or written to; the user decides what to do with their history.
//! (Reading a WAL-mode file makes SQLite create an empty `-wal` and a `-shm`
//! beside it if they are missing; they hold no data.) A database written by a
//! newer natter (higher `user_version`) yields [`DbError::TooNew`] before
//! anything is written. `quick_check` reads the whole file: about 1.3 s for a
//! million messages (260 MiB) on the reference VM, paid once at start.
//!
//! # Schema
//!
//! The schema is built by an ordered list of migrations ([`MIGRATIONS`]);
//! `PRAGMA user_version` counts how many have been applied, and each one runs
//! in its own transaction together with the version bump. The current schema
//! is [`MIGRATIONS`] applied in order (`schema_v1.sql`, then `schema_v2.sql`
//! to `schema_v11.sql`; version 1 is reproduced here, the later steps say
//! what they change):
//!
//! ```sql
#![doc = include_str!("schema_v1.sql")]
//! ```
//!
//! Why it looks like this:
//!
//! - `messages.seq` is the rowid: the insertion order, used to break timestamp
//!   ties in history, as the key of the full-text index and as a compact
//!   foreign key. `messages.id` is the author's 128-bit message id; since
//!   version 3 `(id, author)` is `UNIQUE`, which is what drops duplicates
//!   forever (`ON CONFLICT(id, author) DO NOTHING`) without letting one
//!   author's message hide another's.
//! - `conv_peer` is `NULL` for the public room and the peer's identity key for
//!   a direct conversation (seen from the local user). `order_ms` (version 3)
//!   is the author's timestamp capped at arrival plus the clock skew; the
//!   index `(conv_peer, order_ms, seq)` serves both history and public
//!   catch-up without sorting.
//! - Since version 10 a message row holds neither key itself: `author_ref`
//!   and `conv_ref` name rows of `identities (ref, key)`, where each key is
//!   stored once, so the row and both index keys above are small (the
//!   `UNIQUE` rule is `(id, author_ref)`, the same rule). The store
//!   remembers the refs it used (`identities.rs`).
//! - `messages_fts` is an FTS5 *external-content* table over `messages.text`
//!   (tokenizer `unicode61 remove_diacritics 2`), keyed by `seq` and kept in
//!   sync by triggers, so the text is stored once. Since version 11 it keeps
//!   no per-row token counts (`columnsize = 0`): only ranking reads them,
//!   and natter does not rank. Search asks FTS5 for
//!   `ORDER BY rowid DESC LIMIT n`, which it answers by walking the index
//!   backwards and stopping after `n` hits: fast at millions of rows. The
//!   order is therefore *most recently stored* first, which is the author's
//!   time order except for messages that arrived late (catch-up).
//! - `outbox(peer, message_seq)` holds what a peer has not acked yet;
//!   `deliveries` records who acked what and when. Our own direct message,
//!   which waits for one peer only, is kept in runs of consecutive messages
//!   instead (version 9): `direct_waiting (peer, first_seq, last_seq)` and
//!   `direct_receipts (first_seq, last_seq, acked_ms)`, a burst one row, so
//!   the message's own row never changes after it is written
//!   (`direct_outbox.rs`; `outbox.rs` reads both forms).
//! - `peers` is the trust store: identity key → Noise static key, nickname,
//!   first/last seen, last address (dialled at start when broadcast is
//!   blocked), trust level.
//! - All tables are `STRICT` and carry `CHECK`s on key lengths, so a bad value
//!   is refused at the door instead of being found later.
//!
//! Everything read back from disk is checked again when it is turned into the
//! plain row types below; a bad row is an error, never a panic.

mod direct_outbox;
mod group_commit;
mod identities;
mod messages;
mod outbox;
mod peers;
mod schema;
mod sent_lately;

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OptionalExtension};

pub use direct_outbox::{
    ADD_RECEIPTS, ADD_WAITING, DELETE_WAITING, RECEIPTS_BEFORE, WAITING_BEFORE,
};
use group_commit::WalFile;
pub use group_commit::{CommitCount, GroupCommit, LogSync};
pub use identities::REMEMBERED_REFS;
pub use messages::{INDEX_INSERTED, INSERT_MESSAGE};
pub use outbox::FIND_OWN_DIRECT;
pub use schema::{MIGRATIONS, SCHEMA_VERSION};
pub use sent_lately::SENT_LATELY;

/// An existing history about to be migrated ([`Store::open_telling`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upgrade {
    /// The schema version the file has.
    pub from: u32,
    /// The version it is migrated to ([`SCHEMA_VERSION`]).
    pub to: u32,
}

/// File name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "natter.lock";
/// File name of the SQLite database inside the data directory.
pub const DB_FILE: &str = "history.sqlite3";
/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

pub use natter_core::chat::store::{
    ConversationKey, IdentityBytes, NoiseStaticKey, PeerRecord, Signature, StoredMessage,
    TrustLevel,
};
pub use natter_core::wire::MessageId;

mod chat_store;

/// The stored spelling of a trust level, or why it is not one.
fn trust_from_db(s: &str) -> Result<TrustLevel, DbError> {
    TrustLevel::parse(s).ok_or_else(|| DbError::InvalidData(format!("unknown trust level {s:?}")))
}

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// Another process holds the lock on the data directory.
    #[error("another natter process is using {}", path.display())]
    Locked { path: PathBuf },
    /// Creating the data directory or a file in it failed.
    #[error("cannot use {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The database file is not a database or is damaged. It was not touched.
    #[error(
        "the history database {} is damaged ({detail}); natter did not change it: \
         move it aside or restore a backup, then start again",
        path.display()
    )]
    Corrupt { path: PathBuf, detail: String },
    /// The database was written by a newer natter.
    #[error(
        "the history database has schema version {found}, newer than the {supported} \
         this natter knows; use a newer natter"
    )]
    TooNew { found: u32, supported: u32 },
    /// SQLite could not open or set up the database file.
    #[error("cannot open the history database {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// Group commit needs a database file ([`Store::group_commit`]).
    #[error("a history in memory has no log to sync: group commit needs a file")]
    InMemory,
    /// A search contained no word to look for.
    #[error("nothing to search for: give at least one word")]
    EmptyQuery,
    /// The message id is not in the store.
    #[error("no message with id {}", Hex(id))]
    UnknownMessage { id: MessageId },
    /// The identity key is not in the trust store.
    #[error("no peer with identity key {}", Hex(identity))]
    UnknownPeer { identity: IdentityBytes },
    /// A number does not fit in SQLite's signed 64-bit integers.
    #[error("{field} = {value} is too large to store")]
    OutOfRange { field: &'static str, value: u64 },
    /// A row read from disk breaks an invariant of the schema.
    #[error("invalid data in the history database: {0}")]
    InvalidData(String),
    /// Any other SQLite error.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// Lowercase hex for error messages.
struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// The message history, outbox and trust store of one data directory.
///
/// Time is always an argument (`now_ms`), never read from the clock here.
#[derive(Debug)]
pub struct Store {
    // Field order matters: the connection closes before the lock is released.
    conn: Connection,
    _lock: Option<File>,
    /// Our direct messages stored lately, for their acks.
    sent_lately: sent_lately::SentLately,
    /// The refs of identity keys in `identities` (schema version 10).
    identities: identities::IdentityRefs,
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`.
    ///
    /// Takes the data directory's lock for the lifetime of the `Store`, checks
    /// the database (`quick_check`, schema version) before writing anything,
    /// then switches on WAL, `synchronous=FULL` and foreign keys and applies
    /// any pending migrations.
    pub fn open(data_dir: &Path) -> Result<Store, DbError> {
        Self::open_telling(data_dir, |_| {})
    }

    /// [`Store::open`], calling `before_upgrade` first when an existing
    /// history is about to be migrated: a migration may rebuild a table
    /// (schema v8 took 12 s for a million messages), and a person at the
    /// terminal should know why nothing happens. Not called for a new file.
    pub fn open_telling(
        data_dir: &Path,
        before_upgrade: impl FnOnce(Upgrade),
    ) -> Result<Store, DbError> {
        create_private_dir(data_dir)?;
        let lock = lock_data_dir(data_dir)?;
        let db_path = data_dir.join(DB_FILE);
        check_header(&db_path)?;
        create_private_file(&db_path)?;

        let open_err = |source| DbError::Open {
            path: db_path.clone(),
            source,
        };
        let mut conn = Connection::open(&db_path).map_err(open_err)?;
        // Until the file has passed the checks, closing must not checkpoint a
        // leftover WAL into it.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        quick_check(&conn, &db_path)?;
        let found =
            check_version(&conn, MIGRATIONS).map_err(|e| corrupt_if_damaged(e, &db_path))?;
        if found > 0 && found < SCHEMA_VERSION {
            before_upgrade(Upgrade {
                from: found,
                to: SCHEMA_VERSION,
            });
        }
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)
            .map_err(open_err)?;

        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        Self::setup(&mut conn).map_err(|e| corrupt_if_damaged(e, &db_path))?;
        Ok(Store {
            conn,
            _lock: Some(lock),
            sent_lately: Default::default(),
            identities: Default::default(),
        })
    }

    /// A fresh store that lives in memory only, for tests and simulations.
    /// There is no lock and nothing survives the value.
    pub fn open_in_memory() -> Result<Store, DbError> {
        let mut conn = Connection::open_in_memory()?;
        Self::setup(&mut conn)?;
        Ok(Store {
            conn,
            _lock: None,
            sent_lately: Default::default(),
            identities: Default::default(),
        })
    }

    /// A store over a connection a test has migrated itself.
    #[cfg(test)]
    pub(crate) fn from_connection_for_tests(conn: Connection) -> Store {
        Store {
            conn,
            _lock: None,
            sent_lately: Default::default(),
            identities: Default::default(),
        }
    }

    fn setup(conn: &mut Connection) -> Result<(), DbError> {
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(conn, MIGRATIONS)?;
        Ok(())
    }

    /// Switches the store to group commit ([`group_commit`]): from now on a
    /// commit returns before its `fsync`, and it is durable only once the
    /// returned [`GroupCommit`]'s log has been synced after it. Whoever
    /// calls this must keep that rule for everything the store's commits
    /// lead to; the node thread does (`shell::Options::group_commit`).
    /// A store in memory has no log to sync: [`DbError::InMemory`].
    pub fn group_commit(&mut self) -> Result<GroupCommit, DbError> {
        let path = match self.conn.path() {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => return Err(DbError::InMemory),
        };
        let commits = CommitCount::default();
        let count = commits.clone();
        self.conn.commit_hook(Some(move || {
            count.bump();
            false // let the commit go ahead
        }));
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(GroupCommit {
            commits,
            log: Box::new(WalFile::of(&path)),
        })
    }

    /// The schema version of the open database (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<u32, DbError> {
        schema::user_version(&self.conn)
    }

    /// Reads a setting, e.g. the local nickname.
    pub fn get_meta(&self, key: &str) -> Result<Option<String>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?;
        Ok(stmt.query_row([key], |row| row.get(0)).optional()?)
    }

    /// Writes a setting, replacing any previous value.
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), DbError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )?;
        stmt.execute([key, value])?;
        Ok(())
    }

    /// Removes a setting; returns whether it existed.
    pub fn delete_meta(&mut self, key: &str) -> Result<bool, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached("DELETE FROM meta WHERE key = ?1")?;
        Ok(stmt.execute([key])? > 0)
    }
}

/// Creates `dir` (and parents) if missing, private to the user on Unix.
fn create_private_dir(dir: &Path) -> Result<(), DbError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| DbError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// Creates `path` empty with mode 0600 if it does not exist; never truncates.
/// SQLite gives its `-wal` and `-shm` files the same permissions.
fn create_private_file(path: &Path) -> Result<(), DbError> {
    let mut options = OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop).map_err(|source| DbError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Takes the exclusive lock on `dir/natter.lock`, without waiting.
fn lock_data_dir(dir: &Path) -> Result<File, DbError> {
    let lock_path = dir.join(LOCK_FILE);
    let io_err = |source| DbError::Io {
        path: lock_path.clone(),
        source,
    };
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&lock_path).map_err(io_err)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(DbError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(TryLockError::Error(source)) => Err(io_err(source)),
    }
}

/// Refuses, without letting SQLite near it, a non-empty file that does not
/// start with the SQLite magic. A missing or empty file is a new database.
fn check_header(path: &Path) -> Result<(), DbError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(DbError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut head = Vec::with_capacity(SQLITE_MAGIC.len());
    (&mut file)
        .take(SQLITE_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(|source| DbError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if head.is_empty() || head == SQLITE_MAGIC {
        Ok(())
    } else {
        Err(DbError::Corrupt {
            path: path.to_path_buf(),
            detail: "file is not a database (bad header)".into(),
        })
    }
}

/// Runs `PRAGMA quick_check`; anything but a single `ok` row is corruption.
fn quick_check(conn: &Connection, path: &Path) -> Result<(), DbError> {
    let corrupt = |detail: String| DbError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    // `quick_check` answers a single row `ok`, or rows describing problems.
    let mut healthy = true;
    let mut problems = Vec::new();
    let result = conn.pragma_query(None, "quick_check", |row| {
        let text: String = row.get(0)?;
        if text != "ok" {
            healthy = false;
            // A row may hold several lines; the "*** in database main ***"
            // heading says nothing the path does not.
            problems.extend(
                text.lines()
                    .filter(|line| !line.starts_with("*** in database"))
                    .map(str::to_owned),
            );
        }
        Ok(())
    });
    match result {
        Ok(()) if healthy => Ok(()),
        Ok(()) => {
            problems.truncate(3);
            if problems.is_empty() {
                problems.push("quick_check failed".into());
            }
            Err(corrupt(problems.join("; ")))
        }
        Err(e) if is_damage(&e) => Err(corrupt(e.to_string())),
        Err(source) => Err(DbError::Open {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The file's schema version; [`DbError::TooNew`] if the database has
/// more migrations applied than `migrations` holds.
fn check_version(conn: &Connection, migrations: &[&str]) -> Result<u32, DbError> {
    let found = schema::user_version(conn)?;
    let supported = schema::version_of(migrations);
    if found > supported {
        return Err(DbError::TooNew { found, supported });
    }
    Ok(found)
}

/// Whether SQLite says the file is damaged or not a database at all.
fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// Turns an SQLite damage error met while opening into [`DbError::Corrupt`].
fn corrupt_if_damaged(e: DbError, path: &Path) -> DbError {
    match e {
        DbError::Sqlite(ref inner) if is_damage(inner) => DbError::Corrupt {
            path: path.to_path_buf(),
            detail: inner.to_string(),
        },
        other => other,
    }
}

/// Converts a `u64` for storage in an SQLite integer column.
fn to_sql_u64(field: &'static str, value: u64) -> Result<i64, DbError> {
    i64::try_from(value).map_err(|_| DbError::OutOfRange { field, value })
}

/// Converts an SQLite integer read from disk back to `u64`.
fn from_sql_i64(field: &'static str, value: i64) -> Result<u64, DbError> {
    u64::try_from(value).map_err(|_| DbError::InvalidData(format!("{field} is negative ({value})")))
}

/// A `LIMIT` argument; anything beyond `i64::MAX` means "no limit" anyway.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Converts a blob read from disk to a fixed-size array.
fn to_array<const N: usize>(field: &'static str, bytes: Vec<u8>) -> Result<[u8; N], DbError> {
    let len = bytes.len();
    <[u8; N]>::try_from(bytes)
        .map_err(|_| DbError::InvalidData(format!("{field} has {len} bytes, expected {N}")))
}

#[cfg(test)]
mod tests;
