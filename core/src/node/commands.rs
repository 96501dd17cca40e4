//! The user's commands that are not chat: connect, list peers, change
//! nickname, send opaque data, quit. Chat commands go to `node/chat.rs`.

use super::{CloseCause, Command, Node, NodeError};
use crate::event::Event;
use crate::identity::IdentityKey;
use crate::peer::LinkId;
use crate::wire::limits::MAX_NICK_LEN;
use crate::wire::{CloseReason, Frame};

impl Node {
    pub(super) fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Connect(addr) => self.connect(addr),
            Command::ConnectTicket(ticket) => self.connect_ticket(ticket),
            Command::Ticket => self.ticket(),
            Command::Wan(on) => self.wan_setting(on),
            Command::Peers => {
                let peers = self.peers.iter().map(|p| self.info(p)).collect();
                self.emit(Event::Peers { peers });
            }
            Command::Nick(nick) => self.set_nick(nick),
            Command::SendData { peer, data } => self.send_data(peer, data),
            Command::Join(_)
            | Command::Leave(_)
            | Command::Rooms
            | Command::ReadRoom(_)
            | Command::Who(_)
            | Command::CreateRoom(_)
            | Command::Invite { .. }
            | Command::Kick { .. } => self.on_room_command(cmd),
            Command::Say(_)
            | Command::Post { .. }
            | Command::Info(_)
            | Command::Msg { .. }
            | Command::History { .. }
            | Command::Search { .. }
            | Command::Verify { .. }
            | Command::Trust { .. }
            | Command::Untrust { .. } => self.on_chat_command(cmd),
            Command::SendFile { .. }
            | Command::AcceptFile(_)
            | Command::RejectFile(_)
            | Command::CancelFile(_)
            | Command::Files => self.on_file_command(cmd),
            Command::Quit => self.quit(),
            Command::Marker(n) => self.emit(Event::Marker(n)),
        }
    }

    /// Change our nickname: stored, announced in beacons and told to every
    /// established link.
    fn set_nick(&mut self, nick: String) {
        if nick.is_empty() || nick.len() > MAX_NICK_LEN {
            self.error(NodeError::BadNickname { max: MAX_NICK_LEN });
            return;
        }
        self.cfg.nickname = nick.clone();
        self.names.set_local(self.local.identity_key(), &nick);
        if let Err(e) = self.chat.set_setting("nickname", &nick) {
            self.error(NodeError::NicknameNotSaved(e));
        }
        if let Some(d) = self.discovery.as_mut() {
            d.set_nickname(nick.clone());
        }
        self.queue_everywhere(Frame::Nick(nick));
    }

    fn send_data(&mut self, peer: IdentityKey, data: Vec<u8>) {
        if !self.queue_frame(&peer, Frame::Data(data)) {
            self.error(NodeError::NotConnected);
        }
    }

    /// Close every link, telling each peer why, and stop.
    fn quit(&mut self) {
        // What arrived before the quit is stored and acked first.
        self.finish_checks();
        self.save_wan_contacts();
        self.shutting_down = true;
        let links: Vec<LinkId> = self.conns.keys().copied().collect();
        for l in links {
            self.close(l, CloseCause::ShuttingDown, Some(CloseReason::Shutdown));
        }
        self.emit(Event::Shutdown);
    }
}
