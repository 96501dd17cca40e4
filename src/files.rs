//! Files on disk for the core's file transfers (`natter_core::files`):
//! hashing a file to offer (its BLAKE3 tree kept beside the data
//! directory's database), the transfers table, reading offered files and
//! writing received ones.
//!
//! - Offered files are read where they are; their tree (bao-tree's
//!   post-order outboard) is `<data-dir>/files/<id>.obao`, written when the
//!   offer is hashed, so memory stays flat for any size.
//! - A received file is written to `<download-dir>/.natter-<peer>-<id>.part`
//!   (`<peer>`: the first 4 bytes of the sender's key, in hex),
//!   only with verified data, made durable before progress is recorded;
//!   once the whole file matches its root it is linked to its final name
//!   (never over an existing file) and the partial removed.

use bao_tree::io::outboard::PostOrderOutboard;
use bao_tree::io::sync::{outboard_post_order, Outboard};
use bao_tree::{blake3, BaoTree, TreeNode};
use natter_core::files::name::{free_name, safe_file_name};
use natter_core::files::proof::{self, BLOCK_SIZE};
use natter_core::files::store::PeerBytes;
use natter_core::files::{FileDigest, FileStore, FileStoreError, TransferRecord, TransferState};
use natter_core::wire::frame::TransferId;
use rusqlite::{params, Connection, OptionalExtension};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where the trees of offered files are kept, inside the data directory.
pub const FILES_DIR: &str = "files";

/// The tree of the file offered under `id`.
pub fn outboard_path(files_dir: &Path, id: &TransferId) -> PathBuf {
    files_dir.join(format!("{}.obao", natter_core::hex(id)))
}

/// The partial file of an incoming transfer.
fn partial_path(download_dir: &Path, rec: &TransferRecord) -> PathBuf {
    let peer = natter_core::hex(&rec.peer[..4]);
    download_dir.join(format!(".natter-{peer}-{}.part", natter_core::hex(&rec.id)))
}

/// Whether `path` (not followed if a link) is the file `meta` describes.
fn same_file(meta: &std::fs::Metadata, path: &Path) -> bool {
    let Ok(now) = std::fs::symlink_metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        now.dev() == meta.dev() && now.ino() == meta.ino()
    }
    #[cfg(not(unix))]
    {
        now.is_file() && now.len() == meta.len()
    }
}

/// The default download directory: the user's, else `<data-dir>/downloads`.
pub fn default_download_dir(data_dir: &Path) -> PathBuf {
    directories::UserDirs::new()
        .and_then(|u| u.download_dir().map(Path::to_path_buf))
        .unwrap_or_else(|| data_dir.join("downloads"))
}

/// Hash the file at `path` for an offer: its name, size and BLAKE3 root;
/// its tree goes to `outboard`. Runs off the node's thread (it reads the
/// whole file).
pub fn hash_file(path: &Path, outboard: &Path) -> Result<FileDigest, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.is_dir() {
        return Err("it is a directory; send an archive of it (tar, zip) instead".into());
    }
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let data = File::open(path).map_err(|e| e.to_string())?;
    // The size of the handle we read, so a file that grows meanwhile is
    // hashed as it was when opened (and caught when read for sending).
    let size = data.metadata().map_err(|e| e.to_string())?.len();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let name = natter_core::names::truncate_to_boundary(
        &name,
        natter_core::wire::limits::MAX_FILE_NAME_LEN,
    )
    .to_owned();
    if let Some(dir) = outboard.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let tmp = outboard.with_extension("obao.tmp");
    let tree = BaoTree::new(size, BLOCK_SIZE);
    let result = (|| {
        let mut out = BufWriter::with_capacity(1 << 16, File::create(&tmp)?);
        let root = outboard_post_order(BufReader::with_capacity(1 << 20, data), tree, &mut out)?;
        out.flush()?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, outboard)?;
        Ok::<_, std::io::Error>(root)
    })();
    match result {
        Ok(root) => Ok(FileDigest {
            name,
            size,
            root: *root.as_bytes(),
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e.to_string())
        }
    }
}

type Key = (PeerBytes, bool, TransferId);

/// Hash pairs kept per sending transfer (about 20 KiB).
const TREE_CACHE: usize = 256;

