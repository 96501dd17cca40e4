//! The thread that owns the [`Node`]: every `Node::handle`, and the SQLite
//! commits inside it, runs here and never on a tokio worker.
//!
//! The loop: drain `poll_output` (the drain's events to the UI together,
//! with one wake-up ([`super::events`]); everything else to the IO side,
//! each `Send` as soon as it is sealed, so a link's writer writes it while
//! the node seals the next), wait for the next input until
//! `poll_timeout`, handle it and whatever else is already queued (up to
//! [`BATCH_INPUTS`], so the replies to many reads share Noise messages and
//! a burst of posts shares one transaction, until
//! [`BATCH_OUTPUTS`] wait), run the timers that are due.
//!
//! With group commit ([`super::Options::group_commit`]) a drain that
//! follows a commit goes out through the [`Barrier`] instead, once the
//! write-ahead log is synced, while this thread goes on with the next
//! batch ([`super::durable`]).
//!
//! Signature checks of received posts run on a [`CheckPool`] beside this
//! thread; while the node has [`natter_core::node::MAX_PARKED_POSTS`]
//! waiting for their verdicts, the loop handles verdicts only and keeps
//! everything else for later, holding on to its permits, so reader tasks
//! stop reading and TCP pushes back.

use natter_core::event::Event;
use natter_core::link::Remote;
use natter_core::node::{Input, Node, Output};
use natter_core::peer::LinkId;
use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

use super::durable::Barrier;
use super::events::EventTx;
use crate::store::GroupCommit;

use crate::signatures::{CheckPool, Deliver};

/// Inputs handled back to back before outputs are drained.
const BATCH_INPUTS: usize = 1024;
/// The most outputs a batch of inputs holds back: once the node has this
/// many queued (events, mostly), the batch ends and they go out. Inputs
/// are not alike: one read of a fast peer can carry a thousand messages,
/// each stored (the read's transaction) before the next read. Bounded by
/// input count alone, a batch lasted as long as the peer kept sending:
/// in the chat benchmark the receiver stored 43,000 messages in one batch
/// of a third of a second before it sent a single ack or event, so its
/// peer's outbox grew all along and the two nodes took turns instead of
/// working at once. A read's own transaction is already the group commit.
/// Not a time bound: with many nodes on few cores (50 in the room
/// benchmark, on 2) a bound of 2 ms, of wall or even of CPU time, cut
/// batches of small reads short, each with its own seals and writes, and
/// the room row lost a third.
const BATCH_OUTPUTS: usize = 1024;
/// The longest the thread waits before it looks whether the IO side still
/// exists: the check pool holds a sender of the input channel, so the
/// channel alone no longer says when the shell was dropped.
const IO_CHECK: Duration = Duration::from_secs(1);
/// Reads and beacons queued for the node thread: when it falls behind,
/// reader tasks wait and stop reading, so TCP pushes back on fast senders.
const SOCKET_QUEUE: usize = 64;
/// User commands queued for the node thread: one batch, so a pasted burst
/// is stored in one transaction.
const COMMAND_QUEUE: usize = BATCH_INPUTS;

/// What the IO side tells the node thread.
pub(super) enum ToNode {
    Input(Input),
    /// An inbound connection, parked under `token`: does the node take it?
    Accept {
        token: u64,
        remote: Remote,
    },
}

/// What the node thread asks of the IO side.
pub(super) enum ToIo {
    /// The non-event outputs of one drain, in order.
    Outputs(Vec<Output>),
    /// The answer to [`ToNode::Accept`]: the new link, or drop the stream.
    Accepted { token: u64, link: Option<LinkId> },
}

/// Which of [`Bounds`]' queues an input took a permit of.
#[derive(Clone, Copy)]
enum Bound {
    Socket,
    Commands,
}

impl Bound {
    const ALL: [Bound; 2] = [Bound::Socket, Bound::Commands];
}

/// Permits for the inputs that come from outside at a rate we do not
/// choose. The IO side takes one before queueing such an input; the node
/// thread gives it back once the input is handled, with the rest of its
/// batch's ([`NodeThread::give_back_permits`]).
pub(super) struct Bounds {
    socket: Semaphore,
    commands: Semaphore,
}

