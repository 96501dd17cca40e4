//! Beyond the LAN (PROTOCOL.md section 12): the node's side of links that
//! the shell carries over iroh.
//!
//! The node decides, the shell dials. Each WAN contact is a peer whose
//! [`Reach`] (home relay and addresses) we know: from a ticket the user
//! pasted, or from a `Reach` frame the peer sent over any link, LAN or WAN.
//! Contacts are saved, so after a restart (or after the peer moved, as long
//! as one side still knows where the other's relay is) the dial rule of
//! the peer table dials them again, alternating with the LAN address when
//! there is one. A WAN link is one more link to the same identity: the
//! duplicate-link rule keeps one (PROTOCOL.md 9.3 and 12.2).

use super::{CloseCause, Node, NodeError, Output};
use crate::chat::store::TrustLevel;
use crate::event::Event;
use crate::handshake::PeerHello;
use crate::identity::IdentityKey;
use crate::link::{Connection, LinkPath, Purpose, Remote};
use crate::peer::{LinkId, PeerLink};
use crate::wire::{CloseReason, Frame, Reach, Ticket};
use std::collections::{BTreeMap, BTreeSet};

/// Most WAN contacts kept (and saved). When full, a new one replaces the
/// unverified contact heard from longest ago; verified contacts go last.
pub const MAX_WAN_CONTACTS: usize = 256;

/// Store setting read at start: `on` turns links beyond the LAN on
/// (`--wan` and `--no-wan` override it for one run).
pub const WAN_SETTING: &str = "wan";

/// `Reach` frames change the saved contacts at most this often, all peers
/// together: each save is a SQLite commit with an fsync, and a peer that
/// sends new reach after new reach must cost memory, not the disk. A
/// ticket (the user's) is saved at once; what is unsaved is saved at quit.
pub const REACH_SAVE_INTERVAL_MS: u64 = 10_000;

/// Store setting: one ticket per line, one per contact.
pub(super) const CONTACTS_SETTING: &str = "wan_contacts";

/// Our own reach and our contacts'.
#[derive(Default)]
pub(super) struct WanBook {
    /// Ours, as the shell last reported it; `None` until iroh is up.
    own: Option<Reach>,
    /// Each contact's reach and since when we have it (its first reach,
    /// not its latest): wall ms, or for the contacts loaded at start their
    /// place in the setting (older than anything learnt since).
    contacts: BTreeMap<IdentityKey, (Reach, u64)>,
    /// Contacts the user gave us this run (a pasted ticket): kept before
    /// those learnt from `Reach` frames. (Saved contacts load as older
    /// than anything learnt since, which keeps them too.)
    chosen: BTreeSet<IdentityKey>,
    /// When the contacts were last saved (wall ms), and whether they
    /// changed since.
    saved_ms: Option<u64>,
    unsaved: bool,
}

impl WanBook {
    /// The saved contacts; lines that do not decode are skipped (a setting
    /// from a later version, or a damaged store, loses those contacts only).
    pub(super) fn load(setting: Option<String>) -> Self {
        let mut book = WanBook::default();
        for (i, line) in setting.unwrap_or_default().lines().enumerate() {
            if let Ok(t) = Ticket::decode(line) {
                if book.contacts.len() < MAX_WAN_CONTACTS {
                    book.contacts.insert(t.identity, (t.reach, i as u64));
                }
            }
        }
        book
    }