/// An offered file's tree on disk, with the hash pairs read last kept in
/// memory: consecutive ranges share most of their path from the root, so
/// encoding one costs a read of the tree for a level or two instead of one
/// per level (15 of them for a 256 MiB file).
#[derive(Debug)]
struct Tree {
    file: File,
    pairs: RefCell<HashMap<TreeNode, (blake3::Hash, blake3::Hash)>>,
}

/// [`Tree`] as bao-tree's [`Outboard`] of a file of this root and size.
struct CachedOutboard<'a> {
    root: blake3::Hash,
    tree: BaoTree,
    data: &'a Tree,
}

impl Outboard for CachedOutboard<'_> {
    fn root(&self) -> blake3::Hash {
        self.root
    }

    fn tree(&self) -> BaoTree {
        self.tree
    }

    fn load(&self, node: TreeNode) -> std::io::Result<Option<(blake3::Hash, blake3::Hash)>> {
        if let Some(pair) = self.data.pairs.borrow().get(&node) {
            return Ok(Some(*pair));
        }
        let on_disk = PostOrderOutboard {
            root: self.root,
            tree: self.tree,
            data: &self.data.file,
        };
        let pair = on_disk.load(node)?;
        if let Some(pair) = pair {
            let mut pairs = self.data.pairs.borrow_mut();
            if pairs.len() >= TREE_CACHE {
                pairs.clear();
            }
            pairs.insert(node, pair);
        }
        Ok(pair)
    }
}

fn key(rec: &TransferRecord) -> Key {
    (rec.peer, rec.outgoing, rec.id)
}

fn io_error(e: std::io::Error) -> FileStoreError {
    match e.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => FileStoreError::DiskFull,
        ErrorKind::NotFound => FileStoreError::NotFound(e.to_string()),
        _ => FileStoreError::Io(e.to_string()),
    }
}

fn db_error(e: rusqlite::Error) -> FileStoreError {
    FileStoreError::Db(e.to_string())
}

/// Verified data is gathered into runs of about this many contiguous
/// bytes of one transfer before it goes to the writer thread: one job and
/// one wake-up of that thread per run instead of per 16 KiB group.
const WRITE_RUN: usize = 256 << 10;
/// Runs queued for the disk: at most this many (4 MiB), so a slow disk
/// holds the node back instead of filling memory.
const WRITE_QUEUE: usize = 16;

/// What the writer thread does, in order.
enum Job {
    /// Write `data`, back to back, from `offset` on.
    Write {
        key: Key,
        file: Arc<File>,
        offset: u64,
        data: Vec<bytes::Bytes>,
    },
    /// Make the partial durable, then record the progress.
    Commit {
        key: Key,
        file: Arc<File>,
        done_groups: u64,
    },
    /// Answer once everything queued before is done.
    Barrier(std::sync::mpsc::Sender<()>),
}

