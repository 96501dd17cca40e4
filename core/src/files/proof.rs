//! BLAKE3 verified streaming: a file's root hash is `blake3(content)`; its
//! tree has chunk groups of [`FILE_GROUP_SIZE`] (16 KiB) as leaves. A
//! `FileData` frame carries groups `first .. first + count` as a bao
//! encoding (the parent hash pairs from the root down to the range, in pre
//! order, then the data), which the receiver checks against the root and
//! size of the offer alone, with no other state. bao-tree does the tree
//! work; this module fixes the block size and checks what bao-tree leaves
//! to its caller (ranges inside the file, no trailing bytes).

use crate::wire::limits::FILE_GROUP_SIZE;
use bao_tree::io::outboard::PostOrderMemOutboard;
use bao_tree::io::sync::{encode_ranges_validated, DecodeResponseIter, Outboard, ReadAt};
use bao_tree::io::{BaoContentItem, Leaf};
use bao_tree::{blake3, BaoTree, BlockSize, ChunkNum, ChunkRanges};

/// 16 chunks of 1 KiB: [`FILE_GROUP_SIZE`].
pub const BLOCK_SIZE: BlockSize = BlockSize::from_chunk_log(4);

/// Chunk groups of a file of `size` bytes (an empty file has one, empty).
pub fn group_count(size: u64) -> u64 {
    size.div_ceil(FILE_GROUP_SIZE).max(1)
}

/// Bytes of groups `first .. first + count` of a file of `size` bytes.
pub fn range_len(size: u64, first: u64, count: u64) -> u64 {
    let start = first.saturating_mul(FILE_GROUP_SIZE).min(size);
    let end = first
        .saturating_add(count)
        .saturating_mul(FILE_GROUP_SIZE)
        .min(size);
    end - start
}

/// Why a range could not be encoded or verified.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("groups {first}..{end} are outside a file of {groups} groups")]
    OutOfRange { first: u64, end: u64, groups: u64 },
    #[error("the data does not match the root hash")]
    Mismatch,
    #[error("the encoding is cut short")]
    Truncated,
    #[error("{0} bytes after the encoded range")]
    Trailing(usize),
    #[error("the file has changed since it was offered")]
    Changed,
    #[error("reading the file: {0}")]
    Io(String),
}

fn tree(size: u64) -> BaoTree {
    BaoTree::new(size, BLOCK_SIZE)
}

fn ranges(size: u64, first: u64, count: u64) -> Result<ChunkRanges, ProofError> {
    let groups = group_count(size);
    let end = first.saturating_add(count);
    if count == 0 || end > groups {
        return Err(ProofError::OutOfRange { first, end, groups });
    }
    Ok(ChunkRanges::from(ChunkNum(first << 4)..ChunkNum(end << 4)))
}

/// Checks the bao encoding of groups `first .. first + count` of the file
/// with this `root` and `size`; returns the verified data as
/// `(byte offset, bytes)` pieces, in order. Nothing is returned unless the
/// whole range verifies and nothing follows it.
pub fn verify(
    root: &[u8; 32],
    size: u64,
    first: u64,
    count: u64,
    encoded: &[u8],
) -> Result<Vec<(u64, bytes::Bytes)>, ProofError> {
    let ranges = ranges(size, first, count)?;
    let mut rest = encoded;
    let mut leaves = Vec::with_capacity(count as usize);
    let root = blake3::Hash::from_bytes(*root);
    for item in DecodeResponseIter::new(root, tree(size), &mut rest, &ranges) {
        match item {
            Ok(BaoContentItem::Parent(_)) => {}
            Ok(BaoContentItem::Leaf(Leaf { offset, data })) => leaves.push((offset, data)),
            Err(e) => {
                return Err(match std::io::Error::from(e).kind() {
                    std::io::ErrorKind::UnexpectedEof => ProofError::Truncated,
                    _ => ProofError::Mismatch,
                })
            }
        }
    }
    if !rest.is_empty() {
        return Err(ProofError::Trailing(rest.len()));
    }
    Ok(leaves)
}

/// Appends the bao encoding of groups `first .. first + count` to `out`,
/// reading the data and the outboard (the tree's hash pairs). bao-tree
/// checks what it reads against the outboard, so a file changed since it
/// was hashed gives [`ProofError::Changed`], never a wrong encoding.
pub fn encode(
    data: impl ReadAt,
    outboard: impl Outboard,
    size: u64,
    first: u64,
    count: u64,
    out: &mut Vec<u8>,
) -> Result<(), ProofError> {
    let ranges = ranges(size, first, count)?;
    let start = out.len();
    encode_ranges_validated(data, outboard, &ranges, &mut *out).map_err(|e| {
        out.truncate(start);
        match e {
            bao_tree::io::EncodeError::Io(io) if io.kind() != std::io::ErrorKind::UnexpectedEof => {
                ProofError::Io(io.to_string())
            }
            _ => ProofError::Changed,
        }
    })
}

