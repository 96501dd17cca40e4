//! Chat cores driven against each other by a tiny in-memory router: no
//! sockets, no clock, every run the same.

use std::collections::{BTreeSet, VecDeque};

use super::*;
use crate::chat::store::PeerRecord;
use crate::wire::{RoomChange, RoomControl, SealedPost};

/// A plausible wall clock to start from.
const T0: u64 = 1_700_000_000_000;

fn identity(n: u8) -> LocalIdentity {
    LocalIdentity::from_secrets([n; 32], [n.wrapping_add(100); 32]).unwrap()
}

struct Node {
    me: LocalIdentity,
    chat: Chat,
    events: Vec<ChatEvent>,
    rejected: Vec<Violation>,
}

/// Nodes, the links between them and the frames in flight.
struct Net {
    nodes: Vec<Node>,
    links: BTreeSet<(usize, usize)>,
    queue: VecDeque<(usize, usize, Frame)>,
    now: u64,
    /// Every frame handed to a node, as (from, to, frame).
    delivered: Vec<(usize, usize, Frame)>,
}

impl Net {
    fn new(n: u8) -> Net {
        let nodes = (1..=n)
            .map(|i| {
                let me = identity(i);
                let mut chat = Chat::new(Box::new(MemoryStore::new()), me.identity_key());
                chat.set_own_keys(&me).unwrap();
                Node {
                    me,
                    chat,
                    events: Vec::new(),
                    rejected: Vec::new(),
                }
            })
            .collect();
        Net {
            nodes,
            links: BTreeSet::new(),
            queue: VecDeque::new(),
            now: T0,
            delivered: Vec::new(),
        }
    }

    fn key(&self, i: usize) -> IdentityKey {
        self.nodes[i].me.identity_key()
    }

    fn index(&self, key: IdentityKey) -> usize {
        self.nodes
            .iter()
            .position(|n| n.me.identity_key() == key)
            .unwrap()
    }

    fn chat(&self, i: usize) -> &Chat {
        &self.nodes[i].chat
    }

    /// Both learn of each other (as discovery or a past link would).
    fn meet(&mut self, a: usize, b: usize) {
        for (x, y) in [(a, b), (b, a)] {
            let keys = *self.nodes[y].me.bound_keys();
            let now = self.now;
            self.nodes[x]
                .chat
                .peer_seen(now, &keys, &format!("node{y}"), None)
                .unwrap();
        }
    }

    fn meet_all(&mut self) {
        for a in 0..self.nodes.len() {
            for b in a + 1..self.nodes.len() {
                self.meet(a, b);
            }
        }
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        self.links.contains(&(a.min(b), a.max(b)))
    }

    fn connected(&self, i: usize) -> Vec<IdentityKey> {
        (0..self.nodes.len())
            .filter(|&j| self.linked(i, j))
            .map(|j| self.key(j))
            .collect()
    }

    fn link_up(&mut self, a: usize, b: usize) {
        self.links.insert((a.min(b), a.max(b)));
        for (x, y) in [(a, b), (b, a)] {
            let peer = self.key(y);
            let now = self.now;
            for f in self.nodes[x].chat.on_link_up(now, peer).unwrap() {
                self.queue.push_back((x, y, f));
            }
        }
    }

    fn link_down(&mut self, a: usize, b: usize) {
        self.links.remove(&(a.min(b), a.max(b)));
        let (ka, kb) = (self.key(a), self.key(b));
        self.nodes[a].chat.on_link_down(kb);
        self.nodes[b].chat.on_link_down(ka);
        self.queue
            .retain(|(f, t, _)| !((*f, *t) == (a, b) || (*f, *t) == (b, a)));
    }

    fn post(&mut self, a: usize, text: &str) -> MessageView {
        let connected = self.connected(a);
        let node = &mut self.nodes[a];
        let (view, frames) = node
            .chat
            .post_public(self.now, &node.me, text, &connected)
            .unwrap();
        for (peer, f) in frames {
            let to = self.index(peer);
            self.queue.push_back((a, to, f));
        }
        view
    }

    fn direct(&mut self, a: usize, b: usize, text: &str) -> MessageView {
        let (to, linked) = (self.key(b), self.linked(a, b));
        let node = &mut self.nodes[a];
        let (view, frame) = node
            .chat
            .send_direct(self.now, &node.me, to, text, linked)
            .unwrap();
        assert_eq!(frame.is_some(), linked);
        if let Some(f) = frame {
            self.queue.push_back((a, b, f));
        }
        view
    }

    /// Delivers frames until none is left: each round hands every link's
    /// queued frames to the receiver in one `on_frames` call. Frames on a
    /// link that is down are lost.
    fn pump(&mut self) {
        for _round in 0..10_000 {
            if self.queue.is_empty() {
                return;
            }
            self.now += 1;
            let mut groups: Vec<((usize, usize), Vec<Frame>)> = Vec::new();
            for (from, to, f) in self.queue.drain(..) {
                match groups.iter_mut().find(|(k, _)| *k == (from, to)) {
                    Some((_, fs)) => fs.push(f),
                    None => groups.push(((from, to), vec![f])),
                }
            }
            for ((from, to), frames) in groups {
                if !self.linked(from, to) {
                    continue;
                }
                for f in &frames {
                    self.delivered.push((from, to, f.clone()));
                }
                let (fk, connected, now) = (self.key(from), self.connected(to), self.now);
                let actions = self.nodes[to]
                    .chat
                    .on_frames(now, fk, frames, &connected)
                    .unwrap();
                for (peer, f) in actions.send {
                    let dest = self.index(peer);
                    self.queue.push_back((to, dest, f));
                }
                self.nodes[to].events.extend(actions.events);
                self.nodes[to].rejected.extend(actions.rejected);
            }
        }
        panic!("frames still in flight after 10000 rounds");
    }

    fn received(&self, i: usize) -> Vec<&MessageView> {
        self.nodes[i]
            .events
            .iter()
            .filter_map(|e| match e {
                ChatEvent::Received(v) => Some(v),
                _ => None,
            })
            .collect()
    }

    fn deliveries(&self, i: usize) -> Vec<(MessageId, IdentityKey)> {
        self.nodes[i]
            .events
            .iter()
            .filter_map(|e| match e {
                ChatEvent::Delivered { id, peer } => Some((*id, *peer)),
                _ => None,
            })
            .collect()
    }

    /// Frames delivered from `from` to `to` matching `pred`.
    fn count_delivered(&self, from: usize, to: usize, pred: impl Fn(&Frame) -> bool) -> usize {
        self.delivered
            .iter()
            .filter(|(f, t, fr)| (*f, *t) == (from, to) && pred(fr))
            .count()
    }
}

fn texts(views: &[&MessageView]) -> Vec<String> {
    views.iter().map(|v| v.text.clone()).collect()
}

fn signed(author: &LocalIdentity, n: u8, ts: u64, text: &str) -> PublicMessage {
    sign_public(author, [n; 16], ts, text.to_owned())
}

fn is_ack(f: &Frame) -> bool {
    matches!(f, Frame::Ack(_))
}

