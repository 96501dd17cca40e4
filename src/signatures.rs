//! Signature work spread over every core.
//!
//! - [`CheckPool`]: the node's checks of received posts, off its thread
//!   (`Output::CheckSignatures`): persistent workers, one per core, each
//!   batch split between them; the verdicts go back to the node as an input
//!   while it stores the batch before.
//! - [`AllCores`]: the chat core's `SignatureCheck`, for what it still does
//!   on the node's thread (signing a batch of our own open-room posts;
//!   checks when no pool is set): a batch of eight or more is split between
//!   the calling thread and scoped helper threads.

use natter_core::chat::{SignatureCheck, SignedPost, UnsignedPost};
use natter_core::identity::{LocalIdentity, ParsedKeys};
use natter_core::wire::RoomPost;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

/// Below this many signatures a batch is checked on the calling thread:
/// starting a thread costs more than a few checks.
const SPLIT_FROM: usize = 8;

/// Checks on every core the machine has.
#[derive(Debug)]
pub struct AllCores {
    threads: usize,
}

impl AllCores {
    pub fn new() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        AllCores { threads }
    }
}

impl Default for AllCores {
    fn default() -> Self {
        AllCores::new()
    }
}

impl AllCores {
    /// `all` applied to `items`, one result per item in order: on this
    /// thread for a small batch, else to parts of it on this thread and
    /// scoped helpers. A helper that panicked gives `failed()` for each
    /// of its part's items.
    fn spread<T: Sync, R: Send>(
        &self,
        items: &[T],
        all: impl Fn(&[T]) -> Vec<R> + Sync,
        failed: impl Fn() -> R,
    ) -> Vec<R> {
        let all = &all;
        if items.len() < SPLIT_FROM || self.threads < 2 {
            return all(items);
        }
        let chunk = items.len().div_ceil(self.threads);
        let mut parts = items.chunks(chunk);
        let Some(own) = parts.next() else {
            return Vec::new();
        };
        std::thread::scope(|s| {
            let helpers: Vec<_> = parts
                .map(|part| (part.len(), s.spawn(move || all(part))))
                .collect();
            let mut out = all(own);
            for (len, h) in helpers {
                match h.join() {
                    Ok(done) => out.extend(done),
                    Err(_) => out.extend((0..len).map(|_| failed())),
                }
            }
            out
        })
    }
}

impl SignatureCheck for AllCores {
    fn verify_all(&self, posts: &[&SignedPost]) -> Vec<bool> {
        // A check that panicked verified nothing.
        self.spread(posts, SignedPost::verify_each, || false)
    }

    fn sign_all(&self, local: &LocalIdentity, posts: Vec<UnsignedPost>) -> Vec<RoomPost> {
        let signatures = self.spread(
            &posts,
            |part| part.iter().map(|p| Some(p.signature(local))).collect(),
            || None,
        );
        let author = local.identity_key();
        // Signing cannot fail; a helper that panicked leaves the batch
        // short, and the chat core refuses the posts left unsigned
        // (`ChatError::Unsigned`).
        posts
            .into_iter()
            .zip(signatures)
            .map_while(|(post, signature)| Some(post.with_signature(author, signature?)))
            .collect()
    }
}

/// Where a batch's verdicts go: `(ticket, verdicts in post order)`.
pub type Deliver = Arc<dyn Fn(u64, Vec<bool>) + Send + Sync>;

/// One batch being checked: its posts, the verdicts so far, and how many
/// parts are still out.
struct Batch {
    ticket: u64,
    posts: Vec<SignedPost>,
    verdicts: Mutex<Vec<bool>>,
    parts_left: AtomicUsize,
    deliver: Deliver,
}

/// A worker's share of a batch: posts `start..end`.
struct Part {
    batch: Arc<Batch>,
    start: usize,
    end: usize,
}

/// Persistent signature-check workers, one per core.
///
/// A batch is split into one part per worker (at least [`SPLIT_FROM`]
/// posts each), so one large batch uses every core; the worker that
/// finishes a batch's last part delivers its verdicts. A check that panics
/// counts as a bad signature. Dropping the pool stops the workers once
/// the parts queued are done.
pub struct CheckPool {
    parts: Option<Sender<Part>>,
    workers: usize,
    deliver: Deliver,
}

impl CheckPool {
    /// A pool with a worker per core. Workers that cannot be started are
    /// missing; with none at all, [`CheckPool::submit`] checks on the
    /// calling thread.
    pub fn new(deliver: Deliver) -> CheckPool {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        CheckPool::with_workers(cores, deliver)
    }

    pub fn with_workers(threads: usize, deliver: Deliver) -> CheckPool {
        let (tx, rx) = channel::<Part>();
        let rx = Arc::new(Mutex::new(rx));
        let mut workers = 0;
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            let started = std::thread::Builder::new()
                .name(format!("natter-check-{i}"))
                .spawn(move || work(&rx));
            workers += usize::from(started.is_ok());
        }
        CheckPool {
            parts: (workers > 0).then_some(tx),
            workers,
            deliver,
        }
    }

    /// Check `posts`; their verdicts are delivered, in order, under
    /// `ticket`.
    pub fn submit(&self, ticket: u64, posts: Vec<SignedPost>) {
        let len = posts.len();
        let per_part = len.div_ceil(self.workers.max(1)).max(SPLIT_FROM);
        let parts = len.div_ceil(per_part).max(1);
        let batch = Arc::new(Batch {
            ticket,
            posts,
            verdicts: Mutex::new(vec![false; len]),
            parts_left: AtomicUsize::new(parts),
            deliver: Arc::clone(&self.deliver),
        });
        // Used only if a part is checked here.
        let mut keys = ParsedKeys::default();
        for k in 0..parts {
            let part = Part {
                batch: Arc::clone(&batch),
                start: k * per_part,
                end: ((k + 1) * per_part).min(len),
            };
            // No workers, or all gone: check here.
            let unsent = match &self.parts {
                Some(tx) => tx.send(part).err().map(|e| e.0),
                None => Some(part),
            };
            if let Some(part) = unsent {
                check(part, &mut keys);
            }
        }
    }
}