    fn setting(&self) -> String {
        let mut by_age: Vec<_> = self.contacts.iter().collect();
        by_age.sort_by_key(|(_, (_, at))| *at);
        by_age
            .into_iter()
            .map(|(id, (reach, _))| {
                Ticket {
                    identity: *id,
                    reach: reach.clone(),
                }
                .encode()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub(super) fn reach_of(&self, id: &IdentityKey) -> Option<&Reach> {
        self.contacts.get(id).map(|(r, _)| r)
    }

    pub(super) fn contacts(&self) -> impl Iterator<Item = &IdentityKey> {
        self.contacts.keys()
    }
}

impl Node {
    /// `--wan` contacts from the store become pinned peers with a dial
    /// scheduled, so the dial rule reaches them wherever they are now.
    pub(super) fn load_wan_contacts(&mut self) {
        if !self.cfg.wan {
            return;
        }
        let now = self.now_ms;
        let ids: Vec<IdentityKey> = self.wan.contacts().copied().collect();
        for id in ids {
            if id == self.local.identity_key() {
                continue;
            }
            let nick = self.stored_nick(&id);
            let (p, _) = self.peers.get_or_insert(id, &nick, None, now);
            p.pinned = true;
            self.peers.schedule_dial(&id, now, 0);
        }
    }

    /// The shell's report of our endpoint's reach: kept for `/ticket` and
    /// told to every linked peer when it changed.
    pub(super) fn on_own_reach(&mut self, reach: Reach) {
        if !self.cfg.wan || reach.validate().is_err() || self.wan.own.as_ref() == Some(&reach) {
            return;
        }
        self.wan.own = Some(reach.clone());
        self.queue_everywhere(Frame::Reach(reach));
    }

    /// A link is up: tell the peer where our endpoint is.
    pub(super) fn wan_link_up(&mut self, id: IdentityKey) {
        if let Some(own) = self.wan.own.clone().filter(|_| self.cfg.wan) {
            self.queue_frame(&id, Frame::Reach(own));
        }
    }

    /// A peer's `Reach` frame: remember (and save, within
    /// [`REACH_SAVE_INTERVAL_MS`]) where it can be found.
    pub(super) fn on_reach_frame(&mut self, id: IdentityKey, reach: Reach) {
        if reach.is_empty() || self.wan.reach_of(&id) == Some(&reach) {
            return;
        }
        self.remember_reach(id, reach, false);
    }

    /// `save_now`: the user gave us this contact (a ticket), which also
    /// keeps it before contacts learnt from `Reach` frames.
    fn remember_reach(&mut self, id: IdentityKey, reach: Reach, save_now: bool) {
        let now = self.wall_ms(self.now_ms);
        let since = self.wan.contacts.get(&id).map_or(now, |(_, since)| *since);
        if !self.wan.contacts.contains_key(&id) && self.wan.contacts.len() >= MAX_WAN_CONTACTS {
            // The unverified contact learnt from a Reach that we have
            // had the shortest time goes: anyone can mint identities that
            // each send one, and they must churn among themselves, not
            // push out the contacts kept from before or a ticket pasted.
            let victim = self
                .wan
                .contacts
                .iter()
                .map(|(k, (_, since))| {
                    let kept = self.is_verified(k) || self.wan.chosen.contains(k);
                    (kept, std::cmp::Reverse(*since), *k)
                })
                .min()
                .map(|(_, _, k)| k);
            if let Some(k) = victim {
                self.wan.contacts.remove(&k);
            }
        }
        self.wan.contacts.insert(id, (reach, since));
        if save_now {
            self.wan.chosen.insert(id);
        }
        self.wan.unsaved = true;
        let due = self
            .wan
            .saved_ms
            .is_none_or(|at| now >= at.saturating_add(REACH_SAVE_INTERVAL_MS));
        if save_now || due {
            self.save_wan_contacts();
        }
    }

    /// Save the contacts if they changed since the last save.
    pub(super) fn save_wan_contacts(&mut self) {
        if !self.wan.unsaved {
            return;
        }
        self.wan.saved_ms = Some(self.wall_ms(self.now_ms));
        self.wan.unsaved = false;
        let setting = self.wan.setting();
        if let Err(e) = self.chat.set_setting(CONTACTS_SETTING, &setting) {
            self.error(NodeError::WanNotSaved(e));
        }
    }

    fn is_verified(&self, id: &IdentityKey) -> bool {
        self.names.level(id) == Some(TrustLevel::Verified)
    }

    /// `/wan [on|off]`: save the setting for the next start, and say
    /// where it stands.
    pub(super) fn wan_setting(&mut self, on: Option<bool>) {
        if let Some(on) = on {
            let value = if on { "on" } else { "off" };
            if let Err(e) = self.chat.set_setting(WAN_SETTING, value) {
                self.error(NodeError::WanNotSaved(e));
                return;
            }
        }
        let saved = self
            .chat
            .store()
            .get_meta(WAN_SETTING)
            .ok()
            .flatten()
            .map(|v| v == "on");
        self.emit(Event::Wan {
            active: self.cfg.wan,
            saved,
        });
    }

    /// `/ticket`: our identity and reach as text.
    pub(super) fn ticket(&mut self) {
        if !self.cfg.wan {
            self.error(NodeError::WanOff);
            return;
        }
        match self.wan.own.clone() {
            // Without its relay a ticket only works where addresses are
            // reachable, which beyond a LAN they seldom are.
            Some(reach) if reach.relay.is_some() => {
                let ticket = Ticket {
                    identity: self.local.identity_key(),
                    reach,
                }
                .encode();
                self.emit(Event::Ticket { ticket });
            }
            _ => self.error(NodeError::WanNotReady),
        }
    }

    /// `/connect <ticket>`: remember the contact and dial it now; the dial
    /// rule retries with backoff until a link is up.
    pub(super) fn connect_ticket(&mut self, ticket: Ticket) {
        if !self.cfg.wan {
            self.error(NodeError::WanOff);
            return;
        }
        let id = ticket.identity;
        if id == self.local.identity_key() {
            self.error(NodeError::OwnTicket);
            return;
        }
        self.remember_reach(id, ticket.reach, true);
        let now = self.now_ms;
        let nick = self.stored_nick(&id);
        let (p, _) = self.peers.get_or_insert(id, &nick, None, now);
        p.pinned = true;
        if let Some(link) = self.peers.get(&id).and_then(|p| p.link()) {
            if self.conns.get(&link).is_some_and(|c| c.is_established()) {
                self.emit(Event::AlreadyConnected {
                    addr: Remote::Wan(id),
                });
                return;
            }
        }
        if self.peers.get(&id).is_some_and(|p| p.is_idle()) {
            self.dial_wan(id);
        }
    }

    /// Whether the next dial of this peer goes over iroh: when it has no
    /// LAN address, and on every other attempt when it has one (a laptop
    /// that left the office keeps its old LAN address).
    pub(super) fn dial_over_wan(&self, id: &IdentityKey) -> bool {
        if !self.cfg.wan || self.wan.reach_of(id).is_none() {
            return false;
        }
        match self.peers.get(id) {
            Some(p) => p.addr.is_none() || p.backoff.attempts() % 2 == 1,
            None => false,
        }
    }

    /// Start a WAN dial of a contact; the link stands for the peer.
    pub(super) fn dial_wan(&mut self, id: IdentityKey) {
        let Some(reach) = self.wan.reach_of(&id).cloned() else {
            return;
        };
        let link = self.alloc_link();
        let conn = Connection::dial(
            self.now_ms,
            Remote::Wan(id),
            Purpose::Dial(id),
            self.cfg.link_config(),
        );
        self.conns.insert(link, conn);
        self.out.push_back(Output::DialWan {
            link,
            peer: id,
            reach,
        });
        if let Some(p) = self.peers.get_mut(&id) {
            p.link = PeerLink::Linked(link);
            p.next_dial_ms = None;
        }
    }

    /// The shell's report of how a WAN link's bytes travel now.
    pub(super) fn on_path(&mut self, link: LinkId, path: LinkPath) {
        if let Some(c) = self.conns.get_mut(&link) {
            if c.remote().is_wan() && path != LinkPath::Lan {
                c.set_path(path);
            }
        }
    }

    /// A WAN link's Noise handshake must authenticate the identity iroh
    /// authenticated: the key of the endpoint the link runs to. False (and
    /// the link closed) if it did not.
    pub(super) fn wan_identity_holds(&mut self, link: LinkId, hello: &PeerHello) -> bool {
        let Some(Remote::Wan(endpoint)) = self.conns.get(&link).map(|c| c.remote()) else {
            return true;
        };
        if endpoint == hello.identity() {
            return true;
        }
        let cause = || CloseCause::EndpointMismatch {
            endpoint,
            identity: hello.identity(),
        };
        // The link never stood for a peer, so closing it reports nothing.
        self.emit(Event::LinkFailed {
            addr: Remote::Wan(endpoint),
            reason: std::sync::Arc::new(cause()),
        });
        self.close(link, cause(), Some(CloseReason::WrongIdentity));
        false
    }
}
