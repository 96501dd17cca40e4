//! [`FileStore`] in memory, over a [`MemoryDisk`] that tests and the
//! simulator share with it (to put source files on it, to hash them for
//! the node's `Output::HashFile`, and to read what arrived).

use super::proof;
use super::store::{FileStore, FileStoreError, PeerBytes, TransferRecord, TransferState};
use crate::wire::frame::TransferId;
use bao_tree::io::outboard::PostOrderMemOutboard;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// Files by path, in memory, and how much received data the disk takes.
#[derive(Clone, Debug, Default)]
pub struct MemoryDisk {
    files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    capacity: Arc<Mutex<Option<usize>>>,
}

impl MemoryDisk {
    fn files(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic elsewhere cannot leave a map half-written.
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes of received data fail with a full disk once the partial
    /// files hold this many bytes (`None`: no limit).
    pub fn set_capacity(&self, bytes: Option<usize>) {
        *self.capacity.lock().unwrap_or_else(|e| e.into_inner()) = bytes;
    }

    fn capacity(&self) -> Option<usize> {
        *self.capacity.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn put(&self, path: &str, content: Vec<u8>) {
        self.files().insert(path.to_owned(), content);
    }

    pub fn get(&self, path: &str) -> Option<Vec<u8>> {
        self.files().get(path).cloned()
    }

    pub fn remove(&self, path: &str) {
        self.files().remove(path);
    }

    pub fn paths(&self) -> Vec<String> {
        self.files().keys().cloned().collect()
    }

    /// What the shell does for `Output::HashFile`: name, size and root.
    pub fn digest(&self, path: &str) -> Result<super::FileDigest, String> {
        let content = self
            .get(path)
            .ok_or_else(|| format!("no such file: {path}"))?;
        let (root, _) = proof::outboard_in_memory(&content);
        let name = path.rsplit('/').next().unwrap_or(path).to_owned();
        Ok(super::FileDigest {
            name,
            size: content.len() as u64,
            root,
        })
    }
}

type Key = (PeerBytes, bool, TransferId);

/// See the module documentation.
#[derive(Debug, Default)]
pub struct MemoryFileStore {
    disk: MemoryDisk,
    records: HashMap<Key, TransferRecord>,
    order: Vec<Key>,
    /// Incoming data, written as it was verified.
    partial: HashMap<Key, Vec<u8>>,
    /// Outgoing: the tree of each offered file, made on first use.
    outboards: HashMap<Key, PostOrderMemOutboard>,
}

fn key(rec: &TransferRecord) -> Key {
    (rec.peer, rec.outgoing, rec.id)
}

impl MemoryFileStore {
    pub fn new(disk: MemoryDisk) -> Self {
        MemoryFileStore {
            disk,
            ..MemoryFileStore::default()
        }
    }

    fn record_mut(&mut self, rec: &TransferRecord) -> Result<&mut TransferRecord, FileStoreError> {
        self.records
            .get_mut(&key(rec))
            .ok_or_else(|| FileStoreError::Db("no such transfer".into()))
    }
}

impl FileStore for MemoryFileStore {
    fn insert(&mut self, rec: &TransferRecord) -> Result<(), FileStoreError> {
        let k = key(rec);
        if self.records.contains_key(&k) {
            return Err(FileStoreError::Db("the transfer exists".into()));
        }
        self.records.insert(k, rec.clone());
        self.order.push(k);
        Ok(())
    }

    fn get(
        &self,
        peer: &PeerBytes,
        outgoing: bool,
        id: &TransferId,
    ) -> Result<Option<TransferRecord>, FileStoreError> {
        Ok(self.records.get(&(*peer, outgoing, *id)).cloned())
    }

    fn list(&self, limit: usize) -> Result<Vec<TransferRecord>, FileStoreError> {
        Ok(self
            .order
            .iter()
            .rev()
            .filter_map(|k| self.records.get(k).cloned())
            .take(limit)
            .collect())
    }

    fn unfinished(&self) -> Result<Vec<TransferRecord>, FileStoreError> {
        Ok(self
            .order
            .iter()
            .filter_map(|k| self.records.get(k))
            .filter(|r| matches!(r.state, TransferState::Offered | TransferState::Active))
            .cloned()
            .collect())
    }

    fn forget(&mut self, rec: &TransferRecord) -> Result<(), FileStoreError> {
        let k = key(rec);
        self.records.remove(&k);
        self.partial.remove(&k);
        // Else the same offer made again would be listed twice.
        self.order.retain(|o| *o != k);
        Ok(())
    }

    fn set_state(
        &mut self,
        rec: &TransferRecord,
        state: TransferState,
    ) -> Result<(), FileStoreError> {
        self.record_mut(rec)?.state = state;
        if matches!(state, TransferState::Cancelled | TransferState::Rejected) {
            self.partial.remove(&key(rec));
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
        let path = rec.path.clone().unwrap_or_default();
        let files = self.disk.files();
        let content = files
            .get(&path)
            .ok_or_else(|| FileStoreError::NotFound(path.clone()))?;
        if content.len() as u64 != rec.size {
            return Err(FileStoreError::Changed);
        }
        // The tree a real store keeps on disk since the offer was hashed.
        let ob = self
            .outboards
            .entry(key(rec))
            .or_insert_with(|| proof::outboard_in_memory(content).1);
        if *ob.root.as_bytes() != rec.root {
            return Err(FileStoreError::Changed);
        }
        proof::encode(&content[..], &*ob, rec.size, first, count, out).map_err(|e| match e {
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
        let held: usize = self.partial.values().map(Vec::len).sum();
        if self.disk.capacity().is_some_and(|c| held + data.len() > c) {
            return Err(FileStoreError::DiskFull);
        }
        let buf = self.partial.entry(key(rec)).or_default();
        let start = usize::try_from(offset).map_err(|_| FileStoreError::DiskFull)?;
        let end = start + data.len();
        if buf.len() < end {
            buf.resize(end, 0);
        }
        buf[start..end].copy_from_slice(&data);
        Ok(())
    }

    fn commit(&mut self, rec: &TransferRecord, done_groups: u64) -> Result<(), FileStoreError> {
        self.record_mut(rec)?.done_groups = done_groups;
        Ok(())
    }

    fn complete(&mut self, rec: &TransferRecord) -> Result<String, FileStoreError> {
        let mut data = self.partial.remove(&key(rec)).unwrap_or_default();
        data.truncate(rec.size as usize);
        let base = super::name::safe_file_name(&rec.name);
        let taken = self.disk.paths();
        let path = super::name::free_name(&base, |candidate| {
            taken.iter().any(|p| p == &format!("downloads/{candidate}"))
        });
        let path = format!("downloads/{path}");
        self.disk.put(&path, data);
        let r = self.record_mut(rec)?;
        r.state = TransferState::Completed;
        r.done_groups = proof::group_count(r.size);
        r.path = Some(path.clone());
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An offer withdrawn and made again is one transfer, listed once
    /// (found by the `files` fuzz target: the store and the running
    /// transfers disagreed).
    #[test]
    fn a_forgotten_transfer_made_again_is_listed_once() {
        let mut store = MemoryFileStore::new(MemoryDisk::default());
        let rec = TransferRecord {
            id: [8; 16],
            peer: [1; 32],
            outgoing: false,
            name: "f".into(),
            size: 1,
            root: [0; 32],
            state: TransferState::Offered,
            done_groups: 0,
            path: None,
            created_ms: 0,
        };
        store.insert(&rec).unwrap();
        store.forget(&rec).unwrap();
        store.insert(&rec).unwrap();
        assert_eq!(store.list(usize::MAX).unwrap().len(), 1);
        assert_eq!(store.unfinished().unwrap().len(), 1);
    }
}
