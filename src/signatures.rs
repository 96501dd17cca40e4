//! Signature work spread over every core: the chat core hands each batch
//! of received room items to a `SignatureCheck` to verify, and each batch
//! of our own open-room posts to sign; this one splits a batch of eight or
//! more between the calling (node) thread and scoped helper threads.

use natter_core::chat::{SignatureCheck, SignedPost, UnsignedPost};
use natter_core::identity::LocalIdentity;
use natter_core::wire::RoomPost;

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
    /// `work` applied to every item of `items`, in order: on this thread
    /// for a small batch, else split between it and scoped helpers. A
    /// helper that panicked gives `failed()` for each of its items.
    fn spread<T: Sync, R: Send>(
        &self,
        items: &[T],
        work: impl Fn(&T) -> R + Sync,
        failed: impl Fn() -> R,
    ) -> Vec<R> {
        let work = &work;
        let all = |part: &[T]| part.iter().map(work).collect::<Vec<R>>();
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
        self.spread(posts, |p| p.verify().is_ok(), || false)
    }

    fn sign_all(&self, local: &LocalIdentity, posts: Vec<UnsignedPost>) -> Vec<RoomPost> {
        let signatures = self.spread(&posts, |p| Some(p.signature(local)), || None);
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
                SignedPost::Room(p)
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
            .all(|(p, u)| p.id == u.id && SignedPost::Room(p.clone()).verify().is_ok()));
        assert_eq!(many.iter().filter(|v| !**v).count(), 8);
        assert!(many[0..5]
            .iter()
            .enumerate()
            .all(|(i, v)| *v == (i % 5 != 0)));
    }
}
