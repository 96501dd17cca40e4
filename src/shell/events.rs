//! The UI's event queue: bounded, never waited on by the node, and woken
//! once per batch.
//!
//! A channel wakes a waiting receiver at every send. The node thread emits
//! events in bursts (two per direct message sent: sent, then delivered), so
//! a UI that keeps up was woken, and the node thread made a `futex` call,
//! for every event: a tenth of the sending node thread's time in the chat
//! benchmark. Here the node thread queues a whole drain's events under one
//! lock and wakes the UI once ([`EventTx::push_all`]); the UI takes
//! everything queued at once and reads it without the lock.
//!
//! Bounded like the channel it replaces: at most `capacity` events wait,
//! counting the ones the UI has taken but not read yet. A UI that falls
//! that far behind misses the newest events and is told how many
//! (`Event::EventsDropped`) as soon as there is room again.

use natter_core::event::Event;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// The most events' room an emptied buffer keeps for reuse.
const KEPT_BUFFER: usize = 1024;

/// Why [`EventRx::try_recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    #[error("no event is waiting")]
    Empty,
    #[error("every sender is gone and every event was read")]
    Disconnected,
}

/// A bounded event queue of `capacity` events.
pub fn event_queue(capacity: usize) -> (EventTx, EventRx) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            events: VecDeque::new(),
            dropped: 0,
            senders: 1,
            receiver: true,
        }),
        ready: Notify::new(),
        unread: AtomicUsize::new(0),
        capacity,
    });
    (
        EventTx {
            shared: Arc::clone(&shared),
        },
        EventRx {
            shared,
            taken: VecDeque::new(),
        },
    )
}

struct Shared {
    state: Mutex<State>,
    /// Holds one wake-up for the receiver if it is not waiting yet.
    ready: Notify,
    /// Events the receiver took from the queue and has not read yet: they
    /// count against the capacity. Set under the lock at each refill,
    /// counted down without it as the receiver reads.
    unread: AtomicUsize,
    capacity: usize,
}

impl Shared {
    /// The state, even if a thread panicked holding the lock: every
    /// change to it is a single step that leaves it consistent.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct State {
    events: VecDeque<Event>,
    /// Events the full queue refused since it last took one.
    dropped: u64,
    senders: usize,
    /// Whether the receiver still exists; without one events are dropped.
    receiver: bool,
}

impl State {
    /// Queues `event`, or counts it as dropped. A notice of what was
    /// dropped goes first, once there is room for it. `held` is how many
    /// events the receiver has taken and not read.
    fn push(&mut self, event: Event, capacity: usize, held: usize) {
        if !self.receiver {
            return;
        }
        let room = |state: &State| state.events.len() + held < capacity;
        if self.dropped > 0 {
            if !room(self) {
                self.dropped += 1;
                return;
            }
            let count = std::mem::take(&mut self.dropped);
            self.events.push_back(Event::EventsDropped { count });
        }
        if room(self) {
            self.events.push_back(event);
        } else {
            self.dropped += 1;
        }
    }
}

/// The sending side; cloned by every part of the shell that reports.
/// Never waits: a full queue drops the event instead.
pub struct EventTx {
    shared: Arc<Shared>,
}

impl EventTx {
    /// Queues one event and wakes the receiver.
    pub fn send(&self, event: Event) {
        self.push_all(std::iter::once(event));
    }

    /// Queues `events` in order under one lock, then wakes the receiver
    /// once (if any were given).
    pub fn push_all(&self, events: impl IntoIterator<Item = Event>) {
        // Most drains carry no event: no lock and no wake-up for those.
        let mut events = events.into_iter().peekable();
        if events.peek().is_none() {
            return;
        }
        {
            let mut state = self.shared.lock();
            // Read under the lock: a refill, which raises it, cannot
            // happen meanwhile; reads only lower it, so this errs on
            // the side of the bound.
            let held = self.shared.unread.load(Ordering::Acquire);
            for event in events {
                state.push(event, self.shared.capacity, held);
            }
        }
        self.shared.ready.notify_one();
    }
}

