//! What a front end remembers between lines: the rooms joined and the
//! current one (where plain text goes, shown in the prompt). The node is
//! the authority on rooms; this follows its events.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use natter_core::chat::{room_label, Conversation, DEFAULT_ROOM};
use natter_core::event::{Event, MembershipChange, PeerInfo};
use natter_core::identity::IdentityKey;
use natter_core::trust::TrustState;
use natter_core::wire::MessageId;

/// The rooms joined and the current one, as labels: `#name` for open
/// rooms, `+name` for invite-only ones.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Session {
    joined: BTreeSet<String>,
    current: Option<String>,
    me: Option<IdentityKey>,
}

fn lobby() -> String {
    format!("#{DEFAULT_ROOM}")
}

/// How many of our direct messages' ids are remembered for their receipts.
const DIRECT_IDS_KEPT: usize = 4096;

/// Which events the text front ends print. A receipt (`delivered to`) is
/// printed for our direct messages only: a room message to 30 peers would
/// print 30; its mark and `/info` say who has it instead.
#[derive(Debug, Default)]
pub struct Receipts {
    direct: HashSet<MessageId>,
    order: VecDeque<MessageId>,
}

impl Receipts {
    /// Whether to print `ev` in text.
    pub fn shows(&mut self, ev: &Event) -> bool {
        match ev {
            Event::MessageSent { message } => {
                if matches!(message.message.conversation, Conversation::Direct(_))
                    && self.direct.insert(message.message.id)
                {
                    self.order.push_back(message.message.id);
                    if self.order.len() > DIRECT_IDS_KEPT {
                        if let Some(old) = self.order.pop_front() {
                            self.direct.remove(&old);
                        }
                    }
                }
                true
            }
            Event::MessageDelivered { id, .. } => self.direct.contains(id),
            _ => true,
        }
    }
}

/// For this long after start, peers found and linked are summed up rather
/// than printed one by one.
pub const START_QUIET: Duration = Duration::from_secs(2);

/// Up to this many held events are printed as they are when the quiet
/// time ends; beyond, one summary line.
const START_SHOW_EACH: usize = 6;

/// The peers discovered and linked in the first moments after start.
#[derive(Debug)]
pub struct StartSummary {
    until: Option<Instant>,
    held: Vec<Event>,
    connected: BTreeMap<IdentityKey, PeerInfo>,
    discovered: BTreeSet<IdentityKey>,
}

/// What the quiet time after start comes to.
#[derive(Debug)]
pub enum StartOutcome {
    /// Few events: print them as they are.
    Each(Vec<Event>),
    /// Many: one line.
    Summary {
        connected: Vec<PeerInfo>,
        verified: usize,
        discovered: usize,
    },
}

impl StartSummary {
    pub fn new(now: Instant) -> Self {
        StartSummary {
            until: Some(now + START_QUIET),
            held: Vec::new(),
            connected: BTreeMap::new(),
            discovered: BTreeSet::new(),
        }
    }

    /// When the quiet time ends, while it lasts.
    pub fn due(&self) -> Option<Instant> {
        self.until
    }

    /// Holds a discovery or connection during the quiet time; `false`
    /// means print the event now.
    pub fn hold(&mut self, ev: &Event) -> bool {
        if self.until.is_none() {
            return false;
        }
        match ev {
            Event::PeerDiscovered { peer } => {
                self.discovered.insert(peer.identity);
            }
            Event::PeerConnected { peer, .. } => {
                self.connected.insert(peer.identity, peer.clone());
            }
            _ => return false,
        }
        self.held.push(ev.clone());
        true
    }

    /// Something else is about to be printed during the quiet time: end
    /// it now if anything is held, so that a peer's message or file never
    /// shows above the line saying that peer linked. `None` if nothing
    /// needs printing first (the quiet time then goes on).
    pub fn interrupt(&mut self) -> Option<StartOutcome> {
        if self.until.is_none() || self.held.is_empty() {
            return None;
        }
        Some(self.finish())
    }

    /// Ends the quiet time.
    pub fn finish(&mut self) -> StartOutcome {
        self.until = None;
        let held = std::mem::take(&mut self.held);
        if held.len() <= START_SHOW_EACH {
            return StartOutcome::Each(held);
        }
        let connected: Vec<PeerInfo> = std::mem::take(&mut self.connected).into_values().collect();
        let verified = connected
            .iter()
            .filter(|p| p.trust == TrustState::Verified)
            .count();
        let discovered = self
            .discovered
            .iter()
            .filter(|d| !connected.iter().any(|c| c.identity == **d))
            .count();
        StartOutcome::Summary {
            connected,
            verified,
            discovered,
        }
    }
}

/// A [`Session`] shared by the editor thread and the async side.
pub type SharedSession = Arc<Mutex<Session>>;

