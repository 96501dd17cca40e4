//! Signature checks of received room items spread over every core: the
//! chat core hands each batch of frames to a `SignatureCheck`, and this one
//! splits a batch of eight or more between the calling (node) thread and
//! scoped helper threads.

use natter_core::chat::{SignatureCheck, SignedPost};

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

fn check(posts: &[&SignedPost]) -> Vec<bool> {
    posts.iter().map(|p| p.verify().is_ok()).collect()
}

impl SignatureCheck for AllCores {
    fn verify_all(&self, posts: &[&SignedPost]) -> Vec<bool> {
        if posts.len() < SPLIT_FROM || self.threads < 2 {
            return check(posts);
        }
        let chunk = posts.len().div_ceil(self.threads);
        let mut parts = posts.chunks(chunk);
        let Some(own) = parts.next() else {
            return Vec::new();
        };
        std::thread::scope(|s| {
            let helpers: Vec<_> = parts
                .map(|part| (part.len(), s.spawn(move || check(part))))
                .collect();
            let mut out = check(own);
            for (len, h) in helpers {
                // A check that panicked verified nothing.
                out.extend(h.join().unwrap_or_else(|_| vec![false; len]));
            }
            out
        })
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
        assert_eq!(many.iter().filter(|v| !**v).count(), 8);
        assert!(many[0..5]
            .iter()
            .enumerate()
            .all(|(i, v)| *v == (i % 5 != 0)));
    }
}
