//! The identity key file: `<data-dir>/identity.key`, mode 0600.
//!
//! Layout (81 bytes): magic `NATTERID` (8) · format version `0x01` (1) ·
//! ed25519 seed (32) · X25519 secret (32) · the first 8 bytes of SHA-256 over
//! everything before it (8). The checksum turns a truncated or damaged file
//! into a clear error instead of a silently different identity.
//!
//! The file is created atomically (written to a temporary file, synced, then
//! hard-linked into place, which fails rather than replace an existing file)
//! and is never overwritten.

use natter_core::identity::{IdentityError, LocalIdentity};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// File name of the identity inside the data directory.
pub const IDENTITY_FILE: &str = "identity.key";
const MAGIC: &[u8; 8] = b"NATTERID";
const VERSION: u8 = 1;
const BODY_LEN: usize = 8 + 1 + 32 + 32;
const FILE_LEN: usize = BODY_LEN + 8;

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read identity file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot create identity file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("identity file {path} is corrupt ({why}); it was left untouched. Restore it from a backup, or move it away to create a new identity (peers will see a different key)")]
    Corrupt { path: PathBuf, why: String },
    #[error(
        "identity file {path} is readable by other users (mode {mode:o}); run: chmod 600 {path}"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// Load the identity from `data_dir`, creating the directory and a new
/// identity if there is none. Returns the identity and whether it was created.
pub fn load_or_create(data_dir: &Path) -> Result<(LocalIdentity, bool), KeyFileError> {
    let path = data_dir.join(IDENTITY_FILE);
    match fs::symlink_metadata(&path) {
        Ok(_) => Ok((load(&path)?, false)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let id = LocalIdentity::generate()?;
            create(data_dir, &id)?;
            Ok((id, true))
        }
        Err(source) => Err(KeyFileError::Read { path, source }),
    }
}

/// Load an existing identity file.
pub fn load(path: &Path) -> Result<LocalIdentity, KeyFileError> {
    let read_err = |source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = fs::metadata(path).map_err(read_err)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    let bytes = Zeroizing::new(fs::read(path).map_err(read_err)?);
    decode(&bytes).map_err(|why| KeyFileError::Corrupt {
        path: path.to_owned(),
        why,
    })
}

/// Encode an identity in the file format.
pub fn encode(id: &LocalIdentity) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(FILE_LEN));
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(id.ed25519_seed().as_ref());
    out.extend_from_slice(id.noise_secret());
    let check = Sha256::digest(&out[..]);
    out.extend_from_slice(&check[..8]);
    out
}

/// Decode the file format; the error says what is wrong.
pub fn decode(bytes: &[u8]) -> Result<LocalIdentity, String> {
    if bytes.len() != FILE_LEN {
        return Err(format!("{} bytes, expected {FILE_LEN}", bytes.len()));
    }
    if &bytes[..8] != MAGIC {
        return Err("not a natter identity file (bad magic)".into());
    }
    if bytes[8] != VERSION {
        return Err(format!("unknown format version {}", bytes[8]));
    }
    let check = Sha256::digest(&bytes[..BODY_LEN]);
    if check[..8] != bytes[BODY_LEN..] {
        return Err("checksum mismatch".into());
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    let mut dh = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&bytes[9..41]);
    dh.copy_from_slice(&bytes[41..73]);
    LocalIdentity::from_secrets(*seed, *dh).map_err(|e| e.to_string())
}

/// Write a new identity file; fails if one exists.
fn create(data_dir: &Path, id: &LocalIdentity) -> Result<(), KeyFileError> {
    let path = data_dir.join(IDENTITY_FILE);
    let write_err = |source| KeyFileError::Write {
        path: path.clone(),
        source,
    };
    // The data directory holds secrets and history: owner only.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(write_err)?;
    let mut suffix = [0u8; 8];
    natter_core::identity::random_bytes(&mut suffix)?;
    let tmp = data_dir.join(format!(
        ".{IDENTITY_FILE}.tmp-{}",
        natter_core::hex(&suffix)
    ));
    let result = (|| -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&encode(id))?;
        f.sync_all()?;
        // A hard link never replaces an existing file, unlike rename.
        fs::hard_link(&tmp, &path)?;
        File::open(data_dir)?.sync_all()
    })();
    let _ = fs::remove_file(&tmp);
    result.map_err(write_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_load_gives_the_same_identity() {
        let dir = tempfile::tempdir().unwrap();
        let (a, created) = load_or_create(dir.path()).unwrap();
        assert!(created);
        let (b, created) = load_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(a.identity_key(), b.identity_key());
        assert_eq!(a.bound_keys(), b.bound_keys());
        let mode = fs::metadata(dir.path().join(IDENTITY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temporary file left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn truncated_or_damaged_files_are_errors_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let (id, _) = load_or_create(dir.path()).unwrap();
        let path = dir.path().join(IDENTITY_FILE);
        let good = encode(&id);
        for damaged in [
            good[..40].to_vec(),
            {
                let mut d = good.to_vec();
                d[20] ^= 0x01;
                d
            },
            b"hello".to_vec(),
            Vec::new(),
        ] {
            fs::write(&path, &damaged).unwrap();
            let err = load_or_create(dir.path()).unwrap_err();
            assert!(matches!(err, KeyFileError::Corrupt { .. }), "{err}");
            assert!(err.to_string().contains(IDENTITY_FILE));
            assert_eq!(
                fs::read(&path).unwrap(),
                damaged,
                "file must not be rewritten"
            );
        }
    }

    #[test]
    fn world_readable_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path()).unwrap();
        let path = dir.path().join(IDENTITY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(load(&path), Err(KeyFileError::Permissions { .. })));
    }
}