/// A worker: parts until the pool is dropped, with the authors' keys it
/// has made points of.
fn work(parts: &Mutex<Receiver<Part>>) {
    let mut keys = ParsedKeys::default();
    loop {
        let next = parts.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match next {
            Ok(part) => check(part, &mut keys),
            Err(_) => return,
        }
    }
}

/// Check one part; the last part of a batch delivers it.
fn check(part: Part, keys: &mut ParsedKeys) {
    let batch = &part.batch;
    let mine: Vec<bool> = batch.posts[part.start..part.end]
        .iter()
        .map(|p| {
            // A check that panicked verified nothing; the worker's keys
            // start over, in case the panic left them half made.
            catch_unwind(AssertUnwindSafe(|| p.verify_with(keys).is_ok())).unwrap_or_else(|_| {
                *keys = ParsedKeys::default();
                false
            })
        })
        .collect();
    {
        let mut all = batch
            .verdicts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        all[part.start..part.end].copy_from_slice(&mine);
    }
    if batch.parts_left.fetch_sub(1, Ordering::AcqRel) == 1 {
        let verdicts = std::mem::take(
            &mut *batch
                .verdicts
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        (batch.deliver)(batch.ticket, verdicts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::chat::{open_room_id, sign_room_post, OneByOne};
    use natter_core::identity::LocalIdentity;

    #[test]
    fn all_cores_agree_with_one_by_one_in_order() {
        let me = LocalIdentity::from_secrets([5; 32], [6; 32]).unwrap();
        let posts: Vec<SignedPost> = (0..37u8)
            .map(|i| {
                let mut p = sign_room_post(&me, open_room_id("ops"), [i; 16], 1, format!("m{i}"));
                if i % 5 == 0 {
                    p.text.push('!');
                }
                SignedPost::Room(Box::new(p))
            })
            .collect();
        let refs: Vec<&SignedPost> = posts.iter().collect();
        let many = AllCores { threads: 3 }.verify_all(&refs);
        assert_eq!(many, OneByOne.verify_all(&refs));
        // Signing spread over threads gives the same posts in the same
        // order (ed25519 signatures are deterministic).
        let unsigned: Vec<UnsignedPost> = (0..37u8)
            .map(|i| UnsignedPost {
                room: open_room_id("ops"),
                id: [i; 16],
                timestamp_ms: 1,
                text: format!("m{i}"),
            })
            .collect();
        let spread = AllCores { threads: 3 }.sign_all(&me, unsigned.clone());
        assert_eq!(spread, OneByOne.sign_all(&me, unsigned.clone()));
        assert_eq!(spread.len(), 37);
        assert!(spread
            .iter()
            .zip(&unsigned)
            .all(|(p, u)| p.id == u.id && SignedPost::Room(Box::new(p.clone())).verify().is_ok()));
        assert_eq!(many.iter().filter(|v| !**v).count(), 8);
        assert!(many[0..5]
            .iter()
            .enumerate()
            .all(|(i, v)| *v == (i % 5 != 0)));
    }

    /// Posts `m0..m{n}`, every fifth tampered with after signing.
    fn some_posts(n: u8) -> Vec<SignedPost> {
        let me = LocalIdentity::from_secrets([7; 32], [8; 32]).unwrap();
        (0..n)
            .map(|i| {
                let mut p = sign_room_post(&me, open_room_id("ops"), [i; 16], 1, format!("m{i}"));
                if i % 5 == 0 {
                    p.text.push('!');
                }
                SignedPost::Room(Box::new(p))
            })
            .collect()
    }

    #[test]
    fn the_pool_delivers_each_batch_once_with_verdicts_in_post_order() {
        let (tx, rx) = channel();
        let tx = Mutex::new(tx);
        let deliver: Deliver = Arc::new(move |t, v| {
            let _ = tx.lock().unwrap().send((t, v));
        });
        // Small, one part; larger, split over three workers unevenly.
        for (workers, sizes) in [(3, vec![1usize, 7, 37, 100]), (1, vec![20]), (0, vec![9])] {
            let pool = CheckPool::with_workers(workers, Arc::clone(&deliver));
            let batches: Vec<Vec<SignedPost>> =
                sizes.iter().map(|&n| some_posts(n as u8)).collect();
            for (t, posts) in batches.iter().enumerate() {
                pool.submit(t as u64, posts.clone());
            }
            let mut got: Vec<(u64, Vec<bool>)> =
                (0..batches.len()).map(|_| rx.recv().unwrap()).collect();
            got.sort_by_key(|(t, _)| *t);
            for ((t, verdicts), posts) in got.iter().zip(&batches) {
                let refs: Vec<&SignedPost> = posts.iter().collect();
                assert_eq!(
                    verdicts,
                    &OneByOne.verify_all(&refs),
                    "batch {t}, {workers} workers"
                );
            }
            drop(pool);
            assert!(rx.try_recv().is_err(), "each batch delivered once");
        }
    }
}