/// The root hash and the outboard of content held in memory (tests, the
/// simulator, the in-memory file store).
pub fn outboard_in_memory(content: &[u8]) -> ([u8; 32], PostOrderMemOutboard) {
    let ob = PostOrderMemOutboard::create(content, BLOCK_SIZE);
    (*ob.root.as_bytes(), ob)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn encoded(data: &[u8], first: u64, count: u64) -> Vec<u8> {
        let (_, ob) = outboard_in_memory(data);
        let mut out = Vec::new();
        encode(data, &ob, data.len() as u64, first, count, &mut out).unwrap();
        out
    }

    #[test]
    fn the_root_is_plain_blake3() {
        for len in [0, 1, 16_384, 16_385, 100_000] {
            let data = content(len);
            assert_eq!(outboard_in_memory(&data).0, *blake3::hash(&data).as_bytes());
        }
    }

    #[test]
    fn every_range_round_trips_and_nothing_else_verifies() {
        let data = content(100_000);
        let size = data.len() as u64;
        let (root, _) = outboard_in_memory(&data);
        assert_eq!(group_count(size), 7);
        for first in 0..7 {
            for count in 1..=3u64.min(7 - first) {
                let enc = encoded(&data, first, count);
                let got = verify(&root, size, first, count, &enc).unwrap();
                let joined: Vec<u8> = got.iter().flat_map(|(_, b)| b.iter().copied()).collect();
                let start = (first * FILE_GROUP_SIZE) as usize;
                assert_eq!(got[0].0, start as u64);
                assert_eq!(joined.len() as u64, range_len(size, first, count));
                assert_eq!(joined, data[start..start + joined.len()]);
                // Any flipped byte, a cut and a trailing byte are refused.
                for i in (0..enc.len()).step_by(97) {
                    let mut bad = enc.clone();
                    bad[i] ^= 1;
                    assert!(verify(&root, size, first, count, &bad).is_err(), "flip {i}");
                }
                assert!(verify(&root, size, first, count, &enc[..enc.len() - 1]).is_err());
                let mut long = enc.clone();
                long.push(0);
                assert!(matches!(
                    verify(&root, size, first, count, &long),
                    Err(ProofError::Trailing(1))
                ));
            }
        }
    }

    #[test]
    fn the_last_group_proves_the_size() {
        let data = content(100_000);
        let (root, _) = outboard_in_memory(&data);
        let enc = encoded(&data, 6, 1);
        assert!(verify(&root, 100_001, 6, 1, &enc).is_err());
        assert!(verify(&root, 99_999, 6, 1, &enc).is_err());
    }

    #[test]
    fn ranges_outside_the_file_are_refused_both_ways() {
        let data = content(40_000);
        let (root, ob) = outboard_in_memory(&data);
        let mut out = Vec::new();
        assert!(matches!(
            encode(&data[..], &ob, 40_000, 2, 2, &mut out),
            Err(ProofError::OutOfRange { .. })
        ));
        assert!(matches!(
            verify(&root, 40_000, 3, 1, &[]),
            Err(ProofError::OutOfRange { .. })
        ));
        assert!(verify(&root, 40_000, u64::MAX, 1, &[]).is_err());
        assert!(verify(&root, 40_000, 0, 0, &[]).is_err());
    }

    #[test]
    fn an_empty_file_has_one_empty_group() {
        let (root, ob) = outboard_in_memory(&[]);
        let mut out = Vec::new();
        encode(&[][..], &ob, 0, 0, 1, &mut out).unwrap();
        let got = verify(&root, 0, 0, 1, &out).unwrap();
        assert!(got.iter().all(|(_, b)| b.is_empty()));
    }

    #[test]
    fn a_changed_file_is_caught_when_encoding() {
        let data = content(50_000);
        let (_, ob) = outboard_in_memory(&data);
        let mut changed = data.clone();
        changed[20_000] ^= 1;
        let mut out = Vec::new();
        assert!(matches!(
            encode(&changed[..], &ob, 50_000, 1, 1, &mut out),
            Err(ProofError::Changed)
        ));
        assert!(out.is_empty());
    }
}
