//! Glue to the file-transfer rules (`crate::files`): the user's file
//! commands, file frames, links coming and going, and feeding file data to
//! links that have room for it.

use super::{Command, Node, NodeError, Output};
use crate::chat::store::TrustLevel;
use crate::event::{Event, TransferView};
use crate::files::{FileActions, FileDigest, FileEvent, TransferRecord, SEND_BACKLOG};
use crate::identity::IdentityKey;
use crate::wire::frame::TransferId;
use crate::wire::Frame;
use std::sync::Arc;

/// Most transfers `/files` lists.
const MAX_LISTED: usize = 200;

impl Node {
    pub(super) fn on_file_command(&mut self, cmd: Command) {
        if let Err(e) = self.try_file_command(cmd) {
            self.error(e);
        }
    }

    fn try_file_command(&mut self, cmd: Command) -> Result<(), NodeError> {
        match cmd {
            Command::SendFile { peer, path } => {
                let to = self.resolve_for_sending(&peer)?;
                let mut transfer = [0u8; 16];
                crate::identity::random_bytes(&mut transfer).map_err(|e| {
                    NodeError::CannotReadFile {
                        path: path.clone(),
                        error: e.to_string(),
                    }
                })?;
                self.hashing.insert(transfer, (to, path.clone()));
                self.out.push_back(Output::HashFile { transfer, path });
            }
            Command::AcceptFile(id) => {
                let rec = self.files.find(&id, |r| !r.outgoing)?;
                let connected = self.link_of(&IdentityKey(rec.peer)).is_some();
                let actions = self.files.accept(rec, connected)?;
                self.file_actions(actions);
            }
            Command::RejectFile(id) => {
                let rec = self.files.find(&id, |r| !r.outgoing)?;
                let actions = self.files.reject(rec)?;
                self.file_actions(actions);
            }
            Command::CancelFile(id) => {
                let rec = self.files.find(&id, |r| !r.state.is_final())?;
                let actions = self.files.cancel(rec)?;
                self.file_actions(actions);
            }
            Command::Files => {
                let listed = self.files.list(MAX_LISTED).map_err(NodeError::FileStore)?;
                let transfers = listed
                    .into_iter()
                    .map(|(rec, done)| self.transfer_view(rec, done))
                    .collect();
                self.emit(Event::Files { transfers });
            }
            _ => {}
        }
        Ok(())
    }

    /// The shell hashed a file the user offers.
    pub(super) fn on_file_hashed(
        &mut self,
        transfer: TransferId,
        result: Result<FileDigest, String>,
    ) {
        let Some((peer, path)) = self.hashing.remove(&transfer) else {
            return;
        };
        let digest = match result {
            Ok(d) => d,
            Err(error) => return self.error(NodeError::CannotReadFile { path, error }),
        };
        let wall = self.wall_ms(self.now_ms);
        let connected = self.link_of(&peer).is_some();
        match self
            .files
            .offer(transfer, peer, path, digest, wall, connected)
        {
            Ok(actions) => self.file_actions(actions),
            Err(e) => self.error(NodeError::FileStore(e)),
        }
    }

    /// A file frame from the established link to `from`.
    pub(super) fn file_frame(&mut self, from: IdentityKey, frame: Frame) {
        let verified = self.names.level(&from) == Some(TrustLevel::Verified);
        let wall = self.wall_ms(self.now_ms);
        let actions = self
            .files
            .on_frame(self.now_ms, wall, from, verified, frame);
        self.file_actions(actions);
    }

    pub(super) fn files_link_up(&mut self, peer: IdentityKey) {
        let actions = self.files.on_link_up(peer);
        self.file_actions(actions);
    }

    /// Give each established link with file data to send what fits under
    /// its backlog bound, at most half of it at a time: the shell writes
    /// one half while the node seals the other. Chat frames queued since
    /// go out first.
    pub(super) fn pump_files(&mut self) {
        // Runs at every drain: with nothing being sent, skip the scan of
        // every link.
        if self.files.running().0 == 0 {
            return;
        }
        // Only the peers with data waiting, each through its established
        // link: O(peers sending to), not O(links), per drain.
        let peers: Vec<(IdentityKey, usize)> = self
            .files
            .peers_with_data()
            .into_iter()
            .filter_map(|p| {
                let link = self.link_of(&p)?;
                Some((p, self.conns.get(&link)?.queued()))
            })
            .filter(|(_, queued)| *queued < SEND_BACKLOG)
            .collect();
        for (peer, queued) in peers {
            let step = (SEND_BACKLOG - queued).min(SEND_BACKLOG / 2);
            let actions = self.files.pump(self.now_ms, peer, step);
            self.file_actions(actions);
        }
    }

    fn file_actions(&mut self, actions: FileActions) {
        for (to, frame) in actions.send {
            self.queue_frame(&to, frame);
        }
        for ev in actions.events {
            let event = match ev {
                FileEvent::Offered(rec) => Event::FileOffered {
                    transfer: self.transfer_view(rec, 0),
                },
                FileEvent::Progress { rec, done } => Event::FileProgress {
                    transfer: self.transfer_view(rec, done),
                },
                FileEvent::Completed(rec) => {
                    let size = rec.size;
                    Event::FileCompleted {
                        transfer: self.transfer_view(rec, size),
                    }
                }
                FileEvent::Failed { rec, reason } => {
                    let done = crate::files::bytes_of(rec.size, rec.done_groups);
                    Event::FileFailed {
                        transfer: self.transfer_view(rec, done),
                        reason: Arc::new(reason),
                    }
                }
                FileEvent::Refused {
                    peer,
                    name,
                    size,
                    reason,
                } => Event::FileRefused {
                    peer: self.info_of(&peer),
                    name,
                    size,
                    reason: Arc::new(reason),
                },
            };
            self.emit(event);
        }
    }

    fn transfer_view(&self, rec: TransferRecord, done: u64) -> TransferView {
        TransferView {
            id: rec.id,
            peer: self.info_of(&IdentityKey(rec.peer)),
            outgoing: rec.outgoing,
            name: rec.name,
            size: rec.size,
            root: rec.root,
            state: rec.state,
            done,
            path: rec.path,
        }
    }
}