impl Bounds {
    fn new() -> Bounds {
        Bounds {
            socket: Semaphore::new(SOCKET_QUEUE),
            commands: Semaphore::new(COMMAND_QUEUE),
        }
    }

    fn of(&self, input: &Input) -> Option<&Semaphore> {
        self.kind_of(input).map(|k| self.semaphore(k))
    }

    fn kind_of(&self, input: &Input) -> Option<Bound> {
        match input {
            Input::Received { .. } | Input::Datagram { .. } => Some(Bound::Socket),
            Input::Command(_) => Some(Bound::Commands),
            _ => None,
        }
    }

    fn semaphore(&self, kind: Bound) -> &Semaphore {
        match kind {
            Bound::Socket => &self.socket,
            Bound::Commands => &self.commands,
        }
    }

    /// Wake everything waiting for a permit, for good (the node is gone).
    pub(super) fn close(&self) {
        self.socket.close();
        self.commands.close();
    }
}

/// The IO side's handle on the node thread's input queue.
#[derive(Clone)]
pub(super) struct NodeTx {
    tx: Sender<ToNode>,
    bounds: Arc<Bounds>,
}

impl NodeTx {
    /// Queue a message at once. False when the node thread is gone.
    pub(super) fn send(&self, msg: ToNode) -> bool {
        self.tx.send(msg).is_ok()
    }

    /// Queue an input, first waiting for a permit if its kind is bounded.
    /// False when the node thread is gone.
    pub(super) async fn input(&self, input: Input) -> bool {
        if let Some(bound) = self.bounds.of(&input) {
            match bound.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => return false,
            }
        }
        self.send(ToNode::Input(input))
    }

    pub(super) fn close(&self) {
        self.bounds.close();
    }
}

/// Start the node thread. Events go to `events`, the rest to the returned
/// receiver, which closes when the thread ends. With `group_commit`, the
/// node's store commits without waiting for the disk and the thread's
/// outputs wait for the log's sync instead ([`super::durable`]).
pub(super) fn spawn(
    node: Node,
    events: EventTx,
    clock: Instant,
    group_commit: Option<GroupCommit>,
) -> std::io::Result<(
    NodeTx,
    mpsc::UnboundedReceiver<ToIo>,
    std::thread::JoinHandle<()>,
)> {
    let (tx, inputs) = std::sync::mpsc::channel();
    let (io, from_node) = mpsc::unbounded_channel();
    let bounds = Arc::new(Bounds::new());
    let verdicts = tx.clone();
    let deliver: Deliver = Arc::new(move |ticket, valid| {
        let _ = verdicts.send(ToNode::Input(Input::SignaturesChecked { ticket, valid }));
    });
    let barrier = match group_commit {
        Some(group) => Some(Barrier::start(
            group,
            io.clone(),
            events.clone(),
            tx.clone(),
        )?),
        None => None,
    };
    let mut node = node;
    node.set_check_pool(true);
    let thread = NodeThread {
        barrier,
        node,
        pool: CheckPool::new(deliver),
        kept: VecDeque::new(),
        inputs,
        io,
        events,
        drained: Vec::new(),
        bounds: Arc::clone(&bounds),
        handled: [0; Bound::ALL.len()],
        clock,
    };
    let handle = std::thread::Builder::new()
        .name("natter-node".into())
        .spawn(move || thread.run())?;
    Ok((NodeTx { tx, bounds }, from_node, handle))
}

struct NodeThread {
    /// First, so it is dropped first when the thread ends or panics: what
    /// it holds is synced and released while the node's store is still
    /// open.
    barrier: Option<Barrier>,
    node: Node,
    /// Checks the signatures of received posts.
    pool: CheckPool,
    /// Inputs received while the node's checks were backlogged, in order.
    kept: VecDeque<ToNode>,
    inputs: Receiver<ToNode>,
    io: mpsc::UnboundedSender<ToIo>,
    events: EventTx,
    /// The events of one drain, handed to the UI together.
    drained: Vec<Event>,
    bounds: Arc<Bounds>,
    /// Bounded inputs handled in this batch, by [`Bound`]: their permits
    /// go back when the batch ends ([`NodeThread::give_back_permits`]).
    handled: [usize; Bound::ALL.len()],
    clock: Instant,
}