pub fn lock(s: &SharedSession) -> MutexGuard<'_, Session> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Session {
    /// Keeps up with the node: the rooms at start, joins and leaves. A room
    /// joined (or founded) becomes the current one (as `/join` in IRC); an
    /// invitation does not move us. Leaving the current room moves to the
    /// default room, or any other joined one. Returns whether the current
    /// room changed.
    pub fn observe(&mut self, ev: &Event) -> bool {
        let before = self.current.clone();
        match ev {
            Event::Started {
                rooms, identity, ..
            } => {
                self.me = Some(*identity);
                self.joined = rooms.iter().cloned().collect();
                self.current = None;
                self.settle();
            }
            Event::RoomJoined { room } => {
                self.joined.insert(room.clone());
                self.current = Some(room.clone());
            }
            Event::RoomRenamed { old, new } => {
                self.joined.remove(old);
                self.joined.insert(new.clone());
                if self.current.as_deref() == Some(old) {
                    self.current = Some(new.clone());
                }
            }
            Event::RoomLeft { room }
            | Event::RoomMembership {
                room,
                change: MembershipChange::YouWereRemoved,
            } => {
                self.joined.remove(room);
                if self.current.as_deref() == Some(room) {
                    self.current = None;
                }
                self.settle();
            }
            Event::RoomMembership {
                room,
                change: MembershipChange::YouJoined { founder },
            } => {
                self.joined.insert(room.clone());
                if Some(founder.identity) == self.me {
                    self.current = Some(room.clone());
                }
            }
            _ => {}
        }
        before != self.current
    }

    fn settle(&mut self) {
        if self.current.is_none() {
            self.current = if self.joined.contains(&lobby()) {
                Some(lobby())
            } else {
                self.joined.iter().next().cloned()
            };
        }
    }

    /// Where plain text goes, if anywhere.
    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    pub fn is_joined(&self, name: &str) -> bool {
        self.joined.contains(name)
    }

    /// `/room #name` or `/room +name`: makes a joined room current. The
    /// error says what to type instead.
    pub fn switch_to(&mut self, typed: &str) -> Result<String, String> {
        let label = self.resolve(typed)?;
        self.current = Some(label.clone());
        Ok(label)
    }

    /// The joined room `/room typed` would make current, as its label.
    pub fn resolve(&self, typed: &str) -> Result<String, String> {
        let label = room_label(typed).map_err(|e| e.to_string())?;
        // Invite-only rooms of one name are told apart by their founder
        // (`+team#ABCD-EFGH`, or a prefix of it), and their labels move as
        // rooms of that name come and go: any room of the name will do
        // here, and the node says which it is, or asks, when it is used.
        let name_of = |l: &str| l.split('#').next().unwrap_or(l).to_owned();
        let same_name: Vec<&String> = self
            .joined
            .iter()
            .filter(|j| {
                label.starts_with('+') && j.starts_with('+') && name_of(j) == name_of(&label)
            })
            .collect();
        // A founder's prefix names the one joined label it starts.
        let flat = |l: &str| l.replace('-', "");
        let expanded: Vec<&&String> = same_name
            .iter()
            .filter(|j| label.contains('#') && flat(j).starts_with(&flat(&label)))
            .collect();
        let label = match expanded[..] {
            [one] => (*one).clone(),
            _ => label,
        };
        let known = self.joined.contains(&label) || !same_name.is_empty();
        if !known {
            return Err(if label.starts_with('+') {
                format!("you are not in {label}: its founder must invite you")
            } else {
                format!("you are not in {label}: /join {label} first")
            });
        }
        Ok(label)
    }

    /// The room a command means: the one typed, else the current one.
    pub fn room_or_current(&self, typed: Option<&str>) -> Result<String, String> {
        match typed {
            Some(t) => Ok(t.to_owned()),
            None => self
                .current
                .clone()
                .ok_or_else(|| format!("you are in no room: /join #{DEFAULT_ROOM}")),
        }
    }

    /// Joined rooms, for tab completion.
    pub fn joined(&self) -> impl Iterator<Item = &String> {
        self.joined.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::event::{LinkState, PeerInfo};
    use natter_core::trust::TrustState;

    fn started(rooms: &[&str]) -> Event {
        Event::Started {
            identity: IdentityKey([1; 32]),
            nickname: "me".into(),
            listen: "127.0.0.1:1".parse().unwrap(),
            beacon_targets: vec![],
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn founder(n: u8) -> PeerInfo {
        PeerInfo {
            identity: IdentityKey([n; 32]),
            nickname: "f".into(),
            state: LinkState::Offline,
            addr: None,
            trust: TrustState::Unverified,
            path: None,
        }
    }

    fn connected(n: u8) -> Event {
        Event::PeerConnected {
            peer: founder(n),
            direction: natter_core::link::Direction::Inbound,
        }
    }

    #[test]
    fn the_quiet_time_holds_links_and_gives_them_back_in_order() {
        let now = Instant::now();
        let mut start = StartSummary::new(now);
        assert_eq!(start.due(), Some(now + START_QUIET));
        // Nothing held: another event does not end the quiet time.
        assert!(start.interrupt().is_none());
        assert!(start.due().is_some());
        assert!(start.hold(&connected(2)));
        assert!(start.hold(&connected(3)));
        assert!(!start.hold(&Event::RoomJoined {
            room: "#dev".into()
        }));
        // Something else printed now ends it, the links first.
        match start.interrupt() {
            Some(StartOutcome::Each(held)) => {
                let ids: Vec<IdentityKey> = held
                    .iter()
                    .filter_map(|ev| match ev {
                        Event::PeerConnected { peer, .. } => Some(peer.identity),
                        _ => None,
                    })
                    .collect();
                assert_eq!(ids, vec![IdentityKey([2; 32]), IdentityKey([3; 32])]);
            }
            other => panic!("expected the two held links, got {other:?}"),
        }
        assert!(start.due().is_none());
        assert!(
            !start.hold(&connected(4)),
            "after the quiet time, print at once"
        );
        assert!(start.interrupt().is_none());
    }

    #[test]
    fn many_links_at_start_make_one_summary() {
        let mut start = StartSummary::new(Instant::now());
        for n in 2..2 + START_SHOW_EACH as u8 + 1 {
            assert!(start.hold(&connected(n)));
        }
        match start.finish() {
            StartOutcome::Summary {
                connected,
                verified,
                discovered,
            } => {
                assert_eq!(connected.len(), START_SHOW_EACH + 1);
                assert_eq!((verified, discovered), (0, 0));
            }
            other => panic!("expected a summary, got {other:?}"),
        }
    }

    #[test]
    fn the_current_room_follows_joins_and_leaves() {
        let mut s = Session::default();
        s.observe(&started(&["#ops", "#lobby"]));
        assert_eq!(s.current(), Some("#lobby"));
        assert!(s.observe(&Event::RoomJoined {
            room: "#dev".into()
        }));
        assert_eq!(s.current(), Some("#dev"));
        assert_eq!(s.switch_to("#OPS"), Ok("#ops".into()));
        assert!(s.switch_to("#nope").unwrap_err().contains("/join #nope"));
        assert!(s
            .switch_to("+nope")
            .unwrap_err()
            .contains("founder must invite"));
        // An invitation adds a room without moving us; founding one moves.
        s.observe(&Event::RoomMembership {
            room: "+team".into(),
            change: MembershipChange::YouJoined {
                founder: founder(9),
            },
        });
        assert_eq!(s.current(), Some("#ops"));
        assert_eq!(s.switch_to("+team"), Ok("+team".into()));
        s.observe(&Event::RoomMembership {
            room: "+mine".into(),
            change: MembershipChange::YouJoined {
                founder: founder(1),
            },
        });
        assert_eq!(s.current(), Some("+mine"));
        s.observe(&Event::RoomMembership {
            room: "+mine".into(),
            change: MembershipChange::YouWereRemoved,
        });
        assert_eq!(s.current(), Some("#lobby"));
        for r in ["#ops", "#lobby", "#dev", "+team"] {
            s.observe(&Event::RoomLeft { room: r.into() });
        }
        assert_eq!(s.current(), None);
        assert!(s
            .room_or_current(None)
            .unwrap_err()
            .contains("/join #lobby"));
    }

    /// Two invite-only rooms of one name are told apart by their founder;
    /// any room of the name may be made current, by its label, a prefix
    /// of its founder's fingerprint or the bare name (the node then says
    /// which it is, or asks).
    #[test]
    fn rooms_of_one_name_are_switched_to_by_founder() {
        let mut s = Session::default();
        s.observe(&started(&["#lobby", "+team#ABCD-EFGH", "+team#WXYZ-2345"]));
        assert_eq!(s.switch_to("+team#abcd"), Ok("+team#ABCD-EFGH".into()));
        assert_eq!(s.switch_to("+Team#wxyz-2345"), Ok("+team#WXYZ-2345".into()));
        assert_eq!(s.switch_to("+team"), Ok("+team".into()));
        assert!(s.switch_to("+other#abcd").is_err());
        assert!(s.switch_to("#team").is_err());
        // A label that moves takes the current room with it.
        assert_eq!(s.switch_to("+team#ABCD-EFGH"), Ok("+team#ABCD-EFGH".into()));
        assert!(s.observe(&Event::RoomRenamed {
            old: "+team#ABCD-EFGH".into(),
            new: "+team".into(),
        }));
        assert_eq!(s.current(), Some("+team"));
        assert!(s.is_joined("+team") && !s.is_joined("+team#ABCD-EFGH"));
    }
}