/// Writes received data and makes it durable on a thread of its own, so
/// the node's thread never waits for the disk: an `fdatasync` of 4 MiB
/// held every chat message behind it for milliseconds.
#[derive(Debug)]
struct Writer {
    jobs: Option<std::sync::mpsc::SyncSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The first failure of a transfer's writes, reported by its next call
    /// (its progress is never recorded past it).
    errors: Arc<Mutex<HashMap<Key, FileStoreError>>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Writer {
    fn start(db: PathBuf) -> Result<Writer, String> {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(WRITE_QUEUE);
        let errors: Arc<Mutex<HashMap<Key, FileStoreError>>> = Arc::default();
        let failed = Arc::clone(&errors);
        let conn = open_db(&db)?;
        let thread = std::thread::Builder::new()
            .name("natter-files".into())
            .spawn(move || Writer::run(conn, queue, failed))
            .map_err(|e| e.to_string())?;
        Ok(Writer {
            jobs: Some(jobs),
            thread: Some(thread),
            errors,
        })
    }

    fn run(
        conn: Connection,
        queue: std::sync::mpsc::Receiver<Job>,
        errors: Arc<Mutex<HashMap<Key, FileStoreError>>>,
    ) {
        let failed = |key: &Key| lock(&errors).contains_key(key);
        let fail = |key: Key, e: FileStoreError| {
            lock(&errors).entry(key).or_insert(e);
        };
        for job in queue {
            match job {
                Job::Write {
                    key,
                    file,
                    mut offset,
                    data,
                } => {
                    if failed(&key) {
                        continue;
                    }
                    for piece in data {
                        if let Err(e) = file.write_all_at(&piece, offset) {
                            fail(key, io_error(e));
                            break;
                        }
                        offset += piece.len() as u64;
                    }
                }
                Job::Commit {
                    key,
                    file,
                    done_groups,
                } => {
                    if failed(&key) {
                        continue;
                    }
                    if let Err(e) = file.sync_data() {
                        fail(key, io_error(e));
                        continue;
                    }
                    let (peer, outgoing, id) = key;
                    let done = conn.execute(
                        "UPDATE transfers SET done_groups = ?1 \
                         WHERE peer = ?2 AND outgoing = ?3 AND id = ?4",
                        params![done_groups as i64, &peer[..], outgoing, &id[..]],
                    );
                    if let Err(e) = done {
                        fail(key, db_error(e));
                    }
                }
                Job::Barrier(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    fn send(&self, job: Job) -> Result<(), FileStoreError> {
        match &self.jobs {
            Some(jobs) => jobs
                .send(job)
                .map_err(|_| FileStoreError::Io("the file writer stopped".into())),
            None => Err(FileStoreError::Io("the file writer stopped".into())),
        }
    }

    /// The failure recorded for `key`, if any.
    fn error(&self, key: &Key) -> Result<(), FileStoreError> {
        match lock(&self.errors).get(key) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Wait until everything queued so far is done.
    fn drain(&self) -> Result<(), FileStoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.send(Job::Barrier(tx))?;
        rx.recv()
            .map_err(|_| FileStoreError::Io("the file writer stopped".into()))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn open_db(db: &Path) -> Result<Connection, String> {
    let conn = Connection::open(db).map_err(|e| e.to_string())?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// [`FileStore`] over the data directory's database and the file system.
#[derive(Debug)]
pub struct FsFileStore {
    conn: Connection,
    download_dir: PathBuf,
    files_dir: PathBuf,
    /// Open offered files and their trees, while they are sent.
    sources: HashMap<Key, (File, Tree)>,
    /// Open partial files, while they are received.
    partials: HashMap<Key, Arc<File>>,
    /// Verified data not yet handed to the writer (at most [`WRITE_RUN`]).
    run: Option<Run>,
    writer: Writer,
}

/// Contiguous verified data of one transfer, gathered for one write job.
#[derive(Debug)]
struct Run {
    key: Key,
    file: Arc<File>,
    offset: u64,
    len: usize,
    data: Vec<bytes::Bytes>,
}

impl FsFileStore {
    /// The transfers of the database at `db` (already migrated by
    /// `Store::open`), saving into `download_dir`.
    pub fn open(db: &Path, files_dir: PathBuf, download_dir: PathBuf) -> Result<Self, String> {
        let conn = open_db(db)?;
        std::fs::create_dir_all(&download_dir)
            .map_err(|e| format!("cannot create {}: {e}", download_dir.display()))?;
        Ok(FsFileStore {
            conn,
            download_dir,
            files_dir,
            sources: HashMap::new(),
            partials: HashMap::new(),
            run: None,
            writer: Writer::start(db.to_path_buf())?,
        })
    }

    fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TransferRecord> {
        let blob32 = |v: Vec<u8>| -> [u8; 32] { v.try_into().unwrap_or([0; 32]) };
        let blob16 = |v: Vec<u8>| -> [u8; 16] { v.try_into().unwrap_or([0; 16]) };
        let state: String = row.get(6)?;
        Ok(TransferRecord {
            peer: blob32(row.get(0)?),
            outgoing: row.get(1)?,
            id: blob16(row.get(2)?),
            name: row.get(3)?,
            size: u64::try_from(row.get::<_, i64>(4)?).unwrap_or(0),
            root: blob32(row.get(5)?),
            state: TransferState::parse(&state).unwrap_or(TransferState::Failed),
            done_groups: u64::try_from(row.get::<_, i64>(7)?).unwrap_or(0),
            path: row.get(8)?,
            created_ms: u64::try_from(row.get::<_, i64>(9)?).unwrap_or(0),
        })
    }

    fn query(&self, sql_tail: &str, limit: usize) -> Result<Vec<TransferRecord>, FileStoreError> {
        let sql = format!(
            "SELECT peer, outgoing, id, name, size, root, state, done_groups, path, created_ms \
             FROM transfers {sql_tail} LIMIT ?1"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(db_error)?;
        let rows = stmt
            .query_map([limit as i64], Self::row)
            .map_err(db_error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_error)?;
        Ok(rows)
    }

    fn update(
        &self,
        rec: &TransferRecord,
        set: &str,
        value: &dyn rusqlite::ToSql,
    ) -> Result<(), FileStoreError> {
        let sql = format!(
            "UPDATE transfers SET {set} = ?1 WHERE peer = ?2 AND outgoing = ?3 AND id = ?4"
        );
        self.conn
            .execute(
                &sql,
                params![value, &rec.peer[..], rec.outgoing, &rec.id[..]],
            )
            .map_err(db_error)?;
        Ok(())
    }

    fn partial(&mut self, rec: &TransferRecord) -> Result<Arc<File>, FileStoreError> {
        let path = partial_path(&self.download_dir, rec);
        match self.partials.entry(key(rec)) {
            std::collections::hash_map::Entry::Occupied(e) => Ok(Arc::clone(e.get())),
            std::collections::hash_map::Entry::Vacant(e) => {
                let mut options = OpenOptions::new();
                options.read(true).write(true).create(true).truncate(false);
                // The name is predictable, and whoever can write to the
                // download directory could put a link to another file
                // there: never follow one (nor block on a FIFO).
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK);
                }
                let f = options.open(&path).map_err(|err| {
                    FileStoreError::Io(format!("cannot open {}: {err}", path.display()))
                })?;
                let meta = f.metadata().map_err(io_error)?;
                if !meta.is_file() {
                    return Err(FileStoreError::Io(format!(
                        "{} is not a regular file",
                        path.display()
                    )));
                }
                // Made by someone else, or linked elsewhere too: whoever
                // holds it could change the file after it was verified.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::MetadataExt;
                    if meta.uid() != nix::unistd::geteuid().as_raw() || meta.nlink() != 1 {
                        return Err(FileStoreError::Io(format!(
                            "{} is not natter's own partial file (another owner, or other links to it)",
                            path.display()
                        )));
                    }
                }
                Ok(Arc::clone(e.insert(Arc::new(f))))
            }
        }
    }

    /// Hand the gathered run, if any, to the writer thread.
    fn flush_run(&mut self) -> Result<(), FileStoreError> {
        match self.run.take() {
            Some(r) => self.writer.send(Job::Write {
                key: r.key,
                file: r.file,
                offset: r.offset,
                data: r.data,
            }),
            None => Ok(()),
        }
    }

    /// Whatever is kept for a transfer that is over.
    fn clean_up(&mut self, rec: &TransferRecord, state: TransferState) {
        let k = key(rec);
        if self.run.as_ref().is_some_and(|r| r.key == k) {
            self.run = None;
        }
        self.sources.remove(&k);
        self.partials.remove(&k);
        if rec.outgoing && state.is_final() {
            let _ = std::fs::remove_file(outboard_path(&self.files_dir, &rec.id));
        }
        if !rec.outgoing && matches!(state, TransferState::Cancelled | TransferState::Rejected) {
            let _ = std::fs::remove_file(partial_path(&self.download_dir, rec));
        }
    }
}

impl FileStore for FsFileStore {
    fn insert(&mut self, rec: &TransferRecord) -> Result<(), FileStoreError> {
        let size = i64::try_from(rec.size).map_err(|_| FileStoreError::Db("size".into()))?;
        self.conn
            .execute(
                "INSERT INTO transfers (peer, outgoing, id, name, size, root, state, done_groups, path, created_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    &rec.peer[..],
                    rec.outgoing,
                    &rec.id[..],
                    rec.name,
                    size,
                    &rec.root[..],
                    rec.state.as_str(),
                    rec.done_groups as i64,
                    rec.path,
                    rec.created_ms as i64
                ],
            )
            .map_err(db_error)?;
        Ok(())
    }

    fn get(
        &self,
        peer: &PeerBytes,
        outgoing: bool,
        id: &TransferId,
    ) -> Result<Option<TransferRecord>, FileStoreError> {
        self.conn
            .query_row(
                "SELECT peer, outgoing, id, name, size, root, state, done_groups, path, created_ms \
                 FROM transfers WHERE peer = ?1 AND outgoing = ?2 AND id = ?3",
                params![&peer[..], outgoing, &id[..]],
                Self::row,
            )
            .optional()
            .map_err(db_error)
    }

    fn list(&self, limit: usize) -> Result<Vec<TransferRecord>, FileStoreError> {
        self.query("ORDER BY rowid DESC", limit)
    }

    fn unfinished(&self) -> Result<Vec<TransferRecord>, FileStoreError> {
        self.query(
            "WHERE state IN ('offered', 'active') ORDER BY rowid",
            i64::MAX as usize,
        )
    }

    fn forget(&mut self, rec: &TransferRecord) -> Result<(), FileStoreError> {
        self.conn
            .execute(
                "DELETE FROM transfers WHERE peer = ?1 AND outgoing = ?2 AND id = ?3",
                params![&rec.peer[..], rec.outgoing, &rec.id[..]],
            )
            .map_err(db_error)?;
        self.clean_up(rec, TransferState::Cancelled);
        Ok(())
    }

    fn set_state(
        &mut self,
        rec: &TransferRecord,
        state: TransferState,
    ) -> Result<(), FileStoreError> {
        self.update(rec, "state", &state.as_str())?;
        if state == TransferState::Active {
            // Accepted again after a failure (a full disk): try afresh.
            lock(&self.writer.errors).remove(&key(rec));
        }
        if state != TransferState::Active {
            self.clean_up(rec, state);
        }
        Ok(())
    }

    fn encode(
        &mut self,
        rec: &TransferRecord,
        first: u64,
        count: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), FileStoreError> {
        let k = key(rec);
        if !self.sources.contains_key(&k) {
            let path = rec.path.clone().unwrap_or_default();
            let data = File::open(&path).map_err(io_error)?;
            let tree = Tree {
                file: File::open(outboard_path(&self.files_dir, &rec.id)).map_err(io_error)?,
                pairs: RefCell::default(),
            };
            if data.metadata().map_err(io_error)?.len() != rec.size {
                return Err(FileStoreError::Changed);
            }
            self.sources.insert(k, (data, tree));
        }
        let Some((data, tree)) = self.sources.get(&k) else {
            return Err(FileStoreError::Io("source file".into()));
        };
        let outboard = CachedOutboard {
            root: blake3::Hash::from_bytes(rec.root),
            tree: BaoTree::new(rec.size, BLOCK_SIZE),
            data: tree,
        };
        proof::encode(data, &outboard, rec.size, first, count, out).map_err(|e| match e {
            proof::ProofError::Io(e) => FileStoreError::Io(e),
            _ => FileStoreError::Changed,
        })
    }

    fn write(
        &mut self,
        rec: &TransferRecord,
        offset: u64,
        data: bytes::Bytes,
    ) -> Result<(), FileStoreError> {
        let key = key(rec);
        self.writer.error(&key)?;
        if let Some(r) = &mut self.run {
            if r.key == key && r.offset + r.len as u64 == offset {
                r.len += data.len();
                r.data.push(data);
                if r.len >= WRITE_RUN {
                    self.flush_run()?;
                }
                return Ok(());
            }
        }
        self.flush_run()?;
        let file = self.partial(rec)?;
        self.run = Some(Run {
            key,
            file,
            offset,
            len: data.len(),
            data: vec![data],
        });
        Ok(())
    }

    fn commit(&mut self, rec: &TransferRecord, done_groups: u64) -> Result<(), FileStoreError> {
        // On the writer thread, after the writes before it: the data is
        // made durable first, then the claim that it is there.
        let key = key(rec);
        self.writer.error(&key)?;
        self.flush_run()?;
        let file = self.partial(rec)?;
        self.writer.send(Job::Commit {
            key,
            file,
            done_groups,
        })
    }

    fn complete(&mut self, rec: &TransferRecord) -> Result<String, FileStoreError> {
        let part = partial_path(&self.download_dir, rec);
        self.flush_run()?;
        self.writer.drain()?;
        self.writer.error(&key(rec))?;
        let written = {
            let f = self.partial(rec)?;
            f.set_len(rec.size).map_err(io_error)?;
            f.sync_all().map_err(io_error)?;
            f.metadata().map_err(io_error)?
        };
        self.partials.remove(&key(rec));
        let base = safe_file_name(&rec.name);
        // A hard link never replaces an existing name; try the next free
        // one if another file took it meanwhile.
        let mut final_path = None;
        for _ in 0..100 {
            // A dangling link counts as taken too.
            let name = free_name(&base, |n| {
                std::fs::symlink_metadata(self.download_dir.join(n)).is_ok()
            });
            let target = self.download_dir.join(&name);
            match std::fs::hard_link(&part, &target) {
                Ok(()) => {
                    // The name must now be the file natter wrote and
                    // verified, not whatever was put at the partial's name
                    // meanwhile (a link to it would be linked, not followed).
                    if !same_file(&written, &target) {
                        let _ = std::fs::remove_file(&target);
                        return Err(FileStoreError::Io(format!(
                            "{} was replaced while the file was received",
                            part.display()
                        )));
                    }
                    final_path = Some(target);
                    break;
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_error(e)),
            }
        }
        let final_path = final_path.ok_or_else(|| FileStoreError::Io("no free name".into()))?;
        let _ = std::fs::remove_file(&part);
        if let Ok(dir) = File::open(&self.download_dir) {
            let _ = dir.sync_all();
        }
        let shown = final_path.to_string_lossy().into_owned();
        self.conn
            .execute(
                "UPDATE transfers SET state = 'completed', done_groups = ?1, path = ?2 \
                 WHERE peer = ?3 AND outgoing = ?4 AND id = ?5",
                params![
                    proof::group_count(rec.size) as i64,
                    shown,
                    &rec.peer[..],
                    rec.outgoing,
                    &rec.id[..]
                ],
            )
            .map_err(db_error)?;
        Ok(shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::files::proof::verify;

    fn store(dir: &Path) -> FsFileStore {
        let s = crate::store::Store::open(dir).unwrap();
        drop(s);
        FsFileStore::open(
            &dir.join(crate::store::DB_FILE),
            dir.join(FILES_DIR),
            dir.join("dl"),
        )
        .unwrap()
    }

    fn rec(outgoing: bool, size: u64, root: [u8; 32], path: Option<String>) -> TransferRecord {
        TransferRecord {
            id: [7; 16],
            peer: [1; 32],
            outgoing,
            name: "../evil/ name.txt".into(),
            size,
            root,
            state: TransferState::Active,
            done_groups: 0,
            path,
            created_ms: 1,
        }
    }

    #[test]
    fn an_offered_file_is_hashed_encoded_verified_and_saved_without_overwriting() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.bin");
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&src, &content).unwrap();
        let mut s = store(dir.path());
        let digest =
            hash_file(&src, &outboard_path(&dir.path().join(FILES_DIR), &[7; 16])).unwrap();
        assert_eq!(digest.root, *blake3::hash(&content).as_bytes());
        assert_eq!(digest.name, "src.bin");
        let out = rec(
            true,
            digest.size,
            digest.root,
            Some(src.to_string_lossy().into()),
        );
        s.insert(&out).unwrap();
        let inc = rec(false, digest.size, digest.root, None);
        s.insert(&inc).unwrap();
        assert!(s.insert(&inc).is_err(), "one (peer, direction, id)");
        std::fs::create_dir_all(dir.path().join("dl")).unwrap();
        std::fs::write(dir.path().join("dl").join("_evil_ name.txt"), b"mine").unwrap();
        let groups = proof::group_count(digest.size);
        let mut g = 0;
        while g < groups {
            let n = 3.min(groups - g);
            let mut enc = Vec::new();
            s.encode(&out, g, n, &mut enc).unwrap();
            for (off, data) in verify(&digest.root, digest.size, g, n, &enc).unwrap() {
                s.write(&inc, off, data).unwrap();
            }
            g += n;
        }
        s.commit(&inc, groups).unwrap();
        let path = s.complete(&inc).unwrap();
        assert!(path.ends_with("_evil_ name (1).txt"), "{path}");
        assert_eq!(std::fs::read(&path).unwrap(), content);
        assert_eq!(
            std::fs::read(dir.path().join("dl").join("_evil_ name.txt")).unwrap(),
            b"mine"
        );
        let got = s.get(&inc.peer, false, &inc.id).unwrap().unwrap();
        assert_eq!(got.state, TransferState::Completed);
        assert_eq!(got.path.as_deref(), Some(path.as_str()));
        // No partial is left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path().join("dl"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
            .collect();
        assert!(left.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_link_planted_at_the_partial_name_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let inc = rec(false, 100, [3; 32], None);
        s.insert(&inc).unwrap();
        let dl = dir.path().join("dl");
        std::fs::create_dir_all(&dl).unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, partial_path(&dl, &inc)).unwrap();
        let err = s
            .write(&inc, 0, bytes::Bytes::from_static(&[0xee; 100]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot open"), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        // A FIFO there neither blocks the node nor is taken for a file.
        let other = TransferRecord {
            id: [8; 16],
            ..inc.clone()
        };
        s.insert(&other).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(partial_path(&dl, &other))
            .status()
            .unwrap();
        assert!(made.success());
        let err = s
            .write(&other, 0, bytes::Bytes::from_static(&[0xee; 100]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular file"), "{err}");
        // A file planted there with another name linked to it (its planter
        // could rewrite it after verification) is refused too.
        let third = TransferRecord {
            id: [9; 16],
            ..inc.clone()
        };
        s.insert(&third).unwrap();
        let planted = dir.path().join("planted");
        std::fs::write(&planted, b"").unwrap();
        std::fs::hard_link(&planted, partial_path(&dl, &third)).unwrap();
        let err = s
            .write(&third, 0, bytes::Bytes::from_static(&[0xee; 100]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not natter's own"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_partial_swapped_for_a_link_while_receiving_is_never_saved() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let content = vec![0x5a; 100];
        let inc = rec(false, 100, *blake3::hash(&content).as_bytes(), None);
        s.insert(&inc).unwrap();
        let dl = dir.path().join("dl");
        std::fs::create_dir_all(&dl).unwrap();
        s.write(&inc, 0, bytes::Bytes::from(content)).unwrap();
        s.commit(&inc, 1).unwrap();
        // Someone with write access to the directory swaps the name.
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, b"precious").unwrap();
        let part = partial_path(&dl, &inc);
        std::fs::remove_file(&part).unwrap();
        std::os::unix::fs::symlink(&victim, &part).unwrap();
        let err = s.complete(&inc).unwrap_err().to_string();
        assert!(err.contains("was replaced"), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let saved: Vec<_> = std::fs::read_dir(&dl)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| !e.file_name().to_string_lossy().starts_with(".natter-"))
            .collect();
        assert!(saved.is_empty(), "{saved:?}");
    }

    #[test]
    fn a_file_changed_after_hashing_is_never_encoded() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.bin");
        std::fs::write(&src, vec![1u8; 100_000]).unwrap();
        let mut s = store(dir.path());
        let digest =
            hash_file(&src, &outboard_path(&dir.path().join(FILES_DIR), &[7; 16])).unwrap();
        let out = rec(
            true,
            digest.size,
            digest.root,
            Some(src.to_string_lossy().into()),
        );
        s.insert(&out).unwrap();
        let mut changed = vec![1u8; 100_000];
        changed[50_000] = 2;
        std::fs::write(&src, changed).unwrap();
        let mut enc = Vec::new();
        assert_eq!(s.encode(&out, 3, 1, &mut enc), Err(FileStoreError::Changed));
        assert!(
            s.encode(&out, 0, 1, &mut enc).is_ok(),
            "unchanged groups still verify"
        );
    }

    #[test]
    fn directories_and_missing_files_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let ob = dir.path().join("x.obao");
        assert!(hash_file(dir.path(), &ob)
            .unwrap_err()
            .contains("directory"));
        assert!(hash_file(&dir.path().join("nope"), &ob).is_err());
    }
}
