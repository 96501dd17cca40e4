//! Signature checks off the node's thread.
//!
//! A batch of received chat frames whose room items need their ed25519
//! signatures checked waits here, parked, while the shell checks them on
//! its pool (`Output::CheckSignatures`, answered by
//! `Input::SignaturesChecked`); the node goes on meanwhile — storing the
//! batch before, decrypting the next — so checking and storing overlap.
//!
//! Batches are handed to the chat core in the order they arrived, whatever
//! order their verdicts come back in: a batch waits for every batch before
//! it, even one with nothing to check (a direct message never overtakes a
//! post that came before it). A `Close` frame finishes the closing link's
//! parked batches (and every batch before them) at once, checking what the
//! pool has not answered yet on the node's thread, so what came before a
//! close is stored and acked before the link goes; `/quit` finishes them
//! all. (A link with nothing parked costs nothing at its close, so closing
//! links cannot make the node check more than the pool would.) The shell
//! stops feeding reads while [`MAX_PARKED_POSTS`] posts wait
//! ([`Node::checks_backlogged`]), so TCP pushes back on a sender faster
//! than the pool.
//!
//! Off unless the shell says it has a pool ([`Node::set_check_pool`]): the
//! chat core then checks each batch itself, with its `SignatureCheck`.

use super::{Node, NodeError};
use crate::chat::SignedPost;
use crate::identity::IdentityKey;
use crate::peer::LinkId;
use crate::wire::Frame;
use std::collections::{HashMap, VecDeque};

/// Posts parked for their signature checks beyond which the shell feeds
/// the node nothing but verdicts: the memory parked batches hold stays
/// bounded however fast peers send. About 4 MiB of posts at the frame size
/// limit's usual fill, and 0.2 s of checks on one core.
pub const MAX_PARKED_POSTS: usize = 4096;

/// One batch of chat frames from one read of a link, waiting.
struct Parked {
    link: LinkId,
    from: IdentityKey,
    frames: Vec<Frame>,
    /// The check asked for, if any; `None` waits only for earlier batches.
    ticket: Option<u64>,
    /// Which frame each post of the check is (index among chat frames).
    indices: Vec<usize>,
    /// The verdicts, once in.
    verdicts: Option<HashMap<usize, bool>>,
}

impl Parked {
    fn ready(&self) -> bool {
        self.ticket.is_none() || self.verdicts.is_some()
    }
}

/// The parked batches, oldest first.
#[derive(Default)]
pub(super) struct Checks {
    /// The shell checks signatures on its pool.
    pool: bool,
    queue: VecDeque<Parked>,
    next_ticket: u64,
    /// Posts of parked batches still waiting for their verdicts.
    waiting_posts: usize,
    /// Checks asked for and not yet handed to the shell.
    requests: VecDeque<(u64, Vec<SignedPost>)>,
}

impl Node {
    /// The shell checks signatures on a pool of its own: batches that need
    /// checks are handed to it (`Output::CheckSignatures`) instead of being
    /// checked on the node's thread.
    pub fn set_check_pool(&mut self, on: bool) {
        if !on {
            self.finish_checks();
        }
        self.checks.pool = on;
    }

    /// So many posts wait for their checks that the shell should feed the
    /// node nothing but `Input::SignaturesChecked` until this turns false.
    pub fn checks_backlogged(&self) -> bool {
        self.checks.waiting_posts >= MAX_PARKED_POSTS
    }

    /// Batches waiting for signature checks, or for batches before them.
    pub fn parked_batches(&self) -> usize {
        self.checks.queue.len()
    }

    /// Chat frames from one read of `link`: handled now, or parked until
    /// their signatures are checked and every batch before them is done.
    pub(super) fn chat_frames(&mut self, link: LinkId, frames: Vec<Frame>) {
        let Some(from) = self.conns.get(&link).and_then(|c| c.peer()) else {
            return;
        };
        if !self.checks.pool {
            self.take_chat_frames(link, from, frames, None);
            return;
        }
        let posts = match self.chat.signatures_to_check(&frames) {
            Ok(posts) => posts,
            Err(e) => {
                // Our store failed, not the peer: the peer resends what we
                // did not ack.
                self.error(NodeError::StoreMessages(e));
                return;
            }
        };
        if posts.is_empty() && self.checks.queue.is_empty() {
            self.take_chat_frames(link, from, frames, None);
            return;
        }
        let (indices, posts): (Vec<usize>, Vec<SignedPost>) = posts.into_iter().unzip();
        let ticket = (!posts.is_empty()).then(|| {
            let t = self.checks.next_ticket;
            self.checks.next_ticket += 1;
            self.checks.waiting_posts += posts.len();
            self.checks.requests.push_back((t, posts));
            t
        });
        self.checks.queue.push_back(Parked {
            link,
            from,
            frames,
            ticket,
            indices,
            verdicts: None,
        });
    }

    /// The next check to hand to the pool, as soon as it is asked for:
    /// a shell that handles many inputs before it drains the node's
    /// outputs takes these after each input, so the pool checks one batch
    /// while the node stores another. [`Node::poll_output`] gives whatever
    /// is left here first.
    pub fn poll_check(&mut self) -> Option<(u64, Vec<SignedPost>)> {
        self.checks.requests.pop_front()
    }

    /// The pool's verdicts for `ticket`, in the order of its posts. A
    /// ticket the node no longer waits for (finished at a close) is
    /// ignored; verdicts missing from a short answer are checked here.
    pub(super) fn on_signatures_checked(&mut self, ticket: u64, valid: Vec<bool>) {
        let Some(parked) = self
            .checks
            .queue
            .iter_mut()
            .find(|p| p.ticket == Some(ticket) && p.verdicts.is_none())
        else {
            return;
        };
        self.checks.waiting_posts = self
            .checks
            .waiting_posts
            .saturating_sub(parked.indices.len());
        parked.verdicts = Some(parked.indices.iter().copied().zip(valid).collect());
        self.take_ready();
    }

    /// Hand every parked batch to the chat core now, in order; what the
    /// pool has not answered yet is checked on this thread.
    pub(super) fn finish_checks(&mut self) {
        while !self.checks.queue.is_empty() {
            self.take_parked();
        }
    }

    /// [`Node::finish_checks`] up to `link`'s last parked batch (batches
    /// are taken in order, so the ones before it go too); nothing if it
    /// has none.
    pub(super) fn finish_checks_of(&mut self, link: LinkId) {
        let Some(last) = self.checks.queue.iter().rposition(|p| p.link == link) else {
            return;
        };
        // What the pool answers for these later finds nothing waiting.
        for _ in 0..=last {
            self.take_parked();
        }
        self.take_ready();
    }

    /// Take the oldest batches as long as they are ready.
    fn take_ready(&mut self) {
        while self.checks.queue.front().is_some_and(Parked::ready) {
            self.take_parked();
        }
    }

    fn take_parked(&mut self) {
        let Some(p) = self.checks.queue.pop_front() else {
            return;
        };
        if p.verdicts.is_none() {
            self.checks.waiting_posts = self.checks.waiting_posts.saturating_sub(p.indices.len());
        }
        self.take_chat_frames(p.link, p.from, p.frames, p.verdicts);
    }
}
