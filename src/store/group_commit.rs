//! Group commit: the chat store's commits return before their `fsync`, and
//! one `fsync` of the write-ahead log, on another thread, makes every commit
//! before it durable.
//!
//! Why: under `synchronous=FULL` each commit waits for its own `fsync` on
//! the node's thread (0.25–0.6 ms on the reference VM, 22 of them in a
//! 5,000-message chat), and the thread that would store the next batch
//! sits idle while the disk works. Under `synchronous=NORMAL` a WAL commit
//! writes its frames and returns; SQLite still syncs the WAL before every
//! checkpoint and the database after it, so the file stays consistent
//! whatever happens, and a power cut can lose only the commits since the
//! last sync. Durability is then the caller's: nothing that depends on a
//! commit (an ack, a send, an event) may leave the process before a
//! [`LogSync::sync`] that started after the commit has returned. The node
//! thread keeps that rule (`shell::durable`); a store switched to group
//! commit whose [`GroupCommit`] is dropped has lost its durability.
//!
//! A process that is killed loses nothing either way: a commit's frames are
//! in the operating system's page cache as soon as it returns.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How many transactions a store has committed since it was switched to
/// group commit: the node thread compares it before and after a batch to
/// know whether the batch's outputs wait for a sync.
#[derive(Clone, Debug, Default)]
pub struct CommitCount(Arc<AtomicU64>);

impl CommitCount {
    /// Commits so far. A commit counts before SQLite writes it (the hook
    /// runs first), so read this after the call that committed returned.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// One more commit.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// Makes every commit that returned before the call durable.
pub trait LogSync: Send {
    /// Blocks until the commits before the call are on disk.
    fn sync(&mut self) -> io::Result<()>;
}

/// What the node thread needs of a store in group commit: the count of its
/// commits and the log to sync ([`crate::store::Store::group_commit`]).
pub struct GroupCommit {
    pub commits: CommitCount,
    pub log: Box<dyn LogSync>,
}

/// The WAL file beside a database, synced through a descriptor of its own.
/// On Linux `fsync` writes back every dirty page of the file, whichever
/// descriptor wrote it, so syncing our descriptor syncs SQLite's writes.
pub struct WalFile {
    path: PathBuf,
    /// The open WAL and its (device, inode): if SQLite ever makes a new
    /// file under the name (it deletes the WAL when the last connection
    /// closes), the next sync opens the new one.
    open: Option<(File, FileId)>,
}

type FileId = (u64, u64);

impl WalFile {
    /// The WAL of the database at `db_path` (SQLite's name for it: the
    /// database's path with `-wal` appended).
    pub fn of(db_path: &Path) -> WalFile {
        let mut name = db_path.as_os_str().to_owned();
        name.push("-wal");
        WalFile {
            path: PathBuf::from(name),
            open: None,
        }
    }

    /// Syncs the WAL, opened again first if the name now holds another
    /// file.
    fn sync_current(&mut self) -> io::Result<()> {
        let now = file_id(&std::fs::metadata(&self.path)?);
        let (file, _) = match self.open.take() {
            Some((file, id)) if id == now => self.open.insert((file, id)),
            _ => {
                let file = File::open(&self.path)?;
                let id = file_id(&file.metadata()?);
                // A new WAL's name must survive a power cut as well as its
                // contents; SQLite does not sync the directory for it.
                if let Some(dir) = self.path.parent() {
                    File::open(dir)?.sync_all()?;
                }
                self.open.insert((file, id))
            }
        };
        file.sync_data()
    }
}

impl LogSync for WalFile {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_current()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))
    }
}

#[cfg(unix)]
fn file_id(meta: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// Without inode numbers the file is opened once; SQLite keeps its WAL for
/// as long as the store is open.
#[cfg(not(unix))]
fn file_id(_meta: &std::fs::Metadata) -> FileId {
    (0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DbError, Store};

    fn synchronous(store: &Store) -> i64 {
        store
            .conn
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap()
    }

    /// A store in group commit counts each transaction it commits (and
    /// nothing for reads), no longer syncs its commits itself, and its log
    /// can be synced.
    #[test]
    fn a_store_in_group_commit_counts_its_commits_and_syncs_its_wal() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(synchronous(&store), 2, "FULL until group commit");
        let mut group = store.group_commit().unwrap();
        assert_eq!(synchronous(&store), 1, "NORMAL in group commit");
        assert_eq!(group.commits.get(), 0);
        store.set_meta("nick", "ada").unwrap();
        assert_eq!(group.commits.get(), 1);
        assert_eq!(store.get_meta("nick").unwrap().as_deref(), Some("ada"));
        assert_eq!(group.commits.get(), 1, "a read committed nothing");
        store.set_meta("nick", "bob").unwrap();
        assert_eq!(group.commits.get(), 2);
        group.log.sync().unwrap();
        group.log.sync().unwrap();
    }

    #[test]
    fn a_store_in_memory_has_no_group_commit() {
        let mut store = Store::open_in_memory().unwrap();
        assert!(matches!(store.group_commit(), Err(DbError::InMemory)));
    }

    /// A new file under the WAL's name is the one synced from then on; a
    /// missing WAL is an error that names it.
    #[test]
    fn the_wal_is_opened_again_when_its_name_holds_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("h.sqlite3");
        let wal_path = dir.path().join("h.sqlite3-wal");
        let mut wal = WalFile::of(&db);
        let err = wal.sync().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("h.sqlite3-wal"), "{err}");
        std::fs::write(&wal_path, b"first").unwrap();
        wal.sync().unwrap();
        let first = wal.open.as_ref().map(|(_, id)| *id);
        std::fs::remove_file(&wal_path).unwrap();
        // Kept open, so the new file cannot reuse the old inode.
        std::fs::write(&wal_path, b"second").unwrap();
        wal.sync().unwrap();
        let second = wal.open.as_ref().map(|(_, id)| *id);
        assert_ne!(first, second);
        assert_eq!(
            second,
            Some(file_id(&std::fs::metadata(&wal_path).unwrap()))
        );
    }
}