fn acks_in(actions: &Actions) -> Vec<MessageId> {
    actions
        .send
        .iter()
        .filter_map(|(_, f)| match f {
            Frame::Ack(ids) => Some(ids.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn lone_chat(n: u8) -> (LocalIdentity, Chat) {
    let me = identity(n);
    let chat = Chat::new(Box::new(MemoryStore::new()), me.identity_key());
    (me, chat)
}

// ------------------------------------------------------------- delivery

#[test]
fn public_message_is_delivered_acked_and_marked() {
    let mut net = Net::new(2);
    net.meet(0, 1);
    net.link_up(0, 1);
    net.pump();
    let sent = net.post(0, "hello room");
    assert!(sent.outgoing && !sent.delivered);
    net.pump();

    let got = net.received(1);
    assert_eq!(texts(&got), ["hello room"]);
    assert_eq!(got[0].author, net.key(0));
    assert_eq!(got[0].conversation, Conversation::lobby());
    assert!(!got[0].outgoing);
    assert_eq!(got[0].id, sent.id);
    assert_eq!(net.deliveries(0), [(sent.id, net.key(1))]);

    let history = net.chat(0).history(Conversation::lobby(), 10).unwrap();
    assert_eq!(history.len(), 1);
    assert!(history[0].delivered);
    assert!(net
        .chat(0)
        .store()
        .pending_peers(&sent.id)
        .unwrap()
        .is_empty());
    let theirs = net.chat(1).history(Conversation::lobby(), 10).unwrap();
    assert_eq!(theirs[0].text, "hello room");
    assert!(!theirs[0].outgoing && !theirs[0].delivered);
}

#[test]
fn public_message_is_queued_for_every_known_peer() {
    let mut net = Net::new(3);
    net.meet_all();
    net.link_up(0, 1);
    net.pump();
    let sent = net.post(0, "to all");
    net.pump();
    // Node 2 is known but offline: its row waits.
    assert_eq!(
        net.chat(0).store().pending_peers(&sent.id).unwrap(),
        [net.key(2).0]
    );
    net.link_up(0, 2);
    net.pump();
    assert_eq!(texts(&net.received(2)), ["to all"]);
    assert!(net
        .chat(0)
        .store()
        .pending_peers(&sent.id)
        .unwrap()
        .is_empty());
    assert_eq!(net.deliveries(0).len(), 2);
}

#[test]
fn direct_to_offline_peer_is_queued_and_delivered_on_link_up() {
    let mut net = Net::new(2);
    net.meet(0, 1);
    let sent = net.direct(0, 1, "are you there?");
    net.pump();
    assert!(net.received(1).is_empty());
    assert_eq!(
        net.chat(0).store().pending_peers(&sent.id).unwrap(),
        [net.key(1).0]
    );

    net.link_up(0, 1);
    net.pump();
    let got = net.received(1);
    assert_eq!(texts(&got), ["are you there?"]);
    assert_eq!(got[0].author, net.key(0));
    assert_eq!(got[0].conversation, Conversation::Direct(net.key(0)));
    assert_eq!(net.deliveries(0), [(sent.id, net.key(1))]);
    let mine = net
        .chat(0)
        .history(Conversation::Direct(net.key(1)), 10)
        .unwrap();
    assert!(mine[0].outgoing && mine[0].delivered);
    // Only the other conversation of node 1 holds it.
    assert!(net
        .chat(1)
        .history(Conversation::lobby(), 10)
        .unwrap()
        .is_empty());
}

#[test]
fn unacked_message_is_resent_after_the_ack_is_lost() {
    let mut net = Net::new(2);
    net.meet(0, 1);
    net.link_up(0, 1);
    net.pump();
    let sent = net.direct(0, 1, "once");
    // Deliver the message, then lose the ack with the link.
    let (from, to, f) = net.queue.pop_front().unwrap();
    let (now, fk) = (net.now, net.key(from));
    let actions = net.nodes[to].chat.on_frame(now, fk, f, &[fk]).unwrap();
    assert_eq!(acks_in(&actions), [sent.id]);
    net.nodes[1].events.extend(actions.events);
    net.link_down(0, 1);

    net.link_up(0, 1);
    net.pump();
    assert_eq!(net.received(1).len(), 1, "the resend is a duplicate");
    assert_eq!(
        net.count_delivered(0, 1, |f| matches!(f, Frame::Direct(_))),
        1
    );
    assert_eq!(net.deliveries(0), [(sent.id, net.key(1))]);
    assert_eq!(net.chat(1).stats().duplicates, 1);
}

#[test]
fn outbox_is_resent_in_pages() {
    let total = RESEND_PAGE + 234;
    let mut net = Net::new(2);
    net.meet(0, 1);
    for i in 0..total {
        net.direct(0, 1, &format!("m{i}"));
        net.now += 1;
    }
    net.link_up(0, 1);
    // The first answer is one page and a sync request.
    assert_eq!(
        net.queue.iter().filter(|(f, ..)| *f == 0).count(),
        RESEND_PAGE + 1
    );
    net.pump();
    let got = net.received(1);
    assert_eq!(got.len(), total);
    assert_eq!(got[0].text, "m0");
    assert_eq!(got[total - 1].text, format!("m{}", total - 1));
    assert_eq!(net.deliveries(0).len(), total);
    assert!(net.chat(0).store().outbox_peers().unwrap().is_empty());
    assert_eq!(
        net.count_delivered(0, 1, |f| matches!(f, Frame::Direct(_))),
        total
    );
}

#[test]
fn outbox_rows_that_cannot_be_sent_stay_put() {
    let (me, mut chat) = lone_chat(1);
    let (x, y) = (identity(2).identity_key(), identity(3).identity_key());
    let row = |n: u8, conversation, signature| StoredMessage {
        id: [n; 16],
        conversation,
        author: me.identity_key().0,
        timestamp_ms: T0,
        text: "odd".into(),
        signature,
        outgoing: true,
        received_ms: T0,
        wire: None,
    };
    let store = chat.store_mut();
    // A direct message to x queued for y, and an unsigned public message.
    store
        .insert_outgoing(&row(1, ConversationKey::Direct(x.0), None), &[y.0])
        .unwrap();
    store
        .insert_outgoing(&row(2, ConversationKey::Public, None), &[y.0])
        .unwrap();
    let frames = chat.on_link_up(T0, y).unwrap();
    assert!(
        matches!(frames.as_slice(), [Frame::SyncRequest(_)]),
        "{frames:?}"
    );
    assert_eq!(chat.store().outbox_for_peer(&y.0, 10).unwrap().len(), 2);
}

// ------------------------------------------------------------ duplicates

#[test]
fn same_frame_twice_is_received_once_and_acked_twice() {
    let (a, _) = lone_chat(1);
    let (_, mut b) = lone_chat(2);
    let m = signed(&a, 7, T0, "echo");
    let frame = Frame::Public(Box::new(m.clone()));
    let first = b
        .on_frame(T0, a.identity_key(), frame.clone(), &[])
        .unwrap();
    let second = b
        .on_frame(T0, a.identity_key(), frame.clone(), &[])
        .unwrap();
    assert_eq!(first.events.len(), 1);
    assert!(second.events.is_empty());
    assert_eq!(acks_in(&first), [m.id]);
    assert_eq!(acks_in(&second), [m.id]);

    // Twice in one batch: one message, one ack.
    let (_, mut c) = lone_chat(3);
    let both = c
        .on_frames(T0, a.identity_key(), vec![frame.clone(), frame], &[])
        .unwrap();
    assert_eq!(both.events.len(), 1);
    assert_eq!(acks_in(&both), [m.id]);
    assert_eq!(c.store().message_count().unwrap(), 1);

    let direct = Frame::Direct(DirectMessage {
        id: [9; 16],
        timestamp_ms: T0,
        text: "dm".into(),
    });
    let both = c
        .on_frames(T0, a.identity_key(), vec![direct.clone(), direct], &[])
        .unwrap();
    assert_eq!(both.events.len(), 1);
    assert_eq!(acks_in(&both), [[9; 16]]);
    assert_eq!(c.stats().duplicates, 2, "one public, one direct");
    assert_eq!(b.stats().duplicates, 1);
}

#[test]
fn duplicates_are_dropped_across_restarts() {
    let a = identity(1);
    let b = identity(2);
    let public = Frame::Public(Box::new(signed(&a, 1, T0, "before the restart")));
    let direct = Frame::Direct(DirectMessage {
        id: [2; 16],
        timestamp_ms: T0,
        text: "private".into(),
    });
    let store = {
        let mut chat = Chat::new(Box::new(MemoryStore::new()), b.identity_key());
        let actions = chat
            .on_frames(
                T0,
                a.identity_key(),
                vec![public.clone(), direct.clone()],
                &[],
            )
            .unwrap();
        assert_eq!(actions.events.len(), 2);
        chat.into_store()
    };
    let mut chat = Chat::new(store, b.identity_key());
    let actions = chat
        .on_frames(T0 + 5, a.identity_key(), vec![public, direct], &[])
        .unwrap();
    assert!(actions.events.is_empty(), "{:?}", actions.events);
    assert_eq!(acks_in(&actions), [[1; 16], [2; 16]]);
    assert_eq!(chat.store().message_count().unwrap(), 2);
}

// -------------------------------------------------------- relay, catch-up

#[test]
fn public_message_is_relayed_to_others_but_not_back() {
    // 0 — 1 — 2 and 1 — 3; node 0 is not linked to 2 or 3.
    let mut net = Net::new(4);
    net.meet_all();
    net.link_up(0, 1);
    net.link_up(1, 2);
    net.link_up(1, 3);
    net.pump();
    let sent = net.post(0, "spread the word");
    net.pump();
    for i in 1..4 {
        assert_eq!(texts(&net.received(i)), ["spread the word"], "node {i}");
        assert_eq!(net.received(i)[0].author, net.key(0));
    }
    let is_public = |f: &Frame| matches!(f, Frame::RoomPost(_));
    assert_eq!(net.count_delivered(1, 2, is_public), 1);
    assert_eq!(net.count_delivered(1, 3, is_public), 1);
    assert_eq!(
        net.count_delivered(1, 0, is_public),
        0,
        "never back to the author"
    );
    assert_eq!(
        net.count_delivered(2, 1, is_public),
        0,
        "never back to the relay"
    );
    assert_eq!(net.chat(1).stats().relayed, 2);
    // Relayed copies were acked to the relay, which had nothing waiting.
    assert_eq!(net.count_delivered(2, 1, is_ack), 1);
    assert!(net.deliveries(1).is_empty());
    // The author still waits for 2 and 3 to ack it themselves.
    assert_eq!(
        net.chat(0).store().pending_peers(&sent.id).unwrap().len(),
        2
    );
}

#[test]
fn relay_skips_the_author_even_when_linked() {
    // B hears A's message from R while B also has a link to A.
    let a = identity(1);
    let relay = identity(3).identity_key();
    let other = identity(4).identity_key();
    let (b, mut chat) = lone_chat(2);
    let m = signed(&a, 1, T0, "via R");
    let connected = [relay, a.identity_key(), b.identity_key(), other];
    let actions = chat
        .on_frame(T0, relay, Frame::Public(Box::new(m.clone())), &connected)
        .unwrap();
    assert_eq!(
        actions.send,
        [
            (other, Frame::Public(Box::new(m.clone()))),
            (relay, Frame::Ack(vec![m.id]))
        ]
    );
}

#[test]
fn relay_to_a_peer_that_already_has_it_stops_there() {
    // A triangle: every node gets the message twice at most and shows it once.
    let mut net = Net::new(3);
    net.meet_all();
    net.link_up(0, 1);
    net.link_up(1, 2);
    net.link_up(0, 2);
    net.pump();
    net.post(0, "triangle");
    net.pump();
    for i in 1..3 {
        assert_eq!(net.received(i).len(), 1);
    }
    assert!(net.chat(1).stats().relayed + net.chat(2).stats().relayed <= 2);
    assert_eq!(net.deliveries(0).len(), 2);
}

#[test]
fn catch_up_through_a_third_peer_verifies_signatures() {
    let mut net = Net::new(3);
    net.meet_all();
    net.link_up(0, 1);
    net.link_up(1, 2);
    net.pump();
    net.link_down(1, 2);
    let mut sent = Vec::new();
    for i in 0..3 {
        net.now += 1_000;
        sent.push(net.post(0, &format!("while you were out {i}")));
        net.pump();
    }
    assert!(net.received(2).is_empty());
    assert_eq!(net.received(1).len(), 3);

    // 2 comes back, linked to 1 only.
    net.now += 60_000;
    net.link_up(1, 2);
    net.pump();
    let got = net.received(2);
    assert_eq!(
        texts(&got),
        [
            "while you were out 0",
            "while you were out 1",
            "while you were out 2"
        ]
    );
    for (v, s) in got.iter().zip(&sent) {
        assert_eq!(v.author, net.key(0));
        assert_eq!(v.id, s.id);
        assert_eq!(v.timestamp_ms, s.timestamp_ms);
    }
    // Every message reached 2 through a frame 2 checked: stored with the
    // author's signature, which verifies.
    for s in &sent {
        let stored = net
            .chat(2)
            .store()
            .get_message(&s.author.0, &s.id)
            .unwrap()
            .unwrap();
        post_from_stored(stored).unwrap().verify().unwrap();
    }
    assert!(net.nodes[2].rejected.is_empty());
    // Node 0 never heard from 2: its outbox still waits for 2's own ack.
    for s in &sent {
        assert_eq!(
            net.chat(0).store().pending_peers(&s.id).unwrap(),
            [net.key(2).0]
        );
    }
    net.link_up(0, 2);
    net.pump();
    assert_eq!(
        net.received(2).len(),
        3,
        "the author's resends are duplicates"
    );
    assert!(net.chat(0).store().outbox_peers().unwrap().is_empty());
}

#[test]
fn sync_request_since_follows_the_newest_public_message() {
    let (a, mut chat) = lone_chat(1);
    let peer = identity(2).identity_key();
    let since = |frames: Vec<Frame>| match frames.last() {
        Some(Frame::SyncRequest(r)) => r.since_ms,
        other => panic!("no sync request: {other:?}"),
    };
    let now = T0 + 100 * SYNC_WINDOW_MS;
    // Empty history: the whole window.
    assert_eq!(
        since(chat.on_link_up(now, peer).unwrap()),
        now - SYNC_WINDOW_MS
    );

    // A recent message: resume from it, minus the slack.
    let recent = signed(&a, 1, now - 3_600_000, "an hour ago");
    chat.on_frame(now, peer, Frame::Public(Box::new(recent)), &[])
        .unwrap();
    assert_eq!(
        since(chat.on_link_up(now, peer).unwrap()),
        now - 3_600_000 - SYNC_SLACK_MS
    );

    // A message from an author whose clock runs ahead changes nothing.
    let future = signed(&a, 2, now + SYNC_WINDOW_MS, "from the future");
    chat.on_frame(now, peer, Frame::Public(Box::new(future)), &[])
        .unwrap();
    assert_eq!(
        since(chat.on_link_up(now, peer).unwrap()),
        now - 3_600_000 - SYNC_SLACK_MS
    );

    // Long offline: never more than the window back.
    let later = now + 30 * SYNC_WINDOW_MS;
    assert_eq!(
        since(chat.on_link_up(later, peer).unwrap()),
        later - SYNC_WINDOW_MS
    );
}

/// A chat holding `n` public messages by `author`, one second apart from
/// `start`, each `len` bytes of text.
fn chat_with_public(author: &LocalIdentity, n: usize, start: u64, len: usize) -> Chat {
    let (_, mut chat) = lone_chat(9);
    let frames = (0..n)
        .map(|i| {
            let mut text = format!("{i:05} ");
            text.push_str(&"x".repeat(len.saturating_sub(text.len())));
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            Frame::Public(Box::new(sign_public(
                author,
                id,
                start + 1_000 * i as u64,
                text,
            )))
        })
        .collect();
    let actions = chat
        .on_frames(start, author.identity_key(), frames, &[])
        .unwrap();
    assert!(actions.rejected.is_empty());
    chat
}

fn sync_answer(chat: &mut Chat, now: u64, since_ms: u64) -> Vec<PublicMessage> {
    let asker = identity(8).identity_key();
    let actions = chat
        .on_frame(
            now,
            asker,
            Frame::SyncRequest(SyncRequest { since_ms }),
            &[],
        )
        .unwrap();
    actions
        .send
        .into_iter()
        .map(|(to, f)| {
            assert_eq!(to, asker);
            match f {
                Frame::Public(m) => *m,
                other => panic!("unexpected {other:?}"),
            }
        })
        .collect()
}

#[test]
fn sync_answer_respects_count_bytes_and_window() {
    let a = identity(1);
    let start = T0;
    let mut chat = chat_with_public(&a, SYNC_MAX_MESSAGES + 100, start, 10);
    let now = start + 3_600_000;

    let page = sync_answer(&mut chat, now, 0);
    assert_eq!(page.len(), SYNC_MAX_MESSAGES);
    assert!(page
        .windows(2)
        .all(|w| w[0].timestamp_ms < w[1].timestamp_ms));
    assert_eq!(page[0].timestamp_ms, start);
    page.iter().for_each(|m| verify_public(m).unwrap());

    let tail = sync_answer(&mut chat, now, start + 1_000 * SYNC_MAX_MESSAGES as u64);
    assert_eq!(tail.len(), 100);

    // The responder's window: nothing older than now − SYNC_WINDOW_MS.
    let much_later = start + SYNC_WINDOW_MS + 1_000 * 550;
    let windowed = sync_answer(&mut chat, much_later, 0);
    assert_eq!(windowed.len(), 50);
    assert!(windowed
        .iter()
        .all(|m| m.timestamp_ms >= much_later - SYNC_WINDOW_MS));
    assert!(sync_answer(&mut chat, now, u64::MAX).is_empty());

    // Large texts: the byte limit cuts first.
    let mut big = chat_with_public(&a, 100, start, MAX_TEXT_LEN);
    let page = sync_answer(&mut big, now, 0);
    let bytes: usize = page.iter().map(|m| m.text.len()).sum();
    assert_eq!(page.len(), SYNC_MAX_BYTES / MAX_TEXT_LEN);
    assert!(bytes <= SYNC_MAX_BYTES);
}

#[test]
fn catch_up_continues_past_one_page() {
    let mut net = Net::new(3);
    net.meet_all();
    let total = 2 * SYNC_MAX_MESSAGES + 17;
    let frames: Vec<Frame> = (0..total)
        .map(|i| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            Frame::Public(Box::new(sign_public(
                &net.nodes[0].me,
                id,
                T0 + 1_000 * i as u64,
                format!("backlog {i}"),
            )))
        })
        .collect();
    let (k0, now) = (net.key(0), T0 + 1_000 * total as u64);
    net.now = now;
    net.nodes[1].chat.on_frames(now, k0, frames, &[]).unwrap();

    net.link_up(1, 2);
    net.pump();
    let got = net.received(2);
    assert_eq!(got.len(), total);
    assert_eq!(got[total - 1].text, format!("backlog {}", total - 1));
    let requests = net.count_delivered(2, 1, |f| matches!(f, Frame::SyncRequest(_)));
    assert_eq!(requests, 3, "one per page");
}

// ------------------------------------------------------ rejected frames

#[test]
fn relayed_public_message_with_a_broken_signature_is_rejected() {
    let a = identity(1);
    let relay = identity(3).identity_key();
    let good = signed(&a, 1, T0, "authentic");
    let mut tampered_text = good.clone();
    tampered_text.text = "authentiC".into();
    let mut tampered_sig = good.clone();
    tampered_sig.signature.0[5] ^= 0x10;
    let mut tampered_time = good.clone();
    tampered_time.timestamp_ms += 1;
    let mut other_author = good.clone();
    other_author.author = relay;

    for bad in [tampered_text, tampered_sig, tampered_time, other_author] {
        let (_, mut b) = lone_chat(2);
        let actions = b
            .on_frame(
                T0,
                relay,
                Frame::Public(Box::new(bad.clone())),
                &[relay, a.identity_key()],
            )
            .unwrap();
        assert_eq!(
            actions.rejected,
            [Violation::BadSignature {
                id: bad.id,
                author: bad.author
            }]
        );
        assert!(actions.send.is_empty(), "neither acked nor relayed");
        assert!(actions.events.is_empty());
        assert_eq!(b.store().message_count().unwrap(), 0);
        assert_eq!(b.stats().rejected, 1);
    }

    // The good one in the same batch as a bad one still gets through.
    let (_, mut b) = lone_chat(2);
    let mut bad = signed(&a, 2, T0, "second");
    bad.signature.0[0] ^= 1;
    let actions = b
        .on_frames(
            T0,
            relay,
            vec![
                Frame::Public(Box::new(bad)),
                Frame::Public(Box::new(good.clone())),
            ],
            &[relay],
        )
        .unwrap();
    assert_eq!(actions.rejected.len(), 1);
    assert_eq!(acks_in(&actions), [good.id]);
    assert_eq!(actions.events.len(), 1);
}

#[test]
fn a_public_frame_cannot_claim_someone_elses_authorship() {
    let a = identity(1);
    let mallory = identity(3);
    // Mallory signs with her own key but names A as the author.
    let mut forged = sign_public(&mallory, [4; 16], T0, "I am A".into());
    forged.author = a.identity_key();
    let (_, mut b) = lone_chat(2);
    let actions = b
        .on_frame(
            T0,
            mallory.identity_key(),
            Frame::Public(Box::new(forged)),
            &[],
        )
        .unwrap();
    assert_eq!(actions.rejected.len(), 1);
    assert_eq!(b.store().message_count().unwrap(), 0);
}

#[test]
fn a_direct_frame_is_always_from_the_link_peer() {
    let mallory = identity(3);
    let (_, mut b) = lone_chat(2);
    let actions = b
        .on_frame(
            T0,
            mallory.identity_key(),
            Frame::Direct(DirectMessage {
                id: [6; 16],
                timestamp_ms: T0,
                text: "hi, it's your bank".into(),
            }),
            &[],
        )
        .unwrap();
    let Some(ChatEvent::Received(v)) = actions.events.first() else {
        panic!("{actions:?}")
    };
    assert_eq!(v.author, mallory.identity_key());
    assert_eq!(v.conversation, Conversation::Direct(mallory.identity_key()));
    let stored = b
        .store()
        .get_message(&mallory.identity_key().0, &[6; 16])
        .unwrap()
        .unwrap();
    assert_eq!(stored.author, mallory.identity_key().0);
    assert_eq!(
        stored.conversation,
        ConversationKey::Direct(mallory.identity_key().0)
    );
}

#[test]
fn oversize_and_blank_text_is_refused_on_send_and_receive() {
    let (a, mut chat) = lone_chat(1);
    let peer = identity(2).identity_key();
    let long = "é".repeat(MAX_TEXT_LEN / 2 + 1);
    assert!(matches!(
        chat.post_public(T0, &a, &long, &[peer]),
        Err(ChatError::TextTooLong { len, max }) if len == MAX_TEXT_LEN + 2 && max == MAX_TEXT_LEN
    ));
    assert!(matches!(
        chat.send_direct(T0, &a, peer, &long, true),
        Err(ChatError::TextTooLong { .. })
    ));
    for blank in ["", "   ", "\n\t "] {
        assert!(matches!(
            chat.post_public(T0, &a, blank, &[peer]),
            Err(ChatError::EmptyText)
        ));
        assert!(matches!(
            chat.send_direct(T0, &a, peer, blank, true),
            Err(ChatError::EmptyText)
        ));
    }
    assert_eq!(chat.store().message_count().unwrap(), 0);
    // Exactly at the limit is fine.
    chat.send_direct(T0, &a, peer, &"x".repeat(MAX_TEXT_LEN), false)
        .unwrap();

    let (_, mut b) = lone_chat(3);
    let too_long = "y".repeat(MAX_TEXT_LEN + 1);
    let frames = vec![
        Frame::Direct(DirectMessage {
            id: [1; 16],
            timestamp_ms: T0,
            text: too_long.clone(),
        }),
        // Signed, but too long all the same.
        Frame::Public(Box::new(sign_public(&a, [2; 16], T0, too_long))),
        Frame::Direct(DirectMessage {
            id: [3; 16],
            timestamp_ms: T0,
            text: " \n".into(),
        }),
        Frame::Public(Box::new(sign_public(&a, [4; 16], T0, "\t".into()))),
        Frame::Direct(DirectMessage {
            id: [5; 16],
            timestamp_ms: u64::MAX,
            text: "from the end of time".into(),
        }),
    ];
    let actions = b.on_frames(T0, a.identity_key(), frames, &[]).unwrap();
    let too_long = || {
        Violation::Malformed(WireError::TooLong {
            what: "text",
            len: MAX_TEXT_LEN + 1,
            max: MAX_TEXT_LEN,
        })
    };
    assert_eq!(
        actions.rejected,
        [
            too_long(),
            too_long(),
            Violation::BlankText { id: [3; 16] },
            Violation::BlankText { id: [4; 16] },
            Violation::TimestampOutOfRange {
                id: [5; 16],
                timestamp_ms: u64::MAX
            },
        ]
    );
    assert!(actions.send.is_empty() && actions.events.is_empty());
    assert_eq!(b.store().message_count().unwrap(), 0);
    assert_eq!(b.stats().rejected, 5);
}

#[test]
fn malformed_acks_are_rejected_and_unknown_ids_are_harmless() {
    let (me, mut chat) = lone_chat(1);
    let peer = identity(2).identity_key();
    let sent = chat.send_direct(T0, &me, peer, "pending", false).unwrap().0;

    let actions = chat
        .on_frame(T0, peer, Frame::Ack(vec![[0xee; 16], [0xdd; 16]]), &[peer])
        .unwrap();
    assert_eq!(actions, Actions::default());
    // Someone else acking our message to `peer` changes nothing either.
    let other = identity(3).identity_key();
    let actions = chat
        .on_frame(T0, other, Frame::Ack(vec![sent.id]), &[peer, other])
        .unwrap();
    assert_eq!(actions, Actions::default());
    assert_eq!(chat.store().pending_peers(&sent.id).unwrap(), [peer.0]);

    let actions = chat.on_frame(T0, peer, Frame::Ack(vec![]), &[]).unwrap();
    assert_eq!(
        actions.rejected,
        [Violation::Malformed(WireError::Empty("ack"))]
    );
    let actions = chat
        .on_frame(T0, peer, Frame::Ack(vec![sent.id; MAX_ACK_IDS + 1]), &[])
        .unwrap();
    assert!(matches!(
        actions.rejected.as_slice(),
        [Violation::Malformed(WireError::TooLong { .. })]
    ));
    assert_eq!(chat.store().pending_peers(&sent.id).unwrap(), [peer.0]);

    // The real ack, twice: one delivery.
    let actions = chat
        .on_frame(T0, peer, Frame::Ack(vec![sent.id]), &[])
        .unwrap();
    assert_eq!(actions.events, [ChatEvent::Delivered { id: sent.id, peer }]);
    let again = chat
        .on_frame(T0, peer, Frame::Ack(vec![sent.id]), &[])
        .unwrap();
    assert!(again.events.is_empty());
}

#[test]
fn acks_are_split_at_the_frame_limit() {
    let a = identity(1);
    let mut chat = chat_with_public(&a, 0, T0, 0);
    let frames: Vec<Frame> = (0..MAX_ACK_IDS + 5)
        .map(|i| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            Frame::Direct(DirectMessage {
                id,
                timestamp_ms: T0,
                text: format!("{i}"),
            })
        })
        .collect();
    let actions = chat.on_frames(T0, a.identity_key(), frames, &[]).unwrap();
    let sizes: Vec<usize> = actions
        .send
        .iter()
        .map(|(_, f)| match f {
            Frame::Ack(ids) => ids.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes, [MAX_ACK_IDS, 5]);
    for (_, f) in &actions.send {
        f.validate().unwrap();
    }
}

#[test]
fn our_own_public_message_coming_back_is_restored_as_outgoing() {
    let (a, mut chat) = lone_chat(1);
    let peer = identity(2).identity_key();
    let mine = signed(&a, 3, T0, "I wrote this before losing my disk");
    let actions = chat
        .on_frame(T0, peer, Frame::Public(Box::new(mine.clone())), &[peer])
        .unwrap();
    let Some(ChatEvent::Received(v)) = actions.events.first() else {
        panic!("{actions:?}")
    };
    assert!(v.outgoing);
    assert_eq!(v.author, a.identity_key());
    assert_eq!(acks_in(&actions), [mine.id]);
}

// ------------------------------------------------------------ local API

#[test]
fn local_requests_that_make_no_sense_are_refused() {
    let (a, mut chat) = lone_chat(1);
    let stranger = identity(2);
    assert!(matches!(
        chat.post_public(T0, &stranger, "not me", &[]),
        Err(ChatError::WrongIdentity)
    ));
    assert!(matches!(
        chat.send_direct(T0, &a, a.identity_key(), "me", true),
        Err(ChatError::ToSelf)
    ));
    // The local identity is never a known peer, so never a recipient.
    assert!(!chat.peer_seen(T0, a.bound_keys(), "me", None).unwrap());
    assert!(chat.store().peers().unwrap().is_empty());
    // Even if the node records itself in the store behind the chat's back.
    let keys = a.bound_keys();
    chat.store_mut()
        .upsert_peer_seen(&keys.identity.0, &keys.noise.0, "me", T0, None)
        .unwrap();
    let (_, frames) = chat
        .post_public(T0, &a, "alone", &[a.identity_key()])
        .unwrap();
    assert!(frames.is_empty());
    assert!(chat.store().outbox_peers().unwrap().is_empty());
}

#[test]
fn frames_that_are_not_chat_are_ignored() {
    let (_, mut chat) = lone_chat(1);
    let peer = identity(2).identity_key();
    for f in [
        Frame::Ping(1),
        Frame::Pong(1),
        Frame::Data(vec![1]),
        Frame::Nick("x".repeat(1000)),
    ] {
        assert!(!is_chat_frame(&f));
        assert_eq!(chat.on_frame(T0, peer, f, &[]).unwrap(), Actions::default());
    }
}

#[test]
fn history_and_search_views_carry_conversation_author_and_delivery() {
    let mut net = Net::new(2);
    net.meet(0, 1);
    net.link_up(0, 1);
    net.pump();
    net.post(0, "the quick brown fox");
    net.direct(1, 0, "a quick word in private");
    net.pump();

    let found = net.chat(0).search("QUICK", None, 10).unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(
        found[0].text, "a quick word in private",
        "newest stored first"
    );
    assert_eq!(found[0].conversation, Conversation::Direct(net.key(1)));
    assert_eq!(found[0].author, net.key(1));
    assert!(!found[0].outgoing);
    assert_eq!(found[1].conversation, Conversation::lobby());
    assert!(found[1].delivered);
    assert_eq!(found[1].author, net.key(0));

    let direct = net
        .chat(1)
        .history(Conversation::Direct(net.key(0)), 5)
        .unwrap();
    assert_eq!(direct.len(), 1);
    assert!(direct[0].outgoing && direct[0].delivered);
    assert!(matches!(
        net.chat(0).search(" *** ", None, 10),
        Err(ChatError::Store(StoreError::EmptyQuery))
    ));
}

#[test]
fn peer_records_come_from_peer_seen() {
    let mut net = Net::new(2);
    net.meet(0, 1);
    let peers: Vec<PeerRecord> = net.chat(0).store().peers().unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].identity, net.key(1).0);
    assert_eq!(peers[0].nickname, "node1");
}

/// Not a pass/fail test: how many received messages per second one chat
/// core stores and acks over the in-memory store (the chat core's own cost;
/// the SQLite cost is in the e2e benchmark). Run with
/// `cargo test --release -p natter-core --lib chat::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput_of_received_batches() {
    use std::time::Instant;
    const BATCH: usize = 256;
    const BATCHES: usize = 200;
    let a = identity(1);
    let b = identity(2);
    // Far more than a stranger's daily share: the author is verified.
    let mut chat = Chat::new(Box::new(MemoryStore::new()), b.identity_key());
    chat.peer_seen(T0, a.bound_keys(), "a", None).unwrap();
    chat.set_trust(a.identity_key(), store::TrustLevel::Verified, T0)
        .unwrap();
    let text = "a chat line of a typical length, say sixty-four bytes or so....";
    let mut n = 0u64;
    let mut next_id = || {
        n += 1;
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&n.to_be_bytes());
        id
    };
    let direct: Vec<Vec<Frame>> = (0..BATCHES)
        .map(|_| {
            (0..BATCH)
                .map(|_| {
                    Frame::Direct(DirectMessage {
                        id: next_id(),
                        timestamp_ms: T0,
                        text: text.into(),
                    })
                })
                .collect()
        })
        .collect();
    let public: Vec<Vec<Frame>> = (0..BATCHES / 4)
        .map(|_| {
            (0..BATCH)
                .map(|_| Frame::Public(Box::new(sign_public(&a, next_id(), T0, text.into()))))
                .collect()
        })
        .collect();
    for (what, batches) in [("direct", direct), ("public", public)] {
        let count = batches.len() * BATCH;
        let start = Instant::now();
        for frames in batches {
            let actions = chat.on_frames(T0, a.identity_key(), frames, &[]).unwrap();
            assert_eq!(actions.events.len(), BATCH);
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{what}: {count} messages in {secs:.3} s = {:.0} msgs/s (batches of {BATCH})",
            count as f64 / secs
        );
    }
}