impl NodeThread {
    fn run(mut self) {
        loop {
            self.drain();
            if self.node.is_shut_down() {
                return;
            }
            match self.wait() {
                Ok(first) => {
                    let now = self.now();
                    self.handle(now, first);
                    for _ in 0..BATCH_INPUTS {
                        if self.node.queued_outputs() >= BATCH_OUTPUTS {
                            break;
                        }
                        match self.next_now() {
                            Some(msg) => self.handle(now, msg),
                            None => break,
                        }
                    }
                    self.give_back_permits();
                }
                // The shell was dropped without waiting for us.
                Err(RecvTimeoutError::Timeout) if self.io_gone() => return,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // Checked after every batch, so a steady stream of inputs
            // cannot hold the timers back.
            let now = self.now();
            if self.node.poll_timeout().is_some_and(|t| t <= now) {
                self.node.handle_timeout(now);
            }
        }
    }

    /// The permits of the inputs the batch handled, given back at once:
    /// one lock of each semaphore and at most one wake-up of the task that
    /// waits for a permit, instead of one per input (a pasted burst or a
    /// fast peer's reads would otherwise wake that task a thousand times
    /// a batch).
    fn give_back_permits(&mut self) {
        for kind in Bound::ALL {
            let n = std::mem::take(&mut self.handled[kind as usize]);
            if n > 0 {
                self.bounds.semaphore(kind).add_permits(n);
            }
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The next input already here, if any: a kept one first, once the
    /// node takes inputs again.
    fn next_now(&mut self) -> Option<ToNode> {
        if !self.node.checks_backlogged() {
            if let Some(kept) = self.kept.pop_front() {
                return Some(kept);
            }
        }
        self.inputs.try_recv().ok()
    }

    /// Every handle on the input queue the IO side held is gone (only
    /// this thread's share of the bounds is left).
    fn io_gone(&self) -> bool {
        Arc::strong_count(&self.bounds) == 1
    }

    /// The next input, or `Timeout` once the node's deadline has come or
    /// [`IO_CHECK`] has passed.
    fn wait(&mut self) -> Result<ToNode, RecvTimeoutError> {
        if let Some(kept) = self.next_now() {
            return Ok(kept);
        }
        let check = Instant::now() + IO_CHECK;
        let until = self
            .node
            .poll_timeout()
            .and_then(|t| self.clock.checked_add(Duration::from_millis(t)))
            .map_or(check, |deadline| deadline.min(check));
        self.inputs
            .recv_timeout(until.saturating_duration_since(Instant::now()))
    }

    fn handle(&mut self, now: u64, msg: ToNode) {
        let verdict = matches!(msg, ToNode::Input(Input::SignaturesChecked { .. }));
        if self.node.checks_backlogged() && !verdict {
            self.kept.push_back(msg);
            return;
        }
        match msg {
            ToNode::Accept { token, remote } => {
                let link = match remote {
                    Remote::Lan(addr) => self.node.accept(now, addr),
                    Remote::Wan(peer) => self.node.accept_wan(now, peer),
                };
                let _ = self.io.send(ToIo::Accepted { token, link });
            }
            ToNode::Input(input) => {
                let bound = self.bounds.kind_of(&input);
                self.node.handle(now, input);
                if let Some(kind) = bound {
                    self.handled[kind as usize] += 1;
                }
            }
        }
        // Checks go to the pool at once, not at the next drain: it works
        // on them while this thread stores what was checked before.
        while let Some((ticket, posts)) = self.node.poll_check() {
            self.pool.submit(ticket, posts);
        }
    }

    /// Carry everything the node wants done out of the thread. The first
    /// `poll_output` makes the node seal what the batch queued; a `Send`
    /// goes out with what came before it at once, not after the rest is
    /// sealed (file data is sealed half a send backlog at a time).
    ///
    /// With group commit, once a commit has come before an output (in the
    /// batch, or inside `poll_output`, where the node stores the posts it
    /// collected before sealing them), that output and the rest of the
    /// drain are held by the [`Barrier`]; what came before the commit goes
    /// out at once.
    fn drain(&mut self) {
        let mut outputs = Vec::new();
        let mut holding = self.must_hold();
        while let Some(out) = self.node.poll_output() {
            if !holding && self.must_hold() {
                holding = true;
                self.release(&mut outputs);
            }
            match out {
                Output::Event(e) => self.drained.push(e),
                Output::CheckSignatures { ticket, posts } => self.pool.submit(ticket, posts),
                send @ Output::Send { .. } if !holding => {
                    outputs.push(send);
                    let _ = self.io.send(ToIo::Outputs(std::mem::take(&mut outputs)));
                }
                other => outputs.push(other),
            }
        }
        match &mut self.barrier {
            Some(barrier) if holding => barrier.hold(outputs, std::mem::take(&mut self.drained)),
            _ => self.release(&mut outputs),
        }
    }

    fn must_hold(&self) -> bool {
        self.barrier.as_ref().is_some_and(Barrier::must_hold)
    }

    /// Outputs and events out now.
    fn release(&mut self, outputs: &mut Vec<Output>) {
        if !outputs.is_empty() {
            let _ = self.io.send(ToIo::Outputs(std::mem::take(outputs)));
        }
        self.events.push_all(self.drained.drain(..));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::chat::MemoryStore;
    use natter_core::identity::LocalIdentity;
    use natter_core::node::{Command, NodeConfig};
    use natter_core::rng::Rng;

    /// A node with no discovery and a store in memory.
    fn lone_node() -> Node {
        let id = LocalIdentity::from_secrets([3; 32], [4; 32]).unwrap();
        let cfg = NodeConfig {
            discovery: None,
            ..NodeConfig::default()
        };
        Node::new(id, cfg, Box::new(MemoryStore::new()), Rng::new(1), 0, 0)
    }

    /// Permits go back a batch at a time: three queues' worth of commands
    /// sent as fast as permits allow are all handled, in order (a lost
    /// permit would stall the sender at the queue's bound), and once the
    /// thread has answered, every permit is back.
    #[test]
    fn permits_given_back_by_the_batch_let_every_command_through() {
        let node = lone_node();
        let (events, mut ui) = crate::shell::event_queue(8 * COMMAND_QUEUE);
        let (tx, _from_node, thread) = spawn(node, events, Instant::now(), None).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let total = 3 * COMMAND_QUEUE as u64;
        rt.block_on(async {
            let sending = async {
                for n in 0..total {
                    assert!(tx.input(Input::Command(Command::Marker(n))).await);
                }
            };
            tokio::time::timeout(Duration::from_secs(20), sending)
                .await
                .expect("a permit was not given back");
            let mut next = 0;
            while next < total {
                match tokio::time::timeout(Duration::from_secs(20), ui.recv()).await {
                    Ok(Some(Event::Marker(n))) => {
                        assert_eq!(n, next);
                        next += 1;
                    }
                    Ok(Some(_)) => {}
                    other => panic!("marker {next} missing: {other:?}"),
                }
            }
        });
        assert_eq!(tx.bounds.commands.available_permits(), COMMAND_QUEUE);
        assert!(tx.send(ToNode::Input(Input::Command(Command::Quit))));
        thread.join().unwrap();
    }

    /// The check pool keeps a sender of the input queue; dropping the IO
    /// side's handles must still end the thread (and free the node's
    /// store) without a `Quit`.
    #[test]
    fn the_thread_ends_when_the_io_side_is_dropped_without_a_quit() {
        let node = lone_node();
        let (events, _ui) = crate::shell::event_queue(16);
        let (tx, from_node, thread) = spawn(node, events, Instant::now(), None).unwrap();
        drop(tx);
        drop(from_node);
        let deadline = Instant::now() + 3 * IO_CHECK;
        while !thread.is_finished() {
            assert!(
                Instant::now() < deadline,
                "the node thread outlived its shell"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