impl Clone for EventTx {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        EventTx {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for EventTx {
    fn drop(&mut self) {
        let last = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            self.shared.ready.notify_one();
        }
    }
}

/// The UI's side.
pub struct EventRx {
    shared: Arc<Shared>,
    /// Events taken from the queue, read without the lock.
    taken: VecDeque<Event>,
}

impl EventRx {
    /// The next event; `None` once every sender is gone and every event
    /// was read. Cancel-safe: dropping the future loses no event.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            match self.try_recv() {
                Ok(event) => return Some(event),
                Err(TryRecvError::Disconnected) => return None,
                // A wake-up given between this look and the wait is kept
                // by `ready` (one permit), so none is lost.
                Err(TryRecvError::Empty) => self.shared.ready.notified().await,
            }
        }
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Result<Event, TryRecvError> {
        if let Some(event) = self.read_taken() {
            return Ok(event);
        }
        // The emptied buffer goes back to the queue: after a burst, not
        // one the size of the burst.
        if self.taken.capacity() > KEPT_BUFFER {
            self.taken = VecDeque::new();
        }
        let mut state = self.shared.lock();
        // Everything taken before was read: take all that waits now, in
        // one swap that leaves the queue our emptied buffer to fill.
        std::mem::swap(&mut state.events, &mut self.taken);
        self.shared
            .unread
            .store(self.taken.len(), Ordering::Release);
        let disconnected = state.senders == 0;
        drop(state);
        match self.read_taken() {
            Some(event) => Ok(event),
            None if disconnected => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// The next event already taken, counted as read.
    fn read_taken(&mut self) -> Option<Event> {
        let event = self.taken.pop_front()?;
        self.shared.unread.fetch_sub(1, Ordering::Release);
        Some(event)
    }
}

impl Drop for EventRx {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver = false;
        state.events.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn marker(e: Result<Event, TryRecvError>) -> Option<u64> {
        match e {
            Ok(Event::Marker(n)) => Some(n),
            _ => None,
        }
    }

    #[test]
    fn a_ui_that_falls_behind_misses_the_newest_events_and_is_told_how_many() {
        let (tx, mut rx) = event_queue(2);
        tx.push_all((0..5).map(Event::Marker));
        assert_eq!(marker(rx.try_recv()), Some(0));
        assert_eq!(marker(rx.try_recv()), Some(1));
        assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Empty);
        tx.send(Event::Marker(5));
        assert!(matches!(
            rx.try_recv(),
            Ok(Event::EventsDropped { count: 3 })
        ));
        assert_eq!(marker(rx.try_recv()), Some(5));
        tx.send(Event::Marker(6));
        assert_eq!(marker(rx.try_recv()), Some(6), "no notice twice");
    }

    #[test]
    fn events_taken_but_unread_count_against_the_capacity() {
        let (tx, mut rx) = event_queue(3);
        tx.push_all((0..3).map(Event::Marker));
        // The UI takes all three and reads one; two are still unread.
        assert_eq!(marker(rx.try_recv()), Some(0));
        tx.send(Event::Marker(3));
        tx.send(Event::Marker(4));
        assert_eq!(marker(rx.try_recv()), Some(1));
        assert_eq!(marker(rx.try_recv()), Some(2));
        // Everything taken is read: the one that fitted, then a notice of
        // the one that did not.
        assert_eq!(marker(rx.try_recv()), Some(3));
        tx.send(Event::Marker(5));
        assert!(matches!(
            rx.try_recv(),
            Ok(Event::EventsDropped { count: 1 })
        ));
        assert_eq!(marker(rx.try_recv()), Some(5));
    }

    #[test]
    fn the_receiver_reads_every_event_then_learns_the_senders_are_gone() {
        let (tx, mut rx) = event_queue(8);
        let other = tx.clone();
        tx.send(Event::Marker(1));
        drop(tx);
        other.send(Event::Marker(2));
        drop(other);
        assert_eq!(marker(rx.try_recv()), Some(1));
        assert_eq!(marker(rx.try_recv()), Some(2));
        assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Disconnected);
    }

    #[test]
    fn without_a_receiver_events_are_not_kept() {
        let (tx, rx) = event_queue(8);
        drop(rx);
        tx.push_all((0..100).map(Event::Marker));
        assert!(tx.shared.lock().events.is_empty());
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_batch_from_another_thread() {
        let (tx, mut rx) = event_queue(1024);
        let sender = std::thread::spawn(move || {
            for batch in 0..100u64 {
                tx.push_all((0..10).map(|i| Event::Marker(batch * 10 + i)));
                std::thread::sleep(Duration::from_micros(50));
            }
        });
        let mut next = 0;
        while let Some(event) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a wake-up was lost")
        {
            assert!(matches!(event, Event::Marker(n) if n == next), "in order");
            next += 1;
        }
        assert_eq!(next, 1000, "every event, then the end");
        sender.join().unwrap();
    }
}