#[test]
fn post_many_stores_a_burst_in_one_go_and_refuses_items_individually() {
    let (me, mut chat) = lone_chat(1);
    let peer = identity(2);
    chat.peer_seen(1, peer.bound_keys(), "peer", None).unwrap();
    let p = peer.identity_key();
    let items = vec![
        (Target::Room(default_room()), "public one".to_string()),
        (Target::Direct(me.identity_key()), "to myself".to_string()),
        (Target::Room(default_room()), "x".repeat(MAX_TEXT_LEN + 1)),
        (Target::Direct(p), "direct one".to_string()),
        (Target::Room(default_room()), "   ".to_string()),
    ];
    let results = chat.post_many(10, &me, &items, &[p]).unwrap();
    assert_eq!(results.len(), 5);
    assert!(results[0].is_ok() && results[3].is_ok());
    assert!(matches!(results[1], Err(ChatError::ToSelf)));
    assert!(matches!(results[2], Err(ChatError::TextTooLong { .. })));
    assert!(matches!(results[4], Err(ChatError::EmptyText)));
    // Both good ones are stored, queued for the peer and sent to it now.
    assert_eq!(chat.store().message_count().unwrap(), 2);
    let (_, frames) = results[0].as_ref().unwrap();
    assert!(matches!(&frames[..], [(to, Frame::RoomPost(_))] if *to == p));
    let (_, frames) = results[3].as_ref().unwrap();
    assert!(matches!(&frames[..], [(to, Frame::Direct(_))] if *to == p));
    assert_eq!(chat.store().outbox_for_peer(&p.0, 10).unwrap().len(), 2);
}

