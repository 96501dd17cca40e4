//! The durability barrier of group commit: the node thread's outputs that
//! follow a commit wait here until the write-ahead log has been synced,
//! while the node thread goes on storing the next batch.
//!
//! The rule (`store::group_commit`): nothing a commit leads to leaves the
//! process before a sync that started after the commit has returned. The
//! node thread hands every drain that follows a commit, and every drain
//! after one still waiting (so the order of outputs never changes), to
//! this module's thread, which syncs once for all the drains that arrived
//! while it was busy, then passes them on in order. A drain with no commit
//! before it and none waiting goes straight out, as without group commit:
//! a ping or a handshake pays nothing.
//!
//! If a sync fails, the log may have lost what the commits wrote: nothing
//! held is ever released, the user is told, and the node is asked to quit,
//! since every later ack would rest on the same disk.

use natter_core::event::Event;
use natter_core::node::{Command, Input, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::Arc;
use tokio::sync::mpsc;

use super::events::EventTx;
use super::node_thread::{ToIo, ToNode};
use crate::store::{CommitCount, GroupCommit, LogSync};

/// Drains held at most: a node thread further ahead of the disk waits for
/// it, as it did when it synced each commit itself. With up to
/// `node_thread::BATCH_OUTPUTS` outputs a drain, this bounds the outputs
/// held.
const HELD_DRAINS: usize = 4;

/// One drain's outputs, held until the log is synced.
struct Held {
    outputs: Vec<Output>,
    events: Vec<Event>,
    /// A commit came before these outputs and after the last drain handed
    /// over: they need a sync. Otherwise they only keep their place behind
    /// drains that do.
    sync: bool,
}

/// The node thread's side of the barrier.
pub(super) struct Barrier {
    commits: CommitCount,
    /// The commit count when the node thread last handed over a drain (or
    /// the barrier started).
    seen: u64,
    /// Drains handed over and not yet released.
    in_flight: Arc<AtomicUsize>,
    /// A sync failed: every later output may rest on what it lost, so all
    /// of them go to the syncing thread, which releases none.
    failed: Arc<AtomicBool>,
    to_syncer: Option<SyncSender<Held>>,
    syncer: Option<std::thread::JoinHandle<()>>,
}

impl Barrier {
    /// Starts the syncing thread. `node` is the node thread's input queue,
    /// for the `Quit` after a failed sync.
    pub(super) fn start(
        group: GroupCommit,
        io: mpsc::UnboundedSender<ToIo>,
        events: EventTx,
        node: Sender<ToNode>,
    ) -> std::io::Result<Barrier> {
        let (to_syncer, held) = std::sync::mpsc::sync_channel(HELD_DRAINS);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicBool::new(false));
        let syncer = Syncer {
            log: group.log,
            held,
            io,
            events,
            node,
            in_flight: Arc::clone(&in_flight),
            failed: Arc::clone(&failed),
        };
        let thread = std::thread::Builder::new()
            .name("natter-sync".into())
            .spawn(move || syncer.run())?;
        Ok(Barrier {
            seen: 0,
            commits: group.commits,
            in_flight,
            failed,
            to_syncer: Some(to_syncer),
            syncer: Some(thread),
        })
    }

    /// Must outputs produced now wait for the syncing thread: a commit since
    /// the last hand-over, drains still held ahead of them, or a failed
    /// sync?
    pub(super) fn must_hold(&self) -> bool {
        self.commits.get() != self.seen
            || self.in_flight.load(Ordering::Acquire) > 0
            || self.failed.load(Ordering::Acquire)
    }

    /// Hands one drain's outputs over. Blocks while [`HELD_DRAINS`] are
    /// held already.
    pub(super) fn hold(&mut self, outputs: Vec<Output>, events: Vec<Event>) {
        let now = self.commits.get();
        let sync = now != self.seen;
        self.seen = now;
        if outputs.is_empty() && events.is_empty() && !sync {
            return;
        }
        let Some(to_syncer) = &self.to_syncer else {
            return;
        };
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let held = Held {
            outputs,
            events,
            sync,
        };
        // Blocks while the queue is full; fails only if the syncing thread
        // is gone, which it is not while we hold its queue.
        if to_syncer.send(held).is_err() {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Barrier {
    /// Releases what is held (syncing first) and ends the syncing thread:
    /// closing its queue ends its loop once the queue is empty.
    fn drop(&mut self) {
        self.to_syncer = None;
        if let Some(thread) = self.syncer.take() {
            let _ = thread.join();
        }
    }
}

struct Syncer {
    log: Box<dyn LogSync>,
    held: Receiver<Held>,
    io: mpsc::UnboundedSender<ToIo>,
    events: EventTx,
    node: Sender<ToNode>,
    in_flight: Arc<AtomicUsize>,
    /// A sync failed: nothing is released any more (shared with the
    /// [`Barrier`], which then hands everything over).
    failed: Arc<AtomicBool>,
}

impl Syncer {
    fn run(mut self) {
        while let Ok(first) = self.held.recv() {
            // Everything that arrived while the last sync ran shares the
            // next one: each was committed before it was handed over.
            let mut drains = vec![first];
            drains.extend(self.held.try_iter());
            let failed = self.failed.load(Ordering::Acquire);
            if !failed && drains.iter().any(|d| d.sync) {
                if let Err(e) = self.log.sync() {
                    self.fail(e);
                }
            }
            let failed = self.failed.load(Ordering::Acquire);
            for drain in drains {
                if !failed {
                    if !drain.outputs.is_empty() {
                        let _ = self.io.send(ToIo::Outputs(drain.outputs));
                    }
                    self.events.push_all(drain.events);
                }
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    fn fail(&mut self, e: std::io::Error) {
        // Set before `in_flight` drops for the drains that failed: a node
        // thread that finds nothing in flight finds the failure.
        self.failed.store(true, Ordering::Release);
        let text = format!(
            "natter stops: the history could not be synced to disk ({e}); \
             what was stored since the last sync may be lost, and nothing that \
             depended on it was sent or shown"
        );
        self.events.send(super::shell_error(text));
        let _ = self.node.send(ToNode::Input(Input::Command(Command::Quit)));
    }
}

#[cfg(test)]
mod tests {
    use super::super::node_thread::{spawn, NodeTx};
    use super::*;
    use natter_core::chat::MemoryStore;
    use natter_core::identity::LocalIdentity;
    use natter_core::node::{Node, NodeConfig};
    use natter_core::rng::Rng;
    use std::sync::mpsc::{channel, Receiver};
    use std::time::{Duration, Instant};

    /// A log whose syncs wait for the test: each `()` sent lets one finish;
    /// a sync also tells the test it started. `fail` makes syncs fail.
    struct GatedLog {
        open: Receiver<()>,
        started: Sender<()>,
        fail: bool,
    }

    impl LogSync for GatedLog {
        fn sync(&mut self) -> std::io::Result<()> {
            let _ = self.started.send(());
            if self.fail {
                return Err(std::io::Error::other("the disk is gone"));
            }
            self.open
                .recv()
                .map_err(|_| std::io::Error::other("test over"))
        }
    }

    struct Harness {
        tx: NodeTx,
        ui: super::super::events::EventRx,
        commits: CommitCount,
        gate: Sender<()>,
        started: Receiver<()>,
        thread: std::thread::JoinHandle<()>,
        rt: tokio::runtime::Runtime,
    }

    fn harness(fail: bool) -> Harness {
        let id = LocalIdentity::from_secrets([3; 32], [4; 32]).unwrap();
        let cfg = NodeConfig {
            discovery: None,
            ..NodeConfig::default()
        };
        let node = Node::new(id, cfg, Box::new(MemoryStore::new()), Rng::new(1), 0, 0);
        let (gate, open) = channel();
        let (started_tx, started) = channel();
        let commits = CommitCount::default();
        let group = GroupCommit {
            commits: commits.clone(),
            log: Box::new(GatedLog {
                open,
                started: started_tx,
                fail,
            }),
        };
        let (events, ui) = crate::shell::event_queue(64);
        let (tx, _from_node, thread) = spawn(node, events, Instant::now(), Some(group)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Harness {
            tx,
            ui,
            commits,
            gate,
            started,
            thread,
            rt,
        }
    }

    impl Harness {
        fn command(&self, command: Command) {
            assert!(self.tx.send(ToNode::Input(Input::Command(command))));
        }

        /// The next event other than the node's own housekeeping, or
        /// `None` if none comes within `wait`.
        fn next_event(&mut self, wait: Duration) -> Option<Event> {
            let ui = &mut self.ui;
            self.rt.block_on(async {
                loop {
                    match tokio::time::timeout(wait, ui.recv()).await {
                        Ok(Some(Event::EventsDropped { .. })) => continue,
                        Ok(other) => return other,
                        Err(_) => return None,
                    }
                }
            })
        }

        fn quit(self) {
            let _ = self.gate.send(());
            self.command(Command::Quit);
            drop(self.gate);
            self.thread.join().unwrap();
        }
    }

    /// What follows a commit is not shown before the log is synced, and
    /// what follows it without a commit of its own keeps its place behind
    /// it; once the sync returns both come, in order.
    #[test]
    fn outputs_after_a_commit_wait_for_the_sync_and_keep_their_order() {
        let mut h = harness(false);
        h.commits.bump();
        h.command(Command::Marker(1));
        h.started
            .recv_timeout(Duration::from_secs(10))
            .expect("no sync started after a commit");
        h.command(Command::Marker(2));
        assert!(
            h.next_event(Duration::from_millis(300)).is_none(),
            "an event left before the commit it follows was synced"
        );
        h.gate.send(()).unwrap();
        // The second marker needs no sync of its own, but may have been
        // handed over after the first sync started and share the next.
        let _ = h.gate.send(());
        assert!(matches!(
            h.next_event(Duration::from_secs(10)),
            Some(Event::Marker(1))
        ));
        assert!(matches!(
            h.next_event(Duration::from_secs(10)),
            Some(Event::Marker(2))
        ));
        h.quit();
    }

    /// Without a commit, and with nothing held, outputs go straight out:
    /// no sync is asked for (the gate is never opened).
    #[test]
    fn outputs_without_a_commit_do_not_wait() {
        let mut h = harness(false);
        h.command(Command::Marker(7));
        assert!(matches!(
            h.next_event(Duration::from_secs(10)),
            Some(Event::Marker(7))
        ));
        assert!(
            h.started.try_recv().is_err(),
            "a sync with nothing committed"
        );
        h.quit();
    }

    /// A failed sync releases nothing it held, nor anything after it (the
    /// node's later outputs may rest on what the sync lost), says so, and
    /// ends the node.
    #[test]
    fn a_failed_sync_shows_nothing_it_held_and_stops_the_node() {
        let mut h = harness(true);
        h.commits.bump();
        h.command(Command::Marker(1));
        match h.next_event(Duration::from_secs(10)) {
            Some(Event::Error { error }) => {
                let text = error.to_string();
                assert!(text.contains("could not be synced"), "{text}");
                assert!(text.contains("the disk is gone"), "{text}");
            }
            other => panic!("expected the sync's error, got {other:?}"),
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !h.thread.is_finished() {
            assert!(
                Instant::now() < deadline,
                "the node went on after a failed sync"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        while let Some(event) = h.next_event(Duration::from_millis(100)) {
            assert!(
                !matches!(event, Event::Marker(_)),
                "an event that followed the unsynced commit was shown"
            );
        }
        h.thread.join().unwrap();
    }
}