#[test]
fn many_sync_requests_in_one_batch_get_one_answer() {
    let a = identity(1);
    let mut chat = chat_with_public(&a, 50, T0, 10);
    let asker = identity(8).identity_key();
    let flood: Vec<Frame> = (0..10_000)
        .map(|_| Frame::SyncRequest(SyncRequest { since_ms: 0 }))
        .collect();
    let actions = chat.on_frames(T0 + 100_000, asker, flood, &[]).unwrap();
    assert_eq!(
        actions.send.len(),
        50,
        "one answer of 50 messages, not 10000"
    );
}

#[test]
fn outbox_rows_go_only_to_recently_seen_peers() {
    let (me, mut chat) = lone_chat(1);
    let (old, fresh) = (identity(2), identity(3));
    chat.peer_seen(T0, old.bound_keys(), "old", None).unwrap();
    let later = T0 + OUTBOX_PEER_HORIZON_MS + 1;
    chat.peer_seen(later, fresh.bound_keys(), "fresh", None)
        .unwrap();
    chat.post_public(later, &me, "hello", &[]).unwrap();
    assert_eq!(
        chat.store()
            .outbox_for_peer(&fresh.identity_key().0, 10)
            .unwrap()
            .len(),
        1
    );
    assert!(chat
        .store()
        .outbox_for_peer(&old.identity_key().0, 10)
        .unwrap()
        .is_empty());
}

// ------------------------------------------------------- (author, id) identity

/// A peer that has seen Alice's message id plants its own validly signed
/// message under it first. Carol must still store Alice's genuine message
/// and ack it; before, the genuine one was dropped as a duplicate and acked,
/// and Alice saw "delivered" for a message Carol never had.
#[test]
fn a_public_message_under_someone_elses_id_does_not_hide_theirs() {
    let (alice, mallory) = (identity(1), identity(6));
    let (_carol, mut carol_chat) = lone_chat(3);
    let genuine = signed(&alice, 7, T0, "the genuine message");
    let squat = signed(&mallory, 7, T0 - 1, "the squatter's text");
    let first = carol_chat
        .on_frames(
            T0,
            mallory.identity_key(),
            vec![Frame::Public(Box::new(squat))],
            &[],
        )
        .unwrap();
    assert_eq!(first.events.len(), 1);
    let second = carol_chat
        .on_frames(
            T0,
            alice.identity_key(),
            vec![Frame::Public(Box::new(genuine))],
            &[],
        )
        .unwrap();
    let Some(ChatEvent::Received(v)) = second.events.first() else {
        panic!("the genuine message was not stored: {second:?}")
    };
    assert_eq!(v.author, alice.identity_key());
    assert_eq!(v.text, "the genuine message");
    assert_eq!(acks_in(&second), [[7; 16]]);
    let stored = carol_chat
        .store()
        .get_message(&alice.identity_key().0, &[7; 16])
        .unwrap()
        .unwrap();
    assert_eq!(stored.text, "the genuine message");
}

/// The same with a direct frame: its author is the link's peer, so it can
/// never stand for another author's public message.
#[test]
fn a_direct_message_under_a_public_id_does_not_hide_it() {
    let (alice, mallory) = (identity(1), identity(6));
    let (_carol, mut carol_chat) = lone_chat(3);
    let squat = Frame::Direct(DirectMessage {
        id: [8; 16],
        timestamp_ms: T0,
        text: "mine now".into(),
    });
    carol_chat
        .on_frames(T0, mallory.identity_key(), vec![squat], &[])
        .unwrap();
    let genuine = signed(&alice, 8, T0, "public, by alice");
    let actions = carol_chat
        .on_frames(
            T0,
            alice.identity_key(),
            vec![Frame::Public(Box::new(genuine))],
            &[],
        )
        .unwrap();
    assert!(
        matches!(actions.events.first(), Some(ChatEvent::Received(v)) if v.author == alice.identity_key())
    );
    assert_eq!(carol_chat.store().message_count().unwrap(), 2);
}

/// An author who signs two different messages with one id: the second is
/// neither stored nor acked, and is reported; the relay is not blamed.
#[test]
fn two_different_signed_messages_under_one_author_and_id_are_a_collision() {
    let (alice, bob) = (identity(1), identity(2));
    let (_carol, mut carol_chat) = lone_chat(3);
    carol_chat
        .on_frames(
            T0,
            alice.identity_key(),
            vec![Frame::Public(Box::new(signed(&alice, 9, T0, "first")))],
            &[],
        )
        .unwrap();
    let actions = carol_chat
        .on_frames(
            T0,
            bob.identity_key(),
            vec![Frame::Public(Box::new(signed(&alice, 9, T0, "second")))],
            &[],
        )
        .unwrap();
    assert!(
        acks_in(&actions).is_empty(),
        "a collision must not be acked"
    );
    assert!(actions.rejected.is_empty(), "the relay did nothing wrong");
    assert_eq!(
        actions.events,
        [ChatEvent::Collision {
            author: alice.identity_key(),
            id: [9; 16],
            via: bob.identity_key()
        }]
    );
    assert_eq!(carol_chat.stats().collisions, 1);
    // The very same message again is a plain duplicate, acked.
    let again = carol_chat
        .on_frames(
            T0,
            bob.identity_key(),
            vec![Frame::Public(Box::new(signed(&alice, 9, T0, "first")))],
            &[],
        )
        .unwrap();
    assert_eq!(acks_in(&again), [[9; 16]]);
}

/// A forgery under a held (author, id) with other text fails the signature
/// check: a violation of the link that carried it, not a collision.
#[test]
fn a_forged_variant_of_a_held_message_is_a_violation() {
    let (alice, bob) = (identity(1), identity(2));
    let (_carol, mut carol_chat) = lone_chat(3);
    let real = signed(&alice, 4, T0, "real");
    carol_chat
        .on_frames(
            T0,
            alice.identity_key(),
            vec![Frame::Public(Box::new(real.clone()))],
            &[],
        )
        .unwrap();
    let mut forged = real;
    forged.text = "forged".into();
    let actions = carol_chat
        .on_frames(
            T0,
            bob.identity_key(),
            vec![Frame::Public(Box::new(forged))],
            &[],
        )
        .unwrap();
    assert!(acks_in(&actions).is_empty());
    assert!(matches!(
        actions.rejected.as_slice(),
        [Violation::BadSignature { .. }]
    ));
}

/// A peer reusing its own direct message id for other text is refused and
/// not acked.
#[test]
fn a_peer_reusing_its_direct_message_id_is_a_violation() {
    let bob = identity(2);
    let (_carol, mut carol_chat) = lone_chat(3);
    let dm = |text: &str| {
        Frame::Direct(DirectMessage {
            id: [5; 16],
            timestamp_ms: T0,
            text: text.into(),
        })
    };
    carol_chat
        .on_frames(T0, bob.identity_key(), vec![dm("one")], &[])
        .unwrap();
    let actions = carol_chat
        .on_frames(T0, bob.identity_key(), vec![dm("two")], &[])
        .unwrap();
    assert!(acks_in(&actions).is_empty());
    assert_eq!(actions.rejected, [Violation::IdReused { id: [5; 16] }]);
    let same = carol_chat
        .on_frames(T0, bob.identity_key(), vec![dm("one")], &[])
        .unwrap();
    assert_eq!(acks_in(&same), [[5; 16]], "a plain resend is still acked");
}

// ------------------------------------------------------- far-future timestamps

/// A message stamped 2^63 − 1 used to stay last in history after every
/// later genuine message, and catch-up handed it to every peer that asked.
/// It now sorts as if stamped MAX_CLOCK_SKEW_MS after it arrived, and
/// catch-up serves nothing stamped beyond the responder's now plus that skew.
#[test]
fn a_far_future_timestamp_neither_pins_history_nor_spreads_by_catch_up() {
    let (alice, mallory) = (identity(1), identity(6));
    let (_carol, mut carol_chat) = lone_chat(3);
    let far = signed(&mallory, 1, i64::MAX as u64, "I stay last forever");
    carol_chat
        .on_frames(
            T0,
            mallory.identity_key(),
            vec![Frame::Public(Box::new(far))],
            &[],
        )
        .unwrap();
    let later = T0 + store::MAX_CLOCK_SKEW_MS + 1;
    let genuine = signed(&alice, 2, later, "a later genuine message");
    carol_chat
        .on_frames(
            later,
            alice.identity_key(),
            vec![Frame::Public(Box::new(genuine))],
            &[],
        )
        .unwrap();
    let history = carol_chat.history(Conversation::lobby(), 10).unwrap();
    let texts: Vec<&str> = history.iter().map(|v| v.text.as_str()).collect();
    assert_eq!(texts, ["I stay last forever", "a later genuine message"]);
    // A newcomer asks for everything: the far-future message is not served.
    let bob = identity(2);
    let answer = carol_chat
        .on_frames(
            later,
            bob.identity_key(),
            vec![Frame::SyncRequest(SyncRequest { since_ms: 0 })],
            &[],
        )
        .unwrap();
    let served: Vec<&str> = answer
        .send
        .iter()
        .filter_map(|(_, f)| match f {
            Frame::Public(m) => Some(m.text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(served, ["a later genuine message"]);
}

// ------------------------------------------------------- crowding out

/// Fresh identities used to push genuine peers out of the 256 that get
/// outbox rows (most recently seen first). Verified and long-known peers
/// now rank first, and one-off identities' rows expire.
#[test]
fn minted_identities_cannot_crowd_genuine_peers_out_of_the_outbox() {
    let (me, mut chat) = lone_chat(1);
    let (alice, bob) = (identity(2), identity(3));
    // Bob has been around for two days; Alice was verified.
    chat.peer_seen(T0 - 2 * store::LONG_KNOWN_MS, bob.bound_keys(), "bob", None)
        .unwrap();
    chat.peer_seen(T0, bob.bound_keys(), "bob", None).unwrap();
    chat.peer_seen(T0, alice.bound_keys(), "alice", None)
        .unwrap();
    chat.set_trust(alice.identity_key(), store::TrustLevel::Verified, T0)
        .unwrap();
    // Then 300 identities appear, each seen once, all more recently.
    for n in 0..300u32 {
        let mut seed = [7u8; 32];
        seed[..4].copy_from_slice(&n.to_le_bytes());
        let minted = LocalIdentity::from_secrets(seed, seed).unwrap();
        chat.peer_seen(T0 + 1 + u64::from(n), minted.bound_keys(), "x", None)
            .unwrap();
    }
    let now = T0 + 1_000;
    let (view, _) = chat.post_public(now, &me, "hello everyone", &[]).unwrap();
    let pending = chat.store().pending_peers(&view.id).unwrap();
    assert_eq!(pending.len(), OUTBOX_MAX_PEERS);
    assert!(
        pending.contains(&alice.identity_key().0),
        "verified peer crowded out"
    );
    assert!(
        pending.contains(&bob.identity_key().0),
        "long-known peer crowded out"
    );

    // A week later, the one-off identities' rows are gone; Alice's and
    // Bob's stay until they ack.
    let week = now + ONE_OFF_OUTBOX_TTL_MS + 1;
    chat.post_public(week, &me, "a week later", &[]).unwrap();
    let pending = chat.store().pending_peers(&view.id).unwrap();
    assert_eq!(
        pending.len(),
        2,
        "one-off identities' outbox rows must expire: {}",
        pending.len()
    );
}

/// Every identity that completed a handshake used to be kept forever.
/// Unverified ones beyond the newest MAX_UNVERIFIED_PEERS are forgotten;
/// a verified contact never is.
#[test]
fn the_trust_store_keeps_a_bounded_number_of_unverified_peers() {
    let (_me, mut chat) = lone_chat(1);
    let alice = identity(2);
    chat.peer_seen(T0, alice.bound_keys(), "alice", None)
        .unwrap();
    chat.set_trust(alice.identity_key(), store::TrustLevel::Verified, T0)
        .unwrap();
    let extra = 300u32;
    for n in 0..(MAX_UNVERIFIED_PEERS as u32 + extra) {
        let mut seed = [9u8; 32];
        seed[..4].copy_from_slice(&n.to_le_bytes());
        let minted = LocalIdentity::from_secrets(seed, seed).unwrap();
        chat.peer_seen(T0 + 1 + u64::from(n), minted.bound_keys(), "x", None)
            .unwrap();
    }
    let stored = chat.store().peers().unwrap();
    let unverified = stored
        .iter()
        .filter(|p| p.trust == store::TrustLevel::Unverified)
        .count();
    assert!(
        unverified <= MAX_UNVERIFIED_PEERS + PRUNE_EVERY_NEW_PEERS as usize,
        "{unverified} unverified peers kept"
    );
    assert!(stored.iter().any(|p| p.identity == alice.identity_key().0));
    assert!(!chat.take_pruned().is_empty());
}

/// A peer that sends SyncRequest after SyncRequest (in separate reads)
/// and never reads used to get a full answer to each: about 1 MiB per
/// 10-byte request. Answers to one peer are now paced in bytes per second;
/// the latest request waits for the budget and is answered by the timer.
#[test]
fn catch_up_answers_are_paced_per_peer() {
    let (me, mut chat) = lone_chat(1);
    let author = identity(2);
    let text = "x".repeat(2_000);
    let frames: Vec<Frame> = (0..2_500u32)
        .map(|n| {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&n.to_le_bytes());
            Frame::Public(Box::new(sign_public(
                &author,
                id,
                T0 + u64::from(n),
                text.clone(),
            )))
        })
        .collect();
    chat.on_frames(T0 + 3_000, author.identity_key(), frames, &[])
        .unwrap();
    let greedy = identity(6);
    let now = T0 + 10_000;
    let mut sent = 0usize;
    for _ in 0..90 {
        let actions = chat
            .on_frames(
                now,
                greedy.identity_key(),
                vec![Frame::SyncRequest(SyncRequest { since_ms: T0 })],
                &[],
            )
            .unwrap();
        sent += actions
            .send
            .iter()
            .map(|(_, f)| match f {
                Frame::Public(m) => m.text.len(),
                _ => 0,
            })
            .sum::<usize>();
    }
    assert!(
        sent as u64 <= SYNC_BURST_BYTES,
        "90 requests drew {sent} bytes at once"
    );
    assert!(sent > 0, "the first requests are answered at once");
    // The latest request waits; the timer answers it once the budget refills.
    let due = chat.poll_timeout().expect("a waiting request");
    assert!(due > now);
    assert!(chat.handle_timeout(due - 1).unwrap().send.is_empty());
    let later = chat.handle_timeout(due).unwrap();
    assert!(
        !later.send.is_empty(),
        "the waiting request was never answered"
    );
    assert_eq!(chat.poll_timeout(), None);
    let _ = me;
}

/// No catch-up answer is built for a peer whose link is backed up: its
/// request waits until the link drains, whatever the byte budget says.
#[test]
fn catch_up_waits_while_the_peers_link_is_backed_up() {
    let (_me, mut chat) = lone_chat(1);
    let author = identity(2);
    let m = sign_public(&author, [1; 16], T0, "hello".into());
    chat.on_frames(
        T0,
        author.identity_key(),
        vec![Frame::Public(Box::new(m))],
        &[],
    )
    .unwrap();
    let slow = identity(6).identity_key();
    assert!(chat.set_backlogged(slow, true));
    let ask = vec![Frame::SyncRequest(SyncRequest { since_ms: T0 - 1 })];
    let answer = chat.on_frames(T0 + 10, slow, ask, &[]).unwrap();
    assert!(answer
        .send
        .iter()
        .all(|(_, f)| !matches!(f, Frame::Public(_))));
    assert_eq!(chat.poll_timeout(), None, "no timer while backed up");
    assert!(chat.handle_timeout(T0 + 60_000).unwrap().send.is_empty());
    assert!(chat.set_backlogged(slow, false));
    let later = chat.handle_timeout(T0 + 60_001).unwrap();
    assert!(later
        .send
        .iter()
        .any(|(_, f)| matches!(f, Frame::Public(_))));
}

// ------------------------------------------------------- stranger quota

fn small_quota() -> QuotaLimits {
    QuotaLimits {
        per_author_messages: 5,
        per_author_bytes: 1 << 20,
        all_messages: 8,
        all_bytes: 1 << 20,
        max_authors: 100,
    }
}

fn direct(n: u64, text: &str) -> Frame {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    Frame::Direct(DirectMessage {
        id,
        timestamp_ms: T0,
        text: text.into(),
    })
}

#[test]
fn a_strangers_messages_beyond_its_quota_are_neither_stored_nor_acked() {
    let me = identity(1);
    let stranger = identity(2).identity_key();
    let mut chat = Chat::with_quota(
        Box::new(MemoryStore::new()),
        me.identity_key(),
        small_quota(),
    );
    let frames: Vec<Frame> = (0..7).map(|n| direct(n, "hello")).collect();
    let a = chat.on_frames(T0, stranger, frames, &[stranger]).unwrap();
    assert_eq!(acks_in(&a).len(), 5, "only the quota is acked");
    assert!(a.rejected.is_empty(), "over quota is no violation");
    let over: Vec<_> = a
        .events
        .iter()
        .filter(|e| matches!(e, ChatEvent::OverQuota { author, .. } if *author == stranger))
        .collect();
    assert_eq!(over.len(), 1, "reported once: {:?}", a.events);
    assert_eq!(chat.store().message_count().unwrap(), 5);
    assert_eq!(chat.stats().over_quota, 2);
    // Later the same day: still refused, not reported again.
    let a = chat
        .on_frames(T0 + 60_000, stranger, vec![direct(9, "again")], &[stranger])
        .unwrap();
    assert!(acks_in(&a).is_empty());
    assert!(a.events.is_empty());
    // A day later the held-back message is taken and acked.
    let a = chat
        .on_frames(
            T0 + quota::QUOTA_WINDOW_MS,
            stranger,
            vec![direct(9, "again")],
            &[stranger],
        )
        .unwrap();
    assert_eq!(acks_in(&a).len(), 1);
    assert_eq!(chat.store().message_count().unwrap(), 6);
}

#[test]
fn a_refused_public_message_is_not_relayed_and_verified_authors_are_not_counted() {
    let me = identity(1);
    let relay = identity(2);
    let friend = identity(3);
    let other = identity(4).identity_key();
    let mut chat = Chat::with_quota(
        Box::new(MemoryStore::new()),
        me.identity_key(),
        small_quota(),
    );
    chat.peer_seen(T0, friend.bound_keys(), "friend", None)
        .unwrap();
    chat.set_trust(friend.identity_key(), store::TrustLevel::Verified, T0)
        .unwrap();
    let connected = [relay.identity_key(), other];
    // The relay floods its own messages and relays the friend's.
    let mut frames = Vec::new();
    for n in 0..20u8 {
        frames.push(Frame::Public(Box::new(signed(&relay, n, T0, "spam"))));
        frames.push(Frame::Public(Box::new(signed(
            &friend,
            n + 100,
            T0,
            "real",
        ))));
    }
    let a = chat
        .on_frames(T0, relay.identity_key(), frames, &connected)
        .unwrap();
    let relayed = |author: IdentityKey| {
        a.send
            .iter()
            .filter(|(to, f)| *to == other && matches!(f, Frame::Public(m) if m.author == author))
            .count()
    };
    assert_eq!(relayed(friend.identity_key()), 20, "verified: all of them");
    assert_eq!(relayed(relay.identity_key()), 5, "a stranger: its quota");
    assert_eq!(acks_in(&a).len(), 25);
    assert_eq!(chat.store().message_count().unwrap(), 25);
}

#[test]
fn strangers_together_share_one_daily_budget() {
    let me = identity(1);
    let mut chat = Chat::with_quota(
        Box::new(MemoryStore::new()),
        me.identity_key(),
        small_quota(),
    );
    let mut stored = 0;
    for minted in 10..20u8 {
        let key = identity(minted).identity_key();
        let a = chat
            .on_frames(T0, key, vec![direct(1, "hi"), direct(2, "hi")], &[key])
            .unwrap();
        stored += acks_in(&a).len();
    }
    assert_eq!(stored, 8, "all strangers together: 8 a day");
    assert_eq!(chat.store().message_count().unwrap(), 8);
}

// ------------------------------------------------------------------ rooms

impl Net {
    fn post_to(&mut self, a: usize, room: RoomId, text: &str) -> MessageView {
        let connected = self.connected(a);
        let node = &mut self.nodes[a];
        let (view, frames) = node
            .chat
            .post_room(self.now, &node.me, room, text, &connected)
            .unwrap();
        for (peer, f) in frames {
            let to = self.index(peer);
            self.queue.push_back((a, to, f));
        }
        view
    }
}

#[test]
fn a_room_post_travels_as_a_room_post_and_lands_in_its_room_only() {
    // 0 — 1 — 2: node 1 carries #ops between 0 and 2.
    let mut net = Net::new(3);
    net.meet_all();
    net.link_up(0, 1);
    net.link_up(1, 2);
    net.pump();
    let ops = open_room_id("ops");
    let sent = net.post_to(0, ops, "disk is full");
    assert_eq!(sent.conversation, Conversation::Room(ops));
    net.pump();
    for i in 1..3 {
        let got = net.received(i);
        assert_eq!(texts(&got), ["disk is full"], "node {i}");
        assert_eq!(got[0].conversation, Conversation::Room(ops));
        let ops_history = net.chat(i).history(Conversation::Room(ops), 10).unwrap();
        assert_eq!(ops_history.len(), 1);
        assert!(net
            .chat(i)
            .history(Conversation::lobby(), 10)
            .unwrap()
            .is_empty());
    }
    assert_eq!(
        net.count_delivered(1, 2, |f| matches!(f, Frame::RoomPost(p) if p.room == ops)),
        1
    );
    // Search finds it everywhere, or in #ops, and not in #lobby.
    let c = net.chat(2);
    assert_eq!(c.search("disk", None, 10).unwrap().len(), 1);
    assert_eq!(c.search("disk", Some(ops), 10).unwrap().len(), 1);
    assert!(c
        .search("disk", Some(default_room()), 10)
        .unwrap()
        .is_empty());
}

/// A store that answers a batch's look-up with fewer answers than keys
/// is refused, not trusted: zipping the answers onto the posts would pair
/// a post with another's held copy, or with none.
#[test]
fn a_store_that_answers_a_batch_short_is_an_error_and_nothing_is_taken_in() {
    let me = identity(1);
    let mut store = MemoryStore::new();
    store.answers_short = true;
    let mut chat = Chat::new(Box::new(store), me.identity_key());
    let author = identity(2);
    let frames: Vec<Frame> = (0..3u8)
        .map(|i| {
            let room = open_room_id("ops");
            Frame::RoomPost(Box::new(rooms::sign_room_post(
                &author,
                room,
                [i; 16],
                T0,
                "x".into(),
            )))
        })
        .collect();
    let short = |e| {
        matches!(
            e,
            ChatError::Store(StoreError::ShortAnswer { asked: 3, got: 2 })
        )
    };
    assert!(chat.signatures_to_check(&frames).is_err_and(short));
    assert!(chat
        .on_frames(T0, author.identity_key(), frames, &[])
        .is_err_and(short));
    assert_eq!(chat.store().message_count().unwrap(), 0);
}

#[test]
fn a_post_moved_to_another_room_is_a_bad_signature() {
    let (_, mut chat) = lone_chat(1);
    let author = identity(2);
    let mut post = rooms::sign_room_post(&author, open_room_id("ops"), [5; 16], T0, "x".into());
    post.room = open_room_id("dev");
    let a = chat
        .on_frame(
            T0,
            author.identity_key(),
            Frame::RoomPost(Box::new(post)),
            &[],
        )
        .unwrap();
    assert!(matches!(a.rejected[..], [Violation::BadSignature { .. }]));
    assert_eq!(chat.store().message_count().unwrap(), 0);
    assert!(
        a.events.is_empty() && a.send.is_empty(),
        "not acked or shown"
    );
}

#[test]
fn old_public_frames_are_lobby_messages_and_are_served_back_as_they_were_signed() {
    let mut net = Net::new(2);
    net.meet_all();
    let old = identity(9);
    // Node 0 holds an old-style public message and a new #lobby post.
    let legacy = signed(&old, 1, T0 - 5_000, "from before rooms");
    net.nodes[0]
        .chat
        .on_frame(
            T0,
            old.identity_key(),
            Frame::Public(Box::new(legacy.clone())),
            &[],
        )
        .unwrap();
    net.post(0, "after rooms");
    let lobby = net.chat(0).history(Conversation::lobby(), 10).unwrap();
    assert_eq!(
        texts(&lobby.iter().collect::<Vec<_>>()),
        ["from before rooms", "after rooms"]
    );
    // Node 1 catches up through 0: the old one comes as `Public`, the new
    // one as `RoomPost` (from the outbox and again in the catch-up answer),
    // and both verify and land in #lobby, once.
    net.link_up(0, 1);
    net.pump();
    assert_eq!(
        net.count_delivered(0, 1, |f| matches!(f, Frame::Public(m) if **m == legacy)),
        1
    );
    assert!(
        net.count_delivered(
            0,
            1,
            |f| matches!(f, Frame::RoomPost(p) if p.room == default_room())
        ) >= 1
    );
    let got = net.chat(1).history(Conversation::lobby(), 10).unwrap();
    assert_eq!(got.len(), 2);
    assert!(net.nodes[1].rejected.is_empty());
}

#[test]
fn rooms_are_caught_up_through_any_peer() {
    // 0 posts in #ops and #lobby while 2 is away; 2 comes back linked to 1
    // only, and gets both rooms from 1.
    let mut net = Net::new(3);
    net.meet_all();
    net.link_up(0, 1);
    net.pump();
    let ops = open_room_id("ops");
    for i in 0..5 {
        net.post_to(0, ops, &format!("ops {i}"));
        net.post(0, &format!("lobby {i}"));
    }
    net.pump();
    net.link_up(1, 2);
    net.pump();
    assert_eq!(
        net.chat(2)
            .history(Conversation::Room(ops), 50)
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        net.chat(2)
            .history(Conversation::lobby(), 50)
            .unwrap()
            .len(),
        5
    );
    assert!(net.nodes[2].rejected.is_empty());
}

// --------------------------------------------------------- invite-only rooms

impl Net {
    /// Hands `frames` (from node `from`'s chat) to the queue.
    fn send_all(&mut self, from: usize, frames: Vec<(IdentityKey, Frame)>) {
        for (peer, f) in frames {
            let to = self.index(peer);
            self.queue.push_back((from, to, f));
        }
    }

    fn shown(&self, i: usize, room: RoomId) -> Vec<String> {
        self.received(i)
            .iter()
            .filter(|v| v.conversation == Conversation::Room(room))
            .map(|v| v.text.clone())
            .collect()
    }
}

/// 0 founds a room with 1 and 2 in it; 3 is not a member. All linked to 0.
fn private_net() -> (Net, RoomId) {
    let mut net = Net::new(4);
    net.meet_all();
    for i in 1..4 {
        net.link_up(0, i);
    }
    net.pump();
    let connected = net.connected(0);
    let me = identity(1);
    let (room, (frames, _)) = net.nodes[0]
        .chat
        .create_room(net.now, &me, "team", &connected)
        .unwrap();
    net.send_all(0, frames);
    for i in [1, 2] {
        let keys = *net.nodes[i].me.bound_keys();
        let (frames, _) = net.nodes[0]
            .chat
            .invite(net.now, &me, room, keys, &connected)
            .unwrap();
        net.send_all(0, frames);
    }
    net.pump();
    (net, room)
}

/// The room works: a member's post reaches the other member, readable.
fn room_still_works(net: &mut Net, room: RoomId, tag: &str) {
    room_works_between(net, room, tag, 1, 2, &[3]);
}

/// `from` posts; `reader` reads it; none of `outsiders` does.
fn room_works_between(
    net: &mut Net,
    room: RoomId,
    tag: &str,
    from: usize,
    reader: usize,
    outsiders: &[usize],
) {
    let text = format!("still working after {tag}");
    net.post_to(from, room, &text);
    net.pump();
    assert!(
        net.shown(reader, room).contains(&text),
        "{tag}: {reader} did not read it"
    );
    for &o in outsiders {
        assert!(!net.shown(o, room).contains(&text), "{tag}: {o} read it");
    }
}

#[test]
fn members_read_non_members_carry_and_every_node_agrees_on_membership() {
    let (mut net, room) = private_net();
    for i in 0..4 {
        assert!(net.chat(i).is_private(&room), "node {i} knows the room");
        assert_eq!(net.chat(i).is_private_member(&room), i < 3, "node {i}");
    }
    room_still_works(&mut net, room, "setup");
    // 3 stored the post, sealed, and relays it, but holds no clear text
    // and shows nothing of it, not even in the room's history.
    let held = net
        .chat(3)
        .store()
        .history(&ConversationKey::Room(room.0), 10)
        .unwrap();
    assert_eq!(held.len(), 1);
    assert!(held[0].text.is_empty() && held[0].wire.is_some());
    let shown = net.chat(3).history(Conversation::Room(room), 10).unwrap();
    assert!(shown.is_empty(), "{shown:?}");
    // A non-member cannot post: it has no key.
    let me3 = identity(4);
    assert!(matches!(
        net.nodes[3]
            .chat
            .post_room(T0, &me3, room, "let me in", &[]),
        Err(ChatError::NotAMember)
    ));
}

#[test]
fn forged_and_malformed_membership_changes_are_refused() {
    let (mut net, room) = private_net();
    let mallory = identity(9);
    let founding = match net.chat(0).private_rooms().first() {
        Some(r) => r.founder,
        None => panic!("room"),
    };
    assert_eq!(founding, net.key(0));
    // Mallory signs an entry naming 0's room and 0 as founder: bad signature.
    let stored = net.chat(0).store().room_controls().unwrap();
    let Some(SignedPost::Control(first)) =
        stored[0].wire.as_deref().and_then(SignedPost::from_wire)
    else {
        panic!("founding entry");
    };
    let member_keys = *mallory.bound_keys();
    let envelope = room_keys::seal_key(&[7; 32], &room, 0, &member_keys).unwrap();
    let forged = private::sign_control(
        &mallory,
        first.founding.clone(),
        3,
        0,
        T0,
        RoomChange::Invite {
            member: member_keys,
            envelope,
        },
    );
    let k3 = net.key(3);
    let a = net.nodes[1]
        .chat
        .on_frame(T0, k3, Frame::RoomControl(Box::new(forged)), &[])
        .unwrap();
    assert!(matches!(a.rejected[..], [Violation::BadLogEntry { .. }]));
    assert!(!net.chat(1).private_rooms()[0]
        .members
        .contains(&mallory.identity_key()));
    room_still_works(&mut net, room, "a forged invitation");
    // A founder's entry numbered 0 that is not a founding is refused too.
    let odd = private::sign_control(
        &identity(1),
        first.founding.clone(),
        first.seq,
        0,
        first.timestamp_ms,
        RoomChange::Remove {
            member: net.key(2),
            envelopes: vec![],
        },
    );
    let k0 = net.key(0);
    let a = net.nodes[1]
        .chat
        .on_frame(T0, k0, Frame::RoomControl(Box::new(odd)), &[])
        .unwrap();
    assert!(!a.rejected.is_empty());
    room_still_works(&mut net, room, "a malformed entry");
}

#[test]
fn posts_without_the_current_key_are_refused_and_shown_nowhere() {
    let (mut net, room) = private_net();
    // 0 removes 2; 2 keeps the old key and posts with it anyway.
    let me0 = identity(1);
    let connected = net.connected(0);
    let old_key: [u8; 32] = net.nodes[2]
        .chat
        .private
        .get(&room)
        .and_then(|r| r.current_key())
        .map(|k| **k)
        .unwrap();
    let (now, k2) = (net.now, net.key(2));
    let (frames, _) = net.nodes[0]
        .chat
        .remove(now, &me0, room, k2, &connected)
        .unwrap();
    net.send_all(0, frames);
    net.pump();
    assert!(
        !net.chat(2).is_private_member(&room),
        "2 knows it was removed"
    );
    let kicked = identity(3);
    let stale = |text: &str, epoch: u32, key: &[u8; 32], n: u8| {
        let id = [n; 16];
        let (nonce, ciphertext) =
            room_keys::encrypt_post(key, &room, epoch, &id, &kicked.identity_key(), T0, text)
                .unwrap();
        let mut p = SealedPost {
            room,
            id,
            author: kicked.identity_key(),
            timestamp_ms: T0,
            epoch,
            nonce,
            ciphertext,
            signature: SignatureBytes([0; 64]),
        };
        p.signature = kicked.sign(domain::SEALED_POST, &rooms::signed_sealed_bytes(&p));
        Frame::SealedPost(Box::new(p))
    };
    for (n, epoch) in [(40u8, 0u32), (41, 1)] {
        for to in [0, 1, 3] {
            let before = net.chat(to).stats().sealed_refused;
            let a = net.nodes[to]
                .chat
                .on_frame(
                    T0,
                    k2,
                    stale("from the kicked one", epoch, &old_key, n),
                    &[],
                )
                .unwrap();
            assert!(
                a.rejected.is_empty(),
                "not a link error: a relay cannot tell"
            );
            assert!(
                a.send.is_empty() && a.events.is_empty(),
                "not acked, relayed or shown"
            );
            assert_eq!(net.chat(to).stats().sealed_refused, before + 1);
        }
    }
    room_works_between(&mut net, room, "posts by a removed member", 1, 0, &[2, 3]);
    // A member's post that does not decrypt is refused by members; and a
    // flood of posts to rooms nobody founded is refused by everyone.
    let garbage = {
        let me1 = identity(2);
        let mut p = SealedPost {
            room,
            id: [50; 16],
            author: me1.identity_key(),
            timestamp_ms: T0,
            epoch: 1,
            nonce: [1; 24],
            ciphertext: vec![0xAA; 40],
            signature: SignatureBytes([0; 64]),
        };
        p.signature = me1.sign(domain::SEALED_POST, &rooms::signed_sealed_bytes(&p));
        Frame::SealedPost(Box::new(p))
    };
    let k1 = net.key(1);
    let a = net.nodes[0].chat.on_frame(T0, k1, garbage, &[]).unwrap();
    assert!(a.events.is_empty() && a.send.is_empty());
    let flood: Vec<Frame> = (0..500u32)
        .map(|n| {
            let mut p = SealedPost {
                room: RoomId([n as u8; 32]),
                id: [n as u8; 16],
                author: kicked.identity_key(),
                timestamp_ms: T0,
                epoch: 0,
                nonce: [0; 24],
                ciphertext: vec![1; 20],
                signature: SignatureBytes([0; 64]),
            };
            p.signature = kicked.sign(domain::SEALED_POST, &rooms::signed_sealed_bytes(&p));
            Frame::SealedPost(Box::new(p))
        })
        .collect();
    let before = net.chat(3).store().message_count().unwrap();
    net.nodes[3].chat.on_frames(T0, k2, flood, &[]).unwrap();
    assert_eq!(
        net.chat(3).store().message_count().unwrap(),
        before,
        "nothing stored"
    );
    room_works_between(&mut net, room, "a flood", 0, 1, &[2, 3]);
}

#[test]
fn a_clear_text_post_to_an_invite_only_room_is_refused_and_shown_nowhere() {
    let (mut net, room) = private_net();
    let me2 = identity(3);
    // A member (or anyone) signs a plain RoomPost under the room's id.
    let plain = rooms::sign_room_post(&me2, room, [60; 16], T0, "in the clear".into());
    for to in [0, 1, 3] {
        let k2 = net.key(2);
        let a = net.nodes[to]
            .chat
            .on_frame(T0, k2, Frame::RoomPost(Box::new(plain.clone())), &[])
            .unwrap();
        assert!(a.events.is_empty() && a.send.is_empty(), "node {to}");
        assert!(net
            .chat(to)
            .history(Conversation::Room(room), 50)
            .unwrap()
            .iter()
            .all(|m| m.text != "in the clear"));
    }
    room_still_works(&mut net, room, "a clear-text post");
}

/// Who is linked, answered one peer at a time; listing everyone is what
/// direct messages must never need (it would cost every batch of them a
/// pass over every linked peer: O(peers²) for a node chatting with all).
struct OnlyLookups(Vec<IdentityKey>);

impl Linked for OnlyLookups {
    fn is_linked(&self, id: &IdentityKey) -> bool {
        self.0.contains(id)
    }

    fn linked(&self) -> Vec<IdentityKey> {
        panic!("direct messages listed every linked peer");
    }
}

impl Net {
    /// Node 0 (identity 1) founds room `name` and sends the founding to
    /// whoever it is linked to.
    fn found(&mut self, name: &str) -> RoomId {
        let connected = self.connected(0);
        let (room, (frames, _)) = self.nodes[0]
            .chat
            .create_room(self.now, &identity(1), name, &connected)
            .unwrap();
        self.send_all(0, frames);
        room
    }

    /// Node 0, the founder, invites `keys` to `room`.
    fn invite_keys(&mut self, room: RoomId, keys: BoundKeys) -> Result<(), ChatError> {
        let connected = self.connected(0);
        let (frames, _) =
            self.nodes[0]
                .chat
                .invite(self.now, &identity(1), room, keys, &connected)?;
        self.send_all(0, frames);
        Ok(())
    }

    /// Node 0, the founder, invites node `i`.
    fn invite_node(&mut self, room: RoomId, i: usize) {
        let keys = *self.nodes[i].me.bound_keys();
        self.invite_keys(room, keys).unwrap();
    }
}

/// `n` nodes, 0 linked to 1.
fn zero_and_one_linked(n: u8) -> Net {
    let mut net = Net::new(n);
    net.meet(0, 1);
    net.link_up(0, 1);
    net.pump();
    net
}

#[test]
fn an_invitee_gets_the_whole_log_however_old_and_whoever_knew_it() {
    // 0 founds a room with 1 while 2 and 3 are strangers to it; more than
    // the catch-up window later 0 meets both and invites them, 2 linked at
    // the time, 3 only afterwards.
    let mut net = zero_and_one_linked(4);
    let room = net.found("team");
    net.invite_node(room, 1);
    net.pump();
    net.now += SYNC_WINDOW_MS + 86_400_000;
    for i in [2, 3] {
        net.meet(0, i);
    }
    net.link_up(0, 2);
    net.pump();
    assert!(
        !net.chat(2).is_private(&room),
        "catch-up does not serve a log this old"
    );
    for i in [2, 3] {
        net.invite_node(room, i);
    }
    net.pump();
    net.link_up(0, 3);
    net.pump();
    for i in 1..4 {
        assert!(net.chat(i).is_private_member(&room), "node {i} is a member");
        assert!(net.nodes[i].rejected.is_empty(), "node {i}");
    }
    room_works_between(&mut net, room, "a late invitation", 0, 2, &[]);
    room_works_between(&mut net, room, "a late invitation", 0, 3, &[]);
}

#[test]
fn no_log_makes_a_room_larger_than_the_cap() {
    // 0 fills its room to MAX_ROOM_MEMBERS; 1 watches the log.
    let mut net = zero_and_one_linked(2);
    let me = identity(1);
    let room = net.found("crowd");
    let stranger = |i: usize| {
        let mut secret = [0x5e; 32];
        secret[..8].copy_from_slice(&(i as u64).to_le_bytes());
        LocalIdentity::from_secrets(secret, secret).unwrap()
    };
    let limit = crate::wire::limits::MAX_ROOM_MEMBERS;
    for i in 1..limit {
        net.invite_keys(room, *stranger(i).bound_keys()).unwrap();
    }
    net.pump();
    let keys = *stranger(limit).bound_keys();
    assert!(matches!(
        net.invite_keys(room, keys),
        Err(ChatError::Membership(_))
    ));
    // Another implementation's founder writes the next one anyway: it
    // is applied as nothing, and the log goes on past it.
    let founding = net.chat(1).private.get(&room).unwrap().founding.clone();
    let envelope = room_keys::seal_key(&[7; 32], &room, 0, &keys).unwrap();
    let over = private::sign_control(
        &me,
        founding,
        u32::try_from(limit).unwrap(),
        0,
        net.now,
        RoomChange::Invite {
            member: keys,
            envelope,
        },
    );
    let k0 = net.key(0);
    let a = net.nodes[1]
        .chat
        .on_frame(net.now, k0, Frame::RoomControl(Box::new(over)), &[])
        .unwrap();
    assert!(a.rejected.is_empty());
    let seen = net.chat(1).private.get(&room).unwrap();
    assert_eq!(seen.members().count(), limit);
    assert!(!seen.is_member(&keys.identity));
    assert_eq!(seen.next_seq() as usize, limit + 1);
}

#[test]
fn entries_ahead_of_a_gap_beyond_what_memory_keeps_are_read_back_from_the_store() {
    // 0 writes a log of 1 + 1100 entries; 1 gets 1..=1100 first (more than
    // MAX_PENDING_CONTROLS wait), then the founding.
    let mut net = Net::new(3);
    net.meet(0, 1);
    let me = identity(1);
    let (room, (frames, _)) = net.nodes[0]
        .chat
        .create_room(net.now, &me, "long", &[])
        .unwrap();
    assert!(frames.is_empty());
    let founding_entry = net.chat(0).store().room_controls().unwrap()[0].clone();
    let Some(SignedPost::Control(founding)) = founding_entry
        .wire
        .as_deref()
        .and_then(SignedPost::from_wire)
    else {
        panic!("founding entry");
    };
    let bob = *net.nodes[2].me.bound_keys();
    let envelope = room_keys::seal_key(&[7; 32], &room, 0, &bob).unwrap();
    let last = u32::try_from(private::MAX_PENDING_CONTROLS).unwrap() + 76;
    let k0 = net.key(0);
    for seq in 1..=last {
        let c = private::sign_control(
            &me,
            founding.founding.clone(),
            seq,
            0,
            net.now,
            RoomChange::Invite {
                member: bob,
                envelope: envelope.clone(),
            },
        );
        let a = net.nodes[1]
            .chat
            .on_frame(net.now, k0, Frame::RoomControl(Box::new(c)), &[])
            .unwrap();
        assert!(a.rejected.is_empty());
    }
    let a = net.nodes[1]
        .chat
        .on_frame(net.now, k0, Frame::RoomControl(founding), &[])
        .unwrap();
    assert!(a.rejected.is_empty());
    let seen = net.chat(1).private.get(&room).unwrap();
    assert_eq!(seen.next_seq(), last + 1, "every entry applied");
    assert!(seen.is_member(&bob.identity));
    // An entry weighs what it carries: a Remove with many envelopes too.
    let remove = RoomControl {
        founding: net.chat(1).private.get(&room).unwrap().founding.clone(),
        seq: last + 1,
        epoch: 1,
        timestamp_ms: net.now,
        change: RoomChange::Remove {
            member: bob.identity,
            envelopes: vec![(bob.identity, envelope); 200],
        },
        signature: SignatureBytes([0; 64]),
    };
    let encoded = crate::wire::codec::encode(&Frame::RoomControl(Box::new(remove.clone()))).len();
    let size = SignedPost::Control(Box::new(remove)).size();
    assert!(size.abs_diff(encoded) <= 16, "{size} against {encoded}");
}

#[test]
fn keys_learnt_before_a_flood_of_handshakes_stay_known() {
    let mut chat = Chat::new(Box::new(MemoryStore::new()), identity(1).identity_key());
    let keys = |i: u32| {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&i.to_le_bytes());
        BoundKeys {
            identity: IdentityKey(id),
            noise: crate::identity::NoiseKey([9; 32]),
            binding: SignatureBytes([0; 64]),
        }
    };
    let max = u32::try_from(MAX_KNOWN_KEYS).unwrap();
    for i in 0..max + 5_000 {
        chat.remember_keys(keys(i));
        if i == 10 {
            // A contact links again mid-way: still one of the old ones.
            chat.remember_keys(keys(3));
        }
    }
    assert_eq!(chat.known_keys.len(), MAX_KNOWN_KEYS);
    for i in 0..max - 1 {
        assert!(chat.known_keys(&keys(i).identity).is_some(), "key {i}");
    }
}

#[test]
fn direct_messages_ask_about_one_peer_not_everyone_linked() {
    let (a, mut chat) = lone_chat(1);
    let (peer, away) = (identity(2).identity_key(), identity(3).identity_key());
    let linked = OnlyLookups(vec![peer]);
    let items = [
        (Target::Direct(peer), "to a linked peer".to_string()),
        (Target::Direct(away), "to one not linked".to_string()),
    ];
    let posted = chat.post_many(T0, &a, &items, &linked).unwrap();
    let sends: Vec<usize> = posted
        .iter()
        .map(|r| r.as_ref().map(|(_, frames)| frames.len()).unwrap())
        .collect();
    assert_eq!(
        sends,
        [1, 0],
        "sent to the linked peer only, the other waits"
    );

    let frames = (0..3u8)
        .map(|i| {
            Frame::Direct(DirectMessage {
                id: [i + 40; 16],
                timestamp_ms: T0,
                text: format!("dm {i}"),
            })
        })
        .collect();
    let actions = chat.on_frames(T0, peer, frames, &linked).unwrap();
    assert_eq!(actions.events.len(), 3);
    assert_eq!(acks_in(&actions).len(), 3);
}

/// Our ids begin with the clock (so the stores' id index grows at its end);
/// `/info` finds our messages by short id, the start of the random part, or
/// by whole id, and never a peer's message.
#[test]
fn ids_start_with_the_clock_and_info_finds_them_by_short_id() {
    let (me, mut chat) = lone_chat(1);
    let peer = identity(2).identity_key();
    let now = 0x0123_4567_89ab_u64;
    let sent = chat.send_direct(now, &me, peer, "first", false).unwrap().0;
    let later = chat
        .send_direct(now + 1, &me, peer, "second", false)
        .unwrap()
        .0;
    assert_eq!(
        sent.id[..ID_CLOCK_BYTES],
        [0x01, 0x23, 0x45, 0x67, 0x89, 0xab]
    );
    assert!(later.id > sent.id, "ids of later messages sort later");
    assert_ne!(sent.id[ID_CLOCK_BYTES..], later.id[ID_CLOCK_BYTES..]);

    let short = short_id(&sent.id);
    assert_eq!(
        short,
        crate::hex(&sent.id[ID_CLOCK_BYTES..ID_CLOCK_BYTES + 4])
    );
    fn by_id(chat: &Chat, digits: &str) -> Result<Vec<MessageId>, ChatError> {
        chat.own_messages_by_id(digits, 2)
            .map(|v| v.into_iter().map(|m| m.id).collect())
    }
    let found = |digits: &str| by_id(&chat, digits);
    assert_eq!(found(&short).unwrap(), [sent.id]);
    assert_eq!(found(&short[..5].to_uppercase()).unwrap(), [sent.id]);
    assert_eq!(found(&crate::hex(&sent.id)).unwrap(), [sent.id]);
    // The clock digits are not a short id.
    assert!(found(&crate::hex(&sent.id[..4]))
        .unwrap()
        .iter()
        .all(|id| id[ID_CLOCK_BYTES..].starts_with(&sent.id[..2])));
    for bad in ["abc", &"a".repeat(21), &"a".repeat(31), "xyz1"] {
        assert!(
            matches!(found(bad), Err(ChatError::BadIdPrefix(_))),
            "{bad:?} accepted"
        );
    }

    // A peer's message is never ours to look up, by either form.
    let (them, mut theirs) = lone_chat(2);
    let (m, frame) = theirs
        .send_direct(now, &them, me.identity_key(), "hi", true)
        .unwrap();
    chat.on_frame(now, peer, frame.unwrap(), &[peer]).unwrap();
    assert_eq!(chat.store().message_count().unwrap(), 3);
    assert!(by_id(&chat, &short_id(&m.id)).unwrap().is_empty());
    assert!(by_id(&chat, &crate::hex(&m.id)).unwrap().is_empty());
}

/// A signer that returns fewer posts than it was given (a broken
/// implementation of `SignatureCheck::sign_all`): the posts it left out are
/// refused with a clear error and stored nowhere; the others go out.
#[test]
fn posts_a_signer_leaves_unsigned_are_refused_not_lost() {
    #[derive(Debug)]
    struct DropsTheLast;
    impl SignatureCheck for DropsTheLast {
        fn verify_all(&self, posts: &[&SignedPost]) -> Vec<bool> {
            OneByOne.verify_all(posts)
        }
        fn sign_all(&self, local: &LocalIdentity, mut posts: Vec<UnsignedPost>) -> Vec<RoomPost> {
            posts.pop();
            OneByOne.sign_all(local, posts)
        }
    }
    let (me, mut chat) = lone_chat(1);
    chat.set_signature_check(Box::new(DropsTheLast));
    let ops = Target::Room(open_room_id("ops"));
    let peer = identity(2).identity_key();
    let items = [
        (ops, "one".to_string()),
        (Target::Direct(peer), "direct".to_string()),
        (ops, "two".to_string()),
    ];
    let out = chat.post_many(T0, &me, &items, &[peer]).unwrap();
    assert!(out[0].is_ok() && out[1].is_ok());
    assert!(matches!(out[2], Err(ChatError::Unsigned)), "{:?}", out[2]);
    assert_eq!(chat.store().message_count().unwrap(), 2);
}

/// Checks done elsewhere (the node's pool): the chat core asks for the
/// signatures a batch needs, by index among its chat frames, and takes the
/// verdicts it is given; one it is not given it checks itself.
#[test]
fn verdicts_from_elsewhere_are_taken_and_missing_ones_checked_here() {
    let a = identity(1);
    let relay = identity(3).identity_key();
    let linked = [relay, a.identity_key()];
    let good = signed(&a, 1, T0, "authentic");
    let also_good = signed(&a, 2, T0, "also authentic");
    let mut forged = signed(&a, 3, T0, "forged");
    forged.signature.0[5] ^= 0x10;
    let frames = vec![
        Frame::Ack(vec![[9; 16]]),
        Frame::Public(Box::new(good.clone())),
        Frame::Public(Box::new(also_good.clone())),
        Frame::Public(Box::new(forged.clone())),
    ];
    let (_, mut b) = lone_chat(2);
    let asked: Vec<usize> = b
        .signatures_to_check(&frames)
        .unwrap()
        .iter()
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(asked, [1, 2, 3], "every post, none of the rest");

    // The pool's word is taken: `also_good` said bad is refused; `forged`
    // has no verdict and is checked here.
    let verdicts = HashMap::from([(1, true), (2, false)]);
    let actions = b
        .on_checked_frames(T0, relay, frames.clone(), &verdicts, &linked)
        .unwrap();
    let refused: Vec<MessageId> = actions
        .rejected
        .iter()
        .map(|v| match v {
            Violation::BadSignature { id, .. } => *id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(refused, [also_good.id, forged.id]);
    assert!(b
        .store()
        .get_message(&a.identity_key().0, &good.id)
        .unwrap()
        .is_some());
    assert!(b
        .store()
        .get_message(&a.identity_key().0, &also_good.id)
        .unwrap()
        .is_none());

    // What is now held identically needs no second check.
    let again = b.signatures_to_check(&frames[1..2]).unwrap();
    assert!(again.is_empty());
}

#[test]
fn a_remove_that_leaves_a_member_without_the_new_key_is_applied_as_nothing() {
    // 0 founded "team" with 1 and 2 in it. Another implementation's founder
    // removes 2 with an envelope for itself only (1 would stay a member
    // unable to read), then with 1's envelope given twice instead of its
    // own: both apply as nothing, at 1 and at 3 (which only carries).
    let (mut net, room) = private_net();
    let me = identity(1);
    let founding = net.chat(1).private.get(&room).unwrap().founding.clone();
    let next = net.chat(1).private.get(&room).unwrap().next_seq();
    let (k0, k1, k2) = (net.key(0), net.key(1), net.key(2));
    let founder_keys = *me.bound_keys();
    let member_keys = *net.nodes[1].me.bound_keys();
    let sealed = |keys: &BoundKeys| room_keys::seal_key(&[9; 32], &room, 1, keys).unwrap();
    let bad = [
        vec![(k0, sealed(&founder_keys))],
        vec![(k1, sealed(&member_keys)), (k1, sealed(&member_keys))],
    ];
    for (i, envelopes) in bad.into_iter().enumerate() {
        let c = private::sign_control(
            &me,
            founding.clone(),
            next + u32::try_from(i).unwrap(),
            1,
            net.now,
            RoomChange::Remove {
                member: k2,
                envelopes,
            },
        );
        for at in [1, 3] {
            let a = net.nodes[at]
                .chat
                .on_frame(net.now, k0, Frame::RoomControl(Box::new(c.clone())), &[])
                .unwrap();
            assert!(a.rejected.is_empty());
        }
    }
    for at in [1, 3] {
        let seen = net.chat(at).private.get(&room).unwrap();
        assert_eq!(seen.next_seq(), next + 2, "{at}: both entries taken");
        assert_eq!(seen.epoch(), 0, "{at}: no new epoch");
        assert!(seen.is_member(&k2), "{at}: 2 is still a member");
    }
    // Posts at the epoch every node still agrees on go through.
    room_still_works(&mut net, room, "two removes applied as nothing");
}

#[test]
fn a_member_whose_key_does_not_open_is_told_and_carries_posts_it_cannot_read() {
    // 0 founded "team" with 1 and 2; another implementation's founder
    // invites 3 with an envelope sealed to someone else's keys.
    let (mut net, room) = private_net();
    let me = identity(1);
    let founding = net.chat(3).private.get(&room).unwrap().founding.clone();
    let next = net.chat(3).private.get(&room).unwrap().next_seq();
    let key = **net.nodes[0]
        .chat
        .private
        .get(&room)
        .and_then(|r| r.current_key())
        .unwrap();
    let not_3 = *net.nodes[1].me.bound_keys();
    let c = private::sign_control(
        &me,
        founding,
        next,
        0,
        net.now,
        RoomChange::Invite {
            member: *net.nodes[3].me.bound_keys(),
            envelope: room_keys::seal_key(&key, &room, 0, &not_3).unwrap(),
        },
    );
    let k0 = net.key(0);
    let a = net.nodes[3]
        .chat
        .on_frame(net.now, k0, Frame::RoomControl(Box::new(c)), &[])
        .unwrap();
    let changes: Vec<&RoomChanged> = a
        .events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::RoomChanged(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        [
            &RoomChanged::Joined { room },
            &RoomChanged::KeyUnopened { room }
        ]
    );
    // 3 cannot post, and is told why.
    let (now, connected) = (net.now, net.connected(3));
    let node = &mut net.nodes[3];
    assert!(matches!(
        node.chat
            .post_room(now, &node.me, room, "hello?", &connected),
        Err(ChatError::NoRoomKey)
    ));
    // A member's post reaches 3 through 0: carried (stored and acked, so
    // nobody resends it), shown nowhere at 3, also not in its history.
    let before = net.chat(3).store().message_count().unwrap();
    room_works_between(&mut net, room, "an envelope that does not open", 1, 2, &[3]);
    assert_eq!(net.chat(3).store().message_count().unwrap(), before + 1);
    let history = net.chat(3).history(Conversation::Room(room), 50).unwrap();
    assert!(history.is_empty(), "{history:?}");
}

#[test]
fn a_remove_whose_envelope_does_not_open_leaves_the_member_keyless_until_a_later_one_opens() {
    // 0 founded "team" with 1 and 2. Another implementation's founder
    // removes 2 and seals 1's new key to the wrong keys; then invites 3
    // and removes it again, this time with a good envelope for 1.
    let (mut net, room) = private_net();
    let me = identity(1);
    let founding = net.chat(1).private.get(&room).unwrap().founding.clone();
    let next = net.chat(1).private.get(&room).unwrap().next_seq();
    let (k0, k1, k2, k3) = (net.key(0), net.key(1), net.key(2), net.key(3));
    let keys = |i: usize| *net.nodes[i].me.bound_keys();
    let (founder_keys, member_keys, wrong_keys, k3_keys) = (keys(0), keys(1), keys(2), keys(3));
    let seal = |key: u8, epoch: u32, to: &BoundKeys| {
        room_keys::seal_key(&[key; 32], &room, epoch, to).unwrap()
    };
    let entry = |seq: u32, epoch: u32, change: RoomChange| {
        let c = private::sign_control(&me, founding.clone(), seq, epoch, T0, change);
        Frame::RoomControl(Box::new(c))
    };
    let entries = [
        entry(
            next,
            1,
            RoomChange::Remove {
                member: k2,
                envelopes: vec![
                    (k0, seal(1, 1, &founder_keys)),
                    (k1, seal(1, 1, &wrong_keys)),
                ],
            },
        ),
        entry(
            next + 1,
            1,
            RoomChange::Invite {
                member: k3_keys,
                envelope: seal(1, 1, &k3_keys),
            },
        ),
        entry(
            next + 2,
            2,
            RoomChange::Remove {
                member: k3,
                envelopes: vec![
                    (k0, seal(2, 2, &founder_keys)),
                    (k1, seal(2, 2, &member_keys)),
                ],
            },
        ),
    ];
    let mut lacked = Vec::new();
    for frame in entries {
        let a = net.nodes[1].chat.on_frame(T0, k0, frame, &[]).unwrap();
        let unopened = a.events.iter().any(|e| {
            matches!(e, ChatEvent::RoomChanged(RoomChanged::KeyUnopened { room: r }) if *r == room)
        });
        lacked.push((unopened, net.chat(1).lacks_room_key(&room)));
    }
    assert_eq!(lacked, [(true, true), (false, true), (false, false)]);
    let r = net.chat(1).private.get(&room).unwrap();
    assert_eq!(
        (r.epoch(), r.current_key().map(|k| **k)),
        (2, Some([2; 32]))
    );
}
